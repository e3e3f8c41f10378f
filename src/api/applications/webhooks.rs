//! Application webhooks, their subscriptions, secrets and custom headers, and the delivery
//! log of everything sent to an application.

use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{Caller, Paging, Right, SpaceError, SpaceJson, SpacePath, SpaceQuery, SpaceResult, page, resolve, time};
use crate::applications::credentials::EndpointCredentials;
use crate::applications::payload;
use crate::applications::settings::InvalidField;
use crate::applications::signing::generate_key;
use crate::applications::webhook_settings::WebhookSettings;
use crate::state::AppState;
use crate::store::{ApplicationRecord, DeliveryRecord, SubscriptionRecord, WebhookRecord, now_ms};

/// Most webhooks per application.
const MAX_WEBHOOKS: i64 = 100;
/// Most subscriptions per webhook.
const MAX_SUBSCRIPTIONS: usize = 100;
/// Most custom headers per webhook.
const MAX_CUSTOM_HEADERS: usize = 20;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/http/applications/{application}/webhooks", post(create).get(list))
        .route("/api/http/applications/{application}/webhooks/{webhookId}", post(restore).patch(update).delete(archive))
        .route("/api/http/applications/{application}/webhooks/{webhookId}/bearer-token", get(bearer_token))
        .route("/api/http/applications/{application}/webhooks/{webhookId}/custom-headers", get(custom_headers).post(set_custom_headers))
        .route("/api/http/applications/{application}/webhooks/{webhookId}/signing-key", get(signing_key))
        .route("/api/http/applications/{application}/webhooks/{webhookId}/signing-key/regenerate", post(regenerate_signing_key))
        .route("/api/http/applications/{application}/webhooks/{webhookId}/subscriptions", post(create_subscription).get(list_subscriptions))
        .route("/api/http/applications/{application}/webhooks/{webhookId}/subscriptions/{subscriptionId}", patch(update_subscription).delete(delete_subscription))
        .route("/api/http/applications/{application}/webhooks/{webhookId}/subscriptions/{subscriptionId}/request-missing-rights", post(request_missing_rights))
        .route("/api/http/applications/{application}/deliveries", get(deliveries))
        .route("/api/http/applications/{application}/deliveries/{deliveryId}/redeliver", post(redeliver))
}

fn webhook_json(webhook: &WebhookRecord, secrets: &Value, subscriptions: &[SubscriptionRecord]) -> Value {
    let mut body = webhook.settings.shown();
    body.insert("id".into(), json!(webhook.id));
    body.insert("name".into(), json!(webhook.name));
    body.insert("archived".into(), json!(webhook.archived));
    body.insert("hasSigningKey".into(), json!(true));
    body.insert("hasBearerToken".into(), json!(!secrets["endpointAuth"]["bearerAuthToken"].is_null()));
    body.insert("createdAt".into(), time(Some(webhook.created_at)));
    body.insert("updatedAt".into(), time(Some(webhook.updated_at)));
    json!({ "webhook": body, "subscriptions": subscriptions.iter().map(subscription_json).collect::<Vec<_>>() })
}

fn subscription_json(subscription: &SubscriptionRecord) -> Value {
    json!({
        "id": subscription.id,
        "name": subscription.name,
        "enabled": subscription.enabled,
        "subscription": subscription.definition,
        "createdAt": time(Some(subscription.created_at)),
    })
}

fn open_secrets(state: &AppState, webhook: &WebhookRecord) -> SpaceResult<Value> {
    serde_json::from_slice(&state.secrets.open(&webhook.secrets_sealed)?).map_err(SpaceError::internal)
}

/// The webhook, refusing another application's and a missing one.
async fn find(state: &AppState, app: &ApplicationRecord, webhook_id: &str) -> SpaceResult<WebhookRecord> {
    state
        .store
        .webhook(&app.id, webhook_id)
        .await?
        .ok_or_else(|| SpaceError::not_found(format!("no webhook `{webhook_id}`")))
}

fn check_name(value: &Value) -> SpaceResult<String> {
    let name = value.as_str().map(str::trim).unwrap_or_default();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(SpaceError::invalid("name must be a string of 1–100 characters"));
    }
    Ok(name.to_owned())
}

