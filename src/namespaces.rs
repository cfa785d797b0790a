//! The Namespace cache behind `-namespace-defaults` (beyond upstream, issue 8 item 5): a
//! reflector over the Namespaces' metadata, so the admission path reads memory and never calls
//! the API. Needs `get`, `list` and `watch` on `namespaces` (cluster-wide).
//!
//! Until the first list has completed, [`NamespaceCache::lookup`] answers
//! [`NamespaceDefaults::NotSynced`] and the webhook refuses to inject (the pod's controller, or
//! the user, retries): injecting without defaults the pod may rely on (its role, its CA) would
//! give it a broken agent instead. The merge itself is pure, in `crate::ns_defaults`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt as _, watcher};

use crate::admission::NamespaceDefaults;
use crate::logging::HANDLER;

/// A watch-backed, read-only view of every Namespace's metadata.
#[derive(Clone)]
pub struct NamespaceCache {
    store: Store<PartialObjectMeta<Namespace>>,
    synced: Arc<AtomicBool>,
}

impl std::fmt::Debug for NamespaceCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NamespaceCache")
            .field("synced", &self.synced.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl NamespaceCache {
    /// Starts the watch on the current tokio runtime; it runs (retrying with backoff on
    /// errors) for the life of the process. Returns at once: see [`Self::lookup`].
    pub fn start(client: Client) -> Self {
        let (store, writer) = reflector::store();
        let synced = Arc::new(AtomicBool::new(false));
        // `Api<PartialObjectMeta<_>>` lists and watches metadata only.
        let api: Api<PartialObjectMeta<Namespace>> = Api::all(client);
        let stream = watcher(api, watcher::Config::default())
            .default_backoff()
            .reflect(writer);
        tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(event) = stream.next().await {
                if let Err(e) = event {
                    tracing::warn!(target: HANDLER, Server = %crate::cluster::api_server(), Error = %e, "namespace watch failed; retrying");
                }
            }
        });
        let ready = store.clone();
        let flag = synced.clone();
        tokio::spawn(async move {
            if ready.wait_until_ready().await.is_ok() {
                flag.store(true, Ordering::Release);
                tracing::info!(target: HANDLER, "Namespace cache synced (namespace defaults active)");
            }
        });
        Self { store, synced }
    }

    /// Whether the first list has completed.
    pub fn is_synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }

    /// Waits up to `timeout` for the first list, so that the webhook does not start by refusing.
    /// Polls the flag: the store's own readiness future wakes only one waiter, the task that
    /// sets the flag.
    pub async fn wait_synced(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while !self.is_synced() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.is_synced()
    }

    /// What the admission core gets for the Namespace `name`.
    pub fn lookup(&self, name: &str) -> NamespaceDefaults {
        if !self.is_synced() {
            return NamespaceDefaults::NotSynced;
        }
        match self.store.get(&ObjectRef::new(name)) {
            None => NamespaceDefaults::Unknown,
            Some(ns) => {
                NamespaceDefaults::Annotations(ns.metadata.annotations.clone().unwrap_or_default())
            }
        }
    }
}
