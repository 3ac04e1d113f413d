"""One wrk run against one server, with the CPU-noise accounting of performance.md §3.

The noise share is the CPU time used by everything except the server and wrk during the
measured run: /proc/stat's busy time (steal included) minus the server's CPU (/proc/PID/stat)
minus wrk's (rusage of the reaped child), over the machine's total CPU time. A run above the
threshold is flagged; the summary prefers runs under it.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import time
from dataclasses import dataclass, field

from . import procs

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
LUA_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lua")


@dataclass
class LoadOptions:
    duration: int
    warmup: int
    connections: int
    threads: int
    timeout: int
    wrk_pin: str | None  # CPU list for taskset in mode B
    quiet_wait: float = 0.0  # seconds to wait, at most, for the machine to calm down before a run
    noise_limit: float = 0.15


@dataclass
class Run:
    workload: str
    server: str
    round: int
    rps: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    requests: int = 0
    errors: dict = field(default_factory=dict)
    noise: float = 0.0       # share of all CPU time used by other processes
    server_cpu: float = 0.0  # share of all CPU time used by the server
    wrk_cpu: float = 0.0
    failure: str | None = None

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


def _machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies over all CPUs; iowait counts as idle, steal as busy (it is noise)."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = fields
    total = sum(fields)
    return total - idle - iowait, total


def _process_ticks(pid: int) -> int:
    """utime + stime of a process, all threads (fields 14 and 15 of /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as stat:
        after_name = stat.read().rsplit(")", 1)[1].split()
    return int(after_name[11]) + int(after_name[12])


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _wrk(url: str, script: str, env: dict[str, str], seconds: int, load: LoadOptions) -> tuple[dict | None, str]:
    """Run wrk once; returns (the BENCH_RESULT json, or None, and wrk's output for errors)."""
    argv = (["taskset", "-c", load.wrk_pin] if load.wrk_pin else []) + [
        "wrk", f"-t{load.threads}", f"-c{load.connections}", f"-d{seconds}s",
        f"--timeout={load.timeout}s", "-s", os.path.join(LUA_DIR, script), url]
    full_env = dict(os.environ, LUA_PATH=os.path.join(LUA_DIR, "?.lua") + ";;", **env)
    proc = procs.spawn(argv, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       stdin=subprocess.DEVNULL)
    output = proc.communicate()[0].decode(errors="replace")
    procs.forget(proc)
    for line in output.splitlines():
        if line.startswith("BENCH_RESULT "):
            return json.loads(line.split(" ", 1)[1]), output
    return None, output


def measure(server, workload: str, round_no: int, script: str, env: dict[str, str],
            load: LoadOptions) -> Run:
    """A warm-up run (discarded), then the measured run with CPU accounting."""
    run = Run(workload, server.name, round_no)
    if not server.alive():
        run.failure = f"server had exited ({server.proc.returncode}) before this run"
        return run
    if load.quiet_wait > 0:
        wait_for_quiet(load.noise_limit, load.quiet_wait)
    if load.warmup > 0:
        _wrk(server.url, script, env, load.warmup, load)
    busy0, total0 = _machine_ticks()
    server0 = _process_ticks(server.pid)
    wrk0 = _children_cpu_seconds()
    result, output = _wrk(server.url, script, env, load.duration, load)
    wrk_ticks = (_children_cpu_seconds() - wrk0) * CLOCK_TICKS
    busy1, total1 = _machine_ticks()
    if not server.alive():
        run.failure = f"server exited ({server.proc.returncode}) during the run"
        return run
    server_ticks = _process_ticks(server.pid) - server0
    if result is None:
        run.failure = "wrk failed: " + output.strip()[-300:]
        return run
    total = max(total1 - total0, 1)
    run.noise = max(busy1 - busy0 - server_ticks - wrk_ticks, 0) / total
    run.server_cpu = server_ticks / total
    run.wrk_cpu = wrk_ticks / total
    run.requests = result["requests"]
    run.rps = result["requests"] / (result["duration_us"] / 1e6)
    run.p50_ms = result["p50_us"] / 1000
    run.p99_ms = result["p99_us"] / 1000
    run.errors = {k: v for k, v in result["errors"].items() if v}
    return run


def wait_for_quiet(limit: float, max_wait: float) -> float:
    """Between runs both servers are idle, so the machine's busy share is other processes'.
    Sample it once a second until it is at most `limit` or `max_wait` seconds have passed; on a
    shared machine this keeps a neighbour's compile burst out of the measured run."""
    deadline = time.monotonic() + max_wait
    while True:
        busy0, total0 = _machine_ticks()
        time.sleep(1.0)
        busy1, total1 = _machine_ticks()
        share = (busy1 - busy0) / max(total1 - total0, 1)
        if share <= limit or time.monotonic() >= deadline:
            return share


def fsync_probe(directory: str, seconds: float = 2.0) -> tuple[float, float]:
    """fdatasync rate of the storage directory's disk: 8 KiB write + fdatasync in a loop, as in
    performance.md §2.3. Returns (syncs per second, median latency in ms). Durable-write
    numbers only mean something next to this, measured in the same run."""
    path = os.path.join(directory, "fsync-probe")
    block = os.urandom(8192)
    latencies = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            start = time.perf_counter()
            os.pwrite(fd, block, 0)
            os.fdatasync(fd)
            latencies.append(time.perf_counter() - start)
    finally:
        os.close(fd)
        os.unlink(path)
    latencies.sort()
    return len(latencies) / sum(latencies), latencies[len(latencies) // 2] * 1000
