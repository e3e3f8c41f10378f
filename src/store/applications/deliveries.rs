//! The durable queue and log of payloads sent to applications.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::store::{Result, Store, now_ms};

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
    /// The JSON body.
    pub body: String,
    /// Attempts before giving up (1 without retries).
    pub max_attempts: i64,
    /// Non-2xx statuses that count as success.
    pub accepted_codes: Vec<i64>,
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
    /// The JSON body.
    pub body: String,
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

const DELIVERY_COLUMNS: &str = "id, app_id, webhook_id, kind, url, body, status, attempts, max_attempts, \
     accepted_codes, next_attempt_at, last_status, last_error, created_at, updated_at";

fn delivery_row(row: &AnyRow) -> Result<DeliveryRecord> {
    let codes: String = row.get(9);
    Ok(DeliveryRecord {
        id: row.get(0),
        app_id: row.get(1),
        webhook_id: row.get(2),
        kind: row.get(3),
        url: row.get(4),
        body: row.get(5),
        status: row.get(6),
        attempts: row.get(7),
        max_attempts: row.get(8),
        accepted_codes: serde_json::from_str(&codes)?,
        next_attempt_at: row.get(10),
        last_status: row.get(11),
        last_error: row.get(12),
        created_at: row.get(13),
        updated_at: row.get(14),
    })
}

impl Store {
    /// Queues a delivery, due now.
    pub async fn insert_delivery(&self, delivery: &NewDelivery) -> Result<()> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO application_deliveries (id, app_id, webhook_id, kind, url, body, status, attempts, \
             max_attempts, accepted_codes, next_attempt_at, lease_until, last_status, last_error, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, $8, $9, NULL, NULL, NULL, $9, $9)",
        )
        .bind(&delivery.id)
        .bind(&delivery.app_id)
        .bind(&delivery.webhook_id)
        .bind(&delivery.kind)
        .bind(&delivery.url)
        .bind(&delivery.body)
        .bind(delivery.max_attempts)
        .bind(serde_json::to_string(&delivery.accepted_codes)?)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Claims up to `limit` due deliveries for `lease_ms`. Each row is taken with a
    /// conditional update, so concurrent workers (or replicas) never claim the same one.
    pub async fn claim_due_deliveries(&self, limit: i64, lease_ms: i64) -> Result<Vec<DeliveryRecord>> {
        let now = now_ms();
        let candidates = sqlx::query(
            "SELECT id FROM application_deliveries WHERE status = 'pending' AND next_attempt_at <= $1 \
             AND (lease_until IS NULL OR lease_until < $1) ORDER BY next_attempt_at, id LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut claimed = Vec::new();
        for row in candidates {
            let id: String = row.get(0);
            let taken = sqlx::query(
                "UPDATE application_deliveries SET lease_until = $2 WHERE id = $1 AND status = 'pending' \
                 AND (lease_until IS NULL OR lease_until < $3)",
            )
            .bind(&id)
            .bind(now + lease_ms)
            .bind(now)
            .execute(&self.pool)
            .await?
            .rows_affected();
            if taken == 1
                && let Some(record) = self.delivery(&id).await?
            {
                claimed.push(record);
            }
        }
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

    /// Records an attempt: the new status, the next due time and what happened.
    pub async fn record_delivery_attempt(
        &self,
        id: &str,
        status: &str,
        attempts: i64,
        next_attempt_at: i64,
        last_status: Option<i64>,
        last_error: Option<&str>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE application_deliveries SET status = $2, attempts = $3, next_attempt_at = $4, lease_until = NULL, \
             last_status = $5, last_error = $6, updated_at = $7 WHERE id = $1 AND status = 'pending'",
        )
        .bind(id)
        .bind(status)
        .bind(attempts)
        .bind(next_attempt_at)
        .bind(last_status)
        .bind(last_error)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Cancels every pending delivery of an application.
    pub async fn cancel_pending_deliveries(&self, app_id: &str) -> Result<()> {
        sqlx::query(
            "UPDATE application_deliveries SET status = 'cancelled', lease_until = NULL, updated_at = $2 \
             WHERE app_id = $1 AND status = 'pending'",
        )
        .bind(app_id)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
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
            .get::<i64, _>(0);
        Ok((rows.iter().map(delivery_row).collect::<Result<_>>()?, total))
    }
}
