//! `weft dev [DIR]`: runs the integration in DIR on this machine and makes the server send
//! it the integration's live events.
//!
//! It builds the module (or takes `--wasm FILE`), runs each event in the same sandbox as the
//! server (`weft_runtime::Runtime`, with weft.toml's `[limits]` or the defaults) and reloads
//! the module when the file (or the source) changes. In a GitBook project
//! (`gitbook-manifest.yaml`) it bundles the script as `gitbook publish` does and runs the
//! bundle in weft's JavaScript engine, bundling again when a source changes. Events arrive over a reverse tunnel: a
//! WebSocket from here to the server, so nothing on this machine needs to be reachable. With
//! `--public-url` it serves HTTP itself instead and registers that URL. Ctrl-C (or SIGTERM)
//! turns dev mode off.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, bail};
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use clap::Args;
use futures_util::{SinkExt as _, StreamExt as _};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use weft_runtime::{Limits, LogLine, NoHostServices, Outcome, PreparedModule, RunReport, Runtime, RuntimeConfig};

use super::client::{ApiArgs, ApiClient};
use crate::dev::protocol::{ClientMessage, ServerMessage};

#[derive(Debug, Args)]
pub struct DevArgs {
    /// Directory of the integration (holding weft.toml).
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Run this module instead of building DIR; it is still reloaded when it changes.
    #[arg(long)]
    wasm: Option<PathBuf>,
    /// The integration's name (default: `name` in weft.toml).
    #[arg(long)]
    name: Option<String>,
    /// Shell command that builds the module, run in DIR at start and on source changes
    /// (default: what `weft build DIR` does).
    #[arg(long)]
    build: Option<String>,
    /// Serve HTTP on --listen and have the server POST events to this URL, instead of the
    /// reverse tunnel.
    #[arg(long)]
    public_url: Option<String>,
    /// Address to serve HTTP on with --public-url.
    #[arg(long, default_value = "127.0.0.1:8787")]
    listen: String,
    /// Receive the events of every organization, not only the integration's own.
    #[arg(long)]
    all: bool,
    #[command(flatten)]
    api: ApiArgs,
}

/// How the module is rebuilt when the source changes.
#[derive(Debug, Clone)]
enum Build {
    /// `weft build`'s own build of the crate, into the manifest's `script`.
    Crate { dir: PathBuf, script: PathBuf },
    /// A shell command (`--build`), run in DIR.
    Shell { dir: PathBuf, command: String },
    /// A GitBook project's bundle, written to `script`.
    GitBook { dir: PathBuf, script: PathBuf },
}

impl Build {
    fn run(&self) -> anyhow::Result<()> {
        match self {
            Build::Crate { dir, script } => super::build::build(dir, script).map(drop),
            Build::Shell { dir, command } => run_build(dir, command),
            Build::GitBook { dir, script } => {
                let project = super::gitbook::Project::build(dir)?;
                if let Some(parent) = script.parent() {
                    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
                }
                std::fs::write(script, &project.script).with_context(|| format!("writing {}", script.display()))?;
                println!("weft dev: bundled {} ({} bytes)", script.display(), project.script.len());
                Ok(())
            }
        }
    }
}

/// What `weft dev` reads of weft.toml (other keys are for `weft publish`).
#[derive(Debug, Deserialize)]
struct Manifest {
    name: String,
    script: PathBuf,
    /// The integration's `[limits]`: local runs use them, like the server does.
    #[serde(default)]
    limits: Value,
}

impl Manifest {
    /// The limits events run with here: the manifest's, within the runtime's maxima, else
    /// the defaults. The error names the field, as publishing would.
    fn run_limits(&self, runtime: &RuntimeConfig) -> anyhow::Result<Limits> {
        crate::config::check_integration_limits(&self.limits, &runtime.max_limits)
            .map_err(|error| anyhow::anyhow!("weft.toml: {error}"))?;
        Ok(crate::config::integration_limits(&json!({ "limits": self.limits }), &Limits::default()))
    }
}

/// How polling notices changes.
const POLL: Duration = Duration::from_millis(250);
/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How often the CLI sends a heartbeat.
const HEARTBEAT: Duration = Duration::from_secs(10);

