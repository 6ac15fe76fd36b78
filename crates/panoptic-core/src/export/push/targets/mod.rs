//! What a pusher pushes to. A [`Target`] only turns a delivery into batches of request bodies
//! and says where to send them (the URL and the headers, constant for the pusher's life); the
//! rest (the bounded queue, the thread, the requests, retries with backoff, drops, stats, the
//! flush on stop) is the push module's, the same for every target.
//!
//! Adding a target: a file here with its options (read from the JS option, checked with
//! [`super::QueueOptions`] for the shared fields and `super::options::range_error` for its
//! own), a type implementing [`Target`], and a `Pusher::<name>(options)` constructor calling
//! [`super::Pusher::start`].

use std::sync::Arc;

use crate::export::{Delivery, Store};

pub mod influx;
pub mod otlp;
pub mod remote_write;

/// One request body and how many points it carries (the unit of the stats: lines for
/// InfluxDB, series for remote write).
pub struct Batch {
    pub body: Arc<Vec<u8>>,
    pub points: u64,
}

impl Batch {
    pub fn new(body: Vec<u8>, points: u64) -> Batch {
        Batch {
            body: Arc::new(body),
            points,
        }
    }
}

/// The size of a batch: at most `points` points, and about `bytes` bytes at most (a target
/// cuts a batch when it reaches it; one point may go beyond).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub points: usize,
    pub bytes: usize,
}

/// Where every request of a pusher goes.
#[derive(Clone, Debug, Default)]
pub struct Request {
    /// The URL to `POST` to, without the query.
    pub url: String,
    /// Query parameters, encoded when sent.
    pub query: Vec<(String, String)>,
    /// Headers of every request (`Content-Type`, `Content-Encoding`, `Authorization`, ...).
    pub headers: Vec<(String, String)>,
}

/// See the module documentation.
pub trait Target: Send + Sync + 'static {
    /// The JS option (`influx`, `remoteWrite`): errors and the thread's name use it.
    fn option(&self) -> &'static str;
    /// The server's name in messages (`InfluxDB`, `the remote write receiver`).
    fn server(&self) -> &'static str;
    /// Where every request goes.
    fn request(&self) -> Request;
    /// Appends the delivery's batches to `out` (nothing when there is nothing to send). Runs
    /// on the exporter's thread: it must not block.
    fn encode(&self, store: &Store, delivery: &Delivery, limits: Limits, out: &mut Vec<Batch>);
    /// Whether a batch answered with this status (not 2xx) is sent again: by default 429 and
    /// every 5xx; any other is dropped and counted.
    fn retry(&self, status: u16) -> bool {
        status == 429 || status >= 500
    }
    /// What a 2xx answer's body says the server did not take: the points it rejected and its
    /// message (None, the default: everything was taken).
    fn rejected(&self, _answer: &[u8]) -> Option<(u64, String)> {
        None
    }
}
