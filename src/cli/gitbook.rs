//! GitBook projects: a directory with a `gitbook-manifest.yaml` (as `gitbook new` makes
//! them) is published, checked and run by `weft publish`, `weft check` and `weft dev` the
//! way GitBook's own CLI does it: the manifest is read and the script bundled with esbuild
//! from npm, with `gitbook publish`'s options (`gitbook_build.cjs`, run with Node.js), and
//! the publish body holds the same fields, `runtime: "v2"` and the bundle as `script`.
//!
//! Beyond GitBook's keys, the manifest may hold weft's `events`, `schedules` and `limits`
//! (GitBook's CLI drops keys it does not know, so such a manifest still works with it).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value, json};

/// The manifest file GitBook's CLI reads.
pub const MANIFEST_FILE: &str = "gitbook-manifest.yaml";

/// The helper that reads the manifest and bundles the script, run with `node -`.
const BUILD_SCRIPT: &str = include_str!("gitbook_build.cjs");

/// Largest icon and preview image, as GitBook's CLI checks them.
const MAX_ICON_BYTES: usize = 250 * 1024;
const MAX_PREVIEW_BYTES: usize = 1024 * 1024;

/// Whether `dir` is a GitBook project rather than a weft one (a `weft.toml` wins).
pub fn is_project(dir: &Path) -> bool {
    dir.join(MANIFEST_FILE).is_file() && !dir.join(crate::manifest::FILE_NAME).is_file()
}

/// A GitBook project, read and bundled.
#[derive(Debug, Clone)]
pub struct Project {
    /// The directory holding the manifest.
    pub dir: PathBuf,
    /// The integration's name.
    pub name: String,
    /// The manifest as YAML gave it (secrets interpolated from the environment).
    pub manifest: Value,
    /// The bundled script: ESM, es2020, minified, as `gitbook publish` sends it.
    pub script: String,
}

impl Project {
    /// Reads `dir/gitbook-manifest.yaml` and bundles its script.
    pub fn build(dir: &Path) -> anyhow::Result<Project> {
        let manifest_path = dir.join(MANIFEST_FILE);
        let mut child = Command::new("node")
            .arg("-")
            .arg(&manifest_path)
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|error| match error.kind() {
                std::io::ErrorKind::NotFound => anyhow::anyhow!(
                    "`node` is not on PATH: a GitBook project is bundled with esbuild from npm, which needs \
                     Node.js 18 or newer (Debian: `apt-get install nodejs npm`)"
                ),
                _ => anyhow::Error::from(error).context("running node"),
            })?;
        child.stdin.take().expect("stdin is piped").write_all(BUILD_SCRIPT.as_bytes()).context("running node")?;
        let output = child.wait_with_output().context("running node")?;
        if !output.status.success() {
            let said = String::from_utf8_lossy(&output.stderr);
            bail!("{}", said.trim_end().trim_start_matches("weft: "));
        }
        let built: Value = serde_json::from_slice(&output.stdout).context("reading the bundler's output")?;
        let manifest = built["manifest"].clone();
        let name = manifest["name"]
            .as_str()
            .with_context(|| format!("{}: `name` is required", manifest_path.display()))?
            .to_owned();
        crate::manifest::check_name(&name).map_err(|e| anyhow::anyhow!("{}: name: {e}", manifest_path.display()))?;
        let script = built["script"].as_str().context("the bundler gave no script")?.to_owned();
        Ok(Project { dir: dir.to_owned(), name, manifest, script })
    }

    /// The body of `POST /v1/integrations/{name}`: what `gitbook publish` sends for this
    /// project (images read from their files), plus weft's `events`, `schedules`, `limits`.
    pub fn publish_body(&self) -> anyhow::Result<Value> {
        let m = &self.manifest;
        if m.get("envs").is_some() {
            bail!(
                "{MANIFEST_FILE}: envs: per-environment overrides are not read by weft's CLI; \
                 publish with `gitbook publish --env …` or write the values in the manifest"
            );
        }
        let mut body = Map::new();
        body.insert("runtime".into(), json!("v2"));
        body.insert("title".into(), m["title"].clone());
        body.insert("description".into(), m.get("description").cloned().unwrap_or(json!("")));
        body.insert("scopes".into(), m.get("scopes").cloned().unwrap_or(json!([])));
        for key in [
            "summary",
            "categories",
            "blocks",
            "contentSources",
            "configurations",
            "secrets",
            "visibility",
            "target",
            "organization",
            "externalLinks",
            "contentSecurityPolicy",
            "events",
            "schedules",
            "limits",
        ] {
            if let Some(value) = m.get(key).filter(|v| !v.is_null()) {
                body.insert(key.into(), value.clone());
            }
        }
        if let Some(icon) = m["icon"].as_str() {
            body.insert("icon".into(), json!(self.image(icon, MAX_ICON_BYTES)?));
        }
        if let Some(images) = m["previewImages"].as_array() {
            let images: Vec<String> = images
                .iter()
                .map(|image| self.image(image.as_str().unwrap_or_default(), MAX_PREVIEW_BYTES))
                .collect::<anyhow::Result<_>>()?;
            body.insert("previewImages".into(), json!(images));
        }
        body.insert("script".into(), json!(self.script));
        Ok(Value::Object(body))
    }

    /// A PNG next to the manifest, base64, as GitBook's CLI reads it.
    fn image(&self, relative: &str, max: usize) -> anyhow::Result<String> {
        let path = self.dir.join(relative);
        if path.extension().is_none_or(|ext| ext != "png") {
            bail!("{MANIFEST_FILE}: {}: only PNG images are accepted", path.display());
        }
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        if bytes.len() > max {
            bail!("{MANIFEST_FILE}: {} is larger than {} KB", path.display(), max / 1024);
        }
        Ok(BASE64.encode(bytes))
    }

    /// The limits events run with locally (`weft dev`): the manifest's `limits`, if any.
    pub fn limits(&self) -> Value {
        self.manifest.get("limits").cloned().unwrap_or(Value::Null)
    }
}
