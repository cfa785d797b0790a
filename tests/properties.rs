//! Property tests: for arbitrary pods and annotation maps the core never panics, the patch
//! applies to the original JSON, the result is a Pod, user containers are never lost or
//! reordered, injected names never collide, and a second injection is a no-op.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Pod;
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use vault_injector::admission::{self, Mutation};
use vault_injector::annotations::keys::{self, Shape};

/// Names for the per-secret keys: two that differ only in case, and the empty name.
const SECRET_NAMES: &[&str] = &["db", "DB", ""];

/// Names for the per-variable keys: an ordinary one, a lower-case one and an invalid one.
const VAR_NAMES: &[&str] = &["DB_USER", "db", "1X"];

/// Every declared key but the switch (generated on its own in [`arb_pod`]), with its example
/// values: a family once per name in [`SECRET_NAMES`] or per example parameter.
fn declared_keys() -> Vec<(String, &'static [&'static str])> {
    let mut out = Vec::new();
    for key in keys::ALL.iter().filter(|k| k.key != keys::INJECT) {
        let suffix = key.suffix();
        let mut add = |spelled: String| out.push((spelled, key.examples));
        match key.shape {
            Shape::Single => add(suffix.to_owned()),
            Shape::PerSecret => SECRET_NAMES
                .iter()
                .for_each(|name| add(format!("{suffix}-{name}"))),
            Shape::SingleAndPerSecret => {
                add(suffix.to_owned());
                SECRET_NAMES
                    .iter()
                    .for_each(|name| add(format!("{suffix}-{name}")));
            }
            Shape::Params(params) => params
                .iter()
                .for_each(|param| add(format!("{suffix}-{param}"))),
            Shape::PerVariable => VAR_NAMES
                .iter()
                .for_each(|name| add(format!("{suffix}-{name}"))),
        }
    }
    out
}

const VALUES: &[&str] = &[
    "true",
    "false",
    "",
    "0",
    "1",
    "5",
    "100",
    "-1",
    "abc",
    "yes",
    "/vault/x",
    "/other",
    "json",
    "map",
    "1s",
    "250m",
    "64Mi",
    "128mb",
    "[]",
    "null",
    "NaN",
    "app",
    "web",
    "init-a",
    "kube-api-access-abcde",
    r#"[{"op":"add","path":"/env/-","value":{"name":"X","value":"1"}}]"#,
    r#"[{"op":"replace","path":"/name","value":"renamed"}]"#,
    r#"[{"op":"bogus"}]"#,
    "{{ .Data }}",
];

/// Mostly the key's declared examples (so most generated pods get past parsing), sometimes any
/// listed value, sometimes arbitrary text.
fn annotation_map() -> impl Strategy<Value = Vec<(String, String)>> {
    proptest::collection::vec(
        (
            proptest::sample::select(declared_keys()),
            0u8..10,
            any::<proptest::sample::Index>(),
            "\\PC{0,12}",
        ),
        0..8,
    )
    .prop_map(|entries| {
        entries
            .into_iter()
            .map(|((key, examples), dice, index, text)| {
                let value = match dice {
                    0..=6 => index.get(examples).to_string(),
                    7..=8 => index.get(VALUES).to_string(),
                    _ => text,
                };
                (key, value)
            })
            .collect()
    })
}

/// Container commands and args (`command: []` is the same as none).
type Command = (&'static [&'static str], Option<&'static [&'static str]>);
const COMMANDS: &[Command] = &[
    (&["/app/run"], None),
    (&["/bin/sh", "-c"], Some(&["exec app"])),
    (&[], Some(&["--serve"])),
    (&["one word with spaces"], None),
];

fn container(name: String, sa_mount: bool, extra_mount: bool, env: bool) -> Value {
    let mut mounts = Vec::new();
    if sa_mount {
        mounts.push(json!({"name": "kube-api-access-abcde", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true}));
    }
    if extra_mount {
        mounts.push(json!({"name": "data", "mountPath": "/data"}));
    }
    let mut c = json!({"name": name, "image": "example/x:1", "someUnknownField": {"kept": true}});
    if !mounts.is_empty() {
        c["volumeMounts"] = Value::Array(mounts);
    }
    if env {
        c["env"] = json!([{"name": "AWS_REGION", "value": "eu-west-1"}]);
    }
    c
}

prop_compose! {
    fn arb_pod()(
        names in proptest::sample::subsequence(vec!["app", "web", "worker", "db", "c5"], 1..=4),
        sa in proptest::collection::vec(any::<bool>(), 4),
        first_uid in proptest::option::of(0i64..2000),
        extra in proptest::collection::vec(any::<bool>(), 4),
        inits in proptest::sample::subsequence(vec!["init-a", "init-b"], 0..=2),
        has_volumes in proptest::bool::weighted(0.85),
        inject in proptest::sample::select(vec!["true", "true", "true", "true", "false", "", "yes"]),
        annotations in annotation_map(),
        phase in proptest::sample::select(vec![None, Some("Pending"), Some("Running")]),
        share in proptest::option::of(any::<bool>()),
        commands in proptest::collection::vec(proptest::option::of(proptest::sample::select(COMMANDS)), 4),
    ) -> Value {
        let containers: Vec<Value> = names.iter().enumerate()
            .map(|(i, n)| container((*n).to_owned(), sa[i] || i == 0, extra[i], i == 0))
            .collect();
        let mut containers = containers;
        // Commands and args, so that secrets as environment variables can wrap a container.
        for (c, command) in containers.iter_mut().zip(&commands) {
            if let Some((command, args)) = command {
                c["command"] = json!(command);
                if let Some(args) = args {
                    c["args"] = json!(args);
                }
            }
        }
        if let Some(uid) = first_uid {
            containers[0]["securityContext"] = json!({"runAsUser": uid});
        }
        let mut spec = json!({"containers": containers, "futureSpecField": 1});
        if !inits.is_empty() {
            spec["initContainers"] = Value::Array(inits.iter().map(|n| container((*n).to_owned(), false, extra[0], false)).collect());
        }
        if has_volumes {
            spec["volumes"] = json!([
                {"name": "kube-api-access-abcde", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}},
                {"name": "data", "emptyDir": {}}
            ]);
        }
        if let Some(s) = share {
            spec["shareProcessNamespace"] = json!(s);
        }
        let mut ann = Map::new();
        ann.insert(keys::INJECT.to_owned(), json!(inject));
        ann.insert(keys::ROLE.to_owned(), json!("app"));
        for (k, v) in annotations {
            ann.insert(format!("{}{k}", keys::PREFIX), json!(v));
        }
        let mut pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "annotations": ann}, "spec": spec});
        if let Some(p) = phase {
            pod["status"] = json!({"phase": p});
        }
        pod
    }
}

