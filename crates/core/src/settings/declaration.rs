//! What a setting declaration holds, the parsers a declaration names, and the macro that turns
//! the table (`table.rs`) into constants.

use std::collections::BTreeMap;

use super::table::SETTINGS;
use super::values::{SettingsError, Warnings};
use super::{Settings, bao_alias};
use crate::goparse::parse_bool;

/// How a setting's raw value is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Text (which a setting may still check, e.g. a log level).
    Text,
    /// Go `strconv.ParseBool`; as a flag it may be given bare (`-revoke-on-shutdown`).
    Bool,
    /// A base-10 integer.
    Int,
    /// A Go float.
    Float,
    /// A Go duration (`90s`, `1m30s`).
    Duration,
}

/// When a setting's value is checked, in upstream's startup order: first everything its
/// environment library parses (booleans, then integers, floats and durations), then the checks
/// its `main` runs one after the other. When several settings are bad, the message of the first
/// check is the one reported, as upstream reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// Nothing to check.
    Never,
    /// Go `strconv.ParseBool`.
    Bool,
    /// Go `strconv.ParseInt`.
    Int,
    /// Go `strconv.ParseFloat`.
    Float,
    /// Go durations, when set.
    Duration,
    /// The Vault address must be set.
    Required,
    /// `map` or `json`.
    DefaultTemplate,
    /// hclog's level names.
    LogLevel,
    /// Go's TLS version names.
    TlsVersion,
    /// Go's cipher-suite names.
    CipherSuites,
    /// `configmap` or `lease`.
    LeaderElection,
    /// `vault`, `bao` or `auto`.
    AgentBinary,
    /// A positive integer.
    RequestsInFlight,
    /// A duration, not negative.
    ShutdownDelay,
}

/// One declared setting. Build the typed value with [`super::Settings::resolve`]; the fields
/// here are for the CLI, the docs and the tests.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    /// Flag name without dashes; `None` for the env-only settings.
    pub flag: Option<&'static str>,
    /// The documented environment variable.
    pub env: &'static str,
    /// An undocumented name upstream's env library also reads when `env` is unset.
    pub alias: Option<&'static str>,
    /// Upstream's default, as the flag would hold it.
    pub default: &'static str,
    /// A valid value other than the default; the tests set it and expect [`Setting::field`] to
    /// change.
    pub example: &'static str,
    /// How the raw value is written.
    pub kind: Kind,
    /// When the value is checked.
    pub stage: Stage,
    /// The meaning, for `--help` (surrounding spaces trimmed by [`Setting::help`]).
    pub(super) help: &'static str,
    /// What the docs add after the default, in parentheses; empty for nothing.
    pub note: &'static str,
    /// The typed field it fills, e.g. `agent.image`.
    pub field: &'static str,
    /// Parses the raw value into the field.
    pub(super) store: fn(&mut Settings, &str, &mut Warnings) -> Result<(), SettingsError>,
    /// The field, printed with `Debug`, for the tests.
    pub(super) show: fn(&Settings) -> String,
}

