//! Pandora.js's metrics routes (`pandora-metrics` 1.10.6): `GET /metrics/list`,
//! `/metrics/list/:group` and `/metrics/:group`, written from the store.
//!
//! Every answer is Pandora's envelope `{ data, timestamp, success: true, message: "" }`
//! (`timestamp`: when it was written, epoch ms); an unknown group answers
//! `{ success: false, timestamp, message }` (with status 200, as Pandora's `ctx.fail`).
//!
//! `?appName=` is Pandora's `AppNameFilter`: a series tagged `appName` with another value is left
//! out; one tagged with that value, or without an `appName` tag (or with an empty one), is kept.
//! Which groups exist does not depend on it (a group whose series are all left out is listed
//! with no metrics), as in Pandora.
//!
//! Groups: Pandora groups its metrics (`client.getCounter('http', ...)`); here a series'
//! group is the instance's `name` when it has one (all of its series in one group), else the
//! series' first path element, else (no path) `default`.
//!
//! Each series becomes Pandora metric objects `{ metric, timestamp, value, type, level, tags,
//! interval }`: `metric` is the path and the bare id joined with `.` (the id's tags go to
//! `tags`, a tag named `worker` as `exported_worker`; a process's own series have the tag
//! `worker`: `master`, the cluster worker id or a thread's label), `level` is always
//! `NORMAL`, `timestamp` is the end of the last delivered interval (epoch ms) and `interval`
//! is -1, except on the bucket metrics of `inc`. By kind, as Pandora's collector writes them:
//! | kind | metrics (type) |
//! | --- | --- |
//! | `inc` (Pandora's BucketCounter) | `<name>.count` (COUNTER: the sum since the start; a name that already ends in `count` is kept as is), `<name>.bucket_count` (DELTA: the last interval's sum) and `<name>.qps` (GAUGE: that per second), the last two with `interval` = the interval in seconds and `timestamp` = the interval's start |
//! | `gauge`, `rate`, numeric `set` | `<name>` (GAUGE) |
//! | `sample`, `timedSample` | `<name>.count` (COUNTER, since the start), `.max`, `.min`, `.mean`, `.stddev` (GAUGE, the last interval that had values) |
//! | `histogram` | `<name>.count` (COUNTER, since the start), `.max`, `.min`, `.mean`, `.stddev`, `.median`, `.p75`, `.p95`, `.p99` (GAUGE, the last delivered interval) |
//! | `meter` | `<name>.count` (COUNTER), `.m1`, `.m5`, `.m15` (GAUGE, events per second) |
//!
//! A meter has no `.qps` here: Pandora's is the count of its last time bucket, which panoptic's
//! meters do not keep (`.m1` is the nearest). As Pandora does, a metric without a number (a
//! failed gauge, a statistic of an empty interval) is left out. `/metrics/list` lists the
//! objects without `value` and `timestamp`, by group: `{ group: [...] }`.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value as Json};

use super::view::{group_of, own_tag_key, LastValues, WORKER};
use super::{Cumulative, Series, Store};
use crate::snapshot::{SeriesKey, Value};
use crate::tags::{split_tags, tag_value};

/// The percentiles of a histogram's `.median`, `.p75`, `.p95` and `.p99`.
const PERCENTILES: [(f64, &str); 4] = [
    (50.0, "median"),
    (75.0, "p75"),
    (95.0, "p95"),
    (99.0, "p99"),
];

/// The message of an unknown group's answer (Pandora's).
pub const GROUP_NOT_FOUND: &str = "The specified group is not found!";

/// The tag Pandora's `?appName=` compares.
const APP_NAME: &str = "appName";

/// Whether a series passes Pandora's `AppNameFilter` for `app` (None: no `?appName=`, or an
/// empty one, which Pandora ignores): Pandora keeps a metric unless its `appName` tag is set
/// (a non-empty string) to another application.
fn app_passes(app: Option<&str>, key: &SeriesKey) -> bool {
    let Some(app) = app else { return true };
    tag_value(&key.id, APP_NAME).is_none_or(|tagged| tagged.is_empty() || tagged == app)
}

