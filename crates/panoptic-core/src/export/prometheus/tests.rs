use super::super::{Cumulative, Process};
use super::names::canonical;
use super::numbers::{label_number, push_go_float, push_value};
use super::*;
use crate::gather::Tree;
use crate::snapshot::SeriesKey;
use crate::stats::histogram::{Distribution, HistogramOptions, Reservoir};
use crate::stats::meter::MeterStats;
use crate::stats::summary::Summary;
use crate::tags::split_tags;

use TextFormat::{OpenMetrics as OM, Prometheus as TEXT};

type Item = (SeriesKey, Option<Process>, Cumulative);

fn item(method: &str, path: &[&str], id: &str, value: Cumulative) -> Item {
    (SeriesKey::new(method, path, id), None, value)
}

fn of(process: Tree, (key, _, value): Item) -> Item {
    (
        key,
        Some(Process {
            from: process,
            pid: 1,
        }),
        value,
    )
}

fn render_with(items: &[Item], options: &PrometheusOptions, format: TextFormat) -> String {
    let series = items.iter().map(|(key, process, value)| Series {
        key,
        process: process.as_ref(),
        value,
    });
    let mut out = Vec::new();
    write(series, options, format, None, &mut out);
    String::from_utf8(out).unwrap()
}

fn render(items: &[Item], format: TextFormat) -> String {
    render_with(items, &PrometheusOptions::default(), format)
}

/// The output without its HELP lines and the skipped-series gauge.
fn body(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with("# HELP") && !l.contains("panoptic_export_skipped_series"))
        .collect();
    lines.join("\n")
}

