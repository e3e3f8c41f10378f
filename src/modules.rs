//! Prepared modules, cached per integration version.
//!
//! A module is compiled once, at publish, and its machine code stored beside it; every
//! other process (a restart, another replica) only deserializes it. Versions are immutable,
//! so a cached entry never goes stale: a new publish is a new key. Each process also keeps
//! the machine code as files in its artifact directory, which it maps instead of reading
//! from the database. The cache in memory holds at most `--module-cache-bytes` of machine
//! code: past it the least recently used modules are dropped (reloading one from its file
//! is a map, about a millisecond; see the restart bench).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use sha2::{Digest, Sha256};
use weft_runtime::{PreparedModule, Runtime, ValidationError};

use crate::store::{ModuleFacts, Store, StoreError};

/// A module compiled at publish time.
pub struct CompiledModule {
    /// Ready to run.
    pub module: PreparedModule,
    /// Its serialized machine code, for storage.
    pub artifact: Vec<u8>,
    /// Hex SHA-256 of the wasm bytes.
    pub sha256: String,
}

/// What publish found of a compiled module, as stored with its version.
pub fn module_facts(module: &PreparedModule) -> ModuleFacts {
    ModuleFacts {
        abi: i64::from(module.abi_version()),
        snapshot: module.snapshot().taken(),
        snapshot_reason: module.snapshot().reason().map(str::to_owned),
    }
}

/// What publish, `weft check` and the versions list say of a module: `{"abi":2,"snapshot":true}`,
/// or `{"abi":…,"snapshot":false,"snapshotReason":"…"}` when it runs as published.
pub fn module_report(facts: &ModuleFacts) -> serde_json::Value {
    let mut report = serde_json::json!({ "abi": facts.abi, "snapshot": facts.snapshot });
    if let Some(reason) = &facts.snapshot_reason {
        report["snapshotReason"] = serde_json::json!(reason);
    }
    report
}

/// Evaluates a JavaScript bundle in weft's engine and snapshots it: the module to run and
/// the snapshot's wasm. The error, for the publisher, names what is wrong and its line.
pub fn compile_javascript(runtime: &Runtime, source: &[u8]) -> Result<(PreparedModule, Vec<u8>), String> {
    let script = runtime.compile_script(source).map_err(|e| format!("script ({}): {e}", e.kind.as_str()))?;
    Ok((script.module, script.wasm))
}

