"""The workloads: what each sends (its Lua script in bench/lua/) and its setup through the API.

A workload's setup runs once per server, before the first round. It creates what the workload
needs (mount, keys, policy, token) with the root token, then sends the workload's request once
with the workload's own token and checks the answer: a broken setup fails here with a reason,
not as a stream of errors under load. When a setup request fails, that server's cell is n/a
with the failing request as the reason; a 404/405 means the endpoint does not exist (yet).

Later issues light workloads up without touching the harness: as soon as the server answers
the setup requests, the workload runs.
"""

from __future__ import annotations

import atexit
import base64
import json
import os
import tempfile
import random
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Callable

from . import database, kvload
from .api import ApiError, Client
from .measure import Hooks

KV_MOUNT = "bench-kv"
TRANSIT_MOUNT = "bench-transit"
TRANSIT_KEY = "bench"
APPROLE_MOUNT = "bench-approle"
JWT_MOUNT = "bench-jwt"
JWT_ISSUER = "https://ci.bench.invalid"
DB_MOUNT = "bench-db"
DB_CONFIG = "bench"
NOT_IMPLEMENTED = (404, 405)
# Mounting an engine or auth method the server does not have: Vault answers 400 with this.
UNKNOWN_PLUGIN = "plugin not found in the catalog"


class NotAvailable(Exception):
    """This server cannot run the workload; str() is the reason printed under the table."""

    def __init__(self, reason: str, not_implemented: bool = False):
        super().__init__(reason)
        self.not_implemented = not_implemented


@dataclass
class Prepared:
    env: dict[str, str]  # BENCH_* variables the Lua script reads
    token_type: str      # shown in the table
    hooks: Hooks | None = None  # around every wrk run (database workloads)


@dataclass(frozen=True)
class Workload:
    name: str
    script: str  # file name in bench/lua/
    token_type: str  # the label before setup; setup may refine it
    setup: Callable[["Setup"], Prepared]
    # Database workloads: the fixed number of clients (wrk connections, pgbench clients); they
    # are reported in their own table, as cycles/s against the raw SQL baseline.
    clients: int | None = None
    # HTTP workloads at a fixed concurrency (the c=1 latency runs) instead of --connections.
    connections: int | None = None
    # The yardstick workload: the one the hello-world server runs in the same round at the same
    # concurrency, and the server's own sys/health at it (the second ratio column).
    hello: str = "sys-health"
    # Slow to set up (millions of writes): left out unless named in --workloads.
    heavy: bool = False
    # Sent to the server's TLS listener (the run's self-signed certificate) instead of its plain
    # one; the yardstick is then the hello-world server with TLS.
    tls: bool = False
    # Run on the PostgreSQL storage servers (OpenBao and Tresor on `storage "postgresql"`,
    # Tresor with ha_enabled, Tresor on its embedded store as the reference) instead of the
    # pair of --storage; reported in a table of their own. Left out unless named.
    pg_storage: bool = False

    @property
    def is_database(self) -> bool:
        return self.clients is not None


class Setup:
    """One server's setup: a root client, the options, and fixtures shared between workloads
    (the KV keys serve three workloads), each made once. A fixture that failed fails again with
    the same reason rather than being retried."""

    def __init__(self, server, keys: int, postgres: "database.Cluster | str | None" = None,
                 scale: kvload.ScaleOptions = kvload.ScaleOptions()):
        self.server = server
        self.root: Client = server.client()
        self.keys = keys
        self.scale = scale
        # The PostgreSQL cluster of the database workloads, or why it cannot be used.
        self.postgres = postgres
        self._fixtures: dict[str, object] = {}

    def as_token(self, token: str) -> Client:
        return self.server.client(token)

    def once(self, name: str, make: Callable[[], object]):
        if name not in self._fixtures:
            try:
                self._fixtures[name] = make()
            except Exception as err:  # remembered, re-raised for every workload using it
                self._fixtures[name] = err
        value = self._fixtures[name]
        if isinstance(value, Exception):
            raise value
        return value


