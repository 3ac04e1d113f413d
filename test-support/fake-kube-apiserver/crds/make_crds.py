#!/usr/bin/env python3
"""Writes the CRDs of crds/ for the FAKE Kubernetes API server's tests: External Secrets
Operator (external-secrets.io v1 and v1beta1) and Vault Secrets Operator
(secrets.hashicorp.com/v1beta1).

Written for Tresor from the documented API fields of those projects (their Go API types and
reference documentation, read for the field names, types, enums and defaults; no file of
theirs is copied). They cover what `tresor sync` reads (issue 15 §2) and a bit around it:

- ESO, following `apis/externalsecrets/v1/externalsecret_types.go` and
  `secretstore_vault_types.go` of external-secrets/external-secrets (2025): ExternalSecret
  (secretStoreRef, target with creationPolicy/deletionPolicy/template/immutable,
  refreshInterval, refreshPolicy, data[].secretKey/remoteRef/sourceRef, dataFrom[].extract/
  find/rewrite/sourceRef), SecretStore and ClusterSecretStore with the `vault` provider only
  (server, path, version, namespace, caBundle, caProvider, tls, headers, readYourWrites,
  forwardInconsistent, checkAndSet; auth: tokenSecretRef, kubernetes, appRole, jwt, ldap,
  userPass, cert). Other providers (aws, gcpsm, …) and the iam/gcp Vault auth methods are
  not modelled: a store using them is refused as an unknown field. v1beta1 is the same
  schema, except that template.engineVersion also allows v1 (as ESO's v1beta1 does) and
  there is no refreshPolicy.
- VSO, following `api/v1beta1/{common,vaultconnection,vaultauth,vaultstaticsecret,
  vaultdynamicsecret}_types.go` of hashicorp/vault-secrets-operator: VaultConnection,
  VaultAuth (kubernetes, jwt, appRole, aws), VaultStaticSecret, VaultDynamicSecret, with
  destination (name, create, overwrite, labels, annotations, type, transformation) and
  rolloutRestartTargets.

CEL rules (x-kubernetes-validations) are not written; defaults and enums are.

Usage: `make_crds.py` (rewrites external-secrets.io.yaml and secrets.hashicorp.com.yaml next
to it).
"""

import copy
import os

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))

DNS_NAME = {"type": "string", "minLength": 1, "maxLength": 253,
            "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"}
KEY = {"type": "string", "minLength": 1, "maxLength": 253, "pattern": r"^[-._a-zA-Z0-9]+$"}
STR = {"type": "string"}
BOOL = {"type": "boolean"}
STR_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
STR_LIST = {"type": "array", "items": {"type": "string"}}
TIME = {"type": "string", "format": "date-time"}


def obj(properties, required=None, **extra):
    out = {"type": "object", "properties": properties}
    if required:
        out["required"] = required
    out.update(extra)
    return out


def enum(*values, default=None):
    out = {"type": "string", "enum": list(values)}
    if default is not None:
        out["default"] = default
    return out


def conditions(types=None):
    """A list of status conditions (type, status, reason, message, lastTransitionTime)."""
    return {"type": "array", "items": obj({
        "type": STR, "status": STR, "reason": STR, "message": STR, "lastTransitionTime": TIME,
        "observedGeneration": {"type": "integer", "format": "int64"},
    }, ["type", "status"])}


def crd(group, kind, plural, versions, scope="Namespaced", short_names=None, categories=None,
        singular=None):
    names = {"kind": kind, "listKind": kind + "List", "plural": plural,
             "singular": singular or kind.lower()}
    if short_names:
        names["shortNames"] = short_names
    if categories:
        names["categories"] = categories
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "%s.%s" % (plural, group)},
        "spec": {"group": group, "names": names, "scope": scope, "versions": versions},
    }


