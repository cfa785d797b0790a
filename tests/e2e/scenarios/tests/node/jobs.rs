//! `node-native-sidecar-job`: Jobs complete with an agent. With `agent-native-sidecar` the
//! agent is an init container with `restartPolicy: Always`: the kubelet starts the Job's
//! container only after the agent's startup probe saw the secret rendered, and stops the agent
//! when the Job's container has exited, so the Job completes. A classic-sidecar Job completes
//! with `agent-pre-populate-only` (init container only). Each Job's container fails (and the
//! Job with it, `backoffLimit: 0`) if the secret is not there when it starts.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{ListParams, PostParams};
use serde_json::json;
use vault_injector_e2e::node::*;
use vault_injector_e2e::*;

async fn run_job(
    ns: &TestNs,
    name: &str,
    role: &str,
    path: &str,
    extra: (&str, &str),
) -> Result<Pod> {
    let jobs: Api<Job> = Api::namespaced(ns.client.clone(), &ns.name);
    let job: Job = serde_json::from_value(json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": {"job": name}, "annotations": {
                    "vault.hashicorp.com/agent-inject": "true",
                    "vault.hashicorp.com/role": role,
                    "vault.hashicorp.com/agent-inject-secret-config": format!("secret/data/{path}"),
                    "vault.hashicorp.com/agent-inject-template-config":
                        format!("{{{{ with secret \"secret/data/{path}\" }}}}{{{{ .Data.data.value }}}}{{{{ end }}}}"),
                    extra.0: extra.1,
                }},
                "spec": {
                    "serviceAccountName": "app",
                    "restartPolicy": "Never",
                    "containers": [{
                        "name": "job", "image": image("IMAGE_BUSYBOX")?, "imagePullPolicy": "IfNotPresent",
                        "command": ["/bin/sh", "-c",
                            "test -s /vault/secrets/config || { echo 'no secret at start' >&2; exit 1; }; echo \"job read: $(cat /vault/secrets/config)\""],
                    }],
                },
            },
        },
    }))?;
    jobs.create(&PostParams::default(), &job)
        .await
        .with_context(|| format!("creating job {name}"))?;
    let start = Instant::now();
    let done = poll(
        &format!("job {name} to finish"),
        Duration::from_secs(240),
        || {
            let jobs = jobs.clone();
            async move {
                let j = jobs.get(name).await?;
                let conds = j.status.and_then(|s| s.conditions).unwrap_or_default();
                Ok(conds
                    .into_iter()
                    .find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True"))
            }
        },
    )
    .await?;
    let pods = ns.pods();
    let list = pods
        .list(&ListParams::default().labels(&format!("job={name}")))
        .await?;
    let pod = list
        .items
        .into_iter()
        .next()
        .with_context(|| format!("no pod of job {name}"))?;
    let pod_name = pod.metadata.name.clone().unwrap_or_default();
    let job_log = logs(&ns.name, &pod_name, "job").await;
    ensure!(
        done.type_ == "Complete",
        "job {name} did not complete ({}: {}); its container said:\n{job_log}\npod: {}",
        done.reason.unwrap_or_default(),
        done.message.unwrap_or_default(),
        pod_state(&pod)
    );
    figure(format!(
        "job {name} ({}: {}) completed in {}s",
        extra.0,
        extra.1,
        start.elapsed().as_secs()
    ));
    Ok(pod)
}

#[tokio::test]
async fn node_native_sidecar_job() -> Result<()> {
    let client = client().await?;
    configure_kubernetes_auth(&client).await?;
    let ns = TestNs::create_unique(&client, "node-jobs", true).await?;
    ns.create_service_account("app").await?;
    let path = format!("node-jobs/{}", ns.name);
    let role = format!("node-jobs-{}", ns.name);
    let value = format!("job-secret-{}", suffix());
    kv_secret_for(&role, &path, &[&format!("value={value}")], &ns.name, "app").await?;

    // Native sidecar: one agent, an init container that keeps running.
    let pod = run_job(
        &ns,
        "native",
        &role,
        &path,
        ("vault.hashicorp.com/agent-native-sidecar", "true"),
    )
    .await?;
    let agent = init_containers(&pod)
        .into_iter()
        .find(|c| c.name == "vault-agent")
        .with_context(|| format!("no native sidecar in the job's pod: {}", pod_summary(&pod)))?;
    ensure!(
        agent.restart_policy.as_deref() == Some("Always"),
        "vault-agent is not a native sidecar"
    );
    ensure!(
        container(&pod, "vault-agent-init").is_none(),
        "a native-sidecar pod needs no vault-agent-init"
    );
    let name = pod.metadata.name.clone().unwrap_or_default();
    ensure!(
        logs(&ns.name, &name, "job")
            .await
            .contains(&format!("job read: {value}")),
        "the native-sidecar job did not read the secret"
    );
    ensure!(
        logs(&ns.name, &name, "vault-agent")
            .await
            .contains("authentication successful"),
        "the native sidecar did not log in"
    );

    // Classic sidecar, pre-populate only: the init container and nothing after it.
    let pod = run_job(
        &ns,
        "prepopulate",
        &role,
        &path,
        ("vault.hashicorp.com/agent-pre-populate-only", "true"),
    )
    .await?;
    ensure!(
        container(&pod, "vault-agent-init").is_some(),
        "no vault-agent-init: {}",
        pod_summary(&pod)
    );
    ensure!(
        container(&pod, "vault-agent").is_none(),
        "pre-populate-only must add no sidecar: {}",
        pod_summary(&pod)
    );
    let name = pod.metadata.name.clone().unwrap_or_default();
    ensure!(
        logs(&ns.name, &name, "job")
            .await
            .contains(&format!("job read: {value}")),
        "the pre-populate-only job did not read the secret"
    );
    ns.delete().await;
    Ok(())
}
