//! The error a handler returns, and that host operations fail with.
//!
//! An [`Error`] carries an HTTP status and a message. Returned from a handler it becomes
//! the outcome `{"error":{"code":<status>,"message":"…"}}` (a status outside 400–599 is
//! sent as 500, the only range the host accepts). Host operations that fail
//! (`kv`, `tasks`, `http::fetch`, …) also return an [`Error`], whose [`Error::kind`] is the
//! host's error code (`"not_allowed"`, `"too_large"`, …), so `?` propagates them as 5xx.

use std::fmt;

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error with an HTTP status code and a message.
///
/// ```
/// use weft_sdk::Error;
///
/// let err = Error::bad_request("missing field `name`");
/// assert_eq!(err.status(), 400);
/// assert_eq!(err.message(), "missing field `name`");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    status: u16,
    message: String,
    kind: Option<String>,
}

impl Error {
    /// An error with any HTTP status.
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Self { status, message: message.into(), kind: None }
    }

    /// 400 Bad Request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, message)
    }

    /// 401 Unauthorized.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(401, message)
    }

    /// 403 Forbidden.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, message)
    }

    /// 404 Not Found.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, message)
    }

    /// 500 Internal Server Error.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, message)
    }

    /// An error reported by the host for operation `op`; `kind` is the host's error code.
    pub(crate) fn host(status: u16, op: &str, kind: &str, message: &str) -> Self {
        Self { status, message: format!("{op} failed: {kind}: {message}"), kind: Some(kind.to_owned()) }
    }

    /// Returns the same error with another HTTP status.
    #[must_use]
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// The HTTP status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// For errors from a host operation, the host's error code (e.g. `"not_allowed"` for a
    /// refused outbound request, `"too_large"` for a kv value over its limit); `None` for
    /// errors made by the guest.
    pub fn kind(&self) -> Option<&str> {
        self.kind.as_deref()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// JSON (de)serialization failures inside a handler are internal errors (500). Helpers
/// that parse client input, such as [`Request::json`](crate::Request::json), return 400.
impl From<serde_json::Error> for Error {
    fn from(err: serde_json::Error) -> Self {
        Self::internal(format!("json: {err}"))
    }
}

/// Invalid base64 is an internal error (500).
impl From<base64::DecodeError> for Error {
    fn from(err: base64::DecodeError) -> Self {
        Self::internal(format!("base64: {err}"))
    }
}

/// Invalid UTF-8 is an internal error (500).
impl From<std::str::Utf8Error> for Error {
    fn from(err: std::str::Utf8Error) -> Self {
        Self::internal(format!("utf-8: {err}"))
    }
}

/// Invalid UTF-8 is an internal error (500).
impl From<std::string::FromUtf8Error> for Error {
    fn from(err: std::string::FromUtf8Error) -> Self {
        Self::internal(format!("utf-8: {err}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_set_the_status() {
        assert_eq!(Error::bad_request("x").status(), 400);
        assert_eq!(Error::unauthorized("x").status(), 401);
        assert_eq!(Error::forbidden("x").status(), 403);
        assert_eq!(Error::not_found("x").status(), 404);
        assert_eq!(Error::internal("x").status(), 500);
        assert_eq!(Error::new(418, "teapot").status(), 418);
        assert_eq!(Error::internal("x").with_status(503).status(), 503);
    }

    #[test]
    fn json_errors_convert_to_internal_errors() {
        let err: Error = serde_json::from_str::<u32>("nope").unwrap_err().into();
        assert_eq!(err.status(), 500);
        assert!(err.message().starts_with("json: "), "{err}");
        assert_eq!(err.kind(), None);
    }

    #[test]
    fn host_errors_keep_the_host_kind() {
        let err = Error::host(502, "http.fetch", "forbidden", "host not allowed");
        assert_eq!(err.status(), 502);
        assert_eq!(err.kind(), Some("forbidden"));
        assert_eq!(err.to_string(), "http.fetch failed: forbidden: host not allowed");
    }
}
