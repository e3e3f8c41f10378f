//! An integration's manifest: `weft.toml` as the CLI reads it, and the rules every publish
//! body must pass. The server's publish endpoint and `weft check` both call
//! [`PublishBody::check`], so an author learns of a bad field before publishing, with the
//! very message the server would answer.
//!
//! Its keys are the publish body's fields (`POST /v1/integrations/{name}`, camelCase),
//! plus `name` and `script` (the built module's path, relative to the manifest). TOML
//! values become JSON as they are, so `[[schedules]]`, `[limits]` or
//! `[contentSecurityPolicy]` read exactly like the API documents them:
//!
//! ```toml
//! name = "digest"
//! title = "Digest"
//! description = "Sends a digest every hour."
//! organization = "acme"
//! script = "../target/wasm32-wasip1/release/digest.wasm"
//! contentSecurityPolicy = { connect-src = "hooks.example.com" }
//!
//! [[schedules]]
//! cron = "0 0 * * * *"
//! task = { digest = true }
//! per = "installation"
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use weft_runtime::Limits;

/// The file name the CLI looks for in an integration's directory.
pub const FILE_NAME: &str = "weft.toml";

/// A parsed `weft.toml`. Unknown keys are refused, naming the key.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Manifest {
    /// The integration's name (its URL segment).
    #[serde(skip_serializing)]
    pub name: String,
    /// Path of the built module, relative to the manifest's directory.
    #[serde(skip_serializing)]
    pub script: PathBuf,
    pub title: String,
    pub description: String,
    /// The organization that owns the integration.
    pub organization: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub visibility: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
    /// Hosts the module may reach with `http.fetch` (`connect-src`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_security_policy: Option<Value>,
    /// The installation configuration's JSON schema: `[configurations.account]`, or the
    /// schema itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub configurations: Option<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub external_links: Vec<Value>,
    /// Event types the integration subscribes to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<String>,
    /// Cron schedules.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedules: Option<Value>,
    /// Per-integration limits, within the server's maxima.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limits: Option<Value>,
}

impl Manifest {
    /// Reads `dir/weft.toml`.
    pub fn load(dir: &Path) -> anyhow::Result<Manifest> {
        let path = dir.join(FILE_NAME);
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        Manifest::parse(&text).with_context(|| format!("in {}", path.display()))
    }

    /// Parses a manifest's text.
    pub fn parse(text: &str) -> anyhow::Result<Manifest> {
        toml::from_str(text).map_err(|e| anyhow::anyhow!("{}", e.to_string().trim_end()))
    }

    /// Where the built module is, for a manifest read from `dir`.
    pub fn script_path(&self, dir: &Path) -> PathBuf {
        dir.join(&self.script)
    }

    /// Whether `script` names a JavaScript bundle (`.js`, `.mjs`) rather than a module.
    pub fn is_javascript(&self) -> bool {
        self.script.extension().is_some_and(|ext| ext == "js" || ext == "mjs")
    }

    /// The body of `POST /v1/integrations/{name}` for this manifest and its script's bytes:
    /// a module base64-encoded, a JavaScript bundle as its text.
    pub fn publish_body(&self, script: &[u8]) -> Value {
        let mut body = serde_json::to_value(self).expect("a manifest is plain data");
        body["script"] = match self.is_javascript() {
            true => Value::String(String::from_utf8_lossy(script).into_owned()),
            false => Value::String(BASE64.encode(script)),
        };
        body
    }
}

/// Checks an integration name against the reference's pattern `^[a-zA-Z0-9-_.]+$`, ≤ 100
/// characters (the URL segment of every integration route).
pub fn check_name(name: &str) -> Result<(), String> {
    let valid_chars = name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if name.is_empty() || name.len() > 100 || !valid_chars {
        return Err(format!("integrationName `{name}` must be 1–100 characters of a-z, A-Z, 0-9, `-`, `_` and `.`"));
    }
    Ok(())
}

