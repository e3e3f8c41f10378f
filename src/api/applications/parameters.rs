//! App-level parameters (only the application itself, with an app token, reads and writes
//! them), profile parameters (per user, with a user token issued to the application: the
//! profile and the application come from the token), and the unfurl domains and patterns an
//! application declares for itself (rows of their own: `store::applications::lists`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Caller, Right, SpaceError, SpaceJson, SpacePath, SpaceResult, resolve};
use crate::state::AppState;
use crate::store::{ListRefusal, ParameterLimit, UnfurlKind};

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

/// Replaces the declared list of one kind (each value once, in the order first given);
/// entries kept keep their authorization, new ones start unauthorized.
async fn declare(state: &AppState, caller: &Caller, kind: UnfurlKind, values: Vec<String>) -> SpaceResult<StatusCode> {
    let app_id = caller.require_app()?.to_owned();
    check_list(&values, field_of(kind))?;
    let app = resolve(state, caller, &app_id, Right::Update).await?;
    let mut distinct: Vec<String> = Vec::with_capacity(values.len());
    for value in values {
        if !distinct.contains(&value) {
            distinct.push(value);
        }
    }
    state.store.declare_unfurl_targets(&app.id, kind, &distinct).await?;
    Ok(StatusCode::OK)
}

/// The API's name of a list of unfurl targets.
fn field_of(kind: UnfurlKind) -> &'static str {
    match kind {
        UnfurlKind::Domain => "unfurlDomains",
        UnfurlKind::Pattern => "unfurlPatterns",
    }
}

/// The declared targets of one kind as the API shows them: `[{"value", "authorized"}]`.
async fn targets_json(state: &AppState, app_id: &str, kind: UnfurlKind) -> SpaceResult<Value> {
    let targets = state.store.unfurl_targets(app_id, kind).await?;
    Ok(json!(
        targets
            .into_iter()
            .map(|(value, authorized)| json!({ "value": value, "authorized": authorized }))
            .collect::<Vec<_>>()
    ))
}

async fn set_unfurl_domains(
    State(state): State<AppState>,
    caller: Caller,
    SpaceJson(body): SpaceJson<Domains>,
) -> SpaceResult<StatusCode> {
    declare(&state, &caller, UnfurlKind::Domain, body.domains).await
}

async fn set_unfurl_patterns(
    State(state): State<AppState>,
    caller: Caller,
    SpaceJson(body): SpaceJson<Patterns>,
) -> SpaceResult<StatusCode> {
    declare(&state, &caller, UnfurlKind::Pattern, body.patterns).await
}

async fn unfurl_domains(
    State(state): State<AppState>,
    caller: Caller,
    SpacePath(reference): SpacePath<String>,
) -> SpaceResult<Json<Value>> {
    let app = resolve(&state, &caller, &reference, Right::View).await?;
    Ok(Json(targets_json(&state, &app.id, UnfurlKind::Domain).await?))
}

async fn unfurl_patterns(
    State(state): State<AppState>,
    caller: Caller,
    SpacePath(reference): SpacePath<String>,
) -> SpaceResult<Json<Value>> {
    let app = resolve(&state, &caller, &reference, Right::View).await?;
    Ok(Json(targets_json(&state, &app.id, UnfurlKind::Pattern).await?))
}

/// The operator approves (or denies) declared entries for link previews.
async fn authorize(
    state: &AppState,
    caller: &Caller,
    reference: &str,
    kind: UnfurlKind,
    values: &[String],
    approve: bool,
) -> SpaceResult<Json<Value>> {
    let app = resolve(state, caller, reference, Right::AuthorizeUnfurls).await?;
    if let Err(refusal) = state.store.authorize_unfurl_targets(&app.id, kind, values, approve).await? {
        let value = match refusal {
            ListRefusal::Missing(value) => value,
            _ => String::new(),
        };
        return Err(SpaceError::invalid(format!("`{value}` was not declared by the application")));
    }
    Ok(Json(targets_json(state, &app.id, kind).await?))
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
    authorize(&state, &caller, &reference, UnfurlKind::Domain, &body.domains, body.approve).await
}

async fn authorize_patterns(
    State(state): State<AppState>,
    caller: Caller,
    SpacePath(reference): SpacePath<String>,
    SpaceJson(body): SpaceJson<AuthorizePatterns>,
) -> SpaceResult<Json<Value>> {
    authorize(&state, &caller, &reference, UnfurlKind::Pattern, &body.patterns, body.approve).await
}
