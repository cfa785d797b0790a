//! Helpers of the node tier (tests/node.rs): pods that a real kubelet runs, looked at the way a
//! user looks at them (`kubectl logs`, `kubectl exec`, pod status), and the OpenBao and
//! PostgreSQL set-up they log in to.
//!
//! The cluster comes from `KUBECONFIG`; images, addresses and credentials from the `E2E_*` and
//! `IMAGE_*` variables that tests/e2e/node.sh exports (see its header for another cluster).

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};

use crate::{bao, env, env_req, log, poll, psql};

/// The image reference images/build.sh recorded under `IMAGE_<NAME>`.
pub fn image(var: &str) -> Result<String> {
    env_req(var)
}

/// OpenBao's address as pods reach it.
pub fn pod_vault_addr() -> Result<String> {
    env("E2E_POD_VAULT_ADDR").map_or_else(|| env_req("E2E_VAULT_ADDR"), Ok)
}

/// PostgreSQL's host and port as pods reach them.
pub fn pod_pg_host_port() -> Result<(String, String)> {
    let host = env("E2E_POD_PG_HOST").map_or_else(|| env_req("E2E_PG_HOST"), Ok)?;
    let port = env("E2E_POD_PG_PORT").map_or_else(|| env_req("E2E_PG_PORT"), Ok)?;
    Ok((host, port))
}

/// Run kubectl (E2E_KUBECTL, else `kubectl` from PATH) with the scenario's KUBECONFIG;
/// Ok(stdout) or an error with its stderr.
pub async fn kubectl(args: &[&str], stdin: Option<&str>) -> Result<String> {
    run_tool(
        &env("E2E_KUBECTL").unwrap_or_else(|| "kubectl".into()),
        args,
        stdin,
    )
    .await
}

/// Run helm (E2E_HELM, else `helm` from PATH) with the scenario's KUBECONFIG.
pub async fn helm(args: &[&str]) -> Result<String> {
    run_tool(
        &env("E2E_HELM").unwrap_or_else(|| "helm".into()),
        args,
        None,
    )
    .await
}

async fn run_tool(bin: &str, args: &[&str], stdin: Option<&str>) -> Result<String> {
    let mut child = tokio::process::Command::new(bin)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {bin}"))?;
    if let Some(input) = stdin {
        use tokio::io::AsyncWriteExt as _;
        let mut si = child.stdin.take().context("stdin")?;
        si.write_all(input.as_bytes()).await?;
        drop(si);
    }
    let out = child.wait_with_output().await?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    ensure!(
        out.status.success(),
        "{bin} {} failed: {}{}",
        args.join(" "),
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(stdout)
}

/// `kubectl logs` of one container (empty when it has not started yet).
pub async fn logs(ns: &str, pod: &str, container: &str) -> String {
    kubectl(&["-n", ns, "logs", pod, "-c", container], None)
        .await
        .unwrap_or_default()
}

/// `kubectl exec` in one container; Ok(stdout).
pub async fn exec(ns: &str, pod: &str, container: &str, cmd: &[&str]) -> Result<String> {
    let mut args = vec!["-n", ns, "exec", pod, "-c", container, "--"];
    args.extend_from_slice(cmd);
    kubectl(&args, None).await
}

/// Why a pod cannot get further, if it cannot: a container waiting for a reason that does not
/// pass by itself (a missing image, a bad command), or one that keeps crashing.
fn stuck_reason(p: &Pod) -> Option<String> {
    let status = p.status.as_ref()?;
    let all = status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten());
    for cs in all {
        let waiting = cs.state.as_ref().and_then(|s| s.waiting.as_ref());
        if let Some(w) = waiting {
            let reason = w.reason.clone().unwrap_or_default();
            if matches!(
                reason.as_str(),
                "ErrImageNeverPull"
                    | "ErrImagePull"
                    | "ImagePullBackOff"
                    | "InvalidImageName"
                    | "CreateContainerConfigError"
                    | "CreateContainerError"
                    | "RunContainerError"
                    | "CrashLoopBackOff"
            ) {
                return Some(format!(
                    "container {} is waiting: {reason}: {}",
                    cs.name,
                    w.message.clone().unwrap_or_default()
                ));
            }
        }
    }
    None
}

