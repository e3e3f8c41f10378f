//! The `weft` command line: `weft serve` runs the server; the other commands are the
//! author's loop, from `weft new` to a published, installed integration and its events.
//!
//! Every command prints human text on stdout, progress on stderr, and with `--json` one
//! JSON document on stdout for scripts. Errors go to stderr with a non-zero exit.

mod build;
mod check;
mod client;
mod dev;
mod events;
mod gitbook;
mod install;
mod new;
mod publish;
mod serve;
mod tail;
mod tasks;

use clap::{Parser, Subcommand};
use serde_json::Value;

/// weft: a self-hostable integration runtime.
///
/// The author's loop: `weft new NAME`, `weft build`, `weft check`, `weft publish`,
/// `weft install NAME --org ORG`, then `weft events NAME` and `weft tasks NAME`.
#[derive(Debug, Parser)]
#[command(name = "weft", version, about, long_about, propagate_version = true)]
pub struct Cli {
    /// Print one JSON document on stdout instead of text (for scripts; `weft tail`: one
    /// line of JSON per event).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process: the size of its largest variant (every serve flag) costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (SQLite by default, PostgreSQL with --database-url postgres://…).
    Serve(serve::ServeArgs),
    /// Create a new integration crate: handler, unit tests, weft.toml.
    New(new::NewArgs),
    /// Build the integration in DIR to wasm32-wasip1 and check it.
    Build(build::BuildArgs),
    /// Check DIR's weft.toml and module against the server's publish rules, offline.
    Check(check::CheckArgs),
    /// Publish the integration described by DIR/weft.toml (a new version each time).
    Publish(publish::PublishArgs),
    /// Install an integration on an organization; prints its public endpoint.
    Install(install::InstallArgs),
    /// List an integration's queued and dead tasks, or queue one with --queue.
    Tasks(tasks::TasksArgs),
    /// List an integration's recent events, with their logs on request.
    Events(events::EventsArgs),
    /// Run the integration in DIR on this machine and send it the live events (dev mode).
    Dev(dev::DevArgs),
    /// Print an integration's events and their logs as they happen.
    Tail(tail::TailArgs),
}

/// How a command prints its result: text for people or, with `--json`, one JSON document.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub json: bool,
}

impl Output {
    /// Prints the result: `value` as JSON with `--json`, else the text `human` makes.
    pub fn result(self, value: &Value, human: impl FnOnce() -> String) {
        if self.json {
            println!("{}", serde_json::to_string_pretty(value).expect("json values serialize"));
        } else {
            let text = human();
            println!("{}", text.trim_end());
        }
    }
}

/// A progress line of a long step, on stderr so that stdout stays the result.
pub fn progress(message: impl std::fmt::Display) {
    eprintln!("weft: {message}");
}

/// Parses the arguments and runs the command.
pub fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let out = Output { json: cli.json };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve::run(args).await,
            Command::New(args) => new::run(args, out),
            Command::Build(args) => build::run(args, out).await,
            Command::Check(args) => check::run(args, out).await,
            Command::Publish(args) => publish::run(args, out).await,
            Command::Install(args) => install::run(args, out).await,
            Command::Tasks(args) => tasks::run(args, out).await,
            Command::Events(args) => events::run(args, out).await,
            Command::Dev(args) => dev::run(args).await,
            Command::Tail(args) => tail::run(args, out).await,
        }
    })
}

/// Resolves on Ctrl-C or SIGTERM. The handlers are installed before this returns, so a
/// signal that arrives during start-up is not lost.
pub(crate) fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}
