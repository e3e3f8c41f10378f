//! Runs the third-party clients under `tests/clients/` — Python (`authlib`, `standardwebhooks`)
//! and Node (`playwright-core` driving Debian's `chromium`), which `scripts/install-clients`
//! installs.

use std::io::Write as _;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::support::repo_root;

/// Makes sure the packages of `tests/clients/requirements.txt` import.
fn ensure_packages() {
    let imports = Command::new("python3").args(["-c", "import authlib, requests, standardwebhooks"]).output();
    assert!(
        imports.is_ok_and(|o| o.status.success()),
        "the Python clients are missing: run scripts/install-clients (scripts/test does)"
    );
}

/// Runs `tests/clients/{script}` with `args`, feeding `input` as JSON on stdin, and parses
/// its stdout as JSON. Blocking: call it from `spawn_blocking` when a server in the same
/// runtime must answer the script.
pub fn run_python(script: &str, args: &[&str], input: &Value) -> Value {
    ensure_packages();
    run(Command::new("python3").arg(repo_root().join("tests/clients").join(script)).args(args), script, input)
}

/// Makes sure `tests/clients/node_modules` holds the Node clients and Chromium is installed.
fn ensure_browser() {
    let dir = repo_root().join("tests/clients");
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "tests/clients/node_modules is missing: run scripts/install-clients (scripts/test does)"
    );
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "{chromium} is missing: run scripts/install-clients (or set CHROMIUM) to run the browser tests"
    );
}

/// Runs `tests/clients/{script}` with Node, feeding `input` as JSON on stdin, off the async
/// executor; parses its stdout as JSON.
pub async fn run_node_async(script: &'static str, input: Value) -> Value {
    tokio::task::spawn_blocking(move || {
        ensure_browser();
        run(Command::new("node").arg(repo_root().join("tests/clients").join(script)), script, &input)
    })
    .await
    .unwrap()
}

/// Runs a prepared client command with `input` on stdin and parses its stdout as JSON.
fn run(command: &mut Command, script: &str, input: &Value) -> Value {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{script} does not start: {e}"));
    child.stdin.take().unwrap().write_all(input.to_string().as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{script} failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{script} printed no JSON ({e}): {stdout}"))
}

/// [`run_python`] off the async executor, so the server under test keeps answering.
pub async fn run_python_async(script: &'static str, args: Vec<String>, input: Value) -> Value {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_python(script, &args, &input)
    })
    .await
    .unwrap()
}
