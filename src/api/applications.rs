//! The applications API: the full surface under `/api/http/applications` (and
//! `POST /oauth/token`), and the private development apps under `/api/v1/applications`.
//!
//! The full surface answers errors as `{"error":"…","error_description":"…"}` and pages
//! lists with `?$skip=&$top=` as `{"next":"…","totalCount":N,"data":[…]}`. Callers are the
//! operator (the admin token, acting as the owner of every application) or an application
//! itself, with an access token from `/oauth/token` or a permanent token ([`Caller`]).

mod credentials;
mod extensions;
mod lifecycle;
mod oauth;
mod openapi;
mod parameters;
mod private;
mod rights;
mod webhooks;

use std::collections::BTreeMap;

use axum::Json;
use axum::Router;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use self::rights::Right;
use crate::auth::{Role, hash_token};
use crate::state::AppState;
use crate::store::{ApplicationRecord, StoreError, TokenKind};

pub use openapi::ROUTES;

/// Largest request body of the applications API.
const MAX_BODY_BYTES: usize = 256 * 1024;

/// Every route of both applications surfaces.
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(lifecycle::router())
        .merge(credentials::router())
        .merge(extensions::router())
        .merge(webhooks::router())
        .merge(parameters::router())
        .merge(oauth::router())
        .merge(private::router())
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

/// An error of the full applications surface: `{"error":"…","error_description":"…"}`.
#[derive(Debug)]
pub struct SpaceError {
    status: StatusCode,
    code: &'static str,
    description: String,
    /// Seconds the client should wait before trying again (`Retry-After`).
    retry_after: Option<u32>,
}

impl SpaceError {
    fn new(status: StatusCode, code: &'static str, description: impl Into<String>) -> Self {
        Self { status, code, description: description.into(), retry_after: None }
    }

    /// 503 with `Retry-After`: the database cannot answer now; nothing was wrong with the
    /// request.
    pub fn unavailable(description: impl Into<String>) -> Self {
        Self { retry_after: Some(1), ..Self::new(StatusCode::SERVICE_UNAVAILABLE, "service-unavailable", description) }
    }

    /// 400 with a message naming the field.
    pub fn invalid(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "validation-error", description)
    }

    /// 401: no valid token.
    pub fn unauthenticated(description: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "authentication-required", description)
    }

    /// 403: the caller may not do this.
    pub fn forbidden(description: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "permission-denied", description)
    }

    /// 404: no such thing.
    pub fn not_found(description: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", description)
    }

    /// 409: conflicts with existing state.
    pub fn conflict(description: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", description)
    }

    /// An OAuth 2.0 error (`invalid_client`, `invalid_request`, …).
    pub fn oauth(status: StatusCode, code: &'static str, description: impl Into<String>) -> Self {
        Self::new(status, code, description)
    }

    /// The HTTP status it answers with.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// 500: logs the detail and hides it.
    pub fn internal(error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, "internal error in the applications API");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal-error", "internal server error")
    }
}

