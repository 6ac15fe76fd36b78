//! The aggregation state of one Panopticon instance in one process, for the current interval.
//!
//! Two ways in, chosen by what a record costs on the JS hot path:
//! - **counters** (`inc`): JS adds into two `f64` slots of its own (`[calls, sum]`) in fixed-size
//!   pages; the engine reads and zeroes them when the interval is collected. No call into native
//!   code per record.
//! - **summaries** (`sample`, `timedSample`): JS appends `(series id, value)` pairs to a batch
//!   buffer and hands the buffer over when it is full or the interval ends ([`Engine::push`]);
//!   the engine folds each value into the series' [`Summary`].
//!
//! [`Engine::collect`] turns the interval into flat records (see [`Record`]) and starts the next
//! interval empty. Which interval a record belongs to is decided on the JS side with the interval
//! clock ([`crate::clock`]) before it writes: the engine only ever holds one interval.

use crate::summary::Summary;

/// Number of `f64` slots in one counter page. A counter never straddles two pages.
pub const PAGE_SLOTS: usize = 4096;

/// Slots used by one counter: `[number of calls, sum of the increments]`.
pub const COUNTER_SLOTS: usize = 2;

/// Length in `f64` of the batch buffer JS fills with `(series id, value)` pairs.
pub const BATCH_LENGTH: usize = 2 * 4096;

/// What a series aggregates, and so how its records reach the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Sum of increments, written by JS into page slots.
    Counter,
    /// Count, total, min, max, mean and sigma of values, pushed in batches.
    Summary,
}

impl Kind {
    /// The kind with the given wire code (0 = counter, 1 = summary).
    pub fn from_code(code: u32) -> Option<Kind> {
        match code {
            0 => Some(Kind::Counter),
            1 => Some(Kind::Summary),
            _ => None,
        }
    }
}

/// The fields of one record in [`Engine::collect`]'s output, in order. A missing value (the min of
/// an empty summary, the sigma of one value) is `NaN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum Record {
    /// The series id given by [`Engine::define`].
    Id,
    /// Calls (counter) or values (summary).
    Count,
    /// Sum of the increments or of the values.
    Total,
    /// Smallest value.
    Min,
    /// Largest value.
    Max,
    /// `total / count`.
    Average,
    /// Sample standard deviation (n - 1).
    Sigma,
    /// `total * scale_factor / interval`: the rate `inc` reports.
    Rate,
}

/// Number of `f64` in one record.
pub const RECORD_WIDTH: usize = Record::Rate as usize + 1;

/// The names of [`Record`]'s fields, in order (what the binding tells JS).
pub const RECORD_FIELDS: [&str; RECORD_WIDTH] = [
    "id", "count", "total", "min", "max", "average", "sigma", "rate",
];

/// Where a newly defined series lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Definition {
    /// Dense id, starting at 0 in definition order.
    pub id: u32,
    /// For a counter, the index of its first slot across the pages (page = slot / PAGE_SLOTS).
    pub slot: Option<u32>,
}

#[derive(Debug)]
struct Series {
    kind: Kind,
    slot: Option<usize>,
    summary: Summary,
}

/// One instance's interval state. See the module documentation.
#[derive(Debug)]
pub struct Engine {
    series: Vec<Series>,
    next_slot: usize,
    persist: bool,
    rate_factor: f64,
    rejected: u64,
}

impl Engine {
    /// `scale_factor / interval` turns a counter's total into its rate; with `persist`, every
    /// series ever defined is reported each interval, untouched ones in their empty state.
    pub fn new(interval: f64, scale_factor: f64, persist: bool) -> Engine {
        Engine {
            series: Vec::new(),
            next_slot: 0,
            persist,
            rate_factor: scale_factor / interval,
            rejected: 0,
        }
    }

