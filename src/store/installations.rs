//! Installations of integrations on organizations.

use serde_json::Value;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{IntegrationRecord, Result, Store, json_column, now_ms};

/// An installation.
#[derive(Debug, Clone, PartialEq)]
pub struct InstallationRecord {
    /// Its id (never reused).
    pub id: String,
    /// The installed integration's identity.
    pub integration_id: String,
    /// The installed integration's name, for URLs and display.
    pub integration: String,
    /// The organization it is installed on.
    pub org_id: String,
    /// active, pending or paused.
    pub status: String,
    /// The installation's configuration object.
    pub configuration: Value,
    /// External ids set by the integration.
    pub external_ids: Vec<String>,
    /// Creation (ms).
    pub created_at: i64,
    /// Last change (ms).
    pub updated_at: i64,
    /// `all` or `selected`: whether every space of the organization is included.
    pub space_selection: String,
    /// `all` or `selected`: whether every site of the organization is included.
    pub site_selection: String,
}

/// Which installations a listing returns; empty strings match everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct InstallationFilter<'a> {
    /// Only installations of the integration with this id.
    pub integration_id: &'a str,
    /// Only installations on this organization.
    pub org_id: &'a str,
    /// Only installations carrying this external id.
    pub external_id: &'a str,
    /// Only installations on organizations this user belongs to.
    pub member: &'a str,
    /// Only the installation with this id.
    pub id: &'a str,
}

/// The changes of a PATCH; `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct InstallationUpdate {
    /// New status.
    pub status: Option<String>,
    /// New configuration.
    pub configuration: Option<Value>,
    /// New external ids.
    pub external_ids: Option<Vec<String>>,
    /// New space selection.
    pub space_selection: Option<String>,
    /// New site selection.
    pub site_selection: Option<String>,
}

const COLUMNS: &str = "id, integration_id, integration, org_id, status, configuration, external_ids, created_at, \
                       updated_at, space_selection, site_selection";

fn record(row: &AnyRow) -> Result<InstallationRecord> {
    Ok(InstallationRecord {
        id: row.try_get("id")?,
        integration_id: row.try_get("integration_id")?,
        integration: row.try_get("integration")?,
        org_id: row.try_get("org_id")?,
        status: row.try_get("status")?,
        configuration: json_column(row, "configuration")?,
        external_ids: json_column(row, "external_ids")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        space_selection: row.try_get("space_selection")?,
        site_selection: row.try_get("site_selection")?,
    })
}

/// A `LIKE … ESCAPE '!'` pattern matching a JSON array that holds `value` (empty: no filter).
pub(super) fn contains_pattern(value: &str) -> String {
    if value.is_empty() {
        return String::new();
    }
    let quoted = Value::String(value.to_owned()).to_string();
    let escaped = quoted.replace('!', "!!").replace('%', "!%").replace('_', "!_");
    format!("%{escaped}%")
}

/// The WHERE clause of [`InstallationFilter`], its parameters numbered from `$first`.
fn filter_sql(first: usize) -> String {
    let [a, b, c, d, e] = [first, first + 1, first + 2, first + 3, first + 4];
    format!(
        "(${a} = '' OR integration_id = ${a}) AND (${b} = '' OR org_id = ${b}) \
         AND (${c} = '' OR external_ids LIKE ${c} ESCAPE '!') \
         AND (${d} = '' OR org_id IN (SELECT org_id FROM org_members WHERE user_id = ${d})) \
         AND (${e} = '' OR id = ${e})"
    )
}

impl Store {
    /// Creates an installation of `integration`. `None` when that integration no longer
    /// exists (it was unpublished meanwhile): the row is never written.
    pub async fn create_installation(
        &self,
        id: &str,
        integration: &IntegrationRecord,
        org_id: &str,
    ) -> Result<Option<InstallationRecord>> {
        self.catalog_changed();
        let now = now_ms();
        let installation = InstallationRecord {
            id: id.to_owned(),
            integration_id: integration.id.clone(),
            integration: integration.name.clone(),
            org_id: org_id.to_owned(),
            status: "active".to_owned(),
            configuration: Value::Object(Default::default()),
            external_ids: Vec::new(),
            created_at: now,
            updated_at: now,
            space_selection: "selected".to_owned(),
            site_selection: "selected".to_owned(),
        };
        // Inserted only while the integration exists, in the same statement.
        let inserted = sqlx::query(&format!(
            "INSERT INTO installations ({COLUMNS}) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $9 WHERE EXISTS (SELECT 1 FROM integrations WHERE id = $2)"
        ))
        .bind(id)
        .bind(&integration.id)
        .bind(&integration.name)
        .bind(org_id)
        .bind(&installation.status)
        .bind(installation.configuration.to_string())
        .bind("[]")
        .bind(now)
        .bind("selected")
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok((inserted == 1).then_some(installation))
    }

