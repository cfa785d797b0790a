//! Injector-wide settings: upstream's `AGENT_INJECT_*` environment variables and `-flags`, with
//! upstream's names, defaults and precedence (flag default < command-line flag < non-empty env).
//!
//! The table [`SETTINGS`] is the single source of truth: the CLI builds its flags from it, the
//! env merge walks it, and the typed [`Settings`] is read out of the merged raw values. This file
//! does no I/O: callers hand in the flag values and an environment lookup function.

use std::collections::BTreeMap;

use thiserror::Error;

use crate::goparse::{self, parse_bool, parse_duration, parse_float64, parse_int64};

/// How a setting's raw string is interpreted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Taken as-is.
    Str,
    /// Go `strconv.ParseBool`; as a flag it may be given bare (`-revoke-on-shutdown`).
    Bool,
    /// Go `strconv.ParseInt` (env only).
    Int,
    /// Go `strconv.ParseFloat` (env only).
    Float,
    /// A Go duration, checked only when non-empty.
    Duration,
}

/// One upstream setting: its flag (if it has one), env var, default and meaning.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    /// Flag name without dashes; `None` for the env-only settings.
    pub flag: Option<&'static str>,
    /// The documented environment variable.
    pub env: &'static str,
    /// An undocumented name upstream's env library also reads when `env` is unset.
    pub alias: Option<&'static str>,
    /// Upstream's default, as the flag would hold it.
    pub default: &'static str,
    /// How the raw value is parsed.
    pub kind: Kind,
    /// One line for `--help`.
    pub help: &'static str,
}

const fn s(
    flag: &'static str,
    env: &'static str,
    default: &'static str,
    kind: Kind,
    help: &'static str,
) -> Setting {
    Setting {
        flag: Some(flag),
        env,
        alias: None,
        default,
        kind,
        help,
    }
}

const fn aliased(mut setting: Setting, alias: &'static str) -> Setting {
    setting.alias = Some(alias);
    setting
}

