//! All of weft's SQL. One [`Store`] serves both backends through sqlx's `Any` driver: the
//! queries use `$N` placeholders, which SQLite and PostgreSQL both accept (except the large
//! multi-row inserts: see [`placeholders`]), and only portable types (`TEXT`, `BIGINT`, blobs).

mod applications;
mod cron;
mod dev;
mod event_work;
mod events;
mod installations;
mod integrations;
mod kv;
mod orgs;
mod place_installations;
mod queue;
mod retention;
mod shared_reads;
mod stats;
mod subscriptions;
mod tokens;
mod users;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Executor};

pub use applications::{
    AppFilter, AppOrder, AppSecret, AppTokenRecord, ApplicationRecord, Authorizations, DeliveryAttempt, DeliveryRecord,
    DeliveryRoute, ListRefusal, NewDelivery, OAuthCode, ParameterLimit, PrivateAppRecord, Redeemed, RefreshToken,
    SshKeyRecord, SubscriptionRecord, TooManyContexts, UnfurlKind, WebhookRecord,
};
pub use cron::ScheduledIntegration;
pub use dev::DevModeRecord;
pub use events::{EventFilter, EventPage, EventRecord};
pub use installations::{InstallationFilter, InstallationRecord, InstallationUpdate, NewInstallation};
pub use integrations::{IntegrationRecord, ModuleFacts, NewVersion, VersionSummary};
pub use kv::{installation_scope, integration_scope};
pub use orgs::{OrgRecord, PlaceKind, PlaceRecord};
pub use place_installations::{PlaceInstallationFilter, PlaceInstallationRecord};
pub use queue::{FairClaim, Job, JobSummary, NewJob};
pub use stats::{QueueDepth, Stats, StatsScope, StatusCounts};
pub use subscriptions::ScopedInstallation;
pub use tokens::{TokenInfo, TokenKind, TokenRecord};
pub use users::{MemberRecord, UserRecord};

/// How long a SQLite statement waits for another writer's lock before it fails as busy
/// (the API then answers 503 with `Retry-After`).
const SQLITE_BUSY_TIMEOUT: &str = "PRAGMA busy_timeout = 5000";

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An embedded SQLite file (the default).
    Sqlite,
    /// A PostgreSQL server, shared by several replicas.
    Postgres,
}

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL names neither SQLite nor PostgreSQL.
    #[error("unsupported database url `{0}`: use sqlite://FILE or postgres://…")]
    UnsupportedUrl(String),
    /// A query failed.
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
    /// Applying migrations failed.
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A JSON column holds something unexpected.
    #[error("corrupt JSON in the database: {0}")]
    Json(#[from] serde_json::Error),
    /// The write this caller's rows shared with other callers' failed (a group commit of
    /// events' work while the database was unavailable): each of them gets the same error.
    #[error(transparent)]
    Shared(std::sync::Arc<StoreError>),
}

impl StoreError {
    /// Whether the database is momentarily unable to answer — locked by another writer, out
    /// of disk or memory, unreachable, shutting down — rather than refusing the request
    /// itself. Callers answer 503 with `Retry-After` and retry; nothing about the request
    /// was wrong.
    pub fn is_unavailable(&self) -> bool {
        if let StoreError::Shared(error) = self {
            return error.is_unavailable();
        }
        let StoreError::Sql(error) = self else { return false };
        match error {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => true,
            sqlx::Error::Database(error) => error.code().is_some_and(|code| unavailable_code(&code)),
            _ => false,
        }
    }
}

/// SQLite result codes (the primary code is the low byte of an extended one): BUSY (5),
/// LOCKED (6), NOMEM (7), IOERR (10), FULL (13), CANTOPEN (14). PostgreSQL SQLSTATE classes:
/// 08 connection exception, 53 insufficient resources (disk full, out of memory, too many
/// connections), 57P operator intervention (shutdown, crash recovery).
fn unavailable_code(code: &str) -> bool {
    if let Ok(sqlite) = code.parse::<u32>() {
        return matches!(sqlite & 0xff, 5 | 6 | 7 | 10 | 13 | 14);
    }
    code.starts_with("08") || code.starts_with("53") || code.starts_with("57P")
}

