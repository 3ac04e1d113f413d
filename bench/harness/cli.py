"""bench/run: build, install, start both servers, set up, measure interleaved rounds, report."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile

from . import database, kvload, procs, report, restart, restart_kv, servers, workloads
from .api import ApiError
from .measure import Hooks, LoadOptions, fsync_probe, measure, measure_raw

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="bench/run",
        description="OpenBao vs Tresor on this machine, same run, same storage class (see BENCHMARKS.md).")
    p.add_argument("--storage", choices=["memory", "persistent"], default="memory",
                   help="memory: both dev servers in memory; persistent: OpenBao raft vs Tresor embedded redb")
    p.add_argument("--mode", choices=["A", "B"], default="A",
                   help="A: unpinned; B: server on CPU 0, wrk on CPU 1 with one thread")
    p.add_argument("--duration", type=int, default=10, help="seconds per measured run (default 10)")
    p.add_argument("--warmup", type=int, default=3, help="seconds of unmeasured warm-up before each run (default 3)")
    p.add_argument("--connections", type=int, default=64, help="wrk connections (default 64)")
    p.add_argument("--threads", type=int, help="wrk threads (default: nproc in mode A, 1 in mode B)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are reported (default 3)")
    p.add_argument("--keys", type=int, default=1000, help="KV v2 keys to rotate over (default 1000)")
    p.add_argument("--timeout", type=int, default=10, help="wrk per-request timeout in seconds (default 10)")
    p.add_argument("--max-noise", type=float, default=15.0,
                   help="flag runs where other processes used more than this %% of the CPU (default 15)")
    p.add_argument("--quiet-wait", type=float, default=0, metavar="S",
                   help="before each run, wait up to S seconds for other processes to use less "
                        "than --max-noise of the CPU (default 0: do not wait)")
    p.add_argument("--workloads",
                   help="comma-separated subset (sys-health is always run); the heavy scale "
                        "workloads (kv2-read-random-small/-large, kv2-read-fresh/-churned) and "
                        "the PostgreSQL storage workloads (kv2-read-1k-pg, kv2-write-1k-pg) run "
                        "only when named here, and restart-kv (restart and memory with a large "
                        "store) only on its own")
    p.add_argument("--out", help="also write the markdown results to this file")
    p.add_argument("--update-benchmarks", action="store_true",
                   help="rewrite this storage+mode's results block in BENCHMARKS.md")
    p.add_argument("--no-build", action="store_true", help="use target/release/tresor as it is")
    p.add_argument("--tresor-bin", help="Tresor binary to use instead of building")
    p.add_argument("--bao-bin", help="bao binary to use instead of scripts/install-peers.sh")
    p.add_argument("--hello-bin", help="hello-world yardstick binary (bench/hello) to use instead of building")
    p.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (server logs, stores)")
    p.add_argument("--postgres", default="127.0.0.1:5432", metavar="HOST:PORT",
                   help="the PostgreSQL of the database and PostgreSQL storage workloads "
                        "(default 127.0.0.1:5432)")
    p.add_argument("--pg-superuser", default="postgres",
                   help="superuser that creates each server's database and admin role, without "
                        "a password (trust) or with PGPASSWORD (default postgres)")
    p.add_argument("--pg-max-parallel", type=int, default=16, metavar="N",
                   help="max_parallel and max_idle_connections of every server on PostgreSQL "
                        "storage (the kv2-*-pg workloads; default 16: three such servers keep "
                        "their connections open, and PostgreSQL allows 100 by default)")
    p.add_argument("--restart-leases", type=int, metavar="N",
                   help="instead of the load workloads: create N service tokens with a TTL (leases) "
                        "on persistent OpenBao and Tresor, restart each --rounds times, and time "
                        "unseal -> first authenticated answer (issue 8, section 1.6)")
    add_scale_args(p)
    args = p.parse_args(argv)
    if args.rounds < 1 or args.duration < 1 or args.connections < 1 or args.keys < 1 or args.pg_max_parallel < 1:
        p.error("--rounds, --duration, --connections, --keys and --pg-max-parallel must be at least 1")
    if min(args.scale_keys, args.scale_keys_compared, args.churn_keys, args.churn_versions) < 1:
        p.error("--scale-keys, --scale-keys-compared, --churn-keys and --churn-versions must be at least 1")
    host, _, port = args.postgres.rpartition(":")
    if not host or not port.isdigit():
        p.error("--postgres must be HOST:PORT")
    return args


def add_scale_args(p: argparse.ArgumentParser) -> None:
    """The sizes of the heavy workloads (never run unless named in --workloads)."""
    p.add_argument("--scale-keys", type=int, default=1_000_000, metavar="N",
                   help="secrets of 1 KiB in Tresor's large store: kv2-read-random-large, and "
                        "restart-kv for Tresor alone (default 1,000,000)")
    p.add_argument("--scale-keys-compared", type=int, default=100_000, metavar="N",
                   help="the same for OpenBao, and restart-kv side by side (default 100,000)")
    p.add_argument("--churn-keys", type=int, default=100_000, metavar="N",
                   help="keys of kv2-read-fresh and kv2-read-churned (default 100,000)")
    p.add_argument("--churn-versions", type=int, default=10, metavar="V",
                   help="versions written per key for kv2-read-churned (default 10)")


def scale_options(args) -> kvload.ScaleOptions:
    return kvload.ScaleOptions(keys=args.scale_keys, keys_compared=args.scale_keys_compared,
                               churn_keys=args.churn_keys, churn_versions=args.churn_versions)


# ---- tools ----

def target_dir() -> str:
    """Cargo's target directory: CARGO_TARGET_DIR when set (relative to the workspace), else
    target/ in the workspace."""
    return os.path.join(ROOT, os.environ.get("CARGO_TARGET_DIR") or "target")


HELLO_PACKAGE = "tresor-bench-hello"


def build_tresor(args) -> tuple[str, str, str]:
    """The Tresor binary, the hello-world yardstick's binary (bench/hello), and how Tresor was
    obtained (for the report). Both are built by one cargo command with the same release
    profile unless --no-build; --tresor-bin / --hello-bin name existing binaries instead."""
    release = os.path.join(target_dir(), "release")
    hello = os.path.abspath(args.hello_bin) if args.hello_bin else os.path.join(release, HELLO_PACKAGE)
    if args.tresor_bin:
        binary = os.path.abspath(args.tresor_bin)
        origin = f"`{args.tresor_bin}` (given with --tresor-bin)"
    else:
        binary = os.path.join(release, "tresor")
        origin = f"`{os.path.relpath(binary, ROOT)}` as found (--no-build)"
    packages = ([] if args.tresor_bin else ["-p", "tresor"]) + ([] if args.hello_bin else ["-p", HELLO_PACKAGE])
    if not args.no_build and packages:
        if not args.tresor_bin:
            origin = "built by this run from the working tree (`cargo build --release -p tresor`)"
        log(f"==> cargo build --release {' '.join(packages)} (fat LTO: minutes on 2 cores)")
        subprocess.run(["cargo", "build", "--release", *packages], cwd=ROOT, check=True)
    if not os.access(binary, os.X_OK):
        raise SystemExit(f"no Tresor binary at {binary}")
    if not os.access(hello, os.X_OK):
        raise SystemExit(f"no hello-world yardstick at {hello}: build it with "
                         f"`cargo build --release -p {HELLO_PACKAGE}` or give --hello-bin")
    return binary, hello, origin


BATCH_WORKLOAD = "transit-encrypt-batch-100x1k"


def aead_baseline(args) -> float | None:
    """Raw AES-256-GCM bytes/s of `ring` on one core (crates/tresor-core/examples/aead_throughput.rs),
    the yardstick for the transit batch workload; None if it cannot be built or run."""
    binary = os.path.join(target_dir(), "release", "examples", "aead_throughput")
    if not args.no_build:
        log("==> cargo build --release -p tresor-core --example aead_throughput")
        subprocess.run(["cargo", "build", "--release", "-p", "tresor-core", "--example",
                        "aead_throughput"], cwd=ROOT, check=True)
    if not os.access(binary, os.X_OK):
        log(f"!! no AEAD baseline binary at {binary}")
        return None
    argv = (["taskset", "-c", "0"] if args.mode == "B" else []) + [binary, "3"]
    out = subprocess.run(argv, stdout=subprocess.PIPE, text=True, check=True).stdout
    for line in out.splitlines():
        if line.startswith("AEAD_BASELINE "):
            return float(json.loads(line.split(" ", 1)[1])["bytes_per_sec"])
    return None


def batch_note(cells, baseline: float | None) -> str | None:
    """Plaintext throughput of the batch workload, against the raw AEAD baseline."""
    items = workloads.BATCH_ITEMS * 1024
    parts = []
    for server in report.SERVERS:
        cell = cells.get((BATCH_WORKLOAD, server))
        rps = cell.median("rps") if cell else None
        if rps is None:
            continue
        text = f"{server} {rps * items / 2**20:,.0f} MiB/s of plaintext"
        if baseline:
            text += f" ({rps * items / baseline:.2f} × raw AES-256-GCM)"
        parts.append(text)
    if not parts:
        return None
    raw = (f"raw AES-256-GCM of `ring` on one core, 1 KiB messages, measured in this run: "
           f"{baseline / 2**20:,.0f} MiB/s" if baseline else "raw AES-256-GCM baseline not measured")
    return f"`{BATCH_WORKLOAD}` ({workloads.BATCH_ITEMS} × 1 KiB per request): " + "; ".join(parts) + f"; {raw}."


def scale_note(cells) -> str | None:
    """Random reads over the large store against the small one, and over churned keys against
    fresh ones, per server, paired per round."""
    parts = []
    for top, bottom, what in workloads.SCALE_PAIRS:
        for server in report.SERVERS:
            a, b = cells.get((top, server)), cells.get((bottom, server))
            ratio = report.paired_ratio(a, b) if a and b else None
            if ratio is not None:
                parts.append(f"{server} {what} {ratio:.2f}")
    return ("Scale (reads per second, paired per round): " + "; ".join(parts) + ".") if parts else None


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    log("==> installing wrk from Debian")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    apt_env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = sudo + ["apt-get", "install", "-y", "wrk"]
    if subprocess.run(install, env=apt_env).returncode != 0:  # stale package lists: update once
        subprocess.run(sudo + ["apt-get", "update"], env=apt_env, check=True)
        subprocess.run(install, env=apt_env, check=True)
    return shutil.which("wrk") or "wrk"


def ensure_openbao(args) -> str:
    if args.bao_bin:
        return os.path.abspath(args.bao_bin)
    log("==> scripts/install-peers.sh")
    out = subprocess.run([os.path.join(ROOT, "scripts", "install-peers.sh")],
                         check=True, stdout=subprocess.PIPE, text=True).stdout
    return out.strip().splitlines()[-1]


def _first_line(argv: list[str]) -> str:
    out = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True).stdout
    return out.strip().splitlines()[0] if out.strip() else "?"


# ---- metadata for the report ----

def machine() -> str:
    model = "?"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as meminfo:
        mem_kib = int(meminfo.readline().split()[1])
    return (f"{os.cpu_count()} CPUs ({model}), {mem_kib / 2**20:.0f} GiB RAM, "
            f"Linux {platform.release()}")


def git_commit() -> str:
    def git(*a):
        return subprocess.run(["git", *a], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    head = git("rev-parse", "--short", "HEAD").stdout.strip() or "?"
    dirty = git("diff", "--quiet", "HEAD").returncode != 0
    return head + (" (with uncommitted changes to tracked files)" if dirty else "")


def hide(text: str, tmp: str) -> str:
    return text.replace(tmp, "$TMP")


def metadata(args, argv, versions, pair, load, tmp, fsync) -> list[str]:
    bao_version, tresor_version, wrk_version = versions
    openbao, tresor = pair
    hide_tmp = lambda text: text.replace(tmp, "$TMP")
    mode = ("A (unpinned)" if args.mode == "A"
            else "B (server `taskset -c 0`, wrk `taskset -c 1`)")
    lines = [
        f"Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; commit {git_commit()}",
        f"Machine: {machine()}",
        f"Command: `bench/run {shlex.join(argv)}`".replace("`bench/run `", "`bench/run`"),
        f"OpenBao: {bao_version} (sys/health: {openbao.version}); `{hide_tmp(openbao.command)}`",
        f"Tresor: {tresor_version} (sys/health: {tresor.version}); `{hide_tmp(tresor.command)}`",
        f"Storage: **{args.storage}**. OpenBao: {servers.DURABILITY[args.storage]['OpenBao']}. "
        f"Tresor: {servers.DURABILITY[args.storage]['Tresor']}.",
    ]
    if fsync:
        lines.append(f"Disk: fdatasync of 8 KiB in the store's directory, just before the runs: "
                     f"{fsync[0]:,.0f}/s, p50 {fsync[1]:.2f} ms")
    lines += [
        f"Load: {wrk_version.split(' Copyright')[0]}, mode {mode}, `-t{load.threads} -c{load.connections}`, "
        f"{load.duration} s measured after {load.warmup} s warm-up, {args.rounds} round(s), median; "
        f"servers alternate run by run and swap who goes first every round; KV: {args.keys} keys × 1 KiB",
        f"Noise: CPU share used by other processes during each measured run (/proc/stat minus "
        f"server and wrk); runs over {args.max_noise:.0f} % are flagged and left out of medians "
        f"when a quieter run exists" + (f"; each run waited up to {args.quiet_wait:.0f} s for a "
                                        f"quiet second first" if args.quiet_wait else ""),
    ]
    return lines


# ---- the run ----

def set_up(server, chosen, keys, cells, postgres, scale) -> None:
    setup = workloads.Setup(server, keys, postgres, scale)
    for workload in chosen:
        cell = cells[(workload.name, server.name)]
        try:
            prepared = workloads.prepare(workload, setup)
            cell.token_type, cell.env, cell.hooks = prepared.token_type, prepared.env, prepared.hooks
            log(f"    {server.name:8} {workload.name:20} ready ({prepared.token_type})")
        except workloads.NotAvailable as err:
            cell.token_type = workload.token_type
            cell.unavailable, cell.not_implemented = str(err), err.not_implemented
            log(f"    {server.name:8} {workload.name:20} n/a: {err}")


def run_rounds(pair, chosen, cells, load, rounds, raw=None, hello=None, group=()) -> None:
    """Each round runs every workload on both servers, one after the other; who goes first
    alternates. A database workload also runs its raw SQL baseline (pgbench) in the same round,
    and a yardstick workload (sys-health at each concurrency) the hello-world server, first in
    odd rounds and last in even ones, so it sits next to each server equally often. A
    PostgreSQL storage workload runs on the `group` servers instead of the pair, in
    report.STORAGE_SERVERS order in odd rounds and reversed in even ones, without counting
    fsyncs: PostgreSQL's are not the server's, and the embedded reference must run as the
    others do (no perf attached)."""
    for round_no in range(1, rounds + 1):
        order = pair if round_no % 2 else pair[::-1]
        for workload in chosen:
            wl_load = load
            fixed = workload.clients or workload.connections
            if fixed:
                wl_load = dataclasses.replace(load, connections=fixed,
                                              threads=max(1, min(load.threads, fixed)))
            sequence = list(order)
            if workload.pg_storage:
                sequence = list(group) if round_no % 2 else list(group)[::-1]
                wl_load = dataclasses.replace(wl_load, count_syncs=False)
            raw_cell = cells.get((workload.name, report.RAW))
            if raw_cell is not None and not raw_cell.unavailable:
                sequence = ([report.RAW] + sequence) if round_no % 2 else (sequence + [report.RAW])
            if hello is not None and (workload.name, report.HELLO) in cells:
                sequence = ([hello] + sequence) if round_no % 2 else (sequence + [hello])
            for server in sequence:
                if server is hello:
                    run = measure(endpoint(hello, workload), workload.name, round_no,
                                  workload.script, {}, wl_load)
                    cells[(workload.name, report.HELLO)].runs.append(run)
                    _log_run(round_no, rounds, workload, report.HELLO, run)
                    continue
                if server == report.RAW:
                    run = measure_raw(raw, workload.name, round_no, workload.clients, wl_load,
                                      raw.cluster.cpu_ticks)
                    raw_cell.runs.append(run)
                    _log_run(round_no, rounds, workload, report.RAW, run)
                    continue
                cell = cells[(workload.name, server.name)]
                if cell.unavailable:
                    continue
                run = measure(endpoint(server, workload), workload.name, round_no, workload.script,
                              cell.env, wl_load, cell.hooks)
                cell.runs.append(run)
                _log_run(round_no, rounds, workload, server.name, run)


def endpoint(server, workload):
    """The server as the workload reaches it: its TLS listener for a TLS workload."""
    if workload.tls:
        if server.tls is None:
            raise RuntimeError(f"{server.name} was started without a TLS listener")
        return server.tls
    return server


def _log_run(round_no, rounds, workload, name, run) -> None:
    unit = "cycles/s" if workload.is_database else "req/s"
    if run.failure:
        detail = run.failure
    elif run.p99_ms:
        detail = (f"{run.rps:10,.0f} {unit}  p50 {run.p50_ms:6.2f} ms  p99 {run.p99_ms:7.2f} ms  "
                  f"noise {run.noise * 100:4.1f} %")
    else:
        detail = (f"{run.rps:10,.0f} {unit}  mean {run.mean_ms or 0:6.2f} ms  "
                  f"noise {run.noise * 100:4.1f} %")
    if run.errors:
        detail += f"  errors {run.errors}"
    if run.leaked:
        detail += f"  LEAKED {len(run.leaked)} PostgreSQL roles"
    log(f"    round {round_no}/{rounds} {workload.name:20} {name:8} {detail}")


def start_pair(storage: str, bao: str, tresor_bin: str, tmp: str, pin: str | None,
               tls: "servers.Tls | None" = None) -> tuple:
    """Both servers, each in its own directory (log; store in persistent mode), both active;
    with `tls`, each also has a TLS listener serving that certificate."""
    dirs = {name: os.path.join(tmp, name) for name in ("openbao", "tresor")}
    for path in dirs.values():
        os.makedirs(path)
    openbao = servers.start_openbao(bao, storage, dirs["openbao"], pin, tls)
    tresor = servers.start_tresor(tresor_bin, storage, dirs["tresor"], pin, tls)
    for server in (openbao, tresor):
        servers.fill_version(server)
    return openbao, tresor


def scenario_meta(argv) -> list[str]:
    return [
        f"Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; commit {git_commit()}",
        f"Machine: {machine()}",
        f"Command: `bench/run {shlex.join(argv)}`",
    ]


def emit(args, block: str, key: str) -> None:
    """Print the block; write it to --out and BENCHMARKS.md (under `key`) if asked."""
    print(block)
    if args.out:
        with open(args.out, "w") as out:
            out.write(block)
    if args.update_benchmarks:
        report.update_benchmarks(os.path.join(ROOT, "BENCHMARKS.md"), key, block)
        log("==> BENCHMARKS.md updated")


@contextlib.contextmanager
def scratch(prefix: str, keep: bool):
    """A temp dir for the servers of a restart scenario: signal handlers installed first, every
    started process stopped on the way out, the dir removed unless `keep` (--keep-tmp)."""
    procs.install_signal_handlers()
    tmp = tempfile.mkdtemp(prefix=prefix)
    try:
        yield tmp
    finally:
        procs.cleanup()
        if keep:
            log(f"==> kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def main_restart_kv(args, argv) -> int:
    tresor_bin, _, tresor_origin = build_tresor(args)
    bao = ensure_openbao(args)
    scale = scale_options(args)
    body = restart_kv.secret_body(workloads.secret_1k())
    with scratch("tresor-bench-restart-kv-", args.keep_tmp) as tmp:
        log(f"==> {restart_kv.NAME}: N={scale.keys_compared:,} both, N={scale.keys:,} Tresor alone, "
            f"{args.rounds} restart(s) each, in {tmp}")
        results = restart_kv.run(bao, tresor_bin, tmp, scale, args.rounds, body, log)
    meta = scenario_meta(argv) + [
        f"OpenBao: {_first_line([bao, 'version']).split(',')[0]}, `bao server -config` on integrated raft",
        f"Tresor: {_first_line([tresor_bin, 'version'])}, {tresor_origin}, `tresor server -config` "
        f"on the embedded store (default `cache_size`)",
        "Secrets: KV v2, 1 KiB each (8 fields × 120 characters), loaded with the root token by 8 "
        "keep-alive connections pipelining 64 requests each; the probe reads the middle key with "
        "the root token",
    ]
    emit(args, restart_kv.render(results, meta), restart_kv.NAME)
    return 0


def main_restart(args, argv) -> int:
    tresor_bin, _, tresor_origin = build_tresor(args)
    bao = ensure_openbao(args)
    with scratch("tresor-bench-restart-", args.keep_tmp) as tmp:
        log(f"==> restart with {args.restart_leases:,} leases, {args.rounds} restart(s) each, in {tmp}")
        results = restart.run(bao, tresor_bin, tmp, args.restart_leases, args.rounds, log)
    meta = scenario_meta(argv) + [
        f"OpenBao: {_first_line([bao, 'version']).split(',')[0]}, `bao server -config` on integrated raft",
        f"Tresor: {_first_line([tresor_bin, 'version'])}, {tresor_origin}, `tresor server -config` "
        f"on the embedded store",
        "Leases: service tokens with ttl=24h and the `default` policy, created over HTTP by 32 "
        "keep-alive clients; the probe is `auth/token/lookup-self` with one of them",
    ]
    emit(args, restart.render(results, args.restart_leases, meta), "restart-leases")
    return 0


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.restart_leases:
        return main_restart(args, argv)
    names = args.workloads.split(",") if args.workloads else None
    if names and restart_kv.NAME in names:
        if len(names) > 1:
            raise SystemExit(f"{restart_kv.NAME} runs on its own: give it alone to --workloads")
        return main_restart_kv(args, argv)
    if args.mode == "B" and (os.cpu_count() or 1) < 2:
        raise SystemExit("mode B needs at least 2 CPUs")
    chosen = workloads.select(names)
    tresor_bin, hello_bin, tresor_origin = build_tresor(args)
    baseline = aead_baseline(args) if any(w.name == BATCH_WORKLOAD for w in chosen) else None
    wrk_version = _first_line([ensure_wrk(), "-v"])
    bao = ensure_openbao(args)
    versions = (_first_line([bao, "version"]).split(",")[0],
                f"{_first_line([tresor_bin, 'version'])}, {tresor_origin}", wrk_version)
    load = LoadOptions(duration=args.duration, warmup=args.warmup, connections=args.connections,
                       threads=args.threads or (1 if args.mode == "B" else os.cpu_count() or 1),
                       timeout=args.timeout, wrk_pin="1" if args.mode == "B" else None,
                       quiet_wait=args.quiet_wait, noise_limit=args.max_noise / 100,
                       count_syncs=args.storage == "persistent")
    server_pin = "0" if args.mode == "B" else None
    cells = {(w.name, s): report.Cell([], noise_limit=args.max_noise / 100)
             for w in chosen for s in (report.STORAGE_SERVERS if w.pg_storage else report.SERVERS)}
    for w in chosen:
        if w.name in workloads.HELLO_WORKLOADS:
            cells[(w.name, report.HELLO)] = report.Cell([], noise_limit=args.max_noise / 100,
                                                        token_type="none")
    db_chosen = [w for w in chosen if w.is_database]
    pg_chosen = [w for w in chosen if w.pg_storage]
    for w in db_chosen:
        cells[(w.name, report.RAW)] = report.Cell([], noise_limit=args.max_noise / 100,
                                                  token_type="none (pgbench)")

    procs.install_signal_handlers()
    tmp = tempfile.mkdtemp(prefix="tresor-bench-")
    postgres = raw = None
    leaks: list[str] = []
    try:
        if db_chosen or pg_chosen:
            # Assigned before any database is created, so the `finally` drops whatever is.
            postgres = connect_postgres(args, db_chosen + pg_chosen, cells)
        if db_chosen and isinstance(postgres, database.Cluster):
            raw = raw_baseline(postgres, db_chosen, cells)
        log(f"==> starting OpenBao and Tresor ({args.storage} storage, mode {args.mode}) in {tmp}")
        tls = servers.self_signed(os.path.join(tmp, "tls")) if any(w.tls for w in chosen) else None
        pair = start_pair(args.storage, bao, tresor_bin, tmp, server_pin, tls)
        hello_dir = os.path.join(tmp, "hello")
        os.makedirs(hello_dir)
        hello = servers.start_hello(hello_bin, hello_dir, server_pin, tls)
        fsync = fsync_probe(os.path.join(tmp, "tresor")) if args.storage == "persistent" else None
        group, fixtures = [], {}
        if pg_chosen:
            log("==> starting the PostgreSQL storage servers: " + ", ".join(report.STORAGE_SERVERS))
            group, fixtures = start_pg_group(bao, tresor_bin, tmp, server_pin, postgres, pg_chosen,
                                             cells, args.pg_max_parallel)

        log("==> setting up workloads through the HTTP API")
        http_and_db = [w for w in chosen if not w.pg_storage]
        for server in pair:
            set_up(server, http_and_db, args.keys, cells, postgres, scale_options(args))
        for server in group:
            set_up(server, pg_chosen, args.keys, cells, postgres, scale_options(args))
            attach_pg_hooks(server, pg_chosen, cells, postgres, fixtures.get(server.name))
        per_run = load.duration + load.warmup
        measured = sum(1 for c in cells.values() if not c.unavailable) * args.rounds
        log(f"==> {measured} measured runs of {per_run} s each: about {measured * per_run / 60:.1f} min")
        run_rounds(pair, chosen, cells, load, args.rounds, raw, hello, group)

        for server in (*pair, *group, hello, *([hello.tls] if hello.tls else [])):
            if not server.alive():
                log(f"!! {server.name} exited with {server.proc.returncode}; log tail:\n{server.log_tail()}")
        title = (f"{'In-memory' if args.storage == 'memory' else 'Persistent'} storage, mode {args.mode} "
                 f"({'unpinned' if args.mode == 'A' else 'pinned'})")
        if only_database(chosen):
            title = "Dynamic PostgreSQL credentials: " + title[0].lower() + title[1:]
        if only_pg_storage(chosen):
            title = f"KV v2 on PostgreSQL storage, mode {args.mode} ({'unpinned' if args.mode == 'A' else 'pinned'})"
        meta = metadata(args, argv, versions, pair, load, tmp, fsync)
        meta.append(f"Yardstick: `{hide(hello.command, tmp)}` (bench/hello: axum, GET "
                    f"/v1/sys/health with a fixed 41-byte JSON body, same release profile and "
                    f"allocator as Tresor), measured in every round next to both servers at the "
                    f"same concurrency; **÷ hello** is a server's rate over it, paired per round")
        if tls is not None:
            meta.append(tls_meta(pair, hello, tmp))
        for note in (batch_note(cells, baseline), scale_note(cells)):
            if note:
                meta.append(note)
        if isinstance(postgres, database.Cluster) and db_chosen:
            meta.append(db_meta(postgres, raw, db_chosen))
        if pg_chosen:
            meta += pg_meta(postgres, group, tmp, args.pg_max_parallel)
        http = [w for w in chosen if not w.is_database and not w.pg_storage]
        block = report.render(title, meta, [w.name for w in http], cells,
                              {w.name: w.hello for w in http}, args.max_noise / 100)
        if db_chosen:
            block += "\n" + report.render_database([w.name for w in db_chosen],
                                                   {w.name: w.clients for w in db_chosen}, cells)
        if pg_chosen:
            block += "\n" + report.render_pg_storage([w.name for w in pg_chosen], cells,
                                                     args.max_noise / 100)
        leaks = report.leaks([w.name for w in db_chosen], cells)
    finally:
        procs.cleanup()
        if raw is not None:
            raw.close()
        if isinstance(postgres, database.Cluster):
            left = postgres.cleanup()
            if left:
                log(f"!! dropped {len(left)} PostgreSQL roles this run left behind: "
                    + ", ".join(left[:10]) + (" …" if len(left) > 10 else ""))
        if args.keep_tmp:
            log(f"==> kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    print(block)
    if args.out:
        with open(args.out, "w") as out:
            out.write(block)
    if args.update_benchmarks:
        key = f"{args.storage}-{args.mode}"
        if only_database(chosen):
            key += "-database"
        if only_pg_storage(chosen):
            key = f"pg-storage-{args.mode}"
        report.update_benchmarks(os.path.join(ROOT, "BENCHMARKS.md"), key, block)
        log("==> BENCHMARKS.md updated")
    if leaks:
        log("!! FAILED: PostgreSQL roles were left after their leases were revoked:\n  "
            + "\n  ".join(leaks))
        return 1
    return 0


def tls_meta(pair, hello, tmp) -> str:
    return (f"TLS workloads (`*-tls`): one self-signed P-256 certificate made by openssl for this "
            f"run, served by OpenBao's and Tresor's second listener (OpenBao: a `listener \"tcp\"` "
            f"block with `tls_cert_file`/`tls_key_file` in its config file; Tresor: the same block in "
            f"`-dev -config=FILE`) and by `{hide(hello.tls.command, tmp)}`; wrk connects over "
            f"https (keep-alive, so handshakes are amortised); **÷ hello** of a TLS "
            f"workload is over the hello-world server with TLS (`{workloads.BASELINE_TLS}`)")


def only_pg_storage(chosen) -> bool:
    """Only PostgreSQL storage workloads were chosen (sys-health always runs): their results
    go to a block of their own in BENCHMARKS.md, whatever --storage says (it only concerns the
    pair, which runs sys-health alone then)."""
    return all(w.pg_storage or w.name == workloads.BASELINE for w in chosen) and \
        any(w.pg_storage for w in chosen)


def only_database(chosen) -> bool:
    """Only database workloads were chosen (sys-health always runs): their results go to a
    block of their own in BENCHMARKS.md."""
    return all(w.is_database or w.name == workloads.BASELINE for w in chosen) and \
        any(w.is_database for w in chosen)


def connect_postgres(args, pg_workloads, cells):
    """The PostgreSQL cluster (nothing created in it yet); if PostgreSQL cannot be used, the
    reason instead of the cluster, and every cell that needs PostgreSQL shows n/a with it
    (the raw baseline's here, the servers' at their setup; Tresor on its embedded store runs)."""
    host, _, port = args.postgres.rpartition(":")
    try:
        cluster = database.Cluster(host, int(port), args.pg_superuser, log)
    except database.Unavailable as err:
        for w in pg_workloads:
            for server in (report.RAW, report.PG_OPENBAO, report.PG_TRESOR, report.PG_TRESOR_HA):
                if (w.name, server) in cells:
                    cells[(w.name, server)].unavailable = str(err)
        log(f"!! PostgreSQL workloads: {err}")
        return str(err)
    log(f"==> {cluster.describe()}; this run's PostgreSQL objects are named "
        f"{database.PREFIX}{cluster.run_id}_*")
    return cluster


def raw_baseline(cluster, db_chosen, cells):
    """The raw SQL baseline's fixture, or None (its cells then show n/a with the reason)."""
    try:
        return database.RawBaseline(cluster)
    except database.Unavailable as err:
        for w in db_chosen:
            cells[(w.name, report.RAW)].unavailable = str(err)
        log(f"!! database workloads: raw baseline: {err}")
        return None


