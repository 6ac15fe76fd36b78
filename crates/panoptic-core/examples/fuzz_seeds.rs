//! Writes the fuzz targets' seed corpora (`fuzz/corpus/<target>/`, see FUZZING.md): messages and
//! encodings as the core makes them, so the fuzzer starts from inputs that pass every check and
//! mutates from there. Deterministic (fixed seeds): rerunning it rewrites the same files.
//!
//! `cargo run -p panoptic-core --example fuzz_seeds` (from the repository root).

use std::fs;
use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use panoptic_core::metrix::bucketed::Quantiles;
use panoptic_core::metrix::bucketed::{BucketedHistogram, BucketedOptions, Layout};
use panoptic_core::metrix::frugal::FrugalHistogram;
use panoptic_core::snapshot::{Counts, Entry, Profile, SeriesKey, Snapshot, Value};
use panoptic_core::stats::histogram::{Distribution, HistogramOptions, Reservoir};
use panoptic_core::stats::meter::Meter;
use panoptic_core::stats::rate::RateTracker;
use panoptic_core::stats::summary::Summary;
use panoptic_core::trace::frame::{self, kind};
use panoptic_core::wire::{self, Dictionary, Keys};

/// Latency-like values from a fixed-seed generator: log-uniform from 0.01 to 10,000.
fn values(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..n)
        .map(|_| (0.01f64.ln() + rng.f64() * 1e6f64.ln()).exp())
        .collect()
}

fn distribution(reservoir: Reservoir, n: usize) -> Distribution {
    let options = HistogramOptions::new(3, 0.001, 3_600_000.0, reservoir).unwrap();
    let mut d = Distribution::new(&options, 42);
    d.record_all(&values(n, n as u64), 1_000.0);
    d
}

fn meter() -> Meter {
    let mut m = Meter::new(0.0);
    for t in 0..50 {
        m.mark(3.0, t as f64 * 100.0);
    }
    m
}

