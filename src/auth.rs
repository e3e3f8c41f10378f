//! Bearer-token authentication. Tokens are random strings shown once; only their SHA-256
//! hash is stored.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};

use crate::api::ApiError;
use crate::state::AppState;
use crate::store::TokenKind;

/// A new random API token.
pub fn generate_token() -> String {
    crate::ids::random("wft_", 40)
}

/// The stored form of a token.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Who is calling, established from the `Authorization: Bearer …` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The server operator.
    Admin,
}

impl Principal {
    /// Refuses anyone but the operator.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        match self {
            Principal::Admin => Ok(()),
        }
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts.headers.get(AUTHORIZATION).ok_or_else(|| {
            ApiError::unauthorized("missing Authorization header: send `Authorization: Bearer <token>`")
        })?;
        let token = header
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .ok_or_else(|| ApiError::unauthorized("Authorization header must be `Bearer <token>`"))?;
        let record = state
            .store
            .token(&hash_token(token))
            .await?
            .ok_or_else(|| ApiError::unauthorized("invalid or expired token"))?;
        Ok(match record.kind {
            TokenKind::Admin => Principal::Admin,
        })
    }
}
