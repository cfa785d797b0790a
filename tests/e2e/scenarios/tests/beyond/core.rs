//! Beyond upstream, with a real kube-apiserver and OpenBao:
//!
//! - `b1`: a namespace enforcing the `restricted` Pod Security profile admits an injected pod
//!   only when the agents carry `seccompProfile: RuntimeDefault`
//!   (`agent-seccomp-runtime-default`); without it PodSecurity refuses the injected pod and
//!   names seccompProfile and the agent containers.
//! - `b2`: `agent-native-sidecar`: the apiserver stores the agent as an init container with
//!   `restartPolicy: Always` (it validates that field); the fake kubelet runs it for real against
//!   OpenBao, and its startup probe command fails before the template is rendered and passes
//!   after, while the agent keeps running.
//! - `b3`: a configuration over the kernel's 128 KiB limit on one environment string: the pod is
//!   stored with `VAULT_CONFIG` split over several variables, and the injected init container,
//!   run for real (its exact command and env, a real `sh`, the real agent), rebuilds the exact
//!   configuration and renders every template.
//!
//! Included from scenarios.rs (`mod beyond_core`), so the tests are named `beyond_core::b...`.

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use base64::Engine as _;
use k8s_openapi::api::core::v1::{Container, Namespace, Pod};
use kube::Api;
use kube::api::PostParams;
use serde_json::{Value, json};
use vault_injector_e2e::*;

const MAX_ARG_STRLEN: usize = 131_072;

/// b2 and b3 act as the kubelet and log in to OpenBao, so they need the local harness; as in
/// s5, only `E2E_NO_WALKTHROUGH=1` (kind) leaves them out, a missing variable is a failure.
fn harness_available() -> bool {
    if env("E2E_NO_WALKTHROUGH").as_deref() == Some("1") {
        eprintln!("not run: E2E_NO_WALKTHROUGH=1 (needs the local harness)");
        return false;
    }
    let missing: Vec<_> = ["E2E_VAULT_ADDR", "E2E_VAULT_TOKEN", "E2E_VAULT"]
        .into_iter()
        .filter(|v| env(v).is_none())
        .collect();
    assert!(
        missing.is_empty(),
        "needs the local harness (missing {missing:?}): run tests/e2e/run.sh, or set E2E_NO_WALKTHROUGH=1"
    );
    true
}

/// A namespace opted in to injection, with extra labels set when it is created (PodSecurity
/// reads them from the namespace, so they must be there before the first pod).
async fn namespace_with_labels(
    client: &kube::Client,
    prefix: &str,
    labels: Value,
) -> Result<TestNs> {
    let name = format!("{prefix}-{}", suffix());
    let mut all = json!({
        "app.kubernetes.io/part-of": "vault-injector-e2e",
        INJECT_LABEL: "enabled",
    });
    for (k, v) in labels.as_object().context("labels")? {
        all[k] = v.clone();
    }
    let ns: Namespace = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": name, "labels": all},
    }))?;
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .with_context(|| format!("creating namespace {name}"))?;
    let t = TestNs {
        client: client.clone(),
        name,
    };
    t.wait_service_account("default").await?;
    log(format!("namespace {} ready with labels {all}", t.name));
    Ok(t)
}

/// A pod whose app container meets the `restricted` profile on its own: non-root, no privilege
/// escalation, every capability dropped, seccomp RuntimeDefault on the container (not on the
/// pod, which would cover the injected containers too).
fn restricted_pod(name: &str, annotations: Value) -> Result<Pod> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "annotations": annotations},
        "spec": {
            "securityContext": {"runAsNonRoot": true},
            "containers": [{
                "name": "app", "image": "registry.example/app:1.0",
                "command": ["sh", "-c", "sleep 3600"],
                "securityContext": {
                    "runAsUser": 1000,
                    "allowPrivilegeEscalation": false,
                    "capabilities": {"drop": ["ALL"]},
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
            }],
        },
    }))?)
}

