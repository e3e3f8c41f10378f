//! Authorizations: the rights an application holds or asked for, per context (`global`,
//! `project:KEY`, …). Rows of their own, so granting, requesting and deleting touch only their
//! own rows, never the application's settings.

use std::collections::BTreeMap;

use sqlx::Row;

use crate::store::{Result, Store, now_ms};

/// Every context of an application and the status of each right in it:
/// `{context: {rightCode: "GRANTED" | "DENIED" | "PENDING"}}`.
pub type Authorizations = BTreeMap<String, BTreeMap<String, String>>;

/// Adding a context failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyContexts;

impl Store {
    /// An application's authorizations.
    pub async fn authorizations(&self, app_id: &str) -> Result<Authorizations> {
        let contexts = sqlx::query("SELECT context FROM application_auth_contexts WHERE app_id = $1")
            .bind(app_id)
            .fetch_all(&self.pool)
            .await?;
        let mut all = Authorizations::new();
        for row in &contexts {
            all.insert(row.try_get("context")?, BTreeMap::new());
        }
        let rights =
            sqlx::query("SELECT context, right_code, status FROM application_authorized_rights WHERE app_id = $1")
                .bind(app_id)
                .fetch_all(&self.pool)
                .await?;
        for row in &rights {
            all.entry(row.try_get("context")?).or_default().insert(row.try_get("right_code")?, row.try_get("status")?);
        }
        Ok(all)
    }

    /// The status of one right of an application in one context.
    pub async fn authorization(&self, app_id: &str, context: &str, right_code: &str) -> Result<Option<String>> {
        let row = sqlx::query(
            "SELECT status FROM application_authorized_rights WHERE app_id = $1 AND context = $2 AND right_code = $3",
        )
        .bind(app_id)
        .bind(context)
        .bind(right_code)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|row| row.try_get("status")).transpose()?)
    }

    /// The applications granted at least one right in `context`.
    pub async fn apps_authorized_in(&self, context: &str) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT DISTINCT app_id FROM application_authorized_rights WHERE context = $1 AND status = 'GRANTED'",
        )
        .bind(context)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|row| Ok(row.try_get("app_id")?)).collect()
    }

    /// Sets the status of rights in a context, adding the context unless the application has
    /// `max_contexts` already. With `keep_granted`, a GRANTED right stays GRANTED (a request
    /// never takes back what was granted).
    pub async fn set_authorizations(
        &self,
        app_id: &str,
        context: &str,
        updates: &[(String, String)],
        keep_granted: bool,
        max_contexts: i64,
    ) -> Result<Result<(), TooManyContexts>> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        self.serialize_on(&mut tx, &format!("app-auth:{app_id}")).await?;
        sqlx::query(
            "INSERT INTO application_auth_contexts (app_id, context, created_at) \
             SELECT $1, $2, $3 WHERE (SELECT COUNT(*) FROM application_auth_contexts \
                WHERE app_id = $1 AND context <> $2) < $4 \
             ON CONFLICT (app_id, context) DO NOTHING",
        )
        .bind(app_id)
        .bind(context)
        .bind(now)
        .bind(max_contexts)
        .execute(&mut *tx)
        .await?;
        let present = sqlx::query("SELECT 1 FROM application_auth_contexts WHERE app_id = $1 AND context = $2")
            .bind(app_id)
            .bind(context)
            .fetch_optional(&mut *tx)
            .await?;
        if present.is_none() {
            return Ok(Err(TooManyContexts));
        }
        let keep = if keep_granted { " WHERE application_authorized_rights.status <> 'GRANTED'" } else { "" };
        for (code, status) in updates {
            sqlx::query(&format!(
                "INSERT INTO application_authorized_rights (app_id, context, right_code, status, updated_at) \
                 VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (app_id, context, right_code) DO UPDATE SET status = $4, updated_at = $5{keep}"
            ))
            .bind(app_id)
            .bind(context)
            .bind(code)
            .bind(status)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(Ok(()))
    }

    /// Deletes a context and its rights; `false` when the application was not authorized in it.
    pub async fn delete_authorization_context(&self, app_id: &str, context: &str) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM application_authorized_rights WHERE app_id = $1 AND context = $2")
            .bind(app_id)
            .bind(context)
            .execute(&mut *tx)
            .await?;
        let deleted = sqlx::query("DELETE FROM application_auth_contexts WHERE app_id = $1 AND context = $2")
            .bind(app_id)
            .bind(context)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(deleted == 1)
    }
}
