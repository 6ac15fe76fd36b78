//! Fixtures shared by the criterion benches: values, keys and snapshots.
// Each bench binary compiles this module and uses only part of it.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use criterion::Criterion;
use panoptic_core::snapshot::{Entry, SeriesKey, Snapshot, Value};
use panoptic_core::stats::histogram::{Distribution, HistogramOptions};

/// Values per recorded batch: the length of the JS batch buffer in pairs (engine::BATCH_LENGTH / 2),
/// what one drain hands to the engine at most.
pub const BATCH: usize = 4096;

/// Short measurements, so `cargo bench -p panoptic-core` runs in a few minutes on 2 cores: the
/// throughputs are stable to a few percent with 20 samples of about a second.
pub fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(20)
}

/// `n` latency-like values, log-uniform from 0.1 to 10,000 (ms), from a fixed-seed generator
/// (the same every run).
pub fn values(n: usize) -> Vec<f64> {
    let mut rng = fastrand::Rng::with_seed(0x2545_f491);
    (0..n)
        .map(|_| (0.1f64.ln() + rng.f64() * (100_000f64).ln()).exp())
        .collect()
}

/// The key of series `i`: 100 ids per path, as the JS benchmarks lay them out.
pub fn key(method: &str, i: usize) -> SeriesKey {
    SeriesKey {
        method: method.into(),
        path: vec!["svc".to_string(), format!("route{}", i / 100)].into(),
        id: format!("n{}", i % 100).into(),
    }
}

/// A default-options histogram holding `BATCH` values (seeded by `seed`).
pub fn histogram(seed: u64) -> Distribution {
    let mut d = Distribution::new(&HistogramOptions::default(), seed);
    let mut v = values(BATCH);
    fastrand::Rng::with_seed(seed).shuffle(&mut v);
    d.record_all(&v[..BATCH / 4], 0.0);
    d
}

/// One interval of `n` series made by `value(i)`, keyed with `method`.
pub fn snapshot(n: usize, method: &str, value: impl Fn(usize) -> Value) -> Snapshot {
    Snapshot {
        k: 1000.0,
        pid: 4242,
        entries: (0..n)
            .map(|i| Entry {
                key: Arc::new(key(method, i)),
                value: value(i),
            })
            .collect(),
        ..Snapshot::default()
    }
}

/// A counter recorded `i % 7 + 1` times by 1 (whole numbers: the wire's compact form).
pub fn counter(i: usize) -> Value {
    let n = (i % 7 + 1) as f64;
    Value::Counter { count: n, total: n }
}
