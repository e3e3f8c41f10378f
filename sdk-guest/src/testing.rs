//! Unit-testing handlers natively (not on wasm32): a mock host and invocation helpers.
//!
//! On native targets every host operation ([`log`](crate::log), [`kv`](crate::kv),
//! [`tasks`](crate::tasks), [`http::fetch`](crate::http::fetch)) goes, as JSON, to a
//! thread-local [`MockHost`]: it records logs, queued tasks and fetches, keeps an in-memory
//! kv store, and answers fetches with responses registered by URL. Rust's test harness
//! runs each test on its own thread, so tests do not see each other's state.
//!
//! [`invoke`] runs the same dispatch code as the wasm export, from invocation JSON to
//! outcome JSON; [`fetch`] and [`run`] are typed shortcuts over it.
//!
//! ```
//! use serde_json::json;
//! use weft_sdk::http::{self, OutboundRequest, OutboundResponse};
//! use weft_sdk::testing::MockHost;
//!
//! let host = MockHost::new();
//! host.respond("https://api.test/me", OutboundResponse::new(200).with_body(r#"{"id":1}"#));
//! let res = http::fetch(OutboundRequest::get("https://api.test/me"))?;
//! assert_eq!(res.json::<serde_json::Value>()?, json!({"id": 1}));
//! assert_eq!(host.fetches()[0].url, "https://api.test/me");
//! # Ok::<(), weft_sdk::Error>(())
//! ```

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};

use crate::abi;
use crate::handler::{Handler, Outcome};
use crate::host::{INVALID_REQUEST, LIMIT_REACHED};
use crate::http::{OutboundRequest, OutboundResponse, Request};
use crate::log::Level;
use crate::tasks::MAX_SCHEDULE_SECS;
use crate::{Environment, Error};

/// One line logged through the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// The level.
    pub level: Level,
    /// The message.
    pub message: String,
}

/// One task queued through the host.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuedTask {
    /// The task object.
    pub task: Value,
    /// The requested delay in seconds, if one was given.
    pub schedule: Option<u64>,
}

#[derive(Default)]
struct State {
    calls: Vec<Value>,
    call_limit: Option<usize>,
    logs: Vec<LogRecord>,
    kv: BTreeMap<String, Value>,
    tasks: Vec<QueuedTask>,
    fetches: Vec<OutboundRequest>,
    responses: HashMap<String, Result<OutboundResponse, (String, String)>>,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::default());
}

fn with<R>(f: impl FnOnce(&mut State) -> R) -> R {
    STATE.with(|state| f(&mut state.borrow_mut()))
}

/// A handle to this thread's mock host.
///
/// [`MockHost::new`] resets the state; the methods read and change it. The handle is
/// cheap and may be created again to reset.
///
/// ```
/// use serde_json::json;
/// use weft_sdk::testing::{self, MockHost};
/// use weft_sdk::{Environment, Handler, Result};
///
/// struct Counter;
///
/// impl Handler for Counter {
///     fn task(&self, _task: serde_json::Value, _env: &Environment) -> Result<()> {
///         let n = weft_sdk::kv::get::<u64>("n")?.unwrap_or(0) + 1;
///         weft_sdk::kv::set("n", &n)?;
///         log::info!("count: {n}");
///         Ok(())
///     }
/// }
///
/// let host = MockHost::new();
/// host.kv_set("n", json!(41));
/// assert!(testing::run(&Counter, testing::task_event(json!({})), &Environment::default()).is_none());
/// assert_eq!(host.kv_get("n"), Some(json!(42)));
/// assert_eq!(host.log_messages(), ["count: 42"]);
/// ```
#[derive(Debug)]
pub struct MockHost {
    _not_send: std::marker::PhantomData<*const ()>,
}

