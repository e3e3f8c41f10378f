//! `weft publish [DIR]`: reads `weft.toml`, sends the module and manifest to the server as
//! a new version of the integration.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use reqwest::Method;
use serde_json::json;

use super::client::{ApiArgs, ApiClient};
use super::{Output, progress};
use crate::manifest::Manifest;

#[derive(Debug, Args)]
pub struct PublishArgs {
    /// The integration's directory (holding weft.toml; its `script` is the module to send).
    #[arg(default_value = ".")]
    dir: PathBuf,
    #[command(flatten)]
    api: ApiArgs,
}

pub async fn run(args: PublishArgs, out: Output) -> anyhow::Result<()> {
    let manifest = Manifest::load(&args.dir)?;
    let script_path = manifest.script_path(&args.dir);
    let wasm = std::fs::read(&script_path)
        .with_context(|| format!("reading the module {} (build it first: `weft build`)", script_path.display()))?;
    let client = ApiClient::new(&args.api);
    progress(format_args!("publishing {} ({} bytes) to {}", manifest.name, wasm.len(), client.base()));
    let path = format!("/v1/integrations/{}", manifest.name);
    let answer = client.send_json(Method::POST, &path, &manifest.publish_body(&wasm)).await?;
    let value = json!({
        "name": manifest.name,
        "version": answer["version"],
        "bytes": wasm.len(),
        "token": answer["token"],
        "integration": answer,
    });
    out.result(&value, || {
        let mut text = format!("published {} version {} ({} bytes)\n", manifest.name, answer["version"], wasm.len());
        if let Some(token) = answer["token"].as_str() {
            text.push_str(&format!(
                "integration token (shown only this once; it acts as the integration):\n\n    {token}\n"
            ));
        }
        text
    });
    Ok(())
}
