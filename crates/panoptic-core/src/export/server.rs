//! The native HTTP server of `serve()`: it answers `GET`/`HEAD` requests with what a [`Handler`]
//! returns, and streams [`Events`] to browsers as Server-Sent Events at `GET /events`. It is
//! transport only: what each path answers is the handler's business (`routes.rs`).
//!
//! # Why hyper on a current-thread tokio runtime
//! The server faces the network on a process whose event loop must never notice it, so it needs
//! limits a small synchronous server does not have. hyper 1.x (HTTP/1 server only) gives: a cap
//! on the request head's size (431 past it), a timeout on reading a request head that also covers
//! idle keep-alive connections (slowloris), cheap idle connections (a few KB each, no thread per
//! connection: dozens of open live pages cost nothing), streaming response bodies with
//! backpressure (SSE: hyper pulls the next message only when the socket took the previous one),
//! and it is the most used, fuzzed and maintained HTTP implementation in Rust. tiny_http, the
//! usual small alternative, reads requests on a thread per connection with no header-read
//! timeout and no head size limit, and a streaming body there holds a thread per SSE client.
//! The cost: tokio (features `rt`, `net`, `time`, `sync` only) and hyper, a few hundred KB of
//! the `.node`.
//!
//! # Threads
//! One thread, `panoptic-http`, runs the runtime: it accepts connections, parses requests and
//! writes responses and event streams; it never runs a handler. Each [`Handler::respond`] call
//! runs on tokio's blocking pool (threads named `panoptic-render`, at most
//! [`Limits::max_renders`] of them, each call holding one of `max_renders` permits), so a long
//! render never stalls other connections or the event streams. A panic in `respond` becomes a
//! 500 (and is counted); the server keeps serving.
//!
//! # Behaviour (as the tests in `tests/server.rs` check)
//! - HTTP/1.1 with keep-alive (HTTP/1.0 too). Only `GET` and `HEAD`: any other method gets 405
//!   with `Allow: GET, HEAD`. `HEAD` runs the handler and sends the same status and headers
//!   (`Content-Length` included) without the body.
//! - The request body is never read and a GET with one is answered as without. hyper drops a
//!   body that already arrived with the head (the connection stays usable); a body still in
//!   flight makes hyper close the connection after the response.
//! - A request target (path and query) longer than [`Limits::max_uri_bytes`] gets 414. A request
//!   head (request line and headers) larger than [`Limits::max_header_bytes`], or with more than
//!   100 headers, gets hyper's 431 (status line and headers, no body) and the connection is
//!   closed; the part of the head hyper did not read makes the close a TCP reset, which a
//!   client on loopback sees after the 431 (hyper's buffer can not be smaller than 8 KiB: a
//!   smaller limit is checked once the head is complete). A head hyper can not parse gets 400.
//! - A new connection has [`Limits::first_header_timeout`] to send its first complete request
//!   head; after each response, a connection has [`Limits::header_timeout`] to send the next
//!   one: a slow client (slowloris) or an idle connection is closed then, without a response. A
//!   partial head counts as a `header_timeout` rejection; an idle connection closing does not.
//! - A response must be taken by the client within [`Limits::write_timeout`] from its first byte
//!   (an event stream: each message within it), else the connection is closed.
//! - Connections are admitted by the connection policy (`admission.rs`): requests and event
//!   streams have separate budgets ([`Limits::max_connections`], [`Limits::max_streams`]), a
//!   client address at most [`Limits::max_per_client`] connections, and when a budget is full
//!   the oldest connection that is not answering a request yields to the newcomer. A new
//!   connection is closed at once only when every place is answering a request.
//! - Responses carry `Content-Length` (event streams are chunked) and the reply's `Content-Type`;
//!   a handler's answer also `Server-Timing: render;dur=<ms>`, how long the handler took (not
//!   the sending).
//! - A text answer (`text/*`, JSON: `gzip.rs` says which) is gzip-compressed, on the render
//!   thread, when the request's `Accept-Encoding` accepts gzip (`gzip`, `x-gzip` or `*`, not
//!   with `q=0`), and sent with `Content-Encoding: gzip`; every text answer carries
//!   `Vary: Accept-Encoding`. `Content-Length` (also for `HEAD`) is the compressed length.
//! - `GET /events` (any query) is the event stream when the server was given [`Events`] (404
//!   otherwise): `text/event-stream`, `Cache-Control: no-cache`; first the last message
//!   published (if any), then each message as it is published, as `data: <message>\n\n`; a
//!   comment `: heartbeat` after [`Limits::heartbeat`] without a message, so dead clients are
//!   found; `event: lagged` with `data: <number of messages missed>` when a client fell behind
//!   the queue. A message should be one line (serde_json's output is): line breaks in it split it
//!   into several `data:` lines, which a browser joins back with `\n`.
//! - With [`Security::tls`], every connection is TLS (`tls.rs`: the handshake must end within
//!   `header_timeout`; plain HTTP to the port gets a plain 400); a failed handshake is counted
//!   in [`Rejected::tls`].
//! - With [`Security::auth`], every request, `/events` included, must carry the credentials
//!   (`auth.rs`), else it gets 401 with `WWW-Authenticate` (counted in
//!   [`Rejected::unauthorized`]).
//! - [`Server::stop`] (or drop) closes the listener and every connection, event streams included,
//!   and joins the thread. A `respond` call still running finishes in the background and its
//!   reply is dropped.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::{poll_fn, Future};
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{ready, Context, Poll};
use std::thread::JoinHandle;
use std::time::Duration;

