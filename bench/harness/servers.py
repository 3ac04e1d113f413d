"""Starting OpenBao and Tresor side by side with the same storage class.

`--storage=memory`: both dev servers, in memory.
`--storage=persistent`: OpenBao on integrated raft (initialised 1/1 and unsealed over HTTP),
Tresor dev on its embedded redb store. DURABILITY says what each side does on a write, so write
numbers are compared knowingly (issue 3, item 6).
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import textwrap
import time
from dataclasses import dataclass, field

from . import procs
from .api import ApiError, Client

ROOT_TOKEN = "root"

DURABILITY = {
    "memory": {
        "OpenBao": "`bao server -dev`: in-memory storage (`inmem`), nothing reaches disk",
        "Tresor": "`tresor server -dev`: in-memory store, nothing reaches disk",
    },
    "persistent": {
        "OpenBao": (
            "integrated `raft` storage, default settings (single node): a write is acknowledged "
            "after the raft log and the FSM (both bbolt) are fsynced; peer-bench.md measured "
            "about 1 fdatasync per KV v2 write at c=64 and 4 at c=1"
        ),
        "Tresor": (
            "`tresor server -dev -dev-store=embedded:PATH`: one redb file, "
            "`Durability::Immediate` (fsync on each commit); one writer thread group-commits "
            "all queued writes, and a write is acknowledged only after its batch's commit"
        ),
    },
}


@dataclass
class Server:
    name: str
    url: str
    token: str
    proc: subprocess.Popen
    log_path: str
    command: str
    version: str = "?"
    extra: dict = field(default_factory=dict)
    # The same server seen through its TLS listener (the TLS workloads), if it has one.
    tls: "Server | None" = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def client(self, token: str | None = None) -> Client:
        return Client(self.url, token if token is not None else self.token)

    def log_tail(self, lines: int = 25) -> str:
        try:
            with open(self.log_path, errors="replace") as log:
                return "".join(log.readlines()[-lines:])
        except OSError:
            return ""


def _launch(name: str, argv: list[str], pin: str | None, workdir: str) -> tuple[subprocess.Popen, str]:
    """Start a server with its output in a log file; `pin` is a CPU list for taskset (mode B)."""
    log_path = os.path.join(workdir, f"{name.lower()}.log")
    full = (["taskset", "-c", pin] if pin else []) + argv
    with open(log_path, "wb") as log:
        proc = procs.spawn(full, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    return proc, log_path


def wait_active(server: Server, timeout: float = 60.0) -> None:
    """Wait until sys/health answers 200 (initialised, unsealed, active)."""
    deadline = time.monotonic() + timeout
    client = server.client()
    last = "no answer"
    while time.monotonic() < deadline:
        if not server.alive():
            raise RuntimeError(f"{server.name} exited with {server.proc.returncode}:\n{server.log_tail()}")
        try:
            status = client.status("sys/health")
            if status == 200:
                return
            last = f"sys/health answered {status}"
        except OSError as err:
            last = str(err)
        time.sleep(0.1)
    raise RuntimeError(f"{server.name} not active after {timeout:.0f}s ({last}):\n{server.log_tail()}")


@dataclass(frozen=True)
class Tls:
    """The run's self-signed certificate (PEM files), served by every TLS listener."""
    cert: str
    key: str


def self_signed(directory: str) -> Tls:
    """A P-256 certificate for 127.0.0.1, made with openssl in `directory` (the run's temp dir)."""
    os.makedirs(directory, exist_ok=True)
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    return Tls(cert, key)


def tls_listener(tls: Tls | None, port: int) -> str:
    """An HCL listener block on `port` serving the run's certificate (empty without TLS)."""
    if tls is None:
        return ""
    return textwrap.dedent(f"""\
        listener "tcp" {{
          address       = "127.0.0.1:{port}"
          tls_cert_file = "{tls.cert}"
          tls_key_file  = "{tls.key}"
        }}
        """)


def _attach_tls(server: Server, tls: Tls | None, port: int) -> None:
    """Point server.tls at its TLS listener and check that it answers."""
    if tls is None:
        return
    server.tls = dataclasses.replace(server, url=f"https://127.0.0.1:{port}", tls=None)
    wait_active(server.tls)


