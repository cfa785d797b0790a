//! The agent container itself: image, command, mounts, resources, lifecycle and security
//! context, as a sidecar, an init container or a native sidecar.

use super::*;

/// Which agent container is being built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    /// `vault-agent-init`: renders once (`exit_after_auth`) and exits.
    Init,
    /// `vault-agent` in `containers`: keeps the secrets fresh.
    Sidecar,
    /// `vault-agent` in `initContainers` with `restartPolicy: Always` (see [`native_sidecar`]).
    Native,
}

/// The init container or a sidecar, with its JSON patch applied.
pub(super) fn agent_container(
    pod: &Pod,
    r: &AgentRequest,
    role: Role,
    secret_mounts: &[VolumeMount],
    binary: AgentBinary,
) -> Result<Container, Refusal> {
    let cli = binary.cli();
    let init = role == Role::Init;
    let sa = &r.service_account;
    let home = if init { HOME_INIT } else { HOME_SIDECAR };
    let mut mounts = if init {
        vec![
            mount(home, HOME_PATH, false),
            mount(&sa.name, &sa.mount_path, true),
        ]
    } else {
        vec![
            mount(&sa.name, &sa.mount_path, true),
            mount(home, HOME_PATH, false),
        ]
    };
    if let Some((name, path)) = &r.irsa_mount {
        mounts.push(mount(name, path, true));
    }
    mounts.extend(secret_mounts.iter().cloned());
    if !r.extra_secret.is_empty() {
        mounts.push(mount(EXTRA_SECRET_VOLUME, EXTRA_SECRET_PATH, true));
    }
    if !r.copy_volume_mounts.is_empty() {
        mounts.extend(copied_mounts(pod, &r.copy_volume_mounts));
    }
    // Upstream's order inside phase E: env (which encodes the config), then resources.
    let (env, config_chunks) = env_vars(r, init)?;
    let resources = resources(r)?;
    let mut arg = container_arg(config_chunks, cli);
    if !r.config_map.is_empty() {
        mounts.push(mount(CONFIG_VOLUME, CONFIG_PATH, true));
        let file = if init {
            "config-init.hcl"
        } else {
            "config.hcl"
        };
        arg = format!("touch {TOKEN_FILE} && {cli} agent -config={CONFIG_PATH}/{file}");
    }
    if !r.tls_secret.is_empty() {
        mounts.push(mount(TLS_VOLUME, TLS_PATH, true));
    }
    if r.cache.persist {
        mounts.push(mount(CACHE_VOLUME, CACHE_PATH, false));
    }
    let mut container = Container {
        name: if init {
            INIT_CONTAINER_NAME
        } else {
            SIDECAR_NAME
        }
        .to_owned(),
        image: Some(r.image.clone()),
        command: Some(vec!["/bin/sh".to_owned(), "-ec".to_owned()]),
        args: Some(vec![arg]),
        env: Some(env),
        resources: Some(resources),
        volume_mounts: Some(mounts),
        lifecycle: (!init).then(|| lifecycle(r, cli)),
        security_context: security_context(r),
        ..Default::default()
    };
    if role == Role::Native {
        native_sidecar(&mut container, r);
    }
    let user_patch = if init {
        &r.init_json_patch
    } else {
        &r.json_patch
    };
    let Some(patch) = user_patch else {
        return Ok(container);
    };
    let key = if init {
        keys::INIT_JSON_PATCH
    } else {
        keys::JSON_PATCH
    };
    let mut patched = apply_user_patch(&to_value(&container), patch)
        .map_err(|e| Refusal::Patch(Problem::Message(e.to_string())))?;
    // Upstream decodes the patched container back into its typed form, which parses every
    // quantity (refusing a bad one) and writes it canonically again.
    canonicalize_quantities(&mut patched).map_err(|(at, value, err)| {
        Refusal::Patch(Problem::Message(format!(
            "{err} ({at}: {}, after applying annotation {key})",
            crate::goparse::go_quote(&value)
        )))
    })?;
    serde_json::from_value(patched).map_err(|e| {
        Refusal::Patch(Problem::Message(format!(
            "{e} (after applying annotation {key})"
        )))
    })
}

