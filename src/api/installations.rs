//! `/v1/integrations/{integrationName}/installations`: install an integration on an
//! organization and read its installations.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiError;
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::integrations::find;
use super::page::{self, PageQuery};
use crate::auth::Principal;
use crate::state::AppState;
use crate::store::InstallationRecord;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/integrations/{integrationName}/installations", get(list).post(install))
        .route("/v1/integrations/{integrationName}/installations/{installationId}", get(show))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InstallBody {
    organization: String,
}

/// The public endpoint of an installation: third parties send requests here, and the
/// integration answers them as `fetch` events.
pub fn public_endpoint(state: &AppState, installation: &InstallationRecord) -> String {
    format!("{}/v1/integrations/{}/installations/{}/fetch", state.public_url, installation.integration, installation.id)
}

fn installation_json(state: &AppState, installation: &InstallationRecord) -> Value {
    json!({
        "object": "integration-installation",
        "id": installation.id,
        "integration": installation.integration,
        "target": { "organization": installation.org_id },
        "status": installation.status,
        "configuration": installation.configuration,
        "externalIds": installation.external_ids,
        "urls": { "publicEndpoint": public_endpoint(state, installation) },
        "createdAt": super::timestamp(installation.created_at),
        "updatedAt": super::timestamp(installation.updated_at),
    })
}

async fn install(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<InstallBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    principal.require_admin()?;
    let integration = find(&state, &name).await?;
    if state.store.org(&body.organization).await?.is_none() {
        return Err(ApiError::bad_request(format!("organization `{}` does not exist", body.organization)));
    }
    if integration.visibility == "private" && integration.org_id != body.organization {
        return Err(ApiError::forbidden(format!(
            "integration `{name}` is private to organization `{}`",
            integration.org_id
        )));
    }
    if matches!(integration.target.as_str(), "space" | "site") {
        return Err(ApiError::bad_request(format!(
            "integration `{name}` can only be installed on a {}",
            integration.target
        )));
    }
    let id = crate::ids::random("inst_", 20);
    let installation = state.store.create_installation(&id, &name, &body.organization).await?;
    Ok((StatusCode::CREATED, Json(installation_json(&state, &installation))))
}

async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(name): ApiPath<String>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<Value>, ApiError> {
    principal.require_admin()?;
    find(&state, &name).await?;
    let limit = query.limit()?;
    let installations = state.store.installations(&name, query.cursor(), limit).await?;
    let count = state.store.count_installations(&name).await?;
    let last = installations.last().map(|i| i.id.clone());
    let items = installations.iter().map(|i| installation_json(&state, i)).collect();
    Ok(Json(page::list(items, limit, last, count)))
}

async fn show(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((name, id)): ApiPath<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    principal.require_admin()?;
    find(&state, &name).await?;
    let installation = state
        .store
        .installation(&name, &id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("integration `{name}` has no installation `{id}`")))?;
    Ok(Json(installation_json(&state, &installation)))
}
