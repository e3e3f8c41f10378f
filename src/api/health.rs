//! Operations endpoints: liveness (`/healthz`), readiness (`/readyz`) and Prometheus
//! metrics (`/metrics`). Outside `/v1` because they describe this process, not the API.

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::ApiError;
use crate::auth::Principal;
use crate::metrics::Gauges;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
}

/// Ready when writes succeed — the database would take one now and the events log is being
/// written — and shutdown has not begun; 503 otherwise, with a reason that names the part
/// (the database's own error goes to the server's log, not to whoever asks).
async fn ready(State(state): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    let unavailable =
        |reason: &str| (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "unavailable", "reason": reason})));
    if state.draining.load(Ordering::Relaxed) {
        return unavailable("shutting down");
    }
    if let Err(error) = state.store.probe_write().await {
        tracing::warn!(%error, "readiness: the database takes no writes");
        return unavailable("the database takes no writes");
    }
    if !state.events.healthy() {
        return unavailable("the events log cannot be written");
    }
    (StatusCode::OK, Json(json!({"status": "ready", "database": "ok"})))
}

/// The operator's token is required unless the server runs with `--metrics-public`.
async fn metrics(State(state): State<AppState>, principal: Result<Principal, ApiError>) -> Result<Response, ApiError> {
    if !state.metrics_public {
        principal?.require_admin()?;
    }
    let max = state.runtime.config().max_instances as usize;
    let gauges = Gauges {
        // A database that does not answer leaves the gauge out rather than failing the scrape.
        queue_depth: state.store.queue_depth().await.ok(),
        instances_busy: max.saturating_sub(state.runtime.idle_slots()),
        instances_max: max,
    };
    let body = state.metrics.render(gauges);
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body).into_response())
}
