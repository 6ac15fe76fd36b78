use std::sync::Arc;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::{metric::Data, number_data_point, Metric};
use prost::Message;

use super::*;
use crate::export::{Origin, Store};
use crate::gather::{Gathering, Source};
use crate::snapshot::{SeriesKey, Value};
use crate::stats::histogram::{Distribution, HistogramOptions};
use crate::testing::{counter, key, summary};
use crate::wire::{encode as wire, Keys};

type Series = Vec<(Arc<SeriesKey>, Value)>;

/// A master (pid 10) with workers: intervals of 1 s, interval k ending at 1_700_000_001_000 +
/// k s.
struct Cluster {
    gathering: Gathering,
    store: Store,
    k: f64,
    starts: Starts,
}

const T0: u64 = 1_700_000_000_000;

impl Cluster {
    fn new(name: &str) -> Cluster {
        let origin = Origin {
            name: name.into(),
            host: "box".into(),
            title: "node".into(),
            pid: 10,
            interval: 1000.0,
            scale_factor: 1.0,
            ..Origin::default()
        };
        let mut store = Store::new(origin);
        store.keep_processes();
        Cluster {
            gathering: Gathering::default(),
            store,
            k: 0.0,
            starts: Starts::default(),
        }
    }

    /// Delivers the next interval: the master's series and each worker's (by id).
    fn deliver(&mut self, master: Series, workers: &[(u32, Series)]) -> Delivery {
        let k = self.k;
        self.k += 1.0;
        self.gathering
            .keep_local(crate::testing::snapshot(k, 10, master), &[]);
        for (id, series) in workers {
            let snapshot = crate::testing::snapshot(k, 10 + id, series.clone());
            let text = wire(&snapshot, Keys::All { epoch: 1 });
            (self.gathering.receive(Source::Worker(*id), &text, k)).unwrap();
        }
        let stamp = T0 as f64 + (k + 1.0) * 1000.0;
        let format = crate::testing::format(1000.0, 1.0, stamp, &[50.0]);
        let delivery = self.gathering.deliver(k, format);
        self.store.add(&delivery);
        delivery
    }

    /// A worker exits (as the exporter hears of it).
    fn forget(&mut self, worker: u32) {
        self.gathering.forget_worker(worker);
        self.store.forget_worker(worker);
    }

    fn push(&mut self, delivery: &Delivery, encoding: &Encoding) -> Vec<ResourceMetrics> {
        messages(&self.store, delivery, encoding, &mut self.starts)
    }
}

fn ms(t: u64) -> u64 {
    t * 1_000_000
}

fn encoding(temporality: Temporality, per_process: bool) -> Encoding {
    Encoding {
        temporality,
        per_process,
        ..Encoding::default()
    }
}

/// A resource's attribute as text.
fn attribute(rm: &ResourceMetrics, name: &str) -> Option<String> {
    let resource = rm.resource.as_ref()?;
    let kv = resource.attributes.iter().find(|kv| kv.key == name)?;
    match kv.value.as_ref()?.value.as_ref()? {
        any_value::Value::StringValue(s) => Some(s.clone()),
        any_value::Value::IntValue(i) => Some(i.to_string()),
        _ => None,
    }
}

fn metric<'a>(rm: &'a ResourceMetrics, name: &str) -> &'a Metric {
    let metrics = &rm.scope_metrics[0].metrics;
    (metrics.iter().find(|m| m.name == name)).unwrap_or_else(|| panic!("no {name}"))
}

/// A Sum's only point: (value, start, time, temporality).
fn sum(m: &Metric) -> (f64, u64, u64, i32) {
    let Some(Data::Sum(s)) = &m.data else {
        panic!("{} is not a sum", m.name)
    };
    assert!(s.is_monotonic);
    assert_eq!(s.data_points.len(), 1);
    let p = &s.data_points[0];
    let Some(number_data_point::Value::AsDouble(x)) = p.value else {
        panic!("no value")
    };
    (
        x,
        p.start_time_unix_nano,
        p.time_unix_nano,
        s.aggregation_temporality,
    )
}

