//! Externally hosted applications: the payloads weft sends them (InitPayload,
//! WebhookRequestPayload, ApplicationUninstalledPayload), how they are signed
//! ([`signing`]) and the durable delivery worker ([`delivery`]).
//!
//! [`publish_event`] is the entry point for events: it queues one signed delivery per
//! application webhook whose subscriptions match.

pub mod delivery;
pub mod signing;

use serde_json::{Value, json};

use crate::state::AppState;
use crate::store::{ApplicationRecord, NewDelivery, StoreError, SubscriptionRecord, WebhookRecord};

pub use delivery::DeliveryWorker;

/// Attempts of a payload when retries are on.
pub const MAX_ATTEMPTS_WITH_RETRIES: i64 = 6;
/// Attempts of an ApplicationUninstalledPayload before the application is archived anyway.
pub const UNINSTALL_ATTEMPTS: i64 = 3;

/// Queues a WebhookRequestPayload for every webhook of `org_id`'s active applications
/// whose enabled subscriptions match `event`, and returns how many were queued.
///
/// An event matches a subscription when its `type` is one of the subscription's
/// `eventTypeCodes` (an empty list or `"*"` matches every type) and, when both name one,
/// its `subject` equals the subscription's `subjectCode`.
pub async fn publish_event(state: &AppState, org_id: &str, event: &Value) -> Result<usize, StoreError> {
    let mut queued = 0;
    for app in state.store.active_applications_of_org(org_id).await? {
        for webhook in state.store.live_webhooks(&app.id).await? {
            if !webhook_enabled(&webhook) {
                continue;
            }
            let subscriptions = state.store.subscriptions(&webhook.id).await?;
            let matching: Vec<&SubscriptionRecord> =
                subscriptions.iter().filter(|s| s.enabled && subscription_matches(&s.definition, event)).collect();
            if matching.is_empty() {
                continue;
            }
            let Some(url) = webhook_url(&app, &webhook) else { continue };
            let mut body = json!({
                "className": "WebhookRequestPayload",
                "clientId": app.client_id,
                "orgId": org_id,
                "serverUrl": state.public_url,
                "webhookId": webhook.id,
                "subscriptionIds": matching.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
                "payload": event,
            });
            add_verification_token(state, &app, &mut body);
            let retries = webhook.settings["doRetries"].as_bool().unwrap_or(true);
            let accepted = webhook.settings["acceptedHttpResponseCodes"]
                .as_array()
                .map(|codes| codes.iter().filter_map(Value::as_i64).collect())
                .unwrap_or_default();
            enqueue(
                state,
                NewDelivery {
                    id: crate::ids::random("whd_", 24),
                    app_id: app.id.clone(),
                    webhook_id: Some(webhook.id.clone()),
                    kind: "webhook".into(),
                    url,
                    body: body.to_string(),
                    max_attempts: if retries { MAX_ATTEMPTS_WITH_RETRIES } else { 1 },
                    accepted_codes: accepted,
                },
            )
            .await?;
            queued += 1;
        }
    }
    Ok(queued)
}

/// Queues the InitPayload of an application created with `connectToSpace`.
pub async fn send_init(state: &AppState, app: &ApplicationRecord, client_secret: &str) -> Result<bool, StoreError> {
    let Some(url) = app.settings["endpointUri"].as_str() else { return Ok(false) };
    let mut body = json!({
        "className": "InitPayload",
        "clientId": app.client_id,
        "clientSecret": client_secret,
        "serverUrl": state.public_url,
        "state": app.settings["state"],
        "userId": Value::Null,
    });
    add_verification_token(state, app, &mut body);
    enqueue(state, app_delivery(app, "init", url, body, MAX_ATTEMPTS_WITH_RETRIES)).await?;
    Ok(true)
}

