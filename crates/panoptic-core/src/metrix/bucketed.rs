//! metrix 2.0's BucketedHistogram: counts in buckets whose widths grow geometrically, so a
//! quantile is known within a relative error, in fixed memory, and two histograms with the same
//! buckets merge exactly by adding counts.
//!
//! Bucket upper limits are built as metrix builds them (the same f64 operations in the same
//! order, so the same limits bit for bit): `right = 0; width = 1; while right < max { right +=
//! width; push(right); width *= 1 + 2 * error }`. A value `x <= max` goes to the first bucket
//! whose limit is `>= x` (so values <= 1, negatives included, go to bucket 0); a value above
//! `max` is counted in `overflow`.
//!
//! Quantile `q` of `n` values: walk the buckets from the highest non-empty one down, accumulating
//! counts starting from `overflow`; the answer is the midpoint of the bucket where the count
//! first exceeds `(1 - q) * n` (`limits[0]` for bucket 0). So a quantile that falls among
//! overflowed values is reported as the highest non-empty bucket, as metrix does (a lower bound;
//! the report carries `overflow` to say so).
//!
//! metrix's bugs, fixed here:
//! - `max` started at `Number.MIN_VALUE` (the smallest positive number), so a histogram of
//!   negative values reported a max of 5e-324; here min/max start at +/- infinity and an empty
//!   histogram reports nothing.
//! - Quantiles were sorted with `Array.prototype.sort()`, as strings (1e-7 after 0.9), which the
//!   walk needs in numeric order; here they are sorted numerically ([`Quantiles`]), and duplicates
//!   dropped.
//! - When every value overflowed, every quantile was `limits[0]` (1): here it is the last limit
//!   (the top of the tracked range, the value metrix itself falls back to).
//! - A quantile the walk never reaches (`q = 0`: `n > n` never holds) was reported as the last
//!   limit (3.6 million with the defaults); here it is the lowest non-empty bucket.
//! - NaN failed an assertion (a throw from `add`) and infinities were accepted; here `add`
//!   refuses any non-finite value (it returns false; the caller counts it as dropped).
//! - An error <= 0 or a max <= 0 either looped forever or built no bucket; here [`Layout::new`]
//!   refuses them, and any layout of more than [`MAX_BUCKETS`] buckets. (metrix's `opts.max ||
//!   default` also turns 0 into the default: that is for the JS layer to mirror.)
//!
//! Report keys are `'p' + parseFloat((100 * q).toFixed(2))` ([`percentile_key`]).

use std::sync::Arc;

use crate::bytes::DecodeError;
use crate::bytes::{put_f64, put_varint, Reader};

/// Default `max` (one hour in milliseconds).
pub const DEFAULT_MAX: f64 = 3_600_000.0;
/// Default relative `error`.
pub const DEFAULT_ERROR: f64 = 0.005;
/// Default quantiles.
pub const DEFAULT_QUANTILES: [f64; 3] = [0.5, 0.9, 0.99];
/// Most buckets a layout may have (512 KiB of counts): the defaults make 1055, an error of 0.0001
/// about 33,000.
pub const MAX_BUCKETS: usize = 1 << 16;
/// Most quantiles one histogram reports.
pub const MAX_QUANTILES: usize = 256;

/// Why options were refused (the JS layer turns these into `RangeError`s).
#[derive(Debug, Clone, PartialEq)]
pub enum OptionsError {
    /// `max` is not a positive finite number.
    Max(f64),
    /// `error` is not a positive finite number (or makes an infinite limit).
    Error(f64),
    /// The layout would have more than [`MAX_BUCKETS`] buckets.
    TooManyBuckets,
    /// A quantile is not a number in `[0, 1]`.
    Quantile(f64),
    /// More than [`MAX_QUANTILES`] quantiles.
    TooManyQuantiles,
}

impl std::fmt::Display for OptionsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OptionsError::Max(v) => write!(f, "max must be a positive finite number, got {v:?}"),
            OptionsError::Error(v) => {
                write!(f, "error must be a small positive finite number, got {v:?}")
            }
            OptionsError::TooManyBuckets => write!(
                f,
                "max and error make more than {MAX_BUCKETS} buckets: raise error or lower max"
            ),
            OptionsError::Quantile(v) => {
                write!(f, "quantiles must be numbers in [0, 1], got {v:?}")
            }
            OptionsError::TooManyQuantiles => {
                write!(f, "at most {MAX_QUANTILES} quantiles")
            }
        }
    }
}

impl std::error::Error for OptionsError {}

