"""Pure helpers of the FAKE Kubernetes API server (fake_kube_apiserver.py): patch formats,
label and field selectors, CRD schema handling, and the little protobuf kubectl sends.

Written from the Kubernetes API conventions and the RFCs (7386 JSON merge patch, 6902 JSON
patch), not from Kubernetes' code. Every function here is deterministic and side-effect free.
"""

import copy
import re

# ---------------------------------------------------------------------------------------------
# Errors


class PatchError(Exception):
    """A patch that cannot be applied (the caller answers 422 or 400)."""


class SelectorError(Exception):
    """A selector that cannot be parsed (the caller answers 400)."""


# ---------------------------------------------------------------------------------------------
# JSON merge patch (RFC 7386)


def merge_patch(target, patch):
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# ---------------------------------------------------------------------------------------------
# Strategic merge patch (the built-in types' common cases)

# patchMergeKey of the list fields of the built-in types this fake serves (k8s.io/api's
# `patchStrategy:"merge" patchMergeKey:"..."` tags). Lists not named here are replaced whole.
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "ports": "containerPort",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "volumes": "name",
    "imagePullSecrets": "name",
    "ownerReferences": "uid",
    "conditions": "type",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name",
}
# Lists of scalars with patchStrategy merge: the patch's items are added (a set union).
MERGE_SCALAR_LISTS = {"finalizers"}


def strategic_merge_patch(target, patch):
    """A strategic merge patch of a built-in object: maps merge, the lists in MERGE_KEYS merge
    by their key, `finalizers` is a set; directives `$patch` (replace/delete/merge),
    `$retainKeys`, `$setElementOrder/<list>` and `$deleteFromPrimitiveList/<list>` are honoured."""
    if not isinstance(patch, dict):
        raise PatchError("a strategic merge patch must be a JSON object")
    return _smp_map(target if isinstance(target, dict) else {}, patch)


def _smp_map(target, patch):
    directive = patch.get("$patch")
    if directive == "delete":
        return None
    body = {k: v for k, v in patch.items() if k != "$patch"}
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in body.items() if not k.startswith("$")}
    if directive not in (None, "merge"):
        raise PatchError("unknown patch directive %r" % directive)
    result = copy.deepcopy(target)
    orders = {}
    for key, value in body.items():
        if key == "$retainKeys":
            continue
        if key.startswith("$setElementOrder/"):
            orders[key.split("/", 1)[1]] = value
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            if isinstance(result.get(field), list):
                result[field] = [v for v in result[field] if v not in (value or [])]
            continue
        if key.startswith("$"):
            raise PatchError("unknown patch directive %r" % key)
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            merged = _smp_map(result.get(key) if isinstance(result.get(key), dict) else {}, value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list) and key in MERGE_KEYS and isinstance(result.get(key), list):
            result[key] = _smp_list(result[key], value, MERGE_KEYS[key])
        elif isinstance(value, list) and key in MERGE_SCALAR_LISTS and isinstance(result.get(key), list):
            result[key] = list(result[key]) + [v for v in value if v not in result[key]]
        elif isinstance(value, list):
            result[key] = [_strip_directives(v) for v in value]
        else:
            result[key] = copy.deepcopy(value)
    retain = body.get("$retainKeys")
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    for field, order in orders.items():
        items = result.get(field)
        if not isinstance(items, list) or not isinstance(order, list):
            continue
        merge_key = MERGE_KEYS.get(field)
        if merge_key:
            wanted = [o.get(merge_key) for o in order if isinstance(o, dict)]
            rank = {k: i for i, k in enumerate(wanted)}
            result[field] = sorted(items, key=lambda it: rank.get(it.get(merge_key) if isinstance(it, dict) else None, len(rank)))
        else:
            rank = {k: i for i, k in enumerate(order) if isinstance(k, (str, int))}
            result[field] = sorted(items, key=lambda it: rank.get(it, len(rank)) if isinstance(it, (str, int)) else len(rank))
    return result


def _smp_list(current, patch, merge_key):
    result = [copy.deepcopy(i) for i in current]
    for item in patch:
        if not isinstance(item, dict) or merge_key not in item:
            raise PatchError("map: %r does not contain declared merge key: %s" % (item, merge_key))
        index = next((i for i, c in enumerate(result) if isinstance(c, dict) and c.get(merge_key) == item[merge_key]), None)
        if item.get("$patch") == "delete":
            if index is not None:
                del result[index]
            continue
        if index is None:
            result.append(_strip_directives(item))
        else:
            merged = _smp_map(result[index], item)
            if merged is not None:
                result[index] = merged
    return result


