// Type definitions for panoptic. Hand-written; `__test__/types/` type-checks an example against
// them with `tsc --noEmit`.

import { EventEmitter } from 'events';

declare namespace Panopticon {
  /** A path element or an id: a string or a finite number (numbers become their string form). */
  type Key = string | number;

  /** Where a datum goes: `data[path...][id]`. null, undefined and [] mean the root. */
  type Path = ReadonlyArray<Key> | null | undefined;

  /** A `process.hrtime()` difference: `[seconds, nanoseconds]`. */
  type HrTime = readonly [number, number];

  interface Options {
    /** Interval length in ms. Default 10000; a value that is not a positive finite number gives the default (with a warning). */
    interval?: number;
    /**
     * Default 1: `inc` rates per ms and times in ms; 1000 gives rates per second and times in
     * seconds (the histogram defaults and Prometheus buckets follow it).
     */
    scaleFactor?: number;
    /** Keep every series across intervals, reset to its empty state at each boundary. Default false. */
    persist?: boolean;
    /** `(data, id) => object` merged into `delivery.data`; `id` is 'master' or a cluster worker id. */
    transformer?: ((data: Tree, id: 'master' | number) => object) | null;
    /** Any value; delivered as `delivery.name`. */
    name?: unknown;
    /** Epoch ms (number, numeric string or Date) on the interval grid `startTime + k * interval`. Default 0. */
    startTime?: number | string | Date;
    /** ms after an interval's end at which the master delivers it. Default interval / 2. */
    deliveryDelay?: number;
    /** How `histogram` series record and report (docs/api.md, "histogram"). */
    histogram?: HistogramOptions;
    /**
     * A filter expression limiting what every export shows (`serve()` routes, InfluxDB pushes, the
     * live page); not the 'delivery' event. A bad one throws a `FilterSyntaxError`.
     */
    filter?: string;
    /** Push every delivery to InfluxDB 1.x (docs/influxdb.md); only a delivering instance pushes. */
    influx?: InfluxOptions;
    /** Push to a Prometheus remote write receiver (docs/remote-write.md); only a delivering instance pushes. */
    remoteWrite?: RemoteWriteOptions;
    /** Push to an OTLP/HTTP metrics receiver (docs/otlp.md); only a delivering instance pushes. */
    otlp?: OtlpOptions;
    /** Keep the process (or thread) alive with the instance's timer, as panopticon 0.3.0 did. Default false. */
    keepAlive?: boolean;
    /** The most series the instance holds in a process; past it, new series record into `panoptic.overflow.<method>`. Default 1000000. */
    maxSeries?: number;
    /** The most tag sets of one metric; past it, new ones record into `id{overflow="true"}`. Default 2000. */
    maxTagSets?: number;
    /** On the master: the most series it holds from all sources; past it, a worker's new series merge into `panoptic.overflow.<method>`. Default 2000000. */
    maxClusterSeries?: number;
    /**
     * Intervals without data after which a series is freed in this process, on the master and in
     * the exports (a `bind()` handle brings it back); a whole number from 1, or `Infinity` for
     * never. Default 10, or `Infinity` with `persist`.
     */
    expireAfter?: number;
    /** Collect the runtime metrics (docs/runtime.md): CPU, memory, heap, GC, event loop, handles, fds. Default false. */
    runtime?: boolean | RuntimeOptions;
  }

  /** The runtime metrics' options (docs/runtime.md). */
  interface RuntimeOptions {
    /** ms between two event-loop delay samples, an integer from 1 to 1000. Default 10. */
    eventLoopResolution?: number;
    /** Also collect `nodejs.array_buffers_bytes` (a `process.memoryUsage()` per interval). Default false. */
    arrayBuffers?: boolean;
  }

  /** A warning (docs/warnings-and-errors.md, "Warnings"): an Error with a stable code. */
  interface Warning extends Error {
    code: 'PANOPTIC_MISMATCH' | 'PANOPTIC_UNMATCHED' | 'PANOPTIC_UNKNOWN_OPTION' | 'PANOPTIC_INVALID_OPTION' | 'PANOPTIC_INVALID_VALUE' | 'PANOPTIC_OVERFLOW' | 'PANOPTIC_GAUGE_SET_FAILED' | 'PANOPTIC_RUNTIME_SAMPLES_DROPPED';
  }

