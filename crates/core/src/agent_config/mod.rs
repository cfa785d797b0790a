//! The Vault Agent configuration handed to the agents in `VAULT_CONFIG`, and (in [`exec`]) the
//! one of the agent that supervises an app's process for secrets as environment variables.
//!
//! Struct field order is the JSON member order, which follows upstream's Go structs so that the
//! generated JSON compares byte for byte with upstream's (apart from Go's `<>&` escaping).

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use thiserror::Error;

use crate::annotations::{AgentRequest, DefaultTemplate, path_join};

pub mod exec;
mod telemetry;

pub use exec::{EXEC_CA_FILE, EXEC_CONFIG_FILE, EXEC_DIR, ExecConfig, env_default_template};
pub use telemetry::Telemetry;

/// Home of the agent's token-helper file.
pub const TOKEN_FILE: &str = "/home/vault/.vault-token";
/// The agent's pid file.
pub const PID_FILE: &str = "/home/vault/.pid";
/// Where the persistent cache lives.
pub const CACHE_PATH: &str = "/vault/agent-cache";

/// Encoding failed: only a NaN or infinite lease-renewal threshold can do this.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "json: unsupported value: {value} (annotation vault.hashicorp.com/template-lease-renewal-threshold)"
)]
pub struct ConfigError {
    /// Go's spelling of the value (`NaN`, `+Inf`, `-Inf`).
    pub value: &'static str,
}

/// Top-level agent configuration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config<'a> {
    /// `auto_auth`.
    pub auto_auth: AutoAuth<'a>,
    /// true in the init container.
    pub exit_after_auth: bool,
    /// Always [`PID_FILE`].
    pub pid_file: &'static str,
    /// `vault`.
    pub vault: VaultStanza<'a>,
    /// One per secret.
    #[serde(rename = "template", skip_serializing_if = "Vec::is_empty")]
    pub templates: Vec<Template<'a>>,
    /// Cache / quit listener.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub listener: Vec<Listener>,
    /// Cache stanza.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheStanza>,
    /// Always present.
    pub template_config: TemplateConfigStanza,
    /// Split annotation list.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub disable_idle_connections: Vec<String>,
    /// Split annotation list.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub disable_keep_alives: Vec<String>,
    /// Present when any telemetry annotation exists and decoded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub telemetry: Option<Telemetry>,
}

/// `auto_auth`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AutoAuth<'a> {
    /// The login method.
    pub method: Method<'a>,
    /// Token sinks.
    pub sink: Vec<Sink>,
}

/// `auto_auth.method`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Method<'a> {
    /// Auth type, e.g. `kubernetes`.
    #[serde(rename = "type")]
    pub method_type: &'a str,
    /// Mount path of the auth method.
    #[serde(skip_serializing_if = "str_is_empty")]
    pub mount_path: &'a str,
    /// Go duration string.
    #[serde(skip_serializing_if = "str_is_empty")]
    pub min_backoff: &'a str,
    /// Go duration string.
    #[serde(skip_serializing_if = "str_is_empty")]
    pub max_backoff: &'a str,
    /// Vault namespace.
    #[serde(skip_serializing_if = "str_is_empty")]
    pub namespace: &'a str,
    /// Method parameters, sorted by name.
    #[serde(skip_serializing_if = "map_is_empty")]
    pub config: &'a BTreeMap<String, String>,
    /// Only emitted when true.
    #[serde(skip_serializing_if = "is_false")]
    pub exit_on_err: bool,
}

/// A file sink.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sink {
    /// Always `file`.
    #[serde(rename = "type")]
    pub sink_type: &'static str,
    /// Its path.
    pub config: SinkConfig,
}

/// `sink.config`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SinkConfig {
    /// File path.
    pub path: String,
}

/// `vault`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VaultStanza<'a> {
    /// Always emitted.
    pub address: &'a str,
    /// `ca-cert`.
    #[serde(skip_serializing_if = "str_is_empty")]
    pub ca_cert: &'a str,
    /// From `ca-key`, on purpose.
    #[serde(skip_serializing_if = "str_is_empty")]
    pub ca_path: &'a str,
    /// Only when true.
    #[serde(skip_serializing_if = "is_false")]
    pub tls_skip_verify: bool,
    /// `client-cert`.
    #[serde(skip_serializing_if = "str_is_empty")]
    pub client_cert: &'a str,
    /// `client-key`.
    #[serde(skip_serializing_if = "str_is_empty")]
    pub client_key: &'a str,
    /// `tls-server-name`.
    #[serde(skip_serializing_if = "str_is_empty")]
    pub tls_server_name: &'a str,
}

