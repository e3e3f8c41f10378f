//! weft-abi: the host-call contract, defined once.
//!
//! A guest performs a host operation by sending one JSON request, `{"op":"…", <fields>}`,
//! through the `weft.call` import. The host answers with a non-negative length and the
//! result `{"ok":…}` or `{"error":{"code":"…","message":"…"}}`, or with a negative
//! [`code`] when the request cannot be read at all. A per-event limit that is exceeded ends
//! the event (it is not an answer the guest can catch).
//!
//! Both sides use this crate: the runtime (`weft-runtime`) to parse requests, check them and
//! encode answers, and the SDK (`weft-sdk`) to build requests and, in its native
//! `MockHost`, to answer them the same way. [`conformance`] holds the cases both are tested
//! against, so the mock cannot drift from production.

pub mod conformance;
mod wire;

pub use wire::{
    FetchRequest, FetchResponse, HostRequest, KeyArgs, KvListArgs, KvSetArgs, LogArgs, LogLevel, TaskQueueArgs,
    decode_body, encode_body, error_answer, ok_answer,
};

/// Negative return codes of `weft.call`: the request was not answered.
pub mod code {
    /// The request's bytes lie outside guest memory.
    pub const BAD_POINTER: i64 = -1;
    /// The request is not JSON, names an unknown op, lacks a field the op needs, has a field
    /// of the wrong type, or is larger than the event's output limit.
    pub const BAD_REQUEST: i64 = -2;
}

/// The `code` of an `{"error":{…}}` answer.
pub mod error {
    /// The request was read but its values are refused (key length, task shape, body encoding).
    pub const BAD_REQUEST: &str = "bad_request";
    /// A value or collection is over its limit (value size, number of keys, response size).
    pub const TOO_LARGE: &str = "too_large";
    /// The host policy refuses it (outbound host, scheme or address).
    pub const NOT_ALLOWED: &str = "not_allowed";
    /// The outbound request took too long.
    pub const TIMEOUT: &str = "timeout";
    /// The outbound request failed.
    pub const FAILED: &str = "failed";
    /// Storage is temporarily unavailable; trying again may work.
    pub const UNAVAILABLE: &str = "unavailable";
    /// This host does not offer the op.
    pub const UNSUPPORTED: &str = "unsupported";
}

/// The operations, by wire name.
pub mod op {
    /// Append a line to the event's logs.
    pub const LOG: &str = "log";
    /// Read a key of the installation's key-value store.
    pub const KV_GET: &str = "kv.get";
    /// Write a key (any JSON value; `null` is stored as `null`, which reads back like an absent key).
    pub const KV_SET: &str = "kv.set";
    /// Remove a key (absent keys are fine).
    pub const KV_DELETE: &str = "kv.delete";
    /// List keys by prefix, sorted, at most [`MAX_KV_LIST`](crate::limits::MAX_KV_LIST).
    pub const KV_LIST: &str = "kv.list";
    /// Queue a task object to come back as a `task` event.
    pub const TASK_QUEUE: &str = "task.queue";
    /// An outbound HTTP request.
    pub const HTTP_FETCH: &str = "http.fetch";
    /// Every op, in the order above.
    pub const ALL: [&str; 7] = [LOG, KV_GET, KV_SET, KV_DELETE, KV_LIST, TASK_QUEUE, HTTP_FETCH];
}

/// Limits every host enforces the same way.
pub mod limits {
    /// Longest key of the key-value store, in bytes (keys are 1 byte at least).
    pub const MAX_KV_KEY_BYTES: usize = 512;
    /// Largest value of the key-value store (its JSON text), in bytes.
    pub const MAX_KV_VALUE_BYTES: usize = 64 << 10;
    /// Most keys one installation (or integration) may keep.
    pub const MAX_KV_KEYS: usize = 10_000;
    /// Most keys one `kv.list` returns.
    pub const MAX_KV_LIST: usize = 1000;
    /// The longest delay of a queued task: one day, in seconds.
    pub const MAX_SCHEDULE_SECS: u32 = 86_400;
}

/// A refused request: the `{"error":{…}}` answer's code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// One of the [`error`] codes.
    pub code: &'static str,
    /// Details for the author.
    pub message: String,
}

impl Refusal {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
}

/// Checks a key-value key (`kv.get`, `kv.set`, `kv.delete`).
pub fn check_key(key: &str) -> Result<(), Refusal> {
    if key.is_empty() || key.len() > limits::MAX_KV_KEY_BYTES {
        return Err(Refusal::new(error::BAD_REQUEST, format!("keys must be 1–{} bytes", limits::MAX_KV_KEY_BYTES)));
    }
    Ok(())
}

/// Checks a `kv.set` value and returns the JSON text that is stored.
pub fn check_value(value: &serde_json::Value) -> Result<String, Refusal> {
    let text = value.to_string();
    if text.len() > limits::MAX_KV_VALUE_BYTES {
        return Err(Refusal::new(
            error::TOO_LARGE,
            format!("values must be at most {} bytes of JSON", limits::MAX_KV_VALUE_BYTES),
        ));
    }
    Ok(text)
}

/// The refusal for a `kv.set` of a new key past [`limits::MAX_KV_KEYS`].
pub fn too_many_keys() -> Refusal {
    Refusal::new(error::TOO_LARGE, format!("at most {} keys", limits::MAX_KV_KEYS))
}

/// Checks a `task.queue` request: the task is a JSON object, the delay at most a day.
pub fn check_task(task: &serde_json::Value, schedule_secs: u32) -> Result<(), Refusal> {
    if !task.is_object() {
        return Err(Refusal::new(error::BAD_REQUEST, "task must be a JSON object"));
    }
    if schedule_secs > limits::MAX_SCHEDULE_SECS {
        return Err(Refusal::new(
            error::BAD_REQUEST,
            format!("schedule must be between 0 and {} seconds", limits::MAX_SCHEDULE_SECS),
        ));
    }
    Ok(())
}

/// The warning a host logs when it refuses a `task.queue` (so a refused task shows in the
/// event's logs, not only in the guest's hands).
pub fn task_refused_log(code: &str, message: &str) -> String {
    format!("task.queue refused: {code}: {message}")
}
