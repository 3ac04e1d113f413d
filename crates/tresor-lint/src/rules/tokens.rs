//! `known-token-prefix` and `high-entropy-string`: every scalar value of every document.

use super::Ctx;
use crate::detect::{decode_base64, find_known_token, is_high_entropy, redact};
use crate::model::Parsed;
use crate::yaml::{Kind, NodeId, NodeSet, Pos};

const PREFIX: &str = "known-token-prefix";
const ENTROPY: &str = "high-entropy-string";

/// Keys whose values are public by nature (certificates, digests, image references).
fn public_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    let last = k.rsplit('/').next().unwrap_or(&k);
    k.starts_with("checksum/")
        || matches!(
            last,
            "image"
                | "cabundle"
                | "ca.crt"
                | "tls.crt"
                | "ca-bundle.crt"
                | "ca.pem"
                | "cert.pem"
                | "certificate"
                | "uid"
                | "resourceversion"
                | "digest"
                | "sha"
                | "sha256"
                | "integrity"
                | "checksum"
                | "publickey"
                | "public_key"
                | "pubkey"
        )
}

struct Hit {
    node: NodeId,
    pos: Pos,
    rule: &'static str,
    message: String,
    hint: String,
}

pub fn check(ctx: &mut Ctx<'_>) {
    let file = ctx.file;
    let src = ctx.src;
    let y = &src.yaml;
    let mut hits = Vec::new();
    let mut seen = NodeSet::new(y);
    // Secret `data` values are base64: judge them decoded.
    let mut secret_data = NodeSet::new(y);
    for r in file.resources.iter().filter(|r| r.kind == "Secret") {
        if let Some(d) = y.get(r.node, "data") {
            for &(_, v) in y.entries(d).iter() {
                secret_data.insert(v);
            }
        }
    }
    for doc in &y.docs {
        let Some(root) = doc.root else {
            continue;
        };
        walk(src, root, None, &secret_data, &mut seen, &mut hits, 0);
    }
    for h in hits {
        if ctx.flagged.contains(&h.node) {
            continue;
        }
        let resource = file
            .resources
            .iter()
            .position(|r| r.start_line <= h.pos.line && h.pos.line <= r.end_line);
        ctx.emit(
            h.rule,
            resource,
            Some(h.node),
            h.pos,
            h.message,
            Some(h.hint),
            false,
        );
    }
}

fn walk(
    src: &Parsed,
    id: NodeId,
    key: Option<&str>,
    secret_data: &NodeSet,
    seen: &mut NodeSet,
    hits: &mut Vec<Hit>,
    depth: usize,
) {
    // Shared (aliased) nodes are judged once; depth is bounded by the parser's limit.
    if depth > 256 || !seen.insert(id) {
        return;
    }
    let y = &src.yaml;
    let Some(node) = y.node(id) else {
        return;
    };
    match node.kind {
        Kind::Map => {
            for &(k, v) in y.entries(id).iter() {
                walk(src, v, y.str(k), secret_data, seen, hits, depth + 1);
            }
        }
        Kind::Seq => {
            for &item in y.seq(id) {
                walk(src, item, key, secret_data, seen, hits, depth + 1);
            }
        }
        Kind::Scalar => {
            let s = y.str(id).unwrap_or("");
            if s.len() < 20 {
                return;
            }
            let decoded;
            let (text, encoded) = if secret_data.contains(id) {
                match decode_base64(s) {
                    Some(b) => {
                        decoded = String::from_utf8_lossy(&b).into_owned();
                        (decoded.as_str(), true)
                    }
                    None => (s, false),
                }
            } else {
                (s, false)
            };
            scalar(src, id, key, text, encoded, hits);
        }
    }
}

fn scalar(
    src: &Parsed,
    id: NodeId,
    key: Option<&str>,
    text: &str,
    encoded: bool,
    hits: &mut Vec<Hit>,
) {
    let y = &src.yaml;
    let Some(node) = y.node(id) else {
        return;
    };
    // `needle` is a slice of `text`: where it starts in the value gives its place in the
    // source (a decoded value has none but the scalar's).
    let locate = |needle: &str| -> Pos {
        let offset = (needle.as_ptr() as usize).checked_sub(text.as_ptr() as usize);
        match offset {
            Some(offset) if !encoded && offset <= text.len() => src
                .locate(id, &[(offset, needle)])
                .first()
                .copied()
                .unwrap_or(node.pos),
            _ => node.pos,
        }
    };
    let where_ = key.map_or_else(String::new, |k| format!(" (under {k})"));
    if let Some(t) = find_known_token(text) {
        let token = text.get(t.range.clone()).unwrap_or("");
        hits.push(Hit {
            node: id,
            pos: locate(token),
            rule: PREFIX,
            message: format!("{} in a manifest{where_}", t.what),
            hint: redact(token),
        });
        return;
    }
    if key.is_some_and(public_key) || text.contains("-----BEGIN CERTIFICATE") {
        return;
    }
    for raw in text.split(|c: char| {
        c.is_whitespace()
            || matches!(
                c,
                '"' | '\'' | ',' | ';' | '`' | '(' | ')' | '[' | ']' | '{' | '}'
            )
    }) {
        if raw.len() < 20 {
            continue;
        }
        // `--flag=value` and `KEY=value`: judge the value.
        let token = match raw.split_once('=') {
            Some((k, v)) if !k.is_empty() && v.len() >= 20 && !k.contains('/') => v,
            _ => raw,
        };
        let token = token.trim_end_matches(['.', ':']);
        if token.contains("://")
            || token.contains('@')
            || token.contains('.') && !token.ends_with('=')
        {
            continue;
        }
        if is_high_entropy(token) {
            hits.push(Hit {
                node: id,
                pos: locate(token),
                rule: ENTROPY,
                message: format!("high-entropy string{where_} may be a credential"),
                hint: redact(token),
            });
            return;
        }
    }
}
