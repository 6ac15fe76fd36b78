//! The aggregation state of one Panopticon instance in one process, for the current interval.
//!
//! How records reach it, chosen by what a record costs on the JS hot path:
//! - **counters** (`inc`): JS adds into two `f64` slots of its own (`[calls, sum]`) in fixed-size
//!   pages; the engine reads and zeroes them when the interval closes. No native call per record.
//! - **summaries** (`sample`, `timedSample`): JS appends `(series id, value)` pairs to a batch
//!   buffer and hands it over when it is full or the interval ends ([`Engine::push`]); the
//!   engine folds each value into the series' [`Summary`].
//! - **JS values** (`set`, registered loggers): JS keeps them and passes their JSON when the
//!   interval closes ([`JsValue`]).
//!
//! [`Engine::close`] turns the interval into a [`Snapshot`] and starts the next one empty. Which
//! interval a record belongs to is decided on the JS side with the interval clock
//! ([`crate::clock`]) before it writes: the engine only ever holds one open interval.

use std::sync::Arc;

use crate::snapshot::{Entry, SeriesKey, Snapshot, Value};
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
    /// The last value written (`set`), kept by JS.
    Set,
    /// A registered logger's leaf, kept by JS.
    Custom,
}

impl Kind {
    /// The kind with the given code (0 counter, 1 summary, 2 set, 3 custom).
    pub fn from_code(code: u32) -> Option<Kind> {
        match code {
            0 => Some(Kind::Counter),
            1 => Some(Kind::Summary),
            2 => Some(Kind::Set),
            3 => Some(Kind::Custom),
            _ => None,
        }
    }
}

/// Where a newly defined series lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Definition {
    /// Dense id, starting at 0 in definition order.
    pub id: u32,
    /// For a counter, the index of its first slot across the pages (page = slot / PAGE_SLOTS).
    pub slot: Option<u32>,
}

/// The value of a `set` or registered-logger series at the end of an interval, from JS.
#[derive(Debug, Clone, PartialEq)]
pub struct JsValue {
    /// The series id.
    pub id: u32,
    /// `JSON.stringify` of the value (set) or of the logger (its `toJSON()` leaf); "" for undefined.
    pub json: String,
    /// Set only: when the value was written (epoch ms); the most recent write wins in a merge.
    pub at: f64,
}

#[derive(Debug)]
struct Series {
    kind: Kind,
    key: Arc<SeriesKey>,
    slot: Option<usize>,
    summary: Summary,
}

/// One instance's open interval. See the module documentation.
#[derive(Debug)]
pub struct Engine {
    series: Vec<Series>,
    next_slot: usize,
    persist: bool,
    rejected: u64,
}

impl Engine {
    /// With `persist`, every series ever defined is reported each interval, untouched counters
    /// and summaries in their empty state.
    pub fn new(persist: bool) -> Engine {
        Engine {
            series: Vec::new(),
            next_slot: 0,
            persist,
            rejected: 0,
        }
    }

    /// Adds a series.
    pub fn define(&mut self, kind: Kind, key: SeriesKey) -> Definition {
        let id = self.series.len() as u32;
        let slot = (kind == Kind::Counter).then(|| {
            if self.next_slot % PAGE_SLOTS + COUNTER_SLOTS > PAGE_SLOTS {
                self.next_slot += PAGE_SLOTS - self.next_slot % PAGE_SLOTS;
            }
            self.next_slot += COUNTER_SLOTS;
            self.next_slot - COUNTER_SLOTS
        });
        self.series.push(Series {
            kind,
            key: Arc::new(key),
            slot,
            summary: Summary::default(),
        });
        Definition {
            id,
            slot: slot.map(|s| s as u32),
        }
    }

    /// Folds `(series id, value)` pairs into their summaries. A pair naming no summary series is
    /// skipped and counted as an error of the interval (JS never writes one; this keeps a bug
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

