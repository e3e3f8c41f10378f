//! The public endpoint: requests become `fetch` events and responses are relayed.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{TestApp, fixture, hello_wasm, probe_wasm, spawn_app, spawn_app_with};

async fn installed(app: &TestApp, name: &str, wasm: &[u8]) -> String {
    app.create_org("acme").await;
    app.publish(name, "acme", wasm).await;
    let installation = app.install(name, "acme").await;
    installation["urls"]["publicEndpoint"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn hello_answers_with_method_path_and_configuration_and_is_logged() {
    let app = spawn_app().await;
    let endpoint = installed(&app, "hello", hello_wasm()).await;

    let response = app.client.post(format!("{endpoint}/some/path?x=1")).body("ping").send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    let event_id = response.headers()["x-weft-event-id"].to_str().unwrap().to_owned();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"method": "POST", "path": "/some/path", "configuration": {}}));

    let events = app.wait_for_events("hello", 1).await;
    assert_eq!(events[0]["id"], event_id.as_str());
    assert_eq!(events[0]["type"], "fetch");
    assert_eq!(events[0]["status"], "success");
    assert_eq!(events[0]["response"]["status"], 200);
    assert!(events[0]["duration"].as_f64().unwrap() > 0.0);

    let (status, event) = app.call("GET", &format!("/v1/integrations/hello/events/{event_id}"), None).await;
    assert_eq!(status, 200, "{event}");
    let logs = event["trace"]["logs"].as_array().unwrap();
    assert!(
        logs.iter().any(|line| line["message"].as_str().unwrap().contains("/some/path")),
        "hello's log line is missing: {logs:?}"
    );
    assert!(logs[0]["timestamp"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn the_endpoint_root_is_path_slash() {
    let app = spawn_app().await;
    let endpoint = installed(&app, "hello", hello_wasm()).await;
    let body: Value = app.client.get(&endpoint).send().await.unwrap().json().await.unwrap();
    assert_eq!((body["method"].as_str(), body["path"].as_str()), (Some("GET"), Some("/")));
}

#[tokio::test]
async fn a_module_without_a_fetch_handler_answers_406() {
    let app = spawn_app().await;
    let endpoint = installed(&app, "silent", &fixture("no_fetch_handler")).await;
    let response = app.client.get(&endpoint).send().await.unwrap();
    assert_eq!(response.status(), 406);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], 406);
}

#[tokio::test]
async fn a_failing_guest_answers_500_and_the_server_keeps_serving() {
    let app = spawn_app().await;
    let broken = installed(&app, "broken", &fixture("trap")).await;
    app.publish("hello", "acme", hello_wasm()).await;
    let hello = app.install("hello", "acme").await["urls"]["publicEndpoint"].as_str().unwrap().to_owned();

    for _ in 0..3 {
        let response = app.client.get(&broken).send().await.unwrap();
        assert_eq!(response.status(), 500);
        let body: Value = response.json().await.unwrap();
        assert!(body["error"]["message"].as_str().unwrap().contains("trap"), "{body}");
        assert_eq!(app.client.get(&hello).send().await.unwrap().status(), 200);
    }
    let events = app.wait_for_events("broken", 3).await;
    assert!(events.iter().all(|e| e["status"] == "failed" && e["error"]["kind"] == "trap"), "{events:?}");
}

#[tokio::test]
async fn a_response_http_cannot_carry_is_bad_output() {
    let app = spawn_app().await;
    let endpoint = installed(&app, "badheader", &fixture("bad_header")).await;
    assert_eq!(app.client.get(&endpoint).send().await.unwrap().status(), 500);
    let events = app.wait_for_events("badheader", 1).await;
    assert_eq!(events[0]["error"]["kind"], "bad_output");
}

