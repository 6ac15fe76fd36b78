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
//! - Order: groups by name; within a family, the store's order (the cluster view, then each
//!   process: master, workers by id, threads by label). The same store gives the same bytes.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::io::Write as _;
use std::ops::Range;

use super::{Cumulative, Process, Series};
use crate::gather::Tree;
use crate::snapshot::SeriesKey;
use crate::stats::histogram::{js, OptionsError};
use crate::tags::split_tags;

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
    /// Quantiles (0 < q <= 1) written for each histogram as `<name>_quantile{quantile="q"}`, a
    /// summary family of quantiles only (Prometheus' linter refuses a `quantile` label on other
    /// types); none by default.
    pub quantiles: Vec<f64>,
    /// The instance's `scaleFactor` ([`super::Origin::scale_factor`]): times (`timedSample`,
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
            quantiles: Vec::new(),
            scale_factor: 1.0,
        }
    }
}

/// Checks options: `prefix` empty or a metric name start (`[a-zA-Z_:][a-zA-Z0-9_:]*`);
/// `buckets` (when given) not empty, finite, at least 0 (histogram values never are below 0) and
/// strictly ascending; `quantiles` each above 0 and at most 1, none twice. The error names the option
/// (`options.prefix`, `options.buckets`, `options.quantiles`) and the value given.
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
    let buckets: &[f64] = options.buckets.as_deref().unwrap_or_default();
    if options.buckets.is_some() && buckets.is_empty() {
        return Err(OptionsError::with_message(
            "options.buckets",
            "options.buckets must hold at least one bound, got []".into(),
        ));
    }
    for (i, &b) in buckets.iter().enumerate() {
        let bad = |rest: String| {
            Err(OptionsError::with_message(
                "options.buckets",
                format!("options.buckets[{i}] {rest}"),
            ))
        };
        if !(b.is_finite() && b >= 0.0) {
            return bad(format!(
                "must be a finite number of at least 0 (histogram values are never negative), got {}",
                js(b)
            ));
        }
        if i > 0 && b <= buckets[i - 1] {
            return bad(format!(
                "must be greater than options.buckets[{}] ({}): bounds ascend, got {}",
                i - 1,
                js(buckets[i - 1]),
                js(b)
            ));
        }
    }
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

/// The exposition formats.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TextFormat {
    /// Prometheus text format 0.0.4.
    Prometheus,
    /// OpenMetrics 1.0 text.
    OpenMetrics,
}

/// Picks the format for a request's `Accept` header: OpenMetrics when the best-ranked media
/// range it accepts is `application/openmetrics-text` (no version, `1.0.0` or `0.0.1`); else
/// (text/plain, wildcards, nothing we write, an empty header) the Prometheus text format.
///
/// Ranked as HTTP content negotiation does (and Prometheus' client_golang): by `q` (default 1;
/// `q=0` refuses), then specificity (`type/subtype` over `type/*` over `*/*`), then the order in
/// the header. Prometheus 2.x's scrapes ask for OpenMetrics first, Prometheus 3's for
/// OpenMetrics at q=0.5 over text at q=0.3 (both get OpenMetrics), `curl` gets text.
pub fn negotiate(accept: &str) -> TextFormat {
    let mut best: Option<(f64, u8, TextFormat)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let (mut q, mut version) = (1.0, None);
        for param in parts {
            let (name, value) = param.split_once('=').unwrap_or((param, ""));
            let value = value.trim().trim_matches('"');
            match name.trim().to_ascii_lowercase().as_str() {
                "q" => q = value.parse::<f64>().unwrap_or(-1.0),
                "version" => version = Some(value.to_string()),
                _ => {}
            }
        }
        if !(q > 0.0 && q <= 1.0) {
            continue;
        }
        let choice = match media.as_str() {
            "application/openmetrics-text" => match version.as_deref() {
                None | Some("1.0.0") | Some("0.0.1") => (2, TextFormat::OpenMetrics),
                Some(_) => continue,
            },
            "text/plain" => (2, TextFormat::Prometheus),
            "text/*" => (1, TextFormat::Prometheus),
            "application/*" => (1, TextFormat::OpenMetrics),
            "*/*" => (0, TextFormat::Prometheus),
            _ => continue,
        };
        // Strictly better only: on a tie the earlier range wins.
        if best.is_none_or(|(bq, bs, _)| q > bq || (q == bq && choice.0 > bs)) {
            best = Some((q, choice.0, choice.1));
        }
    }
    best.map_or(TextFormat::Prometheus, |b| b.2)
}

/// The `Content-Type` of a format's answer.
pub fn content_type(format: TextFormat) -> &'static str {
    match format {
        TextFormat::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
        TextFormat::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
    }
}

/// Appends the exposition of `series` (already filtered by the caller) to `out`. Options are
/// expected to be valid ([`validate_options`]); invalid ones still give valid output (an
/// invalid prefix is sanitized like a path, unordered buckets are sorted and deduplicated, bad
/// quantiles ignored).
pub fn write<'a>(
    series: impl Iterator<Item = Series<'a>>,
    options: &PrometheusOptions,
    format: TextFormat,
    out: &mut Vec<u8>,
) {
    let mut arena = String::new();
    let mut skipped = 0u64;
    let groups = collect(series, &options.prefix, &mut arena, &mut skipped);
    let skipped_name = format!(
        "{}panoptic_export_skipped_series",
        clean_prefix(&options.prefix)
    );
    let groups = settle(
        groups,
        &skipped_name,
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
        les: bounds(options),
        quantiles: quantiles(options),
        times: TimeUnit::of(options.scale_factor),
    };
    for g in &groups {
        w.group(g, &arena);
    }
    w.family(&skipped_name, "", "gauge", None, &SKIPPED_HELP);
    w.sample(&skipped_name, "", Labels::NONE, None, skipped as f64);
    if format == TextFormat::OpenMetrics {
        w.out.extend_from_slice(b"# EOF\n");
    }
}

const SKIPPED_HELP: [&str; 1] = [
    "series left out of this exposition: empty names, names another series took, repeated label sets (see docs/prometheus.md)",
];

/// What a series is written as.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
enum Kind {
    Counter,
    Gauge,
    Summary,
    Histogram,
    Meter,
}

fn kind(value: &Cumulative) -> Kind {
    match value {
        Cumulative::Counter { .. } => Kind::Counter,
        Cumulative::Gauge(_) => Kind::Gauge,
        Cumulative::Summary { .. } => Kind::Summary,
        Cumulative::Histogram(_) => Kind::Histogram,
        Cumulative::Meter { .. } => Kind::Meter,
    }
}

/// The series of one method, path and bare id: the families they make.
struct Group<'a> {
    /// The base name (a counter's without `_total`).
    name: String,
    kind: Kind,
    key: &'a SeriesKey,
    bare: &'a str,
    members: Vec<Member<'a>>,
    /// Some member's labels were changed or rebuilt (sanitized names, reserved names, tags not
    /// in canonical form, an odd thread label): its label sets must be checked for repeats.
    irregular: bool,
}

struct Member<'a> {
    value: &'a Cumulative,
    /// Its tags as label text (`a="x",b="y"`): where they are in the arena.
    tags: Range<usize>,
    /// The process of a per-process series (its `worker` label).
    process: Option<&'a Process>,
}

impl Member<'_> {
    fn labels<'x>(&'x self, arena: &'x str) -> Labels<'x> {
        Labels {
            tags: &arena[self.tags.clone()],
            process: self.process,
        }
    }
}

/// What a sample line's braces hold before any `le` or `quantile`: tags, then `worker`.
#[derive(Clone, Copy)]
struct Labels<'x> {
    tags: &'x str,
    process: Option<&'x Process>,
}

impl Labels<'_> {
    const NONE: Labels<'static> = Labels {
        tags: "",
        process: None,
    };
}

