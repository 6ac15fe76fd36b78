//! Panoptes' metrics groups (schema version 0.2) from the store: a JSON array of
//! `{ resource, dimensions, metrics, metrics_group_type, metrics_group_schema_version,
//! metrics_group_creation_timestamp, metrics_group_interval }`.
//!
//! The resource is the process: the cluster view is the serving process's resource of type
//! `cluster`; a process's own series (when the series given include them) are its resource of
//! type `master`, `worker` or `thread`. Resource fields:
//! - `resource_class` `application`, `resource_subclass` `node`, `resource_type` as above;
//! - `resource_id` `<host>:<pid>` (a thread: `<host>:<pid>/<label>`), `resource_site` and
//!   `resource_endpoint` the host;
//! - `resource_creation_plugin` (and `resource_plugin`, the key Panoptes' own serialization
//!   uses) `panoptic`; `resource_creation_timestamp` the end of the last interval;
//! - `ttl`: three intervals in seconds, rounded up (a process silent that long is gone), also
//!   as `resource_metadata._resource_ttl` (where Panoptes reads it);
//! - `resource_metadata`: `title`, `pid`, `name` (the instance's, when given), `worker`,
//!   `thread`.
//!
//! A metrics group holds the series of one resource, one group and one set of tags:
//! `metrics_group_type` is the group ([`super::pandora`]'s: the instance's `name`, else the
//! first path element, else `default`), `dimensions` are the series' tags (`|`, which Panoptes
//! reserves, becomes `_` in values). Metric names are the path and the bare id joined with `_`,
//! every character but ASCII letters, digits and `_` made `_` (and a `_` before a leading
//! digit), as Panoptes requires (`(letter|_)(letter|digit|_)*`), then a suffix by kind:
//! | kind | metrics (type) |
//! | --- | --- |
//! | `inc` | `<name>` (counter: the sum since the start) |
//! | `gauge`, `rate`, numeric `set` | `<name>` (gauge) |
//! | `sample`, `timedSample` | `<name>_count`, `<name>_sum` (counters, since the start), `_min`, `_max`, `_mean`, `_sigma` (gauges, the last interval that had values) |
//! | `histogram` | `<name>_count`, `<name>_sum` (counters), `_min`, `_max`, `_mean`, `_stddev` and the instance's percentiles (`_p50`, `_p99_9`, ...) (gauges, the last delivered interval) |
//! | `meter` | `<name>_count` (counter), `_m1`, `_m5`, `_m15`, `_mean_rate` (gauges, per second) |
//!
//! Panoptes turns counters into rates itself. Timestamps are epoch seconds (ms precision):
//! every one is the end of the last delivered interval; `metrics_group_interval` is the
//! interval in whole seconds (at least 1). A metric without a number is left out, so is a
//! second metric of the same name and type in a group (Panoptes refuses it), and so is a group
//! left with no metric.

use std::collections::{BTreeMap, HashSet};

use serde_json::{json, Map, Value as Json};

use super::view::{group_of, LastValues};
use super::{Cumulative, Origin, Process, Series, Store};
use crate::gather::Tree;
use crate::snapshot::Value;
use crate::stats::histogram::percentile_key;
use crate::tags::split_tags;

/// Panoptes' metrics group schema version.
pub const SCHEMA_VERSION: &str = "0.2";

/// A metrics group: its process (None: the cluster view), group type and dimensions.
type GroupKey<'a> = (Option<&'a Tree>, &'a str, Vec<(String, String)>);

/// A metrics group's process, its metrics and the names (and types) they took.
type Group<'a> = (
    Option<&'a Process>,
    Vec<Json>,
    HashSet<(String, &'static str)>,
);