impl MockHost {
    /// Resets this thread's mock host (no logs, empty kv, no tasks, no canned responses,
    /// no call limit) and returns a handle to it. It also installs the
    /// [`log`](crate::log) facade's logger, so `log::info!(…)` lines are recorded like
    /// [`log::info`](crate::log::info())'s.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        crate::log::init();
        with(|state| *state = State::default());
        Self { _not_send: std::marker::PhantomData }
    }

    /// Every op request received so far, as JSON (e.g. `{"op":"kv.get","key":"a"}`).
    pub fn calls(&self) -> Vec<Value> {
        with(|state| state.calls.clone())
    }

    /// Makes every call after the first `max` fail with -3 (host-call limit reached),
    /// like the real host's per-event limit.
    pub fn limit_calls(&self, max: usize) {
        with(|state| state.call_limit = Some(max));
    }

    /// The lines logged so far.
    pub fn logs(&self) -> Vec<LogRecord> {
        with(|state| state.logs.clone())
    }

    /// The messages logged so far, any level.
    pub fn log_messages(&self) -> Vec<String> {
        with(|state| state.logs.iter().map(|log| log.message.clone()).collect())
    }

    /// The kv store's contents.
    pub fn kv(&self) -> BTreeMap<String, Value> {
        with(|state| state.kv.clone())
    }

    /// The value at `key` in the kv store.
    pub fn kv_get(&self, key: &str) -> Option<Value> {
        with(|state| state.kv.get(key).cloned())
    }

    /// Stores `value` at `key` in the kv store (a `null` value deletes).
    pub fn kv_set(&self, key: &str, value: Value) {
        with(|state| kv_set(state, key, value));
    }

    /// The tasks queued so far.
    pub fn queued_tasks(&self) -> Vec<QueuedTask> {
        with(|state| state.tasks.clone())
    }

    /// Answers every `http.fetch` of `url` (exact match, any method) with `response`.
    pub fn respond(&self, url: &str, response: OutboundResponse) {
        with(|state| state.responses.insert(url.to_owned(), Ok(response)));
    }

    /// Fails every `http.fetch` of `url` with the host error `{"code":code,"message":…}`,
    /// as the real host does for a refused or failed request (`not_allowed`, `timeout`,
    /// `failed`, …).
    ///
    /// ```
    /// use weft_sdk::http::{self, OutboundRequest};
    /// use weft_sdk::testing::MockHost;
    ///
    /// let host = MockHost::new();
    /// host.respond_error("https://down.test/", "timeout", "took too long");
    /// let err = http::fetch(OutboundRequest::get("https://down.test/")).unwrap_err();
    /// assert_eq!((err.status(), err.kind()), (502, Some("timeout")));
    /// ```
    pub fn respond_error(&self, url: &str, code: &str, message: &str) {
        with(|state| state.responses.insert(url.to_owned(), Err((code.to_owned(), message.to_owned()))));
    }

    /// The outbound requests made so far. A fetch of a URL with no registered response
    /// fails with host error code `not_mocked`.
    pub fn fetches(&self) -> Vec<OutboundRequest> {
        with(|state| state.fetches.clone())
    }
}

fn kv_set(state: &mut State, key: &str, value: Value) {
    if value.is_null() {
        state.kv.remove(key);
    } else {
        state.kv.insert(key.to_owned(), value);
    }
}

fn ok(value: Value) -> Value {
    json!({ "ok": value })
}

fn error(code: &str, message: impl Into<String>) -> Value {
    json!({ "error": { "code": code, "message": message.into() } })
}

fn string_arg<'a>(request: &'a Value, name: &str) -> Result<&'a str, Value> {
    request.get(name).and_then(Value::as_str).ok_or_else(|| error("invalid", format!("`{name}` must be a string")))
}

/// The native transport: handles one op request like the real host's `call`.
pub(crate) fn host_call(request: &[u8]) -> Result<Vec<u8>, i64> {
    let request: Value = serde_json::from_slice(request).map_err(|_| INVALID_REQUEST)?;
    let op = request.get("op").and_then(Value::as_str).ok_or(INVALID_REQUEST)?.to_owned();
    let result = with(|state| {
        if state.call_limit.is_some_and(|limit| state.calls.len() >= limit) {
            return Err(LIMIT_REACHED);
        }
        state.calls.push(request.clone());
        let result = match op.as_str() {
            "log" => op_log(state, &request),
            "kv.get" => string_arg(&request, "key").map(|key| ok(state.kv.get(key).cloned().unwrap_or(Value::Null))),
            "kv.set" => string_arg(&request, "key").map(|key| {
                kv_set(state, key, request.get("value").cloned().unwrap_or_default());
                ok(Value::Null)
            }),
            "kv.delete" => string_arg(&request, "key").map(|key| {
                state.kv.remove(key);
                ok(Value::Null)
            }),
            "kv.list" => string_arg(&request, "prefix").map(|prefix| {
                let keys: Vec<&String> = state.kv.keys().filter(|key| key.starts_with(prefix)).collect();
                ok(json!(keys))
            }),
            "task.queue" => op_task_queue(state, &request),
            "http.fetch" => op_http_fetch(state, &request),
            _ => return Err(INVALID_REQUEST),
        };
        Ok(result.unwrap_or_else(|err| err))
    })?;
    Ok(serde_json::to_vec(&result).expect("json values serialize"))
}