def prepare(workload: Workload, setup: Setup) -> Prepared:
    """Run a workload's setup; any failure becomes NotAvailable with the failing request."""
    try:
        return workload.setup(setup)
    except ApiError as err:
        missing = err.status in NOT_IMPLEMENTED or UNKNOWN_PLUGIN in str(err)
        raise NotAvailable(str(err), not_implemented=missing) from err
    except (KeyError, TypeError, ValueError) as err:
        raise NotAvailable(f"unexpected answer during setup: {err!r}") from err


# ---- payloads: fixed, so both servers get byte-identical requests ----

def secret_1k() -> dict[str, str]:
    """1 KiB of secret data as performance.md defines it: 8 fields of 120 characters."""
    rng = random.Random(1)
    return {f"field{i}": base64.b64encode(rng.randbytes(90)).decode() for i in range(8)}


PLAINTEXT_1K_B64 = base64.b64encode(random.Random(2).randbytes(1024)).decode()


def _expect(condition: bool, what: str) -> None:
    if not condition:
        raise NotAvailable(f"unexpected answer: {what}")


def _policy_token(setup: Setup, policy: str, hcl: str) -> str:
    """A service token bound to exactly one policy (no `default`), valid for the whole run."""
    setup.root.request("PUT", f"sys/policies/acl/{policy}", {"policy": hcl})
    auth = setup.root.post("auth/token/create",
                           {"policies": [policy], "no_default_policy": True, "ttl": "24h"})
    return auth["auth"]["client_token"]


