//! `weft serve`: settings from flags, environment variables and a config file, logging,
//! and a graceful shutdown on Ctrl-C or SIGTERM.
//!
//! Every setting is one [`ServeArgs`] field: a flag (`--bind`), an environment variable
//! (`WEFT_BIND`) and a config file key (`bind = "…"`), in that order of precedence, then
//! the default given in its help text.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use serde::Deserialize;

use crate::config::ServerConfig;
use crate::server::Server;

#[derive(Debug, Default, Args, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ServeArgs {
    /// Read settings from this TOML file; its keys are the long flags' names
    /// (`bind = "0.0.0.0:8080"`, `max-instances = 256`). Flags and environment variables
    /// win over it.
    #[arg(long, env = "WEFT_CONFIG")]
    #[serde(skip)]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "WEFT_BIND")]
    bind: Option<String>,
    /// Database: sqlite://FILE (created if missing) or postgres://USER@HOST/DB
    /// [default: sqlite://weft.db].
    #[arg(long, env = "WEFT_DATABASE_URL")]
    database_url: Option<String>,
    /// URL clients reach this server at [default: http:// + the bound address].
    #[arg(long, env = "WEFT_PUBLIC_URL")]
    public_url: Option<String>,
    /// The operator's token; generated and printed once for a new database when unset.
    #[arg(long = "admin-token", env = "WEFT_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// The key that seals secrets at rest: 64 hex digits. Required with PostgreSQL; with
    /// SQLite a generated key is kept in <database file>.key when unset.
    #[arg(long = "secret-key", env = "WEFT_SECRET_KEY", hide_env_values = true)]
    secret_key: Option<String>,
    /// Largest request body of the installations' public endpoints, in bytes [default: 1048576].
    #[arg(long, env = "WEFT_MAX_FETCH_BODY_BYTES")]
    max_fetch_body_bytes: Option<usize>,
    /// Bytes of compiled modules kept in memory; past it the least recently used are dropped
    /// and mapped again from their artifact files when next needed [default: 536870912].
    #[arg(long, env = "WEFT_MODULE_CACHE_BYTES")]
    module_cache_bytes: Option<u64>,
    /// Jobs (events, tasks, cron firings) this process runs at once; 0 runs none (API only)
    /// [default: 64].
    #[arg(long, env = "WEFT_WORKERS")]
    workers: Option<usize>,
    /// Seconds a claimed job stays leased: a job whose process died runs again after this
    /// [default: 60].
    #[arg(long, env = "WEFT_JOB_LEASE_SECS")]
    job_lease_secs: Option<u64>,
    /// Runs of a failing job before it is dead-lettered [default: 5].
    #[arg(long, env = "WEFT_MAX_ATTEMPTS")]
    max_attempts: Option<i64>,
    /// Let guests' http.fetch reach loopback, private and link-local addresses.
    #[arg(long, env = "WEFT_ALLOW_PRIVATE_OUTBOUND", num_args = 0..=1, default_missing_value = "true")]
    allow_private_outbound: Option<bool>,
    /// Directory keeping compiled modules as files, mapped on first use instead of read
    /// from the database [default: <database file>.artifacts with SQLite, none with
    /// PostgreSQL].
    #[arg(long, env = "WEFT_ARTIFACT_DIR")]
    artifact_dir: Option<PathBuf>,
    /// How many instances may run at once; further events wait, then get 503 [default: 128].
    #[arg(long, env = "WEFT_MAX_INSTANCES")]
    max_instances: Option<u32>,
    /// Serve /metrics without the operator's token (for a scraper on a private network).
    #[arg(long, env = "WEFT_METRICS_PUBLIC", num_args = 0..=1, default_missing_value = "true")]
    metrics_public: Option<bool>,
    /// How long shutdown waits for running jobs before giving them back to the queue, in
    /// seconds [default: 10].
    #[arg(long, env = "WEFT_SHUTDOWN_GRACE_SECS")]
    shutdown_grace_secs: Option<u64>,
    /// Days the events log keeps an event [default: 30].
    #[arg(long, env = "WEFT_EVENTS_MAX_AGE_DAYS")]
    events_max_age_days: Option<u64>,
    /// Events the log keeps per integration, its newest [default: 100000].
    #[arg(long, env = "WEFT_EVENTS_MAX_PER_INTEGRATION")]
    events_max_per_integration: Option<u64>,
    /// Bytes of a fetch request's body kept in its event's stored payload [default: 8192].
    #[arg(long, env = "WEFT_EVENTS_PAYLOAD_BODY_BYTES")]
    events_payload_body_bytes: Option<usize>,
    /// Hours a task's idempotency key keeps refusing a re-submission [default: 24].
    #[arg(long, env = "WEFT_IDEMPOTENCY_HOURS")]
    idempotency_hours: Option<u64>,
    /// Instances one integration may run at once; its manifest may ask for fewer
    /// (`limits.concurrency`). Further events wait briefly, then get 429 [default: a quarter
    /// of max-instances].
    #[arg(long, env = "WEFT_INTEGRATION_SLOTS")]
    integration_slots: Option<u32>,
    /// Instances one installation may run at once [default: half the integration's share].
    #[arg(long, env = "WEFT_INSTALLATION_SLOTS")]
    installation_slots: Option<u32>,
    /// Requests per second each installation's public endpoint accepts; 0 turns the limit
    /// off [default: 1000].
    #[arg(long, env = "WEFT_FETCH_RATE")]
    fetch_rate: Option<f64>,
    /// Requests above that rate one burst may carry [default: 1000].
    #[arg(long, env = "WEFT_FETCH_BURST")]
    fetch_burst: Option<u32>,
    /// Jobs one integration may have waiting in the queue [default: 50000].
    #[arg(long, env = "WEFT_MAX_QUEUED_PER_INTEGRATION")]
    max_queued_per_integration: Option<i64>,
    /// Tasks one event may queue [default: 100].
    #[arg(long, env = "WEFT_MAX_TASKS_PER_EVENT")]
    max_tasks_per_event: Option<u32>,
    /// Log bytes one integration may add to the events log per minute; past it, events are
    /// kept without their logs. 0 turns it off [default: 16777216].
    #[arg(long, env = "WEFT_LOG_BYTES_PER_MINUTE")]
    log_bytes_per_minute: Option<usize>,
    /// Seconds a client has to send a request's head, and an idle keep-alive connection
    /// stays open [default: 30].
    #[arg(long, env = "WEFT_HEAD_TIMEOUT_SECS")]
    head_timeout_secs: Option<u64>,
    /// Connections open at once; further clients wait to be accepted [default: 4096].
    #[arg(long, env = "WEFT_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// Log format: human-readable text, or one JSON object per line [default: text].
    #[arg(long, env = "WEFT_LOG_FORMAT", value_enum)]
    log_format: Option<LogFormat>,
    /// Which logs to print, as a tracing filter (`info`, `weft=debug,sqlx=warn`); RUST_LOG
    /// works too [default: info,sqlx=warn].
    #[arg(long, env = "WEFT_LOG")]
    log: Option<String>,
}

