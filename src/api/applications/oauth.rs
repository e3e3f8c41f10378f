//! OAuth 2.0 for applications: the authorization endpoint with its sign-in and consent page
//! (`/oauth/authorize`), the token endpoint (`/oauth/token`: client credentials, authorization
//! code with PKCE, refresh token with rotation), revocation (`/oauth/revoke`, RFC 7009) and the
//! authorization-server metadata (`/.well-known/oauth-authorization-server`, RFC 8414).
//!
//! Users sign in on the consent page with their weft user token (`POST /v1/users/{id}/tokens`).
//! Each flow is available only when the application's settings enable it
//! (`clientCredentialsFlowEnabled`, `codeFlowEnabled` with `codeFlowRedirectURIs`,
//! `implicitFlowEnabled` with `implicitFlowRedirectURIs`); PKCE S256 is required when
//! `pkceRequired` is set and for public clients (`publicClientsAllowed`, no secret). Every
//! refusal is the RFC's error code with a description.

use std::collections::HashMap;

use axum::extract::rejection::FormRejection;
use axum::extract::{Query, State};
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, LOCATION, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};

use super::{SpaceError, SpaceResult};
use crate::auth::{generate_token, hash_token};
use crate::crypto::constant_time_eq;
use crate::oauth::{self as rules, ACCESS_TOKEN_SECONDS, CODE_TTL_MS, REFRESH_TOKEN_MS};
use crate::state::AppState;
use crate::store::{AppTokenRecord, ApplicationRecord, OAuthCode, Redeemed, RefreshToken, TokenKind, now_ms};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/oauth/authorize", get(authorize_page).post(authorize_decision))
        .route("/oauth/token", post(token))
        .route("/oauth/revoke", post(revoke))
        .route("/.well-known/oauth-authorization-server", get(metadata))
}

type Params = HashMap<String, String>;

fn oauth_error(status: StatusCode, code: &'static str, description: impl Into<String>) -> SpaceError {
    SpaceError::oauth(status, code, description)
}

fn invalid_request(description: impl Into<String>) -> SpaceError {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_request", description)
}

fn invalid_grant(description: impl Into<String>) -> SpaceError {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", description)
}

/// RFC 8414 metadata.
async fn metadata(State(state): State<AppState>) -> Json<Value> {
    let base = &state.public_url;
    Json(json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/oauth/authorize"),
        "token_endpoint": format!("{base}/oauth/token"),
        "revocation_endpoint": format!("{base}/oauth/revoke"),
        "response_types_supported": ["code", "token"],
        "response_modes_supported": ["query", "fragment"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials", "implicit"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "scopes_supported": ["**"],
        "service_documentation": format!("{base}/v1/docs"),
    }))
}

/// A checked authorization request: where the answer goes and what it asks for.
struct AuthorizeRequest {
    app: ApplicationRecord,
    implicit: bool,
    redirect_uri: String,
    scope: String,
    state: Option<String>,
    code_challenge: Option<String>,
}

/// Why an authorization request fails: shown on the page when the redirect URI cannot be
/// trusted (RFC 6749 §4.1.2.1), else sent back to the client.
enum Refusal {
    Page(StatusCode, String),
    Redirect { uri: String, implicit: bool, code: &'static str, description: String, state: Option<String> },
}

impl Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Page(status, message) => {
                page(status, "Authorization failed", &format!("<p>{}</p>", escape(&message)))
            }
            Refusal::Redirect { uri, implicit, code, description, state } => {
                let mut params = vec![("error", code), ("error_description", description.as_str())];
                if let Some(state) = &state {
                    params.push(("state", state));
                }
                let target =
                    if implicit { rules::with_fragment(&uri, &params) } else { rules::with_query(&uri, &params) };
                redirect(&target)
            }
        }
    }
}

