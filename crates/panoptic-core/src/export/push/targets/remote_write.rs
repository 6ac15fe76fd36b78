//! The Prometheus remote write 1.0 target (`remoteWrite`): each delivery (or one every
//! [`RemoteWriteOptions::every`]) becomes `WriteRequest`s, protobuf compressed with snappy's
//! block format, `POST`ed with `Content-Encoding: snappy`, `Content-Type:
//! application/x-protobuf` and `X-Prometheus-Remote-Write-Version: 0.1.0`.
//!
//! What is sent is exactly what `/metrics` shows, from the same code path: the cumulative
//! store's series go through the Prometheus exposition writer ([`prometheus::write`], the one
//! naming code path: names, labels, `_total`, `_bucket{le}`, units, the groups left out) with
//! this option's `prefix` and `buckets`, and each sample line becomes one time series of one
//! sample. Reading the text back costs a parse per sample, but a second writer of names and
//! labels could drift from the first; the parse is of text this process just wrote, in one
//! known format. Every sample is timestamped at the end of the delivered interval; each series'
//! labels are `__name__`, the sample's labels and [`RemoteWriteOptions::labels`], sorted by name
//! as the specification requires, and the series are sorted by their label sets. A constant
//! label wins over the series' own label of that name, which is kept as `exported_<name>` (as
//! a Prometheus scrape does with its target labels): no two series become one.
//!
//! A batch holds at most [`super::Limits::points`] series (and stops growing past
//! [`super::Limits::bytes`] of protobuf), so a points count is a series count.
//!
//! The messages are the specification's (prometheus/prompb `remote.proto` and `types.proto`,
//! Apache-2.0), declared here with prost's derive and only the fields this sender writes; the
//! tags are the specification's, so any receiver decodes them.

use std::sync::Mutex;
use std::time::Duration;

use prost::Message;

use super::{Batch, Limits, Request, Target};
use crate::export::influx::Keep;
use crate::export::prometheus::{self, PrometheusOptions, TextFormat};
use crate::export::push::options::{check_headers, check_url, quote, range_error};
use crate::export::push::{PushError, Pusher, QueueOptions, QueueSpec};
use crate::export::{Delivery, Series, Store};

const OPTION: &str = "remoteWrite";

/// `prometheus.WriteRequest` (remote.proto): `timeseries` = 1 (`metadata` = 3 is not sent).
#[derive(Clone, PartialEq, Message)]
pub struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

/// `prometheus.TimeSeries` (types.proto): `labels` = 1, `samples` = 2 (`exemplars` = 3 and
/// `histograms` = 4, native histograms, are not sent).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Message)]
pub struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
}

/// `prometheus.Label`: `name` = 1, `value` = 2.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Message)]
pub struct Label {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `prometheus.Sample`: `value` = 1 (double), `timestamp` = 2 (int64, ms since the epoch).
#[derive(Clone, Copy, PartialEq, Message)]
pub struct Sample {
    #[prost(double, tag = "1")]
    pub value: f64,
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

// Samples have no total order (NaN); series are only sorted by labels, which are unique.
impl Eq for Sample {}
impl PartialOrd for Sample {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Sample {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.timestamp, self.value.to_bits()).cmp(&(other.timestamp, other.value.to_bits()))
    }
}

/// Where and how to push. [`RemoteWriteOptions::new`] reads the JS option `remoteWrite`.
#[derive(Clone, Default)]
pub struct RemoteWriteOptions {
    /// The receiver's write endpoint, as given (`http://host:9090/api/v1/write`).
    pub url: String,
    /// Headers added to every request (authentication, tenant: `X-Scope-OrgID`).
    pub headers: Vec<(String, String)>,
    /// Push at most one delivery per this time (None: every delivery). Values are cumulative:
    /// a delivery not pushed loses nothing but resolution.
    pub every: Option<Duration>,
    /// Names and buckets as `/metrics` has them (`prefix`, `buckets`; no quantiles: the
    /// receiver computes them from the buckets).
    pub prometheus: PrometheusOptions,
    /// Also push each process's own series, with a `worker` label (when the store keeps them).
    pub per_process: bool,
    /// Labels added to every series (`instance`, `job`, ...); a series' own label of the same
    /// name is renamed `exported_<name>`.
    pub labels: Vec<(String, String)>,
    /// Which series to push (None: all).
    pub keep: Option<Keep>,
    pub queue: QueueOptions,
}

impl std::fmt::Debug for RemoteWriteOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteWriteOptions")
            .field("url", &self.url)
            .field(
                "headers",
                &self.headers.iter().map(|h| &h.0).collect::<Vec<_>>(),
            )
            .field("every", &self.every)
            .field("prometheus", &self.prometheus)
            .field("per_process", &self.per_process)
            .field("labels", &self.labels)
            .field("keep", &self.keep.as_ref().map(|_| "Fn"))
            .field("queue", &self.queue)
            .finish()
    }
}