    /// Adds a series of the given kind.
    pub fn define(&mut self, kind: Kind) -> Definition {
        let id = self.series.len() as u32;
        let slot = match kind {
            Kind::Counter => {
                if self.next_slot % PAGE_SLOTS + COUNTER_SLOTS > PAGE_SLOTS {
                    self.next_slot += PAGE_SLOTS - self.next_slot % PAGE_SLOTS;
                }
                let slot = self.next_slot;
                self.next_slot += COUNTER_SLOTS;
                Some(slot)
            }
            Kind::Summary => None,
        };
        self.series.push(Series {
            kind,
            slot,
            summary: Summary::default(),
        });
        Definition {
            id,
            slot: slot.map(|s| s as u32),
        }
    }

    /// Number of counter pages JS must have allocated for the series defined so far.
    pub fn pages_needed(&self) -> usize {
        self.next_slot.div_ceil(PAGE_SLOTS)
    }

    /// Folds `(series id, value)` pairs into their summaries. A pair naming no summary series is
    /// skipped and counted in [`Engine::take_rejected`] (JS never writes one; this keeps a bug
    /// from corrupting another series).
    pub fn push(&mut self, pairs: &[f64]) {
        for pair in pairs.chunks_exact(2) {
            let series = usize::try_from(pair[0] as i64)
                .ok()
                .filter(|&i| i as f64 == pair[0])
                .and_then(|i| self.series.get_mut(i))
                .filter(|s| s.kind == Kind::Summary);
            match series {
                Some(s) => s.summary.push(pair[1]),
                None => self.rejected += 1,
            }
        }
        self.rejected += (pairs.len() % 2) as u64;
    }

    /// Reads and zeroes the counter slots in `pages`, appends one [`Record`] per reported series
    /// to `out`, and empties every series for the next interval. Reported: the series touched in
    /// the interval, or all of them with `persist`.
    pub fn collect(&mut self, pages: &mut [&mut [f64]], out: &mut Vec<f64>) {
        for (id, series) in self.series.iter_mut().enumerate() {
            let mut summary = std::mem::take(&mut series.summary);
            if let Some(slot) = series.slot {
                if let Some(cells) = pages
                    .get_mut(slot / PAGE_SLOTS)
                    .and_then(|page| page.get_mut(slot % PAGE_SLOTS..slot % PAGE_SLOTS + 2))
                {
                    summary.count = cells[0];
                    summary.total = cells[1];
                    cells.fill(0.0);
                }
            }
            if summary.is_empty() && !self.persist {
                continue;
            }
            let (min, max, average, sigma) = if series.kind == Kind::Summary {
                (
                    summary.min(),
                    summary.max(),
                    summary.average(),
                    summary.sigma(),
                )
            } else {
                (None, None, None, None)
            };
            out.extend_from_slice(&[
                id as f64,
                summary.count,
                summary.total,
                min.unwrap_or(f64::NAN),
                max.unwrap_or(f64::NAN),
                average.unwrap_or(f64::NAN),
                sigma.unwrap_or(f64::NAN),
                summary.total * self.rate_factor,
            ]);
        }
    }

    /// Pairs skipped by [`Engine::push`] since the last call.
    pub fn take_rejected(&mut self) -> u64 {
        std::mem::take(&mut self.rejected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(out: &[f64]) -> Vec<&[f64]> {
        out.chunks_exact(RECORD_WIDTH).collect()
    }

    #[test]
    fn counters_never_straddle_pages() {
        let mut e = Engine::new(1000.0, 1.0, false);
        let mut last = 0;
        for _ in 0..5000 {
            let slot = e.define(Kind::Counter).slot.unwrap() as usize;
            assert!(slot % PAGE_SLOTS + COUNTER_SLOTS <= PAGE_SLOTS);
            last = slot;
        }
        assert_eq!(e.pages_needed(), last / PAGE_SLOTS + 1);
        assert_eq!(e.define(Kind::Summary).slot, None);
    }

    #[test]
    fn counter_rate_and_reset() {
        let mut e = Engine::new(500.0, 1000.0, false);
        let d = e.define(Kind::Counter);
        let mut page = vec![0.0; PAGE_SLOTS];
        let s = d.slot.unwrap() as usize;
        page[s] = 3.0;
        page[s + 1] = 10.0;
        let mut out = Vec::new();
        e.collect(&mut [&mut page[..]], &mut out);
        let r = records(&out);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0][Record::Count as usize], 3.0);
        assert_eq!(r[0][Record::Total as usize], 10.0);
        assert_eq!(r[0][Record::Rate as usize], 20.0);
        assert!(r[0][Record::Sigma as usize].is_nan());
        assert_eq!(&page[s..s + 2], &[0.0, 0.0]);
        out.clear();
        e.collect(&mut [&mut page[..]], &mut out);
        assert!(
            out.is_empty(),
            "an untouched series disappears without persist"
        );
    }

