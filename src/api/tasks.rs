//! `/v1/integrations/{integrationName}/tasks`: queue work for an integration to run later,
//! and inspect its queued and dead-lettered tasks.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiError;
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::integrations::find_visible;
use crate::auth::Principal;
use crate::queue::{self, MAX_SCHEDULE_SECS};
use crate::state::AppState;
use crate::store::{IntegrationRecord, JobSummary};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/integrations/{integrationName}/tasks", post(queue_task).get(list))
        .route("/v1/integrations/{integrationName}/tasks/{taskId}/retry", post(retry))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct QueueTask {
    task: Value,
    #[serde(default)]
    schedule: Option<f64>,
    /// A re-submission with the same key is a no-op.
    idempotency_key: Option<String>,
}

/// The integration itself, or an admin of the organization that owns it.
fn require_task_access(principal: &Principal, integration: &IntegrationRecord) -> Result<(), ApiError> {
    match principal {
        _ if principal.acts_for(integration, false) => Ok(()),
        _ => principal.require_org_admin(&integration.org_id),
    }
}

async fn queue_task(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<QueueTask>,
) -> Result<StatusCode, ApiError> {
    let integration = find_visible(&state, &principal, &name).await?;
    require_task_access(&principal, &integration)?;
    let schedule = body.schedule.unwrap_or(0.0);
    if !(0.0..=f64::from(MAX_SCHEDULE_SECS)).contains(&schedule) || schedule.fract() != 0.0 {
        return Err(ApiError::bad_request(format!(
            "schedule must be a whole number of seconds, 0–{MAX_SCHEDULE_SECS}"
        )));
    }
    if body.idempotency_key.as_ref().is_some_and(|key| key.is_empty() || key.len() > 200) {
        return Err(ApiError::bad_request("idempotencyKey must be 1–200 characters"));
    }
    let job =
        queue::task_job(queue::JobOwner::integration(&integration), body.task, schedule as u32, body.idempotency_key)
            .map_err(ApiError::bad_request)?;
    queue::check_quota(&state, &integration.id).await.map_err(|error| match error {
        queue::QuotaError::Full(message) => ApiError::new(StatusCode::TOO_MANY_REQUESTS, message).with_retry_after(60),
        queue::QuotaError::Store(error) => error.into(),
    })?;
    state.queue.enqueue(&state.store, &[job]).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskQuery {
    /// queued, running, done or dead (default queued).
    status: Option<String>,
    limit: Option<i64>,
    /// Where the page starts: the previous answer's `next.page`.
    page: Option<String>,
}

/// A page cursor: the last job's due time and id.
fn cursor(page: &str) -> Result<(i64, &str), ApiError> {
    page.split_once('.')
        .and_then(|(due_at, id)| Some((due_at.parse().ok()?, id)))
        .ok_or_else(|| ApiError::bad_request("page must be the `next.page` of a previous answer"))
}

async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(name): ApiPath<String>,
    ApiQuery(query): ApiQuery<TaskQuery>,
) -> Result<Json<Value>, ApiError> {
    let integration = find_visible(&state, &principal, &name).await?;
    require_task_access(&principal, &integration)?;
    let status = query.status.as_deref().unwrap_or("queued");
    if !matches!(status, "queued" | "running" | "done" | "dead") {
        return Err(ApiError::bad_request("status must be queued, running, done or dead"));
    }
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request("limit must be between 1 and 1000"));
    }
    let after = query.page.as_deref().map(cursor).transpose()?;
    let jobs = state.store.jobs_after(&integration.id, status, after, limit).await?;
    let items: Vec<Value> = jobs.iter().map(task_json).collect();
    let mut body = json!({ "count": items.len(), "items": items });
    if let Some(last) = jobs.last().filter(|_| jobs.len() as i64 == limit) {
        body["next"] = json!({ "page": format!("{}.{}", last.due_at, last.id) });
    }
    Ok(Json(body))
}

fn task_json(job: &JobSummary) -> Value {
    json!({
        "id": job.id,
        "installation": job.installation_id,
        "event": job.event,
        "status": job.status,
        "dueAt": super::timestamp(job.due_at),
        "attempts": job.attempts,
        "lastError": job.last_error,
    })
}

/// Runs a dead-lettered task again: back in the queue, due now, with a fresh set of
/// attempts (its last error stays until the next run). 409 when the task is not dead.
async fn retry(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((name, id)): ApiPath<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let integration = find_visible(&state, &principal, &name).await?;
    require_task_access(&principal, &integration)?;
    match state.store.requeue_dead_job(&integration.id, &id).await? {
        None => return Err(ApiError::not_found(format!("integration `{name}` has no task `{id}`"))),
        Some(false) => return Err(ApiError::conflict(format!("task `{id}` is not dead-lettered"))),
        Some(true) => {}
    }
    state.queue.notify();
    let job = state.store.job(&integration.id, &id).await?;
    // The worker may have claimed (or even finished) it already.
    Ok(Json(job.as_ref().map_or_else(|| json!({ "id": id, "status": "done" }), task_json)))
}
