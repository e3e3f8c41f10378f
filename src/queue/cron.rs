//! Cron schedules from integration manifests.
//!
//! A manifest may declare `"schedules": [{"cron": "0 */5 * * * *", "task": {…}, "per":
//! "integration" | "installation"}]` (the `cron` crate's syntax, with a seconds field). Each
//! tick fires exactly once across every replica: a replica fires a tick only if it moves the
//! schedule's `last_tick` from the value it read (compare-and-set, in the same transaction
//! as the jobs). After downtime the latest missed tick fires once, not once per missed tick.
//! The task object gets a `cronTick` field: the tick (ms since the epoch) it fires for.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::state::AppState;
use crate::store::{NewJob, ScheduledIntegration, now_ms};

/// One schedule of a manifest.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSpec {
    /// Cron expression with seconds: `sec min hour day-of-month month day-of-week [year]`.
    pub cron: String,
    /// The task object each firing runs.
    #[serde(default = "empty_object")]
    pub task: Value,
    /// Fire once for the integration, or once per active installation.
    #[serde(default)]
    pub per: ScheduleScope,
}

fn empty_object() -> Value {
    json!({})
}

/// Whom a schedule fires for.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleScope {
    /// One task for the integration.
    #[default]
    Integration,
    /// One task per active installation.
    Installation,
}

/// Parses and checks a manifest's `schedules` (for publish-time validation).
pub fn parse_schedules(schedules: &Value) -> Result<Vec<ScheduleSpec>, String> {
    if schedules.is_null() {
        return Ok(Vec::new());
    }
    let specs: Vec<ScheduleSpec> = serde_json::from_value(schedules.clone()).map_err(|e| format!("schedules: {e}"))?;
    for (i, spec) in specs.iter().enumerate() {
        cron::Schedule::from_str(&spec.cron).map_err(|e| format!("schedules[{i}].cron `{}`: {e}", spec.cron))?;
        if !spec.task.is_object() {
            return Err(format!("schedules[{i}].task must be an object"));
        }
    }
    Ok(specs)
}

/// Fires due schedules every second until `stop` turns true.
pub async fn run(state: AppState, mut stop: watch::Receiver<bool>) {
    let mut cache = ScheduleCache::default();
    while !*stop.borrow() {
        if let Err(error) = fire_due_with(&state, &mut cache).await {
            tracing::warn!(%error, "firing cron schedules failed");
        }
        let to_next_second = Duration::from_millis(1000 - (now_ms() % 1000) as u64);
        tokio::select! {
            _ = tokio::time::sleep(to_next_second) => {}
            _ = stop.changed() => {}
        }
    }
}

/// The parsed schedules of every integration, read again only when an integration was
/// published, changed or removed since (or a minute has passed), not every second.
#[derive(Default)]
pub struct ScheduleCache {
    version: Option<(i64, i64)>,
    read_at: i64,
    integrations: Vec<(ScheduledIntegration, Vec<(ScheduleSpec, cron::Schedule)>)>,
}

/// How long parsed schedules are trusted without looking at the manifests again.
const SCHEDULES_REFRESH_MS: i64 = 60_000;

impl ScheduleCache {
    async fn refresh(&mut self, state: &AppState, now: i64) -> anyhow::Result<()> {
        let version = state.store.integrations_version().await?;
        if self.version == Some(version) && now - self.read_at < SCHEDULES_REFRESH_MS {
            return Ok(());
        }
        self.integrations = state
            .store
            .integrations_with_schedules()
            .await?
            .into_iter()
            .map(|integration| {
                let specs = parse_schedules(&integration.manifest["schedules"])
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|spec| cron::Schedule::from_str(&spec.cron).ok().map(|schedule| (spec, schedule)))
                    .collect();
                (integration, specs)
            })
            .collect();
        self.version = Some(version);
        self.read_at = now;
        Ok(())
    }
}

/// Fires every schedule whose next tick has come; returns how many ticks this replica fired.
pub async fn fire_due(state: &AppState) -> anyhow::Result<usize> {
    fire_due_with(state, &mut ScheduleCache::default()).await
}

