//! Auto mode's roles: the leader (or single replica) makes the CA and the leaves and publishes
//! them; a follower serves what the leader wrote to the Secret. See the parent module for who
//! takes which role when.

use std::time::Duration;

use backon::Retryable as _;
use futures::StreamExt as _;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Api, Client};
use time::OffsetDateTime;
use tokio::sync::watch;

use super::{AbortOnDrop, AutoTlsConfig, CertManagerError, TEST_LEAF_LIFETIME_ENV};
use crate::cluster::backoff::Backoff;
use crate::cluster::lease;
use crate::cluster::webhook::{self, Keeper};
use crate::cluster::{self, CERT_SECRET_NAME, KubeError, SharedCert};
use crate::settings::LeaderElectionMode;
use crate::telemetry::logging::HANDLER;
use crate::tls::autotls::{self, Ca, LEAF_LIFETIME};
use crate::tls::{CertFiles, CertStore};

/// Taking the leader lock after an API error: upstream's schedule (0.5 s, ×1.5, ±50 %, the
/// delay capped at 30 s), ten attempts in all before the injector gives up.
const ELECTION_RETRY: Backoff = Backoff::exponential(Duration::from_millis(500), 1.5, HALF_MINUTE)
    .spread(0.5)
    .retries(9);

/// Writing a new leaf to the Secret: 0.5 s, ×1.5, capped at 30 s, until the next renewal is
/// due (the followers keep serving the previous leaf meanwhile, which is still valid).
const SHARE_RETRY: Backoff = Backoff::exponential(Duration::from_millis(500), 1.5, HALF_MINUTE);

/// Watching the Secret again after an error: 1 s growing to 5 s, short enough that a follower
/// picks up the leader's new leaf soon after the API server is back.
const FOLLOW_RETRY: Backoff = Backoff::exponential(Duration::from_secs(1), 1.5, FIVE_SECONDS);

const HALF_MINUTE: Duration = Duration::from_secs(30);
const FIVE_SECONDS: Duration = Duration::from_secs(5);

/// Runs auto-TLS, filling `store`, until a fatal error. Never returns `Ok`.
pub async fn run(
    client: Client,
    config: AutoTlsConfig,
    store: CertStore,
) -> Result<(), CertManagerError> {
    if config.lifetime != LEAF_LIFETIME {
        tracing::warn!(target: HANDLER, Lifetime = ?config.lifetime, "{TEST_LEAF_LIFETIME_ENV} is set: serving certificates with a test-only lifetime");
    }
    if config.elector && config.mode == LeaderElectionMode::Lease {
        return run_lease(client, config, store).await;
    }
    if config.mode == LeaderElectionMode::Lease {
        tracing::warn!(target: HANDLER, "-leader-election-mode=lease has no effect without -use-leader-elector=true");
    }
    let keeper =
        (!config.webhook.is_empty()).then(|| Keeper::start(client.clone(), config.webhook.clone()));
    if config.elector {
        println!("Using internal leader elector logic for webhook certificate management");
        let election = elect(&client, &config);
        tokio::pin!(election);
        tokio::select! {
            result = &mut election => result?,
            () = follow(&client, &config.namespace, &store) => {}
        }
    }
    lead(&client, &config, &store, keeper.as_ref(), None).await
}

/// Lease mode: follow the Secret while another replica holds the Lease, lead while this one
/// does, for ever. Never returns `Ok`.
async fn run_lease(
    client: Client,
    config: AutoTlsConfig,
    store: CertStore,
) -> Result<(), CertManagerError> {
    println!("Using internal leader elector logic for webhook certificate management (Lease)");
    if config.pod_name.is_empty() {
        return Err(CertManagerError::Election(KubeError::NoPodName));
    }
    let leases: Api<Lease> = Api::namespaced(client.clone(), &config.lock_namespace);
    let (leading_tx, leading) = watch::channel(false);
    let _election = AbortOnDrop(tokio::spawn(lease::run(
        leases,
        config.pod_name.clone(),
        lease::TIMING,
        leading_tx,
    )));
    loop {
        let mut gained = leading.clone();
        let gained = async move { gained.wait_for(|l| *l).await.map(|_| ()) };
        tokio::pin!(gained);
        let result = tokio::select! {
            result = &mut gained => result,
            // The watch stream does not end; if it did, only the Lease may end the wait.
            () = follow(&client, &config.namespace, &store) => gained.await,
        };
        if result.is_err() {
            return Err(CertManagerError::LeaseElection);
        }
        // A keeper per stint: dropping it stops any caBundle write of this replica.
        let keeper = (!config.webhook.is_empty())
            .then(|| Keeper::start(client.clone(), config.webhook.clone()));
        let mut lost = leading.clone();
        tokio::select! {
            biased;
            result = lost.wait_for(|l| !*l) => if result.is_err() { return Err(CertManagerError::LeaseElection) },
            result = lead(&client, &config, &store, keeper.as_ref(), Some(&leading)) => result?,
        }
        drop(keeper);
        tracing::warn!(target: HANDLER, "Stopped managing the certificate; following {CERT_SECRET_NAME} again");
    }
}