    /// One installation of the integration `integration_id`.
    pub async fn installation(&self, integration_id: &str, id: &str) -> Result<Option<InstallationRecord>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM installations WHERE integration_id = $1 AND id = $2"))
            .bind(integration_id)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(record).transpose()
    }

    /// One installation, whatever its integration.
    pub async fn installation_by_id(&self, id: &str) -> Result<Option<InstallationRecord>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM installations WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(record).transpose()
    }

    /// A page of the installations of integration `integration_id`, by id, after `after`.
    pub async fn installations(
        &self,
        integration_id: &str,
        after: &str,
        limit: i64,
    ) -> Result<Vec<InstallationRecord>> {
        let filter = InstallationFilter { integration_id, ..Default::default() };
        self.find_installations(&filter, after, limit).await
    }

    /// How many installations integration `integration_id` has.
    pub async fn count_installations(&self, integration_id: &str) -> Result<i64> {
        self.count_matching_installations(&InstallationFilter { integration_id, ..Default::default() }).await
    }

    /// A page of the installations matching `filter`, by id, after `after`.
    pub async fn find_installations(
        &self,
        filter: &InstallationFilter<'_>,
        after: &str,
        limit: i64,
    ) -> Result<Vec<InstallationRecord>> {
        let sql =
            format!("SELECT {COLUMNS} FROM installations WHERE {} AND id > $6 ORDER BY id LIMIT $7", filter_sql(1));
        let rows = sqlx::query(&sql)
            .bind(filter.integration_id)
            .bind(filter.org_id)
            .bind(contains_pattern(filter.external_id))
            .bind(filter.member)
            .bind(filter.id)
            .bind(after)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(record).collect()
    }

    /// How many installations match `filter`.
    pub async fn count_matching_installations(&self, filter: &InstallationFilter<'_>) -> Result<i64> {
        let sql = format!("SELECT COUNT(*) FROM installations WHERE {}", filter_sql(1));
        let row = sqlx::query(&sql)
            .bind(filter.integration_id)
            .bind(filter.org_id)
            .bind(contains_pattern(filter.external_id))
            .bind(filter.member)
            .bind(filter.id)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get(0)?)
    }

    /// Applies `update` to an installation and returns it as it now is.
    pub async fn update_installation(
        &self,
        id: &str,
        update: &InstallationUpdate,
    ) -> Result<Option<InstallationRecord>> {
        self.catalog_changed();
        let configuration = update.configuration.as_ref().map(Value::to_string);
        let external_ids = update.external_ids.as_ref().map(|ids| serde_json::to_string(ids).expect("strings encode"));
        let row = sqlx::query(&format!(
            "UPDATE installations SET status = COALESCE($2, status), configuration = COALESCE($3, configuration), \
                external_ids = COALESCE($4, external_ids), space_selection = COALESCE($5, space_selection), \
                site_selection = COALESCE($6, site_selection), updated_at = $7 \
             WHERE id = $1 RETURNING {COLUMNS}"
        ))
        .bind(id)
        .bind(update.status.as_deref())
        .bind(configuration)
        .bind(external_ids)
        .bind(update.space_selection.as_deref())
        .bind(update.site_selection.as_deref())
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(record).transpose()
    }

    /// Deletes an installation (its space and site installations, tokens and kv entries go
    /// with it).
    pub async fn delete_installation(&self, id: &str) -> Result<bool> {
        self.catalog_changed();
        let mut tx = self.pool.begin().await?;
        for table in ["space_installations", "site_installations"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE installation_id = $1")).bind(id).execute(&mut *tx).await?;
        }
        sqlx::query("DELETE FROM api_tokens WHERE kind = 'installation' AND subject = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        // Its kv entries go with it: `installation_deleted` has already run by now.
        sqlx::query("DELETE FROM kv_entries WHERE scope = $1")
            .bind(super::installation_scope(id))
            .execute(&mut *tx)
            .await?;
        let deleted =
            sqlx::query("DELETE FROM installations WHERE id = $1").bind(id).execute(&mut *tx).await?.rows_affected();
        tx.commit().await?;
        Ok(deleted == 1)
    }
}
