//! Log output compatible with HashiCorp's hclog, which upstream uses, so log pipelines built
//! for upstream keep parsing it.
//!
//! Standard lines look like
//! `2026-01-02T03:04:05.678Z [INFO]  handler: Request received: Method=POST URL=/mutate`
//! and JSON lines like
//! `{"@level":"info","@message":"Request received","@module":"handler","@timestamp":"…","Method":"POST"}`.
//! The hclog logger name (`@module`) is the tracing target, so code logs with
//! `tracing::info!(target: "handler", …)` or `target: "handler.certwatcher"`.
//! Logs go to stderr, as hclog's do by default.

use std::collections::BTreeMap;
use std::fmt;

use thiserror::Error;
use time::OffsetDateTime;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;

use crate::settings::LogLevel;

/// The logger name of request handling, upstream's `handler`.
pub const HANDLER: &str = "handler";
/// The logger name of the certificate watcher, upstream's `handler.certwatcher`.
pub const CERT_WATCHER: &str = "handler.certwatcher";

/// Installing the global logger failed.
#[derive(Debug, Error)]
pub enum LoggingError {
    /// A global tracing subscriber was already installed (init called twice).
    #[error("could not install the logger: {0}")]
    Install(#[from] tracing::subscriber::SetGlobalDefaultError),
}

/// Installs the process-wide logger: hclog standard or JSON lines on stderr at `level`.
///
/// Our own events (targets `handler…` and `vault_injector…`) are filtered at `level`; events of
/// dependencies are capped at info so `-log-level=trace` does not drown the log in HTTP/2
/// frame traces.
pub fn init(level: LogLevel, json: bool) -> Result<(), LoggingError> {
    let subscriber = tracing_subscriber::fmt()
        .event_format(HclogFormat::new(json))
        .with_writer(std::io::stderr)
        // Filtering is done by `targets`; the builder's own default (info) would cut below it.
        .with_max_level(LevelFilter::TRACE)
        .finish()
        .with(targets(level));
    tracing::subscriber::set_global_default(subscriber)?;
    Ok(())
}

/// Which events are logged: ours at `level`, dependencies' at most at info.
fn targets(level: LogLevel) -> Targets {
    let ours = level_filter(level);
    Targets::new()
        .with_default(ours.min(LevelFilter::INFO))
        .with_target(HANDLER, ours)
        .with_target("vault_injector", ours)
}

/// The tracing filter for a validated upstream log level.
pub fn level_filter(level: LogLevel) -> LevelFilter {
    match level {
        LogLevel::Trace => LevelFilter::TRACE,
        LogLevel::Debug => LevelFilter::DEBUG,
        LogLevel::Info => LevelFilter::INFO,
        LogLevel::Warn => LevelFilter::WARN,
        LogLevel::Error => LevelFilter::ERROR,
    }
}

/// A [`FormatEvent`] writing hclog's standard or JSON line format.
#[derive(Debug, Clone, Copy)]
pub struct HclogFormat {
    json: bool,
    clock: fn() -> OffsetDateTime,
}

impl HclogFormat {
    /// The standard (`json == false`) or JSON format, stamped with the current UTC time.
    pub fn new(json: bool) -> Self {
        Self {
            json,
            clock: OffsetDateTime::now_utc,
        }
    }

    /// The same format with another clock, so tests can pin the timestamp.
    pub fn with_clock(mut self, clock: fn() -> OffsetDateTime) -> Self {
        self.clock = clock;
        self
    }
}

impl<S, N> FormatEvent<S, N> for HclogFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut fields = Fields::default();
        event.record(&mut fields);
        let now = (self.clock)();
        if self.json {
            write_json(&mut writer, now, *meta.level(), meta.target(), fields)
        } else {
            write_standard(&mut writer, now, *meta.level(), meta.target(), &fields)
        }
    }
}

/// One field value, kept typed so JSON can render numbers and booleans natively.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Str(String),
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
}

