//! Keeps `webhooks[0].clientConfig.caBundle` of the MutatingWebhookConfiguration named by
//! `AGENT_INJECT_TLS_AUTO` equal to the CA bundle this injector wants.
//!
//! The keeper wakes when the wanted bundle changes, when the webhook configuration changes
//! (a watch on that one object: someone else overwrote it, or it was re-created), every hour,
//! and after a failure on [`RETRY`]. It patches only when the bundle differs, with upstream's
//! JSON patch.

use std::time::Duration;

use base64::Engine as _;
use futures::StreamExt as _;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use kube::api::{Patch, PatchParams};
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Api, Client};
use thiserror::Error;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::cluster::backoff::Backoff;
use crate::telemetry::logging::HANDLER;

/// The periodic re-check.
pub const RESYNC: Duration = Duration::from_secs(3600);

/// Time given to every API server to see a changed caBundle before a certificate signed by a
/// new CA is served: the API servers read webhook configurations from an informer, so a patch
/// is not in effect the instant it returns.
pub const PROPAGATION_DELAY: Duration = Duration::from_secs(2);

/// After a failed write: 0.5 s, ×1.5, ±50 %, never above a minute, never giving up (a webhook
/// without the right caBundle refuses every pod under `failurePolicy: Fail`, so the keeper
/// keeps trying, but no faster than an API server in trouble can bear).
pub const RETRY: Backoff = Backoff::exponential(Duration::from_millis(500), 1.5, MINUTE)
    .spread(0.5)
    .never_above(MINUTE);

const MINUTE: Duration = Duration::from_secs(60);

