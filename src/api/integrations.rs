//! `/v1/integrations[/{integrationName}]`: list public integrations, publish, read and
//! unpublish integrations.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiError;
use super::extract::{ApiJson, ApiPath, ApiQuery, integration_name};
use super::page::{self, PageQuery};
use crate::auth::{Principal, generate_token, hash_token};
use crate::manifest::PublishBody;
use crate::state::AppState;
use crate::store::{IntegrationRecord, NewVersion, TokenKind};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/integrations", get(list))
        .route("/v1/integrations/{integrationName}", get(show).post(publish).delete(unpublish))
}

/// The JSON form of an integration: its manifest, never its script.
pub fn integration_json(integration: &IntegrationRecord) -> Value {
    let mut body = json!({
        "object": "integration",
        "name": integration.name,
        "organization": integration.org_id,
        "visibility": integration.visibility,
        "target": integration.target,
        "version": integration.current_version,
        "createdAt": super::timestamp(integration.created_at),
        "updatedAt": super::timestamp(integration.updated_at),
    });
    if let (Some(fields), Some(manifest)) = (body.as_object_mut(), integration.manifest.as_object()) {
        for (key, value) in manifest.iter().filter(|(key, _)| key.as_str() != "scriptBytes") {
            fields.insert(key.clone(), value.clone());
        }
    }
    body
}

async fn publish(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<PublishBody>,
) -> Result<Json<Value>, ApiError> {
    integration_name(&name)?;
    match &principal {
        // The integration's own token may publish new versions of it (same organization).
        // A token is resolved by the integration's id, so its `name` is the live one's.
        Principal::Integration { name: own, .. } if *own == name => {}
        _ => principal.require_org_admin(&body.organization)?,
    }
    // The same rules `weft check` applies on the author's machine.
    let wasm = body.check(&state.runtime.config().max_limits).map_err(ApiError::bad_request)?;
    if state.store.org(&body.organization).await?.is_none() {
        return Err(ApiError::bad_request(format!("organization `{}` does not exist", body.organization)));
    }
    let compiled = state
        .modules
        .compile(Arc::new(wasm.clone()))
        .await
        .map_err(|e| ApiError::bad_request(format!("script: {e}")))?;
    let visibility = serde_json::to_value(body.visibility).expect("enum encodes");
    let target = serde_json::to_value(body.target).expect("enum encodes");
    let manifest = body.stored_manifest(wasm.len());
    let integration = state
        .store
        .publish_version(NewVersion {
            name: &name,
            org_id: &body.organization,
            visibility: visibility.as_str().unwrap_or("private"),
            target: target.as_str().unwrap_or("all"),
            manifest: &manifest,
            wasm: &wasm,
            artifact: &compiled.artifact,
            sha256: &compiled.sha256,
        })
        .await?
        .ok_or_else(|| ApiError::conflict(format!("integration `{name}` belongs to another organization")))?;
    state.modules.insert(&integration.id, integration.current_version, compiled).await;
    if let Some(secrets) = &body.secrets {
        let sealed = state.secrets.seal(serde_json::to_string(secrets).expect("strings encode").as_bytes());
        state.store.set_integration_secrets(&integration.id, &sealed).await?;
    }
    tracing::info!(integration = %name, version = integration.current_version, "published");
    let mut answer = integration_json(&integration);
    if integration.current_version == 1 {
        // The integration's own token, shown this once: its code authenticates with it.
        let token = generate_token();
        state.store.put_token(&hash_token(&token), TokenKind::Integration, &integration.id, None).await?;
        answer["token"] = json!(token);
    }
    Ok(Json(answer))
}

/// The `GET /v1/integrations` query.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ListQuery {
    page: Option<String>,
    limit: Option<i64>,
    search: Option<String>,
    category: Option<String>,
    block_domain: Option<String>,
    blocks: Option<bool>,
}

