//! Host-call transport: one JSON request in, one JSON result out.
//!
//! On wasm32 this is the `weft` import pair `call(ptr, len) -> i64` / `result(ptr)`; on
//! native targets it is the thread-local [`MockHost`](crate::testing::MockHost). Both go
//! through the same encoding and decoding here.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::Error;

pub(crate) use weft_abi::code::{BAD_POINTER as INVALID_MEMORY, BAD_REQUEST as INVALID_REQUEST};

#[cfg(target_arch = "wasm32")]
mod imports {
    #[link(wasm_import_module = "weft")]
    unsafe extern "C" {
        /// Performs one host operation; returns the result length or a negative code.
        #[link_name = "call"]
        pub(super) fn weft_call(ptr: i32, len: i32) -> i64;
        /// Copies the last result into guest memory at `ptr`.
        #[link_name = "result"]
        pub(super) fn weft_result(ptr: i32);
    }
}

/// Sends raw request bytes to the host; returns the raw result bytes or the negative code.
#[cfg(target_arch = "wasm32")]
fn transport(request: &[u8]) -> Result<Vec<u8>, i64> {
    let Ok(len) = i32::try_from(request.len()) else {
        return Err(INVALID_MEMORY);
    };
    // SAFETY: the import only reads `[ptr, ptr + len)`, which is `request`.
    let n = unsafe { imports::weft_call(request.as_ptr() as usize as i32, len) };
    if n < 0 {
        return Err(n);
    }
    let mut buf = vec![0u8; n as usize];
    // SAFETY: `buf` has exactly the `n` bytes the host writes.
    unsafe { imports::weft_result(buf.as_mut_ptr() as usize as i32) };
    Ok(buf)
}

#[cfg(not(target_arch = "wasm32"))]
fn transport(request: &[u8]) -> Result<Vec<u8>, i64> {
    crate::testing::host_call(request)
}

#[derive(Deserialize)]
struct HostError {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// One host-call request on the wire: `{"op":"…", <the op's fields>}`.
#[derive(Serialize)]
struct WireRequest<'a, A> {
    op: &'a str,
    #[serde(flatten)]
    args: A,
}

/// One host-call result on the wire: `{"ok":…}` or `{"error":{…}}`.
#[derive(Deserialize)]
struct WireResult {
    /// `Some(Value::Null)` for `{"ok":null}`: present-but-null is a success.
    #[serde(default, deserialize_with = "present")]
    ok: Option<Value>,
    #[serde(default)]
    error: Option<Value>,
}

fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

/// Performs op `op` with the fields of `args` (anything that serializes as a JSON object)
/// and returns the `ok` value.
///
/// Host-reported failures map to an [`Error`] with status `error_status` whose kind is
/// the host's code; transport failures (negative codes) map to 500 with kinds
/// `invalid_memory` or `invalid_request`.
pub(crate) fn call(op: &str, args: impl Serialize, error_status: u16) -> Result<Value, Error> {
    let request = serde_json::to_vec(&WireRequest { op, args })?;
    let result = transport(&request).map_err(|code| {
        let (kind, message) = match code {
            INVALID_MEMORY => ("invalid_memory", "invalid memory range"),
            INVALID_REQUEST => ("invalid_request", "request not valid json or unknown op"),
            _ => ("unknown", "unknown host error"),
        };
        Error::host(500, op, kind, &format!("{message} ({code})"))
    })?;
    if !crate::codec::is_object(&result) {
        return Err(Error::host(500, op, "invalid_result", "not an object"));
    }
    let result: WireResult =
        serde_json::from_slice(&result).map_err(|err| Error::host(500, op, "invalid_result", &err.to_string()))?;
    if let Some(ok) = result.ok {
        return Ok(ok);
    }
    match result.error {
        Some(error) => {
            let error: HostError = serde_json::from_value(error)
                .unwrap_or(HostError { code: "unknown".to_owned(), message: String::new() });
            Err(Error::host(error_status, op, &error.code, &error.message))
        }
        None => Err(Error::host(500, op, "invalid_result", "neither `ok` nor `error`")),
    }
}
