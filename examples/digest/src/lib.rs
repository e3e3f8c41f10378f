//! `digest`: collects items posted to the installation's public endpoint in its key-value
//! store, and on a schedule sends them as one digest message to the configured URL.
//!
//! ```text
//! POST …/installations/inst_x/fetch   {"text":"deploy 42 finished"}   → 202 {"queued":true}
//! GET  …/installations/inst_x/fetch                                   → 200 {"pending":1}
//! cron task {"digest":true}  → POST <digestUrl> {"text":"Digest: 1 item\n• deploy 42 finished","count":1,"items":[…]}
//! ```
//!
//! Nothing is lost: items are deleted only after the digest URL answered 2xx. When it
//! fails, the task fails, the queue retries it with backoff, and the items stay for the
//! retry (or the next tick). At most [`MAX_ITEMS_PER_DIGEST`] items go in one digest; the
//! rest follow in a task queued right after.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use weft_sdk::http::{self, OutboundRequest};
use weft_sdk::{Environment, Error, Handler, LifecycleEvent, Request, Response, Result, kv, tasks};

/// The kv keys of pending items start with this.
pub const ITEM_PREFIX: &str = "item:";
/// Most items in one digest (each costs two host calls: a read and a delete).
pub const MAX_ITEMS_PER_DIGEST: usize = 200;
/// Longest item text, in characters.
pub const MAX_TEXT_CHARS: usize = 2000;

/// The installation's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Config {
    /// Where the digest is POSTed.
    pub digest_url: String,
    /// The digest's first line.
    #[serde(default = "default_title")]
    pub title: String,
}

fn default_title() -> String {
    "Digest".to_owned()
}

/// One pending item, as stored in kv.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Item {
    /// What was posted.
    pub text: String,
    /// When it arrived (ms since the epoch).
    pub received_at: u64,
}

/// A new, unique key that sorts by arrival time: `item:<ns since the epoch>-<random>`.
fn item_key(now: std::time::Duration) -> String {
    let random = RandomState::new().build_hasher().finish();
    format!("{ITEM_PREFIX}{:024}-{random:016x}", now.as_nanos())
}

/// The item's text: a JSON body's `text` field, or the whole body as text.
fn item_text(req: &Request) -> Result<String> {
    let text = match serde_json::from_slice::<Value>(&req.body) {
        Ok(Value::Object(object)) => object
            .get("text")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::bad_request("text: a JSON body needs a string field `text`"))?
            .to_owned(),
        Ok(Value::String(text)) => text,
        _ => req.text()?.to_owned(),
    };
    let text = text.trim();
    if text.is_empty() {
        return Err(Error::bad_request("text: must not be empty"));
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(Error::bad_request(format!("text: must be at most {MAX_TEXT_CHARS} characters")));
    }
    Ok(text.to_owned())
}

/// The message sent for `items`.
pub fn digest_message(title: &str, items: &[Item]) -> Value {
    let noun = if items.len() == 1 { "item" } else { "items" };
    let mut text = format!("{title}: {} {noun}", items.len());
    for item in items {
        text.push_str("\n• ");
        text.push_str(&item.text);
    }
    json!({ "text": text, "count": items.len(), "items": items })
}

/// Sends the pending items (up to [`MAX_ITEMS_PER_DIGEST`]) and deletes them once the
/// digest URL answered 2xx. Returns how many were sent.
pub fn send_digest(env: &Environment) -> Result<usize> {
    let config: Config = env.config()?;
    let keys = kv::list(ITEM_PREFIX)?;
    if keys.is_empty() {
        log::info!("no items: no digest sent");
        return Ok(0);
    }
    let batch = &keys[..keys.len().min(MAX_ITEMS_PER_DIGEST)];
    let mut sent_keys = Vec::with_capacity(batch.len());
    let mut items = Vec::with_capacity(batch.len());
    for key in batch {
        if let Some(item) = kv::get::<Item>(key)? {
            items.push(item);
            sent_keys.push(key);
        }
    }
    if !items.is_empty() {
        let request = OutboundRequest::post(&config.digest_url).with_json(&digest_message(&config.title, &items))?;
        let response = http::fetch(request)?;
        if !response.is_success() {
            // Keep the items: the queue retries this task.
            return Err(Error::new(502, format!("the digest URL answered {}; items kept", response.status)));
        }
        for key in sent_keys {
            kv::delete(key)?;
        }
        log::info!("sent a digest of {} items", items.len());
    }
    if keys.len() > batch.len() {
        tasks::queue(&json!({"digest": true}), 0)?;
        log::info!("more items pending: queued another digest");
    }
    Ok(items.len())
}

/// The integration.
#[derive(Debug, Default)]
pub struct Digest;

impl Handler for Digest {
    fn fetch(&self, req: Request, _env: &Environment) -> Result<Option<Response>> {
        match req.method.as_str() {
            "POST" => {
                let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
                let item = Item { text: item_text(&req)?, received_at: now.as_millis() as u64 };
                kv::set(&item_key(now), &item).map_err(|err| match err.kind() {
                    Some("too_large") => Error::new(503, "the digest is full; try again after the next one is sent"),
                    _ => err,
                })?;
                Ok(Some(Response::json(&json!({"queued": true}))?.with_status(202)))
            }
            "GET" => Ok(Some(Response::json(&json!({"pending": kv::list(ITEM_PREFIX)?.len()}))?)),
            _ => Err(Error::new(405, "POST an item, or GET the number pending")),
        }
    }

    fn task(&self, task: Value, env: &Environment) -> Result<()> {
        if task.get("digest") == Some(&Value::Bool(true)) {
            send_digest(env)?;
        }
        Ok(())
    }

