//! The counter-to-gauge ("rate") transform of Panoptes, behind `rate(path, id, cumulative)`: the
//! caller observes a cumulative counter (bytes sent by an interface, requests served since start,
//! ...) and panoptic reports how fast it grows, per second.
//!
//! As in Panoptes, a rate is computed from the previous observation: `(value - previous) / dt`.
//! There is none for the first observation, when the time did not move forward (`dt <= 0`), or
//! when the previous observation is too old to say anything about now (`dt > 3 * interval`).
//! Every valid observation becomes the baseline of the next one, including those skipped for
//! their `dt`: after a gap or a clock stepped back, rates resume from the new point.
//!
//! Unlike Panoptes (which skips any decrease), a decrease is explained (see [`increase`]):
//! - **32-bit wrap**: `previous < 2^32` and `previous - value > 2^31`; the increase is
//!   `2^32 - previous + value`.
//! - **64-bit wrap**: otherwise, `previous < 2^64` and `previous - value > 2^63`; the increase is
//!   `2^64 - previous + value`.
//! - **reset** (the counter restarted from 0, e.g. its process restarted): any other decrease;
//!   the increase is `value` (counted from 0).
//!
//! Why this rule: a counter of `b` bits that went from `previous` to `value` moved forward
//! `(value - previous) mod 2^b`. Serial-number arithmetic (RFC 1982, as TCP sequence numbers)
//! takes a forward move of less than half the range, `2^(b-1)`, as the plausible reading; a
//! larger one is more likely a restart. So a wrap is only recognised from a previous value above
//! `2^(b-1)` to a value below it, with a forward distance under half the range; `b = 32` is tried
//! first because it is the smaller range (the common SNMP `Counter32`). The rule never yields a
//! negative increase, so a rate is always >= 0.
//!
//! Values are `f64` (JS numbers): exact up to 2^53. A 64-bit counter above that is rounded (to
//! 2048 near 2^63), and so are its increases; taking such counters exactly would need them as
//! `u64` (a JS BigInt).
//!
//! Per interval, a tracker reports the rate over the pairs it accepted in the interval (their
//! total increase over their total seconds): with one observation per interval, as Panoptes
//! polls, that is Panoptes' rate; with several, it is the counter's mean slope. Across processes
//! and threads rates merge by summing ([`RateStats::merge`]): each process's counter grows at its
//! own rate, the union grows at their sum.

use crate::bytes::DecodeError;

/// 2^31: half the range of a 32-bit counter.
const HALF32: f64 = 2_147_483_648.0;
/// 2^32: the range of a 32-bit counter.
const RANGE32: f64 = 4_294_967_296.0;
/// 2^63: half the range of a 64-bit counter.
const HALF64: f64 = 9_223_372_036_854_775_808.0;
/// 2^64: the range of a 64-bit counter.
const RANGE64: f64 = 18_446_744_073_709_551_616.0;

/// How a counter got from one observation to the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// It did not decrease.
    Increase,
    /// It wrapped around 2^32.
    Wrap32,
    /// It wrapped around 2^64.
    Wrap64,
    /// It restarted from 0.
    Reset,
}

/// The increase of a counter observed at `previous` then at `value` (both finite and >= 0), and
/// how it is read (the rule is in the module docs).
pub fn increase(previous: f64, value: f64) -> (f64, Change) {
    if value >= previous {
        (value - previous, Change::Increase)
    } else if previous < RANGE32 && previous - value > HALF32 {
        // Exact: both are integers (or close) below 2^32, far inside f64's 2^53.
        ((RANGE32 - previous) + value, Change::Wrap32)
    } else if previous < RANGE64 && previous - value > HALF64 {
        // `RANGE64 - previous` is exact (Sterbenz: previous > 2^63 = RANGE64 / 2).
        ((RANGE64 - previous) + value, Change::Wrap64)
    } else {
        (value, Change::Reset)
    }
}

/// Why an observation gave no rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// The first observation: nothing to compare with.
    First,
    /// The time did not move forward since the previous observation (`dt <= 0`).
    NotLater,
    /// The previous observation is more than three intervals old.
    Gap,
    /// The rate is too large for an f64 (a huge reset value over a tiny `dt`).
    Overflow,
}

/// What one observation gave.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Observation {
    /// A rate from the previous observation.
    Rate {
        /// Per second.
        rate: f64,
        /// The counter's increase since the previous observation.
        increase: f64,
        /// Seconds since the previous observation.
        seconds: f64,
        /// How the increase was read.
        change: Change,
    },
    /// No rate, for this reason; the observation is the new baseline.
    Skipped(Skip),
    /// Not a finite number >= 0 (or a non-finite time): ignored, the baseline is kept. The caller
    /// counts it as a dropped data point.
    Rejected,
}

