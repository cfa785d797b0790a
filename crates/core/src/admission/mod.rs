//! AdmissionReview in, AdmissionReview out: the webhook's decision for one request.
//!
//! The review is decoded generically first, so the uid and apiVersion survive an object that is
//! not a Pod, and the reply always carries the request's apiVersion (v1 or v1beta1).

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use k8s_openapi::api::core::v1::Pod;
use serde::Deserialize as _;
use serde_json::{Map, Value, json};

use crate::annotations::{self, Problem, Refusal, SkipReason};
use crate::inject;
use crate::patch;
use crate::settings::AgentDefaults;
use crate::{ns_defaults, openbao};

/// Which agent containers an allowed response added; upstream's `injection_type` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InjectionType {
    /// Init container and sidecar.
    InitAndSidecar,
    /// Only the init container (`agent-pre-populate-only`).
    InitOnly,
    /// Only the sidecar (`agent-pre-populate: false`).
    SidecarOnly,
    /// Not upstream: no classic agent, only the agent that runs an app container's process
    /// with secrets as environment variables.
    ExecOnly,
}

impl InjectionType {
    /// The metric label value.
    pub fn label(self) -> &'static str {
        match self {
            Self::InitAndSidecar => "init_and_sidecar",
            Self::InitOnly => "init_only",
            Self::SidecarOnly => "sidecar_only",
            Self::ExecOnly => "exec_only",
        }
    }

    /// Decided from the pre-populate flags, as upstream does (a renamed container still counts).
    fn from_flags(pre_populate: bool, pre_populate_only: bool) -> Option<Self> {
        match (pre_populate, pre_populate_only) {
            (true, false) => Some(Self::InitAndSidecar),
            (true, true) => Some(Self::InitOnly),
            (false, false) => Some(Self::SidecarOnly),
            (false, true) => None,
        }
    }
}

/// What the review decided, for metrics and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Allowed without a patch, and why (not annotated, already injected, not pending...).
    Skipped(SkipReason),
    /// Allowed with a patch; `None` when no agent container was added (volumes only).
    Injected(Option<InjectionType>),
    /// Refused (`allowed: false`) with this message.
    Denied(String),
}

/// A reply to send with HTTP 200.
#[derive(Debug, Clone)]
pub struct Reviewed {
    /// The AdmissionReview JSON (same apiVersion/kind as the request).
    pub body: Vec<u8>,
    /// `request.namespace`, the metrics label.
    pub namespace: String,
    /// The pod's name, else its `generateName` (pods made by controllers have no name yet), for
    /// logs; empty when the object has neither.
    pub pod_name: String,
    /// The decision.
    pub outcome: Outcome,
}

/// A body that cannot be answered with an AdmissionReview.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReviewError {
    /// Not JSON or not an AdmissionReview: HTTP 500 as upstream.
    #[error("error decoding admission request: {0}")]
    Decode(String),
    /// An AdmissionReview without `request`: HTTP 400 (upstream crashes the handler).
    #[error("error decoding admission request: the AdmissionReview has no request")]
    NoRequest,
}

impl ReviewError {
    /// The HTTP status the server answers with.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::Decode(_) => 500,
            Self::NoRequest => 400,
        }
    }
}

/// The result of mutating one object.
#[derive(Debug, Clone, PartialEq)]
pub enum Mutation {
    /// Nothing to do; allowed unchanged, for this reason.
    Skip(SkipReason),
    /// Allowed with these RFC 6902 operations.
    Inject {
        /// The patch operations, against the original object.
        ops: Vec<patch::Op>,
        /// Which agent containers were added.
        injection_type: Option<InjectionType>,
        /// Admission warnings for the user (beyond upstream; they never change the patch).
        warnings: Vec<String>,
    },
}

impl Mutation {
    /// The patch as compact JSON, the bytes a reply base64-encodes; `None` when skipped.
    pub fn patch_json(&self) -> Option<Vec<u8>> {
        match self {
            Self::Inject { ops, .. } => Some(patch::to_bytes(ops)),
            Self::Skip(_) => None,
        }
    }
}

/// System namespaces the injector refuses to inject into.
const SYSTEM_NAMESPACES: [&str; 2] = ["kube-system", "kube-public"];

