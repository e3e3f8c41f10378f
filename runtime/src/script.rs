//! JavaScript integrations: a bundle becomes a module by snapshotting weft's JavaScript
//! engine (`runtime/js`, QuickJS) after it has evaluated the bundle.
//!
//! At publish [`Runtime::compile_script`] instantiates the engine, writes the bundle into
//! its input buffer and calls its load export, which evaluates the web-platform prelude and
//! the bundle (so `createIntegration` has run); the memory is then snapshotted with
//! `wasmtime-wizer`, as for any ABI v2 module. The snapshot is an ordinary v2 module: the
//! host stores its bytes as the version's module, and [`Runtime::compile`] recognises it
//! (a trailing custom section) and compiles it without initialising again. Every event is a
//! fresh instance of it, so nothing one event does to the JavaScript globals is seen by the
//! next.

use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use wasmtime::{Caller, Extern, Instance, Linker, Module, Store, StoreLimits, StoreLimitsBuilder};
use wasmtime_wizer::{ModuleContext, Wizer};

use crate::engine::{PreparedModule, Runtime};
use crate::host::LogLevel;
use crate::snapshot::{self, Snapshot};

/// The engine, built from `runtime/js` by `scripts/build-js-engine` and committed.
static ENGINE_WASM: &[u8] = include_bytes!("../js/weft-js.wasm");

/// The largest bundle accepted, in bytes. GitBook's own limit is of this order, and a
/// bundle is evaluated in full at publish and kept in every snapshot.
pub const MAX_SCRIPT_BYTES: usize = 10 << 20;

/// The engine's publish-only export: `(bundle_len) -> (outcome_ptr << 32) | outcome_len`.
const LOAD_EXPORT: &str = "weft_js_load";

/// The custom section that marks a snapshot made by [`Runtime::compile_script`].
const MARKER_NAME: &str = "weft-js-snapshot";

/// The custom section's bytes, appended to the end of the snapshot.
fn marker() -> Vec<u8> {
    // id 0, size, name length, name; no payload. Both lengths fit one LEB128 byte.
    let mut section = vec![0u8, (MARKER_NAME.len() + 1) as u8, MARKER_NAME.len() as u8];
    section.extend_from_slice(MARKER_NAME.as_bytes());
    section
}

/// Whether `wasm` is a snapshot made by [`Runtime::compile_script`] (it needs no
/// initialising at compile time).
pub(crate) fn is_script_snapshot(wasm: &[u8]) -> bool {
    wasm.ends_with(&marker())
}

/// A compiled JavaScript bundle.
pub struct CompiledScript {
    /// The snapshot: an ABI v2 module to store as the version's module.
    /// [`Runtime::compile`] of these bytes gives [`CompiledScript::module`] again.
    pub wasm: Vec<u8>,
    /// The snapshot, compiled.
    pub module: PreparedModule,
    /// What the bundle logged while loading (`console.*` at its top level).
    pub logs: Vec<(LogLevel, String)>,
    /// How long loading and snapshotting took.
    pub took: Duration,
}

impl std::fmt::Debug for CompiledScript {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledScript").field("wasm", &self.wasm.len()).field("took", &self.took).finish()
    }
}

/// Why a bundle was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptError {
    /// The class of problem.
    pub kind: ScriptErrorKind,
    /// What went wrong, for the author.
    pub message: String,
    /// 1-based line in the bundle, where known.
    pub line: Option<u32>,
    /// 1-based column in the bundle, where known.
    pub column: Option<u32>,
}

/// The classes of [`ScriptError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScriptErrorKind {
    /// The bundle does not parse (or is not UTF-8).
    Syntax,
    /// Evaluating the bundle's top level threw.
    Threw,
    /// The bundle imports a module (`node:*`, `cloudflare:*`, anything): weft provides none.
    UnsupportedImport,
    /// The bundle handles no events (no default export with `fetch`, no fetch listener).
    NoHandler,
    /// The bundle is larger than [`MAX_SCRIPT_BYTES`].
    TooLarge,
    /// Loading ran past the init deadline or the memory limit.
    Limit,
    /// The engine itself failed (a bug in weft, not in the bundle).
    Engine,
}

impl ScriptErrorKind {
    /// The snake_case name for API answers.
    pub fn as_str(self) -> &'static str {
        match self {
            ScriptErrorKind::Syntax => "syntax_error",
            ScriptErrorKind::Threw => "script_error",
            ScriptErrorKind::UnsupportedImport => "unsupported_import",
            ScriptErrorKind::NoHandler => "no_handler",
            ScriptErrorKind::TooLarge => "too_large",
            ScriptErrorKind::Limit => "limit",
            ScriptErrorKind::Engine => "engine",
        }
    }
}

