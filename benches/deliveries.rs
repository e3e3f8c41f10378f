//! Signed webhook deliveries per second, end to end, on SQLite and on PostgreSQL.
//!
//! `cargo bench --bench deliveries`: the host product posts `EVENTS` events to
//! `POST /v1/orgs/{org}/events` (`WEFT_BENCH_POSTERS` (16) at a time); one application of the organization has
//! a webhook subscribed to them, at a receiver on loopback that checks every delivery's
//! `X-Space-Signature` (HMAC) and `X-Space-Public-Key-Signature` (RSA, with the key from the
//! JWKS) and counts the verified ones. The clock runs from the first post to the last verified
//! delivery. The baseline, in the same run, is a plain loop POSTing the same bodies to the
//! same receiver, `WEFT_BENCH_POSTERS` (16) at a time, unsigned: the ratio is what durable, signed delivery
//! costs.
//!
//! PostgreSQL: `WEFT_TEST_POSTGRES_URL` (default postgres://postgres@127.0.0.1:5432/postgres);
//! a fresh database is created and dropped.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD as BASE64, URL_SAFE_NO_PAD as BASE64URL};
use hmac::{Hmac, Mac};
use rsa::traits::SignatureScheme as _;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use sqlx::Connection as _;
use weft::config::ServerConfig;
use weft::server::Server;

const EVENTS: usize = 3_000;
/// How many clients post at once (`WEFT_BENCH_POSTERS`, default 16).
fn poster_count() -> usize {
    std::env::var("WEFT_BENCH_POSTERS").ok().and_then(|n| n.parse().ok()).unwrap_or(16)
}

/// What the receiver checks deliveries with; `None` for the unsigned baseline.
struct Keys {
    signing_key: String,
    public_key: rsa::RsaPublicKey,
}

#[derive(Default)]
struct Counts {
    received: AtomicUsize,
    verified: AtomicUsize,
}

struct Receiver {
    url: String,
    counts: Arc<Counts>,
    keys: Arc<std::sync::RwLock<Option<Keys>>>,
}

fn verify(keys: &Keys, headers: &HeaderMap, body: &str) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let signed = format!("{}:{body}", header("x-space-timestamp"));
    let mut mac = Hmac::<Sha256>::new_from_slice(keys.signing_key.as_bytes()).unwrap();
    mac.update(signed.as_bytes());
    let hmac_ok = hex::encode(mac.finalize().into_bytes()) == header("x-space-signature");
    let signature = BASE64.decode(header("x-space-public-key-signature")).unwrap_or_default();
    let digest = Sha256::digest(signed.as_bytes());
    hmac_ok && rsa::Pkcs1v15Sign::new::<Sha256>().verify(&keys.public_key, &digest, &signature).is_ok()
}

