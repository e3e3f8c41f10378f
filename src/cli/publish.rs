//! `weft publish [DIR]`: reads `weft.toml`, sends the module and manifest to the server.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use clap::Args;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Debug, Args)]
pub struct PublishArgs {
    /// Directory holding weft.toml.
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// The server's URL.
    #[arg(long, env = "WEFT_API_URL", default_value = "http://127.0.0.1:8080")]
    api_url: String,
    /// An admin token.
    #[arg(long, env = "WEFT_TOKEN", hide_env_values = true)]
    token: String,
}

/// `weft.toml`: what `weft publish` sends.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    name: String,
    title: String,
    description: String,
    organization: String,
    /// Path of the built module, relative to weft.toml.
    script: PathBuf,
    #[serde(default)]
    scopes: Vec<String>,
    visibility: Option<String>,
    target: Option<String>,
    summary: Option<String>,
}

fn read_manifest(dir: &Path) -> anyhow::Result<Manifest> {
    let path = dir.join("weft.toml");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

pub async fn run(args: PublishArgs) -> anyhow::Result<()> {
    let manifest = read_manifest(&args.dir)?;
    let script_path = args.dir.join(&manifest.script);
    let wasm = std::fs::read(&script_path).with_context(|| {
        format!("reading the module {} (build it first, e.g. with scripts/build-examples)", script_path.display())
    })?;
    let mut body = json!({
        "title": manifest.title,
        "description": manifest.description,
        "organization": manifest.organization,
        "scopes": manifest.scopes,
        "script": BASE64.encode(&wasm),
    });
    for (field, value) in
        [("visibility", manifest.visibility), ("target", manifest.target), ("summary", manifest.summary)]
    {
        if let Some(value) = value {
            body[field] = json!(value);
        }
    }
    let url = format!("{}/v1/integrations/{}", args.api_url.trim_end_matches('/'), manifest.name);
    let response = reqwest::Client::new()
        .post(&url)
        .bearer_auth(&args.token)
        .json(&body)
        .send()
        .await
        .with_context(|| format!("sending to {url}"))?;
    let status = response.status();
    let answer: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        let message = answer["error"]["message"].as_str().unwrap_or("no error message");
        bail!("publish failed with {status}: {message}");
    }
    println!("published {} version {} ({} bytes)", manifest.name, answer["version"], wasm.len());
    if let Some(token) = answer["token"].as_str() {
        println!("integration token (shown only this once; it acts as the integration):\n\n    {token}\n");
    }
    Ok(())
}
