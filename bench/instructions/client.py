"""The fixture and the sequential client of bench/instructions/run.

    client.py setup ADDR       KV v2 at secret/, 1,000 keys of 1 KiB, a read-only token
    client.py read ADDR N      N reads of random keys (fixed seed), each checked
"""
import base64
import http.client
import json
import random
import sys
import time
import urllib.parse
import urllib.request

ROOT = "root"


def call(addr: str, method: str, path: str, body=None, token: str = ROOT):
    request = urllib.request.Request(
        f"{addr}/v1/{path}", method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"X-Vault-Token": token})
    with urllib.request.urlopen(request) as answer:
        raw = answer.read()
        return json.loads(raw) if raw else None


def secret_1k() -> dict:
    rng = random.Random(1)
    return {f"field{i}": base64.b64encode(rng.randbytes(90)).decode() for i in range(8)}


def setup(addr: str) -> None:
    deadline = time.monotonic() + 120
    while True:  # the server starts slowly under valgrind
        try:
            call(addr, "GET", "sys/health")
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    # A dev server already has KV v2 at secret/.
    if "secret/" not in call(addr, "GET", "sys/mounts")["data"]:
        call(addr, "POST", "sys/mounts/secret", {"type": "kv", "options": {"version": "2"}})
    for i in range(1000):
        for _ in range(100):
            try:
                call(addr, "POST", f"secret/data/key-{i}", {"data": secret_1k()})
                break
            except Exception:
                time.sleep(0.2)  # a fresh KV v2 mount upgrades for a moment
    call(addr, "PUT", "sys/policies/acl/bench-kv-read",
         {"policy": 'path "secret/data/*" { capabilities = ["read"] }'})
    auth = call(addr, "POST", "auth/token/create",
                {"policies": ["bench-kv-read"], "no_default_policy": True, "ttl": "24h"})
    with open(token_file(addr), "w") as out:
        out.write(auth["auth"]["client_token"])


def token_file(addr: str) -> str:
    return f"/tmp/tresor-bench-instructions-{urllib.parse.urlparse(addr).port}.token"


def read(addr: str, n: int) -> None:
    token = open(token_file(addr)).read()
    parsed = urllib.parse.urlparse(addr)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port)
    rng = random.Random(7)
    for _ in range(n):
        conn.request("GET", f"/v1/secret/data/key-{rng.randrange(1000)}",
                     headers={"X-Vault-Token": token})
        answer = conn.getresponse()
        body = answer.read()
        if answer.status != 200:
            raise SystemExit(f"read answered {answer.status}: {body[:200]!r}")


if __name__ == "__main__":
    if sys.argv[1] == "setup":
        setup(sys.argv[2])
    else:
        read(sys.argv[2], int(sys.argv[3]))