/// The rate transform of one series in one process.
#[derive(Debug, Clone, PartialEq)]
pub struct RateTracker {
    interval_ms: f64,
    previous: Option<(f64, f64)>,
    increase: f64,
    seconds: f64,
}

/// What a tracker reports for an interval (and what travels to the master).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RateStats {
    /// Per second.
    pub rate: f64,
    /// The counter's increase behind the rate (over the interval's accepted pairs).
    pub increase: f64,
}

/// Bytes of an encoded [`RateStats`]: two f64.
pub const RATE_STATS_BYTES: usize = 16;

impl RateTracker {
    /// A tracker for an instance whose interval is `interval_ms`; `None` unless it is a positive
    /// finite number.
    pub fn new(interval_ms: f64) -> Option<RateTracker> {
        (interval_ms.is_finite() && interval_ms > 0.0).then_some(RateTracker {
            interval_ms,
            previous: None,
            increase: 0.0,
            seconds: 0.0,
        })
    }

    /// Observes the counter's cumulative `value` at `now_ms`.
    pub fn observe(&mut self, value: f64, now_ms: f64) -> Observation {
        if !(value.is_finite() && value >= 0.0 && now_ms.is_finite()) {
            return Observation::Rejected;
        }
        let Some((previous, at)) = self.previous.replace((value, now_ms)) else {
            return Observation::Skipped(Skip::First);
        };
        let dt = now_ms - at;
        if dt <= 0.0 {
            return Observation::Skipped(Skip::NotLater);
        }
        if dt > 3.0 * self.interval_ms {
            return Observation::Skipped(Skip::Gap);
        }
        let (increase, change) = increase(previous, value);
        let seconds = dt / 1000.0;
        let rate = increase / seconds;
        // A finite rate only (what the master accepts), and a window whose sums stay finite.
        if !(rate.is_finite() && (self.increase + increase).is_finite()) {
            return Observation::Skipped(Skip::Overflow);
        }
        self.increase += increase;
        self.seconds += seconds;
        Observation::Rate {
            rate,
            increase,
            seconds,
            change,
        }
    }

    /// The interval's rate: the accepted pairs' total increase over their total seconds, `None`
    /// when no pair was accepted since the previous call. Starts the next interval (the baseline
    /// observation is kept: the first pair of the next interval spans the boundary).
    pub fn take(&mut self) -> Option<RateStats> {
        let (increase, seconds) = (
            std::mem::take(&mut self.increase),
            std::mem::take(&mut self.seconds),
        );
        let rate = increase / seconds;
        (seconds > 0.0 && rate.is_finite()).then_some(RateStats { rate, increase })
    }
}

impl RateStats {
    /// Adds another process's (or thread's) rate of the same series: rates and increases sum.
    pub fn merge(&mut self, other: &RateStats) {
        self.rate += other.rate;
        self.increase += other.increase;
    }

