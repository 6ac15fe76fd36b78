'use strict';

// Cluster benchmark: what cluster-wide aggregation costs the master, panoptic against prom-client,
// and what an idle master costs. `node benchmark/cluster.js` runs it alone (`--mix idle`: only
// the idle scenario); `npm run bench` runs it after the hot-path benchmark;
// `node benchmark/cluster.js --help` lists options.
//
// Scenarios: W cluster workers (default 8), each with S series (default 15,000), every series
// recorded in every interval, under ['svc', 'route<i>']:
// - counters: S routes with one counter each (id 'requests').
//     panoptic:    bind('inc') handles;
//     prom-client: one Counter with a `route` label, S `.labels(route)` children.
//   The same information on both sides (a count per route), and S Prometheus time series per
//   worker: the "8 workers x 15k series" of REFERENCE.md section 6, which the issue's target is
//   measured against.
// - mixed: S/3 routes, each with a counter ('requests'), a value distribution ('latency') and a
//   duration distribution ('duration').
//     panoptic:    bind('inc') / bind('sample') / bind('timedSample');
//     prom-client: Counter / Histogram / Histogram (default 11 buckets), `.labels(route)` children.
//   Histograms, not Summaries, for prom-client's distributions: they are what aggregates across
//   workers (prom-client adds Summary quantiles across workers, which is wrong), and a Summary's
//   t-digest makes every worker's answer to a scrape several times slower still. Each histogram
//   label set is 14 Prometheus series (11 buckets, +Inf, sum, count): ~48k per worker.
// Each worker records every series once every RECORD ms (default 1000: twice per interval).
// prom-client series are cumulative, so a scrape holds all of them as well.
//
// The master: panoptic has a Panopticon of the same name; each worker ships one snapshot per
// interval, the master merges them and emits 'delivery' at boundary + interval / 2. prom-client's
// master calls AggregatorRegistry#clusterMetrics() once per interval, on the interval grid (what a
// Prometheus scrape of the master does; it has a fixed 5 s timeout).
//
// Measured on the master, per interval ("window"), after the W workers are ready and WARMUP
// intervals have passed:
// - master CPU, gross: process.cpuUsage() delta over the window (user + system, every thread of
//   the process), and per thread from /proc/self/task/*/schedstat: the JS main thread, panoptic's
//   intake thread, the native transport's threads (panoptic-link*), the others. Net: minus an
//   idle baseline (the CPU rate of the same master with the same
//   instrumentation, no workers and no library, measured first) times the window's length. A window
//   runs from 10 ms after one delivery / scrape result to 10 ms after the next, so it holds one
//   interval's worth of messages and one delivery / scrape.
// - longest event-loop block: the max of perf_hooks.monitorEventLoopDelay({ resolution: 1 }) over
//   the window (the 10 ms after the delivery / scrape let the monitor's timer record a block that
//   ended just before).
// - panoptic, in two runs: 'panoptic', whose 'delivery' handler reads only `meta` (the merged
//   view is ready in the delivery, its trees are written and parsed only when read: what a master
//   that exports natively, or reads a few values, pays), and 'panoptic-read', whose handler reads
//   the whole `data.cluster` tree (native rendering + JSON.parse of every merged series: what a
//   master pays to hold the full merged view as JS objects).
//   By wrapping two native methods (NativeEngine#receive, #deliver) and adding 'message'
//   listeners around panoptic's: time in the IPC message handlers, in the native receive (it
//   copies the text and queues it: decoding and merging run on a native thread, counted in the
//   master's CPU but not in its event loop), in the native deliver (wait for that queue, hand
//   over the merged interval), from deliver's return to the 'delivery' handler (the JS
//   delivery code), and whether all W workers made it into every delivery (meta.workers,
//   meta.late, meta.decodeErrors), checking that the cluster view is the exact merge of the
//   workers' views for one route. After the last window (not counted): the time to read
//   data.cluster and every data.workers tree.
// - control: the same panoptic workers (recording, closing and shipping the same messages), and a
//   master with no Panopticon: what the machine and Node's IPC cost the master's event loop
//   without any aggregation, measured over the same windows (10 ms after boundary + interval / 2).
// - prom-client only: the scrape's wall time (clusterMetrics() call to its result or timeout), the
//   exposition size and the number of worker responses per scrape.
// - every worker's own CPU (recording, collecting, shipping / answering scrapes), reported by the
//   worker when it stops.
// Checks (which workers, exactness) run after a window closes and before the next opens: they are
// not counted.
//
// Scenario idle: what a master costs while nothing happens. A fresh master process (this one runs
// an event-loop monitor that wakes it every millisecond) forks W workers that load nothing and do
// nothing, waits --idle-warmup seconds (at least two intervals: the first boundary and delivery
// compile the interval code, and V8 runs its first memory-reducing collection some seconds after
// the fork's allocations: one-off costs, not a rate), then measures process.cpuUsage() (user +
// system, every thread of the master) over --idle-seconds, starting a quarter interval after a
// boundary (a window of whole intervals holds as many boundaries as deliveries); on Linux, also
// each thread's CPU from /proc/self/task/*/schedstat. Runs: the same cluster with no library on
// the master, then for each of --idle-intervals one Panopticon on the master with W workers and
// one with none (standalone). Reported: CPU ms per second, per thread, and the ratios.
//
// The figures are for this machine (2 cores shared by the master and W workers): compare ratios.
// `--profile <dir>` also records a V8 CPU profile of the master during the measured intervals of
// each run (inspector Profiler, 100 us sampling), writes <dir>/<scenario>-<library>.cpuprofile and
// prints its top frames (benchmark/cpuprofile.js); profiling slows the master, so take the numbers
// from a run without it.

const cluster = require('cluster');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { monitorEventLoopDelay } = require('perf_hooks');
const { median, max, sum, fmt, machineBusySeconds, threadsCpuMs } = require('./stats');
const { parseOptions, integerAtLeast, integerFrom, oneOf } = require('./options');

const NAME = 'bench-cluster';
const LIBRARIES = ['control', 'panoptic', 'panoptic-read', 'prom-client'];
const MIXES = ['counters', 'mixed', 'idle'];

// ---- shared fixtures ----------------------------------------------------------------------------

const { MASK, VALUES } = require('./values');
// process.hrtime() differences [s, ns] of VALUES[i] microseconds.
const DT = Array.from(VALUES, (us) => [0, us * 1000]);

// ---- worker -------------------------------------------------------------------------------------