  interface InfluxOptions {
    /** `http://host:8086` (a base path allowed; no credentials, query or fragment; no https). */
    url: string;
    /** Database name. */
    db: string;
    /** Basic authentication: both or neither. */
    username?: string;
    password?: string;
    /** The `rp` to write into. Default: the database's default. */
    retentionPolicy?: string;
    /** Timestamp unit. Default 'ms'. */
    precision?: 'ns' | 'us' | 'ms' | 's';
    /** Written before every measurement. Default ''. */
    prefix?: string;
    /** Also each process's own series, with a `worker` tag. Default false. */
    perProcess?: boolean;
    /** Tags on every point (not '', 'time' nor 'worker'; `host` replaces the host name). */
    tags?: Record<string, string>;
    /** Bound of the queue of batches waiting to be sent, bytes (>= 1024). Default 8 MiB. */
    maxQueueBytes?: number;
    /** Points per request at most. Default 5000. */
    batchPoints?: number;
    /** ms one request may take in all. Default 10000. */
    timeout?: number;
    /** ms: the first and the largest delay before sending a failed batch again. Defaults 100, 30000. */
    minBackoff?: number;
    maxBackoff?: number;
  }

  interface RemoteWriteOptions {
    /** The receiver's write endpoint, `http://host:9090/api/v1/write` (a query allowed; no credentials, fragment, https). */
    url: string;
    /** Headers on every request (authentication, `X-Scope-OrgID`); not those the pusher sets. */
    headers?: Record<string, string>;
    /** ms: push at most one interval per this time. Default: every delivery. */
    every?: number;
    /** A filter expression narrowing the instance's `filter` for this pusher. */
    filter?: string;
    /** Metric name prefix, as `serve()`'s. Default ''. */
    prefix?: string;
    /** Histogram bucket bounds (`le`), as `serve()`'s: every histogram's, or layouts by metric name. */
    buckets?: Buckets;
    /** Also each process's own series, with a `worker` label. Default false. */
    perProcess?: boolean;
    /** Labels on every series (`job`, `instance`, ...; not `__*`, worker, le, quantile); a series' own one of that name becomes `exported_<name>`. */
    labels?: Record<string, string>;
    /** Bound of the queue of batches waiting to be sent, bytes (>= 1024). Default 8 MiB. */
    maxQueueBytes?: number;
    /** Series per request at most. Default 5000. */
    batchPoints?: number;
    /** ms one request may take in all. Default 10000. */
    timeout?: number;
    /** ms: the first and the largest delay before sending a failed batch again. Defaults 100, 30000. */
    minBackoff?: number;
    maxBackoff?: number;
  }

  interface OtlpOptions {
    /** The receiver's metrics endpoint with its path, `http://host:4318/v1/metrics` (a query allowed; no credentials, fragment, https). */
    url: string;
    /** Headers on every request (authentication, tenant); not those the pusher sets. */
    headers?: Record<string, string>;
    /** Default 'http/protobuf'. */
    protocol?: 'http/protobuf' | 'http/json';
    /** Sums, histograms and summaries since the start, or over each interval. Default 'cumulative'. */
    temporality?: 'cumulative' | 'delta';
    /** Compress each request (`Content-Encoding: gzip`). Default 'none'. */
    compression?: 'none' | 'gzip';
    /** ms: push at most once per this time (delta points then cover every interval since the last push). Default: every delivery. */
    every?: number;
    /** A filter expression narrowing the instance's `filter` for this pusher. */
    filter?: string;
    /** Written before every metric name. Default ''. */
    prefix?: string;
    /** Explicit histograms' bounds (where a histogram is not sent as an exponential one), as `serve()`'s `buckets`. */
    buckets?: Buckets;
    /** Also each process's own series, each process a resource with `panoptic.worker`. Default false. */
    perProcess?: boolean;
    /** Bound of the queue of requests waiting to be sent, bytes (>= 1024). Default 8 MiB. */
    maxQueueBytes?: number;
    /** Data points per request at most. Default 5000. */
    batchPoints?: number;
    /** ms one request may take in all. Default 10000. */
    timeout?: number;
    /** ms: the first and the largest delay before sending a failed batch again. Defaults 100, 30000. */
    minBackoff?: number;
    maxBackoff?: number;
  }

  /**
   * Histogram bucket bounds (docs/prometheus.md#buckets): an array is every histogram's; an object
   * gives `default` (every histogram without a layout of its own) and layouts by the name a series
   * has on /metrics without the prefix (`nodejs_gc_duration_seconds`, `http_latency`).
   */
  type Buckets = number[] | BucketLayouts;

