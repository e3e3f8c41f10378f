//! Externally hosted applications: the payloads weft sends them (InitPayload,
//! WebhookRequestPayload, ApplicationUninstalledPayload), how they are signed
//! ([`signing`]) and the durable delivery worker ([`delivery`]).
//!
//! [`deliveries_for_event`] is the entry point for events: it makes one signed delivery per
//! application webhook whose subscriptions match, shaped by the webhook's settings
//! ([`payload`]); the caller stores them in the same transaction as the event's jobs.

pub mod credentials;
pub mod delivery;
pub mod payload;
pub mod settings;
pub mod signing;
pub mod webhook_settings;

use serde_json::{Value, json};

use crate::applications::credentials::EndpointCredentials;
use crate::state::AppState;
use crate::store::{
    ApplicationRecord, DeliveryRecord, NewDelivery, StoreError, SubscriptionRecord, UnfurlKind, WebhookRecord,
};

pub use delivery::DeliveryWorker;

/// Attempts of a payload when retries are on.
pub const MAX_ATTEMPTS_WITH_RETRIES: i64 = 6;
/// Links kept in an application's unfurl queue (the oldest go first).
pub const UNFURL_QUEUE_LENGTH: i64 = 1000;
/// Attempts of an ApplicationUninstalledPayload before the application is archived anyway.
pub const UNINSTALL_ATTEMPTS: i64 = 3;
/// An application's backlog: once it has this many deliveries pending (an endpoint that is
/// down or slow while events keep coming), an event's webhook payloads to it are stored as
/// failed, not sent — listed with the reason and redeliverable — so the retries the worker
/// holds for one application are bounded. (Failed rows are the delivery log's, pruned with it.)
pub const MAX_PENDING_DELIVERIES: i64 = 10_000;

/// A WebhookRequestPayload for every webhook of `org_id`'s active applications whose
/// enabled subscriptions match `event`. Nothing is stored: the caller stores them with the
/// rest of what the event causes, in one transaction, so that an event is either accepted
/// with all its deliveries or refused with none.
///
/// An event matches a subscription when its `type` is one of the subscription's
/// `eventTypeCodes` (an empty list or `"*"` matches every type), when both name one its
/// `subject` equals the subscription's `subjectCode`, and every one of its `filters` holds.
/// The body is the WebhookRequestPayload with the event as `payload` (trimmed to the
/// webhook's `payloadFields`), or the webhook's `payloadTemplate` rendered against the event.
/// A payload to an application with [`MAX_PENDING_DELIVERIES`] pending is stored as failed.
pub async fn deliveries_for_event(
    state: &AppState,
    org_id: &str,
    event: &Value,
) -> Result<Vec<NewDelivery>, StoreError> {
    let mut deliveries = Vec::new();
    for route in state.store.shared_delivery_routes(org_id, MAX_PENDING_DELIVERIES).await?.iter() {
        let (app, webhook) = (&route.app, &route.webhook);
        if !webhook.settings.enabled {
            continue;
        }
        let matching: Vec<&SubscriptionRecord> =
            route.subscriptions.iter().filter(|s| subscription_matches(&s.definition, event)).collect();
        if matching.is_empty() {
            continue;
        }
        let Some(url) = webhook_url(app, webhook) else { continue };
        let (body, content_type) = webhook_body(state, app, webhook, org_id, &matching, event);
        let retries = webhook.settings.do_retries;
        let accepted = webhook.settings.accepted_http_response_codes.clone();
        deliveries.push(NewDelivery {
            id: crate::ids::random("whd_", 24),
            app_id: app.id.clone(),
            webhook_id: Some(webhook.id.clone()),
            kind: "webhook".into(),
            url,
            body,
            content_type,
            max_attempts: if retries { MAX_ATTEMPTS_WITH_RETRIES } else { 1 },
            accepted_codes: accepted,
            refused: (route.backlog >= MAX_PENDING_DELIVERIES).then(|| {
                format!(
                    "not sent: the application had {MAX_PENDING_DELIVERIES} deliveries pending \
                     (redeliver this one once they are delivered)"
                )
            }),
        });
    }
    Ok(deliveries)
}