use http_body_util::{Either, Full};
use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use hyper::header::{
    HeaderValue, ACCEPT, ACCEPT_ENCODING, ALLOW, AUTHORIZATION, CACHE_CONTROL, CONTENT_ENCODING,
    CONTENT_LENGTH, CONTENT_TYPE, VARY, WWW_AUTHENTICATE,
};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{watch, Notify, Semaphore};
use tokio::time::{Instant, Sleep};

use super::admission::{Budgets, Refused, Slot, Table};
use super::auth::Auth;
use super::gzip;
use super::tls::{self, Tls};

/// A request, as a [`Handler`] sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `GET` or `HEAD` (the handler answers both alike: the server drops the body for `HEAD`).
    pub method: String,
    /// The path as sent (not percent-decoded).
    pub path: String,
    /// The raw query, without the `?` ("" when none).
    pub query: String,
    /// The `Accept` header ("" when none; several are joined with ", ").
    pub accept: String,
}

/// What a [`Handler`] answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The HTTP status (one that is not a valid final status becomes 500).
    pub status: u16,
    /// The `Content-Type` header ("" sends none; an invalid header value sends
    /// `application/octet-stream`).
    pub content_type: String,
    /// The body.
    pub body: Vec<u8>,
}

/// What answers the server's requests.
pub trait Handler: Send + Sync + 'static {
    /// Runs on a blocking thread (it may render for a long time); never called for GET /events.
    fn respond(&self, request: &Request) -> Reply;
}

/// The server's limits and timings (see the module documentation for what each does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest request head (request line and headers), bytes (16 KiB).
    pub max_header_bytes: usize,
    /// Time a connection has to send its next request head after a response (10 s; a new
    /// connection has the shorter `first_header_timeout` for its first).
    pub header_timeout: Duration,
    /// Time a new connection has to send its first complete request head (5 s): a client
    /// that connects sends its request at once, so a connection silent or slow for long is not
    /// one (slowloris).
    pub first_header_timeout: Duration,
    /// Most connections for requests open at once: new ones, idle keep-alive ones, and those
    /// being answered (256; at least 1).
    pub max_connections: usize,
    /// Most event streams (`GET /events`) open at once, besides `max_connections` (64; at least
    /// 1).
    pub max_streams: usize,
    /// Most connections open at once from one client address (an IPv4 address, an IPv6 /64),
    /// event streams included (64; at least 1).
    pub max_per_client: usize,
    /// Most [`Handler::respond`] calls at once (4; at least 1).
    pub max_renders: usize,
    /// Time a client has to take a whole response, or one event (60 s).
    pub write_timeout: Duration,
    /// Longest request target (path and query), bytes (8 KiB).
    pub max_uri_bytes: usize,
    /// Time without a message after which an event stream sends a comment (15 s; at least
    /// 100 ms).
    pub heartbeat: Duration,
}

/// The largest budget `serve()` takes ([`Limits::with_budgets`]).
pub const MAX_BUDGET: usize = 1_000_000;

/// `serve()`'s connection budgets as given (None: the default).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BudgetOptions {
    pub max_connections: Option<f64>,
    pub max_streams: Option<f64>,
    pub max_per_client: Option<f64>,
}

impl Limits {
    /// These limits with `options`' budgets, each an integer from 1 to [`MAX_BUDGET`]; else
    /// the message of the error naming the option and the value.
    pub fn with_budgets(self, options: &BudgetOptions) -> Result<Limits, String> {
        let budget = |name: &str, value: Option<f64>, default: usize| match value {
            None => Ok(default),
            Some(v) if v.fract() == 0.0 && (1.0..=MAX_BUDGET as f64).contains(&v) => Ok(v as usize),
            Some(v) => Err(format!(
                "options.{name} must be an integer from 1 to {MAX_BUDGET}, got {v}"
            )),
        };
        Ok(Limits {
            max_connections: budget(
                "maxConnections",
                options.max_connections,
                self.max_connections,
            )?,
            max_streams: budget("maxStreams", options.max_streams, self.max_streams)?,
            max_per_client: budget("maxPerClient", options.max_per_client, self.max_per_client)?,
            ..self
        })
    }
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_header_bytes: 16 * 1024,
            header_timeout: Duration::from_secs(10),
            first_header_timeout: Duration::from_secs(5),
            max_connections: 256,
            max_streams: 64,
            max_per_client: 64,
            max_renders: 4,
            write_timeout: Duration::from_secs(60),
            max_uri_bytes: 8 * 1024,
            heartbeat: Duration::from_secs(15),
        }
    }
}

/// What protects a server: TLS, credentials, both or neither (the default).
#[derive(Debug, Clone, Default)]
pub struct Security {
    /// Serve HTTPS only.
    pub tls: Option<Tls>,
    /// Answer only requests that carry these credentials.
    pub auth: Option<Auth>,
}

/// hyper refuses a connection buffer smaller than this (it panics).
const MIN_BUFFER: usize = 8192;

