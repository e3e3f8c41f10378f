//! One invocation: a fresh store, instantiate, hand the input to the guest (ABI v1:
//! `weft_alloc` + `weft_handle`; ABI v2: one `weft_run` on the buffer the module already
//! has), read the outcome back, and classify whatever went wrong.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use wasmtime::{
    Extern, FuncType, Instance, Memory, Module, ModuleExport, ResourceLimiter, Store, Trap, TypedFunc, UpdateDeadline,
    ValType,
};

use crate::host::{HostServices, LogLevel, LogLine};
use crate::input::{EventParts, Input};
use crate::limits::Limits;
use crate::outcome::{Failure, FailureKind, Outcome, RunReport};
use crate::wasi::{Captured, GuestExit};

/// Per-store state: everything one invocation owns.
pub(crate) struct StoreState {
    pub(crate) stdout: Captured,
    pub(crate) stderr: Captured,
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
    pub(crate) input_buffer: &'a OnceLock<(u32, u32)>,
    pub(crate) input: Input<'a>,
    pub(crate) limits: &'a Limits,
    pub(crate) host: Arc<dyn HostServices>,
    /// Turns of CPU shared by the guests of one tenant (see [`crate::Runtime::run_with_turns`]).
    pub(crate) turns: Option<Arc<tokio::sync::Semaphore>>,
}

impl Invocation<'_> {
    pub(crate) async fn run(self) -> RunReport {
        let state = StoreState {
            stdout: Captured::default(),
            stderr: Captured::default(),
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
            execute(&mut store, self.pre, self.abi, self.input_buffer, self.input).await
        };
        let result = match tokio::time::timeout(self.limits.deadline, run).await {
            Ok(result) => result,
            Err(_) => Err(Failure::new(FailureKind::Timeout, timeout_message(self.limits.deadline))),
        };
        let duration = started.elapsed();
        let state = store.into_data();
        RunReport { result, logs: collect_logs(state), duration }
    }
}

fn timeout_message(deadline: Duration) -> String {
    format!("the event ran longer than its {} ms deadline", deadline.as_millis())
}

async fn execute(
    store: &mut Store<StoreState>,
    pre: &wasmtime::InstancePre<StoreState>,
    abi: &AbiExports,
    input_buffer: &OnceLock<(u32, u32)>,
    input: Input<'_>,
) -> Result<Outcome, Failure> {
    let instance =
        pre.instantiate_async(&mut *store).await.map_err(|e| classify(store, e, FailureKind::Instantiate))?;
    let memory = abi.memory(&instance, store)?;
    store.data_mut().memory = Some(memory);
    // A snapshot has run these already (and no longer exports them).
    for init in [abi.initialize, abi.init] {
        if let Some(init) = AbiExports::typed::<(), ()>(&instance, store, init) {
            init.call_async(&mut *store, ()).await.map_err(|e| classify(store, e, FailureKind::Trap))?;
        }
    }
    match abi.version() {
        2 => match input {
            Input::Parts(parts) => execute_v2(store, &instance, memory, abi, input_buffer, parts).await,
            Input::Json(json) => {
                let owned = Input::to_v2(json)?;
                execute_v2(store, &instance, memory, abi, input_buffer, owned.parts()).await
            }
        },
        _ => execute_v1(store, &instance, memory, abi, &input.to_v1()?).await,
    }
}

async fn execute_v1(
    store: &mut Store<StoreState>,
    instance: &Instance,
    memory: Memory,
    abi: &AbiExports,
    input: &[u8],
) -> Result<Outcome, Failure> {
    let missing = |what: &str| Failure::new(FailureKind::Instantiate, format!("missing export {what}"));
    let alloc = AbiExports::typed::<i32, i32>(instance, store, abi.alloc).ok_or_else(|| missing("weft_alloc"))?;
    let handle =
        AbiExports::typed::<(i32, i32), i64>(instance, store, abi.handle).ok_or_else(|| missing("weft_handle"))?;
    let len = i32::try_from(input.len())
        .map_err(|_| Failure::new(FailureKind::AllocFailed, "invocation larger than 2 GiB"))?;
    let ptr = alloc.call_async(&mut *store, len).await.map_err(|e| classify(store, e, FailureKind::Trap))?;
    if ptr == 0 {
        return Err(Failure::new(FailureKind::AllocFailed, format!("weft_alloc({len}) returned 0")));
    }
    memory.write(&mut *store, ptr as u32 as usize, input).map_err(|_| {
        Failure::new(FailureKind::BadOutput, format!("weft_alloc returned {ptr}, outside guest memory"))
    })?;

    let packed = handle.call_async(&mut *store, (ptr, len)).await.map_err(|e| classify(store, e, FailureKind::Trap))?;
    Outcome::parse(output_slice(store, memory, packed)?)
}

