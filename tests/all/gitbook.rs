//! GitBook fidelity: weft's answers, the events it delivers to modules and the environments
//! it gives them validate against GitBook's own OpenAPI document (`@gitbook/api`'s
//! `spec/openapi.json`, installed from npm by `scripts/install-clients`), for real data.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::api_support::{create_place, echo_wasm, echoed_invocation, publish_wasm_with, user_token};
use crate::support::{TestApp, repo_root, spawn_app};

/// The document every answer is checked against.
pub fn gitbook_openapi() -> PathBuf {
    let path = repo_root().join("tests/clients/node_modules/@gitbook/api/spec/openapi.json");
    assert!(path.exists(), "{} is missing: run scripts/install-clients (scripts/test does)", path.display());
    path
}

/// What the test saw, to be validated in one run of the validator.
#[derive(Default)]
struct Checks(Vec<Value>);

impl Checks {
    /// Calls `method concrete` with `token` and keeps the answer as one of operation
    /// `method template` (as GitBook's document spells the path, without `/v1`).
    async fn call(
        &mut self,
        app: &TestApp,
        token: &str,
        method: &str,
        template: &str,
        concrete: &str,
        body: Option<Value>,
    ) -> Value {
        let (status, answer) = app.call_as(Some(token), method, &format!("/v1{concrete}"), body).await;
        assert!((200..300).contains(&status), "{method} {concrete}: {status} {answer}");
        if status != 204 {
            self.0.push(json!({"method": method, "path": template, "status": status, "body": answer}));
        }
        answer
    }

    /// Keeps `value` to be validated as the document's schema `schema`.
    fn value(&mut self, schema: &str, label: &str, value: &Value) {
        self.0.push(json!({"schema": schema, "label": label, "body": value}));
    }

    /// Runs the validator over everything kept; fails the test with its report.
    fn validate(self) {
        let dir = tempfile::tempdir().unwrap();
        let answers = dir.path().join("answers.json");
        std::fs::write(&answers, serde_json::to_vec_pretty(&self.0).unwrap()).unwrap();
        let output = std::process::Command::new("python3")
            .arg(repo_root().join("tests/clients/gitbook_schemas.py"))
            .arg(gitbook_openapi())
            .arg(&answers)
            .output()
            .expect("run python3");
        let report = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "answers that do not match GitBook's document:\n{report}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        eprintln!("{report}");
    }
}

