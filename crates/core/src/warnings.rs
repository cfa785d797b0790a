//! Admission warnings (beyond upstream): the production failure modes of dynamic secrets that
//! an injected pod's annotations already reveal. Warnings never change the patch; the API server
//! shows them to whoever created the object (`kubectl` prints `Warning: ...`).
//!
//! Each warning is one short sentence that names the annotation to change.

use crate::annotations::{AgentRequest, Restart, Secret, keys};

/// Path segments of Vault/OpenBao secret engines that hand out leased, expiring credentials.
const LEASED_SEGMENTS: &[&str] = &["creds", "sts", "issue", "static-creds"];

/// Whether a Vault path reads leased credentials (`database/creds/app`, `aws/sts/deploy`, ...).
/// KV paths (`secret/data/...`, `kv/...`) are static.
pub fn is_dynamic_path(path: &str) -> bool {
    // The mount is the first segment and the role or name the last; the leased endpoint is one
    // of those in between.
    let mut segments = path.trim_matches('/').split('/').skip(1).peekable();
    while let Some(segment) = segments.next() {
        if segments.peek().is_some() && LEASED_SEGMENTS.contains(&segment) {
            return true;
        }
    }
    false
}

/// The Vault paths a secret reads: its `agent-inject-secret-*` path and every `secret "..."` call
/// in its inline template.
fn secret_paths(s: &Secret) -> Vec<&str> {
    paths_read(&s.path, &s.template)
}

/// The Vault paths of a path annotation and an inline template's `secret "..."` calls.
fn paths_read<'a>(path: &'a str, template: &'a str) -> Vec<&'a str> {
    let mut paths = Vec::new();
    if !path.is_empty() {
        paths.push(path);
    }
    let mut rest = template;
    while let Some(i) = rest.find("secret") {
        rest = &rest[i + "secret".len()..];
        let trimmed = rest.trim_start();
        if let Some(quoted) = trimmed.strip_prefix('"')
            && let Some(end) = quoted.find('"')
        {
            paths.push(&quoted[..end]);
        }
    }
    paths
}

/// Whether the injected pod's containers share one process namespace: the
/// `agent-share-process-namespace` annotation where the injector applies it (with the init
/// container or native sidecar), else the pod's own `spec.shareProcessNamespace`.
pub fn shares_process_namespace(pod_spec_value: Option<bool>, r: &AgentRequest) -> bool {
    match r.share_process_namespace {
        Some(share) if r.pre_populate || r.native_sidecar => share,
        _ => pod_spec_value == Some(true),
    }
}

/// Whether a shell command signals processes (`kill`, `pkill`, `killall`, by path or not).
/// Template commands run in the agent's container: without a shared process namespace the only
/// processes there are the agent's own (`kill -HUP 1` signals the agent itself).
fn signals_a_process(command: &str) -> bool {
    command
        .split(|c: char| c.is_whitespace() || ";&|()`$'\"".contains(c))
        .map(|word| word.rsplit('/').next().unwrap_or(word))
        .any(|word| matches!(word, "kill" | "pkill" | "killall"))
}

/// Warnings for an injected pod, in a fixed order. `shares_processes` is
/// [`shares_process_namespace`].
pub fn for_request(r: &AgentRequest, shares_processes: bool) -> Vec<String> {
    let mut out = Vec::new();
    let dynamic: Vec<&Secret> = r
        .secrets
        .iter()
        .filter(|s| secret_paths(s).into_iter().any(is_dynamic_path))
        .collect();
    let has_sidecar = !r.pre_populate_only;
    if !dynamic.is_empty() && r.pre_populate_only {
        out.push(format!(
            "{}: dynamic secret {} is rendered once by the init container only; nothing renews its lease, so it stops working when the lease expires",
            keys::PRE_POPULATE_ONLY,
            quoted(&dynamic[0].name)
        ));
    }
    // Sharing the process namespace reloads nothing by itself: without a command the app is
    // never told.
    if has_sidecar {
        for s in dynamic.iter().filter(|s| s.command.is_empty()) {
            out.push(format!(
                "{}-{}: dynamic secret {} rotates with no command to signal the app; it must re-read the file and recycle pooled connections before the lease expires",
                keys::COMMAND,
                s.raw_name,
                quoted(&s.name)
            ));
        }
    }
    if !shares_processes {
        for s in r.secrets.iter().filter(|s| signals_a_process(&s.command)) {
            out.push(format!(
                "{}-{}: the command signals a process, but the agent's container sees only its own (PID 1 is the agent); set {}: \"true\"",
                keys::COMMAND,
                s.raw_name,
                keys::SHARE_PROCESS_NAMESPACE
            ));
        }
    }
    // A native sidecar is the only agent (no init container), so there is no second lease.
    if !dynamic.is_empty() && r.pre_populate && has_sidecar && !r.native_sidecar && !r.cache.enable
    {
        out.push(format!(
            "{}: init container and sidecar each lease their own credentials without the agent cache; set it to \"true\" so the sidecar renews the lease the app started with",
            keys::CACHE_ENABLE
        ));
    }
    env_exec_warnings(r, &mut out);
    if r.vault.tls_skip_verify {
        out.push(format!(
            "{}: the agent does not verify Vault's certificate; mount the CA (tls-secret, ca-cert) instead",
            keys::TLS_SKIP_VERIFY
        ));
    }
    if r.set_security_context && r.run_as_user == 0 {
        out.push(format!(
            "{}: the agent containers run as root (uid 0); use a non-zero uid",
            keys::RUN_AS_USER
        ));
    }
    out
}