async fn check_authorize(state: &AppState, params: &Params) -> Result<AuthorizeRequest, Refusal> {
    let get = |name: &str| params.get(name).map(String::as_str).filter(|v| !v.is_empty());
    let client_id =
        get("client_id").ok_or_else(|| Refusal::Page(StatusCode::BAD_REQUEST, "client_id is required".into()))?;
    let app = state
        .store
        .application_by_client_id(client_id)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "reading an application for /oauth/authorize failed");
            Refusal::Page(StatusCode::INTERNAL_SERVER_ERROR, "internal server error".into())
        })?
        .filter(|app| app.status == "active")
        .ok_or_else(|| {
            Refusal::Page(StatusCode::BAD_REQUEST, format!("no active application with client_id `{client_id}`"))
        })?;
    let response_type = get("response_type");
    let implicit = response_type == Some("token");
    let (setting, uris) = if implicit {
        ("implicitFlowRedirectURIs", &app.settings.implicit_flow_redirect_uris)
    } else {
        ("codeFlowRedirectURIs", &app.settings.code_flow_redirect_uris)
    };
    let registered = rules::registered_uris(uris.as_deref());
    let redirect_uri = rules::choose_redirect(&registered, get("redirect_uri")).ok_or_else(|| {
        Refusal::Page(
            StatusCode::BAD_REQUEST,
            format!("redirect_uri does not match any of the application's {setting} exactly"),
        )
    })?;
    let refuse = |code: &'static str, description: &str| Refusal::Redirect {
        uri: redirect_uri.to_owned(),
        implicit,
        code,
        description: description.to_owned(),
        state: get("state").map(str::to_owned),
    };
    match response_type {
        Some("code") if app.settings.code_flow() => {}
        Some("token") if app.settings.implicit_flow() => {}
        Some("code" | "token") => {
            return Err(refuse("unauthorized_client", "this flow is not enabled for the application"));
        }
        Some(_) => return Err(refuse("unsupported_response_type", "response_type must be code or token")),
        None => return Err(refuse("invalid_request", "response_type is required")),
    }
    let scope = rules::normalise_scope(get("scope")).map_err(|why| refuse("invalid_scope", why))?;
    let pkce_required = app.settings.needs_pkce();
    let code_challenge = match get("code_challenge") {
        _ if implicit => None,
        Some(challenge) => {
            rules::check_challenge(challenge, get("code_challenge_method"))
                .map_err(|why| refuse("invalid_request", why))?;
            Some(challenge.to_owned())
        }
        None if pkce_required => {
            return Err(refuse(
                "invalid_request",
                "PKCE is required: send code_challenge with code_challenge_method=S256",
            ));
        }
        None => None,
    };
    Ok(AuthorizeRequest {
        redirect_uri: redirect_uri.to_owned(),
        app,
        implicit,
        scope,
        state: get("state").map(str::to_owned),
        code_challenge,
    })
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

/// An HTML page that cannot be framed, cached or run scripts.
fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\"><title>{title} · weft</title><style>\
         body{{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;color:#222}}\
         label{{display:block;margin:1rem 0 .3rem}}input[type=password]{{width:100%;padding:.5rem;box-sizing:border-box}}\
         .actions{{margin-top:1.2rem;display:flex;gap:.6rem}}button{{padding:.5rem 1.2rem}}.error{{color:#a00}}\
         code{{background:#f4f4f4;padding:0 .2rem}}</style></head><body><h1>{title}</h1>{body}</body></html>",
        title = escape(title)
    );
    let mut response = (status, Html(html)).into_response();
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"),
    );
    response
}

fn redirect(target: &str) -> Response {
    match HeaderValue::from_str(target) {
        Ok(location) => {
            (StatusCode::SEE_OTHER, [(LOCATION, location), (CACHE_CONTROL, HeaderValue::from_static("no-store"))])
                .into_response()
        }
        Err(_) => page(StatusCode::BAD_REQUEST, "Authorization failed", "<p>the redirect URI is not a valid URL</p>"),
    }
}

