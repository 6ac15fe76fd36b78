//! Priority of the threads that do panoptic's work in the background.
//!
//! A metrics library shares the machine with the application it measures. Merging workers'
//! snapshots, freeing expired series and keeping the exports up to date can wait a few
//! milliseconds; the application's JS thread (the master's event loop among them) should not.
//! On Linux, the threads that do that work lower their own priority (a nice value of
//! [`NICE`], which any thread may do to itself without privileges): the intake (merging and
//! freeing), the exporter, the pushers, and the native transport's readers (master) and
//! writers (workers). When the cores are all busy, the scheduler runs the JS threads first,
//! and these get the rest (about a tenth of a core against each busy thread of normal
//! priority). Threads that something waits for (the clock, the master's own intervals, HTTP)
//! keep the process's priority.

/// The nice value of background threads: 10, the default of `nice(1)`.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) const NICE: i32 = 10;

/// Lowers the calling thread's priority to [`NICE`] (Linux; elsewhere nothing); never raises
/// it. Best effort: a thread that cannot lower it (a seccomp policy, say) works at the
/// process's priority.
pub fn lower_priority() {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        // Never raised: a process started with a higher nice value keeps it in these threads.
        let me = rustix::thread::gettid();
        let nice = rustix::process::getpriority_process(Some(me)).unwrap_or(NICE);
        let _ = rustix::process::setpriority_process(Some(me), nice.max(NICE));
    }
}
