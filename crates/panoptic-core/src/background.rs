//! Priority of the threads that do panoptic's work in the background.
//!
//! A metrics library shares the machine with the application it measures. Merging workers'
//! snapshots, shipping them, keeping the exports up to date and pushing them can wait a few
//! milliseconds; the application's JS thread (the master's event loop among them) should not. On
//! Linux, the threads that do that work lower their own priority (a nice value of [`NICE`],
//! which any thread may do to itself without privileges): the intake, the exporter, the pushers,
//! and the native transport's readers (master) and writers (workers). When the cores are all
//! busy, the scheduler runs the JS threads first, and these get the rest (about a tenth of a core
//! against each busy thread of normal priority). No JS thread waits on them: a delivery that
//! finds the intake holding the gathering's lock tries again later (`gather/intake.rs`), and
//! the exporter's and pushers' locks are held for a push or a pop, but for `exportStats()`,
//! which reads the exporter's store (documented in docs/exports.md). Threads that something
//! waits for keep the process's priority: the clock, HTTP, and the master's own-interval thread
//! (its delivery cannot be made without it).

/// The nice value of background threads: 10, the default of `nice(1)`.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) const NICE: i32 = 10;

/// Starts a thread named `name` that runs `work` at background priority: the one way panoptic's
/// background threads are started.
pub fn spawn<T: Send + 'static>(
    name: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> std::io::Result<std::thread::JoinHandle<T>> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            lower_priority();
            work()
        })
}

/// Lowers the calling thread's priority to [`NICE`] (Linux; elsewhere nothing); never raises
/// it. Best effort: a thread that cannot lower it (a seccomp policy, say) works at the
/// process's priority.
fn lower_priority() {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        // Never raised: a process started with a higher nice value keeps it in these threads.
        let me = rustix::thread::gettid();
        let nice = rustix::process::getpriority_process(Some(me)).unwrap_or(NICE);
        let _ = rustix::process::setpriority_process(Some(me), nice.max(NICE));
    }
}

#[cfg(all(test, any(target_os = "linux", target_os = "android")))]
pub(crate) mod tests {
    use super::*;

    /// The calling thread's nice value.
    pub(crate) fn nice() -> i32 {
        rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap()
    }

    #[test]
    fn lowers_a_thread_and_never_raises_it() {
        let ours = nice();
        let lowered = std::thread::spawn(|| {
            lower_priority();
            nice()
        });
        assert_eq!(lowered.join().unwrap(), ours.max(NICE));
        // A thread already lower than NICE stays there.
        let lower = std::thread::spawn(|| {
            let me = rustix::thread::gettid();
            rustix::process::setpriority_process(Some(me), NICE + 5).unwrap();
            lower_priority();
            nice()
        });
        assert_eq!(lower.join().unwrap(), (NICE + 5).max(ours));
        assert_eq!(nice(), ours, "the calling thread is left alone");
    }
}