/// The report key of quantile `q`, as metrix writes it: `'p' + parseFloat((100 * q).toFixed(2))`
/// (0.5 -> `p50`, 0.999 -> `p99.9`, 0.99999 -> `p100`, 0.00125 -> `p0.13`). For `q` in `[0, 1]`.
///
/// JS `toFixed(2)` rounds the exact value of the double to the nearest hundredth, ties up
/// (Rust's `{:.2}` rounds ties to even), so the hundredths are computed here from the double's
/// bits; `parseFloat` then `String()` is the shortest round-trip decimal, which is Rust's
/// `Display` of an f64 (no exponent form arises: the value is 0 or >= 0.01, and <= 100).
pub fn percentile_key(q: f64) -> String {
    // `+ 0.0` turns -0 into 0 (JS prints both as "0").
    let x = 100.0 * q + 0.0;
    let hundredths = to_hundredths(x);
    let text = format!("{}.{:02}", hundredths / 100, hundredths % 100);
    let value: f64 = text.parse().unwrap_or(0.0);
    format!("p{value}")
}

/// `round_half_up(x * 100)` computed exactly from the bits of `x` (finite, 0 <= x <= 1e15).
fn to_hundredths(x: f64) -> u128 {
    if !(x.is_finite() && x > 0.0) {
        return 0;
    }
    let bits = x.to_bits();
    let exponent = ((bits >> 52) & 0x7ff) as i32;
    let fraction = u128::from(bits & ((1 << 52) - 1));
    // x = mantissa * 2^shift exactly.
    let (mantissa, shift) = if exponent == 0 {
        (fraction, -1074)
    } else {
        (fraction | 1 << 52, exponent - 1075)
    };
    let scaled = mantissa * 100;
    if shift >= 0 {
        scaled.checked_shl(shift as u32).unwrap_or(u128::MAX)
    } else {
        let s = (-shift) as u32;
        if s >= 127 {
            0 // below 2^-70 hundredths: rounds to 0
        } else {
            (scaled + (1u128 << (s - 1))) >> s
        }
    }
}

/// The quantiles a histogram reports, validated, in increasing order without duplicates, with
/// their report keys.
#[derive(Debug, Clone, PartialEq)]
pub struct Quantiles {
    values: Vec<f64>,
    keys: Vec<String>,
}

impl Quantiles {
    /// Checks, sorts (numerically) and deduplicates `qs`: each must be a number in `[0, 1]`, at
    /// most [`MAX_QUANTILES`] of them. Two quantiles may still share a key (0.99999 and 1 are
    /// both `p100`): the later one wins in a JS object, as in metrix.
    pub fn new(qs: &[f64]) -> Result<Quantiles, OptionsError> {
        if qs.len() > MAX_QUANTILES {
            return Err(OptionsError::TooManyQuantiles);
        }
        let mut values = Vec::with_capacity(qs.len());
        for &q in qs {
            if !(0.0..=1.0).contains(&q) {
                return Err(OptionsError::Quantile(q));
            }
            values.push(q + 0.0);
        }
        values.sort_by(f64::total_cmp);
        values.dedup();
        let keys = values.iter().map(|&q| percentile_key(q)).collect();
        Ok(Quantiles { values, keys })
    }

    /// The quantiles, increasing.
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// Their report keys, in the same order.
    pub fn keys(&self) -> &[String] {
        &self.keys
    }
}

impl Default for Quantiles {
    /// `[0.5, 0.9, 0.99]`.
    fn default() -> Self {
        Quantiles {
            values: DEFAULT_QUANTILES.to_vec(),
            keys: DEFAULT_QUANTILES
                .iter()
                .map(|&q| percentile_key(q))
                .collect(),
        }
    }
}

/// A histogram's options, as metrix takes them.
#[derive(Debug, Clone, PartialEq)]
pub struct BucketedOptions {
    /// Largest value counted in a bucket; larger ones count in `overflow`.
    pub max: f64,
    /// Relative error of a quantile (bucket widths grow by `1 + 2 * error`).
    pub error: f64,
    /// Quantiles to report.
    pub quantiles: Vec<f64>,
}

impl Default for BucketedOptions {
    fn default() -> Self {
        BucketedOptions {
            max: DEFAULT_MAX,
            error: DEFAULT_ERROR,
            quantiles: DEFAULT_QUANTILES.to_vec(),
        }
    }
}

impl BucketedOptions {
    /// The validated layout and quantiles these options describe.
    pub fn build(&self) -> Result<(Arc<Layout>, Quantiles), OptionsError> {
        Ok((
            Arc::new(Layout::new(self.max, self.error)?),
            Quantiles::new(&self.quantiles)?,
        ))
    }
}