/// The value of the skipped-series gauge.
fn skipped(text: &str) -> f64 {
    let line = text
        .lines()
        .find(|l| l.starts_with("panoptic_export_skipped_series "))
        .unwrap();
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

fn counter(total: f64) -> Cumulative {
    Cumulative::Counter { total, calls: 1.0 }
}

fn summary(values: &[f64]) -> Cumulative {
    let mut last = Summary::default();
    values.iter().for_each(|&v| last.push(v));
    Cumulative::Summary {
        count: 10.0,
        sum: 123.5,
        last,
    }
}

fn histogram(reservoir: Reservoir, values: &[f64]) -> Cumulative {
    let options = HistogramOptions::new(3, 0.001, 3_600_000.0, reservoir).unwrap();
    let mut d = Distribution::new(&options, 1);
    d.record_all(values, 1.7e12);
    Cumulative::Histogram(Box::new(d))
}

#[test]
fn counters_in_both_formats() {
    let items = [
        item("inc", &["http"], "requests", counter(3.0)),
        item(
            "inc",
            &["http"],
            r#"requests{method="GET",status="200"}"#,
            counter(2.5),
        ),
    ];
    assert_eq!(
        render(&items, TEXT),
        "# HELP http_requests_total panoptic inc(['http'], 'requests'): the sum of increments since the start\n\
         # TYPE http_requests_total counter\n\
         http_requests_total 3\n\
         http_requests_total{method=\"GET\",status=\"200\"} 2.5\n\
         # HELP panoptic_export_skipped_series series left out of this exposition: empty names, names another series took, repeated label sets (see docs/prometheus.md)\n\
         # TYPE panoptic_export_skipped_series gauge\n\
         panoptic_export_skipped_series 0\n"
    );
    assert_eq!(
        render(&items, OM),
        "# TYPE http_requests counter\n\
         # HELP http_requests panoptic inc(['http'], 'requests'): the sum of increments since the start\n\
         http_requests_total 3\n\
         http_requests_total{method=\"GET\",status=\"200\"} 2.5\n\
         # TYPE panoptic_export_skipped_series gauge\n\
         # HELP panoptic_export_skipped_series series left out of this exposition: empty names, names another series took, repeated label sets (see docs/prometheus.md)\n\
         panoptic_export_skipped_series 0\n\
         # EOF\n"
    );
    // A counter named `..._total` is not given a second suffix.
    let items = [item("inc", &[], "jobs_total", counter(1.0))];
    assert_eq!(
        body(&render(&items, OM)),
        "# TYPE jobs counter\njobs_total 1\n# EOF"
    );
    assert_eq!(
        body(&render(&items, TEXT)),
        "# TYPE jobs_total counter\njobs_total 1"
    );
}

#[test]
fn gauges_with_nan_and_infinities() {
    let items = [
        item("gauge", &["q"], "length", Cumulative::Gauge(f64::NAN)),
        item("set", &["q"], "limit", Cumulative::Gauge(f64::INFINITY)),
        item(
            "rate",
            &["q"],
            "drain",
            Cumulative::Gauge(f64::NEG_INFINITY),
        ),
        item("set", &["q"], "ratio", Cumulative::Gauge(-0.000012)),
    ];
    for format in [TEXT, OM] {
        let text = render(&items, format);
        let expected = "# TYPE q_drain gauge\nq_drain -Inf\n\
                        # TYPE q_length gauge\nq_length NaN\n\
                        # TYPE q_limit gauge\nq_limit +Inf\n\
                        # TYPE q_ratio gauge\nq_ratio -1.2e-05";
        assert!(body(&text).starts_with(expected), "{text}");
        assert!(text.contains(
            "# HELP q_length panoptic gauge(['q'], 'length'): the gauge function's last value (NaN when it failed)\n"
        ));
    }
}

#[test]
fn samples_are_summaries_with_last_interval_gauges() {
    let items = [
        item("sample", &["db"], "rows", summary(&[2.0, 4.0])),
        of(
            Tree::Worker(2),
            item("sample", &["db"], "rows", summary(&[7.0])),
        ),
    ];
    let expected = "# TYPE db_rows summary\n\
                    db_rows_count 10\ndb_rows_sum 123.5\n\
                    db_rows_count{worker=\"2\"} 10\ndb_rows_sum{worker=\"2\"} 123.5\n\
                    # TYPE db_rows_min gauge\ndb_rows_min 2\ndb_rows_min{worker=\"2\"} 7\n\
                    # TYPE db_rows_max gauge\ndb_rows_max 4\ndb_rows_max{worker=\"2\"} 7\n\
                    # TYPE db_rows_avg gauge\ndb_rows_avg 3\ndb_rows_avg{worker=\"2\"} 7\n\
                    # TYPE db_rows_sigma gauge\ndb_rows_sigma 1.4142135623730951\ndb_rows_sigma{worker=\"2\"} NaN";
    assert_eq!(body(&render(&items, TEXT)), expected);
    assert_eq!(body(&render(&items, OM)), format!("{expected}\n# EOF"));
    // A negative sum is no counter: OpenMetrics leaves it out, the text format keeps it.
    let negative = [item(
        "sample",
        &[],
        "delta",
        Cumulative::Summary {
            count: 2.0,
            sum: -3.0,
            last: Summary::default(),
        },
    )];
    assert!(render(&negative, TEXT).contains("\ndelta_sum -3\n"));
    let om = render(&negative, OM);
    assert!(
        om.contains("\ndelta_count 2\n") && !om.contains("delta_sum"),
        "{om}"
    );
    // Never-filled statistics are NaN.
    assert!(om.contains("\ndelta_min NaN\n"));
}

#[test]
fn timed_samples_state_their_unit_where_exact_and_named() {
    let items = [
        item(
            "timedSample",
            &["http"],
            "latency_milliseconds",
            summary(&[1.0]),
        ),
        item("timedSample", &["http"], "latency", summary(&[1.0])),
    ];
    let om = render(&items, OM);
    assert!(om.contains(
        "# TYPE http_latency_milliseconds summary\n# UNIT http_latency_milliseconds milliseconds\n"
    ));
    assert!(om.contains("# TYPE http_latency summary\n# HELP http_latency panoptic timedSample(['http'], 'latency'): count and sum of the values since the start (milliseconds)\n"));
    assert_eq!(om.matches("# UNIT").count(), 1);
    // No UNIT in the Prometheus format; none at another scale factor.
    assert!(!render(&items, TEXT).contains("UNIT"));
    let options = PrometheusOptions {
        scale_factor: 1000.0,
        ..PrometheusOptions::default()
    };
    let om = render_with(&items, &options, OM);
    assert!(!om.contains("UNIT"));
    assert!(om.contains("(seconds)"));
    let items = [item("timedSample", &[], "t_seconds", summary(&[1.0]))];
    assert!(render_with(&items, &options, OM).contains("# UNIT t_seconds seconds\n"));
    let options = PrometheusOptions {
        scale_factor: 60_000.0,
        ..PrometheusOptions::default()
    };
    let om = render_with(&items, &options, OM);
    assert!(
        !om.contains("UNIT") && om.contains("(milliseconds / scaleFactor 60000)"),
        "{om}"
    );
}

#[test]
fn histogram_buckets_and_units_follow_the_scale_factor() {
    // 50 ms timings, as recorded at scaleFactor 1000 (seconds) and at 1 (milliseconds).
    let les = |text: &str| -> Vec<String> {
        (text.lines())
            .filter(|l| l.starts_with("t_bucket"))
            .map(|l| l.to_string())
            .collect()
    };
    let seconds = PrometheusOptions {
        scale_factor: 1000.0,
        ..PrometheusOptions::default()
    };
    let items = [item(
        "histogram",
        &[],
        "t",
        histogram(Reservoir::Hdr, &[0.05; 4]),
    )];
    let text = render_with(&items, &seconds, TEXT);
    assert_eq!(
        les(&text),
        [
            "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0",
            "2.5", "5.0", "10.0", "+Inf"
        ]
        .iter()
        .zip([0, 0, 0, 0, 0, 4, 4, 4, 4, 4, 4, 4, 4, 4])
        .map(|(le, n)| format!("t_bucket{{le=\"{le}\"}} {n}"))
        .collect::<Vec<_>>(),
        "{text}"
    );
    assert!(text.contains(", times in seconds ("), "{text}");
    let items = [item(
        "histogram",
        &[],
        "t",
        histogram(Reservoir::Hdr, &[50.0; 4]),
    )];
    let text = render(&items, TEXT);
    let lines = les(&text);
    assert_eq!(lines[0], "t_bucket{le=\"1.0\"} 0");
    assert!(
        lines.contains(&"t_bucket{le=\"25.0\"} 0".to_string()),
        "{text}"
    );
    assert!(
        lines.contains(&"t_bucket{le=\"50.0\"} 4".to_string()),
        "{text}"
    );
    assert_eq!(lines.len(), 14);
    assert!(text.contains(", times in milliseconds "), "{text}");
    // Explicit buckets are taken as given, whatever the scale factor.
    let given = PrometheusOptions {
        buckets: Some(vec![0.5, 7.0]),
        ..seconds.clone()
    };
    let items = [item(
        "histogram",
        &[],
        "t",
        histogram(Reservoir::Hdr, &[0.05]),
    )];
    assert_eq!(
        les(&render_with(&items, &given, TEXT)),
        [
            "t_bucket{le=\"0.5\"} 1",
            "t_bucket{le=\"7.0\"} 1",
            "t_bucket{le=\"+Inf\"} 1"
        ]
    );
    // Another scale factor: the defaults in its unit, said in words.
    let minutes = PrometheusOptions {
        scale_factor: 60_000.0,
        ..PrometheusOptions::default()
    };
    let text = render_with(&items, &minutes, OM);
    assert!(
        les(&text)[0].starts_with("t_bucket{le=\"1.6666666666666667e-05\"}"),
        "{text}"
    );
    assert!(
        text.contains(", times in milliseconds / scaleFactor 60000 ("),
        "{text}"
    );
    assert!(!text.contains("# UNIT"));
    // UNIT (OpenMetrics only) where the name ends with the unit, on the histogram family
    // (not on its `_quantile` summary, whose name does not end with it).
    let named = [
        item(
            "histogram",
            &["http"],
            "latency_seconds",
            histogram(Reservoir::Hdr, &[0.05]),
        ),
        item(
            "histogram",
            &["http"],
            "latency_milliseconds",
            histogram(Reservoir::Hdr, &[0.05]),
        ),
    ];
    let quantiles = PrometheusOptions {
        quantiles: vec![0.99],
        ..seconds.clone()
    };
    let om = render_with(&named, &quantiles, OM);
    assert!(
        om.contains("# TYPE http_latency_seconds histogram\n# UNIT http_latency_seconds seconds\n# HELP http_latency_seconds panoptic histogram(['http'], 'latency_seconds'): the values since the start, times in seconds (buckets from the HDR histogram, exact to its precision)\n"),
        "{om}"
    );
    assert!(om.contains("# HELP http_latency_seconds_quantile panoptic histogram(['http'], 'latency_seconds'): quantiles of the values since the start, times in seconds (NaN before any value)\n"), "{om}");
    assert_eq!(om.matches("# UNIT").count(), 1, "{om}");
    assert!(!render_with(&named, &quantiles, TEXT).contains("UNIT"));
    let om = render_with(&named, &PrometheusOptions::default(), OM);
    assert!(
        om.contains("# UNIT http_latency_milliseconds milliseconds\n"),
        "{om}"
    );
    assert_eq!(om.matches("# UNIT").count(), 1, "{om}");
}

#[test]
fn histograms_named_in_named_buckets_take_their_own_layout() {
    // prom-client's GC buckets for the runtime's histogram, a default for every other one.
    let options = PrometheusOptions {
        prefix: "web_".into(),
        scale_factor: 1000.0,
        buckets: Some(vec![0.5, 7.0]),
        named_buckets: vec![
            (
                "nodejs_gc_duration_seconds".into(),
                vec![0.001, 0.01, 0.1, 1.0, 2.0, 5.0],
            ),
            // A name no series has changes nothing.
            ("nobody".into(), vec![3.0]),
        ],
        ..PrometheusOptions::default()
    };
    let gc = |kind: &str, values: &[f64]| {
        item(
            "histogram",
            &["nodejs"],
            &format!("gc_duration_seconds{{kind=\"{kind}\"}}"),
            histogram(Reservoir::Hdr, values),
        )
    };
    let items = [
        gc("minor", &[0.0004, 0.003, 1.5]),
        gc("major", &[0.05]),
        item(
            "histogram",
            &["t"],
            "x",
            histogram(Reservoir::Hdr, &[0.05, 3.0]),
        ),
    ];
    for format in [TEXT, OM] {
        let text = render_with(&items, &options, format);
        let les = |prefix: &str| -> Vec<String> {
            (text.lines())
                .filter(|l| l.starts_with(prefix))
                .map(|l| l.to_string())
                .collect()
        };
        let minor = [
            ("0.001", 1),
            ("0.01", 2),
            ("0.1", 2),
            ("1.0", 2),
            ("2.0", 3),
            ("5.0", 3),
            ("+Inf", 3),
        ]
        .map(|(le, n)| {
            format!("web_nodejs_gc_duration_seconds_bucket{{kind=\"minor\",le=\"{le}\"}} {n}")
        });
        assert_eq!(
            les("web_nodejs_gc_duration_seconds_bucket{kind=\"minor\""),
            minor,
            "{text}"
        );
        assert_eq!(
            les("web_nodejs_gc_duration_seconds_bucket{kind=\"major\"").len(),
            7
        );
        assert_eq!(
            les("web_t_x_bucket"),
            [
                "web_t_x_bucket{le=\"0.5\"} 1",
                "web_t_x_bucket{le=\"7.0\"} 2",
                "web_t_x_bucket{le=\"+Inf\"} 2",
            ],
            "{text}"
        );
    }
    // Without a default, the other histograms keep the defaults of the scale factor.
    let options = PrometheusOptions {
        buckets: None,
        ..options
    };
    let text = render_with(&items, &options, TEXT);
    assert_eq!(
        (text.lines())
            .filter(|l| l.starts_with("web_t_x_bucket"))
            .count(),
        14
    );
    assert_eq!(
        (text.lines())
            .filter(|l| l.starts_with("web_nodejs_gc_duration_seconds_bucket"))
            .count(),
        14
    );
    // A name starting with a digit is `_9s` without a prefix, `web9s` with prefix `web`.
    let digit = PrometheusOptions {
        prefix: "web".into(),
        named_buckets: vec![("_9s".into(), vec![2.0])],
        ..PrometheusOptions::default()
    };
    let items = [item(
        "histogram",
        &[],
        "9s",
        histogram(Reservoir::Hdr, &[1.0]),
    )];
    let text = render_with(&items, &digit, TEXT);
    assert!(
        text.contains("web9s_bucket{le=\"2.0\"} 1\nweb9s_bucket{le=\"+Inf\"} 1\n"),
        "{text}"
    );
}

#[test]
fn named_buckets_are_checked_and_errors_name_the_key() {
    let check = |named: Vec<(&str, Vec<f64>)>| {
        let o = PrometheusOptions {
            named_buckets: named.into_iter().map(|(n, b)| (n.to_string(), b)).collect(),
            ..PrometheusOptions::default()
        };
        validate_options(&o).map_err(|e| (e.field(), e.to_string()))
    };
    assert_eq!(
        check(vec![("a_b", vec![1.0]), ("_c9", vec![0.0, 2.0])]),
        Ok(())
    );
    assert_eq!(
        check(vec![("nodejs_gc_duration_seconds", vec![0.001, 0.01, 0.01])]),
        Err((
            "options.buckets",
            "options.buckets.nodejs_gc_duration_seconds[2] must be greater than options.buckets.nodejs_gc_duration_seconds[1] (0.01): bounds ascend, got 0.01".into()
        ))
    );
    assert_eq!(
        check(vec![("x", vec![])]).unwrap_err().1,
        "options.buckets.x must hold at least one bound, got []"
    );
    assert_eq!(
        check(vec![("x", vec![f64::NAN])]).unwrap_err().1,
        "options.buckets.x[0] must be a finite number of at least 0 (histogram values are never negative), got NaN"
    );
    // Names a series can have on /metrics without a prefix: no `:`, no leading digit.
    for bad in ["", "a:b", "1a", "http.latency", "é"] {
        assert_eq!(
            check(vec![(bad, vec![1.0])]).unwrap_err().1,
            format!("options.buckets keys must be `default` or a metric name as /metrics writes it without the prefix ([a-zA-Z_][a-zA-Z0-9_]*), got {bad:?}")
        );
    }
    assert_eq!(
        check(vec![("x", vec![1.0]), ("x", vec![2.0])])
            .unwrap_err()
            .1,
        "options.buckets.x is given twice"
    );
    // The layout of a name: its own, else the default, else the scale factor's defaults.
    let named = vec![("a".to_string(), vec![1.0])];
    assert_eq!(&*layout(Some(&[2.0]), &named, "a", 1.0), &[1.0]);
    assert_eq!(&*layout(Some(&[2.0]), &named, "b", 1.0), &[2.0]);
    assert_eq!(
        &*layout(None, &named, "b", 1000.0),
        &default_buckets(1000.0)[..]
    );
    // The names /metrics gives series, without the prefix.
    let path = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        base_name(&path(&["nodejs"]), "gc_duration_seconds"),
        "nodejs_gc_duration_seconds"
    );
    assert_eq!(
        base_name(&path(&["http.in"]), "latency-ms"),
        "http_in_latency_ms"
    );
    assert_eq!(base_name(&path(&[]), "9s"), "_9s");
}

