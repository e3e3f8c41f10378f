//! One invocation: a fresh store, instantiate, hand the invocation JSON to `weft_handle`,
//! read the outcome back, and classify whatever went wrong.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::{
    Extern, FuncType, Instance, Memory, Module, ModuleExport, ResourceLimiter, Store, Trap, TypedFunc, UpdateDeadline,
    ValType,
};
use wasmtime_wasi::I32Exit;
use wasmtime_wasi::p1::WasiP1Ctx;

use crate::host::{HostServices, LogLevel, LogLine};
use crate::limits::Limits;
use crate::outcome::{Failure, FailureKind, Outcome, RunReport};
use crate::output::CapturedOutput;

/// Per-store state: everything one invocation owns.
pub(crate) struct StoreState {
    pub(crate) wasi: WasiP1Ctx,
    pub(crate) limiter: GuestLimiter,
    pub(crate) host: Arc<dyn HostServices>,
    pub(crate) limits: Limits,
    pub(crate) last_result: Vec<u8>,
    /// The instance's exported memory, once instantiated (host calls read and write it).
    pub(crate) memory: Option<Memory>,
    pub(crate) host_calls: u32,
    pub(crate) outbound_requests: u32,
    logs: Vec<LogLine>,
    log_bytes: usize,
    logs_truncated: bool,
}

impl StoreState {
    pub(crate) fn push_log(&mut self, level: LogLevel, message: String) {
        if self.log_bytes + message.len() > self.limits.log_bytes {
            self.logs_truncated = true;
            return;
        }
        self.log_bytes += message.len();
        self.logs.push(LogLine::now(level, message));
    }
}

/// A per-event limit that ends the invocation when exceeded.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LimitExceeded {
    #[error("more than {0} host calls")]
    HostCalls(u32),
    #[error("more than {0} outbound requests")]
    OutboundRequests(u32),
}

/// Enforces the memory limit and remembers whether it refused a growth, so that the trap
/// which usually follows is reported as `memory_limit`.
pub(crate) struct GuestLimiter {
    memory_bytes: usize,
    refused_growth: bool,
}

impl ResourceLimiter for GuestLimiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let allowed = desired <= self.memory_bytes;
        self.refused_growth |= !allowed;
        Ok(allowed)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// The parts of the engine an invocation needs.
pub(crate) struct Invocation<'a> {
    pub(crate) engine: &'a wasmtime::Engine,
    pub(crate) pre: &'a wasmtime::InstancePre<StoreState>,
    pub(crate) abi: &'a AbiExports,
    pub(crate) input: &'a [u8],
    pub(crate) limits: &'a Limits,
    pub(crate) host: Arc<dyn HostServices>,
    /// Turns of CPU shared by the guests of one tenant (see [`crate::Runtime::run_with_turns`]).
    pub(crate) turns: Option<Arc<tokio::sync::Semaphore>>,
}

impl Invocation<'_> {
    pub(crate) async fn run(self) -> RunReport {
        let stdout = CapturedOutput::new(self.limits.log_bytes);
        let stderr = CapturedOutput::new(self.limits.log_bytes);
        let wasi = wasmtime_wasi::WasiCtxBuilder::new().stdout(stdout.clone()).stderr(stderr.clone()).build_p1();
        let state = StoreState {
            wasi,
            limiter: GuestLimiter { memory_bytes: self.limits.memory_bytes, refused_growth: false },
            host: self.host,
            limits: self.limits.clone(),
            last_result: Vec::new(),
            memory: None,
            host_calls: 0,
            outbound_requests: 0,
            logs: Vec::new(),
            log_bytes: 0,
            logs_truncated: false,
        };
        let mut store = Store::new(self.engine, state);
        store.limiter(|state| &mut state.limiter);
        let started = Instant::now();
        let deadline = started + self.limits.deadline;
        // The epoch ticker wakes this callback every tick: yield so a busy guest never holds
        // an executor thread, and interrupt it once the deadline has passed.
        store.set_epoch_deadline(1);
        let turns = self.turns;
        let held = Arc::new(std::sync::Mutex::new(None::<tokio::sync::OwnedSemaphorePermit>));
        // While the tenant's turns are all taken (its guests are computing), a new guest
        // waits for one before it starts too, rather than computing its first tick outside
        // them. A tenant whose guests finish within a tick never waits.
        let first_turn = turns.clone().filter(|turns| turns.available_permits() == 0).map(|turns| {
            let held = held.clone();
            async move {
                if let Ok(turn) = turns.acquire_owned().await {
                    *held.lock().expect("turn lock") = Some(turn);
                }
            }
        });
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= deadline {
                return Ok(UpdateDeadline::Interrupt);
            }
            let Some(turns) = turns.clone() else { return Ok(UpdateDeadline::Yield(1)) };
            // A guest still busy after a tick runs on only while it holds one of its tenant's
            // turns: at each tick it hands its turn on and waits for one again, so one
            // tenant's spinning guests take no more CPU than its turns, however many run.
            let held = held.clone();
            Ok(UpdateDeadline::YieldCustom(
                1,
                Box::pin(async move {
                    drop(held.lock().expect("turn lock").take());
                    tokio::task::yield_now().await;
                    if let Ok(turn) = turns.acquire_owned().await {
                        *held.lock().expect("turn lock") = Some(turn);
                    }
                }),
            ))
        });

        // Host calls can wait on I/O, which no epoch tick interrupts: bound the whole run too.
        let run = async {
            if let Some(first_turn) = first_turn {
                first_turn.await;
            }
            execute(&mut store, self.pre, self.abi, self.input).await
        };
        let result = match tokio::time::timeout(self.limits.deadline, run).await {
            Ok(result) => result,
            Err(_) => Err(Failure::new(FailureKind::Timeout, timeout_message(self.limits.deadline))),
        };
        let duration = started.elapsed();
        let state = store.into_data();
        RunReport { result, logs: collect_logs(state, &stdout, &stderr), duration }
    }
}

