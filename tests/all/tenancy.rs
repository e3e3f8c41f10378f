//! Many tenants, one server: no integration, installation or anonymous caller can starve,
//! flood or slow down the others (issue 16). Each test asserts what a tenant observes —
//! status codes, headers, which jobs ran, what the logs say — never how long it took.

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use weft::store::{EventFilter, EventRecord, FairClaim, NewJob, Store, now_ms};

use crate::api_support::error_message;
use crate::support::{
    ADMIN, TestApp, fixture, fresh_postgres, fresh_sqlite, hello_wasm, log_messages, probe_wasm, spawn_app_with,
};

/// Polls `check` until it holds, failing after a generous deadline.
async fn eventually<F: std::future::Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn integration_id(app: &TestApp, name: &str) -> String {
    app.state().store.integration(name).await.unwrap().expect("published").id
}

async fn endpoint(app: &TestApp, name: &str, org: &str) -> String {
    app.create_org(org).await;
    app.install(name, org).await["urls"]["publicEndpoint"].as_str().unwrap().to_owned()
}

/// Starts a request that holds a slot (the sleeping module) without waiting for it.
fn occupy(app: &TestApp, url: &str) {
    let request = app.client.get(url).send();
    tokio::spawn(async move {
        let _ = request.await;
    });
}

#[tokio::test]
async fn a_saturated_integration_is_refused_with_429_while_others_still_run() {
    let app = spawn_app_with(|config| {
        config.tenancy.integration_slots = Some(2);
        config.tenancy.installation_slots = Some(1);
        config.tenancy.slot_wait = Duration::from_millis(50);
        config.queue.enabled = false;
    })
    .await;
    app.create_org("acme").await;
    app.publish("hello", "acme", hello_wasm()).await;
    let hello = app.install("hello", "acme").await["urls"]["publicEndpoint"].as_str().unwrap().to_owned();
    app.create_org("noisy").await;
    let extra = json!({"visibility": "public", "limits": {"deadlineMs": 60_000}});
    app.publish_with("sleepy", "noisy", &fixture("sleep"), extra).await;
    let id = integration_id(&app, "sleepy").await;
    let (first, second, third) = (
        endpoint(&app, "sleepy", "t1").await,
        endpoint(&app, "sleepy", "t2").await,
        endpoint(&app, "sleepy", "t3").await,
    );

    occupy(&app, &first);
    eventually("the first installation runs", || async { app.state().tenancy.slots.running(&id) == 1 }).await;
    // That installation's own share (1) is full; the integration's (2) is not.
    let refused = app.client.get(&first).send().await.unwrap();
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "1");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], 429, "{body}");

    occupy(&app, &second);
    eventually("the second installation runs", || async { app.state().tenancy.slots.running(&id) == 2 }).await;
    // Now the integration's share is full: a third installation waits, then is refused…
    let refused = app.client.get(&third).send().await.unwrap();
    assert_eq!(refused.status(), 429);
    assert!(error_message(&refused.json().await.unwrap()).contains("2 concurrent events"));
    // …while another tenant's integration still finds a slot in the pool.
    for _ in 0..5 {
        assert_eq!(app.client.get(&hello).send().await.unwrap().status(), 200);
    }
}

#[tokio::test]
async fn a_manifest_may_lower_its_own_share_within_the_servers() {
    let app = spawn_app_with(|config| {
        config.tenancy.slot_wait = Duration::from_millis(50);
        config.queue.enabled = false;
    })
    .await;
    app.create_org("noisy").await;
    let body = json!({"visibility": "public", "limits": {"concurrency": 0}});
    let mut publish = crate::support::publish_body("noisy", &fixture("sleep"));
    for (key, value) in body.as_object().unwrap() {
        publish[key] = value.clone();
    }
    let (status, answer) = app.call("POST", "/v1/integrations/sleepy", Some(publish)).await;
    assert_eq!(status, 400);
    assert!(error_message(&answer).contains("limits.concurrency"), "{answer}");

    app.publish_with(
        "sleepy",
        "noisy",
        &fixture("sleep"),
        json!({"visibility": "public", "limits": {"concurrency": 1}}),
    )
    .await;
    let id = integration_id(&app, "sleepy").await;
    let (first, second) = (endpoint(&app, "sleepy", "t1").await, endpoint(&app, "sleepy", "t2").await);
    occupy(&app, &first);
    eventually("the first event runs", || async { app.state().tenancy.slots.running(&id) == 1 }).await;
    assert_eq!(app.client.get(&second).send().await.unwrap().status(), 429, "its share is the manifest's 1");
}

