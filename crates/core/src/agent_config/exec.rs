//! The configuration of the agent that supervises the wrapped container's process (secrets as
//! environment variables, not upstream): the agent's `env_template` and `exec` blocks.
//!
//! The agent logs in as the sidecar does (the same `auto_auth.method`, with the pod's
//! service-account token) but keeps its token in memory: there is no sink, no listener, no
//! cache and no pid file, so it writes nothing to disk. It renders every variable, starts
//! `exec.command` with them added to the container's environment, forwards its output, stops it
//! with `exec.restart_stop_signal` and starts it again when a value changes, and exits with the
//! process's exit code. The agent refuses file templates next to `env_template`, which is why
//! the file secrets stay with the classic agents.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{ConfigError, Method, TemplateConfigStanza, VaultStanza};
use crate::annotations::AgentRequest;

/// The directory of the `vault-exec` volume: the agent binary and this configuration.
pub const EXEC_DIR: &str = "/vault/exec";
/// Where the wrapped container's agent reads its configuration.
pub const EXEC_CONFIG_FILE: &str = "/vault/exec/config.json";
/// Where the injector's `-vault-cacert-bytes` are written for the agent, which (unlike the
/// classic agents) cannot be given `VAULT_CACERT_BYTES`: its environment is the app's.
pub const EXEC_CA_FILE: &str = "/vault/exec/ca.crt";

/// The default template of a variable with a path: the secret's data as one line of JSON, the
/// inner `data` of a KV version 2 secret (whose `.Data` holds `data` and `metadata`). `index`
/// (not `.Data.data`) reads the map, so a secret without those keys is no missing-key error.
pub fn env_default_template(path: &str) -> String {
    format!(
        "{{{{ with secret \"{path}\" }}}}{{{{ if and (index .Data \"data\") (index .Data \"metadata\") }}}}{{{{ index .Data \"data\" | toJSON }}}}{{{{ else }}}}{{{{ .Data | toJSON }}}}{{{{ end }}}}{{{{ end }}}}"
    )
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExecConfig<'a> {
    /// The login, without sinks.
    pub auto_auth: ExecAutoAuth<'a>,
    /// The Vault connection.
    pub vault: VaultStanza<'a>,
    /// One template per variable, by name.
    pub env_template: BTreeMap<&'a str, EnvTemplate>,
    /// The process.
    pub exec: ExecStanza<'a>,
    /// As the classic agents'.
    pub template_config: TemplateConfigStanza,
    /// As the classic agents'.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub disable_idle_connections: Vec<String>,
    /// As the classic agents'.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub disable_keep_alives: Vec<String>,
    /// `log-level` (the classic agents get it as `VAULT_LOG_LEVEL`).
    #[serde(skip_serializing_if = "super::str_is_empty")]
    pub log_level: &'a str,
    /// `log-format` (the classic agents get it as `VAULT_LOG_FORMAT`).
    #[serde(skip_serializing_if = "super::str_is_empty")]
    pub log_format: &'a str,
}

/// `auto_auth` without sinks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExecAutoAuth<'a> {
    /// One method, written as a one-element array: the agent reads JSON with HCL's rules,
    /// which turn an object whose members are all objects into nested blocks, so an
    /// `auto_auth` holding only a `method` object (no `sink` array beside it) would be misread
    /// ("one and only one \"method\" block is required"). An array stays one block.
    pub method: [Method<'a>; 1],
}

/// One `env_template` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnvTemplate {
    /// The template.
    pub contents: String,
    /// Always true: a variable that names a missing key fails loudly instead of starting the
    /// process with `<no value>`.
    pub error_on_missing_key: bool,
}

/// `exec`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExecStanza<'a> {
    /// The wrapped container's command line.
    pub command: &'a [String],
    /// `always` or `never`.
    pub restart_on_secret_changes: &'static str,
    /// Upper case signal name.
    pub restart_stop_signal: &'a str,
}

impl<'a> ExecConfig<'a> {
    /// The configuration for a request with secrets as environment variables (`None` without).
    pub fn build(r: &'a AgentRequest) -> Option<Self> {
        let e = &r.env_exec;
        if !e.is_on() {
            return None;
        }
        let mut vault = VaultStanza::of(r);
        if vault.ca_cert.is_empty() && !r.env.ca_cert_bytes.is_empty() {
            vault.ca_cert = EXEC_CA_FILE;
        }
        let env_template = e
            .vars
            .iter()
            .map(|v| {
                let contents = if v.template.is_empty() {
                    env_default_template(&v.path)
                } else {
                    v.template.clone()
                };
                (
                    v.name.as_str(),
                    EnvTemplate {
                        contents,
                        error_on_missing_key: true,
                    },
                )
            })
            .collect();
        Some(Self {
            auto_auth: ExecAutoAuth {
                method: [Method::of(r)],
            },
            vault,
            env_template,
            exec: ExecStanza {
                command: &e.command,
                restart_on_secret_changes: e.restart.as_str(),
                restart_stop_signal: &e.stop_signal,
            },
            template_config: TemplateConfigStanza::of(r),
            disable_idle_connections: r.disable_idle_connections.clone(),
            disable_keep_alives: r.disable_keep_alives.clone(),
            log_level: &r.env.log_level,
            log_format: &r.env.log_format,
        })
    }

    /// Compact JSON.
    pub fn to_json(&self) -> Result<String, ConfigError> {
        self.template_config.check_encodable()?;
        // Plain structs of strings, bools and finite numbers always serialise.
        Ok(serde_json::to_string(self).unwrap_or_default())
    }
}
