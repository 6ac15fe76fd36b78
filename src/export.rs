//! The exports of a delivering instance (docs/exports.md): the exporter fed by each delivery,
//! the instance's `filter`, the pushers (`influx`, `remoteWrite`, `otlp`), and `NativeServer`, one HTTP
//! server started by `serve()`. The servers and the pushers run on native threads; JS only starts
//! and stops them and reads their counters.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use napi::bindgen_prelude::Buffer;
use napi_derive::napi;
use panoptic_core::export::auth::Auth;
use panoptic_core::export::influx::Keep;
use panoptic_core::export::own::{Own, OwnKind};
use panoptic_core::export::push::{self, PushError, PushStats, Pusher, QueueSpec, PUSH_GAUGES};
use panoptic_core::export::routes::{self, Listen, Served, Settings};
use panoptic_core::export::select::Selection;
use panoptic_core::export::server::{BudgetOptions, Limits, Security, ServerStats};
use panoptic_core::export::tls::Tls;
use panoptic_core::export::{Exporter, Origin};
use panoptic_core::filter::Filter;

use crate::error::{coded, Coded, BAD_OPTIONS, BAD_TLS};

/// How long a stopped instance's pusher may go on sending what it queued (on its own thread).
const FLUSH_ON_STOP: Duration = Duration::from_secs(2);

/// The instance options of the exports, their types checked by lib/export.js.
#[napi(object)]
pub struct ExportOptions {
    /// `filter`: the expression limiting what every export shows.
    pub filter: Option<String>,
    /// `influx`: push every delivery to InfluxDB.
    pub influx: Option<InfluxOptions>,
    /// `remoteWrite`: push to a Prometheus remote write receiver.
    pub remote_write: Option<RemoteWriteOptions>,
    /// `otlp`: push to an OTLP/HTTP receiver.
    pub otlp: Option<OtlpOptions>,
}

/// The `influx` option (docs/influxdb.md): lib/export.js checks the types, the core the ranges
/// ([`push::InfluxOptions::new`]). A mirror of the core's `InfluxSpec` (the core has no napi); the `From`
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

impl From<InfluxOptions> for push::InfluxSpec {
    fn from(o: InfluxOptions) -> push::InfluxSpec {
        push::InfluxSpec {
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
            queue: QueueSpec {
                max_queue_bytes: o.max_queue_bytes,
                batch_points: o.batch_points,
                timeout: o.timeout,
                min_backoff: o.min_backoff,
                max_backoff: o.max_backoff,
            },
        }
    }
}

/// Checks the ranges of the `influx` option: the message of the `RangeError` to throw, or
/// nothing.
#[napi]
pub fn check_influx(options: InfluxOptions) -> Option<String> {
    push::InfluxOptions::new(options.into())
        .err()
        .map(|e| e.to_string())
}

/// The `remoteWrite` option (docs/remote-write.md): lib/export.js checks the types, the core the
/// ranges ([`push::RemoteWriteOptions::new`]). A mirror of the core's `RemoteWriteSpec`.
#[napi(object)]
#[derive(Clone)]
pub struct RemoteWriteOptions {
    pub url: Option<String>,
    pub headers: Option<HashMap<String, String>>,
    pub every: Option<f64>,
    /// An expression narrowing the instance's `filter` for this pusher.
    pub filter: Option<String>,
    pub prefix: Option<String>,
    pub buckets: Option<Vec<f64>>,
    /// Layouts by metric name (lib/export.js splits `buckets` given as an object).
    pub named_buckets: Option<HashMap<String, Vec<f64>>>,
    pub per_process: Option<bool>,
    pub labels: Option<HashMap<String, String>>,
    pub max_queue_bytes: Option<f64>,
    pub batch_points: Option<f64>,
    pub timeout: Option<f64>,
    pub min_backoff: Option<f64>,
    pub max_backoff: Option<f64>,
}

