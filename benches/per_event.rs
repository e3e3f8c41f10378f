//! Per-event overhead: instantiate hello in a fresh store, handle one `fetch`, drop.
//!
//! `cargo bench --bench per_event` (builds the examples first if needed). In one run:
//! - hello under guest ABI v2 (snapshotted at compile, one call per event, the parts the
//!   server writes), with the pooling allocator (what weft runs) and the on-demand one;
//! - the same hello built with the v1 SDK (tests/fixtures/v1/hello.wasm) under ABI v1, as it
//!   ran before snapshots, and snapshotted;
//! - the runtime alone: a v2 module answering `{}` at once;
//! - compile time of hello and of the biggest example, with and without the snapshot.
//!
//! Goals: v2 hello pooled ≤ 10 µs per event and ≥ 8× on-demand; the runtime alone ≤ 3 µs.
//! `-- --pooled-only` runs the pooled v2 hello loop alone, `-- --trivial-only` the runtime's
//! own cost alone: for profiling. `WEFT_BENCH_HELLO_BEFORE=path/to/hello.wasm` adds another
//! build of hello (e.g. from an older SDK) to the same run, pooled, for a before/after.

#[path = "support.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use weft_runtime::{EventParts, Input, Limits, NoHostServices, Runtime, RuntimeConfig};

/// Events per measured loop; `WEFT_BENCH_EVENTS` raises it for profiling, so that the loop
/// outweighs the module's compile in a profile.
fn events() -> usize {
    std::env::var("WEFT_BENCH_EVENTS").ok().and_then(|n| n.parse().ok()).unwrap_or(20_000)
}
const WARMUP: usize = 500;

/// Mean time per event, one event after another (the overhead, not throughput).
async fn per_event(config: RuntimeConfig, wasm: &[u8], input: Input<'_>, response: bool) -> Duration {
    let runtime = Runtime::new(config).unwrap();
    let module = runtime.compile(wasm).unwrap();
    let (limits, host) = (Limits::default(), Arc::new(NoHostServices));
    for _ in 0..WARMUP {
        runtime.run_input(&module, input, &limits, host.clone(), None).await.unwrap();
    }
    let started = Instant::now();
    let events = events();
    for _ in 0..events {
        let report = runtime.run_input(&module, input, &limits, host.clone(), None).await.unwrap();
        if response {
            assert!(matches!(report.result, Ok(weft_runtime::Outcome::Response(_))), "{:?}", report.result);
        }
    }
    started.elapsed() / events as u32
}

fn config(pooling: bool, snapshot: bool) -> RuntimeConfig {
    RuntimeConfig { pooling, snapshot, ..RuntimeConfig::default() }
}

