//! UI extensions, authorizations (rights per context) and the unfurl queue of an
//! application, keyed by a context identifier (`global` when none is given). Each lives in
//! tables of its own (`store::applications::{lists, authorizations, unfurls}`), so every
//! write touches only its own rows.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{Caller, Right, SpaceError, SpaceJson, SpacePath, SpaceQuery, SpaceResult, resolve, rights};
use crate::state::AppState;
use crate::store::TooManyContexts;

/// Most UI extensions per context, rights per request, contexts per application.
const MAX_ITEMS: usize = 100;
/// Unfurl contents and external-auth requests kept per application.
const MAX_UNFURLS: i64 = 1000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/http/applications/ui-extensions", patch(set_ui_extensions))
        .route("/api/http/applications/{application}/ui-extensions", get(ui_extensions))
        .route("/api/http/applications/{application}/ui-extensions/enable-for-everybody", patch(enable_for_everybody))
        .route("/api/http/applications/{application}/ui-extensions/disable-for-everybody", patch(disable_for_everybody))
        .route("/api/http/applications/{application}/ui-extensions/enable-for-me", patch(enable_for_me))
        .route("/api/http/applications/{application}/ui-extensions/disable-for-me", patch(disable_for_me))
        .route("/api/http/applications/authorizations/authorized-applications", get(authorized_applications))
        .route("/api/http/applications/{application}/authorizations/authorized-contexts", get(authorized_contexts))
        .route(
            "/api/http/applications/{application}/authorizations/authorized-rights",
            get(authorized_rights).patch(update_authorized_rights).delete(delete_authorized_rights),
        )
        .route(
            "/api/http/applications/{application}/authorizations/authorized-rights/request-rights",
            patch(request_rights),
        )
        .route(
            "/api/http/applications/{application}/authorizations/required-rights",
            get(required_rights).patch(update_required_rights),
        )
        .route("/api/http/applications/unfurls/links", post(links_seen))
        .route("/api/http/applications/unfurls/content", get(unfurl_content_of_link))
        .route("/api/http/applications/unfurls/external-auth-requests", get(external_auth_requests))
        .route("/api/http/applications/unfurls/queue", get(unfurl_queue))
        .route("/api/http/applications/unfurls/queue/content", post(unfurl_content))
        .route("/api/http/applications/unfurls/queue/request-external-auth", post(request_external_auth))
        .route("/api/http/applications/unfurls/queue/reset-external-auth-requests", post(reset_external_auth))
}

/// Checks a context identifier (`global`, `project:KEY`, `channel:ID`, …).
fn context(value: Option<&str>) -> SpaceResult<String> {
    let context = value.unwrap_or("global").trim();
    if context.is_empty() || context.len() > 200 {
        return Err(SpaceError::invalid("contextIdentifier must be 1–200 characters"));
    }
    Ok(context.to_owned())
}

