//! `/v1/integrations/{integrationName}/events`: the events log, newest first.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::ApiError;
use super::extract::{ApiPath, ApiQuery};
use super::integrations::find_visible;
use super::page::{self, PageQuery};
use crate::auth::Principal;
use crate::state::AppState;
use crate::store::EventRecord;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/integrations/{integrationName}/events", get(list))
        .route("/v1/integrations/{integrationName}/events/{eventId}", get(show))
}

/// The events log belongs to the integration's publisher: the operator, members of the
/// integration's organization and the integration itself may read it.
async fn readable_events(state: &AppState, principal: &Principal, name: &str) -> Result<(), ApiError> {
    let integration = find_visible(state, principal, name).await?;
    match principal {
        Principal::Integration { name: own } if *own == integration.name => Ok(()),
        Principal::Integration { .. } | Principal::Installation { .. } => {
            Err(ApiError::forbidden(format!("this token may not read the events of `{name}`")))
        }
        _ => principal.require_org_member(&integration.org_id),
    }
}

/// An event as the events API shows it; `with_logs` adds its trace (RFC 3339 timestamps).
pub(super) fn event_json(event: &EventRecord, with_logs: bool) -> Value {
    let mut body = json!({
        "object": "integration-event",
        "id": event.id,
        "integration": event.integration,
        "installation": event.installation_id,
        "type": event.event_type,
        "status": event.status,
        "createdAt": super::timestamp(event.created_at),
        "duration": event.duration_us as f64 / 1000.0,
    });
    if let Some(status) = event.response_status {
        body["response"] = json!({ "status": status });
    }
    if let Some(kind) = &event.error_kind {
        body["error"] = json!({ "kind": kind, "message": event.error_message });
    }
    if with_logs {
        // Stored as the runtime wrote them; shown with RFC 3339 timestamps.
        let logs: Vec<Value> = serde_json::from_str::<Vec<Value>>(&event.logs)
            .unwrap_or_default()
            .into_iter()
            .map(|mut line| {
                if let Some(ms) = line["timestamp"].as_i64() {
                    line["timestamp"] = json!(super::timestamp(ms));
                }
                line
            })
            .collect();
        body["logs"] = json!(logs);
    }
    body
}

async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(name): ApiPath<String>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<Value>, ApiError> {
    readable_events(&state, &principal, &name).await?;
    let limit = query.limit()?;
    let page = state.store.events(&name, query.cursor(), limit).await?;
    let last = page.events.last().map(|e| e.id.clone());
    let items = page.events.iter().map(|e| event_json(e, false)).collect();
    Ok(Json(page::list(items, limit, last, page.total)))
}

async fn show(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((name, id)): ApiPath<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    readable_events(&state, &principal, &name).await?;
    let event = state
        .store
        .event(&name, &id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("integration `{name}` has no event `{id}`")))?;
    Ok(Json(event_json(&event, true)))
}
