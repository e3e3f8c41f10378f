//! The events log writer: keeps database writes off the request path by batching them.
//!
//! Handlers hand a finished [`EventRecord`] to [`EventsLog::record`] and move on; one
//! background task writes whatever has accumulated in a single statement.
//!
//! Nothing is dropped: a locked, full or unreachable database holds the batch back and the
//! writer retries until it is written. Meanwhile the bounded queue fills and `record` waits
//! (back-pressure on whoever produces events), readiness reports the outage, and the queue
//! worker, which settles a job only after [`EventsLog::flush`], keeps its jobs leased. Only a
//! stopping server gives up, after [`SHUTDOWN_GRACE`] of failures, and says how many it lost.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::metrics::Metrics;
use crate::store::{EventRecord, Store};

/// Most events written in one statement.
const MAX_BATCH: usize = 256;
/// How long the writer lets events gather after the first one arrives. No request waits on
/// it (handlers have moved on); [`EventsLog::flush`] waits at most this much longer.
const LINGER: Duration = Duration::from_millis(5);
/// Events waiting to be written before `record` waits (back-pressure on a slow database).
const QUEUE_CAPACITY: usize = 16_384;
/// How long a stopping server keeps retrying a batch the database refuses.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// The longest pause between two attempts at a refused batch.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(2);

enum Message {
    Record(Box<EventRecord>),
    /// Answered with whether every event queued before it was written.
    Flush(oneshot::Sender<bool>),
}

/// A handle to the background writer.
#[derive(Clone)]
pub struct EventsLog {
    sender: mpsc::Sender<Message>,
    /// When the batch being written first failed (ms), 0 while writes succeed.
    failing_since: Arc<AtomicI64>,
    /// Subscribers of live events (`weft tail`, the dev stream).
    live: crate::dev::LiveEvents,
    /// Every recorded event is counted here too.
    metrics: Arc<Metrics>,
}

impl EventsLog {
    /// Starts the writer. It stops once every handle is dropped and the queue is drained.
    pub fn spawn(store: Store, metrics: Arc<Metrics>) -> (Self, JoinHandle<()>) {
        let (sender, receiver) = mpsc::channel(QUEUE_CAPACITY);
        let live = crate::dev::LiveEvents::default();
        let failing_since = Arc::new(AtomicI64::new(0));
        let writer = tokio::spawn(write_batches(store, receiver, failing_since.clone()));
        (Self { sender, failing_since, live, metrics }, writer)
    }

    /// Whether events are being written: `false` while the database refuses them.
    pub fn healthy(&self) -> bool {
        self.failing_since.load(Ordering::Relaxed) == 0
    }

    /// Queues an event for writing.
    pub async fn record(&self, event: EventRecord) {
        self.live.publish(&event);
        self.metrics.record_event(&event);
        if self.sender.send(Message::Record(Box::new(event))).await.is_err() {
            tracing::error!("events log writer has stopped; an event was not recorded");
        }
    }

    /// The live feed of recorded events.
    pub fn live(&self) -> &crate::dev::LiveEvents {
        &self.live
    }

    /// Waits until every event queued before this call is written; `false` when some could
    /// not be (the writer gave up on them while the server stopped), so whoever waits must
    /// not count them as recorded.
    pub async fn flush(&self) -> bool {
        let (done, wait) = oneshot::channel();
        if self.sender.send(Message::Flush(done)).await.is_err() {
            return false;
        }
        wait.await.unwrap_or(false)
    }
}

async fn write_batches(store: Store, mut receiver: mpsc::Receiver<Message>, failing_since: Arc<AtomicI64>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut waiting = Vec::new();
    // Once a batch is given up on, no later flush can promise that everything before it
    // was written.
    let mut written = true;
    while let Some(first) = receiver.recv().await {
        if matches!(first, Message::Record(_)) && receiver.len() < MAX_BATCH {
            // Let a busy server's events gather: every commit costs the database about the
            // same whatever its size, so fewer, larger batches leave more CPU for requests.
            tokio::time::sleep(LINGER).await;
        }
        let mut next = Some(first);
        while let Some(message) = next {
            match message {
                Message::Record(event) => batch.push(*event),
                Message::Flush(done) => waiting.push(done),
            }
            next = if batch.len() < MAX_BATCH { receiver.try_recv().ok() } else { None };
        }
        written &= write_until_written(&store, &batch, &receiver, &failing_since).await;
        batch.clear();
        for done in waiting.drain(..) {
            let _ = done.send(written);
        }
    }
}

/// Writes `batch`, retrying with backoff for as long as the database refuses it; gives up
/// (`false`) only once the server is stopping (every handle dropped) and [`SHUTDOWN_GRACE`]
/// has passed.
async fn write_until_written(
    store: &Store,
    batch: &[EventRecord],
    receiver: &mpsc::Receiver<Message>,
    failing_since: &AtomicI64,
) -> bool {
    if batch.is_empty() {
        return true;
    }
    let mut delay = Duration::from_millis(50);
    let mut first_failure: Option<Instant> = None;
    let mut written = true;
    for attempt in 1.. {
        let error = match store.insert_events(batch).await {
            Ok(()) => break,
            Err(error) => error,
        };
        let since = *first_failure.get_or_insert_with(Instant::now);
        failing_since.compare_exchange(0, crate::store::now_ms(), Ordering::Relaxed, Ordering::Relaxed).ok();
        if receiver.is_closed() && since.elapsed() >= SHUTDOWN_GRACE {
            tracing::error!(%error, "stopping: {} events could not be written after {attempt} attempts", batch.len());
            written = false;
            break;
        }
        tracing::warn!(%error, attempt, "writing {} events failed; retrying", batch.len());
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(MAX_RETRY_DELAY);
    }
    failing_since.store(0, Ordering::Relaxed);
    written
}
