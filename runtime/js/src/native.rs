//! The few functions the prelude cannot write in JavaScript: host calls, randomness,
//! hashes, UTF-8 and base64. They are installed as the global `__native`, which the
//! prelude captures and then deletes.

use std::cell::RefCell;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use rquickjs::{ArrayBuffer, Ctx, Function, Object, Result, TypedArray, Value};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha384, Sha512};

#[link(wasm_import_module = "weft")]
unsafe extern "C" {
    /// One host operation (JSON); the result's length, or a negative error code.
    #[link_name = "call"]
    fn weft_call(ptr: *const u8, len: usize) -> i64;
    /// Copies the last result to `ptr`.
    #[link_name = "result"]
    fn weft_result(ptr: *mut u8);
}

#[link(wasm_import_module = "wasi_snapshot_preview1")]
unsafe extern "C" {
    /// Random bytes from the host, at call time (never from the snapshot).
    fn random_get(buf: *mut u8, len: usize) -> u16;
}

thread_local! {
    /// The event's outcome, once the dispatcher has reported it.
    static OUTCOME: RefCell<Option<Vec<u8>>> = const { RefCell::new(None) };
}

pub(crate) fn begin_event() {
    OUTCOME.with_borrow_mut(|outcome| *outcome = None);
}

pub(crate) fn take_outcome() -> Option<Vec<u8>> {
    OUTCOME.with_borrow_mut(Option::take)
}

/// QuickJS reports a failed allocation as a catchable "out of memory" error; weft reports
/// it as the event's memory limit, so the instance traps (the host sees the refused growth).
pub(crate) fn oom_check(message: &str) {
    if message.contains("out of memory") {
        std::process::abort();
    }
}

/// Performs one host call; `Ok(result bytes)` or `Err(negative code)`.
fn host_call(request: &[u8]) -> std::result::Result<Vec<u8>, i64> {
    // SAFETY: the pointer and length describe `request`.
    let len = unsafe { weft_call(request.as_ptr(), request.len()) };
    if len < 0 {
        return Err(len);
    }
    let mut result = vec![0u8; len as usize];
    // SAFETY: `result` has room for the `len` bytes the host copies.
    unsafe { weft_result(result.as_mut_ptr()) };
    Ok(result)
}

/// Logs a line through the `log` op (used when JavaScript cannot).
pub(crate) fn log(level: &str, message: &str) {
    let request = format!(r#"{{"op":"log","level":"{level}","message":{}}}"#, crate::json_string(message));
    let _ = host_call(request.as_bytes());
}

fn bytes_of<'a>(array: &'a TypedArray<'_, u8>) -> &'a [u8] {
    // SAFETY: the slice is used before any JavaScript runs that could detach or resize it.
    unsafe { array.as_bytes() }.unwrap_or(&[])
}

/// `call(request JSON) -> result JSON string | negative code`.
fn call<'js>(ctx: Ctx<'js>, request: String) -> Result<Value<'js>> {
    match host_call(request.as_bytes()) {
        Ok(result) => {
            let text = String::from_utf8_lossy(&result);
            Ok(rquickjs::String::from_str(ctx, &text)?.into_value())
        }
        Err(code) => Ok(Value::new_number(ctx, code as f64)),
    }
}

/// `finish(header JSON, body bytes)`: the event's outcome.
fn finish(header: String, body: TypedArray<'_, u8>) {
    let outcome = crate::outcome(&header, bytes_of(&body));
    OUTCOME.with_borrow_mut(|slot| *slot = Some(outcome));
}

/// `random(bytes)`: fills a Uint8Array from the host.
fn random(array: TypedArray<'_, u8>) -> Result<()> {
    // SAFETY: the view's bytes are writable guest memory; no JavaScript runs meanwhile.
    if let Some(raw) = array.as_raw() {
        let slice = raw.as_ptr();
        let len = slice.len();
        if len > 0 {
            // SAFETY: `slice` points at `len` bytes of the view.
            unsafe { random_get(slice as *mut u8, len) };
        }
    }
    Ok(())
}

fn digest_with<D: Digest>(data: &[u8]) -> Vec<u8> {
    D::digest(data).to_vec()
}

