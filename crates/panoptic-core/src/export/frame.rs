//! The live page's frames: one delivery as one line of JSON, sent to browsers as a Server-Sent
//! Event (`GET /events`) and kept in the history ring (`GET /api/history`).
//!
//! ```text
//! { "timeStamp": 1700000010000,       // end of the interval, epoch ms
//!   "interval": 1000, "scaleFactor": 1000, "name": "web",
//!   "processes": [{ "key": "master", "role": "master", "worker": null, "pid": 4242 },
//!                 { "key": "1", "role": "worker", "worker": 1, "pid": 4250 },
//!                 { "key": "1:2", "role": "thread", "worker": 1, "pid": 4250 }],
//!   "meta": { "late": 0, "decodeErrors": 0, "mismatched": 0, "unmatched": 0, "refused": 0,
//!             "dropped": 0, "invalid": 0, "overflowed": 0, "errors": 0, "workers": 1 },
//!   "series": [{ "key": "inc http.requests{method=\"GET\"}", "type": "inc",
//!                "name": "http.requests", "tags": { "method": "GET" },
//!                "values": { "cluster": { "val": 3, "timeStamp": ... },
//!                            "master": {...}, "1": {...}, "1:2": {...} } }] }
//! ```
//!
//! - `processes`: the master first (always, with the serving process's pid when it had no part
//!   in the interval), then every worker and thread that has a part in this delivery.
//! - `meta.workers` is the number of workers whose interval arrived in time for this delivery.
//! - A series' `values` are keyed `cluster` (the merged view), then by process key; each is the
//!   object a delivery tree has at `leaf.value` ([`crate::gather::tree::write_value`]). A series is listed
//!   when any of those has it. Registered (custom) loggers are left out: their values are the
//!   JS side's.
//! - `key` ([`series_key`]) is unique per series; `name` (path and id joined with `.`) is for
//!   people and may be shared by series of different methods or tags.
//!
//! A frame never holds a line break, even if a peer sent one inside a `set` value: a frame is one
//! SSE `data:` line.

use std::collections::BTreeMap;

use crate::gather::tree::write_value;
use crate::gather::{Delivery, Tree};
use crate::snapshot::{SeriesKey, Value};
use crate::tags::split_tags;

use super::{Process, Store};

