//! GitBook's own CLI (`@gitbook/cli` 0.25.1 from npm, installed by `scripts/install-clients`)
//! against a weft server: `gitbook auth`, `whoami`, `unpublish`, `tail`, and `publish` (whose
//! body weft accepts field by field, its JavaScript bundle included; what such a bundle does
//! once published is tests/all/javascript.rs's).

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};

use crate::api_support::{echo_wasm, publish_wasm_with, publish_with, user_token};
use crate::support::{TestApp, repo_root, spawn_app};

/// What a run of the CLI printed.
pub struct Run {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `gitbook args…` in `dir` with its own home (so no real configuration is read or
/// written), `GITBOOK_ENDPOINT` set to the server and `token` as `GITBOOK_TOKEN` when given,
/// answering its prompts with `input`.
pub async fn gitbook(app: &TestApp, home: &Path, dir: &Path, token: Option<&str>, args: &[&str], input: &str) -> Run {
    gitbook_at(&app.url, home, dir, token, args, input, &[]).await
}

/// [`gitbook`] with more environment variables (a manifest's `${{ env.NAME }}` secrets).
pub async fn gitbook_with_env(
    app: &TestApp,
    home: &Path,
    dir: &Path,
    token: Option<&str>,
    args: &[&str],
    env: &[(&str, &str)],
) -> Run {
    gitbook_at(&app.url, home, dir, token, args, "", env).await
}

/// The CLI as a command against `endpoint`, with its own home and `token`.
fn command(endpoint: &str, home: &Path, dir: &Path, token: Option<&str>, args: &[&str]) -> tokio::process::Command {
    let cli = repo_root().join("tests/clients/node_modules/@gitbook/cli/cli.js");
    assert!(cli.exists(), "{} is missing: run scripts/install-clients (scripts/test does)", cli.display());
    let mut command = tokio::process::Command::new("node");
    command
        .arg(cli)
        .args(args)
        .current_dir(dir)
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("TMPDIR", home)
        .env("GITBOOK_ENDPOINT", endpoint)
        .env_remove("GITBOOK_TOKEN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(token) = token {
        command.env("GITBOOK_TOKEN", token);
    }
    command
}

/// [`gitbook`] against any `endpoint`, with `env` added to its environment.
async fn gitbook_at(
    endpoint: &str,
    home: &Path,
    dir: &Path,
    token: Option<&str>,
    args: &[&str],
    input: &str,
    env: &[(&str, &str)],
) -> Run {
    let mut child = command(endpoint, home, dir, token, args)
        .envs(env.iter().copied())
        .spawn()
        .expect("run node (scripts/install-clients installs it)");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).await.unwrap();
    drop(stdin);
    let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("the CLI finishes within a minute")
        .unwrap();
    Run {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[tokio::test]
async fn gitbooks_cli_authenticates_says_who_and_unpublishes() {
    let app = spawn_app().await;
    app.create_org("acme").await;
    let ada = user_token(&app, "ada", "acme", "admin").await;
    publish_with(&app, "doomed", "acme", json!({})).await;
    let home = tempfile::tempdir().unwrap();
    let dir = home.path();

    let auth = gitbook(&app, dir, dir, None, &["auth", "--token", &ada, "--endpoint", &app.url], "").await;
    assert!(auth.success, "{}{}", auth.stdout, auth.stderr);
    assert!(auth.stdout.contains("You are now authenticated as ada."), "{}", auth.stdout);

    // The token `auth` saved is used from then on; so is GITBOOK_TOKEN.
    let whoami = gitbook(&app, dir, dir, None, &["whoami"], "").await;
    assert!(whoami.success, "{}{}", whoami.stdout, whoami.stderr);
    assert!(whoami.stdout.contains("Authenticated as ada") && whoami.stdout.contains("ID: ada"), "{}", whoami.stdout);
    let operator = gitbook(&app, dir, dir, Some(crate::support::ADMIN), &["whoami"], "").await;
    assert!(operator.stdout.contains("Authenticated as weft operator"), "{}{}", operator.stdout, operator.stderr);

    let unpublish = gitbook(&app, dir, dir, None, &["unpublish", "doomed"], "y\n").await;
    assert!(unpublish.success, "{}{}", unpublish.stdout, unpublish.stderr);
    assert!(unpublish.stdout.contains(r#"Integration "doomed" has been deleted"#), "{}", unpublish.stdout);
    assert_eq!(app.call("GET", "/v1/integrations/doomed", None).await.0, 404);

    // A token weft does not know is refused, and the CLI says so.
    let refused = gitbook(&app, dir, dir, Some("wft_not_a_token"), &["whoami"], "").await;
    assert!(!refused.success, "{}", refused.stdout);
}

/// A directory holding a `gitbook-manifest.yaml` for integration `name` of `acme`, with a
/// JavaScript script as `gitbook new` makes them, and every field the CLI can publish.
fn integration_dir(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("src")).unwrap();
    std::fs::write(
        dir.path().join("src/index.js"),
        "export default { async fetch(request) { return new Response('hi from ' + request.url); } };\n",
    )
    .unwrap();
    // Not a picture anyone would look at, but what the CLI reads: a .png file's bytes.
    std::fs::write(dir.path().join("icon.png"), b"\x89PNG\r\n\x1a\nweft").unwrap();
    let manifest = format!(
        r#"name: {name}
title: JS integration
description: Published by GitBook's own CLI.
summary: Says hi.
script: ./src/index.js
icon: ./icon.png
previewImages: [./icon.png]
organization: acme
visibility: private
target: all
scopes: [space:content:read]
categories: [content]
blocks:
  - id: greeting
    title: Greeting
contentSources:
  - id: pages
    title: Pages
    configuration:
      componentId: pages-config
configurations:
  account:
    properties:
      greeting:
        type: string
        title: Greeting
externalLinks:
  - label: Docs
    url: https://example.com/docs
contentSecurityPolicy: connect-src example.com
secrets:
  API_KEY: s3cret
"#
    );
    std::fs::write(dir.path().join("gitbook-manifest.yaml"), manifest).unwrap();
    dir
}

/// Serves one answer to whatever is sent to it, keeping the last JSON body it received.
async fn capture_server() -> (String, Arc<Mutex<Option<Value>>>) {
    let seen = Arc::new(Mutex::new(None));
    let kept = seen.clone();
    let app = axum::Router::new().fallback(move |body: axum::body::Bytes| {
        let kept = kept.clone();
        async move {
            *kept.lock().unwrap() = serde_json::from_slice::<Value>(&body).ok();
            (axum::http::StatusCode::SERVICE_UNAVAILABLE, "captured")
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

#[tokio::test]
async fn gitbooks_cli_publish_body_is_accepted_field_by_field_with_its_javascript() {
    let app = spawn_app().await;
    app.create_org("acme").await;
    let ada = user_token(&app, "ada", "acme", "admin").await;
    let home = tempfile::tempdir().unwrap();
    let dir = integration_dir("jsint");

    let publish = gitbook(&app, home.path(), dir.path(), Some(&ada), &["publish"], "").await;
    assert!(publish.success, "{}{}", publish.stdout, publish.stderr);
    assert!(publish.stdout.contains(r#"Integration "jsint" published"#), "{}", publish.stdout);
    let (status, versions) = app.call("GET", "/v1/integrations/jsint/versions", None).await;
    assert_eq!(status, 200, "{versions}");
    assert_eq!(versions["items"][0]["language"], "javascript", "{versions}");

    // The very body the CLI sends, captured: it is a PublishIntegration by GitBook's own
    // document, and weft's checks pass every field of it, the bundle as JavaScript.
    let (url, seen) = capture_server().await;
    gitbook_at(&url, home.path(), dir.path(), Some(&ada), &["publish"], "", &[]).await;
    let body = seen.lock().unwrap().clone().expect("the CLI sent a JSON body");
    assert_eq!((body["runtime"].as_str(), body["contentSources"][0]["id"].as_str()), (Some("v2"), Some("pages")));
    let script = weft::manifest::PublishBody::from_json(body.clone())
        .expect("every field the CLI sends is one weft knows")
        .check(&weft_runtime::Limits::default())
        .unwrap();
    assert_eq!(script.language(), "javascript");
    let (status, answer) = app.call_as(Some(&ada), "POST", "/v1/integrations/jsint", Some(body.clone())).await;
    assert_eq!((status, answer["version"].as_i64()), (200, Some(2)), "{answer}");
    assert_eq!(answer["module"]["language"], "javascript", "{answer}");
    let checks = json!([{"schema": "PublishIntegration", "label": "gitbook publish's body", "body": body}]);
    let file = home.path().join("checks.json");
    std::fs::write(&file, checks.to_string()).unwrap();
    let output = std::process::Command::new("python3")
        .arg(repo_root().join("tests/clients/gitbook_schemas.py"))
        .arg(crate::gitbook::gitbook_openapi())
        .arg(&file)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stdout));
}

#[tokio::test]
async fn gitbooks_cli_tails_the_events_of_an_integration_published_through_weft() {
    let app = spawn_app().await;
    app.create_org("acme").await;
    let ada = user_token(&app, "ada", "acme", "admin").await;
    publish_wasm_with(&app, "tailed", "acme", &echo_wasm(), json!({})).await;
    let installation = app.install("tailed", "acme").await;
    let endpoint = installation["urls"]["publicEndpoint"].as_str().unwrap();
    let sent = app.client.post(format!("{endpoint}/seen-by-tail")).body("hello").send().await.unwrap();
    let event_id = sent.headers()["x-weft-event-id"].to_str().unwrap().to_owned();
    // Both events are in the log, so they are the two newest `gitbook tail` reads.
    app.wait_for_matching_events("tailed", 2, |_| true).await;

    let home = tempfile::tempdir().unwrap();
    let dir = integration_dir("tailed");
    let mut tail = command(&app.url, home.path(), dir.path(), Some(&ada), &["tail"]).spawn().unwrap();
    let mut lines = tokio::io::BufReader::new(tail.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    // `[success][date] {payload}` then the event's logs: the payload is the fetch event
    // the module received.
    while !seen.iter().any(|line: &String| line.contains(&event_id) && line.contains("/seen-by-tail")) {
        let next = tokio::time::timeout_at(deadline.into(), lines.next_line()).await;
        match next {
            Ok(Ok(Some(line))) => seen.push(line),
            other => panic!("gitbook tail did not show event {event_id} ({other:?}): {seen:#?}"),
        }
    }
    let line = seen.iter().find(|line| line.contains(&event_id)).unwrap();
    assert!(line.starts_with("[success]"), "{line}");
    tail.kill().await.unwrap();
}
