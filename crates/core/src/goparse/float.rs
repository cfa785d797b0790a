//! Go's `strconv.ParseFloat(s, 64)`: Go's literal grammar (digit separators, hexadecimal
//! mantissas with a binary exponent, `inf`/`infinity`/`nan`) and its syntax-versus-range rules.
//!
//! Rounding a decimal literal is left to Rust's own parser, which rounds to nearest-even exactly
//! as Go does once it is given the digits Go keeps. The grammar stays hand-written: no parser
//! crate accepts exactly Go's set of literals, and a hexadecimal mantissa must be rounded the way
//! Go rounds it (`hexf-parse`, for one, refuses an inexact one instead).

use super::strconv::NumError;

/// Go strconv.ParseFloat(s, 64), including hex floats, digit separators and inf/infinity/nan.
pub fn parse_float64(s: &str) -> Result<f64, NumError> {
    let b = s.as_bytes();
    let syntax = || NumError::syntax("ParseFloat", s);
    if let Some((value, n)) = float_special(b) {
        return if n == b.len() {
            Ok(value)
        } else {
            Err(syntax())
        };
    }
    let lit = read_float(b).ok_or_else(syntax)?;
    // Go parses the longest valid prefix and only then rejects leftovers, so
    // "1e400x" is a syntax error rather than a range error.
    if lit.consumed != b.len() {
        return Err(syntax());
    }
    let value = if lit.hex {
        hex_float_bits(lit.mantissa, lit.exp, lit.neg, lit.trunc)
            .map(f64::from_bits)
            .ok_or_else(|| NumError::range("ParseFloat", s))?
    } else {
        decimal_to_f64(&lit)
    };
    if value.is_infinite() {
        return Err(NumError::range("ParseFloat", s));
    }
    Ok(value)
}

/// Go's `special`: an optionally signed "inf"/"infinity", or an unsigned "nan"
/// (Go does not accept "+nan"), as a prefix; returns the value and its length.
fn float_special(s: &[u8]) -> Option<(f64, usize)> {
    let (&first, _) = s.split_first()?;
    match first {
        b'+' | b'-' | b'i' | b'I' => {
            let (sign, rest) = match first {
                b'+' => (1.0, &s[1..]),
                b'-' => (-1.0, &s[1..]),
                _ => (1.0, s),
            };
            let nsign = s.len() - rest.len();
            let n = match common_prefix_len_ignore_case(rest, b"infinity") {
                // Anything between "inf" and "infinity" only consumes "inf".
                4..=7 => 3,
                n => n,
            };
            (n == 3 || n == 8).then_some((sign * f64::INFINITY, nsign + n))
        }
        b'n' | b'N' => (common_prefix_len_ignore_case(s, b"nan") == 3).then_some((f64::NAN, 3)),
        _ => None,
    }
}

fn common_prefix_len_ignore_case(s: &[u8], prefix: &[u8]) -> usize {
    s.iter()
        .zip(prefix)
        .take_while(|(c, p)| c.to_ascii_lowercase() == **p)
        .count()
}

/// What Go's `readFloat` learns about a float literal prefix, plus the
/// significant decimal digits its slow path (`decimal.set`) would keep.
struct FloatLit {
    mantissa: u64,
    exp: i64,
    neg: bool,
    trunc: bool,
    hex: bool,
    consumed: usize,
    /// Decimal only: significant digits, leading zeros dropped.
    digits: Vec<u8>,
    /// Decimal only: value is 0.`digits` * 10^`dp`.
    dp: i64,
}

