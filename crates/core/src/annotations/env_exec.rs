//! Secrets as environment variables (not upstream): `agent-inject-env-<VAR>` and
//! `agent-inject-env-template-<VAR>` declare the variables, the other `agent-inject-env-*` keys
//! say which container's process gets them and how it is restarted.
//!
//! The agent's process supervisor mode (`env_template` and `exec`) starts the command itself,
//! so the injector must know the whole command line: a container without `command` runs its
//! image's entrypoint, which the injector cannot read, and `agent-inject-env-command` stands in
//! for it. Refusals name the annotation and the value.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod};

use super::error::Problem;
use super::keys;
use super::read::{Written, dashed_key};
use super::request::{AgentRequest, EnvExec, EnvSecret, Restart};

/// `agent-inject-env-stop-signal` when absent (the agent's own default).
pub const DEFAULT_STOP_SIGNAL: &str = "SIGTERM";

/// The signal names the agent accepts for `exec.restart_stop_signal` (its table for Unix,
/// without `SIGNULL`, which would stop nothing).
pub const STOP_SIGNALS: &[&str] = &[
    "SIGABRT", "SIGALRM", "SIGBUS", "SIGCONT", "SIGFPE", "SIGHUP", "SIGILL", "SIGINT", "SIGIO",
    "SIGIOT", "SIGKILL", "SIGPIPE", "SIGPROF", "SIGQUIT", "SIGSEGV", "SIGSTOP", "SIGSYS",
    "SIGTERM", "SIGTRAP", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGUSR1", "SIGUSR2", "SIGWINCH",
    "SIGXCPU", "SIGXFSZ",
];

/// The single keys that share the `agent-inject-env-` prefix with the variables: a variable
/// cannot have one of these names.
const RESERVED: [&str; 4] = ["container", "command", "restart", "stop-signal"];

/// The `-` after which a variable's template key names the variable.
const TEMPLATE_INFIX: &str = "template-";

/// Whether `name` is a portable environment variable name: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Phase C: every `agent-inject-env-*` key. Values are checked whether or not a variable is
/// declared (a bad one is a mistake either way); the container and its command are required
/// only when one is.
pub(super) fn read(ann: &Written<'_>, pod: &Pod) -> Result<EnvExec, Problem> {
    let vars = variables(ann)?;
    let restart = match ann.get(keys::ENV_RESTART) {
        None => Restart::Always,
        Some(raw) => restart(raw)?,
    };
    let stop_signal = match ann.get(keys::ENV_STOP_SIGNAL) {
        None => DEFAULT_STOP_SIGNAL.to_owned(),
        Some(raw) => signal(raw)?,
    };
    let entrypoint = ann.get(keys::ENV_COMMAND).map(command).transpose()?;
    let containers = pod.spec.as_ref().map(|s| s.containers.as_slice());
    let containers = containers.unwrap_or_default();
    let named = ann.get(keys::ENV_CONTAINER);
    let container = match named {
        Some(name) => name.to_owned(),
        None => containers
            .first()
            .map(|c| c.name.clone())
            .unwrap_or_default(),
    };
    let wrapped = containers.iter().find(|c| c.name == container);
    let command = wrapped
        .map(|c| command_line(c, entrypoint.as_deref()))
        .unwrap_or_default();
    let exec = EnvExec {
        vars,
        container,
        command,
        restart,
        stop_signal,
    };
    if exec.is_on() {
        check_wrapped(&exec, wrapped, named, entrypoint.as_deref())?;
    }
    Ok(exec)
}

/// Phase D: what secrets as environment variables cannot honour. The agent in the wrapped
/// container reads a configuration the injector generates, and shares that container's
/// environment with the app, so neither a ConfigMap's configuration nor a proxy set through
/// the agent's environment can reach it without changing the app's.
pub(super) fn validate(r: &AgentRequest) -> Result<(), Problem> {
    let Some(first) = r.env_exec.vars.first() else {
        return Ok(());
    };
    let var = dashed_key(keys::ENV, &first.name);
    if !r.config_map.is_empty() {
        return Err(Problem::msg(format!(
            "{var} cannot be used in ConfigMap mode (annotation {}: {:?}): the agent that starts container {:?} needs the configuration the injector generates",
            keys::CONFIGMAP,
            r.config_map,
            r.env_exec.container
        )));
    }
    if !r.env.proxy_address.is_empty() {
        return Err(Problem::msg(format!(
            "{var} cannot be used with proxy address {:?} (annotation {} or -proxy-address): the agent would need HTTPS_PROXY in container {:?}, whose environment the app shares; set the annotation to \"\" and give the container HTTPS_PROXY yourself",
            r.env.proxy_address,
            keys::PROXY_ADDRESS,
            r.env_exec.container
        )));
    }
    Ok(())
}

