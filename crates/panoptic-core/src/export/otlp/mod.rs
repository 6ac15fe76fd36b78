//! OTLP/HTTP metrics: one delivery as `ExportMetricsServiceRequest`s, the messages of the
//! official OpenTelemetry protobuf definitions (the `opentelemetry-proto` crate's generated
//! code), written as protobuf (`http/protobuf`) or as OTLP/JSON (`http/json`, [`json`]).
//!
//! docs/otlp.md documents the mapping; in short:
//! - Resources: one for the cluster view and, with [`Encoding::per_process`], one per process
//!   (the master, each worker, each worker thread). Each has `service.name` (the instance's
//!   `name`, else `unknown_service:<process title>` as the semantic conventions say),
//!   `host.name`, `process.pid` (the master's for the cluster view) and
//!   `service.instance.id`; a process's also has `panoptic.worker` (`master`, the cluster worker
//!   id, a thread's label).
//! - Metric names: the prefix, then the path elements and the bare id joined by `.`; tags are
//!   the points' attributes.
//! - `inc` -> monotonic Sum; `set` (numbers), `gauge`, `rate` -> Gauge (NaN: a point flagged
//!   "no recorded value"); `sample` / `timedSample` -> Summary (count and sum, and in delta
//!   temporality the interval's min and max as quantiles 0 and 1); `histogram` ->
//!   ExponentialHistogram where every series of the metric maps exactly ([`exponential`]), else
//!   Histogram with explicit buckets: the metric's layout as `/metrics` chooses it
//!   ([`Encoding::buckets`], [`Encoding::named_buckets`], keyed by the `/metrics` name); `meter` -> Gauges `<name>.m1_rate`,
//!   `.m5_rate`, `.m15_rate`, `.mean_rate` (events per second).
//! - Temporality: cumulative points come from the store (every series it holds, since the
//!   first delivery the encoder saw for the resource); delta points from the delivery (the
//!   series reported in the interval, over the interval). Both come from the merge of exact
//!   intervals, so neither goes wrong across a worker's exit or restart.
//! - Times: a point's time is the end of the delivered interval; its start is the interval's
//!   start (delta) or the start of the first interval the resource was seen in (cumulative).
//!   Pushing every few deliveries in delta temporality, [`Deltas`] adds up the intervals
//!   between two pushes: a point then spans all of them.

use std::collections::HashMap;
use std::sync::Arc;

use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    exponential_histogram_data_point::Buckets, metric::Data, number_data_point,
    summary_data_point::ValueAtQuantile, AggregationTemporality, DataPointFlags,
    ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint,
    Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

use super::influx::Keep;
use super::prometheus::{base_name, layout, NamedBuckets};
use super::{Cumulative, Process, Store};
use crate::gather::{Delivery, Tree};
use crate::snapshot::{SeriesKey, Value};
use crate::stats::histogram::Distribution;
use crate::tags::split_tags;

pub mod exponential;
pub mod json;

/// How requests are written (the `protocol` option).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// `http/protobuf`, the default (OTLP's, and the smaller).
    #[default]
    Protobuf,
    /// `http/json`.
    Json,
}

impl Protocol {
    /// `http/protobuf` or `http/json`.
    pub fn parse(text: &str) -> Option<Protocol> {
        match text {
            "http/protobuf" => Some(Protocol::Protobuf),
            "http/json" => Some(Protocol::Json),
            _ => None,
        }
    }

    /// The requests' `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            Protocol::Protobuf => "application/x-protobuf",
            Protocol::Json => "application/json",
        }
    }
}

/// Whether sums and histograms count since the start or over each interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Temporality {
    /// `cumulative`, the default (what Prometheus-like back-ends want).
    #[default]
    Cumulative,
    /// `delta`.
    Delta,
}

impl Temporality {
    /// `cumulative` or `delta`.
    pub fn parse(text: &str) -> Option<Temporality> {
        match text {
            "cumulative" => Some(Temporality::Cumulative),
            "delta" => Some(Temporality::Delta),
            _ => None,
        }
    }