/// [`fire_due`] with schedules parsed on an earlier tick.
pub async fn fire_due_with(state: &AppState, cache: &mut ScheduleCache) -> anyhow::Result<usize> {
    let now = now_ms();
    let mut fired = 0;
    cache.refresh(state, now).await?;
    for (integration, specs) in &cache.integrations {
        for (index, (spec, schedule)) in specs.iter().enumerate() {
            let index = index as i64;
            let seen = state.store.cron_last_tick(&integration.id, index).await?;
            let Some(seen_tick) = seen else {
                // First sight of this schedule: start counting from now, firing nothing past.
                state.store.cron_fire(&integration.id, index, None, now, &[]).await?;
                continue;
            };
            let Some(tick) = latest_tick(schedule, seen_tick, now) else { continue };
            let jobs = jobs_for(state, integration, (index, spec), tick).await?;
            if state.store.cron_fire(&integration.id, index, Some(seen_tick), tick, &jobs).await? {
                fired += 1;
            }
        }
    }
    if fired > 0 {
        state.queue.wakeup().notify_one();
    }
    Ok(fired)
}

/// The latest tick of `schedule` after `after` and not after `now` (ms), if any.
fn latest_tick(schedule: &cron::Schedule, after: i64, now: i64) -> Option<i64> {
    let start: DateTime<Utc> = DateTime::from_timestamp_millis(after)?;
    let mut latest = None;
    // Bounded: a once-a-second schedule after a day of downtime is 86,400 steps.
    for tick in schedule.after(&start).take(1_000_000) {
        let tick = tick.timestamp_millis();
        if tick > now {
            break;
        }
        latest = Some(tick);
    }
    latest
}

/// The idempotency key of one firing: `cron:{schedule index}:{tick}:{installation or -}`.
pub fn tick_key(schedule_index: i64, tick: i64, installation_id: Option<&str>) -> String {
    format!("cron:{schedule_index}:{tick}:{}", installation_id.unwrap_or("-"))
}

async fn jobs_for(
    state: &AppState,
    integration: &ScheduledIntegration,
    (spec_index, spec): (i64, &ScheduleSpec),
    tick: i64,
) -> anyhow::Result<Vec<NewJob>> {
    // The task carries its tick, so a handler knows which firing it runs for.
    let mut task = spec.task.clone();
    task["cronTick"] = json!(tick);
    let job = |installation_id: Option<String>| NewJob {
        id: crate::ids::random("job_", 20),
        integration_id: integration.id.clone(),
        integration: integration.name.clone(),
        // A second line of defence behind the compare-and-set: a tick's job is enqueued at
        // most once per installation, and its `done` row shows that it fired.
        idempotency_key: Some(tick_key(spec_index, tick, installation_id.as_deref())),
        installation_id,
        event: json!({ "type": "task", "task": task }),
        due_at: tick,
        max_attempts: state.queue.config().max_attempts,
    };
    Ok(match spec.per {
        ScheduleScope::Integration => vec![job(None)],
        ScheduleScope::Installation => {
            state.store.active_installation_ids(&integration.id).await?.into_iter().map(|id| job(Some(id))).collect()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_downtime_only_the_latest_missed_tick_fires() {
        let every_minute = cron::Schedule::from_str("0 * * * * *").unwrap();
        let start = 1_700_000_040_000; // hh:mm:00
        let now = start + 10 * 60_000 + 5_000;
        assert_eq!(latest_tick(&every_minute, start, now), Some(start + 10 * 60_000));
        assert_eq!(latest_tick(&every_minute, start + 10 * 60_000, now), None, "nothing new to fire");
    }

    #[test]
    fn schedules_are_validated() {
        assert!(parse_schedules(&json!([{"cron": "0 * * * * *", "task": {"a": 1}, "per": "installation"}])).is_ok());
        assert!(parse_schedules(&json!([{"cron": "every minute"}])).unwrap_err().contains("schedules[0].cron"));
        assert!(parse_schedules(&json!([{"cron": "0 * * * * *", "task": 1}])).unwrap_err().contains("task"));
        assert!(parse_schedules(&json!([{"cron": "0 * * * * *", "per": "space"}])).is_err());
        assert_eq!(parse_schedules(&Value::Null).unwrap(), Vec::new());
    }
}
