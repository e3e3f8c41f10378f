//! Queue throughput and lateness, on SQLite and on PostgreSQL.
//!
//! `cargo bench --bench queue` enqueues 20,000 due tasks for a trivial integration and
//! measures tasks per second until all are done (saturated), then 2,000 tasks spread over two
//! seconds (not saturated) for lateness (due → start). The baseline, measured in the same
//! run, is the same 20,000 task events dispatched straight into the runtime with the same
//! concurrency and no queue: the ratio is what durability costs.
//!
//! PostgreSQL: `WEFT_TEST_POSTGRES_URL` (default postgres://postgres@127.0.0.1:5432/postgres);
//! a fresh database is created and dropped.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use sqlx::Connection as _;
use weft::config::ServerConfig;
use weft::server::Server;
use weft::store::{NewJob, Store, now_ms};
use weft_runtime::{Limits, NoHostServices, Runtime, RuntimeConfig};

const SATURATED_TASKS: usize = 20_000;
const STEADY_TASKS: usize = 2_000;
const STEADY_SECONDS: u64 = 2;
const WORKERS: usize = 64;
const TRIVIAL: &str = r#"(module (memory (export "memory") 1) (data (i32.const 0) "{}")
    (func (export "weft_alloc") (param i32) (result i32) (i32.const 4096))
    (func (export "weft_handle") (param i32 i32) (result i64) (i64.const 2)))"#;

fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn task(integration_id: &str, n: usize, due_at: i64) -> NewJob {
    NewJob {
        id: format!("job_bench_{n:06}_{due_at}"),
        integration_id: integration_id.to_owned(),
        integration: "trivial".to_owned(),
        installation_id: None,
        event: json!({"type": "task", "task": {"n": n}}),
        due_at,
        max_attempts: 1,
        idempotency_key: None,
    }
}