#[tokio::test]
async fn b1_restricted_namespace_admits_injected_pod_only_with_seccomp_annotation() -> Result<()> {
    let client = client().await?;
    let ns = namespace_with_labels(
        &client,
        "restricted",
        json!({
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/enforce-version": "latest",
        }),
    )
    .await?;
    let pods = ns.pods();
    let base = json!({
        "vault.hashicorp.com/agent-inject": "true",
        "vault.hashicorp.com/role": "app",
        "vault.hashicorp.com/agent-inject-secret-config": "secret/data/app/config",
    });

    // Control: the app pod itself is compliant (injection off).
    let mut off = base.clone();
    off["vault.hashicorp.com/agent-inject"] = json!("false");
    pods.create(&PostParams::default(), &restricted_pod("plain", off)?)
        .await
        .context("the restricted-compliant app pod without injection must be admitted")?;

    // Without the annotation: upstream's agents lack a seccomp profile, PodSecurity refuses.
    let err = match pods
        .create(
            &PostParams::default(),
            &restricted_pod("no-seccomp", base.clone())?,
        )
        .await
    {
        Ok(p) => bail!(
            "an injected pod without seccomp was admitted into a restricted namespace: {}",
            pod_summary(&p)
        ),
        Err(e) => api_error_message(&e),
    };
    log(format!("refused as expected: {err}"));
    ensure!(
        err.contains("PodSecurity") && err.contains("restricted"),
        "the refusal is not PodSecurity's: {err}"
    );
    ensure!(
        err.contains("seccompProfile"),
        "the refusal does not name seccompProfile: {err}"
    );
    ensure!(
        err.contains("vault-agent-init") && err.contains("vault-agent"),
        "the refusal does not name the injected containers: {err}"
    );
    ensure!(
        !err.contains("\"app\""),
        "the app container was blamed too: {err}"
    );

    // With the annotation: admitted and injected, both agents with RuntimeDefault.
    let mut with = base.clone();
    with["vault.hashicorp.com/agent-seccomp-runtime-default"] = json!("true");
    let p = pods
        .create(&PostParams::default(), &restricted_pod("seccomp", with)?)
        .await
        .context("the injected pod with agent-seccomp-runtime-default must be admitted")?;
    log(pod_summary(&p));
    for name in ["vault-agent-init", "vault-agent"] {
        let c = container(&p, name).with_context(|| format!("no {name}: {}", pod_summary(&p)))?;
        let sc = c.security_context.clone().unwrap_or_default();
        let profile = sc.seccomp_profile.map(|s| s.type_);
        ensure!(
            profile.as_deref() == Some("RuntimeDefault"),
            "{name}: seccompProfile {profile:?}"
        );
        ensure!(
            sc.allow_privilege_escalation == Some(false) && sc.run_as_non_root == Some(true),
            "{name}: security context {:?}",
            c.security_context
        );
    }
    log("restricted namespace: injected pod admitted with seccomp RuntimeDefault, refused without");
    ns.delete().await;
    Ok(())
}

/// KV secret `secret/data/<path>` readable by a Kubernetes auth role bound to `sa` in `ns`.
async fn kv_role(
    client: &kube::Client,
    ns: &str,
    sa: &str,
    path: &str,
    data: &[&str],
) -> Result<()> {
    configure_kubernetes_auth(client).await?;
    let mounts: Value =
        serde_json::from_str(&bao(&["secrets", "list", "-format=json"], None).await?)?;
    if mounts.get("secret/").is_none() {
        bao(&["secrets", "enable", "-path=secret", "kv-v2"], None).await?;
    }
    let mut put = vec!["kv", "put", "-mount=secret", path];
    put.extend_from_slice(data);
    bao(&put, None).await?;
    let policy = format!("path \"secret/data/{path}\" {{\n  capabilities = [\"read\"]\n}}\n");
    bao(&["policy", "write", sa, "-"], Some(&policy)).await?;
    bao(
        &[
            "write",
            &format!("auth/kubernetes/role/{sa}"),
            &format!("bound_service_account_names={sa}"),
            &format!("bound_service_account_namespaces={ns}"),
            &format!("policies={sa}"),
            "token_ttl=1h",
        ],
        None,
    )
    .await?;
    Ok(())
}

fn pod_with_sa(name: &str, sa: &str, annotations: Value) -> Result<Pod> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "annotations": annotations},
        "spec": {
            "serviceAccountName": sa,
            "restartPolicy": "Never",
            "containers": [{
                "name": "app", "image": "registry.example/app:1.0",
                "command": ["sh", "-c", "cat /vault/secrets/*"],
            }],
        },
    }))?)
}

/// Runs `command` in container `of`'s mounts, user and env (the kubelet's exec probe).
async fn exec_in(kubelet: &FakeKubelet, of: &str, command: &[String]) -> Result<bool> {
    let mut c: Container = container(&kubelet.pod, of)
        .with_context(|| format!("no container {of}"))?
        .clone();
    c.name = format!("{of}-exec");
    c.command = Some(command.to_vec());
    c.args = None;
    c.restart_policy = None;
    c.startup_probe = None;
    let mut pod = kubelet.pod.clone();
    pod.spec.as_mut().context("spec")?.containers.push(c);
    let exec = FakeKubelet {
        client: kubelet.client.clone(),
        pod,
        dir: kubelet.dir.clone(),
        ip: kubelet.ip.clone(),
    };
    let mut run = exec.start(&format!("{of}-exec")).await?;
    match run.wait_timeout(Duration::from_secs(15)).await? {
        Some(st) => Ok(st.success()),
        None => {
            run.stop().await?;
            bail!("the exec in {of} did not finish: {}", run.log_text())
        }
    }
}

