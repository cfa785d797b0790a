//! The pod's `vault.hashicorp.com/*` annotations, parsed once into a typed, validated and fully
//! defaulted [`AgentRequest`].
//!
//! Upstream runs five phases (gate, defaulting, parsing, validation, patch building), and the
//! phase decides the prefix of a refusal and which error wins when several annotations are bad.
//! The first four live here, in upstream's order; phase E (quantities, JSON patches, config
//! encoding) happens while the containers are built in `inject`.
//!
//! Defaulting works on a private working copy of the annotation map, exactly as upstream does,
//! because "absent" and "present but empty" behave differently for many keys; nothing outside this
//! module sees that map or any raw annotation string.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::collections::hash_map::{Entry, HashMap};

use k8s_openapi::api::core::v1::{Pod, Volume};
use thiserror::Error;

use crate::goparse::{
    self, NumError, parse_bool, parse_duration, parse_float64, parse_int64, parse_uint64,
};
use crate::settings::{AgentDefaults, DEFAULT_AGENT_IMAGE, split_list};

/// Every annotation key the injector reads (and the one it writes).
pub mod keys {
    /// `true` asks for injection.
    pub const INJECT: &str = "vault.hashicorp.com/agent-inject";
    /// Written as `injected`; read to skip pods already injected.
    pub const STATUS: &str = "vault.hashicorp.com/agent-inject-status";
    /// Prefix of a secret's Vault path.
    pub const SECRET: &str = "vault.hashicorp.com/agent-inject-secret";
    /// Prefix of a secret's file name under its mount path.
    pub const FILE: &str = "vault.hashicorp.com/agent-inject-file";
    /// Prefix of a secret's file permissions.
    pub const PERMS: &str = "vault.hashicorp.com/agent-inject-perms";
    /// Prefix of a secret's inline template.
    pub const TEMPLATE: &str = "vault.hashicorp.com/agent-inject-template";
    /// Which app containers get the secret mounts.
    pub const CONTAINERS: &str = "vault.hashicorp.com/agent-inject-containers";
    /// `map` or `json`.
    pub const DEFAULT_TEMPLATE: &str = "vault.hashicorp.com/agent-inject-default-template";
    /// Prefix of a secret's template file path.
    pub const TEMPLATE_FILE: &str = "vault.hashicorp.com/agent-inject-template-file";
    /// Prefix of a secret's left template delimiter.
    pub const LEFT_DELIM: &str = "vault.hashicorp.com/agent-template-left-delim";
    /// Prefix of a secret's right template delimiter.
    pub const RIGHT_DELIM: &str = "vault.hashicorp.com/agent-template-right-delim";
    /// Adds a token sink in the secrets volume.
    pub const INJECT_TOKEN: &str = "vault.hashicorp.com/agent-inject-token";
    /// Prefix of a secret's post-render command.
    pub const COMMAND: &str = "vault.hashicorp.com/agent-inject-command";
    /// Agent image.
    pub const IMAGE: &str = "vault.hashicorp.com/agent-image";
    /// The admission request's namespace (defaulted, validated).
    pub const REQUEST_NAMESPACE: &str = "vault.hashicorp.com/agent-request-namespace";
    /// Init container first among init containers.
    pub const INIT_FIRST: &str = "vault.hashicorp.com/agent-init-first";
    /// Adds the init container.
    pub const PRE_POPULATE: &str = "vault.hashicorp.com/agent-pre-populate";
    /// No sidecar.
    pub const PRE_POPULATE_ONLY: &str = "vault.hashicorp.com/agent-pre-populate-only";
    /// ConfigMap mode.
    pub const CONFIGMAP: &str = "vault.hashicorp.com/agent-configmap";
    /// Extra Secret mounted at /vault/custom.
    pub const EXTRA_SECRET: &str = "vault.hashicorp.com/agent-extra-secret";
    /// CPU limit.
    pub const LIMITS_CPU: &str = "vault.hashicorp.com/agent-limits-cpu";
    /// Memory limit.
    pub const LIMITS_MEM: &str = "vault.hashicorp.com/agent-limits-mem";
    /// Ephemeral storage limit.
    pub const LIMITS_EPHEMERAL: &str = "vault.hashicorp.com/agent-limits-ephemeral";
    /// CPU request.
    pub const REQUESTS_CPU: &str = "vault.hashicorp.com/agent-requests-cpu";
    /// Memory request.
    pub const REQUESTS_MEM: &str = "vault.hashicorp.com/agent-requests-mem";
    /// Ephemeral storage request.
    pub const REQUESTS_EPHEMERAL: &str = "vault.hashicorp.com/agent-requests-ephemeral";
    /// preStop token revocation.
    pub const REVOKE_ON_SHUTDOWN: &str = "vault.hashicorp.com/agent-revoke-on-shutdown";
    /// Seconds the preStop sleeps.
    pub const REVOKE_GRACE: &str = "vault.hashicorp.com/agent-revoke-grace";
    /// Vault namespace of the auth method.
    pub const VAULT_NAMESPACE: &str = "vault.hashicorp.com/namespace";
    /// Agent uid.
    pub const RUN_AS_USER: &str = "vault.hashicorp.com/agent-run-as-user";
    /// Agent gid.
    pub const RUN_AS_GROUP: &str = "vault.hashicorp.com/agent-run-as-group";
    /// Take the uid of the first app container.
    pub const RUN_AS_SAME_USER: &str = "vault.hashicorp.com/agent-run-as-same-user";
    /// Sets `spec.shareProcessNamespace`.
    pub const SHARE_PROCESS_NAMESPACE: &str = "vault.hashicorp.com/agent-share-process-namespace";
    /// Security context on the agents.
    pub const SET_SECURITY_CONTEXT: &str = "vault.hashicorp.com/agent-set-security-context";
    /// Volume holding the service-account token.
    pub const SA_TOKEN_VOLUME_NAME: &str =
        "vault.hashicorp.com/agent-service-account-token-volume-name";
    /// Vault address.
    pub const SERVICE: &str = "vault.hashicorp.com/service";
    /// HTTPS proxy for the agents.
    pub const PROXY_ADDRESS: &str = "vault.hashicorp.com/proxy-address";
    /// Skip Vault TLS verification.
    pub const TLS_SKIP_VERIFY: &str = "vault.hashicorp.com/tls-skip-verify";
    /// Secret with Vault TLS material, mounted at /vault/tls.
    pub const TLS_SECRET: &str = "vault.hashicorp.com/tls-secret";
    /// TLS server name for Vault.
    pub const TLS_SERVER_NAME: &str = "vault.hashicorp.com/tls-server-name";
    /// CA certificate path.
    pub const CA_CERT: &str = "vault.hashicorp.com/ca-cert";
    /// CA directory path (despite the name).
    pub const CA_KEY: &str = "vault.hashicorp.com/ca-key";
    /// Client certificate path.
    pub const CLIENT_CERT: &str = "vault.hashicorp.com/client-cert";
    /// Client key path.
    pub const CLIENT_KEY: &str = "vault.hashicorp.com/client-key";
    /// `VAULT_MAX_RETRIES`.
    pub const CLIENT_MAX_RETRIES: &str = "vault.hashicorp.com/client-max-retries";
    /// `VAULT_CLIENT_TIMEOUT`.
    pub const CLIENT_TIMEOUT: &str = "vault.hashicorp.com/client-timeout";
    /// `GOMAXPROCS`.
    pub const GO_MAX_PROCS: &str = "vault.hashicorp.com/go-max-procs";
    /// Agent log level.
    pub const LOG_LEVEL: &str = "vault.hashicorp.com/log-level";
    /// Agent log format.
    pub const LOG_FORMAT: &str = "vault.hashicorp.com/log-format";
    /// Vault role.
    pub const ROLE: &str = "vault.hashicorp.com/role";
    /// Auth method type.
    pub const AUTH_TYPE: &str = "vault.hashicorp.com/auth-type";
    /// Auth method mount path.
    pub const AUTH_PATH: &str = "vault.hashicorp.com/auth-path";
    /// Prefix of `auto_auth.method.config` entries.
    pub const AUTH_CONFIG: &str = "vault.hashicorp.com/auth-config";
    /// Default mount path of rendered secrets; also a per-secret prefix.
    pub const SECRET_VOLUME_PATH: &str = "vault.hashicorp.com/secret-volume-path";
    /// Keep secret-name case; also a per-secret prefix.
    pub const PRESERVE_SECRET_CASE: &str = "vault.hashicorp.com/preserve-secret-case";
    /// Agent caching.
    pub const CACHE_ENABLE: &str = "vault.hashicorp.com/agent-cache-enable";
    /// `cache.use_auto_auth_token`.
    pub const CACHE_USE_AUTO_AUTH_TOKEN: &str =
        "vault.hashicorp.com/agent-cache-use-auto-auth-token";
    /// Cache listener port.
    pub const CACHE_LISTENER_PORT: &str = "vault.hashicorp.com/agent-cache-listener-port";
    /// `cache.persist.exit_on_err`.
    pub const CACHE_EXIT_ON_ERR: &str = "vault.hashicorp.com/agent-cache-exit-on-err";
    /// Container whose mounts the agents copy.
    pub const COPY_VOLUME_MOUNTS: &str = "vault.hashicorp.com/agent-copy-volume-mounts";
    /// `template_config.exit_on_retry_failure`.
    pub const TEMPLATE_EXIT_ON_RETRY_FAILURE: &str =
        "vault.hashicorp.com/template-config-exit-on-retry-failure";
    /// `template_config.static_secret_render_interval`.
    pub const TEMPLATE_STATIC_SECRET_RENDER_INTERVAL: &str =
        "vault.hashicorp.com/template-static-secret-render-interval";
    /// `template_config.max_connections_per_host`.
    pub const TEMPLATE_MAX_CONNECTIONS_PER_HOST: &str =
        "vault.hashicorp.com/template-max-connections-per-host";
    /// `template_config.lease_renewal_threshold`.
    pub const TEMPLATE_LEASE_RENEWAL_THRESHOLD: &str =
        "vault.hashicorp.com/template-lease-renewal-threshold";
    /// `agent_api.enable_quit`.
    pub const ENABLE_QUIT: &str = "vault.hashicorp.com/agent-enable-quit";
    /// `auto_auth.method.min_backoff`.
    pub const AUTH_MIN_BACKOFF: &str = "vault.hashicorp.com/auth-min-backoff";
    /// `auto_auth.method.max_backoff`.
    pub const AUTH_MAX_BACKOFF: &str = "vault.hashicorp.com/auth-max-backoff";
    /// Top-level `disable_idle_connections`.
    pub const DISABLE_IDLE_CONNECTIONS: &str = "vault.hashicorp.com/agent-disable-idle-connections";
    /// Top-level `disable_keep_alives`.
    pub const DISABLE_KEEP_ALIVES: &str = "vault.hashicorp.com/agent-disable-keep-alives";
    /// JSON patch applied to the sidecar.
    pub const JSON_PATCH: &str = "vault.hashicorp.com/agent-json-patch";
    /// JSON patch applied to the init container.
    pub const INIT_JSON_PATCH: &str = "vault.hashicorp.com/agent-init-json-patch";
    /// `auto_auth.method.exit_on_err`.
    pub const AUTO_AUTH_EXIT_ON_ERR: &str = "vault.hashicorp.com/agent-auto-auth-exit-on-err";
    /// Prefix of `telemetry` entries.
    pub const TELEMETRY: &str = "vault.hashicorp.com/agent-telemetry";
    /// Prefix of a secret's `error_on_missing_key`.
    pub const ERROR_ON_MISSING_KEY: &str = "vault.hashicorp.com/error-on-missing-key";
    /// Not upstream: the agent runs as a native sidecar (an init container with
    /// `restartPolicy: Always`, Kubernetes 1.29+); default `-native-sidecar`.
    pub const NATIVE_SIDECAR: &str = "vault.hashicorp.com/agent-native-sidecar";
    /// Not upstream: `seccompProfile: RuntimeDefault` on the agent containers (restricted Pod
    /// Security); default `-seccomp-runtime-default`.
    pub const SECCOMP_RUNTIME_DEFAULT: &str = "vault.hashicorp.com/agent-seccomp-runtime-default";
}

