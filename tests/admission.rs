//! AdmissionReview handling: versions, uid, response shapes and unreadable bodies.
#![allow(clippy::unwrap_used)]

mod support;

use base64::Engine as _;
use serde_json::{Value, json};
use vault_injector::admission::{InjectionType, Outcome, ReviewError, review};

/// A review of `object` in `namespace`, in the given AdmissionReview version.
fn review_of(api_version: &str, object: Value, namespace: &str) -> Vec<u8> {
    support::review(object)
        .api_version(api_version)
        .namespace(namespace)
        .into_bytes()
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
        assert_eq!(out["response"]["uid"], support::reviews::UID);
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
        json!({"uid": support::reviews::UID, "allowed": true})
    );
    assert_eq!(
        outcome,
        Outcome::Skipped(vault_injector::annotations::SkipReason::NotAnnotated)
    );
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
    assert_eq!(out["response"]["uid"], support::reviews::UID);
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

/// The fast decode path of `review` (straight from bytes into the typed pod) answers every body
/// exactly as the general path (a `Value` first) does: the same reply bytes, outcome and
/// namespace, or the same error. Over every golden fixture, in well-formed and odd shapes.
#[test]
fn the_fast_path_answers_exactly_as_the_general_path() {
    use vault_injector::admission::{NamespaceDefaults, review_general, takes_fast_path};
    let defaults = support::defaults();
    let off = |_: &str| NamespaceDefaults::Off;
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut bodies: Vec<Vec<u8>> = Vec::new();
    for entry in std::fs::read_dir(fixtures).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let pod: Value = serde_yaml_ng::from_str(&text).unwrap();
        let good = review_of("admission.k8s.io/v1", pod.clone(), "apps");
        let text = String::from_utf8(good.clone()).unwrap();
        assert!(takes_fast_path(&good), "{text}");
        assert!(!takes_fast_path(format!("[{text}]").as_bytes()));
        bodies.push(good);
        bodies.push(review_of("admission.k8s.io/v1beta1", pod.clone(), "apps"));
        bodies.push(review_of("admission.k8s.io/v1", pod.clone(), "kube-system"));
        bodies.push(format!("  \n{text}").into_bytes());
        // fields of the wrong type, which the general path words its own way
        bodies.push(
            text.replacen("\"uid\":\"", "\"uid\":5,\"x\":\"", 1)
                .into_bytes(),
        );
        bodies.push(
            text.replacen("\"namespace\":\"apps\"", "\"namespace\":[]", 1)
                .into_bytes(),
        );
        bodies.push(
            text.replacen(
                "\"apiVersion\":\"admission.k8s.io/v1\"",
                "\"apiVersion\":1",
                1,
            )
            .into_bytes(),
        );
        // duplicate keys: the last one wins in the general path
        bodies.push(
            text.replacen("\"request\":{", "\"request\":{\"uid\":\"first\",", 1)
                .into_bytes(),
        );
        bodies.push(
            text.replacen("{\"apiVersion\"", "{\"request\":null,\"apiVersion\"", 1)
                .into_bytes(),
        );
        // not a pod, no pod, arrays where objects belong
        let mut review: Value = serde_json::from_slice(bodies.last().unwrap()).unwrap_or_default();
        for object in [json!(null), json!([1, 2]), json!({"spec": 5}), json!("pod")] {
            review["request"]["object"] = object;
            bodies.push(serde_json::to_vec(&review).unwrap());
        }
        bodies.push(format!("[{text}]").into_bytes());
        bodies.push(
            serde_json::to_vec(
                &json!({"apiVersion": "admission.k8s.io/v1", "request": ["u", "apps", pod]}),
            )
            .unwrap(),
        );
        bodies.push(text.as_bytes()[..text.len() / 2].to_vec());
        // what a skipping decoder does not check: a lone surrogate escape (found by the review
        // fuzz target), numbers out of range, in skipped fields, keys and inside the pod
        for (from, to) in [
            ("\"kind\":\"AdmissionReview\"", "\"kind\":\"Adm\\udddd\""),
            ("\"operation\":", "\"x\\ud800\":1,\"operation\":"),
            ("\"operation\":", "\"x\":1e400,\"operation\":"),
            ("\"operation\":", "\"x\":[-1e999],\"operation\":"),
            ("\"spec\":{", "\"spec\":{\"x\":\"\\uDC00\","),
            ("\"spec\":{", "\"spec\":{\"x\":{\"y\":9e9999},"),
            ("\"spec\":{", "\"spec\":{\"x\":\"\\q\","),
            ("\"operation\":", "\"x\":\"a\u{1}b\",\"operation\":"),
        ] {
            let odd = text.replacen(from, to, 1);
            assert_ne!(odd, text, "{from}");
            assert!(!takes_fast_path(odd.as_bytes()), "{odd}");
            bodies.push(odd.into_bytes());
        }
        // nesting past the parser's limit, a number too long for f64, and well-formed oddities
        // (an exponent, a surrogate pair) that must be read in full and then answered alike
        let deep = format!("{}1{}", "[".repeat(130), "]".repeat(130));
        let long = format!("1{}", "0".repeat(400));
        for (from, to) in [
            ("\"operation\":", format!("\"x\":{deep},\"operation\":")),
            ("\"spec\":{", format!("\"spec\":{{\"x\":{deep},")),
            ("\"operation\":", format!("\"x\":{long},\"operation\":")),
            ("\"operation\":", format!("\"x\":-{long}.5,\"operation\":")),
            (
                "\"operation\":",
                "\"x\":[1.5E+3,2e-2,0.5],\"operation\":".to_owned(),
            ),
            (
                "\"spec\":{",
                "\"spec\":{\"x\":\"\\ud83d\\ude00 \\u003c\",".to_owned(),
            ),
            (
                "\"kind\":\"AdmissionReview\"",
                "\"kind\":\"AdmissionReview\",\"e\":[true,false,null]".to_owned(),
            ),
        ] {
            let odd = text.replacen(from, &to, 1);
            assert_ne!(odd, text, "{from}");
            bodies.push(odd.into_bytes());
        }
        // invalid UTF-8 inside a string the fast decoder would skip, and inside the pod
        let mut bad = text
            .replacen("\"kind\":{", "\"kindx\":\"\u{ff}\",\"kind\":{", 1)
            .into_bytes();
        if let Some(i) = bad.iter().position(|&b| b == 0xc3) {
            bad[i + 1] = 0xff;
        }
        assert!(std::str::from_utf8(&bad).is_err() && !takes_fast_path(&bad));
        bodies.push(bad);
        let mut bad = text.clone().into_bytes();
        if let Some(i) = text.find("\"containers\"") {
            bad[i + 1] = 0xff;
        }
        assert!(std::str::from_utf8(&bad).is_err() && !takes_fast_path(&bad));
        bodies.push(bad);
    }
    assert!(bodies.len() > 300, "{}", bodies.len());
    let mut fast_replies = 0;
    for body in &bodies {
        let fast = review(body, &defaults);
        let general = review_general(body, &defaults, &off);
        match (&fast, &general) {
            (Ok(a), Ok(b)) => {
                assert_eq!(
                    (&a.body, &a.namespace, &a.outcome),
                    (&b.body, &b.namespace, &b.outcome),
                    "{}",
                    String::from_utf8_lossy(body)
                );
                fast_replies += 1;
            }
            (Err(a), Err(b)) => assert_eq!(a, b),
            _ => panic!(
                "paths disagree on {}: {fast:?} vs {general:?}",
                String::from_utf8_lossy(body)
            ),
        }
    }
    assert!(fast_replies > 100, "{fast_replies}");
}
