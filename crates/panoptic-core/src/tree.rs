//! Snapshots as delivery trees: nested JSON objects down to panopticon 0.3.0's leaves
//! (`{ "type": ..., "value": {...} }`), written as JSON text that the JS side parses.
//! This is the one place that knows the leaf shapes.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;

use crate::histogram::percentile_key;
use crate::snapshot::{SeriesKey, Value};
use crate::summary::Summary;

/// What the leaves need besides the aggregates.
#[derive(Debug, Clone)]
pub struct Format {
    /// Interval length in ms.
    pub interval: f64,
    /// panopticon's scaleFactor: rates are `total * scale_factor / interval`.
    pub scale_factor: f64,
    /// The end of the interval, every leaf's `timeStamp`.
    pub time_stamp: f64,
    /// The percentiles a histogram leaf reports (0 to 100), in order.
    pub percentiles: Arc<[f64]>,
}

enum Node<'a> {
    Branch(BTreeMap<&'a str, Node<'a>>),
    Leaf(&'a SeriesKey, &'a Value),
}

/// Writes `entries` as one JSON tree into `out`. Custom leaves are left out when `custom` is
/// false (the cluster view merges them on the JS side). When two series want one place (a leaf
/// where a branch is, or the other way round), the first in `entries` keeps it; a master's
/// deliveries never have such series ([`crate::registry`]), a process's own 'sample' tree may.
pub fn render<'a>(
    entries: impl IntoIterator<Item = (&'a SeriesKey, &'a Value)>,
    custom: bool,
    format: &Format,
    out: &mut Vec<u8>,
) {
    let mut root = BTreeMap::new();
    for (key, value) in entries {
        match value {
            Value::Custom { .. } if !custom => continue,
            // toJSON() gave undefined: no leaf, as JSON.stringify would do.
            Value::Custom { json } if json.is_empty() => continue,
            _ => place(&mut root, key, value),
        }
    }
    write_branch(&root, format, out);
}

/// Places a series in the tree, unless its place is taken.
fn place<'a>(root: &mut BTreeMap<&'a str, Node<'a>>, key: &'a SeriesKey, value: &'a Value) {
    let mut node = root;
    for element in key.path.iter() {
        match node
            .entry(element.as_str())
            .or_insert_with(|| Node::Branch(BTreeMap::new()))
        {
            Node::Branch(children) => node = children,
            Node::Leaf(..) => return,
        }
    }
    node.entry(key.id.as_str())
        .or_insert(Node::Leaf(key, value));
}

fn write_branch(children: &BTreeMap<&str, Node<'_>>, format: &Format, out: &mut Vec<u8>) {
    out.push(b'{');
    for (i, (key, node)) in children.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        string(key, out);
        out.push(b':');
        match node {
            Node::Branch(grandchildren) => write_branch(grandchildren, format, out),
            Node::Leaf(key, value) => write_leaf(&key.method, value, format, out),
        }
    }
    out.push(b'}');
}

fn string(s: &str, out: &mut Vec<u8>) {
    serde_json::to_writer(&mut *out, s).expect("writing to a Vec cannot fail");
}

/// A number, or null when it is missing or not finite (as JSON.stringify does).
fn number(v: Option<f64>, out: &mut Vec<u8>) {
    match v {
        Some(v) if v.is_finite() => {
            serde_json::to_writer(&mut *out, &v).expect("writing to a Vec cannot fail")
        }
        _ => out.extend_from_slice(b"null"),
    }
}

fn fields(out: &mut Vec<u8>, list: &[(&str, Option<f64>)]) {
    for (name, v) in list {
        write!(out, "\"{name}\":").expect("writing to a Vec cannot fail");
        number(*v, out);
        out.push(b',');
    }
}

