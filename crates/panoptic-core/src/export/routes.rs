//! What each HTTP path answers (docs/exports.md lists them), and [`serve`], which puts
//! them on a [`Server`]. Every answer is written from the exporter's [`Store`] on the server's
//! rendering threads: never on, nor waiting for, the JS thread or a worker.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::sync::{Arc, Mutex};

use super::frame;
use super::prometheus::{self, NamedBuckets, PrometheusOptions};
use super::select::Selection;
use super::server::{
    Events, Handler, Limits, Reply, Request, Security, Server, ServerStats, SERVER_GAUGES,
};
use super::{pandora, panoptes, Exporter, Process, Series, Store, StoreHandle};
use crate::filter::Filter;
use crate::gather::Tree;
use crate::json;
use crate::snapshot::SeriesKey;
use crate::stats::histogram::OptionsError;

const JSON: &str = "application/json; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";

/// The live page's history holds at most this many bytes of frames (the oldest go first), so a
/// large `history` of large frames stays bounded.
pub const MAX_HISTORY_BYTES: usize = 64 << 20;
/// The most intervals `history` may ask for.
pub const MAX_HISTORY: usize = 100_000;

fn reply(status: u16, content_type: &str, body: Vec<u8>) -> Reply {
    Reply {
        status,
        content_type: content_type.to_string(),
        body,
    }
}

fn text(status: u16, message: &str) -> Reply {
    reply(status, TEXT, format!("{message}\n").into_bytes())
}

/// What one server shows (its `serve()` options).
#[derive(Debug, Clone)]
pub struct Settings {
    prometheus: PrometheusOptions,
    per_process: bool,
    history: usize,
    /// Whether `/metrics` and `/api/self` show panoptic's own metrics ([`super::own`]).
    self_metrics: bool,
}

impl Settings {
    /// Checks `serve()`'s options: the Prometheus ones ([`prometheus::validate_options`]; None:
    /// the defaults, buckets in the unit of the instance's scale factor; layouts by name), whether to show each process's own series too, and how many intervals the
    /// live page's history holds (1 to [`MAX_HISTORY`]), and whether to show panoptic's own
    /// metrics.
    pub fn new(
        prefix: &str,
        buckets: Option<Vec<f64>>,
        named_buckets: NamedBuckets,
        quantiles: Option<Vec<f64>>,
        per_process: bool,
        history: usize,
        self_metrics: bool,
    ) -> Result<Settings, OptionsError> {
        let defaults = PrometheusOptions::default();
        let prometheus = PrometheusOptions {
            prefix: prefix.to_string(),
            buckets,
            named_buckets,
            quantiles: quantiles.unwrap_or(defaults.quantiles),
            ..defaults
        };
        prometheus::validate_options(&prometheus)?;
        if !(1..=MAX_HISTORY).contains(&history) {
            let message = format!("options.history must be from 1 to {MAX_HISTORY}, got {history}");
            return Err(OptionsError::with_message("options.history", message));
        }
        Ok(Settings {
            prometheus,
            per_process,
            history,
            self_metrics,
        })
    }
}

/// The live page's frames: the last `history` (see [`Settings::new`]), and the event queue that
/// streams each new one.
struct Live {
    frames: Mutex<VecDeque<Arc<[u8]>>>,
    events: Events,
    history: usize,
}

impl Live {
    fn push(&self, frame: Arc<[u8]>) {
        self.events.publish(frame.clone());
        let mut frames = self.frames.lock().unwrap_or_else(|e| e.into_inner());
        frames.push_back(frame);
        let mut bytes: usize = frames.iter().map(|f| f.len()).sum();
        while frames.len() > self.history || (frames.len() > 1 && bytes > MAX_HISTORY_BYTES) {
            bytes -= frames.pop_front().map_or(0, |f| f.len());
        }
    }

