//! The Namespace cache behind `-namespace-defaults` (beyond upstream): a reflector over the Namespaces' metadata, so the admission path reads memory and never calls
//! the API. Needs `get`, `list` and `watch` on `namespaces` (cluster-wide).
//!
//! Until the first list has completed, [`NamespaceCache::lookup`] answers
//! [`NamespaceDefaults::NotSynced`] and the webhook refuses to inject (the pod's controller, or
//! the user, retries): injecting without defaults the pod may rely on (its role, its CA) would
//! give it a broken agent instead. The merge itself is pure, in `crate::ns_defaults`.

use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt as _, watcher};
use tokio::sync::watch;

use crate::admission::NamespaceDefaults;
use crate::telemetry::logging::HANDLER;

/// A watch-backed, read-only view of every Namespace's metadata.
#[derive(Clone)]
pub struct NamespaceCache {
    store: Store<PartialObjectMeta<Namespace>>,
    /// Whether the first list has completed. A channel rather than the store's own readiness
    /// future, which wakes only the last task that polled it.
    synced: watch::Receiver<bool>,
}

impl std::fmt::Debug for NamespaceCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NamespaceCache")
            .field("synced", &self.is_synced())
            .finish_non_exhaustive()
    }
}

impl NamespaceCache {
    /// Starts the watch on the current tokio runtime; it runs (retrying with backoff on
    /// errors) for the life of the process. Returns at once: see [`Self::lookup`].
    pub fn start(client: Client) -> Self {
        let (store, writer) = reflector::store();
        let (synced_tx, synced) = watch::channel(false);
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
        tokio::spawn(async move {
            // The receivers keep reading `true` once the sender is gone.
            if ready.wait_until_ready().await.is_ok() {
                synced_tx.send_replace(true);
                tracing::info!(target: HANDLER, "Namespace cache synced (namespace defaults active)");
            }
        });
        Self { store, synced }
    }

    /// Whether the first list has completed.
    pub fn is_synced(&self) -> bool {
        *self.synced.borrow()
    }

    /// Waits up to `timeout` for the first list, so that the webhook does not start by refusing.
    pub async fn wait_synced(&self, timeout: Duration) -> bool {
        let mut synced = self.synced.clone();
        let _ = tokio::time::timeout(timeout, synced.wait_for(|s| *s)).await;
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