#[test]
fn counters_are_monotonic_sums_cumulative_from_the_first_interval() {
    let mut c = Cluster::new("web");
    let enc = encoding(Temporality::Cumulative, false);
    let n = || key("inc", &["http"], "requests");
    let d = c.deliver(vec![(n(), counter(2.0))], &[(1, vec![(n(), counter(3.0))])]);
    let out = c.push(&d, &enc);
    assert_eq!(out.len(), 1, "the cluster view only");
    assert_eq!(attribute(&out[0], "service.name").as_deref(), Some("web"));
    assert_eq!(attribute(&out[0], "process.pid").as_deref(), Some("10"));
    assert_eq!(attribute(&out[0], "host.name").as_deref(), Some("box"));
    assert_eq!(attribute(&out[0], "panoptic.worker"), None);
    let cumulative = AggregationTemporality::Cumulative as i32;
    assert_eq!(
        sum(metric(&out[0], "http.requests")),
        (5.0, ms(T0), ms(T0 + 1000), cumulative)
    );
    // An interval without the series: cumulative points go on (the store's state).
    let d = c.deliver(vec![], &[]);
    let out = c.push(&d, &enc);
    assert_eq!(
        sum(metric(&out[0], "http.requests")),
        (5.0, ms(T0), ms(T0 + 2000), cumulative)
    );
    let d = c.deliver(vec![(n(), counter(1.0))], &[]);
    let out = c.push(&d, &enc);
    assert_eq!(
        sum(metric(&out[0], "http.requests")),
        (6.0, ms(T0), ms(T0 + 3000), cumulative)
    );
}

#[test]
fn delta_and_cumulative_stay_right_across_a_worker_restart() {
    let n = || key("inc", &[], "jobs");
    for temporality in [Temporality::Cumulative, Temporality::Delta] {
        let mut c = Cluster::new("");
        let enc = encoding(temporality, true);
        let mut pushed: Vec<Vec<ResourceMetrics>> = Vec::new();
        let d = c.deliver(vec![], &[(1, vec![(n(), counter(4.0))])]);
        pushed.push(c.push(&d, &enc));
        // Worker 1 dies after its last interval; worker 2 replaces it, starting from 0.
        let d = c.deliver(vec![], &[(1, vec![(n(), counter(1.0))])]);
        pushed.push(c.push(&d, &enc));
        c.forget(1);
        let d = c.deliver(vec![], &[(2, vec![(n(), counter(2.0))])]);
        pushed.push(c.push(&d, &enc));
        let d = c.deliver(vec![], &[(2, vec![(n(), counter(3.0))])]);
        pushed.push(c.push(&d, &enc));
        let cluster: Vec<f64> = (pushed.iter())
            .map(|out| {
                let view = out
                    .iter()
                    .find(|rm| attribute(rm, "panoptic.worker").is_none());
                sum(metric(view.unwrap(), "jobs")).0
            })
            .collect();
        let worker = |out: &[ResourceMetrics], w: &str| {
            (out.iter())
                .find(|rm| attribute(rm, "panoptic.worker").as_deref() == Some(w))
                .map(|rm| sum(metric(rm, "jobs")))
        };
        match temporality {
            Temporality::Cumulative => {
                // Never down, and the whole count at the end.
                assert_eq!(cluster, [4.0, 5.0, 7.0, 10.0]);
                // Worker 2's own series starts with its first interval, at 0.
                let (x, start, _, _) = worker(&pushed[3], "2").unwrap();
                assert_eq!((x, start), (5.0, ms(T0 + 2000)));
                assert_eq!(worker(&pushed[3], "1"), None);
                let (x, start, _, _) = worker(&pushed[1], "1").unwrap();
                assert_eq!((x, start), (5.0, ms(T0)));
            }
            Temporality::Delta => {
                // Each interval's own increments: they add up to the whole count.
                assert_eq!(cluster, [4.0, 1.0, 2.0, 3.0]);
                let (x, start, time, t) = worker(&pushed[2], "2").unwrap();
                assert_eq!((x, start, time), (2.0, ms(T0 + 2000), ms(T0 + 3000)));
                assert_eq!(t, AggregationTemporality::Delta as i32);
            }
        }
        // Each process is a resource of its own, its pid and worker id in it.
        let rm = (pushed[3].iter())
            .find(|rm| attribute(rm, "panoptic.worker").as_deref() == Some("2"))
            .unwrap();
        assert_eq!(attribute(rm, "process.pid").as_deref(), Some("12"));
        assert_eq!(
            attribute(rm, "service.name").as_deref(),
            Some("unknown_service:node")
        );
        assert_eq!(
            attribute(rm, "service.instance.id").as_deref(),
            Some("box:10:2")
        );
    }
}

