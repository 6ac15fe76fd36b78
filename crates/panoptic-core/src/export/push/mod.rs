//! Pushes every delivery to InfluxDB 1.x (`POST /write?db=..&precision=..`) from a thread of
//! its own.
//!
//! [`Pusher::subscriber`] runs on the exporter's thread: it writes the delivery's line protocol
//! ([`super::influx`]), cuts it into batches (at most [`PushOptions::batch_points`] points and
//! at most a quarter of the queue's bound in bytes, 1 MiB at most) and queues them without
//! waiting for anything. The queue holds at most [`PushOptions::max_queue_bytes`] bytes (the
//! batch being sent included): when a new batch does not fit, the oldest batches waiting are
//! dropped (after an outage the newest data is worth the most, and InfluxDB takes points in any
//! order) and counted in [`PushStats::dropped_points`]. So the pusher never blocks the exporter
//! and never grows without bound, whatever InfluxDB does.
//!
//! The pusher's thread sends one batch at a time, oldest first:
//! - 2xx: pushed;
//! - a connection or timeout error, 5xx or 429: the batch stays first and is sent again after
//!   a backoff that doubles from [`PushOptions::min_backoff`] up to
//!   [`PushOptions::max_backoff`], with jitter (a uniform draw in the upper half of the delay,
//!   so many processes restarted together do not retry in step); a `Retry-After` header in
//!   seconds lengthens it (up to the cap);
//! - any other answer (4xx, such as 404 for a database that does not exist, 400 for points
//!   InfluxDB refuses, 401 for bad credentials; or a redirect, which is not followed): the
//!   batch is dropped and counted, never sent again; [`PushStats::last_error`] says why (the
//!   status and the start of InfluxDB's message). A 400 "partial write" stored the other points
//!   of the batch, but all of them are counted as dropped.
//!
//! [`Pusher::stop`] stops taking deliveries, sends what is queued until a deadline (a request
//! under way when it passes is cut short), drops and counts what is left, and ends the thread.
//! Plain `http://` only: this build has no TLS (an `https://` URL is refused when the options
//! are checked; put a TLS-terminating proxy on loopback in front of a remote InfluxDB).
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

pub use options::{
    PushError, PushOptions, PushSpec, DEFAULT_BATCH_POINTS, DEFAULT_MAX_QUEUE_BYTES,
};
pub use queue::{PushStats, PUSH_GAUGES};

/// See the module documentation.
pub struct Pusher {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Pusher {
    /// Checks the options and starts the pusher's thread (nothing is sent before the first
    /// delivery; an unreachable InfluxDB is not an error here, it is retried).
    pub fn start(options: PushOptions) -> Result<Pusher, PushError> {
        options.check()?;
        let shared = Arc::new(Shared {
            state: Mutex::default(),
            wake: Condvar::new(),
            closed: AtomicBool::new(false),
            lines: options.lines.clone(),
            max_queue_bytes: options.max_queue_bytes,
            batch_points: options.batch_points,
            batch_bytes: (options.max_queue_bytes / 4).min(MAX_BATCH_BYTES),
        });
        let sender = Sender::new(&options)?;
        let thread = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("panoptic-influx".into())
                .spawn(move || sender.run(&shared))
                .map_err(|e| PushError::Thread(e.to_string()))?
        };
        Ok(Pusher {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// A subscriber for [`super::Exporter::subscribe`]: formats each delivery and queues it
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
