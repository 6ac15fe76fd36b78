//! metrix 2.0's StreamingHistogram: Frugal-2U quantile estimation (Ma, Muthukrishnan, Sandler,
//! "Frugal Streaming for Estimating Quantiles", 2013), three numbers per quantile (estimate,
//! step, direction of the last move), whatever the number of values.
//!
//! Each value above the estimate moves it up with probability `q`, each value below moves it down
//! with probability `1 - q`, so the estimate drifts to where `q` of the values are below it. The
//! step grows by 1 while moves keep the same direction (so the estimate catches up with a far
//! quantile quickly), is pulled back when a move overshoots the value, and falls back to 1 when
//! the direction changes. It follows recent values more than old ones, and steps are in the
//! values' own units (1 at first): it suits values such as milliseconds, not values within 0..1.
//!
//! The update rule is metrix's, step for step, and so are its random draws (one per move
//! considered, in quantile order): with the same random numbers, this gives metrix's numbers bit
//! for bit (tested against metrix@2.0.0 run with its `Math.random` replaced by this module's
//! generator). Where metrix differs from the paper's Algorithm 3, metrix is kept, on purpose:
//! - the first value sets the estimate (the paper starts from a given estimate, e.g. 0);
//! - the median (`q == 0.5`) moves on every value, without a coin: both directions have
//!   probability 1/2, so dropping the coin keeps the estimator's target and halves its lag;
//! - on a change of direction the step becomes 1 even when it is below 1 (the paper only
//!   lowers a step above 1), which stops a step made negative by overshoots from crawling.
//!
//! metrix's bugs, fixed: `Math.random` could not be seeded (here [`SplitMix64`] from a seed, so
//! runs are reproducible); `max` started at `Number.MIN_VALUE` (negative values reported a max of
//! 5e-324); a NaN as first value froze an estimate at NaN (non-finite values are refused here);
//! the snapshot was the histogram's own mutable object; quantiles were not validated.
//!
//! Frugal estimates do not merge exactly. Across processes, [`FrugalSnapshot::merge`] takes the
//! count-weighted mean of the estimates: the q-quantile of a union of streams lies between the
//! smallest and the largest q-quantile of the streams, and so does that mean (document it as an
//! approximation; use the bucketed or HDR histogram where cluster-wide quantiles must be exact).

use crate::bytes::DecodeError;
use crate::bytes::{put_f64, put_varint, Reader};
use crate::metrix::bucketed::{MergeError, Quantiles, MAX_QUANTILES};

/// SplitMix64 (Steele, Lea, Flood 2014): a 64-bit state, a fixed, documented output sequence per
/// seed. Hand-written (a dozen lines) rather than taken from `rand`, whose seeded generators do
/// not promise the same sequence across versions: reproducible estimates need a fixed sequence,
/// and the JS reference harness needs to compute the same one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator whose sequence is determined by `seed`.
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `[0, 1)`: the top 53 bits over 2^53 (what `Math.random` returns).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / 9_007_199_254_740_992.0
    }
}

/// One quantile's state: the three numbers of Frugal-2U.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Estimator {
    estimate: f64,
    step: f64,
    /// Direction of the last move: 1 up, -1 down, 0 before the first value.
    sign: i8,
}

/// A Frugal-2U histogram: one estimator per quantile, plus count, min and max.
#[derive(Debug, Clone, PartialEq)]
pub struct FrugalHistogram {
    quantiles: Quantiles,
    estimators: Vec<Estimator>,
    rng: SplitMix64,
    count: u64,
    min: f64,
    max: f64,
}

/// What a histogram reports (metrix's snapshot).
#[derive(Debug, Clone, PartialEq)]
pub struct FrugalReport {
    /// Smallest value added.
    pub min: f64,
    /// Largest value added.
    pub max: f64,
    /// `(key, estimate)` per quantile, increasing (keys as [`crate::metrix::bucketed::percentile_key`]).
    pub quantiles: Vec<(String, f64)>,
}

/// A histogram's numbers for an interval, what travels to the master: count, min, max and one
/// estimate per quantile (in the histogram's quantile order).
#[derive(Debug, Clone, PartialEq)]
pub struct FrugalSnapshot {
    /// Values behind the estimates (their merge weight); always > 0.
    pub count: u64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// One estimate per quantile, each within `[min, max]`.
    pub estimates: Vec<f64>,
}