/// FNV-1a for the groups' map, keyed by bare ids (without tags): few, short, chosen by the
/// application's code (a bare id made of request data would already be unbounded cardinality),
/// so SipHash's resistance to chosen keys buys little here and costs a tenth of an exposition.
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Groups the series by source (method, path, bare id and kind) and renders their labels.
fn collect<'a>(
    series: impl Iterator<Item = Series<'a>>,
    prefix: &str,
    arena: &mut String,
    skipped: &mut u64,
) -> Vec<Group<'a>> {
    let mut groups: Vec<Group<'a>> = Vec::new();
    // Groups by bare id, then found by method, path and kind: hashing one short string per
    // series (not the whole source) is most of the difference in cost.
    let mut by_bare: HashMap<&'a str, Vec<usize>, BuildHasherDefault<Fnv>> = HashMap::default();
    for s in series {
        let kind = kind(s.value);
        let id = s.key.id.as_str();
        // Tags as `taggedId` writes them are valid Prometheus labels already: copied as they
        // are, with no parsing into strings (most of the cost of a tagged series otherwise).
        let (bare, ready, tags) = match tag_text(id) {
            (bare, Some(text)) if canonical(text) => (bare, Some(text), None),
            _ => {
                let (bare, tags) = split_tags(id);
                (bare, None, tags)
            }
        };
        let same =
            |g: &Group| g.kind == kind && g.key.method == s.key.method && g.key.path == s.key.path;
        let candidates = by_bare.entry(bare).or_default();
        let g = match candidates.iter().copied().find(|&g| same(&groups[g])) {
            Some(g) => g,
            None => {
                let mut name = String::new();
                metric_name(prefix, &s.key.path, bare, &mut name);
                if matches!(kind, Kind::Counter | Kind::Meter)
                    && name.len() > "_total".len()
                    && name.ends_with("_total")
                {
                    name.truncate(name.len() - "_total".len());
                }
                groups.push(Group {
                    name,
                    kind,
                    key: s.key,
                    bare,
                    members: Vec::new(),
                    irregular: false,
                });
                candidates.push(groups.len() - 1);
                groups.len() - 1
            }
        };
        let tags = match (ready, tags) {
            (Some(text), _) => {
                // Copied while it is in the cache (it was just read): the writing reads the
                // arena in order instead of every id again, scattered over the heap.
                let start = arena.len();
                arena.push_str(text);
                start..arena.len()
            }
            (None, None) => 0..0,
            (None, Some(tags)) => {
                // Not in the canonical form: two ids could give one label set.
                groups[g].irregular = true;
                let start = arena.len();
                if !render_tags(&tags, arena) {
                    arena.truncate(start);
                    *skipped += 1;
                    continue;
                }
                start..arena.len()
            }
        };
        // Thread labels are `<process>:<thread>`: never a worker id nor `master`.
        if let Some(Process {
            from: Tree::Thread(label),
            ..
        }) = s.process
        {
            groups[g].irregular |= !label.contains(':');
        }
        groups[g].members.push(Member {
            value: s.value,
            tags,
            process: s.process,
        });
    }
    groups
}

/// Chooses the groups written (see the module documentation), in name order, without repeated
/// label sets.
fn settle<'a>(
    groups: Vec<Group<'a>>,
    skipped_name: &str,
    quantiles: bool,
    arena: &str,
    skipped: &mut u64,
) -> Vec<Group<'a>> {
    let rank = |g: &Group| {
        (
            g.name.clone(),
            g.key.method.clone(),
            g.key.path.clone(),
            g.bare.to_string(),
            g.kind,
        )
    };
    let mut groups = groups;
    // Name order; for one name, the smallest (method, path, bare id) first.
    groups.sort_by_cached_key(rank);
    let mut claimed: HashSet<String> = HashSet::new();
    claimed.insert(skipped_name.to_string());
    let mut kept = Vec::with_capacity(groups.len());
    for mut g in groups {
        let names = claims(&g.name, g.kind, quantiles);
        if g.name.is_empty() || names.iter().any(|n| claimed.contains(n)) {
            *skipped += g.members.len() as u64;
            continue;
        }
        claimed.extend(names);
        if g.irregular {
            let mut seen = HashSet::new();
            let before = g.members.len();
            g.members.retain(|m| {
                let mut text = Vec::new();
                push_labels(&mut text, m.labels(arena), None);
                seen.insert(text)
            });
            *skipped += (before - g.members.len()) as u64;
        }
        kept.push(g);
    }
    kept
}

/// Every metric family and sample name a group writes, or could (OpenMetrics' `_created`), and
/// its base name: two groups sharing one of these would make an invalid exposition.
fn claims(base: &str, kind: Kind, quantiles: bool) -> Vec<String> {
    let suffixes: &[&str] = match kind {
        Kind::Counter => &["", "_total", "_created"],
        Kind::Gauge => &[""],
        Kind::Summary => &[
            "", "_count", "_sum", "_created", "_min", "_max", "_avg", "_sigma",
        ],
        Kind::Histogram if quantiles => &[
            "",
            "_bucket",
            "_count",
            "_sum",
            "_created",
            "_quantile",
            "_quantile_count",
            "_quantile_sum",
            "_quantile_created",
        ],
        Kind::Histogram => &["", "_bucket", "_count", "_sum", "_created"],
        Kind::Meter => &[
            "",
            "_total",
            "_created",
            "_m1_rate",
            "_m5_rate",
            "_m15_rate",
            "_mean_rate",
        ],
    };
    suffixes.iter().map(|s| format!("{base}{s}")).collect()
}

/// Appends the metric name of `prefix`, `path` and `bare` (see the module documentation).
fn metric_name(prefix: &str, path: &[String], bare: &str, out: &mut String) {
    out.push_str(&clean_prefix(prefix));
    let parts = path.iter().map(String::as_str).chain(std::iter::once(bare));
    for (i, part) in parts.enumerate() {
        if i > 0 {
            out.push('_');
        }
        for c in part.chars() {
            out.push(if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            });
        }
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
}

/// The prefix with characters a name cannot hold made `_` (a valid prefix is kept as it is).
fn clean_prefix(prefix: &str) -> std::borrow::Cow<'_, str> {
    let ok = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    if prefix.chars().all(ok) {
        prefix.into()
    } else {
        prefix
            .chars()
            .map(|c| if ok(c) { c } else { '_' })
            .collect::<String>()
            .into()
    }
}

/// Label names a series' tag cannot keep: `worker` (the per-process label), `le` and
/// `quantile` (histograms' and summaries' own); with names starting with `__` (reserved by
/// Prometheus), they become `exported_<name>`, as Prometheus renames clashing target labels.
const RESERVED_LABELS: [&str; 3] = ["worker", "le", "quantile"];

/// Renders parsed tags as label text into `out`, sorted by label name (so that two ids giving
/// the same label set give the same text); false when two end up with the same label name (the
/// series is left out).
fn render_tags(tags: &[(String, String)], out: &mut String) -> bool {
    let mut pairs: Vec<(String, &str)> = tags
        .iter()
        .map(|(name, value)| {
            let mut label = String::new();
            label_name(name, &mut label);
            (label, value.as_str())
        })
        .collect();
    pairs.sort();
    if pairs.windows(2).any(|w| w[0].0 == w[1].0) {
        return false;
    }
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(name);
        out.push_str("=\"");
        escape(value, true, out);
        out.push('"');
    }
    true
}

/// Splits an id ending with `}` at its first `{`: the bare id and the tag text between.
fn tag_text(id: &str) -> (&str, Option<&str>) {
    if !id.ends_with('}') {
        return (id, None);
    }
    // A byte loop: ids are short, and `str::find` costs more in setting up than in searching.
    match id.bytes().position(|b| b == b'{') {
        Some(open) => (&id[..open], Some(&id[open + 1..id.len() - 1])),
        None => (id, None),
    }
}

/// Whether a tag text is what `taggedId` writes and valid as Prometheus labels as it is: one or
/// more `name="value"` joined by `,`, names valid label names, not reserved
/// ([`RESERVED_LABELS`], `__`) and strictly ascending (so none repeats), values escaped (only
/// `\\`, `\"`, `\n`; no raw newline). Two distinct canonical texts are two label sets.
fn canonical(text: &str) -> bool {
    let b = text.as_bytes();
    let mut i = 0;
    let mut previous: &[u8] = &[];
    loop {
        let start = i;
        i += b[i..]
            .iter()
            .position(|&c| !NAME_CHAR[c as usize])
            .unwrap_or(b.len() - i);
        let name = &b[start..i];
        // Byte loops, not memcmp: label names are a few bytes, and this runs per series.
        let reserved = name.starts_with(b"__")
            || (RESERVED_LABELS.iter())
                .any(|r| r.len() == name.len() && same_bytes(r.as_bytes(), name));
        if name.is_empty() || name[0].is_ascii_digit() || reserved || !ascending(previous, name) {
            return false;
        }
        previous = name;
        if b.get(i..i + 2) != Some(b"=\"") {
            return false;
        }
        i += 2;
        loop {
            // To the next byte that is not plain value text.
            i += b[i..]
                .iter()
                .position(|&c| matches!(c, b'"' | b'\\' | b'\n'))
                .unwrap_or(b.len() - i);
            match b.get(i) {
                Some(b'"') => break,
                Some(b'\\') if matches!(b.get(i + 1), Some(b'\\' | b'"' | b'n')) => i += 2,
                _ => return false,
            }
        }
        i += 1;
        match b.get(i) {
            None => return true,
            Some(b',') => i += 1,
            Some(_) => return false,
        }
    }
}

