//! The bucket counts of an HDR histogram, in the `hdrhistogram` crate's layout, kept compact.
//!
//! Every HDR histogram here records whole resolution units from 0 (lowest discernible value 1),
//! so its buckets are those of `hdrhistogram::Histogram::new(significant_figures)`: [`Layout`]
//! computes the same bucket index for a value and the same lowest equivalent value for an
//! index. A count held here at index `i` is the count that histogram would hold at `i`; the
//! `hdrhistogram` crate still answers percentiles, from a histogram built from these counts when
//! they are read ([`crate::stats::histogram::Distribution::stats`]), so they are exactly its answers.
//!
//! Why not keep a `Histogram<u64>`: it holds 8 bytes per bucket from 0 up to its largest value
//! for as long as it lives (with 3 figures, 1,024 buckets per power of two: 120 KB for latencies
//! up to 10 s in microseconds), whatever the number of values, and recording goes through its
//! general checks. [`Counts`] is one of two forms, chosen by size:
//! - **sparse**: the occupied buckets as a sorted list, 8 bytes each (one value takes 8 bytes);
//! - **dense**: one byte per bucket across the occupied range only, and beside it, for the few
//!   buckets whose count reaches 256, the rest of the count (`count = 256 * high + low`). With 3
//!   figures, latencies from 1 ms to 10 s take 13.5 KB, whatever the counts.
//!
//! A sparse list becomes dense when the dense form would be no larger, and, when values are
//! recorded (not merged or decoded), once it holds [`HOT`] values, so a busy histogram records
//! each value with an array increment. Merging and decoding only ever allocate in proportion to
//! the buckets they bring (a decoded histogram cannot make a large dense range out of few bytes).

/// A sparse histogram that records this many values becomes dense (recording is then an array
/// increment instead of a binary search).
pub(crate) const HOT: u64 = 4096;

/// Dense ranges start and end on multiples of this many buckets (fewer reallocations).
const ALIGN: u32 = 64;

/// A sparse entry: `index << 32 | count`, so entries sort by index.
const COUNT_BITS: u32 = 32;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;

/// The bucket layout of `hdrhistogram::Histogram::new(significant_figures)`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layout {
    /// log2 of half the sub-buckets of a bucket.
    half_magnitude: u32,
    /// Values below this are in bucket 0 (`sub_bucket_count - 1` as a mask).
    mask: u64,
    /// `64 - log2(sub_bucket_count)`.
    leading_zero_base: u32,
}

impl Layout {
    /// The layout for 1 to 5 significant figures (others are refused by the options).
    pub(crate) fn new(significant_figures: u8) -> Layout {
        // As hdrhistogram: single unit resolution up to 2 * 10^figures, in a power-of-two count
        // of sub-buckets (2 * 10^f is never a power of two: the ceiling of its log2 is the bit
        // length of (it - 1)).
        let largest = 2 * 10u64.pow(u32::from(significant_figures.clamp(1, 5)));
        let count_magnitude = u64::BITS - (largest - 1).leading_zeros();
        Layout {
            half_magnitude: count_magnitude - 1,
            mask: (1 << count_magnitude) - 1,
            leading_zero_base: 64 - count_magnitude,
        }
    }

    /// log2 of half the sub-buckets of a bucket: 4, 7, 10, 14 or 17 for 1 to 5 figures (see
    /// [`units_index`]).
    pub(crate) fn half_magnitude(&self) -> u32 {
        self.half_magnitude
    }

    /// The bucket index of `unit` (at most 2^53: indexes stay far below 2^32).
    #[inline]
    pub(crate) fn index(&self, unit: u64) -> u32 {
        let bucket = self.leading_zero_base - (unit | self.mask).leading_zeros();
        let sub_bucket = unit >> bucket;
        // ((bucket + 1) << half) + sub_bucket - half_count, in an order that cannot underflow.
        ((u64::from(bucket) << self.half_magnitude) + sub_bucket) as u32
    }

