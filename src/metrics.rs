//! Prometheus metrics: what this process has run, and how busy it is right now.
//!
//! Counters and histograms are kept in memory per process (each replica is scraped on
//! its own) and rendered in the Prometheus text format by `GET /metrics`. Gauges that
//! describe shared state, such as the queue's depth, are read when scraped.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::store::EventRecord;

/// Upper bounds (seconds) of the event duration histogram's buckets.
const DURATION_BUCKETS: &[f64] =
    &[0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
/// Upper bounds (seconds) of the queue lateness histogram's buckets (due → started).
const LATENESS_BUCKETS: &[f64] = &[0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0, 60.0];

/// This process's metrics. Recording takes one short lock; nothing is allocated for a
/// label set seen before.
#[derive(Debug)]
pub struct Metrics {
    started: SystemTime,
    recorded: Mutex<Recorded>,
}

#[derive(Debug, Default)]
struct Recorded {
    /// (integration, event type, status) → events.
    events: BTreeMap<(String, String, String), u64>,
    /// (integration, failure kind) → failed events.
    failures: BTreeMap<(String, String), u64>,
    /// integration → run time of its events.
    durations: BTreeMap<String, Histogram>,
    /// Jobs' lateness, due → started.
    lateness: Option<Histogram>,
}

/// What the process reads from shared state when scraped.
#[derive(Debug, Clone, Copy, Default)]
pub struct Gauges {
    /// Jobs queued or running, across every replica; `None` when the database did not answer.
    pub queue_depth: Option<i64>,
    /// Instance slots in use.
    pub instances_busy: usize,
    /// Instance slots in all.
    pub instances_max: usize,
}

impl Default for Metrics {
    fn default() -> Self {
        Self { started: SystemTime::now(), recorded: Mutex::default() }
    }
}

impl Metrics {
    /// Counts a finished event and its run time.
    pub fn record_event(&self, event: &EventRecord) {
        let mut recorded = self.recorded.lock().expect("metrics lock");
        let key = (event.integration.clone(), event.event_type.clone(), event.status.clone());
        *recorded.events.entry(key).or_default() += 1;
        if let Some(kind) = &event.error_kind {
            *recorded.failures.entry((event.integration.clone(), kind.clone())).or_default() += 1;
        }
        let seconds = event.duration_us.max(0) as f64 / 1e6;
        match recorded.durations.get_mut(&event.integration) {
            Some(histogram) => histogram.observe(seconds),
            None => {
                let mut histogram = Histogram::new(DURATION_BUCKETS);
                histogram.observe(seconds);
                recorded.durations.insert(event.integration.clone(), histogram);
            }
        }
    }

    /// Records how late (ms after it was due) a job started.
    pub fn record_lateness(&self, lateness_ms: i64) {
        let mut recorded = self.recorded.lock().expect("metrics lock");
        recorded
            .lateness
            .get_or_insert_with(|| Histogram::new(LATENESS_BUCKETS))
            .observe(lateness_ms.max(0) as f64 / 1e3);
    }

    /// The Prometheus text exposition (format 0.0.4) of everything recorded, plus `gauges`.
    pub fn render(&self, gauges: Gauges) -> String {
        let recorded = self.recorded.lock().expect("metrics lock");
        let mut out = String::with_capacity(4096);
        header(&mut out, "weft_events_total", "counter", "Events run, by integration, event type and status.");
        for ((integration, kind, status), count) in &recorded.events {
            let labels = labels(&[("integration", integration), ("type", kind), ("status", status)]);
            let _ = writeln!(out, "weft_events_total{{{labels}}} {count}");
        }
        header(&mut out, "weft_event_failures_total", "counter", "Failed events, by integration and failure kind.");
        for ((integration, kind), count) in &recorded.failures {
            let labels = labels(&[("integration", integration), ("kind", kind)]);
            let _ = writeln!(out, "weft_event_failures_total{{{labels}}} {count}");
        }
        header(&mut out, "weft_event_duration_seconds", "histogram", "Run time of events, by integration.");
        for (integration, histogram) in &recorded.durations {
            histogram.render(&mut out, "weft_event_duration_seconds", &labels(&[("integration", integration)]));
        }
        header(&mut out, "weft_queue_lateness_seconds", "histogram", "Time from a job's due time to its start.");
        recorded.lateness.as_ref().unwrap_or(&Histogram::new(LATENESS_BUCKETS)).render(
            &mut out,
            "weft_queue_lateness_seconds",
            "",
        );
        drop(recorded);
        if let Some(depth) = gauges.queue_depth {
            header(&mut out, "weft_queue_depth", "gauge", "Jobs queued or running, across every replica.");
            let _ = writeln!(out, "weft_queue_depth {depth}");
        }
        header(&mut out, "weft_instances_busy", "gauge", "Instance pool slots in use.");
        let _ = writeln!(out, "weft_instances_busy {}", gauges.instances_busy);
        header(&mut out, "weft_instances_max", "gauge", "Instance pool slots in all.");
        let _ = writeln!(out, "weft_instances_max {}", gauges.instances_max);
        header(&mut out, "weft_process_start_time_seconds", "gauge", "When this process started (Unix time).");
        let started = self.started.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64();
        let _ = writeln!(out, "weft_process_start_time_seconds {started:.3}");
        header(&mut out, "weft_build_info", "gauge", "The running version.");
        let _ = writeln!(out, "weft_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION"));
        out
    }
}

