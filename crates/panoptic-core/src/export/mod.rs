//! Exports: what the master (or a standalone process) serves to people and back-ends, from its
//! deliveries.
//!
//! Each delivery is handed to an [`Exporter`], whose own thread adds it into a cumulative
//! [`Store`] and then tells its subscribers (pushes to back-ends, live-page streams). Readers (the
//! HTTP server's requests) take the store's read lock; neither they nor the exporter's thread
//! ever run on, or wait for, the JS thread: handing over a delivery is a channel send.

pub mod store;

use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};

use crate::gather::Delivery;
pub use store::{Cumulative, Origin, Process, Series, Store};

/// Called on the exporter's thread after each delivery was added to the store.
pub type Subscriber = Box<dyn FnMut(&Store, &Delivery) + Send>;

enum Job {
    Add(Delivery),
    Forget(u32),
    KeepProcesses,
    Flush(Sender<()>),
}

/// See the module documentation. Dropping it stops its thread (after the jobs already given).
pub struct Exporter {
    store: Arc<RwLock<Store>>,
    subscribers: Arc<Mutex<Vec<Subscriber>>>,
    jobs: Mutex<Sender<Job>>,
}

/// A shared handle on an exporter's store, for readers on other threads.
#[derive(Debug, Clone)]
pub struct StoreHandle(Arc<RwLock<Store>>);

impl StoreHandle {
    /// Reads the store (waits while a delivery is being added, never for the JS thread).
    pub fn read(&self) -> RwLockReadGuard<'_, Store> {
        self.0.read().unwrap_or_else(|e| e.into_inner())
    }
}

impl Exporter {
    /// An exporter for the instance `origin` describes, with its thread started (if no thread
    /// can be started, each job runs on the caller's thread).
    pub fn new(origin: Origin) -> Exporter {
        let store = Arc::new(RwLock::new(Store::new(origin)));
        let subscribers: Arc<Mutex<Vec<Subscriber>>> = Arc::default();
        let (send, receive) = channel::<Job>();
        let (s, subs) = (store.clone(), subscribers.clone());
        let run = move |job| run(&s, &subs, job);
        let jobs = match std::thread::Builder::new()
            .name("panoptic-export".into())
            .spawn(move || receive.into_iter().for_each(run))
        {
            Ok(_) => send,
            Err(_) => {
                // No thread: a channel whose jobs run at once, on the sender's thread.
                let (send, receive) = channel::<Job>();
                drop(receive);
                send
            }
        };
        Exporter {
            store,
            subscribers,
            jobs: Mutex::new(jobs),
        }
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
        self.submit(Job::Flush(done));
        let _ = wait.recv();
    }

    /// Adds a subscriber, called after each later delivery.
    pub fn subscribe(&self, subscriber: Subscriber) {
        lock(&self.subscribers).push(subscriber);
    }

    /// A handle for readers.
    pub fn store(&self) -> StoreHandle {
        StoreHandle(self.store.clone())
    }

    fn submit(&self, job: Job) {
        if let Err(returned) = lock(&self.jobs).send(job) {
            run(&self.store, &self.subscribers, returned.0);
        }
    }
}

fn run(store: &RwLock<Store>, subscribers: &Mutex<Vec<Subscriber>>, job: Job) {
    // A bug in a subscriber or in the store must not stop the thread.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut write = store.write().unwrap_or_else(|e| e.into_inner());
        match job {
            Job::Add(delivery) => {
                write.add(&delivery);
                drop(write);
                let read = store.read().unwrap_or_else(|e| e.into_inner());
                for subscriber in lock(subscribers).iter_mut() {
                    subscriber(&read, &delivery);
                }
            }
            Job::Forget(worker) => write.forget_worker(worker),
            Job::KeepProcesses => write.keep_processes(),
            Job::Flush(done) => {
                let _ = done.send(());
            }
        }
    }));
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
