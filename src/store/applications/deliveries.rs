//! The durable queue and log of payloads sent to applications.

use sqlx::Row;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AnyPool};

use crate::store::{Backend, NewJob, Result, Store, StoreError, now_ms, placeholders};

/// A payload to send.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    /// Its id (also the Standard Webhooks `webhook-id`).
    pub id: String,
    /// The application.
    pub app_id: String,
    /// The webhook, for webhook payloads.
    pub webhook_id: Option<String>,
    /// `webhook`, `init` or `uninstall`.
    pub kind: String,
    /// Where it goes.
    pub url: String,
    /// The body.
    pub body: String,
    /// Its content type, when not JSON (a rendered `payloadTemplate`).
    pub content_type: Option<String>,
    /// Attempts before giving up (1 without retries).
    pub max_attempts: i64,
    /// Non-2xx statuses that count as success.
    pub accepted_codes: Vec<i64>,
    /// Why it is stored as failed without being sent (its application's backlog is full);
    /// `None`: pending, to be sent.
    pub refused: Option<String>,
}

/// The outcome of one attempt, as [`Store::record_delivery_attempts`] writes it.
#[derive(Debug, Clone)]
pub struct DeliveryAttempt {
    /// The delivery.
    pub id: String,
    /// `pending` (retry at `next_attempt_at`), `succeeded`, `failed` or `cancelled`.
    pub status: &'static str,
    /// Attempts made, this one included.
    pub attempts: i64,
    /// When the next attempt is due (ms).
    pub next_attempt_at: i64,
    /// The HTTP status the endpoint answered, if it answered.
    pub last_status: Option<i64>,
    /// Why the attempt failed.
    pub last_error: Option<String>,
}

/// A delivery and its outcome so far.
#[derive(Debug, Clone)]
pub struct DeliveryRecord {
    /// Its id.
    pub id: String,
    /// The application.
    pub app_id: String,
    /// The webhook, for webhook payloads.
    pub webhook_id: Option<String>,
    /// `webhook`, `init` or `uninstall`.
    pub kind: String,
    /// Where it goes.
    pub url: String,
    /// The body.
    pub body: String,
    /// Its content type, when not JSON.
    pub content_type: Option<String>,
    /// `pending`, `succeeded`, `failed` or `cancelled`.
    pub status: String,
    /// Attempts made.
    pub attempts: i64,
    /// Attempts allowed.
    pub max_attempts: i64,
    /// Non-2xx statuses that count as success.
    pub accepted_codes: Vec<i64>,
    /// When the next attempt is due (ms).
    pub next_attempt_at: i64,
    /// HTTP status of the last attempt.
    pub last_status: Option<i64>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// Creation time (ms).
    pub created_at: i64,
    /// Last change (ms).
    pub updated_at: i64,
}

const DELIVERY_COLUMNS: &str = "id, app_id, webhook_id, kind, url, body, content_type, status, attempts, max_attempts, \
     accepted_codes, next_attempt_at, last_status, last_error, created_at, updated_at";

