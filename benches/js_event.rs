//! JavaScript integrations: a fetch event of a realistic bundle, run from its publish-time
//! snapshot, against evaluating the bundle per event without one; and the publish time.
//!
//! The bundle is built at bench time from npm, as `gitbook publish` builds it (esbuild:
//! ESM, es2020, platform neutral, minified, GitBook's conditions and defines): an
//! integration written with `@gitbook/runtime` (which pulls in `@gitbook/api`'s client).
//! Nothing of theirs is committed; `scripts/install-clients` installs them into
//! tests/clients.
//!
//! Goals (issue 20): ≤ 200 µs p50 per event, ≥ 30× faster than without a snapshot, publish
//! ≤ 2 s.
//!
//! The baseline instantiates the engine as published and calls its load export and then
//! `weft_run` in the same instance, per event: what a runtime without snapshots must do.
//! It runs under a plain wasmtime engine (on-demand allocation): the difference from the
//! pooling allocator is microseconds against milliseconds of evaluation.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use wasmtime::{Caller, Engine, Linker, Module, Store};
use weft_runtime::{EventParts, Input, Limits, NoHostServices, Outcome, Runtime, RuntimeConfig};

const EVENTS: usize = 2000;
const BASELINE_EVENTS: usize = 50;

const ENTRY: &str = r#"
import { createIntegration } from '@gitbook/runtime';

export default createIntegration({
  fetch: async (request, context) => {
    const url = new URL(request.url);
    const body = await request.arrayBuffer();
    const digest = await crypto.subtle.digest('SHA-256', body);
    return Response.json({
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      digest: [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join(''),
      installation: context.environment.installation?.id,
    });
  },
  events: {
    installation_setup: async () => {},
  },
});
"#;

/// Bundles [`ENTRY`] with the esbuild that comes with `@gitbook/cli`, with its options.
fn bundle() -> Vec<u8> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let clients = root.join("tests/clients");
    let esbuild = clients.join("node_modules/.bin/esbuild");
    if !clients.join("node_modules/@gitbook/runtime").exists() || !esbuild.exists() {
        let status = Command::new("bash").arg(root.join("scripts/install-clients")).status();
        assert!(status.is_ok_and(|s| s.success()), "scripts/install-clients failed");
    }
    let dir = tempfile::tempdir_in(&clients).expect("a directory beside node_modules");
    let entry = dir.path().join("index.js");
    let out = dir.path().join("script.js");
    std::fs::write(&entry, ENTRY).unwrap();
    let status = Command::new(&esbuild)
        .arg(&entry)
        .arg(format!("--outfile={}", out.display()))
        .args([
            "--bundle",
            "--platform=neutral",
            "--format=esm",
            "--target=es2020",
            "--minify",
            "--main-fields=worker,browser,module,jsnext,main",
            "--conditions=worker,browser,import,production",
            "--define:process.env.NODE_ENV=\"production\"",
            "--define:MODE=\"production\"",
            "--external:node:*",
            "--external:cloudflare:*",
            "--log-level=warning",
        ])
        .status()
        .expect("run esbuild");
    assert!(status.success(), "esbuild failed");
    std::fs::read(out).unwrap()
}

fn fetch_event() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "type": "fetch", "eventId": "evt_bench", "installationId": "inst_x",
        "request": {
            "method": "post", "url": "http://127.0.0.1/v1/integrations/bench/installations/inst_x/fetch/hello?name=weft",
            "path": "/hello", "query": "name=weft", "headers": {"content-type": "text/plain", "accept": "*/*"},
        },
    }))
    .unwrap()
}

const ENVIRONMENT: &str = r#"{"apiEndpoint":"http://127.0.0.1:8080","apiTokens":{"integration":"t1","installation":"t2"},"integration":{"name":"bench"},"installation":{"id":"inst_x","configuration":{}},"secrets":{}}"#;
const BODY: &[u8] = b"hello from the benchmark";

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Instantiates the engine as published, loads the bundle and runs one event: the
/// per-event work without a snapshot.
struct Unsnapshotted {
    engine: Engine,
    module: Module,
    linker: Linker<Vec<u8>>,
}

