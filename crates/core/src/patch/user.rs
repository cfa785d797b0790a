//! The user's own patches (`agent-json-patch`, `agent-init-json-patch`), applied with the rules
//! of the json-patch library upstream uses, within a growth budget.

use super::*;

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
pub(super) fn growth(doc: &Value, op: &Map<String, Value>) -> usize {
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
pub(super) const NULL: Value = Value::Null;

/// One operation, with the library's wording for its failures.
pub(super) fn apply_op(doc: &mut Value, op: &Map<String, Value>) -> Result<(), String> {
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
pub(super) fn field(op: &Map<String, Value>, name: &str) -> Result<String, String> {
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

pub(super) fn go_json_kind(v: &Value) -> &'static str {
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
pub(super) fn unescape_token(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// The library's `findObject`: the object or array holding the target of `path`, and the
/// target's unescaped key. `None` when a segment on the way is missing, `null` or a scalar. The
/// first segment is skipped whatever it holds, as the library splits on `/` and drops it.
pub(super) fn parent_of<'a>(doc: &'a mut Value, path: &str) -> Option<(&'a mut Value, String)> {
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
pub(super) fn lookup<'a>(doc: &'a Value, path: &str) -> Option<&'a Value> {
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

pub(super) fn invalid_index(index: i64) -> String {
    format!("Unable to access invalid index: {index}: invalid index referenced")
}

/// An existing element's index: Go's `Atoi`, negative counting from the end.
pub(super) fn array_index(len: usize, key: &str) -> Result<usize, String> {
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
pub(super) fn get<'a>(container: &'a Value, key: &str) -> Result<Option<&'a Value>, String> {
    let found = match container {
        Value::Object(map) => map.get(key),
        Value::Array(items) => items.get(array_index(items.len(), key)?),
        _ => None,
    };
    Ok(found.filter(|v| !v.is_null()))
}

/// `replace`'s write, once [`get`] found the target.
pub(super) fn set(container: &mut Value, key: &str, value: Value) -> Result<(), String> {
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
pub(super) fn add(container: &mut Value, key: &str, value: Value) -> Result<(), String> {
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
pub(super) fn remove(container: &mut Value, key: &str) -> Result<Value, String> {
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
pub(super) fn json_len(value: &Value) -> usize {
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