impl Setting {
    /// One line for `--help`.
    pub fn help(&self) -> &'static str {
        self.help.trim()
    }

    /// The field this setting fills, printed with `Debug`: the tests compare it before and
    /// after setting [`Setting::example`].
    pub fn show(&self, settings: &Settings) -> String {
        (self.show)(settings)
    }

    /// Upstream's precedence: the default, then the flag when given, then the env var (or its
    /// alias, then its OpenBao name) when set and non-empty. `flags` is keyed by flag name.
    pub(super) fn raw_value(
        &self,
        flags: &BTreeMap<String, String>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<String, SettingsError> {
        let mut value = self.default.to_owned();
        if let Some(flag) = self.flag
            && let Some(given) = flags.get(flag)
        {
            if self.kind == Kind::Bool && parse_bool(given).is_err() {
                return Err(SettingsError::BoolFlag {
                    flag,
                    value: given.clone(),
                });
            }
            value = given.clone();
        }
        let set = |name: &str| env(name).filter(|v| !v.is_empty());
        let from_env = set(self.env)
            .or_else(|| self.alias.and_then(set))
            .or_else(|| bao_alias(self.env).and_then(|bao| set(&bao)));
        Ok(from_env.unwrap_or(value))
    }

    /// Parses `raw` into this setting's field of `settings`.
    pub(super) fn store(
        &self,
        settings: &mut Settings,
        raw: &str,
        warnings: &mut Warnings,
    ) -> Result<(), SettingsError> {
        (self.store)(settings, raw, warnings)
    }

    /// The table's cell for the default: the value, then the note in parentheses.
    fn default_cell(&self) -> String {
        let value = if self.stage == Stage::Required {
            "required".to_owned()
        } else if self.default.is_empty() {
            "empty".to_owned()
        } else {
            format!("`{}`", self.default)
        };
        if self.note.is_empty() {
            value
        } else {
            format!("{value} ({})", self.note)
        }
    }

    /// The table's cell for the meaning: the help line, then the other names read.
    fn what_cell(&self) -> String {
        let mut also: Vec<String> = self.alias.iter().map(|a| format!("`{a}`")).collect();
        if let Some(bao) = bao_alias(self.env) {
            also.push(format!("`{bao}`"));
        }
        let help = self.help();
        let help = help.strip_suffix('.').unwrap_or(help);
        if also.is_empty() {
            format!("{help}.")
        } else {
            format!("{help}. Also read from {}.", also.join(", then "))
        }
    }
}

/// The settings table of `docs/settings.md`, one row per declaration.
pub fn markdown_table() -> String {
    let mut out =
        String::from("| Flag | Environment variable | Default | What |\n|---|---|---|---|\n");
    for s in SETTINGS {
        let flag = s.flag.map_or("(none)".to_owned(), |f| format!("`-{f}`"));
        out.push_str(&format!(
            "| {flag} | `{}` | {} | {} |\n",
            s.env,
            s.default_cell(),
            s.what_cell().replace('|', "\\|")
        ));
    }
    out
}

/// A parser for one kind of value: how it is written, when it is checked, and the check.
pub(super) struct Parse<T> {
    pub(super) kind: Kind,
    pub(super) stage: Stage,
    pub(super) run: fn(&str, &mut Warnings) -> Result<T, SettingsError>,
}

/// The parsers the table names.
pub(super) mod parse {
    use super::super::values::{self as v, AgentBinarySetting, DefaultTemplate, PerPodId};
    use super::super::{LeaderElectionMode, LogLevel, TlsVersion};
    use super::{Kind, Parse, Stage};

