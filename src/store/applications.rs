//! Applications: externally hosted apps, their tokens, webhooks, subscriptions,
//! parameters, outgoing deliveries and the private development apps.

mod deliveries;
mod webhooks;

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Result, Store, now_ms};

pub use deliveries::{DeliveryAttempt, DeliveryRecord, NewDelivery};
pub use webhooks::{SubscriptionRecord, WebhookRecord};

/// An application.
#[derive(Debug, Clone)]
pub struct ApplicationRecord {
    /// Its id.
    pub id: String,
    /// The organization whose events it receives, if any.
    pub org_id: Option<String>,
    /// Display name.
    pub name: String,
    /// The id it authenticates with.
    pub client_id: String,
    /// Client secret, sealed.
    pub client_secret_sealed: String,
    /// Signing key, sealed.
    pub signing_key_sealed: String,
    /// Verification token, sealed.
    pub verification_sealed: String,
    /// Endpoint credentials (basic/bearer) as sealed JSON.
    pub auth_sealed: Option<String>,
    /// Every other field, as JSON.
    pub settings: serde_json::Value,
    /// `active`, `uninstalling` or `archived`.
    pub status: String,
    /// Last successful client-credentials exchange (ms).
    pub last_cc_access_at: Option<i64>,
    /// Last report-as-healthy (ms).
    pub last_healthy_at: Option<i64>,
    /// Creation time (ms).
    pub created_at: i64,
    /// Last update (ms).
    pub updated_at: i64,
}

const APP_COLUMNS: &str = "id, org_id, name, client_id, client_secret_sealed, signing_key_sealed, \
     verification_sealed, auth_sealed, settings, status, last_cc_access_at, last_healthy_at, created_at, updated_at";

fn app_row(row: &AnyRow) -> Result<ApplicationRecord> {
    let settings: String = row.get(8);
    Ok(ApplicationRecord {
        id: row.get(0),
        org_id: row.get(1),
        name: row.get(2),
        client_id: row.get(3),
        client_secret_sealed: row.get(4),
        signing_key_sealed: row.get(5),
        verification_sealed: row.get(6),
        auth_sealed: row.get(7),
        settings: serde_json::from_str(&settings)?,
        status: row.get(9),
        last_cc_access_at: row.get(10),
        last_healthy_at: row.get(11),
        created_at: row.get(12),
        updated_at: row.get(13),
    })
}

/// How a list of applications is sorted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppOrder {
    /// By name, A to Z.
    Name,
    /// Oldest first.
    Created,
    /// Newest first.
    CreatedDesc,
}

/// A token an application authenticates with.
#[derive(Debug, Clone)]
pub struct AppTokenRecord {
    /// Its id.
    pub id: String,
    /// The application.
    pub app_id: String,
    /// SHA-256 of the token.
    pub token_hash: String,
    /// `access` (client credentials) or `permanent`.
    pub kind: String,
    /// Display name.
    pub name: String,
    /// Granted scope.
    pub scope: String,
    /// Expiry (ms), none for no expiry.
    pub expires_at: Option<i64>,
    /// Creation time (ms).
    pub created_at: i64,
    /// Last use (ms).
    pub last_used_at: Option<i64>,
}

const TOKEN_COLUMNS: &str = "id, app_id, token_hash, kind, name, scope, expires_at, created_at, last_used_at";

fn token_row(row: &AnyRow) -> AppTokenRecord {
    AppTokenRecord {
        id: row.get(0),
        app_id: row.get(1),
        token_hash: row.get(2),
        kind: row.get(3),
        name: row.get(4),
        scope: row.get(5),
        expires_at: row.get(6),
        created_at: row.get(7),
        last_used_at: row.get(8),
    }
}

/// A private development application.
#[derive(Debug, Clone)]
pub struct PrivateAppRecord {
    /// Its id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Redirect URIs, when any.
    pub redirect_uris: Option<Vec<String>>,
    /// The page slug.
    pub page_slug: Option<String>,
    /// The client secret, sealed, when one was generated.
    pub client_secret_sealed: Option<String>,
    /// Creation time (ms).
    pub created_at: i64,
}

/// Setting a parameter failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParameterLimit {
    /// The application (or profile) already has the maximum number of parameters.
    TooMany,
}

