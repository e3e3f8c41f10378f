//! Dev mode rows: the tunnel each integration in development forwards to, and the sealed
//! secret that signs what is forwarded.

use sqlx::Row;

use super::{Result, Store, now_ms};

/// The dev mode of one integration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevModeRecord {
    /// The integration's id.
    pub integration_id: String,
    /// Where events go; `None` while dev mode is off.
    pub tunnel_url: Option<String>,
    /// `http` or `socket`.
    pub tunnel_kind: String,
    /// Events of every organization go to the tunnel, not only the integration's own.
    pub all_orgs: bool,
    /// The sealed signing secret, once generated.
    pub signing_secret: Option<String>,
    /// Last change, in milliseconds since the Unix epoch.
    pub updated_at: i64,
}

impl Store {
    /// The dev mode row of integration `integration_id`, if it ever had one.
    pub async fn dev_mode(&self, integration_id: &str) -> Result<Option<DevModeRecord>> {
        let row = sqlx::query(
            "SELECT integration_id, tunnel_url, tunnel_kind, all_orgs, signing_secret, updated_at \
             FROM dev_modes WHERE integration_id = $1",
        )
        .bind(integration_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(DevModeRecord {
                integration_id: row.try_get("integration_id")?,
                tunnel_url: row.try_get("tunnel_url")?,
                tunnel_kind: row.try_get("tunnel_kind")?,
                all_orgs: row.try_get::<i64, _>("all_orgs")? != 0,
                signing_secret: row.try_get("signing_secret")?,
                updated_at: row.try_get("updated_at")?,
            })
        })
        .transpose()
    }

    /// Turns dev mode on for integration `integration_id` (or changes where it goes).
    pub async fn set_dev_mode(
        &self,
        integration_id: &str,
        tunnel_url: &str,
        tunnel_kind: &str,
        all_orgs: bool,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO dev_modes (integration_id, tunnel_url, tunnel_kind, all_orgs, signing_secret, updated_at) \
             VALUES ($1, $2, $3, $4, NULL, $5) \
             ON CONFLICT (integration_id) DO UPDATE SET tunnel_url = excluded.tunnel_url, \
             tunnel_kind = excluded.tunnel_kind, all_orgs = excluded.all_orgs, updated_at = excluded.updated_at",
        )
        .bind(integration_id)
        .bind(tunnel_url)
        .bind(tunnel_kind)
        .bind(i64::from(all_orgs))
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Turns dev mode off for integration `integration_id`; `false` when it was not on.
    pub async fn clear_dev_mode(&self, integration_id: &str) -> Result<bool> {
        let cleared = sqlx::query(
            "UPDATE dev_modes SET tunnel_url = NULL, updated_at = $2 WHERE integration_id = $1 AND tunnel_url IS NOT NULL",
        )
        .bind(integration_id)
        .bind(now_ms())
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(cleared == 1)
    }

    /// The sealed signing secret of integration `integration_id`, storing `candidate` first
    /// when it has none (so concurrent first uses agree on one secret).
    pub async fn dev_signing_secret(&self, integration_id: &str, candidate: &str) -> Result<String> {
        sqlx::query(
            "INSERT INTO dev_modes (integration_id, tunnel_url, tunnel_kind, all_orgs, signing_secret, updated_at) \
             VALUES ($1, NULL, 'http', 0, $2, $3) ON CONFLICT (integration_id) DO NOTHING",
        )
        .bind(integration_id)
        .bind(candidate)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        sqlx::query("UPDATE dev_modes SET signing_secret = $2 WHERE integration_id = $1 AND signing_secret IS NULL")
            .bind(integration_id)
            .bind(candidate)
            .execute(&self.pool)
            .await?;
        let row = sqlx::query("SELECT signing_secret FROM dev_modes WHERE integration_id = $1")
            .bind(integration_id)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<Option<String>, _>("signing_secret")?.unwrap_or_else(|| candidate.to_owned()))
    }
}
