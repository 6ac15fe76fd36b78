'use strict';

// Hot-path benchmark: the cost of one record, panoptic against panopticon 0.3.0, prom-client,
// @opentelemetry/sdk-metrics, node:perf_hooks, hdr-histogram-js (WebAssembly) and a plain JS field
// (the floor), in two scenarios, counter and distribution.
// `node benchmark/hotpath.js` runs it alone; `npm run bench` runs it as its part "hot-path" (in a
// process of its own, as every part); `--help` lists options.
//
// Method
// - One tinybench sample = CALLS back-to-back calls of the recorder inside one task function,
//   timed with process.hrtime.bigint() around the loop and reported through `overriddenDuration`
//   (per call). Timing one call at a time would mostly measure the timer (tens of ns).
// - Every task has its own loop function, so each call site sees one callee (monomorphic) and V8
//   can inline it, as it would in an application's hot function. A shared generic loop would make
//   the call site megamorphic and penalize the cheapest recorders most.
// - A round runs every task of every scenario once (tinybench runs tasks in sequence), with
//   tinybench's per-task warm-up; the task order rotates from round to round. A first round is
//   run and discarded to let V8 tier up. Reported per task: the median across rounds of each
//   round's median ns/op, and the p25-p75 of those per-round medians. Ratios are computed per
//   round (peer / ours, or ours / floor) and their median across rounds is reported.
// - All instances use interval 1000 ms, are created before the first round and stopped after the
//   last, so interval rotations (about one per second) happen inside the measured loops, as they
//   would in an application. OpenTelemetry has a registered reader (a PeriodicExportingMetricReader
//   exporting every 1000 ms to an in-memory exporter, delta temporality): without a reader the
//   SDK's instruments record nothing and the comparison would be meaningless.
// - Tags / labels / attributes: the same 3 (method, route, status) for everyone, in one object
//   reused on every call (as an application passes a constant or a per-request object).
// - Values come from a precomputed array of integers >= 1, indexed with a mask.

const os = require('os');
const { createHistogram } = require('perf_hooks');
const { Bench } = require('tinybench');
const { quantile, fmt } = require('./stats');
const { judge, table, show } = require('./targets');
const { parseOptions, integerAtLeast, above, atLeast, writeJson } = require('./options');
const hdr = require('hdr-histogram-js');
const promClient = require('prom-client');
const otel = require('@opentelemetry/sdk-metrics');
const Panoptic = require('..');
const Panopticon = require('panopticon');

const opts = parseOptions(process.argv.slice(2), {
  json: { value: null, help: 'also write the results as JSON to this file' },
  rounds: { value: 9, help: 'measured rounds', check: integerAtLeast(1) },
  time: { value: 500, help: 'ms per task per round', check: above(0) },
  'warmup-time': { value: 100, help: 'tinybench warm-up per task, ms', check: atLeast(0) },
}, 'node benchmark/hotpath.js');

// ---- fixtures ---------------------------------------------------------------------------------

const CALLS = 10000; // recorder calls per tinybench sample
const INTERVAL = 1000;

const { MASK, VALUES } = require('./values');
const DT = [0, 1234567]; // a constant process.hrtime() difference: 1.234567 ms
const TAGS = { method: 'GET', route: '/api/users', status: '200' };
const LABEL_NAMES = Object.keys(TAGS);

const ours = new Panoptic({ name: 'bench', interval: INTERVAL });
const peer = new Panopticon({ name: 'bench', interval: INTERVAL });

// Liveness check: panoptic must really have recorded what we measured (not dropped it).
const seen = { requests: 0, latency: 0, duration: 0, size: 0 };
ours.on('sample', (data) => {
  const http = data && data.http;
  if (!http) return;
  for (const k of Object.keys(seen)) if (http[k]) seen[k] += 1;
});