    fn proto(self) -> i32 {
        match self {
            Temporality::Cumulative => AggregationTemporality::Cumulative as i32,
            Temporality::Delta => AggregationTemporality::Delta as i32,
        }
    }
}

/// The default number of data points per request at most.
pub const DEFAULT_BATCH_POINTS: usize = 5000;
/// The default size a request stops growing at: 1 MiB.
pub const DEFAULT_BATCH_BYTES: usize = 1 << 20;

/// How deliveries become requests.
#[derive(Clone)]
pub struct Encoding {
    pub protocol: Protocol,
    pub temporality: Temporality,
    /// Put before every metric name, as given.
    pub prefix: String,
    /// Explicit buckets' bounds, in the values' unit (None: `/metrics`' defaults at the
    /// instance's scale factor).
    pub buckets: Option<Vec<f64>>,
    /// Layouts of their own, by the name the series has on `/metrics` without a prefix
    /// (see [`super::prometheus::PrometheusOptions::named_buckets`]).
    pub named_buckets: NamedBuckets,
    /// Also send each process's own series (when the store keeps them), each process as a
    /// resource of its own.
    pub per_process: bool,
    /// Data points per request at most (a delivery with more is sent as several requests).
    pub batch_points: usize,
    /// A request stops growing once its metrics take this many bytes of protobuf (one metric's
    /// points may go beyond).
    pub batch_bytes: usize,
    /// Which series to send (None: all).
    pub keep: Option<Keep>,
}

impl Default for Encoding {
    fn default() -> Self {
        Encoding {
            protocol: Protocol::default(),
            temporality: Temporality::default(),
            prefix: String::new(),
            buckets: None,
            named_buckets: Vec::new(),
            per_process: false,
            batch_points: DEFAULT_BATCH_POINTS,
            batch_bytes: DEFAULT_BATCH_BYTES,
            keep: None,
        }
    }
}

impl std::fmt::Debug for Encoding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoding")
            .field("protocol", &self.protocol)
            .field("temporality", &self.temporality)
            .field("prefix", &self.prefix)
            .field("buckets", &self.buckets)
            .field("named_buckets", &self.named_buckets)
            .field("per_process", &self.per_process)
            .field("batch_points", &self.batch_points)
            .field("batch_bytes", &self.batch_bytes)
            .field("keep", &self.keep.as_ref().map(|_| "Fn"))
            .finish()
    }
}

/// What the encoder keeps between deliveries: when each resource's cumulative series start
/// (the start of the first interval it was seen in, epoch ns).
#[derive(Debug, Default)]
pub struct Starts(HashMap<Option<Tree>, u64>);

/// One request's body and its number of data points.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub body: Vec<u8>,
    pub points: u64,
}

/// An epoch time in ms as OTLP's ns (0 for what cannot be one).
fn nanos(ms: f64) -> u64 {
    if (0.0..1.8e13).contains(&ms) {
        (ms.round() as u64) * 1_000_000
    } else {
        0
    }
}

/// The requests for one delivery (none when it has no point to send).
pub fn encode(
    store: &Store,
    delivery: &Delivery,
    encoding: &Encoding,
    starts: &mut Starts,
) -> Vec<Request> {
    requests(messages(store, delivery, encoding, starts), encoding)
}

/// The requests of the intervals `deltas` gathered (see [`gathered`]).
pub fn encode_gathered(
    store: &Store,
    deltas: &mut Deltas,
    time_stamp: f64,
    encoding: &Encoding,
    starts: &mut Starts,
) -> Vec<Request> {
    requests(
        gathered(store, deltas, time_stamp, encoding, starts),
        encoding,
    )
}

/// Resources cut into requests and written in the protocol.
fn requests(resources: Vec<ResourceMetrics>, encoding: &Encoding) -> Vec<Request> {
    let requests = split(resources, encoding.batch_points, encoding.batch_bytes);
    (requests.into_iter())
        .map(|(request, points)| Request {
            body: match encoding.protocol {
                Protocol::Protobuf => request.encode_to_vec(),
                Protocol::Json => json::to_vec(&request),
            },
            points,
        })
        .collect()
}

