//! Pre-initialisation at publish: run a module's `_initialize` (and the v2 init export
//! `weft_init`) once, with every import trapping, and keep its memory and globals as a new
//! module (`wasmtime-wizer`). Every event then starts from that state, copy-on-write,
//! instead of initialising again; each event still gets a fresh instance.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use wasmtime::{Engine, Instance, Linker, Module, Store, StoreLimits, StoreLimitsBuilder};
use wasmtime_wizer::{InstanceState, SnapshotVal, ValType, Wizer};

/// The v2 init export: run after `_initialize`, at publish only.
pub(crate) const INIT_EXPORT: &str = "weft_init";

/// Whether a module was snapshotted, and why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Snapshot {
    /// The compiled module is the pre-initialised snapshot.
    Taken {
        /// How long initialising and snapshotting took.
        took: Duration,
    },
    /// The module as published is what runs; the reason says why.
    NotTaken {
        /// Why (for the publish answer and `weft check`).
        reason: String,
    },
}

impl Snapshot {
    /// Whether the snapshot was taken.
    pub fn taken(&self) -> bool {
        matches!(self, Snapshot::Taken { .. })
    }

    /// Why it was not taken.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Snapshot::Taken { .. } => None,
            Snapshot::NotTaken { reason } => Some(reason),
        }
    }
}

struct InitState {
    limits: StoreLimits,
}

/// Pre-initialises `wasm`, or says why it cannot be.
pub(crate) fn pre_initialize(
    engine: &Engine,
    plain: &Module,
    wasm: &[u8],
    deadline: Duration,
    memory_bytes: usize,
) -> Result<Vec<u8>, String> {
    let init = if plain.get_export(INIT_EXPORT).is_some() {
        INIT_EXPORT
    } else if plain.get_export("_initialize").is_some() {
        "_initialize"
    } else {
        return Err(format!("the module exports neither `_initialize` nor `{INIT_EXPORT}`: nothing to pre-initialise"));
    };
    let mut wizer = Wizer::new();
    wizer.init_func(init);
    let (cx, instrumented) = wizer.instrument(wasm).map_err(|e| format!("{e:#}"))?;
    let module = Module::from_binary(engine, &instrumented).map_err(|e| format!("{e:#}"))?;
    let mut linker = Linker::new(engine);
    // Host calls, WASI included, are unavailable while initialising.
    linker.define_unknown_imports_as_traps(&module).map_err(|e| format!("{e:#}"))?;
    let mut store =
        Store::new(engine, InitState { limits: StoreLimitsBuilder::new().memory_size(memory_bytes).build() });
    store.limiter(|state| &mut state.limits);
    let started = Instant::now();
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        if started.elapsed() >= deadline {
            Err(wasmtime::Error::msg(format!("initialisation ran longer than {} ms", deadline.as_millis())))
        } else {
            Ok(wasmtime::UpdateDeadline::Continue(1))
        }
    });
    block_on(async {
        let instance = linker.instantiate_async(&mut store, &module).await.map_err(|e| format!("{e:#}"))?;
        for name in ["_initialize", init] {
            if name == "_initialize" && module.get_export(name).is_none() {
                continue;
            }
            let func = instance
                .get_typed_func::<(), ()>(&mut store, name)
                .map_err(|e| format!("`{name}` must be a function () -> (): {e:#}"))?;
            func.call_async(&mut store, ()).await.map_err(|e| format!("`{name}` failed: {e:#}"))?;
            if name == init {
                break;
            }
        }
        wizer.snapshot(&cx, &mut Instantiated { store: &mut store, instance }).await.map_err(|e| format!("{e:#}"))
    })
}

/// A running instance as wizer reads it for the snapshot.
pub(crate) struct Instantiated<'a, T: 'static> {
    pub(crate) store: &'a mut Store<T>,
    pub(crate) instance: Instance,
}

impl<T: Send + 'static> InstanceState for Instantiated<'_, T> {
    async fn global_get(&mut self, name: &str, _: ValType) -> SnapshotVal {
        let global = self.instance.get_global(&mut *self.store, name).expect("wizer exported this global");
        match global.get(&mut *self.store) {
            wasmtime::Val::I32(x) => SnapshotVal::I32(x),
            wasmtime::Val::I64(x) => SnapshotVal::I64(x),
            wasmtime::Val::F32(x) => SnapshotVal::F32(x),
            wasmtime::Val::F64(x) => SnapshotVal::F64(x),
            wasmtime::Val::V128(x) => SnapshotVal::V128(x.as_u128()),
            _ => panic!("wizer refuses modules with reference-typed mutable globals"),
        }
    }

    async fn memory_contents(&mut self, name: &str, contents: impl FnOnce(&[u8]) + Send) {
        let memory = self.instance.get_memory(&mut *self.store, name).expect("wizer exported this memory");
        contents(memory.data(&*self.store))
    }
}

/// Drives a future that never waits on I/O (imports trap, epoch callbacks never yield).
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        std::thread::yield_now();
    }
}
