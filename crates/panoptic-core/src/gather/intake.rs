//! Workers' messages (and the master's own intervals), decoded and merged off the JS thread.
//!
//! At an interval boundary every worker ships its snapshot within a few milliseconds, and Node runs
//! the `'message'` handlers of one event-loop turn back to back. Decoding and merging a
//! 15,000-series snapshot costs the master about a millisecond, so done in the handlers, eight
//! workers would hold the master's event loop for ten. An [`Intake`] takes the message text and
//! returns at once; one process-wide thread decodes and merges messages in arrival order.
//!
//! A delivery ([`Intake::try_deliver`]) never blocks the JS thread: it is made once the messages
//! taken before it are merged (as if merged in the handler), or once its patience
//! ([`DELIVERY_PATIENCE`]) has run out, and when the gathering's lock is free; until then the
//! attempt returns nothing at once and the JS thread tries again on a later turn of its event
//! loop. Under a backlog (a flood of new series keys) what is not merged by then is counted late.
//! A message's flood of new keys is registered a slice at a time (`REGISTER_SLICE`), and between
//! slices the intake makes way for a delivery that found the lock taken: it lets go of the lock
//! until that delivery is made. It names a message's entries without the lock. The idle series
//! a delivery leaves to free are freed on that thread too, a slice at a time between messages
//! ([`Gathering::sweep`]). The master's own closed intervals take a thread of their own
//! ([`Intake::keep_local`]: at a million series, naming and merging one is tens of
//! milliseconds), so neither a backlog nor a message being registered keeps them out of their
//! delivery.
//!
//! Since nothing on the JS thread waits for it, the intake thread works below the JS threads
//! (`background.rs`): when the cores are all busy, the master's event loop runs first. The
//! master's own-interval thread keeps the process's priority: a delivery cannot be made without
//! it.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use crate::gather::gathering::Naming;
use crate::gather::{Gathering, Rejection, Source};
use crate::record::clock::{index_at, now_ms};
use crate::record::engine::Closed;
use crate::snapshot::Profile;
use crate::snapshot::Value;
use crate::wire::{decode_bytes_into, unbase64};

type Job = Box<dyn FnOnce() + Send>;

/// How long a delivery waits for workers' messages that arrived before it and are not merged yet
/// (a backlog), from its first attempt: the messages of a boundary arrive half an interval
/// before their delivery, so in any steady state they are merged by then. The JS thread does not
/// wait meanwhile (its attempts return at once); the delivery comes that much later.
pub const DELIVERY_PATIENCE: Duration = Duration::from_millis(50);

/// How long [`Intake::series`] waits for the jobs taken before it: long enough that a quiet
/// master's count includes them, short enough that asking never holds the JS thread long
/// (under a backlog the count is that of the last job run).
pub const COUNT_PATIENCE: Duration = Duration::from_millis(50);

/// How many new series keys of a message are registered at a time: between two slices a delivery
/// that found the lock taken gets it (a slice is about a millisecond of work), so that a flood of
/// new keys (a worker recording request ids as metric names) never holds a delivery longer.
const REGISTER_SLICE: usize = 1024;

/// The longest the intake thread waits, lock released, for a delivery that found the lock taken
/// (it tries again on a later turn of its event loop): if that turn does not come (a JS thread
/// busy elsewhere, an instance stopped), the intake goes on.
const MAKE_WAY_LIMIT: Duration = Duration::from_millis(20);

/// Which lane of the queue a job takes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Lane {
    /// A master's own closed interval: its delivery waits for it, so it has a thread of its own
    /// (a backlog of workers' messages, or one message with a flood of new keys that takes the
    /// intake thread for hundreds of milliseconds, cannot keep it out of its delivery).
    Local,
    /// Everything else, in arrival order.
    Message,
    /// Work left by a delivery (a slice of expiry: [`Gathering::sweep`]), queued behind the
    /// messages, which a delivery does not wait for.
    Chore,
}

/// A process-wide queue of jobs, in order, run by a thread of its own.
#[derive(Default)]
struct Queue {
    jobs: Mutex<VecDeque<Job>>,
    ready: Condvar,
}