/// Starts uninstalling: queues the ApplicationUninstalledPayload, or archives at once when
/// the application has no endpoint. The delivery worker archives it when the endpoint
/// answers or after [`UNINSTALL_ATTEMPTS`] failures.
pub async fn uninstall(state: &AppState, app: &ApplicationRecord) -> Result<(), StoreError> {
    let Some(url) = app.settings["endpointUri"].as_str() else {
        return archive(state, &app.id).await;
    };
    if !state.store.set_application_status(&app.id, Some("active"), "uninstalling").await? {
        return Ok(());
    }
    let mut body = json!({
        "className": "ApplicationUninstalledPayload",
        "clientId": app.client_id,
        "serverUrl": state.public_url,
    });
    add_verification_token(state, app, &mut body);
    enqueue(state, app_delivery(app, "uninstall", url, body, UNINSTALL_ATTEMPTS)).await
}

/// Archives an application at once: revokes its tokens and cancels what it was still owed.
pub async fn archive(state: &AppState, app_id: &str) -> Result<(), StoreError> {
    state.store.set_application_status(app_id, None, "archived").await?;
    revoke(state, app_id).await
}

/// Archives an application whose uninstall settled, unless it was restored meanwhile.
pub async fn finish_uninstall(state: &AppState, app_id: &str) -> Result<(), StoreError> {
    if state.store.set_application_status(app_id, Some("uninstalling"), "archived").await? {
        revoke(state, app_id).await?;
    }
    Ok(())
}

async fn revoke(state: &AppState, app_id: &str) -> Result<(), StoreError> {
    state.store.delete_app_tokens(app_id).await?;
    state.store.cancel_pending_deliveries(app_id).await
}

/// Queues `link` for unfurling by every active application of `org_id` that declared, and
/// had authorized, its domain or a prefix pattern of it; returns how many queued it. The
/// applications fetch it from `GET /api/http/applications/unfurls/queue`.
pub async fn queue_unfurl(state: &AppState, org_id: &str, link: &str) -> Result<usize, StoreError> {
    let host = reqwest::Url::parse(link).ok().and_then(|url| url.host_str().map(str::to_owned));
    let mut queued = 0;
    for mut app in state.store.active_applications_of_org(org_id).await? {
        let authorized = |field: &str| -> Vec<String> {
            app.settings[field]
                .as_array()
                .map(|entries| {
                    entries
                        .iter()
                        .filter(|e| e["authorized"] == true)
                        .filter_map(|e| e["value"].as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        let by_domain = host.as_deref().is_some_and(|host| {
            authorized("unfurlDomains").iter().any(|d| host == d || host.ends_with(&format!(".{d}")))
        });
        let by_pattern = authorized("unfurlPatterns").iter().any(|p| link.starts_with(p.as_str()));
        if !(by_domain || by_pattern) {
            continue;
        }
        let mut queue = app.settings["unfurlQueue"].as_array().cloned().unwrap_or_default();
        let etag = queue.iter().filter_map(|i| i["etag"].as_i64()).max().unwrap_or(0) + 1;
        queue.push(json!({ "etag": etag, "target": link, "createdAt": crate::store::now_ms() }));
        let excess = queue.len().saturating_sub(1000);
        queue.drain(..excess);
        app.settings["unfurlQueue"] = json!(queue);
        state.store.update_application(&app).await?;
        queued += 1;
    }
    Ok(queued)
}

/// Adds `verificationToken` to a payload when the application still uses that (deprecated)
/// way of authenticating payloads.
fn add_verification_token(state: &AppState, app: &ApplicationRecord, body: &mut Value) {
    if app.settings["hasVerificationToken"] == true {
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
        max_attempts,
        accepted_codes: Vec::new(),
    }
}

async fn enqueue(state: &AppState, delivery: NewDelivery) -> Result<(), StoreError> {
    state.store.insert_delivery(&delivery).await?;
    delivery::wake();
    Ok(())
}

fn webhook_enabled(webhook: &WebhookRecord) -> bool {
    webhook.settings["enabled"].as_bool().unwrap_or(true)
}

/// The webhook's own endpoint, else the application's.
pub fn webhook_url(app: &ApplicationRecord, webhook: &WebhookRecord) -> Option<String> {
    webhook.settings["endpoint"]["url"].as_str().or_else(|| app.settings["endpointUri"].as_str()).map(str::to_owned)
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
    type_matches && subject_matches
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
    }
}
