//! Pushes every delivery to a back-end from a thread of its own: one module for every target
//! (InfluxDB 1.x, Prometheus remote write, ...), which share the queue, the retry and drop
//! policy, the thread and the HTTP sender; a [`Target`] (in `targets/`) only encodes a delivery
//! into batches of request bodies and says where they go.
//!
//! [`Pusher::subscriber`] runs on the exporter's thread: the target encodes the delivery into
//! batches (at most [`QueueOptions::batch_points`] points and about a quarter of the queue's
//! bound in bytes, 1 MiB at most) and they are queued without waiting for anything. The queue
//! holds at most [`QueueOptions::max_queue_bytes`] bytes (the batch being sent included): when a
//! new batch does not fit, the oldest batches waiting are dropped (after an outage the newest
//! data is worth the most) and counted in [`PushStats::dropped_points`]. So the pusher never
//! blocks the exporter and never grows without bound, whatever the server does.
//!
//! The pusher's thread sends one batch at a time, oldest first:
//! - 2xx: pushed; a target may read in the answer points the server did not take (an OTLP
//!   partial success: [`Target::rejected`]), counted in [`PushStats::rejected_points`];
//! - a connection or timeout error, or a status the target retries ([`Target::retry`]: by
//!   default 5xx and 429; OTLP's 429, 502, 503 and 504): the batch stays first and is sent
//!   again after a backoff that doubles from [`QueueOptions::min_backoff`] up to
//!   [`QueueOptions::max_backoff`], with jitter (a uniform draw in the upper half of the delay,
//!   so many processes restarted together do not retry in step); a `Retry-After` header in
//!   seconds lengthens it (up to the cap);
//! - any other answer (4xx, such as InfluxDB's 404 for a database that does not exist, 400 for
//!   points refused, 401 for bad credentials; or a redirect, which is not followed): the batch
//!   is dropped and counted, never sent again; [`PushStats::last_error`] says why (the status
//!   and the start of the server's message). A 400 "partial write" stored the other points of
//!   the batch, but all of them are counted as dropped.
//!
//! [`Pusher::stop`] stops taking deliveries, sends what is queued until a deadline (a request
//! under way when it passes is cut short), drops and counts what is left, and ends the thread.
//! Plain `http://` only: this build has no TLS (an `https://` URL is refused when the options
//! are checked; put a TLS-terminating proxy on loopback in front of a remote server).
//! Proxies from the environment (`HTTP_PROXY`, ...) are not used.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::Subscriber;
use queue::{Shared, MAX_BATCH_BYTES};
use sender::Sender;

mod options;
mod queue;
mod sender;
pub mod targets;
mod thread;

pub use options::{
    PushError, QueueOptions, QueueSpec, DEFAULT_BATCH_POINTS, DEFAULT_MAX_QUEUE_BYTES,
};
pub use queue::{PushStats, PUSH_GAUGES};
pub use targets::influx::{InfluxOptions, InfluxSpec};
pub use targets::otlp::{OtlpOptions, OtlpSpec};
pub use targets::remote_write::{RemoteWriteOptions, RemoteWriteSpec};
pub use targets::{Batch, Limits, Request, Target};

/// See the module documentation.
pub struct Pusher {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Pusher {
    /// Checks the queue options and starts the pusher's thread for `target` (nothing is sent
    /// before the first delivery; an unreachable server is not an error here, it is retried).
    pub fn start(target: impl Target, queue: &QueueOptions) -> Result<Pusher, PushError> {
        queue.check(target.option())?;
        let sender = Sender::new(target.request(), queue);
        let name = format!("panoptic-{}", target.option());
        let server = target.server();
        let shared = Arc::new(Shared {
            state: Mutex::default(),
            wake: Condvar::new(),
            closed: AtomicBool::new(false),
            target: Arc::new(target),
            max_queue_bytes: queue.max_queue_bytes,
            limits: Limits {
                points: queue.batch_points,
                bytes: (queue.max_queue_bytes / 4).min(MAX_BATCH_BYTES),
            },
        });
        let (min_backoff, max_backoff) = (queue.min_backoff, queue.max_backoff);
        let thread = {
            let shared = shared.clone();
            crate::background::spawn(&name, move || {
                thread::run(&sender, &shared, min_backoff, max_backoff)
            })
            .map_err(|e| {
                PushError::Thread(format!("the {server} pusher's thread did not start: {e}"))
            })?
        };
        Ok(Pusher {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// A subscriber for [`super::Exporter::subscribe`]: encodes each delivery and queues it
    /// (never waits for the network).
    pub fn subscriber(&self) -> Subscriber {
        let shared = self.shared.clone();
        Box::new(move |store, delivery| shared.take(store, delivery))
    }

    /// What the pusher did so far.
    pub fn stats(&self) -> PushStats {
        let state = self.shared.lock();
        PushStats {
            queued_bytes: state.queued_bytes as u64,
            ..state.stats.clone()
        }
    }

    /// Stops taking deliveries, keeps sending what is queued for at most `flush`, then drops
    /// (and counts) what is left and ends the thread; returns the final stats. Waits for the
    /// thread: at most `flush`, plus a moment for a request under way to be cut short. Calling
    /// it again returns the stats at once.
    pub fn stop(&self, flush: Duration) -> PushStats {
        self.close(flush);
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
        self.stats()
    }

    /// Whether the pusher's thread has ended (after [`Pusher::close`]: it sent or dropped
    /// everything).
    pub fn finished(&self) -> bool {
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner());
        thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Stops taking deliveries and leaves the thread `flush` to send what is queued, then drop
    /// (and count) the rest; returns at once (see [`Pusher::stop`] to wait).
    pub fn close(&self, flush: Duration) {
        self.shared.closed.store(true, Ordering::Relaxed);
        let deadline = Instant::now() + flush;
        self.shared.lock().deadline.get_or_insert(deadline);
        self.shared.wake.notify_all();
    }
}

impl Drop for Pusher {
    /// Like [`Pusher::stop`] with no time to flush, without waiting for the thread (it ends
    /// after the request under way, if any).
    fn drop(&mut self) {
        self.close(Duration::ZERO);
    }
}

#[cfg(test)]
mod tests;
