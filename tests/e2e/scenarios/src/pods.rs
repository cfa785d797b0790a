//! Pods and Deployments to create, and reading what the injector made of them.

use anyhow::{Context, Result};
use base64::Engine as _;
use k8s_openapi::api::core::v1::{Container, Pod};
use serde_json::{Value, json};

pub const AGENT_ARGS: &str = "echo ${VAULT_CONFIG?} | base64 -d > /home/vault/config.json && vault agent -config=/home/vault/config.json";

/// A Deployment with one container that would sleep (no kubelet runs it) and the annotations.
pub fn deployment(name: &str, service_account: &str, annotations: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}, "annotations": annotations},
                "spec": {
                    "serviceAccountName": service_account,
                    "containers": [{
                        "name": "app",
                        "image": "registry.example/orders-app:1.0",
                        "command": ["sh", "-c", "while true; do sleep 3600; done"],
                    }],
                },
            },
        },
    })
}

pub fn pod(name: &str, annotations: Value) -> Result<Pod> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}, "annotations": annotations},
        "spec": {"containers": [{
            "name": "app", "image": "registry.example/app:1.0",
            "command": ["sh", "-c", "sleep 3600"],
        }]},
    }))?)
}

pub fn init_containers(p: &Pod) -> Vec<&Container> {
    p.spec
        .as_ref()
        .and_then(|s| s.init_containers.as_ref())
        .map(|v| v.iter().collect())
        .unwrap_or_default()
}

pub fn containers(p: &Pod) -> Vec<&Container> {
    p.spec
        .as_ref()
        .map(|s| s.containers.iter().collect())
        .unwrap_or_default()
}

pub fn container<'a>(p: &'a Pod, name: &str) -> Option<&'a Container> {
    init_containers(p)
        .into_iter()
        .chain(containers(p))
        .find(|c| c.name == name)
}

pub fn annotation<'a>(p: &'a Pod, key: &str) -> Option<&'a str> {
    p.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}

pub fn is_injected(p: &Pod) -> bool {
    container(p, "vault-agent-init").is_some()
        || container(p, "vault-agent").is_some()
        || annotation(p, "vault.hashicorp.com/agent-inject-status").is_some()
}

/// The agent configuration of an injected agent container (base64 JSON in VAULT_CONFIG).
pub fn agent_config(c: &Container) -> Result<Value> {
    let v = c
        .env
        .as_ref()
        .and_then(|e| e.iter().find(|e| e.name == "VAULT_CONFIG"))
        .and_then(|e| e.value.clone())
        .with_context(|| format!("container {} has no VAULT_CONFIG value", c.name))?;
    let raw = base64::engine::general_purpose::STANDARD.decode(v.trim())?;
    Ok(serde_json::from_slice(&raw)?)
}

pub fn pod_summary(p: &Pod) -> String {
    let names = |v: Vec<&Container>| {
        v.iter()
            .map(|c| c.name.clone())
            .collect::<Vec<_>>()
            .join(",")
    };
    let vols = p
        .spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .map(|v| {
            v.iter()
                .map(|v| v.name.clone())
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    format!(
        "pod {}: initContainers=[{}] containers=[{}] volumes=[{}] status-annotation={:?}",
        p.metadata.name.as_deref().unwrap_or("?"),
        names(init_containers(p)),
        names(containers(p)),
        vols,
        annotation(p, "vault.hashicorp.com/agent-inject-status"),
    )
}

/// A Pod built from an existing one, as a user would copy it to CREATE it again.
pub fn recreate_from(p: &Pod, new_name: &str) -> Result<Pod> {
    let mut v = serde_json::to_value(p)?;
    let md = v["metadata"]
        .as_object_mut()
        .context("pod without metadata")?;
    for k in [
        "uid",
        "resourceVersion",
        "creationTimestamp",
        "ownerReferences",
        "managedFields",
        "generateName",
        "generation",
    ] {
        md.remove(k);
    }
    md.insert("name".into(), json!(new_name));
    md.insert("labels".into(), json!({"app": new_name}));
    v.as_object_mut().context("pod")?.remove("status");
    Ok(serde_json::from_value(v)?)
}

/// The message of an API error (what kubectl shows the user).
pub fn api_error_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message.clone(),
        other => other.to_string(),
    }
}
