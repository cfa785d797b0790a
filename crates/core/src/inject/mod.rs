//! (Pod, request) → the RFC 6902 patch that injects the agents, in upstream's operation order,
//! and the mutated pod it produces.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapVolumeSource, Container, EmptyDirVolumeSource, EnvVar, EnvVarSource,
    ExecAction, Lifecycle, LifecycleHandler, ObjectFieldSelector, Pod, PodSpec, Probe,
    ResourceRequirements, SeccompProfile, SecretVolumeSource, SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde_json::Value;

use crate::agent_config::{CACHE_PATH, Config, TOKEN_FILE, rendered_files};
use crate::annotations::{AgentRequest, Problem, Refusal, keys};
use crate::goparse::canonical_quantity;
use crate::openbao::AgentBinary;
use crate::patch::{Op, OpValue, PatchBuilder, apply_user_patch, escape_pointer};

/// Name of the injected init container.
pub const INIT_CONTAINER_NAME: &str = "vault-agent-init";
/// Name of the injected sidecar.
pub const SIDECAR_NAME: &str = "vault-agent";
/// The shell one-liner that decodes `VAULT_CONFIG` and starts the agent.
pub const DEFAULT_CONTAINER_ARG: &str = "echo ${VAULT_CONFIG?} | base64 -d > /home/vault/config.json && vault agent -config=/home/vault/config.json";
/// The variable holding the base64 agent configuration; its continuations are `VAULT_CONFIG_1`,
/// `VAULT_CONFIG_2`, ... (see [`config_env_chunks`]).
pub const CONFIG_ENV: &str = "VAULT_CONFIG";
/// Linux's `MAX_ARG_STRLEN`: the longest single `NAME=value` string (with its NUL) that
/// `execve` accepts in the environment; a longer one fails the container start with `E2BIG`.
pub const MAX_ENV_STRING: usize = 32 * 4096;
/// Length of each chunk when the configuration must be split: a multiple of 4 (each chunk is
/// whole base64 on its own) with room for any `VAULT_CONFIG_<n>=` name and the NUL.
pub const CONFIG_CHUNK_LEN: usize = MAX_ENV_STRING - 1024;

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

/// Builds the patch operations for a pod that passed the gate and parsing (phase E). The agent
/// containers run `binary` (`vault` as upstream, or OpenBao's `bao`), written into their
/// commands as they are built, before any `agent-json-patch`.
pub fn patch_ops(pod: &Pod, r: &AgentRequest, binary: AgentBinary) -> Result<Vec<Op>, Refusal> {
    let no_spec = PodSpec::default();
    let spec = pod.spec.as_ref().unwrap_or(&no_spec);
    let original_volumes = spec.volumes.as_ref().map_or(0, Vec::len);
    let mut p = PatchBuilder::with_capacity(16);
    let extra_paths = extra_mount_paths(r);

    // Without file secrets a pod whose secrets are all environment variables needs no
    // classic agent: the agent in the wrapped container is the only one (see `exec`).
    let classic = r.classic_agents();
    let mut token_volumes = Vec::new();
    if classic && r.pre_populate && !r.native_sidecar {
        token_volumes.push(memory_volume(HOME_INIT));
    }
    if classic && !r.pre_populate_only {
        token_volumes.push(memory_volume(HOME_SIDECAR));
    }
    p.append(
        "/spec/volumes",
        original_volumes,
        token_volumes.into_iter().map(OpValue::volume),
    );
    if classic {
        let mut secret_volumes = vec![memory_volume(SECRETS_VOLUME)];
        secret_volumes
            .extend((0..extra_paths.len()).map(|i| memory_volume(&custom_volume_name(i))));
        p.append(
            "/spec/volumes",
            original_volumes,
            secret_volumes.into_iter().map(OpValue::volume),
        );
    }
    if !r.config_map.is_empty() {
        let v = Volume {
            name: CONFIG_VOLUME.to_owned(),
            config_map: Some(ConfigMapVolumeSource {
                name: r.config_map.clone(),
                ..Default::default()
            }),
            ..Default::default()
        };
        p.append("/spec/volumes", original_volumes, [OpValue::volume(v)]);
    }
    if !r.extra_secret.is_empty() {
        p.append(
            "/spec/volumes",
            original_volumes,
            [OpValue::volume(secret_volume(
                EXTRA_SECRET_VOLUME,
                &r.extra_secret,
            ))],
        );
    }
    if !r.tls_secret.is_empty() {
        p.append(
            "/spec/volumes",
            original_volumes,
            [OpValue::volume(secret_volume(TLS_VOLUME, &r.tls_secret))],
        );
    }
    if r.cache.persist {
        p.append(
            "/spec/volumes",
            original_volumes,
            [OpValue::volume(memory_volume(CACHE_VOLUME))],
        );
    }

    if classic {
        classic_agents(&mut p, pod, spec, r, &extra_paths, binary)?;
    }
    if r.env_exec.is_on() {
        exec::add_exec(&mut p, spec, r, binary, original_volumes)?;
        // Without a classic init container the annotation still applies: with a shared
        // process namespace the pause process, not the agent, is PID 1 and reaps orphans.
        if let (false, Some(share)) = (classic, r.share_process_namespace) {
            p.add("/spec/shareProcessNamespace", OpValue::Bool(share));
        }
    }

    if pod
        .metadata
        .annotations
        .as_ref()
        .is_none_or(BTreeMap::is_empty)
    {
        p.add(
            "/metadata/annotations",
            OpValue::Map(BTreeMap::from([(
                keys::STATUS.to_owned(),
                "injected".to_owned(),
            )])),
        );
    } else {
        p.add(
            format!("/metadata/annotations/{}", escape_pointer(keys::STATUS)),
            OpValue::String("injected".to_owned()),
        );
    }
    Ok(p.into_ops())
}

