//! Through a real kube-apiserver and kubectl: the injector's admission warnings
//! (AdmissionResponse `warnings`) reach the user as kubectl's `Warning:` lines, and never block
//! the pod. Run with `tests/e2e/run.sh beyond_warnings`.

use anyhow::{Context, Result, ensure};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use serde_json::{Value, json};
use vault_injector_e2e::*;

/// `kubectl create -f -` of `pod` in `ns`: (the created pod's name, kubectl's stderr).
async fn kubectl_create(ns: &str, pod: &Value) -> Result<(String, String)> {
    use tokio::io::AsyncWriteExt as _;
    let kubectl = env_req("E2E_KUBECTL")?;
    let mut child = tokio::process::Command::new(&kubectl)
        .args(["-n", ns, "create", "-f", "-", "-o", "name"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("running {kubectl}"))?;
    let mut stdin = child.stdin.take().context("kubectl stdin")?;
    stdin.write_all(pod.to_string().as_bytes()).await?;
    drop(stdin);
    let out = child.wait_with_output().await?;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    ensure!(out.status.success(), "kubectl create failed: {stderr}");
    Ok((
        String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        stderr,
    ))
}

fn manifest(name: &str, annotations: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"containers": [{"name": "app", "image": "registry.example/app:1.0"}]},
    })
}

#[tokio::test]
async fn w1_dynamic_secret_failure_modes_are_shown_by_kubectl_and_do_not_block() -> Result<()> {
    let client = client().await?;
    let ns = TestNs::create_unique(&client, "e2e-warn", true).await?;
    // A leased secret, no command to signal the app, init and sidecar without the cache.
    let risky = manifest(
        "risky",
        json!({
            "vault.hashicorp.com/agent-inject": "true",
            "vault.hashicorp.com/role": "web",
            "vault.hashicorp.com/agent-inject-secret-db": "database/creds/web",
        }),
    );
    let (name, stderr) = kubectl_create(&ns.name, &risky).await?;
    log(format!("kubectl created {name}; stderr:\n{stderr}"));
    let warnings: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("Warning: "))
        .collect();
    ensure!(
        warnings.len() == 2,
        "expected 2 warnings, kubectl printed: {stderr}"
    );
    ensure!(
        warnings[0].starts_with("vault.hashicorp.com/agent-inject-command-db: "),
        "{}",
        warnings[0]
    );
    ensure!(
        warnings[1].starts_with("vault.hashicorp.com/agent-cache-enable: "),
        "{}",
        warnings[1]
    );
    // warnings never block: the pod exists and is injected
    let pods: Api<Pod> = ns.pods();
    let p = pods.get("risky").await?;
    ensure!(
        is_injected(&p),
        "warned pod not injected: {}",
        pod_summary(&p)
    );

    // The same secret with a command (which signals the app, so the pod shares its process
    // namespace) and the cache: no warning at all.
    let careful = manifest(
        "careful",
        json!({
            "vault.hashicorp.com/agent-inject": "true",
            "vault.hashicorp.com/role": "web",
            "vault.hashicorp.com/agent-inject-secret-db": "database/creds/web",
            "vault.hashicorp.com/agent-inject-command-db": "pkill -HUP app",
            "vault.hashicorp.com/agent-share-process-namespace": "true",
            "vault.hashicorp.com/agent-cache-enable": "true",
        }),
    );
    let (_, stderr) = kubectl_create(&ns.name, &careful).await?;
    ensure!(
        !stderr.contains("Warning:"),
        "a well-configured pod got warnings: {stderr}"
    );
    ns.delete().await;
    Ok(())
}
