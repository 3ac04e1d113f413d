"""How many fsync/fdatasync calls a server makes during a run: `perf stat` on the syscall
tracepoints of the server's process (every thread), started just before the measured wrk run
and stopped (SIGINT) right after it.

Used for persistent storage, where issue 12 asks for writes per fsync: requests answered over
the syncs counted is the group-commit factor, the same measure for both servers (OpenBao's raft
syncs its log and its FSM; Tresor's embedded store syncs once per group commit). Optional: when
`perf` is missing or the kernel refuses the tracepoints, the count is None and the report says
so; nothing else depends on it.
"""

from __future__ import annotations

import shutil
import signal
import subprocess

from . import procs

EVENTS = ("syscalls:sys_enter_fsync", "syscalls:sys_enter_fdatasync")


class SyncCounter:
    def __init__(self, pid: int):
        self.proc: subprocess.Popen | None = None
        self.reason = ""
        perf = shutil.which("perf")
        if perf is None:
            self.reason = "perf not found"
            return
        argv = [perf, "stat", "-x,", "-e", ",".join(EVENTS), "-p", str(pid)]
        self.proc = procs.spawn(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL)

    def stop(self) -> int | None:
        """The syncs counted since the start, or None (then `reason` says why)."""
        if self.proc is None:
            return None
        self.proc.send_signal(signal.SIGINT)
        try:
            err = self.proc.communicate(timeout=10)[1].decode(errors="replace")
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            self.reason = "perf stat did not stop"
            return None
        finally:
            procs.forget(self.proc)
        return parse(err, self)


def parse(output: str, into: SyncCounter | None = None) -> int | None:
    """Sum the counts of `perf stat -x,` output (`count,unit,event,...` per event); None if an
    event was not counted."""
    total, seen = 0, 0
    for line in output.splitlines():
        fields = line.split(",")
        if len(fields) < 3 or fields[2] not in EVENTS:
            continue
        if not fields[0].isdigit():  # "<not supported>" / "<not counted>"
            if into is not None:
                into.reason = f"perf could not count {fields[2]}: {fields[0]}"
            return None
        total += int(fields[0])
        seen += 1
    if seen != len(EVENTS):
        if into is not None:
            into.reason = "perf stat printed no counts: " + output.strip()[-200:]
        return None
    return total