async fn receiver() -> Receiver {
    let counts = Arc::new(Counts::default());
    let keys: Arc<std::sync::RwLock<Option<Keys>>> = Arc::default();
    let (handler_counts, handler_keys) = (counts.clone(), keys.clone());
    let app = axum::Router::new().fallback(move |headers: HeaderMap, body: String| {
        let (counts, keys) = (handler_counts.clone(), handler_keys.clone());
        async move {
            counts.received.fetch_add(1, Ordering::Relaxed);
            if let Some(keys) = keys.read().unwrap().as_ref() {
                if !verify(keys, &headers, &body) {
                    return StatusCode::UNAUTHORIZED;
                }
                counts.verified.fetch_add(1, Ordering::Relaxed);
            }
            StatusCode::OK
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Receiver { url, counts, keys }
}

fn event(n: usize) -> Value {
    json!({"type": "Bench.Event", "payload": {"n": n, "issue": {"id": format!("ISS-{n}"), "title": "A bench event"}}})
}

/// Posts `bodies` to `url` (`WEFT_BENCH_POSTERS` (16) at a time) and returns when every post was answered.
async fn post_all(client: &reqwest::Client, url: &str, token: Option<&str>, bodies: Vec<String>) {
    let bodies = Arc::new(std::sync::Mutex::new(bodies));
    let mut posters = tokio::task::JoinSet::new();
    for _ in 0..poster_count() {
        let (client, url, bodies, token) = (client.clone(), url.to_owned(), bodies.clone(), token.map(str::to_owned));
        posters.spawn(async move {
            loop {
                let Some(body) = bodies.lock().unwrap().pop() else { return };
                let mut request = client.post(&url).header("content-type", "application/json").body(body);
                if let Some(token) = &token {
                    request = request.bearer_auth(token);
                }
                let status = request.send().await.unwrap().status();
                assert!(status.is_success(), "{url} answered {status}");
            }
        });
    }
    while posters.join_next().await.is_some() {}
}

async fn wait_until(count: &AtomicUsize, target: usize, deadline: Duration) {
    let until = Instant::now() + deadline;
    while count.load(Ordering::Relaxed) < target {
        assert!(Instant::now() < until, "only {} of {target} arrived in time", count.load(Ordering::Relaxed));
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// weft's deliveries per second, and the bodies it delivered (for the baseline).
async fn measure(database_url: &str, secret_key: Option<String>) -> (f64, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServerConfig {
        bind: "127.0.0.1:0".into(),
        database_url: database_url.replace("{dir}", &dir.path().display().to_string()),
        admin_token: Some("bench".into()),
        secret_key,
        ..ServerConfig::default()
    };
    config.outbound.allow_private_addresses = true;
    let server = Server::start(config).await.unwrap();
    let (url, client) = (server.url(), reqwest::Client::new());
    let call = |method: reqwest::Method, path: &str, body: Option<Value>| {
        let mut request = client.request(method, format!("{url}{path}")).bearer_auth("bench");
        if let Some(body) = body {
            request = request.json(&body);
        }
        async move {
            let response = request.send().await.unwrap();
            assert!(response.status().is_success(), "{}", response.text().await.unwrap());
            response.json::<Value>().await.unwrap()
        }
    };
    call(reqwest::Method::POST, "/v1/orgs", Some(json!({"id": "bench", "title": "Bench"}))).await;
    let receiver = receiver().await;
    let app = call(
        reqwest::Method::POST,
        "/api/http/applications",
        Some(json!({"name": "bench", "organization": "bench", "endpointUri": receiver.url})),
    )
    .await;
    let app_id = app["id"].as_str().unwrap();
    let webhook = call(
        reqwest::Method::POST,
        &format!("/api/http/applications/{app_id}/webhooks"),
        Some(json!({"name": "bench", "subscriptions": [{"eventTypeCodes": ["Bench.Event"]}]})),
    )
    .await;
    let webhook_id = webhook["webhook"]["id"].as_str().unwrap();
    let key =
        call(reqwest::Method::GET, &format!("/api/http/applications/{app_id}/webhooks/{webhook_id}/signing-key"), None)
            .await;
    let jwks = call(reqwest::Method::GET, &format!("/api/http/applications/{app_id}/public-keys"), None).await;
    let n =
        |field: &str| rsa::BigUint::from_bytes_be(&BASE64URL.decode(jwks["keys"][0][field].as_str().unwrap()).unwrap());
    *receiver.keys.write().unwrap() = Some(Keys {
        signing_key: key["signingKey"].as_str().unwrap().to_owned(),
        public_key: rsa::RsaPublicKey::new(n("n"), n("e")).unwrap(),
    });

    let bodies: Vec<String> = (0..EVENTS).map(|n| event(n).to_string()).collect();
    let started = Instant::now();
    post_all(&client, &format!("{url}/v1/orgs/bench/events"), Some("bench"), bodies).await;
    let posted = started.elapsed();
    let delivered_then = receiver.counts.verified.load(Ordering::Relaxed);
    wait_until(&receiver.counts.verified, EVENTS, Duration::from_secs(120)).await;
    let rate = EVENTS as f64 / started.elapsed().as_secs_f64();
    println!(
        "           posting took {:.2} s ({:.0} events/s accepted), {delivered_then} delivered by then; all delivered after {:.2} s",
        posted.as_secs_f64(),
        EVENTS as f64 / posted.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(receiver.counts.received.load(Ordering::Relaxed), EVENTS, "every delivery verified, none twice");

    let mut delivered = Vec::new();
    let mut skip = 0;
    while delivered.len() < EVENTS {
        let page = call(
            reqwest::Method::GET,
            &format!("/api/http/applications/{app_id}/deliveries?$top=1000&$skip={skip}"),
            None,
        )
        .await;
        let data = page["data"].as_array().unwrap();
        assert!(!data.is_empty());
        delivered.extend(data.iter().map(|d| d["payload"].to_string()));
        skip += data.len();
    }
    server.stop().await.unwrap();
    (rate, delivered)
}

/// The same bodies POSTed straight to the receiver, unsigned.
async fn baseline(bodies: Vec<String>) -> f64 {
    let receiver = receiver().await;
    let client = reqwest::Client::new();
    let started = Instant::now();
    post_all(&client, &receiver.url, None, bodies).await;
    wait_until(&receiver.counts.received, EVENTS, Duration::from_secs(60)).await;
    EVENTS as f64 / started.elapsed().as_secs_f64()
}

async fn fresh_postgres() -> Option<(String, String, String)> {
    let admin = std::env::var("WEFT_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let mut connection = sqlx::PgConnection::connect(&admin).await.ok()?;
    let name = format!("weft_bench_deliveries_{}", std::process::id());
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name}")).execute(&mut connection).await.ok()?;
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut connection).await.ok()?;
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(base, _)| base).to_owned();
    Some((format!("{base}/{name}"), admin, name))
}

fn report(backend: &str, rate: f64, baseline: f64) {
    println!(
        "{backend:<10} {rate:>8.0} signed deliveries/s (goal ≥ 1000)  baseline {baseline:>8.0} plain POSTs/s  ratio {:.2}",
        rate / baseline
    );
}

#[tokio::main]
async fn main() {
    println!("deliveries benchmark: {EVENTS} events posted by {} clients, one subscribed webhook", poster_count());
    let (sqlite, bodies) = measure("sqlite://{dir}/bench.db", None).await;
    let plain = baseline(bodies).await;
    report("sqlite", sqlite, plain);
    match fresh_postgres().await {
        Some((url, admin, name)) => {
            let (postgres, bodies) = measure(&url, Some("33".repeat(32))).await;
            let plain = baseline(bodies).await;
            report("postgres", postgres, plain);
            if let Ok(mut connection) = sqlx::PgConnection::connect(&admin).await {
                let _ =
                    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut connection).await;
            }
        }
        None => println!("postgres   skipped: no PostgreSQL server reachable"),
    }
}