#[test]
fn histograms_have_cumulative_buckets_and_asked_quantiles() {
    let values: Vec<f64> = (1..=100).map(f64::from).collect();
    let items = [
        item(
            "histogram",
            &["http"],
            "ms",
            histogram(Reservoir::Hdr, &values),
        ),
        of(
            Tree::Master,
            item("histogram", &["http"], "ms", histogram(Reservoir::Hdr, &[])),
        ),
    ];
    let options = PrometheusOptions {
        buckets: Some(vec![1.0, 2.5, 50.0, 1e6]),
        quantiles: vec![0.5, 1.0],
        ..PrometheusOptions::default()
    };
    let text = render_with(&items, &options, TEXT);
    assert_eq!(
        body(&text),
        "# TYPE http_ms histogram\n\
         http_ms_bucket{le=\"1.0\"} 1\nhttp_ms_bucket{le=\"2.5\"} 2\n\
         http_ms_bucket{le=\"50.0\"} 50\nhttp_ms_bucket{le=\"1e+06\"} 100\n\
         http_ms_bucket{le=\"+Inf\"} 100\nhttp_ms_sum 5050\nhttp_ms_count 100\n\
         http_ms_bucket{worker=\"master\",le=\"1.0\"} 0\n\
         http_ms_bucket{worker=\"master\",le=\"2.5\"} 0\n\
         http_ms_bucket{worker=\"master\",le=\"50.0\"} 0\n\
         http_ms_bucket{worker=\"master\",le=\"1e+06\"} 0\n\
         http_ms_bucket{worker=\"master\",le=\"+Inf\"} 0\n\
         http_ms_sum{worker=\"master\"} 0\nhttp_ms_count{worker=\"master\"} 0\n\
         # TYPE http_ms_quantile summary\n\
         http_ms_quantile{quantile=\"0.5\"} 50.015\nhttp_ms_quantile{quantile=\"1.0\"} 100\n\
         http_ms_quantile{worker=\"master\",quantile=\"0.5\"} NaN\n\
         http_ms_quantile{worker=\"master\",quantile=\"1.0\"} NaN"
    );
    // OpenMetrics' canonical label numbers, in both formats.
    let om = render_with(&items, &options, OM);
    for le in [
        "le=\"1.0\"",
        "le=\"2.5\"",
        "le=\"50.0\"",
        "le=\"1e+06\"",
        "le=\"+Inf\"",
        "quantile=\"0.5\"",
        "quantile=\"1.0\"",
    ] {
        assert!(om.contains(le), "{le} in {om}");
    }
    // Sampling reservoirs estimate (exactly, while the sample holds every value).
    let items = [item(
        "histogram",
        &[],
        "u",
        histogram(Reservoir::Uniform, &values),
    )];
    let text = render_with(&items, &options, TEXT);
    assert!(
        text.contains("u_bucket{le=\"2.5\"} 2\nu_bucket{le=\"50.0\"} 50\n"),
        "{text}"
    );
    assert!(text.contains("buckets estimated from the reservoir's samples"));
    // HDR quantiles are HdrHistogram's (the highest value equal to the median at 3
    // figures: 50.015). No quantile family unless asked for.
    assert!(!render(&items, OM).contains("_quantile"));
}

