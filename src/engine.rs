//! `NativeEngine`: one Panopticon instance's native state: its interval clock cell, its open
//! interval, and the snapshots it gathers (from its cluster workers and its process's threads)
//! or hands on (to its master or its process's main thread).

use std::sync::Arc;
use std::time::Instant;

use napi::bindgen_prelude::{Env, Float64ArraySlice};
use napi_derive::napi;
use panoptic_core::export::own::OwnKind::Gauge;
use panoptic_core::export::Origin;
use panoptic_core::gather::intake::{Intake, COUNT_PATIENCE, DELIVERY_PATIENCE};
use panoptic_core::gather::tree::{render, Format};
use panoptic_core::gather::Source;
use panoptic_core::record::clock;
use panoptic_core::record::engine::{Closed, Engine, JsValue, Kind};
use panoptic_core::record::threads::{self, Host, Inbox};
use panoptic_core::snapshot::{Counts, Profile, SeriesKey, Snapshot};
use panoptic_core::stats::histogram::{
    significant_figures, validate_percentiles, HistogramOptions, OptionsError, Reservoir,
};
use panoptic_core::stats::meter;
#[cfg(any(target_os = "linux", target_os = "android"))]
use panoptic_core::transport::Payload;
use panoptic_core::wire::{encode, Keys};

use crate::delivery::NativeDelivery;
use crate::error::{clock_error, coded, Coded, BAD_OPTIONS, NOT_DELIVERING, NO_INTERVAL, NO_PAGE};
use crate::export::{ExportOptions, ExportStats, Exports, NativeServer, ServeSpec};
use crate::loop_delay::RuntimeSampler;
use crate::memory::{view, Owner};

/// What a series aggregates (the core's `Kind`), as JS names it: `SeriesKind.Counter`, ...
/// A mirror of `Kind` because the core has no napi; the exhaustive `From` below makes a kind added
/// to one and not the other a compile error.
#[napi]
pub enum SeriesKind {
    /// `inc`: counts and sums written by JS into counter pages.
    Counter,
    /// `sample` / `timedSample`: values in batches.
    Summary,
    /// `set`: a JS value, handed over as JSON at each close.
    Set,
    /// A registered logger's leaf, handed over as JSON.
    Custom,
    /// `gauge`: a number JS computes at each close.
    Gauge,
    /// `histogram`: values in batches.
    Histogram,
    /// `rate`: observed one call at a time.
    Rate,
    /// `meter`: counted in counter pages.
    Meter,
}

impl From<SeriesKind> for Kind {
    fn from(kind: SeriesKind) -> Kind {
        match kind {
            SeriesKind::Counter => Kind::Counter,
            SeriesKind::Summary => Kind::Summary,
            SeriesKind::Set => Kind::Set,
            SeriesKind::Custom => Kind::Custom,
            SeriesKind::Gauge => Kind::Gauge,
            SeriesKind::Histogram => Kind::Histogram,
            SeriesKind::Rate => Kind::Rate,
            SeriesKind::Meter => Kind::Meter,
        }
    }
}

/// Where a newly defined series lives.
#[napi(object)]
pub struct SeriesDefinition {
    /// Dense series id (for summaries: the id JS writes into the batch buffer).
    pub id: u32,
    /// For a counter, its first slot across the pages (page = slot / pageSlots).
    pub slot: Option<u32>,
}

/// `options.histogram`: lib/args.js checks the types, the core the ranges (`checkHistogram`).
#[napi(object)]
pub struct HistogramSpec {
    pub significant_figures: f64,
    pub lowest: f64,
    pub highest: f64,
    /// `hdr`, `uniform` or `decaying`.
    pub reservoir: String,
    /// Reported percentiles, 0 to 100.
    pub percentiles: Vec<f64>,
}

impl HistogramSpec {
    fn options(&self) -> Result<(HistogramOptions, Arc<[f64]>), OptionsError> {
        let figures = significant_figures(self.significant_figures)?;
        let reservoir = Reservoir::parse(&self.reservoir)?;
        let options = HistogramOptions::new(figures, self.lowest, self.highest, reservoir)?;
        validate_percentiles(&self.percentiles)?;
        Ok((options, Arc::from(self.percentiles.as_slice())))
    }
}

/// Checks the ranges of `options.histogram`: the message of the `RangeError` to throw (naming
/// `histogram.<field>`), or nothing.
#[napi]
pub fn check_histogram(spec: HistogramSpec) -> Option<String> {
    spec.options().err().map(|e| e.to_string())
}