/// ABI v2: the input goes into the buffer `weft_buffer` names (the same in every instance
/// of a module, so asked once per module), or one `weft_reserve` makes when it is bigger;
/// then one call.
async fn execute_v2(
    store: &mut Store<StoreState>,
    instance: &Instance,
    memory: Memory,
    abi: &AbiExports,
    input_buffer: &OnceLock<(u32, u32)>,
    parts: EventParts<'_>,
) -> Result<Outcome, Failure> {
    let missing = |what: &str| Failure::new(FailureKind::Instantiate, format!("missing export {what}"));
    let run = AbiExports::typed::<i32, i64>(instance, store, abi.run).ok_or_else(|| missing("weft_run"))?;
    let (mut ptr, cap) = match input_buffer.get() {
        Some(buffer) => *buffer,
        None => {
            let buffer =
                AbiExports::typed::<(), i64>(instance, store, abi.buffer).ok_or_else(|| missing("weft_buffer"))?;
            let packed = buffer.call_async(&mut *store, ()).await.map_err(|e| classify(store, e, FailureKind::Trap))?;
            *input_buffer.get_or_init(|| ((packed as u64 >> 32) as u32, packed as u64 as u32))
        }
    };
    let len = parts.len();
    let len32 =
        i32::try_from(len).map_err(|_| Failure::new(FailureKind::AllocFailed, "invocation larger than 2 GiB"))?;
    if len > cap as usize {
        let reserve =
            AbiExports::typed::<i32, i32>(instance, store, abi.reserve).ok_or_else(|| missing("weft_reserve"))?;
        let grown = reserve.call_async(&mut *store, len32).await.map_err(|e| classify(store, e, FailureKind::Trap))?;
        if grown == 0 {
            return Err(Failure::new(FailureKind::AllocFailed, format!("weft_reserve({len}) returned 0")));
        }
        ptr = grown as u32;
    }
    let data = memory.data_mut(&mut *store);
    let start = ptr as usize;
    let Some(target) = data.get_mut(start..start + len) else {
        return Err(Failure::new(
            FailureKind::BadInput,
            format!("the guest's input buffer [{start}, +{len}) lies outside its memory"),
        ));
    };
    let header = parts.header();
    let (head, rest) = target.split_at_mut(8);
    head.copy_from_slice(&header);
    let (event, rest) = rest.split_at_mut(parts.event.len());
    event.copy_from_slice(parts.event);
    let (environment, body) = rest.split_at_mut(parts.environment.len());
    environment.copy_from_slice(parts.environment);
    body.copy_from_slice(parts.body);

    let packed = run.call_async(&mut *store, len32).await.map_err(|e| classify(store, e, FailureKind::Trap))?;
    Outcome::parse_v2(output_slice(store, memory, packed)?)
}

/// The outcome bytes `(ptr << 32) | len` names, within the output limit and guest memory.
fn output_slice(store: &Store<StoreState>, memory: Memory, packed: i64) -> Result<&[u8], Failure> {
    let (out_ptr, out_len) = ((packed as u64 >> 32) as usize, (packed as u64 & 0xffff_ffff) as usize);
    let max = store.data().limits.output_bytes;
    if out_len > max {
        return Err(Failure::new(
            FailureKind::OutputTooLarge,
            format!("outcome is {out_len} bytes, more than the {max} allowed"),
        ));
    }
    memory.data(store).get(out_ptr..out_ptr + out_len).ok_or_else(|| {
        Failure::new(FailureKind::BadOutput, format!("outcome [{out_ptr}, +{out_len}) lies outside guest memory"))
    })
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
    /// ABI v2.
    run: Option<ModuleExport>,
    buffer: Option<ModuleExport>,
    reserve: Option<ModuleExport>,
    init: Option<ModuleExport>,
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
            run: func("weft_run", &[I32], &[I64]),
            buffer: func("weft_buffer", &[], &[I64]),
            reserve: func("weft_reserve", &[I32], &[I32]),
            init: func(crate::snapshot::INIT_EXPORT, &[], &[]),
        }
    }

    /// 2 when the module exports `weft_run`, else 1.
    pub(crate) fn version(&self) -> u32 {
        if self.run.is_some() { 2 } else { 1 }
    }

    fn memory(&self, instance: &Instance, store: &mut Store<StoreState>) -> Result<Memory, Failure> {
        self.memory
            .as_ref()
            .and_then(|index| instance.get_module_export(&mut *store, index))
            .and_then(Extern::into_memory)
            .ok_or_else(|| Failure::new(FailureKind::Instantiate, "missing export memory"))
    }

    /// An export `of_module` found with exactly the signature `P -> R`.
    fn typed<P: wasmtime::WasmParams, R: wasmtime::WasmResults>(
        instance: &Instance,
        store: &mut Store<StoreState>,
        index: Option<ModuleExport>,
    ) -> Option<TypedFunc<P, R>> {
        let func = instance.get_module_export(&mut *store, index.as_ref()?)?.into_func()?;
        // SAFETY: `of_module` checked that this export has exactly this signature, and
        // every call site names the same types as `of_module` for that export.
        Some(unsafe { TypedFunc::new_unchecked(&*store, func) })
    }
}

/// Turns an error out of wasm into the failure kind the events log records.
fn classify(store: &Store<StoreState>, error: wasmtime::Error, fallback: FailureKind) -> Failure {
    if let Some(exit) = error.downcast_ref::<GuestExit>() {
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

fn collect_logs(mut state: StoreState) -> Vec<LogLine> {
    for (pipe, level) in
        [(std::mem::take(&mut state.stdout), LogLevel::Info), (std::mem::take(&mut state.stderr), LogLevel::Error)]
    {
        for line in String::from_utf8_lossy(&pipe.bytes).lines().filter(|l| !l.is_empty()) {
            state.logs.push(LogLine::now(level, line.to_owned()));
        }
        state.logs_truncated |= pipe.truncated;
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
