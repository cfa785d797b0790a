//! `node-env-exec`: secrets as environment variables in a real pod. The database walkthrough's
//! app in its environment-variable form (`examples/orders-app-env.yaml`): `DB_USER` and
//! `DB_PASSWORD` from `database/creds/orders-app` (here a short-lived role: TTL 30 s, max TTL
//! 90 s). The app container runs the `bao` binary that `vault-agent-exec-init` copied into the
//! pod; the agent starts the app's shell loop with the two variables, and the loop logs in to
//! PostgreSQL with them every 2 seconds.
//!
//! Shown: the two templates share one lease (one lease for the pod, and the user and password
//! log in together); the password is in the supervised process's environment only (not in the
//! agent's own, not in any file of the container, of its volumes, or anywhere in the node's
//! state directory); after `sys/leases/revoke-prefix` the old user is refused and the agent
//! restarts the process, which logs in as a new user; at the max TTL the agent replaces the
//! lease and restarts the process again, and the previous user stops working. The container
//! itself is never restarted. The restart sequences are printed as `node-figure:` lines.

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use vault_injector_e2e::node::*;
use vault_injector_e2e::*;

const EXAMPLE: &str = include_str!("../../../../../examples/orders-app-env.yaml");
const NS: &str = "orders-env";
const ROLE: &str = "orders-app";
const TTL: &str = "30s";
const MAX_TTL: &str = "90s";
const MAX_TTL_SECS: u64 = 90;
/// After a revocation the agent finds out at its next renewal, before the 30 s TTL runs out;
/// then it renders, waits 2 s for more changes, and restarts the process.
const REVOCATION_BOUND: Duration = Duration::from_secs(45);

/// The example with this cluster's image and PostgreSQL address in place of the placeholders.
fn example_for_this_cluster() -> Result<String> {
    node::example_for_this_cluster(
        "examples/orders-app-env.yaml",
        EXAMPLE,
        "\n          imagePullPolicy: IfNotPresent",
    )
}

/// One start of the supervised process, from its `<time> pid <pid> started as <user>` line.
#[derive(Debug, Clone, PartialEq)]
struct Start {
    at: String,
    pid: String,
    user: String,
}

/// Every start the app logged, in order.
fn starts(log: &str) -> Vec<Start> {
    log.lines()
        .filter_map(|line| {
            let (head, user) = line.split_once(" started as ")?;
            let mut words = head.split_whitespace();
            let at = words.next()?.to_owned();
            (words.next()? == "pid").then_some(())?;
            let pid = words.next()?.to_owned();
            Some(Start {
                at,
                pid,
                user: user.trim().to_owned(),
            })
        })
        .collect()
}

/// The time at the start of the first log line holding `needle`.
fn time_of(log: &str, needle: &str) -> String {
    log.lines()
        .find(|l| l.contains(needle))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or("?")
        .to_owned()
}

/// The current time as the app writes it (`date -u +%FT%TZ`).
fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        (rest / 60) % 60,
        rest % 60
    )
}

/// Waits until the app has logged `n` starts; returns them and the whole log.
async fn wait_starts(pod: &str, n: usize, timeout: Duration) -> Result<(Vec<Start>, String)> {
    poll(
        &format!("start number {n} of the supervised process"),
        timeout,
        || async move {
            let log = logs(NS, pod, "app").await;
            let s = starts(&log);
            Ok((s.len() >= n).then_some((s, log)))
        },
    )
    .await
}

/// `DB_USER` and `DB_PASSWORD` as the supervised process has them, read from its environment
/// (`/proc/<pid>/environ`; `kubectl exec` runs as the container's uid, as the process does).
async fn process_credentials(pod: &str) -> Result<(String, String)> {
    let out = exec(
        NS,
        pod,
        "app",
        &[
            "sh",
            "-c",
            r#"for f in /proc/[0-9]*/environ; do
                 if tr '\0' '\n' < "$f" 2>/dev/null | grep -q '^DB_PASSWORD='; then
                   tr '\0' '\n' < "$f" | grep -E '^DB_(USER|PASSWORD)='; exit 0
                 fi
               done; exit 1"#,
        ],
    )
    .await
    .context("no process in the app container has DB_PASSWORD in its environment")?;
    let get = |k: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or_default()
            .to_owned()
    };
    let (user, pass) = (get("DB_USER"), get("DB_PASSWORD"));
    ensure!(
        !user.is_empty() && !pass.is_empty(),
        "the process's environment lacks DB_USER or DB_PASSWORD"
    );
    Ok((user, pass))
}

