//! The exports of a delivering instance (docs/exports.md): the exporter fed by each delivery,
//! the instance's `filter`, the InfluxDB pusher (`influx`), and `NativeServer`, one HTTP server
//! started by `serve()`. The servers and the pusher run on native threads; JS only starts and
//! stops them and reads their counters.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use napi::bindgen_prelude::Buffer;
use napi_derive::napi;
use panoptic_core::export::own::{Own, OwnKind};
use panoptic_core::export::push::{PushOptions, PushSpec, PushStats, Pusher, PUSH_GAUGES};
use panoptic_core::export::routes::{self, Served, Settings};
use panoptic_core::export::select::Selection;
use panoptic_core::export::{Exporter, Origin};
use panoptic_core::filter::Filter;

use crate::error::{coded, Coded, BAD_OPTIONS};

/// How long a stopped instance's pusher may go on sending what it queued (on its own thread).
const FLUSH_ON_STOP: Duration = Duration::from_secs(2);

/// The instance options of the exports, their types checked by lib/export.js.
#[napi(object)]
pub struct ExportOptions {
    /// `filter`: the expression limiting what every export shows.
    pub filter: Option<String>,
    /// `influx`: push every delivery to InfluxDB.
    pub influx: Option<InfluxOptions>,
}

/// The `influx` option (docs/influxdb.md): lib/export.js checks the types, the core the ranges
/// ([`PushOptions::new`]). A mirror of the core's `PushSpec` (the core has no napi); the `From`
/// below names every field, so one added to either side alone does not compile.
#[napi(object)]
#[derive(Clone)]
pub struct InfluxOptions {
    pub url: Option<String>,
    pub db: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub retention_policy: Option<String>,
    pub precision: Option<String>,
    pub prefix: Option<String>,
    pub per_process: Option<bool>,
    pub tags: Option<HashMap<String, String>>,
    pub max_queue_bytes: Option<f64>,
    pub batch_points: Option<f64>,
    pub timeout: Option<f64>,
    pub min_backoff: Option<f64>,
    pub max_backoff: Option<f64>,
}

impl From<InfluxOptions> for PushSpec {
    fn from(o: InfluxOptions) -> PushSpec {
        PushSpec {
            url: o.url,
            db: o.db,
            username: o.username,
            password: o.password,
            retention_policy: o.retention_policy,
            precision: o.precision,
            prefix: o.prefix,
            per_process: o.per_process,
            // The line protocol sorts tags by key: the object's order does not matter.
            tags: o.tags.unwrap_or_default().into_iter().collect(),
            max_queue_bytes: o.max_queue_bytes,
            batch_points: o.batch_points,
            timeout: o.timeout,
            min_backoff: o.min_backoff,
            max_backoff: o.max_backoff,
        }
    }
}

/// Checks the ranges of the `influx` option: the message of the `RangeError` to throw, or
/// nothing.
#[napi]
pub fn check_influx(options: InfluxOptions) -> Option<String> {
    PushOptions::new(options.into())
        .err()
        .map(|e| e.to_string())
}

/// A delivering instance's exports.
pub struct Exports {
    exporter: Exporter,
    selection: Selection,
    pusher: Option<Arc<Pusher>>,
}

impl Exports {
    /// Starts exporting for `origin` with `options` (already checked by JS: an error here is a
    /// bug or a thread that did not start).
    pub fn new(origin: Origin, options: ExportOptions) -> Result<Exports, Coded> {
        let bad = |message: String| coded(BAD_OPTIONS, message);
        let filter = (options.filter.as_deref())
            .map(Filter::parse)
            .transpose()
            .map_err(|e| bad(e.to_string()))?;
        let selection = Selection::new(filter);
        let exporter = Exporter::new(origin.clone());
        let pusher = match options.influx {
            None => None,
            Some(influx) => {
                let mut push = PushOptions::new(influx.into()).map_err(|e| bad(e.to_string()))?;
                let keep = selection.clone();
                push.lines.keep = Some(Arc::new(move |key, process| {
                    keep.keeps(&origin, key, process)
                }));
                if push.lines.per_process {
                    // Each process's own series are kept in the store only when asked for.
                    exporter.keep_processes();
                }
                let pusher = Arc::new(Pusher::start(push).map_err(|e| bad(e.to_string()))?);
                exporter.subscribe(pusher.subscriber());
                let stats = pusher.clone();
                exporter.add_source(Box::new(move |own| {
                    let what = "panoptic's push to a back-end";
                    let labels = [("target", "influx")];
                    own.stats("push", what, &stats.stats(), PUSH_GAUGES, &labels);
                }));
                Some(pusher)
            }
        };
        Ok(Exports {
            exporter,
            selection,
            pusher,
        })
    }