impl From<RemoteWriteOptions> for push::RemoteWriteSpec {
    fn from(o: RemoteWriteOptions) -> push::RemoteWriteSpec {
        let RemoteWriteOptions {
            url,
            headers,
            every,
            // The binding's: it narrows the instance's filter into the pusher's `keep`.
            filter: _,
            prefix,
            buckets,
            named_buckets,
            per_process,
            labels,
            max_queue_bytes,
            batch_points,
            timeout,
            min_backoff,
            max_backoff,
        } = o;
        push::RemoteWriteSpec {
            url,
            // Header order does not matter to HTTP; the target sorts labels.
            headers: headers.unwrap_or_default().into_iter().collect(),
            every,
            prefix,
            buckets,
            named_buckets: named(named_buckets),
            per_process,
            labels: labels.unwrap_or_default().into_iter().collect(),
            queue: QueueSpec {
                max_queue_bytes,
                batch_points,
                timeout,
                min_backoff,
                max_backoff,
            },
        }
    }
}

/// Checks the ranges of the `remoteWrite` option (its `filter` is compiled by JS): the message
/// of the `RangeError` to throw, or nothing.
#[napi]
pub fn check_remote_write(options: RemoteWriteOptions) -> Option<String> {
    push::RemoteWriteOptions::new(options.into())
        .err()
        .map(|e| e.to_string())
}

/// The `otlp` option (docs/otlp.md): lib/export.js checks the types, the core the ranges
/// ([`push::OtlpOptions::new`]). A mirror of the core's `OtlpSpec`.
#[napi(object)]
#[derive(Clone)]
pub struct OtlpOptions {
    pub url: Option<String>,
    pub headers: Option<HashMap<String, String>>,
    pub protocol: Option<String>,
    pub temporality: Option<String>,
    pub compression: Option<String>,
    pub every: Option<f64>,
    /// An expression narrowing the instance's `filter` for this pusher.
    pub filter: Option<String>,
    pub prefix: Option<String>,
    pub buckets: Option<Vec<f64>>,
    /// Layouts by metric name (lib/export.js splits `buckets` given as an object).
    pub named_buckets: Option<HashMap<String, Vec<f64>>>,
    pub per_process: Option<bool>,
    pub max_queue_bytes: Option<f64>,
    pub batch_points: Option<f64>,
    pub timeout: Option<f64>,
    pub min_backoff: Option<f64>,
    pub max_backoff: Option<f64>,
}

impl From<OtlpOptions> for push::OtlpSpec {
    fn from(o: OtlpOptions) -> push::OtlpSpec {
        // The filter is the binding's (it becomes the pusher's `keep`).
        let _ = o.filter;
        push::OtlpSpec {
            url: o.url,
            // Header order does not matter to HTTP.
            headers: o.headers.unwrap_or_default().into_iter().collect(),
            protocol: o.protocol,
            temporality: o.temporality,
            compression: o.compression,
            every: o.every,
            prefix: o.prefix,
            buckets: o.buckets,
            named_buckets: named(o.named_buckets),
            per_process: o.per_process,
            queue: QueueSpec {
                max_queue_bytes: o.max_queue_bytes,
                batch_points: o.batch_points,
                timeout: o.timeout,
                min_backoff: o.min_backoff,
                max_backoff: o.max_backoff,
            },
        }
    }
}

/// Checks the ranges of the `otlp` option (its `filter` is compiled by JS): the message of the
/// `RangeError` to throw, or nothing.
#[napi]
pub fn check_otlp(options: OtlpOptions) -> Option<String> {
    push::OtlpOptions::new(options.into())
        .err()
        .map(|e| e.to_string())
}

/// Bucket layouts by name, in name order (an object's key order means nothing to them, and
/// the same options then give the same checks).
fn named(given: Option<HashMap<String, Vec<f64>>>) -> Vec<(String, Vec<f64>)> {
    let mut named: Vec<(String, Vec<f64>)> = given.unwrap_or_default().into_iter().collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    named
}

