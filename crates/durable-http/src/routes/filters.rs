//! The instance filters of `GET /instances` and `DELETE /instances`, and the continuation token.

use axum::Json;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use durable::core::instance::decode_cursor;
use durable::{InstanceQuery, Page, PurgeFilter, RuntimeStatus};
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;

use crate::error::ApiError;
use crate::uri::{percent_decode, percent_encode};

/// Largest page `top` may ask for.
pub(crate) const MAX_TOP: usize = 1000;

/// The request and response header that carries the paging cursor.
pub(crate) const CONTINUATION_HEADER: &str = "x-ms-continuation-token";

/// Query parameters of `GET /instances` and `DELETE /instances`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub(crate) struct Filters {
    /// Comma-separated statuses, any letter case, e.g. `Running,Pending`.
    runtime_status: Option<String>,
    /// Created at or after (RFC 3339, e.g. `2024-05-01T00:00:00Z`).
    created_time_from: Option<String>,
    /// Created before (RFC 3339).
    created_time_to: Option<String>,
    /// Instance ids starting with this text (`GET` only).
    instance_id_prefix: Option<String>,
    /// The orchestration name, exactly (`GET` only).
    name: Option<String>,
    /// Page size, 1 to 1000 (default 100; `GET` only).
    top: Option<usize>,
    /// Include each instance's input (default false; `GET` only).
    show_input: Option<bool>,
}

impl Filters {
    pub(crate) fn show_input(&self) -> bool {
        self.show_input.unwrap_or(false)
    }

    pub(crate) fn query(&self, token: Option<String>) -> Result<InstanceQuery, ApiError> {
        check_top(self.top)?;
        Ok(InstanceQuery {
            statuses: self.statuses()?,
            created_from: time("createdTimeFrom", &self.created_time_from)?,
            created_to: time("createdTimeTo", &self.created_time_to)?,
            name: self.name.clone().filter(|n| !n.is_empty()),
            instance_id_prefix: self.instance_id_prefix.clone().filter(|p| !p.is_empty()),
            page_size: Some(self.top.unwrap_or(100)),
            continuation_token: token,
            fetch_payloads: true,
            // Entities have their own routes.
            entities: Some(false),
        })
    }

    /// A purge filter. At least one filter is required, so a bare `DELETE /instances` cannot
    /// wipe every finished instance by accident; filters a purge cannot apply are refused
    /// rather than ignored.
    pub(crate) fn purge(&self) -> Result<PurgeFilter, ApiError> {
        for (name, set) in [
            ("instanceIdPrefix", self.instance_id_prefix.is_some()),
            ("name", self.name.is_some()),
            ("top", self.top.is_some()),
        ] {
            if set {
                return Err(ApiError::InvalidInput(format!(
                    "{name} is not supported when purging"
                )));
            }
        }
        let filter = PurgeFilter {
            created_from: time("createdTimeFrom", &self.created_time_from)?,
            created_to: time("createdTimeTo", &self.created_time_to)?,
            statuses: self.statuses()?,
        };
        if let Some(live) = filter.statuses.iter().find(|s| !s.is_terminal()) {
            return Err(ApiError::InvalidInput(format!(
                "only finished instances (Completed, Failed, Terminated) can be purged, not {live}"
            )));
        }
        if filter == PurgeFilter::default() {
            return Err(ApiError::InvalidInput(
                "purging needs at least one of createdTimeFrom, createdTimeTo, runtimeStatus"
                    .into(),
            ));
        }
        Ok(filter)
    }

    fn statuses(&self) -> Result<Vec<RuntimeStatus>, ApiError> {
        let Some(list) = &self.runtime_status else {
            return Ok(Vec::new());
        };
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().map_err(ApiError::InvalidInput))
            .collect()
    }
}

