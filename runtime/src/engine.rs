//! The shared wasmtime engine: configuration, compilation and the epoch ticker.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::Semaphore;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, InstancePre, Linker, Module, PoolingAllocationConfig};

use crate::host::{self, HostServices};
use crate::input::Input;
use crate::invoke::{AbiExports, Invocation, StoreState};
use crate::limits::Limits;
use crate::outcome::RunReport;
use crate::snapshot::{self, Snapshot};
use crate::validate::{self, ValidationError};
use crate::{Error, Result};

/// Server-wide settings of the runtime.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// How many instances may run at once (the pool's size).
    pub max_instances: u32,
    /// The ceiling for every integration's [`Limits`].
    pub max_limits: Limits,
    /// How long an event waits for a free instance slot before [`Error::Busy`].
    pub queue_timeout: Duration,
    /// Use the pooling instance allocator (fast); `false` allocates on demand (the baseline
    /// the benchmarks compare against).
    pub pooling: bool,
    /// Largest accepted module, in bytes.
    pub max_module_bytes: usize,
    /// How often the epoch advances: the granularity of deadlines and of yielding.
    pub epoch_tick: Duration,
    /// Pre-initialise modules at [`Runtime::compile`] (`wasmtime-wizer`); `false` compiles
    /// them as published (the baseline the benchmarks compare against).
    pub snapshot: bool,
    /// How long a module's initialisation may run at compile time before the snapshot is
    /// given up (the module then runs as published).
    pub init_deadline: Duration,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            max_instances: 128,
            max_limits: Limits { memory_bytes: 256 << 20, deadline: Duration::from_secs(60), ..Limits::default() },
            queue_timeout: Duration::from_secs(5),
            pooling: true,
            max_module_bytes: 16 << 20,
            epoch_tick: Duration::from_millis(5),
            snapshot: true,
            init_deadline: Duration::from_secs(2),
        }
    }
}

/// A compiled, linked module, ready to instantiate many times.
#[derive(Clone)]
pub struct PreparedModule {
    pre: InstancePre<StoreState>,
    abi: AbiExports,
    snapshot: Snapshot,
    /// ABI v2: where the guest's input buffer is (the same in every instance of a module),
    /// learnt from `weft_buffer` on the first event.
    input_buffer: Arc<OnceLock<(u32, u32)>>,
}

impl PreparedModule {
    /// The guest ABI version the module speaks (1 or 2).
    pub fn abi_version(&self) -> u32 {
        self.abi.version()
    }

    /// Whether [`Runtime::compile`] pre-initialised it (a module loaded from an artifact
    /// reports what can be seen: an init export left means no snapshot).
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// The compiled machine code, to store next to the module so that loading it later
    /// does not compile again (see [`Runtime::load`]).
    pub fn serialize(&self) -> Result<Vec<u8>> {
        self.pre.module().serialize().map_err(|e| Error::Artifact(format!("{e:#}")))
    }
}

/// The wasmtime engine with its linker, instance pool and epoch ticker.
pub struct Runtime {
    engine: Engine,
    linker: Linker<StoreState>,
    slots: Arc<Semaphore>,
    config: RuntimeConfig,
    ticker_stop: Arc<AtomicBool>,
    /// The JavaScript engine, prepared on the first [`Runtime::compile_script`].
    script: OnceLock<crate::script::ScriptEngine>,
}