/// Polls the events log of `name` until it holds an event of each of `types`; returns
/// them all in full (`{event, trace}`).
async fn events(app: &TestApp, name: &str, types: &[&str]) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, list) = app.call("GET", &format!("/v1/integrations/{name}/events?limit=100"), None).await;
        let items = list["items"].as_array().cloned().unwrap_or_default();
        if types.iter().all(|kind| items.iter().any(|item| item["type"] == *kind)) {
            let mut full = Vec::new();
            for item in items {
                let (_, event) = app
                    .call("GET", &format!("/v1/integrations/{name}/events/{}", item["id"].as_str().unwrap()), None)
                    .await;
                full.push(event);
            }
            return full;
        }
        assert!(Instant::now() < deadline, "not every one of {types:?} was recorded: {list}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn every_answer_event_and_environment_matches_gitbooks_openapi_document() {
    let app = spawn_app().await;
    app.create_org("acme").await;
    let ada = user_token(&app, "ada", "acme", "admin").await;
    create_place(&app, "acme", "spaces", "spc-1").await;
    create_place(&app, "acme", "sites", "site-1").await;
    let mut checks = Checks::default();

    // An integration with most of what a manifest can say.
    let manifest = json!({
        "visibility": "public",
        "target": "all",
        "summary": "Checks everything.",
        "scopes": ["space:content:read", "site:metadata:read"],
        "categories": ["content"],
        "externalLinks": [{"url": "https://example.com/docs", "label": "Docs"}],
        "contentSecurityPolicy": "connect-src example.com",
        "configurations": {"account": {"properties": {"greeting": {"type": "string"}}}},
    });
    let mut publish = crate::support::publish_body("acme", &echo_wasm());
    for (key, value) in manifest.as_object().unwrap() {
        publish[key] = value.clone();
    }
    checks.call(&app, &ada, "POST", "/integrations/{integrationName}", "/integrations/fidelity", Some(publish)).await;
    publish_wasm_with(&app, "other", "acme", &echo_wasm(), json!({"visibility": "private"})).await;

    let name = "fidelity";
    let integration = format!("/integrations/{name}");
    checks.call(&app, &ada, "GET", "/user", "/user", None).await;
    checks.call(&app, &ada, "GET", "/integrations", "/integrations", None).await;
    checks.call(&app, &ada, "GET", "/integrations/{integrationName}", &integration, None).await;

    let installations = format!("{integration}/installations");
    let installation = checks
        .call(
            &app,
            &ada,
            "POST",
            "/integrations/{integrationName}/installations",
            &installations,
            Some(json!({"organization": "acme"})),
        )
        .await;
    let id = installation["id"].as_str().unwrap().to_owned();
    let one = format!("{installations}/{id}");
    let template = "/integrations/{integrationName}/installations/{installationId}";
    checks.call(&app, &ada, "GET", "/integrations/{integrationName}/installations", &installations, None).await;
    checks.call(&app, &ada, "GET", template, &one, None).await;
    checks
        .call(
            &app,
            &ada,
            "PATCH",
            template,
            &one,
            Some(json!({"configuration": {"greeting": "hi"}, "externalIds": ["ext-1"]})),
        )
        .await;
    let integration_token =
        app.call("POST", "/v1/integrations/fidelity/tokens", None).await.1["token"].as_str().unwrap().to_owned();
    checks.call(&app, &integration_token, "POST", &format!("{template}/tokens"), &format!("{one}/tokens"), None).await;

    for (kind, field, place) in [("spaces", "spaceId", "spc-1"), ("sites", "siteId", "site-1")] {
        let id_name = if kind == "spaces" { "spaceId" } else { "siteId" };
        let list = format!("{template}/{kind}");
        let item = format!("{list}/{{{id_name}}}");
        checks.call(&app, &ada, "POST", &list, &format!("{one}/{kind}"), Some(json!({field: place}))).await;
        checks.call(&app, &ada, "GET", &list, &format!("{one}/{kind}"), None).await;
        checks.call(&app, &ada, "GET", &item, &format!("{one}/{kind}/{place}"), None).await;
        checks
            .call(
                &app,
                &ada,
                "PATCH",
                &item,
                &format!("{one}/{kind}/{place}"),
                Some(json!({"configuration": {"greeting": place}, "externalIds": [format!("ext-{place}")]})),
            )
            .await;
        checks
            .call(
                &app,
                &ada,
                "GET",
                &format!("/integrations/{{integrationName}}/{kind}"),
                &format!("{integration}/{kind}"),
                None,
            )
            .await;
    }

    checks.call(&app, &ada, "GET", "/orgs/{organizationId}/installations", "/orgs/acme/installations", None).await;
    // What acme can install: the public integrations and its own private one.
    let available =
        checks.call(&app, &ada, "GET", "/orgs/{organizationId}/integrations", "/orgs/acme/integrations", None).await;
    let names: Vec<&str> = available["items"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["fidelity", "other"], "{available}");
    checks
        .call(
            &app,
            &ada,
            "GET",
            "/orgs/{organizationId}/integrations/{integrationName}/installation_status",
            &format!("/orgs/acme{integration}/installation_status"),
            None,
        )
        .await;
    checks
        .call(
            &app,
            &ada,
            "GET",
            "/orgs/{organizationId}/integrations/installations-status",
            "/orgs/acme/integrations/installations-status",
            None,
        )
        .await;
    checks.call(&app, &ada, "GET", "/spaces/{spaceId}/integrations", "/spaces/spc-1/integrations", None).await;
    checks
        .call(
            &app,
            &ada,
            "GET",
            "/orgs/{organizationId}/sites/{siteId}/integrations",
            "/orgs/acme/sites/site-1/integrations",
            None,
        )
        .await;

    // Events of every kind: the setups above, a task, a fetch; each as the module got it.
    let (status, _) = app.call("POST", "/v1/integrations/fidelity/tasks", Some(json!({"task": {"n": 1}}))).await;
    assert_eq!(status, 204);
    let endpoint = installation["urls"]["publicEndpoint"].as_str().unwrap();
    app.client.post(format!("{endpoint}/hook?x=1")).body("ping").send().await.unwrap();
    // And one to the integration's own endpoint (no installation).
    let (_, published) = app.call("GET", "/v1/integrations/fidelity", None).await;
    let own = published["urls"]["publicEndpoint"].as_str().unwrap();
    assert_eq!(app.client.get(format!("{own}/callback")).send().await.unwrap().status(), 406, "echo has no answer");
    let expected = ["fetch", "installation_setup", "site_installation_setup", "space_installation_setup", "task"];
    let recorded = events(&app, name, &expected).await;
    checks
        .call(&app, &ada, "GET", "/integrations/{integrationName}/events", &format!("{integration}/events"), None)
        .await;
    let mut kinds = std::collections::BTreeSet::new();
    for detail in &recorded {
        let id = detail["event"]["id"].as_str().unwrap();
        let template = "/integrations/{integrationName}/events/{eventId}";
        checks.call(&app, &ada, "GET", template, &format!("{integration}/events/{id}"), None).await;
        let invocation = echoed_invocation(detail);
        let kind = invocation["event"]["type"].as_str().unwrap().to_owned();
        // The log keeps the event exactly as the module received it.
        assert_eq!(detail["event"]["payload"], invocation["event"], "the `{kind}` event's payload");
        checks.value("Event", &format!("the `{kind}` event the module received"), &invocation["event"]);
        let environment = &invocation["environment"];
        checks.value("IntegrationEnvironment", &format!("the environment of the `{kind}` event"), environment);
        match kind.as_str() {
            "space_installation_setup" => assert_eq!(environment["spaceInstallation"]["space"], "spc-1"),
            "site_installation_setup" => assert_eq!(environment["siteInstallation"]["site"], "site-1"),
            "fetch" if invocation["event"]["installationId"].is_null() => {
                assert_eq!(invocation["event"]["request"]["method"], "get");
                assert!(environment["installation"].is_null(), "{environment}");
            }
            "fetch" => {
                assert_eq!(invocation["event"]["request"]["method"], "post");
                assert_eq!(invocation["event"]["installationId"], detail["event"]["installationId"]);
            }
            _ => {}
        }
        kinds.insert(kind);
    }
    assert!(expected.iter().all(|kind| kinds.contains(*kind)), "events delivered: {kinds:?}");

    checks.validate();
}

