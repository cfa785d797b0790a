//! AdmissionReview in, AdmissionReview out: the webhook's decision for one request
//! (mutation.md §1–2).
//!
//! The review is decoded generically first, so the uid and apiVersion survive an object that is
//! not a Pod, and the reply always carries the request's apiVersion (v1 or v1beta1).

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use k8s_openapi::api::core::v1::Pod;
use serde::Deserialize as _;
use serde_json::{Map, Value, json};

use crate::annotations::{self, Problem, Refusal};
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
}

impl InjectionType {
    /// The metric label value.
    pub fn label(self) -> &'static str {
        match self {
            Self::InitAndSidecar => "init_and_sidecar",
            Self::InitOnly => "init_only",
            Self::SidecarOnly => "sidecar_only",
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
    /// Allowed without a patch (not annotated, already injected, not pending...).
    Skipped,
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
    /// Nothing to do; allowed unchanged.
    Skip,
    /// Allowed with these RFC 6902 operations.
    Inject {
        /// The patch operations, against the original object.
        ops: Vec<Value>,
        /// Which agent containers were added.
        injection_type: Option<InjectionType>,
        /// Admission warnings for the user (beyond upstream; they never change the patch).
        warnings: Vec<String>,
    },
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

/// The decision flow for one admission request's object (mutation.md §2).
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
    // Beyond upstream, the core reads a copy of the pod whose annotations have the
    // `openbao.org/` keys folded in and the Namespace's defaults added; the patch is still
    // built against the pod as sent (only annotations differ, and none are written back).
    let original = pod.metadata.annotations.as_ref();
    let uses_openbao = openbao::uses_openbao(original);
    let mut effective = openbao::fold(original);
    if !annotations::should_inject(&with_annotations(&pod, effective.as_ref()))? {
        return Ok(Mutation::Skip);
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
        &with_annotations(&pod, effective.as_ref()),
        namespace,
        defaults,
    )?;
    let binary = openbao::agent_binary(defaults.agent_binary, uses_openbao, &request.image);
    let mut ops = inject::patch_ops(&pod, &request)?;
    openbao::adapt(&mut ops, binary, uses_openbao);
    Ok(Mutation::Inject {
        ops,
        injection_type: InjectionType::from_flags(request.pre_populate, request.pre_populate_only),
        warnings: crate::warnings::for_request(&request),
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
        Mutation::Skip => Ok(object.clone()),
        Mutation::Inject { ops, .. } => patch::apply(object, &patch::to_patch(ops.clone())?),
    }
}

/// The request fields the injector reads.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestParts {
    /// `apiVersion` of the review (v1 when absent or unknown).
    pub api_version: String,
    /// `request.uid`.
    pub uid: String,
    /// `request.namespace`.
    pub namespace: String,
    /// `request.object`.
    pub object: Value,
}

const V1: &str = "admission.k8s.io/v1";
const V1BETA1: &str = "admission.k8s.io/v1beta1";

/// Reads an AdmissionReview body leniently: only `request.uid`, `request.namespace` and
/// `request.object` matter, and a wrongly typed one is a decode error.
pub fn read_review(review: &Value) -> Result<RequestParts, ReviewError> {
    let obj = review.as_object().ok_or_else(|| {
        ReviewError::Decode(format!("expected a JSON object, found {}", kind_of(review)))
    })?;
    let api_version = match obj.get("apiVersion").and_then(Value::as_str) {
        Some(V1BETA1) => V1BETA1,
        _ => V1,
    }
    .to_owned();
    let request = match obj.get("request") {
        None | Some(Value::Null) => return Err(ReviewError::NoRequest),
        Some(Value::Object(r)) => r,
        Some(other) => {
            return Err(ReviewError::Decode(format!(
                "request: expected an object, found {}",
                kind_of(other)
            )));
        }
    };
    let string = |field: &str| -> Result<String, ReviewError> {
        match request.get(field) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(ReviewError::Decode(format!(
                "request.{field}: expected a string, found {}",
                kind_of(other)
            ))),
        }
    };
    Ok(RequestParts {
        api_version,
        uid: string("uid")?,
        namespace: string("namespace")?,
        object: request.get("object").cloned().unwrap_or(Value::Null),
    })
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The response object for a request and its decision, in upstream's shape.
pub fn response_review(parts: &RequestParts, decision: &Result<Mutation, Refusal>) -> Value {
    let mut response = Map::new();
    response.insert("uid".to_owned(), Value::String(parts.uid.clone()));
    match decision {
        Ok(Mutation::Skip) => {
            response.insert("allowed".to_owned(), Value::Bool(true));
        }
        Ok(Mutation::Inject { ops, warnings, .. }) => {
            response.insert("allowed".to_owned(), Value::Bool(true));
            let bytes = serde_json::to_vec(ops).unwrap_or_default();
            response.insert("patch".to_owned(), Value::String(STANDARD.encode(bytes)));
            response.insert(
                "patchType".to_owned(),
                Value::String("JSONPatch".to_owned()),
            );
            if !warnings.is_empty() {
                response.insert(
                    "warnings".to_owned(),
                    Value::Array(warnings.iter().cloned().map(Value::String).collect()),
                );
            }
        }
        Err(refusal) => {
            response.insert("allowed".to_owned(), Value::Bool(false));
            response.insert(
                "status".to_owned(),
                json!({"metadata": {}, "message": refusal.to_string()}),
            );
        }
    }
    // Built by hand: `json!` would serialise `response` (and its patch) into a copy.
    let mut review = Map::with_capacity(3);
    review.insert(
        "kind".to_owned(),
        Value::String("AdmissionReview".to_owned()),
    );
    review.insert(
        "apiVersion".to_owned(),
        Value::String(parts.api_version.clone()),
    );
    review.insert("response".to_owned(), Value::Object(response));
    Value::Object(review)
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
    let outcome = match &decision {
        Ok(Mutation::Skip) => Outcome::Skipped,
        Ok(Mutation::Inject { injection_type, .. }) => Outcome::Injected(*injection_type),
        Err(refusal) => Outcome::Denied(refusal.to_string()),
    };
    let body = serde_json::to_vec(&response_review(&parts, &decision)).unwrap_or_default();
    Ok(Reviewed {
        body,
        namespace: parts.namespace,
        outcome,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The patch type is the json-patch major version kube-rs uses, so callers holding kube's
    /// admission types can hand our patch straight to them. This fails to compile otherwise.
    #[test]
    fn patches_pass_straight_into_kube_admission_responses() {
        let ops = vec![json!({"op": "add", "path": "/metadata/labels", "value": {"a": "b"}})];
        let patch = patch::to_patch(ops).unwrap();
        let response = kube::core::admission::AdmissionResponse::invalid("placeholder")
            .with_patch(patch)
            .unwrap();
        let bytes = response.patch.unwrap();
        let back: Vec<Value> = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(back[0]["path"], "/metadata/labels");
    }
}
