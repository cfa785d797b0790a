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

/// Applies a user-supplied patch document (`agent-json-patch`, `agent-init-json-patch`) to
/// `doc`, with the semantics of the library upstream applies them with
/// (github.com/evanphx/json-patch, the v5.9 module without `/v5`), which are laxer than
/// RFC 6902 in ways users rely on:
///
/// - a negative array index counts from the end (`/env/-1` is the last entry) in every
///   operation and inside paths; for `add`, `-1` inserts before the end, i.e. appends;
/// - array indexes are read as Go's `strconv.Atoi` reads them (`+1` and `01` are 1);
/// - `replace` of a missing object member adds it; `copy` from a missing member, and `add`
///   without a `value`, write `null`; `test` of a missing member passes for a `null` value;
/// - the first segment of a path is ignored (`x/name` is `/name`), and `replace` or `test` of
///   the whole document (path `""`) work, `add` and `remove` of it do not;
/// - operations apply in order and the first failure stops the patch, unknown ones included
///   (`Unexpected kind: ...`).
///
/// `null` and `[]` change nothing. Scalars are compared by value in `test`, where the library
/// compares their JSON spelling.
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
    let mut out = doc.clone();
    let mut added = 0_usize;
    for (i, op) in ops.iter().enumerate() {
        let Value::Object(op) = op else {
            return Err(PatchError::Decode(
                "a JSON patch operation must be an object".to_owned(),
            ));
        };
        // Checked before each operation, to stop before the document grows past the budget.
        added = added.saturating_add(growth(&out, op));
        if added > MAX_USER_PATCH_GROWTH {
            return Err(PatchError::Apply(format!(
                "operation '/{i}': the patch adds more than {MAX_USER_PATCH_GROWTH} bytes to the container"
            )));
        }
        apply_op(&mut out, op).map_err(PatchError::Apply)?;
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
fn growth(doc: &Value, op: &Map<String, Value>) -> usize {
    match op.get("op").and_then(Value::as_str) {
        Some("add" | "replace") => op.get("value").map_or(4, json_len),
        Some("copy") => op
            .get("from")
            .and_then(Value::as_str)
            .and_then(|from| lookup(doc, from))
            .map_or(4, json_len),
        _ => 0,
    }
}

/// `null`, what the library writes where an operation has no value.
const NULL: Value = Value::Null;

/// One operation, with the library's wording for its failures.
fn apply_op(doc: &mut Value, op: &Map<String, Value>) -> Result<(), String> {
    let kind = match op.get("op") {
        Some(Value::String(kind)) => kind.as_str(),
        _ => "unknown",
    };
    let value = || op.get("value").cloned().unwrap_or(NULL);
    match kind {
        "add" => {
            let path = field(op, "path")
                .map_err(|_| "add operation failed to decode path: missing value".to_owned())?;
            let (parent, key) = parent_of(doc, &path).ok_or_else(|| {
                format!(
                    "add operation does not apply: doc is missing path: \"{path}\": missing value"
                )
            })?;
            add(parent, &key, value()).map_err(|e| format!("error in add for path: '{path}': {e}"))
        }
        "remove" => {
            let path = field(op, "path")
                .map_err(|_| "remove operation failed to decode path: missing value".to_owned())?;
            let (parent, key) = parent_of(doc, &path).ok_or_else(|| {
                format!("remove operation does not apply: doc is missing path: \"{path}\": missing value")
            })?;
            remove(parent, &key)
                .map(drop)
                .map_err(|e| format!("error in remove for path: '{path}': {e}"))
        }
        "replace" => {
            let path = field(op, "path")
                .map_err(|e| format!("replace operation failed to decode path: {e}"))?;
            if path.is_empty() {
                let value = value();
                if !(value.is_object() || value.is_array()) {
                    return Err("replace operation value must be object or array".to_owned());
                }
                *doc = value;
                return Ok(());
            }
            let (parent, key) = parent_of(doc, &path).ok_or_else(|| {
                format!(
                    "replace operation does not apply: doc is missing path: {path}: missing value"
                )
            })?;
            get(parent, &key).map_err(|_| {
                format!(
                    "replace operation does not apply: doc is missing key: {path}: missing value"
                )
            })?;
            set(parent, &key, value())
                .map_err(|e| format!("error in remove for path: '{path}': {e}"))
        }
        "move" => {
            let from = field(op, "from")
                .map_err(|e| format!("move operation failed to decode from: {e}"))?;
            let (parent, key) = parent_of(doc, &from).ok_or_else(|| {
                format!(
                    "move operation does not apply: doc is missing from path: {from}: missing value"
                )
            })?;
            get(parent, &key).map_err(|e| format!("error in move for path: '{key}': {e}"))?;
            let moved = remove(parent, &key)
                .map_err(|e| format!("error in move for path: '{key}': {e}"))?;
            let path = field(op, "path")
                .map_err(|e| format!("move operation failed to decode path: {e}"))?;
            let (parent, key) = parent_of(doc, &path).ok_or_else(|| {
                format!("move operation does not apply: doc is missing destination path: {path}: missing value")
            })?;
            add(parent, &key, moved).map_err(|e| format!("error in move for path: '{path}': {e}"))
        }
        "copy" => {
            let from = field(op, "from")
                .map_err(|e| format!("copy operation failed to decode from: {e}"))?;
            let (parent, key) = parent_of(doc, &from).ok_or_else(|| {
                format!(
                    "copy operation does not apply: doc is missing from path: {from}: missing value"
                )
            })?;
            let copied = get(parent, &key)
                .map_err(|e| format!("error in copy for from: '{from}': {e}"))?
                .cloned()
                .unwrap_or(NULL);
            let path = field(op, "path")
                .map_err(|_| "copy operation failed to decode path: missing value".to_owned())?;
            let (parent, key) = parent_of(doc, &path).ok_or_else(|| {
                format!("copy operation does not apply: doc is missing destination path: {path}: missing value")
            })?;
            add(parent, &key, copied)
                .map_err(|e| format!("error while adding value during copy: {e}"))
        }
        "test" => {
            let path = field(op, "path")
                .map_err(|e| format!("test operation failed to decode path: {e}"))?;
            let failed = || format!("testing value {path} failed: test failed");
            let expected = op.get("value");
            if path.is_empty() {
                return if expected == Some(&*doc) {
                    Ok(())
                } else {
                    Err(failed())
                };
            }
            let (parent, key) = parent_of(doc, &path).ok_or_else(|| {
                format!("test operation does not apply: is missing path: {path}: missing value")
            })?;
            let found =
                get(parent, &key).map_err(|e| format!("error in test for path: '{path}': {e}"))?;
            let same = match (found, expected) {
                (None, None | Some(Value::Null)) => true,
                (Some(found), Some(expected)) => found == expected,
                _ => false,
            };
            if same { Ok(()) } else { Err(failed()) }
        }
        other => Err(format!("Unexpected kind: {other}")),
    }
}

/// The operation's `path` or `from`: a missing or `null` member, or a non-string one, fails.
fn field(op: &Map<String, Value>, name: &str) -> Result<String, String> {
    match op.get(name) {
        None | Some(Value::Null) => Err(format!(
            "operation{} missing {name} field: missing value",
            if name == "path" { "" } else { "," }
        )),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(format!(
            "json: cannot unmarshal {} into Go value of type string",
            go_json_kind(other)
        )),
    }
}

fn go_json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// RFC 6901 unescaping of one reference token, in one pass (`~01` is `~1`).
fn unescape_token(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// The library's `findObject`: the object or array holding the target of `path`, and the
/// target's unescaped key. `None` when a segment on the way is missing, `null` or a scalar. The
/// first segment is skipped whatever it holds, as the library splits on `/` and drops it.
fn parent_of<'a>(doc: &'a mut Value, path: &str) -> Option<(&'a mut Value, String)> {
    let segments: Vec<&str> = path.split('/').collect();
    let (last, inner) = segments.split_last()?;
    let inner = inner.get(1..)?;
    let mut current = doc;
    for segment in inner {
        let key = unescape_token(segment);
        let index = match &*current {
            Value::Array(items) => Some(array_index(items.len(), &key).ok()?),
            _ => None,
        };
        let next = match (current, index) {
            (Value::Array(items), Some(i)) => items.get_mut(i)?,
            (Value::Object(map), _) => map.get_mut(&key)?,
            _ => return None,
        };
        if !(next.is_object() || next.is_array()) {
            return None;
        }
        current = next;
    }
    Some((current, unescape_token(last)))
}

/// The member at `path`, read as [`parent_of`] and [`get`] read it (`None` for anything
/// missing or `null`).
fn lookup<'a>(doc: &'a Value, path: &str) -> Option<&'a Value> {
    let segments: Vec<&str> = path.split('/').collect();
    if segments.len() < 2 {
        return None;
    }
    let mut current = doc;
    for (n, segment) in segments.iter().enumerate().skip(1) {
        let key = unescape_token(segment);
        let next = match current {
            Value::Array(items) => items.get(array_index(items.len(), &key).ok()?)?,
            Value::Object(map) => map.get(&key)?,
            _ => return None,
        };
        let inner = n + 1 < segments.len();
        if inner && !(next.is_object() || next.is_array()) {
            return None;
        }
        current = next;
    }
    (!current.is_null()).then_some(current)
}

