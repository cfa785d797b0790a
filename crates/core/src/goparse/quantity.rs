//! Kubernetes `resource.Quantity`: apimachinery's `ParseQuantity` acceptance and errors, and
//! the canonical text it serialises a quantity to.
//!
//! The patch carries the canonical form byte for byte, and acceptance follows apimachinery's
//! scanner, which is laxer than the regular expression its error quotes. The tables below hold
//! apimachinery's own outputs (`10e300` and 21-digit integers among them), which takes
//! apimachinery's algorithm, ported here, rather than a general-purpose quantity crate.

use thiserror::Error;

use super::decimal::Decimal;
use super::strconv::int64_digits;

/// Kubernetes resource.Quantity parse errors, worded as apimachinery words them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum QuantityError {
    /// The text is not a number followed by suffix characters.
    #[error(
        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    )]
    FormatWrong,
    /// The numeric part could not be read.
    #[error("unable to parse numeric part of quantity")]
    Numeric,
    /// The suffix is not a known SI, binary-SI or exponent suffix.
    #[error("unable to parse quantity's suffix")]
    Suffix,
}

/// The pieces apimachinery's `parseQuantityString` splits a quantity into.
struct QuantityParts<'a> {
    /// Sign and number text before the suffix, for the arbitrary-precision path.
    value: &'a [u8],
    /// Integer digits without leading zeros ("0" when there are none).
    num: &'a [u8],
    /// Fraction digits.
    denom: &'a [u8],
    suffix: &'a [u8],
}

/// Characters apimachinery allows in the letter part of a suffix.
const SUFFIX_CHARS: &[u8] = b"eEinumkKMGTP";

