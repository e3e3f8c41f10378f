//! The background worker that sends queued payloads to applications.
//!
//! Deliveries are rows in `application_deliveries`. The worker claims due rows with a short
//! lease (so replicas sharing PostgreSQL never send the same attempt twice), signs and POSTs
//! each one, and records the outcome: a 2xx answer or a status listed in the webhook's
//! `acceptedHttpResponseCodes` succeeds; anything else is retried after a growing delay
//! until the delivery's attempts run out (one attempt when `doRetries` is off).
//! An ApplicationUninstalledPayload archives its application once it is settled. Settled
//! deliveries stay in the log for 30 days.

use std::sync::LazyLock;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;

use super::signing::{ServerKey, space_signature, standard_webhooks_signature};
use crate::state::AppState;
use crate::store::{DeliveryRecord, now_ms};

/// Wait before retry N (1-based); later retries use the last entry.
const RETRY_DELAYS_MS: [i64; 5] = [250, 1_000, 5_000, 30_000, 120_000];
/// How long a claimed delivery stays reserved for the worker that claimed it.
const LEASE_MS: i64 = 60_000;
/// Deliveries claimed per round.
const BATCH: i64 = 16;
/// How long a request to an application may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Settled deliveries stay in the log this long.
const LOG_RETENTION_MS: i64 = 30 * 24 * 3600 * 1000;
/// How often old log entries are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// How often the worker looks for due deliveries when nothing wakes it.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

static WAKE: LazyLock<Notify> = LazyLock::new(Notify::new);

/// Tells running workers that a delivery was queued.
pub fn wake() {
    WAKE.notify_waiters();
}

/// The delay before retry number `attempt` (1-based).
pub fn retry_delay_ms(attempt: i64) -> i64 {
    let index = usize::try_from(attempt.saturating_sub(1)).unwrap_or(0).min(RETRY_DELAYS_MS.len() - 1);
    RETRY_DELAYS_MS[index]
}

/// A running delivery worker.
pub struct DeliveryWorker {
    stop: oneshot::Sender<()>,
    handle: JoinHandle<()>,
}

impl DeliveryWorker {
    /// Starts the worker.
    pub fn spawn(state: AppState) -> DeliveryWorker {
        let (stop, mut stopped) = oneshot::channel();
        let handle = tokio::spawn(async move {
            let clients = Clients::new(state.outbound.allows_private_addresses());
            let mut last_prune: Option<std::time::Instant> = None;
            loop {
                if last_prune.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
                    last_prune = Some(std::time::Instant::now());
                    if let Err(error) = state.store.prune_deliveries(now_ms() - LOG_RETENTION_MS).await {
                        tracing::error!(%error, "pruning the application delivery log failed");
                    }
                }
                let claimed = match state.store.claim_due_deliveries(BATCH, LEASE_MS).await {
                    Ok(claimed) => claimed,
                    Err(error) => {
                        tracing::error!(%error, "claiming application deliveries failed");
                        Vec::new()
                    }
                };
                let busy = !claimed.is_empty();
                let mut sends = tokio::task::JoinSet::new();
                for delivery in claimed {
                    let (state, clients) = (state.clone(), clients.clone());
                    sends.spawn(async move { send(&state, &clients, delivery).await });
                }
                // Attempts in flight finish (each is bounded by REQUEST_TIMEOUT) even when
                // asked to stop, so no delivery is left leased by a stopped worker.
                while sends.join_next().await.is_some() {}
                if !matches!(stopped.try_recv(), Err(oneshot::error::TryRecvError::Empty)) {
                    return;
                }
                if busy {
                    continue;
                }
                tokio::select! {
                    _ = WAKE.notified() => {}
                    _ = tokio::time::sleep(POLL_INTERVAL) => {}
                    _ = &mut stopped => return,
                }
            }
        });
        DeliveryWorker { stop, handle }
    }

    /// Stops the worker after the attempts in flight are recorded.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.handle.await;
    }
}

#[derive(Clone)]
struct Clients {
    verified: reqwest::Client,
    unverified: reqwest::Client,
    /// Endpoints may be loopback or private addresses (the operator's `--allow-private-outbound`).
    allow_private: bool,
}

impl Clients {
    /// Clients whose names resolve, like guests' requests, only to public addresses unless
    /// the operator allows private ones.
    fn new(allow_private: bool) -> Self {
        let build = |verify: bool| {
            reqwest::Client::builder()
                .dns_resolver(crate::outbound::guarded_resolver(allow_private))
                .timeout(REQUEST_TIMEOUT)
                .redirect(reqwest::redirect::Policy::none())
                .danger_accept_invalid_certs(!verify)
                .build()
                .expect("the HTTP client builds")
        };
        Self { verified: build(true), unverified: build(false), allow_private }
    }
}

/// What one attempt came to.
enum Outcome {
    Success(i64),
    Failure(Option<i64>, String),
    /// The application or webhook is gone or disabled: nothing more to send.
    Cancelled,
}

