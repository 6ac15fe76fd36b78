//! serve()'s Prometheus options: their defaults (buckets in the values' unit), their checks, and
//! the `le` and `quantile` labels they give.

use std::borrow::Cow;

use super::numbers::label_number;
use crate::stats::histogram::{js, OptionsError};

/// Default histogram bucket bounds in milliseconds: latencies from 1 ms to 10 s in 1-2.5-5 steps
/// (prom-client's and client_golang's default seconds, 5 ms to 10 s, in milliseconds, with 1
/// and 2.5 ms added for in-process work). Written in the values' unit: divided by the
/// instance's `scaleFactor` ([`default_buckets`]).
pub const DEFAULT_BUCKETS: [f64; 13] = [
    1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0,
];

/// The default bounds in the unit of times recorded at `scale_factor` (a time is
/// `ms / scaleFactor`): [`DEFAULT_BUCKETS`] as they are at 1, seconds (0.001 to 10) at 1000.
/// A bucket's `le` must be in the values' unit, or `histogram_quantile()` answers in the wrong
/// one (every 50 ms timing at scaleFactor 1000 is 0.05, below a bound of 1). A scale factor
/// that is not a positive finite number (the instance checks it) leaves them in milliseconds.
pub fn default_buckets(scale_factor: f64) -> Vec<f64> {
    let scale = if scale_factor.is_finite() && scale_factor > 0.0 {
        scale_factor
    } else {
        1.0
    };
    // One division each: the double nearest to the exact quotient, so 10 / 1000 is the same
    // number as the literal 0.01 and `le` reads "0.01".
    DEFAULT_BUCKETS.iter().map(|b| b / scale).collect()
}

/// How series are written (see [`validate_options`] for what is accepted).
#[derive(Debug, Clone, PartialEq)]
pub struct PrometheusOptions {
    /// Put in front of every metric name, as it is (`"web_"` gives `web_http_requests_total`);
    /// empty by default.
    pub prefix: String,
    /// Histograms' `le` bounds, ascending, in the values' unit, taken as given; None (the
    /// default): [`default_buckets`] of `scale_factor`.
    pub buckets: Option<Vec<f64>>,
    /// Layouts of their own for some histograms, by the metric name the series has on
    /// `/metrics` without `prefix` ([`base_name`](super::names::base_name)), each in place of `buckets` for that name
    /// (see [`layout`]). Keyed without the prefix so that one layout fits every exporter and
    /// prefix (`/metrics`, remote write, OTLP's explicit buckets), as a dashboard built on
    /// prom-client's names means them.
    pub named_buckets: NamedBuckets,
    /// Quantiles (0 < q <= 1) written for each histogram as `<name>_quantile{quantile="q"}`, a
    /// summary family of quantiles only (Prometheus' linter refuses a `quantile` label on other
    /// types); none by default.
    pub quantiles: Vec<f64>,
    /// The instance's `scaleFactor` ([`crate::export::Origin::scale_factor`]): times (`timedSample`,
    /// and `histogram` values given as `process.hrtime()` differences) are milliseconds at 1 and
    /// seconds at 1000. It sets the default buckets' unit and what HELP and UNIT say (1 by
    /// default).
    pub scale_factor: f64,
}

impl Default for PrometheusOptions {
    fn default() -> Self {
        PrometheusOptions {
            prefix: String::new(),
            buckets: None,
            named_buckets: Vec::new(),
            quantiles: Vec::new(),
            scale_factor: 1.0,
        }
    }
}

/// Bucket layouts by metric name: (name, ascending bounds in the values' unit).
pub type NamedBuckets = Vec<(String, Vec<f64>)>;

/// Checks options: `prefix` empty or a metric name start (`[a-zA-Z_:][a-zA-Z0-9_:]*`);
/// `buckets` and `named_buckets` as [`validate_buckets`] says; `quantiles` each above 0 and at
/// most 1, none twice. The error names the option (`options.prefix`, `options.buckets`,
/// `options.quantiles`) and the value given.
pub fn validate_options(options: &PrometheusOptions) -> Result<(), OptionsError> {
    let prefix = &options.prefix;
    let name_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    if prefix.starts_with(|c: char| c.is_ascii_digit()) || !prefix.chars().all(name_char) {
        return Err(OptionsError::with_message(
            "options.prefix",
            format!(
                "options.prefix must be empty or start a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*), got {prefix:?}"
            ),
        ));
    }
    validate_buckets(
        "options.buckets",
        options.buckets.as_deref(),
        &options.named_buckets,
    )?;
    for (i, &q) in options.quantiles.iter().enumerate() {
        let bad = |rest: String| {
            Err(OptionsError::with_message(
                "options.quantiles",
                format!("options.quantiles[{i}] {rest}"),
            ))
        };
        if !(q > 0.0 && q <= 1.0) {
            return bad(format!("must be above 0 and at most 1, got {}", js(q)));
        }
        if options.quantiles[..i].contains(&q) {
            return bad(format!("repeats {}", js(q)));
        }
    }
    Ok(())
}