/// `GET /metrics/list` (`group` None) and `/metrics/list/:group`: each group's metrics without
/// their values, those of other applications left out when `app` is given (`?appName=`). An
/// unknown group gives `data: {}`, as in Pandora.
pub fn list<'a>(
    store: &Store,
    series: impl IntoIterator<Item = Series<'a>>,
    group: Option<&str>,
    app: Option<&str>,
    out: &mut Vec<u8>,
) {
    let mut groups: std::collections::BTreeMap<&str, Vec<u8>> = Default::default();
    let last = LastValues::of(store.last(), store.keeps_processes());
    let origin = store.origin();
    for s in series {
        let name = group_of(origin, s.key);
        if group.is_some_and(|g| g != name) {
            continue;
        }
        // The group is listed even when `app` leaves all of its series out (Pandora lists every
        // group it has).
        let objects = groups.entry(name).or_default();
        if app_passes(app, s.key) {
            objects_of(store, &last, &s, false, objects);
        }
    }
    let mut data = Vec::with_capacity(groups.values().map(Vec::len).sum::<usize>() + 64);
    data.push(b'{');
    for (i, (name, objects)) in groups.iter().enumerate() {
        if i > 0 {
            data.push(b',');
        }
        write_json(&Json::from(*name), &mut data);
        data.extend_from_slice(b":[");
        // Each object was written with a leading comma.
        data.extend_from_slice(objects.get(1..).unwrap_or_default());
        data.push(b']');
    }
    data.push(b'}');
    envelope(&data, out);
}

/// `GET /metrics/:group`: the group's metric objects, those of other applications left out when
/// `app` is given (`?appName=`). Writes Pandora's failure envelope with [`GROUP_NOT_FOUND`] when
/// no series is in the group (whatever `app` says: a group all of whose series are left out
/// answers `data: []`, as in Pandora).
pub fn group<'a>(
    store: &Store,
    series: impl IntoIterator<Item = Series<'a>>,
    group: &str,
    app: Option<&str>,
    out: &mut Vec<u8>,
) {
    let last = LastValues::of(store.last(), store.keeps_processes());
    let origin = store.origin();
    let mut objects = Vec::new();
    let mut found = false;
    for s in series
        .into_iter()
        .filter(|s| group_of(origin, s.key) == group)
    {
        found = true;
        if app_passes(app, s.key) {
            objects_of(store, &last, &s, true, &mut objects);
        }
    }
    if !found {
        failure(GROUP_NOT_FOUND, out);
        return;
    }
    let mut data = Vec::with_capacity(objects.len() + 2);
    data.push(b'[');
    data.extend_from_slice(objects.get(1..).unwrap_or_default());
    data.push(b']');
    envelope(&data, out);
}

/// Pandora's failure answer: `{ success: false, timestamp, message }`.
pub fn failure(message: &str, out: &mut Vec<u8>) {
    let _ = write!(
        out,
        "{{\"success\":false,\"timestamp\":{},\"message\":",
        now()
    );
    write_json(&Json::from(message), out);
    out.push(b'}');
}

fn envelope(data: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"data\":");
    out.extend_from_slice(data);
    let _ = write!(
        out,
        ",\"timestamp\":{},\"success\":true,\"message\":\"\"}}",
        now()
    );
}

/// Epoch ms now.
fn now() -> u64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH);
    since.map_or(0, |d| d.as_millis() as u64)
}

fn write_json(value: &Json, out: &mut Vec<u8>) {
    serde_json::to_writer(out, value).expect("writing to a Vec cannot fail");
}

/// A number as JSON: whole numbers without a fraction (as JS prints them).
fn number(x: f64) -> Json {
    if x.fract() == 0.0 && x.abs() < 9_007_199_254_740_992.0 {
        Json::from(x as i64)
    } else {
        Json::from(x)
    }
}

