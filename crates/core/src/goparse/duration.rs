//! Go's `time.ParseDuration`, quirks included: fractions go through a `float64`, a running
//! total of exactly 2^64 wraps to zero, and both the micro sign and the Greek mu spell `µs`.
//!
//! The two Rust crates that port it (`go-duration`, `go-parse-duration`) were tried against the
//! table below and part from Go on plain inputs: the first rejects `0`, the second panics on
//! `+0`. So the port stays here.

use thiserror::Error;

use super::quote::time_quote;

/// Go's time.ParseDuration errors, with time's own quoting.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DurationError {
    /// Malformed or overflowing input; holds the whole input.
    #[error("time: invalid duration {}", time_quote(.0))]
    Invalid(String),
    /// A number with no unit after it; holds the whole input.
    #[error("time: missing unit in duration {}", time_quote(.0))]
    MissingUnit(String),
    /// A unit Go does not know.
    #[error("time: unknown unit {} in duration {}", time_quote(.unit), time_quote(.input))]
    UnknownUnit {
        /// The offending unit text.
        unit: String,
        /// The whole input.
        input: String,
    },
}

const NANOSECOND: u64 = 1;
const MICROSECOND: u64 = 1000 * NANOSECOND;
const MILLISECOND: u64 = 1000 * MICROSECOND;
const SECOND: u64 = 1000 * MILLISECOND;
const MINUTE: u64 = 60 * SECOND;
const HOUR: u64 = 60 * MINUTE;

fn duration_unit(unit: &str) -> Option<u64> {
    Some(match unit {
        "ns" => NANOSECOND,
        // Go accepts ASCII "us", MICRO SIGN and GREEK SMALL LETTER MU.
        "us" | "\u{b5}s" | "\u{3bc}s" => MICROSECOND,
        "ms" => MILLISECOND,
        "s" => SECOND,
        "m" => MINUTE,
        "h" => HOUR,
        _ => return None,
    })
}

/// Go's `leadingInt`: the leading digits as u64, failing once the value
/// passes 1<<63 (so it can still hold the magnitude of i64::MIN).
fn leading_int(s: &str) -> Option<(u64, &str)> {
    let end = s.bytes().take_while(u8::is_ascii_digit).count();
    let mut x: u64 = 0;
    for &c in &s.as_bytes()[..end] {
        if x > (1 << 63) / 10 {
            return None;
        }
        x = x * 10 + u64::from(c - b'0');
        if x > 1 << 63 {
            return None;
        }
    }
    Some((x, &s[end..]))
}

/// Go's `leadingFraction`: the leading digits as a numerator and a float
/// scale; on overflow it silently stops gaining precision instead of failing.
fn leading_fraction(s: &str) -> (u64, f64, &str) {
    let end = s.bytes().take_while(u8::is_ascii_digit).count();
    let mut x: u64 = 0;
    let mut scale = 1.0;
    let mut overflow = false;
    for &c in &s.as_bytes()[..end] {
        if overflow {
            continue;
        }
        if x > ((1 << 63) - 1) / 10 {
            overflow = true;
            continue;
        }
        let y = x * 10 + u64::from(c - b'0');
        if y > 1 << 63 {
            overflow = true;
            continue;
        }
        x = y;
        scale *= 10.0;
    }
    (x, scale, &s[end..])
}

