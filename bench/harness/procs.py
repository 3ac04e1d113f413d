"""Child processes the harness starts, and their cleanup.

Every child (servers, wrk) starts in its own session, i.e. its own process group, so a Ctrl-C
in the terminal reaches only the harness; the harness then stops each child it started, by its
process-group id, in `cleanup()`. SIGTERM and SIGHUP become SystemExit so the same `finally`
runs for them too.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

_children: list[subprocess.Popen] = []


def spawn(argv: list[str], **kwargs) -> subprocess.Popen:
    proc = subprocess.Popen(argv, start_new_session=True, **kwargs)
    _children.append(proc)
    return proc


def forget(proc: subprocess.Popen) -> None:
    """Stop tracking a child that has exited and been reaped (e.g. after communicate())."""
    if proc in _children:
        _children.remove(proc)


def stop(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGTERM the child's process group, then SIGKILL if it has not exited within `timeout`."""
    if proc.poll() is None:
        _signal_group(proc, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            proc.wait()
    forget(proc)


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def cleanup() -> None:
    """Stop every child still running, newest first."""
    for proc in reversed(list(_children)):
        stop(proc)


def install_signal_handlers() -> None:
    def exit_on(signum, _frame):
        print(f"stopped by {signal.Signals(signum).name}: stopping the processes this run started",
              file=sys.stderr, flush=True)
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, exit_on)
    # A shell starts background jobs with SIGINT ignored, and Python then keeps it ignored;
    # restore KeyboardInterrupt so Ctrl-C / kill -INT always reaches the cleanup.
    signal.signal(signal.SIGINT, signal.default_int_handler)


def free_port(exclude: set[int] = frozenset()) -> int:
    """A loopback port nothing listens on right now (the kernel picks it)."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in exclude:
            return port