/// The caBundle could not be read or written.
#[derive(Debug, Error)]
pub enum WebhookError {
    /// The GET failed.
    #[error("could not get MutatingWebhookConfiguration {name}: {source}")]
    Get {
        /// The configuration's name.
        name: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
    /// The JSON patch failed (for instance because the configuration has no webhooks).
    #[error("Error updating MutatingWebhookConfiguration: {0}")]
    Patch(#[source] kube::Error),
    /// The JSON patch could not be built (it is built from a fixed shape; this cannot happen).
    #[error("could not build the caBundle patch: {0}")]
    BuildPatch(#[from] serde_json::Error),
}

/// The caBundle currently in `webhooks[0]` (empty when there is none).
pub async fn current_ca_bundle(client: &Client, name: &str) -> Result<Vec<u8>, WebhookError> {
    let api: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    let cfg = api.get(name).await.map_err(|source| WebhookError::Get {
        name: name.to_owned(),
        source,
    })?;
    Ok(first_ca_bundle(&cfg).unwrap_or_default())
}

fn first_ca_bundle(cfg: &MutatingWebhookConfiguration) -> Option<Vec<u8>> {
    cfg.webhooks
        .as_ref()?
        .first()?
        .client_config
        .ca_bundle
        .as_ref()
        .map(|b| b.0.clone())
}

/// Whether `cfg` needs the patch: it has no webhooks, or webhook 0's caBundle is not `want`.
pub fn needs_patch(cfg: &MutatingWebhookConfiguration, want: &[u8]) -> bool {
    let empty = cfg.webhooks.as_ref().is_none_or(Vec::is_empty);
    empty || first_ca_bundle(cfg).as_deref() != Some(want)
}

/// Upstream's patch: `[{"op":"add","path":"/webhooks/0/clientConfig/caBundle","value":<b64>}]`.
pub fn ca_bundle_patch(want: &[u8]) -> Result<json_patch::Patch, serde_json::Error> {
    let value = base64::engine::general_purpose::STANDARD.encode(want);
    serde_json::from_value(serde_json::json!([
        {"op": "add", "path": "/webhooks/0/clientConfig/caBundle", "value": value}
    ]))
}

/// Makes webhook 0's caBundle `want`. Returns whether a patch was sent.
pub async fn ensure_ca_bundle(
    client: &Client,
    name: &str,
    want: &[u8],
) -> Result<bool, WebhookError> {
    let api: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    let cfg = api.get(name).await.map_err(|source| WebhookError::Get {
        name: name.to_owned(),
        source,
    })?;
    if !needs_patch(&cfg, want) {
        return Ok(false);
    }
    let patch = ca_bundle_patch(want)?;
    api.patch(name, &PatchParams::default(), &Patch::Json::<()>(patch))
        .await
        .map_err(WebhookError::Patch)?;
    Ok(true)
}

/// Handle on the keeper task; dropping it stops the task.
#[derive(Debug)]
pub struct Keeper {
    want: watch::Sender<Option<Vec<u8>>>,
    written: watch::Receiver<Option<Vec<u8>>>,
    task: JoinHandle<()>,
}

impl Drop for Keeper {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Keeper {
    /// Starts keeping the caBundle of `name`. Nothing is written until [`Keeper::want`].
    pub fn start(client: Client, name: String) -> Self {
        let (want, want_rx) = watch::channel(None);
        let (written_tx, written) = watch::channel(None);
        let task = tokio::spawn(keep(client, name, want_rx, written_tx));
        Self {
            want,
            written,
            task,
        }
    }

    /// Asks for `bundle` to be the caBundle from now on.
    pub fn want(&self, bundle: Vec<u8>) {
        self.want.send_replace(Some(bundle));
    }

    /// Waits until `bundle` has been seen in (or written to) the webhook configuration, plus
    /// [`PROPAGATION_DELAY`] when it had to be written.
    pub async fn written(&self, bundle: &[u8]) {
        let mut rx = self.written.clone();
        // The sender lives in the task; if the task ended, there is nothing left to wait for.
        let _ = rx.wait_for(|w| w.as_deref() == Some(bundle)).await;
    }
}

async fn keep(
    client: Client,
    name: String,
    mut want: watch::Receiver<Option<Vec<u8>>>,
    written: watch::Sender<Option<Vec<u8>>>,
) {
    let api: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    let mut events = watcher(
        api,
        watcher::Config::default().fields(&format!("metadata.name={name}")),
    )
    .default_backoff()
    .boxed();
    let mut retry = RETRY.delays();
    let next = tokio::time::sleep(RESYNC);
    tokio::pin!(next);
    loop {
        tokio::select! {
            changed = want.changed() => if changed.is_err() { return },
            event = events.next() => match event {
                Some(Ok(watcher::Event::Apply(_) | watcher::Event::Delete(_) | watcher::Event::InitDone)) => {}
                Some(Ok(_)) => continue,
                Some(Err(e)) => {
                    tracing::debug!(target: HANDLER, Server = %crate::cluster::api_server(), Error = %e, "watching the MutatingWebhookConfiguration");
                    continue;
                }
                None => return,
            },
            () = &mut next => {}
        }
        let Some(bundle) = want.borrow_and_update().clone() else {
            next.as_mut().reset(tokio::time::Instant::now() + RESYNC);
            continue;
        };
        match ensure_ca_bundle(&client, &name, &bundle).await {
            Ok(patched) => {
                if patched {
                    tracing::info!(target: HANDLER, Webhook = %name, "Updated MutatingWebhookConfiguration caBundle");
                    tokio::time::sleep(PROPAGATION_DELAY).await;
                }
                written.send_replace(Some(bundle));
                retry.reset();
                next.as_mut().reset(tokio::time::Instant::now() + RESYNC);
            }
            Err(e) => {
                // RETRY has no limit: the schedule never ends.
                let delay = retry.next().unwrap_or(MINUTE);
                tracing::warn!(target: HANDLER, Webhook = %name, Server = %crate::cluster::api_server(), Error = %e, Retry = ?delay, "could not update the caBundle; trying again");
                next.as_mut().reset(tokio::time::Instant::now() + delay);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use k8s_openapi::ByteString;
    use k8s_openapi::api::admissionregistration::v1::{MutatingWebhook, WebhookClientConfig};

    use super::*;

    fn cfg(bundles: &[Option<&[u8]>]) -> MutatingWebhookConfiguration {
        MutatingWebhookConfiguration {
            webhooks: Some(
                bundles
                    .iter()
                    .map(|b| MutatingWebhook {
                        client_config: WebhookClientConfig {
                            ca_bundle: b.map(|b| ByteString(b.to_vec())),
                            ..WebhookClientConfig::default()
                        },
                        ..MutatingWebhook::default()
                    })
                    .collect(),
            ),
            ..MutatingWebhookConfiguration::default()
        }
    }

    #[test]
    fn patch_only_when_webhook_zero_differs_or_there_is_none() {
        assert!(needs_patch(&MutatingWebhookConfiguration::default(), b"ca"));
        assert!(needs_patch(&cfg(&[]), b"ca"));
        assert!(needs_patch(&cfg(&[None]), b"ca"));
        assert!(needs_patch(&cfg(&[Some(b"old")]), b"ca"));
        assert!(!needs_patch(&cfg(&[Some(b"ca")]), b"ca"));
        // Only webhook 0 counts.
        assert!(!needs_patch(&cfg(&[Some(b"ca"), Some(b"other")]), b"ca"));
    }

    #[test]
    fn patch_is_upstreams_json_patch() {
        let patch = ca_bundle_patch(b"PEM").unwrap();
        assert_eq!(
            serde_json::to_string(&patch).unwrap(),
            r#"[{"op":"add","path":"/webhooks/0/clientConfig/caBundle","value":"UEVN"}]"#
        );
    }

    #[test]
    fn backoff_grows_by_half_and_stays_under_a_minute() {
        let mut b = RETRY.delays();
        let mut base = 0.5_f64;
        for _ in 0..30 {
            let d = b.next().unwrap().as_secs_f64();
            assert!(
                d >= base * 0.5 - 1e-9 && d <= (base * 1.5).min(60.0) + 1e-9,
                "{d} vs {base}"
            );
            base = (base * 1.5).min(60.0);
        }
        b.reset();
        assert!(b.next().unwrap() <= Duration::from_millis(750));
    }
}
