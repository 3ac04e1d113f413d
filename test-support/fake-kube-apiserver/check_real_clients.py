#!/usr/bin/env python3
"""Checks the fake Kubernetes API server with real clients, so it answers as kube-apiserver does.

Runs the official Python client (``kubernetes`` 37.0.2, installed by scripts/install-peers.sh)
and kubectl against a fresh fake: discovery, namespaces, service accounts, TokenRequest,
ClusterRoleBindings, legacy service-account-token Secrets and TokenReviews (authenticated, a
bad reviewed token, a caller without system:auth-delegator: 403, a bad caller token: 401). Every
body the fake saw or sent must satisfy the official schemas (its violation list stays empty).

Usage: ``check_real_clients.py [--kubectl PATH]``. Prints one line per check and a closing
``N passed, M failed``; exits non-zero on any failure.
"""

import argparse
import copy
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import ssl

import kubernetes
import kubernetes.watch
from kubernetes.client.rest import ApiException

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = []
# Words in the errors of built-in bodies the kubectl checks send to be refused.
EXPECTED_BAD = []


def check(name, ok, detail=""):
    RESULTS.append(ok)
    print("%s %s%s" % ("ok  " if ok else "FAIL", name, "" if ok or not detail else ": %s" % detail), flush=True)


def start_fake(workdir):
    proc = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "fake_kube_apiserver.py"), "--dir", workdir],
        stdout=subprocess.DEVNULL, stderr=open(os.path.join(workdir, "stderr"), "w"),
    )
    info_path = os.path.join(workdir, "server.json")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("the fake exited: %s" % open(os.path.join(workdir, "stderr")).read())
        if os.path.exists(info_path):
            info = json.load(open(info_path))
            ctx = ssl.create_default_context(cafile=info["ca_file"])
            try:
                with urllib.request.urlopen(info["url"] + "/readyz", context=ctx, timeout=2) as r:
                    if r.status == 200:
                        return proc, info
            except OSError:
                pass
        time.sleep(0.05)
    proc.kill()
    raise SystemExit("the fake did not become ready within 60 s")


def api_client(info, token):
    conf = kubernetes.client.Configuration()
    conf.host = info["url"]
    conf.ssl_ca_cert = info["ca_file"]
    conf.api_key = {"authorization": token}
    conf.api_key_prefix = {"authorization": "Bearer"}
    return kubernetes.client.ApiClient(conf)


def python_client_checks(info, admin):
    client = api_client(info, admin)
    core = kubernetes.client.CoreV1Api(client)
    auth = kubernetes.client.AuthenticationV1Api(client)
    rbac = kubernetes.client.RbacAuthorizationV1Api(client)

    version = kubernetes.client.VersionApi(client).get_code()
    check("python: /version", version.major == "1" and version.minor == "37", version)
    groups = kubernetes.client.ApisApi(client).get_api_versions()
    check("python: /apis lists authentication.k8s.io",
          any(g.name == "authentication.k8s.io" for g in groups.groups))
    resources = kubernetes.client.AuthenticationV1Api(client).get_api_resources()
    check("python: /apis/authentication.k8s.io/v1 has tokenreviews",
          any(r.name == "tokenreviews" for r in resources.resources))

    ns = core.create_namespace(kubernetes.client.V1Namespace(
        metadata=kubernetes.client.V1ObjectMeta(name="team-a", labels={"stage": "prod"})))
    check("python: create namespace with labels", ns.metadata.labels.get("stage") == "prod")
    read = core.read_namespace("team-a")
    check("python: read namespace", read.metadata.labels.get("kubernetes.io/metadata.name") == "team-a")
    for name in ("app", "reviewer", "nobody"):
        core.create_namespaced_service_account("team-a", kubernetes.client.V1ServiceAccount(
            metadata=kubernetes.client.V1ObjectMeta(name=name)))
    sa = core.read_namespaced_service_account("app", "team-a")
    check("python: service account has a uid", bool(sa.metadata.uid))
    try:
        core.create_namespaced_service_account("team-a", kubernetes.client.V1ServiceAccount(
            metadata=kubernetes.client.V1ObjectMeta(name="app")))
        check("python: duplicate service account is 409", False, "no error")
    except ApiException as e:
        check("python: duplicate service account is 409", e.status == 409 and json.loads(e.body)["reason"] == "AlreadyExists")

    rbac.create_cluster_role_binding(kubernetes.client.V1ClusterRoleBinding(
        metadata=kubernetes.client.V1ObjectMeta(name="reviewer-delegator"),
        role_ref=kubernetes.client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole",
                                             name="system:auth-delegator"),
        subjects=[kubernetes.client.RbacV1Subject(kind="ServiceAccount", name="reviewer", namespace="team-a")]))

    def token_for(name, audiences=None, seconds=3600):
        tr = core.create_namespaced_service_account_token(name, "team-a", kubernetes.client.AuthenticationV1TokenRequest(
            spec=kubernetes.client.V1TokenRequestSpec(audiences=audiences or [], expiration_seconds=seconds)))
        return tr.status.token

    app_token = token_for("app", ["vault"])
    reviewer_token = token_for("reviewer")
    nobody_token = token_for("nobody")
    try:
        token_for("app", ["vault"], 60)
        check("python: TokenRequest under 10 minutes is 422", False, "no error")
    except ApiException as e:
        check("python: TokenRequest under 10 minutes is 422", e.status == 422)

    review = kubernetes.client.AuthenticationV1Api(api_client(info, reviewer_token)).create_token_review(
        kubernetes.client.V1TokenReview(spec=kubernetes.client.V1TokenReviewSpec(token=app_token, audiences=["vault"])))
    check("python: TokenReview by an auth-delegator authenticates the token",
          review.status.authenticated is True
          and review.status.user.username == "system:serviceaccount:team-a:app"
          and review.status.user.uid == sa.metadata.uid
          and review.status.audiences == ["vault"], review.status)

    review = auth.create_token_review(kubernetes.client.V1TokenReview(
        spec=kubernetes.client.V1TokenReviewSpec(token=app_token, audiences=["other"])))
    check("python: TokenReview with a foreign audience is unauthenticated with status.error",
          not review.status.authenticated and "is invalid for the target audiences" in (review.status.error or ""),
          review.status)
    review = auth.create_token_review(kubernetes.client.V1TokenReview(
        spec=kubernetes.client.V1TokenReviewSpec(token="not-a-token")))
    check("python: TokenReview of garbage is unauthenticated", not review.status.authenticated)

    try:
        kubernetes.client.AuthenticationV1Api(api_client(info, nobody_token)).create_token_review(
            kubernetes.client.V1TokenReview(spec=kubernetes.client.V1TokenReviewSpec(token=app_token)))
        check("python: TokenReview without auth-delegator is 403", False, "no error")
    except ApiException as e:
        body = json.loads(e.body)
        check("python: TokenReview without auth-delegator is 403 Status",
              e.status == 403 and body["kind"] == "Status" and body["reason"] == "Forbidden"
              and 'User "system:serviceaccount:team-a:nobody" cannot create resource "tokenreviews"' in body["message"],
              body)
    try:
        kubernetes.client.AuthenticationV1Api(api_client(info, "bogus")).create_token_review(
            kubernetes.client.V1TokenReview(spec=kubernetes.client.V1TokenReviewSpec(token=app_token)))
        check("python: TokenReview with a bad caller token is 401", False, "no error")
    except ApiException as e:
        check("python: TokenReview with a bad caller token is 401 Status",
              e.status == 401 and json.loads(e.body)["reason"] == "Unauthorized")

    secret = core.create_namespaced_secret("team-a", kubernetes.client.V1Secret(
        metadata=kubernetes.client.V1ObjectMeta(name="app-token", annotations={
            "kubernetes.io/service-account.name": "app"}),
        type="kubernetes.io/service-account-token"))
    legacy = core.read_namespaced_secret("app-token", "team-a")
    import base64
    legacy_token = base64.b64decode(legacy.data["token"]).decode()
    review = auth.create_token_review(kubernetes.client.V1TokenReview(
        spec=kubernetes.client.V1TokenReviewSpec(token=legacy_token)))
    check("python: a legacy secret token reviews as its service account",
          review.status.authenticated and review.status.user.username == "system:serviceaccount:team-a:app",
          review.status)
    core.delete_namespaced_secret(secret.metadata.name, "team-a")
    review = auth.create_token_review(kubernetes.client.V1TokenReview(
        spec=kubernetes.client.V1TokenReviewSpec(token=legacy_token)))
    check("python: a deleted secret's token no longer reviews", not review.status.authenticated, review.status)

    core.delete_namespaced_service_account("app", "team-a")
    review = auth.create_token_review(kubernetes.client.V1TokenReview(
        spec=kubernetes.client.V1TokenReviewSpec(token=app_token, audiences=["vault"])))
    check("python: a deleted service account's token no longer reviews",
          not review.status.authenticated and "not found" in (review.status.error or ""), review.status)
    return reviewer_token


