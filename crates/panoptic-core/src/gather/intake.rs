//! Workers' messages (and the master's own intervals), decoded and merged off the JS thread.
//!
//! At an interval boundary every worker ships its snapshot within a few milliseconds, and Node runs
//! the `'message'` handlers of one event-loop turn back to back. Decoding and merging a
//! 15,000-series snapshot costs the master about a millisecond, so done in the handlers, eight
//! workers would hold the master's event loop for ten. An [`Intake`] takes the message text and
//! returns at once; one process-wide thread decodes and merges messages in arrival order. A
//! delivery ([`Intake::deliver`]) first waits for the messages already taken, so it holds
//! everything that arrived before it, as if merged in the handler; but never longer than
//! [`DELIVERY_PATIENCE`]: under a backlog (a flood of new series keys), what is not merged by then
//! is counted late, and the event loop goes on; nor on a message's flood of new series keys, which
//! is registered a slice at a time (`REGISTER_SLICE`), handing the lock to a waiting delivery
//! between slices, names a message's entries without it, and hands it over again before merging
//! them. The idle series a delivery leaves to free are freed on that thread too, a
//! slice at a time between messages ([`Gathering::sweep`]). The master's own closed intervals
//! take a thread of their own ([`Intake::keep_local`]: at a million series, naming and merging
//! one is tens of milliseconds), so neither a backlog nor a message being registered keeps them
//! out of their delivery.

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
/// (a backlog): long enough for the messages of a boundary to be merged in any steady state (they
/// arrive half an interval before the delivery), short enough that the event loop does not notice.
pub const DELIVERY_PATIENCE: Duration = Duration::from_millis(10);

/// How many new series keys of a message are registered at a time: between two slices a waiting
/// delivery takes the gathering's lock (a slice is about a millisecond of work), so that a flood
/// of new keys (a worker recording request ids as metric names) never holds a delivery longer.
const REGISTER_SLICE: usize = 1024;

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
    // Both keep the process's priority (unlike the transport's and the exporter's threads:
    // background.rs): a delivery waits for the gathering's lock, which these threads hold a
    // slice at a time, and at a lower priority a busy machine would stretch each slice.
    let (n, name) = match lane {
        Lane::Local => (0, "panoptic-local"),
        Lane::Message | Lane::Chore => (1, "panoptic-intake"),
    };
    *QUEUES[n].get_or_init(|| {
        // One per process, for the process's life (as its thread).
        let queue: &'static Queue = Box::leak(Box::default());
        let started = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || loop {
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
            });
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
}

impl Shared {
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
        let mut gathering = shared.gathering.lock();
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
                let mut gathering = shared.gathering.lock();
                let mut registered = Vec::new();
                if let Ok(message) = &message {
                    for slice in message.definitions.chunks(REGISTER_SLICE) {
                        gathering.register(&source, message, slice, &mut registered);
                        parking_lot::MutexGuard::bump(&mut gathering);
                    }
                }
                // Naming the entries (a loop over every definition and entry, and the keys
                // dropped) holds no lock: only this thread's jobs touch the source's
                // dictionary, taken out of the gathering meanwhile.
                let naming = gathering.start_registered(&source, message, registered);
                let named =
                    parking_lot::MutexGuard::unlocked(&mut gathering, || naming.map(Naming::name));
                let resolved = named.and_then(|named| gathering.finish_naming(&source, named));
                parking_lot::MutexGuard::bump(&mut gathering);
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
    /// milliseconds the JS thread need not wait for (a delivery, through [`Intake::deliver`],
    /// waits for it).
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
        self.wait(|p| p.local == 0 && p.messages == 0 && p.chores == 0, None);
        f(&mut self.shared.gathering.lock())
    }

    /// Calls `f` with the gathering to deliver: once this process's own intervals are merged,
    /// and the messages taken so far too, or `patience` has passed. A delivery never waits on a
    /// backlog: a message merged after it finds its interval delivered and is counted late.
    /// The idle series it leaves to free are freed afterwards on the intake thread ([`Gathering::sweep`], a slice at a time).
    pub fn deliver<T>(&self, patience: Duration, f: impl FnOnce(&mut Gathering) -> T) -> T {
        self.wait(|p| p.local == 0, None);
        self.wait(|p| p.messages == 0, Some(Instant::now() + patience));
        let mut gathering = self.shared.gathering.lock();
        let delivered = f(&mut gathering);
        let start = gathering.sweeping() && !self.shared.sweeping.swap(true, Ordering::Relaxed);
        drop(gathering);
        if start {
            sweep(&self.shared);
        }
        delivered
    }

    /// Waits until `done` holds of the pending jobs, or `until` passes.
    fn wait(&self, done: impl Fn(&Pending) -> bool, until: Option<Instant>) {
        let mut pending = lock(&self.shared.pending);
        while !done(&pending) {
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

    #[test]
    fn everything_taken_before_a_read_is_merged_in_it() {
        let intake = Intake::default();
        for w in 0..50 {
            intake.receive(Source::Worker(w), message(4.0, 2.0), 4.0);
        }
        intake.receive(Source::Worker(99), "garbage".into(), 4.0);
        // The master's own interval, taken after the messages, is in the same read.
        intake.keep_local(local(4.0, 5.0));
        let format = Format {
            interval: 1.0,
            scale_factor: 1.0,
            time_stamp: 0.0,
            percentiles: Arc::from([]),
        };
        let d = intake.with(|g| g.deliver(4.0, format));
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
        let format = || Format {
            interval: 1.0,
            scale_factor: 1.0,
            time_stamp: 0.0,
            percentiles: Arc::from([]),
        };
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
        let format = Format {
            interval: 1.0,
            scale_factor: 1.0,
            time_stamp: 0.0,
            percentiles: Arc::from([]),
        };
        let d = intake.with(|g| g.deliver(4.0, format));
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
        let format = || Format {
            interval: 1.0,
            scale_factor: 1.0,
            time_stamp: 0.0,
            percentiles: Arc::from([]),
        };
        let d = intake.deliver(Duration::ZERO, |g| g.deliver(4.0, format()));
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
        let format = || Format {
            interval: 1.0,
            scale_factor: 1.0,
            time_stamp: 0.0,
            percentiles: Arc::from([]),
        };
        intake.receive(Source::Worker(1), flood(4.0, 0..n), 4.0);
        let d = intake.deliver(Duration::from_secs(60), |g| g.deliver(4.0, format()));
        assert!(d.expired().is_empty());
        // The worker moved on to one new series: the flood is idle from interval 5 on.
        intake.receive(Source::Worker(1), flood(5.0, n..n + 1), 5.0);
        let d = intake.deliver(Duration::from_secs(60), |g| g.deliver(5.0, format()));
        assert!(d.expired().is_empty(), "freed after this delivery");
        assert_eq!(intake.with(|g| g.series()), 1, "by the intake thread");
        let d = intake.deliver(Duration::from_secs(60), |g| g.deliver(6.0, format()));
        let mut expired = d.expired().to_vec();
        expired.sort_unstable();
        assert_eq!(
            expired,
            (0..n as u32).collect::<Vec<_>>(),
            "the next names them"
        );
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
