//! Guests' outbound HTTP (`http.fetch`) and per-integration limits.

use axum::Router;
use axum::http::{StatusCode, header};
use axum::routing::get;
use serde_json::{Value, json};

use crate::support::{TestApp, fixture, probe_wasm, spawn_app_with};

/// A receiver on loopback: `/pong` answers, `/elsewhere` redirects to another host name.
async fn receiver() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = Router::new().route("/pong", get(|| async { "pong" })).route(
        "/elsewhere",
        get(move || async move { (StatusCode::FOUND, [(header::LOCATION, format!("http://127.0.0.2:{port}/pong"))]) }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

async fn probe(app: &TestApp, csp: &str) -> String {
    app.create_org("acme").await;
    app.publish_with("probe", "acme", probe_wasm(), json!({"contentSecurityPolicy": csp})).await;
    app.install("probe", "acme").await["urls"]["publicEndpoint"].as_str().unwrap().to_owned()
}

async fn fetch_through(app: &TestApp, endpoint: &str, url: &str) -> (u16, Value) {
    let response = app.client.post(format!("{endpoint}/fetch")).json(&json!({"url": url})).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn guests_reach_only_the_hosts_their_manifest_allows() {
    let port = receiver().await;
    let app = spawn_app_with(|config| config.outbound.allow_private_addresses = true).await;
    let endpoint = probe(&app, "default-src 'self'; connect-src http://127.0.0.1").await;

    let (status, body) = fetch_through(&app, &endpoint, &format!("http://127.0.0.1:{port}/pong")).await;
    assert_eq!((status, &body), (200, &json!({"status": 200, "body": "pong"})));

    let (status, body) = fetch_through(&app, &endpoint, "http://example.com/").await;
    assert_ne!(status, 200);
    assert!(body.to_string().contains("not in the integration's allowed hosts"), "{body}");

    let (status, body) = fetch_through(&app, &endpoint, &format!("http://127.0.0.1:{port}/elsewhere")).await;
    assert_ne!(status, 200, "a redirect to a host that is not allowed must be refused: {body}");
    assert!(body.to_string().contains("127.0.0.2"), "{body}");
}

#[tokio::test]
async fn private_addresses_are_refused_unless_the_operator_allows_them() {
    let port = receiver().await;
    let app = spawn_app_with(|_| {}).await;
    let endpoint = probe(&app, "connect-src 127.0.0.1 localhost").await;
    let (status, body) = fetch_through(&app, &endpoint, &format!("http://127.0.0.1:{port}/pong")).await;
    assert_ne!(status, 200);
    assert!(body.to_string().contains("not a public address"), "{body}");
    // A name is checked on the address it resolves to, not on its spelling.
    let (status, body) = fetch_through(&app, &endpoint, &format!("http://localhost:{port}/pong")).await;
    assert_ne!(status, 200);
    assert!(body.to_string().contains("non-public"), "{body}");
}

#[tokio::test]
async fn an_integration_sets_its_own_limits_within_the_server_maxima() {
    let app = spawn_app_with(|_| {}).await;
    app.create_org("acme").await;
    let mut body = crate::support::publish_body("acme", &fixture("hostile/host_call_flood"));
    body["limits"] = json!({"deadlineMs": 10_000_000});
    let (status, answer) = app.call("POST", "/v1/integrations/flood", Some(body.clone())).await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer["error"]["message"].as_str().unwrap().contains("limits.deadlineMs"), "{answer}");

    body["limits"] = json!({"hostCalls": 5});
    let (status, answer) = app.call("POST", "/v1/integrations/flood", Some(body)).await;
    assert_eq!(status, 200, "{answer}");
    let endpoint = app.install("flood", "acme").await["urls"]["publicEndpoint"].as_str().unwrap().to_owned();
    let response: Value = app.client.get(endpoint).send().await.unwrap().json().await.unwrap();
    assert!(response["error"]["message"].as_str().unwrap().contains("more than 5 host calls"), "{response}");
}

#[tokio::test]
async fn guests_never_go_through_a_proxy_from_the_servers_environment() {
    // A "proxy" that only counts the connections it gets.
    let proxy = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_url = format!("http://{}", proxy.local_addr().unwrap());
    let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = connections.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = proxy.accept().await {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(socket);
        }
    });

    // A server process whose environment names the proxy: a proxy resolves and connects on
    // the guest's behalf, past the address checks, so it must never be used.
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("weft.db").display());
    let mut server = tokio::process::Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(["serve", "--bind", "127.0.0.1:0", "--database-url", &database, "--admin-token", "proxy-test-token"])
        .env("HTTP_PROXY", &proxy_url)
        .env("HTTPS_PROXY", &proxy_url)
        .env("ALL_PROXY", &proxy_url)
        .env("RUST_LOG", "error")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn weft serve");
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(server.stdout.take().unwrap()));
    let url = loop {
        let line = lines.next_line().await.unwrap().expect("weft serve prints its address");
        if let Some(url) = line.strip_prefix("weft listening on ") {
            break url.to_owned();
        }
    };
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let call = |path: &str, body: Value| {
        client.post(format!("{url}{path}")).bearer_auth("proxy-test-token").json(&body).send()
    };
    assert!(call("/v1/orgs", json!({"id": "acme", "title": "Acme"})).await.unwrap().status().is_success());
    let mut publish = crate::support::publish_body("acme", probe_wasm());
    publish["contentSecurityPolicy"] = json!("connect-src weft-proxy-test.example");
    assert!(call("/v1/integrations/probe", publish).await.unwrap().status().is_success());
    let installation: Value = call("/v1/integrations/probe/installations", json!({"organization": "acme"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let endpoint = installation["urls"]["publicEndpoint"].as_str().unwrap();

    let response = client
        .post(format!("{endpoint}/fetch"))
        .json(&json!({"url": "http://weft-proxy-test.example/"}))
        .send()
        .await
        .unwrap();
    assert_ne!(response.status().as_u16(), 200, "the name does not resolve here: {}", response.text().await.unwrap());
    assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), 0, "the guest's request went to the proxy");
}

