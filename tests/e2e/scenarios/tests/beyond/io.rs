//! Beyond upstream, on the real apiserver: OpenBao annotations with the real `bao`
//! agent (items 4), per-namespace defaults (5) and the missed-injection watcher (8). Run with
//! `tests/e2e/run.sh bio`.
//!
//! The namespace-defaults and watcher scenarios restart the injector with their setting on and
//! grant its service account the extra RBAC themselves (a ClusterRole of their own, not
//! webhook-config/); both are undone at the end, pass or fail, so later scenarios see the
//! injector as run.sh started it.
//!
//! Included from scenarios.rs (`mod beyond_io`), so the tests are named `beyond_io::bio...`.

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::{Event, Namespace, Pod};
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use vault_injector_e2e::*;

const VAULT_STATUS: &str = "vault.hashicorp.com/agent-inject-status";
const BAO_STATUS: &str = "openbao.org/agent-inject-status";

/// The walkthrough acts as the kubelet and logs in to OpenBao and PostgreSQL, so it needs the
/// local harness; as in s5, only `E2E_NO_WALKTHROUGH=1` (kind) leaves it out.
fn walkthrough_available() -> bool {
    if env("E2E_NO_WALKTHROUGH").as_deref() == Some("1") {
        eprintln!("not run: E2E_NO_WALKTHROUGH=1 (the walkthrough needs the local harness)");
        return false;
    }
    let missing: Vec<_> = [
        "E2E_VAULT_ADDR",
        "E2E_VAULT_TOKEN",
        "E2E_VAULT",
        "E2E_PG_PORT",
        "E2E_PG_ADMIN_USER",
    ]
    .into_iter()
    .filter(|v| env(v).is_none())
    .collect();
    assert!(
        missing.is_empty(),
        "the walkthrough needs the local harness (missing {missing:?}): run tests/e2e/run.sh"
    );
    true
}

/// OpenBao as an operator configures it for this walkthrough (idempotent, the same engine and
/// policy as s5): the auth role `role` for SA `orders-app` in `namespace`.
async fn configure_openbao(client: &kube::Client, role: &str, namespace: &str) -> Result<()> {
    configure_kubernetes_auth(client).await?;
    configure_orders_database().await?;
    bind_orders_role(role, namespace).await?;
    log(format!(
        "OpenBao configured: kubernetes auth, database engine, policy, auth role {role}"
    ));
    Ok(())
}

/// The webhook's `matchConditions` expression named `name` (the chart's
/// `has-agent-inject-annotation`), if it has one.
async fn match_condition(client: &kube::Client, name: &str) -> Result<Option<String>> {
    let api: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    let cfg = api.get(WEBHOOK_CONFIG).await?;
    Ok(cfg
        .webhooks
        .unwrap_or_default()
        .into_iter()
        .flat_map(|w| w.match_conditions.unwrap_or_default())
        .find(|c| c.name == name)
        .map(|c| c.expression))
}

const MATCH_CONDITION: &str = "has-agent-inject-annotation";

fn bao_orders_annotations(role: &str) -> Value {
    json!({
        "openbao.org/agent-inject": "true",
        "openbao.org/role": role,
        "openbao.org/agent-inject-secret-db.env": "database/creds/orders-app",
        "openbao.org/agent-inject-template-db.env":
            "{{- with secret \"database/creds/orders-app\" -}}\nDB_USER={{ .Data.username }}\nDB_PASS={{ .Data.password }}\n{{- end }}\n",
        "openbao.org/agent-inject-file-db.env": "db.env",
        "openbao.org/agent-inject-perms-db.env": "0440",
    })
}

/// The dynamic-secrets walkthrough of s5 with openbao.org annotations: the injector (with its
/// normal settings; the harness's agent image is `openbao/openbao`) makes the agents run `bao`,
/// and the fake kubelet runs exactly that command with the real `bao` binary.
#[tokio::test]
async fn bio1_openbao_annotations_walkthrough_runs_the_bao_agent() -> Result<()> {
    if !walkthrough_available() {
        return Ok(());
    }
    let client = client().await?;
    let ns = TestNs::create(&client, "orders-bao", true).await?;
    configure_openbao(&client, "orders-app-bao", &ns.name).await?;
    ns.create_service_account("orders-app").await?;
    // webhook-config/ (the chart's default matchConditions) sends openbao.org pods too.
    let expression = match_condition(&client, MATCH_CONDITION).await?;
    ensure!(
        expression
            .as_deref()
            .is_some_and(|e| e.contains("'openbao.org/agent-inject'")),
        "the webhook's matchCondition {MATCH_CONDITION} does not admit openbao.org pods: {expression:?}"
    );
    let result = openbao_walkthrough(&client, &ns).await;
    result?;
    ns.delete().await;
    Ok(())
}