/// A delivering instance's exports.
pub struct Exports {
    exporter: Exporter,
    selection: Selection,
    /// The InfluxDB pusher, the remote write one, the OTLP one (those given).
    influx: Option<Arc<Pusher>>,
    remote_write: Option<Arc<Pusher>>,
    otlp: Option<Arc<Pusher>>,
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
        // What a pusher sends: the instance's selection, narrowed by the pusher's own `filter`.
        let keep = |filter: Option<&str>, option: &str| -> Result<Keep, Coded> {
            let own = (filter.map(Filter::parse).transpose())
                .map_err(|e| bad(format!("{option}.filter: {e}")))?;
            let keep = match own {
                Some(own) => selection.and(own),
                None => selection.clone(),
            };
            let origin = origin.clone();
            Ok(Arc::new(move |key, process| {
                keep.keeps(&origin, key, process)
            }))
        };
        // Started, and handed every delivery; the store keeps each process's own series only
        // when a pusher sends them per process.
        let start = |pusher: Result<Pusher, PushError>, per_process: bool| {
            if per_process {
                exporter.keep_processes();
            }
            let pusher = pusher.map_err(|e| bad(e.to_string()))?;
            exporter.subscribe(pusher.subscriber());
            Ok::<_, Coded>(Arc::new(pusher))
        };
        let influx = match options.influx {
            None => None,
            Some(given) => {
                let mut push =
                    push::InfluxOptions::new(given.into()).map_err(|e| bad(e.to_string()))?;
                push.lines.keep = Some(keep(None, "influx")?);
                let per_process = push.lines.per_process;
                Some(start(Pusher::influx(push), per_process)?)
            }
        };
        let remote_write = match options.remote_write {
            None => None,
            Some(given) => {
                let filter = given.filter.clone();
                let mut push =
                    push::RemoteWriteOptions::new(given.into()).map_err(|e| bad(e.to_string()))?;
                push.keep = Some(keep(filter.as_deref(), "remoteWrite")?);
                let per_process = push.per_process;
                Some(start(Pusher::remote_write(push), per_process)?)
            }
        };
        let otlp = match options.otlp {
            None => None,
            Some(given) => {
                let filter = given.filter.clone();
                let mut push =
                    push::OtlpOptions::new(given.into()).map_err(|e| bad(e.to_string()))?;
                push.encoding.keep = Some(keep(filter.as_deref(), "otlp")?);
                let per_process = push.encoding.per_process;
                Some(start(Pusher::otlp(push), per_process)?)
            }
        };
        // Each pusher's counters among panoptic's own metrics, by target.
        for (target, pusher) in [
            ("influx", &influx),
            ("remoteWrite", &remote_write),
            ("otlp", &otlp),
        ] {
            if let Some(pusher) = pusher {
                let stats = pusher.clone();
                exporter.add_source(Box::new(move |own| {
                    let what = "panoptic's push to a back-end";
                    let labels = [("target", target)];
                    own.stats("push", what, &stats.stats(), PUSH_GAUGES, &labels);
                }));
            }
        }
        Ok(Exports {
            exporter,
            selection,
            influx,
            remote_write,
            otlp,
        })
    }

    fn pushers(&self) -> impl Iterator<Item = &Arc<Pusher>> {
        (self.influx.iter())
            .chain(&self.remote_write)
            .chain(&self.otlp)
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
            named(spec.named_buckets),
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
        let budgets = BudgetOptions {
            max_connections: spec.max_connections,
            max_streams: spec.max_streams,
            max_per_client: spec.max_per_client,
        };
        let limits = Limits::default().with_budgets(&budgets).map_err(range)?;
        let page = spec.page.map(|page| Arc::from(&page[..]));
        let security = security(spec.tls, spec.auth)?;
        let https = security.tls.is_some();
        let listen = Listen {
            host: &spec.host,
            port,
            limits,
            security,
        };
        let served = routes::serve(
            &self.exporter,
            listen,
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
            https,
        })
    }

    /// What the exports did so far.
    pub fn stats(&self) -> ExportStats {
        let store = self.exporter.store();
        let read = store.read();
        ExportStats {
            deliveries: read.deliveries() as f64,
            influx: self.influx.as_ref().map(|p| push_stats(p.stats())),
            remote_write: self.remote_write.as_ref().map(|p| push_stats(p.stats())),
            otlp: self.otlp.as_ref().map(|p| push_stats(p.stats())),
            own: own_stats(&store.own(&read)),
        }
    }

    /// Stops pushing once the deliveries already handed over are queued: from then, each
    /// pusher's thread has [`FLUSH_ON_STOP`] to send them. Returns at once. The pushers are
    /// kept so their counters stay readable.
    pub fn close(&self) {
        for pusher in self.pushers() {
            let pusher = pusher.clone();
            self.exporter.then(move || pusher.close(FLUSH_ON_STOP));
        }
    }

    /// Whether a pusher still has work: always before [`Exports::close`], then until each has
    /// sent (or dropped) everything.
    pub fn pushing(&self) -> bool {
        self.pushers().any(|p| !p.finished())
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
    /// Layouts by metric name (lib/export.js splits `buckets` given as an object).
    pub named_buckets: Option<HashMap<String, Vec<f64>>>,
    pub quantiles: Option<Vec<f64>>,
    pub history: u32,
    /// Whether `/metrics` and `/api/self` show panoptic's own metrics.
    pub self_metrics: bool,
    /// The live page's HTML (None: not built).
    pub page: Option<Buffer>,
    /// Serve HTTPS with this certificate and key.
    pub tls: Option<TlsSpec>,
    /// Answer only requests with these credentials.
    pub auth: Option<AuthSpec>,
    /// The connection policy's budgets (None: the core's defaults; ranges checked there).
    pub max_connections: Option<f64>,
    pub max_streams: Option<f64>,
    pub max_per_client: Option<f64>,
}

