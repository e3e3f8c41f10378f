//! Dev mode endpoints: `PUT`/`GET`/`DELETE /v1/integrations/{integrationName}/dev`, the
//! reverse tunnel `GET …/dev/connect` (a WebSocket `weft dev` opens) and the live events
//! stream `GET …/events/stream` (server-sent events, what `weft tail` reads).

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures_util::Stream;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use super::ApiError;
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::integrations::find_visible;
use crate::auth::Principal;
use crate::dev::TunnelKind;
use crate::state::AppState;
use crate::store::{EventRecord, IntegrationRecord};

/// Longest tunnel URL.
const MAX_TUNNEL_URL: usize = 256;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/integrations/{integrationName}/dev", get(show).put(enable).delete(disable))
        .route("/v1/integrations/{integrationName}/dev/connect", get(connect))
        .route("/v1/integrations/{integrationName}/events/stream", get(stream))
}

/// Dev mode belongs to the integration's organization: its admins and the operator.
async fn owned(state: &AppState, principal: &Principal, name: &str) -> Result<IntegrationRecord, ApiError> {
    let integration = find_visible(state, principal, name).await?;
    principal.require_org_admin(&integration.org_id)?;
    Ok(integration)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DevBody {
    tunnel_url: String,
    #[serde(default)]
    all: bool,
}

async fn enable(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<DevBody>,
) -> Result<StatusCode, ApiError> {
    let integration = owned(&state, &principal, &name).await?;
    let length = body.tunnel_url.chars().count();
    if !(1..=MAX_TUNNEL_URL).contains(&length) {
        return Err(ApiError::bad_request(format!("tunnelUrl must be 1–{MAX_TUNNEL_URL} characters")));
    }
    if !(body.tunnel_url.starts_with("http://") || body.tunnel_url.starts_with("https://")) {
        return Err(ApiError::bad_request("tunnelUrl must be an http:// or https:// URL"));
    }
    crate::outbound::check_literal_address(&body.tunnel_url, state.dev.allows_private_addresses())
        .map_err(|reason| ApiError::bad_request(format!("tunnelUrl: {reason}")))?;
    // Generated now, so the author can read it before the first event.
    state.dev.signing_secret(&state, &integration.id).await?;
    state.store.set_dev_mode(&integration.id, &body.tunnel_url, TunnelKind::Http.as_str(), body.all).await?;
    state.dev.invalidate(&integration.id);
    Ok(StatusCode::NO_CONTENT)
}

async fn disable(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(name): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let integration = owned(&state, &principal, &name).await?;
    state.store.clear_dev_mode(&integration.id).await?;
    state.dev.invalidate(&integration.id);
    Ok(StatusCode::NO_CONTENT)
}

async fn show(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let integration = owned(&state, &principal, &name).await?;
    let secret = state.dev.signing_secret(&state, &integration.id).await?;
    let record = state.store.dev_mode(&integration.id).await?;
    let (tunnel_url, kind, all) = match &record {
        Some(record) => (record.tunnel_url.clone(), record.tunnel_kind.clone(), record.all_orgs),
        None => (None, TunnelKind::Http.as_str().to_owned(), false),
    };
    Ok(Json(json!({
        "enabled": tunnel_url.is_some(),
        "tunnelUrl": tunnel_url,
        "tunnel": kind,
        "all": all,
        "connected": state.dev.connected(&integration.id),
        "signingSecret": secret,
    })))
}

#[derive(Deserialize)]
struct ConnectQuery {
    #[serde(default)]
    all: bool,
}

/// Opens the reverse tunnel: dev mode goes on and stays on when the socket closes (events
/// then fail as `tunnel_unreachable` until `weft dev` reconnects or dev mode is turned off).
async fn connect(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(name): ApiPath<String>,
    ApiQuery(query): ApiQuery<ConnectQuery>,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let integration = owned(&state, &principal, &name).await?;
    let url = format!("{}/v1/integrations/{}/dev/connect", state.public_url, integration.name);
    state.store.set_dev_mode(&integration.id, &url, TunnelKind::Socket.as_str(), query.all).await?;
    state.dev.invalidate(&integration.id);
    Ok(upgrade.on_upgrade(move |socket| crate::dev::socket::serve(state, integration, socket)).into_response())
}

#[derive(Deserialize)]
struct StreamQuery {
    status: Option<String>,
    installation: Option<String>,
}

impl StreamQuery {
    fn matches(&self, integration_id: &str, event: &EventRecord) -> bool {
        event.integration_id == integration_id
            // `failed` takes dead-lettered events too, as the events list does.
            && self.status.as_ref().is_none_or(|status| *status == event.status || (status == "failed" && event.status == "dead"))
            && self.installation.as_ref().is_none_or(|id| event.installation_id.as_ref() == Some(id))
    }
}

/// Events of the integration as they are recorded, with their logs, as server-sent events
/// named `event` (data: `{event, trace}` as `GET …/events/{eventId}` answers it).
async fn stream(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(name): ApiPath<String>,
    ApiQuery(query): ApiQuery<StreamQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let integration = find_visible(&state, &principal, &name).await?;
    match &principal {
        _ if principal.acts_for(&integration, false) => {}
        Principal::Integration { .. } | Principal::Installation { .. } => {
            return Err(ApiError::forbidden(format!("this token may not read the events of `{name}`")));
        }
        _ => principal.require_org_member(&integration.org_id)?,
    }
    let receiver = state.events.live().subscribe();
    let filter = Arc::new((integration.id, query));
    let closed = Box::pin(state.dev.closed());
    let events = futures_util::stream::unfold((receiver, closed), move |(mut receiver, mut closed)| {
        let filter = filter.clone();
        async move {
            loop {
                let received = tokio::select! {
                    () = &mut closed => return None,
                    received = receiver.recv() => received,
                };
                match received {
                    Ok(event) if filter.1.matches(&filter.0, &event) => {
                        let data = crate::shapes::integration_event_with_trace(&event).to_string();
                        let sse = Event::default().event("event").id(event.id.clone()).data(data);
                        return Some((Ok(sse), (receiver, closed)));
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(missed)) => {
                        // A subscriber that fell behind is dropped after this notice, not
                        // buffered for: it reconnects and reads the missed ones from the log.
                        let sse = Event::default().event("lagged").data(json!({ "missed": missed }).to_string());
                        // A receiver whose sender is gone ends the stream at its next turn.
                        let ended = tokio::sync::broadcast::channel(1).1;
                        return Some((Ok(sse), (ended, closed)));
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        }
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}