/// Writes the series' metrics groups as a JSON array.
pub fn write<'a>(
    store: &'a Store,
    series: impl IntoIterator<Item = Series<'a>>,
    out: &mut Vec<u8>,
) {
    let origin = store.origin();
    let last = LastValues::of(store.last(), store.keeps_processes());
    let percentiles = store.last().map(|d| d.format().percentiles.clone());
    let percentiles = percentiles.as_deref().unwrap_or_default();
    let seconds = store.time_stamp() / 1000.0;
    let mut groups: BTreeMap<GroupKey, Group> = BTreeMap::new();
    for s in series {
        let (bare, tags) = split_tags(&s.key.id);
        let mut dimensions: Vec<(String, String)> = (tags.into_iter().flatten())
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (identifier(&k), v.replace('|', "_")))
            .collect();
        dimensions.sort();
        dimensions.dedup_by(|a, b| a.0 == b.0);
        let parts = s.key.path.iter().map(String::as_str).chain([bare]);
        let name = identifier(&parts.collect::<Vec<_>>().join("_"));
        let key = (
            s.process.map(|p| &p.from),
            group_of(origin, s.key),
            dimensions,
        );
        let (process, metrics, seen) = groups.entry(key).or_default();
        *process = s.process;
        let mut metric = |suffix: &str, value: Option<f64>, kind: &'static str| {
            let Some(value) = value.filter(|x| x.is_finite()) else {
                return;
            };
            let name = match suffix {
                "" => name.clone(),
                _ => format!("{name}_{suffix}"),
            };
            if seen.insert((name.clone(), kind)) {
                metrics.push(json!({
                    "metric_creation_timestamp": seconds,
                    "metric_type": kind,
                    "metric_name": name,
                    "metric_value": value,
                }));
            }
        };
        let interval = last.get(s.key, s.process);
        match s.value {
            Cumulative::Counter { total, .. } => metric("", Some(*total), "counter"),
            Cumulative::Gauge(g) => metric("", Some(*g), "gauge"),
            Cumulative::Summary { count, sum, last } => {
                metric("count", Some(*count), "counter");
                metric("sum", Some(*sum), "counter");
                metric("min", last.min(), "gauge");
                metric("max", last.max(), "gauge");
                metric("mean", last.average(), "gauge");
                metric("sigma", last.sigma(), "gauge");
            }
            Cumulative::Histogram(all) => {
                let since_start = all.stats(&[]);
                let count = since_start.count as f64;
                metric("count", Some(count), "counter");
                metric("sum", since_start.mean.map(|m| m * count), "counter");
                if let Some(Value::Histogram(d)) = interval {
                    let stats = d.stats(percentiles);
                    metric("min", stats.min, "gauge");
                    metric("max", stats.max, "gauge");
                    metric("mean", stats.mean, "gauge");
                    metric("stddev", stats.stddev, "gauge");
                    for (p, x) in percentiles.iter().zip(stats.percentiles) {
                        metric(&percentile_key(*p), x, "gauge");
                    }
                }
            }
            Cumulative::Meter { count, last } => {
                metric("count", Some(*count), "counter");
                metric("m1", Some(last.m1), "gauge");
                metric("m5", Some(last.m5), "gauge");
                metric("m15", Some(last.m15), "gauge");
                metric("mean_rate", Some(last.mean_rate), "gauge");
            }
        }
    }
    // Three intervals, in whole seconds.
    let ttl = (3.0 * origin.interval / 1000.0).ceil().max(1.0) as u64;
    let interval = (origin.interval / 1000.0).round().max(1.0) as u64;
    let all: Vec<Json> = (groups.into_iter())
        .filter(|(_, (_, metrics, _))| !metrics.is_empty())
        .map(|((_, group, dimensions), (process, metrics, _))| {
            let dimensions: Vec<Json> = (dimensions.into_iter())
                .map(|(k, v)| json!({ "dimension_name": k, "dimension_value": v }))
                .collect();
            json!({
                "resource": resource(origin, process, seconds, ttl),
                "dimensions": dimensions,
                "metrics": metrics,
                "metrics_group_type": group,
                "metrics_group_schema_version": SCHEMA_VERSION,
                "metrics_group_creation_timestamp": seconds,
                "metrics_group_interval": interval,
            })
        })
        .collect();
    serde_json::to_writer(out, &all).expect("writing to a Vec cannot fail");
}

