//! Names and labels: a series' metric name and label set (sanitised as Prometheus requires), its
//! group of families, and which group keeps a name two would share.

use std::collections::{HashMap, HashSet};
use std::ops::Range;

// FNV-1a for the groups' map, keyed by bare ids (without tags): few, short, chosen by the
// application's code (a bare id made of request data would already be unbounded cardinality),
// so SipHash's resistance to chosen keys buys little here and costs a tenth of an exposition.
use fnv::FnvBuildHasher;

use super::super::{Cumulative, Process, Series};
use crate::gather::Tree;
use crate::snapshot::SeriesKey;
use crate::tags::split_tags;

/// What a series is written as.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub(super) enum Kind {
    Counter,
    Gauge,
    Summary,
    Histogram,
    Meter,
}

pub(super) fn kind(value: &Cumulative) -> Kind {
    match value {
        Cumulative::Counter { .. } => Kind::Counter,
        Cumulative::Gauge(_) => Kind::Gauge,
        Cumulative::Summary { .. } => Kind::Summary,
        Cumulative::Histogram(_) => Kind::Histogram,
        Cumulative::Meter { .. } => Kind::Meter,
    }
}

/// The series of one method, path and bare id: the families they make.
pub(super) struct Group<'a> {
    /// The base name (a counter's without `_total`).
    pub(super) name: String,
    pub(super) kind: Kind,
    pub(super) key: &'a SeriesKey,
    pub(super) bare: &'a str,
    pub(super) members: Vec<Member<'a>>,
    /// Some member's labels were changed or rebuilt (sanitized names, reserved names, tags not
    /// in canonical form, an odd thread label): its label sets must be checked for repeats.
    pub(super) irregular: bool,
}

pub(super) struct Member<'a> {
    pub(super) value: &'a Cumulative,
    /// Its tags as label text (`a="x",b="y"`): where they are in the arena.
    pub(super) tags: Range<usize>,
    /// The process of a per-process series (its `worker` label).
    pub(super) process: Option<&'a Process>,
}

impl Member<'_> {
    pub(super) fn labels<'x>(&'x self, arena: &'x str) -> Labels<'x> {
        Labels {
            tags: &arena[self.tags.clone()],
            process: self.process,
        }
    }
}

/// What a sample line's braces hold before any `le` or `quantile`: tags, then `worker`.
#[derive(Clone, Copy)]
pub(super) struct Labels<'x> {
    pub(super) tags: &'x str,
    pub(super) process: Option<&'x Process>,
}

impl Labels<'_> {
    pub(super) const NONE: Labels<'static> = Labels {
        tags: "",
        process: None,
    };
}

/// Groups the series by source (method, path, bare id and kind) and renders their labels.
pub(super) fn collect<'a>(
    series: impl Iterator<Item = Series<'a>>,
    prefix: &str,
    arena: &mut String,
    skipped: &mut u64,
) -> Vec<Group<'a>> {
    let mut groups: Vec<Group<'a>> = Vec::new();
    // Groups by bare id, then found by method, path and kind: hashing one short string per
    // series (not the whole source) is most of the difference in cost.
    let mut by_bare: HashMap<&'a str, Vec<usize>, FnvBuildHasher> = HashMap::default();
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
pub(super) fn settle<'a>(
    groups: Vec<Group<'a>>,
    reserved: &[String],
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
    claimed.extend(reserved.iter().cloned());
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
pub(super) fn claims(base: &str, kind: Kind, quantiles: bool) -> Vec<String> {
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
pub(super) fn metric_name(prefix: &str, path: &[String], bare: &str, out: &mut String) {
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

/// The name a series of `path` and bare id `bare` has on `/metrics` without a prefix: what
/// per-name bucket layouts are keyed by ([`super::PrometheusOptions::named_buckets`]), the same
/// for every exporter.
pub fn base_name(path: &[String], bare: &str) -> String {
    let mut name = String::new();
    metric_name("", path, bare, &mut name);
    name
}

/// The prefix with characters a name cannot hold made `_`, and `_` in front of a leading digit
/// (a valid prefix is kept as it is): names made of it alone, such as the skipped-series
/// counter's, are valid too.
pub(super) fn clean_prefix(prefix: &str) -> std::borrow::Cow<'_, str> {
    let ok = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let digit = prefix.starts_with(|c: char| c.is_ascii_digit());
    if !digit && prefix.chars().all(ok) {
        prefix.into()
    } else {
        (digit.then_some('_').into_iter())
            .chain(prefix.chars().map(|c| if ok(c) { c } else { '_' }))
            .collect::<String>()
            .into()
    }
}

/// Label names a series' tag cannot keep: `worker` (the per-process label), `le` and
/// `quantile` (histograms' and summaries' own); with names starting with `__` (reserved by
/// Prometheus), they become `exported_<name>`, as Prometheus renames clashing target labels.
pub(super) const RESERVED_LABELS: [&str; 3] = ["worker", "le", "quantile"];

/// Renders parsed tags as label text into `out`, sorted by label name (so that two ids giving
/// the same label set give the same text); false when two end up with the same label name (the
/// series is left out).
pub(super) fn render_tags(tags: &[(String, String)], out: &mut String) -> bool {
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
pub(super) fn tag_text(id: &str) -> (&str, Option<&str>) {
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
pub(super) fn canonical(text: &str) -> bool {
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
pub(super) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.iter().zip(b).all(|(x, y)| x == y)
}

/// Whether `a < b` in byte order.
pub(super) fn ascending(a: &[u8], b: &[u8]) -> bool {
    match a.iter().zip(b).find(|(x, y)| x != y) {
        Some((x, y)) => x < y,
        None => a.len() < b.len(),
    }
}

/// Which bytes a label name may hold (`[a-zA-Z0-9_]`).
pub(super) static NAME_CHAR: [bool; 256] = {
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
pub(super) fn label_name(name: &str, out: &mut String) {
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
pub(super) fn escape(text: &str, quote: bool, out: &mut String) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

/// Appends `{tags,worker="...",extra}` (nothing when all three are empty).
pub(super) fn push_labels(out: &mut Vec<u8>, labels: Labels, extra: Option<(&str, &str)>) {
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
            Tree::Worker(id) => out.extend_from_slice(itoa::Buffer::new().format(*id).as_bytes()),
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
