//! Secrets as environment variables (`agent-inject-env-*`, not upstream): what the injector
//! adds to a pod, the exec agent's configuration, the refusals and the warnings. The init
//! container's script is run by a real shell, and the configuration is the one the node tier's
//! `node-env-exec` scenario runs with a real OpenBao agent.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::os::unix::fs::PermissionsExt as _;
use std::process::Command;

use base64::Engine as _;
use serde_json::{Value, json};
use vault_injector::admission::{self, InjectionType, Mutation};
use vault_injector::annotations::keys;
use vault_injector::inject::{EXEC_INIT_NAME, EXEC_VOLUME, exec_command};
use vault_injector::openbao::AgentBinary;

const USER_TEMPLATE: &str =
    r#"{{ with secret "database/creds/orders-app" }}{{ .Data.username }}{{ end }}"#;
const PASSWORD_TEMPLATE: &str =
    r#"{{ with secret "database/creds/orders-app" }}{{ .Data.password }}{{ end }}"#;

/// `support::pod()` whose app runs `/app/run --serve`, with `DB_USER` and `DB_PASSWORD` from
/// one dynamic secret.
fn exec_pod() -> support::PodBuilder {
    support::pod()
        .set("/spec/containers/0/command", json!(["/app/run"]))
        .set("/spec/containers/0/args", json!(["--serve"]))
        .ann("agent-inject-env-DB_USER", "database/creds/orders-app")
        .ann("agent-inject-env-template-DB_USER", USER_TEMPLATE)
        .ann("agent-inject-env-template-DB_PASSWORD", PASSWORD_TEMPLATE)
}

/// The decoded configuration of the exec init container.
fn exec_config(injected: &support::Injected) -> Value {
    injected.config(EXEC_INIT_NAME)
}

#[test]
fn a_pod_with_only_variables_gets_the_exec_agent_and_no_classic_agent() {
    let injected = support::inject(&exec_pod().build()).unwrap();
    assert_eq!(injected.container_names(), ["app"]);
    assert_eq!(injected.init_names(), [EXEC_INIT_NAME]);
    assert_eq!(
        injected.volume_names(),
        ["kube-api-access-abcde", EXEC_VOLUME]
    );
    // Disk-backed: the volume holds the agent binary, which a memory medium would charge to
    // the init container's memory limit.
    assert_eq!(injected.pod["spec"]["volumes"][1]["emptyDir"], json!({}));

    let app = injected.container("app");
    assert_eq!(
        app["command"],
        json!([
            "/vault/exec/vault",
            "agent",
            "-config=/vault/exec/config.json"
        ])
    );
    assert_eq!(app["args"], json!([]));
    assert_eq!(
        app["volumeMounts"][1],
        json!({"name": EXEC_VOLUME, "mountPath": "/vault/exec", "readOnly": true})
    );
    assert_eq!(support::mount_names(app).len(), 2, "{app}");
    // Nothing else about the app container changes: not its environment, nor its user.
    assert!(app.get("env").is_none() && app.get("securityContext").is_none());

    let init = injected.container(EXEC_INIT_NAME);
    assert_eq!(init["image"], "hashicorp/vault:2.0.4");
    assert_eq!(init["command"], json!(["/bin/sh", "-ec"]));
    assert_eq!(
        init["args"][0],
        "rm -f /vault/exec/vault /vault/exec/config.json && cp \"$(command -v vault)\" /vault/exec/vault && chmod 0555 /vault/exec/vault && echo ${VAULT_CONFIG?} | base64 -d > /vault/exec/config.json && chmod 0444 /vault/exec/config.json"
    );
    assert_eq!(support::mount_names(init), [EXEC_VOLUME]);
    assert_eq!(init["securityContext"]["runAsUser"], 100);
    assert_eq!(init["resources"]["limits"]["memory"], "128Mi");
}

#[test]
fn the_exec_configuration_runs_the_original_command_with_the_variables() {
    let injected = support::inject(&exec_pod().build()).unwrap();
    let config = exec_config(&injected);
    assert_eq!(
        config,
        json!({
            "auto_auth": {"method": [{
                "type": "kubernetes",
                "mount_path": "auth/kubernetes",
                "config": {
                    "role": "app",
                    "token_path": "/var/run/secrets/kubernetes.io/serviceaccount/token"
                }
            }]},
            "vault": {"address": "https://vault.vault.svc:8200"},
            "env_template": {
                "DB_PASSWORD": {"contents": PASSWORD_TEMPLATE, "error_on_missing_key": true},
                "DB_USER": {"contents": USER_TEMPLATE, "error_on_missing_key": true}
            },
            "exec": {
                "command": ["/app/run", "--serve"],
                "restart_on_secret_changes": "always",
                "restart_stop_signal": "SIGTERM"
            },
            "template_config": {"exit_on_retry_failure": true},
            "log_level": "info",
            "log_format": "standard"
        })
    );
    // No sink, listener, cache or pid file: the agent writes nothing in the app container.
    for key in [
        "exit_after_auth",
        "pid_file",
        "template",
        "listener",
        "cache",
    ] {
        assert!(config.get(key).is_none(), "{key}");
    }
}

