//! weft's JavaScript engine guest: QuickJS (through rquickjs) with the web platform GitBook
//! integrations use, speaking the guest ABI v2.
//!
//! At publish the host writes the bundle into the input buffer and calls
//! [`weft_js_load`]: the prelude (`prelude.js`) and the bundle are evaluated, so the
//! integration's top level (`createIntegration`) has run, and the host snapshots the memory.
//! Every event then starts from that snapshot in a fresh instance: [`weft_run`] hands the
//! event to the prelude's dispatcher, runs promise jobs and timers until the handler has
//! settled, and returns the v2 outcome. Nothing here keeps state from one event to the next
//! beyond the snapshot itself.

use std::cell::{RefCell, UnsafeCell};

use rquickjs::{ArrayBuffer, Context, Ctx, Function, Module, Object, Runtime, TypedArray, Value};

mod native;

/// The web platform over the natives of [`native`], evaluated once at load.
const PRELUDE: &str = include_str!("prelude.js");
/// The name the prelude is evaluated under; its frames are left out of stacks.
const PRELUDE_NAME: &str = "weft:prelude";
/// The name the bundle is evaluated under: it appears in stacks and error positions.
const BUNDLE_NAME: &str = "integration.js";
/// Capacity of the static input buffer: inputs up to this size need no allocation.
const INPUT_BUFFER_BYTES: usize = 64 << 10;
/// QuickJS' own stack limit: below the 1 MiB shadow stack (scripts/build-js-engine), so
/// that runaway recursion is a RangeError rather than a trap.
const MAX_STACK_BYTES: usize = 512 << 10;

/// How much an event may allocate before QuickJS collects garbage.
const GC_HEADROOM: usize = 4 << 20;

struct Engine {
    runtime: Runtime,
    context: Context,
}

thread_local! {
    static ENGINE: RefCell<Option<Engine>> = const { RefCell::new(None) };
}

struct Buffer(UnsafeCell<[u8; INPUT_BUFFER_BYTES]>);
// SAFETY: wasm32 guests are single-threaded; the host writes the buffer only between calls.
unsafe impl Sync for Buffer {}
static BUFFER: Buffer = Buffer(UnsafeCell::new([0; INPUT_BUFFER_BYTES]));

thread_local! {
    /// An input bigger than the buffer, made by `weft_reserve` for the next call.
    static LARGE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    /// The last outcome; kept alive until the next call.
    static OUTPUT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

fn pack(ptr: u32, len: u32) -> i64 {
    ((u64::from(ptr) << 32) | u64::from(len)) as i64
}

/// `weft_buffer`: `(ptr << 32) | capacity` of the static input buffer.
#[unsafe(no_mangle)]
pub extern "C" fn weft_buffer() -> i64 {
    pack(BUFFER.0.get() as usize as u32, INPUT_BUFFER_BYTES as u32)
}

/// `weft_reserve`: room for a `len`-byte input, or 0.
#[unsafe(no_mangle)]
pub extern "C" fn weft_reserve(len: i32) -> i32 {
    let Ok(len) = usize::try_from(len) else { return 0 };
    LARGE.with_borrow_mut(|large| {
        large.clear();
        if large.try_reserve_exact(len).is_err() {
            return 0;
        }
        large.resize(len, 0);
        large.as_mut_ptr() as usize as i32
    })
}

/// Runs `f` on the `len`-byte input the host wrote, and returns the packed outcome.
fn with_input(len: i32, f: impl FnOnce(&[u8]) -> Vec<u8>) -> i64 {
    let len = len.max(0) as usize;
    let large = LARGE.with_borrow_mut(std::mem::take);
    let outcome = if len <= INPUT_BUFFER_BYTES {
        // SAFETY: the host wrote `len` bytes into the buffer and calls nothing else meanwhile.
        let buffer: &[u8; INPUT_BUFFER_BYTES] = unsafe { &*BUFFER.0.get() };
        f(&buffer[..len])
    } else {
        f(large.get(..len).unwrap_or(&[]))
    };
    OUTPUT.with_borrow_mut(|output| {
        *output = outcome;
        pack(output.as_ptr() as usize as u32, output.len() as u32)
    })
}

/// `[u32 header_len][header JSON][body]`.
fn outcome(header: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + header.len() + body.len());
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(body);
    out
}

fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn error_outcome(code: u16, message: &str) -> Vec<u8> {
    outcome(&format!(r#"{{"error":{{"code":{code},"message":{}}}}}"#, json_string(message)), &[])
}

/// `weft_init`: nothing; the load export does the work (it needs the bundle).
#[unsafe(no_mangle)]
pub extern "C" fn weft_init() {}

/// Publish only: evaluates the prelude, then the `len`-byte bundle in the input buffer.
/// The outcome header is `{}`, or `{"error":{"code":"…","message":"…","line":N,"column":N}}`
/// with code `syntax`, `threw`, `import` or `no_handler`.
#[unsafe(no_mangle)]
pub extern "C" fn weft_js_load(len: i32) -> i64 {
    with_input(len, |bundle| match load(bundle) {
        Ok(()) => outcome("{}", &[]),
        Err(error) => outcome(&error.to_json(), &[]),
    })
}

struct LoadError {
    code: &'static str,
    message: String,
    line: Option<u32>,
    column: Option<u32>,
}

impl LoadError {
    fn to_json(&self) -> String {
        let mut json = format!(r#"{{"error":{{"code":"{}","message":{}"#, self.code, json_string(&self.message));
        if let Some(line) = self.line {
            json.push_str(&format!(r#","line":{line}"#));
        }
        if let Some(column) = self.column {
            json.push_str(&format!(r#","column":{column}"#));
        }
        json.push_str("}}");
        json
    }
}

fn load(bundle: &[u8]) -> Result<(), LoadError> {
    let fail = |code, message: String| LoadError { code, message, line: None, column: None };
    let source = std::str::from_utf8(bundle)
        .map_err(|e| fail("syntax", format!("the script is not UTF-8 text (byte {})", e.valid_up_to())))?;
    let runtime = Runtime::new().map_err(|e| fail("threw", format!("cannot start the engine: {e}")))?;
    runtime.set_max_stack_size(MAX_STACK_BYTES);
    let context = Context::full(&runtime).map_err(|e| fail("threw", format!("cannot start the engine: {e}")))?;
    runtime.set_host_promise_rejection_tracker(Some(Box::new(track_rejection)));
    let result = context.with(|ctx| -> Result<(), LoadError> {
        native::install(&ctx).map_err(|e| fail("threw", format!("engine natives: {e}")))?;
        let mut options = rquickjs::context::EvalOptions::default();
        options.filename = Some(PRELUDE_NAME.to_owned());
        options.strict = true;
        ctx.eval_with_options::<(), _>(PRELUDE, options).map_err(|e| {
            let (message, _, _, _) = exception(&ctx, e);
            fail("threw", format!("engine prelude: {message}"))
        })?;
        let evaluated = Module::declare(ctx.clone(), BUNDLE_NAME, source).and_then(|module| module.eval());
        let (module, promise) = match evaluated {
            Ok(pair) => pair,
            Err(e) => return Err(load_error(&ctx, source, e)),
        };
        // Top-level await: run jobs until the module's evaluation settles.
        while ctx.execute_pending_job() {}
        if let Err(e) = promise.finish::<Value>() {
            return Err(load_error(&ctx, source, e));
        }
        let namespace = module.namespace().map_err(|e| load_error(&ctx, source, e))?;
        let weft: Object = ctx.globals().get("__weft").map_err(|e| load_error(&ctx, source, e))?;
        let adopt: Function = weft.get("adopt").map_err(|e| load_error(&ctx, source, e))?;
        let problem: Option<String> = adopt.call((namespace,)).map_err(|e| load_error(&ctx, source, e))?;
        if let Some(problem) = problem {
            return Err(fail("no_handler", problem));
        }
        Ok(())
    });
    result?;
    // Collect what loading left behind, so the snapshot holds less garbage. Each event
    // starts from the snapshot, so garbage never accumulates across events: let one event
    // allocate GC_HEADROOM before collecting (a collection walks the whole heap).
    runtime.run_gc();
    let in_use = runtime.memory_usage().malloc_size.max(0) as usize;
    runtime.set_gc_threshold(in_use + GC_HEADROOM);
    ENGINE.with_borrow_mut(|engine| *engine = Some(Engine { runtime, context }));
    Ok(())
}

/// Hands a rejection without a handler (or a handler attached later) to the dispatcher.
fn track_rejection<'js>(ctx: Ctx<'js>, promise: Value<'js>, reason: Value<'js>, handled: bool) {
    let Ok(weft) = ctx.globals().get::<_, Object>("__weft") else { return };
    if let Ok(rejection) = weft.get::<_, Function>("rejection") {
        let _ = rejection.call::<_, ()>((promise, reason, handled));
    }
}

/// The message, stack, line and column of a caught exception.
fn exception(ctx: &Ctx<'_>, error: rquickjs::Error) -> (String, Option<String>, Option<u32>, Option<u32>) {
    if !matches!(error, rquickjs::Error::Exception) {
        return (error.to_string(), None, None, None);
    }
    let thrown = ctx.catch();
    let Some(object) = thrown.as_object() else {
        let text = thrown.get::<rquickjs::Coerced<String>>().map(|s| s.0).unwrap_or_else(|_| "(unprintable)".into());
        return (format!("uncaught {text}"), None, None, None);
    };
    let name: Option<String> = object.get("name").ok();
    let message: Option<String> = object.get("message").ok();
    let stack: Option<String> = object.get("stack").ok();
    let mut line: Option<u32> = object.get("lineNumber").ok();
    let mut column: Option<u32> = object.get("columnNumber").ok();
    if line.is_none()
        && let Some((l, c)) = stack.as_deref().and_then(position_in)
    {
        line = Some(l);
        column = c;
    }
    let text = match (name, message) {
        (Some(name), Some(message)) if !name.is_empty() => format!("{name}: {message}"),
        (_, Some(message)) => message,
        _ => thrown.get::<rquickjs::Coerced<String>>().map(|s| s.0).unwrap_or_else(|_| "(unprintable)".into()),
    };
    (text, stack, line, column)
}

/// The first `integration.js:LINE[:COLUMN]` of a stack.
fn position_in(stack: &str) -> Option<(u32, Option<u32>)> {
    let at = stack.find(BUNDLE_NAME)? + BUNDLE_NAME.len();
    let rest = stack[at..].strip_prefix(':')?;
    let mut parts = rest.split(|c: char| !c.is_ascii_digit() && c != ':').next()?.split(':');
    let line = parts.next()?.parse().ok()?;
    Some((line, parts.next().and_then(|c| c.parse().ok())))
}

fn load_error(ctx: &Ctx<'_>, source: &str, error: rquickjs::Error) -> LoadError {
    let (message, _stack, line, column) = exception(ctx, error);
    // QuickJS names a module it cannot load; weft loads none: the bundle must be
    // self-contained.
    if let Some(specifier) = unloadable_module(&message) {
        let (line, column) = find_import(source, &specifier);
        return LoadError {
            code: "import",
            message: format!(
                "the script imports '{specifier}', which weft does not provide: bundle every dependency \
                 (weft has no node:* or cloudflare:* modules)"
            ),
            line,
            column,
        };
    }
    let code = if message.starts_with("SyntaxError") { "syntax" } else { "threw" };
    LoadError { code, message, line, column }
}

fn unloadable_module(message: &str) -> Option<String> {
    let at = message.find("could not load module")?;
    let rest = &message[at..];
    let start = rest.find('\'')? + 1;
    let end = rest[start..].find('\'')? + start;
    Some(rest[start..end].to_owned())
}

/// Where `specifier` is imported in the source (1-based line and column of its quote).
fn find_import(source: &str, specifier: &str) -> (Option<u32>, Option<u32>) {
    for quote in ['"', '\''] {
        let needle = format!("{quote}{specifier}{quote}");
        if let Some(at) = source.find(&needle) {
            let before = &source[..at];
            let line = before.matches('\n').count() as u32 + 1;
            let column = (at - before.rfind('\n').map_or(0, |n| n + 1)) as u32 + 1;
            return (Some(line), Some(column));
        }
    }
    (None, None)
}

/// `weft_run`: one event.
#[unsafe(no_mangle)]
pub extern "C" fn weft_run(len: i32) -> i64 {
    with_input(len, run)
}

fn run(input: &[u8]) -> Vec<u8> {
    let Some((event, environment, body)) = split_input(input) else {
        return error_outcome(500, "invalid input: the v2 header's lengths do not fit");
    };
    ENGINE.with_borrow(|engine| {
        let Some(engine) = engine else {
            return error_outcome(500, "the JavaScript engine was not loaded with a script");
        };
        native::begin_event();
        let started = engine.context.with(|ctx| -> Result<(), String> {
            let weft: Object = ctx.globals().get("__weft").map_err(|e| e.to_string())?;
            let dispatch: Function = weft.get("dispatch").map_err(|e| e.to_string())?;
            let event = rquickjs::String::from_str(ctx.clone(), event).map_err(|e| e.to_string())?;
            let environment = rquickjs::String::from_str(ctx.clone(), environment).map_err(|e| e.to_string())?;
            let body = ArrayBuffer::new_copy(ctx.clone(), body).map_err(|e| e.to_string())?;
            let body = TypedArray::<u8>::from_arraybuffer(body).map_err(|e| e.to_string())?;
            dispatch.call::<_, ()>((event, environment, body)).map_err(|e| exception(&ctx, e).0)
        });
        if let Err(message) = started {
            native::oom_check(&message);
            return error_outcome(500, &message);
        }
        // Run promise jobs, then timers (in due order, without waiting: time inside one
        // event is the host's clock, but a timer's delay is not slept), until the
        // dispatcher reports the outcome.
        loop {
            if let Some(outcome) = native::take_outcome() {
                return outcome;
            }
            if engine.runtime.is_job_pending() {
                if let Err(e) = engine.runtime.execute_pending_job() {
                    let message = e.0.with(|ctx| exception(&ctx, rquickjs::Error::Exception).0);
                    native::oom_check(&message);
                    native::log("error", &format!("a promise job threw: {message}"));
                }
                continue;
            }
            let fired = engine.context.with(|ctx| -> bool {
                let weft: Object = match ctx.globals().get("__weft") {
                    Ok(weft) => weft,
                    Err(_) => return false,
                };
                let tick: Function = match weft.get("tick") {
                    Ok(tick) => tick,
                    Err(_) => return false,
                };
                match tick.call::<_, bool>(()) {
                    Ok(fired) => fired,
                    Err(e) => {
                        let message = exception(&ctx, e).0;
                        native::oom_check(&message);
                        native::log("error", &format!("a timer threw: {message}"));
                        true
                    }
                }
            });
            if !fired {
                return error_outcome(
                    500,
                    "the handler's promise never settled: no promise job or timer was left to run it",
                );
            }
        }
    })
}

fn split_input(input: &[u8]) -> Option<(&str, &str, &[u8])> {
    let event_len = u32::from_le_bytes(input.get(..4)?.try_into().ok()?) as usize;
    let env_len = u32::from_le_bytes(input.get(4..8)?.try_into().ok()?) as usize;
    let rest = &input[8..];
    if event_len.checked_add(env_len)? > rest.len() {
        return None;
    }
    let (event, rest) = rest.split_at(event_len);
    let (environment, body) = rest.split_at(env_len);
    let event = std::str::from_utf8(event).ok()?;
    let environment = if environment.is_empty() { "{}" } else { std::str::from_utf8(environment).ok()? };
    Some((event, environment, body))
}