#[test]
fn gauges_summaries_meters_and_tags() {
    let mut c = Cluster::new("web");
    let g = key("set", &["pool"], "size{zone=\"a\"}");
    let failed = key("gauge", &["pool"], "broken");
    let s = key("timedSample", &["db"], "query");
    let m = key("meter", &[], "hits");
    let meter = Value::Meter(crate::stats::meter::MeterStats {
        count: 9.0,
        m1: 1.5,
        m5: 1.25,
        m15: 1.0,
        mean_rate: 2.0,
    });
    let master = vec![
        (
            g.clone(),
            Value::Set {
                json: "12".into(),
                at: 0.0,
            },
        ),
        (failed.clone(), Value::Gauge(None)),
        (s.clone(), summary(&[2.0, 4.0, 9.0])),
        (m.clone(), meter),
    ];
    let d = c.deliver(master, &[]);
    for temporality in [Temporality::Cumulative, Temporality::Delta] {
        let out = messages(
            &c.store,
            &d,
            &encoding(temporality, false),
            &mut Starts::default(),
        );
        let rm = &out[0];
        let Some(Data::Gauge(gauge)) = &metric(rm, "pool.size").data else {
            panic!()
        };
        let p = &gauge.data_points[0];
        assert_eq!(p.value, Some(number_data_point::Value::AsDouble(12.0)));
        assert_eq!(p.attributes[0].key, "zone");
        // A gauge whose function failed: no value, flagged.
        let Some(Data::Gauge(gauge)) = &metric(rm, "pool.broken").data else {
            panic!()
        };
        assert_eq!(gauge.data_points[0].value, None);
        assert_eq!(gauge.data_points[0].flags, 1);
        let q = metric(rm, "db.query");
        assert_eq!(q.unit, "ms");
        let Some(Data::Summary(summary)) = &q.data else {
            panic!()
        };
        let p = &summary.data_points[0];
        assert_eq!((p.count, p.sum), (3, 15.0));
        let quantiles: Vec<(f64, f64)> = p
            .quantile_values
            .iter()
            .map(|q| (q.quantile, q.value))
            .collect();
        match temporality {
            Temporality::Cumulative => assert!(quantiles.is_empty()),
            Temporality::Delta => assert_eq!(quantiles, [(0.0, 2.0), (1.0, 9.0)]),
        }
        for (suffix, x) in [
            ("m1_rate", 1.5),
            ("m5_rate", 1.25),
            ("m15_rate", 1.0),
            ("mean_rate", 2.0),
        ] {
            let Some(Data::Gauge(gauge)) = &metric(rm, &format!("hits.{suffix}")).data else {
                panic!()
            };
            assert_eq!(
                gauge.data_points[0].value,
                Some(number_data_point::Value::AsDouble(x))
            );
        }
    }
}

fn histogram(values: &[f64]) -> Value {
    let mut d = Distribution::new(&HistogramOptions::default(), 1);
    d.record_all(values, 0.0);
    Value::Histogram(Box::new(d))
}