impl ScriptError {
    fn new(kind: ScriptErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into(), line: None, column: None }
    }
}

impl std::fmt::Display for ScriptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.line, self.column) {
            (Some(line), Some(column)) => write!(f, "{} (line {line}, column {column})", self.message),
            (Some(line), None) => write!(f, "{} (line {line})", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ScriptError {}

/// The engine, instrumented for snapshots and compiled: the same for every bundle, so a
/// runtime prepares it once.
pub(crate) struct ScriptEngine {
    cx: ModuleContext<'static>,
    instrumented: Module,
    wizer: Wizer,
}

fn wizer() -> Wizer {
    let mut wizer = Wizer::new();
    wizer.init_func(snapshot::INIT_EXPORT);
    wizer
}

impl ScriptEngine {
    fn prepare(engine: &wasmtime::Engine) -> Result<Self, String> {
        let wizer = wizer();
        let (cx, instrumented) = wizer.instrument(ENGINE_WASM).map_err(|e| format!("{e:#}"))?;
        let instrumented = Module::from_binary(engine, &instrumented).map_err(|e| format!("{e:#}"))?;
        Ok(Self { cx, instrumented, wizer })
    }
}

/// The store of a publish-time load: only logging works (its lines are kept) and the clock
/// reads zero, so nothing of the moment of publishing is baked into the snapshot.
struct LoadState {
    limits: StoreLimits,
    logs: Vec<(LogLevel, String)>,
    last_result: Vec<u8>,
}

fn load_linker(engine: &wasmtime::Engine, module: &Module) -> wasmtime::Result<Linker<LoadState>> {
    let mut linker: Linker<LoadState> = Linker::new(engine);
    fn memory(caller: &mut Caller<'_, LoadState>) -> wasmtime::Result<wasmtime::Memory> {
        match caller.get_export("memory") {
            Some(Extern::Memory(memory)) => Ok(memory),
            _ => Err(wasmtime::Error::msg("the engine exports no memory")),
        }
    }
    linker.func_wrap(
        "weft",
        "call",
        |mut caller: Caller<'_, LoadState>, ptr: i32, len: i32| -> wasmtime::Result<i64> {
            let memory = memory(&mut caller)?;
            let (start, len) = (ptr as u32 as usize, len as u32 as usize);
            let request: serde_json::Value = match memory.data(&caller).get(start..start + len) {
                Some(bytes) => serde_json::from_slice(bytes).unwrap_or_default(),
                None => return Ok(weft_abi::code::BAD_POINTER),
            };
            let answer = if request["op"] == "log" {
                let level = match request["level"].as_str() {
                    Some("debug") => LogLevel::Debug,
                    Some("warn") => LogLevel::Warn,
                    Some("error") => LogLevel::Error,
                    _ => LogLevel::Info,
                };
                let message = request["message"].as_str().unwrap_or_default().to_owned();
                caller.data_mut().logs.push((level, message));
                weft_abi::ok_answer(&serde_json::Value::Null)
            } else {
                let op = request["op"].as_str().unwrap_or("?");
                weft_abi::error_answer(
                    weft_abi::error::UNAVAILABLE,
                    &format!("`{op}` is not available while the script loads at publish; call it from a handler"),
                )
            };
            let len = answer.len() as i64;
            caller.data_mut().last_result = answer;
            Ok(len)
        },
    )?;
    linker.func_wrap("weft", "result", |mut caller: Caller<'_, LoadState>, ptr: i32| -> wasmtime::Result<()> {
        let memory = memory(&mut caller)?;
        let (data, state) = memory.data_and_store_mut(&mut caller);
        let start = ptr as u32 as usize;
        let target = data
            .get_mut(start..start + state.last_result.len())
            .ok_or_else(|| wasmtime::Error::msg("weft.result: buffer lies outside guest memory"))?;
        target.copy_from_slice(&state.last_result);
        Ok(())
    })?;
    const WASI: &str = "wasi_snapshot_preview1";
    linker.func_wrap(
        WASI,
        "clock_time_get",
        |mut caller: Caller<'_, LoadState>, _id: i32, _precision: i64, out: i32| -> wasmtime::Result<i32> {
            let memory = memory(&mut caller)?;
            memory.write(&mut caller, out as u32 as usize, &0u64.to_le_bytes())?;
            Ok(0)
        },
    )?;
    // The engine seeds its own tables at start-up; the same seed in every snapshot is what
    // a snapshot means. Scripts cannot get here: the prelude refuses randomness while loading.
    linker.func_wrap(
        WASI,
        "random_get",
        |mut caller: Caller<'_, LoadState>, ptr: i32, len: i32| -> wasmtime::Result<i32> {
            let memory = memory(&mut caller)?;
            memory.write(&mut caller, ptr as u32 as usize, &vec![0u8; len.max(0) as usize])?;
            Ok(0)
        },
    )?;
    linker.func_wrap(
        WASI,
        "fd_write",
        |mut caller: Caller<'_, LoadState>, _fd: i32, iovs: i32, count: i32, written: i32| -> wasmtime::Result<i32> {
            // Nothing is printed at load; report every byte written so the engine moves on.
            let memory = memory(&mut caller)?;
            let data = memory.data(&caller);
            let mut total = 0u32;
            for i in 0..count.max(0) as usize {
                let at = iovs as u32 as usize + i * 8 + 4;
                if let Some(len) = data.get(at..at + 4) {
                    total += u32::from_le_bytes(len.try_into().expect("4 bytes"));
                }
            }
            memory.write(&mut caller, written as u32 as usize, &total.to_le_bytes())?;
            Ok(0)
        },
    )?;
    linker.define_unknown_imports_as_traps(module)?;
    Ok(linker)
}