/// The resource of a process (None: the cluster view, served by the origin's process).
fn resource(origin: &Origin, process: Option<&Process>, seconds: f64, ttl: u64) -> Json {
    let pid = process.map_or(origin.pid, |p| p.pid);
    let mut id = format!("{}:{pid}", origin.host);
    let mut metadata = Map::new();
    let mut meta = |key: &str, value: String| {
        if !value.is_empty() {
            metadata.insert(key.into(), Json::from(value.replace('|', "_")));
        }
    };
    meta("_resource_ttl", ttl.to_string());
    meta("title", origin.title.clone());
    meta("pid", pid.to_string());
    meta("name", origin.name.clone());
    if let Some(p) = process {
        meta(
            "worker",
            p.worker().map(|w| w.to_string()).unwrap_or_default(),
        );
        if let Tree::Thread(label) = &p.from {
            meta("thread", label.clone());
            id = format!("{id}/{label}");
        }
    }
    json!({
        "resource_id": id,
        "resource_site": origin.host,
        "resource_endpoint": origin.host,
        "resource_class": "application",
        "resource_subclass": "node",
        "resource_type": process.map_or("cluster", |p| p.role()),
        "resource_creation_plugin": "panoptic",
        "resource_plugin": "panoptic",
        "resource_creation_timestamp": seconds,
        "resource_metadata": metadata,
        "ttl": ttl,
    })
}

