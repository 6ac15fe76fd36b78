//! The sampling reservoirs of Pandora.js (and Dropwizard) metrics behind the `'uniform'` and
//! `'decaying'` histogram options: a bounded random sample of the values recorded, from which
//! percentiles are estimated. Unlike the HDR histogram they do not merge exactly across processes;
//! merges (see [`Uniform`] and [`Decaying`]) give a sample of the same kind of the
//! union of both streams, still bounded in size.
//!
//! Randomness comes from a seeded [`fastrand::Rng`] held by the caller
//! ([`crate::stats::histogram::Distribution`]), so a test replays the same choices.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use fastrand::Rng;

/// Samples kept by the uniform reservoir (Pandora's and Dropwizard's default).
pub const UNIFORM_SIZE: usize = 1024;
/// Samples kept by the exponentially decaying reservoir (Pandora's and Dropwizard's default).
pub const DECAYING_SIZE: usize = 1028;
/// Forward-decay rate per second of the decaying reservoir: a value recorded 1/alpha = 67 s
/// before another weighs e times less (Dropwizard's 0.015, which biases the sample to roughly
/// the last 5 minutes).
pub const ALPHA: f64 = 0.015;
/// Seconds between two moves of the decaying reservoir's landmark. Weights grow as
/// `exp(ALPHA * (t - landmark))`: after an hour they reach `exp(54)`, about 3e23, far from f64
/// overflow, and rescaling then brings them back down.
pub const RESCALE_SECONDS: f64 = 3600.0;

/// Vitter's algorithm R: a uniform random sample of at most [`UNIFORM_SIZE`] of the values seen.
///
/// Invariant: `values.len() == min(seen, UNIFORM_SIZE)`.
///
/// Merge rule: the merged sample has `min(UNIFORM_SIZE, len_a + len_b)` values; how many come
/// from each side is drawn as a draw without replacement from the union of the two streams
/// would give (hypergeometric, by `seen_a` and `seen_b`), and those are picked at random from
/// each side. The result is again a uniform sample of the union.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Uniform {
    /// How many values the sample stands for.
    pub(crate) seen: u64,
    /// The sample, in no particular order.
    pub(crate) values: Vec<f64>,
}

impl Uniform {
    /// Offers one value: the n-th value seen replaces a random sample with probability
    /// `UNIFORM_SIZE / n`, so every value seen is in the sample with the same probability.
    pub(crate) fn record(&mut self, value: f64, rng: &mut Rng) {
        self.seen = self.seen.saturating_add(1);
        if self.values.len() < UNIFORM_SIZE {
            let len = self.values.len();
            if len == self.values.capacity() {
                self.values.reserve_exact(growth(len, UNIFORM_SIZE));
            }
            self.values.push(value);
        } else {
            let slot = rng.u64(0..self.seen);
            if let Some(v) = self.values.get_mut(slot as usize) {
                *v = value;
            }
        }
    }

    /// Merges another sample into this one: the result is a uniform sample, without replacement,
    /// of the union of both streams, of size `min(UNIFORM_SIZE, seen_a + seen_b)`.
    ///
    /// Each sample stands for `seen / len` values of its stream, so simply keeping the union (or
    /// halving each side) would over-represent the smaller stream. Instead, how many of the
    /// result's samples come from each side is drawn as one draw without replacement from the
    /// union would give it (hypergeometric: each pick is from `a` with probability
    /// `a's values not yet picked / all values not yet picked`), and that many samples are then
    /// picked at random from each side. Any uniform sample of a stream holds a uniform sample of
    /// any smaller size, so this is exact in distribution.
    pub(crate) fn merge(&mut self, other: &Uniform, rng: &mut Rng) {
        if other.seen == 0 {
            return;
        }
        let size = UNIFORM_SIZE.min(self.values.len() + other.values.len());
        let (mut left_a, mut left) = (self.seen, self.seen.saturating_add(other.seen));
        let mut from_a = 0usize;
        for _ in 0..size {
            if left == 0 {
                break;
            }
            if rng.u64(0..left) < left_a {
                from_a += 1;
                left_a -= 1;
            }
            left -= 1;
        }
        // Both are within bounds when each side keeps its invariant; `min` keeps a bad state
        // from panicking (the result is then merely smaller).
        let from_a = from_a.min(self.values.len());
        let from_b = (size - from_a).min(other.values.len());
        let mut a = std::mem::take(&mut self.values);
        pick(&mut a, from_a, rng);
        let mut b = other.values.clone();
        pick(&mut b, from_b, rng);
        // Exactly sized: never more than UNIFORM_SIZE slots.
        let mut values = Vec::with_capacity(a.len() + b.len());
        values.extend_from_slice(&a);
        values.extend_from_slice(&b);
        self.values = values;
        self.seen = self.seen.saturating_add(other.seen);
    }

