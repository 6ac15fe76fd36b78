//! Recording and collecting in the engine: a summary's push, a histogram's batch, a meter's
//! mark, and the close of an interval of counters. Throughput: values (or series) per second.

mod common;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use panoptic_core::record::engine::{Engine, Kind};
use panoptic_core::snapshot::Profile;
use panoptic_core::stats::histogram::{Distribution, HistogramOptions, Reservoir};
use panoptic_core::stats::meter::Meter;
use panoptic_core::stats::summary::Summary;

use common::{config, key, values, BATCH};

fn record(c: &mut Criterion) {
    let batch = values(BATCH);
    let mut group = c.benchmark_group("record");
    group.throughput(Throughput::Elements(BATCH as u64));

    group.bench_function("summary_push", |b| {
        let mut s = Summary::default();
        b.iter(|| {
            for &v in &batch {
                s.push(black_box(v));
            }
        });
        black_box(s);
    });

    for reservoir in ["hdr", "uniform", "decaying"] {
        let options =
            HistogramOptions::new(3, 0.001, 3_600_000.0, Reservoir::parse(reservoir).unwrap())
                .unwrap();
        let mut d = Distribution::new(&options, 7);
        // Grown to the values' range first: the bench measures recording, not allocation.
        d.record_all(&batch, 0.0);
        group.bench_with_input(
            BenchmarkId::new("histogram_record_all", reservoir),
            &batch,
            |b, batch| b.iter(|| d.record_all(black_box(batch), 0.0)),
        );
    }

    group.bench_function("meter_mark", |b| {
        let mut meter = Meter::new(0.0);
        let mut now = 0.0;
        b.iter(|| {
            // One event per millisecond: a 5-second tick every 5,000 marks, as in a busy app.
            for _ in 0..BATCH {
                now += 1.0;
                black_box(meter.mark(1.0, now));
            }
        });
    });
    group.finish();
}

fn collect(c: &mut Criterion) {
    let mut group = c.benchmark_group("collect");
    for n in [10_000usize, 100_000] {
        // persist: every counter is reported (JS writes the slots; the bench cannot, and an
        // untouched counter is skipped without persist). Each close reads and zeroes every slot
        // and builds the snapshot, as at an interval boundary.
        let mut engine = Engine::new(Profile {
            interval: 1000.0,
            persist: true,
            ..Profile::default()
        });
        for i in 0..n {
            engine.define(Kind::Counter, key("inc", i));
        }
        let mut k = 0.0;
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(BenchmarkId::new("engine_close_counters", n), |b| {
            b.iter(|| {
                k += 1.0;
                black_box(engine.close(k, Vec::new(), Default::default()))
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = record, collect
}
criterion_main!(benches);