/// How `weft serve` writes its logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

impl ServeArgs {
    /// The settings given on the command line or in the environment, completed from the
    /// config file named by `--config`.
    fn with_config_file(self) -> anyhow::Result<ServeArgs> {
        let Some(path) = self.config.clone() else { return Ok(self) };
        Ok(self.or(read_config_file(&path)?))
    }

    /// Each setting of `self`, or `file`'s where `self` has none.
    fn or(self, file: ServeArgs) -> ServeArgs {
        macro_rules! merged {
            ($($field:ident),* $(,)?) => { ServeArgs { config: self.config, $($field: self.$field.or(file.$field)),* } };
        }
        merged!(
            bind,
            database_url,
            public_url,
            admin_token,
            secret_key,
            max_fetch_body_bytes,
            module_cache_bytes,
            workers,
            job_lease_secs,
            max_attempts,
            allow_private_outbound,
            artifact_dir,
            max_instances,
            metrics_public,
            shutdown_grace_secs,
            events_max_age_days,
            events_max_per_integration,
            events_payload_body_bytes,
            idempotency_hours,
            integration_slots,
            installation_slots,
            fetch_rate,
            fetch_burst,
            max_queued_per_integration,
            max_tasks_per_event,
            log_bytes_per_minute,
            head_timeout_secs,
            max_connections,
            log_format,
            log,
        )
    }

