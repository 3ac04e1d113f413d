#!/usr/bin/env python3
"""Checks the FAKE Azure Key Vault + Entra ID with the official Python clients.

Runs ``azure-keyvault-secrets`` 4.12.0 with ``azure-identity`` 1.27.0 (both installed by
scripts/install-peers.sh) against a fresh fake, with ``ClientSecretCredential`` and
``WorkloadIdentityCredential``: set, get (latest and by version), list with paging (more
secrets than ``max_page_size``), list versions, delete + poll (the deletion answers 404 once, as
Key Vault's asynchronous soft delete does) + recover + delete + purge; the refusals the official
clients surface (a wrong client secret: AADSTS7000215; an assertion whose subject matches no
federated credential: AADSTS700213; a principal with only Key Vault Reader: 403 Forbidden; a
missing secret: 404 SecretNotFound; an invalid name: 400 BadParameter). The clients talk to the
fake over HTTPS with its CA, with ``authority`` pointed at it, ``disable_instance_discovery``
and ``verify_challenge_resource=False`` (the challenge's resource is vault.azure.net, not
127.0.0.1).

Usage: ``check_real_clients.py``. Prints one line per check and a closing ``N passed, M
failed``; exits non-zero on any failure.
"""

import json
import os
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
)
from azure.identity import ClientSecretCredential, WorkloadIdentityCredential
from azure.keyvault.secrets import SecretClient

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = []
TENANT = "72f988bf-0000-4000-8000-00000000fa4e"
OFFICER = "a1a1a1a1-0000-4000-8000-00000000a001"
FEDERATED = "b2b2b2b2-0000-4000-8000-00000000b002"
READER = "c3c3c3c3-0000-4000-8000-00000000c003"
SUBJECT = "system:serviceaccount:tresor:vault-bootstrap"


def check(name, ok, detail=""):
    RESULTS.append(bool(ok))
    print("%s %s%s" % ("ok  " if ok else "FAIL", name, "" if ok or not detail else ": %s" % detail),
          flush=True)


def start_fake(workdir):
    proc = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "fake_azure_keyvault.py"), "--dir", workdir,
         "--seed", os.path.join(HERE, "seed.json")],
        stdout=subprocess.PIPE, stderr=open(os.path.join(workdir, "stderr"), "w"), text=True,
    )
    line = proc.stdout.readline()
    if not line.startswith("fake-azure-keyvault ready "):
        proc.kill()
        raise SystemExit("the fake did not start: %s" % open(os.path.join(workdir, "stderr")).read())
    with open(os.path.join(workdir, "server.json")) as f:
        return proc, json.load(f)


class Fake:
    def __init__(self, info):
        self.info = info
        self.ctx = ssl.create_default_context(cafile=info["ca_file"])

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.info["url"] + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, context=self.ctx, timeout=10) as r:
            text = r.read()
            return json.loads(text) if text else None

    def requests(self):
        return self.call("GET", "/fake/requests")["requests"]


def client(info, credential):
    return SecretClient(vault_url=info["vault_url"], credential=credential, api_version="7.4",
                        verify_challenge_resource=False, connection_verify=info["ca_file"])


def cred_kwargs(info):
    return {"authority": info["authority"], "disable_instance_discovery": True,
            "connection_verify": info["ca_file"]}


def expect(name, exc_type, fn, *needles):
    try:
        fn()
    except exc_type as e:
        text = str(e)
        missing = [n for n in needles if n not in text]
        check(name, not missing, "missing %s in %s" % (missing, text))
        return e
    except Exception as e:  # noqa: BLE001
        check(name, False, "raised %s: %s" % (e.__class__.__name__, e))
        return None
    check(name, False, "no error")
    return None


