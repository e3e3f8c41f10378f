//! The `weft` host imports (`call`, `result`) and the [`HostServices`] the host server
//! implements behind them.
//!
//! A guest sends one JSON request per `weft.call`; the answer (`{"ok":…}` or
//! `{"error":{"code":"…","message":"…"}}`) is kept in the store until the guest copies it
//! out with `weft.result`. New ops never change the import list.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use wasmtime::{Caller, Linker, Memory};
use weft_abi::{FetchResponse, HostRequest, KeyArgs, KvListArgs, KvSetArgs, LogArgs, Refusal, TaskQueueArgs, code};

use crate::invoke::{LimitExceeded, StoreState};

/// Severity of a log line (the contract's own type).
pub use weft_abi::LogLevel;

/// One line of an invocation's logs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// Severity.
    pub level: LogLevel,
    /// The text.
    pub message: String,
    /// When it was logged, in milliseconds since the Unix epoch.
    pub timestamp: i64,
}

impl LogLine {
    pub(crate) fn now(level: LogLevel, message: String) -> Self {
        let timestamp = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        Self { level, message, timestamp }
    }
}

/// A host operation that did not succeed; the guest receives it as
/// `{"error":{"code":…,"message":…}}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct HostError {
    /// A short snake_case class, e.g. `not_allowed`, `too_large`, `unsupported`.
    pub code: String,
    /// Details for the author.
    pub message: String,
}

impl HostError {
    /// A host error of class `code`.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self { code: code.into(), message: message.into() }
    }

    /// The op is not offered by this host.
    pub fn unsupported(op: &str) -> Self {
        Self::new("unsupported", format!("the `{op}` operation is not available on this host"))
    }
}

/// An outbound HTTP request from a guest (`http.fetch`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundRequest {
    /// HTTP method.
    pub method: String,
    /// Absolute URL.
    pub url: String,
    /// Request headers.
    pub headers: BTreeMap<String, String>,
    /// Request body.
    pub body: Vec<u8>,
}

/// The answer to an [`OutboundRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundResponse {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: BTreeMap<String, String>,
    /// Response body.
    pub body: Vec<u8>,
}

/// What a guest may reach beyond its own sandbox, implemented by the host server for one
/// invocation (it knows which integration and installation it runs for).
///
/// Every method has a default that answers `unsupported`, so a host can offer ops one by one.
#[async_trait::async_trait]
pub trait HostServices: Send + Sync + 'static {
    /// `kv.get`: the stored value, if any.
    async fn kv_get(&self, key: &str) -> Result<Option<Value>, HostError> {
        let _ = key;
        Err(HostError::unsupported("kv.get"))
    }

    /// `kv.set`: store a value.
    async fn kv_set(&self, key: &str, value: Value) -> Result<(), HostError> {
        let _ = (key, value);
        Err(HostError::unsupported("kv.set"))
    }

    /// `kv.delete`: remove a value (absent keys are fine).
    async fn kv_delete(&self, key: &str) -> Result<(), HostError> {
        let _ = key;
        Err(HostError::unsupported("kv.delete"))
    }

    /// `kv.list`: the keys starting with `prefix`, sorted.
    async fn kv_list(&self, prefix: &str) -> Result<Vec<String>, HostError> {
        let _ = prefix;
        Err(HostError::unsupported("kv.list"))
    }

    /// `task.queue`: run `task` as a `task` event `schedule_secs` from now.
    async fn queue_task(&self, task: Value, schedule_secs: u32) -> Result<(), HostError> {
        let _ = (task, schedule_secs);
        Err(HostError::unsupported("task.queue"))
    }

    /// `http.fetch`: an outbound HTTP request, subject to the host's policy.
    async fn fetch(&self, request: OutboundRequest) -> Result<OutboundResponse, HostError> {
        let _ = request;
        Err(HostError::unsupported("http.fetch"))
    }
}

/// Host services that offer nothing beyond logging.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHostServices;

impl HostServices for NoHostServices {}

/// Adds `weft.call` and `weft.result` to `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<StoreState>) -> wasmtime::Result<()> {
    linker.func_wrap_async("weft", "call", |mut caller: Caller<'_, StoreState>, (ptr, len): (i32, i32)| {
        Box::new(async move { call(&mut caller, ptr, len).await })
    })?;
    linker.func_wrap("weft", "result", |mut caller: Caller<'_, StoreState>, ptr: i32| -> wasmtime::Result<()> {
        let memory = guest_memory(&mut caller)?;
        let (data, state) = memory.data_and_store_mut(&mut caller);
        let result = &state.last_result;
        let start = ptr as u32 as usize;
        let target = data
            .get_mut(start..start + result.len())
            .ok_or_else(|| wasmtime::Error::msg("weft.result: buffer lies outside guest memory"))?;
        target.copy_from_slice(result);
        Ok(())
    })?;
    Ok(())
}