  interface BucketLayouts {
    default?: number[];
    [name: string]: number[] | undefined;
  }

  /** `serve()` options (docs/exports.md, "serve"). */
  interface ServeOptions {
    /** Default '127.0.0.1' (loopback). */
    host?: string;
    /** Default 9464; 0 picks a free port. */
    port?: number;
    /** Prometheus metric name prefix. Default ''. */
    prefix?: string;
    /** Also each process's own series on /metrics, with a `worker` label. Default false. */
    perProcess?: boolean;
    /**
     * Prometheus histogram bucket bounds (`le`), increasing, in the histograms' values' unit (taken
     * as given): an array for every histogram, or layouts by metric name (docs/prometheus.md#buckets).
     * Default: 1 ms to 10 s in the unit of times at the instance's scaleFactor
     * (`[1, 2.5, ..., 10000]` at 1, `[0.001, 0.0025, ..., 10]` seconds at 1000); the runtime's
     * `nodejs_gc_duration_seconds`: prom-client's `[0.001, 0.01, 0.1, 1, 2, 5]` seconds.
     */
    buckets?: Buckets;
    /** Quantile gauges (0 to 1) per histogram. Default none. */
    quantiles?: number[];
    /** Intervals the live page's history keeps, 1 to 100000. Default 120. */
    history?: number;
    /** Serve HTTPS only, with this certificate and key (docs/security.md). Default: plain HTTP. */
    tls?: ServeTlsOptions;
    /** Answer only requests with these credentials, every route included (docs/security.md). */
    auth?: ServeAuthOptions;
    /**
     * Connections for scrapes and API requests open at once (new, idle keep-alive, being
     * answered), 1 to 1000000; when full, the oldest one not being answered yields to a new one.
     * Default 256 (docs/serving.md).
     */
    maxConnections?: number;
    /** Live page event streams (`/events`) open at once, besides maxConnections, 1 to 1000000; when full, the oldest yields. Default 64. */
    maxStreams?: number;
    /** Connections (streams included) open at once from one client address (an IPv4 address, an IPv6 /64), 1 to 1000000. Default 64. */
    maxPerClient?: number;
    /** panoptic's own metrics (`panoptic_*`) on `/metrics` and `/api/self`. Default true. */
    selfMetrics?: boolean;
  }

  /** `serve()`'s `tls` option: PEM text, as a string or as `fs.readFileSync` gives it. */
  interface ServeTlsOptions {
    /** The server's certificate, then any intermediate ones (`-----BEGIN CERTIFICATE-----`). */
    cert: string | Uint8Array;
    /** Its private key, unencrypted: PKCS#8 (`PRIVATE KEY`), PKCS#1 (`RSA PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`). */
    key: string | Uint8Array;
  }

  /** `serve()`'s `auth` option: a bearer token, a user and password, or both (either is then taken). */
  interface ServeAuthOptions {
    /** `Authorization: Bearer <token>`: visible ASCII, no spaces. */
    bearer?: string;
    /** HTTP Basic authentication (browsers ask for it): a user without `:`, a non-empty password. */
    basic?: { user: string; password: string };
  }

  /** Where a `serve()` server listens. */
  interface ServedAddress {
    address: string;
    port: number;
    family: 'IPv4' | 'IPv6';
    /** `http://127.0.0.1:9464/` (with a trailing slash; `https://` with the `tls` option). */
    url: string;
  }

  /** A pusher's counters; points are lines for InfluxDB, series (one sample each) for remote write, data points for OTLP. */
  interface PusherStats {
    pushedBatches: number;
    pushedPoints: number;
    droppedBatches: number;
    droppedPoints: number;
    /** Points a receiver took but said it rejected (an OTLP partial success); not in pushedPoints. */
    rejectedPoints: number;
    retries: number;
    failures: number;
    queuedBytes: number;
    lastError: string | null;
  }

