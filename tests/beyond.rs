//! Beyond upstream through the admission core: OpenBao annotations and
//! the `-agent-binary` setting, and per-namespace defaults with their cache states.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;

use serde_json::{Value, json};
use support::*;
use vault_injector::admission::{self, Mutation, NamespaceDefaults};
use vault_injector::annotations::SkipReason;
use vault_injector::settings::AgentBinarySetting;

fn ops(m: Mutation) -> Vec<Value> {
    match m {
        Mutation::Inject { ops, .. } => vault_injector::patch::to_values(&ops),
        Mutation::Skip(reason) => panic!("not injected: {reason}"),
    }
}

fn mutated(pod: &Value, ops: &[Value]) -> Value {
    use vault_injector::patch;
    patch::apply(pod, &patch::to_patch(ops.to_vec()).unwrap()).unwrap()
}

fn sidecar_arg(pod: &Value) -> String {
    find_container(pod, "vault-agent").unwrap()["args"][0]
        .as_str()
        .unwrap()
        .to_owned()
}

fn with_ns(ann: &[(&str, &str)]) -> impl Fn(&str) -> NamespaceDefaults {
    let map: BTreeMap<String, String> = ann
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |_| NamespaceDefaults::Annotations(map.clone())
}

fn decoded_config(pod: &Value, container: &str) -> Value {
    use base64::Engine as _;
    let b64 = env_value(find_container(pod, container).unwrap(), "VAULT_CONFIG").unwrap();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[test]
fn an_openbao_image_runs_bao_only_when_asked_or_for_openbao_pods() {
    let vault_pod = pod().ann("agent-image", "openbao/openbao:2.4.1").build();
    let mut d = defaults();
    let out = mutated(
        &vault_pod,
        &ops(admission::mutate(&vault_pod, "apps", &d).unwrap()),
    );
    assert!(sidecar_arg(&out).contains("&& vault agent -config="));

    d.agent_binary = AgentBinarySetting::Auto;
    let out = mutated(
        &vault_pod,
        &ops(admission::mutate(&vault_pod, "apps", &d).unwrap()),
    );
    assert!(sidecar_arg(&out).contains("&& bao agent -config="));
    // The status key stays upstream's for a vault.hashicorp.com pod.
    assert_eq!(
        out["metadata"]["annotations"]["vault.hashicorp.com/agent-inject-status"],
        "injected"
    );

    d.agent_binary = AgentBinarySetting::Vault;
    let bao_pod = json!({
        "metadata": {"annotations": {
            "openbao.org/agent-inject": "true",
            "openbao.org/role": "r",
            "openbao.org/agent-image": "openbao/openbao:2.4.1"
        }},
        "spec": vault_pod["spec"].clone()
    });
    let out = mutated(
        &bao_pod,
        &ops(admission::mutate(&bao_pod, "apps", &d).unwrap()),
    );
    assert!(sidecar_arg(&out).contains("&& vault agent -config="));
    assert_eq!(
        out["metadata"]["annotations"]["openbao.org/agent-inject-status"],
        "injected"
    );
    assert_eq!(
        admission::mutate(&out, "apps", &d).unwrap(),
        Mutation::Skip(SkipReason::AlreadyInjected),
        "injected once"
    );
}

/// An OpenBao pod (openbao.org annotations, OpenBao image) with the given extra annotations.
fn openbao_pod(extra: &[(&str, &str)]) -> Value {
    let mut annotations = json!({
        "openbao.org/agent-inject": "true",
        "openbao.org/role": "r",
        "openbao.org/agent-image": "openbao/openbao:2.4.1",
        "openbao.org/agent-revoke-on-shutdown": "true"
    });
    for (k, v) in extra {
        annotations[*k] = json!(v);
    }
    json!({"metadata": {"annotations": annotations}, "spec": pod().build()["spec"].clone()})
}

#[test]
fn a_renamed_openbao_agent_still_runs_bao() {
    let bao_pod = openbao_pod(&[
        (
            "openbao.org/agent-json-patch",
            r#"[{"op":"replace","path":"/name","value":"bao-agent"}]"#,
        ),
        (
            "openbao.org/agent-init-json-patch",
            r#"[{"op":"replace","path":"/name","value":"bao-agent-init"}]"#,
        ),
    ]);
    let out = mutated(
        &bao_pod,
        &ops(admission::mutate(&bao_pod, "apps", &defaults()).unwrap()),
    );
    for name in ["bao-agent", "bao-agent-init"] {
        let c = find_container(&out, name).unwrap();
        let arg = c["args"][0].as_str().unwrap();
        assert!(
            arg.ends_with("&& bao agent -config=/home/vault/config.json"),
            "{name}: {arg}"
        );
    }
    let pre_stop =
        &find_container(&out, "bao-agent").unwrap()["lifecycle"]["preStop"]["exec"]["command"][2];
    assert!(
        pre_stop
            .as_str()
            .unwrap()
            .contains("&& /bin/bao token revoke "),
        "{pre_stop}"
    );
}

#[test]
fn args_a_json_patch_supplies_are_never_rewritten() {
    let own = "echo ${VAULT_CONFIG?} | base64 -d > /tmp/c.json && vault agent -config=/tmp/c.json";
    let bao_pod = openbao_pod(&[(
        "openbao.org/agent-json-patch",
        &format!(
            r#"[{{"op":"replace","path":"/args","value":[{}]}},{{"op":"replace","path":"/lifecycle/preStop/exec/command/2","value":"/bin/vault token revoke -self"}}]"#,
            json!(own)
        ),
    )]);
    let out = mutated(
        &bao_pod,
        &ops(admission::mutate(&bao_pod, "apps", &defaults()).unwrap()),
    );
    let sidecar = find_container(&out, "vault-agent").unwrap();
    assert_eq!(sidecar["args"], json!([own]));
    assert_eq!(
        sidecar["lifecycle"]["preStop"]["exec"]["command"][2],
        "/bin/vault token revoke -self"
    );
    // The init container, which the patch did not touch, runs bao.
    assert!(
        find_container(&out, "vault-agent-init").unwrap()["args"][0]
            .as_str()
            .unwrap()
            .contains("&& bao agent -config=")
    );
}

#[test]
fn a_pod_injected_by_openbao_k8s_is_not_injected_again() {
    let p = json!({
        "metadata": {"annotations": {
            "openbao.org/agent-inject": "true",
            "openbao.org/agent-inject-status": "injected"
        }},
        "spec": {"containers": [{"name": "app"}]}
    });
    assert_eq!(
        admission::mutate(&p, "apps", &defaults()).unwrap(),
        Mutation::Skip(SkipReason::AlreadyInjected)
    );
}

#[test]
fn namespace_annotations_are_defaults_and_the_pod_wins() {
    let p = pod().without("role").build();
    let lookup = with_ns(&[
        ("vault.hashicorp.com/role", "ns-role"),
        ("vault.hashicorp.com/agent-limits-cpu", "2"),
    ]);
    let out = mutated(
        &p,
        &ops(admission::mutate_with(&p, "apps", &defaults(), &lookup).unwrap()),
    );
    let config = decoded_config(&out, "vault-agent");
    assert_eq!(config["auto_auth"]["method"]["config"]["role"], "ns-role");
    assert_eq!(
        find_container(&out, "vault-agent").unwrap()["resources"]["limits"]["cpu"],
        "2"
    );
    // No annotation from the namespace is written to the pod.
    assert!(
        out["metadata"]["annotations"]
            .get("vault.hashicorp.com/role")
            .is_none()
    );

    let p = pod().ann("role", "pod-role").build();
    let out = mutated(
        &p,
        &ops(admission::mutate_with(&p, "apps", &defaults(), &lookup).unwrap()),
    );
    let config = decoded_config(&out, "vault-agent");
    assert_eq!(config["auto_auth"]["method"]["config"]["role"], "pod-role");
}

#[test]
fn namespace_defaults_never_opt_a_pod_in() {
    let p = pod().without("agent-inject").build();
    let lookup = with_ns(&[("vault.hashicorp.com/agent-inject", "true")]);
    assert_eq!(
        admission::mutate_with(&p, "apps", &defaults(), &lookup).unwrap(),
        Mutation::Skip(SkipReason::NotAnnotated)
    );
}

#[test]
fn an_unsynced_cache_refuses_injections_but_not_other_pods() {
    let p = pod().build();
    for state in [NamespaceDefaults::NotSynced, NamespaceDefaults::Unknown] {
        let lookup = move |_: &str| state.clone();
        let err = admission::mutate_with(&p, "apps", &defaults(), &lookup).unwrap_err();
        assert!(
            err.to_string().starts_with(
                "error adding default annotations: namespace defaults for apps are not loaded yet"
            ),
            "{err}"
        );
    }
    let not_annotated = pod().without("agent-inject").build();
    assert_eq!(
        admission::mutate_with(&not_annotated, "apps", &defaults(), &|_| {
            NamespaceDefaults::NotSynced
        })
        .unwrap(),
        Mutation::Skip(SkipReason::NotAnnotated)
    );
}

#[test]
fn with_the_feature_off_the_output_is_upstreams() {
    let p = pod().build();
    assert_eq!(
        admission::mutate_with(&p, "apps", &defaults(), &|_| NamespaceDefaults::Off).unwrap(),
        admission::mutate(&p, "apps", &defaults()).unwrap()
    );
}

#[test]
fn the_missed_injections_counter_exists_only_once_the_watcher_registers_it() {
    use vault_injector::telemetry::metrics::{MISSED_INJECTIONS, Metrics};
    let metrics = Metrics::new().unwrap();
    let text = String::from_utf8(metrics.encode().unwrap()).unwrap();
    assert!(!text.contains(MISSED_INJECTIONS), "{text}");
    let counter = metrics.missed_injections().unwrap();
    counter.with_label_values(&["apps"]).inc();
    let text = String::from_utf8(metrics.encode().unwrap()).unwrap();
    assert!(
        text.contains(&format!("{MISSED_INJECTIONS}{{namespace=\"apps\"}} 1")),
        "{text}"
    );
}