    /// The server's configuration: these settings over the defaults.
    fn server_config(&self) -> ServerConfig {
        let defaults = ServerConfig::default();
        let mut config = ServerConfig {
            bind: self.bind.clone().unwrap_or(defaults.bind),
            database_url: self.database_url.clone().unwrap_or(defaults.database_url),
            public_url: self.public_url.clone(),
            admin_token: self.admin_token.clone(),
            secret_key: self.secret_key.clone(),
            max_fetch_body_bytes: self.max_fetch_body_bytes.unwrap_or(defaults.max_fetch_body_bytes),
            module_cache_bytes: self.module_cache_bytes.unwrap_or(defaults.module_cache_bytes),
            metrics_public: self.metrics_public.unwrap_or(false),
            artifact_dir: self.artifact_dir.clone(),
            ..ServerConfig::default()
        };
        if let Some(max_instances) = self.max_instances {
            config.runtime.max_instances = max_instances;
        }
        let queue = &mut config.queue;
        queue.workers = self.workers.unwrap_or(queue.workers);
        queue.enabled = queue.workers > 0;
        if let Some(secs) = self.job_lease_secs {
            queue.lease = Duration::from_secs(secs.max(1));
        }
        queue.max_attempts = self.max_attempts.map_or(queue.max_attempts, |attempts| attempts.max(1));
        if let Some(grace) = self.shutdown_grace_secs {
            config.queue.shutdown_grace = Duration::from_secs(grace);
        }
        config.outbound.allow_private_addresses = self.allow_private_outbound.unwrap_or(false);
        let retention = &mut config.retention;
        if let Some(days) = self.events_max_age_days {
            retention.events_max_age = Duration::from_secs(days.max(1) * 24 * 3600);
        }
        retention.events_max_per_integration =
            self.events_max_per_integration.map_or(retention.events_max_per_integration, |max| max.max(1));
        retention.events_payload_body_bytes =
            self.events_payload_body_bytes.unwrap_or(retention.events_payload_body_bytes);
        if let Some(hours) = self.idempotency_hours {
            retention.idempotency_window = Duration::from_secs(hours * 3600);
        }
        let tenancy = &mut config.tenancy;
        tenancy.integration_slots = self.integration_slots.or(tenancy.integration_slots);
        tenancy.installation_slots = self.installation_slots.or(tenancy.installation_slots);
        tenancy.fetch_rate = self.fetch_rate.unwrap_or(tenancy.fetch_rate).max(0.0);
        tenancy.fetch_burst = self.fetch_burst.unwrap_or(tenancy.fetch_burst).max(1);
        tenancy.max_queued_per_integration =
            self.max_queued_per_integration.unwrap_or(tenancy.max_queued_per_integration).max(1);
        tenancy.max_tasks_per_event = self.max_tasks_per_event.unwrap_or(tenancy.max_tasks_per_event);
        tenancy.log_bytes_per_minute = self.log_bytes_per_minute.unwrap_or(tenancy.log_bytes_per_minute);
        if let Some(secs) = self.head_timeout_secs {
            config.connections.head_timeout = Duration::from_secs(secs.max(1));
        }
        config.connections.max_connections = self.max_connections.unwrap_or(config.connections.max_connections).max(1);
        config
    }
}

/// Reads a config file; an unknown key or a wrong type is an error naming it.
fn read_config_file(path: &Path) -> anyhow::Result<ServeArgs> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading the config file {}", path.display()))?;
    toml::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}", e.to_string().trim_end()))
        .with_context(|| format!("in the config file {}", path.display()))
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let args = args.with_config_file()?;
    init_logging(args.log_format.unwrap_or(LogFormat::Text), args.log.as_deref());
    // Installed before the server starts: a SIGTERM sent once "listening" is printed (or
    // during start-up) always stops it gracefully instead of killing it.
    let shutdown = super::shutdown_signal()?;
    let server = Server::start(args.server_config()).await?;
    if let Some(token) = &server.generated_admin_token {
        println!("A new database: generated an admin token. It is shown only this once:\n\n    {token}\n");
    }
    println!("weft listening on {}", server.url());
    tracing::info!(url = %server.url(), "listening");
    shutdown.await;
    tracing::info!("shutting down: finishing requests and running jobs");
    server.stop().await?;
    tracing::info!("stopped");
    Ok(())
}

/// Logs to stderr: RUST_LOG, else `--log`, else `info,sqlx=warn`.
fn init_logging(format: LogFormat, filter: Option<&str>) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| filter.unwrap_or("info,sqlx=warn").into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[derive(Debug, clap::Parser)]
    struct Command {
        #[command(flatten)]
        serve: ServeArgs,
    }

    #[test]
    fn flags_win_over_the_config_file_which_wins_over_defaults() {
        let file: ServeArgs =
            toml::from_str("bind = \"0.0.0.0:9000\"\nworkers = 3\nmetrics-public = true\nlog-format = \"json\"\n")
                .unwrap();
        let flags = Command::try_parse_from(["weft", "--bind", "127.0.0.1:1234", "--allow-private-outbound"]).unwrap();
        let merged = flags.serve.or(file);
        let config = merged.server_config();
        assert_eq!(config.bind, "127.0.0.1:1234");
        assert_eq!(config.queue.workers, 3);
        assert!(config.metrics_public);
        assert!(config.outbound.allow_private_addresses);
        assert_eq!(merged.log_format, Some(LogFormat::Json));
        assert_eq!(config.database_url, "sqlite://weft.db");
        assert_eq!(config.runtime.max_instances, ServerConfig::default().runtime.max_instances);
    }

    #[test]
    fn unknown_config_keys_and_bad_values_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("weft-server.toml");
        std::fs::write(&path, "bnd = \"x\"\n").unwrap();
        let error = format!("{:#}", read_config_file(&path).unwrap_err());
        assert!(error.contains("bnd") && error.contains("weft-server.toml"), "{error}");
        std::fs::write(&path, "workers = \"many\"\n").unwrap();
        let error = format!("{:#}", read_config_file(&path).unwrap_err());
        assert!(error.contains("workers"), "{error}");
    }
}
