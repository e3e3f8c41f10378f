//! Restart with 1,000 published integrations: how long until a fresh `weft serve` answers,
//! and the first request to an integration that never ran in that process. Compiled modules
//! are stored at publish, so neither should compile; the baseline, measured in the same run,
//! is what compiling hello once costs (what every first request would cost without them).
//!
//! `cargo bench --bench restart`. Goal: ready under 2 s, first request under 5 ms, no compile.
//! The first request is timed for five never-run integrations per restart, with the
//! artifact files the server keeps (the default) and with the database alone.

#[path = "support.rs"]
mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::Connection as _;
use tokio::io::{AsyncBufReadExt, BufReader};
use weft::config::ServerConfig;
use weft::server::Server;
use weft_runtime::{Runtime, RuntimeConfig};

const INTEGRATIONS: usize = 1000;
const TOKEN: &str = "bench";

/// Publishes hello once through the API, then copies it (module, compiled artifact and an
/// installation) to 999 more names in SQL: the same rows 1,000 publishes would leave.
async fn populate(database_url: &str, file: &std::path::Path) {
    let config = ServerConfig {
        bind: "127.0.0.1:0".into(),
        database_url: database_url.to_owned(),
        admin_token: Some(TOKEN.into()),
        ..ServerConfig::default()
    };
    let server = Server::start(config).await.unwrap();
    let (url, client) = (server.url(), reqwest::Client::new());
    client
        .post(format!("{url}/v1/orgs"))
        .bearer_auth(TOKEN)
        .json(&json!({"id": "bench", "title": "Bench"}))
        .send()
        .await
        .unwrap();
    let script = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, support::hello_wasm());
    let body = json!({"title": "Hello", "description": "d", "organization": "bench", "script": script});
    let published =
        client.post(format!("{url}/v1/integrations/hello-0")).bearer_auth(TOKEN).json(&body).send().await.unwrap();
    assert!(published.status().is_success());
    server.stop().await.unwrap();

    let mut db = sqlx::SqliteConnection::connect(&format!("sqlite://{}", file.display())).await.unwrap();
    let mut tx = db.begin().await.unwrap();
    for i in 0..INTEGRATIONS {
        let name = format!("hello-{i}");
        if i > 0 {
            sqlx::query(
                "INSERT INTO integrations (id, name, org_id, visibility, target, current_version, manifest, created_at, updated_at) \
                 SELECT $2, $1, org_id, visibility, target, current_version, manifest, created_at, updated_at FROM integrations WHERE name = 'hello-0'",
            )
            .bind(&name)
            .bind(format!("itg_bench_{i}"))
            .execute(&mut *tx)
            .await
            .unwrap();
            sqlx::query(
                "INSERT INTO integration_versions (integration_id, version, wasm, artifact, sha256, created_at) \
                 SELECT $1, v.version, v.wasm, v.artifact, v.sha256, v.created_at FROM integration_versions v \
                 JOIN integrations i ON i.id = v.integration_id WHERE i.name = 'hello-0'",
            )
            .bind(format!("itg_bench_{i}"))
            .execute(&mut *tx)
            .await
            .unwrap();
        }
        sqlx::query(
            "INSERT INTO installations (id, integration_id, integration, org_id, status, configuration, external_ids, \
             created_at, updated_at) SELECT $1, id, name, 'bench', 'active', '{}', '[]', 0, 0 FROM integrations WHERE name = $2",
        )
        .bind(format!("inst_{i}"))
        .bind(&name)
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    // Closing checkpoints the write-ahead log (a thousand copied modules): finish that
    // here, or the first restart below would be timed while it runs.
    db.close().await.unwrap();
}

/// What one restart measured.
struct Restart {
    ready: Duration,
    /// The first request to each of several integrations that never ran in the process.
    first_requests: Vec<Duration>,
    /// The same request again, once its module is cached.
    warm_request: Duration,
    /// "compiling module" lines the server logged.
    compiled: usize,
}

/// Integrations asked for first after each restart: none ran before in that process.
const NEVER_RUN: [usize; 5] = [777, 123, 456, 901, 42];

/// Starts `weft serve` on the populated database, waits until it answers, then times the
/// first request to each of [`NEVER_RUN`].
async fn restart(database_url: &str, extra_args: &[&str]) -> Restart {
    let started = Instant::now();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(["serve", "--bind", "127.0.0.1:0", "--database-url", database_url])
        .args(extra_args)
        .env("WEFT_ADMIN_TOKEN", TOKEN)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = loop {
        let line = lines.next_line().await.unwrap().expect("weft serve exited");
        if let Some(url) = line.strip_prefix("weft listening on ") {
            break url.to_owned();
        }
    };
    let client = reqwest::Client::new();
    while !client.get(format!("{url}/v1/orgs/bench")).bearer_auth(TOKEN).send().await.is_ok_and(|r| r.status() == 200) {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let ready = started.elapsed();

    let endpoint = |i: usize| format!("{url}/v1/integrations/hello-{i}/installations/inst_{i}/fetch/first");
    let mut first_requests = Vec::new();
    for i in NEVER_RUN {
        let first_started = Instant::now();
        let first: Value = client.get(endpoint(i)).send().await.unwrap().json().await.unwrap();
        first_requests.push(first_started.elapsed());
        assert_eq!(first["path"], "/first");
    }
    let warm_started = Instant::now();
    client.get(endpoint(NEVER_RUN[0])).send().await.unwrap();
    let warm_request = warm_started.elapsed();

    child.start_kill().unwrap();
    let output = child.wait_with_output().await.unwrap();
    let compiled = String::from_utf8_lossy(&output.stderr).lines().filter(|l| l.contains("compiling module")).count();
    Restart { ready, first_requests, warm_request, compiled }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

fn median(durations: &[Duration]) -> Duration {
    let mut sorted = durations.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bench.db");
    let database_url = format!("sqlite://{}", file.display());
    populate(&database_url, &file).await;

    // The default: compiled modules kept as files beside the database at publish, mapped on
    // first use. Then without files (an unwritable artifact directory), as a new replica
    // with only the database would load them.
    let with_files = restart(&database_url, &[]).await;
    let database_only = restart(&database_url, &["--artifact-dir", "/dev/null/none"]).await;

    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let wasm = support::hello_wasm();
    let compile_started = Instant::now();
    runtime.compile(&wasm).unwrap();
    let compile = compile_started.elapsed();

    println!("restart with {INTEGRATIONS} published integrations (SQLite):");
    println!("  ready (spawn → first API answer)      {:>8.1} ms (goal < 2000 ms)", ms(with_files.ready));
    for (label, run) in [("artifact files (default)", &with_files), ("database only (new replica)", &database_only)] {
        let (first, worst) = (median(&run.first_requests), run.first_requests.iter().max().unwrap());
        println!(
            "  first request to a never-run module, {label}: median {:.2} ms, max {:.2} ms of {} (goal < 5 ms); again (cached) {:.2} ms",
            ms(first),
            ms(*worst),
            run.first_requests.len(),
            ms(run.warm_request)
        );
    }
    println!("  modules compiled by the server        {:>8} (goal 0)", with_files.compiled + database_only.compiled);
    println!(
        "  baseline: compiling hello once          {:>8.2} ms → a first request from the artifact file is {:.1}× cheaper",
        ms(compile),
        compile.as_secs_f64() / median(&with_files.first_requests).as_secs_f64()
    );
}
