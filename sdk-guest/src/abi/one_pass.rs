//! The fast path of [`parse_invocation`](super::parse_invocation): the invocation decoded
//! in a single pass over its bytes, for the layout the weft host writes — `type` first in
//! the event object, so the event's kind is known before its payload arrives.
//!
//! It never reports an error of its own: anything it does not expect (another order, a
//! duplicate field, a wrong type, another `abi`) makes it give up with `None`, and the
//! general path decodes the invocation again and words the error. Both paths therefore
//! accept and refuse exactly the same invocations.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::environment::Environment;
use crate::event::{Event, FetchEvent, LifecycleEvent, LifecycleKind};
use crate::http::Request;

/// Decodes `invocation` in one pass, or `None` to leave it to the general path.
pub(super) fn parse(invocation: &[u8]) -> Option<(Event, Environment)> {
    let mut deserializer = serde_json::Deserializer::from_slice(invocation);
    let parsed = deserializer.deserialize_map(InvocationVisitor).ok()?;
    deserializer.end().ok()?;
    parsed
}

/// Gives up on the fast path; the message is never shown.
fn give_up<E: serde::de::Error>() -> E {
    E::custom("not the one-pass layout")
}

/// Marks a field as seen, giving up on a duplicate (the general path refuses those).
fn first_time<E: serde::de::Error>(seen: &mut bool) -> Result<(), E> {
    if std::mem::replace(seen, true) { Err(give_up()) } else { Ok(()) }
}

struct InvocationVisitor;

