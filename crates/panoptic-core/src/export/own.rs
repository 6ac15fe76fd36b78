//! panoptic's own metrics (docs/self-monitoring.md lists them): what the engines, the intake, the
//! exports, the pushers and the HTTP servers hold and did, as metric families named
//! `panoptic_...`, for the exposition (`serve({ selfMetrics })`) and `exportStats()`.
//!
//! They are read when asked for (a scrape, an `exportStats()` call), never on a hot path. Some
//! come from the store ([`Own::of_store`]: each process's engine as of the last delivery, the
//! registry, the deliveries' counts added up); the rest from sources the binding registers on the
//! exporter ([`super::Exporter::add_source`]): the intake's backlog, each pusher's and each
//! server's counters. A source's counters are read generically ([`Own::stats`]): every numeric
//! field of its stats struct becomes a family, so a field added there is exported with no change
//! here.

use serde::Serialize;
use serde_json::Value as Json;

use super::store::Store;
use crate::gather::Tree;

/// Whether a family is a counter (only goes up, `_total`) or a gauge (a state now).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnKind {
    Counter,
    Gauge,
}

impl OwnKind {
    /// As the exposition's `# TYPE` line says it.
    pub fn as_str(self) -> &'static str {
        match self {
            OwnKind::Counter => "counter",
            OwnKind::Gauge => "gauge",
        }
    }
}

/// One sample: its labels (in the order given) and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct OwnSample {
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

/// One family: `panoptic_<name>` (a counter's samples add `_total`).
#[derive(Debug, Clone, PartialEq)]
pub struct OwnFamily {
    /// The full family name, `panoptic_...` (no `_total`).
    pub name: String,
    pub kind: OwnKind,
    /// `bytes` where the name ends with `_bytes` (OpenMetrics' UNIT), else None.
    pub unit: Option<&'static str>,
    pub help: String,
    pub samples: Vec<OwnSample>,
}

/// A source of own metrics, called on the thread that reads them (a scrape's, or JS for
/// `exportStats()`): it must not wait for the JS thread.
pub type OwnSource = Box<dyn Fn(&mut Own) + Send + Sync>;

/// A set of own families (see the module documentation).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Own {
    families: Vec<OwnFamily>,
}

/// The label telling processes apart (the exposition's per-process label).
const WORKER: &str = super::view::WORKER;

impl Own {
    /// Adds a sample to family `panoptic_<name>` (made with `kind` and `help` on first use).
    pub fn add(
        &mut self,
        name: &str,
        kind: OwnKind,
        help: &str,
        labels: &[(&str, &str)],
        value: f64,
    ) {
        let name = format!("panoptic_{name}");
        let at = match self.families.iter().position(|f| f.name == name) {
            Some(at) => at,
            None => {
                let unit = name.ends_with("_bytes").then_some("bytes");
                self.families.push(OwnFamily {
                    name,
                    kind,
                    unit,
                    help: help.to_string(),
                    samples: Vec::new(),
                });
                self.families.len() - 1
            }
        };
        let labels = labels.iter();
        let labels = labels
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.families[at].samples.push(OwnSample { labels, value });
    }

    /// Adds every numeric field of `stats` (nested structs too) as family
    /// `panoptic_<group>_<field path joined by _>`: a gauge where the field is named in `gauges`
    /// (states now: open connections, queued bytes), else a counter (the stats structs count
    /// since the start). Other fields (texts, None) are not numbers and are left out. `what`
    /// starts each HELP text.
    pub fn stats<T: Serialize>(
        &mut self,
        group: &str,
        what: &str,
        stats: &T,
        gauges: &[&str],
        labels: &[(&str, &str)],
    ) {
        let Ok(json) = serde_json::to_value(stats) else {
            return;
        };
        let mut fields = Vec::new();
        leaves(&json, String::new(), &mut fields);
        for (path, value) in fields {
            let gauge = gauges.contains(&path.as_str());
            let words = path.replace('_', " ");
            let (kind, help) = if gauge {
                (OwnKind::Gauge, format!("{what}: {words}, now"))
            } else {
                (
                    OwnKind::Counter,
                    format!("{what}: {words}, since the start"),
                )
            };
            self.add(&format!("{group}_{path}"), kind, &help, labels, value);
        }
    }