/// `a == b` for short slices of one length.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.iter().zip(b).all(|(x, y)| x == y)
}

/// Whether `a < b` in byte order.
fn ascending(a: &[u8], b: &[u8]) -> bool {
    match a.iter().zip(b).find(|(x, y)| x != y) {
        Some((x, y)) => x < y,
        None => a.len() < b.len(),
    }
}

/// Which bytes a label name may hold (`[a-zA-Z0-9_]`).
static NAME_CHAR: [bool; 256] = {
    let mut table = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        table[c] = b.is_ascii_alphanumeric() || b == b'_';
        c += 1;
    }
    table
};

/// Appends a tag key as a label name: reserved ones become `exported_<name>`, other
/// characters than `[a-zA-Z0-9_]` `_`, and `_` goes before a leading digit (or stands for an
/// empty name).
fn label_name(name: &str, out: &mut String) {
    if RESERVED_LABELS.contains(&name) || name.starts_with("__") {
        out.push_str("exported_");
    }
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        out.push('_');
    }
    for c in name.chars() {
        out.push(if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '_'
        });
    }
}

/// Appends `text` escaped: `\` and newline always, `"` when `quote` (label values; OpenMetrics'
/// HELP too).
fn escape(text: &str, quote: bool, out: &mut String) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

/// The `le` label values of the bounds (sorted, deduplicated, finite), then `+Inf`.
fn bounds(options: &PrometheusOptions) -> Vec<(f64, String)> {
    let defaults;
    let given = match &options.buckets {
        Some(given) => given,
        None => {
            defaults = default_buckets(options.scale_factor);
            &defaults
        }
    };
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
fn quantiles(options: &PrometheusOptions) -> Vec<(f64, String)> {
    let mut out: Vec<(f64, String)> = Vec::new();
    for &q in &options.quantiles {
        if q > 0.0 && q <= 1.0 && !out.iter().any(|o| o.0 == q) {
            out.push((q, label_number(q)));
        }
    }
    out
}

/// A number as an `le` or `quantile` label value, in both formats: OpenMetrics' canonical form,
/// Go's `%g` shortest form with `.0` added when it has no point or exponent (`1.0`, `0.25`,
/// `100000.0`, `1e+06`). Label values are text to Prometheus 2.x: one spelling in both formats
/// keeps `le="5.0"` the same series whichever format a scrape negotiates (and it is the form
/// Prometheus 3 normalizes these labels to).
fn label_number(x: f64) -> String {
    let mut out = Vec::new();
    push_go_float(x, &mut out);
    let mut s = String::from_utf8(out).unwrap_or_default();
    if x.is_finite() && !s.contains(['.', 'e']) {
        s.push_str(".0");
    }
    s
}

/// Appends a sample value: `NaN`, `+Inf`, `-Inf`, an integer without a point (below 10^15 in
/// magnitude), or Go's `%g` shortest form.
fn push_value(x: f64, out: &mut Vec<u8>) {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        // Digits by hand: counters are mostly integers, and `write!` costs more than the rest
        // of their line.
        if x < 0.0 {
            out.push(b'-');
        }
        push_integer(x.abs() as u64, out);
    } else {
        push_go_float(x, out);
    }
}

/// Appends the decimal digits of `n`.
fn push_integer(mut n: u64, out: &mut Vec<u8>) {
    // Two digits per division.
    const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
        2021222324252627282930313233343536373839\
        4041424344454647484950515253545556575859\
        6061626364656667686970717273747576777879\
        8081828384858687888990919293949596979899";
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    while n >= 100 {
        let pair = (n % 100) as usize * 2;
        n /= 100;
        at -= 2;
        digits[at..at + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    }
    if n >= 10 {
        at -= 2;
        digits[at..at + 2].copy_from_slice(&PAIRS[n as usize * 2..n as usize * 2 + 2]);
    } else {
        at -= 1;
        digits[at] = b'0' + n as u8;
    }
    out.extend_from_slice(&digits[at..]);
}

/// Appends Go's `strconv.FormatFloat(x, 'g', -1, 64)`: the shortest digits that read back as
/// `x`, in exponent form (`1.5e+06`, `1e-05`: a sign and at least two exponent digits) when
/// the exponent is below -4 or at least 6, else in plain form; `NaN`, `+Inf`, `-Inf`.
fn push_go_float(x: f64, out: &mut Vec<u8>) {
    if x.is_nan() {
        out.extend_from_slice(b"NaN");
        return;
    }
    if x.is_infinite() {
        out.extend_from_slice(if x > 0.0 { b"+Inf" } else { b"-Inf" });
        return;
    }
    // Rust's `{:e}` gives the shortest round-trip digits: `-1.2345e-7`, `5e0`.
    let mut buf = [0u8; 40];
    let len = {
        let mut cursor = std::io::Cursor::new(&mut buf[..]);
        let _ = write!(cursor, "{:e}", x);
        cursor.position() as usize
    };
    let text = &buf[..len];
    let (negative, text) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    let e = text.iter().position(|&c| c == b'e').unwrap_or(text.len());
    let digits: Vec<u8> = text[..e].iter().copied().filter(|&c| c != b'.').collect();
    let exp: i32 = std::str::from_utf8(text.get(e + 1..).unwrap_or(b"0"))
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    if negative {
        out.push(b'-');
    }
    if !(-4..6).contains(&exp) {
        out.push(digits[0]);
        if digits.len() > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits[1..]);
        }
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    } else if exp >= 0 {
        let whole = exp as usize + 1;
        for i in 0..whole {
            out.push(*digits.get(i).unwrap_or(&b'0'));
        }
        if digits.len() > whole {
            out.push(b'.');
            out.extend_from_slice(&digits[whole..]);
        }
    } else {
        out.extend_from_slice(b"0.");
        out.extend(std::iter::repeat_n(b'0', (-exp - 1) as usize));
        out.extend_from_slice(&digits);
    }
}

/// Writes families and samples in one format.
struct Writer<'o> {
    out: &'o mut Vec<u8>,
    format: TextFormat,
    /// Bucket bounds and their `le` values (`+Inf` last).
    les: Vec<(f64, String)>,
    quantiles: Vec<(f64, String)>,
    times: TimeUnit,
}

/// The unit of times (`timedSample` values, `histogram` values given as `process.hrtime()`
/// differences) at a scale factor: a time is `ms / scaleFactor`.
struct TimeUnit {
    /// OpenMetrics' name of the unit where it is one: `milliseconds` at 1, `seconds` at 1000.
    name: Option<&'static str>,
    /// What HELP texts say: the name, else `milliseconds / scaleFactor <n>`.
    words: String,
}

impl TimeUnit {
    fn of(scale_factor: f64) -> TimeUnit {
        let name = match scale_factor {
            1.0 => Some("milliseconds"),
            1000.0 => Some("seconds"),
            _ => None,
        };
        let words = match name {
            Some(name) => name.to_string(),
            None => format!("milliseconds / scaleFactor {}", js(scale_factor)),
        };
        TimeUnit { name, words }
    }

    /// The unit for a `# UNIT` line of family `name`: only where the name ends with `_<unit>`.
    /// OpenMetrics 1.0 says a unit MUST be the family name's suffix, and renaming series to
    /// add it would break every query and dashboard made on their names: a family whose name
    /// does not say its unit gets no UNIT line (its HELP says the unit).
    fn for_family(&self, name: &str) -> Option<&'static str> {
        self.name.filter(|u| {
            name.len() > u.len()
                && name.ends_with(u)
                && name.as_bytes()[name.len() - u.len() - 1] == b'_'
        })
    }
}

