//! The missed-injection watcher (beyond upstream).
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
//!
//! The watch carries the pods' metadata only, so what the injector receives and decodes does
//! not grow with the size of the pods' specs. The annotations settle almost every pod; only a
//! [candidate](is_candidate) (asked for injection, no injected status) also needs its
//! containers, since a pod given an agent container by hand is not a miss. The watcher lists
//! that one pod by name (the `list` it already has) and remembers the verdict by uid: a pod's
//! containers cannot change, so each candidate costs one such request in its lifetime.

use std::collections::HashMap;
use std::time::Duration;

use backon::Retryable as _;
use futures::StreamExt as _;
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference, Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::Client;
use kube::api::{Api, ListParams, PostParams, VersionMatch};
use kube::core::PartialObjectMeta;
use kube::runtime::{WatchStreamExt as _, watcher};
use prometheus::IntCounterVec;

use crate::annotations::keys;
use crate::cluster::backoff::Backoff;
use crate::goparse::parse_bool;
use crate::inject::{INIT_CONTAINER_NAME, SIDECAR_NAME};
use crate::openbao;
use crate::telemetry::logging::HANDLER;

/// The Event's reason.
pub const REASON: &str = "VaultAgentInjectionMissed";
/// The Event's reporting component (the stock chart's app name).
pub const COMPONENT: &str = "vault-agent-injector";

/// Creating the Event, or reading a candidate's containers, after an API error: 1 s, then 2 s,
/// then the watcher moves on (a pod not judged is judged again at its next change or re-list).
const API_RETRY: Backoff =
    Backoff::exponential(Duration::from_secs(1), 2.0, Duration::from_secs(2)).retries(2);

/// Whether a pod asked for injection (`agent-inject` true, in either spelling) but was created
/// without it: no `injected` status in either spelling and no agent container. Pods in the
/// system namespaces, which the injector refuses, are not misses.
pub fn is_missed(pod: &Pod) -> bool {
    is_candidate(&pod.metadata) && !pod.spec.as_ref().is_some_and(has_agent)
}

/// What the metadata alone says: the pod asked for injection, has no injected status and is
/// outside the system namespaces. It is a miss unless it has an agent container ([`has_agent`]).
pub fn is_candidate(meta: &ObjectMeta) -> bool {
    let namespace = meta.namespace.as_deref().unwrap_or_default();
    if namespace == "kube-system" || namespace == "kube-public" {
        return false;
    }
    let Some(annotations) = meta.annotations.as_ref() else {
        return false;
    };
    let asked = [keys::INJECT, openbao::INJECT]
        .iter()
        .filter_map(|k| annotations.get(*k))
        .any(|v| parse_bool(v) == Ok(true));
    let injected = [keys::STATUS, openbao::STATUS]
        .iter()
        .any(|k| annotations.get(*k).is_some_and(|v| v == "injected"));
    asked && !injected
}

/// Whether the pod has the agent, as a container or an init container (pre-populate-only, or
/// a native sidecar).
pub fn has_agent(spec: &PodSpec) -> bool {
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .any(|c| c.name == SIDECAR_NAME || c.name == INIT_CONTAINER_NAME)
}

