//! Inputs found by the fuzz targets in `fuzz/` (or while writing them) that once misbehaved,
//! replayed by plain `cargo test`. Each test says what went wrong and how it is bounded now.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::{Value, json};
use vault_injector::admission::{self, Outcome};
use vault_injector::patch::{self, MAX_USER_PATCH_GROWTH};
use vault_injector::settings::Settings;

/// `agent-json-patch` copy bomb: each `copy` of `/env` onto its own end doubles the array, so
/// 30 operations (2.5 kB of annotation) asked for 2^30 copies of a 1 kB variable. The injector
/// ran out of memory (or, under a memory limit, was killed) on a single review. Now the patch is
/// refused once it has added `MAX_USER_PATCH_GROWTH` bytes: at operation 10 (the tenth copy, the
/// agent's environment being about 1 kB before the first), so the last 20 doublings are never
/// attempted. Where it stops is the bound, with no clock involved.
#[test]
fn a_json_patch_copy_bomb_is_refused_promptly() {
    let review = review_of(bomb_pod("agent-json-patch"));
    let reviewed = admission::review(review.as_bytes(), &Settings::default().agent).unwrap();
    let Outcome::Denied(reason) = &reviewed.outcome else {
        panic!("not refused: {:?}", reviewed.outcome)
    };
    assert!(
        reason.contains("operation '/10': the patch adds more than 1048576 bytes to the container"),
        "{reason}"
    );
}

#[test]
fn an_init_json_patch_copy_bomb_is_refused_promptly() {
    let review = review_of(bomb_pod("agent-init-json-patch"));
    let reviewed = admission::review(review.as_bytes(), &Settings::default().agent).unwrap();
    let Outcome::Denied(reason) = &reviewed.outcome else {
        panic!("not refused: {:?}", reviewed.outcome)
    };
    assert!(reason.contains("operation '/10'"), "{reason}");
}

#[test]
fn the_growth_budget_counts_add_replace_and_copy_but_not_remove() {
    let doc = json!({"env": []});
    let chunk = "x".repeat(MAX_USER_PATCH_GROWTH / 4);
    // Three quarters of the budget added, removed, and added again: still over in total.
    let ops = json!([
        {"op": "add", "path": "/a", "value": chunk},
        {"op": "copy", "from": "/a", "path": "/b"},
        {"op": "remove", "path": "/a"},
        {"op": "remove", "path": "/b"},
        {"op": "replace", "path": "/env", "value": chunk},
        {"op": "copy", "from": "/env", "path": "/c"},
    ]);
    let err = patch::apply_user_patch(&doc, &ops).unwrap_err().to_string();
    assert!(err.contains("operation '/5'"), "{err}");

    // Well under the budget: applied as before, failures worded as upstream's library words them.
    let ok = json!([{"op": "add", "path": "/env/-", "value": {"name": "A", "value": chunk}}]);
    let out = patch::apply_user_patch(&doc, &ok).unwrap();
    assert_eq!(out["env"][0]["name"], "A");
    let bad = json!([
        {"op": "add", "path": "/x", "value": 1},
        {"op": "remove", "path": "/nope"},
    ]);
    let err = patch::apply_user_patch(&doc, &bad).unwrap_err().to_string();
    assert_eq!(
        err,
        "failed to apply JSON patch: error in remove for path: '/nope': Unable to remove nonexistent key: nope: missing value"
    );
}

/// A pod whose `annotation` holds 30 doubling copies of a 1 kB environment variable.
fn bomb_pod(annotation: &str) -> Value {
    let mut ops = vec![
        json!({"op": "add", "path": "/env/-", "value": {"name": "A", "value": "x".repeat(1000)}}),
    ];
    ops.extend((0..30).map(|_| json!({"op": "copy", "from": "/env", "path": "/env/-"})));
    support::pod()
        .name("bomb")
        .namespace("apps")
        .ann(annotation, &Value::Array(ops).to_string())
        .build()
}

fn review_of(pod: Value) -> String {
    support::review(pod).uid("bomb").bare().into_json()
}

/// Found by `fuzz/run.sh review` (30 min run): a lone surrogate escape (`\udddd`) in a string
/// the fast decode path skips. The fast path answered the review; the general path refuses the
/// body (as Go's decoder would not, but the two paths must agree). The fast path now reads the
/// whole body as the general path does before it takes it.
#[test]
fn a_lone_surrogate_in_a_skipped_string_gets_the_general_paths_answer() {
    use vault_injector::admission::{NamespaceDefaults, review_general, takes_fast_path};
    let body = include_bytes!("fuzz/review-lone-surrogate.json");
    let defaults = Settings::default().agent;
    assert!(!takes_fast_path(body));
    let fast = admission::review(body, &defaults);
    let general = review_general(body, &defaults, &|_| NamespaceDefaults::Off);
    assert!(general.is_err(), "{:?}", general.map(|r| r.outcome));
    assert_eq!(fast.err(), general.err());
}

/// Found by `fuzz/run.sh review` within seconds of adding the scan that lets ordinary bodies
/// skip the full check: the body `"\` (an escape as the last byte) moved the scan past the
/// end and it panicked slicing there.
#[test]
fn an_escape_as_the_last_byte_is_refused_not_a_panic() {
    let defaults = Settings::default().agent;
    for body in [&b"\"\\"[..], b"{\"a\":\"\\", b"\"\\u"] {
        let err = admission::review(body, &defaults).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("error decoding admission request"),
            "{err}"
        );
    }
}