fn delivery_row(row: &AnyRow) -> Result<DeliveryRecord> {
    let codes: String = row.try_get("accepted_codes")?;
    Ok(DeliveryRecord {
        id: row.try_get("id")?,
        app_id: row.try_get("app_id")?,
        webhook_id: row.try_get("webhook_id")?,
        kind: row.try_get("kind")?,
        url: row.try_get("url")?,
        body: row.try_get("body")?,
        content_type: row.try_get("content_type")?,
        status: row.try_get("status")?,
        attempts: row.try_get("attempts")?,
        max_attempts: row.try_get("max_attempts")?,
        accepted_codes: serde_json::from_str(&codes).map_err(StoreError::Json)?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        last_status: row.try_get("last_status")?,
        last_error: row.try_get("last_error")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

impl Store {
    /// Queues a delivery, due now.
    pub async fn insert_delivery(&self, delivery: &NewDelivery) -> Result<()> {
        let mut connection = self.pool.acquire().await?;
        insert_deliveries(&mut connection, self.backend, std::slice::from_ref(delivery)).await
    }

    /// Claims up to `limit` due deliveries for `lease_ms` in one statement, taking the
    /// applications in turns (each one's oldest first, then each one's second, …), so one
    /// application's backlog never keeps another's deliveries out of a batch. The outer lease
    /// condition keeps a row from being claimed twice: on PostgreSQL a replica claiming the
    /// same rows at the same time waits for the first claim's commit and then skips them.
    pub async fn claim_due_deliveries(&self, limit: i64, lease_ms: i64) -> Result<Vec<DeliveryRecord>> {
        let now = now_ms();
        let rows = sqlx::query(&format!(
            "UPDATE application_deliveries SET lease_until = $2 \
             WHERE id IN (SELECT id FROM ( \
                    SELECT id, next_attempt_at, \
                        ROW_NUMBER() OVER (PARTITION BY app_id ORDER BY next_attempt_at, id) AS turn \
                    FROM application_deliveries WHERE status = 'pending' AND next_attempt_at <= $1 \
                        AND (lease_until IS NULL OR lease_until < $1)) due \
                ORDER BY turn, next_attempt_at, id LIMIT $3) \
             AND status = 'pending' AND (lease_until IS NULL OR lease_until < $1) \
             RETURNING {DELIVERY_COLUMNS}"
        ))
        .bind(now)
        .bind(now + lease_ms)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut claimed = rows.iter().map(delivery_row).collect::<Result<Vec<_>>>()?;
        claimed.sort_by(|a, b| (a.next_attempt_at, &a.id).cmp(&(b.next_attempt_at, &b.id)));
        Ok(claimed)
    }

    /// One delivery.
    pub async fn delivery(&self, id: &str) -> Result<Option<DeliveryRecord>> {
        let row = sqlx::query(&format!("SELECT {DELIVERY_COLUMNS} FROM application_deliveries WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(delivery_row).transpose()
    }

    /// Records the attempts of a batch, a few hundred per statement: each one's new status,
    /// next due time and what happened. A delivery cancelled meanwhile stays cancelled.
    pub async fn record_delivery_attempts(&self, attempts: &[DeliveryAttempt]) -> Result<()> {
        let now = now_ms();
        for chunk in attempts.chunks(DELIVERIES_PER_STATEMENT) {
            let sql = format!(
                "WITH outcome (id, status, attempts, next_attempt_at, last_status, last_error, updated_at) \
                 AS (VALUES {}) \
                 UPDATE application_deliveries SET status = outcome.status, attempts = outcome.attempts, \
                    next_attempt_at = outcome.next_attempt_at, lease_until = NULL, \
                    last_status = outcome.last_status, last_error = outcome.last_error, \
                    updated_at = outcome.updated_at \
                 FROM outcome WHERE application_deliveries.id = outcome.id \
                    AND application_deliveries.status = 'pending'",
                placeholders(self.backend, chunk.len(), 7)
            );
            let mut update = sqlx::query(&sql);
            for attempt in chunk {
                update = update
                    .bind(&attempt.id)
                    .bind(attempt.status)
                    .bind(attempt.attempts)
                    .bind(attempt.next_attempt_at)
                    .bind(attempt.last_status)
                    .bind(&attempt.last_error)
                    .bind(now);
            }
            update.execute(&self.pool).await?;
        }
        Ok(())
    }

    /// Whether an ApplicationUninstalledPayload to this application has failed at least once
    /// (the condition for force-removing it).
    pub async fn uninstall_failed_once(&self, app_id: &str) -> Result<bool> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM application_deliveries WHERE app_id = $1 AND kind = 'uninstall' \
             AND attempts >= 1 AND status IN ('pending', 'failed')",
        )
        .bind(app_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<i64, _>("n")? > 0)
    }

    /// Deletes settled deliveries last changed before `before` (ms); returns how many.
    pub async fn prune_deliveries(&self, before: i64) -> Result<u64> {
        let deleted = sqlx::query("DELETE FROM application_deliveries WHERE status <> 'pending' AND updated_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(deleted)
    }

    /// Makes the settled delivery `id` of application `app_id` pending again, due now, with
    /// its attempts reset. `None` when there is no such delivery; `Some(false)` when it is
    /// pending or cancelled.
    pub async fn redeliver(&self, app_id: &str, id: &str) -> Result<Option<bool>> {
        self.update_if(
            "application_deliveries",
            ("app_id", app_id),
            id,
            "status = 'pending', attempts = 0, next_attempt_at = $3, lease_until = NULL, updated_at = $3",
            "status IN ('succeeded', 'failed')",
        )
        .await
    }

    /// A page of an application's deliveries, newest first, and their total.
    pub async fn list_deliveries(
        &self,
        app_id: &str,
        webhook_id: Option<&str>,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<DeliveryRecord>, i64)> {
        let filter = "app_id = $1 AND ($2 IS NULL OR webhook_id = $2)";
        let rows = sqlx::query(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM application_deliveries WHERE {filter} \
             ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4"
        ))
        .bind(app_id)
        .bind(webhook_id)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        let total = sqlx::query(&format!("SELECT COUNT(*) FROM application_deliveries WHERE {filter}"))
            .bind(app_id)
            .bind(webhook_id)
            .fetch_one(&self.pool)
            .await?
            .try_get::<i64, _>(0)?;
        Ok((rows.iter().map(delivery_row).collect::<Result<_>>()?, total))
    }
}

/// Deliveries written per statement.
const DELIVERIES_PER_STATEMENT: usize = 400;

/// Writes `jobs` and `deliveries` atomically: one statement without a transaction of its own
/// when that is all it takes (on PostgreSQL two round trips fewer), else one transaction.
/// The group committer (`crate::store::event_work`) writes each batch of events with it.
pub(in crate::store) async fn write_event_work(
    pool: &AnyPool,
    backend: Backend,
    jobs: &[NewJob],
    deliveries: &[NewDelivery],
) -> Result<()> {
    if jobs.is_empty() && deliveries.len() <= DELIVERIES_PER_STATEMENT {
        if !deliveries.is_empty() {
            let mut connection = pool.acquire().await?;
            insert_deliveries(&mut connection, backend, deliveries).await?;
        }
        return Ok(());
    }
    let mut tx = pool.begin().await?;
    crate::store::queue::insert_jobs(&mut tx, backend, jobs).await?;
    insert_deliveries(&mut tx, backend, deliveries).await?;
    tx.commit().await?;
    Ok(())
}

/// Inserts deliveries due now, [`DELIVERIES_PER_STATEMENT`] rows per statement.
pub(super) async fn insert_deliveries(
    connection: &mut AnyConnection,
    backend: Backend,
    deliveries: &[NewDelivery],
) -> Result<()> {
    let now = now_ms();
    for chunk in deliveries.chunks(DELIVERIES_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO application_deliveries (id, app_id, webhook_id, kind, url, body, content_type, status, \
             attempts, max_attempts, accepted_codes, next_attempt_at, last_error, created_at, updated_at) VALUES {}",
            placeholders(backend, chunk.len(), 15)
        );
        let mut insert = sqlx::query(&sql);
        for delivery in chunk {
            insert = insert
                .bind(&delivery.id)
                .bind(&delivery.app_id)
                .bind(&delivery.webhook_id)
                .bind(&delivery.kind)
                .bind(&delivery.url)
                .bind(&delivery.body)
                .bind(&delivery.content_type)
                .bind(if delivery.refused.is_some() { "failed" } else { "pending" })
                .bind(0_i64)
                .bind(delivery.max_attempts)
                .bind(serde_json::to_string(&delivery.accepted_codes)?)
                .bind(now)
                .bind(&delivery.refused)
                .bind(now)
                .bind(now);
        }
        insert.execute(&mut *connection).await?;
    }
    Ok(())
}

/// Cancels every pending delivery of an application (see `Store::archive_application`).
pub(super) async fn cancel_pending(connection: &mut AnyConnection, app_id: &str) -> Result<()> {
    sqlx::query(
        "UPDATE application_deliveries SET status = 'cancelled', lease_until = NULL, updated_at = $2 \
         WHERE app_id = $1 AND status = 'pending'",
    )
    .bind(app_id)
    .bind(now_ms())
    .execute(connection)
    .await?;
    Ok(())
}
