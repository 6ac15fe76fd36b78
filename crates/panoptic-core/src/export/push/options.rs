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
pub(super) fn quote(value: &Json) -> String {
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
    pub(super) fn base_url(&self) -> Result<&str, PushError> {
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