const incHandle = ours.bind('inc', ['http'], 'requests');
const sampleHandle = ours.bind('sample', ['http'], 'latency');
const timedHandle = ours.bind('timedSample', ['http'], 'duration');
const histogramHandle = ours.bind('histogram', ['http'], 'size');
const histogram = createHistogram();
const promCounter = new promClient.Counter({ name: 'bench_requests_total', help: 'requests', registers: [] });
const promCounterLabels = new promClient.Counter({ name: 'bench_tagged_requests_total', help: 'requests', labelNames: LABEL_NAMES, registers: [] });
const promHistogram = new promClient.Histogram({ name: 'bench_latency', help: 'latency', registers: [] });
const promHistogramLabels = new promClient.Histogram({ name: 'bench_tagged_latency', help: 'latency', labelNames: LABEL_NAMES, registers: [] });
const otelExporter = new otel.InMemoryMetricExporter(otel.AggregationTemporality.DELTA);
const otelProvider = new otel.MeterProvider({
  readers: [new otel.PeriodicExportingMetricReader({ exporter: otelExporter, exportIntervalMillis: INTERVAL, exportTimeoutMillis: INTERVAL })],
});
const otelMeter = otelProvider.getMeter('bench');
const otelCounter = otelMeter.createCounter('requests');
const otelHistogram = otelMeter.createHistogram('latency');
let wasmHistogram = null; // hdr-histogram-js, built once its WebAssembly module is loaded (runHotPath)
const floor = { x: 0, sum: 0 };

let stopped = false;
/** Stops every instance with timers (idempotent); resolves when OpenTelemetry has shut down. */
function stopFixtures() {
  if (stopped) return Promise.resolve();
  stopped = true;
  ours.stop();
  peer.stop();
  return otelProvider.shutdown();
}

// ---- tasks ------------------------------------------------------------------------------------

const hrtime = process.hrtime.bigint;

function result(t0) {
  const ms = Number(hrtime() - t0) / 1e6;
  return { overriddenDuration: ms / CALLS, overriddenIterationCost: ms };
}

// What panoptic's rows are called in the ratio column.
const OURS = {
  'bind-inc': 'bind(inc)',
  inc: 'p.inc',
  'inc-tags': 'p.inc + tags',
  'bind-sample': 'bind(sample)',
  'bind-histogram': 'bind(histogram)',
  sample: 'p.sample',
  'histogram-tags': 'p.histogram + tags',
  'bind-timed': 'bind(timedSample)',
};

