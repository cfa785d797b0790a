//! Controlling the injector under test: its metrics, stopping and starting it (with extra
//! settings for the beyond-upstream scenarios), its webhook's failurePolicy, and extra RBAC for
//! its service account.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};

use crate::harness::{env, env_req, log, poll};

pub const WEBHOOK_CONFIG: &str = "vault-agent-injector-cfg";

pub async fn metrics_text() -> Result<String> {
    let url = env_req("E2E_INJECTOR_METRICS_URL")?;
    let mut cmd = tokio::process::Command::new("curl");
    cmd.args(["-fsS", "--max-time", "10"]);
    if let Some(ca) = env("E2E_INJECTOR_CA_FILE") {
        cmd.arg("--cacert").arg(ca);
    } else {
        cmd.arg("-k");
    }
    let out = cmd.arg(&url).output().await.context("running curl")?;
    ensure!(
        out.status.success(),
        "GET {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

/// Sum of the samples of `name` whose labels include all of `labels` (0 when absent).
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let mut total = 0.0;
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let (series, value) = match line.rsplit_once(' ') {
            Some(x) => x,
            None => continue,
        };
        let (n, l) = match series.find('{') {
            Some(i) => (&series[..i], &series[i..]),
            None => (series, ""),
        };
        if n != name {
            continue;
        }
        if labels
            .iter()
            .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        {
            total += value.trim().parse::<f64>().unwrap_or(0.0);
        }
    }
    total
}

/// Number of /mutate requests the injector has handled (the duration histogram's count).
pub async fn injector_request_count() -> Result<f64> {
    let text = metrics_text().await?;
    ensure!(
        text.contains("vault_agent_injector_request_processing_duration_ms"),
        "the injector's metrics have no vault_agent_injector_request_processing_duration_ms:\n{text}"
    );
    Ok(metric(
        &text,
        "vault_agent_injector_request_processing_duration_ms_count",
        &[],
    ))
}

pub async fn run_shell(cmd: &str) -> Result<()> {
    log(format!("running: {cmd}"));
    let st = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .status()
        .await?;
    ensure!(st.success(), "`{cmd}` failed: {st}");
    Ok(())
}

pub async fn stop_injector(client: &Client) -> Result<()> {
    if let Some(cmd) = env("E2E_INJECTOR_STOP_CMD") {
        return run_shell(&cmd).await;
    }
    scale_injector(client, 0).await
}

pub async fn start_injector(client: &Client) -> Result<()> {
    if let Some(cmd) = env("E2E_INJECTOR_START_CMD") {
        return run_shell(&cmd).await;
    }
    scale_injector(client, 1).await
}

/// Without a stop/start command (kind), the injector Deployment from webhook-config/ is scaled.
async fn scale_injector(client: &Client, replicas: i32) -> Result<()> {
    let ns = env("E2E_INJECTOR_NAMESPACE").unwrap_or_else(|| "vault".into());
    let name = env("E2E_INJECTOR_DEPLOYMENT").unwrap_or_else(|| "vault-agent-injector".into());
    let api: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    api.patch(
        &name,
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": replicas}})),
    )
    .await?;
    poll(
        &format!("deployment {ns}/{name} at {replicas} ready replicas"),
        Duration::from_secs(120),
        || {
            let api = api.clone();
            let name = name.clone();
            async move {
                let d = api.get(&name).await?;
                let st = d.status.unwrap_or_default();
                let ready = st.ready_replicas.unwrap_or(0);
                let total = st.replicas.unwrap_or(0);
                Ok((ready == replicas && total == replicas).then_some(()))
            }
        },
    )
    .await
}

pub async fn set_failure_policy(client: &Client, policy: &str) -> Result<()> {
    let api: Api<k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration> =
        Api::all(client.clone());
    // strategic merge: webhooks are merged by name
    let patch = json!({"webhooks": [{"name": "vault.hashicorp.com", "failurePolicy": policy}]});
    api.patch(
        WEBHOOK_CONFIG,
        &PatchParams::default(),
        &Patch::Strategic(patch),
    )
    .await?;
    log(format!("webhook {WEBHOOK_CONFIG}: failurePolicy {policy}"));
    Ok(())
}