    /// The families the store knows: each process's engine (as of the last delivery: the
    /// processes that took part in it), the registry, and the deliveries' counts since the start.
    pub fn of_store(store: &Store) -> Own {
        let mut own = Own::default();
        if let Some(delivery) = store.last() {
            for part in delivery.parts() {
                let worker = match &part.from {
                    Tree::Master | Tree::Cluster => "master".to_string(),
                    Tree::Worker(id) => id.to_string(),
                    Tree::Thread(label) => label.clone(),
                };
                let labels = [(WORKER, worker.as_str())];
                let f = part.footprint;
                own.add(
                    "engine_series",
                    OwnKind::Gauge,
                    "series each process's engine holds (as of the last delivery)",
                    &labels,
                    f.series,
                );
                own.add(
                    "engine_bytes",
                    OwnKind::Gauge,
                    "bytes each process's engine holds for its series, estimated (as of the last delivery; see docs/self-monitoring.md)",
                    &labels,
                    f.bytes,
                );
            }
            let registry = delivery.keys().with(|keys| keys.len());
            own.add(
                "registry_series",
                OwnKind::Gauge,
                "series the master's registry names (every series any process sent)",
                &[],
                registry as f64,
            );
        }
        let t = store.totals();
        let counters: [(&str, &str, f64); 10] = [
            ("deliveries", "deliveries made", t.deliveries as f64),
            (
                "skipped_intervals",
                "intervals that got no delivery (the master's event loop was blocked past them)",
                t.skipped_intervals as f64,
            ),
            (
                "late_snapshots",
                "snapshots merged after their interval was delivered (meta.late)",
                t.late as f64,
            ),
            (
                "decode_errors",
                "messages that could not be decoded (meta.decodeErrors)",
                t.decode_errors as f64,
            ),
            (
                "mismatched_snapshots",
                "snapshots left out for another grid or options (meta.mismatched)",
                t.mismatched as f64,
            ),
            (
                "unmatched_messages",
                "messages for an instance the master does not have (meta.unmatched)",
                t.unmatched as f64,
            ),
            (
                "dropped_values",
                "data points validators dropped (meta.dropped)",
                t.counts.dropped,
            ),
            (
                "invalid_values",
                "values replaced by a default (meta.invalid)",
                t.counts.invalid,
            ),
            (
                "overflowed_values",
                "values recorded into an overflow series (meta.overflowed)",
                t.counts.overflowed,
            ),
            (
                "errors",
                "exceptions in loggers, validators, serialization (meta.errors)",
                t.counts.errors,
            ),
        ];
        for (name, help, value) in counters {
            own.add(name, OwnKind::Counter, help, &[], value);
        }
        own
    }

    /// The families, in name order (each family's samples in the order added).
    pub fn families(&self) -> Vec<&OwnFamily> {
        let mut families: Vec<&OwnFamily> = self.families.iter().collect();
        families.sort_by(|a, b| a.name.cmp(&b.name));
        families
    }

    /// Every family name and sample name the families write, with the user's `prefix` before
    /// them: no series may take one.
    pub fn claims(&self, prefix: &str) -> Vec<String> {
        let mut names = Vec::new();
        for f in &self.families {
            names.push(format!("{prefix}{}", f.name));
            if f.kind == OwnKind::Counter {
                names.push(format!("{prefix}{}_total", f.name));
                names.push(format!("{prefix}{}_created", f.name));
            }
        }
        names
    }

    /// As JSON: `{ name: { type, unit, help, samples: [{ labels: {...}, value }] } }` (the
    /// families in name order; a number that is not finite as null).
    pub fn to_json(&self) -> Json {
        let mut out = serde_json::Map::new();
        for f in self.families() {
            let samples: Vec<Json> = (f.samples.iter())
                .map(|s| {
                    let labels: serde_json::Map<String, Json> = (s.labels.iter())
                        .map(|(k, v)| (k.clone(), v.clone().into()))
                        .collect();
                    serde_json::json!({ "labels": labels, "value": s.value })
                })
                .collect();
            let family = serde_json::json!({
                "type": f.kind.as_str(),
                "unit": f.unit,
                "help": f.help,
                "samples": samples,
            });
            out.insert(f.name.clone(), family);
        }
        Json::Object(out)
    }
}

/// The numeric leaves of `json`, by field path (`rejected_connections`).
fn leaves(json: &Json, path: String, out: &mut Vec<(String, f64)>) {
    match json {
        Json::Number(n) => out.extend(n.as_f64().map(|v| (path, v))),
        Json::Object(fields) => {
            for (key, value) in fields {
                let path = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}_{key}")
                };
                leaves(value, path, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Inner {
        connections: u64,
    }

    #[derive(Serialize)]
    struct Stats {
        requests: u64,
        open_connections: usize,
        last_error: Option<String>,
        rejected: Inner,
    }

    #[test]
    fn stats_are_read_field_by_field() {
        let mut own = Own::default();
        let stats = Stats {
            requests: 5,
            open_connections: 2,
            last_error: Some("x".into()),
            rejected: Inner { connections: 1 },
        };
        own.stats(
            "http",
            "the server",
            &stats,
            &["open_connections"],
            &[("server", "a")],
        );
        own.stats(
            "http",
            "the server",
            &stats,
            &["open_connections"],
            &[("server", "b")],
        );
        let families = own.families();
        let names: Vec<_> = families.iter().map(|f| (f.name.as_str(), f.kind)).collect();
        assert_eq!(
            names,
            [
                ("panoptic_http_open_connections", OwnKind::Gauge),
                ("panoptic_http_rejected_connections", OwnKind::Counter),
                ("panoptic_http_requests", OwnKind::Counter),
            ]
        );
        let requests = families[2];
        assert_eq!(requests.samples.len(), 2);
        assert_eq!(requests.samples[1].labels, [("server".into(), "b".into())]);
        assert_eq!(requests.samples[0].value, 5.0);
        assert_eq!(requests.help, "the server: requests, since the start");
        assert!(own
            .claims("x_")
            .contains(&"x_panoptic_http_requests_total".to_string()));
        let json = own.to_json();
        assert_eq!(json["panoptic_http_open_connections"]["type"], "gauge");
        assert_eq!(
            json["panoptic_http_requests"]["samples"][1]["labels"]["server"],
            "b"
        );
    }

    #[test]
    fn bytes_have_a_unit() {
        let mut own = Own::default();
        own.add("queue_bytes", OwnKind::Gauge, "h", &[], 1.0);
        own.add("queue", OwnKind::Gauge, "h", &[], 1.0);
        let units: Vec<_> = own.families().iter().map(|f| f.unit).collect();
        assert_eq!(units, [None, Some("bytes")]);
    }
}
