//! `?page=&limit=` paging and the `{"items":[…],"next":{"page":"…"},"count":N}` shape.

use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiError;

/// The paging query parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// Opaque cursor from a previous answer's `next.page`.
    pub page: Option<String>,
    /// Results per page, 1–1000 (default 100).
    pub limit: Option<i64>,
}

impl PageQuery {
    /// The validated limit.
    pub fn limit(&self) -> Result<i64, ApiError> {
        match self.limit {
            None => Ok(100),
            Some(limit @ 1..=1000) => Ok(limit),
            Some(other) => Err(ApiError::bad_request(format!("limit must be between 1 and 1000, got {other}"))),
        }
    }

    /// The cursor, or `""` for the first page.
    pub fn cursor(&self) -> &str {
        self.page.as_deref().unwrap_or("")
    }
}

/// A list answer. `next` is present when `items` filled the page and `last_key` says where
/// the next page starts.
pub fn list(items: Vec<Value>, limit: i64, last_key: Option<String>, count: i64) -> Value {
    let mut body = json!({ "items": items, "count": count });
    if body["items"].as_array().map_or(0, Vec::len) as i64 == limit
        && let Some(key) = last_key
    {
        body["next"] = json!({ "page": key });
    }
    body
}
