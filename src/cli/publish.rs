//! `weft publish [DIR]`: reads `weft.toml`, sends the module and manifest to the server as
//! a new version of the integration. In a GitBook project (`gitbook-manifest.yaml`), it
//! bundles the script and sends what `gitbook publish` would (see [`super::gitbook`]).

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use reqwest::Method;
use serde_json::{Value, json};

use super::client::{ApiArgs, ApiClient};
use super::{Output, gitbook, progress};
use crate::manifest::Manifest;

#[derive(Debug, Args)]
pub struct PublishArgs {
    /// The integration's directory (holding weft.toml, whose `script` is the module or
    /// bundle to send, or a GitBook project's gitbook-manifest.yaml).
    #[arg(default_value = ".")]
    dir: PathBuf,
    #[command(flatten)]
    api: ApiArgs,
}

pub async fn run(args: PublishArgs, out: Output) -> anyhow::Result<()> {
    let (name, body, bytes) = if gitbook::is_project(&args.dir) {
        let dir = args.dir.clone();
        let project = tokio::task::spawn_blocking(move || gitbook::Project::build(&dir)).await??;
        progress(format_args!("bundled {} ({} bytes of JavaScript)", project.name, project.script.len()));
        (project.name.clone(), project.publish_body()?, project.script.len())
    } else {
        let manifest = Manifest::load(&args.dir)?;
        let script_path = manifest.script_path(&args.dir);
        let script = std::fs::read(&script_path)
            .with_context(|| format!("reading the script {} (build it first: `weft build`)", script_path.display()))?;
        (manifest.name.clone(), manifest.publish_body(&script), script.len())
    };
    let client = ApiClient::new(&args.api);
    progress(format_args!("publishing {name} ({bytes} bytes) to {}", client.base()));
    let answer = client.send_json(Method::POST, &format!("/v1/integrations/{name}"), &body).await?;
    let value = json!({
        "name": name,
        "version": answer["version"],
        "bytes": bytes,
        "token": answer["token"],
        "integration": answer,
    });
    out.result(&value, || human(&name, &answer, bytes));
    Ok(())
}

fn human(name: &str, answer: &Value, bytes: usize) -> String {
    let module = &answer["module"];
    let mut text = format!(
        "published {name} version {} ({bytes} bytes; {}, guest ABI v{}, snapshot {})\n",
        answer["version"],
        module["language"].as_str().unwrap_or("wasm"),
        module["abi"],
        if module["snapshot"] == true { "taken" } else { "not taken" },
    );
    if let Some(token) = answer["token"].as_str() {
        text.push_str(&format!(
            "integration token (shown only this once; it acts as the integration):\n\n    {token}\n"
        ));
    }
    text
}