async fn openbao_walkthrough(client: &kube::Client, ns: &TestNs) -> Result<()> {
    // The apiserver reads webhook configurations through an informer: wait until a dry-run
    // creation of an openbao.org pod comes back injected.
    let probe = pod(
        "probe",
        json!({"openbao.org/agent-inject": "true", "openbao.org/role": "x"}),
    )?;
    poll(
        "the webhook to receive openbao.org pods",
        Duration::from_secs(15),
        || {
            let probe = probe.clone();
            async move {
                let params = PostParams {
                    dry_run: true,
                    ..PostParams::default()
                };
                let p = ns.pods().create(&params, &probe).await?;
                Ok(annotation(&p, BAO_STATUS).map(|_| ()))
            }
        },
    )
    .await?;
    let p = ns
        .deploy_and_wait_pod(deployment(
            "orders-app",
            "orders-app",
            bao_orders_annotations("orders-app-bao"),
        ))
        .await?;
    log(pod_summary(&p));

    // The shape: status in openbao-k8s's key, and both agents run `bao`.
    ensure!(
        annotation(&p, BAO_STATUS) == Some("injected"),
        "expected {BAO_STATUS}: injected: {}",
        pod_summary(&p)
    );
    ensure!(
        annotation(&p, VAULT_STATUS).is_none(),
        "{VAULT_STATUS} written for an openbao.org pod"
    );
    let want = AGENT_ARGS.replace("&& vault agent", "&& bao agent");
    for (name, c) in [
        ("vault-agent-init", init_containers(&p)),
        ("vault-agent", containers(&p)),
    ] {
        let c = c
            .into_iter()
            .find(|c| c.name == name)
            .with_context(|| format!("no {name}: {}", pod_summary(&p)))?;
        let args = c.args.clone().unwrap_or_default();
        ensure!(
            args == [want.clone()],
            "{name} args {args:?}, want [{want:?}]"
        );
        let config = agent_config(c)?;
        ensure!(
            config["auto_auth"]["method"]["config"]["role"] == "orders-app-bao",
            "{name}: the openbao.org role is not in the agent config: {config}"
        );
    }
    log("openbao.org annotations: both agents run `bao agent`, status in openbao.org/");

    let kubelet = FakeKubelet::new(client, p.clone())?;
    let (user, _, _) = run_init_and_check_db_env(&kubelet).await?;
    log(format!(
        "bao agent (init) rendered db.env (mode 0440); database user {user} logs in"
    ));

    // The sidecar, started with its exact command, logs in and renews (token_ttl 20s).
    let mut sidecar = kubelet.start("vault-agent").await?;
    let renewed = poll(
        "the bao sidecar to renew its auth token",
        Duration::from_secs(60),
        || {
            let text = sidecar.log_text();
            async move { Ok(text.contains("renewed auth token").then_some(())) }
        },
    )
    .await;
    let alive = sidecar.is_running();
    let side_log = sidecar.log_text();
    sidecar.stop().await?;
    if renewed.is_err() || !alive {
        bail!("the bao sidecar did not run and renew (alive: {alive}); its output:\n{side_log}");
    }
    log("bao sidecar alive and renewing");
    bao(
        &["lease", "revoke", "-prefix", "database/creds/orders-app"],
        None,
    )
    .await?;
    Ok(())
}

/// Runs `body`, then `cleanup` whatever happened; the body's error wins.
async fn with_cleanup<B, C>(body: B, cleanup: C) -> Result<()>
where
    B: Future<Output = Result<()>>,
    C: Future<Output = Result<()>>,
{
    let result = body.await;
    let cleaned = cleanup.await;
    result.and(cleaned)
}

/// A dry-run creation: the apiserver calls the webhook (sideEffects None) and returns the
/// mutated pod without storing it.
async fn dry_run(ns: &TestNs, p: &Pod) -> Result<Pod> {
    let params = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    Ok(ns.pods().create(&params, p).await?)
}

fn sidecar_role(p: &Pod) -> Option<String> {
    let c = container(p, "vault-agent")?;
    let config = agent_config(c).ok()?;
    config["auto_auth"]["method"]["config"]["role"]
        .as_str()
        .map(str::to_owned)
}

