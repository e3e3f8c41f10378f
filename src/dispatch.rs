//! Running one event for one installation: build the invocation JSON, run it in a fresh
//! instance of the integration's current version, and record it in the events log.

use std::sync::Arc;

use serde_json::{Value, json};
use weft_runtime::{Failure, NoHostServices, Outcome, RunReport};

use crate::modules::ModuleError;
use crate::state::AppState;
use crate::store::{EventRecord, InstallationRecord, IntegrationRecord, StoreError, now_ms};

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
    /// The module could not be prepared.
    #[error(transparent)]
    Module(#[from] ModuleError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Runs `event` (an object with at least `type`) for `installation` of `integration`.
///
/// `check` may turn a successful outcome into a failure before it is recorded: the fetch
/// endpoint uses it to refuse responses it cannot relay.
pub async fn run_event(
    state: &AppState,
    integration: &IntegrationRecord,
    installation: &InstallationRecord,
    mut event: Value,
    check: impl FnOnce(&Outcome) -> Result<(), Failure>,
) -> Result<Dispatched, DispatchError> {
    let created_at = now_ms();
    let event_id = crate::ids::event_id(created_at);
    event["eventId"] = json!(event_id);
    let event_type = event["type"].as_str().unwrap_or("unknown").to_owned();
    let invocation = json!({
        "abi": 1,
        "event": event,
        "environment": environment(state, integration, installation),
    });
    let input = serde_json::to_vec(&invocation).expect("JSON values always encode");

    let module = state.modules.get(&integration.name, integration.current_version).await?;
    let mut report = state
        .runtime
        .run(&module, &input, &state.limits, Arc::new(NoHostServices))
        .await
        .map_err(|_| DispatchError::Busy)?;
    if let Ok(outcome) = &report.result
        && let Err(failure) = check(outcome)
    {
        report.result = Err(failure);
    }

    state.events.record(event_record(&event_id, integration, installation, &event_type, &report, created_at)).await;
    Ok(Dispatched { event_id, report })
}

/// The `environment` half of the invocation.
fn environment(state: &AppState, integration: &IntegrationRecord, installation: &InstallationRecord) -> Value {
    json!({
        "apiEndpoint": format!("{}/v1", state.public_url),
        "apiTokens": {},
        "integration": {
            "name": integration.name,
            "version": integration.current_version,
            "organization": integration.org_id,
        },
        "installation": {
            "id": installation.id,
            "status": installation.status,
            "configuration": installation.configuration,
            "externalIds": installation.external_ids,
            "target": { "organization": installation.org_id },
        },
        "spaceInstallation": null,
        "siteInstallation": null,
        "secrets": {},
    })
}

fn event_record(
    event_id: &str,
    integration: &IntegrationRecord,
    installation: &InstallationRecord,
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
        integration: integration.name.clone(),
        installation_id: Some(installation.id.clone()),
        event_type: event_type.to_owned(),
        status: status.to_owned(),
        error_kind,
        error_message,
        response_status,
        duration_us: report.duration.as_micros() as i64,
        logs: serde_json::to_string(&report.logs).expect("log lines always encode"),
        created_at,
    }
}
