//! Helpers for the vault-injector end-to-end scenarios (tests/scenarios.rs).
//!
//! The cluster comes from `KUBECONFIG` (any cluster: the local harness of tests/e2e/run.sh or
//! kind). Everything else the scenarios need is passed in `E2E_*` environment variables that
//! run.sh writes to `$E2E_STATE/env`; see tests/e2e/README.md.

pub mod node;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use base64::Engine as _;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Container, Namespace, Pod, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleRef, Subject};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};

pub const INJECT_LABEL: &str = "vault-injector/inject";
pub const WEBHOOK_CONFIG: &str = "vault-agent-injector-cfg";
pub const AGENT_ARGS: &str = "echo ${VAULT_CONFIG?} | base64 -d > /home/vault/config.json && vault agent -config=/home/vault/config.json";

pub fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

pub fn env_req(name: &str) -> Result<String> {
    env(name).with_context(|| {
        format!("{name} is not set: run the scenarios through tests/e2e/run.sh, or export the E2E_* variables (tests/e2e/README.md)")
    })
}

pub async fn client() -> Result<Client> {
    Client::try_default()
        .await
        .context("building a kube client from KUBECONFIG")
}

/// A short random suffix for object names.
pub fn suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() ^ (d.as_secs() as u32))
        .unwrap_or(0);
    format!("{:05x}", (nanos ^ std::process::id()) & 0xfffff)
}

pub fn log(msg: impl AsRef<str>) {
    eprintln!("[scenario {}] {}", chrono_like_now(), msg.as_ref());
}

fn chrono_like_now() -> String {
    let s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("{:02}:{:02}:{:02}", (s / 3600) % 24, (s / 60) % 60, s % 60)
}

