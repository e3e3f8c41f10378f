//! Bearer-token authentication and the authorization rules of the `/v1` API.
//!
//! Four kinds of token (see the README's "Admin API"):
//! - **admin**: the server operator, may do anything;
//! - **user**: acts with the user's roles: `member` of an organization may read it, `admin`
//!   may also publish integrations for it, install into it and change its installations;
//! - **integration**: held by the integration's own code, shown once at its first publish;
//!   reads and updates the integration's installations and mints installation tokens;
//! - **installation**: temporary (one hour), limited to one installation.
//!
//! Stored tokens are random strings shown once; only their SHA-256 hash is stored. The
//! tokens handed to a module in its `environment.apiTokens` are not stored at all: they are
//! sealed with the server key (`wfe_` + sealed `{kind, subject, expiry}`), so building an
//! invocation never writes to the database.

use std::collections::BTreeMap;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::api::ApiError;
use crate::crypto::SecretBox;
use crate::state::AppState;
use crate::store::{InstallationRecord, TokenKind, now_ms};

/// How long an installation token (and a sealed environment token) stays valid.
pub const TEMPORARY_TOKEN_MS: i64 = 60 * 60 * 1000;

/// Prefix of the sealed tokens given to modules in their environment.
const SEALED_TOKEN_PREFIX: &str = "wfe_";

/// A new random API token.
pub fn generate_token() -> String {
    crate::ids::random("wft_", 40)
}

/// The stored form of a token.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A short-lived token for `kind` (integration or installation) acting as `subject` (the
/// integration's id, or the installation's id: identities never reused, so a token can never
/// act for a later integration that took the same name), sealed with the server key instead
/// of stored.
pub fn sealed_token(secrets: &SecretBox, kind: TokenKind, subject: &str) -> String {
    let kind = match kind {
        TokenKind::Integration => "integration",
        TokenKind::Installation => "installation",
        TokenKind::Admin | TokenKind::User => unreachable!("only integration and installation tokens are sealed"),
    };
    let claims = json!({ "k": kind, "s": subject, "e": now_ms() + TEMPORARY_TOKEN_MS });
    format!("{SEALED_TOKEN_PREFIX}{}", secrets.seal(claims.to_string().as_bytes()))
}

/// A user's role in an organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// May read the organization's installations, spaces and sites.
    Member,
    /// May also publish, install, configure and uninstall.
    Admin,
}

impl Role {
    /// `admin` or `member`.
    pub fn parse(role: &str) -> Option<Self> {
        match role {
            "admin" => Some(Role::Admin),
            "member" => Some(Role::Member),
            _ => None,
        }
    }
}

/// Who is calling, established from the `Authorization: Bearer …` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The server operator.
    Admin,
    /// A user, with their role in each organization they belong to.
    User {
        /// The user id.
        id: String,
        /// Organization id → role.
        orgs: BTreeMap<String, Role>,
    },
    /// An integration's own code.
    Integration {
        /// The integration's identity.
        id: String,
        /// Its name.
        name: String,
    },
    /// One installation (a temporary token).
    Installation {
        /// The installation id.
        id: String,
        /// Its integration's identity.
        integration_id: String,
        /// Its organization.
        org_id: String,
    },
}