/// The variables, sorted by name: every `agent-inject-env-<VAR>` and
/// `agent-inject-env-template-<VAR>` with a non-blank value (as blank secret keys declare no
/// secret upstream).
fn variables(ann: &Written<'_>) -> Result<Vec<EnvSecret>, Problem> {
    let mut vars: BTreeMap<&str, EnvSecret> = BTreeMap::new();
    for (suffix, value) in ann.suffixes(keys::ENV) {
        if RESERVED.contains(&suffix) || value.trim().is_empty() {
            continue;
        }
        let (name, is_template) = match suffix.strip_prefix(TEMPLATE_INFIX) {
            Some(name) => (name, true),
            None => (suffix, false),
        };
        if !is_env_name(name) {
            return Err(Problem::msg(format!(
                "invalid environment variable name {name:?} (annotation {}-{suffix}): it must match [A-Za-z_][A-Za-z0-9_]*",
                keys::ENV
            )));
        }
        let var = vars.entry(name).or_insert_with(|| EnvSecret {
            name: name.to_owned(),
            path: String::new(),
            template: String::new(),
        });
        if is_template {
            var.template = value.to_owned();
        } else {
            var.path = value.to_owned();
        }
    }
    Ok(vars.into_values().collect())
}

fn restart(raw: &str) -> Result<Restart, Problem> {
    match raw {
        "always" => Ok(Restart::Always),
        "never" => Ok(Restart::Never),
        other => Err(Problem::msg(format!(
            "invalid restart policy {other:?} (annotation {}; use always or never)",
            keys::ENV_RESTART
        ))),
    }
}

/// A signal name as the agent reads it: in any case, written back in upper case.
fn signal(raw: &str) -> Result<String, Problem> {
    let upper = raw.to_ascii_uppercase();
    if STOP_SIGNALS.contains(&upper.as_str()) {
        Ok(upper)
    } else {
        Err(Problem::msg(format!(
            "unknown signal {raw:?} (annotation {}; use a name such as SIGTERM, SIGINT, SIGQUIT, SIGHUP or SIGUSR1)",
            keys::ENV_STOP_SIGNAL
        )))
    }
}

/// `agent-inject-env-command`: a non-empty JSON array of strings whose first one names a program.
fn command(raw: &str) -> Result<Vec<String>, Problem> {
    let bad = |why: String| {
        Problem::msg(format!(
            "invalid command {raw:?} (annotation {}): {why}",
            keys::ENV_COMMAND
        ))
    };
    let words: Vec<String> = serde_json::from_str(raw).map_err(|e| {
        bad(format!(
            "want a JSON array of strings such as [\"/app/run\", \"--serve\"] ({e})"
        ))
    })?;
    if words.first().is_none_or(|w| w.trim().is_empty()) {
        return Err(bad("the first word must name a program".to_owned()));
    }
    Ok(words)
}

/// The command line the container runs, as Kubernetes builds it: `command` then `args`, with
/// `entrypoint` (the annotation) standing for the image's entrypoint when there is no
/// `command`. Empty when the container has no command and no entrypoint is given.
fn command_line(c: &Container, entrypoint: Option<&[String]>) -> Vec<String> {
    let own = c.command.as_deref().filter(|words| !words.is_empty());
    let Some(head) = own.or(entrypoint) else {
        return Vec::new();
    };
    let mut line = head.to_vec();
    line.extend(c.args.iter().flatten().cloned());
    line
}

/// The refusals of an active configuration: a container to wrap and one command to start.
fn check_wrapped(
    exec: &EnvExec,
    wrapped: Option<&Container>,
    named: Option<&str>,
    entrypoint: Option<&[String]>,
) -> Result<(), Problem> {
    let first = exec.vars.first().map_or("", |v| v.name.as_str());
    let Some(c) = wrapped else {
        return Err(Problem::msg(match named {
            Some(name) => format!(
                "container {name:?} to run with the environment variables is not among the pod's containers (annotation {}: {name:?})",
                keys::ENV_CONTAINER
            ),
            None => format!(
                "the pod has no container to run with the environment variables (annotation {}-{first})",
                keys::ENV
            ),
        }));
    };
    let own = c.command.as_deref().filter(|words| !words.is_empty());
    match (own, entrypoint) {
        (None, None) => {
            return Err(Problem::msg(format!(
                "container {:?} has no command, and the injector cannot read its image's entrypoint: set annotation {} to it, e.g. [\"/app/run\"] (the container's args follow it)",
                c.name,
                keys::ENV_COMMAND
            )));
        }
        (Some(own), Some(_)) => {
            return Err(Problem::msg(format!(
                "annotation {} stands for the image's entrypoint, but container {:?} has its own command {own:?}; remove one",
                keys::ENV_COMMAND,
                c.name
            )));
        }
        _ => {}
    }
    if exec.command.first().is_none_or(|w| w.trim().is_empty()) {
        return Err(Problem::msg(format!(
            "the command of container {:?} does not name a program: {:?}",
            c.name, exec.command
        )));
    }
    // The agent runs a command of one word holding white space through `sh -c`: a program
    // path with a space would become a shell line, in an image that may have no shell.
    if let [only] = exec.command.as_slice()
        && only.split_whitespace().nth(1).is_some()
    {
        return Err(Problem::msg(format!(
            "the command of container {:?} is the one word {only:?}, which the agent would run as a shell line (sh -c); give the program and its arguments as separate words",
            c.name
        )));
    }
    Ok(())
}