fn check_codes(codes: &[String], what: &str) -> SpaceResult<()> {
    if codes.len() > MAX_ITEMS || codes.iter().any(|c| c.trim().is_empty() || c.len() > 200) {
        return Err(SpaceError::invalid(format!("{what} must be at most {MAX_ITEMS} right codes of 1–200 characters")));
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetExtensions {
    #[serde(rename = "contextIdentifier", default)]
    context_identifier: Option<String>,
    extensions: Vec<Value>,
}

async fn set_ui_extensions(
    State(state): State<AppState>,
    caller: Caller,
    SpaceJson(body): SpaceJson<SetExtensions>,
) -> SpaceResult<StatusCode> {
    let app_id = caller.require_app()?.to_owned();
    let context = context(body.context_identifier.as_deref())?;
    if body.extensions.len() > MAX_ITEMS || body.extensions.iter().any(|e| !e.is_object()) {
        return Err(SpaceError::invalid(format!("extensions must be at most {MAX_ITEMS} objects")));
    }
    let app = resolve(&state, &caller, &app_id, Right::Update).await?;
    let extensions = Value::Array(body.extensions);
    match state.store.set_ui_extensions(&app.id, &context, &extensions, MAX_ITEMS as i64).await? {
        Ok(()) => Ok(StatusCode::OK),
        Err(_) => Err(SpaceError::invalid(format!("at most {MAX_ITEMS} contexts"))),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ContextQuery {
    #[serde(rename = "contextIdentifier")]
    context_identifier: Option<String>,
}

/// One context's extensions, with the toggles: for everybody (the contexts the UI is
/// disabled in) and for the calling user (their own row; `enabledForMe` is null without a
/// user).
fn extensions_json(context: &str, extensions: &Value, disabled: &[String], mine: Option<&[(String, bool)]>) -> Value {
    let for_everybody = !disabled.iter().any(|c| c == context);
    let for_me =
        mine.map(|toggles| toggles.iter().find(|(c, _)| c == context).map_or(for_everybody, |(_, disabled)| !disabled));
    json!({
        "contextIdentifier": context,
        "extensions": extensions,
        "enabledForEverybody": for_everybody,
        "enabledForMe": for_me,
    })
}

async fn ui_extensions(
    State(state): State<AppState>,
    caller: Caller,
    SpacePath(reference): SpacePath<String>,
    SpaceQuery(query): SpaceQuery<ContextQuery>,
) -> SpaceResult<Json<Value>> {
    let app = resolve(&state, &caller, &reference, Right::View).await?;
    let mine = match caller.user_id() {
        Some(user) => Some(state.store.user_ui_toggles(&app.id, user).await?),
        None => None,
    };
    let all = state.store.ui_extensions(&app.id).await?;
    let disabled = state.store.ui_disabled_contexts(&app.id).await?;
    Ok(Json(match query.context_identifier {
        Some(context) => {
            let context = self::context(Some(&context))?;
            let extensions = all.iter().find(|(c, _)| *c == context).map_or(json!([]), |(_, e)| e.clone());
            extensions_json(&context, &extensions, &disabled, mine.as_deref())
        }
        None => json!(
            all.iter()
                .map(|(context, ext)| extensions_json(context, ext, &disabled, mine.as_deref()))
                .collect::<Vec<_>>()
        ),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ContextBody {
    #[serde(rename = "contextIdentifier", default)]
    context_identifier: Option<String>,
}

/// Enables or disables the UI for everybody in a context (needs `Permissions.Grant`).
async fn toggle_for_everybody(
    state: &AppState,
    caller: &Caller,
    reference: &str,
    body: ContextBody,
    disabled: bool,
) -> SpaceResult<StatusCode> {
    let context = context(body.context_identifier.as_deref())?;
    let app = resolve(state, caller, reference, Right::GrantPermissions).await?;
    if !state.store.set_ui_disabled(&app.id, &context, disabled, MAX_ITEMS as i64).await? {
        return Err(SpaceError::invalid(format!(
            "the UI may be disabled for everybody in at most {MAX_ITEMS} contexts"
        )));
    }
    Ok(StatusCode::OK)
}

/// Enables or disables the UI for the calling user only (a user token, or a user token
/// issued to an application).
async fn toggle_for_me(
    state: &AppState,
    caller: &Caller,
    reference: &str,
    body: ContextBody,
    disabled: bool,
) -> SpaceResult<StatusCode> {
    let user = caller
        .user_id()
        .ok_or_else(|| SpaceError::forbidden("\"for me\" needs a user: call with a user token"))?
        .to_owned();
    let context = context(body.context_identifier.as_deref())?;
    let app = resolve(state, caller, reference, Right::View).await?;
    if !state.store.set_user_ui_toggle(&app.id, &user, &context, disabled, MAX_ITEMS as i64).await? {
        return Err(SpaceError::invalid(format!("at most {MAX_ITEMS} contexts per user")));
    }
    Ok(StatusCode::OK)
}

async fn enable_for_everybody(
    State(state): State<AppState>,
    caller: Caller,
    SpacePath(reference): SpacePath<String>,
    SpaceJson(body): SpaceJson<ContextBody>,
) -> SpaceResult<StatusCode> {
    toggle_for_everybody(&state, &caller, &reference, body, false).await
}

async fn disable_for_everybody(
    State(state): State<AppState>,
    caller: Caller,
    SpacePath(reference): SpacePath<String>,
    SpaceJson(body): SpaceJson<ContextBody>,
) -> SpaceResult<StatusCode> {
    toggle_for_everybody(&state, &caller, &reference, body, true).await
}

async fn enable_for_me(
    State(state): State<AppState>,
    caller: Caller,
    SpacePath(reference): SpacePath<String>,
    SpaceJson(body): SpaceJson<ContextBody>,
) -> SpaceResult<StatusCode> {
    toggle_for_me(&state, &caller, &reference, body, false).await
}

async fn disable_for_me(
    State(state): State<AppState>,
    caller: Caller,
    SpacePath(reference): SpacePath<String>,
    SpaceJson(body): SpaceJson<ContextBody>,
) -> SpaceResult<StatusCode> {
    toggle_for_me(&state, &caller, &reference, body, true).await
}

async fn authorized_applications(
    State(state): State<AppState>,
    caller: Caller,
    SpaceQuery(query): SpaceQuery<ContextQuery>,
) -> SpaceResult<Json<Value>> {
    let context = context(query.context_identifier.as_deref())?;
    let mut found = Vec::new();
    for app_id in state.store.apps_authorized_in(&context).await? {
        let Some(app) = state.store.application(&app_id).await? else { continue };
        if app.status != "archived" && rights::check(&caller, &app, Right::View, false).is_ok() {
            found.push(json!({ "id": app.id, "name": app.name, "clientId": app.client_id }));
        }
    }
    found.sort_by(|a, b| {
        let name = |v: &Value| v["name"].as_str().unwrap_or_default().to_lowercase();
        (name(a), a["id"].as_str()).cmp(&(name(b), b["id"].as_str()))
    });
    Ok(Json(json!(found)))
}

async fn authorized_contexts(
    State(state): State<AppState>,
    caller: Caller,
    SpacePath(reference): SpacePath<String>,
) -> SpaceResult<Json<Value>> {
    let app = resolve(&state, &caller, &reference, Right::View).await?;
    let contexts: Vec<Value> = state
        .store
        .authorizations(&app.id)
        .await?
        .keys()
        .map(|context| json!({ "contextIdentifier": context }))
        .collect();
    Ok(Json(json!(contexts)))
}

async fn authorized_rights(
    State(state): State<AppState>,
    caller: Caller,
    SpacePath(reference): SpacePath<String>,
    SpaceQuery(query): SpaceQuery<ContextQuery>,
) -> SpaceResult<Json<Value>> {
    let app = resolve(&state, &caller, &reference, Right::View).await?;
    let context = context(query.context_identifier.as_deref())?;
    let all = state.store.authorizations(&app.id).await?;
    let rights: Vec<Value> = all
        .get(&context)
        .into_iter()
        .flatten()
        .map(|(code, status)| json!({ "rightCode": code, "status": status }))
        .collect();
    Ok(Json(json!(rights)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RightUpdate {
    #[serde(rename = "rightCode")]
    right_code: String,
    status: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateRights {
    #[serde(rename = "contextIdentifier", default)]
    context_identifier: Option<String>,
    updates: Vec<RightUpdate>,
}

/// The operator grants or denies rights in a context.
async fn update_authorized_rights(
    State(state): State<AppState>,
    caller: Caller,
    SpacePath(reference): SpacePath<String>,
    SpaceJson(body): SpaceJson<UpdateRights>,
) -> SpaceResult<StatusCode> {
    if matches!(caller, Caller::App { user: None, .. }) {
        return Err(SpaceError::forbidden("an application cannot grant itself rights"));
    }
    let context = context(body.context_identifier.as_deref())?;
    let codes: Vec<String> = body.updates.iter().map(|u| u.right_code.clone()).collect();
    check_codes(&codes, "updates")?;
    if let Some(bad) = body.updates.iter().find(|u| !matches!(u.status.as_str(), "GRANTED" | "DENIED" | "PENDING")) {
        return Err(SpaceError::invalid(format!("status `{}` must be GRANTED, DENIED or PENDING", bad.status)));
    }
    let app = resolve(&state, &caller, &reference, Right::GrantPermissions).await?;
    let updates: Vec<(String, String)> = body.updates.into_iter().map(|u| (u.right_code, u.status)).collect();
    set_rights(&state, &app.id, &context, &updates, false).await?;
    Ok(StatusCode::OK)
}

/// Writes rights of one context ([`crate::store::Store::set_authorizations`]), refusing a
/// context past the [`MAX_ITEMS`]th.
async fn set_rights(
    state: &AppState,
    app_id: &str,
    context: &str,
    updates: &[(String, String)],
    keep_granted: bool,
) -> SpaceResult<()> {
    match state.store.set_authorizations(app_id, context, updates, keep_granted, MAX_ITEMS as i64).await? {
        Ok(()) => Ok(()),
        Err(TooManyContexts) => Err(SpaceError::invalid(format!("at most {MAX_ITEMS} contexts"))),
    }
}

async fn delete_authorized_rights(
    State(state): State<AppState>,
    caller: Caller,
    SpacePath(reference): SpacePath<String>,
    SpaceQuery(query): SpaceQuery<ContextQuery>,
) -> SpaceResult<StatusCode> {
    let context = context(query.context_identifier.as_deref())?;
    let app = resolve(&state, &caller, &reference, Right::Update).await?;
    if !state.store.delete_authorization_context(&app.id, &context).await? {
        return Err(SpaceError::not_found(format!("the application is not authorized in `{context}`")));
    }
    Ok(StatusCode::OK)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestRights {
    #[serde(rename = "contextIdentifier", default)]
    context_identifier: Option<String>,
    #[serde(rename = "rightCodes")]
    right_codes: Vec<String>,
}

/// Marks the rights of `codes` the application does not hold yet as PENDING in `context`
/// (adding the context).
pub(super) async fn request(state: &AppState, app_id: &str, context: &str, codes: &[String]) -> SpaceResult<()> {
    let pending: Vec<(String, String)> = codes.iter().map(|code| (code.clone(), "PENDING".to_owned())).collect();
    set_rights(state, app_id, context, &pending, true).await
}

async fn request_rights(
    State(state): State<AppState>,
    caller: Caller,
    SpacePath(reference): SpacePath<String>,
    SpaceJson(body): SpaceJson<RequestRights>,
) -> SpaceResult<StatusCode> {
    let context = context(body.context_identifier.as_deref())?;
    check_codes(&body.right_codes, "rightCodes")?;
    let app = resolve(&state, &caller, &reference, Right::Update).await?;
    request(&state, &app.id, &context, &body.right_codes).await?;
    Ok(StatusCode::OK)
}

async fn required_rights(
    State(state): State<AppState>,
    caller: Caller,
    SpacePath(reference): SpacePath<String>,
) -> SpaceResult<Json<Value>> {
    let app = resolve(&state, &caller, &reference, Right::View).await?;
    Ok(Json(json!(state.store.required_rights(&app.id).await?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateRequired {
    #[serde(rename = "rightCodesToAdd", default)]
    add: Vec<String>,
    #[serde(rename = "rightCodesToRemove", default)]
    remove: Vec<String>,
    #[serde(rename = "requestRightsInAuthorizedContexts", default)]
    request_in_contexts: bool,
}

async fn update_required_rights(
    State(state): State<AppState>,
    caller: Caller,
    SpacePath(reference): SpacePath<String>,
    SpaceJson(body): SpaceJson<UpdateRequired>,
) -> SpaceResult<Json<Value>> {
    check_codes(&body.add, "rightCodesToAdd")?;
    check_codes(&body.remove, "rightCodesToRemove")?;
    let app = resolve(&state, &caller, &reference, Right::Update).await?;
    let required = state
        .store
        .update_required_rights(&app.id, &body.add, &body.remove, MAX_ITEMS as i64)
        .await?
        .map_err(|_| SpaceError::invalid(format!("an application requires at most {MAX_ITEMS} rights")))?;
    if body.request_in_contexts {
        for context in state.store.authorizations(&app.id).await?.keys() {
            request(&state, &app.id, context, &required).await?;
        }
    }
    Ok(Json(json!(required)))
}

/// Refuses a caller who is not the operator or a user with at least `role` in `org`.
fn require_org_role(caller: &Caller, org: &str, role: crate::auth::Role) -> SpaceResult<()> {
    let holds = match caller {
        Caller::Admin => true,
        Caller::User { orgs, .. } => orgs.get(org).is_some_and(|r| *r >= role),
        Caller::App { .. } => false,
    };
    if holds { Ok(()) } else { Err(SpaceError::forbidden(format!("this token may not act for organization `{org}`"))) }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LinksSeen {
    organization: String,
    links: Vec<String>,
}

/// The host product reports links seen in an organization; each is queued for the
/// organization's applications whose authorized unfurl domains or patterns match it.
async fn links_seen(
    State(state): State<AppState>,
    caller: Caller,
    SpaceJson(body): SpaceJson<LinksSeen>,
) -> SpaceResult<Json<Value>> {
    require_org_role(&caller, &body.organization, crate::auth::Role::Admin)?;
    if body.links.is_empty() || body.links.len() > MAX_ITEMS {
        return Err(SpaceError::invalid(format!("links must hold 1–{MAX_ITEMS} URLs")));
    }
    if let Some(bad) = body.links.iter().find(|l| !super::lifecycle::valid_url(l)) {
        return Err(SpaceError::invalid(format!("links: `{bad}` is not an http(s) URL")));
    }
    let mut queued = 0;
    for link in &body.links {
        queued += crate::applications::queue_unfurl(&state, &body.organization, link).await?;
    }
    Ok(Json(json!({ "queued": queued })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ContentQuery {
    organization: String,
    link: String,
}

/// What the organization's applications posted for a link (`unfurls/queue/content`), for the
/// host product to show.
async fn unfurl_content_of_link(
    State(state): State<AppState>,
    caller: Caller,
    SpaceQuery(query): SpaceQuery<ContentQuery>,
) -> SpaceResult<Json<Value>> {
    require_org_role(&caller, &query.organization, crate::auth::Role::Member)?;
    let found = state.store.org_unfurl_content(&query.organization, &query.link).await?;
    Ok(Json(entries(found, "content")))
}

/// Entries of the organization's applications as `{"applicationId", <name>: entry}`.
fn entries(found: Vec<(String, Value)>, name: &str) -> Value {
    found.into_iter().map(|(app_id, entry)| json!({ "applicationId": app_id, name: entry })).collect()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthRequestsQuery {
    organization: String,
    #[serde(rename = "userId")]
    user_id: Option<String>,
}

/// The external-auth requests the organization's applications made (for one user), for the
/// host product to show.
async fn external_auth_requests(
    State(state): State<AppState>,
    caller: Caller,
    SpaceQuery(query): SpaceQuery<AuthRequestsQuery>,
) -> SpaceResult<Json<Value>> {
    require_org_role(&caller, &query.organization, crate::auth::Role::Member)?;
    let found = state.store.org_auth_requests(&query.organization, query.user_id.as_deref()).await?;
    Ok(Json(entries(found, "request")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QueueQuery {
    #[serde(rename = "fromEtag")]
    from_etag: Option<i64>,
    #[serde(rename = "batchSize")]
    batch_size: i64,
}

/// Links waiting to be unfurled by the calling application, after `fromEtag`.
async fn unfurl_queue(
    State(state): State<AppState>,
    caller: Caller,
    SpaceQuery(query): SpaceQuery<QueueQuery>,
) -> SpaceResult<Json<Value>> {
    let app_id = caller.require_app()?.to_owned();
    if !(1..=1000).contains(&query.batch_size) {
        return Err(SpaceError::invalid("batchSize must be between 1 and 1000"));
    }
    let app = resolve(&state, &caller, &app_id, Right::ProvideUnfurls).await?;
    let items = state.store.unfurl_queue(&app.id, query.from_etag.unwrap_or(i64::MIN), query.batch_size).await?;
    Ok(Json(json!(items)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnfurlContent {
    unfurls: Vec<Value>,
}

async fn unfurl_content(
    State(state): State<AppState>,
    caller: Caller,
    SpaceJson(body): SpaceJson<UnfurlContent>,
) -> SpaceResult<StatusCode> {
    let valid = body.unfurls.len() <= MAX_ITEMS && body.unfurls.iter().all(|u| u.is_object());
    if !valid {
        return Err(SpaceError::invalid(format!("unfurls must be at most {MAX_ITEMS} objects")));
    }
    let app_id = caller.require_app()?.to_owned();
    let app = resolve(&state, &caller, &app_id, Right::ProvideUnfurls).await?;
    state.store.add_unfurl_content(&app.id, &body.unfurls, MAX_UNFURLS).await?;
    Ok(StatusCode::OK)
}

async fn request_external_auth(
    State(state): State<AppState>,
    caller: Caller,
    SpaceJson(body): SpaceJson<Map<String, Value>>,
) -> SpaceResult<StatusCode> {
    let request = Value::Object(body);
    if request.to_string().len() > 10_000 {
        return Err(SpaceError::invalid("the request must be at most 10000 bytes of JSON"));
    }
    let app_id = caller.require_app()?.to_owned();
    let app = resolve(&state, &caller, &app_id, Right::ProvideUnfurls).await?;
    state.store.add_auth_request(&app.id, &request, MAX_UNFURLS).await?;
    Ok(StatusCode::OK)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResetExternalAuth {
    #[serde(rename = "userId", default)]
    user_id: Option<String>,
}

async fn reset_external_auth(
    State(state): State<AppState>,
    caller: Caller,
    SpaceJson(body): SpaceJson<ResetExternalAuth>,
) -> SpaceResult<StatusCode> {
    let app_id = caller.require_app()?.to_owned();
    let app = resolve(&state, &caller, &app_id, Right::ProvideUnfurls).await?;
    state.store.delete_auth_requests(&app.id, body.user_id.as_deref()).await?;
    Ok(StatusCode::OK)
}