def _retry_briefly(call: Callable[[], object], seconds: float = 10.0):
    """A fresh KV v2 mount answers 4xx/5xx for a moment while it upgrades; retry non-404s."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return call()
        except ApiError as err:
            if err.status in NOT_IMPLEMENTED or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


# ---- fixtures ----

def kv_keys(setup: Setup) -> str:
    """Mount KV v2 and write `keys` secrets of 1 KiB; returns the path template (%d = key)."""
    def make() -> str:
        setup.root.post(f"sys/mounts/{KV_MOUNT}", {"type": "kv", "options": {"version": "2"}})
        body = {"data": secret_1k()}
        _retry_briefly(lambda: setup.root.post(f"{KV_MOUNT}/data/key-0", body))
        for i in range(1, setup.keys):
            setup.root.post(f"{KV_MOUNT}/data/key-{i}", body)
        return f"{KV_MOUNT}/data/key-%d"
    return setup.once("kv", make)


def transit_token(setup: Setup) -> str:
    """Mount transit, create an aes256-gcm96 key, and a token allowed to encrypt/decrypt with it."""
    def make() -> str:
        setup.root.post(f"sys/mounts/{TRANSIT_MOUNT}", {"type": "transit"})
        setup.root.post(f"{TRANSIT_MOUNT}/keys/{TRANSIT_KEY}", {"type": "aes256-gcm96"})
        hcl = (f'path "{TRANSIT_MOUNT}/encrypt/{TRANSIT_KEY}" {{ capabilities = ["update"] }}\n'
               f'path "{TRANSIT_MOUNT}/decrypt/{TRANSIT_KEY}" {{ capabilities = ["update"] }}\n')
        return _policy_token(setup, "bench-transit", hcl)
    return setup.once("transit", make)


# ---- workload setups ----

def _unauthenticated(path: str) -> Callable[[Setup], Prepared]:
    def setup_fn(setup: Setup) -> Prepared:
        answer = setup.as_token("").get(path)
        _expect(isinstance(answer, dict), f"GET {path} returned no JSON")
        return Prepared({}, "none")
    return setup_fn


def setup_lookup_self(setup: Setup) -> Prepared:
    # A service token with only the `default` policy (which grants lookup-self) is the realistic
    # caller. A server that cannot create tokens yet is measured with its root token, labelled so.
    try:
        auth = setup.root.post("auth/token/create", {"policies": ["default"], "ttl": "24h"})
        token, label = auth["auth"]["client_token"], "service, `default` policy"
    except ApiError as err:
        if err.status not in NOT_IMPLEMENTED:
            raise
        token, label = setup.server.token, "root (cannot create tokens yet)"
    answer = setup.as_token(token).get("auth/token/lookup-self")
    _expect(isinstance(answer, dict) and "data" in answer, "lookup-self without data")
    return Prepared({"BENCH_TOKEN": token}, label)


def _kv_read(root: bool) -> Callable[[Setup], Prepared]:
    def setup_fn(setup: Setup) -> Prepared:
        template = kv_keys(setup)
        if root:
            token, label = setup.server.token, "root"
        else:
            hcl = f'path "{KV_MOUNT}/data/*" {{ capabilities = ["read"] }}\n'
            token, label = _policy_token(setup, "bench-kv-read", hcl), "service, read-only policy"
        answer = setup.as_token(token).get(template % 0)
        _expect(answer["data"]["data"] == secret_1k(), "KV v2 read returned other data")
        return Prepared({"BENCH_TOKEN": token, "BENCH_PATH": "/v1/" + template,
                         "BENCH_KEYS": str(setup.keys)}, label)
    return setup_fn


def _kv_scale(mount: str, keys_of: Callable[[Setup], int],
              versions_of: Callable[[Setup], int]) -> Callable[[Setup], Prepared]:
    """Random reads over a large KV v2 store of its own (the heavy workloads): `keys_of` keys of
    1 KiB, each written `versions_of` times, bulk-loaded once per server."""
    def setup_fn(setup: Setup) -> Prepared:
        keys, versions = keys_of(setup), versions_of(setup)
        template = setup.once(mount, lambda: _fill_scale(setup, mount, keys, versions))
        hcl = f'path "{mount}/data/*" {{ capabilities = ["read"] }}\n'
        token = _policy_token(setup, f"bench-{mount}", hcl)
        answer = setup.as_token(token).get(template % (keys - 1))
        _expect(answer["data"]["data"] == secret_1k(), "KV v2 read returned other data")
        _expect(answer["data"]["metadata"]["version"] == versions,
                f"the last key has version {answer['data']['metadata']['version']}, not {versions}")
        return Prepared({"BENCH_TOKEN": token, "BENCH_PATH": "/v1/" + template,
                         "BENCH_KEYS": str(keys)},
                        f"service, read-only policy; {keys:,} keys × {versions} version(s)")
    return setup_fn


def _fill_scale(setup: Setup, mount: str, keys: int, versions: int) -> str:
    kvload.mount(setup.root, mount)
    body = json.dumps({"data": secret_1k()}).encode()
    kvload.fill(setup.server.name, setup.server.url, setup.server.token, mount, keys, versions, body)
    return f"{mount}/data/key-%d"


SCALE_MOUNT, FRESH_MOUNT, CHURN_MOUNT = "bench-kv-scale", "bench-kv-fresh", "bench-kv-churn"


AUDIT_DEVICE = "bench-audit"


def _kv_read_audited(setup: Setup) -> Prepared:
    """kv2-read-1k (service token, read-only policy) with one file audit device enabled for the
    duration of each wrk run only (hooks), so no other workload is audited. The audit file is
    truncated before every run; the cell is comparable with kv2-read-1k of the same server."""
    prepared = _kv_read(root=False)(setup)
    log_dir = tempfile.mkdtemp(prefix=f"bench-audit-{setup.server.name.lower()}-")
    atexit.register(lambda: subprocess.run(["rm", "-rf", log_dir], check=False))
    log_path = os.path.join(log_dir, "audit.log")
    root = setup.root

    def enable() -> None:
        open(log_path, "w").close()
        root.request("PUT", f"sys/audit/{AUDIT_DEVICE}",
                     {"type": "file", "options": {"file_path": log_path}})

    def disable() -> list[str]:
        root.request("DELETE", f"sys/audit/{AUDIT_DEVICE}")
        return []

    # Checked once now: the device can be enabled and records a read.
    enable()
    try:
        setup.as_token(prepared.env["BENCH_TOKEN"]).get(prepared.env["BENCH_PATH"][len("/v1/"):] % 0)
        with open(log_path) as log:
            _expect(sum(1 for _ in log) >= 2, "the audit device recorded no request and response")
    finally:
        disable()
    prepared.hooks = Hooks(before=enable, after=disable)
    prepared.token_type = "service, read-only policy, 1 file audit device"
    return prepared


def setup_kv_write(setup: Setup) -> Prepared:
    template = kv_keys(setup)
    hcl = f'path "{KV_MOUNT}/data/*" {{ capabilities = ["create", "update"] }}\n'
    token = _policy_token(setup, "bench-kv-write", hcl)
    body = {"data": secret_1k()}
    answer = setup.as_token(token).post(template % 0, body)
    _expect(answer["data"]["version"] >= 2, "KV v2 write did not return a new version")
    return Prepared({"BENCH_TOKEN": token, "BENCH_PATH": "/v1/" + template,
                     "BENCH_KEYS": str(setup.keys), "BENCH_BODY": json.dumps(body)},
                    "service, create+update policy")


def setup_transit_encrypt(setup: Setup) -> Prepared:
    token = transit_token(setup)
    path = f"{TRANSIT_MOUNT}/encrypt/{TRANSIT_KEY}"
    body = {"plaintext": PLAINTEXT_1K_B64}
    answer = setup.as_token(token).post(path, body)
    _expect(bool(answer["data"]["ciphertext"]), "encrypt returned no ciphertext")
    return Prepared({"BENCH_TOKEN": token, "BENCH_PATH": "/v1/" + path,
                     "BENCH_BODY": json.dumps(body)}, "service, transit policy")


def setup_transit_decrypt(setup: Setup) -> Prepared:
    token = transit_token(setup)
    client = setup.as_token(token)
    encrypted = client.post(f"{TRANSIT_MOUNT}/encrypt/{TRANSIT_KEY}", {"plaintext": PLAINTEXT_1K_B64})
    path = f"{TRANSIT_MOUNT}/decrypt/{TRANSIT_KEY}"
    body = {"ciphertext": encrypted["data"]["ciphertext"]}
    answer = client.post(path, body)
    _expect(answer["data"]["plaintext"] == PLAINTEXT_1K_B64, "decrypt returned other plaintext")
    return Prepared({"BENCH_TOKEN": token, "BENCH_PATH": "/v1/" + path,
                     "BENCH_BODY": json.dumps(body)}, "service, transit policy")


BATCH_ITEMS = 100


def setup_transit_encrypt_batch(setup: Setup) -> Prepared:
    """100 × 1 KiB in one request: the engine's crypto throughput with HTTP amortised."""
    token = transit_token(setup)
    path = f"{TRANSIT_MOUNT}/encrypt/{TRANSIT_KEY}"
    body = {"batch_input": [{"plaintext": PLAINTEXT_1K_B64} for _ in range(BATCH_ITEMS)]}
    answer = setup.as_token(token).post(path, body)
    results = answer["data"]["batch_results"]
    _expect(len(results) == BATCH_ITEMS and all(r.get("ciphertext") for r in results),
            "batch encrypt returned fewer ciphertexts than items")
    return Prepared({"BENCH_TOKEN": token, "BENCH_PATH": "/v1/" + path,
                     "BENCH_BODY_FILE": _body_file(body)}, "service, transit policy")