/// The password is in no file: not in the container's own filesystem, its volumes (the exec
/// volume, the token) or its writable layer (searched inside the container, which sees them
/// all), and nowhere in what the node keeps of its pods (containerd's snapshots and state, the
/// kubelet's pod volumes, the pods' logs), searched from the host when the runner has them. The password goes to
/// the container on stdin, so that it appears in no command line either.
async fn assert_in_no_file(pod: &str, password: &str) -> Result<()> {
    let found = kubectl(
        &[
            "-n",
            NS,
            "exec",
            "-i",
            pod,
            "-c",
            "app",
            "--",
            "sh",
            "-c",
            r#"read -r pw; for d in /*; do
                 case "$d" in /proc|/sys|/dev) continue ;; esac
                 grep -rlF -- "$pw" "$d" 2>/dev/null
               done; echo searched"#,
        ],
        Some(&format!("{password}\n")),
    )
    .await?;
    ensure!(
        found.trim() == "searched",
        "files in the app container hold the password: {found}"
    );
    let mounts = exec(NS, pod, "app", &["ls", "-l", "/vault/exec"]).await?;
    log(format!("the exec volume holds:\n{}", mounts.trim_end()));
    let Some(state) = env("E2E_STATE") else {
        log("E2E_STATE is not set: the node's state directory is not searched");
        return Ok(());
    };
    // The kubelet's pod directories (every volume), containerd's root and state (the image
    // snapshots and the containers' writable layers) and the pods' logs.
    let dirs: Vec<String> = ["kubelet", "containerd", "podlogs"]
        .iter()
        .map(|d| format!("{state}/{d}"))
        .filter(|d| std::path::Path::new(d).is_dir())
        .collect();
    ensure!(
        !dirs.is_empty(),
        "no kubelet or containerd directory under {state}"
    );
    let out = tokio::process::Command::new("grep")
        .args(["-rlF", "-D", "skip", "-e", password])
        .args(&dirs)
        .output()
        .await?;
    let hits = String::from_utf8_lossy(&out.stdout);
    ensure!(
        hits.trim().is_empty(),
        "files of the node hold the password:\n{hits}"
    );
    log(format!(
        "the password is in no file of the container, nor under {}",
        dirs.join(", ")
    ));
    Ok(())
}

