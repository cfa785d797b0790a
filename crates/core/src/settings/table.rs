//! Every injector setting, declared once: its flag, environment variable, upstream default, an
//! example value, its help line (the doc comment) and the typed field it fills. The CLI builds
//! its flags from [`SETTINGS`], [`super::Settings::resolve`] walks it, the settings table of
//! `docs/settings.md` is [`super::markdown_table`], and the tests set each declaration's example and check
//! that its field, and no other, changes.

use super::DEFAULT_AGENT_IMAGE;
use super::declaration::{parse, settings};

settings! {
    /// Address to bind listener to
    LISTEN {
        flag: "listen",
        env: "AGENT_INJECT_LISTEN",
        default: ":8080",
        example: ":9443",
        parse: parse::TEXT => server.listen,
    }
    /// Log verbosity level: trace, debug, info, warn, error
    LOG_LEVEL {
        flag: "log-level",
        env: "AGENT_INJECT_LOG_LEVEL",
        default: "info",
        example: "debug",
        parse: parse::LOG_LEVEL => server.log_level,
    }
    /// Log output format: standard or json
    LOG_FORMAT {
        flag: "log-format",
        env: "AGENT_INJECT_LOG_FORMAT",
        default: "standard",
        example: "json",
        note: "or `json`",
        parse: parse::JSON_FORMAT => server.log_json,
    }
    /// Address of the Vault server (required)
    VAULT_ADDRESS {
        flag: "vault-address",
        env: "AGENT_INJECT_VAULT_ADDR",
        default: "",
        example: "https://vault.example:8200",
        parse: parse::REQUIRED => agent.vault_address,
    }
    /// Docker image for the Vault agent
    VAULT_IMAGE {
        flag: "vault-image",
        env: "AGENT_INJECT_VAULT_IMAGE",
        default: DEFAULT_AGENT_IMAGE,
        example: "example/vault:1.0",
        parse: parse::TEXT => agent.image,
    }
    /// Type of Vault auth method the agent uses
    VAULT_AUTH_TYPE {
        flag: "vault-auth-type",
        env: "AGENT_INJECT_VAULT_AUTH_TYPE",
        default: "kubernetes",
        example: "approle",
        parse: parse::TEXT => agent.auth_type,
    }
    /// Mount path of the Vault auth method
    VAULT_AUTH_PATH {
        flag: "vault-auth-path",
        env: "AGENT_INJECT_VAULT_AUTH_PATH",
        default: "auth/kubernetes",
        example: "auth/k8s",
        parse: parse::TEXT => agent.auth_path,
    }
    /// Vault enterprise namespace
    VAULT_NAMESPACE {
        flag: "vault-namespace",
        env: "AGENT_INJECT_VAULT_NAMESPACE",
        default: "",
        example: "team",
        parse: parse::TEXT => agent.vault_namespace,
    }
    /// CA certificate (PEM or base64 of PEM) handed to the agents
    VAULT_CACERT_BYTES {
        flag: "vault-cacert-bytes",
        env: "AGENT_INJECT_VAULT_CACERT_BYTES",
        alias: "AGENT_INJECT_AGENT_INJECT_VAULT_CACERT_BYTES",
        default: "",
        example: "-----BEGIN CERTIFICATE-----",
        parse: parse::TEXT => agent.ca_cert_bytes,
    }
    /// HTTPS proxy address for the agents
    PROXY_ADDRESS {
        flag: "proxy-address",
        env: "AGENT_INJECT_PROXY_ADDR",
        default: "",
        example: "http://proxy:3128",
        parse: parse::TEXT => agent.proxy_address,
    }
    /// Revoke the agent token when the pod shuts down
    REVOKE_ON_SHUTDOWN {
        flag: "revoke-on-shutdown",
        env: "AGENT_INJECT_REVOKE_ON_SHUTDOWN",
        default: "false",
        example: "true",
        parse: parse::BOOL => agent.revoke_on_shutdown,
    }
    /// User ID the agent containers run as
    RUN_AS_USER {
        flag: "run-as-user",
        env: "AGENT_INJECT_RUN_AS_USER",
        alias: "AGENT_INJECT_AGENT_INJECT_RUN_AS_USER",
        default: "100",
        example: "2000",
        parse: parse::RUN_AS_USER => agent.run_as_user,
    }
    /// Group ID the agent containers run as
    RUN_AS_GROUP {
        flag: "run-as-group",
        env: "AGENT_INJECT_RUN_AS_GROUP",
        alias: "AGENT_INJECT_AGENT_INJECT_RUN_AS_GROUP",
        default: "1000",
        example: "3000",
        parse: parse::RUN_AS_GROUP => agent.run_as_group,
    }
    /// Run the agents as the first app container's user
    RUN_AS_SAME_USER {
        flag: "run-as-same-user",
        env: "AGENT_INJECT_RUN_AS_SAME_USER",
        alias: "AGENT_INJECT_AGENT_INJECT_RUN_AS_SAME_USER",
        default: "false",
        example: "true",
        parse: parse::BOOL => agent.run_as_same_user,
    }
    /// Set a security context on the agent containers
    SET_SECURITY_CONTEXT {
        flag: "set-security-context",
        env: "AGENT_INJECT_SET_SECURITY_CONTEXT",
        alias: "AGENT_INJECT_AGENT_INJECT_SET_SECURITY_CONTEXT",
        default: "true",
        example: "false",
        parse: parse::BOOL => agent.set_security_context,
    }
    /// Default template type for secrets: map or json
    DEFAULT_TEMPLATE {
        flag: "default-template",
        env: "AGENT_INJECT_DEFAULT_TEMPLATE",
        default: "map",
        example: "json",
        parse: parse::TEMPLATE => agent.default_template,
    }
    /// CPU request of the agent containers
    CPU_REQUEST {
        flag: "cpu-request",
        env: "AGENT_INJECT_CPU_REQUEST",
        alias: "AGENT_INJECT_AGENT_INJECT_CPU_REQUEST",
        default: "250m",
        example: "1",
        parse: parse::TEXT => agent.resources.cpu_request,
    }
    /// Memory request of the agent containers
    MEMORY_REQUEST {
        flag: "memory-request",
        env: "AGENT_INJECT_MEM_REQUEST",
        alias: "AGENT_INJECT_AGENT_INJECT_MEM_REQUEST",
        default: "64Mi",
        example: "1Gi",
        parse: parse::TEXT => agent.resources.memory_request,
    }
    /// Ephemeral storage request of the agent containers
    EPHEMERAL_STORAGE_REQUEST {
        flag: "ephemeral-storage-request",
        env: "AGENT_INJECT_EPHEMERAL_REQUEST",
        alias: "AGENT_INJECT_AGENT_INJECT_EPHEMERAL_REQUEST",
        default: "",
        example: "2Gi",
        parse: parse::TEXT => agent.resources.ephemeral_request,
    }
    /// CPU limit of the agent containers
    CPU_LIMIT {
        flag: "cpu-limit",
        env: "AGENT_INJECT_CPU_LIMIT",
        alias: "AGENT_INJECT_AGENT_INJECT_CPU_LIMIT",
        default: "500m",
        example: "2",
        parse: parse::TEXT => agent.resources.cpu_limit,
    }
    /// Memory limit of the agent containers
    MEMORY_LIMIT {
        flag: "memory-limit",
        env: "AGENT_INJECT_MEM_LIMIT",
        alias: "AGENT_INJECT_AGENT_INJECT_MEM_LIMIT",
        default: "128Mi",
        example: "2Gi",
        parse: parse::TEXT => agent.resources.memory_limit,
    }
    /// Ephemeral storage limit of the agent containers
    EPHEMERAL_STORAGE_LIMIT {
        flag: "ephemeral-storage-limit",
        env: "AGENT_INJECT_EPHEMERAL_LIMIT",
        alias: "AGENT_INJECT_AGENT_INJECT_EPHEMERAL_LIMIT",
        default: "",
        example: "4Gi",
        parse: parse::TEXT => agent.resources.ephemeral_limit,
    }
    /// template_config.exit_on_retry_failure of the agents
    TEMPLATE_CONFIG_EXIT_ON_RETRY_FAILURE {
        flag: "template-config-exit-on-retry-failure",
        env: "AGENT_INJECT_TEMPLATE_CONFIG_EXIT_ON_RETRY_FAILURE",
        default: "true",
        example: "false",
        parse: parse::BOOL => agent.exit_on_retry_failure,
    }
    /// template_config.static_secret_render_interval of the agents
    TEMPLATE_STATIC_SECRET_RENDER_INTERVAL {
        flag: "template-static-secret-render-interval",
        env: "AGENT_INJECT_TEMPLATE_STATIC_SECRET_RENDER_INTERVAL",
        alias: "AGENT_INJECT_AGENT_INJECT_TEMPLATE_STATIC_SECRET_RENDER_INTERVAL",
        default: "",
        example: "5m",
        parse: parse::TEXT => agent.static_secret_render_interval,
    }
    /// template_config.max_connections_per_host of the agents (env only)
    TEMPLATE_MAX_CONNECTIONS_PER_HOST {
        env: "AGENT_INJECT_TEMPLATE_MAX_CONNECTIONS_PER_HOST",
        alias: "AGENT_INJECT_AGENT_INJECT_TEMPLATE_MAX_CONNECTIONS_PER_HOST",
        default: "0",
        example: "100",
        parse: parse::INT => agent.max_connections_per_host,
    }
    /// Parsed and ignored, as upstream (env only)
    TEMPLATE_LEASE_RENEWAL_THRESHOLD {
        env: "AGENT_INJECT_TEMPLATE_LEASE_RENEWAL_THRESHOLD",
        alias: "AGENT_INJECT_AGENT_INJECT_TEMPLATE_LEASE_RENEWAL_THRESHOLD",
        default: "0",
        example: "0.75",
        note: "parsed and ignored, as upstream",
        parse: parse::FLOAT => agent.lease_renewal_threshold,
    }
    /// auto_auth min_backoff of the agents
    AUTH_MIN_BACKOFF {
        flag: "auth-min-backoff",
        env: "AGENT_INJECT_AUTH_MIN_BACKOFF",
        alias: "AGENT_INJECT_AGENT_INJECT_AUTH_MIN_BACKOFF",
        default: "",
        example: "3s",
        parse: parse::DURATION => agent.auth_min_backoff,
    }
    /// auto_auth max_backoff of the agents
    AUTH_MAX_BACKOFF {
        flag: "auth-max-backoff",
        env: "AGENT_INJECT_AUTH_MAX_BACKOFF",
        alias: "AGENT_INJECT_AGENT_INJECT_AUTH_MAX_BACKOFF",
        default: "",
        example: "1m",
        parse: parse::DURATION => agent.auth_max_backoff,
    }
    /// Comma list for the agents' disable_idle_connections
    DISABLE_IDLE_CONNECTIONS {
        flag: "disable-idle-connections",
        env: "AGENT_INJECT_DISABLE_IDLE_CONNECTIONS",
        default: "",
        example: "auto-auth,caching",
        parse: parse::LIST => agent.disable_idle_connections,
    }
    /// Comma list for the agents' disable_keep_alives
    DISABLE_KEEP_ALIVES {
        flag: "disable-keep-alives",
        env: "AGENT_INJECT_DISABLE_KEEP_ALIVES",
        default: "",
        example: "templating",
        parse: parse::LIST => agent.disable_keep_alives,
    }
    /// MutatingWebhookConfiguration whose caBundle is managed
    TLS_AUTO {
        flag: "tls-auto",
        env: "AGENT_INJECT_TLS_AUTO",
        alias: "TLS_AUTO",
        default: "",
        example: "vault-agent-injector-cfg",
        parse: parse::TEXT => server.tls_auto,
    }
    /// Comma list of SANs for the generated certificate
    TLS_AUTO_HOSTS {
        flag: "tls-auto-hosts",
        env: "AGENT_INJECT_TLS_AUTO_HOSTS",
        alias: "TLS_AUTO_HOSTS",
        default: "",
        example: "injector,injector.vault.svc",
        parse: parse::LIST => server.tls_auto_hosts,
    }
    /// PEM certificate file to serve (reloaded on change)
    TLS_CERT_FILE {
        flag: "tls-cert-file",
        env: "AGENT_INJECT_TLS_CERT_FILE",
        alias: "TLS_CERT_FILE",
        default: "",
        example: "/etc/webhook/certs/tls.crt",
        parse: parse::TEXT => server.tls_cert_file,
    }
    /// PEM private key file to serve (reloaded on change)
    TLS_KEY_FILE {
        flag: "tls-key-file",
        env: "AGENT_INJECT_TLS_KEY_FILE",
        alias: "TLS_KEY_FILE",
        default: "",
        example: "/etc/webhook/certs/tls.key",
        parse: parse::TEXT => server.tls_key_file,
    }
    /// CA file pushed to the webhook caBundle in file mode
    TLS_CA_CERT_FILE {
        flag: "tls-ca-cert-file",
        env: "AGENT_INJECT_TLS_CA_CERT_FILE",
        alias: "TLS_CA_CERT_FILE",
        default: "",
        example: "/etc/webhook/certs/ca.crt",
        parse: parse::TEXT => server.tls_ca_cert_file,
    }
    /// Minimum TLS version: tls10, tls11, tls12 or tls13
    TLS_MIN_VERSION {
        flag: "tls-min-version",
        env: "AGENT_INJECT_TLS_MIN_VERSION",
        alias: "TLS_MIN_VERSION",
        default: "tls12",
        example: "tls13",
        note: "`tls10`/`tls11` are served as TLS 1.2, with a warning",
        parse: parse::TLS_VERSION => server.tls_min_version,
    }
    /// Comma list of TLS 1.2 cipher suites
    TLS_CIPHER_SUITES {
        flag: "tls-cipher-suites",
        env: "AGENT_INJECT_TLS_CIPHER_SUITES",
        alias: "TLS_CIPHER_SUITES",
        default: "",
        example: "TLS_AES_128_GCM_SHA256",
        note: "rustls defaults; Go names accepted, ones rustls lacks are ignored with a warning",
        parse: parse::CIPHER_SUITES => server.tls_cipher_suites,
    }
    /// Path for Prometheus metrics (off when empty)
    TELEMETRY_PATH {
        flag: "telemetry-path",
        env: "AGENT_INJECT_TELEMETRY_PATH",
        default: "",
        example: "/metrics",
        note: "no metrics endpoint",
        parse: parse::TEXT => server.telemetry_path,
    }
    /// Coordinate certificates between replicas
    USE_LEADER_ELECTOR {
        flag: "use-leader-elector",
        env: "AGENT_INJECT_USE_LEADER_ELECTOR",
        default: "false",
        example: "true",
        parse: parse::BOOL => server.use_leader_elector,
    }
    /// With -use-leader-elector: configmap (upstream's leader-for-life lock) or lease
    /// (coordination.k8s.io Lease, bounded failover)
    LEADER_ELECTION_MODE {
        flag: "leader-election-mode",
        env: "AGENT_INJECT_LEADER_ELECTION_MODE",
        default: "configmap",
        example: "lease",
        note: "upstream's lock; `lease` is not upstream, see [server.md](server.md#several-replicas)",
        parse: parse::LEADER_ELECTION => server.leader_election_mode,
    }
    /// CLI the agent command runs: vault, bao, or auto (bao for an openbao image); empty =
    /// vault, auto for openbao.org pods (not upstream)
    AGENT_BINARY {
        flag: "agent-binary",
        env: "AGENT_INJECT_AGENT_BINARY",
        default: "",
        example: "bao",
        note: "`vault`, except `auto` for `openbao.org` pods; see [beyond-upstream.md](beyond-upstream.md#openbao)",
        parse: parse::AGENT_BINARY => agent.agent_binary,
    }
    /// Use the Namespace's vault.hashicorp.com/* annotations as defaults for its pods (needs
    /// namespaces get/list/watch), not upstream
    NAMESPACE_DEFAULTS {
        flag: "namespace-defaults",
        env: "AGENT_INJECT_NAMESPACE_DEFAULTS",
        default: "false",
        example: "true",
        note: "see [beyond-upstream.md](beyond-upstream.md#namespace-defaults)",
        parse: parse::BOOL => server.namespace_defaults,
    }
    /// Count pods created without injection and emit an Event on them (needs pods list/watch,
    /// events create), not upstream
    MISSED_INJECTION_WATCHER {
        flag: "missed-injection-watcher",
        env: "AGENT_INJECT_MISSED_INJECTION_WATCHER",
        default: "false",
        example: "true",
        note: "see [beyond-upstream.md](beyond-upstream.md#missed-injections)",
        parse: parse::BOOL => server.missed_injection_watcher,
    }
    /// Inject the agent as a native sidecar (Kubernetes 1.29+: an init container with
    /// restartPolicy Always), not upstream
    NATIVE_SIDECAR {
        flag: "native-sidecar",
        env: "AGENT_INJECT_NATIVE_SIDECAR",
        default: "false",
        example: "true",
        note: "the default of `agent-native-sidecar`, see [beyond-upstream.md](beyond-upstream.md#native-sidecars)",
        parse: parse::BOOL => agent.native_sidecar,
    }
    /// Give the agent containers seccompProfile RuntimeDefault (restricted Pod Security), not
    /// upstream
    SECCOMP_RUNTIME_DEFAULT {
        flag: "seccomp-runtime-default",
        env: "AGENT_INJECT_SECCOMP_RUNTIME_DEFAULT",
        default: "false",
        example: "true",
        note: "the default of `agent-seccomp-runtime-default`, see [beyond-upstream.md](beyond-upstream.md#restricted-pod-security)",
        parse: parse::BOOL => agent.seccomp_runtime_default,
    }
    /// Most /mutate requests handled at once; beyond it the webhook answers 503 at once (not
    /// upstream)
    MAX_REQUESTS_IN_FLIGHT {
        flag: "max-requests-in-flight",
        env: "AGENT_INJECT_MAX_REQUESTS_IN_FLIGHT",
        default: super::DEFAULT_MAX_REQUESTS_IN_FLIGHT_STR,
        example: "16",
        note: "see [SECURITY.md](../SECURITY.md#limits-and-timeouts)",
        parse: parse::IN_FLIGHT => server.max_requests_in_flight,
    }
    /// After SIGTERM, keep serving (and report not ready) this long before shutting down,
    /// while the Service stops routing here (not upstream)
    SHUTDOWN_DELAY {
        flag: "shutdown-delay",
        env: "AGENT_INJECT_SHUTDOWN_DELAY",
        default: "5s",
        example: "0s",
        note: "see [server.md](server.md#stopping)",
        parse: parse::SHUTDOWN_DELAY => server.shutdown_delay,
    }
}