/// Default mount path of the rendered secrets.
pub const DEFAULT_SECRET_VOLUME_PATH: &str = "/vault/secrets";
/// Mount path used when the named token volume is not mounted by any app container.
pub const DEFAULT_SA_MOUNT_PATH: &str = "/var/run/secrets/vault.hashicorp.com/serviceaccount";

/// A refusal: upstream's phase prefix, then what went wrong.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum Refusal {
    /// The object is not a Pod; upstream sends the decoder's text with no prefix.
    #[error("{0}")]
    NotAPod(String),
    /// Phase A: `agent-inject` is not a bool.
    #[error("error checking if should inject agent: {0}")]
    Gate(Problem),
    /// `kube-system` and `kube-public` are refused outright.
    #[error("error with request namespace: cannot inject into system namespaces: {0}")]
    SystemNamespace(String),
    /// Phase B.
    #[error("error adding default annotations: {0}")]
    Defaults(Problem),
    /// Phase C.
    #[error("error creating new agent sidecar: {0}")]
    Parse(Problem),
    /// Phase D.
    #[error("error validating agent configuration: {0}")]
    Validate(Problem),
    /// Phase E.
    #[error("error creating patch for agent: {0}")]
    Patch(Problem),
}

/// What is wrong, in upstream's words, plus the annotation at fault where upstream omits it.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum Problem {
    /// A bool annotation (parsed like go-secure-stdlib's `parseutil.ParseBool`).
    #[error("cannot parse '' as bool: {err} (annotation {key})")]
    Bool {
        /// The key at fault.
        key: String,
        /// Go's error.
        err: NumError,
    },
    /// An integer, unsigned or float annotation.
    #[error("{err} (annotation {key})")]
    Number {
        /// The key at fault.
        key: String,
        /// Go's error.
        err: NumError,
    },
    /// `auth-min-backoff` / `auth-max-backoff`.
    #[error("error parsing {which} backoff as duration: {err} (annotation {key})")]
    Backoff {
        /// `min` or `max`.
        which: &'static str,
        /// The key at fault.
        key: &'static str,
        /// Go's error.
        err: goparse::DurationError,
    },
    /// A JSON-patch annotation that is not a JSON array of objects.
    #[error("error parsing JSON patch for annotation {key}: {err}")]
    JsonPatchSyntax {
        /// The key at fault.
        key: &'static str,
        /// The JSON decoder's message.
        err: String,
    },
    /// `agent-share-process-namespace` is not a bool (upstream's own wording).
    #[error("invalid value {value} for annotation \"{key}\", err=cannot parse '' as bool: {err}")]
    ShareProcessNamespace {
        /// The raw value.
        value: String,
        /// The key.
        key: &'static str,
        /// Go's error.
        err: NumError,
    },
    /// Any other fixed message (validation, discovery, run-as-same-user...).
    #[error("{0}")]
    Message(String),
    /// A resource quantity that Kubernetes would not accept.
    #[error("{err} (annotation {key}: {})", goparse::go_quote(.value))]
    Quantity {
        /// The key whose value (from the pod or the injector default) is wrong.
        key: &'static str,
        /// The value.
        value: String,
        /// apimachinery's error.
        err: goparse::QuantityError,
    },
}

