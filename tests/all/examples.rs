//! The example integrations end to end: each published from its own `weft.toml`, installed,
//! and driven through a real server, with a local receiver standing in for the outside world.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::support::{TestApp, example_publish_body, spawn_app_with, wasm};

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

/// A local HTTP server recording every request; `/fail…` answers 500, the rest 200.
#[derive(Clone, Default)]
struct Receiver {
    url: String,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let receiver =
            Receiver { url: format!("http://{}", listener.local_addr().unwrap()), received: Default::default() };
        let app = Router::new().fallback(record).with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        receiver
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// The requests to `path`.
    fn received_at(&self, path: &str) -> Vec<Received> {
        self.received().into_iter().filter(|r| r.path == path).collect()
    }

    /// Polls until `path` got `count` requests.
    async fn wait_for(&self, path: &str, count: usize) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let received = self.received_at(path);
            if received.len() >= count {
                return received;
            }
            assert!(Instant::now() < deadline, "{path} got {} of {count} requests", received.len());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn record(State(receiver): State<Receiver>, uri: Uri, headers: HeaderMap, body: Bytes) -> StatusCode {
    let path = uri.path().to_owned();
    let status = if path.starts_with("/fail") { StatusCode::INTERNAL_SERVER_ERROR } else { StatusCode::OK };
    receiver.received.lock().unwrap().push(Received { path, headers, body: body.to_vec() });
    status
}

/// A server whose guests may reach loopback (where the receiver is), with org `acme` (the
/// examples' manifests name it).
async fn app() -> TestApp {
    let app = spawn_app_with(|config| config.outbound.allow_private_addresses = true).await;
    app.create_org("acme").await;
    app
}

/// Publishes `examples/{dir}` (module `{file}.wasm`) from its weft.toml with `overrides`.
async fn publish_example(app: &TestApp, dir: &str, file: &str, overrides: Value) -> String {
    let (name, body) = example_publish_body(dir, &wasm(file), overrides);
    let (status, answer) = app.call("POST", &format!("/v1/integrations/{name}"), Some(body)).await;
    assert_eq!(status, 200, "{answer}");
    name
}

/// Installs `name` on acme with `configuration`; the answer's status and body.
async fn install(app: &TestApp, name: &str, configuration: Value) -> (u16, Value) {
    let path = format!("/v1/integrations/{name}/installations");
    app.call("POST", &path, Some(json!({"organization": "acme", "configuration": configuration}))).await
}

/// Only loopback, where the receiver listens: the tests' stand-in for the manifests' hosts.
fn loopback_csp() -> Value {
    json!({"contentSecurityPolicy": "connect-src 127.0.0.1"})
}

fn signature(secret: &str, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn error_message(body: &Value) -> String {
    body["error"]["message"].as_str().unwrap_or_else(|| panic!("not an error body: {body}")).to_owned()
}

#[tokio::test]
async fn relay_forwards_a_correctly_signed_post_and_refuses_a_bad_signature() {
    let receiver = Receiver::start().await;
    let app = app().await;
    let name = publish_example(&app, "relay", "relay", loopback_csp()).await;
    let secret = "a-secret-shared-with-the-sender";
    let (status, installation) =
        install(&app, &name, json!({"secret": secret, "forwardUrl": format!("{}/hook", receiver.url)})).await;
    assert_eq!(status, 201, "{installation}");
    let endpoint = installation["urls"]["publicEndpoint"].as_str().unwrap().to_owned();
    let post = |path: &str, body: &'static str, signature: Option<String>| {
        let mut request =
            app.client.post(format!("{endpoint}{path}")).header("content-type", "application/json").body(body);
        if let Some(signature) = signature {
            request = request.header("X-Signature", signature);
        }
        request.send()
    };

    let body = r#"{"action":"opened","number":7}"#;
    let response = post("/github", body, Some(signature(secret, body))).await.unwrap();
    assert_eq!(response.status(), 202);
    assert_eq!(response.json::<Value>().await.unwrap(), json!({"forwarded": true, "status": 200}));
    let forwarded = receiver.wait_for("/hook", 1).await;
    assert_eq!(forwarded[0].body, body.as_bytes());
    assert_eq!(forwarded[0].headers["content-type"], "application/json");
    assert_eq!(forwarded[0].headers["x-relay-path"], "/github");

    for bad in [None, Some(signature("not-the-shared-secret", body)), Some(signature(secret, "another body"))] {
        let response = post("/github", body, bad.clone()).await.unwrap();
        assert_eq!(response.status(), 401, "{bad:?}");
        let answer: Value = response.json().await.unwrap();
        assert!(error_message(&answer).contains("signature"), "{bad:?}: {answer}");
    }
    assert_eq!(receiver.received_at("/hook").len(), 1, "a refused post is never forwarded");

    // The forward URL failing is the relay's 502.
    let path = format!("/v1/integrations/{name}/installations/{}", installation["id"].as_str().unwrap());
    let configuration = json!({"secret": secret, "forwardUrl": format!("{}/fail", receiver.url)});
    let (status, answer) = app.call("PATCH", &path, Some(json!({"configuration": configuration}))).await;
    assert_eq!(status, 200, "{answer}");
    let response = post("/github", body, Some(signature(secret, body))).await.unwrap();
    assert_eq!(response.status(), 502);
    assert_eq!(receiver.received_at("/fail").len(), 1);
}

#[tokio::test]
async fn digest_collects_items_and_delivers_one_digest_on_a_cron_tick() {
    let receiver = Receiver::start().await;
    let app = app().await;
    // No schedule until the items are in, so no tick can split them.
    let mut overrides = loopback_csp();
    overrides["schedules"] = json!([]);
    let name = publish_example(&app, "digest", "digest", overrides.clone()).await;
    let configuration = json!({"digestUrl": format!("{}/digest", receiver.url), "title": "Test digest"});
    let (status, installation) = install(&app, &name, configuration).await;
    assert_eq!(status, 201, "{installation}");
    let endpoint = installation["urls"]["publicEndpoint"].as_str().unwrap().to_owned();

    for body in [r#"{"text":"first"}"#, "second", r#"{"text":"third"}"#] {
        let response = app.client.post(&endpoint).body(body).send().await.unwrap();
        assert_eq!(response.status(), 202, "{body}");
    }
    let pending = || async { app.client.get(&endpoint).send().await.unwrap().json::<Value>().await.unwrap() };
    assert_eq!(pending().await, json!({"pending": 3}));

    // Republish with a schedule every 5 seconds (the manifest's is hourly), per installation.
    overrides["schedules"] = json!([{"cron": "*/5 * * * * *", "task": {"digest": true}, "per": "installation"}]);
    publish_example(&app, "digest", "digest", overrides).await;

    let digests = receiver.wait_for("/digest", 1).await;
    let digest = digests[0].json();
    assert_eq!(digest["text"], "Test digest: 3 items\n• first\n• second\n• third", "{digest}");
    assert_eq!(digest["count"], 3);
    let texts: Vec<&str> = digest["items"].as_array().unwrap().iter().map(|i| i["text"].as_str().unwrap()).collect();
    assert_eq!(texts, ["first", "second", "third"]);

    // Another tick runs and has nothing to send: the items were cleared after delivery.
    wait_for_successful_tasks(&app, &name, 2).await;
    assert_eq!(pending().await, json!({"pending": 0}));
    assert_eq!(receiver.received_at("/digest").len(), 1, "exactly one digest");
}

/// Polls until `name` has `count` successful `task` events (cron ticks may be a minute
/// apart after a slow start, hence the long deadline).
async fn wait_for_successful_tasks(app: &TestApp, name: &str, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (status, body) = app.call("GET", &format!("/v1/integrations/{name}/events?limit=1000"), None).await;
        assert_eq!(status, 200, "{body}");
        let done = body["items"].as_array().unwrap().iter().filter(|e| e["type"] == "task" && e["status"] == "success");
        if done.count() >= count {
            return;
        }
        assert!(Instant::now() < deadline, "fewer than {count} successful tasks: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn config_check_refuses_a_bad_configuration_at_install_and_update_naming_the_field() {
    let app = app().await;
    let name = publish_example(&app, "config-check", "config_check", json!({})).await;
    let good = json!({"channel": "#alerts", "webhookUrl": "https://hooks.example.com/x", "threshold": 80});
    let with = |field: &str, value: Value| {
        let mut configuration = good.clone();
        configuration[field] = value;
        configuration
    };

    // At install: the module's verdict, then the schema's; nothing is left behind.
    let (status, answer) = install(&app, &name, with("channel", json!("alerts"))).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(
        answer,
        json!({"error": {"code": 400, "message": "configuration rejected by the integration: channel: must start with #"}})
    );
    let (status, answer) = install(&app, &name, json!({"channel": "#alerts", "webhookUrl": "https://x.example"})).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(error_message(&answer), "configuration.threshold is required");
    let (_, list) = app.call("GET", &format!("/v1/integrations/{name}/installations"), None).await;
    assert_eq!(list["count"], 0, "a refused install leaves no installation: {list}");

    let (status, installation) = install(&app, &name, good.clone()).await;
    assert_eq!(status, 201, "{installation}");
    assert_eq!(installation["configuration"], good);
    let path = format!("/v1/integrations/{name}/installations/{}", installation["id"].as_str().unwrap());

    // At update: refused, naming the field, and the previous configuration is kept.
    for (configuration, message) in [
        (with("webhookUrl", json!("http://hooks.example.com/x")), "webhookUrl: must be an https:// URL"),
        (with("threshold", json!(500)), "threshold: must be between 1 and 100, not 500"),
    ] {
        let (status, answer) =
            app.call("PATCH", &path, Some(json!({"configuration": configuration, "externalIds": ["x"]}))).await;
        assert_eq!(status, 400, "{answer}");
        assert_eq!(error_message(&answer), format!("configuration rejected by the integration: {message}"));
        let (_, kept) = app.call("GET", &path, None).await;
        assert_eq!((&kept["configuration"], &kept["externalIds"]), (&good, &json!([])), "{kept}");
    }

    let better = json!({"channel": "#ops", "webhookUrl": "https://hooks.example.com/ops", "threshold": 10});
    let (status, updated) = app.call("PATCH", &path, Some(json!({"configuration": better}))).await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["configuration"], better);
    let endpoint = updated["urls"]["publicEndpoint"].as_str().unwrap();
    let answer: Value = app.client.get(endpoint).send().await.unwrap().json().await.unwrap();
    assert_eq!(answer, better);

    // Every verdict ran synchronously: nothing was queued.
    for status in ["queued", "running", "done", "dead"] {
        let (_, tasks) = app.call("GET", &format!("/v1/integrations/{name}/tasks?status={status}"), None).await;
        assert_eq!(tasks["count"], 0, "{status}: {tasks}");
    }
    // Each verdict is in the events log (the schema's refusal never reached the module).
    let events = app.wait_for_matching_events(&name, 5, |e| e["type"] == "installation_setup").await;
    let mut statuses: Vec<&str> = events.iter().map(|e| e["event"]["status"].as_str().unwrap()).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, ["failed", "failed", "failed", "success", "success"]);
}
