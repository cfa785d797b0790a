//! RFC 6902 patch building against the ORIGINAL request object, and patch application.
//!
//! The injector never diffs whole pods: it emits `add` operations in upstream's order, so fields
//! it does not know (newer Kubernetes fields, extensions) are never touched, and the result of
//! applying the patch to the original JSON is, by construction, the mutated pod.

use std::collections::{BTreeMap, BTreeSet};

use json_patch::Patch;
use k8s_openapi::api::core::v1::{Container, Volume, VolumeMount};
use serde::ser::{Serialize, SerializeStruct, Serializer};
use serde_json::Value;
use thiserror::Error;

/// A patch that could not be assembled or applied.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PatchError {
    /// The operations do not form an RFC 6902 document.
    #[error("failed to decode JSON patch: {0}")]
    Decode(String),
    /// An operation failed against the document.
    #[error("failed to apply JSON patch: {0}")]
    Apply(String),
}

/// RFC 6901 escaping of one reference token: `~` first, then `/`.
pub fn escape_pointer(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// The value of one `add` operation, kept typed until the patch is serialised: the agent
/// containers and volumes go straight from their structs into the reply bytes, never through a
/// `serde_json::Value` (building and then serialising that tree was a fifth of a review).
#[derive(Debug, Clone, PartialEq)]
pub enum OpValue {
    /// A pod volume (boxed, like the others: k8s-openapi's `Volume` is kilobytes inline).
    Volume(Box<Volume>),
    /// A container's volume mount.
    Mount(Box<VolumeMount>),
    /// An agent container.
    Container(Box<Container>),
    /// `/spec/shareProcessNamespace`.
    Bool(bool),
    /// An annotation value.
    String(String),
    /// A whole annotation map.
    Map(BTreeMap<String, String>),
    /// A new array (upstream's `add <base> [first]`).
    Array(Vec<OpValue>),
}

impl OpValue {
    /// [`OpValue::Volume`].
    pub fn volume(v: Volume) -> Self {
        Self::Volume(Box::new(v))
    }

    /// [`OpValue::Mount`].
    pub fn mount(m: VolumeMount) -> Self {
        Self::Mount(Box::new(m))
    }
}

impl Serialize for OpValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Volume(v) => v.serialize(s),
            Self::Mount(m) => m.serialize(s),
            Self::Container(c) => c.serialize(s),
            Self::Bool(b) => s.serialize_bool(*b),
            Self::String(v) => s.serialize_str(v),
            Self::Map(m) => m.serialize(s),
            Self::Array(items) => items.serialize(s),
        }
    }
}

/// One RFC 6902 `add` operation, serialised as `{"op":"add","path":..,"value":..}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Op {
    /// The JSON pointer the value is added at.
    pub path: String,
    /// The value added.
    pub value: OpValue,
}

impl Serialize for Op {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut op = s.serialize_struct("Op", 3)?;
        op.serialize_field("op", "add")?;
        op.serialize_field("path", &self.path)?;
        op.serialize_field("value", &self.value)?;
        op.end()
    }
}

/// The operations as compact JSON (the bytes the reply base64-encodes).
pub fn to_bytes(ops: &[Op]) -> Vec<u8> {
    // Room for a typical patch up front. sonic-rs reserves six times a string's length before
    // writing it, so the 3 KB `VAULT_CONFIG` values need 20 KB free: with 16 KiB the buffer
    // was regrown, and copied, in every review.
    let mut out = Vec::with_capacity(32 * 1024);
    // Serialising typed values into a `Vec` cannot fail.
    let _ = sonic_rs::to_writer(&mut out, ops);
    out
}

/// The operations as JSON values (for `render`, tests and applying the patch).
pub fn to_values(ops: &[Op]) -> Vec<Value> {
    ops.iter()
        .map(|op| serde_json::to_value(op).unwrap_or(Value::Null))
        .collect()
}

/// Collects operations in order, implementing upstream's array-append rule.
#[derive(Debug, Default)]
pub struct PatchBuilder {
    ops: Vec<Op>,
    /// Arrays this patch has created, so a later group appends instead of replacing them.
    created: BTreeSet<String>,
}

impl PatchBuilder {
    /// A new, empty patch.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty patch with room for `ops` operations.
    pub fn with_capacity(ops: usize) -> Self {
        Self {
            ops: Vec::with_capacity(ops),
            created: BTreeSet::new(),
        }
    }

    /// `add path value`.
    pub fn add(&mut self, path: impl Into<String>, value: OpValue) {
        self.ops.push(Op {
            path: path.into(),
            value,
        });
    }

    /// Appends `items` to the array at `base`, which held `original_len` items in the request.
    ///
    /// Upstream creates an absent or empty array with `add <base> [first]` and appends the rest
    /// with `<base>/-`; it checks the ORIGINAL array for every group, so a pod without volumes got
    /// its volume array replaced by each later group. Here an array is created once per patch
    /// (the fix mutation.md §4.1 recommends); for non-empty arrays the ops are upstream's.
    pub fn append(
        &mut self,
        base: &str,
        original_len: usize,
        items: impl IntoIterator<Item = OpValue>,
    ) {
        for item in items {
            if original_len == 0 && !self.created.contains(base) {
                self.created.insert(base.to_owned());
                self.add(base, OpValue::Array(vec![item]));
            } else {
                self.add([base, "/-"].concat(), item);
            }
        }
    }

    /// The operations, in order.
    pub fn into_ops(self) -> Vec<Op> {
        self.ops
    }
}

/// Turns operations into a typed patch (the json-patch major version kube uses).
pub fn to_patch(ops: Vec<Value>) -> Result<Patch, PatchError> {
    serde_json::from_value(Value::Array(ops)).map_err(|e| PatchError::Decode(e.to_string()))
}

