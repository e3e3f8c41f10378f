//! `/v1/orgs`: the tenant records the integration endpoints need.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;

use super::ApiError;
use super::extract::{ApiJson, ApiPath};
use crate::auth::Principal;
use crate::shapes;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/orgs", post(create)).route("/v1/orgs/{organizationId}", get(show))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateOrg {
    id: String,
    title: String,
}

async fn create(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<CreateOrg>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    principal.require_admin()?;
    let valid_id = body.id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if body.id.is_empty() || body.id.len() > 64 || !valid_id {
        return Err(ApiError::bad_request(format!("id `{}` must be 1–64 characters of a-z, 0-9 and `-`", body.id)));
    }
    // GitBook's rule for an organization's title.
    let title = body.title.trim();
    if !(2..=255).contains(&title.chars().count()) {
        return Err(ApiError::bad_request("title must be 2–255 characters"));
    }
    let org = state
        .store
        .create_org(&body.id, title)
        .await?
        .ok_or_else(|| ApiError::conflict(format!("organization `{}` already exists", body.id)))?;
    Ok((StatusCode::CREATED, Json(shapes::organization(super::urls(&state), &org, principal.role_in(&org.id)))))
}

async fn show(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    principal.require_org_member(&id)?;
    let org = state.store.org(&id).await?.ok_or_else(|| ApiError::not_found(format!("no organization `{id}`")))?;
    Ok(Json(shapes::organization(super::urls(&state), &org, principal.role_in(&org.id))))
}
