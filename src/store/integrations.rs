//! Integrations and their published versions.

use serde_json::Value;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Backend, Result, Store, json_column, now_ms};

/// A published integration (its current version's manifest).
#[derive(Debug, Clone, PartialEq)]
pub struct IntegrationRecord {
    /// Its identity: never reused, even when the name is freed and taken again. Everything
    /// the integration owns is keyed by it.
    pub id: String,
    /// Unique name among the live integrations, as in `/v1/integrations/{name}`.
    pub name: String,
    /// The owning organization.
    pub org_id: String,
    /// private, unlisted or public.
    pub visibility: String,
    /// all, organization, space or site.
    pub target: String,
    /// The version new events run.
    pub current_version: i64,
    /// Every published field except the script.
    pub manifest: Value,
    /// First publish (ms).
    pub created_at: i64,
    /// Latest publish (ms).
    pub updated_at: i64,
    /// The integration's secrets as a JSON object sealed with the server key, if any.
    pub sealed_secrets: Option<String>,
}

impl IntegrationRecord {
    /// The secrets as a JSON object (empty when there are none or they cannot be opened).
    pub fn open_secrets(&self, secrets: &crate::crypto::SecretBox) -> Value {
        self.sealed_secrets
            .as_deref()
            .and_then(|sealed| secrets.open(sealed).ok())
            .and_then(|json| serde_json::from_slice::<Value>(&json).ok())
            .filter(Value::is_object)
            .unwrap_or_else(|| Value::Object(Default::default()))
    }
}

/// One publish of an integration.
pub struct NewVersion<'a> {
    /// Integration name.
    pub name: &'a str,
    /// Owning organization.
    pub org_id: &'a str,
    /// private, unlisted or public.
    pub visibility: &'a str,
    /// all, organization, space or site.
    pub target: &'a str,
    /// Published fields except the script.
    pub manifest: &'a Value,
    /// The module.
    pub wasm: &'a [u8],
    /// The compiled module.
    pub artifact: &'a [u8],
    /// Hex SHA-256 of `wasm`.
    pub sha256: &'a str,
    /// A JavaScript bundle's source (`wasm` is then the engine's snapshot of it).
    pub source: Option<&'a [u8]>,
    /// What compiling it at publish found (shown with the version).
    pub module: &'a ModuleFacts,
}

/// What publish found of a version's module: the guest ABI it speaks and whether it was
/// pre-initialised (snapshotted), or why it runs as published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleFacts {
    /// Guest ABI version (1 or 2).
    pub abi: i64,
    /// Whether the module was pre-initialised at publish.
    pub snapshot: bool,
    /// Why it was not, when it was not.
    pub snapshot_reason: Option<String>,
}

/// One published version, as the versions list shows it.
#[derive(Debug, Clone)]
pub struct VersionSummary {
    pub version: i64,
    /// Published at, in ms.
    pub created_at: i64,
    /// The module's size in bytes.
    pub size: i64,
    pub sha256: String,
    /// The JavaScript bundle's size, for a JavaScript version.
    pub source_size: Option<i64>,
    /// What publish found of its module; `None` for versions published before it was stored.
    pub module: Option<ModuleFacts>,
}

const COLUMNS: &str = "id, name, org_id, visibility, target, current_version, manifest, created_at, updated_at";
const SELECT: &str = "id, name, org_id, visibility, target, current_version, manifest, created_at, updated_at, secrets";

fn record(row: &AnyRow) -> Result<IntegrationRecord> {
    Ok(IntegrationRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        org_id: row.try_get("org_id")?,
        visibility: row.try_get("visibility")?,
        target: row.try_get("target")?,
        current_version: row.try_get("current_version")?,
        manifest: json_column(row, "manifest")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        sealed_secrets: row.try_get("secrets")?,
    })
}