impl Problem {
    fn msg(s: impl Into<String>) -> Self {
        Self::Message(s.into())
    }
}

/// The service-account token volume the agents log in with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenVolume {
    /// Volume name.
    pub name: String,
    /// Where it is mounted.
    pub mount_path: String,
    /// File inside the mount.
    pub token_path: String,
}

/// One rendered file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secret {
    /// File name (lowercased unless case is preserved).
    pub name: String,
    /// The annotation suffix as written; other per-secret keys are looked up with it.
    pub raw_name: String,
    /// Vault path used by the default template.
    pub path: String,
    /// Inline template.
    pub template: String,
    /// Template file inside the agent container (only when `template` is empty).
    pub template_file: String,
    /// Mount path of the volume holding this file.
    pub mount_path: String,
    /// Command run after rendering.
    pub command: String,
    /// `left_delimiter` (empty = `{{`).
    pub left_delimiter: String,
    /// `right_delimiter` (empty = `}}`).
    pub right_delimiter: String,
    /// File name/path under the mount path.
    pub file: String,
    /// `perms`.
    pub perms: String,
    /// `error_on_missing_key`.
    pub error_on_missing_key: bool,
}

/// `agent-inject-default-template`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultTemplate {
    /// `key: value` lines.
    Map,
    /// The secret's data as JSON.
    Json,
}

/// Vault connection settings of the agents.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VaultConnection {
    /// `service`.
    pub address: String,
    /// `ca-cert`.
    pub ca_cert: String,
    /// `ca-key` (a CA directory).
    pub ca_key: String,
    /// `client-cert`.
    pub client_cert: String,
    /// `client-key`.
    pub client_key: String,
    /// `tls-skip-verify`.
    pub tls_skip_verify: bool,
    /// `tls-server-name`.
    pub tls_server_name: String,
}

/// `auto_auth.method`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuthMethod {
    /// `auth-type`.
    pub auth_type: String,
    /// `auth-path`.
    pub mount_path: String,
    /// `namespace`.
    pub namespace: String,
    /// `auth-min-backoff`.
    pub min_backoff: String,
    /// `auth-max-backoff`.
    pub max_backoff: String,
    /// `role` (empty when unset).
    pub role: String,
    /// `auto_auth.method.config`: token_path, `auth-config-*`, then role.
    pub config: BTreeMap<String, String>,
    /// `agent-auto-auth-exit-on-err`.
    pub exit_on_err: bool,
}

/// Agent caching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cache {
    /// `agent-cache-enable`.
    pub enable: bool,
    /// enable && pre-populate && !pre-populate-only && !native-sidecar.
    pub persist: bool,
    /// `agent-cache-listener-port`.
    pub listener_port: String,
    /// `agent-cache-use-auto-auth-token`.
    pub use_auto_auth_token: String,
    /// `agent-cache-exit-on-err`.
    pub exit_on_err: bool,
}

/// `template_config`.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateConfig {
    /// `exit_on_retry_failure`.
    pub exit_on_retry_failure: bool,
    /// `static_secret_render_interval`.
    pub static_secret_render_interval: String,
    /// `max_connections_per_host`.
    pub max_connections_per_host: i64,
    /// `lease_renewal_threshold` (may be NaN/Inf: refused when encoding, as upstream).
    pub lease_renewal_threshold: f64,
}

/// The six resource quantities, unparsed until phase E (an empty value leaves it out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resources {
    /// `agent-limits-cpu`.
    pub limits_cpu: String,
    /// `agent-limits-mem`.
    pub limits_mem: String,
    /// `agent-limits-ephemeral`.
    pub limits_ephemeral: String,
    /// `agent-requests-cpu`.
    pub requests_cpu: String,
    /// `agent-requests-mem`.
    pub requests_mem: String,
    /// `agent-requests-ephemeral`.
    pub requests_ephemeral: String,
}

/// Plain env values handed to the agent containers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AgentEnv {
    /// `go-max-procs`.
    pub go_max_procs: String,
    /// `client-timeout`.
    pub client_timeout: String,
    /// `client-max-retries`.
    pub client_max_retries: String,
    /// `log-level`.
    pub log_level: String,
    /// `log-format`.
    pub log_format: String,
    /// `proxy-address`.
    pub proxy_address: String,
    /// The injector's `-vault-cacert-bytes`.
    pub ca_cert_bytes: String,
}