def version(name, spec, status, storage, served=True, deprecated=False):
    v = {"name": name, "served": served, "storage": storage,
         "subresources": {"status": {}},
         "schema": {"openAPIV3Schema": obj({
             "apiVersion": STR, "kind": STR, "metadata": {"type": "object"},
             "spec": spec, "status": status})}}
    if deprecated:
        v["deprecated"] = True
    return v


# ---------------------------------------------------------------------------------------------
# External Secrets Operator

SECRET_KEY_SELECTOR = obj({"name": DNS_NAME, "key": KEY, "namespace": DNS_NAME})
SERVICE_ACCOUNT_SELECTOR = obj({"name": DNS_NAME, "namespace": DNS_NAME, "audiences": STR_LIST}, ["name"])
STORE_REF = obj({"name": DNS_NAME, "kind": enum("SecretStore", "ClusterSecretStore")})
GENERATOR_REF = obj({
    "apiVersion": dict(STR, default="generators.external-secrets.io/v1alpha1"),
    "kind": STR, "name": DNS_NAME}, ["kind", "name"])


def remote_ref():
    return obj({
        "key": STR,
        "property": STR,
        "version": STR,
        "metadataPolicy": enum("None", "Fetch", default="None"),
        "conversionStrategy": enum("Default", "Unicode", default="Default"),
        "decodingStrategy": enum("Auto", "Base64", "Base64URL", "None", default="None"),
    }, ["key"])


def external_secret_spec(v1):
    template_ref = obj({"name": DNS_NAME, "items": {"type": "array", "items": obj({
        "key": KEY, "templateAs": enum("Values", "KeysAndValues", default="Values")}, ["key"])}},
        ["name", "items"])
    template = obj({
        "type": STR,
        "engineVersion": enum("v2", default="v2") if v1 else enum("v1", "v2", default="v2"),
        "metadata": obj({"annotations": STR_MAP, "labels": STR_MAP}),
        "mergePolicy": enum("Replace", "Merge", default="Replace"),
        "data": STR_MAP,
        "templateFrom": {"type": "array", "items": obj({
            "configMap": template_ref, "secret": template_ref,
            "target": enum("Data", "Annotations", "Labels", default="Data"),
            "literal": STR})},
    })
    find = obj({
        "path": STR,
        "name": obj({"regexp": STR}),
        "tags": STR_MAP,
        "conversionStrategy": enum("Default", "Unicode", default="Default"),
        "decodingStrategy": enum("Auto", "Base64", "Base64URL", "None", default="None"),
    })
    rewrite = obj({
        "merge": obj({"into": dict(STR, default=""), "priority": STR_LIST,
                      "conflictPolicy": enum("Ignore", "Error", default="Error"),
                      "strategy": enum("Extract", "JSON", default="Extract")}),
        "regexp": obj({"source": STR, "target": STR}, ["source", "target"]),
        "transform": obj({"template": STR}, ["template"]),
    }, minProperties=1, maxProperties=1)
    spec = obj({
        "secretStoreRef": STORE_REF,
        "target": obj({
            "name": DNS_NAME,
            "creationPolicy": enum("Owner", "Orphan", "Merge", "None", default="Owner"),
            "deletionPolicy": enum("Delete", "Merge", "Retain", default="Retain"),
            "template": template,
            "immutable": BOOL,
        }, default={"creationPolicy": "Owner", "deletionPolicy": "Retain"}),
        "refreshInterval": dict(STR, default="1h"),
        "data": {"type": "array", "items": obj({
            "secretKey": KEY,
            "remoteRef": remote_ref(),
            "sourceRef": obj({"storeRef": STORE_REF, "generatorRef": GENERATOR_REF},
                             minProperties=1, maxProperties=1),
        }, ["secretKey", "remoteRef"])},
        "dataFrom": {"type": "array", "items": obj({
            "extract": remote_ref(),
            "find": find,
            "rewrite": {"type": "array", "items": rewrite},
            "sourceRef": obj({"storeRef": STORE_REF, "generatorRef": GENERATOR_REF},
                             minProperties=1, maxProperties=1),
        })},
    })
    if v1:
        spec["properties"]["refreshPolicy"] = enum("CreatedOnce", "Periodic", "OnChange")
    return spec


