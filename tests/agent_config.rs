//! Byte-exact agent configurations from worked examples of upstream's documentation
//! and the cache / quit / sink rules.
#![allow(clippy::unwrap_used)]

mod support;

use serde_json::json;
use support::*;
use vault_injector::settings::AgentDefaults;

fn foobar_defaults() -> AgentDefaults {
    let mut d = defaults();
    d.vault_address = "http://foobar:1234".to_owned();
    d.auth_path = "test".to_owned();
    d
}

#[test]
fn minimal_config_matches_the_upstream_fixture_byte_for_byte() {
    let p = pod()
        .ann("role", "role")
        .set(
            "/spec/containers/0/volumeMounts",
            json!([{"name": "foobar", "mountPath": "serviceaccount/somewhere"}]),
        )
        .build();
    let out = inject_with(&p, &foobar_defaults()).unwrap();
    let sidecar = r#"{"auto_auth":{"method":{"type":"kubernetes","mount_path":"test","config":{"role":"role","token_path":"serviceaccount/somewhere/token"}},"sink":[{"type":"file","config":{"path":"/home/vault/.vault-token"}}]},"exit_after_auth":false,"pid_file":"/home/vault/.pid","vault":{"address":"http://foobar:1234"},"template_config":{"exit_on_retry_failure":true}}"#;
    assert_eq!(out.raw_config("vault-agent"), sidecar);
    assert_eq!(
        out.raw_config("vault-agent-init"),
        sidecar.replace("\"exit_after_auth\":false", "\"exit_after_auth\":true")
    );
}

#[test]
fn worked_example_config_matches_the_spec_with_secrets_sorted_by_raw_name() {
    let p: serde_json::Value =
        serde_yaml_ng::from_str(include_str!("fixtures/05-worked-example.yaml")).unwrap();
    let mut d = defaults();
    d.vault_address = "http://vault.vault.svc:8200".to_owned();
    let out = inject_with(&p, &d).unwrap();
    let settings = r#"{"destination":"/vault/secrets/conf/settings.txt","contents":"{{ with secret \"kv/data/web/settings\" }}{{ range $k, $v := .Data }}{{ $k }}: {{ $v }}\n{{ end }}{{ end }}","left_delimiter":"{{","right_delimiter":"}}","perms":"0440"}"#;
    let db = r#"{"destination":"/vault/secrets/db","contents":"{{- with secret \"database/creds/web\" -}}\npostgresql://{{ .Data.username }}:{{ .Data.password }}@pg:5432/web\n{{- end }}\n","left_delimiter":"{{","right_delimiter":"}}","command":"sh -c 'kill -HUP $(pidof web)'"}"#;
    let init = format!(
        r#"{{"auto_auth":{{"method":{{"type":"kubernetes","mount_path":"auth/kubernetes","config":{{"role":"web","token_path":"/var/run/secrets/kubernetes.io/serviceaccount/token"}}}},"sink":[{{"type":"file","config":{{"path":"/home/vault/.vault-token"}}}},{{"type":"file","config":{{"path":"/vault/secrets/token"}}}}]}},"exit_after_auth":true,"pid_file":"/home/vault/.pid","vault":{{"address":"http://vault.vault.svc:8200","ca_cert":"/vault/tls/ca.crt"}},"template":[{settings},{db}],"listener":[{{"type":"tcp","address":"127.0.0.1:8200","tls_disable":true}}],"cache":{{"use_auto_auth_token":"true","persist":{{"type":"kubernetes","path":"/vault/agent-cache"}}}},"template_config":{{"exit_on_retry_failure":true}},"telemetry":{{"disable_hostname":true,"prometheus_retention_time":"30s"}}}}"#
    );
    assert_eq!(init.len(), 1229);
    assert_eq!(out.raw_config("vault-agent-init"), init);
    assert_eq!(
        out.raw_config("vault-agent"),
        init.replace("\"exit_after_auth\":true", "\"exit_after_auth\":false")
    );
}

#[test]
fn worked_example_patch_has_upstreams_operation_sequence() {
    let p: serde_json::Value =
        serde_yaml_ng::from_str(include_str!("fixtures/05-worked-example.yaml")).unwrap();
    let out = inject(&p).unwrap();
    assert_eq!(
        out.paths(),
        [
            "/spec/volumes/-",
            "/spec/volumes/-",
            "/spec/volumes/-",
            "/spec/volumes/-",
            "/spec/volumes/-",
            "/spec/containers/0/volumeMounts/-",
            "/spec/initContainers",
            "/spec/containers/-",
            "/metadata/annotations/vault.hashicorp.com~1agent-inject-status",
        ]
    );
    assert_eq!(
        out.volume_names()[1..],
        [
            "home-init",
            "home-sidecar",
            "vault-secrets",
            "vault-tls-secrets",
            "vault-agent-cache"
        ]
    );
}

#[test]
fn token_sink_follows_the_global_secret_volume_path() {
    let sinks = |p: PodBuilder| {
        inject(&p.build()).unwrap().config("vault-agent")["auto_auth"]["sink"].clone()
    };
    assert_eq!(sinks(pod()).as_array().unwrap().len(), 1);
    assert_eq!(
        sinks(pod().ann("agent-inject-token", "true"))[1]["config"]["path"],
        "/vault/secrets/token"
    );
    assert_eq!(
        sinks(
            pod()
                .ann("agent-inject-token", "true")
                .ann("secret-volume-path", "/new/secrets")
        )[1]["config"]["path"],
        "/new/secrets/token"
    );
}

