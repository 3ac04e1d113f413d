//! The `seal "<type>" { … }` block: an auto-unseal seal (`transit`, `static`), or the old seal
//! of a seal migration when it says `disabled = "true"`.
//!
//! Values are kept as strings, as OpenBao reads them; the binary applies the environment
//! fallbacks (`VAULT_ADDR`, `BAO_TOKEN`, …), resolves `file://` and `env://` keys, and builds
//! the seal, so this crate starts nothing and reads no key.

use std::collections::BTreeMap;

use hcl_edit::expr::Expression;
use hcl_edit::structure::Block;

use super::{Cx, Section};
use crate::error::{Located, Problem};
use crate::model::SealStanza;
use crate::suggest::closest;

const TRANSIT_KEYS: &[&str] = &[
    "address",
    "token",
    "key_name",
    "mount_path",
    "namespace",
    "disable_renewal",
    "tls_ca_cert",
    "tls_client_cert",
    "tls_client_key",
    "tls_server_name",
    "tls_skip_verify",
    "disabled",
];

const STATIC_KEYS: &[&str] = &[
    "current_key_id",
    "current_key",
    "previous_key_id",
    "previous_key",
    "disabled",
];

const KINDS: &[&str] = &["transit", "static"];

/// OpenBao's other seals (KMS plugins): real, but not in Tresor.
const UNSUPPORTED_KINDS: &[&str] = &[
    "alicloudkms",
    "awskms",
    "azurekeyvault",
    "gcpckms",
    "kmip",
    "ocikms",
    "ovhcloud",
    "pkcs11",
    "tcloudpublic",
    "shamir",
];

pub(super) fn read(cx: &Cx, block: &Block) -> Result<SealStanza, Located> {
    let (kind, label_line) = cx.label(block)?;
    let keys = match kind {
        "transit" => TRANSIT_KEYS,
        "static" => STATIC_KEYS,
        _ if UNSUPPORTED_KINDS.contains(&kind) => {
            return Err(Located::new(
                label_line,
                Problem::InvalidValue {
                    key: "seal".to_owned(),
                    message: format!(
                        "seal type {kind:?} is not supported by Tresor; use \"transit\" or \
                         \"static\" (or no seal block for Shamir unseal keys)"
                    ),
                },
            ));
        }
        _ => {
            return Err(Located::new(
                label_line,
                Problem::InvalidValue {
                    key: "seal".to_owned(),
                    message: format!(
                        "unknown seal type {kind:?}{}; Tresor supports \"transit\" and \"static\"",
                        closest(kind, KINDS)
                            .map_or_else(String::new, |s| format!(" (did you mean {s:?}?)"))
                    ),
                },
            ));
        }
    };
    let section = Section {
        place: format!("in seal {kind:?}"),
        keys,
        blocks: &[],
        unsupported_keys: &[],
        unsupported_blocks: &[],
    };
    let mut options = BTreeMap::new();
    let mut disabled = false;
    for attr in section.attributes(cx, &block.body)? {
        let value = cx.value(attr);
        if !keys.contains(&value.key()) {
            return Err(section.unknown_attribute(cx, attr));
        }
        if value.key() == "disabled" {
            // OpenBao's default is the empty string: not disabled.
            let empty = matches!(&attr.value, Expression::String(s) if s.value().is_empty());
            disabled = !empty && value.boolean()?;
            continue;
        }
        let text =
            scalar(&attr.value).ok_or_else(|| value.invalid("must be a string".to_owned()))?;
        options.insert(value.key().to_owned(), text);
    }
    let line = cx.block_line(block);
    if kind == "static" {
        for key in ["current_key_id", "current_key"] {
            if options.get(key).is_none_or(String::is_empty) {
                return Err(Located::new(
                    line,
                    Problem::MissingKey {
                        key: key.to_owned(),
                        place: section.place.clone(),
                    },
                ));
            }
        }
        if options.contains_key("previous_key") != options.contains_key("previous_key_id") {
            return Err(Located::new(
                line,
                Problem::InvalidValue {
                    key: "previous_key".to_owned(),
                    message: "previous_key and previous_key_id go together".to_owned(),
                },
            ));
        }
    }
    Ok(SealStanza {
        seal_type: kind.to_owned(),
        disabled,
        options,
        line,
    })
}

/// Seal options are strings to OpenBao; bare booleans and numbers are taken as their text.
fn scalar(expr: &Expression) -> Option<String> {
    match expr {
        Expression::String(s) => Some(s.value().clone()),
        Expression::Bool(b) => Some(b.value().to_string()),
        Expression::Number(n) => Some(n.value().to_string()),
        _ => None,
    }
}

/// At most one active seal and one disabled (migration) seal.
pub(super) fn check_all(seals: &[SealStanza]) -> Result<(), Located> {
    let active: Vec<&SealStanza> = seals.iter().filter(|s| !s.disabled).collect();
    let disabled: Vec<&SealStanza> = seals.iter().filter(|s| s.disabled).collect();
    let too_many = |stanza: &SealStanza, what: &str| {
        Located::new(
            stanza.line,
            Problem::InvalidValue {
                key: "seal".to_owned(),
                message: format!("more than one {what} seal block"),
            },
        )
    };
    if let Some(second) = active.get(1) {
        return Err(too_many(second, "active"));
    }
    if let Some(second) = disabled.get(1) {
        return Err(too_many(second, "disabled"));
    }
    Ok(())
}
