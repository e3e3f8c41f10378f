//! Creating, listing, reading, updating, deleting (uninstalling), restoring and
//! force-removing applications; report-as-healthy and the error message.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{
    Caller, Paging, Right, SpaceError, SpaceJson, SpacePath, SpaceQuery, SpaceResult, modify, page, resolve, rights,
    time,
};
use crate::applications::credentials::EndpointCredentials;
use crate::applications::settings::{ApplicationSettings, InvalidField};
use crate::applications::signing::generate_key;
use crate::state::AppState;
use crate::store::{AppFilter, AppOrder, AppSecret, ApplicationRecord, now_ms};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/http/applications", post(create))
        .route("/api/http/applications/paged", get(list))
        .route("/api/http/applications/report-application-as-healthy", post(report_healthy))
        .route("/api/http/applications/error-message", patch(error_message))
        .route("/api/http/applications/{application}", get(show).patch(update).delete(remove))
        .route("/api/http/applications/{application}/restore", post(restore))
        .route("/api/http/applications/{application}/force-remove", post(force_remove))
}

/// Whether `s` is an absolute http(s) URL (the webhooks' endpoints use it too).
pub(super) use crate::applications::settings::valid_url;

fn check_name(value: &Value) -> SpaceResult<String> {
    let name = value.as_str().ok_or_else(|| SpaceError::invalid("name must be a string"))?.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(SpaceError::invalid("name must be 1–100 characters"));
    }
    Ok(name.to_owned())
}

fn check_client_secret(value: &Value) -> SpaceResult<Option<String>> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) if (8..=256).contains(&s.len()) => Ok(Some(s.clone())),
        _ => Err(SpaceError::invalid("clientSecret must be a string of 8–256 characters")),
    }
}

/// Applies the settings fields of a create or update body ([`ApplicationSettings::apply`]),
/// answering 400 naming the field when one is not what the settings accept.
fn apply_fields(
    body: &Map<String, Value>,
    settings: &mut ApplicationSettings,
    auth: &mut EndpointCredentials,
    skip: &[&str],
    creating: bool,
) -> SpaceResult<()> {
    settings.apply(body, skip, creating, auth).map_err(|InvalidField(message)| SpaceError::invalid(message))
}