/// Secrets as environment variables (not upstream): what a change of a value does to the app.
fn env_exec_warnings(r: &AgentRequest, out: &mut Vec<String>) {
    let e = &r.env_exec;
    if !e.is_on() {
        return;
    }
    let dynamic = e.vars.iter().find_map(|v| {
        paths_read(&v.path, &v.template)
            .into_iter()
            .find(|p| is_dynamic_path(p))
            .map(|p| (v, p))
    });
    match (e.restart, dynamic) {
        (Restart::Always, _) => {
            out.push(format!(
                "{}: a changed secret restarts the process of container {:?}, interrupting its in-flight work: it must finish or hand over its work and exit on {} (it is killed 30 s later)",
                keys::ENV_RESTART,
                e.container,
                e.stop_signal
            ));
            if let Some((var, path)) = dynamic {
                out.push(format!(
                    "{}-{}: every new lease of dynamic secret {} restarts the app; the role's max TTL must be well above the time the app takes to start and drain, or it restarts over and over (the injector cannot see the TTL)",
                    keys::ENV,
                    var.name,
                    quoted(path)
                ));
            }
        }
        (Restart::Never, Some((var, path))) => out.push(format!(
            "{}: the process of container {:?} keeps {} from dynamic secret {} after a new lease replaces it, and those credentials stop working when their lease ends; use \"always\"",
            keys::ENV_RESTART,
            e.container,
            var.name,
            quoted(path)
        )),
        (Restart::Never, None) => {}
    }
    // The exec agent and the classic agents log in and read on their own: the same dynamic
    // path read by both hands out two different credentials.
    for v in &e.vars {
        let shared = paths_read(&v.path, &v.template)
            .into_iter()
            .find(|p| is_dynamic_path(p) && r.secrets.iter().any(|s| secret_paths(s).contains(p)));
        if let Some(path) = shared {
            out.push(format!(
                "{}-{}: dynamic secret {} is also rendered to a file, by another agent with a lease of its own: the variable and the file hold different credentials",
                keys::ENV,
                v.name,
                quoted(path)
            ));
        }
    }
}

fn quoted(name: &str) -> String {
    format!("{name:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leased_engine_paths_are_dynamic_and_kv_paths_are_not() {
        for p in [
            "database/creds/app",
            "aws/creds/deploy",
            "aws/sts/deploy",
            "team/db/creds/x",
            "pki/issue/web",
            "/database/creds/app",
        ] {
            assert!(is_dynamic_path(p), "{p}");
        }
        for p in [
            "secret/data/app",
            "kv/creds",
            "creds/x",
            "database/config/x",
            "",
            "kv/data/creds",
        ] {
            assert!(!is_dynamic_path(p), "{p}");
        }
    }

    #[test]
    fn commands_that_signal_processes_are_recognised() {
        for yes in [
            "kill -HUP 1",
            "/bin/kill -s HUP 1",
            "pkill -HUP nginx",
            "killall -USR1 app",
            "touch /tmp/x && kill -HUP $(cat /run/app.pid)",
            "sh -c 'kill -1 1'",
        ] {
            assert!(signals_a_process(yes), "{yes}");
        }
        for no in [
            "",
            "touch /tmp/reload",
            "curl -X POST localhost:8080/-/reload",
            "skill.sh",
            "killer",
        ] {
            assert!(!signals_a_process(no), "{no}");
        }
    }

    #[test]
    fn template_secret_calls_are_found() {
        let s = Secret {
            name: "db".into(),
            raw_name: "db".into(),
            path: String::new(),
            template: r#"{{- with secret "database/creds/web" -}}{{ .Data.username }}{{ end }}{{ with secret  "kv/data/x" }}{{ end }}"#.into(),
            template_file: String::new(),
            mount_path: "/vault/secrets".into(),
            command: String::new(),
            left_delimiter: String::new(),
            right_delimiter: String::new(),
            file: String::new(),
            perms: String::new(),
            error_on_missing_key: false,
        };
        assert_eq!(secret_paths(&s), ["database/creds/web", "kv/data/x"]);
    }
}
