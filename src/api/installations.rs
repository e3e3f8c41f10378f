//! `/v1/integrations/{integrationName}/installations`: install an integration on an
//! organization, list, read, configure and uninstall installations, and mint temporary
//! installation tokens.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use weft_runtime::Outcome;

use super::ApiError;
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::integrations::find_visible;
use super::page::{self, PageQuery};
use crate::auth::{Principal, TEMPORARY_TOKEN_MS, generate_token, hash_token};
use crate::state::AppState;
use crate::store::{
    InstallationFilter, InstallationRecord, InstallationUpdate, IntegrationRecord, NewInstallation, PlaceKind,
    TokenKind, now_ms,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/integrations/{integrationName}/installations", get(list).post(install))
        .route(
            "/v1/integrations/{integrationName}/installations/{installationId}",
            get(show).patch(update).delete(uninstall),
        )
        .route("/v1/integrations/{integrationName}/installations/{installationId}/tokens", post(create_token))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InstallBody {
    organization: String,
    /// An initial configuration (a weft extension of the reference's body): checked like a
    /// PATCH's, and `installation_setup` runs before the answer.
    configuration: Option<Value>,
}

/// The JSON form of an installation (GitBook's `IntegrationInstallation`).
pub fn installation_json(state: &AppState, installation: &InstallationRecord) -> Value {
    crate::shapes::installation(super::urls(state), installation)
}

/// Runs a lifecycle event for `installation`; a guest failure or a busy server is logged,
/// never fatal to the API call that caused it.
pub async fn notify(
    state: &AppState,
    integration: &IntegrationRecord,
    installation: &InstallationRecord,
    event: Value,
) {
    let event_type = event["type"].as_str().unwrap_or("unknown").to_owned();
    match crate::dispatch::run_event(state, integration, installation, event, |_| Ok(())).await {
        Ok(dispatched) => {
            if let Err(failure) = dispatched.report.result {
                tracing::warn!(installation = %installation.id, %event_type, kind = failure.kind.as_str(),
                    message = %failure.message, "lifecycle event failed");
            }
        }
        Err(error) => tracing::warn!(installation = %installation.id, %event_type, %error, "lifecycle event not run"),
    }
}

/// How `installation_setup` went when run for a configuration the API is about to keep.
#[derive(Debug)]
enum Setup {
    /// The module accepted the configuration (or had nothing to say).
    Accepted,
    /// The module refused it with a 4xx error; its message.
    Rejected(String),
    /// No verdict (a trap, a timeout, a 5xx, a busy server, an unreachable dev tunnel…):
    /// the configuration is kept and the event goes through the queue, with retries.
    Undecided,
}

/// Runs `installation_setup` now for `installation` as it will be once the change is kept
/// (`installation` carries the new configuration, not yet stored). The run is in the
/// events log like any other.
async fn run_setup(
    state: &AppState,
    integration: &IntegrationRecord,
    installation: &InstallationRecord,
    previous: Option<&InstallationRecord>,
) -> Setup {
    let event = crate::shapes::installation_setup_event(installation, previous);
    match crate::dispatch::run_event(state, integration, installation, event, |_| Ok(())).await {
        Ok(dispatched) => match dispatched.report.result {
            Ok(Outcome::Error { code, message }) if (400..500).contains(&code) => Setup::Rejected(message),
            Ok(Outcome::Error { code, message }) => {
                tracing::warn!(installation = %installation.id, code, %message,
                    "installation_setup failed; queued for retries");
                Setup::Undecided
            }
            Ok(Outcome::Response(_) | Outcome::None) => Setup::Accepted,
            Err(failure) => {
                tracing::warn!(installation = %installation.id, kind = failure.kind.as_str(),
                    message = %failure.message, "installation_setup failed; queued for retries");
                Setup::Undecided
            }
        },
        Err(error) => {
            tracing::warn!(installation = %installation.id, %error, "installation_setup not run; queued for retries");
            Setup::Undecided
        }
    }
}

/// Queues `installation_setup` for `installation` (with the queue's retries).
async fn queue_setup(
    state: &AppState,
    installation: &InstallationRecord,
    previous: Option<&InstallationRecord>,
) -> Result<(), ApiError> {
    let event = crate::shapes::installation_setup_event(installation, previous);
    let job = crate::queue::event_job(crate::queue::JobOwner::installation(installation), event);
    state.queue.enqueue(&state.store, &[job]).await?;
    Ok(())
}

/// The API's answer when the module refused a configuration.
fn rejected(message: &str) -> ApiError {
    const MAX_CHARS: usize = 1000;
    let mut message = message.to_owned();
    if let Some((cut, _)) = message.char_indices().nth(MAX_CHARS) {
        message.truncate(cut);
        message.push('…');
    }
    ApiError::bad_request(format!("configuration rejected by the integration: {message}"))
}

/// Checks a configuration against the integration's `configurations` schema.
fn check_configuration(integration: &IntegrationRecord, configuration: &Value) -> Result<(), ApiError> {
    if !configuration.is_object() {
        return Err(ApiError::bad_request("configuration must be an object"));
    }
    if let Some(schema) = super::schema::installation_schema(&integration.manifest["configurations"]) {
        super::schema::validate(configuration, schema, "configuration").map_err(ApiError::bad_request)?;
    }
    Ok(())
}

/// The integration (visible to `principal`) and its installation `id` (readable by it).
pub async fn find_installation(
    state: &AppState,
    principal: &Principal,
    name: &str,
    id: &str,
) -> Result<(IntegrationRecord, InstallationRecord), ApiError> {
    let integration = find_visible(state, principal, name).await?;
    let installation = state
        .store
        .installation(&integration.id, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("integration `{name}` has no installation `{id}`")))?;
    principal.require_read_installation(&installation)?;
    Ok((integration, installation))
}

