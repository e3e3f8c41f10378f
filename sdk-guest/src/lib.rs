//! Write weft integrations in Rust.
//!
//! An integration is a WebAssembly module (`wasm32-wasip1`, built as a `cdylib`) that weft
//! runs once per event in a fresh sandbox. This crate gives it:
//!
//! - typed events and context: [`Event`], [`Request`], [`Environment`];
//! - a [`Handler`] trait with one method per event kind, each with a sensible default;
//! - [`export_handler!`], which emits the guest ABI v2 exports (`weft_buffer`, `weft_reserve`, `weft_run`);
//! - the host operations as plain functions: [`log`], [`kv`], [`tasks`], [`http::fetch`];
//! - on native targets, a mock host in [`testing`] so handlers are unit-tested with plain
//!   `cargo test`, through the same JSON dispatch code the wasm export runs.
//!
//! # Example
//!
//! ```
//! use weft_sdk::{Environment, Handler, Request, Response, Result};
//!
//! struct Hello;
//!
//! impl Handler for Hello {
//!     fn fetch(&self, req: Request, env: &Environment) -> Result<Option<Response>> {
//!         weft_sdk::log::info(format!("hello: {} {}", req.method, req.path));
//!         let body = serde_json::json!({
//!             "path": req.path,
//!             "configuration": env.configuration(),
//!         });
//!         Ok(Some(Response::json(&body)?))
//!     }
//! }
//!
//! weft_sdk::export_handler!(Hello);
//! ```
//!
//! Build it with `cargo build --release --target wasm32-wasip1` (crate type `cdylib`); the
//! module is a WASI reactor that imports only `wasi_snapshot_preview1` and `weft`.
//!
//! # Testing
//!
//! ```
//! # use weft_sdk::{Environment, Handler, Request, Response, Result};
//! # struct Hello;
//! # impl Handler for Hello {
//! #     fn fetch(&self, req: Request, _env: &Environment) -> Result<Option<Response>> {
//! #         weft_sdk::log::info(format!("hello: {} {}", req.method, req.path));
//! #         Ok(Some(Response::text("hi")))
//! #     }
//! # }
//! use weft_sdk::testing::{self, MockHost};
//!
//! let host = MockHost::new();
//! let env = Environment::default().with_configuration(serde_json::json!({"greeting": "hi"}));
//! let outcome = testing::fetch(&Hello, testing::fetch_request("GET", "/some/path"), &env);
//! let response = outcome.into_response().expect("a response");
//! assert_eq!(response.status, 200);
//! assert_eq!(host.log_messages(), ["hello: GET /some/path"]);
//! ```

#![warn(missing_docs)]

pub mod abi;
mod codec;
pub mod environment;
pub mod error;
pub mod event;
pub mod handler;
mod host;
pub mod http;
pub mod kv;
pub mod log;
pub mod tasks;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

pub use environment::Environment;
pub use error::{Error, Result};
pub use event::{Event, FetchEvent, LifecycleEvent, LifecycleKind};
pub use handler::{Handler, Outcome};
pub use http::{Request, Response};
