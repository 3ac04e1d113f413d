"""A small Vault HTTP client for setup requests (stdlib only, one keep-alive connection)."""

from __future__ import annotations

import http.client
import json
import ssl
import urllib.parse


class ApiError(Exception):
    def __init__(self, method: str, path: str, status: int, message: str):
        super().__init__(f"{method} /v1/{path}: HTTP {status} {message}".rstrip())
        self.status = status


class Client:
    def __init__(self, url: str, token: str | None = None, timeout: float = 60.0):
        parsed = urllib.parse.urlsplit(url)
        self.scheme, self.host, self.port = parsed.scheme, parsed.hostname, parsed.port
        self.token = token
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def with_token(self, token: str | None) -> "Client":
        return Client(f"{self.scheme}://{self.host}:{self.port}", token, self.timeout)

    def request(self, method: str, path: str, body: dict | None = None) -> dict | None:
        """Send one request; return the decoded JSON body (None for 204), raise ApiError otherwise."""
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if self.token:
            headers["X-Vault-Token"] = self.token
        data = json.dumps(body).encode() if body is not None else None
        status, raw = self._send(method, "/v1/" + path, data, headers)
        decoded = _decode(raw)
        if not 200 <= status < 300:
            raise ApiError(method, path, status, _error_text(decoded, raw))
        return decoded

    def get(self, path: str) -> dict | None:
        return self.request("GET", path)

    def post(self, path: str, body: dict | None = None) -> dict | None:
        return self.request("POST", path, body if body is not None else {})

    def status(self, path: str) -> int:
        """The status code of an unauthenticated-style GET, without raising on non-2xx."""
        return self._send("GET", "/v1/" + path, None, {})[0]

    def _send(self, method, path, data, headers) -> tuple[int, bytes]:
        # One retry on a fresh connection: a server may close an idle keep-alive connection.
        for attempt in (1, 2):
            conn = self._connection()
            try:
                conn.request(method, path, body=data, headers=headers)
                response = conn.getresponse()
                return response.status, response.read()
            except (http.client.HTTPException, ConnectionError):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None and self.scheme == "https":
            # The TLS workloads' listeners serve the run's own self-signed certificate on
            # loopback; the harness checks they answer, not who they are.
            self._conn = http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout,
                                                     context=_unverified())
        if self._conn is None:
            self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _unverified() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _decode(raw: bytes):
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _error_text(decoded, raw: bytes) -> str:
    if isinstance(decoded, dict) and decoded.get("errors"):
        return "; ".join(str(e) for e in decoded["errors"])
    return raw[:200].decode(errors="replace").strip()