#[test]
fn cache_is_persistent_only_with_both_agent_containers() {
    let out = inject(
        &pod()
            .ann("agent-cache-enable", "true")
            .ann("agent-cache-exit-on-err", "true")
            .build(),
    )
    .unwrap();
    let expected = json!({"use_auto_auth_token": "true", "persist": {"type": "kubernetes", "path": "/vault/agent-cache", "exit_on_err": true}});
    assert_eq!(out.config("vault-agent")["cache"], expected);
    assert_eq!(out.config("vault-agent-init")["cache"], expected);
    assert_eq!(
        out.config("vault-agent-init")["listener"][0]["address"],
        "127.0.0.1:8200"
    );

    let out = inject(
        &pod()
            .ann("agent-cache-enable", "true")
            .ann("agent-cache-use-auto-auth-token", "force")
            .ann("agent-cache-listener-port", "8100")
            .ann("agent-pre-populate", "false")
            .build(),
    )
    .unwrap();
    assert_eq!(
        out.config("vault-agent")["cache"],
        json!({"use_auto_auth_token": "force"})
    );
    assert_eq!(
        out.config("vault-agent")["listener"],
        json!([{"type": "tcp", "address": "127.0.0.1:8100", "tls_disable": true}])
    );
    assert!(!out.volume_names().contains(&"vault-agent-cache".to_owned()));

    let out = inject(
        &pod()
            .ann("agent-cache-enable", "true")
            .ann("agent-pre-populate-only", "true")
            .build(),
    )
    .unwrap();
    assert!(out.config("vault-agent-init").get("cache").is_none());
    let out = inject(&pod().build()).unwrap();
    assert!(out.config("vault-agent").get("cache").is_none());
    assert!(out.config("vault-agent").get("listener").is_none());
}

#[test]
fn enable_quit_opens_a_listener_in_both_configs() {
    let out = inject(&pod().ann("agent-enable-quit", "true").build()).unwrap();
    for name in ["vault-agent", "vault-agent-init"] {
        assert_eq!(
            out.config(name)["listener"],
            json!([{"type": "tcp", "address": "127.0.0.1:8200", "tls_disable": true, "agent_api": {"enable_quit": true}}])
        );
        assert_eq!(out.config(name)["cache"], json!({}));
    }
    let out = inject(
        &pod()
            .ann("agent-enable-quit", "true")
            .ann("agent-cache-listener-port", "1234")
            .build(),
    )
    .unwrap();
    assert_eq!(
        out.config("vault-agent")["listener"][0]["address"],
        "127.0.0.1:1234"
    );
    let out = inject(
        &pod()
            .ann("agent-enable-quit", "true")
            .ann("agent-cache-enable", "true")
            .build(),
    )
    .unwrap();
    assert_eq!(
        out.config("vault-agent")["listener"][0]["agent_api"],
        json!({"enable_quit": true})
    );
    assert_eq!(
        out.config("vault-agent")["cache"]["persist"]["type"],
        "kubernetes"
    );
}

#[test]
fn vault_stanza_passes_tls_settings_through() {
    let out = inject(
        &pod()
            .ann("tls-skip-verify", "true")
            .ann("tls-server-name", "vault.internal")
            .ann("ca-cert", "/vault/tls/ca.crt")
            .ann("ca-key", "/vault/tls/ca")
            .ann("client-cert", "/vault/tls/client.crt")
            .ann("client-key", "/vault/tls/client.key")
            .build(),
    )
    .unwrap();
    assert_eq!(
        out.raw_config("vault-agent")
            .split("\"vault\":")
            .nth(1)
            .unwrap()
            .split('}')
            .next()
            .unwrap(),
        r#"{"address":"https://vault.vault.svc:8200","ca_cert":"/vault/tls/ca.crt","ca_path":"/vault/tls/ca","tls_skip_verify":true,"client_cert":"/vault/tls/client.crt","client_key":"/vault/tls/client.key","tls_server_name":"vault.internal""#
    );
}

#[test]
fn template_config_and_connection_lists() {
    let out = inject(
        &pod()
            .ann("template-config-exit-on-retry-failure", "false")
            .ann("template-static-secret-render-interval", "10s")
            .ann(
                "agent-disable-idle-connections",
                "auto-auth,caching,templating",
            )
            .ann("agent-disable-keep-alives", "templating")
            .ann("agent-auto-auth-exit-on-err", "true")
            .build(),
    )
    .unwrap();
    let c = out.config("vault-agent");
    assert_eq!(
        c["template_config"],
        json!({"exit_on_retry_failure": false, "static_secret_render_interval": "10s"})
    );
    assert_eq!(
        c["disable_idle_connections"],
        json!(["auto-auth", "caching", "templating"])
    );
    assert_eq!(c["disable_keep_alives"], json!(["templating"]));
    assert_eq!(c["auto_auth"]["method"]["exit_on_err"], true);
}
