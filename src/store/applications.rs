//! Applications: externally hosted apps, their tokens, webhooks, subscriptions,
//! parameters, outgoing deliveries and the private development apps.

mod authorizations;
mod deliveries;
mod lists;
mod oauth;
mod unfurls;
mod webhook_updates;
mod webhooks;

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::{AnyQuery, Result, Store, StoreError, now_ms};
use crate::applications::settings::ApplicationSettings;

pub use authorizations::{Authorizations, TooManyContexts};
pub(super) use deliveries::write_event_work;
pub use deliveries::{DeliveryAttempt, DeliveryRecord, NewDelivery};
pub use lists::{ListRefusal, SshKeyRecord, UnfurlKind};
pub use oauth::{OAuthCode, Redeemed, RefreshToken};
pub use webhooks::{DeliveryRoute, SubscriptionRecord, WebhookRecord};

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
    /// Everything else it is set to do (the `settings` column, JSON).
    pub settings: ApplicationSettings,
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
    /// The user who created it (`None`: the operator).
    pub owner_id: Option<String>,
    /// Connected (multi-org, `connectToSpace`): only it may update itself.
    pub connected: bool,
    /// Bumped by every write of the row (see [`Store::modify_application`]).
    pub version: i64,
}

const APP_COLUMNS: &str = "id, org_id, name, client_id, client_secret_sealed, signing_key_sealed, \
     verification_sealed, auth_sealed, settings, status, last_cc_access_at, last_healthy_at, created_at, updated_at, \
     owner_id, connected, version";

fn app_row(row: &AnyRow) -> Result<ApplicationRecord> {
    let settings: String = row.try_get("settings")?;
    Ok(ApplicationRecord {
        id: row.try_get("id")?,
        org_id: row.try_get("org_id")?,
        name: row.try_get("name")?,
        client_id: row.try_get("client_id")?,
        client_secret_sealed: row.try_get("client_secret_sealed")?,
        signing_key_sealed: row.try_get("signing_key_sealed")?,
        verification_sealed: row.try_get("verification_sealed")?,
        auth_sealed: row.try_get("auth_sealed")?,
        settings: serde_json::from_str(&settings)?,
        status: row.try_get("status")?,
        last_cc_access_at: row.try_get("last_cc_access_at")?,
        last_healthy_at: row.try_get("last_healthy_at")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        owner_id: row.try_get("owner_id")?,
        connected: row.try_get::<i64, _>("connected")? != 0,
        version: row.try_get("version")?,
    })
}

/// `sql` with the parameters of an [`AppFilter`] bound in order (`$1`…`$4`, then the owners).
fn bind_filter<'q>(sql: &'q str, pattern: &Option<String>, filter: &AppFilter, owners: &[String]) -> AnyQuery<'q> {
    let mut query = sqlx::query(sql)
        .bind(pattern.clone())
        .bind(i64::from(filter.with_archived))
        .bind(i64::from(filter.with_managed))
        .bind(filter.visible_to_user.clone());
    for owner in owners {
        query = query.bind(owner.clone());
    }
    query
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
    /// `access` (client credentials), `permanent`, or `user` (an OAuth authorization-code or
    /// implicit token acting for `user_id`).
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
    /// The user a `user` token acts for.
    pub user_id: Option<String>,
    /// The authorization a `user` token came from.
    pub grant_id: Option<String>,
}

const TOKEN_COLUMNS: &str =
    "id, app_id, token_hash, kind, name, scope, expires_at, created_at, last_used_at, user_id, grant_id";

fn token_row(row: &AnyRow) -> Result<AppTokenRecord> {
    Ok(AppTokenRecord {
        id: row.try_get("id")?,
        app_id: row.try_get("app_id")?,
        token_hash: row.try_get("token_hash")?,
        kind: row.try_get("kind")?,
        name: row.try_get("name")?,
        scope: row.try_get("scope")?,
        expires_at: row.try_get("expires_at")?,
        created_at: row.try_get("created_at")?,
        last_used_at: row.try_get("last_used_at")?,
        user_id: row.try_get("user_id")?,
        grant_id: row.try_get("grant_id")?,
    })
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
    /// The user who created it (`None`: the operator); only they list it.
    pub owner_id: Option<String>,
}

