//! Prepared modules, cached per integration version.
//!
//! A module is compiled once, at publish, and its machine code stored beside it; every
//! other process (a restart, another replica) only deserializes it. Versions are immutable,
//! so a cached entry never goes stale: a new publish is a new key.

use std::collections::HashMap;
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

/// Prepared modules by `(integration, version)`.
pub struct ModuleCache {
    runtime: Arc<Runtime>,
    store: Store,
    prepared: RwLock<HashMap<(String, i64), PreparedModule>>,
}

impl ModuleCache {
    /// An empty cache.
    pub fn new(runtime: Arc<Runtime>, store: Store) -> Self {
        Self { runtime, store, prepared: RwLock::new(HashMap::new()) }
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

    /// Remembers a module just published.
    pub fn insert(&self, integration: &str, version: i64, module: PreparedModule) {
        self.prepared.write().expect("module cache lock").insert((integration.to_owned(), version), module);
    }

    /// The prepared module of a version: from memory, else from its stored artifact, else
    /// (artifact missing or made by another engine) compiled again and re-stored.
    pub async fn get(&self, integration: &str, version: i64) -> Result<PreparedModule, ModuleError> {
        let key = (integration.to_owned(), version);
        if let Some(module) = self.prepared.read().expect("module cache lock").get(&key) {
            return Ok(module.clone());
        }
        let loaded = match self.store.module_artifact(integration, version).await? {
            Some(artifact) => self.runtime.load(&artifact).ok(),
            None => None,
        };
        let module = match loaded {
            Some(module) => module,
            None => {
                tracing::info!(%integration, version, "compiling module: no loadable stored artifact");
                let wasm = self
                    .store
                    .module_wasm(integration, version)
                    .await?
                    .ok_or_else(|| ModuleError::Missing(integration.to_owned(), version))?;
                let compiled = self.compile(Arc::new(wasm)).await?;
                self.store.set_module_artifact(integration, version, &compiled.artifact).await?;
                compiled.module
            }
        };
        self.prepared.write().expect("module cache lock").insert(key, module.clone());
        Ok(module)
    }
}
