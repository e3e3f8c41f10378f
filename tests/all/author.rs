//! The author's CLI as a new user runs it: `weft new` → `weft build` → `weft check` →
//! `weft publish` → `weft install` → a request, a queued task and a cron tick, seen with
//! `weft events`; and the errors a new user meets, each named.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::process::Command;

use crate::support::{ADMIN, TestApp, fixture, log_messages, repo_root, spawn_app};

const WEFT: &str = env!("CARGO_BIN_EXE_weft");

/// `weft ARGS` against `app` (when given) as a user who exported WEFT_API_URL and WEFT_TOKEN.
/// Guest builds share the examples' target directory, so std is built from source once.
async fn weft(app: Option<&TestApp>, args: &[&str]) -> Output {
    let mut command = Command::new(WEFT);
    command.args(args).env_remove("WEFT_API_URL").env_remove("WEFT_TOKEN");
    command.env("CARGO_TARGET_DIR", repo_root().join("examples/target"));
    if let Some(app) = app {
        command.env("WEFT_API_URL", &app.url).env("WEFT_TOKEN", ADMIN);
    }
    command.output().await.expect("run weft")
}

/// Runs `weft ARGS`, requires success, returns stdout.
async fn ok(app: Option<&TestApp>, args: &[&str]) -> String {
    let output = weft(app, args).await;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "weft {args:?} failed with {}:\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Runs `weft ARGS` with `--json` and parses its one JSON document.
async fn json(app: Option<&TestApp>, args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.push("--json");
    let stdout = ok(app, &args).await;
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("weft {args:?} printed no JSON ({e}): {stdout}"))
}

/// Runs `weft ARGS`, requires failure, returns stderr.
async fn fails(args: &[&str]) -> String {
    let output = weft(None, args).await;
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "weft {args:?} should have failed; it printed:\n{stderr}");
    stderr
}

