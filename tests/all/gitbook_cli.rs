//! GitBook's own CLI (`@gitbook/cli` 0.25.1 from npm, installed by `scripts/install-clients`)
//! against a weft server: `gitbook auth`, `whoami` and `unpublish`.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use tokio::io::AsyncWriteExt as _;

use crate::api_support::{publish_with, user_token};
use crate::support::{TestApp, repo_root, spawn_app};

/// What a run of the CLI printed.
pub struct Run {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `gitbook args…` in `dir` with its own home (so no real configuration is read or
/// written), `GITBOOK_ENDPOINT` set to the server and `token` as `GITBOOK_TOKEN` when given,
/// answering its prompts with `input`.
pub async fn gitbook(app: &TestApp, home: &Path, dir: &Path, token: Option<&str>, args: &[&str], input: &str) -> Run {
    let cli = repo_root().join("tests/clients/node_modules/@gitbook/cli/cli.js");
    assert!(cli.exists(), "{} is missing: run scripts/install-clients (scripts/test does)", cli.display());
    let mut command = tokio::process::Command::new("node");
    command
        .arg(cli)
        .args(args)
        .current_dir(dir)
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("GITBOOK_ENDPOINT", &app.url)
        .env_remove("GITBOOK_TOKEN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(token) = token {
        command.env("GITBOOK_TOKEN", token);
    }
    let mut child = command.spawn().expect("run node (scripts/install-clients installs it)");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).await.unwrap();
    drop(stdin);
    let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("the CLI finishes within a minute")
        .unwrap();
    Run {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[tokio::test]
async fn gitbooks_cli_authenticates_says_who_and_unpublishes() {
    let app = spawn_app().await;
    app.create_org("acme").await;
    let ada = user_token(&app, "ada", "acme", "admin").await;
    publish_with(&app, "doomed", "acme", json!({})).await;
    let home = tempfile::tempdir().unwrap();
    let dir = home.path();

    let auth = gitbook(&app, dir, dir, None, &["auth", "--token", &ada, "--endpoint", &app.url], "").await;
    assert!(auth.success, "{}{}", auth.stdout, auth.stderr);
    assert!(auth.stdout.contains("You are now authenticated as ada."), "{}", auth.stdout);

    // The token `auth` saved is used from then on; so is GITBOOK_TOKEN.
    let whoami = gitbook(&app, dir, dir, None, &["whoami"], "").await;
    assert!(whoami.success, "{}{}", whoami.stdout, whoami.stderr);
    assert!(whoami.stdout.contains("Authenticated as ada") && whoami.stdout.contains("ID: ada"), "{}", whoami.stdout);
    let operator = gitbook(&app, dir, dir, Some(crate::support::ADMIN), &["whoami"], "").await;
    assert!(operator.stdout.contains("Authenticated as weft operator"), "{}{}", operator.stdout, operator.stderr);

    let unpublish = gitbook(&app, dir, dir, None, &["unpublish", "doomed"], "y\n").await;
    assert!(unpublish.success, "{}{}", unpublish.stdout, unpublish.stderr);
    assert!(unpublish.stdout.contains(r#"Integration "doomed" has been deleted"#), "{}", unpublish.stdout);
    assert_eq!(app.call("GET", "/v1/integrations/doomed", None).await.0, 404);

    // A token weft does not know is refused, and the CLI says so.
    let refused = gitbook(&app, dir, dir, Some("wft_not_a_token"), &["whoami"], "").await;
    assert!(!refused.success, "{}", refused.stdout);
}
