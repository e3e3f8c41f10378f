//! weft's integration tests: real servers on loopback ports, a fresh SQLite file per test,
//! and the real hello example built to wasm.

mod cli;
mod fetch;
mod publish;
mod store;
mod support;
