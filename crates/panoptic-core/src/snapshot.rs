//! One process's (or thread's) collected interval: every series that is reported, with its key and
//! its aggregate. Snapshots travel between processes ([`crate::wire`]), merge exactly across
//! processes ([`Merged`]) and become delivery trees ([`crate::gather::tree`]).

use std::collections::HashMap;
use std::sync::Arc;

use compact_str::CompactString;

use crate::stats::histogram::{Distribution, HistogramOptions};
use crate::stats::meter::MeterStats;
use crate::stats::rate::RateStats;
use crate::stats::summary::Summary;

/// What identifies a series: the logger method, the path and the id. The method and the path are
/// shared (an engine gives every series of one path the same `Arc`): series are many, methods
/// and paths few.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SeriesKey {
    /// The logger method (`inc`, `sample`, `timedSample`, `set`, or a registered name).
    pub method: Arc<str>,
    /// Path elements (strings; numbers were turned into strings by the JS side).
    pub path: Arc<[String]>,
    /// The id under the path: inline (no allocation of its own) when at most 24 bytes, as most
    /// ids are; a series costs one block less in the engine and in the master's registry.
    pub id: CompactString,
}

impl SeriesKey {
    /// A key from borrowed parts (tests, benches and tools; engines share their `Arc`s instead).
    pub fn new(method: &str, path: &[&str], id: &str) -> SeriesKey {
        SeriesKey {
            method: method.into(),
            path: path.iter().map(|s| s.to_string()).collect(),
            id: id.into(),
        }
    }
}

/// The aggregate of one series over one interval.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `inc`: number of calls and sum of increments.
    Counter { count: f64, total: f64 },
    /// `sample` / `timedSample`.
    Summary(Summary),
    /// `set`: the value as JSON text ("" for `undefined`), and when it was written (epoch ms).
    Set { json: String, at: f64 },
    /// A registered logger: its `toJSON()` leaf as JSON text ("" when it gave `undefined`).
    Custom { json: String },
    /// `gauge`: the number its function gave at collection (None: it threw or gave no number).
    Gauge(Option<f64>),
    /// `histogram`.
    Histogram(Box<Distribution>),
    /// `meter`: its count and rates at the end of the interval.
    Meter(MeterStats),
    /// `rate`: the interval's rate (None: no rate could be computed, with `persist`).
    Rate(Option<RateStats>),
}

/// One reported series.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: Arc<SeriesKey>,
    pub value: Value,
}

/// What a snapshot's numbers mean: the grid of intervals it was collected on (interval `k` spans
/// `[start + k * interval, start + (k + 1) * interval)`, in epoch ms) and the instance options
/// that change the meaning of its values. A master merges a snapshot only if its profile matches
/// (see [`Profile::offset`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Profile {
    pub interval: f64,
    pub start: f64,
    pub scale_factor: f64,
    pub persist: bool,
    pub histogram: HistogramOptions,
}

impl Default for Profile {
    /// panopticon 0.3.0's defaults: a 10 s interval from the epoch, scale factor 1, no persist.
    fn default() -> Self {
        Profile {
            interval: 10_000.0,
            start: 0.0,
            scale_factor: 1.0,
            persist: false,
            histogram: HistogramOptions::default(),
        }
    }
}

impl Profile {
    /// How to read `theirs`'s interval numbers on this grid: their interval `k` is this grid's
    /// `k + offset`. The grids are the same when the intervals are equal and the start times are
    /// congruent modulo the interval (the boundaries fall on the same instants: a worker started
    /// from 0 and a master started from a boundary of its own agree). Otherwise, or when an
    /// option that changes the meaning of the values differs, the differences as text.
    pub fn offset(&self, theirs: &Profile) -> Result<f64, String> {
        let mut differences = Vec::new();
        let mut offset = 0.0;
        if theirs.interval != self.interval {
            differences.push(format!(
                "interval {} (here {})",
                theirs.interval, self.interval
            ));
        } else {
            let steps = (theirs.start - self.start) / self.interval;
            let whole = steps.round();
            // The boundaries' instants, compared to within a nanosecond (f64 arithmetic on
            // fractional intervals is not exact).
            if (whole * self.interval - (theirs.start - self.start)).abs() > 1e-6 {
                differences.push(format!(
                    "startTime {} (here {}): the interval boundaries fall {} ms apart",
                    theirs.start,
                    self.start,
                    (theirs.start - self.start).rem_euclid(self.interval)
                ));
            } else {
                offset = whole;
            }
        }
        if theirs.scale_factor != self.scale_factor {
            differences.push(format!(
                "scaleFactor {} (here {})",
                theirs.scale_factor, self.scale_factor
            ));
        }
        if theirs.persist != self.persist {
            differences.push(format!(
                "persist {} (here {})",
                theirs.persist, self.persist
            ));
        }
        if theirs.histogram != self.histogram {
            differences.push(format!(
                "histogram {} (here {})",
                describe(&theirs.histogram),
                describe(&self.histogram)
            ));
        }
        if differences.is_empty() {
            Ok(offset)
        } else {
            Err(differences.join(", "))
        }
    }
}

