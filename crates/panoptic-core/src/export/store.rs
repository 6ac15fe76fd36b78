//! The master's cumulative view of every series, what the exports serve.
//!
//! Deliveries carry one interval each; back-ends want counters that only go up since the start
//! (Prometheus' `_total`, histograms' cumulative buckets). A [`Store`] adds each delivered
//! interval into running totals, so what a worker contributed stays counted after it exits: a
//! worker's death never makes a cluster counter go down.
//!
//! Rules per kind (the merged cluster view; per-process views follow the same rules per part):
//! - `inc`: the sum of increments and the number of calls, since the start.
//! - `sample` / `timedSample`: count and sum since the start; min, max, mean and sigma of the
//!   last interval that had values.
//! - `histogram`: every interval's distribution added into one (exact for `'hdr'`).
//! - `meter`: the count since the start, made of each process's increases (a meter's count is
//!   already cumulative in its process: the store adds what each process gained since its
//!   previous report, so a dead worker's count stays and a restarted one adds from zero); the
//!   rates are the last interval's merged rates.
//! - `gauge`, `rate` and numeric `set`: the last value delivered (NaN when the last gauge
//!   function failed). A non-numeric `set` and registered loggers are not exported.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::gather::{Delivery, Tree};
use crate::snapshot::{SeriesKey, Value};
use crate::stats::histogram::Distribution;
use crate::stats::meter::MeterStats;
use crate::stats::summary::Summary;

/// A series' exported state.
#[derive(Debug, Clone, PartialEq)]
pub enum Cumulative {
    /// `inc`: the sum of increments and the number of calls since the start.
    Counter { total: f64, calls: f64 },
    /// `gauge`, `rate`, numeric `set`: the last value.
    Gauge(f64),
    /// `sample` / `timedSample`: values and their sum since the start; the last interval's
    /// summary (min, max, mean, sigma).
    Summary { count: f64, sum: f64, last: Summary },
    /// `histogram`: every interval added up.
    Histogram(Box<Distribution>),
    /// `meter`: events since the start (see the module documentation) and the last rates.
    Meter { count: f64, last: MeterStats },
}

impl Cumulative {
    /// The first state of a series from its first delivered value (None: not exported).
    fn start(value: &Value) -> Option<Cumulative> {
        Some(match value {
            Value::Counter { count, total } => Cumulative::Counter {
                total: *total,
                calls: *count,
            },
            Value::Summary(s) => Cumulative::Summary {
                count: s.count,
                sum: s.total,
                last: *s,
            },
            Value::Histogram(d) => Cumulative::Histogram(d.clone()),
            Value::Meter(m) => Cumulative::Meter {
                count: 0.0,
                last: *m,
            },
            _ => Cumulative::Gauge(gauge(value)?),
        })
    }

    /// Adds one interval's value (of the same kind; another kind is ignored: the merge keeps
    /// the first kind seen, so does the store). A meter's count is handled by the caller.
    fn add(&mut self, value: &Value) {
        match (self, value) {
            (Cumulative::Counter { total, calls }, Value::Counter { count, total: t }) => {
                *total += t;
                *calls += count;
            }
            (Cumulative::Summary { count, sum, last }, Value::Summary(s)) => {
                *count += s.count;
                *sum += s.total;
                if !s.is_empty() {
                    *last = *s;
                }
            }
            // Only histograms made with the master's options reach a delivery.
            (Cumulative::Histogram(d), Value::Histogram(v)) => {
                let _ = d.merge(v);
            }
            (Cumulative::Meter { last, .. }, Value::Meter(m)) => *last = *m,
            (Cumulative::Gauge(g), v) => {
                if let Some(x) = gauge(v) {
                    *g = x;
                }
            }
            _ => {}
        }
    }
}

