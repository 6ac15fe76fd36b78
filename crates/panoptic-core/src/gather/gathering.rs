//! The master's side of an instance: its own closed intervals and the snapshots of its workers
//! and threads, merged into the interval's cluster view as each arrives, until that interval is
//! delivered ([`Delivery`]).
//!
//! Work is spread over the interval: a snapshot is decoded and merged when it arrives (its series
//! named by master-wide ids, [`crate::gather::registry`]), so delivering is only handing over what is
//! there; trees are written when someone asks for them ([`Delivery::tree`]).
//!
//! Bounded memory: a snapshot is accepted only for an interval not yet delivered and not beyond
//! the one after the master's current interval, and at most once per worker or thread;
//! delivering interval k drops everything up to k. So at most about two intervals' worth of
//! snapshots are held (and the registry, one entry per series ever seen).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use super::delivery::{Contents, Delivery};
use super::parts::{Meta, Part, Values, Warning};
use super::registry::Registry;
use super::tree::Format;
use crate::bytes::DecodeError;
use crate::snapshot::{Counts, Merged, Profile, SeriesKey, Snapshot, Value};
use crate::stats::histogram::HistogramOptions;
use crate::wire::{decode, Message, Untouched};

/// Why a worker's message was not kept.
#[derive(Debug, Clone, PartialEq)]
pub enum Rejection {
    /// Its interval was already delivered (or skipped): counted in `late`.
    Late,
    /// Undecodable, too far ahead, a series twice, or a second snapshot of one worker for one
    /// interval: counted in `decodeErrors`.
    Decode(DecodeError),
    /// It extends a dictionary this master does not have (it started after the sender, or lost
    /// track): counted in `late`; the sender must send its definitions again.
    Resync,
    /// It was collected on another grid or with other options ([`Profile::offset`]): counted in
    /// `mismatched`, and warned about once per source and difference.
    Mismatch,
}

/// The code of a snapshot left out because its grid or options differ from the master's.
pub const MISMATCH: &str = "PANOPTIC_MISMATCH";
/// The code of series put into an overflow series past a limit.
pub const OVERFLOW: &str = "PANOPTIC_OVERFLOW";
/// The code of a message for an instance name this process does not have (see
/// [`Gathering::note_unmatched`]).
pub const UNMATCHED: &str = "PANOPTIC_UNMATCHED";
/// The code of a connection to the native transport refused (see [`Gathering::note_refused`]).
pub const REFUSED: &str = "PANOPTIC_REFUSED";
/// How many distinct warnings a gathering remembers having given (each is given once); past
/// that, a source that keeps changing is only counted (memory stays bounded).
const WARNED_LIMIT: usize = 1024;

/// Where a snapshot came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Source {
    /// A cluster worker's main thread, by worker id.
    Worker(u32),
    /// A worker thread, labelled `<process>:<threadId>` (process: `master` or a worker id).
    Thread(String),
}

/// A source's series: the master-wide id of each index it sends (see [`crate::wire`]), and which
/// indexes the master put into an overflow series (past [`Gathering::set_max_series`]).
#[derive(Debug)]
struct SourceKeys {
    epoch: u64,
    /// The serial the next message must have ([`crate::wire`]).
    serial: u32,
    /// By index; [`FORGOTTEN`] where the sender expired the series.
    ids: Vec<u32>,
    overflowed: Vec<bool>,
    /// By index: what stands for the series when a message of a persisting sender leaves it out.
    untouched: Vec<Untouched>,
}

/// A source's index whose series the source expired (until a definition takes it again).
const FORGOTTEN: u32 = u32::MAX;

/// The key of `method`'s overflow series: `panoptic.overflow.<method>`, as a recording process
/// names its own (lib/lookup.js).
fn overflow_key(method: &str) -> SeriesKey {
    SeriesKey::new(method, &["panoptic", "overflow"], method)
}

/// Puts back into a message of a persisting sender (entries `indexes`, `values`) the series of
/// its dictionary `dict` that it left out in their empty state ([`Untouched`]): in index order
/// among the sent ones when those are in index order (as an engine sends them: the trees come out
/// as if every series had been sent), else after them. Returns what each entry is: `Sent` (the
/// message's next value) or what was put in; empty when nothing was.
fn put_back(
    dict: &SourceKeys,
    indexes: &mut Vec<u32>,
    values: &mut Vec<Value>,
    histogram: &HistogramOptions,
) -> Vec<Untouched> {
    let n = dict.ids.len();
    let mut sent = vec![false; n];
    for &index in indexes.iter() {
        if let Some(s) = sent.get_mut(index as usize) {
            *s = true;
        }
    }
    let missing =
        |i: usize| !sent[i] && dict.ids[i] != FORGOTTEN && dict.untouched[i] != Untouched::Sent;
    let put = (0..n).filter(|&i| missing(i)).count();
    if put == 0 {
        return Vec::new();
    }
    let in_order = indexes.windows(2).all(|w| w[0] < w[1]);
    let (from, total) = (indexes.len(), indexes.len() + put);
    let mut plan = vec![Untouched::Sent; total];
    if !in_order {
        for i in (0..n).filter(|&i| missing(i)) {
            plan[indexes.len()] = dict.untouched[i];
            indexes.push(i as u32);
            values.extend(dict.untouched[i].value(histogram));
        }
        return plan;
    }
    // Merged from the end, in place: the sent entries move towards the end as the put ones
    // take their places in between.
    indexes.resize(total, 0);
    values.resize_with(total, || Value::Gauge(None));
    let mut put = (0..n).rev().filter(|&i| missing(i)).peekable();
    let mut next = from;
    for w in (0..total).rev() {
        let Some(&i) = put.peek() else { break };
        if next > 0 && indexes[next - 1] as usize > i {
            next -= 1;
            indexes[w] = indexes[next];
            values.swap(w, next);
        } else {
            put.next();
            let untouched = dict.untouched[i];
            indexes[w] = i as u32;
            values[w] = untouched
                .value(histogram)
                .expect("a kind left out has a value");
            plan[w] = untouched;
        }
    }
    plan
}

/// How many recorded values an aggregate holds (1 for those that hold one value).
fn values_in(value: &Value) -> f64 {
    match value {
        Value::Counter { count, .. } => *count,
        Value::Summary(s) => s.count,
        Value::Histogram(d) => d.count() as f64,
        _ => 1.0,
    }
}

/// One interval's parts so far, and their merge.
#[derive(Debug, Default)]
struct Interval {
    local: Option<Part>,
    workers: BTreeMap<u32, Part>,
    threads: BTreeMap<String, Part>,
    merged: Merged,
    /// The first few series left out of a part's tree because another took their place.
    collisions: Vec<String>,
}

impl Interval {
    /// An interval whose cluster view has room for `series`.
    fn with_capacity(series: usize) -> Interval {
        Interval {
            merged: Merged::with_capacity(series),
            ..Interval::default()
        }
    }
}

/// A message's part named by series id, and how its values come from the message's (see
/// [`Gathering::start_naming`]).
pub type Resolved = (Part, Option<Vec<Untouched>>);

/// The work of one slice of expiry ([`Gathering::sweep`]), in series looked at: about a
/// millisecond (1,024 series freed, or 65,536 looked at, or anything between).
const SWEEP_BUDGET: usize = 1 << 16;

/// How many collided series a delivery names (each one is counted in its part's errors).
const NAMED_COLLISIONS: usize = 10;