#[test]
fn meters_are_counters_with_rate_gauges() {
    let m = Cumulative::Meter {
        count: 42.0,
        last: MeterStats {
            count: 40.0,
            mean_rate: 0.5,
            m1: 1.25,
            m5: 2.0,
            m15: 3.0,
        },
    };
    let items = [item("meter", &["jobs"], "done", m)];
    let expected = "# TYPE jobs_done_m1_rate gauge\njobs_done_m1_rate 1.25\n\
                    # TYPE jobs_done_m5_rate gauge\njobs_done_m5_rate 2\n\
                    # TYPE jobs_done_m15_rate gauge\njobs_done_m15_rate 3\n\
                    # TYPE jobs_done_mean_rate gauge\njobs_done_mean_rate 0.5";
    assert_eq!(
        body(&render(&items, TEXT)),
        format!("# TYPE jobs_done_total counter\njobs_done_total 42\n{expected}")
    );
    assert_eq!(
        body(&render(&items, OM)),
        format!("# TYPE jobs_done counter\njobs_done_total 42\n{expected}\n# EOF")
    );
}

#[test]
fn labels_and_help_are_escaped() {
    let id = r#"hits{page="a\\b\"c\nd",user="é"}"#;
    let items = [item("inc", &["we\"b", "x\\y\nz"], id, counter(1.0))];
    let text = render(&items, TEXT);
    assert!(
        text.contains("we_b_x_y_z_hits_total{page=\"a\\\\b\\\"c\\nd\",user=\"é\"} 1\n"),
        "{text}"
    );
    // HELP: backslash and newline escaped; quotes too in OpenMetrics.
    assert!(
        text.contains("# HELP we_b_x_y_z_hits_total panoptic inc(['we\"b', 'x\\\\y\\nz'], 'hits')")
    );
    let om = render(&items, OM);
    assert!(om.contains("# HELP we_b_x_y_z_hits panoptic inc(['we\\\"b', 'x\\\\y\\nz'], 'hits')"));
    // Per-process labels: master, a worker id, a thread's label (escaped).
    let threads = [
        of(Tree::Master, item("set", &[], "g", Cumulative::Gauge(1.0))),
        of(
            Tree::Worker(3),
            item("set", &[], "g", Cumulative::Gauge(2.0)),
        ),
        of(
            Tree::Thread("3:1\"".into()),
            item("set", &[], "g", Cumulative::Gauge(3.0)),
        ),
    ];
    assert_eq!(
        body(&render(&threads, TEXT)),
        "# TYPE g gauge\ng{worker=\"master\"} 1\ng{worker=\"3\"} 2\ng{worker=\"3:1\\\"\"} 3"
    );
}

