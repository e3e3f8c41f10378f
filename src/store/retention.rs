//! Deleting what retention no longer keeps (see `crate::retention`), in chunks of
//! [`CHUNK`] rows so that no statement holds the database for long.

use sqlx::Row;

use super::{AnyQuery, Result, Store};

/// Rows one delete statement removes at most.
const CHUNK: i64 = 5000;

impl Store {
    /// Runs `sql` (a delete of at most [`CHUNK`] rows, `$1`.. bound by `bind`) until it
    /// deletes nothing; how many rows went.
    async fn delete_in_chunks<'q>(&self, sql: &'q str, bind: impl Fn(AnyQuery<'q>) -> AnyQuery<'q>) -> Result<u64> {
        let mut total = 0;
        loop {
            let deleted = bind(sqlx::query(sql)).execute(&self.pool).await?.rows_affected();
            total += deleted;
            if deleted < CHUNK as u64 {
                return Ok(total);
            }
        }
    }

    /// Deletes the events created before `cutoff` (ms). Event ids sort by creation time,
    /// so the primary key finds them.
    pub async fn delete_events_before(&self, cutoff: i64) -> Result<u64> {
        let boundary = format!("evt_{:012x}", cutoff.max(0));
        self.delete_in_chunks(
            "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE id < $1 ORDER BY id LIMIT $2)",
            |query| query.bind(boundary.clone()).bind(CHUNK),
        )
        .await
    }

    /// Deletes dead-lettered jobs last changed before `dead_before` and finished jobs (kept
    /// only for their idempotency key) finished before `done_before` (ms).
    pub async fn delete_settled_jobs(&self, dead_before: i64, done_before: i64) -> Result<u64> {
        self.delete_in_chunks(
            "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE (status = 'dead' AND updated_at < $1) \
             OR (status = 'done' AND updated_at < $2) LIMIT $3)",
            |query| query.bind(dead_before).bind(done_before).bind(CHUNK),
        )
        .await
    }

    /// The ids of integrations with more than `max` events in the log.
    pub async fn integrations_with_more_events_than(&self, max: i64) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT integration_id FROM events GROUP BY integration_id HAVING COUNT(*) > $1")
            .bind(max)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(|row| row.try_get("integration_id")).collect::<Result<_, _>>()?)
    }

    /// Deletes the events of integration `integration_id` older than its `keep` newest.
    pub async fn keep_newest_events(&self, integration_id: &str, keep: i64) -> Result<u64> {
        let oldest_kept =
            sqlx::query("SELECT id FROM events WHERE integration_id = $1 ORDER BY id DESC LIMIT 1 OFFSET $2")
                .bind(integration_id)
                .bind(keep.max(1) - 1)
                .fetch_optional(&self.pool)
                .await?;
        let Some(row) = oldest_kept else { return Ok(0) };
        let oldest_kept: String = row.try_get("id")?;
        self.delete_in_chunks(
            "DELETE FROM events WHERE id IN \
             (SELECT id FROM events WHERE integration_id = $1 AND id < $2 ORDER BY id LIMIT $3)",
            |query| query.bind(integration_id.to_owned()).bind(oldest_kept.clone()).bind(CHUNK),
        )
        .await
    }
}