/// Largest icon, decoded (the reference gives no limit; this keeps lists light).
pub const MAX_ICON_BYTES: usize = 256 << 10;
/// Largest preview image, decoded.
pub const MAX_PREVIEW_IMAGE_BYTES: usize = 512 << 10;
/// Largest stored manifest (everything but the script), as JSON.
pub const MAX_MANIFEST_BYTES: usize = 2 << 20;

/// At most this many secrets per integration.
const MAX_SECRETS: usize = 50;
/// At most this many bytes per secret value.
const MAX_SECRET_BYTES: usize = 10 * 1024;

/// Who may see and install an integration.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// Only its own organization.
    #[default]
    Private,
    /// Anyone who knows its name.
    Unlisted,
    /// Listed for everyone.
    Public,
}

/// Where an integration may be installed.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    #[default]
    All,
    Organization,
    Space,
    Site,
}

/// The body of `POST /v1/integrations/{name}`. Unknown fields are refused so a typo is
/// named, not ignored.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PublishBody {
    pub title: String,
    pub description: String,
    /// The module, base64; or a JavaScript bundle, as its source text (see [`Script`]).
    pub script: String,
    pub organization: String,
    pub icon: Option<String>,
    pub summary: Option<String>,
    #[serde(default)]
    pub preview_images: Vec<String>,
    #[serde(default)]
    pub visibility: Visibility,
    #[serde(default)]
    pub target: Target,
    pub content_security_policy: Option<Value>,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub categories: Vec<String>,
    #[serde(default)]
    pub blocks: Vec<Value>,
    pub configurations: Option<Value>,
    #[serde(default)]
    pub external_links: Vec<Value>,
    /// Name → value; sealed at rest, only ever given to the module's `environment.secrets`.
    pub secrets: Option<BTreeMap<String, String>>,
    /// Event types the integration subscribes to (see `POST /v1/orgs/{org}/events`).
    #[serde(default)]
    pub events: Vec<String>,
    /// Cron schedules: `[{"cron": "0 */5 * * * *", "task": {…}, "per": "integration" | "installation"}]`.
    pub schedules: Option<Value>,
    /// This integration's limits (`memoryBytes`, `deadlineMs`, `logBytes`, `outputBytes`,
    /// `hostCalls`, `outboundRequests`), within the server's maxima.
    pub limits: Option<Value>,
    /// GitBook's runtime version for a JavaScript `script` (`gitbook publish` sends `v2`,
    /// the Workers-style module weft runs); `v1` is refused for JavaScript. Ignored for a
    /// WebAssembly module, which has one ABI of its own.
    pub runtime: Option<Runtime>,
    /// GitBook's content sources (`[{id, title, description?, icon?, configuration}]`):
    /// stored and shown on the integration; weft sends no content-compute events yet.
    #[serde(default)]
    pub content_sources: Vec<Value>,
}

/// GitBook's integration runtime versions.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    V1,
    V2,
}

/// At most this many content sources per integration.
const MAX_CONTENT_SOURCES: usize = 20;

/// Checks GitBook's `IntegrationContentSource` rules; the error names the field.
fn check_content_source(i: usize, source: &Value) -> Result<(), String> {
    let field = |name: &str| format!("contentSources[{i}].{name}");
    let Some(fields) = source.as_object() else { return Err(format!("contentSources[{i}] must be an object")) };
    match fields.get("id").and_then(Value::as_str) {
        Some(id) if !id.is_empty() && id.len() <= 100 => {}
        _ => return Err(format!("{} must be a string of 1–100 characters", field("id"))),
    }
    match fields.get("title").and_then(Value::as_str).map(|t| t.chars().count()) {
        Some(2..=40) => {}
        _ => return Err(format!("{} must be a string of 2–40 characters", field("title"))),
    }
    if fields.get("description").is_some_and(|d| d.as_str().is_none_or(|d| d.chars().count() > 150)) {
        return Err(format!("{} must be a string of at most 150 characters", field("description")));
    }
    if fields.get("icon").is_some_and(|icon| !icon.is_string()) {
        return Err(format!("{} must be a string", field("icon")));
    }
    if !fields.get("configuration").is_some_and(Value::is_object) {
        return Err(format!("{} must be an object", field("configuration")));
    }
    Ok(())
}