/// One delivery's resources, each with its metrics.
pub fn messages(
    store: &Store,
    delivery: &Delivery,
    encoding: &Encoding,
    starts: &mut Starts,
) -> Vec<ResourceMetrics> {
    let format = delivery.format();
    let per_process = encoding.per_process && store.keeps_processes();
    let parts = match encoding.temporality {
        Temporality::Cumulative => Vec::new(),
        Temporality::Delta => delivery_parts(delivery, per_process),
    };
    let since = format.time_stamp - format.interval;
    resources(store, &parts, since, format.time_stamp, encoding, starts)
}

/// The resources of the intervals `deltas` gathered (delta temporality, pushed every few
/// deliveries), which it forgets; the end of the last one is `time_stamp` (epoch ms).
pub fn gathered(
    store: &Store,
    deltas: &mut Deltas,
    time_stamp: f64,
    encoding: &Encoding,
    starts: &mut Starts,
) -> Vec<ResourceMetrics> {
    let since = deltas.since.take().unwrap_or(time_stamp);
    let views = std::mem::take(&mut deltas.views);
    let parts: Vec<Part> = (views.iter())
        .map(|(process, series)| {
            (
                process.clone(),
                series.iter().map(|(k, v)| (k.clone(), v)).collect(),
            )
        })
        .collect();
    resources(store, &parts, since, time_stamp, encoding, starts)
}

/// The resources of `parts` (delta temporality; ignored in cumulative temporality, which sends
/// the store), their points from `since` to `until` (epoch ms).
fn resources(
    store: &Store,
    parts: &[Part],
    since: f64,
    until: f64,
    encoding: &Encoding,
    starts: &mut Starts,
) -> Vec<ResourceMetrics> {
    let time = nanos(until);
    let interval_start = nanos(since);
    let per_process = encoding.per_process && store.keeps_processes();
    let views = match encoding.temporality {
        Temporality::Cumulative => cumulative_views(store, per_process),
        Temporality::Delta => delta_views(store, parts, per_process),
    };
    // Resources no longer there (workers gone) are forgotten: ids are not reused.
    let seen: Vec<Option<Tree>> = views
        .iter()
        .map(|v| v.0.as_ref().map(|p| p.from.clone()))
        .collect();
    starts.0.retain(|tree, _| seen.contains(tree));
    let scale_factor = store.origin().scale_factor;
    let mut out = Vec::with_capacity(views.len());
    for ((process, items), tree) in views.into_iter().zip(seen) {
        let start = match encoding.temporality {
            Temporality::Cumulative => *starts.0.entry(tree).or_insert(interval_start),
            Temporality::Delta => interval_start,
        };
        let times = Times { start, time };
        let kept = items.into_iter().filter(|(key, _)| {
            (encoding.keep.as_ref()).is_none_or(|keep| keep(key, process.as_ref()))
        });
        let metrics = metrics(kept, encoding, times, scale_factor);
        if metrics.is_empty() {
            continue;
        }
        out.push(ResourceMetrics {
            resource: Some(resource(store, process.as_ref())),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: "panoptic".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    ..Default::default()
                }),
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        });
    }
    out
}

/// What one series gives: its value (the interval's in delta temporality, None for cumulative
/// points) and its state since the start.
type Item<'a> = (Arc<SeriesKey>, (Option<&'a Value>, &'a Cumulative));
type View<'a> = (Option<Process>, Vec<Item<'a>>);

/// Every series of the store, by resource.
fn cumulative_views(store: &Store, per_process: bool) -> Vec<View<'_>> {
    let mut views: Vec<View> = vec![(None, Vec::new())];
    for series in store.series() {
        if series.process.is_some() && !per_process {
            break; // the cluster view comes first
        }
        if views
            .last()
            .is_none_or(|(p, _)| p.as_ref() != series.process)
        {
            views.push((series.process.cloned(), Vec::new()));
        }
        if let Some((_, items)) = views.last_mut() {
            items.push((Arc::new(series.key.clone()), (None, series.value)));
        }
    }
    views
}

