//! Which KV v2 endpoint a mount-relative path names, and OpenBao's answers for paths that
//! name none.

use tresor_sdk::engine::{Operation, Response};

/// A KV v2 endpoint and the secret path it carries (possibly empty or ending in `/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route<'a> {
    Config,
    Data(&'a str),
    Metadata(&'a str),
    DetailedMetadata(&'a str),
    Delete(&'a str),
    Undelete(&'a str),
    Destroy(&'a str),
    Subkeys(&'a str),
    /// `data`, `metadata`, `delete`, `undelete` or `destroy` without a trailing slash.
    BareRoot,
    /// Anything else (including KV v1-style paths).
    Invalid,
}

pub(crate) fn route(path: &str) -> Route<'_> {
    if path == "config" {
        return Route::Config;
    }
    if matches!(
        path,
        "data" | "metadata" | "delete" | "undelete" | "destroy"
    ) {
        return Route::BareRoot;
    }
    let Some((head, rest)) = path.split_once('/') else {
        return Route::Invalid;
    };
    match head {
        "data" => Route::Data(rest),
        "metadata" => Route::Metadata(rest),
        "detailed-metadata" => Route::DetailedMetadata(rest),
        "delete" => Route::Delete(rest),
        "undelete" => Route::Undelete(rest),
        "destroy" => Route::Destroy(rest),
        "subkeys" => Route::Subkeys(rest),
        _ => Route::Invalid,
    }
}

/// OpenBao answers a bare endpoint root with 404, no data and this warning.
pub(crate) fn bare_root() -> Response {
    not_found_with_warning(
        "Non-listing operations on the root of a K/V v2 mount are not supported.".into(),
    )
}

/// OpenBao's answer to a path that is no KV v2 endpoint: 404 with a hint at the CLI command.
pub(crate) fn invalid_path(operation: Operation) -> Response {
    let command = match operation {
        Operation::Create | Operation::Update => "put",
        Operation::Patch => "patch",
        Operation::Read => "get",
        Operation::List => "list",
        Operation::Scan => "scan",
        Operation::Delete => "delete",
    };
    not_found_with_warning(format!(
        "Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate \
         API endpoints to use. If using the OpenBao CLI, use 'bao kv {command}' for this operation."
    ))
}

fn not_found_with_warning(warning: String) -> Response {
    Response {
        warnings: vec![warning],
        status_override: Some(404),
        ..Response::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route("config"), Route::Config);
        assert_eq!(route("data/a/b"), Route::Data("a/b"));
        assert_eq!(route("data/"), Route::Data(""));
        assert_eq!(route("metadata/"), Route::Metadata(""));
        assert_eq!(route("detailed-metadata/x/"), Route::DetailedMetadata("x/"));
        assert_eq!(route("subkeys/x"), Route::Subkeys("x"));
        assert_eq!(route("data"), Route::BareRoot);
        assert_eq!(route("config/"), Route::Invalid);
        assert_eq!(route("foo"), Route::Invalid);
        assert_eq!(route(""), Route::Invalid);
        assert_eq!(route("detailed-metadata"), Route::Invalid);
    }
}
