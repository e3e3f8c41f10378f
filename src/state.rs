//! The state shared by every request handler.

use std::ops::Deref;
use std::sync::Arc;

use weft_runtime::{Limits, Runtime};

use crate::crypto::SecretBox;
use crate::events_log::EventsLog;
use crate::modules::ModuleCache;
use crate::outbound::Outbound;
use crate::queue::QueueHandle;
use crate::store::Store;

/// Cheap to clone; everything lives behind one `Arc`.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// What [`AppState`] holds.
pub struct Shared {
    /// The database.
    pub store: Store,
    /// The sandbox.
    pub runtime: Arc<Runtime>,
    /// Prepared modules by integration version.
    pub modules: ModuleCache,
    /// Seals and opens secrets stored in the database.
    pub secrets: SecretBox,
    /// The public endpoint's integration and installation lookups.
    pub targets: crate::targets::TargetCache,
    /// The encoded `environment` of each installation's invocations.
    pub environments: crate::environments::EnvironmentCache,
    /// Enqueues jobs and wakes the worker.
    pub queue: QueueHandle,
    /// Guests' outbound HTTP client and policy.
    pub outbound: Outbound,
    /// Batched writer of the events log.
    pub events: EventsLog,
    /// Base URL of this server, without a trailing slash.
    pub public_url: String,
    /// Largest body the public fetch endpoint accepts.
    pub max_fetch_body_bytes: usize,
    /// Bytes of a fetch request's body kept in its event's stored payload.
    pub events_payload_body_bytes: usize,
    /// Limits each integration runs with.
    pub limits: Limits,
    /// Dev mode: cached flags, reverse tunnels, forwarding.
    pub dev: crate::dev::DevHub,
    /// Counters and histograms served at `/metrics`.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Whether `/metrics` answers without the operator's token.
    pub metrics_public: bool,
    /// Set when shutdown begins, so readiness answers 503 and load balancers move on.
    pub draining: std::sync::atomic::AtomicBool,
    /// Each tenant's share of slots, public endpoint and queue.
    pub tenancy: crate::tenancy::Tenancy,
    /// Wakes this server's application delivery worker.
    pub delivery_wake: crate::applications::delivery::Wake,
}

impl AppState {
    /// Wraps the shared parts.
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}
