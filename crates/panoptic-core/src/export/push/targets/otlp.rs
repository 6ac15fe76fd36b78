//! The OTLP/HTTP metrics target (`otlp`): each delivery (or one every [`OtlpOptions::every`])
//! becomes `ExportMetricsServiceRequest`s ([`crate::export::otlp`] encodes them), `POST`ed to
//! the given URL as `application/x-protobuf` or `application/json`, gzip-compressed when asked
//! (`Content-Encoding: gzip`, the one compression OTLP/HTTP defines).
//!
//! As the OTLP/HTTP specification says: 429, 502, 503 and 504 answers are retried (honouring
//! `Retry-After` in seconds, up to the backoff's cap), every other failure status drops the
//! batch; a 2xx answer's `partial_success` is read and its rejected data points counted
//! ([`crate::export::push::PushStats::rejected_points`]). A point of the stats is a data point.

use std::sync::Mutex;
use std::time::Duration;

use super::{Batch, Limits, Request, Target};
use crate::export::gzip;
use crate::export::otlp::{self, Deltas, Encoding, Protocol, Starts, Temporality};
use crate::export::prometheus;
use crate::export::push::options::{check_headers, check_url, quote, range_error};
use crate::export::push::{PushError, Pusher, QueueOptions, QueueSpec};
use crate::export::{Delivery, Store};

const OPTION: &str = "otlp";

/// The headers the pusher sets itself (not to be given).
const OWN_HEADERS: [&str; 4] = ["content-type", "content-encoding", "content-length", "host"];

/// Where and how to push. [`OtlpOptions::new`] reads the JS option `otlp`.
#[derive(Clone, Default)]
pub struct OtlpOptions {
    /// The URL to post to, with its path (`http://host:4318/v1/metrics`).
    pub url: String,
    /// Headers added to every request (authentication, tenant).
    pub headers: Vec<(String, String)>,
    /// Compress each request with gzip.
    pub gzip: bool,
    /// Push at most one delivery per this time (None: every delivery). Cumulative points lose
    /// nothing but resolution; delta points cover every interval since the last push.
    pub every: Option<Duration>,
    /// Protocol, temporality, prefix, per-process resources, the filter (`batch_points` is
    /// the queue's).
    pub encoding: Encoding,
    pub queue: QueueOptions,
}

impl std::fmt::Debug for OtlpOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Header values may be credentials: their names only.
        let headers: Vec<&String> = self.headers.iter().map(|h| &h.0).collect();
        f.debug_struct("OtlpOptions")
            .field("url", &self.url)
            .field("headers", &headers)
            .field("every", &self.every)
            .field("gzip", &self.gzip)
            .field("encoding", &self.encoding)
            .field("queue", &self.queue)
            .finish()
    }
}

/// The `otlp` option as JS gives it (types checked by lib/export.js; `every` in ms).
#[derive(Clone, Debug, Default)]
pub struct OtlpSpec {
    pub url: Option<String>,
    pub headers: Vec<(String, String)>,
    /// `'http/protobuf'` or `'http/json'`.
    pub protocol: Option<String>,
    /// `'cumulative'` or `'delta'`.
    pub temporality: Option<String>,
    /// `'none'` or `'gzip'`.
    pub compression: Option<String>,
    pub every: Option<f64>,
    pub prefix: Option<String>,
    /// Explicit buckets' bounds (as `serve()`'s `buckets` array) and layouts by metric name.
    pub buckets: Option<Vec<f64>>,
    pub named_buckets: Vec<(String, Vec<f64>)>,
    pub per_process: Option<bool>,
    pub queue: QueueSpec,
}

