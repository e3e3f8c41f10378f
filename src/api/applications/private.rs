//! Private development applications under `/api/v1/applications`: plain array lists and
//! 422 `{"detail":[{"loc":[…],"msg":"…","type":"…"}]}` validation errors. Each belongs to
//! the user who created it (a user token, as `Authorization: Bearer` or the `token` cookie),
//! and lists show only the caller's own; the operator's token has its own.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Map, Value, json};

use crate::auth::hash_token;
use crate::state::AppState;
use crate::store::{PrivateAppRecord, TokenKind, now_ms};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/applications", get(list).post(create))
}

/// An error of the private-apps surface.
struct PrivateError(StatusCode, Value);

impl IntoResponse for PrivateError {
    fn into_response(self) -> Response {
        (self.0, Json(self.1)).into_response()
    }
}

impl From<crate::store::StoreError> for PrivateError {
    fn from(error: crate::store::StoreError) -> Self {
        tracing::error!(%error, "internal error in the private applications API");
        PrivateError(StatusCode::INTERNAL_SERVER_ERROR, json!({ "detail": "Internal Server Error" }))
    }
}

/// One validation problem.
fn issue(loc: &[&str], msg: impl Into<String>, kind: &str) -> Value {
    json!({ "loc": loc, "msg": msg.into(), "type": kind })
}

/// The caller's user id (`None` for the operator), from `Authorization: Bearer …` or the
/// `token` cookie (the reference's two ways); other tokens are refused.
async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Option<String>, PrivateError> {
    let unauthenticated = |detail: &str| PrivateError(StatusCode::UNAUTHORIZED, json!({ "detail": detail }));
    let bearer = headers
        .get(AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let cookie = || {
        headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|h| h.to_str().ok())
            .flat_map(|h| h.split(';'))
            .find_map(|pair| pair.trim().strip_prefix("token=").map(str::trim).filter(|t| !t.is_empty()))
    };
    let token = bearer.or_else(cookie).ok_or_else(|| {
        unauthenticated("Not authenticated: send `Authorization: Bearer <token>` or the `token` cookie")
    })?;
    match state.store.token(&hash_token(token)).await? {
        Some(record) if record.kind == TokenKind::Admin => Ok(None),
        Some(record) if record.kind == TokenKind::User => Ok(Some(record.subject)),
        _ => Err(unauthenticated("invalid or expired token")),
    }
}

/// Whether `s` is an absolute URI with a scheme and host.
fn valid_uri(s: &str) -> bool {
    !s.is_empty() && s.len() <= 2000 && reqwest::Url::parse(s).is_ok_and(|u| u.has_host())
}