    /// Closes interval `k`: reads and zeroes the counter slots in `pages`, takes the JS values,
    /// and returns the snapshot (series in definition order). Reported: counters and summaries
    /// touched in the interval (all with `persist`), and every JS value given (JS decides which).
    /// `dropped` and `errors` are the interval's counts on the JS side.
    pub fn close(
        &mut self,
        k: f64,
        pages: &mut [&mut [f64]],
        js: Vec<JsValue>,
        dropped: f64,
        errors: f64,
    ) -> Snapshot {
        let mut js_values: Vec<Option<JsValue>> = vec![None; self.series.len()];
        for v in js {
            match js_values.get_mut(v.id as usize) {
                Some(place)
                    if matches!(self.series[v.id as usize].kind, Kind::Set | Kind::Custom) =>
                {
                    *place = Some(v)
                }
                _ => self.rejected += 1,
            }
        }
        let mut entries = Vec::new();
        for (series, js) in self.series.iter_mut().zip(js_values) {
            let value = match series.kind {
                Kind::Counter => {
                    let cells = series.slot.and_then(|slot| {
                        pages
                            .get_mut(slot / PAGE_SLOTS)
                            .and_then(|p| p.get_mut(slot % PAGE_SLOTS..slot % PAGE_SLOTS + 2))
                    });
                    let Some(cells) = cells else { continue };
                    let (count, total) = (cells[0], cells[1]);
                    cells.fill(0.0);
                    if count == 0.0 && !self.persist {
                        continue;
                    }
                    Value::Counter { count, total }
                }
                Kind::Summary => {
                    let summary = std::mem::take(&mut series.summary);
                    if summary.is_empty() && !self.persist {
                        continue;
                    }
                    Value::Summary(summary)
                }
                Kind::Set => match js {
                    Some(JsValue { json, at, .. }) => Value::Set { json, at },
                    None => continue,
                },
                Kind::Custom => match js {
                    Some(JsValue { json, .. }) => Value::Custom { json },
                    None => continue,
                },
            };
            entries.push(Entry {
                key: series.key.clone(),
                value,
            });
        }
        Snapshot {
            k,
            pid: std::process::id(),
            dropped,
            errors: errors + std::mem::take(&mut self.rejected) as f64,
            entries,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(method: &str, id: &str) -> SeriesKey {
        SeriesKey {
            method: method.into(),
            path: vec!["p".into()],
            id: id.into(),
        }
    }

    #[test]
    fn counters_never_straddle_pages() {
        let mut e = Engine::new(false);
        for i in 0..5000 {
            let slot = e
                .define(Kind::Counter, key("inc", &i.to_string()))
                .slot
                .unwrap() as usize;
            assert!(slot % PAGE_SLOTS + COUNTER_SLOTS <= PAGE_SLOTS);
        }
        assert_eq!(e.define(Kind::Summary, key("sample", "s")).slot, None);
    }

    #[test]
    fn closes_counters_summaries_and_js_values() {
        let mut e = Engine::new(false);
        let c = e.define(Kind::Counter, key("inc", "c"));
        let zero = e.define(Kind::Counter, key("inc", "zero"));
        let idle = e.define(Kind::Counter, key("inc", "idle"));
        let s = e.define(Kind::Summary, key("sample", "s"));
        let set = e.define(Kind::Set, key("set", "v"));
        let custom = e.define(Kind::Custom, key("max", "m"));
        let mut page = vec![0.0; PAGE_SLOTS];
        let slot = |d: Definition| d.slot.unwrap() as usize;
        page[slot(c)..slot(c) + 2].copy_from_slice(&[3.0, 10.0]);
        page[slot(zero)] = 1.0; // one inc(path, id, 0): reported with total 0
        e.push(&[s.id as f64, 1.0, s.id as f64, 3.0]);
        let js = vec![
            JsValue {
                id: set.id,
                json: "\"x\"".into(),
                at: 7.0,
            },
            JsValue {
                id: custom.id,
                json: "{}".into(),
                at: 0.0,
            },
        ];
        let snap = e.close(4.0, &mut [&mut page[..]], js, 2.0, 1.0);
        assert_eq!((snap.k, snap.dropped, snap.errors), (4.0, 2.0, 1.0));
        assert_eq!(snap.pid, std::process::id());
        let ids: Vec<&str> = snap.entries.iter().map(|e| e.key.id.as_str()).collect();
        assert_eq!(ids, ["c", "zero", "s", "v", "m"]);
        let _ = idle;
        assert_eq!(
            snap.entries[0].value,
            Value::Counter {
                count: 3.0,
                total: 10.0
            }
        );
        match &snap.entries[2].value {
            Value::Summary(s) => assert_eq!((s.count, s.sigma()), (2.0, Some(2f64.sqrt()))),
            v => panic!("{v:?}"),
        }
        assert_eq!(
            snap.entries[3].value,
            Value::Set {
                json: "\"x\"".into(),
                at: 7.0
            }
        );
        assert!(page.iter().all(|&v| v == 0.0), "slots zeroed");
        let next = e.close(5.0, &mut [&mut page[..]], vec![], 0.0, 0.0);
        assert!(
            next.entries.is_empty(),
            "untouched series disappear without persist"
        );
    }

    #[test]
    fn persist_reports_empty_states() {
        let mut e = Engine::new(true);
        let c = e.define(Kind::Counter, key("inc", "c"));
        let s = e.define(Kind::Summary, key("timedSample", "s"));
        let mut page = vec![0.0; PAGE_SLOTS];
        page[c.slot.unwrap() as usize..][..2].copy_from_slice(&[1.0, 2.0]);
        e.push(&[s.id as f64, 5.0]);
        assert_eq!(
            e.close(0.0, &mut [&mut page[..]], vec![], 0.0, 0.0)
                .entries
                .len(),
            2
        );
        let snap = e.close(1.0, &mut [&mut page[..]], vec![], 0.0, 0.0);
        assert_eq!(
            snap.entries[0].value,
            Value::Counter {
                count: 0.0,
                total: 0.0
            }
        );
        assert_eq!(snap.entries[1].value, Value::Summary(Summary::default()));
    }

    #[test]
    fn bad_pairs_and_values_are_rejected_not_applied() {
        let mut e = Engine::new(false);
        let c = e.define(Kind::Counter, key("inc", "c")).id as f64;
        let s = e.define(Kind::Summary, key("sample", "s")).id as f64;
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
        let bad_js = vec![
            JsValue {
                id: c as u32,
                json: "1".into(),
                at: 0.0,
            },
            JsValue {
                id: 99,
                json: "1".into(),
                at: 0.0,
            },
        ];
        let snap = e.close(0.0, &mut [], bad_js, 0.0, 0.0);
        assert_eq!(snap.errors, 8.0);
        assert_eq!(snap.entries.len(), 1);
        assert_eq!(e.close(1.0, &mut [], vec![], 0.0, 0.0).errors, 0.0);
    }
}
