//! Pushes every delivery to InfluxDB 1.x (`POST /write?db=..&precision=..`) from a thread of
//! its own.
//!
//! [`Pusher::subscriber`] runs on the exporter's thread: it writes the delivery's line protocol
//! ([`super::influx`]), cuts it into batches (at most [`PushOptions::batch_points`] points and
//! at most a quarter of the queue's bound in bytes, 1 MiB at most) and queues them without
//! waiting for anything. The queue holds at most [`PushOptions::max_queue_bytes`] bytes (the
//! batch being sent included): when a new batch does not fit, the oldest batches waiting are
//! dropped (after an outage the newest data is worth the most, and InfluxDB takes points in any
//! order) and counted in [`PushStats::dropped_points`]. So the pusher never blocks the exporter
//! and never grows without bound, whatever InfluxDB does.
//!
//! The pusher's thread sends one batch at a time, oldest first:
//! - 2xx: pushed;
//! - a connection or timeout error, 5xx or 429: the batch stays first and is sent again after
//!   a backoff that doubles from [`PushOptions::min_backoff`] up to
//!   [`PushOptions::max_backoff`], with jitter (a uniform draw in the upper half of the delay,
//!   so many processes restarted together do not retry in step); a `Retry-After` header in
//!   seconds lengthens it (up to the cap);
//! - any other answer (4xx, such as 404 for a database that does not exist, 400 for points
//!   InfluxDB refuses, 401 for bad credentials; or a redirect, which is not followed): the
//!   batch is dropped and counted, never sent again; [`PushStats::last_error`] says why (the
//!   status and the start of InfluxDB's message). A 400 "partial write" stored the other points
//!   of the batch, but all of them are counted as dropped.
//!
//! [`Pusher::stop`] stops taking deliveries, sends what is queued until a deadline (a request
//! under way when it passes is cut short), drops and counts what is left, and ends the thread.
//! Plain `http://` only: this build has no TLS (an `https://` URL is refused when the options
//! are checked; put a TLS-terminating proxy on loopback in front of a remote InfluxDB).
//! Proxies from the environment (`HTTP_PROXY`, ...) are not used.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::Value as Json;
use ureq::http::Uri;

use super::influx::{self, LineOptions, Precision};
use super::{Delivery, Store, Subscriber};

/// The default bound of the queue: 8 MiB.
pub const DEFAULT_MAX_QUEUE_BYTES: usize = 8 << 20;
/// The default batch size in points (InfluxDB's documentation advises 5000).
pub const DEFAULT_BATCH_POINTS: usize = 5000;
/// The largest batch in bytes (also at most a quarter of the queue's bound).
const MAX_BATCH_BYTES: usize = 1 << 20;
/// How much of an error answer's body [`PushStats::last_error`] keeps.
const ERROR_BODY_BYTES: u64 = 512;

/// Where and how to push. [`PushOptions::from_json`] reads the JS option `influx`;
/// [`PushOptions::check`] validates.
#[derive(Clone, Debug)]
pub struct PushOptions {
    /// InfluxDB's base URL (`http://host:8086`, or with a base path behind a proxy).
    pub url: String,
    /// The database (it must exist: InfluxDB answers 404 otherwise, and nothing is created).
    pub db: String,
    /// Basic authentication, when both are given.
    pub username: Option<String>,
    pub password: Option<String>,
    /// The retention policy to write into (`rp`; None: the database's default).
    pub retention_policy: Option<String>,
    /// How deliveries become lines (the precision is also the request's).
    pub lines: LineOptions,
    /// Bound of the queue in bytes.
    pub max_queue_bytes: usize,
    /// Points per batch at most.
    pub batch_points: usize,
    /// How long one request may take in all (connecting, sending, the answer).
    pub timeout: Duration,
    /// The first retry delay, and the largest.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for PushOptions {
    /// No URL nor database (to be given); 8 MiB queue, 5000 points per batch, 10 s timeout,
    /// backoff 100 ms to 30 s.
    fn default() -> Self {
        PushOptions {
            url: String::new(),
            db: String::new(),
            username: None,
            password: None,
            retention_policy: None,
            lines: LineOptions::default(),
            max_queue_bytes: DEFAULT_MAX_QUEUE_BYTES,
            batch_points: DEFAULT_BATCH_POINTS,
            timeout: Duration::from_secs(10),
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// Why a pusher could not start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushError {
    /// An option of the wrong type (the binding throws a `TypeError`); `field` is spelt as in
    /// JS (`influx.url`).
    Type { field: String, message: String },
    /// An option out of range (a `RangeError`).
    Range { field: String, message: String },
    /// The thread could not be started.
    Thread(String),
}

impl fmt::Display for PushError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PushError::Type { message, .. } | PushError::Range { message, .. } => {
                f.write_str(message)
            }
            PushError::Thread(e) => write!(f, "the InfluxDB pusher's thread did not start: {e}"),
        }
    }
}

