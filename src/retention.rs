//! Retention: what the server keeps, and for how long, so a busy server's database does not
//! grow without bound.
//!
//! A background task of every replica deletes, every [`RetentionConfig::interval`]:
//! - events older than [`RetentionConfig::events_max_age`], and each integration's oldest
//!   events beyond [`RetentionConfig::events_max_per_integration`];
//! - dead-lettered jobs older than the events' age limit (their event is gone by then too);
//! - finished jobs kept only for their idempotency key, once
//!   [`RetentionConfig::idempotency_window`] has passed (a re-submission with that key then
//!   runs again);
//! - tokens that expired a day ago or more.
//!
//! Every delete is idempotent, so replicas running it side by side only repeat each other's
//! work. Deletes go in bounded chunks, so no transaction holds the database for long.

use std::time::Duration;

use tokio::sync::watch;

use crate::state::AppState;
use crate::store::{Store, StoreError, now_ms};

/// How long and how much the server keeps.
#[derive(Debug, Clone)]
pub struct RetentionConfig {
    /// Events older than this are deleted.
    pub events_max_age: Duration,
    /// Each integration keeps at most this many events (its newest).
    pub events_max_per_integration: u64,
    /// Bytes of a `fetch` event's request body kept in the event's stored payload; the rest
    /// is cut, so large requests cannot balloon the log.
    pub events_payload_body_bytes: usize,
    /// How long an idempotency key keeps refusing a re-submission.
    pub idempotency_window: Duration,
    /// How often the retention pass runs.
    pub interval: Duration,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            events_max_age: Duration::from_secs(30 * 24 * 3600),
            events_max_per_integration: 100_000,
            events_payload_body_bytes: 8 * 1024,
            idempotency_window: Duration::from_secs(24 * 3600),
            interval: Duration::from_secs(60),
        }
    }
}

/// Expired tokens are kept this long after expiry (a client's "expired" beats "invalid").
const EXPIRED_TOKENS_KEPT: Duration = Duration::from_secs(24 * 3600);

/// What one pass deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Deleted {
    /// Events past their age or beyond their integration's count.
    pub events: u64,
    /// Dead-lettered and finished jobs.
    pub jobs: u64,
    /// Expired tokens.
    pub tokens: u64,
}

/// Runs a retention pass every interval until `stop` turns true.
pub async fn run(state: AppState, config: RetentionConfig, mut stop: watch::Receiver<bool>) {
    while !*stop.borrow() {
        match enforce(&state.store, &config).await {
            Ok(deleted) if deleted != Deleted::default() => tracing::info!(?deleted, "retention pass"),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "retention pass failed; retrying at the next interval"),
        }
        tokio::select! {
            _ = tokio::time::sleep(config.interval) => {}
            _ = stop.changed() => {}
        }
    }
}

/// One retention pass.
pub async fn enforce(store: &Store, config: &RetentionConfig) -> Result<Deleted, StoreError> {
    let now = now_ms();
    let age_cutoff = now - config.events_max_age.as_millis() as i64;
    let mut deleted = Deleted {
        events: store.delete_events_before(age_cutoff).await?,
        jobs: store.delete_settled_jobs(age_cutoff, now - config.idempotency_window.as_millis() as i64).await?,
        tokens: store.delete_expired_tokens(now - EXPIRED_TOKENS_KEPT.as_millis() as i64).await?,
    };
    let max = i64::try_from(config.events_max_per_integration).unwrap_or(i64::MAX);
    for integration_id in store.integrations_with_more_events_than(max).await? {
        deleted.events += store.keep_newest_events(&integration_id, max).await?;
    }
    Ok(deleted)
}