fn timeout_message(deadline: Duration) -> String {
    format!("the event ran longer than its {} ms deadline", deadline.as_millis())
}

async fn execute(
    store: &mut Store<StoreState>,
    pre: &wasmtime::InstancePre<StoreState>,
    abi: &AbiExports,
    input: &[u8],
) -> Result<Outcome, Failure> {
    let instance =
        pre.instantiate_async(&mut *store).await.map_err(|e| classify(store, e, FailureKind::Instantiate))?;
    let exports = abi.of(&instance, store)?;
    store.data_mut().memory = Some(exports.memory);
    if let Some(initialize) = abi.initialize(&instance, store) {
        initialize.call_async(&mut *store, ()).await.map_err(|e| classify(store, e, FailureKind::Trap))?;
    }

    let len = i32::try_from(input.len())
        .map_err(|_| Failure::new(FailureKind::AllocFailed, "invocation larger than 2 GiB"))?;
    let ptr = exports.alloc.call_async(&mut *store, len).await.map_err(|e| classify(store, e, FailureKind::Trap))?;
    if ptr == 0 {
        return Err(Failure::new(FailureKind::AllocFailed, format!("weft_alloc({len}) returned 0")));
    }
    exports.memory.write(&mut *store, ptr as u32 as usize, input).map_err(|_| {
        Failure::new(FailureKind::BadOutput, format!("weft_alloc returned {ptr}, outside guest memory"))
    })?;

    let packed =
        exports.handle.call_async(&mut *store, (ptr, len)).await.map_err(|e| classify(store, e, FailureKind::Trap))?;
    let (out_ptr, out_len) = ((packed as u64 >> 32) as usize, (packed as u64 & 0xffff_ffff) as usize);
    let max = store.data().limits.output_bytes;
    if out_len > max {
        return Err(Failure::new(
            FailureKind::OutputTooLarge,
            format!("outcome is {out_len} bytes, more than the {max} allowed"),
        ));
    }
    let output = exports.memory.data(&*store).get(out_ptr..out_ptr + out_len).ok_or_else(|| {
        Failure::new(FailureKind::BadOutput, format!("outcome [{out_ptr}, +{out_len}) lies outside guest memory"))
    })?;
    Outcome::parse(output)
}

/// The guest ABI's exports of one module, found by name and type-checked once when the
/// module is prepared; each instance then fetches them by index, with no string lookups,
/// no per-instance type checks and no error values built for an absent `_initialize`.
#[derive(Clone, Copy)]
pub(crate) struct AbiExports {
    memory: Option<ModuleExport>,
    /// These are `Some` only when the export has the ABI's signature.
    alloc: Option<ModuleExport>,
    handle: Option<ModuleExport>,
    initialize: Option<ModuleExport>,
}

/// An instance's exports the runtime calls for one invocation.
struct Exports {
    memory: Memory,
    alloc: TypedFunc<i32, i32>,
    handle: TypedFunc<(i32, i32), i64>,
}

impl AbiExports {
    pub(crate) fn of_module(module: &Module) -> Self {
        use ValType::{I32, I64};
        let func = |name: &str, params: &[ValType], results: &[ValType]| {
            let expected = FuncType::new(module.engine(), params.iter().cloned(), results.iter().cloned());
            let actual = module.get_export(name)?.func()?.clone();
            FuncType::eq(&actual, &expected).then(|| module.get_export_index(name)).flatten()
        };
        Self {
            memory: module.get_export_index("memory"),
            alloc: func("weft_alloc", &[I32], &[I32]),
            handle: func("weft_handle", &[I32, I32], &[I64]),
            initialize: func("_initialize", &[], &[]),
        }
    }

