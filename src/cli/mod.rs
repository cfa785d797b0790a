//! Command line: `serve` (alias `agent-inject`), `render`, `lint`, `gen-certs` and `version`,
//! with upstream's Go-style flags (`-name=value`, `-name value`, bare boolean `-name`) and its
//! env-over-flag precedence.
//!
//! Exit codes, the same for every subcommand: 0 success (help and version included); 2 a usage
//! error (an unknown flag, a missing or extra argument, a setting that fails validation, input
//! that cannot be read); 1 anything refused or failed (a refused pod, lint errors, a server that
//! stops on an error, certificates that cannot be written).

use std::collections::BTreeMap;

use clap::{Arg, ArgAction, ArgMatches, Command};

use crate::render::Output;
use crate::settings::{Kind, SETTINGS, Settings, SettingsError, table};

/// A parsed command line.
#[derive(Debug, Clone, PartialEq)]
pub enum Invocation {
    /// Run the webhook server.
    Serve(Box<Settings>),
    /// Render one object.
    Render {
        /// Resolved settings.
        settings: Box<Settings>,
        /// `-f FILE`; stdin when absent.
        file: Option<String>,
        /// `--namespace`.
        namespace: Option<String>,
        /// `--output`.
        output: Output,
        /// `--from-cluster`: the pod was read from a cluster; the API server's additions are
        /// already in it.
        from_cluster: bool,
    },
    /// Render every pod template of some manifests and report errors and warnings.
    Lint {
        /// Resolved settings.
        settings: Box<Settings>,
        /// `-f FILE` (repeatable); stdin when absent.
        files: Vec<String>,
        /// `--namespace`: overrides the objects' namespaces.
        namespace: Option<String>,
        /// `--strict`: warnings fail the run too.
        strict: bool,
    },
    /// Write a dev CA and a serving certificate for disk mode.
    GenCerts {
        /// `--hosts`: the serving certificate's SANs (IPs and DNS names).
        hosts: Vec<String>,
        /// `--out-dir`: where `ca.crt`, `tls.crt` and `tls.key` go.
        out_dir: String,
        /// `--days`: validity of the serving certificate.
        days: u32,
    },
    /// Print the version.
    Version,
}

/// A command line that cannot run.
#[derive(Debug)]
pub enum CliError {
    /// clap's own error (usage, help, version): print it; help and version exit 0, usage
    /// errors [`EXIT_USAGE`].
    Clap(clap::Error),
    /// Settings failed upstream's startup validation: print it, exit [`EXIT_USAGE`].
    Settings(SettingsError),
}

/// The exit code of a usage error, for every subcommand.
pub const EXIT_USAGE: u8 = 2;
/// The exit code of a refusal or a failure, for every subcommand.
pub const EXIT_FAILURE: u8 = 1;

/// The Vault address `lint` renders with when none is configured: lint checks manifests, not a
/// server, and nothing it reports depends on the address (the `.invalid` name never resolves).
pub const LINT_VAULT_ADDRESS: &str = "https://vault.invalid:8200";

/// The vault-k8s release whose annotations, settings and output this injector reproduces.
pub const COMPATIBLE_UPSTREAM: &str = "vault-k8s v1.7.6";

/// What `vault-injector version` prints: the version and the git commit it was built from
/// (`build.rs`), then the upstream release it replaces. `--version` prints only the version,
/// as clap writes it.
pub fn version_text() -> String {
    format!(
        "vault-injector {} (commit {})\ncompatible with {COMPATIBLE_UPSTREAM}\n",
        env!("CARGO_PKG_VERSION"),
        env!("VAULT_INJECTOR_COMMIT")
    )
}