/// The slot of an interval a part goes to.
enum Slot {
    Local,
    From(Source),
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct Gathering {
    /// The master's own grid and options: a snapshot made with others is not merged.
    profile: Profile,
    registry: Registry,
    pending: BTreeMap<i64, Interval>,
    dictionaries: HashMap<Source, SourceKeys>,
    /// This process's series by their engine's index ([`crate::record::engine::Closed`]): the key (an
    /// index names its series only as long as the key is the same one) and its id. A steady
    /// interval of a million series is then named by indexing, not by hashing a million keys.
    local_ids: Vec<Option<(Arc<SeriesKey>, u32)>>,
    delivered: Option<f64>,
    /// The most series the registry takes (see [`Gathering::set_max_series`]).
    max_series: Option<usize>,
    /// See [`Gathering::set_expire_after`].
    expire_after: Option<u32>,
    late: u64,
    decode_errors: u64,
    mismatched: u64,
    unmatched: u64,
    refused: u64,
    /// Workers that exited ([`Gathering::forget_worker`]; Node never reuses a worker id): a
    /// message of theirs merged after that (the native transport reads on its own threads, so
    /// a dead worker's last frame can come after its exit) is late, and no dictionary is kept
    /// for them again.
    gone: HashSet<u32>,
    /// Warnings not yet delivered, and those ever given (see [`WARNED_LIMIT`]).
    warnings: Vec<Warning>,
    warned: HashSet<String>,
    /// The values of the last message kept as its bytes ([`Gathering::receive_kept`]): the
    /// intake decodes the next one into them ([`Gathering::take_spare`]).
    spare: Vec<Value>,
    /// How many series the last delivered cluster view had: the next one starts with room for
    /// them (growing a buffer of a million values step by step is copies and fresh pages).
    merged_hint: usize,
}

impl Gathering {
    /// A gathering for an instance with `profile` (its grid and options): snapshots of other
    /// grids or options are left out, their histograms included.
    pub fn new(profile: Profile) -> Gathering {
        Gathering {
            profile,
            ..Gathering::default()
        }
    }

    /// Bounds the series this gathering holds (`maxClusterSeries`, whose default lib/args.js
    /// sets; unbounded until then): past it, a worker's new series are merged into their
    /// method's overflow series (`panoptic.overflow.<method>`), counted in its part's
    /// `overflowed` and warned about once per source. A flooding worker cannot grow the master
    /// without bound (the master's own series and its threads' are bounded by their maxSeries).
    pub fn set_max_series(&mut self, max: usize) {
        self.max_series = Some(max);
    }

    /// Frees the series no source holds in its dictionary (their senders expired them, or
    /// exited) that had no data for `n` intervals (None: never): each delivery starts a pass
    /// over the registry, done a slice at a time by [`Gathering::sweep`] (the registry's entry
    /// goes: [`Registry::sweep`]), and the next delivery names them for the exports
    /// ([`Delivery::expired`]).
    pub fn set_expire_after(&mut self, n: Option<u32>) {
        self.expire_after = n;
    }

    /// Goes on freeing the idle series (see [`Gathering::set_expire_after`]) for a slice of about
    /// a millisecond; false once there is nothing left to do until the next delivery. Apart from
    /// the delivery (which only starts a pass) so that the intake thread does it between
    /// messages, never holding a delivery back.
    pub fn sweep(&mut self) -> bool {
        self.registry.sweep(SWEEP_BUDGET)
    }

    /// Whether a pass of expiry is under way ([`Gathering::sweep`] has work).
    pub fn sweeping(&self) -> bool {
        self.registry.sweeping()
    }

    /// How many freed series wait for the deliveries made before they were freed
    /// ([`Registry::pinned`]).
    pub fn pinned_series(&self) -> usize {
        self.registry.pinned()
    }

    /// How many series the registry holds.
    pub fn series(&self) -> usize {
        self.registry.len()
    }

    /// This process's engine expired series `indexes` (the next closed interval's indexes may
    /// name new series).
    pub fn forget_local(&mut self, indexes: &[u32]) {
        for &index in indexes {
            if let Some(place) = self.local_ids.get_mut(index as usize) {
                if let Some((_, id)) = place.take() {
                    self.registry.release(id);
                }
            }
        }
    }

    /// The id of `key` for a source's dictionary, or of its method's overflow series (true) past
    /// the limit.
    fn intern_capped(&mut self, key: &SeriesKey) -> (u32, bool) {
        if let Some(id) = self.registry.id(key) {
            return (id, false);
        }
        if self.max_series.is_none_or(|max| self.registry.len() < max) {
            return (self.registry.intern(key), false);
        }
        (self.registry.intern(&overflow_key(&key.method)), true)
    }

    /// Queues `warning` unless it was given before (`key` names what it is about).
    fn warn(&mut self, key: String, warning: Warning) {
        if self.warned.len() < WARNED_LIMIT && self.warned.insert(key) {
            self.warnings.push(warning);
        }
    }

    /// Where `theirs`'s interval `k` is on this grid; a mismatch is warned about once per source
    /// and difference.
    fn place(
        &mut self,
        source: &Source,
        pid: u32,
        theirs: &Profile,
        k: f64,
    ) -> Result<f64, Rejection> {
        match self.profile.offset(theirs) {
            Ok(offset) => Ok(k + offset),
            Err(differences) => {
                let from = describe_source(source, pid);
                let message = format!(
                    "{from} collects with another interval grid or other options than this instance: {differences}. Its snapshots are left out of every delivery (counted in meta.mismatched). Give both instances the same interval, startTime (or one that differs by a whole number of intervals), scaleFactor, persist and histogram options."
                );
                let key = format!("{MISMATCH} {source:?} {differences}");
                self.warn(
                    key,
                    Warning {
                        code: MISMATCH,
                        message,
                    },
                );
                Err(Rejection::Mismatch)
            }
        }
    }

    /// Counts a message for an instance this process does not have, and queues `message` as a
    /// warning the first time (per `key`: the sender and the instance it names).
    pub fn note_unmatched(&mut self, key: String, message: String) {
        self.unmatched += 1;
        self.warn(
            format!("{UNMATCHED} {key}"),
            Warning {
                code: UNMATCHED,
                message,
            },
        );
    }

    /// Counts a connection to the native transport refused (not a worker of this master), and
    /// queues `message` as a warning the first time.
    pub fn note_refused(&mut self, message: String) {
        self.refused += 1;
        self.warn(
            REFUSED.to_string(),
            Warning {
                code: REFUSED,
                message,
            },
        );
    }

    /// Keeps this process's own snapshot of its interval; `indexes` are its engine's index of
    /// each entry's series ([`crate::record::engine::Closed`]), or empty (every key is then looked up).
    pub fn keep_local(&mut self, snapshot: Snapshot, indexes: &[u32]) {
        let part = self.identify(snapshot, indexes);
        let k = part.k;
        // Its own interval is never late nor ahead, and comes once.
        let _ = self.accept(Slot::Local, part, k);
    }

    /// Takes a message (base64 text of a snapshot) from a worker's main thread or one of its
    /// threads, while the master is in interval `current`.
    pub fn receive(&mut self, source: Source, text: &str, current: f64) -> Result<(), Rejection> {
        self.receive_decoded(source, decode(text), current)
    }

    /// [`Gathering::receive`] of a message decoded beforehand (off any lock).
    pub fn receive_decoded(
        &mut self,
        source: Source,
        message: Result<Message, DecodeError>,
        current: f64,
    ) -> Result<(), Rejection> {
        let mut registered = Vec::new();
        if let Ok(message) = &message {
            self.register(&source, message, &message.definitions, &mut registered);
        }
        self.receive_kept(source, message, registered, current, None)
    }

    /// Gives ids to some of `message`'s new keys (`definitions`, a slice of its definitions,
    /// in order), added to `registered` and held for the source's dictionary; nothing when the
    /// dictionary cannot take the message (it will be refused: [`Rejection::Resync`], or as a
    /// duplicate). Apart from the rest of a
    /// message's handling so that the intake can register a flood of new keys a slice at a
    /// time and let a delivery in between ([`crate::gather::intake`]); the ids then go to
    /// [`Gathering::receive_kept`] (or its steps: [`Gathering::start_registered`]).
    pub fn register(
        &mut self,
        source: &Source,
        message: &Message,
        definitions: &[(u32, SeriesKey, Untouched)],
        registered: &mut Vec<(u32, bool)>,
    ) {
        let dictionary = &message.dictionary;
        let fresh = dictionary.serial == 0;
        let follows = (self.dictionaries.get(source))
            .is_some_and(|dict| dict.epoch == dictionary.epoch && dict.serial == dictionary.serial);
        if (fresh || follows) && !self.gone(source) {
            for (_, key, _) in definitions {
                let (id, overflowed) = self.intern_capped(key);
                // Held from now: a delivery between two slices must not expire it.
                self.registry.hold(id);
                registered.push((id, overflowed));
            }
        }
    }

    /// Whether `source` is a worker that exited, or one of its threads (what it sends now is
    /// late: the transport reads on threads of its own, so a worker's last snapshots can come
    /// after its exit was handled).
    fn gone(&self, source: &Source) -> bool {
        let worker = match source {
            Source::Worker(id) => Some(*id),
            Source::Thread(label) => label.split(':').next().and_then(|w| w.parse().ok()),
        };
        worker.is_some_and(|w| self.gone.contains(&w))
    }

