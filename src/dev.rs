//! Dev mode: events for an integration in development go to the author's machine instead of
//! the published module.
//!
//! Two kinds of tunnel: `http` (an HTTP POST of the invocation to a URL the author
//! registered, signed the Standard Webhooks way) and `socket` (the reverse tunnel `weft dev`
//! opens: a WebSocket from the author's machine to this server, see [`socket`]). Which
//! integrations are in dev mode is cached per process for [`CACHE_TTL`]; a change made on
//! this process takes effect at once.

pub mod protocol;
pub mod socket;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rand::RngCore as _;
use serde_json::Value;
use tokio::sync::{broadcast, mpsc, oneshot};
use weft_runtime::{Failure, FailureKind, LogLine, Outcome, RunReport};

use crate::state::AppState;
use crate::store::{EventRecord, InstallationRecord, IntegrationRecord, Store, StoreError};

/// How long a process trusts its cached dev flags before asking the database again (other
/// replicas' changes take at most this long to be seen).
pub const CACHE_TTL: Duration = Duration::from_secs(1);
/// How long a tunnel may take to answer, unless configured.
pub const DEFAULT_TUNNEL_TIMEOUT: Duration = Duration::from_secs(5);
/// The environment variable that sets the tunnel timeout, in milliseconds.
pub const TUNNEL_TIMEOUT_ENV: &str = "WEFT_DEV_TUNNEL_TIMEOUT_MS";
/// Largest answer accepted from an HTTP tunnel.
pub const MAX_ANSWER_BYTES: usize = 32 << 20;
/// Prefix of signing secrets.
pub const SECRET_PREFIX: &str = "whsec_";

/// How events reach the author's machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunnelKind {
    /// An HTTP POST to the registered URL.
    Http,
    /// The WebSocket reverse tunnel of `weft dev`.
    Socket,
}

impl TunnelKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            TunnelKind::Http => "http",
            TunnelKind::Socket => "socket",
        }
    }
}

/// Dev mode of one integration, while it is on.
#[derive(Debug, Clone)]
pub struct DevConfig {
    /// Where events go.
    pub tunnel_url: String,
    /// How they get there.
    pub kind: TunnelKind,
    /// Every organization's events, not only the integration's own.
    pub all_orgs: bool,
}

struct Cached {
    fetched: Instant,
    config: Option<DevConfig>,
}

/// One invocation on its way through a reverse tunnel.
pub struct TunnelRequest {
    /// The invocation JSON.
    pub invocation: Vec<u8>,
    /// Where the outcome envelope (or why there is none) goes.
    pub reply: oneshot::Sender<Result<Vec<u8>, String>>,
}

#[derive(Clone)]
struct TunnelHandle {
    connection: u64,
    sender: mpsc::Sender<TunnelRequest>,
}

/// The dev mode state of this process: cached flags, connected reverse tunnels and the
/// client that forwards to HTTP tunnels.
pub struct DevHub {
    cache: RwLock<HashMap<String, Cached>>,
    tunnels: Mutex<HashMap<String, TunnelHandle>>,
    secrets: Mutex<HashMap<String, Vec<u8>>>,
    next_connection: std::sync::atomic::AtomicU64,
    http: reqwest::Client,
    allow_private: bool,
    timeout: Duration,
    closing: tokio::sync::watch::Sender<bool>,
}

/// The client of HTTP tunnels: checked like guests' outbound HTTP, a tunnel URL resolves
/// only to public addresses unless the operator allows private ones.
fn tunnel_client(timeout: Duration, allow_private: bool) -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(timeout)
        .timeout(timeout)
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(crate::outbound::guarded_resolver(allow_private))
        .build()
        .expect("the HTTP client builds")
}

impl DevHub {
    /// A hub whose tunnels must answer within `timeout`; HTTP tunnels reach only public
    /// addresses (see [`DevHub::allowing_private_addresses`]).
    pub fn new(timeout: Duration) -> Self {
        Self {
            http: tunnel_client(timeout, false),
            allow_private: false,
            cache: RwLock::default(),
            tunnels: Mutex::default(),
            secrets: Mutex::default(),
            next_connection: 1.into(),
            timeout,
            closing: tokio::sync::watch::channel(false).0,
        }
    }