async fn install(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<InstallBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    principal.require_org_admin(&body.organization)?;
    let integration = find_visible(&state, &principal, &name).await?;
    if state.store.org(&body.organization).await?.is_none() {
        return Err(ApiError::bad_request(format!("organization `{}` does not exist", body.organization)));
    }
    if integration.visibility == "private" && integration.org_id != body.organization {
        return Err(ApiError::forbidden(format!(
            "integration `{name}` is private to organization `{}`",
            integration.org_id
        )));
    }
    if let Some(configuration) = &body.configuration {
        check_configuration(&integration, configuration)?;
    }
    let id = crate::ids::random("inst_", 20);
    let mut installation = match state.store.create_installation(&id, &integration, &body.organization).await? {
        NewInstallation::Created(installation) => *installation,
        NewInstallation::Exists(existing) => {
            return Err(ApiError::conflict(format!(
                "integration `{name}` is already installed on organization `{}` as `{existing}`",
                body.organization
            )));
        }
        NewInstallation::IntegrationGone => return Err(ApiError::not_found(format!("no integration `{name}`"))),
    };
    // Every install tells the module, as GitBook does: at once when a configuration is to
    // be approved, else through the queue.
    let Some(configuration) = body.configuration else {
        queue_setup(&state, &installation, None).await?;
        return Ok((StatusCode::CREATED, Json(installation_json(&state, &installation))));
    };
    {
        let configured = InstallationRecord { configuration: configuration.clone(), ..installation.clone() };
        let setup = run_setup(&state, &integration, &configured, None).await;
        if let Setup::Rejected(message) = &setup {
            state.store.delete_installation(&id).await?;
            return Err(rejected(message));
        }
        let change = InstallationUpdate { configuration: Some(configuration), ..InstallationUpdate::default() };
        installation = state
            .store
            .update_installation(&id, &change)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("integration `{name}` has no installation `{id}`")))?;
        if matches!(setup, Setup::Undecided) {
            queue_setup(&state, &installation, None).await?;
        }
    }
    Ok((StatusCode::CREATED, Json(installation_json(&state, &installation))))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ListQuery {
    page: Option<String>,
    limit: Option<i64>,
    external_id: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(name): ApiPath<String>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let integration = find_visible(&state, &principal, &name).await?;
    let paging = PageQuery { page: query.page.clone(), limit: query.limit };
    let limit = paging.limit()?;
    // Each caller sees only what it may read: users their organizations' installations, an
    // installation token itself, the integration and the operator all of them.
    let filter = InstallationFilter {
        integration_id: &integration.id,
        external_id: query.external_id.as_deref().unwrap_or(""),
        member: principal.user_id(),
        id: match &principal {
            Principal::Installation { id, .. } => id,
            _ => "",
        },
        ..Default::default()
    };
    let installations = state.store.find_installations(&filter, paging.cursor(), limit).await?;
    let count = state.store.count_matching_installations(&filter).await?;
    let last = installations.last().map(|i| i.id.clone());
    let items = installations.iter().map(|i| installation_json(&state, i)).collect();
    Ok(Json(page::list(items, limit, last, count)))
}

async fn show(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((name, id)): ApiPath<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let (_, installation) = find_installation(&state, &principal, &name, &id).await?;
    Ok(Json(installation_json(&state, &installation)))
}

/// `all` or `selected`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Selection {
    All,
    Selected,
}