#[tokio::test]
async fn each_installations_public_endpoint_has_its_own_token_bucket() {
    let app = spawn_app_with(|config| {
        config.tenancy.fetch_rate = 0.001;
        config.tenancy.fetch_burst = 2;
        config.queue.enabled = false;
    })
    .await;
    app.create_org("acme").await;
    app.publish_with("hello", "acme", hello_wasm(), json!({"visibility": "public"})).await;
    let flooded = app.install("hello", "acme").await["urls"]["publicEndpoint"].as_str().unwrap().to_owned();
    let other = endpoint(&app, "hello", "other").await;
    for _ in 0..2 {
        assert_eq!(app.client.get(&flooded).send().await.unwrap().status(), 200);
    }
    let refused = app.client.get(&flooded).send().await.unwrap();
    assert_eq!(refused.status(), 429);
    let retry_after: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry_after >= 1);
    assert_eq!(app.client.get(&other).send().await.unwrap().status(), 200, "another installation is not limited");
}

fn job(id: &str, integration_id: &str, due_at: i64) -> NewJob {
    NewJob {
        id: id.to_owned(),
        integration_id: integration_id.to_owned(),
        integration: integration_id.to_owned(),
        installation_id: None,
        event: json!({"type": "task", "task": {}}),
        due_at,
        max_attempts: 5,
        idempotency_key: None,
    }
}

async fn claims_take_turns_between_integrations(store: &Store) {
    let now = now_ms();
    let backlog: Vec<NewJob> = (0..300).map(|i| job(&format!("b{i:03}"), "itg_b", now - 60_000 + i)).collect();
    store.enqueue(&backlog).await.unwrap();
    store.enqueue(&[job("a1", "itg_a", now - 1)]).await.unwrap();

    // A's one due job is claimed at once, although 300 of B's were due before it.
    let fair = FairClaim { per_integration: 4, skip: Vec::new() };
    let claimed = store.claim_jobs_fairly("w1", 60_000, 4, &fair).await.unwrap();
    let ids: Vec<&str> = claimed.iter().map(|job| job.id.as_str()).collect();
    assert_eq!(ids.len(), 4);
    assert!(ids.contains(&"a1"), "{ids:?}");
    assert_eq!(ids.iter().filter(|id| id.starts_with('b')).count(), 3);

    // A share caps one integration's jobs in a claim; a full share takes none.
    let fair = FairClaim { per_integration: 2, skip: Vec::new() };
    assert_eq!(store.claim_jobs_fairly("w1", 60_000, 10, &fair).await.unwrap().len(), 2);
    let full = FairClaim { per_integration: 10, skip: vec!["itg_b".to_owned()] };
    assert!(store.claim_jobs_fairly("w1", 60_000, 10, &full).await.unwrap().is_empty());

    // The per-integration count stops at its bound.
    assert_eq!(store.queued_jobs_of("itg_b", 50).await.unwrap(), 50);
    assert_eq!(store.queued_jobs_of("itg_a", 50).await.unwrap(), 1, "a1 is running");
}

#[tokio::test]
async fn claims_take_turns_between_integrations_on_sqlite() {
    let (store, _dir) = fresh_sqlite().await;
    claims_take_turns_between_integrations(&store).await;
}

#[tokio::test]
async fn claims_take_turns_between_integrations_on_postgres() {
    let database = fresh_postgres().await;
    claims_take_turns_between_integrations(&Store::connect(&database.url).await.unwrap()).await;
}

