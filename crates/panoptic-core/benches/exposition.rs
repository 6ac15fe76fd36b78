//! `GET /metrics`: the Prometheus text and OpenMetrics exposition of 100,000 and 1,000,000
//! counters with two labels (`requests{method="m<i>",status="s<j>"}` under ten metric names), the
//! series `benchmark/exposition.js` gives prom-client. Throughput: series per second.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use panoptic_core::export::prometheus::{write, PrometheusOptions, TextFormat};
use panoptic_core::export::{Cumulative, Series};
use panoptic_core::snapshot::SeriesKey;

/// `n` tagged counters: ten names, each with `n / 10` (method, status) pairs.
fn counters(n: usize) -> Vec<(SeriesKey, Cumulative)> {
    (0..n)
        .map(|i| {
            let (name, rest) = (i % 10, i / 10);
            let key = SeriesKey {
                method: "inc".into(),
                path: vec!["http".to_string()].into(),
                id: format!(
                    "requests{name}{{method=\"m{}\",status=\"s{}\"}}",
                    rest % 1000,
                    rest / 1000
                )
                .into(),
            };
            let value = Cumulative::Counter {
                total: (i * 7) as f64,
                calls: i as f64,
            };
            (key, value)
        })
        .collect()
}

fn exposition(c: &mut Criterion) {
    let options = PrometheusOptions::default();
    let mut group = c.benchmark_group("exposition");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    for n in [100_000, 1_000_000] {
        let series = counters(n);
        group.throughput(Throughput::Elements(n as u64));
        for (name, format) in [
            ("prometheus", TextFormat::Prometheus),
            ("openmetrics", TextFormat::OpenMetrics),
        ] {
            let mut out = Vec::new();
            group.bench_function(BenchmarkId::new(name, n), |b| {
                b.iter(|| {
                    out.clear();
                    let iter = series.iter().map(|(key, value)| Series {
                        key,
                        process: None,
                        value,
                    });
                    write(iter, &options, format, None, &mut out);
                    black_box(out.len())
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, exposition);
criterion_main!(benches);
