//! `node-walkthrough`: the database walkthrough as a user runs it. OpenBao is configured as an
//! operator would (Kubernetes auth, the database engine with the dynamic role `orders-app`),
//! `examples/orders-app.yaml` is applied with kubectl (only its image and database address
//! changed to this cluster's), and its app container sources `/vault/secrets/db.env` and runs
//! `SELECT current_user` against PostgreSQL with the credentials the agent rendered.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::Api;
use kube::api::DeleteParams;
use vault_injector_e2e::node::*;
use vault_injector_e2e::*;

const EXAMPLE: &str = include_str!("../../../../../examples/orders-app.yaml");

/// The example with this cluster's image and PostgreSQL address in place of the placeholders.
fn example_for_this_cluster() -> Result<String> {
    node::example_for_this_cluster("examples/orders-app.yaml", EXAMPLE, "")
}

#[tokio::test]
async fn node_walkthrough() -> Result<()> {
    let client = client().await?;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    if namespaces.get_opt("orders").await?.is_some() {
        log("namespace orders exists from an earlier run: deleting it");
        let _ = namespaces
            .delete("orders", &DeleteParams::foreground())
            .await;
        poll(
            "namespace orders to go away",
            Duration::from_secs(120),
            || {
                let namespaces = namespaces.clone();
                async move { Ok(namespaces.get_opt("orders").await?.is_none().then_some(())) }
            },
        )
        .await?;
    }

    // The operator's side.
    configure_kubernetes_auth(&client).await?;
    configure_orders_database().await?;
    bind_orders_role("orders-app", "orders").await?;

    // The user's side.
    kubectl(&["apply", "-f", "-"], Some(&example_for_this_cluster()?)).await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "orders");
    let p = first_pod(&pods, "app=orders-app", Duration::from_secs(60)).await?;
    let name = p.metadata.name.clone().context("pod without a name")?;
    ensure!(
        is_injected(&p),
        "the walkthrough's pod was not injected: {}",
        pod_summary(&p)
    );
    let p = wait_pod(
        &pods,
        &name,
        "running and ready",
        Duration::from_secs(180),
        running_and_ready,
    )
    .await?;
    log(format!("orders-app pod {name}: {}", pod_state(&p)));

    let (user, pass) = db_env_in_pod("orders", &name).await?;
    ensure!(
        user.starts_with("v-"),
        "DB_USER {user:?} is not a user OpenBao created"
    );
    let app_log = wait_log(
        "orders",
        &name,
        "app",
        &format!("connected as {user}"),
        Duration::from_secs(60),
    )
    .await?;
    log(format!("the app says: {}", tail(&app_log, 1)));
    ensure!(
        can_login(&user, &pass).await?,
        "the rendered credentials do not log in from outside the pod"
    );

    // 0440, owned by the agent (uid 100, gid 1000): the app reads it through its group.
    let mode = exec(
        "orders",
        &name,
        "app",
        &["stat", "-c", "%a %u %g", "/vault/secrets/db.env"],
    )
    .await?;
    ensure!(
        mode.trim() == "440 100 1000",
        "db.env has mode/owner {:?}, expected 440 100 1000",
        mode.trim()
    );
    figure(format!(
        "walkthrough: db.env rendered for {user}, mode {}",
        mode.trim()
    ));

    let _ = namespaces
        .delete("orders", &DeleteParams::background())
        .await;
    Ok(())
}
