//! Dynamic database credentials over time, in a running pod whose app connects to PostgreSQL
//! every 2 seconds with whatever `/vault/secrets/db.env` holds at that moment.
//!
//! - `node-lease-renewal`: a database role with a short TTL and a short max TTL. The sidecar
//!   agent renews its lease (its expire time, read from OpenBao's lease API, moves forward);
//!   when the max TTL approaches it renders new credentials, the app logs in as the new user,
//!   and the old user stops working once its lease has ended.
//! - `node-revocation`: revoking every lease of the role kills the current login at once, and
//!   the agent renders fresh, working credentials within `REVOCATION_BOUND`.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};
use vault_injector_e2e::node::*;
use vault_injector_e2e::*;

/// The renewal scenario's database role: renewed every ~20 s, replaced before 2 minutes.
const RENEW_TTL: &str = "30s";
const RENEW_MAX_TTL: &str = "120s";
const RENEW_MAX_TTL_SECS: u64 = 120;

/// After a revocation the agent finds out at its next renewal of the lease, which it attempts
/// before the TTL (30 s) runs out: fresh credentials are due within that TTL, plus the time to
/// fetch and render them and the app's next connection (2 s loop).
const REVOKE_TTL: &str = "30s";
const REVOCATION_BOUND: Duration = Duration::from_secs(45);

/// An opted-in namespace with service account `app`, an auth role for it that reads
/// `database/creds/<db_role>`, and a running pod `app` whose db.env comes from that role.
/// Returns once the sidecar has rendered db.env (the init container's credentials replaced).
async fn db_pod(client: &kube::Client, prefix: &str, db_role: &str) -> Result<TestNs> {
    configure_kubernetes_auth(client).await?;
    let ns = TestNs::create_unique(client, prefix, true).await?;
    ns.create_service_account("app").await?;
    let auth_role = format!("{prefix}-{}", ns.name);
    bind_role(&auth_role, &ns.name, "app", db_role).await?;
    let pods = ns.pods();
    create_pod(
        &pods,
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "app", "annotations": {
                "vault.hashicorp.com/agent-inject": "true",
                "vault.hashicorp.com/role": auth_role,
                "vault.hashicorp.com/agent-inject-secret-db.env": format!("database/creds/{db_role}"),
                "vault.hashicorp.com/agent-inject-template-db.env": format!(
                    "{{{{- with secret \"database/creds/{db_role}\" -}}}}\nDB_USER={{{{ .Data.username }}}}\nDB_PASS={{{{ .Data.password }}}}\n{{{{- end }}}}\n"
                ),
                "vault.hashicorp.com/agent-inject-perms-db.env": "0440",
            }},
            "spec": {"serviceAccountName": "app", "containers": [db_app_container()?]},
        }),
    )
    .await?;
    wait_pod(
        &pods,
        "app",
        "running and ready",
        Duration::from_secs(180),
        running_and_ready,
    )
    .await?;
    wait_log(
        &ns.name,
        "app",
        "vault-agent",
        "db.env",
        Duration::from_secs(60),
    )
    .await?;
    Ok(ns)
}

