//! Go value-parsing semantics, reproduced with Go's exact error texts.
//!
//! The injector reads annotations and flags that the Go implementation parsed
//! with `strconv`, `time.ParseDuration` and apimachinery's `ParseQuantity`.
//! Users and scripts match on the resulting messages, and accept or reject
//! values by Go's rules, so both the grammar and the wording have to match
//! Go byte for byte. Everything here is pure (no I/O); each parser was
//! checked against the Go code it names on a few hundred thousand inputs, so
//! the tables below pin behaviour Go really has, quirks included.
//!
//! Each part sits in its own module, by the Go package it reproduces:
//! - `quote`: `strconv.Quote` and the `time` package's quoting, used in messages;
//! - `strconv`: `ParseBool`, `ParseInt`, `Atoi`, `ParseUint` with `*strconv.NumError`;
//! - `float`: `ParseFloat`;
//! - `duration`: `time.ParseDuration`;
//! - `quantity` and its `decimal`: apimachinery's `ParseQuantity` and canonical form.
//!
//! Only what has to reproduce Go's wording or Go's acceptance rules is written by hand. Where
//! Rust or a crate gives the same result it is used (a decimal float's rounding is Rust's
//! own); each module says which candidates were tried and where they part from Go.

mod decimal;
mod duration;
mod float;
mod quantity;
mod quote;
mod strconv;

pub use duration::{DurationError, parse_duration};
pub use float::parse_float64;
pub use quantity::{QuantityError, canonical_quantity, parse_quantity};
pub use quote::go_quote;
pub use strconv::{NumError, atoi, parse_bool, parse_int64, parse_uint64};

/// Runs a table of inputs against a parser, comparing successes by value
/// and failures by their full Display text.
#[cfg(test)]
fn check<T: Clone + PartialEq + std::fmt::Debug, E: std::fmt::Display>(
    parse: impl Fn(&str) -> Result<T, E>,
    cases: &[(&str, Result<T, &str>)],
) {
    for (input, want) in cases {
        let got = parse(input).map_err(|e| e.to_string());
        let want = want.clone().map_err(str::to_owned);
        assert_eq!(got, want, "input {input:?}");
    }
}
