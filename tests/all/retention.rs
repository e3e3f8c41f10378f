//! Retention: the events log is bounded by age and by count per integration, finished jobs
//! keep their idempotency key only for its window, on both backends and in a running server.

use std::time::{Duration, Instant};

use serde_json::json;
use weft::retention::{RetentionConfig, enforce};
use weft::store::{EventFilter, EventRecord, NewJob, NewVersion, Store, now_ms};

use crate::support::{TestApp, fresh_postgres, hello_wasm, spawn_app_with};

fn event(integration_id: &str, created_at: i64, n: usize) -> EventRecord {
    let mut id = weft::ids::event_id(created_at);
    id.truncate(16);
    EventRecord {
        id: format!("{id}{n:010}"),
        integration_id: integration_id.into(),
        integration: "kept".into(),
        installation_id: None,
        event_type: "task".into(),
        status: "success".into(),
        error_kind: None,
        error_message: None,
        response_status: None,
        duration_us: 1,
        logs: "[]".into(),
        created_at,
        payload: None,
    }
}

fn done_job(id: &str, integration_id: &str, key: &str) -> NewJob {
    NewJob {
        id: id.into(),
        integration_id: integration_id.into(),
        integration: "kept".into(),
        installation_id: None,
        event: json!({"type": "task", "task": {}}),
        due_at: now_ms(),
        max_attempts: 1,
        idempotency_key: Some(key.into()),
    }
}

async fn events_of(store: &Store, integration_id: &str) -> Vec<String> {
    let page = store.events(integration_id, &EventFilter::default(), "", 1000).await.unwrap();
    page.events.into_iter().map(|event| event.id).collect()
}

async fn retention_deletes_by_age_count_and_window(url: &str) {
    let store = &Store::connect(url).await.unwrap();
    store.create_org("acme", "Acme").await.unwrap();
    let manifest = json!({});
    let version = NewVersion {
        name: "kept",
        org_id: "acme",
        visibility: "private",
        target: "all",
        manifest: &manifest,
        wasm: b"\0asm",
        artifact: b"",
        sha256: "00",
        module: &weft::store::ModuleFacts { abi: 2, snapshot: true, snapshot_reason: None },
        source: None,
    };
    let kept = store.publish_version(version).await.unwrap().unwrap().id;
    let now = now_ms();
    let day = 24 * 3600 * 1000;
    // Three events a year old, then twelve recent ones.
    let mut events: Vec<EventRecord> = (0..3).map(|n| event(&kept, now - 365 * day, n)).collect();
    events.extend((0..12).map(|n| event(&kept, now - 1000 + n as i64, n)));
    store.insert_events(&events).await.unwrap();
    // A finished job whose key is a week old, and one from a minute ago.
    store.enqueue(&[done_job("old", &kept, "old-key"), done_job("fresh", &kept, "fresh-key")]).await.unwrap();
    let claimed = store.claim_jobs("w", 60_000, 10).await.unwrap();
    assert_eq!(claimed.len(), 2);
    store.complete_jobs("w", &["old".into(), "fresh".into()]).await.unwrap();
    backdate_job(url, "old", now - 7 * day).await;

    let config = RetentionConfig {
        events_max_age: Duration::from_secs(30 * 24 * 3600),
        events_max_per_integration: 10,
        idempotency_window: Duration::from_secs(24 * 3600),
        interval: Duration::from_secs(60),
        ..RetentionConfig::default()
    };
    let deleted = enforce(store, &config).await.unwrap();
    assert_eq!((deleted.events, deleted.jobs), (5, 1), "{deleted:?}");
    let newest_ten: Vec<String> = events.iter().rev().take(10).map(|event| event.id.clone()).collect();
    assert_eq!(events_of(store, &kept).await, newest_ten);
    assert_eq!(store.jobs(&kept, "done", 10).await.unwrap().len(), 1);
    let again = done_job("again", &kept, "old-key");
    assert_eq!(store.enqueue(&[again]).await.unwrap(), 1, "an expired key no longer refuses");
    assert_eq!(enforce(store, &config).await.unwrap().events, 0, "a second pass finds nothing");
}

/// Moves a job's last change back to `when`: retention goes by it.
async fn backdate_job(url: &str, job: &str, when: i64) {
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    sqlx::query("UPDATE jobs SET updated_at = $1 WHERE id = $2").bind(when).bind(job).execute(&pool).await.unwrap();
    pool.close().await;
}

#[tokio::test]
async fn retention_works_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    retention_deletes_by_age_count_and_window(&format!("sqlite://{}", dir.path().join("weft.db").display())).await;
}

#[tokio::test]
async fn retention_works_on_postgres() {
    let database = fresh_postgres().await;
    retention_deletes_by_age_count_and_window(&database.url).await;
}

#[tokio::test]
async fn a_running_server_keeps_only_each_integrations_newest_events() {
    let app: TestApp = spawn_app_with(|config| {
        config.retention.events_max_per_integration = 5;
        config.retention.interval = Duration::from_millis(50);
    })
    .await;
    app.create_org("acme").await;
    app.publish("hello", "acme", hello_wasm()).await;
    let endpoint = app.install("hello", "acme").await["urls"]["publicEndpoint"].as_str().unwrap().to_owned();
    // The install's `installation_setup` first, so the eight fetches are the newest.
    app.wait_for_matching_events("hello", 1, |event| event["type"] == "installation_setup").await;
    let mut ids = Vec::new();
    for n in 0..8 {
        let response = app.client.get(format!("{endpoint}/{n}")).send().await.unwrap();
        ids.push(response.headers()["x-weft-event-id"].to_str().unwrap().to_owned());
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, events) = app.call("GET", "/v1/integrations/hello/events?type=fetch", None).await;
        let listed: Vec<&str> = events["items"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap()).collect();
        // Newest by id, the log's order (ids of one millisecond order at random). The events
        // log writes in batches after answering, so the last fetches may not be listed yet.
        ids.sort_unstable_by(|a, b| b.cmp(a));
        let newest: Vec<&str> = ids.iter().take(5).map(String::as_str).collect();
        if listed == newest {
            break;
        }
        assert!(Instant::now() < deadline, "the log never held exactly the newest five, {newest:?}: {events}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