/// The number a gauge-like value exports (None: not a gauge, or a `set` that is not a number).
fn gauge(value: &Value) -> Option<f64> {
    match value {
        Value::Gauge(g) => Some(g.unwrap_or(f64::NAN)),
        Value::Rate(r) => Some(r.map_or(f64::NAN, |r| r.rate)),
        Value::Set { json, .. } => json.trim().parse::<f64>().ok().filter(|x| x.is_finite()),
        _ => None,
    }
}

/// Which process a series belongs to, as the exports and the filter language see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    /// The master (or standalone process), a cluster worker, or a worker thread.
    pub from: Tree,
    /// Its pid (the last one seen).
    pub pid: u32,
}

impl Process {
    /// `master`, `worker` or `thread`.
    pub fn role(&self) -> &'static str {
        match self.from {
            Tree::Master | Tree::Cluster => "master",
            Tree::Worker(_) => "worker",
            Tree::Thread(_) => "thread",
        }
    }

    /// How the exports name it (the `worker` label, a frame's process key): `master`, the
    /// cluster worker id, or a worker thread's label (`1:3`, `master:2`).
    pub fn label(&self) -> String {
        match &self.from {
            Tree::Master | Tree::Cluster => "master".into(),
            Tree::Worker(id) => id.to_string(),
            Tree::Thread(label) => label.clone(),
        }
    }

    /// The cluster worker id: a worker's, or a worker thread's process (None on the master).
    pub fn worker(&self) -> Option<u32> {
        match &self.from {
            Tree::Worker(id) => Some(*id),
            Tree::Thread(label) => label.split(':').next()?.parse().ok(),
            Tree::Master | Tree::Cluster => None,
        }
    }
}

/// Series states by master-wide series id.
#[derive(Debug, Default, Clone)]
struct Column(Vec<Option<Cumulative>>);

impl Column {
    fn slot(&mut self, id: u32) -> &mut Option<Cumulative> {
        let i = id as usize;
        if self.0.len() <= i {
            self.0.resize(i + 1, None);
        }
        &mut self.0[i]
    }

    fn add(&mut self, id: u32, value: &Value) {
        match self.slot(id) {
            Some(c) => c.add(value),
            slot => *slot = Cumulative::start(value),
        }
    }

    fn iter(&self) -> impl Iterator<Item = (u32, &Cumulative)> {
        (self.0.iter().enumerate()).filter_map(|(i, c)| Some((i as u32, c.as_ref()?)))
    }
}

/// One exported series: its key, its process (None: the merged cluster view) and its state.
#[derive(Debug, Clone, Copy)]
pub struct Series<'a> {
    pub key: &'a SeriesKey,
    pub process: Option<&'a Process>,
    pub value: &'a Cumulative,
}

/// What the store knows about the instance it serves.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Origin {
    /// The instance's `name` option as text (empty when not given).
    pub name: String,
    /// The `name` option as `JSON.stringify` writes it, how the `'delivery'` event's JSON holds
    /// it (None when it writes nothing: an unset name). `/metrics.json` writes it as it is.
    pub name_json: Option<String>,
    /// The instance id (panopticon's per-process counter).
    pub id: u32,
    /// The host name and the serving process's title and pid.
    pub host: String,
    pub title: String,
    pub pid: u32,
    /// Interval length (ms) and panopticon's scaleFactor.
    pub interval: f64,
    pub scale_factor: f64,
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct Store {
    origin: Origin,
    /// Series keys by id (a copy of the registry's, extended at each delivery: reading it never
    /// waits on the master's intake).
    keys: Vec<Arc<SeriesKey>>,
    cluster: Column,
    /// Per-process states, kept when asked for ([`Store::keep_processes`]).
    processes: Option<BTreeMap<Tree, (Process, Column)>>,
    /// Each process's last meter count, by series id (to add only its increases).
    meters: HashMap<(Tree, u32), f64>,
    /// Workers that exited (cluster worker ids are not reused). The delivery of the interval a
    /// worker was in when it exited can come after its exit: that part counts in the cluster
    /// view (its meters by their increase over the kept baseline) but brings back none of its
    /// own series.
    gone: std::collections::HashSet<u32>,
    /// Gone workers whose meter baselines are still kept: dropped at the first delivery without
    /// the worker.
    draining: std::collections::HashSet<u32>,
    /// The last delivery and the end of its interval (epoch ms).
    last: Option<Delivery>,
    time_stamp: f64,
    totals: Totals,
}

