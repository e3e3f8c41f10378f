//! Publishing and installing: the happy path and every bad input.

use serde_json::{Value, json};

use crate::support::{ADMIN, fixture, hello_wasm, publish_body, spawn_app};

fn error_message(body: &Value) -> &str {
    body["error"]["message"].as_str().unwrap_or_else(|| panic!("not a /v1 error body: {body}"))
}

#[tokio::test]
async fn publishing_returns_the_manifest_and_never_the_script() {
    let app = spawn_app().await;
    app.create_org("acme").await;
    let integration = app.publish("hello", "acme", hello_wasm()).await;
    assert_eq!(integration["name"], "hello");
    assert_eq!(integration["organization"], "acme");
    assert_eq!(integration["version"], 1);
    assert_eq!(integration["title"], "Hello");
    assert!(integration.get("script").is_none());
    assert!(integration["token"].as_str().is_some_and(|t| t.starts_with("wft_")), "the first publish shows the token");

    let (status, fetched) = app.call("GET", "/v1/integrations/hello", None).await;
    assert_eq!(status, 200);
    let mut without_token = integration.clone();
    without_token.as_object_mut().unwrap().remove("token");
    // The publish answer alone says how the module was prepared.
    let module = without_token.as_object_mut().unwrap().remove("module");
    assert_eq!(module, Some(serde_json::json!({"abi": 2, "snapshot": true, "language": "wasm"})));
    assert_eq!(fetched, without_token);
}

#[tokio::test]
async fn republishing_creates_a_new_version() {
    let app = spawn_app().await;
    app.create_org("acme").await;
    app.publish("hello", "acme", hello_wasm()).await;
    let second = app.publish("hello", "acme", hello_wasm()).await;
    assert_eq!(second["version"], 2);
    assert!(second.get("token").is_none(), "the integration token is shown once");
}

#[tokio::test]
async fn another_organization_cannot_take_over_a_name() {
    let app = spawn_app().await;
    app.create_org("acme").await;
    app.create_org("evil").await;
    app.publish("hello", "acme", hello_wasm()).await;
    let (status, body) = app.call("POST", "/v1/integrations/hello", Some(publish_body("evil", hello_wasm()))).await;
    assert_eq!(status, 409, "{body}");
    assert!(error_message(&body).contains("another organization"));
}

/// Each bad publish gets a 4xx naming the problem, and stores nothing.
#[tokio::test]
async fn bad_publishes_are_refused_with_the_problem_named() {
    let app = spawn_app().await;
    app.create_org("acme").await;
    let with = |field: &str, value: Value| {
        let mut body = publish_body("acme", hello_wasm());
        body[field] = value;
        body
    };
    let without = |field: &str| {
        let mut body = publish_body("acme", hello_wasm());
        body.as_object_mut().unwrap().remove(field);
        body
    };
    use base64::Engine as _;
    let b64 = |bytes: &[u8]| json!(base64::engine::general_purpose::STANDARD.encode(bytes));
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        ("invalid base64", with("script", json!("not base64!!")), 400, "script is not base64"),
        ("not wasm", with("script", b64(b"hello world")), 400, "not a WebAssembly module"),
        ("missing export", with("script", b64(&fixture("missing_handle"))), 400, "does not export `weft_handle`"),
        ("unknown import", with("script", b64(&fixture("unknown_import"))), 400, "imports `env::open_socket`"),
        ("missing field", without("title"), 400, "missing field `title`"),
        ("wrong type", with("title", json!(42)), 400, "invalid type"),
        ("title too short", with("title", json!("H")), 400, "title must be 2–30 characters"),
        ("description too long", with("description", json!("x".repeat(101))), 400, "description must be at most 100"),
        ("unknown field", with("titel", json!("Hello")), 400, "unknown field `titel`"),
        ("bad visibility", with("visibility", json!("secret")), 400, "unknown variant `secret`"),
        ("too many images", with("previewImages", json!(["", "", "", ""])), 400, "previewImages"),
        ("unknown org", with("organization", json!("nope")), 400, "organization `nope` does not exist"),
    ];
    for (case, body, status, message) in cases {
        let (got, answer) = app.call("POST", "/v1/integrations/hello", Some(body)).await;
        assert_eq!(got, status, "{case}: {answer}");
        assert!(error_message(&answer).contains(message), "{case}: `{}` lacks `{message}`", error_message(&answer));
        let (got, _) = app.call("GET", "/v1/integrations/hello", None).await;
        assert_eq!(got, 404, "{case}: a refused publish stored something");
    }

    let (status, body) = app
        .client
        .post(format!("{}/v1/integrations/hello", app.url))
        .bearer_auth(ADMIN)
        .header("content-type", "application/json")
        .body("{\"title\": ")
        .send()
        .await
        .map(|r| (r.status().as_u16(), r))
        .unwrap();
    assert_eq!(status, 400);
    let body: Value = body.json().await.unwrap();
    assert!(error_message(&body).contains("not valid JSON"), "{body}");

    let (status, body) = app.call("POST", "/v1/integrations/bad name!", Some(publish_body("acme", hello_wasm()))).await;
    assert_eq!(status, 400, "{body}");
    assert!(error_message(&body).contains("integrationName"));
}

