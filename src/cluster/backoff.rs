//! The one retry schedule of the I/O shells: a delay that grows by a factor up to a cap, spread
//! by jitter so that replicas retrying the same failure do not retry in step, and optionally
//! limited in number. Each caller names its schedule as a constant next to the code that
//! retries, with the reason for its numbers.
//!
//! A [`Backoff`] is a `backon` backoff builder, so a bounded retry is backon's `retry`
//! combinator around the call; its [`Delays`] also pace a kube watch stream
//! (`WatchStreamExt::backoff`), which resets them whenever the stream yields again.

use std::time::Duration;

/// An exponential schedule: `first`, then each delay the previous one times `factor`, never
/// above `max`; each delay handed out is then jittered. Build one with
/// [`Backoff::exponential`] and the `const` modifiers below.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    first: Duration,
    factor: f64,
    max: Duration,
    jitter: Jitter,
    ceiling: Duration,
    retries: Option<usize>,
}

/// How a delay is randomised.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Jitter {
    /// Not at all.
    None,
    /// Multiplied by a random factor in `[1 - f, 1 + f)` (the randomisation of Go's
    /// `cenkalti/backoff`, which upstream's retries use).
    Spread(f64),
    /// Lengthened by a random `[0, f)` of itself (client-go's `wait.Jitter`).
    Lengthen(f64),
}

impl Backoff {
    /// `first`, ×`factor` per retry, at most `max`; no jitter, no limit on retries.
    pub const fn exponential(first: Duration, factor: f64, max: Duration) -> Self {
        Self {
            first,
            factor,
            max,
            jitter: Jitter::None,
            ceiling: Duration::MAX,
            retries: None,
        }
    }

    /// Each delay multiplied by a random factor in `[1 - f, 1 + f)`: up to `max × (1 + f)`
    /// unless [`Self::never_above`] says otherwise.
    pub const fn spread(mut self, f: f64) -> Self {
        self.jitter = Jitter::Spread(f);
        self
    }

    /// Each delay lengthened by a random `[0, f)` of itself.
    pub const fn lengthened(mut self, f: f64) -> Self {
        self.jitter = Jitter::Lengthen(f);
        self
    }

    /// No delay, jitter included, above `ceiling`.
    pub const fn never_above(mut self, ceiling: Duration) -> Self {
        self.ceiling = ceiling;
        self
    }

    /// At most `n` delays (so `n + 1` attempts), then the retrying gives up.
    pub const fn retries(mut self, n: usize) -> Self {
        self.retries = Some(n);
        self
    }

    /// The delays, from the first.
    pub fn delays(self) -> Delays {
        Delays {
            schedule: self,
            next: self.first,
            given: 0,
        }
    }
}

impl backon::BackoffBuilder for Backoff {
    type Backoff = Delays;

    fn build(self) -> Delays {
        self.delays()
    }
}

/// The delays of one [`Backoff`], in order; [`Delays::reset`] starts again from the first.
#[derive(Debug, Clone)]
pub struct Delays {
    schedule: Backoff,
    next: Duration,
    given: usize,
}

impl Delays {
    /// Back to the first delay (after a success).
    pub fn reset(&mut self) {
        self.next = self.schedule.first;
        self.given = 0;
    }
}

impl Iterator for Delays {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let s = &self.schedule;
        if s.retries.is_some_and(|n| self.given >= n) {
            return None;
        }
        self.given += 1;
        let base = self.next.min(s.max);
        self.next = base.mul_f64(s.factor).min(s.max);
        let jittered = match s.jitter {
            Jitter::None => base,
            Jitter::Spread(f) => base.mul_f64(1.0 - f + 2.0 * f * random_fraction()),
            Jitter::Lengthen(f) => lengthen(base, f),
        };
        Some(jittered.min(s.ceiling))
    }
}

impl kube::runtime::utils::Backoff for Delays {
    fn reset(&mut self) {
        Delays::reset(self);
    }
}

/// `d` lengthened by a random `[0, f)` of itself: a fixed period that replicas should not
/// share (the Lease candidates' retry period).
pub fn lengthen(d: Duration, f: f64) -> Duration {
    d.mul_f64(1.0 + f * random_fraction())
}

/// A number in `[0, 1)` from the system random source (0 if it fails: jitter is not security).
fn random_fraction() -> f64 {
    use ring::rand::SecureRandom as _;
    let mut b = [0_u8; 4];
    if ring::rand::SystemRandom::new().fill(&mut b).is_err() {
        return 0.0;
    }
    f64::from(u32::from_le_bytes(b)) / (f64::from(u32::MAX) + 1.0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_millis((s * 1000.0) as u64)
    }

    #[test]
    fn without_jitter_the_delays_grow_by_the_factor_up_to_the_cap() {
        let d: Vec<Duration> = Backoff::exponential(secs(1.0), 2.0, secs(5.0))
            .delays()
            .take(5)
            .collect();
        assert_eq!(d, [1.0, 2.0, 4.0, 5.0, 5.0].map(secs));
    }

    #[test]
    fn retries_bound_the_delays_and_reset_starts_again() {
        let mut d = Backoff::exponential(secs(1.0), 2.0, secs(60.0))
            .retries(2)
            .delays();
        assert_eq!(d.next(), Some(secs(1.0)));
        assert_eq!(d.next(), Some(secs(2.0)));
        assert_eq!(d.next(), None);
        d.reset();
        assert_eq!(d.next(), Some(secs(1.0)));
    }

    #[test]
    fn a_spread_stays_within_its_fraction_around_the_delay() {
        let schedule = Backoff::exponential(secs(0.5), 1.5, secs(30.0)).spread(0.5);
        for _ in 0..20 {
            let mut base = 0.5_f64;
            for d in schedule.delays().take(15) {
                let d = d.as_secs_f64();
                assert!(
                    d >= base * 0.5 - 1e-9 && d < base * 1.5 + 1e-9,
                    "{d} vs {base}"
                );
                base = (base * 1.5).min(30.0);
            }
        }
    }

    #[test]
    fn the_ceiling_bounds_the_jittered_delay() {
        let schedule = Backoff::exponential(secs(60.0), 1.5, secs(60.0))
            .spread(0.5)
            .never_above(secs(60.0));
        assert!(schedule.delays().take(50).all(|d| d <= secs(60.0)));
    }

    #[test]
    fn lengthening_adds_at_most_its_fraction() {
        for _ in 0..100 {
            let d = lengthen(secs(10.0), 0.2);
            assert!(d >= secs(10.0) && d < secs(12.0), "{d:?}");
        }
        let schedule = Backoff::exponential(secs(16.0), 2.0, secs(16.0)).lengthened(0.2);
        assert!(
            schedule
                .delays()
                .take(50)
                .all(|d| d >= secs(16.0) && d < secs(19.2))
        );
    }
}
