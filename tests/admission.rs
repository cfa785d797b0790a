//! AdmissionReview handling: versions, uid, response shapes and unreadable bodies.
#![allow(clippy::unwrap_used)]

mod support;

use base64::Engine as _;
use serde_json::{Value, json};
use vault_injector::admission::{InjectionType, Outcome, ReviewError, review};

fn review_of(api_version: &str, object: Value, namespace: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": api_version,
        "kind": "AdmissionReview",
        "request": {
            "uid": "0c9a8d74-9cb7-44dd-b98e-09fd62def2f4",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": namespace,
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
            "object": object,
            "dryRun": false
        }
    }))
    .unwrap()
}

fn reply(body: &[u8]) -> (Value, Outcome) {
    let r = review(body, &support::defaults()).unwrap();
    (serde_json::from_slice(&r.body).unwrap(), r.outcome)
}

#[test]
fn v1_and_v1beta1_reviews_are_answered_in_their_own_version_with_the_uid() {
    for version in ["admission.k8s.io/v1", "admission.k8s.io/v1beta1"] {
        let (out, outcome) = reply(&review_of(version, support::pod().build(), "apps"));
        assert_eq!(out["apiVersion"], version);
        assert_eq!(out["kind"], "AdmissionReview");
        assert_eq!(
            out["response"]["uid"],
            "0c9a8d74-9cb7-44dd-b98e-09fd62def2f4"
        );
        assert_eq!(out["response"]["allowed"], true);
        assert_eq!(out["response"]["patchType"], "JSONPatch");
        assert!(out.get("request").is_none());
        assert_eq!(
            outcome,
            Outcome::Injected(Some(InjectionType::InitAndSidecar))
        );
        let patch = base64::engine::general_purpose::STANDARD
            .decode(out["response"]["patch"].as_str().unwrap())
            .unwrap();
        let ops: Vec<Value> = serde_json::from_slice(&patch).unwrap();
        assert_eq!(ops.last().unwrap()["value"], "injected");
    }
}

#[test]
fn a_review_without_api_version_is_treated_as_v1() {
    let mut body: Value =
        serde_json::from_slice(&review_of("x", support::pod().build(), "apps")).unwrap();
    body.as_object_mut().unwrap().remove("apiVersion");
    let (out, _) = reply(&serde_json::to_vec(&body).unwrap());
    assert_eq!(out["apiVersion"], "admission.k8s.io/v1");
}

#[test]
fn skipped_pods_get_allowed_without_a_patch() {
    let (out, outcome) = reply(&review_of(
        "admission.k8s.io/v1",
        support::pod().without("agent-inject").build(),
        "apps",
    ));
    assert_eq!(
        out["response"],
        json!({"uid": "0c9a8d74-9cb7-44dd-b98e-09fd62def2f4", "allowed": true})
    );
    assert_eq!(outcome, Outcome::Skipped);
}

#[test]
fn refusals_carry_only_the_message_and_empty_metadata() {
    let (out, outcome) = reply(&review_of(
        "admission.k8s.io/v1",
        support::pod().without("role").build(),
        "apps",
    ));
    assert_eq!(out["response"]["allowed"], false);
    let status = out["response"]["status"].as_object().unwrap();
    assert_eq!(status.keys().collect::<Vec<_>>(), ["metadata", "message"]);
    assert_eq!(status["metadata"], json!({}));
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .starts_with("error validating agent configuration: no Vault role found")
    );
    assert!(matches!(outcome, Outcome::Denied(_)));
    let (out, _) = reply(&review_of(
        "admission.k8s.io/v1",
        support::pod().build(),
        "kube-system",
    ));
    assert_eq!(
        out["response"]["status"]["message"],
        "error with request namespace: cannot inject into system namespaces: kube-system"
    );
}

#[test]
fn pre_populate_flags_decide_the_injection_type() {
    let cases = [
        (
            support::pod().ann("agent-pre-populate-only", "true"),
            Some(InjectionType::InitOnly),
        ),
        (
            support::pod().ann("agent-pre-populate", "false"),
            Some(InjectionType::SidecarOnly),
        ),
        (
            support::pod()
                .ann("agent-pre-populate", "false")
                .ann("agent-pre-populate-only", "true"),
            None,
        ),
    ];
    for (p, want) in cases {
        let (_, outcome) = reply(&review_of("admission.k8s.io/v1", p.build(), "apps"));
        assert_eq!(outcome, Outcome::Injected(want));
    }
}

#[test]
fn injection_type_labels_are_upstreams() {
    assert_eq!(InjectionType::InitAndSidecar.label(), "init_and_sidecar");
    assert_eq!(InjectionType::InitOnly.label(), "init_only");
    assert_eq!(InjectionType::SidecarOnly.label(), "sidecar_only");
}

#[test]
fn an_object_that_is_not_a_pod_is_denied_with_the_uid_kept() {
    let (out, outcome) = reply(&review_of(
        "admission.k8s.io/v1",
        json!({"spec": {"containers": 7}}),
        "apps",
    ));
    assert_eq!(
        out["response"]["uid"],
        "0c9a8d74-9cb7-44dd-b98e-09fd62def2f4"
    );
    assert_eq!(out["response"]["allowed"], false);
    assert!(matches!(outcome, Outcome::Denied(m) if m.contains("invalid type")));
}

#[test]
fn unreadable_bodies_are_errors_not_panics() {
    let d = support::defaults();
    let cases: &[(&[u8], u16)] = &[
        (b"", 500),
        (b"not json", 500),
        (b"[1,2]", 500),
        (
            br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#,
            400,
        ),
        (br#"{"request": null}"#, 400),
        (br#"{"request": 5}"#, 500),
        (br#"{"request": {"uid": 5}}"#, 500),
    ];
    for (body, status) in cases {
        let err = review(body, &d).unwrap_err();
        assert_eq!(
            err.http_status(),
            *status,
            "{}",
            String::from_utf8_lossy(body)
        );
        assert!(
            err.to_string()
                .starts_with("error decoding admission request: ")
        );
    }
    assert_eq!(review(b"{}", &d).unwrap_err(), ReviewError::NoRequest);
}

#[test]
fn a_request_without_object_is_denied_not_crashed() {
    let body = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","namespace":"apps"}}"#;
    let (out, _) = reply(body);
    assert_eq!(out["response"]["allowed"], false);
    assert_eq!(out["response"]["uid"], "u");
}
