//! The soak run (`scripts/soak`): three `weft serve` replicas on one PostgreSQL under steady
//! load, replicas killed with SIGKILL and restarted at random, PostgreSQL restarted once; then
//! the counts that must hold.
//!
//! The load, spread over the live replicas: tasks queued through `POST …/tasks` (`{"n": i}`),
//! host-product events through `POST /v1/orgs/{org}/events` (`Soak.Event`, `{"n": i}`) that
//! both the probe integration (installed, subscribed) and an application's webhook receive,
//! and a cron schedule firing every two seconds. A request that fails (its replica died, or
//! the database is restarting) is sent again to another replica until one accepts it.
//!
//! At the end every accepted task and event must be in the probe's events log (the probe logs
//! `task {…}` and `event Soak.Event {…}`), every accepted event delivered to the webhook, each
//! cron tick enqueued exactly once (its job row, kept by its idempotency key) and run, and no
//! job dead-lettered. Runs of one job twice (its replica died before settling it) are allowed
//! — the queue is at-least-once — and counted.
//!
//! `WEFT_SOAK_SECS` (default 180) sets the load's duration; `WEFT_TEST_POSTGRES_URL` the
//! PostgreSQL server (a fresh database is created and dropped); `WEFT_SOAK_PG_RESTART` the
//! command that restarts PostgreSQL (default `pg_ctlcluster --skip-systemctl-redirect
//! <version> main restart`). Exits non-zero when a count does not hold.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rand::Rng as _;
use serde_json::{Value, json};
use sqlx::{Connection as _, Row as _};
use tokio::process::{Child, Command};

const TOKEN: &str = "soak-admin-token";
const REPLICAS: usize = 3;
const POSTERS: usize = 4;

/// One replica: its port (kept across restarts) and its process while it runs.
struct Replica {
    port: u16,
    child: Option<Child>,
}

