//! No secret-bearing value in any log line: every golden fixture goes through a real
//! `vault-injector serve` (HTTPS on loopback) and through `render`, both at
//! `AGENT_INJECT_LOG_LEVEL=trace` in both log formats, and everything they write (stdout and
//! stderr) is searched for canaries planted in the secret-bearing values:
//!
//! - template contents: every fixture's `agent-inject-template-*` values get a canary appended,
//!   and each fixture gets one more canary template;
//! - CA bytes: the injector's `-vault-cacert-bytes` (`AGENT_INJECT_VAULT_CACERT_BYTES`, handed to
//!   the agents as `VAULT_CACERT_BYTES`) is a PEM whose body is a canary (`ca-cert` itself is a
//!   path, not bytes);
//! - tokens: a bearer token in the request's `Authorization` header, one in the review's
//!   `userInfo.extra`, and an app container env value `VAULT_TOKEN`;
//! - the agents' `VAULT_CONFIG` (base64 of a configuration with the templates in it) and the
//!   whole patch (its base64 and JSON forms), taken from the replies: no log line may carry any
//!   32-byte window of them;
//! - a refused pod carrying the same canaries (a refusal is logged with its reason).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject as _};
use serde_json::{Value, json};

/// How long the test waits for a log line or for `serve` to come up: a safety net so that a
/// broken injector fails the test instead of hanging it, not a bound on how fast it is.
const PATIENCE: Duration = Duration::from_secs(20);

const BIN: &str = env!("CARGO_BIN_EXE_vault-injector");
const TEMPLATE_CANARY: &str = "CANARY-TEMPLATE-7f3a9c";
const EXTRA_TEMPLATE_CANARY: &str = "CANARY-EXTRA-TEMPLATE-51be02";
const CA_CANARY: &str = "CANARYCABYTESd41e0b77";
const BEARER_CANARY: &str = "CANARY-BEARER-TOKEN-2c9d";
const USERINFO_CANARY: &str = "CANARY-USERINFO-TOKEN-8e1f";
const ENV_TOKEN_CANARY: &str = "CANARY-ENV-VAULT-TOKEN-a07c";
/// The injector's own setting, logged at startup on purpose: not a secret, though the patch
/// (`VAULT_ADDR`, the preStop `-address=`) holds it too.
const VAULT_ADDRESS: &str = "https://127.0.0.1:18200";

#[test]
fn no_secret_reaches_the_serve_logs() {
    for format in ["standard", "json"] {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start(dir.path(), format);
        let mut leaks = Leaks::default();
        let mut injected = 0;
        let mut configs = 0;
        for (name, pod) in fixtures() {
            let review = review(&pod);
            let reply = server.post(&review);
            let response = &reply["response"];
            if let Some(patch) = response["patch"].as_str() {
                injected += 1;
                leaks.add_secret(&format!("{name}: patch (base64)"), patch);
                let ops = STANDARD.decode(patch).unwrap();
                leaks.add_secret(
                    &format!("{name}: patch (JSON)"),
                    std::str::from_utf8(&ops).unwrap(),
                );
                let ops_text = String::from_utf8_lossy(&ops);
                // The canaries did reach the injector's output, so a log of it would show.
                assert!(
                    ops_text.contains(CA_CANARY),
                    "{name}: no CA bytes in the patch"
                );
                for config in vault_configs(&serde_json::from_slice(&ops).unwrap()) {
                    let decoded = String::from_utf8(STANDARD.decode(&config).unwrap()).unwrap();
                    // The exec agent's configuration has the variables' templates, not the
                    // file templates.
                    let canary = if decoded.contains("\"env_template\"") {
                        TEMPLATE_CANARY
                    } else {
                        EXTRA_TEMPLATE_CANARY
                    };
                    assert!(decoded.contains(canary), "{name}: {decoded}");
                    configs += 1;
                    leaks.add_secret(&format!("{name}: VAULT_CONFIG"), &config);
                }
            }
        }
        assert!(injected >= 20, "only {injected} fixtures were injected");
        assert!(configs >= 20, "only {configs} VAULT_CONFIGs");
        // A refused pod: its refusal is logged at warn.
        let refused = server.post(&review(&refusable_pod()));
        assert_eq!(refused["response"]["allowed"], false, "{refused}");
        let log = server.stop();
        if std::env::var_os("LOG_AUDIT_PRINT").is_some() {
            eprintln!("{log}");
        }
        assert!(
            log.contains("Request received") && log.contains("Pod refused"),
            "the log does not show the requests ({format}):\n{log}"
        );
        leaks.check(&log, &format!("serve, {format} format"));
    }
}