    /// The lowest value of the bucket at `index` (hdrhistogram's `value_for`).
    pub(crate) fn value(&self, index: u32) -> u64 {
        let half_count = 1u32 << self.half_magnitude;
        let bucket = (index >> self.half_magnitude) as i64 - 1;
        let mut sub_bucket = (index & (half_count - 1)) + half_count;
        let bucket = if bucket < 0 {
            sub_bucket -= half_count;
            0
        } else {
            bucket as u32
        };
        u64::from(sub_bucket) << bucket
    }
}

/// The index of `round(x).min(top)` (`f64::round`, whole resolution units, `top` a whole number)
/// in the layout of [`Layout::new`] whose half magnitude is `HALF`, for `0 <= x <= 2^62`: what
/// `layout.index((x.round() as u64).min(top as u64))` gives, in fewer steps (this is the
/// recording loop's work per value, and `f64::round` is a call to `round` on x86-64's
/// baseline, which has no rounding instruction).
///
/// Rounding: below 2^52, `(x + 2^52) - 2^52` is `x` rounded to a whole number with ties to even
/// (the sum's unit in the last place is 1); a tie rounded down (`r - x == -0.5`, exact since `r`
/// and `x` are within 0.5 of each other) is moved up, giving ties away from zero. From 2^52 on,
/// `x` is a whole number. Index: below `2 << HALF` a unit is its own index; above, with `r`
/// whole, its bits are `(1023 + e) << 52 | fraction` (`e = floor(log2 r)`), and the index
/// hdrhistogram computes, `((e - HALF) << HALF) + (r >> (e - HALF))`, is those bits shifted
/// right by `52 - HALF`, less `(1022 + HALF) << HALF`.
#[inline(always)]
pub(crate) fn units_index<const HALF: u32>(x: f64, top: f64) -> u32 {
    const TWO_52: f64 = 4_503_599_627_370_496.0;
    // Branch-free where the branch would depend on the data (written as selects).
    let r = if x < TWO_52 {
        let r = (x + TWO_52) - TWO_52;
        r + if r - x == -0.5 { 1.0 } else { 0.0 }
    } else {
        x
    };
    let r = if r < top { r } else { top };
    // Both indexes, then the one that applies: below `2 << HALF`, the low bits of `r + 2^52`
    // are `r` itself.
    let small = (r + TWO_52).to_bits() as u32;
    let large = (r.to_bits() >> (52 - HALF)).wrapping_sub((1022 + u64::from(HALF)) << HALF) as u32;
    if r < (2u64 << HALF) as f64 {
        small
    } else {
        large
    }
}

/// HDR bucket counts, sparse or dense (see the module documentation). Empty by default.
#[derive(Debug, Clone, Default)]
pub(crate) struct Counts {
    form: Form,
    /// For buckets whose count does not fit the form's field (a list entry's 32 bits, a dense
    /// byte), the rest of the count in units of the field's range (2^32, 256): `(index, n)`,
    /// ascending by index.
    high: Vec<(u32, u64)>,
    /// The sum of the counts (saturating).
    total: u64,
}

#[derive(Debug, Clone)]
enum Form {
    /// `index << 32 | count % 2^32`, ascending by index.
    Sparse(Vec<u64>),
    /// `low[i]` is the count at `base + i`, modulo 256.
    Dense { base: u32, low: Vec<u8> },
}

impl Default for Form {
    fn default() -> Self {
        Form::Sparse(Vec::new())
    }
}

/// `first..=last` widened to whole multiples of [`ALIGN`], as `(base, end)`.
fn aligned(first: u32, last: u32) -> (u32, u32) {
    (first / ALIGN * ALIGN, (last / ALIGN + 1) * ALIGN)
}

/// Adds `n` to the high part of the count at `index`.
fn carry(high: &mut Vec<(u32, u64)>, index: u32, n: u64) {
    match high.binary_search_by_key(&index, |&(i, _)| i) {
        Ok(j) => high[j].1 = high[j].1.saturating_add(n),
        Err(j) => high.insert(j, (index, n)),
    }
}

