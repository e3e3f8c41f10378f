//! Logging through the host (op `log`): lines end up in the event's log.
//!
//! Two ways to log, both landing in the same place:
//!
//! - the functions of this module, [`info`](info()), [`warn`](warn()), …:
//!
//!   ```
//!   weft_sdk::log::info("setting up");
//!   weft_sdk::log::warn(format!("retrying in {}s", 5));
//!   ```
//!
//! - the [`log`](https://docs.rs/log) crate's macros, which this module re-exports
//!   (`weft_sdk::log::info!`), or which the integration uses from its own `log = "0.4"`
//!   dependency (`log::info!`). [`export_handler!`](crate::export_handler) installs the
//!   logger that sends them to the host before the first event, and so does
//!   [`MockHost::new`](crate::testing::MockHost::new) in native tests:
//!
//!   ```
//!   use weft_sdk::testing::MockHost;
//!
//!   let host = MockHost::new();
//!   weft_sdk::log::info!("forwarded {} bytes", 42);
//!   assert_eq!(host.log_messages(), ["forwarded 42 bytes"]);
//!   ```
//!
//! The host knows four levels: `log`'s `trace` is sent as `debug`. Every line is one host
//! call; to drop the chattier levels call `log::set_max_level` (the logger is installed
//! with every level enabled, and installing it again does not change the maximum).
//!
//! Logging never fails the handler: if the host call fails, the line goes to stderr
//! instead, which the host also captures. Every line counts against the event's host-call
//! limit, past which the event ends.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::host;

#[doc(no_inline)]
pub use ::log::{debug, error, info, trace, warn};

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
    ///
    /// ```
    /// assert_eq!(weft_sdk::log::Level::Warn.as_str(), "warn");
    /// ```
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

/// `log`'s levels on the host's four: `trace` becomes `debug`.
impl From<::log::Level> for Level {
    fn from(level: ::log::Level) -> Self {
        match level {
            ::log::Level::Error => Level::Error,
            ::log::Level::Warn => Level::Warn,
            ::log::Level::Info => Level::Info,
            ::log::Level::Debug | ::log::Level::Trace => Level::Debug,
        }
    }
}

/// Logs `message` at `level`.
///
/// ```
/// use weft_sdk::log::{self, Level};
///
/// log::log(Level::Info, "hello");
/// ```
pub fn log(level: Level, message: impl AsRef<str>) {
    let message = message.as_ref();
    #[derive(Serialize)]
    struct LogArgs<'a> {
        level: Level,
        message: &'a str,
    }
    if host::call("log", LogArgs { level, message }, 500).is_err() {
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

/// The `log` facade's logger: every record becomes one `log` host call.
struct HostLogger;

static LOGGER: HostLogger = HostLogger;

impl ::log::Log for HostLogger {
    fn enabled(&self, _metadata: &::log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &::log::Record<'_>) {
        let message = match record.args().as_str() {
            Some(text) => std::borrow::Cow::Borrowed(text),
            None => std::borrow::Cow::Owned(record.args().to_string()),
        };
        log(record.level().into(), message);
    }

    fn flush(&self) {}
}

/// Installs the logger that sends the `log` crate's records (`log::info!(…)`) to the host,
/// with every level enabled. Cheap and idempotent: after the first call it only reads an
/// atomic. [`export_handler!`](crate::export_handler) calls it before each event, so
/// integrations rarely need to.
///
/// If another logger was installed first, that one stays and this does nothing.
///
/// ```
/// weft_sdk::log::init();
/// log::info!("reaches the host's log op");
/// ```
pub fn init() {
    use std::sync::atomic::{AtomicBool, Ordering};

    static INSTALLED: AtomicBool = AtomicBool::new(false);
    if INSTALLED.load(Ordering::Relaxed) {
        return;
    }
    if ::log::set_logger(&LOGGER).is_ok() {
        ::log::set_max_level(::log::LevelFilter::Trace);
    }
    INSTALLED.store(true, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{LogRecord, MockHost};

    #[test]
    fn the_log_facade_reaches_the_host_with_its_level() {
        let host = MockHost::new();
        ::log::error!("e {}", 1);
        ::log::warn!("w");
        crate::log::info!("i");
        ::log::debug!("d");
        ::log::trace!("t");
        info("plain");
        let record = |level, message: &str| LogRecord { level, message: message.to_owned() };
        assert_eq!(
            host.logs(),
            [
                record(Level::Error, "e 1"),
                record(Level::Warn, "w"),
                record(Level::Info, "i"),
                record(Level::Debug, "d"),
                record(Level::Debug, "t"),
                record(Level::Info, "plain"),
            ]
        );
    }

    #[test]
    fn init_is_idempotent() {
        init();
        init();
        let host = MockHost::new();
        ::log::info!("once");
        assert_eq!(host.log_messages(), ["once"]);
    }
}