/// What the JS side counted in an interval (`meta.dropped`, `meta.invalid`, `meta.overflowed`,
/// `meta.errors`).
#[napi(object)]
pub struct IntervalCounts {
    pub dropped: f64,
    pub invalid: f64,
    pub overflowed: f64,
    pub errors: f64,
}

impl From<IntervalCounts> for Counts {
    fn from(c: IntervalCounts) -> Counts {
        Counts {
            dropped: c.dropped,
            invalid: c.invalid,
            overflowed: c.overflowed,
            errors: c.errors,
        }
    }
}

/// What the exports say about the instance they serve.
#[napi(object)]
pub struct ExportOrigin {
    /// The `name` option when it is a string, else "".
    pub name: String,
    /// `JSON.stringify(name)`, as the `'delivery'` event's JSON has it (undefined: no name).
    pub name_json: Option<String>,
    /// The instance id.
    pub id: u32,
    /// `os.hostname()` and `process.title`.
    pub host: String,
    pub title: String,
}

/// A thread instance's link to the main-thread instance of the same name.
struct Feed {
    inbox: Arc<Inbox>,
    label: String,
}

/// One instance's native state.
#[napi]
pub struct NativeEngine {
    engine: Engine,
    intake: Intake,
    closed: Option<Closed>,
    /// The interval JS is recording into (closed by `Drop` if JS disappears first).
    open: f64,
    cell: Option<usize>,
    /// The 5-second grid of this instance's meters (registered with the first meter).
    meter_cell: Option<usize>,
    host: Option<Host>,
    feed: Option<Feed>,
    /// A delivering instance's exports (see `export`).
    exports: Option<Exports>,
    start: f64,
    interval: f64,
    scale_factor: f64,
    percentiles: Arc<[f64]>,
    /// Bytes reported to the JS engine as kept by old deliveries (see `pinned_change`).
    pinned_reported: i64,
    /// The interval a delivery was last tried for and not made, and until when it waits for
    /// workers' messages not merged yet (see `deliver`).
    attempt: Option<(f64, Instant)>,
}

/// What a freed series keeps while a delivery made before it was freed is alive: its key (an
/// 80-byte block; an id of more than 24 bytes has a block of its own, its path is shared) and
/// the registry's slots for its id (~40 bytes, and as much again for the id a new series takes
/// instead of reusing it), with the vectors' slack.
const PINNED_BYTES: usize = 256;

#[napi]
impl NativeEngine {
    /// Registers the grid `start + k * interval` with the clock thread; `open` is the interval
    /// JS starts recording into.
    #[napi(constructor, catch_unwind)]
    pub fn new(
        start: f64,
        interval: f64,
        scale_factor: f64,
        persist: bool,
        histogram: HistogramSpec,
    ) -> Result<Self, Coded> {
        let (histogram, percentiles) =
            (histogram.options()).map_err(|e: OptionsError| coded(BAD_OPTIONS, e.to_string()))?;
        let cell = clock::register(start, interval).map_err(clock_error)?;
        let profile = Profile {
            interval,
            start,
            scale_factor,
            persist,
            histogram,
        };
        Ok(NativeEngine {
            engine: Engine::new(profile),
            intake: Intake::new(profile),
            closed: None,
            open: clock::read(cell),
            cell: Some(cell),
            meter_cell: None,
            host: None,
            feed: None,
            exports: None,
            start,
            interval,
            scale_factor,
            percentiles,
            pinned_reported: 0,
            attempt: None,
        })
    }

    /// The index of this instance's cell in `clockCells()`.
    #[napi(getter)]
    pub fn cell(&self) -> Option<u32> {
        self.cell.map(|c| c as u32)
    }

    /// The interval JS starts recording into (the clock's value when the engine was made).
    #[napi(getter)]
    pub fn open(&self) -> f64 {
        self.open
    }

    /// Adds a series of `kind`.
    #[napi(catch_unwind)]
    pub fn define(
        &mut self,
        kind: SeriesKind,
        method: String,
        path: Vec<String>,
        id: String,
    ) -> Result<SeriesDefinition, Coded> {
        let key = SeriesKey {
            method: method.into(),
            path: path.into(),
            id: id.into(),
        };
        let d = self.engine.define(kind.into(), key);
        Ok(SeriesDefinition {
            id: d.id,
            slot: d.slot,
        })
    }

