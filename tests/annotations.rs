//! Per-family tests of annotation parsing and its effect on the mutated pod and agent config,
//! following the upstream unit-test inventory (spec/tests-inventory.md).
#![allow(clippy::unwrap_used)]

mod support;

use serde_json::json;
use support::*;
use vault_injector::annotations::{self, AgentRequest};
use vault_injector::settings::{AgentDefaults, Settings};

fn parsed(pod: &serde_json::Value) -> AgentRequest {
    let pod = serde_json::from_value(pod.clone()).unwrap();
    annotations::parse(&pod, "apps", &defaults()).unwrap()
}

// ---- gate and status ----

#[test]
fn gate_follows_agent_inject_status_and_phase() {
    assert!(skipped(&pod().without("agent-inject").build()));
    assert!(skipped(&pod().ann("agent-inject", "false").build()));
    assert!(skipped(&pod().ann("agent-inject", "").build()));
    assert!(skipped(
        &pod().ann("agent-inject-status", "injected").build()
    ));
    assert!(skipped(
        &pod()
            .ann("agent-inject", "false")
            .ann("agent-inject-status", "injected")
            .build()
    ));
    inject(&pod().ann("agent-inject-status", "update").build()).unwrap();
    for phase in ["Running", "Succeeded", "Failed"] {
        let p = pod()
            .ann("agent-inject-status", "update")
            .set("/metadata/name", json!("x"))
            .build();
        let mut p = p;
        p["status"] = json!({"phase": phase});
        assert!(skipped(&p), "{phase}");
    }
    let mut pending = pod().build();
    pending["status"] = json!({"phase": "Pending"});
    inject(&pending).unwrap();
}

#[test]
fn an_invalid_agent_inject_value_is_refused_not_skipped() {
    assert_eq!(
        refusal(&pod().ann("agent-inject", "yes").build()),
        "error checking if should inject agent: cannot parse '' as bool: strconv.ParseBool: parsing \"yes\": invalid syntax (annotation vault.hashicorp.com/agent-inject)"
    );
}

#[test]
fn system_namespaces_are_refused_only_when_injection_is_asked() {
    let d = defaults();
    let err = vault_injector::admission::mutate(&pod().build(), "kube-system", &d).unwrap_err();
    assert_eq!(
        err.to_string(),
        "error with request namespace: cannot inject into system namespaces: kube-system"
    );
    assert!(vault_injector::admission::mutate(&pod().build(), "kube-public", &d).is_err());
    assert!(
        vault_injector::admission::mutate(
            &pod().without("agent-inject").build(),
            "kube-system",
            &d
        )
        .is_ok()
    );
    assert!(vault_injector::admission::mutate(&pod().build(), "kube-node-lease", &d).is_ok());
}

#[test]
fn the_status_annotation_is_the_last_op_with_an_escaped_path() {
    let out = inject(&pod().build()).unwrap();
    let last = out.ops.last().unwrap();
    assert_eq!(
        last["path"],
        "/metadata/annotations/vault.hashicorp.com~1agent-inject-status"
    );
    assert_eq!(last["value"], "injected");
    assert_eq!(
        out.pod["metadata"]["annotations"]["vault.hashicorp.com/agent-inject-status"],
        "injected"
    );
}

// ---- bool spellings ----

#[test]
fn bool_annotations_accept_go_spellings_and_refuse_others() {
    for key in [
        "agent-pre-populate",
        "agent-pre-populate-only",
        "tls-skip-verify",
        "agent-revoke-on-shutdown",
        "agent-cache-enable",
        "agent-share-process-namespace",
        "agent-set-security-context",
        "agent-init-first",
        "agent-inject-token",
        "agent-enable-quit",
        "agent-auto-auth-exit-on-err",
        "agent-cache-exit-on-err",
        "template-config-exit-on-retry-failure",
        "agent-native-sidecar",
        "agent-seccomp-runtime-default",
    ] {
        for ok in [
            "true", "false", "TRUE", "FALSE", "0", "1", "t", "f", "True", "",
        ] {
            let p = pod().ann(key, ok).build();
            vault_injector::admission::mutate(&p, "apps", &defaults())
                .unwrap_or_else(|e| panic!("{key}={ok:?}: {e}"));
        }
        for bad in ["tRuE", "fAlSe", "secure", "yes", " true"] {
            let msg = refusal(&pod().ann(key, bad).build());
            assert!(
                msg.starts_with("error creating new agent sidecar: "),
                "{key}={bad:?}: {msg}"
            );
            assert!(
                msg.contains(&format!("parsing \"{bad}\": invalid syntax")),
                "{msg}"
            );
            assert!(msg.contains(&format!("vault.hashicorp.com/{key}")), "{msg}");
        }
    }
}

// ---- numbers ----

#[test]
fn revoke_grace_is_an_unsigned_integer() {
    for ok in ["5", "0", "01"] {
        inject(&pod().ann("agent-revoke-grace", ok).build()).unwrap();
    }
    for bad in ["-1", "foobar", "", "+5"] {
        let msg = refusal(&pod().ann("agent-revoke-grace", bad).build());
        assert!(msg.contains("strconv.ParseUint: parsing"), "{bad}: {msg}");
        assert!(msg.contains("agent-revoke-grace"), "{msg}");
    }
}

#[test]
fn run_as_user_and_group_are_integers_and_empty_means_root() {
    let msg = refusal(&pod().ann("agent-run-as-user", "root").build());
    assert_eq!(
        msg,
        "error creating new agent sidecar: strconv.ParseInt: parsing \"root\": invalid syntax (annotation vault.hashicorp.com/agent-run-as-user)"
    );
    assert!(
        refusal(&pod().ann("agent-run-as-group", "wheel").build()).contains("agent-run-as-group")
    );
    let out = inject(&pod().ann("agent-run-as-user", "").build()).unwrap();
    assert_eq!(
        out.container("vault-agent")["securityContext"]["runAsUser"],
        0
    );
    assert_eq!(
        out.container("vault-agent")["securityContext"]["runAsNonRoot"],
        false
    );
}

#[test]
fn lease_renewal_threshold_is_a_float_and_nan_fails_when_encoding() {
    let out = inject(
        &pod()
            .ann("template-lease-renewal-threshold", "0.75")
            .build(),
    )
    .unwrap();
    assert_eq!(
        out.config("vault-agent")["template_config"]["lease_renewal_threshold"],
        0.75
    );
    assert!(
        refusal(
            &pod()
                .ann("template-lease-renewal-threshold", "one-third")
                .build()
        )
        .contains("strconv.ParseFloat: parsing \"one-third\": invalid syntax")
    );
    let msg = refusal(&pod().ann("template-lease-renewal-threshold", "NaN").build());
    assert!(
        msg.starts_with("error creating patch for agent: json: unsupported value: NaN"),
        "{msg}"
    );
}

#[test]
fn max_connections_per_host_is_an_integer() {
    let out = inject(
        &pod()
            .ann("template-max-connections-per-host", "100")
            .build(),
    )
    .unwrap();
    assert_eq!(
        out.config("vault-agent")["template_config"],
        json!({"exit_on_retry_failure": true, "max_connections_per_host": 100})
    );
    assert!(
        refusal(
            &pod()
                .ann("template-max-connections-per-host", "lots")
                .build()
        )
        .contains("ParseInt")
    );
}

// ---- defaulting phase ----

#[test]
fn backoff_durations_are_checked_while_defaulting() {
    for ok in ["", "1s", "1m", "1.5h"] {
        inject(
            &pod()
                .ann("auth-min-backoff", ok)
                .ann("auth-max-backoff", ok)
                .build(),
        )
        .unwrap();
    }
    assert_eq!(
        refusal(&pod().ann("auth-min-backoff", "x").build()),
        "error adding default annotations: error parsing min backoff as duration: time: invalid duration \"x\" (annotation vault.hashicorp.com/auth-min-backoff)"
    );
    assert!(
        refusal(&pod().ann("auth-max-backoff", "5").build()).contains(
            "error parsing max backoff as duration: time: missing unit in duration \"5\""
        )
    );
    let out = inject(
        &pod()
            .ann("auth-min-backoff", "5s")
            .ann("auth-max-backoff", "10s")
            .build(),
    )
    .unwrap();
    let method = &out.config("vault-agent")["auto_auth"]["method"];
    assert_eq!(method["min_backoff"], "5s");
    assert_eq!(method["max_backoff"], "10s");
}

