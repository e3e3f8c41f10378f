//! Stored API tokens of users and integrations: mint, list (never the secret) and revoke.
//!
//! - `POST /v1/users/{userId}/tokens` → `{"id","token"}`, the token shown once;
//!   `GET` lists `{"id","createdAt","expiresAt"}`; `DELETE …/tokens/{tokenId}` revokes one
//!   (the operator, or the user);
//! - `POST /v1/integrations/{integrationName}/tokens`, `GET`, `DELETE …/tokens/{tokenId}`: the
//!   integration's own tokens (the operator, an admin of its organization, or the integration
//!   itself, which may so rotate its token: mint a new one, then revoke the old).
//!
//! A revoked token fails its very next request: tokens are looked up on every request.
//! Sealed tokens in a module's `environment.apiTokens` are not stored; they expire within an
//! hour and die with their integration or installation (see [`crate::auth`]).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::ApiError;
use super::extract::ApiPath;
use super::integrations::find_visible;
use crate::auth::{Principal, generate_token, hash_token};
use crate::state::AppState;
use crate::store::{TokenInfo, TokenKind};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/users/{userId}/tokens", get(list_user_tokens).post(create_user_token))
        .route("/v1/users/{userId}/tokens/{tokenId}", delete(revoke_user_token))
        .route("/v1/integrations/{integrationName}/tokens", get(list_integration_tokens).post(create_integration_token))
        .route("/v1/integrations/{integrationName}/tokens/{tokenId}", delete(revoke_integration_token))
}

/// The JSON form of a stored token: what it is, never what it says.
fn token_json(token: &TokenInfo) -> Value {
    json!({
        "object": "api-token",
        "id": token.id,
        "createdAt": super::timestamp(token.created_at),
        "expiresAt": token.expires_at.map(super::timestamp),
    })
}

fn list_json(tokens: &[TokenInfo]) -> Json<Value> {
    Json(json!({ "items": tokens.iter().map(token_json).collect::<Vec<_>>(), "count": tokens.len() }))
}

/// The user `user_id`, when `principal` may manage their tokens (the operator, or themself).
async fn manageable_user(state: &AppState, principal: &Principal, user_id: &str) -> Result<(), ApiError> {
    match principal {
        Principal::Admin => {}
        Principal::User { id, .. } if id == user_id => {}
        _ => return Err(ApiError::forbidden("only the operator or the user may manage a user's tokens")),
    }
    state.store.user(user_id).await?.ok_or_else(|| ApiError::not_found(format!("no user `{user_id}`")))?;
    Ok(())
}

/// The id of integration `name`, when `principal` may manage its tokens.
async fn manageable_integration(state: &AppState, principal: &Principal, name: &str) -> Result<String, ApiError> {
    let integration = find_visible(state, principal, name).await?;
    if !principal.acts_for(&integration, false) {
        principal.require_org_admin(&integration.org_id)?;
    }
    Ok(integration.id)
}

async fn create_user_token(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(user_id): ApiPath<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    manageable_user(&state, &principal, &user_id).await?;
    let token = generate_token();
    let id = state.store.put_token(&hash_token(&token), TokenKind::User, &user_id, None).await?;
    Ok((StatusCode::CREATED, Json(json!({ "object": "api-token", "id": id, "user": user_id, "token": token }))))
}

async fn list_user_tokens(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(user_id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    manageable_user(&state, &principal, &user_id).await?;
    Ok(list_json(&state.store.tokens_of(TokenKind::User, &user_id).await?))
}

async fn revoke_user_token(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((user_id, token_id)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    manageable_user(&state, &principal, &user_id).await?;
    if !state.store.revoke_token(TokenKind::User, &user_id, &token_id).await? {
        return Err(ApiError::not_found(format!("user `{user_id}` has no token `{token_id}`")));
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn create_integration_token(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(name): ApiPath<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let integration_id = manageable_integration(&state, &principal, &name).await?;
    let token = generate_token();
    let id = state.store.put_token(&hash_token(&token), TokenKind::Integration, &integration_id, None).await?;
    Ok((StatusCode::CREATED, Json(json!({ "object": "api-token", "id": id, "integration": name, "token": token }))))
}

async fn list_integration_tokens(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let integration_id = manageable_integration(&state, &principal, &name).await?;
    Ok(list_json(&state.store.tokens_of(TokenKind::Integration, &integration_id).await?))
}

async fn revoke_integration_token(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((name, token_id)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let integration_id = manageable_integration(&state, &principal, &name).await?;
    if !state.store.revoke_token(TokenKind::Integration, &integration_id, &token_id).await? {
        return Err(ApiError::not_found(format!("integration `{name}` has no token `{token_id}`")));
    }
    Ok(StatusCode::NO_CONTENT)
}