/// Whether a `script` that is not base64 is JavaScript source, as `gitbook publish` sends
/// its bundle: base64 never holds these characters, a bundle always does.
fn looks_like_javascript(script: &str) -> bool {
    script.contains(['{', '(', ';'])
}

/// What a publish body's `script` holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Script {
    /// A WebAssembly module (the script was base64): compiled and snapshotted as it is.
    Wasm(Vec<u8>),
    /// A JavaScript bundle as `gitbook publish` sends it (ESM, es2020): evaluated in weft's
    /// JavaScript engine at publish, and that engine's snapshot is the stored module.
    JavaScript(String),
}

impl Script {
    /// `"wasm"` or `"javascript"`, as the publish answer and the versions list say.
    pub fn language(&self) -> &'static str {
        match self {
            Script::Wasm(_) => "wasm",
            Script::JavaScript(_) => "javascript",
        }
    }

    /// The script's own bytes (the module, or the bundle's source).
    pub fn bytes(&self) -> &[u8] {
        match self {
            Script::Wasm(wasm) => wasm,
            Script::JavaScript(source) => source.as_bytes(),
        }
    }
}

impl PublishBody {
    /// Parses a publish body given as JSON, with the same serde rules as the endpoint.
    pub fn from_json(body: Value) -> Result<PublishBody, String> {
        serde_json::from_value(body).map_err(|e| format!("invalid request body: {e}"))
    }

    /// Every rule a publish body must pass before the server looks at its database: the
    /// reference's limits, the schedules, the limits against the server's `max_limits`,
    /// and a script that is base64 WebAssembly or JavaScript. Returns the script (the
    /// runtime validates a module, or evaluates a bundle, next). Each error names its field.
    pub fn check(&self, max_limits: &Limits) -> Result<Script, String> {
        let chars = |s: &str| s.chars().count();
        if let Some(event) =
            self.events.iter().find(|e| e.is_empty() || e.len() > 100 || matches!(e.as_str(), "fetch" | "task"))
        {
            return Err(format!("events: `{event}` is not an event type one can subscribe to"));
        }
        if let Some(schedules) = &self.schedules {
            crate::queue::cron::parse_schedules(schedules)?;
        }
        if !(2..=30).contains(&chars(&self.title)) {
            return Err("title must be 2–30 characters".to_owned());
        }
        if chars(&self.description) > 100 {
            return Err("description must be at most 100 characters".to_owned());
        }
        if self.summary.as_deref().is_some_and(|s| chars(s) > 2048) {
            return Err("summary must be at most 2048 characters".to_owned());
        }
        if self.preview_images.len() > 3 {
            return Err("previewImages must hold at most 3 images".to_owned());
        }
        for (i, image) in self.preview_images.iter().enumerate() {
            let image = BASE64.decode(image).map_err(|e| format!("previewImages[{i}] is not base64: {e}"))?;
            if image.len() > MAX_PREVIEW_IMAGE_BYTES {
                return Err(format!("previewImages[{i}] must be at most {MAX_PREVIEW_IMAGE_BYTES} bytes"));
            }
        }
        if let Some(icon) = &self.icon {
            let icon = BASE64.decode(icon).map_err(|e| format!("icon is not base64: {e}"))?;
            if icon.len() > MAX_ICON_BYTES {
                return Err(format!("icon must be at most {MAX_ICON_BYTES} bytes"));
            }
        }
        match &self.content_security_policy {
            None | Some(Value::String(_)) | Some(Value::Object(_)) => {}
            Some(_) => return Err("contentSecurityPolicy must be a string or an object".to_owned()),
        }
        if self.configurations.as_ref().is_some_and(|c| !c.is_object()) {
            return Err("configurations must be an object".to_owned());
        }
        if let Some(scope) = self.scopes.iter().find(|s| s.is_empty() || s.len() > 100) {
            return Err(format!("scopes: `{scope}` must be 1–100 characters"));
        }
        if let Some(secrets) = &self.secrets {
            if secrets.len() > MAX_SECRETS {
                return Err(format!("secrets must hold at most {MAX_SECRETS} entries"));
            }
            for (name, value) in secrets {
                if name.is_empty() || name.len() > 100 {
                    return Err(format!("secrets: name `{name}` must be 1–100 characters"));
                }
                if value.len() > MAX_SECRET_BYTES {
                    return Err(format!("secrets.{name} must be at most {MAX_SECRET_BYTES} bytes"));
                }
            }
        }
        if let Some(limits) = &self.limits {
            crate::config::check_integration_limits(limits, max_limits)?;
        }
        if self.content_sources.len() > MAX_CONTENT_SOURCES {
            return Err(format!("contentSources must hold at most {MAX_CONTENT_SOURCES} sources"));
        }
        for (i, source) in self.content_sources.iter().enumerate() {
            check_content_source(i, source)?;
        }
        let manifest_bytes = self.stored_manifest(0).to_string().len();
        if manifest_bytes > MAX_MANIFEST_BYTES {
            return Err(format!(
                "the manifest (every field but script) is {manifest_bytes} bytes; at most {MAX_MANIFEST_BYTES} are allowed"
            ));
        }
        let script = self.script.trim();
        match BASE64.decode(script) {
            Ok(wasm) => Ok(Script::Wasm(wasm)),
            Err(_) if looks_like_javascript(script) => {
                if self.runtime == Some(Runtime::V1) {
                    return Err("runtime: `v1` (GitBook's first runtime) is not supported; weft runs a JavaScript \
                                script as runtime `v2`, a module whose default export has `fetch` (what \
                                `gitbook publish` sends): send `\"runtime\": \"v2\"` or leave it out"
                        .to_owned());
                }
                Ok(Script::JavaScript(self.script.clone()))
            }
            Err(e) => Err(format!("script is not base64: {e} (nor JavaScript source)")),
        }
    }

