//! The state behind `histogram(path, id, value)`: one series' value distribution over an
//! interval ([`Distribution`]), with one of three reservoirs for its percentiles.
//!
//! - `'hdr'` (default): an HdrHistogram (the `hdrhistogram` crate). Values are recorded as whole
//!   multiples of `lowest` (the resolution, in the user's unit); the histogram's buckets then
//!   hold each value to `significant_figures` decimal digits. Two histograms of the same options
//!   merge exactly by adding their buckets: a cluster-wide p99 is the p99 of the union.
//! - `'uniform'`: Vitter's algorithm R, a uniform sample of 1024 values (Pandora/Dropwizard).
//! - `'decaying'`: a forward-decay priority sample of 1028 values biased to the last ~5 minutes
//!   (Pandora/Dropwizard), with weighted quantiles.
//!
//! Whatever the reservoir, count, min, max, mean and stddev are exact: a
//! [`crate::stats::summary::Summary`] is kept beside it and merged with Chan's rule
//! ([`Summary::merge`]). Only percentiles come from the reservoir.
//!
//! # HDR values and their error
//! A value `v` (clamped into `0..=highest`) is recorded as the integer `i = round(v / lowest)`.
//! A percentile is the HdrHistogram `valueAtQuantile`: the *highest equivalent value* of the
//! bucket holding the value of rank `max(1, ceil(q * count))` (for q = 0, the lowest equivalent
//! value), multiplied back by `lowest` and then clamped into the exact `[min, max]`. A bucket
//! holding `i` spans less than `i / 10^s` (s significant figures: for s = 3, buckets are
//! 1/1024 of their magnitude wide, integers below 2048 are exact), so a reported percentile is
//! within `v / 10^s + lowest` of the exact value of that rank (and never below it by more than
//! `lowest / 2`, the rounding to the resolution).
//!
//! # Memory
//! The HDR buckets are kept compact (`stats/hdr.rs`, in the `hdrhistogram` crate's layout): an
//! empty [`Distribution`] holds no heap memory, a few values 8 bytes per occupied bucket, many
//! values one byte per bucket across the occupied range only (with the default options, values
//! from 1 ms to 10 s: 13.5 KB whatever their number; the `hdrhistogram` crate would hold
//! 122,880 bytes), plus 16 bytes for each bucket whose count reaches 256.
//! ([`Distribution::heap_bytes`] reports it; a test pins these numbers.) The `hdrhistogram`
//! crate answers percentiles from a histogram built from those counts when they are read. A
//! uniform reservoir holds at most 1024 x 8 bytes, a decaying one 1028 x 24 bytes.
//!
//! # Encoding
//! See [`Distribution::encode`]; [`Distribution::decode`] never panics, never allocates more
//! than the bytes read justify (a decoded HDR histogram stays a sparse list of buckets until it
//! is recorded into, merged into or read), and refuses any state the code could not have made.

use std::sync::atomic::{AtomicU64, Ordering};

use hdrhistogram::Histogram;

use crate::bytes::{put_f64, put_varint, DecodeError, Reader};
use crate::stats::hdr::{units_index, Counts, Layout};
use crate::stats::reservoir::{Decaying, Sample, Uniform, DECAYING_SIZE, UNIFORM_SIZE};
use crate::stats::summary::Summary;

/// Which reservoir a histogram's percentiles come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reservoir {
    /// An HdrHistogram: bounded relative error, exact merge across processes (the default).
    #[default]
    Hdr,
    /// Vitter's algorithm R, 1024 samples.
    Uniform,
    /// Forward-decay (exponentially decaying) priority sample, 1028 samples, alpha 0.015.
    Decaying,
}

impl Reservoir {
    /// The option's JS spelling: `'hdr'`, `'uniform'` or `'decaying'`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reservoir::Hdr => "hdr",
            Reservoir::Uniform => "uniform",
            Reservoir::Decaying => "decaying",
        }
    }

    /// Parses the option's JS spelling.
    pub fn parse(text: &str) -> Result<Self, OptionsError> {
        match text {
            "hdr" => Ok(Reservoir::Hdr),
            "uniform" => Ok(Reservoir::Uniform),
            "decaying" => Ok(Reservoir::Decaying),
            _ => Err(OptionsError::new(
                "histogram.reservoir",
                format!("must be 'hdr', 'uniform' or 'decaying', got {text:?}"),
            )),
        }
    }

    fn tag(self) -> u8 {
        match self {
            Reservoir::Hdr => 0,
            Reservoir::Uniform => 1,
            Reservoir::Decaying => 2,
        }
    }
}

/// An invalid histogram option: which one, and why (the binding throws it as a `RangeError`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionsError {
    field: &'static str,
    message: String,
}

impl OptionsError {
    fn new(field: &'static str, rest: String) -> Self {
        OptionsError {
            field,
            message: format!("{field} {rest}"),
        }
    }

    /// An error about `field` whose whole message is `message` (for messages that name an
    /// element, such as `options.buckets[2]`).
    pub(crate) fn with_message(field: &'static str, message: String) -> Self {
        OptionsError { field, message }
    }

    /// The option, spelt as in JS: `histogram.significantFigures`, `histogram.lowest`, ...
    pub fn field(&self) -> &'static str {
        self.field
    }
}

impl std::fmt::Display for OptionsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for OptionsError {}

/// Largest `highest / lowest`: resolution units stay exact integers in an f64, and well inside
/// HdrHistogram's `u64::MAX / 2`.
const MAX_UNITS: f64 = 9_007_199_254_740_992.0; // 2^53

/// A histogram's options, valid by construction ([`HistogramOptions::new`]). Two distributions
/// merge only if their options are equal.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HistogramOptions {
    significant_figures: u8,
    lowest: f64,
    highest: f64,
    reservoir: Reservoir,
}

impl Default for HistogramOptions {
    /// 3 significant figures, a resolution of 0.001 (a microsecond for milliseconds), values up
    /// to 3,600,000 (an hour in milliseconds), the HDR reservoir.
    fn default() -> Self {
        HistogramOptions {
            significant_figures: 3,
            lowest: 0.001,
            highest: 3_600_000.0,
            reservoir: Reservoir::Hdr,
        }
    }
}

impl HistogramOptions {
    /// Checks and makes options.
    ///
    /// - `significant_figures`: 1 to 5, the decimal digits an HDR bucket keeps.
    /// - `lowest`: a finite number above 0, the resolution in the user's unit: HDR values are
    ///   recorded as whole multiples of it (0.001 ms keeps microseconds).
    /// - `highest`: finite, from `2 x lowest` to `2^53 x lowest`: larger values are clamped to it
    ///   (and counted).
    ///
    /// The range applies to every reservoir (values are clamped the same way), so a series'
    /// count of clamped values does not depend on the reservoir.
    pub fn new(
        significant_figures: u8,
        lowest: f64,
        highest: f64,
        reservoir: Reservoir,
    ) -> Result<Self, OptionsError> {
        if !(1..=5).contains(&significant_figures) {
            return Err(OptionsError::new(
                "histogram.significantFigures",
                format!("must be an integer from 1 to 5, got {significant_figures}"),
            ));
        }
        if !(lowest.is_finite() && lowest > 0.0) {
            return Err(OptionsError::new(
                "histogram.lowest",
                format!("must be a finite number above 0, got {}", js(lowest)),
            ));
        }
        let units = highest / lowest;
        if !(highest.is_finite() && (2.0..=MAX_UNITS).contains(&units)) {
            return Err(OptionsError::new(
                "histogram.highest",
                format!(
                    "must be a finite number from 2 x lowest to 2^53 x lowest (lowest is {}), got {}",
                    js(lowest),
                    js(highest)
                ),
            ));
        }
        Ok(HistogramOptions {
            significant_figures,
            lowest,
            highest,
            reservoir,
        })
    }

    /// Decimal digits an HDR bucket keeps (1 to 5).
    pub fn significant_figures(&self) -> u8 {
        self.significant_figures
    }

    /// The resolution, in the user's unit.
    pub fn lowest(&self) -> f64 {
        self.lowest
    }

