//! The host services one invocation may use: its key-value store, the task queue and
//! outbound HTTP, each scoped to the integration and installation it runs for.

use serde_json::Value;
use weft_runtime::{HostError, HostServices, OutboundRequest, OutboundResponse};

use crate::outbound::AllowedHosts;
use crate::queue;
use crate::state::AppState;
use crate::store::{InstallationRecord, IntegrationRecord};

/// Most keys one installation (or integration) may keep (the contract's limit).
pub const MAX_KV_KEYS: i64 = weft_runtime::abi::limits::MAX_KV_KEYS as i64;
/// Most keys one `kv.list` returns (the contract's limit).
pub const MAX_KV_LIST: i64 = weft_runtime::abi::limits::MAX_KV_LIST as i64;

/// Host services for one invocation.
pub struct GuestHost {
    state: AppState,
    integration_id: String,
    integration: String,
    installation: Option<String>,
    kv_scope: String,
    allowed_hosts: AllowedHosts,
    /// Tasks this invocation has queued, against the per-event quota.
    tasks_queued: std::sync::atomic::AtomicU32,
}

impl GuestHost {
    /// Services for `integration`, on behalf of `installation` when there is one.
    pub fn new(state: &AppState, integration: &IntegrationRecord, installation: Option<&InstallationRecord>) -> Self {
        let kv_scope = match installation {
            Some(installation) => crate::store::installation_scope(&installation.id),
            None => crate::store::integration_scope(&integration.id),
        };
        Self {
            state: state.clone(),
            integration_id: integration.id.clone(),
            integration: integration.name.clone(),
            installation: installation.map(|i| i.id.clone()),
            kv_scope,
            allowed_hosts: AllowedHosts::from_manifest(&integration.manifest),
            tasks_queued: Default::default(),
        }
    }
}

fn storage_failed(error: impl std::fmt::Display) -> HostError {
    tracing::error!(%error, "host storage failed");
    HostError::new("unavailable", "storage is unavailable; try again")
}

#[weft_runtime::async_trait]
impl HostServices for GuestHost {
    async fn kv_get(&self, key: &str) -> Result<Option<Value>, HostError> {
        // The runtime has checked the key, the value and the task against the contract
        // (weft_runtime::abi) before any of these is called.
        let text = self.state.store.kv_get(&self.kv_scope, key).await.map_err(storage_failed)?;
        Ok(text.and_then(|text| serde_json::from_str(&text).ok()))
    }

    async fn kv_set(&self, key: &str, value: Value) -> Result<(), HostError> {
        let text = value.to_string();
        let stored = self.state.store.kv_set(&self.kv_scope, key, &text, MAX_KV_KEYS).await.map_err(storage_failed)?;
        if stored { Ok(()) } else { Err(weft_runtime::abi::too_many_keys().into()) }
    }

    async fn kv_delete(&self, key: &str) -> Result<(), HostError> {
        self.state.store.kv_delete(&self.kv_scope, key).await.map_err(storage_failed)
    }

    async fn kv_list(&self, prefix: &str) -> Result<Vec<String>, HostError> {
        self.state.store.kv_list(&self.kv_scope, prefix, MAX_KV_LIST).await.map_err(storage_failed)
    }

    async fn queue_task(&self, task: Value, schedule_secs: u32) -> Result<(), HostError> {
        let owner = queue::JobOwner {
            integration_id: &self.integration_id,
            integration: &self.integration,
            installation_id: self.installation.as_deref(),
        };
        let job = queue::task_job(owner, task, schedule_secs, None).map_err(|e| HostError::new("bad_request", e))?;
        let per_event = self.state.tenancy.config.max_tasks_per_event;
        if self.tasks_queued.fetch_add(1, std::sync::atomic::Ordering::Relaxed) >= per_event {
            return Err(HostError::new("quota_exceeded", format!("one event may queue at most {per_event} tasks")));
        }
        queue::check_quota(&self.state, &self.integration_id).await.map_err(|error| match error {
            queue::QuotaError::Full(message) => HostError::new("quota_exceeded", message),
            queue::QuotaError::Store(error) => storage_failed(error),
        })?;
        self.state.queue.enqueue(&self.state.store, &[job]).await.map_err(storage_failed)?;
        Ok(())
    }

    async fn fetch(&self, request: OutboundRequest) -> Result<OutboundResponse, HostError> {
        self.state.outbound.fetch(&self.allowed_hosts, request).await
    }
}