/// Everything the injector needs to know about one pod, typed and defaulted.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentRequest {
    /// The admission request namespace.
    pub namespace: String,
    /// Agent image.
    pub image: String,
    /// Vault connection.
    pub vault: VaultConnection,
    /// Auth method.
    pub auth: AuthMethod,
    /// Token volume for the agents' login.
    pub service_account: TokenVolume,
    /// IRSA token mount (name, path) when auth-type is `aws` and one exists.
    pub irsa_mount: Option<(String, String)>,
    /// AWS env copied from the app containers (auth-type `aws`), in a fixed order.
    pub aws_env: Vec<(String, String)>,
    /// Rendered files, sorted by raw name.
    pub secrets: Vec<Secret>,
    /// Global `secret-volume-path`.
    pub secret_volume_path: String,
    /// Default template.
    pub default_template: DefaultTemplate,
    /// Add the init container.
    pub pre_populate: bool,
    /// Leave out the sidecar.
    pub pre_populate_only: bool,
    /// Init container first.
    pub init_first: bool,
    /// App containers that get the mounts (exact names; may hold `""`).
    pub inject_containers: Vec<String>,
    /// preStop revocation.
    pub revoke_on_shutdown: bool,
    /// preStop sleep.
    pub revoke_grace: u64,
    /// Agent uid (after run-as-same-user).
    pub run_as_user: i64,
    /// Agent gid.
    pub run_as_group: i64,
    /// Put a security context on the agents.
    pub set_security_context: bool,
    /// `spec.shareProcessNamespace` to set, when asked.
    pub share_process_namespace: Option<bool>,
    /// Caching.
    pub cache: Cache,
    /// Not upstream: one agent, injected as a native sidecar (see `inject`). Always false with
    /// `pre_populate_only`, which wins.
    pub native_sidecar: bool,
    /// Not upstream: `seccompProfile: RuntimeDefault` on the agent containers.
    pub seccomp_runtime_default: bool,
    /// Extra token sink in the secrets volume.
    pub inject_token: bool,
    /// `agent_api.enable_quit`.
    pub enable_quit: bool,
    /// `template_config`.
    pub template_config: TemplateConfig,
    /// `disable_idle_connections`.
    pub disable_idle_connections: Vec<String>,
    /// `disable_keep_alives`.
    pub disable_keep_alives: Vec<String>,
    /// `agent-telemetry-*` entries (name with `_`, JSON-decoded value) when any key exists.
    pub telemetry: Option<BTreeMap<String, serde_json::Value>>,
    /// ConfigMap mode when non-empty.
    pub config_map: String,
    /// `agent-extra-secret`.
    pub extra_secret: String,
    /// `tls-secret`.
    pub tls_secret: String,
    /// `agent-copy-volume-mounts`.
    pub copy_volume_mounts: String,
    /// Quantities.
    pub resources: Resources,
    /// `agent-json-patch` (validated JSON, applied in phase E).
    pub json_patch: Option<serde_json::Value>,
    /// `agent-init-json-patch`.
    pub init_json_patch: Option<serde_json::Value>,
    /// Env values.
    pub env: AgentEnv,
}

/// Phase A: whether the pod asks for injection and has not had it yet.
pub fn should_inject(pod: &Pod) -> Result<bool, Refusal> {
    skip_reason(pod).map(|reason| reason.is_none())
}

/// Why a pod that passes the gate is left alone (allowed without a patch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// The pod has no `agent-inject` annotation.
    NotAnnotated,
    /// `agent-inject` is false (or empty).
    NotRequested,
    /// The pod is past `Pending`: this phase.
    NotPending(String),
    /// `agent-inject-status` is `injected`.
    AlreadyInjected,
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotAnnotated => write!(f, "no {} annotation", keys::INJECT),
            Self::NotRequested => write!(f, "{} is false", keys::INJECT),
            Self::NotPending(phase) => write!(f, "the pod is {phase:?}, not pending"),
            Self::AlreadyInjected => write!(f, "already injected ({}: injected)", keys::STATUS),
        }
    }
}

/// Phase A with its reason: `None` when the pod is to be injected.
pub fn skip_reason(pod: &Pod) -> Result<Option<SkipReason>, Refusal> {
    let annotations = pod.metadata.annotations.as_ref();
    let Some(raw) = annotations.and_then(|a| a.get(keys::INJECT)) else {
        return Ok(Some(SkipReason::NotAnnotated));
    };
    if !parse_weak_bool(keys::INJECT, raw).map_err(Refusal::Gate)? {
        return Ok(Some(SkipReason::NotRequested));
    }
    let phase = pod
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or_default();
    if !phase.is_empty() && phase != "Pending" {
        return Ok(Some(SkipReason::NotPending(phase.to_owned())));
    }
    let injected = annotations
        .and_then(|a| a.get(keys::STATUS))
        .map(String::as_str)
        == Some("injected");
    Ok(injected.then_some(SkipReason::AlreadyInjected))
}

/// Phases B, C and D for a pod that passed the gate and the namespace check.
pub fn parse<'a>(
    pod: &'a Pod,
    namespace: &'a str,
    defaults: &'a AgentDefaults,
) -> Result<AgentRequest, Refusal> {
    let ann = apply_defaults(pod, namespace, defaults).map_err(Refusal::Defaults)?;
    let request = Parser {
        pod,
        ann: &ann,
        defaults,
    }
    .parse()
    .map_err(Refusal::Parse)?;
    validate(&request, &ann).map_err(Refusal::Validate)?;
    Ok(request)
}

/// go-secure-stdlib `parseutil.ParseBool`: the empty string is false, else Go's ParseBool.
fn parse_weak_bool(key: &str, raw: &str) -> Result<bool, Problem> {
    if raw.is_empty() {
        return Ok(false);
    }
    parse_bool(raw).map_err(|err| Problem::Bool {
        key: key.to_owned(),
        err,
    })
}

/// go-secure-stdlib `parseutil.ParseInt`: the empty string is 0.
fn parse_weak_int(key: &str, raw: &str) -> Result<i64, Problem> {
    if raw.is_empty() {
        return Ok(0);
    }
    parse_int64(raw).map_err(|err| Problem::Number {
        key: key.to_owned(),
        err,
    })
}

/// Phase B's working copy: the pod's annotations with upstream's defaults filled in, borrowed
/// from the pod and the settings wherever a value is not computed. A hash map, because every
/// key the parser looks up starts with the same 20 bytes (`vault.hashicorp.com/`): in an
/// ordered map each of the ~100 lookups of a review was several long `memcmp`s, a tenth of the
/// core's time. The hasher is seeded per process, so keys sent to collide cannot be chosen.
/// Nothing iterates it in an order that reaches the output: [`prefixed`] sorts, and the other
/// readers collect into ordered maps.
type Annotations<'a> = HashMap<&'a str, Cow<'a, str>, foldhash::fast::RandomState>;