#[tokio::test]
async fn a_backlog_of_slow_tasks_leaves_workers_for_another_integrations_task() {
    let app = spawn_app_with(|config| {
        config.queue.workers = 4;
        config.tenancy.worker_share = Some(2);
    })
    .await;
    app.create_org("acme").await;
    app.create_org("noisy").await;
    app.publish("hello", "acme", hello_wasm()).await;
    app.publish_with("sleepy", "noisy", &fixture("sleep"), json!({"limits": {"deadlineMs": 60_000}})).await;
    for i in 0..20 {
        let (status, body) = app.call("POST", "/v1/integrations/sleepy/tasks", Some(json!({"task": {"n": i}}))).await;
        assert_eq!(status, 204, "{body}");
    }
    let sleepy = integration_id(&app, "sleepy").await;
    eventually("the backlog runs", || async { app.state().tenancy.slots.running(&sleepy) == 2 }).await;
    let (status, body) = app.call("POST", "/v1/integrations/hello/tasks", Some(json!({"task": {}}))).await;
    assert_eq!(status, 204, "{body}");
    // hello's task runs while the sleeping backlog still waits: it never took every worker.
    app.wait_for_matching_events("hello", 1, |event| event["type"] == "task").await;
    let waiting = app.state().store.queued_jobs_of(&sleepy, 100).await.unwrap();
    assert_eq!(waiting, 20, "18 queued and 2 running, none finished");
}

#[tokio::test]
async fn queue_quotas_refuse_clearly_and_the_refusal_is_in_the_logs() {
    let app = spawn_app_with(|config| config.tenancy.max_queued_per_integration = 2).await;
    app.create_org("acme").await;
    app.publish("probe", "acme", probe_wasm()).await;
    let url = app.install("probe", "acme").await["urls"]["publicEndpoint"].as_str().unwrap().to_owned();
    let id = integration_id(&app, "probe").await;
    let store = &app.state().store;
    eventually("installation_setup has run", || async { store.queued_jobs_of(&id, 10).await.unwrap() == 0 }).await;
    let later = json!({"task": {"later": true}, "schedule": 3600});
    for _ in 0..2 {
        let response = app.client.post(format!("{url}/tasks")).json(&later).send().await.unwrap();
        assert_eq!(response.status(), 202);
    }
    let refused = app.client.post(format!("{url}/tasks")).json(&later).send().await.unwrap();
    assert_ne!(refused.status(), 202);
    let event_id = refused.headers()["x-weft-event-id"].to_str().unwrap().to_owned();
    let path = format!("/v1/integrations/probe/events/{event_id}");
    eventually("the refused event is recorded", || async { app.call("GET", &path, None).await.0 == 200 }).await;
    let event = app.call("GET", &path, None).await.1;
    let logs = log_messages(&event).join("\n");
    assert!(logs.contains("task.queue refused: quota_exceeded"), "{logs}");
    assert!(logs.contains("2 jobs waiting"), "{logs}");

    // The API answers the same quota with 429.
    let (status, body) = app.call("POST", "/v1/integrations/probe/tasks", Some(json!({"task": {}}))).await;
    assert_eq!(status, 429, "{body}");
    assert!(error_message(&body).contains("2 jobs waiting"));
}

#[tokio::test]
async fn one_event_may_queue_only_its_quota_of_tasks() {
    let app = spawn_app_with(|config| config.tenancy.max_tasks_per_event = 0).await;
    app.create_org("acme").await;
    app.publish("probe", "acme", probe_wasm()).await;
    let url = app.install("probe", "acme").await["urls"]["publicEndpoint"].as_str().unwrap().to_owned();
    let refused = app.client.post(format!("{url}/tasks")).json(&json!({"task": {}})).send().await.unwrap();
    assert_ne!(refused.status(), 202);
    let events = app.wait_for_matching_events("probe", 1, |event| event["type"] == "fetch").await;
    let logs = log_messages(&events[0]).join("\n");
    assert!(logs.contains("one event may queue at most 0 tasks"), "{logs}");
}

#[tokio::test]
async fn an_integration_past_its_log_budget_keeps_its_events_without_their_logs() {
    let app = spawn_app_with(|config| config.tenancy.log_bytes_per_minute = 16).await;
    app.create_org("acme").await;
    app.publish("probe", "acme", probe_wasm()).await;
    let url = app.install("probe", "acme").await["urls"]["publicEndpoint"].as_str().unwrap().to_owned();
    let response = app.client.post(format!("{url}/tasks")).json(&json!({"task": {"big": "x".repeat(100)}})).send();
    assert_eq!(response.await.unwrap().status(), 202);
    let tasks = app.wait_for_matching_events("probe", 1, |event| event["type"] == "task").await;
    let logs = log_messages(&tasks[0]);
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert!(logs[0].contains("logs dropped"), "{logs:?}");
}