/// Counts of what the server refused or cut off.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Rejected {
    /// New connections closed at once: every place of `max_connections` was answering a
    /// request.
    pub connections: u64,
    /// New connections closed at once: their client address held `max_per_client`
    /// connections, all answering a request.
    pub per_client: u64,
    /// Requests with a method other than GET and HEAD (405).
    pub method: u64,
    /// Requests whose target was longer than `max_uri_bytes` (414).
    pub uri_too_long: u64,
    /// Request heads larger than `max_header_bytes` or with too many headers (431).
    pub headers_too_large: u64,
    /// Request heads hyper could not parse (400).
    pub bad_request: u64,
    /// Connections closed because a request head was not complete in `first_header_timeout`
    /// or `header_timeout`.
    pub header_timeout: u64,
    /// Connections closed because a client did not take a response in `write_timeout`.
    pub write_timeout: u64,
    /// TLS handshakes that failed or did not end in `header_timeout`, plain HTTP to a TLS port
    /// included.
    pub tls: u64,
    /// Requests without the credentials [`Security::auth`] asks for (401).
    pub unauthorized: u64,
}

/// Connections closed to make room for a newcomer (the connection policy, `admission.rs`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Evicted {
    /// Idle ones: keep-alive between requests, or new without a byte of request.
    pub idle: u64,
    /// Ones in the middle of sending a request head.
    pub slow: u64,
    /// Event streams.
    pub streams: u64,
}

/// The fields of [`ServerStats`] that say how things are now (gauges among panoptic's own
/// metrics, [`super::own`]); every other numeric field counts since the start (a counter).
pub const SERVER_GAUGES: &[&str] = &["open_connections", "event_clients"];

/// What a [`Server`] did so far. panoptic's own metrics export every numeric field, nested ones
/// too (see [`SERVER_GAUGES`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ServerStats {
    /// Requests answered by the server (event streams and rejections included).
    pub requests: u64,
    /// Connections accepted (not counting those closed at once).
    pub connections: u64,
    /// Connections open now.
    pub open_connections: usize,
    /// Event streams open now.
    pub event_clients: usize,
    /// `respond` calls that panicked (answered 500).
    pub panics: u64,
    /// What was refused, by reason.
    pub rejected: Rejected,
    /// What was closed to make room, by reason.
    pub evicted: Evicted,
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    connections: AtomicU64,
    panics: AtomicU64,
    method: AtomicU64,
    uri_too_long: AtomicU64,
    headers_too_large: AtomicU64,
    bad_request: AtomicU64,
    header_timeout: AtomicU64,
    write_timeout: AtomicU64,
    tls: AtomicU64,
    unauthorized: AtomicU64,
}

fn count(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// What every connection of one server shares.
struct Shared {
    handler: Arc<dyn Handler>,
    events: Option<Events>,
    limits: Limits,
    security: Security,
    renders: Arc<Semaphore>,
    counters: Arc<Counters>,
    connections: Arc<Table>,
}

/// A running server (see the module documentation). Stops when dropped.
pub struct Server {
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds `host:port` now (an error such as `AddrInUse` is returned here), then serves on the
    /// `panoptic-http` thread. `host` is a name or an IP literal (an IPv6 one with or without
    /// brackets); port 0 takes a free port ([`Server::local_addr`] tells which).
    pub fn start(
        host: &str,
        port: u16,
        handler: Arc<dyn Handler>,
        events: Option<Events>,
        limits: Limits,
    ) -> io::Result<Server> {
        Server::start_secure(host, port, handler, events, limits, Security::default())
    }

    /// [`Server::start`] with TLS or credentials (see [`Security`]).
    pub fn start_secure(
        host: &str,
        port: u16,
        handler: Arc<dyn Handler>,
        events: Option<Events>,
        limits: Limits,
        security: Security,
    ) -> io::Result<Server> {
        let limits = Limits {
            max_connections: limits.max_connections.max(1),
            max_streams: limits.max_streams.max(1),
            max_per_client: limits.max_per_client.max(1),
            max_renders: limits.max_renders.max(1),
            heartbeat: limits.heartbeat.max(Duration::from_millis(100)),
            ..limits
        };
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let addresses: Vec<SocketAddr> = (host, port).to_socket_addrs()?.collect();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .max_blocking_threads(limits.max_renders)
            .thread_name("panoptic-render")
            .build()?;
        let listener = {
            let _entered = runtime.enter();
            listen(&addresses)?
        };
        let local_addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            handler,
            events,
            renders: Arc::new(Semaphore::new(limits.max_renders)),
            security,
            counters: Arc::default(),
            connections: Arc::new(Table::new(Budgets {
                max_connections: limits.max_connections,
                max_streams: limits.max_streams,
                max_per_client: limits.max_per_client,
            })),
            limits,
        });
        let (stop, stopped) = watch::channel(false);
        let thread = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("panoptic-http".into())
                .spawn(move || {
                    // A task like the connections', not block_on's own future: tokio runs that
                    // one between batches of tasks, so under a flood it would accept connections
                    // faster than their tasks first run (and a scraper's request would wait).
                    let accepting = runtime.spawn(accept(listener, shared, stopped));
                    let _ = runtime.block_on(accepting);
                    // Drops every connection task here, on this thread, closing its socket
                    // before stop() returns. Renders still running on the blocking pool are not
                    // waited for: they finish in the background and their replies are dropped.
                    runtime.shutdown_background();
                })?
        };
        Ok(Server {
            local_addr,
            shared,
            stop,
            thread: Some(thread),
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// What the server did so far.
    pub fn stats(&self) -> ServerStats {
        let c = &self.shared.counters;
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let policy = self.shared.connections.stats();
        ServerStats {
            requests: read(&c.requests),
            connections: read(&c.connections),
            open_connections: self.shared.connections.open(),
            event_clients: self.shared.connections.streams(),
            panics: read(&c.panics),
            rejected: Rejected {
                connections: policy.refused_full,
                per_client: policy.refused_per_client,
                method: read(&c.method),
                uri_too_long: read(&c.uri_too_long),
                headers_too_large: read(&c.headers_too_large),
                bad_request: read(&c.bad_request),
                header_timeout: read(&c.header_timeout),
                write_timeout: read(&c.write_timeout),
                tls: read(&c.tls),
                unauthorized: read(&c.unauthorized),
            },
            evicted: Evicted {
                idle: policy.evicted_idle,
                slow: policy.evicted_slow,
                streams: policy.evicted_streams,
            },
        }
    }

    /// Closes the listener and every connection (event streams included) and joins the server's
    /// thread. Dropping the server does the same.
    pub fn stop(self) {}
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.send_replace(true);
        if let Some(thread) = self.thread.take() {
            // The server's own thread never runs user code, but be safe against a join on
            // itself (it would deadlock).
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
        }
    }
}