    /// `GET /api/history`: the frames held, oldest first, as a JSON array.
    fn history(&self) -> Vec<u8> {
        let frames = self
            .frames
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut out = Vec::with_capacity(frames.iter().map(|f| f.len() + 1).sum::<usize>() + 2);
        out.push(b'[');
        for (i, frame) in frames.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(frame);
        }
        out.push(b']');
        out
    }
}

/// The routes of one server.
struct Routes {
    store: StoreHandle,
    settings: Settings,
    /// The instance's `filter` option.
    selection: Selection,
    /// The live page's HTML (None: `/` answers 404).
    page: Option<Arc<[u8]>>,
    live: Arc<Live>,
}

/// A running server of an exporter's routes. Stopping it (or dropping it) closes the server and
/// stops writing its frames.
pub struct Served {
    /// Shared with the source of its own metrics (removed before the server stops).
    server: Arc<Server>,
    exporter: Exporter,
    subscription: u64,
    source: u64,
}

impl Served {
    /// The address the server listens on.
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.server.local_addr()
    }

    /// What the server did so far.
    pub fn stats(&self) -> ServerStats {
        self.server.stats()
    }

    /// Closes the server and its connections.
    pub fn stop(self) {}
}

impl Drop for Served {
    fn drop(&mut self) {
        self.exporter.unsubscribe(self.subscription);
        // Once removed, no scrape reads the server's stats: the last Arc is ours, and the
        // server stops here, on this thread.
        self.exporter.remove_source(self.source);
    }
}

/// Where and how a server listens: `host:port` (port 0: any free port), its connection policy
/// and its TLS and credentials.
pub struct Listen<'a> {
    /// A host name or address (an IPv6 address may be in brackets).
    pub host: &'a str,
    /// The port (0: any free port).
    pub port: u16,
    /// The connection policy.
    pub limits: Limits,
    /// TLS and credentials.
    pub security: Security,
}

/// Serves `exporter`'s routes as `listen` says: the settings, the instance's `selection`, and the
/// live page's HTML. From now on each delivery is also written
/// as a frame for the live page (the last delivery at once, when there is one).
pub fn serve(
    exporter: &Exporter,
    listen: Listen,
    settings: Settings,
    selection: Selection,
    page: Option<Arc<[u8]>>,
) -> std::io::Result<Served> {
    if settings.per_process {
        exporter.keep_processes();
    }
    let live = Arc::new(Live {
        frames: Mutex::default(),
        events: Events::new(),
        history: settings.history,
    });
    let write_frame = {
        let (live, selection) = (live.clone(), selection.clone());
        move |store: &Store, delivery: &crate::gather::Delivery| {
            let origin = store.origin();
            let keep =
                |key: &SeriesKey, process: Option<&Process>| selection.keeps(origin, key, process);
            let mut out = Vec::new();
            frame::write(store, delivery, &keep, &mut out);
            live.push(out.into());
        }
    };
    {
        let store = exporter.store();
        let store = store.read();
        if let Some(last) = store.last() {
            write_frame(&store, last);
        }
    }
    let subscription = exporter.subscribe(Box::new(write_frame));
    let routes = Routes {
        store: exporter.store(),
        settings,
        selection,
        page,
        live: live.clone(),
    };
    let events = Some(live.events.clone());
    let Listen {
        host,
        port,
        limits,
        security,
    } = listen;
    match Server::start_secure(host, port, Arc::new(routes), events, limits, security) {
        Ok(server) => {
            let server = Arc::new(server);
            let address = server.local_addr().to_string();
            let weak = Arc::downgrade(&server);
            let source = exporter.add_source(Box::new(move |own| {
                if let Some(server) = weak.upgrade() {
                    let what = "panoptic's HTTP server (serve())";
                    let labels = [("server", address.as_str())];
                    own.stats("http", what, &server.stats(), SERVER_GAUGES, &labels);
                }
            }));
            Ok(Served {
                server,
                exporter: exporter.clone(),
                subscription,
                source,
            })
        }
        Err(e) => {
            exporter.unsubscribe(subscription);
            Err(e)
        }
    }
}