fn op_log(state: &mut State, request: &Value) -> Result<Value, Value> {
    let level = request
        .get("level")
        .cloned()
        .and_then(|level| serde_json::from_value::<Level>(level).ok())
        .ok_or_else(|| error("invalid", "`level` must be debug, info, warn or error"))?;
    let message = string_arg(request, "message")?.to_owned();
    state.logs.push(LogRecord { level, message });
    Ok(ok(Value::Null))
}

fn op_task_queue(state: &mut State, request: &Value) -> Result<Value, Value> {
    let task = request
        .get("task")
        .filter(|task| task.is_object())
        .ok_or_else(|| error("invalid", "`task` must be an object"))?
        .clone();
    let schedule = match request.get("schedule") {
        None | Some(Value::Null) => None,
        Some(schedule) => Some(
            schedule
                .as_u64()
                .filter(|secs| *secs <= u64::from(MAX_SCHEDULE_SECS))
                .ok_or_else(|| error("invalid", "`schedule` must be 0..=86400 seconds"))?,
        ),
    };
    state.tasks.push(QueuedTask { task, schedule });
    Ok(ok(Value::Null))
}

fn op_http_fetch(state: &mut State, request: &Value) -> Result<Value, Value> {
    let outbound: OutboundRequest = request
        .get("request")
        .cloned()
        .and_then(|req| serde_json::from_value(req).ok())
        .ok_or_else(|| error("invalid", "`request` must be {method, url, headers, body?}"))?;
    let url = outbound.url.clone();
    let method = outbound.method.clone();
    state.fetches.push(outbound);
    match state.responses.get(&url) {
        Some(Ok(response)) => Ok(ok(serde_json::to_value(response).expect("serializes"))),
        Some(Err((code, message))) => Err(error(code, message.clone())),
        None => Err(error("not_mocked", format!("no mock response for {method} {url}"))),
    }
}

/// Runs `handler` on an invocation exactly like the wasm export `weft_handle` does:
/// serializes `invocation`, dispatches it, and parses the outcome JSON.
pub fn invoke<H: Handler + ?Sized>(handler: &H, invocation: &Value) -> Value {
    let input = serde_json::to_vec(invocation).expect("json values serialize");
    let output = abi::dispatch(handler, &input);
    serde_json::from_slice(&output).expect("dispatch returns json")
}

/// Runs `handler` on `event` (event JSON, e.g. from [`fetch_event`]) in `env`, through
/// [`invoke`], and returns the typed outcome.
///
/// ```
/// use serde_json::json;
/// use weft_sdk::testing::{self, MockHost};
/// use weft_sdk::{Environment, Error, Handler, LifecycleEvent, Result};
///
/// struct Strict;
///
/// impl Handler for Strict {
///     fn installation_setup(&self, _event: &LifecycleEvent, env: &Environment) -> Result<()> {
///         match env.configuration()["channel"].as_str() {
///             Some(channel) if channel.starts_with('#') => Ok(()),
///             _ => Err(Error::bad_request("channel: must start with #")),
///         }
///     }
/// }
///
/// let _host = MockHost::new();
/// let env = Environment::default().with_configuration(json!({"channel": "general"}));
/// let err = testing::run(&Strict, testing::event("installation_setup", json!({})), &env).into_error().unwrap();
/// assert_eq!((err.status(), err.message()), (400, "channel: must start with #"));
/// ```
pub fn run<H: Handler + ?Sized>(handler: &H, event: Value, env: &Environment) -> Outcome {
    let outcome = invoke(handler, &invocation(event, env));
    Outcome::from_json(&outcome)
        .unwrap_or_else(|| Outcome::Error(Error::internal(format!("malformed outcome: {outcome}"))))
}

/// Runs `handler` on a `fetch` event for `request` in `env`, through [`invoke`].
pub fn fetch<H: Handler + ?Sized>(handler: &H, request: Request, env: &Environment) -> Outcome {
    run(handler, fetch_event(&request), env)
}

/// The invocation JSON `{"abi":1,"event":…,"environment":…}`.
pub fn invocation(event: Value, env: &Environment) -> Value {
    json!({
        "abi": abi::ABI_VERSION,
        "event": event,
        "environment": serde_json::to_value(env).expect("environments serialize"),
    })
}

