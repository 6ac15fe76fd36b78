//! The pusher's thread: sends the oldest batch until the queue is empty and the pusher
//! stopped; retries with backoff, drops what the server refuses, drops what is left at the stop
//! deadline.

use std::time::{Duration, Instant};

use super::queue::Shared;
use super::sender::{Outcome, Sender};

/// The thread: sends the first batch until the queue is empty and the pusher stopped.
pub(super) fn run(sender: &Sender, shared: &Shared, min_backoff: Duration, max_backoff: Duration) {
    let mut backoff: Option<Duration> = None;
    loop {
        let (body, deadline) = {
            let mut state = shared.lock();
            loop {
                if let Some(deadline) = state.deadline {
                    if state.queue.is_empty() || Instant::now() >= deadline {
                        while !state.queue.is_empty() {
                            state.drop_batch(0);
                        }
                        return;
                    }
                }
                if let Some(batch) = state.queue.front() {
                    let body = batch.body.clone();
                    state.sending = true;
                    if backoff.is_some() {
                        state.stats.retries += 1;
                    }
                    break (body, state.deadline);
                }
                state = shared.wake.wait(state).unwrap_or_else(|e| e.into_inner());
            }
        };
        let outcome = sender.send(&*shared.target, &body, deadline);
        let mut state = shared.lock();
        state.sending = false;
        let wait = match outcome {
            Outcome::Sent(rejected) => {
                if let Some(batch) = state.queue.pop_front() {
                    state.queued_bytes -= batch.body.len();
                    state.stats.pushed_batches += 1;
                    let (rejected, message) = rejected.unwrap_or_default();
                    let rejected = rejected.min(batch.points);
                    state.stats.pushed_points += batch.points - rejected;
                    state.stats.rejected_points += rejected;
                    if !message.is_empty() {
                        let message =
                            format!("partial success, {rejected} points rejected: {message}");
                        state.stats.last_error = Some(message);
                    }
                }
                backoff = None;
                continue;
            }
            Outcome::Refused(error) => {
                state.stats.failures += 1;
                state.stats.last_error = Some(error);
                state.drop_batch(0);
                // The server answers: the next batch goes at once.
                backoff = None;
                continue;
            }
            Outcome::Retry(error, asked) => {
                state.stats.failures += 1;
                state.stats.last_error = Some(error);
                let next = match backoff {
                    None => min_backoff,
                    Some(b) => (b * 2).min(max_backoff),
                };
                backoff = Some(next);
                let half = next / 2;
                let jitter = half.mul_f64(fastrand::f64());
                (half + jitter).max(asked.unwrap_or_default().min(max_backoff))
            }
        };
        // Back off; a stop() shortens the wait to its deadline.
        let until = Instant::now() + wait;
        loop {
            let end = state.deadline.map_or(until, |d| d.min(until));
            let now = Instant::now();
            if now >= end {
                break;
            }
            state = (shared.wake.wait_timeout(state, end - now))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}
