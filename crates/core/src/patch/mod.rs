//! RFC 6902 patch building against the ORIGINAL request object, and patch application.
//!
//! The injector never diffs whole pods: it emits `add` operations in upstream's order, so fields
//! it does not know (newer Kubernetes fields, extensions) are never touched, and the result of
//! applying the patch to the original JSON is, by construction, the mutated pod.

use std::collections::{BTreeMap, BTreeSet};

use json_patch::Patch;
use k8s_openapi::api::core::v1::{Container, Volume, VolumeMount};
use serde::ser::{Serialize, SerializeStruct, Serializer};
use serde_json::{Map, Value};
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
    /// (so an `add` to a missing array creates it instead of failing); for non-empty arrays the ops are upstream's.
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

#[cfg(test)]
mod tests;
mod user;

pub use user::{MAX_USER_PATCH_GROWTH, apply_user_patch};
