//! What every pusher shares in its options: the queue's bound, the batch size, the request
//! timeout and the backoff ([`QueueOptions`]), the checks of a target's URL, and the errors,
//! which name the field as JS spells it (`influx.timeout`, `remoteWrite.url`).

use std::fmt;
use std::time::Duration;

use serde_json::Value as Json;
use ureq::http::{HeaderName, HeaderValue, Uri};

/// The default bound of the queue: 8 MiB.
pub const DEFAULT_MAX_QUEUE_BYTES: usize = 8 << 20;
/// The default batch size in points (InfluxDB's documentation advises 5000).
pub const DEFAULT_BATCH_POINTS: usize = 5000;

/// Why a pusher could not start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushError {
    /// An option out of range (a `RangeError`); `field` is spelt as in JS (`influx.url`).
    Range { field: String, message: String },
    /// The thread could not be started: the whole message.
    Thread(String),
}

impl fmt::Display for PushError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PushError::Range { message, .. } => f.write_str(message),
            PushError::Thread(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for PushError {}

/// A given text as errors quote it (JSON, cut at 100 characters).
pub(crate) fn quote(text: &str) -> String {
    let text = Json::from(text).to_string();
    match text.char_indices().nth(100) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text,
    }
}

/// `<option>.<field> must be <expected>, got <value>`.
pub(crate) fn range_error(
    option: &str,
    field: &str,
    expected: &str,
    value: &dyn fmt::Display,
) -> PushError {
    let field = format!("{option}.{field}");
    let message = format!("{field} must be {expected}, got {value}");
    PushError::Range { field, message }
}