impl OtlpOptions {
    /// Options from the JS option `otlp`, [`OtlpOptions::check`]ed.
    pub fn new(spec: OtlpSpec) -> Result<OtlpOptions, PushError> {
        let protocol = match spec.protocol {
            None => Protocol::default(),
            Some(given) => Protocol::parse(&given).ok_or_else(|| {
                let expected = "'http/protobuf' or 'http/json'";
                range_error(OPTION, "protocol", expected, &quote(&given))
            })?,
        };
        let temporality = match spec.temporality {
            None => Temporality::default(),
            Some(given) => Temporality::parse(&given).ok_or_else(|| {
                let expected = "'cumulative' or 'delta'";
                range_error(OPTION, "temporality", expected, &quote(&given))
            })?,
        };
        let gzip = match spec.compression.as_deref() {
            None | Some("none") => false,
            Some("gzip") => true,
            Some(given) => {
                let expected = "'none' or 'gzip'";
                return Err(range_error(OPTION, "compression", expected, &quote(given)));
            }
        };
        let every = match spec.every {
            None => None,
            Some(x) if x.is_finite() && x > 0.0 && x <= 86_400_000.0 => {
                Some(Duration::from_secs_f64(x / 1000.0))
            }
            Some(x) => {
                let expected = "a number of ms above 0, at most one day";
                return Err(range_error(OPTION, "every", expected, &x));
            }
        };
        let queue = QueueOptions::new(OPTION, &spec.queue)?;
        let options = OtlpOptions {
            url: spec.url.unwrap_or_default(),
            headers: spec.headers,
            gzip,
            every,
            encoding: Encoding {
                protocol,
                temporality,
                prefix: spec.prefix.unwrap_or_default(),
                buckets: spec.buckets,
                named_buckets: spec.named_buckets,
                per_process: spec.per_process.unwrap_or(false),
                batch_points: queue.batch_points,
                ..Encoding::default()
            },
            queue,
        };
        options.check()?;
        Ok(options)
    }

    /// Validates: an `http://` URL with a host (a query is kept), header names and values HTTP
    /// takes (not those the pusher sets), the bucket layouts (as `serve()`'s), the queue.
    pub fn check(&self) -> Result<(), PushError> {
        check_url(
            OPTION,
            &self.url,
            "give the credentials in otlp.headers",
            true,
        )?;
        check_headers(OPTION, &self.headers, &OWN_HEADERS)?;
        let encoding = &self.encoding;
        let buckets = encoding.buckets.as_deref();
        prometheus::validate_buckets("otlp.buckets", buckets, &encoding.named_buckets).map_err(
            |e| PushError::Range {
                field: e.field().to_string(),
                message: e.to_string(),
            },
        )?;
        self.queue.check(OPTION)
    }
}

/// See the module documentation.
pub struct Otlp {
    request: Request,
    every: Option<f64>,
    gzip: bool,
    encoding: Encoding,
    state: Mutex<State>,
}

/// What the target keeps between deliveries.
#[derive(Default)]
struct State {
    /// The resources' start times (cumulative temporality).
    starts: Starts,
    /// The end of the last interval pushed (for `every`).
    last: Option<f64>,
    /// The intervals since the last push (delta temporality with `every`).
    deltas: Deltas,
}

impl Otlp {
    pub fn new(options: &OtlpOptions) -> Result<Otlp, PushError> {
        options.check()?;
        let mut headers = options.headers.clone();
        let content_type = options.encoding.protocol.content_type();
        headers.push(("Content-Type".into(), content_type.into()));
        if options.gzip {
            headers.push(("Content-Encoding".into(), "gzip".into()));
        }
        Ok(Otlp {
            request: Request {
                url: options.url.clone(),
                query: Vec::new(),
                headers,
            },
            every: options.every.map(|e| e.as_secs_f64() * 1000.0),
            gzip: options.gzip,
            encoding: Encoding {
                batch_points: options.queue.batch_points,
                ..options.encoding.clone()
            },
            state: Mutex::default(),
        })
    }
}

impl Target for Otlp {
    fn option(&self) -> &'static str {
        OPTION
    }

    fn server(&self) -> &'static str {
        "OTLP"
    }

    fn request(&self) -> Request {
        self.request.clone()
    }

    fn encode(&self, store: &Store, delivery: &Delivery, limits: Limits, out: &mut Vec<Batch>) {
        let format = delivery.format();
        let end = format.time_stamp;
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let state = &mut *state;
        let gather = self.every.is_some() && self.encoding.temporality == Temporality::Delta;
        if gather {
            let per_process = self.encoding.per_process && store.keeps_processes();
            state.deltas.add(delivery, per_process);
        }
        if let Some(every) = self.every {
            // Half an interval of slack: intervals end a few ms late or early.
            if (state.last).is_some_and(|last| end - last + format.interval / 2.0 < every) {
                return;
            }
            state.last = Some(end);
        }
        let encoding = Encoding {
            batch_points: limits.points,
            batch_bytes: limits.bytes,
            ..self.encoding.clone()
        };
        let requests = if gather {
            otlp::encode_gathered(store, &mut state.deltas, end, &encoding, &mut state.starts)
        } else {
            otlp::encode(store, delivery, &encoding, &mut state.starts)
        };
        for request in requests {
            let body = if self.gzip {
                gzip::compress(&request.body)
            } else {
                request.body
            };
            out.push(Batch::new(body, request.points));
        }
    }

    /// OTLP/HTTP's retryable statuses.
    fn retry(&self, status: u16) -> bool {
        matches!(status, 429 | 502 | 503 | 504)
    }

    fn rejected(&self, answer: &[u8]) -> Option<(u64, String)> {
        otlp::partial_success(answer, self.encoding.protocol)
    }
}