/// The sign-in and consent form for a checked request.
fn consent_page(request: &AuthorizeRequest, params: &Params, error: Option<&str>) -> Response {
    let status = if error.is_some() { StatusCode::UNAUTHORIZED } else { StatusCode::OK };
    let mut hidden = String::new();
    for name in
        ["response_type", "client_id", "redirect_uri", "scope", "state", "code_challenge", "code_challenge_method"]
    {
        if let Some(value) = params.get(name) {
            hidden.push_str(&format!("<input type=\"hidden\" name=\"{name}\" value=\"{}\">", escape(value)));
        }
    }
    let scopes: String = request
        .scope
        .split_whitespace()
        .map(|s| {
            if s == rules::ALL {
                "<li>everything you can do in weft</li>".to_owned()
            } else {
                format!("<li><code>{}</code></li>", escape(s))
            }
        })
        .collect();
    let host = reqwest::Url::parse(&request.redirect_uri)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    let error = error.map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e))).unwrap_or_default();
    let body = format!(
        "<p><strong id=\"app-name\">{name}</strong> asks to act for you with:</p><ul id=\"scopes\">{scopes}</ul>\
         <p>You will be sent back to <code>{host}</code>.</p>{error}\
         <form method=\"post\" action=\"/oauth/authorize\">{hidden}\
         <label for=\"user_token\">Sign in with your weft user token</label>\
         <input type=\"password\" id=\"user_token\" name=\"user_token\" autocomplete=\"current-password\">\
         <div class=\"actions\"><button type=\"submit\" name=\"decision\" value=\"allow\" id=\"allow\">Allow</button>\
         <button type=\"submit\" name=\"decision\" value=\"deny\" id=\"deny\">Deny</button></div></form>",
        name = escape(&request.app.name),
        host = escape(&host),
    );
    page(status, "Authorize application", &body)
}

async fn authorize_page(State(state): State<AppState>, Query(params): Query<Params>) -> Response {
    match check_authorize(&state, &params).await {
        Ok(request) => consent_page(&request, &params, None),
        Err(refusal) => refusal.into_response(),
    }
}

async fn authorize_decision(State(state): State<AppState>, form: Result<Form<Params>, FormRejection>) -> Response {
    let Ok(Form(params)) = form else {
        return page(StatusCode::BAD_REQUEST, "Authorization failed", "<p>send the consent form</p>");
    };
    let request = match check_authorize(&state, &params).await {
        Ok(request) => request,
        Err(refusal) => return refusal.into_response(),
    };
    let answer = |params: &[(&str, &str)]| {
        let mut params = params.to_vec();
        if let Some(state) = &request.state {
            params.push(("state", state));
        }
        let target = if request.implicit {
            rules::with_fragment(&request.redirect_uri, &params)
        } else {
            rules::with_query(&request.redirect_uri, &params)
        };
        redirect(&target)
    };
    if params.get("decision").map(String::as_str) != Some("allow") {
        return answer(&[("error", "access_denied"), ("error_description", "the user denied the request")]);
    }
    let user_id = match sign_in(&state, params.get("user_token").map(String::as_str).unwrap_or_default()).await {
        Ok(Some(user)) => user,
        Ok(None) => return consent_page(&request, &params, Some("That is not a valid weft user token.")),
        Err(error) => return error.into_response(),
    };
    let grant_id = crate::ids::random("grant_", 20);
    let issued = if request.implicit {
        issue_access_token(&state, &request.app, &user_id, &grant_id, &request.scope).await.map(|token| {
            vec![
                ("access_token", token),
                ("token_type", "Bearer".to_owned()),
                ("expires_in", ACCESS_TOKEN_SECONDS.to_string()),
                ("scope", request.scope.clone()),
            ]
        })
    } else {
        let code = crate::ids::random("", 43);
        let record = OAuthCode {
            code_hash: hash_token(&code),
            grant_id,
            app_id: request.app.id.clone(),
            user_id,
            redirect_uri: request.redirect_uri.clone(),
            scope: request.scope.clone(),
            code_challenge: request.code_challenge.clone(),
            expires_at: now_ms() + CODE_TTL_MS,
        };
        state.store.insert_oauth_code(&record).await.map(|()| vec![("code", code)]).map_err(SpaceError::from)
    };
    match issued {
        Ok(params) => answer(&params.iter().map(|(k, v)| (*k, v.as_str())).collect::<Vec<_>>()),
        Err(error) => error.into_response(),
    }
}

