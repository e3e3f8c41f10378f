//! API tokens, stored as SHA-256 hashes only.

use sqlx::Row;

use super::{Result, Store, now_ms};

/// What a token authenticates as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// The server operator: may do anything.
    Admin,
    /// A user; what it may do follows from its organization roles.
    User,
    /// An integration's own code (subject: the integration's id, never its name).
    Integration,
    /// One installation, temporary (subject: the installation id).
    Installation,
}

impl TokenKind {
    fn as_str(self) -> &'static str {
        match self {
            TokenKind::Admin => "admin",
            TokenKind::User => "user",
            TokenKind::Integration => "integration",
            TokenKind::Installation => "installation",
        }
    }

    fn parse(kind: &str) -> Option<Self> {
        match kind {
            "admin" => Some(TokenKind::Admin),
            "user" => Some(TokenKind::User),
            "integration" => Some(TokenKind::Integration),
            "installation" => Some(TokenKind::Installation),
            _ => None,
        }
    }
}

/// A stored token as its owner may see it: never its secret, nor its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// Its id (`tok_…`), for revoking it.
    pub id: String,
    /// Creation (ms).
    pub created_at: i64,
    /// Expiry (ms), if it expires.
    pub expires_at: Option<i64>,
}

/// A stored token (its hash and whom it stands for).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// What it authenticates as.
    pub kind: TokenKind,
    /// The user, integration or installation it acts as.
    pub subject: String,
}

impl Store {
    /// Stores a token hash (idempotent) and returns the token's id.
    pub async fn put_token(
        &self,
        token_hash: &str,
        kind: TokenKind,
        subject: &str,
        expires_at: Option<i64>,
    ) -> Result<String> {
        // The no-op update makes a hash stored before come back with its id.
        let row = sqlx::query(
            "INSERT INTO api_tokens (id, token_hash, kind, subject, expires_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (token_hash) DO UPDATE SET token_hash = excluded.token_hash RETURNING id",
        )
        .bind(crate::ids::random("tok_", 20))
        .bind(token_hash)
        .bind(kind.as_str())
        .bind(subject)
        .bind(expires_at)
        .bind(now_ms())
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("id")?)
    }

    /// The unexpired tokens of `kind` acting as `subject`, oldest first.
    pub async fn tokens_of(&self, kind: TokenKind, subject: &str) -> Result<Vec<TokenInfo>> {
        let rows = sqlx::query(
            "SELECT id, created_at, expires_at FROM api_tokens \
             WHERE kind = $1 AND subject = $2 AND (expires_at IS NULL OR expires_at > $3) ORDER BY created_at, id",
        )
        .bind(kind.as_str())
        .bind(subject)
        .bind(now_ms())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(TokenInfo {
                    id: row.try_get("id")?,
                    created_at: row.try_get("created_at")?,
                    expires_at: row.try_get("expires_at")?,
                })
            })
            .collect()
    }

    /// Revokes the token `id` of `kind` acting as `subject`; `false` when there is none.
    pub async fn revoke_token(&self, kind: TokenKind, subject: &str, id: &str) -> Result<bool> {
        let deleted = sqlx::query("DELETE FROM api_tokens WHERE kind = $1 AND subject = $2 AND id = $3")
            .bind(kind.as_str())
            .bind(subject)
            .bind(id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(deleted == 1)
    }

    /// Makes `token_hash` the only admin token: a rotated operator token stops working.
    pub async fn retire_admin_tokens_except(&self, token_hash: &str) -> Result<u64> {
        Ok(sqlx::query("DELETE FROM api_tokens WHERE kind = 'admin' AND token_hash <> $1")
            .bind(token_hash)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    /// Deletes tokens that expired before `before` (ms); how many.
    pub async fn delete_expired_tokens(&self, before: i64) -> Result<u64> {
        Ok(sqlx::query("DELETE FROM api_tokens WHERE expires_at IS NOT NULL AND expires_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    /// The unexpired token with this hash.
    pub async fn token(&self, token_hash: &str) -> Result<Option<TokenRecord>> {
        let row = sqlx::query(
            "SELECT kind, subject FROM api_tokens WHERE token_hash = $1 AND (expires_at IS NULL OR expires_at > $2)",
        )
        .bind(token_hash)
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let (kind, subject): (String, String) = (row.try_get("kind")?, row.try_get("subject")?);
        Ok(TokenKind::parse(&kind).map(|kind| TokenRecord { kind, subject }))
    }

    /// Whether any admin token exists (false on a new database).
    pub async fn has_admin_token(&self) -> Result<bool> {
        let row = sqlx::query("SELECT COUNT(*) FROM api_tokens WHERE kind = 'admin'").fetch_one(&self.pool).await?;
        Ok(row.try_get::<i64, _>(0)? > 0)
    }

    /// Revokes every token of `kind` acting as `subject`.
    pub async fn delete_tokens(&self, kind: TokenKind, subject: &str) -> Result<()> {
        sqlx::query("DELETE FROM api_tokens WHERE kind = $1 AND subject = $2")
            .bind(kind.as_str())
            .bind(subject)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
