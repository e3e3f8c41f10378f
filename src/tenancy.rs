//! Fair shares between tenants: what one integration or installation may take of the
//! server's shared instance slots, public endpoint and queue, so that a noisy one cannot
//! starve the others.

pub mod logs;
pub mod rate;
pub mod slots;

use std::time::Duration;

/// Per-tenant shares, each with a documented default (`weft serve --help`).
#[derive(Debug, Clone)]
pub struct TenancyConfig {
    /// Instances one integration may run at once. `None`: a quarter of the pool (at least 1).
    /// An integration's manifest may ask for fewer (`limits.concurrency`), never more.
    pub integration_slots: Option<u32>,
    /// Instances one installation may run at once. `None`: half the integration's share
    /// (at least 1).
    pub installation_slots: Option<u32>,
    /// How long an event waits for its integration's share before it is refused (429).
    pub slot_wait: Duration,
    /// Requests per second each installation's public endpoint accepts (token bucket);
    /// 0 turns the limit off.
    pub fetch_rate: f64,
    /// How many requests above the rate a burst may carry.
    pub fetch_burst: u32,
    /// Jobs one integration may have waiting in the queue.
    pub max_queued_per_integration: i64,
    /// Tasks one event may queue (`task.queue`).
    pub max_tasks_per_event: u32,
    /// Log bytes one integration may add to the events log per minute (per process); past
    /// it, events are recorded with a note instead of their logs. 0 turns it off.
    pub log_bytes_per_minute: usize,
    /// Guests of one integration that compute at once once they have run past one epoch
    /// tick (5 ms); the others wait for a turn. `None`: half the CPUs (at least 1).
    pub cpu_turns: Option<u32>,
    /// Jobs of one integration this process's worker runs at once. `None`: a quarter of the
    /// workers (at least 1).
    pub worker_share: Option<usize>,
}

impl Default for TenancyConfig {
    fn default() -> Self {
        Self {
            integration_slots: None,
            installation_slots: None,
            slot_wait: Duration::from_millis(500),
            fetch_rate: 1000.0,
            fetch_burst: 1000,
            max_queued_per_integration: 50_000,
            max_tasks_per_event: 100,
            log_bytes_per_minute: 16 << 20,
            cpu_turns: None,
            worker_share: None,
        }
    }
}

impl TenancyConfig {
    /// The integration share for a pool of `max_instances`.
    pub fn integration_share(&self, max_instances: u32) -> u32 {
        self.integration_slots.unwrap_or(max_instances / 4).clamp(1, max_instances.max(1))
    }

    /// The installation share for a pool of `max_instances`.
    pub fn installation_share(&self, max_instances: u32) -> u32 {
        let integration = self.integration_share(max_instances);
        self.installation_slots.unwrap_or(integration / 2).clamp(1, integration)
    }

    /// An integration's CPU turns on this machine.
    pub fn cpu_turns(&self) -> u32 {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get() as u32);
        self.cpu_turns.unwrap_or(cpus / 2).max(1)
    }

    /// The worker's per-integration share of `workers`.
    pub fn worker_share(&self, workers: usize) -> usize {
        self.worker_share.unwrap_or(workers / 4).clamp(1, workers.max(1))
    }
}

/// Largest `limits.concurrency` a manifest may ask for; the server's integration share
/// caps it further when it runs.
pub const MAX_MANIFEST_CONCURRENCY: u64 = 4096;

/// The concurrency an integration asked for in its manifest's `limits.concurrency`.
pub fn manifest_concurrency(manifest: &serde_json::Value) -> Option<u32> {
    manifest["limits"]["concurrency"].as_u64().map(|v| v.min(MAX_MANIFEST_CONCURRENCY) as u32)
}

/// The server's fair-share state: one field of [`crate::state::Shared`].
pub struct Tenancy {
    /// The settings.
    pub config: TenancyConfig,
    /// Instance shares.
    pub slots: slots::Slots,
    /// The public endpoint's buckets.
    pub fetch_rate: rate::RateLimiter,
    /// Log bytes per integration.
    pub logs: logs::LogBudget,
}

impl Tenancy {
    /// Shares of a pool of `max_instances`.
    pub fn new(config: TenancyConfig, max_instances: u32) -> Self {
        Self {
            slots: slots::Slots::new(
                config.integration_share(max_instances),
                config.installation_share(max_instances),
                config.slot_wait,
                config.cpu_turns(),
            ),
            fetch_rate: rate::RateLimiter::new(config.fetch_rate, config.fetch_burst),
            logs: logs::LogBudget::new(config.log_bytes_per_minute),
            config,
        }
    }
}