    /// Counter page `index` as a `Float64Array` over the engine's memory.
    #[napi(catch_unwind)]
    pub fn page<'env>(&self, env: &'env Env, index: u32) -> Result<Float64ArraySlice<'env>, Coded> {
        let page = self
            .engine
            .page(index as usize)
            .ok_or_else(|| coded(NO_PAGE, format!("no counter page {index}")))?;
        view(env, page.as_slice(), Owner::Shared(page.clone()))
    }

    /// The batch buffer as a `Float64Array`: runs of values (a header, -Infinity and the series
    /// id, then the values), then NaN up to its last cell, which is always NaN.
    #[napi(catch_unwind)]
    pub fn batch<'env>(&self, env: &'env Env) -> Result<Float64ArraySlice<'env>, Coded> {
        let batch = self.engine.batch();
        view(env, batch.as_slice(), Owner::Shared(batch.clone()))
    }

    /// The index in `clockCells()` of this instance's 5-second meter grid (registered on the
    /// first call): when it changes, call `tickMeters`.
    #[napi(catch_unwind)]
    pub fn meter_clock(&mut self) -> Result<u32, Coded> {
        let cell = match self.meter_cell {
            Some(cell) => cell,
            None => {
                let cell = clock::register(self.start, meter::TICK_MS).map_err(clock_error)?;
                *self.meter_cell.insert(cell)
            }
        };
        Ok(cell as u32)
    }

    /// Folds the meters' counted events into their moving averages (see `meterClock`).
    #[napi(catch_unwind)]
    pub fn tick_meters(&mut self) {
        self.engine.tick_meters(clock::now_ms());
    }

    /// Observes rate series `id`'s cumulative counter `value` at `now` (epoch ms). False when it
    /// is refused (count it as dropped).
    #[napi(catch_unwind)]
    pub fn observe(&mut self, id: u32, value: f64, now: f64) -> bool {
        self.engine.observe(id, value, now)
    }

    /// Folds the batch's runs into the summaries and distributions and empties it (JS starts
    /// writing at its first cell again).
    #[napi(catch_unwind)]
    pub fn drain(&mut self) {
        self.engine.drain();
    }

    /// Has `sampler` hand the runtime metrics' numbers to every interval that closes (none:
    /// stops; what the previous one held goes into the open interval).
    #[napi]
    pub fn runtime(&mut self, sampler: Option<&RuntimeSampler>) {
        self.engine.set_source(sampler.map(RuntimeSampler::source));
    }

    /// Frees series without data for `n` intervals when an interval closes (`expireAfter`;
    /// undefined: never). lib/args.js checks the option.
    #[napi]
    pub fn set_expire_after(&mut self, n: Option<u32>) {
        self.engine.set_expire_after(n);
        self.intake.with(|g| g.set_expire_after(n));
    }

    /// How many series this process's engine holds (defined and not expired).
    #[napi(getter)]
    pub fn live_series(&self) -> u32 {
        self.engine.live() as u32
    }

    /// A delivering instance: how many series its registry holds (its own, its workers' and
    /// threads'), once what is queued for the intake is in, or after [`COUNT_PATIENCE`] (under
    /// a backlog) as of the last job the intake ran: the JS thread never waits longer.
    #[napi]
    pub fn gathered_series(&self) -> u32 {
        self.intake.series(COUNT_PATIENCE) as u32
    }

    /// Closes interval `k` (JS moves on to interval `next`), taking the JS series' values
    /// (parallel arrays: series id, JSON text, write time) and the interval's counts. The
    /// snapshot is then shipped, kept, posted or rendered with the methods below. Returns the ids
    /// of the series that expired (see `setExpireAfter`): JS forgets them before it records
    /// again, since a new series may take their ids.
    #[napi(catch_unwind)]
    pub fn close_interval(
        &mut self,
        k: f64,
        next: f64,
        js_ids: Vec<u32>,
        js_json: Vec<String>,
        js_at: Vec<f64>,
        counts: IntervalCounts,
    ) -> Vec<u32> {
        let js = js_ids
            .into_iter()
            .zip(js_json)
            .zip(js_at)
            .map(|((id, json), at)| JsValue { id, json, at })
            .collect();
        let closed = self.engine.close(k, js, counts.into());
        let expired = closed.expired.clone();
        self.closed = Some(closed);
        self.open = next;
        expired
    }

    /// The closed interval's tree as JSON text (for 'sample' listeners).
    #[napi(catch_unwind)]
    pub fn closed_tree(&self) -> Result<String, Coded> {
        let closed = &self.closed()?.snapshot;
        let mut out = Vec::new();
        render(closed.series(), true, &self.format(closed.k), &mut out);
        Ok(String::from_utf8(out).expect("the tree writer writes UTF-8"))
    }

    /// A cluster worker: sends the closed interval for the master's instance `key` (series keys
    /// the master has not been sent yet, then values by series index) through the native
    /// transport, encoded and written on its thread; or returns what goes over Node's IPC, as
    /// base64 texts in order: the earlier ones the transport could not write (it went down), and
    /// this one when the transport is not up or some came back (a snapshot never overtakes an
    /// earlier one of the same instance).
    #[napi(catch_unwind)]
    pub fn ship_to(&mut self, key: String) -> Result<Vec<String>, Coded> {
        let closed = self.take_closed()?;
        let shipment = self.engine.shipment(closed);
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            let bounced = crate::transport::take_bounced(&key, false);
            let mut texts: Vec<String> = bounced.iter().map(|(_, p)| p.encode_text()).collect();
            if texts.is_empty() && crate::transport::up() {
                crate::transport::send(key, None, Payload::Shipment(shipment));
            } else {
                texts.push(shipment.encode_text());
            }
            Ok(texts)
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        {
            let _ = key;
            Ok(vec![shipment.encode_text()])
        }
    }

    /// A cluster worker, a quarter interval after each boundary: what goes over Node's IPC for
    /// the master's instance `key`, as `[threadId, base64, threadId, base64, ...]` (threadId ''
    /// for the worker's main thread). First the snapshots the native transport could not write
    /// since the last call (it went down: sent now, in order, they still reach their interval's
    /// delivery), then, when the transport is not up, those its threads posted (self-contained:
    /// threads come and go, and are few next to the series of a process); when it is up, these
    /// go through it.
    #[napi(catch_unwind)]
    pub fn forward_to(&mut self, key: String) -> Vec<String> {
        let mut rest = Vec::new();
        #[cfg(any(target_os = "linux", target_os = "android"))]
        for threads in [false, true] {
            for (thread, payload) in crate::transport::take_bounced(&key, threads) {
                rest.push(thread.map(|t| t.to_string()).unwrap_or_default());
                rest.push(payload.encode_text());
            }
        }
        let Some(host) = &self.host else {
            return rest;
        };
        let (snapshots, _) = host.inbox().take();
        let up = rest.is_empty() && crate::transport::up();
        for (label, snapshot) in snapshots {
            if let Ok(thread) = label.parse::<u32>() {
                if up {
                    #[cfg(any(target_os = "linux", target_os = "android"))]
                    crate::transport::send(key.clone(), Some(thread), Payload::Thread(snapshot));
                    continue;
                }
            }
            let text = encode(&snapshot, Keys::All { epoch: 0 });
            rest.push(label);
            rest.push(text);
        }
        rest
    }

    /// A master: frames of the native transport for instance `key` come to this instance (none
    /// when `key` is absent: it stopped).
    #[napi]
    pub fn route(&self, key: Option<String>) {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        crate::transport::route(key, &self.intake);
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        let _ = key;
    }

    /// A cluster worker whose master asked for it: the next shipped interval defines every key.
    #[napi]
    pub fn resync(&mut self) {
        self.engine.resync();
    }

    /// A master or standalone process: keeps the closed interval until its delivery (handed to
    /// the intake thread: the JS thread does not wait for it).
    #[napi(catch_unwind)]
    pub fn keep(&mut self) -> Result<(), Coded> {
        let closed = self.take_closed()?;
        self.intake.keep_local(closed);
        Ok(())
    }

    /// Main thread: hosts the threads of this process whose instance has this name. False if
    /// another live instance hosts it already.
    #[napi]
    pub fn host_threads(&mut self, name: String) -> bool {
        self.host = threads::host(&name);
        self.host.is_some()
    }

    /// Worker thread: feeds the main-thread instance hosting `name`, labelling snapshots `label`
    /// (the thread id; the host adds its process). False when there is no such host.
    #[napi]
    pub fn feed(&mut self, name: String, label: String) -> bool {
        self.feed = threads::find(&name).map(|inbox| Feed { inbox, label });
        self.feed.is_some()
    }

    /// Worker thread: posts the closed interval to the host. False when the host is gone (the
    /// interval is dropped, and so are later ones).
    #[napi(catch_unwind)]
    pub fn post(&mut self) -> Result<bool, Coded> {
        let snapshot = self.take_closed()?.snapshot;
        Ok(self.post_snapshot(snapshot))
    }

    /// Takes a message from cluster worker `worker` (from its thread `thread` if given) while
    /// this process is in interval `current`; it is decoded and merged off the JS thread (late
    /// ones are counted in `late`, undecodable ones in `decodeErrors`). Returns `takeResyncs()`.
    /// Never throws.
    #[napi(catch_unwind)]
    pub fn receive(
        &mut self,
        worker: u32,
        thread: Option<u32>,
        text: String,
        current: f64,
    ) -> Vec<u32> {
        let source = match thread {
            Some(t) => Source::Thread(format!("{worker}:{t}")),
            None => Source::Worker(worker),
        };
        self.intake.receive(source, text, current);
        self.intake.take_resyncs()
    }

    /// The workers whose messages extended series keys this master lacks (counted in `late`),
    /// since the last call: ask each to resync.
    #[napi]
    pub fn take_resyncs(&mut self) -> Vec<u32> {
        self.intake.take_resyncs()
    }

    /// Forgets what this instance knows of a worker that exited (its series keys, its own
    /// exported series; what it contributed to the cluster's stays).
    #[napi]
    pub fn forget_worker(&mut self, worker: u32) {
        self.intake.forget_worker(worker);
        if let Some(exports) = &self.exports {
            exports.exporter().forget_worker(worker);
        }
    }

    /// A delivering instance: from now on every delivery also goes to the exports (which add
    /// it up off the JS thread), with the instance's export options. Idempotent.
    #[napi]
    pub fn export(&mut self, origin: ExportOrigin, options: ExportOptions) -> Result<(), Coded> {
        if self.exports.is_none() {
            let origin = Origin {
                name: origin.name,
                // Written into /metrics.json as it is: only if it is JSON (it is, from JS).
                name_json: (origin.name_json)
                    .filter(|j| serde_json::from_str::<serde_json::Value>(j).is_ok()),
                id: origin.id,
                host: origin.host,
                title: origin.title,
                pid: std::process::id(),
                interval: self.interval,
                scale_factor: self.scale_factor,
            };
            let exports = Exports::new(origin, options)?;
            let backlog = self.intake.backlog();
            exports.exporter().add_source(Box::new(move |own| {
                let b = backlog();
                let help = "workers' messages the intake thread took and has not merged yet";
                own.add(
                    "intake_backlog_messages",
                    Gauge,
                    help,
                    &[],
                    b.messages as f64,
                );
                let help = "bytes of the workers' snapshots the intake thread has not merged yet";
                own.add("intake_backlog_bytes", Gauge, help, &[], b.bytes as f64);
            }));
            self.exports = Some(exports);
        }
        Ok(())
    }

    /// Starts an HTTP server of the exports (`serve()`; after `export`).
    #[napi]
    pub fn serve(&self, spec: ServeSpec) -> Result<NativeServer, Coded> {
        match &self.exports {
            Some(exports) => exports.serve(spec),
            None => Err(coded(
                NOT_DELIVERING,
                "serve() needs an instance that delivers",
            )),
        }
    }

    /// What the exports did so far (zeros before `export`).
    #[napi]
    pub fn export_stats(&self) -> ExportStats {
        match &self.exports {
            Some(exports) => exports.stats(),
            None => ExportStats {
                deliveries: 0.0,
                influx: None,
                remote_write: None,
                otlp: None,
                own: Vec::new(),
            },
        }
    }

    /// Whether the InfluxDB pusher still has work (after `release`: until it sent what was
    /// queued, or its flush time ran out).
    #[napi]
    pub fn pushing(&self) -> bool {
        self.exports.as_ref().is_some_and(Exports::pushing)
    }

    /// Bounds the series this (delivering) instance holds from its workers (`maxClusterSeries`).
    #[napi]
    pub fn set_max_cluster_series(&mut self, max: u32) {
        self.intake.with(|g| g.set_max_series(max as usize));
    }

    /// Counts a panoptic message that could not be routed to any instance.
    #[napi]
    pub fn note_decode_error(&mut self) {
        self.intake.note_decode_error();
    }

    /// Counts a panoptic message for an instance this process does not have (`meta.unmatched`);
    /// `message` becomes a `PANOPTIC_UNMATCHED` warning of the next delivery the first time
    /// `key` (the sender and the instance it names) is seen.
    #[napi]
    pub fn note_unmatched(&mut self, key: String, message: String) {
        self.intake.note_unmatched(key, message);
    }

    /// Delivers interval `k` (with the snapshots its threads posted) and forgets everything up
    /// to it; or, when that would wait (for the master's own interval, for workers' messages
    /// taken and not merged yet, for the gathering's lock: [`Intake::try_deliver`]), returns
    /// null at once, and the JS thread calls again on a later turn of its event loop.
    #[napi(catch_unwind)]
    pub fn deliver(&mut self, env: Env, k: f64) -> Option<NativeDelivery> {
        let until = match self.attempt {
            Some((of, until)) if of == k => until,
            _ => Instant::now() + DELIVERY_PATIENCE,
        };
        self.attempt = Some((k, until));
        let format = self.format(k);
        let host = self.host.as_ref();
        let (delivery, pinned) = self.intake.try_deliver(until, |g| {
            if let Some(host) = host {
                let (snapshots, lost) = host.inbox().take();
                g.note_late(lost);
                for (label, snapshot) in snapshots {
                    let label = format!("master:{label}");
                    let _ = g.receive_thread(label, snapshot, k + 1.0);
                }
            }
            (g.deliver(k, format), g.pinned_series())
        })?;
        self.attempt = None;
        if let Some(exports) = &self.exports {
            exports.exporter().add(delivery.clone());
        }
        let pinned = self.pinned_change(pinned * PINNED_BYTES);
        Some(NativeDelivery::new(&env, delivery, pinned))
    }

    /// Frees the clock cell and the host name, and stops feeding a host. Idempotent.
    #[napi]
    pub fn release(&mut self, env: Env) {
        // Only a hint for the collector's pacing: failing to give it changes nothing else.
        let _ = env.adjust_external_memory(self.pinned_change(0));
        self.free();
    }
}

