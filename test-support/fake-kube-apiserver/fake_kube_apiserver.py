#!/usr/bin/env python3
"""fake-kube-apiserver: a FAKE Kubernetes API server, for Tresor's tests only.

It is not Kubernetes. No real API server can run on the test machines, so this stands in for
the part of one that Kubernetes auth and `tresor sync` need, and is held to outside standards:

- every built-in object it stores, every request body it reads and every review, Status and
  discovery document it writes is validated against the official Kubernetes 1.37 JSON schemas
  (PyPI ``kubernetes-validate==1.37.0``, strict mode); custom resources against their CRD's
  ``openAPIV3Schema``; a violation is answered with a 400/422 ``Status`` (request) or 500
  (its own object), logged, and listed at ``GET /fake/violations``;
- the real clients (the Python ``kubernetes`` package, kubectl) are run against it by
  ``check_real_clients.py``.

What it serves (HTTPS only, with a CA generated at start-up; README.md has the details):

- discovery (``/api``, ``/api/v1``, ``/apis``, ``/apis/<group>[/<version>]``), ``/version``,
  ``/healthz``, ``/livez``, ``/readyz``;
- generic REST (get, list, watch, create, update, patch: merge, strategic merge, JSON patch,
  server-side apply; delete, deletecollection) with one global resourceVersion for
  namespaces, service accounts, Secrets, ConfigMaps, Events (core and events.k8s.io),
  Deployments/StatefulSets/DaemonSets, Leases, RBAC objects, CustomResourceDefinitions and
  the custom resources they define (with their status subresource);
- what controllers would do at once: ownerReference garbage collection, namespace
  deletion, CRD establishment, service-account-token Secrets, workload status;
- ``POST /apis/authentication.k8s.io/v1/tokenreviews`` (201), as kube-apiserver answers it,
  and the TokenRequest subresource ``serviceaccounts/<name>/token``.

Service account tokens are RS256 JWTs signed with a key generated at start-up, in the same
claim layout as the real API server's (projected ``kubernetes.io`` claims for TokenRequest
tokens, the flat ``kubernetes.io/serviceaccount/...`` claims for Secret tokens). Callers
authenticate with ``Authorization: Bearer``: the admin token (``<dir>/admin-token``, user
``kubernetes-admin`` in ``system:masters``) or a service account token. Authorization is RBAC over the
stored Roles, ClusterRoles and bindings, plus the built-in ClusterRoles ``cluster-admin``,
``system:auth-delegator`` and a part of ``view``.

Fake-only endpoints live under ``/fake/`` (never a Kubernetes path) and need the admin token:
``POST /fake/clock``, ``GET /fake/violations``, ``GET /fake/tokenreviews``, ``POST
/fake/mark``, ``GET /fake/writes``, ``POST /fake/compact`` (README.md gives their shapes).

Usage: ``fake_kube_apiserver.py --dir DIR [--port 0] [--seed seed.json] [--crds PATH]
[--bookmark-seconds S]``. Once listening it writes ``DIR/server.json`` (``{"url", "ca_file",
"untrusted_ca_file", "sa_public_key_file", "admin_token_file", "tokens_file",
"kubeconfig_file", "issuer", "pid"}``) and prints ``fake-kube-apiserver ready <url>``. A seed
file creates namespaces, service accounts, bindings, CRDs and objects and mints named tokens
into ``DIR/tokens.json`` (see README.md). Tokens are never written to the log.
"""

import argparse
import base64
import bisect
import copy
import datetime
import hashlib
import json
import os
import random
import re
import socket
import ssl
import sys
import threading
import time
import traceback
import urllib.parse
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
import yaml

import kube_ops

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


def conflict(res, name, why="the object has been modified; please apply your changes to the latest version and try again"):
    details = {"name": name, "kind": res.plural}
    if res.group:
        details["group"] = res.group
    return ApiError(409, "Conflict", 'Operation cannot be fulfilled on %s "%s": %s' % (res.qualified, name, why), details)


def invalid(res, name, field, message):
    details = {"name": name, "kind": res.kind,
               "causes": [{"reason": "FieldValueInvalid", "message": message, "field": field}]}
    if res.group:
        details["group"] = res.group
    kind = "%s.%s" % (res.kind, res.group) if res.group else res.kind
    return ApiError(422, "Invalid", '%s "%s" is invalid: %s: %s' % (kind, name, field, message), details)


# ---------------------------------------------------------------------------------------------
# Resources


class Resource:
    """One served resource (group, version, plural). Objects are stored per (group, plural),
    whatever version they were written in (custom resources: conversion strategy None)."""

    def __init__(self, group, version, plural, kind, namespaced, schema=None, short_names=(),
                 status=False, generation=False, return_deleted=False, field_labels=(),
                 crd=None, cr_schema=None, cr_validator=None, categories=(), verbs=None):
        self.group, self.version, self.plural, self.kind = group, version, plural, kind
        self.namespaced, self.schema, self.short_names = namespaced, schema, list(short_names)
        self.status, self.generation, self.return_deleted = status, generation, return_deleted
        self.field_labels = {"metadata.name"} | ({"metadata.namespace"} if namespaced else set()) | set(field_labels)
        self.crd, self.cr_schema, self.cr_validator = crd, cr_schema, cr_validator
        self.categories = list(categories)
        self.verbs = verbs or ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
        self.api_version = "%s/%s" % (group, version) if group else version
        self.key = (group, plural)
        self.qualified = "%s.%s" % (plural, group) if group else plural
        self.singular = kind.lower()

    @property
    def builtin(self):
        return self.crd is None


EVENT_FIELDS = ["involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
                "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type"]
EVENTS_V1_FIELDS = ["regarding.kind", "regarding.namespace", "regarding.name", "regarding.uid",
                    "regarding.apiVersion", "reason", "reportingController", "type"]

