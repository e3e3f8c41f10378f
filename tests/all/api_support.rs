//! Helpers for the integrations API tests: users with roles, a module that echoes its
//! invocation into its logs, and error bodies.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{TestApp, hello_wasm, publish_body};

/// The message of a `/v1` error body.
pub fn error_message(body: &Value) -> &str {
    body["error"]["message"].as_str().unwrap_or_else(|| panic!("not a /v1 error body: {body}"))
}

/// A guest that writes its whole invocation JSON to stdout (so it lands in the event's
/// logs) and answers `{}`.
pub fn echo_wasm() -> Vec<u8> {
    wat::parse_str(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 4)
  (data (i32.const 0) "{}")
  (func (export "weft_alloc") (param i32) (result i32) (i32.const 4096))
  (func (export "weft_handle") (param $ptr i32) (param $len i32) (result i64)
    (i32.store (i32.const 16) (local.get $ptr))
    (i32.store (i32.const 20) (local.get $len))
    (drop (call $fd_write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 24)))
    (i64.const 2)))"#,
    )
    .expect("valid WAT")
}

/// Creates user `id` (once), makes it `role` of `org` and returns a new token for it.
pub async fn user_token(app: &TestApp, id: &str, org: &str, role: &str) -> String {
    let (status, body) = app.call("POST", "/v1/users", Some(json!({"id": id, "name": id}))).await;
    assert!(status == 201 || status == 409, "{body}");
    let (status, body) =
        app.call("POST", &format!("/v1/orgs/{org}/members"), Some(json!({"userId": id, "role": role}))).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app.call("POST", &format!("/v1/users/{id}/tokens"), None).await;
    assert_eq!(status, 201, "{body}");
    body["token"].as_str().unwrap().to_owned()
}

/// Publishes `name` for `org` with the hello module and extra fields; returns the answer.
pub async fn publish_with(app: &TestApp, name: &str, org: &str, extra: Value) -> Value {
    publish_wasm_with(app, name, org, hello_wasm(), extra).await
}

/// Publishes `wasm` as `name` for `org` with extra fields; returns the answer.
pub async fn publish_wasm_with(app: &TestApp, name: &str, org: &str, wasm: &[u8], extra: Value) -> Value {
    let mut body = publish_body(org, wasm);
    for (key, value) in extra.as_object().unwrap() {
        body[key] = value.clone();
    }
    let (status, answer) = app.call("POST", &format!("/v1/integrations/{name}"), Some(body)).await;
    assert_eq!(status, 200, "{answer}");
    answer
}

/// Creates a space (or site, with `kind` = "sites") `id` in `org`.
pub async fn create_place(app: &TestApp, org: &str, kind: &str, id: &str) {
    let (status, body) =
        app.call("POST", &format!("/v1/orgs/{org}/{kind}"), Some(json!({"id": id, "title": id}))).await;
    assert_eq!(status, 201, "{body}");
}

/// Polls the events of `name` until one of type `event_type` is there; returns it with its logs.
pub async fn wait_for_event(app: &TestApp, name: &str, event_type: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = app.call("GET", &format!("/v1/integrations/{name}/events?limit=1000"), None).await;
        assert_eq!(status, 200, "{body}");
        if let Some(event) = body["items"].as_array().unwrap().iter().find(|e| e["type"] == event_type) {
            let (status, event) = app
                .call("GET", &format!("/v1/integrations/{name}/events/{}", event["id"].as_str().unwrap()), None)
                .await;
            assert_eq!(status, 200, "{event}");
            return event;
        }
        assert!(Instant::now() < deadline, "no `{event_type}` event was recorded for `{name}`");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The invocation of the `installation_setup` a change of installation sent (it says what
/// the installation was before), once `name` has had `setups` of them in all (the install's
/// own comes first, through the queue, so its order against the change's is not fixed).
pub async fn changed_setup(app: &TestApp, name: &str, setups: usize) -> Value {
    app.wait_for_matching_events(name, setups, |event| event["type"] == "installation_setup")
        .await
        .iter()
        .map(echoed_invocation)
        .find(|invocation| invocation["event"]["previous"].is_object())
        .expect("the change's installation_setup")
}

/// The invocation an echo guest logged for `event` (`{event, trace}`).
pub fn echoed_invocation(event: &Value) -> Value {
    let text: String =
        event["trace"]["logs"].as_array().unwrap().iter().map(|line| line["message"].as_str().unwrap_or("")).collect();
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("the echo guest logged no invocation ({e}): {text}"))
}