def kubectl_checks(info, admin, kubectl, workdir):
    """kubectl's typed commands (`create namespace`, `create token`) send protobuf, which the
    fake does not speak; the same objects go through `create -f` and `create --raw` (JSON)."""
    base = [kubectl, "--server", info["url"], "--certificate-authority", info["ca_file"], "--token", admin]

    def run(*args):
        p = subprocess.run(base + list(args), capture_output=True, text=True, timeout=60)
        return p.returncode, p.stdout, p.stderr

    def write(name, text):
        path = os.path.join(workdir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    code, out, err = run("version", "-o", "json")
    check("kubectl: version", code == 0 and json.loads(out)["serverVersion"]["minor"] == "37", err)
    code, out, err = run("api-versions")
    check("kubectl: api-versions (discovery)", code == 0 and "authentication.k8s.io/v1" in out.split(), err)
    ns = write("namespace.yaml", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team-b\n  labels:\n    stage: dev\n")
    code, out, err = run("create", "-f", ns, "-o", "json", "--validate=false")
    check("kubectl: create -f namespace.yaml", code == 0 and json.loads(out)["metadata"]["labels"]["stage"] == "dev", err)
    code, out, err = run("get", "namespace", "team-b", "-o", "json")
    check("kubectl: get namespace", code == 0 and json.loads(out)["metadata"]["name"] == "team-b", err)
    sa = write("sa.yaml", "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: web\n  namespace: team-b\n")
    code, out, err = run("create", "-f", sa, "-o", "json", "--validate=false")
    check("kubectl: create -f serviceaccount.yaml", code == 0 and bool(json.loads(out)["metadata"]["uid"]), err)
    tr = write("tokenrequest.json", json.dumps({
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
        "spec": {"audiences": ["vault"], "expirationSeconds": 3600}}))
    code, out, err = run("create", "--raw", "/api/v1/namespaces/team-b/serviceaccounts/web/token", "-f", tr)
    token = json.loads(out)["status"]["token"] if code == 0 else ""
    check("kubectl: create --raw .../serviceaccounts/web/token (TokenRequest)", token.count(".") == 2, err)
    review = write("tokenreview.yaml", "apiVersion: authentication.k8s.io/v1\nkind: TokenReview\nspec:\n"
                   "  token: %s\n  audiences:\n  - vault\n" % token)
    code, out, err = run("create", "-f", review, "-o", "json", "--validate=false")
    status = json.loads(out)["status"] if code == 0 else {}
    check("kubectl: create -f tokenreview.yaml -o json authenticates the token",
          status.get("authenticated") is True
          and status["user"]["username"] == "system:serviceaccount:team-b:web"
          and status.get("audiences") == ["vault"], err or status)
    review = write("badreview.yaml", "apiVersion: authentication.k8s.io/v1\nkind: TokenReview\nspec:\n"
                   "  token: %s\n  audiences:\n  - someone-else\n" % token)
    code, out, err = run("create", "-f", review, "-o", "json", "--validate=false")
    status = json.loads(out)["status"] if code == 0 else {}
    check("kubectl: a review for another audience is unauthenticated with status.error",
          not status.get("authenticated") and "is invalid for the target audiences" in status.get("error", ""),
          err or status)
    code, out, err = run("get", "namespace", "nope", "-o", "json")
    check("kubectl: a missing namespace is NotFound", code != 0 and 'namespaces "nope" not found' in err, err)


WIDGET_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {
        "group": "example.com", "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList",
                  "shortNames": ["wd"]},
        "versions": [{
            "name": "v1", "served": True, "storage": True, "subresources": {"status": {}},
            "schema": {"openAPIV3Schema": {
                "type": "object",
                "properties": {
                    "spec": {"type": "object", "required": ["color"], "properties": {
                        "color": {"type": "string", "enum": ["red", "blue"]},
                        "size": {"type": "integer", "default": 3},
                        "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                    }},
                    "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}},
                },
            }},
        }],
    },
}


def python_resource_checks(info, admin):
    """The generic API: Secrets, watch, Leases, Events, Deployments, CRDs and custom resources,
    garbage collection, through the official Python client."""
    client = api_client(info, admin)
    core = kubernetes.client.CoreV1Api(client)
    apps = kubernetes.client.AppsV1Api(client)
    coord = kubernetes.client.CoordinationV1Api(client)
    ext = kubernetes.client.ApiextensionsV1Api(client)
    custom = kubernetes.client.CustomObjectsApi(client)
    V1ObjectMeta = kubernetes.client.V1ObjectMeta

    core.create_namespace(kubernetes.client.V1Namespace(metadata=V1ObjectMeta(name="sync")))
    created = core.create_namespaced_secret("sync", kubernetes.client.V1Secret(
        metadata=V1ObjectMeta(name="db", labels={"app": "db", "tier": "back"}),
        string_data={"password": "s3cret"}))
    check("python: create secret (stringData lands in data, type defaults to Opaque)",
          created.data == {"password": "czNjcmV0"} and created.string_data is None and created.type == "Opaque",
          created)
    generated = core.create_namespaced_secret("sync", kubernetes.client.V1Secret(
        metadata=V1ObjectMeta(generate_name="gen-", labels={"app": "web"}), data={"k": "dg=="}))
    check("python: generateName", generated.metadata.name.startswith("gen-") and len(generated.metadata.name) == 9,
          generated.metadata.name)
    try:
        core.create_namespaced_secret("sync", kubernetes.client.V1Secret(metadata=V1ObjectMeta(name="db")))
        check("python: duplicate secret is 409 AlreadyExists", False, "no error")
    except ApiException as e:
        check("python: duplicate secret is 409 AlreadyExists", e.status == 409 and json.loads(e.body)["reason"] == "AlreadyExists")
    listed = core.list_namespaced_secret("sync", label_selector="app in (db,cache),tier!=front")
    check("python: list with a set-based label selector", [s.metadata.name for s in listed.items] == ["db"], listed.items)
    listed = core.list_namespaced_secret("sync", field_selector="metadata.name=%s" % generated.metadata.name)
    check("python: list with a metadata.name field selector", [s.metadata.name for s in listed.items] == [generated.metadata.name])
    for i in range(3):
        core.create_namespaced_secret("sync", kubernetes.client.V1Secret(metadata=V1ObjectMeta(name="page-%d" % i, labels={"page": "yes"})))
    first = core.list_namespaced_secret("sync", label_selector="page", limit=2)
    rest = core.list_namespaced_secret("sync", label_selector="page", limit=2, _continue=first.metadata._continue)
    check("python: paged list (limit/continue)",
          [s.metadata.name for s in first.items + rest.items] == ["page-0", "page-1", "page-2"]
          and first.metadata.remaining_item_count == 1 and not rest.metadata._continue)

    # A watch from the list's resourceVersion sees exactly the later changes.
    start = core.list_namespaced_secret("sync").metadata.resource_version
    db = core.read_namespaced_secret("db", "sync")
    db.data["password"] = "bmV3"
    replaced = core.replace_namespaced_secret("db", "sync", db)
    stale = copy.deepcopy(db)
    try:
        core.replace_namespaced_secret("db", "sync", stale)
        check("python: update with a stale resourceVersion is 409 Conflict", False, "no error")
    except ApiException as e:
        body = json.loads(e.body)
        check("python: update with a stale resourceVersion is 409 Conflict",
              e.status == 409 and body["reason"] == "Conflict" and "the object has been modified" in body["message"], body)
    same = core.replace_namespaced_secret("db", "sync", replaced)
    check("python: an update that changes nothing keeps the resourceVersion",
          same.metadata.resource_version == replaced.metadata.resource_version)
    core.patch_namespaced_secret("db", "sync", {"metadata": {"labels": {"tier": "front"}}})
    core.delete_namespaced_secret(generated.metadata.name, "sync")
    events = []
    for ev in kubernetes.watch.Watch().stream(core.list_namespaced_secret, "sync", resource_version=start,
                                              timeout_seconds=2, label_selector="app"):
        events.append((ev["type"], ev["object"].metadata.name))
        if len(events) == 3:
            break
    check("python: watch from a resourceVersion streams MODIFIED and DELETED in order",
          events == [("MODIFIED", "db"), ("MODIFIED", "db"), ("DELETED", generated.metadata.name)], events)
    compacted = fake_call(info, admin, "POST", "/fake/compact")["resourceVersion"]
    try:
        for _ in kubernetes.watch.Watch().stream(core.list_namespaced_secret, "sync", resource_version=start, timeout_seconds=2):
            pass
        check("python: a watch from a compacted resourceVersion is 410 Gone", False, "no error")
    except ApiException as e:
        check("python: a watch from a compacted resourceVersion is 410 Gone", e.status == 410, (e.status, e.reason, compacted))

    # Leases: optimistic concurrency as leader election uses it.
    lease = coord.create_namespaced_lease("sync", kubernetes.client.V1Lease(
        metadata=V1ObjectMeta(name="tresor-sync"),
        spec=kubernetes.client.V1LeaseSpec(holder_identity="a", lease_duration_seconds=15)))
    lease.spec.holder_identity = "b"
    coord.replace_namespaced_lease("tresor-sync", "sync", lease)
    try:
        lease.spec.holder_identity = "c"
        coord.replace_namespaced_lease("tresor-sync", "sync", lease)
        check("python: Lease replace with a stale resourceVersion is 409", False, "no error")
    except ApiException as e:
        check("python: Lease replace with a stale resourceVersion is 409",
              e.status == 409 and json.loads(e.body)["reason"] == "Conflict")
    check("python: the Lease keeps the winner", coord.read_namespaced_lease("tresor-sync", "sync").spec.holder_identity == "b")

    # Events, both APIs.
    core.create_namespaced_event("sync", kubernetes.client.CoreV1Event(
        metadata=V1ObjectMeta(generate_name="db."), reason="SyncFailed", type="Warning", message="denied",
        involved_object=kubernetes.client.V1ObjectReference(kind="Secret", name="db", namespace="sync")))
    kubernetes.client.EventsV1Api(client).create_namespaced_event("sync", kubernetes.client.EventsV1Event(
        metadata=V1ObjectMeta(generate_name="db."), event_time=datetime.datetime.now(datetime.timezone.utc),
        reporting_controller="tresor.dev/sync", reporting_instance="sync-0", action="Sync", reason="Synced",
        type="Normal", regarding=kubernetes.client.V1ObjectReference(kind="Secret", name="db", namespace="sync")))
    evs = core.list_namespaced_event("sync", field_selector="involvedObject.name=db,reason=SyncFailed")
    check("python: core/v1 and events.k8s.io/v1 Events", len(evs.items) == 1
          and len(kubernetes.client.EventsV1Api(client).list_namespaced_event("sync").items) == 1)

    # Deployments: strategic merge patch as `kubectl rollout restart` sends it; generation.
    dep = apps.create_namespaced_deployment("sync", {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api"},
        "spec": {"selector": {"matchLabels": {"app": "api"}}, "template": {
            "metadata": {"labels": {"app": "api"}},
            "spec": {"containers": [{"name": "api", "image": "api:1", "env": [{"name": "A", "value": "1"}]},
                                    {"name": "side", "image": "side:1"}]}}}})
    patched = apps.patch_namespaced_deployment("api", "sync", {"spec": {"template": {
        "metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"}},
        "spec": {"containers": [{"name": "api", "env": [{"name": "B", "value": "2"}]}]}}}})
    containers = patched.spec.template.spec.containers
    check("python: strategic merge patch of a Deployment merges containers and env by name",
          patched.spec.template.metadata.annotations == {"kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"}
          and [c.name for c in containers] == ["api", "side"] and containers[0].image == "api:1"
          and [e.name for e in containers[0].env] == ["A", "B"], patched.spec.template)
    check("python: a spec change bumps the Deployment's generation",
          dep.metadata.generation == 1 and patched.metadata.generation == 2 and patched.status.observed_generation == 2)

    # Garbage collection: a Secret owned by the Deployment goes with it.
    core.create_namespaced_secret("sync", kubernetes.client.V1Secret(metadata=V1ObjectMeta(
        name="api-owned", owner_references=[kubernetes.client.V1OwnerReference(
            api_version="apps/v1", kind="Deployment", name="api", uid=dep.metadata.uid, controller=True)])))
    apps.delete_namespaced_deployment("api", "sync")
    try:
        core.read_namespaced_secret("api-owned", "sync")
        check("python: deleting the owner deletes its dependents", False, "still there")
    except ApiException as e:
        check("python: deleting the owner deletes its dependents", e.status == 404)

    # CRDs and custom resources.
    crd = ext.create_custom_resource_definition(WIDGET_CRD)
    check("python: a CRD is Established", any(c.type == "Established" and c.status == "True" for c in crd.status.conditions))
    resources = kubernetes.client.ApisApi(client).get_api_versions()
    check("python: /apis lists the CRD's group", any(g.name == "example.com" for g in resources.groups))
    w = custom.create_namespaced_custom_object("example.com", "v1", "sync", "widgets", {
        "apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1"},
        "spec": {"color": "red", "extra": {"anything": [1, 2]}}, "status": {"ready": True}})
    check("python: create a custom resource (defaults applied, status ignored)",
          w["spec"]["size"] == 3 and "status" not in w and w["metadata"]["generation"] == 1, w)
    try:
        custom.create_namespaced_custom_object("example.com", "v1", "sync", "widgets", {
            "apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w2"},
            "spec": {"color": "green", "shape": "round"}})
        check("python: a custom resource violating the CRD schema is refused", False, "no error")
    except ApiException as e:
        check("python: a custom resource violating the CRD schema is refused",
              e.status == 400 and "shape" in e.body and "green" in e.body, e.body)
    st = custom.patch_namespaced_custom_object_status("example.com", "v1", "sync", "widgets", "w1",
                                                      {"status": {"ready": True}, "spec": {"color": "blue"}})
    check("python: the status subresource changes only status",
          st["status"] == {"ready": True} and st["spec"]["color"] == "red" and st["metadata"]["generation"] == 1, st)
    sp = custom.patch_namespaced_custom_object("example.com", "v1", "sync", "widgets", "w1", {"spec": {"color": "blue"}})
    check("python: a spec patch bumps generation and keeps status",
          sp["metadata"]["generation"] == 2 and sp["status"] == {"ready": True}, sp)
    listed = custom.list_namespaced_custom_object("example.com", "v1", "sync", "widgets")
    check("python: list custom resources", [i["metadata"]["name"] for i in listed["items"]] == ["w1"])
    core.create_namespaced_secret("sync", kubernetes.client.V1Secret(metadata=V1ObjectMeta(
        name="w1-target", owner_references=[kubernetes.client.V1OwnerReference(
            api_version="example.com/v1", kind="Widget", name="w1", uid=w["metadata"]["uid"])])))
    custom.delete_namespaced_custom_object("example.com", "v1", "sync", "widgets", "w1")
    check("python: deleting a custom resource garbage-collects its Secret",
          not any(s.metadata.name == "w1-target" for s in core.list_namespaced_secret("sync").items))
    ext.delete_custom_resource_definition("widgets.example.com")
    groups = kubernetes.client.ApisApi(client).get_api_versions()
    check("python: a deleted CRD leaves discovery", not any(g.name == "example.com" for g in groups.groups))


