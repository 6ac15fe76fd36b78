use super::*;
use crate::export::view::fixture::{counter, key, Fixture};
use crate::snapshot::Value;
use crate::stats::histogram::{Distribution, HistogramOptions};

fn target(f: impl FnOnce(&mut RemoteWriteOptions)) -> RemoteWrite {
    let mut options = RemoteWriteOptions {
        url: "http://127.0.0.1:9090/api/v1/write".into(),
        ..RemoteWriteOptions::default()
    };
    f(&mut options);
    RemoteWrite::new(&options).unwrap()
}

/// Decodes a batch as a receiver does: snappy's block format, then the protobuf.
fn decode(batch: &Batch) -> WriteRequest {
    let bytes = snap::raw::Decoder::new()
        .decompress_vec(&batch.body)
        .unwrap();
    WriteRequest::decode(&bytes[..]).unwrap()
}

/// A series as `name{a="x",...} value @ts` with the labels in the order sent.
fn show(s: &TimeSeries) -> String {
    let labels: Vec<String> = (s.labels.iter())
        .map(|l| format!("{}={:?}", l.name, l.value))
        .collect();
    let samples: Vec<String> = (s.samples.iter())
        .map(|x| format!("{}@{}", x.value, x.timestamp))
        .collect();
    format!("{} {}", labels.join(","), samples.join(","))
}

fn encode_all(t: &RemoteWrite, f: &Fixture, d: &Delivery, points: usize) -> Vec<Batch> {
    let mut out = Vec::new();
    let limits = Limits {
        points,
        bytes: 1 << 20,
    };
    t.encode(&f.store, d, limits, &mut out);
    out
}

