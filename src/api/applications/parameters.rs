//! App-level parameters (only the application itself, with an app token, reads and writes
//! them), profile parameters (per user, with a user token issued to the application: the
//! profile and the application come from the token), and the unfurl settings an application
//! declares for itself.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Caller, Right, SpaceError, SpaceJson, SpacePath, SpaceResult, modify, resolve};
use crate::state::AppState;
use crate::store::ParameterLimit;

/// Most parameters per application.
pub const MAX_PARAMETERS: i64 = 100;
/// Longest parameter key, in characters.
pub const MAX_KEY_CHARS: usize = 64;
/// Longest parameter value, in characters.
pub const MAX_VALUE_CHARS: usize = 1000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/http/applications/parameters/{key}",
            get(get_parameter).patch(set_parameter).delete(delete_parameter),
        )
        .route("/api/http/applications/parameters/profile", get(profile_parameters))
        .route(
            "/api/http/applications/parameters/profile/{key}",
            axum::routing::patch(set_profile_parameter).delete(delete_profile_parameter),
        )
        .route("/api/http/applications/unfurls/domains", patch(set_unfurl_domains))
        .route("/api/http/applications/unfurls/patterns", patch(set_unfurl_patterns))
        .route("/api/http/applications/{application}/unfurl-domains", get(unfurl_domains))
        .route("/api/http/applications/{application}/unfurl-patterns", get(unfurl_patterns))
        .route("/api/http/applications/{application}/unfurl-domains/authorize", post(authorize_domains))
        .route("/api/http/applications/{application}/unfurl-patterns/authorize", post(authorize_patterns))
}

fn check_key(key: &str) -> SpaceResult<()> {
    if key.is_empty() || key.chars().count() > MAX_KEY_CHARS {
        return Err(SpaceError::invalid(format!("the parameter key must be 1–{MAX_KEY_CHARS} characters")));
    }
    Ok(())
}