/// Why a stored module could not be made ready.
#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    /// The version does not exist.
    #[error("integration `{0}` has no version {1}")]
    Missing(String, i64),
    /// The stored module no longer compiles (it should have been refused at publish).
    #[error("stored module does not compile: {0}")]
    Invalid(#[from] ValidationError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Prepared modules by `(integration id, version)`: an id is never reused, so a name taken
/// again after an unpublish never finds its predecessor's module here.
pub struct ModuleCache {
    runtime: Arc<Runtime>,
    store: Store,
    prepared: RwLock<Prepared>,
    /// Ticks on every lookup: an entry's `last_used` orders evictions.
    clock: AtomicU64,
    files: Option<ArtifactFiles>,
}

/// The modules in memory and the bytes of machine code they hold.
struct Prepared {
    entries: HashMap<(String, i64), Entry>,
    bytes: u64,
    max_bytes: u64,
}

struct Entry {
    module: PreparedModule,
    /// Size of its machine code (the serialized artifact).
    bytes: u64,
    last_used: AtomicU64,
}

impl Prepared {
    /// Adds a module, then drops the least recently used others until the cache fits (the
    /// newest always stays, however big).
    fn insert(&mut self, key: (String, i64), module: PreparedModule, bytes: u64, now: u64) {
        let entry = Entry { module, bytes, last_used: AtomicU64::new(now) };
        if let Some(old) = self.entries.insert(key.clone(), entry) {
            self.bytes -= old.bytes;
        }
        self.bytes += bytes;
        while self.bytes > self.max_bytes && self.entries.len() > 1 {
            let oldest = self
                .entries
                .iter()
                .filter(|(k, _)| **k != key)
                .min_by_key(|(_, e)| e.last_used.load(Ordering::Relaxed))
                .map(|(k, _)| k.clone());
            let Some(oldest) = oldest else { break };
            if let Some(evicted) = self.entries.remove(&oldest) {
                self.bytes -= evicted.bytes;
            }
        }
    }
}

impl ModuleCache {
    /// An empty cache holding at most `max_bytes` of machine code; with `artifact_dir`,
    /// compiled modules are also kept there as files.
    pub fn new(runtime: Arc<Runtime>, store: Store, artifact_dir: Option<PathBuf>, max_bytes: u64) -> Self {
        let prepared = Prepared { entries: HashMap::new(), bytes: 0, max_bytes };
        Self {
            runtime,
            store,
            prepared: RwLock::new(prepared),
            clock: AtomicU64::new(0),
            files: artifact_dir.map(ArtifactFiles),
        }
    }

    /// How many modules are in memory, and the bytes of their machine code.
    pub fn usage(&self) -> (usize, u64) {
        let prepared = self.prepared.read().expect("module cache lock");
        (prepared.entries.len(), prepared.bytes)
    }

    fn remember(&self, key: (String, i64), module: PreparedModule, bytes: usize) {
        let now = self.clock.fetch_add(1, Ordering::Relaxed);
        self.prepared.write().expect("module cache lock").insert(key, module, bytes as u64, now);
    }

    /// Validates and compiles `wasm` off the async executor (compiling is CPU-bound).
    pub async fn compile(&self, wasm: Arc<Vec<u8>>) -> Result<CompiledModule, ValidationError> {
        let runtime = self.runtime.clone();
        tokio::task::spawn_blocking(move || {
            let module = runtime.compile(&wasm)?;
            let artifact = module.serialize().map_err(|e| ValidationError::Compile(e.to_string()))?;
            Ok(CompiledModule { module, artifact, sha256: hex::encode(Sha256::digest(wasm.as_slice())) })
        })
        .await
        .expect("compile task panicked")
    }

    /// Evaluates a JavaScript bundle in weft's engine and snapshots it, off the async
    /// executor: the module compiled from the snapshot, and the snapshot's wasm (what the
    /// version stores as its module). The error names what is wrong and where, for the
    /// publisher.
    pub async fn compile_script(&self, source: Arc<String>) -> Result<(CompiledModule, Vec<u8>), String> {
        let runtime = self.runtime.clone();
        tokio::task::spawn_blocking(move || {
            let (module, wasm) = compile_javascript(&runtime, source.as_bytes())?;
            let artifact = module.serialize().map_err(|e| format!("script: {e}"))?;
            let sha256 = hex::encode(Sha256::digest(wasm.as_slice()));
            Ok((CompiledModule { module, artifact, sha256 }, wasm))
        })
        .await
        .expect("compile task panicked")
    }

    /// Remembers a module just published (and keeps its artifact file).
    pub async fn insert(&self, integration_id: &str, version: i64, compiled: CompiledModule) {
        let bytes = compiled.artifact.len();
        if let Some(files) = &self.files {
            files.write(&compiled.sha256, compiled.artifact).await;
        }
        self.remember((integration_id.to_owned(), version), compiled.module, bytes);
    }

    /// The prepared module of a version: from memory, else from its artifact file, else
    /// from its stored artifact, else (artifact missing or made by another engine)
    /// compiled again and re-stored.
    pub async fn get(&self, integration_id: &str, version: i64) -> Result<PreparedModule, ModuleError> {
        let key = (integration_id.to_owned(), version);
        if let Some(entry) = self.prepared.read().expect("module cache lock").entries.get(&key) {
            entry.last_used.store(self.clock.fetch_add(1, Ordering::Relaxed), Ordering::Relaxed);
            return Ok(entry.module.clone());
        }
        let started = std::time::Instant::now();
        // The wasm's hash names the artifact file; without an artifact directory it is not needed.
        let sha256 = match &self.files {
            Some(_) => self.store.module_sha256(integration_id, version).await?,
            None => None,
        };
        let mut source = "file";
        let mut loaded = self.load_file(sha256.as_deref()).await;
        if loaded.is_none() {
            source = "database";
            loaded = self.load_stored(integration_id, version, sha256.as_deref()).await?;
        }
        let (module, bytes) = match loaded {
            Some(loaded) => loaded,
            None => {
                tracing::info!(%integration_id, version, "compiling module: no loadable stored artifact");
                source = "compiled";
                let wasm = self
                    .store
                    .module_wasm(integration_id, version)
                    .await?
                    .ok_or_else(|| ModuleError::Missing(integration_id.to_owned(), version))?;
                let compiled = self.compile(Arc::new(wasm)).await?;
                self.store.set_module_artifact(integration_id, version, &compiled.artifact).await?;
                let bytes = compiled.artifact.len();
                if let Some(files) = &self.files {
                    files.write(&compiled.sha256, compiled.artifact).await;
                }
                (compiled.module, bytes)
            }
        };
        tracing::debug!(%integration_id, version, source, took_us = started.elapsed().as_micros() as u64, "module ready");
        self.remember(key, module.clone(), bytes);
        Ok(module)
    }

    /// The module from the artifact file of the wasm with this hash, when there is a loadable
    /// one, and the file's size.
    async fn load_file(&self, sha256: Option<&str>) -> Option<(PreparedModule, usize)> {
        let (Some(files), Some(sha256)) = (&self.files, sha256) else { return None };
        let path = files.path(sha256);
        let runtime = self.runtime.clone();
        let loaded = tokio::task::spawn_blocking(move || {
            let bytes = std::fs::metadata(&path).ok()?.len() as usize;
            Some(runtime.load_file(&path).map(|module| (module, bytes)))
        })
        .await
        .expect("artifact load panicked");
        match loaded? {
            Ok(loaded) => Some(loaded),
            Err(e) => {
                // Another engine's file, or a damaged one: the database's copy replaces it.
                tracing::info!(%sha256, error = %e, "artifact file not loadable");
                None
            }
        }
    }

    /// The module from the artifact stored in the database (kept as a file for next time).
    async fn load_stored(
        &self,
        integration_id: &str,
        version: i64,
        sha256: Option<&str>,
    ) -> Result<Option<(PreparedModule, usize)>, ModuleError> {
        let Some(artifact) = self.store.module_artifact(integration_id, version).await? else { return Ok(None) };
        let Ok(module) = self.runtime.load(&artifact) else { return Ok(None) };
        let bytes = artifact.len();
        if let (Some(files), Some(sha256)) = (&self.files, sha256) {
            files.write(sha256, artifact).await;
        }
        Ok(Some((module, bytes)))
    }
}

/// Compiled modules as files named by their wasm's SHA-256, so that a restart maps them
/// instead of reading them out of the database. Content-addressed, hence never stale; a
/// file made by another engine fails to load and is replaced.
struct ArtifactFiles(PathBuf);

impl ArtifactFiles {
    fn path(&self, sha256: &str) -> PathBuf {
        self.0.join(format!("{sha256}.cwasm"))
    }

    /// Writes atomically (a temporary file renamed into place): a mapped file is never
    /// changed under a running module. A failure only costs the next restart a read.
    async fn write(&self, sha256: &str, artifact: Vec<u8>) {
        let (dir, path) = (self.0.clone(), self.path(sha256));
        let written = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            std::fs::create_dir_all(&dir)?;
            let temporary = dir.join(format!(".{}.tmp", crate::ids::random("", 12)));
            std::fs::write(&temporary, &artifact)?;
            std::fs::rename(&temporary, &path)
        })
        .await
        .expect("artifact write panicked");
        if let Err(e) = written {
            tracing::warn!(dir = %self.0.display(), error = %e, "could not keep a compiled module on disk");
        }
    }
}