/// Phase B: fill in absent keys of a working copy, in upstream's order.
fn apply_defaults<'a>(
    pod: &'a Pod,
    namespace: &'a str,
    d: &'a AgentDefaults,
) -> Result<Annotations<'a>, Problem> {
    if d.vault_address.is_empty() {
        return Err(Problem::msg("address for Vault required"));
    }
    if d.auth_path.is_empty() {
        return Err(Problem::msg("Vault Auth Path required"));
    }
    if namespace.is_empty() {
        return Err(Problem::msg("kubernetes namespace required"));
    }
    let from_pod = pod.metadata.annotations.as_ref();
    // Room for the pod's keys and every default below, so the map never grows.
    let mut ann: Annotations<'a> = HashMap::with_capacity_and_hasher(
        from_pod.map_or(0, BTreeMap::len) + 48,
        foldhash::fast::RandomState::default(),
    );
    ann.extend(
        from_pod
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.as_str(), Cow::Borrowed(v.as_str()))),
    );
    let mut default = |key: &'static str, value: Cow<'a, str>| -> bool {
        match ann.entry(key) {
            Entry::Occupied(_) => true,
            Entry::Vacant(slot) => {
                slot.insert(value);
                false
            }
        }
    };
    let or = |v: &'a str, fallback: &'static str| -> Cow<'a, str> {
        Cow::Borrowed(if v.is_empty() { fallback } else { v })
    };
    let b = |v: &'a str| Cow::Borrowed(v);
    default(keys::SERVICE, b(&d.vault_address));
    default(keys::AUTH_TYPE, or(&d.auth_type, "kubernetes"));
    default(keys::AUTH_PATH, b(&d.auth_path));
    default(keys::VAULT_NAMESPACE, b(&d.vault_namespace));
    default(keys::PROXY_ADDRESS, b(&d.proxy_address));
    default(keys::IMAGE, or(&d.image, DEFAULT_AGENT_IMAGE));
    default(keys::REQUEST_NAMESPACE, b(namespace));
    default(keys::LIMITS_CPU, b(&d.resources.cpu_limit));
    default(keys::LIMITS_MEM, b(&d.resources.memory_limit));
    default(keys::LIMITS_EPHEMERAL, b(&d.resources.ephemeral_limit));
    default(keys::REQUESTS_CPU, b(&d.resources.cpu_request));
    default(keys::REQUESTS_MEM, b(&d.resources.memory_request));
    default(keys::REQUESTS_EPHEMERAL, b(&d.resources.ephemeral_request));
    default(keys::SECRET_VOLUME_PATH, b(DEFAULT_SECRET_VOLUME_PATH));
    default(keys::REVOKE_ON_SHUTDOWN, b(bool_str(d.revoke_on_shutdown)));
    default(keys::REVOKE_GRACE, b("5"));
    default(keys::LOG_LEVEL, b("info"));
    default(keys::LOG_FORMAT, b("standard"));
    default(keys::SA_TOKEN_VOLUME_NAME, b(""));
    let security_context_set = default(
        keys::SET_SECURITY_CONTEXT,
        b(bool_str(d.set_security_context)),
    );
    let user_set = default(keys::RUN_AS_USER, or(&d.run_as_user, "100"));
    let same_user_set = default(keys::RUN_AS_SAME_USER, b(bool_str(d.run_as_same_user)));
    let group_set = default(keys::RUN_AS_GROUP, or(&d.run_as_group, "1000"));
    // Asking for a uid or gid on a pod only makes sense with a security context, so upstream
    // turns it on when the injector-wide setting is off and the pod did not say otherwise.
    if !d.set_security_context && !security_context_set && (user_set || same_user_set || group_set)
    {
        ann.insert(keys::SET_SECURITY_CONTEXT, b("true"));
    }
    let mut default = |key: &'static str, value: Cow<'a, str>| {
        ann.entry(key).or_insert(value);
    };
    default(keys::CACHE_ENABLE, b("false"));
    default(keys::CACHE_LISTENER_PORT, b("8200"));
    default(keys::CACHE_USE_AUTO_AUTH_TOKEN, b("true"));
    default(keys::CACHE_EXIT_ON_ERR, b("false"));
    let container_names: Vec<&str> = pod
        .spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .map(|c| c.name.as_str())
        .collect();
    default(keys::CONTAINERS, Cow::Owned(container_names.join(",")));
    default(keys::DEFAULT_TEMPLATE, b(&d.default_template));
    default(
        keys::TEMPLATE_EXIT_ON_RETRY_FAILURE,
        b(bool_str(d.exit_on_retry_failure)),
    );
    default(
        keys::TEMPLATE_STATIC_SECRET_RENDER_INTERVAL,
        b(&d.static_secret_render_interval),
    );
    default(
        keys::TEMPLATE_MAX_CONNECTIONS_PER_HOST,
        Cow::Owned(d.max_connections_per_host.to_string()),
    );
    for (key, which, injector) in [
        (keys::AUTH_MIN_BACKOFF, "min", &d.auth_min_backoff),
        (keys::AUTH_MAX_BACKOFF, "max", &d.auth_max_backoff),
    ] {
        match ann.get(key) {
            Some(v) if !v.is_empty() => {
                parse_duration(v).map_err(|err| Problem::Backoff { which, key, err })?;
            }
            Some(_) => {}
            None if !injector.is_empty() => {
                ann.insert(key, b(injector));
            }
            None => {}
        }
    }
    ann.entry(keys::DISABLE_IDLE_CONNECTIONS)
        .or_insert(b(&d.disable_idle_connections));
    ann.entry(keys::DISABLE_KEEP_ALIVES)
        .or_insert(b(&d.disable_keep_alives));
    for key in [keys::JSON_PATCH, keys::INIT_JSON_PATCH] {
        match ann.get(key).map(|v| v.as_ref()) {
            Some("") => {
                ann.remove(key);
            }
            Some(v) => {
                check_json_patch_syntax(v).map_err(|err| Problem::JsonPatchSyntax { key, err })?
            }
            None => {}
        }
    }
    Ok(ann)
}

fn bool_str(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

/// Upstream's phase B only decodes the document: a JSON array of objects, or `null`. Unknown
/// operations are left for phase E, where applying them fails.
fn check_json_patch_syntax(raw: &str) -> Result<(), String> {
    let value: serde_json::Value = serde_json::from_str(raw).map_err(|e| e.to_string())?;
    match value {
        serde_json::Value::Null => Ok(()),
        serde_json::Value::Array(items) => {
            if items.iter().all(serde_json::Value::is_object) {
                Ok(())
            } else {
                Err(
                    "json: cannot unmarshal a non-object into an operation of the JSON patch"
                        .to_owned(),
                )
            }
        }
        _ => Err(
            "json: cannot unmarshal a non-array into a JSON patch (an RFC 6902 array)".to_owned(),
        ),
    }
}

struct Parser<'a> {
    pod: &'a Pod,
    ann: &'a Annotations<'a>,
    defaults: &'a AgentDefaults,
}