def start_openbao(bao: str, storage: str, workdir: str, pin: str | None,
                  tls: Tls | None = None) -> Server:
    port, tls_port = procs.free_port(), procs.free_port()
    if storage == "memory":
        # OpenBao 2 refuses sys/audit/:path even in dev mode without this (kv2-read-1k-audit);
        # the file's listener is added to the dev listener.
        extra = os.path.join(workdir, "openbao-dev.hcl")
        with open(extra, "w") as out:
            out.write("unsafe_allow_api_audit_creation = true\n" + tls_listener(tls, tls_port))
        argv = [bao, "server", "-dev", f"-dev-root-token-id={ROOT_TOKEN}",
                f"-dev-listen-address=127.0.0.1:{port}", f"-config={extra}"]
        proc, log = _launch("OpenBao", argv, pin, workdir)
        server = Server("OpenBao", f"http://127.0.0.1:{port}", ROOT_TOKEN, proc, log, "bao " + " ".join(argv[1:]))
        wait_active(server)
        _attach_tls(server, tls, tls_port)
        return server
    config = _write_raft_config(workdir, port, procs.free_port({port, tls_port}),
                                tls_listener(tls, tls_port))
    argv = [bao, "server", f"-config={config}"]
    proc, log = _launch("OpenBao", argv, pin, workdir)
    server = Server("OpenBao", f"http://127.0.0.1:{port}", "", proc, log,
                    "bao " + " ".join(argv[1:]) + " (raft; init 1/1 + unseal over HTTP)")
    server.token = _init_and_unseal(server)
    wait_active(server)
    _attach_tls(server, tls, tls_port)
    return server


def _write_raft_config(workdir: str, port: int, cluster_port: int, more: str = "") -> str:
    raft_dir = os.path.join(workdir, "openbao-raft")
    os.makedirs(raft_dir, exist_ok=True)
    path = os.path.join(workdir, "openbao.hcl")
    with open(path, "w") as out:
        out.write(textwrap.dedent(f"""\
            storage "raft" {{
              path    = "{raft_dir}"
              node_id = "n1"
            }}
            listener "tcp" {{
              address         = "127.0.0.1:{port}"
              cluster_address = "127.0.0.1:{cluster_port}"
              tls_disable     = true
            }}
            api_addr     = "http://127.0.0.1:{port}"
            cluster_addr = "https://127.0.0.1:{cluster_port}"
            unsafe_allow_api_audit_creation = true
            """) + more)
    return path


def _init_and_unseal(server: Server, timeout: float = 60.0) -> str:
    """PUT sys/init (1 share, threshold 1) then sys/unseal; returns the root token."""
    client = server.client("")
    deadline = time.monotonic() + timeout
    while True:  # the listener comes up a moment after the process starts
        if not server.alive():
            raise RuntimeError(f"{server.name} exited with {server.proc.returncode}:\n{server.log_tail()}")
        try:
            init = client.request("PUT", "sys/init", {"secret_shares": 1, "secret_threshold": 1})
            break
        except (OSError, ApiError) as err:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{server.name} init failed: {err}\n{server.log_tail()}") from err
            time.sleep(0.2)
    client.request("PUT", "sys/unseal", {"key": init["keys_base64"][0]})
    return init["root_token"]


def start_tresor(binary: str, storage: str, workdir: str, pin: str | None,
                 tls: Tls | None = None) -> Server:
    port, tls_port = procs.free_port(), procs.free_port()
    argv = [binary, "server", "-dev", f"-dev-root-token-id={ROOT_TOKEN}",
            f"-dev-listen-address=127.0.0.1:{port}"]
    if storage == "persistent":
        argv.append(f"-dev-store=embedded:{os.path.join(workdir, 'tresor.redb')}")
    if tls is not None:  # -dev -config: the file's TLS listener beside the dev listener
        extra = os.path.join(workdir, "tresor-tls.hcl")
        with open(extra, "w") as out:
            out.write(tls_listener(tls, tls_port))
        argv.append(f"-config={extra}")
    proc, log = _launch("Tresor", argv, pin, workdir)
    server = Server("Tresor", f"http://127.0.0.1:{port}", ROOT_TOKEN, proc, log, "tresor " + " ".join(argv[1:]))
    wait_active(server)
    _attach_tls(server, tls, tls_port)
    return server