#[derive(Debug, Default)]
struct Fields {
    message: String,
    pairs: Vec<(&'static str, Value)>,
}

impl Fields {
    fn push(&mut self, field: &Field, value: Value) {
        if field.name() == "message" {
            self.message = match value {
                Value::Str(s) => s,
                other => render_plain(&other),
            };
        } else {
            self.pairs.push((field.name(), value));
        }
    }
}

impl Visit for Fields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.push(field, Value::F64(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field, Value::I64(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.push(field, Value::U64(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push(field, Value::Bool(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, Value::Str(value.to_owned()));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        // hclog logs `err.Error()`, the Display text.
        self.push(field, Value::Str(value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `%x` fields arrive here wrapped so that Debug prints their Display text.
        self.push(field, Value::Str(format!("{value:?}")));
    }
}

/// hclog's `_levelToBracket`: every bracket is padded to five letters.
fn bracket(level: Level) -> &'static str {
    match level {
        Level::TRACE => "[TRACE]",
        Level::DEBUG => "[DEBUG]",
        Level::INFO => "[INFO] ",
        Level::WARN => "[WARN] ",
        Level::ERROR => "[ERROR]",
    }
}

fn json_level(level: Level) -> &'static str {
    match level {
        Level::TRACE => "trace",
        Level::DEBUG => "debug",
        Level::INFO => "info",
        Level::WARN => "warn",
        Level::ERROR => "error",
    }
}

/// hclog's `logPlain`: `<time> <[LEVEL]> <name>: <msg>: k=v k=v`.
fn write_standard(
    w: &mut impl fmt::Write,
    now: OffsetDateTime,
    level: Level,
    module: &str,
    fields: &Fields,
) -> fmt::Result {
    // hclog's default `2006-01-02T15:04:05.000Z0700`, in UTC.
    write!(
        w,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z {} ",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        now.millisecond(),
        bracket(level),
    )?;
    match (module.is_empty(), fields.message.is_empty()) {
        (false, false) => write!(w, "{module}: {}", fields.message)?,
        (false, true) => w.write_str(module)?,
        (true, _) => w.write_str(&fields.message)?,
    }
    if !fields.pairs.is_empty() {
        w.write_char(':')?;
        for (key, value) in &fields.pairs {
            let raw_empty = matches!(value, Value::Str(s) if s.is_empty());
            let text = render_plain(value);
            if text.contains('\n') {
                write!(w, "\n  {key}=\n")?;
                write_indented(w, &text)?;
                w.write_str("  ")?;
            } else if raw_empty {
                write!(w, " {key}=\"\"")?;
            } else if needs_quoting(&text) {
                write!(w, " {key}=\"")?;
                write_escaped(w, &text, true)?;
                w.write_char('"')?;
            } else {
                write!(w, " {key}={text}")?;
            }
        }
    }
    w.write_char('\n')
}

fn render_plain(value: &Value) -> String {
    match value {
        Value::Str(s) => s.clone(),
        Value::I64(n) => n.to_string(),
        Value::U64(n) => n.to_string(),
        Value::F64(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
    }
}

/// hclog's `needsQuoting`: anything outside ASCII `-`..=`~` is quoted (spaces, quotes, `,`).
fn needs_quoting(s: &str) -> bool {
    s.chars().any(|c| !('-'..='~').contains(&c))
}

/// hclog's `writeIndent`: each line of a multi-line value prefixed with `  | `.
fn write_indented(w: &mut impl fmt::Write, s: &str) -> fmt::Result {
    let mut rest = s;
    loop {
        match rest.find('\n') {
            Some(nl) => {
                w.write_str("  | ")?;
                write_escaped(w, &rest[..nl], false)?;
                w.write_char('\n')?;
                rest = &rest[nl + 1..];
            }
            None => {
                if !rest.is_empty() {
                    w.write_str("  | ")?;
                    write_escaped(w, rest, false)?;
                    w.write_char('\n')?;
                }
                return Ok(());
            }
        }
    }
}

/// Go's `unicode.IsPrint`, approximated: no control characters and no whitespace but ' '.
fn is_print(c: char) -> bool {
    !c.is_control() && (c == ' ' || !c.is_whitespace())
}

/// hclog's `writeEscapedForOutput`: non-printable characters as Go escapes, so a value can
/// never break a log line apart.
fn write_escaped(w: &mut impl fmt::Write, s: &str, escape_quotes: bool) -> fmt::Result {
    for c in s.chars() {
        match c {
            '"' if escape_quotes => w.write_str("\\\"")?,
            c if is_print(c) => w.write_char(c)?,
            '\u{7}' => w.write_str("\\a")?,
            '\u{8}' => w.write_str("\\b")?,
            '\u{c}' => w.write_str("\\f")?,
            '\n' => w.write_str("\\n")?,
            '\r' => w.write_str("\\r")?,
            '\t' => w.write_str("\\t")?,
            '\u{b}' => w.write_str("\\v")?,
            c if (c as u32) < 0x20 => write!(w, "\\x{:02x}", c as u32)?,
            c if (c as u32) < 0x10000 => write!(w, "\\u{:04x}", c as u32)?,
            c => write!(w, "\\U{:08x}", c as u32)?,
        }
    }
    Ok(())
}

/// hclog's `logJSON`: one object with keys sorted (Go encodes maps sorted), HTML-escaped as
/// Go's encoder does by default.
fn write_json(
    w: &mut impl fmt::Write,
    now: OffsetDateTime,
    level: Level,
    module: &str,
    fields: Fields,
) -> fmt::Result {
    let mut map: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    for (key, value) in fields.pairs {
        let value = match value {
            Value::Str(s) => serde_json::Value::String(s),
            Value::I64(n) => n.into(),
            Value::U64(n) => n.into(),
            Value::F64(n) => serde_json::Number::from_f64(n)
                .map(serde_json::Value::Number)
                .unwrap_or_else(|| serde_json::Value::String(n.to_string())),
            Value::Bool(b) => b.into(),
        };
        map.insert(key.to_owned(), value);
    }
    // The hclog keys are inserted last so a field cannot overwrite them.
    map.insert("@message".into(), fields.message.into());
    map.insert("@level".into(), json_level(level).into());
    if !module.is_empty() {
        map.insert("@module".into(), module.into());
    }
    // hclog's `TimeFormatJSON`, `2006-01-02T15:04:05.000000Z07:00`, in UTC.
    map.insert(
        "@timestamp".into(),
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
            now.year(),
            u8::from(now.month()),
            now.day(),
            now.hour(),
            now.minute(),
            now.second(),
            now.microsecond(),
        )
        .into(),
    );
    let line = serde_json::to_string(&map).map_err(|_| fmt::Error)?;
    // These characters only ever occur inside JSON strings, so replacing them in the
    // serialized text is exactly Go's `SetEscapeHTML(true)`.
    for c in line.chars() {
        match c {
            '<' => w.write_str("\\u003c")?,
            '>' => w.write_str("\\u003e")?,
            '&' => w.write_str("\\u0026")?,
            '\u{2028}' => w.write_str("\\u2028")?,
            '\u{2029}' => w.write_str("\\u2029")?,
            c => w.write_char(c)?,
        }
    }
    w.write_char('\n')
}

#[cfg(test)]
mod tests;