    /// [`Gathering::receive_decoded`] once [`Gathering::register`] has given ids to every one
    /// of the message's definitions (`registered`), of a message decoded from `bytes` if given:
    /// once merged, its part keeps the bytes rather than the decoded values, when they decode
    /// to the part's values as they are (see [`Values`]); the decoded values' buffer is then
    /// kept for the next message ([`Gathering::take_spare`]). The intake takes the same steps
    /// with the lock given up in between: [`Gathering::start_registered`], [`Naming::name`],
    /// [`Gathering::finish_naming`], [`Gathering::accept_resolved`].
    pub fn receive_kept(
        &mut self,
        source: Source,
        message: Result<Message, DecodeError>,
        registered: Vec<(u32, bool)>,
        current: f64,
        bytes: Option<Vec<u8>>,
    ) -> Result<(), Rejection> {
        let resolved = (self.start_registered(&source, message, registered))
            .and_then(|naming| self.finish_naming(&source, naming.name()));
        self.accept_resolved(source, resolved, current, bytes)
    }

    /// The first step of [`Gathering::receive_kept`], under the lock: applies the message to
    /// its source's dictionary ([`Gathering::start_naming`] of a message from a source still
    /// there); then [`Naming::name`] (without the lock) names its entries by series id and
    /// [`Gathering::finish_naming`] (under it) places the part; [`Gathering::accept_resolved`]
    /// merges it, apart so that the intake can hand the lock to a waiting delivery in between (a
    /// part accepted after its interval was delivered is late).
    pub fn start_registered(
        &mut self,
        source: &Source,
        message: Result<Message, DecodeError>,
        registered: Vec<(u32, bool)>,
    ) -> Result<Naming, Rejection> {
        if self.gone(source) {
            return Err(Rejection::Late);
        }
        self.start_naming(source, message.map_err(Rejection::Decode)?, registered)
    }

    /// The second half of [`Gathering::receive_kept`]: merges a resolved part into its
    /// interval (keeping `bytes` for its values where the plan allows), and counts what became
    /// of the message.
    pub fn accept_resolved(
        &mut self,
        source: Source,
        resolved: Result<Resolved, Rejection>,
        current: f64,
        bytes: Option<Vec<u8>>,
    ) -> Result<(), Rejection> {
        let result = resolved.and_then(|(part, plan)| {
            self.accept_kept(Slot::From(source), part, current, bytes.zip(plan))
        });
        self.count(&result);
        result
    }

    /// A buffer to decode the next message's values into (empty; see [`Gathering::receive_kept`]).
    pub fn take_spare(&mut self) -> Vec<Value> {
        std::mem::take(&mut self.spare)
    }

    /// Applies a message's definitions to its source's dictionary (whatever becomes of its data:
    /// the sender counts them as known) and names its entries by series id, in three steps so
    /// that the intake can do the long one (a loop over every definition and entry) without the
    /// lock. This first one, under the lock, checks the message against its source's
    /// dictionary, which it takes out of the gathering until [`Gathering::finish_naming`] (only
    /// the intake thread's jobs, one at a time, touch dictionaries: no other job can look for it
    /// meanwhile).
    pub fn start_naming(
        &mut self,
        source: &Source,
        message: Message,
        registered: Vec<(u32, bool)>,
    ) -> Result<Naming, Rejection> {
        let dictionary = &message.dictionary;
        let mut dict = (self.dictionaries.remove(source)).unwrap_or(SourceKeys {
            epoch: dictionary.epoch,
            serial: 0,
            ids: Vec::new(),
            overflowed: Vec::new(),
            untouched: Vec::new(),
        });
        if dictionary.serial == 0 {
            dict.epoch = dictionary.epoch;
            self.release_all(&dict.ids);
            dict.ids.clear();
            dict.overflowed.clear();
            dict.untouched.clear();
        } else if dict.epoch != dictionary.epoch || dictionary.serial > dict.serial {
            // Another dictionary, or a message missing in between.
            self.dictionaries.insert(source.clone(), dict);
            return Err(Rejection::Resync);
        } else if dictionary.serial < dict.serial {
            // One applied already (a peer sending a message twice): it changes nothing.
            self.dictionaries.insert(source.clone(), dict);
            let e = DecodeError::Invalid("a message of a dictionary sent before");
            return Err(Rejection::Decode(e));
        }
        dict.serial = dictionary.serial.wrapping_add(1).max(1);
        Ok(Naming {
            dict,
            message,
            registered,
            histogram: self.profile.histogram,
        })
    }

    /// The last step of naming a message's entries ([`Gathering::start_naming`]), under the lock:
    /// releases the ids the message let go, keeps its source's dictionary, and places the part
    /// on this grid.
    pub fn finish_naming(&mut self, source: &Source, named: Named) -> Result<Resolved, Rejection> {
        let Named {
            dict,
            released,
            named,
        } = named;
        self.release_all(&released);
        self.keep_dictionary(source, dict);
        let (mut part, theirs, plan, any_mapped) = named.map_err(Rejection::Decode)?;
        if any_mapped {
            let max = self.max_series.unwrap_or(usize::MAX);
            let from = describe_source(source, part.pid);
            let message = format!(
                "{from} sends new series while this master holds maxClusterSeries ({max}) series: they are merged into panoptic.overflow.<method> (counted in meta.overflowed; sums stay exact). A worker recording ids or tags made of request data is the usual cause; or raise maxClusterSeries."
            );
            self.warn(
                format!("PANOPTIC_OVERFLOW {source:?}"),
                Warning {
                    code: OVERFLOW,
                    message,
                },
            );
        }
        // Its definitions are applied above whatever becomes of its data: the sender counts
        // them as known.
        part.k = self.place(source, part.pid, &theirs, part.k)?;
        Ok((part, plan))
    }

    /// Keeps a source's dictionary for its next message. A worker thread's messages are
    /// self-contained (its host forwards them whole), so its dictionary is not kept: a worker
    /// sending under ever new thread labels leaves nothing behind.
    fn keep_dictionary(&mut self, source: &Source, dict: SourceKeys) {
        if matches!(source, Source::Worker(_)) {
            self.dictionaries.insert(source.clone(), dict);
        } else {
            self.release_all(&dict.ids);
        }
    }

    /// A dictionary of these ids goes.
    fn release_all(&mut self, ids: &[u32]) {
        for &id in ids.iter().filter(|&&id| id != FORGOTTEN) {
            self.registry.release(id);
        }
    }

    /// Names a snapshot of this process (its own or a thread's) by series id; `indexes` as in
    /// [`Gathering::keep_local`] (empty for a thread's: its engine's indexes are its own).
    fn identify(&mut self, snapshot: Snapshot, indexes: &[u32]) -> Part {
        let indexed = indexes.len() == snapshot.entries.len();
        let (ids, values) = snapshot
            .entries
            .into_iter()
            .enumerate()
            .map(|(i, entry)| {
                let id = if indexed {
                    self.local_id(indexes[i], entry.key)
                } else {
                    self.registry.intern_shared(&entry.key)
                };
                (id, entry.value)
            })
            .unzip();
        Part {
            k: snapshot.k,
            pid: snapshot.pid,
            counts: snapshot.counts,
            footprint: snapshot.footprint,
            ids,
            values: Values::decoded(values),
        }
    }

    /// The id of this process's series `key`, whose engine index is `index`.
    fn local_id(&mut self, index: u32, key: Arc<SeriesKey>) -> u32 {
        let index = index as usize;
        if let Some(Some((known, id))) = self.local_ids.get(index) {
            if Arc::ptr_eq(known, &key) {
                return *id;
            }
        }
        let id = self.registry.intern_shared(&key);
        if self.local_ids.len() <= index {
            self.local_ids.resize(index + 1, None);
        }
        self.registry.hold(id);
        if let Some((_, old)) = self.local_ids[index].replace((key, id)) {
            self.registry.release(old);
        }
        id
    }

    /// Forgets the dictionaries of a worker that exited (and of its threads); its messages
    /// merged after this are late.
    pub fn forget_worker(&mut self, worker: u32) {
        self.gone.insert(worker);
        let prefix = format!("{worker}:");
        let mut gone = Vec::new();
        self.dictionaries.retain(|source, dict| {
            let keep = match source {
                Source::Worker(id) => *id != worker,
                Source::Thread(label) => !label.starts_with(&prefix),
            };
            if !keep {
                gone.append(&mut dict.ids);
            }
            keep
        });
        self.release_all(&gone);
    }

