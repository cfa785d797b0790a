//! Tenant isolation: whatever a pod's annotations say, the injector changes only what the
//! list below allows, inside that pod, and never hands an annotation value to a shell unquoted.
//!
//! Pods are generated with hostile values (shell metacharacters, newlines, paths, JSON patches
//! aimed at `/spec/volumes`, `/spec/hostNetwork`, `/metadata`, `privileged`, hostPath volumes...)
//! over every key of `annotations::keys`, under both prefixes (`vault.hashicorp.com/` and
//! `openbao.org/`), on pods that may already hold a hostPath volume and a privileged container.
//! The core runs (`admission::mutate`), its patch is applied (`admission::mutated_object`), and
//! the properties are checked on the difference between the original and the mutated pod:
//!
//! - `only_what_the_spec_allows_changes`: every `op` is an `add` under `/spec/volumes`,
//!   `/spec/containers`, `/spec/initContainers`, `/spec/shareProcessNamespace` or the status
//!   annotation. Outside `spec`, only `metadata.annotations` changes, by exactly the status
//!   annotation (`vault.hashicorp.com/` or `openbao.org/agent-inject-status: injected`). In
//!   `spec`, only these: volumes appended after the user's, named `home-init`, `home-sidecar`,
//!   `vault-secrets`, `vault-secrets-custom-<n>` and `vault-agent-cache` (each
//!   `emptyDir: {medium: Memory}`), `vault-config` (the ConfigMap named by `agent-configmap`),
//!   `extra-secrets` and `vault-tls-secrets` (the Secrets named by `agent-extra-secret` and
//!   `tls-secret`, nothing else); at most one container appended (the sidecar) and one init
//!   container inserted first or appended (`vault-agent-init`, or the native sidecar); on every
//!   user container and init container, only `volumeMounts` appended, each
//!   `{name, mountPath}` of a `vault-secrets*` volume the patch adds; and
//!   `shareProcessNamespace` only when `agent-share-process-namespace` is set. The security
//!   context the injector sets is the agents' own, never a user container's
//!   or the pod's. Secrets as environment variables (`agent-inject-env-*`, not upstream) add
//!   to that list: the volume `vault-exec` (`emptyDir: {}`: the agent binary and a
//!   configuration without secrets), the init container `vault-agent-exec-init` appended last
//!   (checked as an agent: its fields, no privilege, only `vault-exec` mounted, constant
//!   args), and on exactly one user container, the wrapped one: `command` set to the copied
//!   agent (`/vault/exec/<vault|bao> agent -config=/vault/exec/config.json`), `args` emptied,
//!   and read-only mounts of `vault-exec`, of the TLS and extra Secrets the injector added, or
//!   of a volume of the pod's own (the service-account token it lacked); the exec agent's
//!   configuration starts exactly the command line the container had.
//! - Privilege: no volume the injector adds is a hostPath, and nothing outside the agent
//!   containers changes (above), so no user container gains `privileged`,
//!   `allowPrivilegeEscalation` or capabilities. An agent container the user did NOT patch is
//!   never privileged, never allows privilege escalation, adds no capability, has no fields
//!   beyond the ones the injector builds, and mounts only volumes the injector added or names
//!   the pod already used (its own volumes, or mounts of its own containers copied by
//!   `agent-copy-volume-mounts` and the token-volume search): the injector never gives the
//!   agent a volume the pod did not already have access to.
//!   Decision: `agent-json-patch` / `agent-init-json-patch` MAY make their own agent container
//!   privileged, add capabilities, or mount any volume the pod already has. That is upstream's
//!   contract (the patch is applied to the agent container object alone), and it gives the
//!   pod's author nothing they could not write into their own containers: the pod is admitted
//!   by the same Pod Security admission afterwards (validating admission runs after mutating
//!   webhooks). What must not happen is that such a patch reaches past its container; no case
//!   found one.
//! - `namespace_defaults_reach_only_that_namespaces_pods_own_agents` (`-namespace-defaults`,
//!   beyond upstream): the same checks with hostile Namespace annotations as defaults; the
//!   Namespace's values count as the pod's (its admin chose them for the pods in it), never
//!   the switch or the status.
//! - `secrets_as_environment_variables_change_only_the_wrapped_container`: the same checks,
//!   and the shell check below, on pods that declare environment variables with hostile paths,
//!   templates, container names, entrypoints, restart policies and stop signals (about 120 of
//!   768 injected, the rest refused). The values reach only the exec agent's JSON
//!   configuration, never a shell: its command line is an array the agent starts directly.
//! - `a_user_patch_changes_only_its_own_container`: the same pod with and without
//!   `agent-json-patch` / `agent-init-json-patch` gives mutated pods that are equal once the
//!   patched agent container is taken out.
//! - `no_annotation_value_reaches_a_shell_unquoted`: the injector builds three shell strings.
//!   The agents' `args` (`/bin/sh -ec`) are constants (generated-config and ConfigMap mode, the
//!   split-config variant, `vault` or `bao`): asserted. The native sidecar's startup probe
//!   (`/bin/sh -c "test -e '<file>' && ..."`) and the revoke-on-shutdown preStop hook
//!   (`/bin/sh -c "/bin/sleep <grace> && /bin/vault token revoke -address=<service>
//!   [-ca-cert=<ca-cert>] [-client-cert=..] [-client-key=..] -self"`) carry annotation values:
//!   each is run by a real `/bin/sh` with the commands replaced by a function that prints its
//!   arguments, and the words must be exactly the values the agent's own configuration holds
//!   (its VAULT_CONFIG, or its VAULT_* variables in ConfigMap mode), one literal word each.
//!   `agent-inject-command-<name>` is not checked: it goes into the agent configuration's
//!   template `command`, which Vault Agent runs as a command line by design (upstream documents
//!   `sh -c '...'` values there); it is the pod author's own command in the pod's own agent.
//!   Finding (fixed in `inject::lifecycle`): upstream pastes `service`, `ca-cert`,
//!   `client-cert` and `client-key` into the preStop hook unquoted, so
//!   `client-cert: "a b"` split into two words (the minimal case proptest found, kept in
//!   `isolation.proptest-regressions`) and `service: "https://vault:8200/'; rm -rf / #"` ran
//!   `rm` in the agent on shutdown. Values made only of `[A-Za-z0-9@%+=:,./_-]` (every ordinary
//!   URL and path) are still written unquoted, byte for byte as upstream; others are
//!   single-quoted. The shell runs here with `PATH=/nonexistent` in an empty directory, so a
//!   regression cannot run anything.
//!
//! Cases: 1536 pods for each of the first three properties (about 750, 650 and 250 of them
//! injected, the rest refused; the third counts pods injected both with and without their
//! patches), 768 for the shell property (all injected, every one with a preStop hook,
//! about 40 % with a startup probe), plus pinned hostile examples and a test that each check
//! rejects a hand-made escape. About 15 s in a debug build.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;
use std::process::Command;

