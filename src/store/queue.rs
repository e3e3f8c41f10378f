//! The durable job queue: events, tasks and cron firings waiting to run.
//!
//! A worker claims due jobs with a lease; a job whose worker dies becomes claimable again
//! once its lease expires, so every job runs at least once. On PostgreSQL the claim skips
//! rows other replicas are claiming (`FOR UPDATE SKIP LOCKED`); SQLite serialises writers,
//! so its claim is the same single statement without it.

use serde_json::Value;
use sqlx::AnyConnection;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Backend, Result, Store, json_column, now_ms, placeholders};

/// A job to enqueue.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// Unique id.
    pub id: String,
    /// The identity of the integration to run: a job outlives nothing it belongs to.
    pub integration_id: String,
    /// The integration's name, for display.
    pub integration: String,
    /// The installation it runs for; `None` runs at integration level.
    pub installation_id: Option<String>,
    /// The event object the integration receives.
    pub event: Value,
    /// When it may run (ms).
    pub due_at: i64,
    /// Runs before it is declared dead.
    pub max_attempts: i64,
    /// Makes a re-submission with the same key a no-op.
    pub idempotency_key: Option<String>,
}

/// A claimed job.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// Its id.
    pub id: String,
    /// The identity of the integration to run.
    pub integration_id: String,
    /// The integration's name when the job was queued.
    pub integration: String,
    /// The installation, if any.
    pub installation_id: Option<String>,
    /// The event object.
    pub event: Value,
    /// When it was due (ms): lateness is measured from here.
    pub due_at: i64,
    /// Runs so far, this one included.
    pub attempts: i64,
    /// Runs allowed.
    pub max_attempts: i64,
}

/// How a claim shares the worker between integrations.
#[derive(Debug, Clone, Default)]
pub struct FairClaim {
    /// Most jobs of one integration in this claim.
    pub per_integration: i64,
    /// Integrations whose share of the worker is full: none of their jobs.
    pub skip: Vec<String>,
}

/// A job as the API shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSummary {
    /// Its id.
    pub id: String,
    /// The installation, if any.
    pub installation_id: Option<String>,
    /// The event object.
    pub event: Value,
    /// queued, running, done or dead.
    pub status: String,
    /// When it is (or was) due (ms).
    pub due_at: i64,
    /// Runs so far.
    pub attempts: i64,
    /// The last failure.
    pub last_error: Option<String>,
}

const CLAIMED: &str = "id, integration_id, integration, installation_id, event, due_at, attempts, max_attempts";

fn claimed(row: &AnyRow) -> Result<Job> {
    Ok(Job {
        id: row.try_get("id")?,
        integration_id: row.try_get("integration_id")?,
        integration: row.try_get("integration")?,
        installation_id: row.try_get("installation_id")?,
        event: json_column(row, "event")?,
        due_at: row.try_get("due_at")?,
        attempts: row.try_get("attempts")?,
        max_attempts: row.try_get("max_attempts")?,
    })
}

impl Store {
    /// Enqueues jobs; returns how many were new (a repeated idempotency key is skipped).
    pub async fn enqueue(&self, jobs: &[NewJob]) -> Result<u64> {
        let mut connection = self.pool.acquire().await?;
        insert_jobs(&mut connection, self.backend, jobs).await
    }

    /// Claims up to `limit` due jobs (and jobs whose lease expired) for `owner`, oldest first.
    pub async fn claim_jobs(&self, owner: &str, lease_ms: i64, limit: i64) -> Result<Vec<Job>> {
        self.claim_jobs_fairly(owner, lease_ms, limit, &FairClaim { per_integration: limit, skip: Vec::new() }).await
    }