  /** What a server refused, by reason (docs/serving.md#counters). */
  interface ServerRejections {
    /** New connections closed at once: every place of maxConnections was being answered. */
    connections: number;
    /** New connections closed at once: their client address had maxPerClient being answered. */
    perClient: number;
    /** 405 */
    method: number;
    /** 414 */
    uriTooLong: number;
    /** 431 */
    headersTooLarge: number;
    /** 400 */
    badRequest: number;
    /** Connections closed with a request head still incomplete after the header timeout. */
    headerTimeout: number;
    /** Connections closed because the client did not take a response in time. */
    writeTimeout: number;
    /** TLS handshakes that failed or did not end in time, plain HTTP to the HTTPS port included (docs/security.md). */
    tls: number;
    /** Requests without the credentials of the `auth` option, answered 401 (docs/security.md). */
    unauthorized: number;
  }

  /** Connections a server closed to make room for a newcomer, by what they were doing. */
  interface ServerEvictions {
    /** Idle keep-alive connections, or new ones that had sent nothing. */
    idle: number;
    /** Connections in the middle of sending a request head. */
    slow: number;
    /** Live page event streams. */
    streams: number;
  }

  interface ServerStats {
    url: string;
    requests: number;
    connections: number;
    openConnections: number;
    eventClients: number;
    /** The sum of rejectedBy. */
    rejected: number;
    rejectedBy: ServerRejections;
    evicted: ServerEvictions;
  }

  /** How many series an instance holds now (docs/api.md, "Expiry"). */
  interface SeriesStats {
    /** Series its engine holds in this process (recorded, not expired). */
    engine: number;
    /** Series its key lookups hold in this process (expired ones a `bind()` handle keeps included). */
    lookup: number;
    /** On a delivering instance, series its registry holds from every source (waiting at most 50 ms for what is queued for merging); null elsewhere. */
    registry: number | null;
  }

  interface ExportStats {
    /** Deliveries the exports received. */
    deliveries: number;
    /** null without the `influx` option, or on an instance that does not deliver. */
    influx: PusherStats | null;
    /** null without the `remoteWrite` option, or on an instance that does not deliver. */
    remoteWrite: PusherStats | null;
    /** null without the `otlp` option, or on an instance that does not deliver. */
    otlp: PusherStats | null;
    servers: ServerStats[];
    /** panoptic's own metrics by family name (docs/self-monitoring.md); counters without `_total`. */
    self: Record<string, SelfMetric>;
  }

  /** One family of panoptic's own metrics. */
  interface SelfMetric {
    type: 'counter' | 'gauge';
    /** 'bytes' where the name ends with `_bytes`, else null. */
    unit: 'bytes' | null;
    help: string;
    samples: Array<{ labels: Record<string, string>; value: number }>;
  }

  /** The InfluxDB pusher's counters (the name before there were other pushers). */
  type InfluxStats = PusherStats;

  interface HistogramOptions {
    /** HDR precision, 1 to 5. Default 3. */
    significantFigures?: number;
    /** Resolution, in the values' unit (> 0). Default 0.001. */
    lowest?: number;
    /** Largest trackable value (>= 2 * lowest); larger values are clamped and counted. Default 3600000. */
    highest?: number;
    /** Reported percentiles (0 to 100): keys p50, p999 (99.9), p0_5 (0.5). Default [50, 75, 90, 95, 99, 99.9]. */
    percentiles?: number[];
    /** Default 'hdr' (exact merge across processes); 'uniform' and 'decaying' are Pandora's sampling reservoirs. */
    reservoir?: 'hdr' | 'uniform' | 'decaying';
  }

  interface SetValue { val: unknown; timeStamp: number }
  interface IncValue { val: number; timeStamp: number }
  interface SampleValue {
    max: number | null;
    min: number | null;
    sigma: number | null;
    average: number | null;
    timeStamp: number;
  }
  interface GaugeValue { val: number | null; timeStamp: number }
  /** `val`: per second; `increase`: the counter's increase behind it. */
  /** Events since the meter was made, and rates per second (mean, 1-, 5- and 15-minute EWMA). */
  interface MeterValue { count: number; meanRate: number; m1: number; m5: number; m15: number; timeStamp: number }
  interface RateValue { val: number | null; increase: number | null; timeStamp: number }
  /** count, min, max, mean, stddev, one key per percentile (p50, ...), clamped, timeStamp. */
  interface HistogramValue {
    count: number;
    min: number | null;
    max: number | null;
    mean: number | null;
    stddev: number | null;
    clamped: number;
    timeStamp: number;
    [percentile: string]: number | null;
  }
  interface TimedSampleValue extends SampleValue {
    count: number;
    total: number;
    scaleFactor: number;
  }