/// The delivery's series, by resource, with their states since the start (for what a delta
/// point cannot tell: the scale a histogram maps at).
fn delta_views<'a>(store: &'a Store, parts: &'a [Part], per_process: bool) -> Vec<View<'a>> {
    let mut totals: HashMap<Option<&Tree>, HashMap<&SeriesKey, &Cumulative>> = HashMap::new();
    for series in store.series() {
        if series.process.is_some() && !per_process {
            break;
        }
        let view = totals.entry(series.process.map(|p| &p.from)).or_default();
        view.insert(series.key, series.value);
    }
    let mut views = Vec::with_capacity(parts.len());
    for (process, series) in parts {
        let view = totals.get(&process.as_ref().map(|p| &p.from));
        let mut items = Vec::with_capacity(series.len());
        for (key, value) in series {
            // A series the store does not keep (a non-numeric `set`, a logger) is not sent;
            // neither is a gone worker's last part (the store left it out too).
            if let Some(total) = view.and_then(|v| v.get(&**key)).copied() {
                items.push((key.clone(), (Some(*value), total)));
            }
        }
        // A gone worker's part: the store no longer holds its process.
        if process.is_none() || !items.is_empty() {
            views.push((process.clone(), items));
        }
    }
    views
}

/// One resource's series and their values over the time a delta point covers.
type Part<'a> = (Option<Process>, Vec<(Arc<SeriesKey>, &'a Value)>);

/// The delivery's series by resource: the cluster view's, then each process's (when asked).
fn delivery_parts(delivery: &Delivery, per_process: bool) -> Vec<Part<'_>> {
    let (ids, values) = delivery.merged();
    let mut parts: Vec<(Option<Process>, &[u32], &[Value])> = vec![(None, ids, values)];
    if per_process {
        for part in delivery.parts() {
            let process = Process {
                from: part.from.clone(),
                pid: part.pid,
            };
            parts.push((Some(process), part.ids, part.values()));
        }
    }
    // The keys' lock is held only to copy the keys out (the master's intake adds keys).
    delivery.keys().with(|keys| {
        (parts.into_iter())
            .map(|(process, ids, values)| {
                let named = ids.iter().map(|&id| keys[id as usize].clone());
                (process, named.zip(values).collect())
            })
            .collect()
    })
}

/// Delta temporality with `every`: the intervals delivered since the last push, each series'
/// values added up (sums and counts add, histograms merge; gauges and meters are read from the
/// store when pushed), so the push's delta points cover all of them.
#[derive(Debug, Default)]
pub struct Deltas {
    /// The start of the first interval gathered (epoch ms).
    since: Option<f64>,
    /// By resource (the cluster view first): each series' added-up value, in arrival order.
    views: Vec<(Option<Process>, Vec<Gathered>)>,
}

/// A series and its values added up.
type Gathered = (Arc<SeriesKey>, Value);

impl Deltas {
    /// Adds a delivery's intervals.
    pub fn add(&mut self, delivery: &Delivery, per_process: bool) {
        let format = delivery.format();
        self.since
            .get_or_insert(format.time_stamp - format.interval);
        for (process, series) in delivery_parts(delivery, per_process) {
            let from = process.as_ref().map(|p| &p.from);
            let at =
                match (self.views.iter()).position(|(p, _)| p.as_ref().map(|p| &p.from) == from) {
                    Some(at) => at,
                    None => {
                        self.views.push((process.clone(), Vec::new()));
                        self.views.len() - 1
                    }
                };
            let (kept, values) = &mut self.views[at];
            // The process's last pid (a thread keeps its process's).
            *kept = process;
            let index: HashMap<Arc<SeriesKey>, usize> = (values.iter().enumerate())
                .map(|(i, (k, _))| (k.clone(), i))
                .collect();
            for (key, value) in series {
                match index.get(&key) {
                    Some(&i) => add_value(&mut values[i].1, value),
                    None => values.push((key, value.clone())),
                }
            }
        }
    }
}

