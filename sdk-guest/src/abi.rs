//! The guest ABI: the glue between the host's raw exports/imports and [`Handler`].
//!
//! # v2 (what [`export_handler!`](crate::export_handler) emits)
//!
//! The module exports `weft_buffer() -> i64` (`(ptr << 32) | capacity` of a static input
//! buffer, the same in every instance), `weft_reserve(len) -> i32` (room for a bigger
//! input) and `weft_run(len) -> i64`. Per event the host writes the input into the buffer
//! and makes one call: `[u32 event_len][u32 environment_len][event JSON][environment
//! JSON][body bytes]`, the event being the v1 event without the request body, which follows
//! as raw bytes. The outcome is `[u32 header_len][header JSON][body bytes]` (see
//! [`dispatch_v2`]). weft pre-initialises the module at publish, so no `_initialize` runs
//! per event.
//!
//! # v1 (still run by the host; [`dispatch`] and [`testing`](crate::testing) use its JSON)
//!
//! The module is a WASI preview 1 reactor exporting `memory`,
//! `weft_alloc(len: i32) -> i32` and `weft_handle(ptr: i32, len: i32) -> i64` (emitted by
//! [`export_handler!`](crate::export_handler)). The host allocates `len` bytes with
//! `weft_alloc`, writes the invocation JSON `{"abi":1,"event":{…},"environment":{…}}`
//! there and calls `weft_handle`, which returns `(out_ptr << 32) | out_len` of the outcome
//! JSON (read the `i64` as `u64` bits). The outcome stays valid in guest memory until the
//! next `weft_handle` call.
//!
//! [`dispatch`] is the whole contract in bytes-in, bytes-out form; the wasm exports and
//! [`testing::invoke`](crate::testing::invoke) both run it.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::handler::{Handler, Outcome};
use crate::{Environment, Error, Event};

mod one_pass;

/// The ABI version the modules this SDK builds speak.
pub const ABI_VERSION: u64 = 2;

/// The version of the JSON invocation [`dispatch`] reads (its `abi` field): v1's form.
pub const JSON_ABI_VERSION: u64 = 1;

/// Capacity of the static input buffer: inputs up to this size need no allocation.
pub const INPUT_BUFFER_BYTES: usize = 64 << 10;

/// Handles one ABI v2 input (`[u32 event_len][u32 environment_len][event][environment][body]`)
/// and returns the v2 outcome (`[u32 header_len][header JSON][body]`). A malformed input
/// yields an error outcome with code 500; it never panics on bad input.
pub fn dispatch_v2<H: Handler + ?Sized>(handler: &H, input: &[u8]) -> Vec<u8> {
    let outcome = match parse_v2(input) {
        Ok((event, env)) => Outcome::of(handler, event, &env),
        Err(err) => Outcome::Error(err),
    };
    outcome.to_v2_bytes()
}

fn parse_v2(input: &[u8]) -> Result<(Event, Environment), Error> {
    let invalid = |what: &str| Error::internal(format!("invalid input: {what}"));
    let (Some(event_len), Some(env_len)) = (input.get(..4), input.get(4..8)) else {
        return Err(invalid("shorter than its 8-byte header"));
    };
    let event_len = u32::from_le_bytes(event_len.try_into().expect("4 bytes")) as usize;
    let env_len = u32::from_le_bytes(env_len.try_into().expect("4 bytes")) as usize;
    let rest = &input[8..];
    if event_len.saturating_add(env_len) > rest.len() {
        return Err(invalid("lengths past its end"));
    }
    let (event, rest) = rest.split_at(event_len);
    let (env, body) = rest.split_at(env_len);
    let mut event = Event::from_slice(event)?;
    if let Event::Fetch(fetch) = &mut event {
        fetch.request.body = body.to_vec();
    }
    Ok((event, environment(env).map_err(|what| invalid(&format!("environment: {what}")))?))
}

/// The environment of an event from its JSON text, read lazily (see [`Environment`]): only
/// whether it is an object (or empty, or `null`) is checked here.
fn environment(json: &[u8]) -> Result<Environment, &'static str> {
    if json.is_empty() || json == b"null" {
        Ok(Environment::default())
    } else if !crate::codec::is_object(json) {
        Err("not an object")
    } else {
        std::str::from_utf8(json).map(Environment::from_json).map_err(|_| "not UTF-8")
    }
}

/// Handles one invocation: parses the invocation JSON, runs `handler`, and returns the
/// outcome JSON. A malformed invocation (or another `abi` version) yields an error
/// outcome with code 500; it never panics on bad input.
pub fn dispatch<H: Handler + ?Sized>(handler: &H, invocation: &[u8]) -> Vec<u8> {
    let outcome = match parse_invocation(invocation) {
        Ok((event, env)) => Outcome::of(handler, event, &env),
        Err(err) => Outcome::Error(err),
    };
    outcome.to_bytes()
}