    /// Takes a snapshot posted by a thread of this process (no decoding: shared memory).
    pub fn receive_thread(
        &mut self,
        label: String,
        snapshot: Snapshot,
        current: f64,
    ) -> Result<(), Rejection> {
        let source = Source::Thread(label);
        let result = self
            .place(&source, snapshot.pid, &snapshot.profile, snapshot.k)
            .and_then(|k| {
                let mut part = self.identify(snapshot, &[]);
                part.k = k;
                self.accept(Slot::From(source), part, current)
            });
        self.count(&result);
        result
    }

    /// Counts snapshots lost before they reached this instance (a full thread inbox, a native
    /// transport connection with too many waiting) as late.
    pub fn note_late(&mut self, n: u64) {
        self.late += n;
    }

    fn count(&mut self, result: &Result<(), Rejection>) {
        match result {
            Err(Rejection::Late | Rejection::Resync) => self.late += 1,
            Err(Rejection::Decode(_)) => self.decode_errors += 1,
            Err(Rejection::Mismatch) => self.mismatched += 1,
            Ok(()) => {}
        }
    }

    /// Merges a part into its interval's cluster view and keeps it for its own tree. Series that
    /// cannot have their place in the part's tree are left out of both, and counted as errors.
    fn accept(&mut self, slot: Slot, part: Part, current: f64) -> Result<(), Rejection> {
        self.accept_kept(slot, part, current, None)
    }

    /// [`Gathering::accept`]; `keep`: the bytes of the message the part's values were decoded
    /// from and how ([`put_back`]'s plan), to keep instead of them once merged
    /// ([`Gathering::receive_kept`]).
    fn accept_kept(
        &mut self,
        slot: Slot,
        mut part: Part,
        current: f64,
        mut keep: Option<(Vec<u8>, Vec<Untouched>)>,
    ) -> Result<(), Rejection> {
        if self.delivered.is_some_and(|d| part.k <= d) {
            return Err(Rejection::Late);
        }
        if part.k > current + 1.0 {
            return Err(Rejection::Decode(DecodeError::Invalid(
                "an interval in the future",
            )));
        }
        let hint = self.merged_hint;
        let interval =
            (self.pending.entry(part.k as i64)).or_insert_with(|| Interval::with_capacity(hint));
        // A second snapshot of one source for one interval: a misbehaving peer; the first stays.
        let taken = match &slot {
            Slot::Local => interval.local.is_some(),
            Slot::From(Source::Worker(id)) => interval.workers.contains_key(id),
            Slot::From(Source::Thread(label)) => interval.threads.contains_key(label),
        };
        if taken {
            return Err(Rejection::Decode(DecodeError::Invalid(
                "a second snapshot of one interval",
            )));
        }
        for i in self.registry.settle(&part.ids).into_iter().rev() {
            // Not the values as sent any more.
            keep = None;
            let id = part.ids.remove(i);
            part.values.get_mut().remove(i);
            part.counts.errors += 1.0;
            self.registry.keys().with(|keys| {
                name_collision(&mut interval.collisions, &keys[id as usize]);
            });
        }
        interval
            .merged
            .add(&part.ids, part.values.get())
            .map_err(|_| Rejection::Decode(DecodeError::Invalid("a series twice")))?;
        self.registry.touch(&part.ids, part.k);
        if let Some((bytes, plan)) = keep {
            let kept = Values::encoded(bytes, plan, part.values.get());
            self.spare = std::mem::replace(&mut part.values, kept).take();
        }
        match slot {
            Slot::Local => interval.local = Some(part),
            Slot::From(Source::Worker(id)) => {
                interval.workers.insert(id, part);
            }
            Slot::From(Source::Thread(label)) => {
                interval.threads.insert(label, part);
            }
        }
        Ok(())
    }

    /// Counts a message that was marked as panoptic's but could not even be routed.
    pub fn note_decode_error(&mut self) {
        self.decode_errors += 1;
    }

