//! `no-sealed-secret`, `no-inline-secret` and `no-secret-in-annotation`.

use super::Ctx;
use crate::detect::{
    decode_base64, docker_config_has_auth, is_credential_key, is_placeholder, redact, url_password,
};
use crate::model::{containers, pod_specs, pod_template_metadata};
use crate::yaml::NodeId;

const INLINE: &str = "no-inline-secret";
const ANNOTATION: &str = "no-secret-in-annotation";

pub fn check(ctx: &mut Ctx<'_>) {
    let file = ctx.file;
    let src = ctx.src;
    let y = &src.yaml;
    for (ri, r) in file.resources.iter().enumerate() {
        match r.kind.as_str() {
            "SealedSecret" => {
                let pos = y
                    .get(r.node, "kind")
                    .map_or_else(|| y.pos(r.node), |k| y.pos(k));
                ctx.emit(
                    "no-sealed-secret",
                    Some(ri),
                    None,
                    pos,
                    format!(
                        "{}: sealed secrets are forbidden; reference the secrets store (ExternalSecret, VaultStaticSecret or a Tresor sync) instead",
                        r.display()
                    ),
                    None,
                    false,
                );
            }
            "Secret" => {
                for section in ["data", "stringData"] {
                    if let Some(map) = y.get(r.node, section) {
                        secret_values(ctx, ri, map, section == "data");
                    }
                }
            }
            "ConfigMap" => {
                if let Some(map) = y.get(r.node, "data") {
                    config_map_values(ctx, ri, map);
                }
            }
            "Kustomization" => kustomize_literals(ctx, ri, r.node),
            _ => {}
        }
        for spec in pod_specs(y, r) {
            for c in containers(y, spec) {
                if let Some(env) = y.get(c, "env") {
                    env_values(ctx, ri, env);
                }
            }
        }
        let mut metadata: Vec<NodeId> = y.get(r.node, "metadata").into_iter().collect();
        metadata.extend(pod_template_metadata(y, r));
        for m in metadata {
            for section in ["annotations", "labels"] {
                if let Some(map) = y.get(m, section) {
                    annotations(ctx, ri, map, section);
                }
            }
        }
    }
}

fn who(ctx: &Ctx<'_>, resource: usize) -> String {
    ctx.file
        .resources
        .get(resource)
        .map(|r| r.display())
        .unwrap_or_default()
}

fn secret_values(ctx: &mut Ctx<'_>, ri: usize, map: NodeId, base64: bool) {
    let src = ctx.src;
    let y = &src.yaml;
    let section = if base64 { "data" } else { "stringData" };
    for &(k, v) in y.entries(map).iter() {
        let (Some(key), Some(raw)) = (y.str(k), y.string(v)) else {
            continue;
        };
        if is_placeholder(raw) {
            continue;
        }
        let decoded = if base64 {
            decode_base64(raw).map(|b| String::from_utf8_lossy(&b).into_owned())
        } else {
            None
        };
        let text = decoded.as_deref().unwrap_or(raw);
        if is_placeholder(text) {
            continue;
        }
        let pos = ctx.value_pos(v);
        let name = who(ctx, ri);
        if matches!(key, ".dockerconfigjson" | ".dockercfg") {
            if docker_config_has_auth(text) {
                ctx.emit(
                    INLINE,
                    Some(ri),
                    Some(v),
                    pos,
                    format!("{name}: {section}.{key} holds registry credentials (an auth or password field)"),
                    Some(redact(text)),
                    false,
                );
            }
            continue;
        }
        if is_credential_key(key, &ctx.config.credential_keys) {
            ctx.emit(
                INLINE,
                Some(ri),
                Some(v),
                pos,
                format!("{name}: {section}.{key} holds a literal credential"),
                Some(redact(text)),
                false,
            );
        } else if let Some(range) = url_password(text) {
            let pw = text.get(range).unwrap_or("");
            ctx.emit(
                INLINE,
                Some(ri),
                Some(v),
                pos,
                format!("{name}: {section}.{key} holds a connection URL with a literal password"),
                Some(redact(pw)),
                false,
            );
        } else if !base64 {
            embedded_lines(ctx, ri, v, &format!("{name}: {section}.{key}"));
        }
    }
}

