//! Go's `strconv` integer and boolean parsers, with `*strconv.NumError`'s wording.
//!
//! Rust's `str::parse` is close but not equal: Go parses the digits as an unsigned number first
//! and only then applies the sign, so `-9223372036854775809x` is a syntax error in Go (the
//! digits fit in a `uint64`, then `x` is met) and an overflow for `i64::from_str`. Which of the
//! two errors a user sees is part of the message, hence the hand-written scanner.

use thiserror::Error;

use super::quote::go_quote;

/// Go's `*strconv.NumError`, limited to the two failures base-10 parsing can hit.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NumError {
    /// The input is not a well-formed literal for the function.
    #[error("strconv.{func}: parsing {}: invalid syntax", go_quote(.input))]
    Syntax {
        /// Go function name, e.g. `ParseInt`.
        func: &'static str,
        /// The whole input, as Go reports it.
        input: String,
    },
    /// The input is well formed but does not fit the target type.
    #[error("strconv.{func}: parsing {}: value out of range", go_quote(.input))]
    Range {
        /// Go function name, e.g. `ParseInt`.
        func: &'static str,
        /// The whole input, as Go reports it.
        input: String,
    },
}

impl NumError {
    pub(super) fn syntax(func: &'static str, input: &str) -> Self {
        NumError::Syntax {
            func,
            input: input.to_owned(),
        }
    }

    pub(super) fn range(func: &'static str, input: &str) -> Self {
        NumError::Range {
            func,
            input: input.to_owned(),
        }
    }
}

/// Which of Go's sentinel errors a byte-level parser hit, before the caller
/// knows which function name and input text to report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fail {
    Syntax,
    Range,
}

/// Go strconv.ParseBool: only the twelve Go spellings are accepted.
pub fn parse_bool(s: &str) -> Result<bool, NumError> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(NumError::syntax("ParseBool", s)),
    }
}

/// Go's ParseUint(s, 10, 64) on bytes; reports overflow as soon as it
/// happens, so trailing garbage after an overflowing prefix is a range error.
fn uint64_digits(s: &[u8]) -> Result<u64, Fail> {
    if s.is_empty() {
        return Err(Fail::Syntax);
    }
    let mut n: u64 = 0;
    for &c in s {
        if !c.is_ascii_digit() {
            return Err(Fail::Syntax);
        }
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(c - b'0')))
            .ok_or(Fail::Range)?;
    }
    Ok(n)
}

/// Go's ParseInt(s, 10, 64) on bytes, so the quantity parser can reuse it.
pub(super) fn int64_digits(s: &[u8]) -> Result<i64, Fail> {
    let (neg, digits) = match s.split_first() {
        None => return Err(Fail::Syntax),
        Some((b'+', rest)) => (false, rest),
        Some((b'-', rest)) => (true, rest),
        Some(_) => (false, s),
    };
    // A range error from the unsigned parse still gets the signed range check,
    // which is what turns it into ParseInt's own range error.
    let un = match uint64_digits(digits) {
        Ok(un) => un,
        Err(Fail::Range) => u64::MAX,
        Err(Fail::Syntax) => return Err(Fail::Syntax),
    };
    const CUTOFF: u64 = 1 << 63;
    if neg {
        if un > CUTOFF {
            return Err(Fail::Range);
        }
        // Two's-complement negation maps 1<<63 to i64::MIN, as in Go.
        Ok((un as i64).wrapping_neg())
    } else if un >= CUTOFF {
        Err(Fail::Range)
    } else {
        Ok(un as i64)
    }
}

/// Go strconv.ParseInt(s, 10, 64).
pub fn parse_int64(s: &str) -> Result<i64, NumError> {
    int64_digits(s.as_bytes()).map_err(|f| match f {
        Fail::Syntax => NumError::syntax("ParseInt", s),
        Fail::Range => NumError::range("ParseInt", s),
    })
}

/// Go strconv.Atoi on a 64-bit platform: ParseInt's grammar, reported as `Atoi`.
pub fn atoi(s: &str) -> Result<i64, NumError> {
    int64_digits(s.as_bytes()).map_err(|f| match f {
        Fail::Syntax => NumError::syntax("Atoi", s),
        Fail::Range => NumError::range("Atoi", s),
    })
}