/// Poll `f` every 500 ms until it returns `Some`, or fail after `timeout`.
pub async fn poll<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let start = Instant::now();
    let mut last_err = None;
    loop {
        match f().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last_err = Some(e),
        }
        if start.elapsed() > timeout {
            return Err(match last_err {
                Some(e) => e.context(format!("timed out after {timeout:?} waiting for {what}")),
                None => anyhow!("timed out after {timeout:?} waiting for {what}"),
            });
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// namespaces

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

// ---------------------------------------------------------------------------------------------
// looking at pods

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

// ---------------------------------------------------------------------------------------------
// the injector: metrics, stop/start, webhook failurePolicy

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

// ---------------------------------------------------------------------------------------------
// OpenBao and PostgreSQL

/// Run the OpenBao CLI (`bao`) as the operator, with the root token.
pub async fn bao(args: &[&str], stdin: Option<&str>) -> Result<String> {
    let bin = env("E2E_BAO").unwrap_or_else(|| "bao".into());
    let mut cmd = tokio::process::Command::new(&bin);
    cmd.args(args)
        .env("VAULT_ADDR", env_req("E2E_VAULT_ADDR")?)
        .env("BAO_ADDR", env_req("E2E_VAULT_ADDR")?)
        .env("VAULT_TOKEN", env_req("E2E_VAULT_TOKEN")?)
        .env("BAO_TOKEN", env_req("E2E_VAULT_TOKEN")?)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().with_context(|| format!("running {bin}"))?;
    if let Some(input) = stdin {
        use tokio::io::AsyncWriteExt as _;
        let mut si = child.stdin.take().context("stdin")?;
        si.write_all(input.as_bytes()).await?;
        drop(si);
    }
    let out = child.wait_with_output().await?;
    let so = String::from_utf8_lossy(&out.stdout).to_string();
    ensure!(
        out.status.success(),
        "bao {} failed: {}{}",
        args.join(" "),
        so,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(so)
}

/// Run psql with the given credentials against the harness's PostgreSQL; Ok(stdout) or the
/// error text when the login or the query fails.
pub async fn psql(
    user: &str,
    password: &str,
    sql: &str,
) -> Result<std::result::Result<String, String>> {
    let bin = match env("E2E_PG_BIN_DIR") {
        Some(d) => format!("{d}/psql"),
        None => "psql".into(),
    };
    let conn = format!(
        "host={} port={} dbname={} user={} connect_timeout=5 sslmode=disable",
        env("E2E_PG_HOST").unwrap_or_else(|| "127.0.0.1".into()),
        env_req("E2E_PG_PORT")?,
        env("E2E_PG_DATABASE").unwrap_or_else(|| "orders".into()),
        user
    );
    let out = tokio::process::Command::new(bin)
        .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", &conn, "-c", sql])
        .env("PGPASSWORD", password)
        .env_remove("PGSERVICE")
        .output()
        .await?;
    if out.status.success() {
        Ok(Ok(String::from_utf8_lossy(&out.stdout).trim().to_string()))
    } else {
        Ok(Err(String::from_utf8_lossy(&out.stderr).trim().to_string()))
    }
}

pub async fn token_request(
    client: &Client,
    ns: &str,
    service_account: &str,
    audiences: Vec<String>,
    expiration_seconds: i64,
    bound_pod: Option<&Pod>,
) -> Result<String> {
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    let tr = TokenRequest {
        spec: TokenRequestSpec {
            audiences,
            expiration_seconds: Some(expiration_seconds),
            bound_object_ref: bound_pod.map(|p| BoundObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: p.metadata.name.clone(),
                uid: p.metadata.uid.clone(),
            }),
        },
        ..Default::default()
    };
    let out = api
        .create_token_request(service_account, &PostParams::default(), &tr)
        .await
        .with_context(|| format!("TokenRequest for {ns}/{service_account}"))?;
    out.status
        .map(|s| s.token)
        .context("TokenRequest without a token")
}

/// The API server's service-account issuer (OIDC discovery, so it works on any cluster).
pub async fn service_account_issuer(client: &Client) -> Result<String> {
    if let Some(i) = env("E2E_SA_ISSUER") {
        return Ok(i);
    }
    let req = http::Request::get("/.well-known/openid-configuration").body(Vec::new())?;
    let text = client.request_text(req).await?;
    let v: Value = serde_json::from_str(&text)?;
    v["issuer"]
        .as_str()
        .map(str::to_string)
        .context("no issuer in openid-configuration")
}

/// The cluster URL and CA (PEM) of the KUBECONFIG in use, for OpenBao's kubernetes auth.
pub async fn cluster_url_and_ca() -> Result<(String, String)> {
    let cfg = kube::Config::infer().await?;
    let url = cfg
        .cluster_url
        .to_string()
        .trim_end_matches('/')
        .to_string();
    let der = cfg.root_cert.unwrap_or_default();
    ensure!(
        !der.is_empty(),
        "the kubeconfig has no certificate-authority data"
    );
    let mut pem = String::new();
    for cert in der {
        let b64 = base64::engine::general_purpose::STANDARD.encode(&cert);
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        for chunk in b64.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(chunk)?);
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
    }
    Ok((url, pem))
}

/// OpenBao's Kubernetes auth method against this apiserver, as an operator configures it
/// (idempotent).
pub async fn configure_kubernetes_auth(client: &Client) -> Result<()> {
    let auths: Value = serde_json::from_str(&bao(&["auth", "list", "-format=json"], None).await?)?;
    if auths.get("kubernetes/").is_none() {
        bao(&["auth", "enable", "kubernetes"], None).await?;
    }
    let (host, ca_pem) = cluster_url_and_ca().await?;
    let issuer = service_account_issuer(client).await?;
    let reviewer = token_reviewer_jwt(client).await?;
    let ca_file = std::env::temp_dir().join(format!("vault-injector-e2e-kube-ca-{}.pem", suffix()));
    std::fs::write(&ca_file, &ca_pem)?;
    let written = bao(
        &[
            "write",
            "auth/kubernetes/config",
            &format!("kubernetes_host={host}"),
            &format!("kubernetes_ca_cert=@{}", ca_file.display()),
            &format!("token_reviewer_jwt={reviewer}"),
            &format!("issuer={issuer}"),
            "disable_local_ca_jwt=true",
        ],
        None,
    )
    .await;
    let _ = std::fs::remove_file(&ca_file);
    written.map(drop)
}

pub const ORDERS_ROLE_SQL: &str = "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'; GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO \"{{name}}\";";

