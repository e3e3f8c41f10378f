//! Restart with 1,000 published integrations: how long until a fresh `weft serve` answers,
//! and the first request to an integration that never ran in that process. Compiled modules
//! are stored at publish, so neither should compile; the baseline, measured in the same run,
//! is what compiling hello once costs (what every first request would cost without them).
//!
//! `cargo bench --bench restart`. Goal: ready under 2 s, first request under 5 ms, no compile.

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
                "INSERT INTO integrations (name, org_id, visibility, target, current_version, manifest, created_at, updated_at) \
                 SELECT $1, org_id, visibility, target, current_version, manifest, created_at, updated_at FROM integrations WHERE name = 'hello-0'",
            )
            .bind(&name)
            .execute(&mut *tx)
            .await
            .unwrap();
            sqlx::query(
                "INSERT INTO integration_versions (integration, version, wasm, artifact, sha256, created_at) \
                 SELECT $1, version, wasm, artifact, sha256, created_at FROM integration_versions WHERE integration = 'hello-0'",
            )
            .bind(&name)
            .execute(&mut *tx)
            .await
            .unwrap();
        }
        sqlx::query(
            "INSERT INTO installations (id, integration, org_id, status, configuration, external_ids, created_at, updated_at) \
             VALUES ($1, $2, 'bench', 'active', '{}', '[]', 0, 0)",
        )
        .bind(format!("inst_{i}"))
        .bind(&name)
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bench.db");
    let database_url = format!("sqlite://{}", file.display());
    populate(&database_url, &file).await;

    let started = Instant::now();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(["serve", "--bind", "127.0.0.1:0", "--database-url", &database_url])
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
    let first_started = Instant::now();
    let first: Value = client.get(endpoint(777)).send().await.unwrap().json().await.unwrap();
    let first_request = first_started.elapsed();
    assert_eq!(first["path"], "/first");
    let warm_started = Instant::now();
    client.get(endpoint(777)).send().await.unwrap();
    let warm_request = warm_started.elapsed();

    child.start_kill().unwrap();
    let output = child.wait_with_output().await.unwrap();
    let compiled = String::from_utf8_lossy(&output.stderr).lines().filter(|l| l.contains("compiling module")).count();

    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let wasm = support::hello_wasm();
    let compile_started = Instant::now();
    runtime.compile(&wasm).unwrap();
    let compile = compile_started.elapsed();

    println!("restart with {INTEGRATIONS} published integrations (SQLite):");
    println!("  ready (spawn → first API answer)      {:>8.1} ms (goal < 2000 ms)", ready.as_secs_f64() * 1e3);
    println!("  first request to a never-run module   {:>8.2} ms (goal < 5 ms)", first_request.as_secs_f64() * 1e3);
    println!("  the same request again (cached)       {:>8.2} ms", warm_request.as_secs_f64() * 1e3);
    println!("  modules compiled by the server        {compiled:>8} (goal 0)");
    println!(
        "  baseline: compiling hello once          {:>8.2} ms → the stored artifact makes the first request {:.1}× cheaper than compiling",
        compile.as_secs_f64() * 1e3,
        compile.as_secs_f64() / first_request.as_secs_f64()
    );
}
