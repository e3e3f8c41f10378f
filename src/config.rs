//! Server settings.

use weft_runtime::{Limits, RuntimeConfig};

use crate::outbound::OutboundConfig;
use crate::queue::QueueConfig;
use crate::retention::RetentionConfig;

/// How a server runs: what the CLI flags and environment configure.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on; port 0 picks a free port.
    pub bind: String,
    /// `sqlite://FILE` (the default, created if missing) or `postgres://…`.
    pub database_url: String,
    /// The URL clients reach this server at, used in `urls.publicEndpoint`. Defaults to
    /// `http://` + the bound address.
    pub public_url: Option<String>,
    /// The operator's token. When unset and the database has no admin token yet, one is
    /// generated and printed once.
    pub admin_token: Option<String>,
    /// The server key that seals secrets at rest (64 hex digits or base64 of 32 bytes).
    /// When unset, SQLite servers keep a generated key in a file beside the database;
    /// PostgreSQL servers require it, since every replica must share it.
    pub secret_key: Option<String>,
    /// Largest request body the public fetch endpoint accepts.
    pub max_fetch_body_bytes: usize,
    /// Limits every integration runs with (capped by `runtime.max_limits`).
    pub limits: Limits,
    /// The sandbox's settings.
    pub runtime: RuntimeConfig,
    /// The job queue's settings.
    pub queue: QueueConfig,
    /// Guests' outbound HTTP.
    pub outbound: OutboundConfig,
    /// Serve `/metrics` without the operator's token (for a scraper on a private network).
    pub metrics_public: bool,
    /// Where compiled modules are kept as files, mapped on first use instead of read from
    /// the database. Default: `<database file>.artifacts` with SQLite, none with PostgreSQL.
    pub artifact_dir: Option<std::path::PathBuf>,
    /// Bytes of compiled machine code each process keeps in memory; past it the least
    /// recently used modules are dropped (and mapped again from their files when needed).
    pub module_cache_bytes: u64,
    /// What the events log, the queue and the tokens keep, and for how long.
    pub retention: RetentionConfig,
    /// Each tenant's share of slots, public endpoint and queue.
    pub tenancy: crate::tenancy::TenancyConfig,
    /// Head timeout and the cap on open connections.
    pub connections: crate::connections::ConnectionConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8080".to_owned(),
            database_url: "sqlite://weft.db".to_owned(),
            public_url: None,
            admin_token: None,
            secret_key: None,
            max_fetch_body_bytes: 1 << 20,
            limits: Limits::default(),
            runtime: RuntimeConfig::default(),
            queue: QueueConfig::default(),
            outbound: OutboundConfig::default(),
            metrics_public: false,
            artifact_dir: None,
            module_cache_bytes: 512 << 20,
            retention: RetentionConfig::default(),
            tenancy: Default::default(),
            connections: Default::default(),
        }
    }
}

/// An integration's own limits from its manifest's `limits` object (`memoryBytes`,
/// `deadlineMs`, `logBytes`, `outputBytes`, `hostCalls`, `outboundRequests`), each falling
/// back to the server's default. The runtime caps them at the server-wide maxima.
pub fn integration_limits(manifest: &serde_json::Value, defaults: &Limits) -> Limits {
    let field = |name: &str| manifest["limits"][name].as_u64();
    Limits {
        memory_bytes: field("memoryBytes").map_or(defaults.memory_bytes, |v| v as usize),
        deadline: field("deadlineMs").map_or(defaults.deadline, std::time::Duration::from_millis),
        log_bytes: field("logBytes").map_or(defaults.log_bytes, |v| v as usize),
        output_bytes: field("outputBytes").map_or(defaults.output_bytes, |v| v as usize),
        host_calls: field("hostCalls").map_or(defaults.host_calls, |v| v.min(u64::from(u32::MAX)) as u32),
        outbound_requests: field("outboundRequests")
            .map_or(defaults.outbound_requests, |v| v.min(u64::from(u32::MAX)) as u32),
    }
}

/// Checks a manifest's `limits` against the server-wide maxima; the error names the field.
pub fn check_integration_limits(limits: &serde_json::Value, max: &Limits) -> Result<(), String> {
    let Some(fields) = limits.as_object() else {
        return if limits.is_null() { Ok(()) } else { Err("limits must be an object".to_owned()) };
    };
    let maxima = [
        ("memoryBytes", max.memory_bytes as u64),
        ("deadlineMs", max.deadline.as_millis() as u64),
        ("logBytes", max.log_bytes as u64),
        ("outputBytes", max.output_bytes as u64),
        ("hostCalls", u64::from(max.host_calls)),
        ("outboundRequests", u64::from(max.outbound_requests)),
    ];
    for (name, value) in fields {
        if name == "concurrency" {
            // The server's integration share caps it further when events run.
            let max = crate::tenancy::MAX_MANIFEST_CONCURRENCY;
            match value.as_u64() {
                Some(v) if (1..=max).contains(&v) => continue,
                _ => return Err(format!("limits.concurrency must be a whole number from 1 to {max}")),
            }
        }
        let Some((_, ceiling)) = maxima.iter().find(|(known, _)| known == name) else {
            return Err(format!(
                "limits.{name} is not a limit; use {}, concurrency",
                maxima.map(|(n, _)| n).join(", ")
            ));
        };
        match value.as_u64() {
            Some(v) if (1..=*ceiling).contains(&v) => {}
            _ => {
                return Err(format!("limits.{name} must be a whole number from 1 to {ceiling} (the server's maximum)"));
            }
        }
    }
    Ok(())
}