/// What `-namespace-defaults` knows about a request's Namespace (not upstream).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamespaceDefaults {
    /// The feature is off (the default): upstream's behaviour.
    Off,
    /// The Namespace cache has not finished its first list: an injection is refused (the
    /// client retries) rather than made without the defaults the pod may rely on.
    NotSynced,
    /// The cache is synced but does not hold the Namespace yet (created a moment ago): refused
    /// likewise.
    Unknown,
    /// The Namespace's annotations.
    Annotations(BTreeMap<String, String>),
}

/// The decision flow for one admission request's object.
pub fn mutate(
    object: &Value,
    namespace: &str,
    defaults: &AgentDefaults,
) -> Result<Mutation, Refusal> {
    mutate_with(object, namespace, defaults, &|_| NamespaceDefaults::Off)
}

/// [`mutate`] with the request's Namespace annotations as defaults (`-namespace-defaults`).
/// `namespace_defaults` is asked only for a pod that passed the gate.
pub fn mutate_with(
    object: &Value,
    namespace: &str,
    defaults: &AgentDefaults,
    namespace_defaults: &dyn Fn(&str) -> NamespaceDefaults,
) -> Result<Mutation, Refusal> {
    if object.is_null() {
        return Err(Refusal::NotAPod(
            "the admission request has no object".to_owned(),
        ));
    }
    // Deserialised from the borrowed value: no copy of the object.
    let pod = Pod::deserialize(object).map_err(|e| Refusal::NotAPod(e.to_string()))?;
    mutate_pod(&pod, namespace, defaults, namespace_defaults)
}

/// [`mutate_with`] on the decoded pod.
fn mutate_pod(
    pod: &Pod,
    namespace: &str,
    defaults: &AgentDefaults,
    namespace_defaults: &dyn Fn(&str) -> NamespaceDefaults,
) -> Result<Mutation, Refusal> {
    // Beyond upstream, the core reads a copy of the pod whose annotations have the
    // `openbao.org/` keys folded in and the Namespace's defaults added; the patch is still
    // built against the pod as sent (only annotations differ, and none are written back).
    let original = pod.metadata.annotations.as_ref();
    let uses_openbao = openbao::uses_openbao(original);
    let mut effective = openbao::fold(original);
    if let Some(reason) = annotations::skip_reason(&with_annotations(pod, effective.as_ref()))? {
        return Ok(Mutation::Skip(reason));
    }
    if SYSTEM_NAMESPACES.contains(&namespace) {
        return Err(Refusal::SystemNamespace(namespace.to_owned()));
    }
    let not_loaded = |why: String| {
        Refusal::Defaults(Problem::Message(format!(
            "namespace defaults for {namespace} are not loaded yet ({why}); retry"
        )))
    };
    match namespace_defaults(namespace) {
        NamespaceDefaults::Off => {}
        NamespaceDefaults::NotSynced => {
            return Err(not_loaded("the namespace cache is syncing".to_owned()));
        }
        NamespaceDefaults::Unknown => {
            return Err(not_loaded("the namespace is not in the cache".to_owned()));
        }
        NamespaceDefaults::Annotations(ns) => {
            let no_annotations = BTreeMap::new();
            let current = effective.as_ref().or(original).unwrap_or(&no_annotations);
            if let Some(merged) = ns_defaults::merge(current, &ns) {
                effective = Some(merged);
            }
        }
    }
    let request = annotations::parse(
        &with_annotations(pod, effective.as_ref()),
        namespace,
        defaults,
    )?;
    let binary = openbao::agent_binary(defaults.agent_binary, uses_openbao, &request.image);
    let mut ops = inject::patch_ops(pod, &request, binary)?;
    if uses_openbao {
        openbao::use_openbao_status(&mut ops);
    }
    Ok(Mutation::Inject {
        ops,
        injection_type: if request.classic_agents() {
            InjectionType::from_flags(request.pre_populate, request.pre_populate_only)
        } else {
            Some(InjectionType::ExecOnly)
        },
        warnings: crate::warnings::for_request(
            &request,
            crate::warnings::shares_process_namespace(
                pod.spec.as_ref().and_then(|s| s.share_process_namespace),
                &request,
            ),
        ),
    })
}