/// The text that names a series in frames and in `GET /api/select`: the method, a space, then
/// the path elements and the id (with its tags) joined with `.`, where each element's `\` and
/// `.` are escaped with a `\` (so that `["a.b"], "c"` and `["a"], "b.c"` stay two keys):
/// `inc http.requests`, `timedSample latency`, `inc http.get{route="/a\.b"}`.
pub fn series_key(key: &SeriesKey) -> String {
    let mut out = String::with_capacity(key.method.len() + key.id.len() + 16);
    out.push_str(&key.method);
    out.push(' ');
    for (i, element) in key
        .path
        .iter()
        .map(String::as_str)
        .chain([key.id.as_str()])
        .enumerate()
    {
        if i > 0 {
            out.push('.');
        }
        for c in element.chars() {
            if c == '.' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
    }
    out
}

/// Appends the frame of `delivery` (just added into `store`) to `out`, with the values `keep`
/// keeps (called with a series' key and its process, None for the cluster view).
pub fn write(
    store: &Store,
    delivery: &Delivery,
    keep: &dyn Fn(&SeriesKey, Option<&Process>) -> bool,
    out: &mut Vec<u8>,
) {
    let start = out.len();
    let format = delivery.format();
    let origin = store.origin();
    let head = serde_json::json!({
        "timeStamp": format.time_stamp,
        "interval": format.interval,
        "scaleFactor": format.scale_factor,
        "name": origin.name,
    })
    .to_string();
    // The head's closing brace makes room for the rest.
    out.extend_from_slice(&head.as_bytes()[..head.len() - 1]);

    // Each part's key, as a process and as the key of its values.
    let parts: Vec<_> = delivery.parts().collect();

    out.extend_from_slice(b",\"processes\":[");
    // Each part's process (for `keep`), and the list the frame shows.
    let own: Vec<Process> = parts
        .iter()
        .map(|part| Process {
            from: part.from.clone(),
            pid: part.pid,
        })
        .collect();
    let mut processes = own.clone();
    if processes.first().map(|p| &p.from) != Some(&Tree::Master) {
        processes.insert(
            0,
            Process {
                from: Tree::Master,
                pid: origin.pid,
            },
        );
    }
    for (i, process) in processes.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let entry = serde_json::json!({
            "key": process.label(),
            "role": process.role(),
            "worker": process.worker(),
            "pid": process.pid,
        });
        json(&entry, out);
    }

    let meta = delivery.meta();
    out.extend_from_slice(b"],\"meta\":");
    let meta = serde_json::json!({
        "late": meta.late,
        "decodeErrors": meta.decode_errors,
        "mismatched": meta.mismatched,
        "unmatched": meta.unmatched,
        "refused": meta.refused,
        "dropped": meta.counts.dropped,
        "invalid": meta.counts.invalid,
        "overflowed": meta.counts.overflowed,
        "errors": meta.counts.errors,
        "workers": meta.workers.len(),
    });
    json(&meta, out);

    // Series id -> its values (the cluster's first, then the parts' in order). Ids are the
    // master's first-seen order: a series keeps its place from frame to frame.
    let mut series: BTreeMap<u32, Vec<(&str, &Value)>> = BTreeMap::new();
    let (ids, values) = delivery.merged();
    let all = ids
        .iter()
        .zip(values)
        .map(|(&id, v)| ("cluster", None, id, v));
    let labels: Vec<String> = own.iter().map(Process::label).collect();
    let all = all.chain(parts.iter().zip(own.iter().zip(&labels)).flat_map(
        |(part, (process, label))| {
            (part.ids.iter().zip(part.values()))
                .map(move |(&id, v)| (label.as_str(), Some(process), id, v))
        },
    ));
    out.extend_from_slice(b",\"series\":[");
    delivery.keys().with(|keys| {
        for (label, process, id, value) in all {
            let kept = || keys.get(id as usize).is_some_and(|k| keep(k, process));
            if !matches!(value, Value::Custom { .. }) && kept() {
                series.entry(id).or_default().push((label, value));
            }
        }
        for (n, (id, values)) in series.iter().enumerate() {
            let key = &keys[*id as usize];
            if n > 0 {
                out.push(b',');
            }
            write_series(key, values, delivery, out);
        }
    });
    out.extend_from_slice(b"]}");

    // Only a peer's `set` text can hold a raw line break (JSON itself never needs one): as
    // whitespace it changes nothing, inside a string it was invalid JSON already.
    for byte in &mut out[start..] {
        if *byte == b'\n' || *byte == b'\r' {
            *byte = b' ';
        }
    }
}

fn write_series(
    key: &SeriesKey,
    values: &[(&str, &Value)],
    delivery: &Delivery,
    out: &mut Vec<u8>,
) {
    let (id, tags) = split_tags(&key.id);
    let mut name = key.path.join(".");
    if !name.is_empty() {
        name.push('.');
    }
    name.push_str(id);
    let tags: serde_json::Map<String, serde_json::Value> = tags
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.into()))
        .collect();
    out.extend_from_slice(b"{\"key\":");
    json(&series_key(key), out);
    out.extend_from_slice(b",\"type\":");
    json(&*key.method, out);
    out.extend_from_slice(b",\"name\":");
    json(&name, out);
    out.extend_from_slice(b",\"tags\":");
    json(&tags, out);
    out.extend_from_slice(b",\"values\":{");
    for (i, (label, value)) in values.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        json(label, out);
        out.push(b':');
        write_value(&key.method, value, delivery.format(), out);
    }
    out.extend_from_slice(b"}}");
}

