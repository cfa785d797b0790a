//! The `render` interface, run as a real process: input forms, outputs and exit codes.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_vault-injector");

fn run(args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd.env_clear();
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn example() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/pod.yaml")).unwrap()
}

const ADDR: (&str, &str) = ("AGENT_INJECT_VAULT_ADDR", "http://vault.vault.svc:8200");

#[test]
fn render_prints_the_mutated_pod_by_default() {
    let out = run(
        &[
            "render",
            "-f",
            concat!(env!("CARGO_MANIFEST_DIR"), "/examples/pod.yaml"),
        ],
        "",
        &[ADDR],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pod: Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<_> = pod["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].clone())
        .collect();
    assert_eq!(names, ["app", "vault-agent"]);
    assert_eq!(pod["spec"]["initContainers"][0]["name"], "vault-agent-init");
}

#[test]
fn render_reads_stdin_and_prints_the_patch_or_the_review() {
    let out = run(&["render", "--output", "patch"], &example(), &[ADDR]);
    assert_eq!(out.status.code(), Some(0));
    let ops: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        ops.last().unwrap()["path"],
        "/metadata/annotations/vault.hashicorp.com~1agent-inject-status"
    );
    let out = run(
        &["render", "--output", "review", "--namespace", "orders"],
        &example(),
        &[ADDR],
    );
    let review: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(review["response"]["allowed"], true);
    assert_eq!(review["response"]["patchType"], "JSONPatch");
}

#[test]
fn render_accepts_a_whole_admission_review_as_json() {
    let pod: Value = serde_yaml_ng::from_str(&example()).unwrap();
    let review = support::review(pod)
        .api_version("admission.k8s.io/v1beta1")
        .uid("abc")
        .namespace("orders")
        .bare()
        .into_json();
    let out = run(&["render", "-o", "review"], &review, &[ADDR]);
    assert_eq!(out.status.code(), Some(0));
    let reply: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reply["apiVersion"], "admission.k8s.io/v1beta1");
    assert_eq!(reply["response"]["uid"], "abc");
}