/// Upstream's agents: the secret mounts of the app containers, the init container (or native
/// sidecar) and the sidecar.
fn classic_agents(
    p: &mut PatchBuilder,
    pod: &Pod,
    spec: &PodSpec,
    r: &AgentRequest,
    extra_paths: &[String],
    binary: AgentBinary,
) -> Result<(), Refusal> {
    let secret_mounts = secret_mounts(r, extra_paths);
    for (i, c) in spec.containers.iter().enumerate() {
        if r.inject_containers.contains(&c.name) {
            p.append(
                &format!("/spec/containers/{i}/volumeMounts"),
                c.volume_mounts.as_ref().map_or(0, Vec::len),
                secret_mounts.iter().cloned().map(OpValue::mount),
            );
        }
    }

    // A native sidecar takes the init container's place (and its ordering rules); it is the
    // only agent, so no regular sidecar follows.
    if r.pre_populate || r.native_sidecar {
        let (init, own_name) = if r.native_sidecar {
            (
                agent_container(pod, r, Role::Native, &secret_mounts, binary)?,
                SIDECAR_NAME,
            )
        } else {
            (
                agent_container(pod, r, Role::Init, &secret_mounts, binary)?,
                INIT_CONTAINER_NAME,
            )
        };
        let original_inits = spec.init_containers.as_deref().unwrap_or_default();
        let shift = if r.init_first && !original_inits.is_empty() {
            // Upstream removes the whole array and re-adds typed copies of the user's init
            // containers, which drops fields it does not know; inserting at 0 gives the same
            // order and keeps the user's objects untouched.
            p.add("/spec/initContainers/0", OpValue::Container(Box::new(init)));
            1
        } else {
            p.append(
                "/spec/initContainers",
                original_inits.len(),
                [OpValue::Container(Box::new(init))],
            );
            0
        };
        for (k, c) in original_inits.iter().enumerate() {
            if c.name == own_name {
                continue;
            }
            p.append(
                &format!("/spec/initContainers/{}/volumeMounts", k + shift),
                c.volume_mounts.as_ref().map_or(0, Vec::len),
                secret_mounts.iter().cloned().map(OpValue::mount),
            );
        }
        if let Some(share) = r.share_process_namespace {
            p.add("/spec/shareProcessNamespace", OpValue::Bool(share));
        }
    }

    if !r.pre_populate_only && !r.native_sidecar {
        let sidecar = agent_container(pod, r, Role::Sidecar, &secret_mounts, binary)?;
        p.append(
            "/spec/containers",
            spec.containers.len(),
            [OpValue::Container(Box::new(sidecar))],
        );
    }
    Ok(())
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

/// `vault-secrets` at the global path, then one mount per extra path, as upstream orders them.
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

mod container;
mod env;
mod exec;
#[cfg(test)]
mod tests;

use container::{Role, agent_container};
pub use env::{config_env_chunks, container_arg};
use env::{env_vars, shell_quote, shell_word};
pub use exec::{EXEC_INIT_NAME, EXEC_VOLUME, exec_command};