    /// The largest value kept; larger ones are clamped to it.
    pub fn highest(&self) -> f64 {
        self.highest
    }

    /// Where percentiles come from.
    pub fn reservoir(&self) -> Reservoir {
        self.reservoir
    }

    /// Appends the options: reservoir tag u8 | significant figures u8 | lowest f64 | highest f64
    /// (the form a distribution and a snapshot's profile share).
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[self.reservoir.tag(), self.significant_figures]);
        put_f64(out, self.lowest);
        put_f64(out, self.highest);
    }

    /// Reads what [`HistogramOptions::encode`] wrote; options no constructor accepts are invalid.
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<HistogramOptions, DecodeError> {
        let reservoir = match r.u8()? {
            0 => Reservoir::Hdr,
            1 => Reservoir::Uniform,
            2 => Reservoir::Decaying,
            _ => return Err(DecodeError::Invalid("reservoir")),
        };
        let figures = r.u8()?;
        let (lowest, highest) = (r.f64()?, r.f64()?);
        HistogramOptions::new(figures, lowest, highest, reservoir)
            .map_err(|_| DecodeError::Invalid("options"))
    }

    /// `highest` in resolution units: the largest integer the HDR histogram records.
    fn top_unit(&self) -> u64 {
        (self.highest / self.lowest).round() as u64
    }
}

/// A number as JS would print it in an error message (integers without `.0`).
pub(crate) fn js(v: f64) -> String {
    match v {
        f64::INFINITY => "Infinity".into(),
        f64::NEG_INFINITY => "-Infinity".into(),
        _ => format!("{v}"),
    }
}

/// Checks `histogram.significantFigures` as JS gives it (any number): an integer from 1 to 5.
pub fn significant_figures(given: f64) -> Result<u8, OptionsError> {
    if given.fract() == 0.0 && (1.0..=5.0).contains(&given) {
        Ok(given as u8)
    } else {
        Err(OptionsError::new(
            "histogram.significantFigures",
            format!("must be an integer from 1 to 5, got {}", js(given)),
        ))
    }
}

/// Checks a `histogram.percentiles` list: each a number from 0 to 100, no two with the same
/// [`percentile_key`].
pub fn validate_percentiles(percentiles: &[f64]) -> Result<(), OptionsError> {
    let mut keys = std::collections::HashSet::new();
    for &p in percentiles {
        if !(0.0..=100.0).contains(&p) {
            return Err(OptionsError::new(
                "histogram.percentiles",
                format!("must hold numbers from 0 to 100, got {}", js(p)),
            ));
        }
        if !keys.insert(percentile_key(p)) {
            return Err(OptionsError::new(
                "histogram.percentiles",
                format!("must not repeat a percentile, got {} twice", js(p)),
            ));
        }
    }
    Ok(())
}

/// The output key of a percentile: `p` followed by its shortest decimal form, with the decimal
/// point dropped for 10 <= p < 100 (`50 -> p50`, `99.9 -> p999`, `99.99 -> p9999`, as
/// panopticon users expect) and replaced by `_` otherwise (`0.5 -> p0_5`, `5 -> p5`,
/// `9.99 -> p9_99`, `100 -> p100`).
///
/// Distinct percentiles get distinct keys: the shortest decimal form is distinct for distinct
/// numbers and never ends in a fractional `0`; keys without `_` are one digit (0 to 9), `p100`,
/// or at least two digits read as two integer digits then the fraction (10 <= p < 100), which
/// cannot collide with one another.
pub fn percentile_key(p: f64) -> String {
    // `+ 0.0` turns -0 into 0; Rust's `{}` for f64 is the shortest round-trip form, never in
    // exponent notation.
    let text = format!("{}", p + 0.0);
    if (10.0..100.0).contains(&p) {
        format!("p{}", text.replace('.', ""))
    } else {
        format!("p{}", text.replace('.', "_"))
    }
}

/// Two distributions with different options cannot be merged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MergeError {
    /// The options of the distribution merged into.
    pub ours: HistogramOptions,
    /// The options of the one offered.
    pub theirs: HistogramOptions,
}

impl std::fmt::Display for MergeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let o = |o: &HistogramOptions| {
            format!(
                "{} {} figures {}..{}",
                o.reservoir.as_str(),
                o.significant_figures,
                js(o.lowest),
                js(o.highest)
            )
        };
        write!(
            f,
            "histograms with different options do not merge: {} vs {}",
            o(&self.ours),
            o(&self.theirs)
        )
    }
}

impl std::error::Error for MergeError {}

/// The statistics of a distribution (what a delivery reports).
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    /// Number of values recorded (exact).
    pub count: u64,
    /// Smallest value (exact, after clamping); `None` when empty.
    pub min: Option<f64>,
    /// Largest value (exact, after clamping); `None` when empty.
    pub max: Option<f64>,
    /// Mean (exact up to rounding); `None` when empty.
    pub mean: Option<f64>,
    /// Sample standard deviation (divisor n - 1), as panopticon's sigma; `None` below 2 values.
    pub stddev: Option<f64>,
    /// The percentiles asked for, in the same order; `None` when empty.
    pub percentiles: Vec<Option<f64>>,
}

#[derive(Debug, Clone)]
enum State {
    /// HDR bucket counts (decoding costs memory in proportion to the bytes read).
    Hdr(Counts),
    Uniform(Uniform),
    Decaying(Decaying),
}

/// One series' value distribution: an exact summary beside a reservoir for percentiles.
#[derive(Debug, Clone)]
pub struct Distribution {
    options: HistogramOptions,
    summary: Summary,
    clamped: u64,
    state: State,
    rng: fastrand::Rng,
}

/// The version of [`Distribution::encode`]'s layout.
pub const ENCODING: u8 = 1;
/// Largest count a distribution encodes (counts are whole numbers kept exactly in an f64).
const MAX_COUNT: u64 = 1 << 53;

/// Values recorded per chunk of bucket indexes (a stack buffer between the summary's second
/// pass and the counts).
const CHUNK: usize = 256;

/// Two distributions are equal when they hold the same state: the same encoding.
impl PartialEq for Distribution {
    fn eq(&self, other: &Distribution) -> bool {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        self.encode(&mut a);
        other.encode(&mut b);
        a == b
    }
}

impl Distribution {
    /// An empty distribution. `seed` seeds the random choices of the `uniform` and `decaying`
    /// reservoirs (give each series its own, e.g. from its id, so runs are reproducible).
    pub fn new(options: &HistogramOptions, seed: u64) -> Self {
        let state = match options.reservoir {
            Reservoir::Hdr => State::Hdr(Counts::default()),
            Reservoir::Uniform => State::Uniform(Uniform::default()),
            Reservoir::Decaying => State::Decaying(Decaying::default()),
        };
        Distribution {
            options: *options,
            summary: Summary::default(),
            clamped: 0,
            state,
            rng: fastrand::Rng::with_seed(seed),
        }
    }

    /// The options it was made with.
    pub fn options(&self) -> &HistogramOptions {
        &self.options
    }

    /// Records one value at `now_ms` (epoch ms; only the decaying reservoir reads it). The
    /// caller drops non-finite values; one that slips through is recorded as 0 or `highest`
    /// like any value out of range: a value below 0 or above `highest` is clamped into range
    /// and counted in [`Distribution::clamped`]. Never panics.
    pub fn record(&mut self, value: f64, now_ms: f64) {
        self.record_all(&[value], now_ms);
    }

    /// Records `values` at `now_ms`, as [`Distribution::record`] would one by one, but faster:
    /// the exact summary of the batch is computed in two passes (no division per value) and
    /// combined with the distribution's (Chan et al.); for HDR, the second pass also finds each
    /// value's bucket (`units_index` of `stats/hdr.rs`), and the buckets are counted a chunk at
    /// a time.
    pub fn record_all(&mut self, values: &[f64], now_ms: f64) {
        self.record_run(values, now_ms);
    }

    /// [`Distribution::record_all`] of values held as `f64` bits in cells shared with JS (the
    /// engine's batch), read in place.
    pub(crate) fn record_cells(&mut self, cells: &[AtomicU64], now_ms: f64) {
        self.record_run(cells, now_ms);
    }

