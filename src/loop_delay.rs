//! The runtime metrics' sampler (docs/runtime.md): a native thread that samples a JS thread's
//! event-loop delay every `resolution` ms without waking an idle loop (see
//! `panoptic_core::record::loop_delay` for why and how) and, on a main thread, reads the
//! process's CPU time, resident memory and open descriptors just before each interval ends
//! (`panoptic_core::record::process`). It hands all of it to its instance's engine when the
//! interval closes (a `Source`), with the numbers JS writes into its cells at that close (what
//! needs V8): no JS call of its own, and no JS value per number.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use napi::bindgen_prelude::{Env, Float64ArraySlice};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::Status;
use napi_derive::napi;
use panoptic_core::record::clock::now_ms;
use panoptic_core::record::engine::{Cells, Native, Source};
use panoptic_core::record::loop_delay::{self, LoopState, Samples};
use panoptic_core::record::process::{self, CpuSplit};
use panoptic_core::snapshot::Counts;

use crate::error::Coded;
use crate::memory::{view, Owner};

/// A function the sampler calls on the JS thread to learn when its loop runs callbacks again
/// (what it does does not matter: an empty function). Weak: the sampler does not keep the process
/// alive. A queue of one: there is never more than one call in flight.
type Probe = ThreadsafeFunction<(), (), (), Status, false, true, 1>;

/// How many numbers JS can hand over through the cells (heap spaces, resource types, ...).
const CELLS: usize = 256;

/// How long before an interval's end the process is read (at most a quarter of the interval):
/// its numbers are then those of the interval's end, read off the JS thread before it closes.
const READ_AHEAD_MS: f64 = 5.0;

/// What a cell of JS holds for its series.
#[napi]
#[derive(Debug)]
pub enum RuntimeValue {
    /// A level (gauge series); NaN: none in this interval.
    Gauge,
    /// An increase in this interval (counter series); NaN: none.
    Count,
    /// A number of a `set` series (written once: handed over at every close).
    Set,
}

/// What the sampler reads natively, for the series JS names (`RuntimeSampler.native`).
#[napi]
pub enum RuntimeNative {
    /// User CPU seconds (counter).
    CpuUser,
    /// System CPU seconds (counter).
    CpuSystem,
    /// User and system CPU seconds (counter).
    Cpu,
    /// Resident memory, bytes (gauge).
    ResidentMemory,
    /// Open file descriptors (gauge).
    OpenFds,
    /// The event-loop delays, in the instance's unit (histogram: ms divided by the scale factor
    /// given to `lag`).
    Lag,
}

/// The process as last read: levels, and CPU increases not handed over yet.
#[derive(Debug, Default)]
struct ProcessState {
    split: CpuSplit,
    user: f64,
    system: f64,
    resident: Option<f64>,
    open_fds: Option<f64>,
}

/// Where each number goes: (cell or native quantity, series, kind).
#[derive(Debug, Default)]
struct Routes {
    cells: Vec<(usize, u32, RuntimeValue)>,
    cpu: [Option<u32>; 3],
    resident: Option<u32>,
    open_fds: Option<u32>,
    lag: Option<(u32, f64)>,
}

#[derive(Debug)]
struct Shared {
    samples: Mutex<Samples>,
    process: Mutex<ProcessState>,
    routes: Mutex<Routes>,
    cells: Arc<Cells>,
    /// Samples dropped since the sampler started (for JS's warning).
    dropped: Mutex<f64>,
    stopped: Mutex<bool>,
    wake: Condvar,
}

/// The runtime metrics' native side for the thread that creates it (docs/runtime.md).
#[napi]
pub struct RuntimeSampler {
    shared: Arc<Shared>,
    /// Whether the process's numbers are read natively here (else JS reads them).
    reads_process: bool,
}

