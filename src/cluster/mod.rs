//! The Kubernetes side of auto-TLS that is not the webhook: the API client, the leader-for-life
//! lock (operator-lib's `leader.Become("vault-k8s-leader")`) and the shared certificate Secret
//! `vault-injector-certs`.
//!
//! Everything here stays inside the RBAC the vault-helm chart grants: configmaps
//! create/get/list/watch/update/delete, secrets create/get/list/watch/update, pods
//! get/delete and nodes get. Nothing is patched except the webhook.

pub mod backoff;
pub mod lease;
pub mod missed;
pub mod namespaces;
pub mod webhook;

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{DeleteParams, PostParams};
use kube::runtime::watcher;
use kube::{Api, Client};
use thiserror::Error;

use crate::cluster::backoff::Backoff;
use crate::telemetry::logging::HANDLER;

/// Name of the leader-for-life lock ConfigMap, shared with upstream so that old and new
/// injectors can run side by side during a migration.
pub const LOCK_NAME: &str = "vault-k8s-leader";

/// Name of the Secret the leader writes its serving certificate to.
pub const CERT_SECRET_NAME: &str = "vault-injector-certs";

/// Where the kubelet mounts the service account's namespace.
pub const SA_NAMESPACE_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/// The wait between two attempts at taking the lock while another Pod holds it: operator-lib's
/// (1 s doubling up to its `maxBackoffInterval` of 16 s, each lengthened by up to 20 %).
pub const LOCK_WAIT: Backoff =
    Backoff::exponential(Duration::from_secs(1), 2.0, Duration::from_secs(16)).lengthened(0.2);

/// A Kubernetes API operation failed.
#[derive(Debug, Error)]
pub enum KubeError {
    /// Neither the in-cluster configuration nor a kubeconfig could be loaded.
    #[error("Error loading in-cluster K8S config: {0}")]
    Config(String),
    /// The client could not be built from the configuration.
    #[error("Error creating K8S client: {0}")]
    Client(#[source] kube::Error),
    /// An API call failed.
    #[error("{what} (API server {server}): {source}")]
    Api {
        /// What was being done.
        what: String,
        /// The API server's address ([`api_server`]).
        server: &'static str,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
    /// `POD_NAME` is empty.
    #[error("required env POD_NAME not set, please configure downward API")]
    NoPodName,
    /// The own Pod has no uid (it always has one once created).
    #[error("pod {0} has no uid")]
    NoPodUid(String),
}

fn api_err(what: impl Into<String>) -> impl FnOnce(kube::Error) -> KubeError {
    let what = what.into();
    move |source| KubeError::Api {
        what,
        server: api_server(),
        source,
    }
}

/// Builds the client: the in-cluster configuration when `KUBERNETES_SERVICE_HOST` is set (the
/// service-account token and CA at the usual path), otherwise the kubeconfig (`KUBECONFIG` or
/// `~/.kube/config`), for running outside a cluster. Logs the API server's address, which
/// [`api_server`] then gives to every log line about a failed API call.
pub async fn client() -> Result<Client, KubeError> {
    let config = if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() {
        kube::Config::incluster().map_err(|e| KubeError::Config(e.to_string()))?
    } else {
        kube::Config::infer()
            .await
            .map_err(|e| KubeError::Config(e.to_string()))?
    };
    let url = config.cluster_url.to_string();
    if API_SERVER.set(url.clone()).is_ok() {
        tracing::info!(target: HANDLER, Server = %url, "Using the Kubernetes API server");
    }
    Client::try_from(config).map_err(KubeError::Client)
}

/// The API server the process talks to, once [`client`] has built a client (empty before).
/// Kept here because kube's `Client` does not say where it connects, and its errors (a refused
/// connection, a timeout) do not either.
static API_SERVER: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// The API server's address, for log lines about failed API calls.
pub fn api_server() -> &'static str {
    API_SERVER.get().map_or("", String::as_str)
}

/// The namespace of the lock: the service account's namespace file, else `$NAMESPACE` (for runs
/// outside a cluster), else `default`.
pub fn lock_namespace() -> String {
    std::fs::read_to_string(SA_NAMESPACE_FILE)
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("NAMESPACE").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "default".to_owned())
}

/// Whether an API error is the given HTTP status.
fn is_status(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(status) if status.code == code)
}

