//! Installations of integrations on organizations.

use serde_json::Value;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Result, Store, now_ms};

/// An installation.
#[derive(Debug, Clone, PartialEq)]
pub struct InstallationRecord {
    /// Its id.
    pub id: String,
    /// The installed integration.
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
}

const COLUMNS: &str = "id, integration, org_id, status, configuration, external_ids, created_at, updated_at";

fn record(row: &AnyRow) -> Result<InstallationRecord> {
    Ok(InstallationRecord {
        id: row.get(0),
        integration: row.get(1),
        org_id: row.get(2),
        status: row.get(3),
        configuration: serde_json::from_str(row.get::<&str, _>(4))?,
        external_ids: serde_json::from_str(row.get::<&str, _>(5))?,
        created_at: row.get(6),
        updated_at: row.get(7),
    })
}

impl Store {
    /// Creates an installation.
    pub async fn create_installation(&self, id: &str, integration: &str, org_id: &str) -> Result<InstallationRecord> {
        let now = now_ms();
        let installation = InstallationRecord {
            id: id.to_owned(),
            integration: integration.to_owned(),
            org_id: org_id.to_owned(),
            status: "active".to_owned(),
            configuration: Value::Object(Default::default()),
            external_ids: Vec::new(),
            created_at: now,
            updated_at: now,
        };
        sqlx::query(&format!("INSERT INTO installations ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)"))
            .bind(id)
            .bind(integration)
            .bind(org_id)
            .bind(&installation.status)
            .bind(installation.configuration.to_string())
            .bind("[]")
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(installation)
    }

    /// One installation of `integration`.
    pub async fn installation(&self, integration: &str, id: &str) -> Result<Option<InstallationRecord>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM installations WHERE integration = $1 AND id = $2"))
            .bind(integration)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(record).transpose()
    }

    /// A page of `integration`'s installations, by id, after `after`.
    pub async fn installations(&self, integration: &str, after: &str, limit: i64) -> Result<Vec<InstallationRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM installations WHERE integration = $1 AND id > $2 ORDER BY id LIMIT $3"
        ))
        .bind(integration)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(record).collect()
    }

    /// How many installations `integration` has.
    pub async fn count_installations(&self, integration: &str) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) FROM installations WHERE integration = $1")
            .bind(integration)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.get(0))
    }
}