/// The `remoteWrite` option as JS gives it (types checked by lib/export.js; `every` in ms).
#[derive(Clone, Debug, Default)]
pub struct RemoteWriteSpec {
    pub url: Option<String>,
    pub headers: Vec<(String, String)>,
    pub every: Option<f64>,
    pub prefix: Option<String>,
    pub buckets: Option<Vec<f64>>,
    /// Layouts by metric name (`buckets` given as an object).
    pub named_buckets: Vec<(String, Vec<f64>)>,
    pub per_process: Option<bool>,
    pub labels: Vec<(String, String)>,
    pub queue: QueueSpec,
}

/// The headers the pusher sets itself (not to be given).
const OWN_HEADERS: [&str; 5] = [
    "content-type",
    "content-encoding",
    "content-length",
    "x-prometheus-remote-write-version",
    "host",
];

impl RemoteWriteOptions {
    /// Options from the JS option `remoteWrite`, [`RemoteWriteOptions::check`]ed.
    pub fn new(spec: RemoteWriteSpec) -> Result<RemoteWriteOptions, PushError> {
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
        let options = RemoteWriteOptions {
            url: spec.url.unwrap_or_default(),
            headers: spec.headers,
            every,
            prometheus: PrometheusOptions {
                prefix: spec.prefix.unwrap_or_default(),
                buckets: spec.buckets,
                named_buckets: spec.named_buckets,
                ..PrometheusOptions::default()
            },
            per_process: spec.per_process.unwrap_or(false),
            labels: spec.labels,
            keep: None,
            queue: QueueOptions::new(OPTION, &spec.queue)?,
        };
        options.check()?;
        Ok(options)
    }

    /// Validates: an `http://` URL with a host (a query is kept), header names and values HTTP
    /// takes (not those the pusher sets), `prefix` and `buckets` as `serve()` takes them, label
    /// names Prometheus takes (not `__*`, `worker`, `le`, `quantile`) with values, the queue.
    pub fn check(&self) -> Result<(), PushError> {
        check_url(
            OPTION,
            &self.url,
            "give the credentials in remoteWrite.headers",
            true,
        )?;
        check_headers(OPTION, &self.headers, &OWN_HEADERS)?;
        prometheus::validate_options(&self.prometheus).map_err(|e| {
            let field = e.field().replace("options.", "remoteWrite.");
            let message = e.to_string().replace("options.", "remoteWrite.");
            PushError::Range { field, message }
        })?;
        for (name, value) in &self.labels {
            let field = format!("labels.{name}");
            let valid = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with("__")
                && !["worker", "le", "quantile"].contains(&name.as_str());
            if !valid {
                let expected =
                    "a label name ([a-zA-Z_][a-zA-Z0-9_]*, not __*, worker, le, quantile)";
                return Err(range_error(OPTION, &field, expected, &quote(name)));
            }
            if value.is_empty() {
                let given = "an empty string";
                return Err(range_error(OPTION, &field, "a value", &given));
            }
        }
        self.queue.check(OPTION)
    }
}

/// See the module documentation.
pub struct RemoteWrite {
    request: Request,
    every: Option<f64>,
    prometheus: PrometheusOptions,
    per_process: bool,
    labels: Vec<(String, String)>,
    keep: Option<Keep>,
    /// The end of the last interval pushed (for `every`).
    last: Mutex<Option<f64>>,
}