impl Handler for Routes {
    fn respond(&self, request: &Request) -> Reply {
        let Some(path) = decode(&request.path, false) else {
            return text(400, "the path is not valid percent-encoded UTF-8");
        };
        let filter = match query_value(&request.query, "filter") {
            None => None,
            Some(None) => return text(400, "?filter= is not valid percent-encoded UTF-8"),
            Some(Some(f)) if f.trim().is_empty() => None,
            Some(Some(f)) => match Filter::parse(&f) {
                Ok(filter) => Some(filter),
                Err(e) if path == "/api/select" => {
                    let body =
                        serde_json::json!({ "error": e.to_string(), "position": e.position });
                    return reply(400, JSON, body.to_string().into_bytes());
                }
                Err(e) => return text(400, &e.to_string()),
            },
        };
        let selection = match filter {
            Some(f) => self.selection.and(f),
            None => self.selection.clone(),
        };
        match path.as_ref() {
            "/" => match &self.page {
                Some(page) => reply(200, HTML, page.to_vec()),
                None => text(
                    404,
                    "the live page is not built (node scripts/build-page.js)",
                ),
            },
            "/api/history" => reply(200, JSON, self.live.history()),
            "/api/select" => reply(200, JSON, select(&self.store.read(), &selection)),
            "/api/self" if self.settings.self_metrics => {
                let own = self.store.own(&self.store.read());
                reply(200, JSON, json::to_string(&own.to_json()).into_bytes())
            }
            "/healthz" => health(&self.store.read()),
            _ => match path.strip_prefix("/metrics") {
                Some(rest) => self.metrics(rest, &request.query, &selection, &request.accept),
                None => text(404, &format!("not found: {}", request.path)),
            },
        }
    }
}

impl Routes {
    /// `/metrics` and the routes under it (`rest`: what follows `/metrics`).
    fn metrics(&self, rest: &str, query: &str, selection: &Selection, accept: &str) -> Reply {
        let store = self.store.read();
        // Before the first delivery the expositions are empty (a scrape then sees a target that
        // is up with no series yet); only the last delivery itself is missing.
        if rest == ".json" && store.last().is_none() {
            return text(503, "no interval delivered yet");
        }
        let origin = store.origin();
        let per_process = self.settings.per_process;
        let shown = |s: &Series| {
            (per_process || s.process.is_none()) && selection.keeps(origin, s.key, s.process)
        };
        let mut out = Vec::with_capacity(64 << 10);
        match rest {
            "" => {
                let format = prometheus::negotiate(accept);
                let options = PrometheusOptions {
                    scale_factor: origin.scale_factor,
                    ..self.settings.prometheus.clone()
                };
                let own = (self.settings.self_metrics).then(|| self.store.own(&store));
                let series = store.series().filter(shown);
                prometheus::write(series, &options, format, own.as_ref(), &mut out);
                reply(200, prometheus::content_type(format), out)
            }
            ".json" => reply(200, JSON, last_delivery(&store, selection)),
            "/panoptes" => {
                panoptes::write(&store, store.series().filter(shown), &mut out);
                reply(200, JSON, out)
            }
            _ => {
                let route = if rest == "/list" {
                    Pandora::List(None)
                } else if let Some(group) = rest.strip_prefix("/list/") {
                    Pandora::List(Some(group))
                } else if let Some(group) = rest.strip_prefix('/').filter(|g| !g.is_empty()) {
                    Pandora::Group(group)
                } else {
                    return text(404, &format!("not found: /metrics{rest}"));
                };
                let app = match query_value(query, "appName") {
                    Some(None) => return text(400, "?appName= is not valid percent-encoded UTF-8"),
                    app => app.flatten().filter(|a| !a.is_empty()),
                };
                let series = store.series().filter(shown);
                match route {
                    Pandora::List(group) => {
                        pandora::list(&store, series, group, app.as_deref(), &mut out)
                    }
                    Pandora::Group(group) => {
                        pandora::group(&store, series, group, app.as_deref(), &mut out)
                    }
                }
                // An unknown group too: Pandora answers it 200 with `success: false`, which is
                // what its clients read.
                reply(200, JSON, out)
            }
        }
    }
}