impl Parser<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.ann.get(key).map(|v| v.as_ref())
    }

    fn string(&self, key: &str) -> String {
        self.get(key).unwrap_or_default().to_owned()
    }

    /// A bool that takes `absent` when the key is missing from the working copy.
    fn bool_or(&self, key: &str, absent: bool) -> Result<bool, Problem> {
        match self.get(key) {
            None => Ok(absent),
            Some(raw) => parse_weak_bool(key, raw),
        }
    }

    /// Phase C in upstream's order (annotations.md §5).
    fn parse(&self) -> Result<AgentRequest, Problem> {
        let pod = self.pod;
        let service_account = service_account(pod, &self.string(keys::SA_TOKEN_VOLUME_NAME))?;
        let auth_type = self.string(keys::AUTH_TYPE);
        let irsa_mount = if auth_type == "aws" {
            irsa_mount(pod)
        } else {
            None
        };
        let secrets = self.secrets()?;
        let role = self.string(keys::ROLE);
        let auth_config = self.auth_config(&service_account, &role);
        // `agent-inject` passed the gate, so it parses; upstream reads it again anyway.
        self.bool_or(keys::INJECT, true)?;
        let telemetry = self.telemetry();
        let init_first = self.bool_or(keys::INIT_FIRST, false)?;
        let pre_populate = self.bool_or(keys::PRE_POPULATE, true)?;
        let pre_populate_only = self.bool_or(keys::PRE_POPULATE_ONLY, false)?;
        let revoke_on_shutdown = self.bool_or(keys::REVOKE_ON_SHUTDOWN, false)?;
        let inject_containers = self
            .string(keys::CONTAINERS)
            .split(',')
            .map(str::to_owned)
            .collect();
        let revoke_grace = match self.get(keys::REVOKE_GRACE) {
            None => 0,
            Some(raw) => parse_uint64(raw).map_err(|err| Problem::Number {
                key: keys::REVOKE_GRACE.to_owned(),
                err,
            })?,
        };
        let tls_skip_verify = self.bool_or(keys::TLS_SKIP_VERIFY, false)?;
        let mut run_as_user = parse_weak_int(
            keys::RUN_AS_USER,
            self.get(keys::RUN_AS_USER).unwrap_or_default(),
        )?;
        let run_as_group = parse_weak_int(
            keys::RUN_AS_GROUP,
            self.get(keys::RUN_AS_GROUP).unwrap_or_default(),
        )?;
        if self.bool_or(keys::RUN_AS_SAME_USER, false)? {
            run_as_user = first_container_uid(pod)?;
        }
        let share_process_namespace = self.share_process_namespace()?;
        let set_security_context = self.bool_or(keys::SET_SECURITY_CONTEXT, true)?;
        let cache_enable = self.bool_or(keys::CACHE_ENABLE, false)?;
        let cache_exit_on_err = self.bool_or(keys::CACHE_EXIT_ON_ERR, false)?;
        let default_template = match self.string(keys::DEFAULT_TEMPLATE).to_lowercase().as_str() {
            "map" => DefaultTemplate::Map,
            "json" => DefaultTemplate::Json,
            other => {
                return Err(Problem::msg(format!(
                    "invalid default template type: {other} (annotation {}; use map or json)",
                    keys::DEFAULT_TEMPLATE
                )));
            }
        };
        let inject_token = self.bool_or(keys::INJECT_TOKEN, false)?;
        let exit_on_retry_failure = self.bool_or(keys::TEMPLATE_EXIT_ON_RETRY_FAILURE, true)?;
        let max_connections_per_host = match self.get(keys::TEMPLATE_MAX_CONNECTIONS_PER_HOST) {
            None => 0,
            Some(raw) => parse_weak_int(keys::TEMPLATE_MAX_CONNECTIONS_PER_HOST, raw)?,
        };
        let lease_renewal_threshold = match self.get(keys::TEMPLATE_LEASE_RENEWAL_THRESHOLD) {
            None => 0.0,
            Some(raw) => parse_float64(raw).map_err(|err| Problem::Number {
                key: keys::TEMPLATE_LEASE_RENEWAL_THRESHOLD.to_owned(),
                err,
            })?,
        };
        let enable_quit = self.bool_or(keys::ENABLE_QUIT, false)?;
        // Split only when non-empty, as upstream: an empty value leaves the key out entirely.
        let disable_idle_connections = split_list(&self.string(keys::DISABLE_IDLE_CONNECTIONS));
        let disable_keep_alives = split_list(&self.string(keys::DISABLE_KEEP_ALIVES));
        let auto_auth_exit_on_err = self.bool_or(keys::AUTO_AUTH_EXIT_ON_ERR, false)?;
        // Beyond upstream, read after every upstream key so that upstream's error precedence is
        // kept. A one-shot pre-populate-only agent is already the single agent native mode
        // aims for, and flipping the injector-wide setting must not break such pods: it wins.
        let native_sidecar =
            self.bool_or(keys::NATIVE_SIDECAR, self.defaults.native_sidecar)? && !pre_populate_only;
        let seccomp_runtime_default = self.bool_or(
            keys::SECCOMP_RUNTIME_DEFAULT,
            self.defaults.seccomp_runtime_default,
        )?;

        Ok(AgentRequest {
            namespace: self.string(keys::REQUEST_NAMESPACE),
            image: self.string(keys::IMAGE),
            vault: VaultConnection {
                address: self.string(keys::SERVICE),
                ca_cert: self.string(keys::CA_CERT),
                ca_key: self.string(keys::CA_KEY),
                client_cert: self.string(keys::CLIENT_CERT),
                client_key: self.string(keys::CLIENT_KEY),
                tls_skip_verify,
                tls_server_name: self.string(keys::TLS_SERVER_NAME),
            },
            auth: AuthMethod {
                auth_type,
                mount_path: self.string(keys::AUTH_PATH),
                namespace: self.string(keys::VAULT_NAMESPACE),
                min_backoff: self.string(keys::AUTH_MIN_BACKOFF),
                max_backoff: self.string(keys::AUTH_MAX_BACKOFF),
                role,
                config: auth_config,
                exit_on_err: auto_auth_exit_on_err,
            },
            aws_env: if self.get(keys::AUTH_TYPE) == Some("aws") {
                aws_env(pod)
            } else {
                Vec::new()
            },
            irsa_mount,
            service_account,
            secret_volume_path: self.string(keys::SECRET_VOLUME_PATH),
            secrets,
            default_template,
            pre_populate,
            pre_populate_only,
            init_first,
            inject_containers,
            revoke_on_shutdown,
            revoke_grace,
            run_as_user,
            run_as_group,
            set_security_context,
            share_process_namespace,
            cache: Cache {
                enable: cache_enable,
                // The persistent cache hands the init agent's lease to the sidecar; a native
                // sidecar is the only agent, so there is nothing to hand over.
                persist: cache_enable && pre_populate && !pre_populate_only && !native_sidecar,
                listener_port: self.string(keys::CACHE_LISTENER_PORT),
                use_auto_auth_token: self.string(keys::CACHE_USE_AUTO_AUTH_TOKEN),
                exit_on_err: cache_exit_on_err,
            },
            native_sidecar,
            seccomp_runtime_default,
            inject_token,
            enable_quit,
            template_config: TemplateConfig {
                exit_on_retry_failure,
                static_secret_render_interval: self
                    .string(keys::TEMPLATE_STATIC_SECRET_RENDER_INTERVAL),
                max_connections_per_host,
                lease_renewal_threshold,
            },
            disable_idle_connections,
            disable_keep_alives,
            telemetry,
            config_map: self.string(keys::CONFIGMAP),
            extra_secret: self.string(keys::EXTRA_SECRET),
            tls_secret: self.string(keys::TLS_SECRET),
            copy_volume_mounts: self.string(keys::COPY_VOLUME_MOUNTS),
            resources: Resources {
                limits_cpu: self.string(keys::LIMITS_CPU),
                limits_mem: self.string(keys::LIMITS_MEM),
                limits_ephemeral: self.string(keys::LIMITS_EPHEMERAL),
                requests_cpu: self.string(keys::REQUESTS_CPU),
                requests_mem: self.string(keys::REQUESTS_MEM),
                requests_ephemeral: self.string(keys::REQUESTS_EPHEMERAL),
            },
            // Syntax was checked in phase B.
            json_patch: self
                .get(keys::JSON_PATCH)
                .and_then(|v| serde_json::from_str(v).ok()),
            init_json_patch: self
                .get(keys::INIT_JSON_PATCH)
                .and_then(|v| serde_json::from_str(v).ok()),
            env: AgentEnv {
                go_max_procs: self.string(keys::GO_MAX_PROCS),
                client_timeout: self.string(keys::CLIENT_TIMEOUT),
                client_max_retries: self.string(keys::CLIENT_MAX_RETRIES),
                log_level: self.string(keys::LOG_LEVEL),
                log_format: self.string(keys::LOG_FORMAT),
                proxy_address: self.string(keys::PROXY_ADDRESS),
                ca_cert_bytes: self.defaults.ca_cert_bytes.clone(),
            },
        })
    }

    /// Secret discovery (annotations.md §6.1), in ascending raw-name order.
    fn secrets(&self) -> Result<Vec<Secret>, Problem> {
        let prefixes = [keys::SECRET, keys::TEMPLATE_FILE, keys::TEMPLATE];
        let mut found: BTreeMap<&str, String> = BTreeMap::new();
        for (key, value) in self.ann {
            if value.trim().is_empty() {
                continue;
            }
            for prefix in prefixes {
                let Some(raw) = key.strip_prefix(prefix).and_then(|r| r.strip_prefix('-')) else {
                    continue;
                };
                let name = self.secret_name(raw);
                if name.is_empty() {
                    continue;
                }
                found.entry(raw).or_insert(name);
                break;
            }
        }
        let global_path = self.get(keys::SECRET_VOLUME_PATH).unwrap_or_default();
        let mut secrets = Vec::with_capacity(found.len());
        // One buffer for the ten per-secret keys of every secret.
        let mut key = String::new();
        for (raw, name) in found {
            let mut per = |prefix: &str| -> Option<&str> {
                write_dashed_key(&mut key, prefix, raw);
                self.get(&key)
            };
            let owned = |v: Option<&str>| v.unwrap_or_default().to_owned();
            let template = owned(per(keys::TEMPLATE));
            let template_file = if template.is_empty() {
                owned(per(keys::TEMPLATE_FILE))
            } else {
                String::new()
            };
            let error_on_missing_key = match per(keys::ERROR_ON_MISSING_KEY) {
                None => false,
                Some(v) => parse_weak_bool(&dashed_key(keys::ERROR_ON_MISSING_KEY, raw), v)?,
            };
            secrets.push(Secret {
                path: owned(per(keys::SECRET)),
                template,
                template_file,
                mount_path: per(keys::SECRET_VOLUME_PATH)
                    .unwrap_or(global_path)
                    .to_owned(),
                command: owned(per(keys::COMMAND)),
                left_delimiter: owned(per(keys::LEFT_DELIM)),
                right_delimiter: owned(per(keys::RIGHT_DELIM)),
                file: owned(per(keys::FILE)),
                perms: owned(per(keys::PERMS)),
                error_on_missing_key,
                name,
                raw_name: raw.to_owned(),
            });
        }
        Ok(secrets)
    }

    /// The per-secret `preserve-secret-case-<raw>` wins over the global key; a bad value
    /// counts as false, as upstream.
    fn secret_name(&self, raw: &str) -> String {
        let per_secret = dashed_key(keys::PRESERVE_SECRET_CASE, raw);
        let preserve = self
            .get(&per_secret)
            .or_else(|| self.get(keys::PRESERVE_SECRET_CASE))
            .is_some_and(|v| parse_weak_bool("", v).unwrap_or(false));
        if preserve {
            raw.to_owned()
        } else {
            raw.to_lowercase()
        }
    }

    fn auth_config(&self, sa: &TokenVolume, role: &str) -> BTreeMap<String, String> {
        let mut config = BTreeMap::new();
        if !sa.mount_path.is_empty() && !sa.token_path.is_empty() {
            config.insert(
                "token_path".to_owned(),
                path_join(&[&sa.mount_path, &sa.token_path]),
            );
        }
        for (param, value) in prefixed(self.ann, keys::AUTH_CONFIG) {
            config.insert(param, value.to_owned());
        }
        if !role.is_empty() {
            config.insert("role".to_owned(), role.to_owned());
        }
        config
    }

    fn telemetry(&self) -> Option<BTreeMap<String, serde_json::Value>> {
        let entries: BTreeMap<String, serde_json::Value> = prefixed(self.ann, keys::TELEMETRY)
            .into_iter()
            .map(|(param, raw)| {
                let value = serde_json::from_str(raw)
                    .unwrap_or_else(|_| serde_json::Value::String(raw.to_owned()));
                (param, value)
            })
            .collect();
        (!entries.is_empty()).then_some(entries)
    }

    fn share_process_namespace(&self) -> Result<Option<bool>, Problem> {
        let Some(raw) = self.get(keys::SHARE_PROCESS_NAMESPACE) else {
            return Ok(None);
        };
        let value = if raw.is_empty() {
            false
        } else {
            parse_bool(raw).map_err(|err| Problem::ShareProcessNamespace {
                value: raw.to_owned(),
                key: keys::SHARE_PROCESS_NAMESPACE,
                err,
            })?
        };
        let explicit = self
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.share_process_namespace);
        if value && explicit == Some(false) {
            return Err(Problem::msg(
                "shareProcessNamespace explicitly disabled on the pod, refusing to enable it",
            ));
        }
        Ok(Some(value))
    }
}