/// A dense range (`low` from `base`; empty for none) re-based to cover `first..=last` too.
fn cover(base: u32, low: &[u8], first: u32, last: u32) -> (u32, Vec<u8>) {
    let (first, last) = if low.is_empty() {
        (first, last)
    } else {
        (first.min(base), last.max(base + low.len() as u32 - 1))
    };
    let (new_base, end) = aligned(first, last);
    let mut out = Vec::with_capacity((end - new_base) as usize);
    if !low.is_empty() {
        out.resize((base - new_base) as usize, 0);
        out.extend_from_slice(low);
    }
    out.resize((end - new_base) as usize, 0);
    (new_base, out)
}

impl Counts {
    /// True when every count is 0.
    pub(crate) fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Adds `n` at `index`.
    pub(crate) fn add(&mut self, index: u32, n: u64) {
        if n == 0 {
            return;
        }
        self.total = self.total.saturating_add(n);
        match &mut self.form {
            Form::Dense { base, low } => {
                let mut i = index.wrapping_sub(*base) as usize;
                if i >= low.len() {
                    (*base, *low) = cover(*base, low, index, index);
                    i = (index - *base) as usize;
                }
                let sum = u64::from(low[i]) + (n & 0xff);
                low[i] = sum as u8;
                let up = (n >> 8) + (sum >> 8);
                if up > 0 {
                    carry(&mut self.high, index, up);
                }
            }
            Form::Sparse(entries) => {
                let key = u64::from(index);
                let at = entries.partition_point(|&e| (e >> COUNT_BITS) < key);
                let up = match entries.get_mut(at) {
                    Some(e) if *e >> COUNT_BITS == key => {
                        let sum = (*e & COUNT_MASK) + (n & COUNT_MASK);
                        *e = (key << COUNT_BITS) | (sum & COUNT_MASK);
                        (n >> COUNT_BITS) + (sum >> COUNT_BITS)
                    }
                    _ => {
                        entries.insert(at, (key << COUNT_BITS) | (n & COUNT_MASK));
                        n >> COUNT_BITS
                    }
                };
                if up > 0 {
                    carry(&mut self.high, index, up);
                }
                if self.dense_is_smaller() {
                    self.densify();
                }
            }
        }
    }

    /// Adds 1 at each index (the values of a recorded batch).
    pub(crate) fn record(&mut self, indexes: &[u32]) {
        let mut rest = indexes;
        while let Form::Sparse(_) = self.form {
            let Some((&index, tail)) = rest.split_first() else {
                return;
            };
            self.add(index, 1);
            rest = tail;
            if self.total >= HOT {
                self.densify();
            }
        }
        let Form::Dense { base, low } = &mut self.form else {
            return;
        };
        self.total = self.total.saturating_add(rest.len() as u64);
        let mut i = 0;
        while i < rest.len() {
            // The range in locals: a byte store could alias the fields as far as the compiler
            // knows, which would reload them for every value.
            let (first, bytes) = (*base, low.as_mut_slice());
            while let Some(&index) = rest.get(i) {
                match bytes.get_mut(index.wrapping_sub(first) as usize) {
                    Some(c) if *c < u8::MAX => *c += 1,
                    Some(c) => {
                        *c = 0;
                        carry(&mut self.high, index, 1);
                    }
                    None => break,
                }
                i += 1;
            }
            if let Some(&index) = rest.get(i) {
                (*base, *low) = cover(*base, low, index, index);
                low[(index - *base) as usize] = 1;
                i += 1;
            }
        }
    }

    /// Adds every count of `other`.
    pub(crate) fn merge(&mut self, other: &Counts) {
        other.for_each(|index, n| self.add(index, n));
    }

    /// Calls `f(index, count)` for each bucket whose count is not 0, by ascending index.
    pub(crate) fn for_each(&self, mut f: impl FnMut(u32, u64)) {
        let mut high = self.high.iter().peekable();
        let mut emit = |index: u32, low: u64, unit: u64| {
            let mut count = low;
            if let Some(&(_, n)) = high.next_if(|&&(h, _)| h == index) {
                count = count.saturating_add(n.saturating_mul(unit));
            }
            if count > 0 {
                f(index, count);
            }
        };
        match &self.form {
            Form::Sparse(entries) => {
                for &e in entries {
                    emit((e >> COUNT_BITS) as u32, e & COUNT_MASK, 1 << COUNT_BITS);
                }
            }
            Form::Dense { base, low } => {
                for (i, &c) in low.iter().enumerate() {
                    emit(base + i as u32, u64::from(c), 256);
                }
            }
        }
    }