/// `serve()`'s `tls` option (docs/security.md): PEM text (JS turns strings into Buffers).
#[napi(object)]
pub struct TlsSpec {
    pub cert: Buffer,
    pub key: Buffer,
}

/// `serve()`'s `auth` option (docs/security.md).
#[napi(object)]
pub struct AuthSpec {
    pub bearer: Option<String>,
    pub basic: Option<BasicSpec>,
}

/// `auth.basic`.
#[napi(object)]
pub struct BasicSpec {
    pub user: String,
    pub password: String,
}

/// The server's TLS and credentials: a certificate or key that can not be used is a
/// `PANOPTIC_TLS` error, credentials out of range a RangeError (`ERR_OUT_OF_RANGE`); both name
/// the option.
fn security(tls: Option<TlsSpec>, auth: Option<AuthSpec>) -> Result<Security, Coded> {
    let auth = auth
        .map(|auth| {
            let basic = (auth.basic.as_ref()).map(|b| (b.user.as_str(), b.password.as_str()));
            Auth::new(auth.bearer.as_deref(), basic)
        })
        .transpose()
        .map_err(|message| coded("ERR_OUT_OF_RANGE", message))?;
    let tls = tls
        .map(|tls| Tls::from_pem(&tls.cert, &tls.key))
        .transpose()
        .map_err(|e| coded(BAD_TLS, e.to_string()))?;
    Ok(Security { tls, auth })
}