/// The buckets of a `(max, error)` pair. Build it once per set of options and share it (an
/// `Arc`) between the histograms of that set: they then merge.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    max: f64,
    error: f64,
    limits: Vec<f64>,
}

impl Layout {
    /// The bucket limits of metrix for `max` and `error` (both positive and finite, at most
    /// [`MAX_BUCKETS`] buckets).
    pub fn new(max: f64, error: f64) -> Result<Layout, OptionsError> {
        if !(max.is_finite() && max > 0.0) {
            return Err(OptionsError::Max(max));
        }
        if !(error.is_finite() && error > 0.0) {
            return Err(OptionsError::Error(error));
        }
        let ratio = 1.0 + error * 2.0;
        let (mut right, mut width) = (0.0f64, 1.0f64);
        let mut limits = Vec::new();
        while right < max {
            if limits.len() == MAX_BUCKETS {
                return Err(OptionsError::TooManyBuckets);
            }
            right += width;
            if !right.is_finite() {
                return Err(OptionsError::Error(error));
            }
            limits.push(right);
            width *= ratio;
        }
        Ok(Layout { max, error, limits })
    }

    /// `max` of the options.
    pub fn max(&self) -> f64 {
        self.max
    }

    /// `error` of the options.
    pub fn error(&self) -> f64 {
        self.error
    }

    /// The buckets' upper limits, increasing (the last one is >= `max`).
    pub fn limits(&self) -> &[f64] {
        &self.limits
    }

    /// The bucket of a finite `x`, `None` above `max` (overflow).
    pub fn bucket(&self, x: f64) -> Option<usize> {
        // The last limit is >= max >= x: the index is always a bucket.
        (x <= self.max).then(|| self.limits.partition_point(|&l| l < x))
    }

    /// The value reported for bucket `i`: its midpoint, or `limits[0]` for bucket 0.
    pub fn representative(&self, i: usize) -> f64 {
        match i {
            0 => self.limits[0],
            _ => (self.limits[i] + self.limits[i - 1]) / 2.0,
        }
    }

    fn same(&self, other: &Layout) -> bool {
        self.max.to_bits() == other.max.to_bits() && self.error.to_bits() == other.error.to_bits()
    }
}

/// Why two histograms cannot merge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeError {
    /// Their buckets differ (other `max` or `error`), or their quantile lists differ.
    Layout,
}

impl std::fmt::Display for MergeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "histograms with different options do not merge")
    }
}

impl std::error::Error for MergeError {}

/// A bucketed histogram: counts per bucket of its [`Layout`], the overflow count, min and max.
#[derive(Debug, Clone, PartialEq)]
pub struct BucketedHistogram {
    layout: Arc<Layout>,
    counts: Vec<u64>,
    overflow: u64,
    count: u64,
    min: f64,
    max: f64,
    /// Highest non-empty bucket (where the quantile walk starts).
    top: Option<usize>,
}

/// What a histogram reports (metrix's snapshot): nothing when empty.
#[derive(Debug, Clone, PartialEq)]
pub struct BucketedReport {
    /// Smallest value added.
    pub min: f64,
    /// Largest value added.
    pub max: f64,
    /// Values above the layout's `max`, when there are any (metrix omits a zero).
    pub overflow: Option<u64>,
    /// `(key, value)` per quantile, increasing.
    pub quantiles: Vec<(String, f64)>,
}

impl BucketedHistogram {
    /// An empty histogram with the buckets of `layout`.
    pub fn new(layout: Arc<Layout>) -> BucketedHistogram {
        let n = layout.limits.len();
        BucketedHistogram {
            layout,
            counts: vec![0; n],
            overflow: 0,
            count: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            top: None,
        }
    }

    /// The histogram's layout.
    pub fn layout(&self) -> &Arc<Layout> {
        &self.layout
    }

    /// Adds a value; false (and nothing added) when it is not finite.
    pub fn add(&mut self, x: f64) -> bool {
        if !x.is_finite() {
            return false;
        }
        self.count = self.count.saturating_add(1);
        self.min = self.min.min(x);
        self.max = self.max.max(x);
        match self.layout.bucket(x) {
            Some(i) => {
                self.counts[i] = self.counts[i].saturating_add(1);
                self.top = self.top.max(Some(i));
            }
            None => self.overflow = self.overflow.saturating_add(1),
        }
        true
    }

    /// Number of values added.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Number of values above the layout's `max`.
    pub fn overflow(&self) -> u64 {
        self.overflow
    }

    /// Smallest value, `None` when empty.
    pub fn min(&self) -> Option<f64> {
        (self.count > 0).then_some(self.min)
    }