/// `AGENT_INJECT_NAMESPACE_DEFAULTS=true`: the Namespace's `vault.hashicorp.com/role` is the
/// role of a pod that has none; a pod's own role wins; the Namespace's annotations are not
/// written to the pod.
#[tokio::test]
async fn bio2_namespace_annotations_are_defaults_for_its_pods() -> Result<()> {
    let client = client().await?;
    const RBAC: &str = "vault-injector-e2e-namespace-defaults";
    grant_injector_cluster_role(
        &client,
        RBAC,
        json!([{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"]}]),
    )
    .await?;
    let ns = TestNs::create_unique(&client, "e2e-nsdefaults", true).await?;
    let name = ns.name.clone();
    let body = async {
        restart_injector_with_env(&client, &[("AGENT_INJECT_NAMESPACE_DEFAULTS", "true")]).await?;
        Api::<Namespace>::all(client.clone())
            .patch(
                &ns.name,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"annotations": {
                    "vault.hashicorp.com/role": "ns-role",
                    "vault.hashicorp.com/agent-limits-cpu": "300m",
                }}})),
            )
            .await?;
        log(format!(
            "namespace {} annotated with vault.hashicorp.com/role=ns-role",
            ns.name
        ));
        let without_role = pod(
            "no-role",
            json!({"vault.hashicorp.com/agent-inject": "true"}),
        )?;
        // The injector's cache sees the annotation through its watch, a moment after the patch.
        let injected = poll(
            "the injector to apply the namespace's role",
            Duration::from_secs(30),
            || {
                let without_role = without_role.clone();
                let ns = &ns;
                async move {
                    match dry_run(ns, &without_role).await {
                        Ok(p) if sidecar_role(&p).as_deref() == Some("ns-role") => Ok(Some(())),
                        Ok(p) => {
                            log(format!("not yet: {}", pod_summary(&p)));
                            Ok(None)
                        }
                        Err(e) => {
                            log(format!("not yet: {e}"));
                            Ok(None)
                        }
                    }
                }
            },
        )
        .await;
        injected?;
        let p = ns
            .pods()
            .create(&PostParams::default(), &without_role)
            .await
            .context("creating the pod without a role")?;
        log(pod_summary(&p));
        ensure!(is_injected(&p), "not injected: {}", pod_summary(&p));
        ensure!(
            sidecar_role(&p).as_deref() == Some("ns-role"),
            "the namespace's role is not the agent's: {:?}",
            sidecar_role(&p)
        );
        let cpu = container(&p, "vault-agent")
            .and_then(|c| c.resources.as_ref())
            .and_then(|r| r.limits.as_ref())
            .and_then(|l| l.get("cpu"))
            .map(|q| q.0.clone());
        ensure!(
            cpu.as_deref() == Some("300m"),
            "agent cpu limit {cpu:?}, want the namespace's 300m"
        );
        ensure!(
            annotation(&p, "vault.hashicorp.com/role").is_none(),
            "the namespace's role was written to the pod"
        );
        log("a pod without a role gets the namespace's role (and cpu limit)");

        let with_role = pod(
            "own-role",
            json!({"vault.hashicorp.com/agent-inject": "true", "vault.hashicorp.com/role": "pod-role"}),
        )?;
        let p = ns
            .pods()
            .create(&PostParams::default(), &with_role)
            .await
            .context("creating the pod with its own role")?;
        ensure!(
            sidecar_role(&p).as_deref() == Some("pod-role"),
            "the pod's own role must win: {:?}",
            sidecar_role(&p)
        );
        log("a pod with its own role keeps it");

        let not_annotated = pod("plain", json!({}))?;
        let p = ns
            .pods()
            .create(&PostParams::default(), &not_annotated)
            .await?;
        ensure!(
            !is_injected(&p),
            "a pod that did not ask was injected: {}",
            pod_summary(&p)
        );
        Ok(())
    };
    let cleanup = async {
        restart_injector(&client).await?;
        revoke_injector_cluster_role(&client, RBAC).await?;
        log(format!(
            "injector restarted with its normal settings; {RBAC} revoked; deleting {name}"
        ));
        Ok(())
    };
    with_cleanup(body, cleanup).await?;
    ns.delete().await;
    Ok(())
}

async fn missed_events(client: &kube::Client, ns: &str, pod: &str) -> Result<Vec<Event>> {
    let api: Api<Event> = Api::namespaced(client.clone(), ns);
    let list = api
        .list(&ListParams::default().fields(&format!("involvedObject.name={pod}")))
        .await?;
    Ok(list
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("VaultAgentInjectionMissed"))
        .collect())
}

const MISSED_METRIC: &str = "vault_agent_injector_missed_injections_by_namespace_total";

