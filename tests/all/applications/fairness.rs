//! The delivery worker takes applications in turns: one application's backlog never keeps
//! another's deliveries out of the next batch, on SQLite and PostgreSQL.

use serde_json::json;
use weft::store::{NewDelivery, Store};

use super::spawn_on;
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
