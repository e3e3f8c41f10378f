//! What unfurling keeps per application: the queue of links for it to unfurl, the content it
//! posted for links, and the external-auth requests it made. Rows of their own, each list
//! bounded per application (the oldest entries go first).

use serde_json::Value;
use sqlx::Row;

use crate::store::{Result, Store, now_ms};

impl Store {
    /// Queues `link` for application `app_id` with the next etag, keeping the newest `max`.
    pub async fn push_unfurl(&self, app_id: &str, link: &str, max: i64) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        // Etags must grow in commit order too, or a reader paging `fromEtag` would skip one:
        // the pushes of one application take turns.
        self.serialize_on(&mut tx, &format!("app-unfurls:{app_id}")).await?;
        sqlx::query(
            "INSERT INTO application_unfurl_queue (app_id, etag, target, created_at) \
             SELECT $1, COALESCE(MAX(etag), 0) + 1, $2, $3 FROM application_unfurl_queue WHERE app_id = $1",
        )
        .bind(app_id)
        .bind(link)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM application_unfurl_queue WHERE app_id = $1 AND etag <= \
             (SELECT MAX(etag) FROM application_unfurl_queue WHERE app_id = $1) - $2",
        )
        .bind(app_id)
        .bind(max)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Up to `limit` queued links of an application after etag `from`, oldest first:
    /// `{"etag", "target", "createdAt"}` each.
    pub async fn unfurl_queue(&self, app_id: &str, from: i64, limit: i64) -> Result<Vec<Value>> {
        let rows = sqlx::query(
            "SELECT etag, target, created_at FROM application_unfurl_queue WHERE app_id = $1 AND etag > $2 \
             ORDER BY etag LIMIT $3",
        )
        .bind(app_id)
        .bind(from)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(serde_json::json!({
                    "etag": row.try_get::<i64, _>("etag")?,
                    "target": row.try_get::<String, _>("target")?,
                    "createdAt": row.try_get::<i64, _>("created_at")?,
                }))
            })
            .collect()
    }

    /// Stores unfurl content an application posted, keeping its newest `max`.
    pub async fn add_unfurl_content(&self, app_id: &str, unfurls: &[Value], max: i64) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for unfurl in unfurls {
            sqlx::query(
                "INSERT INTO application_unfurl_content (app_id, target, content, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(app_id)
            .bind(unfurl["target"].as_str())
            .bind(unfurl.to_string())
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        }
        trim(&mut tx, "application_unfurl_content", app_id, max).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Stores an external-auth request an application made, keeping its newest `max`.
    pub async fn add_auth_request(&self, app_id: &str, request: &Value, max: i64) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO application_auth_requests (app_id, user_id, request, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(app_id)
        .bind(request["userId"].as_str())
        .bind(request.to_string())
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        trim(&mut tx, "application_auth_requests", app_id, max).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes an application's external-auth requests (of one user, or all).
    pub async fn delete_auth_requests(&self, app_id: &str, user_id: Option<&str>) -> Result<()> {
        sqlx::query("DELETE FROM application_auth_requests WHERE app_id = $1 AND ($2 IS NULL OR user_id = $2)")
            .bind(app_id)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The unfurl content the active applications of `org_id` posted for `link`, oldest first:
    /// `(application id, content)`.
    pub async fn org_unfurl_content(&self, org_id: &str, link: &str) -> Result<Vec<(String, Value)>> {
        let rows = sqlx::query(
            "SELECT c.app_id, c.content FROM application_unfurl_content c JOIN applications a ON a.id = c.app_id \
             WHERE a.org_id = $1 AND a.status = 'active' AND c.target = $2 ORDER BY a.created_at, a.id, c.seq",
        )
        .bind(org_id)
        .bind(link)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|row| Ok((row.try_get("app_id")?, serde_json::from_str(row.try_get("content")?)?))).collect()
    }

    /// The external-auth requests of the active applications of `org_id` (of one user, or
    /// all), oldest first: `(application id, request)`.
    pub async fn org_auth_requests(&self, org_id: &str, user_id: Option<&str>) -> Result<Vec<(String, Value)>> {
        let rows = sqlx::query(
            "SELECT r.app_id, r.request FROM application_auth_requests r JOIN applications a ON a.id = r.app_id \
             WHERE a.org_id = $1 AND a.status = 'active' AND ($2 IS NULL OR r.user_id = $2) \
             ORDER BY a.created_at, a.id, r.seq",
        )
        .bind(org_id)
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|row| Ok((row.try_get("app_id")?, serde_json::from_str(row.try_get("request")?)?))).collect()
    }
}

/// Keeps only the newest `max` rows of an application in `table` (one with a `seq`).
async fn trim(connection: &mut sqlx::AnyConnection, table: &str, app_id: &str, max: i64) -> Result<()> {
    sqlx::query(&format!(
        "DELETE FROM {table} WHERE app_id = $1 AND seq NOT IN \
         (SELECT seq FROM {table} WHERE app_id = $1 ORDER BY seq DESC LIMIT $2)"
    ))
    .bind(app_id)
    .bind(max)
    .execute(connection)
    .await?;
    Ok(())
}
