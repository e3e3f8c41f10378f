//! Logging through the host (op `log`): lines end up in the event's log.
//!
//! Logging never fails the handler: if the host call fails (e.g. the host-call limit is
//! reached), the line goes to stderr instead, which the host also captures.
//!
//! ```
//! weft_sdk::log::info("setting up");
//! weft_sdk::log::warn(format!("retrying in {}s", 5));
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::host;

/// A log level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// `debug`
    Debug,
    /// `info`
    Info,
    /// `warn`
    Warn,
    /// `error`
    Error,
}

impl Level {
    /// The wire name: `debug`, `info`, `warn` or `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Logs `message` at `level`.
pub fn log(level: Level, message: impl AsRef<str>) {
    let message = message.as_ref();
    let args = json!({ "level": level, "message": message });
    if host::call("log", args, 500).is_err() {
        eprintln!("[{level}] {message}");
    }
}

/// Logs at `debug`.
pub fn debug(message: impl AsRef<str>) {
    log(Level::Debug, message);
}

/// Logs at `info`.
pub fn info(message: impl AsRef<str>) {
    log(Level::Info, message);
}

/// Logs at `warn`.
pub fn warn(message: impl AsRef<str>) {
    log(Level::Warn, message);
}

/// Logs at `error`.
pub fn error(message: impl AsRef<str>) {
    log(Level::Error, message);
}
