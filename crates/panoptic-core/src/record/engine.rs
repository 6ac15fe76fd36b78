//! The aggregation state of one Panopticon instance in one process, for the current interval.
//!
//! How records reach it, chosen by what a record costs on the JS hot path:
//! - **counters** (`inc`): JS adds into two `f64` slots (`[calls, sum]`) of fixed-size pages
//!   ([`Cells`]) that the engine owns and JS views as `Float64Array`s; the engine reads and zeroes
//!   them when the interval closes. No native call per record.
//!   (JS may also keep a counter in plain JS fields and write them into its slots just before
//!   the interval closes: plain fields are cheaper to increment than typed-array slots.)
//! - **summaries** (`sample`, `timedSample`) and **distributions** (`histogram`): JS appends
//!   values to a batch buffer (also [`Cells`]) in runs, each run a header (`-Infinity`, series
//!   id) and the series' values, and has the engine drain it when it is full or the interval
//!   ends ([`Engine::drain`]); the engine folds each run into the series' [`Summary`] or
//!   [`Distribution`]. Cells past the last value hold NaN, and values are finite: the engine
//!   finds the end of the batch without being told, and JS keeps its fill in a JS variable.
//!
//! Because the engine owns that memory, it can still close the open interval when the JS side is
//! gone without warning (a worker thread terminated): [`Engine::close`] needs nothing from JS but
//! the `set`/registered-logger values (and the counters JS keeps in JS fields, which it does only
//! where no such ending can lose them: see lib/collector.js).
//! - **JS values** (`set`, registered loggers, `gauge`): JS keeps them and passes their JSON
//!   when the interval closes ([`JsValue`]).
//! - **meters** (`meter`): JS adds into counter slots, as for `inc`; the engine folds them into
//!   the series' [`Meter`] at each 5-second tick JS sees ([`Engine::tick_meters`]) and when the
//!   interval closes. A meter lives across intervals.
//! - **rates** (`rate`): observations of a cumulative counter are few; each is passed to
//!   [`Engine::observe`] as it comes.
//!
//! [`Engine::close`] turns the interval into a [`Snapshot`] and starts the next one empty. Which
//! interval a record belongs to is decided on the JS side with the interval clock
//! ([`crate::record::clock`]) before it writes: the engine only ever holds one open interval.

use std::collections::HashSet;
use std::mem::size_of;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::record::clock::now_ms;
use crate::snapshot::{Counts, Entry, Footprint, Profile, SeriesKey, Snapshot, Value};
use crate::stats::histogram::Distribution;
use crate::stats::meter::Meter;
use crate::stats::rate::{Observation, RateTracker};
use crate::stats::summary::Summary;
use crate::wire::{self, Dictionary, Keys, Untouched};

/// Number of `f64` slots in one counter page. A counter never straddles two pages.
pub const PAGE_SLOTS: usize = 4096;

/// Slots used by one counter: `[number of calls, sum of the increments]`.
pub const COUNTER_SLOTS: usize = 2;

/// Length in `f64` of the batch buffer JS fills with runs of values; the cell after them always
/// holds NaN (the end of a full batch).
pub const BATCH_LENGTH: usize = 2 * 4096;

/// The first cell of a run's header in the batch; the second is the series id.
pub const RUN_HEADER: f64 = f64::NEG_INFINITY;

/// `f64` cells shared with one JS thread, which views them as a `Float64Array` (the binding makes
/// an external ArrayBuffer over them) and writes them with plain stores. The engine only touches
/// them through atomics, from that same thread (or after it is gone), so every read sees the
/// thread's last write.
#[derive(Debug)]
pub struct Cells(Box<[AtomicU64]>);

impl Cells {
    /// `len` cells holding `value`.
    pub fn new(len: usize, value: f64) -> Arc<Cells> {
        Arc::new(Cells(
            (0..len).map(|_| AtomicU64::new(value.to_bits())).collect(),
        ))
    }

    /// The memory, for the binding's external ArrayBuffer.
    pub fn as_slice(&self) -> &[AtomicU64] {
        &self.0
    }

    /// Cell `i`'s value.
    pub fn get(&self, i: usize) -> f64 {
        f64::from_bits(self.0[i].load(Ordering::Relaxed))
    }

    /// Writes cell `i`.
    pub fn set(&self, i: usize, v: f64) {
        self.0[i].store(v.to_bits(), Ordering::Relaxed);
    }
}

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
    /// A number JS computes at each collection (`gauge`).
    Gauge,
    /// A value distribution (`histogram`), values pushed in batches like summaries.
    Histogram,
    /// The per-second rate of a cumulative counter (`rate`), observed one call at a time.
    Rate,
    /// Events per second with moving averages (`meter`), counted in slots like counters.
    Meter,
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
    /// `JSON.stringify` of the value (set), of the logger (its `toJSON()` leaf) or of the gauge's
    /// number (`null` when it had none); "" for undefined.
    pub json: String,
    /// Set only: when the value was written (epoch ms); the most recent write wins in a merge.
    pub at: f64,
}

/// A value a native [`Source`] hands to the interval that closes, for the series of id `.0`.
#[derive(Debug, Clone, PartialEq)]
pub enum Native {
    /// An increment of a counter (one call, as one `inc(n)`).
    Count(u32, f64),
    /// The value of a gauge.
    Gauge(u32, f64),
    /// The value of a `set` (a number, written now).
    Set(u32, f64),
    /// Values of a histogram: `zeros` values 0, then `values`.
    Values {
        id: u32,
        zeros: u64,
        values: Vec<f64>,
    },
}

/// Values read natively rather than by JS (the runtime metrics' sampler: src/loop_delay.rs),
/// handed to the engine when an interval closes, without a call from JS of their own.
pub trait Source: Send + std::fmt::Debug {
    /// What it has for the closing interval, and what it could not keep (`counts.dropped`).
    fn collect(&mut self, out: &mut Vec<Native>, counts: &mut Counts);
    /// Series `ids` expired: the source stops writing them (their ids may be given to others).
    fn forget(&mut self, ids: &[u32]);
}

#[derive(Debug)]
struct Series {
    kind: Kind,
    /// Whether its key went to the master since it was defined (see [`Engine::ship`]).
    sent: bool,
    /// Whether `last` holds an interval yet (its first close sets it).
    dated: bool,
    /// The last interval it had data in (or its first close): see [`Engine::set_expire_after`].
    /// The interval number modulo 2^32, 8 bytes less per series than an `f64`: only its
    /// difference to the closing interval is read, exact for every gap below 2^32 intervals
    /// (a series idle that long is freed at the first close that sees a gap of `expireAfter`).
    last: u32,
    key: Arc<SeriesKey>,
    state: State,
}

/// Interval `k` (a whole number) modulo 2^32, as [`Series::last`] keeps it.
fn wrapped(k: f64) -> u32 {
    // `as` saturates at the i64 range, far beyond any interval number.
    k as i64 as u32
}

/// Series records per chunk of [`Records`] (8 KiB).
const CHUNK: usize = 256;

/// The series records by index, in chunks of [`CHUNK`]: series are many, and a `Vec` that doubles
/// would copy every record at each growth and hold room for up to twice as many as it has (a
/// third of its memory unused on average); a chunk is added when the last is full, nothing
/// moves, and at most one chunk is unused.
#[derive(Debug, Default)]
struct Records {
    chunks: Vec<Box<[Option<Series>]>>,
    len: usize,
}

impl Records {
    fn len(&self) -> usize {
        self.len
    }

    /// How many records the chunks have room for.
    fn capacity(&self) -> usize {
        self.chunks.len() * CHUNK
    }

    fn get(&self, i: usize) -> Option<&Option<Series>> {
        (i < self.len).then(|| &self.chunks[i / CHUNK][i % CHUNK])
    }

