//! Snapshots on the wire (a worker's message to its master) and as delivery trees: encode and
//! decode of 15,000 counters (the first message of a worker, with every key, and a steady one,
//! with indexes only) and of 1,000 histograms, and the JSON tree of each. Throughput: series per
//! second.

mod common;

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use panoptic_core::gather::tree::{render, Format};
use panoptic_core::snapshot::{SeriesKey, Snapshot, Value};
use panoptic_core::wire::{decode, encode, Dictionary, Keys, Untouched};

use common::{config, counter, histogram, snapshot};

const EPOCH: u64 = 0x5eed;

fn bench_snapshot(c: &mut Criterion, name: &str, snap: &Snapshot) {
    let n = snap.entries.len();
    let indexes: Vec<u32> = (0..n as u32).collect();
    let no_definitions: [(u32, &SeriesKey, Untouched); 0] = [];
    // After the first message the master has every key: only indexes travel.
    let steady = Keys::Delta {
        indexes: &indexes,
        definitions: &no_definitions,
        forgotten: &[],
        dictionary: Dictionary {
            epoch: EPOCH,
            serial: 1,
        },
    };
    let first = Keys::All { epoch: EPOCH };
    let mut group = c.benchmark_group("wire");
    group.throughput(Throughput::Elements(n as u64));
    for (form, keys) in [("first", first), ("steady", steady)] {
        let text = encode(snap, keys);
        let id = format!("{name}_{form}");
        group.bench_function(BenchmarkId::new("encode", &id), |b| {
            b.iter(|| black_box(encode(black_box(snap), keys)))
        });
        group.bench_function(BenchmarkId::new("decode", &id), |b| {
            b.iter(|| black_box(decode(black_box(&text)).unwrap()))
        });
    }
    group.finish();

    let format = Format {
        interval: 1000.0,
        scale_factor: 1.0,
        time_stamp: 1_700_000_001_000.0,
        percentiles: Arc::from([50.0, 75.0, 90.0, 95.0, 99.0, 99.9].as_slice()),
    };
    let mut group = c.benchmark_group("tree");
    group.throughput(Throughput::Elements(n as u64));
    group.bench_function(BenchmarkId::new("render_json", name), |b| {
        b.iter(|| {
            let mut out = Vec::new();
            render(snap.series(), true, &format, &mut out);
            black_box(out)
        })
    });
    group.finish();
}

fn wire(c: &mut Criterion) {
    bench_snapshot(c, "counters_15000", &snapshot(15_000, "inc", counter));
    bench_snapshot(
        c,
        "histograms_1000",
        &snapshot(1_000, "histogram", |i| {
            Value::Histogram(Box::new(histogram(i as u64)))
        }),
    );
}

criterion_group! {
    name = benches;
    config = config();
    targets = wire
}
criterion_main!(benches);