impl std::error::Error for PushError {}

/// The JS option's keys, in the order errors list them (the JS side warns about others and
/// leaves them out before they come here).
pub const KEYS: &[&str] = &[
    "url",
    "db",
    "username",
    "password",
    "retentionPolicy",
    "precision",
    "prefix",
    "perProcess",
    "tags",
    "maxQueueBytes",
    "batchPoints",
    "timeout",
    "minBackoff",
    "maxBackoff",
];

/// A given value as errors quote it (JSON, cut at 100 characters).
fn quote(value: &Json) -> String {
    let text = value.to_string();
    match text.char_indices().nth(100) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text,
    }
}

fn type_error(field: &str, expected: &str, value: &Json) -> PushError {
    let field = format!("influx.{field}");
    let message = format!("{field} must be {expected}, got {}", quote(value));
    PushError::Type { field, message }
}

fn range_error(field: &str, expected: &str, value: &dyn fmt::Display) -> PushError {
    let field = format!("influx.{field}");
    let message = format!("{field} must be {expected}, got {value}");
    PushError::Range { field, message }
}

impl PushOptions {
    /// Reads the JS option `influx: { url, db, username, password, retentionPolicy, precision
    /// ('ns' | 'us' | 'ms' | 's'), prefix, perProcess, tags: { key: value }, maxQueueBytes,
    /// batchPoints, timeout, minBackoff, maxBackoff }` (times in ms; absent or `undefined`
    /// keys take their defaults), then [`PushOptions::check`]s it.
    pub fn from_json(value: &Json) -> Result<PushOptions, PushError> {
        let Json::Object(map) = value else {
            let message = format!("influx must be an object, got {}", quote(value));
            let field = "influx".into();
            return Err(PushError::Type { field, message });
        };
        let mut options = PushOptions::default();
        for (key, value) in map {
            if value.is_null() {
                continue; // JSON.stringify drops undefined; null is taken as not given
            }
            let text = |expected| match value {
                Json::String(s) => Ok(s.clone()),
                _ => Err(type_error(key, expected, value)),
            };
            let number = |what| {
                (value.as_f64())
                    .ok_or_else(|| type_error(key, "a number", value))
                    .and_then(|x| {
                        if x.is_finite() && x > 0.0 {
                            Ok(x)
                        } else {
                            Err(range_error(key, what, &x))
                        }
                    })
            };
            let ms = |x: f64| Duration::from_secs_f64(x / 1000.0);
            match key.as_str() {
                "url" => options.url = text("a string")?,
                "db" => options.db = text("a string")?,
                "username" => options.username = Some(text("a string")?),
                "password" => options.password = Some(text("a string")?),
                "retentionPolicy" => options.retention_policy = Some(text("a string")?),
                "precision" => {
                    let given = text("one of 'ns', 'us', 'ms', 's'")?;
                    options.lines.precision = Precision::parse(&given).ok_or_else(|| {
                        range_error(key, "one of 'ns', 'us', 'ms', 's'", &quote(value))
                    })?;
                }
                "prefix" => options.lines.prefix = text("a string")?,
                "perProcess" => {
                    options.lines.per_process =
                        (value.as_bool()).ok_or_else(|| type_error(key, "a boolean", value))?
                }
                "tags" => {
                    let Json::Object(tags) = value else {
                        return Err(type_error(key, "an object of strings", value));
                    };
                    for (k, v) in tags {
                        let Json::String(v) = v else {
                            return Err(type_error(&format!("tags.{k}"), "a string", v));
                        };
                        options.lines.tags.push((k.clone(), v.clone()));
                    }
                }
                "maxQueueBytes" => {
                    let x = number("a number of bytes from 1024")?;
                    if x < 1024.0 || x > usize::MAX as f64 {
                        return Err(range_error(key, "a number of bytes from 1024", &x));
                    }
                    options.max_queue_bytes = x as usize;
                }
                "batchPoints" => {
                    let x = number("a whole number from 1")?;
                    if x.fract() != 0.0 || x > 1e9 {
                        return Err(range_error(key, "a whole number from 1 to 1e9", &x));
                    }
                    options.batch_points = x as usize;
                }
                "timeout" => options.timeout = ms(number("a positive number of ms")?),
                "minBackoff" => options.min_backoff = ms(number("a positive number of ms")?),
                "maxBackoff" => options.max_backoff = ms(number("a positive number of ms")?),
                _ => {
                    let field = format!("influx.{key}");
                    let known = KEYS.join(", ");
                    let message = format!("{field} is not an option (known: {known})");
                    return Err(PushError::Type { field, message });
                }
            }
        }
        options.check()?;
        Ok(options)
    }

