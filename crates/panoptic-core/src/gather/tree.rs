//! Snapshots as delivery trees: nested JSON objects down to panopticon 0.3.0's leaves
//! (`{ "type": ..., "value": {...} }`), written as JSON text that the JS side parses.
//! This is the one place that knows the leaf shapes. The text is what `JSON.stringify` writes
//! for the object JS parses from it ([`crate::json`]: numbers, key order), so `/metrics.json`
//! can serve it as it is.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;

use crate::json;
use crate::snapshot::{SeriesKey, Value};
use crate::stats::histogram::percentile_key;
use crate::stats::summary::Summary;

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
/// deliveries never have such series ([`crate::gather::registry`]), a process's own 'sample' tree may.
pub fn render<'a>(
    entries: impl IntoIterator<Item = (&'a SeriesKey, &'a Value)>,
    custom: bool,
    format: &Format,
    out: &mut Vec<u8>,
) {
    render_kept(entries, custom, format, None, out);
}

/// [`render`], then without the leaves whose series `keep` refuses (and the objects they leave
/// empty): the tree as it is, narrowed (places are taken as in the whole tree).
pub fn render_kept<'a>(
    entries: impl IntoIterator<Item = (&'a SeriesKey, &'a Value)>,
    custom: bool,
    format: &Format,
    keep: Option<&dyn Fn(&SeriesKey) -> bool>,
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
    write_branch(&root, format, keep, out);
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

type Keep<'k> = Option<&'k dyn Fn(&SeriesKey) -> bool>;

/// Whether `node` has a leaf `keep` keeps (every node has one without `keep`).
fn kept(node: &Node<'_>, keep: Keep) -> bool {
    match (node, keep) {
        (_, None) => true,
        (Node::Leaf(key, _), Some(keep)) => keep(key),
        (Node::Branch(children), _) => children.values().any(|child| kept(child, keep)),
    }
}

fn write_branch(
    children: &BTreeMap<&str, Node<'_>>,
    format: &Format,
    keep: Keep,
    out: &mut Vec<u8>,
) {
    // Keys in the order JS enumerates the parsed object's: array indexes ("200", a status code
    // as a path element) first, numerically, then the others (the map's order). Rare: the
    // indexes are looked for first, and only they are sorted.
    let mut indexes: Vec<(&&str, &Node)> = Vec::new();
    if children.keys().any(|k| json::is_array_index(k)) {
        indexes = (children.iter())
            .filter(|(k, _)| json::is_array_index(k))
            .collect();
        indexes.sort_by(|a, b| json::key_order(a.0, b.0));
    }
    let others = (children.iter()).filter(|(k, _)| indexes.is_empty() || !json::is_array_index(k));
    out.push(b'{');
    let mut first = true;
    for (key, node) in indexes.iter().copied().chain(others) {
        if !kept(node, keep) {
            continue;
        }
        if !std::mem::take(&mut first) {
            out.push(b',');
        }
        json::string(key, out);
        out.push(b':');
        match node {
            Node::Branch(grandchildren) => write_branch(grandchildren, format, keep, out),
            Node::Leaf(key, value) => write_leaf(&key.method, value, format, out),
        }
    }
    out.push(b'}');
}

fn string(s: &str, out: &mut Vec<u8>) {
    json::string(s, out);
}

/// A number as JavaScript writes it, or null when it is missing or not finite (as
/// JSON.stringify does).
fn number(v: Option<f64>, out: &mut Vec<u8>) {
    json::number(v.unwrap_or(f64::NAN), out);
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
                let mut d = crate::stats::histogram::Distribution::new(&Default::default(), 1);
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
                "http": { "requests": { "type": "inc", "value": { "val": 20, "timeStamp": 1000 } } },
                "a": { "b": { "one": { "type": "sample", "value": { "max": 1, "min": 1, "sigma": null, "average": 1, "timeStamp": 1000 } } } },
                "t": { "type": "timedSample", "value": { "min": null, "max": null, "sigma": null, "average": null, "count": 0, "total": 0, "scaleFactor": 1000, "timeStamp": 1000 } },
                "v": { "type": "set", "value": { "val": [1, "x"], "timeStamp": 1000 } },
                "undef": { "type": "set", "value": { "timeStamp": 1000 } },
                "c": { "type": "max", "value": 2 },
                "g": {
                    "h": { "type": "histogram", "value": { "count": 3, "min": 1, "max": 3, "mean": 2, "stddev": 1, "p50": 2, "p999": 3, "clamped": 0, "timeStamp": 1000 } },
                    "some": { "type": "gauge", "value": { "val": 1.5, "timeStamp": 1000 } },
                    "none": { "type": "gauge", "value": { "val": null, "timeStamp": 1000 } },
                },
            })
        );
        let without_custom = json(&entries, false);
        assert!(without_custom.get("c").is_none());
    }

    #[test]
    fn the_text_is_what_json_stringify_writes() {
        let c = |n: f64| Value::Counter {
            count: 1.0,
            total: n,
        };
        let entries = [
            entry("inc", &["http", "b"], "z", c(1.0)),
            entry("inc", &["http", "200"], "x", c(2.0)),
            entry("inc", &["http", "10"], "y", c(1e-7)),
        ];
        let format = Format {
            interval: 200.0,
            scale_factor: 1000.0,
            time_stamp: 1700000010000.0,
            percentiles: Arc::from([50.0]),
        };
        let text = |keep: Option<&dyn Fn(&SeriesKey) -> bool>| {
            let mut out = Vec::new();
            let pairs = entries.iter().map(|e| (&*e.key, &e.value));
            render_kept(pairs, true, &format, keep, &mut out);
            String::from_utf8(out).unwrap()
        };
        // Node: JSON.stringify(JSON.parse(text)) === text (array indexes first, numerically;
        // integers without ".0"; 5e-7 as JS writes it).
        assert_eq!(
            text(None),
            r#"{"http":{"10":{"y":{"type":"inc","value":{"val":5e-7,"timeStamp":1700000010000}}},"200":{"x":{"type":"inc","value":{"val":10,"timeStamp":1700000010000}}},"b":{"z":{"type":"inc","value":{"val":5,"timeStamp":1700000010000}}}}}"#
        );
        // Narrowed: the refused leaves and the objects they leave empty are gone.
        assert_eq!(
            text(Some(&|k: &SeriesKey| k.id == "x")),
            r#"{"http":{"200":{"x":{"type":"inc","value":{"val":10,"timeStamp":1700000010000}}}}}"#
        );
        assert_eq!(text(Some(&|_: &SeriesKey| false)), "{}");
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