    /// Claims up to `limit` due jobs for `owner`, taking turns between integrations: each
    /// integration's oldest due job first, then each one's second, and so on, at most
    /// `fair.per_integration` of each and none of `fair.skip`. One integration's backlog
    /// therefore delays another's due job by at most one claim.
    pub async fn claim_jobs_fairly(
        &self,
        owner: &str,
        lease_ms: i64,
        limit: i64,
        fair: &FairClaim,
    ) -> Result<Vec<Job>> {
        let now = now_ms();
        let skip_locked = match self.backend {
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let skip = if fair.skip.is_empty() {
            String::new()
        } else {
            let list = (0..fair.skip.len()).map(|i| format!("${}", i + 6)).collect::<Vec<_>>().join(", ");
            format!("AND integration_id NOT IN ({list})")
        };
        const CLAIMABLE: &str = "((status = 'queued' AND due_at <= $3) OR (status = 'running' AND lease_until < $3))";
        // The window function ranks each integration's due jobs; the level above it locks
        // (PostgreSQL forbids locking beside a window function) and checks the row again.
        let sql = format!(
            "UPDATE jobs SET status = 'running', lease_owner = $1, lease_until = $2, attempts = attempts + 1, \
                updated_at = $3 \
             WHERE id IN (SELECT id FROM jobs WHERE {CLAIMABLE} AND id IN ( \
                SELECT id FROM (SELECT id, due_at, \
                    ROW_NUMBER() OVER (PARTITION BY integration_id ORDER BY due_at, id) AS turn \
                    FROM jobs WHERE {CLAIMABLE} {skip}) ranked \
                WHERE turn <= $5 ORDER BY turn, due_at LIMIT $4) {skip_locked}) \
             RETURNING {CLAIMED}"
        );
        let mut query =
            sqlx::query(&sql).bind(owner).bind(now + lease_ms).bind(now).bind(limit).bind(fair.per_integration.max(1));
        for id in &fair.skip {
            query = query.bind(id);
        }
        let rows = query.fetch_all(&self.pool).await?;
        let mut jobs = rows.iter().map(claimed).collect::<Result<Vec<_>>>()?;
        jobs.sort_by_key(|job| job.due_at);
        Ok(jobs)
    }

    /// How many jobs of `integration_id` wait or run, counting no further than `max`.
    pub async fn queued_jobs_of(&self, integration_id: &str, max: i64) -> Result<i64> {
        let row = sqlx::query(
            "SELECT COUNT(*) FROM (SELECT 1 FROM jobs WHERE integration_id = $1 AND status IN ('queued', 'running') \
             LIMIT $2) waiting",
        )
        .bind(integration_id)
        .bind(max)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get(0)?)
    }

    /// Marks jobs `owner` finished: deleted, or kept as `done` while an idempotency key
    /// must keep refusing re-submissions.
    pub async fn complete_jobs(&self, owner: &str, ids: &[String]) -> Result<()> {
        for chunk in ids.chunks(500) {
            let ids_from = |first: usize| (first..first + chunk.len()).map(|i| format!("${i}")).collect::<Vec<_>>();
            let delete = format!(
                "DELETE FROM jobs WHERE lease_owner = $1 AND idempotency_key IS NULL AND id IN ({})",
                ids_from(2).join(", ")
            );
            let mut query = sqlx::query(&delete).bind(owner);
            for id in chunk {
                query = query.bind(id);
            }
            query.execute(&self.pool).await?;
            let keep = format!(
                "UPDATE jobs SET status = 'done', lease_owner = NULL, updated_at = $2 WHERE lease_owner = $1 AND id IN ({})",
                ids_from(3).join(", ")
            );
            let mut query = sqlx::query(&keep).bind(owner).bind(now_ms());
            for id in chunk {
                query = query.bind(id);
            }
            query.execute(&self.pool).await?;
        }
        Ok(())
    }