    fn record_run<V: Values>(&mut self, values: V, now_ms: f64) {
        if values.len() == 0 {
            return;
        }
        let highest = self.options.highest;
        let (total, min, max, clamped) = first_pass(values, highest);
        self.clamped += clamped;
        // Counting by 1.0 is exact up to 2^53 values.
        let count = values.len() as f64;
        let mut batch = Summary {
            count,
            total,
            min,
            max,
            mean: total / count,
            m2: 0.0,
        };
        let mean = batch.mean;
        let deviation = |v: f64| {
            let d = v - mean;
            d * d
        };
        match &mut self.state {
            State::Hdr(counts) => {
                let per_unit = 1.0 / self.options.lowest;
                let top = self.options.top_unit() as f64;
                // The layout's shifts as constants.
                let pass = match Layout::new(self.options.significant_figures).half_magnitude() {
                    4 => second_pass::<V, 4>,
                    7 => second_pass::<V, 7>,
                    10 => second_pass::<V, 10>,
                    14 => second_pass::<V, 14>,
                    _ => second_pass::<V, 17>,
                };
                let mut indexes = [0u32; CHUNK];
                let mut m2 = [0.0; 2];
                let mut start = 0;
                while start < values.len() {
                    let end = values.len().min(start + CHUNK);
                    let indexes = &mut indexes[..end - start];
                    pass(
                        values, start, &mut m2, mean, highest, per_unit, top, indexes,
                    );
                    counts.record(indexes);
                    start = end;
                }
                batch.m2 = m2[0] + m2[1];
            }
            State::Uniform(u) => {
                batch.m2 = (0..values.len())
                    .map(|i| deviation(clamp(values.at(i), highest)))
                    .sum();
                (0..values.len())
                    .for_each(|i| u.record(clamp(values.at(i), highest), &mut self.rng));
            }
            State::Decaying(d) => {
                batch.m2 = (0..values.len())
                    .map(|i| deviation(clamp(values.at(i), highest)))
                    .sum();
                (0..values.len())
                    .for_each(|i| d.record(clamp(values.at(i), highest), now_ms, &mut self.rng));
            }
        }
        self.summary = self.summary.merge(&batch);
    }

    /// How many recorded values were out of range (below 0, above `highest`, or NaN) and clamped.
    pub fn clamped(&self) -> u64 {
        self.clamped
    }

    /// How many values were recorded (exact, for every reservoir).
    pub fn count(&self) -> u64 {
        self.summary.count as u64
    }

    /// True when no value was recorded.
    pub fn is_empty(&self) -> bool {
        self.summary.is_empty()
    }

    /// Adds another distribution of the same options, as if its values had been recorded here.
    ///
    /// Count, min, max, mean and stddev merge exactly (Chan's rule) and clamped counts add up.
    /// Percentiles: `hdr` adds the histograms' buckets, exactly; `uniform` keeps a uniform
    /// sample of the union weighted by each side's count ([`crate::stats::reservoir::Uniform`]);
    /// `decaying` keeps the 1028 highest priorities of both after bringing them to the later
    /// landmark ([`crate::stats::reservoir::Decaying`]). Reservoirs never exceed their size.
    pub fn merge(&mut self, other: &Distribution) -> Result<(), MergeError> {
        if self.options != other.options {
            return Err(MergeError {
                ours: self.options,
                theirs: other.options,
            });
        }
        self.summary = self.summary.merge(&other.summary);
        self.clamped = self.clamped.saturating_add(other.clamped);
        match (&mut self.state, &other.state) {
            (State::Hdr(ours), State::Hdr(theirs)) => ours.merge(theirs),
            (State::Uniform(ours), State::Uniform(theirs)) => ours.merge(theirs, &mut self.rng),
            (State::Decaying(ours), State::Decaying(theirs)) => ours.merge(theirs),
            // Same options, same reservoir kind: unreachable, and harmless if not.
            _ => {}
        }
        Ok(())
    }

    /// Count, min, max, mean, stddev, and the given percentiles (each from 0 to 100, as checked
    /// by [`validate_percentiles`]; others are clamped into that range), in the order given.
    pub fn stats(&self, percentiles: &[f64]) -> Stats {
        let s = &self.summary;
        let qs: Vec<f64> = percentiles
            .iter()
            .map(|p| {
                if p.is_nan() {
                    0.0
                } else {
                    p.clamp(0.0, 100.0) / 100.0
                }
            })
            .collect();
        let raw = if s.is_empty() {
            vec![None; qs.len()]
        } else {
            match &self.state {
                State::Hdr(hdr) => self.hdr_quantiles(hdr, &qs),
                State::Uniform(u) => u.quantiles(&qs),
                State::Decaying(d) => d.quantiles(&qs),
            }
        };
        Stats {
            count: self.count(),
            min: s.min(),
            max: s.max(),
            mean: s.average(),
            stddev: s.sigma(),
            // The reservoir's answer never lies outside the exact range (HDR reports a bucket's
            // top, which can exceed the true max).
            percentiles: raw
                .into_iter()
                .map(|v| v.map(|v| v.clamp(s.min, s.max)))
                .collect(),
        }
    }

    /// The percentiles of the `hdrhistogram` crate's histogram (auto-resizing from 1..2 up)
    /// holding these counts: its layout is theirs, so these are exactly its answers.
    fn hdr_quantiles(&self, counts: &Counts, qs: &[f64]) -> Vec<Option<f64>> {
        let figures = self.options.significant_figures;
        let built = (!counts.is_empty())
            .then(|| Histogram::<u64>::new(figures).ok())
            .flatten();
        let Some(mut h) = built else {
            return vec![None; qs.len()];
        };
        let layout = Layout::new(figures);
        counts.for_each(|index, n| {
            // Auto-resize only fails past u64::MAX / 2, far above our 2^53 units.
            let _ = h.record_n(layout.value(index), n);
        });
        // Back to the user's unit.
        qs.iter()
            .map(|&q| Some(self.to_user(h.value_at_quantile(q))))
            .collect()
    }

    /// A whole number of resolution units in the user's unit. When 1 / lowest is a whole
    /// number (0.001 -> 1000), dividing by it rounds correctly (500223 units -> 500.223), where
    /// multiplying by an inexact 0.001 can print as 500.22300000000007.
    fn to_user(&self, unit: u64) -> f64 {
        let per_unit = 1.0 / self.options.lowest;
        if per_unit.fract() == 0.0 {
            unit as f64 / per_unit
        } else {
            unit as f64 * self.options.lowest
        }
    }

    /// The HDR buckets that hold values, ascending: the smallest and the largest value each
    /// can hold (its lowest and highest whole unit, in the user's unit) and its count. None for
    /// the other reservoirs. What an exact re-bucketing (OTLP's exponential histograms) needs:
    /// every value recorded in a bucket is one of its units, so a bucket lies wholly inside a
    /// coarser bucket when both ends do.
    pub fn hdr_buckets(&self) -> Option<Vec<(f64, f64, u64)>> {
        let State::Hdr(counts) = &self.state else {
            return None;
        };
        let layout = Layout::new(self.options.significant_figures);
        let mut out = Vec::new();
        counts.for_each(|index, n| {
            let low = layout.value(index);
            let high = layout.value(index + 1).saturating_sub(1).max(low);
            out.push((self.to_user(low), self.to_user(high), n));
        });
        Some(out)
    }

    /// The sum of the values recorded (exact up to rounding, for every reservoir).
    pub fn sum(&self) -> f64 {
        self.summary.total
    }

