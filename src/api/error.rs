//! The `/v1` error body: `{"error":{"code":N,"message":"…"}}`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::dispatch::DispatchError;
use crate::store::StoreError;

/// An error answer of the `/v1` API.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    /// Seconds the client should wait before trying again (`Retry-After`).
    retry_after: Option<u32>,
}

impl ApiError {
    /// An error with this status and message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into(), retry_after: None }
    }

    /// 503 with `Retry-After`: the server cannot do it now, and nothing was wrong with the
    /// request.
    pub fn unavailable(message: impl Into<String>, retry_after_secs: u32) -> Self {
        Self { retry_after: Some(retry_after_secs), ..Self::new(StatusCode::SERVICE_UNAVAILABLE, message) }
    }

    /// The same error, telling the client to retry after `secs` seconds.
    pub fn with_retry_after(self, secs: u32) -> Self {
        Self { retry_after: Some(secs), ..self }
    }

    /// 400: the request is malformed; the message names the field.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 401: no valid token.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    /// 403: the token may not do this.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    /// 404: no such thing (or not visible to the caller).
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 409: conflicts with existing state.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }

    /// 500: logs the detail, tells the client only that something failed.
    pub fn internal(error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal server error")
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "code": self.status.as_u16(), "message": self.message } });
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        if error.is_unavailable() {
            tracing::warn!(%error, "database unavailable");
            return Self::unavailable("the database is unavailable; retry shortly", 1);
        }
        Self::internal(error)
    }
}

impl From<DispatchError> for ApiError {
    fn from(error: DispatchError) -> Self {
        match error {
            DispatchError::Busy => Self::unavailable("the server is at capacity; retry shortly", 1),
            DispatchError::Saturated(saturated) => {
                Self::new(StatusCode::TOO_MANY_REQUESTS, saturated.to_string()).with_retry_after(1)
            }
            DispatchError::Store(error) => error.into(),
            DispatchError::Module(crate::modules::ModuleError::Store(error)) => error.into(),
            other => Self::internal(other),
        }
    }
}
