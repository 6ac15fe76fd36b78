//! The native transport between cluster workers and their master: thin wrappers over
//! `panoptic_core::transport`. One listener per master process and one connection per worker
//! process, shared by their instances; lib/cluster.js announces the path over Node's IPC and
//! falls back to it where these are unavailable (no Unix sockets, or `SO_PEERCRED` without pids:
//! everything but Linux and Android for now).

use napi_derive::napi;

use crate::error::{coded, Coded, TRANSPORT};

/// Where a worker's connection to its master stands (`transportState()`).
#[napi(object)]
pub struct TransportState {
    /// `'none'` (never asked to connect), `'connecting'`, `'up'` or `'down'` (until it connects
    /// again).
    pub phase: String,
    /// Why it is down.
    pub reason: Option<String>,
    /// Snapshots written to the socket.
    pub sent: f64,
    /// Snapshots handed over and never sent (too many waited).
    pub lost: f64,
    /// Bytes written (frames and snapshots), and those of the last snapshot (a steady interval's).
    pub bytes: f64,
    pub last_bytes: f64,
    /// Connections made again after one failed, and attempts to connect that failed.
    pub reconnects: f64,
    pub failures: f64,
}

#[cfg(any(target_os = "linux", target_os = "android"))]
mod native {
    use super::*;
    use panoptic_core::gather::intake::Intake;
    use panoptic_core::transport::{Listener, Payload, Phase, Uplink};
    use std::sync::{Mutex, MutexGuard};

    static LISTENER: Mutex<Option<Listener>> = Mutex::new(None);
    static UPLINK: Mutex<Option<Uplink>> = Mutex::new(None);

    fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
        mutex.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn listen(dir: &str) -> Result<String, Coded> {
        let mut listener = lock(&LISTENER);
        if listener.is_none() {
            let made = Listener::listen(dir.as_ref(), std::process::id())
                .map_err(|e| coded(TRANSPORT, e))?;
            *listener = Some(made);
        }
        let path = listener.as_ref().map(|l| l.path().display().to_string());
        Ok(path.unwrap_or_default())
    }

    pub fn with_listener(f: impl FnOnce(&Listener)) {
        if let Some(listener) = &*lock(&LISTENER) {
            f(listener);
        }
    }

    pub fn close() {
        if let Some(listener) = lock(&LISTENER).take() {
            listener.shutdown();
        }
        if let Some(uplink) = lock(&UPLINK).take() {
            uplink.close();
        }
    }

    pub fn route(key: Option<String>, intake: &Intake) {
        with_listener(|l| match key {
            Some(key) => l.route(key, intake),
            None => l.unroute(intake),
        });
    }

    pub fn connect(path: String) {
        let mut uplink = lock(&UPLINK);
        // A connection that went down connects again by itself (and holds the snapshots to
        // send over IPC meanwhile): the same path again changes nothing.
        let same = (uplink.as_ref()).is_some_and(|u| u.path().as_os_str() == path.as_str());
        if !same {
            *uplink = Some(match uplink.take() {
                Some(old) => Uplink::replace(&old, path.into()),
                None => Uplink::connect(path.into()),
            });
        }
    }

    pub fn state() -> TransportState {
        let Some(uplink) = lock(&UPLINK).clone() else {
            return TransportState {
                phase: "none".into(),
                reason: None,
                sent: 0.0,
                lost: 0.0,
                bytes: 0.0,
                last_bytes: 0.0,
                reconnects: 0.0,
                failures: 0.0,
            };
        };
        let counts = uplink.counts();
        let (phase, reason) = match uplink.phase() {
            Phase::Connecting => ("connecting", None),
            Phase::Up => ("up", None),
            Phase::Down(why) => ("down", Some(why)),
        };
        TransportState {
            phase: phase.into(),
            reason,
            sent: counts.sent as f64,
            lost: counts.lost as f64,
            bytes: counts.bytes as f64,
            last_bytes: counts.last as f64,
            reconnects: counts.reconnects as f64,
            failures: counts.failures as f64,
        }
    }

    /// The snapshots for instance `key` (of its threads, or of its main thread) that the
    /// connection could not write: they go over IPC ([`Uplink::take_bounced`]).
    pub fn take_bounced(key: &str, threads: bool) -> Vec<(Option<u32>, Payload)> {
        match lock(&UPLINK).clone() {
            Some(uplink) => uplink.take_bounced(key, threads),
            None => Vec::new(),
        }
    }

    /// Sends `payload` through the connection (ask [`up`] first: one that went down since is
    /// counted lost).
    pub fn send(key: String, thread: Option<u32>, payload: Payload) {
        if let Some(uplink) = lock(&UPLINK).clone() {
            uplink.send(key, thread, payload);
        }
    }

    pub fn up() -> bool {
        lock(&UPLINK).as_ref().is_some_and(Uplink::is_up)
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) use native::{route, send, take_bounced, up};

/// Where there is no native transport: every snapshot goes over Node's IPC.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn up() -> bool {
    false
}

/// Master: listens on `<dir>/<pid>.intake.sock` (the folder made private, the socket 0600) and
/// returns its path; listening again returns the same. Fails with PANOPTIC_TRANSPORT (the
/// caller falls back to Node's IPC).
#[napi(catch_unwind)]
pub fn transport_listen(dir: String) -> Result<String, Coded> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    return native::listen(&dir);
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    Err(coded(
        TRANSPORT,
        format!(
            "no native transport on this platform ({dir} unused): snapshots go over Node's IPC"
        ),
    ))
}

/// Master: cluster worker `worker` runs as process `pid` (its connections are admitted), or
/// exited (`worker` absent: they are not any more).
#[napi]
pub fn transport_allow(pid: u32, worker: Option<u32>) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    native::with_listener(|l| match worker {
        Some(worker) => l.allow(pid, worker),
        None => l.revoke(pid),
    });
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = (pid, worker);
}

/// Worker: connects to the master's socket at `path` on a native thread (until it is up,
/// snapshots go over IPC). Connecting again to the same live path does nothing.
#[napi]
pub fn transport_connect(path: String) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    native::connect(path);
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = path;
}

/// Worker: where its connection stands.
#[napi]
pub fn transport_state() -> TransportState {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    return native::state();
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    TransportState {
        phase: "none".into(),
        reason: None,
        sent: 0.0,
        lost: 0.0,
        bytes: 0.0,
        last_bytes: 0.0,
        reconnects: 0.0,
        failures: 0.0,
    }
}

/// At exit: the master's socket file is removed, a worker's connection closed.
#[napi]
pub fn transport_close() {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    native::close();
}