/// Histogram options as the JS option object spells them.
fn describe(h: &HistogramOptions) -> String {
    format!(
        "{{ significantFigures: {}, lowest: {}, highest: {}, reservoir: '{}' }}",
        h.significant_figures(),
        h.lowest(),
        h.highest(),
        h.reservoir().as_str()
    )
}

/// What a process counted in an interval besides its series (the delivery's `meta` sums them
/// over every part).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counts {
    /// Data points its validators dropped.
    pub dropped: f64,
    /// Values replaced by a default (an `inc` whose `n` is not a number counts 1, as in
    /// panopticon 0.3.0).
    pub invalid: f64,
    /// Values recorded into an overflow series (a limit on series or tag sets was reached).
    pub overflowed: f64,
    /// Exceptions (loggers, validators, serialization; series left out of a tree).
    pub errors: f64,
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, other: Counts) {
        self.dropped += other.dropped;
        self.invalid += other.invalid;
        self.overflowed += other.overflowed;
        self.errors += other.errors;
    }
}

impl Counts {
    /// Each count, in the order the wire writes them.
    pub fn fields(&self) -> [f64; 4] {
        [self.dropped, self.invalid, self.overflowed, self.errors]
    }
}

/// What a process's engine held when it closed an interval (panoptic's own metrics,
/// docs/self-monitoring.md): unlike [`Counts`], a state, not a sum over the interval.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Footprint {
    /// Series the engine holds (every series defined and not forgotten).
    pub series: f64,
    /// Bytes the engine holds for them (`Engine::footprint` in `crate::record::engine` says what
    /// is counted).
    pub bytes: f64,
}

/// One interval of one process or thread.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Snapshot {
    /// The interval number on the instance's grid (`profile`'s).
    pub k: f64,
    /// The grid and options it was collected with.
    pub profile: Profile,
    /// The pid of the process that collected it.
    pub pid: u32,
    /// What went wrong, or somewhere else, in the interval.
    pub counts: Counts,
    /// What its engine held at the close.
    pub footprint: Footprint,
    /// Reported series, in the order their series were defined.
    pub entries: Vec<Entry>,
}

impl Snapshot {
    /// Each reported series' key and value (what [`crate::gather::tree::render`] takes).
    pub fn series(&self) -> impl Iterator<Item = (&SeriesKey, &Value)> {
        self.entries.iter().map(|e| (&*e.key, &e.value))
    }
}

/// The cluster view of one interval, merged part by part (a process's or a thread's snapshot) as
/// the parts arrive. Series are addressed by their master-wide id ([`crate::gather::registry`]), so a
/// merge is an indexed update: no hashing of keys.
#[derive(Debug, Default)]
pub struct Merged {
    /// Merged series ids, in the order they first arrived.
    pub ids: Vec<u32>,
    /// Their merged values; a custom series holds its first leaf here and every leaf in
    /// `custom`.
    pub values: Vec<Value>,
    /// For each custom series (by position): every part's leaf, in arrival order. The JS side
    /// merges them with the logger class's static `merge(a, b)`.
    pub custom: HashMap<usize, Vec<String>>,
    /// Series id -> 1 + its position in `ids` (0: not there yet).
    position: Vec<u32>,
    /// Series id -> the number of the last part that brought it.
    part_of: Vec<u32>,
    parts: u32,
}

/// A part named one series twice: it was not merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeriesTwice;

impl Merged {
    /// An empty view with room for `series`.
    pub fn with_capacity(series: usize) -> Merged {
        Merged {
            ids: Vec::with_capacity(series),
            values: Vec::with_capacity(series),
            ..Merged::default()
        }
    }

