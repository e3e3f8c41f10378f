//! `weft install NAME --org ORG`: installs an integration on an organization
//! (`POST /v1/integrations/{name}/installations`), optionally configures it, and prints the
//! installation's id and public endpoint: the URL whose requests become `fetch` events.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use reqwest::Method;
use serde_json::{Value, json};

use super::client::{ApiArgs, ApiClient};
use super::{Output, progress};

#[derive(Debug, Args)]
pub struct InstallArgs {
    /// The integration to install.
    name: String,
    /// The organization to install it on.
    #[arg(long)]
    org: String,
    /// The installation's configuration, as JSON: checked against the integration's
    /// `configurations` schema and given to the module's `installation_setup`, which may
    /// refuse it (then nothing is installed).
    #[arg(long, conflicts_with = "config_file", value_name = "JSON")]
    config: Option<String>,
    /// Read the configuration from this JSON file instead.
    #[arg(long, value_name = "PATH")]
    config_file: Option<PathBuf>,
    #[command(flatten)]
    api: ApiArgs,
}

pub async fn run(args: InstallArgs, out: Output) -> anyhow::Result<()> {
    let configuration = match (&args.config, &args.config_file) {
        (Some(text), _) => Some(serde_json::from_str::<Value>(text).context("--config is not valid JSON")?),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            Some(
                serde_json::from_str::<Value>(&text)
                    .with_context(|| format!("{} is not valid JSON", path.display()))?,
            )
        }
        (None, None) => None,
    };
    let client = ApiClient::new(&args.api);
    let path = format!("/v1/integrations/{}/installations", args.name);
    let mut body = json!({ "organization": args.org });
    if let Some(configuration) = configuration {
        // One request: the server checks it, runs `installation_setup`, and keeps nothing
        // when either refuses it.
        body["configuration"] = configuration;
        progress(format_args!("installing {} with a configuration", args.name));
    }
    let installation = client.send_json(Method::POST, &path, &body).await?;
    let id = installation["id"].as_str().context("the server's answer has no installation id")?.to_owned();
    out.result(&installation, || {
        format!(
            "installed {} on {} as {id}\npublic endpoint: {}\n",
            args.name,
            args.org,
            installation["urls"]["publicEndpoint"].as_str().unwrap_or("-")
        )
    });
    Ok(())
}