/// `top`, when given, must be 1 to [`MAX_TOP`].
pub(crate) fn check_top(top: Option<usize>) -> Result<(), ApiError> {
    match top {
        Some(top) if !(1..=MAX_TOP).contains(&top) => Err(ApiError::InvalidInput(format!(
            "top must be 1 to {MAX_TOP}, not {top}"
        ))),
        _ => Ok(()),
    }
}

/// RFC 3339. A `+` of an offset that arrived decoded as a space is put back.
pub(crate) fn time(name: &str, value: &Option<String>) -> Result<Option<DateTime<Utc>>, ApiError> {
    let Some(text) = value else { return Ok(None) };
    DateTime::parse_from_rfc3339(&text.trim().replace(' ', "+"))
        .map(|t| Some(t.with_timezone(&Utc)))
        .map_err(|e| {
            ApiError::InvalidInput(format!(
                "{name} must be an RFC 3339 time such as 2024-05-01T00:00:00Z ({e})"
            ))
        })
}

/// The opaque form of a store cursor: percent-encoded, so it always fits in a header.
pub(crate) fn encode_token(cursor: &str) -> String {
    percent_encode(cursor)
}

pub(crate) fn decode_token(token: &str) -> Result<String, ApiError> {
    percent_decode(token.trim(), false)
        .filter(|cursor| decode_cursor(cursor).is_some())
        .ok_or_else(|| ApiError::InvalidInput(format!("invalid {CONTINUATION_HEADER}")))
}

/// The store cursor a request's continuation header carries; `None` without one (or a blank
/// one).
pub(crate) fn request_cursor(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(CONTINUATION_HEADER) else {
        return Ok(None);
    };
    let token = value
        .to_str()
        .map_err(|_| ApiError::InvalidInput(format!("invalid {CONTINUATION_HEADER}")))?;
    if token.trim().is_empty() {
        return Ok(None);
    }
    decode_token(token).map(Some)
}

/// A page as a JSON array, with the continuation header when more pages exist.
pub(crate) fn page_response<T, U: Serialize>(page: Page<T>, item: impl Fn(T) -> U) -> Response {
    let items: Vec<U> = page.items.into_iter().map(item).collect();
    let mut response = Json(items).into_response();
    if let Some(cursor) = page.continuation_token
        && let Ok(value) = HeaderValue::from_str(&encode_token(&cursor))
    {
        response.headers_mut().insert(CONTINUATION_HEADER, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use durable::core::instance::encode_cursor;

    #[test]
    fn filters_parse() {
        let f = Filters {
            runtime_status: Some("running, completed".into()),
            created_time_from: Some("2024-05-01T00:00:00 02:00".into()),
            top: Some(5),
            ..Default::default()
        };
        let q = f.query(None).unwrap();
        assert_eq!(
            q.statuses,
            [RuntimeStatus::Running, RuntimeStatus::Completed]
        );
        assert_eq!(
            q.created_from.unwrap().to_rfc3339(),
            "2024-04-30T22:00:00+00:00"
        );
        assert_eq!(q.page_size, Some(5));
        let bad = Filters {
            top: Some(0),
            ..Default::default()
        };
        assert!(bad.query(None).is_err());
    }

    #[test]
    fn tokens_round_trip_and_garbage_is_refused() {
        let cursor = encode_cursor(DateTime::from_timestamp(5, 0).unwrap(), "ü|x y");
        let token = encode_token(&cursor);
        assert!(token.is_ascii());
        assert_eq!(decode_token(&token).unwrap(), cursor);
        assert!(decode_token("garbage").is_err());
    }

    #[test]
    fn purge_needs_a_finished_filter() {
        assert!(Filters::default().purge().is_err());
        let live = Filters {
            runtime_status: Some("Running".into()),
            ..Default::default()
        };
        assert!(live.purge().is_err());
        let done = Filters {
            runtime_status: Some("Completed".into()),
            ..Default::default()
        };
        assert_eq!(done.purge().unwrap().statuses, [RuntimeStatus::Completed]);
    }
}
