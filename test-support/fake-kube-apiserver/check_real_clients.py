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
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import ssl

import kubernetes
from kubernetes.client.rest import ApiException

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = []


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
        if not args.kubectl:
            check("kubectl is installed", False, "no kubectl on PATH (the machine image ships one)")
        else:
            kubectl_checks(info, admin, args.kubectl, workdir)
        req = urllib.request.Request(info["url"] + "/fake/violations", headers={"Authorization": "Bearer " + admin})
        ctx = ssl.create_default_context(cafile=info["ca_file"])
        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
            violations = json.load(r)["violations"]
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
