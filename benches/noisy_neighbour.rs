//! A noisy neighbour: tenant A's hello over HTTP alone, then while tenant B saturates its
//! share with sleeping and with spinning requests, then while B has 10,000 slow tasks queued.
//! Each loaded figure is printed as a ratio of A's unloaded one, from the same run.
//!
//! `cargo bench --bench noisy_neighbour`
//! Goals: A keeps ≥ 99% success and its p99 within 3× of unloaded while B is saturated; A's
//! due task starts within 1 s of its due time while B has 10,000 queued.

#[path = "support.rs"]
mod support;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};
use weft::config::ServerConfig;
use weft::server::Server;
use weft::store::{EventFilter, NewJob, now_ms};

/// A's concurrent callers, each sending one request every [`A_PACE`] (a tenant well inside
/// its rate limit; B's callers send as fast as they are answered).
const A_CALLERS: usize = 4;
/// The pause between one A caller's requests.
const A_PACE: Duration = Duration::from_millis(10);
/// B's concurrent callers (the attack: 130 anonymous GETs), over 4 installations.
const B_CALLERS: usize = 130;
/// How long each HTTP phase measures A.
const PHASE: Duration = Duration::from_secs(8);
/// B's queued tasks in the queue phase.
const B_QUEUED: usize = 10_000;
/// A's tasks timed in the queue phase.
const A_TASKS: usize = 20;

struct Figures {
    requests: usize,
    success: f64,
    p50: Duration,
    p99: Duration,
}

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    wat::parse_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

struct Admin {
    url: String,
    client: reqwest::Client,
}

impl Admin {
    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let response =
            self.client.request(method, format!("{}{path}", self.url)).bearer_auth("bench").json(&body).send().await;
        let response = response.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(status.is_success(), "{path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    async fn org(&self, id: &str) {
        self.call(reqwest::Method::POST, "/v1/orgs", json!({"id": id, "title": format!("Tenant {id}")})).await;
    }

    async fn publish(&self, name: &str, org: &str, wasm: &[u8], limits: Value) {
        let body = json!({"title": name, "description": "d", "organization": org, "visibility": "public",
            "script": BASE64.encode(wasm), "limits": limits});
        self.call(reqwest::Method::POST, &format!("/v1/integrations/{name}"), body).await;
    }

    async fn install(&self, name: &str, org: &str) -> String {
        let path = format!("/v1/integrations/{name}/installations");
        let installation = self.call(reqwest::Method::POST, &path, json!({"organization": org})).await;
        installation["urls"]["publicEndpoint"].as_str().unwrap().to_owned()
    }
}

/// A's callers for one phase: latency of every request and how many answered 200.
async fn measure_a(client: &reqwest::Client, endpoint: &str) -> Figures {
    let until = Instant::now() + PHASE;
    let callers: Vec<_> = (0..A_CALLERS)
        .map(|_| {
            let (client, endpoint) = (client.clone(), endpoint.to_owned());
            tokio::spawn(async move {
                let mut samples = Vec::new();
                let mut pace = tokio::time::interval(A_PACE);
                pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                while Instant::now() < until {
                    pace.tick().await;
                    let started = Instant::now();
                    let ok = match client.get(&endpoint).send().await {
                        Ok(response) => response.status() == 200 && response.bytes().await.is_ok(),
                        Err(_) => false,
                    };
                    samples.push((started.elapsed(), ok));
                }
                samples
            })
        })
        .collect();
    let mut samples = Vec::new();
    for caller in callers {
        samples.extend(caller.await.unwrap());
    }
    let ok = samples.iter().filter(|(_, ok)| *ok).count();
    let mut latencies: Vec<Duration> = samples.iter().map(|(latency, _)| *latency).collect();
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    Figures { requests: samples.len(), success: ok as f64 / samples.len() as f64, p50: at(0.50), p99: at(0.99) }
}

