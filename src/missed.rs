//! The missed-injection watcher (beyond upstream, issue 8 item 8; vault-k8s issue 40).
//!
//! With `failurePolicy: Ignore`, a pod created while the webhook is down (or failing) is
//! created without its agent, silently. With `-missed-injection-watcher` the injector watches
//! every Pod and, for each pod annotated for injection that has neither the injected status nor
//! an agent container ([`is_missed`]), counts it in
//! `vault_agent_injector_missed_injections_by_namespace_total{namespace}` and records a
//! `Warning` Event `VaultAgentInjectionMissed` on it, once per pod.
//!
//! Every replica counts (each one's counter is a view of the same pods: aggregate with `max`,
//! not `sum`), but the Event has a name derived from the pod's uid, so only the first replica
//! to report creates it and the others get `AlreadyExists`: no duplicates, no leader needed.
//! Needs `list` and `watch` on `pods` and `create` on `events` (cluster-wide).

use std::collections::HashSet;
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::Client;
use kube::api::{Api, PostParams};
use kube::runtime::{WatchStreamExt as _, watcher};
use prometheus::IntCounterVec;

use crate::annotations::keys;
use crate::goparse::parse_bool;
use crate::inject::{INIT_CONTAINER_NAME, SIDECAR_NAME};
use crate::logging::HANDLER;
use crate::openbao;

/// The Event's reason.
pub const REASON: &str = "VaultAgentInjectionMissed";
/// The Event's reporting component (the stock chart's app name).
pub const COMPONENT: &str = "vault-agent-injector";

/// Whether a pod asked for injection (`agent-inject` true, in either spelling) but was created
/// without it: no `injected` status in either spelling and no agent container. Pods in the
/// system namespaces, which the injector refuses, are not misses.
pub fn is_missed(pod: &Pod) -> bool {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
    if namespace == "kube-system" || namespace == "kube-public" {
        return false;
    }
    let Some(annotations) = pod.metadata.annotations.as_ref() else {
        return false;
    };
    let asked = [keys::INJECT, openbao::INJECT]
        .iter()
        .filter_map(|k| annotations.get(*k))
        .any(|v| parse_bool(v) == Ok(true));
    let injected = [keys::STATUS, openbao::STATUS]
        .iter()
        .any(|k| annotations.get(*k).is_some_and(|v| v == "injected"));
    let spec = pod.spec.as_ref();
    let has_agent = spec.is_some_and(|s| {
        s.containers
            .iter()
            .chain(s.init_containers.iter().flatten())
            .any(|c| c.name == SIDECAR_NAME || c.name == INIT_CONTAINER_NAME)
    });
    asked && !injected && !has_agent
}

/// The Event recorded on a missed pod; its name is fixed per pod uid, which is what makes
/// replicas agree on one Event.
pub fn event_for(pod: &Pod, instance: &str, now: k8s_openapi::jiff::Timestamp) -> Event {
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    Event {
        metadata: ObjectMeta {
            name: Some(format!("vault-injection-missed-{uid}")),
            namespace: pod.metadata.namespace.clone(),
            ..Default::default()
        },
        involved_object: ObjectReference {
            api_version: Some("v1".to_owned()),
            kind: Some("Pod".to_owned()),
            name: Some(name),
            namespace: pod.metadata.namespace.clone(),
            uid: Some(uid),
            resource_version: pod.metadata.resource_version.clone(),
            ..Default::default()
        },
        reason: Some(REASON.to_owned()),
        message: Some(
            "Pod is annotated with agent-inject but was created without the Vault Agent: the \
             injector webhook was not reached or failed under failurePolicy Ignore. Recreate \
             the pod (e.g. kubectl rollout restart) to inject it."
                .to_owned(),
        ),
        type_: Some("Warning".to_owned()),
        source: Some(EventSource {
            component: Some(COMPONENT.to_owned()),
            host: None,
        }),
        reporting_component: Some(COMPONENT.to_owned()),
        reporting_instance: Some(instance.to_owned()),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        count: Some(1),
        ..Default::default()
    }
}

/// Watches every Pod until the process ends; counts and reports each missed pod once.
pub async fn run(client: Client, counter: IntCounterVec) {
    let instance = std::env::var("POD_NAME")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| COMPONENT.to_owned());
    let pods: Api<Pod> = Api::all(client.clone());
    let mut events = watcher(pods, watcher::Config::default())
        .default_backoff()
        .boxed();
    // Uids already reported. A re-list rebuilds the set from the pods that still exist.
    let mut reported: HashSet<String> = HashSet::new();
    let mut relisted: Option<HashSet<String>> = None;
    tracing::info!(target: HANDLER, "Watching pods for missed injections");
    while let Some(event) = events.next().await {
        let pod = match event {
            Ok(watcher::Event::Init) => {
                relisted = Some(HashSet::new());
                continue;
            }
            Ok(watcher::Event::InitDone) => {
                if let Some(set) = relisted.take() {
                    reported = set;
                }
                continue;
            }
            Ok(watcher::Event::Delete(pod)) => {
                if let Some(uid) = &pod.metadata.uid {
                    reported.remove(uid);
                }
                continue;
            }
            Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) => pod,
            Err(e) => {
                tracing::warn!(target: HANDLER, Server = %crate::cluster::api_server(), Error = %e, "pod watch failed; retrying");
                continue;
            }
        };
        let Some(uid) = pod.metadata.uid.clone() else {
            continue;
        };
        if !is_missed(&pod) {
            continue;
        }
        let first = !reported.contains(&uid);
        if let Some(set) = relisted.as_mut() {
            set.insert(uid.clone());
        }
        if !first {
            continue;
        }
        reported.insert(uid);
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        counter.with_label_values(&[&namespace]).inc();
        report(&client, &pod, &instance).await;
    }
}