/// What the deliveries counted, added up since the start (panoptic's own metrics).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Totals {
    pub deliveries: u64,
    /// Intervals between two deliveries that got none (the master's JS thread did not close
    /// them: it was blocked past their end).
    pub skipped_intervals: u64,
    /// `meta`'s counts.
    pub late: u64,
    pub decode_errors: u64,
    pub mismatched: u64,
    pub unmatched: u64,
    pub counts: crate::snapshot::Counts,
}

impl Store {
    /// An empty store for the instance `origin` describes.
    pub fn new(origin: Origin) -> Store {
        Store {
            origin,
            ..Store::default()
        }
    }

    /// From now on, also keep each process's own series (the cluster view is always kept).
    pub fn keep_processes(&mut self) {
        self.processes.get_or_insert_with(BTreeMap::new);
    }

    /// Whether per-process series are kept.
    pub fn keeps_processes(&self) -> bool {
        self.processes.is_some()
    }

    /// Adds a delivered interval.
    pub fn add(&mut self, delivery: &Delivery) {
        self.expire(delivery.expired());
        let (ids, values) = delivery.merged();
        delivery.keys().with(|keys| {
            if keys.len() > self.keys.len() {
                self.keys.extend_from_slice(&keys[self.keys.len()..]);
            }
            // An id freed by an expiry may name a new series now: its key is the registry's.
            let parts = delivery.parts().flat_map(|part| part.ids);
            for &id in ids.iter().chain(parts) {
                let (mine, theirs) = (&mut self.keys[id as usize], &keys[id as usize]);
                if !Arc::ptr_eq(mine, theirs) {
                    *mine = theirs.clone();
                }
            }
        });
        for (&id, value) in ids.iter().zip(values) {
            if !matches!(value, Value::Meter(_)) {
                self.cluster.add(id, value);
            }
        }
        let worker_of = |from: &Tree| {
            Process {
                from: from.clone(),
                pid: 0,
            }
            .worker()
        };
        let mut seen = std::collections::HashSet::new();
        for part in delivery.parts() {
            let gone = worker_of(&part.from).filter(|w| self.gone.contains(w));
            seen.extend(gone);
            // Only a part with meters is read here: a worker's is decoded when read.
            let meters = if part.has_meters() {
                part.values()
            } else {
                &[]
            };
            for (&id, value) in part.ids.iter().zip(meters) {
                let Value::Meter(m) = value else { continue };
                let previous = self.meters.insert((part.from.clone(), id), m.count);
                // A count below the previous one: the meter was made again (a restarted
                // process): all of it is new. A gone worker's part without a baseline adds
                // nothing (its meter was counted before the baseline was dropped).
                let gained = match previous {
                    Some(p) if m.count >= p => m.count - p,
                    _ if gone.is_some() => 0.0,
                    _ => m.count,
                };
                let slot = self.cluster.slot(id);
                let c = slot.get_or_insert(Cumulative::Meter {
                    count: 0.0,
                    last: MeterStats::default(),
                });
                if let Cumulative::Meter { count, .. } = c {
                    *count += gained;
                }
            }
            if gone.is_some() {
                continue;
            }
            if let Some(processes) = &mut self.processes {
                let (process, column) = processes.entry(part.from.clone()).or_insert_with(|| {
                    let process = Process {
                        from: part.from.clone(),
                        pid: part.pid,
                    };
                    (process, Column::default())
                });
                process.pid = part.pid;
                for (&id, value) in part.ids.iter().zip(part.values()) {
                    match (column.slot(id), value) {
                        // A process's own meter is already cumulative.
                        (slot, Value::Meter(m)) => {
                            *slot = Some(Cumulative::Meter {
                                count: m.count,
                                last: *m,
                            })
                        }
                        (Some(c), v) => c.add(v),
                        (slot, v) => *slot = Cumulative::start(v),
                    }
                }
            }
        }
        // The merged meter rates (their counts were added above).
        for (&id, value) in ids.iter().zip(values) {
            if let (Some(Cumulative::Meter { last, .. }), Value::Meter(m)) =
                (self.cluster.slot(id), value)
            {
                *last = *m;
            }
        }
        let done: Vec<u32> = (self.draining.iter().copied())
            .filter(|w| !seen.contains(w))
            .collect();
        for w in done {
            self.draining.remove(&w);
            self.meters
                .retain(|(from, _), _| worker_of(from) != Some(w));
        }
        let format = delivery.format();
        let meta = delivery.meta();
        let t = &mut self.totals;
        if t.deliveries > 0 {
            let gap = ((format.time_stamp - self.time_stamp) / format.interval).round() - 1.0;
            t.skipped_intervals += gap.max(0.0) as u64;
        }
        t.deliveries += 1;
        t.late += meta.late;
        t.decode_errors += meta.decode_errors;
        t.mismatched += meta.mismatched;
        t.unmatched += meta.unmatched;
        t.counts += meta.counts;
        self.time_stamp = format.time_stamp;
        self.last = Some(delivery.clone());
    }