#[test]
fn histograms_exponential_where_exact_else_the_metrics_buckets() {
    let mut c = Cluster::new("web");
    // Below 2.048 ms every HDR bucket is one microsecond: exact.
    let small = key("histogram", &[], "small");
    // 4 ms starts a 2-unit HDR bucket on a bound of every scale: explicit buckets.
    let large = key("histogram", &[], "large");
    c.deliver(
        vec![
            (small.clone(), histogram(&[0.5, 1.0, 1.5])),
            (large.clone(), histogram(&[4.0, 30.0])),
        ],
        &[],
    );
    let d = c.deliver(
        vec![
            (small.clone(), histogram(&[1.0])),
            (large.clone(), histogram(&[4.0])),
        ],
        &[],
    );
    for temporality in [Temporality::Cumulative, Temporality::Delta] {
        let out = messages(
            &c.store,
            &d,
            &encoding(temporality, false),
            &mut Starts::default(),
        );
        let Some(Data::ExponentialHistogram(e)) = &metric(&out[0], "small").data else {
            panic!()
        };
        let p = &e.data_points[0];
        let positive = p.positive.as_ref().unwrap();
        let total: u64 = positive.bucket_counts.iter().sum();
        // 0.5 to 1.5 is 1.6 octaves: the scale keeps them within 160 buckets.
        assert!(p.scale >= 5, "{}", p.scale);
        assert_eq!(p.zero_count, 0);
        match temporality {
            Temporality::Cumulative => {
                assert_eq!(
                    (p.count, total, p.sum, p.min, p.max),
                    (4, 4, Some(4.0), Some(0.5), Some(1.5))
                );
                // 1.0 (twice) is the upper bound of the bucket just below offset + 2^scale.
                let one = exponential::index(1.0, p.scale).unwrap() - i64::from(positive.offset);
                assert_eq!(positive.bucket_counts[one as usize], 2);
            }
            Temporality::Delta => {
                // The interval's one value, at the scale of the series since the start.
                assert_eq!((p.count, total, p.sum), (1, 1, Some(1.0)));
                let cumulative = messages(
                    &c.store,
                    &d,
                    &encoding(Temporality::Cumulative, false),
                    &mut Starts::default(),
                );
                let Some(Data::ExponentialHistogram(ce)) = &metric(&cumulative[0], "small").data
                else {
                    panic!()
                };
                assert_eq!(p.scale, ce.data_points[0].scale);
            }
        }
        let Some(Data::Histogram(h)) = &metric(&out[0], "large").data else {
            panic!()
        };
        let p = &h.data_points[0];
        assert_eq!(
            p.explicit_bounds,
            crate::export::prometheus::default_buckets(1.0)
        );
        assert_eq!(p.bucket_counts.len(), p.explicit_bounds.len() + 1);
        assert_eq!(p.bucket_counts.iter().sum::<u64>(), p.count);
        // 4 in (2.5, 5], 30 in (25, 50].
        let at = |bound: f64| {
            p.bucket_counts[p.explicit_bounds.iter().position(|&b| b == bound).unwrap()]
        };
        match temporality {
            Temporality::Cumulative => assert_eq!((p.count, at(5.0), at(50.0)), (3, 2, 1)),
            Temporality::Delta => assert_eq!((p.count, at(5.0), at(50.0)), (1, 1, 0)),
        }
    }
}

#[test]
fn requests_hold_at_most_batch_points_and_decode() {
    let mut c = Cluster::new("web");
    let series: Series = (0..5)
        .map(|i| (key("inc", &["a"], &format!("n{i}")), counter(1.0)))
        .collect();
    let d = c.deliver(series.clone(), &[(1, series)]);
    let enc = Encoding {
        per_process: true,
        batch_points: 4,
        ..Encoding::default()
    };
    // 5 cluster points, 5 of the master, 5 of worker 1: 4 + 4 + 4 + 3.
    let requests = encode(&c.store, &d, &enc, &mut Starts::default());
    let points: Vec<u64> = requests.iter().map(|r| r.points).collect();
    assert_eq!(points, [4, 4, 4, 3]);
    let mut names = Vec::new();
    for r in &requests {
        let request = ExportMetricsServiceRequest::decode(&r.body[..]).unwrap();
        let mut n = 0;
        for rm in &request.resource_metrics {
            let worker = attribute(rm, "panoptic.worker").unwrap_or_else(|| "cluster".into());
            for m in &rm.scope_metrics[0].metrics {
                n += 1;
                names.push(format!("{worker} {}", m.name));
            }
        }
        assert_eq!(n as u64, r.points);
    }
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 15, "{names:?}");
    // A byte bound cuts requests too: here, one metric each.
    let enc = Encoding {
        batch_bytes: 1,
        ..enc
    };
    let requests = encode(&c.store, &d, &enc, &mut Starts::default());
    assert_eq!(requests.len(), 15);
}

