//! The InfluxDB 1.x target (`influx`): `POST /write?db=..&precision=..` with the delivery's
//! line protocol ([`crate::export::influx`]), cut into batches of at most
//! [`super::Limits::points`] lines and about [`super::Limits::bytes`] bytes.

use base64::Engine;

use super::{Batch, Limits, Request, Target};
use crate::export::influx::{self, LineOptions, Precision};
use crate::export::push::options::{check_url, quote, range_error};
use crate::export::push::{PushError, Pusher, QueueOptions, QueueSpec};
use crate::export::{Delivery, Store};

const OPTION: &str = "influx";

/// Where and how to push to InfluxDB. [`InfluxOptions::new`] reads the JS option `influx`;
/// [`InfluxOptions::check`] validates.
#[derive(Clone, Debug, Default)]
pub struct InfluxOptions {
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
    /// The queue and retries.
    pub queue: QueueOptions,
}

/// The `influx` option as JS gives it, its types checked by the JS side (lib/export.js): every
/// field optional, numbers as given (ms for times), ranges checked by [`InfluxOptions::new`].
#[derive(Clone, Debug, Default)]
pub struct InfluxSpec {
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
    pub queue: QueueSpec,
}

impl InfluxOptions {
    /// Options from the JS option `influx` (`{ url, db, username, password, retentionPolicy,
    /// precision, prefix, perProcess, tags, maxQueueBytes, batchPoints, timeout, minBackoff,
    /// maxBackoff }`, times in ms; absent fields take their defaults), [`InfluxOptions::check`]ed.
    pub fn new(spec: InfluxSpec) -> Result<InfluxOptions, PushError> {
        let d = LineOptions::default();
        let precision = match spec.precision {
            None => d.precision,
            Some(given) => Precision::parse(&given).ok_or_else(|| {
                let expected = "one of 'ns', 'us', 'ms', 's'";
                range_error(OPTION, "precision", expected, &quote(&given))
            })?,
        };
        let options = InfluxOptions {
            url: spec.url.unwrap_or_default(),
            db: spec.db.unwrap_or_default(),
            username: spec.username,
            password: spec.password,
            retention_policy: spec.retention_policy,
            lines: LineOptions {
                precision,
                prefix: spec.prefix.unwrap_or_default(),
                per_process: spec.per_process.unwrap_or(d.per_process),
                tags: spec.tags,
                keep: None,
            },
            queue: QueueOptions::new(OPTION, &spec.queue)?,
        };
        options.check()?;
        Ok(options)
    }

    /// Validates the options: an `http://` URL with a host (no query, no credentials in it),
    /// a database, both or neither of username and password, tag keys InfluxDB takes (and
    /// not `worker`, the per-process tag), bounds and times within range.
    pub fn check(&self) -> Result<(), PushError> {
        self.base_url()?;
        if self.db.is_empty() {
            return Err(range_error(
                OPTION,
                "db",
                "a database name",
                &"an empty string",
            ));
        }
        if self.username.is_some() != self.password.is_some() {
            let (given, missing) = match self.username {
                Some(_) => ("username", "password"),
                None => ("password", "username"),
            };
            let expected = format!("given with influx.{given}");
            return Err(range_error(OPTION, missing, &expected, &"nothing"));
        }
        if self.retention_policy.as_deref() == Some("") {
            let given = "an empty string";
            return Err(range_error(OPTION, "retentionPolicy", "a name", &given));
        }
        for (k, _) in &self.lines.tags {
            if k.is_empty() || k == "time" || k == "worker" {
                let field = format!("tags.{k}");
                let expected = "a tag key other than '', 'time' and 'worker'";
                return Err(range_error(OPTION, &field, expected, &k));
            }
        }
        self.queue.check(OPTION)
    }

    /// The URL without a trailing `/`, checked.
    pub fn base_url(&self) -> Result<&str, PushError> {
        let credentials = "give influx.username and influx.password";
        check_url(OPTION, &self.url, credentials, false)
    }
}

/// See the module documentation.
pub struct Influx {
    request: Request,
    lines: LineOptions,
}

impl Influx {
    pub fn new(options: &InfluxOptions) -> Result<Influx, PushError> {
        options.check()?;
        let url = format!("{}/write", options.base_url()?);
        let mut query = vec![
            ("db".to_string(), options.db.clone()),
            (
                "precision".into(),
                options.lines.precision.as_query().into(),
            ),
        ];
        if let Some(rp) = &options.retention_policy {
            query.push(("rp".into(), rp.clone()));
        }
        let mut headers = vec![];
        if let (Some(user), Some(password)) = (&options.username, &options.password) {
            let credentials = format!("{user}:{password}");
            let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
            headers.push(("Authorization".into(), format!("Basic {encoded}")));
        }
        headers.push(("Content-Type".into(), "text/plain; charset=utf-8".into()));
        Ok(Influx {
            request: Request {
                url,
                query,
                headers,
            },
            lines: options.lines.clone(),
        })
    }
}

impl Target for Influx {
    fn option(&self) -> &'static str {
        OPTION
    }

    fn server(&self) -> &'static str {
        "InfluxDB"
    }

    fn request(&self) -> Request {
        self.request.clone()
    }

    fn encode(&self, store: &Store, delivery: &Delivery, limits: Limits, out: &mut Vec<Batch>) {
        let mut points = 0;
        let mut body = Vec::new();
        influx::write(store, delivery, &self.lines, &mut body, |body| {
            points += 1;
            if points >= limits.points || body.len() >= limits.bytes {
                out.push(Batch::new(std::mem::take(body), points as u64));
                points = 0;
            }
        });
        if points > 0 {
            out.push(Batch::new(body, points as u64));
        }
    }
}

impl Pusher {
    /// A pusher to InfluxDB (see [`Pusher::start`]).
    pub fn influx(options: InfluxOptions) -> Result<Pusher, PushError> {
        let target = Influx::new(&options)?;
        Pusher::start(target, &options.queue)
    }
}
