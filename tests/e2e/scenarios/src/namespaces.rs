//! A namespace per scenario, labelled for injection, with the service accounts and secrets the
//! scenarios give it.

use std::time::Duration;

use anyhow::{Context, Result};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};

use crate::harness::{log, poll, suffix};

pub const INJECT_LABEL: &str = "vault-injector/inject";

/// A namespace created for one scenario. `delete` is best effort (the local harness throws the
/// whole cluster away; on kind it keeps the cluster clean). Left in place when a test fails.
pub struct TestNs {
    pub client: Client,
    pub name: String,
}

impl TestNs {
    /// Create `name` (deleting a leftover of the same name first), opted in to injection when
    /// `opt_in`, and wait for its `default` service account.
    pub async fn create(client: &Client, name: &str, opt_in: bool) -> Result<TestNs> {
        let api: Api<Namespace> = Api::all(client.clone());
        if api.get_opt(name).await?.is_some() {
            log(format!(
                "namespace {name} exists from an earlier run: deleting it"
            ));
            let _ = api.delete(name, &DeleteParams::foreground()).await;
            poll(
                &format!("namespace {name} to go away"),
                Duration::from_secs(120),
                || {
                    let api = api.clone();
                    async move { Ok(api.get_opt(name).await?.is_none().then_some(())) }
                },
            )
            .await?;
        }
        let mut labels = serde_json::Map::new();
        labels.insert(
            "app.kubernetes.io/part-of".into(),
            json!("vault-injector-e2e"),
        );
        if opt_in {
            labels.insert(INJECT_LABEL.into(), json!("enabled"));
        }
        let ns: Namespace = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": labels},
        }))?;
        api.create(&PostParams::default(), &ns)
            .await
            .with_context(|| format!("creating namespace {name}"))?;
        let t = TestNs {
            client: client.clone(),
            name: name.to_string(),
        };
        t.wait_service_account("default").await?;
        log(format!("namespace {name} ready (opt-in: {opt_in})"));
        Ok(t)
    }

    pub async fn create_unique(client: &Client, prefix: &str, opt_in: bool) -> Result<TestNs> {
        Self::create(client, &format!("{prefix}-{}", suffix()), opt_in).await
    }

    pub fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), &self.name)
    }

    pub fn deployments(&self) -> Api<Deployment> {
        Api::namespaced(self.client.clone(), &self.name)
    }

    pub fn service_accounts(&self) -> Api<ServiceAccount> {
        Api::namespaced(self.client.clone(), &self.name)
    }

    /// Wait for a service account (the service-account controller creates `default`).
    pub async fn wait_service_account(&self, name: &str) -> Result<ServiceAccount> {
        let api = self.service_accounts();
        poll(
            &format!("service account {}/{name}", self.name),
            Duration::from_secs(60),
            || {
                let api = api.clone();
                async move { Ok(api.get_opt(name).await?) }
            },
        )
        .await
    }

    pub async fn create_service_account(&self, name: &str) -> Result<ServiceAccount> {
        let sa: ServiceAccount = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name},
        }))?;
        self.service_accounts()
            .create(&PostParams::default(), &sa)
            .await?;
        self.wait_service_account(name).await
    }

    /// Apply a Deployment and wait for the first Pod its ReplicaSet creates.
    pub async fn deploy_and_wait_pod(&self, deployment: Value) -> Result<Pod> {
        let d: Deployment = serde_json::from_value(deployment)?;
        let name = d
            .metadata
            .name
            .clone()
            .context("deployment without a name")?;
        self.deployments()
            .create(&PostParams::default(), &d)
            .await
            .with_context(|| format!("creating deployment {}/{name}", self.name))?;
        let pods = self.pods();
        let selector = format!("app={name}");
        poll(
            &format!(
                "a pod of deployment {}/{name} (created by the replicaset controller)",
                self.name
            ),
            Duration::from_secs(90),
            || {
                let pods = pods.clone();
                let selector = selector.clone();
                async move {
                    let list = pods.list(&ListParams::default().labels(&selector)).await?;
                    Ok(list.items.into_iter().next())
                }
            },
        )
        .await
    }

    pub async fn delete(self) {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let _ = api.delete(&self.name, &DeleteParams::background()).await;
    }
}
