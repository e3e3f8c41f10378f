//! Database outages: a SQLite file locked by another process, and a disk that fills up.
//! Writes answer 503 with `Retry-After`, readiness says so, no event is lost, and the server
//! recovers by itself once the database takes writes again.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;
use sqlx::Connection as _;

use crate::support::{TestApp, hello_wasm, spawn_app_with};

/// Events each outage produces while the database refuses them.
const EVENTS: usize = 20;

/// A server whose SQLite file is `database`, with hello installed; the public endpoint.
async fn hello_on(database: &Path) -> (TestApp, String) {
    let url = format!("sqlite://{}", database.display());
    let app = spawn_app_with(move |config| config.database_url = url).await;
    app.create_org("acme").await;
    app.publish("hello", "acme", hello_wasm()).await;
    let endpoint = app.install("hello", "acme").await["urls"]["publicEndpoint"].as_str().unwrap().to_owned();
    (app, endpoint)
}

/// Sends `EVENTS` requests to `endpoint` at once; each is answered by the module whatever
/// the database does (recording the event is the writer's business).
async fn fetch_many(app: &TestApp, endpoint: &str) {
    let mut requests = tokio::task::JoinSet::new();
    for n in 0..EVENTS {
        requests.spawn(app.client.get(format!("{endpoint}/during-outage/{n}")).send());
    }
    while let Some(response) = requests.join_next().await {
        assert_eq!(response.unwrap().unwrap().status(), 200);
    }
}

/// A write through the API while the database refuses writes: 503 with `Retry-After`.
async fn assert_writes_are_refused(app: &TestApp) {
    let response = app
        .client
        .post(format!("{}/v1/orgs", app.url))
        .bearer_auth(crate::support::ADMIN)
        .json(&json!({"id": "during-outage", "title": "During"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(!body.to_string().to_lowercase().contains("sqlite"), "the database's own error stays in the log: {body}");
}

/// The readiness status; its body names the failing part, never the database's own error.
async fn readiness(app: &TestApp) -> u16 {
    let response = app.client.get(format!("{}/readyz", app.url)).send().await.unwrap();
    let status = response.status().as_u16();
    let body = response.text().await.unwrap().to_lowercase();
    assert!(!body.contains("sqlite") && !body.contains("locked") && !body.contains("full"), "{body}");
    status
}

/// Polls until readiness is back and the log holds every fetch event: nothing was lost,
/// and nobody had to restart anything.
async fn assert_recovered_with_every_event(app: &TestApp) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, events) = app.call("GET", "/v1/integrations/hello/events?type=fetch", None).await;
        let recorded = events["count"].as_u64().unwrap_or(0) as usize;
        if recorded == EVENTS && readiness(app).await == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{recorded} of {EVENTS} events recorded, readiness {}",
            readiness(app).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, body) = app.call("POST", "/v1/orgs", Some(json!({"id": "after", "title": "After"}))).await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn a_locked_database_answers_503_and_loses_no_event() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("weft.db");
    let (app, endpoint) = hello_on(&database).await;

    // Another process takes SQLite's write lock and keeps it.
    let mut locker = sqlx::SqliteConnection::connect(&format!("sqlite://{}", database.display())).await.unwrap();
    sqlx::query("BEGIN EXCLUSIVE").execute(&mut locker).await.unwrap();

    fetch_many(&app, &endpoint).await;
    assert_writes_are_refused(&app).await;
    assert_eq!(readiness(&app).await, 503);

    sqlx::query("COMMIT").execute(&mut locker).await.unwrap();
    assert_recovered_with_every_event(&app).await;
}

/// A tmpfs of `megabytes` mounted on a new directory; unmounted when dropped.
struct SmallDisk {
    mountpoint: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(megabytes: u32) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let mountpoint = dir.path().join("disk");
        std::fs::create_dir(&mountpoint).unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(&mountpoint)
            .status()
            .expect("run mount");
        assert!(status.success(), "this test mounts a small tmpfs and needs root (as CI has): mount failed");
        SmallDisk { mountpoint, _dir: dir }
    }

    /// Writes a file until the disk is full; returns its path.
    fn fill(&self) -> PathBuf {
        use std::io::Write as _;
        let path = self.mountpoint.join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 64 << 10];
        while file.write_all(&chunk).is_ok() {}
        let _ = file.flush();
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.mountpoint).status();
    }
}

#[tokio::test]
async fn a_full_disk_holds_events_back_until_there_is_room() {
    let disk = SmallDisk::mount(48);
    let database = disk.mountpoint.join("weft.db");
    let (app, endpoint) = hello_on(&database).await;
    // Every write must need new room on the disk: a write-ahead log keeps its file's size
    // after a checkpoint and reuses it, so empty it first, then fill the disk.
    let mut checkpoint = sqlx::SqliteConnection::connect(&format!("sqlite://{}", database.display())).await.unwrap();
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&mut checkpoint).await.unwrap();
    checkpoint.close().await.unwrap();
    let filler = disk.fill();

    fetch_many(&app, &endpoint).await;
    assert_writes_are_refused(&app).await;
    assert_eq!(readiness(&app).await, 503);

    std::fs::remove_file(filler).unwrap();
    assert_recovered_with_every_event(&app).await;
}