    /// Merges a part: `ids[i]` is the series id of `values[i]`. Each kind has its exact rule:
    /// counters and summaries add up, the most recent `set` wins, custom leaves are gathered. A
    /// series whose kind differs between parts keeps the first kind seen (the other is skipped).
    /// A part that names a series twice is refused whole.
    pub fn add(&mut self, ids: &[u32], values: &[Value]) -> Result<(), SeriesTwice> {
        self.parts += 1;
        let part = self.parts;
        if let Some(&top) = ids.iter().max() {
            let len = top as usize + 1;
            if self.position.len() < len {
                self.position.resize(len, 0);
                self.part_of.resize(len, 0);
            }
        }
        for &id in ids {
            let seen = &mut self.part_of[id as usize];
            if *seen == part {
                return Err(SeriesTwice);
            }
            *seen = part;
        }
        for (&id, value) in ids.iter().zip(values) {
            let position = &mut self.position[id as usize];
            if *position == 0 {
                let i = self.ids.len();
                self.ids.push(id);
                self.values.push(value.clone());
                *position = i as u32 + 1;
                if let Value::Custom { json } = value {
                    self.custom.insert(i, vec![json.clone()]);
                }
                continue;
            }
            let i = *position as usize - 1;
            match (&mut self.values[i], value) {
                (Value::Counter { count, total }, Value::Counter { count: c, total: t }) => {
                    *count += c;
                    *total += t;
                }
                (Value::Summary(a), Value::Summary(b)) => *a = a.merge(b),
                (Value::Set { json, at }, Value::Set { json: j, at: t }) if *t > *at => {
                    json.clone_from(j);
                    *at = *t;
                }
                // Histograms add up; the master only merges ones made with its own options
                // (crate::gather), so a merge cannot fail here.
                (Value::Histogram(a), Value::Histogram(b)) => {
                    let _ = a.merge(b);
                }
                // Meters: counts and rates add up.
                (Value::Meter(a), Value::Meter(b)) => a.merge(b),
                // Rates add up.
                (Value::Rate(a), Value::Rate(b)) => match (a.as_mut(), b) {
                    (Some(x), Some(y)) => x.merge(y),
                    (None, y) => *a = *y,
                    (Some(_), None) => {}
                },
                // Gauges add up (a process whose function failed adds nothing).
                (Value::Gauge(a), Value::Gauge(b)) => {
                    *a = match (*a, *b) {
                        (Some(x), Some(y)) => Some(x + y),
                        (x, y) => x.or(y),
                    }
                }
                (Value::Custom { .. }, Value::Custom { json }) => {
                    self.custom.entry(i).or_default().push(json.clone());
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Frees what only merging needs (a slot per master-wide series id: 8 bytes per series the
    /// master ever saw), once nothing more will be merged: a delivered interval keeps its merged
    /// values, not its merging state.
    pub fn seal(&mut self) {
        self.position = Vec::new();
        self.part_of = Vec::new();
    }

    /// Takes out the series at `positions` (ascending), once every part is in.
    pub fn remove(&mut self, positions: &[usize]) {
        if positions.is_empty() {
            return;
        }
        let mut gone = positions.iter().peekable();
        let mut renumbered = HashMap::new();
        let mut kept = 0;
        for i in 0..self.ids.len() {
            if gone.next_if_eq(&&i).is_some() {
                continue;
            }
            self.ids.swap(kept, i);
            self.values.swap(kept, i);
            if let Some(leaves) = self.custom.remove(&i) {
                renumbered.insert(kept, leaves);
            }
            kept += 1;
        }
        self.ids.truncate(kept);
        self.values.truncate(kept);
        self.custom = renumbered;
        // Positions are stale now: nothing more can be merged.
        self.position.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn summary_of(xs: &[f64]) -> Summary {
        let mut s = Summary::default();
        for &x in xs {
            s.push(x);
        }
        s
    }

    fn rel(a: f64, b: f64) -> f64 {
        if a == b {
            0.0
        } else {
            (a - b).abs() / a.abs().max(b.abs())
        }
    }

    #[test]
    fn profiles_match_on_the_same_grid_and_options() {
        let ours = Profile {
            interval: 400.0,
            start: 1_765_000_000_000.0,
            ..Profile::default()
        };
        let epoch = Profile { start: 0.0, ..ours };
        assert_eq!(ours.offset(&epoch), Ok(-ours.start / 400.0));
        assert_eq!(epoch.offset(&ours), Ok(ours.start / 400.0));
        assert_eq!(ours.offset(&ours), Ok(0.0));
        // Fractional intervals: the same boundaries within f64's precision.
        let tenth = Profile {
            interval: 0.1,
            start: 0.0,
            ..ours
        };
        assert_eq!(
            tenth.offset(&Profile {
                start: 0.3,
                ..tenth
            }),
            Ok(3.0)
        );
        let off = Profile {
            start: 100.0,
            ..epoch
        };
        let e = epoch.offset(&off).unwrap_err();
        assert!(
            e.contains("startTime 100 (here 0)") && e.contains("100 ms apart"),
            "{e}"
        );
        let e = ours
            .offset(&Profile {
                interval: 500.0,
                persist: true,
                histogram: HistogramOptions::new(
                    2,
                    1.0,
                    10.0,
                    crate::stats::histogram::Reservoir::Uniform,
                )
                .unwrap(),
                ..ours
            })
            .unwrap_err();
        assert_eq!(
            e,
            "interval 500 (here 400), persist true (here false), histogram { significantFigures: 2, lowest: 1, highest: 10, reservoir: 'uniform' } (here { significantFigures: 3, lowest: 0.001, highest: 3600000, reservoir: 'hdr' })"
        );
    }

    proptest! {
        #[test]
        fn chan_equals_one_process_fed_everything(
            parts in prop::collection::vec(prop::collection::vec(-1e4f64..1e6, 0..60), 1..6)
        ) {
            let all: Vec<f64> = parts.iter().flatten().cloned().collect();
            prop_assume!(all.len() >= 2);
            let whole = summary_of(&all);
            let merged = parts.iter().map(|p| summary_of(p)).fold(Summary::default(), |a, b| a.merge(&b));
            prop_assert_eq!(merged.count, whole.count);
            prop_assert_eq!(merged.min, whole.min);
            prop_assert_eq!(merged.max, whole.max);
            prop_assert!(rel(merged.total, whole.total) < 1e-12);
            prop_assert!(rel(merged.average().unwrap(), whole.average().unwrap()) < 1e-9);
            let (ms, ws) = (merged.sigma().unwrap(), whole.sigma().unwrap());
            prop_assert!(rel(ms, ws) < 1e-9 || ws < 1e-9, "sigma {} vs {}", ms, ws);
        }
    }

    #[test]
    fn merge_rules() {
        let set = |json: &str, at: f64| Value::Set {
            json: json.into(),
            at,
        };
        let counter = |count: f64, total: f64| Value::Counter { count, total };
        let a = vec![
            counter(2.0, 5.0),
            set("\"old\"", 10.0),
            Value::Custom { json: "1".into() },
        ];
        let b = vec![
            set("\"new\"", 20.0),
            counter(1.0, 1.0),
            Value::Summary(summary_of(&[3.0])),
            Value::Custom { json: "2".into() },
        ];
        // Series ids as a registry would give them: c 0, s 1, m 2, only-b 7.
        let mut m = Merged::default();
        m.add(&[0, 1, 2], &a).unwrap();
        m.add(&[1, 0, 7, 2], &b).unwrap();
        assert_eq!(m.ids, [0, 1, 2, 7]);
        assert_eq!(m.values[0], counter(3.0, 6.0));
        assert_eq!(m.values[1], set("\"new\"", 20.0));
        assert_eq!(m.custom[&2], vec!["1".to_string(), "2".to_string()]);
        // Another kind under a known id is skipped; a series twice in one part refuses the part.
        m.add(&[0], &[Value::Summary(summary_of(&[1.0]))]).unwrap();
        assert_eq!(m.values[0], counter(3.0, 6.0));
        assert_eq!(
            m.add(&[0, 0], &[a[0].clone(), a[0].clone()]),
            Err(SeriesTwice)
        );
        assert_eq!(m.values[0], counter(3.0, 6.0), "nothing merged");
        // Gauges add up; one without a number adds nothing.
        let mut g = Merged::default();
        for v in [Some(1.5), None, Some(2.0)] {
            g.add(&[4], &[Value::Gauge(v)]).unwrap();
        }
        assert_eq!(g.values, [Value::Gauge(Some(3.5))]);
        let mut none = Merged::default();
        none.add(&[4], &[Value::Gauge(None)]).unwrap();
        none.add(&[4], &[Value::Gauge(None)]).unwrap();
        assert_eq!(none.values, [Value::Gauge(None)]);
        // An older write does not replace a newer one.
        let mut m2 = Merged::default();
        m2.add(&[1, 0, 7, 2], &b).unwrap();
        m2.add(&[0, 1, 2], &a).unwrap();
        assert_eq!(m2.values[0], set("\"new\"", 20.0));
        // Taking entries out keeps the rest, their ids and their custom leaves together.
        m.remove(&[0, 3]);
        assert_eq!(m.ids, [1, 2]);
        assert_eq!(m.values[0], set("\"new\"", 20.0));
        assert_eq!(m.custom[&1], vec!["1".to_string(), "2".to_string()]);
    }
}