impl Store {
    /// Publishes a new version. `None` when the name belongs to another organization.
    pub async fn publish_version(&self, new: NewVersion<'_>) -> Result<Option<IntegrationRecord>> {
        self.catalog_changed();
        let now = now_ms();
        let manifest = new.manifest.to_string();
        let mut tx = self.pool.begin().await?;
        // One statement claims the name or bumps the version, and only for the owner: a
        // concurrent publish cannot slip in between a read and a write.
        // A new integration gets a new id; a new version of an existing one keeps its id.
        let row = sqlx::query(&format!(
            "INSERT INTO integrations ({COLUMNS}) VALUES ($7, $1, $2, $3, $4, 1, $5, $6, $6) \
             ON CONFLICT (name) DO UPDATE SET current_version = integrations.current_version + 1, \
                visibility = excluded.visibility, target = excluded.target, manifest = excluded.manifest, \
                updated_at = excluded.updated_at \
             WHERE integrations.org_id = excluded.org_id \
             RETURNING {SELECT}"
        ))
        .bind(new.name)
        .bind(new.org_id)
        .bind(new.visibility)
        .bind(new.target)
        .bind(&manifest)
        .bind(now)
        .bind(crate::ids::random("itg_", 20))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let integration = record(&row)?;
        sqlx::query(
            "INSERT INTO integration_versions \
                (integration_id, version, wasm, artifact, sha256, created_at, source, abi, snapshot, snapshot_reason) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&integration.id)
        .bind(integration.current_version)
        .bind(new.wasm)
        .bind(new.artifact)
        .bind(new.sha256)
        .bind(now)
        .bind(new.source)
        .bind(new.module.abi)
        .bind(i64::from(new.module.snapshot))
        .bind(new.module.snapshot_reason.as_deref())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(integration))
    }

    /// The live integration named `name`.
    pub async fn integration(&self, name: &str) -> Result<Option<IntegrationRecord>> {
        let row = sqlx::query(&format!("SELECT {SELECT} FROM integrations WHERE name = $1"))
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(record).transpose()
    }

    /// The integration with identity `id`, while it exists (never its successor by name).
    pub async fn integration_by_id(&self, id: &str) -> Result<Option<IntegrationRecord>> {
        let row = sqlx::query(&format!("SELECT {SELECT} FROM integrations WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(record).transpose()
    }

    /// The compiled artifact of a version (absent when it was never compiled here).
    pub async fn module_artifact(&self, integration_id: &str, version: i64) -> Result<Option<Vec<u8>>> {
        let row = sqlx::query("SELECT artifact FROM integration_versions WHERE integration_id = $1 AND version = $2")
            .bind(integration_id)
            .bind(version)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|row| row.try_get("artifact")).transpose()?.flatten())
    }

    /// The hex SHA-256 of a version's wasm, which names its compiled module on disk.
    ///
    /// On SQLite this reads a covering index: the row itself keeps `sha256` behind the wasm
    /// and the artifact, a megabyte of overflow pages that reading it would walk (0.4–1 ms
    /// cold, on the first event after a restart). SQLite's planner prefers the primary
    /// key's index here, so the covering one is named.
    pub async fn module_sha256(&self, integration_id: &str, version: i64) -> Result<Option<String>> {
        let index = match self.backend {
            Backend::Sqlite => "INDEXED BY integration_versions_sha256",
            // PostgreSQL keeps large values out of line (TOAST): the row is small.
            Backend::Postgres => "",
        };
        let sql = format!("SELECT sha256 FROM integration_versions {index} WHERE integration_id = $1 AND version = $2");
        let row = sqlx::query(&sql).bind(integration_id).bind(version).fetch_optional(&self.pool).await?;
        Ok(row.map(|row| row.try_get("sha256")).transpose()?)
    }

