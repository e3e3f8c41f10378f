//! A freed integration name inherits nothing. Organization A publishes `shared`, points dev
//! mode at its own tunnel, queues tasks, keeps its tokens and unpublishes; organization B
//! then publishes `shared` and installs it. Nothing of A's may reach B: not the tunnel, not
//! the tokens, not the jobs, not the idempotency keys.

use std::time::{Duration, Instant};

use serde_json::json;
use weft::store::NewJob;

use crate::api_support::{echo_wasm, echoed_invocation, publish_wasm_with, wait_for_event};
use crate::dev::http_tunnel;
use crate::support::{TestApp, spawn_app_with};

/// Queues `task` for `shared` with `token`; the status.
async fn queue_task(app: &TestApp, token: &str, body: serde_json::Value) -> u16 {
    app.call_as(Some(token), "POST", "/v1/integrations/shared/tasks", Some(body)).await.0
}

#[tokio::test]
async fn a_name_taken_again_after_unpublish_inherits_nothing_of_its_old_owner() {
    // A's tunnel listens on loopback, which only an operator's allowance lets dev mode reach.
    let app = spawn_app_with(|config| config.outbound.allow_private_addresses = true).await;
    app.create_org("orga").await;
    app.create_org("orgb").await;

    // Organization A's integration, with everything that could outlive it.
    let published = publish_wasm_with(&app, "shared", "orga", &echo_wasm(), json!({})).await;
    let a_token = published["token"].as_str().unwrap().to_owned();
    let a_id = app.state().store.integration("shared").await.unwrap().unwrap().id;
    app.install("shared", "orga").await;
    assert_eq!(queue_task(&app, &a_token, json!({"task": {"from": "a"}})).await, 204);
    let a_task = wait_for_event(&app, "shared", "task").await;
    let a_sealed = echoed_invocation(&a_task)["environment"]["apiTokens"]["integration"].as_str().unwrap().to_owned();
    let later = json!({"task": {"from": "a-later"}, "schedule": 3600, "idempotencyKey": "k"});
    assert_eq!(queue_task(&app, &a_token, later).await, 204);
    let (tunnel_url, tunnel) = http_tunnel().await;
    let (status, body) = app.call("PUT", "/v1/integrations/shared/dev", Some(json!({"tunnelUrl": tunnel_url}))).await;
    assert_eq!(status, 204, "{body}");

    let (status, body) = app.call("DELETE", "/v1/integrations/shared", None).await;
    assert_eq!(status, 204, "{body}");
    // A's own `installation_deleted` went to A's tunnel; nothing may follow it.
    let heard_by_a = tunnel.lock().unwrap().requests.len();

    // Organization B takes the name.
    let published = publish_wasm_with(&app, "shared", "orgb", &echo_wasm(), json!({})).await;
    let b_token = published["token"].as_str().unwrap().to_owned();
    let b_installation = app.install("shared", "orgb").await;
    let b_endpoint = b_installation["urls"]["publicEndpoint"].as_str().unwrap();
    let b_path = format!("/v1/integrations/shared/installations/{}", b_installation["id"].as_str().unwrap());

    // B's events run B's module; A's tunnel hears nothing.
    let response = reqwest::get(b_endpoint).await.unwrap();
    assert_eq!(response.status().as_u16(), 406, "the echo module does not answer fetch events");
    assert_eq!(tunnel.lock().unwrap().requests.len(), heard_by_a, "B's event went to A's dev tunnel");
    let (_, dev) = app.call("GET", "/v1/integrations/shared/dev", None).await;
    assert_eq!(dev["enabled"], false, "{dev}");

    // A's tokens, stored and sealed, act for nothing any more.
    for token in [&a_token, &a_sealed] {
        assert_eq!(app.call_as(Some(token), "GET", &b_path, None).await.0, 401);
        let publish = crate::support::publish_body("orgb", crate::support::hello_wasm());
        assert_eq!(app.call_as(Some(token), "POST", "/v1/integrations/shared", Some(publish)).await.0, 401);
        assert_eq!(queue_task(&app, token, json!({"task": {"from": "a-token"}})).await, 401);
    }
    assert_eq!(app.call_as(Some(&b_token), "GET", &b_path, None).await.0, 200);

    // A's queued task is gone: B's list is empty, and B may use the same idempotency key.
    let (status, tasks) = app.call("GET", "/v1/integrations/shared/tasks", None).await;
    assert_eq!((status, tasks["count"].as_i64()), (200, Some(0)), "{tasks}");
    assert_eq!(queue_task(&app, &b_token, json!({"task": {"from": "b"}, "idempotencyKey": "k"})).await, 204);
    let b_task = wait_for_event(&app, "shared", "task").await;
    assert_eq!(echoed_invocation(&b_task)["event"]["task"]["from"], "b");

    // A job of A's that was claimed as the name changed hands (here: written after the
    // unpublish) is dropped, never run by B's module.
    let state = app.state();
    let straggler = NewJob {
        id: "job_straggler".into(),
        integration_id: a_id,
        integration: "shared".into(),
        installation_id: None,
        event: json!({"type": "task", "task": {"from": "a-straggler"}}),
        due_at: weft::store::now_ms(),
        max_attempts: 1,
        idempotency_key: None,
    };
    state.queue.enqueue(&state.store, &[straggler]).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while state.store.queue_depth().await.unwrap() > 0 {
        assert!(Instant::now() < deadline, "the straggler was never settled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, events) = app.call("GET", "/v1/integrations/shared/events?type=task", None).await;
    assert_eq!(events["count"], 1, "only B's own task ran under the name: {events}");
}
