//! `batch_input`: many items in one request, each with its own result.
//!
//! As OpenBao: each result echoes the item's `reference`; a failed item gets an `error` and
//! the others keep their results. If any item failed, the whole response (with every
//! result) is sent with 400 (500 if only internal errors), unless the caller passed
//! `partial_failure_response_code` and at least one item succeeded.

use std::borrow::Cow;

use serde_json::{Map, Value};
use tresor_sdk::engine::{EngineResult, Request, Response};

use super::crypt::ItemError;
use super::req::{self, bad};
use crate::common::fields;

/// More items than this in one request are refused, so one call cannot pin a core for long
/// (OpenBao bounds batches only by the request size).
pub(crate) const MAX_ITEMS: usize = 25_000;

/// One input item: a JSON object whose fields are read with Vault's weak typing.
/// Items borrow the request's JSON: a batch of large plaintexts is not copied. No `Debug`:
/// items hold plaintexts.
pub(crate) struct Item<'a>(pub Cow<'a, Map<String, Value>>);

impl<'a> Item<'a> {
    /// A string field; absent or `null` is empty.
    pub(crate) fn str(&self, name: &str) -> EngineResult<String> {
        self.str_ref(name).map(Cow::into_owned)
    }

    pub(crate) fn int(&self, name: &str) -> EngineResult<i64> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(0),
            Some(Value::String(s)) if s.is_empty() => Ok(0),
            Some(v) => fields::to_int(v).map_err(|r| {
                bad(format!(
                    "failed to parse batch input: field \"{name}\": {r}"
                ))
            }),
        }
    }

    /// The base64 `input` field, decoded (sign and verify); a missing field or bad base64
    /// is the item's error.
    pub(crate) fn input(&self) -> EngineResult<Result<Vec<u8>, ItemError>> {
        if !self.0.contains_key("input") {
            return Ok(Err(ItemError::user("missing input")));
        }
        Ok(super::crypt::decode_input(&self.str_ref("input")?))
    }

    /// A string field without copying it when it is a JSON string.
    pub(crate) fn str_ref(&self, name: &str) -> EngineResult<Cow<'_, str>> {
        str_field(&self.0, name)
    }
}

/// A string field of a batch item, borrowed when it is a JSON string.
pub(crate) fn str_field<'m>(map: &'m Map<String, Value>, name: &str) -> EngineResult<Cow<'m, str>> {
    {
        match map.get(name) {
            None | Some(Value::Null) => Ok(Cow::Borrowed("")),
            Some(Value::String(s)) => Ok(Cow::Borrowed(s.as_str())),
            Some(v) => fields::to_string(v).map(Cow::Owned).map_err(|r| {
                bad(format!(
                    "failed to parse batch input: field \"{name}\": {r}"
                ))
            }),
        }
    }
}

/// The `batch_input` items, or `None` when the request is not a batch.
pub(crate) fn input(request: &Request) -> EngineResult<Option<Vec<Item<'_>>>> {
    let Some(raw) = request.data.get("batch_input") else {
        return Ok(None);
    };
    let items = match raw {
        Value::Null => return Ok(None),
        Value::Array(items) => items,
        other => {
            return Err(bad(format!(
                "failed to parse batch input: expected an array, got {}",
                fields::kind(other)
            )));
        }
    };
    if items.is_empty() {
        return Err(bad("missing batch input to process"));
    }
    if items.len() > MAX_ITEMS {
        return Err(bad(format!(
            "batch input has {} items; at most {MAX_ITEMS} are allowed",
            items.len()
        )));
    }
    items
        .iter()
        .map(|item| match item {
            Value::Object(map) => Ok(Item(Cow::Borrowed(map))),
            other => Err(bad(format!(
                "failed to parse batch input: expected a map, got {}",
                fields::kind(other)
            ))),
        })
        .collect::<EngineResult<Vec<_>>>()
        .map(Some)
}

/// What happened across a batch.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Outcome {
    pub successes: bool,
    pub user_errors: bool,
    pub internal_errors: bool,
}

impl Outcome {
    pub(crate) fn record<T>(&mut self, result: &Result<T, ItemError>) {
        match result {
            Ok(_) => self.successes = true,
            Err(ItemError::User(_)) => self.user_errors = true,
            Err(ItemError::Internal(_)) => self.internal_errors = true,
        }
    }
}

/// The batch response with OpenBao's status rules.
pub(crate) fn respond(
    request: &Request,
    data: Map<String, Value>,
    outcome: Outcome,
    warnings: Vec<String>,
) -> EngineResult<Option<Response>> {
    let mut response = Response::with_data(data);
    response.warnings = warnings;
    if outcome.user_errors || outcome.internal_errors {
        let mut code = if outcome.user_errors { 400 } else { 500 };
        if outcome.successes
            && let Some(wanted) = req::int(request, "partial_failure_response_code")?
        {
            if (1..=599).contains(&wanted) {
                code = u16::try_from(wanted).unwrap_or(code);
            } else {
                response.warnings.push(format!(
                    "invalid HTTP response code override from partial_failure_response_code, reverting to {code}"
                ));
            }
        }
        response.status_override = Some(code);
    }
    Ok(Some(response))
}

/// The error for a single (non-batch) request whose only item failed.
pub(crate) fn single_error(error: ItemError) -> tresor_sdk::engine::EngineError {
    match error {
        ItemError::User(m) => bad(m),
        ItemError::Internal(m) => tresor_sdk::engine::EngineError::Internal(m),
    }
}

/// The answer of an endpoint whose batches always get 200 (sign, verify, hmac): a single
/// request gets its item's data or its error (`missing` when there was no item); a batch
/// gets every item's result, each followed by the item's `reference`.
pub(crate) fn answer<T>(
    items: &[Item],
    results: Vec<Result<T, ItemError>>,
    is_batch: bool,
    missing: &str,
    single: impl FnOnce(T) -> Map<String, Value>,
    batch_item: impl Fn(Result<T, ItemError>) -> Map<String, Value>,
) -> EngineResult<Option<Response>> {
    if !is_batch {
        return match results.into_iter().next() {
            Some(Ok(value)) => req::respond(single(value)),
            Some(Err(e)) => Err(single_error(e)),
            None => Err(bad(missing)),
        };
    }
    let out: Vec<Value> = results
        .into_iter()
        .zip(items)
        .map(|(result, item)| {
            let mut data = batch_item(result);
            let reference = item.str("reference").unwrap_or_default();
            data.insert("reference".into(), Value::String(reference));
            Value::Object(data)
        })
        .collect();
    req::respond(req::object(serde_json::json!({ "batch_results": out })))
}