use base64::Engine as _;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::{Map, Value, json};
use vault_injector::admission::{self, Mutation};
use vault_injector::agent_config::TOKEN_FILE;
use vault_injector::annotations::keys::{self, Shape};
use vault_injector::inject::{
    EXEC_INIT_NAME, EXEC_VOLUME, INIT_CONTAINER_NAME, SIDECAR_NAME, container_arg, exec_command,
};
use vault_injector::openbao::AgentBinary;

// ---------------------------------------------------------------------------------------------
// Properties

proptest! {
    #![proptest_config(ProptestConfig { cases: 1536, ..ProptestConfig::default() })]

    #[test]
    fn only_what_the_spec_allows_changes(pod in hostile_pod(10)) {
        let Ok(mutation) = admission::mutate(&pod, "apps", &support::defaults()) else {
            return Ok(());
        };
        let Mutation::Inject { ops, .. } = &mutation else {
            return Ok(());
        };
        check_ops(&vault_injector::patch::to_values(ops))?;
        let mutated = admission::mutated_object(&pod, &mutation).expect("the patch applies");
        check_diff(&pod, &mutated)?;
    }

    #[test]
    fn namespace_defaults_reach_only_that_namespaces_pods_own_agents(
        pod in hostile_pod(5),
        namespace in proptest::collection::vec(annotation(), 0..6),
    ) {
        // `-namespace-defaults`: the Namespace's annotations are defaults for its pods. The
        // same isolation holds, with the Namespace's values counted as the pod's (its admin
        // chose them for the pods in it); the switch and the status are never taken from it.
        let ns: std::collections::BTreeMap<String, String> = namespace.into_iter().collect();
        let lookup = |_: &str| admission::NamespaceDefaults::Annotations(ns.clone());
        let Ok(mutation) = admission::mutate_with(&pod, "apps", &support::defaults(), &lookup)
        else {
            return Ok(());
        };
        let Mutation::Inject { ops, .. } = &mutation else {
            return Ok(());
        };
        check_ops(&vault_injector::patch::to_values(ops))?;
        let mutated = admission::mutated_object(&pod, &mutation).expect("the patch applies");
        let mut policy = pod.clone();
        let annotations = policy["metadata"]["annotations"].as_object_mut().unwrap();
        for (key, value) in &ns {
            let Some(suffix) = PREFIXES.iter().find_map(|p| key.strip_prefix(p)) else {
                continue;
            };
            let pod_has = PREFIXES
                .iter()
                .any(|p| pod["metadata"]["annotations"].get(format!("{p}{suffix}")).is_some());
            if suffix != "agent-inject" && suffix != "agent-inject-status" && !pod_has {
                annotations.insert(key.clone(), json!(value));
            }
        }
        check_diff_with(&pod, &mutated, &policy)?;
    }

    #[test]
    fn a_user_patch_changes_only_its_own_container(pod in patched_pod()) {
        let defaults = support::defaults();
        let mut bare = pod.clone();
        let annotations = bare["metadata"]["annotations"].as_object_mut().unwrap();
        let mut had_patch = false;
        for prefix in PREFIXES {
            for key in [keys::JSON_PATCH, keys::INIT_JSON_PATCH] {
                had_patch |= annotations.remove(&with_prefix(prefix, key)).is_some();
            }
        }
        if !had_patch {
            return Ok(());
        }
        let (Ok(with), Ok(without)) = (
            admission::mutate(&pod, "apps", &defaults),
            admission::mutate(&bare, "apps", &defaults),
        ) else {
            return Ok(());
        };
        let mut a = admission::mutated_object(&pod, &with).unwrap();
        let mut b = admission::mutated_object(&bare, &without).unwrap();
        // The patch annotations themselves are the only other difference.
        a["metadata"]["annotations"] = b["metadata"]["annotations"].clone();
        for m in [&mut a, &mut b] {
            let (added_container, added_inits) = split_added(&pod, m)?;
            if let Some(i) = added_container {
                m["spec"]["containers"][i] = json!("<agent>");
            }
            for i in added_inits {
                m["spec"]["initContainers"][i] = json!("<agent>");
            }
        }
        prop_assert_eq!(a, b);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 768, ..ProptestConfig::default() })]

    #[test]
    fn secrets_as_environment_variables_change_only_the_wrapped_container(pod in env_exec_pod()) {
        let Ok(mutation) = admission::mutate(&pod, "apps", &support::defaults()) else {
            return Ok(());
        };
        let Mutation::Inject { ops, .. } = &mutation else {
            return Ok(());
        };
        check_ops(&vault_injector::patch::to_values(ops))?;
        let mutated = admission::mutated_object(&pod, &mutation).expect("the patch applies");
        check_diff(&pod, &mutated)?;
        check_shell(&mutated)?;
    }

    #[test]
    fn no_annotation_value_reaches_a_shell_unquoted(pod in shell_pod()) {
        let Ok(mutation) = admission::mutate(&pod, "apps", &support::defaults()) else {
            return Ok(());
        };
        let mutated = admission::mutated_object(&pod, &mutation).unwrap();
        check_shell(&mutated)?;
    }
}

/// The examples the brief names, pinned: each value stays one literal word in the preStop hook
/// and the startup probe.
#[test]
fn classic_injections_stay_literal_words() {
    for value in HOSTILE {
        if value.contains('\0') {
            continue;
        }
        let pod = support::pod()
            .ann("agent-revoke-on-shutdown", "true")
            .ann("service", &format!("https://vault:8200/{value}"))
            .ann("ca-cert", value)
            .ann("client-cert", value)
            .ann("client-key", value)
            .ann("agent-native-sidecar", "true")
            .ann("agent-inject-secret-db", "kv/data/db")
            .ann("agent-inject-file-db", value)
            .build();
        let injected = support::inject(&pod).unwrap_or_else(|e| panic!("{value:?}: refused: {e}"));
        check_shell(&injected.pod).unwrap_or_else(|e| panic!("{value:?}: {e}"));
    }
}