/// The container's quantities (resource limits and requests, and the divisors of
/// `resourceFieldRef` variables) as apimachinery reads and writes them: the text of a string
/// without surrounding whitespace, the JSON text of anything else (so a number is read as its
/// digits, `null` is zero and `true` fails), then [`canonical_quantity`]. Members of the wrong
/// shape are left for the typed decode to refuse. On failure: where, the text and the error.
pub(super) fn canonicalize_quantities(
    container: &mut Value,
) -> Result<(), (String, String, crate::goparse::QuantityError)> {
    let canonical = |at: String, q: &mut Value| {
        let text = match &*q {
            Value::Null => "0".to_owned(),
            // Go's `strings.TrimSpace` and `str::trim` trim the same (Unicode) white space.
            Value::String(s) => s.trim().to_owned(),
            other => other.to_string(),
        };
        match canonical_quantity(&text) {
            Ok(c) => {
                *q = Value::String(c);
                Ok(())
            }
            Err(err) => Err((at, text, err)),
        }
    };
    for list in ["limits", "requests"] {
        if let Some(Value::Object(map)) = container.pointer_mut(&format!("/resources/{list}")) {
            for (name, q) in map.iter_mut() {
                canonical(format!("resources.{list}.{name}"), q)?;
            }
        }
    }
    if let Some(Value::Array(env)) = container.get_mut("env") {
        for (i, var) in env.iter_mut().enumerate() {
            if let Some(q) = var.pointer_mut("/valueFrom/resourceFieldRef/divisor") {
                canonical(format!("env[{i}].valueFrom.resourceFieldRef.divisor"), q)?;
            }
        }
    }
    Ok(())
}

/// Mounts of the named container (app containers first, then init containers), minus any
/// service-account mount.
pub(super) fn copied_mounts(pod: &Pod, name: &str) -> Vec<VolumeMount> {
    let Some(spec) = pod.spec.as_ref() else {
        return Vec::new();
    };
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .filter(|c| c.name == name)
        .flat_map(|c| c.volume_mounts.iter().flatten())
        .filter(|m| !m.mount_path.to_lowercase().contains("serviceaccount"))
        .cloned()
        .collect()
}

/// Seconds between two runs of the native sidecar's startup probe.
pub(super) const STARTUP_PROBE_PERIOD_SECONDS: i32 = 1;
/// Failed runs before the kubelet restarts the native sidecar: five minutes to authenticate and
/// render, the same patience an init container gets from a slow Vault in practice.
pub(super) const STARTUP_PROBE_FAILURE_THRESHOLD: i32 = 300;

/// Turns a sidecar into a native sidecar (not upstream; Kubernetes 1.29+).
///
/// The agent goes into `initContainers` with `restartPolicy: Always`. The kubelet starts the
/// init containers after it, and the app containers, only once its startup probe has passed, and
/// a Job completes when its app containers exit, however long the agent runs. So one agent
/// both pre-populates and renews: no `vault-agent-init`, no second login, no second lease. How it
/// combines with the other annotations:
///
/// - `agent-pre-populate` (default true): the startup probe is what pre-populates. It is an exec
///   probe, `test -e` on every rendered template file (the agent renders to a temporary file and
///   renames it, so a file that exists is complete), or on the agent's token file when there are
///   no templates (the auth is done). With `agent-pre-populate: "false"` there is no probe, and
///   the app starts without waiting, as upstream's sidecar-only mode.
/// - `agent-init-first`: the native sidecar is placed exactly where the init container would be,
///   first among the init containers or after the user's. The user's init containers get the
///   secret mounts in both cases (behind it they see the rendered files).
/// - `agent-pre-populate-only`: wins; the pod gets upstream's one-shot init container
///   (`AgentRequest::native_sidecar` is false). A restartable agent alone makes no sense there.
/// - `agent-share-process-namespace` is applied as with the init container.
/// - `agent-json-patch` applies (the container is the sidecar, named `vault-agent`);
///   `agent-init-json-patch` has nothing to apply to. The configuration is the sidecar's
///   (`exit_after_auth: false`, mounted at `home-sidecar`), without a persistent cache.
/// - ConfigMap mode: the injector does not know which files the ConfigMap's templates render, so
///   there is no probe; add one with `agent-json-patch`.
pub(super) fn native_sidecar(c: &mut Container, r: &AgentRequest) {
    c.restart_policy = Some("Always".to_owned());
    if !r.pre_populate || !r.config_map.is_empty() {
        return;
    }
    let mut files = rendered_files(r);
    if files.is_empty() {
        files.push(TOKEN_FILE.to_owned());
    }
    let test = files
        .iter()
        .map(|f| format!("test -e {}", shell_quote(f)))
        .collect::<Vec<_>>()
        .join(" && ");
    c.startup_probe = Some(Probe {
        exec: Some(ExecAction {
            command: Some(vec!["/bin/sh".to_owned(), "-c".to_owned(), test]),
        }),
        period_seconds: Some(STARTUP_PROBE_PERIOD_SECONDS),
        failure_threshold: Some(STARTUP_PROBE_FAILURE_THRESHOLD),
        ..Default::default()
    });
}

