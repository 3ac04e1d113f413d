//! LIST and SCAN on `metadata/` and OpenBao's `detailed-metadata/`.
//!
//! LIST returns immediate children (folders end in `/`), sorted, optionally paged with
//! `after` (exclusive, need not exist) and `limit` (≤ 0 = all); an empty page is a 404.
//! SCAN returns every key below the prefix in OpenBao's walk order, ignores paging, and answers
//! an empty subtree with 200 and no `keys`. The detailed forms add `key_info`: each key's full
//! metadata.

use serde_json::{Map, Value};
use tresor_sdk::engine::{EngineError, EngineResult, Request, Response};
use tresor_sdk::storage::Storage;

use super::store;
use crate::common::fields::{self, Wording};
use crate::common::{passthrough, scan as walk};
use crate::secrets::kv::layout::META_PREFIX;

pub(crate) async fn list(
    req: &Request,
    storage: &dyn Storage,
    prefix: &str,
    detailed: bool,
) -> EngineResult<Option<Response>> {
    let after = fields::string(req, "after")?.unwrap_or_default();
    let limit = fields::int(req, "limit", Wording::Validated)?.unwrap_or(0);
    let entries = storage.list(&format!("{META_PREFIX}{prefix}")).await?;
    let keys = page(entries, &after, limit);
    if keys.is_empty() {
        return Err(EngineError::NotFound);
    }
    if !detailed {
        return Ok(Some(Response::list(keys)));
    }
    let info = key_info(storage, prefix, &keys).await?;
    Ok(Some(with_key_info(keys, info)))
}

/// Applies `after`/`limit` to sorted entries.
fn page(entries: Vec<String>, after: &str, limit: i64) -> Vec<String> {
    let remaining = entries
        .into_iter()
        .filter(|k| after.is_empty() || k.as_str() > after);
    match usize::try_from(limit) {
        Ok(n) if n > 0 => remaining.take(n).collect(),
        _ => remaining.collect(),
    }
}

pub(crate) async fn scan(
    storage: &dyn Storage,
    prefix: &str,
    detailed: bool,
) -> EngineResult<Option<Response>> {
    let keys = walk::scan(storage, &format!("{META_PREFIX}{prefix}")).await?;
    if keys.is_empty() || !detailed {
        return Ok(Some(passthrough::list_or_empty(keys)));
    }
    let info = key_info(storage, prefix, &keys).await?;
    Ok(Some(with_key_info(keys, info)))
}

/// Each listed key's metadata. Like OpenBao (which joins the paths with `filepath.Join`), a
/// folder `x/` reports the metadata of a key named `x` if there is one, else `{}`.
async fn key_info(
    storage: &dyn Storage,
    prefix: &str,
    keys: &[String],
) -> EngineResult<Map<String, Value>> {
    let mut info = Map::new();
    for key in keys {
        let path = format!("{prefix}{}", key.trim_end_matches('/'));
        let meta = store::load_meta(storage, &path).await?;
        let rendered = meta.map(|m| m.to_json()).unwrap_or_default();
        info.insert(key.clone(), Value::Object(rendered));
    }
    Ok(info)
}

fn with_key_info(keys: Vec<String>, info: Map<String, Value>) -> Response {
    let mut response = Response::list(keys);
    if let Some(data) = response.data.as_mut() {
        data.insert("key_info".into(), Value::Object(info));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_is_exclusive_and_bounded() {
        let entries: Vec<String> = ["a", "b", "b/", "c"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(page(entries.clone(), "b", 2), vec!["b/", "c"]);
        assert_eq!(page(entries.clone(), "", 2), vec!["a", "b"]);
        assert_eq!(page(entries.clone(), "", -3).len(), 4);
        assert_eq!(page(entries.clone(), "bb", 0), vec!["c"]);
        assert!(page(entries, "z", 0).is_empty());
    }
}
