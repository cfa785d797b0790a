//! The declarations: upstream vault-k8s v1.7.6's annotations in its order, then the ones beyond
//! upstream.

use super::{Absent, Key, Shape, Value};
use crate::settings::table as setting;

const BOOLS: [&str; 5] = ["true", "false", "1", "0", ""];

keys! {
    /// Asks for injection (`true`); the webhook leaves pods without it alone.
    INJECT = "agent-inject" {
        value: Bool,
        absent: Absent::Nothing,
        examples: ["true", "false"],
    }
    /// Written as `injected` by the injector; a pod that has it is not injected again.
    STATUS = "agent-inject-status" {
        value: Text,
        absent: Absent::Nothing,
        examples: ["injected", "update"],
    }
    /// The Vault path of a secret rendered to the file `<name>`.
    SECRET = "agent-inject-secret" {
        shape: Shape::PerSecret,
        value: Text,
        absent: Absent::Nothing,
        examples: ["database/creds/app", "kv/data/x", "kv/data/app"],
    }
    /// The secret's file name under its mount path, instead of `<name>`.
    FILE = "agent-inject-file" {
        shape: Shape::PerSecret,
        value: Text,
        absent: Absent::Nothing,
        examples: ["db.env", "/abs/file", "../up"],
    }
    /// The secret file's permissions.
    PERMS = "agent-inject-perms" {
        shape: Shape::PerSecret,
        value: Text,
        absent: Absent::Nothing,
        examples: ["0400", "0644"],
    }
    /// The secret's template, instead of the default template; declares the secret too.
    TEMPLATE = "agent-inject-template" {
        shape: Shape::PerSecret,
        value: Text,
        absent: Absent::Nothing,
        examples: ["{{ .Data }}", ""],
    }
    /// The app containers that mount the secrets volume.
    CONTAINERS = "agent-inject-containers" {
        value: List,
        absent: Absent::Computed("every app container"),
        examples: ["app", "web,worker", "", "app,db", "app,web", "web"],
    }
    /// The template of secrets that have none.
    DEFAULT_TEMPLATE = "agent-inject-default-template" {
        value: Template,
        absent: Absent::Setting(&setting::DEFAULT_TEMPLATE),
        examples: ["json", "map", "JSON"],
    }
    /// A template file inside the agent container, used when the secret has no inline
    /// template; declares the secret too.
    TEMPLATE_FILE = "agent-inject-template-file" {
        shape: Shape::PerSecret,
        value: Text,
        absent: Absent::Nothing,
        examples: ["/vault/custom/t.tmpl"],
    }
    /// The secret template's left delimiter (`{{` when unset).
    LEFT_DELIM = "agent-template-left-delim" {
        shape: Shape::PerSecret,
        value: Text,
        absent: Absent::Nothing,
        examples: ["[["],
    }
    /// The secret template's right delimiter (`}}` when unset).
    RIGHT_DELIM = "agent-template-right-delim" {
        shape: Shape::PerSecret,
        value: Text,
        absent: Absent::Nothing,
        examples: ["]]"],
    }
    /// Also writes the agent's Vault token to `token` in the secrets volume.
    INJECT_TOKEN = "agent-inject-token" {
        value: Bool,
        absent: Absent::Value("false"),
        examples: BOOLS,
    }
    /// A command the agent runs after rendering the secret.
    COMMAND = "agent-inject-command" {
        shape: Shape::PerSecret,
        value: Text,
        absent: Absent::Nothing,
        examples: ["touch /tmp/ready"],
    }
    /// The agent image.
    IMAGE = "agent-image" {
        value: Text,
        absent: Absent::Setting(&setting::VAULT_IMAGE),
        examples: ["openbao/openbao:2", "hashicorp/vault:1.18"],
    }
    /// The namespace the injection is for; it must not be empty.
    REQUEST_NAMESPACE = "agent-request-namespace" {
        value: Text,
        absent: Absent::Computed("the admission request's namespace"),
        examples: ["apps", "other"],
    }
    /// Puts the init agent first among the init containers instead of last.
    INIT_FIRST = "agent-init-first" {
        value: Bool,
        absent: Absent::Value("false"),
        examples: BOOLS,
    }
    /// Adds the init agent, which renders the secrets before the app starts.
    PRE_POPULATE = "agent-pre-populate" {
        value: Bool,
        absent: Absent::Value("true"),
        examples: BOOLS,
    }
    /// Only the init agent: no sidecar keeps the secrets fresh.
    PRE_POPULATE_ONLY = "agent-pre-populate-only" {
        value: Bool,
        absent: Absent::Value("false"),
        examples: BOOLS,
    }
    /// A ConfigMap holding the agents' own configuration (`config.hcl`, `config-init.hcl`),
    /// used instead of the generated one.
    CONFIGMAP = "agent-configmap" {
        value: Text,
        absent: Absent::Nothing,
        examples: ["cfg", ""],
    }
    /// A Secret mounted in the agents at `/vault/custom`.
    EXTRA_SECRET = "agent-extra-secret" {
        value: Text,
        absent: Absent::Nothing,
        examples: ["cfg", ""],
    }
    /// The agents' CPU limit.
    LIMITS_CPU = "agent-limits-cpu" {
        value: Quantity,
        absent: Absent::Setting(&setting::CPU_LIMIT),
        examples: ["250m", "1", "", "64Mi"],
    }
    /// The agents' memory limit.
    LIMITS_MEM = "agent-limits-mem" {
        value: Quantity,
        absent: Absent::Setting(&setting::MEMORY_LIMIT),
        examples: ["64Mi", "1Gi", ""],
    }
    /// The agents' ephemeral storage limit.
    LIMITS_EPHEMERAL = "agent-limits-ephemeral" {
        value: Quantity,
        absent: Absent::Setting(&setting::EPHEMERAL_STORAGE_LIMIT),
        examples: ["64Mi", "1Gi"],
    }
    /// The agents' CPU request.
    REQUESTS_CPU = "agent-requests-cpu" {
        value: Quantity,
        absent: Absent::Setting(&setting::CPU_REQUEST),
        examples: ["250m", "1"],
    }
    /// The agents' memory request.
    REQUESTS_MEM = "agent-requests-mem" {
        value: Quantity,
        absent: Absent::Setting(&setting::MEMORY_REQUEST),
        examples: ["128Mi", "250m", "1", "", "64Mi", "1Gi"],
    }
    /// The agents' ephemeral storage request.
    REQUESTS_EPHEMERAL = "agent-requests-ephemeral" {
        value: Quantity,
        absent: Absent::Setting(&setting::EPHEMERAL_STORAGE_REQUEST),
        examples: ["64Mi", "1Gi"],
    }
    /// Revokes the agent's token when the pod stops (a preStop hook on the sidecar).
    REVOKE_ON_SHUTDOWN = "agent-revoke-on-shutdown" {
        value: Bool,
        absent: Absent::Setting(&setting::REVOKE_ON_SHUTDOWN),
        examples: BOOLS,
    }
    /// Seconds the preStop hook waits before revoking.
    REVOKE_GRACE = "agent-revoke-grace" {
        value: Uint,
        absent: Absent::Value("5"),
        examples: ["5", "0", "100", "1000"],
    }
    /// The Vault (enterprise) namespace of the auth method.
    VAULT_NAMESPACE = "namespace" {
        value: Text,
        absent: Absent::Setting(&setting::VAULT_NAMESPACE),
        examples: ["team"],
    }
    /// The agents' uid.
    RUN_AS_USER = "agent-run-as-user" {
        value: Int,
        absent: Absent::Setting(&setting::RUN_AS_USER),
        examples: ["1000", "100", "0", "5"],
    }
    /// The agents' gid.
    RUN_AS_GROUP = "agent-run-as-group" {
        value: Int,
        absent: Absent::Setting(&setting::RUN_AS_GROUP),
        examples: ["100", "0", "1000", "5"],
    }
    /// The agents take the uid of the first app container (which must not be root).
    RUN_AS_SAME_USER = "agent-run-as-same-user" {
        value: Bool,
        absent: Absent::Setting(&setting::RUN_AS_SAME_USER),
        examples: BOOLS,
    }
    /// Sets the pod's `shareProcessNamespace` (with the init agent or native sidecar).
    SHARE_PROCESS_NAMESPACE = "agent-share-process-namespace" {
        value: Bool,
        absent: Absent::Nothing,
        examples: BOOLS,
    }
    /// Gives the agents a restrictive security context. Absent, it is also true when the pod
    /// sets `agent-run-as-user`, `agent-run-as-group` or `agent-run-as-same-user`.
    SET_SECURITY_CONTEXT = "agent-set-security-context" {
        value: Bool,
        absent: Absent::Setting(&setting::SET_SECURITY_CONTEXT),
        examples: BOOLS,
    }
    /// The volume holding the service-account token the agents log in with.
    SA_TOKEN_VOLUME_NAME = "agent-service-account-token-volume-name" {
        value: Text,
        absent: Absent::Computed("the app containers' mount whose path contains `serviceaccount`"),
        examples: ["kube-api-access-abcde", "", "host"],
    }
    /// The Vault address.
    SERVICE = "service" {
        value: Text,
        absent: Absent::Setting(&setting::VAULT_ADDRESS),
        examples: ["http://vault:8200"],
    }
    /// The agents' HTTPS proxy.
    PROXY_ADDRESS = "proxy-address" {
        value: Text,
        absent: Absent::Setting(&setting::PROXY_ADDRESS),
        examples: ["http://proxy:3128"],
    }
    /// Skips verification of Vault's certificate.
    TLS_SKIP_VERIFY = "tls-skip-verify" {
        value: Bool,
        absent: Absent::Value("false"),
        examples: BOOLS,
    }
    /// A Secret with Vault's TLS material, mounted in the agents at `/vault/tls`.
    TLS_SECRET = "tls-secret" {
        value: Text,
        absent: Absent::Nothing,
        examples: ["vault-ca", "cfg", ""],
    }
    /// The server name the agents expect in Vault's certificate.
    TLS_SERVER_NAME = "tls-server-name" {
        value: Text,
        absent: Absent::Nothing,
        examples: ["vault.example"],
    }
    /// The CA certificate file the agents trust.
    CA_CERT = "ca-cert" {
        value: Text,
        absent: Absent::Nothing,
        examples: ["/vault/tls/ca.crt"],
    }
    /// A directory of CA certificates the agents trust (despite the name).
    CA_KEY = "ca-key" {
        value: Text,
        absent: Absent::Nothing,
        examples: ["/vault/tls"],
    }
    /// The agents' client certificate file.
    CLIENT_CERT = "client-cert" {
        value: Text,
        absent: Absent::Nothing,
        examples: ["/vault/tls/client.crt"],
    }
    /// The agents' client key file.
    CLIENT_KEY = "client-key" {
        value: Text,
        absent: Absent::Nothing,
        examples: ["/vault/tls/client.key"],
    }
    /// `VAULT_MAX_RETRIES` of the agents.
    CLIENT_MAX_RETRIES = "client-max-retries" {
        value: Text,
        absent: Absent::Nothing,
        examples: ["5", "100", "1000", "0"],
    }
    /// `VAULT_CLIENT_TIMEOUT` of the agents.
    CLIENT_TIMEOUT = "client-timeout" {
        value: Text,
        absent: Absent::Nothing,
        examples: ["1s", "5m"],
    }
    /// `GOMAXPROCS` of the agents.
    GO_MAX_PROCS = "go-max-procs" {
        value: Text,
        absent: Absent::Nothing,
        examples: ["1", "5", "100", "1000", "0"],
    }
    /// The agents' log level.
    LOG_LEVEL = "log-level" {
        value: Text,
        absent: Absent::Value("info"),
        examples: ["info", "debug"],
    }
    /// The agents' log format.
    LOG_FORMAT = "log-format" {
        value: Text,
        absent: Absent::Value("standard"),
        examples: ["standard", "json"],
    }
    /// The Vault role the agents log in as (required for `kubernetes` auth unless
    /// `auth-config-role` is set).
    ROLE = "role" {
        value: Text,
        absent: Absent::Nothing,
        examples: ["app", "web"],
    }
    /// The auth method type.
    AUTH_TYPE = "auth-type" {
        value: Text,
        absent: Absent::Setting(&setting::VAULT_AUTH_TYPE),
        examples: ["kubernetes", "approle", "aws"],
    }
    /// The auth method's mount path.
    AUTH_PATH = "auth-path" {
        value: Text,
        absent: Absent::Setting(&setting::VAULT_AUTH_PATH),
        examples: ["auth/kubernetes", "auth/k8s"],
    }
    /// One entry of `auto_auth.method.config`.
    AUTH_CONFIG = "auth-config" {
        shape: Shape::Params(&["role", "remove-jwt-after-reading"]),
        value: Text,
        absent: Absent::Nothing,
        examples: ["app", "web"],
    }
    /// Where the rendered secrets are mounted in the app containers.
    SECRET_VOLUME_PATH = "secret-volume-path" {
        shape: Shape::SingleAndPerSecret,
        value: Text,
        absent: Absent::Value("/vault/secrets"),
        examples: ["/vault/secrets", "/other", "/etc/x/"],
    }
    /// Keeps the case of secret names for their file names, instead of lowercasing them.
    PRESERVE_SECRET_CASE = "preserve-secret-case" {
        shape: Shape::SingleAndPerSecret,
        value: LenientBool,
        absent: Absent::Value("false"),
        examples: BOOLS,
    }
    /// Turns on the agents' cache.
    CACHE_ENABLE = "agent-cache-enable" {
        value: Bool,
        absent: Absent::Value("false"),
        examples: BOOLS,
    }
    /// `cache.use_auto_auth_token` (`true` or `force`).
    CACHE_USE_AUTO_AUTH_TOKEN = "agent-cache-use-auto-auth-token" {
        value: Text,
        absent: Absent::Value("true"),
        examples: ["true", "force", "false"],
    }
    /// The cache listener's port.
    CACHE_LISTENER_PORT = "agent-cache-listener-port" {
        value: Text,
        absent: Absent::Value("8200"),
        examples: ["8200", "8300", "5", "100", "1000", "0"],
    }
    /// `cache.persist.exit_on_err`.
    CACHE_EXIT_ON_ERR = "agent-cache-exit-on-err" {
        value: Bool,
        absent: Absent::Value("false"),
        examples: BOOLS,
    }
    /// A container whose volume mounts (but for the service-account token) the agents get.
    COPY_VOLUME_MOUNTS = "agent-copy-volume-mounts" {
        value: Text,
        absent: Absent::Nothing,
        examples: ["app", "init-a", "nobody", "web"],
    }
    /// `template_config.exit_on_retry_failure`.
    TEMPLATE_EXIT_ON_RETRY_FAILURE = "template-config-exit-on-retry-failure" {
        value: Bool,
        absent: Absent::Setting(&setting::TEMPLATE_CONFIG_EXIT_ON_RETRY_FAILURE),
        examples: BOOLS,
    }
    /// `template_config.static_secret_render_interval`.
    TEMPLATE_STATIC_SECRET_RENDER_INTERVAL = "template-static-secret-render-interval" {
        value: Text,
        absent: Absent::Setting(&setting::TEMPLATE_STATIC_SECRET_RENDER_INTERVAL),
        examples: ["1s", "5m"],
    }
    /// `template_config.max_connections_per_host`.
    TEMPLATE_MAX_CONNECTIONS_PER_HOST = "template-max-connections-per-host" {
        value: Int,
        absent: Absent::Setting(&setting::TEMPLATE_MAX_CONNECTIONS_PER_HOST),
        examples: ["10", "0", "100", "5", "1000"],
    }
    /// `template_config.lease_renewal_threshold` (the injector setting is ignored, as
    /// upstream ignores it).
    TEMPLATE_LEASE_RENEWAL_THRESHOLD = "template-lease-renewal-threshold" {
        value: Float,
        absent: Absent::Value("0"),
        examples: ["0.5", "0"],
    }
    /// `agent_api.enable_quit`.
    ENABLE_QUIT = "agent-enable-quit" {
        value: Bool,
        absent: Absent::Value("false"),
        examples: BOOLS,
    }
    /// `auto_auth.method.min_backoff`.
    AUTH_MIN_BACKOFF = "auth-min-backoff" {
        value: Duration,
        absent: Absent::Setting(&setting::AUTH_MIN_BACKOFF),
        examples: ["1s", "", "2m", "5m"],
    }
    /// `auto_auth.method.max_backoff`.
    AUTH_MAX_BACKOFF = "auth-max-backoff" {
        value: Duration,
        absent: Absent::Setting(&setting::AUTH_MAX_BACKOFF),
        examples: ["1s", "5m"],
    }
    /// The agents' `disable_idle_connections`.
    DISABLE_IDLE_CONNECTIONS = "agent-disable-idle-connections" {
        value: List,
        absent: Absent::Setting(&setting::DISABLE_IDLE_CONNECTIONS),
        examples: ["auto-auth,caching,templating", ""],
    }
    /// The agents' `disable_keep_alives`.
    DISABLE_KEEP_ALIVES = "agent-disable-keep-alives" {
        value: List,
        absent: Absent::Setting(&setting::DISABLE_KEEP_ALIVES),
        examples: ["auto-auth,caching,templating", ""],
    }
    /// A JSON patch applied to the sidecar (or native sidecar) container.
    JSON_PATCH = "agent-json-patch" {
        value: JsonPatch,
        absent: Absent::Nothing,
        examples: [
            "[]",
            "null",
            r#"[{"op":"add","path":"/env/-","value":{"name":"X","value":"1"}}]"#,
            r#"[{"op":"replace","path":"/image","value":"other:1"}]"#,
        ],
    }
    /// A JSON patch applied to the init agent container.
    INIT_JSON_PATCH = "agent-init-json-patch" {
        value: JsonPatch,
        absent: Absent::Nothing,
        examples: [
            "[]",
            "null",
            r#"[{"op":"add","path":"/env/-","value":{"name":"X","value":"1"}}]"#,
            r#"[{"op":"replace","path":"/image","value":"other:1"}]"#,
        ],
    }
    /// `auto_auth.method.exit_on_err`.
    AUTO_AUTH_EXIT_ON_ERR = "agent-auto-auth-exit-on-err" {
        value: Bool,
        absent: Absent::Value("false"),
        examples: BOOLS,
    }
    /// One entry of the agents' `telemetry` block.
    TELEMETRY = "agent-telemetry" {
        shape: Shape::Params(&["disable_hostname", "prometheus-retention-time"]),
        value: Json,
        absent: Absent::Nothing,
        examples: ["true", "false", "1", "0", "", "\"24h\""],
    }
    /// The secret template's `error_on_missing_key`.
    ERROR_ON_MISSING_KEY = "error-on-missing-key" {
        shape: Shape::PerSecret,
        value: Bool,
        absent: Absent::Value("false"),
        examples: BOOLS,
    }
    /// Not upstream: one agent, as a native sidecar (Kubernetes 1.29+: an init container with
    /// `restartPolicy: Always`); `agent-pre-populate-only` wins over it.
    NATIVE_SIDECAR = "agent-native-sidecar" {
        value: Bool,
        absent: Absent::Setting(&setting::NATIVE_SIDECAR),
        examples: BOOLS,
    }
    /// Not upstream: `seccompProfile: RuntimeDefault` on the agent containers (restricted Pod
    /// Security).
    SECCOMP_RUNTIME_DEFAULT = "agent-seccomp-runtime-default" {
        value: Bool,
        absent: Absent::Setting(&setting::SECCOMP_RUNTIME_DEFAULT),
        examples: BOOLS,
    }
    /// Not upstream: the Vault path of a secret handed to the wrapped container's process as the
    /// environment variable `<VAR>` (the agent starts the process; see "Secrets as environment
    /// variables"). Without a template the value is the secret's data as JSON.
    ENV = "agent-inject-env" {
        shape: Shape::PerVariable,
        value: Text,
        absent: Absent::Nothing,
        examples: ["database/creds/app", "secret/data/app"],
    }
    /// Not upstream: the template of the variable `<VAR>`; declares the variable too.
    ENV_TEMPLATE = "agent-inject-env-template" {
        shape: Shape::PerVariable,
        value: Text,
        absent: Absent::Computed("the secret's data as JSON (`.Data.data` for KV v2)"),
        examples: [r#"{{ with secret "database/creds/app" }}{{ .Data.username }}{{ end }}"#],
    }
    /// Not upstream: the app container whose process gets the variables.
    ENV_CONTAINER = "agent-inject-env-container" {
        value: Text,
        absent: Absent::Computed("the first app container"),
        examples: ["app", "web"],
    }
    /// Not upstream: the command that the wrapped container's image runs (its entrypoint), for
    /// a container without `command`; the container's `args` follow it.
    ENV_COMMAND = "agent-inject-env-command" {
        value: Command,
        absent: Absent::Computed("the container's `command` and `args`"),
        examples: [r#"["/app/run"]"#, r#"["/bin/app", "--serve"]"#],
    }
    /// Not upstream: `always` restarts the process when a variable's value changes; `never`
    /// leaves it running with the values it started with.
    ENV_RESTART = "agent-inject-env-restart" {
        value: Restart,
        absent: Absent::Value("always"),
        examples: ["always", "never"],
    }
    /// Not upstream: the signal that stops the process, for a restart and when the pod stops
    /// (it is killed 30 s later).
    ENV_STOP_SIGNAL = "agent-inject-env-stop-signal" {
        value: Signal,
        absent: Absent::Value("SIGTERM"),
        examples: ["SIGTERM", "SIGINT", "sigquit"],
    }
}
