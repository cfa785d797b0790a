//! (Pod, request) → the RFC 6902 patch that injects the agents, in upstream's operation order
//! (mutation.md §4), and the mutated pod it produces.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapVolumeSource, Container, EmptyDirVolumeSource, EnvVar, EnvVarSource,
    ExecAction, Lifecycle, LifecycleHandler, ObjectFieldSelector, Pod, PodSpec,
    ResourceRequirements, SecretVolumeSource, SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde_json::Value;

use crate::agent_config::{CACHE_PATH, Config, TOKEN_FILE};
use crate::annotations::{AgentRequest, Problem, Refusal, keys};
use crate::goparse::parse_quantity;
use crate::patch::{PatchBuilder, apply_user_patch, escape_pointer};

/// Name of the injected init container.
pub const INIT_CONTAINER_NAME: &str = "vault-agent-init";
/// Name of the injected sidecar.
pub const SIDECAR_NAME: &str = "vault-agent";
/// The shell one-liner that decodes `VAULT_CONFIG` and starts the agent.
pub const DEFAULT_CONTAINER_ARG: &str = "echo ${VAULT_CONFIG?} | base64 -d > /home/vault/config.json && vault agent -config=/home/vault/config.json";

const HOME_PATH: &str = "/home/vault";
const HOME_INIT: &str = "home-init";
const HOME_SIDECAR: &str = "home-sidecar";
const SECRETS_VOLUME: &str = "vault-secrets";
const CONFIG_VOLUME: &str = "vault-config";
const CONFIG_PATH: &str = "/vault/configs";
const EXTRA_SECRET_VOLUME: &str = "extra-secrets";
const EXTRA_SECRET_PATH: &str = "/vault/custom";
const TLS_VOLUME: &str = "vault-tls-secrets";
const TLS_PATH: &str = "/vault/tls";
const CACHE_VOLUME: &str = "vault-agent-cache";

/// Builds the patch operations for a pod that passed the gate and parsing (phase E).
pub fn patch_ops(pod: &Pod, r: &AgentRequest) -> Result<Vec<Value>, Refusal> {
    let no_spec = PodSpec::default();
    let spec = pod.spec.as_ref().unwrap_or(&no_spec);
    let original_volumes = spec.volumes.as_ref().map_or(0, Vec::len);
    let mut p = PatchBuilder::new();
    let extra_paths = extra_mount_paths(r);

    let mut token_volumes = Vec::new();
    if r.pre_populate {
        token_volumes.push(memory_volume(HOME_INIT));
    }
    if !r.pre_populate_only {
        token_volumes.push(memory_volume(HOME_SIDECAR));
    }
    p.append(
        "/spec/volumes",
        original_volumes,
        token_volumes.into_iter().map(to_value),
    );
    let mut secret_volumes = vec![memory_volume(SECRETS_VOLUME)];
    secret_volumes.extend((0..extra_paths.len()).map(|i| memory_volume(&custom_volume_name(i))));
    p.append(
        "/spec/volumes",
        original_volumes,
        secret_volumes.into_iter().map(to_value),
    );
    if !r.config_map.is_empty() {
        let v = Volume {
            name: CONFIG_VOLUME.to_owned(),
            config_map: Some(ConfigMapVolumeSource {
                name: r.config_map.clone(),
                ..Default::default()
            }),
            ..Default::default()
        };
        p.append("/spec/volumes", original_volumes, [to_value(v)]);
    }
    if !r.extra_secret.is_empty() {
        p.append(
            "/spec/volumes",
            original_volumes,
            [to_value(secret_volume(
                EXTRA_SECRET_VOLUME,
                &r.extra_secret,
            ))],
        );
    }
    if !r.tls_secret.is_empty() {
        p.append(
            "/spec/volumes",
            original_volumes,
            [to_value(secret_volume(TLS_VOLUME, &r.tls_secret))],
        );
    }
    if r.cache.persist {
        p.append(
            "/spec/volumes",
            original_volumes,
            [to_value(memory_volume(CACHE_VOLUME))],
        );
    }

    let secret_mounts = secret_mounts(r, &extra_paths);
    for (i, c) in spec.containers.iter().enumerate() {
        if r.inject_containers.contains(&c.name) {
            p.append(
                &format!("/spec/containers/{i}/volumeMounts"),
                c.volume_mounts.as_ref().map_or(0, Vec::len),
                secret_mounts.iter().cloned().map(to_value),
            );
        }
    }

    if r.pre_populate {
        let init = agent_container(pod, r, true, &secret_mounts)?;
        let original_inits = spec.init_containers.as_deref().unwrap_or_default();
        let shift = if r.init_first && !original_inits.is_empty() {
            // Upstream removes the whole array and re-adds typed copies of the user's init
            // containers, which drops fields it does not know; inserting at 0 gives the same
            // order and keeps the user's objects untouched.
            p.add("/spec/initContainers/0", to_value(init));
            1
        } else {
            p.append(
                "/spec/initContainers",
                original_inits.len(),
                [to_value(init)],
            );
            0
        };
        for (k, c) in original_inits.iter().enumerate() {
            if c.name == INIT_CONTAINER_NAME {
                continue;
            }
            p.append(
                &format!("/spec/initContainers/{}/volumeMounts", k + shift),
                c.volume_mounts.as_ref().map_or(0, Vec::len),
                secret_mounts.iter().cloned().map(to_value),
            );
        }
        if let Some(share) = r.share_process_namespace {
            p.add("/spec/shareProcessNamespace", Value::Bool(share));
        }
    }

    if !r.pre_populate_only {
        let sidecar = agent_container(pod, r, false, &secret_mounts)?;
        p.append(
            "/spec/containers",
            spec.containers.len(),
            [to_value(sidecar)],
        );
    }

    if pod
        .metadata
        .annotations
        .as_ref()
        .is_none_or(BTreeMap::is_empty)
    {
        p.add(
            "/metadata/annotations",
            serde_json::json!({ keys::STATUS: "injected" }),
        );
    } else {
        p.add(
            format!("/metadata/annotations/{}", escape_pointer(keys::STATUS)),
            Value::String("injected".to_owned()),
        );
    }
    Ok(p.into_ops())
}

