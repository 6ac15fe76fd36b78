//! What the InfluxDB, Pandora and Panoptes formats share about a series: its tags (read back
//! from its id) and its process's, the group it belongs to, and its value in the last delivered
//! interval (the store keeps running totals; these formats also report the interval's
//! statistics).

use std::collections::HashMap;
use std::sync::Arc;

use super::{Origin, Process};
use crate::gather::{Delivery, Tree};
use crate::snapshot::{SeriesKey, Value};

/// The group of series with no path, when the instance has no name (Pandora and Panoptes).
pub const DEFAULT_GROUP: &str = "default";

/// The tag that tells a process's own series apart, as the Prometheus exposition's label:
/// `worker` = `master`, the cluster worker id (`1`), or a worker thread's label (`1:3`,
/// `master:2`). The cluster view's series have none.
pub(crate) const WORKER: &str = "worker";

/// A series' own tag named [`WORKER`] is renamed this (as Prometheus renames a target's
/// clashing labels), so it never passes for a process.
pub(crate) const EXPORTED_WORKER: &str = "exported_worker";

/// A series' own tag key as written beside the [`WORKER`] tag.
pub(crate) fn own_tag_key(key: &str) -> &str {
    if key == WORKER {
        EXPORTED_WORKER
    } else {
        key
    }
}

/// The group a series belongs to in Pandora's routes and Panoptes' metrics groups: the
/// instance's `name` when it has one (every series of the instance in one group), else the
/// series' first path element, else (no path, or an empty first element) [`DEFAULT_GROUP`].
pub(crate) fn group_of<'a>(origin: &'a Origin, key: &'a SeriesKey) -> &'a str {
    if !origin.name.is_empty() {
        &origin.name
    } else {
        (key.path.first().map(String::as_str))
            .filter(|first| !first.is_empty())
            .unwrap_or(DEFAULT_GROUP)
    }
}

/// One view's values by series.
type View<'a> = HashMap<Arc<SeriesKey>, &'a Value>;

/// The values of one delivery, by series and process (the cluster view, and each part when
/// asked for).
pub(crate) struct LastValues<'a> {
    views: Vec<(Option<Tree>, View<'a>)>,
}

impl<'a> LastValues<'a> {
    /// Indexes `delivery` (nothing when None): its cluster view, and its parts if `parts`.
    pub(crate) fn of(delivery: Option<&'a Delivery>, parts: bool) -> LastValues<'a> {
        let Some(delivery) = delivery else {
            return LastValues { views: Vec::new() };
        };
        // The keys' lock is held only to copy the keys out (the master's intake adds keys).
        delivery.keys().with(|keys| {
            let index = |ids: &[u32], values: &'a [Value]| -> View<'a> {
                let keys = ids.iter().map(|&id| keys[id as usize].clone());
                keys.zip(values).collect()
            };
            let (ids, values) = delivery.merged();
            let mut views = vec![(None, index(ids, values))];
            if parts {
                for part in delivery.parts() {
                    let values = part.values();
                    views.push((Some(part.from), index(part.ids, values)));
                }
            }
            LastValues { views }
        })
    }

    /// The value `key` had in the delivery (in `process`'s part; None: the cluster view).
    pub(crate) fn get(&self, key: &SeriesKey, process: Option<&Process>) -> Option<&'a Value> {
        let from = process.map(|p| &p.from);
        let (_, view) = self.views.iter().find(|(f, _)| f.as_ref() == from)?;
        view.get(key).copied()
    }
}

/// Stores fed with made-up deliveries, for the formats' tests.
#[cfg(test)]
pub(crate) mod fixture {
    use std::sync::Arc;

    use crate::export::{Origin, Store};
    use crate::gather::{Delivery, Gathering, Source};

    use crate::snapshot::{SeriesKey, Value};
    use crate::wire::{encode, Keys};

    pub(crate) use crate::testing::{counter, key};

    pub(crate) type Series<'a> = &'a [(Arc<SeriesKey>, Value)];

    fn snapshot(k: f64, pid: u32, series: Series) -> crate::snapshot::Snapshot {
        crate::testing::snapshot(k, pid, series.iter().cloned())
    }

    /// A store fed intervals 0, 1, ... of 1 s ending at 1_700_000_001_000 ms, 1_700_000_002_000
    /// ms, ...: the master's series (pid 10, host `box`) and worker 1's (pid 11); histograms
    /// report p50 and p99.9.
    pub(crate) struct Fixture {
        gathering: Gathering,
        pub(crate) store: Store,
        k: f64,
    }

    impl Fixture {
        pub(crate) fn new(keep_processes: bool) -> Fixture {
            Fixture::named("", keep_processes)
        }

        /// With the instance name `name`.
        pub(crate) fn named(name: &str, keep_processes: bool) -> Fixture {
            let origin = Origin {
                name: name.into(),
                name_json: Some(serde_json::Value::from(name).to_string()),
                id: 0,
                host: "box".into(),
                title: "node".into(),
                pid: 10,
                interval: 1000.0,
                scale_factor: 1.0,
            };
            let mut store = Store::new(origin);
            if keep_processes {
                store.keep_processes();
            }
            Fixture {
                gathering: Gathering::default(),
                store,
                k: 0.0,
            }
        }

        /// Delivers the next interval (no worker part when `worker` is empty).
        pub(crate) fn deliver(&mut self, master: Series, worker: Series) -> Delivery {
            let k = self.k;
            self.k += 1.0;
            self.gathering.keep_local(snapshot(k, 10, master), &[]);
            if !worker.is_empty() {
                let text = encode(&snapshot(k, 11, worker), Keys::All { epoch: 1 });
                (self.gathering.receive(Source::Worker(1), &text, k)).unwrap();
            }
            let time_stamp = 1_700_000_000_000.0 + (k + 1.0) * 1000.0;
            let format = crate::testing::format(1000.0, 1.0, time_stamp, &[50.0, 99.9]);
            let delivery = self.gathering.deliver(k, format);
            self.store.add(&delivery);
            delivery
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_and_worker_tags() {
        let key = |path: &[&str]| SeriesKey::new("inc", path, "n");
        let mut origin = Origin::default();
        assert_eq!(group_of(&origin, &key(&["http", "in"])), "http");
        assert_eq!(group_of(&origin, &key(&[])), DEFAULT_GROUP);
        assert_eq!(group_of(&origin, &key(&["", "x"])), DEFAULT_GROUP);
        origin.name = "web".into();
        assert_eq!(group_of(&origin, &key(&["http"])), "web");
        let process = |from| Process { from, pid: 7 };
        assert_eq!(process(Tree::Master).label(), "master");
        assert_eq!(process(Tree::Worker(3)).label(), "3");
        assert_eq!(process(Tree::Thread("2:5".into())).label(), "2:5");
        assert_eq!(own_tag_key("worker"), "exported_worker");
        assert_eq!(own_tag_key("method"), "method");
    }
}
