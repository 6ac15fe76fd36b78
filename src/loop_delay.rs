//! The event-loop delay sampler: a native thread that samples a JS thread's event-loop delay
//! every `resolution` ms without waking an idle loop (see `panoptic_core::record::loop_delay`
//! for why and how), keeping the samples until the JS thread drains them into its histogram.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use napi::bindgen_prelude::Float64Array;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::Status;
use napi_derive::napi;
use panoptic_core::record::loop_delay::{self, LoopState, Samples};

/// A function the sampler calls on the JS thread to learn when its loop runs callbacks again
/// (what it does does not matter: an empty function). Weak: the sampler does not keep the process
/// alive. A queue of one: there is never more than one call in flight.
type Probe = ThreadsafeFunction<(), (), (), Status, false, true, 1>;

struct Shared {
    samples: Mutex<Samples>,
    stopped: Mutex<bool>,
    wake: Condvar,
}

/// Samples the event-loop delay of the thread that creates it (docs/runtime.md).
#[napi]
pub struct LoopDelaySampler {
    shared: Arc<Shared>,
}

#[napi]
impl LoopDelaySampler {
    /// Starts sampling every `resolution_ms` ms (1 or more) on a thread of its own; `probe` is an
    /// empty function, called on this thread only when its loop is busy (or its state unreadable).
    #[napi(constructor, catch_unwind)]
    pub fn new(
        resolution_ms: u32,
        #[napi(ts_arg_type = "() => void")] probe: Probe,
    ) -> napi::Result<Self> {
        let shared = Arc::new(Shared {
            samples: Mutex::new(Samples::default()),
            stopped: Mutex::new(false),
            wake: Condvar::new(),
        });
        // Read here, on the JS thread: the file that tells the sampler what this thread does.
        let state = loop_delay::current_tid().and_then(loop_delay::state_file);
        let resolution = Duration::from_millis(u64::from(resolution_ms.max(1)));
        let theirs = Arc::clone(&shared);
        thread::Builder::new()
            .name("panoptic-loop-delay".into())
            .spawn(move || sample(&theirs, &probe, state.as_deref(), resolution))
            .map_err(|e| {
                napi::Error::from_reason(format!("cannot start the event-loop delay sampler: {e}"))
            })?;
        Ok(LoopDelaySampler { shared })
    }

    /// The samples since the last drain: `[idle samples (delay 0), dropped samples, delays in
    /// ms...]`.
    #[napi]
    pub fn drain(&self) -> Float64Array {
        let values = lock(&self.shared.samples).drain();
        Float64Array::new(values)
    }

    /// Stops the sampler's thread (also when this object is collected).
    #[napi]
    pub fn stop(&self) {
        *lock(&self.shared.stopped) = true;
        self.shared.wake.notify_all();
    }
}

impl Drop for LoopDelaySampler {
    fn drop(&mut self) {
        self.stop();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding these locks leaves plain counts behind: still usable.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The sampler thread: every `resolution`, one sample, until stopped or the JS thread is gone.
fn sample(shared: &Arc<Shared>, probe: &Probe, state: Option<&str>, resolution: Duration) {
    // A call in flight: the loop has not run it yet (it is blocked); no second one is queued, so
    // a long block gives one sample of its whole delay, as a late timer would.
    let pending = Arc::new(AtomicBool::new(false));
    let mut stopped = lock(&shared.stopped);
    loop {
        stopped = shared
            .wake
            .wait_timeout(stopped, resolution)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
        if *stopped {
            return;
        }
        if pending.load(Ordering::Acquire) {
            // A call the JS thread will never run: its environment is gone.
            if probe.aborted() {
                return;
            }
            continue;
        }
        if state.map(loop_delay::read_state) == Some(LoopState::Waiting) {
            lock(&shared.samples).idle();
            continue;
        }
        pending.store(true, Ordering::Release);
        let asked = Instant::now();
        let (theirs, done) = (Arc::clone(shared), Arc::clone(&pending));
        let status = probe.call_with_return_value(
            (),
            ThreadsafeFunctionCallMode::NonBlocking,
            move |_, _| {
                lock(&theirs.samples).push(asked.elapsed().as_secs_f64() * 1000.0);
                done.store(false, Ordering::Release);
                Ok(())
            },
        );
        match status {
            Status::Ok => {}
            // The JS thread is gone (its environment closing): nothing left to sample.
            Status::Closing => return,
            // Not queued (a full queue cannot happen with one call in flight): no sample.
            _ => pending.store(false, Ordering::Release),
        }
    }
}
