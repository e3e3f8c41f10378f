//! OAuth 2.0 state: authorization codes and refresh tokens (both stored as SHA-256 hashes),
//! and revoking everything one authorization (a *grant*) produced.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::store::{Result, Store, now_ms};

/// An authorization code, as issued by the authorization endpoint.
#[derive(Debug, Clone)]
pub struct OAuthCode {
    /// SHA-256 of the code.
    pub code_hash: String,
    /// The authorization this code starts; its tokens carry the same id.
    pub grant_id: String,
    /// The application it was issued to.
    pub app_id: String,
    /// The user who consented.
    pub user_id: String,
    /// The redirect URI the code was sent to; the token request must repeat it exactly.
    pub redirect_uri: String,
    /// The granted scope.
    pub scope: String,
    /// The PKCE S256 challenge, when the client sent one.
    pub code_challenge: Option<String>,
    /// Expiry (ms).
    pub expires_at: i64,
}

/// What redeeming a code found.
#[derive(Debug, Clone)]
pub enum Redeemed {
    /// The code, now used.
    Fresh(OAuthCode),
    /// The code was redeemed before: the caller revokes its grant.
    Reused(OAuthCode),
    /// No such code.
    Unknown,
}

/// A refresh token.
#[derive(Debug, Clone)]
pub struct RefreshToken {
    /// SHA-256 of the token.
    pub token_hash: String,
    /// The authorization it belongs to.
    pub grant_id: String,
    /// The application.
    pub app_id: String,
    /// The user it acts for.
    pub user_id: String,
    /// The granted scope.
    pub scope: String,
    /// Expiry (ms).
    pub expires_at: i64,
    /// When it was exchanged (rotated), if it was.
    pub used_at: Option<i64>,
}

fn code_row(row: &AnyRow) -> Result<OAuthCode> {
    Ok(OAuthCode {
        code_hash: row.try_get("code_hash")?,
        grant_id: row.try_get("grant_id")?,
        app_id: row.try_get("app_id")?,
        user_id: row.try_get("user_id")?,
        redirect_uri: row.try_get("redirect_uri")?,
        scope: row.try_get("scope")?,
        code_challenge: row.try_get("code_challenge")?,
        expires_at: row.try_get("expires_at")?,
    })
}

fn refresh_row(row: &AnyRow) -> Result<RefreshToken> {
    Ok(RefreshToken {
        token_hash: row.try_get("token_hash")?,
        grant_id: row.try_get("grant_id")?,
        app_id: row.try_get("app_id")?,
        user_id: row.try_get("user_id")?,
        scope: row.try_get("scope")?,
        expires_at: row.try_get("expires_at")?,
        used_at: row.try_get("used_at")?,
    })
}

const CODE_COLUMNS: &str =
    "code_hash, grant_id, app_id, user_id, redirect_uri, scope, code_challenge, expires_at, used_at";
const REFRESH_COLUMNS: &str = "token_hash, grant_id, app_id, user_id, scope, expires_at, used_at";

impl Store {
    /// Stores a new authorization code.
    pub async fn insert_oauth_code(&self, code: &OAuthCode) -> Result<()> {
        sqlx::query(
            "INSERT INTO oauth_codes (code_hash, grant_id, app_id, user_id, redirect_uri, scope, code_challenge, \
             expires_at, used_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, $9)",
        )
        .bind(&code.code_hash)
        .bind(&code.grant_id)
        .bind(&code.app_id)
        .bind(&code.user_id)
        .bind(&code.redirect_uri)
        .bind(&code.scope)
        .bind(&code.code_challenge)
        .bind(code.expires_at)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Marks a code used, atomically: of two concurrent redemptions exactly one is `Fresh`.
    pub async fn redeem_oauth_code(&self, code_hash: &str) -> Result<Redeemed> {
        let row = sqlx::query(&format!(
            "UPDATE oauth_codes SET used_at = $2 WHERE code_hash = $1 AND used_at IS NULL RETURNING {CODE_COLUMNS}"
        ))
        .bind(code_hash)
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = row {
            return Ok(Redeemed::Fresh(code_row(&row)?));
        }
        let row = sqlx::query(&format!("SELECT {CODE_COLUMNS} FROM oauth_codes WHERE code_hash = $1"))
            .bind(code_hash)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(row) => Redeemed::Reused(code_row(&row)?),
            None => Redeemed::Unknown,
        })
    }

    /// Stores a new refresh token.
    pub async fn insert_refresh_token(&self, token: &RefreshToken) -> Result<()> {
        sqlx::query(
            "INSERT INTO oauth_refresh_tokens (token_hash, grant_id, app_id, user_id, scope, expires_at, used_at, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, NULL, $7)",
        )
        .bind(&token.token_hash)
        .bind(&token.grant_id)
        .bind(&token.app_id)
        .bind(&token.user_id)
        .bind(&token.scope)
        .bind(token.expires_at)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A refresh token by hash, used or not.
    pub async fn refresh_token(&self, token_hash: &str) -> Result<Option<RefreshToken>> {
        let row = sqlx::query(&format!("SELECT {REFRESH_COLUMNS} FROM oauth_refresh_tokens WHERE token_hash = $1"))
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(refresh_row).transpose()
    }

    /// Marks a refresh token used (rotated); `false` when another request used it first.
    pub async fn use_refresh_token(&self, token_hash: &str) -> Result<bool> {
        let used =
            sqlx::query("UPDATE oauth_refresh_tokens SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL")
                .bind(token_hash)
                .bind(now_ms())
                .execute(&self.pool)
                .await?
                .rows_affected();
        Ok(used == 1)
    }

    /// Revokes everything an authorization produced: its access and refresh tokens, and its
    /// unused codes.
    pub async fn revoke_grant(&self, grant_id: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM application_tokens WHERE grant_id = $1").bind(grant_id).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM oauth_refresh_tokens WHERE grant_id = $1").bind(grant_id).execute(&mut *tx).await?;
        sqlx::query("UPDATE oauth_codes SET used_at = $2 WHERE grant_id = $1 AND used_at IS NULL")
            .bind(grant_id)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes expired codes and refresh tokens of an application.
    pub async fn prune_oauth(&self, app_id: &str) -> Result<()> {
        let now = now_ms();
        sqlx::query("DELETE FROM oauth_codes WHERE app_id = $1 AND expires_at < $2")
            .bind(app_id)
            .bind(now)
            .execute(&self.pool)
            .await?;
        sqlx::query("DELETE FROM oauth_refresh_tokens WHERE app_id = $1 AND expires_at < $2")
            .bind(app_id)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
