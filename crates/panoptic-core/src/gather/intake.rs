//! Workers' messages (and the master's own intervals), decoded and merged off the JS thread.
//!
//! At an interval boundary every worker ships its snapshot within a few milliseconds, and Node runs
//! the `'message'` handlers of one event-loop turn back to back. Decoding and merging a
//! 15,000-series snapshot costs the master about a millisecond, so done in the handlers, eight
//! workers would hold the master's event loop for ten. An [`Intake`] takes the message text and
//! returns at once; one process-wide thread decodes and merges messages in arrival order. Reading
//! the [`Gathering`] ([`Intake::with`], e.g. to deliver) first waits for the messages already
//! taken, so a delivery holds everything that arrived before it, as if merged in the handler.
//! The master's own closed intervals take the same way ([`Intake::keep_local`]): at a million
//! series, naming and merging one is tens of milliseconds.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};

use crate::gather::{Gathering, Rejection, Source};
use crate::record::engine::Closed;
use crate::snapshot::Profile;

type Job = Box<dyn FnOnce() + Send>;

/// The process-wide thread that runs every intake's jobs, in order (None if it could not start:
/// jobs then run on the caller's thread).
fn thread() -> Option<&'static Mutex<Sender<Job>>> {
    static THREAD: OnceLock<Option<Mutex<Sender<Job>>>> = OnceLock::new();
    THREAD
        .get_or_init(|| {
            let (send, receive) = channel::<Job>();
            std::thread::Builder::new()
                .name("panoptic-intake".into())
                .spawn(move || receive.into_iter().for_each(|job| job()))
                .ok()
                .map(|_| Mutex::new(send))
        })
        .as_ref()
}

fn submit(job: Job) {
    match thread() {
        Some(sender) => {
            if let Err(returned) = lock(sender).send(job) {
                (returned.0)();
            }
        }
        None => job(),
    }
}

/// A lock that survives a panic in another holder: every state behind these locks is valid
/// between any two statements that change it.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Debug, Default)]
struct Shared {
    gathering: Mutex<Gathering>,
    /// Jobs taken and not yet run.
    queued: Mutex<usize>,
    drained: Condvar,
    /// Workers whose messages extended a dictionary this master lacks (they must resync).
    resyncs: Mutex<Vec<u32>>,
}

impl Shared {
    fn done(&self) {
        let mut queued = lock(&self.queued);
        *queued -= 1;
        if *queued == 0 {
            self.drained.notify_all();
        }
    }
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct Intake {
    shared: Arc<Shared>,
}

impl Intake {
    /// An intake whose gathering merges snapshots of `profile` (see [`Gathering::new`]).
    pub fn new(profile: Profile) -> Intake {
        let shared = Shared {
            gathering: Mutex::new(Gathering::new(profile)),
            ..Shared::default()
        };
        Intake {
            shared: Arc::new(shared),
        }
    }

    fn run(&self, job: impl FnOnce(&Shared) + Send + 'static) {
        *lock(&self.shared.queued) += 1;
        let shared = self.shared.clone();
        submit(Box::new(move || {
            // A bug in decoding must not stop the thread (nor lose the count).
            let _ = catch_unwind(AssertUnwindSafe(|| job(&shared)));
            shared.done();
        }));
    }

    /// Takes a worker's message (see [`Gathering::receive`]) while the master is in interval
    /// `current`; it is decoded and merged later, in arrival order.
    pub fn receive(&self, source: Source, text: String, current: f64) {
        self.run(move |shared| {
            let worker = match source {
                Source::Worker(id) => Some(id),
                Source::Thread(_) => None,
            };
            let result = catch_unwind(AssertUnwindSafe(|| {
                lock(&shared.gathering).receive(source, &text, current)
            }));
            match (result, worker) {
                (Ok(Err(Rejection::Resync)), Some(id)) => lock(&shared.resyncs).push(id),
                (Err(_), _) => lock(&shared.gathering).note_decode_error(),
                _ => {}
            }
        });
    }

    /// Keeps this process's own closed interval ([`Gathering::keep_local`]), in order with the
    /// messages: naming and merging a million series takes tens of milliseconds the JS thread
    /// need not wait for (a delivery, through [`Intake::with`], waits for it).
    pub fn keep_local(&self, closed: Closed) {
        self.run(move |shared| {
            let Closed { snapshot, indexes } = closed;
            lock(&shared.gathering).keep_local(snapshot, &indexes);
        });
    }

    /// Counts a message for an instance this process does not have ([`Gathering::note_unmatched`]),
    /// in order with the messages.
    pub fn note_unmatched(&self, key: String, message: String) {
        self.run(move |shared| lock(&shared.gathering).note_unmatched(key, message));
    }

    /// Counts a message marked as panoptic's that could not be routed, in order with the
    /// messages (the JS thread does not wait for the queue).
    pub fn note_decode_error(&self) {
        self.run(|shared| lock(&shared.gathering).note_decode_error());
    }

    /// Forgets a worker that exited (after the messages taken before).
    pub fn forget_worker(&self, worker: u32) {
        self.run(move |shared| lock(&shared.gathering).forget_worker(worker));
    }

    /// The workers that must send their series keys again (each once per message that lacked
    /// them), since the last call.
    pub fn take_resyncs(&self) -> Vec<u32> {
        std::mem::take(&mut *lock(&self.shared.resyncs))
    }

    /// Calls `f` with the gathering once every message taken so far is merged.
    pub fn with<T>(&self, f: impl FnOnce(&mut Gathering) -> T) -> T {
        let mut queued = lock(&self.shared.queued);
        while *queued > 0 {
            queued = self
                .shared
                .drained
                .wait(queued)
                .unwrap_or_else(|e| e.into_inner());
        }
        drop(queued);
        f(&mut lock(&self.shared.gathering))
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

    #[test]
    fn everything_taken_before_a_read_is_merged_in_it() {
        let intake = Intake::default();
        for w in 0..50 {
            intake.receive(Source::Worker(w), message(4.0, 2.0), 4.0);
        }
        intake.receive(Source::Worker(99), "garbage".into(), 4.0);
        // The master's own interval, taken after the messages, is in the same read.
        intake.keep_local(Closed {
            snapshot: Snapshot {
                k: 4.0,
                entries: vec![Entry {
                    key: Arc::new(SeriesKey::new("inc", &[], "n")),
                    value: Value::Counter {
                        count: 1.0,
                        total: 5.0,
                    },
                }],
                ..Snapshot::default()
            },
            indexes: vec![0],
        });
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
    fn resyncs_are_reported_once() {
        let intake = Intake::default();
        // A delta whose dictionary this master never saw.
        let snapshot = Snapshot {
            k: 1.0,
            ..Snapshot::default()
        };
        let dictionary = crate::wire::Dictionary { epoch: 5, base: 3 };
        let delta = encode(
            &snapshot,
            Keys::Delta {
                indexes: &[],
                definitions: &[],
                dictionary,
            },
        );
        intake.receive(Source::Worker(2), delta, 1.0);
        intake.forget_worker(3);
        intake.with(|_| {});
        assert_eq!(intake.take_resyncs(), [2]);
        assert!(intake.take_resyncs().is_empty());
    }
}
