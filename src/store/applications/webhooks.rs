//! Application webhooks and their subscriptions.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::applications::webhook_settings::WebhookSettings;
use crate::store::{Result, Store};

/// A webhook of an application.
#[derive(Debug, Clone)]
pub struct WebhookRecord {
    /// Its id.
    pub id: String,
    /// The application.
    pub app_id: String,
    /// Display name.
    pub name: String,
    /// What it is set to do (stored as JSON).
    pub settings: WebhookSettings,
    /// Signing key, sealed.
    pub signing_key_sealed: String,
    /// Endpoint credentials and custom headers as sealed JSON.
    pub secrets_sealed: String,
    /// Archived (deleted) webhooks receive nothing.
    pub archived: bool,
    /// Creation time (ms).
    pub created_at: i64,
    /// Last update (ms).
    pub updated_at: i64,
}

const WEBHOOK_COLUMNS: &str =
    "id, app_id, name, settings, signing_key_sealed, secrets_sealed, archived, created_at, updated_at";

fn webhook_row(row: &AnyRow) -> Result<WebhookRecord> {
    webhook_row_at(row, "")
}

/// A webhook from the columns named `{prefix}{column}` (see [`Store::delivery_routes`]).
fn webhook_row_at(row: &AnyRow, prefix: &str) -> Result<WebhookRecord> {
    let column = |name: &str| format!("{prefix}{name}");
    let settings: String = row.try_get(column("settings").as_str())?;
    Ok(WebhookRecord {
        id: row.try_get(column("id").as_str())?,
        app_id: row.try_get(column("app_id").as_str())?,
        name: row.try_get(column("name").as_str())?,
        settings: serde_json::from_str(&settings)?,
        signing_key_sealed: row.try_get(column("signing_key_sealed").as_str())?,
        secrets_sealed: row.try_get(column("secrets_sealed").as_str())?,
        archived: row.try_get::<i64, _>(column("archived").as_str())? != 0,
        created_at: row.try_get(column("created_at").as_str())?,
        updated_at: row.try_get(column("updated_at").as_str())?,
    })
}

/// A subscription of a webhook: which events it receives.
#[derive(Debug, Clone)]
pub struct SubscriptionRecord {
    /// Its id.
    pub id: String,
    /// The webhook.
    pub webhook_id: String,
    /// Display name.
    pub name: String,
    /// Disabled subscriptions match nothing.
    pub enabled: bool,
    /// The SubscriptionDefinition (`subjectCode`, `filters`, `eventTypeCodes`).
    pub definition: serde_json::Value,
    /// Creation time (ms).
    pub created_at: i64,
}

const SUBSCRIPTION_COLUMNS: &str = "id, webhook_id, name, enabled, definition, created_at";

fn subscription_row(row: &AnyRow) -> Result<SubscriptionRecord> {
    subscription_row_at(row, "")
}

/// A subscription from the columns named `{prefix}{column}` (see [`Store::delivery_routes`]).
fn subscription_row_at(row: &AnyRow, prefix: &str) -> Result<SubscriptionRecord> {
    let column = |name: &str| format!("{prefix}{name}");
    let definition: String = row.try_get(column("definition").as_str())?;
    Ok(SubscriptionRecord {
        id: row.try_get(column("id").as_str())?,
        webhook_id: row.try_get(column("webhook_id").as_str())?,
        name: row.try_get(column("name").as_str())?,
        enabled: row.try_get::<i64, _>(column("enabled").as_str())? != 0,
        definition: serde_json::from_str(&definition)?,
        created_at: row.try_get(column("created_at").as_str())?,
    })
}

/// A live webhook of an active application and its enabled subscriptions: where an event of
/// the application's organization may go.
#[derive(Debug, Clone)]
pub struct DeliveryRoute {
    /// The application.
    pub app: super::ApplicationRecord,
    /// The webhook.
    pub webhook: WebhookRecord,
    /// Its enabled subscriptions, oldest first.
    pub subscriptions: Vec<SubscriptionRecord>,
    /// The application's pending deliveries, counted up to the `backlog_cap` the routes were
    /// read with.
    pub backlog: i64,
}

/// `columns` (comma-separated) of table alias `alias`, each renamed `{prefix}{column}`.
fn aliased(columns: &str, alias: &str, prefix: &str) -> String {
    columns.split(", ").map(|c| format!("{alias}.{c} AS {prefix}{c}")).collect::<Vec<_>>().join(", ")
}