async fn get_parameter(
    State(state): State<AppState>,
    caller: Caller,
    SpacePath(key): SpacePath<String>,
) -> SpaceResult<Json<Value>> {
    let app_id = caller.require_app()?;
    check_key(&key)?;
    let value = state
        .store
        .app_parameter(app_id, "", &key)
        .await?
        .ok_or_else(|| SpaceError::not_found(format!("no parameter `{key}`")))?;
    Ok(Json(json!(value)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetParameter {
    value: String,
}

async fn set_parameter(
    State(state): State<AppState>,
    caller: Caller,
    SpacePath(key): SpacePath<String>,
    SpaceJson(body): SpaceJson<SetParameter>,
) -> SpaceResult<StatusCode> {
    let app_id = caller.require_app()?;
    check_key(&key)?;
    if body.value.chars().count() > MAX_VALUE_CHARS {
        return Err(SpaceError::invalid(format!("the parameter value must be at most {MAX_VALUE_CHARS} characters")));
    }
    match state.store.set_app_parameter(app_id, "", &key, &body.value, MAX_PARAMETERS).await? {
        Ok(()) => Ok(StatusCode::OK),
        Err(ParameterLimit::TooMany) => Err(SpaceError::invalid(format!(
            "an application has at most {MAX_PARAMETERS} parameters: delete one before adding `{key}`"
        ))),
    }
}

async fn delete_parameter(
    State(state): State<AppState>,
    caller: Caller,
    SpacePath(key): SpacePath<String>,
) -> SpaceResult<StatusCode> {
    let app_id = caller.require_app()?;
    check_key(&key)?;
    if !state.store.delete_app_parameter(app_id, "", &key).await? {
        return Err(SpaceError::not_found(format!("no parameter `{key}`")));
    }
    Ok(StatusCode::OK)
}

/// The profile of a user token: parameters are stored under `user:{id}`, apart from the
/// application's own (`""`).
fn profile_of(caller: &Caller) -> SpaceResult<(String, String)> {
    let (app_id, user_id) = caller.require_user_token()?;
    Ok((app_id.to_owned(), format!("user:{user_id}")))
}

async fn profile_parameters(State(state): State<AppState>, caller: Caller) -> SpaceResult<Json<Value>> {
    let (app_id, profile) = profile_of(&caller)?;
    let parameters = state.store.app_parameters(&app_id, &profile).await?;
    Ok(Json(json!(
        parameters.into_iter().map(|(key, value)| json!({ "key": key, "value": value })).collect::<Vec<_>>()
    )))
}

async fn set_profile_parameter(
    State(state): State<AppState>,
    caller: Caller,
    SpacePath(key): SpacePath<String>,
    SpaceJson(body): SpaceJson<SetParameter>,
) -> SpaceResult<StatusCode> {
    let (app_id, profile) = profile_of(&caller)?;
    check_key(&key)?;
    if body.value.chars().count() > MAX_VALUE_CHARS {
        return Err(SpaceError::invalid(format!("the parameter value must be at most {MAX_VALUE_CHARS} characters")));
    }
    match state.store.set_app_parameter(&app_id, &profile, &key, &body.value, MAX_PARAMETERS).await? {
        Ok(()) => Ok(StatusCode::OK),
        Err(ParameterLimit::TooMany) => Err(SpaceError::invalid(format!(
            "an application has at most {MAX_PARAMETERS} parameters per profile: delete one before adding `{key}`"
        ))),
    }
}

async fn delete_profile_parameter(
    State(state): State<AppState>,
    caller: Caller,
    SpacePath(key): SpacePath<String>,
) -> SpaceResult<StatusCode> {
    let (app_id, profile) = profile_of(&caller)?;
    check_key(&key)?;
    if !state.store.delete_app_parameter(&app_id, &profile, &key).await? {
        return Err(SpaceError::not_found(format!("no profile parameter `{key}`")));
    }
    Ok(StatusCode::OK)
}

/// Checks a list of unfurl domains or patterns.
fn check_list(values: &[String], what: &str) -> SpaceResult<()> {
    if values.len() > 100 || values.iter().any(|v| v.trim().is_empty() || v.len() > 200) {
        return Err(SpaceError::invalid(format!(
            "{what} must be at most 100 non-empty strings of at most 200 characters"
        )));
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Domains {
    domains: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Patterns {
    patterns: Vec<String>,
}

/// Replaces the declared list under `field`; entries keep their authorization when kept.
async fn declare(state: &AppState, caller: &Caller, field: &str, values: Vec<String>) -> SpaceResult<StatusCode> {
    let app_id = caller.require_app()?.to_owned();
    check_list(&values, field)?;
    modify(state, caller, &app_id, Right::Update, |app| {
        let previous = app.settings[field].as_array().cloned().unwrap_or_default();
        let entries: Vec<Value> = values
            .iter()
            .map(|value| {
                let authorized = previous.iter().any(|p| p["value"] == *value && p["authorized"] == true);
                json!({ "value": value, "authorized": authorized })
            })
            .collect();
        app.settings[field] = json!(entries);
        Ok(())
    })
    .await?;
    Ok(StatusCode::OK)
}

async fn set_unfurl_domains(
    State(state): State<AppState>,
    caller: Caller,
    SpaceJson(body): SpaceJson<Domains>,
) -> SpaceResult<StatusCode> {
    declare(&state, &caller, "unfurlDomains", body.domains).await
}

async fn set_unfurl_patterns(
    State(state): State<AppState>,
    caller: Caller,
    SpaceJson(body): SpaceJson<Patterns>,
) -> SpaceResult<StatusCode> {
    declare(&state, &caller, "unfurlPatterns", body.patterns).await
}

async fn unfurl_domains(
    State(state): State<AppState>,
    caller: Caller,
    SpacePath(reference): SpacePath<String>,
) -> SpaceResult<Json<Value>> {
    let app = resolve(&state, &caller, &reference, Right::View).await?;
    Ok(Json(app.settings["unfurlDomains"].as_array().cloned().map_or(json!([]), Value::Array)))
}

async fn unfurl_patterns(
    State(state): State<AppState>,
    caller: Caller,
    SpacePath(reference): SpacePath<String>,
) -> SpaceResult<Json<Value>> {
    let app = resolve(&state, &caller, &reference, Right::View).await?;
    Ok(Json(app.settings["unfurlPatterns"].as_array().cloned().map_or(json!([]), Value::Array)))
}

/// The operator approves (or denies) declared entries for link previews.
async fn authorize(
    state: &AppState,
    caller: &Caller,
    reference: &str,
    field: &str,
    values: &[String],
    approve: bool,
) -> SpaceResult<Json<Value>> {
    let app = modify(state, caller, reference, Right::AuthorizeUnfurls, |app| {
        let mut entries = app.settings[field].as_array().cloned().unwrap_or_default();
        for value in values {
            if !entries.iter().any(|e| e["value"] == *value) {
                return Err(SpaceError::invalid(format!("`{value}` was not declared by the application")));
            }
        }
        for entry in &mut entries {
            if values.iter().any(|v| entry["value"] == *v) {
                entry["authorized"] = json!(approve);
            }
        }
        app.settings[field] = json!(entries);
        Ok(())
    })
    .await?;
    Ok(Json(app.settings[field].clone()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthorizeDomains {
    domains: Vec<String>,
    approve: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthorizePatterns {
    patterns: Vec<String>,
    approve: bool,
}

async fn authorize_domains(
    State(state): State<AppState>,
    caller: Caller,
    SpacePath(reference): SpacePath<String>,
    SpaceJson(body): SpaceJson<AuthorizeDomains>,
) -> SpaceResult<Json<Value>> {
    authorize(&state, &caller, &reference, "unfurlDomains", &body.domains, body.approve).await
}

async fn authorize_patterns(
    State(state): State<AppState>,
    caller: Caller,
    SpacePath(reference): SpacePath<String>,
    SpaceJson(body): SpaceJson<AuthorizePatterns>,
) -> SpaceResult<Json<Value>> {
    authorize(&state, &caller, &reference, "unfurlPatterns", &body.patterns, body.approve).await
}
