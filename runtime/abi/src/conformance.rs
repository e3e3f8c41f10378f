//! The conformance suite of the host-call contract.
//!
//! Every host that answers `weft.call` — the runtime's real host (tested with an in-memory
//! `HostServices`) and the SDK's `MockHost` — runs these cases and must give exactly the
//! expected answers. A runner gives each case a fresh host whose only outbound route is
//! [`FETCH_URL`] (answering [`FETCH_STATUS`], [`FETCH_HEADERS`] and [`FETCH_BODY`]) and whose
//! host-call limit is the case's [`Case::host_calls`], sends the steps' requests in order,
//! stops at the first trap, and hands the answers and the logged lines to [`Case::check`].

use serde_json::{Value, json};

use crate::limits::{MAX_KV_KEY_BYTES, MAX_KV_LIST, MAX_KV_VALUE_BYTES, MAX_SCHEDULE_SECS};
use crate::{LogLevel, code, error};

/// The one URL the hosts under test answer.
pub const FETCH_URL: &str = "https://conformance.test/hello";
/// Its status.
pub const FETCH_STATUS: u16 = 200;
/// Its headers.
pub const FETCH_HEADERS: [(&str, &str); 1] = [("content-type", "text/plain")];
/// Its body.
pub const FETCH_BODY: &[u8] = b"hi";

/// What a host did with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A result (`{"ok":…}` or `{"error":…}`), as bytes.
    Result(Vec<u8>),
    /// A negative return code.
    Code(i64),
    /// The event ended (a per-event limit).
    Trap,
}

/// What the contract says the answer must be.
#[derive(Debug, Clone, PartialEq)]
pub enum Expect {
    /// `{"ok": value}`.
    Ok(Value),
    /// `{"error":{"code": code, "message": <any text>}}`.
    Error(&'static str),
    /// A negative return code.
    Code(i64),
    /// The event ends here.
    Trap,
}

/// One request and its expected answer.
#[derive(Debug, Clone)]
pub struct Step {
    /// The request bytes.
    pub request: Vec<u8>,
    /// The answer.
    pub expect: Expect,
}

/// A sequence of requests on one fresh host.
#[derive(Debug, Clone)]
pub struct Case {
    /// What it shows.
    pub name: &'static str,
    /// The host-call limit of the event.
    pub host_calls: u32,
    /// The requests.
    pub steps: Vec<Step>,
    /// The lines the `log` op must have recorded, in order.
    pub logs: Vec<(LogLevel, String)>,
}

impl Case {
    fn new(name: &'static str) -> Self {
        Self { name, host_calls: 10_000, steps: Vec::new(), logs: Vec::new() }
    }

    fn step(mut self, request: impl Into<RequestText>, expect: Expect) -> Self {
        self.steps.push(Step { request: request.into().0, expect });
        self
    }

    fn logged(mut self, level: LogLevel, message: &str) -> Self {
        self.logs.push((level, message.to_owned()));
        self
    }