fn valid_slug(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Validates the ApplicationCreate body, collecting every problem like FastAPI does.
fn validate(body: &Map<String, Value>) -> Result<PrivateAppInput, Vec<Value>> {
    let mut issues = Vec::new();
    let name = match body.get("name") {
        None => {
            issues.push(issue(&["body", "name"], "Field required", "missing"));
            None
        }
        Some(Value::String(name)) => match name.chars().count() {
            0 => {
                issues.push(issue(&["body", "name"], "String should have at least 1 character", "string_too_short"));
                None
            }
            101.. => {
                issues.push(issue(&["body", "name"], "String should have at most 100 characters", "string_too_long"));
                None
            }
            _ => Some(name.clone()),
        },
        Some(_) => {
            issues.push(issue(&["body", "name"], "Input should be a valid string", "string_type"));
            None
        }
    };
    let description = match body.get("description") {
        None | Some(Value::Null) => None,
        Some(Value::String(d)) if d.chars().count() <= 500 => Some(d.clone()),
        Some(Value::String(_)) => {
            issues.push(issue(
                &["body", "description", "str"],
                "String should have at most 500 characters",
                "string_too_long",
            ));
            None
        }
        Some(_) => {
            issues.push(issue(&["body", "description", "str"], "Input should be a valid string", "string_type"));
            None
        }
    };
    let redirect_uris = match body.get("redirect_uris") {
        None | Some(Value::Null) => None,
        Some(Value::Array(uris)) => {
            let mut kept = Vec::new();
            for (index, uri) in uris.iter().enumerate() {
                let index = index.to_string();
                match uri.as_str() {
                    Some(u) if valid_uri(u) => kept.push(u.to_owned()),
                    Some(_) => issues.push(issue(
                        &["body", "redirect_uris", "list[url]", &index],
                        "Input should be a valid URL",
                        "url_parsing",
                    )),
                    None => issues.push(issue(
                        &["body", "redirect_uris", "list[url]", &index],
                        "URL input should be a string or URL",
                        "url_type",
                    )),
                }
            }
            if uris.len() > 50 {
                issues.push(issue(
                    &["body", "redirect_uris", "list[url]"],
                    "List should have at most 50 items",
                    "too_long",
                ));
            }
            Some(kept)
        }
        Some(_) => {
            issues.push(issue(&["body", "redirect_uris", "list[url]"], "Input should be a valid list", "list_type"));
            None
        }
    };
    let page = match body.get("page") {
        None | Some(Value::Null) => None,
        Some(Value::String(slug)) if valid_slug(slug) => Some(slug.clone()),
        Some(Value::String(_)) => {
            issues.push(issue(
                &["body", "page", "str"],
                "The page slug must be 1–64 characters of a-z, 0-9 and `-`",
                "value_error",
            ));
            None
        }
        Some(_) => {
            issues.push(issue(&["body", "page", "str"], "Input should be a valid string", "string_type"));
            None
        }
    };
    let generate_secret = match body.get("generate_secret") {
        None => false,
        Some(Value::Bool(flag)) => *flag,
        Some(_) => {
            issues.push(issue(&["body", "generate_secret"], "Input should be a valid boolean", "bool_type"));
            false
        }
    };
    match name {
        Some(name) if issues.is_empty() => {
            Ok(PrivateAppInput { name, description, redirect_uris, page, generate_secret })
        }
        _ => Err(issues),
    }
}

struct PrivateAppInput {
    name: String,
    description: Option<String>,
    redirect_uris: Option<Vec<String>>,
    page: Option<String>,
    generate_secret: bool,
}

fn page_url(state: &AppState, slug: &str) -> String {
    format!("{}/pages/{slug}", state.public_url)
}

async fn create(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Response, PrivateError> {
    let owner_id = authenticate(&state, &headers).await?;
    let unprocessable =
        |issues: Vec<Value>| PrivateError(StatusCode::UNPROCESSABLE_ENTITY, json!({ "detail": issues }));
    let body: Value = serde_json::from_slice(&body).map_err(|e| {
        unprocessable(vec![json!({ "loc": ["body", e.column()], "msg": "JSON decode error", "type": "json_invalid" })])
    })?;
    let Value::Object(body) = body else {
        return Err(unprocessable(vec![issue(&["body"], "Input should be a valid dictionary", "dict_type")]));
    };
    let input = validate(&body).map_err(unprocessable)?;
    let mut redirect_uris = input.redirect_uris.clone();
    if let Some(slug) = &input.page {
        let uris = redirect_uris.get_or_insert_with(Vec::new);
        if input.redirect_uris.as_ref().is_none_or(Vec::is_empty) {
            uris.push("http://localhost".to_owned());
        }
        uris.push(page_url(&state, slug));
    }
    let secret = input.generate_secret.then(|| crate::ids::random("", 48));
    let record = PrivateAppRecord {
        id: crate::ids::random("", 16).to_lowercase(),
        name: input.name,
        description: input.description,
        redirect_uris,
        page_slug: input.page,
        client_secret_sealed: secret.as_ref().map(|s| state.secrets.seal(s.as_bytes())),
        created_at: now_ms(),
        owner_id,
    };
    state.store.insert_private_app(&record).await?;
    let page = record.page_slug.as_ref().map(|slug| {
        json!({
            "slug": slug,
            "url": page_url(&state, slug),
            "published": false,
            "application": { "id": record.id, "name": record.name, "is_private": true },
        })
    });
    let body = json!({
        "id": record.id,
        "name": record.name,
        "description": record.description,
        "image": null,
        "url": null,
        "redirect_uris": record.redirect_uris,
        "privacy_statement": null,
        "published": false,
        "webhook_endpoints": null,
        "webhook_secret": null,
        "client_secret": secret,
        "page": page,
        "is_private": true,
        "is_clientside_app": false,
    });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

async fn list(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<Value>, PrivateError> {
    let owner_id = authenticate(&state, &headers).await?;
    let apps = state.store.private_apps(owner_id.as_deref()).await?;
    let items: Vec<Value> =
        apps.iter().map(|app| json!({ "id": app.id, "name": app.name, "page_slug": app.page_slug })).collect();
    Ok(Json(json!(items)))
}