    /// The same hub, letting HTTP tunnels reach loopback and private addresses when
    /// `allow` (the operator's `--allow-private-outbound`).
    pub fn allowing_private_addresses(mut self, allow: bool) -> Self {
        self.http = tunnel_client(self.timeout, allow);
        self.allow_private = allow;
        self
    }

    /// Whether a tunnel URL may name a private address.
    pub fn allows_private_addresses(&self) -> bool {
        self.allow_private
    }

    /// How long every hand-off to a tunnel, write to it and answer from it may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Ends every reverse tunnel and live stream, so a stopping server need not wait for
    /// them.
    pub fn shutdown(&self) {
        self.closing.send_replace(true);
    }

    /// Resolves once [`DevHub::shutdown`] was called.
    pub fn closed(&self) -> impl std::future::Future<Output = ()> + Send + use<> {
        let mut closing = self.closing.subscribe();
        async move {
            let _ = closing.wait_for(|closed| *closed).await;
        }
    }

    /// A hub with the timeout from [`TUNNEL_TIMEOUT_ENV`], else [`DEFAULT_TUNNEL_TIMEOUT`].
    pub fn from_env() -> Self {
        let timeout = std::env::var(TUNNEL_TIMEOUT_ENV)
            .ok()
            .and_then(|ms| ms.parse::<u64>().ok())
            .map_or(DEFAULT_TUNNEL_TIMEOUT, Duration::from_millis);
        Self::new(timeout)
    }

    /// Forgets the cached flags of integration `integration_id` (after this process changed
    /// them).
    pub fn invalidate(&self, integration_id: &str) {
        self.cache.write().expect("dev cache lock").remove(integration_id);
    }

    /// Forgets everything about integration `integration_id` (it was unpublished): cached
    /// flags, its signing secret and its reverse tunnel, whose connection then ends.
    pub fn forget(&self, integration_id: &str) {
        self.invalidate(integration_id);
        self.secrets.lock().expect("secrets lock").remove(integration_id);
        self.tunnels.lock().expect("tunnels lock").remove(integration_id);
    }

    /// The dev mode of integration `integration_id` while it is on, from the cache when fresh.
    pub async fn config(&self, store: &Store, integration_id: &str) -> Result<Option<DevConfig>, StoreError> {
        if let Some(cached) = self.cache.read().expect("dev cache lock").get(integration_id)
            && cached.fetched.elapsed() < CACHE_TTL
        {
            return Ok(cached.config.clone());
        }
        let fetched = Instant::now();
        let config = store.dev_mode(integration_id).await?.and_then(|record| {
            Some(DevConfig {
                tunnel_url: record.tunnel_url?,
                kind: if record.tunnel_kind == "socket" { TunnelKind::Socket } else { TunnelKind::Http },
                all_orgs: record.all_orgs,
            })
        });
        self.cache
            .write()
            .expect("dev cache lock")
            .insert(integration_id.to_owned(), Cached { fetched, config: config.clone() });
        Ok(config)
    }

    /// Whether a reverse tunnel of integration `integration_id` is connected to this process.
    pub fn connected(&self, integration_id: &str) -> bool {
        self.tunnels.lock().expect("tunnels lock").contains_key(integration_id)
    }

    /// Makes `sender` the reverse tunnel of integration `integration_id`, replacing any older
    /// one; returns the connection's number for [`DevHub::unregister`].
    pub fn register(&self, integration_id: &str, sender: mpsc::Sender<TunnelRequest>) -> u64 {
        let connection = self.next_connection.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let handle = TunnelHandle { connection, sender };
        self.tunnels.lock().expect("tunnels lock").insert(integration_id.to_owned(), handle);
        connection
    }

    /// Forgets the reverse tunnel `connection` of integration `integration_id` (not a newer
    /// one).
    pub fn unregister(&self, integration_id: &str, connection: u64) {
        let mut tunnels = self.tunnels.lock().expect("tunnels lock");
        if tunnels.get(integration_id).is_some_and(|handle| handle.connection == connection) {
            tunnels.remove(integration_id);
        }
    }

