//! Group commit of what events cause (`Store::insert_event_work`): concurrent events share
//! commits, each caller is answered after the commit that holds its rows, every accepted event
//! is stored exactly once, and a batch that cannot be written fails exactly the events that
//! could not be stored. On SQLite and PostgreSQL.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::Connection as _;
use weft::store::{NewDelivery, Store};

use crate::applications::receiver::receiver;
use crate::support::{PostgresDatabase, TestApp, fresh_postgres, log_messages, probe_wasm, spawn_app_with};

/// Events posted at once.
const EVENTS: usize = 40;

async fn server(postgres: Option<&PostgresDatabase>) -> TestApp {
    let url = postgres.map(|db| db.url.clone());
    spawn_app_with(move |config| {
        // The test receiver listens on loopback.
        config.outbound.allow_private_addresses = true;
        config.queue.poll_interval = Duration::from_millis(20);
        if let Some(url) = url {
            config.database_url = url;
            config.secret_key = Some("22".repeat(32));
        }
    })
    .await
}

/// An application of `acme` sending to `endpoint`, with a webhook subscribed to
/// `Issue.Created`; returns its id.
async fn subscribed_application(app: &TestApp, endpoint: &str) -> String {
    let (status, created) = app
        .call(
            "POST",
            "/api/http/applications",
            Some(json!({"name": "hooks", "organization": "acme", "endpointUri": endpoint})),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    let app_id = created["id"].as_str().unwrap().to_owned();
    let (status, webhook) = app
        .call(
            "POST",
            &format!("/api/http/applications/{app_id}/webhooks"),
            Some(json!({"name": "issues", "subscriptions": [{"eventTypeCodes": ["Issue.Created"]}]})),
        )
        .await;
    assert_eq!(status, 200, "{webhook}");
    app_id
}

/// How often each `n` occurs in `values`.
fn occurrences(values: impl Iterator<Item = i64>) -> HashMap<i64, usize> {
    let mut counts = HashMap::new();
    for n in values {
        *counts.entry(n).or_insert(0) += 1;
    }
    counts
}

fn exactly_once(counts: &HashMap<i64, usize>) {
    let expected: HashMap<i64, usize> = (0..EVENTS as i64).map(|n| (n, 1)).collect();
    assert_eq!(counts, &expected, "every event exactly once");
}

/// `EVENTS` events posted at once, each for one installation and one webhook: every one is
/// accepted, runs once and is delivered once, and the delivery log holds each once.
async fn concurrent_ingests_land_exactly_once(postgres: Option<PostgresDatabase>) {
    let app = server(postgres.as_ref()).await;
    app.create_org("acme").await;
    app.publish_with("probe", "acme", probe_wasm(), json!({"visibility": "unlisted", "events": ["Issue.Created"]}))
        .await;
    app.install("probe", "acme").await;
    let hook = receiver(&[]).await;
    let app_id = subscribed_application(&app, &hook.url).await;

    let mut posts = tokio::task::JoinSet::new();
    for n in 0..EVENTS {
        let request = app
            .client
            .post(format!("{}/v1/orgs/acme/events", app.url))
            .bearer_auth(crate::support::ADMIN)
            .json(&json!({"type": "Issue.Created", "payload": {"n": n}}));
        posts.spawn(async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.json::<Value>().await.unwrap())
        });
    }
    while let Some(answer) = posts.join_next().await {
        let (status, body) = answer.unwrap();
        assert_eq!((status, body["count"].clone()), (202, json!(1)), "{body}");
    }

    let hits = hook.wait_for(EVENTS).await;
    exactly_once(&occurrences(hits.iter().map(|hit| hit.json()["payload"]["n"].as_i64().unwrap())));
    let runs = app.wait_for_matching_events("probe", EVENTS, |e| e["type"] == "Issue.Created").await;
    exactly_once(&occurrences(runs.iter().map(|run| {
        let line = log_messages(run).into_iter().find(|m| m.starts_with("event ")).unwrap();
        let event: Value = serde_json::from_str(line.splitn(3, ' ').nth(2).unwrap()).unwrap();
        event["n"].as_i64().unwrap()
    })));
    let (status, log) = app.call("GET", &format!("/api/http/applications/{app_id}/deliveries?$top=100"), None).await;
    assert_eq!(status, 200, "{log}");
    exactly_once(&occurrences(
        log["data"].as_array().unwrap().iter().map(|d| d["payload"]["payload"]["n"].as_i64().unwrap()),
    ));
    app.stop().await;
}

#[tokio::test]
async fn concurrent_ingests_land_exactly_once_on_sqlite() {
    concurrent_ingests_land_exactly_once(None).await;
}

#[tokio::test]
async fn concurrent_ingests_land_exactly_once_on_postgres() {
    concurrent_ingests_land_exactly_once(Some(fresh_postgres().await)).await;
}

/// A delivery of application `app_id`, due now.
fn delivery(app_id: &str, id: &str) -> NewDelivery {
    NewDelivery {
        id: id.to_owned(),
        app_id: app_id.to_owned(),
        webhook_id: None,
        kind: "webhook".into(),
        url: "http://127.0.0.1:9/hook".into(),
        body: json!({"id": id}).to_string(),
        content_type: None,
        max_attempts: 1,
        accepted_codes: Vec::new(),
        refused: None,
    }
}