fn names(list: &Value) -> Vec<String> {
    support::names(list)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn injection_is_a_valid_additive_patch(pod in arb_pod()) {
        let defaults = support::defaults();
        let r = admission::mutate(&pod, "apps", &defaults);
        if std::env::var("RATIO").is_ok() { eprintln!("RATIO {}", match &r { Ok(Mutation::Inject{..}) => "inject", Ok(_) => "skip", Err(_) => "refuse" }); }
        let Ok(mutation) = r else {
            return Ok(());
        };
        let mutated = admission::mutated_object(&pod, &mutation).expect("the patch applies to the original JSON");
        let typed: Pod = serde_json::from_value(mutated.clone()).expect("the result is a Pod");
        prop_assert!(typed.spec.is_some());

        // User containers keep their order and their unknown fields, at the front.
        let before = names(&pod["spec"]["containers"]);
        let after = names(&mutated["spec"]["containers"]);
        prop_assert_eq!(&after[..before.len()], &before[..]);
        for i in 0..before.len() {
            prop_assert_eq!(&mutated["spec"]["containers"][i]["someUnknownField"], &json!({"kept": true}));
        }
        prop_assert_eq!(&mutated["spec"]["futureSpecField"], &json!(1));
        // User init containers keep their relative order.
        let inits_before = names(&pod["spec"]["initContainers"]);
        let inits_after: Vec<String> = names(&mutated["spec"]["initContainers"])
            .into_iter().filter(|n| inits_before.contains(n)).collect();
        prop_assert_eq!(inits_after, inits_before);

        if let Mutation::Inject { ops, .. } = &mutation {
            // The reply's patch bytes (serialised from the typed operations by sonic-rs) are
            // exactly serde_json's serialisation of the same operations.
            let values = vault_injector::patch::to_values(ops);
            prop_assert_eq!(vault_injector::patch::to_bytes(ops), serde_json::to_vec(&values).unwrap());
            // Injected names never collide with each other or with the user's.
            for list in ["containers", "volumes"] {
                let all = names(&mutated["spec"][list]);
                let unique: BTreeSet<_> = all.iter().collect();
                prop_assert_eq!(unique.len(), all.len(), "duplicate {} names: {:?}", list, all);
            }
            let mut all_containers = names(&mutated["spec"]["containers"]);
            all_containers.extend(names(&mutated["spec"]["initContainers"]));
            let unique: BTreeSet<_> = all_containers.iter().collect();
            prop_assert_eq!(unique.len(), all_containers.len());
            // A second injection is a no-op.
            prop_assert_eq!(
                admission::mutate(&mutated, "apps", &defaults),
                Ok(Mutation::Skip(vault_injector::annotations::SkipReason::AlreadyInjected))
            );
        } else {
            prop_assert_eq!(mutated, pod);
        }
    }

    /// sonic-rs writes the patch; every string must come out as serde_json writes it (the
    /// escapes of quotes, backslashes, control characters, and non-ASCII left as is).
    #[test]
    fn patch_strings_are_escaped_as_serde_json_escapes_them(
        text in "(?s:.{0,64})",
        controls in proptest::collection::vec(0_u32..0x80, 0..16),
    ) {
        use vault_injector::patch::{Op, OpValue, to_bytes};
        let mixed: String = controls.iter().filter_map(|&c| char::from_u32(c)).chain(text.chars()).collect();
        for s in [text.clone(), mixed] {
            let ops = [Op { path: s.clone(), value: OpValue::String(s.clone()) }];
            let expected = serde_json::to_vec(&json!([{"op": "add", "path": s, "value": s}])).unwrap();
            prop_assert_eq!(to_bytes(&ops), expected);
        }
    }

    #[test]
    fn review_never_panics_on_arbitrary_bytes(body in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = admission::review(&body, &support::defaults());
    }

    #[test]
    fn review_never_panics_on_arbitrary_json_objects(object in arb_json(), ns in "[a-z-]{0,12}") {
        let body = serde_json::to_vec(&json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "u", "namespace": ns, "object": object}})).unwrap();
        let r = admission::review(&body, &support::defaults()).expect("a readable review is always answered");
        let reply: Value = serde_json::from_slice(&r.body).unwrap();
        prop_assert_eq!(&reply["response"]["uid"], "u");
    }
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        "\\PC{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(
                proptest::sample::select(vec![
                    "metadata",
                    "spec",
                    "annotations",
                    "containers",
                    "name",
                    "volumes",
                    keys::INJECT
                ]),
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
        ]
    })
}
