//! UI extensions, authorizations (rights per context) and the unfurl queue of an
//! application. All of it lives in the application's settings, keyed by a context
//! identifier (`global` when none is given).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{Caller, Right, SpaceError, SpaceJson, SpacePath, SpaceQuery, SpaceResult, modify, resolve, rights};
use crate::state::AppState;
use crate::store::{AppFilter, AppOrder, ApplicationRecord};

/// Most UI extensions per context, rights per request, contexts per application.
const MAX_ITEMS: usize = 100;
/// Unfurl contents and external-auth requests kept per application.
const MAX_UNFURLS: usize = 1000;

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

fn object(value: &Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap_or_default()
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
    modify(&state, &caller, &app_id, Right::Update, |app| {
        let mut all = object(&app.settings["uiExtensions"]);
        if !all.contains_key(&context) && all.len() >= MAX_ITEMS {
            return Err(SpaceError::invalid(format!("at most {MAX_ITEMS} contexts")));
        }
        all.insert(context.clone(), json!(body.extensions));
        app.settings["uiExtensions"] = Value::Object(all);
        Ok(())
    })
    .await?;
    Ok(StatusCode::OK)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ContextQuery {
    #[serde(rename = "contextIdentifier")]
    context_identifier: Option<String>,
}

/// One context's extensions, with the toggles: for everybody (the application's setting) and
/// for the calling user (their own row; `enabledForMe` is null without a user).
fn extensions_json(
    app: &ApplicationRecord,
    context: &str,
    extensions: &Value,
    mine: Option<&[(String, bool)]>,
) -> Value {
    let for_everybody = !app.settings["uiDisabledForEverybody"][context].as_bool().unwrap_or(false);
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
    let all = object(&app.settings["uiExtensions"]);
    Ok(Json(match query.context_identifier {
        Some(context) => {
            let context = self::context(Some(&context))?;
            extensions_json(&app, &context, all.get(&context).unwrap_or(&json!([])), mine.as_deref())
        }
        None => json!(
            all.iter().map(|(context, ext)| extensions_json(&app, context, ext, mine.as_deref())).collect::<Vec<_>>()
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
    let field = "uiDisabledForEverybody";
    state
        .store
        .modify_application::<SpaceError>(&app.id, |app| {
            let mut flags = object(&app.settings[field]);
            flags.insert(context.clone(), json!(disabled));
            app.settings[field] = Value::Object(flags);
            Ok(())
        })
        .await?;
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

/// The rights of every context: `{context: {rightCode: status}}`.
pub(super) fn authorizations(app: &ApplicationRecord) -> Map<String, Value> {
    object(&app.settings["authorizations"])
}

async fn authorized_applications(
    State(state): State<AppState>,
    caller: Caller,
    SpaceQuery(query): SpaceQuery<ContextQuery>,
) -> SpaceResult<Json<Value>> {
    let context = context(query.context_identifier.as_deref())?;
    let mut found = Vec::new();
    let mut offset = 0;
    loop {
        let (apps, total) = state.store.list_applications(&AppFilter::default(), AppOrder::Name, offset, 500).await?;
        for app in &apps {
            let granted = authorizations(app)
                .get(&context)
                .and_then(Value::as_object)
                .is_some_and(|rights| rights.values().any(|s| s == "GRANTED"));
            if granted && rights::check(&caller, app, Right::View).is_ok() {
                found.push(json!({ "id": app.id, "name": app.name, "clientId": app.client_id }));
            }
        }
        offset += apps.len() as i64;
        if apps.is_empty() || offset >= total {
            break;
        }
    }
    Ok(Json(json!(found)))
}

async fn authorized_contexts(
    State(state): State<AppState>,
    caller: Caller,
    SpacePath(reference): SpacePath<String>,
) -> SpaceResult<Json<Value>> {
    let app = resolve(&state, &caller, &reference, Right::View).await?;
    let contexts: Vec<Value> =
        authorizations(&app).keys().map(|context| json!({ "contextIdentifier": context })).collect();
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
    let rights = object(&authorizations(&app).get(&context).cloned().unwrap_or_default());
    let rights: Vec<Value> =
        rights.iter().map(|(code, status)| json!({ "rightCode": code, "status": status })).collect();
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
    modify(&state, &caller, &reference, Right::GrantPermissions, |app| {
        let mut all = authorizations(app);
        let mut rights = object(all.get(&context).unwrap_or(&Value::Null));
        for update in &body.updates {
            rights.insert(update.right_code.clone(), json!(update.status));
        }
        all.insert(context.clone(), Value::Object(rights));
        app.settings["authorizations"] = Value::Object(all);
        Ok(())
    })
    .await?;
    Ok(StatusCode::OK)
}

async fn delete_authorized_rights(
    State(state): State<AppState>,
    caller: Caller,
    SpacePath(reference): SpacePath<String>,
    SpaceQuery(query): SpaceQuery<ContextQuery>,
) -> SpaceResult<StatusCode> {
    let context = context(query.context_identifier.as_deref())?;
    modify(&state, &caller, &reference, Right::Update, |app| {
        let mut all = authorizations(app);
        if all.remove(&context).is_none() {
            return Err(SpaceError::not_found(format!("the application is not authorized in `{context}`")));
        }
        app.settings["authorizations"] = Value::Object(all);
        Ok(())
    })
    .await?;
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

/// Marks rights the application does not hold yet as PENDING in `context`.
pub(super) fn request(all: &mut Map<String, Value>, context: &str, codes: &[String]) {
    let mut rights = object(all.get(context).unwrap_or(&Value::Null));
    for code in codes {
        if rights.get(code).is_none_or(|status| status != "GRANTED") {
            rights.insert(code.clone(), json!("PENDING"));
        }
    }
    all.insert(context.to_owned(), Value::Object(rights));
}

async fn request_rights(
    State(state): State<AppState>,
    caller: Caller,
    SpacePath(reference): SpacePath<String>,
    SpaceJson(body): SpaceJson<RequestRights>,
) -> SpaceResult<StatusCode> {
    let context = context(body.context_identifier.as_deref())?;
    check_codes(&body.right_codes, "rightCodes")?;
    modify(&state, &caller, &reference, Right::Update, |app| {
        let mut all = authorizations(app);
        if !all.contains_key(&context) && all.len() >= MAX_ITEMS {
            return Err(SpaceError::invalid(format!("at most {MAX_ITEMS} contexts")));
        }
        request(&mut all, &context, &body.right_codes);
        app.settings["authorizations"] = Value::Object(all);
        Ok(())
    })
    .await?;
    Ok(StatusCode::OK)
}

async fn required_rights(
    State(state): State<AppState>,
    caller: Caller,
    SpacePath(reference): SpacePath<String>,
) -> SpaceResult<Json<Value>> {
    let app = resolve(&state, &caller, &reference, Right::View).await?;
    Ok(Json(app.settings["requiredRights"].as_array().cloned().map_or(json!([]), Value::Array)))
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
    let app = modify(&state, &caller, &reference, Right::Update, |app| {
        let mut required: Vec<String> = app.settings["requiredRights"]
            .as_array()
            .map(|codes| codes.iter().filter_map(|c| c.as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        required.retain(|code| !body.remove.contains(code));
        for code in &body.add {
            if !required.contains(code) {
                required.push(code.clone());
            }
        }
        if required.len() > MAX_ITEMS {
            return Err(SpaceError::invalid(format!("an application requires at most {MAX_ITEMS} rights")));
        }
        if body.request_in_contexts {
            let mut all = authorizations(app);
            let contexts: Vec<String> = all.keys().cloned().collect();
            for context in contexts {
                request(&mut all, &context, &required);
            }
            app.settings["authorizations"] = Value::Object(all);
        }
        app.settings["requiredRights"] = json!(required);
        Ok(())
    })
    .await?;
    Ok(Json(app.settings["requiredRights"].clone()))
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
    let found = org_entries(&state, &query.organization, "unfurlContent", "content", |unfurl| {
        unfurl["target"] == query.link.as_str()
    })
    .await?;
    Ok(Json(json!(found)))
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
    let found = org_entries(&state, &query.organization, "externalAuthRequests", "request", |request| {
        query.user_id.as_deref().is_none_or(|user| request["userId"] == user)
    })
    .await?;
    Ok(Json(json!(found)))
}

/// The entries of a list the organization's applications keep (`field` of their settings)
/// that `keep` selects, each as `{"applicationId", <name>: entry}`.
async fn org_entries(
    state: &AppState,
    org: &str,
    field: &str,
    name: &str,
    keep: impl Fn(&Value) -> bool,
) -> SpaceResult<Vec<Value>> {
    let mut found = Vec::new();
    for app in state.store.active_applications_of_org(org).await? {
        for entry in app.settings[field].as_array().into_iter().flatten().filter(|e| keep(e)) {
            found.push(json!({ "applicationId": app.id, name: entry }));
        }
    }
    Ok(found)
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
    let from = query.from_etag.unwrap_or(i64::MIN);
    let items: Vec<Value> = app.settings["unfurlQueue"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter(|i| i["etag"].as_i64().is_some_and(|e| e > from))
                .take(query.batch_size as usize)
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    Ok(Json(json!(items)))
}

/// Appends to a bounded list in the settings, dropping the oldest entries.
async fn append(state: &AppState, caller: &Caller, field: &str, entries: Vec<Value>) -> SpaceResult<StatusCode> {
    let app_id = caller.require_app()?.to_owned();
    modify(state, caller, &app_id, Right::ProvideUnfurls, |app| {
        let mut list = app.settings[field].as_array().cloned().unwrap_or_default();
        list.extend(entries.iter().cloned());
        let excess = list.len().saturating_sub(MAX_UNFURLS);
        list.drain(..excess);
        app.settings[field] = json!(list);
        Ok(())
    })
    .await?;
    Ok(StatusCode::OK)
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
    append(&state, &caller, "unfurlContent", body.unfurls).await
}

async fn request_external_auth(
    State(state): State<AppState>,
    caller: Caller,
    SpaceJson(body): SpaceJson<Map<String, Value>>,
) -> SpaceResult<StatusCode> {
    if Value::Object(body.clone()).to_string().len() > 10_000 {
        return Err(SpaceError::invalid("the request must be at most 10000 bytes of JSON"));
    }
    append(&state, &caller, "externalAuthRequests", vec![Value::Object(body)]).await
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
    modify(&state, &caller, &app_id, Right::ProvideUnfurls, |app| {
        let mut list = app.settings["externalAuthRequests"].as_array().cloned().unwrap_or_default();
        match &body.user_id {
            Some(user) => list.retain(|r| r["userId"] != *user),
            None => list.clear(),
        }
        app.settings["externalAuthRequests"] = json!(list);
        Ok(())
    })
    .await?;
    Ok(StatusCode::OK)
}
