//! Chart figures computed from what the server keeps (the events log and the queue, shared
//! by every replica), not from one process's Prometheus counters:
//! - `GET /v1/integrations/{integrationName}/stats?window=hour|day`: one integration (who
//!   may read its events log);
//! - `GET /v1/orgs/{organizationId}/stats?window=`: the integrations an organization owns
//!   (its members);
//! - `GET /v1/stats?window=`: the whole server (the operator).

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiError;
use super::extract::{ApiPath, ApiQuery};
use super::integrations::find_visible;
use crate::auth::Principal;
use crate::state::AppState;
use crate::store::{QueueDepth, Stats, StatsScope, now_ms};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/stats", get(server))
        .route("/v1/orgs/{organizationId}/stats", get(org))
        .route("/v1/integrations/{integrationName}/stats", get(integration))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatsQuery {
    /// `hour` (one-minute buckets, the default) or `day` (thirty-minute buckets).
    window: Option<String>,
}

impl StatsQuery {
    /// The window's length and bucket size, in ms.
    fn window(&self) -> Result<(&str, i64, i64), ApiError> {
        match self.window.as_deref().unwrap_or("hour") {
            "hour" => Ok(("hour", 3_600_000, 60_000)),
            "day" => Ok(("day", 86_400_000, 1_800_000)),
            other => Err(ApiError::bad_request(format!("window must be hour or day, got `{other}`"))),
        }
    }
}

async fn server(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(query): ApiQuery<StatsQuery>,
) -> Result<Json<Value>, ApiError> {
    principal.require_admin()?;
    answer(&state, StatsScope::All, &query).await
}

async fn org(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(org_id): ApiPath<String>,
    ApiQuery(query): ApiQuery<StatsQuery>,
) -> Result<Json<Value>, ApiError> {
    principal.require_org_member(&org_id)?;
    if state.store.org(&org_id).await?.is_none() {
        return Err(ApiError::not_found(format!("no organization `{org_id}`")));
    }
    answer(&state, StatsScope::Org(&org_id), &query).await
}

async fn integration(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(name): ApiPath<String>,
    ApiQuery(query): ApiQuery<StatsQuery>,
) -> Result<Json<Value>, ApiError> {
    let integration = find_visible(&state, &principal, &name).await?;
    if !principal.acts_for(&integration, false) {
        principal.require_org_member(&integration.org_id)?;
    }
    answer(&state, StatsScope::Integration(&integration.id), &query).await
}

fn depth_json(depth: &QueueDepth) -> Value {
    json!({ "queued": depth.queued, "running": depth.running, "dead": depth.dead })
}

async fn answer(state: &AppState, scope: StatsScope<'_>, query: &StatsQuery) -> Result<Json<Value>, ApiError> {
    let (window, length, bucket) = query.window()?;
    let now = now_ms();
    // Buckets start on whole minutes, so consecutive requests line up.
    let from = (now - length) / 60_000 * 60_000;
    let Stats { buckets, percentiles, failures, queue_now, queue_samples } =
        state.store.stats(scope, from, bucket).await?;
    let total: i64 = buckets.iter().map(|b| b.success + b.failed + b.dead).sum();
    let failed: i64 = failures.iter().map(|(_, n)| n).sum();
    let ms = |us: i64| us as f64 / 1000.0;
    Ok(Json(json!({
        "window": window,
        "from": super::timestamp(from),
        "to": super::timestamp(now),
        "bucketSeconds": bucket / 1000,
        "events": {
            "total": total,
            "failed": failed,
            "failureRate": if total > 0 { failed as f64 / total as f64 } else { 0.0 },
            "buckets": buckets.iter().enumerate().map(|(i, b)| json!({
                "at": super::timestamp(from + i as i64 * bucket),
                "success": b.success,
                "failed": b.failed,
                "dead": b.dead,
            })).collect::<Vec<_>>(),
        },
        "duration": percentiles.map(|[p50, p95, p99]| json!({ "p50": ms(p50), "p95": ms(p95), "p99": ms(p99) })),
        "failures": failures.iter().map(|(kind, n)| json!({
            "kind": kind,
            "count": n,
            "rate": *n as f64 / total.max(1) as f64,
        })).collect::<Vec<_>>(),
        "queue": {
            "now": depth_json(&queue_now),
            "samples": queue_samples.iter().map(|(minute, depth)| {
                let mut sample = depth_json(depth);
                sample["at"] = json!(super::timestamp(*minute));
                sample
            }).collect::<Vec<_>>(),
        },
    })))
}