/// `text` as a Panoptes name: ASCII letters, digits and `_`, not starting with a digit.
fn identifier(text: &str) -> String {
    let mut name: String = (text.chars())
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert(0, '_');
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::view::fixture::{counter, key, Fixture};
    use crate::stats::histogram::{Distribution, HistogramOptions};
    use crate::stats::meter::MeterStats;
    use crate::stats::summary::Summary;

    fn groups(f: &Fixture) -> Vec<Json> {
        let mut out = Vec::new();
        write(&f.store, f.store.series(), &mut out);
        serde_json::from_slice(&out).unwrap()
    }

    const T: f64 = 1_700_000_002.0;

    fn metric(name: &str, kind: &str, value: f64) -> Json {
        json!({ "metric_creation_timestamp": T, "metric_type": kind, "metric_name": name,
                "metric_value": value })
    }

    #[test]
    fn a_metrics_group_per_group_and_tags() {
        let mut f = Fixture::new(false);
        let mut s = Summary::default();
        [1.0, 3.0].iter().for_each(|&x| s.push(x));
        let mut h = Distribution::new(&HistogramOptions::default(), 1);
        h.record_all(&[2.0, 4.0], 0.0);
        let meter = MeterStats {
            count: 12.0,
            mean_rate: 1.5,
            m1: 0.5,
            m5: 0.25,
            m15: 0.125,
        };
        let get = key("inc", &["http"], r#"requests{method="GET",path="/a|b"}"#);
        f.deliver(&[(get.clone(), counter(4.0))], &[]);
        f.deliver(
            &[
                (get, counter(6.0)),
                (
                    key("inc", &["http"], r#"requests{method="POST"}"#),
                    counter(1.0),
                ),
                (key("gauge", &["http"], "open-now"), Value::Gauge(Some(3.5))),
                (key("gauge", &["http"], "broken"), Value::Gauge(None)),
                (key("sample", &["http"], "size"), Value::Summary(s)),
                (
                    key("histogram", &["http"], "time"),
                    Value::Histogram(Box::new(h)),
                ),
                (key("meter", &[], "9hits"), Value::Meter(meter)),
            ],
            &[],
        );
        let all = groups(&f);
        assert_eq!(all.len(), 4, "{all:#?}");
        let resource = json!({
            "resource_id": "box:10",
            "resource_site": "box",
            "resource_endpoint": "box",
            "resource_class": "application",
            "resource_subclass": "node",
            "resource_type": "cluster",
            "resource_creation_plugin": "panoptic",
            "resource_plugin": "panoptic",
            "resource_creation_timestamp": T,
            "resource_metadata": { "_resource_ttl": "3", "title": "node", "pid": "10" },
            "ttl": 3,
        });
        let group = |kind: &str, dimensions: Json, metrics: Json| {
            json!({
                "resource": resource,
                "dimensions": dimensions,
                "metrics": metrics,
                "metrics_group_type": kind,
                "metrics_group_schema_version": "0.2",
                "metrics_group_creation_timestamp": T,
                "metrics_group_interval": 1,
            })
        };
        let dimension =
            |name: &str, value: &str| json!({ "dimension_name": name, "dimension_value": value });
        assert_eq!(
            all,
            vec![
                group(
                    "default",
                    json!([]),
                    json!([
                        metric("_9hits_count", "counter", 12.0),
                        metric("_9hits_m1", "gauge", 0.5),
                        metric("_9hits_m5", "gauge", 0.25),
                        metric("_9hits_m15", "gauge", 0.125),
                        metric("_9hits_mean_rate", "gauge", 1.5),
                    ])
                ),
                group(
                    "http",
                    json!([]),
                    json!([
                        metric("http_open_now", "gauge", 3.5),
                        metric("http_size_count", "counter", 2.0),
                        metric("http_size_sum", "counter", 4.0),
                        metric("http_size_min", "gauge", 1.0),
                        metric("http_size_max", "gauge", 3.0),
                        metric("http_size_mean", "gauge", 2.0),
                        metric("http_size_sigma", "gauge", std::f64::consts::SQRT_2),
                        metric("http_time_count", "counter", 2.0),
                        metric("http_time_sum", "counter", 6.0),
                        metric("http_time_min", "gauge", 2.0),
                        metric("http_time_max", "gauge", 4.0),
                        metric("http_time_mean", "gauge", 3.0),
                        metric("http_time_stddev", "gauge", std::f64::consts::SQRT_2),
                        metric("http_time_p50", "gauge", 2.0),
                        metric("http_time_p999", "gauge", 4.0),
                    ])
                ),
                group(
                    "http",
                    json!([dimension("method", "GET"), dimension("path", "/a_b")]),
                    json!([metric("http_requests", "counter", 10.0)])
                ),
                group(
                    "http",
                    json!([dimension("method", "POST")]),
                    json!([metric("http_requests", "counter", 1.0)])
                ),
            ]
        );
    }

    #[test]
    fn each_process_is_a_resource() {
        let mut f = Fixture::named("web", true);
        let a = key("gauge", &["db"], "a");
        f.deliver(
            &[(a.clone(), Value::Gauge(Some(1.0)))],
            &[(a, Value::Gauge(Some(2.0)))],
        );
        let all = groups(&f);
        let summary: Vec<_> = (all.iter())
            .map(|g| {
                let r = &g["resource"];
                (
                    r["resource_type"].as_str().unwrap(),
                    r["resource_id"].as_str().unwrap(),
                    g["metrics_group_type"].as_str().unwrap(),
                    g["metrics"][0]["metric_value"].as_f64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("cluster", "box:10", "web", 3.0),
                ("master", "box:10", "web", 1.0),
                ("worker", "box:11", "web", 2.0),
            ]
        );
        assert_eq!(
            all[2]["resource"]["resource_metadata"],
            json!({ "_resource_ttl": "3", "title": "node", "pid": "11", "name": "web",
                    "worker": "1" })
        );
        assert_eq!(all[0]["metrics"][0]["metric_name"], "db_a");
    }

    #[test]
    fn names_become_identifiers_and_nothing_is_written_before_a_delivery() {
        assert_eq!(identifier("a.b-c d"), "a_b_c_d");
        assert_eq!(identifier("9x"), "_9x");
        assert_eq!(identifier(""), "_");
        assert_eq!(identifier("żółw"), "___w");
        let f = Fixture::new(false);
        assert_eq!(groups(&f), Vec::<Json>::new());
    }
}
