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
/// them all in full.
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
    let expected = ["fetch", "installation_setup", "site_installation_setup", "space_installation_setup", "task"];
    let recorded = events(&app, name, &expected).await;
    let mut kinds = std::collections::BTreeSet::new();
    for event in &recorded {
        let invocation = echoed_invocation(event);
        let kind = invocation["event"]["type"].as_str().unwrap().to_owned();
        if kind != "fetch" {
            checks.value("Event", &format!("the `{kind}` event the module received"), &invocation["event"]);
        }
        kinds.insert(kind);
    }
    assert!(expected.iter().all(|kind| kinds.contains(*kind)), "events delivered: {kinds:?}");

    checks.validate();
}