#[tokio::test]
async fn a_fetch_events_stored_payload_keeps_only_the_configured_bytes_of_the_body() {
    let app = crate::support::spawn_app_with(|config| config.retention.events_payload_body_bytes = 4).await;
    app.create_org("acme").await;
    publish_wasm_with(&app, "capped", "acme", &echo_wasm(), json!({})).await;
    let installation = app.install("capped", "acme").await;
    let endpoint = installation["urls"]["publicEndpoint"].as_str().unwrap();
    app.client.put(format!("{endpoint}/big")).body("0123456789").send().await.unwrap();
    let recorded = events(&app, "capped", &["fetch", "installation_setup"]).await;
    let fetch = recorded.iter().find(|detail| detail["event"]["type"] == "fetch").unwrap();
    // The module got the whole body; the log keeps 3 bytes (whole base64 quanta within 4).
    use base64::Engine as _;
    let decode = |value: &Value| base64::engine::general_purpose::STANDARD.decode(value.as_str().unwrap()).unwrap();
    assert_eq!(decode(&echoed_invocation(fetch)["event"]["request"]["body"]), b"0123456789");
    let request = &fetch["event"]["payload"]["request"];
    assert_eq!((decode(&request["body"]), &request["bodyTruncatedFrom"]), (b"012".to_vec(), &json!(10)), "{request}");
    assert_eq!(request["method"], "put");

    // Filters run on the server: by type, by installation, by status.
    let id = installation["id"].as_str().unwrap();
    for (query, count) in [
        ("type=fetch".to_owned(), 1),
        (format!("installation={id}&type=installation_setup"), 1),
        ("status=failed".to_owned(), 0),
        ("installation=inst_other".to_owned(), 0),
    ] {
        let (status, list) = app.call("GET", &format!("/v1/integrations/capped/events?{query}"), None).await;
        assert_eq!((status, list["count"].as_i64()), (200, Some(count)), "{query}: {list}");
    }
}

