//! The integration and installation behind a public endpoint, cached for the hot path.
//!
//! A request to `…/installations/{id}/fetch` needs both records; reading them from the
//! database on every request costs more than running the module. Entries are dropped as soon
//! as this process writes any integration or installation (the store's catalog generation),
//! and after one second at most, which bounds how long another replica's change takes to
//! show here.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::store::{InstallationRecord, IntegrationRecord, Store, StoreError};

/// How long an entry may serve another replica's stale view.
const FRESH_FOR: Duration = Duration::from_secs(1);
/// Entries kept before the cache starts over (a bound on memory, not a tuning knob).
const MAX_ENTRIES: usize = 100_000;

/// A fetch target: the integration and one of its installations.
pub type Target = (Arc<IntegrationRecord>, Arc<InstallationRecord>);

struct Entry {
    target: Target,
    generation: u64,
    loaded: Instant,
}

/// Cached fetch targets by `(integration, installation id)`.
#[derive(Default)]
pub struct TargetCache {
    entries: RwLock<HashMap<(String, String), Entry>>,
}

impl TargetCache {
    /// The integration `name` and its installation `id`; `Ok(None)` when either is missing.
    pub async fn get(&self, store: &Store, name: &str, id: &str) -> Result<Option<Target>, StoreError> {
        let generation = store.catalog_generation();
        if let Some(entry) = self.entries.read().expect("target cache lock").get(&(name.to_owned(), id.to_owned()))
            && entry.generation == generation
            && entry.loaded.elapsed() < FRESH_FOR
        {
            return Ok(Some(entry.target.clone()));
        }
        let Some(integration) = store.integration(name).await? else { return Ok(None) };
        let Some(installation) = store.installation(&integration.id, id).await? else { return Ok(None) };
        let target = (Arc::new(integration), Arc::new(installation));
        let mut entries = self.entries.write().expect("target cache lock");
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(
            (name.to_owned(), id.to_owned()),
            Entry { target: target.clone(), generation, loaded: Instant::now() },
        );
        Ok(Some(target))
    }
}
