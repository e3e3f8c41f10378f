//! The `weft` binary: server and CLI.

use std::process::ExitCode;

fn main() -> ExitCode {
    match weft::cli::run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // `{:#}` prints the whole chain on one line: "reading x: No such file …".
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
