//! `/v1/integrations[/{integrationName}]`: list public integrations, publish, read and
//! unpublish integrations.

use std::collections::HashMap;
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
use crate::auth::{Principal, Role, generate_token, hash_token};
use crate::manifest::{PublishBody, Script};
use crate::shapes;
use crate::state::AppState;
use crate::store::{IntegrationRecord, NewVersion, TokenKind};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/integrations", get(list))
        .route("/v1/orgs/{organizationId}/integrations", get(org_list))
        .route("/v1/integrations/{integrationName}", get(show).post(publish).delete(unpublish))
}

/// GitBook's `Integration` objects as one caller sees them (its `owner` organization and
/// `permissions` depend on who asks), reading each owner organization once per request.
pub struct IntegrationViews<'a> {
    state: &'a AppState,
    principal: &'a Principal,
    owners: HashMap<String, Value>,
}

impl<'a> IntegrationViews<'a> {
    /// Views for `principal`.
    pub fn new(state: &'a AppState, principal: &'a Principal) -> Self {
        Self { state, principal, owners: HashMap::new() }
    }

    /// The JSON form of `integration`: its manifest, never its script.
    pub async fn view(&mut self, integration: &IntegrationRecord) -> Result<Value, ApiError> {
        let org_id = &integration.org_id;
        if !self.owners.contains_key(org_id) {
            let org = self.state.store.org(org_id).await?.ok_or_else(|| {
                ApiError::internal(format!("integration `{}` has no organization `{org_id}`", integration.name))
            })?;
            let owner = shapes::organization(super::urls(self.state), &org, self.principal.role_in(org_id));
            self.owners.insert(org_id.clone(), owner);
        }
        let owner = self.owners[org_id].clone();
        let admin = self.principal.role_in(org_id) == Some(Role::Admin);
        Ok(shapes::integration(super::urls(self.state), integration, owner, admin))
    }
}

/// The JSON form of one integration as `principal` sees it.
pub async fn integration_json(
    state: &AppState,
    principal: &Principal,
    integration: &IntegrationRecord,
) -> Result<Value, ApiError> {
    IntegrationViews::new(state, principal).view(integration).await
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
    let script = body.check(&state.runtime.config().max_limits).map_err(ApiError::bad_request)?;
    if state.store.org(&body.organization).await?.is_none() {
        return Err(ApiError::bad_request(format!("organization `{}` does not exist", body.organization)));
    }
    let (compiled, wasm) = match &script {
        Script::Wasm(wasm) => {
            let compiled = state
                .modules
                .compile(Arc::new(wasm.clone()))
                .await
                .map_err(|e| ApiError::bad_request(format!("script: {e}")))?;
            (compiled, wasm.clone())
        }
        // Evaluated once here; the engine's snapshot of it is the module every event runs.
        Script::JavaScript(source) => {
            state.modules.compile_script(Arc::new(source.clone())).await.map_err(ApiError::bad_request)?
        }
    };
    let visibility = serde_json::to_value(body.visibility).expect("enum encodes");
    let target = serde_json::to_value(body.target).expect("enum encodes");
    let manifest = body.stored_manifest(script.bytes().len());
    let facts = crate::modules::module_facts(&compiled.module);
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
            module: &facts,
            source: match &script {
                Script::JavaScript(source) => Some(source.as_bytes()),
                Script::Wasm(_) => None,
            },
        })
        .await?
        .ok_or_else(|| ApiError::conflict(format!("integration `{name}` belongs to another organization")))?;
    let mut module = crate::modules::module_report(&facts);
    module["language"] = json!(script.language());
    state.modules.insert(&integration.id, integration.current_version, compiled).await;
    if let Some(secrets) = &body.secrets {
        let sealed = state.secrets.seal(serde_json::to_string(secrets).expect("strings encode").as_bytes());
        state.store.set_integration_secrets(&integration.id, &sealed).await?;
    }
    tracing::info!(integration = %name, version = integration.current_version, "published");
    let mut answer = integration_json(&state, &principal, &integration).await?;
    answer["module"] = module;
    if integration.current_version == 1 {
        // The integration's own token, shown this once: its code authenticates with it.
        let token = generate_token();
        state.store.put_token(&hash_token(&token), TokenKind::Integration, &integration.id, None).await?;
        answer["token"] = json!(token);
    }
    Ok(Json(answer))
}