/// Appends the series' metric objects, each with a leading comma (`values`: with `value` and
/// `timestamp`).
fn objects_of(store: &Store, last: &LastValues, series: &Series, values: bool, out: &mut Vec<u8>) {
    let key = series.key;
    let (bare, own) = split_tags(&key.id);
    let mut name = key.path.join(".");
    if !name.is_empty() {
        name.push('.');
    }
    name.push_str(bare);
    let mut tags = Map::new();
    for (k, v) in own.into_iter().flatten() {
        tags.insert(own_tag_key(&k).to_string(), Json::from(v));
    }
    if let Some(process) = series.process {
        tags.insert(WORKER.to_string(), Json::from(process.label()));
    }
    let tags = Json::Object(tags);
    let end = store.time_stamp();
    let interval_ms = store.origin().interval;
    let object = |suffix: &str, value: Option<f64>, kind: &str, bucket: bool, out: &mut Vec<u8>| {
        let Some(value) = value.filter(|x| x.is_finite()) else {
            return;
        };
        let metric = match suffix {
            "" => name.clone(),
            _ => format!("{name}.{suffix}"),
        };
        out.extend_from_slice(b",{\"metric\":");
        write_json(&Json::from(metric), out);
        if values {
            let timestamp = if bucket { end - interval_ms } else { end };
            out.extend_from_slice(b",\"timestamp\":");
            write_json(&number(timestamp), out);
            out.extend_from_slice(b",\"value\":");
            write_json(&number(value), out);
        }
        let _ = write!(out, ",\"type\":\"{kind}\",\"level\":\"NORMAL\",\"tags\":");
        write_json(&tags, out);
        let interval = if bucket { interval_ms / 1000.0 } else { -1.0 };
        out.extend_from_slice(b",\"interval\":");
        write_json(&number(interval), out);
        out.push(b'}');
    };
    let interval_value = last.get(key, series.process);
    match series.value {
        Cumulative::Counter { total, .. } => {
            let count = if bare.ends_with("count") { "" } else { "count" };
            object(count, Some(*total), "COUNTER", false, out);
            let increase = match interval_value {
                Some(Value::Counter { total, .. }) => *total,
                _ => 0.0,
            };
            object("bucket_count", Some(increase), "DELTA", true, out);
            let qps = increase * 1000.0 / interval_ms;
            object("qps", Some(qps), "GAUGE", true, out);
        }
        Cumulative::Gauge(g) => object("", Some(*g), "GAUGE", false, out),
        Cumulative::Summary { count, last, .. } => {
            object("count", Some(*count), "COUNTER", false, out);
            object("max", last.max(), "GAUGE", false, out);
            object("min", last.min(), "GAUGE", false, out);
            object("mean", last.average(), "GAUGE", false, out);
            object("stddev", last.sigma(), "GAUGE", false, out);
        }
        Cumulative::Histogram(all) => {
            object("count", Some(all.count() as f64), "COUNTER", false, out);
            if let Some(Value::Histogram(d)) = interval_value {
                let stats = d.stats(&PERCENTILES.map(|(p, _)| p));
                object("max", stats.max, "GAUGE", false, out);
                object("min", stats.min, "GAUGE", false, out);
                object("mean", stats.mean, "GAUGE", false, out);
                object("stddev", stats.stddev, "GAUGE", false, out);
                for ((_, suffix), x) in PERCENTILES.iter().zip(stats.percentiles) {
                    object(suffix, x, "GAUGE", false, out);
                }
            }
        }
        Cumulative::Meter { count, last } => {
            object("count", Some(*count), "COUNTER", false, out);
            object("m1", Some(last.m1), "GAUGE", false, out);
            object("m5", Some(last.m5), "GAUGE", false, out);
            object("m15", Some(last.m15), "GAUGE", false, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::view::fixture::{counter, key, Fixture};
    use crate::stats::histogram::{Distribution, HistogramOptions};
    use crate::stats::meter::MeterStats;
    use crate::stats::summary::Summary;
    use serde_json::json;

    fn parse(out: &[u8]) -> Json {
        serde_json::from_slice(out).unwrap()
    }

    /// Checks the envelope (its timestamp is now) and returns its data.
    fn data(out: &[u8]) -> Json {
        let before = now();
        let mut body = parse(out);
        let map = body.as_object_mut().unwrap();
        let mut keys: Vec<_> = map.keys().cloned().collect();
        keys.sort();
        assert_eq!(keys, ["data", "message", "success", "timestamp"]);
        assert_eq!(map["success"], true);
        assert_eq!(map["message"], "");
        let t = map["timestamp"].as_u64().unwrap();
        assert!(t <= before && t + 60_000 > before, "{t} {before}");
        map.remove("data").unwrap()
    }

    #[test]
    fn every_kind_becomes_pandora_objects() {
        let mut f = Fixture::new(false);
        let mut s = Summary::default();
        [1.0, 3.0].iter().for_each(|&x| s.push(x));
        let mut h = Distribution::new(&HistogramOptions::default(), 1);
        h.record_all(&(1..=100).map(f64::from).collect::<Vec<_>>(), 0.0);
        let meter = MeterStats {
            count: 12.0,
            mean_rate: 1.5,
            m1: 0.5,
            m5: 0.25,
            m15: 0.125,
        };
        let requests = key("inc", &["http"], r#"requests{method="GET"}"#);
        f.deliver(&[(requests.clone(), counter(4.0))], &[]);
        f.deliver(
            &[
                (requests.clone(), counter(6.0)),
                (key("inc", &["http"], "errorcount"), counter(1.0)),
                (key("gauge", &["http"], "open"), Value::Gauge(Some(3.5))),
                (key("gauge", &["http"], "broken"), Value::Gauge(None)),
                (key("sample", &["http"], "size"), Value::Summary(s)),
                (
                    key("histogram", &["http"], "time"),
                    Value::Histogram(Box::new(h)),
                ),
                (key("meter", &["http"], "hits"), Value::Meter(meter)),
                (key("gauge", &["db"], "pool"), Value::Gauge(Some(1.0))),
            ],
            &[],
        );
        let mut out = Vec::new();
        group(&f.store, f.store.series(), "http", None, &mut out);
        let objects = data(&out);
        let t = 1_700_000_002_000u64;
        let object = |metric: &str, value: Json, kind: &str| {
            json!({ "metric": metric, "timestamp": t, "value": value, "type": kind,
                    "level": "NORMAL", "tags": {}, "interval": -1 })
        };
        let bucket = |metric: &str, value: Json, kind: &str, tags: Json| {
            json!({ "metric": metric, "timestamp": t - 1000, "value": value, "type": kind,
                    "level": "NORMAL", "tags": tags, "interval": 1 })
        };
        let get = json!({ "method": "GET" });
        let mut requests_count = object("http.requests.count", json!(10), "COUNTER");
        requests_count["tags"] = get.clone();
        assert_eq!(
            objects,
            json!([
                requests_count,
                bucket("http.requests.bucket_count", json!(6), "DELTA", get.clone()),
                bucket("http.requests.qps", json!(6), "GAUGE", get),
                object("http.errorcount", json!(1), "COUNTER"),
                bucket("http.errorcount.bucket_count", json!(1), "DELTA", json!({})),
                bucket("http.errorcount.qps", json!(1), "GAUGE", json!({})),
                object("http.open", json!(3.5), "GAUGE"),
                // http.broken: no number, no object.
                object("http.size.count", json!(2), "COUNTER"),
                object("http.size.max", json!(3), "GAUGE"),
                object("http.size.min", json!(1), "GAUGE"),
                object("http.size.mean", json!(2), "GAUGE"),
                object("http.size.stddev", json!(std::f64::consts::SQRT_2), "GAUGE"),
                object("http.time.count", json!(100), "COUNTER"),
                object("http.time.max", json!(100), "GAUGE"),
                object("http.time.min", json!(1), "GAUGE"),
                object("http.time.mean", json!(50.5), "GAUGE"),
                object("http.time.stddev", json!(29.011491975882016), "GAUGE"),
                // HDR's answers (3 significant figures, from 0.001).
                object("http.time.median", json!(50.015), "GAUGE"),
                object("http.time.p75", json!(75.007), "GAUGE"),
                object("http.time.p95", json!(95.039), "GAUGE"),
                object("http.time.p99", json!(99.007), "GAUGE"),
                object("http.hits.count", json!(12), "COUNTER"),
                object("http.hits.m1", json!(0.5), "GAUGE"),
                object("http.hits.m5", json!(0.25), "GAUGE"),
                object("http.hits.m15", json!(0.125), "GAUGE"),
            ])
        );
    }

    #[test]
    fn lists_by_group_without_values() {
        let mut f = Fixture::new(true);
        let a = key("gauge", &["db"], "a");
        let b = key("gauge", &[], "b");
        f.deliver(
            &[
                (a.clone(), Value::Gauge(Some(1.0))),
                (b, Value::Gauge(Some(2.0))),
            ],
            &[(a, Value::Gauge(Some(3.0)))],
        );
        let object = |metric: &str, tags: Json| {
            json!({ "metric": metric, "type": "GAUGE", "level": "NORMAL", "tags": tags,
                    "interval": -1 })
        };
        let mut out = Vec::new();
        list(&f.store, f.store.series(), None, None, &mut out);
        assert_eq!(
            data(&out),
            json!({
                "db": [
                    object("db.a", json!({})),
                    object("db.a", json!({ "worker": "master" })),
                    object("db.a", json!({ "worker": "1" })),
                ],
                "default": [object("b", json!({})), object("b", json!({ "worker": "master" }))],
            })
        );
        let mut out = Vec::new();
        let cluster = f.store.series().filter(|s| s.process.is_none());
        list(&f.store, cluster, Some("default"), None, &mut out);
        assert_eq!(data(&out), json!({ "default": [object("b", json!({}))] }));
        let mut out = Vec::new();
        list(&f.store, f.store.series(), Some("nope"), None, &mut out);
        assert_eq!(data(&out), json!({}));
    }

    #[test]
    fn a_named_instance_is_one_group_and_unknown_groups_fail() {
        let mut f = Fixture::named("web", false);
        f.deliver(
            &[(key("gauge", &["db"], "a"), Value::Gauge(Some(1.0)))],
            &[],
        );
        let mut out = Vec::new();
        group(&f.store, f.store.series(), "web", None, &mut out);
        assert_eq!(data(&out)[0]["metric"], "db.a");
        let not_found = |out: &[u8]| {
            let body = parse(out);
            assert_eq!(body["success"], false);
            assert_eq!(body["message"], GROUP_NOT_FOUND);
            assert!(body["timestamp"].as_u64().unwrap() > 1_600_000_000_000);
            assert_eq!(body.as_object().unwrap().len(), 3);
        };
        let mut out = Vec::new();
        group(&f.store, f.store.series(), "db", None, &mut out);
        not_found(&out);
        // Before any delivery every group is unknown.
        let empty = Fixture::new(false);
        let mut out = Vec::new();
        group(&empty.store, empty.store.series(), "db", None, &mut out);
        not_found(&out);
    }

    /// Pandora's `AppNameFilter`: another application's series are left out; the application's
    /// own and untagged ones (or tagged with an empty name) are kept; groups stay.
    #[test]
    fn app_name_leaves_out_other_applications() {
        let mut f = Fixture::new(false);
        let gauge = |path: &[&str], id: &str| (key("gauge", path, id), Value::Gauge(Some(1.0)));
        f.deliver(
            &[
                gauge(&["system"], r#"a{appName="app1"}"#),
                gauge(&["system"], r#"b{appName="app2",host="h"}"#),
                gauge(&["system"], "c"),
                gauge(&["system"], r#"d{appName=""}"#),
                gauge(&["other"], r#"e{appName="app2"}"#),
            ],
            &[],
        );
        let metrics = |body: &Json| -> Vec<String> {
            let objects = body.as_array().unwrap();
            objects
                .iter()
                .map(|o| o["metric"].as_str().unwrap().to_string())
                .collect()
        };
        let mut out = Vec::new();
        group(&f.store, f.store.series(), "system", Some("app1"), &mut out);
        assert_eq!(metrics(&data(&out)), ["system.a", "system.c", "system.d"]);
        let mut out = Vec::new();
        group(&f.store, f.store.series(), "system", Some("app2"), &mut out);
        assert_eq!(metrics(&data(&out)), ["system.b", "system.c", "system.d"]);
        let mut out = Vec::new();
        group(&f.store, f.store.series(), "system", None, &mut out);
        assert_eq!(metrics(&data(&out)).len(), 4);
        // The group exists: everything left out is `data: []`, not "not found".
        let mut out = Vec::new();
        group(&f.store, f.store.series(), "other", Some("app1"), &mut out);
        assert_eq!(data(&out), json!([]));
        let mut out = Vec::new();
        list(&f.store, f.store.series(), None, Some("app1"), &mut out);
        let listed = data(&out);
        assert_eq!(listed["other"], json!([]));
        assert_eq!(
            metrics(&listed["system"]),
            ["system.a", "system.c", "system.d"]
        );
        let mut out = Vec::new();
        list(
            &f.store,
            f.store.series(),
            Some("other"),
            Some("app2"),
            &mut out,
        );
        assert_eq!(metrics(&data(&out)["other"]), ["other.e"]);
    }
}
