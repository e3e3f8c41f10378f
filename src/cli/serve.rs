//! `weft serve`.

use clap::Args;

use crate::config::ServerConfig;
use crate::server::Server;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "WEFT_BIND", default_value = "127.0.0.1:8080")]
    bind: String,
    /// Database: sqlite://FILE (created if missing) or postgres://USER@HOST/DB.
    #[arg(long, env = "WEFT_DATABASE_URL", default_value = "sqlite://weft.db")]
    database_url: String,
    /// URL clients reach this server at (default: http:// + the bound address).
    #[arg(long, env = "WEFT_PUBLIC_URL")]
    public_url: Option<String>,
    /// The operator's token; generated and printed once for a new database when unset.
    #[arg(long = "admin-token", env = "WEFT_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// The key that seals secrets at rest: 64 hex digits. Required with PostgreSQL; with
    /// SQLite a generated key is kept in <database file>.key when unset.
    #[arg(long = "secret-key", env = "WEFT_SECRET_KEY", hide_env_values = true)]
    secret_key: Option<String>,
    /// Largest request body of the installations' public endpoints, in bytes.
    #[arg(long, env = "WEFT_MAX_FETCH_BODY_BYTES", default_value_t = 1 << 20)]
    max_fetch_body_bytes: usize,
    /// Jobs (events, tasks, cron firings) this process runs at once; 0 runs none (API only).
    #[arg(long, env = "WEFT_WORKERS", default_value_t = 64)]
    workers: usize,
    /// Seconds a claimed job stays leased: a job whose process died runs again after this.
    #[arg(long, env = "WEFT_JOB_LEASE_SECS", default_value_t = 60)]
    job_lease_secs: u64,
    /// Runs of a failing job before it is dead-lettered.
    #[arg(long, env = "WEFT_MAX_ATTEMPTS", default_value_t = 5)]
    max_attempts: i64,
    /// Let guests' http.fetch reach loopback, private and link-local addresses.
    #[arg(long, env = "WEFT_ALLOW_PRIVATE_OUTBOUND")]
    allow_private_outbound: bool,
    /// How many instances may run at once; further events wait, then get 503.
    #[arg(long, env = "WEFT_MAX_INSTANCES", default_value_t = 128)]
    max_instances: u32,
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .init();
    let mut config = ServerConfig {
        bind: args.bind,
        database_url: args.database_url,
        public_url: args.public_url,
        admin_token: args.admin_token,
        secret_key: args.secret_key,
        max_fetch_body_bytes: args.max_fetch_body_bytes,
        ..ServerConfig::default()
    };
    config.runtime.max_instances = args.max_instances;
    config.queue.workers = args.workers;
    config.queue.enabled = args.workers > 0;
    config.queue.lease = std::time::Duration::from_secs(args.job_lease_secs.max(1));
    config.queue.max_attempts = args.max_attempts.max(1);
    config.outbound.allow_private_addresses = args.allow_private_outbound;
    let server = Server::start(config).await?;
    if let Some(token) = &server.generated_admin_token {
        println!("A new database: generated an admin token. It is shown only this once:\n\n    {token}\n");
    }
    println!("weft listening on {}", server.url());
    shutdown_signal().await;
    tracing::info!("shutting down");
    server.stop().await
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("install SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
