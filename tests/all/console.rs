//! The web console: its pages' security headers, the endpoints it added (task retry,
//! visible integrations, versions, stats) with their authorization on SQLite and
//! PostgreSQL, and a real headless Chromium driving it (`tests/clients/console.mjs`).

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use weft::store::now_ms;

use crate::api_support::user_token;
use crate::support::{TestApp, fresh_postgres, hello_wasm, probe_wasm, spawn_app_with};

async fn app_on(database_url: Option<String>) -> TestApp {
    spawn_app_with(|config| {
        config.queue.backoff_base = Duration::from_millis(20);
        config.queue.max_attempts = 3;
        config.queue.poll_interval = Duration::from_millis(20);
        if let Some(url) = database_url {
            config.database_url = url;
            config.secret_key = Some("22".repeat(32));
        }
    })
    .await
}

/// Polls `path` (as the admin) until `done` holds for its body.
async fn wait_until(app: &TestApp, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = app.call("GET", path, None).await;
        assert_eq!(status, 200, "{body}");
        if done(&body) {
            return body;
        }
        assert!(Instant::now() < deadline, "{path} never got there: {body}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn task_events(body: &Value) -> usize {
    body["items"].as_array().unwrap().iter().filter(|e| e["type"] == "task").count()
}

#[tokio::test]
async fn every_console_response_carries_a_strict_policy() {
    let app = app_on(None).await;
    for (path, status, content_type) in [
        ("/console", 200, "text/html; charset=utf-8"),
        ("/console/console.js", 200, "text/javascript; charset=utf-8"),
        ("/console/console.css", 200, "text/css; charset=utf-8"),
        ("/console/icon.svg", 200, "image/svg+xml"),
        ("/console/no-such-page", 404, "text/plain; charset=utf-8"),
    ] {
        let response = app.client.get(format!("{}{path}", app.url)).send().await.unwrap();
        assert_eq!(response.status(), status, "{path}");
        let header = |name: &str| response.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(
            header("content-security-policy").as_deref(),
            Some(weft::console::CONTENT_SECURITY_POLICY),
            "{path}"
        );
        assert_eq!(header("x-frame-options").as_deref(), Some("DENY"), "{path}");
        assert_eq!(header("x-content-type-options").as_deref(), Some("nosniff"), "{path}");
        assert_eq!(header("content-type").as_deref(), Some(content_type), "{path}");
        assert_eq!(header("set-cookie"), None, "{path}");
    }
    let policy = weft::console::CONTENT_SECURITY_POLICY;
    assert!(policy.contains("default-src 'self'") && policy.contains("frame-ancestors 'none'"));
    assert!(!policy.contains("unsafe-inline") && !policy.contains("unsafe-eval"));
    // The shell has no inline script or style for the policy to refuse.
    let html = app.client.get(format!("{}/console", app.url)).send().await.unwrap().text().await.unwrap();
    assert!(!html.contains("<style") && !html.contains("style=") && !html.contains("<script>"), "{html}");
    app.stop().await;
}

#[tokio::test]
async fn a_dead_task_runs_again_only_for_those_who_may_queue_it() {
    a_dead_task_runs_again(None).await;
}

#[tokio::test]
async fn a_dead_task_runs_again_on_postgres() {
    let database = fresh_postgres().await;
    a_dead_task_runs_again(Some(database.url.clone())).await;
}

async fn a_dead_task_runs_again(database_url: Option<String>) {
    let app = app_on(database_url).await;
    app.create_org("acme").await;
    app.create_org("globex").await;
    let published = app.publish("probe", "acme", probe_wasm()).await;
    let integration_token = published["token"].as_str().unwrap().to_owned();
    let member = user_token(&app, "mia", "acme", "member").await;
    let outsider = user_token(&app, "otto", "globex", "admin").await;
    let (status, _) = app.call("POST", "/v1/integrations/probe/tasks", Some(json!({"task": {"fail": true}}))).await;
    assert_eq!(status, 204);
    let dead = wait_until(&app, "/v1/integrations/probe/tasks?status=dead", |b| b["count"] == 1).await;
    let id = dead["items"][0]["id"].as_str().unwrap().to_owned();
    let retry = format!("/v1/integrations/probe/tasks/{id}/retry");

    let (status, body) = app.call_as(Some(&outsider), "POST", &retry, None).await;
    assert_eq!(status, 404, "another organization does not see a private integration: {body}");
    let (status, body) = app.call_as(Some(&outsider), "GET", "/v1/integrations/probe/tasks?status=dead", None).await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = app.call_as(Some(&member), "POST", &retry, None).await;
    assert_eq!(status, 403, "a member may not run tasks: {body}");
    let (status, _) = app.call_as(None, "POST", &retry, None).await;
    assert_eq!(status, 401);
    let (status, _) = app.call("POST", "/v1/integrations/probe/tasks/job_none/retry", None).await;
    assert_eq!(status, 404);

    let (status, again) = app.call_as(Some(&integration_token), "POST", &retry, None).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["id"], id.as_str());
    // It runs again, three more attempts, and is dead-lettered again.
    wait_until(&app, "/v1/integrations/probe/events?limit=100", |b| task_events(b) == 6).await;
    let dead = wait_until(&app, "/v1/integrations/probe/tasks?status=dead", |b| b["count"] == 1).await;
    assert_eq!((dead["items"][0]["id"].clone(), dead["items"][0]["attempts"].clone()), (json!(id), json!(3)));

    // A task that is not dead is refused by name.
    for n in 1..=3 {
        let task = json!({"task": {"n": n}, "schedule": 3600 + n});
        let (status, _) = app.call("POST", "/v1/integrations/probe/tasks", Some(task)).await;
        assert_eq!(status, 204);
    }
    let queued = wait_until(&app, "/v1/integrations/probe/tasks?status=queued", |b| b["count"] == 3).await;
    let queued_id = queued["items"][0]["id"].as_str().unwrap();
    let (status, body) = app.call("POST", &format!("/v1/integrations/probe/tasks/{queued_id}/retry"), None).await;
    assert_eq!(status, 409, "{body}");

    // The list pages, oldest due first.
    let (status, first) = app.call("GET", "/v1/integrations/probe/tasks?status=queued&limit=2", None).await;
    assert_eq!(status, 200, "{first}");
    let page = first["next"]["page"].as_str().unwrap();
    let (_, second) =
        app.call("GET", &format!("/v1/integrations/probe/tasks?status=queued&limit=2&page={page}"), None).await;
    let tasks = |body: &Value| -> Vec<Value> {
        body["items"].as_array().unwrap().iter().map(|t| t["event"]["task"]["n"].clone()).collect()
    };
    assert_eq!((tasks(&first), tasks(&second)), (vec![json!(1), json!(2)], vec![json!(3)]));
    assert!(second.get("next").is_none(), "{second}");
    let (status, _) = app.call("GET", "/v1/integrations/probe/tasks?status=queued&page=nonsense", None).await;
    assert_eq!(status, 400);
    app.stop().await;
}

