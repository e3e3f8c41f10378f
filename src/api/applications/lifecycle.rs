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

/// How a field of the create/update body is checked.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    Bool,
    /// A nullable string of at most this many characters.
    Text(usize),
    /// Nullable http(s) URL.
    Url,
    /// `appLevelAuth`: which one way payloads are authenticated (sets the `has…` flags).
    AppLevelAuth,
    /// `sslKeystoreAuth`: weft has no SSL keystores, so only null is accepted.
    Keystore,
    /// A secret: sealed, never shown back.
    Secret,
}

/// The settings fields both create and update accept.
const FIELDS: &[(&str, Field)] = &[
    ("description", Field::Text(1000)),
    ("pictureAttachmentId", Field::Text(200)),
    ("defaultExternalPicture", Field::Url),
    ("clientCredentialsFlowEnabled", Field::Bool),
    ("codeFlowEnabled", Field::Bool),
    ("codeFlowRedirectURIs", Field::Text(4000)),
    ("pkceRequired", Field::Bool),
    ("publicClientsAllowed", Field::Bool),
    ("implicitFlowEnabled", Field::Bool),
    ("implicitFlowRedirectURIs", Field::Text(4000)),
    ("endpointUri", Field::Url),
    ("endpointSslVerification", Field::Bool),
    ("hasVerificationToken", Field::Bool),
    ("hasSigningKey", Field::Bool),
    ("hasPublicKeySignature", Field::Bool),
    ("appLevelAuth", Field::AppLevelAuth),
    ("sslKeystoreAuth", Field::Keystore),
    ("basicAuthUsername", Field::Text(200)),
    ("basicAuthPassword", Field::Secret),
    ("bearerAuthToken", Field::Secret),
];

/// Fields only create accepts.
const CREATE_ONLY: &[(&str, Field)] =
    &[("email", Field::Text(200)), ("connectToSpace", Field::Bool), ("state", Field::Text(1000))];

/// Checks one field's type and length, returning the value to store.
fn check(name: &str, kind: Field, value: &Value) -> SpaceResult<Value> {
    let ok = match (kind, value) {
        (_, Value::Null) => true,
        (Field::Bool, Value::Bool(_)) => true,
        (Field::AppLevelAuth, Value::String(s)) => {
            app_level_auth_flags(s).ok_or_else(|| {
                SpaceError::invalid(format!(
                    "{name} `{s}` must be one of NONE, VERIFICATION_TOKEN, SIGNING_KEY, PUBLIC_KEY_SIGNATURE"
                ))
            })?;
            true
        }
        (Field::Keystore, _) => {
            return Err(SpaceError::invalid(format!(
                "{name}: weft has no SSL keystores; leave it null (deliveries use the system's trusted roots)"
            )));
        }
        (Field::Text(max), Value::String(s)) => {
            if s.chars().count() > max {
                return Err(SpaceError::invalid(format!("{name} must be at most {max} characters")));
            }
            true
        }
        (Field::Url, Value::String(s)) => {
            valid_url(s).then_some(()).ok_or_else(|| SpaceError::invalid(format!("{name} must be an http(s) URL")))?;
            true
        }
        (Field::Secret, Value::String(s)) => {
            if s.is_empty() || s.len() > 1000 {
                return Err(SpaceError::invalid(format!("{name} must be 1–1000 characters")));
            }
            true
        }
        _ => false,
    };
    if !ok {
        let expected = match kind {
            Field::Bool => "a boolean",
            _ => "a string",
        };
        return Err(SpaceError::invalid(format!("{name} must be {expected} or null")));
    }
    Ok(value.clone())
}

/// The `hasVerificationToken`, `hasSigningKey` and `hasPublicKeySignature` flags an
/// `appLevelAuth` value stands for.
fn app_level_auth_flags(value: &str) -> Option<[(&'static str, bool); 3]> {
    let chosen = match value {
        "NONE" => "",
        "VERIFICATION_TOKEN" => "hasVerificationToken",
        "SIGNING_KEY" => "hasSigningKey",
        "PUBLIC_KEY_SIGNATURE" => "hasPublicKeySignature",
        _ => return None,
    };
    Some(["hasVerificationToken", "hasSigningKey", "hasPublicKeySignature"].map(|flag| (flag, flag == chosen)))
}

/// Whether `s` is an absolute http(s) URL.
pub(super) fn valid_url(s: &str) -> bool {
    s.len() <= 2000
        && reqwest::Url::parse(s).is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.has_host())
}

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