/// The listen backlog asked for (the kernel caps it, at `net.core.somaxconn` on Linux). std's
/// 128 overflows under a flood of reconnecting clients, and a handshake the kernel drops waits
/// for the client's SYN retransmission (1 s and more): a scraper's request would be late before
/// the server ever saw it.
const BACKLOG: u32 = 4096;

/// Listens on the first of `addresses` that binds (as std's `TcpListener::bind` does, with
/// `SO_REUSEADDR` where std sets it, but a longer backlog).
fn listen(addresses: &[SocketAddr]) -> io::Result<TcpListener> {
    let mut failed = None;
    for &address in addresses {
        let socket = if address.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }?;
        // As std: not on Windows, where it would let another socket take the port.
        #[cfg(not(windows))]
        socket.set_reuseaddr(true)?;
        match socket.bind(address) {
            Ok(()) => return socket.listen(BACKLOG),
            Err(e) => failed = Some(e),
        }
    }
    Err(failed.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "could not resolve to any addresses",
        )
    }))
}

/// Accepts connections until stopped.
async fn accept(listener: TcpListener, shared: Arc<Shared>, mut stopped: watch::Receiver<bool>) {
    let limits = &shared.limits;
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(limits.max_header_bytes.max(MIN_BUFFER))
        .max_header_size(limits.max_header_bytes)
        .keep_alive(true);
    loop {
        let accepted = match first(listener.accept(), stopped.wait_for(|stop| *stop)).await {
            Won::First(accepted) => accepted,
            // Stopped, or the server is gone.
            Won::Second(_) => return,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(_) => {
                // Out of file descriptors and the like: the listener stays readable, so pause
                // instead of spinning.
                let pause = tokio::time::sleep(Duration::from_millis(100));
                if let Won::Second(_) = first(pause, stopped.wait_for(|stop| *stop)).await {
                    return;
                }
                continue;
            }
        };
        let reading_head = Arc::new(AtomicBool::new(false));
        let table = &shared.connections;
        let slot = match table.admit(peer.ip(), reading_head.clone(), true) {
            Ok(slot) => slot,
            Err(Refused::NotYet) => {
                // Only connections not read from yet could yield: let every task run once
                // (tokio's queue is first in, first out), so that a request waiting in one of
                // them is read, then ask again, without waiting this time.
                tokio::task::yield_now().await;
                match table.admit(peer.ip(), reading_head.clone(), false) {
                    Ok(slot) => slot,
                    Err(_) => continue,
                }
            }
            // Counted by the policy; dropping the stream closes it.
            Err(Refused::Full | Refused::PerClient) => continue,
        };
        count(&shared.counters.connections);
        // Event streams send small messages that must not wait for Nagle's delay.
        let _ = stream.set_nodelay(true);
        let conn = Conn {
            slot: Arc::new(slot),
            reading_head,
        };
        tokio::spawn(connection(stream, conn, builder.clone(), shared.clone()));
    }
}

/// An admitted connection: its place in the policy's table, and whether request bytes arrived
/// since its last response began.
struct Conn {
    slot: Arc<Slot>,
    reading_head: Arc<AtomicBool>,
}

/// Why a connection was closed by the server rather than by hyper.
enum Closed {
    /// No complete first request head in `first_header_timeout`.
    TooSlow,
    /// It yielded to a newcomer (counted by the policy).
    Evicted,
}

/// Completes when the connection must close: evicted, or fresh past `first_header_timeout`.
async fn closing(slot: &Slot, first_header_timeout: Duration) -> Closed {
    if let Won::Second(()) = first(slot.evicted(), tokio::time::sleep(first_header_timeout)).await {
        if slot.fresh() {
            return Closed::TooSlow;
        }
        slot.evicted().await;
    }
    Closed::Evicted
}