/// A histogram with fixed buckets.
#[derive(Debug, Clone)]
struct Histogram {
    bounds: &'static [f64],
    /// Observations per bucket (not cumulative); the last counts those above every bound.
    counts: Vec<u64>,
    sum: f64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self { bounds, counts: vec![0; bounds.len() + 1], sum: 0.0 }
    }

    fn observe(&mut self, value: f64) {
        let bucket = self.bounds.iter().position(|bound| value <= *bound).unwrap_or(self.bounds.len());
        self.counts[bucket] += 1;
        self.sum += value;
    }

    /// Writes `_bucket` (cumulative), `_sum` and `_count` lines; `labels` may be empty.
    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (bound, count) in self.bounds.iter().zip(&self.counts) {
            cumulative += count;
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}");
        }
        cumulative += self.counts[self.bounds.len()];
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {cumulative}");
        let braced = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
        let _ = writeln!(out, "{name}_sum{braced} {}", self.sum);
        let _ = writeln!(out, "{name}_count{braced} {cumulative}");
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// `a="x",b="y"`, values escaped as the text format requires.
fn labels(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let escaped = value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
        let _ = write!(out, "{name}=\"{escaped}\"");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(integration: &str, status: &str, kind: Option<&str>, duration_us: i64) -> EventRecord {
        EventRecord {
            id: "evt_1".into(),
            integration_id: format!("itg_{integration}"),
            integration: integration.into(),
            installation_id: None,
            event_type: "fetch".into(),
            status: status.into(),
            error_kind: kind.map(Into::into),
            error_message: None,
            response_status: None,
            duration_us,
            logs: "[]".into(),
            created_at: 0,
            payload: None,
        }
    }

    #[test]
    fn events_are_counted_by_label_set_and_histograms_are_cumulative() {
        let metrics = Metrics::default();
        metrics.record_event(&event("hello", "success", None, 150));
        metrics.record_event(&event("hello", "success", None, 3_000));
        metrics.record_event(&event("hello", "failed", Some("timeout"), 20_000_000));
        let text = metrics.render(Gauges { queue_depth: Some(4), instances_busy: 1, instances_max: 8 });
        for line in [
            r#"weft_events_total{integration="hello",type="fetch",status="success"} 2"#,
            r#"weft_events_total{integration="hello",type="fetch",status="failed"} 1"#,
            r#"weft_event_failures_total{integration="hello",kind="timeout"} 1"#,
            r#"weft_event_duration_seconds_bucket{integration="hello",le="0.0001"} 0"#,
            r#"weft_event_duration_seconds_bucket{integration="hello",le="0.00025"} 1"#,
            r#"weft_event_duration_seconds_bucket{integration="hello",le="0.005"} 2"#,
            r#"weft_event_duration_seconds_bucket{integration="hello",le="10"} 2"#,
            r#"weft_event_duration_seconds_bucket{integration="hello",le="+Inf"} 3"#,
            r#"weft_event_duration_seconds_count{integration="hello"} 3"#,
            "weft_queue_depth 4",
            "weft_instances_busy 1",
            "weft_instances_max 8",
            r#"weft_queue_lateness_seconds_bucket{le="+Inf"} 0"#,
        ] {
            assert!(text.lines().any(|l| l == line), "missing `{line}` in\n{text}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(labels(&[("a", "x\"y\\z\n")]), r#"a="x\"y\\z\n""#);
    }
}
