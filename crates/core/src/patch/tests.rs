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