async fn drain(store: &Store, deadline: Duration) {
    let until = Instant::now() + deadline;
    while store.queue_depth().await.unwrap() > 0 {
        assert!(Instant::now() < until, "the queue did not drain in time");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

struct Figures {
    tasks_per_second: f64,
    saturated: (i64, i64),
    steady: (i64, i64),
}

async fn measure(database_url: &str, secret_key: Option<String>) -> Figures {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServerConfig {
        bind: "127.0.0.1:0".into(),
        database_url: database_url.replace("{dir}", &dir.path().display().to_string()),
        admin_token: Some("bench".into()),
        secret_key,
        ..ServerConfig::default()
    };
    config.queue.workers = WORKERS;
    config.queue.poll_interval = Duration::from_millis(10);
    let server = Server::start(config.clone()).await.unwrap();
    let client = reqwest::Client::new();
    let url = server.url();
    client
        .post(format!("{url}/v1/orgs"))
        .bearer_auth("bench")
        .json(&json!({"id": "bench", "title": "Bench"}))
        .send()
        .await
        .unwrap();
    let script = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, wat::parse_str(TRIVIAL).unwrap());
    let published = client
        .post(format!("{url}/v1/integrations/trivial"))
        .bearer_auth("bench")
        .json(&json!({"title": "Trivial", "description": "d", "organization": "bench", "script": script}))
        .send()
        .await
        .unwrap();
    assert!(published.status().is_success());
    let store = Store::connect(&config.database_url).await.unwrap();
    let queue = server_queue(&server);
    let trivial = store.integration("trivial").await.unwrap().expect("published").id;

    // Saturated: everything due at once.
    let now = now_ms();
    let jobs: Vec<NewJob> = (0..SATURATED_TASKS).map(|n| task(&trivial, n, now)).collect();
    let started = Instant::now();
    store.enqueue(&jobs).await.unwrap();
    queue.notify();
    drain(&store, Duration::from_secs(600)).await;
    let elapsed = started.elapsed();
    let mut saturated = queue.take_lateness();
    saturated.sort_unstable();

    // Steady: 1,000 tasks a second, each due when it is enqueued.
    let batches = STEADY_SECONDS * 50;
    let per_batch = STEADY_TASKS / batches as usize;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    for batch in 0..batches as usize {
        tick.tick().await;
        let now = now_ms();
        let jobs: Vec<NewJob> =
            (0..per_batch).map(|i| task(&trivial, SATURATED_TASKS + batch * per_batch + i, now)).collect();
        store.enqueue(&jobs).await.unwrap();
    }
    drain(&store, Duration::from_secs(120)).await;
    let mut steady = queue.take_lateness();
    steady.sort_unstable();
    server.stop().await.unwrap();

    Figures {
        tasks_per_second: SATURATED_TASKS as f64 / elapsed.as_secs_f64(),
        saturated: (percentile(&saturated, 0.5), percentile(&saturated, 0.99)),
        steady: (percentile(&steady, 0.5), percentile(&steady, 0.99)),
    }
}

fn server_queue(server: &Server) -> weft::queue::QueueHandle {
    server.state().queue.clone()
}

/// The same task events straight into the runtime, `WORKERS` at a time: no queue, no database.
async fn direct_dispatch() -> f64 {
    let runtime =
        Arc::new(Runtime::new(RuntimeConfig { max_instances: WORKERS as u32, ..Default::default() }).unwrap());
    let module = runtime.compile(&wat::parse_str(TRIVIAL).unwrap()).unwrap();
    let started = Instant::now();
    let mut running = tokio::task::JoinSet::new();
    for n in 0..SATURATED_TASKS {
        let (runtime, module) = (runtime.clone(), module.clone());
        running.spawn(async move {
            let input = serde_json::to_vec(
                &json!({"abi": 1, "event": {"eventId": "e", "type": "task", "task": {"n": n}}, "environment": {}}),
            )
            .unwrap();
            runtime.run(&module, &input, &Limits::default(), Arc::new(NoHostServices)).await.unwrap();
        });
        if running.len() >= WORKERS {
            running.join_next().await.unwrap().unwrap();
        }
    }
    while running.join_next().await.is_some() {}
    SATURATED_TASKS as f64 / started.elapsed().as_secs_f64()
}

async fn fresh_postgres() -> Option<(String, String, String)> {
    let admin = std::env::var("WEFT_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let mut connection = sqlx::PgConnection::connect(&admin).await.ok()?;
    let name = format!("weft_bench_{}", std::process::id());
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name}")).execute(&mut connection).await.ok()?;
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut connection).await.ok()?;
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(base, _)| base).to_owned();
    Some((format!("{base}/{name}"), admin, name))
}

fn report(backend: &str, figures: &Figures, baseline: f64) {
    println!(
        "{backend:<10} {:>8.0} tasks/s (goal ≥ 2000)  ratio vs direct dispatch {:.2}  \
         lateness saturated p50 {} ms p99 {} ms  steady ({} tasks/s) p50 {} ms p99 {} ms (goal p99 < 250)",
        figures.tasks_per_second,
        figures.tasks_per_second / baseline,
        figures.saturated.0,
        figures.saturated.1,
        STEADY_TASKS as u64 / STEADY_SECONDS,
        figures.steady.0,
        figures.steady.1,
    );
}

#[tokio::main]
async fn main() {
    let baseline = direct_dispatch().await;
    println!("queue benchmark: {SATURATED_TASKS} due tasks, {WORKERS} workers, trivial integration");
    println!("{:<10} {baseline:>8.0} tasks/s  (baseline: direct dispatch into the runtime, no queue)", "direct");
    let sqlite = measure("sqlite://{dir}/bench.db", None).await;
    report("sqlite", &sqlite, baseline);
    match fresh_postgres().await {
        Some((url, admin, name)) => {
            let postgres = measure(&url, Some("33".repeat(32))).await;
            report("postgres", &postgres, baseline);
            if let Ok(mut connection) = sqlx::PgConnection::connect(&admin).await {
                let _ =
                    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut connection).await;
            }
        }
        None => println!("postgres   skipped: no PostgreSQL server reachable"),
    }
}
