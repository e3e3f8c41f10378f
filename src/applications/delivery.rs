//! The background worker that sends queued payloads to applications.
//!
//! Deliveries are rows in `application_deliveries`. The worker claims due rows in batches
//! with a short lease (one statement; replicas sharing PostgreSQL never send the same attempt
//! twice), reads each batch's applications and webhooks once, signs and POSTs every delivery
//! of the batch concurrently, and records the outcomes in one transaction: a 2xx answer or a
//! status listed in the webhook's `acceptedHttpResponseCodes` succeeds; anything else is
//! retried after a growing delay until the delivery's attempts run out (one attempt when
//! `doRetries` is off). An ApplicationUninstalledPayload archives its application once it is
//! settled. Settled deliveries stay in the log for 30 days.
//!
//! The server's RSA key is read, opened and parsed once per worker ([`KeyCache`]), and RSA
//! signatures are made on the blocking pool, never on the async executor.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, OnceCell, oneshot};
use tokio::task::JoinHandle;

use super::signing::{ServerKey, space_signature, standard_webhooks_signature};
use super::{DeliverySettings, Signatures};
use crate::state::AppState;
use crate::store::{DeliveryAttempt, DeliveryRecord, now_ms};

/// Wait before retry N (1-based); later retries use the last entry.
const RETRY_DELAYS_MS: [i64; 5] = [250, 1_000, 5_000, 30_000, 120_000];
/// How long a claimed delivery stays reserved for the worker that claimed it.
const LEASE_MS: i64 = 60_000;
/// Deliveries claimed per round (and sent concurrently).
const BATCH: i64 = 64;
/// How long a request to an application may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Settled deliveries stay in the log this long.
const LOG_RETENTION_MS: i64 = 30 * 24 * 3600 * 1000;
/// How often old log entries are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// How often the worker looks for due deliveries when nothing wakes it.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Wakes a server's delivery worker when a delivery is queued. A wake-up sent while the
/// worker is busy sending is kept (`notify_one` stores it) and ends its next wait at once,
/// so no delivery waits for the poll interval.
#[derive(Debug, Default, Clone)]
pub struct Wake(Arc<Notify>);