/// Every setting of upstream vault-k8s v1.7.6 `agent-inject`, in upstream's flag order.
#[rustfmt::skip]
pub const SETTINGS: &[Setting] = &[
    s("listen", "AGENT_INJECT_LISTEN", ":8080", Kind::Str, "Address to bind listener to"),
    s("log-level", "AGENT_INJECT_LOG_LEVEL", "info", Kind::Str, "Log verbosity level: trace, debug, info, warn, error"),
    s("log-format", "AGENT_INJECT_LOG_FORMAT", "standard", Kind::Str, "Log output format: standard or json"),
    s("vault-address", "AGENT_INJECT_VAULT_ADDR", "", Kind::Str, "Address of the Vault server (required)"),
    s("vault-image", "AGENT_INJECT_VAULT_IMAGE", DEFAULT_AGENT_IMAGE, Kind::Str, "Docker image for the Vault agent"),
    s("vault-auth-type", "AGENT_INJECT_VAULT_AUTH_TYPE", "kubernetes", Kind::Str, "Type of Vault auth method the agent uses"),
    s("vault-auth-path", "AGENT_INJECT_VAULT_AUTH_PATH", "auth/kubernetes", Kind::Str, "Mount path of the Vault auth method"),
    s("vault-namespace", "AGENT_INJECT_VAULT_NAMESPACE", "", Kind::Str, "Vault enterprise namespace"),
    aliased(s("vault-cacert-bytes", "AGENT_INJECT_VAULT_CACERT_BYTES", "", Kind::Str, "CA certificate (PEM or base64 of PEM) handed to the agents"), "AGENT_INJECT_AGENT_INJECT_VAULT_CACERT_BYTES"),
    s("proxy-address", "AGENT_INJECT_PROXY_ADDR", "", Kind::Str, "HTTPS proxy address for the agents"),
    s("revoke-on-shutdown", "AGENT_INJECT_REVOKE_ON_SHUTDOWN", "false", Kind::Bool, "Revoke the agent token when the pod shuts down"),
    aliased(s("run-as-user", "AGENT_INJECT_RUN_AS_USER", "100", Kind::Str, "User ID the agent containers run as"), "AGENT_INJECT_AGENT_INJECT_RUN_AS_USER"),
    aliased(s("run-as-group", "AGENT_INJECT_RUN_AS_GROUP", "1000", Kind::Str, "Group ID the agent containers run as"), "AGENT_INJECT_AGENT_INJECT_RUN_AS_GROUP"),
    aliased(s("run-as-same-user", "AGENT_INJECT_RUN_AS_SAME_USER", "false", Kind::Bool, "Run the agents as the first app container's user"), "AGENT_INJECT_AGENT_INJECT_RUN_AS_SAME_USER"),
    aliased(s("set-security-context", "AGENT_INJECT_SET_SECURITY_CONTEXT", "true", Kind::Bool, "Set a security context on the agent containers"), "AGENT_INJECT_AGENT_INJECT_SET_SECURITY_CONTEXT"),
    s("default-template", "AGENT_INJECT_DEFAULT_TEMPLATE", "map", Kind::Str, "Default template type for secrets: map or json"),
    aliased(s("cpu-request", "AGENT_INJECT_CPU_REQUEST", "250m", Kind::Str, "CPU request of the agent containers"), "AGENT_INJECT_AGENT_INJECT_CPU_REQUEST"),
    aliased(s("memory-request", "AGENT_INJECT_MEM_REQUEST", "64Mi", Kind::Str, "Memory request of the agent containers"), "AGENT_INJECT_AGENT_INJECT_MEM_REQUEST"),
    aliased(s("ephemeral-storage-request", "AGENT_INJECT_EPHEMERAL_REQUEST", "", Kind::Str, "Ephemeral storage request of the agent containers"), "AGENT_INJECT_AGENT_INJECT_EPHEMERAL_REQUEST"),
    aliased(s("cpu-limit", "AGENT_INJECT_CPU_LIMIT", "500m", Kind::Str, "CPU limit of the agent containers"), "AGENT_INJECT_AGENT_INJECT_CPU_LIMIT"),
    aliased(s("memory-limit", "AGENT_INJECT_MEM_LIMIT", "128Mi", Kind::Str, "Memory limit of the agent containers"), "AGENT_INJECT_AGENT_INJECT_MEM_LIMIT"),
    aliased(s("ephemeral-storage-limit", "AGENT_INJECT_EPHEMERAL_LIMIT", "", Kind::Str, "Ephemeral storage limit of the agent containers"), "AGENT_INJECT_AGENT_INJECT_EPHEMERAL_LIMIT"),
    s("template-config-exit-on-retry-failure", "AGENT_INJECT_TEMPLATE_CONFIG_EXIT_ON_RETRY_FAILURE", "true", Kind::Bool, "template_config.exit_on_retry_failure of the agents"),
    aliased(s("template-static-secret-render-interval", "AGENT_INJECT_TEMPLATE_STATIC_SECRET_RENDER_INTERVAL", "", Kind::Str, "template_config.static_secret_render_interval of the agents"), "AGENT_INJECT_AGENT_INJECT_TEMPLATE_STATIC_SECRET_RENDER_INTERVAL"),
    Setting {
        flag: None,
        env: "AGENT_INJECT_TEMPLATE_MAX_CONNECTIONS_PER_HOST",
        alias: Some("AGENT_INJECT_AGENT_INJECT_TEMPLATE_MAX_CONNECTIONS_PER_HOST"),
        default: "0",
        kind: Kind::Int,
        help: "template_config.max_connections_per_host of the agents (env only)",
    },
    Setting {
        flag: None,
        env: "AGENT_INJECT_TEMPLATE_LEASE_RENEWAL_THRESHOLD",
        alias: Some("AGENT_INJECT_AGENT_INJECT_TEMPLATE_LEASE_RENEWAL_THRESHOLD"),
        default: "0",
        kind: Kind::Float,
        help: "Parsed and ignored, as upstream (env only)",
    },
    aliased(s("auth-min-backoff", "AGENT_INJECT_AUTH_MIN_BACKOFF", "", Kind::Duration, "auto_auth min_backoff of the agents"), "AGENT_INJECT_AGENT_INJECT_AUTH_MIN_BACKOFF"),
    aliased(s("auth-max-backoff", "AGENT_INJECT_AUTH_MAX_BACKOFF", "", Kind::Duration, "auto_auth max_backoff of the agents"), "AGENT_INJECT_AGENT_INJECT_AUTH_MAX_BACKOFF"),
    s("disable-idle-connections", "AGENT_INJECT_DISABLE_IDLE_CONNECTIONS", "", Kind::Str, "Comma list for the agents' disable_idle_connections"),
    s("disable-keep-alives", "AGENT_INJECT_DISABLE_KEEP_ALIVES", "", Kind::Str, "Comma list for the agents' disable_keep_alives"),
    aliased(s("tls-auto", "AGENT_INJECT_TLS_AUTO", "", Kind::Str, "MutatingWebhookConfiguration whose caBundle is managed"), "TLS_AUTO"),
    aliased(s("tls-auto-hosts", "AGENT_INJECT_TLS_AUTO_HOSTS", "", Kind::Str, "Comma list of SANs for the generated certificate"), "TLS_AUTO_HOSTS"),
    aliased(s("tls-cert-file", "AGENT_INJECT_TLS_CERT_FILE", "", Kind::Str, "PEM certificate file to serve (reloaded on change)"), "TLS_CERT_FILE"),
    aliased(s("tls-key-file", "AGENT_INJECT_TLS_KEY_FILE", "", Kind::Str, "PEM private key file to serve (reloaded on change)"), "TLS_KEY_FILE"),
    aliased(s("tls-ca-cert-file", "AGENT_INJECT_TLS_CA_CERT_FILE", "", Kind::Str, "CA file pushed to the webhook caBundle in file mode"), "TLS_CA_CERT_FILE"),
    aliased(s("tls-min-version", "AGENT_INJECT_TLS_MIN_VERSION", "tls12", Kind::Str, "Minimum TLS version: tls10, tls11, tls12 or tls13"), "TLS_MIN_VERSION"),
    aliased(s("tls-cipher-suites", "AGENT_INJECT_TLS_CIPHER_SUITES", "", Kind::Str, "Comma list of TLS 1.2 cipher suites"), "TLS_CIPHER_SUITES"),
    s("telemetry-path", "AGENT_INJECT_TELEMETRY_PATH", "", Kind::Str, "Path for Prometheus metrics (off when empty)"),
    s("use-leader-elector", "AGENT_INJECT_USE_LEADER_ELECTOR", "false", Kind::Bool, "Coordinate certificates between replicas"),
    s("leader-election-mode", "AGENT_INJECT_LEADER_ELECTION_MODE", "configmap", Kind::Str, "With -use-leader-elector: configmap (upstream's leader-for-life lock) or lease (coordination.k8s.io Lease, bounded failover)"),
    s("agent-binary", "AGENT_INJECT_AGENT_BINARY", "", Kind::Str, "CLI the agent command runs: vault, bao, or auto (bao for an openbao image); empty = vault, auto for openbao.org pods (not upstream)"),
    s("namespace-defaults", "AGENT_INJECT_NAMESPACE_DEFAULTS", "false", Kind::Bool, "Use the Namespace's vault.hashicorp.com/* annotations as defaults for its pods (needs namespaces get/list/watch), not upstream"),
    s("missed-injection-watcher", "AGENT_INJECT_MISSED_INJECTION_WATCHER", "false", Kind::Bool, "Count pods created without injection and emit an Event on them (needs pods list/watch, events create), not upstream"),
    s("native-sidecar", "AGENT_INJECT_NATIVE_SIDECAR", "false", Kind::Bool, "Inject the agent as a native sidecar (Kubernetes 1.29+: an init container with restartPolicy Always), not upstream"),
    s("seccomp-runtime-default", "AGENT_INJECT_SECCOMP_RUNTIME_DEFAULT", "false", Kind::Bool, "Give the agent containers seccompProfile RuntimeDefault (restricted Pod Security), not upstream"),
    s("max-requests-in-flight", "AGENT_INJECT_MAX_REQUESTS_IN_FLIGHT", DEFAULT_MAX_REQUESTS_IN_FLIGHT_STR, Kind::Int, "Most /mutate requests handled at once; beyond it the webhook answers 503 at once (not upstream)"),
    s("shutdown-delay", "AGENT_INJECT_SHUTDOWN_DELAY", "5s", Kind::Duration, "After SIGTERM, keep serving (and report not ready) this long before shutting down, while the Service stops routing here (not upstream)"),
];