def _body_file(body: dict) -> str:
    """A request body too large for an environment variable (Linux caps one at 128 KiB), in a
    temp file removed when the harness exits."""
    fd, path = tempfile.mkstemp(prefix="tresor-bench-body-", suffix=".json")
    with os.fdopen(fd, "w") as out:
        json.dump(body, out)
    atexit.register(lambda: os.path.exists(path) and os.remove(path))
    return path


def setup_login_approle(setup: Setup) -> Prepared:
    root = setup.root
    root.post(f"sys/auth/{APPROLE_MOUNT}", {"type": "approle"})
    role = f"auth/{APPROLE_MOUNT}/role/bench"
    # A 1 h TTL: the tokens logins create outlive the run but do not pile up across runs.
    root.post(role, {"token_policies": ["default"], "token_ttl": "1h", "secret_id_num_uses": 0})
    role_id = root.get(f"{role}/role-id")["data"]["role_id"]
    secret_id = root.post(f"{role}/secret-id")["data"]["secret_id"]
    path = f"auth/{APPROLE_MOUNT}/login"
    body = {"role_id": role_id, "secret_id": secret_id}
    answer = setup.as_token("").post(path, body)
    _expect(bool(answer["auth"]["client_token"]), "login returned no token")
    return Prepared({"BENCH_PATH": "/v1/" + path, "BENCH_BODY": json.dumps(body)},
                    "none (role_id + secret_id)")


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _signed_jwt() -> tuple[str, str]:
    """A fresh RSA key (openssl) and an RS256 JWT it signs, valid for a day: the public key
    PEM for `jwt_validation_pubkeys` and the compact token. The key lives in a temp dir."""
    workdir = tempfile.mkdtemp(prefix="tresor-bench-jwt-")
    atexit.register(lambda: subprocess.run(["rm", "-rf", workdir], check=False))
    key = os.path.join(workdir, "key.pem")
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                    "-out", key], check=True, capture_output=True)
    public = subprocess.run(["openssl", "pkey", "-in", key, "-pubout"], check=True,
                            capture_output=True).stdout.decode()
    now = int(time.time())
    header = _b64url(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    claims = {"iss": JWT_ISSUER, "sub": "repo:bench/app", "aud": "bench", "iat": now - 60,
              "nbf": now - 60, "exp": now + 86400, "repository": "bench/app", "ref": "refs/heads/main"}
    payload = _b64url(json.dumps(claims).encode())
    signing_input = f"{header}.{payload}".encode()
    signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=signing_input,
                               check=True, capture_output=True).stdout
    return public, f"{header}.{payload}.{_b64url(signature)}"


