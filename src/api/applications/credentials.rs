//! Credentials: the client secret, signing key, verification token, endpoint bearer token,
//! public keys (JWKS), permanent tokens and ssh keys.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};

use super::{Caller, Paging, Right, SpaceError, SpaceJson, SpacePath, SpaceQuery, SpaceResult, page, resolve, time};
use crate::applications::credentials::EndpointCredentials;
use crate::applications::signing::{ServerKey, generate_key, standard_webhooks_secret};
use crate::auth::{generate_token, hash_token};
use crate::state::AppState;
use crate::store::{AppSecret, AppTokenRecord, ListRefusal, SshKeyRecord, now_ms};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/http/applications/{application}/client-secret", get(client_secret))
        .route("/api/http/applications/{application}/client-secret/regenerate", post(regenerate_client_secret))
        .route("/api/http/applications/{application}/signing-key", get(signing_key))
        .route("/api/http/applications/{application}/signing-key/regenerate", post(regenerate_signing_key))
        .route("/api/http/applications/{application}/verification-token", get(verification_token))
        .route(
            "/api/http/applications/{application}/verification-token/regenerate",
            post(regenerate_verification_token),
        )
        .route("/api/http/applications/{application}/bearer-token", get(bearer_token))
        .route("/api/http/applications/{application}/last-client-credentials-access", get(last_access))
        .route("/api/http/applications/{application}/public-keys", get(public_keys))
        .route("/api/http/applications/{application}/permanent-tokens", post(create_permanent).get(list_permanent))
        .route("/api/http/applications/{application}/permanent-tokens/current", delete(delete_current_permanent))
        .route(
            "/api/http/applications/{application}/permanent-tokens/{tokenId}",
            delete(delete_permanent).patch(update_permanent),
        )
        .route("/api/http/applications/{application}/ssh-keys", get(ssh_keys).post(add_ssh_key))
        .route("/api/http/applications/{application}/ssh-keys/{fingerprint}", delete(delete_ssh_key))
}

async fn client_secret(
    State(state): State<AppState>,
    caller: Caller,
    SpacePath(reference): SpacePath<String>,
) -> SpaceResult<Json<Value>> {
    let app = resolve(&state, &caller, &reference, Right::ViewSecrets).await?;
    Ok(Json(json!(state.secrets.open_string(&app.client_secret_sealed)?)))
}

async fn regenerate_client_secret(
    State(state): State<AppState>,
    caller: Caller,
    SpacePath(reference): SpacePath<String>,
) -> SpaceResult<Json<Value>> {
    let app = resolve(&state, &caller, &reference, Right::Update).await?;
    let secret = crate::ids::random("", 48);
    state
        .store
        .set_application_secret(&app.id, AppSecret::ClientSecret, &state.secrets.seal(secret.as_bytes()))
        .await?;
    Ok(Json(json!(secret)))
}

async fn signing_key(
    State(state): State<AppState>,
    caller: Caller,
    SpacePath(reference): SpacePath<String>,
) -> SpaceResult<Json<Value>> {
    let app = resolve(&state, &caller, &reference, Right::ViewSecrets).await?;
    Ok(Json(json!(state.secrets.open_string(&app.signing_key_sealed)?)))
}

async fn regenerate_signing_key(
    State(state): State<AppState>,
    caller: Caller,
    SpacePath(reference): SpacePath<String>,
) -> SpaceResult<Json<Value>> {
    let app = resolve(&state, &caller, &reference, Right::Update).await?;
    let key = generate_key();
    state.store.set_application_secret(&app.id, AppSecret::SigningKey, &state.secrets.seal(key.as_bytes())).await?;
    Ok(Json(json!(key)))
}

async fn verification_token(
    State(state): State<AppState>,
    caller: Caller,
    SpacePath(reference): SpacePath<String>,
) -> SpaceResult<Json<Value>> {
    let app = resolve(&state, &caller, &reference, Right::ViewSecrets).await?;
    Ok(Json(json!(state.secrets.open_string(&app.verification_sealed)?)))
}

async fn regenerate_verification_token(
    State(state): State<AppState>,
    caller: Caller,
    SpacePath(reference): SpacePath<String>,
) -> SpaceResult<Json<Value>> {
    let app = resolve(&state, &caller, &reference, Right::Update).await?;
    let token = generate_key();
    state
        .store
        .set_application_secret(&app.id, AppSecret::VerificationToken, &state.secrets.seal(token.as_bytes()))
        .await?;
    Ok(Json(json!(token)))
}