    async fn through_socket(&self, integration: &IntegrationRecord, invocation: &[u8]) -> Result<Vec<u8>, String> {
        let handle = self.tunnels.lock().expect("tunnels lock").get(&integration.id).cloned();
        let Some(handle) = handle else {
            return Err(format!("the dev tunnel of `{}` is not connected (is `weft dev` running?)", integration.name));
        };
        let (reply, answer) = oneshot::channel();
        let request = TunnelRequest { invocation: invocation.to_vec(), reply };
        // One deadline for the hand-off and the answer: a tunnel that stopped reading fills
        // its channel, and waiting on it must not hold the caller (or the queue) forever.
        let deadline = tokio::time::Instant::now() + self.timeout;
        match tokio::time::timeout_at(deadline, handle.sender.send(request)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err("the dev tunnel closed".to_owned()),
            Err(_) => {
                return Err(format!("the dev tunnel did not take the event within {} ms", self.timeout.as_millis()));
            }
        }
        match tokio::time::timeout_at(deadline, answer).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err("the dev tunnel closed before answering".to_owned()),
            Err(_) => Err(format!("the dev tunnel did not answer within {} ms", self.timeout.as_millis())),
        }
    }

    async fn through_http(&self, url: &str, secret: &[u8], invocation: &[u8]) -> Result<Vec<u8>, String> {
        let id = serde_json::from_slice::<Value>(invocation)
            .ok()
            .and_then(|invocation| invocation["event"]["eventId"].as_str().map(|id| format!("msg_{id}")))
            .unwrap_or_else(|| crate::ids::random("msg_", 24));
        let timestamp = crate::store::now_ms() / 1000;
        crate::outbound::check_literal_address(url, self.allow_private)
            .map_err(|reason| format!("the dev tunnel {url} is not allowed: {reason}"))?;
        let mut response = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature(secret, &id, timestamp, invocation))
            .body(invocation.to_vec())
            .send()
            .await
            .map_err(|error| describe_http_error(url, &error))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("the dev tunnel {url} answered {status}"));
        }
        let too_large = || format!("the dev tunnel {url} answered more than {MAX_ANSWER_BYTES} bytes");
        if response.content_length().is_some_and(|length| length > MAX_ANSWER_BYTES as u64) {
            return Err(too_large());
        }
        // Read as it arrives, so the cap holds before the bytes are in memory.
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|error| describe_http_error(url, &error))? {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// The signing secret of integration `integration_id` (`whsec_…`), generated and stored
    /// sealed on first use.
    pub async fn signing_secret(&self, state: &AppState, integration_id: &str) -> Result<String, StoreError> {
        if let Some(key) = self.secrets.lock().expect("secrets lock").get(integration_id) {
            return Ok(format!("{SECRET_PREFIX}{}", BASE64.encode(key)));
        }
        let mut key = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut key);
        let candidate = state.secrets.seal(format!("{SECRET_PREFIX}{}", BASE64.encode(key)).as_bytes());
        let sealed = state.store.dev_signing_secret(integration_id, &candidate).await?;
        let secret = state.secrets.open_string(&sealed).map_err(|_| {
            StoreError::Sql(sqlx::Error::Protocol("the dev signing secret does not open with the server key".into()))
        })?;
        if let Some(key) = secret_key(&secret) {
            self.secrets.lock().expect("secrets lock").insert(integration_id.to_owned(), key);
        }
        Ok(secret)
    }
}

fn describe_http_error(url: &str, error: &reqwest::Error) -> String {
    if error.is_timeout() {
        format!("the dev tunnel {url} did not answer in time")
    } else if error.is_connect() {
        format!("the dev tunnel {url} is unreachable: connection failed")
    } else {
        format!("the dev tunnel {url} failed: {error}")
    }
}

/// The key bytes of a `whsec_…` secret.
pub fn secret_key(secret: &str) -> Option<Vec<u8>> {
    BASE64.decode(secret.strip_prefix(SECRET_PREFIX)?).ok()
}

/// The Standard Webhooks `webhook-signature` value: `v1,` + base64 of
/// HMAC-SHA256(key, "{id}.{timestamp}.{body}").
pub fn signature(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut message = format!("{id}.{timestamp}.").into_bytes();
    message.extend_from_slice(body);
    format!("v1,{}", BASE64.encode(crate::crypto::hmac_sha256(key, &message)))
}

/// Whether `signatures` (a `webhook-signature` header, space-separated) holds a valid
/// signature of `body` by `key`. Compared in constant time: how long a check takes says
/// nothing about how much of a forged signature was right.
pub fn verify(key: &[u8], id: &str, timestamp: i64, body: &[u8], signatures: &str) -> bool {
    let expected = signature(key, id, timestamp, body);
    signatures.split(' ').fold(false, |found, candidate| {
        crate::crypto::constant_time_eq(candidate.as_bytes(), expected.as_bytes()) | found
    })
}