#[tokio::test]
async fn guests_always_reach_wefts_own_api_origin_and_no_other_loopback_port() {
    // The operator allows no private address; the server's own origin is on 127.0.0.1.
    let port = receiver().await;
    let app = spawn_app_with(|_| {}).await;
    assert!(app.url.starts_with("http://127.0.0.1:"), "{}", app.url);
    // No connect-src at all: weft's API is never something an integration has to list.
    let endpoint = probe(&app, "default-src 'self'").await;

    let (status, body) = fetch_through(&app, &endpoint, &format!("{}/healthz", app.url)).await;
    assert_eq!((status, &body), (200, &json!({"status": 200, "body": r#"{"status":"ok"}"#})));
    // The API answers as it answers anyone: without a token, 401.
    let (status, body) = fetch_through(&app, &endpoint, &format!("{}/v1/user", app.url)).await;
    assert_eq!((status, body["status"].as_u64()), (200, Some(401)), "{body}");

    // Same address, another port: refused like any loopback address.
    let (status, body) = fetch_through(&app, &endpoint, &format!("http://127.0.0.1:{port}/pong")).await;
    assert_ne!(status, 200, "{body}");
    assert!(body.to_string().contains("not in the integration's allowed hosts"), "{body}");
    // Even listed in connect-src, another loopback port stays a private address.
    app.publish_with(
        "probe",
        "acme",
        probe_wasm(),
        json!({"contentSecurityPolicy": "connect-src 127.0.0.1 localhost"}),
    )
    .await;
    let (status, body) = fetch_through(&app, &endpoint, &format!("http://127.0.0.1:{port}/pong")).await;
    assert_ne!(status, 200, "{body}");
    assert!(body.to_string().contains("not a public address"), "{body}");
    // Nor does another spelling of loopback with the API's port pass as the API.
    let api_port = app.url.rsplit(':').next().unwrap();
    let (status, body) = fetch_through(&app, &endpoint, &format!("http://localhost:{api_port}/healthz")).await;
    assert_ne!(status, 200, "{body}");
    assert!(body.to_string().contains("non-public"), "{body}");
}