    /// Everything but the script, as stored.
    pub fn stored_manifest(&self, script_bytes: usize) -> Value {
        json!({
            "title": self.title,
            "description": self.description,
            "icon": self.icon,
            "summary": self.summary,
            "previewImages": self.preview_images,
            "contentSecurityPolicy": self.content_security_policy,
            "scopes": self.scopes,
            "categories": self.categories,
            "blocks": self.blocks,
            "configurations": self.configurations,
            "externalLinks": self.external_links,
            "events": self.events,
            "schedules": self.schedules.clone().unwrap_or_else(|| json!([])),
            "limits": self.limits.clone().unwrap_or_else(|| json!({})),
            "contentSources": self.content_sources,
            "scriptBytes": script_bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const DIGEST: &str = r#"
name = "digest"
title = "Digest"
description = "Sends a digest."
organization = "acme"
script = "digest.wasm"
contentSecurityPolicy = { connect-src = "hooks.example.com" }

[[schedules]]
cron = "0 0 * * * *"
task = { digest = true }
per = "installation"

[limits]
deadlineMs = 2000
"#;

    #[test]
    fn tables_become_the_publish_bodys_json() {
        let manifest = Manifest::parse(DIGEST).unwrap();
        let body = manifest.publish_body(b"\0asm");
        assert_eq!(
            body,
            json!({
                "title": "Digest",
                "description": "Sends a digest.",
                "organization": "acme",
                "contentSecurityPolicy": {"connect-src": "hooks.example.com"},
                "schedules": [{"cron": "0 0 * * * *", "task": {"digest": true}, "per": "installation"}],
                "limits": {"deadlineMs": 2000},
                "script": "AGFzbQ==",
            })
        );
    }

    #[test]
    fn unknown_and_missing_keys_are_named() {
        let unknown = Manifest::parse(&format!("{DIGEST}\n[extra]\nx = 1\n")).unwrap_err().to_string();
        assert!(unknown.contains("extra"), "{unknown}");
        let missing = Manifest::parse("name = \"x\"\nscript = \"x.wasm\"\n").unwrap_err().to_string();
        assert!(missing.contains("title"), "{missing}");
    }
}
