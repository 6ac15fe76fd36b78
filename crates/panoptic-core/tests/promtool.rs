//! The exposition checked by real tools, installed by `node scripts/backends.js` (which `npm test`
//! runs first), on every metric type, per-process series, escaping, sanitized names, clashes, NaN
//! and infinities:
//! - the Prometheus text format by `promtool check metrics` (Prometheus 2.x: its parser and its
//!   linter);
//! - OpenMetrics by the Python client's OpenMetrics parser (python3-prometheus-client), which
//!   enforces the spec's MUSTs that Prometheus' own parser lets pass (name clashes, negative
//!   sums, `# EOF`). A real Prometheus also scrapes both formats from a real cluster
//!   (`__test__/prometheus.test.js`).

use std::io::Write;
use std::process::{Command, Stdio};

use panoptic_core::export::own::Own;
use panoptic_core::export::prometheus::{write, PrometheusOptions, TextFormat};
use panoptic_core::export::push::{PushStats, PUSH_GAUGES};
use panoptic_core::export::server::{ServerStats, SERVER_GAUGES};
use panoptic_core::export::{Cumulative, Origin, Process, Series, Store};
use panoptic_core::gather::Tree;
use panoptic_core::snapshot::SeriesKey;
use panoptic_core::stats::histogram::{Distribution, HistogramOptions, Reservoir};
use panoptic_core::stats::meter::MeterStats;
use panoptic_core::stats::summary::Summary;

type Item = (SeriesKey, Option<Process>, Cumulative);

fn item(method: &str, path: &[&str], id: &str, process: Option<Tree>, value: Cumulative) -> Item {
    let key = SeriesKey {
        method: method.into(),
        path: path.iter().map(|p| p.to_string()).collect(),
        id: id.into(),
    };
    (key, process.map(|from| Process { from, pid: 7 }), value)
}

fn histogram(reservoir: Reservoir, values: &[f64]) -> Cumulative {
    let options = HistogramOptions::new(3, 0.001, 3_600_000.0, reservoir).unwrap();
    let mut d = Distribution::new(&options, 1);
    d.record_all(values, 1.7e12);
    Cumulative::Histogram(Box::new(d))
}

fn summary(values: &[f64]) -> Cumulative {
    let mut last = Summary::default();
    values.iter().for_each(|&v| last.push(v));
    Cumulative::Summary {
        count: values.len() as f64,
        sum: values.iter().sum(),
        last,
    }
}

