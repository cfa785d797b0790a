//! [`AgentRequest`]: everything the injector needs to know about one pod, typed and defaulted.

use std::collections::BTreeMap;

pub use crate::settings::DefaultTemplate;

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

/// `agent-inject-env-restart`: what a changed variable does to the running process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Restart {
    /// Stop the process with the stop signal and start it again with the new values.
    #[default]
    Always,
    /// Leave the process running with the values it started with.
    Never,
}

impl Restart {
    /// The agent's `exec.restart_on_secret_changes` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Always => "always",
            Self::Never => "never",
        }
    }
}

/// One environment variable handed to the wrapped process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvSecret {
    /// The variable's name, as written in its key.
    pub name: String,
    /// `agent-inject-env-<VAR>`: the Vault path the default template reads (may be empty when
    /// a template declares the variable).
    pub path: String,
    /// `agent-inject-env-template-<VAR>` (empty: the default template).
    pub template: String,
}

/// Secrets as environment variables (not upstream): an agent runs in place of one app
/// container's command, renders the variables and starts that command with them, as its
/// process supervisor. Off when no variable is declared; the other fields are parsed (and
/// their values checked) either way.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EnvExec {
    /// The variables, sorted by name.
    pub vars: Vec<EnvSecret>,
    /// The wrapped container: `agent-inject-env-container`, else the first app container.
    pub container: String,
    /// The command the agent starts: the container's `command` and `args`, or
    /// `agent-inject-env-command` and the container's `args`; empty when neither is known.
    pub command: Vec<String>,
    /// `agent-inject-env-restart`.
    pub restart: Restart,
    /// `agent-inject-env-stop-signal`, in upper case.
    pub stop_signal: String,
}

impl EnvExec {
    /// Whether the pod declares any variable.
    pub fn is_on(&self) -> bool {
        !self.vars.is_empty()
    }
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
    /// Not upstream: secrets as environment variables of one app container's process.
    pub env_exec: EnvExec,
}

impl AgentRequest {
    /// Whether the pod gets upstream's agents (init container, sidecar or native sidecar):
    /// always, unless environment variables are all it asks for. Then the agent in the wrapped
    /// container is the only one; file secrets, the token file and the cache listener still
    /// need the classic agents.
    pub fn classic_agents(&self) -> bool {
        !self.env_exec.is_on() || !self.secrets.is_empty() || self.inject_token || self.cache.enable
    }
}