function runWorker() {
  const lib = process.env.BENCH_LIB;
  const mix = process.env.BENCH_MIX;
  const series = Number(process.env.BENCH_SERIES);
  const interval = Number(process.env.BENCH_INTERVAL);
  const recordMs = Number(process.env.BENCH_RECORD_MS);
  // --nice: the workers yield the CPU to the master (what the OS, not the library, decides).
  if (Number(process.env.BENCH_NICE) > 0) os.setPriority(Number(process.env.BENCH_NICE));
  const routes = mix === 'counters' ? series : series / 3;
  let record;
  let stop = () => {};
  let j = 0;
  if (lib === 'panoptic') {
    const Panopticon = require('..');
    const p = new Panopticon({ name: NAME, interval });
    const incs = [];
    const samples = [];
    const timed = [];
    for (let i = 0; i < routes; i++) {
      const at = ['svc', `route${i}`];
      incs.push(p.bind('inc', at, 'requests'));
      if (mix === 'mixed') {
        samples.push(p.bind('sample', at, 'latency'));
        timed.push(p.bind('timedSample', at, 'duration'));
      }
    }
    record = mix === 'counters'
      ? () => {
        for (let i = 0; i < routes; i++) incs[i](1);
      }
      : () => {
        for (let i = 0; i < routes; i++) {
          incs[i](1);
          samples[i](VALUES[(i + j) & MASK]);
          timed[i](DT[(i + j + 7) & MASK]);
        }
        j += 1;
      };
    stop = () => p.stop();
  } else if (lib === 'prom-client') {
    const client = require('prom-client');
    new client.AggregatorRegistry(); // answers the master's requests for this worker's metrics
    const requests = new client.Counter({ name: 'svc_requests_total', help: 'requests', labelNames: ['route'] });
    const latency = mix === 'mixed' && new client.Histogram({ name: 'svc_latency_seconds', help: 'latency', labelNames: ['route'] });
    const duration = mix === 'mixed' && new client.Histogram({ name: 'svc_duration_seconds', help: 'duration', labelNames: ['route'] });
    const incs = [];
    const samples = [];
    const timed = [];
    for (let i = 0; i < routes; i++) {
      const route = `route${i}`;
      incs.push(requests.labels(route));
      if (mix === 'mixed') {
        samples.push(latency.labels(route));
        timed.push(duration.labels(route));
      }
    }
    record = mix === 'counters'
      ? () => {
        for (let i = 0; i < routes; i++) incs[i].inc(1);
      }
      : () => {
        for (let i = 0; i < routes; i++) {
          incs[i].inc(1);
          samples[i].observe(VALUES[(i + j) & MASK] / 1e6);
          const dt = DT[(i + j + 7) & MASK];
          timed[i].observe(dt[0] + dt[1] / 1e9);
        }
        j += 1;
      };
  } else {
    throw new Error(`unknown BENCH_LIB ${lib}`);
  }
  record();
  const timer = setInterval(record, recordMs);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  process.on('message', (msg) => {
    if (msg && msg.bench === 'stop') {
      clearInterval(timer);
      stop();
      const cpu = process.cpuUsage(cpu0);
      // What went through panoptic's native transport (snapshots and bytes), to size a message.
      const transport = lib === 'panoptic' ? require('../binding.js').transportState() : null;
      // This worker's CPU from ready to stop (recording, collecting, shipping / answering scrapes).
      process.send({ bench: 'usage', cpuMs: (cpu.user + cpu.system) / 1000, wallMs: performance.now() - t0, transport }, () => {
        process.disconnect();
      });
      setTimeout(() => process.exit(0), 2000).unref();
    }
  });
  process.on('disconnect', () => {
    clearInterval(timer);
    stop();
  });
  process.send({ bench: 'ready', pid: process.pid });
}

/** An idle worker (scenario idle): loads nothing, does nothing, stays until the master goes. */
function runIdleWorker() {
  // A 'message' listener keeps the IPC channel, and so the worker, alive.
  process.on('message', () => {});
  process.send({ bench: 'ready', pid: process.pid });
}

// ---- options ------------------------------------------------------------------------------------

function parseArgs(argv) {
  return parseOptions(argv, {
    only: { value: null, help: `one run: ${LIBRARIES.join(', ')} (default: all, in this order)`, check: oneOf(LIBRARIES) },
    mix: { value: null, help: `one scenario: ${MIXES.join(', ')} (default: all, in this order; idle only without --only)`, check: oneOf(MIXES) },
    workers: { value: 8, help: 'cluster workers', check: integerAtLeast(1) },
    series: { value: 15000, help: 'series per worker (a multiple of 3)', check: (v) => (Number.isInteger(v) && v >= 3 && v % 3 === 0 ? undefined : 'must be a multiple of 3') },
    interval: { value: 2000, help: 'interval (panoptic) and scrape period (prom-client), ms', check: integerAtLeast(100) },
    warmup: { value: 2, help: 'intervals discarded after the workers are ready', check: integerAtLeast(1) },
    intervals: { value: 6, help: 'measured intervals per library and scenario', check: integerAtLeast(1) },
    baseline: { value: 3, help: 'idle intervals measured first (no workers)', check: integerAtLeast(1) },
    record: { value: 1000, help: 'each worker records every series this often, ms', check: integerAtLeast(10) },
    'idle-intervals': { value: [1000, 10000], help: 'scenario idle: the Panopticon intervals measured, ms', check: integerAtLeast(100) },
    'idle-warmup': { value: 15, help: 'scenario idle: seconds from the workers\' readiness to the window (at least two intervals)', check: integerAtLeast(0) },
    'idle-seconds': { value: 20, help: 'scenario idle: seconds measured per run', check: integerAtLeast(1) },
    json: { value: null, help: 'also write the results as JSON to this file' },
    profile: { value: null, help: 'CPU-profile the master during the measured intervals into this folder' },
    nice: { value: 0, help: 'run the workers at this niceness (1-19: the master gets the CPU first)', check: integerFrom(0, 19) },
    monitor: { value: 1, help: 'the event-loop delay monitor\'s resolution, ms; 0: none (its timer is most of the idle master\'s main thread: without it the main thread\'s CPU is panoptic\'s, and blocks are not measured)', check: integerAtLeast(0) },
  }, 'node benchmark/cluster.js');
}

function routesOf(mix, opts) {
  return mix === 'counters' ? opts.series : opts.series / 3;
}

// ---- measuring ----------------------------------------------------------------------------------

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const now = () => performance.now();

/** Opens and closes measurement windows: CPU time, wall time, longest event-loop block. */
class Meter {
  constructor(resolution) {
    this.eld = resolution > 0 ? monitorEventLoopDelay({ resolution }) : null;
    if (this.eld) this.eld.enable();
    this.cpu0 = null;
    this.t0 = 0;
  }

  start() {
    if (this.eld) this.eld.reset();
    this.cpu0 = process.cpuUsage();
    this.threads0 = threadGroups();
    this.t0 = now();
  }