    /// Delivers interval `k` and forgets every interval up to `k`. Snapshots of earlier intervals
    /// that were never delivered count as late.
    pub fn deliver(&mut self, k: f64, format: Format) -> Delivery {
        let later = self.pending.split_off(&(k as i64 + 1));
        let mut done = std::mem::replace(&mut self.pending, later);
        let mut interval = done.remove(&(k as i64)).unwrap_or_default();
        // Series of different parts can still want one place in the merged tree.
        let left_out = self.registry.settle(&interval.merged.ids);
        self.registry.keys().with(|keys| {
            for &i in &left_out {
                let id = interval.merged.ids[i] as usize;
                name_collision(&mut interval.collisions, &keys[id]);
            }
        });
        interval.merged.remove(&left_out);
        interval.merged.seal();
        self.merged_hint = interval.merged.ids.len();
        self.late += done
            .values()
            .map(|p| (p.workers.len() + p.threads.len()) as u64)
            .sum::<u64>();
        self.delivered = Some(self.delivered.map_or(k, |d| d.max(k)));
        let parts = || {
            interval
                .local
                .iter()
                .chain(interval.workers.values())
                .chain(interval.threads.values())
        };
        let meta = Meta {
            workers: interval
                .workers
                .iter()
                .map(|(id, s)| (id.to_string(), s.pid))
                .collect(),
            late: std::mem::take(&mut self.late),
            decode_errors: std::mem::take(&mut self.decode_errors),
            mismatched: std::mem::take(&mut self.mismatched),
            unmatched: std::mem::take(&mut self.unmatched),
            refused: std::mem::take(&mut self.refused),
            warnings: std::mem::take(&mut self.warnings),
            counts: parts().fold(
                Counts {
                    errors: left_out.len() as f64,
                    ..Counts::default()
                },
                |mut sum, part| {
                    sum += part.counts;
                    sum
                },
            ),
        };
        // Idle series are freed after the delivery, a slice at a time ([`Gathering::sweep`]);
        // those of the passes that ended since the last delivery go with this one (the exports
        // forget them before they read its series, some of which may have their ids).
        if let Some(n) = self.expire_after {
            self.registry.start_expiry(k, n);
        }
        let expired = self.registry.take_expired();
        Delivery::new(Contents {
            expired,
            format,
            keys: self.registry.keys().clone(),
            local: interval.local,
            workers: interval.workers,
            threads: interval.threads,
            merged: interval.merged,
            meta,
            collisions: interval.collisions,
        })
    }
}

/// A source as a warning names it.
/// A message being named by series id: its source's dictionary, taken out of the gathering
/// ([`Gathering::start_naming`]), with the ids [`Gathering::register`] gave its definitions.
pub struct Naming {
    dict: SourceKeys,
    message: Message,
    registered: Vec<(u32, bool)>,
    /// The master's histogram options (a part's histograms of others cannot merge).
    histogram: HistogramOptions,
}

/// What [`Naming::name`] made of a message, for [`Gathering::finish_naming`]: the dictionary
/// to keep, the ids it let go (released under the lock), and the part (its interval still the
/// sender's, with the sender's profile), its plan, and whether some of its series went into an
/// overflow series.
pub struct Named {
    dict: SourceKeys,
    released: Vec<u32>,
    named: Result<NamedPart, DecodeError>,
}

impl Naming {
    /// The long step of [`Gathering::start_naming`] (for 100,000 new series, tens of milliseconds):
    /// it touches no gathering, so the intake does it without the lock.
    pub fn name(self) -> Named {
        let Naming {
            mut dict,
            message,
            registered,
            histogram,
        } = self;
        let mut released = Vec::new();
        let named = name(&mut dict, &mut released, message, registered, &histogram);
        Named {
            dict,
            released,
            named,
        }
    }
}

/// A named part (its interval the sender's), the sender's profile, the part's plan
/// ([`Resolved`]), and whether some of its series went into an overflow series.
type NamedPart = (Part, Profile, Option<Vec<Untouched>>, bool);

/// See [`Naming::name`]; the ids let go are added to `released`. With the part, how its values come from the
/// message's ([`put_back`]'s plan), or None when they do not (some merged into an overflow
/// series or left out).
fn name(
    dict: &mut SourceKeys,
    released: &mut Vec<u32>,
    message: Message,
    registered: Vec<(u32, bool)>,
    histogram: &HistogramOptions,
) -> Result<NamedPart, DecodeError> {
    let Message {
        k,
        pid,
        mut counts,
        footprint,
        dictionary: _,
        profile,
        forgotten,
        definitions,
        mut indexes,
        mut values,
    } = message;
    // Registered (and held) under the condition checked by start_naming: one id per definition.
    debug_assert_eq!(registered.len(), definitions.len());
    // Expired series first: their indexes may be taken by the definitions that follow.
    for &index in &forgotten {
        match dict.ids.get_mut(index as usize) {
            Some(id) if *id != FORGOTTEN => {
                released.push(*id);
                *id = FORGOTTEN;
            }
            _ => {
                released.extend(registered.iter().map(|&(id, _)| id));
                return Err(DecodeError::Invalid(
                    "a forgotten index not in the dictionary",
                ));
            }
        }
    }
    for (n, (index, _, untouched)) in definitions.iter().enumerate() {
        let (id, overflowed) = registered[n];
        // An index the dictionary has (forgotten or not: the sender's word), or the next one.
        let i = *index as usize;
        if i > dict.ids.len() {
            released.extend(registered[n..].iter().map(|&(id, _)| id));
            return Err(DecodeError::Invalid(
                "a definition past the dictionary's end",
            ));
        }
        if i == dict.ids.len() {
            dict.ids.push(id);
            dict.overflowed.push(overflowed);
            dict.untouched.push(*untouched);
        } else {
            let old = std::mem::replace(&mut dict.ids[i], id);
            if old != FORGOTTEN {
                released.push(old);
            }
            dict.overflowed[i] = overflowed;
            dict.untouched[i] = *untouched;
        }
    }
    // The keys go with the message, off the lock too.
    drop(definitions);
    // A persisting sender's untouched series, left out: put back.
    let plan = if profile.persist {
        put_back(dict, &mut indexes, &mut values, &profile.histogram)
    } else {
        Vec::new()
    };
    // The indexes become ids in place; values of series put into overflow are counted.
    let (mut mapped, mut any_mapped) = (0.0, false);
    for (index, value) in indexes.iter_mut().zip(&values) {
        let i = *index as usize;
        let Some(&id) = dict.ids.get(i).filter(|&&id| id != FORGOTTEN) else {
            return Err(DecodeError::Invalid("an index not in the dictionary"));
        };
        if dict.overflowed[i] {
            mapped += values_in(value);
            any_mapped = true;
        }
        *index = id;
    }
    if any_mapped {
        // Several series in one overflow series: merged within the part first.
        let mut merged = Merged::default();
        for (id, value) in indexes.iter().zip(&values) {
            let _ = merged.add(&[*id], std::slice::from_ref(value));
        }
        (indexes, values) = (merged.ids, merged.values);
        counts.overflowed += mapped;
    }
    // A histogram made with other options than its profile says (a hostile peer) cannot
    // merge, and the memory it would take is not the master's to give: left out, counted.
    let foreign = |v: &Value| matches!(v, Value::Histogram(d) if d.options() != histogram);
    let any_foreign = values.iter().any(foreign);
    if any_foreign {
        let mut kept = (Vec::new(), Vec::new());
        for (id, value) in indexes.into_iter().zip(values) {
            if foreign(&value) {
                counts.errors += 1.0;
            } else {
                kept.0.push(id);
                kept.1.push(value);
            }
        }
        (indexes, values) = kept;
    }
    let part = Part {
        k,
        pid,
        counts,
        footprint,
        ids: indexes,
        values: Values::decoded(values),
    };
    let plan = (!any_mapped && !any_foreign).then_some(plan);
    Ok((part, profile, plan, any_mapped))
}

fn describe_source(source: &Source, pid: u32) -> String {
    match source {
        Source::Worker(id) => format!("cluster worker {id} (pid {pid})"),
        Source::Thread(label) => match label.split_once(':') {
            Some(("master", thread)) => format!("worker thread {thread} of this process"),
            Some((worker, thread)) => {
                format!("worker thread {thread} of cluster worker {worker} (pid {pid})")
            }
            None => format!("worker thread {label}"),
        },
    }
}

/// Names a series left out of a tree, if the delivery names fewer than [`NAMED_COLLISIONS`].
fn name_collision(named: &mut Vec<String>, key: &SeriesKey) {
    if named.len() < NAMED_COLLISIONS {
        named.push(format!(
            "\"{}\" at path {:?} id {:?}",
            key.method, key.path, key.id
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gather::Tree;
    use crate::snapshot::{Entry, SeriesKey, Value};

    use crate::wire::{encode, Dictionary, Keys};
    use std::sync::Arc;

    use crate::testing::{counter, key, summary};

    fn format() -> Format {
        crate::testing::format(100.0, 1.0, 500.0, &[50.0])
    }

    /// Interval `k` of process `pid`, its series under the path `p`, one data point dropped.
    fn snap(k: f64, pid: u32, entries: Vec<(&str, &str, Value)>) -> Snapshot {
        let series =
            (entries.into_iter()).map(|(method, id, value)| (key(method, &["p"], id), value));
        let mut snapshot = crate::testing::snapshot(k, pid, series);
        snapshot.counts.dropped = 1.0;
        snapshot
    }

    /// A self-contained message (every key defined).
    fn enc(s: &Snapshot) -> String {
        encode(s, Keys::All { epoch: 1 })
    }

    #[test]
    fn a_message_of_a_worker_that_exited_is_late_and_keeps_no_dictionary() {
        let mut g = Gathering::default();
        let s = snap(4.0, 7, vec![("inc", "n", crate::testing::counter(1.0))]);
        g.forget_worker(3);
        let late = g.receive(Source::Worker(3), &enc(&s), 4.0);
        assert!(matches!(late, Err(Rejection::Late)));
        let thread = g.receive(Source::Thread("3:1".into()), &enc(&s), 4.0);
        assert!(matches!(thread, Err(Rejection::Late)));
        assert!(g.dictionaries.is_empty());
        // Other workers, and the master's threads, are not affected.
        g.receive(Source::Worker(4), &enc(&s), 4.0).unwrap();
        g.receive(Source::Thread("master:3".into()), &enc(&s), 4.0)
            .unwrap();
        let d = g.deliver(4.0, crate::testing::format(100.0, 1.0, 500.0, &[]));
        assert_eq!((d.meta().late, d.meta().workers.len()), (2, 1));
    }

    /// A message in dictionary `epoch` (its `serial`th), defining `definitions` by index after
    /// forgetting `forgotten`.
    fn delta_forgetting(
        s: &Snapshot,
        indexes: &[u32],
        definitions: &[(u32, &SeriesKey)],
        forgotten: &[u32],
        (epoch, serial): (u64, u32),
    ) -> String {
        let dictionary = Dictionary { epoch, serial };
        let definitions: Vec<_> = (definitions.iter())
            .map(|&(i, k)| (i, k, Untouched::Sent))
            .collect();
        encode(
            s,
            Keys::Delta {
                indexes,
                definitions: &definitions,
                forgotten,
                dictionary,
            },
        )
    }

    /// As delta_forgetting, defining `definitions` at indexes 0, 1, ... and forgetting nothing.
    fn delta(
        s: &Snapshot,
        indexes: &[u32],
        definitions: &[&SeriesKey],
        epoch: u64,
        serial: u32,
    ) -> String {
        let definitions: Vec<(u32, &SeriesKey)> = (definitions.iter().enumerate())
            .map(|(i, k)| (i as u32, *k))
            .collect();
        delta_forgetting(s, indexes, &definitions, &[], (epoch, serial))
    }

    fn parse(text: &str) -> serde_json::Value {
        serde_json::from_str(text).unwrap()
    }

    /// Every tree of a delivery and its outline, as one JSON value.
    fn everything(d: Delivery) -> serde_json::Value {
        let mut all = parse(&d.outline());
        let tree = |which: Tree| {
            d.tree(&which)
                .map_or(serde_json::Value::Null, |text| parse(&text))
        };
        let mut workers = serde_json::Map::new();
        for id in all["workers"].as_array().unwrap() {
            let id = id.as_u64().unwrap() as u32;
            workers.insert(id.to_string(), tree(Tree::Worker(id)));
        }
        let mut threads = serde_json::Map::new();
        for label in all["threads"].as_array().unwrap() {
            let label = label.as_str().unwrap().to_string();
            threads.insert(label.clone(), tree(Tree::Thread(label)));
        }
        all["master"] = tree(Tree::Master);
        all["workers"] = workers.into();
        all["threads"] = threads.into();
        all["cluster"] = tree(Tree::Cluster);
        all
    }

    #[test]
    fn names_local_series_by_engine_index_only_while_the_key_is_the_same() {
        let key = |id: &str| Arc::new(SeriesKey::new("inc", &["p"], id));
        let (a, b) = (key("a"), key("b"));
        let entries = |series: &[(&Arc<SeriesKey>, f64)]| Snapshot {
            entries: series
                .iter()
                .map(|&(key, total)| Entry {
                    key: key.clone(),
                    value: counter(total),
                })
                .collect(),
            ..Snapshot::default()
        };
        let mut g = Gathering::default();
        let mut master = |k: f64, snapshot: Snapshot, indexes: &[u32]| {
            g.keep_local(Snapshot { k, ..snapshot }, indexes);
            everything(g.deliver(k, format()))["master"]["p"].clone()
        };
        let d = master(1.0, entries(&[(&a, 1.0), (&b, 2.0)]), &[0, 1]);
        assert_eq!(
            (
                d["a"]["value"]["val"].clone(),
                d["b"]["value"]["val"].clone()
            ),
            (0.01.into(), 0.02.into())
        );
        // A later interval names them by index.
        let d = master(2.0, entries(&[(&b, 5.0)]), &[1]);
        assert_eq!(
            (d.get("a"), d["b"]["value"]["val"].clone()),
            (None, 0.05.into())
        );
        // An index given with another key (another engine's) names that key's series, and an
        // equal key in another Arc is the same series.
        let (c, b_again) = (key("c"), key("b"));
        let d = master(3.0, entries(&[(&c, 7.0), (&b_again, 3.0)]), &[1, 0]);
        assert_eq!(
            (
                d["c"]["value"]["val"].clone(),
                d["b"]["value"]["val"].clone()
            ),
            (0.07.into(), 0.03.into())
        );
        let d = master(4.0, entries(&[(&a, 4.0)]), &[]);
        assert_eq!(d["a"]["value"]["val"], 0.04);
        assert_eq!(g.registry.keys().with(|keys| keys.len()), 3);
    }

    #[test]
    fn merges_master_and_workers_of_one_interval() {
        let mut g = Gathering::default();
        g.keep_local(
            snap(
                4.0,
                10,
                vec![
                    ("inc", "c", counter(2.0)),
                    ("sample", "s", summary(&[1.0, 2.0])),
                ],
            ),
            &[],
        );
        let w1 = snap(
            4.0,
            11,
            vec![
                ("inc", "c", counter(3.0)),
                ("sample", "s", summary(&[3.0, 10.0])),
            ],
        );
        let w2 = snap(
            4.0,
            12,
            vec![(
                "max",
                "m",
                Value::Custom {
                    json: "{\"v\":1}".into(),
                },
            )],
        );
        assert_eq!(g.receive(Source::Worker(1), &enc(&w1), 4.0), Ok(()));
        assert_eq!(g.receive(Source::Worker(2), &enc(&w2), 4.0), Ok(()));
        let d = everything(g.deliver(4.0, format()));
        assert_eq!(d["master"]["p"]["c"]["value"]["val"], 0.02);
        assert_eq!(d["workers"]["1"]["p"]["c"]["value"]["val"], 0.03);
        assert_eq!(d["workers"]["2"]["p"]["m"]["v"], 1);
        assert_eq!(d["cluster"]["p"]["c"]["value"]["val"], 0.05);
        let s = &d["cluster"]["p"]["s"]["value"];
        assert_eq!(
            (s["min"].as_f64(), s["max"].as_f64()),
            (Some(1.0), Some(10.0))
        );
        assert_eq!(s["average"], 4.0);
        assert!(
            d["cluster"]["p"].get("m").is_none(),
            "custom leaves merge in JS"
        );
        assert_eq!(d["custom"][0]["leaves"], serde_json::json!([{ "v": 1 }]));
        assert_eq!(
            d["meta"],
            serde_json::json!({ "workers": { "1": 11, "2": 12 }, "late": 0, "decodeErrors": 0, "mismatched": 0, "unmatched": 0, "refused": 0, "dropped": 3.0, "invalid": 0.0, "overflowed": 0.0, "errors": 0.0 })
        );
    }

    #[test]
    fn threads_appear_once_under_their_label_and_in_the_cluster() {
        let mut g = Gathering::default();
        g.keep_local(snap(2.0, 10, vec![("inc", "c", counter(1.0))]), &[]);
        let t = snap(2.0, 10, vec![("inc", "c", counter(4.0))]);
        assert_eq!(g.receive_thread("master:3".into(), t.clone(), 2.0), Ok(()));
        assert!(g.receive_thread("master:3".into(), t.clone(), 2.0).is_err());
        assert_eq!(
            g.receive(Source::Thread("1:2".into()), &enc(&t), 2.0),
            Ok(())
        );
        g.note_late(2);
        let d = everything(g.deliver(2.0, format()));
        assert_eq!(d["master"]["p"]["c"]["value"]["val"], 0.01);
        assert_eq!(d["threads"]["master:3"]["p"]["c"]["value"]["val"], 0.04);
        assert_eq!(d["threads"]["1:2"]["p"]["c"]["value"]["val"], 0.04);
        assert_eq!(d["cluster"]["p"]["c"]["value"]["val"], 0.09);
        assert_eq!(d["meta"]["late"], 2);
        assert_eq!(d["meta"]["decodeErrors"], 1);
    }

    #[test]
    fn snapshots_on_the_same_grid_merge_whatever_their_start_time() {
        // The master starts from a boundary of its own (k counts from there), a thread and a
        // worker from the epoch: the same instants, other interval numbers.
        let ours = Profile {
            interval: 400.0,
            start: 1_765_000_000_000.0,
            ..Profile::default()
        };
        let theirs = Profile { start: 0.0, ..ours };
        let steps = ours.start / ours.interval;
        let mut g = Gathering::new(ours);
        let at = |k: f64, total: f64| Snapshot {
            profile: theirs,
            ..snap(k + steps, 10, vec![("inc", "c", counter(total))])
        };
        assert_eq!(
            g.receive_thread("master:3".into(), at(5.0, 2.0), 5.0),
            Ok(())
        );
        assert_eq!(
            g.receive(Source::Worker(1), &enc(&at(5.0, 3.0)), 5.0),
            Ok(())
        );
        let d = everything(g.deliver(5.0, format()));
        assert_eq!(d["cluster"]["p"]["c"]["value"]["val"], 0.05);
        assert_eq!(d["meta"]["mismatched"], 0);
        assert_eq!(d["warnings"], serde_json::json!([]));
    }

    #[test]
    fn mismatched_snapshots_are_counted_and_warned_about_once_per_source() {
        let ours = Profile {
            interval: 1000.0,
            ..Profile::default()
        };
        let mut g = Gathering::new(ours);
        let other = |profile: Profile, k: f64| Snapshot {
            profile,
            ..snap(k, 77, vec![("inc", "c", counter(1.0))])
        };
        let half = Profile {
            interval: 500.0,
            ..ours
        };
        let shifted = Profile {
            start: 250.0,
            ..ours
        };
        let seconds = Profile {
            scale_factor: 1000.0,
            ..ours
        };
        for k in [1.0, 2.0] {
            let mismatch = Err(Rejection::Mismatch);
            assert_eq!(
                g.receive(Source::Worker(1), &enc(&other(half, k)), 1.0),
                mismatch
            );
            assert_eq!(
                g.receive(Source::Worker(2), &enc(&other(shifted, k)), 1.0),
                mismatch
            );
            assert_eq!(
                g.receive_thread("master:4".into(), other(seconds, k), 1.0),
                mismatch
            );
        }
        g.note_unmatched("1 name:webb".into(), "named webb".into());
        g.note_unmatched("1 name:webb".into(), "named webb".into());
        let d = g.deliver(1.0, format());
        let outline = parse(&d.outline());
        assert_eq!(outline["meta"]["mismatched"], 6);
        assert_eq!(outline["meta"]["unmatched"], 2);
        assert_eq!(outline["meta"]["decodeErrors"], 0);
        let warnings = outline["warnings"].as_array().unwrap();
        let text: Vec<(&str, &str)> = warnings
            .iter()
            .map(|w| (w["code"].as_str().unwrap(), w["message"].as_str().unwrap()))
            .collect();
        assert_eq!(text.len(), 4, "{text:?}");
        assert!(text[0].0 == MISMATCH && text[0].1.starts_with("cluster worker 1 (pid 77)"));
        assert!(
            text[0].1.contains("interval 500 (here 1000)"),
            "{}",
            text[0].1
        );
        assert!(
            text[1].1.contains("startTime 250 (here 0)"),
            "{}",
            text[1].1
        );
        assert!(text[2].1.starts_with("worker thread 4 of this process"));
        assert!(
            text[2].1.contains("scaleFactor 1000 (here 1)"),
            "{}",
            text[2].1
        );
        assert_eq!(text[3], (UNMATCHED, "named webb"));
        // Once per source and difference: the next delivery counts, and says nothing new.
        g.receive(Source::Worker(1), &enc(&other(half, 3.0)), 2.0)
            .unwrap_err();
        let outline = parse(&g.deliver(2.0, format()).outline());
        assert_eq!(outline["meta"]["mismatched"], 1);
        assert_eq!(outline["warnings"], serde_json::json!([]));
    }

    #[test]
    fn past_max_series_a_workers_new_series_merge_into_overflow() {
        let mut g = Gathering::default();
        g.set_max_series(3);
        g.keep_local(snap(1.0, 10, vec![("inc", "mine", counter(1.0))]), &[]);
        let flood = |first: usize| {
            let entries: Vec<_> = (first..first + 4)
                .map(|i| ("inc", format!("id{i}"), counter(i as f64)))
                .collect();
            let entries = entries
                .iter()
                .map(|(m, id, v)| (*m, id.as_str(), v.clone()));
            snap(1.0, 11, entries.collect())
        };
        assert_eq!(g.receive(Source::Worker(1), &enc(&flood(0)), 1.0), Ok(()));
        let delivery = g.deliver(1.0, format());
        let warnings = parse(&delivery.outline())["warnings"].clone();
        assert_eq!(warnings[0]["code"], OVERFLOW);
        assert!(warnings[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("cluster worker 1 (pid 11) sends new series while this master holds maxClusterSeries (3) series"));
        let d = everything(delivery);
        // Room for two of the worker's series; the other two are one overflow series.
        let worker = &d["workers"]["1"];
        assert_eq!(worker["p"]["id0"]["value"]["val"], 0.0);
        assert_eq!(worker["p"]["id1"]["value"]["val"], 0.01);
        assert_eq!(worker["p"]["id2"], serde_json::Value::Null);
        let overflow = &worker["panoptic"]["overflow"]["inc"]["value"]["val"];
        assert_eq!(overflow.as_f64().unwrap(), 0.05, "2 + 3: sums stay exact");
        assert_eq!(
            d["meta"]["overflowed"], 2.0,
            "one call in each series put into overflow"
        );
        let warnings = parse(&g.deliver(2.0, format()).outline())["warnings"].clone();
        assert_eq!(
            warnings,
            serde_json::json!([]),
            "warned in the first delivery"
        );
    }

    #[test]
    fn threads_leave_no_dictionary_behind() {
        let mut g = Gathering::default();
        for label in 0..100 {
            let t = snap(1.0, 11, vec![("inc", "c", counter(1.0))]);
            let source = Source::Thread(format!("1:{label}"));
            assert_eq!(g.receive(source, &enc(&t), 1.0), Ok(()));
        }
        assert!(g.dictionaries.is_empty());
        let d = everything(g.deliver(1.0, format()));
        assert_eq!(d["threads"].as_object().unwrap().len(), 100);
    }

    #[test]
    fn late_future_duplicate_and_garbage_are_counted_not_merged() {
        let mut g = Gathering::default();
        g.keep_local(snap(4.0, 10, vec![]), &[]);
        assert_eq!(
            g.receive(Source::Worker(1), "garbage", 4.0),
            Err(Rejection::Decode(DecodeError::Text))
        );
        assert!(matches!(
            g.receive(Source::Worker(1), &enc(&snap(9.0, 11, vec![])), 4.0),
            Err(Rejection::Decode(_))
        ));
        assert_eq!(
            g.receive(
                Source::Worker(1),
                &enc(&snap(5.0, 11, vec![("inc", "c", counter(7.0))])),
                4.0
            ),
            Ok(())
        );
        assert!(matches!(
            g.receive(Source::Worker(1), &enc(&snap(5.0, 11, vec![])), 4.0),
            Err(Rejection::Decode(_))
        ));
        g.note_decode_error();
        let d = everything(g.deliver(4.0, format()));
        assert_eq!(d["meta"]["decodeErrors"], 4);
        assert_eq!(d["workers"], serde_json::json!({}));
        // Interval 4 is delivered: a batch for it is late, and never lands in interval 5.
        assert_eq!(
            g.receive(
                Source::Worker(2),
                &enc(&snap(4.0, 12, vec![("inc", "c", counter(1.0))])),
                5.0
            ),
            Err(Rejection::Late)
        );
        let d5 = everything(g.deliver(5.0, format()));
        assert_eq!(d5["master"], serde_json::Value::Null);
        assert_eq!(d5["cluster"]["p"]["c"]["value"]["val"], 0.07);
        assert_eq!(d5["meta"]["late"], 1);
        assert_eq!(
            d5["meta"]["decodeErrors"], 0,
            "counts reset after each delivery"
        );
    }

    #[test]
    fn skipped_intervals_count_as_late_and_are_freed() {
        let mut g = Gathering::default();
        g.receive(Source::Worker(1), &enc(&snap(3.0, 11, vec![])), 4.0)
            .unwrap();
        g.receive(Source::Worker(2), &enc(&snap(4.0, 12, vec![])), 4.0)
            .unwrap();
        let d = everything(g.deliver(4.0, format()));
        assert_eq!(d["meta"]["late"], 1);
        assert_eq!(d["meta"]["workers"], serde_json::json!({ "2": 12 }));
        assert!(g.pending.is_empty());
    }

    #[test]
    fn collisions_are_counted_and_named() {
        let mut g = Gathering::default();
        let mut s = snap(1.0, 10, vec![("inc", "c", counter(1.0))]);
        s.entries.push(Entry {
            key: Arc::new(SeriesKey {
                method: "sample".into(),
                path: vec!["p".into()].into(),
                id: "c".into(),
            }),
            value: summary(&[1.0]),
        });
        g.keep_local(s, &[]);
        let d = everything(g.deliver(1.0, format()));
        assert_eq!(d["meta"]["errors"], 1.0);
        assert_eq!(d["collisions"][0], "\"sample\" at path [\"p\"] id \"c\"");
    }

    #[test]
    fn histograms_add_up_and_foreign_ones_are_left_out() {
        use crate::stats::histogram::{Distribution, HistogramOptions, Reservoir};
        let hist = |options: &HistogramOptions, values: &[f64]| {
            let mut d = Distribution::new(options, 1);
            values.iter().for_each(|&v| d.record(v, 0.0));
            Value::Histogram(Box::new(d))
        };
        let ours = HistogramOptions::default();
        let theirs = HistogramOptions::new(2, 1.0, 1000.0, Reservoir::Hdr).unwrap();
        let mut g = Gathering::default();
        let w = |v| snap(1.0, 11, vec![("histogram", "h", v)]);
        for (id, values) in [(1, &[1.0, 2.0][..]), (2, &[3.0, 4.0][..])] {
            let message = enc(&w(hist(&ours, values)));
            assert_eq!(g.receive(Source::Worker(id), &message, 1.0), Ok(()));
        }
        let foreign = enc(&w(hist(&theirs, &[100.0])));
        assert_eq!(g.receive(Source::Worker(3), &foreign, 1.0), Ok(()));
        let d = everything(g.deliver(1.0, format()));
        let cluster = &d["cluster"]["p"]["h"]["value"];
        assert_eq!(
            (cluster["count"].as_f64(), cluster["p50"].as_f64()),
            (Some(4.0), Some(2.0))
        );
        assert_eq!(d["workers"]["3"], serde_json::json!({}), "left out");
        assert_eq!(d["meta"]["errors"], 1.0);
    }

    #[test]
    fn collisions_only_between_series_of_one_tree() {
        let at = |k: f64, path: &[&str], id: &str| Snapshot {
            k,
            pid: 11,
            entries: vec![Entry {
                key: Arc::new(SeriesKey {
                    method: "inc".into(),
                    path: path.iter().map(|p| p.to_string()).collect(),
                    id: id.into(),
                }),
                value: counter(1.0),
            }],
            ..Snapshot::default()
        };
        let mut g = Gathering::default();
        // Two workers, a leaf a/b and a branch a/b: each worker's tree is whole; the merged tree
        // keeps the series the master learned of first.
        assert_eq!(
            g.receive(Source::Worker(1), &enc(&at(1.0, &["a"], "b")), 1.0),
            Ok(())
        );
        assert_eq!(
            g.receive(Source::Worker(2), &enc(&at(1.0, &["a", "b"], "c")), 1.0),
            Ok(())
        );
        let d = everything(g.deliver(1.0, format()));
        assert_eq!(d["workers"]["2"]["a"]["b"]["c"]["type"], "inc");
        assert_eq!(d["cluster"]["a"]["b"]["type"], "inc");
        assert_eq!(d["meta"]["errors"], 1.0);
        assert_eq!(d["collisions"].as_array().unwrap().len(), 1);
        // In another interval with only the branch, nothing collides.
        assert_eq!(
            g.receive(Source::Worker(2), &enc(&at(2.0, &["a", "b"], "c")), 2.0),
            Ok(())
        );
        let d2 = everything(g.deliver(2.0, format()));
        assert_eq!(d2["cluster"]["a"]["b"]["c"]["type"], "inc");
        assert_eq!(d2["meta"]["errors"], 0.0);
    }

    #[test]
    fn dictionaries_turn_indexes_into_keys_and_ask_for_a_resync_when_lost() {
        let mut g = Gathering::default();
        let s = snap(
            1.0,
            11,
            vec![("inc", "a", counter(1.0)), ("inc", "b", counter(2.0))],
        );
        let keys: Vec<&SeriesKey> = s.entries.iter().map(|e| &*e.key).collect();
        // The first message defines both keys; the next ones send indexes only.
        let first = delta(&s, &[0, 1], &keys, 9, 0);
        assert_eq!(g.receive(Source::Worker(1), &first, 1.0), Ok(()));
        let mut s2 = s.clone();
        s2.k = 2.0;
        s2.entries.reverse();
        let steady = delta(&s2, &[1, 0], &[], 9, 1);
        assert_eq!(g.receive(Source::Worker(1), &steady, 2.0), Ok(()));
        let d = everything(g.deliver(2.0, format()));
        assert_eq!(d["workers"]["1"]["p"]["b"]["value"]["val"], 0.02);
        assert_eq!(d["meta"]["late"], 1, "interval 1 was never delivered");
        // Another worker, or a dictionary this master never saw: a resync, counted as late.
        let mut s3 = s.clone();
        s3.k = 3.0;
        assert_eq!(
            g.receive(Source::Worker(2), &delta(&s3, &[0, 1], &[], 9, 2), 3.0),
            Err(Rejection::Resync)
        );
        assert_eq!(
            g.receive(Source::Worker(1), &delta(&s3, &[0, 1], &[], 5, 2), 3.0),
            Err(Rejection::Resync)
        );
        // A message lost in between (serial 3 after 1): a resync. One sent again: malformed.
        assert_eq!(
            g.receive(Source::Worker(1), &delta(&s3, &[0, 1], &[], 9, 3), 3.0),
            Err(Rejection::Resync)
        );
        assert!(matches!(
            g.receive(Source::Worker(1), &steady, 3.0),
            Err(Rejection::Decode(_))
        ));
        // A series twice in one message: refused whole.
        assert_eq!(
            g.receive(Source::Worker(1), &delta(&s3, &[1, 1], &[], 9, 2), 3.0),
            Err(Rejection::Decode(DecodeError::Invalid("a series twice")))
        );
        // An index beyond the dictionary from a known source: malformed.
        assert!(matches!(
            g.receive(Source::Worker(1), &delta(&s3, &[0, 7], &[], 9, 3), 3.0),
            Err(Rejection::Decode(_))
        ));
        g.forget_worker(1);
        assert_eq!(
            g.receive(Source::Worker(1), &delta(&s3, &[0, 1], &[], 9, 4), 3.0),
            Err(Rejection::Late),
            "a worker that exited"
        );
        let d3 = everything(g.deliver(3.0, format()));
        assert_eq!(d3["meta"]["late"], 4);
        assert_eq!(d3["meta"]["decodeErrors"], 3);
    }

    #[test]
    fn left_out_series_are_put_back_in_index_order_or_after_the_sent_ones() {
        let dict = SourceKeys {
            epoch: 1,
            serial: 1,
            ids: vec![10, 11, 12, FORGOTTEN, 14, 15],
            overflowed: vec![false; 6],
            untouched: vec![
                Untouched::Counter,
                Untouched::Sent,
                Untouched::Counter,
                Untouched::Counter,
                Untouched::Rate,
                Untouched::Counter,
            ],
        };
        let histogram = HistogramOptions::default();
        let zero = Value::Counter {
            count: 0.0,
            total: 0.0,
        };
        // Sent in index order (1 is always sent, 3 is forgotten): the rest in between.
        let (mut indexes, mut values) = (vec![1, 4], vec![counter(1.0), Value::Rate(None)]);
        let plan = put_back(&dict, &mut indexes, &mut values, &histogram);
        assert_eq!(indexes, [0, 1, 2, 4, 5]);
        let expected = [
            zero.clone(),
            counter(1.0),
            zero.clone(),
            Value::Rate(None),
            zero.clone(),
        ];
        assert_eq!(values, expected);
        use Untouched::{Counter, Sent};
        assert_eq!(plan, [Counter, Sent, Counter, Sent, Counter]);
        // Out of order: after them.
        let (mut indexes, mut values) = (vec![4, 1], vec![Value::Rate(None), counter(1.0)]);
        let plan = put_back(&dict, &mut indexes, &mut values, &histogram);
        assert_eq!(indexes, [4, 1, 0, 2, 5]);
        assert_eq!(plan, [Sent, Sent, Counter, Counter, Counter]);
        // Nothing left out: nothing to do.
        let (mut indexes, mut values) = (vec![0, 1, 2, 4, 5], expected.to_vec());
        assert!(put_back(&dict, &mut indexes, &mut values, &histogram).is_empty());
    }

    #[test]
    fn forgotten_indexes_name_nothing_until_defined_again() {
        let mut g = Gathering::default();
        let s = snap(
            1.0,
            11,
            vec![("inc", "a", counter(1.0)), ("inc", "b", counter(2.0))],
        );
        let keys: Vec<&SeriesKey> = s.entries.iter().map(|e| &*e.key).collect();
        assert_eq!(
            g.receive(Source::Worker(1), &delta(&s, &[0, 1], &keys, 9, 0), 1.0),
            Ok(())
        );
        // b expired: index 1 names nothing, and a new series c takes it.
        let only_a = snap(2.0, 11, vec![("inc", "a", counter(1.0))]);
        let m = delta_forgetting(&only_a, &[0], &[], &[1], (9, 1));
        assert_eq!(g.receive(Source::Worker(1), &m, 2.0), Ok(()));
        let a_and_b = snap(
            3.0,
            11,
            vec![("inc", "a", counter(1.0)), ("inc", "b", counter(2.0))],
        );
        assert!(matches!(
            g.receive(Source::Worker(1), &delta(&a_and_b, &[0, 1], &[], 9, 2), 3.0),
            Err(Rejection::Decode(_))
        ));
        let c = snap(4.0, 11, vec![("inc", "c", counter(3.0))]);
        let c_key = key("inc", &["p"], "c");
        let m = delta_forgetting(&c, &[1], &[(1, &c_key)], &[], (9, 3));
        assert_eq!(g.receive(Source::Worker(1), &m, 4.0), Ok(()));
        let d = everything(g.deliver(4.0, format()));
        assert_eq!(d["workers"]["1"]["p"]["c"]["value"]["val"], 0.03);
        // Hostile: forgetting an index twice or one never defined, defining past the end.
        let empty = snap(5.0, 11, vec![]);
        for m in [
            delta_forgetting(&empty, &[], &[], &[7], (9, 4)),
            delta_forgetting(&empty, &[], &[(5, &c_key)], &[], (9, 5)),
        ] {
            assert!(matches!(
                g.receive(Source::Worker(1), &m, 5.0),
                Err(Rejection::Decode(_))
            ));
        }
    }
}