#[test]
fn a_path_without_a_template_gives_the_secrets_data_as_json() {
    let pod = exec_pod()
        .ann("agent-inject-env-APP_CONFIG", "secret/data/app")
        .build();
    let config = exec_config(&support::inject(&pod).unwrap());
    assert_eq!(
        config["env_template"]["APP_CONFIG"]["contents"],
        r#"{{ with secret "secret/data/app" }}{{ if and (index .Data "data") (index .Data "metadata") }}{{ index .Data "data" | toJSON }}{{ else }}{{ .Data | toJSON }}{{ end }}{{ end }}"#
    );
}

#[test]
fn the_command_annotation_stands_for_the_entrypoint_and_the_args_follow_it() {
    let pod = support::pod()
        .set("/spec/containers/0/args", json!(["--port", "8080"]))
        .ann("agent-inject-env-TOKEN", "secret/data/app")
        .ann("agent-inject-env-command", r#"["/usr/bin/app", "serve"]"#)
        .ann("agent-inject-env-restart", "never")
        .ann("agent-inject-env-stop-signal", "sigint")
        .build();
    let config = exec_config(&support::inject(&pod).unwrap());
    assert_eq!(
        config["exec"],
        json!({
            "command": ["/usr/bin/app", "serve", "--port", "8080"],
            "restart_on_secret_changes": "never",
            "restart_stop_signal": "SIGINT"
        })
    );
}

#[test]
fn file_secrets_stay_with_the_classic_agents_and_the_exec_init_runs_last() {
    let pod = exec_pod()
        .ann("agent-inject-secret-db.env", "database/creds/orders-app")
        .init_container("migrate")
        .build();
    let injected = support::inject(&pod).unwrap();
    assert_eq!(injected.container_names(), ["app", "vault-agent"]);
    assert_eq!(
        injected.init_names(),
        ["migrate", "vault-agent-init", EXEC_INIT_NAME]
    );
    let app = injected.container("app");
    assert_eq!(
        support::mount_names(app),
        ["kube-api-access-abcde", "vault-secrets", EXEC_VOLUME]
    );
    // The classic agents render the file and nothing else; the exec agent has no file.
    let sidecar = injected.config("vault-agent");
    assert_eq!(sidecar["template"].as_array().unwrap().len(), 1);
    assert!(sidecar.get("env_template").is_none());
    assert!(exec_config(&injected).get("template").is_none());
}

#[test]
fn the_token_file_or_the_cache_keep_the_classic_agents() {
    for (key, value) in [
        ("agent-inject-token", "true"),
        ("agent-cache-enable", "true"),
    ] {
        let injected = support::inject(&exec_pod().ann(key, value).build()).unwrap();
        assert_eq!(injected.container_names(), ["app", "vault-agent"], "{key}");
        assert!(
            injected.init_names().contains(&EXEC_INIT_NAME.to_owned()),
            "{key}"
        );
    }
}

#[test]
fn openbao_pods_copy_and_run_bao() {
    let pod = exec_pod()
        .ann("agent-image", "openbao/openbao:2.4.1")
        .build();
    let mut pod = pod;
    pod["metadata"]["annotations"]["openbao.org/agent-inject"] = json!("true");
    let injected = support::inject(&pod).unwrap();
    assert_eq!(
        injected.container("app")["command"],
        json!(exec_command(AgentBinary::Bao))
    );
    assert_eq!(
        exec_command(AgentBinary::Bao),
        [
            "/vault/exec/bao",
            "agent",
            "-config=/vault/exec/config.json"
        ]
    );
    let script = injected.container(EXEC_INIT_NAME)["args"][0]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        script.contains("cp \"$(command -v bao)\" /vault/exec/bao && chmod 0555 /vault/exec/bao"),
        "{script}"
    );
}