/// The clap command, with every upstream setting as a flag of `serve` and `render`.
pub fn command() -> Command {
    let with_settings = |mut cmd: Command| {
        for s in SETTINGS {
            let Some(flag) = s.flag else { continue };
            let help = format!("{} [env {}] (default {:?})", s.help(), s.env, s.default);
            let mut arg = Arg::new(flag)
                .long(flag)
                .help(help)
                .help_heading("Injector settings");
            arg = if s.kind == Kind::Bool {
                arg.num_args(0..=1)
                    .require_equals(true)
                    .default_missing_value("true")
            } else {
                arg.num_args(1).allow_hyphen_values(true)
            };
            cmd = cmd.arg(arg.action(ArgAction::Set));
        }
        cmd
    };
    Command::new("vault-injector")
        .about("A drop-in Rust replacement for the Vault Agent Injector (hashicorp/vault-k8s)")
        .version(env!("CARGO_PKG_VERSION"))
        .subcommand_required(true)
        .subcommand(with_settings(
            Command::new("serve")
                .visible_alias("agent-inject")
                .about("Run the mutating admission webhook over HTTPS")
                // The stock chart passes `agent-inject 2>&1`; Go's flag parser stops at the
                // first positional argument and ignores the rest, so we accept and ignore them.
                .arg(
                    Arg::new("ignored")
                        .value_name("ARG")
                        .num_args(0..)
                        .trailing_var_arg(true)
                        .help("Ignored, with everything after it, as Go's flag parsing ignores them (the stock chart passes `2>&1`)"),
                ),
        ))
        .subcommand(with_settings(
            Command::new("render")
                .about("Print what the webhook would do to a Pod or AdmissionReview (JSON or YAML)")
                .arg(
                    Arg::new("input")
                        .value_name("FILE")
                        .conflicts_with("file")
                        .help("Input file (or -f FILE); stdin when neither is given"),
                )
                .arg(
                    Arg::new("file")
                        .short('f')
                        .long("file")
                        .value_name("FILE")
                        .help("Input file; stdin when absent"),
                )
                .arg(
                    Arg::new("namespace")
                        .long("namespace")
                        .value_name("NS")
                        .help("Request namespace (default: the object's, else `default`)"),
                )
                .arg(
                    Arg::new("output")
                        .long("output")
                        .short('o')
                        .value_parser(output_parser())
                        .default_value("pod")
                        .help("What to print"),
                )
                .arg(
                    Arg::new("from-cluster")
                        .long("from-cluster")
                        .action(ArgAction::SetTrue)
                        .help("The pod was read from a cluster (kubectl get -o yaml): do not add the ServiceAccount token volume and mounts the API server adds to a new pod"),
                ),
        ))
        .subcommand(with_settings(
            Command::new("lint")
                .about("Check the vault.hashicorp.com annotations of Pods and workload templates (Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs, CronJobs) offline: lint [FILE...] or -f FILE; stdin when none. No Vault address is needed")
                .arg(
                    Arg::new("files")
                        .value_name("FILE")
                        .num_args(0..)
                        .action(ArgAction::Append)
                        .help("Manifest files (multi-document YAML or JSON); stdin when none is given"),
                )
                .arg(
                    Arg::new("file")
                        .short('f')
                        .long("file")
                        .value_name("FILE")
                        .action(ArgAction::Append)
                        .help("Manifest file (multi-document YAML or JSON; repeatable); stdin when absent"),
                )
                .arg(
                    Arg::new("namespace")
                        .long("namespace")
                        .value_name("NS")
                        .help("Request namespace for every object (default: each object's, else `default`)"),
                )
                .arg(
                    Arg::new("strict")
                        .long("strict")
                        .action(ArgAction::SetTrue)
                        .help("Exit non-zero on warnings too"),
                ),
        ))
        .subcommand(
            Command::new("gen-certs")
                .about("Write a dev CA (ca.crt) and a serving certificate and key (tls.crt, tls.key) for AGENT_INJECT_TLS_CERT_FILE/KEY_FILE")
                .arg(
                    Arg::new("hosts")
                        .long("hosts")
                        .value_name("HOST,...")
                        .required(true)
                        .value_delimiter(',')
                        .help("Subject alternative names: IP addresses and DNS names, comma-separated"),
                )
                .arg(
                    Arg::new("out-dir")
                        .long("out-dir")
                        .value_name("DIR")
                        .default_value("certs/dev")
                        .help("Output directory (created if missing)"),
                )
                .arg(
                    Arg::new("days")
                        .long("days")
                        .value_name("N")
                        .value_parser(clap::value_parser!(u32).range(1..=3650))
                        .default_value("365")
                        .help("Validity of the serving certificate in days"),
                ),
        )
        .subcommand(Command::new("version").about(
            "Print the version, the git commit it was built from and the vault-k8s release it replaces",
        ))
}