fn path(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Polls `weft events NAME --type task --logs --json` until an event has a log line
/// starting with `prefix`.
async fn wait_for_task_log(app: &TestApp, name: &str, prefix: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let events = json(Some(app), &["events", name, "--type", "task", "--logs", "--limit", "100"]).await;
        let items = events["items"].as_array().unwrap();
        if let Some(event) = items.iter().find(|e| log_messages(e).iter().any(|m| m.starts_with(prefix))) {
            return event.clone();
        }
        assert!(Instant::now() < deadline, "no task event logged `{prefix}…`: {events}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_new_integration_builds_publishes_installs_and_answers_a_request_a_task_and_a_cron_tick() {
    let app = spawn_app().await;
    app.create_org("acme").await;
    let dir = tempfile::tempdir().unwrap();
    let crate_dir = dir.path().join("greeter");

    let created = json(None, &["new", "greeter", "--dir", path(&crate_dir), "--org", "acme"]).await;
    assert_eq!(created["crate"], "greeter");
    let script = crate_dir.join("target/wasm32-wasip1/release/greeter.wasm");

    // The module lands at weft.toml's `script` although cargo builds into the shared target dir.
    let built = json(None, &["build", path(&crate_dir)]).await;
    assert!(script.is_file(), "weft build did not write {}: {built}", script.display());
    assert_eq!(built["check"]["ok"], true, "{built}");
    let checked = json(None, &["check", path(&crate_dir)]).await;
    assert_eq!((checked["name"].as_str(), checked["schedules"].as_u64()), (Some("greeter"), Some(1)), "{checked}");

    let published = json(Some(&app), &["publish", path(&crate_dir)]).await;
    assert_eq!(published["version"], 1, "{published}");
    assert!(published["token"].as_str().is_some_and(|t| t.starts_with("wft_")), "{published}");

    let installation =
        json(Some(&app), &["install", "greeter", "--org", "acme", "--config", r#"{"tone":"warm"}"#]).await;
    assert_eq!(installation["configuration"]["tone"], "warm", "{installation}");
    let endpoint = installation["urls"]["publicEndpoint"].as_str().expect("a public endpoint").to_owned();
    let answer: Value = app.client.get(format!("{endpoint}/hello")).send().await.unwrap().json().await.unwrap();
    assert_eq!((answer["integration"].as_str(), answer["path"].as_str()), (Some("greeter"), Some("/hello")));
    assert_eq!(answer["installation"], installation["id"]);

    ok(Some(&app), &["tasks", "greeter", "--queue", r#"{"report":"now"}"#]).await;
    let task = wait_for_task_log(&app, "greeter", r#"task: {"report":"now"}"#).await;
    assert_eq!(task["event"]["status"], "success", "{task}");

    // Every second instead of every hour, and a new version takes the new schedule.
    let manifest = crate_dir.join("weft.toml");
    let text = std::fs::read_to_string(&manifest).unwrap().replace("\"0 0 * * * *\"", "\"* * * * * *\"");
    std::fs::write(&manifest, text).unwrap();
    assert_eq!(json(Some(&app), &["publish", path(&crate_dir)]).await["version"], 2);
    let tick = wait_for_task_log(&app, "greeter", "cron tick").await;
    assert_eq!(tick["event"]["installationId"], installation["id"], "{tick}");

    // The human forms read the same data.
    let events = ok(Some(&app), &["events", "greeter", "--logs"]).await;
    assert!(events.contains("fetch") && events.contains("cron tick"), "{events}");
    let tasks = json(Some(&app), &["tasks", "greeter"]).await;
    assert!(tasks["items"].is_array(), "{tasks}");
}

#[tokio::test]
async fn the_scaffold_passes_its_own_unit_tests() {
    let dir = tempfile::tempdir().unwrap();
    let crate_dir = dir.path().join("unit-tested");
    ok(None, &["new", "unit-tested", "--dir", path(&crate_dir)]).await;
    let output = Command::new("cargo")
        .args(["test", "--quiet"])
        .current_dir(&crate_dir)
        .env("CARGO_TARGET_DIR", repo_root().join("examples/target"))
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "cargo test failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("2 passed"), "{stdout}");
}

/// A scaffold in a temporary directory whose weft.toml is edited by `edit`.
async fn scaffold(edit: impl FnOnce(String) -> String) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let crate_dir = dir.path().join("scaffold");
    ok(None, &["new", "scaffold", "--dir", path(&crate_dir)]).await;
    let manifest = crate_dir.join("weft.toml");
    std::fs::write(&manifest, edit(std::fs::read_to_string(&manifest).unwrap())).unwrap();
    (dir, crate_dir)
}

#[tokio::test]
async fn weft_new_refuses_an_invalid_name_and_an_existing_directory() {
    let stderr = fails(&["new", "bad name!"]).await;
    assert!(stderr.contains("invalid integration name") && stderr.contains("`bad name!`"), "{stderr}");

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("keep.txt"), "mine").unwrap();
    let stderr = fails(&["new", "fine", "--dir", path(dir.path())]).await;
    assert!(stderr.contains("already exists and is not empty"), "{stderr}");
    assert_eq!(std::fs::read_to_string(dir.path().join("keep.txt")).unwrap(), "mine");
}

#[tokio::test]
async fn weft_check_names_an_unknown_key_a_short_title_and_a_module_that_is_not_wasm() {
    let (_dir, unknown) = scaffold(|text| format!("{text}\ncolour = \"blue\"\n")).await;
    let stderr = fails(&["check", path(&unknown)]).await;
    assert!(stderr.contains("unknown field `colour`"), "{stderr}");

    let (_dir, short) = scaffold(|text| text.replace("title = \"Scaffold\"", "title = \"S\"")).await;
    let stderr = fails(&["check", path(&short)]).await;
    assert!(stderr.contains("title must be 2–30 characters"), "{stderr}");

    let (_dir, unbuilt) = scaffold(|text| text).await;
    let stderr = fails(&["check", path(&unbuilt)]).await;
    assert!(stderr.contains("run `weft build` first"), "{stderr}");

    let (_dir, not_wasm) = scaffold(|text| text).await;
    let script = not_wasm.join("target/wasm32-wasip1/release/scaffold.wasm");
    std::fs::create_dir_all(script.parent().unwrap()).unwrap();
    std::fs::write(&script, "#!/bin/sh\necho not wasm\n").unwrap();
    let stderr = fails(&["check", path(&not_wasm)]).await;
    assert!(stderr.contains("script") && stderr.contains("not a WebAssembly module"), "{stderr}");

    // A module without the guest ABI's exports is refused as the server would refuse it.
    std::fs::write(&script, fixture("missing_handle")).unwrap();
    let stderr = fails(&["check", path(&not_wasm)]).await;
    assert!(stderr.contains("does not export `weft_handle`"), "{stderr}");
}

#[tokio::test]
async fn api_commands_name_the_status_and_the_servers_message() {
    let app = spawn_app().await;
    let output = Command::new(WEFT)
        .args(["install", "ghost", "--org", "acme", "--api-url", &app.url, "--token", "wrong"])
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("401") && stderr.contains("--token"), "{stderr}");

    let output =
        Command::new(WEFT).args(["events", "ghost", "--api-url", &app.url, "--token", ADMIN]).output().await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("404") && stderr.contains("no integration `ghost`"), "{stderr}");

    let output = Command::new(WEFT)
        .args(["tasks", "ghost", "--api-url", "http://127.0.0.1:9", "--token", ADMIN])
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot reach the server at http://127.0.0.1:9"), "{stderr}");
}