/// Queues the deliveries of an event that causes nothing else (see
/// [`deliveries_for_event`]); returns how many were queued.
pub async fn publish_event(state: &AppState, org_id: &str, event: &Value) -> Result<usize, StoreError> {
    let deliveries = deliveries_for_event(state, org_id, event).await?;
    let queued = deliveries.len();
    state.store.insert_event_work(Vec::new(), deliveries).await?;
    if queued > 0 {
        state.delivery_wake.wake();
    }
    Ok(queued)
}

/// The body of a webhook delivery and its content type (`None` for JSON).
fn webhook_body(
    state: &AppState,
    app: &ApplicationRecord,
    webhook: &WebhookRecord,
    org_id: &str,
    matching: &[&SubscriptionRecord],
    event: &Value,
) -> (String, Option<String>) {
    if let Some(template) = &webhook.settings.payload_template {
        let body = payload::render(template, event);
        let is_json = serde_json::from_str::<serde::de::IgnoredAny>(&body).is_ok();
        return (body, (!is_json).then(|| "text/plain; charset=utf-8".to_owned()));
    }
    let shaped = match webhook.settings.payload_fields.as_deref().map(payload::parse_fields) {
        Some(Ok(paths)) => payload::trim(event, &paths),
        _ => event.clone(),
    };
    let mut body = json!({
        "className": "WebhookRequestPayload",
        "clientId": app.client_id,
        "orgId": org_id,
        "serverUrl": state.public_url,
        "webhookId": webhook.id,
        "subscriptionIds": matching.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        "payload": shaped,
    });
    add_verification_token(state, app, &mut body);
    (body.to_string(), None)
}

/// Which signatures an application's payloads carry (`hasSigningKey`,
/// `hasPublicKeySignature`; both on by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signatures {
    /// `X-Space-Signature` and the Standard Webhooks headers, HMACs with the signing key.
    pub signing_key: bool,
    /// `X-Space-Public-Key-Signature`, verifiable with the JWKS.
    pub public_key: bool,
}

impl Signatures {
    /// The application's choice.
    pub fn of(app: &ApplicationRecord) -> Self {
        Self { signing_key: app.settings.signs_with_key(), public_key: app.settings.signs_with_public_key() }
    }
}

/// How the deliveries of one application (and webhook) are sent.
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    /// The signatures they carry.
    pub signatures: Signatures,
    /// The HMAC key: the webhook's for webhook payloads, else the application's.
    pub signing_key: String,
    /// Whether the endpoint's TLS certificate is verified.
    pub verify_tls: bool,
    /// The webhook's custom headers.
    pub headers: Vec<(String, String)>,
    /// The endpoint's credentials as an `Authorization` value: the webhook's own, else the
    /// application's when the webhook posts to the application's endpoint.
    pub authorization: Option<String>,
}