BUILTIN = [
    Resource("", "v1", "namespaces", "Namespace", False, "namespace-v1", ["ns"], status=True,
             return_deleted=True, field_labels=["status.phase"],
             verbs=["create", "delete", "get", "list", "patch", "update", "watch"]),
    Resource("", "v1", "serviceaccounts", "ServiceAccount", True, "serviceaccount-v1", ["sa"]),
    Resource("", "v1", "secrets", "Secret", True, "secret-v1", field_labels=["type"]),
    Resource("", "v1", "configmaps", "ConfigMap", True, "configmap-v1", ["cm"]),
    Resource("", "v1", "events", "Event", True, "event-v1", ["ev"], field_labels=EVENT_FIELDS),
    Resource("events.k8s.io", "v1", "events", "Event", True, "event-events-v1", ["ev"],
             field_labels=EVENTS_V1_FIELDS),
    Resource("apps", "v1", "deployments", "Deployment", True, "deployment-apps-v1", ["deploy"],
             status=True, generation=True, categories=["all"]),
    Resource("apps", "v1", "statefulsets", "StatefulSet", True, "statefulset-apps-v1", ["sts"],
             status=True, generation=True, categories=["all"]),
    Resource("apps", "v1", "daemonsets", "DaemonSet", True, "daemonset-apps-v1", ["ds"],
             status=True, generation=True, categories=["all"]),
    # Stored and validated only (no Jobs are run): for applying CronJob manifests.
    Resource("batch", "v1", "cronjobs", "CronJob", True, "cronjob-batch-v1", ["cj"],
             status=True, generation=True, categories=["all"]),
    Resource("coordination.k8s.io", "v1", "leases", "Lease", True, "lease-coordination-v1"),
    Resource("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition",
             False, "customresourcedefinition-apiextensions-v1", ["crd", "crds"], status=True,
             generation=True, categories=["api-extensions"]),
    Resource("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False,
             "clusterrolebinding-rbac-v1"),
    Resource("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False, "clusterrole-rbac-v1"),
    Resource("rbac.authorization.k8s.io", "v1", "roles", "Role", True, "role-rbac-v1"),
    Resource("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True, "rolebinding-rbac-v1"),
]

# Served but not stored: the review and request APIs (in discovery, handled on their own).
SPECIAL_DISCOVERY = {
    ("", "v1"): [
        {"name": "serviceaccounts/token", "singularName": "", "namespaced": True,
         "group": "authentication.k8s.io", "version": "v1", "kind": "TokenRequest", "verbs": ["create"]},
    ],
    ("authentication.k8s.io", "v1"): [
        {"name": "tokenreviews", "singularName": "tokenreview", "namespaced": False,
         "kind": "TokenReview", "verbs": ["create"]},
    ],
}

NAME = r"([a-z0-9]([-a-z0-9.]*[a-z0-9])?)"
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
# Watch history kept for resuming watches; older resourceVersions get 410 Gone.
HISTORY = 20000
# Seconds between BOOKMARK events on an idle watch that asked for them (--bookmark-seconds).
BOOKMARK_SECONDS = [10.0]
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}

CURRENT = threading.local()  # the request being served (method, path), for violation entries


SERVER_META = {"uid", "resourceVersion", "creationTimestamp", "generation", "namespace", "name",
               "deletionTimestamp", "deletionGracePeriodSeconds"}


def same_but_server_fields(checked, stored):
    """Whether `stored` is `checked` plus only the metadata the server sets."""
    if checked.get("kind") != stored.get("kind") or checked.get("apiVersion") != stored.get("apiVersion"):
        return False
    for key in set(checked) | set(stored):
        if key != "metadata" and checked.get(key) != stored.get(key):
            return False
    a, b = checked.get("metadata") or {}, stored.get("metadata") or {}
    return all(a.get(k) == b.get(k) for k in (set(a) | set(b)) - SERVER_META)


BUILTIN_ROLES = {
    "cluster-admin": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}],
    "system:auth-delegator": [
        {"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]},
        {"apiGroups": ["authorization.k8s.io"], "resources": ["subjectaccessreviews"], "verbs": ["create"]},
    ],
    # A part of the real `view`: read, never Secrets.
    "view": [
        {"apiGroups": [""], "resources": ["namespaces", "serviceaccounts", "configmaps", "events"],
         "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["apps"], "resources": ["deployments", "statefulsets", "daemonsets"],
         "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "list", "watch"]},
    ],
}


def rule_matches(rule, verb, group, resource, name):
    def has(field, value):
        values = rule.get(field) or []
        return "*" in values or value in values
    if not (has("verbs", verb) and has("apiGroups", group) and has("resources", resource)):
        return False
    names = rule.get("resourceNames") or []
    return not names or (name is not None and name in names)


def subject_matches(subject, user, binding_namespace):
    kind = subject.get("kind")
    if kind == "ServiceAccount":
        ns = subject.get("namespace") or binding_namespace
        return user["username"] == "system:serviceaccount:%s:%s" % (ns, subject.get("name"))
    if kind == "User":
        return subject.get("name") == user["username"]
    if kind == "Group":
        return subject.get("name") in user.get("groups", [])
    return False


def spec_of(obj):
    """What `metadata.generation` tracks: everything but metadata and status."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


class State:
    def __init__(self, signer, schemas, log=None):
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self.signer = signer
        self.schemas = schemas
        self.log = log or (lambda line: None)
        self.clock_offset = 0
        self.rv = 100
        self.resources = {}  # (group, version, plural) -> Resource
        for r in BUILTIN:
            self.resources[(r.group, r.version, r.plural)] = r
        self.objects = {}  # (group, plural) -> {(namespace or "", name): object}
        self.by_uid = {}  # uid -> ((group, plural), namespace, name)
        self.dependents = {}  # owner uid -> {((group, plural), namespace, name)}
        self.applied = {}  # ((group, plural), namespace, name) -> {manager: set(paths)}
        self.events = []  # (rv, (group, plural), type, object, old object)
        self.event_rvs = []
        self.window_start = self.rv  # watches from a resourceVersion below this get 410
        self.reviews = []
        self.violations = []
        self.writes = []
        self.mark = 0
        self.admin_token = b64url(os.urandom(24))
        for ns in ("default", "kube-system", "kube-public"):
            self.add_namespace(ns, {})

    def now(self):
        return int(time.time()) + self.clock_offset

    # -- resources

    def resource(self, group, plural, version=None):
        for (g, v, p), r in self.resources.items():
            if g == group and p == plural and (version is None or v == version):
                return r
        return None

    def present(self, res, obj):
        """The object as served under `res`'s version."""
        if obj.get("apiVersion") == res.api_version:
            return obj
        out = dict(obj)
        out["apiVersion"] = res.api_version
        return out

    def lookup(self, key, namespace, name):
        return self.objects.get(key, {}).get((namespace or "", name))

    # -- validation

    def violation(self, direction, schema, errors):
        entry = {"direction": direction, "schema": schema,
                 "method": getattr(CURRENT, "method", "-"), "path": getattr(CURRENT, "path", "-"),
                 "errors": errors}
        with self.lock:
            self.violations.append(entry)
        self.log("SCHEMA VIOLATION %s" % json.dumps(entry))

    def check(self, res, obj):
        """(schema name, violations) of an object of `res`."""
        if res.schema:
            return res.schema, self.schemas.errors(res.schema, obj)
        name = "crd:%s/%s" % (res.crd["metadata"]["name"], res.version)
        errors = []
        for e in res.cr_validator.iter_errors(obj):
            where = ".".join(str(p) for p in e.absolute_path) or "(root)"
            errors.append("%s: %s" % (where, e.message))
        errors += ["metadata." + e for e in self.schemas.errors("objectmeta-meta-v1", obj.get("metadata") or {})]
        return name, errors

    def cr_schema(self, res):
        versions = [v for v in res.crd["spec"]["versions"] if v["name"] == res.version]
        return ((versions[0].get("schema") or {}).get("openAPIV3Schema") if versions else None) or {}

    def check_request(self, res, obj, code=400):
        """Validates a body (custom resources: after structural defaulting, as the API
        server orders it); a violation is logged and refused."""
        if not res.builtin:
            kube_ops.apply_defaults(self.cr_schema(res), obj)
        schema, errors = self.check(res, obj)
        CURRENT.checked = (res, obj) if not errors else None
        if errors:
            self.violation("request", schema, errors)
            name = (obj.get("metadata") or {}).get("name", "")
            if code == 422:
                raise invalid(res, name, "(body)", "; ".join(errors))
            raise ApiError(400, "BadRequest", "%s in body is invalid: %s" % (res.kind, "; ".join(errors)))

    def check_stored(self, res, obj):
        """Validates an object about to be stored, unless it is the body this request already
        validated with only server-set metadata added (uid, resourceVersion, timestamps,
        generation, namespace): those are valid by construction, and writes stay fast."""
        checked = getattr(CURRENT, "checked", None)
        if checked is not None and checked[0] is res and same_but_server_fields(checked[1], obj):
            return
        schema, errors = self.check(res, obj)
        if errors:
            self.violation("response", schema, errors)
            raise ApiError(500, "InternalError", "the fake's object violates %s" % schema)

    # -- storage and history (callers hold the lock)

    def next_rv(self):
        self.rv += 1
        return str(self.rv)

    def _index(self, key, obj, add):
        ident = (key, obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        for ref in obj["metadata"].get("ownerReferences") or []:
            uid = ref.get("uid")
            if add:
                self.dependents.setdefault(uid, set()).add(ident)
            else:
                s = self.dependents.get(uid)
                if s is not None:
                    s.discard(ident)
                    if not s:
                        del self.dependents[uid]

    def _put(self, res, obj, old):
        meta = obj["metadata"]
        if old is not None:
            self._index(res.key, old, False)
        self.objects.setdefault(res.key, {})[(meta.get("namespace", ""), meta["name"])] = obj
        self.by_uid[meta["uid"]] = (res.key, meta.get("namespace", ""), meta["name"])
        self._index(res.key, obj, True)

    def _record(self, res, kind, obj, old=None):
        rv = int(obj["metadata"]["resourceVersion"])
        self.events.append((rv, res.key, kind, obj, old))
        self.event_rvs.append(rv)
        if len(self.events) > 2 * HISTORY:
            drop = len(self.events) - HISTORY
            self.window_start = self.event_rvs[drop - 1]
            del self.events[:drop]
            del self.event_rvs[:drop]
        self.cond.notify_all()

    def compact(self):
        with self.lock:
            self.window_start = self.rv
            self.events, self.event_rvs = [], []
            self.cond.notify_all()
            return self.rv

    # -- writes

    def create(self, res, namespace, body, dry_run=False):
        with self.lock:
            if res.namespaced:
                self.namespace(namespace)
            obj = copy.deepcopy(body)
            meta = obj.setdefault("metadata", {})
            if res.namespaced:
                if meta.get("namespace") not in (None, "", namespace):
                    raise ApiError(400, "BadRequest", "the namespace of the provided object does not match the namespace sent on the request")
                meta["namespace"] = namespace
            else:
                meta.pop("namespace", None)
            name = meta.get("name") or ""
            if not name:
                prefix = meta.get("generateName") or ""
                if not prefix:
                    raise invalid(res, "", "metadata.name", "Required value: name or generateName is required")
                while True:
                    name = prefix + "".join(random.choice(GENERATE_ALPHABET) for _ in range(5))
                    if self.lookup(res.key, namespace if res.namespaced else "", name) is None:
                        break
                meta["name"] = name
            if not DNS_SUBDOMAIN.match(name) or len(name) > 253:
                raise invalid(res, name, "metadata.name", 'Invalid value: "%s": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, \'-\' or \'.\'' % name)
            if self.lookup(res.key, namespace if res.namespaced else "", name) is not None:
                raise already_exists(res.plural, name, res.group)
            for k in ("uid", "resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds",
                      "selfLink", "managedFields"):
                meta.pop(k, None)
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = rfc3339(self.now())
            if res.generation:
                meta["generation"] = 1
            else:
                meta.pop("generation", None)
            if res.status:
                obj.pop("status", None)
            obj["apiVersion"], obj["kind"] = res.api_version, res.kind
            self.hook(res, "create", obj, None)
            meta["resourceVersion"] = str(self.rv + 1)
            self.check_stored(res, obj)
            if dry_run:
                return obj
            self.next_rv()
            self._put(res, obj, None)
            self._record(res, "ADDED", obj)
            self.after(res, "create", obj, None)
            return obj

    def update(self, res, namespace, name, body, subresource=None, dry_run=False):
        """PUT semantics (also the end of every patch): a stale metadata.resourceVersion is a
        409 Conflict; no change is a no-op (no new resourceVersion, no watch event)."""
        with self.lock:
            old = self.lookup(res.key, namespace, name)
            if old is None:
                raise not_found(res.qualified, name)
            meta_in = body.get("metadata") or {}
            if meta_in.get("name") not in (None, name):
                raise ApiError(400, "BadRequest", "the name of the object (%s) does not match the name on the URL (%s)" % (meta_in.get("name"), name))
            if res.namespaced and meta_in.get("namespace") not in (None, "", namespace):
                raise ApiError(400, "BadRequest", "the namespace of the provided object does not match the namespace sent on the request")
            if meta_in.get("resourceVersion") not in (None, "") and meta_in["resourceVersion"] != old["metadata"]["resourceVersion"]:
                raise conflict(res, name)
            if meta_in.get("uid") not in (None, "") and meta_in["uid"] != old["metadata"]["uid"]:
                raise conflict(res, name, "Precondition failed: UID in precondition: %s, UID in object meta: %s" % (old["metadata"]["uid"], meta_in["uid"]))
            if subresource == "status":
                new = copy.deepcopy(old)
                if body.get("status") is None:
                    new.pop("status", None)
                else:
                    new["status"] = copy.deepcopy(body["status"])
            else:
                new = copy.deepcopy(body)
                new.setdefault("metadata", {})
                if res.status:
                    if "status" in old:
                        new["status"] = copy.deepcopy(old["status"])
                    else:
                        new.pop("status", None)
            meta = new["metadata"]
            meta["name"] = name
            if res.namespaced:
                meta["namespace"] = namespace
            for k in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds"):
                if k in old["metadata"]:
                    meta[k] = old["metadata"][k]
                else:
                    meta.pop(k, None)
            meta.pop("managedFields", None)
            meta.pop("selfLink", None)
            if res.generation:
                meta["generation"] = old["metadata"].get("generation", 1)
                if spec_of(new) != spec_of(old):
                    meta["generation"] += 1
            else:
                meta.pop("generation", None)
            new["apiVersion"], new["kind"] = res.api_version if res.builtin else old["apiVersion"], res.kind
            self.hook(res, "update", new, old)
            meta["resourceVersion"] = old["metadata"]["resourceVersion"]
            if new == old or (not res.builtin and dict(new, apiVersion=old["apiVersion"]) == old):
                return old
            meta["resourceVersion"] = str(self.rv + 1)
            self.check_stored(res, new)
            if dry_run:
                return new
            self.next_rv()
            self._put(res, new, old)
            self._record(res, "MODIFIED", new, old)
            if meta.get("deletionTimestamp") and not meta.get("finalizers"):
                self.remove(res, new, "Background")
            else:
                self.after(res, "update", new, old)
            return new

    def delete(self, res, namespace, name, policy=None, preconditions=None, dry_run=False):
        """(object, finished?). An object with finalizers only gets deletionTimestamp."""
        with self.lock:
            old = self.lookup(res.key, namespace, name)
            if old is None:
                raise not_found(res.qualified, name)
            pre = preconditions or {}
            if pre.get("uid") and pre["uid"] != old["metadata"]["uid"]:
                raise conflict(res, name, "Precondition failed: UID in precondition: %s, UID in object meta: %s" % (pre["uid"], old["metadata"]["uid"]))
            if pre.get("resourceVersion") and pre["resourceVersion"] != old["metadata"]["resourceVersion"]:
                raise conflict(res, name, "Precondition failed: ResourceVersion in precondition: %s, ResourceVersion in object meta: %s" % (pre["resourceVersion"], old["metadata"]["resourceVersion"]))
            if dry_run:
                return old, True
            if old["metadata"].get("finalizers"):
                if old["metadata"].get("deletionTimestamp"):
                    return old, False
                new = copy.deepcopy(old)
                new["metadata"]["deletionTimestamp"] = rfc3339(self.now())
                new["metadata"]["deletionGracePeriodSeconds"] = 0
                new["metadata"]["resourceVersion"] = self.next_rv()
                self._put(res, new, old)
                self._record(res, "MODIFIED", new, old)
                return new, False
            return self.remove(res, old, policy or "Background"), True

    def remove(self, res, obj, policy):
        """Takes the object out and, as kube-controller-manager's garbage collector would,
        deletes its dependents (background propagation) or orphans them."""
        meta = obj["metadata"]
        ident = (meta.get("namespace", ""), meta["name"])
        self.objects.get(res.key, {}).pop(ident, None)
        self.by_uid.pop(meta["uid"], None)
        self._index(res.key, obj, False)
        self.applied.pop((res.key,) + ident, None)
        gone = copy.deepcopy(obj)
        gone["metadata"]["resourceVersion"] = self.next_rv()
        self._record(res, "DELETED", gone, obj)
        self.after(res, "delete", None, obj)
        for key, ns, name in sorted(self.dependents.pop(meta["uid"], set())):
            dep = self.lookup(key, ns, name)
            dres = self.resource(*key)
            if dep is None or dres is None:
                continue
            refs = dep["metadata"].get("ownerReferences") or []
            if policy == "Orphan":
                new = copy.deepcopy(dep)
                new["metadata"]["ownerReferences"] = [r for r in refs if r.get("uid") != meta["uid"]]
                if not new["metadata"]["ownerReferences"]:
                    del new["metadata"]["ownerReferences"]
                new["metadata"]["resourceVersion"] = self.next_rv()
                self._put(dres, new, dep)
                self._record(dres, "MODIFIED", new, dep)
            elif all(r.get("uid") not in self.by_uid for r in refs):
                self.log("garbage collector: deleting %s %s/%s (owner %s gone)" % (dres.qualified, ns, name, meta["name"]))
                self.delete(dres, ns, name, "Background")
        return gone

    # -- per-resource behaviour (what the API server's strategies and controllers do)

    def hook(self, res, verb, obj, old):
        if res.key == ("", "namespaces"):
            obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = obj["metadata"]["name"]
            obj["spec"] = copy.deepcopy(old["spec"]) if old is not None else {"finalizers": ["kubernetes"]}
            if old is None:
                obj["status"] = {"phase": "Active"}
        elif res.key == ("", "secrets"):
            # stringData is write-only: merged into data (base64), as the API server does.
            string_data = obj.pop("stringData", None) or {}
            if string_data:
                obj.setdefault("data", {})
                for k, v in string_data.items():
                    obj["data"][k] = base64.b64encode(v.encode()).decode()
            if not obj.get("type"):
                obj["type"] = "Opaque"
            if old is not None:
                if obj["type"] != old.get("type"):
                    raise invalid(res, obj["metadata"]["name"], "type", "Invalid value: \"%s\": field is immutable" % obj["type"])
                if old.get("immutable") and (obj.get("data") != old.get("data") or not obj.get("immutable")):
                    raise invalid(res, obj["metadata"]["name"], "data", "Forbidden: field is immutable when `immutable` is set")
            if verb == "create" and obj["type"] == "kubernetes.io/service-account-token":
                self.fill_token_secret(obj)
        elif res.key == ("", "configmaps") and old is not None and old.get("immutable"):
            if obj.get("data") != old.get("data") or obj.get("binaryData") != old.get("binaryData"):
                raise invalid(res, obj["metadata"]["name"], "data", "Forbidden: field is immutable when `immutable` is set")
        elif res.group == "apps" and res.generation:
            # The workload controllers, with instant rollouts: status follows the spec.
            replicas = (obj.get("spec") or {}).get("replicas", 1) if res.plural != "daemonsets" else 1
            obj.setdefault("spec", {})
            if res.plural != "daemonsets":
                obj["spec"].setdefault("replicas", 1)
            status = {"observedGeneration": obj["metadata"]["generation"]}
            if res.plural == "daemonsets":
                status.update({"currentNumberScheduled": 1, "desiredNumberScheduled": 1,
                               "numberMisscheduled": 0, "numberReady": 1, "updatedNumberScheduled": 1,
                               "numberAvailable": 1})
            else:
                status.update({"replicas": replicas, "updatedReplicas": replicas, "readyReplicas": replicas,
                               "availableReplicas": replicas})
            if verb == "create" or (old is not None and spec_of(obj) != spec_of(old)):
                obj["status"] = dict(obj.get("status") or {}, **status)
        elif res.key == ("apiextensions.k8s.io", "customresourcedefinitions"):
            self.prepare_crd(res, obj, old)
        elif not res.builtin:
            kube_ops.apply_defaults(self.cr_schema(res), obj)

    def after(self, res, verb, obj, old):
        if verb in ("create", "update") and obj is not None and self._dangling(obj):
            # kube-controller-manager's garbage collector deletes a dependent whose owners are
            # all gone, however it came to name them (here: written after its owner was
            # deleted, e.g. by a reconcile that raced the deletion). The real one does it a
            # moment later; this fake does it at once.
            meta = obj["metadata"]
            self.log("garbage collector: deleting %s %s/%s (owners gone)"
                     % (res.qualified, meta.get("namespace", ""), meta["name"]))
            self.delete(res, meta.get("namespace", ""), meta["name"], "Background")
            return
        if res.key == ("apiextensions.k8s.io", "customresourcedefinitions"):
            if verb == "delete":
                self.unregister_crd(old, delete_objects=True)
            else:
                self.register_crd(obj)
        elif res.key == ("", "namespaces") and verb == "create":
            # The service account controller gives every namespace its `default` account.
            name = obj["metadata"]["name"]
            if self.lookup(("", "serviceaccounts"), name, "default") is None:
                self.create(self.resource("", "serviceaccounts"), name, {"metadata": {"name": "default"}})
        elif res.key == ("", "namespaces") and verb == "delete":
            # The namespace controller empties it.
            name = old["metadata"]["name"]
            for key, objs in list(self.objects.items()):
                r = self.resource(*key)
                for (ns, n), o in sorted(objs.items()):
                    if ns == name and r is not None and self.lookup(key, ns, n) is not None:
                        self.remove(r, o, "Background")

    def _dangling(self, obj):
        refs = obj["metadata"].get("ownerReferences") or []
        return bool(refs) and all(r.get("uid") not in self.by_uid for r in refs)

    def fill_token_secret(self, secret):
        """The token controller fills a service-account-token Secret: a legacy token."""
        meta = secret["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        annotations = meta.setdefault("annotations", {})
        sa_name = annotations.get("kubernetes.io/service-account.name", "")
        sa = self.service_account(namespace, sa_name)
        annotations["kubernetes.io/service-account.uid"] = sa["metadata"]["uid"]
        token = self.signer.sign({
            "iss": LEGACY_ISSUER,
            "kubernetes.io/serviceaccount/namespace": namespace,
            "kubernetes.io/serviceaccount/secret.name": name,
            "kubernetes.io/serviceaccount/service-account.name": sa_name,
            "kubernetes.io/serviceaccount/service-account.uid": sa["metadata"]["uid"],
            "sub": "system:serviceaccount:%s:%s" % (namespace, sa_name),
        })
        data = secret.setdefault("data", {})
        data["token"] = base64.b64encode(token.encode()).decode()
        data["namespace"] = base64.b64encode(namespace.encode()).decode()
        data["ca.crt"] = base64.b64encode(CA_PEM[0].encode()).decode()

    # -- CustomResourceDefinitions

    def prepare_crd(self, res, crd, old):
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        name = crd["metadata"]["name"]
        if name != "%s.%s" % (names.get("plural"), spec.get("group")):
            raise invalid(res, name, "metadata.name", 'Invalid value: "%s": must be spec.names.plural+"."+spec.group' % name)
        if old is not None and spec.get("group") != old["spec"].get("group"):
            raise invalid(res, name, "spec.group", "Invalid value: field is immutable")
        storage = [v["name"] for v in spec.get("versions") or [] if v.get("storage")]
        if len(storage) != 1:
            raise invalid(res, name, "spec.versions", "Invalid value: must have exactly one version marked as storage version")
        for v in spec.get("versions") or []:
            schema = (v.get("schema") or {}).get("openAPIV3Schema")
            if schema is None:
                raise invalid(res, name, "spec.versions[%s].schema.openAPIV3Schema" % v["name"], "Required value: schemas are required")
            try:
                jsonschema.Draft7Validator.check_schema(kube_ops.crd_json_schema(schema))
            except jsonschema.SchemaError as e:
                raise invalid(res, name, "spec.versions[%s].schema.openAPIV3Schema" % v["name"], "Invalid value: %s" % e.message)
        for (g, _, p), r in self.resources.items():
            if g == spec.get("group") and p == names.get("plural") and r.builtin:
                raise invalid(res, name, "spec.names.plural", "Invalid value: %s is a built-in resource" % p)
        now = rfc3339(self.now())
        stored = list((old or {}).get("status", {}).get("storedVersions") or [])
        if storage[0] not in stored:
            stored.append(storage[0])
        accepted = {k: v for k, v in names.items()}
        accepted.setdefault("singular", names.get("kind", "").lower())
        accepted.setdefault("listKind", names.get("kind", "") + "List")
        crd["status"] = {
            "conditions": [
                {"type": "NamesAccepted", "status": "True", "lastTransitionTime": now,
                 "reason": "NoConflicts", "message": "no conflicts found"},
                {"type": "Established", "status": "True", "lastTransitionTime": now,
                 "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"},
            ],
            "acceptedNames": accepted,
            "storedVersions": stored,
        }

    def register_crd(self, crd):
        self.unregister_crd(crd, delete_objects=False)
        spec = crd["spec"]
        names = spec["names"]
        for v in spec["versions"]:
            if not v.get("served"):
                continue
            schema = v["schema"]["openAPIV3Schema"]
            res = Resource(
                spec["group"], v["name"], names["plural"], names["kind"], spec.get("scope") == "Namespaced",
                short_names=names.get("shortNames") or (), status="status" in (v.get("subresources") or {}),
                generation=True, return_deleted=True, crd=crd, cr_schema=schema,
                cr_validator=jsonschema.Draft7Validator(kube_ops.crd_json_schema(schema)),
                categories=names.get("categories") or (),
            )
            if names.get("singular"):
                res.singular = names["singular"]
            self.resources[(res.group, res.version, res.plural)] = res
        self.log("CRD %s established" % crd["metadata"]["name"])

    def unregister_crd(self, crd, delete_objects):
        group, plural = crd["spec"]["group"], crd["spec"]["names"]["plural"]
        served = [k for k, r in self.resources.items() if k[0] == group and k[2] == plural and not r.builtin]
        if delete_objects and served:
            res = self.resources[served[0]]
            for (ns, n), o in sorted(self.objects.get((group, plural), {}).items()):
                if self.lookup(res.key, ns, n) is not None:
                    self.remove(res, o, "Background")
        for k in served:
            del self.resources[k]

    # -- the objects Kubernetes auth needs (seed documents, TokenRequest, TokenReview)

    def add_namespace(self, name, labels):
        res = self.resource("", "namespaces")
        return self.create(res, None, {"metadata": {"name": name, "labels": dict(labels or {})}})

    def namespace(self, name):
        with self.lock:
            ns = self.lookup(("", "namespaces"), "", name)
            if ns is None:
                raise not_found("namespaces", name)
            return ns

    def add_service_account(self, namespace, name):
        return self.create(self.resource("", "serviceaccounts"), namespace, {"metadata": {"name": name}})

    def service_account(self, namespace, name):
        with self.lock:
            sa = self.lookup(("", "serviceaccounts"), namespace, name)
            if sa is None:
                raise not_found("serviceaccounts", name)
            return sa

    def bind(self, binding_name, role, namespace, sa_name):
        return self.create(self.resource("rbac.authorization.k8s.io", "clusterrolebindings"), None, {
            "metadata": {"name": binding_name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": sa_name, "namespace": namespace}],
        })

    def add_secret(self, namespace, obj):
        return self.create(self.resource("", "secrets"), namespace, obj)

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
                if self.lookup(("", "secrets"), namespace, secret_name) is None:
                    return None, None, '[invalid bearer token, secrets "%s" not found]' % secret_name
            else:
                k = claims.get("kubernetes.io") or {}
                namespace = k.get("namespace", "")
                name = (k.get("serviceaccount") or {}).get("name", "")
                uid = (k.get("serviceaccount") or {}).get("uid", "")
            sa = self.lookup(("", "serviceaccounts"), namespace, name)
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

    def allowed(self, user, verb, resource, group, namespace=None, name=None):
        """RBAC as the API server's authorizer decides it: ClusterRoleBindings grant their
        (Cluster)Role everywhere, RoleBindings in their namespace; rules match on apiGroups,
        resources (`<plural>/<subresource>` for subresources), verbs and resourceNames, with
        `*` wildcards. Roles are the stored ones, plus the built-in ClusterRoles
        `cluster-admin`, `system:auth-delegator` and `view` when not stored."""
        if "system:masters" in user.get("groups", []):
            return True
        with self.lock:
            bindings = [(b, None) for b in self.objects.get(("rbac.authorization.k8s.io", "clusterrolebindings"), {}).values()]
            if namespace:
                bindings += [(b, namespace) for (ns, _), b in
                             self.objects.get(("rbac.authorization.k8s.io", "rolebindings"), {}).items() if ns == namespace]
            for binding, scope in bindings:
                if not any(subject_matches(s, user, scope) for s in binding.get("subjects") or []):
                    continue
                ref = binding.get("roleRef") or {}
                if ref.get("kind") == "Role":
                    role = self.lookup(("rbac.authorization.k8s.io", "roles"), scope or "", ref.get("name", ""))
                    rules = (role or {}).get("rules") or []
                else:
                    role = self.lookup(("rbac.authorization.k8s.io", "clusterroles"), "", ref.get("name", ""))
                    if role is not None:
                        rules = role.get("rules") or []
                    else:
                        rules = BUILTIN_ROLES.get(ref.get("name"), [])
                if any(rule_matches(r, verb, group, resource, name) for r in rules):
                    return True
        return False

    # -- discovery

    def resource_list(self, group, version):
        with self.lock:
            served = sorted((r for (g, v, _), r in self.resources.items() if g == group and v == version),
                            key=lambda r: r.plural)
        if not served and (group, version) not in SPECIAL_DISCOVERY:
            return None
        out = []
        for r in served:
            entry = {"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced,
                     "kind": r.kind, "verbs": list(r.verbs)}
            if r.short_names:
                entry["shortNames"] = list(r.short_names)
            if r.categories:
                entry["categories"] = list(r.categories)
            out.append(entry)
            if r.status:
                out.append({"name": r.plural + "/status", "singularName": "", "namespaced": r.namespaced,
                            "kind": r.kind, "verbs": ["get", "patch", "update"]})
        out += copy.deepcopy(SPECIAL_DISCOVERY.get((group, version), []))
        return {"kind": "APIResourceList", "apiVersion": "v1",
                "groupVersion": "%s/%s" % (group, version) if group else version, "resources": out}

    def group_list(self):
        with self.lock:
            versions = {}
            for (g, v, _) in self.resources:
                if g:
                    versions.setdefault(g, set()).add(v)
        for g, v in SPECIAL_DISCOVERY:
            if g:
                versions.setdefault(g, set()).add(v)
        groups = []
        for g in sorted(versions):
            vs = sorted(versions[g], key=kube_ops.version_priority, reverse=True)
            entries = [{"groupVersion": "%s/%s" % (g, v), "version": v} for v in vs]
            groups.append({"name": g, "versions": entries, "preferredVersion": entries[0]})
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


# ---------------------------------------------------------------------------------------------
# HTTP


CA_PEM = [""]  # the CA certificate, for service-account-token Secrets' ca.crt


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

    def send_response(self, code, message=None):
        self._headers_code = code
        super().send_response(code, message)

    def send_json(self, code, obj, schema=None):
        if schema is not None:
            errors = self.server.schemas.errors(schema, obj)
            if errors:
                self.state().violation("response", schema, errors)
                code, obj = 500, ApiError(500, "InternalError", "the fake's response violates %s" % schema).status()
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache, private")
        self.end_with(data)
        self.status_sent = code

    def record_write(self, code):
        """Counts this request in /fake/writes, before its answer leaves: a client that has its
        answer (and a test that asks /fake/writes after it) always finds its write counted."""
        if self.write_entry is not None:
            self.write_entry["code"] = code
            with self.state().lock:
                self.state().writes.append(self.write_entry)
            self.write_entry = None

    def end_with(self, data):
        """Ends the headers and sends them with the body in one write (one TLS record)."""
        self.record_write(self._headers_code)
        self._headers_buffer.append(b"\r\n")
        self._headers_buffer.append(data)
        self.flush_headers()

    def send_text(self, code, text):
        data = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_with(data)
        self.status_sent = code

    def send_status(self, err):
        self.send_json(err.code, err.status(), "status-meta-v1")

    def parse_body(self, kind, api_version, allow_protobuf=False):
        """The request body as a dict with kind/apiVersion defaulted from the URL, as the API
        server does (Go clients omit them), and checked against it."""
        content_type = (self.headers.get("Content-Type") or "application/json").split(";")[0].strip()
        raw = self.body
        if content_type == "application/vnd.kubernetes.protobuf" and allow_protobuf:
            try:
                obj = kube_ops.decode_protobuf(raw)
            except (ValueError, UnicodeDecodeError, IndexError):
                raise ApiError(415, "UnsupportedMediaType", "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml")
        elif content_type in ("application/json", "*/*"):
            try:
                obj = json.loads(raw) if raw else None
            except ValueError:
                raise ApiError(400, "BadRequest", "the object provided is unrecognized (must be of type %s): couldn't get version/kind; json parse error" % kind)
        elif content_type == "application/yaml":
            try:
                obj = yaml.safe_load(raw) if raw else None
            except yaml.YAMLError:
                raise ApiError(400, "BadRequest", "the object provided is unrecognized (must be of type %s): yaml parse error" % kind)
        else:
            # kube-apiserver also speaks protobuf and CBOR; this fake only JSON and YAML.
            raise ApiError(415, "UnsupportedMediaType", "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml")
        if not isinstance(obj, dict):
            raise ApiError(400, "BadRequest", "the object provided is unrecognized (must be of type %s)" % kind)
        obj.setdefault("kind", kind)
        obj.setdefault("apiVersion", api_version)
        if obj.get("kind") != kind or obj.get("apiVersion") != api_version:
            raise ApiError(400, "BadRequest", "the API version in the data (%s) does not match the expected API version (%s)" % (
                obj.get("apiVersion"), api_version))
        return obj

    def read_body(self, schema, kind, api_version):
        obj = self.parse_body(kind, api_version)
        errors = self.server.schemas.errors(schema, obj)
        if errors:
            self.state().violation("request", schema, errors)
            raise ApiError(400, "BadRequest", "%s in body is invalid: %s" % (kind, "; ".join(errors)))
        return obj

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
        if self.state().allowed(user, verb, resource, group, namespace, name):
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
        self.write_entry = None
        user = "-"
        split = urllib.parse.urlsplit(self.path)
        path = split.path.rstrip("/") or "/"
        self.query = {k: v[-1] for k, v in urllib.parse.parse_qs(split.query, keep_blank_values=True).items()}
        CURRENT.method, CURRENT.path, CURRENT.checked = method, path, None
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
            self.server.log("fake bug on %s %s: %r\n%s" % (method, path, e, traceback.format_exc()))
            self.send_status(ApiError(500, "InternalError", "fake-kube-apiserver bug: %s" % e.__class__.__name__))
        finally:
            # A request whose answer never went out (a dropped connection) still counts.
            self.record_write(self.status_sent)
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
        if method == "GET" and path == "/apis":
            self.send_json(200, state.group_list(), "apigrouplist-meta-v1")
            return name
        m = re.fullmatch(r"/api/(v1)|/apis/([a-z0-9.-]+)/([a-z0-9]+)", path)
        if method == "GET" and m:
            group, version = (m.group(2) or ""), (m.group(1) or m.group(3))
            listing = state.resource_list(group, version)
            if listing is None:
                raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
            self.send_json(200, listing, "apiresourcelist-meta-v1")
            return name
        m = re.fullmatch(r"/apis/([a-z0-9.-]+)", path)
        if method == "GET" and m:
            group = next((g for g in state.group_list()["groups"] if g["name"] == m.group(1)), None)
            if group is None:
                raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
            self.send_json(200, dict(group, kind="APIGroup", apiVersion="v1"), "apigroup-meta-v1")
            return name
        if method == "GET" and (path == "/openapi/v3" or path.startswith("/openapi/v3/")):
            self.openapi_v3(path)
            return name
        if path == "/apis/authentication.k8s.io/v1/tokenreviews" and method == "POST":
            self.token_review(user)
            return name
        m = re.fullmatch(r"/api/v1/namespaces/%s/serviceaccounts/%s/token" % (NAME, NAME), path)
        if m and method == "POST":
            self.token_request(user, m.group(1), m.group(3))
            return name
        target = self.resource_path(path)
        if target is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        self.resource_request(method, user, *target)
        return name

    def resource_path(self, path):
        """(resource, namespace, name, subresource) of a REST path, or None."""
        parts = path.strip("/").split("/")
        if len(parts) >= 2 and parts[0] == "api" and parts[1] == "v1":
            group, version, rest = "", "v1", parts[2:]
        elif len(parts) >= 3 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            return None
        if not rest:
            return None
        namespace = None
        if rest[0] == "namespaces" and len(rest) >= 3 and not (group == "" and len(rest) == 3 and rest[2] in ("status", "finalize")):
            namespace, rest = rest[1], rest[2:]
        if len(rest) > 3:
            return None
        with self.state().lock:
            res = self.state().resources.get((group, version, rest[0]))
        if res is None:
            return None
        if namespace is not None and not res.namespaced:
            return None
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if res.namespaced and namespace is None and name is not None:
            return None
        if sub is not None and not (sub == "status" and res.status):
            return None
        return res, namespace, name, sub

    def resource_request(self, method, user, res, namespace, name, sub):
        state = self.state()
        q = self.query
        watch = q.get("watch") in ("1", "true")
        if method == "GET":
            verb = "get" if name else ("watch" if watch else "list")
        else:
            verb = {"POST": "create", "PUT": "update", "PATCH": "patch",
                    "DELETE": "delete" if name else "deletecollection"}[method]
            if (method == "POST" and name is not None) or (method in ("PUT", "PATCH") and name is None):
                raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource", {})
        resource = res.plural + ("/" + sub if sub else "")
        self.authorize(user, verb, resource, res.group, name, namespace)
        ns_key = namespace or "" if res.namespaced else ""
        dry_run = q.get("dryRun") == "All"
        if method in MUTATING:
            self.write_entry = {"resource": res.qualified + ("/" + sub if sub else ""), "verb": verb,
                                "namespace": namespace, "name": name, "dry_run": dry_run}
        if verb == "get":
            with state.lock:
                obj = state.lookup(res.key, ns_key, name)
            if obj is None:
                raise not_found(res.qualified, name)
            self.send_json(200, self.view(res, obj))
        elif verb == "list":
            self.list_objects(res, namespace)
        elif verb == "watch":
            self.watch(res, namespace)
        elif verb == "create":
            body = self.parse_body(res.kind, res.api_version, allow_protobuf=res.key in (("", "secrets"), ("", "namespaces")))
            state.check_request(res, body)
            obj = state.create(res, namespace, body, dry_run)
            if self.write_entry is not None:
                self.write_entry["name"] = obj["metadata"]["name"]
            self.send_json(201, obj)
        elif verb == "update":
            body = self.parse_body(res.kind, res.api_version)
            state.check_request(res, body)
            self.send_json(200, state.update(res, ns_key, name, body, sub, dry_run))
        elif verb == "patch":
            self.patch(res, ns_key, name, sub, dry_run)
        elif verb == "delete":
            options = self.delete_options()
            dry_run = dry_run or options.get("dryRun") == ["All"]
            if self.write_entry is not None:
                self.write_entry["dry_run"] = dry_run
            obj, finished = state.delete(res, ns_key, name, options.get("propagationPolicy"),
                                         options.get("preconditions"), dry_run)
            if not finished or res.return_deleted:
                self.send_json(200, state.present(res, obj))
            else:
                details = {"name": name, "kind": res.plural, "uid": obj["metadata"]["uid"]}
                if res.group:
                    details["group"] = res.group
                self.send_json(200, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                     "status": "Success", "details": details}, "status-meta-v1")
        elif verb == "deletecollection":
            options = self.delete_options()
            items = self.select(res, namespace)
            deleted = []
            for o in items:
                try:
                    obj, _ = state.delete(res, o["metadata"].get("namespace", ""), o["metadata"]["name"],
                                          options.get("propagationPolicy"), None, dry_run)
                    deleted.append(state.present(res, obj))
                except ApiError as e:
                    if e.code != 404:
                        raise
            with state.lock:
                rv = str(state.rv)
            self.send_json(200, {"kind": res.kind + "List", "apiVersion": res.api_version,
                                 "metadata": {"resourceVersion": rv}, "items": deleted})

    def delete_options(self):
        options = {}
        if self.body:
            try:
                options = json.loads(self.body)
            except ValueError:
                raise ApiError(400, "BadRequest", "the body of a delete must be DeleteOptions (JSON)")
            if not isinstance(options, dict):
                raise ApiError(400, "BadRequest", "the body of a delete must be DeleteOptions (JSON)")
            options.setdefault("kind", "DeleteOptions")
            options.setdefault("apiVersion", "v1")
            errors = self.server.schemas.errors("deleteoptions-meta-v1", options)
            if errors:
                self.state().violation("request", "deleteoptions-meta-v1", errors)
                raise ApiError(400, "BadRequest", "DeleteOptions in body is invalid: %s" % "; ".join(errors))
        if "propagationPolicy" in self.query:
            options["propagationPolicy"] = self.query["propagationPolicy"]
        policy = options.get("propagationPolicy")
        if policy not in (None, "Background", "Foreground", "Orphan"):
            raise ApiError(400, "BadRequest", "propagationPolicy: Unsupported value: %r" % policy)
        if options.get("orphanDependents") is True:
            options["propagationPolicy"] = "Orphan"
        return options

    # -- OpenAPI v3 (operations only)

    def openapi_v3(self, path):
        """OpenAPI v3 documents that declare, per resource, the operations and their
        `fieldValidation` parameter, and no schemas: enough for kubectl to see that the server
        validates fields itself (it then sends fieldValidation=Strict and validates nothing on
        its side; the fake's validation is the official schemas, strict)."""
        state = self.state()
        with state.lock:
            gvs = sorted({(g, v) for (g, v, _) in state.resources})
        if path == "/openapi/v3":
            paths = {}
            for g, v in gvs:
                rel = "apis/%s/%s" % (g, v) if g else "api/%s" % v
                paths[rel] = {"serverRelativeURL": "/openapi/v3/%s?hash=%s" % (rel, self.openapi_hash(g, v))}
            self.send_json(200, {"paths": paths})
            return
        rel = path[len("/openapi/v3/"):]
        parts = rel.split("/")
        if parts[0] == "api" and len(parts) == 2:
            g, v = "", parts[1]
        elif parts[0] == "apis" and len(parts) == 3:
            g, v = parts[1], parts[2]
        else:
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        if (g, v) not in gvs:
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        with state.lock:
            served = [r for (rg, rv, _), r in state.resources.items() if rg == g and rv == v]
        param = {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": True},
                 "description": "Strict, Warn or Ignore: what the server does with unknown or duplicate fields"}
        paths = {}
        for r in served:
            base = "/apis/%s/%s" % (g, v) if g else "/api/%s" % v
            collection = base + ("/namespaces/{namespace}/" if r.namespaced else "/") + r.plural
            gvk = {"group": g, "version": v, "kind": r.kind}
            op = lambda action: {"x-kubernetes-action": action, "x-kubernetes-group-version-kind": gvk,
                                 "parameters": [param], "responses": {"200": {"description": "OK"}}}
            paths[collection] = {"post": op("post")}
            paths[collection + "/{name}"] = {"put": op("put"), "patch": op("patch")}
        self.send_json(200, {"openapi": "3.0.0", "info": {"title": "Kubernetes (fake)", "version": "v" + KUBE_VERSION},
                             "paths": paths, "components": {"schemas": {}}})

    def openapi_hash(self, group, version):
        with self.state().lock:
            kinds = sorted(r.kind + str(r.namespaced) for (g, v, _), r in self.state().resources.items()
                           if g == group and v == version)
        return hashlib.sha256(("%s/%s:%s" % (group, version, ",".join(kinds))).encode()).hexdigest()[:32].upper()

    # -- list and watch

    def selectors(self, res):
        try:
            labels = kube_ops.parse_label_selector(self.query.get("labelSelector", ""))
            fields = kube_ops.parse_field_selector(self.query.get("fieldSelector", ""), res.field_labels)
        except kube_ops.SelectorError as e:
            raise ApiError(400, "BadRequest", str(e))
        return labels, fields

    def matcher(self, res, namespace):
        labels, fields = self.selectors(res)

        def match(obj):
            meta = obj["metadata"]
            if namespace is not None and meta.get("namespace") != namespace:
                return False
            return kube_ops.labels_match(labels, meta.get("labels")) and kube_ops.fields_match(fields, obj)
        return match

    def select(self, res, namespace):
        match = self.matcher(res, namespace)
        state = self.state()
        with state.lock:
            objs = list(state.objects.get(res.key, {}).items())
        return [o for _, o in sorted(objs, key=lambda kv: kv[0]) if match(o)]

    def list_objects(self, res, namespace):
        state = self.state()
        match = self.matcher(res, namespace)
        with state.lock:
            rv = state.rv
            objs = sorted(state.objects.get(res.key, {}).items(), key=lambda kv: kv[0])
        start = None
        token = self.query.get("continue")
        if token:
            try:
                decoded = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
                start, rv = tuple(decoded["start"]), decoded["rv"]
            except (ValueError, KeyError, TypeError):
                raise ApiError(400, "BadRequest", "continue key is not valid")
            if rv < state.window_start:
                raise ApiError(410, "Expired", "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.")
        try:
            limit = int(self.query.get("limit") or 0)
        except ValueError:
            raise ApiError(400, "BadRequest", "limit must be an integer")
        items, cont, remaining = [], None, 0
        for key, obj in objs:
            if start is not None and key <= start:
                continue
            if not match(obj):
                continue
            if limit and len(items) >= limit:
                remaining += 1
                continue
            items.append(self.view(res, obj))
            last = key
        meta = {"resourceVersion": str(rv)}
        if remaining:
            cont = base64.urlsafe_b64encode(json.dumps({"rv": rv, "start": list(last)}).encode()).decode().rstrip("=")
            meta["continue"] = cont
            meta["remainingItemCount"] = remaining
        if self.metadata_only():
            self.send_json(200, {"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1",
                                 "metadata": meta, "items": items})
            return
        self.send_json(200, {"kind": res.kind + "List", "apiVersion": res.api_version, "metadata": meta, "items": items})

    def metadata_only(self):
        """Whether the client asked for metadata only (`Accept: application/json;
        as=PartialObjectMetadata[List];g=meta.k8s.io;v=v1`, what kube-rs' metadata watchers
        and client-go's metadata informers send)."""
        accept = self.headers.get("Accept") or ""
        return "as=PartialObjectMetadata" in accept.replace(" ", "")

    def view(self, res, obj):
        """The object as served under `res`, or its PartialObjectMetadata."""
        if self.metadata_only():
            return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]}
        return self.state().present(res, obj)

    def watch(self, res, namespace):
        """A watch stream: newline-delimited JSON events over chunked encoding."""
        state = self.state()
        match = self.matcher(res, namespace)
        q = self.query
        try:
            timeout = float(q.get("timeoutSeconds") or 1800)
        except ValueError:
            raise ApiError(400, "BadRequest", "timeoutSeconds must be an integer")
        bookmarks = q.get("allowWatchBookmarks") in ("1", "true")
        send_initial = q.get("sendInitialEvents") == "true"
        rv_param = q.get("resourceVersion") or ""
        if send_initial and not (bookmarks and q.get("resourceVersionMatch") == "NotOlderThan"):
            raise ApiError(422, "Invalid", "sendInitialEvents requires allowWatchBookmarks=true and resourceVersionMatch=NotOlderThan")
        with state.lock:
            if rv_param in ("", "0") or send_initial:
                initial = [self.view(res, o) for _, o in sorted(state.objects.get(res.key, {}).items(), key=lambda kv: kv[0]) if match(o)]
                last = state.rv
                expired = False
            else:
                try:
                    last = int(rv_param)
                except ValueError:
                    raise ApiError(400, "BadRequest", "resourceVersion must be an integer")
                initial = []
                expired = last < state.window_start
            window = state.window_start
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        self.status_sent = 200

        def emit(kind, obj):
            data = json.dumps({"type": kind, "object": obj}).encode() + b"\n"
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        def bookmark(rv, initial_end=False):
            meta = {"resourceVersion": str(rv)}
            if initial_end:
                meta["annotations"] = {"k8s.io/initial-events-end": "true"}
            emit("BOOKMARK", {"kind": res.kind, "apiVersion": res.api_version, "metadata": meta})

        def gone(rv, oldest):
            emit("ERROR", ApiError(410, "Expired", "too old resource version: %d (%d)" % (rv, oldest + 1)).status())

        try:
            if expired:
                gone(last, window)
                return
            for obj in initial:
                emit("ADDED", obj)
            if send_initial:
                bookmark(last, True)
            deadline = time.monotonic() + timeout
            next_bookmark = time.monotonic() + BOOKMARK_SECONDS[0]
            while True:
                now = time.monotonic()
                if now >= deadline:
                    break
                with state.cond:
                    if state.rv <= last:
                        state.cond.wait(min(deadline, next_bookmark if bookmarks else deadline) - now)
                    if last < state.window_start:
                        expired = True
                        window = state.window_start
                        pending = []
                    else:
                        pending = state.events[bisect.bisect_right(state.event_rvs, last):]
                        current = state.rv
                if expired:
                    gone(last, window)
                    return
                for rv, key, kind, obj, old in pending:
                    if key != res.key:
                        continue
                    new_match = kind != "DELETED" and match(obj)
                    old_match = old is not None and match(old)
                    if kind == "ADDED" and new_match:
                        emit("ADDED", self.view(res, obj))
                    elif kind == "MODIFIED":
                        if new_match and old_match:
                            emit("MODIFIED", self.view(res, obj))
                        elif new_match:
                            emit("ADDED", self.view(res, obj))
                        elif old_match:
                            emit("DELETED", self.view(res, obj))
                    elif kind == "DELETED" and match(obj):
                        emit("DELETED", self.view(res, obj))
                if pending or current > last:
                    last = current
                if bookmarks and time.monotonic() >= next_bookmark:
                    bookmark(last)
                    next_bookmark = time.monotonic() + BOOKMARK_SECONDS[0]
        finally:
            try:
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            except OSError:
                self.close_connection = True

    # -- patch

    def patch(self, res, ns_key, name, sub, dry_run):
        state = self.state()
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        try:
            if content_type == "application/apply-patch+yaml":
                patch = yaml.safe_load(self.body) if self.body else None
            else:
                patch = json.loads(self.body) if self.body else None
        except (ValueError, yaml.YAMLError):
            raise ApiError(400, "BadRequest", "the body of the request could not be decoded as %s" % content_type)
        if content_type == "application/apply-patch+yaml":
            self.send_json(*self.server_side_apply(res, ns_key, name, sub, patch, dry_run))
            return
        if content_type not in ("application/merge-patch+json", "application/strategic-merge-patch+json",
                                "application/json-patch+json"):
            raise ApiError(415, "UnsupportedMediaType", "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json")
        if content_type == "application/strategic-merge-patch+json" and not res.builtin:
            raise ApiError(415, "UnsupportedMediaType", "strategic merge patch format is not supported")
        with state.lock:
            old = state.lookup(res.key, ns_key, name)
            if old is None:
                raise not_found(res.qualified, name)
            base = state.present(res, old)
            try:
                if content_type == "application/merge-patch+json":
                    if not isinstance(patch, dict):
                        raise kube_ops.PatchError("a merge patch must be a JSON object")
                    new = kube_ops.merge_patch(base, patch)
                elif content_type == "application/strategic-merge-patch+json":
                    new = kube_ops.strategic_merge_patch(base, patch)
                else:
                    new = kube_ops.json_patch(base, patch)
            except kube_ops.PatchError as e:
                raise ApiError(422 if content_type == "application/json-patch+json" else 400,
                               "Invalid" if content_type == "application/json-patch+json" else "BadRequest", str(e))
            if not isinstance(new, dict):
                raise ApiError(422, "Invalid", "the patch does not produce an object")
            state.check_request(res, new, 422)
            self.send_json(200, state.update(res, ns_key, name, new, sub, dry_run))

    def server_side_apply(self, res, ns_key, name, sub, applied, dry_run):
        """Server-side apply, the subset this fake emulates (README: "Server-side apply")."""
        state = self.state()
        manager = self.query.get("fieldManager")
        if not manager:
            raise invalid(res, name, "fieldManager", "Required value: is required for apply patch")
        if not isinstance(applied, dict):
            raise ApiError(400, "BadRequest", "an apply patch must be an object")
        if applied.get("apiVersion") != res.api_version or applied.get("kind") != res.kind:
            raise ApiError(400, "BadRequest", "the API version in the data (%s) does not match the expected API version (%s)" % (applied.get("apiVersion"), res.api_version))
        meta = applied.get("metadata") or {}
        if meta.get("name") not in (None, name):
            raise ApiError(400, "BadRequest", "the name of the object (%s) does not match the name on the URL (%s)" % (meta.get("name"), name))
        force = self.query.get("force") in ("1", "true")
        config = copy.deepcopy(applied)
        for k in ("apiVersion", "kind"):
            config.pop(k, None)
        cmeta = config.get("metadata") or {}
        for k in ("name", "namespace", "resourceVersion", "uid"):
            cmeta.pop(k, None)
        if not cmeta:
            config.pop("metadata", None)
        if sub == "status":
            config = {"status": config.get("status")} if "status" in config else {}
        elif res.status:
            config.pop("status", None)
        paths = kube_ops.leaf_paths(config)
        with state.lock:
            key = (res.key, ns_key, name)
            old = state.lookup(res.key, ns_key, name)
            if old is None:
                if sub:
                    raise not_found(res.qualified, name)
                body = copy.deepcopy(applied)
                body.setdefault("metadata", {})["name"] = name
                state.check_request(res, body)
                obj = state.create(res, ns_key or None, body, dry_run)
                if not dry_run:
                    state.applied[key] = {manager: paths}
                return 201, obj
            owners = state.applied.get(key, {})
            others = set()
            for m, p in owners.items():
                if m != manager:
                    others |= p
            if not force:
                clashes = []
                for path in sorted(paths & others):
                    if _at(old, path) != _at(applied, path):
                        holder = next(m for m, p in owners.items() if m != manager and path in p)
                        clashes.append((holder, path))
                if clashes:
                    causes = [{"reason": "FieldManagerConflict", "message": 'conflict with "%s"' % m,
                               "field": "." + ".".join(p)} for m, p in clashes]
                    raise ApiError(409, "Conflict", "Apply failed with %d conflict%s: %s" % (
                        len(clashes), "s" if len(clashes) > 1 else "",
                        "; ".join('conflict with "%s": .%s' % (m, ".".join(p)) for m, p in clashes)),
                        {"name": name, "kind": res.plural, "causes": causes})
            base = state.present(res, old)
            if res.builtin:
                merged = kube_ops.strategic_merge_patch(base, applied)
            else:
                merged = _apply_merge(base, applied)
            for path in owners.get(manager, set()) - paths - others:
                kube_ops.remove_path(merged, path)
                kube_ops.prune_empty(merged, path)
            merged["metadata"]["resourceVersion"] = (applied.get("metadata") or {}).get(
                "resourceVersion") or old["metadata"]["resourceVersion"]
            state.check_request(res, merged, 422)
            obj = state.update(res, ns_key, name, merged, sub, dry_run)
            if not dry_run:
                owned = state.applied.setdefault(key, {})
                owned[manager] = paths
                if force:
                    for m in list(owned):
                        if m != manager:
                            owned[m] = owned[m] - paths
            return 200, obj

    # -- the review and request APIs

    def token_request(self, user, ns_name, sa_name):
        state = self.state()
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

    # -- the fake's own endpoints

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
        elif path == "/fake/violations" and method == "GET":
            with state.lock:
                self.send_json(200, {"violations": list(state.violations)})
        elif path == "/fake/tokenreviews" and method == "GET":
            with state.lock:
                self.send_json(200, {"reviews": list(state.reviews)})
        elif path == "/fake/mark" and method == "POST":
            with state.lock:
                state.mark = len(state.writes)
                self.send_json(200, {"mark": state.mark, "resourceVersion": str(state.rv)})
        elif path == "/fake/writes" and method == "GET":
            with state.lock:
                since_mark = self.query.get("since") != "start"
                entries = list(state.writes[state.mark if since_mark else 0:])
            counts, by_object = {}, {}
            for e in entries:
                if e["dry_run"]:
                    continue
                counts.setdefault(e["resource"], {}).setdefault(e["verb"], 0)
                counts[e["resource"]][e["verb"]] += 1
                obj = "%s/%s/%s" % (e["resource"], e["namespace"] or "", e["name"] or "")
                by_object.setdefault(obj, {}).setdefault(e["verb"], 0)
                by_object[obj][e["verb"]] += 1
            self.send_json(200, {"since": "mark" if since_mark else "start",
                                 "total": sum(1 for e in entries if not e["dry_run"]),
                                 "by_resource": counts, "by_object": by_object, "writes": entries})
        elif path == "/fake/compact" and method == "POST":
            self.send_json(200, {"resourceVersion": str(state.compact())})
        else:
            raise ApiError(404, "NotFound", "no such fake endpoint", {})
        return user["username"]


def _at(obj, path):
    for p in path:
        if not isinstance(obj, dict) or p not in obj:
            return None
        obj = obj[p]
    return obj


def _apply_merge(target, patch):
    """Apply's merge for custom resources: maps merge, lists and scalars are replaced."""
    if not isinstance(patch, dict) or not isinstance(target, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target)
    for k, v in patch.items():
        out[k] = _apply_merge(out.get(k), v) if isinstance(v, dict) else copy.deepcopy(v)
    return out


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address, tls, state, schemas, log):
        self.tls = tls
        self.state = state
        self.schemas = schemas
        self.log_file = log
        self.log_lock = threading.Lock()
        super().__init__(address, Handler)

    def get_request(self):
        sock, addr = self.socket.accept()
        # Small responses go out at once (no Nagle delay against the client's delayed ACK).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
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
    """Namespaces, service accounts, bindings, CRDs, objects and named tokens from a seed
    document."""
    for ns in seed.get("namespaces", []):
        if state.lookup(("", "namespaces"), "", ns["name"]) is None:
            state.add_namespace(ns["name"], ns.get("labels"))
    for sa in seed.get("serviceaccounts", []):
        state.add_service_account(sa["namespace"], sa["name"])
    for i, b in enumerate(seed.get("bindings", [])):
        state.bind(b.get("name", "seed-binding-%d" % i), b["role"], b["namespace"], b["serviceaccount"])
    for path in seed.get("crds", []):
        load_objects(state, path)
    for obj in seed.get("objects", []):
        create_object(state, obj)
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
        state.delete(state.resource("", "serviceaccounts"), sa["namespace"], sa["name"])
    state.clock_offset += int(seed.get("clock_advance_seconds", 0))
    return tokens


