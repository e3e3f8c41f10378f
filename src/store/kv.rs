//! The integrations' key-value store (the `kv.*` host ops), one namespace per scope.

use sqlx::Row;

use super::{Result, Store, now_ms};

/// What every installation's kv scope starts with (followed by its id).
pub(super) const INSTALLATION_SCOPE_PREFIX: &str = "installation:";

/// The kv namespace of an installation's runs.
pub fn installation_scope(installation_id: &str) -> String {
    format!("{INSTALLATION_SCOPE_PREFIX}{installation_id}")
}

/// The kv namespace of an integration's own runs (tasks and cron without an installation),
/// by the integration's id: a later integration of the same name starts empty.
pub fn integration_scope(integration_id: &str) -> String {
    format!("integration:{integration_id}")
}

impl Store {
    /// The value of `key` in `scope`, as JSON text.
    pub async fn kv_get(&self, scope: &str, key: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT value FROM kv_entries WHERE scope = $1 AND key = $2")
            .bind(scope)
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|row| row.try_get("value")).transpose()?)
    }

    /// Stores `value` (JSON text) unless that would make `scope` hold more than `max_keys`
    /// keys; `false` when refused. Concurrent writers of new keys cannot overshoot the limit
    /// together: the count and the insert are one statement, serialized per scope.
    pub async fn kv_set(&self, scope: &str, key: &str, value: &str, max_keys: i64) -> Result<bool> {
        let now = now_ms();
        let update = sqlx::query("UPDATE kv_entries SET value = $3, updated_at = $4 WHERE scope = $1 AND key = $2")
            .bind(scope)
            .bind(key)
            .bind(value)
            .bind(now);
        let insert = sqlx::query(
            "INSERT INTO kv_entries (scope, key, value, updated_at) \
             SELECT $1, $2, $3, $4 WHERE (SELECT COUNT(*) FROM kv_entries WHERE scope = $1) < $5 \
             ON CONFLICT (scope, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(scope)
        .bind(key)
        .bind(value)
        .bind(now)
        .bind(max_keys);
        self.upsert_within_cap(&format!("kv:{scope}"), update, insert).await
    }

    /// Removes `key` from `scope`.
    pub async fn kv_delete(&self, scope: &str, key: &str) -> Result<()> {
        sqlx::query("DELETE FROM kv_entries WHERE scope = $1 AND key = $2")
            .bind(scope)
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Up to `limit` keys of `scope` starting with `prefix`, sorted.
    pub async fn kv_list(&self, scope: &str, prefix: &str, limit: i64) -> Result<Vec<String>> {
        // `length` rather than a bound count: PostgreSQL's substr takes an integer, not the
        // bigint a bound i64 is.
        let rows = sqlx::query(
            "SELECT key FROM kv_entries WHERE scope = $1 AND substr(key, 1, length($2)) = $2 ORDER BY key LIMIT $3",
        )
        .bind(scope)
        .bind(prefix)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|row| row.try_get("key")).collect::<Result<_, _>>()?)
    }
}
