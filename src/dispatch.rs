//! Running one event for one installation: build the input in the form the module's guest
//! ABI takes (v2: event JSON, the environment encoded once per installation and the body as
//! raw bytes; v1: one invocation JSON), run it in a fresh instance of the integration's
//! current version, and record it in the events log.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};
use weft_runtime::{EventParts, Failure, Input, Outcome, RunReport};

use crate::guest_host::GuestHost;
use crate::modules::ModuleError;
use crate::state::AppState;
use crate::store::{
    EventRecord, InstallationRecord, IntegrationRecord, PlaceInstallationRecord, PlaceKind, StoreError, now_ms,
};

/// An event that ran.
pub struct Dispatched {
    /// Its id in the events log.
    pub event_id: String,
    /// What the guest did.
    pub report: RunReport,
}

/// Why an event could not be run at all (guest failures are inside [`Dispatched`]).
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    /// Every instance slot stayed busy: the caller should retry later.
    #[error("the server is at capacity")]
    Busy,
    /// The integration (or installation) already runs its whole share: the caller should
    /// retry later; other tenants are not affected.
    #[error(transparent)]
    Saturated(#[from] crate::tenancy::slots::Saturated),
    /// The module could not be prepared.
    #[error(transparent)]
    Module(#[from] ModuleError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One event to run.
pub struct EventRun<'a> {
    /// The integration whose current version runs.
    pub integration: &'a IntegrationRecord,
    /// The installation it runs for; `None` runs at integration level (tasks, cron).
    pub installation: Option<&'a InstallationRecord>,
    /// The event object (at least `type`); `eventId` is added.
    pub event: Value,
    /// No retry follows a failure: record it as `dead` rather than `failed`.
    pub dead_on_failure: bool,
}

/// Runs `event` (an object with at least `type`) for `installation` of `integration`.
///
/// `check` may turn a successful outcome into a failure before it is recorded: the fetch
/// endpoint uses it to refuse responses it cannot relay.
pub async fn run_event(
    state: &AppState,
    integration: &IntegrationRecord,
    installation: &InstallationRecord,
    event: Value,
    check: impl FnOnce(&Outcome) -> Result<(), Failure>,
) -> Result<Dispatched, DispatchError> {
    run(state, EventRun { integration, installation: Some(installation), event, dead_on_failure: false }, check).await
}

/// Runs a `fetch` event whose request body is `body` (raw bytes, kept out of the event).
pub async fn run_fetch(
    state: &AppState,
    integration: &IntegrationRecord,
    installation: Option<&InstallationRecord>,
    event: Value,
    body: &[u8],
    check: impl FnOnce(&Outcome) -> Result<(), Failure>,
) -> Result<Dispatched, DispatchError> {
    let run_ = EventRun { integration, installation, event, dead_on_failure: false };
    run_with_body(state, run_, body, check).await
}

/// Runs one event in a fresh instance and records it in the events log.
pub async fn run(
    state: &AppState,
    run: EventRun<'_>,
    check: impl FnOnce(&Outcome) -> Result<(), Failure>,
) -> Result<Dispatched, DispatchError> {
    run_with_body(state, run, &[], check).await
}

async fn run_with_body(
    state: &AppState,
    run: EventRun<'_>,
    body: &[u8],
    check: impl FnOnce(&Outcome) -> Result<(), Failure>,
) -> Result<Dispatched, DispatchError> {
    let EventRun { integration, installation, mut event, dead_on_failure } = run;
    let created_at = now_ms();
    let event_id = crate::ids::event_id(created_at);
    event["eventId"] = json!(event_id);
    let event_type = event["type"].as_str().unwrap_or("unknown").to_owned();
    let environment = state.environments.get(state, integration, installation).await?;
    let environment: std::borrow::Cow<'_, str> = match place_installation(state, installation, &event).await? {
        Some((kind, record)) => std::borrow::Cow::Owned(crate::environments::with_place_installation(
            &state.public_url,
            &state.secrets,
            &environment,
            kind,
            &record,
        )),
        None => std::borrow::Cow::Borrowed(&environment),
    };
    // The event as v1 sees it: a fetch request's body as base64 inside it (the dev tunnel's
    // protocol, what v1 modules read, and what the events log keeps).
    let with_body = || {
        let mut event = event.clone();
        if let Some(request) = event.get_mut("request").and_then(Value::as_object_mut) {
            request.insert("body".into(), json!(BASE64.encode(body)));
        }
        event
    };
    let v1 = || invocation(&with_body(), &environment);

    // The tenant's share first, so a saturated one waits in its own line, not the pool's.
    let share = state
        .tenancy
        .slots
        .acquire(
            &integration.id,
            installation.map(|i| i.id.as_str()),
            crate::tenancy::manifest_concurrency(&integration.manifest),
        )
        .await?;
    let mut report = match crate::dev::forward(state, integration, installation, &v1).await {
        // Dev mode is on for this event: the author's machine ran it.
        Some(report) => report,
        None => {
            let module = state.modules.get(&integration.id, integration.current_version).await?;
            let host = Arc::new(GuestHost::new(state, integration, installation));
            let limits = crate::config::integration_limits(&integration.manifest, &state.limits);
            let (json, event_json);
            let input = if module.abi_version() >= 2 {
                event_json = event_object(&event);
                Input::Parts(EventParts { event: &event_json, environment: environment.as_bytes(), body })
            } else {
                json = v1();
                Input::Json(&json)
            };
            let turns = Some(share.cpu_turns());
            state.runtime.run_input(&module, input, &limits, host, turns).await.map_err(|_| DispatchError::Busy)?
        }
    };
    if let Ok(outcome) = &report.result
        && let Err(failure) = check(outcome)
    {
        report.result = Err(failure);
    }

    // What is kept of the event from here on is the log's copy.
    let payload = stored_payload(
        if event.get("request").is_some() { with_body() } else { event },
        state.events_payload_body_bytes,
    );
    let mut record = event_record(&event_id, integration, installation, &event_type, &report, created_at);
    if !state.tenancy.logs.admit(&integration.id, record.logs.len()) {
        let note = format!(
            "logs dropped: this integration wrote more than its {} bytes of logs this minute",
            state.tenancy.logs.bytes_per_minute()
        );
        record.logs = serde_json::json!([{ "level": "warn", "message": note, "timestamp": created_at }]).to_string();
    }
    record.payload = Some(payload);
    if dead_on_failure && record.status == "failed" {
        record.status = "dead".to_owned();
    }
    state.events.record(record).await;
    Ok(Dispatched { event_id, report })
}

