//! `POST /v1/orgs/{organizationId}/events`: the host product reports something that
//! happened; every installation whose integration subscribes to the type, and whose scope
//! matches, gets it as a queued job of its own.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::ApiError;
use super::extract::{ApiJson, ApiPath};
use crate::auth::Principal;
use crate::state::AppState;
use crate::store::{NewJob, now_ms};

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/orgs/{organizationId}/events", post(ingest))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct IngestEvent {
    r#type: String,
    space_id: Option<String>,
    site_id: Option<String>,
    #[serde(default)]
    payload: Map<String, Value>,
}

/// Whether an integration's manifest subscribes to `event_type` (`"events": [...]`).
pub fn subscribes(manifest: &Value, event_type: &str) -> bool {
    manifest["events"].as_array().is_some_and(|events| events.iter().any(|e| e.as_str() == Some(event_type)))
}

async fn ingest(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(org_id): ApiPath<String>,
    ApiJson(body): ApiJson<IngestEvent>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    principal.require_org_admin(&org_id)?;
    let scope = state
        .store
        .shared_org_installations_in_scope(&org_id, body.space_id.as_deref(), body.site_id.as_deref())
        .await?;
    let Some(installations) = scope.as_ref() else {
        return Err(ApiError::not_found(format!("no organization `{org_id}`")));
    };
    let valid_type = body.r#type.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if body.r#type.is_empty() || body.r#type.len() > 100 || !valid_type {
        return Err(ApiError::bad_request("type must be 1–100 characters of a-z, A-Z, 0-9, `_`, `-` and `.`"));
    }
    if matches!(body.r#type.as_str(), "fetch" | "task") {
        return Err(ApiError::bad_request(format!("type `{}` is reserved", body.r#type)));
    }

    let mut event = body.payload.clone();
    event.insert("type".into(), json!(body.r#type));
    if let Some(space) = &body.space_id {
        event.insert("spaceId".into(), json!(space));
    }
    if let Some(site) = &body.site_id {
        event.insert("siteId".into(), json!(site));
    }
    let event = Value::Object(event);

    let now = now_ms();
    let mut jobs = Vec::new();
    for target in installations {
        if subscribes(&target.manifest, &body.r#type) {
            jobs.push(NewJob {
                id: crate::ids::event_id(now).replacen("evt_", "job_", 1),
                due_at: now,
                ..crate::queue::event_job(
                    crate::queue::JobOwner {
                        integration_id: &target.integration_id,
                        integration: &target.integration,
                        installation_id: Some(&target.installation_id),
                    },
                    event.clone(),
                )
            });
        }
    }
    // Jobs and deliveries in one commit (shared with concurrent events: `store::event_work`),
    // answered after it: a failure (503 on an outage) stores nothing of this event, so the host
    // product's retry neither loses a delivery nor duplicates a job.
    let deliveries = crate::applications::deliveries_for_event(&state, &org_id, &event).await?;
    let events: Vec<Value> = jobs
        .iter()
        .map(|job| json!({ "id": job.id, "integration": job.integration, "installation": job.installation_id }))
        .collect();
    let (queued_jobs, queued_deliveries) = (!jobs.is_empty(), !deliveries.is_empty());
    state.store.insert_event_work(state.queue.capped(&jobs), deliveries).await?;
    // Only a worker with something new to claim is woken: a claim that finds nothing is a
    // statement (on SQLite a write lock) per event for nothing.
    if queued_jobs {
        state.queue.notify();
    }
    if queued_deliveries {
        state.delivery_wake.wake();
    }
    Ok((StatusCode::ACCEPTED, Json(json!({ "count": events.len(), "events": events }))))
}
