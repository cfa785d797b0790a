#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io;
use std::sync::{Arc, Mutex};

use time::{Date, Month};

use super::*;

fn fixed_clock() -> OffsetDateTime {
    Date::from_calendar_date(2026, Month::January, 2)
        .unwrap()
        .with_hms_micro(3, 4, 5, 678_901)
        .unwrap()
        .assume_utc()
}

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl io::Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Runs `emit` under a subscriber with the given format and returns what it wrote.
fn capture(json: bool, emit: impl FnOnce()) -> String {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .event_format(HclogFormat::new(json).with_clock(fixed_clock))
        .with_writer(move || writer.clone())
        .with_max_level(LevelFilter::TRACE)
        .finish();
    tracing::subscriber::with_default(subscriber, emit);
    let bytes = buffer.0.lock().unwrap().clone();
    String::from_utf8(bytes).unwrap()
}

#[test]
fn standard_line_matches_hclog() {
    let out = capture(false, || {
        tracing::info!(target: "handler", Method = "POST", URL = "/mutate?timeout=30s", "Request received");
    });
    assert_eq!(
        out,
        "2026-01-02T03:04:05.678Z [INFO]  handler: Request received: Method=POST URL=/mutate?timeout=30s\n"
    );
}

#[test]
fn json_line_matches_hclog() {
    let out = capture(true, || {
        tracing::info!(target: "handler", Method = "POST", URL = "/mutate?timeout=30s", "Request received");
    });
    assert_eq!(
        out,
        "{\"@level\":\"info\",\"@message\":\"Request received\",\"@module\":\"handler\",\"@timestamp\":\"2026-01-02T03:04:05.678901Z\",\"Method\":\"POST\",\"URL\":\"/mutate?timeout=30s\"}\n"
    );
}

#[test]
fn standard_levels_are_padded_brackets() {
    let out = capture(false, || {
        tracing::trace!(target: "handler.certwatcher", "t");
        tracing::debug!(target: "handler", "d");
        tracing::warn!(target: "handler", "w");
        tracing::error!(target: "handler", "e");
    });
    let lines: Vec<&str> = out.lines().map(|l| &l[25..]).collect();
    assert_eq!(
        lines,
        [
            "[TRACE] handler.certwatcher: t",
            "[DEBUG] handler: d",
            "[WARN]  handler: w",
            "[ERROR] handler: e",
        ]
    );
}

#[test]
fn standard_values_are_quoted_like_hclog() {
    let out = capture(false, || {
        tracing::warn!(
            target: "handler",
            Empty = "",
            Spaced = "a b",
            Quoted = "say \"hi\"",
            Control = "bell\u{7}",
            Count = 3_i64,
            Flag = true,
            Code = 400_u64,
            "error on request"
        );
    });
    assert_eq!(
        &out[24..],
        " [WARN]  handler: error on request: Empty=\"\" Spaced=\"a b\" Quoted=\"say \\\"hi\\\"\" Control=\"bell\\a\" Count=3 Flag=true Code=400\n"
    );
}

#[test]
fn standard_multiline_values_are_indented() {
    let out = capture(false, || {
        tracing::error!(target: "handler", Error = "one\ntwo", "failed");
    });
    assert_eq!(
        &out[24..],
        " [ERROR] handler: failed:\n  Error=\n  | one\n  | two\n  \n"
    );
}

#[test]
fn display_and_error_fields_render_their_text() {
    let err = io::Error::other("disk on fire");
    let out = capture(false, || {
        tracing::warn!(target: "handler.certwatcher", Path = %"/etc/tls.crt", Error = &err as &(dyn std::error::Error + 'static), "error loading next cert");
    });
    assert!(
        out.ends_with(
            "handler.certwatcher: error loading next cert: Path=/etc/tls.crt Error=\"disk on fire\"\n"
        ),
        "{out}"
    );
}

#[test]
fn json_values_keep_their_types_and_escape_html() {
    let out = capture(true, || {
        tracing::error!(target: "handler", Code = 400_u64, Ok = false, Error = "<b>&", "error on request");
    });
    assert_eq!(
        out,
        "{\"@level\":\"error\",\"@message\":\"error on request\",\"@module\":\"handler\",\"@timestamp\":\"2026-01-02T03:04:05.678901Z\",\"Code\":400,\"Error\":\"\\u003cb\\u003e\\u0026\",\"Ok\":false}\n"
    );
    let parsed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(parsed["Error"], "<b>&");
}

#[test]
fn a_field_cannot_overwrite_the_hclog_keys() {
    let fields = Fields {
        message: "hello".into(),
        pairs: vec![("@level", Value::Str("spoofed".into()))],
    };
    let mut out = String::new();
    write_json(&mut out, fixed_clock(), Level::INFO, "handler", fields).unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(parsed["@level"], "info");
}

#[test]
fn dependencies_are_capped_at_info_and_ours_follow_the_level() {
    let trace = targets(LogLevel::Trace);
    assert!(trace.would_enable("handler.certwatcher", &Level::TRACE));
    assert!(trace.would_enable("vault_injector::server", &Level::TRACE));
    assert!(!trace.would_enable("h2::codec", &Level::DEBUG));
    assert!(trace.would_enable("h2::codec", &Level::INFO));

    let warn = targets(LogLevel::Warn);
    assert!(!warn.would_enable("handler", &Level::INFO));
    assert!(warn.would_enable("handler", &Level::WARN));
    assert!(!warn.would_enable("hyper", &Level::INFO));
}

#[test]
fn level_filters_follow_upstream_levels() {
    assert_eq!(level_filter(LogLevel::Trace), LevelFilter::TRACE);
    assert_eq!(level_filter(LogLevel::Info), LevelFilter::INFO);
    assert_eq!(level_filter(LogLevel::Error), LevelFilter::ERROR);
}