/// `<prefix>-<suffix>`, e.g. the key of a per-secret annotation.
fn dashed_key(prefix: &str, suffix: &str) -> String {
    let mut key = String::with_capacity(prefix.len() + 1 + suffix.len());
    write_dashed_key(&mut key, prefix, suffix);
    key
}

/// [`dashed_key`] into a reused buffer. Concatenated by hand: per-secret keys are built ten
/// times per secret, and `format!` cost five times as much (a twentieth of a review).
fn write_dashed_key(key: &mut String, prefix: &str, suffix: &str) {
    key.clear();
    key.push_str(prefix);
    key.push('-');
    key.push_str(suffix);
}

/// `(param, value)` for keys `<prefix>-<param>`, with `-` in the param turned into `_`, in
/// ascending key order. Two keys can name the same param (`a-b` and `a_b`); the one that sorts
/// last wins in the callers' maps, so the result does not depend on the hash map's order.
fn prefixed<'a>(ann: &'a Annotations<'a>, prefix: &str) -> Vec<(String, &'a str)> {
    let mut found: Vec<(&str, &str)> = ann
        .iter()
        .filter_map(|(key, value)| {
            let param = key.strip_prefix(prefix)?.strip_prefix('-')?;
            Some((param, value.as_ref()))
        })
        .collect();
    found.sort_unstable_by_key(|(param, _)| *param);
    found
        .into_iter()
        .map(|(param, value)| (param.replace('-', "_"), value))
        .collect()
}

