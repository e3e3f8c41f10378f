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

/// A stored token (its hash and whom it stands for).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// What it authenticates as.
    pub kind: TokenKind,
    /// The user, integration or installation it acts as.
    pub subject: String,
}

impl Store {
    /// Stores a token hash (idempotent).
    pub async fn put_token(
        &self,
        token_hash: &str,
        kind: TokenKind,
        subject: &str,
        expires_at: Option<i64>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO api_tokens (token_hash, kind, subject, expires_at, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (token_hash) DO NOTHING",
        )
        .bind(token_hash)
        .bind(kind.as_str())
        .bind(subject)
        .bind(expires_at)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
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
