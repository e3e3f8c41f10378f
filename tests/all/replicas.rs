//! Several `weft serve` processes on one PostgreSQL: shared work, and no task lost when a
//! replica is killed in the middle.

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use weft::store::{EventFilter, Store};

use crate::support::{fresh_postgres, probe_wasm, publish_body};

const TOKEN: &str = "replica-admin-token";

async fn replica(database_url: &str) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(["serve", "--bind", "127.0.0.1:0", "--database-url", database_url, "--job-lease-secs", "2"])
        .env("WEFT_ADMIN_TOKEN", TOKEN)
        .env("WEFT_SECRET_KEY", "22".repeat(32))
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn weft serve");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = loop {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await.unwrap().unwrap().unwrap();
        if let Some(url) = line.strip_prefix("weft listening on ") {
            break url.to_owned();
        }
    };
    // Keep draining stdout so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, url)
}

#[tokio::test]
async fn killing_a_replica_mid_queue_loses_no_task() {
    let database = fresh_postgres().await;
    let (mut doomed, doomed_url) = replica(&database.url).await;
    let (mut survivor, survivor_url) = replica(&database.url).await;
    let client = reqwest::Client::new();
    let post = |url: String, body: serde_json::Value| client.post(url).bearer_auth(TOKEN).json(&body).send();

    assert_eq!(
        post(format!("{doomed_url}/v1/orgs"), json!({"id": "acme", "title": "Acme"})).await.unwrap().status(),
        201
    );
    // Published through one replica, it runs on the other at once.
    assert_eq!(
        post(format!("{doomed_url}/v1/integrations/probe"), publish_body("acme", probe_wasm())).await.unwrap().status(),
        200
    );
    let seen = client.get(format!("{survivor_url}/v1/integrations/probe")).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(seen.status(), 200);

    const TASKS: usize = 2000;
    let store = Store::connect(&database.url).await.unwrap();
    let mut target = doomed_url.clone();
    let mut sends = tokio::task::JoinSet::<reqwest::Result<u16>>::new();
    for n in 0..TASKS {
        if n == TASKS / 2 {
            while let Some(sent) = sends.join_next().await {
                assert_eq!(sent.unwrap().unwrap(), 204);
            }
            // SIGKILL in the middle: no graceful shutdown, its leases and unsettled jobs left behind.
            let waiting = store.queue_depth().await.unwrap();
            doomed.start_kill().unwrap();
            doomed.wait().await.unwrap();
            eprintln!("killed a replica with {waiting} of {n} jobs not yet settled");
            target = survivor_url.clone();
        }
        let request = client.post(format!("{target}/v1/integrations/probe/tasks")).bearer_auth(TOKEN);
        sends.spawn(async move { request.json(&json!({"task": {"n": n}})).send().await.map(|r| r.status().as_u16()) });
        if sends.len() >= 64 {
            assert_eq!(sends.join_next().await.unwrap().unwrap().unwrap(), 204);
        }
    }
    while let Some(sent) = sends.join_next().await {
        assert_eq!(sent.unwrap().unwrap(), 204);
    }

    let deadline = Instant::now() + Duration::from_secs(120);
    while store.queue_depth().await.unwrap() > 0 {
        assert!(Instant::now() < deadline, "{} jobs never finished", store.queue_depth().await.unwrap());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let probe = store.integration("probe").await.unwrap().unwrap();
    assert!(store.jobs(&probe.id, "dead", 10).await.unwrap().is_empty(), "no task may be dead-lettered");
    // A job is deleted only after its success is in the events log, so an empty queue means
    // every one of the tasks ran successfully at least once.
    let events = store.events(&probe.id, &EventFilter::default(), "", 1).await.unwrap().total;
    assert!(events >= TASKS as i64, "only {events} task runs recorded for {TASKS} tasks");

    let pid = survivor.id().unwrap().to_string();
    std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(survivor.wait().await.unwrap().success());
}
