//! Organizations: the tenants.

use sqlx::Row;

use super::{Result, Store, now_ms};

/// An organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgRecord {
    /// Its id (also its subdomain-like handle).
    pub id: String,
    /// Display name.
    pub title: String,
    /// Creation time (ms).
    pub created_at: i64,
}

impl Store {
    /// Creates an organization; `false` when the id is taken.
    pub async fn create_org(&self, id: &str, title: &str) -> Result<Option<OrgRecord>> {
        let created_at = now_ms();
        let inserted =
            sqlx::query("INSERT INTO orgs (id, title, created_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING")
                .bind(id)
                .bind(title)
                .bind(created_at)
                .execute(&self.pool)
                .await?
                .rows_affected();
        Ok((inserted == 1).then(|| OrgRecord { id: id.to_owned(), title: title.to_owned(), created_at }))
    }

    /// One organization.
    pub async fn org(&self, id: &str) -> Result<Option<OrgRecord>> {
        let row = sqlx::query("SELECT id, title, created_at FROM orgs WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|row| OrgRecord { id: row.get(0), title: row.get(1), created_at: row.get(2) }))
    }
}
