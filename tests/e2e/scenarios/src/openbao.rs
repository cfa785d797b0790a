//! OpenBao and PostgreSQL: the `bao` CLI and `psql` as the scenarios run them, Kubernetes auth,
//! the orders database role, and the check that rendered credentials log in.

use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use base64::Engine as _;
use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleRef, Subject};
use kube::api::PostParams;
use kube::{Api, Client};
use serde_json::{Value, json};

use crate::harness::{env, env_req, log, suffix};
use crate::kubelet::FakeKubelet;

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
