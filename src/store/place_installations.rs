//! Installations on spaces and sites: an organization installation's presence on one place.

use serde_json::Value;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::installations::contains_pattern;
use super::{PlaceKind, Result, Store, json_column, now_ms};

/// An installation on one space or site.
#[derive(Debug, Clone, PartialEq)]
pub struct PlaceInstallationRecord {
    /// The organization installation it belongs to.
    pub installation_id: String,
    /// The space or site id.
    pub target_id: String,
    /// The installed integration.
    pub integration: String,
    /// The organization of the space or site.
    pub org_id: String,
    /// active or pending.
    pub status: String,
    /// The configuration of this space or site installation.
    pub configuration: Value,
    /// External ids set by the integration.
    pub external_ids: Vec<String>,
    /// Creation (ms).
    pub created_at: i64,
    /// Last change (ms).
    pub updated_at: i64,
}

/// Which space or site installations a listing returns; empty strings match everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlaceInstallationFilter<'a> {
    /// Only installations of this integration.
    pub integration: &'a str,
    /// Only those belonging to this organization installation.
    pub installation_id: &'a str,
    /// Only those on this space or site.
    pub target_id: &'a str,
    /// Only those carrying this external id.
    pub external_id: &'a str,
    /// Only those on organizations this user belongs to.
    pub member: &'a str,
    /// Only those of this organization.
    pub org_id: &'a str,
}

const COLUMNS: &str =
    "installation_id, target_id, integration, org_id, status, configuration, external_ids, created_at, updated_at";

fn record(row: &AnyRow) -> Result<PlaceInstallationRecord> {
    Ok(PlaceInstallationRecord {
        installation_id: row.try_get("installation_id")?,
        target_id: row.try_get("target_id")?,
        integration: row.try_get("integration")?,
        org_id: row.try_get("org_id")?,
        status: row.try_get("status")?,
        configuration: json_column(row, "configuration")?,
        external_ids: json_column(row, "external_ids")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

const FILTER: &str = "($1 = '' OR integration = $1) AND ($2 = '' OR installation_id = $2) \
     AND ($3 = '' OR target_id = $3) AND ($4 = '' OR external_ids LIKE $4 ESCAPE '!') \
     AND ($5 = '' OR org_id IN (SELECT org_id FROM org_members WHERE user_id = $5)) AND ($6 = '' OR org_id = $6)";

impl Store {
    /// Installs `installation_id` on a space or site (idempotent) and returns it as it is
    /// now; `None` when the installation or the place no longer exists (removed
    /// concurrently): one statement, so there is no window between the write and the read.
    pub async fn install_on_place(
        &self,
        kind: PlaceKind,
        installation_id: &str,
        target_id: &str,
        integration: &str,
        org_id: &str,
    ) -> Result<Option<PlaceInstallationRecord>> {
        let now = now_ms();
        // The no-op update makes an existing row come back through RETURNING too.
        let row = sqlx::query(&format!(
            "INSERT INTO {table} ({COLUMNS}) SELECT $1, $2, $3, $4, 'active', '{{}}', '[]', $5, $5 \
             WHERE EXISTS (SELECT 1 FROM installations WHERE id = $1) \
               AND EXISTS (SELECT 1 FROM {places} WHERE id = $2) \
             ON CONFLICT (installation_id, target_id) DO UPDATE SET installation_id = excluded.installation_id \
             RETURNING {COLUMNS}",
            table = kind.installations_table(),
            places = kind.table(),
        ))
        .bind(installation_id)
        .bind(target_id)
        .bind(integration)
        .bind(org_id)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(record).transpose()
    }

    /// One space or site installation.
    pub async fn place_installation(
        &self,
        kind: PlaceKind,
        installation_id: &str,
        target_id: &str,
    ) -> Result<Option<PlaceInstallationRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM {} WHERE installation_id = $1 AND target_id = $2",
            kind.installations_table()
        ))
        .bind(installation_id)
        .bind(target_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(record).transpose()
    }

    /// Changes a space or site installation's configuration and external ids (`None` keeps
    /// the current value) and returns it as it now is; `None` when it is not there.
    pub async fn update_place_installation(
        &self,
        kind: PlaceKind,
        installation_id: &str,
        target_id: &str,
        configuration: Option<&Value>,
        external_ids: Option<&[String]>,
    ) -> Result<Option<PlaceInstallationRecord>> {
        let row = sqlx::query(&format!(
            "UPDATE {} SET configuration = COALESCE($3, configuration), external_ids = COALESCE($4, external_ids), \
             updated_at = $5 WHERE installation_id = $1 AND target_id = $2 RETURNING {COLUMNS}",
            kind.installations_table()
        ))
        .bind(installation_id)
        .bind(target_id)
        .bind(configuration.map(Value::to_string))
        .bind(external_ids.map(|ids| serde_json::to_string(ids).expect("strings encode")))
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(record).transpose()
    }

    /// Removes an installation from a space or site and returns it as it was; `None` when
    /// it was not there.
    pub async fn uninstall_from_place(
        &self,
        kind: PlaceKind,
        installation_id: &str,
        target_id: &str,
    ) -> Result<Option<PlaceInstallationRecord>> {
        let row = sqlx::query(&format!(
            "DELETE FROM {} WHERE installation_id = $1 AND target_id = $2 RETURNING {COLUMNS}",
            kind.installations_table()
        ))
        .bind(installation_id)
        .bind(target_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(record).transpose()
    }

    /// A page of the space or site installations matching `filter`, ordered by
    /// (installation, place); `after` is the `installation_id/target_id` key of the last one seen.
    pub async fn find_place_installations(
        &self,
        kind: PlaceKind,
        filter: &PlaceInstallationFilter<'_>,
        after: &str,
        limit: i64,
    ) -> Result<(Vec<PlaceInstallationRecord>, i64)> {
        let table = kind.installations_table();
        let (after_installation, after_target) = after.split_once('/').unwrap_or((after, ""));
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM {table} WHERE {FILTER} \
             AND (installation_id > $7 OR (installation_id = $7 AND target_id > $8)) \
             ORDER BY installation_id, target_id LIMIT $9"
        ))
        .bind(filter.integration)
        .bind(filter.installation_id)
        .bind(filter.target_id)
        .bind(contains_pattern(filter.external_id))
        .bind(filter.member)
        .bind(filter.org_id)
        .bind(after_installation)
        .bind(after_target)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let total = sqlx::query(&format!("SELECT COUNT(*) FROM {table} WHERE {FILTER}"))
            .bind(filter.integration)
            .bind(filter.installation_id)
            .bind(filter.target_id)
            .bind(contains_pattern(filter.external_id))
            .bind(filter.member)
            .bind(filter.org_id)
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?;
        Ok((rows.iter().map(record).collect::<Result<_>>()?, total))
    }
}