    /// Largest value, `None` when empty.
    pub fn max(&self) -> Option<f64> {
        (self.count > 0).then_some(self.max)
    }

    /// Count of bucket `i` (0 outside the layout).
    pub fn bucket_count(&self, i: usize) -> u64 {
        self.counts.get(i).copied().unwrap_or(0)
    }

    /// Empties the histogram (the layout stays).
    pub fn clear(&mut self) {
        self.counts.iter_mut().for_each(|c| *c = 0);
        self.overflow = 0;
        self.count = 0;
        self.min = f64::INFINITY;
        self.max = f64::NEG_INFINITY;
        self.top = None;
    }

    /// Estimates of `quantiles` (in their order), in one walk from the top; `None` when empty.
    pub fn quantiles(&self, quantiles: &Quantiles) -> Option<Vec<f64>> {
        if self.count == 0 {
            return None;
        }
        let qs = quantiles.values();
        let Some(top) = self.top else {
            // Every value overflowed: the top of the tracked range.
            let last = *self.layout.limits.last()?;
            return Some(vec![last; qs.len()]);
        };
        let n = self.count as f64;
        let mut out = vec![0.0; qs.len()];
        // Quantiles qs[..left] are not answered yet; the highest is reached first.
        let mut left = qs.len();
        let mut acc = self.overflow;
        let mut lowest = top;
        for i in (0..=top).rev() {
            if left == 0 {
                break;
            }
            let c = self.counts[i];
            if c == 0 {
                continue;
            }
            lowest = i;
            acc = acc.saturating_add(c);
            // The same comparison as metrix (`n > (1 - q) * entries`, in f64).
            while left > 0 && acc as f64 > (1.0 - qs[left - 1]) * n {
                out[left - 1] = self.layout.representative(i);
                left -= 1;
            }
        }
        if left > 0 {
            // Never exceeded (q = 0): the walk went all the way down, `lowest` is the lowest
            // non-empty bucket.
            let low = self.layout.representative(lowest);
            out[..left].iter_mut().for_each(|v| *v = low);
        }
        Some(out)
    }

    /// One quantile's estimate; `None` when empty or `q` is not in `[0, 1]`.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let qs = Quantiles::new(&[q]).ok()?;
        Some(self.quantiles(&qs)?[0])
    }

    /// metrix's snapshot: min, max, overflow (when not 0) and the quantiles by key; `None` when
    /// empty (metrix's `{}`).
    pub fn report(&self, quantiles: &Quantiles) -> Option<BucketedReport> {
        let values = self.quantiles(quantiles)?;
        Some(BucketedReport {
            min: self.min,
            max: self.max,
            overflow: (self.overflow > 0).then_some(self.overflow),
            quantiles: quantiles.keys().iter().cloned().zip(values).collect(),
        })
    }

    /// Adds `other`'s values (exact: the result is the histogram of both streams). The layouts
    /// must have the same `max` and `error`.
    pub fn merge(&mut self, other: &BucketedHistogram) -> Result<(), MergeError> {
        if !self.layout.same(&other.layout) {
            return Err(MergeError::Layout);
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a = a.saturating_add(*b);
        }
        self.overflow = self.overflow.saturating_add(other.overflow);
        self.count = self.count.saturating_add(other.count);
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.top = self.top.max(other.top);
        Ok(())
    }

    /// Appends the histogram's state (what a worker sends for a merge), sparse:
    /// ```text
    /// max f64 | error f64 | count varint | overflow varint | min f64 | max f64 |
    /// non-empty buckets varint, then per bucket: index step varint | count varint
    /// ```
    /// (f64 little-endian; a bucket's index is the previous one's + 1 + its step, the first's
    /// is its step). `max`/`error` name the layout, so a mismatch is refused when decoding.
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_f64(out, self.layout.max);
        put_f64(out, self.layout.error);
        put_varint(out, self.count);
        put_varint(out, self.overflow);
        put_f64(out, self.min);
        put_f64(out, self.max);
        let nonempty = self.counts.iter().filter(|&&c| c > 0).count();
        put_varint(out, nonempty as u64);
        let mut next = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            if c > 0 {
                put_varint(out, (i - next) as u64);
                put_varint(out, c);
                next = i + 1;
            }
        }
    }

    /// Reads a histogram written by [`BucketedHistogram::encode`] from the start of `bytes`,
    /// for `layout` (its `max` and `error` must be the encoded ones); returns it and the number of
    /// bytes read. Never panics and never trusts a count: every index is checked against the
    /// layout, the counts must add up, min/max must be finite and ordered.
    pub fn decode(
        bytes: &[u8],
        layout: &Arc<Layout>,
    ) -> Result<(BucketedHistogram, usize), DecodeError> {
        let mut r = Reader::new(bytes);
        let (max, error) = (r.f64()?, r.f64()?);
        if max.to_bits() != layout.max.to_bits() || error.to_bits() != layout.error.to_bits() {
            return Err(DecodeError::Invalid("histogram layout"));
        }
        let mut h = BucketedHistogram::new(layout.clone());
        let count = r.varint()?;
        let overflow = r.varint()?;
        let (min, maxv) = (r.f64()?, r.f64()?);
        // Each bucket takes at least two bytes.
        let nonempty = r.count(2)?;
        if nonempty > h.counts.len() {
            return Err(DecodeError::Invalid("histogram buckets"));
        }
        let mut total = overflow;
        let mut next: u64 = 0;
        for _ in 0..nonempty {
            let index = next
                .checked_add(r.varint()?)
                .filter(|&i| i < h.counts.len() as u64)
                .ok_or(DecodeError::Invalid("histogram bucket index"))?;
            let c = r.varint()?;
            if c == 0 {
                return Err(DecodeError::Invalid("histogram bucket count"));
            }
            total = total
                .checked_add(c)
                .ok_or(DecodeError::Invalid("histogram count"))?;
            h.counts[index as usize] = c;
            h.top = Some(index as usize);
            next = index + 1;
        }
        if total != count {
            return Err(DecodeError::Invalid("histogram count"));
        }
        if count > 0 {
            if !(min.is_finite() && maxv.is_finite() && min <= maxv) {
                return Err(DecodeError::Invalid("histogram min/max"));
            }
            h.count = count;
            h.overflow = overflow;
            h.min = min;
            h.max = maxv;
        }
        Ok((h, r.used()))
    }
}

