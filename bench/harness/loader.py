"""Bulk loading over HTTP: many writes, fast, with the standard library only.

The scale workloads write up to millions of KV v2 secrets before they measure anything; one
request at a time from Python would take most of an hour. Here each of a few keep-alive
connections pipelines a batch of requests (HTTP/1.1 pipelining: send them all, then read the
answers in order), so the client's cost per write is formatting bytes and reading a status
line. Both Go's net/http and hyper answer pipelined requests one after the other.
"""

from __future__ import annotations

import socket
import threading
import time
import urllib.parse
from typing import Callable

# One request: (method, path without /v1/, JSON body bytes).
Request = tuple[str, str, bytes]


class LoadError(Exception):
    pass


def run(url: str, token: str, count: int, make: Callable[[int], Request],
        connections: int = 8, depth: int = 64) -> float:
    """Send `make(i)` for i in 0..count over `connections` pipelined connections, `depth`
    requests in flight on each; every answer must be 2xx. Returns the seconds it took."""
    parsed = urllib.parse.urlsplit(url)
    errors: list[str] = []
    started = time.monotonic()
    workers = [threading.Thread(target=_worker, args=(parsed.hostname, parsed.port, token, make,
                                                       range(w, count, connections), depth, errors))
               for w in range(min(connections, max(count, 1)))]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if errors:
        raise LoadError(f"{len(errors)} loader connection(s) failed; first: {errors[0]}")
    return time.monotonic() - started


def _worker(host, port, token, make, indices, depth, errors) -> None:
    try:
        with socket.create_connection((host, port), timeout=120) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            reader = sock.makefile("rb")
            for start in range(0, len(indices), depth):
                batch = [make(i) for i in indices[start:start + depth]]
                sock.sendall(b"".join(_format(host, token, r) for r in batch))
                for method, path, _ in batch:
                    status, body = _read_response(reader)
                    if not 200 <= status < 300:
                        raise LoadError(f"{method} /v1/{path}: HTTP {status} {body[:200]!r}")
    except (OSError, LoadError, ValueError) as err:
        errors.append(str(err))


def _format(host: str, token: str, request: Request) -> bytes:
    method, path, body = request
    head = (f"{method} /v1/{path} HTTP/1.1\r\nHost: {host}\r\nX-Vault-Token: {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


def _read_response(reader) -> tuple[int, bytes]:
    """One response off the connection: (status, body). Content-Length or chunked bodies."""
    status_line = reader.readline()
    if not status_line:
        raise LoadError("the server closed the connection")
    status = int(status_line.split(b" ", 2)[1])
    length, chunked = 0, False
    while True:
        line = reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    return status, _read_chunked(reader) if chunked else reader.read(length)


def _read_chunked(reader) -> bytes:
    parts = []
    while True:
        size = int(reader.readline().split(b";")[0], 16)
        if size == 0:
            reader.readline()  # the blank line after the last chunk (no trailers are sent)
            return b"".join(parts)
        parts.append(reader.read(size))
        reader.readline()