    /// For each bound (ascending, as a Prometheus histogram's `le` bounds), how many recorded
    /// values are at or below it: cumulative bucket counts, each at most [`Distribution::count`].
    ///
    /// Exact below the smallest value (0) and from the largest value up (the count). In between:
    /// - `hdr`: values are recorded as whole units of `lowest` in buckets of values equal at
    ///   the histogram's precision (see the module documentation); a bucket is counted when its
    ///   lowest unit is at or below the bound's nearest unit. So every value at or below the
    ///   bound is counted, and a value above it only if it shares the bound's unit or bucket
    ///   (less than about `bound / 10^figures + lowest` above it).
    /// - `uniform` / `decaying`: the share of the samples at or below the bound (weighted by
    ///   their decay weights for `decaying`) times the count, rounded: an estimate.
    ///
    /// Bounds must ascend (as the Prometheus export's options are checked to); the counts then
    /// never decrease along them.
    pub fn count_at_most(&self, bounds: &[f64]) -> Vec<u64> {
        let count = self.count();
        let s = &self.summary;
        if s.is_empty() {
            return vec![0; bounds.len()];
        }
        let estimate: Vec<u64> = match &self.state {
            State::Hdr(hdr) => self.hdr_at_most(hdr, bounds),
            State::Uniform(u) => {
                let share = |b: f64| u.values.iter().filter(|&&v| v <= b).count() as f64;
                let n = u.values.len() as f64;
                bounds.iter().map(|&b| scaled(share(b), n, count)).collect()
            }
            State::Decaying(d) => {
                // As the percentiles: weights when they add up to a usable total, else 1 each.
                let total: f64 = d.samples().map(|s| s.weight).sum();
                let usable = total > 0.0 && total.is_finite();
                let weight = |w: f64| if usable { w } else { 1.0 };
                let n = if usable { total } else { d.len() as f64 };
                let share = |b: f64| {
                    (d.samples().filter(|s| s.value <= b))
                        .map(|s| weight(s.weight))
                        .sum::<f64>()
                };
                bounds.iter().map(|&b| scaled(share(b), n, count)).collect()
            }
        };
        bounds
            .iter()
            .zip(estimate)
            .map(|(&b, c)| {
                if b < s.min {
                    0
                } else if b >= s.max {
                    count
                } else {
                    c.min(count)
                }
            })
            .collect()
    }

    /// [`Distribution::count_at_most`] for the HDR reservoir: one pass over the recorded
    /// buckets, in ascending order, against the ascending bounds.
    fn hdr_at_most(&self, counts: &Counts, bounds: &[f64]) -> Vec<u64> {
        // Bounds in resolution units, computed as the percentiles convert back (dividing by a
        // whole 1 / lowest is exact where multiplying by an inexact lowest is not).
        // A value is recorded as its nearest whole unit, so one at or below `b` has a unit at or
        // below `b`'s nearest unit.
        let per_unit = 1.0 / self.options.lowest;
        let to_units = |b: f64| {
            if per_unit.fract() == 0.0 {
                (b * per_unit).round()
            } else {
                (b / self.options.lowest).round()
            }
        };
        // (lowest unit of a bucket, its count), ascending.
        let layout = Layout::new(self.options.significant_figures);
        let mut buckets: Vec<(u64, u64)> = Vec::new();
        counts.for_each(|index, n| buckets.push((layout.value(index), n)));
        let mut out = Vec::with_capacity(bounds.len());
        let (mut next, mut below) = (0, 0u64);
        for &b in bounds {
            let units = to_units(b);
            while let Some(&(unit, c)) = buckets.get(next) {
                if unit as f64 > units {
                    break;
                }
                below = below.saturating_add(c);
                next += 1;
            }
            out.push(below);
        }
        out
    }

    /// Empties it, keeping its options (and freeing its memory).
    pub fn reset(&mut self) {
        self.summary = Summary::default();
        self.clamped = 0;
        match &mut self.state {
            State::Hdr(counts) => *counts = Counts::default(),
            State::Uniform(u) => *u = Uniform::default(),
            State::Decaying(d) => *d = Decaying::default(),
        }
    }

    /// Moves its values out into the distribution returned, leaving it empty (as
    /// `let taken = d.clone(); d.reset(); taken` would, without the copy): both continue the
    /// same random sequence.
    pub fn take(&mut self) -> Distribution {
        let empty = Distribution {
            options: self.options,
            summary: Summary::default(),
            clamped: 0,
            state: match &self.state {
                State::Hdr(_) => State::Hdr(Counts::default()),
                State::Uniform(_) => State::Uniform(Uniform::default()),
                State::Decaying(_) => State::Decaying(Decaying::default()),
            },
            rng: self.rng.clone(),
        };
        std::mem::replace(self, empty)
    }

    /// Heap bytes held by the reservoir (HDR counts, samples), for memory accounting.
    pub fn heap_bytes(&self) -> usize {
        match &self.state {
            State::Hdr(counts) => counts.heap_bytes(),
            State::Uniform(u) => u.values.capacity() * 8,
            State::Decaying(d) => d.capacity() * std::mem::size_of::<Sample>(),
        }
    }

    /// Appends its encoding to `out` (little-endian; `varint` = LEB128 u64):
    /// ```text
    /// version u8 (1) | reservoir u8 (0 hdr, 1 uniform, 2 decaying) | significant figures u8
    /// lowest f64 | highest f64 | clamped varint | count varint
    /// if count > 0: total f64 | min f64 | max f64 | mean f64 | m2 f64     (the exact summary)
    /// hdr:      buckets varint, then per bucket, ascending: value step varint | count varint
    ///           (value in resolution units = previous value + step; the first step is the value)
    /// uniform:  samples varint (= min(count, 1024)), then that many f64 values
    /// decaying: samples varint (<= min(count, 1028)); if count > 0: landmark f64 (seconds);
    ///           per sample: value f64 | weight f64 | priority f64
    /// ```
    /// An empty distribution takes 22 bytes, 62 with its summary (a decaying one 8 more for its
    /// landmark); each HDR bucket 2 to 20 more, typically 3 to 5 (the
    /// random generator's state is not sent: a decoded distribution reseeds from its count).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let o = &self.options;
        out.push(ENCODING);
        o.encode(out);
        put_varint(out, self.clamped);
        let s = &self.summary;
        put_varint(out, self.count());
        if !s.is_empty() {
            for v in [s.total, s.min, s.max, s.mean, s.m2] {
                put_f64(out, v);
            }
        }
        match &self.state {
            State::Hdr(counts) => {
                // A bucket's lowest value: never above the largest unit recorded, so within the
                // range the decoder checks.
                let layout = Layout::new(o.significant_figures);
                let mut pairs = Vec::new();
                counts.for_each(|index, n| pairs.push((layout.value(index), n)));
                put_varint(out, pairs.len() as u64);
                let mut previous = 0;
                for (unit, count) in pairs {
                    put_varint(out, unit - previous);
                    put_varint(out, count);
                    previous = unit;
                }
            }
            State::Uniform(u) => {
                put_varint(out, u.values.len() as u64);
                for &v in &u.values {
                    put_f64(out, v);
                }
            }
            State::Decaying(d) => {
                put_varint(out, d.len() as u64);
                if !s.is_empty() {
                    put_f64(out, d.landmark.unwrap_or(0.0));
                }
                for sample in d.samples() {
                    put_f64(out, sample.value);
                    put_f64(out, sample.weight);
                    put_f64(out, sample.priority);
                }
            }
        }
    }

    /// Decodes what [`Distribution::encode`] wrote at the start of `bytes`; returns it and the
    /// number of bytes read. Hostile input is an error, never a panic: every count is checked
    /// against the bytes left before anything is allocated, reservoirs against their sizes, HDR
    /// values against the range, and the reservoir against the summary (an HDR's bucket counts
    /// add up to the count; samples lie within `[min, max]`).
    pub fn decode(bytes: &[u8]) -> Result<(Distribution, usize), DecodeError> {
        let mut r = Reader::new(bytes);
        let version = r.u8()?;
        if version != ENCODING {
            return Err(DecodeError::Version {
                of: "histogram",
                found: version,
                expected: ENCODING,
            });
        }
        let options = HistogramOptions::decode(&mut r)?;
        let (figures, highest, reservoir) = (
            options.significant_figures,
            options.highest,
            options.reservoir,
        );
        let clamped = r.varint()?;
        let count = r.varint()?;
        check(count <= MAX_COUNT && clamped <= count, "count")?;
        let summary = if count == 0 {
            Summary::default()
        } else {
            let s = Summary {
                count: count as f64,
                total: r.f64()?,
                min: r.f64()?,
                max: r.f64()?,
                mean: r.f64()?,
                m2: r.f64()?,
            };
            let finite = [s.total, s.mean, s.m2].iter().all(|v| v.is_finite());
            let range = 0.0 <= s.min && s.min <= s.max && s.max <= highest;
            check(finite && range && s.m2 >= 0.0, "summary")?;
            s
        };
        let in_range = |v: f64| summary.min <= v && v <= summary.max;
        let state = match reservoir {
            Reservoir::Hdr => {
                let n = r.count(2)?;
                let layout = Layout::new(figures);
                let mut counts = Counts::default();
                let (mut unit, mut total) = (0u64, 0u64);
                for i in 0..n {
                    let step = r.varint()?;
                    check(i == 0 || step > 0, "bucket order")?;
                    unit = unit
                        .checked_add(step)
                        .ok_or(DecodeError::Invalid("bucket"))?;
                    check(unit <= options.top_unit(), "bucket")?;
                    let c = r.varint()?;
                    total = total.saturating_add(c);
                    check(c > 0 && total <= count, "bucket count")?;
                    // Units of one bucket (from an encoder with another layout) add up in it.
                    counts.add(layout.index(unit), c);
                }
                check(total == count, "bucket counts")?;
                State::Hdr(counts)
            }
            Reservoir::Uniform => {
                let n = r.count(8)?;
                check(n as u64 == count.min(UNIFORM_SIZE as u64), "sample count")?;
                let mut values = Vec::with_capacity(n);
                for _ in 0..n {
                    let v = r.f64()?;
                    check(in_range(v), "sample")?;
                    values.push(v);
                }
                State::Uniform(Uniform {
                    seen: count,
                    values,
                })
            }
            Reservoir::Decaying => {
                let n = r.count(24)?;
                check(n as u64 <= count.min(DECAYING_SIZE as u64), "sample count")?;
                let landmark = if count > 0 {
                    let l = r.f64()?;
                    check(l.is_finite(), "landmark")?;
                    Some(l)
                } else {
                    None
                };
                let mut samples = Vec::with_capacity(n);
                for _ in 0..n {
                    let (value, weight, priority) = (r.f64()?, r.f64()?, r.f64()?);
                    let weights_ok = weight.is_finite()
                        && weight >= 0.0
                        && priority.is_finite()
                        && priority >= 0.0;
                    check(in_range(value) && weights_ok, "sample")?;
                    samples.push(Sample {
                        priority,
                        value,
                        weight,
                    });
                }
                State::Decaying(Decaying::from_samples(landmark, samples))
            }
        };
        let distribution = Distribution {
            options,
            summary,
            clamped,
            state,
            // Not sent; any seed gives a valid sampler, a fixed one keeps decoding reproducible.
            rng: fastrand::Rng::with_seed(0x5eed ^ count),
        };
        Ok((distribution, r.used()))
    }
}

