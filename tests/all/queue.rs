//! Tasks, retries, the dead-letter state, idempotency, event fan-out and cron, through the
//! real server and the probe example.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{TestApp, hello_wasm, log_messages, probe_wasm, spawn_app_with};

async fn app() -> TestApp {
    spawn_app_with(|config| {
        config.queue.backoff_base = Duration::from_millis(20);
        config.queue.max_attempts = 3;
        config.queue.poll_interval = Duration::from_millis(20);
    })
    .await
}

async fn queue(app: &TestApp, name: &str, body: Value) -> u16 {
    app.call("POST", &format!("/v1/integrations/{name}/tasks"), Some(body)).await.0
}

fn is_task(event: &Value) -> bool {
    event["type"] == "task"
}

fn task_log(event: &Value) -> Value {
    let line = log_messages(event).into_iter().find(|m| m.starts_with("task ")).expect("the probe logs each task");
    serde_json::from_str(&line["task ".len()..]).unwrap()
}

#[tokio::test]
async fn queued_tasks_run_in_due_order_and_never_early() {
    let app = app().await;
    app.create_org("acme").await;
    app.publish("probe", "acme", probe_wasm()).await;
    let submitted = chrono::Utc::now();
    for (n, schedule) in [("late", 2), ("early", 0), ("middle", 1)] {
        assert_eq!(queue(&app, "probe", json!({"task": {"n": n}, "schedule": schedule})).await, 204);
    }
    let events = app.wait_for_matching_events("probe", 3, is_task).await;
    let order: Vec<Value> = events.iter().map(|e| task_log(e)["n"].clone()).collect();
    assert_eq!(order, [json!("early"), json!("middle"), json!("late")]);
    let late_started: chrono::DateTime<chrono::Utc> =
        events[2]["event"]["createdAt"].as_str().unwrap().parse().unwrap();
    assert!(late_started >= submitted + chrono::Duration::seconds(2), "a task ran before it was due");
    assert!(events.iter().all(|e| e["event"]["status"] == "success" && e["event"]["installationId"].is_null()));
}

#[tokio::test]
async fn a_failing_task_is_retried_then_dead_lettered() {
    let app = app().await;
    app.create_org("acme").await;
    app.publish("probe", "acme", probe_wasm()).await;
    assert_eq!(queue(&app, "probe", json!({"task": {"fail": true}})).await, 204);
    let events = app.wait_for_matching_events("probe", 3, is_task).await;
    let statuses: Vec<(&str, bool)> =
        events.iter().map(|e| (e["event"]["status"].as_str().unwrap(), e["event"]["deadLetter"] == true)).collect();
    assert_eq!(statuses, [("failed", false), ("failed", false), ("failed", true)]);
    assert_eq!(events[2]["event"]["error"]["kind"], "handler_error");

    let (status, dead) = app.call("GET", "/v1/integrations/probe/tasks?status=dead", None).await;
    assert_eq!(status, 200, "{dead}");
    assert_eq!(dead["items"][0]["attempts"], 3);
    assert!(dead["items"][0]["lastError"].as_str().unwrap().contains("asked to fail"));
}

#[tokio::test]
async fn an_idempotency_key_makes_a_resubmission_a_no_op() {
    let app = app().await;
    app.create_org("acme").await;
    app.publish("probe", "acme", probe_wasm()).await;
    let once = json!({"task": {"n": "once"}, "idempotencyKey": "order-42"});
    assert_eq!(queue(&app, "probe", once.clone()).await, 204);
    app.wait_for_matching_events("probe", 1, is_task).await;
    assert_eq!(queue(&app, "probe", once).await, 204, "a repeat is accepted, and ignored");
    assert_eq!(queue(&app, "probe", json!({"task": {"n": "marker"}})).await, 204);
    let events = app.wait_for_matching_events("probe", 2, is_task).await;
    let names: Vec<Value> = events.iter().map(|e| task_log(e)["n"].clone()).collect();
    assert_eq!(names, [json!("once"), json!("marker")]);
}

