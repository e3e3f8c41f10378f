//! weft-runtime: runs one invocation of a published WASM integration in a fresh, sandboxed
//! wasmtime instance.
//!
//! The host server compiles a module once with [`Runtime::compile`] (which also validates it
//! against the guest ABI v1), keeps the resulting [`PreparedModule`] cached, and calls
//! [`Runtime::run`] for every event. The runtime knows nothing of HTTP routes or SQL: what a
//! guest may reach beyond logging goes through the [`HostServices`] trait the host implements.
//!
//! ```no_run
//! # async fn demo(wasm: &[u8]) -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use weft_runtime::{Limits, NoHostServices, Runtime, RuntimeConfig};
//!
//! let runtime = Runtime::new(RuntimeConfig::default())?;
//! let module = runtime.compile(wasm)?;
//! let invocation = br#"{"abi":1,"event":{"eventId":"e1","type":"task","task":{}},"environment":{}}"#;
//! let report = runtime
//!     .run(&module, invocation, &Limits::default(), Arc::new(NoHostServices))
//!     .await?;
//! println!("{:?} in {:?}", report.result, report.duration);
//! # Ok(()) }
//! ```

mod engine;
mod host;
mod input;
mod invoke;
mod limits;
mod outcome;
mod script;
mod snapshot;
mod validate;
mod wasi;

/// Implement [`HostServices`] with `#[weft_runtime::async_trait]`.
pub use async_trait::async_trait;
pub use engine::{PreparedModule, Runtime, RuntimeConfig};
pub use host::{HostError, HostServices, LogLevel, LogLine, NoHostServices, OutboundRequest, OutboundResponse};
pub use input::{EventParts, Input};
pub use limits::Limits;
pub use outcome::{Failure, FailureKind, GuestResponse, Outcome, RunReport};
pub use script::{CompiledScript, MAX_SCRIPT_BYTES, ScriptError, ScriptErrorKind};
pub use snapshot::Snapshot;
pub use validate::ValidationError;
/// The host-call contract (ops, wire types, limits, error codes) shared with the guest SDK.
pub use weft_abi as abi;

/// Errors of the runtime itself, as opposed to failures of a guest (those are a
/// [`Failure`] inside a [`RunReport`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The module does not satisfy the guest ABI.
    #[error(transparent)]
    Validation(#[from] ValidationError),
    /// Every instance slot stayed busy for the whole queue timeout: try again later.
    #[error("all {slots} instance slots are busy")]
    Busy {
        /// How many instances may run at once.
        slots: u32,
    },
    /// A stored artifact could not be loaded (it was produced by another wasmtime version or
    /// configuration); recompile the module from its wasm bytes.
    #[error("stored module artifact is not loadable: {0}")]
    Artifact(String),
    /// The wasmtime engine could not be configured.
    #[error("engine configuration: {0}")]
    Engine(String),
}

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
