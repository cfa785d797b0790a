//! Phases B, C and D: the pod's annotations read into an [`AgentRequest`], in upstream's order
//! so that the first bad annotation is the one reported.
//!
//! Upstream fills its defaults into the annotation map as strings (phase B) and parses the map
//! (phase C). Here an absent key takes its typed default directly, from the injector's
//! [`AgentDefaults`] or from the constants below; only what the pod wrote is parsed. The
//! outcome is the same, because upstream's default strings always parse to these values, and
//! "absent" and "present but empty" stay different (an empty `auth-type` is an error, an absent
//! one is the setting).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;

use super::env_exec;
use super::error::Problem;
use super::keys;
use super::pod::{aws_env, first_container_uid, irsa_mount, path_join, service_account};
use super::read::{Written, dashed_key, weak_bool, weak_int};
use super::request::{
    AgentEnv, AgentRequest, AuthMethod, Cache, DefaultTemplate, Resources, TemplateConfig,
    TokenVolume, VaultConnection,
};
use super::secrets::{self, DEFAULT_SECRET_VOLUME_PATH};
use crate::goparse::{parse_bool, parse_duration, parse_float64, parse_uint64};
use crate::settings::{AgentDefaults, DEFAULT_AGENT_IMAGE, PerPodId, split_list};

/// Seconds the preStop hook sleeps before revoking, when `agent-revoke-grace` is absent.
pub const DEFAULT_REVOKE_GRACE: u64 = 5;
/// The agents' log level when `log-level` is absent.
pub const DEFAULT_LOG_LEVEL: &str = "info";
/// The agents' log format when `log-format` is absent.
pub const DEFAULT_LOG_FORMAT: &str = "standard";
/// The cache listener port when `agent-cache-listener-port` is absent.
pub const DEFAULT_CACHE_LISTENER_PORT: &str = "8200";
/// `cache.use_auto_auth_token` when `agent-cache-use-auto-auth-token` is absent.
pub const DEFAULT_USE_AUTO_AUTH_TOKEN: &str = "true";
/// The auth type when both `auth-type` and `-vault-auth-type` are empty.
pub const DEFAULT_AUTH_TYPE: &str = "kubernetes";

/// The JSON patches of phase B, decoded.
struct Patches {
    sidecar: Option<serde_json::Value>,
    init: Option<serde_json::Value>,
}

/// Reads one pod's annotations against the injector's defaults.
pub(super) struct Parser<'a> {
    pub(super) pod: &'a Pod,
    pub(super) ann: Written<'a>,
    pub(super) namespace: &'a str,
    pub(super) defaults: &'a AgentDefaults,
}

impl<'a> Parser<'a> {
    /// The written value, or `absent`.
    fn text_or(&self, key: &str, absent: &str) -> String {
        self.ann.get(key).unwrap_or(absent).to_owned()
    }

    /// The written value, or the empty string.
    fn text(&self, key: &str) -> String {
        self.text_or(key, "")
    }

    /// A bool, `absent` when the key is not written.
    fn bool_or(&self, key: &str, absent: bool) -> Result<bool, Problem> {
        match self.ann.get(key) {
            None => Ok(absent),
            Some(raw) => weak_bool(key, raw),
        }
    }

    /// A uid or gid: the written value, else the setting (whose own parse error, if any,
    /// refuses the pod naming the annotation it defaults, as upstream).
    fn id(&self, key: &str, setting: &PerPodId) -> Result<i64, Problem> {
        match self.ann.get(key) {
            Some(raw) => weak_int(key, raw),
            None => setting.clone().map_err(|err| Problem::Number {
                key: key.to_owned(),
                err,
            }),
        }
    }

