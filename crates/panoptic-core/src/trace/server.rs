//! The socket a traced process listens on, served by native threads.
//!
//! One thread accepts; each connection gets a reader thread (frames in, handed to a [`Sink`]) and
//! a writer thread (frames out, from a bounded [`OutQueue`]). No thread here belongs to Node's
//! event loop, so none of them keeps the process alive: a Node process exits when its JS work is
//! done, attached tracer or not (the binding hands frames to JS through an unreferenced
//! threadsafe function for the same reason).
//!
//! Nothing a peer does can hurt the process: a peer of another user (other than root) is closed
//! before a byte is read (`SO_PEERCRED`, in addition to the 0700 folder and 0600 socket); frames
//! are bounded ([`super::frame`]); the first frame must be a hello, within
//! [`Limits::handshake`]; a peer that floods the process with frames, or any protocol error, gets
//! an error frame and is closed; connections are capped at [`Limits::max_connections`].

use std::collections::HashMap;
use std::io::{self, Read};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use std::{fs, thread};

use super::frame::{encode, kind, Decoder, Frame, FrameError};
use super::queue::OutQueue;
use crate::socket::{self as dir, peer_allowed, write_all, DirError};

/// What the server reports to its owner (the JS side, through the binding).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A frame from connection `conn` (the first one of a connection is always a hello).
    Frame { conn: u32, frame: Frame },
    /// Connection `conn`, whose hello was reported, is gone.
    Closed { conn: u32 },
}

/// Receives events on the server's threads. Returns `false` when it cannot take more now: the
/// connection the event came from is then closed (a tracer sends a handful of frames, so only a
/// misbehaving peer can fill the owner's queue).
pub type Sink = Arc<dyn Fn(Event) -> bool + Send + Sync>;

/// The server's bounds.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Tracers attached at once; more are refused with an error frame.
    pub max_connections: usize,
    /// Bytes of frames queued per connection before frames are dropped (and counted).
    pub queue_bytes: usize,
    /// Time a new connection has to send its hello.
    pub handshake: Duration,
    /// Time [`Server::shutdown`] (at process exit) gives the tracers to read what is queued for
    /// them: probes fired just before exit reach a tracer that reads, and a tracer that does not
    /// read delays the exit by this much at most.
    pub exit_grace: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: 16,
            queue_bytes: 8 << 20,
            handshake: Duration::from_secs(10),
            exit_grace: Duration::from_secs(1),
        }
    }
}

/// What became of a frame handed to [`Server::send`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// Queued for writing.
    Queued = 0,
    /// Dropped for lack of room (counted; the tracer is told).
    Dropped = 1,
    /// The payload exceeds [`super::frame::MAX_PAYLOAD`].
    TooLarge = 2,
    /// No such connection (it closed).
    Gone = 3,
}

/// Why [`Server::listen`] failed.
#[derive(Debug)]
pub enum ListenError {
    /// The folder is not safe to use (or cannot be created).
    Folder(DirError),
    /// The socket could not be bound, or the thread started.
    Socket(String),
}

