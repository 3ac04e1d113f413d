"""`bench/run restart`: restart with many outstanding leases (issue 8, §1.6).

Both servers run on persistent storage with a config file (OpenBao: integrated raft; Tresor: the
embedded redb store), are initialised 1/1 and unsealed over HTTP, and get the same number of
service tokens with a TTL (each token is a lease in both). Then each server is stopped with
SIGTERM, started again, unsealed over HTTP, and the harness polls an authenticated request
(`auth/token/lookup-self` with one of the created tokens, i.e. a token whose lease must be known)
until it answers 200. Reported per server, median of the rounds:

- unseal → first authenticated 200: from sending `sys/unseal` to the first 200;
- start → first authenticated 200: from spawning the process;
- memory: RSS after creating the tokens, and after the restart once RSS is stable
  (per-lease memory = difference to the RSS before any token was created, divided by N).

Lease loading in the background is what the first figure measures: a server that loads every
lease before it serves pays for them here.
"""

from __future__ import annotations

import os
import statistics
import textwrap
import threading
import time
from dataclasses import dataclass, field

from . import procs, servers
from .api import ApiError, Client

TOKEN_TTL = "24h"  # outlives the run: nothing expires, the restart only has to load them


@dataclass
class Result:
    name: str
    create_seconds: float = 0.0
    rss_before_kib: int = 0
    rss_loaded_kib: int = 0
    rss_restarted_kib: int = 0
    unseal_to_auth_ms: list[float] = field(default_factory=list)
    start_to_auth_ms: list[float] = field(default_factory=list)


def rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _config(kind: str, workdir: str, port: int) -> str:
    path = os.path.join(workdir, f"{kind}.hcl")
    if kind == "openbao":
        return servers._write_raft_config(workdir, port, procs.free_port({port}))
    with open(path, "w") as out:
        out.write(textwrap.dedent(f"""\
            storage "embedded" {{
              path = "{os.path.join(workdir, 'tresor.redb')}"
            }}
            listener "tcp" {{
              address     = "127.0.0.1:{port}"
              tls_disable = true
            }}
            """))
    return path


class Node:
    """One server started from its config file, restartable, unsealed over HTTP."""

    def __init__(self, name: str, binary: str, kind: str, workdir: str):
        os.makedirs(workdir, exist_ok=True)
        self.name, self.binary, self.kind, self.workdir = name, binary, kind, workdir
        self.port = procs.free_port()
        self.config = _config(kind, workdir, self.port)
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = None
        self.unseal_key = ""
        self.root = ""
        self.log_path = os.path.join(workdir, f"{kind}.log")

    def start(self) -> float:
        with open(self.log_path, "ab") as log:
            self.proc = procs.spawn([self.binary, "server", f"-config={self.config}"],
                                    stdout=log, stderr=log, stdin=None)
        return time.monotonic()

    def stop(self) -> None:
        if self.proc is not None:
            procs.stop(self.proc, timeout=60)

    def wait_listening(self, timeout: float = 60) -> None:
        client = Client(self.url, "")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}")
            try:
                client.status("sys/seal-status")
                return
            except OSError:
                time.sleep(0.005)
        raise RuntimeError(f"{self.name} did not listen within {timeout}s")

    def init(self) -> None:
        init = Client(self.url, "").request("PUT", "sys/init",
                                            {"secret_shares": 1, "secret_threshold": 1})
        self.unseal_key, self.root = init["keys_base64"][0], init["root_token"]

    def unseal(self) -> float:
        sent = time.monotonic()
        Client(self.url, "").request("PUT", "sys/unseal", {"key": self.unseal_key})
        return sent

    def first_authenticated(self, token: str, timeout: float = 300) -> float:
        """Polls lookup-self until 200; returns the monotonic time of the 200."""
        return self.first_ok(token, "auth/token/lookup-self", timeout)

    def first_ok(self, token: str, path: str, timeout: float = 300) -> float:
        """Polls GET `path` until 200; returns the monotonic time of the 200."""
        client = Client(self.url, token, timeout=timeout)
        deadline = time.monotonic() + timeout
        while True:
            try:
                client.get(path)
                return time.monotonic()
            except (ApiError, OSError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.001)