/// `count` scaled by `part / whole` and rounded (0 when `whole` is not above 0).
fn scaled(part: f64, whole: f64, count: u64) -> u64 {
    if whole > 0.0 {
        (count as f64 * (part / whole)).round() as u64
    } else {
        0
    }
}

/// `value.clamp(0.0, highest)`, with NaN as 0 (and no check of the bounds per value).
#[inline]
fn clamp(value: f64, highest: f64) -> f64 {
    if value.is_nan() || value < 0.0 {
        0.0
    } else if value > highest {
        highest
    } else {
        value
    }
}

/// A run of values to record: a slice, or `f64` bits in cells shared with JS.
trait Values: Copy {
    fn len(&self) -> usize;
    fn at(&self, i: usize) -> f64;
}

impl Values for &[f64] {
    fn len(&self) -> usize {
        <[f64]>::len(self)
    }

    #[inline(always)]
    fn at(&self, i: usize) -> f64 {
        self[i]
    }
}

impl Values for &[AtomicU64] {
    fn len(&self) -> usize {
        <[AtomicU64]>::len(self)
    }

    #[inline(always)]
    fn at(&self, i: usize) -> f64 {
        f64::from_bits(self[i].load(Ordering::Relaxed))
    }
}

// The two passes of `Distribution::record_all` are functions of their own: inlined in it, the
// compiler kept their running sums in memory, a store-to-load chain per value. Sums run in two
// lanes (values at even and odd positions, added at the end): each chain of dependent additions
// is half as long. (The order of a sum's additions changes its last bits, not its exactness up
// to rounding; batches are already summed apart and combined.)

/// Sum, min, max of the clamped values, and how many were clamped.
#[inline(never)]
fn first_pass<V: Values>(values: V, highest: f64) -> (f64, f64, f64, u64) {
    let (mut total, mut total_odd) = (0.0, 0.0);
    let (mut min, mut min_odd) = (f64::INFINITY, f64::INFINITY);
    let (mut max, mut max_odd) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
    let mut clamped = 0;
    // Never NaN once clamped: plain comparisons.
    let mut add = |value: f64, total: &mut f64, min: &mut f64, max: &mut f64| {
        let v = clamp(value, highest);
        // Out of range, or NaN (never equal to itself).
        clamped += u64::from(v != value);
        *total += v;
        if v < *min {
            *min = v;
        }
        if v > *max {
            *max = v;
        }
    };
    let n = values.len();
    let mut i = 0;
    while i + 1 < n {
        add(values.at(i), &mut total, &mut min, &mut max);
        add(values.at(i + 1), &mut total_odd, &mut min_odd, &mut max_odd);
        i += 2;
    }
    if i < n {
        add(values.at(i), &mut total, &mut min, &mut max);
    }
    (
        total + total_odd,
        min.min(min_odd),
        max.max(max_odd),
        clamped,
    )
}

/// Adds to `m2` the squared deviations from `mean` of the clamped values from `start` on, and
/// puts their HDR bucket indexes (in resolution units, rounded, at most `top`; `HALF`: the
/// layout's half magnitude) in `indexes`, as many as it holds.
#[inline(never)]
#[allow(clippy::too_many_arguments)]
fn second_pass<V: Values, const HALF: u32>(
    values: V,
    start: usize,
    m2: &mut [f64; 2],
    mean: f64,
    highest: f64,
    per_unit: f64,
    top: f64,
    indexes: &mut [u32],
) {
    let [mut even, mut odd] = *m2;
    let one = |value: f64, lane: &mut f64| {
        // As `clamp`, but -0 becomes 0 (the same deviation, the same bucket), which makes it
        // two instructions without branches (x86's maxsd and minsd: NaN gives 0).
        let v = if value > 0.0 { value } else { 0.0 };
        let v = if v < highest { v } else { highest };
        let d = v - mean;
        *lane += d * d;
        units_index::<HALF>(v * per_unit, top)
    };
    let mut pairs = indexes.chunks_exact_mut(2);
    let mut i = start;
    for pair in &mut pairs {
        pair[0] = one(values.at(i), &mut even);
        pair[1] = one(values.at(i + 1), &mut odd);
        i += 2;
    }
    if let [last] = pairs.into_remainder() {
        *last = one(values.at(i), &mut even);
    }
    *m2 = [even, odd];
}