/// Whether `integration` matches the list filters.
fn matches(integration: &IntegrationRecord, query: &ListQuery) -> bool {
    let manifest = &integration.manifest;
    if let Some(search) = query.search.as_deref().map(str::to_lowercase).filter(|s| !s.is_empty()) {
        let title = manifest["title"].as_str().unwrap_or("").to_lowercase();
        if !integration.name.to_lowercase().contains(&search) && !title.contains(&search) {
            return false;
        }
    }
    let blocks = manifest["blocks"].as_array().map(Vec::as_slice).unwrap_or_default();
    if let Some(category) = &query.category
        && !manifest["categories"].as_array().is_some_and(|c| c.iter().any(|c| c == category.as_str()))
    {
        return false;
    }
    if let Some(domain) = &query.block_domain
        && !blocks.iter().any(|b| b["domains"].as_array().is_some_and(|d| d.iter().any(|d| d == domain.as_str())))
    {
        return false;
    }
    query.blocks.is_none_or(|wanted| wanted != blocks.is_empty())
}

async fn list(
    State(state): State<AppState>,
    _principal: Principal,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let paging = PageQuery { page: query.page.clone(), limit: query.limit };
    let limit = paging.limit()?;
    if let Some(domain) = &query.block_domain {
        let valid = domain.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if domain.is_empty() || domain.len() > 100 || !valid {
            return Err(ApiError::bad_request(format!(
                "blockDomain `{domain}` must be 1–100 characters of a-z, A-Z, 0-9, `-`, `_` and `.`"
            )));
        }
    }
    let all: Vec<IntegrationRecord> = state
        .store
        .integrations_with_visibility("public")
        .await?
        .into_iter()
        .filter(|integration| matches(integration, &query))
        .collect();
    let count = all.len() as i64;
    let page: Vec<&IntegrationRecord> =
        all.iter().filter(|i| i.name.as_str() > paging.cursor()).take(limit as usize).collect();
    let last = page.last().map(|i| i.name.clone());
    Ok(Json(page::list(page.into_iter().map(integration_json).collect(), limit, last, count)))
}

async fn unpublish(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(name): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let integration = find_visible(&state, &principal, &name).await?;
    principal.require_org_admin(&integration.org_id)?;
    // Tell every installation, then forget them; a guest failure does not stop the unpublish.
    let mut after = String::new();
    loop {
        let installations = state.store.installations(&integration.id, &after, 100).await?;
        let Some(last) = installations.last() else { break };
        after = last.id.clone();
        for installation in &installations {
            super::installations::notify(&state, &integration, installation, json!({"type": "installation_deleted"}))
                .await;
        }
    }
    state.store.delete_integration(&integration.id).await?;
    state.dev.forget(&integration.id);
    tracing::info!(integration = %name, "unpublished");
    Ok(StatusCode::NO_CONTENT)
}

async fn show(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let integration = find_visible(&state, &principal, &name).await?;
    Ok(Json(integration_json(&integration)))
}

/// Whether `principal` may see `integration`: private ones only within their organization.
pub fn can_see(principal: &Principal, integration: &IntegrationRecord) -> bool {
    if integration.visibility != "private" {
        return true;
    }
    match principal {
        Principal::Integration { .. } | Principal::Installation { .. } => principal.acts_for(integration, true),
        _ => principal.role_in(&integration.org_id).is_some(),
    }
}

/// The integration named `name` if `principal` may see it, else 404.
pub async fn find_visible(state: &AppState, principal: &Principal, name: &str) -> Result<IntegrationRecord, ApiError> {
    let integration = find(state, name).await?;
    if !can_see(principal, &integration) {
        return Err(ApiError::not_found(format!("no integration `{name}`")));
    }
    Ok(integration)
}

/// The integration named `name`, or 404.
pub async fn find(state: &AppState, name: &str) -> Result<IntegrationRecord, ApiError> {
    integration_name(name)?;
    state.store.integration(name).await?.ok_or_else(|| ApiError::not_found(format!("no integration `{name}`")))
}
