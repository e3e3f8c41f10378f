//! Each integration's and installation's share of the instance pool.
//!
//! The runtime's pool is one semaphore for the whole server; in front of it every event
//! takes a permit of its installation and of its integration, so one tenant holding its
//! whole share still leaves the rest of the pool to the others. Past a short wait the
//! event is refused for that tenant only.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The semaphores of the tenants that have events running or waiting.
pub struct Slots {
    cpu_turns: u32,
    integration_share: u32,
    installation_share: u32,
    wait: Duration,
    held: Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
}

/// An integration or installation already runs its whole share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("this {scope} already runs its {share} concurrent events; retry shortly")]
pub struct Saturated {
    /// Whose share is full: `integration` or `installation`.
    pub scope: &'static str,
    /// The share that is full.
    pub share: u32,
}

/// Held while an event runs; gives its permits back when dropped.
pub struct SlotGuard {
    _leases: [Lease; 2],
    turns: Lease,
}

impl SlotGuard {
    /// The CPU turns of the event's integration, shared by its busy guests.
    pub fn cpu_turns(&self) -> Arc<Semaphore> {
        self.turns.semaphore.clone()
    }
}

struct Lease {
    key: String,
    semaphore: Arc<Semaphore>,
    permit: Option<OwnedSemaphorePermit>,
    held: Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        drop(self.permit.take());
        let mut held = self.held.lock().expect("slots lock");
        // Only the map and this lease still know the semaphore: nobody runs or waits.
        if Arc::strong_count(&self.semaphore) == 2 {
            held.remove(&self.key);
        }
    }
}

impl Slots {
    /// Shares of a pool: `integration_share` and `installation_share` instances, waiting
    /// at most `wait` for one; `cpu_turns` of an integration's guests compute at once once
    /// they have run a tick.
    pub fn new(integration_share: u32, installation_share: u32, wait: Duration, cpu_turns: u32) -> Self {
        Self { cpu_turns: cpu_turns.max(1), integration_share, installation_share, wait, held: Default::default() }
    }

    /// The share of an integration whose manifest asks for `requested` (if anything).
    pub fn integration_share(&self, requested: Option<u32>) -> u32 {
        requested.map_or(self.integration_share, |r| r.clamp(1, self.integration_share))
    }

    /// Takes a slot of `installation` (if any) and of `integration`, waiting briefly.
    pub async fn acquire(
        &self,
        integration: &str,
        installation: Option<&str>,
        requested: Option<u32>,
    ) -> Result<SlotGuard, Saturated> {
        let integration_share = self.integration_share(requested);
        let installation_share = self.installation_share.min(integration_share);
        // An integration-level event (task, cron) has its own share beside the installations'.
        let installation_key = match installation {
            Some(id) => format!("inst:{id}:{installation_share}"),
            None => format!("itg-own:{integration}:{installation_share}"),
        };
        let integration_key = format!("itg:{integration}:{integration_share}");
        let first = self.semaphore(installation_key, installation_share);
        let second = self.semaphore(integration_key, integration_share);
        let acquired = tokio::time::timeout(self.wait, async {
            let a = first.semaphore.clone().acquire_owned().await.ok()?;
            let b = second.semaphore.clone().acquire_owned().await.ok()?;
            Some((a, b))
        })
        .await;
        let mut leases = [first, second];
        match acquired {
            Ok(Some((a, b))) => {
                leases[0].permit = Some(a);
                leases[1].permit = Some(b);
                let turns = self.semaphore(format!("cpu:{integration}"), self.cpu_turns);
                Ok(SlotGuard { _leases: leases, turns })
            }
            _ => Err(if leases[0].semaphore.available_permits() == 0 {
                Saturated {
                    scope: if installation.is_some() { "installation" } else { "integration" },
                    share: installation_share,
                }
            } else {
                Saturated { scope: "integration", share: integration_share }
            }),
        }
    }

    fn semaphore(&self, key: String, share: u32) -> Lease {
        let semaphore = self
            .held
            .lock()
            .expect("slots lock")
            .entry(key.clone())
            .or_insert_with(|| Arc::new(Semaphore::new(share as usize)))
            .clone();
        Lease { key, semaphore, permit: None, held: self.held.clone() }
    }

    /// How many events of `integration` hold a slot of its share now.
    pub fn running(&self, integration: &str) -> u32 {
        let prefix = format!("itg:{integration}:");
        let held = self.held.lock().expect("slots lock");
        held.iter()
            .filter_map(|(key, semaphore)| {
                let share: usize = key.strip_prefix(&prefix)?.parse().ok()?;
                Some(share.saturating_sub(semaphore.available_permits()) as u32)
            })
            .sum()
    }

    /// How many tenants have events running or waiting (for tests of the bookkeeping).
    pub fn tracked(&self) -> usize {
        self.held.lock().expect("slots lock").len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_share_refuses_that_tenant_only_and_forgets_idle_ones() {
        let slots = Slots::new(2, 1, Duration::from_millis(20), 1);
        let a1 = slots.acquire("itg_a", Some("inst_1"), None).await.unwrap();
        assert_eq!(
            slots.acquire("itg_a", Some("inst_1"), None).await.err(),
            Some(Saturated { scope: "installation", share: 1 })
        );
        let a2 = slots.acquire("itg_a", Some("inst_2"), None).await.unwrap();
        assert_eq!(
            slots.acquire("itg_a", Some("inst_3"), None).await.err(),
            Some(Saturated { scope: "integration", share: 2 })
        );
        let b = slots.acquire("itg_b", Some("inst_4"), None).await.expect("another integration finds a slot");
        drop((a1, a2, b));
        assert_eq!(slots.tracked(), 0);
        assert!(slots.acquire("itg_a", Some("inst_3"), None).await.is_ok());
    }

    #[tokio::test]
    async fn a_manifest_may_ask_for_a_smaller_share_never_a_larger_one() {
        let slots = Slots::new(4, 4, Duration::from_millis(20), 1);
        assert_eq!(slots.integration_share(Some(1)), 1);
        assert_eq!(slots.integration_share(Some(100)), 4);
        let _held = slots.acquire("itg_a", None, Some(1)).await.unwrap();
        assert_eq!(
            slots.acquire("itg_a", None, Some(1)).await.err(),
            Some(Saturated { scope: "integration", share: 1 })
        );
    }
}