    /// Heap bytes held.
    pub(crate) fn heap_bytes(&self) -> usize {
        let form = match &self.form {
            Form::Sparse(entries) => entries.capacity() * 8,
            Form::Dense { low, .. } => low.capacity(),
        };
        form + self.high.capacity() * std::mem::size_of::<(u32, u64)>()
    }

    /// Whether a dense form of the occupied range would take no more bytes than the list.
    fn dense_is_smaller(&self) -> bool {
        match &self.form {
            Form::Sparse(entries) => match (entries.first(), entries.last()) {
                (Some(&first), Some(&last)) => {
                    let (base, end) =
                        aligned((first >> COUNT_BITS) as u32, (last >> COUNT_BITS) as u32);
                    (end - base) as usize <= entries.len() * 8
                }
                _ => false,
            },
            Form::Dense { .. } => false,
        }
    }

    /// Turns a non-empty list into a dense range.
    fn densify(&mut self) {
        let Form::Sparse(entries) = &self.form else {
            return;
        };
        let (Some(&first), Some(&last)) = (entries.first(), entries.last()) else {
            return;
        };
        let mut whole = Vec::with_capacity(entries.len());
        self.for_each(|index, n| whole.push((index, n)));
        let (first, last) = ((first >> COUNT_BITS) as u32, (last >> COUNT_BITS) as u32);
        let (base, low) = cover(0, &[], first, last);
        let total = self.total;
        *self = Counts {
            form: Form::Dense { base, low },
            high: Vec::new(),
            total: 0,
        };
        for (index, n) in whole {
            self.add(index, n);
        }
        self.total = total;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdrhistogram::Histogram;
    use proptest::prelude::*;

    fn pairs(c: &Counts) -> Vec<(u32, u64)> {
        let mut out = Vec::new();
        c.for_each(|i, n| out.push((i, n)));
        out
    }

    #[test]
    fn layout_is_hdrhistograms() {
        for figures in 1..=5u8 {
            let layout = Layout::new(figures);
            let mut units: Vec<u64> = (0..5000).collect();
            units.extend((0..=53).flat_map(|b| {
                let p = 1u64 << b;
                [p - 1, p, p + 1, p + p / 3]
            }));
            for unit in units.into_iter().filter(|&u| u <= 1 << 53) {
                let mut h = Histogram::<u64>::new(figures).unwrap();
                h.record(unit).unwrap();
                let lowest = h.lowest_equivalent(unit);
                let index = layout.index(unit);
                assert_eq!(layout.value(index), lowest, "figures {figures} unit {unit}");
                // The index is hdrhistogram's: the count lands there in its counts array.
                let recorded = h.iter_recorded().next().unwrap();
                assert_eq!(h.lowest_equivalent(recorded.value_iterated_to()), lowest);
                assert_eq!(layout.index(lowest), index);
                assert_eq!(layout.index(h.highest_equivalent(unit)), index);
                if lowest > 0 {
                    assert_eq!(layout.index(lowest - 1), index - 1, "consecutive");
                }
            }
        }
    }

    /// `units_index` for a layout, against `Layout::index` of `f64::round`.
    fn check_units_index(figures: u8, x: f64, top: f64) -> Result<(), TestCaseError> {
        let layout = Layout::new(figures);
        let index = match layout.half_magnitude() {
            4 => units_index::<4>(x, top),
            7 => units_index::<7>(x, top),
            10 => units_index::<10>(x, top),
            14 => units_index::<14>(x, top),
            _ => units_index::<17>(x, top),
        };
        let expected = layout.index((x.round() as u64).min(top as u64));
        prop_assert_eq!(index, expected, "figures {} x {} top {}", figures, x, top);
        Ok(())
    }

    #[test]
    fn units_index_rounds_as_round() {
        let edges = [
            0.0,
            0.25,
            0.49999999999999994,
            0.5,
            0.5000000000000001,
            1.5,
            2.5,
            2047.5,
            2048.5,
            4095.5,
            4503599627370495.5, // 2^52 - 0.5
            4503599627370496.0, // 2^52
            4503599627370497.0,
            9007199254740991.0, // 2^53 - 1
            9007199254740992.0, // 2^53
        ];
        for figures in 1..=5 {
            for x in edges {
                check_units_index(figures, x, 9007199254740992.0).unwrap();
                check_units_index(figures, x, 3.6e9).unwrap();
            }
        }
    }

    proptest! {
        #[test]
        fn units_index_matches_index_of_round(
            x in prop_oneof![0.0f64..4.0, 0.0f64..1e6, 0.0f64..9.0e15, (0u64..1 << 53).prop_map(|u| u as f64), (0u64..1 << 54).prop_map(|u| u as f64 / 2.0)],
            top in prop_oneof![Just(9007199254740992.0f64), (1u64..1 << 53).prop_map(|u| u as f64)],
            figures in 1u8..=5,
        ) {
            check_units_index(figures, x, top)?;
        }

        #[test]
        fn counts_equal_hdrhistograms(
            units in prop::collection::vec(prop_oneof![0u64..3000, 0u64..1 << 20, 0u64..1 << 40, Just(5000u64)], 0..3000),
            adds in prop::collection::vec((0u64..1 << 30, 1u64..1 << 34), 0..20),
            figures in 1u8..=4,
        ) {
            let layout = Layout::new(figures);
            let mut h = Histogram::<u64>::new(figures).unwrap();
            let mut c = Counts::default();
            let indexes: Vec<u32> = units.iter().map(|&u| layout.index(u)).collect();
            for chunk in indexes.chunks(700) {
                c.record(chunk);
            }
            for &u in &units {
                h.record(u).unwrap();
            }
            for &(u, n) in &adds {
                c.add(layout.index(u), n);
                h.record_n(u, n).unwrap();
            }
            let expected: Vec<(u32, u64)> = h
                .iter_recorded()
                .map(|v| (layout.index(v.value_iterated_to()), v.count_at_value()))
                .collect();
            prop_assert_eq!(pairs(&c), expected);
            prop_assert_eq!(c.is_empty(), h.is_empty());
            // A merge of two halves is the whole.
            let mut a = Counts::default();
            let mut b = Counts::default();
            let (x, y) = indexes.split_at(indexes.len() / 2);
            a.record(x);
            b.record(y);
            for &(u, n) in &adds {
                b.add(layout.index(u), n);
            }
            a.merge(&b);
            prop_assert_eq!(pairs(&a), pairs(&c));
        }
    }

    #[test]
    fn forms_follow_size_and_use() {
        let layout = Layout::new(3);
        let mut c = Counts::default();
        c.record(&[layout.index(1_000), layout.index(10_000_000)]);
        assert!(
            matches!(c.form, Form::Sparse(_)),
            "two far apart values stay a list"
        );
        assert!(c.heap_bytes() <= 32, "{}", c.heap_bytes());
        // Many values: dense, one byte per bucket of the range (1 ms to 10 s: 13.5 KB).
        let many: Vec<u32> = (0..HOT as u32)
            .map(|i| layout.index(1_000 + 2_441 * u64::from(i)))
            .collect();
        c.record(&many);
        assert!(matches!(c.form, Form::Dense { .. }));
        assert!(c.heap_bytes() < 16 * 1024, "{}", c.heap_bytes());
        // Counts past 255 carry into the high part, exactly.
        let hot = vec![layout.index(5_000); 100_000];
        c.record(&hot);
        let at = pairs(&c)
            .into_iter()
            .find(|&(i, _)| i == layout.index(5_000))
            .unwrap();
        let before = many.iter().filter(|&&i| i == at.0).count() as u64;
        assert_eq!(at.1, 100_000 + before);
        // Merging never builds a large range out of few buckets, whatever their counts.
        let mut m = Counts::default();
        m.add(0, 1 << 40);
        m.add(layout.index(1 << 50), (1 << 40) + 3);
        assert!(m.heap_bytes() <= 128, "{}", m.heap_bytes());
        assert_eq!(
            pairs(&m),
            [(0, 1 << 40), (layout.index(1 << 50), (1 << 40) + 3)]
        );
    }
}
