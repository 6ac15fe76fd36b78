//! The master's merge: `Merged::add` of every process's part of an interval (counters,
//! summaries, histograms), and one histogram merged into another. Throughput: series merged per
//! second (for `distribution_merge`, merges per second).

mod common;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use panoptic_core::snapshot::{Merged, Value};
use panoptic_core::stats::summary::Summary;

use common::{config, counter, histogram, values};

/// `parts` processes' values of the same `n` series (ids 0..n), merged into a fresh interval.
fn bench_parts(
    c: &mut Criterion,
    name: &str,
    parts: usize,
    n: usize,
    value: impl Fn(usize, usize) -> Value,
) {
    let ids: Vec<u32> = (0..n as u32).collect();
    let values: Vec<Vec<Value>> = (0..parts)
        .map(|p| (0..n).map(|i| value(p, i)).collect())
        .collect();
    let mut group = c.benchmark_group("merge");
    group.throughput(Throughput::Elements((parts * n) as u64));
    group.bench_function(
        BenchmarkId::new(format!("merged_add_{name}"), format!("{parts}x{n}")),
        |b| {
            b.iter(|| {
                let mut merged = Merged::default();
                for part in &values {
                    merged.add(&ids, part).unwrap();
                }
                black_box(merged)
            })
        },
    );
    group.finish();
}

fn merge(c: &mut Criterion) {
    bench_parts(c, "counters", 8, 15_000, |p, i| counter(p + i));
    let xs = values(64);
    bench_parts(c, "summaries", 8, 5_000, |p, i| {
        let mut s = Summary::default();
        for &x in &xs[(p + i) % 32..][..32] {
            s.push(x);
        }
        Value::Summary(s)
    });
    bench_parts(c, "histograms", 8, 1_000, |p, i| {
        Value::Histogram(Box::new(histogram((p * 1000 + i) as u64)))
    });

    let mut group = c.benchmark_group("merge");
    group.throughput(Throughput::Elements(1));
    let mut into = histogram(1);
    let other = histogram(2);
    group.bench_function("distribution_merge", |b| {
        b.iter(|| into.merge(black_box(&other)).unwrap())
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = merge
}
criterion_main!(benches);