#[test]
fn names_and_label_names_are_sanitized() {
    let items = [
        item("inc", &["http.server", "GET /a-b"], "réq", counter(1.0)),
        item("set", &["2xx"], "rate:1", Cumulative::Gauge(1.0)),
        item(
            "set",
            &[],
            r#"t{le="1",worker="w",__x="2",quantile="q"}"#,
            Cumulative::Gauge(1.0),
        ),
        of(
            Tree::Worker(1),
            item("set", &[], r#"u{worker="w"}"#, Cumulative::Gauge(1.0)),
        ),
        // Not a tag block (keys are label names): all bare id.
        item("set", &[], r#"bad{a-b="1"}"#, Cumulative::Gauge(1.0)),
        item("set", &[], "broken{a=\"1\"", Cumulative::Gauge(1.0)),
        // Unsorted tags are sorted.
        item("set", &[], r#"v{b="1",a="2"}"#, Cumulative::Gauge(1.0)),
    ];
    let text = body(&render(&items, TEXT));
    for line in [
        "http_server_GET__a_b_r_q_total 1",
        "_2xx_rate_1 1",
        "t{exported___x=\"2\",exported_le=\"1\",exported_quantile=\"q\",exported_worker=\"w\"} 1",
        "u{exported_worker=\"w\",worker=\"1\"} 1",
        "bad_a_b__1__ 1",
        "broken_a__1_ 1",
        "v{a=\"2\",b=\"1\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
    }
    // A prefix goes in front as it is; a leading digit is then fine.
    let options = PrometheusOptions {
        prefix: "app:".into(),
        ..PrometheusOptions::default()
    };
    let text = render_with(&items[1..2], &options, TEXT);
    assert!(
        text.contains("\napp:2xx_rate_1 1\n")
            && text.contains("\napp:panoptic_export_skipped_series 0\n"),
        "{text}"
    );
}

#[test]
fn tag_blocks() {
    let tags = |pairs: &[(&str, &str)]| {
        Some(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>(),
        )
    };
    assert_eq!(
        split_tags(r#"r{a="1",b="x\"y\\z\n"}"#),
        ("r", tags(&[("a", "1"), ("b", "x\"y\\z\n")]))
    );
    // The first `{` that starts a well-formed block to the end.
    assert_eq!(split_tags(r#"a{b{k="v"}"#), ("a{b", tags(&[("k", "v")])));
    for untagged in [
        "x",
        "x{}",
        r#"x{a="1",}"#,
        r#"x{a="\q"}"#,
        r#"x{1a="1"}"#,
        r#"x{a="1"} "#,
        r#"x{a="1""#,
    ] {
        assert_eq!(split_tags(untagged), (untagged, None), "{untagged}");
    }
    // The fast path agrees: the canonical text is what split_tags would render.
    assert!(canonical(r#"a="1",b="x\"y""#));
    for odd in [
        "",
        r#"b="1",a="2""#,
        r#"a="1",a="2""#,
        r#"le="1""#,
        r#"__a="1""#,
        "a=\"1\n\"",
    ] {
        assert!(!canonical(odd), "{odd}");
    }
}

#[test]
fn clashing_names_keep_one_group_and_count_the_rest() {
    let items = [
        // Same name, other kinds: `inc` ranks before `set`, so the counter stays.
        item("set", &["a"], "b", Cumulative::Gauge(5.0)),
        item("inc", &["a"], "b", counter(1.0)),
        of(
            Tree::Worker(1),
            item("set", &["a"], "b", Cumulative::Gauge(5.0)),
        ),
        // Another path, the same name: the smaller path (['a'] before ['a', 'b']) wins.
        item("inc", &["a", "b"], "c", counter(1.0)),
        item("inc", &["a"], "b_c", counter(2.0)),
        // A gauge named like a counter's sample: a_b's counter claims a_b_total.
        item("set", &["a"], "b_total", Cumulative::Gauge(1.0)),
        // A gauge named like a summary's statistics.
        item("sample", &[], "s", summary(&[1.0])),
        item("set", &[], "s_max", Cumulative::Gauge(1.0)),
        // Empty name.
        item("inc", &[], "", counter(1.0)),
        // Label sets that repeat (tags unsorted, reserved names renamed) or a label name
        // twice in one series: the first in the store's order stays.
        item("set", &[], r#"d{a="1",b="2"}"#, Cumulative::Gauge(1.0)),
        item("set", &[], r#"d{b="2",a="1"}"#, Cumulative::Gauge(2.0)),
        item("set", &[], r#"d{a="1",a="2"}"#, Cumulative::Gauge(3.0)),
        item("set", &[], r#"e{le="1"}"#, Cumulative::Gauge(1.0)),
        item("set", &[], r#"e{exported_le="1"}"#, Cumulative::Gauge(2.0)),
    ];
    for format in [TEXT, OM] {
        let text = render(&items, format);
        let body = body(&text);
        let samples: Vec<&str> = body.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            samples,
            [
                "a_b_total 1",
                "a_b_c_total 2",
                "d{a=\"1\",b=\"2\"} 1",
                "e{exported_le=\"1\"} 1",
                "s_count 10",
                "s_sum 123.5",
                "s_min 1",
                "s_max 1",
                "s_avg 1",
                "s_sigma NaN",
            ],
            "{text}"
        );
        assert_eq!(skipped(&text), 9.0, "{text}");
    }
}

#[test]
fn groups_are_sorted_and_output_is_deterministic() {
    let mut items = vec![
        item("set", &["z"], "last", Cumulative::Gauge(1.0)),
        item("inc", &["a"], "first", counter(1.0)),
        item("set", &["m"], "mid", Cumulative::Gauge(1.0)),
    ];
    let one = render(&items, OM);
    items.reverse();
    assert_eq!(render(&items, OM), one);
    let names: Vec<&str> = one.lines().filter(|l| l.starts_with("# TYPE")).collect();
    assert_eq!(
        names,
        [
            "# TYPE a_first counter",
            "# TYPE m_mid gauge",
            "# TYPE z_last gauge",
            "# TYPE panoptic_export_skipped_series gauge"
        ]
    );
}

#[test]
fn an_empty_store() {
    let text = render(&[], TEXT);
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(text.ends_with(
        "# TYPE panoptic_export_skipped_series gauge\npanoptic_export_skipped_series 0\n"
    ));
    assert!(render(&[], OM).ends_with("panoptic_export_skipped_series 0\n# EOF\n"));
}

#[test]
fn numbers() {
    let go = |x: f64| {
        let mut out = Vec::new();
        push_go_float(x, &mut out);
        String::from_utf8(out).unwrap()
    };
    let cases = [
        (0.001, "0.001"),
        (0.0001, "0.0001"),
        (1e-5, "1e-05"),
        (2.5, "2.5"),
        (100000.0, "100000"),
        (1e6, "1e+06"),
        (1234567.5, "1.2345675e+06"),
        (-0.25, "-0.25"),
        (1e21, "1e+21"),
        (1.5e-300, "1.5e-300"),
        (f64::MAX, "1.7976931348623157e+308"),
        (0.0, "0"),
    ];
    for (x, s) in cases {
        assert_eq!(go(x), s, "{x}");
    }
    let value = |x: f64| {
        let mut out = Vec::new();
        push_value(x, &mut out);
        String::from_utf8(out).unwrap()
    };
    for n in [0u64, 7, 10, 99, 100, 101, 1001, 65536, 999_999_999_999_999] {
        assert_eq!(value(n as f64), n.to_string());
        assert_eq!(
            value(-(n as f64)),
            if n == 0 { "0".into() } else { format!("-{n}") }
        );
    }
    assert_eq!(value(123456789012.0), "123456789012");
    assert_eq!(value(-0.0), "0");
    assert_eq!(value(1e15), "1e+15");
    assert_eq!(value(0.1 + 0.2), "0.30000000000000004");
    assert_eq!(
        (
            value(f64::NAN),
            value(f64::INFINITY),
            value(f64::NEG_INFINITY)
        ),
        ("NaN".into(), "+Inf".into(), "-Inf".into())
    );
    // OpenMetrics' canonical examples.
    let canonical: Vec<String> = [
        0.0, 0.001, 0.01, 0.1, 0.9, 0.95, 0.999, 1.0, 1.7, 10.0, 1e-10, 1e-9, 1e-5, 1e-4, 1e5, 1e6,
        1e10,
    ]
    .iter()
    .map(|&x| label_number(x))
    .collect();
    assert_eq!(
        canonical,
        [
            "0.0", "0.001", "0.01", "0.1", "0.9", "0.95", "0.999", "1.0", "1.7", "10.0", "1e-10",
            "1e-09", "1e-05", "0.0001", "100000.0", "1e+06", "1e+10"
        ]
    );
}

#[test]
fn negotiation() {
    let prometheus2 = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    let prometheus3 = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1";
    let cases = [
        (prometheus2, OM),
        (prometheus3, OM),
        ("text/plain;version=0.0.4;q=0.5,*/*;q=0.1", TEXT),
        ("", TEXT),
        ("*/*", TEXT),
        ("application/json", TEXT),
        ("Application/OpenMetrics-Text; Version=1.0.0", OM),
        ("application/openmetrics-text; version=\"0.0.1\"", OM),
        ("application/openmetrics-text;version=2.0.0", TEXT),
        ("application/openmetrics-text;q=0", TEXT),
        ("application/openmetrics-text;q=abc", TEXT),
        ("text/plain, application/openmetrics-text", TEXT),
        ("application/openmetrics-text, text/plain", OM),
        ("*/*, application/openmetrics-text", OM),
        ("text/plain;q=0.4, application/openmetrics-text;q=0.6", OM),
        ("application/*", OM),
    ];
    for (accept, format) in cases {
        assert_eq!(negotiate(accept), format, "{accept}");
    }
    assert_eq!(
        content_type(TEXT),
        "text/plain; version=0.0.4; charset=utf-8"
    );
    assert_eq!(
        content_type(OM),
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
}

#[test]
fn options_are_checked() {
    let check = |f: fn(&mut PrometheusOptions)| {
        let mut o = PrometheusOptions::default();
        f(&mut o);
        validate_options(&o).map_err(|e| (e.field(), e.to_string()))
    };
    assert_eq!(check(|_| {}), Ok(()));
    assert_eq!(check(|o| o.prefix = "web_:x".into()), Ok(()));
    assert_eq!(
        check(|o| o.prefix = "1web".into()),
        Err(("options.prefix", "options.prefix must be empty or start a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*), got \"1web\"".into()))
    );
    assert!(check(|o| o.prefix = "we-b".into()).is_err());
    assert_eq!(
        check(|o| o.buckets = Some(vec![])),
        Err((
            "options.buckets",
            "options.buckets must hold at least one bound, got []".into()
        ))
    );
    assert_eq!(
        check(|o| o.buckets = Some(vec![1.0, f64::INFINITY])).unwrap_err().1,
        "options.buckets[1] must be a finite number of at least 0 (histogram values are never negative), got Infinity"
    );
    assert!(check(|o| o.buckets = Some(vec![-1.0]))
        .unwrap_err()
        .1
        .contains("got -1"));
    assert_eq!(
        check(|o| o.buckets = Some(vec![1.0, 5.0, 5.0]))
            .unwrap_err()
            .1,
        "options.buckets[2] must be greater than options.buckets[1] (5): bounds ascend, got 5"
    );
    assert_eq!(
        check(|o| o.quantiles = vec![0.5, 0.0]),
        Err((
            "options.quantiles",
            "options.quantiles[1] must be above 0 and at most 1, got 0".into()
        ))
    );
    assert!(check(|o| o.quantiles = vec![f64::NAN])
        .unwrap_err()
        .1
        .contains("got NaN"));
    assert_eq!(
        check(|o| o.quantiles = vec![0.9, 0.9]).unwrap_err().1,
        "options.quantiles[1] repeats 0.9"
    );
    // Invalid options still give valid output.
    let options = PrometheusOptions {
        prefix: "9 x".into(),
        buckets: Some(vec![5.0, f64::NAN, 1.0, 5.0]),
        quantiles: vec![2.0, 0.5, 0.5],
        ..PrometheusOptions::default()
    };
    let items = [item(
        "histogram",
        &[],
        "h",
        histogram(Reservoir::Hdr, &[3.0]),
    )];
    let text = render_with(&items, &options, TEXT);
    let les: Vec<&str> = text.lines().filter(|l| l.contains("_bucket")).collect();
    assert_eq!(
        les,
        [
            "_9_xh_bucket{le=\"1.0\"} 0",
            "_9_xh_bucket{le=\"5.0\"} 1",
            "_9_xh_bucket{le=\"+Inf\"} 1"
        ]
    );
    assert_eq!(text.matches("quantile=").count(), 1);
    // The skipped-series counter, named by the prefix alone, is a valid name too (found by the
    // prometheus_options fuzz target: it was `9_xpanoptic_export_skipped_series`).
    assert!(
        text.contains("\n_9_xpanoptic_export_skipped_series 0\n"),
        "{text}"
    );
}

#[test]
fn a_store_writes_its_cluster_and_process_series() {
    use crate::export::{Origin, Store};
    use crate::gather::tree::Format;
    use crate::gather::Gathering;
    use crate::snapshot::{Entry, Snapshot, Value};
    use std::sync::Arc;
    let mut g = Gathering::default();
    let mut store = Store::new(Origin::default());
    store.keep_processes();
    g.keep_local(
        Snapshot {
            k: 0.0,
            pid: 1,
            entries: vec![Entry {
                key: Arc::new(SeriesKey::new("inc", &["http"], r#"requests{code="200"}"#)),
                value: Value::Counter {
                    count: 2.0,
                    total: 7.0,
                },
            }],
            ..Snapshot::default()
        },
        &[],
    );
    let format = Format {
        interval: 100.0,
        scale_factor: 1.0,
        time_stamp: 100.0,
        percentiles: Arc::from([50.0]),
    };
    store.add(&g.deliver(0.0, format));
    let mut out = Vec::new();
    write(
        store.series(),
        &PrometheusOptions::default(),
        TEXT,
        None,
        &mut out,
    );
    let text = String::from_utf8(out).unwrap();
    assert_eq!(
        body(&text),
        "# TYPE http_requests_total counter\n\
         http_requests_total{code=\"200\"} 7\n\
         http_requests_total{code=\"200\",worker=\"master\"} 7"
    );
}

#[test]
fn own_metrics_come_after_the_series_and_keep_their_names() {
    use crate::export::own::{Own, OwnKind};
    let mut own = Own::default();
    own.add(
        "engine_series",
        OwnKind::Gauge,
        "series",
        &[("worker", "1")],
        3.0,
    );
    own.add(
        "deliveries",
        OwnKind::Counter,
        "deliveries \\ made",
        &[],
        7.0,
    );
    own.add(
        "queue_bytes",
        OwnKind::Gauge,
        "bytes",
        &[("target", "a\"b")],
        5.0,
    );
    // A series whose names would be an own family's: left out, counted.
    let items = [
        item("inc", &["panoptic"], "deliveries", counter(1.0)),
        item("inc", &["http"], "requests", counter(2.0)),
    ];
    let series = items.iter().map(|(key, process, value)| Series {
        key,
        process: process.as_ref(),
        value,
    });
    let mut out = Vec::new();
    write(
        series,
        &PrometheusOptions::default(),
        TEXT,
        Some(&own),
        &mut out,
    );
    let text = String::from_utf8(out).unwrap();
    let expected = "# HELP http_requests_total panoptic inc(['http'], 'requests'): the sum of increments since the start
# TYPE http_requests_total counter
http_requests_total 2
# HELP panoptic_deliveries_total deliveries \\\\ made
# TYPE panoptic_deliveries_total counter
panoptic_deliveries_total 7
# HELP panoptic_engine_series series
# TYPE panoptic_engine_series gauge
panoptic_engine_series{worker=\"1\"} 3
# HELP panoptic_queue_bytes bytes
# TYPE panoptic_queue_bytes gauge
panoptic_queue_bytes{target=\"a\\\"b\"} 5
";
    assert!(text.starts_with(expected), "{text}");
    assert!(
        text.ends_with("panoptic_export_skipped_series 1\n"),
        "{text}"
    );
    let mut out = Vec::new();
    let options = PrometheusOptions {
        prefix: "app_".into(),
        ..PrometheusOptions::default()
    };
    write(std::iter::empty(), &options, OM, Some(&own), &mut out);
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("# TYPE app_panoptic_deliveries counter\n# HELP app_panoptic_deliveries deliveries \\\\ made\napp_panoptic_deliveries_total 7\n"), "{text}");
    assert!(
        text.contains(
            "# TYPE app_panoptic_queue_bytes gauge\n# UNIT app_panoptic_queue_bytes bytes\n"
        ),
        "{text}"
    );
    assert!(text.ends_with("# EOF\n"));
}