/// Takes the leader lock, retrying API errors as upstream ([`ELECTION_RETRY`]).
async fn elect(client: &Client, config: &AutoTlsConfig) -> Result<(), CertManagerError> {
    (|| cluster::become_leader(client, &config.lock_namespace, &config.pod_name))
        .retry(ELECTION_RETRY)
        .sleep(tokio::time::sleep)
        .notify(|e, _| tracing::error!(target: HANDLER, error = %e, "Trouble becoming leader"))
        .await
        .map_err(CertManagerError::Election)
}

/// The leader's (or the single replica's) job: a CA for this process, the caBundle, and a leaf
/// renewed forever.
///
/// With `leading` (Lease mode), nothing is written once it says `false`; the caller drops this
/// future then.
async fn lead(
    client: &Client,
    config: &AutoTlsConfig,
    store: &CertStore,
    keeper: Option<&Keeper>,
    leading: Option<&watch::Receiver<bool>>,
) -> Result<(), CertManagerError> {
    let ca = Ca::generate(OffsetDateTime::now_utc())?;
    tracing::info!(target: HANDLER, "Generated CA");
    if let Some(keeper) = keeper {
        let old = match webhook::current_ca_bundle(client, &config.webhook).await {
            Ok(old) => old,
            Err(e) => {
                tracing::warn!(target: HANDLER, Error = %e, "could not read the previous CA; publishing only the new one");
                Vec::new()
            }
        };
        // The leaf served until now (the Secret's, or this replica's previous one) stays
        // trusted: its CA is kept next to the new one.
        let served = store.current();
        let served = served.as_ref().and_then(|k| k.cert.first());
        let bundle = autotls::bundle_for_new_ca(ca.pem(), &old, served, OffsetDateTime::now_utc());
        if !still_leading(leading) {
            return std::future::pending().await;
        }
        keeper.want(bundle.clone().into_bytes());
        keeper.written(bundle.as_bytes()).await;
    }
    let generated = CertFiles::new("(generated certificate)", "(generated key)");
    loop {
        let leaf = ca.issue_leaf(&config.hosts, OffsetDateTime::now_utc(), config.lifetime)?;
        store.set(generated.parse(leaf.cert_pem.as_bytes(), leaf.key_pem.as_bytes())?);
        tracing::info!(target: HANDLER, NotAfter = %leaf.not_after, "Updated serving certificate");
        let renew = autotls::renew_in(leaf.not_after, config.lifetime, OffsetDateTime::now_utc());
        let due = tokio::time::Instant::now() + renew;
        if config.elector {
            let shared = SharedCert {
                cert: leaf.cert_pem.into_bytes(),
                key: leaf.key_pem.into_bytes(),
            };
            share(client, &config.namespace, &shared, due, leading).await;
        }
        tokio::time::sleep_until(due).await;
    }
}

/// Writes the leaf to the Secret, retrying ([`SHARE_RETRY`]) until it works, this replica
/// stops leading, or the next renewal is due.
async fn share(
    client: &Client,
    namespace: &str,
    shared: &SharedCert,
    due: tokio::time::Instant,
    leading: Option<&watch::Receiver<bool>>,
) {
    let write = move || async move {
        if !still_leading(leading) {
            return Ok(());
        }
        cluster::write_cert_secret(client, namespace, shared)
            .await
            .inspect_err(|e| tracing::error!(target: HANDLER, certSecretName = CERT_SECRET_NAME, Server = %cluster::api_server(), err = %e, "attempt to update cert secret failed"))
    };
    // Every failure is logged above; the last one needs nothing more.
    let _ = write
        .retry(SHARE_RETRY)
        .sleep(tokio::time::sleep)
        .adjust(|_, delay| delay.filter(|d| tokio::time::Instant::now() + *d < due))
        .await;
}

/// Whether this replica may still write (always, without a Lease).
fn still_leading(leading: Option<&watch::Receiver<bool>>) -> bool {
    leading.is_none_or(|rx| *rx.borrow())
}

/// A follower serves whatever the Secret holds, as soon as it changes. Runs until dropped.
async fn follow(client: &Client, namespace: &str, store: &CertStore) {
    tracing::debug!(target: HANDLER, "Currently a follower");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let mut events = watcher(
        secrets,
        watcher::Config::default().fields(&format!("metadata.name={CERT_SECRET_NAME}")),
    )
    .backoff(FOLLOW_RETRY.delays())
    .boxed();
    let source = CertFiles::new(
        format!("secret {namespace}/{CERT_SECRET_NAME} data.cert"),
        format!("secret {namespace}/{CERT_SECRET_NAME} data.key"),
    );
    let mut last: Option<SharedCert> = None;
    while let Some(event) = events.next().await {
        let secret = match event {
            Ok(watcher::Event::Apply(s) | watcher::Event::InitApply(s)) => s,
            Ok(_) => continue,
            // The stream waits FOLLOW_RETRY before it tries again.
            Err(e) => {
                tracing::warn!(target: HANDLER, Server = %cluster::api_server(), Error = %e, "failed to get secret");
                continue;
            }
        };
        let Some(shared) = SharedCert::from_secret(&secret) else {
            continue;
        };
        if last.as_ref() == Some(&shared) {
            continue;
        }
        match source.parse(&shared.cert, &shared.key) {
            Ok(key) => {
                store.set(key);
                tracing::info!(target: HANDLER, "Updated serving certificate from the leader's secret");
            }
            Err(e) => {
                tracing::warn!(target: HANDLER, Error = %e, "Could not load TLS keypair. Trying again...")
            }
        }
        last = Some(shared);
    }
}