def setup_login_jwt(setup: Setup) -> Prepared:
    root = setup.root
    root.post(f"sys/auth/{JWT_MOUNT}", {"type": "jwt"})
    public, token = _signed_jwt()
    root.post(f"auth/{JWT_MOUNT}/config", {"jwt_validation_pubkeys": [public], "bound_issuer": JWT_ISSUER})
    # As a CI pipeline logs in (seed 004): audience, subject claim, a bound claim on the ref.
    root.post(f"auth/{JWT_MOUNT}/role/bench", {
        "role_type": "jwt", "user_claim": "sub", "bound_audiences": ["bench"],
        "bound_claims": {"ref": "refs/heads/main"}, "token_policies": ["default"], "token_ttl": "1h"})
    path = f"auth/{JWT_MOUNT}/login"
    body = {"role": "bench", "jwt": token}
    answer = setup.as_token("").post(path, body)
    _expect(bool(answer["auth"]["client_token"]), "login returned no token")
    return Prepared({"BENCH_PATH": "/v1/" + path, "BENCH_BODY": json.dumps(body)},
                    "none (RS256 JWT, bound claims)")


# max_open_connections of the benchmark's database config: the largest client count of the
# db-creds workloads.
DB_POOL = 16


def db_fixture(setup: Setup) -> dict:
    """Once per server: its own PostgreSQL database and admin role, a `database` mount with a
    `postgresql-database-plugin` connection to it, a dynamic role with the default revocation
    statements, and a service token allowed to issue and revoke. One cycle is run and checked in
    PostgreSQL (the user exists after issuing and is gone after revoking) before any load."""
    def make() -> dict:
        cluster = setup.postgres
        if not isinstance(cluster, database.Cluster):
            raise NotAvailable(f"PostgreSQL is not usable: {cluster}")
        root = setup.root
        try:
            root.post(f"sys/mounts/{DB_MOUNT}", {"type": "database"})
        except ApiError as err:
            if err.status in (400, 404, 405):
                raise NotAvailable(f"no database secrets engine: {err}", not_implemented=True) from err
            raise
        fixture = cluster.fixture(setup.server.name.lower())
        role = cluster.role_name(setup.server.name[0].lower())
        # The pool as large as the most clients a workload runs (the raw pgbench baseline opens
        # one connection per client; the default of 4 would cap both servers at 4 statements
        # in flight); defaults everywhere else (verify_connection, idle connections, lifetime).
        # The same for both servers.
        root.post(f"{DB_MOUNT}/config/{DB_CONFIG}", {
            "plugin_name": "postgresql-database-plugin",
            "connection_url": cluster.connection_url(fixture),
            "username": fixture.admin, "password": fixture.password,
            "max_open_connections": DB_POOL, "allowed_roles": [role]})
        # revocation_statements left out: the default revocation (revoke privileges, drop).
        root.post(f"{DB_MOUNT}/roles/{role}", {
            "db_name": DB_CONFIG, "creation_statements": [database.CREATION],
            "default_ttl": "1h", "max_ttl": "24h"})
        hcl = (f'path "{DB_MOUNT}/creds/{role}" {{ capabilities = ["read"] }}\n'
               'path "sys/leases/revoke" { capabilities = ["update"] }\n')
        token = _policy_token(setup, "bench-db", hcl)
        client = setup.as_token(token)
        answer = client.get(f"{DB_MOUNT}/creds/{role}")
        username, lease = answer["data"]["username"], answer["lease_id"]
        _expect(bool(answer["data"]["password"]) and lease.startswith(f"{DB_MOUNT}/creds/{role}/"),
                "creds without a password or with a foreign lease id")
        _expect(cluster.roles_containing(role) == [username],
                f"the issued user {username!r} is not the one PostgreSQL user named after role "
                f"{role!r} (the leak check needs the role name in the username)")
        client.request("PUT", "sys/leases/revoke", {"lease_id": lease})
        _expect(cluster.roles_containing(role) == [], f"revoking left {username!r} in pg_roles")
        return {"token": token, "role": role, "fixture": fixture}
    return setup.once("db", make)


