//! One application's backlog never holds up or grows without bound at the others' expense:
//! the delivery worker takes applications in turns, and an application with
//! `MAX_PENDING_DELIVERIES` pending gets its next payloads stored as failed (listed with the
//! reason, redeliverable) instead of queued. On SQLite and PostgreSQL.

use serde_json::{Value, json};
use sqlx::any::AnyPoolOptions;
use weft::applications::MAX_PENDING_DELIVERIES;
use weft::store::{NewDelivery, Store};

use super::receiver::receiver;
use super::{issue_created, issue_webhook, spawn_on};
use crate::support::{PostgresDatabase, fresh_postgres};

/// A delivery of application `app_id`, due now.
fn delivery(app_id: &str, id: String) -> NewDelivery {
    NewDelivery {
        id,
        app_id: app_id.to_owned(),
        webhook_id: None,
        kind: "webhook".into(),
        url: "https://hook.example/".into(),
        body: "{}".into(),
        content_type: None,
        max_attempts: 1,
        accepted_codes: Vec::new(),
        refused: None,
    }
}

async fn a_backlog_does_not_keep_another_application_out(postgres: Option<PostgresDatabase>) {
    let app = spawn_on(postgres).await;
    app.create_org("acme").await;
    let noisy = app.create_app(json!({"name": "noisy", "organization": "acme"})).await;
    let quiet = app.create_app(json!({"name": "quiet", "organization": "acme"})).await;
    let (noisy, quiet) = (noisy["id"].as_str().unwrap(), quiet["id"].as_str().unwrap());
    // The server (and its delivery worker) is gone; the store is driven directly.
    let (dir, postgres) = app.stop_keeping_databases().await;
    let url = match &postgres {
        Some(db) => db.url.clone(),
        None => format!("sqlite://{}", dir.path().join("weft.db").display()),
    };
    let store = Store::connect(&url).await.unwrap();
    // 300 of the noisy application's deliveries, all older than the quiet one's two.
    let backlog = (0..300).map(|i| delivery(noisy, format!("whd_noisy_{i:03}"))).collect();
    store.insert_event_work(Vec::new(), backlog).await.unwrap();
    let two = vec![delivery(quiet, "whd_quiet_1".into()), delivery(quiet, "whd_quiet_2".into())];
    store.insert_event_work(Vec::new(), two).await.unwrap();

    let batch = store.claim_due_deliveries(64, 60_000).await.unwrap();
    assert_eq!(batch.len(), 64);
    let quiet_claimed = batch.iter().filter(|d| d.app_id == quiet).count();
    assert_eq!(quiet_claimed, 2, "the quiet application's deliveries are in the first batch");
    // A batch of one takes each application's oldest in turn, and nothing is claimed twice.
    let next = store.claim_due_deliveries(1, 60_000).await.unwrap();
    assert_eq!(next.len(), 1);
    assert!(batch.iter().all(|d| d.id != next[0].id), "claimed twice: {}", next[0].id);
    let mut claimed = 65;
    while claimed < 302 {
        let more = store.claim_due_deliveries(64, 60_000).await.unwrap();
        assert!(!more.is_empty(), "deliveries left unclaimed after {claimed}");
        claimed += more.len();
    }
    assert_eq!(claimed, 302, "every delivery claimed exactly once");
    assert!(store.claim_due_deliveries(64, 60_000).await.unwrap().is_empty(), "all leased");
}

#[tokio::test]
async fn a_backlog_does_not_keep_another_application_out_on_sqlite() {
    a_backlog_does_not_keep_another_application_out(None).await;
}

#[tokio::test]
async fn a_backlog_does_not_keep_another_application_out_on_postgres() {
    a_backlog_does_not_keep_another_application_out(Some(fresh_postgres().await)).await;
}

async fn a_full_backlog_refuses_that_applications_payloads_only(postgres: Option<PostgresDatabase>) {
    let app = spawn_on(postgres).await;
    app.create_org("acme").await;
    let hook = receiver(&[]).await;
    let mut ids = Vec::new();
    for name in ["flooded", "healthy"] {
        let created = app.create_app(json!({"name": name, "organization": "acme", "endpointUri": hook.url})).await;
        let id = created["id"].as_str().unwrap().to_owned();
        issue_webhook(&app, &id, json!({})).await;
        ids.push((id, created["clientId"].as_str().unwrap().to_owned()));
    }
    let (flooded, healthy) = (&ids[0], &ids[1]);
    // The flooded application's endpoint has been failing: its backlog is full (not due yet,
    // so the worker leaves it alone).
    let url = match &app._postgres {
        Some(db) => db.url.clone(),
        None => format!("sqlite://{}", app._dir.path().join("weft.db").display()),
    };
    sqlx::any::install_default_drivers();
    let pool = AnyPoolOptions::new().max_connections(1).connect(&url).await.unwrap();
    sqlx::query(
        "INSERT INTO application_deliveries (id, app_id, webhook_id, kind, url, body, status, attempts, \
            max_attempts, accepted_codes, next_attempt_at, created_at, updated_at) \
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $2) \
         SELECT 'whd_backlog_' || i, $1, NULL, 'webhook', 'https://hook.example/', '{}', 'pending', 1, 6, '[]', \
            9000000000000, 0, 0 FROM n",
    )
    .bind(&flooded.0)
    .bind(MAX_PENDING_DELIVERIES)
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    assert_eq!(app.publish("acme", issue_created()).await, 2, "both applications' payloads are stored");
    let hits = hook.wait_for(1).await;
    assert_eq!(hits[0].json()["clientId"], healthy.1.as_str(), "the healthy application is delivered to");
    let log = app.wait_deliveries(&flooded.0, |data| data.first().is_some_and(|d| d["status"] == "failed")).await;
    let refused = &log[0];
    assert_eq!(refused["attempts"], 0, "never sent: {refused}");
    let reason = refused["lastError"].as_str().unwrap();
    assert!(reason.contains(&format!("{MAX_PENDING_DELIVERIES} deliveries pending")), "{reason}");
    assert_eq!(refused["payload"]["payload"]["issue"]["id"], "ISS-1", "the payload is kept");
    assert_eq!(hook.hits().len(), 1, "nothing sent for the flooded application");

    // Redelivered by hand, it is sent.
    let path = format!("/api/http/applications/{}/deliveries/{}/redeliver", flooded.0, refused["id"].as_str().unwrap());
    let (status, answer): (u16, Value) = app.call("POST", &path, None).await;
    assert_eq!(status, 200, "{answer}");
    let hits = hook.wait_for(2).await;
    assert!(hits.iter().any(|hit| hit.json()["clientId"] == flooded.1.as_str()), "the redelivered payload arrives");
    app.stop().await;
}

#[tokio::test]
async fn a_full_backlog_refuses_that_applications_payloads_only_on_sqlite() {
    a_full_backlog_refuses_that_applications_payloads_only(None).await;
}

#[tokio::test]
async fn a_full_backlog_refuses_that_applications_payloads_only_on_postgres() {
    a_full_backlog_refuses_that_applications_payloads_only(Some(fresh_postgres().await)).await;
}