    /// Validates the options: an `http://` URL with a host (no query, no credentials in it),
    /// a database, both or neither of username and password, tag keys InfluxDB takes (and
    /// not `worker`, the per-process tag), bounds
    /// and times within range.
    pub fn check(&self) -> Result<(), PushError> {
        self.base_url()?;
        if self.db.is_empty() {
            return Err(range_error("db", "a database name", &"an empty string"));
        }
        if self.username.is_some() != self.password.is_some() {
            let (given, missing) = match self.username {
                Some(_) => ("username", "password"),
                None => ("password", "username"),
            };
            let expected = format!("given with influx.{given}");
            return Err(range_error(missing, &expected, &"nothing"));
        }
        if self.retention_policy.as_deref() == Some("") {
            return Err(range_error("retentionPolicy", "a name", &"an empty string"));
        }
        for (k, _) in &self.lines.tags {
            if k.is_empty() || k == "time" || k == "worker" {
                let field = format!("tags.{k}");
                let expected = "a tag key other than '', 'time' and 'worker'";
                return Err(range_error(&field, expected, &k));
            }
        }
        if self.max_queue_bytes < 1024 {
            let given = self.max_queue_bytes;
            return Err(range_error("maxQueueBytes", "at least 1024", &given));
        }
        if self.batch_points == 0 {
            return Err(range_error("batchPoints", "at least 1", &0));
        }
        let times = [
            ("timeout", self.timeout),
            ("minBackoff", self.min_backoff),
            ("maxBackoff", self.max_backoff),
        ];
        for (name, t) in times {
            if t < Duration::from_millis(1) || t > Duration::from_secs(86_400) {
                let given = format!("{} ms", t.as_secs_f64() * 1000.0);
                return Err(range_error(name, "from 1 ms to one day", &given));
            }
        }
        if self.max_backoff < self.min_backoff {
            let given = format!("{} ms", self.max_backoff.as_secs_f64() * 1000.0);
            return Err(range_error(
                "maxBackoff",
                "at least influx.minBackoff",
                &given,
            ));
        }
        Ok(())
    }

    /// The URL without a trailing `/`, checked.
    fn base_url(&self) -> Result<&str, PushError> {
        let url = self.url.trim_end_matches('/');
        let quoted = quote(&Json::from(self.url.as_str()));
        let bad = |why: &str| range_error("url", why, &quoted);
        let uri: Uri = url.parse().map_err(|_| bad("an http:// URL"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => {
                return Err(bad(
                    "an http:// URL (https is not supported: this build has no TLS)",
                ))
            }
            _ => return Err(bad("an http:// URL")),
        }
        let authority = uri
            .authority()
            .ok_or_else(|| bad("an http:// URL with a host"))?;
        if authority.host().is_empty() {
            return Err(bad("an http:// URL with a host"));
        }
        if authority.as_str().contains('@') {
            return Err(bad(
                "a URL without credentials (give influx.username and influx.password)",
            ));
        }
        if uri.query().is_some() || url.contains('#') {
            return Err(bad("a URL without a query or fragment"));
        }
        Ok(url)
    }
}

/// What a pusher did so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushStats {
    /// Batches and points InfluxDB took (2xx).
    pub pushed_batches: u64,
    pub pushed_points: u64,
    /// Batches and points dropped: the queue was full, InfluxDB refused them (4xx), or
    /// [`Pusher::stop`]'s deadline passed.
    pub dropped_batches: u64,
    pub dropped_points: u64,
    /// Requests made after a failed one, while backing off (normally the same batch again; the
    /// next one if the queue dropped it meanwhile).
    pub retries: u64,
    /// Requests that failed (connection errors, timeouts, non-2xx answers).
    pub failures: u64,
    /// Bytes queued now (the batch being sent included), never above the bound.
    pub queued_bytes: u64,
    /// The last failure, if any: `HTTP 404: {"error":"database not found: \"x\""}`, or the
    /// connection error.
    pub last_error: Option<String>,
}

struct Batch {
    body: Arc<Vec<u8>>,
    points: u64,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Batch>,
    queued_bytes: usize,
    /// The first batch is being sent (it is not dropped to make room).
    sending: bool,
    /// Set by [`Pusher::stop`]: send until then, then drop what is left.
    deadline: Option<Instant>,
    stats: PushStats,
}