/// Checks bucket layouts; `field` names the option (`options.buckets`, `remoteWrite.buckets`,
/// `otlp.buckets`): `default` (when given) and each named layout not empty, finite, at least 0
/// (histogram values never are below 0) and strictly ascending; each name one a series can
/// have on `/metrics` without a prefix (`[a-zA-Z_][a-zA-Z0-9_]*`: a path and id never give a
/// `:`), none twice. Errors name the layout: `options.buckets.nodejs_gc_duration_seconds[2]`.
pub fn validate_buckets(
    field: &'static str,
    default: Option<&[f64]>,
    named: &[(String, Vec<f64>)],
) -> Result<(), OptionsError> {
    if let Some(bounds) = default {
        validate_bounds(field, field, bounds)?;
    }
    for (i, (name, bounds)) in named.iter().enumerate() {
        let mut chars = name.chars();
        let valid = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(OptionsError::with_message(
                field,
                format!("{field} keys must be `default` or a metric name as /metrics writes it without the prefix ([a-zA-Z_][a-zA-Z0-9_]*), got {name:?}"),
            ));
        }
        if named[..i].iter().any(|(n, _)| n == name) {
            return Err(OptionsError::with_message(
                field,
                format!("{field}.{name} is given twice"),
            ));
        }
        validate_bounds(field, &format!("{field}.{name}"), bounds)?;
    }
    Ok(())
}

/// One layout's bounds, `what` naming it in messages.
fn validate_bounds(field: &'static str, what: &str, bounds: &[f64]) -> Result<(), OptionsError> {
    if bounds.is_empty() {
        return Err(OptionsError::with_message(
            field,
            format!("{what} must hold at least one bound, got []"),
        ));
    }
    for (i, &b) in bounds.iter().enumerate() {
        let bad = |rest: String| {
            Err(OptionsError::with_message(
                field,
                format!("{what}[{i}] {rest}"),
            ))
        };
        if !(b.is_finite() && b >= 0.0) {
            return bad(format!(
                "must be a finite number of at least 0 (histogram values are never negative), got {}",
                js(b)
            ));
        }
        if i > 0 && b <= bounds[i - 1] {
            return bad(format!(
                "must be greater than {what}[{}] ({}): bounds ascend, got {}",
                i - 1,
                js(bounds[i - 1]),
                js(b)
            ));
        }
    }
    Ok(())
}

/// The bounds of the histograms named `name` (the series' [`base_name`](super::names::base_name)): its own layout in
/// `named`, else `default`, else [`default_buckets`] of `scale_factor`.
pub fn layout<'a>(
    default: Option<&'a [f64]>,
    named: &'a [(String, Vec<f64>)],
    name: &str,
    scale_factor: f64,
) -> Cow<'a, [f64]> {
    match named.iter().find(|(n, _)| n == name) {
        Some((_, bounds)) => Cow::Borrowed(bounds),
        None => match default {
            Some(bounds) => Cow::Borrowed(bounds),
            None => Cow::Owned(default_buckets(scale_factor)),
        },
    }
}

/// The `le` label values of `given` (sorted, deduplicated, finite), then `+Inf`.
pub(super) fn bounds(given: &[f64]) -> Vec<(f64, String)> {
    let mut b: Vec<f64> = given
        .iter()
        .filter(|b| b.is_finite())
        // -0 is 0 (`le="0.0"`, not `"-0.0"`).
        .map(|&b| b + 0.0)
        .collect();
    b.sort_by(f64::total_cmp);
    b.dedup();
    let mut les: Vec<(f64, String)> = b.into_iter().map(|b| (b, label_number(b))).collect();
    les.push((f64::INFINITY, "+Inf".into()));
    les
}

/// The quantiles (valid ones, once each) and their label values.
pub(super) fn quantiles(options: &PrometheusOptions) -> Vec<(f64, String)> {
    let mut out: Vec<(f64, String)> = Vec::new();
    for &q in &options.quantiles {
        if q > 0.0 && q <= 1.0 && !out.iter().any(|o| o.0 == q) {
            out.push((q, label_number(q)));
        }
    }
    out
}
