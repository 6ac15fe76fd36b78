//! Writing the groups: HELP, TYPE and UNIT lines, then each family's samples.

use std::io::Write as _;

use super::super::Cumulative;
use super::format::TextFormat;
use super::names::{base_name, escape, push_labels, Group, Kind, Labels};
use super::numbers::push_value;
use crate::snapshot::SeriesKey;
use crate::stats::histogram::js;

/// Writes families and samples in one format.
pub(super) struct Writer<'o> {
    pub(super) out: &'o mut Vec<u8>,
    pub(super) format: TextFormat,
    /// Bucket bounds and their `le` values (`+Inf` last): of histograms without a layout of
    /// their own, then of those with one, by name (`PrometheusOptions::named_buckets`).
    pub(super) les: Vec<(f64, String)>,
    pub(super) named_les: Vec<(String, Vec<(f64, String)>)>,
    pub(super) quantiles: Vec<(f64, String)>,
    pub(super) times: TimeUnit,
}

/// The unit of times (`timedSample` values, `histogram` values given as `process.hrtime()`
/// differences) at a scale factor: a time is `ms / scaleFactor`.
pub(super) struct TimeUnit {
    /// OpenMetrics' name of the unit where it is one: `milliseconds` at 1, `seconds` at 1000.
    pub(super) name: Option<&'static str>,
    /// What HELP texts say: the name, else `milliseconds / scaleFactor <n>`.
    pub(super) words: String,
}

impl TimeUnit {
    pub(super) fn of(scale_factor: f64) -> TimeUnit {
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
    pub(super) fn for_family(&self, name: &str) -> Option<&'static str> {
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
    pub(super) fn family(
        &mut self,
        name: &str,
        suffix: &str,
        kind: &str,
        unit: Option<&str>,
        help: &[&str],
    ) {
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

    pub(super) fn sample(
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
    pub(super) fn gauges(
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

    pub(super) fn group(&mut self, g: &Group, arena: &str) {
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

    pub(super) fn summary(&mut self, g: &Group, arena: &str, source: &str) {
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

    pub(super) fn histogram(&mut self, g: &Group, arena: &str, source: &str) {
        // The group's own layout when it has one (taken for the writing, put back after). Its
        // name without the prefix ends the group's name (but for the `_` a leading digit gets):
        // only a layout whose name passes that test costs the group's base name.
        let mut base: Option<String> = None;
        let own = self.named_les.iter().position(|(name, _)| {
            g.name.ends_with(name.strip_prefix('_').unwrap_or(name))
                && *base.get_or_insert_with(|| base_name(&g.key.path, g.bare)) == *name
        });
        let les = match own {
            Some(i) => std::mem::take(&mut self.named_les[i].1),
            None => std::mem::take(&mut self.les),
        };
        self.histogram_with(g, arena, source, &les);
        match own {
            Some(i) => self.named_les[i].1 = les,
            None => self.les = les,
        }
    }

    fn histogram_with(&mut self, g: &Group, arena: &str, source: &str, les: &[(f64, String)]) {
        let bounds: Vec<f64> = les[..les.len() - 1].iter().map(|l| l.0).collect();
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
            for (i, (_, le)) in les.iter().enumerate() {
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
pub(super) fn sample(
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

/// What a HELP line says made a family: `panoptic inc(['http'], 'requests')`.
pub(super) fn source(key: &SeriesKey, bare: &str) -> String {
    let path: Vec<String> = key.path.iter().map(|p| format!("'{p}'")).collect();
    format!("panoptic {}([{}], '{bare}')", key.method, path.join(", "))
}