#[tokio::test]
async fn bad_task_requests_are_refused() {
    let app = app().await;
    app.create_org("acme").await;
    app.publish("probe", "acme", probe_wasm()).await;
    for (body, message) in [
        (json!({"task": {}, "schedule": 86_401}), "schedule"),
        (json!({"task": {}, "schedule": -1}), "schedule"),
        (json!({"task": [1, 2]}), "task must be a JSON object"),
        (json!({"schedule": 1}), "missing field `task`"),
    ] {
        let (status, answer) = app.call("POST", "/v1/integrations/probe/tasks", Some(body)).await;
        assert_eq!(status, 400, "{answer}");
        assert!(answer["error"]["message"].as_str().unwrap().contains(message), "{answer}");
    }
    let (status, _) = app.call_as(None, "POST", "/v1/integrations/probe/tasks", Some(json!({"task": {}}))).await;
    assert_eq!(status, 401);
    assert_eq!(queue(&app, "nope", json!({"task": {}})).await, 404);
}

#[tokio::test]
async fn a_guest_queues_tasks_and_keeps_state_per_installation() {
    let app = app().await;
    app.create_org("acme").await;
    app.create_org("other").await;
    app.publish_with("probe", "acme", probe_wasm(), json!({"visibility": "unlisted"})).await;
    let first = app.install("probe", "acme").await["urls"]["publicEndpoint"].as_str().unwrap().to_owned();
    let second = app.install("probe", "other").await["urls"]["publicEndpoint"].as_str().unwrap().to_owned();

    let put = app.client.put(format!("{first}/kv/colour")).json(&json!({"name": "teal"})).send().await.unwrap();
    assert_eq!(put.status(), 204);
    let got: Value = app.client.get(format!("{first}/kv/colour")).send().await.unwrap().json().await.unwrap();
    assert_eq!(got, json!({"value": {"name": "teal"}}));
    let other: Value = app.client.get(format!("{second}/kv/colour")).send().await.unwrap().json().await.unwrap();
    assert_eq!(other, json!({"value": null}), "installations never see each other's keys");

    let queued =
        app.client.post(format!("{first}/tasks")).json(&json!({"task": {"from": "guest"}})).send().await.unwrap();
    assert_eq!(queued.status(), 202);
    let events = app.wait_for_matching_events("probe", 1, is_task).await;
    assert_eq!(task_log(&events[0]), json!({"from": "guest"}));
    assert!(
        events[0]["event"]["installationId"].as_str().is_some_and(|id| first.contains(id)),
        "the task runs for its installation"
    );
}

#[tokio::test]
async fn kv_entries_go_with_their_installation_and_integration() {
    use weft::store::{installation_scope, integration_scope};

    let app = app().await;
    app.create_org("acme").await;
    app.create_org("other").await;
    app.publish_with("probe", "acme", probe_wasm(), json!({"visibility": "unlisted"})).await;
    let (mut ids, mut endpoints) = (Vec::new(), Vec::new());
    for org in ["acme", "other"] {
        let installation = app.install("probe", org).await;
        ids.push(installation["id"].as_str().unwrap().to_owned());
        endpoints.push(installation["urls"]["publicEndpoint"].as_str().unwrap().to_owned());
    }
    for endpoint in &endpoints {
        let put = app.client.put(format!("{endpoint}/kv/colour")).json(&json!("teal")).send().await.unwrap();
        assert_eq!(put.status(), 204);
    }
    let store = &app.state().store;
    let probe = store.integration("probe").await.unwrap().unwrap();
    assert!(store.kv_set(&integration_scope(&probe.id), "runs", "1", 10).await.unwrap());
    let kept = |scope: String| async move { store.kv_get(&scope, "colour").await.unwrap().is_some() };
    assert!(kept(installation_scope(&ids[0])).await && kept(installation_scope(&ids[1])).await);

    let (status, body) = app.call("DELETE", &format!("/v1/integrations/probe/installations/{}", ids[0]), None).await;
    assert_eq!(status, 204, "{body}");
    assert!(!kept(installation_scope(&ids[0])).await, "uninstalling deletes the installation's keys");
    assert!(kept(installation_scope(&ids[1])).await, "and only its own");
    assert!(store.kv_get(&integration_scope(&probe.id), "runs").await.unwrap().is_some());

    let (status, body) = app.call("DELETE", "/v1/integrations/probe", None).await;
    assert_eq!(status, 204, "{body}");
    assert!(!kept(installation_scope(&ids[1])).await, "unpublishing deletes every installation's keys");
    assert_eq!(store.kv_get(&integration_scope(&probe.id), "runs").await.unwrap(), None, "and the integration's");
}