/// The token weft sends to the application's endpoint (`bearerAuthToken`), or null.
async fn bearer_token(
    State(state): State<AppState>,
    caller: Caller,
    SpacePath(reference): SpacePath<String>,
) -> SpaceResult<Json<Value>> {
    let app = resolve(&state, &caller, &reference, Right::ViewSecrets).await?;
    let auth = EndpointCredentials::open(&state.secrets, app.auth_sealed.as_deref())?;
    Ok(Json(json!(auth.bearer_auth_token)))
}

async fn last_access(
    State(state): State<AppState>,
    caller: Caller,
    SpacePath(reference): SpacePath<String>,
) -> SpaceResult<Json<Value>> {
    let app = resolve(&state, &caller, &reference, Right::View).await?;
    Ok(Json(json!({ "lastAccessTime": time(app.last_cc_access_at) })))
}

async fn public_keys(
    State(state): State<AppState>,
    caller: Caller,
    SpacePath(reference): SpacePath<String>,
) -> SpaceResult<Json<Value>> {
    resolve(&state, &caller, &reference, Right::View).await?;
    Ok(Json(ServerKey::jwks(&state).await.map_err(SpaceError::internal)?))
}

/// The Standard Webhooks secret of a signing key, for the webhooks module.
pub(super) fn standard_secret(key: &str) -> String {
    standard_webhooks_secret(key)
}

fn token_json(token: &AppTokenRecord) -> Value {
    json!({
        "id": token.id,
        "name": token.name,
        "scope": token.scope,
        "created": time(Some(token.created_at)),
        "expires": time(token.expires_at),
        "lastAccess": time(token.last_used_at),
    })
}

fn check_token_name(name: &str) -> SpaceResult<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(SpaceError::invalid("name must be 1–100 characters"));
    }
    Ok(name.to_owned())
}

fn check_scope(scope: &str) -> SpaceResult<String> {
    let scope = scope.trim();
    if scope.is_empty() || scope.len() > 1000 {
        return Err(SpaceError::invalid("scope must be 1–1000 characters"));
    }
    Ok(scope.to_owned())
}