/// B's callers: each calls one of `endpoints` in a loop until `stop`; counts the answers.
fn flood(
    client: &reqwest::Client,
    endpoints: &[String],
    stop: &Arc<AtomicBool>,
) -> (Vec<tokio::task::JoinHandle<()>>, Arc<[AtomicU64; 3]>) {
    let counts: Arc<[AtomicU64; 3]> = Arc::new(Default::default());
    let tasks = (0..B_CALLERS)
        .map(|i| {
            let (client, endpoint, stop, counts) =
                (client.clone(), endpoints[i % endpoints.len()].clone(), stop.clone(), counts.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let slot = match client.get(&endpoint).send().await.map(|r| r.status().as_u16()) {
                        Ok(429) => 1,
                        Ok(_) => 0,
                        Err(_) => 2,
                    };
                    counts[slot].fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    (tasks, counts)
}

fn report(label: &str, figures: &Figures, unloaded: &Figures) {
    println!(
        "  {label:<34} {:>6} req  success {:>7.3}%  p50 {:>8.2?} ({:>5.2}×)  p99 {:>8.2?} ({:>5.2}×)",
        figures.requests,
        figures.success * 100.0,
        figures.p50,
        figures.p50.as_secs_f64() / unloaded.p50.as_secs_f64(),
        figures.p99,
        figures.p99.as_secs_f64() / unloaded.p99.as_secs_f64(),
    );
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let config = ServerConfig {
        bind: "127.0.0.1:0".into(),
        database_url: format!("sqlite://{}", dir.path().join("bench.db").display()),
        admin_token: Some("bench".into()),
        ..ServerConfig::default()
    };
    let (pool, tenancy) = (config.runtime.max_instances, config.tenancy.clone());
    let server = Server::start(config).await.unwrap();
    // A separate client per tenant, so B's connections never queue A's requests.
    let admin = Admin { url: server.url(), client: reqwest::Client::new() };
    let (a_client, b_client) = (reqwest::Client::new(), reqwest::Client::new());

    admin.org("a").await;
    admin.publish("hello", "a", &support::hello_wasm(), json!({})).await;
    let a_endpoint = admin.install("hello", "a").await;
    admin.org("b").await;
    admin.publish("sleepy", "b", &fixture("sleep.wat"), json!({"deadlineMs": 20_000})).await;
    admin.publish("spinner", "b", &fixture("hostile/infinite_loop.wat"), json!({"deadlineMs": 1_000})).await;
    let (mut sleepy, mut spinner) = (Vec::new(), Vec::new());
    for i in 0..4 {
        let org = format!("b{i}");
        admin.org(&org).await;
        sleepy.push(admin.install("sleepy", &org).await);
        spinner.push(admin.install("spinner", &org).await);
    }
    println!(
        "Noisy neighbour: pool {pool} instances, an integration's share {}, an installation's {}, CPU turns {}; A: {A_CALLERS} callers, one request each every {} ms; B: {B_CALLERS} callers over 4 installations; {} s a phase",
        tenancy.integration_share(pool),
        tenancy.installation_share(pool),
        tenancy.cpu_turns(),
        A_PACE.as_millis(),
        PHASE.as_secs()
    );

    // Warm up, then A alone.
    measure_a(&a_client, &a_endpoint).await;
    let unloaded = measure_a(&a_client, &a_endpoint).await;
    report("A alone", &unloaded, &unloaded);

    for (label, endpoints) in [("A while B sleeps on its share", &sleepy), ("A while B spins on its share", &spinner)] {
        let stop = Arc::new(AtomicBool::new(false));
        let (callers, counts) = flood(&b_client, endpoints, &stop);
        // Let B fill its share before measuring.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let loaded = measure_a(&a_client, &a_endpoint).await;
        report(label, &loaded, &unloaded);
        stop.store(true, Ordering::Relaxed);
        for caller in callers {
            caller.abort();
        }
        let [served, refused, failed] = &*counts;
        println!(
            "  {:<34} B: {} answered, {} refused with 429, {} failed",
            "",
            served.load(Ordering::Relaxed),
            refused.load(Ordering::Relaxed),
            failed.load(Ordering::Relaxed)
        );
        // The sleeping instances end at their deadline; wait for B's share to drain.
        tokio::time::sleep(Duration::from_secs(if label.contains("sleeps") { 21 } else { 2 })).await;
    }

    // The queue: B has 10,000 sleeping tasks due; A's tasks are queued one at a time.
    let state = server.state();
    let store = &state.store;
    let b_id = store.integration("sleepy").await.unwrap().unwrap().id;
    let a = store.integration("hello").await.unwrap().unwrap();
    let job = |integration_id: &str, name: &str, due_at: i64| NewJob {
        id: weft::ids::random("job_", 20),
        integration_id: integration_id.to_owned(),
        integration: name.to_owned(),
        installation_id: None,
        event: json!({"type": "task", "task": {}}),
        due_at,
        max_attempts: 1,
        idempotency_key: None,
    };
    let backlog: Vec<NewJob> = (0..B_QUEUED).map(|_| job(&b_id, "sleepy", now_ms())).collect();
    state.queue.enqueue(store, &backlog).await.unwrap();
    let tasks = EventFilter { event_type: Some("task"), ..Default::default() };
    let mut delays = Vec::new();
    for _ in 0..A_TASKS {
        let before = store.events(&a.id, &tasks, "", 1).await.unwrap().total;
        let due = now_ms();
        state.queue.enqueue(store, &[job(&a.id, "hello", due)]).await.unwrap();
        let started = loop {
            state.events.flush().await;
            let page = store.events(&a.id, &tasks, "", 1).await.unwrap();
            if page.total > before
                && let Some(event) = page.events.first()
            {
                break event.created_at;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        delays.push(started - due);
    }
    delays.sort();
    let waiting = store.queued_jobs_of(&b_id, i64::MAX).await.unwrap();
    println!(
        "  {:<34} A's due task started after p50 {} ms, max {} ms ({A_TASKS} tasks; B still had {waiting} queued or running)",
        "A while B has 10,000 queued",
        delays[delays.len() / 2],
        delays[delays.len() - 1]
    );
    std::process::exit(0);
}
