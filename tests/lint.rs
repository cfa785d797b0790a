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
    // Sharing the process namespace reloads nothing by itself: the command is still missing.
    let w = warn(&format!(
        "{dynamic}    vault.hashicorp.com/agent-share-process-namespace: \"true\"\n    vault.hashicorp.com/agent-cache-enable: \"true\"\n"
    ));
    assert_eq!(w.len(), 1, "{w:#?}");
    assert!(w[0].starts_with("vault.hashicorp.com/agent-inject-command-db: "));
    assert!(w[0].contains("no command to signal the app"));
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

/// The findings of one Pod with these extra annotation lines and spec lines.
fn pod_findings(annotations: &str, spec: &str) -> Vec<String> {
    let doc = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations:\n    vault.hashicorp.com/agent-inject: \"true\"\n    vault.hashicorp.com/role: r\n    vault.hashicorp.com/agent-inject-secret-kv: secret/data/app\n{annotations}spec:\n{spec}  containers: [{{name: app, image: x}}]\n"
    );
    lint(&doc, "p.yaml", None, &support::defaults())
        .unwrap()
        .findings
        .into_iter()
        .map(|f| f.message)
        .collect()
}

#[test]
fn a_command_that_signals_a_pid_needs_a_shared_process_namespace() {
    let kill = "    vault.hashicorp.com/agent-inject-command-kv: kill -HUP 1\n";
    let w = pod_findings(kill, "");
    assert_eq!(w.len(), 1, "{w:#?}");
    assert!(
        w[0].starts_with(
            "vault.hashicorp.com/agent-inject-command-kv: the command signals a process"
        ),
        "{}",
        w[0]
    );
    assert!(w[0].contains("vault.hashicorp.com/agent-share-process-namespace"));
    // Shared by the annotation, or by the pod itself: nothing to say.
    let shared = "    vault.hashicorp.com/agent-share-process-namespace: \"true\"\n";
    assert!(pod_findings(&format!("{kill}{shared}"), "").is_empty());
    assert!(pod_findings(kill, "  shareProcessNamespace: true\n").is_empty());
    // The annotation is applied with the init container only: sidecar-only pods do not share.
    let sidecar_only = "    vault.hashicorp.com/agent-pre-populate: \"false\"\n";
    assert_eq!(
        pod_findings(&format!("{kill}{shared}{sidecar_only}"), "").len(),
        1
    );
    // pkill and killall find nothing of the app either; other commands are fine.
    assert_eq!(
        pod_findings(
            "    vault.hashicorp.com/agent-inject-command-kv: pkill -HUP app\n",
            ""
        )
        .len(),
        1
    );
    assert!(
        pod_findings(
            "    vault.hashicorp.com/agent-inject-command-kv: touch /tmp/reload\n",
            ""
        )
        .is_empty()
    );
}

#[test]
fn jobs_and_cronjobs_with_a_classic_sidecar_are_warned() {
    let workload = |kind: &str, extra: &str| -> Vec<String> {
        let template = format!(
            "    template:\n      metadata:\n        annotations:\n          vault.hashicorp.com/agent-inject: \"true\"\n          vault.hashicorp.com/role: r\n          vault.hashicorp.com/agent-inject-secret-kv: secret/data/app\n{extra}      spec:\n        restartPolicy: Never\n        containers: [{{name: app, image: x}}]\n"
        );
        let doc = match kind {
            "CronJob" => format!(
                "apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: w\nspec:\n  schedule: \"@daily\"\n  jobTemplate:\n    spec:\n{}",
                template.replace("\n    ", "\n        ").replacen(
                    "    template",
                    "      template",
                    1
                )
            ),
            _ => format!(
                "apiVersion: batch/v1\nkind: {kind}\nmetadata:\n  name: w\nspec:\n{template}"
            ),
        };
        let report = lint(&doc, "w.yaml", None, &support::defaults()).unwrap();
        assert_eq!(report.checked, 1, "{kind}: {doc}");
        report.findings.into_iter().map(|f| f.message).collect()
    };
    for kind in ["Job", "CronJob"] {
        let w = workload(kind, "");
        assert_eq!(w.len(), 1, "{kind}: {w:#?}");
        assert!(
            w[0].starts_with("vault.hashicorp.com/agent-pre-populate-only: the vault-agent sidecar never exits, so the Job never completes"),
            "{}",
            w[0]
        );
        assert!(w[0].contains("vault.hashicorp.com/agent-native-sidecar"));
        // Renamed, it is still a sidecar.
        let renamed = "          vault.hashicorp.com/agent-json-patch: '[{\"op\":\"replace\",\"path\":\"/name\",\"value\":\"x\"}]'\n";
        assert_eq!(workload(kind, renamed).len(), 1, "{kind}");
        for fix in [
            "          vault.hashicorp.com/agent-pre-populate-only: \"true\"\n",
            "          vault.hashicorp.com/agent-native-sidecar: \"true\"\n",
        ] {
            let w = workload(kind, fix);
            assert!(w.is_empty(), "{kind} {fix}: {w:#?}");
        }
    }
    assert!(workload("Deployment", "").is_empty());
}