#[test]
fn json_is_otlp_json() {
    let mut c = Cluster::new("web");
    let d = c.deliver(
        vec![
            (
                key("inc", &["http"], "requests{code=\"200\"}"),
                counter(2.5),
            ),
            (key("histogram", &[], "h"), histogram(&[1.0])),
            (key("histogram", &[], "x"), histogram(&[40.0])),
        ],
        &[],
    );
    let enc = Encoding {
        protocol: Protocol::Json,
        ..Encoding::default()
    };
    let requests = encode(&c.store, &d, &enc, &mut Starts::default());
    let text = String::from_utf8(requests[0].body.clone()).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let rm = &json["resourceMetrics"][0];
    let pid = &rm["resource"]["attributes"][2];
    assert_eq!(pid["key"], "process.pid");
    // 64-bit integers as strings, enums as numbers, camelCase names, oneofs as their member.
    assert_eq!(pid["value"]["intValue"], "10");
    let m = &rm["scopeMetrics"][0]["metrics"][0];
    assert_eq!(m["name"], "http.requests");
    assert_eq!(m["sum"]["aggregationTemporality"], 2);
    assert_eq!(m["sum"]["isMonotonic"], true);
    let p = &m["sum"]["dataPoints"][0];
    assert_eq!(p["asDouble"], 2.5);
    assert_eq!(p["timeUnixNano"], "1700000001000000000");
    assert_eq!(p["attributes"][0]["value"]["stringValue"], "200");
    let e = &rm["scopeMetrics"][0]["metrics"][1]["exponentialHistogram"]["dataPoints"][0];
    assert_eq!(e["count"], "1");
    assert!(e["positive"]["bucketCounts"][0].is_string());
    // No nulls, no empty arrays (unset fields are left out).
    assert!(!text.contains("null"), "{text}");
    assert!(!text.contains("[]"), "{text}");
    assert!(!text.contains("negative"), "{text}");
}

#[test]
fn partial_success_in_either_protocol() {
    use opentelemetry_proto::tonic::collector::metrics::v1::{
        ExportMetricsPartialSuccess, ExportMetricsServiceResponse,
    };
    let answer = ExportMetricsServiceResponse {
        partial_success: Some(ExportMetricsPartialSuccess {
            rejected_data_points: 3,
            error_message: "bad names".into(),
        }),
    };
    let bytes = answer.encode_to_vec();
    assert_eq!(
        partial_success(&bytes, Protocol::Protobuf),
        Some((3, "bad names".into()))
    );
    // A full success: an empty answer.
    assert_eq!(partial_success(b"", Protocol::Protobuf), None);
    let text = br#"{"partialSuccess":{"rejectedDataPoints":"2","errorMessage":"x"}}"#;
    assert_eq!(partial_success(text, Protocol::Json), Some((2, "x".into())));
    assert_eq!(partial_success(b"{}", Protocol::Json), None);
    assert_eq!(partial_success(b"not json", Protocol::Json), None);
}

#[test]
fn the_filter_and_the_prefix() {
    let mut c = Cluster::new("web");
    let d = c.deliver(
        vec![
            (key("inc", &["a"], "kept"), counter(1.0)),
            (key("inc", &["a"], "dropped"), counter(1.0)),
        ],
        &[],
    );
    let enc = Encoding {
        prefix: "app.".into(),
        keep: Some(Arc::new(|key: &SeriesKey, _: Option<&Process>| {
            key.id == "kept"
        })),
        ..Encoding::default()
    };
    let out = messages(&c.store, &d, &enc, &mut Starts::default());
    let names: Vec<&str> = (out[0].scope_metrics[0].metrics.iter())
        .map(|m| m.name.as_str())
        .collect();
    assert_eq!(names, ["app.a.kept"]);
}