  stop() {
    const cpu = process.cpuUsage(this.cpu0);
    const wallMs = now() - this.t0;
    const threads = threadGroups();
    const delta = {};
    for (const group of THREAD_GROUPS) delta[group] = threads && this.threads0 ? threads[group] - this.threads0[group] : NaN;
    return {
      wallMs,
      cpuMs: (cpu.user + cpu.system) / 1000,
      userMs: cpu.user / 1000,
      systemMs: cpu.system / 1000,
      maxBlockMs: !this.eld ? NaN : this.eld.count > 0 ? this.eld.max / 1e6 : 0,
      threads: delta,
    };
  }
}

// The master's threads by what they do: the JS main thread (its tid is the pid), panoptic's
// intake thread (decoding and merging), the native transport's threads (accepting, reading
// sockets), and everything else (V8's and libuv's helpers, panoptic's clock and exporter).
const THREAD_GROUPS = ['main', 'intake', 'transport', 'others'];

/** CPU ms so far of the master's threads, by group (Linux: /proc/self/task/*); null elsewhere. */
function threadGroups() {
  const threads = threadsCpuMs(process.pid);
  if (threads === null) return null;
  // (A thread that ends inside a window takes its CPU with it; the master's threads live as long
  // as the run.)
  const groups = { main: 0, intake: 0, transport: 0, others: 0 };
  for (const { tid, name, ms: cpu } of threads) {
    const group = tid === process.pid ? 'main' : name === 'panoptic-intake' ? 'intake' : name.startsWith('panoptic-link') ? 'transport' : 'others';
    groups[group] += cpu;
  }
  return groups;
}

function nextBoundary(interval) {
  return Math.ceil((Date.now() + 1) / interval) * interval;
}

async function sleepUntil(epochMs) {
  const wait = epochMs - Date.now();
  if (wait > 0) await sleep(wait);
}

/** CPU profile of the master (inspector Profiler), started and stopped around measured windows. */
class Profiler {
  constructor(dir) {
    this.dir = dir;
    this.session = null;
  }

  post(method, params) {
    return new Promise((resolve, reject) => {
      this.session.post(method, params, (err, result) => (err ? reject(err) : resolve(result)));
    });
  }

  async start() {
    if (!this.dir) return;
    const inspector = require('inspector');
    this.session = new inspector.Session();
    this.session.connect();
    await this.post('Profiler.enable');
    await this.post('Profiler.setSamplingInterval', { interval: 100 });
    await this.post('Profiler.start');
  }

  async stop(label) {
    if (!this.session) return null;
    const { profile } = await this.post('Profiler.stop');
    this.session.disconnect();
    this.session = null;
    fs.mkdirSync(this.dir, { recursive: true });
    const file = path.join(this.dir, `${label}.cpuprofile`);
    fs.writeFileSync(file, JSON.stringify(profile));
    const { summarize, format } = require('./cpuprofile');
    const summary = summarize(profile);
    console.log(`\n${format(summary, 20, `master CPU profile, ${label} (${file})`).join('\n')}\n`);
    return { file, busyMs: summary.busyMs, self: summary.self.slice(0, 30), inclusive: summary.inclusive.slice(0, 30) };
  }
}

// ---- workers ------------------------------------------------------------------------------------

async function forkWorkers(lib, mix, opts) {
  cluster.setupPrimary({
    exec: __filename,
    args: [],
    // A master run with --cpu-prof must not make every worker write a profile too.
    execArgv: process.execArgv.filter((a) => !a.startsWith('--cpu-prof') && !a.startsWith('--prof')),
    silent: false,
  });
  const workers = [];
  const ready = [];
  for (let i = 0; i < opts.workers; i++) {
    const w = cluster.fork({
      BENCH_LIB: lib,
      BENCH_MIX: mix,
      BENCH_SERIES: String(opts.series),
      BENCH_INTERVAL: String(opts.interval),
      BENCH_RECORD_MS: String(opts.record),
      BENCH_NICE: String(opts.nice),
    });
    workers.push(w);
    ready.push(new Promise((resolve, reject) => {
      const onMessage = (msg) => {
        if (msg && msg.bench === 'ready') {
          w.removeListener('message', onMessage);
          resolve();
        }
      };
      w.on('message', onMessage);
      w.once('exit', (code) => reject(new Error(`${lib} worker ${w.id} exited (${code}) before it was ready`)));
    }));
  }
  let timer;
  await Promise.race([
    Promise.all(ready),
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`${lib} workers not ready after 120 s`)), 120000); }),
  ]);
  clearTimeout(timer);
  return workers;
}

/** Stops the workers; resolves to each one's { cpuMs, wallMs } since it was ready (when it said). */
async function stopWorkers(workers) {
  return Promise.all(workers.map((w) => new Promise((resolve) => {
    let usage = null;
    if (w.isDead()) return resolve(usage);
    w.on('message', (msg) => {
      if (msg && msg.bench === 'usage') usage = { cpuMs: msg.cpuMs, wallMs: msg.wallMs, transport: msg.transport };
    });
    const kill = setTimeout(() => w.process.kill('SIGKILL'), 10000);
    w.once('exit', () => {
      clearTimeout(kill);
      resolve(usage);
    });
    try {
      w.send({ bench: 'stop' });
    } catch {
      w.process.kill();
    }
  })));
}

/** All workers' CPU per interval, from their reports. */
function workersCpu(usages, opts) {
  const known = usages.filter(Boolean);
  if (known.length === 0) return null;
  return sum(known.map((u) => (u.cpuMs * opts.interval) / u.wallMs)) * (usages.length / known.length);
}

// ---- runs ---------------------------------------------------------------------------------------

/** The panoptic workers, and no instance on the master (see the header). */
async function runControl(mix, meter, baseline, opts) {
  const deliveryTime = () => nextBoundary(opts.interval) + opts.interval / 2 + 10;
  const windows = [];
  let workers = [];
  let usages = [];
  try {
    workers = await forkWorkers('panoptic', mix, opts);
    for (let i = 0; i <= opts.warmup; i++) await sleepUntil(deliveryTime());
    meter.start();
    for (let i = 0; i < opts.intervals; i++) {
      await sleepUntil(deliveryTime());
      const w = meter.stop();
      meter.start();
      windows.push({ ...w, netCpuMs: w.cpuMs - baseline.cpuPerMs * w.wallMs });
      process.stderr.write(`${mix}-control: window ${i + 1}: cpu ${w.cpuMs.toFixed(0)} ms, block ${w.maxBlockMs.toFixed(1)} ms\n`);
    }
  } finally {
    usages = await stopWorkers(workers);
  }
  return { windows, profile: null, workersCpuMsPerInterval: workersCpu(usages, opts) };
}

