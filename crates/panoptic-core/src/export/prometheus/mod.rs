//! `GET /metrics`: the store's series in the Prometheus text format 0.0.4 or OpenMetrics 1.0
//! text, written straight into a byte buffer.
//!
//! docs/prometheus.md documents the mapping with examples; in short:
//! - A series' metric name is `prefix` followed by its path elements and its bare id (the id
//!   without its tags) joined by `_`, every character outside `[a-zA-Z0-9_]` made `_` (the
//!   prefix may also hold `:`), and `_` put in front of a leading digit. Tags become labels;
//!   per-process series get a `worker` label (`master`, the worker id, or the thread's label).
//! - `inc` -> counter (`_total`); `set`, `gauge`, `rate` -> gauge; `sample` / `timedSample` ->
//!   summary (`_count`, `_sum`) plus gauges `_min`, `_max`, `_avg`, `_sigma`; `histogram` ->
//!   histogram (`_bucket{le}`, `_sum`, `_count`) plus a `_quantile` summary (quantiles only)
//!   when quantiles are asked for; `meter` -> counter (`_total`) plus gauges `_m1_rate`,
//!   `_m5_rate`, `_m15_rate`, `_mean_rate`.
//! - The output never holds two families claiming the same name: the families made from one
//!   series' method, path and bare id form a group; where two groups would share a name, the
//!   one with the smallest (method, path, bare id) keeps it, and in name order a group any of
//!   whose names (families and samples) an earlier group took is left out. Series left out
//!   (also: empty names, repeated label sets) are counted in the
//!   `<prefix>panoptic_export_skipped_series` gauge, always written last.
//! - panoptic's own metrics, when given ([`super::own`]), come after the series' groups, their
//!   names (with the prefix) taken before any series': a series that would take one is left
//!   out and counted as skipped.
//! - Order: groups by name; within a family, the store's order (the cluster view, then each
//!   process: master, workers by id, threads by label). The same store gives the same bytes.

use super::own::{Own, OwnKind};
use super::Series;
use names::{clean_prefix, collect, settle, Labels};
use options::{bounds, quantiles};
use writer::{TimeUnit, Writer};

mod format;
mod names;
mod numbers;
mod options;
mod writer;

pub use format::{content_type, negotiate, TextFormat};
pub use names::base_name;
pub use options::{
    default_buckets, layout, validate_buckets, validate_options, NamedBuckets, PrometheusOptions,
    DEFAULT_BUCKETS,
};

/// Appends the exposition of `series` (already filtered by the caller) and of panoptic's `own`
/// metrics (None: not shown) to `out`. Options are expected to be valid ([`validate_options`]);
/// invalid ones still give valid output (an invalid prefix is sanitized like a path, unordered
/// buckets are sorted and deduplicated, bad quantiles ignored).
pub fn write<'a>(
    series: impl Iterator<Item = Series<'a>>,
    options: &PrometheusOptions,
    format: TextFormat,
    own: Option<&Own>,
    out: &mut Vec<u8>,
) {
    let mut arena = String::new();
    let mut skipped = 0u64;
    let groups = collect(series, &options.prefix, &mut arena, &mut skipped);
    let prefix = clean_prefix(&options.prefix);
    let skipped_name = format!("{prefix}panoptic_export_skipped_series");
    let mut reserved = own.map_or_else(Vec::new, |own| own.claims(&prefix));
    reserved.push(skipped_name.clone());
    let groups = settle(
        groups,
        &reserved,
        !options.quantiles.is_empty(),
        &arena,
        &mut skipped,
    );
    // About what the lines take (a name, labels, a value, separators): one reservation instead
    // of a dozen doublings (each a copy of the whole text).
    let lines: usize = (groups.iter())
        .map(|g| {
            let tags: usize = g.members.iter().map(|m| m.labels(&arena).tags.len()).sum();
            tags + g.members.len() * (g.name.len() + 32)
        })
        .sum();
    out.reserve(lines);
    let mut w = Writer {
        out,
        format,
        les: bounds(&layout(
            options.buckets.as_deref(),
            &[],
            "",
            options.scale_factor,
        )),
        named_les: (options.named_buckets.iter())
            .map(|(name, given)| (name.clone(), bounds(given)))
            .collect(),
        quantiles: quantiles(options),
        times: TimeUnit::of(options.scale_factor),
    };
    for g in &groups {
        w.group(g, &arena);
    }
    if let Some(own) = own {
        write_own(&mut w, own, &prefix);
    }
    w.family(&skipped_name, "", "gauge", None, &SKIPPED_HELP);
    w.sample(&skipped_name, "", Labels::NONE, None, skipped as f64);
    if format == TextFormat::OpenMetrics {
        w.out.extend_from_slice(b"# EOF\n");
    }
}

/// Writes panoptic's own families, `prefix` before their names.
fn write_own(w: &mut Writer, own: &Own, prefix: &str) {
    let om = w.format == TextFormat::OpenMetrics;
    for f in own.families() {
        let name = format!("{prefix}{}", f.name);
        let (family_suffix, sample_suffix) = match f.kind {
            // Prometheus' text format names a counter family by its sample; OpenMetrics by the
            // base.
            OwnKind::Counter if om => ("", "_total"),
            OwnKind::Counter => ("_total", "_total"),
            OwnKind::Gauge => ("", ""),
        };
        w.family(&name, family_suffix, f.kind.as_str(), f.unit, &[&f.help]);
        for s in &f.samples {
            let mut tags = String::new();
            for (i, (k, v)) in s.labels.iter().enumerate() {
                if i > 0 {
                    tags.push(',');
                }
                tags.push_str(k);
                tags.push_str("=\"");
                names::escape(v, true, &mut tags);
                tags.push('"');
            }
            let labels = Labels {
                tags: &tags,
                process: None,
            };
            w.sample(&name, sample_suffix, labels, None, s.value);
        }
    }
}

const SKIPPED_HELP: [&str; 1] = [
    "series left out of this exposition: empty names, names another series took, repeated label sets (see docs/prometheus.md)",
];

#[cfg(test)]
mod tests;