impl Wake {
    /// Tells the worker that a delivery was queued.
    pub fn wake(&self) {
        self.0.notify_one();
    }
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
            let keys = KeyCache::default();
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
                if busy {
                    // Attempts in flight finish (each is bounded by REQUEST_TIMEOUT) even when
                    // asked to stop, so no delivery is left leased by a stopped worker.
                    send_batch(&state, &clients, &keys, claimed).await;
                }
                if !matches!(stopped.try_recv(), Err(oneshot::error::TryRecvError::Empty)) {
                    return;
                }
                if busy {
                    continue;
                }
                tokio::select! {
                    _ = state.delivery_wake.0.notified() => {}
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

/// The server's signing key, loaded once per worker.
#[derive(Default)]
struct KeyCache(OnceCell<Arc<ServerKey>>);

impl KeyCache {
    async fn get(&self, state: &AppState) -> anyhow::Result<Arc<ServerKey>> {
        self.0.get_or_try_init(|| async { ServerKey::load_or_create(state).await.map(Arc::new) }).await.cloned()
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

/// Where and how the deliveries of one application (and webhook) are sent, read once per batch.
enum Target {
    Live(Arc<DeliverySettings>),
    Gone,
}

async fn send_batch(state: &AppState, clients: &Clients, keys: &KeyCache, claimed: Vec<DeliveryRecord>) {
    let mut targets: HashMap<(String, Option<String>), Arc<Target>> = HashMap::new();
    let mut sends = tokio::task::JoinSet::new();
    for delivery in claimed {
        let key = (delivery.app_id.clone(), delivery.webhook_id.clone());
        let target = match targets.get(&key) {
            Some(target) => target.clone(),
            None => {
                let target = Arc::new(match super::delivery_settings(state, &delivery).await {
                    Ok(Some(settings)) => Target::Live(Arc::new(settings)),
                    Ok(None) => Target::Gone,
                    Err(error) => {
                        tracing::error!(%error, delivery = %delivery.id, "reading an application's delivery settings failed");
                        Target::Gone
                    }
                });
                targets.insert(key, target.clone());
                target
            }
        };
        let public_key = match &*target {
            Target::Live(settings) if settings.signatures.public_key => match keys.get(state).await {
                Ok(key) => Some(key),
                Err(error) => {
                    tracing::error!(%error, "loading the server's signing key failed");
                    None
                }
            },
            _ => None,
        };
        let clients = clients.clone();
        sends.spawn(async move {
            let outcome = match &*target {
                Target::Gone => Outcome::Cancelled,
                Target::Live(settings) => attempt(&clients, settings, public_key, &delivery).await,
            };
            (delivery, outcome)
        });
    }
    let mut attempts = Vec::new();
    let mut uninstalls = Vec::new();
    while let Some(joined) = sends.join_next().await {
        let Ok((delivery, outcome)) = joined else { continue };
        let attempt = settle(&delivery, &outcome);
        if delivery.kind == "uninstall" && attempt.status != "pending" {
            uninstalls.push(delivery.app_id.clone());
        }
        attempts.push(attempt);
    }
    if let Err(error) = state.store.record_delivery_attempts(&attempts).await {
        tracing::error!(%error, "recording application deliveries failed");
        return;
    }
    for app_id in uninstalls {
        if let Err(error) = super::finish_uninstall(state, &app_id).await {
            tracing::error!(%error, app = %app_id, "archiving an uninstalled application failed");
        }
    }
}

/// What an attempt's outcome makes of its delivery.
fn settle(delivery: &DeliveryRecord, outcome: &Outcome) -> DeliveryAttempt {
    let attempts = delivery.attempts + 1;
    let now = now_ms();
    let (status, next, code, error) = match outcome {
        Outcome::Success(code) => ("succeeded", now, Some(*code), None),
        Outcome::Cancelled => ("cancelled", now, None, Some("the application or webhook is no longer active".into())),
        Outcome::Failure(code, error) if attempts < delivery.max_attempts => {
            ("pending", now + retry_delay_ms(attempts), *code, Some(error.clone()))
        }
        Outcome::Failure(code, error) => ("failed", now, *code, Some(error.clone())),
    };
    DeliveryAttempt {
        id: delivery.id.clone(),
        status,
        attempts,
        next_attempt_at: next,
        last_status: code,
        last_error: error,
    }
}

/// The signature headers of one payload, as its application's settings choose them.
pub async fn signature_headers(
    signatures: &Signatures,
    signing_key: &str,
    public_key: Option<Arc<ServerKey>>,
    delivery_id: &str,
    timestamp_ms: i64,
    body: &str,
) -> anyhow::Result<Vec<(&'static str, String)>> {
    let mut headers = Vec::new();
    if signatures.signing_key || signatures.public_key {
        headers.push(("x-space-timestamp", timestamp_ms.to_string()));
    }
    if signatures.signing_key {
        headers.push(("x-space-signature", space_signature(signing_key, timestamp_ms, body)));
        headers.push(("webhook-id", delivery_id.to_owned()));
        headers.push(("webhook-timestamp", (timestamp_ms / 1000).to_string()));
        headers.push((
            "webhook-signature",
            standard_webhooks_signature(signing_key, delivery_id, timestamp_ms / 1000, body),
        ));
    }
    if signatures.public_key {
        let key = public_key.ok_or_else(|| anyhow::anyhow!("the server's signing key is not available"))?;
        let message = format!("{timestamp_ms}:{body}");
        let signature = tokio::task::spawn_blocking(move || key.sign(message.as_bytes())).await??;
        headers.push(("x-space-public-key-signature", signature));
    }
    Ok(headers)
}

async fn attempt(
    clients: &Clients,
    settings: &DeliverySettings,
    public_key: Option<Arc<ServerKey>>,
    delivery: &DeliveryRecord,
) -> Outcome {
    if let Err(why) = crate::outbound::check_literal_address(&delivery.url, clients.allow_private) {
        return Outcome::Failure(None, format!("the endpoint is not reachable from weft: {why}"));
    }
    let body = &delivery.body;
    let signed =
        signature_headers(&settings.signatures, &settings.signing_key, public_key, &delivery.id, now_ms(), body).await;
    let signed = match signed {
        Ok(headers) => headers,
        Err(error) => {
            tracing::error!(%error, delivery = %delivery.id, "signing an application delivery failed");
            return Outcome::Failure(None, "internal error while signing the request".into());
        }
    };
    let client = if settings.verify_tls { &clients.verified } else { &clients.unverified };
    let content_type = delivery.content_type.as_deref().unwrap_or("application/json");
    let mut request = client.post(&delivery.url).header("content-type", content_type).body(body.clone());
    for (name, value) in &settings.headers {
        request = request.header(name, value);
    }
    if let Some(auth) = &settings.authorization {
        request = request.header("authorization", auth);
    }
    for (name, value) in signed {
        request = request.header(name, value);
    }
    match request.send().await {
        Ok(response) => {
            let code = i64::from(response.status().as_u16());
            if response.status().is_success() || delivery.accepted_codes.contains(&code) {
                Outcome::Success(code)
            } else {
                Outcome::Failure(Some(code), format!("the endpoint answered {code}"))
            }
        }
        Err(error) => Outcome::Failure(None, format!("the request failed: {error}")),
    }
}