impl Runtime {
    /// Compiles a JavaScript bundle (as GitBook's CLI builds it: ESM, es2020) into a
    /// snapshot of the engine that has evaluated it, under the init deadline and the
    /// server's memory ceiling. Refuses a bundle that is too large, does not parse, throws
    /// at load, imports a module or handles no events.
    pub fn compile_script(&self, script: &[u8]) -> Result<CompiledScript, ScriptError> {
        use ScriptErrorKind as Kind;
        if script.len() > MAX_SCRIPT_BYTES {
            return Err(ScriptError::new(
                Kind::TooLarge,
                format!("the script is {} bytes, more than the {MAX_SCRIPT_BYTES} allowed", script.len()),
            ));
        }
        let started = Instant::now();
        let engine = self.script_engine().map_err(|e| ScriptError::new(Kind::Engine, e))?;
        // The deadline is the script's: it starts once the engine is prepared.
        let deadline = self.config().init_deadline;
        let loading = Instant::now();
        let mut store = Store::new(
            self.wasm_engine(),
            LoadState {
                limits: StoreLimitsBuilder::new().memory_size(self.config().max_limits.memory_bytes).build(),
                logs: Vec::new(),
                last_result: Vec::new(),
            },
        );
        store.limiter(|state| &mut state.limits);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if loading.elapsed() >= deadline {
                Err(wasmtime::Error::msg(DeadlinePassed))
            } else {
                Ok(wasmtime::UpdateDeadline::Continue(1))
            }
        });
        let engine_error = |e: wasmtime::Error| ScriptError::new(Kind::Engine, format!("{e:#}"));
        let linker = load_linker(self.wasm_engine(), &engine.instrumented).map_err(engine_error)?;
        let wasm = snapshot::block_on(async {
            let instance = linker.instantiate_async(&mut store, &engine.instrumented).await.map_err(engine_error)?;
            let outcome = load(&mut store, instance, script).await;
            let outcome = match outcome {
                Ok(outcome) => outcome,
                Err(error) => return Err(load_trap(error, deadline, self.config().max_limits.memory_bytes)),
            };
            if let Some(error) = script_error(&outcome) {
                return Err(error);
            }
            let mut state = snapshot::Instantiated { store: &mut store, instance };
            engine.wizer.snapshot(&engine.cx, &mut state).await.map_err(engine_error)
        })?;
        let mut wasm = wasm;
        wasm.extend_from_slice(&marker());
        let module = self.compile(&wasm).map_err(|e| match e {
            crate::ValidationError::TooLarge { size, max } => ScriptError::new(
                Kind::TooLarge,
                format!("the loaded script's snapshot is {size} bytes, more than the {max} bytes a module may have"),
            ),
            e => ScriptError::new(Kind::Engine, e.to_string()),
        })?;
        let logs = std::mem::take(&mut store.data_mut().logs);
        Ok(CompiledScript { wasm, module, logs, took: started.elapsed() })
    }

    fn script_engine(&self) -> Result<&ScriptEngine, String> {
        static PREPARING: Mutex<()> = Mutex::new(());
        let cell: &OnceLock<ScriptEngine> = self.script_cell();
        if let Some(engine) = cell.get() {
            return Ok(engine);
        }
        // Instrumenting and compiling the engine takes a while: one caller does it.
        let _one_at_a_time = PREPARING.lock().unwrap_or_else(|p| p.into_inner());
        if cell.get().is_none() {
            let _ = cell.set(ScriptEngine::prepare(self.wasm_engine())?);
        }
        Ok(cell.get().expect("set above"))
    }
}