def create_tokens(node: Node, count: int, threads: int = 32) -> list[str]:
    """`count` service tokens with a TTL, created by `threads` keep-alive clients."""
    tokens: list[str] = []
    lock = threading.Lock()
    errors: list[Exception] = []

    def worker(share: int) -> None:
        client = Client(node.url, node.root)
        mine = []
        try:
            for _ in range(share):
                auth = client.post("auth/token/create",
                                   {"policies": ["default"], "ttl": TOKEN_TTL})
                mine.append(auth["auth"]["client_token"])
        except Exception as err:  # reported after join
            errors.append(err)
        with lock:
            tokens.extend(mine)

    shares = [count // threads + (1 if i < count % threads else 0) for i in range(threads)]
    pool = [threading.Thread(target=worker, args=(s,)) for s in shares]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    if errors:
        raise RuntimeError(f"{node.name}: token creation failed: {errors[0]}")
    return tokens


def stable_rss(pid: int, settle: float = 2.0, timeout: float = 120) -> int:
    """RSS once it has not grown for `settle` seconds (background loading finished)."""
    deadline = time.monotonic() + timeout
    last, since = rss_kib(pid), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = rss_kib(pid)
        if now > last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= settle:
            return now
    return rss_kib(pid)


def run(bao: str, tresor: str, tmp: str, leases: int, rounds: int, log) -> list[Result]:
    nodes = [Node("OpenBao", bao, "openbao", os.path.join(tmp, "openbao")),
             Node("Tresor", tresor, "tresor", os.path.join(tmp, "tresor"))]
    results = []
    for node in nodes:
        result = Result(node.name)
        node.start()
        node.wait_listening()
        node.init()
        node.unseal()
        node.first_authenticated(node.root)
        result.rss_before_kib = stable_rss(node.proc.pid, settle=1.0)
        log(f"    {node.name:8} creating {leases:,} service tokens with ttl={TOKEN_TTL}")
        started = time.monotonic()
        tokens = create_tokens(node, leases)
        result.create_seconds = time.monotonic() - started
        result.rss_loaded_kib = rss_kib(node.proc.pid)
        log(f"    {node.name:8} created in {result.create_seconds:.1f} s "
            f"({leases / result.create_seconds:,.0f}/s); RSS {result.rss_loaded_kib / 1024:.0f} MiB")
        probe = tokens[len(tokens) // 2]
        for round_no in range(1, rounds + 1):
            node.stop()
            spawned = node.start()
            node.wait_listening()
            sent = node.unseal()
            answered = node.first_authenticated(probe)
            result.unseal_to_auth_ms.append((answered - sent) * 1000)
            result.start_to_auth_ms.append((answered - spawned) * 1000)
            log(f"    {node.name:8} restart {round_no}/{rounds}: unseal → first authenticated 200 "
                f"{result.unseal_to_auth_ms[-1]:.1f} ms; start → 200 {result.start_to_auth_ms[-1]:.1f} ms")
        result.rss_restarted_kib = stable_rss(node.proc.pid)
        node.stop()
        results.append(result)
    return results


def render(results: list[Result], leases: int, meta: list[str]) -> str:
    lines = ["### Restart with outstanding leases", ""]
    lines += [f"- {m}" for m in meta]
    lines += ["", "| server | leases | create (tokens/s) | unseal → first auth 200, median ms (runs) | "
              "start → first auth 200, median ms | RSS before / loaded / after restart (MiB) | "
              "memory per lease after restart |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        per_lease = (r.rss_restarted_kib - r.rss_before_kib) * 1024 / leases
        runs = ", ".join(f"{x:.1f}" for x in r.unseal_to_auth_ms)
        lines.append(
            f"| {r.name} | {leases:,} | {leases / r.create_seconds:,.0f} | "
            f"{statistics.median(r.unseal_to_auth_ms):.1f} ({runs}) | "
            f"{statistics.median(r.start_to_auth_ms):.1f} | "
            f"{r.rss_before_kib / 1024:.0f} / {r.rss_loaded_kib / 1024:.0f} / {r.rss_restarted_kib / 1024:.0f} | "
            f"{per_lease:,.0f} B |")
    by = {r.name: statistics.median(r.unseal_to_auth_ms) for r in results}
    if by.get("Tresor") and by.get("OpenBao"):
        lines += ["", f"Tresor is {by['OpenBao'] / by['Tresor']:.1f}× faster than OpenBao from unseal to "
                      f"the first authenticated answer."]
    return "\n".join(lines) + "\n"
