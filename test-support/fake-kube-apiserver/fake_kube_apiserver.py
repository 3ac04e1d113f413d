#!/usr/bin/env python3
"""fake-kube-apiserver: a FAKE Kubernetes API server, for Tresor's tests only.

It is not Kubernetes. No real API server can run on the test machines, so this stands in for
the small part of one that Kubernetes auth needs, and is held to outside standards:

- every request body it reads and every response body it writes is validated against the
  official Kubernetes 1.37 JSON schemas (PyPI ``kubernetes-validate==1.37.0``, strict mode);
  a violation is answered with a 400 ``Status`` (request) or 500 (its own response), logged,
  and listed at ``GET /fake/violations`` so tests can assert there were none;
- the real clients (the Python ``kubernetes`` package, kubectl) are run against it by
  ``check_real_clients.py``.

What it serves (HTTPS only, with a CA generated at start-up):

- discovery: ``/version``, ``/api``, ``/api/v1``, ``/apis``, ``/apis/<group>/<version>``,
  ``/healthz``, ``/livez``, ``/readyz``;
- ``POST /apis/authentication.k8s.io/v1/tokenreviews`` (201), as kube-apiserver answers it:
  a caller whose bearer token is not valid gets a 401 ``Status``, a caller without
  ``system:auth-delegator`` a 403 ``Status``; a reviewed token that is not valid gives
  ``authenticated`` unset and ``status.error``;
- namespaces (create, get, delete), service accounts (create, get, delete), the TokenRequest
  subresource ``serviceaccounts/<name>/token`` (what ``kubectl create token`` calls),
  service-account-token Secrets (legacy, non-expiring tokens) and ClusterRoleBindings.

Service account tokens are RS256 JWTs signed with a key generated at start-up, in the same
claim layout as the real API server's (projected ``kubernetes.io`` claims for TokenRequest
tokens, the flat ``kubernetes.io/serviceaccount/...`` claims for Secret tokens). Callers
authenticate with ``Authorization: Bearer``: the admin token (``<dir>/admin-token``, user
``kubernetes-admin`` in ``system:masters``) or a service account token. Authorization follows
ClusterRoleBindings to the built-in roles ``cluster-admin`` (everything),
``system:auth-delegator`` (create tokenreviews) and ``view`` (get namespaces and service
accounts).

Fake-only endpoints live under ``/fake/`` (never a Kubernetes path) and need the admin token:
``POST /fake/clock {"advance_seconds": N}`` moves the fake's clock forward (so tokens expire
without waiting), ``GET /fake/violations``, ``GET /fake/tokenreviews`` (who asked to review
what, without any token: caller user, caller token id, requested audiences, verdict).

Usage: ``fake_kube_apiserver.py --dir DIR [--port 0] [--seed seed.json]``. Once listening it
writes ``DIR/server.json`` (``{"url", "ca_file", "untrusted_ca_file", "sa_public_key_file",
"admin_token_file", "issuer", "tokens_file"}``) and prints ``fake-kube-apiserver ready <url>``.
A seed file creates namespaces, service accounts and bindings and mints named tokens into
``DIR/tokens.json`` (see README.md). Tokens are never written to the log.
"""

import argparse
import base64
import copy
import datetime
import hashlib
import json
import os
import re
import socket
import ssl
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jsonschema
import referencing
import referencing.jsonschema
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

import kubernetes_validate

KUBE_VERSION = "1.37.0"
ISSUER = "https://kubernetes.default.svc.cluster.local"
LEGACY_ISSUER = "kubernetes/serviceaccount"
MAX_BODY = 3 * 1024 * 1024
MIN_TOKEN_SECONDS = 600


# ---------------------------------------------------------------------------------------------
# Schemas


class Schemas:
    """The official schemas of kubernetes-validate, validated in strict mode."""

    def __init__(self, version=KUBE_VERSION):
        root = os.path.join(os.path.dirname(kubernetes_validate.__file__), "kubernetes-json-schema")
        self.dir = os.path.join(root, "v%s-local-strict" % version)
        if not os.path.isdir(self.dir):
            raise SystemExit("kubernetes-validate has no schemas for %s at %s" % (version, self.dir))
        with open(os.path.join(self.dir, "_definitions.json")) as f:
            self.definitions = referencing.Resource.from_contents(json.load(f))
        self.validators = {}
        self.lock = threading.Lock()

    def validator(self, name):
        with self.lock:
            if name not in self.validators:
                with open(os.path.join(self.dir, name + ".json")) as f:
                    schema = json.load(f)
                resource = referencing.Resource.from_contents(schema)
                registry = self.definitions @ (resource @ referencing.Registry())
                self.validators[name] = jsonschema.validators.Draft202012Validator(
                    schema, registry=registry
                )
            return self.validators[name]

    def errors(self, name, obj):
        """Every violation of schema `name` (e.g. `tokenreview-authentication-v1`) in obj."""
        found = []
        for e in self.validator(name).iter_errors(obj):
            where = ".".join(str(p) for p in e.absolute_path) or "(root)"
            found.append("%s: %s" % (where, e.message))
        return found