/// The checks catch what they are for, so the properties cannot pass vacuously: each hand-made
/// escape applied to a correctly injected pod is rejected.
#[test]
fn the_checks_reject_each_kind_of_escape() {
    const SERVICE: &str = "https://vault:8200/x y";
    let pod = support::pod()
        .ann("tls-secret", "vault-ca")
        .ann("agent-revoke-on-shutdown", "true")
        .ann("service", SERVICE)
        .build();
    let good = support::inject(&pod).unwrap().pod;
    check_diff(&pod, &good).unwrap();
    check_shell(&good).unwrap();
    let sidecar = list(&good["spec"]["containers"]).len() - 1;
    type Escape = Box<dyn Fn(&mut Value)>;
    let escapes: Vec<(&str, Escape)> = vec![
        (
            "a hostPath volume",
            Box::new(|p| {
                p["spec"]["volumes"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"name": "vault-secrets-custom-9", "hostPath": {"path": "/"}}));
            }),
        ),
        (
            "another tenant's Secret",
            Box::new(|p| {
                for v in p["spec"]["volumes"].as_array_mut().unwrap() {
                    if v["name"] == "vault-tls-secrets" {
                        v["secret"]["secretName"] = json!("other-tenant");
                    }
                }
            }),
        ),
        (
            "hostNetwork",
            Box::new(|p| p["spec"]["hostNetwork"] = json!(true)),
        ),
        (
            "another service account",
            Box::new(|p| p["spec"]["serviceAccountName"] = json!("admin")),
        ),
        (
            "a label",
            Box::new(|p| p["metadata"]["labels"] = json!({"tier": "admin"})),
        ),
        (
            "a privileged user container",
            Box::new(|p| {
                p["spec"]["containers"][0]["securityContext"] = json!({"privileged": true});
            }),
        ),
        (
            "a user mount made writable",
            Box::new(|p| p["spec"]["containers"][0]["volumeMounts"][0]["readOnly"] = json!(false)),
        ),
        (
            "a privileged agent nobody patched",
            Box::new(move |p| {
                p["spec"]["containers"][sidecar]["securityContext"]["privileged"] = json!(true);
            }),
        ),
        (
            "an agent mounting a volume the pod never had",
            Box::new(move |p| {
                p["spec"]["containers"][sidecar]["volumeMounts"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"name": "docker-sock", "mountPath": "/var/run/docker.sock"}));
            }),
        ),
        (
            "an unquoted value in the preStop hook (upstream's text)",
            Box::new(move |p| {
                let hook = &mut p["spec"]["containers"][sidecar]["lifecycle"]["preStop"]["exec"]["command"]
                    [2];
                *hook = json!(
                    hook.as_str()
                        .unwrap()
                        .replace(&format!("'{SERVICE}'"), SERVICE)
                );
            }),
        ),
    ];
    for (what, escape) in escapes {
        let mut bad = good.clone();
        escape(&mut bad);
        assert_ne!(bad, good, "{what}: the escape changed nothing");
        assert!(
            check_diff(&pod, &bad).is_err() || check_shell(&bad).is_err(),
            "{what} was not caught"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Generators

const PREFIXES: [&str; 2] = ["vault.hashicorp.com/", "openbao.org/"];

/// Every declared key (`annotations::keys::ALL`) with its example values; `true` marks a
/// family (per secret, or per entry) that takes a `-<name>` suffix.
fn declared_keys() -> Vec<(&'static str, bool, &'static [&'static str])> {
    let mut out = Vec::new();
    for key in keys::ALL {
        let single = (key.key, false, key.examples);
        let family = (key.key, true, key.examples);
        match key.shape {
            Shape::Single => out.push(single),
            Shape::PerSecret | Shape::Params(_) | Shape::PerVariable => out.push(family),
            Shape::SingleAndPerSecret => out.extend([single, family]),
        }
    }
    out
}

/// Suffixes for the per-secret keys: ordinary, case variants, and names a shell would mind.
const NAMES: &[&str] = &["db", "DB", "cfg", "a.b", "x y", "$(id)", "q'q", ""];

/// Values that try to break out of a shell word, a path, a YAML/JSON value or a name.
const HOSTILE: &[&str] = &[
    "'; rm -rf / #",
    "$(id)",
    "`id`",
    "a\nid",
    "\"; id; \"",
    "${HOME}",
    "$HOME",
    "*",
    "~root",
    "a b",
    "|| id",
    "&& id",
    "; id",
    "\\",
    "'",
    "\"",
    "$((6*7))",
    "-self; id",
    "x\0y",
    "/",
    "/etc/passwd",
    "../../../../etc/shadow",
    "/var/run/docker.sock",
    "/proc/1/root",
    "host",
    "vault-secrets",
    "kube-api-access-abcde",
    "default-token-xyz",
    "other-tenant-secret",
    "kube-system",
    "app",
    "true",
    "false",
    "0",
    "1",
    "-1",
    "100",
    "{}",
    "[]",
    "null",
];

/// Ordinary values, so that many generated pods get past validation.
const ORDINARY: &[&str] = &[
    "true",
    "false",
    "",
    "app",
    "web",
    "kv/data/app",
    "database/creds/app",
    "/vault/secrets",
    "/etc/app",
    "vault-ca",
    "cfg",
    "http://vault:8200",
    "/vault/tls/ca.crt",
    "250m",
    "64Mi",
    "5",
    "1000",
    "json",
    "map",
    "kubernetes",
    "aws",
    "auth/kubernetes",
    "{{ .Data }}",
];

/// JSON patch paths: the container's own fields, and every pod-level target an attacker wants.
const PATCH_PATHS: &[&str] = &[
    "",
    "/",
    "/-",
    "/name",
    "/image",
    "/command",
    "/args/0",
    "/env/-",
    "/volumeMounts",
    "/volumeMounts/-",
    "/volumeMounts/0",
    "/securityContext",
    "/securityContext/privileged",
    "/securityContext/allowPrivilegeEscalation",
    "/securityContext/capabilities",
    "/securityContext/capabilities/add",
    "/securityContext/runAsUser",
    "/lifecycle/preStop",
    "/ports",
    "/volumes",
    "/volumes/-",
    "/hostNetwork",
    "/serviceAccountName",
    "/spec",
    "/spec/volumes",
    "/spec/volumes/-",
    "/spec/containers/0",
    "/spec/containers/0/securityContext",
    "/spec/hostNetwork",
    "/spec/serviceAccountName",
    "/metadata",
    "/metadata/annotations",
    "/metadata/annotations/x",
    "/../spec",
    "/~1spec~1volumes",
];

fn patch_values() -> Vec<Value> {
    vec![
        json!({"name": "host", "hostPath": {"path": "/"}}),
        json!([{"name": "host", "hostPath": {"path": "/"}}]),
        json!({"name": "host", "mountPath": "/host"}),
        json!({"name": "other", "secret": {"secretName": "other-tenant-secret"}}),
        json!({"privileged": true, "allowPrivilegeEscalation": true}),
        json!({"add": ["SYS_ADMIN", "NET_ADMIN"]}),
        json!(["SYS_ADMIN"]),
        json!(true),
        json!(0),
        json!("default"),
        json!("app"),
        json!({"containerPort": 80, "hostPort": 80}),
        json!([{"containerPort": 80, "hostPort": 80}]),
        json!({"name": "app", "image": "evil:1", "securityContext": {"privileged": true}}),
        json!({"annotations": {"vault.hashicorp.com/agent-inject-status": "injected"}}),
        json!({}),
        json!([]),
        Value::Null,
    ]
}

/// Half the time a path inside the agent container that exists, so that the patch applies.
fn patch_path() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        proptest::sample::select(CONTAINER_PATHS),
        proptest::sample::select(PATCH_PATHS),
    ]
}

/// Paths that exist in every generated agent container (or whose parent does).
const CONTAINER_PATHS: &[&str] = &[
    "/name",
    "/image",
    "/env/-",
    "/volumeMounts/-",
    "/volumeMounts/0",
    "/securityContext/privileged",
    "/securityContext/allowPrivilegeEscalation",
    "/securityContext/capabilities/add",
    "/ports",
    "/command",
];

fn json_patch() -> impl Strategy<Value = String> {
    let op = (
        proptest::sample::select(vec![
            "add", "replace", "remove", "copy", "move", "test", "bogus",
        ]),
        patch_path(),
        patch_path(),
        proptest::sample::select(patch_values()),
    )
        .prop_map(|(op, path, from, value)| {
            let mut o = json!({"op": op, "path": path});
            match op {
                "copy" | "move" => o["from"] = json!(from),
                "remove" => {}
                _ => o["value"] = value,
            }
            o
        });
    prop_oneof![
        8 => proptest::collection::vec(op, 0..4).prop_map(|ops| Value::Array(ops).to_string()),
        1 => Just("null".to_owned()),
        1 => Just("{\"op\":\"add\"}".to_owned()),
    ]
}

fn any_value() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(ORDINARY).prop_map(str::to_owned),
        4 => proptest::sample::select(HOSTILE).prop_map(str::to_owned),
        2 => "(\\PC|\n|'|\"|\\$|`|;){0,24}",
        1 => json_patch(),
    ]
}

