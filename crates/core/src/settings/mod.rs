//! Injector-wide settings: upstream's `AGENT_INJECT_*` environment variables and `-flags`, with
//! upstream's names, defaults and precedence (flag default < command-line flag < non-empty env).
//!
//! Each setting is declared once, in [`table`], with the typed field it fills; the CLI,
//! `--help`, the table in `docs/settings.md` and the tests are derived from that table. The code
//! reads the typed [`Settings`] only. This module does no I/O: callers hand in the flag values
//! and an environment lookup function.

use std::collections::BTreeMap;

mod declaration;
pub mod table;
mod values;

pub use declaration::{Kind, Setting, Stage, markdown_table};
pub use table::SETTINGS;
pub use values::{
    AgentBinarySetting, DefaultTemplate, KNOWN_CIPHER_SUITES, LeaderElectionMode, LogLevel,
    PerPodId, SettingsError, TlsVersion, rustls_offers, split_list,
};

/// Default of `-max-requests-in-flight`: at least kube-apiserver's default
/// `--max-mutating-requests-inflight` (200), so one apiserver at its own limit is never turned
/// away, and small enough that a full queue (about 1 ms of CPU per review for a large pod) drains
/// in well under a second even on one throttled core, far inside any webhook timeout. See
/// SECURITY.md for the figures.
pub const DEFAULT_MAX_REQUESTS_IN_FLIGHT: usize = 256;
const DEFAULT_MAX_REQUESTS_IN_FLIGHT_STR: &str = "256";

/// The agent image upstream v1.7.6 defaults to.
pub const DEFAULT_AGENT_IMAGE: &str = "hashicorp/vault:2.0.4";

/// OpenBao's name for an `AGENT_INJECT_VAULT_*` variable (`AGENT_INJECT_BAO_ADDR`, ...), read
/// when neither the documented name nor its upstream alias is set. openbao-k8s reads the same
/// six names; there they win over the Vault ones, here the Vault ones do (drop-in first).
pub fn bao_alias(env: &str) -> Option<String> {
    env.strip_prefix("AGENT_INJECT_VAULT_")
        .map(|rest| format!("AGENT_INJECT_BAO_{rest}"))
}

/// Everything the injector needs, typed and validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// What the pure core applies to pods.
    pub agent: AgentDefaults,
    /// What the server shell uses.
    pub server: ServerSettings,
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
    /// `-run-as-user`: upstream checks it per pod, not at startup, so a bad value is kept as
    /// the error that refuses each pod relying on it.
    pub run_as_user: PerPodId,
    /// `-run-as-group`, kept the same way.
    pub run_as_group: PerPodId,
    /// `-run-as-same-user`.
    pub run_as_same_user: bool,
    /// `-set-security-context`.
    pub set_security_context: bool,
    /// `-default-template`.
    pub default_template: DefaultTemplate,
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
    /// `-disable-idle-connections`, split on commas.
    pub disable_idle_connections: Vec<String>,
    /// `-disable-keep-alives`, split on commas.
    pub disable_keep_alives: Vec<String>,
    /// `-agent-binary` (not upstream): which CLI the injected command runs.
    pub agent_binary: AgentBinarySetting,
    /// `-native-sidecar` (not upstream): default of `agent-native-sidecar`.
    pub native_sidecar: bool,
    /// `-seccomp-runtime-default` (not upstream): default of `agent-seccomp-runtime-default`.
    pub seccomp_runtime_default: bool,
}

/// The agents' resource defaults, as written: Kubernetes quantities are parsed while each pod
/// is injected, and a bad one refuses the pod naming the annotation it defaults, as upstream.
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

impl Default for Settings {
    /// Upstream's defaults with the one required value (the Vault address) filled in, which is
    /// what tests and examples want.
    fn default() -> Self {
        let mut flags = BTreeMap::new();
        if let Some(flag) = table::VAULT_ADDRESS.flag {
            flags.insert(flag.to_owned(), "https://vault.vault.svc:8200".to_owned());
        }
        #[allow(clippy::expect_used)]
        Self::resolve(&flags, &|_| None).expect("upstream defaults are valid")
    }
}

impl Settings {
    /// Resolves flags (keyed by flag name) and environment into validated settings: each
    /// declaration's raw value by upstream's precedence, then every value parsed into its field,
    /// checked in upstream's startup order ([`Stage`]).
    pub fn resolve(
        flags: &BTreeMap<String, String>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, SettingsError> {
        let mut raw = Vec::with_capacity(SETTINGS.len());
        for setting in SETTINGS {
            raw.push((setting, setting.raw_value(flags, env)?));
        }
        // Stable: settings checked at the same stage keep the table's order.
        raw.sort_by_key(|(setting, _)| setting.stage);
        let mut settings = Self::unset();
        let mut warnings = Vec::new();
        for (setting, value) in raw {
            setting.store(&mut settings, &value, &mut warnings)?;
        }
        settings.server.warnings = warnings;
        Ok(settings)
    }

    /// The value every field has before its declaration fills it in.
    fn unset() -> Self {
        Self {
            agent: AgentDefaults {
                vault_address: String::new(),
                image: String::new(),
                auth_type: String::new(),
                auth_path: String::new(),
                vault_namespace: String::new(),
                ca_cert_bytes: String::new(),
                proxy_address: String::new(),
                revoke_on_shutdown: false,
                run_as_user: Ok(0),
                run_as_group: Ok(0),
                run_as_same_user: false,
                set_security_context: false,
                default_template: DefaultTemplate::Map,
                resources: ResourceDefaults {
                    cpu_request: String::new(),
                    memory_request: String::new(),
                    ephemeral_request: String::new(),
                    cpu_limit: String::new(),
                    memory_limit: String::new(),
                    ephemeral_limit: String::new(),
                },
                exit_on_retry_failure: false,
                static_secret_render_interval: String::new(),
                max_connections_per_host: 0,
                lease_renewal_threshold: 0.0,
                auth_min_backoff: String::new(),
                auth_max_backoff: String::new(),
                disable_idle_connections: Vec::new(),
                disable_keep_alives: Vec::new(),
                agent_binary: AgentBinarySetting::Upstream,
                native_sidecar: false,
                seccomp_runtime_default: false,
            },
            server: ServerSettings {
                listen: String::new(),
                log_level: LogLevel::Info,
                log_json: false,
                tls_auto: String::new(),
                tls_auto_hosts: Vec::new(),
                tls_cert_file: String::new(),
                tls_key_file: String::new(),
                tls_ca_cert_file: String::new(),
                tls_min_version: TlsVersion::Tls12,
                tls_cipher_suites: Vec::new(),
                telemetry_path: String::new(),
                use_leader_elector: false,
                leader_election_mode: LeaderElectionMode::ConfigMap,
                max_requests_in_flight: 0,
                shutdown_delay: std::time::Duration::ZERO,
                namespace_defaults: false,
                missed_injection_watcher: false,
                warnings: Vec::new(),
            },
        }
    }
}

#[cfg(test)]
mod tests;
