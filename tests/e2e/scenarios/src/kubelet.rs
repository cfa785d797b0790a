//! The fake kubelet: runs one container of a created Pod on this machine, with the Pod's
//! volumes as directories, so the process tier can run the agents the injector added.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Secret};
use kube::{Api, Client};

use crate::harness::{env, env_req, log, poll};
use crate::openbao::{cluster_url_and_ca, token_request};
use crate::pods::{container, pod_summary};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pods::AGENT_ARGS;

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
}