/// The user a weft user token belongs to.
async fn sign_in(state: &AppState, token: &str) -> SpaceResult<Option<String>> {
    if token.trim().is_empty() {
        return Ok(None);
    }
    Ok(state.store.token(&hash_token(token.trim())).await?.filter(|t| t.kind == TokenKind::User).map(|t| t.subject))
}

/// Stores a new one-hour access token of `kind` for `app` and returns it: `user` tokens act
/// for `user` within `grant`, `access` tokens (client credentials) for the application.
async fn issue_token(
    state: &AppState,
    app: &ApplicationRecord,
    kind: &str,
    user: Option<(&str, &str)>,
    scope: &str,
) -> SpaceResult<String> {
    let token = generate_token();
    let now = now_ms();
    state
        .store
        .insert_app_token(&AppTokenRecord {
            id: crate::ids::random("tok_", 16),
            app_id: app.id.clone(),
            token_hash: hash_token(&token),
            kind: kind.into(),
            name: user.map_or_else(|| "client credentials".to_owned(), |(user, _)| format!("authorized by {user}")),
            scope: scope.to_owned(),
            expires_at: Some(now + ACCESS_TOKEN_SECONDS * 1000),
            created_at: now,
            last_used_at: None,
            user_id: user.map(|(user, _)| user.to_owned()),
            grant_id: user.map(|(_, grant)| grant.to_owned()),
        })
        .await?;
    Ok(token)
}

/// An access token acting for `user_id` within `grant_id`.
async fn issue_access_token(
    state: &AppState,
    app: &ApplicationRecord,
    user_id: &str,
    grant_id: &str,
    scope: &str,
) -> SpaceResult<String> {
    issue_token(state, app, "user", Some((user_id, grant_id)), scope).await
}

/// The client of a token or revocation request, authenticated by HTTP Basic, by
/// `client_id` + `client_secret` fields, or — for applications that allow public clients —
/// by `client_id` alone. Returns the application and whether it proved its secret.
async fn authenticate_client(
    state: &AppState,
    headers: &HeaderMap,
    form: &Params,
) -> SpaceResult<(ApplicationRecord, bool)> {
    let invalid_client =
        || oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "unknown client or wrong client secret");
    let basic = headers
        .get(AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Basic "))
        .and_then(|b| BASE64.decode(b.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|pair| pair.split_once(':').map(|(id, secret)| (id.to_owned(), secret.to_owned())));
    let (client_id, secret) = match basic {
        Some((id, secret)) => (id, Some(secret)),
        None => match form.get("client_id") {
            Some(id) => (id.clone(), form.get("client_secret").cloned()),
            None => {
                return Err(oauth_error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    "authenticate with HTTP Basic (client id and secret) or client_id and client_secret fields",
                ));
            }
        },
    };
    let app = state
        .store
        .application_by_client_id(&client_id)
        .await?
        .filter(|app| app.status == "active")
        .ok_or_else(invalid_client)?;
    match secret.filter(|s| !s.is_empty()) {
        Some(secret) => {
            let expected = state.secrets.open_string(&app.client_secret_sealed)?;
            if !constant_time_eq(expected.as_bytes(), secret.as_bytes()) {
                return Err(invalid_client());
            }
            Ok((app, true))
        }
        None if app.settings.public_clients() => Ok((app, false)),
        None => Err(oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "this application does not allow public clients: authenticate with its client secret",
        )),
    }
}

