//! Server settings.

use weft_runtime::{Limits, RuntimeConfig};

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
        }
    }
}