/// Applies the fields of a create or update body: the settings ([`WebhookSettings::apply`],
/// 400 naming a field that is not what they accept) and the sealed `endpointAuth`.
fn apply(body: &Map<String, Value>, settings: &mut WebhookSettings, secrets: &mut Value) -> SpaceResult<()> {
    settings
        .apply(body, &["name", "subscriptions", "endpointAuth"])
        .map_err(|InvalidField(message)| SpaceError::invalid(message))?;
    let Some(value) = body.get("endpointAuth") else { return Ok(()) };
    match value {
        Value::Null => secrets["endpointAuth"] = Value::Null,
        Value::Object(auth) => {
            let mut credentials = EndpointCredentials::default();
            for (field, value) in auth {
                credentials
                    .set(field, value, "endpointAuth.")
                    .map_err(|InvalidField(message)| SpaceError::invalid(message))?;
            }
            secrets["endpointAuth"] = json!(credentials);
        }
        _ => return Err(SpaceError::invalid("endpointAuth must be an object")),
    }
    Ok(())
}

/// Reads the webhook and its opened secrets, applies `change` and writes both back, re-reading
/// and re-applying when another write of them landed in between
/// ([`crate::store::Store::update_webhook_if_unchanged`]), so concurrent changes never lose each
/// other. Returns the webhook and secrets as written.
async fn modify_webhook(
    state: &AppState,
    app: &ApplicationRecord,
    webhook_id: &str,
    mut change: impl FnMut(&mut WebhookRecord, &mut Value) -> SpaceResult<()>,
) -> SpaceResult<(WebhookRecord, Value)> {
    loop {
        let mut webhook = find(state, app, webhook_id).await?;
        let read_secrets = webhook.secrets_sealed.clone();
        let mut secrets = open_secrets(state, &webhook)?;
        change(&mut webhook, &mut secrets)?;
        webhook.secrets_sealed = state.secrets.seal(secrets.to_string().as_bytes());
        if state.store.update_webhook_if_unchanged(&webhook, &read_secrets).await? {
            return Ok((webhook, secrets));
        }
        tokio::task::yield_now().await;
    }
}

