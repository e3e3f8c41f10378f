//! `weft build [DIR]`: builds the integration crate in DIR to a wasm32-wasip1 module at the
//! `script` path of its weft.toml, then checks it like `weft check`.
//!
//! The toolchain is chosen the way `scripts/build-examples` chooses it, so an author's
//! crate builds wherever the project's examples do: rustup's `wasm32-wasip1` target when it
//! is installed, else Debian's rustc-web with std built from source and wasi-libc's
//! reactor start file (see ARCHITECTURE.md, "Guest toolchain"). `weft dev` builds through
//! [`build`] too.

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Args;
use serde_json::{Value, json};

use super::{Output, progress};
use crate::manifest::Manifest;

/// The guest target.
pub const TARGET: &str = "wasm32-wasip1";
/// wasi-libc's libraries, including the reactor start file.
const WASI_SYSROOT_LIB: &str = "/usr/lib/wasm32-wasi";
/// Debian's packages for the fallback toolchain.
const DEBIAN_PACKAGES: &str = "rustc-web cargo-web rust-web-src wasi-libc lld";

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The integration's directory (holding Cargo.toml and weft.toml).
    #[arg(default_value = ".")]
    dir: PathBuf,
}

pub async fn run(args: BuildArgs, out: Output) -> anyhow::Result<()> {
    let manifest = Manifest::load(&args.dir)?;
    let script = manifest.script_path(&args.dir);
    let built = tokio::task::spawn_blocking({
        let dir = args.dir.clone();
        move || build(&dir, &script)
    })
    .await??;
    let checked = tokio::task::spawn_blocking(move || super::check::check(&args.dir)).await??;
    let value = json!({
        "module": built.module,
        "bytes": built.bytes,
        "seconds": built.elapsed.as_secs_f64(),
        "toolchain": built.toolchain,
        "check": checked.to_json(),
    });
    out.result(&value, || checked.human());
    Ok(())
}

/// A module that [`build`] produced.
#[derive(Debug)]
pub struct Built {
    /// Where it is now (the manifest's `script`).
    pub module: PathBuf,
    pub bytes: u64,
    pub elapsed: Duration,
    /// `rustup` or `debian`.
    pub toolchain: &'static str,
}

/// Builds the crate in `dir` for wasm32-wasip1 in release mode and puts the module at
/// `script`. Cargo's own output (progress, diagnostics) goes to stderr.
pub fn build(dir: &Path, script: &Path) -> anyhow::Result<Built> {
    let cargo_toml = dir.join("Cargo.toml");
    if !cargo_toml.is_file() {
        bail!(
            "no Cargo.toml in {}: `weft build` builds a Rust crate (`weft new` makes one); with another \
             language, build the module yourself and point `script` in weft.toml at it",
            dir.display()
        );
    }
    let toolchain = Toolchain::detect()?;
    let mut command = toolchain.cargo();
    command
        .args(["build", "--release", "--target", TARGET, "--message-format=json-render-diagnostics"])
        .arg("--manifest-path")
        .arg(&cargo_toml)
        .args(toolchain.build_args())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let shown = dir.canonicalize().unwrap_or_else(|_| dir.to_owned());
    progress(format_args!("building {} for {TARGET} with {}", shown.display(), toolchain.describe()));
    let started = Instant::now();
    let mut child = command.spawn().with_context(|| format!("running {:?}", command.get_program()))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut artifacts = Vec::new();
    for line in std::io::BufReader::new(stdout).lines() {
        let Ok(message) = serde_json::from_str::<Value>(&line.context("reading cargo's output")?) else { continue };
        if message["reason"] == "compiler-artifact" {
            artifacts.push(message);
        }
    }
    let status = child.wait().context("waiting for cargo")?;
    if !status.success() {
        bail!("cargo build failed ({status}); the errors are above");
    }
    let wasm = pick_module(&artifacts, &cargo_toml, script)?;
    if !same_file(&wasm, script) {
        if let Some(parent) = script.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::copy(&wasm, script).with_context(|| format!("copying {} to {}", wasm.display(), script.display()))?;
    }
    let bytes = std::fs::metadata(script).with_context(|| format!("reading {}", script.display()))?.len();
    let elapsed = started.elapsed();
    progress(format_args!("built {} ({bytes} bytes) in {:.1}s", script.display(), elapsed.as_secs_f64()));
    Ok(Built { module: script.to_owned(), bytes, elapsed, toolchain: toolchain.name() })
}