async fn lists_never_read_logs(store: &Store) {
    store.create_org("acme", "Acme").await.unwrap();
    let logs = json!([{"level": "info", "message": "y".repeat(10_000), "timestamp": 1}]).to_string();
    let event = EventRecord {
        id: "evt_1".into(),
        integration_id: "itg_x".into(),
        integration: "x".into(),
        installation_id: None,
        event_type: "task".into(),
        status: "success".into(),
        error_kind: None,
        error_message: None,
        response_status: None,
        duration_us: 1,
        logs: logs.clone(),
        created_at: now_ms(),
        payload: None,
    };
    store.insert_events(std::slice::from_ref(&event)).await.unwrap();
    let page = store.events("itg_x", &EventFilter::default(), "", 10).await.unwrap();
    assert_eq!(page.events.len(), 1);
    assert_eq!(page.events[0].logs, "", "the list did not read the logs");
    assert_eq!(store.event("itg_x", "evt_1").await.unwrap().unwrap().logs, logs, "one event's detail does");
}

#[tokio::test]
async fn event_lists_never_read_logs_on_sqlite() {
    let (store, _dir) = fresh_sqlite().await;
    lists_never_read_logs(&store).await;
}

#[tokio::test]
async fn event_lists_never_read_logs_on_postgres() {
    let database = fresh_postgres().await;
    lists_never_read_logs(&Store::connect(&database.url).await.unwrap()).await;
}

#[tokio::test]
async fn icons_and_preview_images_have_size_caps_at_publish() {
    let app = spawn_app_with(|config| config.queue.enabled = false).await;
    app.create_org("acme").await;
    let mut body = crate::support::publish_body("acme", hello_wasm());
    body["icon"] = json!(BASE64.encode(vec![0u8; weft::manifest::MAX_ICON_BYTES + 1]));
    let (status, answer) = app.call("POST", "/v1/integrations/hello", Some(body.clone())).await;
    assert_eq!(status, 400);
    assert!(error_message(&answer).starts_with("icon must be at most"), "{answer}");
    body["icon"] = json!(BASE64.encode(vec![0u8; 1000]));
    body["previewImages"] = json!([BASE64.encode(vec![0u8; weft::manifest::MAX_PREVIEW_IMAGE_BYTES + 1])]);
    let (status, answer) = app.call("POST", "/v1/integrations/hello", Some(body)).await;
    assert_eq!(status, 400);
    assert!(error_message(&answer).starts_with("previewImages[0] must be at most"), "{answer}");
}

#[tokio::test]
async fn a_slowloris_connection_is_closed_and_others_are_served() {
    let app = spawn_app_with(|config| {
        config.connections.head_timeout = Duration::from_millis(300);
        config.queue.enabled = false;
    })
    .await;
    let addr = app.url.trim_start_matches("http://").to_owned();
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: weft\r\n").await.unwrap();
    // It never finishes its head: the server closes the connection without answering.
    let mut answered = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(60), slow.read_to_end(&mut answered)).await;
    assert!(read.is_ok(), "the connection stayed open");
    assert!(!String::from_utf8_lossy(&answered).contains("200"), "{}", String::from_utf8_lossy(&answered));
    let (status, _) = app.call_as(None, "GET", "/healthz", None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn past_the_connection_cap_a_client_waits_until_a_connection_closes() {
    let app = spawn_app_with(|config| {
        config.connections.max_connections = 2;
        config.connections.head_timeout = Duration::from_secs(60);
        config.queue.enabled = false;
    })
    .await;
    let addr = app.url.trim_start_matches("http://").to_owned();
    // Two clients hold every place without sending anything.
    let first = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let second = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let mut third = tokio::spawn(reqwest::Client::new().get(format!("{}/healthz", app.url)).send());
    let early = tokio::time::timeout(Duration::from_millis(500), &mut third).await;
    assert!(early.is_err(), "a third connection was served past the cap: {early:?}");
    // A place frees up: the waiting client is accepted and answered.
    drop((first, second));
    assert_eq!(third.await.unwrap().unwrap().status(), 200);
}

#[tokio::test]
async fn the_oauth_token_endpoint_answers_413_past_its_body_limit() {
    let app = spawn_app_with(|config| config.queue.enabled = false).await;
    let form = format!("grant_type=client_credentials&padding={}", "x".repeat(300 * 1024));
    let response = app
        .client
        .post(format!("{}/oauth/token", app.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
}

/// An HTTP tunnel that answers every request with an endless chunked body.
async fn endless_tunnel() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = vec![0u8; 64 << 10];
                let _ = stream.read(&mut request).await;
                let _ = stream
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n",
                    )
                    .await;
                let chunk = format!("{:x}\r\n{}\r\n", 64 << 10, " ".repeat(64 << 10));
                while stream.write_all(chunk.as_bytes()).await.is_ok() {}
            });
        }
    });
    url
}

