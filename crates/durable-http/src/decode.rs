//! The API's request decoders as plain functions over raw input, the same code the handlers
//! run. The fuzz targets (`fuzz/`) and the `durable-fuzz` corpus test call them; whatever the
//! input, they answer a value or an [`ApiError`] of a 4xx status, and never panic.

use axum::http::Uri;
use durable::core::limits::check_json;

use crate::error::ApiError;
use crate::extract::{decode_query, parse};
use crate::routes::filters::{Filters, decode_token};
use crate::routes::instances::StatusParams;
use crate::routes::manage::{Reason, RestartParams};

/// A request body as start and raiseEvent read it: the JSON text (`None` for no input), after
/// the engine's depth check.
pub fn body(bytes: &[u8]) -> Result<Option<String>, ApiError> {
    let text = parse(bytes)?;
    if let Some(text) = &text {
        check_json(text).map_err(ApiError::InvalidInput)?;
    }
    Ok(text)
}

/// A query string read by every route that takes one (status, listing, purge, terminate and
/// the other actions, restart), and as a continuation token. Returns each refusal; a query that
/// is not even a URI (hyper refuses those before routing) gives none.
pub fn query(query: &str) -> Vec<ApiError> {
    let Ok(uri) = format!("/?{query}").parse::<Uri>() else {
        return Vec::new();
    };
    let mut refused = Vec::new();
    let mut note = |result: Result<(), ApiError>| {
        if let Err(e) = result {
            refused.push(e);
        }
    };
    note(decode_query::<StatusParams>(&uri).map(drop));
    note(decode_query::<Reason>(&uri).map(drop));
    note(decode_query::<RestartParams>(&uri).map(drop));
    match decode_query::<Filters>(&uri) {
        Ok(filters) => {
            note(filters.query(Some(query.to_string())).map(drop));
            note(filters.query(None).map(drop));
            note(filters.purge().map(drop));
        }
        Err(e) => note(Err(e)),
    }
    note(decode_token(query).map(drop));
    refused
}