impl FrugalHistogram {
    /// An empty histogram estimating `quantiles`, its coin flips drawn from `seed`.
    pub fn new(quantiles: Quantiles, seed: u64) -> FrugalHistogram {
        let fresh = Estimator {
            estimate: 0.0,
            step: 1.0,
            sign: 0,
        };
        FrugalHistogram {
            estimators: vec![fresh; quantiles.values().len()],
            quantiles,
            rng: SplitMix64::new(seed),
            count: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }

    /// The quantiles it estimates.
    pub fn quantiles(&self) -> &Quantiles {
        &self.quantiles
    }

    /// Number of values added.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Adds a value; false (and nothing changes) when it is not finite.
    pub fn add(&mut self, x: f64) -> bool {
        if !x.is_finite() {
            return false;
        }
        self.count = self.count.saturating_add(1);
        self.min = self.min.min(x);
        self.max = self.max.max(x);
        for (e, &q) in self.estimators.iter_mut().zip(self.quantiles.values()) {
            if e.sign == 0 {
                e.estimate = x;
                e.sign = 1;
                continue;
            }
            // The estimate stays within [min, max]: each move is clamped at the value that
            // caused it, so it stays finite and the step grows at most by 1 per value.
            if x > e.estimate {
                if q != 0.5 && self.rng.next_f64() <= 1.0 - q {
                    continue;
                }
                e.step += f64::from(e.sign);
                e.estimate += if e.step > 0.0 { e.step } else { 1.0 };
                if e.estimate > x {
                    // Overshot: stop at the value and shrink the step by the overshoot.
                    e.step += x - e.estimate;
                    e.estimate = x;
                }
                if e.sign < 0 {
                    e.step = 1.0;
                }
                e.sign = 1;
            } else if x < e.estimate {
                if q != 0.5 && self.rng.next_f64() <= q {
                    continue;
                }
                e.step -= f64::from(e.sign);
                e.estimate -= if e.step > 0.0 { e.step } else { 1.0 };
                if e.estimate < x {
                    e.step += e.estimate - x;
                    e.estimate = x;
                }
                if e.sign > 0 {
                    e.step = 1.0;
                }
                e.sign = -1;
            }
        }
        true
    }

    /// Forgets every value (the random sequence goes on).
    pub fn clear(&mut self) {
        let quantiles = self.quantiles.clone();
        let rng = self.rng.clone();
        *self = FrugalHistogram::new(quantiles, 0);
        self.rng = rng;
    }

    /// The numbers to report or send; `None` when empty.
    pub fn snapshot(&self) -> Option<FrugalSnapshot> {
        (self.count > 0).then(|| FrugalSnapshot {
            count: self.count,
            min: self.min,
            max: self.max,
            estimates: self.estimators.iter().map(|e| e.estimate).collect(),
        })
    }

    /// metrix's snapshot: min, max and the estimates by key; `None` when empty (metrix's `{}`).
    pub fn report(&self) -> Option<FrugalReport> {
        self.snapshot()?.report(&self.quantiles)
    }
}

impl FrugalSnapshot {
    /// The report of these numbers for `quantiles` (`None` if their number differs).
    pub fn report(&self, quantiles: &Quantiles) -> Option<FrugalReport> {
        (quantiles.keys().len() == self.estimates.len()).then(|| FrugalReport {
            min: self.min,
            max: self.max,
            quantiles: quantiles
                .keys()
                .iter()
                .cloned()
                .zip(self.estimates.iter().copied())
                .collect(),
        })
    }

    /// Merges another process's numbers (approximate, see the module docs): counts add, min/max
    /// widen, each estimate becomes the count-weighted mean of the two.
    pub fn merge(&mut self, other: &FrugalSnapshot) -> Result<(), MergeError> {
        if self.estimates.len() != other.estimates.len() {
            return Err(MergeError::Layout);
        }
        let (a, b) = (self.count as f64, other.count as f64);
        if b > 0.0 {
            for (x, y) in self.estimates.iter_mut().zip(&other.estimates) {
                // A convex mix, kept between the two against rounding (so within [min, max]);
                // comparisons rather than `clamp`, which panics on NaN bounds.
                let (lo, hi) = (x.min(*y), x.max(*y));
                let mixed = (*x * a + *y * b) / (a + b);
                *x = if mixed < lo {
                    lo
                } else if mixed > hi {
                    hi
                } else {
                    mixed
                };
            }
        }
        self.count = self.count.saturating_add(other.count);
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        Ok(())
    }

    /// Appends `count varint | min f64 | max f64 | n varint | n x estimate f64` (f64
    /// little-endian).
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_varint(out, self.count);
        put_f64(out, self.min);
        put_f64(out, self.max);
        put_varint(out, self.estimates.len() as u64);
        for &e in &self.estimates {
            put_f64(out, e);
        }
    }