#[test]
fn a_pod_not_to_be_injected_prints_unchanged_and_an_empty_patch() {
    let plain = example().replace(
        "vault.hashicorp.com/agent-inject:",
        "example.com/not-inject:",
    );
    let out = run(&["render"], &plain, &[ADDR]);
    assert_eq!(out.status.code(), Some(0));
    let pod: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(pod, serde_yaml_ng::from_str::<Value>(&plain).unwrap());
    let out = run(&["render", "--output", "patch"], &plain, &[ADDR]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
}

#[test]
fn a_refused_pod_exits_1_with_the_message_on_stderr() {
    let bad = example().replace(
        "vault.hashicorp.com/agent-inject-perms-db.env: \"0440\"",
        "vault.hashicorp.com/agent-limits-mem: \"128mb\"",
    );
    let out = run(&["render"], &bad, &[ADDR]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("error creating patch for agent: ") && err.contains("agent-limits-mem"),
        "{err}"
    );
}

#[test]
fn unreadable_input_exits_2_saying_what_and_where() {
    let out = run(&["render"], "{\"kind\": \"Pod\",", &[ADDR]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("<stdin>: not valid JSON: ") && err.contains("line 1"),
        "{err}"
    );
    let out = run(&["render"], "metadata: [unclosed", &[ADDR]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not valid YAML"));
    let out = run(&["render", "-f", "/nonexistent/pod.yaml"], "", &[ADDR]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/pod.yaml: cannot read"));
    let out = run(&["render"], "kind: Service\nmetadata: {}\n", &[ADDR]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn render_honours_the_same_settings_as_serve() {
    let out = run(
        &["render", "-vault-image=my/vault:9"],
        &example(),
        &[ADDR, ("AGENT_INJECT_CPU_LIMIT", "2")],
    );
    let pod: Value = serde_json::from_slice(&out.stdout).unwrap();
    let sidecar = &pod["spec"]["containers"][1];
    assert_eq!(sidecar["image"], "my/vault:9");
    assert_eq!(sidecar["resources"]["limits"]["cpu"], "2");
    // Without an address: upstream's startup message, as a usage error.
    let out = run(&["render"], &example(), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "No Vault service configured"
    );
}

/// The short commit of this checkout, when the tests run in one (as `build.rs` finds it).
fn checkout_commit() -> Option<String> {
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .arg("-C")
            .arg(env!("CARGO_MANIFEST_DIR"))
            .args(args)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    let top = std::fs::canonicalize(git(&["rev-parse", "--show-toplevel"])?).ok()?;
    (top == std::fs::canonicalize(env!("CARGO_MANIFEST_DIR")).ok()?)
        .then(|| git(&["rev-parse", "--short", "HEAD"]))
        .flatten()
}

#[test]
fn version_prints_the_version_the_commit_and_the_upstream_it_replaces() {
    let out = run(&["version"], "", &[]);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stderr.is_empty());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    let commit = lines[0]
        .strip_prefix(concat!(
            "vault-injector ",
            env!("CARGO_PKG_VERSION"),
            " (commit "
        ))
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("first line: {text}"));
    match checkout_commit() {
        Some(expected) => assert_eq!(commit, expected),
        None => assert!(
            commit == "unknown" || commit.chars().all(|c| c.is_ascii_alphanumeric()),
            "{commit}"
        ),
    }
    assert_eq!(lines[1], "compatible with vault-k8s v1.7.6");
    // The version is semver, as the chart's version and the image tag are.
    let parts: Vec<&str> = env!("CARGO_PKG_VERSION").split('.').collect();
    assert_eq!(parts.len(), 3);
    assert!(parts.iter().all(|p| p.parse::<u64>().is_ok()));
    // `--version` stays clap's one line, on stdout, exit 0.
    let out = run(&["--version"], "", &[]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        concat!("vault-injector ", env!("CARGO_PKG_VERSION"), "\n")
    );
}

#[test]
fn version_and_help_exit_0_and_usage_errors_exit_2_for_every_subcommand() {
    for sub in [
        "serve",
        "agent-inject",
        "render",
        "lint",
        "gen-certs",
        "version",
    ] {
        let out = run(&[sub, "--help"], "", &[]);
        assert_eq!(out.status.code(), Some(0), "{sub} --help");
        let out = run(&[sub, "-bogus=1"], "", &[ADDR]);
        assert_eq!(out.status.code(), Some(2), "{sub} -bogus=1");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("unexpected argument '--bogus'"),
            "{sub}: {err}"
        );
    }
    // Settings that fail validation, a missing required flag, a surplus argument.
    for args in [
        &["serve", "-log-level=loud"][..],
        &["render", "-f", "x.yaml", "-default-template=xml"],
        &["lint", "-log-level=loud"],
        &["gen-certs"],
        &["render", "a.yaml", "b.yaml"],
    ] {
        let out = run(args, "", &[ADDR]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // render needs a Vault address, as upstream's serve does.
    let out = run(&["render"], &example(), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("No Vault service configured"));
}

#[test]
fn lint_needs_no_vault_address_and_reads_flags_after_its_files() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/pod.yaml");
    let out = run(&["lint", example], "", &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&["lint", example, "--strict"], "", &[]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "--strict after the file is a flag"
    );
    let help = run(&["lint", "--help"], "", &[]);
    assert!(String::from_utf8_lossy(&help.stdout).contains("[FILE]..."));
    let help = run(&["render", "--help"], "", &[]);
    assert!(String::from_utf8_lossy(&help.stdout).contains("[FILE]"));
}

#[test]
fn serve_with_auto_tls_outside_a_cluster_fails_with_a_clear_message() {
    // Auto-TLS needs the Kubernetes API: with neither the in-cluster variables nor a
    // kubeconfig, startup stops with upstream's message.
    let out = run(
        &["agent-inject", "2>&1"],
        "",
        &[
            ADDR,
            ("AGENT_INJECT_TLS_AUTO", "vault-agent-injector-cfg"),
            ("KUBECONFIG", "/nonexistent/kubeconfig"),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Error loading in-cluster K8S config"), "{err}");
}

#[test]
fn gen_certs_writes_a_ca_and_a_serving_pair_that_loads() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("dev");
    let out = run(
        &[
            "gen-certs",
            "-hosts",
            "vault-agent-injector-svc.vault.svc,127.0.0.1",
            "--out-dir",
            out_dir.to_str().unwrap(),
        ],
        "",
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let ca = std::fs::read_to_string(out_dir.join("ca.crt")).unwrap();
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"), "{ca}");
    // The pair is what `serve` loads in disk mode.
    vault_injector::tls::CertFiles::new(out_dir.join("tls.crt"), out_dir.join("tls.key"))
        .load()
        .unwrap();
}

/// A pod as users write it: no token volume, no mounts.
const BARE_POD: &str = "apiVersion: v1
kind: Pod
metadata:
  name: bare
  annotations:
    vault.hashicorp.com/agent-inject: \"true\"
    vault.hashicorp.com/role: app
spec:
  initContainers:
    - name: setup
      image: example/setup:1
  containers:
    - name: app
      image: example/app:1
";

#[test]
fn render_adds_the_token_volume_the_api_server_adds_before_the_webhook() {
    let out = run(&["render"], BARE_POD, &[ADDR]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pod: Value = serde_json::from_slice(&out.stdout).unwrap();
    let volume = &pod["spec"]["volumes"][0];
    assert_eq!(volume["name"], "kube-api-access-00000");
    assert_eq!(
        volume["projected"]["sources"][0]["serviceAccountToken"]["path"],
        "token"
    );
    assert_eq!(pod["spec"]["serviceAccountName"], "default");
    let sa_mount = |c: &Value| {
        c["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["mountPath"] == "/var/run/secrets/kubernetes.io/serviceaccount")
    };
    for list in ["initContainers", "containers"] {
        for c in pod["spec"][list].as_array().unwrap() {
            assert!(sa_mount(c), "{list} {}", c["name"]);
        }
    }

    // Read from a cluster, the pod is taken as it is: here it has no token mount to log in with.
    let out = run(&["render", "--from-cluster"], BARE_POD, &[ADDR]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("failed to find service account volume mount"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A pod that opts out of the token gets none, as in a cluster.
    let opted_out = BARE_POD.replace("spec:\n", "spec:\n  automountServiceAccountToken: false\n");
    let out = run(&["render"], &opted_out, &[ADDR]);
    assert_eq!(out.status.code(), Some(1));
}

/// Secrets as environment variables, offline: the rendered pod runs the copied agent in the
/// wrapped container, and the exec agent's configuration (base64 in `vault-agent-exec-init`'s
/// `VAULT_CONFIG`, as the classic agents carry theirs) starts the container's own command line
/// with the variables.
#[test]
fn render_shows_the_wrapped_container_and_the_exec_agent_configuration() {
    use base64::Engine as _;
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/24-env-exec-openbao.yaml"
    );
    let out = run(&["render", "-f", fixture], "", &[ADDR]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pod: Value = serde_json::from_slice(&out.stdout).unwrap();
    let worker = support::find_container(&pod, "worker").unwrap();
    assert_eq!(
        worker["command"],
        serde_json::json!([
            "/vault/exec/bao",
            "agent",
            "-config=/vault/exec/config.json"
        ])
    );
    let init = support::find_container(&pod, "vault-agent-exec-init").unwrap();
    let config: Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(support::env_value(init, "VAULT_CONFIG").unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        config["exec"],
        serde_json::json!({
            "command": ["/opt/billing/bin/worker", "--queue", "invoices"],
            "restart_on_secret_changes": "never",
            "restart_stop_signal": "SIGTERM"
        })
    );
    assert_eq!(
        config["env_template"]["STRIPE_KEY"]["contents"],
        r#"{{ with secret "secret/data/billing/stripe" }}{{ .Data.data.key }}{{ end }}"#
    );

    let patch = run(&["render", "-f", fixture, "--output", "patch"], "", &[ADDR]);
    let ops: Value = serde_json::from_slice(&patch.stdout).unwrap();
    let paths: Vec<&str> = ops
        .as_array()
        .unwrap()
        .iter()
        .map(|op| op["path"].as_str().unwrap())
        .collect();
    assert!(paths.contains(&"/spec/containers/1/command"), "{paths:?}");
    assert!(paths.contains(&"/spec/containers/1/args"), "{paths:?}");

    // A pod the injector must refuse says why, naming the annotation.
    let refused = std::fs::read_to_string(fixture).unwrap().replace(
        "openbao.org/agent-inject-env-restart: \"never\"",
        "openbao.org/agent-inject-env-restart: \"sometimes\"",
    );
    let out = run(&["render"], &refused, &[ADDR]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("invalid restart policy \"sometimes\" (annotation vault.hashicorp.com/agent-inject-env-restart"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The example manifest lints clean of errors, with the restart warnings.
#[test]
fn lint_warns_about_restarts_in_the_env_example() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/orders-app-env.yaml");
    let out = run(&["lint", example], "", &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Deployment/orders-app: warning: vault.hashicorp.com/agent-inject-env-restart: a changed secret restarts the process of container \"app\""),
        "{stdout}"
    );
    assert!(
        stdout.contains("agent-inject-env-DB_PASSWORD: every new lease of dynamic secret \"database/creds/orders-app\" restarts the app"),
        "{stdout}"
    );
}