impl<'de> Visitor<'de> for InvocationVisitor {
    type Value = Option<(Event, Environment)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an invocation object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut abi_seen, mut event, mut environment) = (false, None, None);
        while let Some(key) = map.next_key::<&str>()? {
            match key {
                "abi" => {
                    first_time(&mut abi_seen)?;
                    if map.next_value::<u64>()? != super::JSON_ABI_VERSION {
                        return Err(give_up());
                    }
                }
                "event" => {
                    if event.is_some() {
                        return Err(give_up());
                    }
                    event = Some(map.next_value_seed(EventSeed)?);
                }
                "environment" => {
                    if environment.is_some() {
                        return Err(give_up());
                    }
                    let text = map.next_value::<&RawValue>()?;
                    environment = Some(super::environment(text.get().as_bytes()).map_err(|_| give_up())?);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(event.map(|event| (event, environment.unwrap_or_default())))
    }
}

/// Decodes an event object whose first field is `type`.
struct EventSeed;

impl<'de> DeserializeSeed<'de> for EventSeed {
    type Value = Event;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Event, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EventSeed {
    type Value = Event;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an event object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Event, A::Error> {
        if map.next_key::<&str>()? != Some("type") {
            return Err(give_up());
        }
        let kind: String = map.next_value()?;
        let keep_raw = kind != "fetch" && kind != "task";
        // Lifecycle and other events keep every field in `raw`; the fields the general path
        // decodes itself must appear at most once and have the right type.
        let mut raw = Map::new();
        let (mut event_id, mut request, mut task) = (None, None, None);
        let (mut event_id_seen, mut request_seen, mut task_seen) = (false, false, false);
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "type" => return Err(give_up()),
                "eventId" => {
                    first_time(&mut event_id_seen)?;
                    event_id = map.next_value::<Option<String>>()?;
                    if keep_raw {
                        raw.insert(key, event_id.clone().map_or(Value::Null, Value::String));
                    }
                    continue;
                }
                "request" => first_time(&mut request_seen)?,
                "task" => first_time(&mut task_seen)?,
                _ => {}
            }
            match key.as_str() {
                "request" if kind == "fetch" => request = map.next_value::<Option<Request>>()?,
                "task" if kind == "task" => task = map.next_value::<Option<Value>>()?,
                _ if keep_raw => {
                    let value: Value = map.next_value()?;
                    raw.insert(key, value);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let event_id = event_id.unwrap_or_default();
        Ok(match kind.as_str() {
            "fetch" => Event::Fetch(FetchEvent { event_id, request: request.unwrap_or_default() }),
            "task" => Event::Task { event_id, task: task.unwrap_or(Value::Null) },
            _ => {
                raw.insert("type".to_owned(), Value::String(kind.clone()));
                match kind.parse::<LifecycleKind>() {
                    Ok(kind) => Event::Lifecycle(LifecycleEvent::from_raw(event_id, kind, raw.into())),
                    Err(()) => Event::Other { event_id, kind, raw: raw.into() },
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::parse_in_parts;
    use super::*;

    /// The environment the host writes, encoded ahead of the event.
    fn environment() -> Value {
        json!({"apiEndpoint": "http://127.0.0.1:8080", "installation": {
            "id": "inst_x", "configuration": {"greeting": "hi"}, "externalIds": ["a"], "extra": true}})
    }

    /// An invocation laid out as `weft::dispatch::invocation` writes it: `type` first.
    fn host_layout(event_rest: &str) -> String {
        format!(r#"{{"abi":1,"event":{event_rest},"environment":{}}}"#, environment())
    }

    #[test]
    fn the_hosts_layout_decodes_in_one_pass_to_what_the_general_path_gives() {
        let invocations = [
            host_layout(
                r#"{"type":"fetch","eventId":"evt_1","request":{"method":"POST","url":"http://h/x?q=1","path":"/x",
                   "query":"q=1","headers":{"a":"b"},"body":"aGk="}}"#,
            ),
            host_layout(r#"{"type":"fetch","eventId":"evt_2","request":null,"task":[1]}"#),
            host_layout(r#"{"type":"fetch"}"#),
            host_layout(r#"{"type":"task","eventId":"evt_3","task":{"n":1},"request":{"method":7}}"#),
            host_layout(r#"{"type":"task","eventId":null}"#),
            host_layout(r#"{"type":"installation_setup","eventId":"e","installationId":"inst_x","x":[1,{"y":2}]}"#),
            host_layout(r#"{"type":"space_content_updated","eventId":"e","spaceId":"sp","request":1,"task":null}"#),
            r#"{"abi":1,"event":{"type":"task","eventId":"e"}}"#.to_owned(),
            r#"{"abi":1,"event":{"type":"task","eventId":"e"},"environment":null,"other":{"a":[]}}"#.to_owned(),
            r#"{"event":{"type":"task","eventId":"e"},"abi":1}"#.to_owned(),
        ];
        for invocation in &invocations {
            let fast = parse(invocation.as_bytes()).unwrap_or_else(|| panic!("one pass gave up on {invocation}"));
            let general = parse_in_parts(invocation.as_bytes()).unwrap();
            assert_eq!(fast, general, "{invocation}");
        }
    }

    #[test]
    fn other_layouts_are_left_to_the_general_path() {
        // `type` after the payload, as a sorted JSON map would write it; an `abi` of null.
        for invocation in [
            r#"{"abi":1,"event":{"eventId":"e","request":{"path":"/p"},"type":"fetch"}}"#,
            r#"{"abi":null,"event":{"type":"task","eventId":"e"}}"#,
        ] {
            assert_eq!(parse(invocation.as_bytes()), None, "{invocation}");
            assert!(parse_in_parts(invocation.as_bytes()).is_ok(), "{invocation}");
        }
    }

    #[test]
    fn whatever_the_general_path_refuses_the_one_pass_gives_up_on() {
        for invocation in [
            r#"{"abi":2,"event":{"type":"task"}}"#,
            r#"{"abi":1,"abi":1,"event":{"type":"task"}}"#,
            r#"{"abi":1}"#,
            r#"{"abi":1,"event":[]}"#,
            r#"{"abi":1,"event":{"type":"task"},"event":{"type":"task"}}"#,
            r#"{"abi":1,"event":{"type":"task"},"environment":[]}"#,
            r#"{"abi":1,"event":{"type":null}}"#,
            r#"{"abi":1,"event":{"type":"fetch","type":"task"}}"#,
            r#"{"abi":1,"event":{"type":"fetch","eventId":1}}"#,
            r#"{"abi":1,"event":{"type":"fetch","eventId":"a","eventId":"b"}}"#,
            r#"{"abi":1,"event":{"type":"fetch","request":{"body":"!!"}}}"#,
            r#"{"abi":1,"event":{"type":"fetch","request":{},"request":{}}}"#,
            r#"{"abi":1,"event":{"type":"fetch","task":1,"task":2}}"#,
            r#"{"abi":1,"event":{"type":"other","request":1,"request":2}}"#,
            r#"{"abi":1,"event":{"type":"task"}} trailing"#,
        ] {
            assert_eq!(parse(invocation.as_bytes()), None, "{invocation}");
            assert!(parse_in_parts(invocation.as_bytes()).is_err(), "{invocation}");
        }
    }
}