fn hmac_with<M: Mac + hmac::digest::KeyInit>(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// `digest(name, bytes) -> ArrayBuffer | undefined` (unknown algorithm).
fn digest<'js>(ctx: Ctx<'js>, name: String, data: TypedArray<'js, u8>) -> Result<Value<'js>> {
    let data = bytes_of(&data);
    let out = match name.as_str() {
        "SHA-1" => digest_with::<Sha1>(data),
        "SHA-256" => digest_with::<Sha256>(data),
        "SHA-384" => digest_with::<Sha384>(data),
        "SHA-512" => digest_with::<Sha512>(data),
        _ => return Ok(Value::new_undefined(ctx)),
    };
    Ok(ArrayBuffer::new(ctx, out)?.into_value())
}

/// `hmac(hash name, key, bytes) -> ArrayBuffer | undefined` (unknown hash).
fn hmac<'js>(ctx: Ctx<'js>, name: String, key: TypedArray<'js, u8>, data: TypedArray<'js, u8>) -> Result<Value<'js>> {
    let (key, data) = (bytes_of(&key), bytes_of(&data));
    let out = match name.as_str() {
        "SHA-1" => hmac_with::<Hmac<Sha1>>(key, data),
        "SHA-256" => hmac_with::<Hmac<Sha256>>(key, data),
        "SHA-384" => hmac_with::<Hmac<Sha384>>(key, data),
        "SHA-512" => hmac_with::<Hmac<Sha512>>(key, data),
        _ => return Ok(Value::new_undefined(ctx)),
    };
    Ok(ArrayBuffer::new(ctx, out)?.into_value())
}

/// `utf8Encode(string) -> ArrayBuffer` (lone surrogates become U+FFFD).
fn utf8_encode<'js>(ctx: Ctx<'js>, text: rquickjs::String<'js>) -> Result<ArrayBuffer<'js>> {
    let text = text.to_string()?;
    ArrayBuffer::new(ctx, text.into_bytes())
}

/// `utf8Decode(bytes, fatal) -> string | undefined` (invalid and fatal).
fn utf8_decode<'js>(ctx: Ctx<'js>, data: TypedArray<'js, u8>, fatal: bool) -> Result<Value<'js>> {
    let data = bytes_of(&data);
    let text = if fatal {
        match std::str::from_utf8(data) {
            Ok(text) => std::borrow::Cow::Borrowed(text),
            Err(_) => return Ok(Value::new_undefined(ctx)),
        }
    } else {
        String::from_utf8_lossy(data)
    };
    Ok(rquickjs::String::from_str(ctx, &text)?.into_value())
}

/// `base64Encode(bytes) -> string`.
fn base64_encode(data: TypedArray<'_, u8>) -> String {
    BASE64.encode(bytes_of(&data))
}

/// `base64Decode(string) -> ArrayBuffer | undefined` (not base64).
fn base64_decode<'js>(ctx: Ctx<'js>, text: String) -> Result<Value<'js>> {
    let cleaned: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let padded = match cleaned.len() % 4 {
        2 => format!("{cleaned}=="),
        3 => format!("{cleaned}="),
        _ => cleaned,
    };
    match BASE64.decode(padded) {
        Ok(bytes) => Ok(ArrayBuffer::new(ctx, bytes)?.into_value()),
        Err(_) => Ok(Value::new_undefined(ctx)),
    }
}

/// `abort()`: ends the event as a trap (out of memory).
fn abort() {
    std::process::abort()
}

/// Installs `globalThis.__native`.
pub(crate) fn install(ctx: &Ctx<'_>) -> Result<()> {
    let native = Object::new(ctx.clone())?;
    native.set("call", Function::new(ctx.clone(), call)?)?;
    native.set("finish", Function::new(ctx.clone(), finish)?)?;
    native.set("random", Function::new(ctx.clone(), random)?)?;
    native.set("digest", Function::new(ctx.clone(), digest)?)?;
    native.set("hmac", Function::new(ctx.clone(), hmac)?)?;
    native.set("utf8Encode", Function::new(ctx.clone(), utf8_encode)?)?;
    native.set("utf8Decode", Function::new(ctx.clone(), utf8_decode)?)?;
    native.set("base64Encode", Function::new(ctx.clone(), base64_encode)?)?;
    native.set("base64Decode", Function::new(ctx.clone(), base64_decode)?)?;
    native.set("abort", Function::new(ctx.clone(), abort)?)?;
    ctx.globals().set("__native", native)?;
    Ok(())
}
