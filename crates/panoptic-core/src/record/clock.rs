//! The interval clock: one native thread per process that publishes, for every registered grid
//! (`start + k * interval`), the number `k` of the interval the wall clock is in.
//!
//! Why: a datum belongs to the interval in which it was recorded. Reading the time on every record
//! costs tens of nanoseconds in JS; reading a published number costs one typed-array load. Each
//! grid gets a cell in [`cells`], a static array that JS views as a `Float64Array` (an external
//! ArrayBuffer over this memory, made by the binding; static memory is never freed, so no thread
//! or isolate can outlive it). The thread sleeps until the next boundary of any grid, then stores
//! the new interval numbers.
//!
//! Correctness: the thread stores `k` only after the wall clock passed `start + k * interval`, and
//! never stores a smaller number than before (a wall clock stepped back does not reopen a closed
//! interval). A JS record reads its cell, and when the cell differs from the interval its state
//! holds, it first closes that interval (see `lib/instance.js`). A record is therefore attributed
//! to the interval of the last boundary the thread has published: it can land in the previous
//! interval only during the thread's wake-up latency after a boundary (tens of microseconds on an
//! idle machine), never in a later one, and never in one already collected.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Number of cells: the most grids (live Panopticon instances) one process can have at once.
pub const CELLS: usize = 4096;

static CELL_MEMORY: [AtomicU64; CELLS] = [const { AtomicU64::new(0) }; CELLS];

/// The cells, each holding an `f64` (as its bits): the current interval number of its grid.
pub fn cells() -> &'static [AtomicU64; CELLS] {
    &CELL_MEMORY
}

/// Reads a cell as the interval number it holds.
pub fn read(cell: usize) -> f64 {
    f64::from_bits(CELL_MEMORY[cell].load(Ordering::Acquire))
}

/// Milliseconds since the Unix epoch, with sub-millisecond precision.
pub fn now_ms() -> f64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64() * 1000.0,
        Err(e) => -e.duration().as_secs_f64() * 1000.0,
    }
}

/// The number of the interval of the grid `start + k * interval` that contains `t`. Intervals are
/// half-open: a time exactly on a boundary belongs to the interval that starts there.
pub fn index_at(t: f64, start: f64, interval: f64) -> f64 {
    ((t - start) / interval).floor()
}

/// Errors from [`register`].
#[derive(Debug, Clone, PartialEq)]
pub enum ClockError {
    /// Every cell is taken: too many live instances in this process.
    Full,
    /// `interval` is not a positive finite number or `start` is not finite.
    BadGrid { start: f64, interval: f64 },
}

impl std::fmt::Display for ClockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClockError::Full => write!(
                f,
                "too many live Panopticon instances in this process (at most {CELLS}); stop() the ones you no longer use"
            ),
            ClockError::BadGrid { start, interval } => write!(
                f,
                "an interval grid needs a finite start and a positive finite interval, got start {start} and interval {interval}"
            ),
        }
    }
}

impl std::error::Error for ClockError {}

#[derive(Debug, Clone, Copy)]
struct Grid {
    start: f64,
    interval: f64,
    published: f64,
}

impl Grid {
    fn next_boundary(&self) -> f64 {
        self.start + (self.published + 1.0) * self.interval
    }
}

struct Registry {
    grids: Vec<Option<Grid>>,
    free: Vec<usize>,
    thread_started: bool,
}

struct Shared {
    registry: Mutex<Registry>,
    wake: Condvar,
}

fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| Shared {
        registry: Mutex::new(Registry {
            grids: Vec::new(),
            free: Vec::new(),
            thread_started: false,
        }),
        wake: Condvar::new(),
    })
}