#[tokio::test]
async fn events_fan_out_to_subscribed_installations_of_the_organization() {
    let app = app().await;
    app.create_org("acme").await;
    app.create_org("other").await;
    app.publish_with(
        "probe",
        "acme",
        probe_wasm(),
        json!({"visibility": "unlisted", "events": ["space_content_updated"]}),
    )
    .await;
    app.publish("hello", "acme", hello_wasm()).await;
    app.install("probe", "acme").await;
    app.install("probe", "other").await;
    app.install("hello", "acme").await;

    let (status, answer) = app
        .call("POST", "/v1/orgs/acme/events", Some(json!({"type": "space_content_updated", "payload": {"page": "p1"}})))
        .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["count"], 1, "only probe@acme subscribes: {answer}");
    let events = app.wait_for_matching_events("probe", 1, |e| e["type"] == "space_content_updated").await;
    let line = log_messages(&events[0]).into_iter().find(|m| m.starts_with("event ")).unwrap();
    assert!(line.contains(r#""page":"p1""#), "{line}");

    let (status, answer) = app.call("POST", "/v1/orgs/acme/events", Some(json!({"type": "task"}))).await;
    assert_eq!(status, 400, "{answer}");
    let (status, _) = app.call("POST", "/v1/orgs/ghost/events", Some(json!({"type": "x"}))).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn each_cron_tick_fires_once_across_two_replicas() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}", dir.path().join("weft.db").display());
    let replica = |url: String| {
        spawn_app_with(move |config| {
            config.database_url = url;
            config.queue.poll_interval = Duration::from_millis(20);
        })
    };
    let first = replica(database_url.clone()).await;
    let second = replica(database_url).await;
    first.create_org("acme").await;
    first
        .publish_with(
            "probe",
            "acme",
            probe_wasm(),
            json!({"schedules": [{"cron": "* * * * * *", "task": {"beat": true}}]}),
        )
        .await;

    let events = first.wait_for_matching_events("probe", 3, is_task).await;
    let ticks: Vec<i64> = events.iter().map(|e| task_log(e)["cronTick"].as_i64().unwrap()).collect();
    let distinct: BTreeSet<i64> = ticks.iter().copied().collect();
    assert_eq!(distinct.len(), ticks.len(), "a tick fired twice: {ticks:?}");
    assert!(ticks.windows(2).all(|w| w[1] > w[0] && w[1] % 1000 == 0), "ticks are whole seconds, in order: {ticks:?}");
    // Each firing is one job keyed by its tick, so even a second enqueue of a tick would be dropped.
    let mut db = <sqlx::SqliteConnection as sqlx::Connection>::connect(&first.database_url).await.unwrap();
    for tick in &ticks {
        let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE idempotency_key = $1")
            .bind(weft::queue::cron::tick_key(0, *tick, None))
            .fetch_one(&mut db)
            .await
            .unwrap();
        assert_eq!(jobs, 1, "tick {tick}");
    }
    drop(second);
}