    fn get_mut(&mut self, i: usize) -> Option<&mut Option<Series>> {
        if i < self.len {
            Some(&mut self.chunks[i / CHUNK][i % CHUNK])
        } else {
            None
        }
    }

    /// Adds a record at index `len()`.
    fn push(&mut self, series: Series) {
        if self.len == self.capacity() {
            self.chunks.push((0..CHUNK).map(|_| None).collect());
        }
        self.chunks[self.len / CHUNK][self.len % CHUNK] = Some(series);
        self.len += 1;
    }

    /// The records by index.
    fn iter_mut(&mut self) -> impl Iterator<Item = &mut Option<Series>> {
        let len = self.len;
        self.chunks.iter_mut().flat_map(|c| c.iter_mut()).take(len)
    }
}

/// What a series holds besides its key, by kind (boxed where large: series are many, and a
/// counter's entry stays small).
#[derive(Debug)]
enum State {
    /// Counters: their first slot across the pages (u32, as JS is told it: with a meter's
    /// `marked` beside it, the state takes 16 bytes, not 24, and a series record 32, not 40).
    Counter {
        slot: u32,
    },
    /// Meters: their slots, the meter, and whether it counted events since the interval began
    /// (a meter is reported in every interval: this is what keeps it from expiring).
    Meter {
        slot: u32,
        meter: Box<Meter>,
        marked: bool,
    },
    Summary(Box<Summary>),
    Distribution(Box<Distribution>),
    /// A rate whose interval could not bound its gaps has no tracker (every observation is
    /// refused).
    Rate(Option<Box<RateTracker>>),
    /// `set`, registered loggers and gauges: JS holds their values.
    Js,
}

/// An interval an [`Engine`] closed: its snapshot, and the engine's index of each entry's series
/// (the same series keeps its index for the engine's life: the master names a steady interval's
/// series by index, without hashing keys).
#[derive(Debug)]
pub struct Closed {
    pub snapshot: Snapshot,
    pub indexes: Vec<u32>,
    /// The series that expired at this close (see [`Engine::set_expire_after`]): their indexes
    /// are free for new series from now on, so JS must forget them before it records again.
    pub expired: Vec<u32>,
}

/// A closed interval, the indexes the master must forget and the series keys it lacks
/// ([`Engine::shipment`]).
#[derive(Debug)]
pub struct Shipment {
    closed: Closed,
    forgotten: Vec<u32>,
    definitions: Vec<(u32, Arc<SeriesKey>, Untouched)>,
    dictionary: Dictionary,
}

impl Shipment {
    /// Calls `f` with the shipment's keys as the wire encodes them.
    fn with_keys<T>(&self, f: impl FnOnce(Keys<'_>) -> T) -> T {
        let definitions: Vec<(u32, &SeriesKey, Untouched)> = (self.definitions.iter())
            .map(|(i, k, u)| (*i, &**k, *u))
            .collect();
        f(Keys::Delta {
            indexes: &self.closed.indexes,
            definitions: &definitions,
            forgotten: &self.forgotten,
            dictionary: self.dictionary,
        })
    }

    /// The wire form ([`wire::encode_bytes`]).
    pub fn encode(&self) -> Vec<u8> {
        self.with_keys(|keys| wire::encode_bytes(&self.closed.snapshot, keys))
    }

    /// The wire form as base64 text ([`wire::encode`]).
    pub fn encode_text(&self) -> String {
        self.with_keys(|keys| wire::encode(&self.closed.snapshot, keys))
    }
}

/// One instance's open interval. See the module documentation.
#[derive(Debug)]
pub struct Engine {
    /// By index; None: expired, the index free for a new series (`free`).
    series: Records,
    /// Indexes of expired series, and counter slots of expired counters and meters, to reuse.
    free: Vec<u32>,
    free_slots: Vec<u32>,
    /// See [`Engine::set_expire_after`].
    expire_after: Option<u32>,
    /// The methods and paths of the series, each held once and shared by their keys.
    methods: Vec<Arc<str>>,
    paths: HashSet<Arc<[String]>>,
    next_slot: usize,
    pages: Vec<Arc<Cells>>,
    batch: Arc<Cells>,
    /// The grid and options, stamped on every snapshot.
    profile: Profile,
    rejected: u64,
    /// Bytes of the live series' keys and boxed states, as [`Engine::define`] allocated them
    /// and expiry freed them (see [`Engine::footprint`]).
    defined_bytes: usize,
    /// Shipping to a master (see [`crate::wire`]): this dictionary's name, the messages it sent
    /// in it, and the indexes expired since the last message (the master forgets them).
    shipping: bool,
    epoch: u64,
    serial: u32,
    forgotten: Vec<u32>,
    /// See [`Engine::set_source`]; what a replaced source dropped, for the next close's counts.
    source: Option<Box<dyn Source>>,
    carried_dropped: f64,
}

impl Engine {
    /// With `profile.persist`, every series ever defined is reported each interval, untouched
    /// counters, summaries and distributions in their empty state. `profile.interval` (ms) bounds
    /// the gap a rate spans; `profile.histogram` configures every distribution.
    pub fn new(profile: Profile) -> Engine {
        Engine {
            series: Records::default(),
            free: Vec::new(),
            free_slots: Vec::new(),
            expire_after: None,
            methods: Vec::new(),
            paths: HashSet::new(),
            next_slot: 0,
            pages: Vec::new(),
            batch: Cells::new(BATCH_LENGTH + 1, f64::NAN),
            profile,
            rejected: 0,
            defined_bytes: 0,
            shipping: false,
            epoch: random_epoch(),
            serial: 0,
            forgotten: Vec::new(),
            source: None,
            carried_dropped: 0.0,
        }
    }

    /// Has `source` hand its values to every interval that closes (None: no source). What the
    /// source it replaces still holds goes into the open interval (its counts and histogram
    /// values; a level belongs to a close, and is left out).
    pub fn set_source(&mut self, source: Option<Box<dyn Source>>) {
        if let Some(mut old) = std::mem::replace(&mut self.source, source) {
            let (mut natives, mut counts) = (Vec::new(), Counts::default());
            old.collect(&mut natives, &mut counts);
            natives.retain(|n| matches!(n, Native::Count(..) | Native::Values { .. }));
            self.apply(natives, &mut Vec::new(), &mut Vec::new(), now_ms());
            self.carried_dropped += counts.dropped;
        }
    }

    /// Records a source's values into the open interval; sets into `js` (the interval's JS
    /// values, in id order, one per id: kept so) and gauges into `gauges` (id and value, in the
    /// order given), where JS gave none: a value JS gives for the same series takes precedence. A value naming no series of its kind is counted as an error of
    /// the interval.
    fn apply(
        &mut self,
        natives: Vec<Native>,
        js: &mut Vec<JsValue>,
        gauges: &mut Vec<(u32, f64)>,
        now: f64,
    ) {
        for native in natives {
            let id = match &native {
                Native::Count(id, _)
                | Native::Gauge(id, _)
                | Native::Set(id, _)
                | Native::Values { id, .. } => *id,
            };
            let series = self.series.get_mut(id as usize).and_then(Option::as_mut);
            let ok = match (native, series.map(|s| (&mut s.state, s.kind))) {
                (Native::Count(_, n), Some((&mut State::Counter { slot }, _))) if n.is_finite() => {
                    let (page, at) = cell(&self.pages, slot);
                    page.set(at, page.get(at) + 1.0);
                    page.set(at + 1, page.get(at + 1) + n);
                    true
                }
                (Native::Values { zeros, values, .. }, Some((State::Distribution(d), _))) => {
                    let mut all = vec![0.0; usize::try_from(zeros).unwrap_or(0)];
                    all.extend_from_slice(&values);
                    d.record_all(&all, now);
                    true
                }
                // A number as it is (no JSON text to write and parse back: most of a source's
                // values are gauges).
                (Native::Gauge(id, v), Some((State::Js, Kind::Gauge))) => {
                    if js.binary_search_by_key(&id, |j| j.id).is_err() {
                        gauges.push((id, v));
                    }
                    true
                }
                (Native::Set(id, v), Some((State::Js, Kind::Set))) => {
                    if let Err(at) = js.binary_search_by_key(&id, |j| j.id) {
                        let mut json = Vec::new();
                        crate::json::number(v, &mut json);
                        // Written now: the latest write wins a merge.
                        let json = String::from_utf8(json).expect("numbers are ASCII");
                        js.insert(at, JsValue { id, json, at: now });
                    }
                    true
                }
                _ => false,
            };
            if !ok {
                self.rejected += 1;
            }
        }
    }