/// The `.wasm` of the crate's cdylib among cargo's artifacts: the one of the package whose
/// manifest is `cargo_toml`, else the only one, else the one named like `script`.
fn pick_module(artifacts: &[Value], cargo_toml: &Path, script: &Path) -> anyhow::Result<PathBuf> {
    let modules: Vec<(PathBuf, PathBuf)> = artifacts
        .iter()
        .filter(|a| a["target"]["kind"].as_array().is_some_and(|kinds| kinds.iter().any(|k| k == "cdylib")))
        .flat_map(|a| {
            let manifest = PathBuf::from(a["manifest_path"].as_str().unwrap_or_default());
            a["filenames"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .filter(|f| f.ends_with(".wasm"))
                .map(move |f| (manifest.clone(), PathBuf::from(f)))
        })
        .collect();
    if let Some((_, wasm)) = modules.iter().find(|(manifest, _)| same_file(manifest, cargo_toml)) {
        return Ok(wasm.clone());
    }
    if let [(_, wasm)] = modules.as_slice() {
        return Ok(wasm.clone());
    }
    if let Some((_, wasm)) = modules.iter().find(|(_, wasm)| wasm.file_name() == script.file_name()) {
        return Ok(wasm.clone());
    }
    if modules.is_empty() {
        bail!("cargo built no .wasm module: the crate needs `crate-type = [\"cdylib\", \"rlib\"]` under [lib]");
    }
    bail!("cargo built several modules and none belongs to {}", cargo_toml.display())
}

/// Whether two paths name the same existing file.
fn same_file(a: &Path, b: &Path) -> bool {
    matches!((a.canonicalize(), b.canonicalize()), (Ok(a), Ok(b)) if a == b)
}

/// How to build for wasm32-wasip1 on this machine.
#[derive(Debug, Clone, Copy)]
enum Toolchain {
    /// rustup's `wasm32-wasip1` target is installed: plain `cargo build --target`.
    Rustup,
    /// Debian's rustc-web, std built from source, linked as a WASI reactor.
    Debian,
}

impl Toolchain {
    fn detect() -> anyhow::Result<Toolchain> {
        let installed =
            Command::new("rustup").args(["target", "list", "--installed"]).stderr(Stdio::null()).output().is_ok_and(
                |out| out.status.success() && String::from_utf8_lossy(&out.stdout).lines().any(|l| l == TARGET),
            );
        if installed {
            return Ok(Toolchain::Rustup);
        }
        let crt1 = PathBuf::from(WASI_SYSROOT_LIB).join("crt1-reactor.o");
        let needed = [
            ("/usr/bin/rustc", "rustc-web"),
            ("/usr/bin/cargo", "cargo-web"),
            ("/usr/lib/rustlib/src/rust/library/std/Cargo.toml", "rust-web-src"),
            (crt1.to_str().expect("utf-8 path"), "wasi-libc"),
        ];
        let mut missing: Vec<&str> =
            needed.iter().filter(|(path, _)| !Path::new(path).exists()).map(|(_, package)| *package).collect();
        if !on_path("wasm-ld") {
            missing.push("lld");
        }
        if !missing.is_empty() {
            bail!(
                "no toolchain for {TARGET}: rustup has no {TARGET} target and Debian's packages are missing \
                 ({}). Either run `rustup target add {TARGET}`, or install them with:\n\n    \
                 sudo apt-get install -y {DEBIAN_PACKAGES}\n",
                missing.join(", ")
            );
        }
        Ok(Toolchain::Debian)
    }

    /// What `cargo build` needs besides the target.
    fn build_args(self) -> &'static [&'static str] {
        match self {
            Toolchain::Rustup => &[],
            Toolchain::Debian => &["-Zbuild-std=std,panic_abort"],
        }
    }

    fn name(self) -> &'static str {
        match self {
            Toolchain::Rustup => "rustup",
            Toolchain::Debian => "debian",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Toolchain::Rustup => "rustup's target",
            Toolchain::Debian => "Debian's toolchain (std is built from source: the first build takes minutes)",
        }
    }

    /// `cargo` set up for this toolchain, with the host's build settings removed so they
    /// cannot leak into the guest build. `CARGO_TARGET_DIR` is kept.
    fn cargo(self) -> Command {
        let mut command = match self {
            Toolchain::Rustup => Command::new("cargo"),
            Toolchain::Debian => {
                let mut command = Command::new("/usr/bin/cargo");
                command.env("RUSTC", "/usr/bin/rustc").env("RUSTC_BOOTSTRAP", "1").env(
                    "RUSTFLAGS",
                    format!(
                        "-C linker=wasm-ld -C link-self-contained=no -L {WASI_SYSROOT_LIB} \
                             -C link-arg={WASI_SYSROOT_LIB}/crt1-reactor.o {}",
                        stack_size_flag()
                    ),
                );
                command
            }
        };
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            let host_setting = matches!(
                name.as_ref(),
                "CARGO_ENCODED_RUSTFLAGS" | "RUSTC_WRAPPER" | "RUSTC_WORKSPACE_WRAPPER" | "CARGO_BUILD_TARGET"
            ) || (name.starts_with("CARGO_TARGET_") && name != "CARGO_TARGET_DIR");
            if host_setting {
                command.env_remove(name.as_ref());
            }
        }
        if matches!(self, Toolchain::Rustup) {
            command.env("RUSTFLAGS", stack_size_flag());
        }
        command
    }
}

/// The guest's shadow stack size (Rust's default is 1 MiB): every event starts from a fresh
/// copy of linear memory and resetting it costs in proportion to its size, so 64 KiB keeps
/// a small module's memory at a few pages. Overflowing it traps (the stack comes first).
/// `WEFT_GUEST_STACK_BYTES` overrides it, as in scripts/build-examples.
fn stack_size_flag() -> String {
    let bytes = std::env::var("WEFT_GUEST_STACK_BYTES").unwrap_or_else(|_| "65536".to_owned());
    format!("-C link-arg=-zstack-size={bytes}")
}

/// Whether `program` is an executable on PATH.
fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}
