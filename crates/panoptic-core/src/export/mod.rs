//! Exports: what the master (or a standalone process) serves to people and back-ends, from its
//! deliveries.
//!
//! Each delivery is handed to an [`Exporter`]; a process-wide thread adds it into a cumulative
//! [`Store`] and then tells its subscribers (pushes to back-ends, live-page streams). Readers (the
//! HTTP server's requests) take the store's read lock; neither they nor the exporter's thread
//! ever run on, or wait for, the JS thread: handing over a delivery is a channel send.

pub mod admission;
pub mod auth;
pub mod frame;
mod gzip;
pub mod influx;
pub mod otlp;
pub mod own;
pub mod pandora;
pub mod panoptes;
pub mod prometheus;
pub mod push;
pub mod routes;
pub mod select;
pub mod server;
pub mod store;
pub mod tls;
mod view;

use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex, OnceLock, RwLock, RwLockReadGuard};

use crate::gather::Delivery;
use own::{Own, OwnSource};
pub use store::{Cumulative, Origin, Process, Series, Store, Totals};

/// Called on the exporter's thread after each delivery was added to the store.
pub type Subscriber = Box<dyn FnMut(&Store, &Delivery) + Send>;

enum Job {
    Add(Delivery),
    Forget(u32),
    KeepProcesses,
    Then(Task),
}

type Task = Box<dyn FnOnce() + Send>;

/// The process-wide thread that runs every exporter's jobs, in order (None if it could not
/// start: jobs then run on the caller's thread). One thread for all instances: a master has few
/// instances and each delivery is a short job.
fn thread() -> Option<&'static Mutex<Sender<Task>>> {
    static THREAD: OnceLock<Option<Mutex<Sender<Task>>>> = OnceLock::new();
    THREAD
        .get_or_init(|| {
            let (send, receive) = channel::<Task>();
            crate::background::spawn("panoptic-export", move || {
                receive.into_iter().for_each(|task| task())
            })
            .ok()
            .map(|_| Mutex::new(send))
        })
        .as_ref()
}

#[derive(Default)]
struct Shared {
    store: RwLock<Store>,
    /// Each with the number [`Exporter::subscribe`] gave it (numbers shared with the sources).
    subscribers: Mutex<Vec<(u64, Subscriber)>>,
    next_subscriber: std::sync::atomic::AtomicU64,
    /// Sources of panoptic's own metrics, each with the number [`Exporter::add_source`] gave it.
    sources: Mutex<Vec<(u64, OwnSource)>>,
}

/// See the module documentation.
#[derive(Clone)]
pub struct Exporter(Arc<Shared>);

/// A shared handle on an exporter's store, for readers on other threads.
#[derive(Clone)]
pub struct StoreHandle(Arc<Shared>);

impl StoreHandle {
    /// Reads the store (waits while a delivery is being added, never for the JS thread).
    pub fn read(&self) -> RwLockReadGuard<'_, Store> {
        self.0.store.read().unwrap_or_else(|e| e.into_inner())
    }

    /// panoptic's own metrics: the store's (`store`, read by the caller) and every source's.
    pub fn own(&self, store: &Store) -> Own {
        let mut own = Own::of_store(store);
        for (_, source) in lock(&self.0.sources).iter() {
            source(&mut own);
        }
        own
    }
}

impl Exporter {
    /// An exporter for the instance `origin` describes.
    pub fn new(origin: Origin) -> Exporter {
        Exporter(Arc::new(Shared {
            store: RwLock::new(Store::new(origin)),
            subscribers: Mutex::default(),
            next_subscriber: Default::default(),
            sources: Mutex::default(),
        }))
    }

    /// Hands over a delivery (returns at once).
    pub fn add(&self, delivery: Delivery) {
        self.submit(Job::Add(delivery));
    }

    /// Forgets a worker that exited (see [`Store::forget_worker`]).
    pub fn forget_worker(&self, worker: u32) {
        self.submit(Job::Forget(worker));
    }

    /// From the next delivery on, keeps each process's own series too.
    pub fn keep_processes(&self) {
        self.submit(Job::KeepProcesses);
    }

    /// Waits until every job given before is done.
    pub fn flush(&self) {
        let (done, wait) = channel();
        self.then(move || {
            let _ = done.send(());
        });
        let _ = wait.recv();
    }

    /// Runs `task` on the exporter's thread once every job given before is done (returns at
    /// once): e.g. closing a subscriber after the deliveries already handed over reached it.
    pub fn then(&self, task: impl FnOnce() + Send + 'static) {
        self.submit(Job::Then(Box::new(task)));
    }

    /// Adds a subscriber, called after each later delivery; returns its number for
    /// [`Exporter::unsubscribe`].
    pub fn subscribe(&self, subscriber: Subscriber) -> u64 {
        let id = (self.0.next_subscriber).fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        lock(&self.0.subscribers).push((id, subscriber));
        id
    }

    /// Removes the subscriber `id` (it is not called again once this returns).
    pub fn unsubscribe(&self, id: u64) {
        lock(&self.0.subscribers).retain(|(n, _)| *n != id);
    }

    /// Adds a source of panoptic's own metrics (see [`own`]); returns its number for
    /// [`Exporter::remove_source`].
    pub fn add_source(&self, source: OwnSource) -> u64 {
        let id = (self.0.next_subscriber).fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        lock(&self.0.sources).push((id, source));
        id
    }

    /// Removes the source `id`.
    pub fn remove_source(&self, id: u64) {
        lock(&self.0.sources).retain(|(n, _)| *n != id);
    }

    /// A handle for readers.
    pub fn store(&self) -> StoreHandle {
        StoreHandle(self.0.clone())
    }

    fn submit(&self, job: Job) {
        let shared = self.0.clone();
        let task: Task = Box::new(move || run(&shared, job));
        match thread() {
            Some(sender) => {
                if let Err(returned) = lock(sender).send(task) {
                    (returned.0)();
                }
            }
            None => task(),
        }
    }
}

fn run(shared: &Shared, job: Job) {
    // A bug in a subscriber or in the store must not stop the thread.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let write = || shared.store.write().unwrap_or_else(|e| e.into_inner());
        match job {
            Job::Add(delivery) => {
                write().add(&delivery);
                let read = shared.store.read().unwrap_or_else(|e| e.into_inner());
                for (_, subscriber) in lock(&shared.subscribers).iter_mut() {
                    subscriber(&read, &delivery);
                }
            }
            Job::Forget(worker) => write().forget_worker(worker),
            Job::KeepProcesses => write().keep_processes(),
            Job::Then(task) => task(),
        }
    }));
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(all(test, any(target_os = "linux", target_os = "android")))]
mod tests {
    use super::*;
    use crate::background::{tests::nice, NICE};

    #[test]
    fn the_exporter_works_below_the_js_threads() {
        let exporter = Exporter::new(Origin::default());
        let (sent, got) = std::sync::mpsc::channel();
        exporter.then(move || {
            let name = std::thread::current().name().map(String::from);
            let _ = sent.send((nice(), name));
        });
        let (niced, name) = got.recv().unwrap();
        assert_eq!(name.as_deref(), Some("panoptic-export"));
        assert_eq!(niced, nice().max(NICE));
    }
}
