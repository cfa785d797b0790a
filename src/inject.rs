//! (Pod, request) → the RFC 6902 patch that injects the agents, in upstream's operation order
//! (mutation.md §4), and the mutated pod it produces.

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

    let mut token_volumes = Vec::new();
    if r.pre_populate && !r.native_sidecar {
        token_volumes.push(memory_volume(HOME_INIT));
    }
    if !r.pre_populate_only {
        token_volumes.push(memory_volume(HOME_SIDECAR));
    }
    p.append(
        "/spec/volumes",
        original_volumes,
        token_volumes.into_iter().map(OpValue::volume),
    );
    let mut secret_volumes = vec![memory_volume(SECRETS_VOLUME)];
    secret_volumes.extend((0..extra_paths.len()).map(|i| memory_volume(&custom_volume_name(i))));
    p.append(
        "/spec/volumes",
        original_volumes,
        secret_volumes.into_iter().map(OpValue::volume),
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

    let secret_mounts = secret_mounts(r, &extra_paths);
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

/// Which agent container is being built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// `vault-agent-init`: renders once (`exit_after_auth`) and exits.
    Init,
    /// `vault-agent` in `containers`: keeps the secrets fresh.
    Sidecar,
    /// `vault-agent` in `initContainers` with `restartPolicy: Always` (see [`native_sidecar`]).
    Native,
}

