//! HDR histograms as OTLP exponential histograms, when the buckets map exactly.
//!
//! An exponential histogram of scale `s` has the buckets `(base^i, base^(i+1)]`, base =
//! `2^(2^-s)` (upper bounds included), plus a zero bucket. An HDR histogram records whole
//! resolution units in buckets of one or more units. Its counts move into an exponential
//! histogram without any guess only when each HDR bucket that holds values lies wholly inside
//! one exponential bucket: its lowest and its highest unit (in the user's unit) fall into the
//! same one. [`choose`] looks for the largest such scale from [`MIN_SCALE`] to [`MAX_SCALE`]
//! that keeps the populated range within [`MAX_BUCKETS`] buckets; none: the caller sends an
//! explicit-bucket histogram instead.
//!
//! Indexes are computed exactly where a value is a power of two (the only bucket bounds a
//! double can equal: for `s > 0` the other bounds are irrational). Elsewhere, for `s > 0`, the
//! index comes from `log2`, whose error is far below `AMBIGUOUS`: a value that close to a
//! bound counts as on both sides, so the scale is refused rather than a bucket guessed.
//!
//! Scales only nest: a bucket of scale `s - 1` is two of scale `s`, so a histogram that maps
//! exactly at `s` maps exactly at every lower scale.

/// The finest scale OTLP defines (2^20 buckets per power of two).
pub const MAX_SCALE: i32 = 20;
/// The coarsest scale sent: one bucket per power of two. Coarser scales are exact more often,
/// but with fewer buckets than the explicit `/metrics` buckets (1-2.5-5): those are sent then.
pub const MIN_SCALE: i32 = 0;
/// At most this many buckets from the lowest populated one to the highest (OpenTelemetry
/// SDKs' default `MaxSize`).
pub const MAX_BUCKETS: i64 = 160;

/// How close (in buckets) `log2(v) * 2^s` may come to a whole number before the value counts as
/// on a bound (the error of `log2` times `2^20` is below 1e-9).
const AMBIGUOUS: f64 = 1e-7;

/// An exponential histogram's populated part: its scale, the zero bucket's count, the index of
/// its first positive bucket and the counts from there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exponential {
    pub scale: i32,
    pub zero_count: u64,
    pub offset: i32,
    pub counts: Vec<u64>,
}

/// The index of the bucket holding `v` (> 0, finite) at `scale`, None when `v` is too close to
/// a bound to tell.
pub fn index(v: f64, scale: i32) -> Option<i64> {
    if !(v > 0.0 && v.is_finite()) {
        return None;
    }
    // v = m * 2^e with 1 <= m < 2 (subnormals normalised first).
    let (bits, shift) = if v < f64::MIN_POSITIVE {
        ((v * 2f64.powi(64)).to_bits(), 64)
    } else {
        (v.to_bits(), 0)
    };
    let e = ((bits >> 52) & 0x7ff) as i64 - 1023 - shift;
    let power_of_two = bits & ((1 << 52) - 1) == 0;
    if scale <= 0 {
        let e = if power_of_two { e - 1 } else { e };
        return Some(e >> -scale);
    }
    let per_octave = 1i64 << scale;
    if power_of_two {
        // 2^e is the upper bound of bucket e * 2^s - 1.
        return Some(e * per_octave - 1);
    }
    let x = v.log2() * per_octave as f64;
    if (x - x.round()).abs() < AMBIGUOUS {
        return None;
    }
    // v in (2^e, 2^(e+1)): its bucket is among those of that octave.
    Some((x.ceil() as i64 - 1).clamp(e * per_octave, (e + 1) * per_octave - 1))
}

/// The populated buckets at `scale` (None: a bucket straddles a bound, or too many buckets):
/// `(first index, last index)` and each HDR bucket's index (None for the zero bucket).
fn indexes(buckets: &[(f64, f64, u64)], scale: i32) -> Option<Vec<Option<i64>>> {
    let mut out = Vec::with_capacity(buckets.len());
    let (mut first, mut last) = (i64::MAX, i64::MIN);
    for &(low, high, _) in buckets {
        if high <= 0.0 {
            out.push(None);
            continue;
        }
        // A bucket from 0 to above 0 would be split between the zero bucket and another.
        let i = index(low, scale)?;
        if index(high, scale)? != i {
            return None;
        }
        first = first.min(i);
        last = last.max(i);
        if last - first >= MAX_BUCKETS {
            return None;
        }
        out.push(Some(i));
    }
    Some(out)
}