def _strip_directives(value):
    if isinstance(value, dict):
        return {k: _strip_directives(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [_strip_directives(v) for v in value]
    return value


# ---------------------------------------------------------------------------------------------
# JSON patch (RFC 6902)


def _pointer(path):
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError("JSON pointer %r does not start with /" % path)
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc, parts):
    for p in parts:
        if isinstance(doc, dict):
            if p not in doc:
                raise PatchError("path element %r not found" % p)
            doc = doc[p]
        elif isinstance(doc, list):
            try:
                doc = doc[int(p)]
            except (ValueError, IndexError):
                raise PatchError("list index %r out of range" % p)
        else:
            raise PatchError("path element %r is not in a container" % p)
    return doc


def _add(doc, parts, value):
    if not parts:
        return value
    parent = _walk(doc, parts[:-1])
    last = parts[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-":
            parent.append(value)
        else:
            try:
                i = int(last)
            except ValueError:
                raise PatchError("list index %r is not a number" % last)
            if i < 0 or i > len(parent):
                raise PatchError("list index %d out of range" % i)
            parent.insert(i, value)
    else:
        raise PatchError("cannot add to a scalar")
    return doc


def _remove(doc, parts):
    if not parts:
        raise PatchError("cannot remove the whole document")
    parent = _walk(doc, parts[:-1])
    last = parts[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError("unable to remove nonexistent key: %s" % last)
        return parent.pop(last)
    if isinstance(parent, list):
        try:
            return parent.pop(int(last))
        except (ValueError, IndexError):
            raise PatchError("list index %r out of range" % last)
    raise PatchError("cannot remove from a scalar")


def json_patch(target, operations):
    if not isinstance(operations, list):
        raise PatchError("a JSON patch must be a list of operations")
    doc = copy.deepcopy(target)
    for op in operations:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise PatchError("each JSON patch operation needs op and path")
        kind, parts = op["op"], _pointer(op["path"])
        if kind == "add":
            doc = _add(doc, parts, copy.deepcopy(op.get("value")))
        elif kind == "remove":
            _remove(doc, parts)
        elif kind == "replace":
            _walk(doc, parts)
            if parts:
                _remove(doc, parts)
            doc = _add(doc, parts, copy.deepcopy(op.get("value")))
        elif kind in ("move", "copy"):
            source = _pointer(op.get("from", ""))
            value = copy.deepcopy(_walk(doc, source))
            if kind == "move":
                _remove(doc, source)
            doc = _add(doc, parts, value)
        elif kind == "test":
            if _walk(doc, parts) != op.get("value"):
                raise PatchError("testing value %s failed" % op["path"])
        else:
            raise PatchError("unexpected operation %r" % kind)
    return doc


# ---------------------------------------------------------------------------------------------
# Server-side apply (the subset this fake emulates)


def leaf_paths(obj, prefix=()):
    """The map paths an applied configuration sets: every key path down to a non-map value
    (lists count as one value)."""
    paths = set()
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, dict) and v:
                paths |= leaf_paths(v, prefix + (k,))
            else:
                paths.add(prefix + (k,))
    return paths


def remove_path(obj, path):
    node = obj
    for p in path[:-1]:
        node = node.get(p) if isinstance(node, dict) else None
        if node is None:
            return
    if isinstance(node, dict):
        node.pop(path[-1], None)


def prune_empty(obj, path):
    """After removing `path`, drops the maps on the way that became empty."""
    for depth in range(len(path) - 1, 0, -1):
        node = obj
        for p in path[:depth - 1]:
            node = node.get(p) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            return
        child = node.get(path[depth - 1])
        if isinstance(child, dict) and not child:
            node.pop(path[depth - 1])
        else:
            return


# ---------------------------------------------------------------------------------------------
# Selectors

_LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


def _split_top(text):
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


def parse_label_selector(text):
    """A list of (key, op, values): op in =, !=, in, notin, exists, !exists."""
    reqs = []
    for part in _split_top(text or ""):
        m = re.fullmatch(r"(\S+)\s+(in|notin)\s+\(([^)]*)\)", part)
        if m:
            values = {v.strip() for v in m.group(3).split(",") if v.strip()}
            reqs.append((m.group(1), m.group(2), values))
        elif part.startswith("!"):
            reqs.append((part[1:].strip(), "!exists", None))
        else:
            m = re.fullmatch(r"([^=!\s]+)\s*(==|=|!=)\s*(\S*)", part)
            if m:
                reqs.append((m.group(1), "!=" if m.group(2) == "!=" else "=", {m.group(3)}))
            elif re.fullmatch(r"[^=!\s()]+", part):
                reqs.append((part, "exists", None))
            else:
                raise SelectorError("unable to parse requirement: %s" % part)
    for key, _, _ in reqs:
        if not _LABEL_KEY.match(key):
            raise SelectorError("invalid label key %r" % key)
    return reqs


def labels_match(reqs, labels):
    labels = labels or {}
    for key, op, values in reqs:
        present = key in labels
        if op == "=" and (not present or labels[key] not in values):
            return False
        if op == "!=" and present and labels[key] in values:
            return False
        if op == "in" and (not present or labels[key] not in values):
            return False
        if op == "notin" and present and labels[key] in values:
            return False
        if op == "exists" and not present:
            return False
        if op == "!exists" and present:
            return False
    return True


def parse_field_selector(text, supported):
    """A list of (field, equal?, value) over the field labels in `supported`."""
    reqs = []
    for part in _split_top(text or ""):
        m = re.fullmatch(r"([^=!\s]+)\s*(==|=|!=)\s*(.*)", part)
        if not m:
            raise SelectorError("invalid selector: '%s'; can't understand '%s'" % (text, part))
        if m.group(1) not in supported:
            raise SelectorError('field label not supported: %s' % m.group(1))
        reqs.append((m.group(1), m.group(2) != "!=", m.group(3)))
    return reqs


def field_value(obj, field):
    node = obj
    for p in field.split("."):
        node = node.get(p) if isinstance(node, dict) else None
    return "" if node is None else str(node)


def fields_match(reqs, obj):
    return all((field_value(obj, f) == v) == eq for f, eq, v in reqs)


# ---------------------------------------------------------------------------------------------
# CRD schemas: OpenAPI v3 (Kubernetes' structural subset) to JSON Schema, and defaulting

_COPY = ("type", "required", "enum", "pattern", "minLength", "maxLength", "minItems", "maxItems",
         "uniqueItems", "minProperties", "maxProperties", "multipleOf", "maximum", "minimum")


def crd_json_schema(schema, root=True, in_junctor=False):
    """The JSON Schema (draft 7) a custom resource is checked against: unknown fields are
    violations unless `x-kubernetes-preserve-unknown-fields: true`, `nullable` allows null,
    `x-kubernetes-int-or-string` allows both, OpenAPI 3.0's boolean exclusiveMinimum/Maximum
    become draft 7's numbers. CEL rules (`x-kubernetes-validations`) and formats are not
    checked."""
    if not isinstance(schema, dict):
        return {}
    out = {k: copy.deepcopy(schema[k]) for k in _COPY if k in schema}
    if schema.get("exclusiveMinimum") is True and "minimum" in schema:
        out["exclusiveMinimum"] = out.pop("minimum")
    if schema.get("exclusiveMaximum") is True and "maximum" in schema:
        out["exclusiveMaximum"] = out.pop("maximum")
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if "properties" in schema:
        out["properties"] = {k: crd_json_schema(v, False, False) for k, v in schema["properties"].items()}
    if "items" in schema:
        out["items"] = crd_json_schema(schema["items"], False, False)
    if isinstance(schema.get("additionalProperties"), dict):
        out["additionalProperties"] = crd_json_schema(schema["additionalProperties"], False, False)
    elif isinstance(schema.get("additionalProperties"), bool):
        out["additionalProperties"] = schema["additionalProperties"]
    for junctor in ("allOf", "anyOf", "oneOf"):
        if junctor in schema:
            branches = [crd_json_schema(b, False, True) for b in schema[junctor]]
            if "anyOf" in out and junctor == "anyOf":
                out["allOf"] = [{"anyOf": out.pop("anyOf")}, {"anyOf": branches}]
            else:
                out[junctor] = branches
    if "not" in schema:
        out["not"] = crd_json_schema(schema["not"], False, True)
    embedded = schema.get("x-kubernetes-embedded-resource")
    if root or embedded:
        out.setdefault("properties", {})
        out["properties"].setdefault("apiVersion", {"type": "string"})
        out["properties"].setdefault("kind", {"type": "string"})
        # metadata is always an ObjectMeta (checked on its own), whatever the schema says.
        out["properties"]["metadata"] = {"type": "object"}
    is_object = schema.get("type") == "object" or "properties" in schema
    if (is_object and not in_junctor and not schema.get("x-kubernetes-preserve-unknown-fields")
            and "additionalProperties" not in schema):
        out["additionalProperties"] = False
    if schema.get("nullable"):
        t = out.get("type")
        if isinstance(t, str):
            out["type"] = [t, "null"]
        if "enum" in out and None not in out["enum"]:
            out["enum"] = list(out["enum"]) + [None]
    return out


def apply_defaults(schema, obj):
    """Fills in `default`s of the schema where the object lacks the field (structural
    defaulting, as the API server does on writes)."""
    if not isinstance(schema, dict):
        return
    if isinstance(obj, dict):
        for key, sub in (schema.get("properties") or {}).items():
            if key not in obj and isinstance(sub, dict) and "default" in sub:
                obj[key] = copy.deepcopy(sub["default"])
            if key in obj:
                apply_defaults(sub, obj[key])
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            known = schema.get("properties") or {}
            for key, value in obj.items():
                if key not in known:
                    apply_defaults(extra, value)
    elif isinstance(obj, list) and isinstance(schema.get("items"), dict):
        for item in obj:
            apply_defaults(schema["items"], item)


def version_priority(version):
    """Kubernetes' version ordering (v2 > v1 > v1beta2 > v1beta1 > v1alpha1 > other)."""
    m = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if not m:
        return (0, 0, 0, version)
    stage = {"alpha": 1, "beta": 2, None: 3}[m.group(2)]
    return (stage, int(m.group(1)), int(m.group(3) or 0), "")


# ---------------------------------------------------------------------------------------------
# Protobuf: the little of it kubectl's typed commands send (`create secret generic`,
# `create namespace`): the `k8s\0` envelope (runtime.Unknown) around a Secret or Namespace.


def _varint(data, i):
    shift = result = 0
    while True:
        if i >= len(data):
            raise ValueError("truncated varint")
        b = data[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def _fields(data):
    i, out = 0, []
    while i < len(data):
        key, i = _varint(data, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(data, i)
        elif wire == 2:
            length, i = _varint(data, i)
            value = data[i:i + length]
            i += length
        elif wire == 1:
            value = data[i:i + 8]
            i += 8
        elif wire == 5:
            value = data[i:i + 4]
            i += 4
        else:
            raise ValueError("unsupported wire type %d" % wire)
        out.append((number, value))
    return out


def _map_entry(data):
    k = v = b""
    for n, val in _fields(data):
        if n == 1:
            k = val
        elif n == 2:
            v = val
    return k, v


def _object_meta(data):
    meta = {}
    strings = {1: "name", 2: "generateName", 3: "namespace", 6: "resourceVersion"}
    for n, val in _fields(data):
        if n in strings and val:
            meta[strings[n]] = val.decode()
        elif n in (11, 12):
            k, v = _map_entry(val)
            meta.setdefault("labels" if n == 11 else "annotations", {})[k.decode()] = v.decode()
        elif n == 14:
            meta.setdefault("finalizers", []).append(val.decode())
    return meta


def decode_protobuf(raw):
    """(apiVersion, kind, object) of a protobuf-encoded Secret or Namespace; ValueError
    otherwise."""
    import base64

    if not raw.startswith(b"k8s\x00"):
        raise ValueError("not a Kubernetes protobuf envelope")
    api_version = kind = ""
    payload = b""
    for n, val in _fields(raw[4:]):
        if n == 1:
            for tn, tv in _fields(val):
                if tn == 1:
                    api_version = tv.decode()
                elif tn == 2:
                    kind = tv.decode()
        elif n == 2:
            payload = val
    obj = {"apiVersion": api_version, "kind": kind}
    if (api_version, kind) == ("v1", "Secret"):
        for n, val in _fields(payload):
            if n == 1:
                obj["metadata"] = _object_meta(val)
            elif n == 2:
                k, v = _map_entry(val)
                obj.setdefault("data", {})[k.decode()] = base64.b64encode(v).decode()
            elif n == 3 and val:
                obj["type"] = val.decode()
            elif n == 4:
                k, v = _map_entry(val)
                obj.setdefault("stringData", {})[k.decode()] = v.decode()
            elif n == 5:
                obj["immutable"] = bool(val)
        return obj
    if (api_version, kind) == ("v1", "Namespace"):
        for n, val in _fields(payload):
            if n == 1:
                obj["metadata"] = _object_meta(val)
        return obj
    raise ValueError("protobuf %s %s is not supported by the fake" % (api_version, kind))