/// Go's `readFloat`: scans the longest float literal prefix; `None` when the
/// prefix is not a valid literal at all.
fn read_float(s: &[u8]) -> Option<FloatLit> {
    let mut i = 0;
    let mut neg = false;
    match s.first()? {
        b'+' => i += 1,
        b'-' => {
            i += 1;
            neg = true;
        }
        _ => {}
    }

    let mut base: u64 = 10;
    let mut max_mant_digits = 19; // 10^19 fits in u64
    let mut exp_char = b'e';
    let mut hex = false;
    if i + 2 < s.len() && s[i] == b'0' && s[i + 1].eq_ignore_ascii_case(&b'x') {
        base = 16;
        max_mant_digits = 16; // 16^16 fits in u64
        i += 2;
        exp_char = b'p';
        hex = true;
    }

    let mut underscores = false;
    let mut sawdot = false;
    let mut sawdigits = false;
    let mut nd: i64 = 0;
    let mut nd_mant: i64 = 0;
    let mut dp: i64 = 0;
    let mut mantissa: u64 = 0;
    let mut trunc = false;
    let mut digits = Vec::new();
    while i < s.len() {
        let c = s[i];
        let d = match c {
            b'_' => {
                underscores = true;
                i += 1;
                continue;
            }
            b'.' if sawdot => break,
            b'.' => {
                sawdot = true;
                dp = nd;
                i += 1;
                continue;
            }
            b'0'..=b'9' => u64::from(c - b'0'),
            b'a'..=b'f' | b'A'..=b'F' if hex => u64::from(c.to_ascii_lowercase() - b'a' + 10),
            _ => break,
        };
        sawdigits = true;
        i += 1;
        // Leading zeros only move the point; letters are never zero.
        if d == 0 && nd == 0 && c == b'0' {
            dp -= 1;
            continue;
        }
        nd += 1;
        if !hex {
            digits.push(c);
        }
        if nd_mant < max_mant_digits {
            mantissa = mantissa * base + d;
            nd_mant += 1;
        } else if d != 0 {
            trunc = true;
        }
    }
    if !sawdigits {
        return None;
    }
    if !sawdot {
        dp = nd;
    }
    if hex {
        dp *= 4;
        nd_mant *= 4;
    }

    if i < s.len() && s[i].to_ascii_lowercase() == exp_char {
        i += 1;
        let esign = match s.get(i)? {
            b'+' => {
                i += 1;
                1
            }
            b'-' => {
                i += 1;
                -1
            }
            _ => 1,
        };
        if !s.get(i)?.is_ascii_digit() {
            return None;
        }
        let mut e: i64 = 0;
        while i < s.len() && (s[i].is_ascii_digit() || s[i] == b'_') {
            if s[i] == b'_' {
                underscores = true;
            } else if e < 10000 {
                // Go stops accumulating here: past 1e10000 the exact
                // exponent no longer changes the result.
                e = e * 10 + i64::from(s[i] - b'0');
            }
            i += 1;
        }
        dp += e * esign;
    } else if hex {
        // A hex mantissa must have a 'p' exponent.
        return None;
    }

    let exp = if mantissa != 0 { dp - nd_mant } else { 0 };
    if underscores && !underscore_ok(&s[..i]) {
        return None;
    }
    Some(FloatLit {
        mantissa,
        exp,
        neg,
        trunc,
        hex,
        consumed: i,
        digits,
        dp,
    })
}

/// Go's `underscoreOK`: underscores may only sit between digits, or between a
/// base prefix and a digit.
fn underscore_ok(s: &[u8]) -> bool {
    #[derive(PartialEq)]
    enum Saw {
        Start,
        Digit,
        Underscore,
        Other,
    }
    let s = match s.first() {
        Some(b'+' | b'-') => &s[1..],
        _ => s,
    };
    let mut saw = Saw::Start;
    let mut i = 0;
    let mut hex = false;
    if s.len() >= 2 && s[0] == b'0' && matches!(s[1].to_ascii_lowercase(), b'b' | b'o' | b'x') {
        i = 2;
        // The base prefix counts as a digit for separator purposes.
        saw = Saw::Digit;
        hex = s[1].eq_ignore_ascii_case(&b'x');
    }
    for &c in &s[i..] {
        if c.is_ascii_digit() || (hex && c.is_ascii_hexdigit()) {
            saw = Saw::Digit;
        } else if c == b'_' {
            if saw != Saw::Digit {
                return false;
            }
            saw = Saw::Underscore;
        } else {
            if saw == Saw::Underscore {
                return false;
            }
            saw = Saw::Other;
        }
    }
    saw != Saw::Underscore
}