/// Default of `-max-requests-in-flight`: at least kube-apiserver's default
/// `--max-mutating-requests-inflight` (200), so one apiserver at its own limit is never turned
/// away, and small enough that a full queue (about 1 ms of CPU per review for a large pod) drains
/// in well under a second even on one throttled core, far inside any webhook timeout. See
/// SECURITY.md for the figures.
pub const DEFAULT_MAX_REQUESTS_IN_FLIGHT: usize = 256;
const DEFAULT_MAX_REQUESTS_IN_FLIGHT_STR: &str = "256";

/// OpenBao's name for an `AGENT_INJECT_VAULT_*` variable (`AGENT_INJECT_BAO_ADDR`, ...), read
/// when neither the documented name nor its upstream alias is set. openbao-k8s reads the same
/// six names; there they win over the Vault ones, here the Vault ones do (drop-in first).
pub fn bao_alias(env: &str) -> Option<String> {
    env.strip_prefix("AGENT_INJECT_VAULT_")
        .map(|rest| format!("AGENT_INJECT_BAO_{rest}"))
}

/// The agent image upstream v1.7.6 defaults to.
pub const DEFAULT_AGENT_IMAGE: &str = "hashicorp/vault:2.0.4";

/// Errors found while resolving settings; the texts are upstream's startup messages.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum SettingsError {
    /// An env value (or a duration flag) failed to parse.
    #[error("Error parsing environment variables: {0}")]
    Env(String),
    /// A boolean flag had a value Go's flag package refuses.
    #[error("invalid boolean value {} for -{flag}: parse error", goparse::go_quote(.value))]
    BoolFlag {
        /// Flag name.
        flag: &'static str,
        /// The value given.
        value: String,
    },
    /// The Vault address is required.
    #[error("No Vault service configured")]
    NoVaultAddress,
    /// `-default-template` is checked case-sensitively at startup.
    #[error("Invalid default flag type: {0}")]
    DefaultTemplate(String),
    /// The log level is not one hclog knows.
    #[error("Error setting log level: unknown log level: {0}")]
    LogLevel(String),
    /// TLS version or cipher list problems.
    #[error("Failed to configure TLS: {0}")]
    Tls(String),
    /// `-max-requests-in-flight` is not a positive integer.
    #[error("Invalid maximum of requests in flight: {} (must be a positive integer)", goparse::go_quote(.0))]
    MaxRequestsInFlight(String),
    /// `-shutdown-delay` is negative.
    #[error("Invalid shutdown delay: {} (must not be negative)", goparse::go_quote(.0))]
    ShutdownDelay(String),
    /// `-leader-election-mode` is neither `configmap` nor `lease`.
    #[error("Invalid leader election mode: {} (must be configmap or lease)", goparse::go_quote(.0))]
    LeaderElectionMode(String),
    /// `-agent-binary` is none of the empty string, `vault`, `bao`, `auto`.
    #[error("Invalid agent binary: {} (must be vault, bao or auto)", goparse::go_quote(.0))]
    AgentBinary(String),
}

/// Raw values keyed by env var name, after flag and env precedence has been applied.
#[derive(Debug, Clone, Default)]
pub struct RawSettings(BTreeMap<&'static str, String>);

impl RawSettings {
    /// Applies upstream's precedence: the default, then the flag when given, then the env var
    /// (or its alias) when set and non-empty. `flags` is keyed by flag name.
    pub fn resolve(
        flags: &BTreeMap<String, String>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, SettingsError> {
        let mut raw = BTreeMap::new();
        for setting in SETTINGS {
            let mut value = setting.default.to_owned();
            if let Some(flag) = setting.flag
                && let Some(given) = flags.get(flag)
            {
                if setting.kind == Kind::Bool && parse_bool(given).is_err() {
                    return Err(SettingsError::BoolFlag {
                        flag,
                        value: given.clone(),
                    });
                }
                value = given.clone();
            }
            let from_env = env(setting.env)
                .filter(|v| !v.is_empty())
                .or_else(|| setting.alias.and_then(env).filter(|v| !v.is_empty()))
                .or_else(|| {
                    bao_alias(setting.env)
                        .and_then(|bao| env(&bao))
                        .filter(|v| !v.is_empty())
                });
            if let Some(v) = from_env {
                value = v;
            }
            raw.insert(setting.env, value);
        }
        Ok(Self(raw))
    }

    fn get(&self, env: &str) -> &str {
        self.0.get(env).map(String::as_str).unwrap_or_default()
    }

    fn string(&self, env: &str) -> String {
        self.get(env).to_owned()
    }

    fn bool(&self, env: &str) -> Result<bool, SettingsError> {
        parse_bool(self.get(env))
            .map_err(|e| SettingsError::Env(format!("cannot parse '' as bool: {e}")))
    }
}

/// The defaults the injector applies to every pod; the pure core reads only these.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentDefaults {
    /// `-vault-address`: default of `service`.
    pub vault_address: String,
    /// `-vault-image`: default of `agent-image`.
    pub image: String,
    /// `-vault-auth-type`: default of `auth-type`.
    pub auth_type: String,
    /// `-vault-auth-path`: default of `auth-path`.
    pub auth_path: String,
    /// `-vault-namespace`: default of `namespace`.
    pub vault_namespace: String,
    /// `-vault-cacert-bytes`: handed to the agents as `VAULT_CACERT_BYTES`.
    pub ca_cert_bytes: String,
    /// `-proxy-address`: default of `proxy-address`.
    pub proxy_address: String,
    /// `-revoke-on-shutdown`.
    pub revoke_on_shutdown: bool,
    /// `-run-as-user`, unparsed: upstream checks it per pod, not at startup.
    pub run_as_user: String,
    /// `-run-as-group`, unparsed for the same reason.
    pub run_as_group: String,
    /// `-run-as-same-user`.
    pub run_as_same_user: bool,
    /// `-set-security-context`.
    pub set_security_context: bool,
    /// `-default-template` (`map` or `json`).
    pub default_template: String,
    /// `-cpu-request` and friends, unparsed: bad values fail each injection, as upstream.
    pub resources: ResourceDefaults,
    /// `-template-config-exit-on-retry-failure`.
    pub exit_on_retry_failure: bool,
    /// `-template-static-secret-render-interval`.
    pub static_secret_render_interval: String,
    /// `AGENT_INJECT_TEMPLATE_MAX_CONNECTIONS_PER_HOST`.
    pub max_connections_per_host: i64,
    /// `AGENT_INJECT_TEMPLATE_LEASE_RENEWAL_THRESHOLD`: parsed, and ignored as upstream does.
    pub lease_renewal_threshold: f64,
    /// `-auth-min-backoff` (a valid Go duration or empty).
    pub auth_min_backoff: String,
    /// `-auth-max-backoff`.
    pub auth_max_backoff: String,
    /// `-disable-idle-connections`, a comma list.
    pub disable_idle_connections: String,
    /// `-disable-keep-alives`, a comma list.
    pub disable_keep_alives: String,
    /// `-agent-binary` (not upstream): which CLI the injected command runs.
    pub agent_binary: AgentBinarySetting,
    /// `-native-sidecar` (not upstream): default of `agent-native-sidecar`.
    pub native_sidecar: bool,
    /// `-seccomp-runtime-default` (not upstream): default of `agent-seccomp-runtime-default`.
    pub seccomp_runtime_default: bool,
}

/// `-agent-binary` (not upstream): the CLI the agent containers run, `vault` or `bao`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AgentBinarySetting {
    /// Empty (the default): `vault`, as upstream, except for pods annotated with
    /// `openbao.org/agent-inject`, which get [`Self::Auto`].
    #[default]
    Upstream,
    /// Always `vault`.
    Vault,
    /// Always `bao`.
    Bao,
    /// `bao` when the agent image's name contains `openbao`, else `vault`.
    Auto,
}

