//! End-to-end scenarios. Each test creates its own namespace and takes the cluster
//! from KUBECONFIG; run them one at a time (`-- --test-threads=1`): scenario 2 and 4 read the
//! injector's request counter and stop the injector.

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use k8s_openapi::api::core::v1::Pod;
use kube::api::PostParams;
use serde_json::{Value, json};
use vault_injector_e2e::*;

#[path = "beyond/core.rs"]
mod beyond_core;
#[path = "beyond/io.rs"]
mod beyond_io;
#[path = "beyond/warnings.rs"]
mod beyond_warnings;

const STATUS: &str = "vault.hashicorp.com/agent-inject-status";

fn assert_injected_shape(p: &Pod) -> Result<()> {
    let summary = pod_summary(p);
    let inits: Vec<_> = init_containers(p)
        .into_iter()
        .filter(|c| c.name == "vault-agent-init")
        .collect();
    ensure!(
        inits.len() == 1,
        "expected one vault-agent-init init container: {summary}"
    );
    let sidecars: Vec<_> = containers(p)
        .into_iter()
        .filter(|c| c.name == "vault-agent")
        .collect();
    ensure!(
        sidecars.len() == 1,
        "expected one vault-agent sidecar: {summary}"
    );
    ensure!(
        containers(p).last().map(|c| c.name.as_str()) == Some("vault-agent"),
        "the sidecar must be the last container: {summary}"
    );
    ensure!(
        annotation(p, STATUS) == Some("injected"),
        "expected {STATUS}: injected: {summary}"
    );

    let vols = p
        .spec
        .as_ref()
        .and_then(|s| s.volumes.clone())
        .unwrap_or_default();
    for name in ["home-init", "home-sidecar", "vault-secrets"] {
        let v = vols
            .iter()
            .find(|v| v.name == name)
            .with_context(|| format!("no volume {name}: {summary}"))?;
        let medium = v.empty_dir.as_ref().and_then(|e| e.medium.clone());
        ensure!(
            medium.as_deref() == Some("Memory"),
            "volume {name} must be emptyDir medium Memory: {v:?}"
        );
    }
    let app = container(p, "app").context("no app container")?;
    ensure!(
        app.volume_mounts
            .as_deref()
            .unwrap_or_default()
            .iter()
            .any(|m| m.name == "vault-secrets" && m.mount_path == "/vault/secrets"),
        "app container lacks the vault-secrets mount at /vault/secrets: {:?}",
        app.volume_mounts
    );
    for (c, exit_after_auth, home) in [
        (inits[0], true, "home-init"),
        (sidecars[0], false, "home-sidecar"),
    ] {
        ensure!(
            c.command.as_deref() == Some(&["/bin/sh".to_string(), "-ec".to_string()][..]),
            "{}: command {:?}",
            c.name,
            c.command
        );
        ensure!(
            c.args.as_deref() == Some(&[AGENT_ARGS.to_string()][..]),
            "{}: args {:?}",
            c.name,
            c.args
        );
        let mounts = c.volume_mounts.as_deref().unwrap_or_default();
        ensure!(
            mounts
                .iter()
                .any(|m| m.name == home && m.mount_path == "/home/vault"),
            "{}: no {home} mount at /home/vault",
            c.name
        );
        ensure!(
            mounts.iter().any(
                |m| m.mount_path == "/var/run/secrets/kubernetes.io/serviceaccount"
                    && m.read_only == Some(true)
            ),
            "{}: no read-only service-account token mount",
            c.name
        );
        let cfg = agent_config(c)?;
        ensure!(
            cfg["exit_after_auth"] == json!(exit_after_auth),
            "{}: exit_after_auth in {cfg}",
            c.name
        );
        ensure!(
            cfg["auto_auth"]["method"]["type"] == json!("kubernetes"),
            "{}: auto_auth in {cfg}",
            c.name
        );
        if let Some(addr) = env("E2E_VAULT_ADDR") {
            ensure!(
                cfg["vault"]["address"] == json!(addr),
                "{}: vault.address in {cfg}",
                c.name
            );
        }
    }
    Ok(())
}