    /// Frees every series that had no data for `n` intervals (None: never; `n` >= 1, as
    /// lib/args.js checks) when an interval closes ([`Closed::expired`]): its engine state, its
    /// counter slots and its index, which a new series may take. A series with data again after
    /// that (a JS handle kept) is defined anew. "Data" is what makes a series reported without
    /// `persist`: a counter's calls, a summary's or a distribution's values, a rate's increase, a
    /// meter's events, a JS value handed over (a registered gauge hands one at every close, so it
    /// lives while registered).
    pub fn set_expire_after(&mut self, n: Option<u32>) {
        self.expire_after = n;
    }

    /// How many series are defined and not expired.
    pub fn live(&self) -> usize {
        self.series.len() - self.free.len()
    }

    /// An interval this engine closed, on its way to the master: the indexes expired since the
    /// last call, the keys of series defined since, then every entry by its series index. It is
    /// encoded where it is sent from (the native transport's thread: [`crate::transport`]), off
    /// the JS thread.
    pub fn shipment(&mut self, closed: Closed) -> Shipment {
        self.shipping = true;
        // The master forgets expired indexes before it reads definitions: an index expired at
        // one close and taken by a new series during the next interval is sent in that order.
        let mut forgotten = std::mem::take(&mut self.forgotten);
        if self.serial == 0 {
            // A fresh dictionary: the master starts from nothing.
            forgotten.clear();
        }
        let mut definitions = Vec::new();
        for (index, series) in self.series.iter_mut().enumerate() {
            if let Some(series) = series.as_mut().filter(|s| !s.sent) {
                series.sent = true;
                let untouched = match series.kind {
                    Kind::Counter => Untouched::Counter,
                    Kind::Summary => Untouched::Summary,
                    Kind::Histogram => Untouched::Histogram,
                    Kind::Rate => Untouched::Rate,
                    // Values the sender gives each interval (JS's, a meter's rates).
                    Kind::Set | Kind::Custom | Kind::Gauge | Kind::Meter => Untouched::Sent,
                };
                definitions.push((index as u32, series.key.clone(), untouched));
            }
        }
        let dictionary = Dictionary {
            epoch: self.epoch,
            serial: self.serial,
        };
        self.serial = self.serial.wrapping_add(1).max(1);
        Shipment {
            closed,
            forgotten,
            definitions,
            dictionary,
        }
    }

    /// The master lost this engine's dictionary: send every key again with the next snapshot.
    pub fn resync(&mut self) {
        self.serial = 0;
        self.forgotten.clear();
        for series in self.series.iter_mut().flatten() {
            series.sent = false;
        }
    }

    /// Counter page `i` (exists once a counter slot in it was defined).
    pub fn page(&self, i: usize) -> Option<&Arc<Cells>> {
        self.pages.get(i)
    }

    /// The batch buffer: `BATCH_LENGTH` cells of runs, then a NaN.
    pub fn batch(&self) -> &Arc<Cells> {
        &self.batch
    }

    /// Adds a series (its method and path shared with the series defined before).
    pub fn define(&mut self, kind: Kind, key: SeriesKey) -> Definition {
        let id = self.free.pop().unwrap_or(self.series.len() as u32);
        let method = match self.methods.iter().find(|m| **m == key.method) {
            Some(m) => m.clone(),
            None => {
                self.defined_bytes += ARC + key.method.len();
                self.methods.push(key.method.clone());
                key.method
            }
        };
        let path = match self.paths.get(&*key.path) {
            Some(p) => p.clone(),
            None => {
                let elements = key.path.iter();
                let elements = elements.map(|e| size_of::<String>() + e.capacity());
                self.defined_bytes += ARC + elements.sum::<usize>();
                self.paths.insert(key.path.clone());
                key.path
            }
        };
        let key = SeriesKey {
            method,
            path,
            id: key.id,
        };
        let mut slot = || {
            if let Some(slot) = self.free_slots.pop() {
                return slot;
            }
            if self.next_slot % PAGE_SLOTS + COUNTER_SLOTS > PAGE_SLOTS {
                self.next_slot += PAGE_SLOTS - self.next_slot % PAGE_SLOTS;
            }
            self.next_slot += COUNTER_SLOTS;
            if self.pages.len() < self.next_slot.div_ceil(PAGE_SLOTS) {
                self.pages.push(Cells::new(PAGE_SLOTS, 0.0));
            }
            u32::try_from(self.next_slot - COUNTER_SLOTS).expect("more than 2^32 counter slots")
        };
        let state = match kind {
            Kind::Counter => State::Counter { slot: slot() },
            Kind::Meter => State::Meter {
                slot: slot(),
                meter: Box::new(Meter::new(now_ms())),
                marked: false,
            },
            Kind::Summary => State::Summary(Box::default()),
            Kind::Histogram => State::Distribution(Box::new(self.distribution(id))),
            Kind::Rate => State::Rate(RateTracker::new(self.profile.interval).map(Box::new)),
            Kind::Set | Kind::Custom | Kind::Gauge => State::Js,
        };
        let slot = match state {
            State::Counter { slot } | State::Meter { slot, .. } => Some(slot),
            _ => None,
        };
        self.defined_bytes += defined_size(&key, &state);
        let series = Series {
            kind,
            key: Arc::new(key),
            state,
            // Its first close makes it that interval (the engine is not told the open one).
            dated: false,
            last: 0,
            sent: false,
        };
        match self.series.get_mut(id as usize) {
            Some(place) => *place = Some(series),
            None => self.series.push(series),
        }
        Definition { id, slot }
    }

    /// Observes a `rate` series' cumulative counter at `now_ms`. False when the observation is
    /// refused (a negative or non-finite value, or a series that is not a rate): the caller counts
    /// it as dropped.
    pub fn observe(&mut self, id: u32, value: f64, now_ms: f64) -> bool {
        match (self.series.get_mut(id as usize))
            .and_then(Option::as_mut)
            .map(|s| &mut s.state)
        {
            Some(State::Rate(Some(t))) => {
                !matches!(t.observe(value, now_ms), Observation::Rejected)
            }
            _ => false,
        }
    }

    /// Folds the events counted in the meters' slots into the meters at `now_ms`. JS calls it when
    /// it sees a 5-second tick of its grid, so an event reaches its meter's moving averages at most
    /// one tick late (the averages themselves are tested in [`crate::stats::meter`]).
    pub fn tick_meters(&mut self, now_ms: f64) {
        for series in self.series.iter_mut().flatten() {
            if let State::Meter {
                slot,
                meter,
                marked,
            } = &mut series.state
            {
                let (page, at) = cell(&self.pages, *slot);
                let (calls, n) = (page.get(at), page.get(at + 1));
                page.set(at, 0.0);
                page.set(at + 1, 0.0);
                *marked |= calls != 0.0;
                if n != 0.0 && !meter.mark(n, now_ms) {
                    self.rejected += 1;
                }
            }
        }
    }

