//! Operating a server: health and readiness, Prometheus metrics, the config file, JSON
//! logs and a graceful shutdown.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;

use crate::support::{ADMIN, hello_wasm, spawn_app, spawn_app_with};

/// The value of the sample `line_start` (metric name and labels) in a text exposition.
fn sample(text: &str, line_start: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(line_start)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn health_and_readiness_answer_without_a_token() {
    let app = spawn_app().await;
    let (status, body) = app.call_as(None, "GET", "/healthz", None).await;
    assert_eq!((status, body), (200, json!({"status": "ok"})));
    let (status, body) = app.call_as(None, "GET", "/readyz", None).await;
    assert_eq!((status, body), (200, json!({"status": "ready", "database": "ok"})));
}

#[tokio::test]
async fn metrics_count_events_by_integration_and_status_for_the_operator_only() {
    let app = spawn_app().await;
    app.create_org("acme").await;
    app.publish("hello", "acme", hello_wasm()).await;
    let installation = app.install("hello", "acme").await;
    let endpoint = installation["urls"]["publicEndpoint"].as_str().unwrap().to_owned();
    for _ in 0..3 {
        assert_eq!(app.client.get(format!("{endpoint}/x")).send().await.unwrap().status(), 200);
    }
    app.wait_for_events("hello", 3).await;
    app.wait_for_matching_events("hello", 1, |event| event["type"] == "installation_setup").await;

    let (status, body) = app.call_as(None, "GET", "/metrics", None).await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = app.call_as(Some("wrong"), "GET", "/metrics", None).await;
    assert_eq!(status, 401, "{body}");

    let response = app.client.get(format!("{}/metrics", app.url)).bearer_auth(ADMIN).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    let text = response.text().await.unwrap();
    assert_eq!(sample(&text, r#"weft_events_total{integration="hello",type="fetch",status="success"}"#), Some(3.0));
    let setup = r#"weft_events_total{integration="hello",type="installation_setup",status="success"}"#;
    assert_eq!(sample(&text, setup), Some(1.0));
    assert_eq!(sample(&text, r#"weft_event_duration_seconds_count{integration="hello"}"#), Some(4.0));
    assert_eq!(sample(&text, "weft_instances_max"), Some(16.0));
    assert_eq!(sample(&text, "weft_instances_busy"), Some(0.0));
    assert!(sample(&text, "weft_queue_depth").is_some(), "{text}");
    assert!(text.contains("# TYPE weft_event_duration_seconds histogram"), "{text}");
}

#[tokio::test]
async fn metrics_can_be_served_without_a_token_when_the_operator_says_so() {
    let app = spawn_app_with(|config| config.metrics_public = true).await;
    let (status, body) = app.call_as(None, "GET", "/metrics", None).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.as_str().unwrap().contains("weft_build_info"));
}

#[tokio::test]
async fn readiness_fails_once_shutdown_begins() {
    let app = spawn_app().await;
    app.state().draining.store(true, std::sync::atomic::Ordering::Relaxed);
    let (status, body) = app.call_as(None, "GET", "/readyz", None).await;
    assert_eq!((status, body), (503, json!({"status": "unavailable", "reason": "shutting down"})));
    let (status, _) = app.call_as(None, "GET", "/healthz", None).await;
    assert_eq!(status, 200, "the process is still alive");
}

#[tokio::test]
async fn weft_serve_reads_a_config_file_logs_json_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("weft-server.toml");
    std::fs::write(
        &config,
        format!(
            "bind = \"127.0.0.1:0\"\ndatabase-url = \"sqlite://{}\"\nadmin-token = \"from-the-file\"\n\
             metrics-public = true\nlog-format = \"json\"\nlog = \"info\"\nworkers = 2\n",
            dir.path().join("weft.db").display()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(["serve", "--config", config.to_str().unwrap()])
        // The environment wins over the file.
        .env("WEFT_ADMIN_TOKEN", "from-the-environment")
        .env_remove("RUST_LOG")
        .env_remove("WEFT_LOG_FORMAT")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let line = stdout.next_line().await.unwrap().expect("weft serve printed its address");
            if let Some(url) = line.strip_prefix("weft listening on ") {
                return url.to_owned();
            }
        }
    })
    .await
    .expect("weft serve started in time");

    let client = reqwest::Client::new();
    let metrics = client.get(format!("{url}/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), 200, "metrics-public from the file");
    for (token, expected) in [("from-the-environment", 201), ("from-the-file", 401)] {
        let created = client
            .post(format!("{url}/v1/orgs"))
            .bearer_auth(token)
            .json(&json!({"id": format!("org{expected}"), "title": "Org"}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), expected, "token {token}");
    }

    let pid = child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait()).await.unwrap().unwrap();
    assert!(status.success(), "weft serve exited with {status}");
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).await.unwrap();
    let lines: Vec<Value> = stderr
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}")))
        .collect();
    let messages: Vec<&str> = lines.iter().filter_map(|l| l["message"].as_str()).collect();
    assert!(messages.contains(&"listening"), "{stderr}");
    assert!(messages.iter().any(|m| m.starts_with("shutting down")), "{stderr}");
    assert!(messages.contains(&"stopped"), "{stderr}");
    assert!(lines.iter().all(|l| l["level"].is_string() && l["timestamp"].is_string()), "{stderr}");
}

#[tokio::test]
async fn weft_serve_names_an_unknown_config_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("weft-server.toml");
    std::fs::write(&config, "bind = \"127.0.0.1:0\"\nmax-instance = 4\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(["serve", "--config", config.to_str().unwrap()])
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("max-instance") && stderr.contains("weft-server.toml"), "{stderr}");
}