    /// Puts a failed job back to run again at `due_at`.
    pub async fn retry_job(&self, owner: &str, id: &str, due_at: i64, error: &str) -> Result<()> {
        sqlx::query(
            "UPDATE jobs SET status = 'queued', due_at = $3, lease_owner = NULL, lease_until = NULL, last_error = $4, \
             updated_at = $5 WHERE id = $1 AND lease_owner = $2",
        )
        .bind(id)
        .bind(owner)
        .bind(due_at)
        .bind(error)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Gives a job back without counting the attempt (the server could not run it).
    pub async fn release_job(&self, owner: &str, id: &str, due_at: i64) -> Result<()> {
        sqlx::query(
            "UPDATE jobs SET status = 'queued', due_at = $3, attempts = attempts - 1, lease_owner = NULL, \
             lease_until = NULL, updated_at = $4 WHERE id = $1 AND lease_owner = $2",
        )
        .bind(id)
        .bind(owner)
        .bind(due_at)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Moves a job that used all its attempts to the dead-letter state.
    pub async fn bury_job(&self, owner: &str, id: &str, error: &str) -> Result<()> {
        sqlx::query(
            "UPDATE jobs SET status = 'dead', lease_owner = NULL, lease_until = NULL, last_error = $3, updated_at = $4 \
             WHERE id = $1 AND lease_owner = $2",
        )
        .bind(id)
        .bind(owner)
        .bind(error)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Gives back every job `owner` still holds (graceful shutdown).
    pub async fn release_owned_jobs(&self, owner: &str) -> Result<u64> {
        Ok(sqlx::query(
            "UPDATE jobs SET status = 'queued', attempts = attempts - 1, lease_owner = NULL, lease_until = NULL \
             WHERE status = 'running' AND lease_owner = $1",
        )
        .bind(owner)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// Jobs waiting or running.
    pub async fn queue_depth(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) FROM jobs WHERE status IN ('queued', 'running')")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get(0)?)
    }

    /// The jobs of integration `integration_id` in `status`, oldest due first.
    pub async fn jobs(&self, integration_id: &str, status: &str, limit: i64) -> Result<Vec<JobSummary>> {
        self.jobs_after(integration_id, status, None, limit).await
    }

    /// Like [`Store::jobs`], starting after the job due at `after.0` with id `after.1`.
    pub async fn jobs_after(
        &self,
        integration_id: &str,
        status: &str,
        after: Option<(i64, &str)>,
        limit: i64,
    ) -> Result<Vec<JobSummary>> {
        let (due_at, id) = after.unwrap_or((i64::MIN, ""));
        let rows = sqlx::query(
            "SELECT id, installation_id, event, status, due_at, attempts, last_error FROM jobs \
             WHERE integration_id = $1 AND status = $2 AND (due_at > $3 OR (due_at = $3 AND id > $4)) \
             ORDER BY due_at, id LIMIT $5",
        )
        .bind(integration_id)
        .bind(status)
        .bind(due_at)
        .bind(id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(summary).collect()
    }
}

impl Store {
    /// Puts the dead job `id` of integration `integration_id` back in the queue, due now,
    /// with its attempts reset. `Ok(None)` when there is no such job; `Ok(Some(false))` when
    /// it exists but is not dead.
    pub async fn requeue_dead_job(&self, integration_id: &str, id: &str) -> Result<Option<bool>> {
        self.update_if(
            "jobs",
            ("integration_id", integration_id),
            id,
            "status = 'queued', due_at = $3, attempts = 0, lease_owner = NULL, lease_until = NULL, updated_at = $3",
            "status = 'dead'",
        )
        .await
    }

    /// One job of integration `integration_id`.
    pub async fn job(&self, integration_id: &str, id: &str) -> Result<Option<JobSummary>> {
        let row = sqlx::query(
            "SELECT id, installation_id, event, status, due_at, attempts, last_error FROM jobs \
             WHERE integration_id = $1 AND id = $2",
        )
        .bind(integration_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(summary).transpose()
    }
}

fn summary(row: &AnyRow) -> Result<JobSummary> {
    Ok(JobSummary {
        id: row.try_get("id")?,
        installation_id: row.try_get("installation_id")?,
        event: json_column(row, "event")?,
        status: row.try_get("status")?,
        due_at: row.try_get("due_at")?,
        attempts: row.try_get("attempts")?,
        last_error: row.try_get("last_error")?,
    })
}

/// Inserts jobs on `connection` (a pooled connection or an open transaction), skipping ids
/// and idempotency keys already present; returns how many were new.
pub(in crate::store) async fn insert_jobs(
    connection: &mut AnyConnection,
    backend: Backend,
    jobs: &[NewJob],
) -> Result<u64> {
    let mut inserted = 0;
    let now = now_ms();
    for chunk in jobs.chunks(500) {
        let sql = format!(
            "INSERT INTO jobs (id, integration_id, integration, installation_id, event, status, due_at, attempts, \
             max_attempts, idempotency_key, created_at, updated_at) VALUES {} ON CONFLICT DO NOTHING",
            placeholders(backend, chunk.len(), 12)
        );
        let mut insert = sqlx::query(&sql);
        for job in chunk {
            insert = insert
                .bind(&job.id)
                .bind(&job.integration_id)
                .bind(&job.integration)
                .bind(&job.installation_id)
                .bind(job.event.to_string())
                .bind("queued")
                .bind(job.due_at)
                .bind(0_i64)
                .bind(job.max_attempts)
                .bind(&job.idempotency_key)
                .bind(now)
                .bind(now);
        }
        inserted += insert.execute(&mut *connection).await?.rows_affected();
    }
    Ok(inserted)
}