// [scenario, task, key (targets name tasks by it), counterpart (the panoptic task a peer is
// compared with: the same kind of call, resolved or by path, with or without tags), loop]
const TASKS = [
  ['counter', 'panoptic bind(inc) handle()', 'bind-inc', null, () => {
    const t0 = hrtime();
    for (let i = 0; i < CALLS; i++) incHandle();
    return result(t0);
  }],
  ['counter', 'panoptic p.inc(path, id, 1)', 'inc', null, () => {
    const t0 = hrtime();
    for (let i = 0; i < CALLS; i++) ours.inc(['http'], 'requests', 1);
    return result(t0);
  }],
  ['counter', 'panoptic p.inc(path, id, 1, tags)', 'inc-tags', null, () => {
    const t0 = hrtime();
    for (let i = 0; i < CALLS; i++) ours.inc(['http'], 'requests', 1, TAGS);
    return result(t0);
  }],
  ['counter', 'panopticon 0.3.0 p.inc(path, id, 1)', 'panopticon-inc', 'inc', () => {
    const t0 = hrtime();
    for (let i = 0; i < CALLS; i++) peer.inc(['http'], 'requests', 1);
    return result(t0);
  }],
  ['counter', 'prom-client Counter.inc()', 'prom-inc', 'bind-inc', () => {
    const t0 = hrtime();
    for (let i = 0; i < CALLS; i++) promCounter.inc();
    return result(t0);
  }],
  ['counter', 'prom-client Counter.inc(labels)', 'prom-inc-labels', 'inc-tags', () => {
    const t0 = hrtime();
    for (let i = 0; i < CALLS; i++) promCounterLabels.inc(TAGS);
    return result(t0);
  }],
  ['counter', 'OpenTelemetry 2 counter.add(1, attributes)', 'otel-add', 'inc-tags', () => {
    const t0 = hrtime();
    for (let i = 0; i < CALLS; i++) otelCounter.add(1, TAGS);
    return result(t0);
  }],
  ['counter', 'floor: plain object o.x += 1', 'floor-inc', 'bind-inc', () => {
    floor.x = 0; // stays a small integer (Smi): a field past 2^30 turns into a slower heap number
    const t0 = hrtime();
    for (let i = 0; i < CALLS; i++) floor.x += 1;
    return result(t0);
  }],
  ['distribution', 'panoptic bind(sample) handle(v)', 'bind-sample', null, () => {
    const t0 = hrtime();
    for (let i = 0; i < CALLS; i++) sampleHandle(VALUES[i & MASK]);
    return result(t0);
  }],
  ['distribution', 'panoptic bind(histogram) handle(v)', 'bind-histogram', null, () => {
    const t0 = hrtime();
    for (let i = 0; i < CALLS; i++) histogramHandle(VALUES[i & MASK]);
    return result(t0);
  }],
  ['distribution', 'panoptic bind(timedSample) handle(dt)', 'bind-timed', null, () => {
    const t0 = hrtime();
    for (let i = 0; i < CALLS; i++) timedHandle(DT);
    return result(t0);
  }],
  ['distribution', 'panoptic p.sample(path, id, v)', 'sample', null, () => {
    const t0 = hrtime();
    for (let i = 0; i < CALLS; i++) ours.sample(['http'], 'latency', VALUES[i & MASK]);
    return result(t0);
  }],
  ['distribution', 'panoptic p.histogram(path, id, v, tags)', 'histogram-tags', null, () => {
    const t0 = hrtime();
    for (let i = 0; i < CALLS; i++) ours.histogram(['http'], 'size', VALUES[i & MASK], TAGS);
    return result(t0);
  }],
  ['distribution', 'panopticon 0.3.0 p.sample(path, id, v)', 'panopticon-sample', 'sample', () => {
    const t0 = hrtime();
    for (let i = 0; i < CALLS; i++) peer.sample(['http'], 'latency', VALUES[i & MASK]);
    return result(t0);
  }],
  ['distribution', 'panopticon 0.3.0 p.timedSample(path, id, dt)', 'panopticon-timed', 'bind-timed', () => {
    const t0 = hrtime();
    for (let i = 0; i < CALLS; i++) peer.timedSample(['http'], 'duration', DT);
    return result(t0);
  }],
  ['distribution', 'perf_hooks histogram.record(v)', 'perf-hooks', 'bind-histogram', () => {
    const t0 = hrtime();
    for (let i = 0; i < CALLS; i++) histogram.record(VALUES[i & MASK]);
    return result(t0);
  }],
  ['distribution', 'hdr-histogram-js 3 (wasm) h.recordValue(v)', 'hdr-wasm', 'bind-histogram', () => {
    const t0 = hrtime();
    for (let i = 0; i < CALLS; i++) wasmHistogram.recordValue(VALUES[i & MASK]);
    return result(t0);
  }],
  ['distribution', 'prom-client Histogram.observe(v)', 'prom-observe', 'bind-histogram', () => {
    const t0 = hrtime();
    for (let i = 0; i < CALLS; i++) promHistogram.observe(VALUES[i & MASK]);
    return result(t0);
  }],
  ['distribution', 'prom-client Histogram.observe(labels, v)', 'prom-observe-labels', 'histogram-tags', () => {
    const t0 = hrtime();
    for (let i = 0; i < CALLS; i++) promHistogramLabels.observe(TAGS, VALUES[i & MASK]);
    return result(t0);
  }],
  ['distribution', 'OpenTelemetry 2 histogram.record(v, attributes)', 'otel-record', 'histogram-tags', () => {
    const t0 = hrtime();
    for (let i = 0; i < CALLS; i++) otelHistogram.record(VALUES[i & MASK], TAGS);
    return result(t0);
  }],
  ['distribution', 'floor: plain object o.sum += v', 'floor-sum', 'bind-sample', () => {
    const t0 = hrtime();
    for (let i = 0; i < CALLS; i++) floor.sum += VALUES[i & MASK];
    return result(t0);
  }],
].map(([scenario, name, key, counterpart, fn]) => ({ scenario, name, key, counterpart, fn, medians: [], means: [] }));