/// Result type of the storage layer.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The database behind the server.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    sqlite_path: Option<PathBuf>,
    /// Bumped by every write to integrations and installations in this process, so caches
    /// of them (see `crate::targets`) know at once when they are stale.
    catalog_generation: Arc<AtomicU64>,
    /// Where events' jobs and deliveries go to be committed together ([`event_work`]).
    group_commit: event_work::GroupCommit,
    /// Token and event-routing reads in flight, shared by concurrent requests ([`shared_reads`]).
    token_reads: shared_reads::SharedReads<String, Option<TokenRecord>>,
    route_reads: shared_reads::SharedReads<String, Vec<DeliveryRoute>>,
    scope_reads: shared_reads::SharedReads<shared_reads::ScopeKey, Option<Vec<ScopedInstallation>>>,
}

impl Store {
    /// Connects to `url` (creating a SQLite file if needed) and applies pending migrations.
    pub async fn connect(url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let (backend, url, sqlite_path) =
            if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
                let separator = if path.contains('?') { '&' } else { '?' };
                let file = PathBuf::from(path.split('?').next().unwrap_or(path));
                let url =
                    if path.contains("mode=") { url.to_owned() } else { format!("sqlite://{path}{separator}mode=rwc") };
                (Backend::Sqlite, url, Some(file))
            } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
                (Backend::Postgres, url.to_owned(), None)
            } else {
                return Err(StoreError::UnsupportedUrl(url.to_owned()));
            };
        let options = AnyPoolOptions::new().max_connections(match backend {
            Backend::Sqlite => 8,
            Backend::Postgres => 16,
        });
        let options = if backend == Backend::Sqlite {
            options.after_connect(|conn, _meta| {
                Box::pin(async move {
                    // WAL lets readers run beside the one writer; NORMAL sync is durable
                    // across process crashes, which is what a WAL server needs.
                    conn.execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
                        .await?;
                    conn.execute(SQLITE_BUSY_TIMEOUT).await?;
                    Ok(())
                })
            })
        } else {
            options
        };
        let pool = options.connect(&url).await?;
        match backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite").run(&pool).await?,
            Backend::Postgres => sqlx::migrate!("./migrations/postgres").run(&pool).await?,
        }
        let group_commit = event_work::GroupCommit::spawn(pool.clone(), backend);
        Ok(Self {
            pool,
            backend,
            sqlite_path,
            catalog_generation: Arc::default(),
            group_commit,
            token_reads: Default::default(),
            route_reads: Default::default(),
            scope_reads: Default::default(),
        })
    }

    /// Whether the database would take a write now (readiness): on SQLite, whether the
    /// write lock can be had within a second (`BEGIN IMMEDIATE`, then rolled back: nothing is
    /// written); on PostgreSQL, whether the server answers.
    pub async fn probe_write(&self) -> Result<()> {
        let mut connection = self.pool.acquire().await?;
        match self.backend {
            Backend::Postgres => {
                connection.execute("SELECT 1").await?;
            }
            Backend::Sqlite => {
                // A short wait of its own: readiness must answer quickly while locked.
                connection.execute("PRAGMA busy_timeout = 1000").await?;
                let began = connection.execute("BEGIN IMMEDIATE").await;
                if began.is_ok() {
                    connection.execute("ROLLBACK").await?;
                }
                connection.execute(SQLITE_BUSY_TIMEOUT).await?;
                began?;
            }
        }
        Ok(())
    }

    /// Changes whenever this process writes an integration or an installation.
    pub fn catalog_generation(&self) -> u64 {
        self.catalog_generation.load(Ordering::Acquire)
    }

    /// Marks cached integrations and installations stale.
    pub(crate) fn catalog_changed(&self) {
        self.catalog_generation.fetch_add(1, Ordering::AcqRel);
    }

    /// The database file, for SQLite.
    pub fn sqlite_path(&self) -> Option<&Path> {
        self.sqlite_path.as_deref()
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Applies `set` to the row `id` of `owner` (`(column, value)`) in `table` when
    /// `condition` holds (`$3` in `set` is the time now): `Some(true)` when it did,
    /// `Some(false)` when the row exists but `condition` does not hold, `None` when there is no
    /// such row (the shape of "retry this dead job / settled delivery").
    pub(crate) async fn update_if(
        &self,
        table: &str,
        (owner_column, owner): (&str, &str),
        id: &str,
        set: &str,
        condition: &str,
    ) -> Result<Option<bool>> {
        let updated =
            sqlx::query(&format!("UPDATE {table} SET {set} WHERE id = $1 AND {owner_column} = $2 AND {condition}"))
                .bind(id)
                .bind(owner)
                .bind(now_ms())
                .execute(&self.pool)
                .await?
                .rows_affected();
        if updated == 1 {
            return Ok(Some(true));
        }
        let exists = sqlx::query(&format!("SELECT id FROM {table} WHERE id = $1 AND {owner_column} = $2"))
            .bind(id)
            .bind(owner)
            .fetch_optional(&self.pool)
            .await?;
        Ok(exists.map(|_| false))
    }

    /// Makes every transaction that calls this with the same `key` run its next statements
    /// one after another, until it ends: how a limit checked and enforced by a statement
    /// (`INSERT … SELECT … WHERE (SELECT COUNT(*) …) < $max`) holds exactly under
    /// PostgreSQL's READ COMMITTED, where two such statements would otherwise both see room.
    /// On PostgreSQL a transaction-scoped advisory lock on the key's hash; SQLite already
    /// runs one write statement at a time, holding its write lock while it reads.
    pub(crate) async fn serialize_on(&self, tx: &mut sqlx::Transaction<'_, sqlx::Any>, key: &str) -> Result<()> {
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))").bind(key).execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// Writes one keyed row of a scope that holds at most a cap of them: `update` changes the
    /// row where it exists (the common case, taking no lock); otherwise `insert` — an
    /// `INSERT … SELECT … WHERE (SELECT COUNT(*) …) < cap ON CONFLICT … DO UPDATE` — runs
    /// serialized on `lock` (see [`Store::serialize_on`]), so two concurrent inserts cannot
    /// both find room. `false` when the scope was full.
    pub(crate) async fn upsert_within_cap(
        &self,
        lock: &str,
        update: AnyQuery<'_>,
        insert: AnyQuery<'_>,
    ) -> Result<bool> {
        if update.execute(&self.pool).await?.rows_affected() == 1 {
            return Ok(true);
        }
        let mut tx = self.pool.begin().await?;
        self.serialize_on(&mut tx, lock).await?;
        let inserted = insert.execute(&mut *tx).await?.rows_affected();
        tx.commit().await?;
        Ok(inserted == 1)
    }
}