#[tokio::test]
async fn b2_native_sidecar_renders_before_its_startup_probe_passes() -> Result<()> {
    if !harness_available() {
        return Ok(());
    }
    let client = client().await?;
    let ns = TestNs::create_unique(&client, "native", true).await?;
    ns.create_service_account("native-app").await?;
    kv_role(
        &client,
        &ns.name,
        "native-app",
        "native/config",
        &["greeting=hello-native"],
    )
    .await?;

    let p = ns
        .pods()
        .create(
            &PostParams::default(),
            &pod_with_sa(
                "native",
                "native-app",
                json!({
                    "vault.hashicorp.com/agent-inject": "true",
                    "vault.hashicorp.com/role": "native-app",
                    "vault.hashicorp.com/agent-native-sidecar": "true",
                    "vault.hashicorp.com/agent-inject-secret-greeting.txt": "secret/data/native/config",
                    "vault.hashicorp.com/agent-inject-template-greeting.txt":
                        "{{ with secret \"secret/data/native/config\" }}greeting={{ .Data.data.greeting }}{{ end }}",
                }),
            )?,
        )
        .await
        .context("creating the native-sidecar pod")?;
    log(pod_summary(&p));
    let inits: Vec<&str> = init_containers(&p)
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    let apps: Vec<&str> = containers(&p).iter().map(|c| c.name.as_str()).collect();
    ensure!(inits == ["vault-agent"], "init containers {inits:?}");
    ensure!(apps == ["app"], "containers {apps:?}");
    let agent = container(&p, "vault-agent").context("no vault-agent")?;
    ensure!(
        agent.restart_policy.as_deref() == Some("Always"),
        "restartPolicy {:?}",
        agent.restart_policy
    );
    let probe = agent
        .startup_probe
        .as_ref()
        .and_then(|p| p.exec.as_ref())
        .and_then(|e| e.command.clone())
        .context("the native sidecar has no exec startup probe")?;
    log(format!("startup probe: {probe:?}"));
    ensure!(
        agent_config(agent)?["exit_after_auth"] == json!(false),
        "the native sidecar must keep running"
    );

    let kubelet = FakeKubelet::new(&client, p.clone())?;
    ensure!(
        !exec_in(&kubelet, "vault-agent", &probe).await?,
        "the startup probe passed before the agent ran"
    );
    log("startup probe fails before the agent has rendered anything");
    let mut agent_run = kubelet.start("vault-agent").await?;
    let passed = poll(
        "the native sidecar's startup probe to pass",
        Duration::from_secs(60),
        || {
            let kubelet = &kubelet;
            let probe = &probe;
            async move { Ok(exec_in(kubelet, "vault-agent", probe).await?.then_some(())) }
        },
    )
    .await;
    let out = agent_run.log_text();
    if let Err(e) = passed {
        agent_run.stop().await?;
        bail!("{e:#}; agent output:\n{out}");
    }
    let rendered =
        std::fs::read_to_string(kubelet.volume_dir("vault-secrets").join("greeting.txt"))?;
    ensure!(rendered == "greeting=hello-native", "rendered {rendered:?}");
    log("startup probe passes once greeting.txt is rendered");
    // Unlike an init container the agent keeps running: it is the pod's only agent.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let alive = agent_run.is_running();
    agent_run.stop().await?;
    ensure!(
        alive,
        "the native sidecar exited:\n{}",
        agent_run.log_text()
    );
    ns.delete().await;
    Ok(())
}

/// `VAULT_CONFIG`, `VAULT_CONFIG_1`, ... of a container, in order.
fn config_chunks(c: &Container) -> Vec<(String, String)> {
    c.env
        .iter()
        .flatten()
        .filter(|e| e.name == "VAULT_CONFIG" || e.name.starts_with("VAULT_CONFIG_"))
        .map(|e| (e.name.clone(), e.value.clone().unwrap_or_default()))
        .collect()
}