/// apimachinery's `parseQuantityString`, which is laxer than the regular
/// expression in its error text (".", "+" and "1.G" all pass).
fn split_quantity(s: &[u8]) -> Result<QuantityParts<'_>, QuantityError> {
    let end = s.len();
    let mut pos = 0;
    if matches!(s.first(), Some(b'-' | b'+')) {
        pos += 1;
    }

    while pos < end && s[pos] == b'0' {
        pos += 1;
    }
    if pos >= end {
        // Only a sign and zeros: the value is zero and nothing else is read.
        return Ok(QuantityParts {
            value: b"0",
            num: b"0",
            denom: b"",
            suffix: b"",
        });
    }

    let digits_from =
        |from: usize| from + s[from..].iter().take_while(|c| c.is_ascii_digit()).count();
    let num_end = digits_from(pos);
    let mut num = &s[pos..num_end];
    if num_end >= end {
        return Ok(QuantityParts {
            value: s,
            num,
            denom: b"",
            suffix: b"",
        });
    }
    pos = num_end;
    if num.is_empty() {
        num = b"0";
    }

    let mut denom: &[u8] = b"";
    if s[pos] == b'.' {
        pos += 1;
        let denom_end = digits_from(pos);
        denom = &s[pos..denom_end];
        if denom_end >= end {
            return Ok(QuantityParts {
                value: s,
                num,
                denom,
                suffix: b"",
            });
        }
        pos = denom_end;
    }
    let value = &s[..pos];

    let suffix_start = pos;
    pos += s[pos..]
        .iter()
        .take_while(|c| SUFFIX_CHARS.contains(c))
        .count();
    if pos < end && matches!(s[pos], b'-' | b'+') {
        pos += 1;
    }
    pos = digits_from(pos);
    if pos < end {
        return Err(QuantityError::FormatWrong);
    }
    Ok(QuantityParts {
        value,
        num,
        denom,
        suffix: &s[suffix_start..],
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum QuantityFormat {
    DecimalExponent,
    BinarySi,
    DecimalSi,
}

/// apimachinery's `suffixHandler.interpret`: the exponent and format; the
/// base (2 for binary SI, else 10) only matters once a value is built.
fn interpret_suffix(suffix: &[u8]) -> Option<(i32, QuantityFormat)> {
    use QuantityFormat::{BinarySi, DecimalExponent, DecimalSi};
    let decimal = |e| Some((e, DecimalSi));
    let binary = |e| Some((e, BinarySi));
    match suffix {
        b"" => decimal(0),
        b"n" => decimal(-9),
        b"u" => decimal(-6),
        b"m" => decimal(-3),
        b"k" => decimal(3),
        b"M" => decimal(6),
        b"G" => decimal(9),
        b"T" => decimal(12),
        b"P" => decimal(15),
        b"E" => decimal(18),
        b"Ki" => binary(10),
        b"Mi" => binary(20),
        b"Gi" => binary(30),
        b"Ti" => binary(40),
        b"Pi" => binary(50),
        b"Ei" => binary(60),
        [b'e' | b'E', rest @ ..] if !rest.is_empty() => {
            // Go truncates the int64 to int32 here; `as` does the same.
            int64_digits(rest).ok().map(|e| (e as i32, DecimalExponent))
        }
        _ => None,
    }
}

/// gopkg.in/inf.v0 `Dec.SetString` acceptance: an optional leading sign, at
/// most one point, only digits otherwise, and at least one digit.
fn inf_dec_accepts(value: &[u8]) -> bool {
    let mut seen_any = false;
    let mut seen_dot = false;
    let mut seen_digit = false;
    for &c in value {
        match c {
            b'+' | b'-' if !seen_any && !seen_dot => {}
            b'.' if !seen_dot => seen_dot = true,
            b'0'..=b'9' => seen_digit = true,
            _ => return false,
        }
        seen_any |= c != b'.';
    }
    seen_digit
}

/// Kubernetes resource.Quantity validation with apimachinery ParseQuantity's rules and error texts.
pub fn parse_quantity(s: &str) -> Result<(), QuantityError> {
    canonical_quantity(s).map(|_| ())
}

/// The text a Kubernetes quantity serialises to (resource.Quantity's JSON form): what upstream's
/// containers hold once Go has encoded them, so what `agent-json-patch` operations see and what
/// the patch carries (`0.5` becomes `500m`, `1000m` becomes `1`, `1024Mi` becomes `1Gi`).
///
/// apimachinery keeps the text as written when its fast path reads it and finds it already in
/// canonical form by its own test (so `+1` and `01` stay as they are); otherwise the value is
/// written with the largest suffix that keeps it an integer, in the format of the suffix it was
/// written with (decimal SI, binary SI or exponent), after rounding up to a billionth and, for
/// binary SI, capping at 2^63-1. One quirk kept: a decimal SI value needing a suffix beyond
/// `E` (`1000E`) is written without any, as apimachinery writes it.
pub fn canonical_quantity(s: &str) -> Result<String, QuantityError> {
    if s.is_empty() {
        return Err(QuantityError::FormatWrong);
    }
    if s == "0" {
        return Ok(s.to_owned());
    }
    let negative = s.starts_with('-');
    let parts = split_quantity(s.as_bytes())?;
    let (exponent, format) = interpret_suffix(parts.suffix).ok_or(QuantityError::Suffix)?;

    // Go keeps these in int32 and lets them wrap; so do we.
    let digit_count = (parts.num.len() + parts.denom.len()) as i32;
    let mut scale = 0i32;
    let mut mantissa = 1i64;
    let precision = match format {
        QuantityFormat::DecimalExponent | QuantityFormat::DecimalSi => {
            scale = exponent;
            18i32.wrapping_sub(digit_count)
        }
        QuantityFormat::BinarySi if exponent >= 0 && parts.denom.is_empty() => {
            mantissa <<= exponent;
            // Roughly the decimal digits the binary multiplier uses up,
            // computed in float32 as Go does.
            let multiplier_digits = (exponent as f32 * 3.0 / 10.0) as i32;
            15i32
                .wrapping_sub(parts.num.len() as i32)
                .wrapping_sub(multiplier_digits)
                .wrapping_sub(1)
        }
        QuantityFormat::BinarySi => -1,
    };

    if precision >= 0 {
        scale = scale.wrapping_sub(parts.denom.len() as i32);
        if scale >= -9 {
            let shifted: Vec<u8> = [parts.num, parts.denom].concat();
            let value = int64_digits(&shifted).map_err(|_| QuantityError::Numeric)?;
            if int64_multiply_fits(value, mantissa) {
                // apimachinery's own test for "already canonical": the text is kept as is.
                let kept = match format {
                    QuantityFormat::BinarySi => exponent % 10 == 0 && value & 0x07 != 0,
                    _ => scale % 3 == 0 && !shifted.ends_with(b"000") && shifted[0] != b'0',
                };
                if kept {
                    return Ok(s.to_owned());
                }
                let magnitude = (i128::from(value) * i128::from(mantissa)).unsigned_abs();
                let amount = Decimal::from_integer(magnitude, i64::from(scale));
                return Ok(amount.canonical(negative, format));
            }
        }
    }
    // The arbitrary-precision path.
    if !inf_dec_accepts(parts.value) {
        return Err(QuantityError::Numeric);
    }
    let mut amount = Decimal::from_text(parts.value);
    let mut format = format;
    match format {
        QuantityFormat::BinarySi => {
            for _ in 0..exponent {
                amount.double();
            }
        }
        _ => amount.exp += i64::from(exponent),
    }
    // Anything non-zero is rounded up to the smallest representable amount, a billionth.
    amount.round_up_to_nano();
    if format == QuantityFormat::BinarySi {
        if amount.exceeds_i64() {
            amount = Decimal::from_integer(i64::MAX.unsigned_abs().into(), 0);
        }
        if !amount.is_zero() && amount.below(1) {
            format = QuantityFormat::DecimalSi;
        }
    }
    Ok(amount.canonical(negative, format))
}

/// apimachinery's `int64Multiply` success condition.
fn int64_multiply_fits(a: i64, b: i64) -> bool {
    if a == 0 || b == 0 || a == 1 || b == 1 {
        return true;
    }
    if a == i64::MIN || b == i64::MIN {
        return false;
    }
    a.checked_mul(b).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn parse_quantity_follows_apimachinery_not_its_regex() {
        use QuantityError::{FormatWrong, Numeric, Suffix};
        let ok = [
            "250m",
            "64Mi",
            "1G",
            "1e3",
            "0",
            "5.",
            ".5",
            "1.5Mi",
            "100M",
            "1E",
            "500M",
            "1Ki",
            "+1",
            "-1",
            "01",
            "-0",
            "000",
            "0.5n",
            "1k",
            "1e+3",
            "1E-3",
            "1.G",
            "1e-9",
            // The arbitrary-precision path takes these.
            "1e-10",
            "0.0000000001",
            "123456789012345678901",
            "8Ei",
            "9Ei",
            // The hand-written scanner is laxer than the regex it quotes.
            ".",
            "+",
            "-",
            "T",
            "Ki",
            "e5",
        ];
        for input in ok {
            assert_eq!(parse_quantity(input), Ok(()), "input {input:?}");
        }
        let bad = [
            ("500mi", Suffix),
            ("1K", Suffix),
            ("1ki", Suffix),
            ("1m5", Suffix),
            ("1e", Suffix),
            ("1e-", Suffix),
            ("1Gi+", Suffix),
            ("1.5Ki5", Suffix),
            ("1e9223372036854775808", Suffix),
            ("500gi", FormatWrong),
            ("128mb", FormatWrong),
            ("128g", FormatWrong),
            ("128gi", FormatWrong),
            ("abc", FormatWrong),
            ("1.2.3", FormatWrong),
            ("1 G", FormatWrong),
            (" 1", FormatWrong),
            ("", FormatWrong),
            (".e-10", Numeric),
            ("-e-10", Numeric),
            ("e-10", Numeric),
        ];
        for (input, want) in bad {
            assert_eq!(parse_quantity(input), Err(want), "input {input:?}");
        }
        assert_eq!(
            FormatWrong.to_string(),
            "quantities must match the regular expression \
             '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
        );
        assert_eq!(
            Numeric.to_string(),
            "unable to parse numeric part of quantity"
        );
        assert_eq!(Suffix.to_string(), "unable to parse quantity's suffix");
    }

    /// Expected values are what apimachinery (v0.34) writes into JSON for `ParseQuantity` of the
    /// input, taken from a Go program doing exactly that.
    #[test]
    fn canonical_quantities_are_what_apimachinery_serialises() {
        let cases = [
            // Already canonical by apimachinery's own test: kept as written.
            ("250m", "250m"),
            ("64Mi", "64Mi"),
            ("1Gi", "1Gi"),
            ("1500", "1500"),
            ("+1", "+1"),
            ("01", "01"),
            ("-1", "-1"),
            ("1e3", "1e3"),
            ("1E3", "1E3"),
            ("1023Ki", "1023Ki"),
            ("0", "0"),
            // Rewritten.
            ("0.5", "500m"),
            ("0.1", "100m"),
            (".5", "500m"),
            ("1000m", "1"),
            ("1000", "1k"),
            ("1.5k", "1500"),
            ("2000m", "2"),
            ("1.0", "1"),
            ("5.", "5."),
            ("1.G", "1.G"),
            ("1024Mi", "1Gi"),
            ("2048Ki", "2Mi"),
            ("1000Ki", "1000Ki"),
            ("1536Mi", "1536Mi"),
            ("1.5Gi", "1536Mi"),
            ("0.5Ki", "512"),
            ("1.5Ki", "1536"),
            ("-8Ki", "-8Ki"),
            ("-1024Mi", "-1Gi"),
            ("1e1", "10"),
            ("1.5e3", "1500"),
            ("1e-10", "1e-9"),
            ("0.0000000001", "1n"),
            ("1.5n", "2n"),
            ("0.5n", "1n"),
            ("1000k", "1M"),
            ("1000E", "1"),
            ("123456789012345678901", "123456789012345678901"),
            ("1000000000000000000000", "1"),
            ("9Ei", "9223372036854775807"),
            ("1024Ei", "9223372036854775807"),
            ("-0", "0"),
            ("000", "0"),
            ("0Ki", "0"),
            ("0.0001Ki", "102400u"),
            ("0.000001Mi", "1048576u"),
            ("8Ei", "9223372036854775807"),
            ("-0.5", "-500m"),
            ("-1.5Ki", "-1536"),
            ("1.5M", "1500k"),
            ("0.5m", "500u"),
            ("3000000", "3M"),
            ("100e-3", "100e-3"),
            ("1e+3", "1e+3"),
            (".", "0"),
            ("Ki", "0"),
            ("1.0001Ki", "1024102400u"),
            ("10e300", "10e300"),
            ("1.5e300", "1500e297"),
            ("100M", "100M"),
            ("1G", "1G"),
        ];
        for (input, want) in cases {
            assert_eq!(
                canonical_quantity(input).as_deref(),
                Ok(want),
                "input {input:?}"
            );
        }
        assert_eq!(canonical_quantity("lots"), Err(QuantityError::FormatWrong));
        assert_eq!(canonical_quantity("1K"), Err(QuantityError::Suffix));
    }
}