fn invalid_index(index: i64) -> String {
    format!("Unable to access invalid index: {index}: invalid index referenced")
}

/// An existing element's index: Go's `Atoi`, negative counting from the end.
fn array_index(len: usize, key: &str) -> Result<usize, String> {
    let len = i64::try_from(len).unwrap_or(i64::MAX);
    let mut index = crate::goparse::atoi(key).map_err(|e| e.to_string())?;
    if index < 0 {
        if index < -len {
            return Err(invalid_index(index));
        }
        index += len;
    }
    if index >= len {
        return Err(invalid_index(index));
    }
    usize::try_from(index).map_err(|_| invalid_index(index))
}

/// A member of an object or array; `None` for a missing object member (not an error there) or
/// a `null`, as the library holds both as nil.
fn get<'a>(container: &'a Value, key: &str) -> Result<Option<&'a Value>, String> {
    let found = match container {
        Value::Object(map) => map.get(key),
        Value::Array(items) => items.get(array_index(items.len(), key)?),
        _ => None,
    };
    Ok(found.filter(|v| !v.is_null()))
}

/// `replace`'s write, once [`get`] found the target.
fn set(container: &mut Value, key: &str, value: Value) -> Result<(), String> {
    match container {
        Value::Object(map) => {
            map.insert(key.to_owned(), value);
            Ok(())
        }
        Value::Array(items) => {
            let index = array_index(items.len(), key)?;
            items[index] = value;
            Ok(())
        }
        _ => Err("unknown object type".to_owned()),
    }
}