/// The walkthrough's database side, as an operator configures it (idempotent): the `database`
/// engine with connection `orders-pg` to the harness's PostgreSQL (as its non-superuser admin),
/// the dynamic role `orders-app` (a new PostgreSQL user per lease) and the policy `orders-app`
/// that may read its credentials.
pub async fn configure_orders_database() -> Result<()> {
    let mounts: Value =
        serde_json::from_str(&bao(&["secrets", "list", "-format=json"], None).await?)?;
    if mounts.get("database/").is_none() {
        bao(&["secrets", "enable", "database"], None).await?;
    }
    let pg_host = env("E2E_PG_HOST").unwrap_or_else(|| "127.0.0.1".into());
    let pg_port = env_req("E2E_PG_PORT")?;
    let pg_db = env("E2E_PG_DATABASE").unwrap_or_else(|| "orders".into());
    bao(
        &[
            "write",
            "database/config/orders-pg",
            "plugin_name=postgresql-database-plugin",
            "allowed_roles=orders-*",
            &format!("connection_url=postgresql://{{{{username}}}}:{{{{password}}}}@{pg_host}:{pg_port}/{pg_db}?sslmode=disable"),
            &format!("username={}", env_req("E2E_PG_ADMIN_USER")?),
            &format!("password={}", env_req("E2E_PG_ADMIN_PASSWORD")?),
        ],
        None,
    )
    .await?;
    let sql_file = std::env::temp_dir().join(format!("vault-injector-e2e-sql-{}.sql", suffix()));
    std::fs::write(&sql_file, ORDERS_ROLE_SQL)?;
    let written = bao(
        &[
            "write",
            "database/roles/orders-app",
            "db_name=orders-pg",
            &format!("creation_statements=@{}", sql_file.display()),
            "default_ttl=1h",
            "max_ttl=24h",
        ],
        None,
    )
    .await;
    let _ = std::fs::remove_file(&sql_file);
    written?;
    bao(
        &["policy", "write", "orders-app", "-"],
        Some("path \"database/creds/orders-app\" {\n  capabilities = [\"read\"]\n}\n"),
    )
    .await?;
    Ok(())
}

/// The Kubernetes auth role `role`: service account `orders-app` in `namespace` gets the policy
/// `orders-app`. token_ttl is short so that a sidecar visibly renews its token during a test.
pub async fn bind_orders_role(role: &str, namespace: &str) -> Result<()> {
    bao(
        &[
            "write",
            &format!("auth/kubernetes/role/{role}"),
            "bound_service_account_names=orders-app",
            &format!("bound_service_account_namespaces={namespace}"),
            "policies=orders-app",
            "token_ttl=20s",
            "token_max_ttl=1h",
        ],
        None,
    )
    .await?;
    Ok(())
}

/// A service account bound to system:auth-delegator, whose token OpenBao uses for TokenReview.
pub async fn token_reviewer_jwt(client: &Client) -> Result<String> {
    let ns = "vault";
    let name = "openbao-token-reviewer";
    let nsapi: Api<Namespace> = Api::all(client.clone());
    if nsapi.get_opt(ns).await?.is_none() {
        let n: Namespace = serde_json::from_value(json!({"metadata": {"name": ns}}))?;
        nsapi.create(&PostParams::default(), &n).await?;
    }
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    if sas.get_opt(name).await?.is_none() {
        let sa: ServiceAccount = serde_json::from_value(json!({"metadata": {"name": name}}))?;
        sas.create(&PostParams::default(), &sa).await?;
    }
    let crbs: Api<ClusterRoleBinding> = Api::all(client.clone());
    if crbs.get_opt(name).await?.is_none() {
        let crb = ClusterRoleBinding {
            metadata: kube::api::ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            role_ref: RoleRef {
                api_group: "rbac.authorization.k8s.io".into(),
                kind: "ClusterRole".into(),
                name: "system:auth-delegator".into(),
            },
            subjects: Some(vec![Subject {
                kind: "ServiceAccount".into(),
                name: name.into(),
                namespace: Some(ns.into()),
                ..Default::default()
            }]),
        };
        crbs.create(&PostParams::default(), &crb).await?;
    }
    token_request(client, ns, name, vec![], 24 * 3600, None).await
}

// ---------------------------------------------------------------------------------------------
// the fake kubelet: run one container of a created Pod on this machine

/// `DB_USER` and `DB_PASS` of a rendered env file (empty when missing).
pub fn parse_env_file(text: &str) -> (String, String) {
    let get = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    (get("DB_USER"), get("DB_PASS"))
}