/// One `template` entry, borrowed from the request: the inline templates are the largest
/// strings of a configuration, and each review builds two configurations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Template<'a> {
    /// Rendered file.
    pub destination: String,
    /// Inline or default template.
    #[serde(skip_serializing_if = "str_is_empty")]
    pub contents: Cow<'a, str>,
    /// Always emitted (defaults `{{`).
    #[serde(skip_serializing_if = "str_is_empty")]
    pub left_delimiter: &'a str,
    /// Always emitted (defaults `}}`).
    #[serde(skip_serializing_if = "str_is_empty")]
    pub right_delimiter: &'a str,
    /// Post-render command.
    #[serde(skip_serializing_if = "str_is_empty")]
    pub command: &'a str,
    /// Template file.
    #[serde(skip_serializing_if = "str_is_empty")]
    pub source: &'a str,
    /// File mode string.
    #[serde(skip_serializing_if = "str_is_empty")]
    pub perms: &'a str,
    /// Only when true.
    #[serde(skip_serializing_if = "is_false")]
    pub error_on_missing_key: bool,
}

/// A localhost listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Listener {
    /// Always `tcp`.
    #[serde(rename = "type")]
    pub listener_type: &'static str,
    /// `127.0.0.1:<port>`.
    pub address: String,
    /// Always true.
    pub tls_disable: bool,
    /// Quit endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_api: Option<AgentApi>,
}

/// `agent_api`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentApi {
    /// `agent-enable-quit`.
    pub enable_quit: bool,
}

/// `cache`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct CacheStanza {
    /// A string on purpose (`true`, `false`, `force`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub use_auto_auth_token: String,
    /// Persistent cache.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub persist: Option<Persist>,
}

/// `cache.persist`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Persist {
    /// Always `kubernetes`.
    #[serde(rename = "type")]
    pub persist_type: &'static str,
    /// [`CACHE_PATH`].
    pub path: &'static str,
    /// Only when true.
    #[serde(skip_serializing_if = "is_false")]
    pub exit_on_err: bool,
}

/// `template_config`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TemplateConfigStanza {
    /// Always emitted.
    pub exit_on_retry_failure: bool,
    /// Left out when empty.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub static_secret_render_interval: String,
    /// Left out when 0.
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub max_connections_per_host: i64,
    /// Left out when 0.
    #[serde(skip_serializing_if = "is_zero_f64")]
    pub lease_renewal_threshold: f64,
}

fn map_is_empty(m: &&BTreeMap<String, String>) -> bool {
    m.is_empty()
}