    /// Dropwizard's `UniformSnapshot` quantile: sorted samples, position `q * (n + 1)` (1-based),
    /// linear interpolation between its neighbours. `None` when empty.
    pub(crate) fn quantiles(&self, qs: &[f64]) -> Vec<Option<f64>> {
        let mut sorted = self.values.clone();
        sorted.sort_by(f64::total_cmp);
        qs.iter().map(|&q| interpolated(&sorted, q)).collect()
    }
}

/// How many slots to add to a full buffer of `len` that may hold `size`: doubling (amortized
/// O(1) pushes) but never past `size`, so a reservoir's memory stays within its bound (plain
/// `Vec` growth would take 1028 samples to 2048 slots).
fn growth(len: usize, size: usize) -> usize {
    len.max(4).min(size.saturating_sub(len)).max(1)
}

/// Keeps `k` samples of `v` chosen uniformly at random (a partial Fisher-Yates shuffle).
fn pick(v: &mut Vec<f64>, k: usize, rng: &mut Rng) {
    let k = k.min(v.len());
    for i in 0..k {
        let j = rng.usize(i..v.len());
        v.swap(i, j);
    }
    v.truncate(k);
}

fn interpolated(sorted: &[f64], q: f64) -> Option<f64> {
    let (&first, &last) = (sorted.first()?, sorted.last()?);
    let n = sorted.len();
    let pos = q * (n as f64 + 1.0);
    if pos.is_nan() || pos < 1.0 {
        return Some(first);
    }
    if pos >= n as f64 {
        return Some(last);
    }
    let index = pos.floor() as usize; // 1..n-1 here
    let (lower, upper) = (sorted[index - 1], sorted[index]);
    Some(lower + (pos - pos.floor()) * (upper - lower))
}

/// One sample of the decaying reservoir.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Sample {
    /// `weight / u`, u uniform in (0, 1]: the reservoir keeps the largest priorities.
    pub(crate) priority: f64,
    /// The value recorded.
    pub(crate) value: f64,
    /// `exp(ALPHA * (t - landmark))`, t the time of the record in seconds.
    pub(crate) weight: f64,
}

/// A [`Sample`] ordered by priority, smallest first out of a [`BinaryHeap`] (so the heap's top
/// is the sample to evict).
#[derive(Debug, Clone, Copy)]
struct ByPriority(Sample);