    pub(in crate::settings) const TEXT: Parse<String> = Parse {
        kind: Kind::Text,
        stage: Stage::Never,
        run: v::text,
    };
    pub(in crate::settings) const LIST: Parse<Vec<String>> = Parse {
        kind: Kind::Text,
        stage: Stage::Never,
        run: v::list,
    };
    pub(in crate::settings) const JSON_FORMAT: Parse<bool> = Parse {
        kind: Kind::Text,
        stage: Stage::Never,
        run: v::json_format,
    };
    pub(in crate::settings) const RUN_AS_USER: Parse<PerPodId> = Parse {
        kind: Kind::Text,
        stage: Stage::Never,
        run: v::run_as_user,
    };
    pub(in crate::settings) const RUN_AS_GROUP: Parse<PerPodId> = Parse {
        kind: Kind::Text,
        stage: Stage::Never,
        run: v::run_as_group,
    };
    pub(in crate::settings) const BOOL: Parse<bool> = Parse {
        kind: Kind::Bool,
        stage: Stage::Bool,
        run: v::go_bool,
    };
    pub(in crate::settings) const INT: Parse<i64> = Parse {
        kind: Kind::Int,
        stage: Stage::Int,
        run: v::go_int,
    };
    pub(in crate::settings) const FLOAT: Parse<f64> = Parse {
        kind: Kind::Float,
        stage: Stage::Float,
        run: v::go_float,
    };
    pub(in crate::settings) const DURATION: Parse<String> = Parse {
        kind: Kind::Duration,
        stage: Stage::Duration,
        run: v::optional_duration,
    };
    pub(in crate::settings) const REQUIRED: Parse<String> = Parse {
        kind: Kind::Text,
        stage: Stage::Required,
        run: v::required,
    };
    pub(in crate::settings) const TEMPLATE: Parse<DefaultTemplate> = Parse {
        kind: Kind::Text,
        stage: Stage::DefaultTemplate,
        run: v::default_template,
    };
    pub(in crate::settings) const LOG_LEVEL: Parse<LogLevel> = Parse {
        kind: Kind::Text,
        stage: Stage::LogLevel,
        run: v::log_level,
    };
    pub(in crate::settings) const TLS_VERSION: Parse<TlsVersion> = Parse {
        kind: Kind::Text,
        stage: Stage::TlsVersion,
        run: v::tls_version,
    };
    pub(in crate::settings) const CIPHER_SUITES: Parse<Vec<String>> = Parse {
        kind: Kind::Text,
        stage: Stage::CipherSuites,
        run: v::cipher_suites,
    };
    pub(in crate::settings) const LEADER_ELECTION: Parse<LeaderElectionMode> = Parse {
        kind: Kind::Text,
        stage: Stage::LeaderElection,
        run: v::leader_election_mode,
    };
    pub(in crate::settings) const AGENT_BINARY: Parse<AgentBinarySetting> = Parse {
        kind: Kind::Text,
        stage: Stage::AgentBinary,
        run: v::agent_binary,
    };
    pub(in crate::settings) const IN_FLIGHT: Parse<usize> = Parse {
        kind: Kind::Int,
        stage: Stage::RequestsInFlight,
        run: v::requests_in_flight,
    };
    pub(in crate::settings) const SHUTDOWN_DELAY: Parse<std::time::Duration> = Parse {
        kind: Kind::Duration,
        stage: Stage::ShutdownDelay,
        run: v::shutdown_delay,
    };
}

/// The one value of an optional macro argument.
pub(super) const fn optional(given: &[&'static str]) -> Option<&'static str> {
    match given {
        [value] => Some(*value),
        _ => None,
    }
}

/// Declares each setting as a constant (its doc comment is its help line) and lists them all in
/// [`SETTINGS`]. The field is named once: it is both what the parser fills and what the tests
/// watch.
macro_rules! settings {
    ($(
        $(#[doc = $doc:literal])+
        $name:ident {
            $(flag: $flag:literal,)?
            env: $env:literal,
            $(alias: $alias:literal,)?
            default: $default:expr,
            example: $example:literal,
            $(note: $note:literal,)?
            parse: $parse:path => $($field:ident).+ $(,)?
        }
    )*) => {
        $(
            $(#[doc = $doc])+
            pub const $name: $crate::settings::Setting = $crate::settings::Setting {
                flag: $crate::settings::declaration::optional(&[$($flag)?]),
                env: $env,
                alias: $crate::settings::declaration::optional(&[$($alias)?]),
                default: $default,
                example: $example,
                kind: $parse.kind,
                stage: $parse.stage,
                help: concat!($($doc),+),
                note: concat!("" $(, $note)?),
                field: stringify!($($field).+),
                store: |settings, raw, warnings| {
                    settings.$($field).+ = ($parse.run)(raw, warnings)?;
                    Ok(())
                },
                show: |settings| format!("{:?}", settings.$($field).+),
            };
        )*

        /// Every setting of upstream vault-k8s v1.7.6 `agent-inject`, in upstream's flag order,
        /// then the ones beyond upstream.
        pub const SETTINGS: &[$crate::settings::Setting] = &[$($name),*];
    };
}

pub(super) use settings;
