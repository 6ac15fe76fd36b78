//! What the unit tests of several modules build their data from (test builds only).

use std::sync::Arc;

use crate::gather::tree::Format;
use crate::snapshot::{Entry, SeriesKey, Snapshot, Value};
use crate::stats::summary::Summary;

pub(crate) fn key(method: &str, path: &[&str], id: &str) -> Arc<SeriesKey> {
    Arc::new(SeriesKey::new(method, path, id))
}

/// An `inc` interval: one call adding `total`.
pub(crate) fn counter(total: f64) -> Value {
    Value::Counter { count: 1.0, total }
}

/// A `sample` interval of the values `xs`.
pub(crate) fn summary(xs: &[f64]) -> Value {
    let mut s = Summary::default();
    xs.iter().for_each(|&x| s.push(x));
    Value::Summary(s)
}

/// Interval `k` of process `pid` (the default profile, no counts), its series in the given order.
pub(crate) fn snapshot(
    k: f64,
    pid: u32,
    series: impl IntoIterator<Item = (Arc<SeriesKey>, Value)>,
) -> Snapshot {
    Snapshot {
        k,
        pid,
        entries: (series.into_iter())
            .map(|(key, value)| Entry { key, value })
            .collect(),
        ..Snapshot::default()
    }
}

/// How trees are written: intervals of `interval` ms at `scale_factor`, the interval ending at
/// `time_stamp`, reporting `percentiles`.
pub(crate) fn format(
    interval: f64,
    scale_factor: f64,
    time_stamp: f64,
    percentiles: &[f64],
) -> Format {
    Format {
        interval,
        scale_factor,
        time_stamp,
        percentiles: Arc::from(percentiles),
    }
}