impl PartialEq for ByPriority {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for ByPriority {}
impl PartialOrd for ByPriority {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for ByPriority {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: BinaryHeap is a max-heap and we want the smallest priority on top.
        other.0.priority.total_cmp(&self.0.priority)
    }
}

/// Cormode, Shkapenyuk, Srivastava and Xu's forward-decay priority sample (Dropwizard's
/// `ExponentiallyDecayingReservoir`): at most [`DECAYING_SIZE`] samples, biased towards recent
/// values by weights `exp(ALPHA * (t - landmark))`.
///
/// Weights are relative to a landmark time, so only their ratios matter: every
/// [`RESCALE_SECONDS`] the landmark moves to the present and every weight and priority is
/// multiplied by `exp(-ALPHA * (new - old))`, which leaves all ratios (and so the sample and its
/// quantiles) unchanged while keeping the numbers far from overflow.
///
/// Merge rule: both sides are rescaled to the later landmark and the [`DECAYING_SIZE`] highest
/// priorities of the union are kept: a priority sample of the union of the two streams.
/// Percentiles are weighted by the samples' weights (Dropwizard's `WeightedSnapshot`).
#[derive(Debug, Clone, Default)]
pub struct Decaying {
    /// The landmark, in seconds (`None` until the first value).
    pub(crate) landmark: Option<f64>,
    samples: BinaryHeap<ByPriority>,
}

impl Decaying {
    /// Number of samples held.
    pub(crate) fn len(&self) -> usize {
        self.samples.len()
    }

    /// Number of samples it has room for without allocating.
    pub(crate) fn capacity(&self) -> usize {
        self.samples.capacity()
    }

    /// The samples, in no particular order.
    pub(crate) fn samples(&self) -> impl Iterator<Item = Sample> + '_ {
        self.samples.iter().map(|s| s.0)
    }

    /// A reservoir holding these samples (at most [`DECAYING_SIZE`] of them are kept: the
    /// highest priorities).
    pub(crate) fn from_samples(landmark: Option<f64>, samples: Vec<Sample>) -> Self {
        let mut d = Decaying {
            landmark,
            samples: BinaryHeap::with_capacity(samples.len().min(DECAYING_SIZE)),
        };
        for s in samples {
            d.offer(s);
        }
        d
    }

    /// Offers one value recorded at `now_ms` (epoch milliseconds; a non-finite time counts as
    /// the landmark). A clock that goes back gives weights below 1: old-looking, never invalid.
    pub(crate) fn record(&mut self, value: f64, now_ms: f64, rng: &mut Rng) {
        let t = if now_ms.is_finite() {
            now_ms / 1000.0
        } else {
            self.landmark.unwrap_or(0.0)
        };
        let landmark = match self.landmark {
            None => {
                self.landmark = Some(t);
                t
            }
            Some(l) if t >= l + RESCALE_SECONDS => {
                self.rescale(t);
                t
            }
            Some(l) => l,
        };
        let weight = (ALPHA * (t - landmark)).exp();
        // (0, 1]: a zero would give an infinite priority.
        let u = 1.0 - rng.f64();
        self.offer(Sample {
            priority: weight / u,
            value,
            weight,
        });
    }

    /// Keeps the sample if the reservoir has room or if it outranks the lowest priority held.
    fn offer(&mut self, s: Sample) {
        let len = self.samples.len();
        if len < DECAYING_SIZE {
            if len == self.samples.capacity() {
                self.samples.reserve_exact(growth(len, DECAYING_SIZE));
            }
            self.samples.push(ByPriority(s));
        } else if let Some(mut lowest) = self.samples.peek_mut() {
            if lowest.0.priority < s.priority {
                *lowest = ByPriority(s);
            }
        }
    }

    /// Moves the landmark to `to` (seconds), scaling weights and priorities to match.
    fn rescale(&mut self, to: f64) {
        let Some(from) = self.landmark else {
            self.landmark = Some(to);
            return;
        };
        let factor = (-ALPHA * (to - from)).exp();
        let mut samples = std::mem::take(&mut self.samples).into_vec();
        for s in &mut samples {
            // Weights far in the past underflow to 0: kept, they no longer count in quantiles
            // and are the first to be evicted.
            s.0.priority *= factor;
            s.0.weight *= factor;
        }
        self.samples = BinaryHeap::from(samples);
        self.landmark = Some(to);
    }