/// `exportStats()`, without the servers' (each NativeServer has its own).
#[napi(object)]
pub struct ExportStats {
    /// Deliveries added into the exports' store.
    pub deliveries: f64,
    /// The InfluxDB pusher's counters (None without the `influx` option).
    pub influx: Option<PusherStats>,
    /// The remote write pusher's counters (None without the `remoteWrite` option); its points
    /// are series (one sample each).
    pub remote_write: Option<PusherStats>,
    /// The OTLP pusher's counters (None without the `otlp` option); its points are data points.
    pub otlp: Option<PusherStats>,
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

/// A pusher's counters (docs/influxdb.md, docs/remote-write.md, docs/otlp.md).
#[napi(object)]
pub struct PusherStats {
    pub pushed_batches: f64,
    pub pushed_points: f64,
    pub dropped_batches: f64,
    pub dropped_points: f64,
    /// Points a server took but said it rejected (an OTLP partial success).
    pub rejected_points: f64,
    pub retries: f64,
    pub failures: f64,
    pub queued_bytes: f64,
    pub last_error: Option<String>,
}

fn push_stats(s: PushStats) -> PusherStats {
    PusherStats {
        pushed_batches: s.pushed_batches as f64,
        pushed_points: s.pushed_points as f64,
        dropped_batches: s.dropped_batches as f64,
        dropped_points: s.dropped_points as f64,
        rejected_points: s.rejected_points as f64,
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
    https: bool,
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
    /// Connections and requests refused: the sum of `rejected_by`.
    pub rejected: f64,
    pub rejected_by: RejectedBy,
    /// Connections closed to make room for a newcomer, by what they were doing.
    pub evicted: EvictedBy,
}

/// What a server refused, by reason (docs/serving.md).
#[napi(object)]
pub struct RejectedBy {
    /// New connections closed at once: no place could be freed.
    pub connections: f64,
    /// New connections closed at once: their client address had all its places answering.
    pub per_client: f64,
    pub method: f64,
    pub uri_too_long: f64,
    pub headers_too_large: f64,
    pub bad_request: f64,
    pub header_timeout: f64,
    pub write_timeout: f64,
    /// TLS handshakes that failed (plain HTTP to the HTTPS port included; docs/security.md).
    pub tls: f64,
    /// Requests without the credentials (401; docs/security.md).
    pub unauthorized: f64,
}

/// What a server closed to make room, by what the connection was doing (docs/serving.md).
#[napi(object)]
pub struct EvictedBy {
    pub idle: f64,
    pub slow: f64,
    pub streams: f64,
}

fn server_stats(s: &ServerStats) -> NativeServerStats {
    let r = &s.rejected;
    let by = RejectedBy {
        connections: r.connections as f64,
        per_client: r.per_client as f64,
        method: r.method as f64,
        uri_too_long: r.uri_too_long as f64,
        headers_too_large: r.headers_too_large as f64,
        bad_request: r.bad_request as f64,
        header_timeout: r.header_timeout as f64,
        write_timeout: r.write_timeout as f64,
        tls: r.tls as f64,
        unauthorized: r.unauthorized as f64,
    };
    NativeServerStats {
        requests: s.requests as f64,
        connections: s.connections as f64,
        open_connections: u32::try_from(s.open_connections).unwrap_or(u32::MAX),
        event_clients: u32::try_from(s.event_clients).unwrap_or(u32::MAX),
        rejected: by.connections
            + by.per_client
            + by.method
            + by.uri_too_long
            + by.headers_too_large
            + by.bad_request
            + by.header_timeout
            + by.write_timeout
            + by.tls
            + by.unauthorized,
        rejected_by: by,
        evicted: EvictedBy {
            idle: s.evicted.idle as f64,
            slow: s.evicted.slow as f64,
            streams: s.evicted.streams as f64,
        },
    }
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

    /// Whether it serves HTTPS (the `tls` option).
    #[napi(getter)]
    pub fn https(&self) -> bool {
        self.https
    }

    /// Its counters (all 0 once stopped).
    #[napi]
    pub fn stats(&self) -> NativeServerStats {
        server_stats(&self.served.as_ref().map(Served::stats).unwrap_or_default())
    }

    /// Closes the listener and every connection. Idempotent.
    #[napi]
    pub fn stop(&mut self) {
        if let Some(served) = self.served.take() {
            served.stop();
        }
    }
}