/// Go's `omitempty` for a borrowed or owned string field.
fn str_is_empty<T: AsRef<str> + ?Sized>(s: &T) -> bool {
    s.as_ref().is_empty()
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero_i64(v: &i64) -> bool {
    *v == 0
}

fn is_zero_f64(v: &f64) -> bool {
    *v == 0.0
}

/// The default templates, with `%s` standing for the secret's Vault path.
const MAP_TEMPLATE: &str =
    "{{ with secret \"%s\" }}{{ range $k, $v := .Data }}{{ $k }}: {{ $v }}\n{{ end }}{{ end }}";
const JSON_TEMPLATE: &str = "{{ with secret \"%s\" }}{{ .Data | toJSON }}\n{{ end }}";

impl<'a> Config<'a> {
    /// Builds the init (`init = true`) or sidecar configuration for a request.
    pub fn build(r: &'a AgentRequest, init: bool) -> Self {
        let mut sink = vec![Sink::file(TOKEN_FILE.to_owned())];
        if r.inject_token {
            sink.push(Sink::file(path_join(&[&r.secret_volume_path, "token"])));
        }
        let listener_at = |port: &str| Listener {
            listener_type: "tcp",
            address: format!("127.0.0.1:{port}"),
            tls_disable: true,
            agent_api: None,
        };
        let (mut listener, mut cache) = if r.cache.persist {
            (
                vec![listener_at(&r.cache.listener_port)],
                Some(CacheStanza {
                    use_auto_auth_token: r.cache.use_auto_auth_token.clone(),
                    persist: Some(Persist {
                        persist_type: "kubernetes",
                        path: CACHE_PATH,
                        exit_on_err: r.cache.exit_on_err,
                    }),
                }),
            )
        } else if r.cache.enable && !r.pre_populate_only && !init {
            (
                vec![listener_at(&r.cache.listener_port)],
                Some(CacheStanza {
                    use_auto_auth_token: r.cache.use_auto_auth_token.clone(),
                    persist: None,
                }),
            )
        } else {
            (Vec::new(), None)
        };
        if r.enable_quit {
            if listener.is_empty() {
                listener.push(listener_at(&r.cache.listener_port));
            }
            if let Some(first) = listener.first_mut() {
                first.agent_api = Some(AgentApi { enable_quit: true });
            }
            // An agent listener needs a cache stanza, even an empty one.
            cache.get_or_insert_with(CacheStanza::default);
        }
        Self {
            auto_auth: AutoAuth {
                method: Method::of(r),
                sink,
            },
            exit_after_auth: init,
            pid_file: PID_FILE,
            vault: VaultStanza::of(r),
            templates: templates(r),
            listener,
            cache,
            template_config: TemplateConfigStanza::of(r),
            disable_idle_connections: r.disable_idle_connections.clone(),
            disable_keep_alives: r.disable_keep_alives.clone(),
            telemetry: r.telemetry.as_ref().and_then(Telemetry::decode),
        }
    }

    /// Compact JSON, as upstream's `json.Marshal`.
    pub fn to_json(&self) -> Result<String, ConfigError> {
        self.template_config.check_encodable()?;
        // sonic-rs reserves six times a string's length before writing it (templates run to
        // kilobytes), so the buffer is sized not to regrow for a typical config.
        let mut out = Vec::with_capacity(16 * 1024);
        // Serialising plain structs of strings, bools and finite numbers cannot fail, and the
        // JSON written is UTF-8. sonic-rs escapes strings as serde_json does (tested), faster.
        let _ = sonic_rs::to_writer(&mut out, self);
        Ok(String::from_utf8(out).unwrap_or_default())
    }
}

impl<'a> Method<'a> {
    /// The request's login method, the same for every agent.
    fn of(r: &'a AgentRequest) -> Self {
        Self {
            method_type: &r.auth.auth_type,
            mount_path: &r.auth.mount_path,
            min_backoff: &r.auth.min_backoff,
            max_backoff: &r.auth.max_backoff,
            namespace: &r.auth.namespace,
            config: &r.auth.config,
            exit_on_err: r.auth.exit_on_err,
        }
    }
}

impl<'a> VaultStanza<'a> {
    /// The request's Vault connection, the same for every agent.
    fn of(r: &'a AgentRequest) -> Self {
        Self {
            address: &r.vault.address,
            ca_cert: &r.vault.ca_cert,
            ca_path: &r.vault.ca_key,
            tls_skip_verify: r.vault.tls_skip_verify,
            client_cert: &r.vault.client_cert,
            client_key: &r.vault.client_key,
            tls_server_name: &r.vault.tls_server_name,
        }
    }
}

impl TemplateConfigStanza {
    fn of(r: &AgentRequest) -> Self {
        Self {
            exit_on_retry_failure: r.template_config.exit_on_retry_failure,
            static_secret_render_interval: r.template_config.static_secret_render_interval.clone(),
            max_connections_per_host: r.template_config.max_connections_per_host,
            lease_renewal_threshold: r.template_config.lease_renewal_threshold,
        }
    }

    /// JSON has no NaN or infinity: Go's encoder refuses them, and so does this.
    fn check_encodable(&self) -> Result<(), ConfigError> {
        let t = self.lease_renewal_threshold;
        if t.is_finite() {
            return Ok(());
        }
        let value = if t.is_nan() {
            "NaN"
        } else if t > 0.0 {
            "+Inf"
        } else {
            "-Inf"
        };
        Err(ConfigError { value })
    }
}

impl Sink {
    fn file(path: String) -> Self {
        Self {
            sink_type: "file",
            config: SinkConfig { path },
        }
    }
}

/// Where the agent writes each rendered template, in template order (the native sidecar's
/// startup probe waits for all of them).
pub fn rendered_files(r: &AgentRequest) -> Vec<String> {
    templates(r).into_iter().map(|t| t.destination).collect()
}

fn templates(r: &AgentRequest) -> Vec<Template<'_>> {
    r.secrets
        .iter()
        .map(|s| {
            let contents = if !s.template.is_empty() {
                Cow::Borrowed(s.template.as_str())
            } else if s.template_file.is_empty() {
                // A secret declared only by a template has no Vault path and no default.
                Cow::Owned(match r.default_template {
                    DefaultTemplate::Map => MAP_TEMPLATE.replace("%s", &s.path),
                    DefaultTemplate::Json => JSON_TEMPLATE.replace("%s", &s.path),
                })
            } else {
                Cow::Borrowed("")
            };
            let destination = if s.file.is_empty() {
                // Plain concatenation, no cleaning: a trailing slash gives `//`, as upstream.
                [s.mount_path.as_str(), "/", s.name.as_str()].concat()
            } else {
                path_join(&[&s.mount_path, &s.file])
            };
            Template {
                destination,
                contents,
                left_delimiter: non_empty_or(&s.left_delimiter, "{{"),
                right_delimiter: non_empty_or(&s.right_delimiter, "}}"),
                command: &s.command,
                source: &s.template_file,
                perms: &s.perms,
                error_on_missing_key: s.error_on_missing_key,
            }
        })
        .collect()
}

fn non_empty_or<'a>(v: &'a str, fallback: &'static str) -> &'a str {
    if v.is_empty() { fallback } else { v }
}