/// The Event recorded on a missed pod; its name is fixed per pod uid, which is what makes
/// replicas agree on one Event.
pub fn event_for(pod: &ObjectMeta, instance: &str, now: k8s_openapi::jiff::Timestamp) -> Event {
    let uid = pod.uid.clone().unwrap_or_default();
    let name = pod.name.clone().unwrap_or_default();
    Event {
        metadata: ObjectMeta {
            name: Some(format!("vault-injection-missed-{uid}")),
            namespace: pod.namespace.clone(),
            ..Default::default()
        },
        involved_object: ObjectReference {
            api_version: Some("v1".to_owned()),
            kind: Some("Pod".to_owned()),
            name: Some(name),
            namespace: pod.namespace.clone(),
            uid: Some(uid),
            resource_version: pod.resource_version.clone(),
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

/// What became of a candidate once its containers were seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// No agent: counted and reported.
    Missed,
    /// It has an agent container after all: not a miss.
    HasAgent,
}

/// The verdicts on the candidates that still exist, by uid, so that each pod is judged (and
/// reported) once however many times the watch shows it.
#[derive(Debug, Default)]
pub struct Verdicts {
    known: HashMap<String, Verdict>,
    /// During a re-list: the verdicts on the pods listed so far. They replace `known` when the
    /// list is complete, which forgets the pods deleted while the watch was down.
    relisted: Option<HashMap<String, Verdict>>,
}

impl Verdicts {
    /// Takes in one watch event; returns the pod when it is a candidate not judged yet.
    pub fn on_event(
        &mut self,
        event: watcher::Event<PartialObjectMeta<Pod>>,
    ) -> Option<PartialObjectMeta<Pod>> {
        let pod = match event {
            watcher::Event::Init => {
                self.relisted = Some(HashMap::new());
                return None;
            }
            watcher::Event::InitDone => {
                if let Some(relisted) = self.relisted.take() {
                    self.known = relisted;
                }
                return None;
            }
            watcher::Event::Delete(pod) => {
                if let Some(uid) = &pod.metadata.uid {
                    self.known.remove(uid);
                }
                return None;
            }
            watcher::Event::Apply(pod) | watcher::Event::InitApply(pod) => pod,
        };
        let uid = pod.metadata.uid.as_ref()?;
        if !is_candidate(&pod.metadata) {
            return None;
        }
        match self.known.get(uid) {
            Some(&verdict) => {
                if let Some(relisted) = self.relisted.as_mut() {
                    relisted.insert(uid.clone(), verdict);
                }
                None
            }
            None => Some(pod),
        }
    }

    /// Remembers the verdict on the pod `uid`.
    pub fn record(&mut self, uid: &str, verdict: Verdict) {
        self.known.insert(uid.to_owned(), verdict);
        if let Some(relisted) = self.relisted.as_mut() {
            relisted.insert(uid.to_owned(), verdict);
        }
    }
}

/// Watches every Pod's metadata until the process ends; counts and reports each missed pod
/// once.
pub async fn run(client: Client, counter: IntCounterVec) {
    let instance = std::env::var("POD_NAME")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| COMPONENT.to_owned());
    // `Api<PartialObjectMeta<_>>` lists and watches metadata only.
    let pods: Api<PartialObjectMeta<Pod>> = Api::all(client.clone());
    // Pages of 100 rather than client-go's 500: the initial list is the watcher's only burst of
    // memory, and a page of pod metadata is mostly `managedFields`.
    let config = watcher::Config::default().page_size(100);
    let mut events = watcher(pods, config).default_backoff().boxed();
    let mut verdicts = Verdicts::default();
    tracing::info!(target: HANDLER, "Watching pods for missed injections");
    while let Some(event) = events.next().await {
        let pod = match event {
            Ok(event) => match verdicts.on_event(event) {
                Some(pod) => pod.metadata,
                None => continue,
            },
            Err(e) => {
                tracing::warn!(target: HANDLER, Server = %crate::cluster::api_server(), Error = %e, "pod watch failed; retrying");
                continue;
            }
        };
        let (Some(uid), Some(verdict)) = (pod.uid.as_deref(), judge(&client, &pod).await) else {
            continue;
        };
        verdicts.record(uid, verdict);
        if verdict == Verdict::Missed {
            let namespace = pod.namespace.as_deref().unwrap_or_default();
            counter.with_label_values(&[namespace]).inc();
            report(&client, &pod, &instance).await;
        }
    }
}

/// Reads a candidate's containers. `None` when the pod is gone (its deletion is on its way
/// through the watch) or could not be read.
async fn judge(client: &Client, pod: &ObjectMeta) -> Option<Verdict> {
    let namespace = pod.namespace.as_deref().unwrap_or_default();
    let name = pod.name.as_deref().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    // At least as recent as the version the watch showed, so the API server can answer from
    // its cache at once rather than first making sure it has caught up with etcd (a consistent
    // read), which it paces at about ten a second.
    let by_name = ListParams::default()
        .fields(&format!("metadata.name={name}"))
        .at(pod.resource_version.as_deref().unwrap_or("0"))
        .matching(VersionMatch::NotOlderThan);
    let listed = (|| api.list(&by_name))
        .retry(API_RETRY)
        .sleep(tokio::time::sleep)
        .notify(|e, _| tracing::warn!(target: HANDLER, Server = %crate::cluster::api_server(), Error = %e, pod = %name, "could not read the pod's containers"))
        .await;
    let listed = match listed {
        Ok(listed) => listed,
        Err(e) => {
            tracing::warn!(target: HANDLER, Server = %crate::cluster::api_server(), Error = %e, pod = %name, "could not read the pod's containers; judging it at its next change");
            return None;
        }
    };
    // The same name may be a newer pod by now: only the uid the watch showed counts.
    let same = listed
        .items
        .into_iter()
        .find(|p| p.metadata.uid == pod.uid)?;
    Some(if same.spec.as_ref().is_some_and(has_agent) {
        Verdict::HasAgent
    } else {
        Verdict::Missed
    })
}

/// Creates the Event; `AlreadyExists` means another replica (or an earlier run) did.
async fn report(client: &Client, pod: &ObjectMeta, instance: &str) {
    let namespace = pod.namespace.as_deref().unwrap_or_default();
    let name = pod.name.as_deref().unwrap_or_default();
    tracing::warn!(
        target: HANDLER,
        namespace = %namespace,
        pod = %name,
        "pod annotated for injection was created without it"
    );
    let api: Api<Event> = Api::namespaced(client.clone(), namespace);
    let event = event_for(pod, instance, k8s_openapi::jiff::Timestamp::now());
    let create = || async {
        match api.create(&PostParams::default(), &event).await {
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
            result => result.map(drop).inspect_err(|e| tracing::warn!(target: HANDLER, Server = %crate::cluster::api_server(), Error = %e, pod = %name, "could not record the missed-injection event")),
        }
    };
    // Every failure is logged above; after the last one the pod stays counted, without Event.
    let _ = create.retry(API_RETRY).sleep(tokio::time::sleep).await;
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
        let e = event_for(
            &p.metadata,
            "injector-0",
            k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
        );
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

    fn meta(uid: &str, annotations: serde_json::Value) -> PartialObjectMeta<Pod> {
        serde_json::from_value(json!({
            "metadata": {"name": uid, "namespace": "apps", "uid": uid, "annotations": annotations}
        }))
        .unwrap()
    }

    fn asked(uid: &str) -> PartialObjectMeta<Pod> {
        meta(uid, json!({"vault.hashicorp.com/agent-inject": "true"}))
    }

    /// The uids `on_event` hands out for judging.
    fn to_judge(
        v: &mut Verdicts,
        events: Vec<watcher::Event<PartialObjectMeta<Pod>>>,
    ) -> Vec<String> {
        events
            .into_iter()
            .filter_map(|e| v.on_event(e))
            .filter_map(|p| p.metadata.uid)
            .collect()
    }

    #[test]
    fn only_candidates_not_judged_yet_are_handed_out() {
        use watcher::Event::{Apply, Init, InitApply, InitDone};
        let mut v = Verdicts::default();
        let plain = meta("plain", json!({}));
        let injected = meta(
            "done",
            json!({"vault.hashicorp.com/agent-inject": "true", "vault.hashicorp.com/agent-inject-status": "injected"}),
        );
        let first = vec![
            Init,
            InitApply(asked("a")),
            InitApply(plain.clone()),
            InitApply(injected),
            InitDone,
        ];
        assert_eq!(to_judge(&mut v, first), ["a"]);
        v.record("a", Verdict::Missed);
        // Later changes to a judged pod (status, labels...) do not judge it again, whatever
        // the verdict was.
        assert!(to_judge(&mut v, vec![Apply(asked("a"))]).is_empty());
        assert_eq!(to_judge(&mut v, vec![Apply(asked("b"))]), ["b"]);
        v.record("b", Verdict::HasAgent);
        assert!(to_judge(&mut v, vec![Apply(asked("b")), Apply(plain)]).is_empty());
    }

    #[test]
    fn a_relist_keeps_the_verdicts_on_pods_still_there_and_forgets_the_others() {
        use watcher::Event::{Apply, Delete, Init, InitApply, InitDone};
        let mut v = Verdicts::default();
        to_judge(
            &mut v,
            vec![Init, InitApply(asked("a")), InitApply(asked("b")), InitDone],
        );
        v.record("a", Verdict::Missed);
        v.record("b", Verdict::Missed);
        // The watch was down while `b` was deleted; a re-list shows `a` again and a new `c`.
        let relist = vec![Init, InitApply(asked("a")), InitApply(asked("c"))];
        assert_eq!(to_judge(&mut v, relist), ["c"]);
        v.record("c", Verdict::Missed);
        to_judge(&mut v, vec![InitDone]);
        assert!(to_judge(&mut v, vec![Apply(asked("a")), Apply(asked("c"))]).is_empty());
        // A pod with `b`'s uid would be judged again: its verdict was forgotten.
        assert_eq!(to_judge(&mut v, vec![Apply(asked("b"))]), ["b"]);
        // A deletion seen by the watch forgets the verdict too.
        assert!(to_judge(&mut v, vec![Delete(asked("a"))]).is_empty());
        assert_eq!(to_judge(&mut v, vec![Apply(asked("a"))]), ["a"]);
    }
}