impl Store {
    /// Inserts an application; `false` when the client id is taken.
    pub async fn insert_application(&self, app: &ApplicationRecord) -> Result<bool> {
        let inserted = sqlx::query(&format!(
            "INSERT INTO applications ({APP_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
             ON CONFLICT DO NOTHING"
        ))
        .bind(&app.id)
        .bind(&app.org_id)
        .bind(&app.name)
        .bind(&app.client_id)
        .bind(&app.client_secret_sealed)
        .bind(&app.signing_key_sealed)
        .bind(&app.verification_sealed)
        .bind(&app.auth_sealed)
        .bind(app.settings.to_string())
        .bind(&app.status)
        .bind(app.last_cc_access_at)
        .bind(app.last_healthy_at)
        .bind(app.created_at)
        .bind(app.updated_at)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(inserted == 1)
    }

    /// The application with this id.
    pub async fn application(&self, id: &str) -> Result<Option<ApplicationRecord>> {
        let row = sqlx::query(&format!("SELECT {APP_COLUMNS} FROM applications WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(app_row).transpose()
    }

    /// The application with this client id.
    pub async fn application_by_client_id(&self, client_id: &str) -> Result<Option<ApplicationRecord>> {
        let row = sqlx::query(&format!("SELECT {APP_COLUMNS} FROM applications WHERE client_id = $1"))
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(app_row).transpose()
    }

    /// A page of applications and the total that match.
    pub async fn list_applications(
        &self,
        name: Option<&str>,
        with_archived: bool,
        order: AppOrder,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<ApplicationRecord>, i64)> {
        let pattern = name.map(|n| format!("%{}%", n.to_lowercase()));
        let archived = if with_archived { 1_i64 } else { 0 };
        let filter = "($1 IS NULL OR LOWER(name) LIKE $1) AND ($2 = 1 OR status <> 'archived')";
        let order_by = match order {
            AppOrder::Name => "LOWER(name), id",
            AppOrder::Created => "created_at, id",
            AppOrder::CreatedDesc => "created_at DESC, id DESC",
        };
        let rows = sqlx::query(&format!(
            "SELECT {APP_COLUMNS} FROM applications WHERE {filter} ORDER BY {order_by} LIMIT $3 OFFSET $4"
        ))
        .bind(&pattern)
        .bind(archived)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        let total = sqlx::query(&format!("SELECT COUNT(*) FROM applications WHERE {filter}"))
            .bind(&pattern)
            .bind(archived)
            .fetch_one(&self.pool)
            .await?
            .get::<i64, _>(0);
        Ok((rows.iter().map(app_row).collect::<Result<_>>()?, total))
    }

    /// Writes every mutable field of `app` (name, secrets, settings, status).
    pub async fn update_application(&self, app: &ApplicationRecord) -> Result<()> {
        sqlx::query(
            "UPDATE applications SET name = $2, client_secret_sealed = $3, signing_key_sealed = $4, \
             verification_sealed = $5, auth_sealed = $6, settings = $7, status = $8, updated_at = $9 WHERE id = $1",
        )
        .bind(&app.id)
        .bind(&app.name)
        .bind(&app.client_secret_sealed)
        .bind(&app.signing_key_sealed)
        .bind(&app.verification_sealed)
        .bind(&app.auth_sealed)
        .bind(app.settings.to_string())
        .bind(&app.status)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Sets the status of an application; with `from`, only when it currently has that status.
    pub async fn set_application_status(&self, id: &str, from: Option<&str>, status: &str) -> Result<bool> {
        let changed = sqlx::query(
            "UPDATE applications SET status = $2, updated_at = $3 WHERE id = $1 AND ($4 IS NULL OR status = $4)",
        )
        .bind(id)
        .bind(status)
        .bind(now_ms())
        .bind(from)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(changed == 1)
    }

    /// Records a successful client-credentials exchange.
    pub async fn touch_client_credentials_access(&self, id: &str) -> Result<()> {
        sqlx::query("UPDATE applications SET last_cc_access_at = $2 WHERE id = $1")
            .bind(id)
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records a report-as-healthy.
    pub async fn touch_application_healthy(&self, id: &str) -> Result<()> {
        sqlx::query("UPDATE applications SET last_healthy_at = $2 WHERE id = $1")
            .bind(id)
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The active applications of an organization.
    pub async fn active_applications_of_org(&self, org_id: &str) -> Result<Vec<ApplicationRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {APP_COLUMNS} FROM applications WHERE org_id = $1 AND status = 'active' ORDER BY created_at, id"
        ))
        .bind(org_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(app_row).collect()
    }

    /// Stores an application token.
    pub async fn insert_app_token(&self, token: &AppTokenRecord) -> Result<()> {
        sqlx::query(&format!(
            "INSERT INTO application_tokens ({TOKEN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(&token.id)
        .bind(&token.app_id)
        .bind(&token.token_hash)
        .bind(&token.kind)
        .bind(&token.name)
        .bind(&token.scope)
        .bind(token.expires_at)
        .bind(token.created_at)
        .bind(token.last_used_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The unexpired application token with this hash, marking it used.
    pub async fn app_token_by_hash(&self, token_hash: &str) -> Result<Option<AppTokenRecord>> {
        let now = now_ms();
        let row = sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM application_tokens WHERE token_hash = $1 AND (expires_at IS NULL OR expires_at > $2)"
        ))
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        let Some(token) = row.as_ref().map(token_row) else { return Ok(None) };
        sqlx::query("UPDATE application_tokens SET last_used_at = $2 WHERE id = $1")
            .bind(&token.id)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(Some(token))
    }

    /// A page of an application's tokens of one kind, oldest first, and their total.
    pub async fn list_app_tokens(
        &self,
        app_id: &str,
        kind: &str,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<AppTokenRecord>, i64)> {
        let rows = sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM application_tokens WHERE app_id = $1 AND kind = $2 \
             ORDER BY created_at, id LIMIT $3 OFFSET $4"
        ))
        .bind(app_id)
        .bind(kind)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        let total = sqlx::query("SELECT COUNT(*) FROM application_tokens WHERE app_id = $1 AND kind = $2")
            .bind(app_id)
            .bind(kind)
            .fetch_one(&self.pool)
            .await?
            .get::<i64, _>(0);
        Ok((rows.iter().map(token_row).collect(), total))
    }

    /// One token of an application.
    pub async fn app_token(&self, app_id: &str, id: &str) -> Result<Option<AppTokenRecord>> {
        let row = sqlx::query(&format!("SELECT {TOKEN_COLUMNS} FROM application_tokens WHERE app_id = $1 AND id = $2"))
            .bind(app_id)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(token_row))
    }

    /// Updates a token's name, scope and expiry.
    pub async fn update_app_token(&self, token: &AppTokenRecord) -> Result<()> {
        sqlx::query(
            "UPDATE application_tokens SET name = $3, scope = $4, expires_at = $5 WHERE app_id = $1 AND id = $2",
        )
        .bind(&token.app_id)
        .bind(&token.id)
        .bind(&token.name)
        .bind(&token.scope)
        .bind(token.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Deletes one token; `false` when there was none.
    pub async fn delete_app_token(&self, app_id: &str, id: &str) -> Result<bool> {
        let deleted = sqlx::query("DELETE FROM application_tokens WHERE app_id = $1 AND id = $2")
            .bind(app_id)
            .bind(id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(deleted == 1)
    }

    /// Deletes the expired tokens of an application.
    pub async fn delete_expired_app_tokens(&self, app_id: &str) -> Result<()> {
        sqlx::query("DELETE FROM application_tokens WHERE app_id = $1 AND expires_at IS NOT NULL AND expires_at <= $2")
            .bind(app_id)
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Revokes every token of an application.
    pub async fn delete_app_tokens(&self, app_id: &str) -> Result<()> {
        sqlx::query("DELETE FROM application_tokens WHERE app_id = $1").bind(app_id).execute(&self.pool).await?;
        Ok(())
    }

    /// A parameter's value (`profile` is `""` for app-level parameters).
    pub async fn app_parameter(&self, app_id: &str, profile: &str, key: &str) -> Result<Option<String>> {
        let row = sqlx::query(
            "SELECT value FROM application_parameters WHERE app_id = $1 AND profile = $2 AND param_key = $3",
        )
        .bind(app_id)
        .bind(profile)
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|row| row.get(0)))
    }

    /// Every parameter of an application (or profile), by key.
    pub async fn app_parameters(&self, app_id: &str, profile: &str) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT param_key, value FROM application_parameters WHERE app_id = $1 AND profile = $2 ORDER BY param_key",
        )
        .bind(app_id)
        .bind(profile)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
    }

    /// Sets a parameter, refusing a new key past `max` parameters.
    pub async fn set_app_parameter(
        &self,
        app_id: &str,
        profile: &str,
        key: &str,
        value: &str,
        max: i64,
    ) -> Result<Result<(), ParameterLimit>> {
        let now = now_ms();
        let updated = sqlx::query(
            "UPDATE application_parameters SET value = $4, updated_at = $5 \
             WHERE app_id = $1 AND profile = $2 AND param_key = $3",
        )
        .bind(app_id)
        .bind(profile)
        .bind(key)
        .bind(value)
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if updated == 1 {
            return Ok(Ok(()));
        }
        // Insert only while fewer than `max` exist: one statement, so two concurrent
        // inserts cannot both pass a separate count.
        let inserted = sqlx::query(
            "INSERT INTO application_parameters (app_id, profile, param_key, value, updated_at) \
             SELECT $1, $2, $3, $4, $5 WHERE (SELECT COUNT(*) FROM application_parameters \
             WHERE app_id = $1 AND profile = $2) < $6 ON CONFLICT (app_id, profile, param_key) DO UPDATE SET value = $4",
        )
        .bind(app_id)
        .bind(profile)
        .bind(key)
        .bind(value)
        .bind(now)
        .bind(max)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(if inserted == 1 { Ok(()) } else { Err(ParameterLimit::TooMany) })
    }

    /// Deletes a parameter; `false` when there was none.
    pub async fn delete_app_parameter(&self, app_id: &str, profile: &str, key: &str) -> Result<bool> {
        let deleted =
            sqlx::query("DELETE FROM application_parameters WHERE app_id = $1 AND profile = $2 AND param_key = $3")
                .bind(app_id)
                .bind(profile)
                .bind(key)
                .execute(&self.pool)
                .await?
                .rows_affected();
        Ok(deleted == 1)
    }

    /// The server's RSA key (kid and sealed PKCS#8), if one was made.
    pub async fn application_server_key(&self) -> Result<Option<(String, String)>> {
        let row =
            sqlx::query("SELECT kid, private_key_sealed FROM application_server_keys ORDER BY created_at, kid LIMIT 1")
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|row| (row.get(0), row.get(1))))
    }