    /// Appends `rate, increase` as little-endian f64 ([`RATE_STATS_BYTES`] bytes).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.rate.to_le_bytes());
        out.extend_from_slice(&self.increase.to_le_bytes());
    }

    /// Reads stats written by [`RateStats::encode`] from the start of `bytes`; returns them and
    /// the number of bytes read. Both numbers must be finite and >= 0 (what a tracker can
    /// report).
    pub fn decode(bytes: &[u8]) -> Result<(RateStats, usize), DecodeError> {
        let head = bytes
            .get(..RATE_STATS_BYTES)
            .ok_or(DecodeError::Truncated)?;
        let (mut a, mut b) = ([0u8; 8], [0u8; 8]);
        a.copy_from_slice(&head[..8]);
        b.copy_from_slice(&head[8..]);
        let (rate, increase) = (f64::from_le_bytes(a), f64::from_le_bytes(b));
        if !(rate.is_finite() && rate >= 0.0 && increase.is_finite() && increase >= 0.0) {
            return Err(DecodeError::Invalid("rate stats"));
        }
        Ok((RateStats { rate, increase }, RATE_STATS_BYTES))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rate_of(o: Observation) -> Option<(f64, Change)> {
        match o {
            Observation::Rate { rate, change, .. } => Some((rate, change)),
            _ => None,
        }
    }

    #[test]
    fn the_first_observation_has_no_rate() {
        let mut t = RateTracker::new(10_000.0).unwrap();
        assert_eq!(t.observe(5.0, 0.0), Observation::Skipped(Skip::First));
        assert_eq!(t.take(), None);
        assert_eq!(
            rate_of(t.observe(25.0, 10_000.0)),
            Some((2.0, Change::Increase))
        );
        assert_eq!(
            t.take(),
            Some(RateStats {
                rate: 2.0,
                increase: 20.0
            })
        );
        assert_eq!(t.take(), None, "nothing new in the next interval");
    }

    #[test]
    fn panoptes_skips_and_the_baseline_moves_on() {
        let mut t = RateTracker::new(10_000.0).unwrap();
        t.observe(100.0, 50_000.0);
        assert_eq!(
            t.observe(200.0, 50_000.0),
            Observation::Skipped(Skip::NotLater)
        );
        assert_eq!(
            t.observe(300.0, 40_000.0),
            Observation::Skipped(Skip::NotLater)
        );
        // Exactly three intervals is still a rate; more is a gap.
        assert_eq!(
            rate_of(t.observe(600.0, 70_000.0)),
            Some((10.0, Change::Increase))
        );
        assert_eq!(t.observe(700.0, 100_001.0), Observation::Skipped(Skip::Gap));
        assert_eq!(
            rate_of(t.observe(710.0, 110_001.0)),
            Some((1.0, Change::Increase))
        );
        assert_eq!(t.take().unwrap().increase, 310.0);
    }

    #[test]
    fn invalid_observations_are_rejected_and_keep_the_baseline() {
        let mut t = RateTracker::new(1000.0).unwrap();
        t.observe(10.0, 0.0);
        for (v, at) in [
            (-1.0, 500.0),
            (f64::NAN, 500.0),
            (f64::INFINITY, 500.0),
            (20.0, f64::NAN),
            (20.0, f64::INFINITY),
        ] {
            assert_eq!(t.observe(v, at), Observation::Rejected);
        }
        assert_eq!(
            rate_of(t.observe(20.0, 1000.0)),
            Some((10.0, Change::Increase))
        );
        for bad in [0.0, -5.0, f64::NAN, f64::INFINITY] {
            assert_eq!(RateTracker::new(bad), None);
        }
        // Rates too large for an f64 are skipped, never reported as infinity.
        let mut t = RateTracker::new(1000.0).unwrap();
        t.observe(1e308, 0.0);
        assert_eq!(
            t.observe(1e300, 1e-300),
            Observation::Skipped(Skip::Overflow)
        );
        assert_eq!(
            t.observe(f64::MAX, 1.0),
            Observation::Skipped(Skip::Overflow)
        );
        assert_eq!(t.take(), None);
    }

    #[test]
    fn a_32_bit_wrap() {
        let mut t = RateTracker::new(60_000.0).unwrap();
        t.observe(RANGE32 - 100.0, 0.0);
        assert_eq!(
            rate_of(t.observe(50.0, 10_000.0)),
            Some((15.0, Change::Wrap32))
        );
        // From exactly the top value to 0: one step.
        assert_eq!(increase(RANGE32 - 1.0, 0.0), (1.0, Change::Wrap32));
        // The largest forward move read as a wrap is just under half the range.
        assert_eq!(increase(HALF32 + 1.0, 0.0), (HALF32 - 1.0, Change::Wrap32));
    }

    #[test]
    fn a_64_bit_wrap() {
        let top = RANGE64 - 4096.0; // a representable value near the top
        assert_eq!(increase(top, 1000.0), (5096.0, Change::Wrap64));
        let mut t = RateTracker::new(60_000.0).unwrap();
        t.observe(top, 0.0);
        assert_eq!(
            rate_of(t.observe(904.0, 1000.0)),
            Some((5000.0, Change::Wrap64))
        );
    }

    #[test]
    fn other_decreases_are_resets() {
        // A small counter that drops: its process restarted.
        assert_eq!(increase(1000.0, 900.0), (900.0, Change::Reset));
        assert_eq!(increase(1000.0, 0.0), (0.0, Change::Reset));
        // Above 2^31 but the drop is not more than half the 32-bit range: implausible as a wrap.
        assert_eq!(increase(HALF32 + 10.0, 100.0), (100.0, Change::Reset));
        assert_eq!(increase(HALF32, 0.0), (0.0, Change::Reset));
        // Between the ranges: neither counter width can wrap there.
        assert_eq!(increase(1e12, 5.0), (5.0, Change::Reset));
        assert_eq!(increase(RANGE32, 0.0), (0.0, Change::Reset));
        // At or above 2^64 nothing wraps.
        assert_eq!(increase(RANGE64, 1.0), (1.0, Change::Reset));
        assert_eq!(increase(1e300, 1.0), (1.0, Change::Reset));
        let mut t = RateTracker::new(1000.0).unwrap();
        t.observe(5000.0, 0.0);
        assert_eq!(
            rate_of(t.observe(300.0, 1000.0)),
            Some((300.0, Change::Reset))
        );
    }

    #[test]
    fn stats_merge_sum_and_decode_checks() {
        let mut a = RateStats {
            rate: 1.5,
            increase: 15.0,
        };
        a.merge(&RateStats {
            rate: 2.0,
            increase: 20.0,
        });
        assert_eq!(
            a,
            RateStats {
                rate: 3.5,
                increase: 35.0
            }
        );
        let mut out = Vec::new();
        a.encode(&mut out);
        out.push(1);
        assert_eq!(RateStats::decode(&out), Ok((a, RATE_STATS_BYTES)));
        assert_eq!(RateStats::decode(&out[..15]), Err(DecodeError::Truncated));
        for bad in [-1.0, f64::NAN, f64::NEG_INFINITY] {
            let mut out = Vec::new();
            RateStats { rate: bad, ..a }.encode(&mut out);
            assert!(RateStats::decode(&out).is_err());
        }
    }

    proptest! {
        #[test]
        fn a_linear_counter_rates_at_its_slope(
            start in 0u32..1_000_000,
            slope in 0.5f64..1e5,
            // Steps of a second or more: increases far above the values' rounding.
            steps in prop::collection::vec(1000u32..30_000, 1..60),
        ) {
            let interval = 10_000.0;
            let mut t = RateTracker::new(interval).unwrap();
            let mut at = 1_700_000_000_000.0;
            t.observe(start as f64, at);
            for dt in &steps {
                at += *dt as f64;
                let value = start as f64 + slope * (at - 1_700_000_000_000.0) / 1000.0;
                let (rate, change) = rate_of(t.observe(value, at)).unwrap();
                prop_assert_eq!(change, Change::Increase);
                prop_assert!((rate - slope).abs() <= 1e-6 * slope, "{} vs {}", rate, slope);
            }
            let s = t.take().unwrap();
            prop_assert!((s.rate - slope).abs() <= 1e-6 * slope);
        }

        #[test]
        fn a_monotone_counter_rates_at_its_mean_slope(
            start in 0u64..1 << 40,
            steps in prop::collection::vec((1u32..30_000, 0u32..1_000_000), 1..60),
        ) {
            // Whole-number increments at irregular times: the interval's rate is the exact
            // total increase over the total time.
            let mut t = RateTracker::new(10_000.0).unwrap();
            let (mut at, mut value) = (0.0, start as f64);
            t.observe(value, at);
            for &(dt, inc) in &steps {
                at += dt as f64;
                value += inc as f64;
                prop_assert!(rate_of(t.observe(value, at)).unwrap().0 >= 0.0);
            }
            let s = t.take().unwrap();
            prop_assert_eq!(s.increase, value - start as f64);
            let slope = (value - start as f64) / (at / 1000.0);
            prop_assert!((s.rate - slope).abs() <= 1e-12 * slope.max(1.0));
        }

        #[test]
        fn a_wrapping_32_bit_counter_keeps_its_rate(
            start in 0u32..u32::MAX,
            incs in prop::collection::vec(0u32..1 << 30, 1..40),
        ) {
            // A true Counter32 stepping less than half its range between observations.
            let mut t = RateTracker::new(1000.0).unwrap();
            let mut v = start;
            t.observe(v as f64, 0.0);
            for (i, &inc) in incs.iter().enumerate() {
                v = v.wrapping_add(inc);
                let (rate, _) = rate_of(t.observe(v as f64, (i + 1) as f64 * 1000.0)).unwrap();
                prop_assert_eq!(rate, inc as f64);
            }
        }

        #[test]
        fn increases_are_never_negative(a in any::<f64>(), b in any::<f64>()) {
            if a.is_finite() && b.is_finite() && a >= 0.0 && b >= 0.0 {
                let (inc, _) = increase(a, b);
                prop_assert!(inc >= 0.0 && inc.is_finite());
            }
        }

        #[test]
        fn decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..40)) {
            if let Ok((s, used)) = RateStats::decode(&bytes) {
                prop_assert_eq!(used, RATE_STATS_BYTES);
                prop_assert!(s.rate >= 0.0 && s.increase.is_finite());
            }
        }
    }
}