    /// An empty distribution for series `id` (its sampling reservoirs seeded by the series and
    /// this engine).
    fn distribution(&self, id: u32) -> Distribution {
        Distribution::new(
            &self.profile.histogram,
            self.epoch ^ u64::from(id).rotate_left(32),
        )
    }

    /// Folds the runs of the batch into their summaries and distributions, and empties it (the
    /// cells read become NaN again). The batch ends at its first NaN. A run naming no summary or
    /// distribution is skipped, its values counted as errors of the interval (JS never writes
    /// one; this keeps a bug from corrupting another series), and so is a cell where a run header
    /// should be: then the rest of the batch is dropped (one error).
    pub fn drain(&mut self) {
        // Each run is recorded as one batch (see Distribution::record_all), read in place, at
        // the drain's time (a decaying reservoir weighs values by it): the common case of one
        // hot histogram is one batch per drain.
        let now = now_ms();
        let batch = Arc::clone(&self.batch);
        let cells = &batch.as_slice()[..BATCH_LENGTH];
        let read = |cell: &AtomicU64| f64::from_bits(cell.load(Ordering::Relaxed));
        let mut i = 0;
        let end = loop {
            let Some(head) = cells.get(i).map(read) else {
                break BATCH_LENGTH;
            };
            if head.is_nan() {
                break i;
            }
            let Some(id) = cells.get(i + 1).map(read).filter(|_| head == RUN_HEADER) else {
                self.rejected += 1;
                break BATCH_LENGTH;
            };
            i += 2;
            // Values are finite; what is not ends the run (NaN: the end; -Infinity: a header).
            let n = cells[i..]
                .iter()
                .position(|cell| !read(cell).is_finite())
                .unwrap_or(BATCH_LENGTH - i);
            self.record_run(id, &cells[i..i + n], now);
            i += n;
        };
        let nan = f64::NAN.to_bits();
        for cell in &batch.as_slice()[..=end] {
            cell.store(nan, Ordering::Relaxed);
        }
    }

    /// Records a run of values (`f64` bits, read in place) into series `id`.
    fn record_run(&mut self, id: f64, values: &[AtomicU64], now: f64) {
        let series = usize::try_from(id as i64)
            .ok()
            .filter(|&i| i as f64 == id)
            .and_then(|i| self.series.get_mut(i))
            .and_then(Option::as_mut);
        match series.map(|s| &mut s.state) {
            Some(State::Summary(summary)) => values
                .iter()
                .for_each(|v| summary.push(f64::from_bits(v.load(Ordering::Relaxed)))),
            Some(State::Distribution(d)) => d.record_cells(values, now),
            _ => self.rejected += values.len().max(1) as u64,
        }
    }

    /// Closes interval `k`: drains the batch, reads and zeroes the counter slots, takes the JS
    /// values, and returns the snapshot (series in definition order). Reported: counters and
    /// summaries touched in the interval (all with `persist`), and every JS value given (JS
    /// decides which). `counts` are the interval's counts on the JS side.
    pub fn close(&mut self, k: f64, js: Vec<JsValue>, counts: Counts) -> Closed {
        let (mut natives, mut counts) = (Vec::new(), counts);
        counts.dropped += std::mem::take(&mut self.carried_dropped);
        if let Some(source) = &mut self.source {
            source.collect(&mut natives, &mut counts);
        }
        self.drain();
        let now = now_ms();
        self.tick_meters(now);
        // The JS values by series id, in id order (the last of one id wins): merged into the pass
        // over the series below. JS values are few next to the series, so this costs nothing per
        // series (a table by id would take tens of bytes per series at every close).
        let mut js_values = Vec::with_capacity(js.len());
        for v in js {
            let kind = (self.series.get(v.id as usize))
                .and_then(Option::as_ref)
                .map(|s| s.kind);
            if matches!(kind, Some(Kind::Set | Kind::Custom | Kind::Gauge)) {
                js_values.push(v);
            } else {
                self.rejected += 1;
            }
        }
        // Stable: values of one id keep their order, and `dedup_by` keeps the later one.
        js_values.sort_by_key(|v| v.id);
        js_values.dedup_by(|later, kept| {
            let same = later.id == kept.id;
            if same {
                std::mem::swap(later, kept);
            }
            same
        });
        // A source's values (see apply): its gauges by id, in id order as the JS values.
        let mut gauges = Vec::new();
        self.apply(natives, &mut js_values, &mut gauges, now);
        // As the JS values: one per id, the later one (a gauge left behind would stop the pass).
        gauges.sort_by_key(|&(id, _)| id);
        gauges.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                *kept = *later;
            }
            same
        });
        let mut gauges = gauges.into_iter().peekable();
        let mut js_values = js_values.into_iter().peekable();
        let persist = self.profile.persist;
        let (mut entries, mut indexes, mut expired) = (Vec::new(), Vec::new(), Vec::new());
        // What the distributions held at the end of the interval (then taken into the snapshot).
        let mut held = 0;
        for (index, place) in self.series.iter_mut().enumerate() {
            let Some(series) = place else { continue };
            // Every value left refers to a live series (checked above), so none is skipped here.
            let js = js_values.next_if(|v| v.id as usize == index);
            // Whether it had data (see set_expire_after), and what it reports.
            let (active, value) = match (&mut series.state, series.kind) {
                (&mut State::Counter { slot }, _) => {
                    let (page, at) = cell(&self.pages, slot);
                    let (count, total) = (page.get(at), page.get(at + 1));
                    page.set(at, 0.0);
                    page.set(at + 1, 0.0);
                    (count != 0.0, Some(Value::Counter { count, total }))
                }
                (State::Summary(summary), _) => {
                    let summary = std::mem::take(&mut **summary);
                    (!summary.is_empty(), Some(Value::Summary(summary)))
                }
                (State::Distribution(d), _) => {
                    held += d.heap_bytes();
                    let active = !d.is_empty();
                    let value = (active || persist).then(|| Value::Histogram(Box::new(d.take())));
                    (active, value)
                }
                // A meter is reported in every interval once defined.
                (State::Meter { meter, marked, .. }, _) => {
                    (std::mem::take(marked), Some(Value::Meter(meter.stats(now))))
                }
                (State::Rate(tracker), _) => {
                    let stats = tracker.as_mut().and_then(|t| t.take());
                    (stats.is_some(), Some(Value::Rate(stats)))
                }
                (State::Js, kind) => {
                    let value = js.map(|JsValue { json, at, .. }| match kind {
                        Kind::Set => Value::Set { json, at },
                        Kind::Custom => Value::Custom { json },
                        // JSON numbers are valid Rust float syntax; `null` (no number) is None.
                        _ => Value::Gauge(json.parse().ok().filter(|v: &f64| v.is_finite())),
                    });
                    // A source's gauge (see apply).
                    let gauge = gauges.next_if(|&(id, _)| id as usize == index);
                    let value = value.or_else(|| {
                        let (_, v) = gauge?;
                        Some(Value::Gauge(Some(v).filter(|v| v.is_finite())))
                    });
                    (value.is_some(), value)
                }
            };
            if active || !series.dated {
                (series.dated, series.last) = (true, wrapped(k));
            } else if self
                .expire_after
                .is_some_and(|n| wrapped(k).wrapping_sub(series.last) >= n)
            {
                match series.state {
                    State::Counter { slot } | State::Meter { slot, .. } => {
                        self.free_slots.push(slot)
                    }
                    _ => {}
                }
                self.defined_bytes -= defined_size(&series.key, &series.state);
                *place = None;
                self.free.push(index as u32);
                expired.push(index as u32);
                continue;
            }
            let Some(value) = value.filter(|_| active || persist || series.kind == Kind::Meter)
            else {
                continue;
            };
            entries.push(Entry {
                key: series.key.clone(),
                value,
            });
            indexes.push(index as u32);
        }
        if self.shipping {
            self.forgotten.extend_from_slice(&expired);
        }
        if let (Some(source), false) = (&mut self.source, expired.is_empty()) {
            source.forget(&expired);
        }
        Closed {
            snapshot: Snapshot {
                k,
                profile: self.profile,
                pid: std::process::id(),
                counts: Counts {
                    errors: counts.errors + std::mem::take(&mut self.rejected) as f64,
                    ..counts
                },
                footprint: self.footprint(held),
                entries,
            },
            indexes,
            expired,
        }
    }

    /// The series this engine holds and an estimate of the bytes it holds for them
    /// (docs/self-monitoring.md), `held` being what its distributions' buckets or samples take:
    /// the engine and its vectors' capacity, each series' entry, key (its id text; methods and
    /// paths once, as they are shared) and boxed state, the counter pages and the batch buffer.
    /// Not counted: the allocator's own overhead, and what JS holds (lookup caches, the JS
    /// objects of bound handles and counters), which lives in the JS heap. Computed without a
    /// pass over the series: [`Engine::define`] counts what it allocates.
    fn footprint(&self, held: usize) -> Footprint {
        let cells = |n: usize| ARC + size_of::<Cells>() + n * size_of::<AtomicU64>();
        let bytes = size_of::<Engine>()
            + self.series.capacity() * size_of::<Option<Series>>()
            + self.series.chunks.capacity() * size_of::<Box<[Option<Series>]>>()
            + self.methods.capacity() * size_of::<Arc<str>>()
            + self.paths.capacity() * size_of::<Arc<[String]>>()
            + self.defined_bytes
            + held
            + self.pages.capacity() * size_of::<Arc<Cells>>()
            + self.pages.len() * cells(PAGE_SLOTS)
            + cells(BATCH_LENGTH + 1);
        Footprint {
            series: (self.series.len() - self.free.len()) as f64,
            bytes: bytes as f64,
        }
    }
}