/// Start the injector with extra `AGENT_INJECT_*` settings for this run only (the local
/// harness: `E2E_INJECTOR_START_CMD` reads `E2E_INJECTOR_EXTRA_ENV`). `start_injector` later
/// starts it with its normal settings again.
pub async fn start_injector_with_env(env: &[(&str, &str)]) -> Result<()> {
    let cmd = env_req("E2E_INJECTOR_START_CMD")?;
    let words: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    ensure!(
        words.iter().all(|w| !w.contains([' ', '\'', '"'])),
        "settings must be single shell words: {words:?}"
    );
    run_shell(&format!(
        "E2E_INJECTOR_EXTRA_ENV='{}' {cmd}",
        words.join(" ")
    ))
    .await
}

/// Stop the injector and start it again with extra settings.
pub async fn restart_injector_with_env(client: &Client, env: &[(&str, &str)]) -> Result<()> {
    stop_injector(client).await?;
    start_injector_with_env(env).await
}

/// Stop the injector and start it again with its normal settings.
pub async fn restart_injector(client: &Client) -> Result<()> {
    stop_injector(client).await?;
    start_injector(client).await
}

/// Grant the injector's service account (`vault/vault-agent-injector`, or
/// `E2E_INJECTOR_NAMESPACE`/`E2E_INJECTOR_SERVICE_ACCOUNT`) a ClusterRole `name` with `rules`,
/// bound by a ClusterRoleBinding of the same name (both replaced when they exist).
pub async fn grant_injector_cluster_role(client: &Client, name: &str, rules: Value) -> Result<()> {
    use k8s_openapi::api::rbac::v1::ClusterRole;
    let ns = env("E2E_INJECTOR_NAMESPACE").unwrap_or_else(|| "vault".into());
    let sa = env("E2E_INJECTOR_SERVICE_ACCOUNT").unwrap_or_else(|| "vault-agent-injector".into());
    revoke_injector_cluster_role(client, name).await?;
    let role: ClusterRole = serde_json::from_value(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/part-of": "vault-injector-e2e"}},
        "rules": rules,
    }))?;
    Api::<ClusterRole>::all(client.clone())
        .create(&PostParams::default(), &role)
        .await
        .with_context(|| format!("creating ClusterRole {name}"))?;
    let binding: ClusterRoleBinding = serde_json::from_value(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/part-of": "vault-injector-e2e"}},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": ns}],
    }))?;
    Api::<ClusterRoleBinding>::all(client.clone())
        .create(&PostParams::default(), &binding)
        .await
        .with_context(|| format!("creating ClusterRoleBinding {name}"))?;
    log(format!(
        "granted ClusterRole {name} to serviceaccount {ns}/{sa}"
    ));
    Ok(())
}

/// Delete the ClusterRole and ClusterRoleBinding `name` (absent is fine).
pub async fn revoke_injector_cluster_role(client: &Client, name: &str) -> Result<()> {
    use k8s_openapi::api::rbac::v1::ClusterRole;
    for result in [
        Api::<ClusterRoleBinding>::all(client.clone())
            .delete(name, &DeleteParams::default())
            .await
            .map(|_| ()),
        Api::<ClusterRole>::all(client.clone())
            .delete(name, &DeleteParams::default())
            .await
            .map(|_| ()),
    ] {
        match result {
            Ok(()) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_metric_samples() {
        let t = "# HELP x\nvault_agent_injector_injections_by_namespace_total{injection_type=\"init_and_sidecar\",namespace=\"a\"} 2\nvault_agent_injector_injections_by_namespace_total{injection_type=\"init_only\",namespace=\"b\"} 1\nvault_agent_injector_request_processing_duration_ms_count 7\n";
        assert_eq!(
            metric(
                t,
                "vault_agent_injector_injections_by_namespace_total",
                &[("namespace", "a")]
            ),
            2.0
        );
        assert_eq!(
            metric(t, "vault_agent_injector_injections_by_namespace_total", &[]),
            3.0
        );
        assert_eq!(
            metric(
                t,
                "vault_agent_injector_request_processing_duration_ms_count",
                &[]
            ),
            7.0
        );
    }
}