    /// `_initialize`, when the module exports it with the reactor's type.
    fn initialize(&self, instance: &Instance, store: &mut Store<StoreState>) -> Option<TypedFunc<(), ()>> {
        let func = instance.get_module_export(&mut *store, self.initialize.as_ref()?)?.into_func()?;
        // SAFETY: `of_module` checked that this export has exactly this signature.
        Some(unsafe { TypedFunc::new_unchecked(&*store, func) })
    }

    /// Publish-time validation guarantees these exist with these types.
    fn of(&self, instance: &Instance, store: &mut Store<StoreState>) -> Result<Exports, Failure> {
        let missing = |what: &str| Failure::new(FailureKind::Instantiate, format!("missing export {what}"));
        let mut export = |index: &Option<ModuleExport>| {
            index.as_ref().and_then(|index| instance.get_module_export(&mut *store, index))
        };
        let memory = export(&self.memory).and_then(Extern::into_memory).ok_or_else(|| missing("memory"))?;
        let alloc = export(&self.alloc).and_then(Extern::into_func).ok_or_else(|| missing("weft_alloc"))?;
        let handle = export(&self.handle).and_then(Extern::into_func).ok_or_else(|| missing("weft_handle"))?;
        // SAFETY: `of_module` checked that these exports have exactly these signatures.
        let (alloc, handle) =
            unsafe { (TypedFunc::new_unchecked(&*store, alloc), TypedFunc::new_unchecked(&*store, handle)) };
        Ok(Exports { memory, alloc, handle })
    }
}

/// Turns an error out of wasm into the failure kind the events log records.
fn classify(store: &Store<StoreState>, error: wasmtime::Error, fallback: FailureKind) -> Failure {
    if let Some(exit) = error.downcast_ref::<I32Exit>() {
        return Failure::new(FailureKind::Exit, format!("the guest called proc_exit({})", exit.0));
    }
    if let Some(limit) = error.downcast_ref::<LimitExceeded>() {
        return Failure::new(FailureKind::HostCallLimit, limit.to_string());
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => {
            return Failure::new(FailureKind::Timeout, timeout_message(store.data().limits.deadline));
        }
        Some(Trap::StackOverflow) => {
            return Failure::new(FailureKind::StackOverflow, "the guest exhausted its call stack");
        }
        _ => {}
    }
    if store.data().limiter.refused_growth {
        return Failure::new(
            FailureKind::MemoryLimit,
            format!("the guest needed more than its {} bytes of memory: {error:#}", store.data().limits.memory_bytes),
        );
    }
    Failure::new(fallback, format!("{error:#}"))
}

fn collect_logs(mut state: StoreState, stdout: &CapturedOutput, stderr: &CapturedOutput) -> Vec<LogLine> {
    for (pipe, level) in [(stdout, LogLevel::Info), (stderr, LogLevel::Error)] {
        let (bytes, truncated) = pipe.take();
        for line in String::from_utf8_lossy(&bytes).lines().filter(|l| !l.is_empty()) {
            state.logs.push(LogLine::now(level, line.to_owned()));
        }
        state.logs_truncated |= truncated;
    }
    if state.logs_truncated {
        state.logs.push(LogLine::now(LogLevel::Warn, format!("logs truncated at {} bytes", state.limits.log_bytes)));
    }
    state.logs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abi_exports_with_another_signature_are_not_kept() {
        let engine = wasmtime::Engine::default();
        let module = |wat: &str| Module::new(&engine, wat).unwrap();
        let abi = AbiExports::of_module(&module(
            r#"(module (memory (export "memory") 1)
                (func (export "weft_alloc") (param i32) (result i32) (i32.const 0))
                (func (export "weft_handle") (param i32 i32) (result i64) (i64.const 0))
                (func (export "_initialize")))"#,
        ));
        assert!(abi.memory.is_some() && abi.alloc.is_some() && abi.handle.is_some() && abi.initialize.is_some());

        // Such a module never passes validation at publish; were its artifact loaded, the
        // exports are treated as missing rather than called with the wrong types.
        let abi = AbiExports::of_module(&module(
            r#"(module (memory (export "memory") 1)
                (func (export "weft_alloc") (param i64) (result i32) (i32.const 0))
                (func (export "weft_handle") (param i32 i32) (result i32) (i32.const 0))
                (func (export "_initialize") (param i32)))"#,
        ));
        assert!(abi.alloc.is_none() && abi.handle.is_none() && abi.initialize.is_none());
    }
}
