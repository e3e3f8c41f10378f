//! Dev mode end to end: a real server, a real `weft dev` (or a test HTTP tunnel) on
//! loopback, and `weft tail`.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::HeaderMap;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use crate::api_support::{publish_wasm_with, user_token};
use crate::support::{ADMIN, TestApp, spawn_app_with};

const WEFT: &str = env!("CARGO_BIN_EXE_weft");

/// A guest whose every event answers 200 with the body `label`.
fn answering_wasm(label: &str) -> Vec<u8> {
    let outcome = json!({"response": {"status": 200, "headers": {}, "body": BASE64.encode(label)}}).to_string();
    let escaped = outcome.replace('\\', "\\\\").replace('"', "\\\"");
    let result = (1024i64 << 32) | outcome.len() as i64;
    wat::parse_str(format!(
        r#"(module
  (memory (export "memory") 2)
  (data (i32.const 1024) "{escaped}")
  (func (export "weft_alloc") (param i32) (result i32) (i32.const 8192))
  (func (export "weft_handle") (param i32 i32) (result i64) (i64.const {result})))"#
    ))
    .expect("valid WAT")
}

/// A server with organizations `acme` (the publisher) and `other`, `devint` published by
/// acme answering "published", installed on both; returns the two public endpoints.
async fn setup() -> (TestApp, String, String) {
    // The test tunnels listen on loopback, which only an operator's allowance lets dev mode reach.
    let app = spawn_app_with(|config| config.outbound.allow_private_addresses = true).await;
    app.create_org("acme").await;
    app.create_org("other").await;
    publish_wasm_with(&app, "devint", "acme", &answering_wasm("published"), json!({"visibility": "public"})).await;
    let own = app.install("devint", "acme").await["urls"]["publicEndpoint"].as_str().unwrap().to_owned();
    let foreign = app.install("devint", "other").await["urls"]["publicEndpoint"].as_str().unwrap().to_owned();
    (app, own, foreign)
}

/// GETs a public endpoint: its status, body text and event id.
async fn fetch(url: &str) -> (u16, String, String) {
    let response = tokio::time::timeout(Duration::from_secs(30), reqwest::get(url))
        .await
        .expect("the fetch endpoint answers")
        .unwrap();
    let status = response.status().as_u16();
    let event_id =
        response.headers().get("x-weft-event-id").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    (status, response.text().await.unwrap(), event_id)
}

/// A running `weft …` whose stdout lines arrive on a channel.
struct Cli {
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    seen: Vec<String>,
}