#[tokio::test]
async fn b3_large_config_is_split_and_the_real_command_rebuilds_it() -> Result<()> {
    if !harness_available() {
        return Ok(());
    }
    let client = client().await?;
    let ns = TestNs::create_unique(&client, "large", true).await?;
    ns.create_service_account("large-app").await?;
    kv_role(
        &client,
        &ns.name,
        "large-app",
        "large/config",
        &["greeting=hello-large"],
    )
    .await?;

    // 50 templates of 3 KB: 150 KB of annotations (under the apiserver's 256 KiB), about
    // 200 KB of base64 per agent.
    let filler = format!("# {}\n", "padding ".repeat(374));
    let mut annotations = json!({
        "vault.hashicorp.com/agent-inject": "true",
        "vault.hashicorp.com/role": "large-app",
        "vault.hashicorp.com/agent-pre-populate-only": "true",
    });
    for i in 0..50 {
        annotations[format!("vault.hashicorp.com/agent-inject-template-t{i:02}.txt")] = json!(
            format!(
                "{filler}{{{{ with secret \"secret/data/large/config\" }}}}{{{{ .Data.data.greeting }}}}-{i}{{{{ end }}}}"
            )
        );
    }
    let p = ns
        .pods()
        .create(
            &PostParams::default(),
            &pod_with_sa("large", "large-app", annotations)?,
        )
        .await
        .context("creating the large-config pod")?;
    log(pod_summary(&p));
    let init = container(&p, "vault-agent-init").context("no vault-agent-init")?;
    let chunks = config_chunks(init);
    let names: Vec<&str> = chunks.iter().map(|(n, _)| n.as_str()).collect();
    ensure!(
        names == ["VAULT_CONFIG", "VAULT_CONFIG_1"],
        "config variables {names:?}"
    );
    for (n, v) in &chunks {
        ensure!(
            n.len() + 1 + v.len() < MAX_ARG_STRLEN,
            "{n} is {} bytes",
            v.len()
        );
    }
    let args = init.args.clone().unwrap_or_default();
    ensure!(
        args == [
            "echo ${VAULT_CONFIG?}${VAULT_CONFIG_1?} | base64 -d > /home/vault/config.json && vault agent -config=/home/vault/config.json"
        ],
        "args {args:?}"
    );
    let joined: String = chunks.iter().map(|(_, v)| v.as_str()).collect();
    let expected = base64::engine::general_purpose::STANDARD.decode(joined)?;
    log(format!(
        "VAULT_CONFIG split in {} variables ({} bytes of base64, {} bytes of JSON)",
        chunks.len(),
        chunks.iter().map(|(_, v)| v.len()).sum::<usize>(),
        expected.len()
    ));

    // Control: unsplit, the same value could not even start the shell.
    let unsplit = std::process::Command::new("/bin/sh")
        .args(["-c", "true"])
        .env_clear()
        .env(
            "VAULT_CONFIG",
            chunks.iter().map(|(_, v)| v.as_str()).collect::<String>(),
        )
        .status();
    ensure!(
        unsplit
            .as_ref()
            .err()
            .and_then(std::io::Error::raw_os_error)
            == Some(libc::E2BIG),
        "an unsplit VAULT_CONFIG of {} bytes did not fail with E2BIG: {unsplit:?}",
        chunks.iter().map(|(_, v)| v.len()).sum::<usize>()
    );

    // The container for real: /bin/sh -ec with its exact args and env, then the real agent.
    let kubelet = FakeKubelet::new(&client, p.clone())?;
    let mut run = kubelet.start("vault-agent-init").await?;
    let st = run.wait_timeout(Duration::from_secs(90)).await?;
    let out = run.log_text();
    if st.map(|s| s.success()) != Some(true) {
        run.stop().await?;
        bail!("vault-agent-init did not complete (status {st:?}); its output:\n{out}");
    }
    let written = std::fs::read(kubelet.volume_dir("home-init").join("config.json"))
        .context("the command did not write /home/vault/config.json")?;
    ensure!(
        written == expected,
        "/home/vault/config.json ({} bytes) differs from the configuration ({} bytes)",
        written.len(),
        expected.len()
    );
    let secrets = kubelet.volume_dir("vault-secrets");
    for i in 0..50 {
        let text = std::fs::read_to_string(secrets.join(format!("t{i:02}.txt")))
            .with_context(|| format!("t{i:02}.txt was not rendered; agent output:\n{out}"))?;
        ensure!(
            text.ends_with(&format!("hello-large-{i}")),
            "t{i:02}.txt ends with {:?}",
            &text[text.len().saturating_sub(40)..]
        );
    }
    log("the split command rebuilt the exact configuration; the agent rendered all 50 templates");
    ns.delete().await;
    Ok(())
}