/// Takes the leader-for-life lock for `pod_name` in `namespace`, as operator-lib's `Become`:
/// returns once this Pod owns ConfigMap [`LOCK_NAME`]. While another Pod owns it, waits
/// ([`LOCK_WAIT`]), and clears the way when that owner is gone for good: a Pod `Failed` with
/// reason `Evicted` or `Preempting` is deleted (garbage collection then removes the lock), and
/// a Pod on a Node whose `Ready` condition is not `True` is deleted together with the lock
/// (a node that died leaves its pods in place, so their lock would otherwise never go). The
/// wait also ends as soon as the lock is deleted.
///
/// An unexpected API error ends the attempt; the caller retries.
pub async fn become_leader(
    client: &Client,
    namespace: &str,
    pod_name: &str,
) -> Result<(), KubeError> {
    if pod_name.is_empty() {
        return Err(KubeError::NoPodName);
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let locks: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let own = pods
        .get(pod_name)
        .await
        .map_err(api_err(format!("getting own pod {namespace}/{pod_name}")))?;
    let uid = own
        .metadata
        .uid
        .clone()
        .ok_or_else(|| KubeError::NoPodUid(pod_name.to_owned()))?;

    if let Some(existing) = locks
        .get_opt(LOCK_NAME)
        .await
        .map_err(api_err("getting the leader lock"))?
        && owners(&existing).any(|o| o.name == pod_name)
    {
        tracing::info!(target: HANDLER, Lock = LOCK_NAME, "Found existing lock with my name. I was likely restarted.");
        return Ok(());
    }

    let lock = ConfigMap {
        metadata: ObjectMeta {
            name: Some(LOCK_NAME.to_owned()),
            namespace: Some(namespace.to_owned()),
            owner_references: Some(vec![OwnerReference {
                api_version: "v1".to_owned(),
                kind: "Pod".to_owned(),
                name: pod_name.to_owned(),
                uid,
                ..OwnerReference::default()
            }]),
            ..ObjectMeta::default()
        },
        ..ConfigMap::default()
    };

    // Wakes the wait early when the lock is deleted (garbage collection of a dead leader's
    // lock), so failover does not wait for the next backoff step.
    let mut lock_events = watcher(
        locks.clone(),
        watcher::Config::default().fields(&format!("metadata.name={LOCK_NAME}")),
    )
    .boxed();

    let mut waits = LOCK_WAIT.delays();
    loop {
        match locks.create(&PostParams::default(), &lock).await {
            Ok(_) => {
                tracing::info!(target: HANDLER, Lock = LOCK_NAME, Pod = pod_name, "Became the leader.");
                return Ok(());
            }
            Err(e) if is_status(&e, 409) => {}
            Err(e) => return Err(api_err("creating the leader lock")(e)),
        }
        match locks.get_opt(LOCK_NAME).await {
            // Deleted between our create and this read: try again at once.
            Ok(None) => continue,
            Ok(Some(existing)) => clear_stale_owner(client, &pods, &locks, &existing).await,
            Err(e) => {
                tracing::warn!(target: HANDLER, Error = %e, "could not read the leader lock");
            }
        }
        // LOCK_WAIT has no limit: the schedule never ends.
        let wait = waits.next().unwrap_or(Duration::from_secs(16));
        tracing::info!(target: HANDLER, Lock = LOCK_NAME, Wait = ?wait, "Not the leader. Waiting.");
        let sleep = tokio::time::sleep(wait);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = &mut sleep => break,
                event = lock_events.next() => match event {
                    Some(Ok(watcher::Event::Delete(_))) => break,
                    Some(Ok(_)) => {}
                    // The watch is only a shortcut; without it the backoff still applies.
                    Some(Err(_)) | None => { (&mut sleep).await; break; }
                },
            }
        }
    }
}

fn owners(cm: &ConfigMap) -> impl Iterator<Item = &OwnerReference> {
    cm.metadata
        .owner_references
        .iter()
        .flatten()
        .filter(|o| o.kind == "Pod")
}

