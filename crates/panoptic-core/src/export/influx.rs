//! InfluxDB line protocol for one delivery: what [`super::push::Pusher::influx`] sends to `/write`.
//!
//! One point per series reported in the delivery (the cluster view, and each process's own
//! series when [`LineOptions::per_process`] is set and the store keeps them), in the spirit of
//! Panoptes' InfluxDB export (measurement = metrics group, tags = dimensions + resource
//! fields, fields = metric values):
//! - measurement: [`LineOptions::prefix`] followed by the path elements and the bare id (the id
//!   without its tag block), joined with `.`: `inc(['http'], 'requests')` with prefix `app.`
//!   is `app.http.requests`;
//! - tags: `host` (the serving host), the constant [`LineOptions::tags`] (which may replace
//!   `host`), the series' own tags (one named `worker` is written `exported_worker`) and, on a
//!   process's own series, `worker`: `master`, the cluster worker id or a worker thread's label
//!   (`1:3`), as the Prometheus exposition labels them; when two have the same key the later in
//!   that list wins. The cluster view's points have no `worker` tag (InfluxQL:
//!   `WHERE "worker" = ''`);
//! - fields, by kind. `count`, `sum`, `total` and `calls` are cumulative since the start, as
//!   the store keeps them (monotonic across worker exits: use `non_negative_derivative()`);
//!   the other fields describe the interval that just ended:
//!   | kind | fields |
//!   | --- | --- |
//!   | `inc` | `increase` (the interval's sum of increments), `rate` (that per second), `total` (the sum since the start), `calls` (integer, calls since the start) |
//!   | `sample`, `timedSample` | `count` (integer), `sum` (since the start), `min`, `max`, `mean`, `sigma` (the interval's, when it had values; `sigma` from two) |
//!   | `histogram` | `count` (integer), `sum` (since the start), `min`, `max`, `mean`, `stddev` and the instance's percentiles (`p50`, `p999` for 99.9, ... as in deliveries) of the interval |
//!   | `meter` | `count` (events since the start), `m1`, `m5`, `m15`, `mean_rate` (events per second) |
//!   | `gauge`, `rate`, numeric `set` | `value` |
//!   | other `set` | `json` (string: the value as JSON text, when at most 64 KiB long) |
//!
//!   Registered loggers' leaves are not written. Integers carry the `i` suffix; a field whose
//!   number is NaN or infinite is left out (line protocol has no such numbers), and a point
//!   left with no field is not written;
//! - timestamp: the end of the interval, in [`LineOptions::precision`].
//!
//! Escaping follows the line protocol: `\` before commas, `=` and spaces in measurements, tag
//! keys, tag values and field keys, before `"` and `\` in string field values. What line
//! protocol cannot say in a name is changed: a line break becomes a space; a backslash is
//! kept, except where it would escape what follows it (before a comma, `=` or space, or at the
//! end of a name: InfluxDB 1.x has no escape for the backslash itself), where it is left out; a
//! measurement that would begin with `#` (a comment line) gets a `_` before it. Tags with an
//! empty key or value are left out (InfluxDB rejects them), and so is a series tag named
//! `time` (InfluxDB rejects the point), and a point with an empty measurement.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

use super::view::{own_tag_key, WORKER};
use super::{Cumulative, Process, Store};
use crate::gather::{Delivery, Tree};
use crate::snapshot::{SeriesKey, Value};
use crate::stats::histogram::percentile_key;
use crate::tags::split_tags;

/// The timestamp unit of the written points (and the `precision` of the `/write` request).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// `ns` (InfluxDB's `n`).
    Nanoseconds,
    /// `us` (InfluxDB's `u`).
    Microseconds,
    /// `ms`, the default: the intervals' ends are whole milliseconds.
    #[default]
    Milliseconds,
    /// `s`.
    Seconds,
}

impl Precision {
    /// `ns`, `us`, `ms` or `s` (also InfluxDB's own `n` and `u`).
    pub fn parse(text: &str) -> Option<Precision> {
        Some(match text {
            "ns" | "n" => Precision::Nanoseconds,
            "us" | "u" => Precision::Microseconds,
            "ms" => Precision::Milliseconds,
            "s" => Precision::Seconds,
            _ => return None,
        })
    }