/// `AGENT_INJECT_MISSED_INJECTION_WATCHER=true`: a pod created uninjected while the injector was
/// down (failurePolicy Ignore) gets one Warning Event and is counted; an injected pod is not;
/// a second watcher (here: the restarted injector) counts it but does not duplicate the Event.
#[tokio::test]
async fn bio3_missed_injection_is_counted_and_reported_on_the_pod() -> Result<()> {
    let client = client().await?;
    const RBAC: &str = "vault-injector-e2e-missed-injections";
    grant_injector_cluster_role(
        &client,
        RBAC,
        json!([
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "watch"]},
            {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
        ]),
    )
    .await?;
    let ns = TestNs::create_unique(&client, "e2e-missed", true).await?;
    let name = ns.name.clone();
    let watcher_on = [("AGENT_INJECT_MISSED_INJECTION_WATCHER", "true")];
    let body = async {
        set_failure_policy(&client, "Ignore").await?;
        stop_injector(&client).await?;
        let annotations = json!({
            "vault.hashicorp.com/agent-inject": "true",
            "vault.hashicorp.com/role": "web",
        });
        let p = ns
            .pods()
            .create(&PostParams::default(), &pod("missed", annotations.clone())?)
            .await
            .context("with failurePolicy Ignore and the injector down, the pod must be created")?;
        ensure!(!is_injected(&p), "injected while the injector is down?!");
        log("pod `missed` created uninjected while the injector was down");

        start_injector_with_env(&watcher_on).await?;
        let events = poll(
            "the VaultAgentInjectionMissed event on pod `missed`",
            Duration::from_secs(30),
            || {
                let client = client.clone();
                let ns = ns.name.clone();
                async move {
                    let ev = missed_events(&client, &ns, "missed").await?;
                    Ok((!ev.is_empty()).then_some(ev))
                }
            },
        )
        .await?;
        let e = &events[0];
        ensure!(
            e.type_.as_deref() == Some("Warning"),
            "event type {:?}",
            e.type_
        );
        ensure!(
            e.involved_object.kind.as_deref() == Some("Pod")
                && e.involved_object.uid == p.metadata.uid,
            "event not on the pod: {:?}",
            e.involved_object
        );
        log(format!(
            "event {}: {}",
            e.metadata.name.as_deref().unwrap_or_default(),
            e.message.as_deref().unwrap_or_default()
        ));
        let counted = poll(
            "the missed injection in the metric",
            Duration::from_secs(15),
            || async {
                let text = metrics_text().await?;
                let n = metric(&text, MISSED_METRIC, &[("namespace", &name)]);
                Ok((n >= 1.0).then_some(n))
            },
        )
        .await?;
        ensure!(counted == 1.0, "{MISSED_METRIC} = {counted}, want 1");

        // An injected pod is not a miss.
        let ok = ns
            .pods()
            .create(
                &PostParams::default(),
                &pod("injected", annotations.clone())?,
            )
            .await?;
        ensure!(is_injected(&ok), "not injected: {}", pod_summary(&ok));
        tokio::time::sleep(Duration::from_secs(3)).await;
        let n = metric(
            &metrics_text().await?,
            MISSED_METRIC,
            &[("namespace", &name)],
        );
        ensure!(
            n == 1.0,
            "{MISSED_METRIC} = {n} after an injected pod, want 1"
        );
        ensure!(
            missed_events(&client, &ns.name, "injected")
                .await?
                .is_empty(),
            "an event for the injected pod"
        );

        // Another watcher (a second replica, or this one restarted) counts the pod in its own
        // metric but finds the Event already there: still one Event.
        restart_injector_with_env(&client, &watcher_on).await?;
        poll(
            "the restarted watcher to count the pod",
            Duration::from_secs(30),
            || async {
                let text = metrics_text().await?;
                let n = metric(&text, MISSED_METRIC, &[("namespace", &name)]);
                Ok((n == 1.0).then_some(()))
            },
        )
        .await?;
        let events = missed_events(&client, &ns.name, "missed").await?;
        ensure!(
            events.len() == 1 && events[0].count.unwrap_or(1) == 1,
            "want exactly one event, got {:?}",
            events
                .iter()
                .map(|e| (&e.metadata.name, e.count))
                .collect::<Vec<_>>()
        );
        log("restarted watcher counted the pod again; still exactly one event");
        Ok(())
    };
    let cleanup = async {
        restart_injector(&client).await?;
        revoke_injector_cluster_role(&client, RBAC).await?;
        log(format!(
            "injector restarted with its normal settings; {RBAC} revoked; deleting {name}"
        ));
        Ok(())
    };
    with_cleanup(body, cleanup).await?;
    ns.delete().await;
    Ok(())
}
