//! `weft tail INTEGRATION`: prints the integration's events and their logs as they happen,
//! read from the server's live stream (`GET /v1/integrations/{name}/events/stream`).

use anyhow::Context as _;
use clap::Args;
use reqwest::Method;
use serde_json::Value;

use super::Output;
use super::client::{ApiArgs, ApiClient};

#[derive(Debug, Args)]
pub struct TailArgs {
    /// The integration whose events to show.
    integration: String,
    /// Only events with this status (`success`, `failed`, `dead`).
    #[arg(long)]
    status: Option<String>,
    /// Only events of this installation.
    #[arg(long)]
    installation: Option<String>,
    #[command(flatten)]
    api: ApiArgs,
}

pub async fn run(args: TailArgs, out: Output) -> anyhow::Result<()> {
    let client = ApiClient::new(&args.api);
    let mut query = Vec::new();
    if let Some(status) = &args.status {
        query.push(("status", status.as_str()));
    }
    if let Some(installation) = &args.installation {
        query.push(("installation", installation.as_str()));
    }
    let request = client
        .request(Method::GET, &format!("/v1/integrations/{}/events/stream", args.integration))
        .query(&query)
        .header("accept", "text/event-stream");
    let mut response = client.send(request).await?;
    println!("weft tail: streaming the events of `{}` (Ctrl-C to stop)", args.integration);
    let mut buffer = String::new();
    while let Some(chunk) = response.chunk().await.context("reading the stream")? {
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            show(&block, out.json);
        }
    }
    println!("weft tail: the server closed the stream");
    Ok(())
}

/// Prints one server-sent event block.
fn show(block: &str, json: bool) {
    let mut name = "message";
    let mut data = String::new();
    for line in block.lines() {
        if let Some(value) = line.strip_prefix("event:") {
            name = value.trim();
        } else if let Some(value) = line.strip_prefix("data:") {
            data.push_str(value.strip_prefix(' ').unwrap_or(value));
        }
    }
    match name {
        "event" if json => println!("{data}"),
        "event" => {
            // `{event, trace}`, as `GET …/events/{eventId}` answers it.
            let Ok(detail) = serde_json::from_str::<Value>(&data) else { return };
            let event = &detail["event"];
            let text = |field: &str| event[field].as_str().unwrap_or("-").to_owned();
            println!(
                "{} {} {} {} installation {} ({} ms)",
                text("createdAt"),
                text("id"),
                text("type"),
                if event["deadLetter"] == true { "dead".to_owned() } else { text("status") },
                text("installationId"),
                event["duration"].as_f64().unwrap_or_default()
            );
            for line in detail["trace"]["logs"].as_array().into_iter().flatten() {
                println!(
                    "    {}: {}",
                    line["level"].as_str().unwrap_or("info"),
                    line["message"].as_str().unwrap_or_default()
                );
            }
            if let Some(kind) = event["error"]["kind"].as_str() {
                println!("  → {kind}: {}", event["error"]["message"].as_str().unwrap_or_default());
            } else if let Some(status) = event["response"]["status"].as_i64() {
                println!("  → response {status}");
            }
        }
        "lagged" => eprintln!("weft tail: fell behind; some events were skipped ({data})"),
        _ => {}
    }
}