impl Unsnapshotted {
    fn new() -> Self {
        let engine = Engine::default();
        let wasm = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("runtime/js/weft-js.wasm")).unwrap();
        let module = Module::new(&engine, wasm).unwrap();
        let mut linker: Linker<Vec<u8>> = Linker::new(&engine);
        let memory = |caller: &mut Caller<'_, Vec<u8>>| caller.get_export("memory").unwrap().into_memory().unwrap();
        linker
            .func_wrap("weft", "call", move |mut caller: Caller<'_, Vec<u8>>, _ptr: i32, _len: i32| -> i64 {
                let _ = memory(&mut caller);
                *caller.data_mut() = br#"{"ok":null}"#.to_vec();
                11
            })
            .unwrap();
        linker
            .func_wrap("weft", "result", move |mut caller: Caller<'_, Vec<u8>>, ptr: i32| {
                let memory = memory(&mut caller);
                let result = caller.data().clone();
                memory.write(&mut caller, ptr as usize, &result).unwrap();
            })
            .unwrap();
        let wasi = "wasi_snapshot_preview1";
        linker
            .func_wrap(
                wasi,
                "clock_time_get",
                move |mut caller: Caller<'_, Vec<u8>>, _: i32, _: i64, out: i32| -> i32 {
                    let now =
                        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
                    let memory = memory(&mut caller);
                    memory.write(&mut caller, out as usize, &now.to_le_bytes()).unwrap();
                    0
                },
            )
            .unwrap();
        linker
            .func_wrap(wasi, "random_get", move |mut caller: Caller<'_, Vec<u8>>, ptr: i32, len: i32| -> i32 {
                let bytes: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(31)).collect();
                let memory = memory(&mut caller);
                memory.write(&mut caller, ptr as usize, &bytes).unwrap();
                0
            })
            .unwrap();
        linker.define_unknown_imports_as_traps(&module).unwrap();
        Self { engine, module, linker }
    }

    /// Writes `bytes` into the instance's input buffer (reserving room when needed).
    fn write_input(store: &mut Store<Vec<u8>>, instance: &wasmtime::Instance, bytes: &[u8]) {
        let memory = instance.get_memory(&mut *store, "memory").unwrap();
        let buffer =
            instance.get_typed_func::<(), i64>(&mut *store, "weft_buffer").unwrap().call(&mut *store, ()).unwrap();
        let (ptr, capacity) = ((buffer as u64 >> 32) as usize, (buffer as u64 & 0xffff_ffff) as usize);
        let at = if bytes.len() <= capacity {
            ptr
        } else {
            let reserve = instance.get_typed_func::<i32, i32>(&mut *store, "weft_reserve").unwrap();
            reserve.call(&mut *store, bytes.len() as i32).unwrap() as usize
        };
        memory.write(&mut *store, at, bytes).unwrap();
    }

    fn event(&self, script: &[u8], input: &[u8]) -> Vec<u8> {
        let mut store = Store::new(&self.engine, Vec::new());
        let instance = self.linker.instantiate(&mut store, &self.module).unwrap();
        if let Ok(init) = instance.get_typed_func::<(), ()>(&mut store, "_initialize") {
            init.call(&mut store, ()).unwrap();
        }
        Self::write_input(&mut store, &instance, script);
        let load = instance.get_typed_func::<i32, i64>(&mut store, "weft_js_load").unwrap();
        load.call(&mut store, script.len() as i32).unwrap();
        Self::write_input(&mut store, &instance, input);
        let run = instance.get_typed_func::<i32, i64>(&mut store, "weft_run").unwrap();
        let packed = run.call(&mut store, input.len() as i32).unwrap() as u64;
        let memory = instance.get_memory(&mut store, "memory").unwrap();
        let (ptr, len) = ((packed >> 32) as usize, (packed & 0xffff_ffff) as usize);
        memory.data(&store)[ptr..ptr + len].to_vec()
    }
}