/// Quantities are checked in upstream's order (so the same annotation is named first); empty leaves the key out.
pub(super) fn resources(r: &AgentRequest) -> Result<ResourceRequirements, Refusal> {
    let q = &r.resources;
    let list = |items: [(&'static str, &'static str, &String); 3]| -> Result<Option<BTreeMap<String, Quantity>>, Refusal> {
        let mut map = BTreeMap::new();
        for (resource, key, value) in items {
            if value.is_empty() {
                continue;
            }
            // Written as Kubernetes writes the parsed quantity (`0.5` is `500m`), which is
            // what upstream's container holds, for `agent-json-patch` and in the patch.
            let canonical = canonical_quantity(value).map_err(|err| {
                Refusal::Patch(Problem::Quantity {
                    key,
                    value: value.clone(),
                    err,
                })
            })?;
            map.insert(resource.to_owned(), Quantity(canonical));
        }
        Ok((!map.is_empty()).then_some(map))
    };
    let limits = list([
        ("cpu", keys::LIMITS_CPU, &q.limits_cpu),
        ("memory", keys::LIMITS_MEM, &q.limits_mem),
        (
            "ephemeral-storage",
            keys::LIMITS_EPHEMERAL,
            &q.limits_ephemeral,
        ),
    ])?;
    let requests = list([
        ("cpu", keys::REQUESTS_CPU, &q.requests_cpu),
        ("memory", keys::REQUESTS_MEM, &q.requests_mem),
        (
            "ephemeral-storage",
            keys::REQUESTS_EPHEMERAL,
            &q.requests_ephemeral,
        ),
    ])?;
    Ok(ResourceRequirements {
        limits,
        requests,
        ..Default::default()
    })
}

/// Always present on the sidecar (`{}` without revocation), so user patches can target it.
/// The revocation runs `/bin/<cli>`.
pub(super) fn lifecycle(r: &AgentRequest, cli: &str) -> Lifecycle {
    if !r.revoke_on_shutdown {
        return Lifecycle::default();
    }
    let v = &r.vault;
    let mut flags = vec![format!("-address={}", shell_word(&v.address))];
    if !v.ca_cert.is_empty() {
        flags.push(format!("-ca-cert={}", shell_word(&v.ca_cert)));
    }
    if !v.client_cert.is_empty() {
        flags.push(format!("-client-cert={}", shell_word(&v.client_cert)));
    }
    if !v.client_key.is_empty() {
        flags.push(format!("-client-key={}", shell_word(&v.client_key)));
    }
    flags.push("-self".to_owned());
    Lifecycle {
        pre_stop: Some(LifecycleHandler {
            exec: Some(ExecAction {
                command: Some(vec![
                    "/bin/sh".to_owned(),
                    "-c".to_owned(),
                    format!(
                        "/bin/sleep {} && /bin/{cli} token revoke {}",
                        r.revoke_grace,
                        flags.join(" ")
                    ),
                ]),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Upstream's security context when `set_security_context`; with `seccomp_runtime_default`
/// (not upstream) it also carries `seccompProfile: RuntimeDefault`, the one
/// field the `restricted` Pod Security profile needs beyond upstream's (non-root uid and gid,
/// no privilege escalation, every capability dropped). Asked for alone, seccomp still gets a
/// context of its own, and nothing else is set.
pub(super) fn security_context(r: &AgentRequest) -> Option<SecurityContext> {
    let seccomp_profile = r.seccomp_runtime_default.then(|| SeccompProfile {
        type_: "RuntimeDefault".to_owned(),
        ..Default::default()
    });
    if !r.set_security_context {
        return seccomp_profile.map(|p| SecurityContext {
            seccomp_profile: Some(p),
            ..Default::default()
        });
    }
    Some(SecurityContext {
        run_as_user: Some(r.run_as_user),
        run_as_group: Some(r.run_as_group),
        run_as_non_root: Some(r.run_as_user != 0 && r.run_as_group != 0),
        read_only_root_filesystem: Some(true),
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".to_owned()]),
            ..Default::default()
        }),
        seccomp_profile,
        ..Default::default()
    })
}
