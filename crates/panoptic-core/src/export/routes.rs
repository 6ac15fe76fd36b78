//! What each HTTP path answers (the README's "Exports" lists them). Every answer is written from
//! the exporter's [`Store`] on the server's rendering threads: never on, nor waiting for, the JS
//! thread or a worker.

use std::io::Write;

use crate::gather::Tree;

use super::{Store, StoreHandle};

/// What to write for a request, as the server sends it.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

const JSON: &str = "application/json; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

impl Answer {
    fn json(body: Vec<u8>) -> Answer {
        Answer {
            status: 200,
            content_type: JSON,
            body,
        }
    }

    fn error(status: u16, message: &str) -> Answer {
        Answer {
            status,
            content_type: TEXT,
            body: format!("{message}\n").into_bytes(),
        }
    }
}

/// The routes of one served instance.
#[derive(Clone)]
pub struct Routes {
    store: StoreHandle,
}

impl Routes {
    /// Routes answering from `store`.
    pub fn new(store: StoreHandle) -> Routes {
        Routes { store }
    }

    /// Answers `GET path?query` (`accept`: the request's Accept header, or "").
    pub fn answer(&self, path: &str, query: &str, accept: &str) -> Answer {
        let _ = (query, accept);
        let store = self.store.read();
        match path {
            "/healthz" => health(&store),
            "/metrics.json" => last_delivery(&store),
            _ => Answer::error(404, &format!("not found: {path}")),
        }
    }
}

/// `GET /healthz`: `{ status: "ok", deliveries, timeStamp }` (timeStamp: the end of the last
/// delivered interval, 0 before the first).
fn health(store: &Store) -> Answer {
    let body = serde_json::json!({
        "status": "ok",
        "deliveries": store.deliveries(),
        "timeStamp": store.time_stamp(),
    });
    Answer::json(body.to_string().into_bytes())
}

/// `GET /metrics.json`: the last delivery as the `'delivery'` event has it (`{ id, name,
/// interval, timeStamp, data: { master, workers, threads, cluster }, meta }`), with two
/// differences: the cluster view has no registered loggers' leaves (JS merges those), and meta
/// has no `pid` key at the top (it is the origin's `pid` field here). 503 before the first
/// delivery.
fn last_delivery(store: &Store) -> Answer {
    let Some(delivery) = store.last() else {
        return Answer::error(503, "no interval delivered yet");
    };
    let origin = store.origin();
    let mut out = Vec::with_capacity(4096);
    let head = serde_json::json!({
        "id": origin.id,
        "name": origin.name,
        "pid": origin.pid,
        "interval": origin.interval / origin.scale_factor,
        "timeStamp": delivery.format().time_stamp,
    })
    .to_string();
    // The head's closing brace makes room for the data and the meta.
    out.extend_from_slice(&head.as_bytes()[..head.len() - 1]);
    out.extend_from_slice(b",\"data\":{\"master\":");
    out.extend_from_slice(
        delivery
            .tree(&Tree::Master)
            .as_deref()
            .unwrap_or("{}")
            .as_bytes(),
    );
    let group = |name: &str, trees: Vec<(String, String)>, out: &mut Vec<u8>| {
        let _ = write!(out, ",\"{name}\":{{");
        for (i, (key, tree)) in trees.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(serde_json::Value::from(key.as_str()).to_string().as_bytes());
            out.push(b':');
            out.extend_from_slice(tree.as_bytes());
        }
        out.push(b'}');
    };
    let mut workers = Vec::new();
    let mut threads = Vec::new();
    for part in delivery.parts() {
        match &part.from {
            Tree::Worker(id) => {
                workers.extend(delivery.tree(&part.from).map(|t| (id.to_string(), t)))
            }
            Tree::Thread(label) => {
                threads.extend(delivery.tree(&part.from).map(|t| (label.clone(), t)))
            }
            Tree::Master | Tree::Cluster => {}
        }
    }
    group("workers", workers, &mut out);
    group("threads", threads, &mut out);
    out.extend_from_slice(b",\"cluster\":");
    out.extend_from_slice(delivery.tree(&Tree::Cluster).unwrap_or_default().as_bytes());
    let outline: serde_json::Value = serde_json::from_str(&delivery.outline()).unwrap_or_default();
    out.extend_from_slice(b"},\"meta\":");
    out.extend_from_slice(outline["meta"].to_string().as_bytes());
    out.push(b'}');
    Answer::json(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::{Exporter, Origin};
    use crate::gather::Gathering;
    use crate::histogram::HistogramOptions;
    use crate::snapshot::{Entry, SeriesKey, Snapshot, Value};
    use crate::tree::Format;
    use std::sync::Arc;

    fn exporter_with_one_delivery() -> Exporter {
        let origin = Origin {
            name: "web".into(),
            id: 3,
            pid: 42,
            interval: 1000.0,
            scale_factor: 1.0,
            ..Origin::default()
        };
        let exporter = Exporter::new(origin);
        let mut g = Gathering::new(HistogramOptions::default());
        g.keep_local(Snapshot {
            k: 4.0,
            pid: 42,
            entries: vec![Entry {
                key: Arc::new(SeriesKey {
                    method: "inc".into(),
                    path: vec!["http".into()].into(),
                    id: "requests".into(),
                }),
                value: Value::Counter {
                    count: 2.0,
                    total: 2.0,
                },
            }],
            ..Snapshot::default()
        });
        let format = Format {
            interval: 1000.0,
            scale_factor: 1.0,
            time_stamp: 5000.0,
            percentiles: Arc::from([50.0]),
        };
        exporter.add(g.deliver(4.0, format));
        exporter.flush();
        exporter
    }

    fn json(answer: &Answer) -> serde_json::Value {
        assert_eq!(answer.content_type, JSON);
        serde_json::from_slice(&answer.body).unwrap()
    }

    #[test]
    fn health_and_last_delivery() {
        let routes = Routes::new(exporter_with_one_delivery().store());
        let health = routes.answer("/healthz", "", "");
        assert_eq!(health.status, 200);
        assert_eq!(json(&health)["deliveries"], 1);
        assert_eq!(json(&health)["timeStamp"], 5000.0);
        let last = json(&routes.answer("/metrics.json", "", ""));
        assert_eq!(last["name"], "web");
        assert_eq!(last["id"], 3);
        assert_eq!(last["timeStamp"], 5000.0);
        let leaf = &last["data"]["master"]["http"]["requests"];
        assert_eq!(leaf["type"], "inc");
        assert_eq!(leaf["value"]["val"], 0.002);
        assert_eq!(last["data"]["cluster"]["http"]["requests"], *leaf);
        assert_eq!(last["data"]["workers"], serde_json::json!({}));
        assert_eq!(last["meta"]["late"], 0);
    }

    #[test]
    fn before_the_first_delivery_and_unknown_paths() {
        let routes = Routes::new(Exporter::new(Origin::default()).store());
        assert_eq!(routes.answer("/metrics.json", "", "").status, 503);
        assert_eq!(routes.answer("/nope", "", "").status, 404);
        assert_eq!(json(&routes.answer("/healthz", "", ""))["deliveries"], 0);
    }
}
