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
use crate::modules::ModuleCache;
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
        let (events, events_writer) = EventsLog::spawn(store.clone());
        let state = AppState::new(Shared {
            modules: ModuleCache::new(runtime.clone(), store.clone()),
            store,
            runtime,
            secrets,
            events,
            public_url: public_url.trim_end_matches('/').to_owned(),
            max_fetch_body_bytes: config.max_fetch_body_bytes,
            limits: config.limits.clone(),
        });
        let (shutdown, stop) = oneshot::channel::<()>();
        let app = crate::api::app(state.clone());
        let serving = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stop.await;
                })
                .await
        });
        Ok(Server { addr, generated_admin_token, state, shutdown, serving, events_writer })
    }

    /// The base URL of the server, e.g. `http://127.0.0.1:8080`.
    pub fn url(&self) -> String {
        self.state.public_url.clone()
    }

    /// Stops accepting requests, finishes those in flight, and writes every pending event.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(());
        self.serving.await??;
        self.state.events.flush().await;
        drop(self.state);
        self.events_writer.await?;
        Ok(())
    }
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
async fn bootstrap_admin_token(store: &Store, configured: Option<&str>) -> anyhow::Result<Option<String>> {
    if let Some(token) = configured {
        store.put_token(&hash_token(token), TokenKind::Admin, "bootstrap", None).await?;
        return Ok(None);
    }
    if store.has_admin_token().await? {
        return Ok(None);
    }
    let token = generate_token();
    store.put_token(&hash_token(&token), TokenKind::Admin, "bootstrap", None).await?;
    Ok(Some(token))
}
