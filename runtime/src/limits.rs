//! Per-event resource limits.

use std::time::Duration;

/// What one invocation may consume. The host picks these per integration, within the
/// server-wide maxima given in [`crate::RuntimeConfig`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Linear memory, in bytes.
    pub memory_bytes: usize,
    /// Wall-clock deadline for the whole invocation, host calls included.
    pub deadline: Duration,
    /// Captured log bytes (the `log` op plus stdout and stderr).
    pub log_bytes: usize,
    /// Size of the outcome JSON the guest returns.
    pub output_bytes: usize,
    /// Number of `weft.call` host calls.
    pub host_calls: u32,
    /// Number of `http.fetch` host calls.
    pub outbound_requests: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: 64 << 20,
            deadline: Duration::from_secs(10),
            log_bytes: 64 << 10,
            output_bytes: 8 << 20,
            host_calls: 1000,
            outbound_requests: 50,
        }
    }
}

impl Limits {
    /// These limits, each capped at `max`'s value.
    pub fn capped_by(&self, max: &Limits) -> Limits {
        Limits {
            memory_bytes: self.memory_bytes.min(max.memory_bytes),
            deadline: self.deadline.min(max.deadline),
            log_bytes: self.log_bytes.min(max.log_bytes),
            output_bytes: self.output_bytes.min(max.output_bytes),
            host_calls: self.host_calls.min(max.host_calls),
            outbound_requests: self.outbound_requests.min(max.outbound_requests),
        }
    }
}
