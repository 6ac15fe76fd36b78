//! The bounded queue of batches between the exporter's thread (which formats each delivery into
//! batches and queues them, dropping the oldest when full) and the pusher's thread.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use super::targets::{Batch, Limits, Target};
use crate::export::{Delivery, Store};

/// The fields of [`PushStats`] that say how things are now (gauges among panoptic's own
/// metrics, [`crate::export::own`]); every other numeric field counts since the start.
pub const PUSH_GAUGES: &[&str] = &["queued_bytes"];

/// What a pusher did so far. panoptic's own metrics export every numeric field (see
/// [`PUSH_GAUGES`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PushStats {
    /// Batches and points the server took (2xx). A point is the target's unit: a line for
    /// InfluxDB, a series for remote write.
    pub pushed_batches: u64,
    pub pushed_points: u64,
    /// Batches and points dropped: the queue was full, the server refused them (4xx), or
    /// [`super::Pusher::stop`]'s deadline passed.
    pub dropped_batches: u64,
    pub dropped_points: u64,
    /// Points a server took the batch of but said it rejected (an OTLP partial success);
    /// not among the pushed points.
    pub rejected_points: u64,
    /// Requests made after a failed one, while backing off (normally the same batch again; the
    /// next one if the queue dropped it meanwhile).
    pub retries: u64,
    /// Requests that failed (connection errors, timeouts, non-2xx answers).
    pub failures: u64,
    /// Bytes queued now (the batch being sent included), never above the bound.
    pub queued_bytes: u64,
    /// The last failure, if any: the status and the start of the answer (InfluxDB: `HTTP 404:
    /// {"error":"database not found: \"x\""}`), or the connection error.
    pub last_error: Option<String>,
}

/// The largest batch in bytes (also at most a quarter of the queue's bound).
pub(super) const MAX_BATCH_BYTES: usize = 1 << 20;

#[derive(Default)]
pub(super) struct State {
    pub(super) queue: VecDeque<Batch>,
    pub(super) queued_bytes: usize,
    /// The first batch is being sent (it is not dropped to make room).
    pub(super) sending: bool,
    /// Set by [`super::Pusher::stop`]: send until then, then drop what is left.
    pub(super) deadline: Option<Instant>,
    pub(super) stats: PushStats,
}

impl State {
    pub(super) fn drop_batch(&mut self, index: usize) {
        if let Some(batch) = self.queue.remove(index) {
            self.queued_bytes -= batch.body.len();
            self.stats.dropped_batches += 1;
            self.stats.dropped_points += batch.points;
        }
    }
}

pub(super) struct Shared {
    pub(super) state: Mutex<State>,
    pub(super) wake: Condvar,
    /// No more deliveries are taken.
    pub(super) closed: AtomicBool,
    pub(super) target: Arc<dyn Target>,
    pub(super) max_queue_bytes: usize,
    pub(super) limits: Limits,
}

impl Shared {
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Encodes a delivery into batches and queues them (the subscriber).
    pub(super) fn take(&self, store: &Store, delivery: &Delivery) {
        if self.closed.load(Ordering::Relaxed) {
            return;
        }
        let mut batches = Vec::new();
        (self.target).encode(store, delivery, self.limits, &mut batches);
        if batches.is_empty() {
            return;
        }
        let mut state = self.lock();
        for batch in batches {
            // A batch larger than the whole queue (one huge `set` text) cannot be queued: the
            // queue stays within its bound, the batch being sent included.
            if batch.body.len() > self.max_queue_bytes {
                state.stats.dropped_batches += 1;
                state.stats.dropped_points += batch.points;
                continue;
            }
            state.queued_bytes += batch.body.len();
            state.queue.push_back(batch);
            // Make room: the oldest batches that are not being sent go first (the new one
            // last, when it is all there is besides the one being sent).
            while state.queued_bytes > self.max_queue_bytes {
                let oldest = usize::from(state.sending);
                if oldest >= state.queue.len() {
                    break;
                }
                state.drop_batch(oldest);
            }
        }
        drop(state);
        self.wake.notify_one();
    }
}