impl Runtime {
    /// Configures the engine and starts the epoch ticker thread.
    pub fn new(config: RuntimeConfig) -> Result<Self> {
        let mut wasm = Config::new();
        wasm.epoch_interruption(true);
        wasm.max_wasm_stack(512 << 10);
        if std::env::var_os("WEFT_PERF_MAP").is_some() {
            // Lets `perf report` name guest functions: wasmtime writes /tmp/perf-<pid>.map.
            wasm.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        if config.pooling {
            let mut pool = PoolingAllocationConfig::new();
            pool.total_core_instances(config.max_instances)
                .total_memories(config.max_instances)
                .total_tables(config.max_instances)
                .total_stacks(config.max_instances)
                .total_component_instances(0)
                .max_memory_size(config.max_limits.memory_bytes)
                .table_elements(100_000)
                // Reset a reused slot's first pages with memset instead of handing them back
                // to the kernel: the next instance then takes no page faults for its stack and
                // the start of its heap, where nearly every guest's work happens.
                .linear_memory_keep_resident(2 << 20)
                .table_keep_resident(64 << 10)
                .async_stack_keep_resident(128 << 10);
            // Where the kernel has PAGEMAP_SCAN (Linux 6.7+), reset only the pages an instance
            // wrote, not its whole memory: a snapshotted module's memory holds its input buffer,
            // stack and heap, of which an event touches a fraction (hello: 35 → 28 µs/event; a
            // JavaScript snapshot's ~2.4 MB image no longer faults page by page: js_event p50
            // ~990 → ~630 µs).
            pool.pagemap_scan(wasmtime::Enabled::Auto);
            wasm.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        }
        let engine = Engine::new(&wasm).map_err(|e| Error::Engine(format!("{e:#}")))?;
        let mut linker = Linker::new(&engine);
        crate::wasi::add_to_linker(&mut linker).map_err(|e| Error::Engine(format!("{e:#}")))?;
        host::add_to_linker(&mut linker).map_err(|e| Error::Engine(format!("{e:#}")))?;

        let ticker_stop = Arc::new(AtomicBool::new(false));
        spawn_epoch_ticker(engine.clone(), config.epoch_tick, ticker_stop.clone());
        Ok(Self {
            engine,
            linker,
            slots: Arc::new(Semaphore::new(config.max_instances as usize)),
            config,
            ticker_stop,
            script: OnceLock::new(),
        })
    }

    /// The settings this runtime was built with.
    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    pub(crate) fn wasm_engine(&self) -> &Engine {
        &self.engine
    }

    pub(crate) fn script_cell(&self) -> &OnceLock<crate::script::ScriptEngine> {
        &self.script
    }

    /// How many instance slots are free right now.
    pub fn idle_slots(&self) -> usize {
        self.slots.available_permits()
    }

    /// Validates `wasm` against the guest ABI (v1 or v2), pre-initialises it (unless the
    /// runtime is configured not to, or the module cannot be: then it runs as published and
    /// [`PreparedModule::snapshot`] says why) and compiles it.
    pub fn compile(&self, wasm: &[u8]) -> Result<PreparedModule, ValidationError> {
        if wasm.len() > self.config.max_module_bytes {
            return Err(ValidationError::TooLarge { size: wasm.len(), max: self.config.max_module_bytes });
        }
        if !wasm.starts_with(b"\0asm") {
            return Err(ValidationError::NotWasm);
        }
        let module = Module::from_binary(&self.engine, wasm).map_err(|e| ValidationError::Compile(format!("{e:#}")))?;
        validate::check_interface(&module)?;
        if crate::script::is_script_snapshot(wasm) {
            // A JavaScript bundle's snapshot (`compile_script`): initialised already.
            return self.link(module, crate::script::snapshot_of_script());
        }
        if !self.config.snapshot {
            return self.link(module, Snapshot::NotTaken { reason: "snapshots are turned off on this server".into() });
        }
        let started = std::time::Instant::now();
        let snapshotted = snapshot::pre_initialize(
            &self.engine,
            &module,
            wasm,
            self.config.init_deadline,
            self.config.max_limits.memory_bytes,
        )
        .and_then(|bytes| {
            let module = Module::from_binary(&self.engine, &bytes).map_err(|e| format!("{e:#}"))?;
            validate::check_interface(&module).map_err(|e| e.to_string())?;
            Ok(module)
        });
        match snapshotted {
            Ok(snapshotted) => self.link(snapshotted, Snapshot::Taken { took: started.elapsed() }),
            Err(reason) => self.link(module, Snapshot::NotTaken { reason }),
        }
    }

    /// Loads a module from [`PreparedModule::serialize`]'s bytes without compiling.
    ///
    /// Artifacts must come from this server's own storage: loading one runs its machine
    /// code, so it is only as trustworthy as the database it came from.
    pub fn load(&self, artifact: &[u8]) -> Result<PreparedModule> {
        // SAFETY: artifacts are produced by `PreparedModule::serialize` and kept in the
        // server's own database; wasmtime checks the engine version and configuration.
        let module =
            unsafe { Module::deserialize(&self.engine, artifact) }.map_err(|e| Error::Artifact(format!("{e:#}")))?;
        let snapshot = loaded_snapshot(&module);
        self.link(module, snapshot).map_err(|e| Error::Artifact(e.to_string()))
    }

    /// Like [`Runtime::load`], from a file that is mapped rather than read: pages of
    /// machine code are loaded as they run, and memory images map the file directly.
    ///
    /// The file must come from the server's own artifact directory and never be modified
    /// in place while mapped (replace it by renaming a new file over it).
    pub fn load_file(&self, path: &std::path::Path) -> Result<PreparedModule> {
        // SAFETY: as for `load`; the server writes these files itself, atomically.
        let module = unsafe { Module::deserialize_file(&self.engine, path) }
            .map_err(|e| Error::Artifact(format!("{}: {e:#}", path.display())))?;
        let snapshot = loaded_snapshot(&module);
        self.link(module, snapshot).map_err(|e| Error::Artifact(e.to_string()))
    }

    fn link(&self, module: Module, snapshot: Snapshot) -> Result<PreparedModule, ValidationError> {
        let link_error = |e: wasmtime::Error| ValidationError::Link(format!("{e:#}"));
        // WASI functions no guest is given answer ENOSYS; a module importing one gets its
        // own copy of the linker with the stubs.
        let mut linker = self.linker.clone();
        let pre = if crate::wasi::stub_missing(&mut linker, &module).map_err(link_error)? {
            linker.instantiate_pre(&module)
        } else {
            self.linker.instantiate_pre(&module)
        }
        .map_err(link_error)?;
        Ok(PreparedModule { abi: AbiExports::of_module(pre.module()), pre, snapshot, input_buffer: Arc::default() })
    }

    /// Runs one invocation in a fresh instance. Waits up to the queue timeout for a free
    /// instance slot; guest failures are reported inside the [`RunReport`].
    pub async fn run(
        &self,
        module: &PreparedModule,
        invocation: &[u8],
        limits: &Limits,
        host: Arc<dyn HostServices>,
    ) -> Result<RunReport> {
        self.run_input(module, Input::Json(invocation), limits, host, None).await
    }

    /// Like [`Runtime::run`]; once the guest has run a tick it continues only while it holds
    /// one of `turns`' permits, which the host shares between one tenant's guests.
    pub async fn run_with_turns(
        &self,
        module: &PreparedModule,
        invocation: &[u8],
        limits: &Limits,
        host: Arc<dyn HostServices>,
        turns: Option<Arc<Semaphore>>,
    ) -> Result<RunReport> {
        self.run_input(module, Input::Json(invocation), limits, host, turns).await
    }

    /// Like [`Runtime::run_with_turns`], for an input in either form: each is converted when
    /// the module speaks the other ABI (see [`Input`]).
    pub async fn run_input(
        &self,
        module: &PreparedModule,
        input: Input<'_>,
        limits: &Limits,
        host: Arc<dyn HostServices>,
        turns: Option<Arc<Semaphore>>,
    ) -> Result<RunReport> {
        let busy = || Error::Busy { slots: self.config.max_instances };
        let _slot = tokio::time::timeout(self.config.queue_timeout, self.slots.acquire())
            .await
            .map_err(|_| busy())?
            .map_err(|_| busy())?;
        let limits = limits.capped_by(&self.config.max_limits);
        Ok(Invocation {
            engine: &self.engine,
            pre: &module.pre,
            abi: &module.abi,
            input_buffer: &module.input_buffer,
            input,
            limits: &limits,
            host,
            turns,
        }
        .run()
        .await)
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

/// What a loaded artifact shows of its snapshot: an init export left means none was taken.
fn loaded_snapshot(module: &Module) -> Snapshot {
    if module.get_export("_initialize").is_some() || module.get_export(snapshot::INIT_EXPORT).is_some() {
        Snapshot::NotTaken { reason: "the stored module was not pre-initialised".into() }
    } else {
        Snapshot::Taken { took: Duration::ZERO }
    }
}

fn spawn_epoch_ticker(engine: Engine, tick: Duration, stop: Arc<AtomicBool>) {
    std::thread::Builder::new()
        .name("weft-epoch".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(tick);
                engine.increment_epoch();
            }
        })
        .expect("spawn the epoch ticker thread");
}
