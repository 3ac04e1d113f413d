"""KV v1 and v2 through hvac, the Python Vault client, against a running server.

Usage: kv.py URL ROOT_TOKEN. Exits non-zero (with a traceback) on the first failed check;
prints "ok" at the end. Run by crates/tresor/tests/server/kv_hvac.rs.
"""

import sys
import warnings

import hvac
from hvac import exceptions

CAS_MISMATCH = "check-and-set parameter did not match the current version"


def expect(exc_type, fn, *args, **kwargs):
    """Calls fn and returns the exception of type exc_type it must raise."""
    try:
        fn(*args, **kwargs)
    except exc_type as e:
        return e
    raise AssertionError(f"{fn.__name__} did not raise {exc_type.__name__}")


def main(url, token):
    # hvac.patch reads without raise_on_deleted_version and warns about the v3 default.
    warnings.filterwarnings("ignore", message="The raise_on_deleted_version", category=DeprecationWarning)
    client = hvac.Client(url=url, token=token)
    assert client.is_authenticated()
    assert not hvac.Client(url=url, token="not-a-token").is_authenticated()
    assert client.sys.is_initialized()
    assert not client.sys.is_sealed()

    kv2 = client.secrets.kv.v2

    # Config.
    kv2.configure(max_versions=4, cas_required=False, mount_point="secret")
    config = kv2.read_configuration(mount_point="secret")["data"]
    assert config["max_versions"] == 4, config
    assert config["cas_required"] is False, config

    # Write, CAS, read.
    first = kv2.create_or_update_secret("hvac/app", {"user": "alice", "pass": "s1"}, cas=0)
    assert first["data"]["version"] == 1, first
    second = kv2.create_or_update_secret("hvac/app", {"user": "alice", "pass": "s2"}, cas=1)
    assert second["data"]["version"] == 2, second
    err = expect(
        exceptions.InvalidRequest,
        kv2.create_or_update_secret,
        "hvac/app",
        {"x": "y"},
        cas=1,
    )
    assert CAS_MISMATCH in str(err), err
    latest = kv2.read_secret_version("hvac/app", raise_on_deleted_version=True)
    assert latest["data"]["data"] == {"user": "alice", "pass": "s2"}, latest
    assert latest["data"]["metadata"]["version"] == 2, latest
    old = kv2.read_secret_version("hvac/app", version=1, raise_on_deleted_version=True)
    assert old["data"]["data"]["pass"] == "s1", old
    expect(
        exceptions.InvalidPath,
        kv2.read_secret_version,
        "hvac/none",
        raise_on_deleted_version=True,
    )

    # hvac's patch: read, merge, write back with cas = the version read.
    patched = kv2.patch("hvac/app", {"extra": "x"})
    assert patched["data"]["version"] == 3, patched
    merged = kv2.read_secret(path="hvac/app", raise_on_deleted_version=True)["data"]["data"]
    assert merged == {"user": "alice", "pass": "s2", "extra": "x"}, merged

    # Listing.
    kv2.create_or_update_secret("hvac/sub/leaf", {"k": "v"})
    keys = kv2.list_secrets("hvac")["data"]["keys"]
    assert keys == ["app", "sub/"], keys
    expect(exceptions.InvalidPath, kv2.list_secrets, "nothing-here")

    # Metadata with custom_metadata.
    kv2.update_metadata(
        "hvac/app",
        max_versions=3,
        custom_metadata={"owner": "team-a"},
    )
    meta = kv2.read_secret_metadata("hvac/app")["data"]
    assert meta["max_versions"] == 3, meta
    assert meta["custom_metadata"] == {"owner": "team-a"}, meta
    assert meta["current_version"] == 3, meta
    assert sorted(meta["versions"]) == ["1", "2", "3"], meta

    # Soft delete: hvac returns the metadata of a deleted version when asked not to raise.
    kv2.delete_latest_version_of_secret("hvac/app")
    expect(
        exceptions.InvalidPath,
        kv2.read_secret_version,
        "hvac/app",
        raise_on_deleted_version=True,
    )
    deleted = kv2.read_secret_version("hvac/app", raise_on_deleted_version=False)
    assert deleted["data"]["data"] is None, deleted
    assert deleted["data"]["metadata"]["deletion_time"] != "", deleted
    assert deleted["data"]["metadata"]["version"] == 3, deleted

    kv2.undelete_secret_versions("hvac/app", versions=[3])
    back = kv2.read_secret_version("hvac/app", raise_on_deleted_version=True)
    assert back["data"]["data"]["extra"] == "x", back
    kv2.delete_secret_versions("hvac/app", versions=[1, 2])
    kv2.destroy_secret_versions("hvac/app", versions=[2])
    versions = kv2.read_secret_metadata("hvac/app")["data"]["versions"]
    assert versions["1"]["deletion_time"] != "" and not versions["1"]["destroyed"], versions
    assert versions["2"]["destroyed"], versions
    assert versions["3"]["deletion_time"] == "", versions

    # max_versions pruning (the key's limit, 3, against the mount's 4: the larger applies).
    for i in range(4, 8):
        kv2.create_or_update_secret("hvac/app", {"v": str(i)})
    meta = kv2.read_secret_metadata("hvac/app")["data"]
    assert sorted(meta["versions"], key=int) == ["4", "5", "6", "7"], meta
    assert meta["oldest_version"] == 4, meta

    # Delete everything.
    kv2.delete_metadata_and_all_versions("hvac/app")
    expect(exceptions.InvalidPath, kv2.read_secret_metadata, "hvac/app")
    assert kv2.list_secrets("hvac")["data"]["keys"] == ["sub/"]

    # KV v1 on its own mount.
    client.sys.enable_secrets_engine("kv", path="hvac-v1", options={"version": "1"})
    kv1 = client.secrets.kv.v1
    kv1.create_or_update_secret("app/db", {"user": "bob", "ttl": "30m"}, mount_point="hvac-v1")
    read = kv1.read_secret("app/db", mount_point="hvac-v1")
    assert read["data"] == {"user": "bob", "ttl": "30m"}, read
    assert read["lease_duration"] == 1800, read
    assert kv1.list_secrets("app", mount_point="hvac-v1")["data"]["keys"] == ["db"]
    kv1.delete_secret("app/db", mount_point="hvac-v1")
    expect(exceptions.InvalidPath, kv1.read_secret, "app/db", mount_point="hvac-v1")

    # The in-place upgrade, as hvac users do it.
    kv1.create_or_update_secret("kept", {"a": "1"}, mount_point="hvac-v1")
    client.sys.tune_mount_configuration("hvac-v1", options={"version": "2"})
    upgraded = kv2.read_secret_version("kept", mount_point="hvac-v1", raise_on_deleted_version=True)
    assert upgraded["data"]["data"] == {"a": "1"}, upgraded
    assert upgraded["data"]["metadata"]["version"] == 1, upgraded

    print("ok")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