/// Little-endian numbers and LEB128 varints over a byte slice, shared by this module and
/// [`crate::metrix::frugal`]: the reader never reads past the end and never trusts a count.
#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hist(opts: &BucketedOptions, values: impl IntoIterator<Item = f64>) -> BucketedHistogram {
        let (layout, _) = opts.build().unwrap();
        let mut h = BucketedHistogram::new(layout);
        for v in values {
            assert!(h.add(v));
        }
        h
    }

    fn report(opts: &BucketedOptions, values: impl IntoIterator<Item = f64>) -> BucketedReport {
        let (_, qs) = opts.build().unwrap();
        hist(opts, values).report(&qs).unwrap()
    }

    fn range(a: u32, b: u32) -> impl Iterator<Item = f64> {
        (a..=b).map(f64::from)
    }

    fn opts(max: f64, error: f64, quantiles: &[f64]) -> BucketedOptions {
        BucketedOptions {
            max,
            error,
            quantiles: quantiles.to_vec(),
        }
    }

    fn pairs(kv: &[(&str, f64)]) -> Vec<(String, f64)> {
        kv.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn limits_are_metrix_limits() {
        // From metrix@2.0.0: `new BucketedHistogram({})._limits`.
        let l = Layout::new(DEFAULT_MAX, DEFAULT_ERROR).unwrap();
        assert_eq!(l.limits().len(), 1055);
        assert_eq!(
            &l.limits()[..8],
            &[
                1.0,
                2.01,
                3.0301,
                4.060401,
                5.10100501,
                6.1520150601,
                7.213535210701,
                8.28567056280801
            ]
        );
        assert_eq!(*l.limits().last().unwrap(), 3622741.555918942);
        let l = Layout::new(5000.0, 0.05).unwrap();
        assert_eq!(
            (l.limits().len(), *l.limits().last().unwrap()),
            (66, 5384.077978276362)
        );
        let l = Layout::new(10.0, 0.1).unwrap();
        assert_eq!(
            (l.limits().len(), *l.limits().last().unwrap()),
            (7, 12.915904)
        );
    }

    /// Golden reports printed by node with metrix@2.0.0's BucketedHistogram (same inputs).
    #[test]
    fn golden_reports_from_metrix() {
        let d = BucketedOptions::default();
        let r = report(&d, range(1, 100));
        assert_eq!((r.min, r.max, r.overflow), (1.0, 100.0, None));
        assert_eq!(
            r.quantiles,
            pairs(&[
                ("p50", 49.630805225616214),
                ("p90", 91.89133206152215),
                ("p99", 99.68288962746152)
            ])
        );
        let r = report(
            &opts(DEFAULT_MAX, 0.005, &[0.5, 0.75, 0.9, 0.95, 0.99, 0.999]),
            range(1, 100),
        );
        assert_eq!(
            r.quantiles,
            pairs(&[
                ("p50", 49.630805225616214),
                ("p75", 75.45388683029495),
                ("p90", 91.89133206152215),
                ("p95", 95.74834783595875),
                ("p99", 99.68288962746152),
                ("p99.9", 99.68288962746152)
            ])
        );
        let r = report(&opts(DEFAULT_MAX, 0.01, &DEFAULT_QUANTILES), range(1, 1000));
        assert_eq!(
            r.quantiles,
            pairs(&[
                ("p50", 504.5135478917328),
                ("p90", 896.4916760106785),
                ("p99", 995.0032898719842)
            ])
        );
        let r = report(&opts(5000.0, 0.05, &DEFAULT_QUANTILES), range(1, 1000));
        assert_eq!(
            r.quantiles,
            pairs(&[
                ("p50", 512.7444018124334),
                ("p90", 916.0735952192365),
                ("p99", 1008.6809547411601)
            ])
        );
        let r = report(&d, [0.5, 1.0, 1.5, 2.0]);
        assert_eq!(
            r.quantiles,
            pairs(&[("p50", 1.0), ("p90", 1.505), ("p99", 1.505)])
        );
        let r = report(&d, [42.0]);
        assert_eq!(r.quantiles[0], ("p50".to_string(), 42.368576981142425));
        let r = report(
            &opts(1e6, 0.02, &[0.1, 0.25, 0.5, 0.75, 0.9, 0.99]),
            (1..=500).map(|i| f64::from(i * i)),
        );
        assert_eq!(
            r.quantiles,
            pairs(&[
                ("p10", 2483.6546467026646),
                ("p25", 15824.217504769955),
                ("p50", 62517.42276244398),
                ("p75", 142494.67593361804),
                ("p90", 202824.9382588006),
                ("p99", 246772.9661342306)
            ])
        );
    }

    #[test]
    fn golden_overflow_from_metrix() {
        // Quantiles among overflowed values report the highest non-empty bucket, as metrix.
        let r = report(&opts(100.0, 0.005, &DEFAULT_QUANTILES), range(1, 200));
        assert_eq!((r.min, r.max, r.overflow), (1.0, 200.0, Some(100)));
        assert!(r.quantiles.iter().all(|(_, v)| *v == 99.68288962746152));
        let r = report(&opts(10.0, 0.1, &DEFAULT_QUANTILES), range(1, 100));
        assert_eq!(r.overflow, Some(90));
        assert!(r.quantiles.iter().all(|(_, v)| *v == 11.422912));
    }

    #[test]
    fn fixed_metrix_bugs() {
        let d = BucketedOptions::default();
        // Negative values: metrix said max 5e-324.
        let r = report(&d, [-5.0, -3.0]);
        assert_eq!((r.min, r.max), (-5.0, -3.0));
        assert_eq!(r.quantiles[0].1, 1.0, "bucket 0, as metrix");
        // Numeric order: metrix's string sort put 1e-7 after 0.9.
        let qs = Quantiles::new(&[0.9, 1e-7, 0.5, 0.5]).unwrap();
        assert_eq!(qs.values(), &[1e-7, 0.5, 0.9]);
        assert_eq!(qs.keys(), &["p0", "p50", "p90"]);
        // All values overflowed: the last limit, not limits[0].
        let h = hist(&opts(10.0, 0.1, &[0.5]), [50.0, 60.0]);
        assert_eq!(h.quantile(0.5), Some(12.915904));
        // q = 0: the lowest non-empty bucket, not the last limit.
        let h = hist(&d, range(10, 20));
        assert_eq!(h.quantile(0.0), Some(h.layout().representative(9)));
        assert!(h.quantile(0.0).unwrap() < h.quantile(0.01).unwrap() + 1e-9);
        // Non-finite values are refused, not thrown or counted.
        let mut h = hist(&d, []);
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert!(!h.add(bad));
        }
        assert_eq!(h.count(), 0);
        assert_eq!(
            h.report(&Quantiles::default()),
            None,
            "empty: metrix's {{}}"
        );
        assert_eq!(h.quantile(0.5), None);
    }

    #[test]
    fn bad_options_are_refused() {
        for max in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(matches!(Layout::new(max, 0.01), Err(OptionsError::Max(_))));
        }
        for error in [0.0, -0.1, -0.6, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                Layout::new(100.0, error),
                Err(OptionsError::Error(_))
            ));
        }
        assert_eq!(Layout::new(1e300, 1e-9), Err(OptionsError::TooManyBuckets));
        let huge = Layout::new(1e308, 1e307).unwrap_err();
        assert!(matches!(huge, OptionsError::Error(_)));
        // Readable numbers in messages (Display would print 1e307's 308 digits).
        assert_eq!(
            huge.to_string(),
            "error must be a small positive finite number, got 1e307"
        );
        // A tiny max still has one bucket.
        assert_eq!(Layout::new(0.5, 0.01).unwrap().limits(), &[1.0]);
        for q in [-0.1, 1.01, f64::NAN] {
            assert!(matches!(
                Quantiles::new(&[q]),
                Err(OptionsError::Quantile(_))
            ));
        }
        assert_eq!(
            Quantiles::new(&[0.5; MAX_QUANTILES + 1]),
            Err(OptionsError::TooManyQuantiles)
        );
    }

    #[test]
    fn keys_match_metrix() {
        // `'p' + parseFloat((100 * q).toFixed(2))`, printed by node.
        let expected = [
            (0.0, "p0"),
            (-0.0, "p0"),
            (0.001, "p0.1"),
            (0.00125, "p0.13"),
            (0.005, "p0.5"),
            (0.01, "p1"),
            (0.0105, "p1.05"),
            (0.125, "p12.5"),
            (0.25, "p25"),
            (0.5, "p50"),
            (0.555, "p55.5"),
            (0.9, "p90"),
            (0.99, "p99"),
            (0.999, "p99.9"),
            (0.9999, "p99.99"),
            (0.99999, "p100"),
            (0.12345, "p12.35"),
            (0.33333, "p33.33"),
            (0.66666666, "p66.67"),
            (1.0, "p100"),
            (0.00005, "p0.01"),
            (0.00004999, "p0"),
            (0.995, "p99.5"),
            (0.9995, "p99.95"),
            (0.99995, "p100"),
            (0.07, "p7"),
            (0.29, "p29"),
            (0.58, "p58"),
            (0.145, "p14.5"),
            (0.565, "p56.5"),
            (0.285, "p28.5"),
        ];
        for (q, key) in expected {
            assert_eq!(percentile_key(q), key, "q = {q}");
        }
    }

    #[test]
    fn merge_refuses_other_layouts_and_round_trips() {
        let a = hist(&BucketedOptions::default(), range(1, 10));
        let mut b = hist(&opts(1000.0, 0.005, &[0.5]), range(1, 10));
        assert_eq!(b.merge(&a), Err(MergeError::Layout));
        let mut out = vec![];
        a.encode(&mut out);
        assert_eq!(
            BucketedHistogram::decode(&out, b.layout()),
            Err(DecodeError::Invalid("histogram layout"))
        );
        out.push(0xff);
        assert_eq!(
            BucketedHistogram::decode(&out, a.layout()),
            Ok((a.clone(), out.len() - 1))
        );
        // Short: truncated at every cut.
        for cut in 0..out.len() - 1 {
            assert!(BucketedHistogram::decode(&out[..cut], a.layout()).is_err());
        }
        // Empty round-trips.
        let e = hist(&BucketedOptions::default(), []);
        let mut out = vec![];
        e.encode(&mut out);
        assert_eq!(BucketedHistogram::decode(&out, e.layout()).unwrap().0, e);
    }

    #[test]
    fn decode_checks_the_counts() {
        let h = hist(&BucketedOptions::default(), [1.0, 5.0, 5.0, 1e7]);
        let layout = h.layout().clone();
        let mut good = vec![];
        h.encode(&mut good);
        // Layout: max, error (16) | count 4 | overflow 1 | min, max (16) | 2 buckets:
        // (step 0, count 1), (step 3, count 2).
        assert_eq!(&good[16..18], &[4, 1]);
        assert_eq!(&good[34..], &[2, 0, 1, 3, 2]);
        let with = |at: usize, byte: u8| {
            let mut b = good.clone();
            b[at] = byte;
            BucketedHistogram::decode(&b, &layout)
        };
        assert_eq!(with(16, 5), Err(DecodeError::Invalid("histogram count")));
        assert_eq!(
            with(36, 0),
            Err(DecodeError::Invalid("histogram bucket count"))
        );
        // A step past the last bucket (16383 > 1055).
        let mut far = good[..37].to_vec();
        far.extend_from_slice(&[0xff, 0x7f, 2]);
        assert_eq!(
            BucketedHistogram::decode(&far, &layout),
            Err(DecodeError::Invalid("histogram bucket index"))
        );
        // A step too large for a varint.
        let mut huge = good[..37].to_vec();
        huge.extend_from_slice(&[0xff; 9]);
        huge.extend_from_slice(&[0x7f, 2]);
        assert_eq!(
            BucketedHistogram::decode(&huge, &layout),
            Err(DecodeError::Invalid("varint"))
        );
        assert_eq!(with(34, 0x7f), Err(DecodeError::Truncated));
        let mut swapped = good.clone();
        swapped[18..34].rotate_left(8); // min > max
        assert_eq!(
            BucketedHistogram::decode(&swapped, &layout),
            Err(DecodeError::Invalid("histogram min/max"))
        );
    }

    fn values() -> impl Strategy<Value = Vec<f64>> {
        prop::collection::vec(
            prop_oneof![
                0.0f64..200.0,
                -5.0f64..5.0,
                1.0f64..5_000.0,
                (0u32..2000).prop_map(f64::from),
            ],
            0..120,
        )
    }

    fn small() -> Arc<Layout> {
        // max 1000, error 1%: overflow is common in the strategies above.
        Arc::new(Layout::new(1000.0, 0.01).unwrap())
    }

    proptest! {
        #[test]
        fn merge_equals_recording_both(a in values(), b in values()) {
            let layout = small();
            let (mut ha, mut hb, mut both) = (
                BucketedHistogram::new(layout.clone()),
                BucketedHistogram::new(layout.clone()),
                BucketedHistogram::new(layout),
            );
            for &v in &a { ha.add(v); both.add(v); }
            for &v in &b { hb.add(v); both.add(v); }
            ha.merge(&hb).unwrap();
            if both.count() == 0 {
                prop_assert_eq!(ha.count(), 0);
            } else {
                prop_assert_eq!(&ha, &both);
            }
            let mut out = Vec::new();
            both.encode(&mut out);
            let (decoded, used) = BucketedHistogram::decode(&out, both.layout()).unwrap();
            prop_assert_eq!(used, out.len());
            prop_assert_eq!(decoded.quantiles(&Quantiles::default()), both.quantiles(&Quantiles::default()));
        }

        #[test]
        fn quantiles_are_monotone_in_q(vs in values(), mut qs in prop::collection::vec(0.0f64..=1.0, 1..20)) {
            let mut h = BucketedHistogram::new(small());
            for &v in &vs { h.add(v); }
            qs.sort_by(f64::total_cmp);
            let quantiles = Quantiles::new(&qs).unwrap();
            if let Some(est) = h.quantiles(&quantiles) {
                prop_assert!(est.windows(2).all(|w| w[0] <= w[1]), "{:?} -> {:?}", quantiles.values(), est);
                // Each estimate is one at a time the same as in a list.
                for (q, e) in quantiles.values().iter().zip(&est) {
                    prop_assert_eq!(h.quantile(*q), Some(*e));
                }
            } else {
                prop_assert!(vs.is_empty());
            }
        }

        #[test]
        fn quantile_is_the_bucket_of_the_exact_rank(vs in prop::collection::vec(-10.0f64..990.0, 1..300), q in 0.01f64..=1.0) {
            // Without overflow the walk answers the bucket of the k-th largest value, the
            // smallest k with k > (1 - q) n. (Not a relative-error bound: buckets start 1 wide,
            // so small values carry up to half a unit of error; metrix says 15.33 for 15.80.)
            let mut h = BucketedHistogram::new(small());
            for &v in &vs { h.add(v); }
            let mut desc = vs.clone();
            desc.sort_by(|a, b| b.total_cmp(a));
            let k = ((1.0 - q) * vs.len() as f64).floor() as usize + 1;
            let bucket = h.layout().bucket(desc[k - 1]).unwrap();
            prop_assert_eq!(h.quantile(q), Some(h.layout().representative(bucket)));
        }

        #[test]
        fn decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let layout = small();
            let _ = BucketedHistogram::decode(&bytes, &layout);
            // And with a valid layout header, so the rest is reached.
            let mut framed = Vec::new();
            framed.extend_from_slice(&1000.0f64.to_le_bytes());
            framed.extend_from_slice(&0.01f64.to_le_bytes());
            framed.extend_from_slice(&bytes);
            if let Ok((h, used)) = BucketedHistogram::decode(&framed, &layout) {
                prop_assert!(used <= framed.len());
                let _ = h.report(&Quantiles::default());
            }
        }

        #[test]
        fn keys_are_p_and_a_short_number(q in 0.0f64..=1.0) {
            let key = percentile_key(q);
            let v: f64 = key[1..].parse().unwrap();
            prop_assert!((v - 100.0 * q).abs() <= 0.005 + 1e-12, "{} for {}", key, q);
        }
    }
}
