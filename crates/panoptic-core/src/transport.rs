//! The native data path from cluster workers to their master: a Unix domain socket per master
//! process, so that neither process's JS thread touches a snapshot's bytes.
//!
//! The master ([`Listener`]) binds `<folder>/<pid>.intake.sock` in the private per-user folder
//! ([`crate::socket`]: 0700 folder, 0600 socket) and announces the path once over Node's IPC
//! (lib/cluster.js). A connection is admitted only when `SO_PEERCRED` names a process of the same
//! user whose pid is one of the master's live workers ([`Listener::allow`]); anything else is
//! closed before a byte is read and counted in `meta.refused`. Each admitted connection gets an
//! acknowledgement byte and a reader thread, which hands every frame to the matching instance's
//! intake thread ([`crate::gather::intake::Intake::receive_bytes`]), where it is decoded and merged in
//! arrival order as an IPC message would be.
//!
//! A worker ([`Uplink`]) connects on its own thread, waits for the acknowledgement, and then
//! encodes and writes its snapshots on that thread: its JS thread only hands over the closed
//! interval. Until the acknowledgement, or once the connection failed, [`Uplink::is_up`] says no
//! and the caller ships over Node's IPC (the fallback, which is also what platforms without
//! `SO_PEERCRED` pids use: everything but Linux and Android, for now). A connection that fails is
//! made again on the same thread, after [`RETRY_FIRST`], then twice as long after each failed
//! attempt up to [`RETRY_MAX`] (a few attempts in an interval at most, never a tight loop; each
//! counted). A thread waits for the master to close its end (it writes nothing after the
//! acknowledgement), so a connection the master closed is made again at once, between two
//! snapshots. Each snapshot goes one way: a snapshot not written whole on the socket (the
//! connection failed before or while writing it) is handed back ([`Uplink::take_bounced`]) and
//! the caller sends it over IPC, in order, before the next one; the master never merges a frame
//! it did not read whole.
//!
//! Frames: `length u32` (of the rest, at most [`MAX_FRAME`]) | `key length u16` | `key` (the
//! instance key, as lib/cluster.js's keyOf) | `thread u32` ([`NO_THREAD`]: the worker's main
//! thread) | the snapshot ([`crate::wire`], binary). A frame that breaks these rules, or a
//! snapshot that does not decode, is counted in `meta.decodeErrors`; a malformed frame also
//! closes the connection (the worker then ships over IPC). The guarantees of the IPC path hold:
//! a snapshot is merged into its own interval or counted late; a connection holds at most
//! [`MAX_IN_FLIGHT`] snapshots waiting for the intake thread (more are counted late: a flooding
//! or stuck worker costs bounded memory and never holds the master); a restarted worker is a new
//! process, hence a new pid, a new worker id and a new source.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

use crate::gather::intake::Intake;
use crate::gather::Source;
use crate::record::engine::Shipment;
use crate::snapshot::Snapshot;
use crate::socket::{self, write_all};
use crate::wire::{self, Keys};

/// The socket's name after the master's pid (tracing's sockets are `<pid>.sock`).
pub const SUFFIX: &str = ".intake.sock";
/// Largest frame accepted: the largest snapshot ([`wire::MAX_BYTES`]) and its header.
pub const MAX_FRAME: usize = wire::MAX_BYTES + 6 + u16::MAX as usize;
/// The thread field of a frame from a worker's main thread.
pub const NO_THREAD: u32 = u32::MAX;
/// Snapshots of one connection waiting for the intake thread: a worker sends one per instance
/// per interval (and one per thread), so this is a backlog of several intervals.
pub const MAX_IN_FLIGHT: usize = 16;
/// Connections served at once (one per worker process is the rule).
pub const MAX_CONNECTIONS: usize = 1024;
/// Snapshots waiting in a worker for its connection (then they are dropped and counted).
pub const MAX_QUEUED: usize = 16;
/// How long a worker waits for the master's acknowledgement, and a write to a master that does
/// not read may block its thread (not the JS thread) before the connection is given up.
pub const PATIENCE: Duration = Duration::from_secs(5);
/// The acknowledgement byte.
const ACK: u8 = 1;
/// How long a worker waits before making a failed connection again; each failed attempt
/// doubles it, up to [`RETRY_MAX`].
pub const RETRY_FIRST: Duration = Duration::from_millis(50);
/// The longest wait between two attempts to connect.
pub const RETRY_MAX: Duration = Duration::from_secs(5);
/// Testing only: the master closes each worker's connection after this many frames (a real
/// close of the accepted socket, to test reconnection; see docs/clusters.md).
pub const DROP_AFTER_ENV: &str = "PANOPTIC_TEST_DROP_LINK_AFTER";

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