/// The queue of `lane` (local jobs have theirs, messages and chores share the other), with its
/// thread started (None if it could not start: jobs then run on the caller's thread).
fn queue(lane: Lane) -> Option<&'static Queue> {
    static QUEUES: [OnceLock<Option<&'static Queue>>; 2] = [OnceLock::new(), OnceLock::new()];
    // The intake thread works below the JS threads (see the module documentation); the master's
    // own intervals keep the process's priority, since their delivery waits for them.
    let (n, name, background) = match lane {
        Lane::Local => (0, "panoptic-local", false),
        Lane::Message | Lane::Chore => (1, "panoptic-intake", true),
    };
    *QUEUES[n].get_or_init(|| {
        // One per process, for the process's life (as its thread).
        let queue: &'static Queue = Box::leak(Box::default());
        let work = move || loop {
            let job = {
                let mut jobs = lock(&queue.jobs);
                loop {
                    if let Some(job) = jobs.pop_front() {
                        break job;
                    }
                    jobs = queue.ready.wait(jobs).unwrap_or_else(|e| e.into_inner());
                }
            };
            job();
        };
        let started = if background {
            crate::background::spawn(name, work)
        } else {
            std::thread::Builder::new().name(name.into()).spawn(work)
        };
        started.is_ok().then_some(queue)
    })
}

fn submit(job: Job, lane: Lane) {
    match queue(lane) {
        Some(queue) => {
            lock(&queue.jobs).push_back(job);
            queue.ready.notify_one();
        }
        None => job(),
    }
}

/// Drops `value` on the intake thread, behind the jobs queued before it: a delivery the JS
/// engine collected holds its parts and their values (hundreds of thousands of allocations at a
/// million series), whose freeing would otherwise run on the JS thread inside a garbage
/// collection (measured: 0.5 to 3.3 ms per delivery of 100,000 series).
pub fn drop_later<T: Send + 'static>(value: T) {
    submit(Box::new(move || drop(value)), Lane::Chore);
}

/// A lock that survives a panic in another holder: every state behind these locks is valid
/// between any two statements that change it.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Jobs of one intake taken and not yet run, by lane.
#[derive(Debug, Default)]
struct Pending {
    local: usize,
    messages: usize,
    chores: usize,
    /// The text of the workers' messages among them.
    bytes: usize,
}

impl Pending {
    /// The count of `lane`'s jobs.
    fn of(&mut self, lane: Lane) -> &mut usize {
        match lane {
            Lane::Local => &mut self.local,
            Lane::Message => &mut self.messages,
            Lane::Chore => &mut self.chores,
        }
    }
}

/// Workers' messages an intake took and has not merged yet (panoptic's own metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Messages queued (snapshots, and the notes kept in order with them).
    pub messages: usize,
    /// The bytes of the snapshots' text among them.
    pub bytes: usize,
}

#[derive(Debug, Default)]
struct Shared {
    gathering: parking_lot::Mutex<Gathering>,
    pending: Mutex<Pending>,
    drained: Condvar,
    /// Workers whose messages extended a dictionary this master lacks (they must resync).
    resyncs: Mutex<Vec<u32>>,
    /// The buffer the next message's values are decoded into: the last one's, which its part
    /// did not keep ([`Gathering::receive_kept`]). The same memory every interval: fresh memory
    /// costs page faults (most of the intake's time at 8 workers x 15,000 series).
    spare: Mutex<Vec<Value>>,
    /// The master's interval grid (start, interval), for messages that reach the intake without
    /// passing through its JS thread (the native transport): they are checked against the
    /// interval the clock is in, whatever the JS thread is doing.
    grid: (f64, f64),
    /// Whether a job of expiry ([`sweep`]) is queued; changed under the gathering's lock.
    sweeping: AtomicBool,
    /// Whether a delivery found the gathering's lock taken and will try again: the intake's
    /// jobs make way for it ([`Shared::make_way`]).
    wanted: Mutex<bool>,
    /// Signalled when `wanted` is cleared.
    made: Condvar,
    /// [`MAKE_WAY_LIMIT`] (tests change it).
    make_way_limit: MakeWayLimit,
    /// How many series the registry held after the last job ([`Intake::series`]).
    series: AtomicUsize,
}

#[derive(Debug)]
struct MakeWayLimit(Duration);

impl Default for MakeWayLimit {
    fn default() -> Self {
        MakeWayLimit(MAKE_WAY_LIMIT)
    }
}