/// The settings `delivery` is sent with, or `None` when its application or webhook no longer
/// takes deliveries of its kind.
pub async fn delivery_settings(
    state: &AppState,
    delivery: &DeliveryRecord,
) -> anyhow::Result<Option<DeliverySettings>> {
    let Some(app) = state.store.application(&delivery.app_id).await? else { return Ok(None) };
    let live = match delivery.kind.as_str() {
        "uninstall" => app.status == "uninstalling",
        _ => app.status == "active",
    };
    if !live {
        return Ok(None);
    }
    let mut verify_tls = app.settings.verifies_endpoint_tls();
    let mut headers = Vec::new();
    let (signing_key, auth) = match &delivery.webhook_id {
        Some(webhook_id) => {
            let Some(webhook) = state.store.webhook(&app.id, webhook_id).await? else { return Ok(None) };
            if webhook.archived || !webhook.settings.enabled {
                return Ok(None);
            }
            if let Some(own) = &webhook.settings.endpoint {
                verify_tls = own.ssl_verification;
            }
            let secrets: Value = serde_json::from_slice(&state.secrets.open(&webhook.secrets_sealed)?)?;
            for (name, value) in secrets["customHeaders"].as_object().into_iter().flatten() {
                if let Some(value) = value.as_str() {
                    headers.push((name.clone(), value.to_owned()));
                }
            }
            let own: Option<EndpointCredentials> = serde_json::from_value(secrets["endpointAuth"].clone())?;
            let auth = match own.filter(|own| !own.is_empty()) {
                Some(own) => own,
                // A webhook without credentials of its own that posts to the application's
                // endpoint authenticates as the application does there; one with an endpoint
                // of its own never carries the application's credentials elsewhere.
                None if webhook.settings.endpoint.is_none() => {
                    EndpointCredentials::open(&state.secrets, app.auth_sealed.as_deref())?
                }
                None => EndpointCredentials::default(),
            };
            (state.secrets.open_string(&webhook.signing_key_sealed)?, auth)
        }
        None => {
            let auth = EndpointCredentials::open(&state.secrets, app.auth_sealed.as_deref())?;
            (state.secrets.open_string(&app.signing_key_sealed)?, auth)
        }
    };
    Ok(Some(DeliverySettings {
        signatures: Signatures::of(&app),
        signing_key,
        verify_tls,
        headers,
        authorization: auth.authorization_header(),
    }))
}

/// Queues the InitPayload of an application created with `connectToSpace`.
pub async fn send_init(state: &AppState, app: &ApplicationRecord, client_secret: &str) -> Result<bool, StoreError> {
    let Some(url) = app.settings.endpoint_uri.as_deref() else { return Ok(false) };
    let mut body = json!({
        "className": "InitPayload",
        "clientId": app.client_id,
        "clientSecret": client_secret,
        "serverUrl": state.public_url,
        "state": app.settings.state,
        "userId": Value::Null,
    });
    add_verification_token(state, app, &mut body);
    enqueue(state, app_delivery(app, "init", url, body, MAX_ATTEMPTS_WITH_RETRIES)).await?;
    Ok(true)
}

/// Starts uninstalling. A connected application with an endpoint is sent the
/// ApplicationUninstalledPayload and archived by the delivery worker when its endpoint answers
/// or after [`UNINSTALL_ATTEMPTS`] failures; any other application is archived at once.
pub async fn uninstall(state: &AppState, app: &ApplicationRecord) -> Result<(), StoreError> {
    let Some(url) = app.settings.endpoint_uri.as_deref().filter(|_| app.connected) else {
        archive(state, &app.id).await?;
        return Ok(());
    };
    let mut body = json!({
        "className": "ApplicationUninstalledPayload",
        "clientId": app.client_id,
        "serverUrl": state.public_url,
    });
    add_verification_token(state, app, &mut body);
    let payload = app_delivery(app, "uninstall", url, body, UNINSTALL_ATTEMPTS);
    if state.store.begin_application_uninstall(&app.id, &payload).await? {
        state.delivery_wake.wake();
    }
    Ok(())
}

/// Archives an application at once, whatever its status: revokes its tokens and cancels what
/// it was still owed, in one transaction. `false` when it was archived already.
pub async fn archive(state: &AppState, app_id: &str) -> Result<bool, StoreError> {
    state.store.archive_application(app_id, &["active", "uninstalling"]).await
}

/// Archives an application whose uninstall settled, unless it was restored meanwhile.
pub async fn finish_uninstall(state: &AppState, app_id: &str) -> Result<(), StoreError> {
    state.store.archive_application(app_id, &["uninstalling"]).await?;
    Ok(())
}