const byKey = new Map(TASKS.map((t) => [t.key, t]));
// The "vs bind handle" column of each scenario divides by this task.
const BIND = { counter: 'bind-inc', distribution: 'bind-sample' };

// Issue 5's hot-path targets: the median across rounds of (num / den) in the same round.
const HOT_PATH_TARGETS = [
  ["bind('inc') handle: at most 3x a plain JS field increment", 'bind-inc', 'floor-inc', { max: 3 }],
  ['inc(path, id, n): at least 3x faster than panopticon 0.3.0 inc', 'panopticon-inc', 'inc', { min: 3 }],
  ['inc(path, id, n, 3 tags): at least 5x faster than prom-client inc(3 labels)', 'prom-inc-labels', 'inc-tags', { min: 5 }],
  ["bind('sample'): at least 3x faster than panopticon 0.3.0 sample", 'panopticon-sample', 'bind-sample', { min: 3 }],
  ['sample(path, id, n): at least 3x faster than panopticon 0.3.0 sample', 'panopticon-sample', 'sample', { min: 3 }],
  ["bind('histogram'): at most half of perf_hooks record", 'bind-histogram', 'perf-hooks', { max: 0.5 }],
];

// ---- running ----------------------------------------------------------------------------------

async function runRound(round, time, warmupTime) {
  const bench = new Bench({ time, warmupTime, warmupIterations: 4, iterations: 16, throws: true });
  const n = TASKS.length;
  const order = TASKS.map((_, i) => TASKS[(i + round) % n]);
  for (const t of order) bench.add(t.name, t.fn, { async: false });
  await bench.run();
  const out = new Map();
  for (const task of bench.tasks) {
    const r = task.result;
    if (r.state !== 'completed') throw new Error(`task "${task.name}" ended in state ${r.state}`);
    out.set(task.name, { median: r.latency.p50 * 1e6, mean: r.latency.mean * 1e6, samples: r.latency.samplesCount });
  }
  // tinybench runs synchronous tasks without returning to the event loop: let the instances'
  // timers (panoptic's deliveries, OpenTelemetry's exports) run between rounds, as in an app.
  await new Promise((resolve) => setTimeout(resolve, 1));
  return out;
}

