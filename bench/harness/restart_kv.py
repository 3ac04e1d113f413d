"""`bench/run --workloads restart-kv`: restart time and memory with a large KV store (issue 12).

Each server runs from a config file on persistent storage (OpenBao: integrated raft, never the
dev in-memory store; Tresor: the embedded store with its default cache), is initialised 1/1 and
unsealed over HTTP, and gets N KV v2 secrets of 1 KiB, bulk-loaded by pipelined HTTP clients.
Then it is stopped with SIGTERM and started again, `--rounds` times; the harness unseals it and
polls a read of one of the secrets until it answers 200. Reported per server and N:

- load: writes per second while loading;
- RSS before loading, after loading (once stable), and after the last restart (once stable);
- unseal → first read 200 and start → first read 200, median of the restarts.

N is `--scale-keys-compared` (default 100,000) for OpenBao and Tresor side by side, then
`--scale-keys` (default 1,000,000) for Tresor alone.
"""

from __future__ import annotations

import json
import os
import statistics
from dataclasses import dataclass, field

from . import kvload, restart
from .api import Client

NAME = "restart-kv"
MOUNT = "bench-kv-restart"


@dataclass
class Result:
    name: str
    keys: int
    load_seconds: float = 0.0
    rss_before_kib: int = 0
    rss_loaded_kib: int = 0
    rss_restarted_kib: int = 0
    unseal_to_read_ms: list[float] = field(default_factory=list)
    start_to_read_ms: list[float] = field(default_factory=list)


def plan(bao: str, tresor: str, scale: kvload.ScaleOptions) -> list[tuple[str, str, str, int]]:
    """(name, binary, config kind, N) of every measurement, in order."""
    runs = [("OpenBao", bao, "openbao", scale.keys_compared),
            ("Tresor", tresor, "tresor", scale.keys_compared)]
    if scale.keys != scale.keys_compared:
        runs.append(("Tresor", tresor, "tresor", scale.keys))
    return runs


def run(bao: str, tresor: str, tmp: str, scale: kvload.ScaleOptions, rounds: int, body: bytes,
        log) -> list[Result]:
    results = []
    for name, binary, kind, keys in plan(bao, tresor, scale):
        workdir = os.path.join(tmp, f"{kind}-{keys}")
        results.append(measure(restart.Node(name, binary, kind, workdir), keys, rounds, body, log))
    return results


def measure(node: restart.Node, keys: int, rounds: int, body: bytes, log) -> Result:
    result = Result(node.name, keys)
    node.start()
    node.wait_listening()
    node.init()
    node.unseal()
    node.first_ok(node.root, "sys/health")  # 200 only once active (raft has elected itself)
    kvload.mount(Client(node.url, node.root), MOUNT)
    result.rss_before_kib = restart.stable_rss(node.proc.pid, settle=1.0)
    result.load_seconds = kvload.fill(node.name, node.url, node.root, MOUNT, keys, 1, body)
    result.rss_loaded_kib = restart.stable_rss(node.proc.pid, settle=1.0)
    probe = f"{MOUNT}/data/key-{keys // 2}"
    for round_no in range(1, rounds + 1):
        restart_once(node, probe, result)
        log(f"    {node.name:8} N={keys:,} restart {round_no}/{rounds}: unseal → first read "
            f"{result.unseal_to_read_ms[-1]:.1f} ms; start → first read {result.start_to_read_ms[-1]:.1f} ms")
    result.rss_restarted_kib = restart.stable_rss(node.proc.pid)
    node.stop()
    return result


def restart_once(node: restart.Node, probe: str, result: Result) -> None:
    node.stop()
    spawned = node.start()
    node.wait_listening()
    sent = node.unseal()
    answered = node.first_ok(node.root, probe)
    result.unseal_to_read_ms.append((answered - sent) * 1000)
    result.start_to_read_ms.append((answered - spawned) * 1000)


def render(results: list[Result], meta: list[str]) -> str:
    lines = ["### Restart and memory with a large KV v2 store", ""]
    lines += [f"- {m}" for m in meta]
    lines += ["", "| server | secrets | load (writes/s) | unseal → first read, median ms (runs) | "
              "start → first read, median ms | RSS before / loaded / after restart (MiB) |",
              "|---|---:|---:|---:|---:|---:|"]
    for r in results:
        runs = ", ".join(f"{x:.1f}" for x in r.unseal_to_read_ms)
        lines.append(
            f"| {r.name} | {r.keys:,} | {r.keys / max(r.load_seconds, 1e-9):,.0f} | "
            f"{statistics.median(r.unseal_to_read_ms):.1f} ({runs}) | "
            f"{statistics.median(r.start_to_read_ms):.1f} | "
            f"{r.rss_before_kib / 1024:.0f} / {r.rss_loaded_kib / 1024:.0f} / "
            f"{r.rss_restarted_kib / 1024:.0f} |")
    return "\n".join(lines) + "\n"


def secret_body(data: dict) -> bytes:
    return json.dumps({"data": data}).encode()
