//! Auto-TLS at run time: who makes the serving certificate, when it is
//! renewed, and how replicas share it.
//!
//! - One replica (no elector): generate a CA, publish `<previous CA><new CA>` as the webhook's
//!   caBundle, and once it is written serve a leaf signed by the CA, renewing it with a tenth of
//!   its lifetime left. The CA stays for the life of the process, so renewals never touch the
//!   caBundle and every handshake before and after a renewal is trusted.
//! - Several replicas (`AGENT_INJECT_USE_LEADER_ELECTOR=true`): every replica starts as a
//!   follower serving what the Secret `vault-injector-certs` holds, while it tries to take the
//!   leader-for-life lock. The leader does what a single replica does and also writes each leaf
//!   to the Secret. A new leader chains the previous leader's CA into the caBundle, so the
//!   followers' certificates (signed by it) stay trusted until they pick up the new leaf.
//!
//! - Lease mode (`-leader-election-mode=lease` with the elector): the same roles, elected with
//!   the Lease `vault-k8s-leader` ([`crate::cluster::lease`]). Unlike leader-for-life, leadership can be
//!   lost (renewals failing for 10 s, or another holder seen): the leader then stops at once
//!   (its renewal loop and caBundle keeper are dropped, and no Secret write starts once the
//!   loss is published) and follows the Secret again, serving its last leaf meanwhile (its CA
//!   stays in the new leader's bundle). A follower that gains the Lease leads as above.
//!
//! In every case a certificate signed by a new CA is only served after the caBundle holding
//! that CA has been written (and given [`crate::cluster::webhook::PROPAGATION_DELAY`] to reach the API
//! servers).

use std::time::Duration;

use thiserror::Error;

use crate::cluster::webhook::Keeper;
use crate::cluster::{self, KubeError};
use crate::goparse::parse_duration;
use crate::settings::{LeaderElectionMode, ServerSettings};
use crate::telemetry::logging::HANDLER;
use crate::tls::autotls::{AutoTlsError, LEAF_LIFETIME};
use crate::tls::{self, CertFiles, CertStore, CertWatcher, TlsError};

mod auto;
pub use auto::run;

/// Test-only: overrides the leaf lifetime (a Go duration such as `20s`) so that renewals can be
/// observed in seconds. Never set it in a deployment.
pub const TEST_LEAF_LIFETIME_ENV: &str = "VAULT_INJECTOR_TEST_LEAF_LIFETIME";

/// The shortest lifetime [`TEST_LEAF_LIFETIME_ENV`] accepts.
pub const MIN_TEST_LIFETIME: Duration = Duration::from_secs(5);

