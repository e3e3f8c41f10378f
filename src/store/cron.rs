//! Cron schedules' last firing, advanced with compare-and-set so each tick fires once across
//! every replica.

use sqlx::Row;

use super::{Result, Store, json_column};
use crate::store::NewJob;

impl Store {
    /// The tick (ms) schedule `index` of integration `integration_id` fired last.
    pub async fn cron_last_tick(&self, integration_id: &str, index: i64) -> Result<Option<i64>> {
        let row = sqlx::query("SELECT last_tick FROM cron_state WHERE integration_id = $1 AND schedule_index = $2")
            .bind(integration_id)
            .bind(index)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|row| row.try_get("last_tick")).transpose()?)
    }

    /// Moves the schedule from `seen` (what this replica read) to `tick` and enqueues `jobs`,
    /// in one transaction. `false` when another replica got there first: nothing is enqueued.
    pub async fn cron_fire(
        &self,
        integration_id: &str,
        index: i64,
        seen: Option<i64>,
        tick: i64,
        jobs: &[NewJob],
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let won = match seen {
            None => sqlx::query(
                "INSERT INTO cron_state (integration_id, schedule_index, last_tick) VALUES ($1, $2, $3) \
                 ON CONFLICT (integration_id, schedule_index) DO NOTHING",
            )
            .bind(integration_id)
            .bind(index)
            .bind(tick),
            Some(seen) => sqlx::query(
                "UPDATE cron_state SET last_tick = $3 WHERE integration_id = $1 AND schedule_index = $2 AND last_tick = $4",
            )
            .bind(integration_id)
            .bind(index)
            .bind(tick)
            .bind(seen),
        }
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !won {
            return Ok(false);
        }
        super::queue::insert_jobs(&mut tx, self.backend, jobs).await?;
        tx.commit().await?;
        Ok(true)
    }
}

/// An integration with schedules: its identity, name and manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduledIntegration {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its manifest (`schedules` is what matters).
    pub manifest: serde_json::Value,
}

impl Store {
    /// Integrations whose manifest declares at least one schedule, with their manifests.
    /// (serde_json writes manifests compactly, so a non-empty list always reads `"schedules":[{`.)
    pub async fn integrations_with_schedules(&self) -> Result<Vec<ScheduledIntegration>> {
        let rows = sqlx::query("SELECT id, name, manifest FROM integrations WHERE manifest LIKE '%\"schedules\":[{%'")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(ScheduledIntegration {
                    id: row.try_get("id")?,
                    name: row.try_get("name")?,
                    manifest: json_column(row, "manifest")?,
                })
            })
            .collect()
    }

    /// A cheap fingerprint of the integrations table (how many, the latest change): when it
    /// is unchanged, no manifest's schedules changed.
    pub async fn integrations_version(&self) -> Result<(i64, i64)> {
        let row = sqlx::query("SELECT COUNT(*) AS n, COALESCE(MAX(updated_at), 0) AS latest FROM integrations")
            .fetch_one(&self.pool)
            .await?;
        Ok((row.try_get("n")?, row.try_get("latest")?))
    }

    /// Ids of the active installations of integration `integration_id`.
    pub async fn active_installation_ids(&self, integration_id: &str) -> Result<Vec<String>> {
        let rows =
            sqlx::query("SELECT id FROM installations WHERE integration_id = $1 AND status = 'active' ORDER BY id")
                .bind(integration_id)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.iter().map(|row| row.try_get("id")).collect::<Result<_, _>>()?)
    }
}