async fn send(state: &AppState, clients: &Clients, delivery: DeliveryRecord) {
    let outcome = match attempt(state, clients, &delivery).await {
        Ok(outcome) => outcome,
        Err(error) => {
            tracing::error!(%error, delivery = %delivery.id, "preparing an application delivery failed");
            Outcome::Failure(None, "internal error while preparing the request".into())
        }
    };
    let attempts = delivery.attempts + 1;
    let now = now_ms();
    let (status, next, code, error) = match &outcome {
        Outcome::Success(code) => ("succeeded", now, Some(*code), None),
        Outcome::Cancelled => ("cancelled", now, None, Some("the application or webhook is no longer active")),
        Outcome::Failure(code, error) if attempts < delivery.max_attempts => {
            ("pending", now + retry_delay_ms(attempts), *code, Some(error.as_str()))
        }
        Outcome::Failure(code, error) => ("failed", now, *code, Some(error.as_str())),
    };
    if let Err(error) = state.store.record_delivery_attempt(&delivery.id, status, attempts, next, code, error).await {
        tracing::error!(%error, delivery = %delivery.id, "recording an application delivery failed");
        return;
    }
    if delivery.kind == "uninstall" && status != "pending" {
        if let Err(error) = super::finish_uninstall(state, &delivery.app_id).await {
            tracing::error!(%error, app = %delivery.app_id, "archiving an uninstalled application failed");
        }
    }
}

async fn attempt(state: &AppState, clients: &Clients, delivery: &DeliveryRecord) -> anyhow::Result<Outcome> {
    let Some(app) = state.store.application(&delivery.app_id).await? else { return Ok(Outcome::Cancelled) };
    let live = match delivery.kind.as_str() {
        "uninstall" => app.status == "uninstalling",
        _ => app.status == "active",
    };
    if !live {
        return Ok(Outcome::Cancelled);
    }
    let mut headers: Vec<(String, String)> = Vec::new();
    let mut verify = app.settings["endpointSslVerification"].as_bool().unwrap_or(true);
    let (signing_key, auth) = match &delivery.webhook_id {
        Some(webhook_id) => {
            let Some(webhook) = state.store.webhook(&app.id, webhook_id).await? else {
                return Ok(Outcome::Cancelled);
            };
            if webhook.archived || !webhook.settings["enabled"].as_bool().unwrap_or(true) {
                return Ok(Outcome::Cancelled);
            }
            if let Some(own) = webhook.settings["endpoint"]["sslVerification"].as_bool() {
                verify = own;
            }
            let secrets: serde_json::Value = serde_json::from_slice(&state.secrets.open(&webhook.secrets_sealed)?)?;
            if let Some(custom) = secrets["customHeaders"].as_object() {
                for (name, value) in custom {
                    if let Some(value) = value.as_str() {
                        headers.push((name.clone(), value.to_owned()));
                    }
                }
            }
            (state.secrets.open_string(&webhook.signing_key_sealed)?, secrets["endpointAuth"].clone())
        }
        None => {
            let auth = match &app.auth_sealed {
                Some(sealed) => serde_json::from_slice(&state.secrets.open(sealed)?)?,
                None => serde_json::Value::Null,
            };
            (state.secrets.open_string(&app.signing_key_sealed)?, auth)
        }
    };
    if let Some(token) = auth["bearerAuthToken"].as_str() {
        headers.push(("authorization".into(), format!("Bearer {token}")));
    } else if let (Some(user), Some(password)) =
        (auth["basicAuthUsername"].as_str(), auth["basicAuthPassword"].as_str())
    {
        headers.push(("authorization".into(), format!("Basic {}", BASE64.encode(format!("{user}:{password}")))));
    }
    let timestamp_ms = now_ms();
    let body = &delivery.body;
    let server_key = ServerKey::load_or_create(state).await?;
    let signed = format!("{timestamp_ms}:{body}");
    headers.push(("x-space-timestamp".into(), timestamp_ms.to_string()));
    headers.push(("x-space-signature".into(), space_signature(&signing_key, timestamp_ms, body)));
    headers.push(("x-space-public-key-signature".into(), server_key.sign(signed.as_bytes())?));
    headers.push(("webhook-id".into(), delivery.id.clone()));
    headers.push(("webhook-timestamp".into(), (timestamp_ms / 1000).to_string()));
    headers.push((
        "webhook-signature".into(),
        standard_webhooks_signature(&signing_key, &delivery.id, timestamp_ms / 1000, body),
    ));
    if let Err(why) = crate::outbound::check_literal_address(&delivery.url, clients.allow_private) {
        return Ok(Outcome::Failure(None, format!("the endpoint is not reachable from weft: {why}")));
    }
    let client = if verify { &clients.verified } else { &clients.unverified };
    let mut request = client.post(&delivery.url).header("content-type", "application/json").body(body.clone());
    for (name, value) in headers {
        request = request.header(name, value);
    }
    Ok(match request.send().await {
        Ok(response) => {
            let code = i64::from(response.status().as_u16());
            if response.status().is_success() || delivery.accepted_codes.contains(&code) {
                Outcome::Success(code)
            } else {
                Outcome::Failure(Some(code), format!("the endpoint answered {code}"))
            }
        }
        Err(error) => Outcome::Failure(None, format!("the request failed: {error}")),
    })
}