    fn installation_setup(&self, _event: &LifecycleEvent, env: &Environment) -> Result<()> {
        let config: Config = env.config().map_err(|err| Error::bad_request(err.message().to_owned()))?;
        if !(config.digest_url.starts_with("https://") || config.digest_url.starts_with("http://")) {
            return Err(Error::bad_request("digestUrl: must be an http:// or https:// URL"));
        }
        Ok(())
    }
}

weft_sdk::export_handler!(Digest);

#[cfg(test)]
mod tests {
    use super::*;
    use weft_sdk::http::OutboundResponse;
    use weft_sdk::testing::{self, MockHost};

    const TARGET: &str = "https://hooks.example.com/digest";

    fn env() -> Environment {
        Environment::default().with_configuration(json!({"digestUrl": TARGET, "title": "Today"}))
    }

    fn post(body: &str) -> Result<Response> {
        let req = testing::fetch_request("POST", "/").with_body(body);
        match testing::fetch(&Digest, req, &env()) {
            weft_sdk::Outcome::Response(response) => Ok(response),
            weft_sdk::Outcome::Error(err) => Err(err),
            weft_sdk::Outcome::None => panic!("no outcome"),
        }
    }

    fn tick() -> weft_sdk::Outcome {
        testing::run(&Digest, testing::task_event(json!({"digest": true, "cronTick": 1})), &env())
    }

    #[test]
    fn posted_items_are_stored_in_kv_in_arrival_order() {
        let host = MockHost::new();
        assert_eq!(post(r#"{"text":"first"}"#).unwrap().status, 202);
        assert_eq!(post("second, as plain text").unwrap().status, 202);
        assert_eq!(post(r#""third""#).unwrap().status, 202);
        let texts: Vec<Value> = host.kv().into_values().map(|item| item["text"].clone()).collect();
        assert_eq!(texts, [json!("first"), json!("second, as plain text"), json!("third")]);
        let pending = testing::fetch(&Digest, testing::fetch_request("GET", "/"), &env()).into_response().unwrap();
        assert_eq!(pending.body_json::<Value>().unwrap(), json!({"pending": 3}));
    }

    #[test]
    fn empty_or_malformed_items_are_bad_requests() {
        let host = MockHost::new();
        for body in ["", "   ", r#"{"title":"no text"}"#, r#"{"text":""}"#] {
            assert_eq!(post(body).unwrap_err().status(), 400, "{body}");
        }
        assert_eq!(post(&"x".repeat(MAX_TEXT_CHARS + 1)).unwrap_err().status(), 400);
        assert!(host.kv().is_empty());
    }

    #[test]
    fn a_tick_sends_one_digest_and_clears_the_items() {
        let host = MockHost::new();
        host.respond(TARGET, OutboundResponse::new(200));
        post(r#"{"text":"a"}"#).unwrap();
        post(r#"{"text":"b"}"#).unwrap();
        assert!(tick().is_none());
        let sent = host.fetches();
        assert_eq!(sent.len(), 1);
        let body: Value = serde_json::from_slice(sent[0].body.as_deref().unwrap()).unwrap();
        assert_eq!(body["text"], "Today: 2 items\n• a\n• b");
        assert_eq!(body["count"], 2);
        assert_eq!(body["items"][1]["text"], "b");
        assert!(host.kv().is_empty());

        // The next tick has nothing to send.
        assert!(tick().is_none());
        assert_eq!(host.fetches().len(), 1);
        assert!(host.log_messages().contains(&"no items: no digest sent".to_owned()));
    }

    #[test]
    fn a_failed_delivery_keeps_the_items_and_fails_the_task() {
        let host = MockHost::new();
        post("keep me").unwrap();
        host.respond(TARGET, OutboundResponse::new(503));
        let err = tick().into_error().expect("the task fails so the queue retries it");
        assert_eq!(err.status(), 502);
        assert_eq!(host.kv().len(), 1);

        host.respond_error(TARGET, "timeout", "took too long");
        assert!(tick().into_error().is_some());
        assert_eq!(host.kv().len(), 1);

        host.respond(TARGET, OutboundResponse::new(204));
        assert!(tick().is_none());
        assert!(host.kv().is_empty());
    }

    #[test]
    fn a_long_backlog_is_sent_in_batches() {
        let host = MockHost::new();
        host.respond(TARGET, OutboundResponse::new(200));
        for i in 0..MAX_ITEMS_PER_DIGEST + 5 {
            host.kv_set(&format!("{ITEM_PREFIX}{i:024}"), json!({"text": format!("n{i}"), "receivedAt": 0}));
        }
        assert!(tick().is_none());
        assert_eq!(host.kv().len(), 5);
        assert_eq!(host.queued_tasks()[0].task, json!({"digest": true}));
        let body: Value = serde_json::from_slice(host.fetches()[0].body.as_deref().unwrap()).unwrap();
        assert_eq!(body["count"], MAX_ITEMS_PER_DIGEST);
    }

    #[test]
    fn other_tasks_are_ignored() {
        let host = MockHost::new();
        post("stay").unwrap();
        assert!(testing::run(&Digest, testing::task_event(json!({"other": 1})), &env()).is_none());
        assert!(host.fetches().is_empty());
        assert_eq!(host.kv().len(), 1);
    }

    #[test]
    fn setup_refuses_a_digest_url_that_is_not_http() {
        let _host = MockHost::new();
        let bad = Environment::default().with_configuration(json!({"digestUrl": "mailto:me@example.com"}));
        let err = testing::run(&Digest, testing::event("installation_setup", json!({})), &bad).into_error().unwrap();
        assert_eq!((err.status(), err.message()), (400, "digestUrl: must be an http:// or https:// URL"));
    }
}