#[test]
fn each_review_is_logged_at_debug_with_namespace_pod_and_decision() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        dir.path(),
        "standard",
        &[("AGENT_INJECT_LOG_LEVEL", "debug")],
    );
    let mut plain = refusable_pod();
    plain["metadata"]["annotations"] = json!({});
    plain["metadata"]["name"] = json!("plain-pod");
    let mut injected = refusable_pod();
    injected["metadata"]["annotations"] = json!({
        "vault.hashicorp.com/agent-inject": "true",
        "vault.hashicorp.com/role": "app",
        "vault.hashicorp.com/agent-inject-template-x": format!("{{{{ {TEMPLATE_CANARY} }}}}"),
    });
    injected["metadata"].as_object_mut().unwrap().remove("name");
    injected["metadata"]["generateName"] = json!("web-5d8f7-");
    let mut refused = refusable_pod();
    refused["metadata"]["name"] = json!("refused-pod");
    for pod in [&plain, &injected, &refused] {
        server.post(&review(pod));
    }
    let log = server.stop();
    let line = |message: &str, pod: &str| {
        log.lines()
            .find(|l| l.contains(message) && l.contains(&format!("Pod={pod}")))
            .unwrap_or_else(|| panic!("no {message:?} line for {pod} in:\n{log}"))
            .to_owned()
    };
    let skipped = line("Not injecting", "plain-pod");
    assert!(
        skipped.contains("[DEBUG]") && skipped.contains("Namespace=apps"),
        "{skipped}"
    );
    assert!(
        skipped.contains("no vault.hashicorp.com/agent-inject annotation"),
        "{skipped}"
    );
    let done = line("Injected", "web-5d8f7-");
    assert!(
        done.contains("[DEBUG]") && done.contains("InjectionType=init_and_sidecar"),
        "{done}"
    );
    let no = line("Pod refused", "refused-pod");
    assert!(
        no.contains("[WARN]") && no.contains("Namespace=apps"),
        "{no}"
    );
    Leaks::default().check(&log, "decision logs");
}

#[test]
fn an_unreachable_vault_address_is_logged_with_the_address() {
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let address = format!("http://127.0.0.1:{closed}");
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        dir.path(),
        "standard",
        &[("AGENT_INJECT_VAULT_ADDR", &address)],
    );
    let deadline = Instant::now() + PATIENCE;
    while !std::fs::read_to_string(&server.log)
        .unwrap()
        .contains("not reachable")
    {
        assert!(Instant::now() < deadline, "no reachability warning");
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = server.stop();
    let line = log
        .lines()
        .find(|l| l.contains("The Vault address is not reachable from the injector"))
        .unwrap();
    assert!(line.contains("[WARN]") && line.contains(&address), "{line}");
    assert!(
        log.contains("Agents will reach Vault at this address"),
        "{log}"
    );
}