fn first_container_uid(pod: &Pod) -> Result<i64, Problem> {
    let first = pod
        .spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .ok_or_else(|| Problem::msg("No containers found in Pod Spec"))?;
    let sc = first
        .security_context
        .as_ref()
        .ok_or_else(|| Problem::msg("No SecurityContext found for Container 0"))?;
    match sc.run_as_user {
        None => Err(Problem::msg(
            "RunAsUser is nil for Container 0's SecurityContext",
        )),
        Some(0) => Err(Problem::msg(format!(
            "container not allowed to run as root (annotation {} takes container {:?}'s runAsUser)",
            keys::RUN_AS_SAME_USER,
            first.name
        ))),
        Some(uid) => Ok(uid),
    }
}

/// Finds the service-account token volume (mutation.md §6).
pub fn service_account(pod: &Pod, volume_name: &str) -> Result<TokenVolume, Problem> {
    let spec = pod.spec.as_ref();
    let containers = spec.map(|s| s.containers.as_slice()).unwrap_or_default();
    let volumes = spec.and_then(|s| s.volumes.as_deref()).unwrap_or_default();
    let mounts = || {
        containers
            .iter()
            .flat_map(|c| c.volume_mounts.iter().flatten())
    };
    if !volume_name.is_empty() {
        if let Some(mount) = mounts().find(|m| m.name == volume_name) {
            let volume = volumes
                .iter()
                .find(|v| v.name == volume_name)
                .ok_or_else(|| {
                    Problem::msg(format!(
                        "failed to find volume {} in Pod {} volumes",
                        goparse::go_quote(volume_name),
                        goparse::go_quote(pod.metadata.name.as_deref().unwrap_or_default())
                    ))
                })?;
            return Ok(TokenVolume {
                name: mount.name.clone(),
                mount_path: mount.mount_path.clone(),
                token_path: projected_token_path(volume)?,
            });
        }
        if let Some(volume) = volumes.iter().find(|v| v.name == volume_name) {
            return Ok(TokenVolume {
                name: volume.name.clone(),
                mount_path: DEFAULT_SA_MOUNT_PATH.to_owned(),
                token_path: projected_token_path(volume)?,
            });
        }
        return Err(Problem::msg(format!(
            "failed to find service account volume {} (annotation {})",
            goparse::go_quote(volume_name),
            keys::SA_TOKEN_VOLUME_NAME
        )));
    }
    mounts()
        .find(|m| m.mount_path.contains("serviceaccount"))
        .map(|m| TokenVolume {
            name: m.name.clone(),
            mount_path: m.mount_path.clone(),
            token_path: "token".to_owned(),
        })
        .ok_or_else(|| {
            Problem::msg(format!(
                "failed to find service account volume mount (no app container mounts a path containing \"serviceaccount\"; with automountServiceAccountToken: false, name a projected token volume in {})",
                keys::SA_TOKEN_VOLUME_NAME
            ))
        })
}

fn projected_token_path(volume: &Volume) -> Result<String, Problem> {
    volume
        .projected
        .iter()
        .flat_map(|p| p.sources.iter().flatten())
        .filter_map(|s| s.service_account_token.as_ref())
        .find(|t| !t.path.is_empty())
        .map(|t| t.path.clone())
        .ok_or_else(|| {
            Problem::msg(format!(
                "failed to find tokenPath for projected volume {}",
                goparse::go_quote(&volume.name)
            ))
        })
}

/// IRSA: the first app-container mount whose path contains `eks.amazonaws.com`.
fn irsa_mount(pod: &Pod) -> Option<(String, String)> {
    pod.spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .flat_map(|c| c.volume_mounts.iter().flatten())
        .find(|m| m.mount_path.contains("eks.amazonaws.com"))
        .map(|m| (m.name.clone(), m.mount_path.clone()))
}

/// The AWS env names copied for IRSA; upstream's order is random, this is the documented one.
const AWS_ENV_NAMES: [&str; 4] = [
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
];

fn aws_env(pod: &Pod) -> Vec<(String, String)> {
    let envs: Vec<_> = pod
        .spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .flat_map(|c| c.env.iter().flatten())
        .collect();
    AWS_ENV_NAMES
        .iter()
        .filter_map(|name| {
            envs.iter()
                .find(|e| e.name == *name)
                .map(|e| ((*name).to_owned(), e.value.clone().unwrap_or_default()))
        })
        .collect()
}

/// Phase D (annotations.md §4).
fn validate(r: &AgentRequest, ann: &Annotations<'_>) -> Result<(), Problem> {
    if r.namespace.is_empty() {
        return Err(Problem::msg(format!(
            "namespace missing from request (annotation {} is empty)",
            keys::REQUEST_NAMESPACE
        )));
    }
    let sa = &r.service_account;
    if sa.name.is_empty() || sa.mount_path.is_empty() || sa.token_path.is_empty() {
        return Err(Problem::msg(
            "no service account token volume name, mount path or token path found",
        ));
    }
    if r.image.is_empty() {
        return Err(Problem::msg(format!(
            "no Vault image found (annotation {} is empty)",
            keys::IMAGE
        )));
    }
    if r.config_map.is_empty() {
        if r.auth.auth_type.is_empty() {
            return Err(Problem::msg(format!(
                "no Vault Auth Type found (annotation {} is empty)",
                keys::AUTH_TYPE
            )));
        }
        let auth_config_role = dashed_key(keys::AUTH_CONFIG, "role");
        if r.auth.auth_type == "kubernetes"
            && r.auth.role.is_empty()
            && ann
                .get(auth_config_role.as_str())
                .is_none_or(|v| v.is_empty())
        {
            return Err(Problem::msg(format!(
                "no Vault role found (set annotation {} or {auth_config_role})",
                keys::ROLE
            )));
        }
        if r.auth.mount_path.is_empty() {
            return Err(Problem::msg(format!(
                "no Vault Auth Path found (annotation {} is empty)",
                keys::AUTH_PATH
            )));
        }
        if r.vault.address.is_empty() {
            return Err(Problem::msg(format!(
                "no Vault address found (annotation {} is empty)",
                keys::SERVICE
            )));
        }
    }
    Ok(())
}

/// Go's `path.Join`: joins the non-empty elements with `/` and cleans the result.
pub fn path_join(parts: &[&str]) -> String {
    let kept: Vec<&str> = parts.iter().copied().filter(|p| !p.is_empty()).collect();
    if kept.is_empty() {
        return String::new();
    }
    path_clean(&kept.join("/"))
}

/// Go's `path.Clean`.
pub fn path_clean(p: &str) -> String {
    if p.is_empty() {
        return ".".to_owned();
    }
    let rooted = p.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => match out.last() {
                Some(&last) if last != ".." => {
                    out.pop();
                }
                _ if rooted => {}
                _ => out.push(".."),
            },
            other => out.push(other),
        }
    }
    let joined = out.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_owned(),
        (false, false) => joined,
    }
}