/// One series' next interval added to its earlier ones (of the same kind; else it replaces).
fn add_value(sum: &mut Value, next: &Value) {
    match (sum, next) {
        (Value::Counter { count, total }, Value::Counter { count: c, total: t }) => {
            *count += c;
            *total += t;
        }
        (Value::Summary(a), Value::Summary(b)) => *a = a.merge(b),
        (Value::Histogram(a), Value::Histogram(b)) => {
            // One series' intervals share the master's histogram options.
            let _ = a.merge(b);
        }
        (sum, next) => *sum = next.clone(),
    }
}

/// The resource of the cluster view (None) or of a process.
fn resource(store: &Store, process: Option<&Process>) -> Resource {
    let origin = store.origin();
    let text = |key: &str, value: String| KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value)),
        }),
        ..Default::default()
    };
    let service = if origin.name.is_empty() {
        format!("unknown_service:{}", origin.title)
    } else {
        origin.name.clone()
    };
    let pid = process.map_or(origin.pid, |p| p.pid);
    let mut attributes = vec![
        text("service.name", service),
        text("host.name", origin.host.clone()),
        KeyValue {
            key: "process.pid".into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::IntValue(i64::from(pid))),
            }),
            ..Default::default()
        },
    ];
    match process {
        None => attributes.push(text(
            "service.instance.id",
            format!("{}:{}", origin.host, origin.pid),
        )),
        Some(p) => {
            let label = p.label();
            attributes.push(text(
                "service.instance.id",
                format!("{}:{}:{label}", origin.host, origin.pid),
            ));
            attributes.push(text("panoptic.worker", label));
        }
    }
    Resource {
        attributes,
        ..Default::default()
    }
}

#[derive(Clone, Copy)]
struct Times {
    start: u64,
    time: u64,
}

/// The kinds of metric, which a metric's points share.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Sum,
    Gauge,
    Summary,
    Histogram,
}

/// What one series gives, before histograms are grouped.
enum Point<'a> {
    Number(f64),
    Summary {
        count: f64,
        sum: f64,
        range: Option<(f64, f64)>,
    },
    /// The distribution to send, and the series' since the start.
    Histogram(&'a Distribution, &'a Distribution),
}

/// A series' metric name: the prefix, then its path elements and bare id joined by `.`
/// (None: empty).
fn name(prefix: &str, key: &SeriesKey, bare: &str) -> Option<String> {
    let mut name = prefix.to_string();
    let parts = key.path.iter().map(String::as_str).chain([bare]);
    for (i, part) in parts.enumerate() {
        if i > 0 {
            name.push('.');
        }
        name.push_str(part);
    }
    (!name.is_empty()).then_some(name)
}

/// A series' points: (name suffix, kind, point).
fn points<'a>(
    value: Option<&'a Value>,
    total: &'a Cumulative,
    out: &mut Vec<(&'static str, Kind, Point<'a>)>,
) {
    match (total, value) {
        (Cumulative::Counter { total, .. }, None) => {
            out.push(("", Kind::Sum, Point::Number(*total)))
        }
        (Cumulative::Counter { .. }, Some(Value::Counter { total, .. })) => {
            out.push(("", Kind::Sum, Point::Number(*total)))
        }
        (Cumulative::Summary { count, sum, .. }, None) => out.push((
            "",
            Kind::Summary,
            Point::Summary {
                count: *count,
                sum: *sum,
                range: None,
            },
        )),
        (Cumulative::Summary { .. }, Some(Value::Summary(s))) => out.push((
            "",
            Kind::Summary,
            Point::Summary {
                count: s.count,
                sum: s.total,
                range: s.min().zip(s.max()),
            },
        )),
        (Cumulative::Histogram(whole), None) => {
            out.push(("", Kind::Histogram, Point::Histogram(whole, whole)))
        }
        (Cumulative::Histogram(whole), Some(Value::Histogram(d))) => {
            out.push(("", Kind::Histogram, Point::Histogram(d, whole)))
        }
        // The store's state is the delivery's last rates and value.
        (Cumulative::Meter { last, .. }, _) => {
            let rates = [
                (".m1_rate", last.m1),
                (".m5_rate", last.m5),
                (".m15_rate", last.m15),
                (".mean_rate", last.mean_rate),
            ];
            for (suffix, x) in rates {
                out.push((suffix, Kind::Gauge, Point::Number(x)));
            }
        }
        (Cumulative::Gauge(g), _) => out.push(("", Kind::Gauge, Point::Number(*g))),
        // A value of another kind than the store's (the store keeps the first kind seen).
        _ => {}
    }
}

