//! Starting and stopping a server: database, bootstrap token, runtime, listener.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use weft_runtime::Runtime;

use crate::auth::{generate_token, hash_token};
use crate::config::ServerConfig;
use crate::crypto::SecretBox;
use crate::events_log::EventsLog;
use crate::metrics::Metrics;
use crate::modules::ModuleCache;
use crate::outbound::Outbound;
use crate::queue::QueueHandle;
use crate::state::{AppState, Shared};
use crate::store::{Store, TokenKind};

/// A running server.
pub struct Server {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// The admin token generated for a new database, when none was configured.
    pub generated_admin_token: Option<String>,
    state: AppState,
    shutdown: oneshot::Sender<()>,
    serving: JoinHandle<std::io::Result<()>>,
    events_writer: JoinHandle<()>,
    background: Background,
    applications_worker: crate::applications::DeliveryWorker,
}

impl Server {
    /// Connects to the database (migrating it), binds the listener and starts serving.
    pub async fn start(config: ServerConfig) -> anyhow::Result<Server> {
        let store = Store::connect(&config.database_url)
            .await
            .with_context(|| format!("opening database {}", config.database_url))?;
        let generated_admin_token = bootstrap_admin_token(&store, config.admin_token.as_deref()).await?;
        let secrets = secret_box(&config, &store)?;
        let runtime = Arc::new(Runtime::new(config.runtime.clone())?);
        let listener = TcpListener::bind(&config.bind).await.with_context(|| format!("binding {}", config.bind))?;
        let addr = listener.local_addr()?;
        let public_url = config.public_url.clone().unwrap_or_else(|| format!("http://{addr}"));
        let metrics = Arc::new(Metrics::default());
        let (events, events_writer) = EventsLog::spawn(store.clone(), metrics.clone());
        let state = AppState::new(Shared {
            modules: ModuleCache::new(
                runtime.clone(),
                store.clone(),
                artifact_dir(&config, &store),
                config.module_cache_bytes,
            ),
            store,
            runtime,
            secrets,
            queue: QueueHandle::new(config.queue.clone()),
            targets: Default::default(),
            environments: Default::default(),
            outbound: Outbound::new(config.outbound.clone()).with_own_origin(&public_url),
            events,
            public_url: public_url.trim_end_matches('/').to_owned(),
            max_fetch_body_bytes: config.max_fetch_body_bytes,
            events_payload_body_bytes: config.retention.events_payload_body_bytes,
            limits: config.limits.clone(),
            dev: crate::dev::DevHub::from_env().allowing_private_addresses(config.outbound.allow_private_addresses),
            metrics,
            metrics_public: config.metrics_public,
            draining: false.into(),
            delivery_wake: Default::default(),
            tenancy: crate::tenancy::Tenancy::new(config.tenancy.clone(), config.runtime.max_instances),
        });
        let (shutdown, stop) = oneshot::channel::<()>();
        let app = crate::api::app(state.clone()).merge(crate::console::router());
        let connections = config.connections.clone();
        let serving = tokio::spawn(async move {
            axum::serve(crate::connections::GuardedListener::new(listener, connections), app)
                .with_graceful_shutdown(async {
                    let _ = stop.await;
                })
                .await
        });
        let applications_worker = crate::applications::DeliveryWorker::spawn(state.clone());
        let background = Background::spawn(&state, config.queue.enabled, config.retention.clone());
        Ok(Server {
            addr,
            generated_admin_token,
            state,
            shutdown,
            serving,
            events_writer,
            applications_worker,
            background,
        })
    }

    /// The shared state, for in-process callers such as tests of event delivery.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The base URL of the server, e.g. `http://127.0.0.1:8080`.
    pub fn url(&self) -> String {
        self.state.public_url.clone()
    }

    /// Stops accepting requests, finishes those in flight, and writes every pending event.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.state.draining.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = self.shutdown.send(());
        // Live streams and dev tunnels would otherwise hold the graceful shutdown open.
        self.state.dev.shutdown();
        self.serving.await??;
        self.background.stop().await;
        let _ = self.state.events.flush().await;
        self.applications_worker.stop().await;
        drop(self.state);
        self.events_writer.await?;
        Ok(())
    }
}

/// Where compiled modules are kept as files: configured, or beside a SQLite database.
fn artifact_dir(config: &ServerConfig, store: &Store) -> Option<PathBuf> {
    config
        .artifact_dir
        .clone()
        .or_else(|| store.sqlite_path().map(|path| PathBuf::from(format!("{}.artifacts", path.display()))))
}

/// The server key: configured, or (SQLite only) kept in `<database file>.key`.
fn secret_box(config: &ServerConfig, store: &Store) -> anyhow::Result<SecretBox> {
    if let Some(key) = &config.secret_key {
        return SecretBox::from_encoded(key);
    }
    match store.sqlite_path() {
        Some(path) => SecretBox::load_or_create(None, &PathBuf::from(format!("{}.key", path.display()))),
        None => anyhow::bail!("set WEFT_SECRET_KEY (64 hex digits): every PostgreSQL replica must share the same key"),
    }
}

/// Registers the configured admin token, or generates one for a database that has none.
///
/// A configured token is the only admin token: rotating `WEFT_ADMIN_TOKEN` and restarting
/// retires the old one (and a generated one), on every replica sharing the database.
async fn bootstrap_admin_token(store: &Store, configured: Option<&str>) -> anyhow::Result<Option<String>> {
    if let Some(token) = configured {
        let hash = hash_token(token);
        store.put_token(&hash, TokenKind::Admin, "bootstrap", None).await?;
        let retired = store.retire_admin_tokens_except(&hash).await?;
        if retired > 0 {
            tracing::info!(retired, "retired admin tokens other than the configured one");
        }
        return Ok(None);
    }
    if store.has_admin_token().await? {
        return Ok(None);
    }
    let token = generate_token();
    store.put_token(&hash_token(&token), TokenKind::Admin, "bootstrap", None).await?;
    Ok(Some(token))
}

/// The queue worker and the cron scheduler of this process.
struct Background {
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Background {
    fn spawn(state: &AppState, enabled: bool, retention: crate::retention::RetentionConfig) -> Self {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mut tasks = vec![tokio::spawn(crate::retention::run(state.clone(), retention, stopped.clone()))];
        tasks.push(tokio::spawn(crate::queue::depth::run(state.clone(), stopped.clone())));
        if enabled {
            // Each process claims jobs under its own name, so leases tell replicas apart.
            let owner = crate::ids::random("worker_", 12);
            tasks.push(tokio::spawn(crate::queue::worker::run(state.clone(), owner, stopped.clone())));
            tasks.push(tokio::spawn(crate::queue::cron::run(state.clone(), stopped)));
        }
        Self { stop, tasks }
    }

    /// Stops claiming, lets running jobs finish (or gives them back) and stops the scheduler.
    async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}