/// The walkthrough's first half, shared by s5 and its OpenBao variant: the kubelet runs the
/// injected `vault-agent-init` to completion, which must render `db.env` with mode 0440 into
/// the shared `vault-secrets` volume, holding credentials that log in to PostgreSQL. Returns
/// (user, password, the init container's output).
pub async fn run_init_and_check_db_env(kubelet: &FakeKubelet) -> Result<(String, String, String)> {
    let secrets_dir = kubelet.volume_dir("vault-secrets");
    let mut init = kubelet.start("vault-agent-init").await?;
    let st = init.wait_timeout(Duration::from_secs(90)).await?;
    let init_log = init.log_text();
    if st.map(|s| s.success()) != Some(true) {
        init.stop().await?;
        bail!("vault-agent-init did not complete (status {st:?}); its output:\n{init_log}");
    }
    let db_env = secrets_dir.join("db.env");
    let meta = std::fs::metadata(&db_env).with_context(|| {
        format!(
            "{} was not rendered; agent output:\n{init_log}",
            db_env.display()
        )
    })?;
    ensure!(
        meta.permissions().mode() & 0o777 == 0o440,
        "db.env mode {:o}, want 0440",
        meta.permissions().mode() & 0o777
    );
    let (user, pass) = parse_env_file(&std::fs::read_to_string(&db_env)?);
    ensure!(
        !user.is_empty() && !pass.is_empty(),
        "db.env lacks DB_USER/DB_PASS"
    );
    log(format!(
        "db.env rendered (mode 0440) for database user {user}"
    ));
    match psql(&user, &pass, "SELECT 1").await? {
        Ok(out) => ensure!(out == "1", "SELECT 1 returned {out:?}"),
        Err(e) => bail!("the rendered credentials do not log in: {e}"),
    }
    Ok((user, pass, init_log))
}

/// Runs containers of a Pod the way a kubelet would: the container's exact command and args,
/// its env (fieldRefs resolved), its volume mounts (emptyDir = a host directory shared by the
/// containers of this runner; projected service-account token = a TokenRequest bound to the
/// Pod, plus the CA and namespace), its user and group, in a private mount namespace
/// (tests/e2e/fake-kubelet.sh). The image is played by binding `vault`/`bao` under /e2e-bin.
pub struct FakeKubelet {
    pub client: Client,
    pub pod: Pod,
    pub dir: PathBuf,
    /// pod IP / host IP for the downward API
    pub ip: String,
}

pub struct Running {
    pub child: tokio::process::Child,
    pub log: PathBuf,
    pub name: String,
}

impl Running {
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Wait for the container to exit, at most `timeout`: Some(exit status) or None if it is
    /// still running.
    pub async fn wait_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<std::process::ExitStatus>> {
        match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(st) => Ok(Some(st?)),
            Err(_) => Ok(None),
        }
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM the container's process group, then SIGKILL after 10 s.
    pub async fn stop(&mut self) -> Result<()> {
        if let Some(pid) = self.child.id() {
            let pgid = pid as i32;
            unsafe_kill(-pgid, libc::SIGTERM);
            if self.wait_timeout(Duration::from_secs(10)).await?.is_none() {
                unsafe_kill(-pgid, libc::SIGKILL);
                let _ = self.child.wait().await;
            }
        }
        Ok(())
    }
}

#[allow(unsafe_code)]
fn unsafe_kill(pid: i32, sig: i32) {
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe {
        libc::kill(pid, sig);
    }
}

impl FakeKubelet {
    pub fn new(client: &Client, pod: Pod) -> Result<FakeKubelet> {
        let base = match env("E2E_STATE") {
            Some(s) => PathBuf::from(s).join("kubelet"),
            None => std::env::temp_dir().join("vault-injector-e2e-kubelet"),
        };
        let dir = base.join(format!(
            "{}-{}",
            pod.metadata.namespace.as_deref().unwrap_or("ns"),
            pod.metadata.name.as_deref().unwrap_or("pod")
        ));
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(dir.join("volumes"))?;
        std::fs::create_dir_all(dir.join("roots"))?;
        Ok(FakeKubelet {
            client: client.clone(),
            pod,
            dir,
            ip: "127.0.0.1".into(),
        })
    }