/// A number point (a non-finite number: flagged as no recorded value).
fn number(x: f64, attributes: Vec<KeyValue>, times: Times) -> NumberDataPoint {
    let finite = x.is_finite();
    NumberDataPoint {
        attributes,
        start_time_unix_nano: times.start,
        time_unix_nano: times.time,
        value: finite.then_some(number_data_point::Value::AsDouble(x)),
        flags: if finite {
            0
        } else {
            DataPointFlags::NoRecordedValueMask as u32
        },
        ..Default::default()
    }
}

fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

/// The metrics of one resource's series, in the order their names first appear.
fn metrics<'a>(
    items: impl Iterator<Item = Item<'a>>,
    encoding: &Encoding,
    times: Times,
    scale_factor: f64,
) -> Vec<Metric> {
    // (name, kind) -> (unit, the `/metrics` name of its first series (histograms: their
    // buckets' layout is chosen by it), points with their attributes)
    let mut order: Vec<(String, Kind)> = Vec::new();
    type Group<'a> = (&'static str, String, Vec<(Vec<KeyValue>, Point<'a>)>);
    let mut groups: HashMap<(String, Kind), Group<'a>> = HashMap::new();
    let mut found = Vec::with_capacity(4);
    // Series share keys (Arc) with the delivery: the items own them, the points borrow values.
    for (key, (value, total)) in items {
        let (bare, tags) = split_tags(&key.id);
        let Some(base) = name(&encoding.prefix, &key, bare) else {
            continue;
        };
        found.clear();
        points(value, total, &mut found);
        let unit = match &*key.method {
            "timedSample" if scale_factor == 1.0 => "ms",
            "timedSample" if scale_factor == 1000.0 => "s",
            _ => "",
        };
        for (suffix, kind, point) in found.drain(..) {
            let attributes = (tags.iter().flatten())
                .map(|(k, v)| KeyValue {
                    key: k.clone(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::StringValue(v.clone())),
                    }),
                    ..Default::default()
                })
                .collect();
            let id = (format!("{base}{suffix}"), kind);
            let group = groups.entry(id.clone()).or_insert_with(|| {
                let base = match kind {
                    Kind::Histogram => base_name(&key.path, bare),
                    _ => String::new(),
                };
                order.push(id);
                (unit, base, Vec::new())
            });
            group.2.push((attributes, point));
        }
    }
    let temporality = encoding.temporality.proto();
    let mut out = Vec::with_capacity(order.len());
    for id in order {
        let Some((unit, base, points)) = groups.remove(&id) else {
            continue;
        };
        let (name, kind) = id;
        let data = match kind {
            Kind::Sum | Kind::Gauge => {
                let data_points = (points.into_iter())
                    .filter_map(|(attributes, p)| match p {
                        Point::Number(x) => Some(number(x, attributes, times)),
                        _ => None,
                    })
                    .collect();
                if kind == Kind::Sum {
                    Data::Sum(Sum {
                        data_points,
                        aggregation_temporality: temporality,
                        is_monotonic: true,
                    })
                } else {
                    Data::Gauge(Gauge { data_points })
                }
            }
            Kind::Summary => Data::Summary(Summary {
                data_points: (points.into_iter())
                    .filter_map(|(attributes, p)| match p {
                        Point::Summary { count, sum, range } => Some(SummaryDataPoint {
                            attributes,
                            start_time_unix_nano: times.start,
                            time_unix_nano: times.time,
                            count: count as u64,
                            // A sum past the doubles (values near f64::MAX): no recorded value.
                            sum: finite(sum).unwrap_or_default(),
                            quantile_values: range
                                .map(|(min, max)| {
                                    vec![
                                        ValueAtQuantile {
                                            quantile: 0.0,
                                            value: min,
                                        },
                                        ValueAtQuantile {
                                            quantile: 1.0,
                                            value: max,
                                        },
                                    ]
                                })
                                .unwrap_or_default(),
                            flags: if sum.is_finite() {
                                0
                            } else {
                                DataPointFlags::NoRecordedValueMask as u32
                            },
                        }),
                        _ => None,
                    })
                    .collect(),
            }),
            Kind::Histogram => {
                let (default, named) = (encoding.buckets.as_deref(), &encoding.named_buckets);
                let bounds = layout(default, named, &base, scale_factor);
                histograms(points, times, temporality, &bounds)
            }
        };
        out.push(Metric {
            name,
            unit: unit.into(),
            data: Some(data),
            ..Default::default()
        });
    }
    out
}