/// Parses `args` (including the program name) against the environment lookup `env`.
pub fn parse(
    args: &[String],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Invocation, CliError> {
    let matches = command()
        .try_get_matches_from(normalize(args))
        .map_err(CliError::Clap)?;
    match matches.subcommand() {
        Some(("serve", m)) => Ok(Invocation::Serve(Box::new(settings(m, env)?))),
        Some(("render", m)) => Ok(Invocation::Render {
            settings: Box::new(settings(m, env)?),
            file: ["input", "file"]
                .iter()
                .find_map(|id| m.get_one::<String>(id).cloned()),
            namespace: m.get_one::<String>("namespace").cloned(),
            output: m.get_one::<Output>("output").copied().unwrap_or_default(),
            from_cluster: m.get_flag("from-cluster"),
        }),
        Some(("lint", m)) => Ok(Invocation::Lint {
            settings: Box::new(lint_settings(m, env)?),
            // `lint a.yaml b.yaml` as well as `lint -f a.yaml`.
            files: ["files", "file"]
                .iter()
                .flat_map(|id| m.get_many::<String>(id).into_iter().flatten().cloned())
                .collect(),
            namespace: m.get_one::<String>("namespace").cloned(),
            strict: m.get_flag("strict"),
        }),
        Some(("gen-certs", m)) => Ok(Invocation::GenCerts {
            hosts: m
                .get_many::<String>("hosts")
                .map(|v| v.cloned().collect())
                .unwrap_or_default(),
            out_dir: m.get_one::<String>("out-dir").cloned().unwrap_or_default(),
            days: m.get_one::<u32>("days").copied().unwrap_or(365),
        }),
        _ => Ok(Invocation::Version),
    }
}

fn settings(m: &ArgMatches, env: &dyn Fn(&str) -> Option<String>) -> Result<Settings, CliError> {
    Settings::resolve(&flag_values(m), env).map_err(CliError::Settings)
}

/// The settings for `lint`, which needs no Vault address: [`LINT_VAULT_ADDRESS`] stands in
/// when none is configured.
fn lint_settings(
    m: &ArgMatches,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Settings, CliError> {
    let mut flags = flag_values(m);
    match Settings::resolve(&flags, env) {
        Err(SettingsError::NoVaultAddress) => {
            if let Some(flag) = table::VAULT_ADDRESS.flag {
                flags.insert(flag.to_owned(), LINT_VAULT_ADDRESS.to_owned());
            }
            Settings::resolve(&flags, env).map_err(CliError::Settings)
        }
        other => other.map_err(CliError::Settings),
    }
}

fn flag_values(m: &ArgMatches) -> BTreeMap<String, String> {
    SETTINGS
        .iter()
        .filter_map(|s| s.flag)
        .filter_map(|f| m.get_one::<String>(f).map(|v| (f.to_owned(), v.clone())))
        .collect()
}

/// Rewrites Go-style flags for clap: `-name` becomes `--name` (single-letter flags stay short).
/// For `serve` (`agent-inject`) everything from the first positional argument (or `--`) on goes
/// after a `--`, into the ignored trailing argument, as Go's flag package stops parsing there
/// (the stock chart's `agent-inject 2>&1`). The other subcommands take files as arguments, and
/// flags after them are flags (`lint a.yaml --strict`); only `--` ends the flags there.
pub fn normalize(args: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut iter = args.iter();
    if let Some(program) = iter.next() {
        out.push(program.clone());
    }
    // The subcommand itself, plus any top-level flags before it.
    let mut subcommand = "";
    for arg in iter.by_ref() {
        out.push(arg.clone());
        if !arg.starts_with('-') {
            subcommand = arg;
            break;
        }
    }
    let go_positionals = matches!(subcommand, "serve" | "agent-inject");
    let command = command();
    let args = command
        .find_subcommand(subcommand)
        .map(|sub| sub.get_arguments().collect::<Vec<_>>())
        .unwrap_or_default();
    let mut passthrough = false;
    let mut expects_value = false;
    for arg in iter {
        if passthrough || expects_value {
            out.push(arg.clone());
            expects_value = false;
            continue;
        }
        let positional = !arg.starts_with('-') || arg == "-";
        if positional && !go_positionals {
            out.push(arg.clone());
            continue;
        }
        if arg == "--" || positional {
            // From here on clap must see positionals only, whatever they look like.
            passthrough = true;
            out.push("--".to_owned());
            if arg != "--" {
                out.push(arg.clone());
            }
            continue;
        }
        let body = arg.trim_start_matches('-');
        let name = body.split('=').next().unwrap_or_default();
        let rewritten = if name.chars().count() > 1 {
            format!("--{body}")
        } else {
            arg.clone()
        };
        if !body.contains('=') {
            expects_value = takes_separate_value(&args, name);
        }
        out.push(rewritten);
    }
    out
}

/// Whether `-name value` consumes the next argument, as the subcommand declares it: every
/// option that takes a value, except booleans, whose value must follow `=`.
fn takes_separate_value(args: &[&Arg], name: &str) -> bool {
    let mut chars = name.chars();
    let short = match (chars.next(), chars.next()) {
        (Some(c), None) => Some(c),
        _ => None,
    };
    args.iter()
        .find(|a| a.get_long() == Some(name) || (short.is_some() && a.get_short() == short))
        .is_some_and(|a| a.get_action().takes_values() && !a.is_require_equals_set())
}

/// `render -o`: the core's [`Output`] with the words and help `--help` shows.
fn output_parser() -> impl clap::builder::TypedValueParser<Value = Output> {
    use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser as _};
    PossibleValuesParser::new([
        PossibleValue::new("pod").help("The mutated Pod"),
        PossibleValue::new("patch").help("The RFC 6902 patch (`[]` when nothing is injected)"),
        PossibleValue::new("review").help("The AdmissionReview response"),
    ])
    .map(|word| match word.as_str() {
        "patch" => Output::Patch,
        "review" => Output::Review,
        _ => Output::Pod,
    })
}

#[cfg(test)]
mod tests;