fn write_leaf(method: &str, value: &Value, format: &Format, out: &mut Vec<u8>) {
    if let Value::Custom { json } = value {
        out.extend_from_slice(json.as_bytes());
        return;
    }
    out.extend_from_slice(b"{\"type\":");
    string(method, out);
    out.extend_from_slice(b",\"value\":");
    write_value(method, value, format, out);
    out.push(b'}');
}

/// Writes the `value` object of a built-in series' leaf (`{ "val": ..., "timeStamp": ... }`,
/// what a delivery tree has at `leaf.value`), for writers that place series elsewhere than in a
/// tree (the live page's frames). A registered logger's value has no such object: `null`.
pub fn write_value(method: &str, value: &Value, format: &Format, out: &mut Vec<u8>) {
    if let Value::Custom { .. } = value {
        out.extend_from_slice(b"null");
        return;
    }
    out.push(b'{');
    match value {
        Value::Custom { .. } => unreachable!("written above"),
        Value::Counter { total, .. } => fields(
            out,
            &[("val", Some(total * format.scale_factor / format.interval))],
        ),
        Value::Summary(s) => summary_fields(s, method == "timedSample", format, out),
        Value::Gauge(v) => fields(out, &[("val", *v)]),
        Value::Meter(m) => fields(
            out,
            &[
                ("count", Some(m.count)),
                ("meanRate", Some(m.mean_rate)),
                ("m1", Some(m.m1)),
                ("m5", Some(m.m5)),
                ("m15", Some(m.m15)),
            ],
        ),
        Value::Rate(stats) => fields(
            out,
            &[
                ("val", stats.map(|s| s.rate)),
                ("increase", stats.map(|s| s.increase)),
            ],
        ),
        Value::Histogram(d) => {
            let stats = d.stats(&format.percentiles);
            let count = stats.count as f64;
            let clamped = d.clamped() as f64;
            let head = [
                ("count", Some(count)),
                ("min", stats.min),
                ("max", stats.max),
                ("mean", stats.mean),
                ("stddev", stats.stddev),
            ];
            fields(out, &head);
            for (p, v) in format.percentiles.iter().zip(&stats.percentiles) {
                fields(out, &[(&percentile_key(*p), *v)]);
            }
            fields(out, &[("clamped", Some(clamped))]);
        }
        Value::Set { json, .. } => {
            if !json.is_empty() {
                out.extend_from_slice(b"\"val\":");
                out.extend_from_slice(json.as_bytes());
                out.push(b',');
            }
        }
    }
    out.extend_from_slice(b"\"timeStamp\":");
    number(Some(format.time_stamp), out);
    out.push(b'}');
}