# ---------------------------------------------------------------------------------------------
# Keys and certificates


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def make_ca(common_name):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return key, cert


def make_server_cert(ca_key, ca_cert, host):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    import ipaddress

    sans = [x509.DNSName("localhost"), x509.DNSName("kubernetes.default.svc")]
    try:
        sans.append(x509.IPAddress(ipaddress.ip_address(host)))
    except ValueError:
        sans.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def pem_cert(cert):
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def pem_key(key):
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


class Signer:
    """The service account token signing key (RS256, as kube-apiserver's default)."""

    def __init__(self):
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public_der = self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.kid = b64url(hashlib.sha256(public_der).digest())
        self.public_pem = self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()

    def sign(self, claims):
        header = {"alg": "RS256", "kid": self.kid}
        signing_input = (
            b64url(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + b64url(json.dumps(claims, separators=(",", ":")).encode())
        )
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + b64url(signature)

    def verify(self, token):
        """The claims of a token this key signed, or None (not a JWT or not ours)."""
        parts = token.split(".")
        if len(parts) != 3:
            return None
        try:
            header = json.loads(b64url_decode(parts[0]))
            claims = json.loads(b64url_decode(parts[1]))
            signature = b64url_decode(parts[2])
        except (ValueError, UnicodeDecodeError):
            return None
        if not isinstance(header, dict) or not isinstance(claims, dict):
            return None
        if header.get("alg") != "RS256":
            return None
        try:
            self.key.public_key().verify(
                signature, (parts[0] + "." + parts[1]).encode(), padding.PKCS1v15(), hashes.SHA256()
            )
        except Exception:  # noqa: BLE001 - any failure means "not signed by us"
            return "bad-signature"
        return claims


# ---------------------------------------------------------------------------------------------
# State


def rfc3339(ts):
    return datetime.datetime.fromtimestamp(int(ts), datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )


def go_quote_list(items):
    """Go's %q of a []string: ["a" "b"]."""
    return "[" + " ".join(json.dumps(i) for i in items) + "]"


class ApiError(Exception):
    def __init__(self, code, reason, message, details=None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def status(self):
        body = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            body["details"] = self.details
        return body


def not_found(kind, name):
    return ApiError(404, "NotFound", '%s "%s" not found' % (kind, name), {"name": name, "kind": kind})


def already_exists(kind, name, group=None):
    details = {"name": name, "kind": kind}
    if group:
        details["group"] = group
    full = "%s.%s" % (kind, group) if group else kind
    return ApiError(409, "AlreadyExists", '%s "%s" already exists' % (full, name), details)


class State:
    def __init__(self, signer):
        self.lock = threading.RLock()
        self.signer = signer
        self.clock_offset = 0
        self.resource_version = 100
        self.namespaces = {}
        self.service_accounts = {}
        self.secrets = {}
        self.bindings = {}
        self.reviews = []
        self.violations = []
        self.admin_token = b64url(os.urandom(24))
        for ns in ("default", "kube-system"):
            self.add_namespace(ns, {})
        self.add_service_account("default", "default")

    def now(self):
        return int(time.time()) + self.clock_offset

    def meta(self, name, namespace=None, labels=None, annotations=None):
        self.resource_version += 1
        m = {
            "name": name,
            "uid": str(uuid.uuid4()),
            "resourceVersion": str(self.resource_version),
            "creationTimestamp": rfc3339(self.now()),
        }
        if namespace is not None:
            m["namespace"] = namespace
        if labels:
            m["labels"] = dict(labels)
        if annotations:
            m["annotations"] = dict(annotations)
        return m

    # -- objects

    def add_namespace(self, name, labels):
        with self.lock:
            if name in self.namespaces:
                raise already_exists("namespaces", name)
            all_labels = dict(labels or {})
            all_labels["kubernetes.io/metadata.name"] = name
            ns = {
                "kind": "Namespace",
                "apiVersion": "v1",
                "metadata": self.meta(name, labels=all_labels),
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Active"},
            }
            self.namespaces[name] = ns
            return ns

    def namespace(self, name):
        with self.lock:
            ns = self.namespaces.get(name)
            if ns is None:
                raise not_found("namespaces", name)
            return ns

    def add_service_account(self, namespace, name):
        with self.lock:
            self.namespace(namespace)
            if (namespace, name) in self.service_accounts:
                raise already_exists("serviceaccounts", name)
            sa = {
                "kind": "ServiceAccount",
                "apiVersion": "v1",
                "metadata": self.meta(name, namespace=namespace),
            }
            self.service_accounts[(namespace, name)] = sa
            return sa

    def service_account(self, namespace, name):
        with self.lock:
            sa = self.service_accounts.get((namespace, name))
            if sa is None:
                raise not_found("serviceaccounts", name)
            return sa

    def add_binding(self, obj):
        with self.lock:
            name = obj["metadata"]["name"]
            if name in self.bindings:
                raise already_exists("clusterrolebindings", name, "rbac.authorization.k8s.io")
            stored = {
                "kind": "ClusterRoleBinding",
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "metadata": self.meta(name, labels=obj["metadata"].get("labels")),
                "roleRef": obj["roleRef"],
                "subjects": obj.get("subjects", []),
            }
            self.bindings[name] = stored
            return stored

    def bind(self, binding_name, role, namespace, sa_name):
        return self.add_binding(
            {
                "metadata": {"name": binding_name},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": role,
                },
                "subjects": [{"kind": "ServiceAccount", "name": sa_name, "namespace": namespace}],
            }
        )

    def add_secret(self, namespace, obj):
        with self.lock:
            self.namespace(namespace)
            name = obj["metadata"]["name"]
            if (namespace, name) in self.secrets:
                raise already_exists("secrets", name)
            annotations = dict(obj["metadata"].get("annotations") or {})
            secret = {
                "kind": "Secret",
                "apiVersion": "v1",
                "metadata": self.meta(
                    name, namespace=namespace, labels=obj["metadata"].get("labels"),
                    annotations=annotations,
                ),
                "type": obj.get("type", "Opaque"),
                "data": dict(obj.get("data") or {}),
            }
            if secret["type"] == "kubernetes.io/service-account-token":
                # The token controller fills such a Secret in: a legacy, non-expiring token.
                sa_name = annotations.get("kubernetes.io/service-account.name", "")
                sa = self.service_account(namespace, sa_name)
                secret["metadata"]["annotations"]["kubernetes.io/service-account.uid"] = sa[
                    "metadata"
                ]["uid"]
                token = self.signer.sign(
                    {
                        "iss": LEGACY_ISSUER,
                        "kubernetes.io/serviceaccount/namespace": namespace,
                        "kubernetes.io/serviceaccount/secret.name": name,
                        "kubernetes.io/serviceaccount/service-account.name": sa_name,
                        "kubernetes.io/serviceaccount/service-account.uid": sa["metadata"]["uid"],
                        "sub": "system:serviceaccount:%s:%s" % (namespace, sa_name),
                    }
                )
                secret["data"]["token"] = base64.b64encode(token.encode()).decode()
                secret["data"]["namespace"] = base64.b64encode(namespace.encode()).decode()
                secret["data"]["ca.crt"] = base64.b64encode(CA_PEM[0].encode()).decode()
            self.secrets[(namespace, name)] = secret
            return secret

    def mint(self, namespace, name, audiences=None, seconds=3600):
        """A TokenRequest token (projected claim layout)."""
        with self.lock:
            sa = self.service_account(namespace, name)
            now = self.now()
            claims = {
                "aud": list(audiences) if audiences else [ISSUER],
                "exp": now + int(seconds),
                "iat": now,
                "iss": ISSUER,
                "jti": str(uuid.uuid4()),
                "kubernetes.io": {
                    "namespace": namespace,
                    "serviceaccount": {"name": name, "uid": sa["metadata"]["uid"]},
                },
                "nbf": now,
                "sub": "system:serviceaccount:%s:%s" % (namespace, name),
            }
            return self.signer.sign(claims), claims["exp"]

    # -- authentication

    def authenticate(self, token, audiences=None):
        """(user info, audiences, None) or (None, None, error text or None), as the service
        account token authenticator decides. `audiences` None means the API server's own."""
        with self.lock:
            if token == self.admin_token:
                return (
                    {"username": "kubernetes-admin", "groups": ["system:masters", "system:authenticated"]},
                    list(audiences or [ISSUER]),
                    None,
                )
            claims = self.signer.verify(token)
            if claims is None:
                return None, None, None
            if claims == "bad-signature":
                return None, None, "[invalid bearer token, square/go-jose: error in cryptographic primitive]"
            legacy = claims.get("iss") == LEGACY_ISSUER
            if not legacy and claims.get("iss") != ISSUER:
                return None, None, None
            token_aud = claims.get("aud") or [ISSUER]
            if isinstance(token_aud, str):
                token_aud = [token_aud]
            wanted = list(audiences) if audiences else [ISSUER]
            granted = [a for a in token_aud if a in wanted]
            if not granted:
                return None, None, "[invalid bearer token, token audiences %s is invalid for the target audiences %s]" % (
                    go_quote_list(token_aud), go_quote_list(wanted))
            now = self.now()
            if "exp" in claims and now > claims["exp"]:
                return None, None, "[invalid bearer token, service account token has expired]"
            if "nbf" in claims and now < claims["nbf"]:
                return None, None, "[invalid bearer token, service account token is not valid yet]"
            if legacy:
                namespace = claims.get("kubernetes.io/serviceaccount/namespace", "")
                name = claims.get("kubernetes.io/serviceaccount/service-account.name", "")
                uid = claims.get("kubernetes.io/serviceaccount/service-account.uid", "")
                secret_name = claims.get("kubernetes.io/serviceaccount/secret.name", "")
                if (namespace, secret_name) not in self.secrets:
                    return None, None, '[invalid bearer token, secrets "%s" not found]' % secret_name
            else:
                k = claims.get("kubernetes.io") or {}
                namespace = k.get("namespace", "")
                name = (k.get("serviceaccount") or {}).get("name", "")
                uid = (k.get("serviceaccount") or {}).get("uid", "")
            sa = self.service_accounts.get((namespace, name))
            if sa is None:
                return None, None, '[invalid bearer token, serviceaccounts "%s" not found]' % name
            if sa["metadata"]["uid"] != uid:
                return None, None, "[invalid bearer token, service account UID (%s) does not match claim (%s)]" % (
                    sa["metadata"]["uid"], uid)
            user = {
                "username": "system:serviceaccount:%s:%s" % (namespace, name),
                "uid": uid,
                "groups": ["system:serviceaccounts", "system:serviceaccounts:%s" % namespace, "system:authenticated"],
            }
            if "jti" in claims:
                user["extra"] = {"authentication.kubernetes.io/credential-id": ["JTI=%s" % claims["jti"]]}
            return user, granted, None

    def allowed(self, user, verb, resource, group):
        """RBAC with the built-in cluster roles this fake knows."""
        if "system:masters" in user.get("groups", []):
            return True
        grants = {
            "cluster-admin": lambda v, r, g: True,
            "system:auth-delegator": lambda v, r, g: (
                v == "create" and g == "authentication.k8s.io" and r == "tokenreviews"
            ),
            "view": lambda v, r, g: (
                v in ("get", "list", "watch") and g == "" and r in ("namespaces", "serviceaccounts")
            ),
        }
        with self.lock:
            for b in self.bindings.values():
                rule = grants.get(b["roleRef"]["name"])
                if rule is None or not rule(verb, resource, group):
                    continue
                for s in b.get("subjects") or []:
                    if s.get("kind") == "ServiceAccount" and user["username"] == "system:serviceaccount:%s:%s" % (
                        s.get("namespace"), s.get("name")):
                        return True
                    if s.get("kind") in ("User", "Group") and (
                        s.get("name") == user["username"] or s.get("name") in user.get("groups", [])):
                        return True
        return False


# ---------------------------------------------------------------------------------------------
# HTTP


CA_PEM = [""]  # the CA certificate, for service-account-token Secrets' ca.crt

DISCOVERY_CORE = {
    "kind": "APIResourceList",
    "apiVersion": "v1",
    "groupVersion": "v1",
    "resources": [
        {"name": "namespaces", "singularName": "namespace", "namespaced": False, "kind": "Namespace",
         "verbs": ["create", "delete", "get", "list"], "shortNames": ["ns"]},
        {"name": "secrets", "singularName": "secret", "namespaced": True, "kind": "Secret",
         "verbs": ["create", "delete", "get"]},
        {"name": "serviceaccounts", "singularName": "serviceaccount", "namespaced": True,
         "kind": "ServiceAccount", "verbs": ["create", "delete", "get"], "shortNames": ["sa"]},
        {"name": "serviceaccounts/token", "singularName": "", "namespaced": True,
         "group": "authentication.k8s.io", "version": "v1", "kind": "TokenRequest", "verbs": ["create"]},
    ],
}

GROUPS = {
    "authentication.k8s.io": [
        {"name": "tokenreviews", "singularName": "tokenreview", "namespaced": False,
         "kind": "TokenReview", "verbs": ["create"]},
    ],
    "rbac.authorization.k8s.io": [
        {"name": "clusterrolebindings", "singularName": "clusterrolebinding", "namespaced": False,
         "kind": "ClusterRoleBinding", "verbs": ["create", "delete", "get"]},
    ],
}

NAME = r"([a-z0-9]([-a-z0-9.]*[a-z0-9])?)"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-kube-apiserver"

    # -- plumbing

    def setup(self):
        # The TLS handshake runs here, on the request's own thread, so a client that gives up
        # on the certificate (an untrusted CA) cannot stall the accept loop.
        try:
            self.request.do_handshake()
        except (ssl.SSLError, OSError) as e:
            self.server.log("tls handshake failed: %s" % e.__class__.__name__)
            raise
        super().setup()

    def log_message(self, fmt, *args):  # the default logs to stderr with the raw path
        pass

    def state(self):
        return self.server.state

    def send_json(self, code, obj, schema=None):
        if schema is not None:
            errors = self.server.schemas.errors(schema, obj)
            if errors:
                self.violation("response", schema, errors)
                code, obj = 500, ApiError(500, "InternalError", "the fake's response violates %s" % schema).status()
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        self.wfile.write(data)
        self.status_sent = code

    def send_text(self, code, text):
        data = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.status_sent = code

    def send_status(self, err):
        self.send_json(err.code, err.status(), "status-meta-v1")

    def violation(self, direction, schema, errors):
        entry = {"direction": direction, "schema": schema, "method": self.command,
                 "path": self.path.split("?")[0], "errors": errors}
        with self.state().lock:
            self.state().violations.append(entry)
        self.server.log("SCHEMA VIOLATION %s" % json.dumps(entry))

    def read_body(self, schema, kind, api_version):
        content_type = (self.headers.get("Content-Type") or "application/json").split(";")[0].strip()
        if content_type not in ("application/json", "application/yaml", "*/*"):
            # kube-apiserver also speaks protobuf and CBOR; this fake only JSON.
            raise ApiError(415, "UnsupportedMediaType", 'the body of the request was in an unknown format - accepted media types include: application/json')
        raw = self.body
        try:
            obj = json.loads(raw) if raw else None
        except ValueError:
            raise ApiError(400, "BadRequest", "the object provided is unrecognized (must be of type %s): couldn't get version/kind; json parse error" % kind)
        if not isinstance(obj, dict):
            raise ApiError(400, "BadRequest", "the object provided is unrecognized (must be of type %s)" % kind)
        # The API server defaults kind/apiVersion from the URL (Go clients often omit them);
        # anything it cannot read is a violation.
        checked = dict(obj)
        checked.setdefault("kind", kind)
        checked.setdefault("apiVersion", api_version)
        if checked.get("kind") != kind or checked.get("apiVersion") != api_version:
            raise ApiError(400, "BadRequest", "the API version in the data (%s) does not match the expected API version (%s)" % (
                checked.get("apiVersion"), api_version))
        errors = self.server.schemas.errors(schema, checked)
        if errors:
            self.violation("request", schema, errors)
            raise ApiError(400, "BadRequest", "%s in body is invalid: %s" % (kind, "; ".join(errors)))
        return checked

    def raw_body(self):
        """The request body, from Content-Length or chunked transfer encoding (kubectl's
        `create --raw -f` streams its file)."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks, total = [], 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                total += size
                if total > MAX_BODY:
                    raise ApiError(413, "RequestEntityTooLarge", "the request body is too large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise ApiError(413, "RequestEntityTooLarge", "the request body is too large")
        return self.rfile.read(length) if length else b""

    def caller(self, required=True):
        header = self.headers.get("Authorization", "")
        if not header:
            if required:
                raise ApiError(401, "Unauthorized", "Unauthorized")
            return {"username": "system:anonymous", "groups": ["system:unauthenticated"]}
        if not header.startswith("Bearer ") or not header[7:].strip():
            raise ApiError(401, "Unauthorized", "Unauthorized")
        token = header[7:].strip()
        user, _, _ = self.state().authenticate(token)
        if user is None:
            raise ApiError(401, "Unauthorized", "Unauthorized")
        jti = None
        for v in (user.get("extra") or {}).get("authentication.kubernetes.io/credential-id", []):
            jti = v
        user = dict(user)
        user["_credential"] = jti
        return user

    def authorize(self, user, verb, resource, group, name=None, namespace=None):
        if self.state().allowed(user, verb, resource, group):
            return
        full = "%s.%s" % (resource, group) if group else resource
        subject = ('%s "%s"' % (full, name)) if name else full
        scope = ('in the namespace "%s"' % namespace) if namespace else "at the cluster scope"
        raise ApiError(
            403, "Forbidden",
            '%s is forbidden: User "%s" cannot %s resource "%s" in API group "%s" %s'
            % (subject, user["username"], verb, resource, group, scope),
            {k: v for k, v in (("name", name), ("group", group or None), ("kind", resource)) if v},
        )

    # -- dispatch

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_PATCH(self):
        self.dispatch("PATCH")

    def dispatch(self, method):
        self.status_sent = 0
        self.body = None
        user = "-"
        path = self.path.split("?")[0].rstrip("/") or "/"
        try:
            # The body is always read, even for a request refused before looking at it, or
            # the next request on this keep-alive connection would start inside it.
            self.body = self.raw_body()
            who = self.route(method, path)
            user = who or "-"
        except ApiError as e:
            if self.body is None:
                self.close_connection = True  # the unread body would be taken for a request
            self.send_status(e)
        except (BrokenPipeError, ConnectionResetError):
            return
        except Exception as e:  # noqa: BLE001 - a bug in the fake must show, not hang
            self.server.log("fake bug on %s %s: %r" % (method, path, e))
            self.send_status(ApiError(500, "InternalError", "fake-kube-apiserver bug: %s" % e.__class__.__name__))
        self.server.log("%s %s -> %d (%s)" % (method, path, self.status_sent, user))

    def route(self, method, path):
        state = self.state()
        if method == "GET" and path in ("/healthz", "/livez", "/readyz"):
            self.send_text(200, "ok")
            return None
        if method == "GET" and path == "/version":
            self.send_json(200, {
                "major": "1", "minor": "37", "gitVersion": "v%s-fake" % KUBE_VERSION,
                "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
                "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.25", "compiler": "gc",
                "platform": "linux/amd64",
            }, "info-pkg-version")
            return None
        if path.startswith("/fake/"):
            return self.fake_endpoint(method, path)
        user = self.caller()
        name = user["username"]
        if method == "GET" and path == "/api":
            host = self.server.server_address
            self.send_json(200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": "%s:%d" % (host[0], host[1])}]},
                "apiversions-meta-v1")
            return name
        if method == "GET" and path == "/api/v1":
            self.send_json(200, DISCOVERY_CORE, "apiresourcelist-meta-v1")
            return name
        if method == "GET" and path == "/apis":
            groups = []
            for g in GROUPS:
                gv = {"groupVersion": "%s/v1" % g, "version": "v1"}
                groups.append({"name": g, "versions": [gv], "preferredVersion": gv})
            self.send_json(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups},
                           "apigrouplist-meta-v1")
            return name
        m = re.fullmatch(r"/apis/([a-z0-9.]+)/v1", path)
        if method == "GET" and m and m.group(1) in GROUPS:
            self.send_json(200, {"kind": "APIResourceList", "apiVersion": "v1",
                                 "groupVersion": "%s/v1" % m.group(1), "resources": GROUPS[m.group(1)]},
                           "apiresourcelist-meta-v1")
            return name
        if path == "/apis/authentication.k8s.io/v1/tokenreviews" and method == "POST":
            self.token_review(user)
            return name
        if path == "/api/v1/namespaces" and method == "POST":
            self.authorize(user, "create", "namespaces", "")
            obj = self.read_body("namespace-v1", "Namespace", "v1")
            ns_name = (obj.get("metadata") or {}).get("name", "")
            if not re.fullmatch(NAME, ns_name or ""):
                raise ApiError(422, "Invalid", 'Namespace "%s" is invalid: metadata.name: Invalid value' % ns_name)
            ns = state.add_namespace(ns_name, (obj.get("metadata") or {}).get("labels"))
            self.send_json(201, ns, "namespace-v1")
            return name
        m = re.fullmatch(r"/api/v1/namespaces/" + NAME, path)
        if m:
            ns_name = m.group(1)
            if method == "GET":
                self.authorize(user, "get", "namespaces", "", ns_name)
                self.send_json(200, state.namespace(ns_name), "namespace-v1")
                return name
            if method == "DELETE":
                self.authorize(user, "delete", "namespaces", "", ns_name)
                with state.lock:
                    ns = state.namespace(ns_name)
                    del state.namespaces[ns_name]
                    for key in [k for k in state.service_accounts if k[0] == ns_name]:
                        del state.service_accounts[key]
                    for key in [k for k in state.secrets if k[0] == ns_name]:
                        del state.secrets[key]
                self.send_json(200, ns, "namespace-v1")
                return name
        m = re.fullmatch(r"/api/v1/namespaces/%s/serviceaccounts" % NAME, path)
        if m and method == "POST":
            ns_name = m.group(1)
            self.authorize(user, "create", "serviceaccounts", "", None, ns_name)
            obj = self.read_body("serviceaccount-v1", "ServiceAccount", "v1")
            sa = state.add_service_account(ns_name, (obj.get("metadata") or {}).get("name", ""))
            self.send_json(201, sa, "serviceaccount-v1")
            return name
        m = re.fullmatch(r"/api/v1/namespaces/%s/serviceaccounts/%s" % (NAME, NAME), path)
        if m:
            ns_name, sa_name = m.group(1), m.group(3)
            if method == "GET":
                self.authorize(user, "get", "serviceaccounts", "", sa_name, ns_name)
                self.send_json(200, state.service_account(ns_name, sa_name), "serviceaccount-v1")
                return name
            if method == "DELETE":
                self.authorize(user, "delete", "serviceaccounts", "", sa_name, ns_name)
                with state.lock:
                    sa = state.service_account(ns_name, sa_name)
                    del state.service_accounts[(ns_name, sa_name)]
                self.send_json(200, sa, "serviceaccount-v1")
                return name
        m = re.fullmatch(r"/api/v1/namespaces/%s/serviceaccounts/%s/token" % (NAME, NAME), path)
        if m and method == "POST":
            ns_name, sa_name = m.group(1), m.group(3)
            self.authorize(user, "create", "serviceaccounts/token", "", sa_name, ns_name)
            obj = self.read_body("tokenrequest-authentication-v1", "TokenRequest", "authentication.k8s.io/v1")
            spec = obj.get("spec") or {}
            seconds = spec.get("expirationSeconds") or 3600
            if seconds < MIN_TOKEN_SECONDS:
                raise ApiError(422, "Invalid", 'TokenRequest.authentication.k8s.io "%s" is invalid: spec.expirationSeconds: Invalid value: %d: may not specify a duration less than 10 minutes' % (sa_name, seconds),
                               {"name": sa_name, "group": "authentication.k8s.io", "kind": "TokenRequest",
                                "causes": [{"reason": "FieldValueInvalid", "message": "Invalid value: %d: may not specify a duration less than 10 minutes" % seconds, "field": "spec.expirationSeconds"}]})
            audiences = spec.get("audiences") or [ISSUER]
            token, exp = state.mint(ns_name, sa_name, audiences, seconds)
            self.send_json(201, {
                "kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
                "metadata": {"name": sa_name, "namespace": ns_name, "creationTimestamp": rfc3339(state.now())},
                "spec": {"audiences": audiences, "expirationSeconds": seconds},
                "status": {"token": token, "expirationTimestamp": rfc3339(exp)},
            }, "tokenrequest-authentication-v1")
            return name
        m = re.fullmatch(r"/api/v1/namespaces/%s/secrets" % NAME, path)
        if m and method == "POST":
            ns_name = m.group(1)
            self.authorize(user, "create", "secrets", "", None, ns_name)
            obj = self.read_body("secret-v1", "Secret", "v1")
            self.send_json(201, state.add_secret(ns_name, obj), "secret-v1")
            return name
        m = re.fullmatch(r"/api/v1/namespaces/%s/secrets/%s" % (NAME, NAME), path)
        if m:
            ns_name, secret_name = m.group(1), m.group(3)
            with state.lock:
                secret = state.secrets.get((ns_name, secret_name))
            if method == "GET":
                self.authorize(user, "get", "secrets", "", secret_name, ns_name)
                if secret is None:
                    raise not_found("secrets", secret_name)
                self.send_json(200, secret, "secret-v1")
                return name
            if method == "DELETE":
                self.authorize(user, "delete", "secrets", "", secret_name, ns_name)
                if secret is None:
                    raise not_found("secrets", secret_name)
                with state.lock:
                    state.secrets.pop((ns_name, secret_name), None)
                self.send_json(200, secret, "secret-v1")
                return name
        if path == "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings" and method == "POST":
            self.authorize(user, "create", "clusterrolebindings", "rbac.authorization.k8s.io")
            obj = self.read_body("clusterrolebinding-rbac-v1", "ClusterRoleBinding", "rbac.authorization.k8s.io/v1")
            self.send_json(201, state.add_binding(obj), "clusterrolebinding-rbac-v1")
            return name
        m = re.fullmatch(r"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/" + r"([a-z0-9:.-]+)", path)
        if m:
            crb = m.group(1)
            with state.lock:
                binding = state.bindings.get(crb)
            if binding is None:
                raise not_found("clusterrolebindings.rbac.authorization.k8s.io", crb)
            if method == "GET":
                self.authorize(user, "get", "clusterrolebindings", "rbac.authorization.k8s.io", crb)
                self.send_json(200, binding, "clusterrolebinding-rbac-v1")
                return name
            if method == "DELETE":
                self.authorize(user, "delete", "clusterrolebindings", "rbac.authorization.k8s.io", crb)
                with state.lock:
                    state.bindings.pop(crb, None)
                self.send_json(200, binding, "clusterrolebinding-rbac-v1")
                return name
        raise ApiError(404, "NotFound", "the server could not find the requested resource", {})

    def token_review(self, user):
        state = self.state()
        self.authorize(user, "create", "tokenreviews", "authentication.k8s.io")
        obj = self.read_body("tokenreview-authentication-v1", "TokenReview", "authentication.k8s.io/v1")
        spec = obj.get("spec") or {}
        token = spec.get("token") or ""
        audiences = spec.get("audiences") or None
        reviewed, granted, error = state.authenticate(token, audiences)
        status = {}
        if reviewed is not None:
            status["authenticated"] = True
            status["user"] = reviewed
            status["audiences"] = granted
        else:
            status["user"] = {}
            if error:
                status["error"] = error
        answer = {
            "kind": "TokenReview",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"creationTimestamp": None},
            "spec": {k: v for k, v in spec.items()},
            "status": status,
        }
        with state.lock:
            state.reviews.append({
                "caller": user["username"],
                "caller_credential": user.get("_credential"),
                "audiences": audiences,
                "authenticated": bool(status.get("authenticated")),
                "username": status["user"].get("username"),
                "error": status.get("error"),
            })
        self.send_json(201, answer, "tokenreview-authentication-v1")

    def fake_endpoint(self, method, path):
        user = self.caller()
        if "system:masters" not in user["groups"]:
            raise ApiError(403, "Forbidden", "the fake's own endpoints need the admin token")
        state = self.state()
        if path == "/fake/clock" and method == "POST":
            body = json.loads(self.body or b"{}")
            with state.lock:
                state.clock_offset += int(body.get("advance_seconds", 0))
                now = state.now()
            self.send_json(200, {"now": now, "offset_seconds": state.clock_offset})
            return user["username"]
        if path == "/fake/violations" and method == "GET":
            with state.lock:
                self.send_json(200, {"violations": list(state.violations)})
            return user["username"]
        if path == "/fake/tokenreviews" and method == "GET":
            with state.lock:
                self.send_json(200, {"reviews": list(state.reviews)})
            return user["username"]
        raise ApiError(404, "NotFound", "no such fake endpoint", {})


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, tls, state, schemas, log):
        self.tls = tls
        self.state = state
        self.schemas = schemas
        self.log_file = log
        self.log_lock = threading.Lock()
        super().__init__(address, Handler)

    def get_request(self):
        sock, addr = self.socket.accept()
        return self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def handle_error(self, request, client_address):
        # Handshake failures (a client that does not trust the CA) are expected in tests.
        exc = sys.exc_info()[1]
        if isinstance(exc, (ssl.SSLError, ConnectionError, OSError)):
            return
        super().handle_error(request, client_address)

    def log(self, line):
        with self.log_lock:
            self.log_file.write("%s %s\n" % (time.strftime("%H:%M:%S"), line))
            self.log_file.flush()


# ---------------------------------------------------------------------------------------------
# Start-up


def write(path, text, mode=0o644):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def apply_seed(state, seed):
    """Namespaces, service accounts, bindings and named tokens from a seed document."""
    for ns in seed.get("namespaces", []):
        if ns["name"] not in state.namespaces:
            state.add_namespace(ns["name"], ns.get("labels"))
    for sa in seed.get("serviceaccounts", []):
        state.add_service_account(sa["namespace"], sa["name"])
    for i, b in enumerate(seed.get("bindings", [])):
        state.bind(b.get("name", "seed-binding-%d" % i), b["role"], b["namespace"], b["serviceaccount"])
    tokens = {}
    for name, t in seed.get("tokens", {}).items():
        if t.get("legacy_secret"):
            secret = state.add_secret(t["namespace"], {
                "metadata": {"name": t["legacy_secret"], "annotations": {
                    "kubernetes.io/service-account.name": t["serviceaccount"]}},
                "type": "kubernetes.io/service-account-token",
            })
            tokens[name] = base64.b64decode(secret["data"]["token"]).decode()
        else:
            tokens[name], _ = state.mint(t["namespace"], t["serviceaccount"], t.get("audiences"),
                                         t.get("expiration_seconds", 3600))
    for name, sa in seed.get("uids", {}).items():
        tokens[name] = state.service_account(sa["namespace"], sa["serviceaccount"])["metadata"]["uid"]
    # Afterwards, so tokens exist for them: service accounts deleted since their token was
    # minted, and time passing (tokens minted with a short expiration have expired).
    for sa in seed.get("delete_serviceaccounts", []):
        with state.lock:
            state.service_account(sa["namespace"], sa["name"])
            del state.service_accounts[(sa["namespace"], sa["name"])]
    state.clock_offset += int(seed.get("clock_advance_seconds", 0))
    return tokens


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", required=True, help="where certificates, keys and server.json go")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--seed", help="a JSON seed document (README.md)")
    args = parser.parse_args()

    os.makedirs(args.dir, exist_ok=True)
    schemas = Schemas()
    ca_key, ca_cert = make_ca("fake-kube-apiserver-ca")
    server_key, server_cert = make_server_cert(ca_key, ca_cert, args.host)
    _, untrusted_cert = make_ca("some-other-ca")
    signer = Signer()
    CA_PEM[0] = pem_cert(ca_cert)

    files = {
        "ca_file": os.path.join(args.dir, "ca.crt"),
        "untrusted_ca_file": os.path.join(args.dir, "untrusted-ca.crt"),
        "sa_public_key_file": os.path.join(args.dir, "sa.pub"),
        "admin_token_file": os.path.join(args.dir, "admin-token"),
        "tokens_file": os.path.join(args.dir, "tokens.json"),
    }
    write(files["ca_file"], pem_cert(ca_cert))
    write(files["untrusted_ca_file"], pem_cert(untrusted_cert))
    write(files["sa_public_key_file"], signer.public_pem)
    chain = os.path.join(args.dir, "server.pem")
    key_file = os.path.join(args.dir, "server.key")
    write(chain, pem_cert(server_cert))
    write(key_file, pem_key(server_key), 0o600)

    state = State(signer)
    write(files["admin_token_file"], state.admin_token, 0o600)
    tokens = {}
    if args.seed:
        with open(args.seed) as f:
            tokens = apply_seed(state, json.load(f))
    write(files["tokens_file"], json.dumps(tokens, indent=2), 0o600)

    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.minimum_version = ssl.TLSVersion.TLSv1_2
    tls.load_cert_chain(chain, key_file)
    log = open(os.path.join(args.dir, "fake-kube-apiserver.log"), "a")
    server = Server((args.host, args.port), tls, state, schemas, log)
    host, port = server.server_address[:2]
    url = "https://%s:%d" % (host, port)
    info = dict(files, url=url, issuer=ISSUER, pid=os.getpid())
    write(os.path.join(args.dir, "server.json"), json.dumps(info, indent=2))
    print("fake-kube-apiserver ready %s" % url, flush=True)
    server.log("listening on %s" % url)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
