//! `weft new NAME`: scaffolds an integration crate that builds on the first try with
//! `weft build` and tests with `cargo test`: a handler answering `fetch` and `task` events,
//! native unit tests against `weft_sdk::testing::MockHost`, and a weft.toml with a cron
//! schedule. The files are the templates beside this module (`new/*.txt`).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::Args;
use serde_json::json;

use super::Output;
use crate::manifest;

/// The SDK of the source tree this binary was built from, the default `--sdk`.
const BUILT_FROM_SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/sdk-guest");

const CARGO_TOML: &str = include_str!("new/Cargo.toml.txt");
const LIB_RS: &str = include_str!("new/lib.rs.txt");
const WEFT_TOML: &str = include_str!("new/weft.toml.txt");
const README_MD: &str = include_str!("new/README.md.txt");
const GITIGNORE: &str = include_str!("new/gitignore.txt");

const DESCRIPTION: &str = "Answers requests with JSON and logs queued tasks and cron ticks.";

#[derive(Debug, Args)]
pub struct NewArgs {
    /// The integration's name: 1–100 characters of a-z, A-Z, 0-9, `-`, `_` and `.` (its
    /// URL segment on the server).
    name: String,
    /// Where to create the crate (default: ./NAME); must not exist or be empty.
    #[arg(long, value_name = "PATH")]
    dir: Option<PathBuf>,
    /// The organization that will own it (weft.toml's `organization`).
    #[arg(long, default_value = "acme")]
    org: String,
    /// The weft-sdk crate to depend on (default: the sdk-guest directory of the weft
    /// source tree this binary was built from).
    #[arg(long, value_name = "PATH")]
    sdk: Option<PathBuf>,
}

pub fn run(args: NewArgs, out: Output) -> anyhow::Result<()> {
    manifest::check_name(&args.name).map_err(|e| anyhow::anyhow!("invalid integration name: {e}"))?;
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from(&args.name));
    if dir.exists() {
        let empty = dir.is_dir()
            && std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?.next().is_none();
        if !empty {
            bail!("{} already exists and is not empty: choose another --dir", dir.display());
        }
    }
    let sdk = sdk_path(args.sdk.as_deref())?;
    let names = Names::of(&args.name);
    let script = format!("target/wasm32-wasip1/release/{}.wasm", names.lib);
    let vars = [
        ("name", args.name.clone()),
        ("crate_name", names.krate.clone()),
        ("lib_name", names.lib.clone()),
        ("type_name", names.type_name.clone()),
        ("title", names.title.clone()),
        ("description", DESCRIPTION.to_owned()),
        ("organization", toml_string(&args.org)),
        ("org_plain", args.org.clone()),
        ("sdk_path", toml_string(&sdk.to_string_lossy())),
        ("script", script.clone()),
    ];
    let files = [
        ("Cargo.toml", CARGO_TOML),
        ("src/lib.rs", LIB_RS),
        (manifest::FILE_NAME, WEFT_TOML),
        ("README.md", README_MD),
        (".gitignore", GITIGNORE),
    ];
    for (path, template) in files {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, render(template, &vars)).with_context(|| format!("writing {}", path.display()))?;
    }
    // What we wrote must pass our own manifest rules (a title made from the name, …).
    let manifest = manifest::Manifest::load(&dir)?;
    let value = json!({
        "name": args.name,
        "dir": dir,
        "crate": names.krate,
        "sdk": sdk,
        "script": dir.join(&manifest.script),
        "files": files.iter().map(|(path, _)| dir.join(path)).collect::<Vec<_>>(),
    });
    out.result(&value, || {
        format!(
            "created {name} in {dir}: Cargo.toml, src/lib.rs (handler and unit tests), weft.toml, README.md\n\n\
             next:\n  cd {dir}\n  cargo test          # unit tests, natively\n  \
             weft build          # the wasm module, checked\n  weft publish\n  \
             weft install {name} --org {org}\n",
            name = args.name,
            dir = dir.display(),
            org = args.org,
        )
    });
    Ok(())
}

