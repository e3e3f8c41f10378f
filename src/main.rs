//! The `weft` binary: server and CLI.

fn main() -> anyhow::Result<()> {
    weft::cli::run()
}
