//! `node-install`: the chart's injector is a Ready pod of the project's image, its webhook
//! configuration carries the CA of the certificate it made itself (the chart's default TLS
//! mode), and a pod in an opted-in namespace gets its agents, which start and log in to
//! OpenBao with the pod's service-account token.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use kube::Api;
use serde_json::json;
use vault_injector_e2e::node::*;
use vault_injector_e2e::*;

#[tokio::test]
async fn node_install() -> Result<()> {
    let client = client().await?;

    // The injector as the chart runs it.
    let injectors = wait_injectors_ready(&client, 1).await?;
    let want_image = image("IMAGE_VAULT_INJECTOR")?;
    for p in &injectors {
        let name = p.metadata.name.clone().unwrap_or_default();
        let c = &p.spec.as_ref().context("pod without spec")?.containers[0];
        ensure!(
            c.image.as_deref() == Some(want_image.as_str()),
            "injector pod {name} runs {:?}, not the image built here ({want_image})",
            c.image
        );
        ensure!(
            c.readiness_probe.is_some() && c.liveness_probe.is_some(),
            "injector pod {name} has no readiness/liveness probe: the chart's probes are part of what is tested"
        );
    }
    // The image holds the binary and its libraries only: nothing to exec a shell with.
    let first = injectors[0].metadata.name.clone().unwrap_or_default();
    let shell = exec(
        "vault",
        &first,
        "sidecar-injector",
        &["/bin/sh", "-c", "true"],
    )
    .await;
    ensure!(
        shell.is_err(),
        "the injector image has a shell: /bin/sh ran in {first}"
    );
    let webhooks: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    let cfg = webhooks.get(WEBHOOK_CONFIG).await?;
    let ca_bundle = cfg
        .webhooks
        .as_ref()
        .and_then(|w| w.first())
        .and_then(|w| w.client_config.ca_bundle.clone())
        .map(|b| b.0)
        .unwrap_or_default();
    ensure!(
        String::from_utf8_lossy(&ca_bundle).contains("BEGIN CERTIFICATE"),
        "the webhook's caBundle was not filled in by the injector (auto TLS)"
    );
    let svc = cfg
        .webhooks
        .as_ref()
        .and_then(|w| w.first())
        .and_then(|w| w.client_config.service.clone());
    ensure!(
        svc.as_ref()
            .map(|s| (s.namespace.as_str(), s.name.as_str()))
            == Some(("vault", "vault-agent-injector-svc")),
        "the API server must reach the webhook through the chart's Service, not {svc:?}"
    );

    // A pod in an opted-in namespace.
    configure_kubernetes_auth(&client).await?;
    let ns = TestNs::create_unique(&client, "node-install", true).await?;
    ns.create_service_account("app").await?;
    let greeting = format!("hello-from-openbao-{}", suffix());
    let path = format!("node-install/{}", ns.name);
    let role = format!("node-install-{}", ns.name);
    kv_secret_for(
        &role,
        &path,
        &[&format!("greeting={greeting}")],
        &ns.name,
        "app",
    )
    .await?;
    let pods = ns.pods();
    create_pod(
        &pods,
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "app", "annotations": {
                "vault.hashicorp.com/agent-inject": "true",
                "vault.hashicorp.com/role": role,
                "vault.hashicorp.com/agent-inject-secret-greeting": format!("secret/data/{path}"),
                "vault.hashicorp.com/agent-inject-template-greeting":
                    format!("{{{{ with secret \"secret/data/{path}\" }}}}{{{{ .Data.data.greeting }}}}{{{{ end }}}}"),
            }},
            "spec": {
                "serviceAccountName": "app",
                "containers": [{
                    "name": "app", "image": image("IMAGE_BUSYBOX")?, "imagePullPolicy": "IfNotPresent",
                    "command": ["/bin/sh", "-c", "cat /vault/secrets/greeting; echo; exec sleep 3600"],
                }],
            },
        }),
    )
    .await?;
    let p = pods.get("app").await?;
    ensure!(
        is_injected(&p),
        "the pod was not injected: {}",
        pod_summary(&p)
    );
    let p = wait_pod(
        &pods,
        "app",
        "running and ready",
        Duration::from_secs(180),
        running_and_ready,
    )
    .await?;
    log(format!("pod running: {}", pod_state(&p)));

    let init_log = logs(&ns.name, "app", "vault-agent-init").await;
    ensure!(
        init_log.contains("authentication successful"),
        "vault-agent-init did not log in:\n{}",
        tail(&init_log, 30)
    );
    wait_log(&ns.name, "app", "app", &greeting, Duration::from_secs(30)).await?;
    wait_log(
        &ns.name,
        "app",
        "vault-agent",
        "authentication successful",
        Duration::from_secs(60),
    )
    .await?;
    ns.delete().await;
    Ok(())
}