/// Scenario 1: a Deployment in an opted-in namespace gets its pods injected; a second CREATE of
/// an injected pod does not inject twice.
#[tokio::test]
async fn s1_deployment_in_opted_in_namespace_is_injected_once() -> Result<()> {
    let client = client().await?;
    let ns = TestNs::create_unique(&client, "e2e-inject", true).await?;
    let before = injector_request_count().await?;

    let annotations = json!({
        "vault.hashicorp.com/agent-inject": "true",
        "vault.hashicorp.com/role": "web",
        "vault.hashicorp.com/agent-inject-secret-config.txt": "secret/data/web/config",
    });
    let p = ns
        .deploy_and_wait_pod(deployment("web", "default", annotations))
        .await?;
    log(pod_summary(&p));
    assert_injected_shape(&p)?;
    let text = metrics_text().await?;
    let injections = metric(
        &text,
        "vault_agent_injector_injections_by_namespace_total",
        &[
            ("namespace", &ns.name),
            ("injection_type", "init_and_sidecar"),
        ],
    );
    ensure!(
        injections == 1.0,
        "injections_by_namespace_total for {}: {injections}",
        ns.name
    );
    let after_first = injector_request_count().await?;
    ensure!(
        after_first >= before + 1.0,
        "the webhook was not called ({before} -> {after_first})"
    );

    // CREATE the injected pod again (as a user copying its manifest would).
    let copy = recreate_from(&p, "web-copy")?;
    let created = ns
        .pods()
        .create(&PostParams::default(), &copy)
        .await
        .context("re-creating the injected pod")?;
    log(pod_summary(&created));
    assert_injected_shape(&created)?;
    let n_vols = |p: &Pod| {
        p.spec
            .as_ref()
            .and_then(|s| s.volumes.as_ref())
            .map(Vec::len)
            .unwrap_or(0)
    };
    ensure!(
        n_vols(&created) == n_vols(&p),
        "volumes changed on the second CREATE: {}",
        pod_summary(&created)
    );
    ensure!(
        init_containers(&created).len() == init_containers(&p).len()
            && containers(&created).len() == containers(&p).len(),
        "containers changed on the second CREATE: {}",
        pod_summary(&created)
    );
    let text = metrics_text().await?;
    let after_second = metric(
        &text,
        "vault_agent_injector_request_processing_duration_ms_count",
        &[],
    );
    ensure!(
        after_second >= after_first + 1.0,
        "the webhook was not called for the second CREATE"
    );
    let injections2 = metric(
        &text,
        "vault_agent_injector_injections_by_namespace_total",
        &[("namespace", &ns.name)],
    );
    ensure!(
        injections2 == 1.0,
        "second CREATE counted as an injection: {injections2}"
    );
    ns.delete().await;
    Ok(())
}

/// Scenario 2: without the opt-in label the pod is created untouched, and the webhook is not
/// even called (the injector's request counter does not move).
#[tokio::test]
async fn s2_namespace_without_opt_in_label_is_not_sent_to_webhook() -> Result<()> {
    let client = client().await?;
    let ns = TestNs::create_unique(&client, "e2e-no-label", false).await?;
    let before = injector_request_count().await?;
    let annotations = json!({
        "vault.hashicorp.com/agent-inject": "true",
        "vault.hashicorp.com/role": "web",
        "vault.hashicorp.com/agent-inject-secret-config.txt": "secret/data/web/config",
    });
    let p = ns
        .deploy_and_wait_pod(deployment("web", "default", annotations.clone()))
        .await?;
    log(pod_summary(&p));
    ensure!(
        !is_injected(&p),
        "pod in a namespace without the opt-in label was injected: {}",
        pod_summary(&p)
    );
    let direct = ns
        .pods()
        .create(&PostParams::default(), &pod("direct", annotations)?)
        .await?;
    ensure!(
        !is_injected(&direct),
        "directly created pod was injected: {}",
        pod_summary(&direct)
    );
    let after = injector_request_count().await?;
    ensure!(
        after == before,
        "the webhook was called for a namespace without the label ({before} -> {after})"
    );
    ns.delete().await;
    Ok(())
}

/// Scenario 3: an invalid annotation value refuses the pod, and the user sees the injector's
/// message naming the annotation.
#[tokio::test]
async fn s3_invalid_annotation_value_is_refused_with_message() -> Result<()> {
    let client = client().await?;
    let ns = TestNs::create_unique(&client, "e2e-invalid", true).await?;
    let bad = pod(
        "bad",
        json!({
            "vault.hashicorp.com/agent-inject": "true",
            "vault.hashicorp.com/role": "web",
            "vault.hashicorp.com/agent-share-process-namespace": "maybe",
        }),
    )?;
    match ns.pods().create(&PostParams::default(), &bad).await {
        Ok(p) => bail!(
            "pod with an invalid annotation was created: {}",
            pod_summary(&p)
        ),
        Err(e) => {
            let msg = api_error_message(&e);
            log(format!("creation refused: {msg}"));
            ensure!(
                msg.contains("admission webhook \"vault.hashicorp.com\" denied the request"),
                "not denied by the webhook: {msg}"
            );
            ensure!(
                msg.contains("vault.hashicorp.com/agent-share-process-namespace"),
                "the message does not name the annotation: {msg}"
            );
        }
    }
    ensure!(
        ns.pods().get_opt("bad").await?.is_none(),
        "the refused pod exists"
    );
    ns.delete().await;
    Ok(())
}

