//! weft: a self-hostable integration runtime.
//!
//! Integration authors publish WebAssembly modules; organizations install them; weft runs
//! every event in a fresh sandboxed instance (see the `weft-runtime` crate) and records it
//! in the events log. Start at [`server::Server::start`] and [`api::app`].

pub mod api;
pub mod applications;
pub mod auth;
pub mod cli;
pub mod config;
pub mod connections;
pub mod console;
pub mod crypto;
pub mod dev;
pub mod dispatch;
pub mod environments;
pub mod events_log;
pub mod guest_host;
pub mod ids;
pub mod manifest;
pub mod metrics;
pub mod modules;
pub mod oauth;
pub mod outbound;
pub mod queue;
pub mod retention;
pub mod server;
pub mod shapes;
pub mod state;
pub mod store;
pub mod targets;
pub mod tenancy;