#[tokio::test]
async fn fetch_responses_carry_the_content_security_policy_and_lists_take_gitbooks_search_parameters() {
    let app = spawn_app().await;
    app.create_org("acme").await;
    app.create_org("globex").await;
    let policy = json!({"contentSecurityPolicy": {"connect-src": "example.com", "img-src": "'self'"}});
    app.publish_with("csp", "acme", crate::support::hello_wasm(), policy).await;
    let installation = app.install("csp", "acme").await;
    let endpoint = installation["urls"]["publicEndpoint"].as_str().unwrap();
    let response = app.client.get(format!("{endpoint}/page")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let header = response.headers().get("content-security-policy").map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(header.as_deref(), Some("connect-src example.com; img-src 'self'"));
    // The integration's own public endpoint runs the module with no installation.
    let (_, integration) = app.call("GET", "/v1/integrations/csp", None).await;
    let own = integration["urls"]["publicEndpoint"].as_str().unwrap();
    let response = app.client.get(format!("{own}/oauth/callback")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!((answer["method"].as_str(), answer["path"].as_str()), (Some("GET"), Some("/oauth/callback")));
    assert_eq!(
        app.client.get(format!("{}/v1/integrations/nobody/fetch/x", app.url)).send().await.unwrap().status(),
        404
    );

    let source = json!([{"id": "pages", "title": "Pages", "configuration": {"componentId": "c"}}]);
    for (name, org, extra) in [
        ("sourced", "acme", json!({"visibility": "public", "target": "space", "contentSources": source})),
        ("scoped", "globex", json!({"visibility": "public", "target": "site", "scopes": ["site:metadata:read"]})),
        ("own", "globex", json!({"visibility": "private", "target": "all"})),
    ] {
        publish_wasm_with(&app, name, org, &echo_wasm(), extra).await;
    }
    for (path, expected) in [
        ("/v1/integrations?owner=globex", vec!["scoped"]),
        ("/v1/integrations?scope=site:metadata:read", vec!["scoped"]),
        ("/v1/integrations?target=space", vec!["sourced"]),
        ("/v1/integrations?contentSources=true", vec!["sourced"]),
        ("/v1/integrations?contentSources=false", vec!["scoped"]),
        ("/v1/orgs/globex/integrations", vec!["own", "scoped", "sourced"]),
        ("/v1/orgs/globex/integrations?owner=globex&target=organization", vec!["own"]),
    ] {
        let (status, list) = app.call("GET", path, None).await;
        assert_eq!(status, 200, "{path}: {list}");
        let names: Vec<&str> = list["items"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
        assert_eq!(names, expected, "{path}");
    }
    let (status, refused) = app.call("GET", "/v1/integrations?target=everywhere", None).await;
    assert_eq!(status, 400, "{refused}");
    // Another organization's list is for its members only.
    let ada = user_token(&app, "ada", "acme", "admin").await;
    assert_eq!(app.call_as(Some(&ada), "GET", "/v1/orgs/globex/integrations", None).await.0, 403);
    let (status, bad) = app
        .call(
            "POST",
            "/v1/integrations/badsource",
            Some({
                let mut body = crate::support::publish_body("acme", &echo_wasm());
                body["contentSources"] = json!([{"id": "x", "title": "X"}]);
                body
            }),
        )
        .await;
    assert_eq!(status, 400, "{bad}");
    assert!(bad["error"]["message"].as_str().unwrap().contains("contentSources[0].title"), "{bad}");
    assert_eq!(app.call("GET", "/v1/integrations/badsource", None).await.0, 404);
}