/// Every kind of series, in the cluster view and per process (names promtool's linter accepts:
/// snake_case, base units, counters ending in `_total`).
fn every_type() -> Vec<Item> {
    let latencies: Vec<f64> = (1..=500).map(|i| f64::from(i) * 3.7).collect();
    let meter = Cumulative::Meter {
        count: 12.0,
        last: MeterStats {
            count: 12.0,
            mean_rate: 0.4,
            m1: 0.2,
            m5: 0.1,
            m15: 0.05,
        },
    };
    let tagged = r#"requests{method="GET",path="/a\"b\\c\nd",status="200"}"#;
    let mut items = Vec::new();
    for process in [
        None,
        Some(Tree::Master),
        Some(Tree::Worker(1)),
        Some(Tree::Thread("1:2".into())),
    ] {
        let p = || process.clone();
        items.extend([
            item(
                "inc",
                &["http"],
                "requests",
                p(),
                Cumulative::Counter {
                    total: 42.0,
                    calls: 40.0,
                },
            ),
            item(
                "inc",
                &["http"],
                tagged,
                p(),
                Cumulative::Counter {
                    total: 7.5,
                    calls: 3.0,
                },
            ),
            item("set", &["pool"], "size", p(), Cumulative::Gauge(16.0)),
            item(
                "gauge",
                &["queue"],
                "length",
                p(),
                Cumulative::Gauge(f64::NAN),
            ),
            item(
                "set",
                &["queue"],
                "limit",
                p(),
                Cumulative::Gauge(f64::INFINITY),
            ),
            item(
                "set",
                &["queue"],
                "floor",
                p(),
                Cumulative::Gauge(f64::NEG_INFINITY),
            ),
            item(
                "rate",
                &["net"],
                "bytes_per_second",
                p(),
                Cumulative::Gauge(1.5e-7),
            ),
            item("sample", &["db"], "rows", p(), summary(&[3.0, -14.0, 10.0])),
            item(
                "timedSample",
                &["db"],
                "query_seconds",
                p(),
                summary(&[0.25]),
            ),
            item(
                "histogram",
                &["http"],
                "latency",
                p(),
                histogram(Reservoir::Hdr, &latencies),
            ),
            // Named with its unit: a UNIT line where the scale factor makes the values seconds.
            item(
                "histogram",
                &["http"],
                "latency_seconds",
                p(),
                histogram(Reservoir::Hdr, &[0.01, 0.05, 0.3]),
            ),
            item(
                "histogram",
                &["http"],
                "size",
                p(),
                histogram(Reservoir::Uniform, &latencies),
            ),
            item(
                "histogram",
                &["http"],
                "wait",
                p(),
                histogram(Reservoir::Decaying, &latencies),
            ),
            item(
                "histogram",
                &["http"],
                "idle",
                p(),
                histogram(Reservoir::Hdr, &[]),
            ),
            item("meter", &["jobs"], "done", p(), meter.clone()),
            // Sanitized names and a leading digit.
            item(
                "inc",
                &["2xx.responses"],
                "count-all",
                p(),
                Cumulative::Counter {
                    total: 1.0,
                    calls: 1.0,
                },
            ),
            // Tags named like reserved labels.
            item(
                "set",
                &["pool"],
                r#"busy{le="1",worker="w"}"#,
                p(),
                Cumulative::Gauge(2.0),
            ),
            // Clashes: a gauge named like the counter's sample, another kind on one name.
            item(
                "set",
                &["http"],
                "requests_total",
                p(),
                Cumulative::Gauge(1.0),
            ),
            item("set", &["jobs"], "done", p(), Cumulative::Gauge(1.0)),
        ]);
    }
    items
}

fn render(items: &[Item], options: &PrometheusOptions, format: TextFormat) -> String {
    let series = items.iter().map(|(key, process, value)| Series {
        key,
        process: process.as_ref(),
        value,
    });
    let mut out = Vec::new();
    write(series, options, format, Some(&own()), &mut out);
    String::from_utf8(out).unwrap()
}

/// panoptic's own metrics as a master with a server and a pusher writes them (an empty store
/// writes every counter; no delivery: no engine gauges).
fn own() -> Own {
    let mut own = Own::of_store(&Store::new(Origin::default()));
    let server = ServerStats::default();
    let labels = [("server", "127.0.0.1:9464")];
    own.stats("http", "the server", &server, SERVER_GAUGES, &labels);
    let push = PushStats::default();
    let labels = [("target", "influx")];
    own.stats("push", "the pusher", &push, PUSH_GAUGES, &labels);
    own
}

/// Runs `promtool check metrics` on `text`: (exit code, its stderr and stdout).
fn promtool(text: &str) -> (Option<i32>, String) {
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => panic!(
            "promtool could not be run ({e}): install it with `node scripts/backends.js prometheus` (npm test does)"
        ),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&output.stderr).to_string()
        + &String::from_utf8_lossy(&output.stdout);
    (output.status.code(), said)
}

