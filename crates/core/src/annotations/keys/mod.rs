//! Every annotation key the injector reads (and the one it writes), declared once in
//! [`ALL`]: the key (or key family), what its value means, what its absence means, a
//! description and example values. Each declaration is also a `&str` constant with the full
//! key (`keys::ROLE` is `"vault.hashicorp.com/role"`), which the parser reads by. The
//! annotation table of `docs/annotations.md` is [`markdown_table`], and the tests draw their keys and values from
//! [`ALL`] and check each declaration against the parser: every key changes what is parsed,
//! every typed key refuses a malformed value naming itself, and every documented default is
//! what writing it would do.

use crate::settings::Setting;

/// The prefix of every key.
pub const PREFIX: &str = "vault.hashicorp.com/";

/// How a key is spelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// The key itself.
    Single,
    /// `<key>-<name>`, once per secret; `<name>` is the secret's name as written in its
    /// `agent-inject-secret-<name>` (or template) key.
    PerSecret,
    /// The key sets the value for every secret, and `<key>-<name>` for one secret.
    SingleAndPerSecret,
    /// `<key>-<param>`, any number of them, each one parameter of a configuration block
    /// (`-` in `<param>` becomes `_`). The list holds example parameters.
    Params(&'static [&'static str]),
    /// `<key>-<VAR>`, once per environment variable `<VAR>` of the wrapped container (a name
    /// matching `[A-Za-z_][A-Za-z0-9_]*`, its case kept).
    PerVariable,
}

/// What a value means, and how a bad one is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value {
    /// Go `strconv.ParseBool` spellings (`true`, `1`, `F`, ...); empty is false; anything else
    /// refuses the pod.
    Bool,
    /// Like [`Value::Bool`], but a bad value counts as false.
    LenientBool,
    /// A base-10 integer; empty is 0.
    Int,
    /// A base-10 unsigned integer.
    Uint,
    /// A Go float.
    Float,
    /// A Go duration (`1m30s`), or empty.
    Duration,
    /// A Kubernetes quantity (`250m`, `64Mi`); empty leaves the resource out.
    Quantity,
    /// An RFC 6902 JSON patch applied to the agent container; empty or `null` changes nothing.
    JsonPatch,
    /// JSON, or text when it does not parse as JSON.
    Json,
    /// A comma-separated list.
    List,
    /// `always` or `never`.
    Restart,
    /// A signal name (`SIGTERM`, `SIGINT`, ...), in any case.
    Signal,
    /// A JSON array of strings.
    Command,
    /// `map` or `json`, in any case.
    Template,
    /// Text, passed on as written.
    Text,
}

/// What an absent key means.
#[derive(Debug, Clone, Copy)]
pub enum Absent {
    /// Nothing is set: the empty value, false, 0, or the part left out.
    Nothing,
    /// The same as writing this value.
    Value(&'static str),
    /// The same as writing the injector setting's value.
    Setting(&'static Setting),
    /// Found from the pod or the request, as described.
    Computed(&'static str),
}

/// One declared annotation key or key family.
#[derive(Debug, Clone, Copy)]
pub struct Key {
    /// The full key, e.g. `vault.hashicorp.com/role`; a family's keys start with it and `-`.
    pub key: &'static str,
    /// How it is spelled.
    pub shape: Shape,
    /// What its value means.
    pub value: Value,
    /// What its absence means.
    pub absent: Absent,
    /// What it does (surrounding spaces trimmed by [`Key::doc`]).
    doc: &'static str,
    /// Well-formed values, including at least one that differs from the key's absence.
    pub examples: &'static [&'static str],
}

impl Key {
    /// What the key does.
    pub fn doc(&self) -> &'static str {
        self.doc.trim()
    }

    /// The key without [`PREFIX`].
    pub fn suffix(&self) -> &'static str {
        self.key.strip_prefix(PREFIX).unwrap_or(self.key)
    }

    /// The key as the docs write it: the suffix, with `-<name>` or `-<param>` for families.
    fn spelled(&self) -> String {
        let suffix = self.suffix();
        match self.shape {
            Shape::Single => format!("`{suffix}`"),
            Shape::PerSecret => format!("`{suffix}-<name>`"),
            Shape::SingleAndPerSecret => format!("`{suffix}`, `{suffix}-<name>`"),
            Shape::Params(_) => format!("`{suffix}-<param>`"),
            Shape::PerVariable => format!("`{suffix}-<VAR>`"),
        }
    }
}