#[test]
fn every_with_delta_covers_each_interval_since_the_last_push() {
    use crate::export::push::targets::otlp::{Otlp, OtlpOptions, OtlpSpec};
    use crate::export::push::{Limits, Target};
    let mut c = Cluster::new("web");
    let options = OtlpOptions::new(OtlpSpec {
        url: Some("http://127.0.0.1:1/v1/metrics".into()),
        temporality: Some("delta".into()),
        every: Some(2000.0),
        per_process: Some(true),
        ..OtlpSpec::default()
    })
    .unwrap();
    let target = Otlp::new(&options).unwrap();
    let limits = Limits {
        points: 1000,
        bytes: 1 << 20,
    };
    let n = || key("inc", &[], "jobs");
    let h = || key("histogram", &[], "h");
    // Intervals 1 to 4 (1 s each, every 2 s): pushes after the 1st (it alone) and the 3rd (the
    // 2nd and 3rd added up, worker 1 gone and worker 2 come between them); the 4th waits.
    let mut pushes: Vec<ExportMetricsServiceRequest> = Vec::new();
    let mut push = |c: &mut Cluster, d: Delivery| {
        let mut out = Vec::new();
        target.encode(&c.store, &d, limits, &mut out);
        for b in out {
            pushes.push(ExportMetricsServiceRequest::decode(&b.body[..]).unwrap());
        }
    };
    let d = c.deliver(
        vec![(h(), histogram(&[1.0]))],
        &[(1, vec![(n(), counter(4.0))])],
    );
    push(&mut c, d);
    let d = c.deliver(
        vec![(h(), histogram(&[1.5, 0.5]))],
        &[(1, vec![(n(), counter(1.0))])],
    );
    push(&mut c, d);
    c.forget(1);
    let d = c.deliver(vec![], &[(2, vec![(n(), counter(2.0))])]);
    push(&mut c, d);
    let d = c.deliver(vec![], &[(2, vec![(n(), counter(3.0))])]);
    push(&mut c, d);
    assert_eq!(pushes.len(), 2);
    let cluster = |r: &ExportMetricsServiceRequest| {
        (r.resource_metrics.iter())
            .find(|rm| attribute(rm, "panoptic.worker").is_none())
            .cloned()
            .unwrap()
    };
    let first = cluster(&pushes[0]);
    assert_eq!(sum(metric(&first, "jobs")), (4.0, ms(T0), ms(T0 + 1000), 1));
    let second = cluster(&pushes[1]);
    // Intervals 2 and 3: 1 + 2, from the start of the 2nd to the end of the 3rd.
    assert_eq!(
        sum(metric(&second, "jobs")),
        (3.0, ms(T0 + 1000), ms(T0 + 3000), 1)
    );
    let Some(Data::ExponentialHistogram(e)) = &metric(&second, "h").data else {
        panic!()
    };
    assert_eq!(e.data_points[0].count, 2);
    // Each worker's own: worker 1's last interval was before it went (the store forgot it, so
    // its part is not sent); worker 2's first.
    let worker = |w: &str| {
        (pushes[1].resource_metrics.iter())
            .find(|rm| attribute(rm, "panoptic.worker").as_deref() == Some(w))
            .map(|rm| sum(metric(rm, "jobs")).0)
    };
    assert_eq!(worker("2"), Some(2.0));
    assert_eq!(worker("1"), None);
}

#[test]
fn explicit_buckets_follow_the_layout_of_the_metrics_name() {
    let mut c = Cluster::new("web");
    // 4 ms and 30 ms do not map exactly (see above): explicit buckets.
    let gc = key("histogram", &["nodejs"], "gc_duration_milliseconds");
    let other = key("histogram", &["t"], "x");
    let d = c.deliver(
        vec![
            (gc.clone(), histogram(&[4.0, 30.0])),
            (other.clone(), histogram(&[4.0, 30.0])),
        ],
        &[],
    );
    let encoding = Encoding {
        prefix: "app.".into(),
        buckets: Some(vec![10.0]),
        named_buckets: vec![(
            "nodejs_gc_duration_milliseconds".into(),
            vec![1.0, 10.0, 100.0, 1000.0, 2000.0, 5000.0],
        )],
        ..encoding(Temporality::Cumulative, false)
    };
    let out = messages(&c.store, &d, &encoding, &mut Starts::default());
    let bounds = |name: &str| {
        let Some(Data::Histogram(h)) = &metric(&out[0], name).data else {
            panic!("{name} is not an explicit histogram")
        };
        let p = &h.data_points[0];
        (p.explicit_bounds.clone(), p.bucket_counts.clone())
    };
    assert_eq!(
        bounds("app.nodejs.gc_duration_milliseconds"),
        (
            vec![1.0, 10.0, 100.0, 1000.0, 2000.0, 5000.0],
            vec![0, 1, 1, 0, 0, 0, 0]
        )
    );
    assert_eq!(bounds("app.t.x"), (vec![10.0], vec![1, 1]));
}