def fake_call(info, admin, method, path, body=None):
    req = urllib.request.Request(info["url"] + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Authorization": "Bearer " + admin, "Content-Type": "application/json"})
    ctx = ssl.create_default_context(cafile=info["ca_file"])
    with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
        return json.load(r)


def kubectl_resource_checks(info, admin, kubectl, workdir):
    """kubectl against the generic API: CRDs and custom resources with apply, typed `create
    secret generic` (protobuf), a Deployment's apply and `rollout restart`, `get -w`, and a
    cascading delete."""
    base = [kubectl, "--server", info["url"], "--certificate-authority", info["ca_file"], "--token", admin,
            "--cache-dir", os.path.join(workdir, "kubectl-cache"), "-n", "apps"]

    def run(*args, stdin=None):
        p = subprocess.run(base + list(args), capture_output=True, text=True, timeout=60, input=stdin)
        return p.returncode, p.stdout, p.stderr

    def write(name, obj):
        path = os.path.join(workdir, name)
        with open(path, "w") as f:
            json.dump(obj, f)
        return path

    run("create", "-f", write("ns-apps.json", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps"}}),
        "--validate=false")
    code, out, err = run("apply", "-f", write("crd.json", WIDGET_CRD))
    check("kubectl: apply -f crd", code == 0 and "created" in out, err)
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "k1"}, "spec": {"color": "red"}}
    code, out, err = run("apply", "-f", write("widget.json", widget))
    check("kubectl: apply -f a custom resource right after its CRD", code == 0 and "created" in out, err)
    widget["spec"]["color"] = "blue"
    code, out, err = run("apply", "-f", write("widget.json", widget))
    check("kubectl: apply again patches it", code == 0 and "configured" in out, err)
    code, out, err = run("get", "wd", "k1", "-o", "json")
    check("kubectl: get the custom resource by its short name",
          code == 0 and json.loads(out)["spec"] == {"color": "blue", "size": 3}, err or out)
    code, out, err = run("apply", "--server-side", "--field-manager=check", "-f",
                         write("widget-ssa.json", {"apiVersion": "example.com/v1", "kind": "Widget",
                                                   "metadata": {"name": "k2"}, "spec": {"color": "red", "size": 7}}))
    code2, out2, _ = run("apply", "--server-side", "--field-manager=check", "-f",
                         write("widget-ssa.json", {"apiVersion": "example.com/v1", "kind": "Widget",
                                                   "metadata": {"name": "k2"}, "spec": {"color": "blue"}}))
    code3, out3, err3 = run("get", "wd", "k2", "-o", "json")
    check("kubectl: apply --server-side creates, and drops the fields the manager stopped applying",
          code == 0 and code2 == 0 and code3 == 0 and json.loads(out3)["spec"] == {"color": "blue", "size": 3},
          err or err3 or out3)

    code, out, err = run("apply", "--dry-run=client", "-f", write("dry.json", {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "dry"}, "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": "e30="}}))
    code2, _, err2 = run("get", "secret", "dry")
    check("kubectl: apply --dry-run=client -f a Secret (default validation) writes nothing",
          code == 0 and "(dry run)" in out and code2 != 0, err)
    code, out, err = run("apply", "-f", write("bogus.json", {"apiVersion": "v1", "kind": "Secret",
                                                             "metadata": {"name": "bogus"}, "bogus": 1}))
    check("kubectl: apply -f with an unknown field is refused by the server (strict field validation)",
          code != 0 and "bogus" in err, err or out)
    EXPECTED_BAD.append("'bogus'")
    code, out, err = run("create", "secret", "generic", "app-config", "--from-literal=user=app", "--from-literal=pass=p4ss")
    code2, out2, err2 = run("get", "secret", "app-config", "-o", "json")
    check("kubectl: create secret generic (protobuf request)",
          code == 0 and code2 == 0 and json.loads(out2)["data"] == {"pass": "cDRzcw==", "user": "YXBw"}
          and json.loads(out2)["type"] == "Opaque", err or err2)

    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"app": "web"}},
                  "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": {
                      "metadata": {"labels": {"app": "web"}},
                      "spec": {"containers": [{"name": "web", "image": "nginx:1.27",
                                               "envFrom": [{"secretRef": {"name": "app-config"}}]}]}}}}
    code, out, err = run("apply", "-f", write("deploy.json", deployment))
    check("kubectl: apply -f deployment", code == 0 and "created" in out, err)
    deployment["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.28"
    code, out, err = run("apply", "-f", write("deploy.json", deployment))
    check("kubectl: apply -f deployment again (strategic merge patch)", code == 0 and "configured" in out, err)
    code, out, err = run("rollout", "restart", "deployment/web")
    code2, out2, err2 = run("get", "deployment", "web", "-o", "json")
    dep = json.loads(out2) if code2 == 0 else {}
    annotations = dep.get("spec", {}).get("template", {}).get("metadata", {}).get("annotations", {})
    check("kubectl: rollout restart deployment/web lands the restartedAt annotation",
          code == 0 and "kubectl.kubernetes.io/restartedAt" in annotations
          and dep["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.28"
          and dep["metadata"]["generation"] == 3, err or err2 or dep)

    # `get secret -w` in the background sees an update.
    watcher = subprocess.Popen(base + ["get", "secret", "app-config", "-w", "-o", "json", "--output-watch-events"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        seen = []
        deadline = time.monotonic() + 20
        patched = False
        import select
        buf = ""
        while time.monotonic() < deadline and not any('"MODIFIED"' in s for s in seen):
            ready, _, _ = select.select([watcher.stdout], [], [], 0.2)
            if ready:
                line = watcher.stdout.readline()
                if not line:
                    break
                buf += line
                seen.append(line)
            if not patched and any('"ADDED"' in s for s in seen):
                run("patch", "secret", "app-config", "-p", '{"stringData":{"pass":"rotated"}}')
                patched = True
        check("kubectl: get secret -w sees the update", any('"MODIFIED"' in s for s in seen)
              and "cm90YXRlZA==" in buf, buf[-500:])
    finally:
        watcher.kill()
        watcher.wait()

    owned = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "web-owned", "ownerReferences": [
        {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": dep.get("metadata", {}).get("uid", "")}]},
        "stringData": {"k": "v"}}
    code, out, err = run("apply", "-f", write("owned.json", owned))
    code2, out2, err2 = run("delete", "deployment", "web")
    code3, out3, err3 = run("get", "secret", "web-owned")
    check("kubectl: delete deployment cascades to the Secret it owns",
          code == 0 and code2 == 0 and code3 != 0 and 'secrets "web-owned" not found' in err3, err or err2 or out3)
    code, out, err = run("delete", "crd", "widgets.example.com")
    code2, out2, err2 = run("get", "wd", "k1")
    check("kubectl: deleting the CRD removes its resources", code == 0 and code2 != 0, err or out2)


def crd_file_checks(info, admin, kubectl, workdir):
    """The ESO and VSO CRDs of crds/ load, their examples validate, and a typo is refused."""
    crds = os.path.join(HERE, "crds")
    if not os.path.isdir(crds):
        check("crds/ exists", False)
        return
    client = api_client(info, admin)
    ext = kubernetes.client.ApiextensionsV1Api(client)
    custom = kubernetes.client.CustomObjectsApi(client)
    import yaml
    names = []
    for f in sorted(os.listdir(crds)):
        if f.endswith(".yaml"):
            for doc in yaml.safe_load_all(open(os.path.join(crds, f))):
                if doc:
                    names.append(ext.create_custom_resource_definition(doc).metadata.name)
    check("the ESO and VSO CRDs are accepted", set(names) >= {
        "externalsecrets.external-secrets.io", "secretstores.external-secrets.io",
        "clustersecretstores.external-secrets.io", "vaultconnections.secrets.hashicorp.com",
        "vaultauths.secrets.hashicorp.com", "vaultstaticsecrets.secrets.hashicorp.com",
        "vaultdynamicsecrets.secrets.hashicorp.com"}, names)
    kubernetes.client.CoreV1Api(client).create_namespace(kubernetes.client.V1Namespace(
        metadata=kubernetes.client.V1ObjectMeta(name="examples")))
    examples = os.path.join(crds, "examples")
    count = 0
    for f in sorted(os.listdir(examples)):
        for doc in yaml.safe_load_all(open(os.path.join(examples, f))):
            if not doc:
                continue
            group, version = doc["apiVersion"].split("/")
            plural = doc["kind"].lower() + "s"
            try:
                if doc["kind"] == "ClusterSecretStore":
                    custom.create_cluster_custom_object(group, version, plural, doc)
                else:
                    custom.create_namespaced_custom_object(group, version, "examples", plural, doc)
                count += 1
            except ApiException as e:
                check("example %s %s validates" % (doc["kind"], doc["metadata"]["name"]), False, e.body)
    check("every example under crds/examples validates (%d)" % count, count >= 10)
    bad = {"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "metadata": {"name": "typo"},
           "spec": {"secretStoreRef": {"name": "vault"}, "target": {"nmae": "x"},
                    "data": [{"secretKey": "a", "remoteRef": {"key": "k"}}]}}
    try:
        custom.create_namespaced_custom_object("external-secrets.io", "v1", "examples", "externalsecrets", bad)
        check("an ExternalSecret with a misspelt field is refused", False, "no error")
    except ApiException as e:
        check("an ExternalSecret with a misspelt field is refused", e.status == 400 and "nmae" in e.body, e.body)


def writes_checks(info, admin):
    """/fake/writes counts mutating requests since /fake/mark."""
    fake_call(info, admin, "POST", "/fake/mark")
    idle = fake_call(info, admin, "GET", "/fake/writes")
    core = kubernetes.client.CoreV1Api(api_client(info, admin))
    core.list_namespaced_secret("sync")
    core.patch_namespaced_secret("db", "sync", {"metadata": {"annotations": {"touched": "yes"}}})
    after = fake_call(info, admin, "GET", "/fake/writes")
    check("/fake/writes: zero after a mark, then one patch (reads do not count)",
          idle["total"] == 0 and after["total"] == 1 and after["by_resource"] == {"secrets": {"patch": 1}}
          and after["by_object"] == {"secrets/sync/db": {"patch": 1}}, (idle, after))


def raw(info, admin, method, path, body=None, content_type="application/json"):
    """(status, JSON) of one request with the admin token."""
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    req = urllib.request.Request(info["url"] + path, method=method, data=data,
                                 headers={"Authorization": "Bearer " + admin, "Content-Type": content_type})
    ctx = ssl.create_default_context(cafile=info["ca_file"])
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def watch_lines(info, admin, path, until):
    """The events of a watch stream, read until `until(events)` or the stream ends."""
    req = urllib.request.Request(info["url"] + path, headers={"Authorization": "Bearer " + admin})
    ctx = ssl.create_default_context(cafile=info["ca_file"])
    events = []
    with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
        for line in r:
            events.append(json.loads(line))
            if until(events):
                break
    return events


def semantics_checks(info, admin):
    """API semantics the clients above do not reach, over plain HTTP."""
    ns = "/api/v1/namespaces/sem"
    raw(info, admin, "POST", "/api/v1/namespaces", {"metadata": {"name": "sem"}})
    code, s = raw(info, admin, "POST", ns + "/secrets", {"metadata": {"name": "a", "labels": {"keep": "yes"}}})
    rv = s["metadata"]["resourceVersion"]
    raw(info, admin, "PATCH", ns + "/secrets/a", [{"op": "add", "path": "/data", "value": {"k": "dg=="}},
                                                 {"op": "test", "path": "/metadata/name", "value": "a"}],
        "application/json-patch+json")
    code, body = raw(info, admin, "PATCH", ns + "/secrets/a", [{"op": "test", "path": "/metadata/name", "value": "b"}],
                     "application/json-patch+json")
    check("json patch: a failed test op is 422 and changes nothing", code == 422, body)
    raw(info, admin, "PATCH", ns + "/secrets/a", {"metadata": {"labels": {"keep": None}}}, "application/merge-patch+json")
    events = watch_lines(info, admin, ns + "/secrets?watch=true&labelSelector=keep%3Dyes&resourceVersion=" + rv,
                         lambda ev: len(ev) >= 2)
    check("watch with a label selector: an object that stops matching is DELETED for the watcher",
          [e["type"] for e in events] == ["MODIFIED", "DELETED"] and events[1]["object"]["data"] == {"k": "dg=="},
          events)
    events = watch_lines(info, admin, ns + "/secrets?watch=1&sendInitialEvents=true&allowWatchBookmarks=true"
                         "&resourceVersionMatch=NotOlderThan", lambda ev: ev[-1]["type"] == "BOOKMARK")
    check("watch with sendInitialEvents: ADDED for each object, then a BOOKMARK marking the end",
          [e["type"] for e in events] == ["ADDED", "BOOKMARK"]
          and events[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}, events)
    code, lst = raw(info, admin, "GET", ns + "/secrets")
    events = watch_lines(info, admin, ns + "/secrets?watch=1&timeoutSeconds=1&resourceVersion=" + lst["metadata"]["resourceVersion"],
                         lambda ev: False)
    check("watch: timeoutSeconds ends an idle stream", events == [], events)

    # Metadata-only reads (kube-rs metadata watchers, client-go metadata informers).
    ctx = ssl.create_default_context(cafile=info["ca_file"])
    accept = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
    req = urllib.request.Request(info["url"] + ns + "/secrets", headers={"Authorization": "Bearer " + admin, "Accept": accept})
    with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
        partial = json.load(r)
    check("list with Accept as=PartialObjectMetadataList answers metadata only",
          partial["kind"] == "PartialObjectMetadataList" and partial["items"][0]["kind"] == "PartialObjectMetadata"
          and set(partial["items"][0]) == {"kind", "apiVersion", "metadata"}, partial)

    # Finalizers hold a deletion until removed.
    raw(info, admin, "POST", ns + "/configmaps", {"metadata": {"name": "held", "finalizers": ["tresor.dev/cleanup"]}})
    code, body = raw(info, admin, "DELETE", ns + "/configmaps/held")
    code2, held = raw(info, admin, "GET", ns + "/configmaps/held")
    raw(info, admin, "PATCH", ns + "/configmaps/held", {"metadata": {"finalizers": None}}, "application/merge-patch+json")
    code3, _ = raw(info, admin, "GET", ns + "/configmaps/held")
    check("finalizers: delete sets deletionTimestamp; removing the last finalizer deletes",
          code == 200 and code2 == 200 and held["metadata"].get("deletionTimestamp") and code3 == 404, (body, held))

    # Orphan propagation keeps the dependent without the owner reference.
    code, owner = raw(info, admin, "POST", ns + "/configmaps", {"metadata": {"name": "owner"}})
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"]}
    raw(info, admin, "POST", ns + "/secrets", {"metadata": {"name": "orphan", "ownerReferences": [ref]}})
    raw(info, admin, "DELETE", ns + "/configmaps/owner", {"propagationPolicy": "Orphan"})
    code, orphan = raw(info, admin, "GET", ns + "/secrets/orphan")
    check("delete with propagationPolicy Orphan keeps dependents and drops their ownerReferences",
          code == 200 and "ownerReferences" not in orphan["metadata"], orphan)

    # deletecollection with a selector.
    for n in ("c1", "c2"):
        raw(info, admin, "POST", ns + "/secrets", {"metadata": {"name": n, "labels": {"batch": "x"}}})
    code, body = raw(info, admin, "DELETE", ns + "/secrets?labelSelector=batch")
    code2, left = raw(info, admin, "GET", ns + "/secrets?labelSelector=batch")
    check("deletecollection with a label selector", code == 200 and len(body["items"]) == 2 and left["items"] == [], body)

    # Server-side apply: two managers, a conflict, force.
    apply = lambda manager, obj, force="": raw(
        info, admin, "PATCH", ns + "/secrets/ssa?fieldManager=" + manager + force, obj, "application/apply-patch+yaml")
    doc = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "ssa", "labels": {"a": "1"}}, "stringData": {"x": "1"}}
    code, _ = apply("one", doc)
    code2, _ = apply("two", {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "ssa", "labels": {"a": "2"}}})
    code3, forced = apply("two", {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "ssa", "labels": {"a": "2", "b": "2"}}}, "&force=true")
    check("server-side apply: create, a conflicting manager is 409, force takes the field",
          code == 201 and code2 == 409 and code3 == 200 and forced["metadata"]["labels"] == {"a": "2", "b": "2"}
          and forced["data"] == {"x": "MQ=="}, (code, code2, forced))
    code, _ = raw(info, admin, "PATCH", ns + "/secrets/ssa", doc, "application/apply-patch+yaml")
    check("server-side apply without fieldManager is 422", code == 422)

    # A stale resourceVersion in a patch is a precondition.
    code, body = raw(info, admin, "PATCH", ns + "/secrets/ssa", {"metadata": {"resourceVersion": rv, "labels": {"z": "1"}}},
                     "application/merge-patch+json")
    check("merge patch with a stale metadata.resourceVersion is 409 Conflict", code == 409 and body["reason"] == "Conflict", body)

    # Cluster-scoped custom resources, and namespace deletion emptying the namespace.
    crd = copy.deepcopy(WIDGET_CRD)
    crd["metadata"]["name"] = "gizmos.example.com"
    crd["spec"]["scope"] = "Cluster"
    crd["spec"]["names"] = {"plural": "gizmos", "singular": "gizmo", "kind": "Gizmo"}
    raw(info, admin, "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    code, g = raw(info, admin, "POST", "/apis/example.com/v1/gizmos",
                  {"apiVersion": "example.com/v1", "kind": "Gizmo", "metadata": {"name": "g1"}, "spec": {"color": "red"}})
    code2, disc = raw(info, admin, "GET", "/apis/example.com/v1")
    check("cluster-scoped custom resources, in discovery with their status subresource",
          code == 201 and "namespace" not in g["metadata"]
          and {r["name"]: r["namespaced"] for r in disc["resources"]} == {"gizmos": False, "gizmos/status": False}, (g, disc))
    code, _ = raw(info, admin, "DELETE", "/api/v1/namespaces/sem")
    code2, _ = raw(info, admin, "GET", ns + "/secrets/ssa")
    check("deleting a namespace deletes what is in it", code == 200 and code2 == 404)


def rbac_checks(info, admin):
    """Least-privilege RBAC: a Role bound to a service account allows exactly its rules."""
    ns = "/api/v1/namespaces/rbac"
    raw(info, admin, "POST", "/api/v1/namespaces", {"metadata": {"name": "rbac"}})
    raw(info, admin, "POST", ns + "/serviceaccounts", {"metadata": {"name": "sync"}})
    raw(info, admin, "POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/rbac/roles", {
        "metadata": {"name": "sync"}, "rules": [
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch", "create", "patch"]},
            {"apiGroups": ["apps"], "resources": ["deployments"], "resourceNames": ["web"], "verbs": ["patch"]}]})
    raw(info, admin, "POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/rbac/rolebindings", {
        "metadata": {"name": "sync"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "sync"},
        "subjects": [{"kind": "ServiceAccount", "name": "sync", "namespace": "rbac"}]})
    code, tr = raw(info, admin, "POST", ns + "/serviceaccounts/sync/token", {"spec": {}})
    token = tr["status"]["token"]
    code1, _ = raw(info, token, "POST", ns + "/secrets", {"metadata": {"name": "s"}})
    code2, _ = raw(info, token, "DELETE", ns + "/secrets/s")
    code3, _ = raw(info, token, "GET", "/api/v1/namespaces/default/secrets")
    raw(info, admin, "POST", "/apis/apps/v1/namespaces/rbac/deployments", {"metadata": {"name": "web"}, "spec": {
        "selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}},
                                                              "spec": {"containers": [{"name": "c", "image": "i"}]}}}})
    code4, _ = raw(info, token, "PATCH", "/apis/apps/v1/namespaces/rbac/deployments/web",
                   {"spec": {"template": {"metadata": {"annotations": {"r": "1"}}}}}, "application/strategic-merge-patch+json")
    code5, body = raw(info, token, "PATCH", "/apis/apps/v1/namespaces/rbac/deployments/other", {}, "application/merge-patch+json")
    check("RBAC: a RoleBinding grants its Role's rules in its namespace only (resourceNames too)",
          (code1, code2, code3, code4, code5) == (201, 403, 403, 200, 403)
          and 'cannot patch resource "deployments" in API group "apps" in the namespace "rbac"' in body["message"],
          (code1, code2, code3, code4, code5, body))


