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
    /// installed on that space (site). `None` when there is no such organization: the
    /// organization and its installations are one read (one round trip per event fewer).
    pub async fn org_installations_in_scope(
        &self,
        org_id: &str,
        space_id: Option<&str>,
        site_id: Option<&str>,
    ) -> Result<Option<Vec<ScopedInstallation>>> {
        let rows = sqlx::query(
            "SELECT scoped.id, scoped.integration_id, scoped.name, scoped.manifest FROM orgs o LEFT JOIN ( \
                SELECT i.id, i.org_id, i.integration_id, g.name, g.manifest \
                FROM installations i JOIN integrations g ON g.id = i.integration_id \
                WHERE i.org_id = $1 AND i.status = 'active' \
                  AND ($2 = '' OR i.space_selection = 'all' OR EXISTS (SELECT 1 FROM space_installations s \
                       WHERE s.installation_id = i.id AND s.target_id = $2)) \
                  AND ($3 = '' OR i.site_selection = 'all' OR EXISTS (SELECT 1 FROM site_installations t \
                       WHERE t.installation_id = i.id AND t.target_id = $3)) \
             ) scoped ON scoped.org_id = o.id \
             WHERE o.id = $1 ORDER BY scoped.id",
        )
        .bind(org_id)
        .bind(space_id.unwrap_or(""))
        .bind(site_id.unwrap_or(""))
        .fetch_all(&self.pool)
        .await?;
        if rows.is_empty() {
            return Ok(None);
        }
        let mut installations = Vec::new();
        for row in &rows {
            // The organization's own row when it has no installation in scope.
            let Some(installation_id) = row.try_get::<Option<String>, _>("id")? else { continue };
            installations.push(ScopedInstallation {
                installation_id,
                integration_id: row.try_get("integration_id")?,
                integration: row.try_get("name")?,
                manifest: json_column(row, "manifest")?,
            });
        }
        Ok(Some(installations))
    }
}
