//! What a token may see of the catalog beyond the reference's public list (weft
//! extensions the console reads):
//! - `GET /v1/user/integrations?search=&page=&limit=`: every integration the caller can
//!   see and operate (the operator: all; a user: those of their organizations; an
//!   integration or installation token: its own);
//! - `GET /v1/integrations/{integrationName}/versions?limit=`: its published versions.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiError;
use super::extract::{ApiPath, ApiQuery};
use super::integrations::{IntegrationViews, find_visible};
use super::page::{self, PageQuery};
use crate::auth::Principal;
use crate::state::AppState;
use crate::store::IntegrationRecord;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/user/integrations", get(list))
        .route("/v1/integrations/{integrationName}/versions", get(versions))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    page: Option<String>,
    limit: Option<i64>,
    /// Part of the name or title, any case.
    search: Option<String>,
}

/// Whether the caller operates `integration` (not merely sees a public one).
fn operates(principal: &Principal, integration: &IntegrationRecord) -> bool {
    match principal {
        Principal::Integration { .. } | Principal::Installation { .. } => principal.acts_for(integration, true),
        _ => principal.role_in(&integration.org_id).is_some(),
    }
}

async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let paging = PageQuery { page: query.page.clone(), limit: query.limit };
    let limit = paging.limit()?;
    if query.search.as_ref().is_some_and(|search| search.len() > 100) {
        return Err(ApiError::bad_request("search must be at most 100 characters"));
    }
    let search = query.search.as_deref().unwrap_or("").to_lowercase();
    let matching: Vec<IntegrationRecord> = state
        .store
        .all_integrations()
        .await?
        .into_iter()
        .filter(|integration| operates(&principal, integration))
        .filter(|integration| {
            search.is_empty()
                || integration.name.to_lowercase().contains(&search)
                || integration.manifest["title"].as_str().unwrap_or("").to_lowercase().contains(&search)
        })
        .collect();
    let count = matching.len() as i64;
    let page: Vec<&IntegrationRecord> =
        matching.iter().filter(|i| i.name.as_str() > paging.cursor()).take(limit as usize).collect();
    let last = page.last().map(|i| i.name.clone());
    let mut views = IntegrationViews::new(&state, &principal);
    let mut items = Vec::with_capacity(page.len());
    for integration in page {
        items.push(views.view(integration).await?);
    }
    Ok(Json(page::list(items, limit, last, count)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VersionsQuery {
    limit: Option<i64>,
}

/// The versions belong to the publisher, like the events log: its organization's members,
/// the operator and the integration itself.
async fn versions(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(name): ApiPath<String>,
    ApiQuery(query): ApiQuery<VersionsQuery>,
) -> Result<Json<Value>, ApiError> {
    let integration = find_visible(&state, &principal, &name).await?;
    if !principal.acts_for(&integration, false) {
        principal.require_org_member(&integration.org_id)?;
    }
    let limit = PageQuery { page: None, limit: query.limit }.limit()?;
    let versions = state.store.versions(&integration.id, limit).await?;
    let items: Vec<Value> = versions
        .into_iter()
        .map(|v| {
            let mut item = json!({
                "version": v.version,
                "publishedAt": super::timestamp(v.created_at),
                "size": v.size,
                "sha256": v.sha256,
                "current": v.version == integration.current_version,
                "language": if v.source_size.is_some() { "javascript" } else { "wasm" },
                "sourceBytes": v.source_size,
            });
            // As publish answered: `abi`, `snapshot` and, when not taken, `snapshotReason`;
            // absent for versions published before these were stored.
            if let Some(Value::Object(module)) = v.module.as_ref().map(crate::modules::module_report) {
                item.as_object_mut().expect("an object").extend(module);
            }
            item
        })
        .collect();
    Ok(Json(json!({ "count": items.len(), "items": items })))
}
