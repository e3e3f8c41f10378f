//! Group commit of what events cause: concurrent [`Store::insert_event_work`] calls are
//! gathered by one committer task into one write, and each caller is answered after the
//! commit that holds its rows.
//!
//! Why: on PostgreSQL every commit waits for a WAL flush and every statement is a round trip,
//! so sixteen events arriving together cost sixteen of each when written one by one and one
//! when written together. Durability is unchanged: no caller hears "stored" before its rows
//! are committed. A batch is bounded ([`MAX_EVENTS`], [`MAX_ROWS`]). When a batch's write fails
//! because the database is unavailable, every caller of it gets that error (each answers 503);
//! when it fails for any other reason, each event of it is written again on its own, so one
//! event that cannot be stored fails only its own caller and the others are stored once.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use sqlx::AnyPool;
use tokio::sync::{mpsc, oneshot};

use super::applications::write_event_work as write;
use super::{Backend, NewDelivery, NewJob, Result, Store, StoreError};

/// Most events in one commit.
const MAX_EVENTS: usize = 64;
/// Once a batch holds this many rows (jobs and deliveries), it takes no further event.
const MAX_ROWS: usize = 2_000;
/// Events waiting for the committer before callers wait to hand theirs over.
const QUEUE: usize = 1_024;

/// What one event causes.
struct EventWork {
    jobs: Vec<NewJob>,
    deliveries: Vec<NewDelivery>,
    done: oneshot::Sender<Result<()>>,
}

/// The handle every clone of a [`Store`] shares: where events' work is handed to the committer.
#[derive(Clone)]
pub(super) struct GroupCommit {
    sender: mpsc::Sender<EventWork>,
    /// Events handed over and not answered yet.
    unanswered: Arc<AtomicUsize>,
}

impl GroupCommit {
    /// Starts the committer; it ends when the last handle is dropped.
    pub(super) fn spawn(pool: AnyPool, backend: Backend) -> Self {
        let (sender, receiver) = mpsc::channel(QUEUE);
        let unanswered = Arc::new(AtomicUsize::new(0));
        tokio::spawn(commit_loop(pool, backend, receiver, unanswered.clone()));
        Self { sender, unanswered }
    }
}

impl Store {
    /// Stores what one event causes — its integrations' jobs and its applications'
    /// deliveries — atomically: all of it, or (on an error) none of it, so a caller told to
    /// try again cannot end up with half an event or a duplicate half. Returns once the commit
    /// that holds them is done; concurrent calls share that commit (see the module's doc).
    pub async fn insert_event_work(&self, jobs: Vec<NewJob>, deliveries: Vec<NewDelivery>) -> Result<()> {
        if jobs.is_empty() && deliveries.is_empty() {
            return Ok(());
        }
        let (done, answer) = oneshot::channel();
        self.group_commit.unanswered.fetch_add(1, Ordering::AcqRel);
        if self.group_commit.sender.send(EventWork { jobs, deliveries, done }).await.is_err() {
            self.group_commit.unanswered.fetch_sub(1, Ordering::AcqRel);
            return Err(StoreError::Sql(sqlx::Error::WorkerCrashed));
        }
        // The committer answers every event it took; no answer means it is gone.
        answer.await.unwrap_or(Err(StoreError::Sql(sqlx::Error::WorkerCrashed)))
    }

    /// Events handed to the committer and not answered yet (for tests that arrange batches).
    pub fn unanswered_event_work(&self) -> usize {
        self.group_commit.unanswered.load(Ordering::Acquire)
    }
}

async fn commit_loop(
    pool: AnyPool,
    backend: Backend,
    mut receiver: mpsc::Receiver<EventWork>,
    unanswered: Arc<AtomicUsize>,
) {
    while let Some(first) = receiver.recv().await {
        let mut rows = first.jobs.len() + first.deliveries.len();
        let mut batch = vec![first];
        while batch.len() < MAX_EVENTS && rows < MAX_ROWS {
            let Ok(next) = receiver.try_recv() else { break };
            rows += next.jobs.len() + next.deliveries.len();
            batch.push(next);
        }
        let answered = batch.len();
        commit(&pool, backend, batch).await;
        unanswered.fetch_sub(answered, Ordering::AcqRel);
    }
}

/// Writes a batch and answers each of its callers.
async fn commit(pool: &AnyPool, backend: Backend, batch: Vec<EventWork>) {
    let (mut jobs, mut deliveries, mut callers) = (Vec::new(), Vec::new(), Vec::new());
    for work in batch {
        let (first_job, first_delivery) = (jobs.len(), deliveries.len());
        jobs.extend(work.jobs);
        deliveries.extend(work.deliveries);
        callers.push((work.done, first_job..jobs.len(), first_delivery..deliveries.len()));
    }
    let error = match write(pool, backend, &jobs, &deliveries).await {
        Ok(()) => {
            for (done, ..) in callers {
                let _ = done.send(Ok(()));
            }
            return;
        }
        Err(error) => error,
    };
    if callers.len() == 1 {
        let (done, ..) = callers.pop().expect("one caller");
        let _ = done.send(Err(error));
        return;
    }
    if error.is_unavailable() {
        let error = Arc::new(error);
        for (done, ..) in callers {
            let _ = done.send(Err(StoreError::Shared(error.clone())));
        }
        return;
    }
    tracing::warn!(%error, events = callers.len(), "a group commit failed; writing its events one by one");
    for (done, job_range, delivery_range) in callers {
        let _ = done.send(write(pool, backend, &jobs[job_range], &deliveries[delivery_range]).await);
    }
}