/// When dev mode is on for this event (the installation's organization is the integration's
/// own, or the tunnel takes every organization), sends the invocation to the tunnel and
/// returns what it answered; `None` runs the published module.
pub async fn forward(
    state: &AppState,
    integration: &IntegrationRecord,
    installation: Option<&InstallationRecord>,
    invocation: impl FnOnce() -> Vec<u8>,
) -> Option<RunReport> {
    let config = match state.dev.config(&state.store, &integration.id).await {
        Ok(config) => config?,
        Err(error) => {
            tracing::error!(%error, integration = %integration.name, "reading dev mode failed; running the published module");
            return None;
        }
    };
    let own = installation.is_none_or(|installation| installation.org_id == integration.org_id);
    if !own && !config.all_orgs {
        return None;
    }
    let invocation = invocation();
    let invocation = &invocation[..];
    let started = Instant::now();
    let answer = match config.kind {
        TunnelKind::Socket => state.dev.through_socket(integration, invocation).await,
        TunnelKind::Http => match state.dev.signing_secret(state, &integration.id).await {
            Ok(secret) => {
                let key = secret_key(&secret).unwrap_or_default();
                state.dev.through_http(&config.tunnel_url, &key, invocation).await
            }
            Err(error) => {
                tracing::error!(%error, "reading the dev signing secret failed");
                Err("the dev signing secret is unavailable".to_owned())
            }
        },
    };
    Some(report(answer, started.elapsed()))
}

/// Turns a tunnel's answer (outcome JSON, optionally with the `logs` the author's machine
/// recorded) into a [`RunReport`].
pub fn report(answer: Result<Vec<u8>, String>, duration: Duration) -> RunReport {
    let body = match answer {
        Ok(body) => body,
        Err(message) => {
            return RunReport {
                result: Err(Failure::new(FailureKind::TunnelUnreachable, message)),
                logs: Vec::new(),
                duration,
            };
        }
    };
    let mut logs = Vec::new();
    let outcome = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(mut fields)) => {
            if let Some(lines) = fields.remove("logs") {
                logs = serde_json::from_value::<Vec<LogLine>>(lines).unwrap_or_default();
            }
            Outcome::parse(Value::Object(fields).to_string().as_bytes())
        }
        _ => Outcome::parse(&body),
    };
    RunReport { result: outcome, logs, duration }
}

/// The live feed of events as they are recorded: `weft tail` and the events stream
/// subscribe to it. Publishing costs nothing while nobody listens.
#[derive(Clone)]
pub struct LiveEvents {
    sender: broadcast::Sender<Arc<EventRecord>>,
}

impl Default for LiveEvents {
    fn default() -> Self {
        Self { sender: broadcast::channel(1024).0 }
    }
}

impl LiveEvents {
    /// Sends `event` to every subscriber.
    pub fn publish(&self, event: &EventRecord) {
        if self.sender.receiver_count() > 0 {
            let _ = self.sender.send(Arc::new(event.clone()));
        }
    }

    /// Events recorded from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<EventRecord>> {
        self.sender.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_the_standard_webhooks_test_vector() {
        let key = secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        let signed = signature(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(signed, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert!(verify(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body, &format!("v1,bogus {signed}")));
        assert!(!verify(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265331, body, &signed));
    }

    #[test]
    fn a_tunnel_answer_becomes_a_report_with_its_logs() {
        let answer =
            br#"{"error":{"code":418,"message":"teapot"},"logs":[{"level":"info","message":"hi","timestamp":1}]}"#;
        let answered = report(Ok(answer.to_vec()), Duration::ZERO);
        assert_eq!(answered.result, Ok(Outcome::Error { code: 418, message: "teapot".to_owned() }));
        assert_eq!(answered.logs[0].message, "hi");
        assert_eq!(report(Ok(b"{}".to_vec()), Duration::ZERO).result, Ok(Outcome::None));
        let failed = report(Err("gone".to_owned()), Duration::ZERO).result.unwrap_err();
        assert_eq!(failed.kind, FailureKind::TunnelUnreachable);
        assert_eq!(report(Ok(b"not json".to_vec()), Duration::ZERO).result.unwrap_err().kind, FailureKind::BadOutput);
    }
}
