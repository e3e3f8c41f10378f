//! HTTP throughput of an installation's public endpoint running hello, against a plain axum
//! handler returning the same bytes, both driven by wrk on loopback with the same threads,
//! connections and duration, in the same run.
//!
//! `cargo bench --bench http` (needs `wrk`: `apt-get install wrk`).
//! Goal: weft reaches at least 0.5 of the plain handler's requests per second.

#[path = "support.rs"]
mod support;

use std::process::Command;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use serde_json::{Value, json};
use weft::config::ServerConfig;
use weft::server::Server;

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

    let (weft_load, plain_load, single) = tokio::task::spawn_blocking(move || {
        let plain_load = wrk(&plain_url);
        std::thread::sleep(Duration::from_secs(1));
        let weft_load = wrk(&endpoint);
        // One connection, one request at a time: the latency a single caller sees.
        (weft_load, plain_load, wrk_with(&endpoint, "1", "1", "5s"))
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
        "  ratio          {:>10.2} of the plain handler's throughput (goal ≥ 0.5)",
        weft_load.requests_per_second / plain_load.requests_per_second
    );
    println!(
        "  one connection {:>10.0} req/s  p50 {:>9}  p99 {:>9}  (per-request latency of hello, unloaded)",
        single.requests_per_second, single.p50, single.p99
    );
    server.stop().await.unwrap();
}