#[napi]
impl RuntimeSampler {
    /// Starts sampling every `resolution_ms` ms (1 or more) on a thread of its own; `probe` is an
    /// empty function, called on this thread only when its loop is busy (or its state unreadable).
    /// With `process`, it also reads the process just before each end of the grid `start + k *
    /// interval` (epoch ms), where it can (`readsProcess`).
    #[napi(constructor, catch_unwind)]
    pub fn new(
        resolution_ms: u32,
        #[napi(ts_arg_type = "() => void")] probe: Probe,
        process: bool,
        start: f64,
        interval: f64,
    ) -> napi::Result<Self> {
        let shared = Arc::new(Shared {
            samples: Mutex::new(Samples::default()),
            process: Mutex::new(ProcessState::default()),
            routes: Mutex::new(Routes::default()),
            cells: Cells::new(CELLS, f64::NAN),
            dropped: Mutex::new(0.0),
            stopped: Mutex::new(false),
            wake: Condvar::new(),
        });
        // A first reading here: the first interval has the process's numbers, and the CPU time
        // since the process started (as prom-client counts).
        let reads_process = process && read_process(&shared);
        let grid = reads_process.then_some((start, interval));
        // Read here, on the JS thread: the file that tells the sampler what this thread does.
        let state = loop_delay::current_tid().and_then(loop_delay::state_file);
        let resolution = Duration::from_millis(u64::from(resolution_ms.max(1)));
        let theirs = Arc::clone(&shared);
        thread::Builder::new()
            .name("panoptic-loop-delay".into())
            .spawn(move || sample(&theirs, &probe, state.as_deref(), resolution, grid))
            .map_err(|e| {
                napi::Error::from_reason(format!("cannot start the event-loop delay sampler: {e}"))
            })?;
        Ok(RuntimeSampler {
            shared,
            reads_process,
        })
    }

    /// Whether the process's CPU, memory and descriptors are read natively (Linux); else JS
    /// reads them and hands them over through the cells.
    #[napi(getter)]
    pub fn reads_process(&self) -> bool {
        self.reads_process
    }

    /// The cells JS writes its numbers into when an interval closes (NaN: none), as a
    /// `Float64Array` over this sampler's memory.
    #[napi(catch_unwind)]
    pub fn cells<'env>(&self, env: &'env Env) -> Result<Float64ArraySlice<'env>, Coded> {
        let cells = &self.shared.cells;
        view(env, cells.as_slice(), Owner::Shared(cells.clone()))
    }

    /// Cell `cell` holds a `kind` number of the series of id `target`.
    #[napi]
    pub fn route(&self, cell: u32, target: u32, kind: RuntimeValue) {
        let cell = cell as usize;
        if cell < CELLS {
            let mut routes = lock(&self.shared.routes);
            routes.cells.retain(|(c, _, _)| *c != cell);
            routes.cells.push((cell, target, kind));
        }
    }

    /// What the sampler reads natively goes to the series of id `target`; for `Lag`, delays in
    /// ms are divided by `scale`.
    #[napi]
    pub fn native(&self, what: RuntimeNative, target: u32, scale: Option<f64>) {
        let mut routes = lock(&self.shared.routes);
        match what {
            RuntimeNative::CpuUser => routes.cpu[0] = Some(target),
            RuntimeNative::CpuSystem => routes.cpu[1] = Some(target),
            RuntimeNative::Cpu => routes.cpu[2] = Some(target),
            RuntimeNative::ResidentMemory => routes.resident = Some(target),
            RuntimeNative::OpenFds => routes.open_fds = Some(target),
            RuntimeNative::Lag => routes.lag = Some((target, scale.unwrap_or(1.0))),
        }
    }

    /// Delay samples dropped since the sampler started (more than it keeps between two closes).
    #[napi(getter)]
    pub fn dropped(&self) -> f64 {
        *lock(&self.shared.dropped)
    }

    /// Stops the sampler's thread (also when this object is collected).
    #[napi]
    pub fn stop(&self) {
        *lock(&self.shared.stopped) = true;
        self.shared.wake.notify_all();
    }

    /// The engine's source: hands this sampler's numbers to each interval that closes.
    pub(crate) fn source(&self) -> Box<dyn Source> {
        Box::new(RuntimeSource(Arc::clone(&self.shared)))
    }
}