/// The largest scale from [`MIN_SCALE`] up at which `buckets` (an HDR histogram's, as
/// [`crate::stats::histogram::Distribution::hdr_buckets`] gives them) map exactly within
/// [`MAX_BUCKETS`] buckets.
pub fn choose(buckets: &[(f64, f64, u64)]) -> Option<i32> {
    // Fewer buckets at a lower scale, and exactness at a scale holds at every lower one:
    // the answer is the top of a prefix; search it by halving.
    indexes(buckets, MIN_SCALE)?;
    let (mut good, mut bad) = (MIN_SCALE, MAX_SCALE + 1);
    while bad - good > 1 {
        let mid = (good + bad) / 2;
        if indexes(buckets, mid).is_some() {
            good = mid;
        } else {
            bad = mid;
        }
    }
    Some(good)
}

/// `buckets` at `scale` (None: they do not map exactly there).
pub fn map(buckets: &[(f64, f64, u64)], scale: i32) -> Option<Exponential> {
    let at = indexes(buckets, scale)?;
    let mut zero_count = 0;
    let first = at.iter().flatten().copied().min();
    let last = at.iter().flatten().copied().max();
    let mut counts = match (first, last) {
        (Some(f), Some(l)) => vec![0u64; (l - f + 1) as usize],
        _ => Vec::new(),
    };
    for (&(_, _, n), i) in buckets.iter().zip(&at) {
        match (i, first) {
            (Some(i), Some(f)) => counts[(i - f) as usize] += n,
            _ => zero_count += n,
        }
    }
    Some(Exponential {
        scale,
        zero_count,
        // Indexes of positive doubles at scales up to 20 fit an i32 (|e| < 1100, 2^20 per e).
        offset: first.unwrap_or(0) as i32,
        counts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::histogram::{Distribution, HistogramOptions, Reservoir};

    /// The bucket of `v` at `scale` by the definition, in exact rational terms where that is
    /// cheap: `base^i < v <= base^(i+1)`, checked with `powf` away from bounds.
    fn by_definition(v: f64, scale: i32) -> i64 {
        let base = 2f64.powf(2f64.powi(-scale));
        (v.ln() / base.ln()).ceil() as i64 - 1
    }

    #[test]
    fn powers_of_two_are_upper_bounds() {
        // (1, 2] is bucket 0 at scale 0; 2 is in it, 2.0000001 is not.
        assert_eq!(index(2.0, 0), Some(0));
        assert_eq!(index(2.000_000_1, 0), Some(1));
        assert_eq!(index(1.0, 0), Some(-1));
        assert_eq!(index(1.5, 0), Some(0));
        // Scale -1: (1, 4], (4, 16].
        assert_eq!(index(4.0, -1), Some(0));
        assert_eq!(index(8.0, -1), Some(1));
        assert_eq!(index(0.5, -1), Some(-1));
        // Scale 3: 8 buckets per octave; 2 = 2^(8/8) is the upper bound of bucket 7.
        assert_eq!(index(2.0, 3), Some(7));
        assert_eq!(index(1.0, 3), Some(-1));
        assert_eq!(index(0.25, 20), Some(-2 * (1 << 20) - 1));
        // Subnormals and the extremes.
        assert_eq!(index(f64::MIN_POSITIVE / 4.0, 0), Some(-1025));
        assert_eq!(index(f64::MAX, 0), Some(1023));
        assert_eq!(index(0.0, 0), None);
        assert_eq!(index(f64::NAN, 0), None);
    }

    #[test]
    fn indexes_agree_with_the_definition_away_from_bounds() {
        for scale in [1, 2, 5, 10, 20] {
            for &v in &[1.1, 3.7, 10.0, 1000.0, 0.003, 123_456.789, 1e-9, 7e12] {
                let i = index(v, scale).unwrap();
                assert_eq!(i, by_definition(v, scale), "{v} at scale {scale}");
            }
        }
        // 2^(1/2) at scale 1 is a bound: too close to tell, the caller refuses the scale.
        assert_eq!(index(std::f64::consts::SQRT_2, 1), None);
    }

    fn hdr(lowest: f64, values: &[f64]) -> Distribution {
        let options = HistogramOptions::new(3, lowest, 1e6, Reservoir::Hdr).unwrap();
        let mut d = Distribution::new(&options, 1);
        d.record_all(values, 0.0);
        d
    }

    #[test]
    fn unit_wide_buckets_map_at_a_fine_scale_and_keep_every_count() {
        // Whole numbers with a resolution of 1: below 2048 every HDR bucket is one unit.
        let values: Vec<f64> = (0..=100).map(f64::from).chain([7.0, 7.0, 64.0]).collect();
        let d = hdr(1.0, &values);
        let buckets = d.hdr_buckets().unwrap();
        let scale = choose(&buckets).unwrap();
        let e = map(&buckets, scale).unwrap();
        // 1 to 100 is 6.6 octaves: 160 buckets allow 16 per octave (scale 4), not 32.
        assert_eq!(scale, 4);
        assert_eq!(e.zero_count, 1);
        assert_eq!(e.counts.iter().sum::<u64>() + e.zero_count, d.count());
        // Each value in its bucket by the definition (powers of two: the upper bounds).
        assert_eq!(e.offset as i64, index(1.0, scale).unwrap());
        let mut expected = vec![0u64; e.counts.len()];
        for &v in values.iter().filter(|&&v| v > 0.0) {
            let i = if v.log2().fract() == 0.0 {
                ((v.log2() as i64) << scale) - 1
            } else {
                by_definition(v, scale)
            };
            expected[(i - i64::from(e.offset)) as usize] += 1;
        }
        assert_eq!(e.counts, expected);
        // Exact at 4 means exact at every lower scale, and the coarser buckets add up.
        let coarse = map(&buckets, 2).unwrap();
        assert_eq!(
            coarse.counts.iter().sum::<u64>(),
            e.counts.iter().sum::<u64>()
        );
        assert_eq!(i64::from(coarse.offset), i64::from(e.offset) >> 2);
    }

    #[test]
    fn wide_buckets_across_a_bound_are_refused() {
        // Milliseconds at a microsecond resolution: 4 ms is unit 4000, the start of a 2-unit
        // HDR bucket (4000, 4001): 4 is a bound at every scale from 0 up, and 4.001 is above
        // it. No scale is exact: the caller sends explicit buckets.
        let d = hdr(0.001, &[4.0]);
        let buckets = d.hdr_buckets().unwrap();
        assert_eq!(buckets, vec![(4.0, 4.001, 1)]);
        assert_eq!(choose(&buckets), None);
        // 3 ms lies in the 2-unit bucket (3000, 3001), inside one bucket up to a fine scale.
        let d = hdr(0.001, &[3.0]);
        let scale = choose(&d.hdr_buckets().unwrap()).unwrap();
        assert!(scale >= 8, "{scale}");
    }

    #[test]
    fn too_wide_a_range_lowers_the_scale_then_gives_up() {
        // 1 to 2^100: 100 octaves need scale 0 (100 buckets); 2^-100 to 2^100 need 200 > 160.
        let wide = [(1.0, 1.0, 1), (2f64.powi(100), 2f64.powi(100), 1)];
        assert_eq!(choose(&wide), Some(0));
        let wider = [(2f64.powi(-100), 2f64.powi(-100), 1), wide[1]];
        assert_eq!(choose(&wider), None);
        // A zero bucket alone maps at the finest scale.
        let zero = [(0.0, 0.0, 5)];
        assert_eq!(choose(&zero), Some(MAX_SCALE));
        let e = map(&zero, MAX_SCALE).unwrap();
        assert_eq!((e.zero_count, e.counts.len()), (5, 0));
    }

    #[test]
    fn a_histogram_of_other_reservoirs_has_no_buckets() {
        let options = HistogramOptions::new(3, 1.0, 1e6, Reservoir::Uniform).unwrap();
        assert!(Distribution::new(&options, 1).hdr_buckets().is_none());
    }
}