    /// Merges another reservoir: both are brought to the later landmark, and the
    /// [`DECAYING_SIZE`] highest priorities of the union are kept. Each side holds the top
    /// priorities of its own stream, so the top of the union is the top of the union of the
    /// streams: exactly the sample one reservoir fed both streams would hold for the same random
    /// draws.
    pub(crate) fn merge(&mut self, other: &Decaying) {
        let Some(theirs) = other.landmark else {
            return;
        };
        let ours = *self.landmark.get_or_insert(theirs);
        let landmark = ours.max(theirs);
        if ours < landmark {
            self.rescale(landmark);
        }
        let factor = (-ALPHA * (landmark - theirs)).exp();
        for s in other.samples() {
            self.offer(Sample {
                priority: s.priority * factor,
                value: s.value,
                weight: s.weight * factor,
            });
        }
    }

    /// Dropwizard's `WeightedSnapshot` quantiles: samples sorted by value, each weighing its
    /// share of the total weight; the quantile q is the value of the last sample whose
    /// cumulative weight before it is at most q. Samples of weight 0 (underflowed) are left out
    /// unless every weight is 0, in which case all samples weigh the same. `None` when empty.
    pub(crate) fn quantiles(&self, qs: &[f64]) -> Vec<Option<f64>> {
        let mut sorted: Vec<(f64, f64)> = self.samples().map(|s| (s.value, s.weight)).collect();
        let total: f64 = sorted.iter().map(|s| s.1).sum();
        if total > 0.0 && total.is_finite() {
            sorted.retain(|s| s.1 > 0.0);
        } else {
            sorted.iter_mut().for_each(|s| s.1 = 1.0);
        }
        sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
        let total: f64 = sorted.iter().map(|s| s.1).sum();
        let mut below = Vec::with_capacity(sorted.len());
        let mut acc = 0.0;
        for s in &sorted {
            below.push(acc);
            acc += s.1 / total;
        }
        qs.iter()
            .map(|&q| {
                let at = below.partition_point(|&c| c <= q).saturating_sub(1);
                sorted.get(at).map(|s| s.0)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_keeps_everything_until_full_then_stays_bounded() {
        let mut rng = Rng::with_seed(1);
        let mut u = Uniform::default();
        for i in 0..UNIFORM_SIZE {
            u.record(i as f64, &mut rng);
        }
        let mut sorted = u.values.clone();
        sorted.sort_by(f64::total_cmp);
        assert_eq!(
            sorted,
            (0..UNIFORM_SIZE).map(|i| i as f64).collect::<Vec<_>>()
        );
        for i in 0..10_000 {
            u.record(i as f64, &mut rng);
        }
        assert_eq!((u.values.len(), u.seen), (UNIFORM_SIZE, 11_024));
    }

    #[test]
    fn uniform_is_uniform() {
        // 100k values 0..100k: the sample's mean is near 50k (sd of the mean ~ 900).
        let mut rng = Rng::with_seed(2);
        let mut u = Uniform::default();
        for i in 0..100_000 {
            u.record(i as f64, &mut rng);
        }
        let mean = u.values.iter().sum::<f64>() / u.values.len() as f64;
        assert!((mean - 50_000.0).abs() < 4_000.0, "mean {mean}");
    }

    #[test]
    fn uniform_merge_weighs_by_stream_size() {
        // a saw 90k values of 1, b 10k values of 2: about 10% of the merged sample are 2s.
        let mut rng = Rng::with_seed(3);
        let (mut a, mut b) = (Uniform::default(), Uniform::default());
        for _ in 0..90_000 {
            a.record(1.0, &mut rng);
        }
        for _ in 0..10_000 {
            b.record(2.0, &mut rng);
        }
        a.merge(&b, &mut rng);
        assert_eq!((a.values.len(), a.seen), (UNIFORM_SIZE, 100_000));
        let twos = a.values.iter().filter(|&&v| v == 2.0).count();
        assert!((60..150).contains(&twos), "{twos} twos");
    }

    #[test]
    fn uniform_quantiles_interpolate_like_dropwizard() {
        let mut rng = Rng::with_seed(4);
        let mut u = Uniform::default();
        for v in [5.0, 1.0, 4.0, 2.0, 3.0] {
            u.record(v, &mut rng);
        }
        // n = 5: q 0.5 -> position 3 -> 3; q 0.75 -> 4.5 -> 4.5; q 0.1 -> 0.6 -> first.
        assert_eq!(
            u.quantiles(&[0.5, 0.75, 0.1, 1.0]),
            [Some(3.0), Some(4.5), Some(1.0), Some(5.0)]
        );
        assert_eq!(Uniform::default().quantiles(&[0.5]), [None]);
    }

    #[test]
    fn weighted_quantiles_follow_the_weights() {
        let samples = [(1.0, 1.0), (2.0, 1.0), (3.0, 2.0)]
            .map(|(value, weight)| Sample {
                priority: weight,
                value,
                weight,
            })
            .to_vec();
        let d = Decaying::from_samples(Some(0.0), samples);
        // Cumulative weight before each value: 1 -> 0, 2 -> 0.25, 3 -> 0.5.
        assert_eq!(
            d.quantiles(&[0.0, 0.2, 0.25, 0.49, 0.5, 0.99, 1.0]),
            [1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 3.0].map(Some)
        );
    }

    #[test]
    fn decaying_favours_recent_values_across_rescales() {
        let mut rng = Rng::with_seed(5);
        let mut d = Decaying::default();
        let t0 = 1.7e12;
        // One value of 1 per second for 3 hours, then one of 2 per second for 5 minutes.
        let mut t = t0;
        for _ in 0..3 * 3600 {
            d.record(1.0, t, &mut rng);
            t += 1000.0;
        }
        assert_eq!(
            d.landmark,
            Some(t0 / 1000.0 + 2.0 * 3600.0),
            "rescaled twice"
        );
        for _ in 0..300 {
            d.record(2.0, t, &mut rng);
            t += 1000.0;
        }
        assert!(d.len() <= DECAYING_SIZE);
        // The last 5 minutes hold 1 - exp(-0.015 * 300) = 99% of the weight.
        assert_eq!(d.quantiles(&[0.05, 0.5]), [Some(2.0), Some(2.0)]);
        // Weights stay finite and the newest values weigh the most.
        assert!(d
            .samples()
            .all(|s| s.weight.is_finite() && s.priority.is_finite()));
        // Three idle hours later, a new value outranks the old ones after the rescale and
        // holds all but ~exp(-162) of the weight (the old samples still count, negligibly:
        // only q = 0 sees them).
        d.record(3.0, t + 3.0 * 3600e3, &mut rng);
        assert_eq!(d.landmark, Some(t / 1000.0 + 3.0 * 3600.0));
        assert_eq!(d.len(), DECAYING_SIZE);
        assert_eq!(
            d.quantiles(&[0.0, 0.001, 1.0]),
            [Some(1.0), Some(3.0), Some(3.0)]
        );
    }

    #[test]
    fn decaying_merge_rescales_to_the_later_landmark() {
        let mut rng = Rng::with_seed(6);
        let (mut a, mut b) = (Decaying::default(), Decaying::default());
        for i in 0..500 {
            a.record(1.0, 1000.0 * i as f64, &mut rng);
        }
        // b starts 2 hours later: its values dominate the merge.
        for i in 0..500 {
            b.record(2.0, 7.2e6 + 1000.0 * i as f64, &mut rng);
        }
        a.merge(&b);
        assert_eq!(a.landmark, Some(7200.0));
        assert_eq!(a.len(), 1000);
        assert_eq!(a.quantiles(&[0.01, 0.5]), [Some(2.0), Some(2.0)]);
        for i in 0..2000 {
            b.record(2.0, 7.7e6 + i as f64, &mut rng);
        }
        a.merge(&b);
        assert_eq!(a.len(), DECAYING_SIZE);
    }
}
