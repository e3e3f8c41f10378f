//! Installations of integrations on organizations.

use serde_json::Value;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{AnyQuery, IntegrationRecord, Result, Store, json_column, now_ms};

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
    /// How many spaces it is installed on.
    pub spaces: i64,
}

/// What [`Store::create_installation`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum NewInstallation {
    /// Installed.
    Created(Box<InstallationRecord>),
    /// The organization has an installation of the integration already: its id.
    Exists(String),
    /// The integration no longer exists (unpublished meanwhile).
    IntegrationGone,
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
    /// Only installations of integrations whose name contains this, in any case.
    pub integration_name: &'a str,
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
/// [`COLUMNS`] and the count of spaces an installation is on, for reading rows back.
const SELECT: &str = "id, integration_id, integration, org_id, status, configuration, external_ids, created_at, \
                      updated_at, space_selection, site_selection, \
                      (SELECT COUNT(*) FROM space_installations s WHERE s.installation_id = installations.id) AS spaces";

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
        spaces: row.try_get("spaces")?,
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

/// The installations that match the filter bound as `$1`–`$6` by [`InstallationFilter::bind`]
/// (an empty value matches every one).
const MATCHING: &str = "($1 = '' OR integration_id = $1) AND ($2 = '' OR org_id = $2) \
     AND ($3 = '' OR external_ids LIKE $3 ESCAPE '!') \
     AND ($4 = '' OR org_id IN (SELECT org_id FROM org_members WHERE user_id = $4)) \
     AND ($5 = '' OR id = $5) AND ($6 = '' OR LOWER(integration) LIKE $6 ESCAPE '!')";

impl InstallationFilter<'_> {
    /// Binds the filter as [`MATCHING`]'s `$1`–`$6`, so that a page and its count always
    /// select the same installations.
    fn bind<'q>(&self, query: AnyQuery<'q>) -> AnyQuery<'q> {
        let name = match self.integration_name {
            "" => String::new(),
            part => {
                let escaped = part.to_lowercase().replace('!', "!!").replace('%', "!%").replace('_', "!_");
                format!("%{escaped}%")
            }
        };
        query
            .bind(self.integration_id.to_owned())
            .bind(self.org_id.to_owned())
            .bind(contains_pattern(self.external_id))
            .bind(self.member.to_owned())
            .bind(self.id.to_owned())
            .bind(name)
    }
}

impl Store {
    /// Creates an installation of `integration` on organization `org_id`, which may hold
    /// one installation of each integration (GitBook's rule). Checked and written in one
    /// statement, serialized per integration and organization: concurrent installs create
    /// one installation, and none once the integration is unpublished.
    pub async fn create_installation(
        &self,
        id: &str,
        integration: &IntegrationRecord,
        org_id: &str,
    ) -> Result<NewInstallation> {
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
            spaces: 0,
        };
        let mut tx = self.pool.begin().await?;
        self.serialize_on(&mut tx, &format!("install:{}:{org_id}", integration.id)).await?;
        let inserted = sqlx::query(&format!(
            "INSERT INTO installations ({COLUMNS}) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $9 WHERE EXISTS (SELECT 1 FROM integrations WHERE id = $2) \
             AND NOT EXISTS (SELECT 1 FROM installations WHERE integration_id = $2 AND org_id = $4)"
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
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 1 {
            tx.commit().await?;
            return Ok(NewInstallation::Created(Box::new(installation)));
        }
        let existing = sqlx::query("SELECT id FROM installations WHERE integration_id = $1 AND org_id = $2")
            .bind(&integration.id)
            .bind(org_id)
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(match existing {
            Some(row) => NewInstallation::Exists(row.try_get("id")?),
            None => NewInstallation::IntegrationGone,
        })
    }

    /// One installation of the integration `integration_id`.
    pub async fn installation(&self, integration_id: &str, id: &str) -> Result<Option<InstallationRecord>> {
        let row = sqlx::query(&format!("SELECT {SELECT} FROM installations WHERE integration_id = $1 AND id = $2"))
            .bind(integration_id)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(record).transpose()
    }

    /// One installation, whatever its integration.
    pub async fn installation_by_id(&self, id: &str) -> Result<Option<InstallationRecord>> {
        let row = sqlx::query(&format!("SELECT {SELECT} FROM installations WHERE id = $1"))
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
        let sql = format!("SELECT {SELECT} FROM installations WHERE {MATCHING} AND id > $7 ORDER BY id LIMIT $8");
        let rows = filter.bind(sqlx::query(&sql)).bind(after).bind(limit).fetch_all(&self.pool).await?;
        rows.iter().map(record).collect()
    }

    /// How many installations match `filter`.
    pub async fn count_matching_installations(&self, filter: &InstallationFilter<'_>) -> Result<i64> {
        let sql = format!("SELECT COUNT(*) FROM installations WHERE {MATCHING}");
        let row = filter.bind(sqlx::query(&sql)).fetch_one(&self.pool).await?;
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
             WHERE id = $1 RETURNING {SELECT}"
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
