//! Which installations an ingested event reaches.

use serde_json::Value;
use sqlx::Row;

use super::{Result, Store, json_column};

/// An active installation in an organization, with its integration's manifest.
#[derive(Debug, Clone)]
pub struct ScopedInstallation {
    /// The installation.
    pub installation_id: String,
    /// Its integration's identity.
    pub integration_id: String,
    /// Its integration's name.
    pub integration: String,
    /// The integration's manifest (its `events` say what it subscribes to).
    pub manifest: Value,
}

impl Store {
    /// Active installations of `org_id` whose scope covers the event: every one for an
    /// org-level event; for a space (site) event, those with all spaces (sites) selected or
    /// installed on that space (site).
    pub async fn org_installations_in_scope(
        &self,
        org_id: &str,
        space_id: Option<&str>,
        site_id: Option<&str>,
    ) -> Result<Vec<ScopedInstallation>> {
        let rows = sqlx::query(
            "SELECT i.id, i.integration_id, g.name, g.manifest FROM installations i JOIN integrations g ON g.id = i.integration_id \
             WHERE i.org_id = $1 AND i.status = 'active' \
               AND ($2 = '' OR i.space_selection = 'all' OR EXISTS (SELECT 1 FROM space_installations s \
                    WHERE s.installation_id = i.id AND s.target_id = $2)) \
               AND ($3 = '' OR i.site_selection = 'all' OR EXISTS (SELECT 1 FROM site_installations t \
                    WHERE t.installation_id = i.id AND t.target_id = $3)) \
             ORDER BY i.id",
        )
        .bind(org_id)
        .bind(space_id.unwrap_or(""))
        .bind(site_id.unwrap_or(""))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ScopedInstallation {
                    installation_id: row.try_get("id")?,
                    integration_id: row.try_get("integration_id")?,
                    integration: row.try_get("name")?,
                    manifest: json_column(row, "manifest")?,
                })
            })
            .collect()
    }
}