impl Writer<'_> {
    /// Writes the metadata of family `name` + `suffix`: HELP then TYPE in the Prometheus format,
    /// TYPE, UNIT, HELP in OpenMetrics (UNIT only there). The HELP text is `help`'s parts.
    fn family(&mut self, name: &str, suffix: &str, kind: &str, unit: Option<&str>, help: &[&str]) {
        let om = self.format == TextFormat::OpenMetrics;
        let mut text = String::new();
        for part in help {
            escape(part, om, &mut text);
        }
        let out = &mut *self.out;
        if om {
            let _ = writeln!(out, "# TYPE {name}{suffix} {kind}");
            if let Some(unit) = unit {
                let _ = writeln!(out, "# UNIT {name}{suffix} {unit}");
            }
            let _ = writeln!(out, "# HELP {name}{suffix} {text}");
        } else {
            let _ = writeln!(out, "# HELP {name}{suffix} {text}");
            let _ = writeln!(out, "# TYPE {name}{suffix} {kind}");
        }
    }

    fn sample(
        &mut self,
        name: &str,
        suffix: &str,
        labels: Labels,
        extra: Option<(&str, &str)>,
        value: f64,
    ) {
        sample(self.out, name, suffix, labels, extra, value);
    }

    /// Writes a gauge family with one value per member.
    fn gauges(
        &mut self,
        g: &Group,
        arena: &str,
        suffix: &str,
        help: &[&str],
        value: impl Fn(&Cumulative) -> f64,
    ) {
        self.family(&g.name, suffix, "gauge", None, help);
        for m in &g.members {
            self.sample(&g.name, suffix, m.labels(arena), None, value(m.value));
        }
    }

    fn group(&mut self, g: &Group, arena: &str) {
        let source = source(g.key, g.bare);
        let om = self.format == TextFormat::OpenMetrics;
        // Prometheus' text format names a counter family by its sample; OpenMetrics by the base.
        let counter_suffix = if om { "" } else { "_total" };
        match g.kind {
            Kind::Counter => {
                let help = [&source[..], ": the sum of increments since the start"];
                self.family(&g.name, counter_suffix, "counter", None, &help);
                for m in &g.members {
                    if let Cumulative::Counter { total, .. } = m.value {
                        self.sample(&g.name, "_total", m.labels(arena), None, *total);
                    }
                }
            }
            Kind::Gauge => {
                let what = match &*g.key.method {
                    "set" => ": the last value set",
                    "gauge" => ": the gauge function's last value (NaN when it failed)",
                    "rate" => ": the last interval's rate per second",
                    _ => ": the last value",
                };
                self.gauges(g, arena, "", &[&source[..], what], |v| match v {
                    Cumulative::Gauge(x) => *x,
                    _ => f64::NAN,
                });
            }
            Kind::Summary => self.summary(g, arena, &source),
            Kind::Histogram => self.histogram(g, arena, &source),
            Kind::Meter => {
                let help = [&source[..], ": events since the start"];
                self.family(&g.name, counter_suffix, "counter", None, &help);
                for m in &g.members {
                    if let Cumulative::Meter { count, .. } = m.value {
                        self.sample(&g.name, "_total", m.labels(arena), None, *count);
                    }
                }
                type Rate = fn(&crate::stats::meter::MeterStats) -> f64;
                let rates: [(&str, &str, Rate); 4] = [
                    (
                        "_m1_rate",
                        ": one-minute moving average rate, events per second",
                        |m| m.m1,
                    ),
                    (
                        "_m5_rate",
                        ": five-minute moving average rate, events per second",
                        |m| m.m5,
                    ),
                    (
                        "_m15_rate",
                        ": fifteen-minute moving average rate, events per second",
                        |m| m.m15,
                    ),
                    (
                        "_mean_rate",
                        ": events per second since the meter was made",
                        |m| m.mean_rate,
                    ),
                ];
                for (suffix, what, rate) in rates {
                    self.gauges(g, arena, suffix, &[&source[..], what], |v| match v {
                        Cumulative::Meter { last, .. } => rate(last),
                        _ => f64::NAN,
                    });
                }
            }
        }
    }

    fn summary(&mut self, g: &Group, arena: &str, source: &str) {
        let om = self.format == TextFormat::OpenMetrics;
        // timedSample's values are times; sample's are in the user's unit, which we do not know.
        let timed = &*g.key.method == "timedSample";
        let in_unit = if timed {
            format!(" ({})", self.times.words)
        } else {
            String::new()
        };
        let unit = if timed {
            self.times.for_family(&g.name)
        } else {
            None
        };
        let help = [
            source,
            ": count and sum of the values since the start",
            &in_unit[..],
        ];
        self.family(&g.name, "", "summary", unit, &help);
        for m in &g.members {
            if let Cumulative::Summary { count, sum, .. } = m.value {
                let labels = m.labels(arena);
                self.sample(&g.name, "_count", labels, None, *count);
                // OpenMetrics: a summary's sum is a counter, never negative nor NaN (sample()
                // takes negative numbers): left out then.
                if !om || *sum >= 0.0 {
                    self.sample(&g.name, "_sum", labels, None, *sum);
                }
            }
        }
        type Stat = fn(&crate::stats::summary::Summary) -> Option<f64>;
        let stats: [(&str, &str, Stat); 4] = [
            ("_min", ": the smallest value of the last interval that had values", |s| s.min()),
            ("_max", ": the largest value of the last interval that had values", |s| s.max()),
            ("_avg", ": the mean of the last interval that had values", |s| s.average()),
            (
                "_sigma",
                ": the standard deviation (n - 1) of the last interval that had values; NaN below two values",
                |s| s.sigma(),
            ),
        ];
        for (suffix, what, stat) in stats {
            self.gauges(
                g,
                arena,
                suffix,
                &[source, what, &in_unit[..]],
                |v| match v {
                    Cumulative::Summary { last, .. } => stat(last).unwrap_or(f64::NAN),
                    _ => f64::NAN,
                },
            );
        }
    }

    fn histogram(&mut self, g: &Group, arena: &str, source: &str) {
        let bounds: Vec<f64> = self.les[..self.les.len() - 1].iter().map(|l| l.0).collect();
        let reservoir = match g.members.first().map(|m| m.value) {
            Some(Cumulative::Histogram(d)) => d.options().reservoir(),
            _ => Default::default(),
        };
        let how = match reservoir {
            crate::stats::histogram::Reservoir::Hdr => {
                " (buckets from the HDR histogram, exact to its precision)"
            }
            _ => " (buckets estimated from the reservoir's samples)",
        };
        // A histogram's values are times when given as process.hrtime() differences, else in
        // the user's unit: HELP says what times are in, UNIT only where the name says it too.
        let times = format!(", times in {}", self.times.words);
        let unit = self.times.for_family(&g.name);
        let help = [source, ": the values since the start", &times[..], how];
        self.family(&g.name, "", "histogram", unit, &help);
        for m in &g.members {
            let Cumulative::Histogram(d) = m.value else {
                continue;
            };
            let labels = m.labels(arena);
            let counts = d.count_at_most(&bounds);
            for (i, (_, le)) in self.les.iter().enumerate() {
                let c = counts.get(i).copied().unwrap_or(d.count());
                sample(
                    self.out,
                    &g.name,
                    "_bucket",
                    labels,
                    Some(("le", le)),
                    c as f64,
                );
            }
            self.sample(&g.name, "_sum", labels, None, d.sum());
            self.sample(&g.name, "_count", labels, None, d.count() as f64);
        }
        if self.quantiles.is_empty() {
            return;
        }
        let percentiles: Vec<f64> = self.quantiles.iter().map(|q| q.0 * 100.0).collect();
        let help = [
            source,
            ": quantiles of the values since the start",
            &times[..],
            " (NaN before any value)",
        ];
        // A summary of quantiles only (its count and sum are the histogram's).
        self.family(&g.name, "_quantile", "summary", None, &help);
        let quantiles = std::mem::take(&mut self.quantiles);
        for m in &g.members {
            let Cumulative::Histogram(d) = m.value else {
                continue;
            };
            let labels = m.labels(arena);
            let stats = d.stats(&percentiles);
            for ((_, q), v) in quantiles.iter().zip(stats.percentiles) {
                self.sample(
                    &g.name,
                    "_quantile",
                    labels,
                    Some(("quantile", q)),
                    v.unwrap_or(f64::NAN),
                );
            }
        }
        self.quantiles = quantiles;
    }
}

/// Writes one sample line: `name+suffix{tags,worker,extra} value`.
fn sample(
    out: &mut Vec<u8>,
    name: &str,
    suffix: &str,
    labels: Labels,
    extra: Option<(&str, &str)>,
    value: f64,
) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(suffix.as_bytes());
    push_labels(out, labels, extra);
    out.push(b' ');
    push_value(value, out);
    out.push(b'\n');
}