/// The absolute path of the SDK crate: `--sdk`, else the one this binary was built from.
fn sdk_path(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    let path = match given {
        Some(path) => path.to_owned(),
        None if Path::new(BUILT_FROM_SDK).join("Cargo.toml").is_file() => PathBuf::from(BUILT_FROM_SDK),
        None => bail!(
            "the weft-sdk crate this weft was built with is gone ({BUILT_FROM_SDK}): pass --sdk PATH, \
             the sdk-guest directory of a weft checkout"
        ),
    };
    let manifest = path.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest)
        .with_context(|| format!("--sdk {}: no Cargo.toml there (want weft's sdk-guest directory)", path.display()))?;
    if !text.contains("name = \"weft-sdk\"") {
        bail!("--sdk {}: {} is not the weft-sdk crate", path.display(), manifest.display());
    }
    path.canonicalize().with_context(|| format!("resolving {}", path.display()))
}

/// The Rust names derived from an integration name.
struct Names {
    /// The package name: the name with `.` as `-`, prefixed when it is not a valid crate name.
    krate: String,
    /// The library name (the module's file name): the package name with `-` as `_`.
    lib: String,
    /// The handler type, in CamelCase.
    type_name: String,
    /// A title of 2–30 characters.
    title: String,
}

impl Names {
    fn of(name: &str) -> Names {
        let mut krate = name.replace('.', "-");
        if krate.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '_') || is_reserved(&krate) {
            krate = format!("weft-{krate}");
        }
        let lib = krate.replace('-', "_");
        let words: Vec<String> = name
            .split(['-', '_', '.'])
            .filter(|word| !word.is_empty())
            .map(|word| {
                let mut chars = word.chars();
                chars.next().map(|first| first.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
            })
            .collect();
        let mut type_name = words.concat();
        if !type_name.starts_with(|c: char| c.is_ascii_alphabetic()) {
            type_name = format!("Integration{type_name}");
        }
        let mut title: String = words.join(" ").chars().take(30).collect();
        if title.chars().count() < 2 {
            title = format!("{title} integration").trim().to_owned();
        }
        Names { krate, lib, type_name, title: title.trim_end().to_owned() }
    }
}

/// Names cargo or rustc refuse for a package or library.
fn is_reserved(name: &str) -> bool {
    const RESERVED: &[&str] = &[
        "as",
        "async",
        "await",
        "break",
        "const",
        "continue",
        "core",
        "crate",
        "dyn",
        "else",
        "enum",
        "extern",
        "false",
        "fn",
        "for",
        "if",
        "impl",
        "in",
        "let",
        "loop",
        "match",
        "mod",
        "move",
        "mut",
        "pub",
        "ref",
        "return",
        "self",
        "static",
        "std",
        "struct",
        "super",
        "test",
        "trait",
        "true",
        "type",
        "unsafe",
        "use",
        "where",
        "while",
        "alloc",
        "proc_macro",
    ];
    RESERVED.contains(&name.replace('-', "_").as_str())
}

/// `value` as a TOML string literal, quoted and escaped.
fn toml_string(value: &str) -> String {
    toml::Value::String(value.to_owned()).to_string()
}

/// Replaces every `{{key}}` of `template`.
fn render(template: &str, vars: &[(&str, String)]) -> String {
    vars.iter().fold(template.to_owned(), |text, (key, value)| text.replace(&format!("{{{{{key}}}}}"), value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_valid_rust_names_and_titles() {
        let names = Names::of("my-digest.v2");
        assert_eq!((names.krate.as_str(), names.lib.as_str()), ("my-digest-v2", "my_digest_v2"));
        assert_eq!((names.type_name.as_str(), names.title.as_str()), ("MyDigestV2", "My Digest V2"));
        let names = Names::of("1x");
        assert_eq!(
            (names.krate.as_str(), names.type_name.as_str(), names.title.as_str()),
            ("weft-1x", "Integration1x", "1x")
        );
        let names = Names::of("x");
        assert_eq!(names.title, "X integration");
        assert_eq!(Names::of("test").lib, "weft_test");
        assert_eq!(Names::of(&"a".repeat(100)).title.chars().count(), 30);
    }

    #[test]
    fn every_placeholder_is_filled() {
        let vars = [("name", "n".to_owned())];
        assert_eq!(render("a {{name}} b {{name}}", &vars), "a n b n");
        for template in [CARGO_TOML, LIB_RS, WEFT_TOML, README_MD, GITIGNORE] {
            let keys = [
                "name",
                "crate_name",
                "lib_name",
                "type_name",
                "title",
                "description",
                "organization",
                "org_plain",
                "sdk_path",
                "script",
            ];
            let vars: Vec<(&str, String)> = keys.iter().map(|k| (*k, "x".to_owned())).collect();
            assert!(!render(template, &vars).contains("{{"), "{template}");
        }
    }
}