#[derive(Debug)]
struct DeadlinePassed;

impl std::fmt::Display for DeadlinePassed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("deadline passed")
    }
}

/// Writes the bundle into the engine's input buffer and calls the load export; the
/// outcome header's bytes.
async fn load(store: &mut Store<LoadState>, instance: Instance, script: &[u8]) -> wasmtime::Result<Vec<u8>> {
    // The snapshot must not hold the initialisers' work twice: `_initialize` (the reactor's
    // constructors) runs first, as wizer expects.
    if let Ok(init) = instance.get_typed_func::<(), ()>(&mut *store, "_initialize") {
        init.call_async(&mut *store, ()).await?;
    }
    let memory = instance.get_memory(&mut *store, "memory").ok_or_else(|| wasmtime::Error::msg("no memory"))?;
    let buffer = instance.get_typed_func::<(), i64>(&mut *store, "weft_buffer")?.call_async(&mut *store, ()).await?;
    let (ptr, capacity) = ((buffer as u64 >> 32) as usize, (buffer as u64 & 0xffff_ffff) as usize);
    let at = if script.len() <= capacity {
        ptr
    } else {
        let reserve = instance.get_typed_func::<i32, i32>(&mut *store, "weft_reserve")?;
        let at = reserve.call_async(&mut *store, script.len() as i32).await?;
        if at == 0 {
            return Err(wasmtime::Error::msg("the engine could not make room for the script"));
        }
        at as u32 as usize
    };
    memory.write(&mut *store, at, script)?;
    let load = instance.get_typed_func::<i32, i64>(&mut *store, LOAD_EXPORT)?;
    let packed = load.call_async(&mut *store, script.len() as i32).await? as u64;
    let (out, len) = ((packed >> 32) as usize, (packed & 0xffff_ffff) as usize);
    let data = memory.data(&*store);
    let outcome = data.get(out..out + len).ok_or_else(|| wasmtime::Error::msg("load outcome outside memory"))?;
    let header_len = outcome.get(..4).map_or(0, |b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize);
    Ok(outcome.get(4..4 + header_len).unwrap_or_default().to_vec())
}

/// The load outcome's error, if any.
fn script_error(header: &[u8]) -> Option<ScriptError> {
    let value: serde_json::Value = match serde_json::from_slice(header) {
        Ok(value) => value,
        Err(e) => return Some(ScriptError::new(ScriptErrorKind::Engine, format!("unreadable load outcome: {e}"))),
    };
    let error = value.get("error")?;
    let kind = match error["code"].as_str() {
        Some("syntax") => ScriptErrorKind::Syntax,
        Some("import") => ScriptErrorKind::UnsupportedImport,
        Some("no_handler") => ScriptErrorKind::NoHandler,
        _ => ScriptErrorKind::Threw,
    };
    Some(ScriptError {
        kind,
        message: error["message"].as_str().unwrap_or("the script failed to load").to_owned(),
        line: error["line"].as_u64().map(|n| n as u32),
        column: error["column"].as_u64().map(|n| n as u32),
    })
}

fn load_trap(error: wasmtime::Error, deadline: Duration, memory: usize) -> ScriptError {
    let message = if error.downcast_ref::<DeadlinePassed>().is_some() {
        format!("the script's top level ran longer than {} ms while loading", deadline.as_millis())
    } else if matches!(error.downcast_ref::<wasmtime::Trap>(), Some(wasmtime::Trap::StackOverflow)) {
        "the script's top level exhausted the call stack while loading".to_owned()
    } else if error.to_string().contains("out of memory") || format!("{error:#}").contains("unreachable") {
        format!(
            "the script's top level needed more than {memory} bytes of memory while loading (or the engine aborted)"
        )
    } else {
        format!("the engine trapped while loading the script: {error:#}")
    };
    ScriptError::new(ScriptErrorKind::Limit, message)
}

/// What [`Runtime::compile`] reports for a script snapshot.
pub(crate) fn snapshot_of_script() -> Snapshot {
    Snapshot::Taken { took: Duration::ZERO }
}