fn parse_invocation(invocation: &[u8]) -> Result<(Event, Environment), Error> {
    if !crate::codec::is_object(invocation) {
        return Err(Error::internal("invalid invocation: not an object"));
    }
    // What the weft host sends decodes in one pass; anything else (and every error) takes
    // the general path, which reads the ABI version before the rest.
    match one_pass::parse(invocation) {
        Some(parsed) => Ok(parsed),
        None => parse_in_parts(invocation),
    }
}

/// The invocation's top level, for the general path. The event and environment stay
/// unparsed text until the ABI version is known to be ours; each is then decoded straight
/// into its typed form.
#[derive(Deserialize)]
struct WireInvocation<'a> {
    #[serde(borrow, default)]
    abi: Option<&'a RawValue>,
    #[serde(borrow, default)]
    event: Option<&'a RawValue>,
    #[serde(borrow, default)]
    environment: Option<&'a RawValue>,
}

/// The general path: the top level first, then the event and the environment, each from
/// its own text.
fn parse_in_parts(invocation: &[u8]) -> Result<(Event, Environment), Error> {
    let invalid = |what: &dyn std::fmt::Display| Error::internal(format!("invalid invocation: {what}"));
    let wire: WireInvocation<'_> = serde_json::from_slice(invocation).map_err(|err| invalid(&err))?;
    if let Some(abi) = wire.abi
        && abi.get().parse::<u64>().ok() != Some(JSON_ABI_VERSION)
    {
        return Err(Error::internal(format!(
            "unsupported abi version {abi} (this guest reads {JSON_ABI_VERSION} invocation JSON)"
        )));
    }
    let env = match wire.environment {
        None => Environment::default(),
        Some(env) => environment(env.get().as_bytes()).map_err(|what| invalid(&format_args!("environment: {what}")))?,
    };
    let event = wire.event.ok_or_else(|| invalid(&"missing `event`"))?;
    Ok((Event::from_slice(event.get().as_bytes())?, env))
}

/// Packs an outcome location as the `weft_handle` return value: `(ptr << 32) | len`.
pub fn pack(ptr: u32, len: u32) -> i64 {
    ((u64::from(ptr) << 32) | u64::from(len)) as i64
}

#[cfg(target_arch = "wasm32")]
mod wasm {
    use std::alloc::Layout;
    use std::sync::Mutex;

    use super::*;

    /// Allocations made by `weft_alloc` and not yet freed: (pointer, size).
    static ALLOCATIONS: Mutex<Vec<(usize, usize)>> = Mutex::new(Vec::new());
    /// The last outcome; kept alive until the next `weft_handle`.
    static OUTPUT: Mutex<Vec<u8>> = Mutex::new(Vec::new());

    fn layout(size: usize) -> Option<Layout> {
        Layout::from_size_align(size.max(1), 1).ok()
    }

    /// `weft_alloc`: a pointer to `len` writable bytes, or 0.
    #[doc(hidden)]
    pub fn alloc(len: i32) -> i32 {
        let Ok(size) = usize::try_from(len) else {
            return 0;
        };
        let Some(layout) = layout(size) else {
            return 0;
        };
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { std::alloc::alloc(layout) };
        if ptr.is_null() {
            return 0;
        }
        if let Ok(mut allocations) = ALLOCATIONS.lock() {
            allocations.push((ptr as usize, size));
        }
        ptr as usize as i32
    }

    /// `weft_handle`: dispatches the invocation at `[ptr, ptr + len)`.
    ///
    /// # Safety
    ///
    /// `[ptr, ptr + len)` must be readable guest memory (the host got it from `alloc`).
    #[doc(hidden)]
    pub unsafe fn handle<H: Handler + ?Sized>(handler: &H, ptr: i32, len: i32) -> i64 {
        let start = ptr as u32 as usize;
        let len = len.max(0) as usize;
        let input: &[u8] = if start == 0 || len == 0 {
            &[]
        } else {
            // SAFETY: guaranteed by the caller.
            unsafe { std::slice::from_raw_parts(start as *const u8, len) }
        };
        let outcome = dispatch(handler, input);
        free(start);
        let mut output = OUTPUT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *output = outcome;
        pack(output.as_ptr() as usize as u32, output.len() as u32)
    }

    /// Frees a `weft_alloc` allocation starting at `start`, if there is one.
    fn free(start: usize) {
        let Ok(mut allocations) = ALLOCATIONS.lock() else {
            return;
        };
        if let Some(index) = allocations.iter().position(|&(ptr, _)| ptr == start) {
            let (ptr, size) = allocations.swap_remove(index);
            if let Some(layout) = layout(size) {
                // SAFETY: allocated by `alloc` with this layout and not freed since.
                unsafe { std::alloc::dealloc(ptr as *mut u8, layout) };
            }
        }
    }
}