/// Go strconv.ParseUint(s, 10, 64): no sign is allowed, not even `+`.
pub fn parse_uint64(s: &str) -> Result<u64, NumError> {
    uint64_digits(s.as_bytes()).map_err(|f| match f {
        Fail::Syntax => NumError::syntax("ParseUint", s),
        Fail::Range => NumError::range("ParseUint", s),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::goparse::check;
    #[test]
    fn parse_bool_accepts_only_the_go_spellings() {
        let bad = |s| Err(s);
        check(
            parse_bool,
            &[
                ("1", Ok(true)),
                ("t", Ok(true)),
                ("T", Ok(true)),
                ("TRUE", Ok(true)),
                ("true", Ok(true)),
                ("True", Ok(true)),
                ("0", Ok(false)),
                ("f", Ok(false)),
                ("F", Ok(false)),
                ("FALSE", Ok(false)),
                ("false", Ok(false)),
                ("False", Ok(false)),
                ("", bad(r#"strconv.ParseBool: parsing "": invalid syntax"#)),
                (
                    "yes",
                    bad(r#"strconv.ParseBool: parsing "yes": invalid syntax"#),
                ),
                (
                    "tRuE",
                    bad(r#"strconv.ParseBool: parsing "tRuE": invalid syntax"#),
                ),
                (
                    " true",
                    bad(r#"strconv.ParseBool: parsing " true": invalid syntax"#),
                ),
                (
                    "true\n",
                    bad(r#"strconv.ParseBool: parsing "true\n": invalid syntax"#),
                ),
                (
                    "01",
                    bad(r#"strconv.ParseBool: parsing "01": invalid syntax"#),
                ),
            ],
        );
    }

    #[test]
    fn parse_int64_takes_an_optional_sign_and_decimal_digits_only() {
        let bad = |s| Err(s);
        check(
            parse_int64,
            &[
                ("0", Ok(0)),
                ("-0", Ok(0)),
                ("+5", Ok(5)),
                ("-1", Ok(-1)),
                ("007", Ok(7)),
                ("9223372036854775807", Ok(i64::MAX)),
                ("-9223372036854775808", Ok(i64::MIN)),
                ("", bad(r#"strconv.ParseInt: parsing "": invalid syntax"#)),
                (
                    "root",
                    bad(r#"strconv.ParseInt: parsing "root": invalid syntax"#),
                ),
                ("+", bad(r#"strconv.ParseInt: parsing "+": invalid syntax"#)),
                ("-", bad(r#"strconv.ParseInt: parsing "-": invalid syntax"#)),
                (
                    "--1",
                    bad(r#"strconv.ParseInt: parsing "--1": invalid syntax"#),
                ),
                (
                    " 1",
                    bad(r#"strconv.ParseInt: parsing " 1": invalid syntax"#),
                ),
                (
                    "1_000",
                    bad(r#"strconv.ParseInt: parsing "1_000": invalid syntax"#),
                ),
                (
                    "0x10",
                    bad(r#"strconv.ParseInt: parsing "0x10": invalid syntax"#),
                ),
                (
                    "1.0",
                    bad(r#"strconv.ParseInt: parsing "1.0": invalid syntax"#),
                ),
                ("١", bad(r#"strconv.ParseInt: parsing "١": invalid syntax"#)),
                (
                    "9223372036854775808",
                    bad(r#"strconv.ParseInt: parsing "9223372036854775808": value out of range"#),
                ),
                (
                    "-9223372036854775809",
                    bad(r#"strconv.ParseInt: parsing "-9223372036854775809": value out of range"#),
                ),
                // The digits fit in a uint64, so Go meets the bad byte before any range check
                // (Rust's `i64::from_str` reports an overflow here).
                (
                    "-9223372036854775809x",
                    bad(r#"strconv.ParseInt: parsing "-9223372036854775809x": invalid syntax"#),
                ),
                // Go reports the overflow before it ever sees the bad byte.
                (
                    "99999999999999999999x",
                    bad(r#"strconv.ParseInt: parsing "99999999999999999999x": value out of range"#),
                ),
            ],
        );
    }

    #[test]
    fn parse_uint64_rejects_signs() {
        let bad = |s| Err(s);
        check(
            parse_uint64,
            &[
                ("0", Ok(0)),
                ("01", Ok(1)),
                ("1000", Ok(1000)),
                ("18446744073709551615", Ok(u64::MAX)),
                (
                    "+5",
                    bad(r#"strconv.ParseUint: parsing "+5": invalid syntax"#),
                ),
                (
                    "-1",
                    bad(r#"strconv.ParseUint: parsing "-1": invalid syntax"#),
                ),
                (
                    "-0",
                    bad(r#"strconv.ParseUint: parsing "-0": invalid syntax"#),
                ),
                ("", bad(r#"strconv.ParseUint: parsing "": invalid syntax"#)),
                (
                    "1e3",
                    bad(r#"strconv.ParseUint: parsing "1e3": invalid syntax"#),
                ),
                (
                    "1 ",
                    bad(r#"strconv.ParseUint: parsing "1 ": invalid syntax"#),
                ),
                (
                    "18446744073709551616",
                    bad(r#"strconv.ParseUint: parsing "18446744073709551616": value out of range"#),
                ),
                (
                    "99999999999999999999x",
                    bad(
                        r#"strconv.ParseUint: parsing "99999999999999999999x": value out of range"#,
                    ),
                ),
            ],
        );
    }
}
