//! Typed events: `fetch`, `task`, the GitBook lifecycle events, and any other type.
//!
//! An event arrives as JSON with at least `eventId` and `type`; [`Event::from_json`] turns
//! it into an [`Event`].

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::http::Request;
use crate::{Error, Result};

/// One event delivered to the integration.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// `fetch`: an HTTP request to the installation's public endpoint.
    Fetch(FetchEvent),
    /// `task`: a task the integration queued earlier (or a cron firing).
    Task {
        /// The event id.
        event_id: String,
        /// The queued object, as given to [`tasks::queue`](crate::tasks::queue).
        task: Value,
    },
    /// One of the installation lifecycle events (see [`LifecycleKind`]).
    Lifecycle(LifecycleEvent),
    /// Any other event type the host product posts.
    Other {
        /// The event id.
        event_id: String,
        /// The event's `type`.
        kind: String,
        /// The whole event object.
        raw: Value,
    },
}

/// A `fetch` event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchEvent {
    /// The event id.
    pub event_id: String,
    /// The incoming request.
    pub request: Request,
}

/// An installation lifecycle event.
#[derive(Debug, Clone, PartialEq)]
pub struct LifecycleEvent {
    /// The event id.
    pub event_id: String,
    /// Which lifecycle event this is.
    pub kind: LifecycleKind,
    /// `installationId`, when present.
    pub installation_id: Option<String>,
    /// `spaceId`, when present.
    pub space_id: Option<String>,
    /// `siteId`, when present.
    pub site_id: Option<String>,
    /// The whole event object, including fields not modelled here.
    pub raw: Value,
}

/// The GitBook installation lifecycle event types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LifecycleKind {
    /// `installation_setup`: an organization installed or reconfigured the integration.
    InstallationSetup,
    /// `installation_deleted`: an organization uninstalled the integration.
    InstallationDeleted,
    /// `space_installation_setup`.
    SpaceInstallationSetup,
    /// `space_installation_deleted`.
    SpaceInstallationDeleted,
    /// `site_installation_setup`.
    SiteInstallationSetup,
    /// `site_installation_deleted`.
    SiteInstallationDeleted,
}

impl LifecycleKind {
    /// Every lifecycle kind.
    pub const ALL: [LifecycleKind; 6] = [
        Self::InstallationSetup,
        Self::InstallationDeleted,
        Self::SpaceInstallationSetup,
        Self::SpaceInstallationDeleted,
        Self::SiteInstallationSetup,
        Self::SiteInstallationDeleted,
    ];

    /// The event `type` string, e.g. `"installation_setup"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InstallationSetup => "installation_setup",
            Self::InstallationDeleted => "installation_deleted",
            Self::SpaceInstallationSetup => "space_installation_setup",
            Self::SpaceInstallationDeleted => "space_installation_deleted",
            Self::SiteInstallationSetup => "site_installation_setup",
            Self::SiteInstallationDeleted => "site_installation_deleted",
        }
    }
}

impl fmt::Display for LifecycleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for LifecycleKind {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == s).ok_or(())
    }
}

impl LifecycleEvent {
    /// The event of `kind` whose whole object is `raw`, with its ids read from it.
    pub(crate) fn from_raw(event_id: String, kind: LifecycleKind, raw: Value) -> Self {
        let string_field = |name: &str| raw.get(name).and_then(Value::as_str).map(str::to_owned);
        Self {
            event_id,
            kind,
            installation_id: string_field("installationId"),
            space_id: string_field("spaceId"),
            site_id: string_field("siteId"),
            raw,
        }
    }
}

/// The fields of an event object read before its kind is known; the kind's own payload
/// (`request`, `task`) stays unparsed until the kind says which one to decode.
#[derive(Deserialize)]
struct EventHead<'a> {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(rename = "eventId", default)]
    event_id: Option<String>,
    #[serde(borrow, default)]
    request: Option<&'a RawValue>,
    #[serde(borrow, default)]
    task: Option<&'a RawValue>,
}

impl Event {
    /// Parses an event object. Fails if it is not an object with a string `type`, or if a
    /// `fetch` event's `request` is malformed. A missing `eventId` is an empty string.
    pub fn from_json(event: Value) -> Result<Self> {
        Self::from_slice(serde_json::to_string(&event)?.as_bytes())
    }