/// The queue and retry policy of a pusher, the same for every target.
#[derive(Clone, Debug, PartialEq)]
pub struct QueueOptions {
    /// Bound of the queue in bytes (the batch being sent included).
    pub max_queue_bytes: usize,
    /// Points per batch at most (what a point is depends on the target: a line for InfluxDB,
    /// a series for remote write).
    pub batch_points: usize,
    /// How long one request may take in all (connecting, sending, the answer).
    pub timeout: Duration,
    /// The first retry delay, and the largest.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for QueueOptions {
    /// 8 MiB queue, 5000 points per batch, 10 s timeout, backoff 100 ms to 30 s.
    fn default() -> Self {
        QueueOptions {
            max_queue_bytes: DEFAULT_MAX_QUEUE_BYTES,
            batch_points: DEFAULT_BATCH_POINTS,
            timeout: Duration::from_secs(10),
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// The queue options as JS gives them (types checked by lib/export.js; times in ms; absent
/// fields take their defaults).
#[derive(Clone, Debug, Default)]
pub struct QueueSpec {
    pub max_queue_bytes: Option<f64>,
    pub batch_points: Option<f64>,
    pub timeout: Option<f64>,
    pub min_backoff: Option<f64>,
    pub max_backoff: Option<f64>,
}

impl QueueOptions {
    /// Options from the JS fields of `option` (`influx`, `remoteWrite`), [`QueueOptions::check`]ed.
    pub fn new(option: &str, spec: &QueueSpec) -> Result<QueueOptions, PushError> {
        let d = QueueOptions::default();
        // A number > 0 and finite (NaN and infinities never reach here from JSON-free JS, but
        // the core trusts no caller).
        let positive = |name: &str, x: f64, what: &str| {
            if x.is_finite() && x > 0.0 {
                Ok(x)
            } else {
                Err(range_error(option, name, what, &x))
            }
        };
        let ms = |name: &str, x: Option<f64>, default: Duration| match x {
            None => Ok(default),
            Some(x) => positive(name, x, "a positive number of ms")
                .map(|x| Duration::from_secs_f64(x.min(1e15) / 1000.0)),
        };
        let max_queue_bytes = match spec.max_queue_bytes {
            None => d.max_queue_bytes,
            Some(x) => {
                let what = "a number of bytes from 1024";
                let x = positive("maxQueueBytes", x, what)?;
                if x < 1024.0 || x > usize::MAX as f64 {
                    return Err(range_error(option, "maxQueueBytes", what, &x));
                }
                x as usize
            }
        };
        let batch_points = match spec.batch_points {
            None => d.batch_points,
            Some(x) => {
                let x = positive("batchPoints", x, "a whole number from 1")?;
                if x.fract() != 0.0 || x > 1e9 {
                    let what = "a whole number from 1 to 1e9";
                    return Err(range_error(option, "batchPoints", what, &x));
                }
                x as usize
            }
        };
        let options = QueueOptions {
            max_queue_bytes,
            batch_points,
            timeout: ms("timeout", spec.timeout, d.timeout)?,
            min_backoff: ms("minBackoff", spec.min_backoff, d.min_backoff)?,
            max_backoff: ms("maxBackoff", spec.max_backoff, d.max_backoff)?,
        };
        options.check(option)?;
        Ok(options)
    }

    /// Validates the bounds and times (errors name the fields of `option`).
    pub fn check(&self, option: &str) -> Result<(), PushError> {
        if self.max_queue_bytes < 1024 {
            let given = self.max_queue_bytes;
            return Err(range_error(
                option,
                "maxQueueBytes",
                "at least 1024",
                &given,
            ));
        }
        if self.batch_points == 0 {
            return Err(range_error(option, "batchPoints", "at least 1", &0));
        }
        let times = [
            ("timeout", self.timeout),
            ("minBackoff", self.min_backoff),
            ("maxBackoff", self.max_backoff),
        ];
        for (name, t) in times {
            if t < Duration::from_millis(1) || t > Duration::from_secs(86_400) {
                let given = format!("{} ms", t.as_secs_f64() * 1000.0);
                return Err(range_error(option, name, "from 1 ms to one day", &given));
            }
        }
        if self.max_backoff < self.min_backoff {
            let given = format!("{} ms", self.max_backoff.as_secs_f64() * 1000.0);
            let expected = format!("at least {option}.minBackoff");
            return Err(range_error(option, "maxBackoff", &expected, &given));
        }
        Ok(())
    }
}

/// A target's URL without a trailing `/`, checked: `http://` with a host, no credentials (the
/// target's own options carry them: `credentials` says which), no query nor fragment unless
/// `query` (remote write receivers may take one; InfluxDB's is the pusher's own).
pub(crate) fn check_url<'a>(
    option: &str,
    url: &'a str,
    credentials: &str,
    query: bool,
) -> Result<&'a str, PushError> {
    let trimmed = url.trim_end_matches('/');
    let quoted = quote(url);
    let bad = |why: &str| range_error(option, "url", why, &quoted);
    let uri: Uri = trimmed.parse().map_err(|_| bad("an http:// URL"))?;
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
        return Err(bad(&format!("a URL without credentials ({credentials})")));
    }
    if url.contains('#') || (!query && uri.query().is_some()) {
        return Err(bad(if query {
            "a URL without a fragment"
        } else {
            "a URL without a query or fragment"
        }));
    }
    Ok(trimmed)
}

/// Checks the headers given for every request of `option`: names and values HTTP takes, and
/// none of `own` (lower case), the headers the pusher sets itself.
pub(crate) fn check_headers(
    option: &str,
    headers: &[(String, String)],
    own: &[&str],
) -> Result<(), PushError> {
    for (name, value) in headers {
        let field = format!("headers.{name}");
        if HeaderName::from_bytes(name.as_bytes()).is_err() {
            let expected = "an HTTP header name";
            return Err(range_error(option, &field, expected, &quote(name)));
        }
        if own.contains(&name.to_ascii_lowercase().as_str()) {
            let expected = "a header the pusher does not set itself";
            return Err(range_error(option, &field, expected, &quote(name)));
        }
        if HeaderValue::from_str(value).is_err() {
            let expected = "an HTTP header value (no control characters)";
            return Err(range_error(option, &field, expected, &quote(value)));
        }
    }
    Ok(())
}