#[test]
fn counters_and_histograms_as_metrics_names_them_sorted() {
    let mut f = Fixture::new(false);
    let mut h = Distribution::new(&HistogramOptions::default(), 1);
    h.record_all(&[3.0, 30.0, 300.0], 0.0);
    let hist = key("histogram", &["http"], "latency_ms");
    let requests = key("inc", &["http"], r#"requests{method="GET"}"#);
    let zeta = key("inc", &[], "Zeta");
    f.deliver(&[(requests.clone(), counter(2.0))], &[]);
    let d = f.deliver(
        &[
            (requests.clone(), counter(3.0)),
            (zeta, counter(1.0)),
            (hist, Value::Histogram(Box::new(h))),
        ],
        &[],
    );
    let t = target(|o| {
        o.prometheus.prefix = "app_".into();
        o.prometheus.buckets = Some(vec![10.0, 100.0]);
        o.labels = vec![
            ("job".into(), "web".into()),
            ("method".into(), "POST".into()),
        ];
    });
    let batches = encode_all(&t, &f, &d, 1000);
    assert_eq!(batches.len(), 1);
    let request = decode(&batches[0]);
    assert_eq!(batches[0].points, request.timeseries.len() as u64);
    let shown: Vec<String> = request.timeseries.iter().map(show).collect();
    let at = "@1700000002000";
    let job = r#"job="web""#;
    // The names, labels and values of /metrics; `__name__` sorts after upper-case names (byte
    // order); the constant `method` wins over the series' own, kept as `exported_method`.
    assert_eq!(
        shown,
        [
            format!(r#"__name__="app_Zeta_total",{job},method="POST" 1{at}"#),
            format!(r#"__name__="app_http_latency_ms_bucket",{job},le="+Inf",method="POST" 3{at}"#),
            format!(r#"__name__="app_http_latency_ms_bucket",{job},le="10.0",method="POST" 1{at}"#),
            format!(
                r#"__name__="app_http_latency_ms_bucket",{job},le="100.0",method="POST" 2{at}"#
            ),
            format!(r#"__name__="app_http_latency_ms_count",{job},method="POST" 3{at}"#),
            format!(r#"__name__="app_http_latency_ms_sum",{job},method="POST" 333{at}"#),
            format!(
                r#"__name__="app_http_requests_total",exported_method="GET",{job},method="POST" 5{at}"#
            ),
            format!(r#"__name__="app_panoptic_export_skipped_series",{job},method="POST" 0{at}"#),
        ]
    );
    for s in &request.timeseries {
        let names: Vec<&str> = s.labels.iter().map(|l| l.name.as_str()).collect();
        assert!(names.windows(2).all(|w| w[0] < w[1]), "{names:?}");
    }
    let labels: Vec<_> = request.timeseries.iter().map(|s| &s.labels).collect();
    assert!(labels.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn hostile_label_values_survive_the_round_trip() {
    let mut f = Fixture::new(true);
    let id = "g{a=\"x\\\"y\\\\z\\nw\",b=\"é\"}";
    let g = key("gauge", &[], id);
    let d = f.deliver(
        &[(g.clone(), Value::Gauge(Some(0.25)))],
        &[(g, Value::Gauge(None))],
    );
    let t = target(|o| o.per_process = true);
    let request = decode(&encode_all(&t, &f, &d, 1000)[0]);
    let g: Vec<&TimeSeries> = (request.timeseries.iter())
        .filter(|s| s.labels.iter().any(|l| l.value == "g"))
        .collect();
    assert_eq!(g.len(), 3, "cluster, master, worker 1");
    assert_eq!(g[0].labels[1].value, "x\"y\\z\nw");
    assert_eq!(g[0].labels[2].value, "é");
    let workers: Vec<String> = (g.iter())
        .map(|s| {
            (s.labels.iter().find(|l| l.name == "worker"))
                .map_or(String::new(), |l| l.value.clone())
        })
        .collect();
    assert_eq!(workers, ["", "1", "master"]);
    assert!(g[1].samples[0].value.is_nan());
}

#[test]
fn batches_are_cut_and_every_skips_deliveries() {
    let mut f = Fixture::new(false);
    let series: Vec<_> = (0..5)
        .map(|i| (key("inc", &[], &format!("c{i}")), counter(1.0)))
        .collect();
    let t = target(|o| o.every = Some(Duration::from_millis(2000)));
    let d = f.deliver(&series, &[]);
    let batches = encode_all(&t, &f, &d, 2);
    // 5 counters and the skipped-series gauge in batches of 2.
    let points: Vec<u64> = batches.iter().map(|b| b.points).collect();
    assert_eq!(points, [2, 2, 2]);
    // The next interval ends 1 s later: not pushed; the one after is.
    let d = f.deliver(&series, &[]);
    assert!(encode_all(&t, &f, &d, 2).is_empty());
    let d = f.deliver(&series, &[]);
    let request = decode(&encode_all(&t, &f, &d, 100)[0]);
    assert_eq!(
        request.timeseries[0].samples[0].timestamp,
        1_700_000_003_000
    );
    assert_eq!(request.timeseries[0].samples[0].value, 3.0);
}

#[test]
fn snappy_block_format_round_trip() {
    let data: Vec<u8> = (0..100_000u32)
        .flat_map(|i| (i % 251).to_le_bytes())
        .collect();
    let packed = compress(&data);
    assert!(packed.len() < data.len() / 2);
    // The block format starts with the length as a varint (no stream identifier chunk).
    assert_ne!(packed[0], 0xff);
    assert_eq!(snap::raw::decompress_len(&packed).unwrap(), data.len());
    assert_eq!(
        snap::raw::Decoder::new().decompress_vec(&packed).unwrap(),
        data
    );
}

fn spec(f: impl FnOnce(&mut RemoteWriteSpec)) -> RemoteWriteSpec {
    let mut spec = RemoteWriteSpec {
        url: Some("http://h:9090/api/v1/write".into()),
        ..RemoteWriteSpec::default()
    };
    f(&mut spec);
    spec
}

#[test]
fn options_are_read_and_bad_ones_name_the_field() {
    let o = RemoteWriteOptions::new(spec(|s| {
        s.url = Some("http://h:9090/push?tenant=a".into());
        s.headers = vec![("X-Scope-OrgID".into(), "t1".into())];
        s.every = Some(15000.0);
        s.prefix = Some("app_".into());
        s.per_process = Some(true);
        s.labels = vec![("job".into(), "web".into())];
        s.queue.batch_points = Some(100.0);
    }))
    .unwrap();
    assert_eq!(o.every, Some(Duration::from_secs(15)));
    assert_eq!(o.queue.batch_points, 100);
    let t = RemoteWrite::new(&o).unwrap();
    assert_eq!(t.request().url, "http://h:9090/push?tenant=a");
    let headers: Vec<&str> = t.request.headers.iter().map(|h| h.0.as_str()).collect();
    assert_eq!(
        headers,
        [
            "X-Scope-OrgID",
            "Content-Type",
            "Content-Encoding",
            "X-Prometheus-Remote-Write-Version"
        ]
    );
    let error = |f: fn(&mut RemoteWriteSpec)| match RemoteWriteOptions::new(spec(f)) {
        Err(PushError::Range { field, message }) => (field, message),
        other => panic!("{other:?}"),
    };
    type Case = (fn(&mut RemoteWriteSpec), &'static str, &'static str);
    let cases: [Case; 10] = [
        (|s| s.url = None, "remoteWrite.url", "remoteWrite.url must be an http:// URL, got \"\""),
        (
            |s| s.url = Some("http://u:p@h/w".into()),
            "remoteWrite.url",
            "remoteWrite.url must be a URL without credentials (give the credentials in remoteWrite.headers), got \"http://u:p@h/w\"",
        ),
        (
            |s| s.headers = vec![("bad name".into(), "x".into())],
            "remoteWrite.headers.bad name",
            "remoteWrite.headers.bad name must be an HTTP header name, got \"bad name\"",
        ),
        (
            |s| s.headers = vec![("content-encoding".into(), "gzip".into())],
            "remoteWrite.headers.content-encoding",
            "remoteWrite.headers.content-encoding must be a header the pusher does not set itself, got \"content-encoding\"",
        ),
        (
            |s| s.headers = vec![("A".into(), "x\ny".into())],
            "remoteWrite.headers.A",
            "remoteWrite.headers.A must be an HTTP header value (no control characters), got \"x\\ny\"",
        ),
        (
            |s| s.every = Some(0.0),
            "remoteWrite.every",
            "remoteWrite.every must be a number of ms above 0, at most one day, got 0",
        ),
        (
            |s| s.prefix = Some("1x".into()),
            "remoteWrite.prefix",
            "remoteWrite.prefix must be empty or start a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*), got \"1x\"",
        ),
        (
            |s| s.named_buckets = vec![("gc".into(), vec![2.0, 1.0])],
            "remoteWrite.buckets",
            "remoteWrite.buckets.gc[1] must be greater than remoteWrite.buckets.gc[0] (2): bounds ascend, got 1",
        ),
        (
            |s| s.labels = vec![("le".into(), "1".into())],
            "remoteWrite.labels.le",
            "remoteWrite.labels.le must be a label name ([a-zA-Z_][a-zA-Z0-9_]*, not __*, worker, le, quantile), got \"le\"",
        ),
        (
            |s| s.queue.max_queue_bytes = Some(10.0),
            "remoteWrite.maxQueueBytes",
            "remoteWrite.maxQueueBytes must be a number of bytes from 1024, got 10",
        ),
    ];
    for (f, field, message) in cases {
        assert_eq!(error(f), (field.to_string(), message.to_string()));
    }
}

#[test]
fn constant_labels_never_make_two_series_one() {
    let mut f = Fixture::new(false);
    let one = Value::Gauge(Some(1.0));
    let d = f.deliver(
        &[
            (key("gauge", &[], "g"), one.clone()),
            (key("gauge", &[], r#"g{env="prod"}"#), one.clone()),
            (key("gauge", &[], r#"g{env="dev",exported_env="x"}"#), one),
        ],
        &[],
    );
    let t = target(|o| o.labels = vec![("env".into(), "prod".into())]);
    let request = decode(&encode_all(&t, &f, &d, 1000)[0]);
    let g: Vec<String> = (request.timeseries.iter())
        .filter(|s| s.labels.iter().any(|l| l.value == "g"))
        .map(show)
        .collect();
    let at = "1@1700000001000";
    assert_eq!(
        g,
        [
            format!(r#"__name__="g",env="prod" {at}"#),
            format!(r#"__name__="g",env="prod",exported_env="prod" {at}"#),
            format!(r#"__name__="g",env="prod",exported_env="x",exported_exported_env="dev" {at}"#),
        ]
    );
}