impl std::fmt::Display for ListenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ListenError::Folder(e) => e.fmt(f),
            ListenError::Socket(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for ListenError {}

/// An error frame, `{ code, message }`.
fn error_frame(code: &str, message: &str) -> Vec<u8> {
    let json = serde_json::json!({ "code": code, "message": message }).to_string();
    // The messages here are short: far below MAX_PAYLOAD.
    encode(kind::ERROR, json.as_bytes()).unwrap_or_default()
}

/// Error code of a protocol error, sent to the peer before closing it.
pub const PROTOCOL_ERROR: &str = "PANOPTIC_TRACE_PROTOCOL";
/// Error code sent to a peer refused because [`Limits::max_connections`] are attached.
pub const BUSY_ERROR: &str = "PANOPTIC_TRACE_BUSY";

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves plain data behind: keep going.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

struct Outgoing {
    queue: OutQueue,
    /// No more frames are accepted; the writer flushes what is queued, then closes.
    closing: bool,
    /// The writer sleeps on `wake`: only then is a push worth a wake-up (a futex syscall, and on
    /// a small machine a context switch, per trace otherwise).
    waiting: bool,
    /// The writer has stopped (everything written, or the connection failed or was aborted).
    done: bool,
    /// Frames that will never be written: set when the connection fails or is aborted, for
    /// [`Server::shutdown`] to report.
    lost: u64,
}

/// What the writer takes from the queue at once: one `send` for many small frames.
const WRITE_BATCH: usize = 64 * 1024;

struct Conn {
    stream: UnixStream,
    out: Mutex<Outgoing>,
    wake: Condvar,
    /// Signalled when the writer stops (`done`).
    stopped: Condvar,
}

impl Conn {
    fn push(&self, frame: Vec<u8>) -> Sent {
        let mut out = lock(&self.out);
        if out.closing {
            return Sent::Gone;
        }
        let queued = out.queue.push(frame);
        let wake = out.waiting;
        drop(out);
        if wake {
            self.wake.notify_one();
        }
        if queued {
            Sent::Queued
        } else {
            Sent::Dropped
        }
    }

    /// Flush what is queued, then close. A peer that stopped reading gets a few seconds.
    fn finish(&self) {
        let _ = self.stream.set_write_timeout(Some(Duration::from_secs(5)));
        lock(&self.out).closing = true;
        self.wake.notify_one();
    }

    /// Close now, dropping (and counting in `lost`) what is queued.
    fn abort(&self) {
        {
            let mut out = lock(&self.out);
            out.closing = true;
            Self::discard(&mut out);
        }
        self.wake.notify_one();
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }

    /// Empties the queue into `lost`: the frames, and the dropped ones not yet reported.
    fn discard(out: &mut Outgoing) {
        out.lost += out.queue.frames() as u64 + out.queue.dropped();
        while out.queue.pop().is_some() {}
    }

    /// Waits until the writer has stopped, or `deadline`; whether it has.
    fn wait_stopped(&self, deadline: Instant) -> bool {
        let mut out = lock(&self.out);
        while !out.done {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            out = self
                .stopped
                .wait_timeout(out, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }

    fn write_loop(&self) {
        let mut batch = Vec::with_capacity(WRITE_BATCH);
        // Where each frame of the batch ends, to know which ones a failed write still delivered.
        let mut ends = Vec::new();
        let mut unsent = 0;
        loop {
            {
                let mut out = lock(&self.out);
                loop {
                    while batch.len() < WRITE_BATCH {
                        match out.queue.pop() {
                            Some(f) => {
                                batch.extend_from_slice(&f);
                                ends.push(batch.len());
                            }
                            None => break,
                        }
                    }
                    if !batch.is_empty() || out.closing {
                        break;
                    }
                    out.waiting = true;
                    out = self.wake.wait(out).unwrap_or_else(|e| e.into_inner());
                    out.waiting = false;
                }
            }
            if batch.is_empty() {
                break;
            }
            let mut written = 0;
            if write_all(&self.stream, &batch, &mut written).is_err() {
                unsent = ends.iter().filter(|&&end| end > written).count();
                break;
            }
            batch.clear();
            ends.clear();
        }
        {
            let mut out = lock(&self.out);
            out.closing = true;
            out.done = true;
            out.lost += unsent as u64;
            Self::discard(&mut out);
        }
        self.stopped.notify_all();
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }
}

struct Shared {
    path: PathBuf,
    uid: u32,
    limits: Limits,
    sink: Sink,
    conns: Mutex<HashMap<u32, Arc<Conn>>>,
    next_id: AtomicU32,
    closed: AtomicBool,
}

/// A listening trace socket. Dropping it does not stop it: call [`Server::shutdown`].
pub struct Server {
    shared: Arc<Shared>,
}

impl Server {
    /// Prepares `dir` ([`dir::prepare`]), binds `<dir>/<pid>.sock` (mode 0600, replacing a stale
    /// socket of a dead process that had the same pid) and starts accepting.
    pub fn listen(dir: &Path, pid: u32, limits: Limits, sink: Sink) -> Result<Server, ListenError> {
        dir::prepare(dir, "trace folder").map_err(ListenError::Folder)?;
        let path = dir::socket_path(dir, pid, ".sock");
        let listener = dir::bind(&path).map_err(ListenError::Socket)?;
        let shared = Arc::new(Shared {
            path,
            uid: dir::euid(),
            limits,
            sink,
            conns: Mutex::new(HashMap::new()),
            next_id: AtomicU32::new(1),
            closed: AtomicBool::new(false),
        });
        let accepting = Arc::clone(&shared);
        thread::Builder::new()
            .name("panoptic-trace".into())
            .spawn(move || accept_loop(&accepting, &listener))
            .map_err(|e| ListenError::Socket(format!("cannot start the trace thread: {e}")))?;
        Ok(Server { shared })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Connections attached now (hello received or not).
    pub fn connections(&self) -> usize {
        lock(&self.shared.conns).len()
    }

    /// Frames `payload` as `kind` and queues it for connection `conn`. Never blocks on the peer.
    pub fn send(&self, conn: u32, kind: u8, payload: &[u8]) -> Sent {
        let frame = match encode(kind, payload) {
            Ok(f) => f,
            Err(_) => return Sent::TooLarge,
        };
        let target = lock(&self.shared.conns).get(&conn).cloned();
        match target {
            Some(c) => c.push(frame),
            None => Sent::Gone,
        }
    }

    /// Closes connection `conn` once what is queued for it is written.
    pub fn close(&self, conn: u32) {
        if let Some(c) = lock(&self.shared.conns).get(&conn) {
            c.finish();
        }
    }

    /// Stops accepting and removes the socket file, then gives every connection up to
    /// [`Limits::exit_grace`] to write what is queued for it, and closes them. Returns the frames
    /// that were not written (their tracers did not read them in time): the caller reports them,
    /// as nothing can reach those tracers any more. Idempotent (0 after the first call).
    pub fn shutdown(&self) -> u64 {
        if self.shared.closed.swap(true, Ordering::SeqCst) {
            return 0;
        }
        // Wake the accepting thread, blocked in accept(), so it sees `closed` and drops the
        // listener; then nothing can connect any more and the name can go.
        let _ = UnixStream::connect(&self.shared.path);
        let _ = fs::remove_file(&self.shared.path);
        let conns: Vec<Arc<Conn>> = lock(&self.shared.conns).values().cloned().collect();
        let deadline = Instant::now() + self.shared.limits.exit_grace;
        for c in &conns {
            c.finish();
        }
        for c in &conns {
            if !c.wait_stopped(deadline) {
                c.abort();
            }
        }
        // An aborted writer fails at once (its socket is shut down) and counts its batch; the
        // bound is only there so that an exit can never hang here.
        let unblocked = Instant::now() + Duration::from_millis(200);
        conns
            .iter()
            .map(|c| {
                c.wait_stopped(unblocked);
                lock(&c.out).lost
            })
            .sum()
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

fn admit(shared: &Arc<Shared>, stream: UnixStream) {
    match dir::peer(&stream) {
        Ok(Some(peer)) if !peer_allowed(peer.uid, shared.uid) => return,
        Ok(_) => {}
        Err(_) => return,
    }
    let conn = Arc::new(Conn {
        stream,
        out: Mutex::new(Outgoing {
            queue: OutQueue::new(shared.limits.queue_bytes),
            closing: false,
            waiting: false,
            done: false,
            lost: 0,
        }),
        wake: Condvar::new(),
        stopped: Condvar::new(),
    });
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    {
        let mut conns = lock(&shared.conns);
        if conns.len() >= shared.limits.max_connections {
            drop(conns);
            let _ = conn.stream.set_write_timeout(Some(Duration::from_secs(1)));
            let msg = format!(
                "{} tracers are attached to this process already",
                shared.limits.max_connections
            );
            let _ = write_all(&conn.stream, &error_frame(BUSY_ERROR, &msg), &mut 0);
            return;
        }
        conns.insert(id, Arc::clone(&conn));
    }
    let writer = Arc::clone(&conn);
    let reader = Arc::clone(shared);
    let spawned = thread::Builder::new()
        .name("panoptic-trace-w".into())
        .spawn(move || writer.write_loop())
        .and_then(|_| {
            thread::Builder::new()
                .name("panoptic-trace-r".into())
                .spawn(move || read_loop(&reader, id, &conn))
        });
    if spawned.is_err() {
        if let Some(c) = lock(&shared.conns).remove(&id) {
            c.abort();
        }
    }
}

fn read_loop(shared: &Shared, id: u32, conn: &Conn) {
    let announced = read_frames(shared, id, conn);
    lock(&shared.conns).remove(&id);
    conn.finish();
    if announced {
        (shared.sink)(Event::Closed { conn: id });
    }
}

/// Reads until the peer closes or misbehaves; whether the connection was reported to the sink.
fn read_frames(shared: &Shared, id: u32, conn: &Conn) -> bool {
    let fail = |message: &str| {
        conn.push(error_frame(PROTOCOL_ERROR, message));
    };
    let mut stream = &conn.stream;
    let _ = stream.set_read_timeout(Some(shared.limits.handshake));
    let mut decoder = Decoder::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut announced = false;
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) => return announced,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                fail("no hello within the handshake time");
                return announced;
            }
            Err(_) => return announced,
        };
        decoder.push(&buf[..n]);
        loop {
            let frame = match decoder.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    fail(&protocol_message(&e));
                    return announced;
                }
            };
            if !announced {
                if frame.kind != kind::HELLO {
                    fail("the first frame must be a hello");
                    return false;
                }
                let _ = stream.set_read_timeout(None);
                announced = true;
            }
            if !(shared.sink)(Event::Frame { conn: id, frame }) {
                fail("too many frames in flight: slow down");
                return announced;
            }
        }
    }
}