    /// The value of InfluxDB 1.x's `precision` query parameter.
    pub fn as_query(self) -> &'static str {
        match self {
            Precision::Nanoseconds => "n",
            Precision::Microseconds => "u",
            Precision::Milliseconds => "ms",
            Precision::Seconds => "s",
        }
    }

    /// An epoch time in ms in this unit (None: not a time InfluxDB can store).
    pub fn stamp(self, ms: f64) -> Option<i64> {
        // Whole milliseconds first: the intervals' ends are whole ms, and integer products do
        // not add float noise (1e6 * a float ms can end in ...999).
        if !ms.is_finite() || ms.abs() > 9.0e15 {
            return None;
        }
        let ms = ms.round() as i64;
        match self {
            Precision::Nanoseconds => ms.checked_mul(1_000_000),
            Precision::Microseconds => ms.checked_mul(1_000),
            Precision::Milliseconds => Some(ms),
            Precision::Seconds => Some(ms.div_euclid(1000)),
        }
    }
}

/// Which series to write: called with a series' key and its process (None: the cluster view).
/// The instance's `filter` option becomes one.
pub type Keep = Arc<dyn Fn(&SeriesKey, Option<&Process>) -> bool + Send + Sync>;

/// How a delivery becomes lines.
#[derive(Clone, Default)]
pub struct LineOptions {
    /// Written before every measurement, as given (`app.` gives `app.http.requests`).
    pub prefix: String,
    /// The timestamps' unit.
    pub precision: Precision,
    /// Also write each process's own series (when the store keeps them).
    pub per_process: bool,
    /// Tags added to every point (they may replace `host`; a series' own tag of the same key
    /// wins). Keys other than `''`, `time` and `worker`.
    pub tags: Vec<(String, String)>,
    /// Which series to write (None: all).
    pub keep: Option<Keep>,
}

impl std::fmt::Debug for LineOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LineOptions")
            .field("prefix", &self.prefix)
            .field("precision", &self.precision)
            .field("per_process", &self.per_process)
            .field("tags", &self.tags)
            .field("keep", &self.keep.as_ref().map(|_| "Fn"))
            .finish()
    }
}

/// The longest string field InfluxDB takes, in bytes.
const MAX_TEXT: usize = 65535;

/// A field's value.
enum Field<'a> {
    Float(f64),
    Integer(f64),
    Text(&'a str),
}

/// Appends the delivery's points to `out`, one line each (ending in `\n`), calling `line_end`
/// after each line (the caller may take `out` away there to cut a batch). Returns how many
/// points were written.
pub fn write(
    store: &Store,
    delivery: &Delivery,
    options: &LineOptions,
    out: &mut Vec<u8>,
    mut line_end: impl FnMut(&mut Vec<u8>),
) -> usize {
    let format = delivery.format();
    let Some(stamp) = options.precision.stamp(format.time_stamp) else {
        return 0;
    };
    let per_process = options.per_process && store.keeps_processes();
    let totals = Totals::of(store, per_process);
    let writer = Writer {
        options,
        host: &store.origin().host,
        interval: format.interval,
        percentiles: &format.percentiles,
        stamp,
    };
    // The delivered series: the cluster view, then each process's part.
    let (ids, values) = delivery.merged();
    let mut processes: Vec<(Option<Process>, &[u32], &[Value])> = vec![(None, ids, values)];
    if per_process {
        for part in delivery.parts() {
            let process = Process {
                from: part.from.clone(),
                pid: part.pid,
            };
            processes.push((Some(process), part.ids, part.values()));
        }
    }
    // The keys' lock is held only to copy the keys out (the master's intake adds keys).
    let keys: Vec<Vec<Arc<SeriesKey>>> = delivery.keys().with(|keys| {
        (processes.iter())
            .map(|(_, ids, _)| ids.iter().map(|&id| keys[id as usize].clone()).collect())
            .collect()
    });
    let mut points = 0;
    let mut fields = Vec::with_capacity(16);
    for ((process, _, values), keys) in processes.iter().zip(&keys) {
        let process = process.as_ref();
        for (key, value) in keys.iter().zip(*values) {
            if options
                .keep
                .as_ref()
                .is_some_and(|keep| !keep(key, process))
            {
                continue;
            }
            fields.clear();
            writer.fields(value, totals.get(key, process), &mut fields);
            if writer.line(key, process, &fields, out) {
                points += 1;
                line_end(out);
            }
        }
    }
    points
}