/// Applies the settings fields of `body` to `settings` and `auth`; refuses unknown fields.
fn apply_fields(
    body: &Map<String, Value>,
    settings: &mut Map<String, Value>,
    auth: &mut Map<String, Value>,
    known: &[&str],
    creating: bool,
) -> SpaceResult<()> {
    for (key, value) in body {
        if known.contains(&key.as_str()) {
            continue;
        }
        let spec = FIELDS.iter().chain(if creating { CREATE_ONLY } else { &[] }).find(|(name, _)| name == key);
        let Some((name, kind)) = spec else {
            return Err(SpaceError::invalid(format!("unknown field `{key}`")));
        };
        let value = check(name, *kind, value)?;
        if let Some(flags) = value.as_str().and_then(app_level_auth_flags).filter(|_| *kind == Field::AppLevelAuth) {
            // The scheme sets the flags; a flag also given in the body wins.
            for (flag, on) in flags {
                if !body.contains_key(flag) {
                    settings.insert(flag.to_owned(), json!(on));
                }
            }
        }
        if *kind == Field::Secret {
            auth.insert((*name).to_owned(), value);
        } else {
            if *name == "basicAuthUsername" {
                auth.insert((*name).to_owned(), value.clone());
            }
            settings.insert((*name).to_owned(), value);
        }
    }
    Ok(())
}

fn seal_auth(state: &AppState, auth: &Map<String, Value>) -> Option<String> {
    let present = auth.values().any(|v| !v.is_null());
    present.then(|| state.secrets.seal(Value::Object(auth.clone()).to_string().as_bytes()))
}

/// An application as the API shows it.
pub(super) fn app_json(state: &AppState, app: &ApplicationRecord) -> Value {
    // Only the documented fields: the settings also hold ssh keys, unfurl state, rights, …
    // which have endpoints of their own.
    let shown = |key: &str| {
        key == "errorMessage"
            || FIELDS
                .iter()
                .chain(CREATE_ONLY)
                .any(|(name, kind)| *name == key && *kind != Field::Secret && key != "state")
    };
    let mut body: Map<String, Value> = app
        .settings
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| shown(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let auth: Value = app
        .auth_sealed
        .as_ref()
        .and_then(|sealed| state.secrets.open(sealed).ok())
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or(Value::Null);
    body.insert("id".into(), json!(app.id));
    body.insert("name".into(), json!(app.name));
    body.insert("clientId".into(), json!(app.client_id));
    body.insert("organization".into(), json!(app.org_id));
    body.insert("owner".into(), json!({ "id": app.owner_id.as_deref().unwrap_or("admin") }));
    body.insert("connected".into(), json!(app.connected));
    body.insert("status".into(), json!(app.status));
    body.insert("archived".into(), json!(app.status == "archived"));
    body.insert("hasBasicAuthPassword".into(), json!(!auth["basicAuthPassword"].is_null()));
    body.insert("hasBearerAuthToken".into(), json!(!auth["bearerAuthToken"].is_null()));
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
    let mut settings: Map<String, Value> = json!({
        "clientCredentialsFlowEnabled": true,
        "codeFlowEnabled": false,
        "implicitFlowEnabled": false,
        "endpointSslVerification": true,
        "hasVerificationToken": false,
        "hasSigningKey": true,
        "hasPublicKeySignature": true,
        "connectToSpace": false,
        "endpointUri": null,
        "errorMessage": null,
    })
    .as_object()
    .cloned()
    .unwrap_or_default();
    let mut auth = Map::new();
    apply_fields(&body, &mut settings, &mut auth, &["name", "clientId", "clientSecret", "organization"], true)?;
    // Null means "the default" for these flags.
    for (flag, default) in [("clientCredentialsFlowEnabled", true), ("endpointSslVerification", true)] {
        if settings[flag].is_null() {
            settings.insert(flag.into(), json!(default));
        }
    }
    let connect = settings["connectToSpace"].as_bool().unwrap_or(false);
    if connect && settings["endpointUri"].is_null() {
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
        auth_sealed: seal_auth(&state, &auth),
        settings: Value::Object(settings),
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
        let mut settings = app.settings.as_object().cloned().unwrap_or_default();
        let mut auth: Map<String, Value> = match &app.auth_sealed {
            Some(sealed) => serde_json::from_slice(&state.secrets.open(sealed)?).map_err(SpaceError::internal)?,
            None => Map::new(),
        };
        apply_fields(&body, &mut settings, &mut auth, &["name", "clientSecret"], false)?;
        app.settings = Value::Object(settings);
        app.auth_sealed = seal_auth(&state, &auth);
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
        app.settings["errorMessage"] = json!(body.message);
        Ok(())
    })
    .await?;
    Ok(StatusCode::OK)
}
