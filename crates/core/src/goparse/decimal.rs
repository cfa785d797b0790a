//! The arbitrary-precision decimal behind the slow path of quantity parsing: what apimachinery
//! holds in an `inf.Dec`. Only the handful of operations that path needs (doubling, rounding up
//! to a billionth, the integer part, the canonical text) are written out, on a digit vector.

use super::quantity::QuantityFormat;

/// A non-negative decimal `digits × 10^exp`, as big as the text it was read from: what
/// apimachinery holds in an `inf.Dec` (the sign is kept apart, as it does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Decimal {
    /// Decimal digits, most significant first, no leading zeros (empty for zero).
    digits: Vec<u8>,
    pub(super) exp: i64,
}

impl Decimal {
    pub(super) fn from_integer(value: u128, exp: i64) -> Self {
        let digits = if value == 0 {
            Vec::new()
        } else {
            value.to_string().bytes().map(|b| b - b'0').collect()
        };
        Self { digits, exp }
    }

    /// The number part of a quantity (accepted by [`inf_dec_accepts`]), sign ignored.
    pub(super) fn from_text(text: &[u8]) -> Self {
        let text = text
            .strip_prefix(b"-")
            .or(text.strip_prefix(b"+"))
            .unwrap_or(text);
        let (int, frac) = match text.iter().position(|&c| c == b'.') {
            Some(dot) => (&text[..dot], &text[dot + 1..]),
            None => (text, &b""[..]),
        };
        let digits: Vec<u8> = int
            .iter()
            .chain(frac)
            .map(|c| c - b'0')
            .skip_while(|&d| d == 0)
            .collect();
        Self {
            digits,
            exp: -(frac.len() as i64),
        }
    }

    pub(super) fn is_zero(&self) -> bool {
        self.digits.is_empty()
    }

    pub(super) fn double(&mut self) {
        let mut carry = 0;
        for d in self.digits.iter_mut().rev() {
            let v = *d * 2 + carry;
            *d = v % 10;
            carry = v / 10;
        }
        if carry > 0 {
            self.digits.insert(0, carry);
        }
    }

    /// inf.Dec's `Round(x, 9, RoundUp)` on a non-negative amount.
    pub(super) fn round_up_to_nano(&mut self) {
        const NANO: i64 = -9;
        if self.is_zero() || self.exp >= NANO {
            return;
        }
        let cut = usize::try_from(NANO - self.exp).unwrap_or(usize::MAX);
        let keep = self.digits.len().saturating_sub(cut);
        let dropped_any = self.digits[keep..].iter().any(|&d| d != 0);
        self.digits.truncate(keep);
        self.exp = NANO;
        if dropped_any {
            // Add one at the last kept place.
            let mut i = self.digits.len();
            loop {
                if i == 0 {
                    self.digits.insert(0, 1);
                    break;
                }
                i -= 1;
                if self.digits[i] == 9 {
                    self.digits[i] = 0;
                } else {
                    self.digits[i] += 1;
                    break;
                }
            }
        }
        let leading = self.digits.iter().take_while(|&&d| d == 0).count();
        self.digits.drain(..leading);
    }

    /// Moves trailing zero digits into the exponent.
    fn normalize(&mut self) {
        while self.digits.last() == Some(&0) {
            self.digits.pop();
            self.exp += 1;
        }
    }

    /// The integer part, when it has at most 38 digits (`None` when larger).
    fn integer_part(&self) -> Option<u128> {
        let len = self.digits.len() as i64 + self.exp;
        if len <= 0 {
            return Some(0);
        }
        if len > 38 {
            return None;
        }
        let mut v: u128 = 0;
        for i in 0..len {
            let d = usize::try_from(i)
                .ok()
                .and_then(|i| self.digits.get(i))
                .copied()
                .unwrap_or(0);
            v = v * 10 + u128::from(d);
        }
        Some(v)
    }

    fn is_integer(&self) -> bool {
        let mut n = self.clone();
        n.normalize();
        n.exp >= 0 || n.is_zero()
    }

    pub(super) fn exceeds_i64(&self) -> bool {
        let max = i64::MAX.unsigned_abs().into();
        match self.integer_part() {
            None => true,
            Some(v) => v > max || (v == max && !self.is_integer()),
        }
    }

    /// Whether the amount is below `n`.
    pub(super) fn below(&self, n: u128) -> bool {
        self.integer_part().is_some_and(|v| v < n)
    }

    /// apimachinery's `CanonicalizeBytes`.
    pub(super) fn canonical(mut self, negative: bool, format: QuantityFormat) -> String {
        if self.is_zero() {
            return "0".to_owned();
        }
        let sign = if negative { "-" } else { "" };
        let binary = format == QuantityFormat::BinarySi && !self.below(1024) && self.is_integer();
        if binary {
            // Capped at 2^63-1 above (or an int64 to begin with), so it fits.
            let mut v = self.integer_part().unwrap_or_default();
            let mut times = 0;
            while v >= 1024 && v.is_multiple_of(1024) {
                v /= 1024;
                times += 1;
            }
            let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]
                .get(times)
                .copied()
                .unwrap_or_default();
            return format!("{sign}{v}{suffix}");
        }
        self.normalize();
        // The largest multiple of three not above the exponent.
        let exp3 = self.exp.div_euclid(3) * 3;
        let mut number: String = self.digits.iter().map(|d| char::from(b'0' + d)).collect();
        for _ in exp3..self.exp {
            number.push('0');
        }
        let suffix = match format {
            QuantityFormat::DecimalExponent if exp3 == 0 => String::new(),
            QuantityFormat::DecimalExponent => format!("e{exp3}"),
            _ => match exp3 {
                -9 => "n",
                -6 => "u",
                -3 => "m",
                3 => "k",
                6 => "M",
                9 => "G",
                12 => "T",
                15 => "P",
                18 => "E",
                _ => "",
            }
            .to_owned(),
        };
        format!("{sign}{number}{suffix}")
    }
}