impl RemoteWrite {
    pub fn new(options: &RemoteWriteOptions) -> Result<RemoteWrite, PushError> {
        options.check()?;
        let mut headers = options.headers.clone();
        headers.extend(
            [
                ("Content-Type", "application/x-protobuf"),
                ("Content-Encoding", "snappy"),
                ("X-Prometheus-Remote-Write-Version", "0.1.0"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        let mut labels = options.labels.clone();
        labels.sort();
        Ok(RemoteWrite {
            request: Request {
                url: options.url.clone(),
                query: Vec::new(),
                headers,
            },
            every: options.every.map(|e| e.as_secs_f64() * 1000.0),
            prometheus: options.prometheus.clone(),
            per_process: options.per_process,
            labels,
            keep: options.keep.clone(),
            last: Mutex::new(None),
        })
    }

    /// The store's series as remote write time series (sorted; see the module documentation),
    /// their samples at `stamp` (ms since the epoch).
    pub fn series(&self, store: &Store, stamp: i64) -> Vec<TimeSeries> {
        let options = PrometheusOptions {
            scale_factor: store.origin().scale_factor,
            ..self.prometheus.clone()
        };
        let per_process = self.per_process;
        let shown = |s: &Series| {
            (per_process || s.process.is_none())
                && (self.keep.as_ref()).is_none_or(|keep| keep(s.key, s.process))
        };
        let mut text = Vec::with_capacity(64 << 10);
        prometheus::write(
            store.series().filter(shown),
            &options,
            TextFormat::Prometheus,
            // panoptic's own metrics stay with the process that serves them (serve()).
            None,
            &mut text,
        );
        let text = String::from_utf8_lossy(&text);
        let mut series: Vec<TimeSeries> = (text.lines())
            .filter(|line| !line.starts_with('#') && !line.is_empty())
            .filter_map(|line| self.parse(line, stamp))
            .collect();
        series.sort_unstable_by(|a, b| a.labels.cmp(&b.labels));
        series
    }

    /// One exposition line (`name{a="x",b="y"} value`) as a time series.
    fn parse(&self, line: &str, stamp: i64) -> Option<TimeSeries> {
        let (head, value) = line.rsplit_once(' ')?;
        let value = match value {
            "NaN" => f64::NAN,
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().ok()?,
        };
        let (name, rest) = match head.find('{') {
            Some(open) => (&head[..open], Some(head[open + 1..].strip_suffix('}')?)),
            None => (head, None),
        };
        let mut labels = vec![Label {
            name: "__name__".into(),
            value: name.into(),
        }];
        if let Some(rest) = rest {
            parse_labels(rest, &mut labels)?;
        }
        for (name, value) in &self.labels {
            if let Some(at) = labels.iter().position(|l| &l.name == name) {
                // Prometheus' rule for a scraped label that a target label replaces: prefixed
                // with `exported_` until the name is free, so distinct series stay distinct.
                let mut renamed = format!("exported_{name}");
                while labels.iter().any(|l| l.name == renamed) {
                    renamed.insert_str(0, "exported_");
                }
                labels[at].name = renamed;
            }
            labels.push(Label {
                name: name.clone(),
                value: value.clone(),
            });
        }
        labels.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        Some(TimeSeries {
            labels,
            samples: vec![Sample {
                value,
                timestamp: stamp,
            }],
        })
    }
}

/// Reads `a="x",b="y\"z"` (the exposition's escapes: `\\`, `\"`, `\n`) into `out`.
fn parse_labels(mut text: &str, out: &mut Vec<Label>) -> Option<()> {
    while !text.is_empty() {
        let (name, rest) = text.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                (_, c) => value.push(c),
            }
        };
        out.push(Label {
            name: name.into(),
            value,
        });
        text = &rest[end + 1..];
        text = text.strip_prefix(',').unwrap_or(text);
    }
    Some(())
}

/// Snappy's block format (not its framing format), as remote write requires.
pub fn compress(bytes: &[u8]) -> Vec<u8> {
    // Only an input above ~4 GiB fails, far beyond a batch's bound.
    snap::raw::Encoder::new()
        .compress_vec(bytes)
        .unwrap_or_default()
}

impl Target for RemoteWrite {
    fn option(&self) -> &'static str {
        OPTION
    }

    fn server(&self) -> &'static str {
        "remote write"
    }

    fn request(&self) -> Request {
        self.request.clone()
    }

    fn encode(&self, store: &Store, delivery: &Delivery, limits: Limits, out: &mut Vec<Batch>) {
        let format = delivery.format();
        let end = format.time_stamp;
        if !end.is_finite() || end.abs() > 9.0e15 {
            return;
        }
        if let Some(every) = self.every {
            let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
            // Half an interval of slack: intervals end a few ms late or early.
            if last.is_some_and(|last| end - last + format.interval / 2.0 < every) {
                return;
            }
            *last = Some(end);
        }
        let series = self.series(store, end.round() as i64);
        let mut batch = WriteRequest::default();
        let mut bytes = 0;
        let mut flush = |batch: &mut WriteRequest| {
            let points = batch.timeseries.len() as u64;
            let body = compress(&batch.encode_to_vec());
            out.push(Batch::new(body, points));
            batch.timeseries.clear();
        };
        for s in series {
            bytes += s.encoded_len() + 4;
            batch.timeseries.push(s);
            if batch.timeseries.len() >= limits.points || bytes >= limits.bytes {
                flush(&mut batch);
                bytes = 0;
            }
        }
        if !batch.timeseries.is_empty() {
            flush(&mut batch);
        }
    }
}

impl Pusher {
    /// A pusher to a Prometheus remote write receiver (see [`Pusher::start`]).
    pub fn remote_write(options: RemoteWriteOptions) -> Result<Pusher, PushError> {
        let target = RemoteWrite::new(&options)?;
        Pusher::start(target, &options.queue)
    }
}

#[cfg(test)]
mod tests;
