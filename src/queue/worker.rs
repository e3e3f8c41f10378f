//! The worker: claims due jobs, runs them, and settles each (done, retry, dead).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc, watch};

use super::backoff;
use crate::dispatch::{self, DispatchError, EventRun};
use crate::state::AppState;
use crate::store::{FairClaim, Job, now_ms};

/// Most finished jobs settled in one statement.
const COMPLETE_BATCH: usize = 512;

/// Runs until `stop` turns true, then finishes (or gives back) the jobs it holds.
pub async fn run(state: AppState, owner: String, mut stop: watch::Receiver<bool>) {
    let config = state.queue.config().clone();
    let wakeup = state.queue.wakeup();
    let slots = Arc::new(Semaphore::new(config.workers));
    let (finished, finished_rx) = mpsc::unbounded_channel::<String>();
    let completer = tokio::spawn(complete_in_batches(state.clone(), owner.clone(), finished_rx));
    let shares = WorkerShares::new(state.tenancy.config.worker_share(config.workers));

    while !*stop.borrow() {
        let free = slots.available_permits();
        if free == 0 {
            // Every worker is busy: wait for one to finish.
            tokio::select! {
                permit = slots.acquire() => drop(permit),
                _ = stop.changed() => {}
            }
            continue;
        }
        let fair = shares.claim(free);
        let jobs =
            match state.store.claim_jobs_fairly(&owner, config.lease.as_millis() as i64, free as i64, &fair).await {
                Ok(jobs) => jobs,
                Err(error) => {
                    tracing::warn!(%error, "claiming jobs failed");
                    Vec::new()
                }
            };
        if jobs.is_empty() {
            tokio::select! {
                _ = wakeup.notified() => {}
                _ = tokio::time::sleep(config.poll_interval) => {}
                _ = stop.changed() => {}
            }
            continue;
        }
        for job in jobs {
            let Some(share) = shares.take(&job.integration_id) else {
                // Its integration filled its share since the claim: give the job back as it was.
                if let Err(error) = state.store.release_job(&owner, &job.id, job.due_at).await {
                    tracing::warn!(%error, job = %job.id, "releasing a job failed; its lease will expire");
                }
                continue;
            };
            state.queue.record_start(job.due_at);
            state.metrics.record_lateness(now_ms() - job.due_at);
            let permit = slots.clone().acquire_owned().await.expect("the semaphore is never closed");
            let (state, owner, finished) = (state.clone(), owner.clone(), finished.clone());
            tokio::spawn(async move {
                run_job(&state, &owner, job, &finished).await;
                drop((permit, share));
            });
        }
    }

    // Shutdown: no new claims; let running jobs finish within the grace period.
    let all = u32::try_from(config.workers).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(config.shutdown_grace, slots.acquire_many(all)).await;
    drop(finished);
    // Bounded too: with the database gone the completer would retry forever. Jobs it could
    // not settle stay leased and run again elsewhere once their leases expire.
    if tokio::time::timeout(config.shutdown_grace + Duration::from_secs(5), completer).await.is_err() {
        tracing::warn!("finished jobs could not be settled before shutdown; their leases will expire");
    }
    match state.store.release_owned_jobs(&owner).await {
        Ok(0) => {}
        Ok(released) => tracing::info!(released, "gave back unfinished jobs"),
        Err(error) => tracing::warn!(%error, "giving back jobs failed; their leases will expire"),
    }
}

async fn run_job(state: &AppState, owner: &str, job: Job, finished: &mpsc::UnboundedSender<String>) {
    let store = &state.store;
    // By identity: a job of an unpublished integration never runs in a later one of the
    // same name.
    let integration = match store.integration_by_id(&job.integration_id).await {
        Ok(Some(integration)) => integration,
        Ok(None) => {
            tracing::info!(job = %job.id, integration = %job.integration, "dropping a job of an unpublished integration");
            let _ = finished.send(job.id);
            return;
        }
        Err(error) => return retry(state, owner, &job, &error.to_string()).await,
    };
    let installation = match &job.installation_id {
        None => None,
        Some(id) => match store.installation(&job.integration_id, id).await {
            Ok(Some(installation)) => Some(installation),
            Ok(None) => {
                tracing::info!(job = %job.id, installation = %id, "dropping a job of a removed installation");
                let _ = finished.send(job.id);
                return;
            }
            Err(error) => return retry(state, owner, &job, &error.to_string()).await,
        },
    };
    let last_attempt = job.attempts >= job.max_attempts;
    let run = EventRun {
        integration: &integration,
        installation: installation.as_ref(),
        event: job.event.clone(),
        dead_on_failure: last_attempt,
    };
    match dispatch::run(state, run, |_| Ok(())).await {
        Ok(dispatched) if dispatch::succeeded(&dispatched.report) => {
            let _ = finished.send(job.id);
        }
        Ok(dispatched) => {
            let error = match &dispatched.report.result {
                Ok(weft_runtime::Outcome::Error { code, message }) => format!("handler error {code}: {message}"),
                Err(failure) => failure.to_string(),
                Ok(_) => String::new(),
            };
            retry(state, owner, &job, &error).await;
        }
        Err(DispatchError::Busy | DispatchError::Saturated(_)) => {
            // The server, not the job, is at fault: try again soon without counting it.
            let due = now_ms() + 1000;
            if let Err(error) = store.release_job(owner, &job.id, due).await {
                tracing::warn!(%error, job = %job.id, "releasing a job failed; its lease will expire");
            }
        }
        Err(error) => retry(state, owner, &job, &error.to_string()).await,
    }
}