impl State {
    fn drop_batch(&mut self, index: usize) {
        if let Some(batch) = self.queue.remove(index) {
            self.queued_bytes -= batch.body.len();
            self.stats.dropped_batches += 1;
            self.stats.dropped_points += batch.points;
        }
    }
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    /// No more deliveries are taken.
    closed: AtomicBool,
    lines: LineOptions,
    max_queue_bytes: usize,
    batch_points: usize,
    batch_bytes: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Formats a delivery into batches and queues them (the subscriber).
    fn take(&self, store: &Store, delivery: &Delivery) {
        if self.closed.load(Ordering::Relaxed) {
            return;
        }
        let mut batches = Vec::new();
        let mut points = 0;
        let mut out = Vec::new();
        influx::write(store, delivery, &self.lines, &mut out, |out| {
            points += 1;
            if points >= self.batch_points || out.len() >= self.batch_bytes {
                let body = Arc::new(std::mem::take(out));
                batches.push(Batch {
                    body,
                    points: points as u64,
                });
                points = 0;
            }
        });
        if points > 0 {
            batches.push(Batch {
                body: Arc::new(out),
                points: points as u64,
            });
        }
        if batches.is_empty() {
            return;
        }
        let mut state = self.lock();
        for batch in batches {
            // One line longer than the whole queue (a huge `set` text) cannot be queued: the
            // queue stays within its bound, the batch being sent included.
            if batch.body.len() > self.max_queue_bytes {
                state.stats.dropped_batches += 1;
                state.stats.dropped_points += batch.points;
                continue;
            }
            state.queued_bytes += batch.body.len();
            state.queue.push_back(batch);
            // Make room: the oldest batches that are not being sent go first (the new one
            // last, when it is all there is besides the one being sent).
            while state.queued_bytes > self.max_queue_bytes {
                let oldest = usize::from(state.sending);
                if oldest >= state.queue.len() {
                    break;
                }
                state.drop_batch(oldest);
            }
        }
        drop(state);
        self.wake.notify_one();
    }
}

