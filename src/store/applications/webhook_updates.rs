//! Narrow writes of a webhook, so that concurrent changes of one never lose each other: the
//! signing key and the archived flag each have their own update, and the rest (name, settings,
//! sealed endpoint credentials and custom headers) is written only if no other such write
//! landed since it was read — every one of those writes seals its secrets afresh, so the
//! sealed secrets read are the row's version.

use crate::store::{Result, Store, WebhookRecord, now_ms};

impl Store {
    /// Writes `webhook`'s name, settings and sealed secrets if the row still holds the sealed
    /// secrets `read_secrets` it was read with; `false` when another write came first (re-read
    /// and re-apply).
    pub async fn update_webhook_if_unchanged(&self, webhook: &WebhookRecord, read_secrets: &str) -> Result<bool> {
        let written = sqlx::query(
            "UPDATE application_webhooks SET name = $3, settings = $4, secrets_sealed = $5, updated_at = $6 \
             WHERE app_id = $1 AND id = $2 AND secrets_sealed = $7",
        )
        .bind(&webhook.app_id)
        .bind(&webhook.id)
        .bind(&webhook.name)
        .bind(serde_json::to_string(&webhook.settings)?)
        .bind(&webhook.secrets_sealed)
        .bind(now_ms())
        .bind(read_secrets)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(written == 1)
    }

    /// Replaces a webhook's sealed signing key, touching nothing else.
    pub async fn set_webhook_signing_key(&self, app_id: &str, id: &str, sealed: &str) -> Result<()> {
        sqlx::query(
            "UPDATE application_webhooks SET signing_key_sealed = $3, updated_at = $4 WHERE app_id = $1 AND id = $2",
        )
        .bind(app_id)
        .bind(id)
        .bind(sealed)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Archives or restores a webhook, touching nothing else.
    pub async fn set_webhook_archived(&self, app_id: &str, id: &str, archived: bool) -> Result<()> {
        sqlx::query("UPDATE application_webhooks SET archived = $3, updated_at = $4 WHERE app_id = $1 AND id = $2")
            .bind(app_id)
            .bind(id)
            .bind(i64::from(archived))
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
