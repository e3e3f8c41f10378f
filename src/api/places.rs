//! Installations on spaces and sites, and what a space or site has installed:
//!
//! - `/v1/integrations/{integrationName}/spaces`: every space installation of an integration;
//! - `/v1/integrations/{integrationName}/installations/{installationId}/spaces[/{spaceId}]`
//!   and `…/sites[/{siteId}]`: list, install (`POST {"spaceId"}` / `{"siteId"}`), read and
//!   remove (`DELETE`) one installation's spaces and sites;
//! - `/v1/spaces/{spaceId}/integrations`, `/v1/spaces/{spaceId}/integration-blocks`,
//!   `/v1/orgs/{organizationId}/sites/{siteId}/integrations`,
//!   `/v1/orgs/{organizationId}/sites/{siteId}/integration-scripts`;
//! - `/v1/orgs/{organizationId}/integrations/{integrationName}/installation_status` and
//!   `/v1/orgs/{organizationId}/integrations/installations-status`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiError;
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::installations::{find_installation, public_endpoint, target_allows};
use super::integrations::{can_see, find_visible, integration_json};
use super::page::{self, PageQuery};
use crate::auth::Principal;
use crate::state::AppState;
use crate::store::{
    InstallationFilter, IntegrationRecord, PlaceInstallationFilter, PlaceInstallationRecord, PlaceKind, PlaceRecord,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/integrations/{integrationName}/spaces", get(integration_spaces))
        .route(
            "/v1/integrations/{integrationName}/installations/{installationId}/spaces",
            get(list_spaces).post(install_space),
        )
        .route(
            "/v1/integrations/{integrationName}/installations/{installationId}/spaces/{spaceId}",
            get(show_space).delete(remove_space),
        )
        .route(
            "/v1/integrations/{integrationName}/installations/{installationId}/sites",
            get(list_sites).post(install_site),
        )
        .route(
            "/v1/integrations/{integrationName}/installations/{installationId}/sites/{siteId}",
            get(show_site).delete(remove_site),
        )
        .route("/v1/spaces/{spaceId}/integrations", get(space_integrations))
        .route("/v1/spaces/{spaceId}/integration-blocks", get(space_blocks))
        .route("/v1/orgs/{organizationId}/sites/{siteId}/integrations", get(site_integrations))
        .route("/v1/orgs/{organizationId}/sites/{siteId}/integration-scripts", get(site_scripts))
        .route("/v1/orgs/{organizationId}/integrations/{integrationName}/installation_status", get(status))
        .route("/v1/orgs/{organizationId}/integrations/installations-status", get(statuses))
}

fn noun(kind: PlaceKind) -> &'static str {
    match kind {
        PlaceKind::Space => "space",
        PlaceKind::Site => "site",
    }
}

/// The JSON form of a space or site.
pub fn place_json(kind: PlaceKind, place: &PlaceRecord) -> Value {
    json!({
        "object": noun(kind),
        "id": place.id,
        "organization": place.org_id,
        "title": place.title,
        "createdAt": super::timestamp(place.created_at),
    })
}

async fn place_installation_json(
    state: &AppState,
    kind: PlaceKind,
    record: &PlaceInstallationRecord,
    extended: bool,
) -> Result<Value, ApiError> {
    let place = if extended {
        match state.store.place(kind, &record.target_id).await? {
            Some(place) => place_json(kind, &place),
            None => json!(record.target_id),
        }
    } else {
        json!(record.target_id)
    };
    let endpoint = format!(
        "{}/v1/integrations/{}/installations/{}/fetch",
        state.public_url, record.integration, record.installation_id
    );
    Ok(json!({
        "object": format!("integration-{}-installation", noun(kind)),
        "integration": record.integration,
        "installation": record.installation_id,
        noun(kind): place,
        "status": record.status,
        "configuration": record.configuration,
        "externalIds": record.external_ids,
        "urls": { "publicEndpoint": endpoint },
        "createdAt": super::timestamp(record.created_at),
        "updatedAt": super::timestamp(record.updated_at),
    }))
}

/// `?page=&limit=&extended=` (and `externalId` where the reference has it).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PlaceListQuery {
    page: Option<String>,
    limit: Option<i64>,
    external_id: Option<String>,
    extended: Option<bool>,
}

