//! serve()'s Prometheus options: `Settings::new` (prefix, buckets, quantiles, history) and
//! `prometheus::validate_options` on arbitrary values, then the exposition written with them.
//!
//! Checked: no panic; `Settings::new` accepts exactly what `validate_options` and the history
//! range accept; with any options (valid or not, as `prometheus::write` promises) the
//! exposition of a histogram, a counter and a summary is UTF-8, every sample line starts with a
//! valid metric name, and OpenMetrics ends with `# EOF`.
#![no_main]

use std::sync::Arc;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use panoptic_core::export::own::{Own, OwnKind};
use panoptic_core::export::prometheus::{self, PrometheusOptions, TextFormat};
use panoptic_core::export::routes::{Settings, MAX_HISTORY};
use panoptic_core::export::{Cumulative, Origin, Series, Store};
use panoptic_core::snapshot::SeriesKey;
use panoptic_core::stats::histogram::{Distribution, HistogramOptions};
use panoptic_core::stats::summary::Summary;

#[derive(Arbitrary, Debug)]
struct Input {
    prefix: String,
    buckets: Option<Vec<f64>>,
    /// Layouts by name (the histogram below is `http_latency_GET`).
    named_buckets: Vec<(String, Vec<f64>)>,
    quantiles: Option<Vec<f64>>,
    per_process: bool,
    history: usize,
    self_metrics: bool,
    /// A label value of an own metric (escaped like any label value).
    label: String,
    scale_factor: f64,
    values: Vec<f64>,
}

fn metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fuzz_target!(|input: Input| {
    let settings = Settings::new(
        &input.prefix,
        input.buckets.clone(),
        input.named_buckets.clone(),
        input.quantiles.clone(),
        input.per_process,
        input.history,
        input.self_metrics,
    );
    let options = PrometheusOptions {
        prefix: input.prefix,
        buckets: input.buckets,
        named_buckets: input.named_buckets,
        quantiles: input.quantiles.unwrap_or_default(),
        scale_factor: input.scale_factor,
    };
    let valid = prometheus::validate_options(&options).is_ok();
    assert_eq!(
        settings.is_ok(),
        valid && (1..=MAX_HISTORY).contains(&input.history),
        "Settings::new agrees with validate_options"
    );

    let mut histogram = Distribution::new(&HistogramOptions::default(), 7);
    histogram.record_all(&input.values, 0.0);
    let mut summary = Summary::default();
    input.values.iter().for_each(|&x| summary.push(x));
    let keys = [
        Arc::new(SeriesKey::new("histogram", &["http", "latency"], "GET")),
        Arc::new(SeriesKey::new("inc", &["http"], "requests")),
        Arc::new(SeriesKey::new("sample", &[], "size")),
    ];
    let values = [
        Cumulative::Histogram(Box::new(histogram)),
        Cumulative::Counter {
            total: input.values.iter().sum(),
            calls: input.values.len() as f64,
        },
        Cumulative::Summary {
            count: summary.count,
            sum: summary.total,
            last: summary,
        },
    ];
    let own = input.self_metrics.then(|| {
        let mut own = Own::of_store(&Store::new(Origin::default()));
        let labels = [("server", input.label.as_str())];
        own.add("fuzz_bytes", OwnKind::Gauge, &input.label, &labels, 1.0);
        own
    });
    for format in [TextFormat::Prometheus, TextFormat::OpenMetrics] {
        let series = keys.iter().zip(&values).map(|(key, value)| Series {
            key,
            process: None,
            value,
        });
        let mut out = Vec::new();
        prometheus::write(series, &options, format, own.as_ref(), &mut out);
        let text = std::str::from_utf8(&out).expect("the exposition is UTF-8");
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap_or_default();
            assert!(metric_name(name), "{name:?} is a metric name, in {line:?}");
        }
        if format == TextFormat::OpenMetrics {
            assert!(text.ends_with("# EOF\n"), "OpenMetrics ends with # EOF");
        }
    }
});