fn config_map_values(ctx: &mut Ctx<'_>, ri: usize, map: NodeId) {
    let src = ctx.src;
    let y = &src.yaml;
    let name = who(ctx, ri);
    for &(k, v) in y.entries(map).iter() {
        let (Some(key), Some(value)) = (y.str(k), y.string(v)) else {
            continue;
        };
        if is_placeholder(value) {
            continue;
        }
        let pos = ctx.value_pos(v);
        if is_credential_key(key, &ctx.config.credential_keys) && !value.contains('\n') {
            ctx.emit(
                INLINE,
                Some(ri),
                Some(v),
                pos,
                format!(
                    "{name}: data.{key} holds a literal credential (ConfigMaps are not secret)"
                ),
                Some(redact(value)),
                false,
            );
        } else if !value.contains('\n')
            && let Some(range) = url_password(value)
        {
            let pw = value.get(range).unwrap_or("");
            ctx.emit(
                INLINE,
                Some(ri),
                Some(v),
                pos,
                format!("{name}: data.{key} holds a connection URL with a literal password"),
                Some(redact(pw)),
                false,
            );
        } else {
            embedded_lines(ctx, ri, v, &format!("{name}: data.{key}"));
        }
    }
}

/// Config files inside a block scalar: `password: x`, `password = "x"`, `export TOKEN=x`
/// lines, and URLs with passwords, each reported at its own line (a line written twice is
/// reported twice, once where each is written).
fn embedded_lines(ctx: &mut Ctx<'_>, ri: usize, v: NodeId, what: &str) {
    let src = ctx.src;
    let y = &src.yaml;
    let Some(value) = y.str(v) else {
        return;
    };
    if !value.contains('\n') {
        return;
    }
    // (offset of the line's first character in the value, the line, message, hint)
    let mut hits = Vec::new();
    let mut line_start = 0;
    for raw_line in value.split_inclusive('\n') {
        let offset = line_start;
        line_start += raw_line.len();
        let line = raw_line.trim_end_matches(['\n', '\r']);
        let t = line.trim();
        let offset = offset + (line.len() - line.trim_start().len());
        if t.starts_with('#') || t.starts_with("//") || t.starts_with(';') {
            continue;
        }
        let whole = t;
        let t = t.strip_prefix("export ").unwrap_or(t);
        let Some(sep) = t.find([':', '=']) else {
            continue;
        };
        let key = t.get(..sep).unwrap_or("").trim().trim_matches(['"', '\'']);
        let val = t
            .get(sep + 1..)
            .unwrap_or("")
            .trim()
            .trim_end_matches([',', ';'])
            .trim_matches(['"', '\'']);
        let key_ok = !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if key_ok
            && !val.is_empty()
            && !is_placeholder(val)
            && !matches!(val, "null" | "~" | "true" | "false" | "{" | "[" | "|" | ">")
            && is_credential_key(key, &ctx.config.credential_keys)
        {
            hits.push((
                offset,
                whole,
                format!("{what}: embedded `{key}` holds a literal credential"),
                redact(val),
            ));
        } else if let Some(range) = url_password(t) {
            let pw = t.get(range).unwrap_or("").to_owned();
            hits.push((
                offset,
                whole,
                format!("{what}: embedded connection URL with a literal password"),
                redact(&pw),
            ));
        }
    }
    let spots: Vec<(usize, &str)> = hits.iter().map(|&(o, t, _, _)| (o, t)).collect();
    let positions = src.locate(v, &spots);
    for ((_, _, message, hint), pos) in hits.into_iter().zip(positions) {
        ctx.emit(INLINE, Some(ri), Some(v), pos, message, Some(hint), false);
    }
}