fn check(ok: bool, what: &'static str) -> Result<(), DecodeError> {
    if ok {
        Ok(())
    } else {
        Err(DecodeError::Invalid(what))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const PS: [f64; 9] = [0.0, 1.0, 25.0, 50.0, 75.0, 90.0, 99.0, 99.9, 100.0];
    const T0: f64 = 1.7e12;

    fn options(reservoir: Reservoir) -> HistogramOptions {
        HistogramOptions {
            reservoir,
            ..HistogramOptions::default()
        }
    }

    fn fed(o: &HistogramOptions, seed: u64, values: &[(f64, f64)]) -> Distribution {
        let mut d = Distribution::new(o, seed);
        for &(v, t) in values {
            d.record(v, t);
        }
        d
    }

    fn encoded(d: &Distribution) -> Vec<u8> {
        let mut out = Vec::new();
        d.encode(&mut out);
        out
    }

    /// The HDR buckets as (lowest unit, count).
    fn buckets(d: &Distribution) -> Vec<(u64, u64)> {
        let layout = Layout::new(d.options.significant_figures);
        let mut out = Vec::new();
        if let State::Hdr(counts) = &d.state {
            counts.for_each(|index, n| out.push((layout.value(index), n)));
        }
        out
    }

    /// Samples held by a sampling reservoir.
    fn samples(d: &Distribution) -> usize {
        match &d.state {
            State::Uniform(u) => u.values.len(),
            State::Decaying(r) => r.len(),
            State::Hdr(_) => 0,
        }
    }

    fn rel(a: f64, b: f64) -> f64 {
        if a == b {
            0.0
        } else {
            (a - b).abs() / a.abs().max(b.abs())
        }
    }

    fn close(a: Option<f64>, b: Option<f64>, tolerance: f64) -> bool {
        match (a, b) {
            (Some(a), Some(b)) => rel(a, b) < tolerance || (a - b).abs() < 1e-9,
            (a, b) => a == b,
        }
    }

    /// Values (mostly in range, some below 0 or above an hour) each with a time step in ms.
    fn stream() -> impl Strategy<Value = Vec<(f64, f64)>> {
        prop::collection::vec(
            (
                prop_oneof![
                    8 => (-2.0f64..4.0).prop_map(|e| 10f64.powf(e)),
                    2 => 0.0f64..100.0,
                    1 => prop_oneof![Just(-1.0), Just(0.0), Just(4e6), Just(3_600_000.0)],
                ],
                0.0f64..5e5,
            ),
            0..400,
        )
        .prop_map(|v| {
            let mut t = T0;
            v.into_iter()
                .map(|(x, dt)| {
                    t += dt;
                    (x, t)
                })
                .collect()
        })
    }

    fn reservoir() -> impl Strategy<Value = Reservoir> {
        prop_oneof![
            Just(Reservoir::Hdr),
            Just(Reservoir::Uniform),
            Just(Reservoir::Decaying)
        ]
    }

    #[test]
    fn distributions_can_move_between_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Distribution>();
    }

    #[test]
    fn hdr_percentiles_print_as_decimals() {
        let mut d = Distribution::new(&HistogramOptions::default(), 1);
        for v in [0.3, 0.7, 1.1, 2.9] {
            d.record(v, T0);
        }
        let s = d.stats(&[25.0, 50.0, 75.0]);
        assert_eq!(s.percentiles, [0.3, 0.7, 1.1].map(Some));
        assert_eq!(format!("{}", s.percentiles[2].unwrap()), "1.1");
    }

    #[test]
    fn options_are_checked_with_messages_naming_field_and_value() {
        let err = |r: Result<HistogramOptions, OptionsError>| r.unwrap_err().to_string();
        assert_eq!(
            err(HistogramOptions::new(7, 0.001, 1e3, Reservoir::Hdr)),
            "histogram.significantFigures must be an integer from 1 to 5, got 7"
        );
        assert!(err(HistogramOptions::new(0, 0.001, 1e3, Reservoir::Hdr)).ends_with("got 0"));
        assert_eq!(
            err(HistogramOptions::new(3, 0.0, 1e3, Reservoir::Hdr)),
            "histogram.lowest must be a finite number above 0, got 0"
        );
        assert!(err(HistogramOptions::new(3, f64::NAN, 1e3, Reservoir::Hdr)).ends_with("got NaN"));
        assert_eq!(
            err(HistogramOptions::new(3, 1.0, 1.5, Reservoir::Hdr)),
            "histogram.highest must be a finite number from 2 x lowest to 2^53 x lowest \
             (lowest is 1), got 1.5"
        );
        assert!(err(HistogramOptions::new(
            3,
            1.0,
            f64::INFINITY,
            Reservoir::Uniform
        ))
        .ends_with("got Infinity"));
        assert!(HistogramOptions::new(3, 1e-9, 9e6, Reservoir::Hdr).is_ok());
        assert!(
            HistogramOptions::new(3, 1e-9, 1e8, Reservoir::Hdr).is_err(),
            "above 2^53"
        );
        let e = HistogramOptions::new(3, -1.0, 1.0, Reservoir::Hdr).unwrap_err();
        assert_eq!(e.field(), "histogram.lowest");
        assert_eq!(
            HistogramOptions::new(3, 0.001, 3_600_000.0, Reservoir::Hdr),
            Ok(HistogramOptions::default())
        );
        assert_eq!(Reservoir::parse("decaying"), Ok(Reservoir::Decaying));
        assert_eq!(
            Reservoir::parse("exp").unwrap_err().to_string(),
            "histogram.reservoir must be 'hdr', 'uniform' or 'decaying', got \"exp\""
        );
        for r in [Reservoir::Hdr, Reservoir::Uniform, Reservoir::Decaying] {
            assert_eq!(Reservoir::parse(r.as_str()), Ok(r));
        }
        assert_eq!(
            validate_percentiles(&[50.0, 75.0, 90.0, 95.0, 99.0, 99.9]),
            Ok(())
        );
        assert_eq!(
            validate_percentiles(&[50.0, 101.0])
                .unwrap_err()
                .to_string(),
            "histogram.percentiles must hold numbers from 0 to 100, got 101"
        );
        assert!(validate_percentiles(&[f64::NAN]).is_err());
        assert_eq!(
            validate_percentiles(&[50.0, 99.9, 50.0])
                .unwrap_err()
                .to_string(),
            "histogram.percentiles must not repeat a percentile, got 50 twice"
        );
    }

    #[test]
    fn percentile_keys() {
        let cases = [
            (50.0, "p50"),
            (75.0, "p75"),
            (99.0, "p99"),
            (99.9, "p999"),
            (99.99, "p9999"),
            (0.5, "p0_5"),
            (5.0, "p5"),
            (9.99, "p9_99"),
            (100.0, "p100"),
            (0.0, "p0"),
            (-0.0, "p0"),
            (10.0, "p10"),
            (10.05, "p1005"),
        ];
        for (p, key) in cases {
            assert_eq!(percentile_key(p), key, "{p}");
        }
    }

    #[test]
    fn out_of_range_values_are_clamped_and_counted() {
        for r in [Reservoir::Hdr, Reservoir::Uniform, Reservoir::Decaying] {
            let mut d = Distribution::new(&options(r), 1);
            for v in [-1.0, 5.0, 4e6, f64::INFINITY, f64::NEG_INFINITY, f64::NAN] {
                d.record(v, T0);
            }
            assert_eq!((d.count(), d.clamped()), (6, 5), "{r:?}");
            let s = d.stats(&[0.0, 100.0]);
            assert_eq!((s.min, s.max), (Some(0.0), Some(3_600_000.0)));
            assert_eq!(s.percentiles, [Some(0.0), Some(3_600_000.0)], "{r:?}");
        }
    }

    #[test]
    fn empty_and_single_value_stats() {
        for r in [Reservoir::Hdr, Reservoir::Uniform, Reservoir::Decaying] {
            let mut d = Distribution::new(&options(r), 1);
            let empty = Stats {
                count: 0,
                min: None,
                max: None,
                mean: None,
                stddev: None,
                percentiles: vec![None; 3],
            };
            assert!(d.is_empty());
            assert_eq!(d.stats(&[50.0, 99.0, 99.9]), empty);
            d.record(12.5, T0);
            let s = d.stats(&[0.0, 50.0, 100.0]);
            assert_eq!((s.count, s.mean, s.stddev), (1, Some(12.5), None));
            assert_eq!(s.percentiles, [Some(12.5); 3], "{r:?}");
            d.reset();
            assert_eq!(d.stats(&[50.0, 99.0, 99.9]), empty, "{r:?} after reset");
            assert_eq!(d.options(), &options(r));
        }
    }

    #[test]
    fn hdr_percentiles_of_known_values() {
        let mut d = Distribution::new(&HistogramOptions::default(), 1);
        for i in 1..=1000 {
            d.record(i as f64, T0);
        }
        let s = d.stats(&[50.0, 90.0, 99.0, 99.9, 100.0]);
        // 1000 units per ms: buckets 256 units (0.256 ms) wide at 500 ms, 512 at 990 ms, each
        // reported at its top; 1000 is the exact max.
        assert_eq!(
            s.percentiles,
            [500.223, 900.095, 990.207, 1000.0, 1000.0].map(Some)
        );
        assert_eq!(s.mean, Some(500.5));
        let sd = (1000.0f64 * 1001.0 / 12.0).sqrt();
        assert!(rel(s.stddev.unwrap(), sd) < 1e-12);
    }

    #[test]
    fn memory_of_a_default_histogram() {
        let o = HistogramOptions::default();
        let mut d = Distribution::new(&o, 1);
        assert_eq!(d.heap_bytes(), 0, "empty: nothing allocated");
        // A few values: 8 bytes per bucket (a vector's capacity: 4 to start).
        for v in [0.5, 1.5, 2.5] {
            d.record(v, T0);
        }
        assert_eq!(d.heap_bytes(), 32);
        // Many latencies from 0.01 to 10,000 ms: one byte per bucket of the range (hdrhistogram
        // would take 122,880 bytes), and 16 per bucket past 255 (none here).
        let many: Vec<f64> = (0..=6000)
            .map(|i| 10f64.powf(-2.0 + i as f64 / 1000.0))
            .collect();
        d.record_all(&many, T0);
        assert_eq!(d.heap_bytes(), 14_592);
        d.record(3_600_000.0, T0);
        assert_eq!(d.heap_bytes(), 23_232, "up to an hour");
        // Taking the interval's values leaves nothing allocated.
        let taken = d.take();
        assert_eq!((d.heap_bytes(), taken.heap_bytes()), (0, 23_232));
        assert!(d.is_empty() && !taken.is_empty());
        assert!(std::mem::size_of::<Distribution>() <= 256);
        let mut u = Distribution::new(&options(Reservoir::Uniform), 1);
        let mut x = Distribution::new(&options(Reservoir::Decaying), 1);
        for i in 0..5000 {
            u.record(i as f64, T0 + i as f64);
            x.record(i as f64, T0 + i as f64);
        }
        assert_eq!(u.heap_bytes(), 1024 * 8);
        assert_eq!(x.heap_bytes(), 1028 * 24);
    }

    #[test]
    fn merge_refuses_other_options() {
        let a = Distribution::new(&HistogramOptions::default(), 1);
        let mut b = Distribution::new(&options(Reservoir::Uniform), 1);
        let e = b.merge(&a).unwrap_err();
        assert_eq!(
            e.to_string(),
            "histograms with different options do not merge: \
             uniform 3 figures 0.001..3600000 vs hdr 3 figures 0.001..3600000"
        );
        let c = Distribution::new(
            &HistogramOptions::new(2, 0.001, 3_600_000.0, Reservoir::Hdr).unwrap(),
            1,
        );
        let mut a = a;
        assert!(a.merge(&c).is_err());
    }

    #[test]
    fn encoding_sizes_and_refusals() {
        let mut d = Distribution::new(&HistogramOptions::default(), 1);
        assert_eq!(encoded(&d).len(), 22);
        for _ in 0..100 {
            d.record(1.5, T0);
        }
        d.record(250.0, T0);
        // 22 + summary 40 + buckets (1500 units) x 100 in 3 bytes, (249,984 units) x 1 in 4.
        let bytes = encoded(&d);
        assert_eq!(bytes.len(), 22 + 40 + 3 + 4);
        let mut v2 = bytes.clone();
        v2[0] = 2;
        assert_eq!(
            Distribution::decode(&v2).unwrap_err(),
            DecodeError::Version {
                of: "histogram",
                found: 2,
                expected: ENCODING
            }
        );
        for cut in 0..bytes.len() {
            assert!(Distribution::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        // Read from the front of a longer buffer: the length is reported.
        let mut longer = bytes.clone();
        longer.extend_from_slice(b"next");
        assert_eq!(Distribution::decode(&longer).unwrap().1, bytes.len());
        // A huge bucket count with few bytes behind it is refused before any allocation.
        let mut huge = encoded(&Distribution::new(&HistogramOptions::default(), 1));
        huge.pop();
        huge.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f, 1, 1]);
        assert_eq!(
            Distribution::decode(&huge).unwrap_err(),
            DecodeError::Truncated
        );
        // Counts that do not add up are refused.
        let mut lie = bytes.clone();
        *lie.last_mut().unwrap() = 2; // the last bucket's count: 102 in all
        assert_eq!(
            Distribution::decode(&lie).unwrap_err(),
            DecodeError::Invalid("bucket count")
        );
        let mut lie = bytes.clone();
        assert_eq!(lie[64], 100); // header 21, summary 40, buckets 1, first step 2
        lie[64] = 99;
        assert_eq!(
            Distribution::decode(&lie).unwrap_err(),
            DecodeError::Invalid("bucket counts")
        );
        let mut wrong_kind = bytes;
        wrong_kind[1] = 9;
        assert!(Distribution::decode(&wrong_kind).is_err());
    }

    proptest! {
        #[test]
        fn a_batch_records_as_its_values_one_by_one(
            values in prop::collection::vec(-10.0f64..5e6, 1..200),
            reservoir in prop_oneof![Just(Reservoir::Hdr), Just(Reservoir::Uniform)],
        ) {
            let options = HistogramOptions::new(3, 0.001, 3_600_000.0, reservoir).unwrap();
            let (mut batch, mut single) = (Distribution::new(&options, 9), Distribution::new(&options, 9));
            batch.record_all(&values, 0.0);
            values.iter().for_each(|&v| single.record(v, 0.0));
            let q = [0.0, 50.0, 99.0, 100.0];
            let (a, b) = (batch.stats(&q), single.stats(&q));
            prop_assert_eq!((a.count, a.min, a.max), (b.count, b.min, b.max));
            prop_assert_eq!(batch.clamped(), single.clamped());
            prop_assert_eq!(&a.percentiles, &b.percentiles);
            let close = |x: Option<f64>, y: Option<f64>| match (x, y) {
                (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0),
                (x, y) => x == y,
            };
            prop_assert!(close(a.mean, b.mean) && close(a.stddev, b.stddev));
        }
    }

    proptest! {
        #[test]
        fn merge_equals_recording_both_streams(a in stream(), b in stream(), r in reservoir(), seed in any::<u64>()) {
            let o = options(r);
            let whole = fed(&o, seed, &a.iter().chain(&b).cloned().collect::<Vec<_>>());
            let (mut merged, db) = (fed(&o, seed, &a), fed(&o, seed ^ 1, &b));
            merged.merge(&db).unwrap();
            // Merging what the wire carried (a sparse HDR) gives the same.
            let mut via_wire = fed(&o, seed, &a);
            via_wire.merge(&Distribution::decode(&encoded(&db)).unwrap().0).unwrap();
            for m in [&merged, &via_wire] {
                let (ws, ms) = (whole.stats(&PS), m.stats(&PS));
                prop_assert_eq!((ms.count, ms.min, ms.max), (ws.count, ws.min, ws.max));
                prop_assert_eq!(m.clamped(), whole.clamped());
                prop_assert!(close(ms.mean, ws.mean, 1e-9), "mean {:?} vs {:?}", ms.mean, ws.mean);
                prop_assert!(close(ms.stddev, ws.stddev, 1e-9), "sd {:?} vs {:?}", ms.stddev, ws.stddev);
                if r == Reservoir::Hdr {
                    prop_assert_eq!(&ms.percentiles, &ws.percentiles);
                    prop_assert_eq!(buckets(m), buckets(&whole));
                } else {
                    let bound = if r == Reservoir::Uniform { 1024 } else { 1028 };
                    prop_assert_eq!(samples(m), (ms.count as usize).min(bound));
                    for p in ms.percentiles.iter().flatten() {
                        prop_assert!(ms.min.unwrap() <= *p && *p <= ms.max.unwrap());
                    }
                }
            }
        }

        #[test]
        fn quantiles_are_monotone(a in stream(), r in reservoir(), mut ps in prop::collection::vec(0.0f64..=100.0, 1..20)) {
            let d = fed(&options(r), 7, &a);
            ps.sort_by(f64::total_cmp);
            let s = d.stats(&ps);
            prop_assert_eq!(s.percentiles.len(), ps.len());
            let got: Vec<f64> = s.percentiles.iter().flatten().cloned().collect();
            prop_assert!(got.windows(2).all(|w| w[0] <= w[1]), "{:?} at {:?}", got, ps);
        }

        #[test]
        fn hdr_error_is_within_its_precision(
            values in prop::collection::vec((-3.0f64..6.0).prop_map(|e| 10f64.powf(e)), 1..500),
            figures in 1u8..=4,
            ps in prop::collection::vec(0.0f64..=100.0, 1..10),
        ) {
            let o = HistogramOptions::new(figures, 0.001, 3_600_000.0, Reservoir::Hdr).unwrap();
            let mut d = Distribution::new(&o, 1);
            for &v in &values { d.record(v, T0); }
            let mut sorted = values.clone();
            sorted.sort_by(f64::total_cmp);
            let s = d.stats(&ps);
            for (&p, got) in ps.iter().zip(&s.percentiles) {
                // HdrHistogram's rank: ceil(q * n), at least 1.
                let rank = ((p / 100.0 * sorted.len() as f64).ceil() as usize).max(1);
                let exact = sorted[rank - 1];
                let bound = exact / 10f64.powi(figures as i32) + o.lowest();
                let got = got.unwrap();
                prop_assert!((got - exact).abs() <= bound, "p{} got {} exact {} bound {}", p, got, exact, bound);
            }
        }

        #[test]
        fn reservoirs_stay_bounded_whatever_is_merged(parts in prop::collection::vec(stream(), 1..6), r in prop_oneof![Just(Reservoir::Uniform), Just(Reservoir::Decaying)]) {
            let o = options(r);
            let mut total = Distribution::new(&o, 3);
            for (i, p) in parts.iter().enumerate() {
                // Each part also merged twice over itself, to push sizes.
                let mut d = fed(&o, i as u64, p);
                d.merge(&d.clone()).unwrap();
                total.merge(&d).unwrap();
                let bound = if r == Reservoir::Uniform { 1024 } else { 1028 };
                prop_assert!(samples(&total) <= bound, "{} samples", samples(&total));
                prop_assert!(total.heap_bytes() <= 1028 * 24);
            }
        }

        #[test]
        fn encode_decode_round_trip(a in stream(), r in reservoir(), figures in 1u8..=3) {
            let o = HistogramOptions::new(figures, 0.001, 3_600_000.0, r).unwrap();
            let d = fed(&o, 9, &a);
            let bytes = encoded(&d);
            let (back, read) = Distribution::decode(&bytes).unwrap();
            prop_assert_eq!(read, bytes.len());
            prop_assert_eq!(back.stats(&PS), d.stats(&PS));
            prop_assert_eq!((back.count(), back.clamped(), back.options()), (d.count(), d.clamped(), d.options()));
            prop_assert_eq!(encoded(&back), bytes);
        }

        #[test]
        fn garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200), header in any::<bool>()) {
            let mut input = if header {
                encoded(&Distribution::new(&HistogramOptions::default(), 1))[..19].to_vec()
            } else {
                Vec::new()
            };
            input.extend_from_slice(&bytes);
            if let Ok((d, read)) = Distribution::decode(&input) {
                prop_assert!(read <= input.len());
                let _ = d.stats(&PS);
            }
        }

        #[test]
        fn flipped_or_cut_bytes_never_panic(a in prop::collection::vec((0.0f64..1e4, Just(T0)), 1..50), r in reservoir(), pos in any::<usize>(), byte in any::<u8>(), cut in any::<usize>()) {
            let o = options(r);
            let mut good = encoded(&fed(&o, 1, &a));
            let i = pos % good.len();
            good[i] = byte;
            good.truncate(good.len() - cut % 3);
            if let Ok((d, _)) = Distribution::decode(&good) {
                let _ = d.stats(&PS);
                let mut mine = fed(d.options(), 2, &a);
                let _ = mine.merge(&d);
                mine.record(1.0, T0);
                let _ = mine.stats(&PS);
            }
        }

        #[test]
        fn distinct_percentiles_have_distinct_keys(
            a in prop_oneof![0.0f64..=100.0, (0u32..=100_000).prop_map(|i| i as f64 / 1000.0)],
            b in prop_oneof![0.0f64..=100.0, (0u32..=100_000).prop_map(|i| i as f64 / 1000.0)],
        ) {
            prop_assert_eq!(a == b, percentile_key(a) == percentile_key(b), "{} {}", a, b);
        }
    }

    #[test]
    fn counts_at_or_below_bounds() {
        let values: Vec<f64> = (1..=1000).map(f64::from).collect();
        let bounds = [0.5, 1.0, 10.0, 100.0, 999.5, 1000.0, 2000.0];
        for r in [Reservoir::Hdr, Reservoir::Uniform, Reservoir::Decaying] {
            let mut d = Distribution::new(&options(r), 3);
            d.record_all(&values, T0);
            // Integers below 2048 are exact in an HDR histogram of 3 figures; 1000 values fit
            // a sampling reservoir whole: every count is exact.
            assert_eq!(
                d.count_at_most(&bounds),
                [0, 1, 10, 100, 999, 1000, 1000],
                "{r:?}"
            );
            assert_eq!(d.sum(), 500_500.0);
        }
        let empty = Distribution::new(&options(Reservoir::Hdr), 3);
        assert_eq!(empty.count_at_most(&bounds), [0; 7]);
        // A value on the bound is counted; one in the bound's HDR bucket too (5000 units, 4
        // wide at 3 figures: 5.000 to 5.003), the next bucket's is not.
        let mut d = Distribution::new(&options(Reservoir::Hdr), 3);
        d.record_all(&[5.0, 5.002, 5.004, 9.0], T0);
        assert_eq!(d.count_at_most(&[4.999, 5.0, 5.004, 8.0]), [0, 2, 3, 3]);
        // Decoded and recorded histograms agree.
        let sparse = Distribution::decode(&encoded(&d)).unwrap().0;
        assert_eq!(
            sparse.count_at_most(&[4.999, 5.0, 5.004, 8.0]),
            [0, 2, 3, 3]
        );
    }

    #[test]
    fn sampled_counts_are_scaled_to_the_count() {
        // 10,000 values 0..9999 in a 1024-value uniform sample: about 10% at or below 999.
        let values: Vec<f64> = (0..10_000).map(f64::from).collect();
        let mut d = Distribution::new(&options(Reservoir::Uniform), 5);
        d.record_all(&values, T0);
        let counts = d.count_at_most(&[-1.0, 999.0, 4999.0, 9999.0]);
        assert_eq!((counts[0], counts[3]), (0, 10_000));
        assert!((700..=1300).contains(&counts[1]), "{counts:?}");
        assert!((4500..=5500).contains(&counts[2]), "{counts:?}");
    }

    proptest! {
        #[test]
        fn counts_at_most_are_cumulative_and_within_hdr_precision(
            a in stream(),
            r in reservoir(),
            mut bounds in prop::collection::vec((-3.0f64..7.0).prop_map(|e| 10f64.powf(e)), 1..12),
        ) {
            bounds.sort_by(f64::total_cmp);
            bounds.dedup();
            let o = options(r);
            let d = fed(&o, 11, &a);
            let counts = d.count_at_most(&bounds);
            prop_assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{:?}", counts);
            prop_assert!(counts.iter().all(|&c| c <= d.count()));
            if r == Reservoir::Hdr {
                let clamped: Vec<f64> = a.iter().map(|v| v.0.clamp(0.0, o.highest())).collect();
                let exact = |b: f64| clamped.iter().filter(|&&v| v <= b).count() as u64;
                for (&b, &c) in bounds.iter().zip(&counts) {
                    let slack = b / 1000.0 + o.lowest();
                    prop_assert!(exact(b) <= c && c <= exact(b + slack), "{} at {}: {} vs {}", c, b, exact(b), exact(b + slack));
                }
            }
        }
    }
}
