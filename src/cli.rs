//! The `weft` command line: `weft serve` runs the server, `weft publish` publishes an
//! integration from its `weft.toml`.

mod dev;
mod publish;
mod serve;
mod tail;

use clap::{Parser, Subcommand};

/// weft: a self-hostable integration runtime.
#[derive(Debug, Parser)]
#[command(name = "weft", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (SQLite by default, PostgreSQL with --database-url postgres://…).
    Serve(serve::ServeArgs),
    /// Publish the integration described by DIR/weft.toml.
    Publish(publish::PublishArgs),
    /// Run the integration in DIR on this machine and send it the live events (dev mode).
    Dev(dev::DevArgs),
    /// Print an integration's events and their logs as they happen.
    Tail(tail::TailArgs),
}

/// Parses the arguments and runs the command.
pub fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve::run(args).await,
            Command::Publish(args) => publish::run(args).await,
            Command::Dev(args) => dev::run(args).await,
            Command::Tail(args) => tail::run(args).await,
        }
    })
}