/** The master alone (no workers, no library), with the same instrumentation: CPU rate, blocks. */
async function measureBaseline(meter, opts) {
  await sleepUntil(nextBoundary(opts.interval));
  const windows = [];
  meter.start();
  for (let i = 0; i < opts.baseline; i++) {
    await sleepUntil(nextBoundary(opts.interval));
    await sleep(10);
    windows.push(meter.stop());
    meter.start();
  }
  const cpu = sum(windows.map((w) => w.cpuMs));
  const wall = sum(windows.map((w) => w.wallMs));
  // The JS main thread's share: the event-loop monitor's 1 ms timer, mostly.
  const mainPerMs = sum(windows.map((w) => w.threads.main)) / wall;
  return { windows, cpuPerMs: cpu / wall, mainPerMs, maxBlockMs: max(windows.map((w) => w.maxBlockMs)) };
}

async function runPanoptic(mix, meter, baseline, opts, profiler, readCluster) {
  const { NativeEngine } = require('../binding.js');
  const Panopticon = require('..');
  const hr = process.hrtime.bigint;
  const ms = (ns) => Number(ns) / 1e6;
  const label = `${mix}-panoptic${readCluster ? '-read' : ''}`;

  // Per-interval accumulators, reset by each delivery.
  const fresh = () => ({ messages: 0, handlersMs: 0, maxHandlerMs: 0, receiveMs: 0, snapshotChars: 0 });
  let acc = fresh();
  let lastDeliver = null;

  const proto = NativeEngine.prototype;
  const origReceive = proto.receive;
  const origDeliver = proto.deliver;
  // Signature-agnostic: the snapshot text is the string argument.
  proto.receive = function receive(...args) {
    const t0 = hr();
    const resyncs = origReceive.apply(this, args);
    acc.receiveMs += ms(hr() - t0);
    const text = args.find((a) => typeof a === 'string');
    acc.snapshotChars += text === undefined ? 0 : text.length;
    return resyncs;
  };
  proto.deliver = function deliver(...args) {
    const t0 = hr();
    const delivered = origDeliver.apply(this, args);
    const t1 = hr();
    lastDeliver = { ms: ms(t1 - t0), start: t0, end: t1 };
    return delivered;
  };

  // 'message' listeners before and after panoptic's (cluster 'fork' listeners run in order).
  let handlerStart = 0n;
  const before = (w) => w.on('message', (msg) => {
    if (msg && msg.__panoptic !== undefined) handlerStart = hr();
  });
  const after = (w) => w.on('message', (msg) => {
    if (msg && msg.__panoptic !== undefined) {
      const t = ms(hr() - handlerStart);
      acc.handlersMs += t;
      acc.maxHandlerMs = Math.max(acc.maxHandlerMs, t);
      acc.messages += 1;
    }
  });
  cluster.on('fork', before);
  const p = new Panopticon({ name: NAME, interval: opts.interval });
  cluster.on('fork', after);

  const t0 = Date.now();
  let workers = [];
  const routes = routesOf(mix, opts);
  const windows = [];
  let deliveries = 0;
  let profile = null;
  let usages = [];
  try {
    workers = await forkWorkers('panoptic', mix, opts);
    console.error(`${label}: ${workers.length} workers ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    await new Promise((resolve, reject) => {
      p.on('delivery', (d) => {
        const tHandler = hr();
        const late = d.meta.late; // what every handler reads
        let readClusterMs = NaN;
        if (readCluster) {
          const ta = hr();
          void d.data.cluster;
          readClusterMs = ms(hr() - ta);
        }
        const info = {
          readClusterMs,
          deliverMs: lastDeliver ? lastDeliver.ms : NaN,
          jsMs: lastDeliver ? ms(tHandler - lastDeliver.end) : NaN,
          // One synchronous stretch: native deliver, the JS delivery code, the handler's reads.
          deliveryBlockMs: lastDeliver ? ms(hr() - lastDeliver.start) : NaN,
          ...acc,
        };
        acc = fresh();
        lastDeliver = null;
        setTimeout(async () => {
          try {
            const w = meter.stop();
            deliveries += 1;
            const last = deliveries === opts.warmup + opts.intervals;
            if (last) profile = await profiler.stop(label);
            const ids = Object.keys(d.meta.workers || {});
            // Not measured: reading every tree and checking that the cluster view is the exact
            // merge of the workers'. Only after the last window: the garbage of nine parsed
            // 15k-leaf trees would otherwise be collected inside the next windows.
            const checked = last;
            let clusterReadMs = NaN;
            let workersReadMs = NaN;
            let exact = null;
            if (checked) try {
              let ta = hr();
              const clusterTree = d.data.cluster;
              clusterReadMs = ms(hr() - ta);
              ta = hr();
              for (const id of Object.keys(d.data.workers || {})) void d.data.workers[id];
              workersReadMs = ms(hr() - ta);
              const route = `route${deliveries % routes}`;
              let count = 0;
              let rate = 0;
              for (const id of ids) {
                const leaf = d.data.workers[id].svc[route];
                rate += leaf.requests.value.val;
                if (mix === 'mixed') count += leaf.duration.value.count;
              }
              const c = clusterTree.svc[route];
              exact = Math.abs(c.requests.value.val - rate) <= 1e-9 * Math.max(1, rate) &&
                (mix !== 'mixed' || c.duration.value.count === count) &&
                Object.keys(clusterTree.svc).length === routes;
            } catch {
              exact = false; // a worker or the cluster view lacks the route
            }
            if (readCluster) clusterReadMs = info.readClusterMs;
            const row = {
              ...w,
              netCpuMs: w.cpuMs - baseline.cpuPerMs * w.wallMs,
              ...info,
              clusterReadMs,
              workersReadMs,
              workersInDelivery: ids.length,
              metaLate: late,
              metaDecodeErrors: d.meta.decodeErrors,
              exact,
            };
            if (deliveries === opts.warmup) await profiler.start();
            if (deliveries > opts.warmup) windows.push(row);
            process.stderr.write(`${label}: delivery ${deliveries}${deliveries > opts.warmup ? '' : ' (warm-up)'}: ` +
              `cpu ${row.cpuMs.toFixed(0)} ms, block ${row.maxBlockMs.toFixed(1)} ms, ${ids.length} workers\n`);
            if (last) {
              resolve();
            } else {
              meter.start();
            }
          } catch (err) {
            reject(err);
          }
        }, 10);
      });
      meter.start();
    });
  } finally {
    p.stop();
    cluster.removeListener('fork', before);
    cluster.removeListener('fork', after);
    proto.receive = origReceive;
    proto.deliver = origDeliver;
    usages = await stopWorkers(workers);
  }
  // The snapshots that went through the native transport (all but a worker's first ones).
  const native = usages.filter((u) => u && u.transport && u.transport.sent > 0).map((u) => u.transport);
  const transport = native.length === 0 ? null : {
    workers: native.length,
    snapshots: sum(native.map((t) => t.sent)),
    bytes: sum(native.map((t) => t.bytes)),
    lastBytes: median(native.map((t) => t.lastBytes)),
    lost: sum(native.map((t) => t.lost)),
  };
  return { windows, profile, workersCpuMsPerInterval: workersCpu(usages, opts), transport };
}

async function runPromClient(mix, meter, baseline, opts, profiler) {
  const client = require('prom-client');
  const registry = new client.AggregatorRegistry();
  const label = `${mix}-prom-client`;
  let responses = 0;
  const onMessage = (worker, msg) => {
    if (msg && msg.type === 'prom-client:getMetricsRes') responses += 1;
  };
  cluster.on('message', onMessage);
  const t0 = Date.now();
  let workers = [];
  const windows = [];
  let profile = null;
  let usages = [];
  const routes = routesOf(mix, opts);
  try {
    workers = await forkWorkers('prom-client', mix, opts);
    console.error(`${label}: ${workers.length} workers ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    meter.start();
    for (let s = 1; s <= opts.warmup + opts.intervals; s++) {
      await sleepUntil(nextBoundary(opts.interval));
      responses = 0;
      const t1 = now();
      let text = '';
      let error = null;
      try {
        text = await registry.clusterMetrics();
      } catch (err) {
        error = err.message;
      }
      const scrapeMs = now() - t1;
      const answered = responses;
      await sleep(10);
      const w = meter.stop();
      // Checks (not measured): the last route of each metric is in the exposition.
      const last = `route="route${routes - 1}"`;
      const complete = !error && text.includes(`svc_requests_total{${last}}`) &&
        (mix !== 'mixed' || (text.includes(`svc_latency_seconds_bucket{le="+Inf",${last}}`) &&
          text.includes(`svc_duration_seconds_count{${last}}`)));
      let lines = 0;
      for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) lines += 1;
      const row = {
        ...w,
        netCpuMs: w.cpuMs - baseline.cpuPerMs * w.wallMs,
        scrapeMs,
        expositionMB: text.length / 1e6,
        expositionLines: lines,
        workersAnswered: answered,
        complete,
        error,
      };
      text = '';
      if (s === opts.warmup) await profiler.start();
      if (s > opts.warmup) windows.push(row);
      process.stderr.write(`${label}: scrape ${s}${s > opts.warmup ? '' : ' (warm-up)'}: cpu ${row.cpuMs.toFixed(0)} ms, ` +
        `block ${row.maxBlockMs.toFixed(1)} ms, scrape ${scrapeMs.toFixed(0)} ms, ${answered} workers answered` +
        `${error ? `, error: ${error}` : ''}\n`);
      if (s === opts.warmup + opts.intervals) profile = await profiler.stop(label);
      meter.start();
    }
  } finally {
    cluster.removeListener('message', onMessage);
    usages = await stopWorkers(workers);
  }
  // The snapshots that went through the native transport (all but a worker's first ones).
  const native = usages.filter((u) => u && u.transport && u.transport.sent > 0).map((u) => u.transport);
  const transport = native.length === 0 ? null : {
    workers: native.length,
    snapshots: sum(native.map((t) => t.sent)),
    bytes: sum(native.map((t) => t.bytes)),
    lastBytes: median(native.map((t) => t.lastBytes)),
    lost: sum(native.map((t) => t.lost)),
  };
  return { windows, profile, workersCpuMsPerInterval: workersCpu(usages, opts), transport };
}