/// Serialising k8s-openapi types to JSON cannot fail; `Null` would only ever show a bug.
fn to_value<T: serde::Serialize>(v: T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

fn custom_volume_name(i: usize) -> String {
    format!("{SECRETS_VOLUME}-custom-{i}")
}

/// Distinct per-secret mount paths other than the global one, in secret order.
fn extra_mount_paths(r: &AgentRequest) -> Vec<String> {
    let mut paths: Vec<String> = Vec::new();
    for s in &r.secrets {
        if s.mount_path != r.secret_volume_path && !paths.contains(&s.mount_path) {
            paths.push(s.mount_path.clone());
        }
    }
    paths
}

fn memory_volume(name: &str) -> Volume {
    Volume {
        name: name.to_owned(),
        empty_dir: Some(EmptyDirVolumeSource {
            medium: Some("Memory".to_owned()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn secret_volume(name: &str, secret: &str) -> Volume {
    Volume {
        name: name.to_owned(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(secret.to_owned()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn mount(name: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: name.to_owned(),
        mount_path: path.to_owned(),
        read_only: read_only.then_some(true),
        ..Default::default()
    }
}

/// `vault-secrets` at the global path, then one mount per extra path (mutation.md §4.3).
fn secret_mounts(r: &AgentRequest, extra_paths: &[String]) -> Vec<VolumeMount> {
    let mut mounts = vec![mount(SECRETS_VOLUME, &r.secret_volume_path, false)];
    mounts.extend(
        extra_paths
            .iter()
            .enumerate()
            .map(|(i, path)| mount(&custom_volume_name(i), path, false)),
    );
    mounts
}

/// The init container (`init`) or the sidecar, with its JSON patch applied.
fn agent_container(
    pod: &Pod,
    r: &AgentRequest,
    init: bool,
    secret_mounts: &[VolumeMount],
) -> Result<Container, Refusal> {
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
    let mut arg = DEFAULT_CONTAINER_ARG.to_owned();
    if !r.config_map.is_empty() {
        mounts.push(mount(CONFIG_VOLUME, CONFIG_PATH, true));
        let file = if init {
            "config-init.hcl"
        } else {
            "config.hcl"
        };
        arg = format!("touch {TOKEN_FILE} && vault agent -config={CONFIG_PATH}/{file}");
    }
    if !r.tls_secret.is_empty() {
        mounts.push(mount(TLS_VOLUME, TLS_PATH, true));
    }
    if r.cache.persist {
        mounts.push(mount(CACHE_VOLUME, CACHE_PATH, false));
    }
    // Upstream's order inside phase E: env (which encodes the config), then resources.
    let env = env_vars(r, init)?;
    let resources = resources(r)?;
    let container = Container {
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
        lifecycle: (!init).then(|| lifecycle(r)),
        security_context: r.set_security_context.then(|| security_context(r)),
        ..Default::default()
    };
    let user_patch = if init {
        &r.init_json_patch
    } else {
        &r.json_patch
    };
    match user_patch {
        None => Ok(container),
        Some(patch) => {
            let patched = apply_user_patch(&to_value(&container), patch)
                .map_err(|e| Refusal::Patch(Problem::Message(e.to_string())))?;
            serde_json::from_value(patched).map_err(|e| {
                Refusal::Patch(Problem::Message(format!(
                    "{e} (after applying annotation {})",
                    if init {
                        keys::INIT_JSON_PATCH
                    } else {
                        keys::JSON_PATCH
                    }
                )))
            })
        }
    }
}

/// Mounts of the named container (app containers first, then init containers), minus any
/// service-account mount.
fn copied_mounts(pod: &Pod, name: &str) -> Vec<VolumeMount> {
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

fn field_ref(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.to_owned(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Upstream sets these variables only when their value is non-empty.
fn push_if_set(env: &mut Vec<EnvVar>, name: &str, value: &str) {
    if !value.is_empty() {
        env.push(plain(name, value));
    }
}

fn plain(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value: Some(value.to_owned()),
        ..Default::default()
    }
}

/// mutation.md §5.4.
fn env_vars(r: &AgentRequest, init: bool) -> Result<Vec<EnvVar>, Refusal> {
    let mut env = vec![
        field_ref("NAMESPACE", "metadata.namespace"),
        field_ref("HOST_IP", "status.hostIP"),
        field_ref("POD_IP", "status.podIP"),
    ];
    push_if_set(&mut env, "GOMAXPROCS", &r.env.go_max_procs);
    push_if_set(&mut env, "VAULT_CLIENT_TIMEOUT", &r.env.client_timeout);
    push_if_set(&mut env, "VAULT_MAX_RETRIES", &r.env.client_max_retries);
    push_if_set(&mut env, "VAULT_LOG_LEVEL", &r.env.log_level);
    push_if_set(&mut env, "VAULT_LOG_FORMAT", &r.env.log_format);
    push_if_set(&mut env, "HTTPS_PROXY", &r.env.proxy_address);
    if r.config_map.is_empty() {
        let config = Config::build(r, init)
            .to_json()
            .map_err(|e| Refusal::Patch(Problem::Message(e.to_string())))?;
        env.push(plain("VAULT_CONFIG", &STANDARD.encode(config)));
    } else {
        let v = &r.vault;
        push_if_set(&mut env, "VAULT_ADDR", &v.address);
        push_if_set(&mut env, "VAULT_CACERT", &v.ca_cert);
        push_if_set(&mut env, "VAULT_CAPATH", &v.ca_key);
        push_if_set(&mut env, "VAULT_CLIENT_CERT", &v.client_cert);
        push_if_set(&mut env, "VAULT_CLIENT_KEY", &v.client_key);
        env.push(plain(
            "VAULT_SKIP_VERIFY",
            if v.tls_skip_verify { "true" } else { "false" },
        ));
        push_if_set(&mut env, "VAULT_TLS_SERVER_NAME", &v.tls_server_name);
    }
    if !r.env.ca_cert_bytes.is_empty() {
        env.push(plain(
            "VAULT_CACERT_BYTES",
            &decode_if_base64(&r.env.ca_cert_bytes),
        ));
    }
    if r.auth.auth_type == "aws" {
        env.extend(r.aws_env.iter().map(|(k, v)| plain(k, v)));
        if let Some(region) = r.auth.config.get("region") {
            env.push(plain("AWS_REGION", region));
        }
    }
    Ok(env)
}

/// Go's `base64.StdEncoding.DecodeString` ignores line breaks and non-zero trailing bits.
fn decode_if_base64(s: &str) -> String {
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
    );
    let compact: String = s.chars().filter(|c| *c != '\n' && *c != '\r').collect();
    LENIENT
        .decode(compact)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .unwrap_or_else(|| s.to_owned())
}

/// mutation.md §5.8: quantities are checked in upstream's order; empty leaves the key out.
fn resources(r: &AgentRequest) -> Result<ResourceRequirements, Refusal> {
    let q = &r.resources;
    let list = |items: [(&'static str, &'static str, &String); 3]| -> Result<Option<BTreeMap<String, Quantity>>, Refusal> {
        let mut map = BTreeMap::new();
        for (resource, key, value) in items {
            if value.is_empty() {
                continue;
            }
            parse_quantity(value).map_err(|err| {
                Refusal::Patch(Problem::Quantity {
                    key,
                    value: value.clone(),
                    err,
                })
            })?;
            map.insert(resource.to_owned(), Quantity(value.clone()));
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
fn lifecycle(r: &AgentRequest) -> Lifecycle {
    if !r.revoke_on_shutdown {
        return Lifecycle::default();
    }
    let v = &r.vault;
    let mut flags = vec![format!("-address={}", v.address)];
    if !v.ca_cert.is_empty() {
        flags.push(format!("-ca-cert={}", v.ca_cert));
    }
    if !v.client_cert.is_empty() {
        flags.push(format!("-client-cert={}", v.client_cert));
    }
    if !v.client_key.is_empty() {
        flags.push(format!("-client-key={}", v.client_key));
    }
    flags.push("-self".to_owned());
    Lifecycle {
        pre_stop: Some(LifecycleHandler {
            exec: Some(ExecAction {
                command: Some(vec![
                    "/bin/sh".to_owned(),
                    "-c".to_owned(),
                    format!(
                        "/bin/sleep {} && /bin/vault token revoke {}",
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

fn security_context(r: &AgentRequest) -> SecurityContext {
    SecurityContext {
        run_as_user: Some(r.run_as_user),
        run_as_group: Some(r.run_as_group),
        run_as_non_root: Some(r.run_as_user != 0 && r.run_as_group != 0),
        read_only_root_filesystem: Some(true),
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".to_owned()]),
            ..Default::default()
        }),
        ..Default::default()
    }
}