#[tokio::test]
async fn node_env_exec() -> Result<()> {
    let client = client().await?;
    let ns = TestNs::create(&client, NS, true).await?;

    // The operator's side: the walkthrough's database role, short-lived for this scenario, and
    // an auth role for this namespace. No lease of the role is left from earlier scenarios.
    configure_kubernetes_auth(&client).await?;
    database_role(ROLE, TTL, MAX_TTL).await?;
    bind_orders_role("orders-app-env", NS).await?;
    bao(
        &[
            "lease",
            "revoke",
            "-prefix",
            &format!("database/creds/{ROLE}"),
        ],
        None,
    )
    .await?;

    // The user's side.
    kubectl(&["apply", "-f", "-"], Some(&example_for_this_cluster()?)).await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let p = first_pod(&pods, "app=orders-app", Duration::from_secs(60)).await?;
    let name = p.metadata.name.clone().context("pod without a name")?;
    let spec = p.spec.clone().context("pod without a spec")?;
    let inits: Vec<&str> = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| c.name.as_str())
        .collect();
    let containers: Vec<&str> = spec.containers.iter().map(|c| c.name.as_str()).collect();
    ensure!(
        inits == ["vault-agent-exec-init"] && containers == ["app"],
        "unexpected containers: init {inits:?}, app {containers:?}"
    );
    let command = spec.containers[0].command.clone().unwrap_or_default();
    ensure!(
        command
            == [
                "/vault/exec/bao",
                "agent",
                "-config=/vault/exec/config.json"
            ],
        "the app container runs {command:?}"
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

    // The first process: logged in, with both variables from one lease.
    let (first, _) = wait_starts(&name, 1, Duration::from_secs(90)).await?;
    let first = first[0].clone();
    ensure!(
        first.user.starts_with("v-"),
        "DB_USER {:?} is not a user OpenBao created",
        first.user
    );
    let log1 = wait_log(
        NS,
        &name,
        "app",
        &format!("connected as {}", first.user),
        Duration::from_secs(60),
    )
    .await?;
    let leases = lease_ids(&format!("database/creds/{ROLE}/")).await?;
    ensure!(
        leases.len() == 1,
        "two templates of one secret should share one lease; the role has {} leases: {leases:?}",
        leases.len()
    );
    let (user1, pass1) = process_credentials(&name).await?;
    ensure!(
        user1 == first.user,
        "the process's DB_USER {user1} is not the user it logged"
    );
    ensure!(
        can_login(&user1, &pass1).await?,
        "the variables do not log in"
    );
    let agent_env = exec(
        NS,
        &name,
        "app",
        &[
            "sh",
            "-c",
            "tr '\\0' '\\n' < /proc/1/environ; echo; tr '\\0' ' ' < /proc/1/cmdline",
        ],
    )
    .await?;
    ensure!(
        !agent_env.contains("DB_PASSWORD") && agent_env.contains("/vault/exec/bao agent"),
        "PID 1 should be the agent, without the variables:\n{agent_env}"
    );
    assert_in_no_file(&name, &pass1).await?;
    figure(format!(
        "env-exec: process pid {} started {} as {user1} (one lease: {}), connected at {}",
        first.pid,
        first.at,
        leases[0],
        time_of(&log1, &format!("connected as {user1}"))
    ));

    // Revocation: the old user is refused at once, the agent restarts the process with new
    // credentials.
    let revoked_at = utc_now();
    bao(
        &[
            "write",
            "-f",
            &format!("sys/leases/revoke-prefix/database/creds/{ROLE}"),
        ],
        None,
    )
    .await?;
    let revoked = std::time::Instant::now();
    log(format!(
        "revoked every lease of database/creds/{ROLE} at {revoked_at}"
    ));
    wait_login_refused(&user1, &pass1, Duration::from_secs(10)).await?;
    let (all, log2) = wait_starts(&name, 2, REVOCATION_BOUND + Duration::from_secs(30)).await?;
    let restarted = revoked.elapsed();
    let second = all[1].clone();
    ensure!(
        second.user != user1 && second.pid != first.pid,
        "the restarted process {second:?} is not a new process with a new user"
    );
    let log2 = if log2.contains(&format!("connected as {}", second.user)) {
        log2
    } else {
        wait_log(
            NS,
            &name,
            "app",
            &format!("connected as {}", second.user),
            Duration::from_secs(30),
        )
        .await?
    };
    let (user2, pass2) = process_credentials(&name).await?;
    ensure!(user2 == second.user, "the new process's DB_USER is {user2}");
    ensure!(
        !can_login(&user1, &pass1).await?,
        "the revoked user {user1} can still log in"
    );
    figure(format!(
        "env-exec restart on revocation: old user {user1} (pid {}); revoked at {revoked_at}; old process stopping at {}; new process pid {} started at {} as {user2} ({:.1}s after the revocation); connected as {user2} at {}; {user1} refused",
        first.pid,
        time_of(&log2, &format!("pid {} stopping", first.pid)),
        second.pid,
        second.at,
        restarted.as_secs_f64(),
        time_of(&log2, &format!("connected as {user2}"))
    ));
    if restarted > REVOCATION_BOUND {
        bail!(
            "the process was restarted {:.1}s after the revocation, over the bound of {}s",
            restarted.as_secs_f64(),
            REVOCATION_BOUND.as_secs()
        );
    }

    // The max TTL: the agent replaces the lease before it ends and restarts the process again;
    // the previous user stops working when its lease ends.
    let (all, log3) = wait_starts(&name, 3, Duration::from_secs(MAX_TTL_SECS + 45)).await?;
    let third = all[2].clone();
    ensure!(
        third.user != user2 && third.pid != second.pid,
        "the process restarted at the max TTL {third:?} is not a new process with a new user"
    );
    let log3 = if log3.contains(&format!("connected as {}", third.user)) {
        log3
    } else {
        wait_log(
            NS,
            &name,
            "app",
            &format!("connected as {}", third.user),
            Duration::from_secs(30),
        )
        .await?
    };
    wait_login_refused(&user2, &pass2, Duration::from_secs(MAX_TTL_SECS + 30)).await?;
    let refused2 = utc_now();
    figure(format!(
        "env-exec restart at the max TTL ({MAX_TTL}): old user {user2} (pid {}, started {}); old process stopping at {}; new process pid {} started at {} as {}; connected at {}; {user2} refused by {refused2}",
        second.pid,
        second.at,
        time_of(&log3, &format!("pid {} stopping", second.pid)),
        third.pid,
        third.at,
        third.user,
        time_of(&log3, &format!("connected as {}", third.user))
    ));
    let (_, pass3) = process_credentials(&name).await?;
    assert_in_no_file(&name, &pass3).await?;

    // Those were restarts of the process, not of the container.
    let p = pods.get(&name).await?;
    let restarts = p
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|cs| cs.first())
        .map_or(-1, |c| c.restart_count);
    ensure!(
        restarts == 0,
        "the app container was restarted {restarts} times"
    );
    let agent_log: Vec<String> = log3
        .lines()
        .filter(|l| l.contains("agent.exec.server"))
        .map(str::to_owned)
        .collect();
    log(format!(
        "the agent's exec server said:\n{}",
        tail(&agent_log.join("\n"), 12)
    ));

    ns.delete().await;
    // The walkthrough's role as the other scenarios expect it.
    configure_orders_database().await?;
    Ok(())
}