fn annotation() -> impl Strategy<Value = (String, String)> {
    (
        proptest::sample::select(declared_keys()),
        proptest::sample::select(NAMES),
        proptest::bool::weighted(0.15),
        proptest::bool::weighted(0.55),
        any::<proptest::sample::Index>(),
        any_value(),
        json_patch(),
    )
        .prop_map(
            |((key, per_secret, examples), name, openbao, sensible, index, value, patch)| {
                let key = if per_secret {
                    format!("{key}-{name}")
                } else {
                    key.to_owned()
                };
                let value = if key.ends_with("json-patch") {
                    patch
                } else if sensible {
                    // A value of the right type for the key, so that a pod carrying several
                    // annotations still gets past validation and the hostile values elsewhere
                    // in it reach the patch.
                    index.get(examples).to_string()
                } else {
                    value
                };
                let prefix = if openbao { PREFIXES[1] } else { PREFIXES[0] };
                (with_prefix(prefix, &key), value)
            },
        )
}

prop_compose! {
    /// support::pod(), sometimes with a second app container, an init container, a hostPath
    /// volume the app mounts, a privileged app container and pod-level settings, plus up to
    /// `max_annotations - 1` generated annotations.
    fn hostile_pod(max_annotations: usize)(
        annotations in proptest::collection::vec(annotation(), 0..max_annotations),
        web in any::<bool>(),
        init in any::<bool>(),
        host_path in any::<bool>(),
        privileged in any::<bool>(),
        pod_level in any::<bool>(),
        openbao_gate in proptest::bool::weighted(0.1),
        app_command in proptest::option::of(proptest::sample::select(vec![
            json!(["/app/run"]),
            json!(["/bin/sh", "-c", "exec app"]),
        ])),
        app_args in proptest::option::of(proptest::sample::select(vec![json!([]), json!(["--serve"])])),
    ) -> Value {
        let mut b = support::pod();
        // A command (and args), so that secrets as environment variables can wrap the app.
        if let Some(command) = app_command {
            b = b.set("/spec/containers/0/command", command);
        }
        if let Some(args) = app_args {
            b = b.set("/spec/containers/0/args", args);
        }
        if web {
            b = b.container("web");
        }
        if init {
            b = b.init_container("init-a");
        }
        if host_path {
            let mut pod = b.build();
            pod["spec"]["volumes"].as_array_mut().unwrap()
                .push(json!({"name": "host", "hostPath": {"path": "/var/log"}}));
            pod["spec"]["containers"][0]["volumeMounts"].as_array_mut().unwrap()
                .push(json!({"name": "host", "mountPath": "/host", "readOnly": true}));
            b = support::PodBuilder(pod);
        }
        if privileged {
            b = b.set("/spec/containers/0/securityContext", json!({"privileged": true, "capabilities": {"add": ["NET_ADMIN"]}}));
        }
        if pod_level {
            b = b.set("/spec/serviceAccountName", json!("app-sa"))
                .set("/spec/hostNetwork", json!(false));
        }
        let mut pod = b.build();
        let map = pod["metadata"]["annotations"].as_object_mut().unwrap();
        if openbao_gate {
            map.insert("openbao.org/agent-inject".to_owned(), json!("true"));
        }
        for (k, v) in annotations {
            // The gate stays on most of the time, so the interesting paths run.
            if k.ends_with("/agent-inject") || k.ends_with("/agent-inject-status") {
                continue;
            }
            map.insert(k, json!(v));
        }
        pod
    }
}