    fn ns(&self) -> &str {
        self.pod.metadata.namespace.as_deref().unwrap_or("default")
    }

    /// The host directory behind a pod volume (materialised on first use).
    pub fn volume_dir(&self, name: &str) -> PathBuf {
        self.dir.join("volumes").join(name)
    }

    async fn materialize_volume(&self, name: &str) -> Result<PathBuf> {
        let path = self.volume_dir(name);
        if path.exists() {
            return Ok(path);
        }
        let vol = self
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.volumes.as_ref())
            .and_then(|v| v.iter().find(|v| v.name == name))
            .with_context(|| format!("volume {name} is mounted but not in spec.volumes"))?
            .clone();
        std::fs::create_dir_all(&path)?;
        if vol.empty_dir.is_some() {
            // kubelet makes emptyDir volumes world-writable
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777))?;
        } else if let Some(p) = &vol.projected {
            for src in p.sources.as_deref().unwrap_or_default() {
                if let Some(t) = &src.service_account_token {
                    let sa = self
                        .pod
                        .spec
                        .as_ref()
                        .and_then(|s| s.service_account_name.clone())
                        .unwrap_or_else(|| "default".into());
                    let aud = t.audience.clone().map(|a| vec![a]).unwrap_or_default();
                    let exp = t.expiration_seconds.unwrap_or(3607).max(600);
                    let tok =
                        token_request(&self.client, self.ns(), &sa, aud, exp, Some(&self.pod))
                            .await?;
                    write_file(&path.join(&t.path), tok.as_bytes())?;
                }
                if let Some(cm) = &src.config_map {
                    let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), self.ns());
                    let cm_name = cm.name.clone();
                    let obj = poll(
                        &format!("configmap {cm_name}"),
                        Duration::from_secs(60),
                        || {
                            let api = api.clone();
                            let cm_name = cm_name.clone();
                            async move { Ok(api.get_opt(&cm_name).await?) }
                        },
                    )
                    .await?;
                    let data = obj.data.unwrap_or_default();
                    for item in cm.items.as_deref().unwrap_or_default() {
                        let v = data
                            .get(&item.key)
                            .with_context(|| format!("configmap {cm_name} has no {}", item.key))?;
                        write_file(&path.join(&item.path), v.as_bytes())?;
                    }
                    if cm.items.is_none() {
                        for (k, v) in data {
                            write_file(&path.join(k), v.as_bytes())?;
                        }
                    }
                }
                if let Some(d) = &src.downward_api {
                    for item in d.items.as_deref().unwrap_or_default() {
                        let f = item
                            .field_ref
                            .as_ref()
                            .context("downwardAPI item without fieldRef")?;
                        let v = self.field_ref(&f.field_path)?;
                        write_file(&path.join(&item.path), v.as_bytes())?;
                    }
                }
                if let Some(s) = &src.secret {
                    self.write_secret(&path, &s.name, s.items.as_deref())
                        .await?;
                }
            }
        } else if let Some(s) = &vol.secret {
            let n = s
                .secret_name
                .clone()
                .context("secret volume without secretName")?;
            self.write_secret(&path, &n, s.items.as_deref()).await?;
        } else if let Some(cm) = &vol.config_map {
            let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), self.ns());
            let obj = api.get(&cm.name).await?;
            for (k, v) in obj.data.unwrap_or_default() {
                write_file(&path.join(k), v.as_bytes())?;
            }
        } else {
            bail!(
                "volume {name}: only emptyDir, projected, secret and configMap volumes are supported"
            );
        }
        Ok(path)
    }

    async fn write_secret(
        &self,
        path: &Path,
        name: &str,
        items: Option<&[k8s_openapi::api::core::v1::KeyToPath]>,
    ) -> Result<()> {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), self.ns());
        let data: BTreeMap<String, Vec<u8>> = api
            .get(name)
            .await?
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.0))
            .collect();
        match items {
            Some(items) => {
                for it in items {
                    let v = data
                        .get(&it.key)
                        .with_context(|| format!("secret {name} has no {}", it.key))?;
                    write_file(&path.join(&it.path), v)?;
                }
            }
            None => {
                for (k, v) in data {
                    write_file(&path.join(k), &v)?;
                }
            }
        }
        Ok(())
    }

    fn field_ref(&self, path: &str) -> Result<String> {
        let md = &self.pod.metadata;
        Ok(match path {
            "metadata.namespace" => self.ns().to_string(),
            "metadata.name" => md.name.clone().unwrap_or_default(),
            "metadata.uid" => md.uid.clone().unwrap_or_default(),
            "spec.serviceAccountName" => self
                .pod
                .spec
                .as_ref()
                .and_then(|s| s.service_account_name.clone())
                .unwrap_or_else(|| "default".into()),
            "spec.nodeName" => "fake-kubelet".into(),
            "status.hostIP" | "status.podIP" | "status.hostIPs" | "status.podIPs" => {
                self.ip.clone()
            }
            other => {
                if let Some(k) = other
                    .strip_prefix("metadata.annotations['")
                    .and_then(|s| s.strip_suffix("']"))
                {
                    md.annotations
                        .as_ref()
                        .and_then(|a| a.get(k))
                        .cloned()
                        .unwrap_or_default()
                } else if let Some(k) = other
                    .strip_prefix("metadata.labels['")
                    .and_then(|s| s.strip_suffix("']"))
                {
                    md.labels
                        .as_ref()
                        .and_then(|a| a.get(k))
                        .cloned()
                        .unwrap_or_default()
                } else {
                    bail!("fieldRef {other} is not supported by the fake kubelet")
                }
            }
        })
    }

    /// The container's environment, as the kubelet would build it.
    async fn container_env(&self, c: &Container) -> Result<Vec<(String, String)>> {
        let (url, _) = cluster_url_and_ca().await?;
        let hostport = url.trim_start_matches("https://").to_string();
        let (host, port) = hostport.rsplit_once(':').unwrap_or((&hostport, "443"));
        // image defaults (the vault/openbao image sets PATH and HOME), then the kubelet's own
        let mut env: Vec<(String, String)> = vec![
            (
                "PATH".into(),
                "/e2e-bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            ),
            ("HOME".into(), "/home/vault".into()),
            (
                "HOSTNAME".into(),
                self.pod.metadata.name.clone().unwrap_or_default(),
            ),
            ("KUBERNETES_SERVICE_HOST".into(), host.to_string()),
            ("KUBERNETES_SERVICE_PORT".into(), port.to_string()),
            ("KUBERNETES_SERVICE_PORT_HTTPS".into(), port.to_string()),
        ];
        for e in c.env.as_deref().unwrap_or_default() {
            let value = if let Some(v) = &e.value {
                expand_vars(v, &env)
            } else if let Some(vf) = &e.value_from {
                if let Some(f) = &vf.field_ref {
                    self.field_ref(&f.field_path)?
                } else if let Some(s) = &vf.secret_key_ref {
                    let api: Api<Secret> = Api::namespaced(self.client.clone(), self.ns());
                    let sec = api.get(&s.name).await?;
                    let b = sec
                        .data
                        .unwrap_or_default()
                        .get(&s.key)
                        .map(|b| b.0.clone())
                        .unwrap_or_default();
                    String::from_utf8(b)?
                } else if let Some(cm) = &vf.config_map_key_ref {
                    let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), self.ns());
                    api.get(&cm.name)
                        .await?
                        .data
                        .unwrap_or_default()
                        .get(&cm.key)
                        .cloned()
                        .unwrap_or_default()
                } else if vf.resource_field_ref.is_some() {
                    "0".to_string()
                } else {
                    bail!("env {} has an unsupported valueFrom", e.name)
                }
            } else {
                String::new()
            };
            env.retain(|(k, _)| k != &e.name);
            env.push((e.name.clone(), value));
        }
        Ok(env)
    }

    /// Start container `name` of the Pod (init or regular). Its output goes to a log file.
    pub async fn start(&self, name: &str) -> Result<Running> {
        let c = container(&self.pod, name)
            .with_context(|| {
                format!(
                    "the pod has no container {name}: {}",
                    pod_summary(&self.pod)
                )
            })?
            .clone();
        let kubelet = env("E2E_FAKE_KUBELET").unwrap_or_else(|| {
            concat!(env!("CARGO_MANIFEST_DIR"), "/../fake-kubelet.sh").to_string()
        });
        let vault = env_req("E2E_VAULT")?;
        let env_vars = self.container_env(&c).await?;
        let mut args: Vec<String> = Vec::new();
        // user and group: container securityContext, else pod securityContext, else root
        let psc = self
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.security_context.clone())
            .unwrap_or_default();
        let csc = c.security_context.clone().unwrap_or_default();
        let uid = csc.run_as_user.or(psc.run_as_user);
        let gid = csc.run_as_group.or(psc.run_as_group).or(uid.map(|_| 0));
        if let Some(uid) = uid {
            args.push("--user".into());
            args.push(format!("{uid}:{}", gid.unwrap_or(0)));
        }
        if csc.allow_privilege_escalation == Some(false) {
            args.push("--no-new-privs".into());
        }
        if csc.read_only_root_filesystem == Some(true) {
            args.push("--read-only-root".into());
        }
        args.push("--roots-dir".into());
        args.push(self.dir.join("roots").display().to_string());
        if let Some(w) = &c.working_dir {
            args.push("--workdir".into());
            args.push(w.clone());
        }
        for m in c.volume_mounts.as_deref().unwrap_or_default() {
            let mut src = self.materialize_volume(&m.name).await?;
            if let Some(sp) = m.sub_path.as_deref().filter(|s| !s.is_empty()) {
                src = src.join(sp);
                if !src.exists() {
                    std::fs::create_dir_all(&src)?;
                    std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o777))?;
                }
            }
            let ro = if m.read_only == Some(true) { ":ro" } else { "" };
            args.push("--bind".into());
            args.push(format!("{}:{}{ro}", src.display(), m.mount_path));
        }
        for b in ["vault", "bao"] {
            args.push("--bind".into());
            args.push(format!("{vault}:/e2e-bin/{b}:ro"));
        }
        args.push("--".into());
        let command = c.command.clone().unwrap_or_default();
        ensure!(
            !command.is_empty(),
            "container {name} has no command (the image entrypoint is not modelled)"
        );
        for a in command.iter().chain(c.args.as_deref().unwrap_or_default()) {
            args.push(expand_vars(a, &env_vars));
        }
        let log_path = self.dir.join(format!("{name}.log"));
        let logf = std::fs::File::create(&log_path)?;
        log(format!(
            "fake kubelet: starting container {name} of pod {}/{} (log {})",
            self.ns(),
            self.pod.metadata.name.as_deref().unwrap_or("?"),
            log_path.display()
        ));
        let mut cmd = std::process::Command::new(&kubelet);
        cmd.args(&args)
            .env_clear()
            .envs(env_vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(logf.try_clone()?)
            .stderr(logf)
            .process_group(0);
        let child = tokio::process::Command::from(cmd)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {kubelet}"))?;
        Ok(Running {
            child,
            log: log_path,
            name: name.to_string(),
        })
    }
}