/// A histogram metric's points: exponential when every series maps exactly (each at the
/// scale its state since the start maps at, so a series keeps its scale while it maps), else
/// explicit buckets at `bounds`.
fn histograms(
    points: Vec<(Vec<KeyValue>, Point)>,
    times: Times,
    temporality: i32,
    bounds: &[f64],
) -> Data {
    let hists: Vec<(Vec<KeyValue>, &Distribution, &Distribution)> = (points.into_iter())
        .filter_map(|(a, p)| match p {
            Point::Histogram(d, whole) => Some((a, d, whole)),
            _ => None,
        })
        .collect();
    let scales: Option<Vec<i32>> = (hists.iter())
        .map(|(_, _, whole)| exponential::choose(&whole.hdr_buckets()?))
        .collect();
    let stats = |d: &Distribution| {
        let s = d.stats(&[]);
        (s.count, finite(d.sum()), s.min, s.max)
    };
    if let Some(scales) = scales {
        let mut data_points = Vec::with_capacity(hists.len());
        for ((attributes, d, _), scale) in hists.into_iter().zip(scales) {
            // The interval's buckets are among those since the start: they map at its scale.
            let Some(e) = d.hdr_buckets().and_then(|b| exponential::map(&b, scale)) else {
                continue;
            };
            let (count, sum, min, max) = stats(d);
            data_points.push(ExponentialHistogramDataPoint {
                attributes,
                start_time_unix_nano: times.start,
                time_unix_nano: times.time,
                count,
                sum,
                scale: e.scale,
                zero_count: e.zero_count,
                positive: Some(Buckets {
                    offset: e.offset,
                    bucket_counts: e.counts,
                }),
                min,
                max,
                ..Default::default()
            });
        }
        return Data::ExponentialHistogram(ExponentialHistogram {
            data_points,
            aggregation_temporality: temporality,
        });
    }
    let data_points = (hists.into_iter())
        .map(|(attributes, d, _)| {
            let (count, sum, min, max) = stats(d);
            // Cumulative counts at each bound, then per bucket (the last above every bound).
            let at_most = d.count_at_most(bounds);
            let mut below = 0;
            let mut bucket_counts: Vec<u64> = (at_most.iter())
                .map(|&c| {
                    let n = c.saturating_sub(below);
                    below = below.max(c);
                    n
                })
                .collect();
            bucket_counts.push(count.saturating_sub(below));
            HistogramDataPoint {
                attributes,
                start_time_unix_nano: times.start,
                time_unix_nano: times.time,
                count,
                sum,
                bucket_counts,
                explicit_bounds: bounds.to_vec(),
                min,
                max,
                ..Default::default()
            }
        })
        .collect();
    Data::Histogram(Histogram {
        data_points,
        aggregation_temporality: temporality,
    })
}

/// The data points of a metric.
fn point_count(data: &Data) -> usize {
    match data {
        Data::Gauge(g) => g.data_points.len(),
        Data::Sum(s) => s.data_points.len(),
        Data::Histogram(h) => h.data_points.len(),
        Data::ExponentialHistogram(h) => h.data_points.len(),
        Data::Summary(s) => s.data_points.len(),
    }
}