fn write(root: &Path, target: &str, name: &str, bytes: &[u8]) {
    let dir = root.join(target);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(name), bytes).unwrap();
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    let root = root.as_path();

    // Histograms: each reservoir, empty, a few values, a full reservoir.
    let mut histograms = Vec::new();
    for reservoir in [Reservoir::Hdr, Reservoir::Uniform, Reservoir::Decaying] {
        for n in [0, 5, 2_000] {
            let d = distribution(reservoir, n);
            let mut out = Vec::new();
            d.encode(&mut out);
            write(
                root,
                "histogram",
                &format!("{}-{n}", reservoir.as_str()),
                &out,
            );
            histograms.push(d);
        }
    }

    // Meters and rates.
    let mut m = meter();
    let stats = m.stats(5_000.0);
    let mut out = Vec::new();
    stats.encode(&mut out);
    write(root, "meter_rate", "meter", &out);
    let mut tracker = RateTracker::new(1_000.0).unwrap();
    for (i, v) in [10.0, 25.0, 40.0, 5.0, 30.0].into_iter().enumerate() {
        tracker.observe(v, i as f64 * 250.0);
    }
    let rate = tracker.take().unwrap();
    let mut out = Vec::new();
    rate.encode(&mut out);
    write(root, "meter_rate", "rate", &out);

    // metrix: bucketed (the default layout and a coarse one), frugal.
    for (name, options) in [
        ("default", BucketedOptions::default()),
        (
            "coarse",
            BucketedOptions {
                max: 1_000.0,
                error: 0.1,
                ..BucketedOptions::default()
            },
        ),
    ] {
        let (layout, _) = options.build().unwrap();
        let layout: Arc<Layout> = layout;
        for n in [0, 7, 5_000] {
            let mut h = BucketedHistogram::new(layout.clone());
            values(n, 9).into_iter().for_each(|x| {
                h.add(x);
            });
            let mut out = Vec::new();
            h.encode(&mut out);
            write(root, "metrix_bucketed", &format!("{name}-{n}"), &out);
        }
    }
    let quantiles = Quantiles::new(&[0.5, 0.9, 0.99]).unwrap();
    for n in [1, 3_000] {
        let mut f = FrugalHistogram::new(quantiles.clone(), 5);
        values(n, 11).into_iter().for_each(|x| {
            f.add(x);
        });
        let mut out = Vec::new();
        f.snapshot().unwrap().encode(&mut out);
        write(root, "metrix_frugal", &format!("quantiles-{n}"), &out);
    }

    // Wire: one snapshot with a series of every kind, self-contained and as a delta; stored as
    // the binary the target base64-encodes.
    let mut summary = Summary::default();
    values(20, 3).into_iter().for_each(|x| summary.push(x));
    let kinds = [
        (
            "inc",
            Value::Counter {
                count: 3.0,
                total: 3.0,
            },
        ),
        (
            "inc",
            Value::Counter {
                count: 2.0,
                total: 0.5,
            },
        ),
        ("sample", Value::Summary(summary)),
        (
            "set",
            Value::Set {
                json: r#"{"a":[1,"x"]}"#.into(),
                at: 1.7e12,
            },
        ),
        (
            "custom",
            Value::Custom {
                json: "12.5".into(),
            },
        ),
        ("gauge", Value::Gauge(Some(0.75))),
        ("gauge", Value::Gauge(None)),
        (
            "histogram",
            Value::Histogram(Box::new(histograms[1].clone())),
        ),
        (
            "histogram",
            Value::Histogram(Box::new(histograms[4].clone())),
        ),
        ("rate", Value::Rate(Some(rate))),
        ("rate", Value::Rate(None)),
        ("meter", Value::Meter(stats)),
    ];
    let entries: Vec<Entry> = (kinds.iter().enumerate())
        .map(|(i, (method, value))| Entry {
            key: Arc::new(SeriesKey::new(
                method,
                &["http", "route"],
                &format!("s{i};m=GET"),
            )),
            value: value.clone(),
        })
        .collect();
    let snapshot = Snapshot {
        k: 177_000_000.0,
        profile: Profile {
            interval: 10_000.0,
            persist: true,
            ..Profile::default()
        },
        pid: 4242,
        counts: Counts {
            dropped: 1.0,
            invalid: 2.0,
            overflowed: 3.0,
            errors: 0.0,
        },
        footprint: panoptic_core::snapshot::Footprint {
            series: 40.0,
            bytes: 90_000.0,
        },
        entries,
    };
    let base64 = base64::engine::general_purpose::STANDARD;
    let all = wire::encode(&snapshot, Keys::All { epoch: 7 });
    write(root, "wire", "all", &base64.decode(all).unwrap());
    let indexes: Vec<u32> = (0..snapshot.entries.len() as u32)
        .map(|i| i * 2 + 1)
        .collect();
    let new_key = SeriesKey::new("inc", &["db"], "queries");
    let delta = wire::encode(
        &snapshot,
        Keys::Delta {
            indexes: &indexes,
            definitions: &[(23, &new_key, wire::Untouched::Counter)],
            forgotten: &[4, 9],
            dictionary: Dictionary {
                epoch: 7,
                serial: 23,
            },
        },
    );
    write(root, "wire", "delta", &base64.decode(delta).unwrap());

    // Filters: the README's and docs' expressions, each with a value to test (after a NUL).
    let filters = [
        "name LIKE 'http.%' AND process.role = 'worker'\0http.requests",
        "NOT (type IN ('inc', 'meter')) OR tags.method != \"GET\"\0meter",
        "path = 'db' and id ne 'x\\'y' or process.pid eq '4242'\0db",
        "(tags.route NOT LIKE '/api/\\%_%') AND NOT process.worker IN ('1','2')\0/api/%x",
        "process.host = 'a' OR process.title LIKE '%node%'\0node",
    ];
    for (i, f) in filters.iter().enumerate() {
        write(root, "filter", &format!("expression-{i}"), f.as_bytes());
    }

    // Trace frames: a hello, a trace and a cleanup, in pieces of 1, 7 and 200 bytes.
    let mut stream = Vec::new();
    let hello = r#"{"version":1,"client":"panoptic-trace","patterns":["http.*"],"remote":null}"#;
    stream.extend(frame::encode(kind::HELLO, hello.as_bytes()).unwrap());
    stream.extend(frame::encode(kind::TRACE, br#"{"name":"http.request","t":1}"#).unwrap());
    stream.extend(frame::encode(kind::CLEANUP, b"{}").unwrap());
    for size in [0u8, 6, 199] {
        let mut input = vec![size];
        input.extend_from_slice(&stream);
        write(
            root,
            "trace_frame",
            &format!("hello-trace-cleanup-{}", size as usize + 1),
            &input,
        );
    }
}