    /// The JavaScript bundle a version was published from (`None` for a WebAssembly one).
    pub async fn module_source(&self, integration_id: &str, version: i64) -> Result<Option<Vec<u8>>> {
        let row = sqlx::query("SELECT source FROM integration_versions WHERE integration_id = $1 AND version = $2")
            .bind(integration_id)
            .bind(version)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|row| row.try_get("source")).transpose()?.flatten())
    }

    /// The module bytes of a version.
    pub async fn module_wasm(&self, integration_id: &str, version: i64) -> Result<Option<Vec<u8>>> {
        let row = sqlx::query("SELECT wasm FROM integration_versions WHERE integration_id = $1 AND version = $2")
            .bind(integration_id)
            .bind(version)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|row| row.try_get("wasm")).transpose()?)
    }

    /// Replaces a version's artifact (after recompiling for a new engine).
    pub async fn set_module_artifact(&self, integration_id: &str, version: i64, artifact: &[u8]) -> Result<()> {
        sqlx::query("UPDATE integration_versions SET artifact = $3 WHERE integration_id = $1 AND version = $2")
            .bind(integration_id)
            .bind(version)
            .bind(artifact)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Replaces an integration's sealed secrets.
    pub async fn set_integration_secrets(&self, integration_id: &str, sealed: &str) -> Result<()> {
        self.catalog_changed();
        sqlx::query("UPDATE integrations SET secrets = $2 WHERE id = $1")
            .bind(integration_id)
            .bind(sealed)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Every integration with this visibility, by name.
    pub async fn integrations_with_visibility(&self, visibility: &str) -> Result<Vec<IntegrationRecord>> {
        let rows = sqlx::query(&format!("SELECT {SELECT} FROM integrations WHERE visibility = $1 ORDER BY name"))
            .bind(visibility)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(record).collect()
    }

    /// Up to `limit` integrations with this visibility whose name sorts after `after`, by
    /// name: lists page in SQL, never holding every manifest at once.
    pub async fn integrations_after(
        &self,
        visibility: &str,
        after: &str,
        limit: i64,
    ) -> Result<Vec<IntegrationRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {SELECT} FROM integrations WHERE visibility = $1 AND name > $2 ORDER BY name LIMIT $3"
        ))
        .bind(visibility)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(record).collect()
    }

    /// Every integration organization `org_id` may install: the public ones and its own, by
    /// name.
    pub async fn integrations_available_to(&self, org_id: &str) -> Result<Vec<IntegrationRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {SELECT} FROM integrations WHERE visibility = 'public' OR org_id = $1 ORDER BY name"
        ))
        .bind(org_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(record).collect()
    }

    /// How many integrations have this visibility.
    pub async fn count_integrations_with_visibility(&self, visibility: &str) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) FROM integrations WHERE visibility = $1")
            .bind(visibility)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get(0)?)
    }

    /// Every integration, by name (the console filters them by who may see each).
    pub async fn all_integrations(&self) -> Result<Vec<IntegrationRecord>> {
        let rows =
            sqlx::query(&format!("SELECT {SELECT} FROM integrations ORDER BY name")).fetch_all(&self.pool).await?;
        rows.iter().map(record).collect()
    }

    /// The newest `limit` versions of integration `integration_id`, newest first.
    pub async fn versions(&self, integration_id: &str, limit: i64) -> Result<Vec<VersionSummary>> {
        let rows = sqlx::query(
            "SELECT version, created_at, CAST(LENGTH(wasm) AS BIGINT) AS size, sha256, \
                CAST(LENGTH(source) AS BIGINT) AS source_size, abi, snapshot, snapshot_reason \
             FROM integration_versions WHERE integration_id = $1 ORDER BY version DESC LIMIT $2",
        )
        .bind(integration_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let abi: Option<i64> = row.try_get("abi")?;
                let snapshot: Option<i64> = row.try_get("snapshot")?;
                let module = abi.zip(snapshot).map(|(abi, snapshot)| -> Result<ModuleFacts> {
                    Ok(ModuleFacts { abi, snapshot: snapshot != 0, snapshot_reason: row.try_get("snapshot_reason")? })
                });
                Ok(VersionSummary {
                    version: row.try_get("version")?,
                    created_at: row.try_get("created_at")?,
                    size: row.try_get("size")?,
                    sha256: row.try_get("sha256")?,
                    source_size: row.try_get("source_size")?,
                    module: module.transpose()?,
                })
            })
            .collect()
    }

    /// Unpublishes the integration `id`: everything it owns goes with it, in one
    /// transaction — versions, installations (and their space and site installations, tokens
    /// and kv entries), its own tokens and kv entries, events, queued and finished jobs
    /// (with their idempotency keys), cron state and dev mode. `false` when there was none.
    ///
    /// Whatever escapes this (a sealed token already handed out, a job claimed just before)
    /// names the id, which no later integration will ever have.
    pub async fn delete_integration(&self, id: &str) -> Result<bool> {
        self.catalog_changed();
        let mut tx = self.pool.begin().await?;
        let owned_installations = "SELECT id FROM installations WHERE integration_id = $1";
        for table in ["space_installations", "site_installations"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE installation_id IN ({owned_installations})"))
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(&format!(
            "DELETE FROM api_tokens WHERE (kind = 'integration' AND subject = $1) OR (kind = 'installation' AND \
             subject IN ({owned_installations}))"
        ))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        // The kv entries of the integration and of every installation: `installation_deleted`
        // has already run for each of them by now.
        sqlx::query(
            "DELETE FROM kv_entries WHERE scope = $1 OR scope IN \
             (SELECT $2 || id FROM installations WHERE integration_id = $3)",
        )
        .bind(super::integration_scope(id))
        .bind(super::kv::INSTALLATION_SCOPE_PREFIX)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        for table in ["installations", "integration_versions", "events", "jobs", "cron_state", "dev_modes"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE integration_id = $1")).bind(id).execute(&mut *tx).await?;
        }
        let deleted =
            sqlx::query("DELETE FROM integrations WHERE id = $1").bind(id).execute(&mut *tx).await?.rows_affected();
        tx.commit().await?;
        Ok(deleted == 1)
    }
}