#[test]
fn another_container_can_be_wrapped_and_gets_the_token_mount_it_lacked() {
    let pod = exec_pod()
        .container("worker")
        .set("/spec/containers/1/command", json!(["/bin/worker"]))
        .ann("agent-inject-env-container", "worker")
        .ann("tls-secret", "vault-ca")
        .build();
    let injected = support::inject(&pod).unwrap();
    // The app container keeps its command; the worker is wrapped.
    assert_eq!(injected.container("app")["command"], json!(["/app/run"]));
    let worker = injected.container("worker");
    assert_eq!(worker["command"][0], "/vault/exec/vault");
    assert!(worker.get("args").is_none(), "{worker}");
    assert_eq!(
        worker["volumeMounts"],
        json!([
            {"name": EXEC_VOLUME, "mountPath": "/vault/exec", "readOnly": true},
            {"name": "kube-api-access-abcde", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true},
            {"name": "vault-tls-secrets", "mountPath": "/vault/tls", "readOnly": true}
        ])
    );
    assert_eq!(
        exec_config(&injected)["exec"]["command"],
        json!(["/bin/worker"])
    );
}

#[test]
fn the_injectors_ca_bytes_reach_the_exec_agent_as_a_file() {
    let mut defaults = support::defaults();
    defaults.ca_cert_bytes = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----".into();
    let injected = support::inject_with(&exec_pod().build(), &defaults).unwrap();
    let init = injected.container(EXEC_INIT_NAME);
    assert_eq!(
        support::env_value(init, "VAULT_CACERT_BYTES"),
        Some(defaults.ca_cert_bytes.as_str())
    );
    assert!(
        init["args"][0]
            .as_str()
            .unwrap()
            .ends_with("printf '%s\\n' \"$VAULT_CACERT_BYTES\" > /vault/exec/ca.crt && chmod 0444 /vault/exec/ca.crt")
    );
    assert_eq!(
        exec_config(&injected)["vault"]["ca_cert"],
        "/vault/exec/ca.crt"
    );
}

#[test]
fn metrics_count_a_pod_with_only_variables_as_exec_only() {
    let m = admission::mutate(&exec_pod().build(), "apps", &support::defaults()).unwrap();
    let Mutation::Inject { injection_type, .. } = m else {
        panic!("not injected")
    };
    assert_eq!(injection_type, Some(InjectionType::ExecOnly));
    assert_eq!(InjectionType::ExecOnly.label(), "exec_only");
}

