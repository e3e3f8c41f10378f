//! `weft events NAME`: the integration's recent events from the events log
//! (`GET /v1/integrations/{name}/events`, newest first, filtered by the server), as a table,
//! with each event's logs on request (`--logs`, one `GET …/events/{id}` each, which answers
//! `{event, trace: {logs}}`).

use clap::Args;
use serde_json::{Value, json};

use super::Output;
use super::client::{ApiArgs, ApiClient};
use super::tasks::shorten;

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// The integration.
    name: String,
    /// Only events with this status (`success`, `failed` — dead-lettered ones included — or
    /// `dead`).
    #[arg(long)]
    status: Option<String>,
    /// Only events of this type (`fetch`, `task`, `installation_setup`, …).
    #[arg(long = "type", value_name = "TYPE")]
    event_type: Option<String>,
    /// Only events that ran for this installation.
    #[arg(long, value_name = "ID")]
    installation: Option<String>,
    /// At most this many events (1–1000).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
    limit: u32,
    /// Show each event's logs (one more request per event).
    #[arg(long)]
    logs: bool,
    #[command(flatten)]
    api: ApiArgs,
}

pub async fn run(args: EventsArgs, out: Output) -> anyhow::Result<()> {
    let client = ApiClient::new(&args.api);
    let path = format!("/v1/integrations/{}/events", args.name);
    // The server filters, so one page holds the newest `limit` matching events.
    let mut query = vec![("limit", args.limit.to_string())];
    query.extend(args.status.iter().map(|status| ("status", status.clone())));
    query.extend(args.event_type.iter().map(|event_type| ("type", event_type.clone())));
    query.extend(args.installation.iter().map(|installation| ("installation", installation.clone())));
    let answer = client.get(&path, &query).await?;
    let mut events: Vec<Value> = answer["items"].as_array().cloned().unwrap_or_default();
    if args.logs {
        // Each becomes `{event, trace}`, as the server answers it.
        for event in &mut events {
            let id = event["id"].as_str().unwrap_or_default().to_owned();
            *event = client.get(&format!("{path}/{id}"), &[]).await?;
        }
    }
    let value = json!({ "count": events.len(), "items": events });
    out.result(&value, || table(&args.name, &events));
    Ok(())
}

/// One line per event (time, id, type, status, duration, installation, result), then its
/// logs when the entries are `{event, trace}`.
fn table(name: &str, events: &[Value]) -> String {
    if events.is_empty() {
        return format!("no events for {name}");
    }
    let text = |value: &Value| value.as_str().unwrap_or("-").to_owned();
    let mut out = format!(
        "{:<24} {:<26} {:<20} {:<8} {:>9}  {:<26} RESULT\n",
        "CREATED", "ID", "TYPE", "STATUS", "MS", "INSTALLATION"
    );
    for entry in events {
        let (event, logs) = match entry.get("event") {
            Some(event) => (event, &entry["trace"]["logs"]),
            None => (entry, &Value::Null),
        };
        let status = if event["deadLetter"] == true { "dead".to_owned() } else { text(&event["status"]) };
        let result = match (event["response"]["status"].as_i64(), event["error"]["kind"].as_str()) {
            (_, Some(kind)) => format!("{kind}: {}", event["error"]["message"].as_str().unwrap_or_default()),
            (Some(status), None) => format!("response {status}"),
            (None, None) => "-".to_owned(),
        };
        out.push_str(&format!(
            "{:<24} {:<26} {:<20} {:<8} {:>9.1}  {:<26} {}\n",
            text(&event["createdAt"]),
            text(&event["id"]),
            text(&event["type"]),
            status,
            event["duration"].as_f64().unwrap_or_default(),
            text(&event["installationId"]),
            shorten(&result, 60),
        ));
        for line in logs.as_array().into_iter().flatten() {
            out.push_str(&format!(
                "    {:<5} {}\n",
                line["level"].as_str().unwrap_or("info"),
                line["message"].as_str().unwrap_or_default()
            ));
        }
    }
    out
}