async fn page_of(
    state: &AppState,
    kind: PlaceKind,
    filter: &PlaceInstallationFilter<'_>,
    query: &PlaceListQuery,
) -> Result<Json<Value>, ApiError> {
    let paging = PageQuery { page: query.page.clone(), limit: query.limit };
    let limit = paging.limit()?;
    let (records, count) = state.store.find_place_installations(kind, filter, paging.cursor(), limit).await?;
    let last = records.last().map(|r| format!("{}/{}", r.installation_id, r.target_id));
    let mut items = Vec::with_capacity(records.len());
    for record in &records {
        items.push(place_installation_json(state, kind, record, query.extended.unwrap_or(false)).await?);
    }
    Ok(Json(page::list(items, limit, last, count)))
}

async fn integration_spaces(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(name): ApiPath<String>,
    ApiQuery(query): ApiQuery<PlaceListQuery>,
) -> Result<Json<Value>, ApiError> {
    find_visible(&state, &principal, &name).await?;
    let filter = PlaceInstallationFilter {
        integration: &name,
        installation_id: match &principal {
            Principal::Installation { id, .. } => id,
            _ => "",
        },
        external_id: query.external_id.as_deref().unwrap_or(""),
        member: principal.user_id(),
        ..Default::default()
    };
    page_of(&state, PlaceKind::Space, &filter, &query).await
}

async fn list_places(
    state: AppState,
    kind: PlaceKind,
    principal: Principal,
    (name, id): (String, String),
    query: PlaceListQuery,
) -> Result<Json<Value>, ApiError> {
    if query.external_id.is_some() {
        return Err(ApiError::bad_request("unknown query parameter `externalId`"));
    }
    find_installation(&state, &principal, &name, &id).await?;
    let filter = PlaceInstallationFilter { integration: &name, installation_id: &id, ..Default::default() };
    page_of(&state, kind, &filter, &query).await
}

async fn list_spaces(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(path): ApiPath<(String, String)>,
    ApiQuery(query): ApiQuery<PlaceListQuery>,
) -> Result<Json<Value>, ApiError> {
    list_places(state, PlaceKind::Space, principal, path, query).await
}