/// Creates the Event; `AlreadyExists` means another replica (or an earlier run) did.
async fn report(client: &Client, pod: &Pod, instance: &str) {
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    tracing::warn!(
        target: HANDLER,
        namespace = %namespace,
        pod = %name,
        "pod annotated for injection was created without it"
    );
    let api: Api<Event> = Api::namespaced(client.clone(), &namespace);
    let event = event_for(pod, instance, k8s_openapi::jiff::Timestamp::now());
    for attempt in 1..=3_u64 {
        match api.create(&PostParams::default(), &event).await {
            Ok(_) => return,
            Err(kube::Error::Api(s)) if s.code == 409 => return,
            Err(e) => {
                tracing::warn!(target: HANDLER, Server = %crate::cluster::api_server(), Error = %e, pod = %name, "could not record the missed-injection event");
                tokio::time::sleep(Duration::from_secs(attempt)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pod(annotations: serde_json::Value, containers: &[&str], inits: &[&str]) -> Pod {
        let c = |names: &[&str]| {
            names
                .iter()
                .map(|n| json!({"name": n, "image": "x"}))
                .collect::<Vec<_>>()
        };
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "apps", "uid": "1234", "annotations": annotations},
            "spec": {"containers": c(containers), "initContainers": c(inits)}
        }))
        .unwrap()
    }

    #[test]
    fn an_annotated_pod_without_agent_or_status_is_a_miss() {
        assert!(is_missed(&pod(
            json!({"vault.hashicorp.com/agent-inject": "true"}),
            &["app"],
            &[]
        )));
        assert!(is_missed(&pod(
            json!({"openbao.org/agent-inject": "1"}),
            &["app"],
            &[]
        )));
    }

    #[test]
    fn injected_or_unannotated_pods_are_not_misses() {
        let cases = [
            pod(json!({}), &["app"], &[]),
            pod(
                json!({"vault.hashicorp.com/agent-inject": "false"}),
                &["app"],
                &[],
            ),
            pod(
                json!({"vault.hashicorp.com/agent-inject": "yes"}),
                &["app"],
                &[],
            ),
            pod(
                json!({"vault.hashicorp.com/agent-inject": "true", "vault.hashicorp.com/agent-inject-status": "injected"}),
                &["app"],
                &[],
            ),
            pod(
                json!({"openbao.org/agent-inject": "true", "openbao.org/agent-inject-status": "injected"}),
                &["app"],
                &[],
            ),
            pod(
                json!({"vault.hashicorp.com/agent-inject": "true"}),
                &["app", "vault-agent"],
                &[],
            ),
            // pre-populate-only, or a native sidecar
            pod(
                json!({"vault.hashicorp.com/agent-inject": "true"}),
                &["app"],
                &["vault-agent-init"],
            ),
            pod(
                json!({"vault.hashicorp.com/agent-inject": "true"}),
                &["app"],
                &["vault-agent"],
            ),
        ];
        for p in &cases {
            assert!(!is_missed(p), "{:?}", p.metadata.annotations);
        }
        let mut system = pod(
            json!({"vault.hashicorp.com/agent-inject": "true"}),
            &["app"],
            &[],
        );
        system.metadata.namespace = Some("kube-system".to_owned());
        assert!(!is_missed(&system));
    }

    #[test]
    fn the_event_is_a_warning_on_the_pod_named_after_its_uid() {
        let p = pod(
            json!({"vault.hashicorp.com/agent-inject": "true"}),
            &["app"],
            &[],
        );
        let e = event_for(&p, "injector-0", k8s_openapi::jiff::Timestamp::UNIX_EPOCH);
        assert_eq!(
            e.metadata.name.as_deref(),
            Some("vault-injection-missed-1234")
        );
        assert_eq!(e.metadata.namespace.as_deref(), Some("apps"));
        assert_eq!(e.involved_object.kind.as_deref(), Some("Pod"));
        assert_eq!(e.involved_object.name.as_deref(), Some("p"));
        assert_eq!(e.involved_object.uid.as_deref(), Some("1234"));
        assert_eq!(e.reason.as_deref(), Some(REASON));
        assert_eq!(e.type_.as_deref(), Some("Warning"));
        assert_eq!(e.count, Some(1));
    }
}