def main():
    parser = argparse.ArgumentParser()
    # The machine image's kubectl, else the one scripts/install-peers.sh puts in the venv.
    venv_kubectl = os.path.join(os.path.dirname(sys.executable), "kubectl")
    parser.add_argument("--kubectl", default=shutil.which("kubectl")
                        or (venv_kubectl if os.access(venv_kubectl, os.X_OK) else None))
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="fake-kube-check-")
    proc, info = start_fake(workdir)
    try:
        admin = open(info["admin_token_file"]).read().strip()
        python_client_checks(info, admin)
        python_resource_checks(info, admin)
        writes_checks(info, admin)
        semantics_checks(info, admin)
        rbac_checks(info, admin)
        if not args.kubectl:
            check("kubectl is installed", False, "no kubectl on PATH (the machine image ships one)")
        else:
            kubectl_checks(info, admin, args.kubectl, workdir)
            kubectl_resource_checks(info, admin, args.kubectl, workdir)
        crd_file_checks(info, admin, args.kubectl, workdir)
        req = urllib.request.Request(info["url"] + "/fake/violations", headers={"Authorization": "Bearer " + admin})
        ctx = ssl.create_default_context(cafile=info["ca_file"])
        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
            violations = json.load(r)["violations"]
        # The bodies refused on purpose above are the only violations expected.
        expected = [v for v in violations if v["direction"] == "request" and v["schema"].startswith("crd:")
                    and any(w in json.dumps(v["errors"]) for w in ("'nmae'", "'shape'", "'green'"))
                    or v["direction"] == "request" and any(w in json.dumps(v["errors"]) for w in EXPECTED_BAD)]
        check("the fake logged the bodies refused on purpose as violations", len(expected) == 2 + len(EXPECTED_BAD), violations)
        violations = [v for v in violations if v not in expected]
        check("every body the fake saw and sent satisfies the Kubernetes 1.37 schemas", not violations,
              json.dumps(violations))
    finally:
        proc.kill()
        proc.wait()
    failed = RESULTS.count(False)
    print("%d passed, %d failed" % (len(RESULTS) - failed, failed))
    if failed:
        print("fake log: %s" % os.path.join(workdir, "fake-kube-apiserver.log"))
        sys.exit(1)
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