fn write_file(path: &Path, data: &[u8]) -> Result<()> {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p)?;
    }
    std::fs::write(path, data)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))?;
    Ok(())
}

/// Kubernetes `$(VAR)` expansion of command, args and env values (`$$` escapes).
pub fn expand_vars(s: &str, env: &[(String, String)]) -> String {
    let mut out = String::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' && i + 1 < b.len() {
            if b[i + 1] == b'$' {
                out.push('$');
                i += 2;
                continue;
            }
            if b[i + 1] == b'('
                && let Some(end) = s[i + 2..].find(')')
                && let Some((_, v)) = env.iter().rev().find(|(k, _)| k == &s[i + 2..i + 2 + end])
            {
                out.push_str(v);
                i += 2 + end + 1;
                continue;
            }
        }
        let ch = s[i..].chars().next().unwrap_or('\0');
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Beyond upstream (issue 8): restarting the injector with opt-in settings, and extra RBAC for
// its service account (tests/beyond_io.rs)

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
    fn expands_kubernetes_vars_not_shell_vars() {
        let env = vec![("NAMESPACE".to_string(), "orders".to_string())];
        assert_eq!(
            expand_vars("https://vault.$(NAMESPACE).svc", &env),
            "https://vault.orders.svc"
        );
        assert_eq!(expand_vars(AGENT_ARGS, &env), AGENT_ARGS);
        assert_eq!(
            expand_vars("$$(NAMESPACE) $(UNKNOWN)", &env),
            "$(NAMESPACE) $(UNKNOWN)"
        );
    }

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