def create_object(state, obj):
    group, _, version = obj.get("apiVersion", "").rpartition("/")
    with state.lock:
        res = next((r for (g, v, _), r in state.resources.items()
                    if g == group and v == version and r.kind == obj.get("kind")), None)
    if res is None:
        raise SystemExit("seed: no resource for %s %s" % (obj.get("apiVersion"), obj.get("kind")))
    errors = state.check(res, obj)[1]
    if errors:
        raise SystemExit("seed: %s %s violates its schema: %s" % (obj.get("kind"), (obj.get("metadata") or {}).get("name"), errors))
    namespace = (obj.get("metadata") or {}).get("namespace") or ("default" if res.namespaced else None)
    return state.create(res, namespace, obj)


def load_objects(state, path):
    """Creates every object of a YAML file, or of every *.yaml file of a directory (relative
    paths: to this script's directory, e.g. `crds`)."""
    if not os.path.isabs(path):
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), path)
    files = [os.path.join(path, f) for f in sorted(os.listdir(path)) if f.endswith(".yaml")] if os.path.isdir(path) else [path]
    for f in files:
        with open(f) as fh:
            for doc in yaml.safe_load_all(fh):
                if doc:
                    create_object(state, doc)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", required=True, help="where certificates, keys and server.json go")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--seed", help="a JSON seed document (README.md)")
    parser.add_argument("--crds", action="append", default=[],
                        help="a YAML file or directory of objects to create at start (e.g. crds)")
    parser.add_argument("--bookmark-seconds", type=float, default=BOOKMARK_SECONDS[0],
                        help="BOOKMARK interval of idle watches that allow them")
    args = parser.parse_args()
    BOOKMARK_SECONDS[0] = args.bookmark_seconds

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
        "kubeconfig_file": os.path.join(args.dir, "kubeconfig"),
    }
    write(files["ca_file"], pem_cert(ca_cert))
    write(files["untrusted_ca_file"], pem_cert(untrusted_cert))
    write(files["sa_public_key_file"], signer.public_pem)
    chain = os.path.join(args.dir, "server.pem")
    key_file = os.path.join(args.dir, "server.key")
    write(chain, pem_cert(server_cert))
    write(key_file, pem_key(server_key), 0o600)

    log = open(os.path.join(args.dir, "fake-kube-apiserver.log"), "a")
    log_lock = threading.Lock()

    def log_line(line):
        with log_lock:
            log.write("%s %s\n" % (time.strftime("%H:%M:%S"), line))
            log.flush()

    state = State(signer, schemas, log_line)
    write(files["admin_token_file"], state.admin_token, 0o600)
    tokens = {}
    for path in args.crds:
        load_objects(state, path)
    if args.seed:
        with open(args.seed) as f:
            tokens = apply_seed(state, json.load(f))
    write(files["tokens_file"], json.dumps(tokens, indent=2), 0o600)

    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.minimum_version = ssl.TLSVersion.TLSv1_2
    tls.load_cert_chain(chain, key_file)
    server = Server((args.host, args.port), tls, state, schemas, log)
    server.log_lock = log_lock
    host, port = server.server_address[:2]
    url = "https://%s:%d" % (host, port)
    write(files["kubeconfig_file"], yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "fake",
        "clusters": [{"name": "fake", "cluster": {"server": url, "certificate-authority": files["ca_file"]}}],
        "users": [{"name": "admin", "user": {"token": state.admin_token}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "admin", "namespace": "default"}}],
    }), 0o600)
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
