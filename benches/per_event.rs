//! Per-event overhead: instantiate hello in a fresh store, handle one `fetch`, drop — with
//! the pooling allocator (what weft runs) against wasmtime's default on-demand allocator,
//! measured in the same run.
//!
//! `cargo bench --bench per_event` (builds the examples first if needed).
//! Goal: at most 10 µs per event and at least 4× faster than on-demand.
//! `-- --pooled-only` runs the pooled hello loop alone, `-- --trivial-only` the runtime's own
//! cost alone: for profiling.

#[path = "support.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use weft_runtime::{Limits, NoHostServices, Runtime, RuntimeConfig};

const EVENTS: usize = 20_000;
const WARMUP: usize = 500;

/// Like [`per_event`] for a module whose outcome is not a response.
async fn per_event_any(pooling: bool, wasm: &[u8]) -> Duration {
    let runtime = Runtime::new(RuntimeConfig { pooling, ..RuntimeConfig::default() }).unwrap();
    let module = runtime.compile(wasm).unwrap();
    let input = support::hello_invocation();
    let (limits, host) = (Limits::default(), Arc::new(NoHostServices));
    let started = Instant::now();
    for _ in 0..EVENTS {
        runtime.run(&module, &input, &limits, host.clone()).await.unwrap();
    }
    started.elapsed() / EVENTS as u32
}

/// Mean time per event, one event after another (the overhead, not throughput).
async fn per_event(pooling: bool, wasm: &[u8]) -> Duration {
    let runtime = Runtime::new(RuntimeConfig { pooling, ..RuntimeConfig::default() }).unwrap();
    let module = runtime.compile(wasm).unwrap();
    let input = support::hello_invocation();
    let (limits, host) = (Limits::default(), Arc::new(NoHostServices));
    for _ in 0..WARMUP {
        runtime.run(&module, &input, &limits, host.clone()).await.unwrap();
    }
    let started = Instant::now();
    for _ in 0..EVENTS {
        let report = runtime.run(&module, &input, &limits, host.clone()).await.unwrap();
        assert!(matches!(report.result, Ok(weft_runtime::Outcome::Response(_))), "{:?}", report.result);
    }
    started.elapsed() / EVENTS as u32
}

/// A module that answers `{}` at once: what the runtime itself costs per event.
const TRIVIAL: &str = r#"(module (memory (export "memory") 1) (data (i32.const 0) "{}")
    (func (export "weft_alloc") (param i32) (result i32) (i32.const 4096))
    (func (export "weft_handle") (param i32 i32) (result i64) (i64.const 2)))"#;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let wasm = support::hello_wasm();
    if std::env::args().any(|arg| arg == "--pooled-only") {
        // For profilers (`WEFT_PERF_MAP=1 perf record … -- --pooled-only`): the pooled path alone.
        let pooled = per_event(true, &wasm).await;
        println!("pooling allocator {:>8.2} µs/event", pooled.as_secs_f64() * 1e6);
        return;
    }
    if std::env::args().any(|arg| arg == "--trivial-only") {
        let pooled = per_event_any(true, &wat::parse_str(TRIVIAL).unwrap()).await;
        println!("runtime alone, pooling allocator {:>8.2} µs/event", pooled.as_secs_f64() * 1e6);
        return;
    }
    // Interleave the two configurations so machine noise hits both alike; keep the best.
    let (mut pooled, mut on_demand) = (Duration::MAX, Duration::MAX);
    for _ in 0..3 {
        pooled = pooled.min(per_event(true, &wasm).await);
        on_demand = on_demand.min(per_event(false, &wasm).await);
    }
    println!("per-event overhead, hello ({} bytes), {EVENTS} sequential fetch events, best of 3:", wasm.len());
    println!("  pooling allocator   {:>8.2} µs/event (goal ≤ 10 µs)", pooled.as_secs_f64() * 1e6);
    println!("  on-demand allocator {:>8.2} µs/event (baseline)", on_demand.as_secs_f64() * 1e6);
    println!(
        "  ratio               {:>8.2}× faster pooled (goal ≥ 4×)",
        on_demand.as_secs_f64() / pooled.as_secs_f64()
    );

    // The same with a module that answers `{}` at once: what the runtime itself costs,
    // without hello's own work (std initialisation, JSON, logging through a host call).
    let trivial = wat::parse_str(TRIVIAL).unwrap();
    let (mut pooled, mut on_demand) = (Duration::MAX, Duration::MAX);
    for _ in 0..3 {
        pooled = pooled.min(per_event_any(true, &trivial).await);
        on_demand = on_demand.min(per_event_any(false, &trivial).await);
    }
    println!("runtime alone (a module answering {{}} at once), best of 3:");
    println!("  pooling allocator   {:>8.2} µs/event", pooled.as_secs_f64() * 1e6);
    println!("  on-demand allocator {:>8.2} µs/event", on_demand.as_secs_f64() * 1e6);
    println!("  ratio               {:>8.2}× faster pooled", on_demand.as_secs_f64() / pooled.as_secs_f64());
}
