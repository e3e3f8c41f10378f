//! The JSON shapes of host-call requests and answers.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Refusal, error, op};

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Verbose detail.
    Debug,
    /// Normal operation (and the guest's stdout).
    #[default]
    Info,
    /// Something looks wrong.
    Warn,
    /// Something failed (and the guest's stderr).
    Error,
}

/// `log`: `{"op":"log","level":"info","message":"…"}` (`level` defaults to `info`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogArgs {
    /// Severity.
    #[serde(default)]
    pub level: LogLevel,
    /// The line.
    pub message: String,
}

/// `kv.get` and `kv.delete`: `{"key":"…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyArgs {
    /// The key.
    pub key: String,
}

/// `kv.set`: `{"key":"…","value":…}`; a missing value is `null`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KvSetArgs {
    /// The key.
    pub key: String,
    /// Any JSON value.
    #[serde(default)]
    pub value: Value,
}

/// `kv.list`: `{"prefix":"…"}` (missing = every key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvListArgs {
    /// Keys must start with this.
    #[serde(default)]
    pub prefix: String,
}

/// `task.queue`: `{"task":{…},"schedule":secs}` (`schedule` defaults to 0).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskQueueArgs {
    /// The task object.
    pub task: Value,
    /// Delay in seconds.
    #[serde(default)]
    pub schedule: u32,
}

/// `http.fetch`'s `request`: the body is base64 text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchRequest {
    /// HTTP method (default `GET`).
    #[serde(default = "default_method")]
    pub method: String,
    /// Absolute URL.
    pub url: String,
    /// Request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Base64 body; absent = no body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

fn default_method() -> String {
    "GET".to_owned()
}

/// `http.fetch`'s `ok` answer: the body is base64 text, always present.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchResponse {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Base64 body.
    #[serde(default)]
    pub body: String,
}

#[derive(Deserialize)]
struct HttpFetchArgs {
    request: FetchRequest,
}

#[derive(Deserialize)]
struct Op<'a> {
    #[serde(borrow)]
    op: std::borrow::Cow<'a, str>,
}

/// One parsed `weft.call` request.
#[derive(Debug, Clone, PartialEq)]
pub enum HostRequest {
    /// `log`
    Log(LogArgs),
    /// `kv.get`
    KvGet(KeyArgs),
    /// `kv.set`
    KvSet(KvSetArgs),
    /// `kv.delete`
    KvDelete(KeyArgs),
    /// `kv.list`
    KvList(KvListArgs),
    /// `task.queue`
    TaskQueue(TaskQueueArgs),
    /// `http.fetch`
    HttpFetch(FetchRequest),
}

impl HostRequest {
    /// Parses `{"op":"…", <the op's fields>}`: the op first, then only the fields that op
    /// takes. `None` is answered with [`code::BAD_REQUEST`](crate::code::BAD_REQUEST).
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        let op: Op<'_> = serde_json::from_slice(bytes).ok()?;
        fn args<'a, T: Deserialize<'a>>(bytes: &'a [u8], op: fn(T) -> HostRequest) -> Option<HostRequest> {
            serde_json::from_slice(bytes).ok().map(op)
        }
        match op.op.as_ref() {
            op::LOG => args(bytes, HostRequest::Log),
            op::KV_GET => args(bytes, HostRequest::KvGet),
            op::KV_SET => args(bytes, HostRequest::KvSet),
            op::KV_DELETE => args(bytes, HostRequest::KvDelete),
            op::KV_LIST => args(bytes, HostRequest::KvList),
            op::TASK_QUEUE => args(bytes, HostRequest::TaskQueue),
            op::HTTP_FETCH => args(bytes, |a: HttpFetchArgs| HostRequest::HttpFetch(a.request)),
            _ => None,
        }
    }
}

/// `{"ok":value}`.
pub fn ok_answer(value: &Value) -> Vec<u8> {
    #[derive(Serialize)]
    struct Ok<'a> {
        ok: &'a Value,
    }
    serde_json::to_vec(&Ok { ok: value }).expect("JSON values always encode")
}

/// `{"error":{"code":…,"message":…}}`.
pub fn error_answer(code: &str, message: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "error": { "code": code, "message": message } }))
        .expect("JSON values always encode")
}

/// Decodes a request body (strict standard base64, padded).
pub fn decode_body(body: Option<&str>) -> Result<Vec<u8>, Refusal> {
    match body {
        Some(body) => BASE64
            .decode(body)
            .map_err(|e| Refusal { code: error::BAD_REQUEST, message: format!("request body is not base64: {e}") }),
        None => Ok(Vec::new()),
    }
}

/// Encodes a response body.
pub fn encode_body(body: &[u8]) -> String {
    BASE64.encode(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_requests_parse_by_op_and_refuse_what_the_op_cannot_take() {
        let parse = |json: &str| HostRequest::parse(json.as_bytes());
        assert!(matches!(
            parse(r#"{"message":"hi","op":"log","level":"warn"}"#),
            Some(HostRequest::Log(LogArgs { level: LogLevel::Warn, message })) if message == "hi"
        ));
        assert!(
            matches!(parse(r#"{"op":"kv.get","key":"k"}"#), Some(HostRequest::KvGet(KeyArgs { key })) if key == "k")
        );
        assert!(matches!(
            parse(r#"{"op":"task.queue","task":{"n":1}}"#),
            Some(HostRequest::TaskQueue(TaskQueueArgs { schedule: 0, .. }))
        ));
        assert!(matches!(
            parse(r#"{"op":"http.fetch","request":{"url":"https://example.com"}}"#),
            Some(HostRequest::HttpFetch(request)) if request.method == "GET"
        ));
        for refused in [r#"{"op":"teleport"}"#, r#"{"op":"kv.get"}"#, r#"{"key":"k"}"#, r#"{"op":"log","#, "[]"] {
            assert!(parse(refused).is_none(), "{refused}");
        }
    }
}