EXTERNAL_SECRET_STATUS = obj({
    "refreshTime": dict(TIME, nullable=True),
    "syncedResourceVersion": STR,
    "conditions": conditions(),
    "binding": obj({"name": STR}),
})

VAULT_PROVIDER = obj({
    "server": STR,
    "path": STR,
    "version": enum("v1", "v2", default="v2"),
    "namespace": STR,
    "caBundle": {"type": "string", "format": "byte"},
    "caProvider": obj({"type": enum("Secret", "ConfigMap"), "name": DNS_NAME, "key": KEY,
                       "namespace": DNS_NAME}, ["type", "name"]),
    "tls": obj({"certSecretRef": SECRET_KEY_SELECTOR, "keySecretRef": SECRET_KEY_SELECTOR}),
    "readYourWrites": BOOL,
    "forwardInconsistent": BOOL,
    "headers": STR_MAP,
    "checkAndSet": obj({"required": BOOL}),
    "auth": obj({
        "namespace": STR,
        "tokenSecretRef": SECRET_KEY_SELECTOR,
        "kubernetes": obj({
            "mountPath": dict(STR, default="kubernetes"),
            "serviceAccountRef": SERVICE_ACCOUNT_SELECTOR,
            "secretRef": SECRET_KEY_SELECTOR,
            "role": STR,
        }, ["mountPath", "role"]),
        "appRole": obj({"path": dict(STR, default="approle"), "roleId": STR,
                        "roleRef": SECRET_KEY_SELECTOR, "secretRef": SECRET_KEY_SELECTOR},
                       ["path", "secretRef"]),
        "jwt": obj({"path": dict(STR, default="jwt"), "role": STR, "secretRef": SECRET_KEY_SELECTOR,
                    "kubernetesServiceAccountToken": obj({
                        "serviceAccountRef": SERVICE_ACCOUNT_SELECTOR, "audiences": STR_LIST,
                        "expirationSeconds": {"type": "integer", "format": "int64"}},
                        ["serviceAccountRef"])}, ["path"]),
        "ldap": obj({"path": dict(STR, default="ldap"), "username": STR, "secretRef": SECRET_KEY_SELECTOR},
                    ["path", "username"]),
        "userPass": obj({"path": dict(STR, default="userpass"), "username": STR,
                         "secretRef": SECRET_KEY_SELECTOR}, ["path", "username"]),
        "cert": obj({"path": dict(STR, default="cert"), "clientCert": SECRET_KEY_SELECTOR,
                     "secretRef": SECRET_KEY_SELECTOR}),
    }),
}, ["server"])


def secret_store_spec(cluster):
    spec = obj({
        "controller": STR,
        "provider": obj({"vault": VAULT_PROVIDER}, minProperties=1, maxProperties=1),
        "retrySettings": obj({"maxRetries": {"type": "integer", "format": "int32"}, "retryInterval": STR}),
        "refreshInterval": {"type": "integer"},
    }, ["provider"])
    if cluster:
        spec["properties"]["conditions"] = {"type": "array", "items": obj({
            "namespaceSelector": obj({
                "matchLabels": STR_MAP,
                "matchExpressions": {"type": "array", "items": obj({
                    "key": STR, "operator": STR, "values": STR_LIST}, ["key", "operator"])},
            }),
            "namespaces": STR_LIST,
            "namespaceRegexes": STR_LIST,
        })}
    return spec


SECRET_STORE_STATUS = obj({
    "conditions": conditions(),
    "capabilities": enum("ReadOnly", "WriteOnly", "ReadWrite"),
})