/**
 * Scenario idle, in a master process of its own (see the header): BENCH_IDLE_MASTER holds
 * { workers, interval (0: no Panopticon), warmupMs, windowMs }. Tells its parent when the window
 * opens ({ bench: 'window' }: the parent reads this process's threads from /proc, here it would
 * count in the window), then sends { bench: 'idle', cpuMs, wallMs, warmupCpuMs, warmupWallMs } (the
 * warm-up runs from the workers' readiness to the window) and waits for { bench: 'done' }.
 */
async function runIdleMaster() {
  const { workers: count, interval, warmupMs, windowMs } = JSON.parse(process.env.BENCH_IDLE_MASTER);
  const p = interval > 0 ? new (require('..'))({ name: NAME, interval }) : null;
  cluster.setupPrimary({ exec: __filename, args: [], execArgv: [], silent: false });
  const workers = [];
  const ready = [];
  for (let i = 0; i < count; i++) {
    const w = cluster.fork({ BENCH_LIB: 'idle' });
    workers.push(w);
    ready.push(new Promise((resolve, reject) => {
      const onMessage = (msg) => {
        if (msg && msg.bench === 'ready') {
          w.removeListener('message', onMessage);
          resolve();
        }
      };
      w.on('message', onMessage);
      w.once('exit', (code) => reject(new Error(`idle worker ${w.id} exited (${code}) before it was ready`)));
    }));
  }
  await Promise.all(ready);
  const warm0 = process.cpuUsage();
  const tw = now();
  await sleep(Math.max(warmupMs, 2 * interval));
  if (interval > 0) await sleepUntil(nextBoundary(interval) + interval / 4);
  const warm = process.cpuUsage(warm0);
  const warmupWallMs = now() - tw;
  const done = new Promise((resolve) => {
    process.on('message', (msg) => {
      if (msg && msg.bench === 'done') resolve();
    });
  });
  process.send({ bench: 'window' });
  const cpu0 = process.cpuUsage();
  const t0 = now();
  await sleep(windowMs);
  const cpu = process.cpuUsage(cpu0);
  const wallMs = now() - t0;
  process.send({ bench: 'idle', cpuMs: (cpu.user + cpu.system) / 1000, wallMs, warmupCpuMs: (warm.user + warm.system) / 1000, warmupWallMs });
  await done;
  if (p) p.stop();
  for (const w of workers) w.process.kill();
  process.disconnect();
}

