//! Samples each integration's queue depth once a minute into the database, so the console
//! can chart the last day of it (the jobs table itself only knows the present).

use std::time::Duration;

use tokio::sync::watch;

use crate::state::AppState;
use crate::store::now_ms;

/// How long samples are kept: the longest chart window.
const KEPT_MS: i64 = 24 * 3600 * 1000;

/// Takes a sample at the start of every minute until `stop` turns true. Every replica
/// samples; the first one's sample of a minute is kept.
pub async fn run(state: AppState, mut stop: watch::Receiver<bool>) {
    loop {
        let now = now_ms();
        let minute = now / 60_000 * 60_000;
        if let Err(error) = state.store.sample_queue_depth(minute, minute - KEPT_MS).await {
            tracing::warn!(%error, "sampling the queue depth failed");
        }
        let next = Duration::from_millis((minute + 60_000 - now) as u64);
        tokio::select! {
            () = tokio::time::sleep(next) => {}
            _ = stop.changed() => return,
        }
    }
}