#[tokio::test]
async fn an_http_tunnels_answer_is_capped_while_it_is_read_and_hidden_from_callers() {
    let app = spawn_app_with(|config| {
        config.outbound.allow_private_addresses = true;
        config.queue.enabled = false;
    })
    .await;
    app.create_org("acme").await;
    app.publish("hello", "acme", hello_wasm()).await;
    let url = app.install("hello", "acme").await["urls"]["publicEndpoint"].as_str().unwrap().to_owned();
    let tunnel = endless_tunnel().await;
    let (status, _) = app.call("PUT", "/v1/integrations/hello/dev", Some(json!({"tunnelUrl": tunnel}))).await;
    assert_eq!(status, 204);
    let response = app.client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 500);
    let body: Value = response.json().await.unwrap();
    assert!(!body.to_string().contains("127.0.0.1"), "the tunnel is shown to an anonymous caller: {body}");
    let events = app.wait_for_matching_events("hello", 1, |event| event["type"] == "fetch").await;
    let error = events[0].to_string();
    assert!(error.contains(&format!("more than {} bytes", weft::dev::MAX_ANSWER_BYTES)), "{}", events[0]);
}

#[tokio::test]
async fn a_tunnel_url_at_a_private_address_is_refused_unless_the_operator_allows_it() {
    let app = spawn_app_with(|config| config.queue.enabled = false).await;
    app.create_org("acme").await;
    app.publish("hello", "acme", hello_wasm()).await;
    let body = json!({"tunnelUrl": "http://127.0.0.1:9/hook"});
    let (status, answer) = app.call("PUT", "/v1/integrations/hello/dev", Some(body)).await;
    assert_eq!(status, 400);
    assert!(error_message(&answer).starts_with("tunnelUrl"), "{answer}");
}

#[tokio::test]
async fn a_reverse_tunnel_that_never_reads_is_dropped_and_its_events_fail() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
    let app = spawn_app_with(|config| {
        config.queue.enabled = false;
        config.max_fetch_body_bytes = 1 << 20;
        // Every call reaches the tunnel (the installation's share would turn some away).
        config.tenancy.integration_slots = Some(16);
        config.tenancy.installation_slots = Some(16);
    })
    .await;
    app.create_org("acme").await;
    app.publish("hello", "acme", hello_wasm()).await;
    let id = integration_id(&app, "hello").await;
    let url = app.install("hello", "acme").await["urls"]["publicEndpoint"].as_str().unwrap().to_owned();
    let connect = format!("{}/v1/integrations/hello/dev/connect", app.url.replace("http://", "ws://"));
    let mut request = connect.into_client_request().unwrap();
    request.headers_mut().insert("authorization", format!("Bearer {ADMIN}").parse().unwrap());
    // Connected, then never read: its socket buffers fill with invocations.
    let (_never_read, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    eventually("the tunnel is registered", || async { app.state().dev.connected(&id) }).await;

    let body = vec![b'x'; 1 << 20];
    let calls: Vec<_> = (0..16).map(|_| app.client.post(&url).body(body.clone()).send()).collect();
    let answers = tokio::time::timeout(Duration::from_secs(120), futures_util::future::join_all(calls))
        .await
        .expect("every caller got an answer");
    for answer in answers {
        let answer = answer.unwrap();
        assert_eq!(answer.status(), 500);
        let text = answer.text().await.unwrap();
        assert!(text.contains("dev mode") && !text.contains("ws://"), "{text}");
    }
    eventually("the stuck tunnel is dropped", || async { !app.state().dev.connected(&id) }).await;
}