/// Applies a patch to a copy of `doc`.
pub fn apply(doc: &Value, patch: &Patch) -> Result<Value, PatchError> {
    let mut out = doc.clone();
    json_patch::patch(&mut out, &patch.0).map_err(|e| PatchError::Apply(e.to_string()))?;
    Ok(out)
}

/// Applies a user-supplied patch document (`agent-json-patch`) to `doc`.
///
/// `null` and `[]` change nothing. An unknown `op` fails with upstream's `Unexpected kind`.
pub fn apply_user_patch(doc: &Value, user: &Value) -> Result<Value, PatchError> {
    let ops = match user {
        Value::Null => return Ok(doc.clone()),
        Value::Array(ops) => ops,
        _ => {
            return Err(PatchError::Decode(
                "a JSON patch must be an array of operations".to_owned(),
            ));
        }
    };
    for op in ops {
        let kind = op.get("op").and_then(Value::as_str).unwrap_or_default();
        if !matches!(
            kind,
            "add" | "remove" | "replace" | "move" | "copy" | "test"
        ) {
            return Err(PatchError::Apply(format!("Unexpected kind: {kind}")));
        }
    }
    let patch = to_patch(ops.clone())?;
    // One operation at a time, to stop before the document grows past the budget.
    let mut out = doc.clone();
    let mut added = 0_usize;
    for (i, op) in patch.0.iter().enumerate() {
        added = added.saturating_add(growth(&out, op));
        if added > MAX_USER_PATCH_GROWTH {
            return Err(PatchError::Apply(format!(
                "operation '/{i}': the patch adds more than {MAX_USER_PATCH_GROWTH} bytes to the container"
            )));
        }
        // `out` is a copy thrown away on error, so the unsafe (no rollback) variant is fine.
        json_patch::patch_unsafe(&mut out, std::slice::from_ref(op)).map_err(|mut e| {
            // Numbered as if the patch had been applied whole, as before.
            e.operation = i;
            PatchError::Apply(e.to_string())
        })?;
    }
    Ok(out)
}

/// Most bytes a user patch (`agent-json-patch`, `agent-init-json-patch`) may add to its agent
/// container, counting the JSON size of every `add`, `replace` and `copy` value (removals give
/// nothing back, so the work done is bounded too). Without a bound, a few dozen `copy`
/// operations that each double an array grow the container exponentially: a 2.5 kB annotation
/// took the injector to gigabytes (found while fuzzing; upstream's json-patch has the same
/// unbounded default). 1 MiB is far beyond any real patch and beyond what the API server
/// accepts as a whole object anyway.
pub const MAX_USER_PATCH_GROWTH: usize = 1024 * 1024;

/// How many bytes `op` adds to `doc` at most.
fn growth(doc: &Value, op: &json_patch::PatchOperation) -> usize {
    use json_patch::PatchOperation::{Add, Copy, Replace};
    match op {
        Add(o) => json_len(&o.value),
        Replace(o) => json_len(&o.value),
        Copy(o) => doc.pointer(o.from.as_str()).map_or(0, json_len),
        _ => 0,
    }
}

/// The length of `value` serialised as compact JSON, without building the string.
fn json_len(value: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing a `Value` to a sink that never fails cannot fail.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn pointer_escaping_handles_tilde_before_slash() {
        assert_eq!(
            escape_pointer("vault.hashicorp.com/agent-inject-status"),
            "vault.hashicorp.com~1agent-inject-status"
        );
        assert_eq!(escape_pointer("a~/b"), "a~0~1b");
    }

    #[test]
    fn append_to_a_non_empty_array_uses_dash_paths() {
        let mut b = PatchBuilder::new();
        b.append(
            "/spec/volumes",
            1,
            [OpValue::Bool(true), OpValue::Bool(false)],
        );
        let ops = to_values(&b.into_ops());
        assert_eq!(ops[0]["path"], "/spec/volumes/-");
        assert_eq!(ops[1]["path"], "/spec/volumes/-");
    }

    #[test]
    fn an_empty_array_is_created_once_per_patch() {
        let mut b = PatchBuilder::new();
        let n = |v: &str| OpValue::String(v.to_owned());
        b.append("/spec/volumes", 0, [n("1"), n("2")]);
        b.append("/spec/volumes", 0, [n("3")]);
        let ops = to_values(&b.into_ops());
        let paths: Vec<_> = ops.iter().map(|o| o["path"].as_str().unwrap()).collect();
        assert_eq!(
            paths,
            ["/spec/volumes", "/spec/volumes/-", "/spec/volumes/-"]
        );
        let patch = to_patch(ops).unwrap();
        let out = apply(&json!({"spec": {}}), &patch).unwrap();
        assert_eq!(out, json!({"spec": {"volumes": ["1", "2", "3"]}}));
    }

    #[test]
    fn user_patches_reject_unknown_ops_with_upstream_text() {
        let err = apply_user_patch(&json!({}), &json!([{"op": "invalid"}])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "failed to apply JSON patch: Unexpected kind: invalid"
        );
    }

    #[test]
    fn null_and_empty_user_patches_change_nothing() {
        let doc = json!({"name": "x"});
        assert_eq!(apply_user_patch(&doc, &Value::Null).unwrap(), doc);
        assert_eq!(apply_user_patch(&doc, &json!([])).unwrap(), doc);
    }

    #[test]
    fn user_patch_add_under_a_missing_parent_fails() {
        let err = apply_user_patch(
            &json!({"name": "x"}),
            &json!([{"op": "add", "path": "/securityContext/runAsUser", "value": 1}]),
        )
        .unwrap_err();
        assert!(
            err.to_string().starts_with("failed to apply JSON patch: "),
            "{err}"
        );
    }
}