/// Decimal literal to the nearest f64 (ties to even), which is what all of
/// Go's decimal paths compute; Rust's parser rounds identically, so it is fed
/// the digits and the (capped) exponent Go itself would use.
fn decimal_to_f64(lit: &FloatLit) -> f64 {
    let magnitude = if lit.digits.is_empty() {
        0.0
    } else {
        let mut text = String::with_capacity(lit.digits.len() + 24);
        text.push_str("0.");
        text.extend(lit.digits.iter().map(|&d| char::from(d)));
        text.push('e');
        text.push_str(&lit.dp.to_string());
        // The text is digits and an exponent by construction; a failure here
        // could only be a bug, and infinity turns it into a visible range error.
        text.parse::<f64>().unwrap_or(f64::INFINITY)
    };
    if lit.neg { -magnitude } else { magnitude }
}

/// Go's `atofHex` for float64: rounds the hex mantissa to 53 bits, ties to
/// even; `None` when the result overflows (Go's range error).
fn hex_float_bits(mut mantissa: u64, mut exp: i64, neg: bool, trunc: bool) -> Option<u64> {
    const MANT_BITS: u32 = 52;
    const EXP_BITS: u32 = 11;
    const BIAS: i64 = -1023;
    let max_exp = (1i64 << EXP_BITS) + BIAS - 2;
    let min_exp = BIAS + 1;
    exp += i64::from(MANT_BITS);

    // Normalise to a leading 1 followed by MANT_BITS bits and two rounding
    // bits, the lowest of which is sticky.
    while mantissa != 0 && mantissa >> (MANT_BITS + 2) == 0 {
        mantissa <<= 1;
        exp -= 1;
    }
    if trunc {
        mantissa |= 1;
    }
    while mantissa >> (1 + MANT_BITS + 2) != 0 {
        mantissa = (mantissa >> 1) | (mantissa & 1);
        exp += 1;
    }
    // Denormalise when the exponent is too small, keeping the sticky bit.
    while mantissa > 1 && exp < min_exp - 2 {
        mantissa = (mantissa >> 1) | (mantissa & 1);
        exp += 1;
    }

    let mut round = mantissa & 3;
    mantissa >>= 2;
    round |= mantissa & 1; // round half to even
    exp += 2;
    if round == 3 {
        mantissa += 1;
        if mantissa == 1 << (1 + MANT_BITS) {
            mantissa >>= 1;
            exp += 1;
        }
    }
    if mantissa >> MANT_BITS == 0 {
        // Denormal or zero.
        exp = BIAS;
    }
    if exp > max_exp {
        return None;
    }
    let mut bits = mantissa & ((1 << MANT_BITS) - 1);
    bits |= (((exp - BIAS) as u64) & ((1 << EXP_BITS) - 1)) << MANT_BITS;
    if neg {
        bits |= 1 << (MANT_BITS + EXP_BITS);
    }
    Some(bits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::goparse::check;
    #[test]
    fn parse_float64_follows_go_literal_syntax_and_rounding() {
        let ok = |bits: u64| Ok(bits);
        let bits = |s: &str| parse_float64(s).map(f64::to_bits);
        check(
            bits,
            &[
                ("0", ok(0)),
                ("-0", ok(0x8000_0000_0000_0000)),
                ("1", ok(1f64.to_bits())),
                ("+1.5", ok(1.5f64.to_bits())),
                (".5", ok(0.5f64.to_bits())),
                ("5.", ok(5f64.to_bits())),
                ("1e3", ok(1000f64.to_bits())),
                ("1E-3", ok(0.001f64.to_bits())),
                // Go's literal syntax allows digit separators in decimals too.
                ("1_000", ok(1000f64.to_bits())),
                ("1_23.50_0_0e+1_2", ok(1.235e14f64.to_bits())),
                ("0x1p-2", ok(0.25f64.to_bits())),
                ("0x_1p0", ok(1f64.to_bits())),
                ("0X1P+2", ok(4f64.to_bits())),
                ("0x1.8p1", ok(3f64.to_bits())),
                ("-0x1_ep-1", ok((-15f64).to_bits())),
                ("0x1p-1074", ok(1)),
                ("0x1p-1075", ok(0)),
                ("0x1.8p-1075", ok(1)),
                ("0x1.fffffffffffffp1023", ok(f64::MAX.to_bits())),
                ("1.7976931348623157e308", ok(f64::MAX.to_bits())),
                ("4.9e-324", ok(1)),
                ("1e-400", ok(0)),
                ("0e999999", ok(0)),
                ("inf", ok(f64::INFINITY.to_bits())),
                ("+Inf", ok(f64::INFINITY.to_bits())),
                ("-INFINITY", ok(f64::NEG_INFINITY.to_bits())),
                ("", Err(r#"strconv.ParseFloat: parsing "": invalid syntax"#)),
                (
                    "one-third",
                    Err(r#"strconv.ParseFloat: parsing "one-third": invalid syntax"#),
                ),
                (
                    ".",
                    Err(r#"strconv.ParseFloat: parsing ".": invalid syntax"#),
                ),
                (
                    "e5",
                    Err(r#"strconv.ParseFloat: parsing "e5": invalid syntax"#),
                ),
                (
                    "1e",
                    Err(r#"strconv.ParseFloat: parsing "1e": invalid syntax"#),
                ),
                (
                    "1e+",
                    Err(r#"strconv.ParseFloat: parsing "1e+": invalid syntax"#),
                ),
                (
                    "0x1",
                    Err(r#"strconv.ParseFloat: parsing "0x1": invalid syntax"#),
                ),
                (
                    "0x",
                    Err(r#"strconv.ParseFloat: parsing "0x": invalid syntax"#),
                ),
                (
                    "0x.p1",
                    Err(r#"strconv.ParseFloat: parsing "0x.p1": invalid syntax"#),
                ),
                (
                    "1__2",
                    Err(r#"strconv.ParseFloat: parsing "1__2": invalid syntax"#),
                ),
                (
                    "_1",
                    Err(r#"strconv.ParseFloat: parsing "_1": invalid syntax"#),
                ),
                (
                    "1_",
                    Err(r#"strconv.ParseFloat: parsing "1_": invalid syntax"#),
                ),
                (
                    "123._5e+12",
                    Err(r#"strconv.ParseFloat: parsing "123._5e+12": invalid syntax"#),
                ),
                (
                    "+nan",
                    Err(r#"strconv.ParseFloat: parsing "+nan": invalid syntax"#),
                ),
                (
                    "-nan",
                    Err(r#"strconv.ParseFloat: parsing "-nan": invalid syntax"#),
                ),
                (
                    "infin",
                    Err(r#"strconv.ParseFloat: parsing "infin": invalid syntax"#),
                ),
                (
                    "infinityx",
                    Err(r#"strconv.ParseFloat: parsing "infinityx": invalid syntax"#),
                ),
                (
                    "nanx",
                    Err(r#"strconv.ParseFloat: parsing "nanx": invalid syntax"#),
                ),
                (
                    " 1",
                    Err(r#"strconv.ParseFloat: parsing " 1": invalid syntax"#),
                ),
                (
                    "1,5",
                    Err(r#"strconv.ParseFloat: parsing "1,5": invalid syntax"#),
                ),
                (
                    "0b101",
                    Err(r#"strconv.ParseFloat: parsing "0b101": invalid syntax"#),
                ),
                (
                    "1e400x",
                    Err(r#"strconv.ParseFloat: parsing "1e400x": invalid syntax"#),
                ),
                (
                    "1e400",
                    Err(r#"strconv.ParseFloat: parsing "1e400": value out of range"#),
                ),
                (
                    "-1e400",
                    Err(r#"strconv.ParseFloat: parsing "-1e400": value out of range"#),
                ),
                (
                    "0x1p1024",
                    Err(r#"strconv.ParseFloat: parsing "0x1p1024": value out of range"#),
                ),
                (
                    "0x1.fffffffffffff8p1023",
                    Err(
                        r#"strconv.ParseFloat: parsing "0x1.fffffffffffff8p1023": value out of range"#,
                    ),
                ),
                (
                    "1.7976931348623159e308",
                    Err(
                        r#"strconv.ParseFloat: parsing "1.7976931348623159e308": value out of range"#,
                    ),
                ),
            ],
        );
        for nan in ["nan", "NaN", "nAn"] {
            assert!(parse_float64(nan).is_ok_and(f64::is_nan), "input {nan:?}");
        }
        // 2^53+1 is a tie between two floats: it rounds to even unless any
        // digit, however far out, breaks the tie.
        let tie = format!("9007199254740993.{}", "0".repeat(850));
        assert_eq!(parse_float64(&tie), Ok(9_007_199_254_740_992.0));
        assert_eq!(
            parse_float64(&format!("{tie}1")),
            Ok(9_007_199_254_740_994.0)
        );
    }
}
