//! Reads shared by concurrent callers and never reused: a request's API token, and where an
//! event goes (its organization, installations in scope and application routes), are read per
//! request, but requests with the same token, or events of one organization, that arrive
//! together share the read.
//!
//! A caller joins only a read that starts after it asked; while a read of the same key runs,
//! new callers wait for the next one. So each caller sees every change committed before it
//! asked — exactly what a read of its own would show, so a token revoked, or a webhook deleted
//! or disabled, before a request arrives never serves it — and nothing is kept once answered.
//! On PostgreSQL this saves a statement (and its round trip and row decoding) per request that
//! arrives while another's read of the same thing is running.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::{DeliveryRoute, Result, ScopedInstallation, Store, StoreError, TokenRecord};

type Answer<V> = std::result::Result<Arc<V>, Arc<StoreError>>;
/// By key, the callers of the read after the running one; a key is present while its reader runs.
type Waiting<K, V> = Mutex<HashMap<K, Vec<oneshot::Sender<Answer<V>>>>>;

/// The reads of one kind in flight, by key.
pub(super) struct SharedReads<K, V> {
    waiting: Arc<Waiting<K, V>>,
}

impl<K, V> Default for SharedReads<K, V> {
    fn default() -> Self {
        Self { waiting: Arc::default() }
    }
}

impl<K, V> Clone for SharedReads<K, V> {
    fn clone(&self) -> Self {
        Self { waiting: self.waiting.clone() }
    }
}

impl<K: Hash + Eq + Clone + Send + Sync + 'static, V: Send + Sync + 'static> SharedReads<K, V> {
    /// `read()`'s answer, from a read that starts after this call.
    async fn get<F, Fut>(&self, key: K, read: F) -> Result<Arc<V>>
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = Result<V>> + Send + 'static,
    {
        let (caller, answer) = oneshot::channel();
        let first = {
            let mut waiting = self.waiting.lock().expect("never poisoned: no panic while held");
            match waiting.get_mut(&key) {
                Some(next) => {
                    next.push(caller);
                    None
                }
                None => {
                    waiting.insert(key.clone(), Vec::new());
                    Some(caller)
                }
            }
        };
        if let Some(first) = first {
            // The reader is a task of its own, so a caller that goes away (a client that
            // disconnects) cannot strand the others.
            tokio::spawn(reader(self.waiting.clone(), key, first, read));
        }
        match answer.await {
            Ok(answer) => answer.map_err(StoreError::Shared),
            Err(_) => Err(StoreError::Sql(sqlx::Error::WorkerCrashed)),
        }
    }
}

/// Reads for `first`, then for whoever asked meanwhile, until nobody did.
async fn reader<K: Hash + Eq, V, F, Fut>(
    waiting: Arc<Waiting<K, V>>,
    key: K,
    first: oneshot::Sender<Answer<V>>,
    read: F,
) where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<V>>,
{
    // Should the read panic, the key is freed and its waiting callers get an error.
    struct Release<'a, K: Hash + Eq, V>(&'a Waiting<K, V>, &'a K);
    impl<K: Hash + Eq, V> Drop for Release<'_, K, V> {
        fn drop(&mut self) {
            if std::thread::panicking()
                && let Ok(mut waiting) = self.0.lock()
            {
                waiting.remove(self.1);
            }
        }
    }
    let _release = Release(&waiting, &key);
    let mut callers = vec![first];
    loop {
        let answer = read().await.map(Arc::new).map_err(Arc::new);
        for caller in callers {
            let _ = caller.send(answer.clone());
        }
        let mut map = waiting.lock().expect("never poisoned: no panic while held");
        let next = map.get_mut(&key).map(std::mem::take).unwrap_or_default();
        if next.is_empty() {
            map.remove(&key);
            return;
        }
        callers = next;
    }
}

/// Which organization's installations an event reaches: the organization, and the event's
/// space and site.
pub(super) type ScopeKey = (String, Option<String>, Option<String>);

impl Store {
    /// [`Store::token`], shared with concurrent callers (see the module's doc).
    pub async fn shared_token(&self, token_hash: &str) -> Result<Arc<Option<TokenRecord>>> {
        let store = self.clone();
        let hash = token_hash.to_owned();
        self.token_reads
            .get(token_hash.to_owned(), move || {
                let (store, hash) = (store.clone(), hash.clone());
                async move { store.token(&hash).await }
            })
            .await
    }

    /// [`Store::delivery_routes`], shared with concurrent callers (see the module's doc).
    pub async fn shared_delivery_routes(&self, org_id: &str, backlog_cap: i64) -> Result<Arc<Vec<DeliveryRoute>>> {
        let store = self.clone();
        let org = org_id.to_owned();
        self.route_reads
            .get(org_id.to_owned(), move || {
                let (store, org) = (store.clone(), org.clone());
                async move { store.delivery_routes(&org, backlog_cap).await }
            })
            .await
    }

    /// [`Store::org_installations_in_scope`], shared with concurrent callers (see the module's
    /// doc).
    pub async fn shared_org_installations_in_scope(
        &self,
        org_id: &str,
        space_id: Option<&str>,
        site_id: Option<&str>,
    ) -> Result<Arc<Option<Vec<ScopedInstallation>>>> {
        let store = self.clone();
        let key: ScopeKey = (org_id.to_owned(), space_id.map(str::to_owned), site_id.map(str::to_owned));
        let scope = key.clone();
        self.scope_reads
            .get(key, move || {
                let (store, (org, space, site)) = (store.clone(), scope.clone());
                async move { store.org_installations_in_scope(&org, space.as_deref(), site.as_deref()).await }
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::sync::Semaphore;

    use super::*;

    /// Callers that ask while a read runs do not get its answer: they share the next read.
    #[tokio::test]
    async fn callers_share_only_a_read_that_starts_after_they_asked() {
        let reads: SharedReads<&'static str, usize> = SharedReads::default();
        let started = Arc::new(AtomicUsize::new(0));
        // Each read waits for one permit, so the test decides when it ends.
        let gate = Arc::new(Semaphore::new(0));
        let read = {
            let (started, gate) = (started.clone(), gate.clone());
            move || {
                let (started, gate) = (started.clone(), gate.clone());
                async move {
                    let number = started.fetch_add(1, Ordering::SeqCst) + 1;
                    gate.acquire().await.expect("open").forget();
                    Ok(number)
                }
            }
        };
        let ask = |reads: &SharedReads<&'static str, usize>| {
            let (reads, read) = (reads.clone(), read.clone());
            tokio::spawn(async move { *reads.get("org", read).await.unwrap() })
        };
        let first = ask(&reads);
        while started.load(Ordering::SeqCst) < 1 {
            tokio::task::yield_now().await;
        }
        let (second, third) = (ask(&reads), ask(&reads));
        while reads.waiting.lock().unwrap().get("org").map(Vec::len) != Some(2) {
            tokio::task::yield_now().await;
        }
        gate.add_permits(2);
        assert_eq!(first.await.unwrap(), 1, "the first caller's own read");
        assert_eq!((second.await.unwrap(), third.await.unwrap()), (2, 2), "a read started after they asked, shared");
        assert_eq!(started.load(Ordering::SeqCst), 2, "two reads for three callers");
        assert!(reads.waiting.lock().unwrap().is_empty(), "nothing is kept once answered");
        let fourth = ask(&reads);
        gate.add_permits(1);
        assert_eq!(fourth.await.unwrap(), 3, "a later caller reads again");
    }
}