/// operator-lib's take-over checks for a lock owned by exactly one other Pod. Failures are
/// logged: the caller waits and looks again.
async fn clear_stale_owner(
    client: &Client,
    pods: &Api<Pod>,
    locks: &Api<ConfigMap>,
    lock: &ConfigMap,
) {
    let owners: Vec<&OwnerReference> = owners(lock).collect();
    let [owner] = owners.as_slice() else {
        return;
    };
    let pod = match pods.get_opt(&owner.name).await {
        Ok(Some(pod)) => pod,
        Ok(None) => {
            tracing::info!(target: HANDLER, Pod = %owner.name, "Leader pod has been deleted, waiting for garbage collection to remove the lock.");
            return;
        }
        Err(e) => {
            tracing::warn!(target: HANDLER, Pod = %owner.name, Error = %e, "could not read the leader pod");
            return;
        }
    };
    let status = pod.status.as_ref();
    let failed = status.and_then(|s| s.phase.as_deref()) == Some("Failed");
    let reason = status.and_then(|s| s.reason.as_deref()).unwrap_or_default();
    if failed
        && matches!(reason, "Evicted" | "Preempting")
        && pod.metadata.deletion_timestamp.is_none()
    {
        tracing::info!(target: HANDLER, Pod = %owner.name, Reason = reason, "Operator pod with leader lock has been evicted.");
        tracing::info!(target: HANDLER, Pod = %owner.name, "Deleting evicted leader.");
        if let Err(e) = pods.delete(&owner.name, &DeleteParams::default()).await {
            tracing::warn!(target: HANDLER, Pod = %owner.name, Error = %e, "could not delete the evicted leader pod");
        }
        return;
    }
    let Some(node_name) = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) else {
        return;
    };
    let nodes: Api<Node> = Api::all(client.clone());
    let node = match nodes.get(node_name).await {
        Ok(node) => node,
        Err(e) => {
            tracing::warn!(target: HANDLER, Node = node_name, Error = %e, "could not read the leader's node");
            return;
        }
    };
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .map(|c| c.status.as_str());
    if ready.is_some_and(|r| r != "True") {
        tracing::info!(target: HANDLER, Pod = %owner.name, Node = node_name, "Leader pod is on a node that is not ready; deleting it and the lock.");
        if let Err(e) = pods.delete(&owner.name, &DeleteParams::default()).await {
            tracing::warn!(target: HANDLER, Pod = %owner.name, Error = %e, "could not delete the leader pod");
            return;
        }
        if let Err(e) = locks.delete(LOCK_NAME, &DeleteParams::default()).await
            && !is_status(&e, 404)
        {
            tracing::warn!(target: HANDLER, Error = %e, "could not delete the leader lock");
        }
    }
}

/// The certificate and key held in the shared Secret.
#[derive(Clone, PartialEq, Eq)]
pub struct SharedCert {
    /// `data.cert`: the leaf, PEM.
    pub cert: Vec<u8>,
    /// `data.key`: its key, PEM.
    pub key: Vec<u8>,
}

impl SharedCert {
    /// Reads `data.cert` and `data.key`; `None` when either is missing.
    pub fn from_secret(secret: &Secret) -> Option<Self> {
        let data = secret.data.as_ref()?;
        Some(Self {
            cert: data.get("cert")?.0.clone(),
            key: data.get("key")?.0.clone(),
        })
    }
}

/// Writes the leader's certificate into the Secret: creates it when missing, otherwise replaces
/// only its `data` (labels and annotations, e.g. the chart's, are kept). Uses update, not
/// patch: the chart's Role grants no patch on secrets.
pub async fn write_cert_secret(
    client: &Client,
    namespace: &str,
    cert: &SharedCert,
) -> Result<(), KubeError> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let data = BTreeMap::from([
        ("cert".to_owned(), ByteString(cert.cert.clone())),
        ("key".to_owned(), ByteString(cert.key.clone())),
    ]);
    match secrets
        .get_opt(CERT_SECRET_NAME)
        .await
        .map_err(api_err("reading the certificate secret"))?
    {
        None => {
            let secret = Secret {
                metadata: ObjectMeta {
                    name: Some(CERT_SECRET_NAME.to_owned()),
                    namespace: Some(namespace.to_owned()),
                    ..ObjectMeta::default()
                },
                data: Some(data),
                ..Secret::default()
            };
            secrets
                .create(&PostParams::default(), &secret)
                .await
                .map_err(api_err("creating the certificate secret"))?;
        }
        Some(mut secret) => {
            secret.data = Some(data);
            secret.string_data = None;
            secrets
                .replace(CERT_SECRET_NAME, &PostParams::default(), &secret)
                .await
                .map_err(api_err("updating the certificate secret"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn the_lock_wait_doubles_to_sixteen_seconds_plus_at_most_a_fifth() {
        let mut base = 1.0_f64;
        for d in LOCK_WAIT.delays().take(8) {
            let d = d.as_secs_f64();
            assert!(d >= base && d < base * 1.2, "{d} vs {base}");
            base = (base * 2.0).min(16.0);
        }
    }

    #[test]
    fn shared_cert_needs_both_keys() {
        let mut secret = Secret::default();
        assert!(SharedCert::from_secret(&secret).is_none());
        secret.data = Some(BTreeMap::from([(
            "cert".to_owned(),
            ByteString(b"c".to_vec()),
        )]));
        assert!(SharedCert::from_secret(&secret).is_none());
        secret
            .data
            .as_mut()
            .unwrap()
            .insert("key".to_owned(), ByteString(b"k".to_vec()));
        let shared = SharedCert::from_secret(&secret).unwrap();
        assert_eq!(
            (shared.cert.as_slice(), shared.key.as_slice()),
            (b"c".as_slice(), b"k".as_slice())
        );
    }
}