fn protocol_message(e: &FrameError) -> String {
    format!("protocol error: {e}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::socket::tests::scratch;
    use crate::trace::frame::MAX_PAYLOAD;
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::mpsc;
    use std::time::Instant;

    struct Fixture {
        base: PathBuf,
        server: Server,
        events: mpsc::Receiver<Event>,
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            self.server.shutdown();
            let _ = fs::remove_dir_all(&self.base);
        }
    }

    fn start(name: &str, limits: Limits) -> Fixture {
        let base = scratch(name);
        let (tx, events) = mpsc::channel();
        let tx = Mutex::new(tx);
        let sink: Sink = Arc::new(move |e| lock(&tx).send(e).is_ok());
        let server = Server::listen(&base.join("panoptic"), 4242, limits, sink).unwrap();
        Fixture {
            base,
            server,
            events,
        }
    }

    fn connect(f: &Fixture) -> UnixStream {
        let s = UnixStream::connect(f.server.path()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s
    }

    fn read_frame(s: &mut UnixStream, d: &mut Decoder) -> Option<Frame> {
        let mut buf = [0u8; 4096];
        loop {
            if let Some(f) = d.next_frame().unwrap() {
                return Some(f);
            }
            match s.read(&mut buf) {
                Ok(0) => return None,
                Ok(n) => d.push(&buf[..n]),
                Err(e) => panic!("read: {e}"),
            }
        }
    }

    fn next_event(f: &Fixture) -> Event {
        f.events
            .recv_timeout(Duration::from_secs(20))
            .expect("no event within 20 s")
    }

    fn hello() -> Vec<u8> {
        encode(kind::HELLO, b"{}").unwrap()
    }

    #[test]
    fn socket_mode_frames_both_ways_and_removal() {
        let f = start("srv", Limits::default());
        let meta = fs::metadata(f.server.path()).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert!(f.server.path().ends_with("panoptic/4242.sock"));

        let mut c = connect(&f);
        c.write_all(&hello()).unwrap();
        let conn = match next_event(&f) {
            Event::Frame { conn, frame } => {
                assert_eq!(
                    frame,
                    Frame {
                        kind: kind::HELLO,
                        payload: "{}".into()
                    }
                );
                conn
            }
            e => panic!("{e:?}"),
        };
        assert_eq!(
            f.server.send(conn, kind::TRACE, b"{\"name\":\"x\"}"),
            Sent::Queued
        );
        let mut d = Decoder::new();
        assert_eq!(
            read_frame(&mut c, &mut d).unwrap().payload,
            "{\"name\":\"x\"}"
        );
        assert_eq!(
            f.server
                .send(conn, kind::TRACE, &vec![b'x'; MAX_PAYLOAD + 1]),
            Sent::TooLarge
        );
        assert_eq!(f.server.send(999, kind::TRACE, b"{}"), Sent::Gone);

        drop(c);
        assert_eq!(next_event(&f), Event::Closed { conn });
        f.server.shutdown();
        assert!(!f.server.path().exists(), "shutdown removes the socket");
        assert!(UnixStream::connect(f.server.path()).is_err());
    }

    #[test]
    fn garbage_and_huge_frames_get_an_error_and_are_closed_unannounced() {
        let f = start("garbage", Limits::default());
        for bytes in [
            b"GET / HTTP/1.1\r\n\r\n".to_vec(),
            vec![0xff; 64],
            encode(kind::TRACE, b"{}").unwrap(),
        ] {
            let mut c = connect(&f);
            c.write_all(&bytes).unwrap();
            let mut d = Decoder::new();
            let e = read_frame(&mut c, &mut d).expect("an error frame");
            assert_eq!(e.kind, kind::ERROR);
            assert!(e.payload.contains(PROTOCOL_ERROR), "{}", e.payload);
            assert_eq!(read_frame(&mut c, &mut d), None, "then closed");
        }
        // A good client still works, and is the first the owner ever hears of.
        let mut c = connect(&f);
        c.write_all(&hello()).unwrap();
        assert!(matches!(next_event(&f), Event::Frame { .. }));
        assert!(f.events.try_recv().is_err());
    }

    #[test]
    fn a_silent_peer_is_dropped_after_the_handshake_time() {
        let limits = Limits {
            handshake: Duration::from_millis(100),
            ..Limits::default()
        };
        let f = start("silent", limits);
        let mut c = connect(&f);
        let mut d = Decoder::new();
        let e = read_frame(&mut c, &mut d).expect("an error frame");
        assert!(e.payload.contains("no hello"), "{}", e.payload);
        assert_eq!(read_frame(&mut c, &mut d), None);
    }

    #[test]
    fn connections_are_capped() {
        let limits = Limits {
            max_connections: 1,
            ..Limits::default()
        };
        let f = start("cap", limits);
        let mut first = connect(&f);
        first.write_all(&hello()).unwrap();
        assert!(matches!(next_event(&f), Event::Frame { .. }));
        let mut second = connect(&f);
        let mut d = Decoder::new();
        let e = read_frame(&mut second, &mut d).unwrap();
        assert!(e.payload.contains(BUSY_ERROR), "{}", e.payload);
        assert_eq!(read_frame(&mut second, &mut d), None);
        assert_eq!(f.server.connections(), 1);
    }

    #[test]
    fn a_tracer_that_does_not_read_costs_bounded_memory_and_learns_the_drops() {
        let limits = Limits {
            queue_bytes: 64 * 1024,
            ..Limits::default()
        };
        let f = start("slow", limits);
        let mut c = connect(&f);
        c.write_all(&hello()).unwrap();
        let Event::Frame { conn, .. } = next_event(&f) else {
            panic!()
        };
        // Far more than the queue and the kernel's socket buffers hold, without blocking.
        let payload = vec![b'x'; 1000];
        let started = Instant::now();
        let mut dropped = 0u64;
        for _ in 0..20_000 {
            if f.server.send(conn, kind::TRACE, &payload) == Sent::Dropped {
                dropped += 1;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "send never blocks"
        );
        assert!(dropped > 0);
        let mut d = Decoder::new();
        let (mut traces, mut reported) = (0u64, 0u64);
        while traces + reported < 20_000 {
            let fr = read_frame(&mut c, &mut d).unwrap();
            if fr.kind == kind::DROPPED {
                let v: serde_json::Value = serde_json::from_str(&fr.payload).unwrap();
                reported += v["dropped"].as_u64().unwrap();
            } else {
                traces += 1;
            }
        }
        assert_eq!(reported, dropped);
        assert_eq!(traces, 20_000 - dropped);
    }

    /// Connects, says hello and returns the client and its connection id.
    fn attach(f: &Fixture) -> (UnixStream, u32) {
        let mut c = connect(f);
        c.write_all(&hello()).unwrap();
        let Event::Frame { conn, .. } = next_event(f) else {
            panic!()
        };
        (c, conn)
    }

    #[test]
    fn shutdown_lets_a_reading_tracer_have_everything_queued() {
        let f = start("drain", Limits::default());
        let (mut c, conn) = attach(&f);
        // Read concurrently, as a tracer does, until the process's side closes.
        let reader = thread::spawn(move || {
            let mut d = Decoder::new();
            let mut traces = 0u64;
            while let Some(fr) = read_frame(&mut c, &mut d) {
                assert_eq!(fr.kind, kind::TRACE);
                traces += 1;
            }
            traces
        });
        // More than the kernel's socket buffers hold: some of it is still queued at shutdown.
        let payload = vec![b'x'; 1000];
        for _ in 0..2000 {
            assert_eq!(f.server.send(conn, kind::TRACE, &payload), Sent::Queued);
        }
        assert_eq!(f.server.shutdown(), 0, "nothing lost");
        assert_eq!(reader.join().unwrap(), 2000);
        assert_eq!(f.server.shutdown(), 0, "idempotent");
    }

    #[test]
    fn shutdown_waits_at_most_the_grace_for_a_tracer_that_does_not_read_and_counts_the_rest() {
        let limits = Limits {
            exit_grace: Duration::from_millis(200),
            ..Limits::default()
        };
        let f = start("grace", limits);
        let (mut c, conn) = attach(&f);
        let payload = vec![b'x'; 1000];
        let sent = 5000u64;
        let mut dropped = 0u64;
        for _ in 0..sent {
            if f.server.send(conn, kind::TRACE, &payload) == Sent::Dropped {
                dropped += 1;
            }
        }
        let started = Instant::now();
        let lost = f.server.shutdown();
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(200),
            "waited the grace: {took:?}"
        );
        assert!(took < Duration::from_secs(5), "and not much more: {took:?}");
        assert!(
            lost > 0,
            "the kernel cannot hold {sent} frames of 1000 bytes"
        );
        // What the process wrote before it gave up is still readable; with the count, it accounts
        // for every frame (the queue held them all: nothing was dropped for lack of room).
        assert_eq!(dropped, 0);
        let mut d = Decoder::new();
        let mut delivered = 0u64;
        let mut buf = [0u8; 65536];
        loop {
            match c.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => d.push(&buf[..n]),
            }
            while let Ok(Some(fr)) = d.next_frame() {
                assert_eq!(fr.kind, kind::TRACE);
                delivered += 1;
            }
        }
        assert_eq!(delivered + lost, sent, "delivered {delivered}, lost {lost}");
    }

    #[test]
    fn a_stale_socket_of_our_pid_is_replaced() {
        let f = start("stale", Limits::default());
        let dir = f.server.path().parent().unwrap().to_owned();
        f.server.shutdown();
        fs::write(f.server.path(), b"leftover").unwrap();
        let sink: Sink = Arc::new(|_| true);
        let again = Server::listen(&dir, 4242, Limits::default(), sink).unwrap();
        assert!(UnixStream::connect(again.path()).is_ok());
        again.shutdown();
    }
}
