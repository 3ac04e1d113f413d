"""Summaries, the results table (markdown), and rewriting BENCHMARKS.md's results blocks.

Statistics: per workload and server, the median over rounds of req/s, p50 and p99. Ratios are
taken per round between runs that ran next to each other (Tresor vs OpenBao on the same
workload; a workload vs the same server's sys-health in the same round), then the median of
those: pairing cancels slow drift of the shared machine. Runs (or pairs) whose noise share is
over the threshold are left out when at least one quiet run (or pair) is left, and flagged.
"""

from __future__ import annotations

import os
import re
import statistics
from dataclasses import dataclass, field

from .measure import Run

SERVERS = ("OpenBao", "Tresor")
RAW = "raw SQL"  # the pgbench baseline of the database workloads, measured like a third server
HELLO = "hello"  # the hello-world yardstick (bench/hello), measured on the sys-health workloads
# The PostgreSQL storage workloads' servers (issue 13), in the order of odd rounds (even rounds
# run them in reverse): Tresor on PostgreSQL next to OpenBao on PostgreSQL and next to Tresor
# on its embedded store, the two ratios issue 13 asks for; Tresor with ha_enabled last.
PG_OPENBAO, PG_TRESOR, EMBEDDED, PG_TRESOR_HA = "OpenBao pg", "Tresor pg", "Tresor embedded", "Tresor pg HA"
STORAGE_SERVERS = (PG_OPENBAO, PG_TRESOR, EMBEDDED, PG_TRESOR_HA)


@dataclass
class Cell:
    """One workload on one server: its runs and, if it did not run, why."""
    runs: list[Run]
    token_type: str = ""
    env: dict = field(default_factory=dict)  # the BENCH_* variables its Lua script reads
    hooks: object = None  # measure.Hooks of database workloads
    unavailable: str | None = None  # the reason, when setup failed
    not_implemented: bool = False
    noise_limit: float = 0.15

    def usable(self) -> list[Run]:
        ok = [r for r in self.runs if r.failure is None]
        quiet = [r for r in ok if r.noise <= self.noise_limit]
        return quiet or ok

    def median(self, attr: str) -> float | None:
        values = [getattr(r, attr) for r in self.usable()]
        return statistics.median(values) if values else None

    def by_round(self) -> dict[int, Run]:
        return {r.round: r for r in self.runs if r.failure is None}

    def noisy(self) -> int:
        return sum(1 for r in self.runs if r.failure is None and r.noise > self.noise_limit)

    def max_noise(self) -> float | None:
        values = [r.noise for r in self.runs if r.failure is None]
        return max(values) if values else None


def paired_ratio(numerator: Cell, denominator: Cell) -> float | None:
    """Median over rounds of numerator/denominator req/s, using rounds where both ran; only the
    rounds where both runs were quiet, if there is at least one such round."""
    top, bottom = numerator.by_round(), denominator.by_round()
    pairs = [(top[k], bottom[k]) for k in top if k in bottom and bottom[k].rps > 0]
    limit = numerator.noise_limit
    quiet = [(a, b) for a, b in pairs if a.noise <= limit and b.noise <= limit]
    ratios = [a.rps / b.rps for a, b in (quiet or pairs)]
    return statistics.median(ratios) if ratios else None


# ---- formatting ----

