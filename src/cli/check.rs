//! `weft check [DIR]`: everything the server would refuse at publish, found without a
//! server: weft.toml's keys, the publish body's rules ([`PublishBody::check`], the very
//! function the publish endpoint calls) and the module's guest ABI (the runtime's own
//! validation, with the server's default limits). A JavaScript bundle (a `.js` script, or
//! a GitBook project's bundled script) is evaluated and snapshotted by weft's engine, as
//! publishing would.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow};
use clap::Args;
use serde_json::{Value, json};
use weft_runtime::{Runtime, RuntimeConfig};

use super::Output;
use crate::manifest::{self, Manifest, PublishBody};

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The integration's directory (holding weft.toml, or a GitBook project's
    /// gitbook-manifest.yaml).
    #[arg(default_value = ".")]
    dir: PathBuf,
}

pub async fn run(args: CheckArgs, out: Output) -> anyhow::Result<()> {
    let checked = tokio::task::spawn_blocking(move || check(&args.dir)).await??;
    out.result(&checked.to_json(), || checked.human());
    Ok(())
}

/// What `weft check` found: all good.
#[derive(Debug)]
pub struct Checked {
    pub name: String,
    pub module: PathBuf,
    pub bytes: usize,
    pub schedules: usize,
    /// Whether it is a GitBook project (`gitbook-manifest.yaml`, bundled here).
    pub gitbook: bool,
    /// `crate::modules::module_report`: the guest ABI version and whether it was snapshotted,
    /// and the script's language.
    pub report: Value,
}

impl Checked {
    pub fn to_json(&self) -> Value {
        json!({
            "ok": true,
            "name": self.name,
            "module": self.module,
            "bytes": self.bytes,
            "schedules": self.schedules,
            "module": self.report,
        })
    }

    pub fn human(&self) -> String {
        format!(
            "weft check: `{}` is ready to publish\n  \
             manifest      {}, {} schedule(s)\n  \
             publish body  passes the server's rules (name, title, description, limits, schedules, …)\n  \
             module        {} ({} bytes, {}): {}, guest ABI v{} exports and imports\n  \
             snapshot      {}\n",
            self.name,
            match self.gitbook {
                true => "gitbook-manifest.yaml read, script bundled as `gitbook publish` does",
                false => "weft.toml: known keys only",
            },
            self.schedules,
            self.module.display(),
            self.bytes,
            self.report["language"].as_str().unwrap_or("wasm"),
            match self.report["language"].as_str() {
                Some("javascript") => "loads and runs its top level in weft's engine",
                _ => "compiles",
            },
            self.report["abi"],
            match self.report["snapshotReason"].as_str() {
                Some(reason) => format!("not taken, the module runs as published: {reason}"),
                None => "pre-initialised at publish".to_owned(),
            }
        )
    }
}

/// Checks `dir/weft.toml` and its module (or a GitBook project's manifest and bundle); the
/// first problem is the error, naming its field.
pub fn check(dir: &Path) -> anyhow::Result<Checked> {
    if super::gitbook::is_project(dir) {
        return check_gitbook(dir);
    }
    let manifest = Manifest::load(dir)?;
    let in_manifest = |message: String| anyhow!("{}: {message}", dir.join(manifest::FILE_NAME).display());
    manifest::check_name(&manifest.name).map_err(|e| in_manifest(format!("name: {e}")))?;
    let script = manifest.script_path(dir);
    // The manifest's fields first, so they are checked before anything is built.
    let wasm = std::fs::read(&script);
    let body = manifest.publish_body(wasm.as_deref().unwrap_or_default());
    let body = PublishBody::from_json(body).map_err(in_manifest)?;
    let config = RuntimeConfig::default();
    body.check(&config.max_limits).map_err(in_manifest)?;
    let wasm =
        wasm.with_context(|| format!("script: cannot read the module {} (run `weft build` first)", script.display()))?;
    let runtime = Runtime::new(config).context("starting the wasm runtime")?;
    let module = match manifest.is_javascript() {
        true => compile_javascript(&runtime, &wasm).map_err(|e| anyhow!("{}: {e}", script.display()))?,
        false => runtime.compile(&wasm).map_err(|e| anyhow!("script: {}: {e}", script.display()))?,
    };
    let schedules = body.schedules.as_ref().and_then(Value::as_array).map_or(0, Vec::len);
    let mut report = crate::modules::module_report(&crate::modules::module_facts(&module));
    report["language"] = json!(if manifest.is_javascript() { "javascript" } else { "wasm" });
    Ok(Checked { name: manifest.name, module: script, bytes: wasm.len(), schedules, gitbook: false, report })
}

/// Evaluates a bundle in weft's engine as publishing does; the error names its line.
pub fn compile_javascript(runtime: &Runtime, source: &[u8]) -> anyhow::Result<weft_runtime::PreparedModule> {
    let (module, _) = crate::modules::compile_javascript(runtime, source).map_err(|e| anyhow!(e))?;
    Ok(module)
}

/// [`check`] for a GitBook project: its manifest and bundle against the publish rules.
fn check_gitbook(dir: &Path) -> anyhow::Result<Checked> {
    let project = super::gitbook::Project::build(dir)?;
    let in_manifest = |message: String| anyhow!("{}: {message}", dir.join(super::gitbook::MANIFEST_FILE).display());
    let body = PublishBody::from_json(project.publish_body()?).map_err(in_manifest)?;
    let config = RuntimeConfig::default();
    body.check(&config.max_limits).map_err(in_manifest)?;
    let runtime = Runtime::new(config).context("starting the wasm runtime")?;
    let module = compile_javascript(&runtime, project.script.as_bytes())?;
    let mut report = crate::modules::module_report(&crate::modules::module_facts(&module));
    report["language"] = json!("javascript");
    let schedules = body.schedules.as_ref().and_then(Value::as_array).map_or(0, Vec::len);
    let entry = dir.join(project.manifest["script"].as_str().unwrap_or_default());
    Ok(Checked { name: project.name, module: entry, bytes: project.script.len(), schedules, gitbook: true, report })
}