impl IntoResponse for SpaceError {
    fn into_response(self) -> Response {
        let body = Json(json!({ "error": self.code, "error_description": self.description }));
        let mut response = (self.status, body).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

impl From<StoreError> for SpaceError {
    fn from(error: StoreError) -> Self {
        if error.is_unavailable() {
            tracing::warn!(%error, "database unavailable");
            return Self::unavailable("the database is unavailable; retry shortly");
        }
        Self::internal(error)
    }
}

impl From<crate::crypto::OpenError> for SpaceError {
    fn from(error: crate::crypto::OpenError) -> Self {
        Self::internal(error)
    }
}

/// Shorthand for handler results.
type SpaceResult<T> = Result<T, SpaceError>;

/// `axum::Json` with the applications error body.
pub struct SpaceJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for SpaceJson<T> {
    type Rejection = SpaceError;

    async fn from_request(req: Request, state: &S) -> SpaceResult<Self> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(SpaceJson(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> SpaceError {
    match &rejection {
        JsonRejection::JsonDataError(e) => SpaceError::invalid(format!(
            "invalid request body: {}",
            e.body_text().trim_start_matches("Failed to deserialize the JSON body into the target type: ")
        )),
        JsonRejection::JsonSyntaxError(_) => {
            SpaceError::invalid(format!("request body is not valid JSON: {}", rejection.body_text()))
        }
        JsonRejection::MissingJsonContentType(_) => {
            SpaceError::invalid("send the body as JSON with `Content-Type: application/json`")
        }
        _ if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => SpaceError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            format!("the request body is larger than {MAX_BODY_BYTES} bytes"),
        ),
        _ => SpaceError::new(rejection.status(), "invalid-request", rejection.body_text()),
    }
}

/// `axum::extract::Query` with the applications error body.
pub struct SpaceQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for SpaceQuery<T> {
    type Rejection = SpaceError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> SpaceResult<Self> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| SpaceQuery(value))
            .map_err(|rejection: QueryRejection| SpaceError::invalid(rejection.body_text()))
    }
}

/// `axum::extract::Path` with the applications error body.
pub struct SpacePath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for SpacePath<T> {
    type Rejection = SpaceError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> SpaceResult<Self> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| SpacePath(value))
            .map_err(|rejection: PathRejection| SpaceError::invalid(rejection.body_text()))
    }
}

/// Who calls the applications API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// The operator: holds every right.
    Admin,
    /// A weft user (a `/v1` user token), with their organization roles.
    User {
        /// The user.
        user_id: String,
        /// Organization id → role.
        orgs: BTreeMap<String, Role>,
    },
    /// An application, with one of its own tokens.
    App {
        /// The application.
        app_id: String,
        /// The token it presented.
        token_id: String,
        /// `access`, `permanent` or `user`.
        token_kind: String,
        /// The token's scope.
        scope: String,
        /// For a user token: the user it acts for, with their organization roles.
        user: Option<(String, BTreeMap<String, Role>)>,
    },
}

impl Caller {
    /// Whether the caller is application `app_id` itself.
    fn is_app(&self, app_id: &str) -> bool {
        matches!(self, Caller::App { app_id: own, .. } if own == app_id)
    }

    /// The calling application, with an application token (not a user token).
    fn require_app(&self) -> SpaceResult<&str> {
        match self {
            Caller::App { app_id, user: None, .. } => Ok(app_id),
            Caller::App { .. } => Err(SpaceError::forbidden("only accessible with an app token, not a user token")),
            _ => Err(SpaceError::forbidden("only accessible with an application token")),
        }
    }

    /// The application and user of a user token issued to an application.
    fn require_user_token(&self) -> SpaceResult<(&str, &str)> {
        match self {
            Caller::App { app_id, user: Some((user_id, _)), .. } => Ok((app_id, user_id)),
            _ => Err(SpaceError::forbidden("only accessible with a user token issued to an application")),
        }
    }

    /// The user acting: a user token, or a user token issued to an application.
    fn user_id(&self) -> Option<&str> {
        match self {
            Caller::User { user_id, .. } | Caller::App { user: Some((user_id, _)), .. } => Some(user_id),
            _ => None,
        }
    }
}

/// A user's organization roles.
async fn roles(state: &AppState, user_id: &str) -> SpaceResult<BTreeMap<String, Role>> {
    Ok(state
        .store
        .memberships(user_id)
        .await?
        .into_iter()
        .filter_map(|m| Some((m.org_id, Role::parse(&m.role)?)))
        .collect())
}

/// The bearer token of a request, if well formed.
fn bearer(parts: &Parts) -> SpaceResult<&str> {
    let header = parts.headers.get(AUTHORIZATION).ok_or_else(|| {
        SpaceError::unauthenticated("missing Authorization header: send `Authorization: Bearer <token>`")
    })?;
    header
        .to_str()
        .ok()
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|token| !token.is_empty())
        .ok_or_else(|| SpaceError::unauthenticated("Authorization header must be `Bearer <token>`"))
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = SpaceError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> SpaceResult<Self> {
        let hash = hash_token(bearer(parts)?);
        if let Some(token) = state.store.app_token_by_hash(&hash).await? {
            let user = match token.user_id {
                Some(user_id) => {
                    let orgs = roles(state, &user_id).await?;
                    Some((user_id, orgs))
                }
                None => None,
            };
            return Ok(Caller::App {
                app_id: token.app_id,
                token_id: token.id,
                token_kind: token.kind,
                scope: token.scope,
                user,
            });
        }
        match state.store.token(&hash).await? {
            Some(record) if record.kind == TokenKind::Admin => Ok(Caller::Admin),
            Some(record) if record.kind == TokenKind::User => {
                let orgs = roles(state, &record.subject).await?;
                Ok(Caller::User { user_id: record.subject, orgs })
            }
            Some(_) => Err(SpaceError::forbidden("integration and installation tokens may not manage applications")),
            None => Err(SpaceError::unauthenticated("invalid or expired token")),
        }
    }
}