/// An application as the API shows it.
pub(super) fn app_json(state: &AppState, app: &ApplicationRecord) -> Value {
    let mut body = app.settings.shown();
    let auth = EndpointCredentials::open(&state.secrets, app.auth_sealed.as_deref()).unwrap_or_default();
    body.insert("id".into(), json!(app.id));
    body.insert("name".into(), json!(app.name));
    body.insert("clientId".into(), json!(app.client_id));
    body.insert("organization".into(), json!(app.org_id));
    body.insert("owner".into(), json!({ "id": app.owner_id.as_deref().unwrap_or("admin") }));
    body.insert("connected".into(), json!(app.connected));
    body.insert("status".into(), json!(app.status));
    body.insert("archived".into(), json!(app.status == "archived"));
    body.insert("hasBasicAuthPassword".into(), json!(auth.basic_auth_password.is_some()));
    body.insert("hasBearerAuthToken".into(), json!(auth.bearer_auth_token.is_some()));
    body.insert("lastHealthyAt".into(), time(app.last_healthy_at));
    body.insert("createdAt".into(), time(Some(app.created_at)));
    body.insert("updatedAt".into(), time(Some(app.updated_at)));
    Value::Object(body)
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    SpaceJson(body): SpaceJson<Map<String, Value>>,
) -> SpaceResult<(StatusCode, Json<Value>)> {
    let name = check_name(body.get("name").ok_or_else(|| SpaceError::invalid("name is required"))?)?;
    let client_id = match body.get("clientId").unwrap_or(&Value::Null) {
        Value::Null => crate::ids::random("", 32).to_lowercase(),
        Value::String(id)
            if (1..=100).contains(&id.len())
                && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) =>
        {
            id.clone()
        }
        _ => return Err(SpaceError::invalid("clientId must be 1–100 characters of a-z, A-Z, 0-9, `-`, `_` and `.`")),
    };
    let client_secret = check_client_secret(body.get("clientSecret").unwrap_or(&Value::Null))?
        .unwrap_or_else(|| crate::ids::random("", 48));
    let org_id = match body.get("organization").unwrap_or(&Value::Null) {
        Value::Null => None,
        Value::String(org) => {
            state.store.org(org).await?.ok_or_else(|| SpaceError::invalid(format!("no organization `{org}`")))?;
            Some(org.clone())
        }
        _ => return Err(SpaceError::invalid("organization must be a string")),
    };
    rights::check_create(&caller, org_id.as_deref())?;
    let mut settings = ApplicationSettings::for_new_application();
    let mut auth = EndpointCredentials::default();
    apply_fields(&body, &mut settings, &mut auth, &["name", "clientId", "clientSecret", "organization"], true)?;
    // Null means "the default" for these flags.
    settings.client_credentials_flow_enabled.get_or_insert(true);
    settings.endpoint_ssl_verification.get_or_insert(true);
    let connect = settings.connects_to_space();
    if connect && settings.endpoint_uri.is_none() {
        return Err(SpaceError::invalid("connectToSpace needs an endpointUri to send the InitPayload to"));
    }
    let now = now_ms();
    let app = ApplicationRecord {
        id: crate::ids::random("", 12).to_lowercase(),
        org_id,
        name,
        client_id,
        client_secret_sealed: state.secrets.seal(client_secret.as_bytes()),
        signing_key_sealed: state.secrets.seal(generate_key().as_bytes()),
        verification_sealed: state.secrets.seal(generate_key().as_bytes()),
        auth_sealed: auth.seal(&state.secrets),
        settings,
        status: "active".into(),
        last_cc_access_at: None,
        last_healthy_at: None,
        created_at: now,
        updated_at: now,
        owner_id: caller.user_id().map(str::to_owned),
        connected: connect,
        version: 0,
    };
    if !state.store.insert_application(&app).await? {
        return Err(SpaceError::conflict(format!("clientId `{}` is already taken", app.client_id)));
    }
    if connect {
        crate::applications::send_init(&state, &app, &client_secret).await?;
    }
    Ok((StatusCode::OK, Json(app_json(&state, &app))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    #[serde(rename = "$skip")]
    skip: Option<String>,
    #[serde(rename = "$top")]
    top: Option<i64>,
    name: Option<String>,
    owner: Option<String>,
    #[serde(rename = "withArchived")]
    with_archived: Option<bool>,
    #[serde(rename = "withManaged")]
    with_managed: Option<bool>,
    ordering: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    SpaceQuery(query): SpaceQuery<ListQuery>,
) -> SpaceResult<Json<Value>> {
    let (offset, limit) = Paging { skip: query.skip, top: query.top }.window()?;
    let order = match query.ordering.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("name") => AppOrder::Name,
        Some("created") => AppOrder::Created,
        Some("created_desc" | "createddesc") => AppOrder::CreatedDesc,
        Some(other) => {
            return Err(SpaceError::invalid(format!("ordering `{other}` must be NAME, CREATED or CREATED_DESC")));
        }
    };
    let visible_to_user = match &caller {
        Caller::Admin => None,
        Caller::User { user_id, .. } => Some(user_id.clone()),
        Caller::App { .. } => return Err(SpaceError::forbidden("an application may only act on itself")),
    };
    let owners = query.owner.as_deref().map(|owners| {
        owners
            .split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map(|owner| match owner.strip_prefix("id:").unwrap_or(owner) {
                "admin" => None,
                "me" => caller.user_id().map(str::to_owned),
                user => Some(user.to_owned()),
            })
            .collect::<Vec<_>>()
    });
    let filter = AppFilter {
        name: query.name,
        with_archived: query.with_archived.unwrap_or(false),
        with_managed: query.with_managed.unwrap_or(true),
        visible_to_user,
        owners,
    };
    let (apps, total) = state.store.list_applications(&filter, order, offset, limit).await?;
    let data = apps.iter().map(|app| app_json(&state, app)).collect();
    Ok(Json(page(data, offset, total)))
}