#[test]
fn refusals_name_the_annotation_and_the_value() {
    let no_command = support::pod().ann("agent-inject-env-X", "secret/data/x");
    let cases = [
        (
            no_command.clone(),
            "container \"app\" has no command, and the injector cannot read its image's entrypoint: set annotation vault.hashicorp.com/agent-inject-env-command",
        ),
        (
            exec_pod().ann("agent-inject-env-1X", "secret/data/x"),
            "invalid environment variable name \"1X\" (annotation vault.hashicorp.com/agent-inject-env-1X)",
        ),
        (
            exec_pod().ann("agent-inject-env-template-A-B", "x"),
            "invalid environment variable name \"A-B\" (annotation vault.hashicorp.com/agent-inject-env-template-A-B)",
        ),
        (
            exec_pod().ann("agent-inject-env-restart", "sometimes"),
            "invalid restart policy \"sometimes\" (annotation vault.hashicorp.com/agent-inject-env-restart; use always or never)",
        ),
        (
            exec_pod().ann("agent-inject-env-stop-signal", "TERM"),
            "unknown signal \"TERM\" (annotation vault.hashicorp.com/agent-inject-env-stop-signal",
        ),
        (
            exec_pod().ann("agent-inject-env-container", "web"),
            "container \"web\" to run with the environment variables is not among the pod's containers (annotation vault.hashicorp.com/agent-inject-env-container: \"web\")",
        ),
        (
            exec_pod().ann("agent-configmap", "cfg"),
            "vault.hashicorp.com/agent-inject-env-DB_PASSWORD cannot be used in ConfigMap mode (annotation vault.hashicorp.com/agent-configmap: \"cfg\")",
        ),
        (
            exec_pod().ann("proxy-address", "http://proxy:3128"),
            "cannot be used with proxy address \"http://proxy:3128\" (annotation vault.hashicorp.com/proxy-address or -proxy-address)",
        ),
        (
            exec_pod().ann("agent-inject-env-command", r#"["/other"]"#),
            "annotation vault.hashicorp.com/agent-inject-env-command stands for the image's entrypoint, but container \"app\" has its own command [\"/app/run\"]; remove one",
        ),
        (
            no_command
                .clone()
                .ann("agent-inject-env-command", "/app/run --serve"),
            "invalid command \"/app/run --serve\" (annotation vault.hashicorp.com/agent-inject-env-command): want a JSON array of strings",
        ),
        (
            no_command.clone().ann("agent-inject-env-command", "[]"),
            "invalid command \"[]\" (annotation vault.hashicorp.com/agent-inject-env-command): the first word must name a program",
        ),
        (
            no_command.ann("agent-inject-env-command", r#"["/app/run --serve"]"#),
            "the command of container \"app\" is the one word \"/app/run --serve\", which the agent would run as a shell line (sh -c)",
        ),
    ];
    for (pod, want) in cases {
        let message = support::refusal(&pod.build());
        assert!(message.contains(want), "want {want:?} in:\n{message}");
    }
}

#[test]
fn settings_without_variables_change_nothing_but_bad_values_are_still_refused() {
    let plain = support::inject(&support::pod().build()).unwrap();
    let with_settings = support::inject(
        &support::pod()
            .ann("agent-inject-env-restart", "never")
            .ann("agent-inject-env-container", "nowhere")
            .build(),
    )
    .unwrap();
    assert_eq!(plain.pod["spec"], with_settings.pod["spec"]);
    let message = support::refusal(
        &support::pod()
            .ann("agent-inject-env-stop-signal", "SIGBOGUS")
            .build(),
    );
    assert!(message.contains(keys::ENV_STOP_SIGNAL), "{message}");
    // A blank value declares nothing, as for `agent-inject-secret-*`.
    let blank = support::inject(&support::pod().ann("agent-inject-env-X", " ").build()).unwrap();
    assert_eq!(plain.pod["spec"], blank.pod["spec"]);
}

fn warnings(pod: &Value) -> Vec<String> {
    match admission::mutate(pod, "apps", &support::defaults()).unwrap() {
        Mutation::Inject { warnings, .. } => warnings,
        Mutation::Skip(reason) => panic!("skipped: {reason}"),
    }
}

#[test]
fn warnings_say_what_a_rotation_does_to_the_app() {
    let w = warnings(&exec_pod().build());
    assert_eq!(w.len(), 2, "{w:#?}");
    assert!(
        w[0].starts_with("vault.hashicorp.com/agent-inject-env-restart: a changed secret restarts the process of container \"app\"")
            && w[0].contains("exit on SIGTERM"),
        "{}",
        w[0]
    );
    assert!(
        w[1].starts_with("vault.hashicorp.com/agent-inject-env-DB_PASSWORD: every new lease of dynamic secret \"database/creds/orders-app\" restarts the app; the role's max TTL must be well above"),
        "{}",
        w[1]
    );

    let never = warnings(&exec_pod().ann("agent-inject-env-restart", "never").build());
    assert_eq!(never.len(), 1, "{never:#?}");
    assert!(
        never[0].contains("keeps DB_PASSWORD from dynamic secret \"database/creds/orders-app\" after a new lease replaces it"),
        "{}",
        never[0]
    );

    let static_only = warnings(
        &support::pod()
            .set("/spec/containers/0/command", json!(["/app/run"]))
            .ann("agent-inject-env-API_KEY", "secret/data/app")
            .ann("agent-inject-env-restart", "never")
            .build(),
    );
    assert!(static_only.is_empty(), "{static_only:#?}");

    let both = warnings(
        &exec_pod()
            .ann("agent-inject-secret-db.env", "database/creds/orders-app")
            .ann("agent-cache-enable", "true")
            .build(),
    );
    assert!(
        both.iter()
            .any(|w| w
                .contains("is also rendered to a file, by another agent with a lease of its own")),
        "{both:#?}"
    );
}

/// The init container's script, run by a real `/bin/sh` with the volume moved into a
/// temporary directory and `vault` played by a script: the binary is copied executable for
/// everyone, the configuration decoded read-only for everyone, and a second run (the init
/// container runs again when the sandbox is recreated, the volume kept) succeeds over the
/// read-only files.
#[test]
fn the_init_script_copies_the_binary_and_writes_the_configuration_in_a_real_shell() {
    let injected = support::inject(&exec_pod().build()).unwrap();
    let init = injected.container(EXEC_INIT_NAME);
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::fs::write(bin.join("vault"), "#!/bin/sh\necho agent\n").unwrap();
    std::fs::set_permissions(bin.join("vault"), std::fs::Permissions::from_mode(0o700)).unwrap();
    let volume = dir.path().join("exec");
    std::fs::create_dir(&volume).unwrap();
    let script = init["args"][0]
        .as_str()
        .unwrap()
        .replace("/vault/exec", &volume.display().to_string());
    let config = support::env_value(init, "VAULT_CONFIG").unwrap();
    for run in 1..=2 {
        let out = Command::new("/bin/sh")
            .args(["-ec", &script])
            .env_clear()
            .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
            .env("VAULT_CONFIG", config)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "run {run}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mode = |name: &str| {
        std::fs::metadata(volume.join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("vault"), 0o555);
    assert_eq!(mode("config.json"), 0o444);
    let written = std::fs::read(volume.join("config.json")).unwrap();
    assert_eq!(
        written,
        base64::engine::general_purpose::STANDARD
            .decode(config)
            .unwrap()
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&written).unwrap(),
        exec_config(&injected)
    );
}