/** Scenario idle: one fresh master per run (runIdleMaster), one after another. */
async function runIdle(opts) {
  const { fork } = require('child_process');
  const runs = [{ label: `${opts.workers} workers, no panoptic`, workers: opts.workers, interval: 0 }];
  for (const interval of opts.idleIntervals) {
    runs.push({ label: `${opts.workers} workers, panoptic ${interval} ms`, workers: opts.workers, interval });
    runs.push({ label: `no workers, panoptic ${interval} ms (standalone)`, workers: 0, interval });
  }
  for (const run of runs) {
    const config = { workers: run.workers, interval: run.interval, warmupMs: opts.idleWarmup * 1000, windowMs: opts.idleSeconds * 1000 };
    run.result = await new Promise((resolve, reject) => {
      let result = null;
      let threads0 = null;
      const child = fork(__filename, [], { env: { ...process.env, BENCH_IDLE_MASTER: JSON.stringify(config) }, execArgv: [] });
      child.on('message', (msg) => {
        if (msg && msg.bench === 'window') threads0 = threadsCpuMs(child.pid);
        if (msg && msg.bench === 'idle') {
          const threads1 = threadsCpuMs(child.pid);
          result = { ...msg, threads: null };
          if (threads0 !== null && threads1 !== null) {
            const before = new Map(threads0.map((t) => [t.tid, t.ms]));
            result.threads = threads1.map((t) => ({ name: t.name, main: t.tid === child.pid, ms: t.ms - (before.get(t.tid) ?? 0) }));
          }
          child.send({ bench: 'done' });
        }
      });
      child.once('exit', (code) => (result ? resolve(result) : reject(new Error(`idle master (${run.label}) exited (${code}) without a result`))));
    });
    const r = run.result;
    run.cpuMsPerSecond = (r.cpuMs * 1000) / r.wallMs;
    run.warmupCpuMsPerSecond = (r.warmupCpuMs * 1000) / r.warmupWallMs;
    process.stderr.write(`idle: ${run.label}: ${run.cpuMsPerSecond.toFixed(2)} ms CPU per second ` +
      `(warm-up: ${run.warmupCpuMsPerSecond.toFixed(2)})\n`);
  }
  return runs;
}

// ---- report -------------------------------------------------------------------------------------