  /** A leaf of the delivery tree. Registered loggers give whatever their `toJSON()` returns. */
  type Leaf =
    | { type: 'set'; value: SetValue }
    | { type: 'inc'; value: IncValue }
    | { type: 'sample'; value: SampleValue }
    | { type: 'timedSample'; value: TimedSampleValue }
    | { type: 'gauge'; value: GaugeValue }
    | { type: 'rate'; value: RateValue }
    | { type: 'meter'; value: MeterValue }
    | { type: 'histogram'; value: HistogramValue };

  /** One process's data for one interval: nested objects down to the leaves. */
  interface Tree { [key: string]: Tree | Leaf | unknown }

  interface DeliveryMeta {
    /** This process's pid. */
    pid: number;
    /** The pid of every cluster worker that reported the interval, by worker id. */
    workers: { [workerId: string]: number };
    /** Snapshots that arrived after their interval was delivered (since the last delivery). */
    late: number;
    /** Messages marked as panoptic's that could not be decoded (since the last delivery). */
    decodeErrors: number;
    /** Snapshots of workers or threads on another grid or with other options, left out (since the last delivery). */
    mismatched: number;
    /** Messages for an instance this master does not have, left out (since the last delivery). */
    unmatched: number;
    /** Connections to the cluster transport's socket refused: not a worker of this master (since the last delivery). */
    refused: number;
    /** Data points dropped by validators in the interval, in every reporting process. */
    dropped: number;
    /** Values replaced by their default in the interval (`inc`'s `n` not a number: counted as 1). */
    invalid: number;
    /** Values recorded into an overflow series in the interval (docs/api.md, "Limits"). */
    overflowed: number;
    /** Exceptions in the interval: registered loggers, validators, serialization, transformers, collisions. */
    errors: number;
  }

  interface Delivery {
    id: number;
    name: unknown;
    /** `interval / scaleFactor`. */
    interval: number;
    /**
     * The merge of every process's transformed data (`{ master, workers: { "1": ... } }` by
     * default), worker threads' trees under `threads` (when any reported), and `cluster`, the
     * exact merge of everything. Each tree is built from native memory when first read (a lazy
     * property that becomes a plain one), so unread trees cost nothing.
     */
    data: {
      master?: Tree;
      workers?: { [workerId: string]: Tree };
      threads?: { [label: string]: Tree };
      cluster: Tree;
      [key: string]: unknown;
    };
    meta: DeliveryMeta;
  }

  /** The panopticon 0.3.0 logger class contract, for `registerMethod`. */
  interface LoggerClass<V = any> {
    new (value: V, timeStamp: number, persistObj: Panopticon | null, scaleFactor: number, interval: number): Logger<V>;
    /** Merges two `toJSON()` leaves (from two processes or threads) for `data.cluster`. */
    merge?(a: any, b: any): object;
  }
  interface Logger<V = any> {
    update(value: V, timeStamp: number): void;
    reset(timeStamp: number): void;
    toJSON(): object;
  }

  /** A bound recorder: `(value) => void`. */
  type Recorder<V> = (value?: V) => void;

  /** What a `gaugeSet` function gives: one finite number per field (a field is a series' id). */
  type GaugeSetValues = { [field: string]: number };

  /**
   * Tags of a series (label names to string values): the series is named
   * `id{key="value",...}` in the delivery tree (keys sorted, values escaped as in Prometheus).
   */
  type Tags = { [label: string]: string };

  /** The logger methods and `bind`, shared by an instance and its scopes. */
  interface Recording {
    /** Records the latest value (any JSON value). */
    set(path: Path, id: Key, value: unknown, tags?: Tags): void;
    /** Adds `n` (a non-finite `n` counts as 1); delivered as a rate. */
    inc(path: Path, id: Key, n?: number, tags?: Tags): void;
    /** Adds a value to a summary; a non-finite value is dropped. */
    sample(path: Path, id: Key, value: number, tags?: Tags): void;
    /** Adds a `process.hrtime()` difference to a summary of times; a non-array is dropped. */
    timedSample(path: Path, id: Key, dt: HrTime, tags?: Tags): void;
    /**
     * Calls `fn` when each interval closes and reports its number (null, counted in
     * `meta.errors`, when it throws or gives no finite number); `null` unregisters.
     */
    gauge(path: Path, id: Key, fn: (() => number) | null, tags?: Tags): void;
    /** Adds a value (or a `process.hrtime()` difference, as ms at scaleFactor 1) to a distribution. */
    histogram(path: Path, id: Key, value: number | HrTime, tags?: Tags): void;
    /** Observes a cumulative counter; reported as its per-second rate (resets and 32/64-bit wraps handled). */
    rate(path: Path, id: Key, cumulative: number, tags?: Tags): void;
    /** Marks `n` events (default 1) on a meter that lives across intervals. */
    meter(path: Path, id: Key, n?: number, tags?: Tags): void;

