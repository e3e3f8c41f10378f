//! `probe`: a diagnostic integration that exercises every host operation on request and
//! records every event it receives. Install it to check a weft server end to end, the way
//! one uses httpbin for an HTTP client.
//!
//! Its public endpoint answers:
//! - `GET /kv/{key}` and `PUT /kv/{key}` (body: JSON) — the installation's key-value store;
//! - `POST /tasks` `{"task":{…},"schedule":N}` — queues a task;
//! - `POST /fetch` `{"url":"…","method":"GET","body":"…"}` — an outbound request, answered with
//!   the upstream status and body;
//! - anything else — `{"method","path","query"}`.
//!
//! Tasks and subscribed events are logged as `task {json}` and `event {type} {json}`; a
//! task with `"fail": true` fails (to watch retries and the dead-letter state).

use serde::Deserialize;
use serde_json::{Value, json};
use weft_sdk::http::{self, OutboundRequest};
use weft_sdk::{Environment, Error, Event, Handler, Request, Response, Result, kv, log, tasks};

/// The integration.
#[derive(Debug, Default)]
pub struct Probe;

#[derive(Deserialize)]
struct QueueTask {
    task: Value,
    #[serde(default)]
    schedule: u32,
}

#[derive(Deserialize)]
struct Fetch {
    url: String,
    #[serde(default = "get")]
    method: String,
    #[serde(default)]
    body: String,
}

fn get() -> String {
    "GET".to_owned()
}

impl Handler for Probe {
    fn fetch(&self, req: Request, _env: &Environment) -> Result<Option<Response>> {
        let response = match (req.method.as_str(), req.path.as_str()) {
            ("GET", path) if path.starts_with("/kv/") => {
                let value: Option<Value> = kv::get(&path[4..])?;
                Response::json(&json!({ "value": value }))?
            }
            ("PUT", path) if path.starts_with("/kv/") => {
                kv::set(&path[4..], &req.json::<Value>()?)?;
                Response::new(204)
            }
            ("POST", "/tasks") => {
                let body: QueueTask = req.json()?;
                tasks::queue(&body.task, body.schedule)?;
                Response::new(202)
            }
            ("POST", "/fetch") => {
                let body: Fetch = req.json()?;
                let upstream = http::fetch(OutboundRequest::new(body.method, body.url).with_body(body.body))?;
                Response::json(&json!({ "status": upstream.status, "body": upstream.text().unwrap_or_default() }))?
            }
            _ => Response::json(&json!({ "method": req.method, "path": req.path, "query": req.query }))?,
        };
        Ok(Some(response))
    }

    fn task(&self, task: Value, _env: &Environment) -> Result<()> {
        log::info(format!("task {task}"));
        if task["fail"] == json!(true) {
            return Err(Error::internal("the task asked to fail"));
        }
        Ok(())
    }

    fn event(&self, event: &Event, _env: &Environment) -> Result<()> {
        if let Event::Other { kind, raw, .. } = event {
            log::info(format!("event {kind} {raw}"));
        }
        Ok(())
    }
}

weft_sdk::export_handler!(Probe);

#[cfg(test)]
mod tests {
    use super::*;
    use weft_sdk::testing::{self, MockHost};

    #[test]
    fn the_kv_endpoints_round_trip_through_the_store() {
        let _host = MockHost::new();
        let env = Environment::default();
        let put = testing::fetch_request("PUT", "/kv/greeting").with_json(&json!({"hi": 1})).unwrap();
        assert_eq!(testing::fetch(&Probe, put, &env).into_response().unwrap().status, 204);
        let got = testing::fetch(&Probe, testing::fetch_request("GET", "/kv/greeting"), &env).into_response().unwrap();
        assert_eq!(got.body_json::<Value>().unwrap(), json!({"value": {"hi": 1}}));
    }

    #[test]
    fn tasks_are_queued_and_logged_and_may_fail_on_purpose() {
        let host = MockHost::new();
        let env = Environment::default();
        let post =
            testing::fetch_request("POST", "/tasks").with_json(&json!({"task": {"n": 1}, "schedule": 5})).unwrap();
        assert_eq!(testing::fetch(&Probe, post, &env).into_response().unwrap().status, 202);
        assert_eq!(host.queued_tasks().len(), 1);
        assert!(Probe.task(json!({"n": 1}), &env).is_ok());
        assert_eq!(Probe.task(json!({"fail": true}), &env).unwrap_err().status(), 500);
        assert_eq!(host.log_messages()[0], r#"task {"n":1}"#);
    }
}
