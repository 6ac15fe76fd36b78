// Type-checked (never run) by __test__/types.test.js with `tsc --noEmit`: it must compile against
// index.d.ts, and every line marked @ts-expect-error must be an error.
import Panopticon = require('../..');
import { EventEmitter } from 'events';

const p: Panopticon = new Panopticon({ interval: 1000, scaleFactor: 1000, persist: true, startTime: '0', name: 'web', deliveryDelay: 100, keepAlive: true, maxSeries: 1e5, maxTagSets: 100 });
const q = Panopticon({ transformer: (data, id) => ({ [String(id)]: data }) });
const e: EventEmitter = p;

p.set(['app'], 'version', '1.0.0');
p.inc(null, 'requests');
p.inc(['http', 200], 'hits', 3);
p.sample([], 'queue', 4);
p.timedSample(undefined, 'latency', process.hrtime(process.hrtime()));

const hit: (n?: number) => void = p.bind('inc', ['http'], 'requests');
p.inc(['http'], 'requests', 1, { method: 'GET' });
const api: Panopticon.Scope = p.scope(['api']).scope([1]);
api.bind('sample', null, 'size', { route: '/a' })(3);
api.timedSample([], 'latency', [0, 5]);
p.gauge(['process'], 'rss', () => process.memoryUsage().rss);
p.bind('gauge', ['process'], 'rss')(null);
p.gaugeSet(['process'], () => ({ rss: process.memoryUsage().rss, heap: 1 }));
api.gaugeSet(['pool'], async () => ({ size: 3 }));
p.gaugeSet(['process'], null);
const rt = new Panopticon({ runtime: { eventLoopResolution: 20, arrayBuffers: true } });
rt.collectRuntime();
rt.collectRuntime(false);
const values: Panopticon.GaugeSetValues = { a: 1 };
const r = Panopticon({ histogram: { significantFigures: 2, percentiles: [50, 99.9], reservoir: 'decaying' } });
r.histogram(['db'], 'query', process.hrtime(process.hrtime()));
r.bind('histogram', ['db'], 'rows')(12);
r.rate(['net'], 'bytes', 123456789);
r.meter(['http'], 'requests');
r.bind('meter', ['http'], 'bytes')(512);
hit();
const lat = p.bind('timedSample', ['http'], 'latency');
lat([0, 1000]);

p.on('delivery', (d) => {
  const pid: number = d.meta.pid;
  const dropped: number = d.meta.dropped + d.meta.errors;
  const interval: number = d.interval;
  const master = d.data.master;
  const cluster: Panopticon.Tree = d.data.cluster;
  const late: number = d.meta.late + d.meta.decodeErrors + d.meta.mismatched + d.meta.unmatched + d.meta.invalid + d.meta.overflowed;
  const workerPids: number[] = Object.values(d.meta.workers);
  console.log(pid, dropped, interval, master, cluster, late, workerPids, d.data.threads, d.id, d.name);
});
p.on('reset', (timeStamp) => console.log(timeStamp.toFixed(0)));
p.on('sample', (data, id) => console.log(data, id + 1));
p.on('error', (err) => console.log(err.message));
p.on('warning', (w) => console.log(w.code === 'PANOPTIC_MISMATCH', w.message));

class Last implements Panopticon.Logger<number> {
  value: number;
  constructor(value: number, public timeStamp: number) { this.value = value; }
  update(value: number, timeStamp: number) { this.value = value; this.timeStamp = timeStamp; }
  reset(timeStamp: number) { this.timeStamp = timeStamp; }
  toJSON() { return { type: 'last', value: { val: this.value, timeStamp: this.timeStamp } }; }
  static merge(a: { value: { timeStamp: number } }, b: { value: { timeStamp: number } }) { return a.value.timeStamp >= b.value.timeStamp ? a : b; }
}
Panopticon.registerMethod('last', Last, Number.isFinite);
p.bind('last', ['x'], 'y')(5);
const names: string[] = Panopticon.getLoggerMethodNames();
const n: number = Panopticon.count();
const same: boolean = Panopticon.Panopticon === Panopticon && p instanceof Panopticon && e === p;
console.log(q.endTime, names, n, same);
p.stop();

// Dynamic tracing: a library takes the probe function by injection, idle when none is given.
const { trace } = Panopticon;
function makeClient(opts: { trace?: Panopticon.Trace } = {}) {
  const probe = opts.trace || function () {};
  return (id: number) => probe('client:call', { id });
}
makeClient({ trace })(1);
makeClient()(2);
trace('request:start', { id: 1 });
trace('request:end', null);
trace('tick');
trace.allowRemote();
const socket: string = trace.listen();
console.log(socket.length);

// A panoptic-trace script, typed.
export function local(traces: Panopticon.LocalTraces) {
  traces.on('request:*', (t: Panopticon.TraceObject) => console.log(t.name, t.pid, t.timestamp, t.hostname, t.title));
  traces.on('counts', (counts: Record<string, number>) => console.log(counts));
}
export function remote(traces: Panopticon.RemoteTraces) {
  let n = 0;
  traces.on('request:end', (t) => { n += t.timestamp > 0 ? 1 : 0; });
  traces.on('cleanup', () => traces.emit('counts', { n }));
}