/// The space or site installation an event is about (its `spaceId` or `siteId`, on the
/// installation it runs for), when there is one: its environment carries it.
async fn place_installation(
    state: &AppState,
    installation: Option<&InstallationRecord>,
    event: &Value,
) -> Result<Option<(PlaceKind, PlaceInstallationRecord)>, StoreError> {
    let Some(installation) = installation else { return Ok(None) };
    for (kind, field) in [(PlaceKind::Space, "spaceId"), (PlaceKind::Site, "siteId")] {
        if let Some(target) = event[field].as_str() {
            let record = state.store.place_installation(kind, &installation.id, target).await?;
            return Ok(record.map(|record| (kind, record)));
        }
    }
    Ok(None)
}

/// Whether a report counts as success for retries: the guest returned and reported no error.
pub fn succeeded(report: &RunReport) -> bool {
    matches!(report.result, Ok(Outcome::Response(_) | Outcome::None))
}

/// The invocation JSON `{"abi":1,"event":…,"environment":…}` that [`run`] hands to the
/// guest, around an environment that is already encoded.
///
/// The event's `type` comes first, so the SDK knows which payload to expect and decodes
/// the whole invocation in one pass.
pub fn invocation(event: &Value, environment: &str) -> Vec<u8> {
    let mut input = Vec::with_capacity(512 + environment.len());
    input.extend_from_slice(br#"{"abi":1,"event":"#);
    write_event(&mut input, event);
    input.extend_from_slice(br#","environment":"#);
    input.extend_from_slice(environment.as_bytes());
    input.push(b'}');
    input
}

/// The event object alone, `type` first (ABI v2's event part).
pub fn event_object(event: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write_event(&mut out, event);
    out
}

fn write_event(input: &mut Vec<u8>, event: &Value) {
    match event.as_object() {
        Some(fields) if fields.contains_key("type") => {
            input.extend_from_slice(br#"{"type":"#);
            write_json(input, &fields["type"]);
            for (name, value) in fields.iter().filter(|(name, _)| *name != "type") {
                input.push(b',');
                write_json(input, name);
                input.push(b':');
                write_json(input, value);
            }
            input.push(b'}');
        }
        _ => write_json(input, event),
    }
}

/// The most bytes of one stored payload: a larger one (a big task object or host-product
/// payload) is kept as `{eventId, type, payloadTruncatedFrom}`, so the log and the events
/// waiting to be written stay bounded.
const MAX_STORED_PAYLOAD_BYTES: usize = 64 * 1024;

/// The event as the events log keeps it: as delivered, except that a `fetch` request's
/// base64 `body` is cut to at most `body_bytes` bytes (whole base64 quanta, so it still
/// decodes), with `bodyTruncatedFrom` saying how many bytes the request had, and that a
/// payload still over [`MAX_STORED_PAYLOAD_BYTES`] keeps only its id and type.
fn stored_payload(mut event: Value, body_bytes: usize) -> String {
    if let Some(request) = event.get_mut("request").and_then(Value::as_object_mut)
        && let Some(Value::String(body)) = request.get_mut("body")
        && body.len() > body_bytes.div_ceil(3) * 4
    {
        let size = body.len() / 4 * 3 - body.bytes().rev().take_while(|b| *b == b'=').count();
        body.truncate(body_bytes / 3 * 4);
        request.insert("bodyTruncatedFrom".to_owned(), json!(size));
    }
    let payload = event.to_string();
    if payload.len() <= MAX_STORED_PAYLOAD_BYTES {
        return payload;
    }
    json!({ "eventId": event["eventId"], "type": event["type"], "payloadTruncatedFrom": payload.len() }).to_string()
}

fn write_json(out: &mut Vec<u8>, value: &(impl serde::Serialize + ?Sized)) {
    serde_json::to_writer(out, value).expect("JSON values and strings always encode");
}

fn event_record(
    event_id: &str,
    integration: &IntegrationRecord,
    installation: Option<&InstallationRecord>,
    event_type: &str,
    report: &RunReport,
    created_at: i64,
) -> EventRecord {
    let is_fetch = event_type == "fetch";
    let (status, error_kind, error_message, response_status) = match &report.result {
        Ok(Outcome::Response(response)) => ("success", None, None, Some(i64::from(response.status))),
        Ok(Outcome::None) => ("success", None, None, is_fetch.then_some(406)),
        Ok(Outcome::Error { code, message }) => {
            ("failed", Some("handler_error".to_owned()), Some(message.clone()), is_fetch.then_some(i64::from(*code)))
        }
        Err(failure) => (
            "failed",
            Some(failure.kind.as_str().to_owned()),
            Some(failure.message.clone()),
            is_fetch.then_some(i64::from(crate::api::failure_status(failure).as_u16())),
        ),
    };
    EventRecord {
        id: event_id.to_owned(),
        integration_id: integration.id.clone(),
        integration: integration.name.clone(),
        installation_id: installation.map(|installation| installation.id.clone()),
        event_type: event_type.to_owned(),
        status: status.to_owned(),
        error_kind,
        error_message,
        response_status,
        duration_us: report.duration.as_micros() as i64,
        logs: serde_json::to_string(&report.logs).expect("log lines always encode"),
        created_at,
        payload: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_invocation_wraps_the_event_and_the_encoded_environment() {
        let event = json!({"type": "fetch", "eventId": "evt_1", "request": {"path": "/\"quoted\""}});
        let environment = json!({"installation": {"id": "inst_1", "configuration": {"a": [1, 2]}}});
        let input = invocation(&event, &environment.to_string());
        let parsed: Value = serde_json::from_slice(&input).expect("the invocation is JSON");
        assert_eq!(parsed, json!({"abi": 1, "event": event, "environment": environment}));
        let text = String::from_utf8(input).unwrap();
        assert!(text.starts_with(r#"{"abi":1,"event":{"type":"fetch","#), "{text}");
    }

    #[test]
    fn a_stored_fetch_payload_keeps_at_most_the_configured_body_bytes() {
        use base64::Engine as _;
        let body = base64::engine::general_purpose::STANDARD.encode(b"0123456789abcdefghij");
        let event = json!({"type": "fetch", "eventId": "evt_1", "request": {"method": "post", "body": body}});
        let kept: Value = serde_json::from_str(&stored_payload(event.clone(), 7)).unwrap();
        let cut = base64::engine::general_purpose::STANDARD.decode(kept["request"]["body"].as_str().unwrap()).unwrap();
        assert_eq!((cut.as_slice(), &kept["request"]["bodyTruncatedFrom"]), (&b"012345"[..], &json!(20)));
        let whole: Value = serde_json::from_str(&stored_payload(event.clone(), 20)).unwrap();
        assert_eq!(whole, event);
        let task = json!({"type": "task", "eventId": "evt_2", "task": {"blob": "x".repeat(70_000)}});
        let kept: Value = serde_json::from_str(&stored_payload(task, 20)).unwrap();
        assert_eq!(kept, json!({"type": "task", "eventId": "evt_2", "payloadTruncatedFrom": 70_052}));
    }
}