    /// Every stored server key (kid and sealed PKCS#8), the signing one first.
    pub async fn application_server_keys(&self) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query("SELECT kid, private_key_sealed FROM application_server_keys ORDER BY created_at, kid")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
    }

    /// Stores a server key unless one exists already (the first one wins).
    pub async fn insert_application_server_key(&self, kid: &str, sealed: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO application_server_keys (kid, private_key_sealed, created_at) \
             SELECT $1, $2, $3 WHERE NOT EXISTS (SELECT 1 FROM application_server_keys)",
        )
        .bind(kid)
        .bind(sealed)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Stores a private development application.
    pub async fn insert_private_app(&self, app: &PrivateAppRecord) -> Result<()> {
        let uris = app.redirect_uris.as_ref().map(serde_json::to_string).transpose()?;
        sqlx::query(
            "INSERT INTO private_applications (id, name, description, redirect_uris, page_slug, client_secret_sealed, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&app.id)
        .bind(&app.name)
        .bind(&app.description)
        .bind(uris)
        .bind(&app.page_slug)
        .bind(&app.client_secret_sealed)
        .bind(app.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every private development application, newest first.
    pub async fn private_apps(&self) -> Result<Vec<PrivateAppRecord>> {
        let rows = sqlx::query(
            "SELECT id, name, description, redirect_uris, page_slug, client_secret_sealed, created_at \
             FROM private_applications ORDER BY seq DESC",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let uris: Option<String> = row.get(3);
                Ok(PrivateAppRecord {
                    id: row.get(0),
                    name: row.get(1),
                    description: row.get(2),
                    redirect_uris: uris.map(|u| serde_json::from_str(&u)).transpose()?,
                    page_slug: row.get(4),
                    client_secret_sealed: row.get(5),
                    created_at: row.get(6),
                })
            })
            .collect()
    }
}
