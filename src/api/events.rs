//! `/v1/integrations/{integrationName}/events`: the events log, newest first, optionally
//! filtered by `status`, `type` and `installation`, in GitBook's `IntegrationEvent` shape
//! (see [`crate::shapes::integration_event`]).

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;

use super::ApiError;
use super::extract::{ApiPath, ApiQuery};
use super::integrations::find_visible;
use super::page::{self, PageQuery};
use crate::auth::Principal;
use crate::state::AppState;
use crate::store::{EventFilter, IntegrationRecord};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/integrations/{integrationName}/events", get(list))
        .route("/v1/integrations/{integrationName}/events/{eventId}", get(show))
}

/// The events log belongs to the integration's publisher: the operator, members of the
/// integration's organization and the integration itself may read it.
async fn readable_events(state: &AppState, principal: &Principal, name: &str) -> Result<IntegrationRecord, ApiError> {
    let integration = find_visible(state, principal, name).await?;
    match principal {
        _ if principal.acts_for(&integration, false) => {}
        Principal::Integration { .. } | Principal::Installation { .. } => {
            return Err(ApiError::forbidden(format!("this token may not read the events of `{name}`")));
        }
        _ => principal.require_org_member(&integration.org_id)?,
    }
    Ok(integration)
}

/// The list's query: the reference's paging, plus optional filters (an extension; the
/// `count` is then the number of matching events).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsQuery {
    page: Option<String>,
    limit: Option<i64>,
    /// `success`, `failed` (dead-lettered ones included) or `dead`.
    status: Option<String>,
    /// An event type: `fetch`, `task`, `installation_setup`, …
    #[serde(rename = "type")]
    event_type: Option<String>,
    /// An installation id.
    installation: Option<String>,
}

/// Statuses an event can be recorded with.
const EVENT_STATUSES: [&str; 3] = ["success", "failed", "dead"];

impl EventsQuery {
    fn filter(&self) -> Result<EventFilter<'_>, ApiError> {
        if let Some(status) = &self.status
            && !EVENT_STATUSES.contains(&status.as_str())
        {
            return Err(ApiError::bad_request(format!("status must be success, failed or dead, got `{status}`")));
        }
        for (field, value) in [("type", &self.event_type), ("installation", &self.installation)] {
            if value.as_ref().is_some_and(|value| value.is_empty() || value.len() > 100) {
                return Err(ApiError::bad_request(format!("{field} must be 1–100 characters")));
            }
        }
        Ok(EventFilter {
            status: self.status.as_deref(),
            event_type: self.event_type.as_deref(),
            installation_id: self.installation.as_deref(),
        })
    }
}

async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(name): ApiPath<String>,
    ApiQuery(query): ApiQuery<EventsQuery>,
) -> Result<Json<Value>, ApiError> {
    let integration = readable_events(&state, &principal, &name).await?;
    let filter = query.filter()?;
    let paging = PageQuery { page: query.page.clone(), limit: query.limit };
    let limit = paging.limit()?;
    let page = state.store.events(&integration.id, &filter, paging.cursor(), limit).await?;
    let last = page.events.last().map(|e| e.id.clone());
    let items = page.events.iter().map(crate::shapes::integration_event).collect();
    Ok(Json(page::list(items, limit, last, page.total)))
}

async fn show(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((name, id)): ApiPath<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let integration = readable_events(&state, &principal, &name).await?;
    let event = state
        .store
        .event(&integration.id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("integration `{name}` has no event `{id}`")))?;
    Ok(Json(crate::shapes::integration_event_with_trace(&event)))
}