// ---- the master ------------------------------------------------------------------------------

#[derive(Default)]
struct Shared {
    path: PathBuf,
    uid: u32,
    /// Live workers: pid -> worker id.
    workers: Mutex<HashMap<u32, u32>>,
    /// The instances that deliver, by key.
    routes: Mutex<Vec<(String, Intake)>>,
    connections: AtomicUsize,
    closed: AtomicBool,
    /// See [`DROP_AFTER_ENV`].
    drop_after: Option<u64>,
}

impl Shared {
    fn intakes(&self) -> Vec<Intake> {
        lock(&self.routes).iter().map(|(_, i)| i.clone()).collect()
    }

    fn route(&self, key: &str) -> Option<Intake> {
        let routes = lock(&self.routes);
        routes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, i)| i.clone())
    }
}

/// The master's end. See the module documentation.
pub struct Listener {
    shared: Arc<Shared>,
}

impl Listener {
    /// Prepares `dir` ([`socket::prepare`]), binds `<dir>/<pid>.intake.sock` (0600) and starts
    /// accepting. The error says what failed and where.
    pub fn listen(dir: &Path, pid: u32) -> Result<Listener, String> {
        let drop_after = std::env::var(DROP_AFTER_ENV).ok();
        let drop_after = drop_after.and_then(|n| n.parse().ok()).filter(|&n| n > 0);
        Listener::listen_dropping(dir, pid, drop_after)
    }

    /// [`Listener::listen`], closing each connection after `drop_after` frames (see
    /// [`DROP_AFTER_ENV`]).
    fn listen_dropping(dir: &Path, pid: u32, drop_after: Option<u64>) -> Result<Listener, String> {
        socket::prepare(dir, "socket folder").map_err(|e| e.to_string())?;
        let path = socket::socket_path(dir, pid, SUFFIX);
        let listener = socket::bind(&path)?;
        let shared = Arc::new(Shared {
            path,
            uid: socket::euid(),
            drop_after,
            ..Shared::default()
        });
        let accepting = Arc::clone(&shared);
        thread::Builder::new()
            .name("panoptic-link".into())
            .spawn(move || accept_loop(&accepting, &listener))
            .map_err(|e| format!("cannot start the transport's thread: {e}"))?;
        Ok(Listener { shared })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Worker `worker` runs as process `pid`: its connections are admitted.
    pub fn allow(&self, pid: u32, worker: u32) {
        lock(&self.shared.workers).insert(pid, worker);
    }

    /// The process `pid` is no worker any more (it exited).
    pub fn revoke(&self, pid: u32) {
        lock(&self.shared.workers).remove(&pid);
    }

    /// Frames for instance `key` go to `intake` (replacing what `intake` had before).
    pub fn route(&self, key: String, intake: &Intake) {
        let mut routes = lock(&self.shared.routes);
        routes.retain(|(_, i)| !i.same(intake));
        routes.push((key, intake.clone()));
    }

    /// `intake` takes no more frames (its instance stopped).
    pub fn unroute(&self, intake: &Intake) {
        lock(&self.shared.routes).retain(|(_, i)| !i.same(intake));
    }

    /// Connections being served.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::Relaxed)
    }

    /// Stops accepting and removes the socket file (connections end with their workers).
    pub fn shutdown(&self) {
        if self.shared.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        // Wake the accepting thread, blocked in accept(), so it sees `closed`.
        let _ = UnixStream::connect(&self.shared.path);
        let _ = std::fs::remove_file(&self.shared.path);
    }
}

