//! What several benches share, included with `#[path = "support.rs"] mod support;`.

use std::path::Path;
use std::process::Command;

/// hello.wasm, built with the project's guest build script when missing.
pub fn hello_wasm() -> Vec<u8> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = root.join("examples/target/wasm32-wasip1/release/hello.wasm");
    if !path.exists() {
        let status = Command::new("bash").arg(root.join("scripts/build-examples")).arg("hello").status();
        assert!(status.is_ok_and(|s| s.success()), "scripts/build-examples hello failed");
    }
    std::fs::read(path).expect("hello.wasm")
}