/// Finds the application named by a path segment (`me`, `id:…`, `clientId:…` or a bare id)
/// and checks that the caller holds `right` on it ([`rights::check`]). To an application,
/// every other application looks forbidden, whether or not it exists.
async fn resolve(state: &AppState, caller: &Caller, reference: &str, right: Right) -> SpaceResult<ApplicationRecord> {
    let app = if reference == "me" {
        let Caller::App { app_id, .. } = caller else {
            return Err(SpaceError::invalid("`me` names the calling application: use an application token"));
        };
        state.store.application(app_id).await?
    } else if let Some(client_id) = reference.strip_prefix("clientId:") {
        state.store.application_by_client_id(client_id).await?
    } else {
        state.store.application(reference.strip_prefix("id:").unwrap_or(reference)).await?
    };
    match (caller, app) {
        (Caller::App { app_id, user: None, .. }, app) if app.as_ref().is_none_or(|app| &app.id != app_id) => {
            Err(SpaceError::forbidden("an application may only act on itself"))
        }
        (_, None) => Err(SpaceError::not_found(format!("no application `{reference}`"))),
        (_, Some(app)) => {
            let granted = rights::needs_grant(caller, right)
                && state.store.authorization(&app.id, "global", right.code()).await?.as_deref() == Some("GRANTED");
            rights::check(caller, &app, right, granted)?;
            Ok(app)
        }
    }
}

/// Checks `right` on the application named by `reference`, then applies `change` to it and
/// writes it ([`crate::store::Store::modify_application`]: a concurrent write makes it
/// re-read and re-apply, never overwrite). Returns the application as written.
async fn modify(
    state: &AppState,
    caller: &Caller,
    reference: &str,
    right: Right,
    change: impl FnMut(&mut ApplicationRecord) -> SpaceResult<()>,
) -> SpaceResult<ApplicationRecord> {
    let app = resolve(state, caller, reference, right).await?;
    state.store.modify_application(&app.id, change).await?.ok_or_else(|| SpaceError::not_found("no such application"))
}

/// The `$skip`/`$top` paging parameters.
#[derive(Debug, Deserialize)]
struct Paging {
    #[serde(rename = "$skip")]
    skip: Option<String>,
    #[serde(rename = "$top")]
    top: Option<i64>,
}

impl Paging {
    /// `(offset, limit)`, validated.
    fn window(&self) -> SpaceResult<(i64, i64)> {
        let offset = match self.skip.as_deref() {
            None | Some("") => 0,
            Some(skip) => skip.parse::<i64>().ok().filter(|s| *s >= 0).ok_or_else(|| {
                SpaceError::invalid(format!("$skip `{skip}` must be a `next` value from a previous page"))
            })?,
        };
        let limit = match self.top {
            None => 100,
            Some(top @ 1..=1000) => top,
            Some(other) => return Err(SpaceError::invalid(format!("$top must be between 1 and 1000, got {other}"))),
        };
        Ok((offset, limit))
    }
}

/// A page answer.
fn page(data: Vec<Value>, offset: i64, total: i64) -> Value {
    let next = offset + data.len() as i64;
    json!({ "next": next.to_string(), "totalCount": total, "data": data })
}

/// An RFC 3339 timestamp, or null.
fn time(ms: Option<i64>) -> Value {
    ms.map_or(Value::Null, |ms| Value::String(super::timestamp(ms)))
}
