//! The installations' public endpoints: `ANY /v1/integrations/{name}/installations/{id}/fetch/{*path}`.
//!
//! A third party's request becomes a `fetch` event for the installation, and the guest's
//! response is relayed as it is. No token is needed: the integration authenticates its
//! callers itself (signatures, shared secrets).

use std::collections::BTreeMap;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::json;
use weft_runtime::{Failure, FailureKind, GuestResponse, Outcome};

use super::ApiError;
use super::extract::{ApiPath, integration_name};
use crate::dispatch::{self, DispatchError};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/integrations/{integrationName}/installations/{installationId}/fetch", any(fetch))
        .route("/v1/integrations/{integrationName}/installations/{installationId}/fetch/", any(fetch))
        .route("/v1/integrations/{integrationName}/installations/{installationId}/fetch/{*path}", any(fetch))
}

/// The header that names the event a response came from, for finding its logs.
const EVENT_ID_HEADER: &str = "x-weft-event-id";

/// The HTTP status a guest failure answers with.
pub fn failure_status(failure: &Failure) -> StatusCode {
    match failure.kind {
        FailureKind::Timeout => StatusCode::GATEWAY_TIMEOUT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

async fn fetch(
    State(state): State<AppState>,
    ApiPath(params): ApiPath<BTreeMap<String, String>>,
    request: Request,
) -> Result<Response, ApiError> {
    let name = &params["integrationName"];
    let installation_id = &params["installationId"];
    let path = format!("/{}", params.get("path").map(String::as_str).unwrap_or(""));
    integration_name(name)?;
    let (integration, installation) =
        state.targets.get(&state.store, name, installation_id).await?.ok_or_else(|| {
            ApiError::not_found(format!("no installation `{installation_id}` of an integration `{name}`"))
        })?;

    if let Err(wait) = state.tenancy.fetch_rate.admit(&installation.id) {
        let mut response = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!("installation `{installation_id}` receives too many requests; retry shortly"),
        )
        .into_response();
        let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
        response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(secs));
        return Ok(response);
    }

    let (parts, body) = request.into_parts();
    let body = to_bytes(body, state.max_fetch_body_bytes).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body is larger than the {} bytes allowed", state.max_fetch_body_bytes),
        )
    })?;
    let mut headers = BTreeMap::<String, String>::new();
    for (header, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        headers.entry(header.as_str().to_owned()).and_modify(|v| *v = format!("{v}, {value}")).or_insert(value.into());
    }
    let path_and_query = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let event = json!({
        "type": "fetch",
        "request": {
            "method": parts.method.as_str(),
            "url": format!("{}{path_and_query}", state.public_url),
            "path": path,
            "query": parts.uri.query().unwrap_or(""),
            "headers": headers,
            "body": BASE64.encode(&body),
        },
    });

    let dispatched = match dispatch::run_event(&state, &integration, &installation, event, relayable).await {
        Ok(dispatched) => dispatched,
        Err(DispatchError::Busy) => {
            let mut response =
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the server is at capacity; retry shortly")
                    .into_response();
            response.headers_mut().insert(RETRY_AFTER, HeaderValue::from_static("1"));
            return Ok(response);
        }
        Err(DispatchError::Saturated(saturated)) => {
            let mut response = ApiError::new(StatusCode::TOO_MANY_REQUESTS, saturated.to_string()).into_response();
            response.headers_mut().insert(RETRY_AFTER, HeaderValue::from_static("1"));
            return Ok(response);
        }
        Err(other) => return Err(other.into()),
    };

    let mut response = match dispatched.report.result {
        Ok(Outcome::Response(guest)) => relay(guest),
        Ok(Outcome::None) => {
            ApiError::new(StatusCode::NOT_ACCEPTABLE, format!("integration `{name}` does not handle fetch events"))
                .into_response()
        }
        Ok(Outcome::Error { code, message }) => {
            ApiError::new(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), message)
                .into_response()
        }
        // The tunnel's address and answers are the author's business: the events log has them.
        Err(failure) if failure.kind == FailureKind::TunnelUnreachable => ApiError::new(
            failure_status(&failure),
            format!("integration `{name}` is in dev mode and its tunnel failed; see its events log"),
        )
        .into_response(),
        Err(failure) => ApiError::new(
            failure_status(&failure),
            format!("integration `{name}` failed ({}): {}", failure.kind.as_str(), failure.message),
        )
        .into_response(),
    };
    if let Ok(value) = HeaderValue::from_str(&dispatched.event_id) {
        response.headers_mut().insert(HeaderName::from_static(EVENT_ID_HEADER), value);
    }
    Ok(response)
}

/// Refuses a guest response that HTTP cannot carry, so it is recorded as `bad_output`.
fn relayable(outcome: &Outcome) -> Result<(), Failure> {
    let Outcome::Response(response) = outcome else { return Ok(()) };
    for (name, value) in &response.headers {
        if HeaderName::from_bytes(name.as_bytes()).is_err() || HeaderValue::from_str(value).is_err() {
            return Err(Failure {
                kind: FailureKind::BadOutput,
                message: format!("response header `{name}: {value}` is not a valid HTTP header"),
            });
        }
    }
    Ok(())
}

fn relay(guest: GuestResponse) -> Response {
    let mut response = Response::new(Body::from(guest.body));
    *response.status_mut() = StatusCode::from_u16(guest.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in guest.headers {
        // `relayable` has checked every header already.
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(&value)) {
            response.headers_mut().append(name, value);
        }
    }
    response
}