pub(crate) fn guest_memory(caller: &mut Caller<'_, StoreState>) -> wasmtime::Result<Memory> {
    if let Some(memory) = caller.data().memory {
        return Ok(memory);
    }
    caller
        .get_export("memory")
        .and_then(|export| export.into_memory())
        .ok_or_else(|| wasmtime::Error::msg("guest exports no memory"))
}

async fn call(caller: &mut Caller<'_, StoreState>, ptr: i32, len: i32) -> wasmtime::Result<i64> {
    let state = caller.data_mut();
    state.host_calls += 1;
    if state.host_calls > state.limits.host_calls {
        return Err(wasmtime::Error::new(LimitExceeded::HostCalls(state.limits.host_calls)));
    }
    let max_request = state.limits.output_bytes;
    let memory = guest_memory(caller)?;
    let (start, len) = (ptr as u32 as usize, len as u32 as usize);
    if len > max_request {
        return Ok(code::BAD_REQUEST);
    }
    let Some(bytes) = memory.data(&*caller).get(start..start + len) else {
        return Ok(code::BAD_POINTER);
    };
    let Some(request) = HostRequest::parse(bytes) else {
        return Ok(code::BAD_REQUEST);
    };
    let encoded = match perform(caller.data_mut(), request).await? {
        Ok(value) => weft_abi::ok_answer(&value),
        Err(error) => weft_abi::error_answer(&error.code, &error.message),
    };
    let len = encoded.len() as i64;
    caller.data_mut().last_result = encoded;
    Ok(len)
}

impl From<Refusal> for HostError {
    fn from(refusal: Refusal) -> Self {
        HostError::new(refusal.code, refusal.message)
    }
}

/// Runs one op: the contract's checks first (weft-abi), then the host's services. The outer
/// error ends the invocation (a limit was exceeded); the inner one is handed back to the guest.
async fn perform(state: &mut StoreState, request: HostRequest) -> wasmtime::Result<Result<Value, HostError>> {
    let host = state.host.clone();
    Ok(match request {
        HostRequest::Log(LogArgs { level, message }) => {
            state.push_log(level, message);
            Ok(Value::Null)
        }
        HostRequest::KvGet(KeyArgs { key }) => match weft_abi::check_key(&key) {
            Ok(()) => host.kv_get(&key).await.map(|v| v.unwrap_or(Value::Null)),
            Err(refusal) => Err(refusal.into()),
        },
        HostRequest::KvSet(KvSetArgs { key, value }) => {
            match weft_abi::check_key(&key).and_then(|()| weft_abi::check_value(&value)) {
                Ok(_) => host.kv_set(&key, value).await.map(|()| Value::Null),
                Err(refusal) => Err(refusal.into()),
            }
        }
        HostRequest::KvDelete(KeyArgs { key }) => match weft_abi::check_key(&key) {
            Ok(()) => host.kv_delete(&key).await.map(|()| Value::Null),
            Err(refusal) => Err(refusal.into()),
        },
        HostRequest::KvList(KvListArgs { prefix }) => host.kv_list(&prefix).await.map(|keys| json!(keys)),
        HostRequest::TaskQueue(TaskQueueArgs { task, schedule }) => {
            let queued = match weft_abi::check_task(&task, schedule) {
                Ok(()) => host.queue_task(task, schedule).await.map(|()| Value::Null),
                Err(refusal) => Err(refusal.into()),
            };
            if let Err(error) = &queued {
                // A refused task (a quota, a bad schedule) is in the event's logs, not only the guest's hands.
                state.push_log(LogLevel::Warn, weft_abi::task_refused_log(&error.code, &error.message));
            }
            queued
        }
        HostRequest::HttpFetch(request) => {
            state.outbound_requests += 1;
            if state.outbound_requests > state.limits.outbound_requests {
                return Err(wasmtime::Error::new(LimitExceeded::OutboundRequests(state.limits.outbound_requests)));
            }
            match weft_abi::decode_body(request.body.as_deref()) {
                Ok(body) => {
                    let request =
                        OutboundRequest { method: request.method, url: request.url, headers: request.headers, body };
                    host.fetch(request).await.map(|response| {
                        json!(FetchResponse {
                            status: response.status,
                            headers: response.headers,
                            body: weft_abi::encode_body(&response.body),
                        })
                    })
                }
                Err(refusal) => Err(refusal.into()),
            }
        }
    })
}