def start_pg_group(bao, tresor_bin, tmp, pin, postgres, pg_chosen, cells, pool):
    """The PostgreSQL storage workloads' servers, in report.STORAGE_SERVERS order: each on a
    fresh database of its own (OpenBao's table created first, as its documentation asks),
    Tresor on its embedded store as the reference. A server that cannot start is left out and
    its cells show n/a with the reason; returns the started servers and each PostgreSQL
    server's fixture."""
    if isinstance(postgres, database.Cluster):
        free = postgres.free_connections()
        if free is not None and free < 3 * pool + 5:
            log(f"!! PostgreSQL has {free} connections left and the three servers may hold "
                f"{3 * pool} (--pg-max-parallel {pool}): runs may fail with 'too many clients'")
    group, fixtures = [], {}
    for name in report.STORAGE_SERVERS:
        if name != report.EMBEDDED and not isinstance(postgres, database.Cluster):
            continue  # its cells already say why (connect_postgres)
        workdir = os.path.join(tmp, name.lower().replace(" ", "-"))
        try:
            if name == report.EMBEDDED:
                storage, binary, label = servers.embedded_storage(workdir), tresor_bin, "tresor"
            else:
                fixture = postgres.fixture(name.lower().replace(" ", "_"), createrole=False)
                fixtures[name] = fixture
                openbao = name == report.PG_OPENBAO
                if openbao:
                    postgres.create_openbao_tables(fixture)
                storage = servers.postgresql_storage(postgres.storage_url(fixture), pool,
                                                     ha=name == report.PG_TRESOR_HA)
                binary, label = (bao, "bao") if openbao else (tresor_bin, "tresor")
            group.append(servers.start_configured(name, binary, label, storage, workdir, pin))
            log(f"    {name:16} active at {group[-1].url}")
        except (RuntimeError, OSError, ApiError, database.Unavailable) as err:
            reason = str(err).strip().splitlines()[0][:300] if str(err).strip() else repr(err)
            for w in pg_chosen:
                cells[(w.name, name)].unavailable = f"{name} did not start: {reason}"
            log(f"!! {name} did not start: {err}")
    return group, fixtures