/// Waits until `count` events are handed to the committer and not answered yet.
async fn wait_unanswered(store: &Store, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.unanswered_event_work() != count {
        assert!(Instant::now() < deadline, "{} events waiting, not {count}", store.unanswered_event_work());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Holds the deliveries table against writers until dropped or released: a SQLite write lock,
/// or a PostgreSQL table lock in an open transaction.
enum Lock {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl Lock {
    async fn take(app: &TestApp) -> Lock {
        if app.database_url.starts_with("postgres") {
            let mut connection = sqlx::PgConnection::connect(&app.database_url).await.unwrap();
            sqlx::query("BEGIN").execute(&mut connection).await.unwrap();
            sqlx::query("LOCK TABLE application_deliveries IN EXCLUSIVE MODE").execute(&mut connection).await.unwrap();
            Lock::Postgres(connection)
        } else {
            let mut connection = sqlx::SqliteConnection::connect(&app.database_url).await.unwrap();
            sqlx::query("BEGIN IMMEDIATE").execute(&mut connection).await.unwrap();
            Lock::Sqlite(connection)
        }
    }

    async fn release(self) {
        match self {
            Lock::Sqlite(mut connection) => sqlx::query("ROLLBACK").execute(&mut connection).await.map(drop),
            Lock::Postgres(mut connection) => sqlx::query("ROLLBACK").execute(&mut connection).await.map(drop),
        }
        .unwrap();
    }
}

/// While the deliveries table is locked, one event goes to the committer and waits; ten good
/// events and one that cannot be stored (its application does not exist) queue behind it and
/// are committed together once the lock goes. That batch fails; each of its events is written
/// again on its own: the bad one fails, every good one is stored, once.
async fn a_failed_batch_fails_only_the_event_that_cannot_be_stored(postgres: Option<PostgresDatabase>) {
    let app = server(postgres.as_ref()).await;
    app.create_org("acme").await;
    let app_id = subscribed_application(&app, "http://127.0.0.1:9/hook").await;
    let store = app.state().store.clone();
    let lock = Lock::take(&app).await;

    let mut waiting = tokio::task::JoinSet::new();
    let submit = |waiting: &mut tokio::task::JoinSet<_>, id: String, owner: String| {
        let store = store.clone();
        waiting
            .spawn(async move { (id.clone(), store.insert_event_work(Vec::new(), vec![delivery(&owner, &id)]).await) });
    };
    submit(&mut waiting, "whd_first".into(), app_id.clone());
    wait_unanswered(&store, 1).await;
    for n in 0..10 {
        submit(&mut waiting, format!("whd_good_{n}"), app_id.clone());
    }
    submit(&mut waiting, "whd_bad".into(), "no-such-application".into());
    wait_unanswered(&store, 12).await;
    lock.release().await;

    let mut answers = HashMap::new();
    while let Some(joined) = waiting.join_next().await {
        let (id, result) = joined.unwrap();
        answers.insert(id, result);
    }
    assert_eq!(answers.len(), 12);
    for (id, result) in &answers {
        let stored = store.delivery(id).await.unwrap();
        if id == "whd_bad" {
            let error = result.as_ref().expect_err("an event whose application is missing is refused");
            assert!(!error.is_unavailable(), "a refusal, not an outage: {error}");
            assert!(stored.is_none(), "nothing of it is stored");
        } else {
            assert!(result.is_ok(), "{id}: {result:?}");
            assert_eq!(stored.expect("stored").body, json!({"id": id}).to_string());
        }
    }
    let (status, log) = app.call("GET", &format!("/api/http/applications/{app_id}/deliveries?$top=100"), None).await;
    assert_eq!((status, log["totalCount"].clone()), (200, json!(11)), "each good event once: {log}");
    app.stop().await;
}

#[tokio::test]
async fn a_failed_batch_fails_only_the_event_that_cannot_be_stored_on_sqlite() {
    a_failed_batch_fails_only_the_event_that_cannot_be_stored(None).await;
}

#[tokio::test]
async fn a_failed_batch_fails_only_the_event_that_cannot_be_stored_on_postgres() {
    a_failed_batch_fails_only_the_event_that_cannot_be_stored(Some(fresh_postgres().await)).await;
}

/// When the database stays locked past its busy timeout, every event of the batch is told the
/// database is unavailable (503 to the host product, which retries), and none is stored.
#[tokio::test]
async fn an_unavailable_database_fails_every_event_of_a_batch() {
    let app = server(None).await;
    app.create_org("acme").await;
    let app_id = subscribed_application(&app, "http://127.0.0.1:9/hook").await;
    let store = app.state().store.clone();
    let lock = Lock::take(&app).await;
    let mut waiting = tokio::task::JoinSet::new();
    for n in 0..6 {
        let (store, id) = (store.clone(), format!("whd_locked_{n}"));
        let delivery = delivery(&app_id, &id);
        waiting.spawn(async move { (id, store.insert_event_work(Vec::new(), vec![delivery]).await) });
    }
    let mut refused = Vec::new();
    while let Some(joined) = waiting.join_next().await {
        let (id, result) = joined.unwrap();
        let error = result.expect_err("nothing can be written while the database is locked");
        assert!(error.is_unavailable(), "{id}: {error}");
        refused.push(id);
    }
    lock.release().await;
    for id in refused {
        assert!(store.delivery(&id).await.unwrap().is_none(), "{id} was refused, so it is not stored");
    }
    app.stop().await;
}