pub async fn run(args: DevArgs) -> anyhow::Result<()> {
    // Installed first, so a signal during start-up still turns dev mode off.
    let shutdown = super::shutdown_signal()?;
    if super::gitbook::is_project(&args.dir) && args.wasm.is_none() {
        return run_gitbook(args, shutdown).await;
    }
    let manifest = std::fs::read_to_string(args.dir.join("weft.toml"))
        .ok()
        .map(|text| toml::from_str::<Manifest>(&text).context("parsing weft.toml"))
        .transpose()?;
    let name = match (&args.name, &manifest) {
        (Some(name), _) => name.clone(),
        (None, Some(manifest)) => manifest.name.clone(),
        (None, None) => bail!("no weft.toml in {}: pass --name", args.dir.display()),
    };
    let shell = |command: &String| Build::Shell { dir: args.dir.clone(), command: command.clone() };
    let (wasm, build) = match (&args.wasm, &manifest) {
        (Some(wasm), _) => (wasm.clone(), args.build.as_ref().map(shell)),
        (None, Some(manifest)) => {
            let script = args.dir.join(&manifest.script);
            let build = match &args.build {
                Some(command) => shell(command),
                None => Build::Crate { dir: args.dir.clone(), script: script.clone() },
            };
            (script, Some(build))
        }
        (None, None) => bail!("pass --wasm FILE or run in a directory with weft.toml"),
    };
    if let Some(build) = &build {
        build.run()?;
    }
    let runtime_config = RuntimeConfig::default();
    let limits = match &manifest {
        Some(manifest) => manifest.run_limits(&runtime_config)?,
        None => Limits::default(),
    };
    let local = Arc::new(Local::new(wasm, runtime_config, limits)?);
    serve(args, name, local, build, shutdown).await
}

/// `weft dev` in a GitBook project: the bundle, in a file of its own, is the module.
async fn run_gitbook(args: DevArgs, shutdown: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
    let dir = args.dir.clone();
    let project = tokio::task::spawn_blocking(move || super::gitbook::Project::build(&dir)).await??;
    let name = args.name.clone().unwrap_or_else(|| project.name.clone());
    let script = std::env::temp_dir().join("weft-dev").join(&project.name).join("script.js");
    let build = Build::GitBook { dir: args.dir.clone(), script: script.clone() };
    build.run()?;
    let runtime_config = RuntimeConfig::default();
    let limits = Manifest { name: name.clone(), script: script.clone(), limits: project.limits() }
        .run_limits(&runtime_config)
        .map_err(|e| anyhow::anyhow!("{}", e.to_string().replace("weft.toml", super::gitbook::MANIFEST_FILE)))?;
    let local = Arc::new(Local::new(script, runtime_config, limits)?);
    serve(args, name, local, Some(build), shutdown).await
}