impl Selection {
    fn as_str(self) -> &'static str {
        match self {
            Selection::All => "all",
            Selection::Selected => "selected",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UpdateBody {
    external_ids: Option<Vec<String>>,
    #[serde(rename = "space_selection")]
    space_selection: Option<Selection>,
    #[serde(rename = "site_selection")]
    site_selection: Option<Selection>,
    configuration: Option<Value>,
}

/// GitBook's rule for `externalIds`: at most 5, each 1–100 characters.
pub fn check_external_ids(ids: &[String]) -> Result<(), ApiError> {
    if ids.len() > 5 {
        return Err(ApiError::bad_request("externalIds must hold at most 5 ids"));
    }
    if let Some(bad) = ids.iter().find(|id| id.is_empty() || id.len() > 100) {
        return Err(ApiError::bad_request(format!("externalIds: `{bad}` must be 1–100 characters")));
    }
    Ok(())
}

/// Whether an integration with this `target` may be installed on spaces or sites.
pub fn target_allows(target: &str, kind: PlaceKind) -> bool {
    match kind {
        PlaceKind::Space => matches!(target, "all" | "space"),
        PlaceKind::Site => matches!(target, "all" | "site"),
    }
}

async fn update(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((name, id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<UpdateBody>,
) -> Result<Json<Value>, ApiError> {
    let (integration, installation) = find_installation(&state, &principal, &name, &id).await?;
    principal.require_change_installation(&installation)?;
    if let Some(ids) = &body.external_ids {
        check_external_ids(ids)?;
    }
    for (selection, kind, field) in [
        (body.space_selection, PlaceKind::Space, "space_selection"),
        (body.site_selection, PlaceKind::Site, "site_selection"),
    ] {
        if selection == Some(Selection::All) && !target_allows(&integration.target, kind) {
            return Err(ApiError::bad_request(format!(
                "{field}: integration `{name}` cannot be installed there (target `{}`)",
                integration.target
            )));
        }
    }
    if let Some(configuration) = &body.configuration {
        check_configuration(&integration, configuration)?;
    }
    // A new configuration is put to the module before it is kept: a 4xx from its
    // `installation_setup` refuses the whole change, and nothing is stored.
    let setup = match &body.configuration {
        Some(configuration) => {
            let configured = InstallationRecord {
                status: "active".to_owned(),
                configuration: configuration.clone(),
                external_ids: body.external_ids.clone().unwrap_or_else(|| installation.external_ids.clone()),
                space_selection: body
                    .space_selection
                    .map_or_else(|| installation.space_selection.clone(), |s| s.as_str().to_owned()),
                site_selection: body
                    .site_selection
                    .map_or_else(|| installation.site_selection.clone(), |s| s.as_str().to_owned()),
                ..installation.clone()
            };
            match run_setup(&state, &integration, &configured, Some(&installation)).await {
                Setup::Rejected(message) => return Err(rejected(&message)),
                setup => Some(setup),
            }
        }
        None => None,
    };
    let change = InstallationUpdate {
        status: body.configuration.as_ref().map(|_| "active".to_owned()),
        configuration: body.configuration.clone(),
        external_ids: body.external_ids.clone(),
        space_selection: body.space_selection.map(|s| s.as_str().to_owned()),
        site_selection: body.site_selection.map(|s| s.as_str().to_owned()),
    };
    let previous = installation;
    let installation = state
        .store
        .update_installation(&id, &change)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("integration `{name}` has no installation `{id}`")))?;
    for (selection, kind) in [(body.space_selection, PlaceKind::Space), (body.site_selection, PlaceKind::Site)] {
        if selection == Some(Selection::All) {
            install_everywhere(&state, &installation, kind).await?;
        }
    }
    if matches!(setup, Some(Setup::Undecided)) {
        queue_setup(&state, &installation, Some(&previous)).await?;
    }
    Ok(Json(installation_json(&state, &installation)))
}

/// Installs `installation` on every space (or site) of its organization.
pub async fn install_everywhere(
    state: &AppState,
    installation: &InstallationRecord,
    kind: PlaceKind,
) -> Result<(), ApiError> {
    let mut after = String::new();
    loop {
        let (places, _) = state.store.places(kind, &installation.org_id, &after, 500).await?;
        let Some(last) = places.last() else { return Ok(()) };
        after = last.id.clone();
        for place in &places {
            state
                .store
                .install_on_place(kind, &installation.id, &place.id, &installation.integration, &installation.org_id)
                .await?;
        }
    }
}

async fn uninstall(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((name, id)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let (integration, installation) = find_installation(&state, &principal, &name, &id).await?;
    principal.require_org_admin(&installation.org_id)?;
    notify(&state, &integration, &installation, crate::shapes::installation_deleted_event(&installation)).await;
    state.store.delete_installation(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn create_token(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((name, id)): ApiPath<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let (integration, installation) = find_installation(&state, &principal, &name, &id).await?;
    if !principal.acts_for(&integration, false) {
        return Err(ApiError::forbidden(format!(
            "only integration `{name}` itself (its integration token) may create installation tokens"
        )));
    }
    let token = generate_token();
    let expires_at = now_ms() + TEMPORARY_TOKEN_MS;
    state.store.put_token(&hash_token(&token), TokenKind::Installation, &installation.id, Some(expires_at)).await?;
    Ok(Json(json!({
        "object": "integration-installation-token",
        "token": token,
        "installation": installation.id,
        "expiresAt": super::timestamp(expires_at),
    })))
}