/// Serves one connection until it closes.
async fn connection(stream: TcpStream, conn: Conn, builder: http1::Builder, shared: Arc<Shared>) {
    let Conn { slot, reading_head } = conn;
    // With TLS, the handshake comes first: to the connection policy it is the start of the first
    // request (the connection is read from, must finish within `first_header_timeout`, and
    // yields to a newcomer like any connection without a request). Without TLS, a no-op.
    if shared.security.tls.is_some() {
        slot.polled();
    }
    let handshake = tls::accept(
        shared.security.tls.as_ref(),
        stream,
        shared.limits.first_header_timeout,
    );
    let stream = match first(handshake, slot.evicted()).await {
        Won::First(Ok(stream)) => stream,
        Won::First(Err(refused)) => {
            if refused == tls::Refused::Tls {
                count(&shared.counters.tls);
            }
            return;
        }
        Won::Second(()) => return,
    };
    let io = TokioIo::new(Guarded {
        stream,
        timeout: shared.limits.write_timeout,
        deadline: None,
        sleep: None,
        counters: shared.counters.clone(),
        reading_head: reading_head.clone(),
        slot: slot.clone(),
        polled: false,
    });
    let service = service_fn(|request| answer(request, shared.clone(), slot.clone()));
    let served = builder.serve_connection(io, service);
    let served = match first(served, closing(&slot, shared.limits.first_header_timeout)).await {
        Won::First(served) => served,
        Won::Second(Closed::TooSlow) => {
            // As hyper's header timeout counts: a partial head is a rejection, silence is not.
            if reading_head.load(Ordering::Relaxed) {
                count(&shared.counters.header_timeout);
            }
            return;
        }
        Won::Second(Closed::Evicted) => return,
    };
    if let Err(error) = served {
        let counters = &shared.counters;
        if error.is_timeout() {
            // hyper reports an idle connection reaching the timeout the same way: not a
            // rejection.
            if reading_head.load(Ordering::Relaxed) {
                count(&counters.header_timeout);
            }
        } else if error.is_parse_too_large() {
            count(&counters.headers_too_large);
        } else if error.is_parse() {
            count(&counters.bad_request);
        }
        // Anything else: the peer went away mid-message, or a write timeout (counted where it
        // fired).
    }
}

type ReplyBody = Either<Full<Bytes>, EventStream>;

async fn answer(
    request: hyper::Request<Incoming>,
    shared: Arc<Shared>,
    slot: Arc<Slot>,
) -> Result<Response<ReplyBody>, Infallible> {
    let counters = &shared.counters;
    count(&counters.requests);
    slot.busy();
    // The body is never read (see the module documentation).
    let (head, _) = request.into_parts();
    let is_head = head.method == Method::HEAD;
    if let Some(auth) = &shared.security.auth {
        let given = head.headers.get_all(AUTHORIZATION).iter();
        if !auth.allows(given.map(HeaderValue::as_bytes)) {
            count(&counters.unauthorized);
            let mut response = text(401, "unauthorized: credentials required", is_head);
            let headers = response.headers_mut();
            for challenge in auth.challenges() {
                headers.append(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
            }
            return Ok(response);
        }
    }
    if head.method != Method::GET && !is_head {
        count(&counters.method);
        let mut response = text(405, "method not allowed: only GET and HEAD", false);
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return Ok(response);
    }
    let target = head
        .uri
        .path_and_query()
        .map_or("", |target| target.as_str());
    if target.len() > shared.limits.max_uri_bytes {
        count(&counters.uri_too_long);
        return Ok(text(414, "URI too long", is_head));
    }
    let path = head.uri.path();
    if path == "/events" {
        return Ok(event_stream(&shared, is_head, &slot));
    }
    let mut accept = String::new();
    for value in head.headers.get_all(ACCEPT) {
        if !accept.is_empty() {
            accept.push_str(", ");
        }
        accept.push_str(&String::from_utf8_lossy(value.as_bytes()));
    }
    let accept_encoding = (head.headers.get_all(ACCEPT_ENCODING).iter())
        .map(|value| String::from_utf8_lossy(value.as_bytes()))
        .collect::<Vec<_>>()
        .join(",");
    let request = Request {
        method: head.method.as_str().to_owned(),
        path: path.to_owned(),
        query: head.uri.query().unwrap_or("").to_owned(),
        accept,
    };
    let (answer, took, coding) = render(&shared, request, gzip::accepts(&accept_encoding)).await;
    let mut response = reply(answer, is_head);
    if coding != Coding::Fixed {
        // The answer depends on Accept-Encoding: caches must key on it.
        let headers = response.headers_mut();
        headers.insert(VARY, HeaderValue::from_static("accept-encoding"));
        if coding == Coding::Gzip {
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
    }
    if let Some(took) = took {
        // How long the answer took to make (not to send): what a scrape's cost is on this side.
        let timing = format!("render;dur={:.3}", took.as_secs_f64() * 1000.0);
        if let Ok(value) = HeaderValue::from_str(&timing) {
            response.headers_mut().insert("server-timing", value);
        }
    }
    Ok(response)
}

/// How an answer's body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Coding {
    /// As the handler gave it, whatever the request accepts (not text, or the server's own
    /// error): no `Vary`.
    Fixed,
    /// Text sent as it is (gzip not accepted, or an empty body).
    Identity,
    /// Text gzip-compressed (`Content-Encoding: gzip`).
    Gzip,
}

/// Runs the handler on the blocking pool, at most `max_renders` at once, and says how long it
/// ran; compresses a text answer there too when `gzip` is accepted (`gzip.rs`), so a large
/// exposition's compression never holds the server's thread. If the client goes away first, a
/// render not started yet is not run; one running finishes and is dropped.
async fn render(
    shared: &Shared,
    request: Request,
    accepts_gzip: bool,
) -> (Reply, Option<Duration>, Coding) {
    let Ok(permit) = shared.renders.clone().acquire_owned().await else {
        // Never closed: unreachable, but an answer is better than a panic.
        return (error_reply(503, "server stopping"), None, Coding::Fixed);
    };
    let handler = shared.handler.clone();
    let rendered = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let started = std::time::Instant::now();
        let mut answer = handler.respond(&request);
        let took = started.elapsed();
        let coding = if !gzip::compressible(&answer.content_type) {
            Coding::Fixed
        } else if accepts_gzip && !answer.body.is_empty() {
            answer.body = gzip::compress(&answer.body);
            Coding::Gzip
        } else {
            Coding::Identity
        };
        (answer, Some(took), coding)
    })
    .await;
    rendered.unwrap_or_else(|_| {
        count(&shared.counters.panics);
        let answer = error_reply(500, "internal error: the request handler panicked");
        (answer, None, Coding::Fixed)
    })
}