    /// The exporter deliveries go to.
    pub fn exporter(&self) -> &Exporter {
        &self.exporter
    }

    /// Starts a server (`serve()`).
    pub fn serve(&self, spec: ServeSpec) -> Result<NativeServer, Coded> {
        let range = |message: String| coded("ERR_OUT_OF_RANGE", message);
        let history = usize::try_from(spec.history).unwrap_or(usize::MAX);
        let settings = Settings::new(
            &spec.prefix,
            spec.buckets,
            spec.quantiles,
            spec.per_process,
            history,
            spec.self_metrics,
        )
        .map_err(|e| range(e.to_string()))?;
        let port = u16::try_from(spec.port).map_err(|_| {
            range(format!(
                "options.port must be from 0 to 65535, got {}",
                spec.port
            ))
        })?;
        let page = spec.page.map(|page| Arc::from(&page[..]));
        let served = routes::serve(
            &self.exporter,
            &spec.host,
            port,
            settings,
            self.selection.clone(),
            page,
        )
        .map_err(|e| system_error(&e, &spec.host, port))?;
        let address = served.local_addr();
        Ok(NativeServer {
            served: Some(served),
            host: address.ip().to_string(),
            port: u32::from(address.port()),
        })
    }

    /// What the exports did so far.
    pub fn stats(&self) -> ExportStats {
        let store = self.exporter.store();
        let read = store.read();
        ExportStats {
            deliveries: read.deliveries() as f64,
            influx: self.pusher.as_ref().map(|p| influx_stats(p.stats())),
            own: own_stats(&store.own(&read)),
        }
    }

    /// Stops pushing once the deliveries already handed over are queued: from then, the
    /// pusher's thread has [`FLUSH_ON_STOP`] to send them. Returns at once. The pusher is kept
    /// so its counters stay readable.
    pub fn close(&self) {
        if let Some(pusher) = &self.pusher {
            let pusher = pusher.clone();
            self.exporter.then(move || pusher.close(FLUSH_ON_STOP));
        }
    }

    /// Whether the pusher still has work: always before [`Exports::close`], then until it has
    /// sent (or dropped) everything.
    pub fn pushing(&self) -> bool {
        self.pusher.as_ref().is_some_and(|p| !p.finished())
    }
}

/// `serve()`'s options, checked by lib/export.js (types) and the core (ranges).
#[napi(object)]
pub struct ServeSpec {
    pub host: String,
    pub port: u32,
    pub prefix: String,
    pub per_process: bool,
    pub buckets: Option<Vec<f64>>,
    pub quantiles: Option<Vec<f64>>,
    pub history: u32,
    /// Whether `/metrics` and `/api/self` show panoptic's own metrics.
    pub self_metrics: bool,
    /// The live page's HTML (None: not built).
    pub page: Option<Buffer>,
}

/// `exportStats()`, without the servers' (each NativeServer has its own).
#[napi(object)]
pub struct ExportStats {
    /// Deliveries added into the exports' store.
    pub deliveries: f64,
    /// The InfluxDB pusher's counters (None without the `influx` option).
    pub influx: Option<InfluxStats>,
    /// panoptic's own metrics (docs/self-monitoring.md), families in name order.
    pub own: Vec<OwnFamilyStats>,
}

/// One family of panoptic's own metrics (JS keys them by name, `kind` as `type`).
#[napi(object)]
pub struct OwnFamilyStats {
    pub name: String,
    pub kind: OwnFamilyKind,
    pub unit: Option<String>,
    pub help: String,
    pub samples: Vec<OwnSampleStats>,
}

/// Whether an own family is a counter or a gauge (as the exposition's `# TYPE` says it).
#[napi(string_enum = "lowercase")]
pub enum OwnFamilyKind {
    Counter,
    Gauge,
}