def run(fake, info, workdir):
    officer = ClientSecretCredential(TENANT, OFFICER, "fake-client-secret-officer", **cred_kwargs(info))
    sc = client(info, officer)

    # set, get latest, get by version
    first = sc.set_secret("check-db-password", "fake-value-1")
    second = sc.set_secret("check-db-password", "fake-value-2", content_type="text/plain",
                           tags={"owner": "check"})
    check("set returns a new version each time",
          first.properties.version and first.properties.version != second.properties.version)
    latest = sc.get_secret("check-db-password")
    check("get latest", latest.value == "fake-value-2" and latest.properties.version == second.properties.version
          and latest.properties.content_type == "text/plain" and latest.properties.tags == {"owner": "check"})
    old = sc.get_secret("check-db-password", first.properties.version)
    check("get by version", old.value == "fake-value-1")
    reqs = fake.requests()
    check("the challenge came first: an unauthenticated GET/PUT answered 401",
          any(r["server"] == "keyvault" and r["authorization"] == "none" and r["status"] == 401 for r in reqs))
    check("ClientSecretCredential asked for https://vault.azure.net/.default with a client secret",
          any(r["server"] == "entra" and r.get("credential") == "client_secret"
              and r["scope"] == "https://vault.azure.net/.default" and r["status"] == 200 for r in reqs))
    check("get latest used the trailing-slash path",
          any(r["path"] == "/secrets/check-db-password/" and r["method"] == "GET" for r in reqs))

    # paging: 30 secrets with pages of 7
    for i in range(30):
        sc.set_secret("page-%02d" % i, "fake-page-value-%d" % i)
    fake.call("DELETE", "/fake/requests")
    names = [p.name for p in sc.list_properties_of_secrets(max_page_size=7)]
    expected = sorted(["check-db-password", "ghcr-token", "ghcr-username"] + ["page-%02d" % i for i in range(30)])
    check("list pages through nextLink", sorted(names) == expected, "%s" % names)
    pages = [r for r in fake.requests() if r["path"] == "/secrets" and r["method"] == "GET" and r["status"] == 200]
    check("list took ceil(33/7) = 5 pages of maxresults=7",
          len(pages) == 5 and all(r["maxresults"] == "7" for r in pages), "%s" % pages)
    versions = [p.version for p in sc.list_properties_of_secret_versions("check-db-password")]
    check("list versions", sorted(versions) == sorted([first.properties.version, second.properties.version]))

    # delete + poll (the fake answers the first poll 404) + recover + delete + purge
    fake.call("POST", "/fake/faults", {"target": "keyvault", "status": 404, "count": 1,
                                       "path_prefix": "/deletedsecrets/page-00"})
    t0 = time.monotonic()
    poller = sc.begin_delete_secret("page-00", _polling_interval=0.2)
    deleted = poller.result()
    poller.wait()
    check("delete returns a DeletedSecret with a recovery id",
          deleted.name == "page-00" and deleted.recovery_id.endswith("/deletedsecrets/page-00")
          and deleted.scheduled_purge_date is not None)
    polls = [r for r in fake.requests() if r["path"] == "/deletedsecrets/page-00" and r["method"] == "GET"]
    check("the delete poller polled until the deletion was visible",
          [r["status"] for r in polls] == [404, 200] and time.monotonic() - t0 < 10, "%s" % polls)
    expect("a deleted secret is not found", ResourceNotFoundError,
           lambda: sc.get_secret("page-00"), "SecretNotFound")
    check("listed among deleted secrets", "page-00" in [d.name for d in sc.list_deleted_secrets()])
    check("get deleted secret", sc.get_deleted_secret("page-00").name == "page-00")
    expect("a soft-deleted name cannot be set", HttpResponseError,
           lambda: sc.set_secret("page-00", "x"), "Conflict", "deleted but recoverable state")
    recovered = sc.begin_recover_deleted_secret("page-00", _polling_interval=0.2).result()
    check("recover", recovered.name == "page-00" and sc.get_secret("page-00").value == "fake-page-value-0")
    sc.begin_delete_secret("page-01", _polling_interval=0.2).wait()
    sc.purge_deleted_secret("page-01")
    expect("purged: no longer among deleted secrets", ResourceNotFoundError,
           lambda: sc.get_deleted_secret("page-01"), "SecretNotFound")

    # refusals
    expect("a missing secret: 404 SecretNotFound", ResourceNotFoundError,
           lambda: sc.get_secret("no-such-secret"), "SecretNotFound", "was not found in this key vault")
    expect("an invalid name: 400 BadParameter", HttpResponseError,
           lambda: sc.get_secret("bad_name"), "BadParameter", "invalid name: bad_name")
    bad = ClientSecretCredential(TENANT, OFFICER, "wrong-secret", **cred_kwargs(info))
    expect("a wrong client secret: AADSTS7000215", ClientAuthenticationError,
           lambda: client(info, bad).get_secret("ghcr-token"), "AADSTS7000215", "Invalid client secret")
    reader = ClientSecretCredential(TENANT, READER, "fake-client-secret-reader", **cred_kwargs(info))
    rc = client(info, reader)
    check("Key Vault Reader may list", "ghcr-token" in [p.name for p in rc.list_properties_of_secrets()])
    expect("Key Vault Reader may not get: 403 Forbidden", HttpResponseError,
           lambda: rc.get_secret("ghcr-token"), "Forbidden", "getSecret/action")

    # Workload identity: a projected-token-like file exchanged for a Key Vault token
    token = fake.call("POST", "/fake/federated-token", {"subject": SUBJECT})["token"]
    token_file = os.path.join(workdir, "azure-identity-token")
    with open(token_file, "w") as f:
        f.write(token)
    wi = WorkloadIdentityCredential(tenant_id=TENANT, client_id=FEDERATED, token_file_path=token_file,
                                    **cred_kwargs(info))
    fake.call("DELETE", "/fake/requests")
    check("WorkloadIdentityCredential reads a secret", client(info, wi).get_secret("ghcr-token").value == "fake-ghcr-token-v2")
    check("it sent a jwt-bearer client assertion, no secret",
          any(r["server"] == "entra" and r.get("credential") == "client_assertion" and r["status"] == 200
              for r in fake.requests()))
    other = fake.call("POST", "/fake/federated-token", {"subject": "system:serviceaccount:tresor:other"})["token"]
    other_file = os.path.join(workdir, "other-token")
    with open(other_file, "w") as f:
        f.write(other)
    wi_other = WorkloadIdentityCredential(tenant_id=TENANT, client_id=FEDERATED, token_file_path=other_file,
                                          **cred_kwargs(info))
    expect("an unmatched subject: AADSTS700213", ClientAuthenticationError,
           lambda: client(info, wi_other).get_secret("ghcr-token"), "AADSTS700213",
           "system:serviceaccount:tresor:other")

    # nothing secret in what the fake recorded or logged
    with open(os.path.join(workdir, "fake-azure-keyvault.log")) as f:
        log = f.read()
    recorded = json.dumps(fake.requests()) + log
    leaks = [s for s in ("fake-value-", "fake-client-secret", "fake-ghcr-token", token[:40]) if s in recorded]
    check("no value, client secret or token in /fake/requests or the log", not leaks, "%s" % leaks)


def main():
    with tempfile.TemporaryDirectory(prefix="fake-azure-check-") as workdir:
        proc, info = start_fake(workdir)
        try:
            run(Fake(info), info, workdir)
        except Exception as e:  # noqa: BLE001
            import traceback
            traceback.print_exc()
            check("the checks ran to the end", False, "%s: %s" % (e.__class__.__name__, e))
        finally:
            proc.kill()
            proc.wait()
    failed = RESULTS.count(False)
    print("%d passed, %d failed" % (RESULTS.count(True), failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