#[test]
fn an_unreachable_api_server_is_logged_with_its_address() {
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:{closed}\n    insecure-skip-tls-verify: true\nusers:\n- name: u\n  user:\n    token: not-a-secret\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\n"
        ),
    )
    .unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log_path = dir.path().join("serve.log");
    let file = std::fs::File::create(&log_path).unwrap();
    // Auto-TLS: the caBundle keeper talks to the API server from the start.
    let mut child = Command::new(BIN)
        .arg("serve")
        .env_clear()
        .env("AGENT_INJECT_VAULT_ADDR", "http://127.0.0.1:8200")
        .env("AGENT_INJECT_LISTEN", format!("127.0.0.1:{port}"))
        .env("AGENT_INJECT_TLS_AUTO", "vault-agent-injector-cfg")
        .env("AGENT_INJECT_TLS_AUTO_HOSTS", "127.0.0.1")
        .env("KUBECONFIG", &kubeconfig)
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .unwrap();
    let server = format!("https://127.0.0.1:{closed}");
    let deadline = Instant::now() + PATIENCE;
    let log = loop {
        let log = std::fs::read_to_string(&log_path).unwrap();
        if log.contains("could not update the caBundle") || Instant::now() > deadline {
            break log;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let line = log
        .lines()
        .find(|l| l.contains("could not update the caBundle"))
        .unwrap_or_else(|| panic!("no caBundle warning in:\n{log}"));
    assert!(line.contains(&server), "{line}");
    assert!(
        log.lines()
            .any(|l| l.contains("Using the Kubernetes API server") && l.contains(&server)),
        "{log}"
    );
}

#[test]
fn no_secret_reaches_the_render_logs() {
    let dir = tempfile::tempdir().unwrap();
    let mut pods = fixtures();
    pods.push(("refused".to_owned(), refusable_pod()));
    for format in ["standard", "json"] {
        for (name, pod) in &pods {
            let file = dir.path().join(format!("{name}.json"));
            std::fs::write(&file, serde_json::to_vec(&review(pod)).unwrap()).unwrap();
            let out = Command::new(BIN)
                .args(["render", "-f", file.to_str().unwrap(), "--output", "review"])
                .env_clear()
                .envs(server_env(format))
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.code().is_some_and(|c| c <= 1),
                "{name}: {stderr}"
            );
            let leaks = Leaks::default();
            // stdout is the review itself (the patch is the product, not a log); stderr is the
            // log and the refusal text.
            leaks.check(&stderr, &format!("render {name}, {format} format"));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Canaries

#[derive(Default)]
struct Leaks {
    /// (what, value) pairs no log may contain a 32-byte window of.
    secrets: Vec<(String, String)>,
}

impl Leaks {
    fn add_secret(&mut self, what: &str, value: &str) {
        self.secrets.push((what.to_owned(), value.to_owned()));
    }

    fn check(&self, log: &str, context: &str) {
        for canary in [
            TEMPLATE_CANARY,
            EXTRA_TEMPLATE_CANARY,
            CA_CANARY,
            BEARER_CANARY,
            USERINFO_CANARY,
            ENV_TOKEN_CANARY,
        ] {
            if let Some(line) = log.lines().find(|l| l.contains(canary)) {
                panic!("{context}: canary {canary} logged: {line}");
            }
        }
        // Base64 of the canaries too (a log of a base64 config or patch).
        for canary in [TEMPLATE_CANARY, EXTRA_TEMPLATE_CANARY, CA_CANARY] {
            for shift in 0..3 {
                let padded = format!("{}{canary}", "x".repeat(shift));
                let b64 = STANDARD.encode(padded);
                // The middle of the encoding does not depend on what precedes the canary.
                let core = &b64[4..b64.len() - 4];
                if let Some(line) = log.lines().find(|l| l.contains(core)) {
                    panic!("{context}: base64 of canary {canary} logged: {line}");
                }
            }
        }
        for (what, value) in &self.secrets {
            let bytes = value.as_bytes();
            if bytes.len() < 32 {
                continue;
            }
            for line in log.lines() {
                let line = line.replace(VAULT_ADDRESS, "<the Vault address>");
                // Windows every 16 bytes: any logged run of 48 bytes of the value is caught.
                for start in (0..=bytes.len() - 32).step_by(16) {
                    let window = &value[start..start + 32];
                    assert!(
                        !line.contains(window),
                        "{context}: {what} logged ({window:?}): {line}"
                    );
                }
            }
        }
    }
}

/// The golden fixtures, each with a canary appended to its templates and one canary template
/// more, and a `VAULT_TOKEN` canary in the first app container's environment.
fn fixtures() -> Vec<(String, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 15);
    files
        .into_iter()
        .map(|path| {
            let mut pod: Value =
                serde_yaml_ng::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            plant(&mut pod);
            (
                path.file_stem().unwrap().to_string_lossy().into_owned(),
                pod,
            )
        })
        .collect()
}

fn plant(pod: &mut Value) {
    if let Some(annotations) = pod["metadata"]["annotations"].as_object_mut() {
        let prefixes: Vec<&str> = ["vault.hashicorp.com/", "openbao.org/"]
            .into_iter()
            .filter(|p| annotations.contains_key(&format!("{p}agent-inject")))
            .collect();
        for (key, value) in annotations.iter_mut() {
            let is_template = ["vault.hashicorp.com/", "openbao.org/"].iter().any(|p| {
                key.strip_prefix(p).is_some_and(|k| {
                    (k.starts_with("agent-inject-template-")
                        && !k.starts_with("agent-inject-template-file"))
                        || k.starts_with("agent-inject-env-template-")
                })
            });
            if is_template && let Some(text) = value.as_str() {
                *value = json!(format!("{text}\n{{{{/* {TEMPLATE_CANARY} */}}}}"));
            }
        }
        if let Some(prefix) = prefixes.first() {
            annotations.insert(
                format!("{prefix}agent-inject-secret-canary"),
                json!("kv/data/canary"),
            );
            annotations.insert(
                format!("{prefix}agent-inject-template-canary"),
                json!(format!(
                    "{{{{ with secret \"kv/data/canary\" }}}}{EXTRA_TEMPLATE_CANARY}={{{{ .Data.data.password }}}}{{{{ end }}}}"
                )),
            );
        }
    }
    if let Some(c) = pod["spec"]["containers"][0].as_object_mut() {
        let env = c.entry("env").or_insert_with(|| json!([]));
        env.as_array_mut()
            .unwrap()
            .push(json!({"name": "VAULT_TOKEN", "value": ENV_TOKEN_CANARY}));
    }
}

/// A pod refused in validation (after parsing the templates) that carries the same canaries.
fn refusable_pod() -> Value {
    let mut pod = fixtures()
        .into_iter()
        .find(|(name, _)| name.starts_with("05-"))
        .unwrap()
        .1;
    pod["metadata"]["annotations"]["vault.hashicorp.com/role"] = json!("");
    pod
}

fn review(pod: &Value) -> Value {
    let namespace = pod["metadata"]["namespace"].as_str().unwrap_or("apps");
    support::review(pod.clone())
        .uid("5a1f0a3e-audit")
        .namespace(namespace)
        .user(json!({
            "username": "system:serviceaccount:apps:deployer",
            "extra": {"authentication.kubernetes.io/credential-id": [USERINFO_CANARY]}
        }))
        .build()
}

/// The `VAULT_CONFIG` of every container a patch adds, its continuations (`VAULT_CONFIG_1`...)
/// appended.
fn vault_configs(ops: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack: Vec<&Value> = ops
        .as_array()
        .unwrap()
        .iter()
        .map(|o| &o["value"])
        .collect();
    while let Some(v) = stack.pop() {
        match v {
            Value::Array(items) => stack.extend(items),
            Value::Object(map) => {
                if let Some(env) = map.get("env").and_then(Value::as_array) {
                    let config: String = env
                        .iter()
                        .filter(|e| {
                            e["name"]
                                .as_str()
                                .is_some_and(|n| n.starts_with("VAULT_CONFIG"))
                        })
                        .filter_map(|e| e["value"].as_str())
                        .collect();
                    if !config.is_empty() {
                        out.push(config);
                    }
                }
                stack.extend(map.values());
            }
            _ => {}
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The server

fn server_env(format: &str) -> Vec<(String, String)> {
    let ca = format!(
        "-----BEGIN CERTIFICATE-----\n{CA_CANARY}{}\n-----END CERTIFICATE-----\n",
        "A".repeat(44)
    );
    [
        ("AGENT_INJECT_VAULT_ADDR", VAULT_ADDRESS),
        ("AGENT_INJECT_LOG_LEVEL", "trace"),
        ("AGENT_INJECT_LOG_FORMAT", format),
        ("AGENT_INJECT_VAULT_CACERT_BYTES", &ca),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

struct Server {
    child: Child,
    port: u16,
    ca: Vec<CertificateDer<'static>>,
    log: PathBuf,
}

impl Server {
    fn start(dir: &Path, format: &str) -> Self {
        Self::start_with(dir, format, &[])
    }

    /// [`Server::start`] with more (or overriding) environment variables.
    fn start_with(dir: &Path, format: &str, extra: &[(&str, &str)]) -> Self {
        let certs = dir.join("certs");
        let out = Command::new(BIN)
            .args(["gen-certs", "--hosts", "127.0.0.1", "--out-dir"])
            .arg(&certs)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = dir.join("serve.log");
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(BIN)
            .arg("serve")
            .env_clear()
            .envs(server_env(format))
            .envs(extra.iter().copied())
            .env("AGENT_INJECT_LISTEN", format!("127.0.0.1:{port}"))
            .env("AGENT_INJECT_TLS_CERT_FILE", certs.join("tls.crt"))
            .env("AGENT_INJECT_TLS_KEY_FILE", certs.join("tls.key"))
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap();
        let ca = CertificateDer::pem_file_iter(certs.join("ca.crt"))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let server = Self {
            child,
            port,
            ca,
            log,
        };
        let deadline = Instant::now() + PATIENCE;
        while server.get_ready().is_err() {
            assert!(Instant::now() < deadline, "serve did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    fn request(&self, head: &str, body: &[u8]) -> std::io::Result<Vec<u8>> {
        let mut roots = rustls::RootCertStore::empty();
        for c in &self.ca {
            roots.add(c.clone()).unwrap();
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let conn = rustls::ClientConnection::new(
            Arc::new(config),
            ServerName::try_from("127.0.0.1").unwrap(),
        )
        .unwrap();
        let tcp = TcpStream::connect(("127.0.0.1", self.port))?;
        tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        tls.write_all(head.as_bytes())?;
        tls.write_all(body)?;
        let mut reply = Vec::new();
        match tls.read_to_end(&mut reply) {
            Ok(_) => {}
            // The server may close without close_notify after `Connection: close`.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !reply.is_empty() => {}
            Err(e) => return Err(e),
        }
        Ok(reply)
    }

    fn get_ready(&self) -> std::io::Result<()> {
        let reply = self.request(
            "GET /health/ready HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
            b"",
        )?;
        if reply.starts_with(b"HTTP/1.1 204") {
            Ok(())
        } else {
            Err(std::io::Error::other("not ready"))
        }
    }

    fn post(&self, review: &Value) -> Value {
        let body = serde_json::to_vec(review).unwrap();
        let head = format!(
            "POST /mutate?timeout=10s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
             Authorization: Bearer {BEARER_CANARY}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let reply = self.request(&head, &body).unwrap();
        let text = String::from_utf8(reply).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200"), "{head}\n{body}");
        // Small replies may be chunked; take the JSON between the first `{` and the last `}`.
        let json = &body[body.find('{').unwrap()..=body.rfind('}').unwrap()];
        serde_json::from_str(json).unwrap()
    }

    /// SIGTERM, wait, and the whole log.
    fn stop(mut self) -> String {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + PATIENCE;
        while self.child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        std::fs::read_to_string(&self.log).unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