/// Appends `{tags,worker="...",extra}` (nothing when all three are empty).
fn push_labels(out: &mut Vec<u8>, labels: Labels, extra: Option<(&str, &str)>) {
    let Labels { tags, process } = labels;
    if tags.is_empty() && process.is_none() && extra.is_none() {
        return;
    }
    out.push(b'{');
    out.extend_from_slice(tags.as_bytes());
    let mut first = tags.is_empty();
    let mut comma = |out: &mut Vec<u8>| {
        if !std::mem::take(&mut first) {
            out.push(b',');
        }
    };
    if let Some(p) = process {
        comma(out);
        out.extend_from_slice(b"worker=\"");
        // Process::label's names, written in place: one per per-process line, no allocation.
        match &p.from {
            Tree::Master | Tree::Cluster => out.extend_from_slice(b"master"),
            Tree::Worker(id) => push_integer(u64::from(*id), out),
            Tree::Thread(label) => {
                let mut text = String::new();
                escape(label, true, &mut text);
                out.extend_from_slice(text.as_bytes());
            }
        }
        out.push(b'"');
    }
    if let Some((k, v)) = extra {
        comma(out);
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b"=\"");
        out.extend_from_slice(v.as_bytes());
        out.push(b'"');
    }
    out.push(b'}');
}