#[tokio::test]
async fn a_token_lists_only_the_integrations_it_operates_with_their_versions() {
    let app = app_on(None).await;
    app.create_org("acme").await;
    app.create_org("globex").await;
    let first = app.publish("hello", "acme", hello_wasm()).await;
    let hello_token = first["token"].as_str().unwrap().to_owned();
    app.publish("hello", "acme", hello_wasm()).await;
    app.publish("rival", "globex", hello_wasm()).await;
    let ada = user_token(&app, "ada", "acme", "member").await;

    let names = |body: &Value| -> Vec<String> {
        body["items"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap().to_owned()).collect()
    };
    let (status, all) = app.call("GET", "/v1/user/integrations", None).await;
    assert_eq!((status, names(&all)), (200, vec!["hello".to_owned(), "rival".to_owned()]));
    let (status, mine) = app.call_as(Some(&ada), "GET", "/v1/user/integrations", None).await;
    assert_eq!((status, names(&mine), mine["count"].clone()), (200, vec!["hello".to_owned()], json!(1)));
    let (status, itself) = app.call_as(Some(&hello_token), "GET", "/v1/user/integrations", None).await;
    assert_eq!((status, names(&itself)), (200, vec!["hello".to_owned()]), "an integration token sees itself");
    let (_, searched) = app.call("GET", "/v1/user/integrations?search=RIV", None).await;
    assert_eq!(names(&searched), ["rival"]);
    let (_, first) = app.call("GET", "/v1/user/integrations?limit=1", None).await;
    assert_eq!((names(&first), first["next"]["page"].clone()), (vec!["hello".to_owned()], json!("hello")));
    let (_, second) = app.call("GET", "/v1/user/integrations?limit=1&page=hello", None).await;
    assert_eq!(names(&second), ["rival"]);
    let (status, _) = app.call_as(Some(&ada), "GET", "/v1/user/integrations?limit=0", None).await;
    assert_eq!(status, 400);

    let (status, versions) = app.call_as(Some(&ada), "GET", "/v1/integrations/hello/versions", None).await;
    assert_eq!(status, 200, "{versions}");
    let listed: Vec<(Value, Value)> =
        versions["items"].as_array().unwrap().iter().map(|v| (v["version"].clone(), v["current"].clone())).collect();
    assert_eq!(listed, [(json!(2), json!(true)), (json!(1), json!(false))]);
    assert_eq!(versions["items"][0]["size"], json!(hello_wasm().len()));
    assert_eq!(versions["items"][0]["sha256"].as_str().unwrap().len(), 64);
    // What publish answered of each module is kept with its version.
    assert_eq!(
        (versions["items"][0]["abi"].clone(), versions["items"][0]["snapshot"].clone()),
        (json!(2), json!(true))
    );
    assert!(versions["items"][0].get("snapshotReason").is_none(), "{versions}");
    let published = app.publish("trapper", "acme", &crate::support::fixture("hostile/v2_init_traps")).await;
    let (status, trapper) = app.call_as(Some(&ada), "GET", "/v1/integrations/trapper/versions", None).await;
    assert_eq!(status, 200, "{trapper}");
    let listed = &trapper["items"][0];
    assert_eq!((listed["abi"].clone(), listed["snapshot"].clone()), (json!(2), json!(false)));
    assert_eq!(listed["snapshotReason"], published["module"]["snapshotReason"]);
    assert!(listed["snapshotReason"].as_str().unwrap().contains("weft_init"), "{listed}");
    let (status, _) = app.call_as(Some(&ada), "GET", "/v1/integrations/rival/versions", None).await;
    assert_eq!(status, 404, "a private integration of another organization is not there");
    app.stop().await;
}

