//! `vault-injector lint` and the admission warnings it reports, over real manifests.
#![allow(clippy::unwrap_used)]

mod support;

use std::process::Command;

use vault_injector::lint::{Severity, lint};

const WORKLOADS: &str = include_str!("lint/workloads.yaml");

#[test]
fn lint_renders_every_workload_template_and_reports_by_object() {
    let report = lint(WORKLOADS, "workloads.yaml", None, &support::defaults()).unwrap();
    assert_eq!(report.checked, 4, "{report:#?}");
    let lines: Vec<String> = report.findings.iter().map(ToString::to_string).collect();
    assert_eq!(lines.len(), 3, "{lines:#?}");
    assert!(lines[0].starts_with("workloads.yaml#2: CronJob/nightly-report: warning: vault.hashicorp.com/agent-pre-populate-only: "), "{}", lines[0]);
    assert!(
        lines[1].starts_with(
            "workloads.yaml#3: StatefulSet/cache: error: error creating patch for agent: "
        ),
        "{}",
        lines[1]
    );
    assert!(lines[1].contains("vault.hashicorp.com/agent-limits-mem"));
    assert!(lines[2].starts_with("workloads.yaml#5: Job/migrate: error: error creating new agent sidecar: failed to find service account volume mount"), "{}", lines[2]);
    assert_eq!(
        report
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count(),
        2
    );
}

#[test]
fn a_well_configured_dynamic_secret_gets_no_warning() {
    let first = WORKLOADS.split("\n---\n").next().unwrap();
    let report = lint(first, "app.yaml", None, &support::defaults()).unwrap();
    assert_eq!(report.checked, 1);
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
}

#[test]
fn warnings_cover_the_dynamic_secret_failure_modes() {
    let base = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations:\n    vault.hashicorp.com/agent-inject: \"true\"\n    vault.hashicorp.com/role: r\n";
    let warn = |extra: &str| -> Vec<String> {
        let doc = format!("{base}{extra}spec:\n  containers: [{{name: app, image: x}}]\n");
        lint(&doc, "p.yaml", None, &support::defaults())
            .unwrap()
            .findings
            .into_iter()
            .map(|f| f.message)
            .collect()
    };
    let dynamic = "    vault.hashicorp.com/agent-inject-secret-db: database/creds/app\n";
    let w = warn(dynamic);
    assert_eq!(w.len(), 2, "{w:#?}");
    assert!(w[0].starts_with("vault.hashicorp.com/agent-inject-command-db: "));
    assert!(w[1].starts_with("vault.hashicorp.com/agent-cache-enable: "));
    let w = warn(&format!(
        "{dynamic}    vault.hashicorp.com/agent-share-process-namespace: \"true\"\n    vault.hashicorp.com/agent-cache-enable: \"true\"\n"
    ));
    assert!(w.is_empty(), "{w:#?}");
    // one agent only (native sidecar): no init-versus-sidecar lease warning
    let w = warn(&format!(
        "{dynamic}    vault.hashicorp.com/agent-native-sidecar: \"true\"\n"
    ));
    assert_eq!(w.len(), 1, "{w:#?}");
    assert!(w[0].starts_with("vault.hashicorp.com/agent-inject-command-db: "));
    let w = warn(
        "    vault.hashicorp.com/agent-inject-template-db: '{{ with secret \"aws/creds/deploy\" }}{{ end }}'\n    vault.hashicorp.com/agent-inject-command-db: reload\n    vault.hashicorp.com/agent-cache-enable: \"true\"\n",
    );
    assert!(w.is_empty(), "{w:#?}");
    let w = warn(
        "    vault.hashicorp.com/agent-inject-secret-kv: secret/data/app\n    vault.hashicorp.com/tls-skip-verify: \"true\"\n    vault.hashicorp.com/agent-run-as-user: \"0\"\n",
    );
    assert_eq!(w.len(), 2, "{w:#?}");
    assert!(w[0].starts_with("vault.hashicorp.com/tls-skip-verify: "));
    assert!(w[1].starts_with("vault.hashicorp.com/agent-run-as-user: "));
    for line in warn(dynamic) {
        assert!(line.len() <= 200, "{line}");
    }
}

#[test]
fn lint_command_exits_by_severity() {
    let bin = env!("CARGO_BIN_EXE_vault-injector");
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/lint/workloads.yaml");
    let out = Command::new(bin)
        .args(["lint", "-f", file])
        .env("AGENT_INJECT_VAULT_ADDR", "http://vault:8200")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "errors fail the run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), 3, "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("4 pod templates checked, 2 errors, 1 warning"),
        "{stderr}"
    );

    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/pod.yaml");
    let ok = Command::new(bin)
        .args(["lint", example])
        .env("AGENT_INJECT_VAULT_ADDR", "http://vault:8200")
        .output()
        .unwrap();
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let strict = Command::new(bin)
        .args(["lint", "--strict", example])
        .env("AGENT_INJECT_VAULT_ADDR", "http://vault:8200")
        .output()
        .unwrap();
    assert_eq!(
        strict.status.code(),
        Some(1),
        "warnings fail with --strict: {}",
        String::from_utf8_lossy(&strict.stdout)
    );
}
