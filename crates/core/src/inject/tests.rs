#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use serde_json::json;

use super::env::{decode_if_base64, go_json_string};
use super::*;
use crate::admission::{self, Mutation};
use crate::settings::Settings;

/// A pod whose 80 templates of 3 KB encode to about 330 KB of base64.
fn large_pod() -> Value {
    let mut annotations = serde_json::Map::new();
    annotations.insert("vault.hashicorp.com/agent-inject".into(), json!("true"));
    annotations.insert("vault.hashicorp.com/role".into(), json!("app"));
    for i in 0..80 {
        annotations.insert(
            format!("vault.hashicorp.com/agent-inject-template-t{i:03}"),
            json!(format!(
                "{{{{ with secret \"kv/data/t{i}\" }}}}{}{{{{ end }}}}",
                "x".repeat(3000)
            )),
        );
    }
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "big", "annotations": annotations},
        "spec": {
            "containers": [{
                "name": "app", "image": "app:1",
                "volumeMounts": [{"name": "sa", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]
            }],
            "volumes": [{"name": "sa", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}}]
        }
    })
}

fn sidecar(pod: &Value) -> Container {
    let m = admission::mutate(pod, "apps", &Settings::default().agent).unwrap();
    assert!(matches!(m, Mutation::Inject { .. }));
    let mutated = admission::mutated_object(pod, &m).unwrap();
    let pod: Pod = serde_json::from_value(mutated).unwrap();
    pod.spec
        .unwrap()
        .containers
        .into_iter()
        .find(|c| c.name == SIDECAR_NAME)
        .unwrap()
}

/// The value of every plain env var the container sets (the `fieldRef`s are left out).
fn plain_env(c: &Container) -> Vec<(String, String)> {
    c.env
        .iter()
        .flatten()
        .filter_map(|e| Some((e.name.clone(), e.value.clone()?)))
        .collect()
}

#[test]
#[cfg(target_os = "linux")]
fn an_unsplit_config_over_128_kib_cannot_even_start_a_shell() {
    // What upstream users hit with many templates: execve refuses the environment with E2BIG.
    let err = Command::new("/bin/sh")
        .args(["-c", "true"])
        .env_clear()
        .env(
            CONFIG_ENV,
            "A".repeat(MAX_ENV_STRING - CONFIG_ENV.len() - 1),
        )
        .status()
        .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(7), "{err}"); // E2BIG
    let ok = Command::new("/bin/sh")
        .args(["-c", "true"])
        .env_clear()
        .env(
            CONFIG_ENV,
            "A".repeat(MAX_ENV_STRING - CONFIG_ENV.len() - 2),
        )
        .status()
        .unwrap();
    assert!(ok.success());
}

#[test]
#[cfg(target_os = "linux")]
fn the_split_command_rebuilds_the_exact_config_in_a_real_shell() {
    let c = sidecar(&large_pod());
    let env = plain_env(&c);
    let chunks: Vec<&(String, String)> = env
        .iter()
        .filter(|(k, _)| k.starts_with(CONFIG_ENV))
        .collect();
    assert!(chunks.len() >= 3, "{} chunks", chunks.len());
    let joined: String = chunks.iter().map(|(_, v)| v.as_str()).collect();
    let expected = base64::engine::general_purpose::STANDARD
        .decode(&joined)
        .unwrap();

    // The container's own command and args, with `vault` played by a script that records
    // its arguments and the config path moved into a temporary directory.
    let dir = tempfile::tempdir().unwrap();
    let vault = dir.path().join("vault");
    std::fs::write(
        &vault,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" > {}/vault-args\n",
            dir.path().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&vault, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config_path = dir.path().join("config.json");
    let command = c.command.clone().unwrap();
    let arg = c.args.clone().unwrap()[0].replace(
        "/home/vault/config.json",
        &config_path.display().to_string(),
    );
    let status = Command::new(&command[0])
        .args(&command[1..])
        .arg(&arg)
        .env_clear()
        .env("PATH", format!("{}:/usr/bin:/bin", dir.path().display()))
        .envs(env.iter().map(|(k, v)| (k, v)))
        .status()
        .unwrap();
    assert!(status.success(), "{status}");
    let written = std::fs::read(&config_path).unwrap();
    assert_eq!(written, expected);
    let config: Value = serde_json::from_slice(&written).unwrap();
    assert_eq!(config["template"].as_array().unwrap().len(), 80);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("vault-args")).unwrap(),
        format!("agent\n-config={}\n", config_path.display())
    );
}