#[tokio::test]
async fn an_oversized_request_body_answers_413() {
    let app = spawn_app_with(|config| config.max_fetch_body_bytes = 1024).await;
    let endpoint = installed(&app, "hello", hello_wasm()).await;
    let response = app.client.post(&endpoint).body(vec![b'x'; 2048]).send().await.unwrap();
    assert_eq!(response.status(), 413);
    assert_eq!(app.client.post(&endpoint).body(vec![b'x'; 512]).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn unknown_installations_answer_404() {
    let app = spawn_app().await;
    let endpoint = installed(&app, "hello", hello_wasm()).await;
    let (_, rest) = endpoint.rsplit_once("/installations/").unwrap();
    let wrong = endpoint.replace(rest, "inst_nope/fetch");
    assert_eq!(app.client.get(wrong).send().await.unwrap().status(), 404);
}

#[tokio::test]
async fn events_page_newest_first() {
    let app = spawn_app().await;
    let endpoint = installed(&app, "hello", hello_wasm()).await;
    for i in 0..5 {
        app.client.get(format!("{endpoint}/{i}")).send().await.unwrap();
    }
    let all = app.wait_for_events("hello", 5).await;
    let ids: Vec<&str> = all.iter().map(|e| e["id"].as_str().unwrap()).collect();
    let mut sorted = ids.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(ids, sorted, "events must come newest first");

    let (_, first) = app.call("GET", "/v1/integrations/hello/events?type=fetch&limit=2", None).await;
    assert_eq!(first["count"], 5);
    let page = first["next"]["page"].as_str().unwrap();
    let next = format!("/v1/integrations/hello/events?type=fetch&limit=2&page={page}");
    let (_, second) = app.call("GET", &next, None).await;
    let second_ids: Vec<&str> = second["items"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(second_ids, ids[2..4]);
    let (status, _) = app.call("GET", "/v1/integrations/hello/events?limit=0", None).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn events_filter_by_status_type_and_installation() {
    let app = spawn_app().await;
    app.create_org("acme").await;
    app.create_org("other").await;
    app.publish_with("probe", "acme", probe_wasm(), json!({"visibility": "public"})).await;
    let (first, second) = (app.install("probe", "acme").await, app.install("probe", "other").await);
    let endpoint = |installation: &Value| installation["urls"]["publicEndpoint"].as_str().unwrap().to_owned();
    for _ in 0..3 {
        app.client.get(format!("{}/hi", endpoint(&first))).send().await.unwrap();
    }
    // Not JSON: the probe answers 400, so the event is recorded as failed.
    let refused = app.client.put(format!("{}/kv/k", endpoint(&second))).body("{").send().await.unwrap();
    assert_eq!(refused.status(), 400);
    app.wait_for_matching_events("probe", 4, |event| event["type"] == "fetch").await;

    let app = &app;
    let list = |query: &str| {
        let path = format!("/v1/integrations/probe/events?{query}");
        async move { app.call("GET", &path, None).await }
    };
    let (status, failed) = list("status=failed").await;
    assert_eq!(status, 200, "{failed}");
    assert_eq!(failed["count"], 1, "{failed}");
    assert_eq!(failed["items"][0]["installationId"], second["id"]);
    assert_eq!(failed["items"][0]["error"]["kind"], "handler_error");
    let (_, first_only) = list(&format!("installation={}&type=fetch&limit=2", first["id"].as_str().unwrap())).await;
    assert_eq!(first_only["count"], 3, "count is of the matching events: {first_only}");
    assert_eq!(first_only["items"].as_array().unwrap().len(), 2);
    let page = first_only["next"]["page"].as_str().expect("a next page of matching events").to_owned();
    let (_, rest) =
        list(&format!("installation={}&type=fetch&limit=2&page={page}", first["id"].as_str().unwrap())).await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 1, "{rest}");
    assert_eq!(list("type=task").await.1["count"], 0);

    for (query, field) in [("status=broken", "status"), ("type=", "type"), ("colour=red", "colour")] {
        let (status, body) = list(query).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains(field), "{query}: {body}");
    }
}

#[tokio::test]
async fn stopping_the_server_writes_every_pending_event() {
    let app = spawn_app().await;
    let endpoint = installed(&app, "hello", hello_wasm()).await;
    for _ in 0..20 {
        app.client.get(&endpoint).send().await.unwrap();
    }
    let (url, database_url) = (app.url.clone(), app.database_url.clone());
    let _dir = app.stop().await;
    assert!(reqwest::Client::new().get(&url).timeout(Duration::from_secs(1)).send().await.is_err());
    let store = weft::store::Store::connect(&database_url).await.unwrap();
    let hello = store.integration("hello").await.unwrap().unwrap();
    let fetches = weft::store::EventFilter { event_type: Some("fetch"), ..Default::default() };
    assert_eq!(store.events(&hello.id, &fetches, "", 100).await.unwrap().total, 20);
}

#[tokio::test]
async fn the_whole_path_runs_on_postgres_too() {
    let database = crate::support::fresh_postgres().await;
    let app = spawn_app_with(|config| {
        config.database_url = database.url.clone();
        config.secret_key = Some("11".repeat(32));
    })
    .await;
    let endpoint = installed(&app, "hello", hello_wasm()).await;
    let body: Value = app.client.get(format!("{endpoint}/pg")).send().await.unwrap().json().await.unwrap();
    assert_eq!(body["path"], "/pg");
    let events = app.wait_for_events("hello", 1).await;
    assert_eq!(events[0]["status"], "success");
}