/// Pandora's routes under `/metrics`.
enum Pandora<'a> {
    /// `/list` (None) and `/list/:group`.
    List(Option<&'a str>),
    /// `/:group`.
    Group(&'a str),
}

/// Percent-decodes `text` (`+` as a space too when `plus` is true); None when the result is not
/// UTF-8.
fn decode(text: &str, plus: bool) -> Option<Cow<'_, str>> {
    if !text.contains(['%', '+']) {
        return Some(Cow::Borrowed(text));
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok().map(Cow::Owned)
}

/// The value of the query parameter `name` (the first one): None when absent, Some(None) when it
/// does not decode.
fn query_value(query: &str, name: &str) -> Option<Option<String>> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (decode(key, true)?.as_ref() == name).then(|| decode(value, true).map(Cow::into_owned))
    })
}

/// `GET /healthz`: `{ status: "ok", deliveries, timeStamp }` (timeStamp: the end of the last
/// delivered interval, null before the first).
fn health(store: &Store) -> Reply {
    let time_stamp = (store.deliveries() > 0).then(|| store.time_stamp());
    let body = serde_json::json!({
        "status": "ok",
        "deliveries": store.deliveries(),
        "timeStamp": time_stamp,
    });
    reply(200, JSON, json::to_string(&body).into_bytes())
}

/// `GET /api/select`: `{ keys: [series keys], lines: { key: [process labels] } }`, the series
/// the selection keeps: the cluster view's from the store (label `cluster`), each process's from
/// the last delivery (a process's fields are known for the processes that took part in it).
fn select(store: &Store, selection: &Selection) -> Vec<u8> {
    let origin = store.origin();
    let mut keys: Vec<String> = Vec::new();
    let mut lines: HashMap<String, Vec<String>> = HashMap::new();
    let mut add = |key: &SeriesKey, label: String| {
        let key = frame::series_key(key);
        let entry = lines.entry(key.clone()).or_insert_with(|| {
            keys.push(key);
            Vec::new()
        });
        if !entry.contains(&label) {
            entry.push(label);
        }
    };
    for s in store.series().filter(|s| s.process.is_none()) {
        if selection.keeps(origin, s.key, None) {
            add(s.key, "cluster".into());
        }
    }
    if let Some(delivery) = store.last() {
        delivery.keys().with(|all| {
            for part in delivery.parts() {
                let process = Process {
                    from: part.from.clone(),
                    pid: part.pid,
                };
                for key in part.ids.iter().filter_map(|&id| all.get(id as usize)) {
                    if selection.keeps(origin, key, Some(&process)) {
                        add(key, process.label());
                    }
                }
            }
        });
    }
    serde_json::json!({ "keys": keys, "lines": lines })
        .to_string()
        .into_bytes()
}