def _num(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "–"
    return f"{value:,.{digits}f}"


def _ms(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def _ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _na(cell: Cell, server: str) -> str:
    if cell.not_implemented and server == "Tresor":
        return "n/a (not implemented in tresor)"
    if cell.unavailable:
        return "n/a (setup failed)"
    return "n/a (all runs failed)"


def _server_columns(cell: Cell, server: str) -> list[str]:
    rps = cell.median("rps")
    if rps is None:
        return [_na(cell, server), "–", "–"]
    return [_num(rps), _ms(cell.median("p50_ms")), _ms(cell.median("p99_ms"))]


def _noise_column(cells: list[Cell], limit: float) -> str:
    values = [c.max_noise() for c in cells if c.max_noise() is not None]
    if not values:
        return "–"
    worst = max(values)
    noisy = sum(c.noisy() for c in cells)
    runs = sum(len([r for r in c.runs if r.failure is None]) for c in cells)
    text = f"{worst * 100:.1f} %"
    return f"**{text}** ⚠ {noisy}/{runs} runs > {limit * 100:.0f} %" if worst > limit else text


def _token_column(openbao: Cell, tresor: Cell) -> str:
    a, b = openbao.token_type, tresor.token_type
    if tresor.unavailable or not b or a == b:
        return a
    if openbao.unavailable or not a:
        return b
    return f"OpenBao: {a}; Tresor: {b}"


def table(workload_names: list[str], cells: dict[tuple[str, str], Cell], yardsticks: dict[str, str],
          noise_limit: float) -> str:
    """One row per HTTP workload. `yardsticks` maps a workload to the sys-health workload at its
    concurrency: the hello-world server's run of it (÷ hello, the machine's limit) and the
    server's own run of it (÷ own sys-health) are the two ratio columns, each paired per round."""
    header = ("| Workload | Token | OpenBao req/s | p50 ms | p99 ms | Tresor req/s | p50 ms | p99 ms "
              "| **Tresor / OpenBao** | **Tresor ÷ hello** | OpenBao ÷ hello "
              "| Tresor ÷ own sys-health | OpenBao ÷ own sys-health | max noise |")
    lines = [header, "|" + "---|" * 14]
    for name in workload_names:
        ob, tr = cells[(name, "OpenBao")], cells[(name, "Tresor")]
        yardstick = yardsticks.get(name, "sys-health")
        hello = cells.get((yardstick, HELLO))
        row = [f"`{name}`", _token_column(ob, tr)]
        row += _server_columns(ob, "OpenBao") + _server_columns(tr, "Tresor")
        versus = _ratio(paired_ratio(tr, ob))
        row.append(f"**{versus}**" if versus != "–" else versus)
        to_hello = _ratio(paired_ratio(tr, hello)) if hello else "–"
        row.append(f"**{to_hello}**" if to_hello != "–" else to_hello)
        row.append(_ratio(paired_ratio(ob, hello)) if hello else "–")
        row.append(_ratio(paired_ratio(tr, cells[(yardstick, "Tresor")])))
        row.append(_ratio(paired_ratio(ob, cells[(yardstick, "OpenBao")])))
        row.append(_noise_column([ob, tr] + ([hello] if hello else []), noise_limit))
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "| Workload | OpenBao server CPU µs / request | Tresor server CPU µs / request |",
              "|---|---|---|"]
    for name in workload_names:
        lines.append(f"| `{name}` | {_cpu_per_request(cells[(name, 'OpenBao')])} | "
                     f"{_cpu_per_request(cells[(name, 'Tresor')])} |")
    counted = [n for n in workload_names
               if any(r.syncs is not None or r.syncs_unknown for s in SERVERS
                      for r in cells[(n, s)].usable())]
    if counted:
        lines += ["", "| Workload | OpenBao requests per fsync | Tresor requests per fsync |",
                  "|---|---|---|"]
        for name in counted:
            lines.append(f"| `{name}` | {_per_sync(cells[(name, 'OpenBao')])} | "
                         f"{_per_sync(cells[(name, 'Tresor')])} |")
    hellos = [(n, cells[(n, HELLO)]) for n in workload_names if (n, HELLO) in cells]
    if hellos:
        lines += ["", "| Yardstick | hello req/s | p50 ms | p99 ms | max noise |", "|---|---|---|---|---|"]
        for n, cell in hellos:
            lines.append(f"| `{n}` on hello | " + " | ".join(_server_columns(cell, HELLO))
                         + f" | {_noise_column([cell], noise_limit)} |")
    return "\n".join(lines)


def _cpu_per_request(cell: Cell) -> str:
    """The median over usable runs of the server's CPU time per request answered."""
    values = [v for v in (r.server_us_per_request for r in cell.usable()) if v is not None]
    return _num(statistics.median(values), 1) if values else "–"


def _per_sync(cell: Cell) -> str:
    """Requests answered per fsync/fdatasync call of the server (median over usable runs): the
    group-commit factor of a write workload. `no fsync` for runs that made none (reads)."""
    runs = cell.usable()
    counted = [r for r in runs if r.syncs is not None]
    if not counted:
        reasons = {r.syncs_unknown for r in runs if r.syncs_unknown}
        return "not counted (" + "; ".join(sorted(reasons)) + ")" if reasons else "–"
    if all(r.syncs == 0 for r in counted):
        return "no fsync"
    ratios = [r.requests / r.syncs for r in counted if r.syncs]
    return _num(statistics.median(ratios), 1) + f" ({statistics.median(r.syncs for r in counted):,.0f} syncs/run)"


def notes(workload_names: list[str], cells: dict[tuple[str, str], Cell]) -> list[str]:
    """Why cells are n/a, and any errors or failed runs: nothing is silently dropped."""
    out = []
    for name in workload_names:
        for server in (*SERVERS, HELLO):
            cell = cells.get((name, server))
            if cell is None:
                continue
            if cell.unavailable:
                out.append(f"`{name}` on {server}: n/a because setup failed: {cell.unavailable}")
            for run in cell.runs:
                if run.failure:
                    out.append(f"`{name}` on {server}, round {run.round}: {run.failure}")
                elif run.errors:
                    detail = ", ".join(f"{k} {v:,}" for k, v in sorted(run.errors.items()))
                    out.append(f"`{name}` on {server}, round {run.round}: {detail} errors "
                               f"of {run.requests:,} requests (wrk counts HTTP ≥ 400 as `status`)")
    return out


def run_details(workload_names: list[str], cells: dict[tuple[str, str], Cell]) -> str:
    lines = ["| Round | Workload | Server | req/s | p50 ms | p99 ms | server CPU | server µs / req | wrk CPU "
             "| noise |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    runs = [r for name in workload_names for s in (*SERVERS, HELLO)
            for r in (cells[(name, s)].runs if (name, s) in cells else [])]
    for r in sorted(runs, key=lambda r: (r.round, workload_names.index(r.workload))):
        if r.failure:
            lines.append(f"| {r.round} | {r.workload} | {r.server} | failed | | | | | | |")
            continue
        lines.append(f"| {r.round} | {r.workload} | {r.server} | {_num(r.rps)} | {_ms(r.p50_ms)} | "
                     f"{_ms(r.p99_ms)} | {r.server_cpu * 100:.0f} % | {_num(r.server_us_per_request, 1)} | "
                     f"{r.wrk_cpu * 100:.0f} % | {r.noise * 100:.1f} % |")
    return "\n".join(lines)


def render(title: str, meta: list[str], workload_names: list[str],
           cells: dict[tuple[str, str], Cell], yardsticks: dict[str, str], noise_limit: float) -> str:
    parts = [f"### {title}", "", *[f"- {line}" for line in meta], "",
             table(workload_names, cells, yardsticks, noise_limit), ""]
    extra = notes(workload_names, cells)
    if extra:
        parts += ["Notes:", "", *[f"- {n}" for n in extra], ""]
    parts += ["<details><summary>Every measured run</summary>", "",
              run_details(workload_names, cells), "", "</details>", ""]
    return "\n".join(parts)


# ---- database workloads: cycles/s against the raw SQL baseline ----

def _per_cycle_ms(cell: Cell, attr: str) -> float | None:
    """CPU milliseconds per cycle: a CPU share of the whole machine, times its CPUs and the
    run's wall time, over every cycle of the run (the drain included); the median over the
    cell's usable runs."""
    values = [getattr(r, attr) * (os.cpu_count() or 1) * r.elapsed_s * 1000 / r.cycles_total
              for r in cell.usable() if r.cycles_total and getattr(r, attr) is not None]
    return statistics.median(values) if values else None


def _cycles(cell: Cell, server: str) -> str:
    rps = cell.median("rps")
    return _na(cell, server) if rps is None else _num(rps)


def leaks(workload_names: list[str], cells: dict) -> list[str]:
    """One line per run that left PostgreSQL roles behind after everything was revoked."""
    out = []
    for name in workload_names:
        for server in (RAW, *SERVERS):
            for run in cells[(name, server)].runs:
                if run.leaked:
                    shown = ", ".join(run.leaked[:5]) + (" …" if len(run.leaked) > 5 else "")
                    out.append(f"`{name}` on {server}, round {run.round}: "
                               f"{len(run.leaked)} roles left: {shown}")
    return out


def render_database(workload_names: list[str], clients: dict[str, int], cells: dict) -> str:
    """The database table: issue + revoke cycles/s per server and of raw SQL (pgbench) at the
    same concurrency, each server as a ratio to raw SQL paired per round, CPU per cycle, leaks."""
    lines = ["#### Dynamic PostgreSQL credentials: issue + revoke cycles", "",
             "| Workload | Clients | raw SQL cycles/s | OpenBao cycles/s | **OpenBao ÷ raw** "
             "| Tresor cycles/s | **Tresor ÷ raw** | Tresor / OpenBao | p50 / p99 ms per request "
             "(OpenBao; Tresor) | CPU ms per cycle: server, PostgreSQL (raw; OpenBao; Tresor) "
             "| leaked roles | max noise |",
             "|" + "---|" * 12]
    for name in workload_names:
        raw, ob, tr = (cells[(name, s)] for s in (RAW, *SERVERS))
        latency = "; ".join(
            f"{_ms(c.median('p50_ms'))} / {_ms(c.median('p99_ms'))}" if c.median("rps") else "–"
            for c in (ob, tr))

        def cpu(cell, server_side):
            own = _per_cycle_ms(cell, "server_cpu") if server_side else None
            pg = _per_cycle_ms(cell, "pg_cpu")
            if pg is None and own is None:
                return "–"
            return (f"{_ms(own)}, " if server_side else "") + _ms(pg)
        leaked = sum(len(r.leaked) for c in (raw, ob, tr) for r in c.runs)
        bold = lambda text: text if text == "–" else f"**{text}**"
        row = [f"`{name}`", str(clients[name]), _cycles(raw, RAW), _cycles(ob, "OpenBao"),
               bold(_ratio(paired_ratio(ob, raw))), _cycles(tr, "Tresor"),
               bold(_ratio(paired_ratio(tr, raw))), _ratio(paired_ratio(tr, ob)), latency,
               f"{cpu(raw, False)}; {cpu(ob, True)}; {cpu(tr, True)}",
               f"**{leaked} ⚠**" if leaked else "0",
               _noise_column([raw, ob, tr], raw.noise_limit)]
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    notes_out = []
    for name in workload_names:
        for server in (RAW, *SERVERS):
            cell = cells[(name, server)]
            if cell.unavailable:
                notes_out.append(f"`{name}` on {server}: n/a because setup failed: {cell.unavailable}")
            for run in cell.runs:
                if run.failure:
                    notes_out.append(f"`{name}` on {server}, round {run.round}: {run.failure}")
                elif run.errors:
                    detail = ", ".join(f"{k} {v:,}" for k, v in sorted(run.errors.items()))
                    notes_out.append(f"`{name}` on {server}, round {run.round}: {detail} errors "
                                     f"of {run.requests:,} requests")
    notes_out += ["**leak** " + line for line in leaks(workload_names, cells)]
    if notes_out:
        lines += ["Notes:", "", *[f"- {n}" for n in notes_out], ""]
    lines += ["<details><summary>Every measured database run</summary>", "",
              "| Round | Workload | Server | cycles/s | p50 ms | p99 ms | mean ms | server CPU "
              "| PostgreSQL CPU | client CPU | noise | leaked |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    runs = [r for name in workload_names for s in (RAW, *SERVERS) for r in cells[(name, s)].runs]
    for r in sorted(runs, key=lambda r: (r.round, workload_names.index(r.workload))):
        if r.failure:
            lines.append(f"| {r.round} | {r.workload} | {r.server} | failed | | | | | | | | |")
            continue
        pct = lambda v: "–" if v is None else f"{v * 100:.0f} %"
        lines.append(
            f"| {r.round} | {r.workload} | {r.server} | {_num(r.rps)} | "
            f"{_ms(r.p50_ms) if r.p99_ms else '–'} | {_ms(r.p99_ms) if r.p99_ms else '–'} | "
            f"{_ms(r.mean_ms)} | {pct(r.server_cpu) if r.server != RAW else '–'} | "
            f"{pct(r.pg_cpu)} | {pct(r.wrk_cpu)} | {r.noise * 100:.1f} % | {len(r.leaked)} |")
    lines += ["", "</details>", ""]
    return "\n".join(lines)


# ---- PostgreSQL storage workloads: four servers, three ratios ----

def _cpu_us(cell: Cell, attr: str) -> float | None:
    """CPU microseconds per request of a CPU share (`server_cpu` or `pg_cpu`): the share times
    the machine's CPUs and the run's wall time, over the run's requests; median of usable runs."""
    values = [getattr(r, attr) * (os.cpu_count() or 1) * r.elapsed_s * 1e6 / r.requests
              for r in cell.usable() if r.requests and getattr(r, attr) is not None]
    return statistics.median(values) if values else None


def render_pg_storage(workload_names: list[str], cells: dict, noise_limit: float) -> str:
    """The PostgreSQL storage table: each server's req/s; Tresor on PostgreSQL ÷ Tresor on its
    embedded store, Tresor ÷ OpenBao (both on PostgreSQL), and Tresor with ha_enabled ÷ without,
    each paired per round; latencies; server and PostgreSQL CPU per request."""
    lines = ["#### KV v2 on PostgreSQL storage", "",
             f"| Workload | Token | {EMBEDDED} req/s | {PG_TRESOR} req/s | **Tresor pg ÷ embedded** "
             f"| {PG_OPENBAO} req/s | **Tresor pg / OpenBao pg** | {PG_TRESOR_HA} req/s "
             "| **HA ÷ no HA** | p50 / p99 ms (embedded; Tresor pg; HA; OpenBao pg) "
             "| CPU µs per request: server, PostgreSQL (embedded; Tresor pg; HA; OpenBao pg) "
             "| max noise |",
             "|" + "---|" * 12]
    bold = lambda text: text if text == "–" else f"**{text}**"
    for name in workload_names:
        c = {s: cells[(name, s)] for s in STORAGE_SERVERS}
        rate = lambda s: (_na(c[s], s.split()[0]) if c[s].median("rps") is None
                          else _num(c[s].median("rps")))
        order = (EMBEDDED, PG_TRESOR, PG_TRESOR_HA, PG_OPENBAO)
        latency = "; ".join(f"{_ms(c[s].median('p50_ms'))} / {_ms(c[s].median('p99_ms'))}"
                            if c[s].median("rps") else "–" for s in order)
        cpu = "; ".join(f"{_num(_cpu_us(c[s], 'server_cpu'), 0)}, {_num(_cpu_us(c[s], 'pg_cpu'), 0)}"
                        if c[s].median("rps") else "–" for s in order)
        token = next((c[s].token_type for s in (PG_TRESOR, PG_OPENBAO, EMBEDDED) if c[s].token_type), "")
        row = [f"`{name}`", token, rate(EMBEDDED), rate(PG_TRESOR),
               bold(_ratio(paired_ratio(c[PG_TRESOR], c[EMBEDDED]))), rate(PG_OPENBAO),
               bold(_ratio(paired_ratio(c[PG_TRESOR], c[PG_OPENBAO]))), rate(PG_TRESOR_HA),
               bold(_ratio(paired_ratio(c[PG_TRESOR_HA], c[PG_TRESOR]))), latency, cpu,
               _noise_column(list(c.values()), noise_limit)]
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    extra = []
    for name in workload_names:
        for server in STORAGE_SERVERS:
            cell = cells[(name, server)]
            if cell.unavailable:
                extra.append(f"`{name}` on {server}: n/a because setup failed: {cell.unavailable}")
            for run in cell.runs:
                if run.failure:
                    extra.append(f"`{name}` on {server}, round {run.round}: {run.failure}")
                elif run.errors:
                    detail = ", ".join(f"{k} {v:,}" for k, v in sorted(run.errors.items()))
                    extra.append(f"`{name}` on {server}, round {run.round}: {detail} errors "
                                 f"of {run.requests:,} requests (wrk counts HTTP ≥ 400 as `status`)")
    if extra:
        lines += ["Notes:", "", *[f"- {n}" for n in extra], ""]
    lines += ["<details><summary>Every measured PostgreSQL storage run</summary>", "",
              "| Round | Workload | Server | req/s | p50 ms | p99 ms | server CPU | server µs / req "
              "| PostgreSQL CPU | PostgreSQL µs / req | wrk CPU | noise |",
              "|" + "---|" * 12]
    runs = [r for name in workload_names for s in STORAGE_SERVERS for r in cells[(name, s)].runs]
    pct = lambda v: "–" if v is None else f"{v * 100:.0f} %"
    for r in sorted(runs, key=lambda r: (r.round, workload_names.index(r.workload))):
        if r.failure:
            lines.append(f"| {r.round} | {r.workload} | {r.server} | failed |" + " |" * 8)
            continue
        pg_us = (r.pg_cpu * (os.cpu_count() or 1) * r.elapsed_s * 1e6 / r.requests
                 if r.pg_cpu is not None and r.requests else None)
        lines.append(f"| {r.round} | {r.workload} | {r.server} | {_num(r.rps)} | {_ms(r.p50_ms)} | "
                     f"{_ms(r.p99_ms)} | {pct(r.server_cpu)} | {_num(r.server_us_per_request, 1)} | "
                     f"{pct(r.pg_cpu)} | {_num(pg_us, 1)} | {pct(r.wrk_cpu)} | {r.noise * 100:.1f} % |")
    lines += ["", "</details>", ""]
    return "\n".join(lines)


# ---- BENCHMARKS.md ----

END_MARKER = "<!-- bench-results:end -->"


def update_benchmarks(path: str, key: str, block: str) -> None:
    """Replace the block between this key's markers (one block per storage+mode), or insert it
    before END_MARKER (or at the end) the first time. Everything else in the file is kept."""
    begin, end = f"<!-- bench-results:{key} begin -->", f"<!-- bench-results:{key} end -->"
    wrapped = f"{begin}\n{block.rstrip()}\n{end}"
    with open(path) as f:
        text = f.read()
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _m: wrapped, text, count=1)
    elif END_MARKER in text:
        text = text.replace(END_MARKER, wrapped + "\n\n" + END_MARKER, 1)
    else:
        text = text.rstrip() + "\n\n" + wrapped + "\n"
    with open(path, "w") as f:
        f.write(text)
