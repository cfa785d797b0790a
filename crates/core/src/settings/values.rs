//! The typed values of settings that are more than a string or a number, the parsers that make
//! them, and the startup errors, in upstream's words.

use thiserror::Error;

use crate::goparse::{self, NumError, parse_bool, parse_duration, parse_float64, parse_int64};

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

/// Startup messages about things accepted for compatibility that this build cannot honour.
pub type Warnings = Vec<String>;

/// Go's `strconv.ParseBool`, as upstream's env library reports a failure.
pub(super) fn go_bool(raw: &str, _: &mut Warnings) -> Result<bool, SettingsError> {
    parse_bool(raw).map_err(|e| SettingsError::Env(format!("cannot parse '' as bool: {e}")))
}

/// Go's `strconv.ParseInt`.
pub(super) fn go_int(raw: &str, _: &mut Warnings) -> Result<i64, SettingsError> {
    parse_int64(raw).map_err(|e| SettingsError::Env(e.to_string()))
}

/// Go's `strconv.ParseFloat`.
pub(super) fn go_float(raw: &str, _: &mut Warnings) -> Result<f64, SettingsError> {
    parse_float64(raw).map_err(|e| SettingsError::Env(e.to_string()))
}

/// A Go duration kept as written (the agents' configuration carries it as text), checked only
/// when non-empty.
pub(super) fn optional_duration(raw: &str, _: &mut Warnings) -> Result<String, SettingsError> {
    if !raw.is_empty() {
        parse_duration(raw).map_err(|e| SettingsError::Env(e.to_string()))?;
    }
    Ok(raw.to_owned())
}

/// Taken as written.
pub(super) fn text(raw: &str, _: &mut Warnings) -> Result<String, SettingsError> {
    Ok(raw.to_owned())
}

/// The Vault address: any non-empty text.
pub(super) fn required(raw: &str, _: &mut Warnings) -> Result<String, SettingsError> {
    if raw.is_empty() {
        return Err(SettingsError::NoVaultAddress);
    }
    Ok(raw.to_owned())
}

/// `-log-format`: `json`, or anything else for the standard format.
pub(super) fn json_format(raw: &str, _: &mut Warnings) -> Result<bool, SettingsError> {
    Ok(raw == "json")
}

/// A comma list, split as [`split_list`] splits it.
pub(super) fn list(raw: &str, _: &mut Warnings) -> Result<Vec<String>, SettingsError> {
    Ok(split_list(raw))
}

/// `-run-as-user`: upstream checks it while injecting each pod, so a bad value is kept as its
/// error (every pod is then refused, naming the annotation it defaults), and the empty value
/// means upstream's uid 100.
pub(super) fn run_as_user(raw: &str, _: &mut Warnings) -> Result<PerPodId, SettingsError> {
    Ok(per_pod_id(raw, 100))
}

/// `-run-as-group`, as [`run_as_user`], with upstream's gid 1000 for the empty value.
pub(super) fn run_as_group(raw: &str, _: &mut Warnings) -> Result<PerPodId, SettingsError> {
    Ok(per_pod_id(raw, 1000))
}

fn per_pod_id(raw: &str, empty: i64) -> PerPodId {
    if raw.is_empty() {
        Ok(empty)
    } else {
        parse_int64(raw)
    }
}

/// A uid or gid setting: the number, or the error that refuses each pod using it as default.
pub type PerPodId = Result<i64, NumError>;

/// `-default-template` (case-sensitive at startup; the annotation is not).
pub(super) fn default_template(
    raw: &str,
    _: &mut Warnings,
) -> Result<DefaultTemplate, SettingsError> {
    match raw {
        "map" => Ok(DefaultTemplate::Map),
        "json" => Ok(DefaultTemplate::Json),
        other => Err(SettingsError::DefaultTemplate(other.to_owned())),
    }
}

/// `-max-requests-in-flight`: a positive integer.
pub(super) fn requests_in_flight(raw: &str, _: &mut Warnings) -> Result<usize, SettingsError> {
    match parse_int64(raw).ok().and_then(|n| usize::try_from(n).ok()) {
        Some(n) if n > 0 => Ok(n),
        _ => Err(SettingsError::MaxRequestsInFlight(raw.to_owned())),
    }
}

/// `-shutdown-delay`: a Go duration, not negative.
pub(super) fn shutdown_delay(
    raw: &str,
    _: &mut Warnings,
) -> Result<std::time::Duration, SettingsError> {
    match parse_duration(raw).ok().and_then(|n| u64::try_from(n).ok()) {
        Some(nanos) => Ok(std::time::Duration::from_nanos(nanos)),
        None => Err(SettingsError::ShutdownDelay(raw.to_owned())),
    }
}

/// The template a secret without one of its own is rendered with (`-default-template`, and the
/// annotation `agent-inject-default-template`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultTemplate {
    /// `key: value` lines.
    Map,
    /// The secret's data as JSON.
    Json,
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

pub(super) fn agent_binary(
    raw: &str,
    _: &mut Warnings,
) -> Result<AgentBinarySetting, SettingsError> {
    AgentBinarySetting::parse(raw)
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

pub(super) fn leader_election_mode(
    raw: &str,
    _: &mut Warnings,
) -> Result<LeaderElectionMode, SettingsError> {
    LeaderElectionMode::parse(raw)
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

pub(super) fn log_level(raw: &str, _: &mut Warnings) -> Result<LogLevel, SettingsError> {
    LogLevel::parse(raw)
}

/// Minimum TLS version; rustls offers nothing below 1.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersion {
    /// TLS 1.2 (also what `tls10`/`tls11` become, with a warning).
    Tls12,
    /// TLS 1.3.
    Tls13,
}

/// `-tls-min-version`: Go's names; the two versions rustls lacks are served as TLS 1.2.
pub(super) fn tls_version(raw: &str, warnings: &mut Warnings) -> Result<TlsVersion, SettingsError> {
    match raw {
        "tls12" => Ok(TlsVersion::Tls12),
        "tls13" => Ok(TlsVersion::Tls13),
        "tls10" | "tls11" => {
            warnings.push(format!(
                "TLS minimum version {raw} is not offered by this server; using tls12"
            ));
            Ok(TlsVersion::Tls12)
        }
        other => Err(SettingsError::Tls(format!(
            "invalid or unsupported TLS version {}",
            goparse::go_quote(other)
        ))),
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
pub(super) fn cipher_suites(
    raw: &str,
    warnings: &mut Warnings,
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