/// A v2 module that answers `{}` at once: what the runtime itself costs per event.
const TRIVIAL: &str = r#"(module (memory (export "memory") 1) (data (i32.const 0) "\02\00\00\00{}")
    (func (export "weft_buffer") (result i64) (i64.const 0x0000100000010000))
    (func (export "weft_reserve") (param i32) (result i32) (i32.const 0))
    (func (export "weft_run") (param i32) (result i64) (i64.const 6)))"#;

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Best of three compiles.
fn compile_time(wasm: &[u8], snapshot: bool) -> (Duration, bool) {
    let runtime = Runtime::new(config(true, snapshot)).unwrap();
    let mut best = Duration::MAX;
    let mut taken = false;
    for _ in 0..3 {
        let started = Instant::now();
        let module = runtime.compile(wasm).unwrap();
        best = best.min(started.elapsed());
        taken = module.snapshot().taken();
    }
    (best, taken)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let wasm = support::hello_wasm();
    let (event, environment) = support::hello_parts();
    let v2 = Input::Parts(EventParts { event: &event, environment: environment.as_bytes(), body: b"" });
    if std::env::args().any(|arg| arg == "--pooled-only") {
        // For profilers (`WEFT_PERF_MAP=1 perf record … -- --pooled-only`): the pooled path alone.
        let pooled = per_event(config(true, true), &wasm, v2, true).await;
        println!("v2 hello, pooling allocator {:>8.2} µs/event", micros(pooled));
        return;
    }
    let trivial = wat::parse_str(TRIVIAL).unwrap();
    if std::env::args().any(|arg| arg == "--trivial-only") {
        let pooled = per_event(config(true, true), &trivial, v2, false).await;
        println!("runtime alone, pooling allocator {:>8.2} µs/event", micros(pooled));
        return;
    }
    let v1_wasm = support::v1_hello_wasm();
    let v1_json = support::hello_invocation();
    let v1 = Input::Json(&v1_json);
    let before =
        std::env::var_os("WEFT_BENCH_HELLO_BEFORE").map(|path| std::fs::read(path).expect("the hello to compare"));
    let mut before_best = Duration::MAX;
    // Interleave the configurations so machine noise hits all alike; keep the best.
    let mut best = [Duration::MAX; 6];
    for _ in 0..3 {
        if let Some(before) = &before {
            before_best = before_best.min(per_event(config(true, true), before, v2, true).await);
        }
        let runs = [
            per_event(config(true, true), &wasm, v2, true).await,
            per_event(config(false, true), &wasm, v2, true).await,
            per_event(config(true, false), &v1_wasm, v1, true).await,
            per_event(config(true, true), &v1_wasm, v1, true).await,
            per_event(config(true, true), &trivial, v2, false).await,
            per_event(config(false, true), &trivial, v2, false).await,
        ];
        for (best, run) in best.iter_mut().zip(runs) {
            *best = (*best).min(run);
        }
    }
    let [v2_pooled, v2_on_demand, v1_plain, v1_snapshot, trivial_pooled, trivial_on_demand] = best.map(micros);
    println!("per-event overhead, {} sequential fetch events, best of 3:", events());
    println!("  hello, ABI v2 ({} bytes, snapshotted):", wasm.len());
    println!("    pooling allocator   {v2_pooled:>8.2} µs/event (goal ≤ 10 µs)");
    println!("    on-demand allocator {v2_on_demand:>8.2} µs/event");
    println!("    ratio               {:>8.2}× faster pooled (goal ≥ 8×)", v2_on_demand / v2_pooled);
    if let Some(before) = &before {
        let before_pooled = micros(before_best);
        println!("  hello as WEFT_BENCH_HELLO_BEFORE built it ({} bytes), pooling allocator:", before.len());
        println!(
            "    pooling allocator   {before_pooled:>8.2} µs/event (this build is {:.2}× faster)",
            before_pooled / v2_pooled
        );
    }
    println!("  hello, ABI v1 ({} bytes, built with the v1 SDK), pooling allocator:", v1_wasm.len());
    println!("    as published        {v1_plain:>8.2} µs/event ({:.2}× v2's time)", v1_plain / v2_pooled);
    println!("    snapshotted         {v1_snapshot:>8.2} µs/event");
    println!("  runtime alone (a v2 module answering {{}} at once):");
    println!("    pooling allocator   {trivial_pooled:>8.2} µs/event (goal ≤ 3 µs)");
    println!("    on-demand allocator {trivial_on_demand:>8.2} µs/event");

    println!("compile at publish (validate, pre-initialise, compile), best of 3:");
    let mut examples = support::example_wasms();
    examples.sort_by_key(|(_, wasm)| std::cmp::Reverse(wasm.len()));
    let biggest = examples.into_iter().next().expect("built examples");
    for (name, wasm) in [("hello".to_owned(), wasm), biggest] {
        let (with, taken) = compile_time(&wasm, true);
        let (without, _) = compile_time(&wasm, false);
        println!(
            "  {name:<8} ({:>7} bytes) {:>8.1} ms with the snapshot (taken: {taken}), {:>8.1} ms without: snapshot costs {:.1} ms",
            wasm.len(),
            with.as_secs_f64() * 1e3,
            without.as_secs_f64() * 1e3,
            (with.as_secs_f64() - without.as_secs_f64()) * 1e3,
        );
    }
}
