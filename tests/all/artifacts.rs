//! Compiled modules kept as files beside the database: a restart maps them instead of
//! reading the database, and a file another engine made is replaced from the database.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::support::{hello_wasm, spawn_app_with};

/// Publishes and installs hello, then stops the server; returns the database URL, the
/// artifact file's path, the public endpoint's path and the directory that keeps them.
async fn published_then_stopped() -> (String, std::path::PathBuf, String, tempfile::TempDir) {
    let app = spawn_app_with(|_| {}).await;
    app.create_org("acme").await;
    app.publish("hello", "acme", hello_wasm()).await;
    let installation = app.install("hello", "acme").await;
    let endpoint = installation["urls"]["publicEndpoint"].as_str().unwrap().trim_start_matches(&app.url).to_owned();
    let database_url = app.database_url.clone();
    let file = database_url.strip_prefix("sqlite://").unwrap();
    let artifact = std::path::PathBuf::from(format!("{file}.artifacts"))
        .join(format!("{}.cwasm", hex::encode(Sha256::digest(hello_wasm()))));
    let dir = app.stop().await;
    (database_url, artifact, endpoint, dir)
}

/// A server on an existing database.
async fn restart(database_url: &str) -> crate::support::TestApp {
    let url = database_url.to_owned();
    spawn_app_with(move |config| config.database_url = url).await
}

#[tokio::test]
async fn a_restart_runs_the_module_from_its_artifact_file_without_the_database_copy() {
    let (database_url, artifact, endpoint, _dir) = published_then_stopped().await;
    assert!(artifact.exists(), "publish keeps {}", artifact.display());
    // Neither a stored artifact nor a compilable module is left in the database: only the
    // file can make the module run.
    let store = weft::store::Store::connect(&database_url).await.unwrap();
    let hello = store.integration("hello").await.unwrap().unwrap();
    store.set_module_artifact(&hello.id, 1, &[]).await.unwrap();
    assert_eq!(store.module_artifact(&hello.id, 1).await.unwrap().as_deref(), Some(&[][..]));
    drop(store);
    let mut db = <sqlx::SqliteConnection as sqlx::Connection>::connect(&database_url).await.unwrap();
    sqlx::query("UPDATE integration_versions SET wasm = X'00'").execute(&mut db).await.unwrap();
    drop(db);

    let app = restart(&database_url).await;
    let response = app.client.get(format!("{}{endpoint}/from-file", app.url)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["path"], "/from-file");
}

#[tokio::test]
async fn an_artifact_file_that_does_not_load_is_replaced_from_the_database() {
    let (database_url, artifact, endpoint, _dir) = published_then_stopped().await;
    let stored = std::fs::read(&artifact).unwrap();
    std::fs::write(&artifact, b"made by another engine").unwrap();

    let app = restart(&database_url).await;
    let response = app.client.get(format!("{}{endpoint}/x", app.url)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(std::fs::read(&artifact).unwrap(), stored, "the database's artifact replaced the file");
}

#[tokio::test]
async fn the_module_cache_keeps_its_byte_budget_and_reloads_what_it_dropped() {
    // A budget smaller than one module: only the module used last stays in memory.
    let app = spawn_app_with(|config| config.module_cache_bytes = 1).await;
    app.create_org("acme").await;
    let mut endpoints = Vec::new();
    for name in ["hello", "hello-too"] {
        app.publish(name, "acme", hello_wasm()).await;
        let installation = app.install(name, "acme").await;
        endpoints.push(installation["urls"]["publicEndpoint"].as_str().unwrap().to_owned());
    }
    let modules = &app.state().modules;
    for round in 0..3 {
        for endpoint in &endpoints {
            let response = app.client.get(format!("{endpoint}/round/{round}")).send().await.unwrap();
            assert_eq!(response.status(), 200);
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["path"], format!("/round/{round}"));
            let (count, bytes) = modules.usage();
            assert_eq!(count, 1, "one module in memory, {bytes} bytes");
        }
    }
}