/// Events, failures by kind, percentiles and queue depth, computed by the database.
async fn stats_are_computed_and_scoped(database_url: Option<String>) {
    let app = app_on(database_url).await;
    app.create_org("acme").await;
    app.create_org("globex").await;
    app.publish("probe", "acme", probe_wasm()).await;
    app.publish("other", "globex", hello_wasm()).await;
    let member = user_token(&app, "mia", "acme", "member").await;
    let outsider = user_token(&app, "otto", "globex", "admin").await;
    for task in [json!({"n": 1}), json!({"n": 2}), json!({"fail": true})] {
        let (status, _) = app.call("POST", "/v1/integrations/probe/tasks", Some(json!({"task": task}))).await;
        assert_eq!(status, 204);
    }
    wait_until(&app, "/v1/integrations/probe/tasks?status=dead", |b| b["count"] == 1).await;
    wait_until(&app, "/v1/integrations/probe/events?limit=100", |b| task_events(b) == 5).await;
    app.state().store.sample_queue_depth(now_ms() / 60_000 * 60_000, 0).await.unwrap();

    let (status, stats) = app.call_as(Some(&member), "GET", "/v1/integrations/probe/stats", None).await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!((stats["window"].clone(), stats["bucketSeconds"].clone()), (json!("hour"), json!(60)));
    assert_eq!((stats["events"]["total"].clone(), stats["events"]["failed"].clone()), (json!(5), json!(3)));
    let buckets = stats["events"]["buckets"].as_array().unwrap();
    assert!((60..=62).contains(&buckets.len()), "{} buckets", buckets.len());
    let sum = |key: &str| buckets.iter().map(|b| b[key].as_i64().unwrap()).sum::<i64>();
    assert_eq!((sum("success"), sum("failed"), sum("dead")), (2, 2, 1));
    assert_eq!(stats["failures"], json!([{"kind": "handler_error", "count": 3, "rate": 0.6}]));
    let p = |name: &str| stats["duration"][name].as_f64().unwrap();
    assert!(p("p50") > 0.0 && p("p50") <= p("p95") && p("p95") <= p("p99"), "{}", stats["duration"]);
    assert_eq!(stats["queue"]["now"], json!({"queued": 0, "running": 0, "dead": 1}));
    // The server's own sampler may have taken a sample of its own once a minute began.
    let samples = stats["queue"]["samples"].as_array().unwrap();
    assert!(samples.iter().any(|s| s["dead"] == 1), "{samples:?}");

    let (status, day) = app.call_as(Some(&member), "GET", "/v1/orgs/acme/stats?window=day", None).await;
    assert_eq!(status, 200, "{day}");
    assert_eq!((day["bucketSeconds"].clone(), day["events"]["total"].clone()), (json!(1800), json!(5)));
    let (status, server) = app.call("GET", "/v1/stats", None).await;
    assert_eq!(status, 200, "{server}");
    assert_eq!(server["events"]["total"], 5, "the globex integration has no events");
    let (status, empty) = app.call_as(Some(&outsider), "GET", "/v1/orgs/globex/stats", None).await;
    assert_eq!((status, empty["events"]["total"].clone(), empty["duration"].clone()), (200, json!(0), Value::Null));

    // Another organization sees none of acme's figures.
    for path in ["/v1/orgs/acme/stats", "/v1/stats"] {
        let (status, body) = app.call_as(Some(&outsider), "GET", path, None).await;
        assert_eq!(status, 403, "{path}: {body}");
    }
    let (status, _) = app.call_as(Some(&outsider), "GET", "/v1/integrations/probe/stats", None).await;
    assert_eq!(status, 404);
    let (status, _) = app.call_as(Some(&member), "GET", "/v1/stats", None).await;
    assert_eq!(status, 403);
    let (status, body) = app.call("GET", "/v1/stats?window=week", None).await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = app.call("GET", "/v1/orgs/nope/stats", None).await;
    assert_eq!(status, 404);
    app.stop().await;
}

