//! The pushers' options (`influx`, `remoteWrite`, `otlp`): each `*Options::new` on an arbitrary
//! spec (what lib/export.js passes once the types are checked: any strings, any numbers, NaN
//! and infinities included).
//!
//! Checked: no panic (URL parsing, headers and labels, durations from any number of ms, sizes
//! from any double); options it accepts pass `check` again, have their queue's times within 1 ms
//! to one day, its backoff in order and its sizes within range.
#![no_main]

use std::time::Duration;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use panoptic_core::export::push::{
    InfluxOptions, InfluxSpec, OtlpOptions, OtlpSpec, QueueOptions, QueueSpec, RemoteWriteOptions,
    RemoteWriteSpec,
};

/// The shared queue fields (the core's types do not derive `Arbitrary`: the fuzz crate owns that).
#[derive(Arbitrary, Debug)]
struct Queue {
    max_queue_bytes: Option<f64>,
    batch_points: Option<f64>,
    timeout: Option<f64>,
    min_backoff: Option<f64>,
    max_backoff: Option<f64>,
}

impl Queue {
    fn spec(self) -> QueueSpec {
        QueueSpec {
            max_queue_bytes: self.max_queue_bytes,
            batch_points: self.batch_points,
            timeout: self.timeout,
            min_backoff: self.min_backoff,
            max_backoff: self.max_backoff,
        }
    }
}

/// One pusher's spec.
#[derive(Arbitrary, Debug)]
enum Spec {
    Influx {
        url: Option<String>,
        db: Option<String>,
        username: Option<String>,
        password: Option<String>,
        retention_policy: Option<String>,
        precision: Option<String>,
        prefix: Option<String>,
        per_process: Option<bool>,
        tags: Vec<(String, String)>,
        queue: Queue,
    },
    RemoteWrite {
        url: Option<String>,
        headers: Vec<(String, String)>,
        every: Option<f64>,
        prefix: Option<String>,
        buckets: Option<Vec<f64>>,
        named_buckets: Vec<(String, Vec<f64>)>,
        per_process: Option<bool>,
        labels: Vec<(String, String)>,
        queue: Queue,
    },
    Otlp {
        url: Option<String>,
        headers: Vec<(String, String)>,
        protocol: Option<String>,
        temporality: Option<String>,
        compression: Option<String>,
        every: Option<f64>,
        prefix: Option<String>,
        buckets: Option<Vec<f64>>,
        named_buckets: Vec<(String, Vec<f64>)>,
        per_process: Option<bool>,
        queue: Queue,
    },
}

/// What every accepted queue promises.
fn check_queue(queue: &QueueOptions) {
    for t in [queue.timeout, queue.min_backoff, queue.max_backoff] {
        assert!(t >= Duration::from_millis(1) && t <= Duration::from_secs(86_400));
    }
    assert!(queue.min_backoff <= queue.max_backoff);
    assert!(queue.max_queue_bytes >= 1024 && queue.batch_points >= 1);
}

fuzz_target!(|s: Spec| {
    match s {
        Spec::Influx {
            url,
            db,
            username,
            password,
            retention_policy,
            precision,
            prefix,
            per_process,
            tags,
            queue,
        } => {
            let spec = InfluxSpec {
                url,
                db,
                username,
                password,
                retention_policy,
                precision,
                prefix,
                per_process,
                tags,
                queue: queue.spec(),
            };
            let Ok(options) = InfluxOptions::new(spec) else {
                return;
            };
            options.check().expect("accepted options pass check again");
            check_queue(&options.queue);
            assert!(!options.db.is_empty());
        }
        Spec::RemoteWrite {
            url,
            headers,
            every,
            prefix,
            buckets,
            named_buckets,
            per_process,
            labels,
            queue,
        } => {
            let spec = RemoteWriteSpec {
                url,
                headers,
                every,
                prefix,
                buckets,
                named_buckets,
                per_process,
                labels,
                queue: queue.spec(),
            };
            let Ok(options) = RemoteWriteOptions::new(spec) else {
                return;
            };
            options.check().expect("accepted options pass check again");
            check_queue(&options.queue);
        }
        Spec::Otlp {
            url,
            headers,
            protocol,
            temporality,
            compression,
            every,
            prefix,
            buckets,
            named_buckets,
            per_process,
            queue,
        } => {
            let spec = OtlpSpec {
                url,
                headers,
                protocol,
                temporality,
                compression,
                every,
                prefix,
                buckets,
                named_buckets,
                per_process,
                queue: queue.spec(),
            };
            let Ok(options) = OtlpOptions::new(spec) else {
                return;
            };
            options.check().expect("accepted options pass check again");
            check_queue(&options.queue);
        }
    }
});