#[cfg(target_arch = "wasm32")]
mod wasm_v2 {
    use std::cell::UnsafeCell;
    use std::sync::Mutex;

    use super::*;

    /// The input buffer: static, so its address is fixed at link time and the host learns
    /// it once per module.
    struct Buffer(UnsafeCell<[u8; INPUT_BUFFER_BYTES]>);
    // SAFETY: wasm32 guests are single-threaded; the host writes the buffer only between calls.
    unsafe impl Sync for Buffer {}
    static BUFFER: Buffer = Buffer(UnsafeCell::new([0; INPUT_BUFFER_BYTES]));
    /// An input bigger than the buffer, made by `reserve` for the next `run`.
    static LARGE: Mutex<Vec<u8>> = Mutex::new(Vec::new());
    /// The last outcome; kept alive until the next `run`.
    static OUTPUT: Mutex<Vec<u8>> = Mutex::new(Vec::new());

    /// `weft_buffer`.
    #[doc(hidden)]
    pub fn buffer() -> i64 {
        pack(BUFFER.0.get() as usize as u32, INPUT_BUFFER_BYTES as u32)
    }

    /// `weft_reserve`: room for `len` bytes, or 0.
    #[doc(hidden)]
    pub fn reserve(len: i32) -> i32 {
        let Ok(len) = usize::try_from(len) else { return 0 };
        let mut large = LARGE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        large.clear();
        if large.try_reserve_exact(len).is_err() {
            return 0;
        }
        large.resize(len, 0);
        large.as_mut_ptr() as usize as i32
    }

    /// `weft_run`: dispatches the `len`-byte input.
    #[doc(hidden)]
    pub fn run<H: Handler + ?Sized>(handler: &H, len: i32) -> i64 {
        let len = len.max(0) as usize;
        let large = std::mem::take(&mut *LARGE.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
        let outcome = if len <= INPUT_BUFFER_BYTES {
            // SAFETY: the host wrote `len` bytes into the buffer and calls nothing else meanwhile.
            let buffer: &[u8; INPUT_BUFFER_BYTES] = unsafe { &*BUFFER.0.get() };
            dispatch_v2(handler, &buffer[..len])
        } else {
            dispatch_v2(handler, large.get(..len).unwrap_or(&[]))
        };
        let mut output = OUTPUT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *output = outcome;
        pack(output.as_ptr() as usize as u32, output.len() as u32)
    }
}

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub use wasm::{alloc, handle};
#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub use wasm_v2::{buffer, reserve, run};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Request, Response, Result};
    use serde_json::{Value, json};

    struct Echo;

    impl Handler for Echo {
        fn fetch(&self, req: Request, env: &Environment) -> Result<Option<Response>> {
            match req.path.as_str() {
                "/echo" => Ok(Some(Response::json(&json!({
                    "method": req.method,
                    "configuration": env.configuration(),
                }))?)),
                "/fail" => Err(Error::bad_request("nope")),
                "/bad-status" => Ok(Some(Response::new(1000))),
                "/bad-error" => Err(Error::new(302, "moved")),
                _ => Ok(None),
            }
        }
    }

    fn run(invocation: Value) -> Value {
        let out = dispatch(&Echo, &serde_json::to_vec(&invocation).unwrap());
        serde_json::from_slice(&out).unwrap()
    }

    fn v2_input(event: &Value, env: &[u8], body: &[u8]) -> Vec<u8> {
        let event = serde_json::to_vec(event).unwrap();
        let mut input = (event.len() as u32).to_le_bytes().to_vec();
        input.extend_from_slice(&(env.len() as u32).to_le_bytes());
        input.extend_from_slice(&event);
        input.extend_from_slice(env);
        input.extend_from_slice(body);
        input
    }

    fn v2_outcome(bytes: &[u8]) -> (Value, Vec<u8>) {
        let len = u32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize;
        (serde_json::from_slice(&bytes[4..4 + len]).unwrap(), bytes[4 + len..].to_vec())
    }

    struct Body;

    impl Handler for Body {
        fn fetch(&self, req: Request, env: &Environment) -> Result<Option<Response>> {
            let mut body = req.body.clone();
            body.extend_from_slice(env.configuration()["suffix"].as_str().unwrap_or("").as_bytes());
            Ok(Some(Response::new(201).with_header("x-path", &req.path).with_body(body)))
        }
    }

