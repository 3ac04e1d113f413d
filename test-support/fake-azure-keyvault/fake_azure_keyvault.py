#!/usr/bin/env python3
"""fake-azure-keyvault: a FAKE Azure Key Vault (secrets) + Entra ID token endpoint + IMDS, for
Tresor's tests only.

It is not Azure. No Key Vault emulator can run on the test machines (see
../shared/reference/real-peers.md §3), so this stands in for the part of Azure that reading and
writing Key Vault secrets needs, and is held to an outside standard: ``check_real_clients.py``
runs the official Python clients (``azure-keyvault-secrets`` 4.12.0, ``azure-identity`` 1.27.0)
against it, with ``ClientSecretCredential`` and ``WorkloadIdentityCredential``.

What it serves, HTTPS only (a CA and a server certificate for 127.0.0.1/localhost generated at
start-up), on one port:

- the Key Vault secrets REST API (api-version 7.4 or later; ``2025-07-01``-style dates too):
  a 401 challenge (``WWW-Authenticate: Bearer authorization="<url>/<tenant>",
  resource="https://vault.azure.net"``) without a valid bearer token; ``PUT /secrets/{name}``,
  ``GET /secrets/{name}[/{version}]``, ``GET /secrets`` (``maxresults``, ``nextLink`` with a
  ``$skiptoken``), ``GET /secrets/{name}/versions``, ``DELETE /secrets/{name}`` (soft delete),
  ``GET /deletedsecrets[/{name}]``, ``POST /deletedsecrets/{name}/recover``,
  ``DELETE /deletedsecrets/{name}`` (purge); Azure RBAC roles decide who may do what
  (``Key Vault Secrets Officer``, ``Key Vault Secrets User``, ``Key Vault Reader``);
- Entra ID: ``GET /{tenant}/v2.0/.well-known/openid-configuration`` and
  ``POST /{tenant}/oauth2/v2.0/token`` (client_credentials with a ``client_secret`` or a
  federated ``client_assertion``), with AADSTS errors worded as Entra words them.

And, on a second port, plain HTTP as the real one: the managed identity endpoint (IMDS)
``GET /metadata/identity/oauth2/token``.

Fake-only endpoints live under ``/fake/`` on the HTTPS port: ``POST /fake/faults`` (the next N
requests to Key Vault, Entra or IMDS answer 429 with a Retry-After, 503, …), ``GET
/fake/requests`` (what was asked: time, method, path, status, caller; never a secret value, a
client secret, an assertion or a token), ``DELETE /fake/requests``, ``POST
/fake/federated-token`` (mints a service-account-like JWT signed by the fake's own OIDC issuer
key, for WorkloadIdentityCredential), ``POST /fake/clock`` (moves the clock: tokens expire).

Usage: ``fake_azure_keyvault.py --dir DIR [--seed seed.json] [--port 0] [--imds-port 0]``.
Once listening it writes ``DIR/server.json`` and prints ``fake-azure-keyvault ready <url>``.
"""

import argparse
import base64
import datetime
import email.utils
import hashlib
import ipaddress
import json
import os
import re
import secrets as pysecrets
import ssl
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

VAULT_RESOURCE = "https://vault.azure.net"
TOKEN_EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
NAME_RE = re.compile(r"^[0-9a-zA-Z-]{1,127}$")
API_VERSION_RE = re.compile(r"^(7\.([4-9]|\d\d)|20\d\d-\d\d-\d\d)(-preview)?$")
MAX_BODY = 1024 * 1024
MAX_VALUE_BYTES = 25 * 1024
DEFAULT_PAGE = 25
RECOVERABLE_DAYS = 90

# Azure RBAC data actions of the built-in Key Vault roles (secrets only).
ROLES = {
    "Key Vault Administrator": {"get", "list", "set", "delete", "recover", "purge"},
    "Key Vault Secrets Officer": {"get", "list", "set", "delete", "recover", "purge"},
    "Key Vault Secrets User": {"get", "list"},
    "Key Vault Reader": {"list"},
}
ACTIONS = {
    "get": "Microsoft.KeyVault/vaults/secrets/getSecret/action",
    "list": "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
    "set": "Microsoft.KeyVault/vaults/secrets/setSecret/action",
    "delete": "Microsoft.KeyVault/vaults/secrets/delete",
    "recover": "Microsoft.KeyVault/vaults/secrets/recover/action",
    "purge": "Microsoft.KeyVault/vaults/deletedSecrets/delete",
}


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# ---------------------------------------------------------------------------------------------
# Keys and certificates


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
    sans = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    try:
        ip = ipaddress.ip_address(host)
        if ip != ipaddress.ip_address("127.0.0.1"):
            sans.append(x509.IPAddress(ip))
    except ValueError:
        sans.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-azure-keyvault")]))
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