// The filter language: test a series, or keep the matching leaves of a delivery.
const http: Panopticon.Filter = Panopticon.filter("name LIKE 'http.%' AND tags.status IN ('500', '503')");
const passes: boolean = http.test({ path: ['http'], id: 'requests{status="500"}', type: 'inc', process: { role: 'worker', pid: 42, worker: 1 } });
p.on('delivery', (d) => {
  const selected: Panopticon.Delivery = http.select(d);
  console.log(http.expression, passes, selected.data.cluster, selected.meta.pid);
});
try {
  Panopticon.filter('name =');
} catch (e) {
  if (e instanceof SyntaxError) console.log((e as Panopticon.FilterSyntaxError).position);
}

// Exports: a server of every route, pushes to InfluxDB, to a remote write receiver and to an OTLP receiver, all limited by a filter.
const exporting = new Panopticon({
  interval: 1000,
  filter: "name NOT LIKE 'debug.%'",
  influx: { url: 'http://127.0.0.1:8086', db: 'app', precision: 's', tags: { env: 'dev' }, maxQueueBytes: 1 << 20, minBackoff: 50 },
  remoteWrite: {
    url: 'http://127.0.0.1:9090/api/v1/write',
    headers: { 'X-Scope-OrgID': 'team' },
    every: 15000,
    filter: "name LIKE 'http.%'",
    prefix: 'app_',
    buckets: [1, 10, 100],
    perProcess: true,
    labels: { job: 'app' },
    batchPoints: 1000,
  },
  otlp: {
    url: 'http://127.0.0.1:4318/v1/metrics',
    headers: { Authorization: 'Bearer x' },
    protocol: 'http/json',
    temporality: 'delta',
    compression: 'gzip',
    filter: "name LIKE 'http.%'",
    prefix: 'app.',
    buckets: { default: [1, 10, 100], nodejs_gc_duration_seconds: [0.001, 0.01, 0.1, 1, 2, 5] },
    perProcess: true,
    maxQueueBytes: 1 << 20,
    batchPoints: 1000,
    timeout: 5000,
    minBackoff: 50,
    maxBackoff: 5000,
  },
});
exporting.serve({ port: 0, prefix: 'app_', perProcess: true, buckets: [1, 10, 100], quantiles: [0.5, 0.99], history: 60, maxConnections: 128, maxStreams: 16, maxPerClient: 8, selfMetrics: true }).then((served: Panopticon.ServedAddress) => {
  const family: 'IPv4' | 'IPv6' = served.family;
  console.log(served.url, served.address, served.port + 1, family);
  const stats: Panopticon.ExportStats = exporting.exportStats();
  const pushed: number = stats.influx ? stats.influx.pushedPoints + stats.influx.droppedPoints : 0;
  const lastError: string | null = stats.influx && stats.influx.lastError;
  const series: number = stats.remoteWrite ? stats.remoteWrite.pushedPoints + stats.remoteWrite.queuedBytes : 0;
  const rejected: number = stats.otlp ? stats.otlp.rejectedPoints + stats.otlp.pushedPoints : 0;
  console.log(series, rejected);
  console.log(stats.deliveries, pushed, lastError, stats.servers.map((s) => s.url + s.requests + s.openConnections + s.eventClients + s.rejected + s.rejectedBy.perClient + s.evicted.slow));
  const own: Panopticon.SelfMetric | undefined = stats.self.panoptic_engine_series;
  const unit: 'bytes' | null = stats.self.panoptic_engine_bytes.unit;
  console.log(own && own.type, unit, own && own.samples.map((s) => s.labels.worker + s.value));
  exporting.stop();
}, (error: Error & { code?: string }) => console.log(error.code));
q.serve();
// Bucket layouts by metric name, the others' by default.
const layouts: Panopticon.Buckets = { default: [0.005, 0.05, 0.5], http_latency_seconds: [0.1, 1] };
q.serve({ buckets: layouts });
// HTTPS with credentials: PEM as strings or Buffers; a bearer token for scrapers, a password for people.
exporting.serve({
  port: 0,
  tls: { cert: '-----BEGIN CERTIFICATE-----\n...', key: new Uint8Array(0) },
  auth: { bearer: 'token', basic: { user: 'ops', password: 'secret' } },
}).then(() => {
  const server: Panopticon.ServerStats = exporting.exportStats().servers[0];
  console.log(server.rejectedBy.tls + server.rejectedBy.unauthorized);
}, () => undefined);

// Expiry: series idle for 5 intervals are freed; how many an instance holds.
const expiring = new Panopticon({ interval: 1000, expireAfter: 5 });
const held: Panopticon.SeriesStats = expiring.seriesStats();
const registry: number = held.registry === null ? held.engine + held.lookup : held.registry;
console.log(registry, new Panopticon({ persist: true, expireAfter: Infinity }).persist);
expiring.stop();

// @ts-expect-error a path is an array
p.inc('http', 'requests');
// @ts-expect-error timedSample takes an hrtime pair
p.timedSample(null, 'x', 5);
// @ts-expect-error unknown event
p.on('deliveries', () => {});
// @ts-expect-error interval is a number
new Panopticon({ interval: '10' });
// @ts-expect-error a probe name is a string
trace(7);