#[test]
fn injector_backoff_defaults_apply_only_to_absent_annotations() {
    let mut d = defaults();
    d.auth_min_backoff = "3s".to_owned();
    let out = inject_with(&pod().build(), &d).unwrap();
    assert_eq!(
        out.config("vault-agent")["auto_auth"]["method"]["min_backoff"],
        "3s"
    );
    let out = inject_with(&pod().ann("auth-min-backoff", "").build(), &d).unwrap();
    assert!(
        out.config("vault-agent")["auto_auth"]["method"]
            .get("min_backoff")
            .is_none()
    );
}

#[test]
fn json_patch_syntax_is_checked_while_defaulting_and_ops_when_patching() {
    let msg = refusal(&pod().ann("agent-json-patch", "abc").build());
    assert!(msg.starts_with("error adding default annotations: error parsing JSON patch for annotation vault.hashicorp.com/agent-json-patch: "), "{msg}");
    let msg = refusal(&pod().ann("agent-init-json-patch", "{}").build());
    assert!(
        msg.contains("vault.hashicorp.com/agent-init-json-patch"),
        "{msg}"
    );
    assert_eq!(
        refusal(
            &pod()
                .ann("agent-json-patch", r#"[{"op":"invalid"}]"#)
                .build()
        ),
        "error creating patch for agent: failed to apply JSON patch: Unexpected kind: invalid"
    );
    let msg = refusal(
        &pod()
            .ann(
                "agent-json-patch",
                r#"[{"op":"add","path":"/securityContext/x/y","value":1}]"#,
            )
            .build(),
    );
    assert!(
        msg.starts_with("error creating patch for agent: failed to apply JSON patch: "),
        "{msg}"
    );
}

#[test]
fn null_empty_and_blank_json_patches_change_nothing() {
    let base = inject(&pod().build()).unwrap();
    for v in ["null", "[]", ""] {
        let out = inject(
            &pod()
                .ann("agent-json-patch", v)
                .ann("agent-init-json-patch", v)
                .build(),
        )
        .unwrap();
        assert_eq!(out.pod["spec"], base.pod["spec"], "{v:?}");
    }
}

#[test]
fn json_patches_rename_only_their_own_container() {
    let out = inject(
        &pod()
            .ann(
                "agent-json-patch",
                r#"[{"op":"replace","path":"/name","value":"different-name"}]"#,
            )
            .build(),
    )
    .unwrap();
    assert_eq!(out.container_names(), ["app", "different-name"]);
    assert_eq!(out.init_names(), ["vault-agent-init"]);
    let out = inject(
        &pod()
            .ann(
                "agent-init-json-patch",
                r#"[{"op":"replace","path":"/name","value":"early"}]"#,
            )
            .build(),
    )
    .unwrap();
    assert_eq!(out.init_names(), ["early"]);
    assert_eq!(out.container_names(), ["app", "vault-agent"]);
}

#[test]
fn a_json_patch_that_breaks_the_container_type_is_refused() {
    let msg = refusal(
        &pod()
            .ann(
                "agent-json-patch",
                r#"[{"op":"replace","path":"/args","value":"x"}]"#,
            )
            .build(),
    );
    assert!(msg.starts_with("error creating patch for agent: "), "{msg}");
    assert!(msg.contains("agent-json-patch"), "{msg}");
}

/// The env names of the sidecar upstream builds for `pod()` (the last is `VAULT_CONFIG`).
fn sidecar_env(out: &support::Injected) -> Vec<String> {
    env_names(out.container("vault-agent"))
}

#[test]
fn json_patch_negative_indexes_count_from_the_end_as_in_upstreams_library() {
    let base = sidecar_env(&inject(&pod().build()).unwrap());
    let patched =
        |patch: &str| sidecar_env(&inject(&pod().ann("agent-json-patch", patch).build()).unwrap());
    // `remove /env/-1`: upstream removes the sidecar's last env entry.
    assert_eq!(
        patched(r#"[{"op":"remove","path":"/env/-1"}]"#),
        base[..base.len() - 1]
    );
    // add at -1 appends (the array one longer), at -2 inserts before the last.
    let x = r#""value":{"name":"X","value":"x"}"#;
    let mut appended = base.clone();
    appended.push("X".into());
    assert_eq!(
        patched(&format!(r#"[{{"op":"add","path":"/env/-1",{x}}}]"#)),
        appended
    );
    let mut before_last = base.clone();
    before_last.insert(base.len() - 1, "X".into());
    assert_eq!(
        patched(&format!(r#"[{{"op":"add","path":"/env/-2",{x}}}]"#)),
        before_last
    );
    // replace, test, copy and move, and negative indexes inside a path.
    let mut renamed = base.clone();
    *renamed.last_mut().unwrap() = "R".into();
    assert_eq!(
        patched(
            r#"[{"op":"test","path":"/env/-1/name","value":"VAULT_CONFIG"},{"op":"replace","path":"/env/-1/name","value":"R"}]"#
        ),
        renamed
    );
    let mut copied = base.clone();
    copied.insert(0, base[base.len() - 1].clone());
    assert_eq!(
        patched(r#"[{"op":"copy","from":"/env/-1","path":"/env/0"}]"#),
        copied
    );
    let mut moved = base.clone();
    let last = moved.pop().unwrap();
    moved.insert(0, last);
    assert_eq!(
        patched(r#"[{"op":"move","from":"/env/-1","path":"/env/0"}]"#),
        moved
    );
    // Too far back is the library's error.
    assert_eq!(
        refusal(
            &pod()
                .ann(
                    "agent-json-patch",
                    r#"[{"op":"remove","path":"/env/-100"}]"#
                )
                .build()
        ),
        "error creating patch for agent: failed to apply JSON patch: error in remove for path: '/env/-100': Unable to access invalid index: -100: invalid index referenced"
    );
}

#[test]
fn json_patch_replace_of_a_missing_member_adds_it_as_in_upstreams_library() {
    let out = inject(
        &pod()
            .ann(
                "agent-json-patch",
                r#"[{"op":"replace","path":"/imagePullPolicy","value":"Always"}]"#,
            )
            .build(),
    )
    .unwrap();
    assert_eq!(out.container("vault-agent")["imagePullPolicy"], "Always");
}

#[test]
fn a_json_patch_that_writes_a_bad_quantity_is_refused_as_upstream_refuses_it() {
    // Upstream's own prefix and apimachinery's text, plus where and which annotation.
    assert_eq!(
        refusal(
            &pod()
                .ann(
                    "agent-init-json-patch",
                    r#"[{"op":"replace","path":"/resources/limits/cpu","value":"lots"}]"#,
                )
                .build()
        ),
        "error creating patch for agent: quantities must match the regular expression \
         '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$' (resources.limits.cpu: \"lots\", after \
         applying annotation vault.hashicorp.com/agent-init-json-patch)"
    );
    let msg = refusal(
        &pod()
            .ann(
                "agent-json-patch",
                r#"[{"op":"add","path":"/resources/requests/memory","value":"1K"}]"#,
            )
            .build(),
    );
    assert!(
        msg.starts_with("error creating patch for agent: unable to parse quantity's suffix (resources.requests.memory: \"1K\""),
        "{msg}"
    );
}

#[test]
fn quantities_are_canonical_before_and_after_the_json_patch() {
    // With agent-limits-cpu 0.5 upstream's container already holds 500m.
    let cpu_half = pod().ann("agent-limits-cpu", "0.5");
    let out = inject(
        &cpu_half
            .clone()
            .ann(
                "agent-json-patch",
                r#"[{"op":"test","path":"/resources/limits/cpu","value":"500m"}]"#,
            )
            .build(),
    )
    .unwrap();
    assert_eq!(
        out.container("vault-agent")["resources"]["limits"]["cpu"],
        "500m"
    );
    assert_eq!(
        out.container("vault-agent-init")["resources"]["limits"]["cpu"],
        "500m"
    );
    let msg = refusal(
        &cpu_half
            .ann(
                "agent-json-patch",
                r#"[{"op":"test","path":"/resources/limits/cpu","value":"0.5"}]"#,
            )
            .build(),
    );
    assert_eq!(
        msg,
        "error creating patch for agent: failed to apply JSON patch: testing value /resources/limits/cpu failed: test failed"
    );
    // A copy of agent-limits-cpu 1000m copies "1".
    let out = inject(
        &pod()
            .ann("agent-limits-cpu", "1000m")
            .ann(
                "agent-json-patch",
                r#"[{"op":"copy","from":"/resources/limits/cpu","path":"/resources/requests/cpu"}]"#,
            )
            .build(),
    )
    .unwrap();
    assert_eq!(
        out.container("vault-agent")["resources"]["requests"]["cpu"],
        "1"
    );
    // Values the patch writes are written canonically too, whatever their JSON type.
    let out = inject(
        &pod()
            .ann(
                "agent-json-patch",
                r#"[{"op":"replace","path":"/resources/limits/memory","value":"1024Mi"},{"op":"replace","path":"/resources/requests/cpu","value":" 2 "},{"op":"add","path":"/resources/limits/ephemeral-storage","value":1000}]"#,
            )
            .build(),
    )
    .unwrap();
    let resources = &out.container("vault-agent")["resources"];
    assert_eq!(resources["limits"]["memory"], "1Gi");
    assert_eq!(resources["requests"]["cpu"], "2");
    assert_eq!(resources["limits"]["ephemeral-storage"], "1k");
}

#[test]
fn json_patch_can_target_the_always_present_sidecar_lifecycle() {
    let out = inject(
        &pod()
            .ann("agent-json-patch", r#"[{"op":"add","path":"/lifecycle/postStart","value":{"exec":{"command":["true"]}}}]"#)
            .build(),
    )
    .unwrap();
    assert_eq!(
        out.container("vault-agent")["lifecycle"]["postStart"]["exec"]["command"][0],
        "true"
    );
}

// ---- validation phase ----

#[test]
fn validation_messages_keep_upstreams_wording() {
    let msg = refusal(&pod().without("role").build());
    assert!(
        msg.starts_with("error validating agent configuration: no Vault role found"),
        "{msg}"
    );
    inject(&pod().without("role").ann("auth-config-role", "r").build()).unwrap();
    inject(&pod().without("role").ann("auth-type", "approle").build()).unwrap();
    assert!(
        refusal(&pod().ann("agent-image", "").build())
            .starts_with("error validating agent configuration: no Vault image found")
    );
    assert!(
        refusal(&pod().ann("auth-type", "").build())
            .starts_with("error validating agent configuration: no Vault Auth Type found")
    );
    assert!(
        refusal(&pod().ann("auth-path", "").build())
            .starts_with("error validating agent configuration: no Vault Auth Path found")
    );
    assert!(
        refusal(&pod().ann("service", "").build())
            .starts_with("error validating agent configuration: no Vault address found")
    );
    assert!(
        refusal(&pod().ann("agent-request-namespace", "").build())
            .starts_with("error validating agent configuration: namespace missing from request")
    );
}

#[test]
fn configmap_mode_skips_the_auth_checks() {
    let out = inject(
        &pod()
            .without("role")
            .ann("service", "")
            .ann("auth-path", "")
            .ann("agent-configmap", "cfg")
            .build(),
    )
    .unwrap();
    let sidecar = out.container("vault-agent");
    assert_eq!(
        sidecar["args"][0],
        "touch /home/vault/.vault-token && vault agent -config=/vault/configs/config.hcl"
    );
    assert_eq!(
        out.container("vault-agent-init")["args"][0],
        "touch /home/vault/.vault-token && vault agent -config=/vault/configs/config-init.hcl"
    );
    assert!(env_value(sidecar, "VAULT_CONFIG").is_none());
    assert_eq!(env_value(sidecar, "VAULT_SKIP_VERIFY"), Some("false"));
    assert!(out.volume_names().contains(&"vault-config".to_owned()));
    assert!(mount_names(sidecar).contains(&"vault-config".to_owned()));
}

#[test]
fn configmap_mode_passes_connection_settings_as_env() {
    let out = inject(
        &pod()
            .ann("agent-configmap", "cfg")
            .ann("ca-cert", "/ca.pem")
            .ann("ca-key", "/ca-dir")
            .ann("client-cert", "/c.pem")
            .ann("client-key", "/k.pem")
            .ann("tls-skip-verify", "true")
            .ann("tls-server-name", "vault")
            .ann("tls-secret", "vault-tls")
            .build(),
    )
    .unwrap();
    assert_eq!(
        env_names(out.container("vault-agent")),
        [
            "NAMESPACE",
            "HOST_IP",
            "POD_IP",
            "VAULT_LOG_LEVEL",
            "VAULT_LOG_FORMAT",
            "VAULT_ADDR",
            "VAULT_CACERT",
            "VAULT_CAPATH",
            "VAULT_CLIENT_CERT",
            "VAULT_CLIENT_KEY",
            "VAULT_SKIP_VERIFY",
            "VAULT_TLS_SERVER_NAME"
        ]
    );
}

// ---- service account discovery ----

#[test]
fn service_account_discovery_follows_upstream() {
    let no_mount = pod()
        .set("/spec/containers/0/volumeMounts", json!([]))
        .build();
    assert!(refusal(&no_mount).starts_with(
        "error creating new agent sidecar: failed to find service account volume mount"
    ));
    assert!(refusal(&pod().ann("agent-service-account-token-volume-name", "projected-token").build())
        .starts_with("error creating new agent sidecar: failed to find service account volume \"projected-token\""));
    let mounted_missing = pod()
        .ann("agent-service-account-token-volume-name", "missing")
        .set(
            "/spec/containers/0/volumeMounts",
            json!([{"name": "missing", "mountPath": "/x"}]),
        )
        .build();
    assert_eq!(
        refusal(&mounted_missing),
        "error creating new agent sidecar: failed to find volume \"missing\" in Pod \"test\" volumes"
    );
    let not_projected = pod()
        .ann("agent-service-account-token-volume-name", "plain")
        .set("/spec/volumes", json!([{"name": "plain", "emptyDir": {}}]))
        .build();
    assert_eq!(
        refusal(&not_projected),
        "error creating new agent sidecar: failed to find tokenPath for projected volume \"plain\""
    );
}

#[test]
fn a_named_projected_token_volume_sets_mount_and_token_path() {
    let volumes = json!([{"name": "vault-token", "projected": {"sources": [{"serviceAccountToken": {"path": "vault-token", "audience": "vault"}}]}}]);
    let mounted = pod()
        .ann("agent-service-account-token-volume-name", "vault-token")
        .set("/spec/volumes", volumes.clone())
        .set(
            "/spec/containers/0/volumeMounts",
            json!([{"name": "vault-token", "mountPath": "/var/run/secrets/vault"}]),
        )
        .build();
    let out = inject(&mounted).unwrap();
    assert_eq!(
        out.config("vault-agent")["auto_auth"]["method"]["config"]["token_path"],
        "/var/run/secrets/vault/vault-token"
    );
    let unmounted = pod()
        .ann("agent-service-account-token-volume-name", "vault-token")
        .set("/spec/volumes", volumes)
        .set("/spec/containers/0/volumeMounts", json!([]))
        .build();
    let out = inject(&unmounted).unwrap();
    assert_eq!(
        out.config("vault-agent")["auto_auth"]["method"]["config"]["token_path"],
        "/var/run/secrets/vault.hashicorp.com/serviceaccount/vault-token"
    );
    assert_eq!(
        out.container("vault-agent")["volumeMounts"][0],
        json!({"name": "vault-token", "mountPath": "/var/run/secrets/vault.hashicorp.com/serviceaccount", "readOnly": true})
    );
}

// ---- secrets ----

#[test]
fn secret_names_are_lowercased_unless_case_is_preserved() {
    let r = parsed(
        &pod()
            .ann("agent-inject-secret-FOOBAR", "db/creds/x")
            .build(),
    );
    assert_eq!(r.secrets[0].name, "foobar");
    let r = parsed(
        &pod()
            .ann("agent-inject-secret-FOOBAR", "x")
            .ann("preserve-secret-case", "true")
            .build(),
    );
    assert_eq!(r.secrets[0].name, "FOOBAR");
    let r = parsed(
        &pod()
            .ann("agent-inject-secret-FOO_X", "x")
            .ann("preserve-secret-case-FOO_X", "true")
            .build(),
    );
    assert_eq!(r.secrets[0].name, "FOO_X");
    let r = parsed(
        &pod()
            .ann("agent-inject-secret-Foo", "x")
            .ann("preserve-secret-case", "bogus")
            .build(),
    );
    assert_eq!(r.secrets[0].name, "foo");
}

#[test]
fn secret_discovery_matches_upstream_edge_cases() {
    let r = parsed(
        &pod()
            .ann("agent-inject-secret-foobar-2_3", "a")
            .ann("agent-inject-secret-server.crt", "b")
            .ann("agent-inject-secret", "bare")
            .ann("agent-inject-secret-", "empty name")
            .ann("agent-inject-templat-typo", "x")
            .ann("agent-inject-TEMPLATE-upper", "x")
            .ann("agent-inject-template-blank", "  ")
            .build(),
    );
    let names: Vec<_> = r.secrets.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["foobar-2_3", "server.crt"]);
    assert_eq!(r.secrets[1].path, "b");
}

#[test]
fn templates_and_template_files_declare_secrets_of_their_own() {
    let r = parsed(
        &pod()
            .ann("agent-inject-template-only", "x")
            .ann("agent-inject-template-file-cfg", "/etc/t.tmpl")
            .ann("agent-inject-secret-both", "p")
            .ann("agent-inject-template-both", "inline")
            .ann("agent-inject-template-file-both", "/ignored")
            .build(),
    );
    let by = |n: &str| r.secrets.iter().find(|s| s.name == n).unwrap();
    assert_eq!(
        (by("only").path.as_str(), by("only").template.as_str()),
        ("", "x")
    );
    assert_eq!(by("cfg").template_file, "/etc/t.tmpl");
    assert_eq!(by("both").template_file, "");
    assert_eq!(by("both").template, "inline");
}

#[test]
fn per_secret_keys_attach_by_the_raw_name() {
    let r = parsed(
        &pod()
            .ann("agent-inject-secret-DB", "database/creds/app")
            .ann("agent-inject-file-DB", "conf/db.env")
            .ann("agent-inject-perms-db", "0600")
            .ann("secret-volume-path-DB", "/etc/app")
            .build(),
    );
    assert_eq!(r.secrets.len(), 1);
    assert_eq!(r.secrets[0].name, "db");
    assert_eq!(r.secrets[0].file, "conf/db.env");
    assert_eq!(r.secrets[0].perms, "");
    assert_eq!(r.secrets[0].mount_path, "/etc/app");
}

#[test]
fn error_on_missing_key_is_a_bool_per_secret() {
    let out = inject(
        &pod()
            .ann("agent-inject-secret-a", "p")
            .ann("error-on-missing-key-a", "True")
            .build(),
    )
    .unwrap();
    assert_eq!(
        out.config("vault-agent")["template"][0]["error_on_missing_key"],
        true
    );
    let out = inject(
        &pod()
            .ann("agent-inject-secret-a", "p")
            .ann("error-on-missing-key-a", "false")
            .build(),
    )
    .unwrap();
    assert!(
        out.config("vault-agent")["template"][0]
            .get("error_on_missing_key")
            .is_none()
    );
    let msg = refusal(
        &pod()
            .ann("agent-inject-secret-a", "p")
            .ann("error-on-missing-key-a", "unknown")
            .build(),
    );
    assert!(msg.contains("parsing \"unknown\": invalid syntax (annotation vault.hashicorp.com/error-on-missing-key-a)"), "{msg}");
}

#[test]
fn destinations_follow_go_path_rules() {
    let dest = |p: support::PodBuilder| {
        inject(&p.build()).unwrap().config("vault-agent")["template"][0]["destination"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let s = || pod().ann("agent-inject-secret-foo", "p");
    assert_eq!(dest(s()), "/vault/secrets/foo");
    assert_eq!(
        dest(s().ann("agent-inject-file-foo", "nested/foofile")),
        "/vault/secrets/nested/foofile"
    );
    assert_eq!(
        dest(s().ann("agent-inject-file-foo", "/special/volume/foofile")),
        "/vault/secrets/special/volume/foofile"
    );
    assert_eq!(
        dest(
            s().ann("secret-volume-path", "/new/mount/path")
                .ann("agent-inject-file-foo", "/special/foofile")
        ),
        "/new/mount/path/special/foofile"
    );
    assert_eq!(
        dest(
            s().ann("secret-volume-path-foo", "/new/mount/path")
                .ann("agent-inject-file-foo", "nested/foofile")
        ),
        "/new/mount/path/nested/foofile"
    );
    assert_eq!(
        dest(s().ann("agent-inject-file-foo", "../../etc/x")),
        "/etc/x"
    );
    assert_eq!(dest(s().ann("secret-volume-path", "/a/")), "/a//foo");
}

#[test]
fn default_templates_and_delimiters() {
    let out = inject(&pod().ann("agent-inject-secret-foo", "db/creds/bar").build()).unwrap();
    let t = &out.config("vault-agent")["template"][0];
    assert_eq!(
        t["contents"],
        "{{ with secret \"db/creds/bar\" }}{{ range $k, $v := .Data }}{{ $k }}: {{ $v }}\n{{ end }}{{ end }}"
    );
    assert_eq!(
        (t["left_delimiter"].as_str(), t["right_delimiter"].as_str()),
        (Some("{{"), Some("}}"))
    );
    for v in ["json", "JSON"] {
        let out = inject(
            &pod()
                .ann("agent-inject-secret-foo", "db/creds/bar")
                .ann("agent-inject-default-template", v)
                .build(),
        )
        .unwrap();
        assert_eq!(
            out.config("vault-agent")["template"][0]["contents"],
            "{{ with secret \"db/creds/bar\" }}{{ .Data | toJSON }}\n{{ end }}"
        );
    }
    for bad in ["foobar", "jsn", ""] {
        let msg = refusal(&pod().ann("agent-inject-default-template", bad).build());
        assert!(
            msg.starts_with(&format!(
                "error creating new agent sidecar: invalid default template type: {}",
                bad.to_lowercase()
            )),
            "{msg}"
        );
    }
    let out = inject(
        &pod()
            .ann("agent-inject-template-x", "[[ .Data ]]")
            .ann("agent-template-left-delim-x", "[[")
            .ann("agent-template-right-delim-x", "]]")
            .build(),
    )
    .unwrap();
    let t = &out.config("vault-agent")["template"][0];
    assert_eq!(
        (t["left_delimiter"].as_str(), t["right_delimiter"].as_str()),
        (Some("[["), Some("]]"))
    );
}

#[test]
fn extra_secret_paths_get_numbered_volumes_in_secret_order() {
    let out = inject(
        &pod()
            .ann("secret-volume-path", "/etc/default_path")
            .ann("agent-inject-secret-secret1", "p1")
            .ann("secret-volume-path-secret1", "/etc/container_environment")
            .ann("agent-inject-secret-secret2", "p2")
            .ann("secret-volume-path-secret2", "/etc/default_path")
            .ann("agent-inject-secret-secret3", "p3")
            .build(),
    )
    .unwrap();
    assert_eq!(
        out.volume_names(),
        [
            "kube-api-access-abcde",
            "home-init",
            "home-sidecar",
            "vault-secrets",
            "vault-secrets-custom-0"
        ]
    );
    let app = &out.pod["spec"]["containers"][0]["volumeMounts"];
    assert_eq!(
        app[1],
        json!({"name": "vault-secrets", "mountPath": "/etc/default_path"})
    );
    assert_eq!(
        app[2],
        json!({"name": "vault-secrets-custom-0", "mountPath": "/etc/container_environment"})
    );
}

// ---- auth config, telemetry ----

#[test]
fn auth_config_entries_are_strings_and_role_wins() {
    let out = inject(
        &pod()
            .ann("auth-config-role", "ignored")
            .ann("auth-config-name", "foo")
            .ann("auth-config-ca-cert", "bar")
            .ann("auth-config-remove_secret_id_file_after_reading", "false")
            .ann("auth-config-credential-poll-interval", "1")
            .build(),
    )
    .unwrap();
    assert_eq!(
        out.config("vault-agent")["auto_auth"]["method"]["config"],
        json!({"ca_cert": "bar", "credential_poll_interval": "1", "name": "foo", "remove_secret_id_file_after_reading": "false", "role": "app", "token_path": "/var/run/secrets/kubernetes.io/serviceaccount/token"})
    );
    let out = inject(&pod().ann("auth-config-token-path", "/custom/token").build()).unwrap();
    assert_eq!(
        out.config("vault-agent")["auto_auth"]["method"]["config"]["token_path"],
        "/custom/token"
    );
}

/// `a-b` and `a_b` name the same param; the key that sorts last (`_` after `-`) wins, whatever
/// the order the working copy of the annotations is walked in. Upstream walks a Go map, so its
/// pick is random; ours is fixed, and held here over many distinct pods (a hash map's order
/// differs from one map to the next).
#[test]
fn an_auth_config_param_named_twice_takes_the_key_that_sorts_last() {
    for i in 0..64 {
        let out = inject(
            &pod()
                .ann("auth-config-poll-interval", "dash")
                .ann("auth-config-poll_interval", "underscore")
                .ann(&format!("auth-config-x{i}"), "y")
                .build(),
        )
        .unwrap();
        assert_eq!(
            out.config("vault-agent")["auto_auth"]["method"]["config"]["poll_interval"],
            "underscore",
            "pod {i}"
        );
    }
}

#[test]
fn telemetry_values_are_json_decoded_into_the_fixed_schema() {
    let out = inject(
        &pod()
            .ann("agent-telemetry-prometheus_retention_time", "30s")
            .ann("agent-telemetry-disable_hostname", "true")
            .ann("agent-telemetry-maximum_gauge_cardinality", "3")
            .ann(
                "agent-telemetry-prefix_filter",
                r#"["+vault.token", "-vault.expire"]"#,
            )
            .ann("agent-telemetry-unknown_thing", "x")
            .build(),
    )
    .unwrap();
    assert_eq!(
        out.raw_config("vault-agent")
            .split("\"telemetry\":")
            .nth(1)
            .unwrap(),
        r#"{"maximum_gauge_cardinality":3,"disable_hostname":true,"prefix_filter":["+vault.token","-vault.expire"],"prometheus_retention_time":"30s"}}"#
    );
}

#[test]
fn telemetry_type_mismatch_drops_the_stanza_and_false_alone_gives_empty() {
    let out = inject(
        &pod()
            .ann("agent-telemetry-prometheus_retention_time", "10")
            .build(),
    )
    .unwrap();
    assert!(out.config("vault-agent").get("telemetry").is_none());
    let out = inject(
        &pod()
            .ann("agent-telemetry-disable_hostname", "false")
            .build(),
    )
    .unwrap();
    assert_eq!(out.config("vault-agent")["telemetry"], json!({}));
    assert_eq!(out.config("vault-agent-init")["telemetry"], json!({}));
    let out = inject(&pod().build()).unwrap();
    assert!(out.config("vault-agent").get("telemetry").is_none());
}

// ---- containers, ordering ----

#[test]
fn inject_containers_selects_app_containers_but_not_init_containers() {
    let p = || pod().container("b").container("c").init_container("setup");
    let out = inject(&p().build()).unwrap();
    assert_eq!(
        out.paths(),
        [
            "/spec/volumes/-",
            "/spec/volumes/-",
            "/spec/volumes/-",
            "/spec/containers/0/volumeMounts/-",
            "/spec/containers/1/volumeMounts",
            "/spec/containers/2/volumeMounts",
            "/spec/initContainers/-",
            "/spec/initContainers/0/volumeMounts",
            "/spec/containers/-",
            "/metadata/annotations/vault.hashicorp.com~1agent-inject-status"
        ]
    );
    let out = inject(&p().ann("agent-inject-containers", "b").build()).unwrap();
    assert_eq!(
        out.paths()[3..5],
        ["/spec/containers/1/volumeMounts", "/spec/initContainers/-"]
    );
    let out = inject(&p().ann("agent-inject-containers", "").build()).unwrap();
    assert_eq!(
        out.paths()[3..5],
        [
            "/spec/initContainers/-",
            "/spec/initContainers/0/volumeMounts"
        ]
    );
    let out = inject(&p().ann("agent-inject-containers", "app, b").build()).unwrap();
    assert_eq!(
        out.paths()[3..5],
        [
            "/spec/containers/0/volumeMounts/-",
            "/spec/initContainers/-"
        ]
    );
}

#[test]
fn init_first_puts_the_agent_first_and_keeps_user_init_containers_intact() {
    let mut p = pod()
        .init_container("setup")
        .ann("agent-init-first", "true")
        .build();
    p["spec"]["initContainers"][0]["someFutureField"] = json!({"kept": true});
    let out = inject(&p).unwrap();
    assert_eq!(out.init_names(), ["vault-agent-init", "setup"]);
    assert_eq!(
        out.pod["spec"]["initContainers"][1]["someFutureField"],
        json!({"kept": true})
    );
    assert!(
        out.paths()
            .contains(&"/spec/initContainers/1/volumeMounts".to_owned())
    );
    let out = inject(&pod().ann("agent-init-first", "true").build()).unwrap();
    assert_eq!(out.init_names(), ["vault-agent-init"]);
}

/// A deliberate difference: upstream also gives an init agent renamed by
/// `agent-init-json-patch` the user init containers' `/vault/secrets` mount when
/// `agent-init-first` is set, so the agent has that mount path twice and the API server refuses
/// the pod. Here the injected agent keeps its one mount, renamed or not.
#[test]
fn init_first_with_a_renamed_init_agent_mounts_the_secrets_once() {
    for with_user_init in [false, true] {
        let mut p = pod().ann("agent-init-first", "true").ann(
            "agent-init-json-patch",
            r#"[{"op":"replace","path":"/name","value":"secrets-first"}]"#,
        );
        if with_user_init {
            p = p.init_container("setup");
        }
        let out = inject(&p.build()).unwrap();
        let agent = out.container("secrets-first");
        let paths: Vec<&str> = agent["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["mountPath"].as_str().unwrap())
            .collect();
        assert_eq!(
            paths.iter().filter(|p| **p == "/vault/secrets").count(),
            1,
            "{paths:?}"
        );
        let unique: std::collections::BTreeSet<_> = paths.iter().collect();
        assert_eq!(unique.len(), paths.len(), "mount paths repeat: {paths:?}");
        assert_eq!(out.init_names()[0], "secrets-first");
        if with_user_init {
            assert!(mount_names(out.container("setup")).contains(&"vault-secrets".to_owned()));
        }
    }
}

#[test]
fn pre_populate_flags_choose_the_agent_containers() {
    let out = inject(
        &pod()
            .ann("agent-pre-populate", "false")
            .init_container("setup")
            .build(),
    )
    .unwrap();
    assert_eq!(out.init_names(), ["setup"]);
    assert!(
        out.pod["spec"]["initContainers"][0]
            .get("volumeMounts")
            .is_none()
    );
    assert_eq!(out.container_names(), ["app", "vault-agent"]);
    assert!(!out.volume_names().contains(&"home-init".to_owned()));
    let out = inject(&pod().ann("agent-pre-populate-only", "true").build()).unwrap();
    assert_eq!(out.container_names(), ["app"]);
    assert_eq!(out.init_names(), ["vault-agent-init"]);
    assert!(!out.volume_names().contains(&"home-sidecar".to_owned()));
    let out = inject(
        &pod()
            .ann("agent-pre-populate", "false")
            .ann("agent-pre-populate-only", "true")
            .build(),
    )
    .unwrap();
    assert_eq!(out.container_names(), ["app"]);
    assert!(out.init_names().is_empty());
    assert_eq!(
        out.volume_names(),
        ["kube-api-access-abcde", "vault-secrets"]
    );
}

#[test]
fn share_process_namespace_is_applied_only_with_the_init_container() {
    let out = inject(&pod().ann("agent-share-process-namespace", "true").build()).unwrap();
    assert_eq!(out.pod["spec"]["shareProcessNamespace"], true);
    let out = inject(
        &pod()
            .ann("agent-share-process-namespace", "false")
            .set("/spec/containers/0/image", json!("x"))
            .build(),
    )
    .unwrap();
    assert_eq!(out.pod["spec"]["shareProcessNamespace"], false);
    let out = inject(
        &pod()
            .ann("agent-share-process-namespace", "true")
            .ann("agent-pre-populate", "false")
            .build(),
    )
    .unwrap();
    assert!(out.pod["spec"].get("shareProcessNamespace").is_none());
    let mut p = pod().ann("agent-share-process-namespace", "true").build();
    p["spec"]["shareProcessNamespace"] = json!(false);
    assert_eq!(
        refusal(&p),
        "error creating new agent sidecar: shareProcessNamespace explicitly disabled on the pod, refusing to enable it"
    );
    let msg = refusal(&pod().ann("agent-share-process-namespace", "maybe").build());
    assert!(msg.starts_with("error creating new agent sidecar: invalid value maybe for annotation \"vault.hashicorp.com/agent-share-process-namespace\", err="), "{msg}");
}

// ---- containers' contents ----

#[test]
fn mount_order_differs_between_init_and_sidecar() {
    let out = inject(
        &pod()
            .ann("agent-extra-secret", "extra")
            .ann("tls-secret", "tls")
            .ann("agent-cache-enable", "true")
            .ann("agent-inject-secret-a", "p")
            .ann("secret-volume-path-a", "/other")
            .build(),
    )
    .unwrap();
    assert_eq!(
        mount_names(out.container("vault-agent-init")),
        [
            "home-init",
            "kube-api-access-abcde",
            "vault-secrets",
            "vault-secrets-custom-0",
            "extra-secrets",
            "vault-tls-secrets",
            "vault-agent-cache"
        ]
    );
    assert_eq!(
        mount_names(out.container("vault-agent")),
        [
            "kube-api-access-abcde",
            "home-sidecar",
            "vault-secrets",
            "vault-secrets-custom-0",
            "extra-secrets",
            "vault-tls-secrets",
            "vault-agent-cache"
        ]
    );
    assert_eq!(out.container("vault-agent")["lifecycle"], json!({}));
    assert!(out.container("vault-agent-init").get("lifecycle").is_none());
}

#[test]
fn copy_volume_mounts_copies_everything_but_service_account_mounts() {
    let p = pod()
        .container("donor")
        .set(
            "/spec/containers/1/volumeMounts",
            json!([
                {"name": "data", "mountPath": "/data", "subPath": "x", "readOnly": true},
                {"name": "sa", "mountPath": "/var/run/secrets/kubernetes.io/ServiceAccount"}
            ]),
        )
        .ann("agent-copy-volume-mounts", "donor")
        .build();
    let out = inject(&p).unwrap();
    let mounts = &out.container("vault-agent")["volumeMounts"];
    assert_eq!(
        mounts.as_array().unwrap().last().unwrap(),
        &json!({"name": "data", "mountPath": "/data", "subPath": "x", "readOnly": true})
    );
    assert!(!mount_names(out.container("vault-agent")).contains(&"sa".to_owned()));
    inject(&pod().ann("agent-copy-volume-mounts", "nobody").build()).unwrap();
}

#[test]
fn env_vars_appear_only_when_set_in_upstream_order() {
    let out = inject(&pod().build()).unwrap();
    assert_eq!(
        env_names(out.container("vault-agent")),
        [
            "NAMESPACE",
            "HOST_IP",
            "POD_IP",
            "VAULT_LOG_LEVEL",
            "VAULT_LOG_FORMAT",
            "VAULT_CONFIG"
        ]
    );
    let out = inject(
        &pod()
            .ann("go-max-procs", "2")
            .ann("client-timeout", "30s")
            .ann("client-max-retries", "0")
            .ann("proxy-address", "http://proxy:3128")
            .ann("log-level", "")
            .build(),
    )
    .unwrap();
    assert_eq!(
        env_names(out.container("vault-agent")),
        [
            "NAMESPACE",
            "HOST_IP",
            "POD_IP",
            "GOMAXPROCS",
            "VAULT_CLIENT_TIMEOUT",
            "VAULT_MAX_RETRIES",
            "VAULT_LOG_FORMAT",
            "HTTPS_PROXY",
            "VAULT_CONFIG"
        ]
    );
    let ns = &out.container("vault-agent")["env"][0];
    assert_eq!(
        ns,
        &json!({"name": "NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}})
    );
}

#[test]
fn vault_cacert_bytes_are_decoded_when_base64() {
    let mut d = defaults();
    d.ca_cert_bytes = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t\n".to_owned();
    let out = inject_with(&pod().build(), &d).unwrap();
    assert_eq!(
        env_value(out.container("vault-agent"), "VAULT_CACERT_BYTES"),
        Some("-----BEGIN CERTIFICATE-----")
    );
    d.ca_cert_bytes = "-----BEGIN CERTIFICATE-----\nabc".to_owned();
    let out = inject_with(&pod().build(), &d).unwrap();
    assert_eq!(
        env_value(out.container("vault-agent"), "VAULT_CACERT_BYTES"),
        Some("-----BEGIN CERTIFICATE-----\nabc")
    );
}

#[test]
fn irsa_copies_the_token_mount_and_aws_env_for_aws_auth_only() {
    let p = || {
        pod()
            .set("/spec/containers/0/volumeMounts", json!([
                {"name": "kube-api-access-abcde", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true},
                {"name": "aws-iam-token", "mountPath": "/var/run/secrets/eks.amazonaws.com/serviceaccount", "readOnly": true}
            ]))
            .set("/spec/containers/0/env", json!([
                {"name": "AWS_REGION", "value": "eu-west-1"},
                {"name": "AWS_ROLE_ARN", "value": "arn:aws:iam::1:role/x"},
                {"name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"},
                {"name": "AWS_DEFAULT_REGION", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
            ]))
    };
    let out = inject(&p().build()).unwrap();
    assert!(env_value(out.container("vault-agent"), "AWS_ROLE_ARN").is_none());
    let out = inject(
        &p().ann("auth-type", "aws")
            .ann("auth-config-region", "us-east-1")
            .build(),
    )
    .unwrap();
    let sidecar = out.container("vault-agent");
    assert_eq!(
        mount_names(sidecar)[..3],
        ["kube-api-access-abcde", "home-sidecar", "aws-iam-token"]
    );
    assert_eq!(
        env_names(sidecar)[6..],
        [
            "AWS_ROLE_ARN",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_DEFAULT_REGION",
            "AWS_REGION",
            "AWS_REGION"
        ]
    );
    assert_eq!(env_value(sidecar, "AWS_DEFAULT_REGION"), Some(""));
}

#[test]
fn resources_default_to_the_injector_settings_and_empty_removes_them() {
    let out = inject(&pod().build()).unwrap();
    assert_eq!(
        out.container("vault-agent")["resources"],
        json!({"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "250m", "memory": "64Mi"}})
    );
    let out = inject(
        &pod()
            .ann("agent-limits-cpu", "")
            .ann("agent-limits-mem", "")
            .ann("agent-requests-cpu", "")
            .ann("agent-requests-mem", "")
            .build(),
    )
    .unwrap();
    assert_eq!(out.container("vault-agent")["resources"], json!({}));
    let out = inject(
        &pod()
            .ann("agent-limits-ephemeral", "1Gi")
            .ann("agent-requests-mem", "500M")
            .build(),
    )
    .unwrap();
    assert_eq!(
        out.container("vault-agent-init")["resources"]["limits"]["ephemeral-storage"],
        "1Gi"
    );
    assert_eq!(
        out.container("vault-agent-init")["resources"]["requests"]["memory"],
        "500M"
    );
}

#[test]
fn bad_quantities_are_refused_while_patching_and_name_the_annotation() {
    for (key, value) in [
        ("agent-limits-cpu", "500mi"),
        ("agent-limits-mem", "128mb"),
        ("agent-requests-mem", "128g"),
        ("agent-limits-mem", "128gi"),
    ] {
        let msg = refusal(&pod().ann(key, value).build());
        assert!(msg.starts_with("error creating patch for agent: "), "{msg}");
        assert!(
            msg.contains(&format!("vault.hashicorp.com/{key}: \"{value}\"")),
            "{msg}"
        );
    }
    assert_eq!(
        refusal(&pod().ann("agent-limits-cpu", "500mi").build()),
        "error creating patch for agent: unable to parse quantity's suffix (annotation vault.hashicorp.com/agent-limits-cpu: \"500mi\")"
    );
}

#[test]
fn security_context_matrix() {
    let sc = |p: support::PodBuilder, d: &AgentDefaults| {
        inject_with(&p.build(), d).unwrap().container("vault-agent")["securityContext"].clone()
    };
    let on = defaults();
    let mut off = defaults();
    off.set_security_context = false;
    let full = |uid: i64, gid: i64| {
        json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}, "readOnlyRootFilesystem": true,
               "runAsGroup": gid, "runAsNonRoot": uid != 0 && gid != 0, "runAsUser": uid})
    };
    assert_eq!(sc(pod(), &on), full(100, 1000));
    assert_eq!(
        sc(
            pod()
                .ann("agent-run-as-user", "0")
                .ann("agent-run-as-group", "0"),
            &on
        ),
        full(0, 0)
    );
    assert_eq!(sc(pod().ann("agent-run-as-group", "0"), &on), full(100, 0));
    assert_eq!(sc(pod(), &off), serde_json::Value::Null);
    assert_eq!(
        sc(pod().ann("agent-run-as-user", "100"), &off),
        full(100, 1000)
    );
    assert_eq!(
        sc(
            pod()
                .ann("agent-run-as-user", "100")
                .ann("agent-set-security-context", "false"),
            &on
        ),
        serde_json::Value::Null
    );
    let same = pod().ann("agent-run-as-same-user", "true").set(
        "/spec/containers/0/securityContext",
        json!({"runAsUser": 123456}),
    );
    assert_eq!(sc(same, &on), full(123456, 1000));
    let mut same_flag = defaults();
    same_flag.run_as_same_user = true;
    assert_eq!(
        sc(
            pod().set(
                "/spec/containers/0/securityContext",
                json!({"runAsUser": 7})
            ),
            &same_flag
        ),
        full(7, 1000)
    );
}

#[test]
fn run_as_same_user_needs_a_non_root_first_container() {
    let p = pod().ann("agent-run-as-same-user", "true");
    assert_eq!(
        refusal(&p.clone().build()),
        "error creating new agent sidecar: No SecurityContext found for Container 0"
    );
    assert_eq!(
        refusal(
            &p.clone()
                .set("/spec/containers/0/securityContext", json!({}))
                .build()
        ),
        "error creating new agent sidecar: RunAsUser is nil for Container 0's SecurityContext"
    );
    assert!(
        refusal(
            &p.set(
                "/spec/containers/0/securityContext",
                json!({"runAsUser": 0})
            )
            .build()
        )
        .starts_with("error creating new agent sidecar: container not allowed to run as root")
    );
}

#[test]
fn revoke_on_shutdown_adds_a_prestop_hook_from_annotation_or_flag() {
    let hook = |p: support::PodBuilder, flag: bool| {
        let mut d = defaults();
        d.revoke_on_shutdown = flag;
        inject_with(&p.build(), &d)
            .unwrap()
            .container("vault-agent")["lifecycle"]["preStop"]
            .clone()
    };
    for (ann, flag, want) in [
        (None, false, false),
        (None, true, true),
        (Some("true"), false, true),
        (Some("false"), true, false),
        (Some("true"), true, true),
        (Some("false"), false, false),
    ] {
        let p = match ann {
            Some(v) => pod().ann("agent-revoke-on-shutdown", v),
            None => pod(),
        };
        assert_eq!(!hook(p, flag).is_null(), want, "{ann:?} {flag}");
    }
    let h = hook(
        pod()
            .ann("agent-revoke-on-shutdown", "true")
            .ann("agent-revoke-grace", "7")
            .ann("ca-cert", "/ca")
            .ann("client-key", "/k")
            .ann("service", "http://foobar:1234"),
        false,
    );
    assert_eq!(
        h["exec"]["command"],
        json!([
            "/bin/sh",
            "-c",
            "/bin/sleep 7 && /bin/vault token revoke -address=http://foobar:1234 -ca-cert=/ca -client-key=/k -self"
        ])
    );
}

#[test]
fn vault_namespace_comes_from_the_annotation_or_the_injector() {
    let mut d = defaults();
    d.vault_namespace = "team".to_owned();
    let ns = |p: support::PodBuilder| {
        inject_with(&p.build(), &d).unwrap().config("vault-agent")["auto_auth"]["method"]["namespace"].clone()
    };
    assert_eq!(ns(pod()), "team");
    assert_eq!(ns(pod().ann("namespace", "fooBar")), "fooBar");
    assert_eq!(ns(pod().ann("namespace", "")), serde_json::Value::Null);
}

#[test]
fn injector_defaults_flow_into_the_pod() {
    let settings = Settings::resolve(
        &[
            ("vault-address", "http://foobar:1234"),
            ("vault-image", "my/vault:1"),
            ("proxy-address", "http://p"),
            ("revoke-on-shutdown", "true"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect(),
        &|_| None,
    )
    .unwrap();
    let out = inject_with(&pod().build(), &settings.agent).unwrap();
    let sidecar = out.container("vault-agent");
    assert_eq!(sidecar["image"], "my/vault:1");
    assert_eq!(env_value(sidecar, "HTTPS_PROXY"), Some("http://p"));
    assert_eq!(
        out.config("vault-agent")["vault"]["address"],
        "http://foobar:1234"
    );
    assert!(!sidecar["lifecycle"]["preStop"].is_null());
}

#[test]
fn the_lease_renewal_threshold_setting_is_ignored_as_upstream() {
    let mut d = defaults();
    d.lease_renewal_threshold = 0.5;
    let out = inject_with(&pod().build(), &d).unwrap();
    assert_eq!(
        out.config("vault-agent")["template_config"],
        json!({"exit_on_retry_failure": true})
    );
}

#[test]
fn not_a_pod_is_refused_with_the_decoder_message() {
    let mut p = pod().build();
    p["spec"]["containers"] = json!("nope");
    let msg = refusal(&p);
    assert!(!msg.starts_with("error"), "{msg}");
    assert!(msg.contains("invalid type"), "{msg}");
}

// ---- beyond upstream: native sidecar ----

fn with_settings(native: bool, seccomp: bool) -> AgentDefaults {
    let mut d = defaults();
    d.native_sidecar = native;
    d.seccomp_runtime_default = seccomp;
    d
}

fn probe_command(container: &serde_json::Value) -> Option<String> {
    container["startupProbe"]["exec"]["command"]
        .as_array()
        .map(|c| {
            c.iter()
                .map(|a| a.as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
                .join(" ")
        })
}

#[test]
fn native_sidecar_is_one_restartable_init_container_with_a_startup_probe() {
    let out = inject(
        &pod()
            .ann("agent-native-sidecar", "true")
            .ann("agent-inject-secret-db", "database/creds/app")
            .ann("agent-inject-template-cfg", "{{ .Data }}")
            .ann("agent-inject-file-cfg", "conf/app.cfg")
            .build(),
    )
    .unwrap();
    assert_eq!(out.init_names(), ["vault-agent"]);
    assert_eq!(out.container_names(), ["app"]);
    assert!(!out.volume_names().contains(&"home-init".to_owned()));
    let agent = out.container("vault-agent");
    assert_eq!(agent["restartPolicy"], "Always");
    assert_eq!(
        probe_command(agent).unwrap(),
        "/bin/sh -c test -e '/vault/secrets/conf/app.cfg' && test -e '/vault/secrets/db'"
    );
    assert_eq!(agent["startupProbe"]["periodSeconds"], 1);
    assert_eq!(agent["startupProbe"]["failureThreshold"], 300);
    // The sidecar's configuration and mounts: it keeps running, and logs in once.
    let config = out.config("vault-agent");
    assert_eq!(config["exit_after_auth"], false);
    assert_eq!(
        mount_names(agent)[..2],
        ["kube-api-access-abcde", "home-sidecar"]
    );
    // The preStop lifecycle of the sidecar is kept (allowed on restartable init containers).
    assert!(agent.get("lifecycle").is_some());
    serde_json::from_value::<k8s_openapi::api::core::v1::Pod>(out.pod.clone()).unwrap();
}

#[test]
fn the_native_sidecar_setting_is_overridden_by_the_annotation() {
    let native = with_settings(true, false);
    let out = inject_with(&pod().build(), &native).unwrap();
    assert_eq!(out.init_names(), ["vault-agent"]);
    assert_eq!(out.container_names(), ["app"]);
    let out = inject_with(&pod().ann("agent-native-sidecar", "false").build(), &native).unwrap();
    assert_eq!(out.init_names(), ["vault-agent-init"]);
    assert_eq!(out.container_names(), ["app", "vault-agent"]);
    // Off by default: the drop-in shape.
    let out = inject(&pod().build()).unwrap();
    assert_eq!(out.init_names(), ["vault-agent-init"]);
    assert!(out.container("vault-agent").get("restartPolicy").is_none());
    let err = vault_injector::admission::mutate(
        &pod().ann("agent-native-sidecar", "sometimes").build(),
        "apps",
        &native,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "error creating new agent sidecar: cannot parse '' as bool: strconv.ParseBool: parsing \"sometimes\": invalid syntax (annotation vault.hashicorp.com/agent-native-sidecar)"
    );
}

#[test]
fn native_sidecar_without_templates_waits_for_the_login() {
    let out = inject(&pod().ann("agent-native-sidecar", "true").build()).unwrap();
    assert_eq!(
        probe_command(out.container("vault-agent")).unwrap(),
        "/bin/sh -c test -e '/home/vault/.vault-token'"
    );
}

#[test]
fn native_sidecar_without_pre_populate_does_not_hold_the_app_back() {
    let out = inject(
        &pod()
            .ann("agent-native-sidecar", "true")
            .ann("agent-pre-populate", "false")
            .ann("agent-inject-secret-db", "database/creds/app")
            .init_container("setup")
            .build(),
    )
    .unwrap();
    assert_eq!(out.init_names(), ["setup", "vault-agent"]);
    let agent = out.container("vault-agent");
    assert_eq!(agent["restartPolicy"], "Always");
    assert!(agent.get("startupProbe").is_none());
}

#[test]
fn native_sidecar_follows_init_first_and_mounts_secrets_in_user_init_containers() {
    let p = pod()
        .ann("agent-native-sidecar", "true")
        .init_container("setup");
    let out = inject(&p.clone().build()).unwrap();
    assert_eq!(out.init_names(), ["setup", "vault-agent"]);
    assert_eq!(mount_names(out.container("setup")), ["vault-secrets"]);
    let out = inject(&p.ann("agent-init-first", "true").build()).unwrap();
    assert_eq!(out.init_names(), ["vault-agent", "setup"]);
    assert_eq!(mount_names(out.container("setup")), ["vault-secrets"]);
}

#[test]
fn pre_populate_only_wins_over_native_sidecar() {
    for d in [with_settings(true, false), defaults()] {
        let out = inject_with(
            &pod()
                .ann("agent-native-sidecar", "true")
                .ann("agent-pre-populate-only", "true")
                .build(),
            &d,
        )
        .unwrap();
        assert_eq!(out.init_names(), ["vault-agent-init"]);
        assert_eq!(out.container_names(), ["app"]);
        assert!(
            out.container("vault-agent-init")
                .get("restartPolicy")
                .is_none()
        );
        assert_eq!(out.config("vault-agent-init")["exit_after_auth"], true);
    }
}

#[test]
fn native_sidecar_takes_the_sidecar_json_patch_and_no_persistent_cache() {
    let out = inject(
        &pod()
            .ann("agent-native-sidecar", "true")
            .ann("agent-cache-enable", "true")
            .ann(
                "agent-json-patch",
                r#"[{"op": "replace", "path": "/startupProbe/periodSeconds", "value": 2}]"#,
            )
            .ann(
                "agent-init-json-patch",
                r#"[{"op": "replace", "path": "/name", "value": "unused"}]"#,
            )
            .build(),
    )
    .unwrap();
    let agent = out.container("vault-agent");
    assert_eq!(agent["startupProbe"]["periodSeconds"], 2);
    assert!(!out.volume_names().contains(&"vault-agent-cache".to_owned()));
    let config = out.config("vault-agent");
    assert!(config["cache"].get("persist").is_none(), "{config}");
    assert_eq!(config["listener"][0]["address"], "127.0.0.1:8200");
}

#[test]
fn native_sidecar_in_configmap_mode_has_no_probe() {
    let out = inject(
        &pod()
            .ann("agent-native-sidecar", "true")
            .ann("agent-configmap", "agent-config")
            .build(),
    )
    .unwrap();
    let agent = out.container("vault-agent");
    assert_eq!(agent["restartPolicy"], "Always");
    assert!(agent.get("startupProbe").is_none());
    assert_eq!(
        agent["args"][0],
        "touch /home/vault/.vault-token && vault agent -config=/vault/configs/config.hcl"
    );
}

// ---- beyond upstream: restricted Pod Security ----

#[test]
fn seccomp_runtime_default_is_added_to_upstreams_security_context() {
    let out = inject(&pod().ann("agent-seccomp-runtime-default", "true").build()).unwrap();
    for name in ["vault-agent-init", "vault-agent"] {
        let sc = &out.container(name)["securityContext"];
        assert_eq!(
            sc["seccompProfile"],
            json!({"type": "RuntimeDefault"}),
            "{name}"
        );
        // The rest of what `restricted` asks of a container, already upstream's default.
        assert_eq!(sc["allowPrivilegeEscalation"], false);
        assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
        assert_eq!(sc["runAsNonRoot"], true);
        assert_eq!(sc["runAsUser"], 100);
    }
    let out = inject(&pod().build()).unwrap();
    assert!(
        out.container("vault-agent")["securityContext"]
            .get("seccompProfile")
            .is_none()
    );
}

#[test]
fn the_seccomp_setting_is_overridden_by_the_annotation() {
    let on = with_settings(false, true);
    let out = inject_with(&pod().build(), &on).unwrap();
    assert_eq!(
        out.container("vault-agent")["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let out = inject_with(
        &pod().ann("agent-seccomp-runtime-default", "0").build(),
        &on,
    )
    .unwrap();
    assert!(
        out.container("vault-agent")["securityContext"]
            .get("seccompProfile")
            .is_none()
    );
    let msg = refusal(&pod().ann("agent-seccomp-runtime-default", "on").build());
    assert_eq!(
        msg,
        "error creating new agent sidecar: cannot parse '' as bool: strconv.ParseBool: parsing \"on\": invalid syntax (annotation vault.hashicorp.com/agent-seccomp-runtime-default)"
    );
}

#[test]
fn seccomp_alone_gets_a_security_context_of_its_own() {
    let out = inject(
        &pod()
            .ann("agent-set-security-context", "false")
            .ann("agent-seccomp-runtime-default", "true")
            .build(),
    )
    .unwrap();
    for name in ["vault-agent-init", "vault-agent"] {
        assert_eq!(
            out.container(name)["securityContext"],
            json!({"seccompProfile": {"type": "RuntimeDefault"}}),
            "{name}"
        );
    }
}

// ---- beyond upstream: large agent configurations ----

/// `VAULT_CONFIG`, `VAULT_CONFIG_1`, ... of a container, in order.
fn config_chunks(container: &serde_json::Value) -> Vec<(String, String)> {
    container["env"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["name"].as_str().unwrap().starts_with("VAULT_CONFIG"))
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_owned(),
                e["value"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn many_templates(count: usize, size: usize) -> serde_json::Value {
    let mut p = pod();
    for i in 0..count {
        p = p.ann(
            &format!("agent-inject-template-t{i:03}"),
            &format!(
                "{{{{ with secret \"kv/data/t{i}\" }}}}{}{{{{ end }}}}",
                "x".repeat(size)
            ),
        );
    }
    p.build()
}

#[test]
fn a_config_that_fits_one_environment_string_is_not_split() {
    let out = inject(&many_templates(30, 3000)).unwrap();
    let chunks = config_chunks(out.container("vault-agent"));
    assert_eq!(chunks.len(), 1);
    assert!(chunks[0].1.len() > 100_000);
    assert_eq!(
        out.container("vault-agent")["args"][0],
        vault_injector::inject::DEFAULT_CONTAINER_ARG
    );
}

#[test]
fn a_config_over_128_kib_is_split_and_joined_in_order() {
    let out = inject(&many_templates(50, 3000)).unwrap();
    for name in ["vault-agent-init", "vault-agent"] {
        let c = out.container(name);
        let chunks = config_chunks(c);
        let names: Vec<_> = chunks.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["VAULT_CONFIG", "VAULT_CONFIG_1"], "{name}");
        for (n, v) in &chunks {
            // NAME=value and the NUL fit the kernel's MAX_ARG_STRLEN.
            assert!(n.len() + 1 + v.len() < 131_072, "{n}: {}", v.len());
        }
        assert_eq!(
            c["args"][0],
            "echo ${VAULT_CONFIG?}${VAULT_CONFIG_1?} | base64 -d > /home/vault/config.json && vault agent -config=/home/vault/config.json"
        );
        let joined: String = chunks.iter().map(|(_, v)| v.as_str()).collect();
        use base64::Engine as _;
        let config: serde_json::Value = serde_json::from_slice(
            &base64::engine::general_purpose::STANDARD
                .decode(joined)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(config["template"].as_array().unwrap().len(), 50);
    }
}

#[test]
fn the_split_is_exactly_at_the_kernel_limit() {
    use vault_injector::inject::{CONFIG_CHUNK_LEN, config_env_chunks};
    // "VAULT_CONFIG=" is 13 bytes, plus the NUL: 131058 value bytes fit, 131059 do not.
    let fits = "A".repeat(131_058);
    assert_eq!(config_env_chunks(&fits).len(), 1);
    let over = "A".repeat(131_059);
    let chunks = config_env_chunks(&over);
    assert_eq!(chunks.len(), 2);
    assert_eq!(chunks[0].1.len(), CONFIG_CHUNK_LEN);
    assert_eq!(CONFIG_CHUNK_LEN % 4, 0);
    assert_eq!(chunks[1].0, "VAULT_CONFIG_1");
}
