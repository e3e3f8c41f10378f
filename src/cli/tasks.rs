//! `weft tasks NAME`: the integration's task queue (`GET /v1/integrations/{name}/tasks`):
//! what is waiting to run and what was dead-lettered after its last retry. With `--queue`
//! it queues a task instead, which the module's task handler runs as a `task` event.

use anyhow::Context as _;
use clap::Args;
use reqwest::Method;
use serde_json::{Value, json};

use super::client::{ApiArgs, ApiClient};
use super::{Output, progress};

#[derive(Debug, Args)]
pub struct TasksArgs {
    /// The integration.
    name: String,
    /// Queue this task (a JSON object) instead of listing, e.g. --queue '{"report":true}'.
    #[arg(long, value_name = "JSON")]
    queue: Option<String>,
    /// With --queue: run it after this many seconds (0–86400).
    #[arg(long, default_value_t = 0, requires = "queue", value_name = "SECONDS")]
    schedule: u32,
    /// With --queue: a key that makes queueing the same task again a no-op.
    #[arg(long, requires = "queue")]
    idempotency_key: Option<String>,
    /// List only tasks with this status (queued, running, done or dead) instead of the
    /// queued and dead ones.
    #[arg(long, conflicts_with = "queue")]
    status: Option<String>,
    /// At most this many tasks per status (1–1000).
    #[arg(long, default_value_t = 100)]
    limit: u32,
    #[command(flatten)]
    api: ApiArgs,
}

pub async fn run(args: TasksArgs, out: Output) -> anyhow::Result<()> {
    let client = ApiClient::new(&args.api);
    let path = format!("/v1/integrations/{}/tasks", args.name);
    if let Some(task) = &args.queue {
        let task: Value = serde_json::from_str(task).context("--queue is not valid JSON")?;
        let mut body = json!({ "task": task, "schedule": args.schedule });
        if let Some(key) = &args.idempotency_key {
            body["idempotencyKey"] = json!(key);
        }
        progress(format_args!("queueing a task for {}", args.name));
        client.send_json(Method::POST, &path, &body).await?;
        let value = json!({ "queued": true, "integration": args.name, "task": task, "schedule": args.schedule });
        out.result(&value, || {
            let when = if args.schedule == 0 { "now".to_owned() } else { format!("in {} s", args.schedule) };
            format!(
                "queued a task for {}, due {when}: {task}\n(see it run with `weft events {}`)",
                args.name, args.name
            )
        });
        return Ok(());
    }
    let statuses: Vec<&str> = match &args.status {
        Some(status) => vec![status.as_str()],
        None => vec!["queued", "dead"],
    };
    let mut items = Vec::new();
    for status in statuses {
        let answer = client.get(&path, &[("status", status.to_owned()), ("limit", args.limit.to_string())]).await?;
        items.extend(answer["items"].as_array().cloned().unwrap_or_default());
    }
    let value = json!({ "count": items.len(), "items": items });
    out.result(&value, || table(&args.name, &items));
    Ok(())
}

/// One line per task: id, status, due time, attempts, installation, the task and its error.
fn table(name: &str, items: &[Value]) -> String {
    if items.is_empty() {
        return format!("no queued or dead tasks for {name}");
    }
    let text = |value: &Value| value.as_str().unwrap_or("-").to_owned();
    let mut out =
        format!("{:<26} {:<8} {:<25} {:>8}  {:<26} TASK\n", "ID", "STATUS", "DUE", "ATTEMPTS", "INSTALLATION");
    for item in items {
        let task = &item["event"]["task"];
        let task = if task.is_null() { item["event"].to_string() } else { task.to_string() };
        out.push_str(&format!(
            "{:<26} {:<8} {:<25} {:>8}  {:<26} {}\n",
            text(&item["id"]),
            text(&item["status"]),
            text(&item["dueAt"]),
            item["attempts"],
            text(&item["installation"]),
            shorten(&task, 60),
        ));
        if let Some(error) = item["lastError"].as_str() {
            out.push_str(&format!("    last error: {error}\n"));
        }
    }
    out
}

/// `text` cut to `max` characters, with an ellipsis when cut.
pub fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(max.saturating_sub(1)).collect();
    short.push('…');
    short
}
