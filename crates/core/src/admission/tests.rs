use super::fast::plainly_valid;
use super::*;

/// The scan that lets a body skip the full check flags every form the skipping decoder
/// would let through unchecked, and nothing in ordinary Kubernetes JSON.
#[test]
fn only_plainly_valid_bodies_skip_the_full_check() {
    let ordinary = br#"{"a":"705ab4f5-6393-11e8-b7cc-42010a800002","b":[1,-2.5,0,true,false,null],
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