impl NativeEngine {
    /// [`NativeEngine::release`] but for the JS engine's accounting (also on drop).
    fn free(&mut self) {
        if let Some(cell) = self.cell.take() {
            clock::unregister(cell);
        }
        if let Some(cell) = self.meter_cell.take() {
            clock::unregister(cell);
        }
        self.host = None;
        self.feed = None;
        #[cfg(any(target_os = "linux", target_os = "android"))]
        crate::transport::route(None, &self.intake);
        if let Some(exports) = &self.exports {
            exports.close();
        }
    }

    /// What to tell the JS engine now that old deliveries keep `bytes` from being freed (the
    /// change since the last report): expired series wait for every delivery made before their
    /// expiry (it may render their keys), and a master whose JS heap barely grows may otherwise
    /// not collect those deliveries for minutes, its registry growing by every series that
    /// churned meanwhile.
    fn pinned_change(&mut self, bytes: usize) -> i64 {
        let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
        let change = bytes - self.pinned_reported;
        self.pinned_reported = bytes;
        change
    }

    fn closed(&self) -> Result<&Closed, Coded> {
        self.closed.as_ref().ok_or_else(no_interval)
    }

    fn take_closed(&mut self) -> Result<Closed, Coded> {
        self.closed.take().ok_or_else(no_interval)
    }

    fn format(&self, k: f64) -> Format {
        Format {
            interval: self.interval,
            scale_factor: self.scale_factor,
            time_stamp: self.start + (k + 1.0) * self.interval,
            percentiles: self.percentiles.clone(),
        }
    }

    fn post_snapshot(&mut self, snapshot: Snapshot) -> bool {
        let posted = self
            .feed
            .as_ref()
            .is_some_and(|feed| feed.inbox.post(feed.label.clone(), snapshot));
        if !posted {
            self.feed = None;
        }
        posted
    }
}

fn no_interval() -> Coded {
    coded(NO_INTERVAL, "no closed interval: call closeInterval first")
}

impl Drop for NativeEngine {
    /// A thread instance whose isolate is torn down without stop() (a terminated worker thread):
    /// its open interval still reaches the host, with everything the engine holds (counters and
    /// samples; `set` and registered-logger values lived in the JS heap).
    fn drop(&mut self) {
        if self.feed.is_some() && self.cell.is_some() {
            let snapshot = self
                .engine
                .close(self.open, Vec::new(), Counts::default())
                .snapshot;
            self.post_snapshot(snapshot);
        }
        self.free();
    }
}