impl Value {
    /// How the docs name it.
    fn spelled(self) -> &'static str {
        match self {
            Self::Bool => "bool",
            Self::LenientBool => "bool (bad = false)",
            Self::Int => "integer",
            Self::Uint => "unsigned integer",
            Self::Float => "float",
            Self::Duration => "duration",
            Self::Quantity => "quantity",
            Self::JsonPatch => "JSON patch",
            Self::Json => "JSON or text",
            Self::List => "comma list",
            Self::Restart => "`always` or `never`",
            Self::Signal => "signal name",
            Self::Command => "JSON array of strings",
            Self::Template => "`map` or `json`",
            Self::Text => "text",
        }
    }
}

impl Absent {
    /// How the docs write it: the value, or the setting and its default.
    fn spelled(self) -> String {
        match self {
            Self::Nothing => "unset".to_owned(),
            Self::Value(v) => format!("`{v}`"),
            Self::Setting(s) => {
                let name = match s.flag {
                    Some(flag) => format!("`-{flag}` (`{}`)", s.env),
                    None => format!("`{}`", s.env),
                };
                if s.stage == crate::settings::Stage::Required {
                    format!("setting {name}, which is required")
                } else if s.default.is_empty() {
                    format!("setting {name}, empty by default")
                } else {
                    format!("setting {name}, default `{}`", s.default)
                }
            }
            Self::Computed(words) => words.to_owned(),
        }
    }

    /// Whether writing `value` does what the absent key does, so it makes a poor example.
    fn is(self, value: &str) -> bool {
        match self {
            Self::Nothing => value.is_empty(),
            Self::Value(v) => v == value,
            Self::Setting(s) => s.default == value,
            Self::Computed(_) => false,
        }
    }
}

impl Key {
    /// The example the docs show: the first declared example that does something (not empty,
    /// not the default, not an empty patch).
    pub fn doc_example(&self) -> &'static str {
        let empty_patch = |e: &str| self.value == Value::JsonPatch && matches!(e, "[]" | "null");
        let telling = |e: &&&str| !(e.is_empty() || self.absent.is(e) || empty_patch(e));
        self.examples
            .iter()
            .find(telling)
            .or(self.examples.first())
            .copied()
            .unwrap_or_default()
    }

    /// The example as one annotation line, with a secret named `db` or the first example
    /// parameter for a family.
    fn example_line(&self) -> String {
        let suffix = self.suffix();
        let key = match self.shape {
            Shape::Single | Shape::SingleAndPerSecret => suffix.to_owned(),
            Shape::PerSecret => format!("{suffix}-db"),
            Shape::PerVariable => format!("{suffix}-DB_PASSWORD"),
            Shape::Params(params) => format!("{suffix}-{}", params.first().unwrap_or(&"param")),
        };
        let value = self.doc_example();
        // As a YAML manifest would hold it: double quotes, or single ones around JSON.
        let quoted = if value.contains('"') {
            format!("'{}'", value.replace('\'', "''"))
        } else {
            format!("\"{value}\"")
        };
        format!("`{key}: {quoted}`")
    }
}

/// The annotation table of `docs/annotations.md`, one row per declaration.
pub fn markdown_table() -> String {
    let mut out =
        String::from("| Annotation | Value | Default | Example | What |\n|---|---|---|---|---|\n");
    for k in ALL {
        let row = format!(
            "| {} | {} | {} | {} | {} |\n",
            k.spelled(),
            k.value.spelled(),
            k.absent.spelled(),
            k.example_line().replace('|', "\\|"),
            k.doc().replace('|', "\\|")
        );
        out.push_str(&row);
    }
    out
}

/// Declares each key as a `&str` constant (its doc comment is its description) and lists the
/// declarations in [`ALL`].
macro_rules! keys {
    ($(
        $(#[doc = $doc:literal])+
        $name:ident = $suffix:literal {
            $(shape: $shape:expr,)?
            value: $value:ident,
            absent: $absent:expr,
            examples: $examples:expr $(,)?
        }
    )*) => {
        $(
            $(#[doc = $doc])+
            pub const $name: &str = concat!("vault.hashicorp.com/", $suffix);
        )*

        /// Every declared key, in upstream's order, then the ones beyond upstream.
        pub const ALL: &[Key] = &[$(
            Key {
                key: $name,
                shape: shape!($($shape)?),
                value: Value::$value,
                absent: $absent,
                doc: concat!($($doc),+),
                examples: &$examples,
            }
        ),*];
    };
}

/// The shape given, or [`Shape::Single`].
macro_rules! shape {
    () => {
        Shape::Single
    };
    ($shape:expr) => {
        $shape
    };
}

mod table;

pub use table::*;
