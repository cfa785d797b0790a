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
        Ok(Mutation::Skip(_)) => {
            response.insert("allowed".to_owned(), Value::Bool(true));
        }
        Ok(Mutation::Inject { ops, warnings, .. }) => {
            response.insert("allowed".to_owned(), Value::Bool(true));
            let bytes = patch::to_bytes(ops);
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

/// [`response_review`] written straight to bytes, identical to serialising it: the reply is
/// mostly the base64 patch, which needs no escaping, so it is not scanned for any.
fn reply_bytes(parts: &RequestParts, decision: &Result<Mutation, Refusal>) -> Vec<u8> {
    fn string(out: &mut Vec<u8>, s: &str) {
        // Writing a str into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
    }
    // Sized once: growing a ~12 KB reply by doubling copied it several times.
    let patch = decision
        .as_ref()
        .ok()
        .and_then(Mutation::patch_json)
        .unwrap_or_default();
    let mut out = Vec::with_capacity(512 + patch.len().div_ceil(3) * 4);
    out.extend_from_slice(br#"{"kind":"AdmissionReview","apiVersion":"#);
    string(&mut out, &parts.api_version);
    out.extend_from_slice(br#","response":{"uid":"#);
    string(&mut out, &parts.uid);
    match decision {
        Ok(Mutation::Skip(_)) => out.extend_from_slice(br#","allowed":true"#),
        Ok(Mutation::Inject { warnings, .. }) => {
            out.extend_from_slice(br#","allowed":true,"patch":""#);
            // SIMD base64 (5x the scalar encoder here), appended in place.
            base64_simd::STANDARD.encode_append(&patch, &mut out);
            out.extend_from_slice(br#"","patchType":"JSONPatch""#);
            if !warnings.is_empty() {
                out.extend_from_slice(br#","warnings":"#);
                let _ = serde_json::to_writer(&mut out, warnings);
            }
        }
        Err(refusal) => {
            out.extend_from_slice(br#","allowed":false,"status":{"metadata":{},"message":"#);
            string(&mut out, &refusal.to_string());
            out.push(b'}');
        }
    }
    out.extend_from_slice(b"}}");
    out
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

/// The common case of [`review`], decoded without building a [`Value`] of the whole body: the
/// request's object goes straight from its bytes into the typed [`Pod`] (the patch is computed
/// from that pod alone). Anything this path does not accept as is (a wrongly typed field, an
/// object that is not a pod, duplicate keys) returns `None`, and the body takes the general
/// path, which words every error as before: the fast path can change speed, never a reply.
struct FastReview {
    api_version: String,
    uid: String,
    namespace: String,
    pod: Pod,
}

impl FastReview {
    fn decode(body: &[u8]) -> Option<FastReview> {
        #[derive(serde::Deserialize)]
        struct Outer<'a> {
            #[serde(rename = "apiVersion", default, borrow)]
            api_version: Option<std::borrow::Cow<'a, str>>,
            #[serde(borrow)]
            request: Option<ObjectOnly<Request<'a>>>,
        }
        #[derive(serde::Deserialize)]
        struct Request<'a> {
            #[serde(default, borrow)]
            uid: Option<std::borrow::Cow<'a, str>>,
            #[serde(default, borrow)]
            namespace: Option<std::borrow::Cow<'a, str>>,
            object: Option<Pod>,
        }
        // serde_json does not check what it skips (the UTF-8 and escapes of strings, the range
        // of numbers), and the general path refuses those anywhere: the fast path first reads
        // the whole body as the general path would, without building anything.
        let body = std::str::from_utf8(body).ok()?;
        if !plainly_valid(body.as_bytes()) {
            serde_json::from_str::<Checked>(body).ok()?;
        }
        // One pass over the body: the pod is decoded where it stands.
        let ObjectOnly(outer) = serde_json::from_str::<ObjectOnly<Outer<'_>>>(body).ok()?;
        let ObjectOnly(request) = outer.request?;
        Some(FastReview {
            api_version: match outer.api_version.as_deref() {
                Some(V1BETA1) => V1BETA1,
                _ => V1,
            }
            .to_owned(),
            uid: request.uid.map(|c| c.into_owned()).unwrap_or_default(),
            namespace: request
                .namespace
                .map(|c| c.into_owned())
                .unwrap_or_default(),
            pod: request.object?,
        })
    }
}

/// Whether `body` (UTF-8) holds none of the three things serde_json's skipping of unread values
/// does not check and its [`Value`] parse refuses: a `\u` escape of a UTF-16 surrogate (a lone
/// one is refused), a number that may overflow `f64` (only an exponent or a run of hundreds of
/// digits can), and nesting deeper than the parser's recursion limit. Such a body is read in
/// full by [`Checked`] first; any other body is well-formed exactly when the typed decode
/// succeeds. One pass that jumps through strings with `memchr` (a few thousand instructions
/// for a typical review, against about 90 thousand for [`Checked`]); false alarms only cost
/// that slower check.
fn plainly_valid(body: &[u8]) -> bool {
    const MAX_DEPTH: usize = 100;
    const MAX_DIGITS: usize = 300;
    let mut depth = 0_usize;
    let mut digits = 0_usize;
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            b'"' => {
                // Inside a string: only escapes matter.
                i += 1;
                loop {
                    // `i` can pass the end after an escape at the very end.
                    let Some(at) = body
                        .get(i..)
                        .and_then(|rest| memchr::memchr2(b'"', b'\\', rest))
                    else {
                        return false;
                    };
                    i += at;
                    if body[i] == b'"' {
                        break;
                    }
                    // `\uD800`-`\uDFFF`: a surrogate, to be checked in full.
                    if body.get(i + 1) == Some(&b'u')
                        && matches!(body.get(i + 2), Some(b'd' | b'D'))
                        && matches!(
                            body.get(i + 3),
                            Some(b'8'..=b'9' | b'a'..=b'f' | b'A'..=b'F')
                        )
                    {
                        return false;
                    }
                    i += 2;
                }
                digits = 0;
            }
            b'{' | b'[' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return false;
                }
                digits = 0;
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                digits = 0;
            }
            b'0'..=b'9' => {
                digits += 1;
                if digits > MAX_DIGITS {
                    return false;
                }
            }
            b'e' | b'E' if digits > 0 || i.checked_sub(1).is_some_and(|p| body[p] == b'.') => {
                return false;
            }
            b'.' => {}
            _ => digits = 0,
        }
        i += 1;
    }
    true
}

/// Any JSON the general path's [`Value`] accepts, read in full and kept nowhere: every string
/// and key unescaped and checked, every number parsed, the same depth limit.
struct Checked;

impl<'de> serde::Deserialize<'de> for Checked {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(Checked)
    }
}

impl<'de> serde::de::Visitor<'de> for Checked {
    type Value = Checked;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_str<E>(self, _: &str) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_unit<E>(self) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_none<E>(self) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Checked, D::Error> {
        serde::Deserialize::deserialize(d)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
        while seq.next_element::<Checked>()?.is_some() {}
        Ok(Checked)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
        while map.next_entry::<Checked, Checked>()?.is_some() {}
        Ok(Checked)
    }
}

/// `T` from a JSON object only. A derived struct also accepts an array (its fields by
/// position), which the general path refuses; the fast path must not answer what it refuses.
struct ObjectOnly<T>(T);

impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for ObjectOnly<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: serde::Deserialize<'de>> serde::de::Visitor<'de> for Visitor<T> {
            type Value = T;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }
        deserializer
            .deserialize_map(Visitor(std::marker::PhantomData))
            .map(ObjectOnly)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scan that lets a body skip the full check flags every form the skipping decoder
    /// would let through unchecked, and nothing in ordinary Kubernetes JSON.
    #[test]
    fn only_plainly_valid_bodies_skip_the_full_check() {
        let ordinary =
            br#"{"a":"705ab4f5-6393-11e8-b7cc-42010a800002","b":[1,-2.5,0,true,false,null],
            "c":{"d":"sha256:9e4e1a\"\\\n\u003c\u2028","e":"1e400 in a string","f":{}}}"#;
        assert!(plainly_valid(ordinary));
        for odd in [
            r#"{"a":"\ud800"}"#,
            r#"{"a":"x\uDFFF"}"#,
            r#"{"a":1e5}"#,
            r#"{"a":1.5E-3}"#,
            r#"{"a":2.e3}"#,
            r#"{"a":"unterminated}"#,
            r#"""#,
            r#""\"#,
            r#"{"a":"\"#,
        ] {
            assert!(!plainly_valid(odd.as_bytes()), "{odd}");
        }
        let long = format!("[1{}]", "0".repeat(300));
        assert!(!plainly_valid(long.as_bytes()));
        let deep = format!("{}{}", "[".repeat(101), "]".repeat(101));
        assert!(!plainly_valid(deep.as_bytes()));
        let fine = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert!(plainly_valid(fine.as_bytes()));
    }

    /// The reply written by hand is byte for byte the serialised [`response_review`].
    #[test]
    fn reply_bytes_are_the_serialised_response_review() {
        use k8s_openapi::api::core::v1::{EmptyDirVolumeSource, Volume};
        let ops = vec![
            patch::Op {
                path: "/spec/volumes".into(),
                value: patch::OpValue::Array(vec![patch::OpValue::volume(Volume {
                    name: "a\"b".into(),
                    empty_dir: Some(EmptyDirVolumeSource::default()),
                    ..Default::default()
                })]),
            },
            patch::Op {
                path: "/metadata/annotations/x~1y".into(),
                value: patch::OpValue::String("é\u{1}\n".into()),
            },
        ];
        let decisions = [
            Ok(Mutation::Skip(SkipReason::NotAnnotated)),
            Ok(Mutation::Inject {
                ops: ops.clone(),
                injection_type: None,
                warnings: vec![],
            }),
            Ok(Mutation::Inject {
                ops,
                injection_type: Some(InjectionType::InitAndSidecar),
                warnings: vec!["w \"1\"".into(), "w2\t".into()],
            }),
            Err(Refusal::NotAPod("bad \"pod\"\n\u{7f}".into())),
            Err(Refusal::SystemNamespace("kube-system".into())),
        ];
        for api_version in [V1, V1BETA1] {
            for uid in ["", "705ab4f5-6393-11e8", "odd \"uid\" \u{0}"] {
                let parts = RequestParts {
                    api_version: api_version.into(),
                    uid: uid.into(),
                    namespace: "apps".into(),
                    object: Value::Null,
                };
                for d in &decisions {
                    assert_eq!(
                        String::from_utf8(reply_bytes(&parts, d)).unwrap(),
                        serde_json::to_string(&response_review(&parts, d)).unwrap()
                    );
                }
            }
        }
    }

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
