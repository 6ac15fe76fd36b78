//! The `influx` option: its defaults, and the checks that make a [`PushOptions`] valid.

use std::fmt;
use std::time::Duration;

use serde_json::Value as Json;
use ureq::http::Uri;

use crate::export::influx::{LineOptions, Precision};

/// The default bound of the queue: 8 MiB.
pub const DEFAULT_MAX_QUEUE_BYTES: usize = 8 << 20;
/// The default batch size in points (InfluxDB's documentation advises 5000).
pub const DEFAULT_BATCH_POINTS: usize = 5000;

/// Where and how to push. [`PushOptions::new`] reads the JS option `influx`;
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
    /// An option out of range (a `RangeError`); `field` is spelt as in JS (`influx.url`).
    Range { field: String, message: String },
    /// The thread could not be started.
    Thread(String),
}

impl fmt::Display for PushError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PushError::Range { message, .. } => f.write_str(message),
            PushError::Thread(e) => write!(f, "the InfluxDB pusher's thread did not start: {e}"),
        }
    }
}

impl std::error::Error for PushError {}

/// The `influx` option as JS gives it, its types checked by the JS side (lib/export.js): every
/// field optional, numbers as given (ms for times), ranges checked by [`PushOptions::new`].
#[derive(Clone, Debug, Default)]
pub struct PushSpec {
    pub url: Option<String>,
    pub db: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub retention_policy: Option<String>,
    /// `'ns'`, `'us'`, `'ms'` or `'s'`.
    pub precision: Option<String>,
    pub prefix: Option<String>,
    pub per_process: Option<bool>,
    pub tags: Vec<(String, String)>,
    pub max_queue_bytes: Option<f64>,
    pub batch_points: Option<f64>,
    pub timeout: Option<f64>,
    pub min_backoff: Option<f64>,
    pub max_backoff: Option<f64>,
}

/// A given text as errors quote it (JSON, cut at 100 characters).
fn quote(text: &str) -> String {
    let text = Json::from(text).to_string();
    match text.char_indices().nth(100) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text,
    }
}

fn range_error(field: &str, expected: &str, value: &dyn fmt::Display) -> PushError {
    let field = format!("influx.{field}");
    let message = format!("{field} must be {expected}, got {value}");
    PushError::Range { field, message }
}

impl PushOptions {
    /// Options from the JS option `influx` (`{ url, db, username, password, retentionPolicy,
    /// precision, prefix, perProcess, tags, maxQueueBytes, batchPoints, timeout, minBackoff,
    /// maxBackoff }`, times in ms; absent fields take their defaults), [`PushOptions::check`]ed.
    pub fn new(spec: PushSpec) -> Result<PushOptions, PushError> {
        let d = PushOptions::default();
        // A number > 0 and finite (NaN and infinities never reach here from JSON-free JS, but
        // the core trusts no caller).
        let positive = |name: &str, x: f64, what: &str| {
            if x.is_finite() && x > 0.0 {
                Ok(x)
            } else {
                Err(range_error(name, what, &x))
            }
        };
        let ms = |name: &str, x: Option<f64>, default: Duration| match x {
            None => Ok(default),
            Some(x) => positive(name, x, "a positive number of ms")
                .map(|x| Duration::from_secs_f64(x.min(1e15) / 1000.0)),
        };
        let precision = match spec.precision {
            None => d.lines.precision,
            Some(given) => Precision::parse(&given).ok_or_else(|| {
                range_error("precision", "one of 'ns', 'us', 'ms', 's'", &quote(&given))
            })?,
        };
        let max_queue_bytes = match spec.max_queue_bytes {
            None => d.max_queue_bytes,
            Some(x) => {
                let x = positive("maxQueueBytes", x, "a number of bytes from 1024")?;
                if x < 1024.0 || x > usize::MAX as f64 {
                    return Err(range_error(
                        "maxQueueBytes",
                        "a number of bytes from 1024",
                        &x,
                    ));
                }
                x as usize
            }
        };
        let batch_points = match spec.batch_points {
            None => d.batch_points,
            Some(x) => {
                let x = positive("batchPoints", x, "a whole number from 1")?;
                if x.fract() != 0.0 || x > 1e9 {
                    return Err(range_error(
                        "batchPoints",
                        "a whole number from 1 to 1e9",
                        &x,
                    ));
                }
                x as usize
            }
        };
        let options = PushOptions {
            url: spec.url.unwrap_or_default(),
            db: spec.db.unwrap_or_default(),
            username: spec.username,
            password: spec.password,
            retention_policy: spec.retention_policy,
            lines: LineOptions {
                precision,
                prefix: spec.prefix.unwrap_or_default(),
                per_process: spec.per_process.unwrap_or(d.lines.per_process),
                tags: spec.tags,
                keep: None,
            },
            max_queue_bytes,
            batch_points,
            timeout: ms("timeout", spec.timeout, d.timeout)?,
            min_backoff: ms("minBackoff", spec.min_backoff, d.min_backoff)?,
            max_backoff: ms("maxBackoff", spec.max_backoff, d.max_backoff)?,
        };
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
    pub(super) fn base_url(&self) -> Result<&str, PushError> {
        let url = self.url.trim_end_matches('/');
        let quoted = quote(&self.url);
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
