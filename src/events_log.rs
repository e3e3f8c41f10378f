//! The events log writer: keeps database writes off the request path by batching them.
//!
//! Handlers hand a finished [`EventRecord`] to [`EventsLog::record`] and move on; one
//! background task writes whatever has accumulated in a single statement.

use std::sync::Arc;
use std::time::Duration;

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

enum Message {
    Record(Box<EventRecord>),
    Flush(oneshot::Sender<()>),
}

/// A handle to the background writer.
#[derive(Clone)]
pub struct EventsLog {
    sender: mpsc::Sender<Message>,
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
        (Self { sender, live, metrics }, tokio::spawn(write_batches(store, receiver)))
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

    /// Waits until every event queued before this call is written.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.sender.send(Message::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

async fn write_batches(store: Store, mut receiver: mpsc::Receiver<Message>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut waiting = Vec::new();
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
        write_with_retry(&store, &batch).await;
        batch.clear();
        for done in waiting.drain(..) {
            let _ = done.send(());
        }
    }
}

/// A busy or briefly unreachable database must not lose events: retry with backoff.
async fn write_with_retry(store: &Store, batch: &[EventRecord]) {
    let mut delay = Duration::from_millis(50);
    for attempt in 1.. {
        match store.insert_events(batch).await {
            Ok(()) => return,
            Err(error) if attempt < 8 => {
                tracing::warn!(%error, attempt, "writing {} events failed; retrying", batch.len());
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(error) => {
                tracing::error!(%error, "dropping {} events after {attempt} attempts", batch.len());
                return;
            }
        }
    }
}