#[tokio::test]
async fn stats_are_computed_and_scoped_on_sqlite() {
    stats_are_computed_and_scoped(None).await;
}

#[tokio::test]
async fn stats_are_computed_and_scoped_on_postgres() {
    let database = fresh_postgres().await;
    stats_are_computed_and_scoped(Some(database.url.clone())).await;
}

/// Puts `count` successful `fetch` events, one a second back from now, in the events log of
/// integration `integration_id`, in one statement on the SQLite file.
async fn fill_events_log(app: &TestApp, integration_id: &str, count: i64) {
    use sqlx::Connection as _;
    let mut connection = sqlx::SqliteConnection::connect(&app.database_url).await.unwrap();
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $3) \
         INSERT INTO events (id, integration_id, integration, installation_id, type, status, error_kind, \
            error_message, response_status, duration_us, logs, created_at) \
         SELECT 'evt_' || printf('%012x', $1 - i * 1000) || printf('%010d', i), $2, 'probe', NULL, 'fetch', \
            'success', NULL, NULL, 200, 1000 + i % 500, '[]', $1 - i * 1000 FROM n",
    )
    .bind(now_ms() - 60_000)
    .bind(integration_id)
    .bind(count)
    .execute(&mut connection)
    .await
    .unwrap();
}

/// An application of `acme` with a webhook whose first delivery fails (no retries), for
/// the applications page; returns the receiver.
async fn application_with_a_failed_delivery(app: &TestApp) -> crate::applications::receiver::Receiver {
    let receiver = crate::applications::receiver::receiver(&[500]).await;
    let (status, created) =
        app.call("POST", "/api/http/applications", Some(json!({"name": "Billing sync", "organization": "acme"}))).await;
    assert_eq!(status, 200, "{created}");
    let app_id = created["id"].as_str().unwrap();
    let webhook = json!({
        "name": "issues",
        "subscriptions": [{"subjectCode": "Issue", "eventTypeCodes": ["Issue.Created"]}],
        "endpoint": {"url": receiver.url},
        "doRetries": false,
    });
    let (status, body) = app.call("POST", &format!("/api/http/applications/{app_id}/webhooks"), Some(webhook)).await;
    assert_eq!(status, 200, "{body}");
    let event = json!({"type": "Issue.Created", "subject": "Issue", "issue": {"id": "ISS-1", "title": "Broken"}});
    weft::applications::publish_event(app.state(), "acme", &event).await.unwrap();
    wait_until(app, &format!("/api/http/applications/{app_id}/deliveries"), |b| b["data"][0]["status"] == "failed")
        .await;
    receiver
}