impl AgentBinarySetting {
    /// Parses the empty string, `vault`, `bao` or `auto` (exact, lowercase).
    pub fn parse(v: &str) -> Result<Self, SettingsError> {
        match v {
            "" => Ok(Self::Upstream),
            "vault" => Ok(Self::Vault),
            "bao" => Ok(Self::Bao),
            "auto" => Ok(Self::Auto),
            other => Err(SettingsError::AgentBinary(other.to_owned())),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceDefaults {
    /// `-cpu-request`.
    pub cpu_request: String,
    /// `-memory-request`.
    pub memory_request: String,
    /// `-ephemeral-storage-request`.
    pub ephemeral_request: String,
    /// `-cpu-limit`.
    pub cpu_limit: String,
    /// `-memory-limit`.
    pub memory_limit: String,
    /// `-ephemeral-storage-limit`.
    pub ephemeral_limit: String,
}

/// Settings of the HTTPS server and its certificates.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerSettings {
    /// `-listen`, e.g. `:8080`.
    pub listen: String,
    /// `-log-level`, already validated.
    pub log_level: LogLevel,
    /// `-log-format`: `json` or anything else (standard).
    pub log_json: bool,
    /// `-tls-auto`.
    pub tls_auto: String,
    /// `-tls-auto-hosts`, split on `,` without trimming.
    pub tls_auto_hosts: Vec<String>,
    /// `-tls-cert-file`.
    pub tls_cert_file: String,
    /// `-tls-key-file`.
    pub tls_key_file: String,
    /// `-tls-ca-cert-file`.
    pub tls_ca_cert_file: String,
    /// `-tls-min-version`, validated.
    pub tls_min_version: TlsVersion,
    /// `-tls-cipher-suites`, validated names (empty = library defaults).
    pub tls_cipher_suites: Vec<String>,
    /// `-telemetry-path` (empty = no metrics endpoint).
    pub telemetry_path: String,
    /// `-use-leader-elector`.
    pub use_leader_elector: bool,
    /// `-leader-election-mode` (not upstream): how replicas elect the certificate manager.
    pub leader_election_mode: LeaderElectionMode,
    /// `-max-requests-in-flight` (not upstream): the most `/mutate` requests handled at once.
    pub max_requests_in_flight: usize,
    /// `-shutdown-delay` (not upstream): how long a terminating injector keeps serving.
    pub shutdown_delay: std::time::Duration,
    /// `-namespace-defaults` (not upstream): Namespace annotations as defaults for its pods.
    pub namespace_defaults: bool,
    /// `-missed-injection-watcher` (not upstream): count and report pods created uninjected.
    pub missed_injection_watcher: bool,
    /// Things accepted for compatibility that this build cannot honour, to be logged at start.
    pub warnings: Vec<String>,
}

/// How replicas elect the one that manages the certificate (`-leader-election-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LeaderElectionMode {
    /// Upstream's leader-for-life ConfigMap lock `vault-k8s-leader` (drop-in, the default).
    #[default]
    ConfigMap,
    /// A `coordination.k8s.io/v1` Lease `vault-k8s-leader`: a dead leader is replaced within
    /// a bounded time, and a leader that cannot renew steps down (needs Lease RBAC).
    Lease,
}

impl LeaderElectionMode {
    /// Parses `configmap` or `lease` (exact, lowercase).
    pub fn parse(v: &str) -> Result<Self, SettingsError> {
        match v {
            "configmap" => Ok(Self::ConfigMap),
            "lease" => Ok(Self::Lease),
            other => Err(SettingsError::LeaderElectionMode(other.to_owned())),
        }
    }
}

/// Injector log levels, hclog's set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// `trace`.
    Trace,
    /// `debug`.
    Debug,
    /// `info`, `notice` or empty.
    Info,
    /// `warn`, `warning`.
    Warn,
    /// `err`, `error`.
    Error,
}

impl LogLevel {
    /// Parses as upstream: trimmed, lowercased, then looked up.
    pub fn parse(raw: &str) -> Result<Self, SettingsError> {
        let v = raw.trim().to_lowercase();
        Ok(match v.as_str() {
            "trace" => Self::Trace,
            "debug" => Self::Debug,
            "info" | "notice" | "" => Self::Info,
            "warn" | "warning" => Self::Warn,
            "err" | "error" => Self::Error,
            _ => return Err(SettingsError::LogLevel(v)),
        })
    }
}

/// Minimum TLS version; rustls offers nothing below 1.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersion {
    /// TLS 1.2 (also what `tls10`/`tls11` become, with a warning).
    Tls12,
    /// TLS 1.3.
    Tls13,
}