impl Shared {
    /// The gathering, for a job of the intake thread: after the delivery that wants it, if one
    /// does (see [`Shared::make_way`]).
    fn gathering(&self) -> parking_lot::MutexGuard<'_, Gathering> {
        self.wait_for_delivery();
        self.gathering.lock()
    }

    /// Between two slices of a job of the intake thread: lets a delivery that found the lock
    /// taken have it (the lock is released until that delivery is made, or for at most
    /// [`MAKE_WAY_LIMIT`]), and hands it to a thread blocked on it (the master's own intervals).
    fn make_way(&self, gathering: &mut parking_lot::MutexGuard<'_, Gathering>) {
        if *lock(&self.wanted) {
            parking_lot::MutexGuard::unlocked(gathering, || self.wait_for_delivery());
        } else {
            parking_lot::MutexGuard::bump(gathering);
        }
    }

    fn wait_for_delivery(&self) {
        let mut wanted = lock(&self.wanted);
        let until = Instant::now() + self.make_way_limit.0;
        while *wanted {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                // The delivery did not come back: go on (its next attempt asks again).
                *wanted = false;
                break;
            }
            wanted = (self.made.wait_timeout(wanted, left))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn done(&self, lane: Lane, bytes: usize) {
        let mut pending = lock(&self.pending);
        *pending.of(lane) -= 1;
        pending.bytes -= bytes;
        drop(pending);
        self.drained.notify_all();
    }
}

/// Queues `job` for the intake of `shared`; `bytes`: the size of the message it merges (0 for
/// the rest).
fn run_on(
    shared: &Arc<Shared>,
    lane: Lane,
    bytes: usize,
    job: impl FnOnce(&Shared) + Send + 'static,
) {
    let mut pending = lock(&shared.pending);
    *pending.of(lane) += 1;
    pending.bytes += bytes;
    drop(pending);
    let shared = shared.clone();
    submit(
        Box::new(move || {
            // A bug in decoding must not stop the thread (nor lose the count).
            let _ = catch_unwind(AssertUnwindSafe(|| job(&shared)));
            let series = shared.gathering.lock().series();
            shared.series.store(series, Ordering::Relaxed);
            shared.done(lane, bytes);
        }),
        lane,
    );
}

/// Frees idle series a slice at a time ([`Gathering::sweep`]), each slice a job of its own
/// queued behind the messages that came meanwhile: a pass over a million series with a hundred
/// thousand to free never holds a delivery (nor a message) longer than a slice.
fn sweep(shared: &Arc<Shared>) {
    let again = shared.clone();
    run_on(shared, Lane::Chore, 0, move |shared| {
        let mut gathering = shared.gathering();
        if gathering.sweep() {
            drop(gathering);
            sweep(&again);
        } else {
            // Under the lock a delivery starts a pass with: it queues the next one.
            shared.sweeping.store(false, Ordering::Relaxed);
        }
    });
}

/// A worker's message as it arrives: base64 text over Node's IPC, bytes over the native transport.
enum Payload {
    Text(String),
    Bytes(Vec<u8>),
}

/// See the module documentation. Clones share the same gathering.
#[derive(Debug, Default, Clone)]
pub struct Intake {
    shared: Arc<Shared>,
}

impl Intake {
    /// An intake whose gathering merges snapshots of `profile` (see [`Gathering::new`]).
    pub fn new(profile: Profile) -> Intake {
        let shared = Shared {
            gathering: parking_lot::Mutex::new(Gathering::new(profile)),
            grid: (profile.start, profile.interval),
            ..Shared::default()
        };
        Intake {
            shared: Arc::new(shared),
        }
    }

    /// Queues `job`; `bytes`: the size of the message it merges (0 for the rest).
    fn run(&self, lane: Lane, bytes: usize, job: impl FnOnce(&Shared) + Send + 'static) {
        run_on(&self.shared, lane, bytes, job);
    }

    /// Takes a worker's message (see [`Gathering::receive`]) while the master is in interval
    /// `current`; it is decoded and merged later, in arrival order. Decoding (most of the work)
    /// holds no lock: a delivery never waits for it.
    pub fn receive(&self, source: Source, text: String, current: f64) {
        self.take(source, Payload::Text(text), Some(current), None);
    }

    /// Takes a worker's message in binary from the native transport, in the interval the clock
    /// is in when it is merged (a JS thread held up for intervals does not make its workers'
    /// snapshots look ahead). `in_flight` (the connection's count of messages taken and not
    /// merged) goes down by one once it is merged.
    pub fn receive_bytes(&self, source: Source, bytes: Vec<u8>, in_flight: Arc<AtomicUsize>) {
        self.take(source, Payload::Bytes(bytes), None, Some(in_flight));
    }