fn summary_fields(s: &Summary, timed: bool, format: &Format, out: &mut Vec<u8>) {
    if timed {
        fields(
            out,
            &[
                ("min", s.min()),
                ("max", s.max()),
                ("sigma", s.sigma()),
                ("average", s.average()),
                ("count", Some(s.count)),
                ("total", Some(s.total)),
                ("scaleFactor", Some(format.scale_factor)),
            ],
        );
    } else {
        fields(
            out,
            &[
                ("max", s.max()),
                ("min", s.min()),
                ("sigma", s.sigma()),
                ("average", s.average()),
            ],
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::Entry;
    use std::sync::Arc;

    fn entry(method: &str, path: &[&str], id: &str, value: Value) -> Entry {
        Entry {
            key: Arc::new(SeriesKey::new(method, path, id)),
            value,
        }
    }

    fn json(entries: &[Entry], custom: bool) -> serde_json::Value {
        let mut out = Vec::new();
        let format = Format {
            interval: 200.0,
            scale_factor: 1000.0,
            time_stamp: 1000.0,
            percentiles: Arc::from([50.0, 99.9]),
        };
        let pairs = entries.iter().map(|e| (&*e.key, &e.value));
        render(pairs, custom, &format, &mut out);
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn leaf_shapes() {
        let mut s = Summary::default();
        s.push(1.0);
        let entries = vec![
            entry(
                "inc",
                &["http"],
                "requests",
                Value::Counter {
                    count: 3.0,
                    total: 4.0,
                },
            ),
            entry("sample", &["a", "b"], "one", Value::Summary(s)),
            entry("timedSample", &[], "t", Value::Summary(Summary::default())),
            entry(
                "set",
                &[],
                "v",
                Value::Set {
                    json: "[1,\"x\"]".into(),
                    at: 5.0,
                },
            ),
            entry(
                "set",
                &[],
                "undef",
                Value::Set {
                    json: String::new(),
                    at: 5.0,
                },
            ),
            entry(
                "max",
                &[],
                "c",
                Value::Custom {
                    json: "{\"type\":\"max\",\"value\":2}".into(),
                },
            ),
            entry("histogram", &["g"], "h", {
                let mut d = crate::histogram::Distribution::new(&Default::default(), 1);
                [1.0, 2.0, 3.0].iter().for_each(|&v| d.record(v, 0.0));
                Value::Histogram(Box::new(d))
            }),
            entry("gauge", &["g"], "some", Value::Gauge(Some(1.5))),
            entry("gauge", &["g"], "none", Value::Gauge(None)),
            entry(
                "max",
                &[],
                "gone",
                Value::Custom {
                    json: String::new(),
                },
            ),
        ];
        let tree = json(&entries, true);
        assert_eq!(
            tree,
            serde_json::json!({
                "http": { "requests": { "type": "inc", "value": { "val": 20.0, "timeStamp": 1000.0 } } },
                "a": { "b": { "one": { "type": "sample", "value": { "max": 1.0, "min": 1.0, "sigma": null, "average": 1.0, "timeStamp": 1000.0 } } } },
                "t": { "type": "timedSample", "value": { "min": null, "max": null, "sigma": null, "average": null, "count": 0.0, "total": 0.0, "scaleFactor": 1000.0, "timeStamp": 1000.0 } },
                "v": { "type": "set", "value": { "val": [1, "x"], "timeStamp": 1000.0 } },
                "undef": { "type": "set", "value": { "timeStamp": 1000.0 } },
                "c": { "type": "max", "value": 2 },
                "g": {
                    "h": { "type": "histogram", "value": { "count": 3.0, "min": 1.0, "max": 3.0, "mean": 2.0, "stddev": 1.0, "p50": 2.0, "p999": 3.0, "clamped": 0.0, "timeStamp": 1000.0 } },
                    "some": { "type": "gauge", "value": { "val": 1.5, "timeStamp": 1000.0 } },
                    "none": { "type": "gauge", "value": { "val": null, "timeStamp": 1000.0 } },
                },
            })
        );
        let without_custom = json(&entries, false);
        assert!(without_custom.get("c").is_none());
    }

    #[test]
    fn first_series_keeps_its_place() {
        let c = |n: f64| Value::Counter {
            count: 1.0,
            total: n,
        };
        let entries = vec![
            entry("inc", &["a"], "b", c(1.0)),
            entry("inc", &["a", "b"], "c", c(2.0)), // b is a leaf
            entry("sample", &["a"], "b", Value::Summary(Summary::default())), // taken
            entry("inc", &["x", "y"], "z", c(3.0)),
            entry("inc", &["x"], "y", c(4.0)), // y is a branch
        ];
        let tree = json(&entries, true);
        assert_eq!(tree["a"]["b"]["type"], "inc");
        assert_eq!(tree["x"]["y"]["z"]["value"]["val"], 15.0);
    }

    #[test]
    fn odd_keys_are_escaped() {
        let entries = vec![entry(
            "inc",
            &["\"quoted\"\n", "__proto__"],
            "é",
            Value::Counter {
                count: 1.0,
                total: 1.0,
            },
        )];
        let tree = json(&entries, true);
        assert_eq!(tree["\"quoted\"\n"]["__proto__"]["é"]["type"], "inc");
    }
}
