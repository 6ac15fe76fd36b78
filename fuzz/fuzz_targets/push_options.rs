//! The `influx` option: `PushOptions::new` on an arbitrary `PushSpec` (what lib/export.js
//! passes once the types are checked: any strings, any numbers, NaN and infinities included).
//!
//! Checked: no panic (URL parsing, durations from any number of ms, sizes from any double);
//! options it accepts pass `check` again, have their times within 1 ms to one day and their
//! sizes within range.
#![no_main]

use std::time::Duration;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use panoptic_core::export::push::{PushOptions, PushSpec};

/// A `PushSpec` (the core's type does not derive `Arbitrary`: the fuzz crate owns that).
#[derive(Arbitrary, Debug)]
struct Spec {
    url: Option<String>,
    db: Option<String>,
    username: Option<String>,
    password: Option<String>,
    retention_policy: Option<String>,
    precision: Option<String>,
    prefix: Option<String>,
    per_process: Option<bool>,
    tags: Vec<(String, String)>,
    max_queue_bytes: Option<f64>,
    batch_points: Option<f64>,
    timeout: Option<f64>,
    min_backoff: Option<f64>,
    max_backoff: Option<f64>,
}

fuzz_target!(|s: Spec| {
    let spec = PushSpec {
        url: s.url,
        db: s.db,
        username: s.username,
        password: s.password,
        retention_policy: s.retention_policy,
        precision: s.precision,
        prefix: s.prefix,
        per_process: s.per_process,
        tags: s.tags,
        max_queue_bytes: s.max_queue_bytes,
        batch_points: s.batch_points,
        timeout: s.timeout,
        min_backoff: s.min_backoff,
        max_backoff: s.max_backoff,
    };
    let Ok(options) = PushOptions::new(spec) else {
        return;
    };
    options.check().expect("accepted options pass check again");
    for t in [options.timeout, options.min_backoff, options.max_backoff] {
        assert!(t >= Duration::from_millis(1) && t <= Duration::from_secs(86_400));
    }
    assert!(options.min_backoff <= options.max_backoff);
    assert!(options.max_queue_bytes >= 1024 && options.batch_points >= 1);
    assert!(!options.db.is_empty());
});
