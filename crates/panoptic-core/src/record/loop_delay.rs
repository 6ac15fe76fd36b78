//! The event-loop delay probe's pure parts: how a sampler thread tells, without waking it,
//! whether a JS thread's event loop is waiting for events, and the samples it keeps until its
//! instance's interval closes.
//!
//! Why: sampling the delay with a timer on the JS thread (a JS `setInterval`, or libuv's timer as
//! `perf_hooks.monitorEventLoopDelay` does) wakes an idle loop at every sample, and a wake is what
//! costs (on the project's VM about 125 us per JS timer run, 60 us per libuv-only timer run:
//! docs/runtime.md). A loop that is waiting in `epoll_wait` would run a due timer at once: its
//! delay is 0, and the sampler can record that without touching the thread. Only a loop that is
//! busy (running JS, or blocked in anything but its poll) is asked, through a threadsafe call
//! that it runs when it next polls: it is awake then anyway, so the ask costs a callback, not a
//! wake. Where the thread's state cannot be read (no `/proc`, an architecture whose syscall
//! numbers are not listed here), every sample asks.

use std::fs;

/// Values kept between two closes of the interval, beyond which samples are counted as dropped: at the finest
/// resolution (1 ms) and a loop busy all the time, about 4 minutes of samples (2 MB).
pub const MAX_VALUES: usize = 1 << 18;

/// The samples taken since the interval last closed: idle samples (delay 0) as a count,
/// the others as values in ms.
#[derive(Debug, Default)]
pub struct Samples {
    zeros: u64,
    dropped: u64,
    values: Vec<f64>,
}

impl Samples {
    /// A sample taken while the loop waited for events: delay 0.
    pub fn idle(&mut self) {
        self.zeros += 1;
    }

    /// A delay, in ms.
    pub fn push(&mut self, ms: f64) {
        if self.values.len() < MAX_VALUES {
            self.values.push(ms);
        } else {
            self.dropped += 1;
        }
    }

    /// Takes every sample, and starts afresh.
    pub fn take(&mut self) -> Drained {
        Drained {
            zeros: std::mem::take(&mut self.zeros),
            dropped: std::mem::take(&mut self.dropped),
            values: std::mem::take(&mut self.values),
        }
    }
}

/// The samples taken since the last [`Samples::take`].
#[derive(Debug, Default, PartialEq)]
pub struct Drained {
    /// Samples taken while the loop waited (delay 0).
    pub zeros: u64,
    /// Samples beyond [`MAX_VALUES`], not kept.
    pub dropped: u64,
    /// The other delays, ms.
    pub values: Vec<f64>,
}

/// The syscall numbers with which libuv waits for events on Linux.
#[cfg(target_arch = "x86_64")]
const EPOLL_WAITS: &[u64] = &[232, 281, 441]; // epoll_wait, epoll_pwait, epoll_pwait2
#[cfg(target_arch = "aarch64")]
const EPOLL_WAITS: &[u64] = &[22, 441]; // epoll_pwait, epoll_pwait2
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const EPOLL_WAITS: &[u64] = &[];

/// What a thread is doing, as `/proc/<pid>/task/<tid>/syscall` tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoopState {
    /// Blocked in an epoll wait with a timeout other than 0: its loop waits for events.
    Waiting,
    /// Running, or in any other syscall (a synchronous read, a lock, an epoll wait that does not
    /// block): a timer due now would wait.
    Busy,
    /// The state cannot be read.
    Unknown,
}

/// Parses the text of `/proc/<pid>/task/<tid>/syscall`: `running`, or the syscall number and its
/// arguments in hex (`281 0x12 0x7ffd... 0x400 0xffffffffffffffff ...`: epoll_pwait's 4th
/// argument is the timeout, -1 when the loop has no timer).
pub fn loop_state(text: &str) -> LoopState {
    let mut fields = text.split_ascii_whitespace();
    let Some(first) = fields.next() else {
        return LoopState::Unknown;
    };
    let Ok(number) = first.parse::<u64>() else {
        // "running", or a thread that is not blocked (-1: in the kernel, outside a syscall).
        return LoopState::Busy;
    };
    if !EPOLL_WAITS.contains(&number) {
        return LoopState::Busy;
    }
    // A poll with timeout 0 returns at once: the loop is between two callbacks, not waiting.
    match fields.nth(3) {
        Some("0x0") => LoopState::Busy,
        Some(_) => LoopState::Waiting,
        None => LoopState::Unknown,
    }
}

/// The file that tells what thread `tid` of this process is doing, if it can be read here.
pub fn state_file(tid: u32) -> Option<String> {
    if EPOLL_WAITS.is_empty() {
        return None;
    }
    let path = format!("/proc/self/task/{tid}/syscall");
    fs::read_to_string(&path).ok().map(|_| path)
}

/// Reads thread state from `path` (from [`state_file`]).
pub fn read_state(path: &str) -> LoopState {
    fs::read_to_string(path).map_or(LoopState::Unknown, |text| loop_state(&text))
}

/// The calling thread's kernel id (Linux: `/proc/thread-self` links to `<pid>/task/<tid>`).
pub fn current_tid() -> Option<u32> {
    let link = fs::read_link("/proc/thread-self").ok()?;
    link.file_name()?.to_str()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_taken_as_counts_then_values() {
        let mut s = Samples::default();
        s.idle();
        s.idle();
        s.push(12.5);
        let taken = s.take();
        assert_eq!(
            (taken.zeros, taken.dropped, taken.values),
            (2, 0, vec![12.5])
        );
        assert_eq!(s.take(), Drained::default());
    }

    #[test]
    fn samples_count_what_they_cannot_keep() {
        let mut s = Samples::default();
        for _ in 0..MAX_VALUES + 3 {
            s.push(1.0);
        }
        let out = s.take();
        assert_eq!(out.dropped, 3);
        assert_eq!(out.values.len(), MAX_VALUES);
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn loop_state_reads_epoll_waits_and_their_timeout() {
        let wait = "281 0x12 0x7ffd2b5083b0 0x400 0xffffffffffffffff 0x0 0x8 0x7ffd 0x7f99";
        assert_eq!(loop_state(wait), LoopState::Waiting);
        assert_eq!(
            loop_state("232 0x3 0x7ffd 0x400 0x9 0x0 0x0 0x7ffd 0x7f99"),
            LoopState::Waiting
        );
        assert_eq!(
            loop_state("281 0x12 0x7ffd 0x400 0x0 0x0 0x8 0x7ffd 0x7f99"),
            LoopState::Busy
        );
        // read(2) of a file: a synchronous read blocks the loop.
        assert_eq!(
            loop_state("0 0x12 0x7ffd 0x2000 0x0 0x0 0x0 0x7ffd 0x7f99"),
            LoopState::Busy
        );
        assert_eq!(loop_state("running"), LoopState::Busy);
        assert_eq!(loop_state("-1 0x7ffd 0x7f99"), LoopState::Busy);
        assert_eq!(loop_state(""), LoopState::Unknown);
        assert_eq!(loop_state("281 0x12"), LoopState::Unknown);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_thread_reads_its_own_state_as_busy() {
        let tid = current_tid().expect("a tid on Linux");
        if let Some(path) = state_file(tid) {
            assert_eq!(read_state(&path), LoopState::Busy);
        }
    }
}
