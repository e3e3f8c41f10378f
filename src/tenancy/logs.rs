//! Each integration's budget of log bytes written to the events log per minute: a module
//! that logs its per-event limit on every request cannot grow the shared database at the
//! rate anonymous callers choose. Past the budget an event keeps its record, with one line
//! saying its logs were dropped.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The window a budget is counted over.
const WINDOW: Duration = Duration::from_secs(60);

/// Log bytes recorded per integration in the current window.
pub struct LogBudget {
    bytes_per_minute: usize,
    spent: Mutex<HashMap<String, (Instant, usize)>>,
}

impl LogBudget {
    /// `bytes_per_minute` of logs per integration; 0 turns the budget off.
    pub fn new(bytes_per_minute: usize) -> Self {
        Self { bytes_per_minute, spent: Default::default() }
    }

    /// Whether `integration`'s event may keep `bytes` of logs (and counts them if so).
    pub fn admit(&self, integration: &str, bytes: usize) -> bool {
        if self.bytes_per_minute == 0 || bytes <= 2 {
            return true;
        }
        let now = Instant::now();
        let mut spent = self.spent.lock().expect("log budget lock");
        if spent.len() > 10_000 {
            spent.retain(|_, (since, _)| now.duration_since(*since) < WINDOW);
        }
        let entry = spent.entry(integration.to_owned()).or_insert((now, 0));
        if now.duration_since(entry.0) >= WINDOW {
            *entry = (now, 0);
        }
        if entry.1 + bytes > self.bytes_per_minute {
            return false;
        }
        entry.1 += bytes;
        true
    }

    /// The budget, for the note that replaces dropped logs.
    pub fn bytes_per_minute(&self) -> usize {
        self.bytes_per_minute
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_integration_past_its_budget_loses_its_logs_alone() {
        let budget = LogBudget::new(100);
        assert!(budget.admit("a", 60));
        assert!(!budget.admit("a", 60));
        assert!(budget.admit("b", 60));
        assert!(budget.admit("a", 2), "empty logs always pass");
        assert!(LogBudget::new(0).admit("a", usize::MAX));
    }
}