class RsaSigner:
    """An RS256 JWT signing key (the fake Entra's token key, the fake OIDC issuer's key)."""

    def __init__(self):
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        der = self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.kid = b64url(hashlib.sha256(der).digest())[:27]
        self.public_pem = self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()

    def sign(self, claims):
        header = {"alg": "RS256", "kid": self.kid, "typ": "JWT"}
        signing_input = (
            b64url(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + b64url(json.dumps(claims, separators=(",", ":")).encode())
        )
        sig = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + b64url(sig)

    def jwks(self):
        numbers = self.key.public_key().public_numbers()

        def b64int(n):
            return b64url(n.to_bytes((n.bit_length() + 7) // 8, "big"))

        return {"keys": [{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid,
                          "n": b64int(numbers.n), "e": b64int(numbers.e)}]}


def parse_jwt(token):
    """(header, claims, signing input, signature) of a compact JWS, or None."""
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
    return header, claims, (parts[0] + "." + parts[1]).encode(), signature


def public_keys_from_jwks(jwks):
    keys = []
    for k in jwks.get("keys", []):
        if k.get("kty") == "RSA":
            n = int.from_bytes(b64url_decode(k["n"]), "big")
            e = int.from_bytes(b64url_decode(k["e"]), "big")
            keys.append(rsa.RSAPublicNumbers(e, n).public_key())
    return keys


def signature_ok(keys, header, signing_input, signature):
    if header.get("alg") != "RS256":
        return False
    for key in keys:
        try:
            key.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
            return True
        except Exception:  # noqa: BLE001 - any failure means "not this key"
            continue
    return False


# ---------------------------------------------------------------------------------------------
# Errors, as Azure words them


class KvError(Exception):
    """A Key Vault error: {"error": {"code", "message"}}."""

    def __init__(self, status, code, message, headers=None, inner=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.inner = inner

    def body(self):
        err = {"code": self.code, "message": self.message}
        if self.inner:
            err["innererror"] = {"code": self.inner}
        return {"error": err}


class EntraError(Exception):
    """An Entra ID (AAD) OAuth error with its AADSTS code."""

    def __init__(self, status, error, aadsts, description):
        super().__init__(description)
        self.status = status
        self.error = error
        self.aadsts = aadsts
        self.description = description

    def body(self):
        trace, corr = str(uuid.uuid4()), str(uuid.uuid4())
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
        return {
            "error": self.error,
            "error_description": "AADSTS%d: %s Trace ID: %s Correlation ID: %s Timestamp: %s"
            % (self.aadsts, self.description, trace, corr, stamp),
            "error_codes": [self.aadsts],
            "timestamp": stamp,
            "trace_id": trace,
            "correlation_id": corr,
            "error_uri": "https://login.microsoftonline.com/error?code=%d" % self.aadsts,
        }


def not_found(name):
    return KvError(404, "SecretNotFound",
                   "A secret with (name/id) %s was not found in this key vault. If you recently "
                   "deleted this secret you may be able to recover it using the correct recovery "
                   "command. For help resolving this issue, please see "
                   "https://go.microsoft.com/fwlink/?linkid=2125182" % name)


def deleted_not_found(name):
    return KvError(404, "SecretNotFound", "Deleted Secret not found: %s" % name)


# ---------------------------------------------------------------------------------------------
# State


class Principal:
    def __init__(self, kind, tenant, client_id, roles, secret=None, federated=None, display=None):
        self.kind = kind  # "app" or "managed_identity"
        self.tenant = tenant
        self.client_id = client_id
        self.object_id = str(uuid.uuid5(uuid.NAMESPACE_URL, "fake-oid:" + client_id))
        self.roles = list(roles)
        self.secret = secret
        self.federated = federated or []
        self.display = display or client_id

    def allowed(self, action):
        return any(action in ROLES.get(r, set()) for r in self.roles)


class State:
    def __init__(self, token_signer, issuer_signer):
        self.lock = threading.Lock()
        self.token_signer = token_signer
        self.issuer_signer = issuer_signer
        self.tenants = set()
        self.vault_tenant = None
        self.principals = {}  # client_id -> Principal
        self.managed_identity = None  # client_id of the IMDS identity
        self.secrets = {}  # name -> list of versions (dicts), newest last
        self.deleted = {}  # name -> {"versions": [...], "deleted": ts, "purge": ts}
        self.tokens = {}  # access token -> (client_id, tenant, resource, exp)
        self.faults = []  # [{"target", "status", "count", "retry_after", "path_prefix", ...}]
        self.requests = []
        self.clock_offset = 0
        self.base_url = None
        self.issuer_url = None

    def now(self):
        return time.time() + self.clock_offset

    def take_fault(self, target, path):
        with self.lock:
            for f in self.faults:
                if f["target"] == target and f["count"] > 0 and path.startswith(f.get("path_prefix", "")):
                    f["count"] -= 1
                    return dict(f)
        return None

    def record(self, entry):
        with self.lock:
            self.requests.append(entry)

    # -- tokens

    def issue_token(self, principal, resource, lifetime=3599):
        now = int(self.now())
        claims = {
            "aud": resource,
            "iss": "https://sts.windows.net/%s/" % principal.tenant,
            "iat": now, "nbf": now, "exp": now + lifetime,
            "appid": principal.client_id, "oid": principal.object_id,
            "sub": principal.object_id, "tid": principal.tenant,
            "idtyp": "app", "ver": "1.0", "uti": b64url(os.urandom(12)),
        }
        token = self.token_signer.sign(claims)
        with self.lock:
            self.tokens[token] = (principal.client_id, principal.tenant, resource, now + lifetime)
        return token, lifetime

    def check_bearer(self, header):
        """The principal a Key Vault request's Authorization header names, or a KvError 401."""
        if not header or not header.lower().startswith("bearer "):
            raise KvError(401, "Unauthorized", "AKV10000: Request is missing a Bearer or PoP token.")
        token = header[7:].strip()
        with self.lock:
            entry = self.tokens.get(token)
        if entry is None:
            raise KvError(401, "Unauthorized", "AKV10032: Invalid issuer. Expected one of "
                          "https://sts.windows.net/%s/, found an unknown token." % self.vault_tenant)
        client_id, tenant, resource, exp = entry
        if tenant != self.vault_tenant:
            raise KvError(401, "Unauthorized", "AKV10032: Invalid issuer. Expected one of "
                          "https://sts.windows.net/%s/, found https://sts.windows.net/%s/."
                          % (self.vault_tenant, tenant))
        if resource.rstrip("/") != VAULT_RESOURCE:
            raise KvError(401, "Unauthorized", "AKV10022: Invalid audience. Expected %s, found: %s."
                          % (VAULT_RESOURCE, resource))
        if exp <= self.now():
            raise KvError(401, "Unauthorized", "AKV10001: The access token has expired.")
        return self.principals[client_id]

    # -- secrets

    def attributes(self, v):
        return {
            "enabled": v["enabled"], "created": v["created"], "updated": v["updated"],
            "recoveryLevel": "Recoverable+Purgeable", "recoverableDays": RECOVERABLE_DAYS,
        }

    def bundle(self, name, v, with_value=True):
        out = {"id": "%s/secrets/%s/%s" % (self.base_url, name, v["version"]),
               "attributes": self.attributes(v), "tags": v["tags"]}
        if v.get("contentType") is not None:
            out["contentType"] = v["contentType"]
        if with_value:
            out["value"] = v["value"]
        return out

    def item(self, name, v, versioned):
        out = {"id": "%s/secrets/%s" % (self.base_url, name) + ("/" + v["version"] if versioned else ""),
               "attributes": self.attributes(v), "tags": v["tags"]}
        if v.get("contentType") is not None:
            out["contentType"] = v["contentType"]
        return out

    def deleted_bundle(self, name, d, item=False):
        v = d["versions"][-1]
        out = self.item(name, v, False) if item else self.bundle(name, v, with_value=False)
        out.update({"recoveryId": "%s/deletedsecrets/%s" % (self.base_url, name),
                    "deletedDate": d["deleted"], "scheduledPurgeDate": d["purge"]})
        return out

    def set_secret(self, name, value, content_type=None, tags=None, enabled=True):
        now = int(self.now())
        with self.lock:
            if name in self.deleted:
                raise KvError(409, "Conflict",
                              "Secret %s is currently in a deleted but recoverable state, and its "
                              "name cannot be reused; in this state, the secret can only be "
                              "recovered or purged." % name)
            v = {"version": uuid.uuid4().hex, "value": value, "contentType": content_type,
                 "tags": tags or {}, "enabled": enabled, "created": now, "updated": now}
            self.secrets.setdefault(name, []).append(v)
            return v


# ---------------------------------------------------------------------------------------------
# HTTP


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-azure-keyvault"

    def setup(self):
        if self.server.tls is not None:
            try:
                self.request.do_handshake()
            except (ssl.SSLError, OSError) as e:
                self.server.log("tls handshake failed: %s" % e.__class__.__name__)
                raise
        super().setup()

    def log_message(self, fmt, *args):
        pass

    @property
    def state(self):
        return self.server.state

    def send_json(self, code, obj, headers=None):
        self.record(code)
        data = json.dumps(obj).encode() if obj is not None else b""
        self.send_response(code)
        if obj is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache")
        self.send_header("x-ms-request-id", str(uuid.uuid4()))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        self.status_sent = code

    def read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise KvError(413, "RequestEntityTooLarge", "The request body is too large.")
        return self.rfile.read(length) if length else b""

    def do_GET(self):
        self.dispatch()

    def do_PUT(self):
        self.dispatch()

    def do_POST(self):
        self.dispatch()

    def do_DELETE(self):
        self.dispatch()

    def do_PATCH(self):
        self.dispatch()

    def dispatch(self):
        self.status_sent = None
        self.caller = None
        self.note = None
        self.recorded = False
        self.started = time.time()
        url = urllib.parse.urlsplit(self.path)
        path = url.path
        query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        self.url_path = path
        self.query = query
        self.body = b""
        self.area = self.server.kind
        try:
            self.body = self.read_body()
            if self.server.kind == "imds":
                self.imds(path, query)
            elif path.startswith("/fake/"):
                self.fake(path, query)
            elif path.split("/")[1:2] in (["secrets"], ["deletedsecrets"]):
                self.keyvault(path, query)
            else:
                self.area = "entra"
                self.entra(path, query)
        except KvError as e:
            self.send_json(e.status, e.body(), e.headers)
        except EntraError as e:
            self.send_json(e.status, e.body())
        except (ValueError, KeyError, TypeError) as e:
            self.send_json(400, KvError(400, "BadParameter", "Invalid request: %s" % e.__class__.__name__).body())
        finally:
            if self.status_sent is None:
                self.record(None)

    def record(self, status):
        """Records the request (before its answer is written, so a client that reads
        /fake/requests right after its answer sees it)."""
        if self.recorded or self.url_path.startswith("/fake/"):
            return
        self.recorded = True
        entry = {"time": self.started, "server": self.area, "method": self.command,
                 "path": self.url_path, "api_version": self.query.get("api-version"),
                 "maxresults": self.query.get("maxresults"),
                 "authorization": self.auth_kind(), "body_bytes": len(self.body),
                 "status": status, "caller": self.caller}
        if self.note:
            entry.update(self.note)
        self.state.record(entry)
        self.server.log("%s %s %s %s caller=%s" % (self.area, self.command, self.url_path,
                                                 status, self.caller))

    def auth_kind(self):
        h = self.headers.get("Authorization")
        if not h:
            return "none"
        return h.split(" ", 1)[0].lower()

    def fault(self, target, path):
        f = self.state.take_fault(target, path)
        if f is None:
            return False
        status = f["status"]
        headers = {}
        if f.get("retry_after") is not None:
            ra = f["retry_after"]
            if ra == "http-date":
                ra = email.utils.formatdate(time.time() + f.get("retry_after_seconds", 2), usegmt=True)
            headers["Retry-After"] = str(ra)
        if target == "entra":
            raise EntraError(status, "temporarily_unavailable", 50196 if status == 429 else 90033,
                             "The server is temporarily unavailable (fake fault injection).")
        if target == "imds":
            self.send_json(status, {"error": "temporarily_unavailable",
                                    "error_description": "fake fault injection"}, headers)
            return True
        if status == 429:
            raise KvError(429, "Throttled", "Request was not processed because too many requests "
                          "were received. Reason: A generic throttling rule was applied.", headers)
        if status == 404:
            # Soft delete and recovery complete asynchronously in Key Vault: until they do, the
            # deleted (or recovered) secret answers 404, which the official pollers wait out.
            parts = path.strip("/").split("/")
            name = parts[1] if len(parts) > 1 else ""
            raise deleted_not_found(name) if parts[0] == "deletedsecrets" else not_found(name)
        if status == 503:
            raise KvError(503, "ServiceUnavailable", "The service is temporarily unavailable. "
                          "Please try again later.", headers)
        raise KvError(status, "InternalServerError", "An internal error occurred.", headers)

    # -- Key Vault

    def challenge(self, err):
        err.headers["WWW-Authenticate"] = 'Bearer authorization="%s/%s", resource="%s"' % (
            self.state.base_url, self.state.vault_tenant, VAULT_RESOURCE)
        return err

    def keyvault(self, path, query):
        api = query.get("api-version")
        if api is None:
            raise KvError(400, "BadParameter", "The 'api-version' query parameter is missing.")
        if not API_VERSION_RE.match(api):
            raise KvError(400, "BadParameter", "The specified version (%s) is not recognized. "
                          "Consider using the latest supported version (7.6)." % api)
        try:
            principal = self.state.check_bearer(self.headers.get("Authorization"))
        except KvError as e:
            raise self.challenge(e)
        self.caller = principal.client_id
        if self.fault("keyvault", path):
            return
        parts = path.strip("/").split("/")
        trailing = path.endswith("/")
        m = self.command
        if parts[0] == "secrets":
            if len(parts) == 1 and m == "GET":
                return self.list_secrets(principal, query)
            name = parts[1]
            self.check_name(name)
            if len(parts) == 2 and m == "PUT" and not trailing:
                return self.put_secret(principal, name)
            if len(parts) == 2 and m == "DELETE" and not trailing:
                return self.delete_secret(principal, name)
            if len(parts) == 2 and m == "GET":
                return self.get_secret(principal, name, "")
            if len(parts) == 3 and m == "GET" and parts[2] == "versions":
                return self.list_versions(principal, name, query)
            if len(parts) == 3 and m == "GET":
                return self.get_secret(principal, name, parts[2])
        else:
            if len(parts) == 1 and m == "GET":
                return self.list_deleted(principal, query)
            name = parts[1]
            self.check_name(name)
            if len(parts) == 2 and m == "GET":
                return self.get_deleted(principal, name)
            if len(parts) == 2 and m == "DELETE":
                return self.purge(principal, name)
            if len(parts) == 3 and parts[2] == "recover" and m == "POST":
                return self.recover(principal, name)
        raise KvError(404, "NotFound", "The requested resource was not found: %s %s" % (m, path))

    def check_name(self, name):
        if not NAME_RE.match(name):
            raise KvError(400, "BadParameter", "The request URI contains an invalid name: %s" % name)

    def authorize(self, principal, action, name=None):
        if principal.allowed(action):
            return
        resource = "/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/fake-rg/" \
                   "providers/Microsoft.KeyVault/vaults/fake-vault" + ("/secrets/%s" % name if name else "")
        raise KvError(
            403, "Forbidden",
            "Caller is not authorized to perform action on resource.\r\nIf role assignments, deny "
            "assignments or role definitions were changed recently, please observe propagation "
            "time.\r\nCaller: appid=%s;oid=%s;iss=https://sts.windows.net/%s/\r\nAction: '%s'\r\n"
            "Resource: '%s'\r\nAssignment: (not found)\r\nDenyAssignmentId: null\r\n"
            "DecisionReason: null \r\nVault: fake-vault;location=westeurope\r\n"
            % (principal.client_id, principal.object_id, principal.tenant, ACTIONS[action],
               resource.lower()),
            inner="ForbiddenByRbac")

    def page_params(self, query):
        raw = query.get("maxresults")
        size = DEFAULT_PAGE
        if raw is not None:
            if not raw.isdigit() or not 1 <= int(raw) <= 25:
                raise KvError(400, "BadParameter", "Invalid value for maxresults: %s. The value "
                              "must be between 1 and 25." % raw)
            size = int(raw)
        start = 0
        token = query.get("$skiptoken")
        if token:
            try:
                start = int(json.loads(b64url_decode(token))["NextMarker"])
            except (ValueError, KeyError, TypeError):
                raise KvError(400, "BadParameter", "The $skiptoken is not valid.")
        return size, start

    def page(self, items, query, path):
        size, start = self.page_params(query)
        chunk = items[start:start + size]
        next_link = None
        if start + size < len(items):
            token = b64url(json.dumps({"NextMarker": str(start + size), "TargetLocation": 0}).encode())
            base = self.state.base_url
            f = self.state.take_fault("foreign_next_link", path)
            if f is not None:
                base = f["host"]
            next_link = "%s%s?api-version=%s&$skiptoken=%s&maxresults=%d" % (
                base, path, query["api-version"], token, size)
        return {"value": chunk, "nextLink": next_link}

    def put_secret(self, principal, name):
        self.authorize(principal, "set", name)
        try:
            body = json.loads(self.body or b"{}")
        except ValueError:
            raise KvError(400, "BadParameter", "The request body is not valid JSON.")
        value = body.get("value") if isinstance(body, dict) else None
        if not isinstance(value, str):
            raise KvError(400, "BadParameter", "Property value is required.")
        if len(value.encode()) > MAX_VALUE_BYTES:
            raise KvError(400, "BadParameter", "Secret value is too large. Maximum size is 25KB.")
        attrs = body.get("attributes") or {}
        v = self.state.set_secret(name, value, body.get("contentType"), body.get("tags"),
                                  attrs.get("enabled", True))
        self.send_json(200, self.state.bundle(name, v))

    def get_secret(self, principal, name, version):
        self.authorize(principal, "get", name)
        with self.state.lock:
            versions = list(self.state.secrets.get(name, []))
        if not versions:
            raise not_found(name)
        if version:
            match = [v for v in versions if v["version"] == version]
            if not match:
                raise KvError(404, "SecretNotFound",
                              "A secret with (name/id) %s/%s was not found in this key vault. If "
                              "you recently deleted this secret you may be able to recover it "
                              "using the correct recovery command. For help resolving this issue, "
                              "please see https://go.microsoft.com/fwlink/?linkid=2125182"
                              % (name, version))
            v = match[0]
        else:
            v = versions[-1]
        if not v["enabled"]:
            raise KvError(403, "Forbidden", "Operation get is not allowed on a disabled secret.",
                          inner="SecretDisabled")
        self.send_json(200, self.state.bundle(name, v))

    def list_secrets(self, principal, query):
        self.authorize(principal, "list")
        with self.state.lock:
            items = [self.state.item(n, vs[-1], False) for n, vs in sorted(self.state.secrets.items())]
        self.send_json(200, self.page(items, query, "/secrets"))

    def list_versions(self, principal, name, query):
        self.authorize(principal, "list", name)
        with self.state.lock:
            versions = list(self.state.secrets.get(name, []))
        if not versions:
            raise not_found(name)
        items = [self.state.item(name, v, True) for v in versions]
        self.send_json(200, self.page(items, query, "/secrets/%s/versions" % name))

    def delete_secret(self, principal, name):
        self.authorize(principal, "delete", name)
        now = int(self.state.now())
        with self.state.lock:
            versions = self.state.secrets.pop(name, None)
            if versions is None:
                raise not_found(name)
            d = {"versions": versions, "deleted": now, "purge": now + RECOVERABLE_DAYS * 86400}
            self.state.deleted[name] = d
        self.send_json(200, self.state.deleted_bundle(name, d))

    def list_deleted(self, principal, query):
        self.authorize(principal, "list")
        with self.state.lock:
            items = [self.state.deleted_bundle(n, d, item=True) for n, d in sorted(self.state.deleted.items())]
        self.send_json(200, self.page(items, query, "/deletedsecrets"))

    def get_deleted(self, principal, name):
        self.authorize(principal, "list", name)
        with self.state.lock:
            d = self.state.deleted.get(name)
        if d is None:
            raise deleted_not_found(name)
        self.send_json(200, self.state.deleted_bundle(name, d))

    def recover(self, principal, name):
        self.authorize(principal, "recover", name)
        with self.state.lock:
            d = self.state.deleted.pop(name, None)
            if d is None:
                raise deleted_not_found(name)
            self.state.secrets[name] = d["versions"]
        self.send_json(200, self.state.bundle(name, d["versions"][-1], with_value=False))

    def purge(self, principal, name):
        self.authorize(principal, "purge", name)
        with self.state.lock:
            if self.state.deleted.pop(name, None) is None:
                raise deleted_not_found(name)
        self.send_json(204, None)

    # -- Entra ID

    def entra(self, path, query):
        parts = path.strip("/").split("/")
        if len(parts) < 2:
            raise KvError(404, "NotFound", "Not found: %s" % path)
        tenant = parts[0]
        rest = "/".join(parts[1:])
        if rest == "v2.0/.well-known/openid-configuration" and self.command == "GET":
            self.known_tenant(tenant)
            base = "%s/%s" % (self.state.base_url, tenant)
            return self.send_json(200, {
                "token_endpoint": base + "/oauth2/v2.0/token",
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post", "private_key_jwt", "client_secret_basic"],
                "jwks_uri": base + "/discovery/v2.0/keys",
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "issuer": base + "/v2.0",
                "request_uri_parameter_supported": False,
                "authorization_endpoint": base + "/oauth2/v2.0/authorize",
                "device_authorization_endpoint": base + "/oauth2/v2.0/devicecode",
                "end_session_endpoint": base + "/oauth2/v2.0/logout",
                "tenant_region_scope": "EU",
                "cloud_instance_name": "microsoftonline.com",
            })
        if rest == "discovery/v2.0/keys" and self.command == "GET":
            self.known_tenant(tenant)
            return self.send_json(200, self.state.token_signer.jwks())
        if rest == "oauth2/v2.0/token" and self.command == "POST":
            return self.token(tenant)
        raise KvError(404, "NotFound", "Not found: %s" % path)

    def known_tenant(self, tenant):
        if tenant not in self.state.tenants:
            raise EntraError(400, "invalid_request", 90002,
                             "Tenant '%s' not found. Check to make sure you have the correct "
                             "tenant ID and are signing in to the correct cloud. Check with your "
                             "subscription administrator, this may happen if there are no active "
                             "subscriptions for the tenant." % tenant)

    def token(self, tenant):
        form = dict(urllib.parse.parse_qsl(self.body.decode(), keep_blank_values=True))
        client_id = form.get("client_id", "")
        grant = form.get("grant_type", "")
        self.caller = client_id or None
        kind = "client_secret" if "client_secret" in form else (
            "client_assertion" if "client_assertion" in form else "none")
        self.note = {"grant_type": grant, "client_id": client_id, "scope": form.get("scope"),
                     "credential": kind}
        self.known_tenant(tenant)
        if self.fault("entra", "/" + tenant):
            return
        if grant != "client_credentials":
            raise EntraError(400, "unsupported_grant_type", 70003,
                             "The app requested an unsupported grant type '%s'." % grant)
        scope = form.get("scope", "")
        if not scope:
            raise EntraError(400, "invalid_request", 900144,
                             "The request body must contain the following parameter: 'scope'.")
        if not scope.endswith("/.default"):
            raise EntraError(400, "invalid_scope", 1002012,
                             "The provided value for scope %s is not valid. Client credential "
                             "flows must have a scope value with /.default suffixed to the "
                             "resource identifier (application ID URI)." % scope)
        resource = scope[: -len("/.default")]
        if resource.rstrip("/") != VAULT_RESOURCE:
            raise EntraError(400, "invalid_resource", 500011,
                             "The resource principal named %s was not found in the tenant named "
                             "%s. This can happen if the application has not been installed by "
                             "the administrator of the tenant or consented to by any user in the "
                             "tenant. You might have sent your authentication request to the "
                             "wrong tenant." % (resource, tenant))
        principal = self.state.principals.get(client_id)
        if principal is None or principal.tenant != tenant or principal.kind != "app":
            raise EntraError(400, "unauthorized_client", 700016,
                             "Application with identifier '%s' was not found in the directory "
                             "'%s'. This can happen if the application has not been installed by "
                             "the administrator of the tenant or consented to by any user in the "
                             "tenant. You may have sent your authentication request to the wrong "
                             "tenant." % (client_id, tenant))
        if kind == "client_secret":
            if principal.secret is None or not pysecrets.compare_digest(
                    principal.secret.encode(), form["client_secret"].encode()):
                raise EntraError(401, "invalid_client", 7000215,
                                 "Invalid client secret provided. Ensure the secret being sent in "
                                 "the request is the client secret value, not the client secret "
                                 "ID, for a secret added to app '%s'." % client_id)
        elif kind == "client_assertion":
            self.check_assertion(principal, form)
        else:
            raise EntraError(401, "invalid_client", 7000218,
                             "The request body must contain the following parameter: "
                             "'client_assertion' or 'client_secret'.")
        token, lifetime = self.state.issue_token(principal, VAULT_RESOURCE)
        self.send_json(200, {"token_type": "Bearer", "expires_in": lifetime,
                             "ext_expires_in": lifetime, "access_token": token})

    def check_assertion(self, principal, form):
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise EntraError(400, "invalid_request", 50027,
                             "client_assertion_type must be '%s'." % ASSERTION_TYPE)
        parsed = parse_jwt(form["client_assertion"])
        if parsed is None:
            raise EntraError(400, "invalid_client", 50027,
                             "JWT token is invalid or malformed.")
        header, claims, signing_input, signature = parsed
        iss, sub = claims.get("iss"), claims.get("sub")
        aud = claims.get("aud")
        auds = aud if isinstance(aud, list) else [aud]
        now = self.state.now()
        exp, nbf = claims.get("exp"), claims.get("nbf", claims.get("iat", 0))
        if not isinstance(exp, (int, float)) or exp <= now or (isinstance(nbf, (int, float)) and nbf > now + 300):
            raise EntraError(400, "invalid_client", 700024,
                             "Client assertion is not within its valid time range. Current time: "
                             "%s, assertion valid from %s, expiry time of assertion %s."
                             % (iso(now), iso(nbf), iso(exp)))
        by_issuer = [f for f in principal.federated if f["issuer"] == iss]
        if not by_issuer:
            raise EntraError(400, "invalid_client", 700211,
                             "No matching federated identity record found for presented "
                             "assertion issuer '%s'. Please check your federated identity "
                             "credential Subject, Audience and Issuer against the presented "
                             "assertion." % iss)
        match = [f for f in by_issuer if f["subject"] == sub
                 and any(a in f.get("audiences", [TOKEN_EXCHANGE_AUDIENCE]) for a in auds)]
        if not match:
            raise EntraError(400, "invalid_client", 700213,
                             "No matching federated identity record found for presented "
                             "assertion subject '%s'. Please note that the matching is done "
                             "using a case-sensitive comparison. Check your federated identity "
                             "credential Subject, Audience and Issuer against the presented "
                             "assertion." % sub)
        keys = match[0].get("keys")
        if keys is not None and not signature_ok(keys, header, signing_input, signature):
            raise EntraError(401, "invalid_client", 5002738,
                             "Invalid JWT token. The token signature could not be verified "
                             "with the issuer's signing keys (issuer '%s')." % iss)

    # -- IMDS

    def imds(self, path, query):
        if path != "/metadata/identity/oauth2/token" or self.command != "GET":
            self.send_json(404, {"error": "not_found", "error_description": "Not found"})
            return
        if self.headers.get("Metadata", "").lower() != "true":
            self.send_json(400, {"error": "invalid_request",
                                 "error_description": "Required metadata header not specified"})
            return
        if query.get("api-version") is None:
            self.send_json(400, {"error": "invalid_request",
                                 "error_description": "Required query variable 'api-version' is missing"})
            return
        if self.fault("imds", path):
            return
        resource = query.get("resource", "")
        if resource.rstrip("/") != VAULT_RESOURCE:
            self.send_json(400, {"error": "invalid_resource",
                                 "error_description": "AADSTS500011: The resource principal named "
                                 "%s was not found in the tenant." % resource})
            return
        mi = self.state.managed_identity
        wanted = query.get("client_id")
        if mi is None or (wanted and wanted != mi):
            self.send_json(400, {"error": "invalid_request", "error_description": "Identity not found"})
            return
        principal = self.state.principals[mi]
        self.caller = mi
        token, lifetime = self.state.issue_token(principal, VAULT_RESOURCE, 86399)
        now = int(self.state.now())
        self.send_json(200, {"access_token": token, "client_id": mi,
                             "expires_in": str(lifetime), "expires_on": str(now + lifetime),
                             "ext_expires_in": str(lifetime), "not_before": str(now),
                             "resource": resource, "token_type": "Bearer"})

    # -- fake-only

    def fake(self, path, query):
        body = json.loads(self.body) if self.body else {}
        if path == "/fake/health" and self.command == "GET":
            return self.send_json(200, {"fake": "fake-azure-keyvault"})
        if path == "/fake/requests" and self.command == "GET":
            with self.state.lock:
                return self.send_json(200, {"requests": list(self.state.requests)})
        if path == "/fake/requests" and self.command == "DELETE":
            with self.state.lock:
                self.state.requests.clear()
            return self.send_json(204, None)
        if path == "/fake/faults" and self.command == "POST":
            target = body.get("target", "keyvault")
            if target not in ("keyvault", "entra", "imds", "foreign_next_link"):
                raise KvError(400, "BadParameter", "unknown fault target %s" % target)
            fault = {"target": target, "status": int(body.get("status", 503)),
                     "count": int(body.get("count", 1)), "retry_after": body.get("retry_after"),
                     "retry_after_seconds": int(body.get("retry_after_seconds", 2)),
                     "path_prefix": body.get("path_prefix", ""), "host": body.get("host")}
            with self.state.lock:
                self.state.faults.append(fault)
            return self.send_json(200, {"ok": True})
        if path == "/fake/faults" and self.command == "DELETE":
            with self.state.lock:
                self.state.faults.clear()
            return self.send_json(204, None)
        if path == "/fake/federated-token" and self.command == "POST":
            now = int(self.state.now())
            claims = {"iss": body.get("issuer", self.state.issuer_url),
                      "sub": body["subject"],
                      "aud": body.get("audiences", [TOKEN_EXCHANGE_AUDIENCE]),
                      "iat": now, "nbf": now, "exp": now + int(body.get("expires_in", 3600))}
            return self.send_json(200, {"token": self.state.issuer_signer.sign(claims)})
        if path == "/fake/clock" and self.command == "POST":
            with self.state.lock:
                self.state.clock_offset += int(body.get("advance_seconds", 0))
            return self.send_json(200, {"offset": self.state.clock_offset})
        if path == "/fake/roles" and self.command == "POST":
            p = self.state.principals.get(body["client_id"])
            if p is None:
                raise KvError(404, "NotFound", "no such principal")
            p.roles = list(body["roles"])
            return self.send_json(200, {"ok": True})
        raise KvError(404, "NotFound", "no fake endpoint %s %s" % (self.command, path))


def iso(ts):
    try:
        return datetime.datetime.fromtimestamp(float(ts), datetime.timezone.utc).strftime(
            "%m/%d/%Y %H:%M:%S")
    except (TypeError, ValueError, OverflowError):
        return str(ts)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, tls, state, log, kind):
        self.tls = tls
        self.state = state
        self.log_file = log
        self.log_lock = threading.Lock()
        self.kind = kind
        super().__init__(address, Handler)

    def get_request(self):
        sock, addr = self.socket.accept()
        if self.tls is None:
            return sock, addr
        return self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def handle_error(self, request, client_address):
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


def federated_keys(fc, state, seed_dir):
    """The public keys a federated credential's assertions are verified with, or None."""
    if fc.get("verify") == "fake-issuer":
        return [state.issuer_signer.key.public_key()]
    if fc.get("public_key_file"):
        with open(os.path.join(seed_dir, fc["public_key_file"]), "rb") as f:
            return [serialization.load_pem_public_key(f.read())]
    if fc.get("jwks_file"):
        with open(os.path.join(seed_dir, fc["jwks_file"])) as f:
            return public_keys_from_jwks(json.load(f))
    if fc.get("jwks"):
        return public_keys_from_jwks(fc["jwks"])
    return None


def apply_seed(state, seed, seed_dir):
    state.tenants = set(seed.get("tenants", []))
    state.vault_tenant = seed.get("vault_tenant") or (sorted(state.tenants)[0] if state.tenants else None)
    for c in seed.get("clients", []):
        fed = []
        for fc in c.get("federated_credentials", []):
            issuer = fc.get("issuer", "fake-issuer")
            fed.append({"name": fc.get("name"),
                        "issuer": state.issuer_url if issuer == "fake-issuer" else issuer,
                        "subject": fc["subject"],
                        "audiences": fc.get("audiences", [TOKEN_EXCHANGE_AUDIENCE]),
                        "keys": federated_keys(fc, state, seed_dir)})
        state.principals[c["client_id"]] = Principal(
            "app", c["tenant"], c["client_id"], c.get("roles", []), c.get("client_secret"), fed)
    mi = seed.get("managed_identity")
    if mi:
        state.principals[mi["client_id"]] = Principal(
            "managed_identity", mi["tenant"], mi["client_id"], mi.get("roles", []))
        state.managed_identity = mi["client_id"]
    for s in seed.get("secrets", []):
        for value in s.get("versions", [s.get("value")]):
            state.set_secret(s["name"], value, s.get("content_type"), s.get("tags"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", required=True, help="where certificates and server.json go")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--imds-port", type=int, default=0)
    parser.add_argument("--seed", help="a JSON seed document (README.md)")
    args = parser.parse_args()

    os.makedirs(args.dir, exist_ok=True)
    ca_key, ca_cert = make_ca("fake-azure-keyvault-ca")
    server_key, server_cert = make_server_cert(ca_key, ca_cert, args.host)
    ca_file = os.path.join(args.dir, "ca.crt")
    chain = os.path.join(args.dir, "server.pem")
    key_file = os.path.join(args.dir, "server.key")
    write(ca_file, pem_cert(ca_cert))
    write(chain, pem_cert(server_cert))
    write(key_file, pem_key(server_key), 0o600)

    state = State(RsaSigner(), RsaSigner())
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.minimum_version = ssl.TLSVersion.TLSv1_2
    tls.load_cert_chain(chain, key_file)
    log = open(os.path.join(args.dir, "fake-azure-keyvault.log"), "a")
    server = Server((args.host, args.port), tls, state, log, "keyvault")
    imds = Server((args.host, args.imds_port), None, state, log, "imds")
    host, port = server.server_address[:2]
    url = "https://%s:%d" % (host, port)
    imds_url = "http://%s:%d" % imds.server_address[:2]
    state.base_url = url
    state.issuer_url = url + "/fake-oidc-issuer"
    issuer_pub = os.path.join(args.dir, "oidc-issuer.pub")
    write(issuer_pub, state.issuer_signer.public_pem)
    if args.seed:
        with open(args.seed) as f:
            apply_seed(state, json.load(f), os.path.dirname(os.path.abspath(args.seed)))
    info = {"url": url, "vault_url": url + "/", "authority": url, "imds_url": imds_url,
            "ca_file": ca_file, "oidc_issuer": state.issuer_url,
            "oidc_issuer_public_key_file": issuer_pub, "vault_tenant": state.vault_tenant,
            "resource": VAULT_RESOURCE, "pid": os.getpid()}
    write(os.path.join(args.dir, "server.json"), json.dumps(info, indent=2))
    threading.Thread(target=imds.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
    print("fake-azure-keyvault ready %s" % url, flush=True)
    server.log("listening on %s (imds %s)" % (url, imds_url))
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