    /// Forgets expired series (the registry freed their ids): they leave every export, which
    /// Prometheus sees as any series that stops (staleness). Their ids may come back as new
    /// series, from zero.
    fn expire(&mut self, ids: &[u32]) {
        if ids.is_empty() {
            return;
        }
        let columns = std::iter::once(&mut self.cluster).chain(
            self.processes
                .iter_mut()
                .flat_map(|p| p.values_mut().map(|(_, c)| c)),
        );
        for column in columns {
            for &id in ids {
                if let Some(slot) = column.0.get_mut(id as usize) {
                    *slot = None;
                }
            }
        }
        let gone: std::collections::HashSet<u32> = ids.iter().copied().collect();
        self.meters.retain(|(_, id), _| !gone.contains(id));
    }

    /// Forgets a worker that exited: its own series (and its threads'). What it contributed to
    /// the cluster view stays.
    pub fn forget_worker(&mut self, worker: u32) {
        let prefix = format!("{worker}:");
        let gone = |from: &Tree| match from {
            Tree::Worker(id) => *id == worker,
            Tree::Thread(label) => label.starts_with(&prefix),
            Tree::Master | Tree::Cluster => false,
        };
        self.gone.insert(worker);
        self.draining.insert(worker);
        if let Some(processes) = &mut self.processes {
            processes.retain(|from, _| !gone(from));
        }
    }

    /// The instance this store serves.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// The last delivery added, if any.
    pub fn last(&self) -> Option<&Delivery> {
        self.last.as_ref()
    }

    /// The end (epoch ms) of the last delivered interval (0 before the first delivery).
    pub fn time_stamp(&self) -> f64 {
        self.time_stamp
    }

    /// How many deliveries were added.
    pub fn deliveries(&self) -> u64 {
        self.totals.deliveries
    }

    /// What the deliveries counted, added up.
    pub fn totals(&self) -> &Totals {
        &self.totals
    }

