//! The `weft` binary as a new user runs it: `weft serve`, then `weft publish`.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

use crate::support::{hello_wasm, repo_root};

const WEFT: &str = env!("CARGO_BIN_EXE_weft");

struct Serving {
    child: Child,
    url: String,
    generated_token: Option<String>,
}

/// Starts `weft serve` on a free port and reads its banner.
async fn serve(database_url: &str) -> Serving {
    let mut child = Command::new(WEFT)
        .args(["serve", "--bind", "127.0.0.1:0", "--database-url", database_url])
        .env_remove("WEFT_ADMIN_TOKEN")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn weft serve");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut generated_token = None;
    let url = loop {
        let line = next_line(&mut lines).await;
        if line.starts_with("    wft_") {
            generated_token = Some(line.trim().to_owned());
        }
        if let Some(url) = line.strip_prefix("weft listening on ") {
            break url.to_owned();
        }
    };
    Serving { child, url, generated_token }
}

async fn next_line(lines: &mut Lines<BufReader<ChildStdout>>) -> String {
    tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("weft serve printed its banner in time")
        .unwrap()
        .expect("weft serve exited before printing its banner")
}

impl Serving {
    /// SIGTERM, and the server must exit cleanly.
    async fn terminate(mut self) {
        let pid = self.child.id().unwrap().to_string();
        assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let status = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await.unwrap().unwrap();
        assert!(status.success(), "weft serve exited with {status}");
    }
}

#[tokio::test]
async fn the_quickstart_serves_publishes_installs_and_answers() {
    hello_wasm();
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}", dir.path().join("weft.db").display());
    let server = serve(&database_url).await;
    let token = server.generated_token.clone().expect("a new database prints an admin token");
    let client = reqwest::Client::new();

    let created = client
        .post(format!("{}/v1/orgs", server.url))
        .bearer_auth(&token)
        .json(&json!({"id": "acme", "title": "Acme"}));
    assert_eq!(created.send().await.unwrap().status(), 201);

    let publish = Command::new(WEFT)
        .args(["publish", "examples/hello", "--api-url", &server.url])
        .env("WEFT_TOKEN", &token)
        .current_dir(repo_root())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&publish.stdout);
    assert!(publish.status.success(), "weft publish failed: {stdout}{}", String::from_utf8_lossy(&publish.stderr));
    assert!(stdout.contains("published hello version 1"), "{stdout}");

    let installation: Value = client
        .post(format!("{}/v1/integrations/hello/installations", server.url))
        .bearer_auth(&token)
        .json(&json!({"organization": "acme"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let endpoint = installation["urls"]["publicEndpoint"].as_str().unwrap();
    let answer: Value = client.get(format!("{endpoint}/hi")).send().await.unwrap().json().await.unwrap();
    assert_eq!(answer["path"], "/hi");
    server.terminate().await;

    // A restart on the same database keeps the token and prints no new one.
    let again = serve(&database_url).await;
    assert_eq!(again.generated_token, None);
    let status = client.get(format!("{}/v1/integrations/hello", again.url)).bearer_auth(&token).send().await.unwrap();
    assert_eq!(status.status(), 200);
    again.terminate().await;
}

#[tokio::test]
async fn publish_explains_a_wrong_token_and_a_missing_module() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("weft.toml"),
        "name = \"ghost\"\ntitle = \"Ghost\"\ndescription = \"d\"\norganization = \"acme\"\nscript = \"missing.wasm\"\n",
    )
    .unwrap();
    let output = std::process::Command::new(WEFT)
        .args(["publish", dir.path().to_str().unwrap(), "--token", "t", "--api-url", "http://127.0.0.1:9"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("missing.wasm"), "{stderr}");
}