/// Queues `link` for unfurling by every active application of `org_id` that declared, and
/// had authorized, its domain or a prefix pattern of it; returns how many queued it. The
/// applications fetch it from `GET /api/http/applications/unfurls/queue`.
pub async fn queue_unfurl(state: &AppState, org_id: &str, link: &str) -> Result<usize, StoreError> {
    let host = reqwest::Url::parse(link).ok().and_then(|url| url.host_str().map(str::to_owned));
    let matches = |kind: UnfurlKind, value: &str| match kind {
        UnfurlKind::Domain => host.as_deref().is_some_and(|host| host == value || host.ends_with(&format!(".{value}"))),
        UnfurlKind::Pattern => link.starts_with(value),
    };
    let mut apps: Vec<String> = Vec::new();
    for (app_id, kind, value) in state.store.authorized_unfurl_targets(org_id).await? {
        if matches(kind, &value) && !apps.contains(&app_id) {
            apps.push(app_id);
        }
    }
    for app_id in &apps {
        state.store.push_unfurl(app_id, link, UNFURL_QUEUE_LENGTH).await?;
    }
    Ok(apps.len())
}

/// Adds `verificationToken` to a payload when the application still uses that (deprecated)
/// way of authenticating payloads.
fn add_verification_token(state: &AppState, app: &ApplicationRecord, body: &mut Value) {
    if app.settings.sends_verification_token() {
        match state.secrets.open_string(&app.verification_sealed) {
            Ok(token) => body["verificationToken"] = json!(token),
            Err(error) => tracing::error!(%error, app = %app.id, "opening a verification token failed"),
        }
    }
}

fn app_delivery(app: &ApplicationRecord, kind: &str, url: &str, body: Value, max_attempts: i64) -> NewDelivery {
    NewDelivery {
        id: crate::ids::random("whd_", 24),
        app_id: app.id.clone(),
        webhook_id: None,
        kind: kind.into(),
        url: url.into(),
        body: body.to_string(),
        content_type: None,
        max_attempts,
        accepted_codes: Vec::new(),
        refused: None,
    }
}

async fn enqueue(state: &AppState, delivery: NewDelivery) -> Result<(), StoreError> {
    state.store.insert_delivery(&delivery).await?;
    state.delivery_wake.wake();
    Ok(())
}

/// The webhook's own endpoint, else the application's.
pub fn webhook_url(app: &ApplicationRecord, webhook: &WebhookRecord) -> Option<String> {
    let own = webhook.settings.endpoint.as_ref().map(|endpoint| endpoint.url.as_str());
    own.or(app.settings.endpoint_uri.as_deref()).map(str::to_owned)
}

/// Whether a SubscriptionDefinition selects `event` (see [`publish_event`]).
pub fn subscription_matches(definition: &Value, event: &Value) -> bool {
    let event_type = event["type"].as_str().or_else(|| event["eventType"].as_str());
    let type_matches = match definition["eventTypeCodes"].as_array() {
        None => true,
        Some(codes) if codes.is_empty() => true,
        Some(codes) => codes.iter().filter_map(Value::as_str).any(|code| code == "*" || Some(code) == event_type),
    };
    let subject_matches = match (definition["subjectCode"].as_str(), event["subject"].as_str()) {
        (Some(code), Some(subject)) => code == "*" || code == subject,
        _ => true,
    };
    type_matches && subject_matches && payload::filters_match(&definition["filters"], event)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscriptions_match_by_event_type_and_subject() {
        let issue_created = json!({"type": "Issue.Created", "subject": "Issue"});
        assert!(subscription_matches(&json!({"eventTypeCodes": ["Issue.Created"]}), &issue_created));
        assert!(subscription_matches(&json!({"eventTypeCodes": []}), &issue_created));
        assert!(subscription_matches(&json!({"eventTypeCodes": ["*"], "subjectCode": "Issue"}), &issue_created));
        assert!(!subscription_matches(&json!({"eventTypeCodes": ["Issue.Deleted"]}), &issue_created));
        assert!(!subscription_matches(&json!({"subjectCode": "Chat"}), &issue_created));
        let open = json!({"eventTypeCodes": [], "filters": [{"field": "issue.status", "values": ["open"]}]});
        assert!(!subscription_matches(&open, &issue_created));
        assert!(subscription_matches(&open, &json!({"type": "Issue.Created", "issue": {"status": "open"}})));
    }
}
