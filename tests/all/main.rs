//! weft's integration tests: real servers on loopback ports, a fresh SQLite file per test,
//! and the real hello example built to wasm.

mod api_store;
mod api_support;
mod applications;
mod artifacts;
mod author;
mod authorization;
mod cli;
mod console;
mod dev;
mod event_work;
mod examples;
mod fetch;
mod gitbook;
mod gitbook_cli;
mod hostile;
mod identity;
mod installations;
mod integrations;
mod javascript;
mod openapi;
mod operations;
mod outages;
mod outbound;
mod publish;
mod queue;
mod races;
mod replicas;
mod retention;
mod revocation;
mod spaces;
mod store;
mod support;
mod tenancy;