    fn take(
        &self,
        source: Source,
        payload: Payload,
        current: Option<f64>,
        in_flight: Option<Arc<AtomicUsize>>,
    ) {
        let bytes = match &payload {
            Payload::Text(text) => text.len(),
            Payload::Bytes(bytes) => bytes.len(),
        };
        self.run(Lane::Message, bytes, move |shared| {
            let worker = match source {
                Source::Worker(id) => Some(id),
                Source::Thread(_) => None,
            };
            let result = catch_unwind(AssertUnwindSafe(|| {
                let bytes = match payload {
                    Payload::Text(text) => unbase64(&text),
                    Payload::Bytes(bytes) => Ok(bytes),
                };
                let spare = std::mem::take(&mut *lock(&shared.spare));
                let (message, bytes) = match bytes {
                    Ok(bytes) => (decode_bytes_into(&bytes, spare), Some(bytes)),
                    Err(e) => (Err(e), None),
                };
                let (start, interval) = shared.grid;
                let current = current.unwrap_or_else(|| index_at(now_ms(), start, interval));
                let mut gathering = shared.gathering();
                let mut registered = Vec::new();
                if let Ok(message) = &message {
                    for slice in message.definitions.chunks(REGISTER_SLICE) {
                        gathering.register(&source, message, slice, &mut registered);
                        shared.make_way(&mut gathering);
                    }
                }
                // Naming the entries (a loop over every definition and entry, and the keys
                // dropped) holds no lock: only this thread's jobs touch the source's
                // dictionary, taken out of the gathering meanwhile.
                let naming = gathering.start_registered(&source, message, registered);
                let named =
                    parking_lot::MutexGuard::unlocked(&mut gathering, || naming.map(Naming::name));
                let resolved = named.and_then(|named| gathering.finish_naming(&source, named));
                shared.make_way(&mut gathering);
                let result = gathering.accept_resolved(source, resolved, current, bytes);
                *lock(&shared.spare) = gathering.take_spare();
                result
            }));
            if let Some(in_flight) = in_flight {
                in_flight.fetch_sub(1, Ordering::Relaxed);
            }
            match (result, worker) {
                (Ok(Err(Rejection::Resync)), Some(id)) => lock(&shared.resyncs).push(id),
                (Err(_), _) => shared.gathering.lock().note_decode_error(),
                _ => {}
            }
        });
    }

    /// Keeps this process's own closed interval ([`Gathering::keep_local`]) on a thread of its
    /// own, whatever messages are queued: naming and merging a million series takes tens of
    /// milliseconds the JS thread need not wait for (its delivery, [`Intake::try_deliver`], is
    /// made once it is merged).
    pub fn keep_local(&self, closed: Closed) {
        self.run(Lane::Local, 0, move |shared| {
            let Closed {
                snapshot,
                indexes,
                expired,
            } = closed;
            let mut gathering = shared.gathering.lock();
            gathering.forget_local(&expired);
            gathering.keep_local(snapshot, &indexes);
        });
    }

    /// Counts a message for an instance this process does not have ([`Gathering::note_unmatched`]),
    /// in order with the messages.
    pub fn note_unmatched(&self, key: String, message: String) {
        self.run(Lane::Message, 0, move |shared| {
            shared.gathering.lock().note_unmatched(key, message)
        });
    }

    /// Counts a message marked as panoptic's that could not be routed, in order with the
    /// messages (the JS thread does not wait for the queue).
    pub fn note_decode_error(&self) {
        self.run(Lane::Message, 0, |shared| {
            shared.gathering.lock().note_decode_error()
        });
    }

    /// Counts a worker's message the native transport could not take (its connection had too
    /// many waiting: [`Gathering::note_late`]), in order with the messages.
    pub fn note_late(&self) {
        self.run(Lane::Message, 0, |shared| {
            shared.gathering.lock().note_late(1)
        });
    }

    /// Counts a connection to the native transport refused ([`Gathering::note_refused`]).
    pub fn note_refused(&self, message: String) {
        self.run(Lane::Message, 0, move |shared| {
            shared.gathering.lock().note_refused(message)
        });
    }