/// A one-line view of a pod's phase and containers, for failure messages.
pub fn pod_state(p: &Pod) -> String {
    let Some(status) = p.status.as_ref() else {
        return "no status".into();
    };
    let mut out = format!("phase {}", status.phase.clone().unwrap_or_default());
    let all = status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten());
    for cs in all {
        let state = cs.state.as_ref();
        let what = if let Some(w) = state.and_then(|s| s.waiting.as_ref()) {
            format!("waiting ({})", w.reason.clone().unwrap_or_default())
        } else if let Some(t) = state.and_then(|s| s.terminated.as_ref()) {
            format!(
                "terminated ({}, exit {})",
                t.reason.clone().unwrap_or_default(),
                t.exit_code
            )
        } else if state.and_then(|s| s.running.as_ref()).is_some() {
            "running".into()
        } else {
            "unknown".into()
        };
        out.push_str(&format!(
            "; {}: {what}, ready {}, restarts {}",
            cs.name, cs.ready, cs.restart_count
        ));
    }
    out
}

/// Wait until `check` accepts the pod, failing at once when the pod is stuck (see
/// `stuck_reason`) and with the pod's state on timeout.
pub async fn wait_pod(
    pods: &Api<Pod>,
    name: &str,
    what: &str,
    timeout: Duration,
    check: impl Fn(&Pod) -> bool,
) -> Result<Pod> {
    let start = Instant::now();
    let mut last = None;
    loop {
        if let Some(p) = pods.get_opt(name).await? {
            if check(&p) {
                return Ok(p);
            }
            if let Some(reason) = stuck_reason(&p) {
                bail!(
                    "pod {name} will not become {what}: {reason}; {}",
                    pod_state(&p)
                );
            }
            last = Some(p);
        }
        if start.elapsed() > timeout {
            bail!(
                "timed out after {timeout:?} waiting for pod {name} to be {what}: {}",
                last.as_ref()
                    .map_or_else(|| "no such pod".into(), pod_state)
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Phase Running with every container ready.
pub fn running_and_ready(p: &Pod) -> bool {
    let Some(status) = p.status.as_ref() else {
        return false;
    };
    status.phase.as_deref() == Some("Running")
        && status
            .container_statuses
            .as_ref()
            .is_some_and(|cs| !cs.is_empty() && cs.iter().all(|c| c.ready))
}

pub fn phase_is(p: &Pod, phase: &str) -> bool {
    p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some(phase)
}

/// The first pod matching a label selector, once there is one.
pub async fn first_pod(pods: &Api<Pod>, selector: &str, timeout: Duration) -> Result<Pod> {
    poll(&format!("a pod matching {selector}"), timeout, || {
        let pods = pods.clone();
        async move {
            let list = pods.list(&ListParams::default().labels(selector)).await?;
            Ok(list
                .items
                .into_iter()
                .find(|p| p.metadata.deletion_timestamp.is_none()))
        }
    })
    .await
}

/// Poll a container's log until it contains `needle`.
pub async fn wait_log(
    ns: &str,
    pod: &str,
    container: &str,
    needle: &str,
    timeout: Duration,
) -> Result<String> {
    let start = Instant::now();
    loop {
        let text = logs(ns, pod, container).await;
        if text.contains(needle) {
            return Ok(text);
        }
        if start.elapsed() > timeout {
            bail!(
                "timed out after {timeout:?} waiting for {needle:?} in the log of {ns}/{pod} {container}; it says:\n{}",
                tail(&text, 30)
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The last `n` lines of a text.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

pub async fn create_pod(pods: &Api<Pod>, pod: Value) -> Result<Pod> {
    let p: Pod = serde_json::from_value(pod)?;
    pods.create(&PostParams::default(), &p)
        .await
        .context("creating the pod")
}

/// The injector's pods (the chart's release `vault` in namespace `vault`), without those being
/// deleted (a replica scaled away lingers a moment as a terminated pod).
pub async fn injector_pods(client: &Client) -> Result<Vec<Pod>> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "vault");
    let list = pods
        .list(&ListParams::default().labels("app.kubernetes.io/name=vault-agent-injector"))
        .await?;
    Ok(list
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect())
}

/// Wait until there are `n` injector pods, all ready.
pub async fn wait_injectors_ready(client: &Client, n: usize) -> Result<Vec<Pod>> {
    poll(
        &format!("{n} ready injector pods"),
        Duration::from_secs(180),
        || async move {
            let pods = injector_pods(client).await?;
            let ok = pods.len() == n && pods.iter().all(running_and_ready);
            Ok(ok.then_some(pods))
        },
    )
    .await
}

// ---------------------------------------------------------------------------------------------
// OpenBao

/// A KV v2 secret at `secret/<path>` of the dev server, a policy `name` that reads it and a
/// Kubernetes auth role `name` for service account `sa` in namespace `ns`.
pub async fn kv_secret_for(
    name: &str,
    path: &str,
    pairs: &[&str],
    ns: &str,
    sa: &str,
) -> Result<()> {
    let mut put = vec!["kv", "put", "-mount=secret", path];
    put.extend_from_slice(pairs);
    bao(&put, None).await?;
    bao(
        &["policy", "write", name, "-"],
        Some(&format!(
            "path \"secret/data/{path}\" {{\n  capabilities = [\"read\"]\n}}\n"
        )),
    )
    .await?;
    bind_role(name, ns, sa, name).await
}

/// The Kubernetes auth role `role`: service account `sa` in `ns` gets `policy`.
pub async fn bind_role(role: &str, ns: &str, sa: &str, policy: &str) -> Result<()> {
    bao(
        &[
            "write",
            &format!("auth/kubernetes/role/{role}"),
            &format!("bound_service_account_names={sa}"),
            &format!("bound_service_account_namespaces={ns}"),
            &format!("policies={policy}"),
            "token_ttl=1h",
        ],
        None,
    )
    .await
    .map(drop)
}

/// A dynamic database role `role` on the `orders-pg` connection (see
/// `configure_orders_database`) with these TTLs, and a policy of the same name that reads its
/// credentials.
pub async fn database_role(role: &str, default_ttl: &str, max_ttl: &str) -> Result<()> {
    crate::configure_orders_database().await?;
    let sql = std::env::temp_dir().join(format!("vault-injector-e2e-{role}.sql"));
    std::fs::write(&sql, crate::ORDERS_ROLE_SQL)?;
    let written = bao(
        &[
            "write",
            &format!("database/roles/{role}"),
            "db_name=orders-pg",
            &format!("creation_statements=@{}", sql.display()),
            &format!("default_ttl={default_ttl}"),
            &format!("max_ttl={max_ttl}"),
        ],
        None,
    )
    .await;
    let _ = std::fs::remove_file(&sql);
    written?;
    bao(
        &["policy", "write", role, "-"],
        Some(&format!(
            "path \"database/creds/{role}\" {{\n  capabilities = [\"read\"]\n}}\n"
        )),
    )
    .await
    .map(drop)
}

/// The ids of the live leases under a prefix (e.g. `database/creds/orders-app/`).
pub async fn lease_ids(prefix: &str) -> Result<Vec<String>> {
    let path = format!("sys/leases/lookup/{}", prefix.trim_end_matches('/'));
    let out = match bao(&["list", "-format=json", &path], None).await {
        Ok(out) => out,
        // `bao list` fails with "No value found" when there are none.
        Err(e) if e.to_string().contains("No value found") => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let keys: Vec<String> = serde_json::from_str(&out)?;
    let base = prefix.trim_end_matches('/');
    Ok(keys.into_iter().map(|k| format!("{base}/{k}")).collect())
}

/// A lease's expire time as OpenBao reports it (RFC 3339, UTC), cut to whole seconds so that
/// two of them compare as text.
pub async fn lease_expire_time(lease_id: &str) -> Result<String> {
    let out = bao(
        &[
            "write",
            "-format=json",
            "sys/leases/lookup",
            &format!("lease_id={lease_id}"),
        ],
        None,
    )
    .await?;
    let v: Value = serde_json::from_str(&out)?;
    let t = v["data"]["expire_time"]
        .as_str()
        .with_context(|| format!("no expire_time for lease {lease_id}: {out}"))?;
    Ok(t.chars().take(19).collect())
}

/// The credentials in a rendered `db.env`, read in the app container as the app reads them.
pub async fn db_env_in_pod(ns: &str, pod: &str) -> Result<(String, String)> {
    let text = exec(ns, pod, "app", &["cat", "/vault/secrets/db.env"]).await?;
    let (user, pass) = crate::parse_env_file(&text);
    ensure!(
        !user.is_empty() && !pass.is_empty(),
        "db.env in {ns}/{pod} has no DB_USER/DB_PASS: {text:?}"
    );
    Ok((user, pass))
}

/// An example manifest from `examples/` (its file `name` for messages, its `text`) with this
/// cluster's PostgreSQL client image and PostgreSQL address in place of its placeholders;
/// `after_image` follows the image (e.g. an `imagePullPolicy` line at the image's indent).
pub fn example_for_this_cluster(name: &str, text: &str, after_image: &str) -> Result<String> {
    let (host, port) = pod_pg_host_port()?;
    let mut text = text.to_string();
    for (from, to) in [
        (
            "image: docker.io/library/postgres:15",
            format!("image: {}{after_image}", image("IMAGE_POSTGRES_CLIENT")?),
        ),
        ("value: postgres.database.svc", format!("value: \"{host}\"")),
        ("value: \"5432\"", format!("value: \"{port}\"")),
    ] {
        ensure!(text.contains(from), "{name} no longer has `{from}`");
        text = text.replace(from, &to);
    }
    Ok(text)
}

/// Does this PostgreSQL login work (from the runner, as the database sees any client)?
pub async fn can_login(user: &str, password: &str) -> Result<bool> {
    Ok(psql(user, password, "SELECT current_user").await?.is_ok())
}

/// Polls until `user` can no longer log in to PostgreSQL (its lease ended or was revoked).
pub async fn wait_login_refused(user: &str, pass: &str, timeout: Duration) -> Result<()> {
    poll(
        &format!("the login of {user} to be refused"),
        timeout,
        || async move { Ok((!can_login(user, pass).await?).then_some(())) },
    )
    .await
}

/// An app container that connects to PostgreSQL every 2 seconds with the credentials in
/// /vault/secrets/db.env, read afresh each time, and logs `connected as <user>`, or the error.
pub fn db_app_container() -> Result<Value> {
    let (host, port) = pod_pg_host_port()?;
    Ok(json!({
        "name": "app",
        "image": image("IMAGE_POSTGRES_CLIENT")?,
        "imagePullPolicy": "IfNotPresent",
        "env": [
            {"name": "PGHOST", "value": host},
            {"name": "PGPORT", "value": port},
            {"name": "PGDATABASE", "value": env("E2E_PG_DATABASE").unwrap_or_else(|| "orders".into())},
            {"name": "PGCONNECT_TIMEOUT", "value": "5"},
        ],
        "command": ["/bin/sh", "-c", DB_APP_LOOP],
        "securityContext": {"runAsUser": 1000, "runAsGroup": 1000, "runAsNonRoot": true},
    }))
}

const DB_APP_LOOP: &str = "while true; do \
  . /vault/secrets/db.env; \
  PGUSER=\"$DB_USER\" PGPASSWORD=\"$DB_PASS\" psql -XAt -c \"SELECT 'connected as ' || current_user\" 2>&1; \
  sleep 2; \
done";

/// Seconds since the Unix epoch, for the figures the scenarios print.
pub fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Print a measured figure (collected by the runner's output, not asserted).
pub fn figure(text: impl AsRef<str>) {
    log(format!("node-figure: {}", text.as_ref()));
}