def attach_pg_hooks(server, pg_chosen, cells, postgres, fixture) -> None:
    """Around every run of a PostgreSQL storage workload: its database settled first (VACUUM,
    CHECKPOINT: database.Cluster.settle), and PostgreSQL's CPU counted as PostgreSQL's, not as
    noise (for the embedded reference too, so every server of the table is accounted alike)."""
    cluster = postgres if isinstance(postgres, database.Cluster) else None
    for w in pg_chosen:
        cell = cells[(w.name, server.name)]
        if cell.unavailable:
            continue
        cell.hooks = Hooks(before=(lambda f=fixture: cluster.settle(f)) if fixture and cluster else None,
                           pg_ticks=cluster.cpu_ticks if cluster else None)


def pg_meta(postgres, group, tmp, pool) -> list[str]:
    """The PostgreSQL storage workloads' header lines: PostgreSQL and its commit settings, and
    each server as started."""
    where = (f"{postgres.describe()} ({postgres.settings()})" if isinstance(postgres, database.Cluster)
             else f"PostgreSQL not usable: {postgres}")
    lines = [
        f"PostgreSQL storage workloads (`kv2-read-1k-pg`, `kv2-write-1k-pg`, the requests and "
        f"tokens of `kv2-read-1k` / `kv2-write-1k`): {where}. Four servers, each from a config "
        f"file with the same `listener \"tcp\"` block and `api_addr`, initialised 1/1 and "
        f"unsealed over HTTP; only the storage block differs: OpenBao and Tresor "
        f"`storage \"postgresql\" {{ connection_url, max_parallel = \"{pool}\", "
        f"max_idle_connections = \"{pool}\" }}` (--pg-max-parallel; OpenBao's table and index "
        f"created first from its documentation, Tresor creates its own); Tresor HA the same "
        f"with `ha_enabled = \"true\"` (one node, so the active "
        f"one: every write is a fenced 4-statement block); Tresor embedded "
        f"`storage \"embedded\" {{ path }}` (redb, fsync per commit batch), the reference. Each "
        f"PostgreSQL server has a fresh database of its own (`{database.PREFIX}<run>_<server>`, "
        f"owned by a LOGIN role of its own, `sslmode=disable`), dropped at the end. Durability: "
        f"{servers.PG_DURABILITY}. Before every run (warm-up and measured) the server's database is "
        f"vacuumed and PostgreSQL checkpointed. PostgreSQL's CPU (postmaster and backends, from "
        f"/proc; other clients of the same PostgreSQL included) is reported, not counted as noise. "
        f"Order in odd rounds: {', '.join(report.STORAGE_SERVERS)}; reversed in even rounds. "
        f"Ratios paired per round."
    ]
    for server in group:
        lines.append(f"{server.name}: {server.version}; `{hide(server.command, tmp)}`")
    return lines


def db_meta(cluster, raw, db_chosen) -> str:
    clients = ", ".join(str(w.clients) for w in db_chosen)
    statements = raw.statements().replace("\n", " ") if raw else "?"
    return (f"Database workloads: {cluster.describe()}; each server has its own database and "
            f"admin role (CREATEROLE), `postgresql-database-plugin` with "
            f"`max_open_connections = {workloads.DB_POOL}` (other pool settings default), "
            f"a role with `creation_statements = [{database.CREATION}]`, default revocation, "
            f"default_ttl 1h; one cycle = `GET creds` + `PUT sys/leases/revoke` (wrk, {clients} "
            f"connections); raw SQL baseline: pgbench `-n -c N -j min(threads, N)` running "
            f"`{statements}`; the shared role catalogs are vacuumed before every run")