/// A Go time.Duration in nanoseconds (i64), parsed by Go's time.ParseDuration rules.
pub fn parse_duration(s: &str) -> Result<i64, DurationError> {
    let invalid = || DurationError::Invalid(s.to_owned());
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: u64 = 0;
    while let Some(&first) = rest.as_bytes().first() {
        if !(first == b'.' || first.is_ascii_digit()) {
            return Err(invalid());
        }
        let before = rest.len();
        let (mut v, after_int) = leading_int(rest).ok_or_else(invalid)?;
        rest = after_int;
        let pre = before != rest.len();

        let (mut f, mut scale, mut post) = (0u64, 1.0f64, false);
        if let Some(after_dot) = rest.strip_prefix('.') {
            let (frac, frac_scale, after_frac) = leading_fraction(after_dot);
            post = after_dot.len() != after_frac.len();
            (f, scale, rest) = (frac, frac_scale, after_frac);
        }
        if !pre && !post {
            // No digits at all, e.g. ".s".
            return Err(invalid());
        }

        let unit_len = rest
            .bytes()
            .take_while(|&c| !(c == b'.' || c.is_ascii_digit()))
            .count();
        if unit_len == 0 {
            return Err(DurationError::MissingUnit(s.to_owned()));
        }
        let (unit_text, after_unit) = rest.split_at(unit_len);
        rest = after_unit;
        let unit = duration_unit(unit_text).ok_or_else(|| DurationError::UnknownUnit {
            unit: unit_text.to_owned(),
            input: s.to_owned(),
        })?;
        if v > (1 << 63) / unit {
            return Err(invalid());
        }
        v *= unit;
        if f > 0 {
            // Go uses float64 here; the cast truncates like Go's conversion.
            v += (f as f64 * (unit as f64 / scale)) as u64;
            if v > 1 << 63 {
                return Err(invalid());
            }
        }
        // Both terms are at most 1<<63, so Go's uint64 sum can wrap to zero
        // exactly when both are 1<<63; reproduce that rather than reject it.
        total = total.wrapping_add(v);
        if total > 1 << 63 {
            return Err(invalid());
        }
    }
    if neg {
        // -(1<<63) is i64::MIN; wrapping keeps Go's two's-complement result.
        return Ok((total as i64).wrapping_neg());
    }
    i64::try_from(total).map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::goparse::check;
    #[test]
    fn parse_duration_follows_go_units_signs_and_overflow() {
        let bad = |s| Err(s);
        check(
            parse_duration,
            &[
                ("0", Ok(0)),
                ("-0", Ok(0)),
                ("+0", Ok(0)),
                ("1h", Ok(3_600_000_000_000)),
                ("1.5h", Ok(5_400_000_000_000)),
                ("-1.5h", Ok(-5_400_000_000_000)),
                ("300ms", Ok(300_000_000)),
                ("2h45m", Ok(9_900_000_000_000)),
                ("1h1m1s", Ok(3_661_000_000_000)),
                ("5.5m", Ok(330_000_000_000)),
                (".5s", Ok(500_000_000)),
                ("1.s", Ok(1_000_000_000)),
                ("1ns", Ok(1)),
                ("1us", Ok(1000)),
                ("1\u{b5}s", Ok(1000)),
                ("1\u{3bc}s", Ok(1000)),
                ("1.9999999999ns", Ok(1)),
                ("0.1ns", Ok(0)),
                ("9223372036854775807ns", Ok(i64::MAX)),
                ("-9223372036854775808ns", Ok(i64::MIN)),
                ("2562047h", Ok(9_223_369_200_000_000_000)),
                // Fractions go through float64, so precision is lost as in Go.
                ("2562047.788015215h", Ok(9_223_372_036_854_774_000)),
                // Go's uint64 running total wraps to zero here and is accepted.
                ("9223372036854775808ns9223372036854775808ns", Ok(0)),
                ("", bad(r#"time: invalid duration """#)),
                ("x", bad(r#"time: invalid duration "x""#)),
                ("s", bad(r#"time: invalid duration "s""#)),
                ("-", bad(r#"time: invalid duration "-""#)),
                ("+", bad(r#"time: invalid duration "+""#)),
                (".s", bad(r#"time: invalid duration ".s""#)),
                ("-.s", bad(r#"time: invalid duration "-.s""#)),
                ("5", bad(r#"time: missing unit in duration "5""#)),
                ("1h5", bad(r#"time: missing unit in duration "1h5""#)),
                ("00", bad(r#"time: missing unit in duration "00""#)),
                ("1.5.5s", bad(r#"time: missing unit in duration "1.5.5s""#)),
                ("1d", bad(r#"time: unknown unit "d" in duration "1d""#)),
                ("1S", bad(r#"time: unknown unit "S" in duration "1S""#)),
                ("1 s", bad(r#"time: unknown unit " s" in duration "1 s""#)),
                (
                    "1\u{b5}",
                    bad(r#"time: unknown unit "\xc2\xb5" in duration "1\xc2\xb5""#),
                ),
                (
                    "1h\u{1}",
                    bad(r#"time: unknown unit "h\x01" in duration "1h\x01""#),
                ),
                (
                    "1h\"x\"",
                    bad(r#"time: unknown unit "h\"x\"" in duration "1h\"x\"""#),
                ),
                (
                    "9223372036854775808ns",
                    bad(r#"time: invalid duration "9223372036854775808ns""#),
                ),
                (
                    "-9223372036854775809ns",
                    bad(r#"time: invalid duration "-9223372036854775809ns""#),
                ),
                (
                    "18446744073709551616ns",
                    bad(r#"time: invalid duration "18446744073709551616ns""#),
                ),
                ("2562048h", bad(r#"time: invalid duration "2562048h""#)),
            ],
        );
    }
}
