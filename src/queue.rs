//! One durable queue for events, tasks and cron firings.
//!
//! Jobs are rows (see `store/queue.rs`); [`worker`] claims due jobs with a lease and runs
//! each through [`crate::dispatch`], retrying failures with exponential backoff and jitter
//! until they go to the dead-letter state; [`cron`] turns schedules into jobs, once per tick
//! across every replica.

pub mod cron;
pub mod depth;
pub mod worker;

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::store::{InstallationRecord, IntegrationRecord, NewJob, Store, StoreError, now_ms};

/// Longest delay a task may be scheduled with (the reference's 86,400 s).
pub const MAX_SCHEDULE_SECS: u32 = 86_400;

/// How the queue runs.
#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// Jobs run at once by this process.
    pub workers: usize,
    /// How long a claim lasts before another worker may take the job over.
    pub lease: Duration,
    /// How often to look for due jobs when nothing woke the worker.
    pub poll_interval: Duration,
    /// Runs of a job before it is declared dead.
    pub max_attempts: i64,
    /// First retry delay; doubles with each attempt (plus jitter).
    pub backoff_base: Duration,
    /// Longest retry delay.
    pub backoff_max: Duration,
    /// How long shutdown waits for running jobs before giving them back.
    pub shutdown_grace: Duration,
    /// Run the worker and the cron scheduler (off for processes that only serve the API).
    pub enabled: bool,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            workers: 64,
            lease: Duration::from_secs(60),
            poll_interval: Duration::from_millis(50),
            max_attempts: 5,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
            shutdown_grace: Duration::from_secs(10),
            enabled: true,
        }
    }
}

/// What request handlers and host calls use to enqueue: the store plus a wake-up for this
/// process's worker (other replicas find new jobs by polling).
#[derive(Clone)]
pub struct QueueHandle {
    wakeup: Arc<Notify>,
    config: QueueConfig,
    lateness: Arc<std::sync::Mutex<LatenessWindow>>,
}

/// The most recent jobs' lateness (due → start), for metrics and benchmarks.
#[derive(Debug, Default)]
struct LatenessWindow {
    samples: std::collections::VecDeque<i64>,
}

/// Jobs whose lateness is remembered.
const LATENESS_WINDOW: usize = 100_000;

impl QueueHandle {
    /// A handle with its own wake-up signal.
    pub fn new(config: QueueConfig) -> Self {
        Self { wakeup: Arc::new(Notify::new()), config, lateness: Default::default() }
    }

    /// Records that a job due at `due_at` started now.
    pub(crate) fn record_start(&self, due_at: i64) {
        let mut window = self.lateness.lock().expect("lateness lock");
        if window.samples.len() == LATENESS_WINDOW {
            window.samples.pop_front();
        }
        window.samples.push_back((now_ms() - due_at).max(0));
    }

    /// Takes the lateness (ms from due to start) of the jobs started since the last call,
    /// up to the last 100,000.
    pub fn take_lateness(&self) -> Vec<i64> {
        self.lateness.lock().expect("lateness lock").samples.drain(..).collect()
    }

    /// The queue's settings.
    pub fn config(&self) -> &QueueConfig {
        &self.config
    }

    /// Stores `jobs` and wakes the worker; returns how many were new.
    pub async fn enqueue(&self, store: &Store, jobs: &[NewJob]) -> Result<u64, StoreError> {
        let inserted = store.enqueue(&self.capped(jobs)).await?;
        self.wakeup.notify_one();
        Ok(inserted)
    }

    /// `jobs` as this queue stores them: attempts capped at the configured maximum. For
    /// callers that store jobs with other rows in one transaction (then [`Self::notify`]).
    pub fn capped(&self, jobs: &[NewJob]) -> Vec<NewJob> {
        jobs.iter()
            .map(|job| NewJob { max_attempts: job.max_attempts.max(1).min(self.config.max_attempts), ..job.clone() })
            .collect()
    }

    /// Wakes this process's worker (after jobs were stored by other means).
    pub fn notify(&self) {
        self.wakeup.notify_one();
    }

    pub(crate) fn wakeup(&self) -> Arc<Notify> {
        self.wakeup.clone()
    }
}