/// Runs the Python client's OpenMetrics parser on `text`: Ok, or its error.
fn openmetrics_parser(text: &str) -> Result<(), String> {
    const PARSE: &str = "import sys\n\
        from prometheus_client.openmetrics.parser import text_string_to_metric_families\n\
        families = list(text_string_to_metric_families(sys.stdin.read()))\n\
        print(len(families))\n";
    let child = Command::new("/usr/bin/python3")
        .args(["-c", PARSE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => panic!(
            "/usr/bin/python3 could not be run ({e}): install the OpenMetrics parser with `node scripts/backends.js openmetrics` (npm test does)"
        ),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        !said.contains("No module named"),
        "{said}: install it with `node scripts/backends.js openmetrics` (npm test does)"
    );
    if output.status.success() {
        Ok(())
    } else {
        Err(said.lines().last().unwrap_or("").to_string())
    }
}

fn option_sets() -> [PrometheusOptions; 3] {
    [
        PrometheusOptions::default(),
        PrometheusOptions {
            prefix: "app_".into(),
            buckets: Some(vec![0.5, 10.0, 250.0, 1e6]),
            // A layout of its own for one histogram (prom-client's GC buckets).
            named_buckets: vec![(
                "http_latency_seconds".into(),
                vec![0.001, 0.01, 0.1, 1.0, 2.0, 5.0],
            )],
            quantiles: vec![0.5, 0.99, 1.0],
            scale_factor: 1000.0,
        },
        // The default buckets in seconds (0.001 to 10).
        PrometheusOptions {
            quantiles: vec![0.99],
            scale_factor: 1000.0,
            ..PrometheusOptions::default()
        },
    ]
}

#[test]
fn openmetrics_parser_accepts_every_type() {
    let items = every_type();
    for options in option_sets() {
        let text = render(&items, &options, TextFormat::OpenMetrics);
        assert_eq!(openmetrics_parser(&text), Ok(()), "{text}");
        // The negative sum of `db_rows` (-1) is left out; UNIT lines are written where the
        // unit is exact (times at scaleFactor 1000: seconds) and the name ends with it.
        assert!(!text.contains("db_rows_sum"));
        let seconds = options.scale_factor == 1000.0;
        for family in ["db_query_seconds", "http_latency_seconds"] {
            let unit = format!("# UNIT {}{family} seconds\n", options.prefix);
            assert_eq!(text.contains(&unit), seconds, "{unit} in\n{text}");
        }
        // And panoptic's own `panoptic_push_queued_bytes`.
        let own = format!(
            "# UNIT {}panoptic_push_queued_bytes bytes\n",
            options.prefix
        );
        assert!(text.contains(&own), "{own} in\n{text}");
        assert_eq!(text.matches("# UNIT").count(), if seconds { 3 } else { 1 });
    }
    assert_eq!(
        openmetrics_parser(&render(
            &[],
            &PrometheusOptions::default(),
            TextFormat::OpenMetrics
        )),
        Ok(())
    );
    // The check is real: a clash and a negative sum are refused.
    let clash = "# TYPE a counter\na_total 1\n# TYPE a_total gauge\na_total 2\n# EOF\n";
    assert!(openmetrics_parser(clash)
        .unwrap_err()
        .contains("Clashing name"));
    let negative = "# TYPE s summary\ns_count 1\ns_sum -3\n# EOF\n";
    assert!(openmetrics_parser(negative).is_err());
}

#[test]
fn promtool_accepts_every_type() {
    let items = every_type();
    for options in option_sets() {
        let text = render(&items, &options, TextFormat::Prometheus);
        let (code, said) = promtool(&text);
        assert_eq!(code, Some(0), "promtool check metrics: {said}\n{text}");
        // Every type made it, and the clashing series were left out and counted.
        for name in [
            "http_requests_total{",
            "pool_size",
            "queue_length",
            "net_bytes_per_second",
            "db_rows_count",
            "db_rows_sigma",
            "db_query_seconds_sum",
            "http_latency_bucket",
            "http_latency_seconds_bucket",
            "http_size_bucket",
            "http_wait_bucket",
            "http_idle_count",
            "jobs_done_total",
            "jobs_done_m15_rate",
        ] {
            let name = format!("\n{}{name}", options.prefix);
            assert!(text.contains(&name), "{name} in\n{text}");
        }
        // A leading digit gets a `_` unless a prefix comes first.
        let digit = if options.prefix.is_empty() {
            "_"
        } else {
            "app_"
        };
        assert!(text.contains(&format!("\n{digit}2xx_responses_count_all_total ")));
        let skipped = format!("\n{}panoptic_export_skipped_series 8\n", options.prefix);
        assert!(text.contains(&skipped), "{text}");
    }
}

#[test]
fn promtool_rejects_what_it_should() {
    // The check is real: promtool fails a duplicate sample and an unescaped label value.
    let (code, _) = promtool("# TYPE a gauge\na 1\na 2\n");
    assert_ne!(code, Some(0));
    let (code, _) = promtool("# TYPE a gauge\na{b=\"x\ny\"} 1\n");
    assert_ne!(code, Some(0));
}

#[test]
fn an_empty_store_is_valid() {
    let text = render(&[], &PrometheusOptions::default(), TextFormat::Prometheus);
    let (code, said) = promtool(&text);
    assert_eq!(code, Some(0), "{said}\n{text}");
}