/// How many jobs of each integration this worker runs, so that one integration's backlog
/// takes at most its share of the workers and the others' due jobs still start at once.
#[derive(Clone)]
struct WorkerShares {
    share: usize,
    running: Arc<Mutex<HashMap<String, usize>>>,
}

/// One running job's place in its integration's share; freed when dropped.
struct ShareGuard {
    integration_id: String,
    running: Arc<Mutex<HashMap<String, usize>>>,
}

impl WorkerShares {
    fn new(share: usize) -> Self {
        Self { share, running: Default::default() }
    }

    /// What the next claim of `free` jobs may take.
    fn claim(&self, free: usize) -> FairClaim {
        let running = self.running.lock().expect("shares lock");
        FairClaim {
            per_integration: self.share.min(free) as i64,
            skip: running.iter().filter(|(_, n)| **n >= self.share).map(|(id, _)| id.clone()).collect(),
        }
    }

    /// A place for a job of `integration_id`, unless its share is full.
    fn take(&self, integration_id: &str) -> Option<ShareGuard> {
        let mut running = self.running.lock().expect("shares lock");
        let count = running.entry(integration_id.to_owned()).or_default();
        if *count >= self.share {
            return None;
        }
        *count += 1;
        Some(ShareGuard { integration_id: integration_id.to_owned(), running: self.running.clone() })
    }
}

impl Drop for ShareGuard {
    fn drop(&mut self) {
        let mut running = self.running.lock().expect("shares lock");
        if let Some(count) = running.get_mut(&self.integration_id) {
            *count -= 1;
            if *count == 0 {
                running.remove(&self.integration_id);
            }
        }
    }
}

/// Schedules the next attempt, or buries the job when it has used them all.
async fn retry(state: &AppState, owner: &str, job: &Job, error: &str) {
    let config = state.queue.config();
    let result = if job.attempts >= job.max_attempts {
        tracing::warn!(job = %job.id, attempts = job.attempts, %error, "job is dead");
        state.store.bury_job(owner, &job.id, error).await
    } else {
        let delay = backoff(job.attempts, config.backoff_base, config.backoff_max);
        state.store.retry_job(owner, &job.id, now_ms() + delay.as_millis() as i64, error).await
    };
    if let Err(error) = result {
        tracing::warn!(%error, job = %job.id, "settling a failed job failed; its lease will expire");
    }
}

/// Settles finished jobs in batches, off the workers' path.
async fn complete_in_batches(state: AppState, owner: String, mut finished: mpsc::UnboundedReceiver<String>) {
    let mut batch = Vec::with_capacity(COMPLETE_BATCH);
    while let Some(id) = finished.recv().await {
        batch.push(id);
        while batch.len() < COMPLETE_BATCH {
            match finished.try_recv() {
                Ok(id) => batch.push(id),
                Err(_) => break,
            }
        }
        // A job is settled only once its event is in the log: a crash in between re-runs
        // the job rather than losing the record that it ran, and so does an event the
        // writer had to give up on (their leases expire and another worker runs them).
        if !state.events.flush().await {
            tracing::warn!("leaving {} finished jobs leased: their events were not recorded", batch.len());
            batch.clear();
            continue;
        }
        let mut delay = Duration::from_millis(20);
        while let Err(error) = state.store.complete_jobs(&owner, &batch).await {
            // Until this succeeds the jobs stay leased; retrying keeps them from running twice.
            tracing::warn!(%error, "completing {} jobs failed; retrying", batch.len());
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(2));
        }
        batch.clear();
    }
}