/// `GET /metrics.json`: the last delivery, byte for byte as `JSON.stringify` writes the
/// `'delivery'` event: `{ id, name, interval, data: { master, workers, threads, cluster }, meta:
/// { pid, ... } }`, `name` as the event's (absent when unset), `workers` and `threads` only when
/// the delivery has some, numbers and key order as JS writes them ([`crate::json`]). But for
/// what only JS knows (docs/exports.md lists it): registered loggers' leaves of the cluster view,
/// errors counted by JS (their `merge(a, b)`, a custom transformer) and a custom transformer's
/// trees. Leaves the selection does not keep are left out (and the objects they leave empty).
/// The caller checked that there was a delivery.
fn last_delivery(store: &Store, selection: &Selection) -> Vec<u8> {
    let Some(delivery) = store.last() else {
        return b"{}".to_vec();
    };
    let origin = store.origin();
    let tree = |from: &Tree, pid: u32| -> String {
        let process = (*from != Tree::Cluster).then(|| Process {
            from: from.clone(),
            pid,
        });
        let keep = |key: &SeriesKey| selection.keeps(origin, key, process.as_ref());
        let keep: Option<&dyn Fn(&SeriesKey) -> bool> = if selection.is_all() {
            None
        } else {
            Some(&keep)
        };
        (delivery.tree_kept(from, keep)).unwrap_or_else(|| "{}".into())
    };
    let mut out = Vec::with_capacity(4096);
    // The event: `{ id: owner.id, name: owner.name, interval: interval / scaleFactor, data, meta }`.
    let _ = write!(out, "{{\"id\":{}", origin.id);
    if let Some(name) = &origin.name_json {
        out.extend_from_slice(b",\"name\":");
        out.extend_from_slice(name.as_bytes());
    }
    out.extend_from_slice(b",\"interval\":");
    json::number(origin.interval / origin.scale_factor, &mut out);
    out.extend_from_slice(b",\"data\":{\"master\":");
    let master = delivery.parts().find(|p| p.from == Tree::Master);
    let master_pid = master.map_or(origin.pid, |p| p.pid);
    out.extend_from_slice(tree(&Tree::Master, master_pid).as_bytes());
    // Present when the delivery has some (as the event's): keys in a JS object's order.
    let group = |name: &str, mut trees: Vec<(String, String)>, out: &mut Vec<u8>| {
        if trees.is_empty() {
            return;
        }
        trees.sort_by(|a, b| json::key_order(&a.0, &b.0));
        let _ = write!(out, ",\"{name}\":{{");
        for (i, (key, tree)) in trees.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            json::string(key, out);
            out.push(b':');
            out.extend_from_slice(tree.as_bytes());
        }
        out.push(b'}');
    };
    let mut workers = Vec::new();
    let mut threads = Vec::new();
    for part in delivery.parts() {
        match &part.from {
            Tree::Worker(id) => workers.push((id.to_string(), tree(&part.from, part.pid))),
            Tree::Thread(label) => threads.push((label.clone(), tree(&part.from, part.pid))),
            Tree::Master | Tree::Cluster => {}
        }
    }
    group("workers", workers, &mut out);
    group("threads", threads, &mut out);
    out.extend_from_slice(b",\"cluster\":");
    out.extend_from_slice(tree(&Tree::Cluster, 0).as_bytes());
    // The event's meta is `{ pid: process.pid, ...outline.meta }`: pid, then the outline's
    // fields in the order JS enumerates them. The outline writes its meta from a serde_json map
    // (keys sorted), which is the order parsing it back here gives.
    let outline: serde_json::Value = serde_json::from_str(&delivery.outline()).unwrap_or_default();
    let _ = write!(out, "}},\"meta\":{{\"pid\":{}", origin.pid);
    if let Some(meta) = outline["meta"].as_object() {
        let mut fields: Vec<_> = meta.iter().collect();
        fields.sort_by(|a, b| json::key_order(a.0, b.0));
        for (key, value) in fields {
            out.push(b',');
            json::string(key, &mut out);
            out.push(b':');
            json::value(value, &mut out);
        }
    }
    out.extend_from_slice(b"}}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::{lock, Origin};
    use crate::gather::tree::Format;
    use crate::gather::{Gathering, Source};
    use crate::snapshot::{Entry, SeriesKey, Snapshot, Value};
    use crate::wire::{encode, Keys};
    use std::sync::Arc;

    fn exporter_with_one_delivery() -> Exporter {
        let origin = Origin {
            name: "web".into(),
            name_json: Some("\"web\"".into()),
            id: 3,
            pid: 42,
            interval: 1000.0,
            scale_factor: 1.0,
            ..Origin::default()
        };
        let exporter = Exporter::new(origin);
        let mut g = Gathering::default();
        g.keep_local(
            Snapshot {
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
            },
            &[],
        );
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

    fn json(reply: &Reply) -> serde_json::Value {
        assert_eq!(reply.content_type, JSON);
        serde_json::from_slice(&reply.body).unwrap()
    }

    fn routes(exporter: &Exporter, selection: Selection) -> Routes {
        Routes {
            store: exporter.store(),
            settings: Settings::new("", None, Vec::new(), None, false, 10, false).unwrap(),
            selection,
            page: None,
            live: Arc::new(Live {
                frames: Mutex::default(),
                events: Events::new(),
                history: 10,
            }),
        }
    }

    /// `GET target` (a path and maybe a query).
    fn get(routes: &Routes, target: &str, accept: &str) -> Reply {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        routes.respond(&Request {
            method: "GET".into(),
            path: path.into(),
            query: query.into(),
            accept: accept.into(),
        })
    }

    #[test]
    fn health_and_last_delivery() {
        let routes = routes(&exporter_with_one_delivery(), Selection::default());
        let health = get(&routes, "/healthz", "");
        assert_eq!(health.status, 200);
        assert_eq!(json(&health)["deliveries"], 1);
        assert_eq!(json(&health)["timeStamp"], 5000.0);
        assert!(String::from_utf8(health.body)
            .unwrap()
            .contains("\"timeStamp\":5000}"));
        // The 'delivery' event as JSON.stringify writes it: no workers nor threads in this
        // delivery, numbers as JS writes them, meta's pid first.
        let text = String::from_utf8(get(&routes, "/metrics.json", "").body).unwrap();
        let leaf = r#"{"http":{"requests":{"type":"inc","value":{"val":0.002,"timeStamp":5000}}}}"#;
        let head = format!(
            r#"{{"id":3,"name":"web","interval":1000,"data":{{"master":{leaf},"cluster":{leaf}}},"meta":{{"pid":42,"#
        );
        assert!(text.starts_with(&head), "{text}");
        assert!(!text.contains(".0,") && !text.contains(".0}"), "{text}");
        let last: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(last["meta"]["late"], 0);
        assert_eq!(last["meta"]["workers"], serde_json::json!({}));
    }

    #[test]
    fn the_last_delivery_without_a_name_and_with_workers() {
        let origin = Origin {
            interval: 2000.0,
            scale_factor: 1000.0,
            pid: 7,
            ..Origin::default()
        };
        let exporter = Exporter::new(origin);
        let mut g = Gathering::default();
        for worker in [10, 2] {
            let snapshot = Snapshot {
                k: 0.0,
                pid: 100 + worker,
                ..Snapshot::default()
            };
            let message = encode(&snapshot, Keys::All { epoch: 1 });
            assert_eq!(g.receive(Source::Worker(worker), &message, 0.0), Ok(()));
        }
        let format = Format {
            interval: 2000.0,
            scale_factor: 1000.0,
            time_stamp: 2000.0,
            percentiles: Arc::from([50.0]),
        };
        exporter.add(g.deliver(0.0, format));
        exporter.flush();
        let routes = routes(&exporter, Selection::default());
        let text = String::from_utf8(get(&routes, "/metrics.json", "").body).unwrap();
        // No name (JSON.stringify leaves undefined out); worker ids in a JS object's order.
        let head = r#"{"id":0,"interval":2,"data":{"master":{},"workers":{"2":{},"10":{}},"cluster":{}},"meta":{"pid":7,"#;
        assert!(text.starts_with(head), "{text}");
        assert!(text.contains(r#""workers":{"2":102,"10":110}"#), "{text}");
    }

    #[test]
    fn before_the_first_delivery_and_unknown_paths() {
        let routes = routes(&Exporter::new(Origin::default()), Selection::default());
        assert_eq!(get(&routes, "/metrics.json", "").status, 503);
        for path in ["/metrics", "/metrics/list", "/metrics/panoptes"] {
            assert_eq!(get(&routes, path, "").status, 200, "{path}");
        }
        let empty = get(&routes, "/metrics", "application/openmetrics-text");
        assert!(String::from_utf8(empty.body).unwrap().ends_with("# EOF\n"));
        assert_eq!(get(&routes, "/nope", "").status, 404);
        assert_eq!(get(&routes, "/", "").status, 404);
        let health = json(&get(&routes, "/healthz", ""));
        assert_eq!(health["deliveries"], 0);
        assert_eq!(health["timeStamp"], serde_json::Value::Null);
        assert_eq!(
            json(&get(&routes, "/api/history", "")),
            serde_json::json!([])
        );
    }

    #[test]
    fn filters_narrow_every_route() {
        let exporter = exporter_with_one_delivery();
        let all = routes(&exporter, Selection::default());
        let body = |r: Reply| String::from_utf8(r.body).unwrap();
        let metrics = get(&all, "/metrics?filter=name%20%3D%20'http.requests'", "");
        assert_eq!(metrics.status, 200);
        assert!(body(metrics).contains("http_requests_total 2"));
        let other = body(get(&all, "/metrics?filter=name+%3D+'other'", ""));
        assert!(!other.contains("http_requests"), "{other}");
        let last = json(&get(&all, "/metrics.json?filter=type='sample'", ""));
        assert_eq!(last["data"]["master"], serde_json::json!({}));
        assert_eq!(last["data"]["cluster"], serde_json::json!({}));
        let kept = json(&get(&all, "/metrics.json?filter=process.role='master'", ""));
        assert_eq!(kept["data"]["master"]["http"]["requests"]["type"], "inc");
        assert_eq!(kept["data"]["cluster"], serde_json::json!({}));
        // A bad filter: where and what was expected.
        let bad = get(&all, "/metrics?filter=name%20%3D", "");
        assert_eq!((bad.status, bad.content_type.as_str()), (400, TEXT));
        assert!(body(bad).starts_with("filter: at position 6: expected"));
        let bad = get(&all, "/api/select?filter=name%20%3D", "");
        assert_eq!(
            (bad.status, json(&bad)["position"].as_u64()),
            (400, Some(6))
        );
        assert_eq!(get(&all, "/metrics?filter=%FF", "").status, 400);
        // /api/select: series keys, with the processes whose series match.
        let selected = json(&get(&all, "/api/select", ""));
        assert_eq!(selected["keys"], serde_json::json!(["inc http.requests"]));
        let lines = &selected["lines"]["inc http.requests"];
        assert_eq!(*lines, serde_json::json!(["cluster", "master"]));
        let workers = json(&get(&all, "/api/select?filter=process.role%3D'worker'", ""));
        assert_eq!(workers["keys"], serde_json::json!([]));
        // Pandora's groups: the instance's name.
        assert_eq!(json(&get(&all, "/metrics/web", ""))["success"], true);
        let missing = get(&all, "/metrics/nope", "");
        assert_eq!(
            (missing.status, json(&missing)["success"].as_bool()),
            (200, Some(false))
        );
        // ?appName= (Pandora's): the series has no appName tag, so every application sees it.
        let app = json(&get(&all, "/metrics/web?appName=app1", ""));
        assert_eq!(app["data"].as_array().unwrap().len(), 3, "{app}");
        let listed = json(&get(&all, "/metrics/list/web?appName=app1", ""));
        assert_eq!(listed["data"]["web"].as_array().unwrap().len(), 3);
        assert_eq!(get(&all, "/metrics/list?appName=%FF", "").status, 400);
        // The instance's filter applies whatever the request asks.
        let samples = Filter::parse("type = 'sample'").unwrap();
        let narrowed = routes(&exporter, Selection::new(Some(samples)));
        assert!(!body(get(&narrowed, "/metrics", "")).contains("http_requests"));
        assert_eq!(
            json(&get(&narrowed, "/metrics/list", ""))["data"],
            serde_json::json!({})
        );
    }

    #[test]
    fn own_metrics_show_when_asked_for_with_every_source() {
        let exporter = exporter_with_one_delivery();
        let source = exporter.add_source(Box::new(|own| {
            own.add(
                "probe",
                crate::export::own::OwnKind::Gauge,
                "a source",
                &[],
                7.0,
            );
        }));
        let mut on = routes(&exporter, Selection::default());
        on.settings.self_metrics = true;
        let own = json(&get(&on, "/api/self", ""));
        assert_eq!(own["panoptic_deliveries"]["samples"][0]["value"], 1.0);
        assert_eq!(own["panoptic_deliveries"]["type"], "counter");
        assert_eq!(own["panoptic_probe"]["samples"][0]["value"], 7.0);
        let engines = &own["panoptic_engine_series"]["samples"];
        assert_eq!(engines[0]["labels"]["worker"], "master");
        let text = String::from_utf8(get(&on, "/metrics", "").body).unwrap();
        assert!(text.contains("\npanoptic_deliveries_total 1\n"), "{text}");
        assert!(text.contains("\npanoptic_probe 7\n"), "{text}");
        exporter.remove_source(source);
        let own = json(&get(&on, "/api/self", ""));
        assert!(own.get("panoptic_probe").is_none(), "removed");
        let off = routes(&exporter, Selection::default());
        assert_eq!(get(&off, "/api/self", "").status, 404);
        let text = String::from_utf8(get(&off, "/metrics", "").body).unwrap();
        assert!(!text.contains("panoptic_deliveries"), "{text}");
    }

    #[test]
    fn decoding() {
        assert_eq!(decode("a%20b+c", true).unwrap(), "a b c");
        assert_eq!(decode("a+b", false).unwrap(), "a+b");
        assert_eq!(decode("%e2%82%ac%", false).unwrap(), "\u{20ac}%");
        assert_eq!(decode("%zz", false).unwrap(), "%zz");
        assert!(decode("%ff", false).is_none());
        assert_eq!(
            query_value("a=1&filter=x%3D1", "filter"),
            Some(Some("x=1".into()))
        );
        assert_eq!(query_value("a=1", "filter"), None);
    }

    #[test]
    fn a_served_history_starts_with_the_last_delivery_and_follows_the_next() {
        use std::io::{Read, Write as _};
        let exporter = exporter_with_one_delivery();
        let settings = Settings::new("", None, Vec::new(), None, false, 2, true).unwrap();
        let page: Arc<[u8]> = Arc::from(&b"<html>page</html>"[..]);
        let listen = Listen {
            host: "127.0.0.1",
            port: 0,
            limits: Limits::default(),
            security: Security::default(),
        };
        let served = serve(
            &exporter,
            listen,
            settings,
            Selection::default(),
            Some(page),
        )
        .unwrap();
        let fetch = |path: &str| {
            let mut stream = std::net::TcpStream::connect(served.local_addr()).unwrap();
            write!(
                stream,
                "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            .unwrap();
            let mut text = String::new();
            stream.read_to_string(&mut text).unwrap();
            text.split_once("\r\n\r\n").unwrap().1.to_string()
        };
        assert_eq!(fetch("/"), "<html>page</html>");
        let history: serde_json::Value = serde_json::from_str(&fetch("/api/history")).unwrap();
        assert_eq!(history.as_array().unwrap().len(), 1);
        assert_eq!(history[0]["timeStamp"], 5000.0);
        // Two more deliveries: the history holds the last 2.
        for k in [5.0, 6.0] {
            let mut g = Gathering::default();
            g.keep_local(
                Snapshot {
                    k,
                    pid: 42,
                    ..Snapshot::default()
                },
                &[],
            );
            let format = Format {
                interval: 1000.0,
                scale_factor: 1.0,
                time_stamp: (k + 1.0) * 1000.0,
                percentiles: Arc::from([50.0]),
            };
            exporter.add(g.deliver(k, format));
        }
        exporter.flush();
        let history: serde_json::Value = serde_json::from_str(&fetch("/api/history")).unwrap();
        let stamps: Vec<_> = history
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["timeStamp"].clone())
            .collect();
        assert_eq!(stamps, [6000.0, 7000.0]);
        served.stop();
        // Stopped: its frames are no longer written (the subscription is gone).
        assert!(lock(&exporter.0.subscribers).is_empty());
    }
}