/// The fields of a form-encoded request body, or `invalid_request`.
fn form_fields(form: Result<Form<Params>, FormRejection>) -> SpaceResult<Params> {
    form.map(|Form(fields)| fields).map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return oauth_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request",
                format!("the body is larger than the {} bytes allowed", super::MAX_BODY_BYTES),
            );
        }
        invalid_request(format!("send an application/x-www-form-urlencoded body: {e}"))
    })
}

fn no_store(body: Value) -> Response {
    ([(CACHE_CONTROL, "no-store"), (axum::http::header::PRAGMA, "no-cache")], Json(body)).into_response()
}

async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<Params>, FormRejection>,
) -> Response {
    let result = async {
        let form = form_fields(form)?;
        let grant =
            form.get("grant_type").map(String::as_str).ok_or_else(|| invalid_request("grant_type is required"))?;
        if !matches!(grant, "client_credentials" | "authorization_code" | "refresh_token") {
            return Err(oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                format!(
                    "grant_type `{grant}` is not supported: use authorization_code, refresh_token or client_credentials"
                ),
            ));
        }
        let (app, confidential) = authenticate_client(&state, &headers, &form).await?;
        state.store.prune_oauth(&app.id).await?;
        match grant {
            "client_credentials" => client_credentials(&state, &app, confidential, &form).await,
            "authorization_code" => authorization_code(&state, &app, confidential, &form).await,
            _ => refresh(&state, &app, &form).await,
        }
    }
    .await;
    match result {
        Ok(body) => no_store(body),
        Err(error) => {
            let unauthorized = error.status() == StatusCode::UNAUTHORIZED;
            let mut response = error.into_response();
            response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            if unauthorized {
                response.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"weft\""));
            }
            response
        }
    }
}

async fn client_credentials(
    state: &AppState,
    app: &ApplicationRecord,
    confidential: bool,
    form: &Params,
) -> SpaceResult<Value> {
    if !confidential {
        return Err(oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client credentials need the client secret",
        ));
    }
    if !app.settings.client_credentials_flow() {
        return Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            "the client credentials flow is disabled for this application",
        ));
    }
    let scope = rules::normalise_scope(form.get("scope").map(String::as_str))
        .map_err(|why| oauth_error(StatusCode::BAD_REQUEST, "invalid_scope", why))?;
    let access_token = issue_token(state, app, "access", None, &scope).await?;
    state.store.touch_client_credentials_access(&app.id).await?;
    state.store.delete_expired_app_tokens(&app.id).await?;
    Ok(
        json!({ "access_token": access_token, "token_type": "Bearer", "expires_in": ACCESS_TOKEN_SECONDS, "scope": scope }),
    )
}

/// An access token and a refresh token for a user's grant.
async fn user_tokens(
    state: &AppState,
    app: &ApplicationRecord,
    user_id: &str,
    grant_id: &str,
    scope: &str,
) -> SpaceResult<Value> {
    let access_token = issue_access_token(state, app, user_id, grant_id, scope).await?;
    let refresh_token = generate_token();
    state
        .store
        .insert_refresh_token(&RefreshToken {
            token_hash: hash_token(&refresh_token),
            grant_id: grant_id.to_owned(),
            app_id: app.id.clone(),
            user_id: user_id.to_owned(),
            scope: scope.to_owned(),
            expires_at: now_ms() + REFRESH_TOKEN_MS,
            used_at: None,
        })
        .await?;
    state.store.delete_expired_app_tokens(&app.id).await?;
    Ok(json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": ACCESS_TOKEN_SECONDS,
        "refresh_token": refresh_token,
        "scope": scope,
    }))
}