def eso():
    out = []
    for kind, plural, short, spec_fn, status, scope in (
        ("ExternalSecret", "externalsecrets", ["es"], external_secret_spec, EXTERNAL_SECRET_STATUS, "Namespaced"),
        ("SecretStore", "secretstores", ["ss"], lambda v1: secret_store_spec(False), SECRET_STORE_STATUS, "Namespaced"),
        ("ClusterSecretStore", "clustersecretstores", ["css"], lambda v1: secret_store_spec(True), SECRET_STORE_STATUS, "Cluster"),
    ):
        out.append(crd("external-secrets.io", kind, plural, [
            version("v1", spec_fn(True), copy.deepcopy(status), storage=True),
            version("v1beta1", spec_fn(False), copy.deepcopy(status), storage=False, deprecated=True),
        ], scope=scope, short_names=short, categories=["external-secrets"]))
    return out


# ---------------------------------------------------------------------------------------------
# Vault Secrets Operator

DURATION = {"type": "string", "pattern": r"^([0-9]+(\.[0-9]+)?(s|m|h))$"}
ROLLOUT_TARGETS = {"type": "array", "items": obj({
    "kind": enum("Deployment", "DaemonSet", "StatefulSet"), "name": STR}, ["kind", "name"])}
DESTINATION = obj({
    "name": STR,
    "create": dict(BOOL, default=False),
    "overwrite": dict(BOOL, default=False),
    "labels": STR_MAP,
    "annotations": STR_MAP,
    "type": STR,
    "transformation": obj({
        "templates": {"type": "object", "additionalProperties": obj({"name": STR, "text": STR}, ["text"])},
        "transformationRefs": {"type": "array", "items": obj({
            "namespace": STR, "name": STR,
            "templateRefs": {"type": "array", "items": obj({"name": STR, "keyOverride": STR}, ["name"])},
            "ignoreIncludes": BOOL, "ignoreExcludes": BOOL}, ["name"])},
        "includes": STR_LIST,
        "excludes": STR_LIST,
        "resync": dict(BOOL, default=True),
    }),
}, ["name"])
SYNC_CONFIG = obj({"instantUpdates": BOOL})


