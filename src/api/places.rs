//! Installations on spaces and sites, and what a space or site has installed:
//!
//! - `/v1/integrations/{integrationName}/spaces` and `…/sites`: every space (site)
//!   installation of an integration, optionally by `externalId`;
//! - `/v1/integrations/{integrationName}/installations/{installationId}/spaces[/{spaceId}]`
//!   and `…/sites[/{siteId}]`: list, install (`POST {"spaceId"}` / `{"siteId"}`), read,
//!   configure (`PATCH {"configuration","externalIds"}`) and remove (`DELETE`) one
//!   installation's spaces and sites;
//! - `/v1/spaces/{spaceId}/integrations`, `/v1/spaces/{spaceId}/integration-blocks`,
//!   `/v1/orgs/{organizationId}/sites/{siteId}/integrations`,
//!   `/v1/orgs/{organizationId}/sites/{siteId}/integration-scripts`;
//! - `/v1/orgs/{organizationId}/integrations/{integrationName}/installation_status`,
//!   `/v1/orgs/{organizationId}/integrations/installations-status` and
//!   `/v1/orgs/{organizationId}/installations`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiError;
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::installations::{find_installation, target_allows};
use super::integrations::{IntegrationViews, find_visible};
use super::page::{self, PageQuery};
use crate::auth::Principal;
use crate::shapes::{self, noun};
use crate::state::AppState;
use crate::store::{
    InstallationFilter, IntegrationRecord, PlaceInstallationFilter, PlaceInstallationRecord, PlaceKind, PlaceRecord,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/integrations/{integrationName}/spaces", get(integration_spaces))
        .route("/v1/integrations/{integrationName}/sites", get(integration_sites))
        .route(
            "/v1/integrations/{integrationName}/installations/{installationId}/spaces",
            get(list_spaces).post(install_space),
        )
        .route(
            "/v1/integrations/{integrationName}/installations/{installationId}/spaces/{spaceId}",
            get(show_space).patch(update_space).delete(remove_space),
        )
        .route(
            "/v1/integrations/{integrationName}/installations/{installationId}/sites",
            get(list_sites).post(install_site),
        )
        .route(
            "/v1/integrations/{integrationName}/installations/{installationId}/sites/{siteId}",
            get(show_site).patch(update_site).delete(remove_site),
        )
        .route("/v1/spaces/{spaceId}/integrations", get(space_integrations))
        .route("/v1/spaces/{spaceId}/integration-blocks", get(space_blocks))
        .route("/v1/orgs/{organizationId}/sites/{siteId}/integrations", get(site_integrations))
        .route("/v1/orgs/{organizationId}/sites/{siteId}/integration-scripts", get(site_scripts))
        .route("/v1/orgs/{organizationId}/integrations/{integrationName}/installation_status", get(status))
        .route("/v1/orgs/{organizationId}/integrations/installations-status", get(statuses))
        .route("/v1/orgs/{organizationId}/installations", get(org_installations))
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
    Ok(shapes::place_installation(super::urls(state), kind, record, place))
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

/// Every space (site) installation of an integration the caller may read.
async fn integration_places(
    state: AppState,
    kind: PlaceKind,
    principal: Principal,
    name: String,
    query: PlaceListQuery,
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
    page_of(&state, kind, &filter, &query).await
}

async fn integration_spaces(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(name): ApiPath<String>,
    ApiQuery(query): ApiQuery<PlaceListQuery>,
) -> Result<Json<Value>, ApiError> {
    integration_places(state, PlaceKind::Space, principal, name, query).await
}

async fn integration_sites(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(name): ApiPath<String>,
    ApiQuery(query): ApiQuery<PlaceListQuery>,
) -> Result<Json<Value>, ApiError> {
    integration_places(state, PlaceKind::Site, principal, name, query).await
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
    queue_lifecycle(&state, &installation, shapes::place_installation_setup_event(kind, &record, None)).await?;
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
    let removed = state.store.uninstall_from_place(kind, &id, &target_id).await?.ok_or_else(|| {
        ApiError::not_found(format!("installation `{id}` is not installed on {} `{target_id}`", noun(kind)))
    })?;
    queue_lifecycle(&state, &installation, shapes::place_installation_deleted_event(kind, &removed)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A PATCH of a space's or site's installation: its own configuration (checked against the
/// integration's `configurations.space` or `.site` schema) and external ids.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UpdatePlaceBody {
    configuration: Option<Value>,
    external_ids: Option<Vec<String>>,
}

async fn update_place(
    state: AppState,
    kind: PlaceKind,
    principal: Principal,
    (name, id, target_id): (String, String, String),
    body: UpdatePlaceBody,
    extended: bool,
) -> Result<Json<Value>, ApiError> {
    let (integration, installation) = find_installation(&state, &principal, &name, &id).await?;
    principal.require_change_installation(&installation)?;
    if let Some(ids) = &body.external_ids {
        super::installations::check_external_ids(ids)?;
    }
    if let Some(configuration) = &body.configuration {
        if !configuration.is_object() {
            return Err(ApiError::bad_request("configuration must be an object"));
        }
        if let Some(schema) = super::schema::place_schema(&integration.manifest["configurations"], noun(kind)) {
            super::schema::validate(configuration, schema, "configuration").map_err(ApiError::bad_request)?;
        }
    }
    let not_there =
        || ApiError::not_found(format!("installation `{id}` is not installed on {} `{target_id}`", noun(kind)));
    let previous = state.store.place_installation(kind, &id, &target_id).await?.ok_or_else(not_there)?;
    let record = state
        .store
        .update_place_installation(kind, &id, &target_id, body.configuration.as_ref(), body.external_ids.as_deref())
        .await?
        .ok_or_else(not_there)?;
    if body.configuration.is_some() {
        let event = shapes::place_installation_setup_event(kind, &record, Some(&previous));
        queue_lifecycle(&state, &installation, event).await?;
    }
    Ok(Json(place_installation_json(&state, kind, &record, extended).await?))
}

async fn update_space(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(path): ApiPath<(String, String, String)>,
    ApiQuery(query): ApiQuery<ExtendedQuery>,
    ApiJson(body): ApiJson<UpdatePlaceBody>,
) -> Result<Json<Value>, ApiError> {
    update_place(state, PlaceKind::Space, principal, path, body, query.extended.unwrap_or(false)).await
}

async fn update_site(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(path): ApiPath<(String, String, String)>,
    ApiQuery(query): ApiQuery<ExtendedQuery>,
    ApiJson(body): ApiJson<UpdatePlaceBody>,
) -> Result<Json<Value>, ApiError> {
    update_place(state, PlaceKind::Site, principal, path, body, query.extended.unwrap_or(false)).await
}

/// Tells the installation's module `event` (installed on, changed on or removed from a
/// space or site) through the queue, like every other event.
async fn queue_lifecycle(
    state: &AppState,
    installation: &crate::store::InstallationRecord,
    event: Value,
) -> Result<(), ApiError> {
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
    principal: &Principal,
    kind: PlaceKind,
    place: &PlaceRecord,
    search: Option<&str>,
) -> Result<Json<Value>, ApiError> {
    let mut views = IntegrationViews::new(state, principal);
    let mut items = Vec::new();
    for (integration, record) in installed_on(state, kind, place).await? {
        if search_matches(&integration, search) {
            let mut body = views.view(&integration).await?;
            body["installation"] = json!(record.installation_id);
            items.push(body);
        }
    }
    Ok(listing(items))
}

async fn space_integrations(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(space_id): ApiPath<String>,
    ApiQuery(query): ApiQuery<SearchQuery>,
) -> Result<Json<Value>, ApiError> {
    let space = readable_place(&state, &principal, PlaceKind::Space, &space_id, None).await?;
    integrations_on(&state, &principal, PlaceKind::Space, &space, query.search.as_deref()).await
}

async fn site_integrations(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((org_id, site_id)): ApiPath<(String, String)>,
    ApiQuery(query): ApiQuery<SearchQuery>,
) -> Result<Json<Value>, ApiError> {
    principal.require_org_member(&org_id)?;
    let site = readable_place(&state, &principal, PlaceKind::Site, &site_id, Some(&org_id)).await?;
    integrations_on(&state, &principal, PlaceKind::Site, &site, query.search.as_deref()).await
}

async fn space_blocks(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(space_id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let space = readable_place(&state, &principal, PlaceKind::Space, &space_id, None).await?;
    // GitBook's `SpaceIntegrationBlocks`: the blocks of each integration installed there.
    let items: Vec<Value> = installed_on(&state, PlaceKind::Space, &space)
        .await?
        .into_iter()
        .filter_map(|(integration, record)| {
            let blocks = integration.manifest["blocks"].as_array().filter(|blocks| !blocks.is_empty())?;
            Some(json!({ "name": integration.name, "installation": record.installation_id, "blocks": blocks }))
        })
        .collect();
    Ok(Json(Value::Array(items)))
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
    // GitBook's `SiteIntegrationScript`s.
    let urls = super::urls(&state);
    let items: Vec<Value> = installed_on(&state, PlaceKind::Site, &site)
        .await?
        .into_iter()
        .map(|(integration, record)| {
            let endpoint = urls.installation_endpoint(&integration.name, &record.installation_id);
            let mut script = json!({
                "integration": integration.name,
                "installation": record.installation_id,
                "script": format!("{endpoint}/script.js"),
                "cookies": integration.manifest["scopes"]
                    .as_array()
                    .is_some_and(|scopes| scopes.iter().any(|scope| scope == "site:script:cookies")),
            });
            if let Some(policy) = integration.manifest["contentSecurityPolicy"].as_str() {
                script["contentSecurityPolicy"] = json!(policy);
            }
            script
        })
        .collect();
    Ok(Json(Value::Array(items)))
}

/// GitBook's installation status of an integration in an organization; 404 when the
/// organization has not installed it.
async fn status(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((org_id, name)): ApiPath<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    principal.require_org_member(&org_id)?;
    let integration = find_visible(&state, &principal, &name).await?;
    let filter = InstallationFilter { integration_id: &integration.id, org_id: &org_id, ..Default::default() };
    let installation = state.store.find_installations(&filter, "", 1).await?.into_iter().next().ok_or_else(|| {
        ApiError::not_found(format!("integration `{name}` is not installed on organization `{org_id}`"))
    })?;
    Ok(Json(json!({
        "object": "integration-installation-status",
        "integration": name,
        "organization": org_id,
        "status": installation.status,
        "installation": installation.id,
        "urls": { "publicEndpoint": super::urls(&state).installation_endpoint(&name, &installation.id) },
    })))
}

/// What `installations-status` lists: the organization's own installations (GitBook's
/// default), or its installations on spaces or sites (one `space` or `site` at most).
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum StatusTarget {
    #[default]
    Organization,
    Space,
    Site,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusesQuery {
    page: Option<String>,
    limit: Option<i64>,
    #[serde(default)]
    target: StatusTarget,
    space: Option<String>,
    site: Option<String>,
}

/// GitBook's `InstalledIntegration`s of an organization: each installation's status, its
/// integration and what it is installed on.
async fn statuses(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(org_id): ApiPath<String>,
    ApiQuery(query): ApiQuery<StatusesQuery>,
) -> Result<Json<Value>, ApiError> {
    principal.require_org_member(&org_id)?;
    let paging = PageQuery { page: query.page.clone(), limit: query.limit };
    let limit = paging.limit()?;
    match (query.target, &query.space, &query.site) {
        (StatusTarget::Space, _, None) | (StatusTarget::Site, None, _) | (StatusTarget::Organization, None, None) => {}
        _ => return Err(ApiError::bad_request("space goes with target=space, and site with target=site")),
    }
    let mut views = IntegrationViews::new(&state, &principal);
    let mut items = Vec::new();
    let (count, last) = match query.target {
        StatusTarget::Organization => {
            let filter = InstallationFilter { org_id: &org_id, ..Default::default() };
            let installations = state.store.find_installations(&filter, paging.cursor(), limit).await?;
            for installation in &installations {
                let Some(integration) = state.store.integration_by_id(&installation.integration_id).await? else {
                    continue;
                };
                items.push(json!({
                    "status": installation.status,
                    "integration": views.view(&integration).await?,
                    "installation": installation.id,
                    "target": { "type": "organization", "organizationId": org_id },
                }));
            }
            let count = state.store.count_matching_installations(&filter).await?;
            (count, installations.last().map(|i| i.id.clone()))
        }
        StatusTarget::Space | StatusTarget::Site => {
            let (kind, place) = match query.target {
                StatusTarget::Space => (PlaceKind::Space, query.space.as_deref()),
                _ => (PlaceKind::Site, query.site.as_deref()),
            };
            let filter =
                PlaceInstallationFilter { org_id: &org_id, target_id: place.unwrap_or(""), ..Default::default() };
            let (records, count) = state.store.find_place_installations(kind, &filter, paging.cursor(), limit).await?;
            for record in &records {
                let Some(integration) = state.store.integration(&record.integration).await? else { continue };
                let field = format!("{}Id", shapes::noun(kind));
                items.push(json!({
                    "status": record.status,
                    "integration": views.view(&integration).await?,
                    "installation": record.installation_id,
                    "target": { "type": shapes::noun(kind), field: record.target_id },
                }));
            }
            (count, records.last().map(|r| format!("{}/{}", r.installation_id, r.target_id)))
        }
    };
    Ok(Json(page::list(items, limit, last, count)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OrgInstallationsQuery {
    page: Option<String>,
    limit: Option<i64>,
    /// Part of the integration's name.
    search: Option<String>,
}

/// Every installation of an organization, each with its integration (GitBook's
/// `{installation, integration}` items), optionally of integrations named like `search`.
async fn org_installations(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(org_id): ApiPath<String>,
    ApiQuery(query): ApiQuery<OrgInstallationsQuery>,
) -> Result<Json<Value>, ApiError> {
    principal.require_org_member(&org_id)?;
    let paging = PageQuery { page: query.page.clone(), limit: query.limit };
    let limit = paging.limit()?;
    let search = query.search.as_deref().unwrap_or("");
    let filter = InstallationFilter { org_id: &org_id, integration_name: search, ..Default::default() };
    let installations = state.store.find_installations(&filter, paging.cursor(), limit).await?;
    let mut views = IntegrationViews::new(&state, &principal);
    let mut items = Vec::with_capacity(installations.len());
    for installation in &installations {
        if let Some(integration) = state.store.integration_by_id(&installation.integration_id).await? {
            let integration = views.view(&integration).await?;
            let installation = shapes::installation(super::urls(&state), installation);
            items.push(json!({ "installation": installation, "integration": integration }));
        }
    }
    let count = state.store.count_matching_installations(&filter).await?;
    Ok(Json(page::list(items, limit, installations.last().map(|i| i.id.clone()), count)))
}