/// The page of counter slot `slot`, and the slot's place in it.
fn cell(pages: &[Arc<Cells>], slot: u32) -> (&Arc<Cells>, usize) {
    let slot = slot as usize;
    (&pages[slot / PAGE_SLOTS], slot % PAGE_SLOTS)
}

/// An `Arc`'s allocation besides its value: two reference counts.
const ARC: usize = 2 * size_of::<usize>();

/// The bytes [`Engine::define`] allocates for a series of `key` in `state`: its key and boxed
/// state (a distribution's buckets or samples are counted when the interval closes: they grow
/// with its values and leave with its snapshot).
fn defined_size(key: &SeriesKey, state: &State) -> usize {
    let boxed = match state {
        State::Counter { .. } | State::Js | State::Rate(None) => 0,
        State::Meter { .. } => size_of::<Meter>(),
        State::Summary(_) => size_of::<Summary>(),
        State::Distribution(_) => size_of::<Distribution>(),
        State::Rate(Some(_)) => size_of::<RateTracker>(),
    };
    // A short id is inline in the key (its capacity() is then the inline room, not a block).
    let id = if key.id.is_heap_allocated() {
        key.id.capacity()
    } else {
        0
    };
    ARC + size_of::<SeriesKey>() + id + boxed
}

/// A dictionary name unlikely to repeat across engines and processes (std's RandomState is seeded
/// from the OS per process and varied per call).
fn random_epoch() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 1 s grid, with or without `persist`.
    fn profile(persist: bool) -> Profile {
        Profile {
            interval: 1000.0,
            persist,
            ..Profile::default()
        }
    }

    fn key(method: &str, id: &str) -> SeriesKey {
        SeriesKey::new(method, &["p"], id)
    }

    /// What the JS counter handle does: one call adding `n`.
    fn inc(e: &Engine, d: Definition, n: f64) {
        let slot = d.slot.unwrap() as usize;
        let page = e.page(slot / PAGE_SLOTS).unwrap();
        let at = slot % PAGE_SLOTS;
        page.set(at, page.get(at) + 1.0);
        page.set(at + 1, page.get(at + 1) + n);
    }

    #[test]
    fn the_footprint_counts_series_and_grows_with_what_they_hold() {
        let mut e = Engine::new(profile(true));
        let footprint = |e: &mut Engine| {
            e.close(0.0, Vec::new(), Counts::default())
                .snapshot
                .footprint
        };
        let empty = footprint(&mut e);
        assert_eq!(empty.series, 0.0);
        // The batch buffer alone is 64 KiB.
        let batch = ((BATCH_LENGTH + 1) * 8) as f64;
        assert!(
            empty.bytes > batch && empty.bytes < batch + 1024.0,
            "{empty:?}"
        );
        let c = e.define(Kind::Counter, key("inc", "c"));
        let one = footprint(&mut e);
        assert_eq!(one.series, 1.0);
        assert!(
            one.bytes >= empty.bytes + (PAGE_SLOTS * 8) as f64,
            "a counter page"
        );
        inc(&e, c, 1.0);
        // A histogram's buckets count at the end of an interval that filled them.
        let h = e.define(Kind::Histogram, key("histogram", "h"));
        let defined = footprint(&mut e);
        let Some(State::Distribution(d)) = e
            .series
            .get_mut(h.id as usize)
            .and_then(Option::as_mut)
            .map(|s| &mut s.state)
        else {
            panic!("a distribution")
        };
        d.record_all(&[1.0, 10.0, 1000.0, 1e6], 0.0);
        let held = d.heap_bytes() as f64;
        assert!(held > 0.0);
        let filled = footprint(&mut e);
        assert_eq!(filled.series, 2.0);
        assert_eq!(filled.bytes, defined.bytes + held, "{defined:?} {filled:?}");
        // Taken into that interval's snapshot: the next one starts without them.
        assert_eq!(footprint(&mut e).bytes, defined.bytes);
        // Methods and paths are counted once: another counter on the same path adds its entry
        // and key (and the growth of the series vector), nothing more: a short id is inline in
        // the key, a long one adds its text's block.
        let capacity = e.series.capacity();
        e.define(Kind::Counter, key("inc", "d"));
        let grown = (e.series.capacity() - capacity) * size_of::<Series>();
        let added = footprint(&mut e).bytes - defined.bytes;
        assert_eq!(added, (ARC + size_of::<SeriesKey>() + grown) as f64);
        let long = key("inc", "an id longer than twenty-four bytes");
        let text = long.id.capacity();
        assert!(long.id.is_heap_allocated() && text >= long.id.len());
        let capacity = e.series.capacity();
        e.define(Kind::Counter, long);
        let grown = (e.series.capacity() - capacity) * size_of::<Series>();
        let more = footprint(&mut e).bytes - defined.bytes - added;
        assert_eq!(more, (ARC + size_of::<SeriesKey>() + text + grown) as f64);
    }

    /// A series record is 32 bytes on 64-bit targets (an `Arc` key, a 16-byte state, the last
    /// interval in 4 bytes, the kind and two flags); `None` (an expired index) takes no more.
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_series_record_takes_32_bytes() {
        assert_eq!(size_of::<State>(), 16);
        assert_eq!(size_of::<Option<Series>>(), 32);
    }

    #[test]
    fn idle_intervals_are_counted_across_the_wrap_of_the_last_interval() {
        assert_eq!(wrapped(7.0), 7);
        let before = wrapped(f64::from(u32::MAX) - 1.0);
        assert_eq!(wrapped(f64::from(u32::MAX) + 3.0).wrapping_sub(before), 4);
    }

    #[test]
    fn histograms_take_batched_values_and_start_each_interval_empty() {
        let mut e = Engine::new(profile(false));
        let h = e.define(Kind::Histogram, key("histogram", "h"));
        let s = e.define(Kind::Summary, key("sample", "s"));
        append(&e, &[h.id as f64, 1.0, s.id as f64, 5.0, h.id as f64, 3.0]);
        let snap = e.close(1.0, vec![], Counts::default()).snapshot;
        match &snap.entries[0].value {
            Value::Histogram(d) => {
                let stats = d.stats(&[50.0]);
                assert_eq!(
                    (stats.count, stats.min, stats.max),
                    (2, Some(1.0), Some(3.0))
                );
            }
            v => panic!("{v:?}"),
        }
        assert!(
            e.close(2.0, vec![], Counts::default())
                .snapshot
                .entries
                .is_empty(),
            "reset"
        );
        // A histogram pair for a counter is refused like any misdirected pair.
        let c = e.define(Kind::Counter, key("inc", "c"));
        append(&e, &[c.id as f64, 1.0]);
        assert_eq!(
            e.close(3.0, vec![], Counts::default())
                .snapshot
                .counts
                .errors,
            1.0
        );
        let mut p = Engine::new(profile(true));
        p.define(Kind::Histogram, key("histogram", "h"));
        let empty = p.close(1.0, vec![], Counts::default()).snapshot;
        assert!(
            matches!(&empty.entries[0].value, Value::Histogram(d) if d.is_empty()),
            "persist"
        );
    }

    #[test]
    fn meters_count_across_intervals_and_tick_on_the_grid() {
        let mut e = Engine::new(profile(false));
        let m = e.define(Kind::Meter, key("meter", "m"));
        inc(&e, m, 1.0);
        e.tick_meters(now_ms()); // folded early: counted once
        inc(&e, m, 2.0);
        let first = e.close(1.0, vec![], Counts::default()).snapshot;
        match first.entries[0].value {
            Value::Meter(stats) => assert_eq!(stats.count, 3.0),
            ref v => panic!("{v:?}"),
        }
        inc(&e, m, 2.0);
        let second = e.close(2.0, vec![], Counts::default()).snapshot;
        assert!(matches!(second.entries[0].value, Value::Meter(s) if s.count == 5.0));
        let idle = e.close(3.0, vec![], Counts::default()).snapshot;
        assert_eq!(idle.entries.len(), 1, "reported while idle");
    }

    #[test]
    fn rates_come_from_observations_of_a_cumulative_counter() {
        let mut e = Engine::new(profile(false));
        let r = e.define(Kind::Rate, key("rate", "r"));
        let c = e.define(Kind::Counter, key("inc", "c"));
        assert!(e.observe(r.id, 100.0, 0.0), "the first is a baseline");
        assert!(e.observe(r.id, 150.0, 500.0));
        assert!(!e.observe(r.id, -1.0, 600.0), "refused");
        assert!(!e.observe(c.id, 1.0, 600.0), "not a rate");
        let snap = e.close(1.0, vec![], Counts::default()).snapshot;
        let stats = crate::stats::rate::RateStats {
            rate: 100.0,
            increase: 50.0,
        };
        assert_eq!(snap.entries[0].value, Value::Rate(Some(stats)));
        assert!(e
            .close(2.0, vec![], Counts::default())
            .snapshot
            .entries
            .is_empty());
    }

    /// Writes `cells` into the batch after its last written cell (its first NaN).
    fn write(e: &Engine, cells: &[f64]) {
        let b = e.batch();
        let fill = (0..BATCH_LENGTH).find(|&i| b.get(i).is_nan()).unwrap();
        for (i, v) in cells.iter().enumerate() {
            b.set(fill + i, *v);
        }
    }

    /// What the JS distribution handles do: `(series id, value)` pairs appended as runs, a
    /// header where the series changes.
    fn append(e: &Engine, pairs: &[f64]) {
        let mut cells = Vec::new();
        let mut run = f64::NAN;
        for pair in pairs.chunks(2) {
            if pair[0] != run {
                run = pair[0];
                cells.extend([RUN_HEADER, run]);
            }
            cells.push(pair[1]);
        }
        write(e, &cells);
    }

    #[test]
    fn counters_never_straddle_pages_and_pages_exist() {
        let mut e = Engine::new(profile(false));
        for i in 0..5000 {
            let d = e.define(Kind::Counter, key("inc", &i.to_string()));
            let slot = d.slot.unwrap() as usize;
            assert!(slot % PAGE_SLOTS + COUNTER_SLOTS <= PAGE_SLOTS);
            assert!(e.page(slot / PAGE_SLOTS).is_some());
        }
        assert_eq!(e.define(Kind::Summary, key("sample", "s")).slot, None);
    }

    #[test]
    fn closes_counters_summaries_and_js_values() {
        let mut e = Engine::new(profile(false));
        let c = e.define(Kind::Counter, key("inc", "c"));
        let zero = e.define(Kind::Counter, key("inc", "zero"));
        e.define(Kind::Counter, key("inc", "idle"));
        let s = e.define(Kind::Summary, key("sample", "s"));
        let set = e.define(Kind::Set, key("set", "v"));
        let custom = e.define(Kind::Custom, key("max", "m"));
        let gauge = e.define(Kind::Gauge, key("gauge", "g"));
        let failed = e.define(Kind::Gauge, key("gauge", "f"));
        for n in [3.0, 3.0, 4.0] {
            inc(&e, c, n);
        }
        inc(&e, zero, 0.0); // one inc(path, id, 0): reported with total 0
        append(&e, &[s.id as f64, 1.0]);
        e.drain(); // a full batch drained early
        append(&e, &[s.id as f64, 3.0]);
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
            JsValue {
                id: gauge.id,
                json: "-1.5e+21".into(),
                at: 0.0,
            },
            JsValue {
                id: failed.id,
                json: "null".into(),
                at: 0.0,
            },
        ];
        let counts = Counts {
            dropped: 2.0,
            invalid: 3.0,
            overflowed: 4.0,
            errors: 1.0,
        };
        let snap = e.close(4.0, js, counts).snapshot;
        assert_eq!((snap.k, snap.counts.fields()), (4.0, [2.0, 3.0, 4.0, 1.0]));
        assert_eq!(snap.pid, std::process::id());
        let ids: Vec<&str> = snap.entries.iter().map(|e| e.key.id.as_str()).collect();
        assert_eq!(ids, ["c", "zero", "s", "v", "m", "g", "f"]);
        assert_eq!(snap.entries[5].value, Value::Gauge(Some(-1.5e21)));
        assert_eq!(snap.entries[6].value, Value::Gauge(None));
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
        let page = e.page(0).unwrap();
        assert!((0..PAGE_SLOTS).all(|i| page.get(i) == 0.0), "slots zeroed");
        let batch = e.batch();
        assert!(
            (0..=BATCH_LENGTH).all(|i| batch.get(i).is_nan()),
            "batch emptied"
        );
        let next = e.close(5.0, vec![], Counts::default()).snapshot;
        assert!(
            next.entries.is_empty(),
            "untouched series disappear without persist"
        );
    }

    #[test]
    fn js_values_come_in_any_order_and_the_last_of_an_id_wins() {
        let mut e = Engine::new(profile(false));
        let a = e.define(Kind::Set, key("set", "a"));
        let c = e.define(Kind::Counter, key("inc", "c"));
        let b = e.define(Kind::Gauge, key("gauge", "b"));
        let v = |id, json: &str| JsValue {
            id,
            json: json.into(),
            at: 0.0,
        };
        let js = vec![
            v(b.id, "2"),
            v(a.id, "\"1\""),
            v(c.id, "1"),
            v(a.id, "\"3\""),
            v(99, "1"),
        ];
        let snap = e.close(1.0, js, Counts::default()).snapshot;
        assert_eq!(snap.counts.errors, 2.0, "a counter's and no series'");
        let got: Vec<(&str, &Value)> = snap.series().map(|(k, v)| (&*k.id, v)).collect();
        let set = Value::Set {
            json: "\"3\"".into(),
            at: 0.0,
        };
        assert_eq!(got, [("a", &set), ("b", &Value::Gauge(Some(2.0)))]);
    }

    #[test]
    fn ships_each_key_once() {
        let mut e = Engine::new(profile(false));
        let a = e.define(Kind::Counter, key("inc", "a"));
        let b = e.define(Kind::Counter, key("inc", "b"));
        inc(&e, b, 1.0);
        let closed = e.close(1.0, vec![], Counts::default());
        let first = wire::decode(&e.shipment(closed).encode_text()).unwrap();
        assert_eq!(first.dictionary.serial, 0);
        assert_eq!(first.definitions.len(), 2);
        assert_eq!(first.indexes, [b.id]);
        let c = e.define(Kind::Counter, key("inc", "c"));
        inc(&e, a, 1.0);
        inc(&e, c, 1.0);
        let closed = e.close(2.0, vec![], Counts::default());
        let second = wire::decode(&e.shipment(closed).encode_text()).unwrap();
        assert_eq!(second.dictionary.serial, 1);
        assert_eq!(
            second.definitions,
            vec![(c.id, key("inc", "c"), Untouched::Counter)]
        );
        assert_eq!(second.indexes, [a.id, c.id]);
        assert_eq!(second.dictionary.epoch, first.dictionary.epoch);
        e.resync();
        let closed = e.close(3.0, vec![], Counts::default());
        let third = wire::decode(&e.shipment(closed).encode_text()).unwrap();
        assert_eq!((third.dictionary.serial, third.definitions.len()), (0, 3));
    }

    #[test]
    fn idle_series_expire_and_their_indexes_and_slots_are_reused() {
        let mut e = Engine::new(profile(false));
        e.set_expire_after(Some(2));
        let a = e.define(Kind::Counter, key("inc", "a"));
        let b = e.define(Kind::Counter, key("inc", "b"));
        let g = e.define(Kind::Gauge, key("gauge", "g"));
        let m = e.define(Kind::Meter, key("meter", "m"));
        let gauge = |id| JsValue {
            id,
            json: "1".into(),
            at: 0.0,
        };
        inc(&e, a, 1.0);
        inc(&e, b, 1.0);
        inc(&e, m, 1.0);
        let first = e.close(1.0, vec![gauge(g.id)], Counts::default());
        assert!(first.expired.is_empty());
        let _ = e.shipment(first).encode_text();
        // b and the meter go idle; a is recorded, the gauge registered (a value each close).
        for k in [2.0, 3.0] {
            inc(&e, a, 1.0);
            let closed = e.close(k, vec![gauge(g.id)], Counts::default());
            let ids: Vec<&str> = closed.snapshot.series().map(|(k, _)| &*k.id).collect();
            if k == 2.0 {
                assert!(closed.expired.is_empty(), "one idle interval");
                assert_eq!(ids, ["a", "g", "m"], "a meter is reported while idle");
            } else {
                assert_eq!(closed.expired, [b.id, m.id], "two idle intervals");
                assert_eq!(ids, ["a", "g"]);
            }
            let _ = e.shipment(closed).encode_text();
        }
        assert_eq!(e.live(), 2);
        // A new series takes a freed index and slot (zeroed); the master is told in order:
        // the message after the expiry forgets both, then the next one defines the new key.
        let c = e.define(Kind::Counter, key("inc", "c"));
        assert!([b.id, m.id].contains(&c.id));
        assert!([b.slot, m.slot].contains(&c.slot));
        inc(&e, c, 5.0);
        let closed = e.close(4.0, vec![], Counts::default());
        assert_eq!(
            closed.snapshot.entries[closed.indexes.iter().position(|&i| i == c.id).unwrap()].value,
            Value::Counter {
                count: 1.0,
                total: 5.0
            }
        );
        let message = wire::decode(&e.shipment(closed).encode_text()).unwrap();
        assert!(message.forgotten.is_empty(), "sent with interval 3");
        assert_eq!(
            message.definitions,
            vec![(c.id, key("inc", "c"), Untouched::Counter)]
        );
        // Without expireAfter nothing expires, whatever the idle time.
        let mut keep = Engine::new(profile(false));
        keep.define(Kind::Counter, key("inc", "x"));
        for k in 0..50 {
            assert!(keep
                .close(k as f64, vec![], Counts::default())
                .expired
                .is_empty());
        }
        assert_eq!(keep.live(), 1);
    }

    #[test]
    fn the_message_after_an_expiry_forgets_its_indexes() {
        let mut e = Engine::new(profile(false));
        e.set_expire_after(Some(1));
        let a = e.define(Kind::Counter, key("inc", "a"));
        inc(&e, a, 1.0);
        let closed = e.close(1.0, vec![], Counts::default());
        let _ = e.shipment(closed).encode_text();
        let closed = e.close(2.0, vec![], Counts::default());
        assert_eq!(closed.expired, [a.id]);
        let message = wire::decode(&e.shipment(closed).encode_text()).unwrap();
        assert_eq!(
            (message.forgotten, message.dictionary.serial),
            (vec![a.id], 1)
        );
        // A resync defines what lives, and forgets nothing (the master starts afresh).
        let b = e.define(Kind::Counter, key("inc", "b"));
        inc(&e, b, 1.0);
        e.resync();
        let closed = e.close(3.0, vec![], Counts::default());
        let message = wire::decode(&e.shipment(closed).encode_text()).unwrap();
        assert_eq!(
            message.definitions,
            vec![(b.id, key("inc", "b"), Untouched::Counter)]
        );
        assert!(message.forgotten.is_empty());
    }

    #[test]
    fn persist_reports_empty_states() {
        let mut e = Engine::new(profile(true));
        let c = e.define(Kind::Counter, key("inc", "c"));
        let s = e.define(Kind::Summary, key("timedSample", "s"));
        inc(&e, c, 2.0);
        append(&e, &[s.id as f64, 5.0]);
        assert_eq!(
            e.close(0.0, vec![], Counts::default())
                .snapshot
                .entries
                .len(),
            2
        );
        let snap = e.close(1.0, vec![], Counts::default()).snapshot;
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
    fn persisted_untouched_series_are_left_out_and_put_back_by_the_master() {
        use crate::gather::{Gathering, Source, Tree};
        let mut e = Engine::new(profile(true));
        let counters: Vec<_> = (0..5)
            .map(|i| e.define(Kind::Counter, key("inc", &format!("c{i}"))))
            .collect();
        let s = e.define(Kind::Summary, key("sample", "s"));
        let h = e.define(Kind::Histogram, key("histogram", "h"));
        let r = e.define(Kind::Rate, key("rate", "r"));
        let m = e.define(Kind::Meter, key("meter", "m"));
        let mut g = Gathering::new(profile(true));
        let source = Source::Worker(1);
        // Each interval as the engine closed it (every series), and what went on the wire.
        let ship = |e: &mut Engine, g: &mut Gathering, k: f64| {
            let closed = e.close(k, vec![], Counts::default());
            let all: Vec<Value> = (closed.snapshot.entries.iter())
                .map(|e| e.value.clone())
                .collect();
            let bytes = e.shipment(closed).encode();
            let message = wire::decode_bytes(&bytes);
            let mut registered = Vec::new();
            if let Ok(m) = &message {
                g.register(&source, m, &m.definitions, &mut registered);
            }
            let sent = message.as_ref().map(|m| m.values.len()).unwrap();
            let kept = Some(bytes.clone());
            assert_eq!(
                g.receive_kept(source.clone(), message, registered, k, kept),
                Ok(())
            );
            let d = g.deliver(k, crate::testing::format(1000.0, 1.0, 0.0, &[]));
            let part = d.parts().find(|p| p.from == Tree::Worker(1)).unwrap();
            assert_eq!(
                part.values(),
                all,
                "the master delivers every series, as closed"
            );
            (sent, bytes.len(), d)
        };
        for c in &counters {
            inc(&e, *c, 1.0);
        }
        append(&e, &[s.id as f64, 5.0, h.id as f64, 7.0]);
        assert!(e.observe(r.id, 1.0, 0.0));
        let (sent, first, _) = ship(&mut e, &mut g, 0.0);
        assert_eq!(
            sent, 8,
            "all defined, all sent but the rate (no value yet: left out)"
        );
        // Steady: only the touched series and the meter are sent.
        inc(&e, counters[2], 3.0);
        let (sent, steady, d) = ship(&mut e, &mut g, 1.0);
        assert_eq!(sent, 2, "c2 and the meter");
        assert!(steady < first / 2, "{steady} bytes, first {first}");
        let tree: serde_json::Value =
            serde_json::from_str(&d.tree(&Tree::Worker(1)).unwrap()).unwrap();
        assert_eq!(tree["p"]["c0"]["value"]["val"], 0.0);
        assert_eq!(tree["p"]["s"]["value"]["average"], serde_json::Value::Null);
        // Nothing touched: the meter alone.
        let (sent, ..) = ship(&mut e, &mut g, 2.0);
        assert_eq!(sent, 1, "{m:?}'s");
    }

    #[test]
    fn bad_runs_and_cells_are_rejected_not_applied() {
        let mut e = Engine::new(profile(false));
        let c = e.define(Kind::Counter, key("inc", "c")).id as f64;
        let s = e.define(Kind::Summary, key("sample", "s")).id as f64;
        // Runs naming a counter, no series, a negative, fractional or NaN id: each value is an
        // error, and the runs after them still count.
        let h = RUN_HEADER;
        write(
            &e,
            &[
                h,
                c,
                1.0,
                2.0,
                h,
                9.0,
                1.0,
                h,
                -1.0,
                1.0,
                h,
                0.5,
                1.0,
                h,
                f64::NAN,
                1.0,
                h,
                s,
                2.0,
            ],
        );
        e.drain();
        // A value where a run header should be: the rest of the batch is dropped (one error).
        write(&e, &[5.0, h, s, 3.0]);
        e.drain();
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
        let snap = e.close(0.0, bad_js, Counts::default()).snapshot;
        assert_eq!(snap.counts.errors, 9.0);
        assert_eq!(snap.entries.len(), 1);
        assert!(matches!(&snap.entries[0].value, Value::Summary(x) if x.count == 1.0));
        assert_eq!(
            e.close(1.0, vec![], Counts::default())
                .snapshot
                .counts
                .errors,
            0.0
        );
    }

    #[test]
    fn a_full_batch_ends_at_its_last_cell() {
        let mut e = Engine::new(profile(false));
        let s = e.define(Kind::Summary, key("sample", "s")).id as f64;
        let mut cells = vec![RUN_HEADER, s];
        cells.resize(BATCH_LENGTH, 1.0);
        write(&e, &cells);
        e.drain();
        append(&e, &[s, 2.0]);
        // What a thread's engine does when the thread is terminated: close without JS.
        let snap = e.close(0.0, vec![], Counts::default()).snapshot;
        match &snap.entries[0].value {
            Value::Summary(x) => assert_eq!((x.count, x.max), ((BATCH_LENGTH - 1) as f64, 2.0)),
            v => panic!("{v:?}"),
        }
        assert_eq!(snap.counts.errors, 0.0);
    }

    /// A source handing over fixed values, remembering what it was told to forget.
    #[derive(Debug, Default)]
    struct Fixed {
        values: Vec<Native>,
        dropped: f64,
        forgotten: Arc<std::sync::Mutex<Vec<u32>>>,
    }

    impl Source for Fixed {
        fn collect(&mut self, out: &mut Vec<Native>, counts: &mut Counts) {
            out.extend(self.values.iter().cloned());
            counts.dropped += self.dropped;
        }
        fn forget(&mut self, ids: &[u32]) {
            self.forgotten.lock().unwrap().extend_from_slice(ids);
        }
    }

    #[test]
    fn a_source_hands_its_values_to_each_close_and_js_values_take_precedence() {
        let mut e = Engine::new(profile(false));
        let c = e.define(Kind::Counter, key("inc", "c"));
        let g = e.define(Kind::Gauge, key("gauge", "g"));
        let mine = e.define(Kind::Gauge, key("gauge", "mine"));
        let v = e.define(Kind::Set, key("set", "v"));
        let h = e.define(Kind::Histogram, key("histogram", "h"));
        inc(&e, c, 2.0);
        e.set_source(Some(Box::new(Fixed {
            values: vec![
                Native::Count(c.id, 0.5),
                Native::Gauge(g.id, 1.5),
                Native::Gauge(mine.id, 7.0),
                Native::Set(v.id, 42.0),
                Native::Values {
                    id: h.id,
                    zeros: 3,
                    values: vec![10.0],
                },
                // Wrong kinds, an unknown id: refused, counted as errors.
                Native::Gauge(v.id, 1.0),
                Native::Values {
                    id: g.id,
                    zeros: 1,
                    values: vec![],
                },
                Native::Count(g.id, 1.0),
                Native::Set(99, 1.0),
            ],
            dropped: 2.0,
            forgotten: Arc::default(),
        })));
        let js = vec![JsValue {
            id: mine.id,
            json: "3".into(),
            at: 0.0,
        }];
        let snap = e.close(1.0, js, Counts::default()).snapshot;
        let value = |id: &str| {
            let entry = snap.entries.iter().find(|e| e.key.id == id);
            entry.map(|e| e.value.clone()).unwrap()
        };
        assert_eq!(
            value("c"),
            Value::Counter {
                count: 2.0,
                total: 2.5
            }
        );
        assert_eq!(value("g"), Value::Gauge(Some(1.5)));
        assert_eq!(value("mine"), Value::Gauge(Some(3.0)), "JS's value wins");
        match value("v") {
            Value::Set { json, at } => assert!(json == "42" && at > 0.0),
            v => panic!("{v:?}"),
        }
        match value("h") {
            Value::Histogram(d) => assert_eq!((d.count(), d.sum()), (4, 10.0)),
            v => panic!("{v:?}"),
        }
        assert_eq!((snap.counts.errors, snap.counts.dropped), (4.0, 2.0));
    }

    #[test]
    fn a_replaced_source_leaves_its_counts_and_values_and_expiry_is_told() {
        let mut e = Engine::new(profile(false));
        e.set_expire_after(Some(1));
        let c = e.define(Kind::Counter, key("inc", "c"));
        let g = e.define(Kind::Gauge, key("gauge", "g"));
        let h = e.define(Kind::Histogram, key("histogram", "h"));
        let forgotten = Arc::default();
        e.set_source(Some(Box::new(Fixed {
            values: vec![
                Native::Count(c.id, 1.0),
                Native::Gauge(g.id, 1.0),
                Native::Values {
                    id: h.id,
                    zeros: 1,
                    values: vec![],
                },
            ],
            dropped: 1.0,
            forgotten: Arc::clone(&forgotten),
        })));
        e.set_source(None);
        let snap = e.close(1.0, vec![], Counts::default()).snapshot;
        let ids: Vec<&str> = snap.entries.iter().map(|e| e.key.id.as_str()).collect();
        assert_eq!(
            ids,
            ["c", "h"],
            "counts and values stay; a level belongs to a close"
        );
        assert_eq!(snap.counts.dropped, 1.0);
        // A source that names only the gauge: the counter and histogram expire, and it is told.
        e.set_source(Some(Box::new(Fixed {
            values: vec![Native::Gauge(g.id, 1.0)],
            dropped: 0.0,
            forgotten: Arc::clone(&forgotten),
        })));
        let expired = e.close(2.0, vec![], Counts::default()).expired;
        assert_eq!(expired, [c.id, h.id]);
        assert_eq!(*forgotten.lock().unwrap(), [c.id, h.id]);
    }
}