# ---- the PostgreSQL storage workloads' servers (kv2-read-1k-pg, kv2-write-1k-pg) ----
#
# Four servers, each started from a config file, initialised 1/1 and unsealed over HTTP, with the
# same listener block: only the storage block differs. OpenBao and Tresor each use a database of
# their own on the same PostgreSQL; Tresor with ha_enabled a third one (a single node, so it
# takes the lock and is the active node); Tresor on its embedded store is the reference.

PG_DURABILITY = (
    "both answer a write only once PostgreSQL has committed it; what a commit promises is "
    "PostgreSQL's (`fsync`, `synchronous_commit`, shown above)"
)


def postgresql_storage(url: str, pool: int, ha: bool = False) -> str:
    """The storage block of a server on PostgreSQL (`url` holds the role's password): at most
    `pool` connections, all kept open; OpenBao and Tresor read these keys alike.

    Both backends default to max_parallel = 128 connections, and three servers keep theirs
    open between runs: more than PostgreSQL's default max_connections (100). So every
    PostgreSQL server gets the same smaller pool (--pg-max-parallel), kept open
    (max_idle_connections equal to it): OpenBao would otherwise keep only Go's default of 2
    idle connections and reconnect for most operations under load (peer-bench.md: 435 reads/s
    instead of 3,263)."""
    lines = [f'  connection_url = "{url}"', f'  max_parallel = "{pool}"',
             f'  max_idle_connections = "{pool}"']
    if ha:
        lines.append('  ha_enabled = "true"')
    return 'storage "postgresql" {\n' + "\n".join(lines) + "\n}\n"


def embedded_storage(workdir: str) -> str:
    return f'storage "embedded" {{\n  path = "{os.path.join(workdir, "tresor.redb")}"\n}}\n'


def _write_config(workdir: str, file_name: str, storage_hcl: str, port: int) -> str:
    """A config file: `storage_hcl`, a plain listener on `port`, and api_addr (which
    ha_enabled needs; the others ignore it). The file may hold a password: mode 0600."""
    path = os.path.join(workdir, file_name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(storage_hcl + textwrap.dedent(f"""\
            listener "tcp" {{
              address     = "127.0.0.1:{port}"
              tls_disable = true
            }}
            api_addr = "http://127.0.0.1:{port}"
            """))
    return path


def start_configured(name: str, binary: str, label: str, storage_hcl: str, workdir: str,
                     pin: str | None) -> Server:
    """`<binary> server -config=FILE` with `storage_hcl`, initialised 1/1 and unsealed over
    HTTP, once sys/health answers 200 (active). `label` is the binary's name in the report."""
    os.makedirs(workdir, exist_ok=True)
    port = procs.free_port()
    config = _write_config(workdir, f"{label}.hcl", storage_hcl, port)
    argv = [binary, "server", f"-config={config}"]
    proc, log = _launch(name.replace(" ", "-"), argv, pin, workdir)
    server = Server(name, f"http://127.0.0.1:{port}", "", proc, log,
                    f"{label} server -config={config} (init 1/1 + unseal over HTTP)")
    server.token = _init_and_unseal(server)
    wait_active(server)
    fill_version(server)
    return server


def start_hello(binary: str, workdir: str, pin: str | None, tls: Tls | None = None) -> Server:
    """The hello-world yardstick (bench/hello): GET /v1/sys/health with a fixed body, nothing
    else. With `tls`, a second hello process serving it over TLS is its `tls` view."""
    port = procs.free_port()
    argv = [binary, f"127.0.0.1:{port}"]
    proc, log = _launch("hello", argv, pin, workdir)
    server = Server("hello", f"http://127.0.0.1:{port}", "", proc, log,
                    "tresor-bench-hello " + " ".join(argv[1:]))
    wait_active(server)
    if tls is not None:
        tls_port = procs.free_port()
        argv = [binary, f"127.0.0.1:{tls_port}", tls.cert, tls.key]
        proc, log = _launch("hello-tls", argv, pin, workdir)
        server.tls = Server("hello", f"https://127.0.0.1:{tls_port}", "", proc, log,
                            "tresor-bench-hello " + " ".join(argv[1:]))
        wait_active(server.tls)
    return server


def fill_version(server: Server) -> None:
    """The version the server reports itself (sys/health), as run."""
    health = server.client().get("sys/health") or {}
    server.version = str(health.get("version", "?"))