/// Checks a SubscriptionDefinition.
fn check_definition(value: &Value) -> SpaceResult<Value> {
    let Some(definition) = value.as_object() else {
        return Err(SpaceError::invalid("subscription must be an object with subjectCode and eventTypeCodes"));
    };
    let subject = definition.get("subjectCode").unwrap_or(&Value::Null);
    if !(subject.is_null() || subject.as_str().is_some_and(|s| !s.is_empty() && s.len() <= 200)) {
        return Err(SpaceError::invalid("subscription.subjectCode must be a string of 1–200 characters"));
    }
    let codes = definition.get("eventTypeCodes").cloned().unwrap_or(json!([]));
    let valid_codes = codes.as_array().is_some_and(|c| {
        c.len() <= 100 && c.iter().all(|c| c.as_str().is_some_and(|s| !s.is_empty() && s.len() <= 200))
    });
    if !valid_codes {
        return Err(SpaceError::invalid("subscription.eventTypeCodes must be at most 100 non-empty strings"));
    }
    let filters =
        payload::check_filters(definition.get("filters").unwrap_or(&json!([]))).map_err(SpaceError::invalid)?;
    Ok(json!({ "subjectCode": subject, "eventTypeCodes": codes, "filters": filters }))
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    SpacePath(reference): SpacePath<String>,
    SpaceJson(body): SpaceJson<Map<String, Value>>,
) -> SpaceResult<Json<Value>> {
    let app = resolve(&state, &caller, &reference, Right::Update).await?;
    let name = check_name(body.get("name").unwrap_or(&Value::Null))?;
    let mut settings = WebhookSettings::default();
    let mut secrets = json!({ "endpointAuth": null, "customHeaders": {} });
    apply(&body, &mut settings, &mut secrets)?;
    let definitions = match body.get("subscriptions").unwrap_or(&Value::Null) {
        Value::Null => Vec::new(),
        Value::Array(defs) if defs.len() <= MAX_SUBSCRIPTIONS => {
            defs.iter().map(check_definition).collect::<SpaceResult<_>>()?
        }
        _ => return Err(SpaceError::invalid(format!("subscriptions must be at most {MAX_SUBSCRIPTIONS} definitions"))),
    };
    let (_, count) = state.store.list_webhooks(&app.id, true, "", 0, 1).await?;
    if count >= MAX_WEBHOOKS {
        return Err(SpaceError::invalid(format!("an application has at most {MAX_WEBHOOKS} webhooks")));
    }
    let now = now_ms();
    let webhook = WebhookRecord {
        id: crate::ids::random("wh_", 16),
        app_id: app.id.clone(),
        name,
        settings,
        signing_key_sealed: state.secrets.seal(generate_key().as_bytes()),
        secrets_sealed: state.secrets.seal(secrets.to_string().as_bytes()),
        archived: false,
        created_at: now,
        updated_at: now,
    };
    state.store.insert_webhook(&webhook).await?;
    let mut subscriptions = Vec::new();
    for (index, definition) in definitions.into_iter().enumerate() {
        let subscription = SubscriptionRecord {
            id: crate::ids::random("sub_", 16),
            webhook_id: webhook.id.clone(),
            name: format!("subscription {}", index + 1),
            enabled: true,
            definition,
            created_at: now,
        };
        state.store.insert_subscription(&subscription).await?;
        subscriptions.push(subscription);
    }
    Ok(Json(webhook_json(&webhook, &secrets, &subscriptions)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    #[serde(rename = "$skip")]
    skip: Option<String>,
    #[serde(rename = "$top")]
    top: Option<i64>,
    #[serde(rename = "withArchived")]
    with_archived: Option<bool>,
    query: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    SpacePath(reference): SpacePath<String>,
    SpaceQuery(query): SpaceQuery<ListQuery>,
) -> SpaceResult<Json<Value>> {
    let app = resolve(&state, &caller, &reference, Right::View).await?;
    let (offset, limit) = Paging { skip: query.skip, top: query.top }.window()?;
    let (webhooks, total) = state
        .store
        .list_webhooks(
            &app.id,
            query.with_archived.unwrap_or(false),
            query.query.as_deref().unwrap_or(""),
            offset,
            limit,
        )
        .await?;
    let mut data = Vec::new();
    for webhook in &webhooks {
        let subscriptions = state.store.subscriptions(&webhook.id).await?;
        data.push(webhook_json(webhook, &open_secrets(&state, webhook)?, &subscriptions));
    }
    Ok(Json(page(data, offset, total)))
}

async fn update(
    State(state): State<AppState>,
    caller: Caller,
    SpacePath((reference, webhook_id)): SpacePath<(String, String)>,
    SpaceJson(body): SpaceJson<Map<String, Value>>,
) -> SpaceResult<Json<Value>> {
    let app = resolve(&state, &caller, &reference, Right::Update).await?;
    if body.contains_key("subscriptions") {
        return Err(SpaceError::invalid("change subscriptions through the subscriptions endpoints"));
    }
    let name = body.get("name").map(check_name).transpose()?;
    let (webhook, secrets) = modify_webhook(&state, &app, &webhook_id, |webhook, secrets| {
        if let Some(name) = &name {
            webhook.name = name.clone();
        }
        apply(&body, &mut webhook.settings, secrets)?;
        Ok(())
    })
    .await?;
    let subscriptions = state.store.subscriptions(&webhook.id).await?;
    Ok(Json(webhook_json(&webhook, &secrets, &subscriptions)))
}

async fn set_archived(
    state: &AppState,
    caller: &Caller,
    reference: &str,
    webhook_id: &str,
    archived: bool,
) -> SpaceResult<()> {
    let app = resolve(state, caller, reference, Right::Update).await?;
    let webhook = find(state, &app, webhook_id).await?;
    state.store.set_webhook_archived(&app.id, &webhook.id, archived).await?;
    Ok(())
}

async fn archive(
    State(state): State<AppState>,
    caller: Caller,
    SpacePath((reference, webhook_id)): SpacePath<(String, String)>,
) -> SpaceResult<StatusCode> {
    set_archived(&state, &caller, &reference, &webhook_id, true).await?;
    Ok(StatusCode::OK)
}

async fn restore(
    State(state): State<AppState>,
    caller: Caller,
    SpacePath((reference, webhook_id)): SpacePath<(String, String)>,
) -> SpaceResult<StatusCode> {
    set_archived(&state, &caller, &reference, &webhook_id, false).await?;
    Ok(StatusCode::OK)
}

async fn bearer_token(
    State(state): State<AppState>,
    caller: Caller,
    SpacePath((reference, webhook_id)): SpacePath<(String, String)>,
) -> SpaceResult<Json<Value>> {
    let app = resolve(&state, &caller, &reference, Right::ViewSecrets).await?;
    let webhook = find(&state, &app, &webhook_id).await?;
    Ok(Json(open_secrets(&state, &webhook)?["endpointAuth"]["bearerAuthToken"].clone()))
}

async fn custom_headers(
    State(state): State<AppState>,
    caller: Caller,
    SpacePath((reference, webhook_id)): SpacePath<(String, String)>,
) -> SpaceResult<Json<Value>> {
    let app = resolve(&state, &caller, &reference, Right::ViewSecrets).await?;
    let webhook = find(&state, &app, &webhook_id).await?;
    Ok(Json(json!({ "headers": open_secrets(&state, &webhook)?["customHeaders"] })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CustomHeaders {
    headers: Map<String, Value>,
}

async fn set_custom_headers(
    State(state): State<AppState>,
    caller: Caller,
    SpacePath((reference, webhook_id)): SpacePath<(String, String)>,
    SpaceJson(body): SpaceJson<CustomHeaders>,
) -> SpaceResult<StatusCode> {
    let app = resolve(&state, &caller, &reference, Right::Update).await?;
    if body.headers.len() > MAX_CUSTOM_HEADERS {
        return Err(SpaceError::invalid(format!("at most {MAX_CUSTOM_HEADERS} custom headers")));
    }
    for (name, value) in &body.headers {
        let lower = name.to_ascii_lowercase();
        if HeaderName::from_bytes(name.as_bytes()).is_err()
            || lower.starts_with("x-space-")
            || lower.starts_with("webhook-")
            || matches!(lower.as_str(), "authorization" | "content-type" | "content-length" | "host")
        {
            return Err(SpaceError::invalid(format!("`{name}` cannot be a custom header")));
        }
        let valid = value.as_str().is_some_and(|v| v.len() <= 1000 && HeaderValue::from_str(v).is_ok());
        if !valid {
            return Err(SpaceError::invalid(format!(
                "the value of `{name}` must be a header value of at most 1000 characters"
            )));
        }
    }
    let headers = Value::Object(body.headers);
    modify_webhook(&state, &app, &webhook_id, |_, secrets| {
        secrets["customHeaders"] = headers.clone();
        Ok(())
    })
    .await?;
    Ok(StatusCode::OK)
}

async fn signing_key(
    State(state): State<AppState>,
    caller: Caller,
    SpacePath((reference, webhook_id)): SpacePath<(String, String)>,
) -> SpaceResult<Json<Value>> {
    let app = resolve(&state, &caller, &reference, Right::ViewSecrets).await?;
    let webhook = find(&state, &app, &webhook_id).await?;
    let key = state.secrets.open_string(&webhook.signing_key_sealed)?;
    Ok(Json(json!({ "signingKey": key, "standardWebhooksSecret": super::credentials::standard_secret(&key) })))
}

async fn regenerate_signing_key(
    State(state): State<AppState>,
    caller: Caller,
    SpacePath((reference, webhook_id)): SpacePath<(String, String)>,
) -> SpaceResult<Json<Value>> {
    let app = resolve(&state, &caller, &reference, Right::Update).await?;
    let webhook = find(&state, &app, &webhook_id).await?;
    let key = generate_key();
    state.store.set_webhook_signing_key(&app.id, &webhook.id, &state.secrets.seal(key.as_bytes())).await?;
    Ok(Json(json!({ "signingKey": key, "standardWebhooksSecret": super::credentials::standard_secret(&key) })))
}

fn check_subscription_name(value: Option<&Value>, default: &str) -> SpaceResult<String> {
    match value {
        None | Some(Value::Null) => Ok(default.to_owned()),
        Some(Value::String(name)) if !name.trim().is_empty() && name.chars().count() <= 100 => {
            Ok(name.trim().to_owned())
        }
        _ => Err(SpaceError::invalid("name must be a string of 1–100 characters")),
    }
}

async fn create_subscription(
    State(state): State<AppState>,
    caller: Caller,
    SpacePath((reference, webhook_id)): SpacePath<(String, String)>,
    SpaceJson(body): SpaceJson<Map<String, Value>>,
) -> SpaceResult<Json<Value>> {
    let app = resolve(&state, &caller, &reference, Right::Update).await?;
    let webhook = find(&state, &app, &webhook_id).await?;
    if let Some(key) = body.keys().find(|k| !matches!(k.as_str(), "name" | "subscription" | "enabled")) {
        return Err(SpaceError::invalid(format!("unknown field `{key}`")));
    }
    let definition = check_definition(body.get("subscription").unwrap_or(&Value::Null))?;
    let existing = state.store.subscriptions(&webhook.id).await?;
    if existing.len() >= MAX_SUBSCRIPTIONS {
        return Err(SpaceError::invalid(format!("a webhook has at most {MAX_SUBSCRIPTIONS} subscriptions")));
    }
    let enabled = match body.get("enabled") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(flag)) => *flag,
        _ => return Err(SpaceError::invalid("enabled must be a boolean")),
    };
    let subscription = SubscriptionRecord {
        id: crate::ids::random("sub_", 16),
        webhook_id: webhook.id,
        name: check_subscription_name(body.get("name"), &format!("subscription {}", existing.len() + 1))?,
        enabled,
        definition,
        created_at: now_ms(),
    };
    state.store.insert_subscription(&subscription).await?;
    Ok(Json(subscription_json(&subscription)))
}

async fn list_subscriptions(
    State(state): State<AppState>,
    caller: Caller,
    SpacePath((reference, webhook_id)): SpacePath<(String, String)>,
) -> SpaceResult<Json<Value>> {
    let app = resolve(&state, &caller, &reference, Right::View).await?;
    let webhook = find(&state, &app, &webhook_id).await?;
    let subscriptions = state.store.subscriptions(&webhook.id).await?;
    Ok(Json(json!(subscriptions.iter().map(subscription_json).collect::<Vec<_>>())))
}

async fn find_subscription(
    state: &AppState,
    caller: &Caller,
    reference: &str,
    webhook_id: &str,
    subscription_id: &str,
) -> SpaceResult<SubscriptionRecord> {
    let app = resolve(state, caller, reference, Right::Update).await?;
    let webhook = find(state, &app, webhook_id).await?;
    state
        .store
        .subscriptions(&webhook.id)
        .await?
        .into_iter()
        .find(|s| s.id == subscription_id)
        .ok_or_else(|| SpaceError::not_found(format!("no subscription `{subscription_id}`")))
}

async fn update_subscription(
    State(state): State<AppState>,
    caller: Caller,
    SpacePath((reference, webhook_id, subscription_id)): SpacePath<(String, String, String)>,
    SpaceJson(body): SpaceJson<Map<String, Value>>,
) -> SpaceResult<Json<Value>> {
    let mut subscription = find_subscription(&state, &caller, &reference, &webhook_id, &subscription_id).await?;
    for (key, value) in &body {
        match key.as_str() {
            "name" => subscription.name = check_subscription_name(Some(value), &subscription.name)?,
            "enabled" => {
                subscription.enabled =
                    value.as_bool().ok_or_else(|| SpaceError::invalid("enabled must be a boolean"))?
            }
            "subscription" => subscription.definition = check_definition(value)?,
            _ => return Err(SpaceError::invalid(format!("unknown field `{key}`"))),
        }
    }
    state.store.update_subscription(&subscription).await?;
    Ok(Json(subscription_json(&subscription)))
}

async fn delete_subscription(
    State(state): State<AppState>,
    caller: Caller,
    SpacePath((reference, webhook_id, subscription_id)): SpacePath<(String, String, String)>,
) -> SpaceResult<StatusCode> {
    let subscription = find_subscription(&state, &caller, &reference, &webhook_id, &subscription_id).await?;
    state.store.delete_subscription(&subscription.webhook_id, &subscription.id).await?;
    Ok(StatusCode::OK)
}

/// The rights a subscription's events call for: `{Subject}.View` for its subject and for the
/// subject of each event type code (`Issue.Created` → `Issue.View`).
fn rights_for(definition: &Value) -> Vec<String> {
    let subject = definition["subjectCode"].as_str().into_iter();
    let types =
        definition["eventTypeCodes"].as_array().into_iter().flatten().filter_map(|c| c.as_str()?.split('.').next());
    let mut rights: Vec<String> =
        subject.chain(types).filter(|s| !s.is_empty() && *s != "*").map(|s| format!("{s}.View")).collect();
    rights.sort();
    rights.dedup();
    rights
}

/// Requests (as PENDING, in the `global` context) the rights the subscription's events call
/// for that the application was not granted yet, and answers them.
async fn request_missing_rights(
    State(state): State<AppState>,
    caller: Caller,
    SpacePath((reference, webhook_id, subscription_id)): SpacePath<(String, String, String)>,
) -> SpaceResult<Json<Value>> {
    let subscription = find_subscription(&state, &caller, &reference, &webhook_id, &subscription_id).await?;
    let required = rights_for(&subscription.definition);
    let app = resolve(&state, &caller, &reference, Right::Update).await?;
    let granted = state.store.authorizations(&app.id).await?.remove("global").unwrap_or_default();
    let missing: Vec<String> =
        required.into_iter().filter(|code| granted.get(code).is_none_or(|status| status != "GRANTED")).collect();
    super::extensions::request(&state, &app.id, "global", &missing).await?;
    Ok(Json(json!({ "missingRights": missing })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeliveryQuery {
    #[serde(rename = "$skip")]
    skip: Option<String>,
    #[serde(rename = "$top")]
    top: Option<i64>,
    #[serde(rename = "webhookId")]
    webhook_id: Option<String>,
}

fn delivery_json(delivery: &DeliveryRecord) -> Value {
    json!({
        "id": delivery.id,
        "webhookId": delivery.webhook_id,
        "kind": delivery.kind,
        "url": delivery.url,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "maxAttempts": delivery.max_attempts,
        "lastStatusCode": delivery.last_status,
        "lastError": delivery.last_error,
        "nextAttemptAt": if delivery.status == "pending" { time(Some(delivery.next_attempt_at)) } else { Value::Null },
        "payload": serde_json::from_str::<Value>(&delivery.body).unwrap_or(Value::Null),
        "createdAt": time(Some(delivery.created_at)),
        "updatedAt": time(Some(delivery.updated_at)),
    })
}

/// The delivery log, newest first.
async fn deliveries(
    State(state): State<AppState>,
    caller: Caller,
    SpacePath(reference): SpacePath<String>,
    SpaceQuery(query): SpaceQuery<DeliveryQuery>,
) -> SpaceResult<Json<Value>> {
    let app = resolve(&state, &caller, &reference, Right::View).await?;
    let (offset, limit) = Paging { skip: query.skip, top: query.top }.window()?;
    let (rows, total) = state.store.list_deliveries(&app.id, query.webhook_id.as_deref(), offset, limit).await?;
    Ok(Json(page(rows.iter().map(delivery_json).collect(), offset, total)))
}

/// Sends a settled delivery (succeeded or failed) again: back to pending, due now, with a
/// fresh set of attempts. 409 while it is still pending or after it was cancelled.
async fn redeliver(
    State(state): State<AppState>,
    caller: Caller,
    SpacePath((reference, delivery_id)): SpacePath<(String, String)>,
) -> SpaceResult<Json<Value>> {
    let app = resolve(&state, &caller, &reference, Right::Update).await?;
    match state.store.redeliver(&app.id, &delivery_id).await? {
        None => return Err(SpaceError::not_found(format!("no delivery `{delivery_id}`"))),
        Some(false) => return Err(SpaceError::conflict("only a succeeded or failed delivery can be sent again")),
        Some(true) => {}
    }
    state.delivery_wake.wake();
    let delivery = state
        .store
        .delivery(&delivery_id)
        .await?
        .ok_or_else(|| SpaceError::not_found(format!("no delivery `{delivery_id}`")))?;
    Ok(Json(delivery_json(&delivery)))
}
