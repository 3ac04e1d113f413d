"""The fixture and the sequential client of bench/instructions/run.

    client.py setup ADDR            KV v2 at secret/, 1,000 keys of 1 KiB, transit key `bench`,
                                    one token per workload (the policies bench/run gives)
    client.py WORKLOAD ADDR N       N requests of one workload, each checked:
        read      GET secret/data/key-K, random K (fixed seed), read-only token
        write     POST secret/data/key-K of the same 1 KiB, random K, create+update token
        lookup    GET auth/token/lookup-self, a `default`-policy token
        transit   POST transit/encrypt/bench of 1 KiB, encrypt-only token
"""
import base64
import http.client
import json
import random
import sys
import time
import urllib.parse
import urllib.request

ROOT = "root"


def call(addr: str, method: str, path: str, body=None, token: str = ROOT):
    request = urllib.request.Request(
        f"{addr}/v1/{path}", method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"X-Vault-Token": token})
    with urllib.request.urlopen(request) as answer:
        raw = answer.read()
        return json.loads(raw) if raw else None


def secret_1k() -> dict:
    rng = random.Random(1)
    return {f"field{i}": base64.b64encode(rng.randbytes(90)).decode() for i in range(8)}


def setup(addr: str) -> None:
    deadline = time.monotonic() + 120
    while True:  # the server starts slowly under valgrind
        try:
            call(addr, "GET", "sys/health")
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    # A dev server already has KV v2 at secret/.
    if "secret/" not in call(addr, "GET", "sys/mounts")["data"]:
        call(addr, "POST", "sys/mounts/secret", {"type": "kv", "options": {"version": "2"}})
    for i in range(1000):
        for _ in range(100):
            try:
                call(addr, "POST", f"secret/data/key-{i}", {"data": secret_1k()})
                break
            except Exception:
                time.sleep(0.2)  # a fresh KV v2 mount upgrades for a moment
    call(addr, "POST", "sys/mounts/transit", {"type": "transit"})
    call(addr, "POST", "transit/keys/bench", {})
    tokens = {"lookup": token(addr, None, None)}
    for workload, policy in (
            ("read", 'path "secret/data/*" { capabilities = ["read"] }'),
            ("write", 'path "secret/data/*" { capabilities = ["create", "update"] }'),
            ("transit", 'path "transit/encrypt/bench" { capabilities = ["update"] }')):
        tokens[workload] = token(addr, f"bench-{workload}", policy)
    with open(token_file(addr), "w") as out:
        json.dump(tokens, out)


def token(addr: str, policy: str | None, hcl: str | None) -> str:
    if policy is None:
        body = {"policies": ["default"], "ttl": "24h"}
    else:
        call(addr, "PUT", f"sys/policies/acl/{policy}", {"policy": hcl})
        body = {"policies": [policy], "no_default_policy": True, "ttl": "24h"}
    return call(addr, "POST", "auth/token/create", body)["auth"]["client_token"]


def token_file(addr: str) -> str:
    return f"/tmp/tresor-bench-instructions-{urllib.parse.urlparse(addr).port}.token"


PLAINTEXT_1K = base64.b64encode(random.Random(3).randbytes(1024)).decode()


def requests(workload: str, rng: random.Random):
    """(method, path, body) of the next request of a workload."""
    if workload == "read":
        return "GET", f"/v1/secret/data/key-{rng.randrange(1000)}", None
    if workload == "write":
        return "POST", f"/v1/secret/data/key-{rng.randrange(1000)}", WRITE_BODY
    if workload == "lookup":
        return "GET", "/v1/auth/token/lookup-self", None
    if workload == "transit":
        return "POST", "/v1/transit/encrypt/bench", TRANSIT_BODY
    raise SystemExit(f"unknown workload {workload}")


WRITE_BODY = json.dumps({"data": secret_1k()})
TRANSIT_BODY = json.dumps({"plaintext": PLAINTEXT_1K})


def run(workload: str, addr: str, n: int) -> None:
    token = json.load(open(token_file(addr)))[workload]
    parsed = urllib.parse.urlparse(addr)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port)
    rng = random.Random(7)
    for _ in range(n):
        method, path, body = requests(workload, rng)
        conn.request(method, path, body=body, headers={"X-Vault-Token": token})
        answer = conn.getresponse()
        raw = answer.read()
        if answer.status != 200:
            raise SystemExit(f"{workload} answered {answer.status}: {raw[:200]!r}")


if __name__ == "__main__":
    if sys.argv[1] == "setup":
        setup(sys.argv[2])
    else:
        run(sys.argv[1], sys.argv[2], int(sys.argv[3]))
