#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

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
    assert_eq!(s.agent.run_as_user, Ok(100));
    assert_eq!(s.agent.run_as_group, Ok(1000));
    assert!(s.agent.set_security_context);
    assert!(!s.agent.revoke_on_shutdown);
    assert!(!s.agent.run_as_same_user);
    assert_eq!(s.agent.default_template, DefaultTemplate::Map);
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

/// The settings with only the Vault address given, the base every declaration is compared to.
fn baseline() -> Settings {
    resolve(&[("vault-address", "http://baseline:8200")], &[]).unwrap()
}

/// Every declared field except `except`, with its value in `settings`.
fn other_fields(settings: &Settings, except: &Setting) -> Vec<(&'static str, String)> {
    SETTINGS
        .iter()
        .filter(|s| s.field != except.field)
        .map(|s| (s.field, s.show(settings)))
        .collect()
}

/// Asserts that `changed` differs from the baseline in `setting`'s field, and only there.
fn assert_reaches_only_its_field(setting: &Setting, changed: &Settings, via: &str) {
    let base = baseline();
    assert_ne!(
        setting.show(changed),
        setting.show(&base),
        "{} set {via} to {:?} left {} at {}",
        setting.env,
        setting.example,
        setting.field,
        setting.show(&base)
    );
    assert_eq!(
        other_fields(changed, setting),
        other_fields(&base, setting),
        "{} set {via} changed fields other than {}",
        setting.env,
        setting.field
    );
}

#[test]
fn every_declared_setting_reaches_its_field_and_no_other() {
    for setting in SETTINGS {
        let address = ("vault-address", "http://baseline:8200");
        let changed = resolve(&[address], &[(setting.env, setting.example)])
            .unwrap_or_else(|e| panic!("{}={:?}: {e}", setting.env, setting.example));
        assert_reaches_only_its_field(setting, &changed, "by env");
        if let Some(alias) = setting.alias {
            let changed = resolve(&[address], &[(alias, setting.example)]).unwrap();
            assert_reaches_only_its_field(setting, &changed, "by alias");
        }
        if let Some(flag) = setting.flag {
            // The setting's own flag goes last, so it wins for the Vault address too.
            let changed = resolve(&[address, (flag, setting.example)], &[])
                .unwrap_or_else(|e| panic!("-{flag}={:?}: {e}", setting.example));
            assert_reaches_only_its_field(setting, &changed, "by flag");
        }
    }
}

/// The leaf fields of `Settings`, read from its pretty `Debug` form: a line `name: value` at
/// the indentation of the struct it belongs to; `name: Type {` opens a nested struct.
fn leaf_fields(settings: &Settings) -> Vec<String> {
    let text = format!("{settings:#?}");
    let mut path: Vec<String> = Vec::new();
    let mut leaves = Vec::new();
    for line in text.lines().skip(1) {
        let indent = line.len() - line.trim_start().len();
        let depth = indent / 4;
        if line.trim() == "}," || line.trim() == "}" {
            if depth < path.len() + 1 {
                path.truncate(depth.saturating_sub(1));
            }
            continue;
        }
        if depth != path.len() + 1 {
            continue;
        }
        let Some((name, value)) = line.trim().split_once(": ") else {
            continue;
        };
        if !name.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
            continue;
        }
        let opens_struct = value.ends_with(" {") && value.starts_with(char::is_uppercase);
        if opens_struct {
            path.push(name.to_owned());
        } else {
            leaves.push(
                path.iter()
                    .chain([&name.to_owned()])
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("."),
            );
        }
    }
    leaves
}

#[test]
fn every_field_of_settings_is_filled_by_exactly_one_declaration() {
    let mut declared: Vec<&str> = SETTINGS.iter().map(|s| s.field).collect();
    declared.sort_unstable();
    let unique: BTreeSet<&str> = declared.iter().copied().collect();
    assert_eq!(unique.len(), declared.len(), "a field is declared twice");
    let mut fields = leaf_fields(&baseline());
    // Not a setting: what resolving found worth a startup warning.
    fields.retain(|f| f != "server.warnings");
    fields.sort_unstable();
    assert_eq!(fields, declared);
}

#[test]
fn the_docs_table_has_one_row_per_declaration() {
    let table = markdown_table();
    assert_eq!(table.lines().count(), SETTINGS.len() + 2);
    assert!(table.contains(
        "| `-vault-address` | `AGENT_INJECT_VAULT_ADDR` | required | Address of the Vault server (required). Also read from `AGENT_INJECT_BAO_ADDR`. |"
    ));
    assert!(table.contains(
        "| (none) | `AGENT_INJECT_TEMPLATE_MAX_CONNECTIONS_PER_HOST` | `0` | template_config.max_connections_per_host of the agents (env only). Also read from `AGENT_INJECT_AGENT_INJECT_TEMPLATE_MAX_CONNECTIONS_PER_HOST`. |"
    ));
    assert!(
        table.contains("| `-log-format` | `AGENT_INJECT_LOG_FORMAT` | `standard` (or `json`) |")
    );
}

#[test]
fn checks_follow_upstreams_startup_order_not_the_table_order() {
    // The env library parses every boolean before any integer, although
    // -use-leader-elector comes after the integer in the table.
    let err = resolve(
        &[],
        &[
            ("AGENT_INJECT_TEMPLATE_MAX_CONNECTIONS_PER_HOST", "many"),
            ("AGENT_INJECT_USE_LEADER_ELECTOR", "maybe"),
            ("AGENT_INJECT_LOG_LEVEL", "loud"),
        ],
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Error parsing environment variables: cannot parse '' as bool: strconv.ParseBool: parsing \"maybe\": invalid syntax"
    );
    // The Vault address is checked before the template type and the log level, whatever
    // their order in the table.
    let err = resolve(&[("log-level", "loud"), ("default-template", "MAP")], &[]).unwrap_err();
    assert_eq!(err, SettingsError::NoVaultAddress);
    let err = resolve(
        &[
            ("vault-address", "x"),
            ("log-level", "loud"),
            ("default-template", "MAP"),
        ],
        &[],
    )
    .unwrap_err();
    assert_eq!(err, SettingsError::DefaultTemplate("MAP".to_owned()));
    // A bad boolean flag is refused before anything is parsed.
    let err = resolve(&[("use-leader-elector", "maybe")], &[]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid boolean value \"maybe\" for -use-leader-elector: parse error"
    );
}

#[test]
fn a_bad_run_as_user_is_kept_for_each_pod_to_report() {
    let s = resolve(
        &[
            ("vault-address", "x"),
            ("run-as-user", "root"),
            ("run-as-group", ""),
        ],
        &[],
    )
    .unwrap();
    assert_eq!(
        s.agent.run_as_user.unwrap_err().to_string(),
        "strconv.ParseInt: parsing \"root\": invalid syntax"
    );
    // Empty means upstream's default.
    assert_eq!(s.agent.run_as_group, Ok(1000));
}