#[tokio::test]
async fn the_console_works_in_a_real_browser() {
    let app = spawn_app_with(|config| {
        config.queue.backoff_base = Duration::from_millis(20);
        config.queue.max_attempts = 3;
        config.queue.poll_interval = Duration::from_millis(20);
        // The webhook receiver listens on loopback.
        config.outbound.allow_private_addresses = true;
    })
    .await;
    app.create_org("acme").await;
    app.create_org("globex").await;
    let published = app.publish("probe", "acme", probe_wasm()).await;
    let installation = app.install("probe", "acme").await;
    let outsider = user_token(&app, "otto", "globex", "member").await;
    let (status, _) = app.call("POST", "/v1/integrations/probe/tasks", Some(json!({"task": {"fail": true}}))).await;
    assert_eq!(status, 204);
    let dead = wait_until(&app, "/v1/integrations/probe/tasks?status=dead", |b| b["count"] == 1).await;
    let dead_task = dead["items"][0]["id"].as_str().unwrap().to_owned();
    let integration_id = app.state().store.integration("probe").await.unwrap().unwrap().id;
    fill_events_log(&app, &integration_id, 10_000).await;
    let receiver = application_with_a_failed_delivery(&app).await;

    // Server time of the events page's first API call with 10,000 events in the log.
    let started = Instant::now();
    let (status, _) = app.call("GET", "/v1/integrations/probe/events?limit=25", None).await;
    let first_page = started.elapsed();
    assert_eq!(status, 200);

    let screenshots = std::env::var("WEFT_CONSOLE_SCREENSHOTS").ok();
    let input = json!({
        "url": app.url,
        "token": crate::support::ADMIN,
        "outsiderToken": outsider,
        "integrationToken": published["token"],
        "integration": "probe",
        "installation": installation["id"],
        "deadTask": dead_task,
        "tunnelUrl": "https://tunnel.example/dev",
        "screenshots": screenshots,
    });
    let seen = crate::applications::clients::run_node_async("console.mjs", input).await;
    eprintln!(
        "console: events page with 10,000 events: API first page {first_page:?}, browser {} ms to first rows, \
         {} bytes transferred; live tail showed a new event {} ms after it was queued",
        seen["eventsPageMs"], seen["eventsPageBytes"], seen["liveMs"]
    );

    assert_eq!(
        (seen["status"].clone(), seen["csp"].clone()),
        (json!(200), json!(weft::console::CONTENT_SECURITY_POLICY))
    );
    assert_eq!(seen["cspViolations"], json!([]), "{seen}");
    assert_eq!(seen["pageErrors"], json!([]), "{seen}");
    assert_eq!(seen["wrongTokenAlert"], "This is not a valid weft token.");
    assert_eq!(seen["identity"], "Signed in as operator");
    assert_eq!(seen["integrations"], json!(["probe"]));
    assert_eq!(seen["installations"], json!([installation["id"]]));
    // `failed` lists the dead-lettered run too (GitBook's statuses are success and failed).
    assert_eq!((seen["failedRows"].clone(), seen["failedRowsHighlighted"].clone()), (json!(3), json!(3)), "{seen}");
    assert_eq!(seen["failedKinds"], json!([" handler_error", " handler_error", " handler_error"]), "{seen}");
    assert_eq!(seen["queueStatus"], 204);
    assert!(seen["liveMs"].as_u64().unwrap() < 2000, "the live tail took {} ms", seen["liveMs"]);
    // The payload the module received, as the events log keeps it.
    let payload = seen["payload"].as_str().unwrap();
    assert!(payload.contains(r#""live""#) && payload.contains(r#""type": "task""#), "{seen}");
    assert_eq!(seen["logs"], json!([r#"task {"live":"tail"}"#]), "{seen}");
    assert_eq!(
        (seen["rangeRows"].clone(), seen["rangeOlderLink"].clone(), seen["rangeLive"].clone()),
        (json!(10), json!(0), json!(false)),
        "ten seconds of a log with one event a second: {seen}"
    );
    assert!(seen["runAgainStatus"].as_str().unwrap().contains(&dead_task), "{seen}");
    assert!(seen["chartBars"].as_u64().unwrap() > 0, "{seen}");
    assert!(seen["chartSummary"].as_str().unwrap().contains("queue now"), "{seen}");
    // Version, published, size, ABI, snapshot, SHA-256: probe is a v2 module, pre-initialised.
    let cells = seen["versionCells"].as_array().unwrap();
    assert_eq!(
        (cells[0].clone(), cells[3].clone(), cells[4].clone()),
        (json!("1 (current)"), json!("2"), json!("yes"))
    );
    assert_eq!((seen["devOn"].clone(), seen["devOff"].clone()), (json!("on"), json!("off")));
    assert_eq!((seen["focused"].clone(), seen["nextTab"].clone()), (json!("H1:Integrations"), json!("search")));
    assert!(seen["phoneOverflow"].as_i64().unwrap() <= 0, "the page is wider than a phone: {seen}");
    assert_eq!(seen["outsiderIntegrations"], json!([]));
    assert_eq!(
        (seen["integrationIdentity"].clone(), seen["integrationSees"].clone()),
        (json!("Signed in as integration token"), json!(["probe"]))
    );
    assert!(seen["outsiderAlert"].as_str().unwrap().starts_with("404"), "{seen}");
    let (status, _) = app.call_as(Some(&outsider), "GET", "/v1/integrations/probe", None).await;
    assert_eq!(status, 404, "the API call behind the page answers 404 too");

    assert_eq!(seen["applications"], json!(["Billing sync"]));
    assert_eq!(seen["webhooks"], json!(["issues"]));
    assert_eq!(seen["deliveries"], json!(["failed"]));
    assert!(seen["redeliverStatus"].as_str().unwrap().contains("queued again"), "{seen}");
    assert_eq!(receiver.wait_for(2).await.len(), 2, "the delivery was sent again");

    // The task run again ran (and, asking to fail, went back to the dead letters).
    wait_until(&app, "/v1/integrations/probe/events?type=task&limit=100", |b| {
        b["items"].as_array().unwrap().len() >= 7
    })
    .await;
    let (_, dev) = app.call("GET", "/v1/integrations/probe/dev", None).await;
    assert_eq!(dev["enabled"], false);
    app.stop().await;
}
