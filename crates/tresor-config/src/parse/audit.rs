//! The `audit "<type>" "<path>" { … }` block: an audit device declared in the config file, as
//! OpenBao 2 reads it (`type` and `path` may also be attributes inside the block).

use std::collections::BTreeMap;

use hcl_edit::expr::{Expression, ObjectKey};
use hcl_edit::structure::{Block, Structure};

use super::{Cx, Section};
use crate::error::{Located, Problem};
use crate::model::AuditDeviceConfig;

const KEYS: &[&str] = &["type", "path", "description", "local", "options"];

pub(super) fn read(cx: &Cx, block: &Block) -> Result<AuditDeviceConfig, Located> {
    let line = cx.block_line(block);
    let labels: Vec<&str> = block.labels.iter().map(|l| l.as_str()).collect();
    let mut device_type = labels.first().map(|s| (*s).to_owned());
    let mut path = labels.get(1).map(|s| (*s).to_owned());
    if labels.len() > 2 {
        return Err(Located::new(
            line,
            Problem::Labels {
                name: "audit".to_owned(),
                found: labels.len(),
            },
        ));
    }
    let section = Section {
        place: "in audit".to_owned(),
        keys: KEYS,
        blocks: &["options"],
        unsupported_keys: &[],
        unsupported_blocks: &[],
    };
    let mut description = String::new();
    let mut local = false;
    let mut options = BTreeMap::new();
    for structure in block.body.iter() {
        match structure {
            Structure::Attribute(attr) => {
                let value = cx.value(attr);
                match value.key() {
                    "type" => device_type = Some(value.string()?),
                    "path" => path = Some(value.string()?),
                    "description" => description = value.string()?,
                    "local" => local = value.boolean()?,
                    "options" => match &attr.value {
                        Expression::Object(object) => {
                            for (key, item) in object.iter() {
                                let key = match key {
                                    ObjectKey::Ident(i) => i.as_str().to_owned(),
                                    ObjectKey::Expression(Expression::String(s)) => {
                                        s.value().clone()
                                    }
                                    ObjectKey::Expression(_) => {
                                        return Err(value.invalid(
                                            "option names must be identifiers or strings"
                                                .to_owned(),
                                        ));
                                    }
                                };
                                let text = scalar(item.expr()).ok_or_else(|| {
                                    value.invalid(format!("option {key:?} must be a string"))
                                })?;
                                options.insert(key, text);
                            }
                        }
                        _ => return Err(value.invalid("must be a map of strings".to_owned())),
                    },
                    _ => return Err(section.unknown_attribute(cx, attr)),
                }
            }
            Structure::Block(inner) if inner.ident.as_str() == "options" => {
                let inner_section = Section {
                    place: "in audit options".to_owned(),
                    keys: &[],
                    blocks: &[],
                    unsupported_keys: &[],
                    unsupported_blocks: &[],
                };
                for attr in inner_section.attributes(cx, &inner.body)? {
                    let value = cx.value(attr);
                    let text = scalar(&attr.value).ok_or_else(|| {
                        value.invalid("an audit option must be a string".to_owned())
                    })?;
                    options.insert(value.key().to_owned(), text);
                }
            }
            Structure::Block(inner) => return Err(section.unknown_block(cx, inner)),
        }
    }
    let missing = |key: &str| {
        Located::new(
            line,
            Problem::MissingKey {
                key: key.to_owned(),
                place: "in audit".to_owned(),
            },
        )
    };
    let device_type = device_type
        .filter(|t| !t.is_empty())
        .ok_or_else(|| missing("type"))?;
    let path = path
        .filter(|p| !p.trim_matches('/').is_empty())
        .ok_or_else(|| missing("path"))?;
    Ok(AuditDeviceConfig {
        device_type,
        path,
        description,
        local,
        options,
    })
}

/// Options are strings to Vault; bare booleans and numbers are taken as their text.
fn scalar(expr: &Expression) -> Option<String> {
    match expr {
        Expression::String(s) => Some(s.value().clone()),
        Expression::Bool(b) => Some(b.value().to_string()),
        Expression::Number(n) => Some(n.value().to_string()),
        _ => None,
    }
}