    /// Compares what a host answered and logged with the contract.
    pub fn check(&self, answers: &[Answer], logs: &[(LogLevel, String)]) -> Result<(), String> {
        let fail = |why: String| Err(format!("case `{}`: {why}", self.name));
        let expected = self.steps.iter().position(|s| s.expect == Expect::Trap).map_or(self.steps.len(), |i| i + 1);
        if answers.len() != expected {
            return fail(format!("{} answers, expected {expected}: {answers:?}", answers.len()));
        }
        for (i, (step, answer)) in self.steps.iter().zip(answers).enumerate() {
            let request = String::from_utf8_lossy(&step.request);
            let got = match answer {
                Answer::Result(bytes) => serde_json::from_slice::<Value>(bytes).map_err(|e| e.to_string()),
                _ => Err(String::new()),
            };
            let matches = match (&step.expect, answer) {
                (Expect::Ok(value), Answer::Result(_)) => got.as_ref().is_ok_and(|got| got == &json!({ "ok": value })),
                (Expect::Error(code), Answer::Result(_)) => got.as_ref().is_ok_and(|got| {
                    got.as_object().is_some_and(|o| o.len() == 1)
                        && got["error"]["code"] == *code
                        && got["error"]["message"].is_string()
                        && got["error"].as_object().is_some_and(|o| o.len() == 2)
                }),
                (Expect::Code(expected), Answer::Code(got)) => expected == got,
                (Expect::Trap, Answer::Trap) => true,
                _ => false,
            };
            if !matches {
                let shown = match answer {
                    Answer::Result(bytes) => String::from_utf8_lossy(bytes).into_owned(),
                    other => format!("{other:?}"),
                };
                return fail(format!("step {i} `{request}`: expected {:?}, got {shown}", step.expect));
            }
        }
        if logs != self.logs.as_slice() {
            return fail(format!("logged {logs:?}, expected {:?}", self.logs));
        }
        Ok(())
    }
}

/// Request text: a JSON value or raw bytes.
pub struct RequestText(Vec<u8>);

impl From<Value> for RequestText {
    fn from(value: Value) -> Self {
        Self(serde_json::to_vec(&value).expect("JSON values encode"))
    }
}

impl From<&str> for RequestText {
    fn from(text: &str) -> Self {
        Self(text.as_bytes().to_vec())
    }
}

fn ok(value: Value) -> Expect {
    Expect::Ok(value)
}

const NULL: Value = Value::Null;

/// Every case of the contract.
pub fn cases() -> Vec<Case> {
    let long_key = "k".repeat(MAX_KV_KEY_BYTES);
    let too_long_key = "k".repeat(MAX_KV_KEY_BYTES + 1);
    // A JSON string's text is its characters plus two quotes.
    let biggest_value = "v".repeat(MAX_KV_VALUE_BYTES - 2);
    let too_big_value = "v".repeat(MAX_KV_VALUE_BYTES - 1);
    let mut list_cap = Case::new("kv.list returns at most MAX_KV_LIST keys, the first ones in order");
    for i in 0..=MAX_KV_LIST {
        list_cap = list_cap.step(json!({"op": "kv.set", "key": format!("k{i:05}"), "value": i}), ok(NULL));
    }
    let first_keys: Vec<String> = (0..MAX_KV_LIST).map(|i| format!("k{i:05}")).collect();
    list_cap = list_cap.step(json!({"op": "kv.list", "prefix": "k"}), ok(json!(first_keys)));

    let schedule_refused = format!("schedule must be between 0 and {MAX_SCHEDULE_SECS} seconds");
    let mut limit = Case::new("the call past the host-call limit ends the event");
    limit.host_calls = 2;
    vec![
        Case::new("log records a line, at info unless a level is given")
            .step(json!({"op": "log", "message": "hello"}), ok(NULL))
            .step(json!({"op": "log", "level": "warn", "message": "careful"}), ok(NULL))
            .step(json!({"op": "log", "level": "loud", "message": "x"}), Expect::Code(code::BAD_REQUEST))
            .step(json!({"op": "log", "level": "info"}), Expect::Code(code::BAD_REQUEST))
            .logged(LogLevel::Info, "hello")
            .logged(LogLevel::Warn, "careful"),
        Case::new("kv values round-trip and deleting is idempotent")
            .step(json!({"op": "kv.get", "key": "k"}), ok(NULL))
            .step(json!({"op": "kv.set", "key": "k", "value": {"a": [1, "two"]}}), ok(NULL))
            .step(json!({"op": "kv.get", "key": "k"}), ok(json!({"a": [1, "two"]})))
            .step(json!({"op": "kv.list", "prefix": ""}), ok(json!(["k"])))
            .step(json!({"op": "kv.delete", "key": "k"}), ok(NULL))
            .step(json!({"op": "kv.delete", "key": "k"}), ok(NULL))
            .step(json!({"op": "kv.get", "key": "k"}), ok(NULL))
            .step(json!({"op": "kv.list"}), ok(json!([]))),
        Case::new("kv.set of null stores null: it reads back as absent but is listed")
            .step(json!({"op": "kv.set", "key": "n", "value": 1}), ok(NULL))
            .step(json!({"op": "kv.set", "key": "n", "value": null}), ok(NULL))
            .step(json!({"op": "kv.get", "key": "n"}), ok(NULL))
            .step(json!({"op": "kv.list", "prefix": "n"}), ok(json!(["n"]))),
        Case::new("kv.list is sorted and filtered by prefix")
            .step(json!({"op": "kv.set", "key": "b", "value": 1}), ok(NULL))
            .step(json!({"op": "kv.set", "key": "a:2", "value": 2}), ok(NULL))
            .step(json!({"op": "kv.set", "key": "a:1", "value": 3}), ok(NULL))
            .step(json!({"op": "kv.list", "prefix": "a:"}), ok(json!(["a:1", "a:2"])))
            .step(json!({"op": "kv.list"}), ok(json!(["a:1", "a:2", "b"]))),
        Case::new("kv keys are 1 to MAX_KV_KEY_BYTES bytes")
            .step(json!({"op": "kv.get", "key": ""}), Expect::Error(error::BAD_REQUEST))
            .step(json!({"op": "kv.set", "key": "", "value": 1}), Expect::Error(error::BAD_REQUEST))
            .step(json!({"op": "kv.delete", "key": too_long_key}), Expect::Error(error::BAD_REQUEST))
            .step(json!({"op": "kv.set", "key": too_long_key, "value": 1}), Expect::Error(error::BAD_REQUEST))
            .step(json!({"op": "kv.set", "key": long_key, "value": 1}), ok(NULL))
            .step(json!({"op": "kv.get", "key": long_key}), ok(json!(1))),
        Case::new("kv values are at most MAX_KV_VALUE_BYTES of JSON")
            .step(json!({"op": "kv.set", "key": "v", "value": too_big_value}), Expect::Error(error::TOO_LARGE))
            .step(json!({"op": "kv.get", "key": "v"}), ok(NULL))
            .step(json!({"op": "kv.set", "key": "v", "value": biggest_value}), ok(NULL))
            .step(json!({"op": "kv.get", "key": "v"}), ok(json!(biggest_value))),
        list_cap,
        Case::new("requests that cannot be read are answered with BAD_REQUEST")
            .step("not json", Expect::Code(code::BAD_REQUEST))
            .step("[]", Expect::Code(code::BAD_REQUEST))
            .step(json!({"key": "k"}), Expect::Code(code::BAD_REQUEST))
            .step(json!({"op": "teleport"}), Expect::Code(code::BAD_REQUEST))
            .step(json!({"op": "kv.get"}), Expect::Code(code::BAD_REQUEST))
            .step(json!({"op": "kv.get", "key": 1}), Expect::Code(code::BAD_REQUEST))
            .step(json!({"op": "kv.set", "value": 1}), Expect::Code(code::BAD_REQUEST))
            .step(json!({"op": "task.queue", "task": {}, "schedule": -1}), Expect::Code(code::BAD_REQUEST))
            .step(json!({"op": "http.fetch", "request": {"method": "GET"}}), Expect::Code(code::BAD_REQUEST))
            .step(
                json!({"op": "http.fetch", "request": {"url": FETCH_URL, "headers": {"a": 1}}}),
                Expect::Code(code::BAD_REQUEST),
            ),
        Case::new("task.queue takes an object and a delay of at most a day")
            .step(json!({"op": "task.queue", "task": {"n": 1}, "schedule": 10}), ok(NULL))
            .step(json!({"op": "task.queue", "task": {}}), ok(NULL))
            .step(json!({"op": "task.queue", "task": {}, "schedule": MAX_SCHEDULE_SECS}), ok(NULL))
            .step(
                json!({"op": "task.queue", "task": {}, "schedule": MAX_SCHEDULE_SECS + 1}),
                Expect::Error(error::BAD_REQUEST),
            )
            .step(json!({"op": "task.queue", "task": [1]}), Expect::Error(error::BAD_REQUEST))
            .step(json!({"op": "task.queue", "task": null}), Expect::Error(error::BAD_REQUEST))
            .logged(LogLevel::Warn, &crate::task_refused_log(error::BAD_REQUEST, &schedule_refused))
            .logged(LogLevel::Warn, &crate::task_refused_log(error::BAD_REQUEST, "task must be a JSON object"))
            .logged(LogLevel::Warn, &crate::task_refused_log(error::BAD_REQUEST, "task must be a JSON object")),
        Case::new("http.fetch answers status, headers and a base64 body")
            .step(
                json!({"op": "http.fetch", "request": {"url": FETCH_URL}}),
                ok(json!({
                    "status": FETCH_STATUS, "headers": {"content-type": "text/plain"}, "body": "aGk=",
                })),
            )
            .step(
                json!({"op": "http.fetch", "request": {"method": "POST", "url": FETCH_URL, "body": "aGk="}}),
                ok(json!({
                    "status": FETCH_STATUS, "headers": {"content-type": "text/plain"}, "body": "aGk=",
                })),
            )
            .step(
                json!({"op": "http.fetch", "request": {"url": FETCH_URL, "body": "%%"}}),
                Expect::Error(error::BAD_REQUEST),
            )
            .step(
                json!({"op": "http.fetch", "request": {"url": FETCH_URL, "body": "aGk"}}),
                Expect::Error(error::BAD_REQUEST),
            ),
        limit
            .step(json!({"op": "log", "message": "one"}), ok(NULL))
            .step(json!({"op": "kv.get", "key": "k"}), ok(NULL))
            .step(json!({"op": "log", "message": "three"}), Expect::Trap)
            .step(json!({"op": "log", "message": "never"}), ok(NULL))
            .logged(LogLevel::Info, "one"),
    ]
}

/// The in-memory key-value store both reference hosts keep, with the contract's limits on
/// the number of keys and on list length.
#[derive(Debug, Default, Clone)]
pub struct MemoryKv {
    values: std::collections::BTreeMap<String, String>,
}

impl MemoryKv {
    /// The stored JSON text at `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// Stores `text`; refuses a new key past [`MAX_KV_KEYS`](crate::limits::MAX_KV_KEYS).
    pub fn set(&mut self, key: &str, text: String) -> Result<(), crate::Refusal> {
        if !self.values.contains_key(key) && self.values.len() >= crate::limits::MAX_KV_KEYS {
            return Err(crate::too_many_keys());
        }
        self.values.insert(key.to_owned(), text);
        Ok(())
    }

    /// Removes `key`.
    pub fn delete(&mut self, key: &str) {
        self.values.remove(key);
    }

    /// The first [`MAX_KV_LIST`] keys starting with `prefix`, sorted.
    pub fn list(&self, prefix: &str) -> Vec<String> {
        self.values.keys().filter(|k| k.starts_with(prefix)).take(MAX_KV_LIST).cloned().collect()
    }

    /// Every key and its JSON text.
    pub fn entries(&self) -> &std::collections::BTreeMap<String, String> {
        &self.values
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_compares_answers_and_logs() {
        let case = Case::new("t")
            .step(json!({"op": "log", "message": "x"}), ok(NULL))
            .step("x", Expect::Code(code::BAD_REQUEST))
            .logged(LogLevel::Info, "x");
        let logs = [(LogLevel::Info, "x".to_owned())];
        let good = [Answer::Result(br#"{"ok":null}"#.to_vec()), Answer::Code(-2)];
        assert_eq!(case.check(&good, &logs), Ok(()));
        assert!(case.check(&good[..1], &logs).is_err());
        assert!(case.check(&good, &[]).is_err());
        assert!(case.check(&[Answer::Result(br#"{"ok":1}"#.to_vec()), Answer::Code(-2)], &logs).is_err());
    }
}
