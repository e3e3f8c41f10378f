//! The public endpoints: an installation's, `ANY /v1/integrations/{name}/installations/{id}/fetch/{*path}`,
//! and the integration's own, `ANY /v1/integrations/{name}/fetch/{*path}` (its
//! `urls.publicEndpoint`: OAuth callbacks and webhooks that name no installation).
//!
//! A third party's request becomes a `fetch` event for the installation (or for the
//! integration, with no installation), and the guest's response is relayed as it is. No token is needed: the integration authenticates its
//! callers itself (signatures, shared secrets).

use std::collections::BTreeMap;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::header::{CONTENT_SECURITY_POLICY, RETRY_AFTER};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde_json::{Value, json};
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
        .route("/v1/integrations/{integrationName}/fetch", any(fetch))
        .route("/v1/integrations/{integrationName}/fetch/", any(fetch))
        .route("/v1/integrations/{integrationName}/fetch/{*path}", any(fetch))
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
    let path = format!("/{}", params.get("path").map(String::as_str).unwrap_or(""));
    integration_name(name)?;
    let (integration, installation) = match params.get("installationId") {
        Some(installation_id) => {
            let (integration, installation) =
                state.targets.get(&state.store, name, installation_id).await?.ok_or_else(|| {
                    ApiError::not_found(format!("no installation `{installation_id}` of an integration `{name}`"))
                })?;
            (integration, Some(installation))
        }
        None => {
            let integration = state
                .store
                .integration(name)
                .await?
                .ok_or_else(|| ApiError::not_found(format!("no integration `{name}`")))?;
            (std::sync::Arc::new(integration), None)
        }
    };

    // One bucket per installation, and one for the integration's own endpoint.
    let (bucket, whom) = match &installation {
        Some(installation) => (installation.id.clone(), format!("installation `{}`", installation.id)),
        None => (format!("integration:{}", integration.id), format!("integration `{name}`")),
    };
    if let Err(wait) = state.tenancy.fetch_rate.admit(&bucket) {
        let mut response =
            ApiError::new(StatusCode::TOO_MANY_REQUESTS, format!("{whom} receives too many requests; retry shortly"))
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
    let mut event = json!({
        "type": "fetch",
        "request": {
            // As GitBook's `FetchRequest` spells it; the SDK upper-cases it for authors.
            "method": parts.method.as_str().to_ascii_lowercase(),
            "url": format!("{}{path_and_query}", state.public_url),
            "path": path,
            "query": parts.uri.query().unwrap_or(""),
            "headers": headers,
        },
    });

    if let Some(installation) = &installation {
        event["installationId"] = json!(installation.id);
    }
    let installation = installation.as_deref();
    let dispatched = match dispatch::run_fetch(&state, &integration, installation, event, &body, relayable).await {
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
        Ok(Outcome::Response(guest)) => {
            let mut response = relay(guest);
            // The reference: the integration's policy is sent with what it serves, unless
            // the module set one of its own.
            if let Some(policy) = content_security_policy(&integration.manifest)
                && !response.headers().contains_key(CONTENT_SECURITY_POLICY)
            {
                response.headers_mut().insert(CONTENT_SECURITY_POLICY, policy);
            }
            response
        }
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

/// The integration's `contentSecurityPolicy` as a header value: the string as published, or
/// an object of directives (`{"connect-src": ["a", "b"]}`) written out as `connect-src a b`.
fn content_security_policy(manifest: &Value) -> Option<HeaderValue> {
    let policy = match &manifest["contentSecurityPolicy"] {
        Value::String(policy) => policy.trim().to_owned(),
        Value::Object(directives) => directives
            .iter()
            .map(|(name, sources)| match sources {
                Value::Array(sources) => {
                    let sources: Vec<&str> = sources.iter().filter_map(Value::as_str).collect();
                    format!("{name} {}", sources.join(" "))
                }
                Value::String(sources) => format!("{name} {sources}"),
                _ => name.clone(),
            })
            .collect::<Vec<_>>()
            .join("; "),
        _ => return None,
    };
    HeaderValue::from_str(&policy).ok().filter(|value| !value.is_empty())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_content_security_policy_header_is_the_string_or_the_directives_written_out() {
        let string = json!({"contentSecurityPolicy": " connect-src example.com "});
        assert_eq!(content_security_policy(&string).unwrap(), "connect-src example.com");
        let object = json!({"contentSecurityPolicy": {"connect-src": ["a.test", "b.test"], "default-src": "'self'"}});
        assert_eq!(content_security_policy(&object).unwrap(), "connect-src a.test b.test; default-src 'self'");
        assert!(content_security_policy(&json!({})).is_none());
    }
}