fn lock() -> MutexGuard<'static, Registry> {
    // The registry stays consistent even if a holder panicked: every update is a single store.
    shared()
        .registry
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Registers a grid; its cell holds the current interval number before this returns.
pub fn register(start: f64, interval: f64) -> Result<usize, ClockError> {
    if !(start.is_finite() && interval.is_finite() && interval > 0.0) {
        return Err(ClockError::BadGrid { start, interval });
    }
    let mut reg = lock();
    let cell = match reg.free.pop() {
        Some(cell) => cell,
        None if reg.grids.len() < CELLS => {
            reg.grids.push(None);
            reg.grids.len() - 1
        }
        None => return Err(ClockError::Full),
    };
    let published = index_at(now_ms(), start, interval);
    CELL_MEMORY[cell].store(published.to_bits(), Ordering::Release);
    reg.grids[cell] = Some(Grid {
        start,
        interval,
        published,
    });
    if !reg.thread_started {
        reg.thread_started = true;
        std::thread::Builder::new()
            .name("panoptic-clock".into())
            .spawn(run)
            .expect("spawn the panoptic clock thread");
    }
    drop(reg);
    shared().wake.notify_one();
    Ok(cell)
}

/// Frees a cell. The cell's memory keeps its last value until the cell is reused.
pub fn unregister(cell: usize) {
    let mut reg = lock();
    if let Some(slot @ Some(_)) = reg.grids.get_mut(cell) {
        *slot = None;
        reg.free.push(cell);
    }
}

/// Publishes the interval numbers due at time `now`; returns the next boundary of any grid.
fn publish(reg: &mut Registry, now: f64) -> Option<f64> {
    let mut next: Option<f64> = None;
    for (cell, grid) in reg.grids.iter_mut().enumerate() {
        let Some(grid) = grid else { continue };
        let k = index_at(now, grid.start, grid.interval);
        if k > grid.published {
            grid.published = k;
            CELL_MEMORY[cell].store(k.to_bits(), Ordering::Release);
        }
        let boundary = grid.next_boundary();
        next = Some(next.map_or(boundary, |n: f64| n.min(boundary)));
    }
    next
}

fn run() {
    let mut reg = lock();
    loop {
        let now = now_ms();
        reg = match publish(&mut reg, now) {
            // Rounding can put `next` a hair before the time at which `index_at` flips: wait at
            // least 50 us so that case costs a few wake-ups, not a spin.
            Some(next) => {
                let wait = Duration::from_secs_f64(((next - now) / 1000.0).max(50e-6));
                shared()
                    .wake
                    .wait_timeout(reg, wait)
                    .unwrap_or_else(|p| p.into_inner())
                    .0
            }
            None => shared().wake.wait(reg).unwrap_or_else(|p| p.into_inner()),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_is_half_open() {
        assert_eq!(index_at(999.0, 0.0, 1000.0), 0.0);
        assert_eq!(index_at(1000.0, 0.0, 1000.0), 1.0);
        assert_eq!(index_at(1500.0, 250.0, 500.0), 2.0);
        assert_eq!(index_at(100.0, 1000.0, 300.0), -3.0);
    }

    #[test]
    fn rejects_bad_grids() {
        assert!(matches!(
            register(0.0, 0.0),
            Err(ClockError::BadGrid { .. })
        ));
        assert!(matches!(
            register(f64::NAN, 10.0),
            Err(ClockError::BadGrid { .. })
        ));
    }

    #[test]
    fn publishes_each_boundary() {
        let interval = 20.0;
        let cell = register(0.0, interval).unwrap();
        let first = read(cell);
        assert!(first <= index_at(now_ms(), 0.0, interval));
        // Wait (bounded) until the thread has published a later interval.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while read(cell) < first + 2.0 {
            assert!(std::time::Instant::now() < deadline, "clock did not tick");
            std::thread::sleep(Duration::from_millis(2));
        }
        // Published numbers never run ahead of the wall clock.
        assert!(read(cell) <= index_at(now_ms(), 0.0, interval));
        unregister(cell);
        // A freed cell is reused.
        let again = register(5.0, 1e9).unwrap();
        assert_eq!(again, cell);
        assert_eq!(read(again), index_at(now_ms(), 5.0, 1e9));
        unregister(again);
    }
}