    /// Phase B: what upstream checks while it fills in its defaults.
    fn check_defaults(&self) -> Result<Patches, Problem> {
        let d = self.defaults;
        if d.vault_address.is_empty() {
            return Err(Problem::msg("address for Vault required"));
        }
        if d.auth_path.is_empty() {
            return Err(Problem::msg("Vault Auth Path required"));
        }
        if self.namespace.is_empty() {
            return Err(Problem::msg("kubernetes namespace required"));
        }
        // The injector's backoffs were checked at startup; only the pod's are checked here.
        for (key, which) in [
            (keys::AUTH_MIN_BACKOFF, "min"),
            (keys::AUTH_MAX_BACKOFF, "max"),
        ] {
            if let Some(v) = self.ann.get(key).filter(|v| !v.is_empty()) {
                parse_duration(v).map_err(|err| Problem::Backoff { which, key, err })?;
            }
        }
        let patch = |key: &'static str| match self.ann.get(key) {
            None | Some("") => Ok(None),
            Some(v) => json_patch(v)
                .map(Some)
                .map_err(|err| Problem::JsonPatchSyntax { key, err }),
        };
        Ok(Patches {
            sidecar: patch(keys::JSON_PATCH)?,
            init: patch(keys::INIT_JSON_PATCH)?,
        })
    }

    /// Phases B and C in upstream's order, then phase D.
    pub(super) fn parse(&self) -> Result<AgentRequest, super::Refusal> {
        use super::Refusal;
        let patches = self.check_defaults().map_err(Refusal::Defaults)?;
        let request = self.read(patches).map_err(Refusal::Parse)?;
        validate(&request, &self.ann).map_err(Refusal::Validate)?;
        Ok(request)
    }

    /// Phase C, in upstream's order.
    fn read(&self, patches: Patches) -> Result<AgentRequest, Problem> {
        let (pod, d) = (self.pod, self.defaults);
        let service_account =
            service_account(pod, self.ann.get(keys::SA_TOKEN_VOLUME_NAME).unwrap_or(""))?;
        let auth_type = self.text_or(keys::AUTH_TYPE, or(&d.auth_type, DEFAULT_AUTH_TYPE));
        let irsa_mount = if auth_type == "aws" {
            irsa_mount(pod)
        } else {
            None
        };
        let secrets = secrets::discover(&self.ann)?;
        let role = self.text(keys::ROLE);
        let auth_config = self.auth_config(&service_account, &role);
        // `agent-inject` passed the gate, so it parses; upstream reads it again anyway.
        self.bool_or(keys::INJECT, true)?;
        let telemetry = self.telemetry();
        let init_first = self.bool_or(keys::INIT_FIRST, false)?;
        let pre_populate = self.bool_or(keys::PRE_POPULATE, true)?;
        let pre_populate_only = self.bool_or(keys::PRE_POPULATE_ONLY, false)?;
        let revoke_on_shutdown = self.bool_or(keys::REVOKE_ON_SHUTDOWN, d.revoke_on_shutdown)?;
        let inject_containers = match self.ann.get(keys::CONTAINERS) {
            Some(list) => list.split(',').map(str::to_owned).collect(),
            None => app_containers(pod),
        };
        let revoke_grace = match self.ann.get(keys::REVOKE_GRACE) {
            None => DEFAULT_REVOKE_GRACE,
            Some(raw) => parse_uint64(raw).map_err(|err| Problem::Number {
                key: keys::REVOKE_GRACE.to_owned(),
                err,
            })?,
        };
        let tls_skip_verify = self.bool_or(keys::TLS_SKIP_VERIFY, false)?;
        let mut run_as_user = self.id(keys::RUN_AS_USER, &d.run_as_user)?;
        let run_as_group = self.id(keys::RUN_AS_GROUP, &d.run_as_group)?;
        if self.bool_or(keys::RUN_AS_SAME_USER, d.run_as_same_user)? {
            run_as_user = first_container_uid(pod)?;
        }
        let share_process_namespace = self.share_process_namespace()?;
        // Asking for a uid or gid on a pod only makes sense with a security context, so upstream
        // turns it on when the injector-wide setting is off and the pod did not say otherwise.
        let asks_for_ids = [
            keys::RUN_AS_USER,
            keys::RUN_AS_SAME_USER,
            keys::RUN_AS_GROUP,
        ]
        .into_iter()
        .any(|key| self.ann.has(key));
        let set_security_context = self.bool_or(
            keys::SET_SECURITY_CONTEXT,
            d.set_security_context || asks_for_ids,
        )?;
        let cache_enable = self.bool_or(keys::CACHE_ENABLE, false)?;
        let cache_exit_on_err = self.bool_or(keys::CACHE_EXIT_ON_ERR, false)?;
        let default_template = match self.ann.get(keys::DEFAULT_TEMPLATE) {
            None => d.default_template,
            Some(raw) => template_type(raw)?,
        };
        let inject_token = self.bool_or(keys::INJECT_TOKEN, false)?;
        let exit_on_retry_failure = self.bool_or(
            keys::TEMPLATE_EXIT_ON_RETRY_FAILURE,
            d.exit_on_retry_failure,
        )?;
        let max_connections_per_host = match self.ann.get(keys::TEMPLATE_MAX_CONNECTIONS_PER_HOST) {
            None => d.max_connections_per_host,
            Some(raw) => weak_int(keys::TEMPLATE_MAX_CONNECTIONS_PER_HOST, raw)?,
        };
        // The injector's setting is parsed at startup and ignored here, as upstream ignores it.
        let lease_renewal_threshold = match self.ann.get(keys::TEMPLATE_LEASE_RENEWAL_THRESHOLD) {
            None => 0.0,
            Some(raw) => parse_float64(raw).map_err(|err| Problem::Number {
                key: keys::TEMPLATE_LEASE_RENEWAL_THRESHOLD.to_owned(),
                err,
            })?,
        };
        let enable_quit = self.bool_or(keys::ENABLE_QUIT, false)?;
        // Split only when non-empty, as upstream: an empty value leaves the key out entirely.
        let list_or = |key: &str, absent: &[String]| match self.ann.get(key) {
            Some(raw) => split_list(raw),
            None => absent.to_vec(),
        };
        let disable_idle_connections =
            list_or(keys::DISABLE_IDLE_CONNECTIONS, &d.disable_idle_connections);
        let disable_keep_alives = list_or(keys::DISABLE_KEEP_ALIVES, &d.disable_keep_alives);
        let auto_auth_exit_on_err = self.bool_or(keys::AUTO_AUTH_EXIT_ON_ERR, false)?;
        // Beyond upstream, read after every upstream key so that upstream's error precedence is
        // kept. A one-shot pre-populate-only agent is already the single agent native mode
        // aims for, and flipping the injector-wide setting must not break such pods: it wins.
        let native_sidecar =
            self.bool_or(keys::NATIVE_SIDECAR, d.native_sidecar)? && !pre_populate_only;
        let seccomp_runtime_default =
            self.bool_or(keys::SECCOMP_RUNTIME_DEFAULT, d.seccomp_runtime_default)?;
        let env_exec = env_exec::read(&self.ann, pod)?;

        Ok(AgentRequest {
            namespace: self.text_or(keys::REQUEST_NAMESPACE, self.namespace),
            image: self.text_or(keys::IMAGE, or(&d.image, DEFAULT_AGENT_IMAGE)),
            vault: VaultConnection {
                address: self.text_or(keys::SERVICE, &d.vault_address),
                ca_cert: self.text(keys::CA_CERT),
                ca_key: self.text(keys::CA_KEY),
                client_cert: self.text(keys::CLIENT_CERT),
                client_key: self.text(keys::CLIENT_KEY),
                tls_skip_verify,
                tls_server_name: self.text(keys::TLS_SERVER_NAME),
            },
            aws_env: if auth_type == "aws" {
                aws_env(pod)
            } else {
                Vec::new()
            },
            auth: AuthMethod {
                auth_type,
                mount_path: self.text_or(keys::AUTH_PATH, &d.auth_path),
                namespace: self.text_or(keys::VAULT_NAMESPACE, &d.vault_namespace),
                min_backoff: self.text_or(keys::AUTH_MIN_BACKOFF, &d.auth_min_backoff),
                max_backoff: self.text_or(keys::AUTH_MAX_BACKOFF, &d.auth_max_backoff),
                role,
                config: auth_config,
                exit_on_err: auto_auth_exit_on_err,
            },
            irsa_mount,
            service_account,
            secret_volume_path: self.text_or(keys::SECRET_VOLUME_PATH, DEFAULT_SECRET_VOLUME_PATH),
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
                listener_port: self.text_or(keys::CACHE_LISTENER_PORT, DEFAULT_CACHE_LISTENER_PORT),
                use_auto_auth_token: self
                    .text_or(keys::CACHE_USE_AUTO_AUTH_TOKEN, DEFAULT_USE_AUTO_AUTH_TOKEN),
                exit_on_err: cache_exit_on_err,
            },
            native_sidecar,
            seccomp_runtime_default,
            inject_token,
            enable_quit,
            template_config: TemplateConfig {
                exit_on_retry_failure,
                static_secret_render_interval: self.text_or(
                    keys::TEMPLATE_STATIC_SECRET_RENDER_INTERVAL,
                    &d.static_secret_render_interval,
                ),
                max_connections_per_host,
                lease_renewal_threshold,
            },
            disable_idle_connections,
            disable_keep_alives,
            telemetry,
            config_map: self.text(keys::CONFIGMAP),
            extra_secret: self.text(keys::EXTRA_SECRET),
            tls_secret: self.text(keys::TLS_SECRET),
            copy_volume_mounts: self.text(keys::COPY_VOLUME_MOUNTS),
            resources: Resources {
                limits_cpu: self.text_or(keys::LIMITS_CPU, &d.resources.cpu_limit),
                limits_mem: self.text_or(keys::LIMITS_MEM, &d.resources.memory_limit),
                limits_ephemeral: self
                    .text_or(keys::LIMITS_EPHEMERAL, &d.resources.ephemeral_limit),
                requests_cpu: self.text_or(keys::REQUESTS_CPU, &d.resources.cpu_request),
                requests_mem: self.text_or(keys::REQUESTS_MEM, &d.resources.memory_request),
                requests_ephemeral: self
                    .text_or(keys::REQUESTS_EPHEMERAL, &d.resources.ephemeral_request),
            },
            json_patch: patches.sidecar,
            init_json_patch: patches.init,
            env: AgentEnv {
                go_max_procs: self.text(keys::GO_MAX_PROCS),
                client_timeout: self.text(keys::CLIENT_TIMEOUT),
                client_max_retries: self.text(keys::CLIENT_MAX_RETRIES),
                log_level: self.text_or(keys::LOG_LEVEL, DEFAULT_LOG_LEVEL),
                log_format: self.text_or(keys::LOG_FORMAT, DEFAULT_LOG_FORMAT),
                proxy_address: self.text_or(keys::PROXY_ADDRESS, &d.proxy_address),
                ca_cert_bytes: d.ca_cert_bytes.clone(),
            },
            env_exec,
        })
    }

    /// `auto_auth.method.config`: the token path, every `auth-config-<param>`, then the role.
    fn auth_config(&self, sa: &TokenVolume, role: &str) -> BTreeMap<String, String> {
        let mut config = BTreeMap::new();
        if !sa.mount_path.is_empty() && !sa.token_path.is_empty() {
            config.insert(
                "token_path".to_owned(),
                path_join(&[&sa.mount_path, &sa.token_path]),
            );
        }
        for (param, value) in self.ann.params(keys::AUTH_CONFIG) {
            config.insert(param, value.to_owned());
        }
        if !role.is_empty() {
            config.insert("role".to_owned(), role.to_owned());
        }
        config
    }

    /// Every `agent-telemetry-<param>`, its value decoded as JSON when it is JSON.
    fn telemetry(&self) -> Option<BTreeMap<String, serde_json::Value>> {
        let entries: BTreeMap<String, serde_json::Value> = self
            .ann
            .params(keys::TELEMETRY)
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
        let Some(raw) = self.ann.get(keys::SHARE_PROCESS_NAMESPACE) else {
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

/// The setting, or `fallback` when the setting is empty.
fn or<'a>(setting: &'a str, fallback: &'a str) -> &'a str {
    if setting.is_empty() {
        fallback
    } else {
        setting
    }
}

/// The app containers' names, as upstream's default of `agent-inject-containers` lists them:
/// upstream joins them with commas and splits the list again, so a name holding a comma counts
/// as several, and a pod without containers has one empty name.
fn app_containers(pod: &Pod) -> Vec<String> {
    let mut names: Vec<String> = pod
        .spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .flat_map(|c| c.name.split(','))
        .map(str::to_owned)
        .collect();
    if names.is_empty() {
        names.push(String::new());
    }
    names
}

/// `agent-inject-default-template`, in any case.
fn template_type(raw: &str) -> Result<DefaultTemplate, Problem> {
    match raw.to_lowercase().as_str() {
        "map" => Ok(DefaultTemplate::Map),
        "json" => Ok(DefaultTemplate::Json),
        other => Err(Problem::msg(format!(
            "invalid default template type: {other} (annotation {}; use map or json)",
            keys::DEFAULT_TEMPLATE
        ))),
    }
}

/// Upstream's phase B only decodes the document: a JSON array of objects, or `null`. Unknown
/// operations are left for phase E, where applying them fails.
fn json_patch(raw: &str) -> Result<serde_json::Value, String> {
    let value: serde_json::Value = serde_json::from_str(raw).map_err(|e| e.to_string())?;
    match &value {
        serde_json::Value::Null => Ok(value),
        serde_json::Value::Array(items) => {
            if items.iter().all(serde_json::Value::is_object) {
                Ok(value)
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

/// Phase D: what upstream's `Validate` refuses.
fn validate(r: &AgentRequest, ann: &Written<'_>) -> Result<(), Problem> {
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
            && ann.get(&auth_config_role).is_none_or(str::is_empty)
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
    if r.env_exec.is_on() {
        env_exec::validate(r)?;
    }
    Ok(())
}