/// One sample of an own family.
#[napi(object)]
pub struct OwnSampleStats {
    pub labels: HashMap<String, String>,
    pub value: f64,
}

fn own_stats(own: &Own) -> Vec<OwnFamilyStats> {
    (own.families().into_iter())
        .map(|f| OwnFamilyStats {
            name: f.name.clone(),
            kind: match f.kind {
                OwnKind::Counter => OwnFamilyKind::Counter,
                OwnKind::Gauge => OwnFamilyKind::Gauge,
            },
            unit: f.unit.map(str::to_string),
            help: f.help.clone(),
            samples: (f.samples.iter())
                .map(|s| OwnSampleStats {
                    labels: s.labels.iter().cloned().collect(),
                    value: s.value,
                })
                .collect(),
        })
        .collect()
}

/// The InfluxDB pusher's counters (docs/influxdb.md).
#[napi(object)]
pub struct InfluxStats {
    pub pushed_batches: f64,
    pub pushed_points: f64,
    pub dropped_batches: f64,
    pub dropped_points: f64,
    pub retries: f64,
    pub failures: f64,
    pub queued_bytes: f64,
    pub last_error: Option<String>,
}

fn influx_stats(s: PushStats) -> InfluxStats {
    InfluxStats {
        pushed_batches: s.pushed_batches as f64,
        pushed_points: s.pushed_points as f64,
        dropped_batches: s.dropped_batches as f64,
        dropped_points: s.dropped_points as f64,
        retries: s.retries as f64,
        failures: s.failures as f64,
        queued_bytes: s.queued_bytes as f64,
        last_error: s.last_error,
    }
}

/// A failed bind as Node words it: `listen EADDRINUSE: address already in use 127.0.0.1:9464`
/// (a host name that does not resolve: `ENOTFOUND`).
fn system_error(e: &std::io::Error, host: &str, port: u16) -> Coded {
    use std::io::ErrorKind::*;
    let code = match e.kind() {
        AddrInUse => "EADDRINUSE",
        AddrNotAvailable => "EADDRNOTAVAIL",
        PermissionDenied => "EACCES",
        _ if std::net::ToSocketAddrs::to_socket_addrs(&(host, port)).is_err() => "ENOTFOUND",
        _ => "EIO",
    };
    coded(code, format!("listen {code}: {e} {host}:{port}"))
}

/// One running server (made by `NativeEngine#serve`).
#[napi]
pub struct NativeServer {
    served: Option<Served>,
    host: String,
    port: u32,
}

/// A server's counters.
#[napi(object)]
pub struct NativeServerStats {
    /// Requests answered (event streams and refusals included).
    pub requests: f64,
    /// Connections accepted, and open now.
    pub connections: f64,
    pub open_connections: u32,
    /// Live page event streams open now.
    pub event_clients: u32,
    /// Connections and requests refused (too many connections, bad or oversized or slow
    /// requests, clients too slow to take an answer).
    pub rejected: f64,
}

#[napi]
impl NativeServer {
    /// The bound address (an IP address).
    #[napi(getter)]
    pub fn host(&self) -> String {
        self.host.clone()
    }

    /// The bound port.
    #[napi(getter)]
    pub fn port(&self) -> u32 {
        self.port
    }

    /// Its counters (all 0 once stopped).
    #[napi]
    pub fn stats(&self) -> NativeServerStats {
        let s = self.served.as_ref().map(Served::stats).unwrap_or_default();
        let r = &s.rejected;
        let rejected = r.connections
            + r.method
            + r.uri_too_long
            + r.headers_too_large
            + r.bad_request
            + r.header_timeout
            + r.write_timeout;
        NativeServerStats {
            requests: s.requests as f64,
            connections: s.connections as f64,
            open_connections: u32::try_from(s.open_connections).unwrap_or(u32::MAX),
            event_clients: u32::try_from(s.event_clients).unwrap_or(u32::MAX),
            rejected: rejected as f64,
        }
    }

    /// Closes the listener and every connection. Idempotent.
    #[napi]
    pub fn stop(&mut self) {
        if let Some(served) = self.served.take() {
            served.stop();
        }
    }
}