    /** Resolves the series once and returns a recorder for it. */
    bind(method: 'set', path: Path, id: Key, tags?: Tags): Recorder<unknown>;
    bind(method: 'inc', path: Path, id: Key, tags?: Tags): Recorder<number>;
    bind(method: 'sample', path: Path, id: Key, tags?: Tags): Recorder<number>;
    bind(method: 'timedSample', path: Path, id: Key, tags?: Tags): Recorder<HrTime>;
    bind(method: 'gauge', path: Path, id: Key, tags?: Tags): (fn: (() => number) | null) => void;
    bind(method: 'histogram', path: Path, id: Key, tags?: Tags): Recorder<number | HrTime>;
    bind(method: 'rate', path: Path, id: Key, tags?: Tags): Recorder<number>;
    bind(method: 'meter', path: Path, id: Key, tags?: Tags): Recorder<number>;
    /** A method added with `registerMethod`. */
    bind(method: string, path: Path, id: Key, tags?: Tags): Recorder<unknown>;

    /**
     * Reads `fn` once per interval, when it closes: each field of the object it returns (or of
     * the promise's object, in the interval the promise settles in) is the gauge `(path, field)`.
     * A failed read is counted in `meta.errors` and warned about once; `null` unregisters.
     */
    gaugeSet(path: Path, fn: (() => GaugeSetValues | PromiseLike<GaugeSetValues>) | null): void;

    /** A view whose methods and `bind` record under `path` (scopes nest). */
    scope(path: Path): Scope;
  }

  /** A view of an instance that records under a path prefix (see `Panopticon#scope`). */
  interface Scope extends Recording {
    /** A method added with `registerMethod`. */
    [method: string]: unknown;
  }

  /** The process of a series given to `Filter#test`; a field left out is missing to the filter. */
  interface FilterProcess {
    role: 'master' | 'worker' | 'thread';
    /** A u32 (`process.pid` compares its decimal text). */
    pid?: number;
    /** The cluster worker id (leave it out on the master). */
    worker?: number;
    host?: string;
    title?: string;
  }

  /** A series for `Filter#test`: as the delivery tree places it (`id` possibly tagged). */
  interface FilterSeries {
    path: Path;
    id: Key;
    /** The logger method (`inc`, `sample`, ...). */
    type: string;
    /** Leave it out for a series of the merged cluster view: every `process.*` field is missing. */
    process?: FilterProcess | null;
  }

  /** A compiled filter expression (`Panopticon.filter`, docs/filter.md). */
  interface Filter {
    /** The expression it was compiled from. */
    readonly expression: string;
    /** Whether the series passes the filter. */
    test(series: FilterSeries): boolean;
    /**
     * A new delivery of the same shape holding only the leaves that pass (same objects), with
     * emptied branches removed; each tree's series are read with its process's fields.
     */
    select<D extends Delivery>(delivery: D): D;
  }

  /** What `Panopticon.filter` throws for a bad expression. */
  interface FilterSyntaxError extends SyntaxError {
    /** Where, in characters (code points) from 0, as in the message. */
    position: number;
  }

  /** Dynamic tracing probes (docs/tracing.md). */
  interface Trace {
    /**
     * Emits the probe `name` with the properties of `obj`. One check while no tracer is attached
     * (the process is attachable from the moment panoptic is loaded). Throws only for a
     * non-string `name` or an `obj` that is not an object (a `TypeError`); what `obj` holds is
     * never thrown to the caller.
     */
    (name: string, obj?: object | null): void;
    /**
     * The socket's path. The process listens from the moment panoptic is loaded; when that
     * failed, this tries again and throws the reason (`PANOPTIC_TRACE_FOLDER`, ...).
     */
    listen(): string;
    /** Lets tracers run their `exports.remote` code in this process (also: `PANOPTIC_TRACE_REMOTE=1`). */
    allowRemote(): void;
  }

