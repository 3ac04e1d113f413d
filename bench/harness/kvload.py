"""KV v2 stores at scale for the scale workloads: how many keys, and loading them fast.

Shared by the heavy read workloads (workloads.py) and the restart-at-scale scenario
(restart_kv.py). Loading goes through `loader` (pipelined HTTP/1.1), the same for both servers.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

from . import loader
from .api import ApiError, Client


@dataclass(frozen=True)
class ScaleOptions:
    """The sizes of the scale workloads (bench/run --scale-keys and friends)."""
    keys: int = 1_000_000        # Tresor alone, and the 1M-key random reads on Tresor
    keys_compared: int = 100_000  # both servers (OpenBao on raft in restart-kv)
    churn_keys: int = 100_000
    churn_versions: int = 10

    def keys_for(self, server_name: str) -> int:
        """The large store: the full size for Tresor, the compared size for OpenBao (a million
        writes to OpenBao take too long to be part of a run)."""
        return self.keys if server_name == "Tresor" else self.keys_compared


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def mount(root: Client, mount_path: str) -> None:
    """Mount KV v2 at `mount_path` and wait until it takes writes (a fresh KV v2 mount answers
    errors for a moment while it upgrades)."""
    root.post(f"sys/mounts/{mount_path}", {"type": "kv", "options": {"version": "2"}})
    deadline = time.monotonic() + 10
    while True:
        try:
            root.get(f"{mount_path}/config")
            return
        except ApiError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def fill(name: str, url: str, token: str, mount_path: str, keys: int, versions: int,
         body: bytes) -> float:
    """Write `body` to key-0 … key-(keys-1) under `mount_path`, `versions` times over (pass by
    pass, so every key ends with `versions` versions). Returns the seconds it took."""
    total = keys * versions
    log(f"    {name:8} loading {keys:,} KV v2 secrets × {versions} version(s) into {mount_path}/")
    seconds = loader.run(url, token, total,
                         lambda i: ("POST", f"{mount_path}/data/key-{i % keys}", body))
    log(f"    {name:8} loaded {total:,} writes in {seconds:.1f} s ({total / seconds:,.0f}/s)")
    return seconds