/// Scenario 4: injector stopped. failurePolicy Ignore creates the pod uninjected; Fail refuses it.
#[tokio::test]
async fn s4_injector_down_ignore_creates_uninjected_fail_refuses() -> Result<()> {
    let client = client().await?;
    let ns = TestNs::create_unique(&client, "e2e-down", true).await?;
    let annotations = json!({
        "vault.hashicorp.com/agent-inject": "true",
        "vault.hashicorp.com/role": "web",
    });
    stop_injector(&client).await?;
    let body = async {
        let p = ns
            .pods()
            .create(
                &PostParams::default(),
                &pod("ignored", annotations.clone())?,
            )
            .await
            .context("with failurePolicy Ignore and the injector down, the pod must be created")?;
        log(pod_summary(&p));
        ensure!(
            !is_injected(&p),
            "pod injected while the injector is down?! {}",
            pod_summary(&p)
        );

        set_failure_policy(&client, "Fail").await?;
        // The apiserver reads webhook configurations through an informer, so the new policy
        // takes effect some milliseconds after the patch returns. Dry-run creations (webhooks
        // with sideEffects None are called for them) show when it has.
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        let dry_run = PostParams {
            dry_run: true,
            ..PostParams::default()
        };
        while ns
            .pods()
            .create(&dry_run, &pod("refused", annotations.clone())?)
            .await
            .is_ok()
        {
            ensure!(
                std::time::Instant::now() < deadline,
                "failurePolicy Fail not in effect 15 s after the patch: dry-run creations still pass"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        match ns
            .pods()
            .create(
                &PostParams::default(),
                &pod("refused", annotations.clone())?,
            )
            .await
        {
            Ok(p) => bail!(
                "with failurePolicy Fail and the injector down, the pod was created: {}",
                pod_summary(&p)
            ),
            Err(e) => {
                let msg = api_error_message(&e);
                log(format!("creation refused: {msg}"));
                ensure!(
                    msg.contains("failed calling webhook \"vault.hashicorp.com\""),
                    "unexpected refusal: {msg}"
                );
            }
        }
        Ok(())
    }
    .await;
    // always restore the shared webhook and injector for the next scenarios
    let restore_policy = set_failure_policy(&client, "Ignore").await;
    let restart = start_injector(&client).await;
    body?;
    restore_policy?;
    restart?;
    // and the injector serves again
    let p = ns
        .pods()
        .create(&PostParams::default(), &pod("after-restart", annotations)?)
        .await?;
    ensure!(
        is_injected(&p),
        "pod not injected after the injector restarted: {}",
        pod_summary(&p)
    );
    ns.delete().await;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Scenario 5: the dynamic-secrets walkthrough.

/// Configure OpenBao as an operator would (idempotent: both walkthrough tests call it).
async fn configure_openbao(client: &kube::Client) -> Result<()> {
    configure_kubernetes_auth(client).await?;
    configure_orders_database().await?;
    bind_orders_role("orders-app", "orders").await?;
    log(
        "OpenBao configured: kubernetes auth, database engine (orders-pg, orders-app), policy, role",
    );
    Ok(())
}

fn orders_annotations(role: &str) -> Value {
    json!({
        "vault.hashicorp.com/agent-inject": "true",
        "vault.hashicorp.com/role": role,
        "vault.hashicorp.com/agent-inject-secret-db.env": "database/creds/orders-app",
        "vault.hashicorp.com/agent-inject-template-db.env":
            "{{- with secret \"database/creds/orders-app\" -}}\nDB_USER={{ .Data.username }}\nDB_PASS={{ .Data.password }}\n{{- end }}\n",
        "vault.hashicorp.com/agent-inject-file-db.env": "db.env",
        "vault.hashicorp.com/agent-inject-perms-db.env": "0440",
    })
}

/// The walkthrough acts as the kubelet, so it needs the local harness (run.sh exports these).
/// Only an explicit `E2E_NO_WALKTHROUGH=1` (kind.sh, where no fake kubelet exists) leaves it out;
/// anywhere else a missing variable is a failure, not a silent skip.
fn walkthrough_available() -> bool {
    if env("E2E_NO_WALKTHROUGH").as_deref() == Some("1") {
        eprintln!("not run: E2E_NO_WALKTHROUGH=1 (the walkthrough needs the local harness)");
        return false;
    }
    let needed = [
        "E2E_VAULT_ADDR",
        "E2E_VAULT_TOKEN",
        "E2E_VAULT",
        "E2E_PG_PORT",
        "E2E_PG_ADMIN_USER",
    ];
    let missing: Vec<_> = needed.iter().filter(|v| env(v).is_none()).collect();
    assert!(
        missing.is_empty(),
        "the walkthrough needs the local harness (missing {missing:?}): run tests/e2e/run.sh, or set E2E_NO_WALKTHROUGH=1"
    );
    true
}

#[tokio::test]
async fn s5_dynamic_secrets_walkthrough() -> Result<()> {
    if !walkthrough_available() {
        return Ok(());
    }
    let client = client().await?;
    configure_openbao(&client).await?;
    let ns = TestNs::create(&client, "orders", true).await?;
    ns.create_service_account("orders-app").await?;
    let p = ns
        .deploy_and_wait_pod(deployment(
            "orders-app",
            "orders-app",
            orders_annotations("orders-app"),
        ))
        .await?;
    log(pod_summary(&p));
    assert_injected_shape(&p)?;

    let kubelet = FakeKubelet::new(&client, p.clone())?;
    let (user, pass, _) = run_init_and_check_db_env(&kubelet).await?;
    match psql(&user, &pass, "SELECT count(*) FROM orders").await? {
        Ok(out) => log(format!(
            "the dynamic user reads the orders table: {out} rows"
        )),
        Err(e) => bail!("the rendered credentials cannot read the orders table: {e}"),
    }

    // the sidecar: keeps running and renewing its token (token_ttl 20s)
    let mut sidecar = kubelet.start("vault-agent").await?;
    // The agent renews once right after login, then at about 2/3 of the 20 s TTL: three
    // renewals mean it renewed on its own schedule twice.
    let renewals = poll(
        "the sidecar to renew its auth token repeatedly",
        Duration::from_secs(90),
        || {
            let text = sidecar.log_text();
            async move {
                let n = text.matches("renewed auth token").count();
                Ok((n >= 3).then_some(n))
            }
        },
    )
    .await;
    let alive = sidecar.is_running();
    let side_log = sidecar.log_text();
    if renewals.is_err() || !alive {
        sidecar.stop().await?;
        bail!(
            "the sidecar did not keep renewing (alive: {alive}, {renewals:?}); its output:\n{side_log}"
        );
    }
    log(format!(
        "sidecar alive and renewed its token {} times",
        renewals?
    ));

    // revoke the lease: the rendered credentials stop working
    bao(
        &["lease", "revoke", "-prefix", "database/creds/orders-app"],
        None,
    )
    .await?;
    log("revoked every lease under database/creds/orders-app");
    let failed = poll(
        "the revoked credentials to stop working",
        Duration::from_secs(30),
        || {
            let (user, pass) = (user.clone(), pass.clone());
            async move { Ok(psql(&user, &pass, "SELECT 1").await?.err()) }
        },
    )
    .await;
    sidecar.stop().await?;
    let failed = failed?;
    log(format!(
        "login after revocation fails as expected: {failed}"
    ));
    ns.delete().await;
    Ok(())
}

/// The walkthrough again, with the agent's auth role bound to a different service account:
/// the agent cannot authenticate and nothing is rendered.
#[tokio::test]
async fn s5b_dynamic_secrets_wrong_service_account_cannot_authenticate() -> Result<()> {
    if !walkthrough_available() {
        return Ok(());
    }
    let client = client().await?;
    configure_openbao(&client).await?;
    let ns = TestNs::create(&client, "orders-wrong-sa", true).await?;
    ns.create_service_account("orders-app").await?;
    bao(
        &[
            "write",
            "auth/kubernetes/role/orders-app-other-sa",
            "bound_service_account_names=billing-app",
            &format!("bound_service_account_namespaces={}", ns.name),
            "policies=orders-app",
            "token_ttl=20s",
        ],
        None,
    )
    .await?;
    let p = ns
        .deploy_and_wait_pod(deployment(
            "orders-app",
            "orders-app",
            orders_annotations("orders-app-other-sa"),
        ))
        .await?;
    assert_injected_shape(&p)?;
    let kubelet = FakeKubelet::new(&client, p)?;
    let mut init = kubelet.start("vault-agent-init").await?;
    let st = init.wait_timeout(Duration::from_secs(25)).await?;
    if st.is_none() {
        init.stop().await?;
    }
    let out = init.log_text();
    ensure!(
        st.map(|s| s.success()) != Some(true),
        "the agent completed with the wrong service account:\n{out}"
    );
    ensure!(
        !kubelet.volume_dir("vault-secrets").join("db.env").exists(),
        "db.env was rendered although the agent could not authenticate"
    );
    ensure!(
        out.contains("service account name not authorized") || out.contains("permission denied"),
        "the agent output does not show the authentication failure:\n{out}"
    );
    log(
        "the agent could not authenticate with a role bound to another service account; nothing rendered",
    );
    ns.delete().await;
    Ok(())
}