async fn show(
    State(state): State<AppState>,
    caller: Caller,
    SpacePath(reference): SpacePath<String>,
) -> SpaceResult<Json<Value>> {
    let app = resolve(&state, &caller, &reference, Right::View).await?;
    Ok(Json(app_json(&state, &app)))
}

async fn update(
    State(state): State<AppState>,
    caller: Caller,
    SpacePath(reference): SpacePath<String>,
    SpaceJson(body): SpaceJson<Map<String, Value>>,
) -> SpaceResult<Json<Value>> {
    let name = body.get("name").filter(|v| !v.is_null()).map(check_name).transpose()?;
    let secret = check_client_secret(body.get("clientSecret").unwrap_or(&Value::Null))?;
    let app = modify(&state, &caller, &reference, Right::Update, |app| {
        if app.status == "archived" {
            return Err(SpaceError::conflict("the application is archived: restore it first"));
        }
        if app.connected && !caller.is_app(&app.id) {
            return Err(SpaceError::forbidden(
                "a connected (multi-org) application can only be updated by the application itself",
            ));
        }
        if let Some(name) = &name {
            app.name = name.clone();
        }
        let mut auth = EndpointCredentials::open(&state.secrets, app.auth_sealed.as_deref())?;
        apply_fields(&body, &mut app.settings, &mut auth, &["name", "clientSecret"], false)?;
        app.auth_sealed = auth.seal(&state.secrets);
        Ok(())
    })
    .await?;
    if let Some(secret) = secret {
        let sealed = state.secrets.seal(secret.as_bytes());
        state.store.set_application_secret(&app.id, AppSecret::ClientSecret, &sealed).await?;
    }
    let app = state.store.application(&app.id).await?.ok_or_else(|| SpaceError::not_found("no such application"))?;
    Ok(Json(app_json(&state, &app)))
}

async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    SpacePath(reference): SpacePath<String>,
) -> SpaceResult<StatusCode> {
    let app = resolve(&state, &caller, &reference, Right::Delete).await?;
    if app.status == "active" {
        crate::applications::uninstall(&state, &app).await?;
    }
    Ok(StatusCode::OK)
}

async fn restore(
    State(state): State<AppState>,
    caller: Caller,
    SpacePath(reference): SpacePath<String>,
) -> SpaceResult<Json<Value>> {
    let app = resolve(&state, &caller, &reference, Right::Update).await?;
    state.store.restore_application(&app.id).await?;
    let app = state.store.application(&app.id).await?.ok_or_else(|| SpaceError::not_found("no such application"))?;
    Ok(Json(app_json(&state, &app)))
}

async fn force_remove(
    State(state): State<AppState>,
    caller: Caller,
    SpacePath(reference): SpacePath<String>,
) -> SpaceResult<StatusCode> {
    let app = resolve(&state, &caller, &reference, Right::Delete).await?;
    if app.status != "archived" && !state.store.uninstall_failed_once(&app.id).await? {
        return Err(SpaceError::conflict(
            "force-remove is for an application whose ApplicationUninstalledPayload failed at least once: \
             delete it first",
        ));
    }
    crate::applications::archive(&state, &app.id).await?;
    Ok(StatusCode::OK)
}

async fn report_healthy(State(state): State<AppState>, caller: Caller) -> SpaceResult<StatusCode> {
    let app_id = caller.require_app()?;
    state.store.touch_application_healthy(app_id).await?;
    Ok(StatusCode::OK)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ErrorMessage {
    #[serde(default)]
    message: Option<String>,
}

async fn error_message(
    State(state): State<AppState>,
    caller: Caller,
    SpaceJson(body): SpaceJson<ErrorMessage>,
) -> SpaceResult<StatusCode> {
    let app_id = caller.require_app()?.to_owned();
    if body.message.as_ref().is_some_and(|m| m.chars().count() > 1000) {
        return Err(SpaceError::invalid("message must be at most 1000 characters"));
    }
    modify(&state, &caller, &app_id, Right::Update, |app| {
        app.settings.error_message = body.message.clone();
        Ok(())
    })
    .await?;
    Ok(StatusCode::OK)
}