impl Drop for RuntimeSampler {
    fn drop(&mut self) {
        self.stop();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding these locks leaves plain numbers behind: still usable.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Reads the process into `shared`: false where it cannot be read.
fn read_process(shared: &Shared) -> bool {
    let Some(r) = process::read() else {
        return false;
    };
    let mut p = lock(&shared.process);
    let (user, system) = p.split.advance(&r);
    p.user += user;
    p.system += system;
    p.resident = Some(r.resident);
    p.open_fds = r.open_fds;
    true
}

/// The sampler as its engine's [`Source`].
#[derive(Debug)]
struct RuntimeSource(Arc<Shared>);

impl Source for RuntimeSource {
    fn collect(&mut self, out: &mut Vec<Native>, counts: &mut Counts) {
        let shared = &self.0;
        let routes = lock(&shared.routes);
        for &(cell, target, ref kind) in &routes.cells {
            let v = shared.cells.get(cell);
            if !v.is_finite() {
                continue;
            }
            out.push(match kind {
                RuntimeValue::Gauge => Native::Gauge(target, v),
                RuntimeValue::Set => Native::Set(target, v),
                RuntimeValue::Count => {
                    // An increase is handed over once (the next close must not count it again,
                    // nor a close without JS: a terminated thread's).
                    shared.cells.set(cell, f64::NAN);
                    Native::Count(target, v)
                }
            });
        }
        {
            let mut p = lock(&shared.process);
            let (user, system) = (std::mem::take(&mut p.user), std::mem::take(&mut p.system));
            let cpu = [user, system, user + system];
            for (target, n) in routes.cpu.iter().zip(cpu) {
                if let Some(target) = *target {
                    out.push(Native::Count(target, n));
                }
            }
            if let (Some(target), Some(v)) = (routes.resident, p.resident) {
                out.push(Native::Gauge(target, v));
            }
            if let (Some(target), Some(v)) = (routes.open_fds, p.open_fds) {
                out.push(Native::Gauge(target, v));
            }
        }
        let drained = lock(&shared.samples).take();
        counts.dropped += drained.dropped as f64;
        if drained.dropped > 0 {
            *lock(&shared.dropped) += drained.dropped as f64;
        }
        if let Some((id, scale)) = routes.lag {
            let mut values = drained.values;
            for v in &mut values {
                *v /= scale;
            }
            out.push(Native::Values {
                id,
                zeros: drained.zeros,
                values,
            });
        }
    }

    fn forget(&mut self, ids: &[u32]) {
        let mut guard = lock(&self.0.routes);
        let routes = &mut *guard;
        routes.cells.retain(|(_, target, _)| !ids.contains(target));
        for target in routes.cpu.iter_mut() {
            if target.is_some_and(|t| ids.contains(&t)) {
                *target = None;
            }
        }
        for target in [&mut routes.resident, &mut routes.open_fds] {
            if target.is_some_and(|t| ids.contains(&t)) {
                *target = None;
            }
        }
        if routes.lag.is_some_and(|(t, _)| ids.contains(&t)) {
            routes.lag = None;
        }
    }
}

/// The sampler thread: a delay sample every `resolution`, and the process read just before each
/// end of `grid` (start, interval), until stopped or the JS thread is gone.
fn sample(
    shared: &Arc<Shared>,
    probe: &Probe,
    state: Option<&str>,
    resolution: Duration,
    grid: Option<(f64, f64)>,
) {
    // A call in flight: the loop has not run it yet (it is blocked); no second one is queued, so
    // a long block gives one sample of its whole delay, as a late timer would.
    let pending = Arc::new(AtomicBool::new(false));
    // The next reading of the process (epoch ms), just before the end of the interval.
    let read_at = |now: f64| {
        grid.map(|(start, interval)| {
            let ahead = READ_AHEAD_MS.min(interval / 4.0);
            let end = start + ((now + ahead - start) / interval).floor() * interval + interval;
            end - ahead
        })
    };
    let mut next_read = read_at(now_ms());
    let mut next_sample = Instant::now() + resolution;
    let mut stopped = lock(&shared.stopped);
    loop {
        let now = Instant::now();
        let until_read = next_read.map_or(Duration::MAX, |at| {
            Duration::from_secs_f64(((at - now_ms()) / 1000.0).max(0.0))
        });
        let wait = next_sample.saturating_duration_since(now).min(until_read);
        stopped = shared
            .wake
            .wait_timeout(stopped, wait)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
        if *stopped {
            return;
        }
        if let Some(at) = next_read {
            let now = now_ms();
            if now >= at {
                read_process(shared);
                // The next interval's (not this one's again, when the read was quick).
                next_read = read_at(now + 1.0);
            }
        }
        if Instant::now() < next_sample {
            continue;
        }
        next_sample += resolution;
        if next_sample < Instant::now() {
            // Late (a stopped VM, a busy machine): the next sample a resolution from now.
            next_sample = Instant::now() + resolution;
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
