//! Figures for the console's charts, computed in SQL from the events log and the queue:
//! events per time bucket by status, duration percentiles, failures by kind, queue depth.

use sqlx::Row;

use super::{Result, Store, now_ms};

/// Which events and jobs a figure counts.
#[derive(Debug, Clone, Copy)]
pub enum StatsScope<'a> {
    /// Every integration on the server.
    All,
    /// One integration (its id).
    Integration(&'a str),
    /// The integrations an organization owns.
    Org(&'a str),
}

impl StatsScope<'_> {
    /// The condition on `integration_id`, with its one parameter numbered `$n` (bound by
    /// [`StatsScope::value`]; `All` compares it to itself so every query binds the same list).
    fn condition(&self, n: usize) -> String {
        match self {
            StatsScope::All => format!("${n} = ''"),
            StatsScope::Integration(_) => format!("integration_id = ${n}"),
            StatsScope::Org(_) => format!("integration_id IN (SELECT id FROM integrations WHERE org_id = ${n})"),
        }
    }

    fn value(&self) -> &str {
        match self {
            StatsScope::All => "",
            StatsScope::Integration(id) | StatsScope::Org(id) => id,
        }
    }
}

/// Events of one time bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusCounts {
    pub success: i64,
    pub failed: i64,
    pub dead: i64,
}

/// Queue depth at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueDepth {
    pub queued: i64,
    pub running: i64,
    pub dead: i64,
}

/// What the charts show for one window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    /// Events per bucket, oldest first; every bucket of the window is present.
    pub buckets: Vec<StatusCounts>,
    /// Run time percentiles p50, p95, p99 in microseconds (nearest rank); none without events.
    pub percentiles: Option<[i64; 3]>,
    /// Failed and dead events by failure kind, most frequent first.
    pub failures: Vec<(String, i64)>,
    /// The queue now.
    pub queue_now: QueueDepth,
    /// The queue once a minute over the window (minute start in ms), oldest first.
    pub queue_samples: Vec<(i64, QueueDepth)>,
}

impl Store {
    /// The figures of `scope` for events created at or after `from` (ms), in buckets of
    /// `bucket_ms`.
    pub async fn stats(&self, scope: StatsScope<'_>, from: i64, bucket_ms: i64) -> Result<Stats> {
        let now = now_ms();
        let count = ((now - from) / bucket_ms + 1).max(1) as usize;
        let mut stats = Stats { buckets: vec![StatusCounts::default(); count], ..Stats::default() };

        let per_bucket = format!(
            "SELECT (created_at - $1) / $3 AS bucket, status, COUNT(*) AS n FROM events \
             WHERE created_at >= $1 AND {} GROUP BY bucket, status",
            scope.condition(2)
        );
        let rows =
            sqlx::query(&per_bucket).bind(from).bind(scope.value()).bind(bucket_ms).fetch_all(&self.pool).await?;
        let mut total = 0;
        for row in &rows {
            let bucket: i64 = row.try_get("bucket")?;
            let n: i64 = row.try_get("n")?;
            let status: String = row.try_get("status")?;
            total += n;
            if let Some(counts) = usize::try_from(bucket).ok().and_then(|b| stats.buckets.get_mut(b)) {
                match status.as_str() {
                    "success" => counts.success += n,
                    "failed" => counts.failed += n,
                    _ => counts.dead += n,
                }
            }
        }

        if total > 0 {
            // Nearest rank: the value at position ceil(p·N) of the sorted durations.
            let nth = format!(
                "SELECT duration_us FROM events WHERE created_at >= $1 AND {} ORDER BY duration_us LIMIT 1 OFFSET $3",
                scope.condition(2)
            );
            let mut values = [0; 3];
            for (value, per_mille) in values.iter_mut().zip([500, 950, 990]) {
                let rank = ((total * per_mille + 999) / 1000).max(1) - 1;
                let row = sqlx::query(&nth).bind(from).bind(scope.value()).bind(rank).fetch_one(&self.pool).await?;
                *value = row.try_get(0)?;
            }
            stats.percentiles = Some(values);
        }

        let failures = format!(
            "SELECT COALESCE(error_kind, 'unknown') AS kind, COUNT(*) AS n FROM events \
             WHERE created_at >= $1 AND {} AND status <> 'success' GROUP BY kind ORDER BY n DESC, kind",
            scope.condition(2)
        );
        for row in sqlx::query(&failures).bind(from).bind(scope.value()).fetch_all(&self.pool).await? {
            stats.failures.push((row.try_get("kind")?, row.try_get("n")?));
        }

        let depth = format!(
            "SELECT status, COUNT(*) AS n FROM jobs WHERE status IN ('queued', 'running', 'dead') AND {} \
             GROUP BY status",
            scope.condition(1)
        );
        for row in sqlx::query(&depth).bind(scope.value()).fetch_all(&self.pool).await? {
            let n: i64 = row.try_get("n")?;
            match row.try_get::<String, _>("status")?.as_str() {
                "queued" => stats.queue_now.queued = n,
                "running" => stats.queue_now.running = n,
                _ => stats.queue_now.dead = n,
            }
        }

        let samples = format!(
            "SELECT minute, CAST(SUM(queued) AS BIGINT) AS queued, CAST(SUM(running) AS BIGINT) AS running, \
             CAST(SUM(dead) AS BIGINT) AS dead FROM queue_depth_samples WHERE minute >= $1 AND {} \
             GROUP BY minute ORDER BY minute",
            scope.condition(2)
        );
        for row in sqlx::query(&samples).bind(from).bind(scope.value()).fetch_all(&self.pool).await? {
            let depth = QueueDepth {
                queued: row.try_get("queued")?,
                running: row.try_get("running")?,
                dead: row.try_get("dead")?,
            };
            stats.queue_samples.push((row.try_get("minute")?, depth));
        }
        Ok(stats)
    }

    /// Records each integration's queue depth for the minute starting at `minute` (ms) and
    /// forgets samples older than `keep_from`. Replicas sampling the same minute keep the
    /// first sample.
    pub async fn sample_queue_depth(&self, minute: i64, keep_from: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO queue_depth_samples (minute, integration_id, queued, running, dead) \
             SELECT $1, integration_id, \
                SUM(CASE WHEN status = 'queued' THEN 1 ELSE 0 END), \
                SUM(CASE WHEN status = 'running' THEN 1 ELSE 0 END), \
                SUM(CASE WHEN status = 'dead' THEN 1 ELSE 0 END) \
             FROM jobs WHERE status IN ('queued', 'running', 'dead') GROUP BY integration_id \
             ON CONFLICT DO NOTHING",
        )
        .bind(minute)
        .execute(&self.pool)
        .await?;
        sqlx::query("DELETE FROM queue_depth_samples WHERE minute < $1").bind(keep_from).execute(&self.pool).await?;
        Ok(())
    }
}