async fn authorization_code(
    state: &AppState,
    app: &ApplicationRecord,
    confidential: bool,
    form: &Params,
) -> SpaceResult<Value> {
    if !app.settings.code_flow() {
        return Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            "the authorization code flow is disabled for this application",
        ));
    }
    let code = form.get("code").filter(|c| !c.is_empty()).ok_or_else(|| invalid_request("code is required"))?;
    let record = match state.store.redeem_oauth_code(&hash_token(code)).await? {
        Redeemed::Fresh(record) => record,
        Redeemed::Reused(record) => {
            // RFC 6749 §4.1.2: a code used twice revokes what it was exchanged for.
            state.store.revoke_grant(&record.grant_id).await?;
            return Err(invalid_grant("the authorization code was already used; the tokens issued for it are revoked"));
        }
        Redeemed::Unknown => return Err(invalid_grant("unknown authorization code")),
    };
    if record.app_id != app.id {
        return Err(invalid_grant("the authorization code was issued to another client"));
    }
    if record.expires_at < now_ms() {
        return Err(invalid_grant("the authorization code expired"));
    }
    if form.get("redirect_uri").map(String::as_str) != Some(record.redirect_uri.as_str()) {
        return Err(invalid_grant("redirect_uri must be the one the authorization request used"));
    }
    match (&record.code_challenge, form.get("code_verifier")) {
        (Some(challenge), Some(verifier)) if rules::verifier_matches(verifier, challenge) => {}
        (Some(_), Some(_)) => return Err(invalid_grant("the code_verifier does not match the code_challenge")),
        (Some(_), None) => return Err(invalid_grant("code_verifier is required: the authorization request used PKCE")),
        (None, Some(_)) => return Err(invalid_grant("the authorization request sent no code_challenge")),
        (None, None) if !confidential => return Err(invalid_grant("a public client must use PKCE")),
        (None, None) => {}
    }
    user_tokens(state, app, &record.user_id, &record.grant_id, &record.scope).await
}

async fn refresh(state: &AppState, app: &ApplicationRecord, form: &Params) -> SpaceResult<Value> {
    let presented = form
        .get("refresh_token")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| invalid_request("refresh_token is required"))?;
    let hash = hash_token(presented);
    let record = state
        .store
        .refresh_token(&hash)
        .await?
        .filter(|r| r.app_id == app.id)
        .ok_or_else(|| invalid_grant("unknown refresh token"))?;
    if record.used_at.is_some() || !state.store.use_refresh_token(&hash).await? {
        // A rotated token presented again: someone holds a copy. Revoke the whole grant.
        state.store.revoke_grant(&record.grant_id).await?;
        return Err(invalid_grant("the refresh token was already used; the grant is revoked"));
    }
    if record.expires_at < now_ms() {
        return Err(invalid_grant("the refresh token expired"));
    }
    let scope = match form.get("scope") {
        Some(requested) => {
            let requested = rules::normalise_scope(Some(requested))
                .map_err(|why| oauth_error(StatusCode::BAD_REQUEST, "invalid_scope", why))?;
            if !rules::scope_within(&requested, &record.scope) {
                return Err(oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_scope",
                    "a refresh cannot widen the granted scope",
                ));
            }
            requested
        }
        None => record.scope.clone(),
    };
    user_tokens(state, app, &record.user_id, &record.grant_id, &scope).await
}

/// RFC 7009: revokes an access or refresh token of the authenticated client (a refresh
/// token takes its whole grant with it). Unknown tokens answer 200 too.
async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<Params>, FormRejection>,
) -> Response {
    let result = async {
        let form = form_fields(form)?;
        let token = form.get("token").filter(|t| !t.is_empty()).ok_or_else(|| invalid_request("token is required"))?;
        let (app, _) = authenticate_client(&state, &headers, &form).await?;
        let hash = hash_token(token);
        if let Some(refresh) = state.store.refresh_token(&hash).await?.filter(|r| r.app_id == app.id) {
            state.store.revoke_grant(&refresh.grant_id).await?;
        } else {
            // An access token: only it goes (its grant's refresh token stays, as RFC 7009 §2.1 allows).
            state.store.delete_app_token_by_hash(&app.id, &hash).await?;
        }
        Ok::<_, SpaceError>(())
    }
    .await;
    match result {
        Ok(()) => (StatusCode::OK, [(CACHE_CONTROL, "no-store")]).into_response(),
        Err(error) => error.into_response(),
    }
}
