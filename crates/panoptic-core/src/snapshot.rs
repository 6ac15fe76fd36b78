//! One process's (or thread's) collected interval: every series that is reported, with its key and
//! its aggregate. Snapshots travel between processes ([`crate::wire`]), merge exactly across
//! processes ([`Snapshot::merge_into`]) and become delivery trees ([`crate::tree`]).

use std::collections::HashMap;
use std::sync::Arc;

use crate::summary::Summary;

/// What identifies a series: the logger method, the path and the id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SeriesKey {
    /// The logger method (`inc`, `sample`, `timedSample`, `set`, or a registered name).
    pub method: String,
    /// Path elements (strings; numbers were turned into strings by the JS side).
    pub path: Vec<String>,
    /// The id under the path.
    pub id: String,
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
}

/// One reported series.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: Arc<SeriesKey>,
    pub value: Value,
}

/// One interval of one process or thread.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Snapshot {
    /// The interval number on the instance's grid.
    pub k: f64,
    /// The pid of the process that collected it.
    pub pid: u32,
    /// Data points its validators dropped in the interval.
    pub dropped: f64,
    /// Exceptions counted in the interval (loggers, validators, serialization).
    pub errors: f64,
    /// Reported series, in the order their series were defined.
    pub entries: Vec<Entry>,
}

/// Chan, Golub and LeVeque's pairwise combination of two summaries: the count, total, min, max,
/// mean and m2 of the union of both sets of values.
pub fn combine(a: &Summary, b: &Summary) -> Summary {
    if b.is_empty() {
        return *a;
    }
    if a.is_empty() {
        return *b;
    }
    let count = a.count + b.count;
    let d = b.mean - a.mean;
    Summary {
        count,
        total: a.total + b.total,
        min: a.min.min(b.min),
        max: a.max.max(b.max),
        mean: a.mean + d * (b.count / count),
        m2: a.m2 + b.m2 + d * d * (a.count * (b.count / count)),
    }
}

/// The cluster view being built from several snapshots of one interval.
#[derive(Debug, Default)]
pub struct Merged {
    /// Merged entries; custom series hold the first leaf here and the rest in `custom`.
    pub entries: Vec<Entry>,
    index: HashMap<Arc<SeriesKey>, usize>,
    /// For each custom series (by entry index): every process's leaf, in arrival order. The JS
    /// side merges them with the logger class's static `merge(a, b)`.
    pub custom: HashMap<usize, Vec<String>>,
}

impl Snapshot {
    /// Merges this snapshot's entries into `merged` with each kind's exact rule: counters and
    /// summaries add up, the most recent `set` wins, custom leaves are gathered. A series whose
    /// kind differs between processes keeps the first kind seen (the other is skipped).
    pub fn merge_into(&self, merged: &mut Merged) {
        for entry in &self.entries {
            let Some(&i) = merged.index.get(&entry.key) else {
                let i = merged.entries.len();
                merged.index.insert(entry.key.clone(), i);
                merged.entries.push(entry.clone());
                if let Value::Custom { json } = &entry.value {
                    merged.custom.insert(i, vec![json.clone()]);
                }
                continue;
            };
            match (&mut merged.entries[i].value, &entry.value) {
                (Value::Counter { count, total }, Value::Counter { count: c, total: t }) => {
                    *count += c;
                    *total += t;
                }
                (Value::Summary(a), Value::Summary(b)) => *a = combine(a, b),
                (Value::Set { json, at }, Value::Set { json: j, at: t }) if *t > *at => {
                    *json = j.clone();
                    *at = *t;
                }
                (Value::Custom { .. }, Value::Custom { json }) => {
                    merged.custom.entry(i).or_default().push(json.clone());
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(method: &str, id: &str) -> Arc<SeriesKey> {
        Arc::new(SeriesKey {
            method: method.into(),
            path: vec!["p".into()],
            id: id.into(),
        })
    }

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

    proptest! {
        #[test]
        fn chan_equals_one_process_fed_everything(
            parts in prop::collection::vec(prop::collection::vec(-1e4f64..1e6, 0..60), 1..6)
        ) {
            let all: Vec<f64> = parts.iter().flatten().cloned().collect();
            prop_assume!(all.len() >= 2);
            let whole = summary_of(&all);
            let merged = parts.iter().map(|p| summary_of(p)).fold(Summary::default(), |a, b| combine(&a, &b));
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
        let a = Snapshot {
            entries: vec![
                Entry {
                    key: key("inc", "c"),
                    value: Value::Counter {
                        count: 2.0,
                        total: 5.0,
                    },
                },
                Entry {
                    key: key("set", "s"),
                    value: Value::Set {
                        json: "\"old\"".into(),
                        at: 10.0,
                    },
                },
                Entry {
                    key: key("max", "m"),
                    value: Value::Custom { json: "1".into() },
                },
            ],
            ..Snapshot::default()
        };
        let b = Snapshot {
            entries: vec![
                Entry {
                    key: key("set", "s"),
                    value: Value::Set {
                        json: "\"new\"".into(),
                        at: 20.0,
                    },
                },
                Entry {
                    key: key("inc", "c"),
                    value: Value::Counter {
                        count: 1.0,
                        total: 1.0,
                    },
                },
                Entry {
                    key: key("sample", "only-b"),
                    value: Value::Summary(summary_of(&[3.0])),
                },
                Entry {
                    key: key("max", "m"),
                    value: Value::Custom { json: "2".into() },
                },
                // Same key as a counter but another kind: skipped.
                Entry {
                    key: key("inc", "c"),
                    value: Value::Summary(summary_of(&[1.0])),
                },
            ],
            ..Snapshot::default()
        };
        let mut m = Merged::default();
        a.merge_into(&mut m);
        b.merge_into(&mut m);
        assert_eq!(m.entries.len(), 4);
        assert_eq!(
            m.entries[0].value,
            Value::Counter {
                count: 3.0,
                total: 6.0
            }
        );
        assert_eq!(
            m.entries[1].value,
            Value::Set {
                json: "\"new\"".into(),
                at: 20.0
            }
        );
        assert_eq!(m.custom[&2], vec!["1".to_string(), "2".to_string()]);
        assert_eq!(m.entries[3].key.id, "only-b");
        // An older write does not replace a newer one.
        let mut m2 = Merged::default();
        b.merge_into(&mut m2);
        a.merge_into(&mut m2);
        assert_eq!(
            m2.entries[0].value,
            Value::Set {
                json: "\"new\"".into(),
                at: 20.0
            }
        );
    }
}