/// The `GET /v1/integrations` and `GET /v1/orgs/{organizationId}/integrations` query:
/// GitBook's search parameters, each applied.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ListQuery {
    page: Option<String>,
    limit: Option<i64>,
    search: Option<String>,
    category: Option<String>,
    block_domain: Option<String>,
    blocks: Option<bool>,
    /// Only integrations with (`true`) or without (`false`) content sources.
    content_sources: Option<bool>,
    /// Only integrations owned by this organization.
    owner: Option<String>,
    /// Only integrations that ask for this scope.
    scope: Option<String>,
    /// Only integrations installable on this target (theirs is it, or `all`).
    target: Option<crate::manifest::Target>,
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
    if query.owner.as_ref().is_some_and(|owner| *owner != integration.org_id) {
        return false;
    }
    if let Some(scope) = &query.scope
        && !manifest["scopes"].as_array().is_some_and(|s| s.iter().any(|s| s == scope.as_str()))
    {
        return false;
    }
    if let Some(target) = query.target {
        let wanted = serde_json::to_value(target).expect("enum encodes");
        if integration.target != "all" && wanted != integration.target.as_str() {
            return false;
        }
    }
    let sources = manifest["contentSources"].as_array().is_some_and(|s| !s.is_empty());
    query.content_sources.is_none_or(|wanted| wanted == sources)
        && query.blocks.is_none_or(|wanted| wanted != blocks.is_empty())
}

/// Rows read at a time while filtering the public list.
const LIST_BATCH: i64 = 100;

/// A page of the public integrations after `cursor` and how many match, read from SQL a
/// page (or, with filters on manifest fields, a batch) at a time.
async fn public_page(
    state: &AppState,
    query: &ListQuery,
    cursor: &str,
    limit: i64,
) -> Result<(Vec<IntegrationRecord>, i64), ApiError> {
    let filtered = query.search.is_some()
        || query.category.is_some()
        || query.block_domain.is_some()
        || query.blocks.is_some()
        || query.content_sources.is_some()
        || query.owner.is_some()
        || query.scope.is_some()
        || query.target.is_some();
    if !filtered {
        let page = state.store.integrations_after("public", cursor, limit).await?;
        return Ok((page, state.store.count_integrations_with_visibility("public").await?));
    }
    let (mut page, mut count, mut after) = (Vec::new(), 0, String::new());
    loop {
        let batch = state.store.integrations_after("public", &after, LIST_BATCH).await?;
        let Some(last) = batch.last() else { break };
        after = last.name.clone();
        for integration in batch.into_iter().filter(|integration| matches(integration, query)) {
            count += 1;
            if integration.name.as_str() > cursor && (page.len() as i64) < limit {
                page.push(integration);
            }
        }
    }
    Ok((page, count))
}

async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    listing(&state, &principal, &query, Listed::Public).await
}

/// `GET /v1/orgs/{organizationId}/integrations`: what the organization can install — every
/// public integration and the organization's own, whatever their visibility.
async fn org_list(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(org_id): ApiPath<String>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    principal.require_org_member(&org_id)?;
    let available = state.store.integrations_available_to(&org_id).await?;
    listing(&state, &principal, &query, Listed::Loaded(available)).await
}

/// What a listing pages through.
enum Listed {
    /// The public integrations, read from SQL a page (or a batch) at a time.
    Public,
    /// Integrations already loaded, sorted by name.
    Loaded(Vec<IntegrationRecord>),
}

/// One page of `integrations` (sorted by name) that match `query`.
async fn listing(
    state: &AppState,
    principal: &Principal,
    query: &ListQuery,
    integrations: Listed,
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
    let (page, count) = match integrations {
        Listed::Public => public_page(state, query, paging.cursor(), limit).await?,
        Listed::Loaded(integrations) => {
            let all: Vec<IntegrationRecord> =
                integrations.into_iter().filter(|integration| matches(integration, query)).collect();
            let count = all.len() as i64;
            let page = all.into_iter().filter(|i| i.name.as_str() > paging.cursor()).take(limit as usize).collect();
            (page, count)
        }
    };
    let last = page.last().map(|i| i.name.clone());
    let mut views = IntegrationViews::new(state, principal);
    let mut items = Vec::with_capacity(page.len());
    for integration in &page {
        items.push(views.view(integration).await?);
    }
    Ok(Json(page::list(items, limit, last, count)))
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
            let event = shapes::installation_deleted_event(installation);
            super::installations::notify(&state, &integration, installation, event).await;
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
    Ok(Json(integration_json(&state, &principal, &integration).await?))
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