/// The pod itself, or a copy with other annotations.
fn with_annotations<'a>(
    pod: &'a Pod,
    annotations: Option<&BTreeMap<String, String>>,
) -> std::borrow::Cow<'a, Pod> {
    match annotations {
        None => std::borrow::Cow::Borrowed(pod),
        Some(a) => {
            let mut copy = pod.clone();
            copy.metadata.annotations = Some(a.clone());
            std::borrow::Cow::Owned(copy)
        }
    }
}

/// Applies a mutation's operations to the original object.
pub fn mutated_object(object: &Value, mutation: &Mutation) -> Result<Value, patch::PatchError> {
    match mutation {
        Mutation::Skip(_) => Ok(object.clone()),
        Mutation::Inject { ops, .. } => {
            patch::apply(object, &patch::to_patch(patch::to_values(ops))?)
        }
    }
}

/// Decides one AdmissionReview body.
pub fn review(body: &[u8], defaults: &AgentDefaults) -> Result<Reviewed, ReviewError> {
    review_with(body, defaults, &|_| NamespaceDefaults::Off)
}

/// [`review`] with namespace defaults (see [`mutate_with`]).
pub fn review_with(
    body: &[u8],
    defaults: &AgentDefaults,
    namespace_defaults: &dyn Fn(&str) -> NamespaceDefaults,
) -> Result<Reviewed, ReviewError> {
    if let Some(fast) = FastReview::decode(body) {
        let parts = RequestParts {
            api_version: fast.api_version,
            uid: fast.uid,
            namespace: fast.namespace,
            object: Value::Null,
        };
        let decision = mutate_pod(&fast.pod, &parts.namespace, defaults, namespace_defaults);
        let pod_name = pod_name(&fast.pod.metadata);
        return Ok(reviewed(parts, pod_name, &decision));
    }
    review_general(body, defaults, namespace_defaults)
}

/// Whether [`review`] takes its fast path for this body (for tests).
#[doc(hidden)]
pub fn takes_fast_path(body: &[u8]) -> bool {
    FastReview::decode(body).is_some()
}

/// [`review_with`] without its fast path: every body is decoded into a [`Value`] first. Public
/// only so that tests can hold the two paths to the same replies.
#[doc(hidden)]
pub fn review_general(
    body: &[u8],
    defaults: &AgentDefaults,
    namespace_defaults: &dyn Fn(&str) -> NamespaceDefaults,
) -> Result<Reviewed, ReviewError> {
    let mut value: Value =
        serde_json::from_slice(body).map_err(|e| ReviewError::Decode(e.to_string()))?;
    // Move the object out rather than copy it; `read_review` then sees the rest.
    let object = value
        .get_mut("request")
        .and_then(Value::as_object_mut)
        .and_then(|request| request.remove("object"));
    let mut parts = read_review(&value)?;
    parts.object = object.unwrap_or(Value::Null);
    let decision = mutate_with(
        &parts.object,
        &parts.namespace,
        defaults,
        namespace_defaults,
    );
    let name = |field: &str| {
        parts
            .object
            .pointer(&format!("/metadata/{field}"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let pod_name = name("name")
        .or_else(|| name("generateName"))
        .unwrap_or_default();
    Ok(reviewed(parts, pod_name, &decision))
}

/// The name a pod is logged by: its name, else its `generateName`.
fn pod_name(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> String {
    meta.name
        .as_deref()
        .filter(|s| !s.is_empty())
        .or(meta.generate_name.as_deref())
        .unwrap_or_default()
        .to_owned()
}

fn reviewed(
    parts: RequestParts,
    pod_name: String,
    decision: &Result<Mutation, Refusal>,
) -> Reviewed {
    let outcome = match decision {
        Ok(Mutation::Skip(reason)) => Outcome::Skipped(reason.clone()),
        Ok(Mutation::Inject { injection_type, .. }) => Outcome::Injected(*injection_type),
        Err(refusal) => Outcome::Denied(refusal.to_string()),
    };
    let body = reply_bytes(&parts, decision);
    Reviewed {
        body,
        namespace: parts.namespace,
        pod_name,
        outcome,
    }
}

mod envelope;
mod fast;
#[cfg(test)]
mod tests;

pub use envelope::{RequestParts, read_review, response_review};
use envelope::{V1, V1BETA1, reply_bytes};
use fast::FastReview;