/// The lease behind the credentials the sidecar rendered last: of the role's live leases, the
/// one issued last (the init container's lease, issued before, is left to expire).
async fn newest_lease(db_role: &str) -> Result<(String, Value)> {
    let mut newest: Option<(String, Value)> = None;
    for id in lease_ids(&format!("database/creds/{db_role}/")).await? {
        let out = bao(
            &[
                "write",
                "-format=json",
                "sys/leases/lookup",
                &format!("lease_id={id}"),
            ],
            None,
        )
        .await?;
        let v: Value = serde_json::from_str(&out)?;
        let issued = v["data"]["issue_time"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let newer = newest.as_ref().is_none_or(|(_, n)| {
            issued.as_str() > n["data"]["issue_time"].as_str().unwrap_or_default()
        });
        if newer {
            newest = Some((id, v));
        }
    }
    newest.with_context(|| format!("no lease under database/creds/{db_role}/"))
}

/// Poll db.env until it holds another user than `old`; returns the new credentials.
async fn wait_new_user(ns: &str, old: &str, timeout: Duration) -> Result<(String, String)> {
    poll(
        &format!("db.env to hold other credentials than {old}"),
        timeout,
        || async move {
            let (user, pass) = db_env_in_pod(ns, "app").await?;
            Ok((user != old).then_some((user, pass)))
        },
    )
    .await
}

#[tokio::test]
async fn node_lease_renewal() -> Result<()> {
    let client = client().await?;
    let db_role = "orders-renew";
    database_role(db_role, RENEW_TTL, RENEW_MAX_TTL).await?;
    let ns = db_pod(&client, "node-renew", db_role).await?;
    let t0 = Instant::now();
    let (user1, pass1) = db_env_in_pod(&ns.name, "app").await?;
    let (lease, info) = newest_lease(db_role).await?;
    let issued = info["data"]["issue_time"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let expire0 = lease_expire_time(&lease).await?;
    log(format!(
        "{user1}: lease {lease}, issued {issued}, expires {expire0}"
    ));
    wait_log(
        &ns.name,
        "app",
        "app",
        &format!("connected as {user1}"),
        Duration::from_secs(30),
    )
    .await?;

    // Renewal: the expire time moves forward while the user stays the same.
    let expire1 = poll(
        "the sidecar to renew its lease",
        Duration::from_secs(60),
        || {
            let (lease, expire0) = (lease.clone(), expire0.clone());
            async move {
                let e = lease_expire_time(&lease).await?;
                Ok((e > expire0).then_some(e))
            }
        },
    )
    .await?;
    let (still, _) = db_env_in_pod(&ns.name, "app").await?;
    ensure!(
        still == user1,
        "the credentials changed at the first renewal ({user1} -> {still})"
    );
    figure(format!(
        "lease renewal: {lease} expire time {expire0} -> {expire1} at +{}s, user unchanged",
        t0.elapsed().as_secs()
    ));

    // Near the max TTL: new credentials, the app moves to them.
    let (user2, pass2) = wait_new_user(
        &ns.name,
        &user1,
        Duration::from_secs(RENEW_MAX_TTL_SECS + 30),
    )
    .await?;
    let rotated = t0.elapsed();
    ensure!(
        can_login(&user2, &pass2).await?,
        "the new credentials ({user2}) do not log in"
    );
    wait_log(
        &ns.name,
        "app",
        "app",
        &format!("connected as {user2}"),
        Duration::from_secs(30),
    )
    .await?;
    figure(format!(
        "max TTL {RENEW_MAX_TTL}: db.env re-rendered {user1} -> {user2} at +{}s after the first read",
        rotated.as_secs()
    ));

    // The old user works until its lease ends, then never again.
    wait_login_refused(&user1, &pass1, Duration::from_secs(RENEW_MAX_TTL_SECS + 30)).await?;
    figure(format!(
        "old user {user1} refused at +{}s (its lease was issued at {issued})",
        t0.elapsed().as_secs()
    ));
    let app_log = logs(&ns.name, "app", "app").await;
    ensure!(
        app_log.contains(&format!("connected as {user2}")),
        "the app never connected as {user2}:\n{}",
        tail(&app_log, 20)
    );
    ns.delete().await;
    Ok(())
}

#[tokio::test]
async fn node_revocation() -> Result<()> {
    let client = client().await?;
    let db_role = "orders-revoke";
    database_role(db_role, REVOKE_TTL, "1h").await?;
    let ns = db_pod(&client, "node-revoke", db_role).await?;
    let (user1, pass1) = db_env_in_pod(&ns.name, "app").await?;
    ensure!(
        can_login(&user1, &pass1).await?,
        "the rendered credentials ({user1}) do not log in"
    );
    wait_log(
        &ns.name,
        "app",
        "app",
        &format!("connected as {user1}"),
        Duration::from_secs(30),
    )
    .await?;

    bao(
        &[
            "lease",
            "revoke",
            "-prefix",
            &format!("database/creds/{db_role}"),
        ],
        None,
    )
    .await?;
    let revoked = Instant::now();
    log(format!("revoked every lease of database/creds/{db_role}"));
    wait_login_refused(&user1, &pass1, Duration::from_secs(10)).await?;
    let refused = revoked.elapsed();

    let (user2, pass2) =
        wait_new_user(&ns.name, &user1, REVOCATION_BOUND + Duration::from_secs(30)).await?;
    let rendered = revoked.elapsed();
    ensure!(
        can_login(&user2, &pass2).await?,
        "the credentials rendered after the revocation ({user2}) do not log in"
    );
    wait_log(
        &ns.name,
        "app",
        "app",
        &format!("connected as {user2}"),
        Duration::from_secs(30),
    )
    .await?;
    let app_back = revoked.elapsed();
    figure(format!(
        "revocation: old login refused after {:.1}s, new db.env ({user2}) after {:.1}s, app connected after {:.1}s (bound {}s)",
        refused.as_secs_f64(),
        rendered.as_secs_f64(),
        app_back.as_secs_f64(),
        REVOCATION_BOUND.as_secs()
    ));
    if rendered > REVOCATION_BOUND {
        bail!(
            "fresh credentials took {:.1}s after the revocation, over the stated bound of {}s",
            rendered.as_secs_f64(),
            REVOCATION_BOUND.as_secs()
        );
    }
    ns.delete().await;
    Ok(())
}