#[tokio::test]
async fn schedules_are_validated_at_publish() {
    let app = app().await;
    app.create_org("acme").await;
    let mut body = crate::support::publish_body("acme", probe_wasm());
    body["schedules"] = json!([{"cron": "whenever"}]);
    let (status, answer) = app.call("POST", "/v1/integrations/probe", Some(body)).await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer["error"]["message"].as_str().unwrap().contains("schedules[0].cron"));
}

#[tokio::test]
async fn installing_on_a_space_sends_space_installation_setup_through_the_queue() {
    let app = app().await;
    app.create_org("acme").await;
    app.publish_with("probe", "acme", probe_wasm(), json!({"target": "all"})).await;
    let installation = app.install("probe", "acme").await;
    let id = installation["id"].as_str().unwrap();
    let (status, body) = app.call("POST", "/v1/orgs/acme/spaces", Some(json!({"id": "docs", "title": "Docs"}))).await;
    assert_eq!(status, 201, "{body}");
    let path = format!("/v1/integrations/probe/installations/{id}/spaces");
    let (status, body) = app.call("POST", &path, Some(json!({"spaceId": "docs"}))).await;
    assert_eq!(status, 201, "{body}");
    let events = app.wait_for_matching_events("probe", 1, |e| e["type"] == "space_installation_setup").await;
    let event = &events[0]["event"];
    assert_eq!((event["status"].as_str(), event["installationId"].as_str()), (Some("success"), Some(id)));
}

#[tokio::test]
async fn an_event_is_stored_whole_or_not_at_all() {
    let app = app().await;
    app.create_org("acme").await;
    app.publish_with("probe", "acme", probe_wasm(), json!({"visibility": "unlisted", "events": ["issue_opened"]}))
        .await;
    app.install("probe", "acme").await;
    let (status, application) = app
        .call(
            "POST",
            "/api/http/applications",
            Some(json!({"name": "tracker", "organization": "acme", "endpointUri": "http://127.0.0.1:9/hook"})),
        )
        .await;
    assert_eq!(status, 200, "{application}");
    let webhooks = format!("/api/http/applications/{}/webhooks", application["id"].as_str().unwrap());
    let (status, webhook) = app
        .call("POST", &webhooks, Some(json!({"name": "all", "subscriptions": [{"eventTypeCodes": ["issue_opened"]}]})))
        .await;
    assert_eq!(status, 200, "{webhook}");

    // The deliveries' table refuses writes, as a full disk would refuse the second statement.
    let mut db = <sqlx::SqliteConnection as sqlx::Connection>::connect(&app.database_url).await.unwrap();
    let trigger =
        "CREATE TRIGGER refuse BEFORE INSERT ON application_deliveries BEGIN SELECT RAISE(ABORT, 'refused'); END";
    sqlx::query(trigger).execute(&mut db).await.unwrap();
    let count = |sql: &'static str| {
        let url = app.database_url.clone();
        async move {
            let mut db = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url).await.unwrap();
            sqlx::query_scalar::<_, i64>(sql).fetch_one(&mut db).await.unwrap()
        }
    };
    let jobs = "SELECT count(*) FROM jobs WHERE event LIKE '%issue_opened%'";
    let deliveries = "SELECT count(*) FROM application_deliveries";

    let (status, answer) = app.call("POST", "/v1/orgs/acme/events", Some(json!({"type": "issue_opened"}))).await;
    assert_eq!(status, 500, "{answer}");
    assert_eq!(count(jobs).await, 0, "the integration's job went with the refused delivery");

    sqlx::query("DROP TRIGGER refuse").execute(&mut db).await.unwrap();
    let (status, answer) = app.call("POST", "/v1/orgs/acme/events", Some(json!({"type": "issue_opened"}))).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(count(deliveries).await, 1, "the retry stores the delivery once");
    app.wait_for_matching_events("probe", 1, |e| e["type"] == "issue_opened").await;
}