/// A statement with its parameters bound.
pub(crate) type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

/// Decodes the JSON text in column `name` of `row`.
///
/// Every column is read by name with `try_get`: a type the code does not expect is a
/// [`StoreError`], never a panic.
pub(crate) fn json_column<T: serde::de::DeserializeOwned>(row: &sqlx::any::AnyRow, name: &str) -> Result<T> {
    use sqlx::Row as _;
    Ok(serde_json::from_str(row.try_get::<&str, _>(name)?)?)
}

/// Milliseconds since the Unix epoch, the unit of every timestamp column.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// The `VALUES` lists of a multi-row insert of `rows` rows of `columns` values each, in the
/// backend's own placeholder syntax (sqlx's QueryBuilder cannot pick it for the Any driver).
///
/// PostgreSQL gets `($1, $2), ($3, $4)`. SQLite gets anonymous `(?, ?), (?, ?)`: it finds a
/// numbered parameter's name with a linear scan, and sqlx asks for every parameter's name,
/// so `$N` costs time quadratic in the parameter count (a 256-row events batch spent more
/// CPU there than the events themselves took to run).
pub(crate) fn placeholders(backend: Backend, rows: usize, columns: usize) -> String {
    let mut sql = String::with_capacity(rows * columns * 6);
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..columns {
            if column > 0 {
                sql.push_str(", ");
            }
            match backend {
                Backend::Sqlite => sql.push('?'),
                Backend::Postgres => {
                    let _ = write!(sql, "${}", row * columns + column + 1);
                }
            }
        }
        sql.push(')');
    }
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_use_each_backends_syntax() {
        assert_eq!(placeholders(Backend::Postgres, 2, 2), "($1, $2), ($3, $4)");
        assert_eq!(placeholders(Backend::Sqlite, 2, 3), "(?, ?, ?), (?, ?, ?)");
        assert_eq!(placeholders(Backend::Sqlite, 1, 1), "(?)");
    }
}