    /// Like [`Event::from_json`], from the event's JSON text: decodes straight into the
    /// typed event, building a [`Value`] only for what stays untyped (a task's object,
    /// lifecycle and other events' `raw`). This is the path every invocation takes.
    pub fn from_slice(json: &[u8]) -> Result<Self> {
        let invalid = |what: &dyn fmt::Display| Error::internal(format!("invalid event: {what}"));
        if !crate::codec::is_object(json) {
            return Err(invalid(&"not an object"));
        }
        let head: EventHead<'_> = serde_json::from_slice(json).map_err(|err| invalid(&err))?;
        let Some(kind) = head.kind else {
            return Err(invalid(&"missing `type`"));
        };
        let event_id = head.event_id.unwrap_or_default();
        Ok(match kind.as_str() {
            "fetch" => {
                let request = match head.request {
                    None => Request::default(),
                    Some(request) => serde_json::from_str(request.get())
                        .map_err(|err| Error::internal(format!("invalid fetch event request: {err}")))?,
                };
                Event::Fetch(FetchEvent { event_id, request })
            }
            "task" => {
                let task = match head.task {
                    None => Value::Null,
                    Some(task) => serde_json::from_str(task.get()).map_err(|err| invalid(&err))?,
                };
                Event::Task { event_id, task }
            }
            _ => {
                let raw: Value = serde_json::from_slice(json).map_err(|err| invalid(&err))?;
                match kind.parse::<LifecycleKind>() {
                    Ok(kind) => Event::Lifecycle(LifecycleEvent::from_raw(event_id, kind, raw)),
                    Err(()) => Event::Other { event_id, kind, raw },
                }
            }
        })
    }

    /// The event id.
    pub fn event_id(&self) -> &str {
        match self {
            Event::Fetch(fetch) => &fetch.event_id,
            Event::Task { event_id, .. } | Event::Other { event_id, .. } => event_id,
            Event::Lifecycle(lifecycle) => &lifecycle.event_id,
        }
    }

    /// The event's `type` string.
    pub fn kind(&self) -> &str {
        match self {
            Event::Fetch(_) => "fetch",
            Event::Task { .. } => "task",
            Event::Lifecycle(lifecycle) => lifecycle.kind.as_str(),
            Event::Other { kind, .. } => kind,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fetch_events_parse_their_request() {
        let event = Event::from_json(json!({
            "eventId": "evt_1",
            "type": "fetch",
            "request": {
                "method": "GET",
                "url": "http://host/v1/integrations/hello/installations/inst_x/some/path?q=1",
                "path": "/some/path",
                "query": "q=1",
                "headers": {"content-type": "text/plain"},
                "body": "aGk="
            }
        }))
        .unwrap();
        let Event::Fetch(fetch) = &event else { panic!("{event:?}") };
        assert_eq!(fetch.event_id, "evt_1");
        assert_eq!(fetch.request.path, "/some/path");
        assert_eq!(fetch.request.query_param("q").as_deref(), Some("1"));
        assert_eq!(fetch.request.body, b"hi");
        assert_eq!(event.kind(), "fetch");
        assert_eq!(event.event_id(), "evt_1");
    }

    #[test]
    fn task_events_carry_the_task_object() {
        let event = Event::from_json(json!({"eventId": "e", "type": "task", "task": {"n": 1}})).unwrap();
        assert_eq!(event, Event::Task { event_id: "e".into(), task: json!({"n": 1}) });
    }

    #[test]
    fn lifecycle_events_keep_ids_and_unknown_fields() {
        for kind in LifecycleKind::ALL {
            let raw = json!({"eventId": "e", "type": kind.as_str(), "spaceId": "sp", "x": 1});
            let event = Event::from_json(raw.clone()).unwrap();
            let Event::Lifecycle(lifecycle) = event else { panic!("{kind}") };
            assert_eq!(lifecycle.kind, kind);
            assert_eq!(lifecycle.space_id.as_deref(), Some("sp"));
            assert_eq!(lifecycle.installation_id, None);
            assert_eq!(lifecycle.raw, raw);
        }
    }

    #[test]
    fn unknown_types_become_other_events() {
        let raw = json!({"eventId": "e", "type": "space_content_updated", "spaceId": "sp"});
        let event = Event::from_json(raw.clone()).unwrap();
        assert_eq!(event, Event::Other { event_id: "e".into(), kind: "space_content_updated".into(), raw });
    }

    #[test]
    fn malformed_events_are_errors() {
        assert!(Event::from_json(json!([])).is_err());
        assert!(Event::from_json(json!({"eventId": "e"})).is_err());
        let err = Event::from_json(json!({"type": "fetch", "request": {"body": "!!"}})).unwrap_err();
        assert_eq!(err.status(), 500);
    }
}