    /// Every exported series: the cluster view's (in series id order), then each process's
    /// (processes in order: master, workers by id, threads by label).
    pub fn series(&self) -> impl Iterator<Item = Series<'_>> {
        let cluster = self.cluster.iter().map(|(id, value)| (None, id, value));
        let processes = self.processes.iter().flat_map(|p| p.values());
        let processes = processes
            .flat_map(|(process, column)| column.iter().map(move |(id, v)| (Some(process), id, v)));
        cluster.chain(processes).map(|(process, id, value)| Series {
            key: &self.keys[id as usize],
            process,
            value,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gather::tree::Format;
    use crate::gather::Gathering;
    use crate::snapshot::Snapshot;
    use crate::stats::histogram::HistogramOptions;
    use crate::wire::{encode, Keys};

    use crate::testing::counter;

    fn key(method: &str, id: &str) -> Arc<SeriesKey> {
        crate::testing::key(method, &["p"], id)
    }

    fn snap(k: f64, pid: u32, entries: &[(&str, &str, Value)]) -> Snapshot {
        let series = entries.iter().map(|(m, id, v)| (key(m, id), v.clone()));
        crate::testing::snapshot(k, pid, series)
    }

    fn format(k: f64) -> Format {
        crate::testing::format(100.0, 1.0, (k + 1.0) * 100.0, &[50.0])
    }

    fn meter(count: f64) -> Value {
        Value::Meter(MeterStats {
            count,
            m1: count,
            ..MeterStats::default()
        })
    }

    type Entries<'a> = &'a [(&'a str, &'a str, Value)];

    /// Delivers interval k with the master's entries and each worker's.
    fn deliver(g: &mut Gathering, k: f64, local: Entries, workers: &[(u32, Entries)]) -> Delivery {
        g.keep_local(snap(k, 1, local), &[]);
        for (w, entries) in workers {
            let text = encode(&snap(k, 100 + w, entries), Keys::All { epoch: 1 });
            g.receive(crate::gather::Source::Worker(*w), &text, k)
                .unwrap();
        }
        let delivery = g.deliver(k, format(k));
        // The idle series it leaves to free, as the intake thread frees them after it.
        while g.sweep() {}
        delivery
    }

    fn exported(store: &Store) -> Vec<(String, Option<String>, Cumulative)> {
        store
            .series()
            .map(|s| {
                let who = s.process.map(|p| format!("{}{:?}", p.role(), p.worker()));
                (s.key.id.to_string(), who, s.value.clone())
            })
            .collect()
    }

    #[test]
    fn counters_stay_counted_after_a_worker_leaves() {
        let mut g = Gathering::default();
        let mut store = Store::new(Origin::default());
        store.keep_processes();
        let d = deliver(
            &mut g,
            0.0,
            &[("inc", "a", counter(1.0))],
            &[
                (1, &[("inc", "a", counter(10.0))]),
                (2, &[("inc", "a", counter(100.0))]),
            ],
        );
        store.add(&d);
        store.forget_worker(2);
        let d = deliver(&mut g, 1.0, &[], &[(1, &[("inc", "a", counter(5.0))])]);
        store.add(&d);
        let all = exported(&store);
        assert_eq!(
            all[0],
            (
                "a".into(),
                None,
                Cumulative::Counter {
                    total: 116.0,
                    calls: 4.0
                }
            )
        );
        let who: Vec<_> = all[1..]
            .iter()
            .map(|s| (s.1.clone().unwrap(), s.2.clone()))
            .collect();
        assert_eq!(
            who,
            vec![
                (
                    "masterNone".into(),
                    Cumulative::Counter {
                        total: 1.0,
                        calls: 1.0
                    }
                ),
                (
                    "workerSome(1)".into(),
                    Cumulative::Counter {
                        total: 15.0,
                        calls: 2.0
                    }
                ),
            ]
        );
        assert_eq!(store.deliveries(), 2);
        assert_eq!(store.time_stamp(), 200.0);
    }

    #[test]
    fn totals_add_up_each_delivery_and_count_the_intervals_skipped() {
        let mut g = Gathering::default();
        let mut store = Store::new(Origin::default());
        let c = [("inc", "a", counter(1.0))];
        store.add(&deliver(&mut g, 0.0, &c, &[]));
        g.note_decode_error();
        store.add(&deliver(&mut g, 1.0, &c, &[(1, &c)]));
        // Intervals 2 and 3 got no delivery.
        store.add(&deliver(&mut g, 4.0, &c, &[]));
        let t = store.totals();
        assert_eq!((t.deliveries, t.skipped_intervals), (3, 2));
        assert_eq!((t.decode_errors, t.late), (1, 0));
        assert_eq!(store.deliveries(), 3);
        let own = crate::export::own::Own::of_store(&store);
        let family = |name: &str| {
            (own.families().into_iter())
                .find(|f| f.name == name)
                .cloned()
                .unwrap()
        };
        assert_eq!(family("panoptic_skipped_intervals").samples[0].value, 2.0);
        assert_eq!(family("panoptic_registry_series").samples[0].value, 1.0);
        // The last delivery had only the master's part.
        let engines = family("panoptic_engine_series").samples;
        assert_eq!(engines.len(), 1);
        assert_eq!(engines[0].labels, [("worker".into(), "master".into())]);
    }

    #[test]
    fn meters_add_each_process_increase_and_survive_restarts() {
        let mut g = Gathering::default();
        let mut store = Store::new(Origin::default());
        let m = |c| [("meter", "m", meter(c))];
        store.add(&deliver(&mut g, 0.0, &[], &[(1, &m(3.0)), (2, &m(4.0))]));
        // Worker 2 exits; worker 1 goes on; worker 3 starts.
        store.forget_worker(2);
        store.add(&deliver(&mut g, 1.0, &[], &[(1, &m(5.0)), (3, &m(1.0))]));
        // Worker 1's meter is made again (count back to 2).
        store.add(&deliver(&mut g, 2.0, &[], &[(1, &m(2.0))]));
        let all = exported(&store);
        assert_eq!(all.len(), 1);
        let Cumulative::Meter { count, last } = &all[0].2 else {
            panic!("{all:?}")
        };
        assert_eq!(*count, 3.0 + 4.0 + 2.0 + 1.0 + 2.0);
        assert_eq!(last.m1, 2.0, "the last merged rates");
    }

    #[test]
    fn a_worker_interval_delivered_after_its_exit_counts_once_and_brings_nothing_back() {
        let mut g = Gathering::default();
        let mut store = Store::new(Origin::default());
        store.keep_processes();
        let m = |c| [("meter", "m", meter(c)), ("inc", "a", counter(1.0))];
        store.add(&deliver(&mut g, 0.0, &[], &[(1, &m(3.0)), (2, &m(4.0))]));
        // Worker 2 sent its next interval, then exited before that interval was delivered.
        let late = deliver(&mut g, 1.0, &[], &[(1, &m(5.0)), (2, &m(6.0))]);
        store.forget_worker(2);
        store.add(&late);
        store.add(&deliver(&mut g, 2.0, &[], &[(1, &m(5.0))]));
        let all = exported(&store);
        let Cumulative::Meter { count, .. } = &all[0].2 else {
            panic!("{all:?}")
        };
        assert_eq!(*count, 3.0 + 4.0 + (5.0 - 3.0) + (6.0 - 4.0));
        assert_eq!(
            all[1].2,
            Cumulative::Counter {
                total: 5.0,
                calls: 5.0
            }
        );
        let who: Vec<_> = all[2..].iter().map(|s| s.1.clone().unwrap()).collect();
        assert_eq!(who, ["workerSome(1)", "workerSome(1)"]);
    }

    #[test]
    fn summaries_count_since_start_and_keep_the_last_interval() {
        let mut g = Gathering::default();
        let mut store = Store::new(Origin::default());
        let s = |xs: &[f64]| {
            let mut s = Summary::default();
            xs.iter().for_each(|&x| s.push(x));
            Value::Summary(s)
        };
        store.add(&deliver(
            &mut g,
            0.0,
            &[("sample", "s", s(&[1.0, 2.0]))],
            &[],
        ));
        store.add(&deliver(&mut g, 1.0, &[("sample", "s", s(&[10.0]))], &[]));
        let Cumulative::Summary { count, sum, last } = &exported(&store)[0].2 else {
            panic!()
        };
        assert_eq!((*count, *sum), (3.0, 13.0));
        assert_eq!((last.min, last.max), (10.0, 10.0));
    }

    #[test]
    fn gauges_keep_the_last_number_and_non_numbers_are_not_exported() {
        let mut g = Gathering::default();
        let mut store = Store::new(Origin::default());
        let set = |json: &str| Value::Set {
            json: json.into(),
            at: 0.0,
        };
        store.add(&deliver(
            &mut g,
            0.0,
            &[
                ("set", "n", set("4.5")),
                ("set", "text", set("\"up\"")),
                ("gauge", "g", Value::Gauge(Some(2.0))),
            ],
            &[],
        ));
        store.add(&deliver(
            &mut g,
            1.0,
            &[("gauge", "g", Value::Gauge(None))],
            &[],
        ));
        let all = exported(&store);
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].2, Cumulative::Gauge(4.5));
        assert!(matches!(all[1].2, Cumulative::Gauge(x) if x.is_nan()));
    }