    /// Whether `other` shares this intake's gathering.
    pub fn same(&self, other: &Intake) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }

    /// Holds the intake thread with `job` (tests).
    #[cfg(test)]
    pub(crate) fn hold(&self, job: impl FnOnce() + Send + 'static) {
        self.run(Lane::Message, 0, move |_| job());
    }

    /// Forgets a worker that exited (after the messages taken before).
    pub fn forget_worker(&self, worker: u32) {
        self.run(Lane::Message, 0, move |shared| {
            shared.gathering.lock().forget_worker(worker)
        });
    }

    /// A reader of this intake's backlog, for another thread (an HTTP server's scrape).
    pub fn backlog(&self) -> impl Fn() -> Backlog + Send + Sync + 'static {
        let shared = self.shared.clone();
        move || {
            let pending = lock(&shared.pending);
            Backlog {
                messages: pending.messages,
                bytes: pending.bytes,
            }
        }
    }

    /// The workers that must send their series keys again (each once per message that lacked
    /// them), since the last call.
    pub fn take_resyncs(&self) -> Vec<u32> {
        std::mem::take(&mut *lock(&self.shared.resyncs))
    }

    /// Calls `f` with the gathering once every job taken so far has run (and the expiry they
    /// left: tests).
    pub fn with<T>(&self, f: impl FnOnce(&mut Gathering) -> T) -> T {
        self.wait_all(None);
        f(&mut self.shared.gathering.lock())
    }

    /// Calls `f` with the gathering to deliver, if it can without waiting: once this process's
    /// own intervals are merged, and the messages taken so far too or `until` has passed, and the
    /// gathering's lock is free (if it is not, the intake lets go of it at its next slice, until
    /// the next attempt). None: not yet, try again later (the JS thread, on a later turn of its
    /// event loop). A delivery never waits on a backlog: a message merged after it finds its
    /// interval delivered and is counted late. The idle series it leaves to free are freed
    /// afterwards on the intake thread ([`Gathering::sweep`], a slice at a time).
    pub fn try_deliver<T>(&self, until: Instant, f: impl FnOnce(&mut Gathering) -> T) -> Option<T> {
        {
            let pending = lock(&self.shared.pending);
            if pending.local > 0 || (pending.messages > 0 && Instant::now() < until) {
                return None;
            }
        }
        let Some(mut gathering) = self.shared.gathering.try_lock() else {
            *lock(&self.shared.wanted) = true;
            return None;
        };
        let delivered = f(&mut gathering);
        let start = gathering.sweeping() && !self.shared.sweeping.swap(true, Ordering::Relaxed);
        drop(gathering);
        let mut wanted = lock(&self.shared.wanted);
        if std::mem::take(&mut *wanted) {
            self.shared.made.notify_all();
        }
        drop(wanted);
        if start {
            sweep(&self.shared);
        }
        Some(delivered)
    }

    /// How many series the registry holds once the jobs taken so far have run, waiting for them
    /// at most `patience` (then: after the last job run). Never waits for the gathering's lock.
    pub fn series(&self, patience: Duration) -> usize {
        self.wait_all(Some(Instant::now() + patience));
        self.shared.series.load(Ordering::Relaxed)
    }

    /// Waits until every job taken so far has run, or `until` passes.
    fn wait_all(&self, until: Option<Instant>) {
        let mut pending = lock(&self.shared.pending);
        while pending.local > 0 || pending.messages > 0 || pending.chores > 0 {
            let drained = &self.shared.drained;
            pending = match until {
                None => drained.wait(pending).unwrap_or_else(|e| e.into_inner()),
                Some(until) => {
                    let left = until.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return;
                    }
                    (drained.wait_timeout(pending, left))
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gather::tree::Format;
    use crate::snapshot::{Entry, SeriesKey, Snapshot, Value};
    use crate::wire::{encode, Keys};

    fn message(k: f64, total: f64) -> String {
        let snapshot = Snapshot {
            k,
            pid: 7,
            entries: vec![Entry {
                key: Arc::new(SeriesKey {
                    method: "inc".into(),
                    path: vec![].into(),
                    id: "n".into(),
                }),
                value: Value::Counter { count: 1.0, total },
            }],
            ..Snapshot::default()
        };
        encode(&snapshot, Keys::All { epoch: 3 })
    }

    /// This process's own closed interval `k`: one `inc` adding `total` to `n`.
    fn local(k: f64, total: f64) -> Closed {
        let series = [(
            crate::testing::key("inc", &[], "n"),
            crate::testing::counter(total),
        )];
        Closed {
            snapshot: crate::testing::snapshot(k, 0, series),
            indexes: vec![0],
            expired: Vec::new(),
        }
    }

    /// The format of the tests' deliveries.
    fn format() -> Format {
        crate::testing::format(1.0, 1.0, 0.0, &[])
    }

    /// Delivers as the JS thread does: attempts until one is made (its patience `patience`).
    fn deliver<T>(intake: &Intake, patience: Duration, f: impl FnOnce(&mut Gathering) -> T) -> T {
        let until = Instant::now() + patience;
        let mut f = Some(f);
        loop {
            if let Some(made) = intake.try_deliver(until, |g| f.take().unwrap()(g)) {
                return made;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn everything_taken_before_a_read_is_merged_in_it() {
        let intake = Intake::default();
        for w in 0..50 {
            intake.receive(Source::Worker(w), message(4.0, 2.0), 4.0);
        }
        intake.receive(Source::Worker(99), "garbage".into(), 4.0);
        // The master's own interval, taken after the messages, is in the same read.
        intake.keep_local(local(4.0, 5.0));
        let d = intake.with(|g| g.deliver(4.0, format()));
        let meta = d.meta();
        assert_eq!((meta.workers.len(), meta.decode_errors), (50, 1));
        let cluster: serde_json::Value =
            serde_json::from_str(&d.tree(&crate::gather::Tree::Cluster).unwrap()).unwrap();
        assert_eq!(cluster["n"]["value"]["val"], 105.0);
        let master: serde_json::Value =
            serde_json::from_str(&d.tree(&crate::gather::Tree::Master).unwrap()).unwrap();
        assert_eq!(master["n"]["value"]["val"], 5.0);
    }

    #[test]
    fn a_workers_part_is_kept_as_its_message_and_reads_as_sent() {
        let intake = Intake::default();
        for k in [4.0, 5.0] {
            let (one, two) = (message(k, k), message(k, 1.0));
            let sent = unbase64(&one).unwrap().len() + unbase64(&two).unwrap().len();
            intake.receive(Source::Worker(1), one, k);
            intake.receive(Source::Worker(2), two, k);
            let d = intake.with(|g| g.deliver(k, format()));
            let parts: Vec<_> = d.parts().collect();
            assert_eq!(parts.len(), 2);
            // Kept as the messages (and the merged view decoded), until read.
            let id_and_value = 4 + std::mem::size_of::<Value>();
            assert_eq!(d.size(), 2 * 4 + sent + id_and_value);
            assert!(!parts[0].has_meters());
            let expected = Value::Counter {
                count: 1.0,
                total: k,
            };
            assert_eq!(parts[0].values(), [expected]);
            let tree = d.tree(&crate::gather::Tree::Worker(2)).unwrap();
            let tree: serde_json::Value = serde_json::from_str(&tree).unwrap();
            assert_eq!(tree["n"]["value"]["val"], 1.0);
            let cluster = d.tree(&crate::gather::Tree::Cluster).unwrap();
            let cluster: serde_json::Value = serde_json::from_str(&cluster).unwrap();
            assert_eq!(cluster["n"]["value"]["val"], k + 1.0);
        }
        // The values' buffer of the last message merged waits for the next one.
        assert!(intake.shared.spare.lock().unwrap().capacity() >= 1);
    }

    #[test]
    fn a_flood_of_new_keys_is_registered_in_slices_and_merged_whole() {
        let intake = Intake::default();
        let n = 3 * REGISTER_SLICE + 5;
        let snapshot = Snapshot {
            k: 4.0,
            pid: 7,
            entries: (0..n)
                .map(|i| Entry {
                    key: Arc::new(SeriesKey::new("inc", &["flood"], &format!("id{i}"))),
                    value: Value::Counter {
                        count: 1.0,
                        total: i as f64,
                    },
                })
                .collect(),
            ..Snapshot::default()
        };
        intake.receive(
            Source::Worker(1),
            encode(&snapshot, Keys::All { epoch: 3 }),
            4.0,
        );
        let d = intake.with(|g| g.deliver(4.0, format()));
        assert_eq!((d.meta().late, d.meta().decode_errors), (0, 0));
        let cluster: serde_json::Value =
            serde_json::from_str(&d.tree(&crate::gather::Tree::Cluster).unwrap()).unwrap();
        let flood = cluster["flood"].as_object().unwrap();
        assert_eq!(flood.len(), n);
        for i in [0, REGISTER_SLICE - 1, REGISTER_SLICE, n - 1] {
            assert_eq!(flood[&format!("id{i}")]["value"]["val"], i as f64);
        }
    }

    #[test]
    fn a_delivery_has_its_own_interval_and_does_not_wait_on_a_backlog() {
        let intake = Intake::default();
        // The thread is busy (first), then a backlog: a second busy job, then a worker's message.
        let (first, second) = (std::sync::mpsc::channel(), std::sync::mpsc::channel());
        let blocked = |receiver: std::sync::mpsc::Receiver<()>| {
            let receiver = Mutex::new(receiver);
            move |_: &Shared| {
                let _ = lock(&receiver).recv();
            }
        };
        intake.run(Lane::Message, 0, blocked(first.1));
        intake.run(Lane::Message, 0, blocked(second.1));
        let text = message(4.0, 2.0);
        let bytes = text.len();
        intake.receive(Source::Worker(1), text, 4.0);
        // The backlog, read from another thread as a scrape would: the message waits.
        let backlog = intake.backlog();
        let waiting = std::thread::spawn(backlog).join().unwrap();
        assert_eq!((waiting.messages, waiting.bytes), (3, bytes));
        // The master's own interval, taken last, is merged while the intake thread is busy.
        intake.keep_local(local(4.0, 5.0));
        let d = deliver(&intake, Duration::ZERO, |g| g.deliver(4.0, format()));
        assert!(
            d.tree(&crate::gather::Tree::Master).is_some(),
            "its own interval"
        );
        assert!(d.meta().workers.is_empty(), "the backlog is not waited for");
        // Merged after its interval was delivered: late.
        first.0.send(()).unwrap();
        second.0.send(()).unwrap();
        let d = intake.with(|g| g.deliver(5.0, format()));
        assert_eq!(d.meta().late, 1);
        assert_eq!(intake.backlog()(), Backlog::default(), "merged: no backlog");
    }

    #[test]
    fn idle_series_are_freed_after_their_delivery_and_named_by_the_next() {
        let intake = Intake::default();
        intake.with(|g| g.set_expire_after(Some(1)));
        let n = 3 * REGISTER_SLICE;
        let flood = |k: f64, ids: std::ops::Range<usize>| {
            let snapshot = Snapshot {
                k,
                pid: 7,
                entries: (ids.map(|i| Entry {
                    key: Arc::new(SeriesKey::new("inc", &["flood"], &format!("id{i}"))),
                    value: Value::Counter {
                        count: 1.0,
                        total: 1.0,
                    },
                }))
                .collect(),
                ..Snapshot::default()
            };
            // Self-contained: the worker's dictionary is this message's keys only.
            encode(&snapshot, Keys::All { epoch: 3 })
        };
        intake.receive(Source::Worker(1), flood(4.0, 0..n), 4.0);
        let d = deliver(&intake, Duration::from_secs(60), |g| {
            g.deliver(4.0, format())
        });
        assert!(d.expired().is_empty());
        // The worker moved on to one new series: the flood is idle from interval 5 on.
        intake.receive(Source::Worker(1), flood(5.0, n..n + 1), 5.0);
        let d = deliver(&intake, Duration::from_secs(60), |g| {
            g.deliver(5.0, format())
        });
        assert!(d.expired().is_empty(), "freed after this delivery");
        assert_eq!(intake.with(|g| g.series()), 1, "by the intake thread");
        let d = deliver(&intake, Duration::from_secs(60), |g| {
            g.deliver(6.0, format())
        });
        let mut expired = d.expired().to_vec();
        expired.sort_unstable();
        assert_eq!(
            expired,
            (0..n as u32).collect::<Vec<_>>(),
            "the next names them"
        );
    }

    #[test]
    fn an_attempt_to_deliver_never_waits() {
        let intake = Intake::default();
        // A job of the intake holds the gathering's lock (a slice of a flood, say) until told.
        let (locked, (release, released)) =
            (std::sync::mpsc::channel(), std::sync::mpsc::channel::<()>());
        let released = Mutex::new(released);
        intake.run(Lane::Message, 0, move |shared| {
            let _gathering = shared.gathering.lock();
            locked.0.send(()).unwrap();
            let _ = lock(&released).recv();
        });
        locked.1.recv().unwrap();
        let forever = Instant::now() + Duration::from_secs(3600);
        assert!(
            intake.try_deliver(forever, |_| ()).is_none(),
            "a message not merged yet, within its patience: not yet"
        );
        assert!(
            intake.try_deliver(Instant::now(), |_| ()).is_none(),
            "patience over, the lock taken: not yet"
        );
        assert!(
            *lock(&intake.shared.wanted),
            "the intake is asked to make way"
        );
        drop(release);
        let d = deliver(&intake, Duration::ZERO, |g| g.deliver(4.0, format()));
        assert!(d.meta().workers.is_empty());
        assert!(
            !*lock(&intake.shared.wanted),
            "made: nothing wanted any more"
        );
    }

    #[test]
    fn the_intake_makes_way_for_a_delivery_that_found_the_lock_taken() {
        for (limit, delivered) in [(Duration::from_secs(3600), true), (Duration::ZERO, false)] {
            let mut intake = Intake::default();
            Arc::get_mut(&mut intake.shared).unwrap().make_way_limit = MakeWayLimit(limit);
            let order = Arc::new(Mutex::new(Vec::new()));
            // A delivery found the lock taken: the intake's next job waits for it to be made, at
            // most the limit (a delivery that does not come back does not stop the intake).
            *lock(&intake.shared.wanted) = true;
            let job = order.clone();
            intake.run(Lane::Message, 0, move |shared| {
                let _gathering = shared.gathering();
                lock(&job).push("intake");
            });
            if delivered {
                let made = order.clone();
                deliver(&intake, Duration::ZERO, move |_| {
                    lock(&made).push("delivery")
                });
            }
            intake.with(|_| {});
            let expected: &[&str] = if delivered {
                &["delivery", "intake"]
            } else {
                &["intake"]
            };
            assert_eq!(*lock(&order), expected);
            assert!(!*lock(&intake.shared.wanted));
        }
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn the_intake_works_below_the_js_threads_and_the_local_thread_does_not() {
        use crate::background::{tests::nice, NICE};
        let intake = Intake::default();
        let (intake_nice, local_nice) = (std::sync::mpsc::channel(), std::sync::mpsc::channel());
        intake.run(Lane::Message, 0, move |_| {
            intake_nice.0.send(nice()).unwrap()
        });
        intake.run(Lane::Local, 0, move |_| local_nice.0.send(nice()).unwrap());
        assert_eq!(intake_nice.1.recv().unwrap(), nice().max(NICE));
        assert_eq!(local_nice.1.recv().unwrap(), nice());
    }

    #[test]
    fn the_count_of_series_waits_for_a_backlog_only_so_long() {
        let intake = Intake::default();
        intake.receive(Source::Worker(1), message(4.0, 1.0), 4.0);
        assert_eq!(
            intake.series(Duration::from_secs(3600)),
            1,
            "the message's series"
        );
        // The intake thread is held, then a message with a new series waits behind it.
        let (release, released) = std::sync::mpsc::channel::<()>();
        let released = Mutex::new(released);
        intake.run(Lane::Message, 0, move |_| {
            let _ = lock(&released).recv();
        });
        let snapshot = Snapshot {
            k: 5.0,
            pid: 7,
            entries: vec![Entry {
                key: Arc::new(SeriesKey::new("inc", &[], "m")),
                value: Value::Counter {
                    count: 1.0,
                    total: 1.0,
                },
            }],
            ..Snapshot::default()
        };
        intake.receive(
            Source::Worker(2),
            encode(&snapshot, Keys::All { epoch: 3 }),
            5.0,
        );
        assert_eq!(
            intake.series(Duration::ZERO),
            1,
            "the backlog not waited for"
        );
        drop(release);
        assert_eq!(intake.series(Duration::from_secs(3600)), 2, "merged since");
    }

    #[test]
    fn resyncs_are_reported_once() {
        let intake = Intake::default();
        // A delta whose dictionary this master never saw.
        let snapshot = Snapshot {
            k: 1.0,
            ..Snapshot::default()
        };
        let dictionary = crate::wire::Dictionary {
            epoch: 5,
            serial: 3,
        };
        let delta = encode(
            &snapshot,
            Keys::Delta {
                indexes: &[],
                definitions: &[],
                forgotten: &[],
                dictionary,
            },
        );
        intake.receive(Source::Worker(2), delta, 1.0);
        intake.forget_worker(3);
        intake.with(|_| {});
        assert_eq!(intake.take_resyncs(), [2]);
        assert!(intake.take_resyncs().is_empty());
    }

    #[test]
    fn dropped_later_on_the_intake_thread() {
        struct Probe(std::sync::mpsc::Sender<Option<String>>);
        impl Drop for Probe {
            fn drop(&mut self) {
                let name = std::thread::current().name().map(String::from);
                let _ = self.0.send(name);
            }
        }
        let (sent, got) = std::sync::mpsc::channel();
        drop_later(Probe(sent));
        assert_eq!(got.recv().unwrap().as_deref(), Some("panoptic-intake"));
    }
}