#[tokio::main]
async fn main() {
    let script = bundle();
    let event = fetch_event();

    // Publish: the first compile on a server also prepares the engine (instrument and
    // compile it once); later ones only load, snapshot and compile the snapshot.
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let started = Instant::now();
    let compiled = runtime.compile_script(&script).expect("the bundle compiles");
    let first_publish = started.elapsed();
    let mut publishes = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        runtime.compile_script(&script).expect("the bundle compiles");
        publishes.push(started.elapsed());
    }
    let publish = *publishes.iter().min().unwrap();
    let module = compiled.module;

    let parts = EventParts { event: &event, environment: ENVIRONMENT.as_bytes(), body: BODY };
    let limits = Limits::default();
    let host = Arc::new(NoHostServices);
    let report = runtime.run_input(&module, Input::Parts(parts), &limits, host.clone(), None).await.unwrap();
    match &report.result {
        Ok(Outcome::Response(response)) if response.status == 200 => {
            println!("answer: {}", String::from_utf8_lossy(&response.body));
        }
        other => panic!("the bundle did not answer 200: {other:?} {:?}", report.logs),
    }
    for _ in 0..200 {
        runtime.run_input(&module, Input::Parts(parts), &limits, host.clone(), None).await.unwrap();
    }
    let mut times = Vec::with_capacity(EVENTS);
    for _ in 0..EVENTS {
        let started = Instant::now();
        let report = runtime.run_input(&module, Input::Parts(parts), &limits, host.clone(), None).await.unwrap();
        times.push(started.elapsed());
        assert!(matches!(report.result, Ok(Outcome::Response(_))));
    }
    times.sort();
    let (p50, p99) = (percentile(&times, 0.5), percentile(&times, 0.99));

    let mut input = Vec::new();
    input.extend_from_slice(&(event.len() as u32).to_le_bytes());
    input.extend_from_slice(&(ENVIRONMENT.len() as u32).to_le_bytes());
    input.extend_from_slice(&event);
    input.extend_from_slice(ENVIRONMENT.as_bytes());
    input.extend_from_slice(BODY);
    let baseline = Unsnapshotted::new();
    let outcome = baseline.event(&script, &input);
    assert!(String::from_utf8_lossy(&outcome).contains(r#""status":200"#), "{}", String::from_utf8_lossy(&outcome));
    let mut base = Vec::with_capacity(BASELINE_EVENTS);
    for _ in 0..BASELINE_EVENTS {
        let started = Instant::now();
        baseline.event(&script, &input);
        base.push(started.elapsed());
    }
    base.sort();
    let base_p50 = percentile(&base, 0.5);

    println!(
        "JavaScript fetch event, a {} byte bundle (@gitbook/runtime + @gitbook/api, esbuild as `gitbook publish`):",
        script.len()
    );
    println!(
        "  from the snapshot      p50 {:>9.1} µs   p99 {:>9.1} µs   ({EVENTS} events; goal p50 ≤ 200 µs)",
        micros(p50),
        micros(p99)
    );
    println!("  evaluated per event    p50 {:>9.1} µs   ({BASELINE_EVENTS} events, no snapshot)", micros(base_p50));
    println!(
        "  ratio                  {:>9.1}× faster from the snapshot (goal ≥ 30×)",
        base_p50.as_secs_f64() / p50.as_secs_f64()
    );
    println!("publish (compile_script: load, snapshot, compile):");
    println!(
        "  first on this server   {:>9.1} ms (includes preparing the engine once)",
        first_publish.as_secs_f64() * 1e3
    );
    println!("  later, best of 3       {:>9.1} ms (goal ≤ 2000 ms)", publish.as_secs_f64() * 1e3);
    println!("  snapshot               {:>9} bytes", compiled.wasm.len());
}