impl Store {
    /// Stores a new webhook.
    pub async fn insert_webhook(&self, webhook: &WebhookRecord) -> Result<()> {
        sqlx::query(&format!(
            "INSERT INTO application_webhooks ({WEBHOOK_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(&webhook.id)
        .bind(&webhook.app_id)
        .bind(&webhook.name)
        .bind(serde_json::to_string(&webhook.settings)?)
        .bind(&webhook.signing_key_sealed)
        .bind(&webhook.secrets_sealed)
        .bind(i64::from(webhook.archived))
        .bind(webhook.created_at)
        .bind(webhook.updated_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// One webhook of an application.
    pub async fn webhook(&self, app_id: &str, id: &str) -> Result<Option<WebhookRecord>> {
        let row =
            sqlx::query(&format!("SELECT {WEBHOOK_COLUMNS} FROM application_webhooks WHERE app_id = $1 AND id = $2"))
                .bind(app_id)
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        row.as_ref().map(webhook_row).transpose()
    }

    /// A page of an application's webhooks, oldest first, and their total.
    pub async fn list_webhooks(
        &self,
        app_id: &str,
        with_archived: bool,
        query: &str,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<WebhookRecord>, i64)> {
        let filter = "app_id = $1 AND ($2 = 1 OR archived = 0) AND LOWER(name) LIKE $3";
        let pattern = format!("%{}%", query.to_lowercase());
        let archived = i64::from(with_archived);
        let rows = sqlx::query(&format!(
            "SELECT {WEBHOOK_COLUMNS} FROM application_webhooks WHERE {filter} ORDER BY created_at, id LIMIT $4 OFFSET $5"
        ))
        .bind(app_id)
        .bind(archived)
        .bind(&pattern)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        let total = sqlx::query(&format!("SELECT COUNT(*) FROM application_webhooks WHERE {filter}"))
            .bind(app_id)
            .bind(archived)
            .bind(&pattern)
            .fetch_one(&self.pool)
            .await?
            .get::<i64, _>(0);
        Ok((rows.iter().map(webhook_row).collect::<Result<_>>()?, total))
    }

    /// The unarchived webhooks of an application.
    pub async fn live_webhooks(&self, app_id: &str) -> Result<Vec<WebhookRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {WEBHOOK_COLUMNS} FROM application_webhooks WHERE app_id = $1 AND archived = 0 ORDER BY created_at, id"
        ))
        .bind(app_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(webhook_row).collect()
    }

    /// Every route of an organization's events ([`DeliveryRoute`]) in one read: the live
    /// webhooks of its active applications that have an enabled subscription, with those
    /// subscriptions. Read per event, so a webhook deleted or disabled is never delivered to
    /// by an event that comes after.
    pub async fn delivery_routes(&self, org_id: &str, backlog_cap: i64) -> Result<Vec<DeliveryRoute>> {
        let sql = format!(
            "SELECT {}, {}, {}, \
                (SELECT COUNT(*) FROM (SELECT 1 FROM application_deliveries d \
                    WHERE d.app_id = a.id AND d.status = 'pending' LIMIT $2) p) AS backlog \
             FROM applications a \
             JOIN application_webhooks w ON w.app_id = a.id AND w.archived = 0 \
             JOIN application_subscriptions s ON s.webhook_id = w.id AND s.enabled = 1 \
             WHERE a.org_id = $1 AND a.status = 'active' \
             ORDER BY a.created_at, a.id, w.created_at, w.id, s.created_at, s.id",
            aliased(super::APP_COLUMNS, "a", ""),
            aliased(WEBHOOK_COLUMNS, "w", "w_"),
            aliased(SUBSCRIPTION_COLUMNS, "s", "s_"),
        );
        let rows = sqlx::query(&sql).bind(org_id).bind(backlog_cap).fetch_all(&self.pool).await?;
        let mut routes: Vec<DeliveryRoute> = Vec::new();
        for row in &rows {
            let subscription = subscription_row_at(row, "s_")?;
            match routes.last_mut() {
                Some(route) if route.webhook.id == subscription.webhook_id => route.subscriptions.push(subscription),
                _ => routes.push(DeliveryRoute {
                    app: super::app_row(row)?,
                    webhook: webhook_row_at(row, "w_")?,
                    subscriptions: vec![subscription],
                    backlog: row.try_get("backlog")?,
                }),
            }
        }
        Ok(routes)
    }

    /// Stores a new subscription.
    pub async fn insert_subscription(&self, subscription: &SubscriptionRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO application_subscriptions (id, webhook_id, name, enabled, definition, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&subscription.id)
        .bind(&subscription.webhook_id)
        .bind(&subscription.name)
        .bind(i64::from(subscription.enabled))
        .bind(subscription.definition.to_string())
        .bind(subscription.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The subscriptions of a webhook, oldest first.
    pub async fn subscriptions(&self, webhook_id: &str) -> Result<Vec<SubscriptionRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM application_subscriptions WHERE webhook_id = $1 ORDER BY created_at, id"
        ))
        .bind(webhook_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(subscription_row).collect()
    }

    /// Updates a subscription's name, enabled flag and definition.
    pub async fn update_subscription(&self, subscription: &SubscriptionRecord) -> Result<()> {
        sqlx::query(
            "UPDATE application_subscriptions SET name = $3, enabled = $4, definition = $5 \
             WHERE webhook_id = $1 AND id = $2",
        )
        .bind(&subscription.webhook_id)
        .bind(&subscription.id)
        .bind(&subscription.name)
        .bind(i64::from(subscription.enabled))
        .bind(subscription.definition.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Deletes a subscription; `false` when there was none.
    pub async fn delete_subscription(&self, webhook_id: &str, id: &str) -> Result<bool> {
        let deleted = sqlx::query("DELETE FROM application_subscriptions WHERE webhook_id = $1 AND id = $2")
            .bind(webhook_id)
            .bind(id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(deleted == 1)
    }
}