# After a run, leases issued just before wrk stopped are still out, and an issue wrk gave up on
# may still be completing in the server: revoke by prefix until no user of the role is left, or
# give up after this long and report what is left as leaked.
LEAK_DEADLINE = 15.0
# Seconds wrk runs past each measured window of a database workload, to revoke what is still out.
DB_DRAIN = 5


def _revoke_leftovers(setup: Setup, cluster: "database.Cluster", role: str) -> list[str]:
    deadline = time.monotonic() + LEAK_DEADLINE
    while True:
        try:
            setup.root.request("PUT", f"sys/leases/revoke-prefix/{DB_MOUNT}/creds/{role}", {})
        except (ApiError, OSError) as err:
            print(f"!! {setup.server.name}: revoke-prefix after the run: {err}", file=sys.stderr,
                  flush=True)
        left = cluster.roles_containing(role)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


def _db_creds(setup: Setup) -> Prepared:
    made = db_fixture(setup)
    cluster, role = setup.postgres, made["role"]
    hooks = Hooks(before=cluster.vacuum_catalogs,
                  after=lambda: _revoke_leftovers(setup, cluster, role),
                  pg_ticks=cluster.cpu_ticks, drain=DB_DRAIN)
    return Prepared({"BENCH_TOKEN": made["token"], "BENCH_CREDS_PATH": f"/v1/{DB_MOUNT}/creds/{role}"},
                    "service, creds + revoke policy", hooks)


BASELINE = "sys-health"
# Latency at one connection (one wrk thread): p50/p99 of a lone client, against the hello-world
# server and the server's own sys/health at one connection.
BASELINE_C1 = "sys-health-c1"
# The yardsticks: the only workloads the hello-world server runs (it answers nothing else).
# The same over TLS: every server's TLS listener, and the hello-world server with TLS.
BASELINE_TLS = "sys-health-tls"
HELLO_WORKLOADS = (BASELINE, BASELINE_C1, BASELINE_TLS)