fn error_reply(status: u16, message: &str) -> Reply {
    Reply {
        status,
        content_type: "text/plain; charset=utf-8".into(),
        body: format!("{message}\n").into_bytes(),
    }
}

fn text(status: u16, message: &str, is_head: bool) -> Response<ReplyBody> {
    reply(error_reply(status, message), is_head)
}

fn reply(reply: Reply, is_head: bool) -> Response<ReplyBody> {
    let status = match StatusCode::from_u16(reply.status) {
        Ok(status) if !status.is_informational() => status,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let mut body = reply.body;
    if matches!(status, StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED) {
        body.clear();
    }
    let length = body.len();
    let mut response = Response::new(Either::Left(Full::new(if is_head {
        Bytes::new()
    } else {
        Bytes::from(body)
    })));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if !reply.content_type.is_empty() {
        let content_type = HeaderValue::from_str(&reply.content_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream"));
        headers.insert(CONTENT_TYPE, content_type);
    }
    if is_head && length > 0 {
        // hyper sends this header as given and no body for HEAD.
        headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
    }
    response
}

fn event_stream(shared: &Shared, is_head: bool, slot: &Slot) -> Response<ReplyBody> {
    let Some(events) = &shared.events else {
        return text(404, "not found: /events (no event stream)", is_head);
    };
    let body = if is_head {
        Either::Left(Full::new(Bytes::new()))
    } else {
        slot.streaming();
        Either::Right(events.stream(shared.limits.heartbeat, ClientGuard::new(events.0.clone())))
    };
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// A connection's socket, closed when a response is not taken in time: the deadline starts at
/// the first write after the socket last took everything hyper had (a flush that completes), so
/// a client reading a byte now and then can not hold a response (and its memory) for longer.
/// hyper flushes after the whole head and body of a reply were queued, and after each event.
/// It also tells whether request bytes arrived since the last response began, which tells a
/// slow client from an idle keep-alive connection when hyper's header timeout closes either.
struct Guarded {
    stream: tls::Stream,
    timeout: Duration,
    deadline: Option<Instant>,
    sleep: Option<Pin<Box<Sleep>>>,
    counters: Arc<Counters>,
    reading_head: Arc<AtomicBool>,
    /// Told when the connection is first read from, and when a response was sent (so the
    /// policy knows it is idle).
    slot: Arc<Slot>,
    polled: bool,
}

impl Guarded {
    /// Starts the deadline if it is not running; an error once it passed.
    fn arm(&mut self) -> io::Result<()> {
        let deadline = match self.deadline {
            Some(deadline) => deadline,
            None => {
                // A response begins: what was read so far was its request.
                self.reading_head.store(false, Ordering::Relaxed);
                *self.deadline.insert(Instant::now() + self.timeout)
            }
        };
        if Instant::now() >= deadline {
            return Err(self.timed_out());
        }
        Ok(())
    }

    /// After a write that must wait: wakes the connection at the deadline, an error if it passed.
    fn wait(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        let Some(deadline) = self.deadline else {
            return Ok(());
        };
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if sleep.deadline() != deadline {
            sleep.as_mut().reset(deadline);
        }
        if sleep.as_mut().poll(cx).is_ready() {
            return Err(self.timed_out());
        }
        Ok(())
    }

    fn timed_out(&self) -> io::Error {
        count(&self.counters.write_timeout);
        io::Error::new(
            io::ErrorKind::TimedOut,
            "the client did not take the response",
        )
    }

    fn write_with(
        &mut self,
        cx: &mut Context<'_>,
        write: impl FnOnce(Pin<&mut tls::Stream>, &mut Context<'_>) -> Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        self.arm()?;
        let written = write(Pin::new(&mut self.stream), cx);
        if written.is_pending() {
            self.wait(cx)?;
        }
        written
    }
}

impl AsyncRead for Guarded {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.polled {
            this.polled = true;
            this.slot.polled();
        }
        let before = buf.filled().len();
        let read = Pin::new(&mut this.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.reading_head.store(true, Ordering::Relaxed);
        }
        read
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .write_with(cx, |stream, cx| stream.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .write_with(cx, |stream, cx| stream.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        // Lets hyper queue large bodies instead of copying them into its buffer.
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let flushed = Pin::new(&mut this.stream).poll_flush(cx);
        if let Poll::Ready(Ok(())) = flushed {
            // hyper flushes its socket only once all it had was written: nothing is waiting.
            if this.deadline.take().is_some() {
                // A response was sent whole (an event stream's message: the policy ignores it).
                this.slot.idle();
            }
        }
        flushed
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

enum Won<A, B> {
    First(A),
    Second(B),
}

/// Whichever of two futures is ready first (the other is dropped). tokio's `select!` needs its
/// `macros` feature; this is all the server needs of it.
async fn first<A: Future, B: Future>(a: A, b: B) -> Won<A::Output, B::Output> {
    let mut a = pin!(a);
    let mut b = pin!(b);
    poll_fn(|cx| {
        if let Poll::Ready(output) = a.as_mut().poll(cx) {
            return Poll::Ready(Won::First(output));
        }
        if let Poll::Ready(output) = b.as_mut().poll(cx) {
            return Poll::Ready(Won::Second(output));
        }
        Poll::Pending
    })
    .await
}

/// The messages a server streams at `GET /events` (see the module documentation), kept in a
/// bounded queue that all clients read: the last messages published, at most `max_messages` of
/// them and at most `max_bytes` together (always at least the last one, whatever its size). A
/// client that falls behind the queue is told how many it missed (`event: lagged`) and goes on
/// from the oldest message kept; a client that takes nothing is closed after the server's
/// `write_timeout`. So memory is bounded by the queue, plus per client at most one message beyond
/// it and hyper's buffer (16 KiB by default) besides the kernel's socket buffers. Cheap to clone
/// (a shared handle); [`Events::publish`] may be called from any thread.
#[derive(Clone)]
pub struct Events(Arc<Queue>);

struct Queue {
    state: Mutex<QueueState>,
    /// Wakes every waiting client when a message is published.
    published: Notify,
    clients: AtomicUsize,
}

struct QueueState {
    /// Each message framed for the stream, oldest first.
    frames: VecDeque<Bytes>,
    /// Sequence number of the next message (the one of `frames[i]` is
    /// `next - frames.len() + i`).
    next: u64,
    bytes: usize,
    max_messages: usize,
    max_bytes: usize,
    lagged: u64,
}

/// The state of [`Events`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventStats {
    /// Event streams open now (of every server given these events).
    pub clients: usize,
    /// Messages in the queue.
    pub queued_messages: usize,
    /// Their size as sent (framing included), bytes.
    pub queued_bytes: usize,
    /// Messages published so far.
    pub published: u64,
    /// `event: lagged` notices sent so far.
    pub lagged: u64,
}

impl Default for Events {
    fn default() -> Events {
        Events::new()
    }
}

impl Events {
    /// A queue of at most 32 messages and 16 MiB.
    pub fn new() -> Events {
        Events::bounded(32, 16 << 20)
    }

    /// A queue of at most `max_messages` messages (at least 1) and `max_bytes` bytes.
    pub fn bounded(max_messages: usize, max_bytes: usize) -> Events {
        Events(Arc::new(Queue {
            state: Mutex::new(QueueState {
                frames: VecDeque::new(),
                next: 0,
                bytes: 0,
                max_messages: max_messages.max(1),
                max_bytes,
                lagged: 0,
            }),
            published: Notify::new(),
            clients: AtomicUsize::new(0),
        }))
    }

    /// Sends `message` to every client (see [`Events`] about line breaks); never blocks on a
    /// client.
    pub fn publish(&self, message: Arc<[u8]>) {
        let frame = frame(&message);
        {
            let mut state = self.0.lock();
            state.bytes += frame.len();
            state.frames.push_back(frame);
            state.next += 1;
            while state.frames.len() > 1
                && (state.frames.len() > state.max_messages || state.bytes > state.max_bytes)
            {
                if let Some(dropped) = state.frames.pop_front() {
                    state.bytes -= dropped.len();
                }
            }
        }
        self.0.published.notify_waiters();
    }

    /// Event streams open now.
    pub fn clients(&self) -> usize {
        self.0.clients.load(Ordering::Relaxed)
    }

    /// The queue's state.
    pub fn stats(&self) -> EventStats {
        let state = self.0.lock();
        EventStats {
            clients: self.clients(),
            queued_messages: state.frames.len(),
            queued_bytes: state.bytes,
            published: state.next,
            lagged: state.lagged,
        }
    }

    fn stream(&self, heartbeat: Duration, client: ClientGuard) -> EventStream {
        let state = self.0.lock();
        // A new client starts with the last message, if there is one.
        let cursor = state.next - u64::from(!state.frames.is_empty());
        EventStream {
            queue: self.0.clone(),
            cursor,
            heartbeat,
            waiting: None,
            _client: client,
        }
    }
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The frame a client at `cursor` sends next and its next cursor, if there is one.
    fn take(&self, cursor: u64) -> Option<(Bytes, u64)> {
        let mut state = self.lock();
        let oldest = state.next - state.frames.len() as u64;
        if cursor < oldest {
            state.lagged += 1;
            let notice = format!("event: lagged\ndata: {}\n\n", oldest - cursor);
            return Some((Bytes::from(notice), oldest));
        }
        let frame = state.frames.get((cursor - oldest) as usize)?.clone();
        Some((frame, cursor + 1))
    }
}

/// `message` as an event: `data: ` before each of its lines (split at CR LF, LF or CR, as a
/// browser splits them), a blank line after.
fn frame(message: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(message.len() + 8);
    let mut rest = message;
    loop {
        out.extend_from_slice(b"data: ");
        let Some(end) = rest.iter().position(|&b| b == b'\n' || b == b'\r') else {
            out.extend_from_slice(rest);
            out.extend_from_slice(b"\n\n");
            return Bytes::from(out);
        };
        out.extend_from_slice(&rest[..end]);
        out.push(b'\n');
        let crlf = rest[end] == b'\r' && rest.get(end + 1) == Some(&b'\n');
        rest = &rest[end + 1 + usize::from(crlf)..];
    }
}

/// Counts an open event stream in its queue while it lives (the server counts its streams in
/// its connection table).
struct ClientGuard {
    queue: Arc<Queue>,
}

impl ClientGuard {
    fn new(queue: Arc<Queue>) -> ClientGuard {
        queue.clients.fetch_add(1, Ordering::Relaxed);
        ClientGuard { queue }
    }
}

impl Drop for ClientGuard {
    fn drop(&mut self) {
        self.queue.clients.fetch_sub(1, Ordering::Relaxed);
    }
}

type Next = Pin<Box<dyn Future<Output = (Bytes, u64)> + Send>>;

/// One client's endless response body. hyper asks for the next frame only once the socket took
/// the previous ones, so a slow client holds its place in the queue, not copies of messages.
struct EventStream {
    queue: Arc<Queue>,
    cursor: u64,
    heartbeat: Duration,
    waiting: Option<Next>,
    _client: ClientGuard,
}

/// The next frame for a client at `cursor`: a message, a lag notice or, after `heartbeat`
/// without either, a comment.
async fn next_frame(queue: Arc<Queue>, cursor: u64, heartbeat: Duration) -> (Bytes, u64) {
    let mut published = pin!(queue.published.notified());
    loop {
        // Registered before looking, so a message published in between still wakes us.
        published.as_mut().enable();
        if let Some(next) = queue.take(cursor) {
            return next;
        }
        match first(published.as_mut(), tokio::time::sleep(heartbeat)).await {
            Won::First(()) => published.set(queue.published.notified()),
            Won::Second(()) => return (Bytes::from_static(b": heartbeat\n\n"), cursor),
        }
    }
}

impl Body for EventStream {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        let waiting = this.waiting.get_or_insert_with(|| {
            Box::pin(next_frame(this.queue.clone(), this.cursor, this.heartbeat))
        });
        let (frame, cursor) = ready!(waiting.as_mut().poll(cx));
        this.waiting = None;
        this.cursor = cursor;
        Poll::Ready(Some(Ok(Frame::data(frame))))
    }

    fn is_end_stream(&self) -> bool {
        false
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_lines_as_a_browser_does() {
        assert_eq!(&frame(b"{\"a\":1}")[..], b"data: {\"a\":1}\n\n");
        assert_eq!(&frame(b"")[..], b"data: \n\n");
        assert_eq!(
            &frame(b"a\nb\r\nc\rd\n")[..],
            b"data: a\ndata: b\ndata: c\ndata: d\ndata: \n\n"
        );
    }

    #[test]
    fn the_queue_keeps_the_last_messages_within_its_bounds() {
        let events = Events::bounded(3, 1000);
        for i in 0..5u8 {
            events.publish(Arc::from(vec![b'0' + i; 10]));
        }
        let stats = events.stats();
        assert_eq!(stats.published, 5);
        assert_eq!(stats.queued_messages, 3);
        assert_eq!(stats.queued_bytes, 3 * (10 + 8));
        // A client at message 0 missed 0 and 1, then reads 2, 3, 4.
        let (notice, cursor) = events.0.take(0).unwrap();
        assert_eq!(&notice[..], b"event: lagged\ndata: 2\n\n");
        assert_eq!(cursor, 2);
        assert_eq!(&events.0.take(2).unwrap().0[..], b"data: 2222222222\n\n");
        assert_eq!(events.0.take(5), None);
        // A message larger than max_bytes is kept alone.
        events.publish(Arc::from(vec![b'x'; 2000]));
        assert_eq!(events.stats().queued_messages, 1);
        assert_eq!(events.stats().queued_bytes, 2008);
        assert_eq!(events.stats().lagged, 1);
    }
}
