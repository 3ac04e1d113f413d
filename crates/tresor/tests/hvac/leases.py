"""hvac's lease API (hvac.api.system_backend.lease) against Tresor, with tokens as the leases.

Usage: leases.py ADDR ROOT_TOKEN. Prints "ok" when every check passes.
"""
import sys

import hvac
from hvac import exceptions

addr, root = sys.argv[1], sys.argv[2]
client = hvac.Client(url=addr, token=root)

made = client.auth.token.create_orphan(policies=["default"], ttl="1h")
token = made["auth"]["client_token"]

listed = client.sys.list_leases(prefix="auth/token/create-orphan/")
keys = listed["data"]["keys"]
assert len(keys) == 1, keys
lease_id = "auth/token/create-orphan/" + keys[0]

found = client.sys.read_lease(lease_id=lease_id)["data"]
assert found["id"] == lease_id, found
assert found["renewable"] is True, found
assert 3500 < found["ttl"] <= 3600, found
assert found["expire_time"], found

try:
    client.sys.renew_lease(lease_id=lease_id, increment=60)
    raise AssertionError("a token lease must not renew through sys/leases/renew")
except exceptions.InvalidRequest as e:
    assert "tokens cannot be renewed through this endpoint" in str(e), e

try:
    client.sys.read_lease(lease_id="nope/x")
    raise AssertionError("unknown lease")
except exceptions.InvalidRequest as e:
    assert "invalid lease" in str(e), e

# Unknown lease: a no-op.
client.sys.revoke_lease(lease_id="nope/x")

assert hvac.Client(url=addr, token=token).is_authenticated()
client.sys.revoke_lease(lease_id=lease_id)
assert not hvac.Client(url=addr, token=token).is_authenticated()

# revoke-prefix and revoke-force.
second = client.auth.token.create_orphan(policies=["default"], ttl="1h")["auth"]["client_token"]
client.sys.revoke_prefix(prefix="auth/token/create-orphan")
assert not hvac.Client(url=addr, token=second).is_authenticated()
third = client.auth.token.create_orphan(policies=["default"], ttl="1h")["auth"]["client_token"]
client.sys.revoke_force(prefix="auth/token/create-orphan")
assert not hvac.Client(url=addr, token=third).is_authenticated()

try:
    client.sys.list_leases(prefix="auth/token/create-orphan/")
    raise AssertionError("nothing left to list")
except exceptions.InvalidPath:
    pass

print("ok")