/// Runs `local`, rebuilt by `build` when the sources change, for the server's events of
/// `name` until `shutdown`.
async fn serve(
    args: DevArgs,
    name: String,
    local: Arc<Local>,
    build: Option<Build>,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    println!("weft dev: running {} as `{name}`", local.wasm.display());
    let source = build.as_ref().map(|_| newest_source(&args.dir));
    tokio::spawn(watch(local.clone(), args.dir.clone(), build, source));

    let api = ApiClient::new(&args.api);
    if let Some(public_url) = &args.public_url {
        let secret = register_http(&api, &name, public_url, args.all).await?;
        let listener =
            tokio::net::TcpListener::bind(&args.listen).await.with_context(|| format!("binding {}", args.listen))?;
        println!("weft dev: serving on http://{}; the server posts events to {public_url}", listener.local_addr()?);
        let app = axum::Router::new().fallback({
            let local = local.clone();
            move |headers: HeaderMap, body: Bytes| http_event(local.clone(), secret.clone(), headers, body)
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
    } else {
        let url =
            format!("{}/v1/integrations/{name}/dev/connect?all={}", api.base().replacen("http", "ws", 1), args.all);
        tokio::spawn(tunnel(url, args.api.token.clone(), local.clone()));
    }
    shutdown.await;
    match api.send(api.request(Method::DELETE, &format!("/v1/integrations/{name}/dev"))).await {
        Ok(_) => println!("weft dev: dev mode of `{name}` is off"),
        Err(error) => eprintln!("weft dev: turning dev mode off failed: {error:#}"),
    }
    Ok(())
}

fn run_build(dir: &Path, command: &str) -> anyhow::Result<()> {
    println!("weft dev: building: {command}");
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(dir)
        .status()
        .with_context(|| format!("running `{command}`"))?;
    if !status.success() {
        bail!("`{command}` failed with {status}");
    }
    Ok(())
}

/// The module on this machine and the sandbox that runs it.
struct Local {
    runtime: Runtime,
    limits: Limits,
    wasm: PathBuf,
    loaded: Mutex<(Stamp, Arc<PreparedModule>)>,
}

/// A file's modification time and length, when it exists.
type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

impl Local {
    fn new(wasm: PathBuf, config: RuntimeConfig, limits: Limits) -> anyhow::Result<Self> {
        let runtime = Runtime::new(config)?;
        let stamp = stamp(&wasm);
        let bytes = std::fs::read(&wasm).with_context(|| format!("reading {}", wasm.display()))?;
        let module = compile(&runtime, &wasm, &bytes).with_context(|| format!("compiling {}", wasm.display()))?;
        Ok(Self { runtime, limits, wasm, loaded: Mutex::new((stamp, Arc::new(module))) })
    }

    /// Recompiles the module when its file changed; a module that does not compile leaves
    /// the previous one running.
    fn reload_if_changed(&self) {
        let current = stamp(&self.wasm);
        if current.is_none() || self.loaded.lock().expect("module lock").0 == current {
            return;
        }
        let compiled = std::fs::read(&self.wasm)
            .map_err(anyhow::Error::from)
            .and_then(|bytes| compile(&self.runtime, &self.wasm, &bytes));
        let mut loaded = self.loaded.lock().expect("module lock");
        loaded.0 = current;
        match compiled {
            Ok(module) => {
                loaded.1 = Arc::new(module);
                println!("weft dev: reloaded {}", self.wasm.display());
            }
            Err(error) => {
                eprintln!("weft dev: {} does not load, keeping the previous module: {error:#}", self.wasm.display())
            }
        }
    }

    /// Runs one invocation, prints it, and returns the outcome JSON with its logs.
    async fn run(&self, invocation: &[u8]) -> (Value, Vec<LogLine>) {
        self.reload_if_changed();
        let module = self.loaded.lock().expect("module lock").1.clone();
        let report = self.runtime.run(&module, invocation, &self.limits, Arc::new(NoHostServices)).await;
        let report = match report {
            Ok(report) => report,
            Err(error) => RunReport {
                result: Err(weft_runtime::Failure::new(weft_runtime::FailureKind::Instantiate, error.to_string())),
                logs: Vec::new(),
                duration: Duration::ZERO,
            },
        };
        print_event(invocation, &report);
        (outcome_json(&report), report.logs)
    }
}

/// A module from its file's bytes: a `.js` file is a bundle for weft's JavaScript engine.
fn compile(runtime: &Runtime, path: &Path, bytes: &[u8]) -> anyhow::Result<PreparedModule> {
    match path.extension().is_some_and(|ext| ext == "js" || ext == "mjs") {
        true => super::check::compile_javascript(runtime, bytes),
        false => Ok(runtime.compile(bytes)?),
    }
}

/// The outcome JSON of a report; a failure becomes an error outcome (500).
fn outcome_json(report: &RunReport) -> Value {
    match &report.result {
        Ok(Outcome::Response(response)) => json!({ "response": {
            "status": response.status,
            "headers": response.headers,
            "body": BASE64.encode(&response.body),
        }}),
        Ok(Outcome::Error { code, message }) => json!({ "error": { "code": code, "message": message } }),
        Ok(Outcome::None) => json!({}),
        Err(failure) => json!({ "error": { "code": 500, "message": failure.to_string() } }),
    }
}

fn print_event(invocation: &[u8], report: &RunReport) {
    let invocation: Value = serde_json::from_slice(invocation).unwrap_or_default();
    let event = &invocation["event"];
    let installation = invocation["environment"]["installation"]["id"].as_str().unwrap_or("-");
    println!(
        "event {} {} installation {installation} ({} ms)",
        event["type"].as_str().unwrap_or("?"),
        event["eventId"].as_str().unwrap_or("?"),
        report.duration.as_millis()
    );
    for line in &report.logs {
        println!("    {:?}: {}", line.level, line.message);
    }
    match &report.result {
        Ok(Outcome::Response(response)) => println!("  → response {}", response.status),
        Ok(Outcome::Error { code, message }) => println!("  → error {code}: {message}"),
        Ok(Outcome::None) => println!("  → no response"),
        Err(failure) => println!("  → failed: {failure}"),
    }
}

/// Polls the source (when there is a build) and the module, rebuilding and reloading.
async fn watch(local: Arc<Local>, dir: PathBuf, build: Option<Build>, mut source: Option<Option<SystemTime>>) {
    loop {
        tokio::time::sleep(POLL).await;
        if let (Some(build), Some(seen)) = (&build, &mut source) {
            let now = newest_source(&dir);
            if now > *seen {
                *seen = now;
                let build = build.clone();
                let built = tokio::task::spawn_blocking(move || build.run()).await;
                if let Ok(Err(error)) = built {
                    eprintln!("weft dev: {error:#}");
                }
            }
        }
        let local = local.clone();
        let _ = tokio::task::spawn_blocking(move || local.reload_if_changed()).await;
    }
}

/// The newest modification time of the crate's or project's sources (`src/`, `Cargo.toml`,
/// `gitbook-manifest.yaml`).
fn newest_source(dir: &Path) -> Option<SystemTime> {
    fn walk(path: &Path, newest: &mut Option<SystemTime>) {
        let Ok(meta) = std::fs::metadata(path) else { return };
        if meta.is_dir() {
            for entry in std::fs::read_dir(path).into_iter().flatten().flatten() {
                walk(&entry.path(), newest);
            }
        } else if let Ok(modified) = meta.modified() {
            *newest = (*newest).max(Some(modified));
        }
    }
    let mut newest = None;
    walk(&dir.join("src"), &mut newest);
    walk(&dir.join("Cargo.toml"), &mut newest);
    walk(&dir.join(super::gitbook::MANIFEST_FILE), &mut newest);
    newest
}

/// Keeps the reverse tunnel open, reconnecting with backoff.
async fn tunnel(url: String, token: String, local: Arc<Local>) {
    let mut backoff = Duration::from_millis(200);
    loop {
        match session(&url, &token, &local).await {
            Ok(true) => {
                backoff = Duration::from_millis(200);
                println!("weft dev: tunnel closed; reconnecting");
            }
            Ok(false) => println!("weft dev: tunnel closed; reconnecting"),
            Err(error) => eprintln!("weft dev: tunnel: {error:#}; retrying in {} ms", backoff.as_millis()),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One connection; `Ok(true)` when it got as far as being ready.
async fn session(url: &str, token: &str, local: &Arc<Local>) -> anyhow::Result<bool> {
    let mut request = url.into_client_request()?;
    request.headers_mut().insert("authorization", format!("Bearer {token}").parse()?);
    let (socket, _) = tokio_tungstenite::connect_async(request).await.map_err(|error| match error {
        tokio_tungstenite::tungstenite::Error::Http(response) => {
            let body = response.body().as_deref().map(String::from_utf8_lossy).unwrap_or_default().into_owned();
            anyhow::anyhow!("the server refused the tunnel with {}: {body}", response.status())
        }
        other => anyhow::Error::from(other).context(format!("connecting to {url}")),
    })?;
    let (mut sink, mut stream) = socket.split();
    let (answers, mut outgoing) = mpsc::channel::<ClientMessage>(64);
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    let mut ready = false;
    loop {
        tokio::select! {
            message = stream.next() => {
                let text = match message {
                    None | Some(Ok(Message::Close(_))) => return Ok(ready),
                    Some(Err(error)) => return Err(error.into()),
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(_)) => continue,
                };
                match serde_json::from_str::<ServerMessage>(&text) {
                    Ok(ServerMessage::Ready { integration }) => {
                        ready = true;
                        println!("weft dev: tunnel connected; events of `{integration}` now run here");
                    }
                    Ok(ServerMessage::Invoke { id, invocation }) => {
                        let _ = answers.send(ClientMessage::Ack { id: id.clone() }).await;
                        let (local, answers) = (local.clone(), answers.clone());
                        tokio::spawn(async move {
                            let (outcome, logs) = local.run(invocation.to_string().as_bytes()).await;
                            let _ = answers.send(ClientMessage::Outcome { id, outcome, logs }).await;
                        });
                    }
                    Ok(ServerMessage::Pong) => {}
                    Err(error) => eprintln!("weft dev: unreadable message from the server: {error}"),
                }
            }
            Some(answer) = outgoing.recv() => {
                sink.send(Message::Text(serde_json::to_string(&answer)?.into())).await?;
            }
            _ = heartbeat.tick() => {
                sink.send(Message::Text(serde_json::to_string(&ClientMessage::Ping)?.into())).await?;
            }
        }
    }
}

/// Registers `public_url` as the HTTP tunnel and returns the signing key.
async fn register_http(api: &ApiClient, name: &str, public_url: &str, all: bool) -> anyhow::Result<Vec<u8>> {
    let path = format!("/v1/integrations/{name}/dev");
    let body = json!({ "tunnelUrl": public_url, "all": all });
    api.send_json(Method::PUT, &path, &body).await.context("turning dev mode on")?;
    let shown = api.get(&path, &[]).await?;
    shown["signingSecret"].as_str().and_then(crate::dev::secret_key).context("the server did not show a signing secret")
}

/// One event posted by the server: checks its signature, runs it, answers the outcome.
async fn http_event(
    local: Arc<Local>,
    key: Vec<u8>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, axum::Json<Value>) {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok()).unwrap_or_default().to_owned();
    let timestamp = header("webhook-timestamp").parse::<i64>().unwrap_or_default();
    if !crate::dev::verify(&key, &header("webhook-id"), timestamp, &body, &header("webhook-signature")) {
        eprintln!("weft dev: refused a request without a valid signature");
        return (StatusCode::UNAUTHORIZED, axum::Json(json!({ "error": { "code": 401, "message": "bad signature" } })));
    }
    let (mut outcome, logs) = local.run(&body).await;
    if let Some(fields) = outcome.as_object_mut() {
        fields.insert("logs".to_owned(), json!(logs));
    }
    (StatusCode::OK, axum::Json(outcome))
}