    /// Reads numbers written by [`FrugalSnapshot::encode`] from the start of `bytes`; returns
    /// them and the number of bytes read. The count must be > 0, min <= max finite, at most
    /// [`MAX_QUANTILES`] estimates, each within `[min, max]`.
    pub fn decode(bytes: &[u8]) -> Result<(FrugalSnapshot, usize), DecodeError> {
        let mut r = Reader::new(bytes);
        let count = r.varint()?;
        let (min, max) = (r.f64()?, r.f64()?);
        let n = r.count(8)?;
        if count == 0 || !(min.is_finite() && max.is_finite() && min <= max) {
            return Err(DecodeError::Invalid("frugal snapshot"));
        }
        if n > MAX_QUANTILES {
            return Err(DecodeError::Invalid("frugal quantiles"));
        }
        let mut estimates = Vec::with_capacity(n);
        for _ in 0..n {
            let e = r.f64()?;
            if !(min..=max).contains(&e) {
                return Err(DecodeError::Invalid("frugal estimate"));
            }
            estimates.push(e);
        }
        Ok((
            FrugalSnapshot {
                count,
                min,
                max,
                estimates,
            },
            r.used(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn run(seed: u64, qs: &[f64], data: impl IntoIterator<Item = f64>) -> FrugalHistogram {
        let mut h = FrugalHistogram::new(Quantiles::new(qs).unwrap(), seed);
        for x in data {
            assert!(h.add(x));
        }
        h
    }

    fn keyed(kv: &[(&str, f64)]) -> Vec<(String, f64)> {
        kv.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn splitmix_sequence() {
        // The same first draws as the JS harness (BigInt SplitMix64, seed 1).
        let mut r = SplitMix64::new(1);
        assert_eq!(
            [r.next_f64(), r.next_f64(), r.next_f64()],
            [0.5665615751722809, 0.7457817572627011, 0.9710027535867962]
        );
        // Published first output of SplitMix64 from seed 0.
        assert_eq!(SplitMix64::new(0).next_u64(), 0xE220_A839_7B1D_CDAF);
    }

    /// metrix@2.0.0's StreamingHistogram in node, `Math.random` replaced by SplitMix64 from the
    /// same seed, same data: the same numbers bit for bit.
    #[test]
    fn golden_reports_from_metrix() {
        let ints = (0..3000u32).map(|i| f64::from(i * 7919 % 1009));
        let r = run(42, &[0.5, 0.9, 0.99], ints).report().unwrap();
        assert_eq!((r.min, r.max), (0.0, 1008.0));
        assert_eq!(
            r.quantiles,
            keyed(&[("p50", 493.0), ("p90", 922.0), ("p99", 993.0)])
        );

        let floats = (0..3000u32).map(|i| f64::from(i * 7919 % 1009) * 0.37);
        let r = run(7, &[0.1, 0.5, 0.75, 0.9, 0.99, 0.999], floats)
            .report()
            .unwrap();
        assert_eq!((r.min, r.max), (0.0, 372.96));
        assert_eq!(
            r.quantiles,
            keyed(&[
                ("p10", 33.74),
                ("p50", 178.52),
                ("p75", 282.6),
                ("p90", 321.03),
                ("p99", 370.0),
                ("p99.9", 371.48)
            ])
        );

        let ramp = (0..500u32).map(|i| f64::from(1000 - i));
        let r = run(3, &[0.25, 0.5, 0.9], ramp).report().unwrap();
        assert_eq!(
            r.quantiles,
            keyed(&[("p25", 501.0), ("p50", 501.0), ("p90", 516.0)])
        );
    }

    #[test]
    fn fixed_metrix_bugs() {
        // Negative values: metrix reported max 5e-324.
        let r = run(3, &[0.5], [-5.0, -3.0, -4.0]).report().unwrap();
        assert_eq!((r.min, r.max), (-5.0, -3.0));
        assert_eq!(r.quantiles, keyed(&[("p50", -4.0)]));
        // Non-finite values are refused (a NaN first value froze metrix's estimate).
        let mut h = run(1, &[0.5, 0.9], []);
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert!(!h.add(bad));
        }
        assert_eq!(h.report(), None, "empty: metrix's {{}}");
        h.add(7.0);
        assert_eq!(h.report().unwrap().quantiles[0].1, 7.0);
        // Same seed, same numbers; clear forgets values.
        let data: Vec<f64> = (0..500).map(|i| f64::from(i * 31 % 97)).collect();
        let a = run(9, &[0.9], data.iter().copied());
        let b = run(9, &[0.9], data.iter().copied());
        assert_eq!(a.report(), b.report());
        let mut c = a.clone();
        c.clear();
        assert_eq!((c.count(), c.report()), (0, None));
    }

    #[test]
    fn converges_on_a_uniform_stream() {
        let mut rng = SplitMix64::new(11);
        let qs = [0.5, 0.9, 0.99];
        let data: Vec<f64> = (0..50_000).map(|_| rng.next_f64() * 1000.0).collect();
        let s = run(5, &qs, data.iter().copied()).snapshot().unwrap();
        for (q, e) in qs.iter().zip(&s.estimates) {
            assert!((e - q * 1000.0).abs() < 50.0, "q {q}: {e}");
        }
    }

    #[test]
    fn merge_weights_by_count_and_decode_checks() {
        let mut a = FrugalSnapshot {
            count: 3,
            min: 0.0,
            max: 10.0,
            estimates: vec![2.0, 9.0],
        };
        let b = FrugalSnapshot {
            count: 1,
            min: -1.0,
            max: 20.0,
            estimates: vec![6.0, 13.0],
        };
        a.merge(&b).unwrap();
        assert_eq!(
            a,
            FrugalSnapshot {
                count: 4,
                min: -1.0,
                max: 20.0,
                estimates: vec![3.0, 10.0]
            }
        );
        let short = FrugalSnapshot {
            estimates: vec![1.0],
            ..b.clone()
        };
        assert_eq!(a.merge(&short), Err(MergeError::Layout));
        // Hand-made nonsense (public fields) does not panic.
        let mut nan = FrugalSnapshot {
            count: 0,
            min: f64::NAN,
            max: f64::NAN,
            estimates: vec![f64::NAN, f64::NAN],
        };
        nan.merge(&nan.clone()).unwrap();
        nan.merge(&a).unwrap();
        let mut zero = a.clone();
        zero.merge(&FrugalSnapshot {
            count: 0,
            ..a.clone()
        })
        .unwrap();
        assert_eq!(zero.estimates, a.estimates);

        let mut out = Vec::new();
        a.encode(&mut out);
        out.push(0);
        assert_eq!(FrugalSnapshot::decode(&out), Ok((a.clone(), out.len() - 1)));
        for cut in 0..out.len() - 1 {
            assert!(FrugalSnapshot::decode(&out[..cut]).is_err());
        }
        let bad = |s: FrugalSnapshot| {
            let mut out = Vec::new();
            s.encode(&mut out);
            FrugalSnapshot::decode(&out)
        };
        assert!(bad(FrugalSnapshot {
            count: 0,
            ..a.clone()
        })
        .is_err());
        assert!(bad(FrugalSnapshot {
            min: 30.0,
            ..a.clone()
        })
        .is_err());
        assert!(bad(FrugalSnapshot {
            max: f64::NAN,
            ..a.clone()
        })
        .is_err());
        assert_eq!(
            bad(FrugalSnapshot {
                estimates: vec![3.0, 99.0],
                ..a.clone()
            }),
            Err(DecodeError::Invalid("frugal estimate"))
        );
        // A huge estimate count with few bytes behind it is refused before allocating.
        let mut huge = Vec::new();
        put_varint(&mut huge, 1);
        huge.extend_from_slice(&0.0f64.to_le_bytes());
        huge.extend_from_slice(&1.0f64.to_le_bytes());
        put_varint(&mut huge, u64::MAX);
        assert_eq!(FrugalSnapshot::decode(&huge), Err(DecodeError::Truncated));
    }

    proptest! {
        #[test]
        fn estimates_stay_within_the_values(
            seed in any::<u64>(),
            data in prop::collection::vec(-1e6f64..1e6, 1..200),
        ) {
            let s = run(seed, &[0.01, 0.5, 0.9, 0.999], data.iter().copied()).snapshot().unwrap();
            prop_assert!(s.estimates.iter().all(|e| (s.min..=s.max).contains(e)));
            // What it sends decodes to itself.
            let mut out = Vec::new();
            s.encode(&mut out);
            prop_assert_eq!(FrugalSnapshot::decode(&out), Ok((s.clone(), out.len())));
        }

        #[test]
        fn quantiles_roughly_monotone(
            seed in any::<u64>(),
            low in -1000.0f64..1000.0,
            width in 100.0f64..2000.0,
        ) {
            // On a long stationary stream, the estimates are ordered as their quantiles, within
            // a tenth of the spread (Frugal-2U's estimates are independent walks).
            let mut rng = SplitMix64::new(seed ^ 0x5eed);
            let data: Vec<f64> = (0..5000).map(|_| low + rng.next_f64() * width).collect();
            let s = run(seed, &[0.1, 0.5, 0.9, 0.99], data).snapshot().unwrap();
            for w in s.estimates.windows(2) {
                prop_assert!(w[0] <= w[1] + 0.1 * width, "{:?}", s.estimates);
            }
        }

        #[test]
        fn decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..120)) {
            if let Ok((s, used)) = FrugalSnapshot::decode(&bytes) {
                prop_assert!(used <= bytes.len());
                prop_assert!(s.count > 0 && s.min <= s.max);
            }
        }
    }
}