/// A request as the host would send it for `method` and `path` (which may include a
/// `?query`), at installation `inst_test` of integration `test`.
pub fn fetch_request(method: &str, path: &str) -> Request {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let path = if path.starts_with('/') { path.to_owned() } else { format!("/{path}") };
    let separator = if query.is_empty() { "" } else { "?" };
    Request {
        method: method.to_owned(),
        url: format!("http://localhost/v1/integrations/test/installations/inst_test{path}{separator}{query}"),
        path,
        query: query.to_owned(),
        ..Request::default()
    }
}

/// A `fetch` event JSON for `request` (event id `evt_test`).
pub fn fetch_event(request: &Request) -> Value {
    json!({
        "eventId": "evt_test",
        "type": "fetch",
        "request": serde_json::to_value(request).expect("requests serialize"),
    })
}

/// A `task` event JSON for `task` (event id `evt_test`).
pub fn task_event(task: Value) -> Value {
    json!({ "eventId": "evt_test", "type": "task", "task": task })
}

/// An event JSON of type `kind` (event id `evt_test`) with the fields of `fields` (an
/// object, e.g. `json!({"installationId": "inst_test"})`).
pub fn event(kind: &str, fields: Value) -> Value {
    let mut event = json!({ "eventId": "evt_test", "type": kind });
    if let (Value::Object(event), Value::Object(fields)) = (&mut event, fields) {
        event.extend(fields);
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Event, LifecycleEvent, Response, Result, kv, log, tasks};

    #[derive(Default)]
    struct Recorder;

    impl Handler for Recorder {
        fn fetch(&self, req: Request, env: &Environment) -> Result<Option<Response>> {
            log::info(format!("{} {}", req.method, req.path));
            match req.path.as_str() {
                "/config" => Ok(Some(Response::json(env.configuration())?)),
                "/upstream" => {
                    let res =
                        crate::http::fetch(OutboundRequest::post("https://api.test/x").with_json(&json!({"a": 1}))?)?;
                    Ok(Some(Response::new(res.status).with_body(res.body)))
                }
                _ => Ok(None),
            }
        }

        fn task(&self, task: Value, _env: &Environment) -> Result<()> {
            kv::set("last_task", &task)
        }

        fn installation_setup(&self, event: &LifecycleEvent, _env: &Environment) -> Result<()> {
            tasks::queue(&json!({"setup": event.installation_id}), 10)
        }

        fn event(&self, event: &Event, _env: &Environment) -> Result<()> {
            Err(Error::new(422, format!("unexpected {}", event.kind())))
        }
    }

    #[test]
    fn fetch_runs_through_the_json_contract() {
        let host = MockHost::new();
        let env = Environment::default().with_configuration(json!({"x": true}));
        let res = fetch(&Recorder, fetch_request("POST", "/config?a=1"), &env).into_response().unwrap();
        assert_eq!(res.status, 200);
        assert_eq!(res.body_json::<Value>().unwrap(), json!({"x": true}));
        assert_eq!(host.logs(), [LogRecord { level: Level::Info, message: "POST /config".into() }]);
    }

    #[test]
    fn unhandled_fetches_give_the_empty_outcome() {
        let _host = MockHost::new();
        let outcome =
            invoke(&Recorder, &invocation(fetch_event(&fetch_request("GET", "/nope")), &Environment::default()));
        assert_eq!(outcome, json!({}));
    }

    #[test]
    fn tasks_and_lifecycle_events_use_the_mock_kv_and_queue() {
        let host = MockHost::new();
        let env = Environment::default();
        assert!(run(&Recorder, task_event(json!({"n": 1})), &env).is_none());
        assert_eq!(host.kv_get("last_task"), Some(json!({"n": 1})));

        let setup = event("installation_setup", json!({"installationId": "inst_1"}));
        assert!(run(&Recorder, setup, &env).is_none());
        assert_eq!(host.queued_tasks(), [QueuedTask { task: json!({"setup": "inst_1"}), schedule: Some(10) }]);
    }

    #[test]
    fn other_events_reach_the_event_method() {
        let _host = MockHost::new();
        let err = run(&Recorder, event("custom_thing", json!({})), &Environment::default()).into_error().unwrap();
        assert_eq!(err, Error::new(422, "unexpected custom_thing"));
    }

    #[test]
    fn kv_round_trips_and_lists_by_prefix() {
        let host = MockHost::new();
        kv::set("a:1", &json!({"v": 1})).unwrap();
        kv::set("a:2", "two").unwrap();
        kv::set("b", &3).unwrap();
        assert_eq!(kv::get::<Value>("a:1").unwrap(), Some(json!({"v": 1})));
        assert_eq!(kv::get::<String>("a:2").unwrap().as_deref(), Some("two"));
        assert_eq!(kv::get::<u32>("missing").unwrap(), None);
        assert_eq!(kv::list("a:").unwrap(), ["a:1", "a:2"]);
        kv::delete("a:1").unwrap();
        assert_eq!(kv::list("").unwrap(), ["a:2", "b"]);
        assert_eq!(kv::get::<u32>("a:2").unwrap_err().status(), 500);
        assert_eq!(host.kv().len(), 2);
        assert_eq!(host.calls()[0], json!({"op": "kv.set", "key": "a:1", "value": {"v": 1}}));
    }

    #[test]
    fn fetch_uses_canned_responses_and_records_requests() {
        let host = MockHost::new();
        host.respond("https://api.test/x", OutboundResponse::new(201).with_body("made"));
        let res = fetch(&Recorder, fetch_request("GET", "/upstream"), &Environment::default()).into_response().unwrap();
        assert_eq!((res.status, res.body_text().unwrap()), (201, "made"));
        let sent = &host.fetches()[0];
        assert_eq!(sent.method, "POST");
        assert_eq!(sent.header("content-type"), Some("application/json"));
        assert_eq!(sent.body.as_deref(), Some(br#"{"a":1}"#.as_slice()));
        assert_eq!(host.calls()[1]["request"]["body"], crate::codec::encode(br#"{"a":1}"#));
    }

    #[test]
    fn fetch_errors_map_to_502_with_the_host_code() {
        let host = MockHost::new();
        let err = crate::http::fetch(OutboundRequest::get("https://unmocked.test/")).unwrap_err();
        assert_eq!((err.status(), err.kind()), (502, Some("not_mocked")));

        host.respond_error("https://api.test/x", "forbidden", "host not allowed");
        let err = fetch(&Recorder, fetch_request("GET", "/upstream"), &Environment::default()).into_error().unwrap();
        assert_eq!(err.status(), 502);
        assert_eq!(err.message(), "http.fetch failed: forbidden: host not allowed");
    }

    #[test]
    fn the_call_limit_surfaces_as_a_limit_error() {
        let host = MockHost::new();
        host.limit_calls(1);
        kv::set("a", &1).unwrap();
        let err = kv::get::<u32>("a").unwrap_err();
        assert_eq!((err.status(), err.kind()), (500, Some("limit")));
        log::info("falls back to stderr");
        assert!(host.logs().is_empty());
        assert_eq!(host.calls().len(), 1);
    }

    #[test]
    fn invalid_tasks_are_rejected_before_the_host() {
        let host = MockHost::new();
        assert!(tasks::queue(&json!([1]), 0).is_err());
        assert!(tasks::queue(&json!({}), MAX_SCHEDULE_SECS + 1).is_err());
        assert!(host.calls().is_empty());
        tasks::queue(&json!({}), MAX_SCHEDULE_SECS).unwrap();
        assert_eq!(host.queued_tasks()[0].schedule, Some(86_400));
    }

    #[test]
    fn unknown_ops_and_bad_json_get_code_minus_two() {
        let _host = MockHost::new();
        assert_eq!(host_call(b"nope"), Err(INVALID_REQUEST));
        assert_eq!(host_call(br#"{"op":"teleport"}"#), Err(INVALID_REQUEST));
        let err = crate::host::call("teleport", json!({}), 500).unwrap_err();
        assert_eq!(err.kind(), Some("invalid_request"));
    }

    #[test]
    fn mock_host_new_resets_state() {
        let host = MockHost::new();
        log::warn("x");
        kv::set("k", &1).unwrap();
        assert_eq!(host.logs()[0].level, Level::Warn);
        let host = MockHost::new();
        assert!(host.logs().is_empty() && host.kv().is_empty() && host.calls().is_empty());
    }

    #[test]
    fn fetch_request_splits_the_query() {
        let req = fetch_request("GET", "/a/b?x=1&y=2");
        assert_eq!(req.path, "/a/b");
        assert_eq!(req.query, "x=1&y=2");
        assert_eq!(req.url, "http://localhost/v1/integrations/test/installations/inst_test/a/b?x=1&y=2");
        assert_eq!(fetch_request("GET", "c").path, "/c");
    }
}
