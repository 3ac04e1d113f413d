"""One wrk run against one server, with the CPU-noise accounting of performance.md §3.

The noise share is the CPU time used by everything except the server and wrk during the
measured run: /proc/stat's busy time (steal included) minus the server's CPU (/proc/PID/stat)
minus wrk's (rusage of the reaped child), over the machine's total CPU time. A run above the
threshold is flagged; the summary prefers runs under it.

Database workloads (issue + revoke cycles against PostgreSQL) also subtract PostgreSQL's own
CPU (its postmaster and every backend, `database.Cluster.cpu_ticks`), report cycles per second
as the run's rate, and have hooks around every wrk run (vacuum the role catalogs before it,
revoke the leases left in flight after it, outside the measured time). Their raw SQL baseline,
pgbench, is measured by `measure_raw` with the same accounting.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import time
from dataclasses import dataclass, field
from typing import Callable

from . import procs, syncs

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
    count_syncs: bool = False  # count the server's fsync/fdatasync calls (persistent storage)


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
    server_cpu_s: float = 0.0  # CPU seconds (user + system) the server used during the run
    wrk_cpu: float = 0.0
    mean_ms: float | None = None
    pg_cpu: float | None = None  # database workloads: PostgreSQL's share of all CPU time
    cycles: int | None = None    # database workloads: issue + revoke cycles completed in the window
    cycles_total: int | None = None  # the same with the drain after the window (CPU per cycle)
    elapsed_s: float = 0.0       # the wall time the CPU shares are of
    leaked: list[str] = field(default_factory=list)  # roles left after everything was revoked
    failure: str | None = None
    syncs: int | None = None     # fsync + fdatasync calls by the server in the measured run
    syncs_unknown: str = ""      # why `syncs` is None when it was asked for

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def server_us_per_request(self) -> float | None:
        """Server CPU per request answered: steadier than req/s on a machine whose speed
        varies from run to run (a busy host slows both, but CPU time is only charged for work)."""
        return self.server_cpu_s / self.requests * 1e6 if self.requests and self.server_cpu_s else None


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


@dataclass
class Hooks:
    """Around every wrk run of a workload (warm-up included), outside the measured time."""
    before: Callable[[], None] | None = None
    # After the run: clean up; returns the PostgreSQL roles leaked by it (database workloads).
    after: Callable[[], list[str]] | None = None
    pg_ticks: Callable[[], int | None] | None = None  # PostgreSQL's CPU jiffies, if visible
    # Database workloads: wrk runs this many seconds past the measured window, in which the
    # script starts no new cycle and revokes the leases still out (BENCH_WINDOW = the window).
    drain: int = 0


def _wrk(url: str, script: str, env: dict[str, str], seconds: int, load: LoadOptions) -> tuple[dict | None, str]:
    """Run wrk once; returns (the BENCH_RESULT json, with the BENCH_DB counters of database
    workloads under "db", or None; and wrk's output for errors)."""
    argv = (["taskset", "-c", load.wrk_pin] if load.wrk_pin else []) + [
        "wrk", f"-t{load.threads}", f"-c{load.connections}", f"-d{seconds}s",
        f"--timeout={load.timeout}s", "-s", os.path.join(LUA_DIR, script), url]
    full_env = dict(os.environ, LUA_PATH=os.path.join(LUA_DIR, "?.lua") + ";;", **env)
    proc = procs.spawn(argv, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       stdin=subprocess.DEVNULL)
    output = proc.communicate()[0].decode(errors="replace")
    procs.forget(proc)
    result = None
    for line in output.splitlines():
        if line.startswith("BENCH_RESULT "):
            result = json.loads(line.split(" ", 1)[1])
        elif line.startswith("BENCH_DB ") and result is not None:
            result["db"] = json.loads(line.split(" ", 1)[1])
    return result, output


def measure(server, workload: str, round_no: int, script: str, env: dict[str, str],
            load: LoadOptions, hooks: Hooks | None = None) -> Run:
    """A warm-up run (discarded), then the measured run with CPU accounting."""
    hooks = hooks or Hooks()
    run = Run(workload, server.name, round_no)
    if not server.alive():
        run.failure = f"server had exited ({server.proc.returncode}) before this run"
        return run
    if load.quiet_wait > 0:
        wait_for_quiet(load.noise_limit, load.quiet_wait)
    if hooks.drain:
        env = dict(env)
    if load.warmup > 0:
        _call(hooks.before)
        if hooks.drain:
            env["BENCH_WINDOW"] = str(load.warmup)
        _wrk(server.url, script, env, load.warmup + hooks.drain, load)
        _call(hooks.after)
    if hooks.drain:
        env["BENCH_WINDOW"] = str(load.duration)
    _call(hooks.before)
    busy0, total0 = _machine_ticks()
    server0 = _process_ticks(server.pid)
    pg0 = hooks.pg_ticks() if hooks.pg_ticks else None
    wrk0 = _children_cpu_seconds()
    counter = syncs.SyncCounter(server.pid) if load.count_syncs else None
    result, output = _wrk(server.url, script, env, load.duration + hooks.drain, load)
    if counter is not None:
        run.syncs = counter.stop()
        run.syncs_unknown = counter.reason
    wrk_ticks = (_children_cpu_seconds() - wrk0) * CLOCK_TICKS
    pg1 = hooks.pg_ticks() if hooks.pg_ticks else None
    busy1, total1 = _machine_ticks()
    if not server.alive():
        run.failure = f"server exited ({server.proc.returncode}) during the run"
        return run
    server_ticks = _process_ticks(server.pid) - server0
    run.leaked = _call(hooks.after) or []
    if result is None:
        run.failure = "wrk failed: " + output.strip()[-300:]
        return run
    total = max(total1 - total0, 1)
    pg_ticks = max(pg1 - pg0, 0) if pg0 is not None and pg1 is not None else 0
    run.noise = max(busy1 - busy0 - server_ticks - wrk_ticks - pg_ticks, 0) / total
    run.server_cpu = server_ticks / total
    run.server_cpu_s = server_ticks / CLOCK_TICKS
    run.wrk_cpu = wrk_ticks / total
    run.pg_cpu = pg_ticks / total if pg0 is not None and pg1 is not None else None
    run.requests = result["requests"]
    seconds = result["duration_us"] / 1e6
    run.elapsed_s = seconds
    run.rps = result["requests"] / seconds
    run.p50_ms = result["p50_us"] / 1000
    run.p99_ms = result["p99_us"] / 1000
    run.mean_ms = result["mean_us"] / 1000
    run.errors = {k: v for k, v in result["errors"].items() if v}
    if "db" in result:  # a database workload: its rate is cycles per second of the window
        run.cycles = result["db"]["cycles"]
        run.cycles_total = run.cycles + result["db"]["drained"]
        run.rps = run.cycles / result["db"]["window_s"]
        if result["db"].get("unexpected"):
            run.errors["unexpected answer"] = result["db"]["unexpected"]
    return run


def _call(hook):
    return hook() if hook else None


def measure_raw(baseline, workload: str, round_no: int, clients: int, load: LoadOptions,
                pg_ticks: Callable[[], int | None]) -> Run:
    """The raw SQL baseline of a database workload: a pgbench warm-up, then the measured
    pgbench run at the same concurrency, with the same CPU accounting (pgbench in wrk's place)."""
    run = Run(workload, "raw SQL", round_no)
    if load.quiet_wait > 0:
        wait_for_quiet(load.noise_limit, load.quiet_wait)
    threads = max(1, min(load.threads, clients))
    if load.warmup > 0:
        baseline.cluster.vacuum_catalogs()
        baseline.run(clients, threads, load.warmup, load.wrk_pin)
    baseline.cluster.vacuum_catalogs()
    busy0, total0 = _machine_ticks()
    pg0 = pg_ticks()
    client0 = _children_cpu_seconds()
    figures, output = baseline.run(clients, threads, load.duration, load.wrk_pin)
    client_ticks = (_children_cpu_seconds() - client0) * CLOCK_TICKS
    pg1 = pg_ticks()
    busy1, total1 = _machine_ticks()
    run.leaked = baseline.leaked()
    if "tps" not in figures:
        run.failure = "pgbench failed: " + output.strip()[-300:]
        return run
    total = max(total1 - total0, 1)
    pg = max(pg1 - pg0, 0) if pg0 is not None and pg1 is not None else 0
    run.noise = max(busy1 - busy0 - client_ticks - pg, 0) / total
    run.wrk_cpu = client_ticks / total
    run.pg_cpu = pg / total if pg0 is not None and pg1 is not None else None
    run.rps = figures["tps"]
    run.cycles = run.cycles_total = int(figures.get("processed", 0))
    run.elapsed_s = load.duration
    run.requests = run.cycles
    run.mean_ms = figures.get("latency_ms")  # pgbench reports the mean latency per cycle only
    if figures.get("failed"):
        run.errors["failed transactions"] = int(figures["failed"])
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