prop_compose! {
    /// A hostile pod that declares environment variables (hostile paths and templates) for a
    /// container with a command, or an entrypoint given by a hostile `agent-inject-env-command`,
    /// with the other `agent-inject-env-*` keys hostile or ordinary.
    fn env_exec_pod()(
        pod in hostile_pod(2),
        vars in proptest::collection::vec(
            (
                proptest::sample::select(vec!["DB_USER", "DB_PASSWORD", "_X", "db"]),
                hostile_or(&["database/creds/app", "secret/data/app"]),
                proptest::option::of(hostile_or(&[r#"{{ with secret "database/creds/app" }}{{ .Data.username }}{{ end }}"#])),
            ),
            1..3,
        ),
        own_command in proptest::bool::weighted(0.7),
        entrypoint in hostile_or(&[r#"["/app/run"]"#, r#"["/bin/app", "--x=$(id)"]"#, r#"["a b"]"#]),
        container in proptest::option::of(hostile_or(&["app", "web"])),
        restart in proptest::option::of(hostile_or(&["always", "never"])),
        signal in proptest::option::of(hostile_or(&["SIGTERM", "sigint"])),
        openbao in proptest::bool::weighted(0.3),
    ) -> Value {
        let mut pod = pod;
        let prefix = if openbao { PREFIXES[1] } else { PREFIXES[0] };
        if own_command {
            pod["spec"]["containers"][0]["command"] = json!(["/app/run", "$(id)", "; rm -rf /"]);
        }
        let map = pod["metadata"]["annotations"].as_object_mut().unwrap();
        for (name, path, template) in vars {
            map.insert(format!("{prefix}agent-inject-env-{name}"), json!(path));
            if let Some(t) = template {
                map.insert(format!("{prefix}agent-inject-env-template-{name}"), json!(t));
            }
        }
        if !own_command {
            map.insert(format!("{prefix}agent-inject-env-command"), json!(entrypoint));
        }
        for (key, value) in [("container", container), ("restart", restart), ("stop-signal", signal)] {
            if let Some(v) = value {
                map.insert(format!("{prefix}agent-inject-env-{key}"), json!(v));
            }
        }
        pod
    }
}

prop_compose! {
    /// A hostile pod that carries `agent-json-patch` and/or `agent-init-json-patch`.
    fn patched_pod()(
        pod in hostile_pod(4),
        sidecar in proptest::option::of(json_patch()),
        init in proptest::option::of(json_patch()),
        openbao in proptest::bool::weighted(0.15),
    ) -> Value {
        let mut pod = pod;
        let prefix = if openbao { PREFIXES[1] } else { PREFIXES[0] };
        let map = pod["metadata"]["annotations"].as_object_mut().unwrap();
        for (key, patch) in [(keys::JSON_PATCH, sidecar), (keys::INIT_JSON_PATCH, init)] {
            if let Some(p) = patch {
                map.insert(with_prefix(prefix, key), json!(p));
            }
        }
        pod
    }
}

fn hostile_or(ordinary: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![
        2 => proptest::sample::select(ordinary).prop_map(str::to_owned),
        3 => proptest::sample::select(HOSTILE)
            .prop_filter("a NUL cannot be passed to exec", |v| !v.contains('\0'))
            .prop_map(str::to_owned),
        2 => "(\\PC|\n|'|\"|\\$|`|;|\\\\){1,24}",
    ]
}

prop_compose! {
    /// A pod whose every value that can reach a shell string is hostile: the preStop hook's
    /// flags and the files the native sidecar's startup probe tests.
    fn shell_pod()(
        service in hostile_or(&["http://vault:8200", "https://vault.vault.svc:8200"]),
        ca_cert in hostile_or(&["", "/vault/tls/ca.crt"]),
        client_cert in hostile_or(&["", "/vault/tls/tls.crt"]),
        client_key in hostile_or(&["", "/vault/tls/tls.key"]),
        grace in proptest::sample::select(vec!["5", "0", "30"]),
        native in any::<bool>(),
        configmap in proptest::bool::weighted(0.2),
        openbao in proptest::bool::weighted(0.2),
        secrets in proptest::collection::vec(
            (proptest::sample::select(NAMES), hostile_or(&["", "db.env", "conf/x.txt"]), hostile_or(&["/vault/secrets", "/etc/app"])),
            0..3,
        ),
        secret_volume_path in hostile_or(&["/vault/secrets"]),
    ) -> Value {
        let prefix = if openbao { "openbao.org/" } else { "vault.hashicorp.com/" };
        let mut map = Map::new();
        map.insert(format!("{prefix}agent-inject"), json!("true"));
        map.insert(format!("{prefix}role"), json!("app"));
        map.insert(format!("{prefix}agent-revoke-on-shutdown"), json!("true"));
        map.insert(format!("{prefix}agent-revoke-grace"), json!(grace));
        map.insert(format!("{prefix}service"), json!(service));
        map.insert(format!("{prefix}ca-cert"), json!(ca_cert));
        map.insert(format!("{prefix}client-cert"), json!(client_cert));
        map.insert(format!("{prefix}client-key"), json!(client_key));
        map.insert(format!("{prefix}agent-native-sidecar"), json!(native.to_string()));
        map.insert(format!("{prefix}secret-volume-path"), json!(secret_volume_path));
        if configmap {
            map.insert(format!("{prefix}agent-configmap"), json!("cfg"));
        }
        for (name, file, path) in secrets {
            map.insert(format!("{prefix}agent-inject-secret-{name}"), json!("kv/data/x"));
            map.insert(format!("{prefix}agent-inject-file-{name}"), json!(file));
            map.insert(format!("{prefix}secret-volume-path-{name}"), json!(path));
        }
        let mut pod = support::pod().build();
        pod["metadata"]["annotations"] = Value::Object(map);
        pod
    }
}

fn with_prefix(prefix: &str, key: &str) -> String {
    format!("{prefix}{}", key.strip_prefix(PREFIXES[0]).unwrap_or(key))
}

// ---------------------------------------------------------------------------------------------
// The diff

/// What a volume the injector adds may be.
enum VolumeKind {
    /// `emptyDir: {medium: Memory}`.
    Memory,
    /// `emptyDir: {}` (`vault-exec`: the agent binary, nothing secret).
    Disk,
    /// The ConfigMap or Secret (source field) that the annotation key names.
    Named(&'static str, &'static str),
}

/// Volumes the injector may add, and what each may be.
fn allowed_volume(name: &str) -> Option<VolumeKind> {
    match name {
        "home-init" | "home-sidecar" | "vault-secrets" | "vault-agent-cache" => {
            Some(VolumeKind::Memory)
        }
        EXEC_VOLUME => Some(VolumeKind::Disk),
        "vault-config" => Some(VolumeKind::Named("configMap", keys::CONFIGMAP)),
        "extra-secrets" => Some(VolumeKind::Named("secret", keys::EXTRA_SECRET)),
        "vault-tls-secrets" => Some(VolumeKind::Named("secret", keys::TLS_SECRET)),
        n if is_custom_secrets_volume(n) => Some(VolumeKind::Memory),
        _ => None,
    }
}

fn is_custom_secrets_volume(name: &str) -> bool {
    name.strip_prefix("vault-secrets-custom-")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The value the pod gives `key` (its `openbao.org/` spelling wins, as in `openbao::fold`).
fn annotation_value(pod: &Value, key: &str) -> Option<String> {
    let annotations = pod["metadata"]["annotations"].as_object()?;
    annotations
        .get(&with_prefix(PREFIXES[1], key))
        .or_else(|| annotations.get(key))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

fn check_ops(ops: &[Value]) -> Result<(), TestCaseError> {
    let status = [
        "/metadata/annotations/vault.hashicorp.com~1agent-inject-status",
        "/metadata/annotations/openbao.org~1agent-inject-status",
    ];
    for op in ops {
        prop_assert_eq!(&op["op"], "add", "only adds: {}", op);
        let path = op["path"].as_str().unwrap();
        let allowed = ["/spec/volumes", "/spec/containers", "/spec/initContainers"]
            .iter()
            .any(|base| path == *base || path.starts_with(&format!("{base}/")))
            || path == "/spec/shareProcessNamespace"
            || status.contains(&path);
        prop_assert!(allowed, "op outside what the spec allows: {}", op);
    }
    Ok(())
}

fn check_diff(original: &Value, mutated: &Value) -> Result<(), TestCaseError> {
    check_diff_with(original, mutated, original)
}

/// [`check_diff`] where `policy`'s annotations (the pod's own, plus any Namespace defaults) say
/// which Secrets, ConfigMaps and patches the pod asked for.
fn check_diff_with(original: &Value, mutated: &Value, policy: &Value) -> Result<(), TestCaseError> {
    let o = original.as_object().unwrap();
    let m = mutated.as_object().unwrap();
    prop_assert_eq!(
        o.keys().collect::<Vec<_>>(),
        m.keys().collect::<Vec<_>>(),
        "top-level fields"
    );
    for (k, v) in o {
        if k != "spec" && k != "metadata" {
            prop_assert_eq!(v, &m[k], "{} changed", k);
        }
    }

    // metadata: the status annotation, nothing else.
    let mut meta_o = original["metadata"].clone();
    let mut meta_m = mutated["metadata"].clone();
    let ann_m = meta_m["annotations"].as_object_mut().unwrap();
    let added_status: Vec<String> = ann_m
        .keys()
        .filter(|k| !meta_o["annotations"].as_object().unwrap().contains_key(*k))
        .cloned()
        .collect();
    prop_assert_eq!(
        added_status.len(),
        1,
        "annotations added: {:?}",
        added_status
    );
    let status_key = &added_status[0];
    prop_assert!(
        status_key == keys::STATUS || status_key == "openbao.org/agent-inject-status",
        "added annotation {}",
        status_key
    );
    prop_assert_eq!(ann_m.remove(status_key).unwrap(), json!("injected"));
    meta_o["annotations"]
        .as_object_mut()
        .unwrap()
        .remove(status_key);
    prop_assert_eq!(
        meta_o,
        meta_m,
        "metadata changed beyond the status annotation"
    );

    // spec: field by field.
    let so = original["spec"].as_object().unwrap();
    let sm = mutated["spec"].as_object().unwrap();
    let fields: BTreeSet<&String> = so.keys().chain(sm.keys()).collect();
    for f in fields {
        match f.as_str() {
            "containers" | "initContainers" | "volumes" => {}
            "shareProcessNamespace" => {
                if so.get(f) != sm.get(f) {
                    prop_assert!(
                        annotation_value(policy, keys::SHARE_PROCESS_NAMESPACE).is_some(),
                        "shareProcessNamespace changed without agent-share-process-namespace"
                    );
                    prop_assert!(sm[f].is_boolean());
                }
            }
            _ => prop_assert_eq!(so.get(f), sm.get(f), "spec.{} changed", f),
        }
    }

    // Volumes: the user's untouched, then only allowed ones.
    let vo = list(&original["spec"]["volumes"]);
    let vm = list(&mutated["spec"]["volumes"]);
    prop_assert!(vm.len() >= vo.len());
    prop_assert_eq!(&vm[..vo.len()], &vo[..], "user volumes changed");
    let mut injected_volumes = BTreeSet::new();
    for v in &vm[vo.len()..] {
        let name = v["name"].as_str().unwrap_or_default();
        prop_assert!(
            injected_volumes.insert(name.to_owned()),
            "volume {} twice",
            name
        );
        let kind = allowed_volume(name);
        prop_assert!(
            kind.is_some(),
            "volume {} is not one the spec allows: {}",
            name,
            v
        );
        prop_assert!(v.get("hostPath").is_none());
        let obj = v.as_object().unwrap();
        prop_assert_eq!(obj.len(), 2, "one source per volume: {}", v);
        match kind.unwrap() {
            VolumeKind::Memory => {
                prop_assert_eq!(&v["emptyDir"], &json!({"medium": "Memory"}), "{}", v)
            }
            VolumeKind::Disk => prop_assert_eq!(&v["emptyDir"], &json!({}), "{}", v),
            VolumeKind::Named(source, key) => {
                let field = if source == "secret" {
                    "secretName"
                } else {
                    "name"
                };
                prop_assert_eq!(v[source].as_object().unwrap().len(), 1, "{}", v);
                let named = v[source][field].as_str().unwrap_or_default().to_owned();
                prop_assert_eq!(
                    Some(named),
                    annotation_value(policy, key),
                    "volume {} does not reference what {} names",
                    name,
                    key
                );
            }
        }
    }

    // Containers and init containers: the user's get only secret mounts, but for the one
    // container wrapped for secrets as environment variables.
    let (added_container, added_inits) = split_added(original, mutated)?;
    let exec = exec_config(mutated);
    let user_volume_names: BTreeSet<String> = support::names(&original["spec"]["volumes"])
        .into_iter()
        .collect();
    let user_mount_names: BTreeSet<String> = ["containers", "initContainers"]
        .iter()
        .flat_map(|l| list(&original["spec"][*l]))
        .flat_map(|c| support::mount_names(&c))
        .collect();
    let mut wrapped = 0;
    for (list_name, added) in [
        ("containers", Vec::from_iter(added_container)),
        ("initContainers", added_inits),
    ] {
        let co = list(&original["spec"][list_name]);
        let cm = list(&mutated["spec"][list_name]);
        let mut user = cm.clone();
        for &i in added.iter().rev() {
            let agent = user.remove(i);
            if agent["name"] == EXEC_INIT_NAME {
                check_exec_init(&agent)?;
                continue;
            }
            let own_patch = if list_name == "containers" {
                user_patched(policy, &[keys::JSON_PATCH])
            } else {
                user_patched(policy, &[keys::JSON_PATCH, keys::INIT_JSON_PATCH])
            };
            if !own_patch {
                check_agent(
                    &agent,
                    &injected_volumes,
                    &user_volume_names,
                    &user_mount_names,
                )?;
            }
        }
        prop_assert_eq!(user.len(), co.len());
        for (before, after) in co.iter().zip(&user) {
            if list_name == "containers" && before["command"] != after["command"] {
                wrapped += 1;
                let exec = exec.as_ref();
                prop_assert!(exec.is_some(), "a command changed without the exec agent");
                check_wrapped(
                    before,
                    after,
                    exec.unwrap(),
                    policy,
                    &injected_volumes,
                    &user_volume_names,
                )?;
            } else {
                check_user_container(before, after, &injected_volumes)?;
            }
        }
    }
    prop_assert_eq!(
        wrapped,
        usize::from(exec.is_some()),
        "one container wrapped when the exec agent is added"
    );
    Ok(())
}

/// The exec agent's configuration, from `vault-agent-exec-init`'s `VAULT_CONFIG`.
fn exec_config(pod: &Value) -> Option<Value> {
    let init = list(&pod["spec"]["initContainers"])
        .into_iter()
        .find(|c| c["name"] == EXEC_INIT_NAME)?;
    let b64 = support::env_value(&init, "VAULT_CONFIG")?.to_owned();
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The container wrapped for secrets as environment variables: it runs the copied agent, its
/// `args` are emptied, and it gains read-only mounts of `vault-exec`, of the pod's token volume
/// and of the TLS and extra Secrets the injector added, nothing else; the agent's
/// configuration starts exactly the command line the container had (or the entrypoint
/// `agent-inject-env-command` names, then the container's `args`).
fn check_wrapped(
    before: &Value,
    after: &Value,
    exec: &Value,
    policy: &Value,
    injected: &BTreeSet<String>,
    user_volumes: &BTreeSet<String>,
) -> Result<(), TestCaseError> {
    prop_assert!(
        [AgentBinary::Vault, AgentBinary::Bao]
            .iter()
            .any(|b| after["command"] == json!(exec_command(*b))),
        "wrapped command {}",
        after["command"]
    );
    let mut line = match list(&before["command"]) {
        own if !own.is_empty() => own,
        _ => {
            let raw = annotation_value(policy, keys::ENV_COMMAND).unwrap_or_default();
            serde_json::from_str::<Vec<Value>>(&raw).unwrap_or_default()
        }
    };
    line.extend(list(&before["args"]));
    prop_assert_eq!(&exec["exec"]["command"], &Value::Array(line));
    match before.get("args") {
        Some(_) => prop_assert_eq!(&after["args"], &json!([])),
        None => prop_assert!(after.get("args").is_none()),
    }
    let mounts_b = list(&before["volumeMounts"]);
    let mounts_a = list(&after["volumeMounts"]);
    prop_assert!(mounts_a.len() >= mounts_b.len());
    prop_assert_eq!(
        &mounts_a[..mounts_b.len()],
        &mounts_b[..],
        "user mounts changed"
    );
    for m in &mounts_a[mounts_b.len()..] {
        let name = m["name"].as_str().unwrap_or_default();
        let secret_mount = (name == "vault-secrets" || is_custom_secrets_volume(name))
            && injected.contains(name)
            && m.as_object().unwrap().len() == 2;
        let exec_mount = ([EXEC_VOLUME, "vault-tls-secrets", "extra-secrets"].contains(&name)
            && injected.contains(name))
            || user_volumes.contains(name);
        prop_assert!(
            secret_mount || (exec_mount && m["readOnly"] == json!(true)),
            "mount {} added to the wrapped container",
            m
        );
    }
    let mut a = after.clone();
    let mut b = before.clone();
    for field in ["volumeMounts", "command", "args"] {
        a.as_object_mut().unwrap().remove(field);
        b.as_object_mut().unwrap().remove(field);
    }
    prop_assert_eq!(
        b,
        a,
        "the wrapped container changed beyond its command and mounts"
    );
    Ok(())
}

/// `vault-agent-exec-init`: only the fields the injector builds, no privilege, and only the
/// `vault-exec` volume (its args are checked with the other shell strings).
fn check_exec_init(init: &Value) -> Result<(), TestCaseError> {
    let allowed_fields = [
        "name",
        "image",
        "command",
        "args",
        "env",
        "resources",
        "volumeMounts",
        "securityContext",
    ];
    for field in init.as_object().unwrap().keys() {
        prop_assert!(
            allowed_fields.contains(&field.as_str()),
            "exec init field {}",
            field
        );
    }
    prop_assert_eq!(&init["command"], &json!(["/bin/sh", "-ec"]));
    let sc = &init["securityContext"];
    prop_assert!(sc["privileged"] != json!(true), "privileged exec init");
    prop_assert!(sc["allowPrivilegeEscalation"] != json!(true));
    prop_assert!(
        sc["capabilities"]["add"]
            .as_array()
            .is_none_or(Vec::is_empty)
    );
    prop_assert_eq!(
        &init["volumeMounts"],
        &json!([{"name": EXEC_VOLUME, "mountPath": "/vault/exec"}])
    );
    Ok(())
}

/// Where the agent containers are in the mutated pod: the index of the appended container, and
/// of the init containers added: the classic one inserted first or appended, and
/// `vault-agent-exec-init` appended last.
fn split_added(
    original: &Value,
    mutated: &Value,
) -> Result<(Option<usize>, Vec<usize>), TestCaseError> {
    let co = list(&original["spec"]["containers"]);
    let cm = list(&mutated["spec"]["containers"]);
    prop_assert!(
        cm.len() == co.len() || cm.len() == co.len() + 1,
        "containers"
    );
    let added_container = (cm.len() > co.len()).then_some(co.len());
    let io = list(&original["spec"]["initContainers"]);
    let mut im = list(&mutated["spec"]["initContainers"]);
    let mut added = Vec::new();
    if im.len() > io.len() && im.last().is_some_and(|c| c["name"] == EXEC_INIT_NAME) {
        im.pop();
        added.push(im.len());
    }
    prop_assert!(
        im.len() == io.len() || im.len() == io.len() + 1,
        "initContainers"
    );
    if im.len() == io.len() {
        prop_assert!(names_eq(&im, &io), "user init containers reordered");
    } else if io.is_empty() || names_eq(&im[1..], &io) {
        // Inserted first (init-first) or the only one.
        added.insert(0, 0);
    } else {
        prop_assert!(
            names_eq(&im[..io.len()], &io),
            "user init containers reordered"
        );
        added.insert(0, io.len());
    }
    Ok((added_container, added))
}

fn names_eq(a: &[Value], b: &[Value]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x["name"] == y["name"])
}

/// A user container: unchanged but for `{name, mountPath}` mounts of injected secret volumes
/// appended to its `volumeMounts`.
fn check_user_container(
    before: &Value,
    after: &Value,
    injected: &BTreeSet<String>,
) -> Result<(), TestCaseError> {
    let mut b = before.clone();
    let mut a = after.clone();
    let mounts_b = list(&b["volumeMounts"]);
    let mounts_a = list(&a["volumeMounts"]);
    prop_assert!(mounts_a.len() >= mounts_b.len());
    prop_assert_eq!(
        &mounts_a[..mounts_b.len()],
        &mounts_b[..],
        "user mounts changed"
    );
    for m in &mounts_a[mounts_b.len()..] {
        let name = m["name"].as_str().unwrap_or_default();
        prop_assert!(
            (name == "vault-secrets" || is_custom_secrets_volume(name)) && injected.contains(name),
            "mount {} added to a user container",
            m
        );
        let fields: BTreeSet<&str> = m.as_object().unwrap().keys().map(String::as_str).collect();
        prop_assert_eq!(fields, BTreeSet::from(["name", "mountPath"]), "{}", m);
    }
    a.as_object_mut().unwrap().remove("volumeMounts");
    b.as_object_mut().unwrap().remove("volumeMounts");
    prop_assert_eq!(b, a, "a user container changed beyond its mounts");
    Ok(())
}

/// An agent container the user did not patch: only the fields the injector builds, no
/// privilege, and mounts of nothing the pod did not already have.
fn check_agent(
    agent: &Value,
    injected: &BTreeSet<String>,
    user_volumes: &BTreeSet<String>,
    user_mounts: &BTreeSet<String>,
) -> Result<(), TestCaseError> {
    let name = agent["name"].as_str().unwrap_or_default();
    prop_assert!(
        name == SIDECAR_NAME || name == INIT_CONTAINER_NAME,
        "agent named {}",
        name
    );
    let allowed_fields = [
        "name",
        "image",
        "command",
        "args",
        "env",
        "resources",
        "volumeMounts",
        "lifecycle",
        "securityContext",
        "restartPolicy",
        "startupProbe",
    ];
    for field in agent.as_object().unwrap().keys() {
        prop_assert!(
            allowed_fields.contains(&field.as_str()),
            "agent field {}",
            field
        );
    }
    let sc = &agent["securityContext"];
    prop_assert!(sc["privileged"] != json!(true), "privileged agent");
    prop_assert!(
        sc["allowPrivilegeEscalation"] != json!(true),
        "escalating agent"
    );
    prop_assert!(
        sc["capabilities"]["add"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "agent adds capabilities"
    );
    for m in list(&agent["volumeMounts"]) {
        let v = m["name"].as_str().unwrap_or_default();
        prop_assert!(
            injected.contains(v) || user_volumes.contains(v) || user_mounts.contains(v),
            "agent mounts {} which the pod did not have",
            m
        );
    }
    Ok(())
}

/// Whether the pod carries a JSON patch under one of `keys` that is not empty (`""`, `null`,
/// `[]`).
fn user_patched(pod: &Value, keys: &[&str]) -> bool {
    keys.iter().any(|k| {
        annotation_value(pod, k).is_some_and(|v| match serde_json::from_str::<Value>(&v) {
            _ if v.is_empty() => false,
            Ok(Value::Null) => false,
            Ok(Value::Array(ops)) => !ops.is_empty(),
            _ => true,
        })
    })
}

fn list(v: &Value) -> Vec<Value> {
    v.as_array().cloned().unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Shell strings

/// Every `sh -c` string in the agent containers keeps each annotation value one literal word.
fn check_shell(pod: &Value) -> Result<(), TestCaseError> {
    let allowed_args = allowed_agent_args();
    let allowed_exec_args = allowed_exec_init_args();
    for c in ["containers", "initContainers"]
        .iter()
        .flat_map(|l| list(&pod["spec"][*l]))
    {
        let name = c["name"].as_str().unwrap_or_default();
        if name == EXEC_INIT_NAME {
            let arg = c["args"][0].as_str().unwrap_or_default();
            prop_assert!(allowed_exec_args.contains(arg), "exec init args: {:?}", arg);
            continue;
        }
        if name != SIDECAR_NAME && name != INIT_CONTAINER_NAME {
            continue;
        }
        prop_assert_eq!(&c["command"], &json!(["/bin/sh", "-ec"]));
        let arg = c["args"][0].as_str().unwrap_or_default();
        prop_assert!(allowed_args.contains(arg), "agent args: {:?}", arg);

        let expected = agent_view(&c);
        if let Some(command) = c["lifecycle"]["preStop"]["exec"]["command"].as_array() {
            prop_assert_eq!(&command[..2], &[json!("/bin/sh"), json!("-c")]);
            let script = command[2].as_str().unwrap();
            let cli = ["/bin/vault ", "/bin/bao "]
                .into_iter()
                .find(|cli| script.contains(cli))
                .unwrap();
            let stubbed = script
                .replacen("/bin/sleep ", "w ", 1)
                .replacen(cli, "w ", 1);
            let words = run_words(&stubbed)?;
            let mut want = vec![
                expected.grace.clone(),
                "token".to_owned(),
                "revoke".to_owned(),
                format!("-address={}", expected.address),
            ];
            for (flag, value) in [
                ("-ca-cert", &expected.ca_cert),
                ("-client-cert", &expected.client_cert),
                ("-client-key", &expected.client_key),
            ] {
                if !value.is_empty() {
                    want.push(format!("{flag}={value}"));
                }
            }
            want.push("-self".to_owned());
            prop_assert_eq!(words, want, "preStop {:?}", script);
        }
        if let Some(command) = c["startupProbe"]["exec"]["command"].as_array() {
            prop_assert_eq!(&command[..2], &[json!("/bin/sh"), json!("-c")]);
            let script = command[2].as_str().unwrap();
            let words = run_words(&script.replace("test -e ", "w -e "))?;
            let files = if expected.destinations.is_empty() {
                vec![TOKEN_FILE.to_owned()]
            } else {
                expected.destinations.clone()
            };
            let want: Vec<String> = files
                .iter()
                .flat_map(|f| ["-e".to_owned(), f.clone()])
                .collect();
            prop_assert_eq!(words, want, "startupProbe {:?}", script);
        }
    }
    Ok(())
}

/// The agents' `args`: constants, whatever the annotations.
fn allowed_agent_args() -> BTreeSet<String> {
    let mut set = BTreeSet::new();
    for cli in ["vault", "bao"] {
        for n in 1..=64 {
            set.insert(container_arg(n, cli));
        }
        for file in ["config-init.hcl", "config.hcl"] {
            set.insert(format!(
                "touch /home/vault/.vault-token && {cli} agent -config=/vault/configs/{file}"
            ));
        }
    }
    set
}

/// `vault-agent-exec-init`'s `args`: constants too (the CLI, how many variables the
/// configuration takes, and whether the injector's CA bytes are written).
fn allowed_exec_init_args() -> BTreeSet<String> {
    let mut set = BTreeSet::new();
    for cli in ["vault", "bao"] {
        for n in 1..=64 {
            let joined: String = (0..n)
                .map(|i| match i {
                    0 => "${VAULT_CONFIG?}".to_owned(),
                    i => format!("${{VAULT_CONFIG_{i}?}}"),
                })
                .collect();
            let bin = format!("/vault/exec/{cli}");
            let common = format!(
                "cp \"$(command -v {cli})\" {bin} && chmod 0555 {bin} && echo {joined} | base64 -d > /vault/exec/config.json && chmod 0444 /vault/exec/config.json"
            );
            set.insert(format!("rm -f {bin} /vault/exec/config.json && {common}"));
            set.insert(format!(
                "rm -f {bin} /vault/exec/config.json /vault/exec/ca.crt && {common} && printf '%s\\n' \"$VAULT_CACERT_BYTES\" > /vault/exec/ca.crt && chmod 0444 /vault/exec/ca.crt"
            ));
        }
    }
    set
}

/// What the agent itself is configured with: the values the shell strings must carry verbatim.
struct AgentView {
    grace: String,
    address: String,
    ca_cert: String,
    client_cert: String,
    client_key: String,
    destinations: Vec<String>,
}

fn agent_view(c: &Value) -> AgentView {
    let env = |name: &str| support::env_value(c, name).unwrap_or_default().to_owned();
    let grace = c["lifecycle"]["preStop"]["exec"]["command"][2]
        .as_str()
        .and_then(|s| s.strip_prefix("/bin/sleep "))
        .and_then(|s| s.split(' ').next())
        .unwrap_or_default()
        .to_owned();
    if support::env_value(c, "VAULT_CONFIG").is_none() {
        // ConfigMap mode: the agent reads its address and TLS files from the environment.
        return AgentView {
            grace,
            address: env("VAULT_ADDR"),
            ca_cert: env("VAULT_CACERT"),
            client_cert: env("VAULT_CLIENT_CERT"),
            client_key: env("VAULT_CLIENT_KEY"),
            destinations: Vec::new(),
        };
    }
    let mut b64 = env("VAULT_CONFIG");
    for i in 1.. {
        match support::env_value(c, &format!("VAULT_CONFIG_{i}")) {
            Some(chunk) => b64.push_str(chunk),
            None => break,
        }
    }
    let config: Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap(),
    )
    .unwrap();
    let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    AgentView {
        grace,
        address: s(&config["vault"]["address"]),
        ca_cert: s(&config["vault"]["ca_cert"]),
        client_cert: s(&config["vault"]["client_cert"]),
        client_key: s(&config["vault"]["client_key"]),
        destinations: list(&config["template"])
            .iter()
            .map(|t| s(&t["destination"]))
            .collect(),
    }
}

/// Runs `script` in a real `/bin/sh -c` with `w` defined to print each argument NUL-terminated,
/// in an empty directory with an empty environment; the words `w` received, in order.
fn run_words(script: &str) -> Result<Vec<String>, TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("w() {{ printf '%s\\0' \"$@\"; }}\n{script}"))
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    prop_assert!(
        out.status.success() && out.stderr.is_empty(),
        "{:?} failed: {}",
        script,
        String::from_utf8_lossy(&out.stderr)
    );
    prop_assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "{:?} created files",
        script
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut words: Vec<String> = text.split('\0').map(str::to_owned).collect();
    prop_assert_eq!(words.pop(), Some(String::new()));
    Ok(words)
}