#[test]
fn container_arg_is_upstreams_for_one_chunk() {
    assert_eq!(container_arg(0, "vault"), DEFAULT_CONTAINER_ARG);
    assert_eq!(container_arg(1, "vault"), DEFAULT_CONTAINER_ARG);
    assert_eq!(
        container_arg(3, "vault"),
        "echo ${VAULT_CONFIG?}${VAULT_CONFIG_1?}${VAULT_CONFIG_2?} | base64 -d > /home/vault/config.json && vault agent -config=/home/vault/config.json"
    );
    assert_eq!(
        container_arg(1, "bao"),
        "echo ${VAULT_CONFIG?} | base64 -d > /home/vault/config.json && bao agent -config=/home/vault/config.json"
    );
}

#[test]
fn ordinary_values_stay_unquoted_and_others_become_one_word() {
    assert_eq!(
        shell_word("https://vault.vault.svc:8200"),
        "https://vault.vault.svc:8200"
    );
    assert_eq!(shell_word("/vault/tls/ca.crt"), "/vault/tls/ca.crt");
    assert_eq!(shell_word("x; id"), "'x; id'");
    assert_eq!(shell_word("$(id)"), "'$(id)'");
    assert_eq!(shell_word(""), "''");
}

#[test]
fn ca_cert_bytes_that_decode_to_non_utf8_get_one_replacement_per_byte_as_in_go() {
    // "////" is valid base64 for ff ff ff: three invalid bytes, three U+FFFD.
    assert_eq!(decode_if_base64("////"), "\u{fffd}\u{fffd}\u{fffd}");
    // A truncated 4-byte sequence (f0 9f 98) is three bytes Go replaces one by one.
    assert_eq!(
        go_json_string(b"a\xf0\x9f\x98b"),
        "a\u{fffd}\u{fffd}\u{fffd}b"
    );
    assert_eq!(go_json_string("é✓".as_bytes()), "é✓");
    assert_eq!(decode_if_base64("aGk="), "hi");
    assert_eq!(decode_if_base64("not base64!"), "not base64!");
}

#[test]
fn the_ca_cert_bytes_variable_holds_what_upstream_writes() {
    let mut settings = Settings::default();
    settings.agent.vault_address = "http://v:8200".into();
    settings.agent.ca_cert_bytes = "////".into();
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "annotations": {
            "vault.hashicorp.com/agent-inject": "true",
            "vault.hashicorp.com/role": "app"}},
        "spec": {"containers": [{
            "name": "app", "image": "app:1",
            "volumeMounts": [{"name": "sa", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]
        }], "volumes": [{"name": "sa", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}}]}
    });
    let m = admission::mutate(&pod, "apps", &settings.agent).unwrap();
    let mutated: Pod =
        serde_json::from_value(admission::mutated_object(&pod, &m).unwrap()).unwrap();
    let sidecar = mutated.spec.unwrap().containers.pop().unwrap();
    let value = plain_env(&sidecar)
        .into_iter()
        .find(|(k, _)| k == "VAULT_CACERT_BYTES")
        .unwrap()
        .1;
    assert_eq!(value, "\u{fffd}\u{fffd}\u{fffd}");
}

#[test]
fn shell_quoting_survives_quotes_and_spaces() {
    assert_eq!(shell_quote("/a b/c'd"), "'/a b/c'\\''d'");
}