impl Pusher {
    /// A pusher to an OTLP/HTTP receiver (see [`Pusher::start`]).
    pub fn otlp(options: OtlpOptions) -> Result<Pusher, PushError> {
        let target = Otlp::new(&options)?;
        Pusher::start(target, &options.queue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(f: impl FnOnce(&mut OtlpSpec)) -> Result<OtlpOptions, PushError> {
        let mut s = OtlpSpec {
            url: Some("http://127.0.0.1:4318/v1/metrics".into()),
            ..OtlpSpec::default()
        };
        f(&mut s);
        OtlpOptions::new(s)
    }

    fn message(r: Result<OtlpOptions, PushError>) -> String {
        match r {
            Err(PushError::Range { message, .. }) => message,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn options_and_their_errors() {
        let o = spec(|_| {}).unwrap();
        assert_eq!(o.encoding.protocol, Protocol::Protobuf);
        assert_eq!(o.encoding.temporality, Temporality::Cumulative);
        let o = spec(|s| {
            s.protocol = Some("http/json".into());
            s.temporality = Some("delta".into());
            s.headers = vec![("Authorization".into(), "Bearer x".into())];
        })
        .unwrap();
        assert_eq!(o.encoding.protocol, Protocol::Json);
        let target = Otlp::new(&o).unwrap();
        let headers = target.request().headers;
        assert!(headers.contains(&("Content-Type".into(), "application/json".into())));
        assert!(
            !format!("{o:?}").contains("Bearer"),
            "no credentials in Debug"
        );
        assert_eq!(
            message(spec(|s| s.protocol = Some("grpc".into()))),
            "otlp.protocol must be 'http/protobuf' or 'http/json', got \"grpc\""
        );
        assert_eq!(
            message(spec(|s| s.temporality = Some("Delta".into()))),
            "otlp.temporality must be 'cumulative' or 'delta', got \"Delta\""
        );
        assert!(
            message(spec(|s| s.url = Some("https://x/v1/metrics".into()))).starts_with("otlp.url")
        );
        assert!(message(spec(|s| s.url = None)).starts_with("otlp.url"));
        assert!(message(spec(
            |s| s.headers = vec![("Content-Type".into(), "x".into())]
        ))
        .starts_with("otlp.headers.Content-Type must be a header the pusher does not set"));
        assert!(message(spec(|s| s.every = Some(-1.0))).starts_with("otlp.every"));
        assert_eq!(
            message(spec(|s| s.compression = Some("zstd".into()))),
            "otlp.compression must be 'none' or 'gzip', got \"zstd\""
        );
        let o = spec(|s| s.compression = Some("gzip".into())).unwrap();
        let headers = Otlp::new(&o).unwrap().request().headers;
        assert!(headers.contains(&("Content-Encoding".into(), "gzip".into())));
        assert!(message(spec(|s| s.queue.batch_points = Some(0.5))).starts_with("otlp.batchPoints"));
        // Bucket layouts as serve() takes them, errors naming the key.
        let o = spec(|s| {
            s.buckets = Some(vec![1.0, 10.0]);
            s.named_buckets = vec![("nodejs_gc_duration_seconds".into(), vec![0.001, 5.0])];
        })
        .unwrap();
        assert_eq!(o.encoding.buckets, Some(vec![1.0, 10.0]));
        assert_eq!(o.encoding.named_buckets.len(), 1);
        assert_eq!(
            message(spec(|s| s.buckets = Some(vec![-1.0]))),
            "otlp.buckets[0] must be a finite number of at least 0 (histogram values are never negative), got -1"
        );
        assert_eq!(
            message(spec(|s| s.named_buckets = vec![("a.b".into(), vec![1.0])])),
            "otlp.buckets keys must be `default` or a metric name as /metrics writes it without the prefix ([a-zA-Z_][a-zA-Z0-9_]*), got \"a.b\""
        );
    }

    #[test]
    fn otlp_retries_what_the_specification_says() {
        let target = Otlp::new(&spec(|_| {}).unwrap()).unwrap();
        for status in [429, 502, 503, 504] {
            assert!(target.retry(status), "{status}");
        }
        for status in [400, 401, 404, 413, 500, 501] {
            assert!(!target.retry(status), "{status}");
        }
    }
}