fn env_values(ctx: &mut Ctx<'_>, ri: usize, env: NodeId) {
    let src = ctx.src;
    let y = &src.yaml;
    let name = who(ctx, ri);
    for &item in y.seq(env) {
        let (Some(var), Some(vnode)) = (y.str_at(item, &["name"]), y.get(item, "value")) else {
            continue;
        };
        let Some(value) = y.string(vnode) else {
            continue;
        };
        if is_placeholder(value) {
            continue;
        }
        let pos = ctx.value_pos(vnode);
        if is_credential_key(var, &ctx.config.credential_keys) {
            ctx.emit(
                INLINE,
                Some(ri),
                Some(vnode),
                pos,
                format!("{name}: env {var} holds a literal credential; use valueFrom.secretKeyRef"),
                Some(redact(value)),
                false,
            );
        } else if let Some(range) = url_password(value) {
            let pw = value.get(range).unwrap_or("");
            ctx.emit(
                INLINE,
                Some(ri),
                Some(vnode),
                pos,
                format!("{name}: env {var} holds a connection URL with a literal password"),
                Some(redact(pw)),
                false,
            );
        }
    }
}

fn kustomize_literals(ctx: &mut Ctx<'_>, ri: usize, node: NodeId) {
    let src = ctx.src;
    let y = &src.yaml;
    let Some(gens) = y.get(node, "secretGenerator") else {
        return;
    };
    for &g in y.seq(gens) {
        let gen_name = y.str_at(g, &["name"]).unwrap_or("").to_owned();
        let Some(lits) = y.get(g, "literals") else {
            continue;
        };
        for &l in y.seq(lits) {
            let Some((k, v)) = y.string(l).and_then(|s| s.split_once('=')) else {
                continue;
            };
            if !is_placeholder(v) && is_credential_key(k, &ctx.config.credential_keys) {
                let pos = y.pos(l);
                ctx.emit(
                    INLINE,
                    Some(ri),
                    Some(l),
                    pos,
                    format!(
                        "Kustomization secretGenerator {gen_name}: literal {k} holds a credential"
                    ),
                    Some(redact(v)),
                    false,
                );
            }
        }
    }
}

/// A DNS-1123 name, as a Secret's name is.
fn is_dns_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
}

/// `a/b/c` store paths (`secret/data/app`), which Vault agent annotations hold.
fn is_path(s: &str) -> bool {
    s.contains('/')
        && !s.contains("://")
        && s.split('/').all(|seg| {
            seg.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+'))
        })
}

fn annotations(ctx: &mut Ctx<'_>, ri: usize, map: NodeId, section: &str) {
    let src = ctx.src;
    let y = &src.yaml;
    let name = who(ctx, ri);
    let singular = section.trim_end_matches('s');
    for &(k, v) in y.entries(map).iter() {
        let (Some(key), Some(value)) = (y.str(k), y.string(v)) else {
            continue;
        };
        if is_placeholder(value) || key == "kubectl.kubernetes.io/last-applied-configuration" {
            continue;
        }
        let last = key.rsplit('/').next().unwrap_or(key);
        let norm = crate::detect::normalise_key(last);
        let pos = ctx.value_pos(v);
        let names_secret_only = norm.contains("secret")
            && ![
                "password",
                "passwd",
                "token",
                "apikey",
                "privatekey",
                "credential",
            ]
            .iter()
            .any(|w| norm.contains(w));
        let reference = is_path(value) || (names_secret_only && is_dns_name(value));
        if !reference && is_credential_key(last, &ctx.config.credential_keys) {
            ctx.emit(
                ANNOTATION,
                Some(ri),
                Some(v),
                pos,
                format!("{name}: {singular} {key} holds a literal credential; annotations and labels are not secret"),
                Some(redact(value)),
                false,
            );
        } else if let Some(range) = url_password(value) {
            let pw = value.get(range).unwrap_or("");
            ctx.emit(
                ANNOTATION,
                Some(ri),
                Some(v),
                pos,
                format!("{name}: {singular} {key} holds a connection URL with a literal password"),
                Some(redact(pw)),
                false,
            );
        }
    }
}