impl Cli {
    fn spawn(args: &[&str]) -> Cli {
        let mut child = Command::new(WEFT)
            .args(args)
            .env_remove("WEFT_TOKEN")
            .env_remove("WEFT_API_URL")
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn weft");
        let (sender, lines) = mpsc::unbounded_channel();
        let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        tokio::spawn(async move {
            while let Ok(Some(line)) = stdout.next_line().await {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Cli { child, lines, seen: Vec::new() }
    }

    /// Waits until a line containing `needle` was printed.
    async fn wait_for(&mut self, needle: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        if let Some(line) = self.seen.iter().find(|line| line.contains(needle)) {
            return line.clone();
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.lines.recv()).await {
                Ok(Some(line)) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Ok(None) => panic!("weft exited before printing `{needle}`; it printed {:?}", self.seen),
                Err(_) => panic!("weft did not print `{needle}` in time; it printed {:?}", self.seen),
            }
        }
    }

    async fn signal(&mut self, signal: &str) {
        let pid = self.child.id().unwrap().to_string();
        assert!(std::process::Command::new("kill").args([signal, &pid]).status().unwrap().success());
        tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await.expect("weft exits").unwrap();
    }
}

/// Starts `weft dev` with the reverse tunnel and waits until it is connected.
async fn weft_dev(app: &TestApp, wasm: &std::path::Path, extra: &[&str]) -> Cli {
    let wasm = wasm.to_str().unwrap();
    let mut args = vec!["dev", "--name", "devint", "--wasm", wasm, "--api-url", &app.url, "--token", ADMIN];
    args.extend_from_slice(extra);
    let mut cli = Cli::spawn(&args);
    cli.wait_for("tunnel connected", Duration::from_secs(30)).await;
    cli
}

/// Polls the events log until event `id` is recorded.
async fn recorded_event(app: &TestApp, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = app.call("GET", &format!("/v1/integrations/devint/events/{id}"), None).await;
        if status == 200 {
            return body;
        }
        assert!(Instant::now() < deadline, "event {id} was not recorded: {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn weft_dev_receives_its_own_organizations_events_and_with_all_every_organizations() {
    let (app, own, foreign) = setup().await;
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("dev.wasm");
    std::fs::write(&wasm, answering_wasm("from weft dev")).unwrap();

    let mut dev = weft_dev(&app, &wasm, &[]).await;
    let (status, body, event_id) = fetch(&own).await;
    assert_eq!((status, body.as_str()), (200, "from weft dev"));
    dev.wait_for(&event_id, Duration::from_secs(10)).await;
    assert_eq!(fetch(&foreign).await.1, "published", "another organization keeps the published version");

    // SIGTERM turns dev mode off: everyone runs the published module again.
    dev.signal("-TERM").await;
    let (status, shown) = app.call("GET", "/v1/integrations/devint/dev", None).await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["enabled"], false, "{shown}");
    assert_eq!(fetch(&own).await.1, "published");

    let _dev = weft_dev(&app, &wasm, &["--all"]).await;
    assert_eq!(fetch(&foreign).await.1, "from weft dev", "with --all every organization's events go to the tunnel");
    assert_eq!(fetch(&own).await.1, "from weft dev");
}

#[tokio::test]
async fn a_changed_module_is_served_on_the_next_event() {
    let (app, own, _) = setup().await;
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("dev.wasm");
    std::fs::write(&wasm, answering_wasm("first version")).unwrap();
    let _dev = weft_dev(&app, &wasm, &[]).await;
    assert_eq!(fetch(&own).await.1, "first version");

    std::fs::write(&wasm, answering_wasm("second version, a little longer")).unwrap();
    assert_eq!(fetch(&own).await.1, "second version, a little longer");
}

#[tokio::test]
async fn killing_weft_dev_fails_the_next_event_as_tunnel_unreachable_without_waiting_for_the_timeout() {
    let (app, own, foreign) = setup().await;
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("dev.wasm");
    std::fs::write(&wasm, answering_wasm("from weft dev")).unwrap();
    let mut dev = weft_dev(&app, &wasm, &[]).await;
    assert_eq!(fetch(&own).await.1, "from weft dev");

    dev.signal("-KILL").await;
    // The server notices the closed socket; the tunnel timeout (5 s) is never waited for.
    let (status, _, event_id) = tokio::time::timeout(Duration::from_secs(4), fetch(&own)).await.expect("fails fast");
    assert_eq!(status, 500);
    let event = recorded_event(&app, &event_id).await;
    assert_eq!(event["event"]["status"], "failed", "{event}");
    assert_eq!(event["event"]["error"]["kind"], "tunnel_unreachable", "{event}");
    assert_eq!(fetch(&foreign).await.1, "published");
}

/// What a test HTTP tunnel received.
#[derive(Default)]
pub(crate) struct Received {
    pub(crate) requests: Vec<(HeaderMap, Bytes)>,
}

/// An HTTP tunnel on a free port that answers every POST with "from the tunnel".
pub(crate) async fn http_tunnel() -> (String, Arc<Mutex<Received>>) {
    let received = Arc::new(Mutex::new(Received::default()));
    let app = axum::Router::new().fallback({
        let received = received.clone();
        move |headers: HeaderMap, body: Bytes| {
            received.lock().unwrap().requests.push((headers, body));
            async {
                axum::Json(json!({
                    "response": {"status": 201, "headers": {"x-tunnel": "yes"}, "body": BASE64.encode("from the tunnel")},
                    "logs": [{"level": "info", "message": "handled on the author's machine", "timestamp": 0}],
                }))
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

#[tokio::test]
async fn http_tunnels_get_the_invocation_signed_the_standard_webhooks_way() {
    let (app, own, foreign) = setup().await;
    let (tunnel_url, received) = http_tunnel().await;
    let (status, body) =
        app.call("PUT", "/v1/integrations/devint/dev", Some(json!({"tunnelUrl": tunnel_url, "all": false}))).await;
    assert_eq!(status, 204, "{body}");
    let (_, shown) = app.call("GET", "/v1/integrations/devint/dev", None).await;
    assert_eq!(shown["tunnelUrl"], tunnel_url.as_str());
    let secret = shown["signingSecret"].as_str().unwrap().to_owned();

    let (status, body, event_id) = fetch(&own).await;
    assert_eq!((status, body.as_str()), (201, "from the tunnel"));
    let event = recorded_event(&app, &event_id).await;
    assert_eq!(event["trace"]["logs"][0]["message"], "handled on the author's machine", "{event}");
    assert_eq!(fetch(&foreign).await.1, "published");

    let (headers, body) = received.lock().unwrap().requests.pop().expect("the tunnel got the event");
    let invocation: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(invocation["event"]["eventId"], event_id.as_str());
    assert_eq!(invocation["event"]["type"], "fetch");
    let header = |name: &str| headers[name].to_str().unwrap().to_owned();
    let key = BASE64.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.", header("webhook-id"), header("webhook-timestamp")).as_bytes());
    mac.update(&body);
    let expected = format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()));
    assert_eq!(header("webhook-signature"), expected);
    let timestamp: i64 = header("webhook-timestamp").parse().unwrap();
    assert!((chrono::Utc::now().timestamp() - timestamp).abs() < 300, "the timestamp is in seconds, now");

    let (status, _) = app.call("DELETE", "/v1/integrations/devint/dev", None).await;
    assert_eq!(status, 204);
    assert_eq!(fetch(&own).await.1, "published", "DELETE takes effect at once");
}

#[tokio::test]
async fn a_refused_tunnel_connection_fails_the_event_as_tunnel_unreachable() {
    let (app, own, _) = setup().await;
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", closed.local_addr().unwrap());
    drop(closed);
    let (status, _) = app.call("PUT", "/v1/integrations/devint/dev", Some(json!({"tunnelUrl": url}))).await;
    assert_eq!(status, 204);
    let (status, _, event_id) = tokio::time::timeout(Duration::from_secs(4), fetch(&own)).await.expect("fails fast");
    assert_eq!(status, 500);
    assert_eq!(recorded_event(&app, &event_id).await["event"]["error"]["kind"], "tunnel_unreachable");
}

#[tokio::test]
async fn only_the_integrations_organization_admins_may_turn_dev_mode_on() {
    let (app, _, _) = setup().await;
    let outsider = user_token(&app, "olga", "other", "admin").await;
    let member = user_token(&app, "mia", "acme", "member").await;
    let owner = user_token(&app, "ada", "acme", "admin").await;
    let body = json!({"tunnelUrl": "http://127.0.0.1:9/"});
    for token in [&outsider, &member] {
        let (status, answer) = app.call_as(Some(token), "PUT", "/v1/integrations/devint/dev", Some(body.clone())).await;
        assert!(status == 403 || status == 404, "{status} {answer}");
    }
    let (status, answer) = app.call_as(Some(&owner), "PUT", "/v1/integrations/devint/dev", Some(body)).await;
    assert_eq!(status, 204, "{answer}");
    let too_long = json!({"tunnelUrl": format!("http://{}", "a".repeat(260))});
    let (status, answer) = app.call_as(Some(&owner), "PUT", "/v1/integrations/devint/dev", Some(too_long)).await;
    assert_eq!(status, 400, "{answer}");
    let (status, answer) = app.call_as(Some(&owner), "DELETE", "/v1/integrations/devint/dev", None).await;
    assert_eq!(status, 204, "{answer}");
}

#[tokio::test]
async fn weft_tail_shows_an_event_within_a_second() {
    let (app, own, foreign) = setup().await;
    let mut tail = Cli::spawn(&["tail", "devint", "--api-url", &app.url, "--token", ADMIN, "--status", "success"]);
    tail.wait_for("streaming the events of `devint`", Duration::from_secs(30)).await;

    let (_, _, event_id) = fetch(&own).await;
    let line = tail.wait_for(&event_id, Duration::from_secs(1)).await;
    assert!(line.contains("fetch") && line.contains("success"), "{line}");

    let installation = app.call("GET", "/v1/integrations/devint/installations", None).await.1["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["target"]["organization"] == "other" || i["organization"] == "other")
        .map(|i| i["id"].as_str().unwrap().to_owned());
    if let Some(installation) = installation {
        let mut filtered =
            Cli::spawn(&["tail", "devint", "--api-url", &app.url, "--token", ADMIN, "--installation", &installation]);
        filtered.wait_for("streaming", Duration::from_secs(30)).await;
        let (_, _, skipped) = fetch(&own).await;
        let (_, _, shown) = fetch(&foreign).await;
        filtered.wait_for(&shown, Duration::from_secs(5)).await;
        assert!(!filtered.seen.iter().any(|line| line.contains(&skipped)), "{:?}", filtered.seen);
    }
}

/// The dev mode rows on one backend: on, off, and one signing secret however often asked.
async fn dev_mode_rows_round_trip(store: &weft::store::Store) {
    assert_eq!(store.dev_mode("devint").await.unwrap(), None);
    store.set_dev_mode("devint", "http://127.0.0.1:9/", "http", true).await.unwrap();
    let on = store.dev_mode("devint").await.unwrap().unwrap();
    assert_eq!(
        (on.tunnel_url.as_deref(), on.tunnel_kind.as_str(), on.all_orgs),
        (Some("http://127.0.0.1:9/"), "http", true)
    );
    let first = store.dev_signing_secret("devint", "sealed-one").await.unwrap();
    let second = store.dev_signing_secret("devint", "sealed-two").await.unwrap();
    assert_eq!((first.as_str(), second.as_str()), ("sealed-one", "sealed-one"));
    assert!(store.clear_dev_mode("devint").await.unwrap());
    assert!(!store.clear_dev_mode("devint").await.unwrap(), "already off");
    let off = store.dev_mode("devint").await.unwrap().unwrap();
    assert_eq!((off.tunnel_url, off.signing_secret.as_deref()), (None, Some("sealed-one")));
    assert_eq!(store.dev_signing_secret("fresh", "sealed-three").await.unwrap(), "sealed-three");
    assert_eq!(store.dev_mode("fresh").await.unwrap().unwrap().tunnel_url, None, "a secret alone is not dev mode");
}

#[tokio::test]
async fn dev_mode_rows_work_on_sqlite_and_postgresql() {
    let (sqlite, _dir) = crate::support::fresh_sqlite().await;
    dev_mode_rows_round_trip(&sqlite).await;
    let database = crate::support::fresh_postgres().await;
    let postgres = weft::store::Store::connect(&database.url).await.unwrap();
    dev_mode_rows_round_trip(&postgres).await;
}

#[tokio::test]
async fn weft_dev_with_a_public_url_serves_signed_events_itself() {
    let (app, own, _) = setup().await;
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("dev.wasm");
    std::fs::write(&wasm, answering_wasm("served by weft dev")).unwrap();
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let listen = free.local_addr().unwrap().to_string();
    drop(free);
    let public_url = format!("http://{listen}/");
    let wasm = wasm.to_str().unwrap();
    let args = ["dev", "--name", "devint", "--wasm", wasm, "--api-url", &app.url, "--token", ADMIN];
    let mut dev = Cli::spawn(&[&args[..], &["--public-url", &public_url, "--listen", &listen]].concat());
    dev.wait_for("serving on", Duration::from_secs(30)).await;

    let (status, body, event_id) = fetch(&own).await;
    assert_eq!((status, body.as_str()), (200, "served by weft dev"), "weft dev checked the signature and answered");
    dev.wait_for(&event_id, Duration::from_secs(10)).await;
    dev.signal("-INT").await;
    assert_eq!(fetch(&own).await.1, "published", "Ctrl-C turned dev mode off");
}

#[tokio::test]
async fn a_tunnel_that_never_answers_fails_the_event_as_tunnel_unreachable_after_the_timeout() {
    let (app, own, _) = setup().await;
    // Accepts connections and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", silent.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let (status, _) = app.call("PUT", "/v1/integrations/devint/dev", Some(json!({"tunnelUrl": url}))).await;
    assert_eq!(status, 204);
    let (status, _, event_id) = fetch(&own).await;
    assert!(status == 500 || status == 504, "{status}");
    let event = recorded_event(&app, &event_id).await;
    assert_eq!(event["event"]["error"]["kind"], "tunnel_unreachable", "{event}");
    assert!(event["event"]["error"]["message"].as_str().unwrap().contains("in time"), "{event}");
}

#[tokio::test]
async fn weft_dev_rebuilds_and_reloads_when_the_source_changes() {
    let (app, own, _) = setup().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("src")).unwrap();
    std::fs::write(dir.path().join("weft.toml"), "name = \"devint\"\nscript = \"out/devint.wasm\"\n").unwrap();
    // The "source" is a module and the "build" copies it: enough to drive the watch loop.
    std::fs::write(dir.path().join("src/devint.wasm"), answering_wasm("built once")).unwrap();
    let root = dir.path().to_str().unwrap();
    let build = "mkdir -p out && cp src/devint.wasm out/devint.wasm";
    let mut dev = Cli::spawn(&["dev", root, "--build", build, "--api-url", &app.url, "--token", ADMIN]);
    dev.wait_for("tunnel connected", Duration::from_secs(30)).await;
    assert_eq!(fetch(&own).await.1, "built once");

    std::fs::write(dir.path().join("src/devint.wasm"), answering_wasm("built again after an edit")).unwrap();
    dev.wait_for("reloaded", Duration::from_secs(10)).await;
    assert_eq!(fetch(&own).await.1, "built again after an edit");
}

#[tokio::test]
async fn weft_dev_runs_events_with_the_manifests_limits() {
    let (app, own, _) = setup().await;
    let dir = tempfile::tempdir().unwrap();
    let looping = r#"(module (memory (export "memory") 1)
        (func (export "weft_alloc") (param i32) (result i32) (i32.const 1024))
        (func (export "weft_handle") (param i32 i32) (result i64) (loop $spin (br $spin)) (i64.const 0)))"#;
    std::fs::write(dir.path().join("looping.wasm"), wat::parse_str(looping).unwrap()).unwrap();
    let manifest = |limits: &str| format!("name = \"devint\"\nscript = \"looping.wasm\"\n[limits]\n{limits}\n");
    let root = dir.path().to_str().unwrap();
    let args = ["dev", root, "--build", "true", "--api-url", &app.url, "--token", ADMIN];

    std::fs::write(dir.path().join("weft.toml"), manifest("deadlineMs = 999999999")).unwrap();
    let refused = Command::new(WEFT).args(args).env_remove("WEFT_TOKEN").output().await.unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && stderr.contains("limits.deadlineMs"), "{stderr}");

    std::fs::write(dir.path().join("weft.toml"), manifest("deadlineMs = 200")).unwrap();
    let mut dev = Cli::spawn(&args);
    dev.wait_for("tunnel connected", Duration::from_secs(30)).await;
    let (status, body, _) = fetch(&own).await;
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("200 ms deadline"), "the manifest's deadline, not the default 10 s: {body}");
}

#[tokio::test]
async fn weft_dev_bundles_a_gitbook_project_and_bundles_again_when_its_source_changes() {
    let (app, own, _) = setup().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("src")).unwrap();
    // esbuild and js-yaml come with @gitbook/cli, as in an author's project.
    std::os::unix::fs::symlink(
        crate::support::repo_root().join("tests/clients/node_modules"),
        dir.path().join("node_modules"),
    )
    .unwrap();
    let manifest = "name: devint\ntitle: Dev\nscript: ./src/index.js\norganization: acme\nscopes: []\n";
    std::fs::write(dir.path().join("gitbook-manifest.yaml"), manifest).unwrap();
    let module =
        |said: &str| format!("export default {{ async fetch(request) {{ return new Response('{said}'); }} }};\n");
    std::fs::write(dir.path().join("src/index.js"), module("bundled once")).unwrap();
    let root = dir.path().to_str().unwrap();
    let mut dev = Cli::spawn(&["dev", root, "--api-url", &app.url, "--token", ADMIN]);
    dev.wait_for("tunnel connected", Duration::from_secs(60)).await;
    assert_eq!(fetch(&own).await.1, "bundled once");

    std::fs::write(dir.path().join("src/index.js"), module("bundled again after an edit")).unwrap();
    dev.wait_for("reloaded", Duration::from_secs(30)).await;
    assert_eq!(fetch(&own).await.1, "bundled again after an edit");
}