def vso():
    g = "secrets.hashicorp.com"
    connection = crd(g, "VaultConnection", "vaultconnections", [version("v1beta1", obj({
        "address": STR,
        "headers": STR_MAP,
        "tlsServerName": STR,
        "caCertSecretRef": STR,
        "skipTLSVerify": dict(BOOL, default=False),
        "timeout": DURATION,
    }, ["address"]), obj({"valid": dict(BOOL, nullable=True), "conditions": conditions()}), storage=True)])
    token_expiration = {"type": "integer", "format": "int64", "default": 600, "minimum": 600}
    auth = crd(g, "VaultAuth", "vaultauths", [version("v1beta1", obj({
        "vaultConnectionRef": STR,
        "namespace": STR,
        "allowedNamespaces": STR_LIST,
        "method": enum("kubernetes", "jwt", "appRole", "aws"),
        "mount": STR,
        "params": STR_MAP,
        "headers": STR_MAP,
        "kubernetes": obj({"role": STR, "serviceAccount": STR, "audiences": STR_LIST,
                           "tokenExpirationSeconds": token_expiration}, ["role", "serviceAccount"]),
        "jwt": obj({"role": STR, "secretRef": STR, "serviceAccount": STR, "audiences": STR_LIST,
                    "tokenExpirationSeconds": token_expiration}, ["role"]),
        "appRole": obj({"roleId": STR, "secretRef": STR}, ["roleId", "secretRef"]),
        "aws": obj({"role": STR, "region": STR, "headerValue": STR, "sessionName": STR,
                    "stsEndpoint": STR, "iamEndpoint": STR, "secretRef": STR,
                    "irsaServiceAccount": STR}, ["role"]),
        "storageEncryption": obj({"mount": STR, "keyName": STR}, ["mount", "keyName"]),
    }, ["method", "mount"]), obj({"valid": BOOL, "error": STR}), storage=True)])
    static = crd(g, "VaultStaticSecret", "vaultstaticsecrets", [version("v1beta1", obj({
        "vaultAuthRef": STR,
        "namespace": STR,
        "mount": STR,
        "path": STR,
        "version": {"type": "integer", "minimum": 0},
        "type": enum("kv-v1", "kv-v2"),
        "refreshAfter": DURATION,
        "hmacSecretData": dict(BOOL, default=True),
        "rolloutRestartTargets": ROLLOUT_TARGETS,
        "destination": DESTINATION,
        "syncConfig": SYNC_CONFIG,
    }, ["mount", "path", "type", "destination"]), obj({
        "lastGeneration": {"type": "integer", "format": "int64"},
        "secretMAC": STR,
        "conditions": conditions(),
    }, ["lastGeneration"]), storage=True)])
    dynamic = crd(g, "VaultDynamicSecret", "vaultdynamicsecrets", [version("v1beta1", obj({
        "vaultAuthRef": STR,
        "namespace": STR,
        "mount": STR,
        "requestHTTPMethod": enum("GET", "POST", "PUT"),
        "path": STR,
        "params": STR_MAP,
        "renewalPercent": {"type": "integer", "default": 67, "minimum": 0, "maximum": 90},
        "revoke": BOOL,
        "allowStaticCreds": BOOL,
        "rolloutRestartTargets": ROLLOUT_TARGETS,
        "destination": DESTINATION,
    }, ["mount", "path", "destination"]), obj({
        "lastRenewalTime": {"type": "integer", "format": "int64"},
        "lastGeneration": {"type": "integer", "format": "int64"},
        "secretLease": obj({"id": STR, "duration": {"type": "integer"}, "renewable": BOOL,
                            "requestID": STR}, ["id", "duration", "renewable", "requestID"]),
        "staticCredsMetaData": obj({"lastVaultRotation": {"type": "integer", "format": "int64"},
                                    "rotationPeriod": {"type": "integer", "format": "int64"},
                                    "ttl": {"type": "integer", "format": "int64"}},
                                   ["lastVaultRotation", "rotationPeriod", "ttl"]),
        "lastRuntimePodUID": STR,
        "secretMAC": STR,
    }, ["lastRenewalTime", "lastGeneration", "secretLease"]), storage=True)])
    return [connection, auth, static, dynamic]


HEADER = """# GENERATED by make_crds.py — edit that, then run it. Written for Tresor's tests (the FAKE
# Kubernetes API server validates custom resources against these schemas).
#
# Provenance: %s
# Not the upstream CRD files: a schema of the documented API fields (names, types, enums,
# defaults, required) that `tresor sync` reads; see make_crds.py and ../README.md.
"""


def dump(path, provenance, docs):
    class Dumper(yaml.SafeDumper):
        def ignore_aliases(self, data):
            return True

    with open(path, "w") as f:
        f.write(HEADER % provenance)
        for doc in docs:
            f.write("---\n")
            f.write(yaml.dump(doc, Dumper=Dumper, sort_keys=False, default_flow_style=False, width=100))


def main():
    dump(os.path.join(HERE, "external-secrets.io.yaml"),
         "External Secrets Operator's API (external-secrets.io v1, v1beta1),\n# following "
         "apis/externalsecrets/v1/{externalsecret,secretstore,secretstore_vault}_types.go of\n"
         "# github.com/external-secrets/external-secrets (2025).", eso())
    dump(os.path.join(HERE, "secrets.hashicorp.com.yaml"),
         "Vault Secrets Operator's API (secrets.hashicorp.com/v1beta1), following\n"
         "# api/v1beta1/{common,vaultconnection,vaultauth,vaultstaticsecret,vaultdynamicsecret}_types.go\n"
         "# of github.com/hashicorp/vault-secrets-operator.", vso())


if __name__ == "__main__":
    main()