/// The store's states by series and process.
struct Totals<'a> {
    views: Vec<(Option<&'a Tree>, HashMap<&'a SeriesKey, &'a Cumulative>)>,
}

impl<'a> Totals<'a> {
    fn of(store: &'a Store, per_process: bool) -> Totals<'a> {
        let mut views: Vec<(Option<&Tree>, HashMap<_, _>)> = vec![(None, HashMap::new())];
        for series in store.series() {
            let from = series.process.map(|p| &p.from);
            if from.is_some() && !per_process {
                break; // the cluster view comes first
            }
            if views.last().is_none_or(|(f, _)| *f != from) {
                views.push((from, HashMap::new()));
            }
            if let Some((_, view)) = views.last_mut() {
                view.insert(series.key, series.value);
            }
        }
        Totals { views }
    }

    fn get(&self, key: &SeriesKey, process: Option<&Process>) -> Option<&'a Cumulative> {
        let from = process.map(|p| &p.from);
        let (_, view) = self.views.iter().find(|(f, _)| *f == from)?;
        view.get(key).copied()
    }
}

struct Writer<'a> {
    options: &'a LineOptions,
    host: &'a str,
    interval: f64,
    percentiles: &'a [f64],
    stamp: i64,
}

impl<'a> Writer<'a> {
    /// The fields of a series from its interval value and its state since the start.
    fn fields<'v>(
        &self,
        value: &'v Value,
        total: Option<&Cumulative>,
        out: &mut Vec<(Cow<'static, str>, Field<'v>)>,
    ) {
        let mut put = |name: &'static str, field| out.push((Cow::Borrowed(name), field));
        match (value, total) {
            (Value::Counter { total: sum, .. }, Some(Cumulative::Counter { total, calls })) => {
                put("increase", Field::Float(*sum));
                put("rate", Field::Float(sum * 1000.0 / self.interval));
                put("total", Field::Float(*total));
                put("calls", Field::Integer(*calls));
            }
            (Value::Summary(s), Some(Cumulative::Summary { count, sum, .. })) => {
                put("count", Field::Integer(*count));
                put("sum", Field::Float(*sum));
                let stats = [
                    ("min", s.min()),
                    ("max", s.max()),
                    ("mean", s.average()),
                    ("sigma", s.sigma()),
                ];
                for (name, x) in stats {
                    if let Some(x) = x {
                        put(name, Field::Float(x));
                    }
                }
            }
            (Value::Histogram(d), Some(Cumulative::Histogram(all))) => {
                let since_start = all.stats(&[]);
                put("count", Field::Integer(since_start.count as f64));
                if let Some(mean) = since_start.mean {
                    put("sum", Field::Float(mean * since_start.count as f64));
                }
                let stats = d.stats(self.percentiles);
                let named = [
                    ("min", stats.min),
                    ("max", stats.max),
                    ("mean", stats.mean),
                    ("stddev", stats.stddev),
                ];
                for (name, x) in named {
                    if let Some(x) = x {
                        put(name, Field::Float(x));
                    }
                }
                for (p, x) in self.percentiles.iter().zip(stats.percentiles) {
                    if let Some(x) = x {
                        out.push((Cow::Owned(percentile_key(*p)), Field::Float(x)));
                    }
                }
            }
            (Value::Meter(_), Some(Cumulative::Meter { count, last })) => {
                put("count", Field::Float(*count));
                put("m1", Field::Float(last.m1));
                put("m5", Field::Float(last.m5));
                put("m15", Field::Float(last.m15));
                put("mean_rate", Field::Float(last.mean_rate));
            }
            (_, Some(Cumulative::Gauge(g))) => put("value", Field::Float(*g)),
            // A `set` whose value is not a number (the store keeps numbers only), within
            // InfluxDB's limit for a string field (64 KiB).
            (Value::Set { json, .. }, None) if !json.is_empty() && json.len() <= MAX_TEXT => {
                put("json", Field::Text(json))
            }
            _ => {}
        }
    }

    /// Writes one point's line; false (and nothing written) when it would have no field or no
    /// measurement.
    fn line(
        &self,
        key: &SeriesKey,
        process: Option<&Process>,
        fields: &[(Cow<'static, str>, Field)],
        out: &mut Vec<u8>,
    ) -> bool {
        let start = out.len();
        let (bare, own) = split_tags(&key.id);
        if key.path.is_empty() && bare.is_empty() && self.options.prefix.is_empty() {
            return false;
        }
        let mut measurement = self.options.prefix.clone();
        let names = (key.path.iter().map(String::as_str)).chain(std::iter::once(bare));
        for (i, name) in names.enumerate() {
            if i > 0 {
                measurement.push('.');
            }
            measurement.push_str(name);
        }
        // A line that begins with `#` is a comment to InfluxDB.
        if measurement.starts_with('#') {
            out.push(b'_');
        }
        escape(&measurement, MEASUREMENT, out);
        if out.len() == start {
            return false;
        }
        // Later sources win over earlier ones for the same key.
        let mut tags: Vec<(&str, Cow<str>)> = vec![("host", Cow::Borrowed(self.host))];
        let constant = self.options.tags.iter();
        tags.extend(constant.map(|(k, v)| (k.as_str(), Cow::Borrowed(v.as_str()))));
        for (k, v) in own.iter().flatten() {
            if k != "time" {
                tags.push((own_tag_key(k), Cow::Borrowed(v.as_str())));
            }
        }
        if let Some(process) = process {
            tags.push((WORKER, Cow::Owned(process.label())));
        }
        // Stable: equal keys stay in precedence order, and the last of each run wins.
        tags.sort_by(|a, b| a.0.cmp(b.0));
        for (i, (k, v)) in tags.iter().enumerate() {
            let later = tags.get(i + 1).is_some_and(|next| next.0 == *k);
            if later || k.is_empty() || v.is_empty() {
                continue;
            }
            out.push(b',');
            escape(k, TAG, out);
            out.push(b'=');
            escape(v, TAG, out);
        }
        let mut first = true;
        for (name, field) in fields {
            let at = out.len();
            out.push(if first { b' ' } else { b',' });
            escape(name, TAG, out);
            out.push(b'=');
            let written = match field {
                Field::Float(x) => x.is_finite() && write!(out, "{x:?}").is_ok(),
                // Counts are whole numbers below 2^53 (f64 counters).
                Field::Integer(x) => {
                    x.is_finite() && x.fract() == 0.0 && write!(out, "{}i", *x as i64).is_ok()
                }
                Field::Text(text) => {
                    out.push(b'"');
                    for &b in text.as_bytes() {
                        if b == b'"' || b == b'\\' {
                            out.push(b'\\');
                        }
                        out.push(b);
                    }
                    out.push(b'"');
                    true
                }
            };
            if written {
                first = false;
            } else {
                out.truncate(at);
            }
        }
        if first {
            out.truncate(start);
            return false;
        }
        let _ = writeln!(out, " {}", self.stamp);
        true
    }
}

/// What needs a backslash in a measurement, and in tag keys, tag values and field keys. (The
/// line protocol's documentation does not escape `=` in measurements, but InfluxDB 1.x reads
/// `\=` there as `=`: escaping it keeps one rule for a backslash before it.)
const MEASUREMENT: &[u8] = b",= ";
const TAG: &[u8] = b",= ";

/// Appends `text` escaped (see the module documentation).
fn escape(text: &str, special: &[u8], out: &mut Vec<u8>) {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => {
                // InfluxDB 1.x reads a character after a backslash as escaped whatever it is,
                // and has no escape for the backslash itself: a run of backslashes is kept
                // unless it would escape what follows (a special character, a line break, or
                // the separator after the name), where it cannot be kept at all.
                let run = bytes[i..].iter().take_while(|&&b| b == b'\\').count();
                let next = bytes.get(i + run);
                if next.is_some_and(|b| !special.contains(b) && *b != b'\n' && *b != b'\r') {
                    out.extend_from_slice(&bytes[i..i + run]);
                }
                i += run;
                continue;
            }
            b'\n' | b'\r' => out.extend_from_slice(b"\\ "),
            b if special.contains(&b) => {
                out.push(b'\\');
                out.push(b);
            }
            b => out.push(b),
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::view::fixture::{counter, key, Fixture};
    use crate::stats::histogram::{Distribution, HistogramOptions};
    use crate::stats::meter::MeterStats;
    use crate::stats::summary::Summary;

    fn lines(f: &Fixture, delivery: &Delivery, options: &LineOptions) -> Vec<String> {
        let mut out = Vec::new();
        let mut ends = 0;
        let n = write(&f.store, delivery, options, &mut out, |_| ends += 1);
        assert_eq!(n, ends);
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<String> = text.lines().map(String::from).collect();
        assert_eq!(lines.len(), n);
        lines
    }

    #[test]
    fn counters_write_the_interval_and_the_total_since_the_start() {
        let mut f = Fixture::new(false);
        let requests = key("inc", &["http"], "requests");
        f.deliver(&[(requests.clone(), counter(2.0))], &[]);
        let d = f.deliver(
            &[(requests.clone(), counter(3.0))],
            &[(requests.clone(), counter(5.0))],
        );
        let options = LineOptions {
            prefix: "app.".into(),
            ..LineOptions::default()
        };
        assert_eq!(
            lines(&f, &d, &options),
            ["app.http.requests,host=box increase=8.0,rate=8.0,total=10.0,calls=3i 1700000002000"]
        );
    }

    #[test]
    fn every_kind_has_its_fields() {
        let mut f = Fixture::new(false);
        let mut s = Summary::default();
        [1.0, 2.0, 6.0].iter().for_each(|&x| s.push(x));
        let mut h = Distribution::new(&HistogramOptions::default(), 1);
        h.record_all(&[1.0, 2.0, 3.0, 4.0], 0.0);
        let meter = MeterStats {
            count: 12.0,
            mean_rate: 1.5,
            m1: 0.5,
            m5: 0.25,
            m15: 0.125,
        };
        let set = |json: &str| Value::Set {
            json: json.into(),
            at: 0.0,
        };
        let d = f.deliver(
            &[
                (key("sample", &["a"], "s"), Value::Summary(s)),
                (key("histogram", &["a"], "h"), Value::Histogram(Box::new(h))),
                (key("meter", &["a"], "m"), Value::Meter(meter)),
                (key("gauge", &["a"], "g"), Value::Gauge(Some(0.5))),
                (key("gauge", &["a"], "broken"), Value::Gauge(None)),
                (key("set", &["a"], "n"), set("42")),
                (key("set", &["a"], "text"), set(r#"{"up":"y\"es"}"#)),
                (key("set", &["a"], "undefined"), set("")),
                (
                    key("set", &["a"], "huge"),
                    set(&format!("\"{}\"", "x".repeat(MAX_TEXT))),
                ),
                (
                    key("custom", &["a"], "c"),
                    Value::Custom { json: "1".into() },
                ),
            ],
            &[],
        );
        let t = " 1700000001000";
        assert_eq!(
            lines(&f, &d, &LineOptions::default()),
            [
                format!("a.s,host=box count=3i,sum=9.0,min=1.0,max=6.0,mean=3.0,sigma=2.6457513110645907{t}"),
                format!("a.h,host=box count=4i,sum=10.0,min=1.0,max=4.0,mean=2.5,stddev=1.2909944487358056,p50=2.0,p999=4.0{t}"),
                format!("a.m,host=box count=12.0,m1=0.5,m5=0.25,m15=0.125,mean_rate=1.5{t}"),
                format!("a.g,host=box value=0.5{t}"),
                // a.broken: NaN, no field, no point.
                format!("a.n,host=box value=42.0{t}"),
                format!(r#"a.text,host=box json="{{\"up\":\"y\\\"es\"}}"{t}"#),
                // a.undefined and a.huge (beyond 64 KiB): no field, no point.
            ]
        );
    }

    #[test]
    fn hostile_names_are_escaped() {
        let mut f = Fixture::new(false);
        let id = r#"a b,c=d\{k="v 1,x=y",time="t",z="q\"\\"}"#;
        let one = Value::Gauge(Some(1.0));
        let d = f.deliver(
            &[
                (key("gauge", &["p ath,1", "li\nne"], id), one.clone()),
                (key("gauge", &[], ""), one.clone()),
                (key("gauge", &[], "\\"), one.clone()),
                (key("gauge", &["#x"], r"b\\c\"), one.clone()),
            ],
            &[],
        );
        let options = LineOptions {
            tags: vec![
                ("env x".into(), "pro=d".into()),
                ("empty".into(), "".into()),
                ("k".into(), "overridden".into()),
                (r"w\".into(), r"a\b".into()),
            ],
            ..LineOptions::default()
        };
        let t = "value=1.0 1700000001000";
        assert_eq!(
            lines(&f, &d, &options),
            [
                format!(
                    r#"p\ ath\,1.li\ ne.a\ b\,c\=d,env\ x=pro\=d,host=box,k=v\ 1\,x\=y,w=a\b,z=q" {t}"#
                ),
                format!(r"_#x.b\\c,env\ x=pro\=d,host=box,k=overridden,w=a\b {t}"),
            ]
        );
    }

    #[test]
    fn escaping() {
        let escaped = |text: &str, special| {
            let mut out = Vec::new();
            escape(text, special, &mut out);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(escaped("a,b c=d", MEASUREMENT), r"a\,b\ c\=d");
        assert_eq!(escaped("a,b c=d", TAG), r"a\,b\ c\=d");
        assert_eq!(escaped(r"a\b\\c", TAG), r"a\b\\c");
        assert_eq!(escaped(r"a\\,b\ c\=d\\", TAG), r"a\,b\ c\=d");
        assert_eq!(escaped(r"a\=", MEASUREMENT), r"a\=");
        assert_eq!(escaped("a\r\nb\\\n", TAG), r"a\ \ b\ ");
        assert_eq!(escaped("żółw", TAG), "żółw");
    }

    #[test]
    fn per_process_points_are_tagged_and_filtered() {
        let mut f = Fixture::new(true);
        let a = key("inc", &[], "a");
        let b = key("inc", &[], "b");
        f.deliver(&[(a.clone(), counter(1.0))], &[(a.clone(), counter(2.0))]);
        let d = f.deliver(
            &[(a.clone(), counter(1.0)), (b.clone(), counter(7.0))],
            &[(a.clone(), counter(2.0))],
        );
        let keep: Keep = Arc::new(|key, _| key.id == "a");
        let options = LineOptions {
            per_process: true,
            precision: Precision::Seconds,
            keep: Some(keep),
            ..LineOptions::default()
        };
        assert_eq!(
            lines(&f, &d, &options),
            [
                "a,host=box increase=3.0,rate=3.0,total=6.0,calls=4i 1700000002",
                "a,host=box,worker=master increase=1.0,rate=1.0,total=2.0,calls=2i 1700000002",
                "a,host=box,worker=1 increase=2.0,rate=2.0,total=4.0,calls=2i 1700000002",
            ]
        );
        // Without per_process, only the cluster view.
        assert_eq!(lines(&f, &d, &LineOptions::default()).len(), 2);
    }

    #[test]
    fn a_series_tag_named_worker_is_renamed_and_host_can_be_replaced() {
        let mut f = Fixture::new(true);
        let a = key("gauge", &[], r#"a{worker="w9"}"#);
        let one = Value::Gauge(Some(1.0));
        let d = f.deliver(&[(a.clone(), one.clone())], &[(a, one)]);
        let options = LineOptions {
            per_process: true,
            tags: vec![("host".into(), "web-1".into())],
            ..LineOptions::default()
        };
        assert_eq!(
            lines(&f, &d, &options),
            [
                "a,exported_worker=w9,host=web-1 value=2.0 1700000001000",
                "a,exported_worker=w9,host=web-1,worker=master value=1.0 1700000001000",
                "a,exported_worker=w9,host=web-1,worker=1 value=1.0 1700000001000",
            ]
        );
    }

    #[test]
    fn precisions() {
        let t = 1_700_000_000_123.0;
        assert_eq!(
            Precision::Nanoseconds.stamp(t),
            Some(1_700_000_000_123_000_000)
        );
        assert_eq!(
            Precision::Microseconds.stamp(t),
            Some(1_700_000_000_123_000)
        );
        assert_eq!(Precision::Milliseconds.stamp(t), Some(1_700_000_000_123));
        assert_eq!(Precision::Seconds.stamp(t), Some(1_700_000_000));
        assert_eq!(Precision::Seconds.stamp(-1.0), Some(-1));
        assert_eq!(Precision::Milliseconds.stamp(f64::NAN), None);
        assert_eq!(Precision::Nanoseconds.stamp(9.0e15), None);
        for (text, p) in [
            ("ns", "n"),
            ("n", "n"),
            ("us", "u"),
            ("ms", "ms"),
            ("s", "s"),
        ] {
            assert_eq!(Precision::parse(text).unwrap().as_query(), p);
        }
        assert_eq!(Precision::parse("m"), None);
    }
}