/// A sealed secret of an application, replaced on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppSecret {
    /// The OAuth client secret.
    ClientSecret,
    /// The HMAC signing key of its payloads.
    SigningKey,
    /// The (deprecated) verification token.
    VerificationToken,
}

/// Which applications a list shows.
#[derive(Debug, Clone, Default)]
pub struct AppFilter {
    /// Case-insensitive part of the name.
    pub name: Option<String>,
    /// Archived ones too.
    pub with_archived: bool,
    /// Connected (multi-org) ones too.
    pub with_managed: bool,
    /// Only those a user may see: of their organizations, or owned by them.
    pub visible_to_user: Option<String>,
    /// Only those owned by one of these users (`None` in the list: the operator).
    pub owners: Option<Vec<Option<String>>>,
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
            "INSERT INTO applications ({APP_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, 0) ON CONFLICT DO NOTHING"
        ))
        .bind(&app.id)
        .bind(&app.org_id)
        .bind(&app.name)
        .bind(&app.client_id)
        .bind(&app.client_secret_sealed)
        .bind(&app.signing_key_sealed)
        .bind(&app.verification_sealed)
        .bind(&app.auth_sealed)
        .bind(serde_json::to_string(&app.settings)?)
        .bind(&app.status)
        .bind(app.last_cc_access_at)
        .bind(app.last_healthy_at)
        .bind(app.created_at)
        .bind(app.updated_at)
        .bind(&app.owner_id)
        .bind(i64::from(app.connected))
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
        filter: &AppFilter,
        order: AppOrder,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<ApplicationRecord>, i64)> {
        let pattern = filter.name.as_ref().map(|n| format!("%{}%", n.to_lowercase()));
        let mut conditions = vec![
            "($1 IS NULL OR LOWER(name) LIKE $1)".to_owned(),
            "($2 = 1 OR status <> 'archived')".to_owned(),
            "($3 = 1 OR connected = 0)".to_owned(),
            "($4 IS NULL OR owner_id = $4 OR org_id IN (SELECT org_id FROM org_members WHERE user_id = $4))".to_owned(),
        ];
        let owners = filter.owners.clone().unwrap_or_default();
        let named: Vec<String> = owners.iter().flatten().cloned().collect();
        if filter.owners.is_some() {
            let mut any = vec!["1 = 0".to_owned()];
            if owners.iter().any(Option::is_none) {
                any.push("owner_id IS NULL".to_owned());
            }
            any.extend((0..named.len()).map(|i| format!("owner_id = ${}", 5 + i)));
            conditions.push(format!("({})", any.join(" OR ")));
        }
        let where_clause = conditions.join(" AND ");
        let order_by = match order {
            AppOrder::Name => "LOWER(name), id",
            AppOrder::Created => "created_at, id",
            AppOrder::CreatedDesc => "created_at DESC, id DESC",
        };
        let next = 5 + named.len();
        let page_sql = format!(
            "SELECT {APP_COLUMNS} FROM applications WHERE {where_clause} ORDER BY {order_by} LIMIT ${next} OFFSET ${}",
            next + 1
        );
        let count_sql = format!("SELECT COUNT(*) AS n FROM applications WHERE {where_clause}");
        let bind = |sql| bind_filter(sql, &pattern, filter, &named);
        let rows = bind(&page_sql).bind(limit).bind(offset).fetch_all(&self.pool).await?;
        let total = bind(&count_sql).fetch_one(&self.pool).await?.try_get::<i64, _>("n")?;
        Ok((rows.iter().map(app_row).collect::<Result<_>>()?, total))
    }

    /// Writes `app`'s name, settings and endpoint credentials if the row is still at the
    /// version `app` was read at, bumping it; `false` when another write came first (re-read
    /// and re-apply: see `api::applications::modify`). Status and secrets have their own
    /// narrow updates, so this never touches them.
    pub async fn update_application(&self, app: &ApplicationRecord) -> Result<bool> {
        let written = sqlx::query(
            "UPDATE applications SET name = $2, auth_sealed = $3, settings = $4, updated_at = $5, \
             version = version + 1 WHERE id = $1 AND version = $6",
        )
        .bind(&app.id)
        .bind(&app.name)
        .bind(&app.auth_sealed)
        .bind(serde_json::to_string(&app.settings)?)
        .bind(now_ms())
        .bind(app.version)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(written == 1)
    }

    /// Reads the application, applies `change` and writes it with [`Store::update_application`],
    /// re-reading and re-applying when another write landed in between, so concurrent changes
    /// never lose each other. `None` when there is no such application.
    pub async fn modify_application<E: From<StoreError>>(
        &self,
        id: &str,
        mut change: impl FnMut(&mut ApplicationRecord) -> std::result::Result<(), E>,
    ) -> std::result::Result<Option<ApplicationRecord>, E> {
        loop {
            let Some(mut app) = self.application(id).await? else { return Ok(None) };
            change(&mut app)?;
            if self.update_application(&app).await? {
                app.version += 1;
                return Ok(Some(app));
            }
            tokio::task::yield_now().await;
        }
    }

    /// Replaces one sealed secret of an application (`client_secret`, `signing_key` or
    /// `verification`), touching nothing else.
    pub async fn set_application_secret(&self, id: &str, secret: AppSecret, sealed: &str) -> Result<()> {
        let column = match secret {
            AppSecret::ClientSecret => "client_secret_sealed",
            AppSecret::SigningKey => "signing_key_sealed",
            AppSecret::VerificationToken => "verification_sealed",
        };
        sqlx::query(&format!("UPDATE applications SET {column} = $2, updated_at = $3 WHERE id = $1"))
            .bind(id)
            .bind(sealed)
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The per-context "for me" UI toggles of one user: `(context, disabled)`.
    pub async fn user_ui_toggles(&self, app_id: &str, user_id: &str) -> Result<Vec<(String, bool)>> {
        let rows = sqlx::query(
            "SELECT context, disabled FROM application_user_ui WHERE app_id = $1 AND user_id = $2 ORDER BY context",
        )
        .bind(app_id)
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|row| Ok((row.try_get("context")?, row.try_get::<i64, _>("disabled")? != 0))).collect()
    }

    /// Sets one user's toggle in a context; `false` when it would be their `max`+1st context.
    pub async fn set_user_ui_toggle(
        &self,
        app_id: &str,
        user_id: &str,
        context: &str,
        disabled: bool,
        max: i64,
    ) -> Result<bool> {
        // One statement counts and writes; serialized per user so that, on PostgreSQL too,
        // concurrent toggles cannot both find room.
        let mut tx = self.pool.begin().await?;
        self.serialize_on(&mut tx, &format!("app-ui:{app_id}:{user_id}")).await?;
        let written = sqlx::query(
            "INSERT INTO application_user_ui (app_id, user_id, context, disabled, updated_at) \
             SELECT $1, $2, $3, $4, $5 WHERE (SELECT COUNT(*) FROM application_user_ui \
                WHERE app_id = $1 AND user_id = $2 AND context <> $3) < $6 \
             ON CONFLICT (app_id, user_id, context) DO UPDATE SET disabled = $4, updated_at = $5",
        )
        .bind(app_id)
        .bind(user_id)
        .bind(context)
        .bind(i64::from(disabled))
        .bind(now_ms())
        .bind(max)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(written == 1)
    }

    /// Archives the application if its status is one of `from`, and in the same transaction
    /// revokes every token it holds ([`revoke_app_tokens`]) and cancels what it was still
    /// owed: no request can see it archived with a token still working, nor find a token
    /// gone while it still looks active. `false` when its status was not one of `from`.
    pub async fn archive_application(&self, id: &str, from: &[&str]) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        if !set_status(&mut tx, id, from, "archived").await? {
            return Ok(false);
        }
        revoke_app_tokens(&mut tx, id).await?;
        deliveries::cancel_pending(&mut tx, id).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Moves an active application to `uninstalling` and queues its ApplicationUninstalledPayload
    /// in the same transaction (a crash between the two would leave it uninstalling with
    /// nothing that ever finishes the uninstall). `false` when it was not active.
    pub async fn begin_application_uninstall(&self, id: &str, payload: &NewDelivery) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        if !set_status(&mut tx, id, &["active"], "uninstalling").await? {
            return Ok(false);
        }
        deliveries::insert_deliveries(&mut tx, self.backend, std::slice::from_ref(payload)).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Makes an uninstalling or archived application active again, in one transaction with
    /// cancelling its pending (uninstall) payload and, coming back from `archived`, deleting
    /// any token issued while it was being archived, so nothing of before comes back with it.
    /// `false` when it was active already.
    pub async fn restore_application(&self, id: &str) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        if set_status(&mut tx, id, &["archived"], "active").await? {
            revoke_app_tokens(&mut tx, id).await?;
        } else if !set_status(&mut tx, id, &["uninstalling"], "active").await? {
            return Ok(false);
        }
        deliveries::cancel_pending(&mut tx, id).await?;
        tx.commit().await?;
        Ok(true)
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

    /// Stores an application token.
    pub async fn insert_app_token(&self, token: &AppTokenRecord) -> Result<()> {
        sqlx::query(&format!(
            "INSERT INTO application_tokens ({TOKEN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
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
        .bind(&token.user_id)
        .bind(&token.grant_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The unexpired application token with this hash, marking it used. Never a token of an
    /// archived application, even one issued while it was being archived.
    pub async fn app_token_by_hash(&self, token_hash: &str) -> Result<Option<AppTokenRecord>> {
        let now = now_ms();
        let row = sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM application_tokens WHERE token_hash = $1 AND (expires_at IS NULL OR expires_at > $2) \
             AND EXISTS (SELECT 1 FROM applications a WHERE a.id = application_tokens.app_id AND a.status <> 'archived')"
        ))
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        let Some(token) = row.as_ref().map(token_row).transpose()? else { return Ok(None) };
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
            .try_get::<i64, _>(0)?;
        Ok((rows.iter().map(token_row).collect::<Result<_>>()?, total))
    }

    /// One token of an application.
    pub async fn app_token(&self, app_id: &str, id: &str) -> Result<Option<AppTokenRecord>> {
        let row = sqlx::query(&format!("SELECT {TOKEN_COLUMNS} FROM application_tokens WHERE app_id = $1 AND id = $2"))
            .bind(app_id)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(token_row).transpose()
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

    /// Deletes one token by its hash if it belongs to `app_id` (RFC 7009 revocation).
    pub async fn delete_app_token_by_hash(&self, app_id: &str, token_hash: &str) -> Result<bool> {
        let deleted = sqlx::query("DELETE FROM application_tokens WHERE app_id = $1 AND token_hash = $2")
            .bind(app_id)
            .bind(token_hash)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(deleted == 1)
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
        row.map(|row| row.try_get("value")).transpose().map_err(Into::into)
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
        rows.iter().map(|row| Ok((row.try_get("param_key")?, row.try_get("value")?))).collect()
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
        let update = sqlx::query(
            "UPDATE application_parameters SET value = $4, updated_at = $5 \
             WHERE app_id = $1 AND profile = $2 AND param_key = $3",
        )
        .bind(app_id)
        .bind(profile)
        .bind(key)
        .bind(value)
        .bind(now);
        let insert = sqlx::query(
            "INSERT INTO application_parameters (app_id, profile, param_key, value, updated_at) \
             SELECT $1, $2, $3, $4, $5 WHERE (SELECT COUNT(*) FROM application_parameters \
             WHERE app_id = $1 AND profile = $2) < $6 ON CONFLICT (app_id, profile, param_key) DO UPDATE SET value = $4",
        )
        .bind(app_id)
        .bind(profile)
        .bind(key)
        .bind(value)
        .bind(now)
        .bind(max);
        let written = self.upsert_within_cap(&format!("app-parameters:{app_id}:{profile}"), update, insert).await?;
        Ok(if written { Ok(()) } else { Err(ParameterLimit::TooMany) })
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
        row.map(|row| Ok((row.try_get("kid")?, row.try_get("private_key_sealed")?))).transpose()
    }

    /// Every stored server key (kid and sealed PKCS#8), the signing one first.
    pub async fn application_server_keys(&self) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query("SELECT kid, private_key_sealed FROM application_server_keys ORDER BY created_at, kid")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|row| Ok((row.try_get("kid")?, row.try_get("private_key_sealed")?))).collect()
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
            "INSERT INTO private_applications (id, name, description, redirect_uris, page_slug, client_secret_sealed, \
             created_at, owner_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&app.id)
        .bind(&app.name)
        .bind(&app.description)
        .bind(uris)
        .bind(&app.page_slug)
        .bind(&app.client_secret_sealed)
        .bind(app.created_at)
        .bind(&app.owner_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The private development applications of one owner (`None`: the operator), newest first.
    pub async fn private_apps(&self, owner_id: Option<&str>) -> Result<Vec<PrivateAppRecord>> {
        let rows = sqlx::query(
            "SELECT id, name, description, redirect_uris, page_slug, client_secret_sealed, created_at, owner_id \
             FROM private_applications WHERE (owner_id = $1 OR (owner_id IS NULL AND $2 = 1)) ORDER BY seq DESC",
        )
        .bind(owner_id.unwrap_or_default())
        .bind(i64::from(owner_id.is_none()))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let uris: Option<String> = row.try_get("redirect_uris")?;
                Ok(PrivateAppRecord {
                    id: row.try_get("id")?,
                    name: row.try_get("name")?,
                    description: row.try_get("description")?,
                    redirect_uris: uris.map(|u| serde_json::from_str(&u)).transpose()?,
                    page_slug: row.try_get("page_slug")?,
                    client_secret_sealed: row.try_get("client_secret_sealed")?,
                    created_at: row.try_get("created_at")?,
                    owner_id: row.try_get("owner_id")?,
                })
            })
            .collect()
    }
}

/// Sets the status of application `id` to `to` if it is one of `from`: the one way a status
/// changes, always inside the transaction that does what the change entails.
async fn set_status(connection: &mut AnyConnection, id: &str, from: &[&str], to: &str) -> Result<bool> {
    let placeholders: Vec<String> = (0..from.len()).map(|i| format!("${}", i + 4)).collect();
    let sql = format!(
        "UPDATE applications SET status = $2, updated_at = $3 WHERE id = $1 AND status IN ({})",
        placeholders.join(", ")
    );
    let mut query = sqlx::query(&sql).bind(id).bind(to).bind(now_ms());
    for status in from {
        query = query.bind(*status);
    }
    Ok(query.execute(connection).await?.rows_affected() == 1)
}

/// Revokes every token of an application: access, permanent and user tokens, refresh tokens
/// and unused authorization codes.
async fn revoke_app_tokens(connection: &mut AnyConnection, app_id: &str) -> Result<()> {
    for table in ["application_tokens", "oauth_refresh_tokens", "oauth_codes"] {
        sqlx::query(&format!("DELETE FROM {table} WHERE app_id = $1")).bind(app_id).execute(&mut *connection).await?;
    }
    Ok(())
}
