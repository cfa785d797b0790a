//! `node-injector-restart`: two injector replicas behind the chart's Service, the webhook set
//! to `failurePolicy: Fail` (a pod the injector does not answer for is refused). While pods are
//! created one after another, one replica's pod is deleted (its Deployment replaces it) and
//! then the Deployment is rolled (`kubectl rollout restart`): not one creation may fail, and
//! every pod created is injected. The release is put back to one replica and `Ignore` after.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use vault_injector_e2e::node::*;
use vault_injector_e2e::*;

async fn set_release(replicas: u32, failure_policy: &str) -> Result<()> {
    let chart = env_req("E2E_CHART")?;
    helm(&[
        "upgrade",
        "vault",
        &chart,
        "--namespace",
        "vault",
        "--reuse-values",
        "--set",
        &format!("injector.replicas={replicas}"),
        "--set",
        &format!("injector.webhook.failurePolicy={failure_policy}"),
        "--wait",
        "--timeout",
        "5m",
    ])
    .await
    .map(drop)
}

/// Creates pods one after another until `stop`; returns (created, failures with their errors).
async fn create_loop(pods: Api<Pod>, stop: Arc<AtomicBool>) -> (u32, Vec<String>) {
    let mut created = 0;
    let mut failures = Vec::new();
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let pod: Pod = match serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("load-{i}"), "annotations": {
                "vault.hashicorp.com/agent-inject": "true",
                "vault.hashicorp.com/role": "load",
                "vault.hashicorp.com/agent-inject-secret-x": "secret/data/x",
            }},
            // Never scheduled: what is measured is admission, and the node's CPU stays free.
            "spec": {
                "nodeSelector": {"vault-injector-e2e/nowhere": "true"},
                "containers": [{"name": "app", "image": "localhost/none:1", "command": ["sleep", "1"]}],
            },
        })) {
            Ok(p) => p,
            Err(e) => return (created, vec![e.to_string()]),
        };
        match pods.create(&PostParams::default(), &pod).await {
            Ok(_) => created += 1,
            Err(e) => failures.push(format!("load-{i}: {}", api_error_message(&e))),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (created, failures)
}

#[tokio::test]
async fn node_injector_restart() -> Result<()> {
    let client = client().await?;
    set_release(2, "Fail").await?;
    let result = restart_under_load(&client).await;
    let restored = set_release(1, "Ignore").await;
    result?;
    restored
}

async fn restart_under_load(client: &Client) -> Result<()> {
    let before = wait_injectors_ready(client, 2).await?;
    let ns = TestNs::create_unique(client, "node-restart", true).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(create_loop(ns.pods(), stop.clone()));
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(5)).await;

    // One replica deleted: the Deployment replaces it.
    let victim = before[0]
        .metadata
        .name
        .clone()
        .context("injector pod without a name")?;
    let injectors: Api<Pod> = Api::namespaced(client.clone(), "vault");
    injectors.delete(&victim, &DeleteParams::default()).await?;
    log(format!("deleted injector pod {victim}"));
    poll(
        "the deleted injector pod to be gone and replaced",
        Duration::from_secs(180),
        || {
            let victim = victim.clone();
            async move {
                let pods = injector_pods(client).await?;
                let ready = pods.iter().filter(|p| running_and_ready(p)).count();
                let gone = pods
                    .iter()
                    .all(|p| p.metadata.name.as_deref() != Some(victim.as_str()));
                Ok((gone && ready == 2).then_some(()))
            }
        },
    )
    .await?;
    let t_replaced = t0.elapsed();

    // The whole Deployment rolled.
    kubectl(
        &[
            "-n",
            "vault",
            "rollout",
            "restart",
            "deployment/vault-agent-injector",
        ],
        None,
    )
    .await?;
    kubectl(
        &[
            "-n",
            "vault",
            "rollout",
            "status",
            "deployment/vault-agent-injector",
            "--timeout=300s",
        ],
        None,
    )
    .await?;
    wait_injectors_ready(client, 2).await?;
    let t_rolled = t0.elapsed();
    tokio::time::sleep(Duration::from_secs(5)).await;
    stop.store(true, Ordering::Relaxed);
    let (created, failures) = load.await?;

    let list = ns.pods().list(&ListParams::default()).await?;
    let not_injected: Vec<String> = list
        .items
        .iter()
        .filter(|p| !is_injected(p))
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    figure(format!(
        "injector restart: {created} pods created over {:.0}s (replica replaced at +{:.0}s, rollout done at +{:.0}s), {} failed, {} not injected",
        t0.elapsed().as_secs_f64(),
        t_replaced.as_secs_f64(),
        t_rolled.as_secs_f64(),
        failures.len(),
        not_injected.len()
    ));
    ensure!(
        failures.is_empty(),
        "pod creations failed while the injector restarted:\n{}",
        failures.join("\n")
    );
    ensure!(
        created > 20,
        "only {created} pods were created: the load did not cover the restarts"
    );
    ensure!(
        not_injected.is_empty(),
        "pods created without injection: {not_injected:?}"
    );
    ns.delete().await;
    Ok(())
}