/// See the module documentation.
pub struct Pusher {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Pusher {
    /// Checks the options and starts the pusher's thread (nothing is sent before the first
    /// delivery; an unreachable InfluxDB is not an error here, it is retried).
    pub fn start(options: PushOptions) -> Result<Pusher, PushError> {
        options.check()?;
        let shared = Arc::new(Shared {
            state: Mutex::default(),
            wake: Condvar::new(),
            closed: AtomicBool::new(false),
            lines: options.lines.clone(),
            max_queue_bytes: options.max_queue_bytes,
            batch_points: options.batch_points,
            batch_bytes: (options.max_queue_bytes / 4).min(MAX_BATCH_BYTES),
        });
        let sender = Sender::new(&options)?;
        let thread = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("panoptic-influx".into())
                .spawn(move || sender.run(&shared))
                .map_err(|e| PushError::Thread(e.to_string()))?
        };
        Ok(Pusher {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// A subscriber for [`super::Exporter::subscribe`]: formats each delivery and queues it
    /// (never waits for the network).
    pub fn subscriber(&self) -> Subscriber {
        let shared = self.shared.clone();
        Box::new(move |store, delivery| shared.take(store, delivery))
    }

    /// What the pusher did so far.
    pub fn stats(&self) -> PushStats {
        let state = self.shared.lock();
        PushStats {
            queued_bytes: state.queued_bytes as u64,
            ..state.stats.clone()
        }
    }

    /// Stops taking deliveries, keeps sending what is queued for at most `flush`, then drops
    /// (and counts) what is left and ends the thread; returns the final stats. Waits for the
    /// thread: at most `flush`, plus a moment for a request under way to be cut short. Calling
    /// it again returns the stats at once.
    pub fn stop(&self, flush: Duration) -> PushStats {
        self.close(flush);
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
        self.stats()
    }

    /// Whether the pusher's thread has ended (after [`Pusher::close`]: it sent or dropped
    /// everything).
    pub fn finished(&self) -> bool {
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner());
        thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Stops taking deliveries and leaves the thread `flush` to send what is queued, then drop
    /// (and count) the rest; returns at once (see [`Pusher::stop`] to wait).
    pub fn close(&self, flush: Duration) {
        self.shared.closed.store(true, Ordering::Relaxed);
        let deadline = Instant::now() + flush;
        self.shared.lock().deadline.get_or_insert(deadline);
        self.shared.wake.notify_all();
    }
}

impl Drop for Pusher {
    /// Like [`Pusher::stop`] with no time to flush, without waiting for the thread (it ends
    /// after the request under way, if any).
    fn drop(&mut self) {
        self.close(Duration::ZERO);
    }
}

/// How one attempt went.
enum Outcome {
    Sent,
    /// Not to be sent again.
    Refused(String),
    /// To be sent again, not before the given delay when the server asked for one.
    Retry(String, Option<Duration>),
}

/// The pusher thread's HTTP side.
struct Sender {
    agent: ureq::Agent,
    write_url: String,
    query: Vec<(&'static str, String)>,
    authorization: Option<String>,
    timeout: Duration,
    min_backoff: Duration,
    max_backoff: Duration,
}

impl Sender {
    fn new(options: &PushOptions) -> Result<Sender, PushError> {
        let write_url = format!("{}/write", options.base_url()?);
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .proxy(None)
            .timeout_global(Some(options.timeout))
            .timeout_connect(Some(options.timeout))
            .user_agent("panoptic")
            .build();
        let mut query = vec![
            ("db", options.db.clone()),
            ("precision", options.lines.precision.as_query().to_string()),
        ];
        if let Some(rp) = &options.retention_policy {
            query.push(("rp", rp.clone()));
        }
        let authorization = match (&options.username, &options.password) {
            (Some(user), Some(password)) => {
                let credentials = format!("{user}:{password}");
                let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
                Some(format!("Basic {encoded}"))
            }
            _ => None,
        };
        Ok(Sender {
            agent: config.into(),
            write_url,
            query,
            authorization,
            timeout: options.timeout,
            min_backoff: options.min_backoff,
            max_backoff: options.max_backoff,
        })
    }

    /// The thread: sends the first batch until the queue is empty and the pusher stopped.
    fn run(&self, shared: &Shared) {
        let mut backoff: Option<Duration> = None;
        loop {
            let (body, deadline) = {
                let mut state = shared.lock();
                loop {
                    if let Some(deadline) = state.deadline {
                        if state.queue.is_empty() || Instant::now() >= deadline {
                            while !state.queue.is_empty() {
                                state.drop_batch(0);
                            }
                            return;
                        }
                    }
                    if let Some(batch) = state.queue.front() {
                        let body = batch.body.clone();
                        state.sending = true;
                        if backoff.is_some() {
                            state.stats.retries += 1;
                        }
                        break (body, state.deadline);
                    }
                    state = shared.wake.wait(state).unwrap_or_else(|e| e.into_inner());
                }
            };
            let outcome = self.send(&body, deadline);
            let mut state = shared.lock();
            state.sending = false;
            let wait = match outcome {
                Outcome::Sent => {
                    if let Some(batch) = state.queue.pop_front() {
                        state.queued_bytes -= batch.body.len();
                        state.stats.pushed_batches += 1;
                        state.stats.pushed_points += batch.points;
                    }
                    backoff = None;
                    continue;
                }
                Outcome::Refused(error) => {
                    state.stats.failures += 1;
                    state.stats.last_error = Some(error);
                    state.drop_batch(0);
                    // The server answers: the next batch goes at once.
                    backoff = None;
                    continue;
                }
                Outcome::Retry(error, asked) => {
                    state.stats.failures += 1;
                    state.stats.last_error = Some(error);
                    let next = match backoff {
                        None => self.min_backoff,
                        Some(b) => (b * 2).min(self.max_backoff),
                    };
                    backoff = Some(next);
                    let half = next / 2;
                    let jitter = half.mul_f64(fastrand::f64());
                    (half + jitter).max(asked.unwrap_or_default().min(self.max_backoff))
                }
            };
            // Back off; a stop() shortens the wait to its deadline.
            let until = Instant::now() + wait;
            loop {
                let end = state.deadline.map_or(until, |d| d.min(until));
                let now = Instant::now();
                if now >= end {
                    break;
                }
                state = (shared.wake.wait_timeout(state, end - now))
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        }
    }

    /// One request (its time cut to the stop deadline, if any).
    fn send(&self, body: &[u8], deadline: Option<Instant>) -> Outcome {
        let mut request = self.agent.post(&self.write_url);
        for (key, value) in &self.query {
            request = request.query(key, value);
        }
        if let Some(authorization) = &self.authorization {
            request = request.header("Authorization", authorization);
        }
        request = request.header("Content-Type", "text/plain; charset=utf-8");
        let result = match deadline {
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                let budget = left.min(self.timeout).max(Duration::from_millis(1));
                (request.config().timeout_global(Some(budget)).build()).send(body)
            }
            None => request.send(body),
        };
        let mut response = match result {
            Ok(response) => response,
            // Settings InfluxDB cannot change: sending again would fail again.
            Err(e @ (ureq::Error::BadUri(_) | ureq::Error::Http(_))) => {
                return Outcome::Refused(e.to_string())
            }
            Err(e) => return Outcome::Retry(e.to_string(), None),
        };
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            // Read the (usually empty) body so the connection can be used again.
            let _ = response
                .body_mut()
                .with_config()
                .limit(1 << 16)
                .read_to_vec();
            return Outcome::Sent;
        }
        let retry_after = (response.headers().get("retry-after"))
            .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let text = (response.body_mut().with_config().limit(ERROR_BODY_BYTES))
            .read_to_string()
            .unwrap_or_default();
        let error = format!("HTTP {status}: {}", text.trim());
        if status == 429 || status >= 500 {
            Outcome::Retry(error, retry_after)
        } else {
            Outcome::Refused(error)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::view::fixture::{counter, key, Fixture};
    use crate::snapshot::Value;
    use serde_json::json;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::sync::mpsc;

    /// A request as the test server saw it: the request line, the headers (lower-case names)
    /// and the body.
    struct Request {
        line: String,
        headers: Vec<(String, String)>,
        body: String,
    }

    /// A real HTTP server on loopback answering each request with the next of `answers`
    /// (status, extra headers, body), then 204s; one connection per request.
    fn server(
        answers: Vec<(u16, &'static str, &'static str)>,
    ) -> (String, mpsc::Receiver<Request>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (send, receive) = mpsc::channel();
        std::thread::spawn(move || {
            let mut answers = answers.into_iter();
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let mut headers = Vec::new();
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).is_err() || header.trim().is_empty() {
                        break;
                    }
                    if let Some((name, value)) = header.split_once(':') {
                        headers.push((name.trim().to_lowercase(), value.trim().to_string()));
                    }
                }
                let length = (headers.iter())
                    .find(|(name, _)| name == "content-length")
                    .map_or(0, |(_, v)| v.parse().unwrap());
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                // Recorded before it is answered: a push the pusher counts is already here.
                let body = String::from_utf8(body).unwrap();
                let line = line.trim().to_string();
                if send
                    .send(Request {
                        line,
                        headers,
                        body,
                    })
                    .is_err()
                {
                    return;
                }
                let (status, extra, text) = answers.next().unwrap_or((204, "", ""));
                let answer = format!(
                    "HTTP/1.1 {status} X\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{text}",
                    text.len()
                );
                let _ = reader.get_mut().write_all(answer.as_bytes());
            }
        });
        (url, receive)
    }

    fn options(url: &str) -> PushOptions {
        PushOptions {
            url: url.into(),
            db: "metrics".into(),
            min_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(20),
            timeout: Duration::from_secs(5),
            ..PushOptions::default()
        }
    }

    /// Waits (10 s at most) until the pusher's stats satisfy `done`.
    fn until(pusher: &Pusher, done: impl Fn(&PushStats) -> bool) -> PushStats {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let stats = pusher.stats();
            if done(&stats) {
                return stats;
            }
            assert!(Instant::now() < deadline, "timed out: {stats:?}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn one_delivery(pusher: &Pusher, f: &mut Fixture, ids: &[&str]) {
        let series: Vec<_> = (ids.iter())
            .map(|id| (key("inc", &["http"], id), counter(1.0)))
            .collect();
        let d = f.deliver(&series, &[]);
        (pusher.subscriber())(&f.store, &d);
    }

    #[test]
    fn pushes_batches_with_the_query_and_credentials() {
        let (url, requests) = server(vec![]);
        let mut o = options(&format!("{url}/base/"));
        o.username = Some("me".into());
        o.password = Some("secret".into());
        o.retention_policy = Some("a week".into());
        o.batch_points = 2;
        let pusher = Pusher::start(o).unwrap();
        let mut f = Fixture::new(false);
        one_delivery(&pusher, &mut f, &["a", "b", "c"]);
        let stats = until(&pusher, |s| s.pushed_batches == 2);
        assert_eq!(
            (stats.pushed_points, stats.failures, stats.queued_bytes),
            (3, 0, 0)
        );
        let first = requests.recv().unwrap();
        assert_eq!(
            first.line,
            "POST /base/write?db=metrics&precision=ms&rp=a%20week HTTP/1.1"
        );
        let header = |name: &str| {
            (first.headers.iter())
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        // "me:secret" in base64.
        assert_eq!(
            header("authorization").as_deref(),
            Some("Basic bWU6c2VjcmV0")
        );
        assert_eq!(
            first.body,
            "http.a,host=box increase=1.0,rate=1.0,total=1.0,calls=1i 1700000001000\n\
             http.b,host=box increase=1.0,rate=1.0,total=1.0,calls=1i 1700000001000\n"
        );
        let second = requests.recv().unwrap();
        assert!(second.body.starts_with("http.c,"), "{}", second.body);
        assert_eq!(pusher.stop(Duration::from_secs(1)), stats);
    }

    #[test]
    fn refusals_are_dropped_and_server_errors_retried() {
        let (url, requests) = server(vec![
            (404, "", r#"{"error":"database not found: \"metrics\""}"#),
            (503, "", "busy"),
            (429, "Retry-After: 0\r\n", "slow down"),
        ]);
        let pusher = Pusher::start(options(&url)).unwrap();
        let mut f = Fixture::new(false);
        one_delivery(&pusher, &mut f, &["a"]);
        let stats = until(&pusher, |s| s.dropped_batches == 1);
        assert_eq!(
            stats.last_error.as_deref(),
            Some(r#"HTTP 404: {"error":"database not found: \"metrics\""}"#)
        );
        assert_eq!(
            (stats.failures, stats.retries, stats.pushed_batches),
            (1, 0, 0)
        );
        // The next one fails twice, then goes through.
        one_delivery(&pusher, &mut f, &["b"]);
        let stats = until(&pusher, |s| s.pushed_batches == 1);
        assert_eq!((stats.failures, stats.retries), (3, 2));
        assert_eq!(stats.last_error.as_deref(), Some("HTTP 429: slow down"));
        let bodies: Vec<String> = requests.try_iter().map(|r| r.body).collect();
        assert_eq!(bodies.len(), 4);
        assert!(bodies[0].starts_with("http.a,"));
        assert!(bodies[1..].iter().all(|b| b.starts_with("http.b,")));
        pusher.stop(Duration::ZERO);
    }

    #[test]
    fn the_queue_stays_bounded_while_the_server_is_down() {
        // A port nobody listens on (bound, then closed).
        let url = {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}", listener.local_addr().unwrap())
        };
        let mut o = options(&url);
        o.max_queue_bytes = 2048;
        let pusher = Pusher::start(o).unwrap();
        let mut f = Fixture::new(false);
        let ids: Vec<String> = (0..8).map(|i| format!("series{i}")).collect();
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        let mut delivered = 0;
        for _ in 0..20 {
            one_delivery(&pusher, &mut f, &ids);
            delivered += ids.len() as u64;
            let stats = pusher.stats();
            assert!(stats.queued_bytes <= 2048, "{stats:?}");
        }
        let stats = until(&pusher, |s| s.failures >= 2);
        assert!(stats.dropped_points > 0, "{stats:?}");
        assert!(stats.retries >= 1, "{stats:?}");
        assert!(stats.last_error.is_some());
        // Stopping drops (and counts) what is left: every point is accounted for.
        let last = pusher.stop(Duration::from_millis(50));
        assert_eq!(last.queued_bytes, 0);
        assert_eq!(last.pushed_points, 0);
        assert_eq!(last.dropped_points, delivered);
        // A stopped pusher takes nothing more.
        one_delivery(&pusher, &mut f, &ids);
        assert_eq!(pusher.stats(), last);
    }

    #[test]
    fn a_batch_larger_than_the_queue_is_dropped() {
        let (url, requests) = server(vec![]);
        let mut o = options(&url);
        o.max_queue_bytes = 1024;
        let pusher = Pusher::start(o).unwrap();
        let mut f = Fixture::new(false);
        let text = Value::Set {
            json: format!("\"{}\"", "x".repeat(2000)),
            at: 0.0,
        };
        let d = f.deliver(&[(key("set", &[], "big"), text)], &[]);
        (pusher.subscriber())(&f.store, &d);
        let stats = pusher.stats();
        assert_eq!((stats.dropped_batches, stats.dropped_points), (1, 1));
        assert_eq!(stats.queued_bytes, 0);
        // Smaller ones still go.
        one_delivery(&pusher, &mut f, &["a"]);
        until(&pusher, |s| s.pushed_points == 1);
        assert_eq!(requests.try_iter().count(), 1);
        pusher.stop(Duration::ZERO);
    }

    #[test]
    fn stop_flushes_what_is_queued() {
        let (url, requests) = server(vec![]);
        let mut o = options(&url);
        o.batch_points = 1;
        let pusher = Pusher::start(o).unwrap();
        let mut f = Fixture::new(false);
        one_delivery(&pusher, &mut f, &["a", "b", "c", "d"]);
        let stats = pusher.stop(Duration::from_secs(10));
        assert_eq!((stats.pushed_batches, stats.dropped_points), (4, 0));
        assert_eq!(requests.try_iter().count(), 4);
    }

    #[test]
    fn options_are_read_and_checked() {
        let options = PushOptions::from_json(&json!({
            "url": "http://127.0.0.1:8086/",
            "db": "metrics",
            "username": "u",
            "password": "p",
            "retentionPolicy": "week",
            "precision": "s",
            "prefix": "app.",
            "perProcess": true,
            "tags": { "env": "prod" },
            "maxQueueBytes": 4096,
            "batchPoints": 10,
            "timeout": 500,
            "minBackoff": 5,
            "maxBackoff": 50,
            "filter": null,
        }))
        .unwrap();
        assert_eq!(options.base_url().unwrap(), "http://127.0.0.1:8086");
        assert_eq!(options.lines.precision, Precision::Seconds);
        assert_eq!(options.lines.tags, [("env".into(), "prod".into())]);
        assert!(options.lines.per_process);
        assert_eq!((options.max_queue_bytes, options.batch_points), (4096, 10));
        assert_eq!(options.timeout, Duration::from_millis(500));
        assert_eq!(options.max_backoff, Duration::from_millis(50));
        let base = json!({ "url": "http://h:1/influx", "db": "d" });
        assert!(PushOptions::from_json(&base).is_ok());
    }

    #[test]
    fn bad_options_name_the_field_and_the_value() {
        let error = |extra: Json| {
            let mut value = json!({ "url": "http://h:1", "db": "d" });
            let map = value.as_object_mut().unwrap();
            for (k, v) in extra.as_object().unwrap() {
                if v == "DELETE" {
                    map.remove(k);
                } else {
                    map.insert(k.clone(), v.clone());
                }
            }
            PushOptions::from_json(&value).unwrap_err()
        };
        let range = |field: &str, message: &str| PushError::Range {
            field: format!("influx.{field}"),
            message: message.into(),
        };
        let type_ = |field: &str, message: &str| PushError::Type {
            field: format!("influx.{field}"),
            message: message.into(),
        };
        assert_eq!(
            PushOptions::from_json(&json!("http://h")).unwrap_err(),
            PushError::Type {
                field: "influx".into(),
                message: "influx must be an object, got \"http://h\"".into()
            }
        );
        assert_eq!(
            error(json!({ "url": "https://h:1" })),
            range(
                "url",
                "influx.url must be an http:// URL (https is not supported: this build has no TLS), got \"https://h:1\""
            )
        );
        assert_eq!(
            error(json!({ "url": "ftp://h" })),
            range("url", "influx.url must be an http:// URL, got \"ftp://h\"")
        );
        assert_eq!(
            error(json!({ "url": "not a url" })),
            range(
                "url",
                "influx.url must be an http:// URL, got \"not a url\""
            )
        );
        assert_eq!(
            error(json!({ "url": "http://u:p@h" })),
            range(
                "url",
                "influx.url must be a URL without credentials (give influx.username and influx.password), got \"http://u:p@h\""
            )
        );
        assert_eq!(
            error(json!({ "url": "http://h/?db=x" })),
            range(
                "url",
                "influx.url must be a URL without a query or fragment, got \"http://h/?db=x\""
            )
        );
        assert_eq!(
            error(json!({ "url": 8086 })),
            type_("url", "influx.url must be a string, got 8086")
        );
        assert_eq!(
            error(json!({ "url": "DELETE" })),
            range("url", "influx.url must be an http:// URL, got \"\"")
        );
        assert_eq!(
            error(json!({ "db": "" })),
            range(
                "db",
                "influx.db must be a database name, got an empty string"
            )
        );
        assert_eq!(
            error(json!({ "username": "u" })),
            range(
                "password",
                "influx.password must be given with influx.username, got nothing"
            )
        );
        assert_eq!(
            error(json!({ "precision": "m" })),
            range(
                "precision",
                "influx.precision must be one of 'ns', 'us', 'ms', 's', got \"m\""
            )
        );
        assert_eq!(
            error(json!({ "perProcess": 1 })),
            type_("perProcess", "influx.perProcess must be a boolean, got 1")
        );
        assert_eq!(
            error(json!({ "tags": { "a": 1 } })),
            type_("tags.a", "influx.tags.a must be a string, got 1")
        );
        assert_eq!(
            error(json!({ "tags": { "time": "x" } })),
            range(
                "tags.time",
                "influx.tags.time must be a tag key other than '', 'time' and 'worker', got time"
            )
        );
        assert_eq!(
            error(json!({ "maxQueueBytes": 100 })),
            range(
                "maxQueueBytes",
                "influx.maxQueueBytes must be a number of bytes from 1024, got 100"
            )
        );
        assert_eq!(
            error(json!({ "batchPoints": 1.5 })),
            range(
                "batchPoints",
                "influx.batchPoints must be a whole number from 1 to 1e9, got 1.5"
            )
        );
        assert_eq!(
            error(json!({ "timeout": -1 })),
            range(
                "timeout",
                "influx.timeout must be a positive number of ms, got -1"
            )
        );
        assert_eq!(
            error(json!({ "timeout": "1s" })),
            type_("timeout", "influx.timeout must be a number, got \"1s\"")
        );
        assert_eq!(
            error(json!({ "minBackoff": 100, "maxBackoff": 10 })),
            range(
                "maxBackoff",
                "influx.maxBackoff must be at least influx.minBackoff, got 10 ms"
            )
        );
        let PushError::Type { message, .. } = error(json!({ "database": "d" })) else {
            panic!()
        };
        assert!(message.starts_with("influx.database is not an option (known: url, db,"));
    }
}