/// Whom a job runs for: an integration (by identity, and its name for display) and, unless
/// it runs at integration level, one of its installations.
#[derive(Debug, Clone, Copy)]
pub struct JobOwner<'a> {
    /// The integration's id.
    pub integration_id: &'a str,
    /// Its name.
    pub integration: &'a str,
    /// The installation, if any.
    pub installation_id: Option<&'a str>,
}

impl<'a> JobOwner<'a> {
    /// A job of `installation`.
    pub fn installation(installation: &'a InstallationRecord) -> Self {
        Self {
            integration_id: &installation.integration_id,
            integration: &installation.integration,
            installation_id: Some(&installation.id),
        }
    }

    /// A job of `integration` itself (no installation).
    pub fn integration(integration: &'a IntegrationRecord) -> Self {
        Self { integration_id: &integration.id, integration: &integration.name, installation_id: None }
    }

    fn job(self, event: Value, due_at: i64, idempotency_key: Option<String>) -> NewJob {
        NewJob {
            id: crate::ids::random("job_", 20),
            integration_id: self.integration_id.to_owned(),
            integration: self.integration.to_owned(),
            installation_id: self.installation_id.map(str::to_owned),
            event,
            due_at,
            max_attempts: i64::MAX,
            idempotency_key,
        }
    }
}

/// A job running `event` for its owner now, with the queue's usual retries
/// (`QueueHandle::enqueue` caps the attempts at the configured maximum).
pub fn event_job(owner: JobOwner<'_>, event: Value) -> NewJob {
    owner.job(event, now_ms(), None)
}

/// A `task` job: `task` runs as `{"type":"task","task":…}` after `schedule_secs`.
pub fn task_job(
    owner: JobOwner<'_>,
    task: Value,
    schedule_secs: u32,
    idempotency_key: Option<String>,
) -> Result<NewJob, String> {
    if !task.is_object() {
        return Err("task must be a JSON object".to_owned());
    }
    if schedule_secs > MAX_SCHEDULE_SECS {
        return Err(format!("schedule must be between 0 and {MAX_SCHEDULE_SECS} seconds"));
    }
    Ok(owner.job(json!({ "type": "task", "task": task }), now_ms() + i64::from(schedule_secs) * 1000, idempotency_key))
}

/// Why a job may not be queued.
#[derive(Debug, thiserror::Error)]
pub enum QuotaError {
    /// The integration has its whole quota of jobs waiting.
    #[error("{0}")]
    Full(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Refuses another job of `integration_id` once it has its quota of jobs waiting, so that
/// one integration cannot fill the shared queue.
pub async fn check_quota(state: &crate::state::AppState, integration_id: &str) -> Result<(), QuotaError> {
    let max = state.tenancy.config.max_queued_per_integration;
    let waiting = state.store.queued_jobs_of(integration_id, max).await?;
    if waiting >= max {
        return Err(QuotaError::Full(format!("this integration already has {max} jobs waiting in the queue")));
    }
    Ok(())
}

/// The delay before retry number `attempt` (1 = first retry): exponential, capped, with
/// full jitter so that a burst of failures does not retry in lockstep.
pub fn backoff(attempt: i64, base: Duration, max: Duration) -> Duration {
    let exponent = attempt.clamp(1, 30) as u32 - 1;
    let ceiling = base.saturating_mul(1 << exponent).min(max);
    let half = ceiling / 2;
    half + rand::thread_rng().gen_range(Duration::ZERO..=half)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter() {
        let (base, max) = (Duration::from_millis(100), Duration::from_secs(1));
        for _ in 0..100 {
            let first = backoff(1, base, max);
            assert!((Duration::from_millis(50)..=Duration::from_millis(100)).contains(&first), "{first:?}");
            let third = backoff(3, base, max);
            assert!((Duration::from_millis(200)..=Duration::from_millis(400)).contains(&third), "{third:?}");
            assert!(backoff(40, base, max) <= max);
        }
    }

    #[test]
    fn tasks_must_be_objects_scheduled_within_a_day() {
        let owner = JobOwner { integration_id: "itg_1", integration: "x", installation_id: None };
        assert!(task_job(owner, json!({"a": 1}), 86_400, None).is_ok());
        assert!(task_job(owner, json!([1]), 0, None).unwrap_err().contains("object"));
        assert!(task_job(owner, json!({}), 86_401, None).unwrap_err().contains("86400"));
    }
}