impl Replica {
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn start(&mut self, database_url: &str) {
        let child = Command::new(env!("CARGO_BIN_EXE_weft"))
            .args(["serve", "--bind", &format!("127.0.0.1:{}", self.port), "--database-url", database_url])
            .args(["--job-lease-secs", "3", "--allow-private-outbound", "true"])
            .env("WEFT_ADMIN_TOKEN", TOKEN)
            .env("WEFT_SECRET_KEY", "44".repeat(32))
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn weft serve");
        self.child = Some(child);
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = client.get(format!("{}/readyz", self.url())).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            assert!(Instant::now() < deadline, "replica on port {} never became ready", self.port);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.start_kill().unwrap(); // SIGKILL: no graceful shutdown, leases left behind
            child.wait().await.unwrap();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The ports of the replicas that are up (shared with the posters).
type LivePorts = Arc<Mutex<Vec<u16>>>;

/// Sends `body` to `path` on a live replica until one answers `expected`.
async fn deliver(client: &reqwest::Client, live: &LivePorts, path: &str, body: &Value, expected: u16) {
    // A delivery claimed by a killed replica waits out its lease (60 s) before it is sent again.
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let port = {
            let ports = live.lock().unwrap();
            ports.get(rand::thread_rng().gen_range(0..ports.len().max(1))).copied()
        };
        if let Some(port) = port {
            let sent = client
                .post(format!("http://127.0.0.1:{port}{path}"))
                .bearer_auth(TOKEN)
                .json(body)
                .timeout(Duration::from_secs(10))
                .send()
                .await;
            if sent.as_ref().is_ok_and(|r| r.status().as_u16() == expected) {
                return;
            }
        }
        assert!(Instant::now() < deadline, "no replica accepted {path} for two minutes");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The webhook receiver: which event numbers arrived, and how many times.
async fn receiver() -> (String, Arc<Mutex<BTreeMap<u64, usize>>>) {
    let seen: Arc<Mutex<BTreeMap<u64, usize>>> = Arc::default();
    let handler_seen = seen.clone();
    let app = axum::Router::new().fallback(move |body: String| {
        let seen = handler_seen.clone();
        async move {
            let body: Value = serde_json::from_str(&body).unwrap_or_default();
            if let Some(n) = body["payload"]["n"].as_u64() {
                *seen.lock().unwrap().entry(n).or_default() += 1;
            }
            axum::http::StatusCode::OK
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

fn probe_wasm() -> Vec<u8> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/target/wasm32-wasip1/release/probe.wasm");
    std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e} (run scripts/build-examples probe)"))
}

fn postgres_restart_command() -> String {
    std::env::var("WEFT_SOAK_PG_RESTART").unwrap_or_else(|_| {
        let version = std::fs::read_dir("/etc/postgresql")
            .ok()
            .and_then(|mut versions| versions.next())
            .and_then(|entry| entry.ok())
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .unwrap_or_else(|| "15".into());
        format!("pg_ctlcluster --skip-systemctl-redirect {version} main restart")
    })
}

async fn setup(url: &str, receiver_url: &str) {
    let client = reqwest::Client::new();
    let call = |path: &str, body: Value| {
        let request = client.post(format!("{url}{path}")).bearer_auth(TOKEN).json(&body);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            let text = response.text().await.unwrap();
            assert!(status.is_success(), "{status}: {text}");
            serde_json::from_str::<Value>(&text).unwrap_or_default()
        }
    };
    call("/v1/orgs", json!({"id": "soak", "title": "Soak"})).await;
    call(
        "/v1/integrations/probe",
        json!({
            "title": "Probe", "description": "Logs every task and event.", "organization": "soak", "scopes": [], "visibility": "private",
            "events": ["Soak.Event"],
            "schedules": [{"cron": "*/2 * * * * *", "task": {"cron": true}}],
            "script": BASE64.encode(probe_wasm()),
        }),
    )
    .await;
    call("/v1/integrations/probe/installations", json!({"organization": "soak"})).await;
    let app =
        call("/api/http/applications", json!({"name": "soak", "organization": "soak", "endpointUri": receiver_url}))
            .await;
    let app_id = app["id"].as_str().unwrap();
    call(
        &format!("/api/http/applications/{app_id}/webhooks"),
        json!({"name": "soak", "subscriptions": [{"eventTypeCodes": ["Soak.Event"]}]}),
    )
    .await;
}

/// What the probe's events log shows.
#[derive(Default)]
struct Logged {
    tasks: BTreeMap<u64, usize>,
    events: BTreeMap<u64, usize>,
    cron_ticks: BTreeMap<i64, usize>,
}

async fn read_log(db: &mut sqlx::PgConnection) -> Logged {
    let rows = sqlx::query(
        "SELECT e.logs FROM events e JOIN integrations i ON i.id = e.integration_id \
                            WHERE i.name = 'probe' AND e.status = 'success'",
    )
    .fetch_all(&mut *db)
    .await
    .unwrap();
    let mut logged = Logged::default();
    for row in rows {
        let logs: Value = serde_json::from_str(&row.get::<String, _>("logs")).unwrap_or_default();
        for line in logs.as_array().into_iter().flatten() {
            let message = line["message"].as_str().unwrap_or_default();
            let (map_json, is_event) = if let Some(rest) = message.strip_prefix("task ") {
                (rest, false)
            } else if let Some(rest) = message.strip_prefix("event Soak.Event ") {
                (rest, true)
            } else {
                continue;
            };
            let value: Value = serde_json::from_str(map_json).unwrap_or_default();
            if let Some(tick) = value["cronTick"].as_i64() {
                *logged.cron_ticks.entry(tick).or_default() += 1;
            } else if let Some(n) = value["n"].as_u64() {
                *(if is_event { &mut logged.events } else { &mut logged.tasks }).entry(n).or_default() += 1;
            }
        }
    }
    logged
}

async fn count(db: &mut sqlx::PgConnection, sql: &str) -> i64 {
    sqlx::query(sql).fetch_one(&mut *db).await.map(|row| row.get::<i64, _>(0)).unwrap_or(-1)
}

/// `(key, count)` rows of a `SELECT key, count(*) … GROUP BY` query.
async fn counts_by(db: &mut sqlx::PgConnection, sql: &str) -> Vec<(String, i64)> {
    sqlx::query(sql).fetch_all(&mut *db).await.unwrap().into_iter().map(|row| (row.get(0), row.get(1))).collect()
}

#[tokio::main]
async fn main() {
    let secs: u64 = std::env::var("WEFT_SOAK_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(180);
    let admin_url = std::env::var("WEFT_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let name = format!("weft_soak_{}", std::process::id());
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.expect("PostgreSQL is needed for the soak");
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.unwrap();
    let base = admin_url.rsplit_once('/').map_or(admin_url.as_str(), |(base, _)| base);
    let database_url = format!("{base}/{name}");

    println!("soak: {secs} s of load on {REPLICAS} replicas over PostgreSQL ({name})");
    let (receiver_url, delivered) = receiver().await;
    let mut replicas: Vec<Replica> = (0..REPLICAS).map(|_| Replica { port: free_port(), child: None }).collect();
    for replica in &mut replicas {
        replica.start(&database_url).await;
    }
    setup(&replicas[0].url(), &receiver_url).await;
    let started_ms = chrono::Utc::now().timestamp_millis();

    let live: LivePorts = Arc::new(Mutex::new(replicas.iter().map(|r| r.port).collect()));
    let next = Arc::new(AtomicUsize::new(0));
    let accepted_tasks: Arc<Mutex<BTreeSet<u64>>> = Arc::default();
    let accepted_events: Arc<Mutex<BTreeSet<u64>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let client = reqwest::Client::new();
    let mut posters = tokio::task::JoinSet::new();
    for _ in 0..POSTERS {
        let (client, live, next, stop) = (client.clone(), live.clone(), next.clone(), stop.clone());
        let (tasks, events) = (accepted_tasks.clone(), accepted_events.clone());
        posters.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let n = next.fetch_add(1, Ordering::Relaxed) as u64;
                if n % 2 == 0 {
                    deliver(&client, &live, "/v1/integrations/probe/tasks", &json!({"task": {"n": n}}), 204).await;
                    tasks.lock().unwrap().insert(n);
                } else {
                    let event = json!({"type": "Soak.Event", "payload": {"n": n}});
                    deliver(&client, &live, "/v1/orgs/soak/events", &event, 202).await;
                    events.lock().unwrap().insert(n);
                }
            }
        });
    }

    // Chaos: one replica at a time is killed and restarted; PostgreSQL restarts once, midway.
    let until = Instant::now() + Duration::from_secs(secs);
    let midway = Instant::now() + Duration::from_secs(secs / 2);
    let (mut kills, mut postgres_restarted) = (0, false);
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(rand::thread_rng().gen_range(3_000..10_000))).await;
        if !postgres_restarted && Instant::now() >= midway {
            let command = postgres_restart_command();
            let status = std::process::Command::new("sh").args(["-c", &command]).status().unwrap();
            println!("restarted PostgreSQL ({command}): {status}");
            postgres_restarted = status.success();
            continue;
        }
        let victim = rand::thread_rng().gen_range(0..REPLICAS);
        live.lock().unwrap().retain(|port| *port != replicas[victim].port);
        replicas[victim].kill().await;
        kills += 1;
        tokio::time::sleep(Duration::from_millis(rand::thread_rng().gen_range(500..3_000))).await;
        replicas[victim].start(&database_url).await;
        live.lock().unwrap().push(replicas[victim].port);
    }
    stop.store(true, Ordering::Relaxed);
    while posters.join_next().await.is_some() {}
    let ended_ms = chrono::Utc::now().timestamp_millis();
    let (tasks, events) = (accepted_tasks.lock().unwrap().clone(), accepted_events.lock().unwrap().clone());
    println!("load over: {} tasks and {} events accepted, {kills} replicas killed", tasks.len(), events.len());

    // Drain: the queue empties, every delivery settles, every accepted event reaches the receiver.
    let mut db = sqlx::PgConnection::connect(&database_url).await.unwrap();
    // A delivery claimed by a killed replica waits out its lease (60 s) before it is sent again.
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let pending = count(&mut db, "SELECT count(*) FROM jobs WHERE status IN ('queued', 'running')").await
            + count(&mut db, "SELECT count(*) FROM application_deliveries WHERE status = 'pending'").await;
        let received = delivered.lock().unwrap().len();
        // A tick just before the end is enqueued up to a second after it (the cron loop's
        // period): the queue counts as drained only once that tick is in it.
        let tick_enqueued = chrono::Utc::now().timestamp_millis() > ended_ms + 2_500;
        if pending == 0 && received >= events.len() && tick_enqueued {
            break;
        }
        if Instant::now() > deadline {
            println!(
                "drain timed out: {pending} jobs and deliveries pending, {received} of {} events delivered",
                events.len()
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let logged = read_log(&mut db).await;
    let delivery_states =
        counts_by(&mut db, "SELECT status, count(*) FROM application_deliveries GROUP BY status ORDER BY 1").await;
    println!("delivery log by status: {delivery_states:?}");
    let undelivered: Vec<u64> = {
        let delivered = delivered.lock().unwrap();
        events.iter().filter(|n| !delivered.contains_key(n)).take(5).copied().collect()
    };
    for n in undelivered {
        let rows = sqlx::query(
            "SELECT id, status, attempts, last_status, last_error, lease_until, next_attempt_at FROM application_deliveries \
             WHERE body LIKE $1",
        )
        .bind(format!("%\"n\":{n}}}%"))
        .fetch_all(&mut db)
        .await
        .unwrap();
        let rows: Vec<String> = rows
            .iter()
            .map(|r| {
                format!(
                    "{} {} attempts={} last_status={:?} last_error={:?} lease_until={:?} next={:?}",
                    r.get::<String, _>(0),
                    r.get::<String, _>(1),
                    r.get::<i64, _>(2),
                    r.get::<Option<i64>, _>(3),
                    r.get::<Option<String>, _>(4),
                    r.get::<Option<i64>, _>(5),
                    r.get::<i64, _>(6)
                )
            })
            .collect();
        println!("event {n} not delivered: {rows:?}");
    }
    let dead = count(&mut db, "SELECT count(*) FROM jobs WHERE status = 'dead'").await;
    let cron_jobs =
        counts_by(&mut db, "SELECT idempotency_key, count(*) FROM jobs WHERE idempotency_key LIKE 'cron:%' GROUP BY 1")
            .await;
    let delivered = delivered.lock().unwrap().clone();

    let missing = |accepted: &BTreeSet<u64>, seen: &BTreeMap<u64, usize>| {
        accepted.iter().filter(|n| !seen.contains_key(n)).count()
    };
    let twice = |seen: &BTreeMap<u64, usize>| seen.values().filter(|&&runs| runs > 1).count();
    let (tasks_missing, events_missing) = (missing(&tasks, &logged.tasks), missing(&events, &logged.events));
    let deliveries_missing = missing(&events, &delivered);
    // Ticks inside the load window, two seconds apart; those at the edges may or may not fall in.
    let expected_ticks = (ended_ms - started_ms) / 2_000;
    let tick_of = |key: &str| key.split(':').nth(2).and_then(|tick| tick.parse::<i64>().ok());
    let ticks_in_window =
        cron_jobs.iter().filter_map(|(key, _)| tick_of(key)).filter(|t| (started_ms..=ended_ms).contains(t)).count();
    let ticks_fired_twice = cron_jobs.iter().filter(|(_, jobs)| *jobs > 1).count();
    let not_run: Vec<i64> = cron_jobs
        .iter()
        .filter_map(|(key, _)| tick_of(key))
        .filter(|tick| !logged.cron_ticks.contains_key(tick))
        .collect();
    let ticks_not_run = not_run.len();
    for tick in not_run.iter().take(5) {
        let job = sqlx::query(
            "SELECT status, attempts, due_at, last_error, updated_at FROM jobs WHERE idempotency_key LIKE $1",
        )
        .bind(format!("cron:%:{tick}:%"))
        .fetch_one(&mut db)
        .await
        .map(|r| {
            format!(
                "status={} attempts={} due_at={} last_error={:?} updated_at={}",
                r.get::<String, _>(0),
                r.get::<i64, _>(1),
                r.get::<i64, _>(2),
                r.get::<Option<String>, _>(3),
                r.get::<i64, _>(4)
            )
        });
        let events: Vec<String> = sqlx::query(&format!("SELECT status, logs FROM events WHERE logs LIKE '%{tick}%'"))
            .fetch_all(&mut db)
            .await
            .unwrap()
            .iter()
            .map(|r| format!("{} {}", r.get::<String, _>(0), r.get::<String, _>(1)))
            .collect();
        println!("cron tick {tick} not in the log as a success: job {job:?}; events mentioning it: {events:?}");
    }

    println!(
        "tasks       accepted {:>6}  in the log {:>6}  missing {tasks_missing}  run twice {}",
        tasks.len(),
        logged.tasks.len(),
        twice(&logged.tasks)
    );
    println!(
        "events      accepted {:>6}  in the log {:>6}  missing {events_missing}  run twice {}",
        events.len(),
        logged.events.len(),
        twice(&logged.events)
    );
    println!(
        "deliveries  accepted {:>6}  delivered  {:>6}  missing {deliveries_missing}  delivered twice {}",
        events.len(),
        delivered.len(),
        twice(&delivered)
    );
    println!(
        "cron        ~{expected_ticks} ticks in the window  enqueued {ticks_in_window}  fired twice {ticks_fired_twice}  enqueued but not run {ticks_not_run}  run twice {}",
        twice(&logged.cron_ticks.iter().map(|(&t, &c)| (t as u64, c)).collect())
    );
    println!("dead jobs   {dead}   replicas killed {kills}   PostgreSQL restarted {}", u8::from(postgres_restarted));

    for replica in &mut replicas {
        replica.kill().await;
    }
    drop(db);
    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut admin).await;

    // A tick missed while no replica could reach the database fires late, once: a few may be skipped.
    let cron_short = (ticks_in_window as i64) < expected_ticks - 5;
    let failed = tasks_missing + events_missing + deliveries_missing + ticks_fired_twice + ticks_not_run > 0
        || dead != 0
        || cron_short
        || !postgres_restarted && secs >= 20;
    if failed {
        println!("SOAK FAILED");
        std::process::exit(1);
    }
    println!("soak passed: nothing lost, no tick fired twice");
}