/// The init container or a sidecar, with its JSON patch applied.
fn agent_container(
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
fn canonicalize_quantities(
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

/// mutation.md §5.4; also how many variables the encoded configuration took (0 in ConfigMap
/// mode).
fn env_vars(r: &AgentRequest, init: bool) -> Result<(Vec<EnvVar>, usize), Refusal> {
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
    let mut config_chunks = 0;
    if r.config_map.is_empty() {
        let config = Config::build(r, init)
            .to_json()
            .map_err(|e| Refusal::Patch(Problem::Message(e.to_string())))?;
        let encoded = base64_simd::STANDARD.encode_to_string(config);
        let chunks = config_env_chunks(&encoded);
        config_chunks = chunks.len();
        env.extend(chunks.iter().map(|(name, value)| plain(name, value)));
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
    Ok((env, config_chunks))
}

/// The encoded configuration as `(name, value)` environment variables (not upstream when split).
///
/// One `VAULT_CONFIG`, exactly as upstream, while `VAULT_CONFIG=<value>` and its NUL fit in
/// [`MAX_ENV_STRING`]. Beyond that (vault-k8s issue 197: many templates) the container would
/// never start, so the value is cut into [`CONFIG_CHUNK_LEN`] pieces `VAULT_CONFIG`,
/// `VAULT_CONFIG_1`, `VAULT_CONFIG_2`, ... that [`container_arg`] joins again.
pub fn config_env_chunks(encoded: &str) -> Vec<(String, &str)> {
    if CONFIG_ENV.len() + 1 + encoded.len() < MAX_ENV_STRING {
        return vec![(CONFIG_ENV.to_owned(), encoded)];
    }
    // Base64 is ASCII, so every byte offset is a char boundary.
    encoded
        .as_bytes()
        .chunks(CONFIG_CHUNK_LEN)
        .enumerate()
        .map(|(i, chunk)| {
            let name = if i == 0 {
                CONFIG_ENV.to_owned()
            } else {
                format!("{CONFIG_ENV}_{i}")
            };
            (name, std::str::from_utf8(chunk).unwrap_or_default())
        })
        .collect()
}

/// The container's shell command for a configuration held in `chunks` variables, running the
/// `cli` agent: upstream's [`DEFAULT_CONTAINER_ARG`] for one chunk and `vault`, else the same
/// with every chunk echoed in order, as one word (`echo` is a shell builtin, so the joined
/// value never passes through `execve`).
pub fn container_arg(chunks: usize, cli: &str) -> String {
    let joined: String = (0..chunks.max(1))
        .map(|i| {
            if i == 0 {
                format!("${{{CONFIG_ENV}?}}")
            } else {
                format!("${{{CONFIG_ENV}_{i}?}}")
            }
        })
        .collect();
    format!(
        "echo {joined} | base64 -d > {HOME_PATH}/config.json && {cli} agent -config={HOME_PATH}/config.json"
    )
}

/// Seconds between two runs of the native sidecar's startup probe.
const STARTUP_PROBE_PERIOD_SECONDS: i32 = 1;
/// Failed runs before the kubelet restarts the native sidecar: five minutes to authenticate and
/// render, the same patience an init container gets from a slow Vault in practice.
const STARTUP_PROBE_FAILURE_THRESHOLD: i32 = 300;

/// Turns a sidecar into a native sidecar (not upstream; vault-k8s issue 620, Kubernetes 1.29+).
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
fn native_sidecar(c: &mut Container, r: &AgentRequest) {
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

/// `s` as one literal shell word: unchanged when it holds only characters no shell treats
/// specially (every ordinary URL and path, so upstream's unquoted preStop text is kept for
/// them), else [`shell_quote`]d. Upstream pastes the values in unquoted, so `service: "x; id"`
/// ran `id` in the agent on shutdown and a value with a space broke the revocation.
fn shell_word(s: &str) -> std::borrow::Cow<'_, str> {
    let plain = |c: char| c.is_ascii_alphanumeric() || "@%+=:,./-_".contains(c);
    if !s.is_empty() && s.chars().all(plain) {
        std::borrow::Cow::Borrowed(s)
    } else {
        std::borrow::Cow::Owned(shell_quote(s))
    }
}

/// POSIX single quoting: `'...'`, with each `'` written as `'\''`.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Upstream's `decodeIfBase64`: the decoded bytes when `s` is base64, else `s` itself. Go's
/// `base64.StdEncoding.DecodeString` ignores line breaks and non-zero trailing bits.
fn decode_if_base64(s: &str) -> String {
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
    );
    let compact: String = s.chars().filter(|c| *c != '\n' && *c != '\r').collect();
    match LENIENT.decode(compact) {
        Ok(bytes) => go_json_string(&bytes),
        Err(_) => s.to_owned(),
    }
}

/// The text Go's `encoding/json` writes for a Go string holding `bytes`: upstream keeps the
/// decoded bytes in a string whatever they are, and the JSON encoder replaces every byte that
/// does not start a valid UTF-8 sequence with U+FFFD, one per byte (Rust's lossy conversion
/// would merge a truncated sequence into one replacement).
fn go_json_string(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    let mut rest = bytes;
    loop {
        match std::str::from_utf8(rest) {
            Ok(valid) => {
                out.push_str(valid);
                return out;
            }
            Err(e) => {
                let (valid, after) = rest.split_at(e.valid_up_to());
                // `valid_up_to` bytes are UTF-8 by definition.
                out.push_str(std::str::from_utf8(valid).unwrap_or_default());
                out.push(char::REPLACEMENT_CHARACTER);
                rest = after.get(1..).unwrap_or_default();
            }
        }
    }
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
fn lifecycle(r: &AgentRequest, cli: &str) -> Lifecycle {
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
/// (not upstream, vault-k8s issue 377) it also carries `seccompProfile: RuntimeDefault`, the one
/// field the `restricted` Pod Security profile needs beyond upstream's (non-root uid and gid,
/// no privilege escalation, every capability dropped). Asked for alone, seccomp still gets a
/// context of its own, and nothing else is set.
fn security_context(r: &AgentRequest) -> Option<SecurityContext> {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::os::unix::fs::PermissionsExt;
    use std::process::Command;

    use serde_json::json;

    use super::*;
    use crate::admission::{self, Mutation};
    use crate::settings::Settings;

    /// A pod whose 80 templates of 3 KB encode to about 330 KB of base64.
    fn large_pod() -> Value {
        let mut annotations = serde_json::Map::new();
        annotations.insert("vault.hashicorp.com/agent-inject".into(), json!("true"));
        annotations.insert("vault.hashicorp.com/role".into(), json!("app"));
        for i in 0..80 {
            annotations.insert(
                format!("vault.hashicorp.com/agent-inject-template-t{i:03}"),
                json!(format!(
                    "{{{{ with secret \"kv/data/t{i}\" }}}}{}{{{{ end }}}}",
                    "x".repeat(3000)
                )),
            );
        }
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "big", "annotations": annotations},
            "spec": {
                "containers": [{
                    "name": "app", "image": "app:1",
                    "volumeMounts": [{"name": "sa", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]
                }],
                "volumes": [{"name": "sa", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}}]
            }
        })
    }

    fn sidecar(pod: &Value) -> Container {
        let m = admission::mutate(pod, "apps", &Settings::default().agent).unwrap();
        assert!(matches!(m, Mutation::Inject { .. }));
        let mutated = admission::mutated_object(pod, &m).unwrap();
        let pod: Pod = serde_json::from_value(mutated).unwrap();
        pod.spec
            .unwrap()
            .containers
            .into_iter()
            .find(|c| c.name == SIDECAR_NAME)
            .unwrap()
    }

    /// The value of every plain env var the container sets (the `fieldRef`s are left out).
    fn plain_env(c: &Container) -> Vec<(String, String)> {
        c.env
            .iter()
            .flatten()
            .filter_map(|e| Some((e.name.clone(), e.value.clone()?)))
            .collect()
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn an_unsplit_config_over_128_kib_cannot_even_start_a_shell() {
        // What vault-k8s issue 197 reported: execve refuses the environment with E2BIG.
        let err = Command::new("/bin/sh")
            .args(["-c", "true"])
            .env_clear()
            .env(
                CONFIG_ENV,
                "A".repeat(MAX_ENV_STRING - CONFIG_ENV.len() - 1),
            )
            .status()
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(7), "{err}"); // E2BIG
        let ok = Command::new("/bin/sh")
            .args(["-c", "true"])
            .env_clear()
            .env(
                CONFIG_ENV,
                "A".repeat(MAX_ENV_STRING - CONFIG_ENV.len() - 2),
            )
            .status()
            .unwrap();
        assert!(ok.success());
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn the_split_command_rebuilds_the_exact_config_in_a_real_shell() {
        let c = sidecar(&large_pod());
        let env = plain_env(&c);
        let chunks: Vec<&(String, String)> = env
            .iter()
            .filter(|(k, _)| k.starts_with(CONFIG_ENV))
            .collect();
        assert!(chunks.len() >= 3, "{} chunks", chunks.len());
        let joined: String = chunks.iter().map(|(_, v)| v.as_str()).collect();
        let expected = base64::engine::general_purpose::STANDARD
            .decode(&joined)
            .unwrap();

        // The container's own command and args, with `vault` played by a script that records
        // its arguments and the config path moved into a temporary directory.
        let dir = tempfile::tempdir().unwrap();
        let vault = dir.path().join("vault");
        std::fs::write(
            &vault,
            format!(
                "#!/bin/sh\nprintf '%s\\n' \"$@\" > {}/vault-args\n",
                dir.path().display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&vault, std::fs::Permissions::from_mode(0o755)).unwrap();
        let config_path = dir.path().join("config.json");
        let command = c.command.clone().unwrap();
        let arg = c.args.clone().unwrap()[0].replace(
            "/home/vault/config.json",
            &config_path.display().to_string(),
        );
        let status = Command::new(&command[0])
            .args(&command[1..])
            .arg(&arg)
            .env_clear()
            .env("PATH", format!("{}:/usr/bin:/bin", dir.path().display()))
            .envs(env.iter().map(|(k, v)| (k, v)))
            .status()
            .unwrap();
        assert!(status.success(), "{status}");
        let written = std::fs::read(&config_path).unwrap();
        assert_eq!(written, expected);
        let config: Value = serde_json::from_slice(&written).unwrap();
        assert_eq!(config["template"].as_array().unwrap().len(), 80);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("vault-args")).unwrap(),
            format!("agent\n-config={}\n", config_path.display())
        );
    }

    #[test]
    fn container_arg_is_upstreams_for_one_chunk() {
        assert_eq!(container_arg(0, "vault"), DEFAULT_CONTAINER_ARG);
        assert_eq!(container_arg(1, "vault"), DEFAULT_CONTAINER_ARG);
        assert_eq!(
            container_arg(3, "vault"),
            "echo ${VAULT_CONFIG?}${VAULT_CONFIG_1?}${VAULT_CONFIG_2?} | base64 -d > /home/vault/config.json && vault agent -config=/home/vault/config.json"
        );
        assert_eq!(
            container_arg(1, "bao"),
            "echo ${VAULT_CONFIG?} | base64 -d > /home/vault/config.json && bao agent -config=/home/vault/config.json"
        );
    }

    #[test]
    fn ordinary_values_stay_unquoted_and_others_become_one_word() {
        assert_eq!(
            shell_word("https://vault.vault.svc:8200"),
            "https://vault.vault.svc:8200"
        );
        assert_eq!(shell_word("/vault/tls/ca.crt"), "/vault/tls/ca.crt");
        assert_eq!(shell_word("x; id"), "'x; id'");
        assert_eq!(shell_word("$(id)"), "'$(id)'");
        assert_eq!(shell_word(""), "''");
    }

    #[test]
    fn ca_cert_bytes_that_decode_to_non_utf8_get_one_replacement_per_byte_as_in_go() {
        // "////" is valid base64 for ff ff ff: three invalid bytes, three U+FFFD.
        assert_eq!(decode_if_base64("////"), "\u{fffd}\u{fffd}\u{fffd}");
        // A truncated 4-byte sequence (f0 9f 98) is three bytes Go replaces one by one.
        assert_eq!(
            go_json_string(b"a\xf0\x9f\x98b"),
            "a\u{fffd}\u{fffd}\u{fffd}b"
        );
        assert_eq!(go_json_string("é✓".as_bytes()), "é✓");
        assert_eq!(decode_if_base64("aGk="), "hi");
        assert_eq!(decode_if_base64("not base64!"), "not base64!");
    }

    #[test]
    fn the_ca_cert_bytes_variable_holds_what_upstream_writes() {
        let mut settings = Settings::default();
        settings.agent.vault_address = "http://v:8200".into();
        settings.agent.ca_cert_bytes = "////".into();
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "annotations": {
                "vault.hashicorp.com/agent-inject": "true",
                "vault.hashicorp.com/role": "app"}},
            "spec": {"containers": [{
                "name": "app", "image": "app:1",
                "volumeMounts": [{"name": "sa", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]
            }], "volumes": [{"name": "sa", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}}]}
        });
        let m = admission::mutate(&pod, "apps", &settings.agent).unwrap();
        let mutated: Pod =
            serde_json::from_value(admission::mutated_object(&pod, &m).unwrap()).unwrap();
        let sidecar = mutated.spec.unwrap().containers.pop().unwrap();
        let value = plain_env(&sidecar)
            .into_iter()
            .find(|(k, _)| k == "VAULT_CACERT_BYTES")
            .unwrap()
            .1;
        assert_eq!(value, "\u{fffd}\u{fffd}\u{fffd}");
    }

    #[test]
    fn shell_quoting_survives_quotes_and_spaces() {
        assert_eq!(shell_quote("/a b/c'd"), "'/a b/c'\\''d'");
    }
}