/// The first `n` data points of `data` as a metric's data of their own (the rest stay).
fn take_points(data: &mut Data, n: usize) -> Data {
    fn front<T>(points: &mut Vec<T>, n: usize) -> Vec<T> {
        let rest = points.split_off(n.min(points.len()));
        std::mem::replace(points, rest)
    }
    match data {
        Data::Gauge(g) => Data::Gauge(Gauge {
            data_points: front(&mut g.data_points, n),
        }),
        Data::Sum(s) => Data::Sum(Sum {
            data_points: front(&mut s.data_points, n),
            ..*s
        }),
        Data::Histogram(h) => Data::Histogram(Histogram {
            data_points: front(&mut h.data_points, n),
            ..*h
        }),
        Data::ExponentialHistogram(h) => Data::ExponentialHistogram(ExponentialHistogram {
            data_points: front(&mut h.data_points, n),
            ..*h
        }),
        Data::Summary(s) => Data::Summary(Summary {
            data_points: front(&mut s.data_points, n),
        }),
    }
}

/// Cuts resources into requests of at most `max` data points each, each ending once its
/// metrics take `bytes` bytes (a metric with more points is split: its parts keep its name,
/// unit and kind), with their point counts.
fn split(
    resources: Vec<ResourceMetrics>,
    max: usize,
    bytes: usize,
) -> Vec<(ExportMetricsServiceRequest, u64)> {
    let max = max.max(1);
    let mut out = Vec::new();
    let mut current: Vec<ResourceMetrics> = Vec::new();
    let mut points = 0;
    let mut size = 0;
    let flush = |current: &mut Vec<ResourceMetrics>, points: &mut usize, out: &mut Vec<_>| {
        if *points > 0 {
            let request = ExportMetricsServiceRequest {
                resource_metrics: std::mem::take(current),
            };
            out.push((request, *points as u64));
        }
        current.clear();
        *points = 0;
    };
    for mut rm in resources {
        let scopes = std::mem::take(&mut rm.scope_metrics);
        for mut sm in scopes {
            let metrics = std::mem::take(&mut sm.metrics);
            for mut metric in metrics {
                let Some(mut data) = metric.data.take() else {
                    continue;
                };
                while point_count(&data) > 0 {
                    if points == max || size >= bytes {
                        flush(&mut current, &mut points, &mut out);
                        size = 0;
                    }
                    let part = take_points(&mut data, max - points);
                    points += point_count(&part);
                    // The resource and scope of the request being filled, made when first needed.
                    if current.last().is_none_or(|r| r.resource != rm.resource) {
                        current.push(ResourceMetrics {
                            resource: rm.resource.clone(),
                            scope_metrics: Vec::new(),
                            schema_url: rm.schema_url.clone(),
                        });
                    }
                    let Some(target) = current.last_mut() else {
                        continue;
                    };
                    if target
                        .scope_metrics
                        .last()
                        .is_none_or(|s| s.scope != sm.scope)
                    {
                        target.scope_metrics.push(ScopeMetrics {
                            scope: sm.scope.clone(),
                            metrics: Vec::new(),
                            schema_url: sm.schema_url.clone(),
                        });
                    }
                    if let Some(scope) = target.scope_metrics.last_mut() {
                        let part = Metric {
                            data: Some(part),
                            ..metric.clone()
                        };
                        size += part.encoded_len();
                        scope.metrics.push(part);
                    }
                }
            }
        }
    }
    flush(&mut current, &mut points, &mut out);
    out
}

/// What an answer's `ExportMetricsPartialSuccess` says: the data points the receiver rejected
/// and its message (None: a full success, or a body that is not an answer).
pub fn partial_success(body: &[u8], protocol: Protocol) -> Option<(u64, String)> {
    let (rejected, message) = match protocol {
        Protocol::Protobuf => {
            let answer = ExportMetricsServiceResponse::decode(body).ok()?;
            let partial = answer.partial_success?;
            (partial.rejected_data_points, partial.error_message)
        }
        Protocol::Json => json::partial_success(body)?,
    };
    (rejected > 0 || !message.is_empty()).then(|| (rejected.max(0) as u64, message))
}

#[cfg(test)]
mod tests;