async function runHotPath() {
  const started = Date.now();
  const cpu = (os.cpus()[0] || {}).model || 'unknown';
  console.log(`panoptic hot-path benchmark: node ${process.version}, ${os.cpus().length} cpus (${cpu})`);
  console.log(`${opts.rounds} rounds (+1 discarded warm-up round), ${opts.time} ms per task per round, ${CALLS} calls per sample, interval ${INTERVAL} ms`);

  await hdr.initWebAssembly();
  wasmHistogram = hdr.build({ useWebAssembly: true });
  await runRound(0, Math.min(200, opts.time), opts.warmupTime);
  const perRound = []; // each round's Map of task name -> { median, mean }
  for (let round = 1; round <= opts.rounds; round++) {
    const r = await runRound(round, opts.time, opts.warmupTime);
    perRound.push(r);
    for (const t of TASKS) {
      t.medians.push(r.get(t.name).median);
      t.means.push(r.get(t.name).mean);
    }
    process.stderr.write(`round ${round}/${opts.rounds} done (${((Date.now() - started) / 1000).toFixed(0)} s)\n`);
  }
  // Let the last interval's data reach the liveness checks (panoptic's 'sample' at its next
  // boundary, OpenTelemetry's export), then stop.
  await new Promise((resolve) => setTimeout(resolve, INTERVAL + 100));
  await stopFixtures();
  const otelPoints = otelExporter.getMetrics().flatMap((rm) => rm.scopeMetrics.flatMap((s) => s.metrics.map((m) => m.descriptor.name)));

  /** Median across rounds of (task a / task b) in the same round. */
  const ratioOf = (a, b) => quantile(perRound.map((r) => r.get(byKey.get(a).name).median / r.get(byKey.get(b).name).median), 0.5);

  const rows = TASKS.map((t) => ({
    scenario: t.scenario,
    task: t.name,
    key: t.key,
    medianNs: quantile(t.medians, 0.5),
    p25Ns: quantile(t.medians, 0.25),
    p75Ns: quantile(t.medians, 0.75),
    meanNs: quantile(t.means, 0.5),
    perRoundMedianNs: t.medians,
    perRoundMeanNs: t.means,
    vsBind: ratioOf(t.key, BIND[t.scenario]),
    counterpart: t.counterpart,
    // peer / ours; for the floor, floor / ours (below 1x: the floor is cheaper)
    vsCounterpart: t.counterpart ? ratioOf(t.key, t.counterpart) : null,
  }));

  // ---- table ----------------------------------------------------------------------------------
  const header = ['scenario', 'task', 'median ns/op', 'p25-p75 (rounds)', 'mean ns/op', 'vs bind handle', 'compared with', 'this / ours'];
  const lines = rows.map((r) => [
    r.scenario,
    r.task,
    fmt(r.medianNs),
    `${fmt(r.p25Ns)}-${fmt(r.p75Ns)}`,
    fmt(r.meanNs),
    show(r.vsBind, 'x'),
    r.counterpart ? OURS[r.counterpart] : '',
    r.counterpart ? show(r.vsCounterpart, 'x') : '',
  ]);
  const md = [
    `| ${header.join(' | ')} |`,
    `| ${header.map((h, i) => (i < 2 || i === 6 ? '---' : '---:')).join(' | ')} |`,
    ...lines.map((l) => `| ${l.join(' | ')} |`),
  ].join('\n');
  console.log();
  console.log(md);
  console.log();
  console.log('median ns/op: median across rounds of each round\'s median per-call time (one sample = mean of');
  console.log(`${CALLS} calls). mean ns/op: median across rounds of each round's mean (includes GC pauses and`);
  console.log('interval rotations). vs bind handle: median across rounds of (this task / panoptic\'s bind');
  console.log('handle of the scenario: bind(inc) for counters, bind(sample) for distributions) in the same');
  console.log('round. this / ours: the same for a peer against the panoptic call it is compared with (the');
  console.log('same kind of call: resolved once, by path, or with tags); above 1x, panoptic is that much faster.');

  const targets = HOT_PATH_TARGETS.map(([what, a, b, bound]) => judge(what, ratioOf(a, b), { ...bound, unit: 'x' }));
  console.log();
  console.log(table(targets));

  const missing = Object.keys(seen).filter((k) => seen[k] === 0);
  if (missing.length > 0) {
    console.log(`\nWARNING: panoptic delivered no interval with http.${missing.join(', http.')}: its recorders may have dropped data.`);
  } else {
    console.log(`\nliveness: panoptic collected http.requests/latency/duration/size in ${Object.values(seen).join('/')} intervals.`);
  }
  if (!otelPoints.includes('requests') || !otelPoints.includes('latency')) {
    console.log('WARNING: OpenTelemetry exported no requests/latency data point: its instruments may not have recorded.');
  } else {
    console.log(`liveness: OpenTelemetry exported ${otelExporter.getMetrics().length} times.`);
  }
  const elapsed = (Date.now() - started) / 1000;

  return {
    config: { rounds: opts.rounds, timeMs: opts.time, warmupTimeMs: opts.warmupTime, callsPerSample: CALLS, intervalMs: INTERVAL, tags: TAGS },
    elapsedSeconds: elapsed,
    liveness: { panoptic: seen, openTelemetryExports: otelExporter.getMetrics().length },
    results: rows,
    targets,
  };
}

async function main() {
  const out = await runHotPath();
  if (opts.json) {
    writeJson(opts.json, out);
  }
}

main().catch((err) => {
  console.error(err);
  stopFixtures().catch(() => {});
  process.exitCode = 1;
});