/// The cipher-suite names upstream accepts (Go's `tls.CipherSuites()` and insecure list).
pub const KNOWN_CIPHER_SUITES: &[&str] = &[
    "TLS_RSA_WITH_RC4_128_SHA",
    "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
    "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
];

/// Everything the injector needs, typed and validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// What the pure core applies to pods.
    pub agent: AgentDefaults,
    /// What the server shell uses.
    pub server: ServerSettings,
}

impl Default for Settings {
    /// Upstream's defaults with the one required value (the Vault address) filled in, which is
    /// what tests and examples want.
    fn default() -> Self {
        let flags = BTreeMap::from([(
            "vault-address".to_owned(),
            "https://vault.vault.svc:8200".to_owned(),
        )]);
        #[allow(clippy::expect_used)]
        Self::resolve(&flags, &|_| None).expect("upstream defaults are valid")
    }
}

impl Settings {
    /// Resolves flags and environment into validated settings, in upstream's startup order.
    pub fn resolve(
        flags: &BTreeMap<String, String>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, SettingsError> {
        Self::from_raw(&RawSettings::resolve(flags, env)?)
    }

    /// Types and validates resolved raw values.
    pub fn from_raw(raw: &RawSettings) -> Result<Self, SettingsError> {
        // Step 2 of upstream's startup: everything the env library parses.
        let revoke_on_shutdown = raw.bool("AGENT_INJECT_REVOKE_ON_SHUTDOWN")?;
        let run_as_same_user = raw.bool("AGENT_INJECT_RUN_AS_SAME_USER")?;
        let set_security_context = raw.bool("AGENT_INJECT_SET_SECURITY_CONTEXT")?;
        let exit_on_retry_failure =
            raw.bool("AGENT_INJECT_TEMPLATE_CONFIG_EXIT_ON_RETRY_FAILURE")?;
        let use_leader_elector = raw.bool("AGENT_INJECT_USE_LEADER_ELECTOR")?;
        let namespace_defaults = raw.bool("AGENT_INJECT_NAMESPACE_DEFAULTS")?;
        let missed_injection_watcher = raw.bool("AGENT_INJECT_MISSED_INJECTION_WATCHER")?;
        let native_sidecar = raw.bool("AGENT_INJECT_NATIVE_SIDECAR")?;
        let seccomp_runtime_default = raw.bool("AGENT_INJECT_SECCOMP_RUNTIME_DEFAULT")?;
        let max_connections_per_host =
            parse_int64(raw.get("AGENT_INJECT_TEMPLATE_MAX_CONNECTIONS_PER_HOST"))
                .map_err(|e| SettingsError::Env(e.to_string()))?;
        let lease_renewal_threshold =
            parse_float64(raw.get("AGENT_INJECT_TEMPLATE_LEASE_RENEWAL_THRESHOLD"))
                .map_err(|e| SettingsError::Env(e.to_string()))?;
        for key in [
            "AGENT_INJECT_AUTH_MIN_BACKOFF",
            "AGENT_INJECT_AUTH_MAX_BACKOFF",
        ] {
            let v = raw.get(key);
            if !v.is_empty() {
                parse_duration(v).map_err(|e| SettingsError::Env(e.to_string()))?;
            }
        }

        let vault_address = raw.string("AGENT_INJECT_VAULT_ADDR");
        if vault_address.is_empty() {
            return Err(SettingsError::NoVaultAddress);
        }
        let default_template = raw.string("AGENT_INJECT_DEFAULT_TEMPLATE");
        if default_template != "map" && default_template != "json" {
            return Err(SettingsError::DefaultTemplate(default_template));
        }
        let log_level = LogLevel::parse(raw.get("AGENT_INJECT_LOG_LEVEL"))?;

        let mut warnings = Vec::new();
        let tls_min_version = match raw.get("AGENT_INJECT_TLS_MIN_VERSION") {
            "tls12" => TlsVersion::Tls12,
            "tls13" => TlsVersion::Tls13,
            v @ ("tls10" | "tls11") => {
                warnings.push(format!(
                    "TLS minimum version {v} is not offered by this server; using tls12"
                ));
                TlsVersion::Tls12
            }
            other => {
                return Err(SettingsError::Tls(format!(
                    "invalid or unsupported TLS version {}",
                    goparse::go_quote(other)
                )));
            }
        };
        let tls_cipher_suites =
            parse_cipher_suites(raw.get("AGENT_INJECT_TLS_CIPHER_SUITES"), &mut warnings)?;
        let leader_election_mode =
            LeaderElectionMode::parse(raw.get("AGENT_INJECT_LEADER_ELECTION_MODE"))?;
        let agent_binary = AgentBinarySetting::parse(raw.get("AGENT_INJECT_AGENT_BINARY"))?;
        let max_requests_in_flight = {
            let v = raw.get("AGENT_INJECT_MAX_REQUESTS_IN_FLIGHT");
            match parse_int64(v).ok().and_then(|n| usize::try_from(n).ok()) {
                Some(n) if n > 0 => n,
                _ => return Err(SettingsError::MaxRequestsInFlight(v.to_owned())),
            }
        };
        let shutdown_delay = {
            let v = raw.get("AGENT_INJECT_SHUTDOWN_DELAY");
            match parse_duration(v).ok().and_then(|n| u64::try_from(n).ok()) {
                Some(nanos) => std::time::Duration::from_nanos(nanos),
                None => return Err(SettingsError::ShutdownDelay(v.to_owned())),
            }
        };

        Ok(Self {
            agent: AgentDefaults {
                vault_address,
                image: raw.string("AGENT_INJECT_VAULT_IMAGE"),
                auth_type: raw.string("AGENT_INJECT_VAULT_AUTH_TYPE"),
                auth_path: raw.string("AGENT_INJECT_VAULT_AUTH_PATH"),
                vault_namespace: raw.string("AGENT_INJECT_VAULT_NAMESPACE"),
                ca_cert_bytes: raw.string("AGENT_INJECT_VAULT_CACERT_BYTES"),
                proxy_address: raw.string("AGENT_INJECT_PROXY_ADDR"),
                revoke_on_shutdown,
                run_as_user: raw.string("AGENT_INJECT_RUN_AS_USER"),
                run_as_group: raw.string("AGENT_INJECT_RUN_AS_GROUP"),
                run_as_same_user,
                set_security_context,
                default_template,
                resources: ResourceDefaults {
                    cpu_request: raw.string("AGENT_INJECT_CPU_REQUEST"),
                    memory_request: raw.string("AGENT_INJECT_MEM_REQUEST"),
                    ephemeral_request: raw.string("AGENT_INJECT_EPHEMERAL_REQUEST"),
                    cpu_limit: raw.string("AGENT_INJECT_CPU_LIMIT"),
                    memory_limit: raw.string("AGENT_INJECT_MEM_LIMIT"),
                    ephemeral_limit: raw.string("AGENT_INJECT_EPHEMERAL_LIMIT"),
                },
                exit_on_retry_failure,
                static_secret_render_interval: raw
                    .string("AGENT_INJECT_TEMPLATE_STATIC_SECRET_RENDER_INTERVAL"),
                max_connections_per_host,
                lease_renewal_threshold,
                auth_min_backoff: raw.string("AGENT_INJECT_AUTH_MIN_BACKOFF"),
                auth_max_backoff: raw.string("AGENT_INJECT_AUTH_MAX_BACKOFF"),
                disable_idle_connections: raw.string("AGENT_INJECT_DISABLE_IDLE_CONNECTIONS"),
                disable_keep_alives: raw.string("AGENT_INJECT_DISABLE_KEEP_ALIVES"),
                agent_binary,
                native_sidecar,
                seccomp_runtime_default,
            },
            server: ServerSettings {
                listen: raw.string("AGENT_INJECT_LISTEN"),
                log_level,
                log_json: raw.get("AGENT_INJECT_LOG_FORMAT") == "json",
                tls_auto: raw.string("AGENT_INJECT_TLS_AUTO"),
                tls_auto_hosts: split_list(raw.get("AGENT_INJECT_TLS_AUTO_HOSTS")),
                tls_cert_file: raw.string("AGENT_INJECT_TLS_CERT_FILE"),
                tls_key_file: raw.string("AGENT_INJECT_TLS_KEY_FILE"),
                tls_ca_cert_file: raw.string("AGENT_INJECT_TLS_CA_CERT_FILE"),
                tls_min_version,
                tls_cipher_suites,
                telemetry_path: raw.string("AGENT_INJECT_TELEMETRY_PATH"),
                use_leader_elector,
                leader_election_mode,
                namespace_defaults,
                missed_injection_watcher,
                max_requests_in_flight,
                shutdown_delay,
                warnings,
            },
        })
    }
}

/// Splits on `,` the way upstream does: no trimming, and an empty input is an empty list.
pub fn split_list(raw: &str) -> Vec<String> {
    if raw.is_empty() {
        Vec::new()
    } else {
        raw.split(',').map(str::to_owned).collect()
    }
}

/// Upstream trims the list and each item, and refuses any name Go does not know (including an
/// empty item). Names rustls cannot offer are accepted with a warning so old configs still start.
fn parse_cipher_suites(
    raw: &str,
    warnings: &mut Vec<String>,
) -> Result<Vec<String>, SettingsError> {
    let list = raw.trim();
    if list.is_empty() {
        return Ok(Vec::new());
    }
    let mut names = Vec::new();
    for item in list.split(',').map(str::trim) {
        if !KNOWN_CIPHER_SUITES.contains(&item) {
            return Err(SettingsError::Tls(format!(
                "failed to parse TLS cipher suites list {}: unsupported cipher {}",
                goparse::go_quote(list),
                goparse::go_quote(item)
            )));
        }
        if !rustls_offers(item) {
            warnings.push(format!(
                "TLS cipher suite {item} is not offered by this server and is ignored"
            ));
        }
        names.push(item.to_owned());
    }
    Ok(names)
}

/// Whether rustls (ring provider) implements a suite of that IANA/Go name.
pub fn rustls_offers(name: &str) -> bool {
    matches!(
        name,
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
            | "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"
            | "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"
            | "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"
            | "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305"
            | "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305"
            | "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"
            | "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"
            | "TLS_AES_128_GCM_SHA256"
            | "TLS_AES_256_GCM_SHA384"
            | "TLS_CHACHA20_POLY1305_SHA256"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(flags: &[(&str, &str)], env: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let flags = flags
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let env: BTreeMap<String, String> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::resolve(&flags, &|k| env.get(k).cloned())
    }

    #[test]
    fn defaults_match_upstream() {
        let s = resolve(&[("vault-address", "http://v:8200")], &[]).unwrap();
        assert_eq!(s.server.listen, ":8080");
        assert_eq!(s.agent.image, "hashicorp/vault:2.0.4");
        assert_eq!(s.agent.auth_type, "kubernetes");
        assert_eq!(s.agent.auth_path, "auth/kubernetes");
        assert_eq!(s.agent.run_as_user, "100");
        assert_eq!(s.agent.run_as_group, "1000");
        assert!(s.agent.set_security_context);
        assert!(!s.agent.revoke_on_shutdown);
        assert!(!s.agent.run_as_same_user);
        assert_eq!(s.agent.default_template, "map");
        assert_eq!(s.agent.resources.cpu_request, "250m");
        assert_eq!(s.agent.resources.memory_request, "64Mi");
        assert_eq!(s.agent.resources.cpu_limit, "500m");
        assert_eq!(s.agent.resources.memory_limit, "128Mi");
        assert_eq!(s.agent.resources.ephemeral_limit, "");
        assert!(s.agent.exit_on_retry_failure);
        assert_eq!(s.agent.max_connections_per_host, 0);
        assert_eq!(s.server.tls_min_version, TlsVersion::Tls12);
        assert_eq!(s.server.log_level, LogLevel::Info);
        assert!(!s.server.log_json);
        assert!(!s.server.use_leader_elector);
        assert_eq!(s.server.leader_election_mode, LeaderElectionMode::ConfigMap);
    }

    #[test]
    fn leader_election_mode_is_configmap_or_lease() {
        let s = resolve(
            &[
                ("vault-address", "http://v"),
                ("leader-election-mode", "lease"),
            ],
            &[],
        )
        .unwrap();
        assert_eq!(s.server.leader_election_mode, LeaderElectionMode::Lease);
        let s = resolve(
            &[
                ("vault-address", "http://v"),
                ("leader-election-mode", "lease"),
            ],
            &[("AGENT_INJECT_LEADER_ELECTION_MODE", "configmap")],
        )
        .unwrap();
        assert_eq!(s.server.leader_election_mode, LeaderElectionMode::ConfigMap);
        for bad in ["Lease", "leases", " lease"] {
            let err = resolve(
                &[("vault-address", "http://v")],
                &[("AGENT_INJECT_LEADER_ELECTION_MODE", bad)],
            )
            .unwrap_err();
            assert_eq!(err, SettingsError::LeaderElectionMode(bad.to_owned()));
            assert!(
                err.to_string()
                    .starts_with("Invalid leader election mode: \""),
                "{err}"
            );
        }
    }

    #[test]
    fn env_wins_over_flag_and_empty_env_is_ignored() {
        let s = resolve(
            &[
                ("vault-address", "http://flag"),
                ("vault-image", "flag/image"),
            ],
            &[
                ("AGENT_INJECT_VAULT_ADDR", "http://env"),
                ("AGENT_INJECT_VAULT_IMAGE", ""),
            ],
        )
        .unwrap();
        assert_eq!(s.agent.vault_address, "http://env");
        assert_eq!(s.agent.image, "flag/image");
    }

    #[test]
    fn every_string_env_var_overrides_its_setting() {
        for setting in SETTINGS.iter().filter(|s| s.kind == Kind::Str) {
            let value = match setting.env {
                "AGENT_INJECT_DEFAULT_TEMPLATE" => "json",
                "AGENT_INJECT_LOG_LEVEL" => "debug",
                "AGENT_INJECT_TLS_MIN_VERSION" => "tls13",
                "AGENT_INJECT_TLS_CIPHER_SUITES" => "TLS_AES_128_GCM_SHA256",
                "AGENT_INJECT_LEADER_ELECTION_MODE" => "lease",
                "AGENT_INJECT_AGENT_BINARY" => "bao",
                _ => "from-env",
            };
            // The setting under test goes in last, so it wins even for the Vault address.
            let env = BTreeMap::from([
                ("AGENT_INJECT_VAULT_ADDR".to_owned(), "x".to_owned()),
                (setting.env.to_owned(), value.to_owned()),
            ]);
            let raw = RawSettings::resolve(&BTreeMap::new(), &|k| env.get(k).cloned()).unwrap();
            assert_eq!(raw.get(setting.env), value, "{}", setting.env);
            Settings::from_raw(&raw).unwrap();
        }
    }

    #[test]
    fn env_bools_accept_true_and_false_and_refuse_junk() {
        for setting in SETTINGS.iter().filter(|s| s.kind == Kind::Bool) {
            for v in ["true", "false", "1", "F"] {
                resolve(&[("vault-address", "x")], &[(setting.env, v)]).unwrap();
            }
            let err = resolve(&[("vault-address", "x")], &[(setting.env, "yes")]).unwrap_err();
            assert_eq!(
                err.to_string(),
                "Error parsing environment variables: cannot parse '' as bool: strconv.ParseBool: parsing \"yes\": invalid syntax"
            );
        }
    }

    #[test]
    fn numeric_env_settings_parse() {
        let s = resolve(
            &[("vault-address", "x")],
            &[
                ("AGENT_INJECT_TEMPLATE_MAX_CONNECTIONS_PER_HOST", "100"),
                ("AGENT_INJECT_TEMPLATE_LEASE_RENEWAL_THRESHOLD", "0.75"),
            ],
        )
        .unwrap();
        assert_eq!(s.agent.max_connections_per_host, 100);
        assert_eq!(s.agent.lease_renewal_threshold, 0.75);
        let err = resolve(
            &[("vault-address", "x")],
            &[("AGENT_INJECT_TEMPLATE_MAX_CONNECTIONS_PER_HOST", "many")],
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Error parsing environment variables: strconv.ParseInt: parsing \"many\": invalid syntax"
        );
    }

    #[test]
    fn aliases_are_read_only_when_the_documented_name_is_unset() {
        let s = resolve(
            &[("vault-address", "x")],
            &[
                ("TLS_CERT_FILE", "/alias.pem"),
                ("AGENT_INJECT_AGENT_INJECT_CPU_REQUEST", "1"),
                ("AGENT_INJECT_CPU_REQUEST", "2"),
            ],
        )
        .unwrap();
        assert_eq!(s.server.tls_cert_file, "/alias.pem");
        assert_eq!(s.agent.resources.cpu_request, "2");
    }

    #[test]
    fn bao_names_alias_the_six_vault_settings_and_lose_to_them() {
        let aliased: Vec<_> = SETTINGS.iter().filter_map(|s| bao_alias(s.env)).collect();
        assert_eq!(
            aliased,
            [
                "AGENT_INJECT_BAO_ADDR",
                "AGENT_INJECT_BAO_IMAGE",
                "AGENT_INJECT_BAO_AUTH_TYPE",
                "AGENT_INJECT_BAO_AUTH_PATH",
                "AGENT_INJECT_BAO_NAMESPACE",
                "AGENT_INJECT_BAO_CACERT_BYTES",
            ]
        );
        let s = resolve(
            &[],
            &[
                ("AGENT_INJECT_BAO_ADDR", "http://bao:8200"),
                ("AGENT_INJECT_BAO_IMAGE", "openbao/openbao:2.4.1"),
                ("AGENT_INJECT_BAO_AUTH_PATH", "auth/k8s"),
                ("AGENT_INJECT_BAO_CACERT_BYTES", "PEM"),
                ("AGENT_INJECT_VAULT_AUTH_PATH", "auth/vault-wins"),
                ("AGENT_INJECT_BAO_NAMESPACE", ""),
            ],
        )
        .unwrap();
        assert_eq!(s.agent.vault_address, "http://bao:8200");
        assert_eq!(s.agent.image, "openbao/openbao:2.4.1");
        assert_eq!(s.agent.auth_path, "auth/vault-wins");
        assert_eq!(s.agent.ca_cert_bytes, "PEM");
        assert_eq!(s.agent.vault_namespace, "");
        // The upstream alias still beats the OpenBao name.
        let s = resolve(
            &[("vault-address", "x")],
            &[
                (
                    "AGENT_INJECT_AGENT_INJECT_VAULT_CACERT_BYTES",
                    "upstream-alias",
                ),
                ("AGENT_INJECT_BAO_CACERT_BYTES", "bao"),
            ],
        )
        .unwrap();
        assert_eq!(s.agent.ca_cert_bytes, "upstream-alias");
    }

    #[test]
    fn beyond_upstream_switches_are_off_by_default() {
        let s = resolve(&[("vault-address", "x")], &[]).unwrap();
        assert!(!s.server.namespace_defaults);
        assert!(!s.server.missed_injection_watcher);
        assert_eq!(s.agent.agent_binary, AgentBinarySetting::Upstream);
        let s = resolve(
            &[("vault-address", "x"), ("namespace-defaults", "true")],
            &[
                ("AGENT_INJECT_MISSED_INJECTION_WATCHER", "1"),
                ("AGENT_INJECT_AGENT_BINARY", "auto"),
            ],
        )
        .unwrap();
        assert!(s.server.namespace_defaults);
        assert!(s.server.missed_injection_watcher);
        assert_eq!(s.agent.agent_binary, AgentBinarySetting::Auto);
        let err = resolve(&[("vault-address", "x"), ("agent-binary", "openbao")], &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Invalid agent binary: \"openbao\" (must be vault, bao or auto)"
        );
    }

    #[test]
    fn startup_validation_uses_upstream_messages() {
        type Pairs<'a> = &'a [(&'a str, &'a str)];
        let cases: &[(Pairs, Pairs, &str)] = &[
            (&[], &[], "No Vault service configured"),
            (
                &[("vault-address", "x"), ("default-template", "MAP")],
                &[],
                "Invalid default flag type: MAP",
            ),
            (
                &[("vault-address", "x"), ("auth-min-backoff", "x")],
                &[],
                "Error parsing environment variables: time: invalid duration \"x\"",
            ),
            (
                &[("vault-address", "x"), ("log-level", "inf")],
                &[],
                "Error setting log level: unknown log level: inf",
            ),
            (
                &[("vault-address", "x"), ("tls-min-version", "tls1000")],
                &[],
                "Failed to configure TLS: invalid or unsupported TLS version \"tls1000\"",
            ),
            (
                &[
                    ("vault-address", "x"),
                    ("tls-cipher-suites", "suite1,suite2,suite3"),
                ],
                &[],
                "Failed to configure TLS: failed to parse TLS cipher suites list \"suite1,suite2,suite3\": unsupported cipher \"suite1\"",
            ),
            (
                &[("vault-address", "x"), ("revoke-on-shutdown", "maybe")],
                &[],
                "invalid boolean value \"maybe\" for -revoke-on-shutdown: parse error",
            ),
        ];
        for (flags, env, want) in cases {
            assert_eq!(resolve(flags, env).unwrap_err().to_string(), *want);
        }
    }

    #[test]
    fn log_levels_follow_hclog() {
        for ok in [
            "trace", "DEBUG", " info ", "notice", "warn", "Warning", "err", "error", "", " ",
        ] {
            LogLevel::parse(ok).unwrap();
        }
        for bad in [
            "inf",
            "ofni",
            "notify",
            "tracing",
            "debugging",
            "warnn",
            "errors",
            "foobar",
            "0",
            "1",
        ] {
            assert!(LogLevel::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cipher_suites_are_trimmed_and_unofferable_ones_warn() {
        let s = resolve(
            &[("vault-address", "x")],
            &[(
                "AGENT_INJECT_TLS_CIPHER_SUITES",
                " TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 , TLS_RSA_WITH_RC4_128_SHA ",
            )],
        )
        .unwrap();
        assert_eq!(s.server.tls_cipher_suites.len(), 2);
        assert_eq!(s.server.warnings.len(), 1);
        assert!(s.server.warnings[0].contains("TLS_RSA_WITH_RC4_128_SHA"));
    }

    #[test]
    fn shutdown_delay_is_a_go_duration_of_five_seconds_by_default() {
        let s = resolve(&[("vault-address", "x")], &[]).unwrap();
        assert_eq!(s.server.shutdown_delay, std::time::Duration::from_secs(5));
        let s = resolve(&[("vault-address", "x"), ("shutdown-delay", "1m30s")], &[]).unwrap();
        assert_eq!(s.server.shutdown_delay, std::time::Duration::from_secs(90));
        let s = resolve(
            &[("vault-address", "x")],
            &[("AGENT_INJECT_SHUTDOWN_DELAY", "0s")],
        )
        .unwrap();
        assert_eq!(s.server.shutdown_delay, std::time::Duration::ZERO);
        let e = resolve(&[("vault-address", "x"), ("shutdown-delay", "-1s")], &[]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Invalid shutdown delay: \"-1s\" (must not be negative)"
        );
    }

    #[test]
    fn max_requests_in_flight_is_a_positive_integer() {
        assert_eq!(
            DEFAULT_MAX_REQUESTS_IN_FLIGHT_STR.parse::<usize>(),
            Ok(DEFAULT_MAX_REQUESTS_IN_FLIGHT)
        );
        let s = resolve(&[("vault-address", "x")], &[]).unwrap();
        assert_eq!(
            s.server.max_requests_in_flight,
            DEFAULT_MAX_REQUESTS_IN_FLIGHT
        );
        let s = resolve(
            &[("vault-address", "x"), ("max-requests-in-flight", "8")],
            &[("AGENT_INJECT_MAX_REQUESTS_IN_FLIGHT", "16")],
        )
        .unwrap();
        assert_eq!(s.server.max_requests_in_flight, 16);
        for bad in ["0", "-1", "many", "1.5"] {
            let err = resolve(
                &[("vault-address", "x")],
                &[("AGENT_INJECT_MAX_REQUESTS_IN_FLIGHT", bad)],
            )
            .unwrap_err();
            assert_eq!(err, SettingsError::MaxRequestsInFlight(bad.to_owned()));
        }
    }

    #[test]
    fn tls10_is_accepted_as_tls12_with_a_warning() {
        let s = resolve(&[("vault-address", "x"), ("tls-min-version", "tls10")], &[]).unwrap();
        assert_eq!(s.server.tls_min_version, TlsVersion::Tls12);
        assert_eq!(s.server.warnings.len(), 1);
    }
}