    #[test]
    fn a_zero_increment_is_still_reported() {
        let mut e = Engine::new(1000.0, 1.0, false);
        let s = e.define(Kind::Counter).slot.unwrap() as usize;
        let mut page = vec![0.0; PAGE_SLOTS];
        page[s] = 1.0; // one call of inc(path, id, 0)
        let mut out = Vec::new();
        e.collect(&mut [&mut page[..]], &mut out);
        assert_eq!(records(&out)[0][Record::Rate as usize], 0.0);
    }

    #[test]
    fn summaries_from_batches() {
        let mut e = Engine::new(1000.0, 1.0, false);
        let a = e.define(Kind::Summary).id as f64;
        let b = e.define(Kind::Summary).id as f64;
        e.push(&[a, 1.0, b, 7.0, a, 3.0]);
        let mut out = Vec::new();
        e.collect(&mut [], &mut out);
        let r = records(&out);
        assert_eq!(r.len(), 2);
        assert_eq!(&r[0][..7], &[a, 2.0, 4.0, 1.0, 3.0, 2.0, 2f64.sqrt()]);
        assert_eq!(r[1][Record::Average as usize], 7.0);
        assert!(r[1][Record::Sigma as usize].is_nan());
    }

    #[test]
    fn persist_reports_empty_states() {
        let mut e = Engine::new(1000.0, 1.0, true);
        let c = e.define(Kind::Counter);
        let s = e.define(Kind::Summary);
        let mut page = vec![0.0; PAGE_SLOTS];
        e.push(&[s.id as f64, 5.0]);
        page[c.slot.unwrap() as usize..][..2].copy_from_slice(&[1.0, 2.0]);
        let mut out = Vec::new();
        e.collect(&mut [&mut page[..]], &mut out);
        assert_eq!(records(&out).len(), 2);
        out.clear();
        e.collect(&mut [&mut page[..]], &mut out);
        let r = records(&out);
        assert_eq!(r.len(), 2);
        assert_eq!(&r[0][..3], &[0.0, 0.0, 0.0]);
        assert_eq!(r[0][Record::Rate as usize], 0.0);
        assert_eq!(&r[1][..3], &[1.0, 0.0, 0.0]);
        for f in [Record::Min, Record::Max, Record::Average, Record::Sigma] {
            assert!(r[1][f as usize].is_nan());
        }
    }

    #[test]
    fn bad_pairs_are_rejected_not_applied() {
        let mut e = Engine::new(1000.0, 1.0, false);
        let c = e.define(Kind::Counter).id as f64;
        let s = e.define(Kind::Summary).id as f64;
        e.push(&[
            c,
            1.0,
            9.0,
            1.0,
            -1.0,
            1.0,
            0.5,
            1.0,
            f64::NAN,
            1.0,
            s,
            2.0,
            s,
        ]);
        assert_eq!(e.take_rejected(), 6);
        assert_eq!(e.take_rejected(), 0);
        let mut out = Vec::new();
        e.collect(&mut [], &mut out);
        let r = records(&out);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0][Record::Count as usize], 1.0);
    }
}
