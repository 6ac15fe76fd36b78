//! Instances in worker_threads feeding the instance of the same name in their process's main
//! thread: the thread posts each closed snapshot into the host's inbox (process memory shared by
//! every thread: no serialization), and the host takes them when it delivers (a master) or
//! forwards them to its master (a cluster worker).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

use crate::snapshot::Snapshot;

/// Most snapshots an inbox holds; a host that does not take them for that long loses the oldest
/// (counted as late by the host).
pub const INBOX_LIMIT: usize = 4096;

/// Snapshots posted by threads to one host, each with the thread's label.
#[derive(Debug, Default)]
pub struct Inbox {
    state: Mutex<InboxState>,
}

#[derive(Debug, Default)]
struct InboxState {
    snapshots: Vec<(String, Snapshot)>,
    overflow: u64,
    closed: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update is a single push or swap: the state is consistent even after a panic.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Inbox {
    /// Posts a thread's snapshot. False when the host is gone (the snapshot is dropped: the thread
    /// should look for a new host).
    pub fn post(&self, label: String, snapshot: Snapshot) -> bool {
        let mut state = lock(&self.state);
        if state.closed {
            return false;
        }
        if state.snapshots.len() >= INBOX_LIMIT {
            state.snapshots.remove(0);
            state.overflow += 1;
        }
        state.snapshots.push((label, snapshot));
        true
    }

    /// Takes everything posted so far, and how many snapshots were lost to the limit.
    pub fn take(&self) -> (Vec<(String, Snapshot)>, u64) {
        let mut state = lock(&self.state);
        (
            std::mem::take(&mut state.snapshots),
            std::mem::take(&mut state.overflow),
        )
    }

    fn close(&self) {
        let mut state = lock(&self.state);
        state.closed = true;
        state.snapshots.clear();
    }
}

/// A host's registration; dropping it closes the inbox and frees the name.
#[derive(Debug)]
pub struct Host {
    name: String,
    inbox: Arc<Inbox>,
}

impl Host {
    /// The host's inbox.
    pub fn inbox(&self) -> &Inbox {
        &self.inbox
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.inbox.close();
        let mut hosts = lock(hosts());
        if hosts
            .get(&self.name)
            .is_some_and(|w| w.as_ptr() == Arc::as_ptr(&self.inbox))
        {
            hosts.remove(&self.name);
        }
    }
}

fn hosts() -> &'static Mutex<HashMap<String, Weak<Inbox>>> {
    static HOSTS: OnceLock<Mutex<HashMap<String, Weak<Inbox>>>> = OnceLock::new();
    HOSTS.get_or_init(Default::default)
}

/// Registers the host for `name` in this process; `None` if a live host has that name already.
pub fn host(name: &str) -> Option<Host> {
    let mut hosts = lock(hosts());
    if hosts.get(name).is_some_and(|w| w.strong_count() > 0) {
        return None;
    }
    let inbox = Arc::new(Inbox::default());
    hosts.insert(name.to_string(), Arc::downgrade(&inbox));
    Some(Host {
        name: name.to_string(),
        inbox,
    })
}

/// The inbox of the live host for `name`, if any.
pub fn find(name: &str) -> Option<Arc<Inbox>> {
    lock(hosts()).get(name).and_then(Weak::upgrade)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(k: f64) -> Snapshot {
        Snapshot {
            k,
            ..Snapshot::default()
        }
    }

    #[test]
    fn threads_post_to_the_host_of_their_name() {
        let host = host("threads-test-a").unwrap();
        assert!(super::host("threads-test-a").is_none(), "one host per name");
        let inbox = find("threads-test-a").unwrap();
        assert!(inbox.post("master:1".into(), snap(1.0)));
        assert!(inbox.post("master:2".into(), snap(1.0)));
        let (taken, overflow) = host.inbox().take();
        assert_eq!(taken.len(), 2);
        assert_eq!(taken[1].0, "master:2");
        assert_eq!(overflow, 0);
        assert!(host.inbox().take().0.is_empty());
        drop(host);
        assert!(
            !inbox.post("master:1".into(), snap(2.0)),
            "the host is gone"
        );
        assert!(find("threads-test-a").is_none());
        assert!(
            super::host("threads-test-a").is_some(),
            "the name is free again"
        );
    }

    #[test]
    fn the_inbox_is_bounded() {
        let host = host("threads-test-b").unwrap();
        let inbox = find("threads-test-b").unwrap();
        for k in 0..INBOX_LIMIT + 3 {
            inbox.post("t".into(), snap(k as f64));
        }
        let (taken, overflow) = host.inbox().take();
        assert_eq!((taken.len(), overflow), (INBOX_LIMIT, 3));
        assert_eq!(taken[0].1.k, 3.0);
    }
}