fn check_expiry(expires: &str) -> SpaceResult<i64> {
    let at = chrono::DateTime::parse_from_rfc3339(expires)
        .map_err(|_| SpaceError::invalid(format!("expires `{expires}` must be an RFC 3339 date-time")))?
        .timestamp_millis();
    if at <= now_ms() {
        return Err(SpaceError::invalid("expires must be in the future"));
    }
    Ok(at)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPermanentToken {
    name: String,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    expires: Option<String>,
}

async fn create_permanent(
    State(state): State<AppState>,
    caller: Caller,
    SpacePath(reference): SpacePath<String>,
    SpaceJson(body): SpaceJson<NewPermanentToken>,
) -> SpaceResult<Json<Value>> {
    let app = resolve(&state, &caller, &reference, Right::Update).await?;
    if app.status != "active" {
        return Err(SpaceError::conflict("the application is not active"));
    }
    let secret = generate_token();
    let record = AppTokenRecord {
        id: crate::ids::random("tok_", 16),
        app_id: app.id,
        token_hash: hash_token(&secret),
        kind: "permanent".into(),
        name: check_token_name(&body.name)?,
        scope: check_scope(body.scope.as_deref().unwrap_or("**"))?,
        expires_at: body.expires.as_deref().map(check_expiry).transpose()?,
        created_at: now_ms(),
        last_used_at: None,
        user_id: None,
        grant_id: None,
    };
    state.store.insert_app_token(&record).await?;
    let mut body = token_json(&record);
    body["token"] = json!(secret);
    Ok(Json(body))
}

async fn list_permanent(
    State(state): State<AppState>,
    caller: Caller,
    SpacePath(reference): SpacePath<String>,
    SpaceQuery(paging): SpaceQuery<Paging>,
) -> SpaceResult<Json<Value>> {
    let app = resolve(&state, &caller, &reference, Right::ViewSecrets).await?;
    let (offset, limit) = paging.window()?;
    let (tokens, total) = state.store.list_app_tokens(&app.id, "permanent", offset, limit).await?;
    Ok(Json(page(tokens.iter().map(token_json).collect(), offset, total)))
}

async fn update_permanent(
    State(state): State<AppState>,
    caller: Caller,
    SpacePath((reference, token_id)): SpacePath<(String, String)>,
    SpaceJson(body): SpaceJson<Map<String, Value>>,
) -> SpaceResult<Json<Value>> {
    let app = resolve(&state, &caller, &reference, Right::Update).await?;
    let mut token = state
        .store
        .app_token(&app.id, &token_id)
        .await?
        .filter(|t| t.kind == "permanent")
        .ok_or_else(|| SpaceError::not_found(format!("no permanent token `{token_id}`")))?;
    for (key, value) in &body {
        match (key.as_str(), value) {
            ("name" | "scope", Value::Null) => {}
            ("name", Value::String(name)) => token.name = check_token_name(name)?,
            ("scope", Value::String(scope)) => token.scope = check_scope(scope)?,
            ("expires", Value::Null) => token.expires_at = None,
            ("expires", Value::String(at)) => token.expires_at = Some(check_expiry(at)?),
            ("name" | "scope" | "expires", _) => return Err(SpaceError::invalid(format!("{key} must be a string"))),
            _ => return Err(SpaceError::invalid(format!("unknown field `{key}`"))),
        }
    }
    state.store.update_app_token(&token).await?;
    Ok(Json(token_json(&token)))
}

async fn delete_permanent(
    State(state): State<AppState>,
    caller: Caller,
    SpacePath((reference, token_id)): SpacePath<(String, String)>,
) -> SpaceResult<StatusCode> {
    let app = resolve(&state, &caller, &reference, Right::Update).await?;
    let found = state.store.app_token(&app.id, &token_id).await?.filter(|t| t.kind == "permanent");
    if found.is_none() || !state.store.delete_app_token(&app.id, &token_id).await? {
        return Err(SpaceError::not_found(format!("no permanent token `{token_id}`")));
    }
    Ok(StatusCode::OK)
}

async fn delete_current_permanent(
    State(state): State<AppState>,
    caller: Caller,
    SpacePath(reference): SpacePath<String>,
) -> SpaceResult<StatusCode> {
    let app = resolve(&state, &caller, &reference, Right::View).await?;
    match &caller {
        Caller::App { token_id, token_kind, .. } if token_kind == "permanent" => {
            state.store.delete_app_token(&app.id, token_id).await?;
            Ok(StatusCode::OK)
        }
        _ => Err(SpaceError::invalid("call this with the permanent token to delete")),
    }
}

/// An ssh key as the API shows it.
fn ssh_key_json(key: &SshKeyRecord) -> Value {
    json!({ "fingerprint": key.fingerprint, "comment": key.comment, "publicKey": key.public_key })
}

async fn ssh_keys(
    State(state): State<AppState>,
    caller: Caller,
    SpacePath(reference): SpacePath<String>,
) -> SpaceResult<Json<Value>> {
    let app = resolve(&state, &caller, &reference, Right::View).await?;
    let keys = state.store.ssh_keys(&app.id).await?;
    Ok(Json(json!(keys.iter().map(ssh_key_json).collect::<Vec<_>>())))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewSshKey {
    #[serde(rename = "publicKey")]
    public_key: String,
    #[serde(default)]
    comment: Option<String>,
}

/// Most ssh keys per application.
const MAX_SSH_KEYS: i64 = 50;

async fn add_ssh_key(
    State(state): State<AppState>,
    caller: Caller,
    SpacePath(reference): SpacePath<String>,
    SpaceJson(body): SpaceJson<NewSshKey>,
) -> SpaceResult<Json<Value>> {
    let mut parts = body.public_key.split_whitespace();
    let (Some(kind), Some(blob)) = (parts.next(), parts.next()) else {
        return Err(SpaceError::invalid("publicKey must be an OpenSSH public key: `<type> <base64> [comment]`"));
    };
    let blob =
        BASE64.decode(blob).ok().filter(|_| kind.starts_with("ssh-") || kind.starts_with("ecdsa-")).ok_or_else(
            || SpaceError::invalid("publicKey must be an OpenSSH public key: `<type> <base64> [comment]`"),
        )?;
    let fingerprint =
        format!("SHA256:{}", base64::engine::general_purpose::STANDARD_NO_PAD.encode(Sha256::digest(&blob)));
    let comment = body.comment.or_else(|| parts.next().map(str::to_owned));
    let key = SshKeyRecord { fingerprint, comment, public_key: body.public_key.trim().to_owned() };
    let app = resolve(&state, &caller, &reference, Right::Update).await?;
    match state.store.add_ssh_key(&app.id, &key, MAX_SSH_KEYS).await? {
        Ok(()) => Ok(Json(ssh_key_json(&key))),
        Err(ListRefusal::Duplicate) => Err(SpaceError::conflict("this key was already added")),
        Err(_) => Err(SpaceError::invalid(format!("an application has at most {MAX_SSH_KEYS} ssh keys"))),
    }
}

async fn delete_ssh_key(
    State(state): State<AppState>,
    caller: Caller,
    SpacePath((reference, fingerprint)): SpacePath<(String, String)>,
) -> SpaceResult<StatusCode> {
    let app = resolve(&state, &caller, &reference, Right::Update).await?;
    if !state.store.delete_ssh_key(&app.id, &fingerprint).await? {
        return Err(SpaceError::not_found(format!("no ssh key `{fingerprint}`")));
    }
    Ok(StatusCode::OK)
}
