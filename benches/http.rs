//! HTTP throughput of an installation's public endpoint running hello, against a plain axum
//! handler returning the same bytes, both driven by wrk on loopback with the same threads,
//! connections and duration, in the same run.
//!
//! `cargo bench --bench http` (needs `wrk`: `apt-get install wrk`).
//! Goal: weft reaches at least 0.35 of the plain handler's requests per second (0.5 stays
//! the target reported against).
//!
//! A third phase serves hello from an axum handler that only runs it in weft's runtime
//! (the same invocation every time, no routing, database, events log or caches): what
//! running one event costs under this load, apart from the rest of the server.

#[path = "support.rs"]
mod support;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use serde_json::{Value, json};
use weft::config::ServerConfig;
use weft::server::Server;
use weft_runtime::{EventParts, Input, Limits, NoHostServices, Outcome, Runtime, RuntimeConfig};

const CONNECTIONS: &str = "32";
const THREADS: &str = "2";
const DURATION: &str = "10s";

struct Load {
    requests_per_second: f64,
    p50: String,
    p99: String,
}

/// Runs wrk against `url` and reads its summary.
fn wrk(url: &str) -> Load {
    wrk_with(url, THREADS, CONNECTIONS, DURATION)
}

/// Runs wrk with the given threads, connections and duration.
fn wrk_with(url: &str, threads: &str, connections: &str, duration: &str) -> Load {
    let output = Command::new("wrk")
        .args(["-t", threads, "-c", connections, "-d", duration, "--latency", url])
        .output()
        .expect("wrk is installed (apt-get install wrk)");
    let text = String::from_utf8_lossy(&output.stdout);
    let field = |prefix: &str| {
        text.lines()
            .find_map(|line| line.trim().strip_prefix(prefix).map(|rest| rest.trim().to_owned()))
            .unwrap_or_else(|| panic!("wrk printed no `{prefix}`:\n{text}"))
    };
    let non_2xx = text.lines().find(|line| line.contains("Non-2xx")).map(str::to_owned);
    assert!(non_2xx.is_none(), "{url} answered errors: {non_2xx:?}");
    Load { requests_per_second: field("Requests/sec:").parse().unwrap(), p50: field("50%"), p99: field("99%") }
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let config = ServerConfig {
        bind: "127.0.0.1:0".into(),
        database_url: format!("sqlite://{}", dir.path().join("bench.db").display()),
        admin_token: Some("bench".into()),
        ..ServerConfig::default()
    };
    // Throughput of one installation: its public endpoint's rate limit would cap it.
    let mut config = config;
    config.tenancy.fetch_rate = 0.0;
    let server = Server::start(config).await.unwrap();
    let (url, client) = (server.url(), reqwest::Client::new());
    let admin = |request: reqwest::RequestBuilder| request.bearer_auth("bench");
    admin(client.post(format!("{url}/v1/orgs"))).json(&json!({"id": "bench", "title": "Bench"})).send().await.unwrap();
    let script = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, support::hello_wasm());
    let body = json!({"title": "Hello", "description": "d", "organization": "bench", "script": script});
    assert!(
        admin(client.post(format!("{url}/v1/integrations/hello")))
            .json(&body)
            .send()
            .await
            .unwrap()
            .status()
            .is_success()
    );
    let installation: Value = admin(client.post(format!("{url}/v1/integrations/hello/installations")))
        .json(&json!({"organization": "bench"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let endpoint = format!("{}/bench", installation["urls"]["publicEndpoint"].as_str().unwrap());
    let sample = client.get(&endpoint).send().await.unwrap().bytes().await.unwrap();

    // The baseline: the same bytes from a plain handler, in the same process and runtime.
    let plain =
        Router::new().route("/bench", get(move || async move { ([("content-type", "application/json")], sample) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let plain_url = format!("http://{}/bench", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, plain).await });
    let (runtime_url, run_times) = serve_hello_through_runtime_only().await;

    let (weft_load, plain_load, runtime_load, single) = tokio::task::spawn_blocking(move || {
        let plain_load = wrk(&plain_url);
        std::thread::sleep(Duration::from_secs(1));
        let weft_load = wrk(&endpoint);
        std::thread::sleep(Duration::from_secs(1));
        let runtime_load = wrk(&runtime_url);
        // One connection, one request at a time: the latency a single caller sees.
        (weft_load, plain_load, runtime_load, wrk_with(&endpoint, "1", "1", "5s"))
    })
    .await
    .unwrap();
    println!("HTTP throughput, wrk -t{THREADS} -c{CONNECTIONS} -d{DURATION}, GET of hello's public endpoint:");
    println!(
        "  weft (hello)   {:>10.0} req/s  p50 {:>9}  p99 {:>9}",
        weft_load.requests_per_second, weft_load.p50, weft_load.p99
    );
    println!(
        "  plain axum     {:>10.0} req/s  p50 {:>9}  p99 {:>9}",
        plain_load.requests_per_second, plain_load.p50, plain_load.p99
    );
    println!(
        "  ratio          {:>10.2} of the plain handler's throughput (goal ≥ 0.35, target 0.5)",
        weft_load.requests_per_second / plain_load.requests_per_second
    );
    println!(
        "  runtime only   {:>10.0} req/s  p50 {:>9}  p99 {:>9}  ({:.2} of plain: hello run by weft's runtime in a plain handler)",
        runtime_load.requests_per_second,
        runtime_load.p50,
        runtime_load.p99,
        runtime_load.requests_per_second / plain_load.requests_per_second
    );
    println!(
        "                 {:>10.1} µs mean wall time inside Runtime::run under this load (per_event: run alone)",
        run_times.mean().as_secs_f64() * 1e6
    );
    println!(
        "  one connection {:>10.0} req/s  p50 {:>9}  p99 {:>9}  (per-request latency of hello, unloaded)",
        single.requests_per_second, single.p50, single.p99
    );
    server.stop().await.unwrap();
}

/// Serves `GET /bench` by running hello in weft's runtime (pooled, as the server runs it)
/// with the invocation the server would build, and answering with hello's body.
///
/// Returns its URL and the wall time its runs spend inside `Runtime::run`.
async fn serve_hello_through_runtime_only() -> (String, Arc<RunTimes>) {
    let runtime = Arc::new(Runtime::new(RuntimeConfig::default()).unwrap());
    let module = Arc::new(runtime.compile(&support::hello_wasm()).unwrap());
    let (event, environment) = support::hello_parts();
    let parts: Arc<(Vec<u8>, String)> = Arc::new((event, environment));
    let times = Arc::new(RunTimes::default());
    let handler_times = times.clone();
    let handler = move || {
        let (runtime, module, parts) = (runtime.clone(), module.clone(), parts.clone());
        let times = handler_times.clone();
        async move {
            let started = Instant::now();
            let input = Input::Parts(EventParts { event: &parts.0, environment: parts.1.as_bytes(), body: b"" });
            let report =
                runtime.run_input(&module, input, &Limits::default(), Arc::new(NoHostServices), None).await.unwrap();
            times.add(started.elapsed());
            let Ok(Outcome::Response(response)) = report.result else { panic!("hello answered {:?}", report.result) };
            ([("content-type", "application/json")], response.body)
        }
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/bench", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, Router::new().route("/bench", get(handler))).await });
    (url, times)
}

/// Wall time spent running events, summed over all of them.
#[derive(Default)]
struct RunTimes {
    nanos: AtomicU64,
    runs: AtomicU64,
}

impl RunTimes {
    fn add(&self, elapsed: Duration) {
        self.nanos.fetch_add(elapsed.as_nanos() as u64, Ordering::Relaxed);
        self.runs.fetch_add(1, Ordering::Relaxed);
    }

    /// The mean time of one run so far.
    fn mean(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Ordering::Relaxed) / self.runs.load(Ordering::Relaxed).max(1))
    }
}