WORKLOADS: list[Workload] = [
    Workload("sys-health", "sys-health.lua", "none", _unauthenticated("sys/health")),
    Workload("seal-status", "seal-status.lua", "none", _unauthenticated("sys/seal-status")),
    Workload("token-lookup-self", "token-lookup-self.lua", "service, `default` policy", setup_lookup_self),
    Workload("kv2-read-1k", "kv2-read-1k.lua", "service, read-only policy", _kv_read(root=False)),
    Workload("kv2-read-1k-root", "kv2-read-1k.lua", "root", _kv_read(root=True)),
    Workload("kv2-read-1k-audit", "kv2-read-1k.lua", "service, read-only policy, 1 file audit device",
             _kv_read_audited),
    Workload("kv2-write-1k", "kv2-write-1k.lua", "service, create+update policy", setup_kv_write),
    Workload("transit-encrypt-1k", "transit-encrypt-1k.lua", "service, transit policy", setup_transit_encrypt),
    Workload("transit-decrypt-1k", "transit-decrypt-1k.lua", "service, transit policy", setup_transit_decrypt),
    Workload("transit-encrypt-batch-100x1k", "transit-encrypt-batch.lua", "service, transit policy",
             setup_transit_encrypt_batch),
    Workload("login-approle", "login-approle.lua", "none (role_id + secret_id)", setup_login_approle),
    Workload("login-jwt", "login-jwt.lua", "none (RS256 JWT, bound claims)", setup_login_jwt),
    Workload(BASELINE_C1, "sys-health.lua", "none", _unauthenticated("sys/health"), connections=1,
             hello=BASELINE_C1),
    Workload("kv2-read-1k-c1", "kv2-read-1k.lua", "service, read-only policy", _kv_read(root=False),
             connections=1, hello=BASELINE_C1),
    Workload("token-lookup-self-c1", "token-lookup-self.lua", "service, `default` policy",
             setup_lookup_self, connections=1, hello=BASELINE_C1),
    Workload("transit-encrypt-1k-c1", "transit-encrypt-1k.lua", "service, transit policy",
             setup_transit_encrypt, connections=1, hello=BASELINE_C1),
    Workload(BASELINE_TLS, "sys-health.lua", "none", _unauthenticated("sys/health"), tls=True,
             hello=BASELINE_TLS),
    Workload("kv2-read-1k-tls", "kv2-read-1k.lua", "service, read-only policy", _kv_read(root=False),
             tls=True, hello=BASELINE_TLS),
    Workload("transit-encrypt-1k-tls", "transit-encrypt-1k.lua", "service, transit policy",
             setup_transit_encrypt, tls=True, hello=BASELINE_TLS),
    # Scale (issue 12): random reads over a large store vs a small one, and over keys with many
    # versions vs keys with one. Heavy: only when named.
    Workload("kv2-read-random-small", "kv2-read-random.lua", "service, read-only policy",
             _kv_read(root=False), heavy=True),
    Workload("kv2-read-random-large", "kv2-read-random.lua", "service, read-only policy",
             _kv_scale(SCALE_MOUNT, lambda s: s.scale.keys_for(s.server.name), lambda s: 1),
             heavy=True),
    Workload("kv2-read-fresh", "kv2-read-random.lua", "service, read-only policy",
             _kv_scale(FRESH_MOUNT, lambda s: s.scale.churn_keys, lambda s: 1), heavy=True),
    Workload("kv2-read-churned", "kv2-read-random.lua", "service, read-only policy",
             _kv_scale(CHURN_MOUNT, lambda s: s.scale.churn_keys, lambda s: s.scale.churn_versions),
             heavy=True),
    Workload("db-creds-c4", "db-creds-cycle.lua", "service, creds + revoke policy", _db_creds, clients=4),
    Workload("db-creds-c16", "db-creds-cycle.lua", "service, creds + revoke policy", _db_creds, clients=16),
    # Issue 13: the same KV v2 read and write as kv2-read-1k / kv2-write-1k, on the PostgreSQL
    # storage servers. Only when named.
    Workload("kv2-read-1k-pg", "kv2-read-1k.lua", "service, read-only policy", _kv_read(root=False),
             pg_storage=True),
    Workload("kv2-write-1k-pg", "kv2-write-1k.lua", "service, create+update policy", setup_kv_write,
             pg_storage=True),
]


# Issue 12's scale ratios: (workload, the workload it is divided by, what the ratio says).
# Naming one side in --workloads runs the other too.
SCALE_PAIRS = [("kv2-read-random-large", "kv2-read-random-small", "large store ÷ small store"),
               ("kv2-read-churned", "kv2-read-fresh", "churned keys ÷ fresh keys")]


def select(names: list[str] | None) -> list[Workload]:
    """The chosen workloads in table order; the sys-health baseline is always included. With no
    names: every workload but the heavy and the PostgreSQL storage ones."""
    if not names:
        return [w for w in WORKLOADS if not w.heavy and not w.pg_storage]
    known = {w.name for w in WORKLOADS}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"unknown workload(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    wanted = set(names) | {BASELINE}
    wanted |= {b for a, b, _ in SCALE_PAIRS if a in wanted} | {a for a, b, _ in SCALE_PAIRS if b in wanted}
    wanted |= {w.hello for w in WORKLOADS if w.name in wanted}
    return [w for w in WORKLOADS if w.name in wanted]