fn accept_loop(shared: &Arc<Shared>, listener: &UnixListener) {
    for stream in listener.incoming() {
        if shared.closed.load(Ordering::SeqCst) {
            break;
        }
        match stream {
            Ok(s) => admit(shared, s),
            // Out of file descriptors and the like: do not spin.
            Err(_) => thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Why a peer is refused, or the worker it is: (worker id, pid).
fn identify(shared: &Shared, stream: &UnixStream) -> Result<(u32, u32), String> {
    let peer = match socket::peer(stream) {
        Ok(Some(peer)) => peer,
        Ok(None) => return Err("its credentials are unknown on this platform".into()),
        Err(e) => return Err(format!("its credentials could not be read ({e})")),
    };
    if peer.uid != shared.uid {
        return Err(format!(
            "process {} runs as uid {}, not as this master (uid {})",
            peer.pid, peer.uid, shared.uid
        ));
    }
    match lock(&shared.workers).get(&peer.pid) {
        Some(&worker) => Ok((worker, peer.pid)),
        None => Err(format!(
            "process {} is not a live cluster worker of this master",
            peer.pid
        )),
    }
}

fn admit(shared: &Arc<Shared>, stream: UnixStream) {
    let worker = match identify(shared, &stream) {
        Ok(worker) => worker,
        Err(why) => {
            let message = format!(
                "a connection to the cluster transport {} was refused: {why} (counted in meta.refused)",
                shared.path.display()
            );
            for intake in shared.intakes() {
                intake.note_refused(message.clone());
            }
            return;
        }
    };
    if shared.connections.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
        shared.connections.fetch_sub(1, Ordering::SeqCst);
        return;
    }
    let serving = Arc::clone(shared);
    // Reading a frame waits on no JS thread: in the background (background.rs).
    let spawned = crate::background::spawn("panoptic-link-r", move || {
        if write_all(&stream, &[ACK], &mut 0).is_ok() {
            read_frames(&serving, worker, stream);
        }
        serving.connections.fetch_sub(1, Ordering::SeqCst);
    });
    if spawned.is_err() {
        shared.connections.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A frame's header, read off the stream.
struct Header {
    key: String,
    thread: Option<u32>,
    /// The snapshot's length.
    rest: usize,
}

/// Reads one frame's header: None at a clean end (the worker closed between frames), an error
/// for a broken or hostile frame.
fn read_header(stream: &mut impl Read) -> io::Result<Option<Header>> {
    let mut len = [0u8; 4];
    loop {
        match stream.read(&mut len[..1]) {
            Ok(0) => return Ok(None),
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    stream.read_exact(&mut len[1..])?;
    let len = u32::from_le_bytes(len) as usize;
    let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
    if !(6..=MAX_FRAME).contains(&len) {
        return Err(invalid("a frame length out of bounds"));
    }
    let mut key_len = [0u8; 2];
    stream.read_exact(&mut key_len)?;
    let key_len = u16::from_le_bytes(key_len) as usize;
    if 6 + key_len > len {
        return Err(invalid("a key longer than its frame"));
    }
    let mut key = vec![0u8; key_len];
    stream.read_exact(&mut key)?;
    let key = String::from_utf8(key).map_err(|_| invalid("a key that is not UTF-8"))?;
    let mut thread = [0u8; 4];
    stream.read_exact(&mut thread)?;
    let thread = Some(u32::from_le_bytes(thread)).filter(|&t| t != NO_THREAD);
    Ok(Some(Header {
        key,
        thread,
        rest: len - 6 - key_len,
    }))
}

/// Serves worker `(id, pid)`'s connection until it ends or breaks the rules.
fn read_frames(shared: &Shared, (worker, pid): (u32, u32), mut stream: UnixStream) {
    let in_flight = Arc::new(AtomicUsize::new(0));
    for frames in 0u64.. {
        if shared.drop_after.is_some_and(|n| frames >= n) {
            let _ = stream.shutdown(std::net::Shutdown::Both);
            return;
        }
        let header = match read_header(&mut stream) {
            Ok(Some(header)) => header,
            Ok(None) => return,
            Err(e) => {
                // A truncated frame from a worker that died is not hostile; anything else is.
                if e.kind() == io::ErrorKind::InvalidData {
                    for intake in shared.intakes() {
                        intake.note_decode_error();
                    }
                }
                return;
            }
        };
        // The snapshot grows as its bytes arrive: a length alone reserves nothing.
        let mut bytes = Vec::new();
        let read = (&mut stream)
            .take(header.rest as u64)
            .read_to_end(&mut bytes);
        if read.is_err() || bytes.len() != header.rest {
            return;
        }
        let Some(intake) = shared.route(&header.key) else {
            let routes = lock(&shared.routes);
            let here: Vec<String> = routes.iter().map(|(k, _)| describe_key(k)).collect();
            // As lib/cluster.js says it for a message over IPC.
            let message = format!(
                "cluster worker {worker} (pid {pid}) sends snapshots for an instance {}, and this master has none (its instances: {}). They are left out (counted in meta.unmatched). Give the worker's instance the name of the master's: instances match by name when the name is unique in each process, else by construction order.",
                describe_key(&header.key),
                here.join(", ")
            );
            for (_, intake) in routes.iter() {
                intake.note_unmatched(format!("{worker} {}", header.key), message.clone());
            }
            continue;
        };
        if in_flight.fetch_add(1, Ordering::Relaxed) >= MAX_IN_FLIGHT {
            in_flight.fetch_sub(1, Ordering::Relaxed);
            intake.note_late();
            continue;
        }
        let source = match header.thread {
            Some(t) => Source::Thread(format!("{worker}:{t}")),
            None => Source::Worker(worker),
        };
        intake.receive_bytes(source, bytes, Arc::clone(&in_flight));
    }
}

/// How an instance key reads in a warning (as lib/cluster.js says it).
fn describe_key(key: &str) -> String {
    match (key.strip_prefix("name:"), key.strip_prefix("id:")) {
        (Some(name), _) => format!("named {}", serde_json::Value::from(name)),
        (_, Some(n)) => format!("number {n} (by construction order: it has no unique name)"),
        _ => format!("keyed {}", serde_json::Value::from(key)),
    }
}

// ---- a worker --------------------------------------------------------------------------------

/// What a worker sends: an instance's closed interval (keys by dictionary), or a thread's
/// snapshot (self-contained: threads come and go).
pub enum Payload {
    Shipment(Shipment),
    Thread(Snapshot),
}

impl Payload {
    fn encode(&self) -> Vec<u8> {
        match self {
            Payload::Shipment(s) => s.encode(),
            Payload::Thread(s) => wire::encode_bytes(s, Keys::All { epoch: 0 }),
        }
    }

    /// The snapshot as base64 text, for Node's IPC.
    pub fn encode_text(&self) -> String {
        match self {
            Payload::Shipment(s) => s.encode_text(),
            Payload::Thread(s) => wire::encode(s, Keys::All { epoch: 0 }),
        }
    }
}

struct Job {
    key: String,
    thread: Option<u32>,
    payload: Payload,
}

/// Where a worker's connection stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Connecting, or waiting for the acknowledgement.
    Connecting,
    /// Snapshots go through the socket.
    Up,
    /// The connection failed (why): snapshots go through Node's IPC until it is made again.
    Down(String),
}

struct UpState {
    phase: Phase,
    /// Closed for good ([`Uplink::close`]).
    closed: bool,
    queue: VecDeque<Job>,
    /// Snapshots not written whole, for the caller to send over IPC ([`Uplink::take_bounced`]).
    bounced: VecDeque<Job>,
    /// Snapshots handed over and never sent (more than [`MAX_QUEUED`] waited).
    lost: u64,
    sent: u64,
    /// Bytes of the snapshots written (frames included), and of the last one.
    bytes: u64,
    last: u64,
    /// Connections made again after one failed, and attempts that failed.
    reconnects: u64,
    failures: u64,
    /// The connections made so far, and the last one the master closed (its number).
    links: u64,
    closed_link: u64,
}

impl UpState {
    /// The connection failed (why): what waits to be written goes back to the caller.
    fn down(&mut self, why: String) {
        self.phase = Phase::Down(why);
        while let Some(job) = self.queue.pop_front() {
            self.bounce(job);
        }
    }

    fn bounce(&mut self, job: Job) {
        if self.bounced.len() >= MAX_QUEUED {
            self.lost += 1;
        } else {
            self.bounced.push_back(job);
        }
    }
}

struct UpShared {
    path: PathBuf,
    state: Mutex<UpState>,
    wake: Condvar,
}

/// What went through a worker's connection ([`Uplink::counts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Snapshots written.
    pub sent: u64,
    /// Snapshots handed over and never sent (too many waited).
    pub lost: u64,
    /// Bytes written (frames included), and those of the last snapshot (a steady interval's).
    pub bytes: u64,
    pub last: u64,
    /// Connections made again after one failed, and attempts to connect that failed.
    pub reconnects: u64,
    pub failures: u64,
}

/// A worker's end. See the module documentation.
#[derive(Clone)]
pub struct Uplink {
    shared: Arc<UpShared>,
}

impl Uplink {
    /// Connects to the master's socket at `path` on a new thread.
    pub fn connect(path: PathBuf) -> Uplink {
        let shared = Arc::new(UpShared {
            path,
            state: Mutex::new(UpState {
                phase: Phase::Connecting,
                closed: false,
                queue: VecDeque::new(),
                bounced: VecDeque::new(),
                lost: 0,
                sent: 0,
                bytes: 0,
                last: 0,
                reconnects: 0,
                failures: 0,
                links: 0,
                closed_link: 0,
            }),
            wake: Condvar::new(),
        });
        let running = Arc::clone(&shared);
        // Encoding and writing a snapshot waits on no JS thread: in the background
        // (background.rs).
        let spawned = crate::background::spawn("panoptic-link-w", move || run(&running));
        if let Err(e) = spawned {
            lock(&shared.state).phase = Phase::Down(format!("cannot start its thread: {e}"));
        }
        Uplink { shared }
    }

    /// Connects to the socket at `path` in place of `old`, which is closed: the snapshots it
    /// could not write and its counts carry over (nothing it held is dropped unseen).
    pub fn replace(old: &Uplink, path: PathBuf) -> Uplink {
        old.close();
        let new = Uplink::connect(path);
        let mut from = lock(&old.shared.state);
        let mut to = lock(&new.shared.state);
        to.bounced = std::mem::take(&mut from.bounced);
        to.lost += from.lost;
        to.sent += from.sent;
        to.bytes += from.bytes;
        to.last = from.last;
        to.reconnects += from.reconnects;
        to.failures += from.failures;
        drop(to);
        new
    }

    /// The master's socket.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Where the connection stands.
    pub fn phase(&self) -> Phase {
        lock(&self.shared.state).phase.clone()
    }

    /// What went through the connection so far.
    pub fn counts(&self) -> Counts {
        let state = lock(&self.shared.state);
        Counts {
            sent: state.sent,
            lost: state.lost,
            bytes: state.bytes,
            last: state.last,
            reconnects: state.reconnects,
            failures: state.failures,
        }
    }

    /// Whether snapshots go through the socket now: when not, ship over IPC.
    pub fn is_up(&self) -> bool {
        lock(&self.shared.state).phase == Phase::Up
    }

    /// Queues a snapshot for instance `key` (of thread `thread` if any); it is encoded and
    /// written on the connection's thread. Ask [`Uplink::is_up`] first (when it is not, ship over
    /// IPC): a snapshot sent to a connection that went down since is handed back
    /// ([`Uplink::take_bounced`]); one sent when [`MAX_QUEUED`] wait already is dropped and
    /// counted lost.
    pub fn send(&self, key: String, thread: Option<u32>, payload: Payload) {
        let mut state = lock(&self.shared.state);
        let job = Job {
            key,
            thread,
            payload,
        };
        if state.phase != Phase::Up {
            state.bounce(job);
            return;
        }
        if state.queue.len() >= MAX_QUEUED {
            state.lost += 1;
            return;
        }
        state.queue.push_back(job);
        drop(state);
        self.shared.wake.notify_one();
    }

    /// The snapshots for instance `key` that were not written whole (of its threads, or of its
    /// main thread), in the order they were handed over: send them over IPC, before any later one.
    pub fn take_bounced(&self, key: &str, threads: bool) -> Vec<(Option<u32>, Payload)> {
        let mut state = lock(&self.shared.state);
        let (mine, rest): (VecDeque<Job>, _) = std::mem::take(&mut state.bounced)
            .into_iter()
            .partition(|job| job.key == key && job.thread.is_some() == threads);
        state.bounced = rest;
        mine.into_iter()
            .map(|job| (job.thread, job.payload))
            .collect()
    }

    /// Closes the connection for good once what is queued is written (or the connection fails).
    pub fn close(&self) {
        let mut state = lock(&self.shared.state);
        state.closed = true;
        if state.phase == Phase::Up || state.phase == Phase::Connecting {
            state.phase = Phase::Down("closed".into());
        }
        drop(state);
        self.shared.wake.notify_one();
    }
}

fn open(path: &Path) -> Result<UnixStream, String> {
    let stream = UnixStream::connect(path).map_err(|e| format!("cannot connect: {e}"))?;
    stream
        .set_read_timeout(Some(PATIENCE))
        .and_then(|()| stream.set_write_timeout(Some(PATIENCE)))
        .map_err(|e| format!("cannot set timeouts: {e}"))?;
    let mut ack = [0u8; 1];
    match (&stream).read(&mut ack) {
        Ok(1) if ack[0] == ACK => Ok(stream),
        Ok(_) => Err("the master refused the connection (this process is not one of its workers, or runs as another user)".into()),
        Err(e) => Err(format!("no acknowledgement from the master: {e}")),
    }
}

/// The connection's thread: connects, writes what is queued, and connects again after a
/// failure (see the module documentation) until [`Uplink::close`].
fn run(shared: &Arc<UpShared>) {
    let mut wait = RETRY_FIRST;
    let mut was_up = false;
    loop {
        match open(&shared.path) {
            Ok(stream) => {
                {
                    let mut state = lock(&shared.state);
                    if state.closed {
                        return;
                    }
                    state.phase = Phase::Up;
                    state.reconnects += u64::from(was_up);
                }
                was_up = true;
                wait = RETRY_FIRST;
                let why = serve(shared, &stream);
                let mut state = lock(&shared.state);
                state.down(why);
            }
            Err(why) => {
                let mut state = lock(&shared.state);
                state.failures += 1;
                state.down(why);
            }
        }
        let state = lock(&shared.state);
        if state.closed {
            return;
        }
        let (mut state, _) =
            (shared.wake.wait_timeout(state, wait)).unwrap_or_else(|e| e.into_inner());
        if state.closed {
            return;
        }
        state.phase = Phase::Connecting;
        drop(state);
        wait = (wait * 2).min(RETRY_MAX);
    }
}

/// Writes the queued snapshots on `stream` until it fails (why) or the uplink is closed (a
/// failure too, for [`run`]: it then stops). The master closing its end is seen at once (a
/// thread waits for it), so the connection is made again between two snapshots, not when the
/// next one finds it closed (it would go over IPC then, a quarter interval later).
fn serve(shared: &Arc<UpShared>, stream: &UnixStream) -> String {
    let link = {
        let mut state = lock(&shared.state);
        state.links += 1;
        state.links
    };
    watch_master(shared, stream, link);
    let why = write_queued(shared, stream, link);
    // Ends the watching thread's read.
    let _ = stream.shutdown(std::net::Shutdown::Both);
    why
}

/// Starts a thread that waits for the master to close connection number `link` (the master
/// writes nothing after its acknowledgement: a read returns only then) and wakes the writer.
fn watch_master(shared: &Arc<UpShared>, stream: &UnixStream, link: u64) {
    let Ok(mut watched) = stream.try_clone() else {
        // Not watched: a closed connection is then found when the next snapshot is written.
        return;
    };
    let shared = Arc::clone(shared);
    let _ = thread::Builder::new()
        .name("panoptic-link-w".into())
        .spawn(move || {
            let mut byte = [0u8; 1];
            loop {
                match watched.read(&mut byte) {
                    // The read timeout (PATIENCE) passed: still open.
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock
                                | io::ErrorKind::TimedOut
                                | io::ErrorKind::Interrupted
                        ) => {}
                    _ => break,
                }
            }
            let mut state = lock(&shared.state);
            state.closed_link = state.closed_link.max(link);
            drop(state);
            shared.wake.notify_all();
        });
}

fn write_queued(shared: &UpShared, stream: &UnixStream, link: u64) -> String {
    let mut frame = Vec::new();
    loop {
        let job = {
            let mut state = lock(&shared.state);
            loop {
                if state.closed_link >= link {
                    return "the master closed the connection".into();
                }
                if let Some(job) = state.queue.pop_front() {
                    break job;
                }
                if state.closed {
                    return "closed".into();
                }
                state = shared.wake.wait(state).unwrap_or_else(|e| e.into_inner());
            }
        };
        frame.clear();
        write_frame(&mut frame, &job);
        let result = write_all(stream, &frame, &mut 0);
        let mut state = lock(&shared.state);
        match result {
            Ok(()) => {
                state.sent += 1;
                state.bytes += frame.len() as u64;
                state.last = frame.len() as u64;
            }
            Err(e) => {
                // Not written whole: the master does not merge it (a truncated frame ends its
                // connection), so it goes back to the caller.
                state.queue.push_front(job);
                return format!("cannot write: {e}");
            }
        }
    }
}

/// Appends `job`'s frame (encoding its snapshot) to `out`.
fn write_frame(out: &mut Vec<u8>, job: &Job) {
    let snapshot = job.payload.encode();
    // A key is a short name; one that does not fit is cut (the master then counts it unmatched).
    let key = &job.key.as_bytes()[..job.key.len().min(u16::MAX as usize)];
    let len = 2 + key.len() + 4 + snapshot.len();
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out.extend_from_slice(&(key.len() as u16).to_le_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(&job.thread.unwrap_or(NO_THREAD).to_le_bytes());
    out.extend_from_slice(&snapshot);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gather::tree::Format;
    use crate::gather::Tree;
    use crate::socket::tests::scratch;
    use std::io::Write;

    fn snapshot(k: f64, total: f64) -> Snapshot {
        crate::testing::snapshot(
            k,
            std::process::id(),
            [(
                crate::testing::key("inc", &[], "n"),
                crate::testing::counter(total),
            )],
        )
    }

    /// The format of the tests' deliveries.
    fn format() -> Format {
        crate::testing::format(1.0, 1.0, 0.0, &[])
    }

    fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
        let until = std::time::Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(std::time::Instant::now() < until, "timed out: {what}");
            thread::sleep(Duration::from_millis(5));
        }
    }

    struct Fixture {
        base: PathBuf,
        listener: Listener,
        intake: Intake,
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            self.listener.shutdown();
            let _ = std::fs::remove_dir_all(&self.base);
        }
    }

    /// A master listening, with one instance "name:web"; this test process is its worker 7 when
    /// `allowed`.
    fn master(name: &str, allowed: bool) -> Fixture {
        let base = scratch(name);
        let listener = Listener::listen(&base.join("panoptic"), 12345).unwrap();
        // On the default grid (10 s intervals from the epoch): interval 4 is long past, and
        // never delivered here, so its snapshots are merged.
        let intake = Intake::default();
        listener.route("name:web".into(), &intake);
        if allowed {
            listener.allow(std::process::id(), 7);
        }
        Fixture {
            base,
            listener,
            intake,
        }
    }

    fn frame(key: &str, thread: Option<u32>, snapshot: &Snapshot) -> Vec<u8> {
        let mut out = Vec::new();
        let job = Job {
            key: key.into(),
            thread,
            payload: Payload::Thread(snapshot.clone()),
        };
        write_frame(&mut out, &job);
        out
    }

    #[test]
    fn the_socket_is_private_and_a_worker_snapshots_reach_the_intake() {
        use std::os::unix::fs::PermissionsExt;
        let f = master("transport-up", true);
        let mode = std::fs::metadata(f.listener.path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(f.listener.path().ends_with("12345.intake.sock"));
        let uplink = Uplink::connect(f.listener.path().to_owned());
        wait_for("up", || uplink.phase() != Phase::Connecting);
        assert_eq!(uplink.phase(), Phase::Up);
        uplink.send("name:web".into(), None, Payload::Thread(snapshot(4.0, 2.0)));
        uplink.send(
            "name:web".into(),
            Some(3),
            Payload::Thread(snapshot(4.0, 5.0)),
        );
        wait_for("sent", || uplink.counts().sent == 2);
        assert_eq!(uplink.counts().lost, 0, "none lost");
        // Once the connection is closed, everything it carried is taken by the intake.
        uplink.close();
        wait_for("closed", || f.listener.connections() == 0);
        let d = f.intake.with(|g| g.deliver(4.0, format()));
        assert_eq!(d.meta().workers.keys().collect::<Vec<_>>(), ["7"]);
        let cluster: serde_json::Value =
            serde_json::from_str(&d.tree(&Tree::Cluster).unwrap()).unwrap();
        assert_eq!(cluster["n"]["value"]["val"], 7.0);
        assert_eq!(d.parts().count(), 2, "the worker and its thread 3");
    }

    #[test]
    fn a_connection_the_master_closes_is_made_again_and_nothing_is_lost() {
        let base = scratch("transport-again");
        // The master closes every connection after one frame.
        let listener = Listener::listen_dropping(&base.join("panoptic"), 12345, Some(1)).unwrap();
        let intake = Intake::default();
        listener.route("name:web".into(), &intake);
        listener.allow(std::process::id(), 7);
        let uplink = Uplink::connect(listener.path().to_owned());
        for (n, thread) in [(1, 3), (2, 4), (3, 5)] {
            wait_for("up", || uplink.is_up());
            let payload = Payload::Thread(snapshot(4.0, 1.0));
            uplink.send("name:web".into(), Some(thread), payload);
            // Written, then closed by the master: made again (at once: it is watched).
            wait_for("sent", || uplink.counts().sent == n);
            wait_for("made again", || uplink.counts().reconnects == n);
        }
        let counts = uplink.counts();
        assert_eq!((counts.lost, counts.failures), (0, 0));
        let d = intake.with(|g| g.deliver(4.0, format()));
        assert_eq!(d.parts().count(), 3, "each snapshot once");
        uplink.close();
        listener.shutdown();
        let _ = std::fs::remove_dir_all(base);
        // Nobody listening: attempts fail (counted), and what is handed over comes back.
        let empty = scratch("transport-gone");
        let old = Uplink::connect(empty.join("nobody.sock"));
        wait_for("a failed attempt", || old.counts().failures >= 1);
        old.send("name:web".into(), None, Payload::Thread(snapshot(5.0, 0.0)));
        // Another path: what the old one held carries over.
        let uplink = Uplink::replace(&old, empty.join("nobody-either.sock"));
        wait_for("a failed attempt", || uplink.counts().failures >= 1);
        assert!(!uplink.is_up());
        uplink.send("name:web".into(), None, Payload::Thread(snapshot(5.0, 1.0)));
        uplink.send(
            "name:web".into(),
            Some(2),
            Payload::Thread(snapshot(5.0, 1.0)),
        );
        let mine = uplink.take_bounced("name:web", false);
        assert_eq!(mine.len(), 2, "the old one's, and its own");
        assert_eq!(mine[0].0, None);
        assert!(uplink.take_bounced("name:web", false).is_empty());
        assert_eq!(
            uplink.take_bounced("name:web", true).len(),
            1,
            "its thread's"
        );
        assert_eq!(uplink.counts().lost, 0);
        uplink.close();
        let _ = std::fs::remove_dir_all(empty);
    }

    #[test]
    fn a_process_that_is_not_a_worker_is_refused_and_counted() {
        let f = master("transport-refused", false);
        let uplink = Uplink::connect(f.listener.path().to_owned());
        wait_for("refused", || uplink.phase() != Phase::Connecting);
        let Phase::Down(why) = uplink.phase() else {
            panic!("admitted")
        };
        assert!(why.contains("refused"), "{why}");
        // The refusal is counted and warned about once.
        let d = f.intake.with(|g| g.deliver(4.0, format()));
        assert_eq!(d.meta().refused, 1);
        let warning = &d.meta().warnings[0];
        assert_eq!(warning.code, crate::gather::REFUSED);
        assert!(warning
            .message
            .contains("is not a live cluster worker of this master"));
        // A worker that exited is revoked.
        f.listener.allow(std::process::id(), 7);
        f.listener.revoke(std::process::id());
        let again = Uplink::connect(f.listener.path().to_owned());
        wait_for("refused", || again.phase() != Phase::Connecting);
        assert!(matches!(again.phase(), Phase::Down(_)));
    }

    fn connect(f: &Fixture) -> UnixStream {
        let mut s = UnixStream::connect(f.listener.path()).unwrap();
        let mut ack = [0u8];
        s.read_exact(&mut ack).unwrap();
        s
    }

    #[test]
    fn hostile_bytes_are_counted_and_close_the_connection() {
        let f = master("transport-hostile", true);
        // A snapshot that does not decode: counted, the connection stays.
        let mut s = connect(&f);
        let mut bad = frame("name:web", None, &snapshot(4.0, 1.0));
        let n = bad.len();
        bad[n - 20..].fill(0xff);
        s.write_all(&bad).unwrap();
        // For an instance this master does not have: unmatched.
        s.write_all(&frame("name:other", None, &snapshot(4.0, 1.0)))
            .unwrap();
        // A good one after them on the same connection.
        s.write_all(&frame("name:web", None, &snapshot(4.0, 1.0)))
            .unwrap();
        // A frame length beyond the cap: counted, and the connection is closed.
        s.write_all(&u32::MAX.to_le_bytes()).unwrap();
        // Closed: an end, or a reset when bytes were left unread.
        let closed = |s: &mut UnixStream| !matches!(s.read_to_end(&mut Vec::new()), Ok(n) if n > 0);
        assert!(closed(&mut s));
        // Garbage on another connection: a key longer than its frame.
        let mut g = connect(&f);
        g.write_all(&[8, 0, 0, 0, 255, 255, 0, 0, 0, 0, 0, 0])
            .unwrap();
        assert!(closed(&mut g));
        wait_for("counted", || f.listener.connections() == 0);
        let d = f.intake.with(|g| g.deliver(4.0, format()));
        let meta = d.meta();
        assert_eq!((meta.decode_errors, meta.unmatched), (3, 1));
        assert_eq!(meta.workers.len(), 1);
    }

    #[test]
    fn a_flooding_worker_costs_bounded_memory_and_its_excess_is_late() {
        let f = master("transport-flood", true);
        // The intake thread is held: frames pile up for it.
        let (release, held) = std::sync::mpsc::channel::<()>();
        let held = Mutex::new(held);
        f.intake.hold(move || {
            let _ = lock(&held).recv();
        });
        let mut s = connect(&f);
        for t in 0..(MAX_IN_FLIGHT as u32 + 5) {
            s.write_all(&frame("name:web", Some(t), &snapshot(4.0, 1.0)))
                .unwrap();
        }
        // Everything read: the excess is counted late, after the held job.
        drop(s);
        wait_for("read", || f.listener.connections() == 0);
        release.send(()).unwrap();
        let d = f.intake.with(|g| g.deliver(4.0, format()));
        assert_eq!(d.meta().late, 5);
        assert_eq!(d.parts().count(), MAX_IN_FLIGHT);
    }
}