    #[test]
    fn histograms_add_up_over_intervals() {
        let options = HistogramOptions::default();
        let mut g = Gathering::default();
        let mut store = Store::new(Origin::default());
        let h = |xs: &[f64]| {
            let mut d = Distribution::new(&options, 1);
            d.record_all(xs, 0.0);
            Value::Histogram(Box::new(d))
        };
        store.add(&deliver(
            &mut g,
            0.0,
            &[("histogram", "h", h(&[1.0, 2.0]))],
            &[],
        ));
        store.add(&deliver(
            &mut g,
            1.0,
            &[],
            &[(1, &[("histogram", "h", h(&[3.0]))])],
        ));
        let Cumulative::Histogram(d) = &exported(&store)[0].2 else {
            panic!()
        };
        assert_eq!(d.count(), 3);
        assert_eq!(d.stats(&[]).max, Some(3.0));
    }

    #[test]
    fn expired_series_leave_the_store_and_come_back_from_zero() {
        let mut g = Gathering::default();
        g.set_expire_after(Some(2));
        let mut store = Store::new(Origin::default());
        store.keep_processes();
        let ids = |store: &Store| -> Vec<(String, Option<String>)> {
            exported(store)
                .into_iter()
                .map(|(id, who, _)| (id, who))
                .collect()
        };
        let d = deliver(
            &mut g,
            0.0,
            &[("inc", "a", counter(1.0))],
            &[(1, &[("inc", "b", counter(5.0))])],
        );
        store.add(&d);
        // The worker's next messages lack b (a self-contained message is its whole dictionary).
        for k in [1.0, 2.0, 3.0] {
            let d = deliver(&mut g, k, &[("inc", "a", counter(1.0))], &[(1, &[])]);
            store.add(&d);
            let expected = if k == 1.0 { 2 } else { 1 };
            assert_eq!(
                g.series(),
                expected,
                "b expires two intervals after its last data, after that delivery"
            );
            let exported_b = exported(&store).iter().any(|(id, _, _)| id == "b");
            assert_eq!(
                exported_b,
                k < 3.0,
                "the next delivery takes it from the store"
            );
        }
        assert_eq!(
            ids(&store),
            [
                ("a".to_string(), None),
                ("a".to_string(), Some("masterNone".to_string()))
            ]
        );
        let d = deliver(
            &mut g,
            4.0,
            &[("inc", "a", counter(1.0))],
            &[(1, &[("inc", "b", counter(2.0))])],
        );
        store.add(&d);
        let b: Vec<Cumulative> = (exported(&store).into_iter())
            .filter(|(id, _, _)| id == "b")
            .map(|(_, _, c)| c)
            .collect();
        let fresh = Cumulative::Counter {
            total: 2.0,
            calls: 1.0,
        };
        assert_eq!(
            b,
            [fresh.clone(), fresh],
            "back from zero, in the cluster and its worker"
        );
    }
}