/// The certificate source could not start, or auto-TLS stopped for good.
#[derive(Debug, Error)]
pub enum CertManagerError {
    /// Disk mode: the certificate files could not be loaded at startup.
    #[error("Failed to configure TLS: {0}")]
    Files(#[source] TlsError),
    /// Disk mode: a certificate file is configured but no key file.
    #[error(
        "Failed to configure TLS: AGENT_INJECT_TLS_CERT_FILE is set but AGENT_INJECT_TLS_KEY_FILE (-tls-key-file) is empty"
    )]
    NoKeyFile,
    /// The Kubernetes client could not be built.
    #[error(transparent)]
    Kube(#[from] KubeError),
    /// The auto-TLS task ended unexpectedly (a panic).
    #[error("the certificate manager stopped: {0}")]
    Stopped(String),
    /// A certificate could not be generated.
    #[error(transparent)]
    Generate(#[from] AutoTlsError),
    /// The generated certificate could not be loaded into rustls (a bug, or an unusable host).
    #[error(transparent)]
    Load(#[from] TlsError),
    /// The leader lock could not be taken after every retry.
    #[error("Shutting down due to error: {0}")]
    Election(#[source] KubeError),
    /// Lease mode: the election task stopped (a panic).
    #[error("Shutting down due to error: the Lease election stopped")]
    LeaseElection,
    /// The test lifetime setting is unreadable.
    #[error("{TEST_LEAF_LIFETIME_ENV}: {0}")]
    TestLifetime(String),
}

/// What auto-TLS needs from the settings and the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoTlsConfig {
    /// `-tls-auto`: the MutatingWebhookConfiguration whose caBundle is managed (empty: none).
    pub webhook: String,
    /// `-tls-auto-hosts`.
    pub hosts: Vec<String>,
    /// Leaf lifetime: 24 h, or the test override.
    pub lifetime: Duration,
    /// `-use-leader-elector`.
    pub elector: bool,
    /// `-leader-election-mode` (used with the elector).
    pub mode: LeaderElectionMode,
    /// `$POD_NAME` (the elector's own Pod).
    pub pod_name: String,
    /// `$NAMESPACE`, else `default`: where the certificate Secret lives.
    pub namespace: String,
    /// Where the leader lock lives (the service account's namespace).
    pub lock_namespace: String,
}

impl AutoTlsConfig {
    /// Reads the settings and the `NAMESPACE`, `POD_NAME` and test-lifetime variables.
    pub fn from_env(
        server: &ServerSettings,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, CertManagerError> {
        let lifetime = match env(TEST_LEAF_LIFETIME_ENV).filter(|v| !v.is_empty()) {
            None => LEAF_LIFETIME,
            Some(v) => {
                let nanos = parse_duration(&v)
                    .map_err(|e| CertManagerError::TestLifetime(e.to_string()))?;
                let d = Duration::from_nanos(u64::try_from(nanos).unwrap_or(0));
                if d < MIN_TEST_LIFETIME {
                    return Err(CertManagerError::TestLifetime(format!(
                        "{v:?} is shorter than {MIN_TEST_LIFETIME:?}"
                    )));
                }
                d
            }
        };
        Ok(Self {
            webhook: server.tls_auto.clone(),
            hosts: server.tls_auto_hosts.clone(),
            lifetime,
            elector: server.use_leader_elector,
            mode: server.leader_election_mode,
            pod_name: env("POD_NAME").unwrap_or_default(),
            namespace: env("NAMESPACE")
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "default".to_owned()),
            lock_namespace: cluster::lock_namespace(),
        })
    }
}

/// Where the serving certificate comes from, with the tasks that keep it current (stopped on
/// drop): disk mode's file watcher (and, when `-tls-auto` and a CA file are set, the caBundle
/// keeper for that CA), or auto mode's certificate manager.
#[derive(Debug)]
pub struct CertSource {
    _watcher: Option<CertWatcher>,
    _ca_file_task: Option<AbortOnDrop<()>>,
    manager: Option<AbortOnDrop<Result<(), CertManagerError>>>,
}

/// A task aborted when its handle is dropped.
#[derive(Debug)]
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl CertSource {
    /// Chooses the mode as upstream (disk when `-tls-cert-file` is set, otherwise auto) and
    /// starts it. Disk mode loads the files now (an error stops the startup) and serves at
    /// once; auto mode builds the Kubernetes client and starts generating in the background:
    /// wait for [`CertSource::first_certificate`] before listening.
    pub async fn start(
        server: &ServerSettings,
        store: &CertStore,
    ) -> Result<Self, CertManagerError> {
        if !server.tls_cert_file.is_empty() {
            if server.tls_key_file.is_empty() {
                return Err(CertManagerError::NoKeyFile);
            }
            let files = CertFiles::new(&server.tls_cert_file, &server.tls_key_file);
            store.set(files.load().map_err(CertManagerError::Files)?);
            let watcher = tls::watch(store.clone(), files);
            let ca_file_task = if !server.tls_auto.is_empty() && !server.tls_ca_cert_file.is_empty()
            {
                let client = cluster::client().await?;
                let keeper = Keeper::start(client, server.tls_auto.clone());
                let path = server.tls_ca_cert_file.clone();
                Some(AbortOnDrop(tokio::spawn(publish_ca_file(keeper, path))))
            } else {
                None
            };
            return Ok(Self {
                _watcher: Some(watcher),
                _ca_file_task: ca_file_task,
                manager: None,
            });
        }
        let client = cluster::client().await?;
        let config = AutoTlsConfig::from_env(server, &|name| std::env::var(name).ok())?;
        Ok(Self {
            _watcher: None,
            _ca_file_task: None,
            manager: Some(AbortOnDrop(tokio::spawn(run(
                client,
                config,
                store.clone(),
            )))),
        })
    }

    /// Returns once `store` holds a certificate, or with the error that stopped auto-TLS first.
    pub async fn first_certificate(&mut self, store: &CertStore) -> Result<(), CertManagerError> {
        let Some(manager) = self.manager.as_mut() else {
            return Ok(());
        };
        tokio::select! {
            biased;
            () = store.loaded() => Ok(()),
            result = &mut manager.0 => Err(stopped(result)),
        }
    }

    /// Waits for a fatal error of auto-TLS (for ever in disk mode).
    pub async fn failed(&mut self) -> CertManagerError {
        match self.manager.as_mut() {
            Some(manager) => stopped((&mut manager.0).await),
            None => std::future::pending().await,
        }
    }
}

fn stopped(
    result: Result<Result<(), CertManagerError>, tokio::task::JoinError>,
) -> CertManagerError {
    match result {
        Ok(Err(e)) => e,
        Ok(Ok(())) => CertManagerError::Stopped("ended".to_owned()),
        Err(e) => CertManagerError::Stopped(e.to_string()),
    }
}

/// Disk mode with `-tls-auto` and a CA file: the caBundle is the CA file's content, re-read
/// every 5 s (the file is not watched, as upstream).
async fn publish_ca_file(keeper: Keeper, path: String) {
    let mut last: Option<Vec<u8>> = None;
    loop {
        match std::fs::read(&path) {
            Ok(ca) if last.as_ref() != Some(&ca) => {
                keeper.want(ca.clone());
                last = Some(ca);
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(target: HANDLER, Path = %path, Error = %e, "error loading next cert")
            }
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn env(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn config_defaults_to_upstreams_lifetime_and_namespace() {
        let mut server = crate::settings::Settings::default().server;
        server.tls_auto = "cfg".into();
        server.tls_auto_hosts = vec!["svc".into()];
        let config = AutoTlsConfig::from_env(&server, &env(&[])).unwrap();
        assert_eq!(config.lifetime, LEAF_LIFETIME);
        assert_eq!(config.namespace, "default");
        assert_eq!(config.webhook, "cfg");
        assert_eq!(config.hosts, ["svc"]);
        assert!(!config.elector);
        assert_eq!(config.mode, LeaderElectionMode::ConfigMap);
        server.leader_election_mode = LeaderElectionMode::Lease;
        server.use_leader_elector = true;
        let config = AutoTlsConfig::from_env(&server, &env(&[])).unwrap();
        assert!(config.elector);
        assert_eq!(config.mode, LeaderElectionMode::Lease);
    }

    #[test]
    fn test_lifetime_is_a_go_duration_with_a_floor() {
        let server = crate::settings::Settings::default().server;
        let config = AutoTlsConfig::from_env(
            &server,
            &env(&[
                (TEST_LEAF_LIFETIME_ENV, "20s"),
                ("NAMESPACE", "vault"),
                ("POD_NAME", "p"),
            ]),
        )
        .unwrap();
        assert_eq!(config.lifetime, Duration::from_secs(20));
        assert_eq!(config.namespace, "vault");
        assert_eq!(config.pod_name, "p");
        for bad in ["1s", "-5m", "soon"] {
            let vars: &'static [(&'static str, &'static str)] =
                Box::leak(Box::new([(TEST_LEAF_LIFETIME_ENV, bad)]));
            let err = AutoTlsConfig::from_env(&server, &env(vars)).unwrap_err();
            assert!(err.to_string().starts_with(TEST_LEAF_LIFETIME_ENV), "{err}");
        }
    }
}