    #[test]
    fn v2_bodies_cross_as_raw_bytes_beside_the_json() {
        let event = json!({"type": "fetch", "eventId": "e", "request": {"method": "POST", "path": "/p"}});
        let env = br#"{"installation":{"id":"i","configuration":{"suffix":"!"}}}"#;
        let out = dispatch_v2(&Body, &v2_input(&event, env, b"\xff\x00raw"));
        let (head, body) = v2_outcome(&out);
        assert_eq!(head, json!({"response": {"status": 201, "headers": {"x-path": "/p"}}}));
        assert_eq!(body, b"\xff\x00raw!");
    }

    #[test]
    fn v2_errors_and_empty_outcomes_have_no_body() {
        let event = json!({"type": "fetch", "eventId": "e", "request": {"path": "/fail"}});
        let (head, body) = v2_outcome(&dispatch_v2(&Echo, &v2_input(&event, b"", b"")));
        assert_eq!((head, body.is_empty()), (json!({"error": {"code": 400, "message": "nope"}}), true));
        let event = json!({"type": "task", "eventId": "e", "task": {}});
        assert_eq!(v2_outcome(&dispatch_v2(&Echo, &v2_input(&event, b"{}", b""))), (json!({}), vec![]));
    }

    #[test]
    fn malformed_v2_inputs_produce_500_error_outcomes() {
        let mut lying = v2_input(&json!({"type": "task"}), b"{}", b"");
        lying[..4].copy_from_slice(&1000u32.to_le_bytes());
        for input in [vec![], vec![1, 2, 3], lying, v2_input(&json!({"type": "task"}), b"[]", b"")] {
            let (head, _) = v2_outcome(&dispatch_v2(&Echo, &input));
            assert_eq!(head["error"]["code"], 500, "{input:?}");
        }
    }

    #[test]
    fn pack_puts_the_pointer_in_the_high_bits() {
        assert_eq!(pack(0x10, 0x20), 0x10_0000_0020);
        assert_eq!(pack(u32::MAX, 1) as u64, 0xffff_ffff_0000_0001);
    }

    #[test]
    fn a_handled_fetch_produces_a_response_outcome() {
        let out = run(json!({
            "abi": 1,
            "event": {"eventId": "e", "type": "fetch", "request": {"method": "GET", "path": "/echo"}},
            "environment": {"installation": {"id": "i", "configuration": {"a": 1}}},
        }));
        let body = json!({"method": "GET", "configuration": {"a": 1}}).to_string();
        assert_eq!(
            out,
            json!({"response": {
                "status": 200,
                "headers": {"content-type": "application/json"},
                "body": crate::codec::encode(body.as_bytes()),
            }})
        );
    }

    #[test]
    fn an_unhandled_fetch_produces_an_empty_outcome() {
        let out = run(json!({
            "abi": 1,
            "event": {"eventId": "e", "type": "fetch", "request": {"method": "GET", "path": "/other"}},
            "environment": {},
        }));
        assert_eq!(out, json!({}));
    }

    #[test]
    fn handler_errors_produce_an_error_outcome_with_the_status() {
        let out = run(json!({
            "abi": 1,
            "event": {"eventId": "e", "type": "fetch", "request": {"path": "/fail"}},
        }));
        assert_eq!(out, json!({"error": {"code": 400, "message": "nope"}}));
    }

    #[test]
    fn statuses_the_host_would_reject_become_500s() {
        let fetch =
            |path: &str| run(json!({"abi": 1, "event": {"eventId": "e", "type": "fetch", "request": {"path": path}}}));
        assert_eq!(
            fetch("/bad-status"),
            json!({"error": {"code": 500, "message": "handler answered with invalid status 1000"}})
        );
        assert_eq!(fetch("/bad-error"), json!({"error": {"code": 500, "message": "moved"}}));
    }

    #[test]
    fn default_methods_produce_empty_outcomes() {
        for kind in ["task", "installation_setup", "site_installation_deleted", "custom"] {
            let out = run(json!({"abi": 1, "event": {"eventId": "e", "type": kind}, "environment": {}}));
            assert_eq!(out, json!({}), "{kind}");
        }
    }

    #[test]
    fn malformed_invocations_produce_500_error_outcomes() {
        let bad: &[&[u8]] = &[
            b"",
            b"not json",
            b"[]",
            br#"{"abi":1}"#,
            br#"{"abi":2,"event":{"type":"task"}}"#,
            br#"{"abi":1,"event":{"eventId":"e"}}"#,
            br#"{"abi":1,"event":{"type":"task"},"environment":[]}"#,
        ];
        for input in bad {
            let out: Value = serde_json::from_slice(&dispatch(&Echo, input)).unwrap();
            assert_eq!(out["error"]["code"], 500, "{}", String::from_utf8_lossy(input));
            assert!(out["error"]["message"].is_string());
        }
    }
}
