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
use crate::http::{OutboundRequest, OutboundResponse, Request};
use crate::log::Level;
use crate::{Environment, Error};
use weft_abi::conformance::MemoryKv;
use weft_abi::{FetchResponse, HostRequest, KeyArgs, KvListArgs, KvSetArgs, LogArgs, LogLevel, TaskQueueArgs, code};

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
    kv: MemoryKv,
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

    /// Makes the call after the first `max` panic, as the real host ends the event past its
    /// per-event host-call limit.
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

    /// The kv store's contents (a key set to `null` holds `null`, as on the real host).
    pub fn kv(&self) -> BTreeMap<String, Value> {
        with(|state| {
            state.kv.entries().iter().map(|(k, v)| (k.clone(), serde_json::from_str(v).unwrap_or_default())).collect()
        })
    }

    /// The value at `key` in the kv store.
    pub fn kv_get(&self, key: &str) -> Option<Value> {
        with(|state| state.kv.get(key).and_then(|text| serde_json::from_str(text).ok()))
    }

    /// Stores `value` at `key` in the kv store, as `kv.set` would (`null` is stored as `null`).
    ///
    /// # Panics
    ///
    /// If the contract refuses the key or value (see `weft_abi::limits`).
    pub fn kv_set(&self, key: &str, value: Value) {
        let text = weft_abi::check_key(key).and_then(|()| weft_abi::check_value(&value)).expect("a valid kv entry");
        with(|state| state.kv.set(key, text)).expect("room for the key");
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

fn ok(value: &Value) -> Vec<u8> {
    weft_abi::ok_answer(value)
}

fn refused(refusal: weft_abi::Refusal) -> Vec<u8> {
    weft_abi::error_answer(refusal.code, &refusal.message)
}

/// The native transport: answers one op request as the real host does. Requests are read
/// and checked by the contract crate (weft-abi) that the runtime uses, and both hosts pass
/// the same conformance suite (`weft_abi::conformance`).
///
/// # Panics
///
/// Past the call limit set with [`MockHost::limit_calls`]: the real host ends the event
/// there (failure kind `host_call_limit`), which a handler cannot catch either.
pub(crate) fn host_call(request: &[u8]) -> Result<Vec<u8>, i64> {
    let over_limit = with(|state| state.call_limit.is_some_and(|limit| state.calls.len() >= limit));
    if over_limit {
        panic!("host-call limit reached: on the real host the event ends here with failure kind `host_call_limit`");
    }
    with(|state| state.calls.push(serde_json::from_slice(request).unwrap_or(Value::Null)));
    let request = HostRequest::parse(request).ok_or(code::BAD_REQUEST)?;
    Ok(with(|state| answer(state, request)))
}

fn answer(state: &mut State, request: HostRequest) -> Vec<u8> {
    match request {
        HostRequest::Log(LogArgs { level, message }) => {
            let level = match level {
                LogLevel::Debug => Level::Debug,
                LogLevel::Info => Level::Info,
                LogLevel::Warn => Level::Warn,
                LogLevel::Error => Level::Error,
            };
            state.logs.push(LogRecord { level, message });
            ok(&Value::Null)
        }
        HostRequest::KvGet(KeyArgs { key }) => match weft_abi::check_key(&key) {
            Ok(()) => ok(&state.kv.get(&key).and_then(|text| serde_json::from_str(text).ok()).unwrap_or_default()),
            Err(refusal) => refused(refusal),
        },
        HostRequest::KvSet(KvSetArgs { key, value }) => {
            match weft_abi::check_key(&key).and_then(|()| weft_abi::check_value(&value)) {
                Ok(text) => match state.kv.set(&key, text) {
                    Ok(()) => ok(&Value::Null),
                    Err(refusal) => refused(refusal),
                },
                Err(refusal) => refused(refusal),
            }
        }
        HostRequest::KvDelete(KeyArgs { key }) => match weft_abi::check_key(&key) {
            Ok(()) => {
                state.kv.delete(&key);
                ok(&Value::Null)
            }
            Err(refusal) => refused(refusal),
        },
        HostRequest::KvList(KvListArgs { prefix }) => ok(&json!(state.kv.list(&prefix))),
        HostRequest::TaskQueue(TaskQueueArgs { task, schedule }) => match weft_abi::check_task(&task, schedule) {
            Ok(()) => {
                state.tasks.push(QueuedTask { task, schedule: Some(u64::from(schedule)) });
                ok(&Value::Null)
            }
            Err(refusal) => {
                let message = weft_abi::task_refused_log(refusal.code, &refusal.message);
                state.logs.push(LogRecord { level: Level::Warn, message });
                refused(refusal)
            }
        },
        HostRequest::HttpFetch(request) => {
            let body = match weft_abi::decode_body(request.body.as_deref()) {
                Ok(body) => body,
                Err(refusal) => return refused(refusal),
            };
            let (method, url) = (request.method.clone(), request.url.clone());
            state.fetches.push(OutboundRequest {
                method: request.method,
                url: request.url,
                headers: request.headers.into_iter().collect(),
                body: request.body.map(|_| body),
            });
            match state.responses.get(&url) {
                Some(Ok(response)) => ok(&json!(FetchResponse {
                    status: response.status,
                    headers: response.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                    body: weft_abi::encode_body(&response.body),
                })),
                Some(Err((code, message))) => weft_abi::error_answer(code, message),
                None => weft_abi::error_answer("not_mocked", &format!("no mock response for {method} {url}")),
            }
        }
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
        "abi": abi::JSON_ABI_VERSION,
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
    use crate::tasks::MAX_SCHEDULE_SECS;
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
    #[should_panic(expected = "host_call_limit")]
    fn the_call_past_the_limit_ends_the_event_as_on_the_real_host() {
        let host = MockHost::new();
        host.limit_calls(1);
        kv::set("a", &1).unwrap();
        let _ = kv::get::<u32>("a");
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
        assert_eq!(host_call(b"nope"), Err(code::BAD_REQUEST));
        assert_eq!(host_call(br#"{"op":"teleport"}"#), Err(code::BAD_REQUEST));
        let err = crate::host::call("teleport", json!({}), 500).unwrap_err();
        assert_eq!(err.kind(), Some("invalid_request"));
    }

    /// The contract's conformance suite, which the runtime's real host also passes
    /// (runtime/tests/conformance.rs): the mock cannot drift from production.
    #[test]
    fn the_mock_host_passes_the_host_call_conformance_suite() {
        use weft_abi::conformance::{self, Answer};
        let mut failures = Vec::new();
        for case in conformance::cases() {
            let host = MockHost::new();
            host.limit_calls(case.host_calls as usize);
            let mut response = OutboundResponse::new(conformance::FETCH_STATUS).with_body(conformance::FETCH_BODY);
            for (name, value) in conformance::FETCH_HEADERS {
                response = response.with_header(name, value);
            }
            host.respond(conformance::FETCH_URL, response);
            let mut answers = Vec::new();
            for step in &case.steps {
                let answer = std::panic::catch_unwind(|| host_call(&step.request));
                match answer {
                    Ok(Ok(bytes)) => answers.push(Answer::Result(bytes)),
                    Ok(Err(code)) => answers.push(Answer::Code(code)),
                    Err(_) => {
                        answers.push(Answer::Trap);
                        break;
                    }
                }
            }
            let logs: Vec<_> = host
                .logs()
                .into_iter()
                .map(|log| (serde_json::from_value(json!(log.level)).unwrap(), log.message))
                .collect();
            if let Err(failure) = case.check(&answers, &logs) {
                failures.push(failure);
            }
        }
        assert!(failures.is_empty(), "{failures:#?}");
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
