//! The process's CPU time, resident memory and open file descriptors, read natively (Linux) by
//! the runtime metrics' sampler thread, off the JS thread (docs/runtime.md): what
//! `process.cpuUsage()`, `process.memoryUsage.rss()` and a listing of `/proc/self/fd` give JS,
//! without V8.
//!
//! CPU: the process's total CPU time is `CLOCK_PROCESS_CPUTIME_ID` (ns), split into user and
//! system time by the ratio of the user and system clock ticks of `/proc/self/stat`, as the
//! kernel splits it for `getrusage()` (which `process.cpuUsage()` calls; `cputime_adjust`):
//! neither part ever goes back. getrusage itself would need `unsafe` (libc): the project allows
//! none outside the binding's memory views, and rustix has no safe wrapper of it.

/// One reading.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    /// CPU seconds since the process started.
    pub cpu: f64,
    /// Clock ticks of user and system time (their ratio splits `cpu`).
    pub user_ticks: u64,
    pub system_ticks: u64,
    /// Resident memory, bytes.
    pub resident: f64,
    /// Open file descriptors (None: /proc/self/fd could not be listed).
    pub open_fds: Option<f64>,
}

/// Fields of `/proc/self/stat`: user and system ticks, resident pages.
pub fn parse_stat(text: &str) -> Option<(u64, u64, u64)> {
    // The command name (field 2) is in parentheses and may hold spaces or parentheses: the
    // fields counted from 3 start after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    // Fields 14 and 15 (utime, stime) are the 12th and 13th after field 2; 24 (rss) the 22nd.
    let user = fields.nth(11)?.parse().ok()?;
    let system = fields.next()?.parse().ok()?;
    let pages = fields.nth(8)?.parse().ok()?;
    Some((user, system, pages))
}

/// Reads the process now (None where /proc is absent: not Linux).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn read() -> Option<Reading> {
    use rustix::time::{clock_gettime, ClockId};
    let (user_ticks, system_ticks, pages) =
        parse_stat(&std::fs::read_to_string("/proc/self/stat").ok()?)?;
    let t = clock_gettime(ClockId::ProcessCPUTime);
    // The directory's own descriptor, open while it is listed, is not counted.
    let open_fds = std::fs::read_dir("/proc/self/fd")
        .ok()
        .map(|d| d.count().saturating_sub(1) as f64);
    Some(Reading {
        cpu: t.tv_sec as f64 + t.tv_nsec as f64 / 1e9,
        user_ticks,
        system_ticks,
        resident: pages as f64 * rustix::param::page_size() as f64,
        open_fds,
    })
}

/// Reads the process now (None where /proc is absent: not Linux).
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub fn read() -> Option<Reading> {
    None
}

/// User and system CPU seconds since the process started, from successive readings.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct CpuSplit {
    pub user: f64,
    pub system: f64,
}

impl CpuSplit {
    /// Moves on to `r`: returns the increases of user and system time since the previous
    /// reading (both >= 0, adding up to the increase of the total).
    pub fn advance(&mut self, r: &Reading) -> (f64, f64) {
        let total = r.cpu.max(self.user + self.system);
        let ticks = (r.user_ticks + r.system_ticks) as f64;
        let mut system = if ticks > 0.0 {
            total * r.system_ticks as f64 / ticks
        } else {
            total / 2.0
        };
        // As the kernel's cputime_adjust: neither part goes back.
        system = system.max(self.system);
        let mut user = total - system;
        if user < self.user {
            user = self.user;
            system = total - user;
        }
        let step = (user - self.user, system - self.system);
        *self = CpuSplit { user, system };
        step
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command() {
        let text = "4242 (node (a) b) S 1 4242 4242 0 -1 4194560 9105 0 0 0 123 45 0 0 20 0 11 0 \
                    868 1113739264 12345 18446744073709551615 1 1 0 0 0 0 0 16781312 17922 0 0 0 17";
        assert_eq!(parse_stat(text), Some((123, 45, 12345)));
        assert_eq!(parse_stat("4242 (node) S 1 2"), None);
    }

    fn reading(cpu: f64, user_ticks: u64, system_ticks: u64) -> Reading {
        Reading {
            cpu,
            user_ticks,
            system_ticks,
            resident: 0.0,
            open_fds: None,
        }
    }

    #[test]
    fn cpu_is_split_by_ticks_and_never_goes_back() {
        let mut split = CpuSplit::default();
        assert_eq!(split.advance(&reading(1.0, 3, 1)), (0.75, 0.25));
        // The ratio moves towards system time: user time stays, system time takes the rest.
        let (user, system) = split.advance(&reading(1.5, 3, 5));
        assert_eq!(user, 0.0);
        assert!((system - 0.5).abs() < 1e-12);
        // A total that reads lower than what was reported adds nothing.
        assert_eq!(split.advance(&reading(1.0, 3, 5)), (0.0, 0.0));
        let before = split;
        let (u, s) = split.advance(&reading(2.0, 10, 5));
        assert!(u >= 0.0 && s >= 0.0);
        assert!((split.user + split.system - 2.0).abs() < 1e-12);
        assert!((u + s - (2.0 - before.user - before.system)).abs() < 1e-12);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_process_reads_itself() {
        let r = read().expect("/proc on Linux");
        assert!(r.cpu > 0.0 && r.resident > 1e6);
        assert!(r.open_fds.is_some_and(|n| n >= 3.0));
    }
}