/// What a HELP line says made a family: `panoptic inc(['http'], 'requests')`.
fn source(key: &SeriesKey, bare: &str) -> String {
    let path: Vec<String> = key.path.iter().map(|p| format!("'{p}'")).collect();
    format!("panoptic {}([{}], '{bare}')", key.method, path.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::histogram::{Distribution, HistogramOptions, Reservoir};
    use crate::stats::meter::MeterStats;
    use crate::stats::summary::Summary;

    use TextFormat::{OpenMetrics as OM, Prometheus as TEXT};

    type Item = (SeriesKey, Option<Process>, Cumulative);

    fn item(method: &str, path: &[&str], id: &str, value: Cumulative) -> Item {
        (SeriesKey::new(method, path, id), None, value)
    }

    fn of(process: Tree, (key, _, value): Item) -> Item {
        (
            key,
            Some(Process {
                from: process,
                pid: 1,
            }),
            value,
        )
    }

    fn render_with(items: &[Item], options: &PrometheusOptions, format: TextFormat) -> String {
        let series = items.iter().map(|(key, process, value)| Series {
            key,
            process: process.as_ref(),
            value,
        });
        let mut out = Vec::new();
        write(series, options, format, &mut out);
        String::from_utf8(out).unwrap()
    }

    fn render(items: &[Item], format: TextFormat) -> String {
        render_with(items, &PrometheusOptions::default(), format)
    }

    /// The output without its HELP lines and the skipped-series gauge.
    fn body(text: &str) -> String {
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with("# HELP") && !l.contains("panoptic_export_skipped_series"))
            .collect();
        lines.join("\n")
    }

    /// The value of the skipped-series gauge.
    fn skipped(text: &str) -> f64 {
        let line = text
            .lines()
            .find(|l| l.starts_with("panoptic_export_skipped_series "))
            .unwrap();
        line.rsplit(' ').next().unwrap().parse().unwrap()
    }

    fn counter(total: f64) -> Cumulative {
        Cumulative::Counter { total, calls: 1.0 }
    }

    fn summary(values: &[f64]) -> Cumulative {
        let mut last = Summary::default();
        values.iter().for_each(|&v| last.push(v));
        Cumulative::Summary {
            count: 10.0,
            sum: 123.5,
            last,
        }
    }

    fn histogram(reservoir: Reservoir, values: &[f64]) -> Cumulative {
        let options = HistogramOptions::new(3, 0.001, 3_600_000.0, reservoir).unwrap();
        let mut d = Distribution::new(&options, 1);
        d.record_all(values, 1.7e12);
        Cumulative::Histogram(Box::new(d))
    }

    #[test]
    fn counters_in_both_formats() {
        let items = [
            item("inc", &["http"], "requests", counter(3.0)),
            item(
                "inc",
                &["http"],
                r#"requests{method="GET",status="200"}"#,
                counter(2.5),
            ),
        ];
        assert_eq!(
            render(&items, TEXT),
            "# HELP http_requests_total panoptic inc(['http'], 'requests'): the sum of increments since the start\n\
             # TYPE http_requests_total counter\n\
             http_requests_total 3\n\
             http_requests_total{method=\"GET\",status=\"200\"} 2.5\n\
             # HELP panoptic_export_skipped_series series left out of this exposition: empty names, names another series took, repeated label sets (see docs/prometheus.md)\n\
             # TYPE panoptic_export_skipped_series gauge\n\
             panoptic_export_skipped_series 0\n"
        );
        assert_eq!(
            render(&items, OM),
            "# TYPE http_requests counter\n\
             # HELP http_requests panoptic inc(['http'], 'requests'): the sum of increments since the start\n\
             http_requests_total 3\n\
             http_requests_total{method=\"GET\",status=\"200\"} 2.5\n\
             # TYPE panoptic_export_skipped_series gauge\n\
             # HELP panoptic_export_skipped_series series left out of this exposition: empty names, names another series took, repeated label sets (see docs/prometheus.md)\n\
             panoptic_export_skipped_series 0\n\
             # EOF\n"
        );
        // A counter named `..._total` is not given a second suffix.
        let items = [item("inc", &[], "jobs_total", counter(1.0))];
        assert_eq!(
            body(&render(&items, OM)),
            "# TYPE jobs counter\njobs_total 1\n# EOF"
        );
        assert_eq!(
            body(&render(&items, TEXT)),
            "# TYPE jobs_total counter\njobs_total 1"
        );
    }

    #[test]
    fn gauges_with_nan_and_infinities() {
        let items = [
            item("gauge", &["q"], "length", Cumulative::Gauge(f64::NAN)),
            item("set", &["q"], "limit", Cumulative::Gauge(f64::INFINITY)),
            item(
                "rate",
                &["q"],
                "drain",
                Cumulative::Gauge(f64::NEG_INFINITY),
            ),
            item("set", &["q"], "ratio", Cumulative::Gauge(-0.000012)),
        ];
        for format in [TEXT, OM] {
            let text = render(&items, format);
            let expected = "# TYPE q_drain gauge\nq_drain -Inf\n\
                            # TYPE q_length gauge\nq_length NaN\n\
                            # TYPE q_limit gauge\nq_limit +Inf\n\
                            # TYPE q_ratio gauge\nq_ratio -1.2e-05";
            assert!(body(&text).starts_with(expected), "{text}");
            assert!(text.contains(
                "# HELP q_length panoptic gauge(['q'], 'length'): the gauge function's last value (NaN when it failed)\n"
            ));
        }
    }

    #[test]
    fn samples_are_summaries_with_last_interval_gauges() {
        let items = [
            item("sample", &["db"], "rows", summary(&[2.0, 4.0])),
            of(
                Tree::Worker(2),
                item("sample", &["db"], "rows", summary(&[7.0])),
            ),
        ];
        let expected = "# TYPE db_rows summary\n\
                        db_rows_count 10\ndb_rows_sum 123.5\n\
                        db_rows_count{worker=\"2\"} 10\ndb_rows_sum{worker=\"2\"} 123.5\n\
                        # TYPE db_rows_min gauge\ndb_rows_min 2\ndb_rows_min{worker=\"2\"} 7\n\
                        # TYPE db_rows_max gauge\ndb_rows_max 4\ndb_rows_max{worker=\"2\"} 7\n\
                        # TYPE db_rows_avg gauge\ndb_rows_avg 3\ndb_rows_avg{worker=\"2\"} 7\n\
                        # TYPE db_rows_sigma gauge\ndb_rows_sigma 1.4142135623730951\ndb_rows_sigma{worker=\"2\"} NaN";
        assert_eq!(body(&render(&items, TEXT)), expected);
        assert_eq!(body(&render(&items, OM)), format!("{expected}\n# EOF"));
        // A negative sum is no counter: OpenMetrics leaves it out, the text format keeps it.
        let negative = [item(
            "sample",
            &[],
            "delta",
            Cumulative::Summary {
                count: 2.0,
                sum: -3.0,
                last: Summary::default(),
            },
        )];
        assert!(render(&negative, TEXT).contains("\ndelta_sum -3\n"));
        let om = render(&negative, OM);
        assert!(
            om.contains("\ndelta_count 2\n") && !om.contains("delta_sum"),
            "{om}"
        );
        // Never-filled statistics are NaN.
        assert!(om.contains("\ndelta_min NaN\n"));
    }

    #[test]
    fn timed_samples_state_their_unit_where_exact_and_named() {
        let items = [
            item(
                "timedSample",
                &["http"],
                "latency_milliseconds",
                summary(&[1.0]),
            ),
            item("timedSample", &["http"], "latency", summary(&[1.0])),
        ];
        let om = render(&items, OM);
        assert!(om.contains(
            "# TYPE http_latency_milliseconds summary\n# UNIT http_latency_milliseconds milliseconds\n"
        ));
        assert!(om.contains("# TYPE http_latency summary\n# HELP http_latency panoptic timedSample(['http'], 'latency'): count and sum of the values since the start (milliseconds)\n"));
        assert_eq!(om.matches("# UNIT").count(), 1);
        // No UNIT in the Prometheus format; none at another scale factor.
        assert!(!render(&items, TEXT).contains("UNIT"));
        let options = PrometheusOptions {
            scale_factor: 1000.0,
            ..PrometheusOptions::default()
        };
        let om = render_with(&items, &options, OM);
        assert!(!om.contains("UNIT"));
        assert!(om.contains("(seconds)"));
        let items = [item("timedSample", &[], "t_seconds", summary(&[1.0]))];
        assert!(render_with(&items, &options, OM).contains("# UNIT t_seconds seconds\n"));
        let options = PrometheusOptions {
            scale_factor: 60_000.0,
            ..PrometheusOptions::default()
        };
        let om = render_with(&items, &options, OM);
        assert!(
            !om.contains("UNIT") && om.contains("(milliseconds / scaleFactor 60000)"),
            "{om}"
        );
    }

    #[test]
    fn histogram_buckets_and_units_follow_the_scale_factor() {
        // 50 ms timings, as recorded at scaleFactor 1000 (seconds) and at 1 (milliseconds).
        let les = |text: &str| -> Vec<String> {
            (text.lines())
                .filter(|l| l.starts_with("t_bucket"))
                .map(|l| l.to_string())
                .collect()
        };
        let seconds = PrometheusOptions {
            scale_factor: 1000.0,
            ..PrometheusOptions::default()
        };
        let items = [item(
            "histogram",
            &[],
            "t",
            histogram(Reservoir::Hdr, &[0.05; 4]),
        )];
        let text = render_with(&items, &seconds, TEXT);
        assert_eq!(
            les(&text),
            [
                "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0",
                "2.5", "5.0", "10.0", "+Inf"
            ]
            .iter()
            .zip([0, 0, 0, 0, 0, 4, 4, 4, 4, 4, 4, 4, 4, 4])
            .map(|(le, n)| format!("t_bucket{{le=\"{le}\"}} {n}"))
            .collect::<Vec<_>>(),
            "{text}"
        );
        assert!(text.contains(", times in seconds ("), "{text}");
        let items = [item(
            "histogram",
            &[],
            "t",
            histogram(Reservoir::Hdr, &[50.0; 4]),
        )];
        let text = render(&items, TEXT);
        let lines = les(&text);
        assert_eq!(lines[0], "t_bucket{le=\"1.0\"} 0");
        assert!(
            lines.contains(&"t_bucket{le=\"25.0\"} 0".to_string()),
            "{text}"
        );
        assert!(
            lines.contains(&"t_bucket{le=\"50.0\"} 4".to_string()),
            "{text}"
        );
        assert_eq!(lines.len(), 14);
        assert!(text.contains(", times in milliseconds "), "{text}");
        // Explicit buckets are taken as given, whatever the scale factor.
        let given = PrometheusOptions {
            buckets: Some(vec![0.5, 7.0]),
            ..seconds.clone()
        };
        let items = [item(
            "histogram",
            &[],
            "t",
            histogram(Reservoir::Hdr, &[0.05]),
        )];
        assert_eq!(
            les(&render_with(&items, &given, TEXT)),
            [
                "t_bucket{le=\"0.5\"} 1",
                "t_bucket{le=\"7.0\"} 1",
                "t_bucket{le=\"+Inf\"} 1"
            ]
        );
        // Another scale factor: the defaults in its unit, said in words.
        let minutes = PrometheusOptions {
            scale_factor: 60_000.0,
            ..PrometheusOptions::default()
        };
        let text = render_with(&items, &minutes, OM);
        assert!(
            les(&text)[0].starts_with("t_bucket{le=\"1.6666666666666667e-05\"}"),
            "{text}"
        );
        assert!(
            text.contains(", times in milliseconds / scaleFactor 60000 ("),
            "{text}"
        );
        assert!(!text.contains("# UNIT"));
        // UNIT (OpenMetrics only) where the name ends with the unit, on the histogram family
        // (not on its `_quantile` summary, whose name does not end with it).
        let named = [
            item(
                "histogram",
                &["http"],
                "latency_seconds",
                histogram(Reservoir::Hdr, &[0.05]),
            ),
            item(
                "histogram",
                &["http"],
                "latency_milliseconds",
                histogram(Reservoir::Hdr, &[0.05]),
            ),
        ];
        let quantiles = PrometheusOptions {
            quantiles: vec![0.99],
            ..seconds.clone()
        };
        let om = render_with(&named, &quantiles, OM);
        assert!(
            om.contains("# TYPE http_latency_seconds histogram\n# UNIT http_latency_seconds seconds\n# HELP http_latency_seconds panoptic histogram(['http'], 'latency_seconds'): the values since the start, times in seconds (buckets from the HDR histogram, exact to its precision)\n"),
            "{om}"
        );
        assert!(om.contains("# HELP http_latency_seconds_quantile panoptic histogram(['http'], 'latency_seconds'): quantiles of the values since the start, times in seconds (NaN before any value)\n"), "{om}");
        assert_eq!(om.matches("# UNIT").count(), 1, "{om}");
        assert!(!render_with(&named, &quantiles, TEXT).contains("UNIT"));
        let om = render_with(&named, &PrometheusOptions::default(), OM);
        assert!(
            om.contains("# UNIT http_latency_milliseconds milliseconds\n"),
            "{om}"
        );
        assert_eq!(om.matches("# UNIT").count(), 1, "{om}");
    }

    #[test]
    fn histograms_have_cumulative_buckets_and_asked_quantiles() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        let items = [
            item(
                "histogram",
                &["http"],
                "ms",
                histogram(Reservoir::Hdr, &values),
            ),
            of(
                Tree::Master,
                item("histogram", &["http"], "ms", histogram(Reservoir::Hdr, &[])),
            ),
        ];
        let options = PrometheusOptions {
            buckets: Some(vec![1.0, 2.5, 50.0, 1e6]),
            quantiles: vec![0.5, 1.0],
            ..PrometheusOptions::default()
        };
        let text = render_with(&items, &options, TEXT);
        assert_eq!(
            body(&text),
            "# TYPE http_ms histogram\n\
             http_ms_bucket{le=\"1.0\"} 1\nhttp_ms_bucket{le=\"2.5\"} 2\n\
             http_ms_bucket{le=\"50.0\"} 50\nhttp_ms_bucket{le=\"1e+06\"} 100\n\
             http_ms_bucket{le=\"+Inf\"} 100\nhttp_ms_sum 5050\nhttp_ms_count 100\n\
             http_ms_bucket{worker=\"master\",le=\"1.0\"} 0\n\
             http_ms_bucket{worker=\"master\",le=\"2.5\"} 0\n\
             http_ms_bucket{worker=\"master\",le=\"50.0\"} 0\n\
             http_ms_bucket{worker=\"master\",le=\"1e+06\"} 0\n\
             http_ms_bucket{worker=\"master\",le=\"+Inf\"} 0\n\
             http_ms_sum{worker=\"master\"} 0\nhttp_ms_count{worker=\"master\"} 0\n\
             # TYPE http_ms_quantile summary\n\
             http_ms_quantile{quantile=\"0.5\"} 50.015\nhttp_ms_quantile{quantile=\"1.0\"} 100\n\
             http_ms_quantile{worker=\"master\",quantile=\"0.5\"} NaN\n\
             http_ms_quantile{worker=\"master\",quantile=\"1.0\"} NaN"
        );
        // OpenMetrics' canonical label numbers, in both formats.
        let om = render_with(&items, &options, OM);
        for le in [
            "le=\"1.0\"",
            "le=\"2.5\"",
            "le=\"50.0\"",
            "le=\"1e+06\"",
            "le=\"+Inf\"",
            "quantile=\"0.5\"",
            "quantile=\"1.0\"",
        ] {
            assert!(om.contains(le), "{le} in {om}");
        }
        // Sampling reservoirs estimate (exactly, while the sample holds every value).
        let items = [item(
            "histogram",
            &[],
            "u",
            histogram(Reservoir::Uniform, &values),
        )];
        let text = render_with(&items, &options, TEXT);
        assert!(
            text.contains("u_bucket{le=\"2.5\"} 2\nu_bucket{le=\"50.0\"} 50\n"),
            "{text}"
        );
        assert!(text.contains("buckets estimated from the reservoir's samples"));
        // HDR quantiles are HdrHistogram's (the highest value equal to the median at 3
        // figures: 50.015). No quantile family unless asked for.
        assert!(!render(&items, OM).contains("_quantile"));
    }

    #[test]
    fn meters_are_counters_with_rate_gauges() {
        let m = Cumulative::Meter {
            count: 42.0,
            last: MeterStats {
                count: 40.0,
                mean_rate: 0.5,
                m1: 1.25,
                m5: 2.0,
                m15: 3.0,
            },
        };
        let items = [item("meter", &["jobs"], "done", m)];
        let expected = "# TYPE jobs_done_m1_rate gauge\njobs_done_m1_rate 1.25\n\
                        # TYPE jobs_done_m5_rate gauge\njobs_done_m5_rate 2\n\
                        # TYPE jobs_done_m15_rate gauge\njobs_done_m15_rate 3\n\
                        # TYPE jobs_done_mean_rate gauge\njobs_done_mean_rate 0.5";
        assert_eq!(
            body(&render(&items, TEXT)),
            format!("# TYPE jobs_done_total counter\njobs_done_total 42\n{expected}")
        );
        assert_eq!(
            body(&render(&items, OM)),
            format!("# TYPE jobs_done counter\njobs_done_total 42\n{expected}\n# EOF")
        );
    }

    #[test]
    fn labels_and_help_are_escaped() {
        let id = r#"hits{page="a\\b\"c\nd",user="é"}"#;
        let items = [item("inc", &["we\"b", "x\\y\nz"], id, counter(1.0))];
        let text = render(&items, TEXT);
        assert!(
            text.contains("we_b_x_y_z_hits_total{page=\"a\\\\b\\\"c\\nd\",user=\"é\"} 1\n"),
            "{text}"
        );
        // HELP: backslash and newline escaped; quotes too in OpenMetrics.
        assert!(text.contains(
            "# HELP we_b_x_y_z_hits_total panoptic inc(['we\"b', 'x\\\\y\\nz'], 'hits')"
        ));
        let om = render(&items, OM);
        assert!(
            om.contains("# HELP we_b_x_y_z_hits panoptic inc(['we\\\"b', 'x\\\\y\\nz'], 'hits')")
        );
        // Per-process labels: master, a worker id, a thread's label (escaped).
        let threads = [
            of(Tree::Master, item("set", &[], "g", Cumulative::Gauge(1.0))),
            of(
                Tree::Worker(3),
                item("set", &[], "g", Cumulative::Gauge(2.0)),
            ),
            of(
                Tree::Thread("3:1\"".into()),
                item("set", &[], "g", Cumulative::Gauge(3.0)),
            ),
        ];
        assert_eq!(
            body(&render(&threads, TEXT)),
            "# TYPE g gauge\ng{worker=\"master\"} 1\ng{worker=\"3\"} 2\ng{worker=\"3:1\\\"\"} 3"
        );
    }

    #[test]
    fn names_and_label_names_are_sanitized() {
        let items = [
            item("inc", &["http.server", "GET /a-b"], "réq", counter(1.0)),
            item("set", &["2xx"], "rate:1", Cumulative::Gauge(1.0)),
            item(
                "set",
                &[],
                r#"t{le="1",worker="w",__x="2",quantile="q"}"#,
                Cumulative::Gauge(1.0),
            ),
            of(
                Tree::Worker(1),
                item("set", &[], r#"u{worker="w"}"#, Cumulative::Gauge(1.0)),
            ),
            // Not a tag block (keys are label names): all bare id.
            item("set", &[], r#"bad{a-b="1"}"#, Cumulative::Gauge(1.0)),
            item("set", &[], "broken{a=\"1\"", Cumulative::Gauge(1.0)),
            // Unsorted tags are sorted.
            item("set", &[], r#"v{b="1",a="2"}"#, Cumulative::Gauge(1.0)),
        ];
        let text = body(&render(&items, TEXT));
        for line in [
            "http_server_GET__a_b_r_q_total 1",
            "_2xx_rate_1 1",
            "t{exported___x=\"2\",exported_le=\"1\",exported_quantile=\"q\",exported_worker=\"w\"} 1",
            "u{exported_worker=\"w\",worker=\"1\"} 1",
            "bad_a_b__1__ 1",
            "broken_a__1_ 1",
            "v{a=\"2\",b=\"1\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
        // A prefix goes in front as it is; a leading digit is then fine.
        let options = PrometheusOptions {
            prefix: "app:".into(),
            ..PrometheusOptions::default()
        };
        let text = render_with(&items[1..2], &options, TEXT);
        assert!(
            text.contains("\napp:2xx_rate_1 1\n")
                && text.contains("\napp:panoptic_export_skipped_series 0\n"),
            "{text}"
        );
    }

    #[test]
    fn tag_blocks() {
        let tags = |pairs: &[(&str, &str)]| {
            Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<Vec<_>>(),
            )
        };
        assert_eq!(
            split_tags(r#"r{a="1",b="x\"y\\z\n"}"#),
            ("r", tags(&[("a", "1"), ("b", "x\"y\\z\n")]))
        );
        // The first `{` that starts a well-formed block to the end.
        assert_eq!(split_tags(r#"a{b{k="v"}"#), ("a{b", tags(&[("k", "v")])));
        for untagged in [
            "x",
            "x{}",
            r#"x{a="1",}"#,
            r#"x{a="\q"}"#,
            r#"x{1a="1"}"#,
            r#"x{a="1"} "#,
            r#"x{a="1""#,
        ] {
            assert_eq!(split_tags(untagged), (untagged, None), "{untagged}");
        }
        // The fast path agrees: the canonical text is what split_tags would render.
        assert!(canonical(r#"a="1",b="x\"y""#));
        for odd in [
            "",
            r#"b="1",a="2""#,
            r#"a="1",a="2""#,
            r#"le="1""#,
            r#"__a="1""#,
            "a=\"1\n\"",
        ] {
            assert!(!canonical(odd), "{odd}");
        }
    }

    #[test]
    fn clashing_names_keep_one_group_and_count_the_rest() {
        let items = [
            // Same name, other kinds: `inc` ranks before `set`, so the counter stays.
            item("set", &["a"], "b", Cumulative::Gauge(5.0)),
            item("inc", &["a"], "b", counter(1.0)),
            of(
                Tree::Worker(1),
                item("set", &["a"], "b", Cumulative::Gauge(5.0)),
            ),
            // Another path, the same name: the smaller path (['a'] before ['a', 'b']) wins.
            item("inc", &["a", "b"], "c", counter(1.0)),
            item("inc", &["a"], "b_c", counter(2.0)),
            // A gauge named like a counter's sample: a_b's counter claims a_b_total.
            item("set", &["a"], "b_total", Cumulative::Gauge(1.0)),
            // A gauge named like a summary's statistics.
            item("sample", &[], "s", summary(&[1.0])),
            item("set", &[], "s_max", Cumulative::Gauge(1.0)),
            // Empty name.
            item("inc", &[], "", counter(1.0)),
            // Label sets that repeat (tags unsorted, reserved names renamed) or a label name
            // twice in one series: the first in the store's order stays.
            item("set", &[], r#"d{a="1",b="2"}"#, Cumulative::Gauge(1.0)),
            item("set", &[], r#"d{b="2",a="1"}"#, Cumulative::Gauge(2.0)),
            item("set", &[], r#"d{a="1",a="2"}"#, Cumulative::Gauge(3.0)),
            item("set", &[], r#"e{le="1"}"#, Cumulative::Gauge(1.0)),
            item("set", &[], r#"e{exported_le="1"}"#, Cumulative::Gauge(2.0)),
        ];
        for format in [TEXT, OM] {
            let text = render(&items, format);
            let body = body(&text);
            let samples: Vec<&str> = body.lines().filter(|l| !l.starts_with('#')).collect();
            assert_eq!(
                samples,
                [
                    "a_b_total 1",
                    "a_b_c_total 2",
                    "d{a=\"1\",b=\"2\"} 1",
                    "e{exported_le=\"1\"} 1",
                    "s_count 10",
                    "s_sum 123.5",
                    "s_min 1",
                    "s_max 1",
                    "s_avg 1",
                    "s_sigma NaN",
                ],
                "{text}"
            );
            assert_eq!(skipped(&text), 9.0, "{text}");
        }
    }

    #[test]
    fn groups_are_sorted_and_output_is_deterministic() {
        let mut items = vec![
            item("set", &["z"], "last", Cumulative::Gauge(1.0)),
            item("inc", &["a"], "first", counter(1.0)),
            item("set", &["m"], "mid", Cumulative::Gauge(1.0)),
        ];
        let one = render(&items, OM);
        items.reverse();
        assert_eq!(render(&items, OM), one);
        let names: Vec<&str> = one.lines().filter(|l| l.starts_with("# TYPE")).collect();
        assert_eq!(
            names,
            [
                "# TYPE a_first counter",
                "# TYPE m_mid gauge",
                "# TYPE z_last gauge",
                "# TYPE panoptic_export_skipped_series gauge"
            ]
        );
    }

    #[test]
    fn an_empty_store() {
        let text = render(&[], TEXT);
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(text.ends_with(
            "# TYPE panoptic_export_skipped_series gauge\npanoptic_export_skipped_series 0\n"
        ));
        assert!(render(&[], OM).ends_with("panoptic_export_skipped_series 0\n# EOF\n"));
    }

    #[test]
    fn numbers() {
        let go = |x: f64| {
            let mut out = Vec::new();
            push_go_float(x, &mut out);
            String::from_utf8(out).unwrap()
        };
        let cases = [
            (0.001, "0.001"),
            (0.0001, "0.0001"),
            (1e-5, "1e-05"),
            (2.5, "2.5"),
            (100000.0, "100000"),
            (1e6, "1e+06"),
            (1234567.5, "1.2345675e+06"),
            (-0.25, "-0.25"),
            (1e21, "1e+21"),
            (1.5e-300, "1.5e-300"),
            (f64::MAX, "1.7976931348623157e+308"),
            (0.0, "0"),
        ];
        for (x, s) in cases {
            assert_eq!(go(x), s, "{x}");
        }
        let value = |x: f64| {
            let mut out = Vec::new();
            push_value(x, &mut out);
            String::from_utf8(out).unwrap()
        };
        for n in [0u64, 7, 10, 99, 100, 101, 1001, 65536, 999_999_999_999_999] {
            assert_eq!(value(n as f64), n.to_string());
            assert_eq!(
                value(-(n as f64)),
                if n == 0 { "0".into() } else { format!("-{n}") }
            );
        }
        assert_eq!(value(123456789012.0), "123456789012");
        assert_eq!(value(-0.0), "0");
        assert_eq!(value(1e15), "1e+15");
        assert_eq!(value(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(
            (
                value(f64::NAN),
                value(f64::INFINITY),
                value(f64::NEG_INFINITY)
            ),
            ("NaN".into(), "+Inf".into(), "-Inf".into())
        );
        // OpenMetrics' canonical examples.
        let canonical: Vec<String> = [
            0.0, 0.001, 0.01, 0.1, 0.9, 0.95, 0.999, 1.0, 1.7, 10.0, 1e-10, 1e-9, 1e-5, 1e-4, 1e5,
            1e6, 1e10,
        ]
        .iter()
        .map(|&x| label_number(x))
        .collect();
        assert_eq!(
            canonical,
            [
                "0.0", "0.001", "0.01", "0.1", "0.9", "0.95", "0.999", "1.0", "1.7", "10.0",
                "1e-10", "1e-09", "1e-05", "0.0001", "100000.0", "1e+06", "1e+10"
            ]
        );
    }

    #[test]
    fn negotiation() {
        let prometheus2 = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        let prometheus3 = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1";
        let cases = [
            (prometheus2, OM),
            (prometheus3, OM),
            ("text/plain;version=0.0.4;q=0.5,*/*;q=0.1", TEXT),
            ("", TEXT),
            ("*/*", TEXT),
            ("application/json", TEXT),
            ("Application/OpenMetrics-Text; Version=1.0.0", OM),
            ("application/openmetrics-text; version=\"0.0.1\"", OM),
            ("application/openmetrics-text;version=2.0.0", TEXT),
            ("application/openmetrics-text;q=0", TEXT),
            ("application/openmetrics-text;q=abc", TEXT),
            ("text/plain, application/openmetrics-text", TEXT),
            ("application/openmetrics-text, text/plain", OM),
            ("*/*, application/openmetrics-text", OM),
            ("text/plain;q=0.4, application/openmetrics-text;q=0.6", OM),
            ("application/*", OM),
        ];
        for (accept, format) in cases {
            assert_eq!(negotiate(accept), format, "{accept}");
        }
        assert_eq!(
            content_type(TEXT),
            "text/plain; version=0.0.4; charset=utf-8"
        );
        assert_eq!(
            content_type(OM),
            "application/openmetrics-text; version=1.0.0; charset=utf-8"
        );
    }

    #[test]
    fn options_are_checked() {
        let check = |f: fn(&mut PrometheusOptions)| {
            let mut o = PrometheusOptions::default();
            f(&mut o);
            validate_options(&o).map_err(|e| (e.field(), e.to_string()))
        };
        assert_eq!(check(|_| {}), Ok(()));
        assert_eq!(check(|o| o.prefix = "web_:x".into()), Ok(()));
        assert_eq!(
            check(|o| o.prefix = "1web".into()),
            Err(("options.prefix", "options.prefix must be empty or start a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*), got \"1web\"".into()))
        );
        assert!(check(|o| o.prefix = "we-b".into()).is_err());
        assert_eq!(
            check(|o| o.buckets = Some(vec![])),
            Err((
                "options.buckets",
                "options.buckets must hold at least one bound, got []".into()
            ))
        );
        assert_eq!(
            check(|o| o.buckets = Some(vec![1.0, f64::INFINITY])).unwrap_err().1,
            "options.buckets[1] must be a finite number of at least 0 (histogram values are never negative), got Infinity"
        );
        assert!(check(|o| o.buckets = Some(vec![-1.0]))
            .unwrap_err()
            .1
            .contains("got -1"));
        assert_eq!(
            check(|o| o.buckets = Some(vec![1.0, 5.0, 5.0]))
                .unwrap_err()
                .1,
            "options.buckets[2] must be greater than options.buckets[1] (5): bounds ascend, got 5"
        );
        assert_eq!(
            check(|o| o.quantiles = vec![0.5, 0.0]),
            Err((
                "options.quantiles",
                "options.quantiles[1] must be above 0 and at most 1, got 0".into()
            ))
        );
        assert!(check(|o| o.quantiles = vec![f64::NAN])
            .unwrap_err()
            .1
            .contains("got NaN"));
        assert_eq!(
            check(|o| o.quantiles = vec![0.9, 0.9]).unwrap_err().1,
            "options.quantiles[1] repeats 0.9"
        );
        // Invalid options still give valid output.
        let options = PrometheusOptions {
            prefix: "9 x".into(),
            buckets: Some(vec![5.0, f64::NAN, 1.0, 5.0]),
            quantiles: vec![2.0, 0.5, 0.5],
            ..PrometheusOptions::default()
        };
        let items = [item(
            "histogram",
            &[],
            "h",
            histogram(Reservoir::Hdr, &[3.0]),
        )];
        let text = render_with(&items, &options, TEXT);
        let les: Vec<&str> = text.lines().filter(|l| l.contains("_bucket")).collect();
        assert_eq!(
            les,
            [
                "_9_xh_bucket{le=\"1.0\"} 0",
                "_9_xh_bucket{le=\"5.0\"} 1",
                "_9_xh_bucket{le=\"+Inf\"} 1"
            ]
        );
        assert_eq!(text.matches("quantile=").count(), 1);
    }

    #[test]
    fn a_store_writes_its_cluster_and_process_series() {
        use crate::export::{Origin, Store};
        use crate::gather::tree::Format;
        use crate::gather::Gathering;
        use crate::snapshot::{Entry, Snapshot, Value};
        use std::sync::Arc;
        let mut g = Gathering::default();
        let mut store = Store::new(Origin::default());
        store.keep_processes();
        g.keep_local(
            Snapshot {
                k: 0.0,
                pid: 1,
                entries: vec![Entry {
                    key: Arc::new(SeriesKey::new("inc", &["http"], r#"requests{code="200"}"#)),
                    value: Value::Counter {
                        count: 2.0,
                        total: 7.0,
                    },
                }],
                ..Snapshot::default()
            },
            &[],
        );
        let format = Format {
            interval: 100.0,
            scale_factor: 1.0,
            time_stamp: 100.0,
            percentiles: Arc::from([50.0]),
        };
        store.add(&g.deliver(0.0, format));
        let mut out = Vec::new();
        write(
            store.series(),
            &PrometheusOptions::default(),
            TEXT,
            &mut out,
        );
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            body(&text),
            "# TYPE http_requests_total counter\n\
             http_requests_total{code=\"200\"} 7\n\
             http_requests_total{code=\"200\",worker=\"master\"} 7"
        );
    }
}