fn json<T: serde::Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) {
    serde_json::to_writer(out, value).expect("writing to a Vec cannot fail");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::Origin;
    use crate::gather::tree::Format;
    use crate::gather::{Gathering, Source};
    use crate::snapshot::{Entry, Snapshot};
    use crate::stats::histogram::{Distribution, HistogramOptions};
    use crate::stats::summary::Summary;
    use crate::wire::{encode, Keys};
    use std::sync::Arc;

    fn entry(method: &str, path: &[&str], id: &str, value: Value) -> Entry {
        Entry {
            key: Arc::new(SeriesKey::new(method, path, id)),
            value,
        }
    }

    fn snap(pid: u32, entries: Vec<Entry>) -> Snapshot {
        Snapshot {
            k: 4.0,
            pid,
            entries,
            ..Snapshot::default()
        }
    }

    use crate::testing::counter;

    fn format() -> Format {
        crate::testing::format(1000.0, 1000.0, 5000.0, &[50.0, 99.0])
    }

    fn store() -> Store {
        Store::new(Origin {
            name: "web".into(),
            pid: 42,
            interval: 1000.0,
            scale_factor: 1000.0,
            ..Origin::default()
        })
    }

    /// The frame of `delivery` as text (checked to be one line) and as JSON.
    fn frame(delivery: &Delivery) -> (String, serde_json::Value) {
        let mut store = store();
        store.add(delivery);
        let mut out = b"prefix:".to_vec();
        write(&store, delivery, &|_, _| true, &mut out);
        let text = String::from_utf8(out).unwrap();
        let text = text.strip_prefix("prefix:").expect("appends").to_string();
        assert!(!text.contains('\n') && !text.contains('\r'), "{text}");
        let value = serde_json::from_str(&text).unwrap();
        (text, value)
    }

    fn gathering() -> Gathering {
        Gathering::default()
    }

    #[test]
    fn master_workers_and_threads_with_their_values_and_the_cluster() {
        let mut g = gathering();
        g.keep_local(
            snap(42, vec![entry("inc", &["http"], "requests", counter(2.0))]),
            &[],
        );
        let w1 = snap(
            50,
            vec![
                entry("inc", &["http"], "requests", counter(3.0)),
                entry("gauge", &[], "queue", Value::Gauge(Some(4.0))),
            ],
        );
        let w2 = snap(51, vec![entry("gauge", &[], "queue", Value::Gauge(None))]);
        for (id, s) in [(1, &w1), (2, &w2)] {
            let text = encode(s, Keys::All { epoch: 1 });
            g.receive(Source::Worker(id), &text, 4.0).unwrap();
        }
        let t = snap(50, vec![entry("inc", &["http"], "requests", counter(5.0))]);
        g.receive_thread("1:3".into(), t, 4.0).unwrap();
        g.note_late(2);
        let (_, f) = frame(&g.deliver(4.0, format()));
        assert_eq!(f["timeStamp"], 5000.0);
        assert_eq!(f["interval"], 1000.0);
        assert_eq!(f["scaleFactor"], 1000.0);
        assert_eq!(f["name"], "web");
        assert_eq!(
            f["processes"],
            serde_json::json!([
                { "key": "master", "role": "master", "worker": null, "pid": 42 },
                { "key": "1", "role": "worker", "worker": 1, "pid": 50 },
                { "key": "2", "role": "worker", "worker": 2, "pid": 51 },
                { "key": "1:3", "role": "thread", "worker": 1, "pid": 50 },
            ])
        );
        assert_eq!(
            f["meta"],
            serde_json::json!({ "late": 2, "decodeErrors": 0, "mismatched": 0, "unmatched": 0, "refused": 0, "dropped": 0.0, "invalid": 0.0, "overflowed": 0.0, "errors": 0.0, "workers": 2 })
        );
        let series = f["series"].as_array().unwrap();
        assert_eq!(series.len(), 2);
        let requests = &series[0];
        assert_eq!(requests["key"], "inc http.requests");
        assert_eq!(requests["type"], "inc");
        assert_eq!(requests["name"], "http.requests");
        assert_eq!(requests["tags"], serde_json::json!({}));
        let vals = &requests["values"];
        let val = |who: &str| vals[who]["val"].as_f64().unwrap();
        // val = total * scaleFactor / interval: per second here.
        assert_eq!(
            (val("cluster"), val("master"), val("1"), val("1:3")),
            (10.0, 2.0, 3.0, 5.0)
        );
        assert_eq!(vals["cluster"]["timeStamp"], 5000.0);
        assert!(vals.get("2").is_none(), "worker 2 has no requests");
        let queue = &series[1];
        assert_eq!(queue["key"], "gauge queue");
        assert_eq!(queue["name"], "queue");
        assert_eq!(queue["values"]["cluster"]["val"], 4.0);
        assert_eq!(queue["values"]["2"]["val"], serde_json::Value::Null);
    }

    #[test]
    fn values_are_the_delivery_trees_leaf_values() {
        let mut s = Summary::default();
        [1.0, 3.0].iter().for_each(|&x| s.push(x));
        let mut h = Distribution::new(&HistogramOptions::default(), 1);
        h.record_all(&[1.0, 2.0, 3.0], 0.0);
        let entries = vec![
            entry("sample", &["a"], "s", Value::Summary(s)),
            entry("timedSample", &["a"], "t", Value::Summary(s)),
            entry("histogram", &["a"], "h", Value::Histogram(Box::new(h))),
            entry(
                "set",
                &["a"],
                "text",
                Value::Set {
                    json: "\"up\"".into(),
                    at: 1.0,
                },
            ),
        ];
        let mut g = gathering();
        g.keep_local(snap(42, entries), &[]);
        let delivery = g.deliver(4.0, format());
        let (_, f) = frame(&delivery);
        let tree: serde_json::Value =
            serde_json::from_str(&delivery.tree(&Tree::Master).unwrap()).unwrap();
        let series = f["series"].as_array().unwrap();
        assert_eq!(series.len(), 4);
        for (s, id) in series.iter().zip(["s", "t", "h", "text"]) {
            let leaf = &tree["a"][id];
            assert_eq!(s["type"], leaf["type"]);
            assert_eq!(s["values"]["master"], leaf["value"], "{id}");
            assert_eq!(s["values"]["cluster"], leaf["value"], "{id}");
        }
        assert_eq!(series[2]["values"]["cluster"]["p99"], 3.0);
    }

    #[test]
    fn tags_keys_custom_loggers_and_line_breaks() {
        let custom = Value::Custom {
            json: "{\"type\":\"max\",\"value\":1}".into(),
        };
        let mut g = gathering();
        g.keep_local(
            snap(
                42,
                vec![
                    entry(
                        "inc",
                        &["http"],
                        "get{route=\"/a.b\",x=\"q\\\"\"}",
                        counter(1.0),
                    ),
                    entry("max", &[], "m", custom),
                    entry("inc", &["a.b"], "c", counter(1.0)),
                    entry("inc", &["a"], "b.c", counter(1.0)),
                    entry(
                        "set",
                        &[],
                        "odd",
                        Value::Set {
                            json: "\"x\ny\"".into(),
                            at: 1.0,
                        },
                    ),
                ],
            ),
            &[],
        );
        let (text, f) = frame(&g.deliver(4.0, format()));
        let series = f["series"].as_array().unwrap();
        let keys: Vec<_> = series.iter().map(|s| s["key"].as_str().unwrap()).collect();
        assert_eq!(
            keys,
            [
                r#"inc http.get{route="/a\.b",x="q\\""}"#,
                r"inc a\.b.c",
                r"inc a.b\.c",
                "set odd"
            ],
            "custom loggers are left out; dots in elements are escaped"
        );
        assert_eq!(series[0]["name"], "http.get");
        assert_eq!(
            series[0]["tags"],
            serde_json::json!({ "route": "/a.b", "x": "q\"" })
        );
        assert_eq!(series[1]["name"], "a.b.c");
        assert_eq!(series[3]["values"]["master"]["val"], "x y");
        assert!(!text.contains("\"max\""));
    }

    #[test]
    fn a_master_without_a_part_is_still_listed() {
        let mut g = gathering();
        let w = snap(50, vec![entry("inc", &[], "c", counter(1.0))]);
        let text = encode(&w, Keys::All { epoch: 1 });
        g.receive(Source::Worker(7), &text, 4.0).unwrap();
        let (_, f) = frame(&g.deliver(4.0, format()));
        assert_eq!(f["processes"][0]["pid"], 42);
        assert_eq!(f["processes"][1]["key"], "7");
        assert_eq!(f["series"][0]["values"]["7"]["val"], 1.0);
        assert!(f["series"][0]["values"].get("master").is_none());
    }
}
