//! `subkeys/<path>`: the structure of a version's data with every leaf value replaced by
//! `null`, down to `depth` levels (0 = unlimited). Lets a client see which fields exist
//! without reading the secret.

use serde_json::{Map, Value};
use tresor_sdk::engine::{EngineResult, Request, Response};
use tresor_sdk::storage::Storage;

use super::KvV2;
use crate::common::fields::{self, Wording};

pub(crate) async fn read(
    engine: &KvV2,
    req: &Request,
    storage: &dyn Storage,
    path: &str,
) -> EngineResult<Option<Response>> {
    let depth = fields::int(req, "depth", Wording::Validated)?.unwrap_or(0);
    match super::data::find_version(engine, req, storage, path, "subkeys").await? {
        Err(gone) => Ok(Some(gone)),
        Ok(super::data::Found { mut body, mut data }) => {
            strip_values(&mut data, depth, 1);
            body.insert("subkeys".into(), Value::Object(data));
            Ok(Some(Response::with_data(body)))
        }
    }
}

/// OpenBao's `removeValues`: a non-empty map nested within `max_depth` is descended into;
/// anything else (scalars, lists, empty maps, maps past the depth) becomes `null`. A negative
/// depth acts like 1, as in OpenBao.
fn strip_values(map: &mut Map<String, Value>, max_depth: i64, depth: i64) {
    for value in map.values_mut() {
        let next = depth + 1;
        match value {
            Value::Object(inner) if (max_depth == 0 || next <= max_depth) && !inner.is_empty() => {
                strip_values(inner, max_depth, next);
            }
            other => *other = Value::Null,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stripped(v: Value, depth: i64) -> Value {
        let mut map = v.as_object().cloned().unwrap_or_default();
        strip_values(&mut map, depth, 1);
        Value::Object(map)
    }

    #[test]
    fn matches_openbao_examples() {
        let data = json!({"a":1,"b":{"c":{"d":1,"e":{}},"f":[1,{"g":1}]},"h":{}});
        assert_eq!(
            stripped(data.clone(), 0),
            json!({"a":null,"b":{"c":{"d":null,"e":null},"f":null},"h":null})
        );
        assert_eq!(
            stripped(data.clone(), 1),
            json!({"a":null,"b":null,"h":null})
        );
        assert_eq!(
            stripped(data.clone(), 2),
            json!({"a":null,"b":{"c":null,"f":null},"h":null})
        );
        assert_eq!(stripped(data, -1), json!({"a":null,"b":null,"h":null}));
    }
}