/// `add`: an object member is set; in an array, `-` appends and an index (at most the length,
/// negative counting from the end of the array one longer) inserts.
fn add(container: &mut Value, key: &str, value: Value) -> Result<(), String> {
    match container {
        Value::Object(map) => {
            map.insert(key.to_owned(), value);
            Ok(())
        }
        Value::Array(items) => {
            if key == "-" {
                items.push(value);
                return Ok(());
            }
            let mut index = crate::goparse::atoi(key)
                .map_err(|e| format!("value was not a proper array index: '{key}': {e}"))?;
            let len = i64::try_from(items.len()).unwrap_or(i64::MAX) + 1;
            if index >= len {
                return Err(invalid_index(index));
            }
            if index < 0 {
                if index < -len {
                    return Err(invalid_index(index));
                }
                index += len;
            }
            let index = usize::try_from(index).map_err(|_| invalid_index(index))?;
            items.insert(index, value);
            Ok(())
        }
        _ => Err("unknown object type".to_owned()),
    }
}

/// `remove`, returning what was removed (for `move`).
fn remove(container: &mut Value, key: &str) -> Result<Value, String> {
    match container {
        Value::Object(map) => map
            .shift_remove(key)
            .ok_or_else(|| format!("Unable to remove nonexistent key: {key}: missing value")),
        Value::Array(items) => {
            let index = array_index(items.len(), key)?;
            Ok(items.remove(index))
        }
        _ => Err("unknown object type".to_owned()),
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

    /// Outcomes checked against the library upstream uses (its v5.9.11 `Patch.Apply` on the
    /// same document).
    #[test]
    fn user_patches_follow_upstreams_library_where_it_departs_from_rfc_6902() {
        let doc = json!({"name": "a", "env": [{"name": "A"}, {"name": "B"}, {"name": "C"}]});
        let ok = |patch: Value| apply_user_patch(&doc, &patch).unwrap();
        let err = |patch: Value| apply_user_patch(&doc, &patch).unwrap_err().to_string();
        let env = |out: Value| out["env"].clone();
        // Negative indexes, and Atoi's spellings of indexes.
        assert_eq!(
            env(ok(json!([{"op": "remove", "path": "/env/-1"}]))),
            json!([{"name": "A"}, {"name": "B"}])
        );
        assert_eq!(
            env(ok(json!([{"op": "add", "path": "/env/-4", "value": 0}]))),
            json!([0, {"name": "A"}, {"name": "B"}, {"name": "C"}])
        );
        assert_eq!(
            env(ok(
                json!([{"op": "remove", "path": "/env/+1"}, {"op": "remove", "path": "/env/01"}])
            )),
            json!([{"name": "A"}])
        );
        assert_eq!(
            err(json!([{"op": "add", "path": "/env/-5", "value": 0}])),
            "failed to apply JSON patch: error in add for path: '/env/-5': Unable to access invalid index: -5: invalid index referenced"
        );
        assert_eq!(
            err(json!([{"op": "remove", "path": "/env/-"}])),
            "failed to apply JSON patch: error in remove for path: '/env/-': strconv.Atoi: parsing \"-\": invalid syntax"
        );
        // replace adds a missing member; add without a value and copy from nothing write null.
        assert_eq!(
            ok(json!([{"op": "replace", "path": "/tty", "value": true}]))["tty"],
            true
        );
        assert_eq!(
            ok(json!([{"op": "add", "path": "/tty"}]))["tty"],
            Value::Null
        );
        assert_eq!(
            ok(json!([{"op": "copy", "from": "/nothing", "path": "/tty"}]))["tty"],
            Value::Null
        );
        // test: a missing member matches null or no value; the whole document with "".
        ok(
            json!([{"op": "test", "path": "/nothing"}, {"op": "test", "path": "/nothing", "value": null}]),
        );
        assert_eq!(
            err(json!([{"op": "test", "path": "/name", "value": null}])),
            "failed to apply JSON patch: testing value /name failed: test failed"
        );
        ok(json!([{"op": "test", "path": "", "value": doc.clone()}]));
        assert_eq!(
            ok(json!([{"op": "replace", "path": "", "value": {"name": "b"}}])),
            json!({"name": "b"})
        );
        // The first segment is dropped whatever it says; add and remove of "" fail.
        assert_eq!(
            ok(json!([{"op": "add", "path": "x/tty", "value": 1}]))["tty"],
            1
        );
        assert_eq!(
            err(json!([{"op": "remove", "path": ""}])),
            "failed to apply JSON patch: remove operation does not apply: doc is missing path: \"\": missing value"
        );
        // Operations run in order: an unknown one fails where it stands.
        assert_eq!(
            err(json!([{"op": "remove", "path": "/nothing"}, {"op": "bogus"}])),
            "failed to apply JSON patch: error in remove for path: '/nothing': Unable to remove nonexistent key: nothing: missing value"
        );
        assert_eq!(
            err(json!([{"path": "/name"}])),
            "failed to apply JSON patch: Unexpected kind: unknown"
        );
        // move: removed first, then added at the destination.
        assert_eq!(
            env(ok(
                json!([{"op": "move", "from": "/env/0", "path": "/env/-1"}])
            )),
            json!([{"name": "B"}, {"name": "C"}, {"name": "A"}])
        );
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