async fn list_sites(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(path): ApiPath<(String, String)>,
    ApiQuery(query): ApiQuery<PlaceListQuery>,
) -> Result<Json<Value>, ApiError> {
    list_places(state, PlaceKind::Site, principal, path, query).await
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct InstallSpaceBody {
    space_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct InstallSiteBody {
    site_id: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExtendedQuery {
    extended: Option<bool>,
}

async fn install_place(
    state: AppState,
    kind: PlaceKind,
    principal: Principal,
    (name, id): (String, String),
    target_id: String,
    extended: bool,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (integration, installation) = find_installation(&state, &principal, &name, &id).await?;
    principal.require_change_installation(&installation)?;
    let field = format!("{}Id", noun(kind));
    if !target_allows(&integration.target, kind) {
        return Err(ApiError::bad_request(format!(
            "integration `{name}` cannot be installed on a {} (target `{}`)",
            noun(kind),
            integration.target
        )));
    }
    let place = state.store.place(kind, &target_id).await?;
    match place {
        Some(place) if place.org_id == installation.org_id => {}
        _ => {
            return Err(ApiError::bad_request(format!(
                "{field}: no {} `{target_id}` in organization `{}`",
                noun(kind),
                installation.org_id
            )));
        }
    }
    let record = state
        .store
        .install_on_place(kind, &id, &target_id, &name, &installation.org_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("integration `{name}` has no installation `{id}`")))?;
    queue_lifecycle(&state, kind, &installation, &target_id, "setup").await?;
    Ok((StatusCode::CREATED, Json(place_installation_json(&state, kind, &record, extended).await?)))
}

async fn install_space(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(path): ApiPath<(String, String)>,
    ApiQuery(query): ApiQuery<ExtendedQuery>,
    ApiJson(body): ApiJson<InstallSpaceBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    install_place(state, PlaceKind::Space, principal, path, body.space_id, query.extended.unwrap_or(false)).await
}

async fn install_site(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(path): ApiPath<(String, String)>,
    ApiQuery(query): ApiQuery<ExtendedQuery>,
    ApiJson(body): ApiJson<InstallSiteBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    install_place(state, PlaceKind::Site, principal, path, body.site_id, query.extended.unwrap_or(false)).await
}

async fn show_place(
    state: AppState,
    kind: PlaceKind,
    principal: Principal,
    (name, id, target_id): (String, String, String),
    extended: bool,
) -> Result<Json<Value>, ApiError> {
    find_installation(&state, &principal, &name, &id).await?;
    let record = state.store.place_installation(kind, &id, &target_id).await?.ok_or_else(|| {
        ApiError::not_found(format!("installation `{id}` is not installed on {} `{target_id}`", noun(kind)))
    })?;
    Ok(Json(place_installation_json(&state, kind, &record, extended).await?))
}

async fn show_space(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(path): ApiPath<(String, String, String)>,
    ApiQuery(query): ApiQuery<ExtendedQuery>,
) -> Result<Json<Value>, ApiError> {
    show_place(state, PlaceKind::Space, principal, path, query.extended.unwrap_or(false)).await
}

async fn show_site(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(path): ApiPath<(String, String, String)>,
    ApiQuery(query): ApiQuery<ExtendedQuery>,
) -> Result<Json<Value>, ApiError> {
    show_place(state, PlaceKind::Site, principal, path, query.extended.unwrap_or(false)).await
}

async fn remove_place(
    state: AppState,
    kind: PlaceKind,
    principal: Principal,
    (name, id, target_id): (String, String, String),
) -> Result<StatusCode, ApiError> {
    let (_, installation) = find_installation(&state, &principal, &name, &id).await?;
    principal.require_change_installation(&installation)?;
    if !state.store.uninstall_from_place(kind, &id, &target_id).await? {
        return Err(ApiError::not_found(format!(
            "installation `{id}` is not installed on {} `{target_id}`",
            noun(kind)
        )));
    }
    queue_lifecycle(&state, kind, &installation, &target_id, "deleted").await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Tells the installation's module, through the queue like every other event, that it was
/// installed on (`setup`) or removed from (`deleted`) a space or site.
async fn queue_lifecycle(
    state: &AppState,
    kind: PlaceKind,
    installation: &crate::store::InstallationRecord,
    target_id: &str,
    what: &str,
) -> Result<(), ApiError> {
    let noun = noun(kind);
    let event = serde_json::json!({
        "type": format!("{noun}_installation_{what}"),
        "installationId": installation.id,
        format!("{noun}Id"): target_id,
    });
    let job = crate::queue::event_job(crate::queue::JobOwner::installation(installation), event);
    state.queue.enqueue(&state.store, &[job]).await?;
    Ok(())
}

async fn remove_space(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(path): ApiPath<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    remove_place(state, PlaceKind::Space, principal, path).await
}

async fn remove_site(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(path): ApiPath<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    remove_place(state, PlaceKind::Site, principal, path).await
}

/// The space or site `id`, readable by `principal` (a member of its organization).
async fn readable_place(
    state: &AppState,
    principal: &Principal,
    kind: PlaceKind,
    id: &str,
    org_id: Option<&str>,
) -> Result<PlaceRecord, ApiError> {
    let place = state
        .store
        .place(kind, id)
        .await?
        .filter(|place| org_id.is_none_or(|org| org == place.org_id))
        .ok_or_else(|| ApiError::not_found(format!("no {} `{id}`", noun(kind))))?;
    principal.require_org_member(&place.org_id)?;
    Ok(place)
}

/// The integrations installed on a space or site, each with its place installation.
async fn installed_on(
    state: &AppState,
    kind: PlaceKind,
    place: &PlaceRecord,
) -> Result<Vec<(IntegrationRecord, PlaceInstallationRecord)>, ApiError> {
    let filter = PlaceInstallationFilter { target_id: &place.id, ..Default::default() };
    let (records, _) = state.store.find_place_installations(kind, &filter, "", 1000).await?;
    let mut installed = Vec::with_capacity(records.len());
    for record in records {
        if let Some(integration) = state.store.integration(&record.integration).await? {
            installed.push((integration, record));
        }
    }
    Ok(installed)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchQuery {
    search: Option<String>,
}

fn search_matches(integration: &IntegrationRecord, search: Option<&str>) -> bool {
    let Some(search) = search.map(str::to_lowercase).filter(|s| !s.is_empty()) else { return true };
    integration.name.to_lowercase().contains(&search)
        || integration.manifest["title"].as_str().is_some_and(|t| t.to_lowercase().contains(&search))
}

fn listing(items: Vec<Value>) -> Json<Value> {
    let count = items.len() as i64;
    Json(json!({ "items": items, "count": count }))
}

async fn integrations_on(
    state: &AppState,
    kind: PlaceKind,
    place: &PlaceRecord,
    search: Option<&str>,
) -> Result<Json<Value>, ApiError> {
    let items = installed_on(state, kind, place)
        .await?
        .into_iter()
        .filter(|(integration, _)| search_matches(integration, search))
        .map(|(integration, record)| {
            let mut body = integration_json(&integration);
            body["installation"] = json!(record.installation_id);
            body
        })
        .collect();
    Ok(listing(items))
}

async fn space_integrations(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(space_id): ApiPath<String>,
    ApiQuery(query): ApiQuery<SearchQuery>,
) -> Result<Json<Value>, ApiError> {
    let space = readable_place(&state, &principal, PlaceKind::Space, &space_id, None).await?;
    integrations_on(&state, PlaceKind::Space, &space, query.search.as_deref()).await
}

async fn site_integrations(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((org_id, site_id)): ApiPath<(String, String)>,
    ApiQuery(query): ApiQuery<SearchQuery>,
) -> Result<Json<Value>, ApiError> {
    principal.require_org_member(&org_id)?;
    let site = readable_place(&state, &principal, PlaceKind::Site, &site_id, Some(&org_id)).await?;
    integrations_on(&state, PlaceKind::Site, &site, query.search.as_deref()).await
}

async fn space_blocks(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(space_id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let space = readable_place(&state, &principal, PlaceKind::Space, &space_id, None).await?;
    let mut items = Vec::new();
    for (integration, record) in installed_on(&state, PlaceKind::Space, &space).await? {
        for block in integration.manifest["blocks"].as_array().into_iter().flatten() {
            let mut block = block.clone();
            if let Some(fields) = block.as_object_mut() {
                fields.insert("integration".into(), json!(integration.name));
                fields.insert("installation".into(), json!(record.installation_id));
            }
            items.push(block);
        }
    }
    Ok(listing(items))
}

/// Each integration installed on a site may serve a script to embed in its pages; weft
/// points at the installation's public endpoint (`…/fetch/script.js`), which the
/// integration's `fetch` handler answers.
async fn site_scripts(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((org_id, site_id)): ApiPath<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    principal.require_org_member(&org_id)?;
    let site = readable_place(&state, &principal, PlaceKind::Site, &site_id, Some(&org_id)).await?;
    let items = installed_on(&state, PlaceKind::Site, &site)
        .await?
        .into_iter()
        .map(|(integration, record)| {
            json!({
                "integration": integration.name,
                "installation": record.installation_id,
                "script": format!(
                    "{}/v1/integrations/{}/installations/{}/fetch/script.js",
                    state.public_url, integration.name, record.installation_id
                ),
            })
        })
        .collect();
    Ok(listing(items))
}

async fn status(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((org_id, name)): ApiPath<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    principal.require_org_member(&org_id)?;
    let integration = find_visible(&state, &principal, &name).await?;
    let filter = InstallationFilter { integration_id: &integration.id, org_id: &org_id, ..Default::default() };
    let installation = state.store.find_installations(&filter, "", 1).await?.into_iter().next();
    Ok(Json(match installation {
        Some(installation) => json!({
            "object": "integration-installation-status",
            "integration": name,
            "organization": org_id,
            "status": installation.status,
            "installation": installation.id,
            "urls": { "publicEndpoint": public_endpoint(&state, &installation) },
        }),
        None => json!({
            "object": "integration-installation-status",
            "integration": name,
            "organization": org_id,
            "status": "not_installed",
            "installation": null,
        }),
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusesQuery {
    page: Option<String>,
    limit: Option<i64>,
    search: Option<String>,
}

async fn statuses(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(org_id): ApiPath<String>,
    ApiQuery(query): ApiQuery<StatusesQuery>,
) -> Result<Json<Value>, ApiError> {
    principal.require_org_member(&org_id)?;
    let paging = PageQuery { page: query.page.clone(), limit: query.limit };
    let limit = paging.limit()?;
    let filter = InstallationFilter { org_id: &org_id, ..Default::default() };
    let mut matching = Vec::new();
    let mut after = String::new();
    loop {
        let installations = state.store.find_installations(&filter, &after, 500).await?;
        let Some(last) = installations.last() else { break };
        after = last.id.clone();
        for installation in installations {
            if let Some(integration) = state.store.integration(&installation.integration).await?
                && can_see(&principal, &integration)
                && search_matches(&integration, query.search.as_deref())
            {
                matching.push((integration, installation));
            }
        }
    }
    let count = matching.len() as i64;
    let page: Vec<_> =
        matching.into_iter().filter(|(_, i)| i.id.as_str() > paging.cursor()).take(limit as usize).collect();
    let last = page.last().map(|(_, i)| i.id.clone());
    let items = page
        .iter()
        .map(|(integration, installation)| {
            json!({
                "object": "integration-installation-status",
                "integration": integration_json(integration),
                "installation": installation.id,
                "status": installation.status,
            })
        })
        .collect();
    Ok(Json(page::list(items, limit, last, count)))
}
