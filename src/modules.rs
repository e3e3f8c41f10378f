//! Prepared modules, cached per integration version.
//!
//! A module is compiled once, at publish, and its machine code stored beside it; every
//! other process (a restart, another replica) only deserializes it. Versions are immutable,
//! so a cached entry never goes stale: a new publish is a new key. Each process also keeps
//! the machine code as files in its artifact directory, which it maps instead of reading
//! from the database.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use sha2::{Digest, Sha256};
use weft_runtime::{PreparedModule, Runtime, ValidationError};

use crate::store::{Store, StoreError};

/// A module compiled at publish time.
pub struct CompiledModule {
    /// Ready to run.
    pub module: PreparedModule,
    /// Its serialized machine code, for storage.
    pub artifact: Vec<u8>,
    /// Hex SHA-256 of the wasm bytes.
    pub sha256: String,
}

/// What publish and `weft check` say of a compiled module: `{"abi":2,"snapshot":true}`, or
/// `{"abi":…,"snapshot":false,"snapshotReason":"…"}` when it runs as published.
pub fn module_report(module: &PreparedModule) -> serde_json::Value {
    let mut report = serde_json::json!({ "abi": module.abi_version(), "snapshot": module.snapshot().taken() });
    if let Some(reason) = module.snapshot().reason() {
        report["snapshotReason"] = serde_json::json!(reason);
    }
    report
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
    prepared: RwLock<HashMap<(String, i64), PreparedModule>>,
    files: Option<ArtifactFiles>,
}

impl ModuleCache {
    /// An empty cache; with `artifact_dir`, compiled modules are also kept there as files.
    pub fn new(runtime: Arc<Runtime>, store: Store, artifact_dir: Option<PathBuf>) -> Self {
        Self { runtime, store, prepared: RwLock::new(HashMap::new()), files: artifact_dir.map(ArtifactFiles) }
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

    /// Remembers a module just published (and keeps its artifact file).
    pub async fn insert(&self, integration_id: &str, version: i64, compiled: CompiledModule) {
        if let Some(files) = &self.files {
            files.write(&compiled.sha256, compiled.artifact).await;
        }
        self.prepared.write().expect("module cache lock").insert((integration_id.to_owned(), version), compiled.module);
    }

    /// The prepared module of a version: from memory, else from its artifact file, else
    /// from its stored artifact, else (artifact missing or made by another engine)
    /// compiled again and re-stored.
    pub async fn get(&self, integration_id: &str, version: i64) -> Result<PreparedModule, ModuleError> {
        let key = (integration_id.to_owned(), version);
        if let Some(module) = self.prepared.read().expect("module cache lock").get(&key) {
            return Ok(module.clone());
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
        let module = match loaded {
            Some(module) => module,
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
                if let Some(files) = &self.files {
                    files.write(&compiled.sha256, compiled.artifact).await;
                }
                compiled.module
            }
        };
        tracing::debug!(%integration_id, version, source, took_us = started.elapsed().as_micros() as u64, "module ready");
        self.prepared.write().expect("module cache lock").insert(key, module.clone());
        Ok(module)
    }

    /// The module from the artifact file of the wasm with this hash, when there is a loadable one.
    async fn load_file(&self, sha256: Option<&str>) -> Option<PreparedModule> {
        let (Some(files), Some(sha256)) = (&self.files, sha256) else { return None };
        let path = files.path(sha256);
        let runtime = self.runtime.clone();
        let loaded = tokio::task::spawn_blocking(move || path.exists().then(|| runtime.load_file(&path)))
            .await
            .expect("artifact load panicked");
        match loaded? {
            Ok(module) => Some(module),
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
    ) -> Result<Option<PreparedModule>, ModuleError> {
        let Some(artifact) = self.store.module_artifact(integration_id, version).await? else { return Ok(None) };
        let Ok(module) = self.runtime.load(&artifact) else { return Ok(None) };
        if let (Some(files), Some(sha256)) = (&self.files, sha256) {
            files.write(sha256, artifact).await;
        }
        Ok(Some(module))
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