  /** What a tracer receives: `{ timestamp, hostname, title, pid, name, ...obj }`. */
  interface TraceObject {
    /** `Date.now()` at the `trace()` call. */
    timestamp: number;
    hostname: string;
    /** `process.title` at the call. */
    title: string;
    pid: number;
    /** The probe's name. */
    name: string;
    [key: string]: unknown;
  }

  /** `exports.local(traces)` of a `panoptic-trace` script. */
  interface LocalTraces {
    /** Trace objects whose name matches `pattern`, or the arguments of a remote `traces.emit(name, ...)`. */
    on(pattern: string, fn: (...args: any[]) => void): this;
  }

  /** `exports.remote(traces)` of a `panoptic-trace` script, run inside each traced process. */
  interface RemoteTraces {
    /** Trace objects whose name matches `pattern` (not serialized); `'cleanup'` when the tracer detaches. */
    on(pattern: 'cleanup', fn: () => void | Promise<void>): this;
    on(pattern: string, fn: (trace: TraceObject) => void | Promise<void>): this;
    /** Calls the local handlers of `name` with `args` (sent as JSON). */
    emit(name: string, ...args: unknown[]): void;
  }
}

interface PanopticonEvents {
  delivery: [delivery: Panopticon.Delivery];
  sample: [data: Panopticon.Tree, id: number];
  newInterval: [];
  reset: [timeStamp: number];
  stopping: [];
  error: [error: Error];
  warning: [warning: Panopticon.Warning];
}

/** An instance: collects metrics in this process and delivers them once per interval. */
interface Panopticon extends EventEmitter, Panopticon.Recording {
  /** Instance number in this process, counting from 0. */
  readonly id: number;
  readonly name: unknown;
  readonly interval: number;
  readonly scaleFactor: number;
  readonly persist: boolean;
  /** End (epoch ms) of the interval being recorded. */
  readonly endTime: number;

  /**
   * Starts a native HTTP server of the exports (/metrics, /metrics.json, Pandora's and Panoptes'
   * routes, the live page). Rejects with a TypeError/RangeError for a bad option, an Error with
   * `code` (EADDRINUSE, ...) when it cannot bind, and `PANOPTIC_NOT_DELIVERING` on an instance
   * that does not deliver (a cluster worker, a thread feeding its process).
   */
  serve(options?: Panopticon.ServeOptions): Promise<Panopticon.ServedAddress>;
  /** What the exports did so far. */
  exportStats(): Panopticon.ExportStats;
  /** How many series the instance holds now (what expiry frees). */
  seriesStats(): Panopticon.SeriesStats;

  /** Collects the runtime metrics into this instance (`true` when omitted; `false` stops them). */
  collectRuntime(options?: boolean | Panopticon.RuntimeOptions): void;
  /** Stops timers, cluster listeners and servers, removes all listeners; later records are ignored. */
  stop(): void;

  on<E extends keyof PanopticonEvents>(event: E, listener: (...args: PanopticonEvents[E]) => void): this;
  once<E extends keyof PanopticonEvents>(event: E, listener: (...args: PanopticonEvents[E]) => void): this;
  off<E extends keyof PanopticonEvents>(event: E, listener: (...args: PanopticonEvents[E]) => void): this;
  emit<E extends keyof PanopticonEvents>(event: E, ...args: PanopticonEvents[E]): boolean;
}

interface PanopticonConstructor {
  new (options?: Panopticon.Options): Panopticon;
  /** Calling without `new` works too. */
  (options?: Panopticon.Options): Panopticon;
  readonly prototype: Panopticon;

  /** Adds a logger method to every instance (call it as `p[name](path, id, value)` or via `bind`). */
  registerMethod(name: string, loggerClass: Panopticon.LoggerClass, validator?: ((value: any) => unknown) | null): void;
  /** The names of all logger methods (a copy). */
  getLoggerMethodNames(): string[];
  /** Number of instances constructed in this process. */
  count(): number;
  /** Resets the count. For tests only. */
  _resetCount(): void;
  /** Dynamic tracing: `const { trace } = require('panoptic')`. */
  readonly trace: Panopticon.Trace;
  /**
   * Compiles a filter expression. Throws a `TypeError` for a non-string and a
   * `Panopticon.FilterSyntaxError` (a `SyntaxError` with `position`) for a bad expression.
   */
  filter(expression: string): Panopticon.Filter;
  readonly Panopticon: PanopticonConstructor;
}

declare const Panopticon: PanopticonConstructor;

export = Panopticon;