#[tokio::test]
async fn every_endpoint_wants_a_valid_token() {
    let app = spawn_app().await;
    app.create_org("acme").await;
    app.publish("hello", "acme", hello_wasm()).await;
    let install = json!({"organization": "acme"});
    let endpoints: Vec<(&str, &str, Option<Value>)> = vec![
        ("POST", "/v1/orgs", Some(json!({"id": "x", "title": "X"}))),
        ("GET", "/v1/orgs/acme", None),
        ("POST", "/v1/integrations/hello", Some(publish_body("acme", hello_wasm()))),
        ("GET", "/v1/integrations/hello", None),
        ("POST", "/v1/integrations/hello/installations", Some(install)),
        ("GET", "/v1/integrations/hello/installations", None),
        ("GET", "/v1/integrations/hello/installations/inst_x", None),
        ("GET", "/v1/integrations/hello/events", None),
        ("GET", "/v1/integrations/hello/events/evt_x", None),
    ];
    for (method, path, body) in endpoints {
        let (status, answer) = app.call_as(None, method, path, body.clone()).await;
        assert_eq!(status, 401, "{method} {path} without a token: {answer}");
        assert!(error_message(&answer).contains("Authorization"));
        let (status, answer) = app.call_as(Some("wrong-token"), method, path, body).await;
        assert_eq!(status, 401, "{method} {path} with a wrong token: {answer}");
        assert_eq!(error_message(&answer), "invalid or expired token");
    }
}

#[tokio::test]
async fn installing_checks_the_integration_the_organization_and_visibility() {
    let app = spawn_app().await;
    app.create_org("acme").await;
    app.create_org("other").await;
    app.publish("hello", "acme", hello_wasm()).await;

    let (status, body) =
        app.call("POST", "/v1/integrations/nope/installations", Some(json!({"organization": "acme"}))).await;
    assert_eq!(status, 404, "{body}");
    let (status, body) =
        app.call("POST", "/v1/integrations/hello/installations", Some(json!({"organization": "ghost"}))).await;
    assert_eq!((status, error_message(&body)), (400, "organization `ghost` does not exist"));
    let (status, body) = app.call("POST", "/v1/integrations/hello/installations", Some(json!({}))).await;
    assert_eq!(status, 400, "{body}");
    assert!(error_message(&body).contains("missing field `organization`"));
    let (status, body) =
        app.call("POST", "/v1/integrations/hello/installations", Some(json!({"organization": "other"}))).await;
    assert_eq!(status, 403, "{body}");
    assert!(error_message(&body).contains("private"));

    let installation = app.install("hello", "acme").await;
    let id = installation["id"].as_str().unwrap();
    assert_eq!(installation["target"]["organization"], "acme");
    assert_eq!(
        installation["urls"]["publicEndpoint"],
        format!("{}/v1/integrations/hello/installations/{id}/fetch", app.url)
    );
    let (status, fetched) = app.call("GET", &format!("/v1/integrations/hello/installations/{id}"), None).await;
    assert_eq!((status, &fetched), (200, &installation));
    let (status, list) = app.call("GET", "/v1/integrations/hello/installations?limit=1", None).await;
    assert_eq!(status, 200);
    assert_eq!((list["count"].as_i64(), list["items"][0]["id"].as_str()), (Some(1), Some(id)));
    let (status, _) = app.call("GET", "/v1/integrations/hello/installations?limit=1001", None).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn organizations_are_created_once() {
    let app = spawn_app().await;
    app.create_org("acme").await;
    let (status, body) = app.call("POST", "/v1/orgs", Some(json!({"id": "acme", "title": "Again"}))).await;
    assert_eq!(status, 409, "{body}");
    let (status, body) = app.call("POST", "/v1/orgs", Some(json!({"id": "Not Valid", "title": "X"}))).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = app.call("GET", "/v1/orgs/acme", None).await;
    assert_eq!((status, body["title"].as_str()), (200, Some("acme")));
}