impl Principal {
    /// Refuses anyone but the operator.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        match self {
            Principal::Admin => Ok(()),
            _ => Err(ApiError::forbidden("only the server administrator may do this")),
        }
    }

    /// The role in `org_id`: the operator counts as its admin.
    pub fn role_in(&self, org_id: &str) -> Option<Role> {
        match self {
            Principal::Admin => Some(Role::Admin),
            Principal::User { orgs, .. } => orgs.get(org_id).copied(),
            _ => None,
        }
    }

    /// Refuses anyone who may not read `org_id`.
    pub fn require_org_member(&self, org_id: &str) -> Result<(), ApiError> {
        match self.role_in(org_id) {
            Some(_) => Ok(()),
            None => Err(ApiError::forbidden(format!("this token may not read organization `{org_id}`"))),
        }
    }

    /// Refuses anyone who is not an admin of `org_id`.
    pub fn require_org_admin(&self, org_id: &str) -> Result<(), ApiError> {
        match self.role_in(org_id) {
            Some(Role::Admin) => Ok(()),
            _ => Err(ApiError::forbidden(format!("only an admin of organization `{org_id}` may do this"))),
        }
    }

    /// Whether the caller is `integration`'s own code (its token, or one of its
    /// installations' tokens when `or_installation`). Compares identities, never names.
    pub fn acts_for(&self, integration: &crate::store::IntegrationRecord, or_installation: bool) -> bool {
        match self {
            Principal::Integration { id, .. } => *id == integration.id,
            Principal::Installation { integration_id, .. } => or_installation && *integration_id == integration.id,
            _ => false,
        }
    }

    /// The user id, for filtering listings to the user's organizations ("" for others).
    pub fn user_id(&self) -> &str {
        match self {
            Principal::User { id, .. } => id,
            _ => "",
        }
    }

    /// Whether the caller may read `installation` (and its space and site installations).
    pub fn can_read_installation(&self, installation: &InstallationRecord) -> bool {
        match self {
            Principal::Admin | Principal::User { .. } => self.role_in(&installation.org_id).is_some(),
            Principal::Integration { id, .. } => *id == installation.integration_id,
            Principal::Installation { id, .. } => *id == installation.id,
        }
    }

    /// Whether the caller may change `installation`.
    pub fn can_change_installation(&self, installation: &InstallationRecord) -> bool {
        match self {
            Principal::Admin | Principal::User { .. } => self.role_in(&installation.org_id) == Some(Role::Admin),
            Principal::Integration { id, .. } => *id == installation.integration_id,
            Principal::Installation { id, .. } => *id == installation.id,
        }
    }

    /// Refuses a caller who may not read `installation`.
    pub fn require_read_installation(&self, installation: &InstallationRecord) -> Result<(), ApiError> {
        if self.can_read_installation(installation) {
            return Ok(());
        }
        Err(ApiError::forbidden(format!("this token may not read installation `{}`", installation.id)))
    }

    /// Refuses a caller who may not change `installation`.
    pub fn require_change_installation(&self, installation: &InstallationRecord) -> Result<(), ApiError> {
        if self.can_change_installation(installation) {
            return Ok(());
        }
        Err(ApiError::forbidden(format!("this token may not change installation `{}`", installation.id)))
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
        let invalid = || ApiError::unauthorized("invalid or expired token");
        let (kind, subject) = if let Some(sealed) = token.strip_prefix(SEALED_TOKEN_PREFIX) {
            let claims: serde_json::Value = state
                .secrets
                .open(sealed)
                .ok()
                .and_then(|json| serde_json::from_slice(&json).ok())
                .ok_or_else(invalid)?;
            if claims["e"].as_i64().is_none_or(|expiry| expiry <= now_ms()) {
                return Err(invalid());
            }
            let kind = match claims["k"].as_str() {
                Some("integration") => TokenKind::Integration,
                Some("installation") => TokenKind::Installation,
                _ => return Err(invalid()),
            };
            (kind, claims["s"].as_str().ok_or_else(invalid)?.to_owned())
        } else {
            let record = state.store.shared_token(&hash_token(token)).await?;
            let record = record.as_ref().as_ref().ok_or_else(invalid)?;
            (record.kind, record.subject.clone())
        };
        Ok(match kind {
            TokenKind::Admin => Principal::Admin,
            TokenKind::User => {
                state.store.user(&subject).await?.ok_or_else(invalid)?;
                let orgs = state
                    .store
                    .memberships(&subject)
                    .await?
                    .into_iter()
                    .filter_map(|m| Some((m.org_id, Role::parse(&m.role)?)))
                    .collect();
                Principal::User { id: subject, orgs }
            }
            TokenKind::Integration => {
                // The subject is the integration's id: once it is unpublished, no integration
                // ever has that id again, and the token is dead for good.
                let integration = state.store.integration_by_id(&subject).await?.ok_or_else(invalid)?;
                Principal::Integration { id: integration.id, name: integration.name }
            }
            TokenKind::Installation => {
                let installation = state.store.installation_by_id(&subject).await?.ok_or_else(invalid)?;
                Principal::Installation {
                    id: installation.id,
                    integration_id: installation.integration_id,
                    org_id: installation.org_id,
                }
            }
        })
    }
}