function table(header, rows) {
  return [
    `| ${header.join(' | ')} |`,
    `| ${header.map((h, i) => (i === 0 ? '---' : '---:')).join(' | ')} |`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
}

function summarizeRun(run) {
  const col = (k) => run.windows.map((w) => w[k]);
  return {
    intervals: run.windows.length,
    netCpuMs: { median: median(col('netCpuMs')), max: max(col('netCpuMs')) },
    cpuMs: { median: median(col('cpuMs')), max: max(col('cpuMs')) },
    maxBlockMs: { median: median(col('maxBlockMs')), max: max(col('maxBlockMs')) },
    threads: Object.fromEntries(THREAD_GROUPS.map((g) => [g, median(run.windows.map((w) => w.threads[g]))])),
    workersCpuMsPerInterval: run.workersCpuMsPerInterval,
  };
}

function reportScenario(mix, runs, baseline, opts, promVersion) {
  const verdict = {};
  const routes = routesOf(mix, opts);
  console.log();
  console.log(mix === 'counters'
    ? `### counters: ${opts.workers} workers x ${opts.series} counters (panoptic inc; prom-client Counter, ${opts.series} label values)`
    : `### mixed: ${opts.workers} workers x ${opts.series} series = ${routes} routes x (counter + value distribution + duration distribution) ` +
      '(panoptic inc/sample/timedSample; prom-client Counter/Histogram/Histogram)');
  console.log();
  const rows = [];
  for (const lib of LIBRARIES) {
    if (!runs[lib]) continue;
    const s = runs[lib].summary;
    const failed = lib === 'prom-client' ? runs[lib].windows.filter((w) => !w.complete).length : 0;
    const name = {
      control: 'control: the same panoptic workers, no instance on the master',
      panoptic: 'panoptic (delivery, handler reads meta)',
      'panoptic-read': 'panoptic (delivery, handler reads all of data.cluster)',
      'prom-client': `prom-client ${promVersion} (clusterMetrics)${failed ? ` [${failed} of ${runs[lib].windows.length} scrapes failed]` : ''}`,
    }[lib];
    rows.push([
      name,
      fmt(s.cpuMs.median),
      ...THREAD_GROUPS.map((g) => fmt(s.threads[g])),
      fmt(s.netCpuMs.median),
      fmt(s.maxBlockMs.median),
      fmt(s.maxBlockMs.max),
      fmt(s.workersCpuMsPerInterval),
    ]);
  }
  console.log(table(['master, per interval (medians)', 'CPU ms (gross)', 'JS main thread', 'intake thread', 'transport threads', 'other threads',
    'CPU ms (net of idle)', 'longest block ms', 'longest block ms (max)', 'all workers\' CPU ms'], rows));

  for (const lib of ['panoptic', 'panoptic-read']) {
    if (!runs[lib]) continue;
    const w = runs[lib].windows;
    const col = (k) => w.map((r) => r[k]);
    const b = (k, d) => `${fmt(median(col(k)), d)} / ${fmt(max(col(k)), d)}`;
    console.log();
    console.log(`${lib}, where the master's time goes (per interval, median / max):`);
    console.log();
    console.log(table(['part', 'median / max'], [
      ['IPC \'message\' handlers (all workers; includes native receive)', `${b('handlersMs')} ms`],
      ['&nbsp;&nbsp;of which native receive (queue the text; decoded and merged on a native thread)', `${b('receiveMs')} ms`],
      ['native deliver (hand over the merged interval)', `${b('deliverMs')} ms`],
      ['deliver\'s return to the \'delivery\' handler (JS)', `${b('jsMs')} ms`],
      ...(lib === 'panoptic-read' ? [['reading data.cluster in the handler (native render + JSON.parse)', `${b('readClusterMs')} ms`]] : []),
      ['one synchronous stretch: native deliver to the end of the handler\'s reads', `${b('deliveryBlockMs')} ms`],
      ['longest single IPC \'message\' handler', `${b('maxHandlerMs')} ms`],
      ...(lib === 'panoptic' ? [['reading data.cluster, after the last window (not counted)', `${b('clusterReadMs')} ms`]] : []),
      ['reading every data.workers tree, after the last window (not counted)', `${b('workersReadMs')} ms`],
      ['snapshot messages received over IPC', b('messages', 0)],
      ['snapshot text per IPC message', `${fmt(median(w.map((r) => r.snapshotChars / Math.max(1, r.messages) / 1000)))} KB`],
      ...(runs[lib].transport ? [[
        'snapshots through the native transport (all runs\' workers)',
        `${runs[lib].transport.snapshots} from ${runs[lib].transport.workers} workers, ${fmt(runs[lib].transport.bytes / runs[lib].transport.snapshots / 1000)} KB each ` +
          `(the first carries the keys); a steady one (a worker's last): ${fmt(runs[lib].transport.lastBytes / 1000)} KB, ` +
          `${fmt(runs[lib].transport.lastBytes / opts.series, 2)} bytes per series; ${runs[lib].transport.lost} lost`,
      ]] : []),
      ['workers in meta.workers (min)', `${fmt(Math.min(...col('workersInDelivery')), 0)} of ${opts.workers}`],
      ['meta.late / meta.decodeErrors (sum over intervals)', `${sum(col('metaLate'))} / ${sum(col('metaDecodeErrors'))}`],
      ['cluster view = exact merge of the workers\' (one route, checked on the last delivery)', `${col('exact').filter((x) => x === true).length} of ${col('exact').filter((x) => x !== null).length} checked`],
    ]));
  }
  if (runs['prom-client']) {
    const w = runs['prom-client'].windows;
    const col = (k) => w.map((r) => r[k]);
    const errors = [...new Set(col('error').filter(Boolean))];
    console.log();
    console.log('prom-client scrapes (median / max):');
    console.log();
    console.log(table(['part', 'median / max'], [
      ['clusterMetrics() wall time', `${fmt(median(col('scrapeMs')))} / ${fmt(max(col('scrapeMs')))} ms`],
      ['exposition text', `${fmt(median(col('expositionMB')))} MB, ${fmt(median(col('expositionLines')), 0)} lines`],
      ['workers answering in time (min)', `${Math.min(...col('workersAnswered'))} of ${opts.workers}`],
      ['complete scrapes (last route of each metric present, no error)', `${col('complete').filter(Boolean).length} of ${w.length}${errors.length ? ` (${errors.join('; ')})` : ''}`],
    ]));
  }

  if (runs['panoptic-read'] && runs['prom-client']) {
    const read = runs['panoptic-read'].summary;
    const peer = runs['prom-client'].summary;
    verdict.readCpuRatioMedian = peer.netCpuMs.median / read.netCpuMs.median;
    verdict.readBlockRatioMax = peer.maxBlockMs.max / read.maxBlockMs.max;
    console.log();
    console.log(`prom-client / panoptic reading all of data.cluster: master CPU ${fmt(verdict.readCpuRatioMedian)}x (medians); ` +
      `longest block ${fmt(verdict.readBlockRatioMax)}x (maxima)`);
  }
  if (runs.panoptic && runs['prom-client']) {
    const ours = runs.panoptic.summary;
    const peer = runs['prom-client'].summary;
    verdict.grossCpuRatioMedian = peer.cpuMs.median / ours.cpuMs.median;
    verdict.mainThreadMs = ours.threads.main;
    console.log();
    console.log(`target (whole master >= 30x less CPU than prom-client's clusterMetrics(), gross, medians): ` +
      `${verdict.grossCpuRatioMedian >= 30 ? 'met' : 'MISSED'}: ${fmt(verdict.grossCpuRatioMedian)}x (${fmt(ours.cpuMs.median)} ms against ${fmt(peer.cpuMs.median)} ms per interval)`);
    // Gross, the main thread holds the instrumentation's own 1 ms timer (the idle baseline's
    // main thread): panoptic's part is what is above it.
    verdict.mainThreadNetMs = ours.threads.main - baseline.mainPerMs * opts.interval;
    console.log(`target (master JS main thread <= 1 ms CPU per interval, median): ${verdict.mainThreadNetMs <= 1 ? 'met' : 'MISSED'}: ` +
      `${fmt(verdict.mainThreadNetMs)} ms above the idle baseline's main thread (${fmt(ours.threads.main)} ms gross, baseline ${fmt(baseline.mainPerMs * opts.interval)} ms` +
      (runs.control ? `; control, no instance: ${fmt(runs.control.summary.threads.main)} ms gross)` : ')'));
    verdict.cpuRatioMedian = peer.netCpuMs.median / ours.netCpuMs.median;
    verdict.cpuRatioMax = peer.netCpuMs.max / ours.netCpuMs.max;
    verdict.blockRatioMax = peer.maxBlockMs.max / ours.maxBlockMs.max;
    verdict.promClientComplete = runs['prom-client'].windows.every((w) => w.complete);
    console.log();
    if (!(ours.netCpuMs.median > 0)) verdict.cpuRatioMedian = NaN; // panoptic within the baseline's noise
    if (!(ours.netCpuMs.max > 0)) verdict.cpuRatioMax = NaN;
    console.log(`prom-client / panoptic: master CPU ${fmt(verdict.cpuRatioMedian)}x (medians), ${fmt(verdict.cpuRatioMax)}x (maxima); ` +
      `longest block ${fmt(verdict.blockRatioMax)}x (maxima)` +
      `${verdict.promClientComplete ? '' : ' (prom-client scrapes failed: its figures are for work it did not finish)'}`);
    console.log(`target (>= 20x less master CPU than prom-client): ${!Number.isFinite(verdict.cpuRatioMedian) ? 'n/a (panoptic is within the idle baseline\'s noise)' : verdict.cpuRatioMedian >= 20 ? 'met' : `MISSED: ${fmt(verdict.cpuRatioMedian)}x; panoptic needs ${fmt(20 / verdict.cpuRatioMedian)}x less master CPU (<= ${fmt(peer.netCpuMs.median / 20)} ms per interval)`}`);
  }
  if (runs.panoptic) {
    const block = runs.panoptic.summary.maxBlockMs.max;
    const w = runs.panoptic.windows;
    const own = Math.max(max(w.map((r) => r.deliveryBlockMs)), max(w.map((r) => r.maxHandlerMs)));
    verdict.blockTargetMet = block <= 5;
    verdict.longestPanopticStretchMs = own;
    console.log(`target (panoptic's longest synchronous stretch on the master <= 1 ms): ${own <= 1 ? 'met' : 'MISSED'}: ${fmt(own)} ms`);
    if (Number.isNaN(block)) console.log('target (longest master event-loop block <= 5 ms): not measured (--monitor 0)');
    else console.log(`target (longest master event-loop block <= 5 ms): ${block <= 5 ? 'met' : `MISSED: ${fmt(block)} ms, ${fmt(block / 5)}x the target`}; ` +
      `longest synchronous stretch in panoptic's own code: ${fmt(own)} ms (idle baseline's longest block: ${fmt(baseline.maxBlockMs)} ms)`);
    if (runs.control) {
      const control = runs.control.summary.maxBlockMs;
      verdict.controlMaxBlockMs = control.max;
      console.log(`control (same workers, no instance on the master): longest block ${fmt(control.median)} ms (median) / ${fmt(control.max)} ms (max); ` +
        `panoptic's ${fmt(runs.panoptic.summary.maxBlockMs.median)} / ${fmt(block)} ms`);
    }
  }
  return verdict;
}

/** Scenario idle's table and ratios; returns its verdict. */
function reportIdle(runs, opts) {
  console.log();
  console.log(`### idle: a master that does nothing, ${opts.workers} idle workers (no library in them); ` +
    `${opts.idleSeconds} s measured after ${opts.idleWarmup} s (at least two intervals)`);
  console.log();
  const perSecond = (run, pick) => {
    const threads = run.result.threads;
    if (threads === null) return NaN;
    return (sum(threads.filter(pick).map((t) => t.ms)) * 1000) / run.result.wallMs;
  };
  const native = (t) => t.name.startsWith('panoptic-');
  console.log(table(['master, idle', 'CPU ms per second (all threads)', 'JS thread', 'panoptic\'s threads', 'other threads (V8, libuv)',
    'warm-up, CPU ms per second (one-off costs)'],
  runs.map((run) => [
    run.label,
    fmt(run.cpuMsPerSecond),
    fmt(perSecond(run, (t) => t.main)),
    fmt(perSecond(run, native)),
    fmt(perSecond(run, (t) => !t.main && !native(t))),
    fmt(run.warmupCpuMsPerSecond),
  ])));
  const control = runs[0].cpuMsPerSecond;
  const verdict = { controlMsPerSecond: control, intervals: {} };
  console.log();
  for (const interval of opts.idleIntervals) {
    const withWorkers = runs.find((r) => r.interval === interval && r.workers > 0).cpuMsPerSecond;
    const standalone = runs.find((r) => r.interval === interval && r.workers === 0).cpuMsPerSecond;
    verdict.intervals[interval] = { withWorkers, standalone, workersRatio: withWorkers / standalone, controlRatio: withWorkers / control };
    console.log(`panoptic ${interval} ms, idle master with ${opts.workers} workers: ${fmt(withWorkers)} ms CPU per second; ` +
      `${fmt(withWorkers / standalone)}x a standalone instance's ${fmt(standalone)} (1x: independent of the worker count); ` +
      `the same cluster without panoptic: ${fmt(control)} (${fmt(withWorkers / control)}x, +${fmt(withWorkers - control)} ms per second)`);
  }
  return verdict;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const started = Date.now();
  const cpuModel = (os.cpus()[0] || {}).model || 'unknown';
  const promVersion = require('prom-client/package.json').version;
  const libs = opts.only ? [opts.only] : LIBRARIES;
  const mixes = opts.mix ? [opts.mix] : MIXES;
  console.log(`panoptic cluster benchmark: node ${process.version}, ${os.cpus().length} cpus (${cpuModel}), prom-client ${promVersion}`);
  if (mixes.some((mix) => mix !== 'idle')) {
    console.log(`${opts.workers} workers x ${opts.series} series, scenarios ${mixes.join(', ')}; interval ${opts.interval} ms; ` +
      `each series recorded every ${opts.record} ms; ${opts.warmup} warm-up + ${opts.intervals} measured intervals per run`);
  } else {
    console.log(`scenario idle: ${opts.workers} idle workers; intervals ${opts.idleIntervals.join(', ')} ms; ` +
      `${opts.idleSeconds} s measured after ${opts.idleWarmup} s`);
  }
  if (opts.profile) console.log(`profiling the master into ${opts.profile}: the numbers are inflated by the profiler`);

  const results = {};
  const busyBefore = machineBusySeconds();
  const ownBefore = process.cpuUsage();
  // Scenario idle first, with no library choice (with --only, only when --mix idle asks for it):
  // its masters are processes of their own, measured while this one sleeps (the event-loop
  // monitor made next would wake it every millisecond).
  if (mixes.includes('idle') && (!opts.only || opts.mix === 'idle')) results.idle = await runIdle(opts);
  const loaded = mixes.filter((mix) => mix !== 'idle');
  let baseline = null;
  if (loaded.length > 0) {
    const meter = new Meter(opts.monitor);
    const profiler = new Profiler(opts.profile);
    baseline = await measureBaseline(meter, opts);
    console.error(`baseline: ${(baseline.cpuPerMs * opts.interval).toFixed(1)} ms CPU per ${opts.interval} ms idle, longest block ${baseline.maxBlockMs.toFixed(2)} ms`);
    for (const mix of loaded) {
      results[mix] = {};
      for (const lib of libs) {
        const run = lib === 'prom-client'
          ? await runPromClient(mix, meter, baseline, opts, profiler)
          : lib === 'control'
            ? await runControl(mix, meter, baseline, opts)
            : await runPanoptic(mix, meter, baseline, opts, profiler, lib === 'panoptic-read');
        run.summary = summarizeRun(run);
        results[mix][lib] = run;
      }
    }
  }
  const busyAfter = machineBusySeconds();
  const own = process.cpuUsage(ownBefore);

  const verdicts = {};
  if (baseline !== null) {
    console.log();
    console.log(`idle baseline (master with the instrumentation, no workers): ${fmt(baseline.cpuPerMs * opts.interval)} ms CPU per ` +
      `${opts.interval} ms interval, longest block ${fmt(baseline.maxBlockMs)} ms`);
    for (const mix of loaded) verdicts[mix] = reportScenario(mix, results[mix], baseline, opts, promVersion);
  }
  if (results.idle) verdicts.idle = reportIdle(results.idle, opts);

  const elapsed = (Date.now() - started) / 1000;
  const others = busyBefore === null || busyAfter === null ? null : busyAfter - busyBefore - (own.user + own.system) / 1e6;
  console.log();
  if (baseline !== null) {
    console.log('CPU: process.cpuUsage() of the master over each interval (user + system, all threads); net = minus the idle');
    console.log('baseline rate times the window length. Longest block: max of monitorEventLoopDelay (1 ms resolution) in the');
    console.log('window; it includes the 1 ms timer period and any time the OS did not run the master (2 cores shared');
    console.log('with the workers). Workers\' CPU: what all workers reported using, per interval, from ready to stop.');
  }
  console.log(`total ${elapsed.toFixed(0)} s; besides the master (${((own.user + own.system) / 1e6).toFixed(1)} CPU-s), the workers and ` +
    `any other process used ${others === null ? '?' : others.toFixed(1)} CPU-s`);

  if (opts.json) {
    const report = {
      date: new Date().toISOString(),
      machine: { cpus: os.cpus().length, cpu: cpuModel, platform: `${os.platform()} ${os.release()} ${os.arch()}` },
      node: process.version,
      promClient: promVersion,
      config: opts,
      elapsedSeconds: elapsed,
      masterCpuSeconds: (own.user + own.system) / 1e6,
      workersAndOthersCpuSeconds: others,
      baseline,
      results,
      verdicts,
    };
    fs.mkdirSync(path.dirname(path.resolve(opts.json)), { recursive: true });
    fs.writeFileSync(opts.json, `${JSON.stringify(report, null, 2)}\n`);
    console.log(`wrote ${opts.json}`);
  }
}

// ---- entry --------------------------------------------------------------------------------------

if (cluster.isWorker) {
  if (process.env.BENCH_LIB === 'idle') runIdleWorker();
  else runWorker();
} else if (process.env.BENCH_IDLE_MASTER) {
  runIdleMaster().catch((err) => {
    console.error(err);
    process.exitCode = 1;
    for (const w of Object.values(cluster.workers || {})) w.process.kill();
  });
} else {
  main().catch((err) => {
    console.error(err);
    process.exitCode = 1;
    for (const w of Object.values(cluster.workers || {})) w.process.kill();
  });
}
