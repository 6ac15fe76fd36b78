'use strict';

// `npm run bench`: panoptic side by side with the libraries users choose instead, in parts:
// - hot-path (here): the cost of one record, panoptic against panopticon 0.3.0, prom-client,
//   @opentelemetry/sdk-metrics, node:perf_hooks, hdr-histogram-js (WebAssembly) and a plain JS
//   field (the floor), in two scenarios, counter and distribution;
// - collection (benchmark/collection.js, processes of its own): the time an interval boundary
//   blocks the event loop with 10k, 100k and 1M series;
// - memory (benchmark/memory.js, a fresh process per measurement): bytes per series;
// - cluster (benchmark/cluster.js, a process of its own: it forks the cluster workers): master CPU
//   and event-loop blocks of cluster-wide aggregation, panoptic against prom-client, and an idle
//   master's CPU per second with and without panoptic (`--cluster-args '--mix idle'` alone);
// - trace (benchmark/trace.js, a process of its own): idle trace() against an empty function and
//   jstrace 0.3.0, and the cost with a tracer attached;
// - exposition (benchmark/exposition.js, a process of its own): GET /metrics of 100k and 1M series
//   against prom-client's registry.metrics(), and the JS-thread time a scrape costs;
// - criterion (not run by default: cargo compiles for a while): the core crate's criterion benches
//   (`cargo bench -p panoptic-core`), record / merge / wire / exposition throughput.
// `--only <part>` (repeatable) or `--skip <part>` chooses the parts; `node benchmark/index.js
// --help` lists every option. At the end, the targets of issues 4, 5 and 6 are judged from the
// parts that ran.
//
// Hot-path method
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

const fs = require('fs');
const os = require('os');
const path = require('path');
const { execSync, execFileSync, spawn } = require('child_process');
const { createHistogram } = require('perf_hooks');
const { Bench } = require('tinybench');
const { quantile, fmt, watchOthers, othersLine } = require('./stats');
const { judge, table } = require('./targets');
const hdr = require('hdr-histogram-js');
const promClient = require('prom-client');
const otel = require('@opentelemetry/sdk-metrics');
const Panoptic = require('..');
const Panopticon = require('panopticon');

// ---- options ----------------------------------------------------------------------------------

const PARTS = ['hot-path', 'collection', 'memory', 'cluster', 'trace', 'exposition', 'criterion'];
const DEFAULT_PARTS = PARTS.filter((p) => p !== 'criterion');

function parseArgs(argv) {
  const opts = {
    json: null,
    rounds: 9,
    time: 500,
    warmupTime: 100,
    parts: new Set(DEFAULT_PARTS),
    only: false,
    partArgs: { collection: [], memory: [], cluster: [], trace: [], exposition: [], criterion: [] },
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    const args = /^--(collection|memory|cluster|trace|exposition|criterion)-args$/.exec(a);
    if (a === '--json') opts.json = next();
    else if (a === '--rounds') opts.rounds = Number(next());
    else if (a === '--time') opts.time = Number(next());
    else if (a === '--warmup-time') opts.warmupTime = Number(next());
    else if (a === '--only' || a === '--skip') {
      const part = next();
      if (!PARTS.includes(part)) throw new Error(`${a} takes one of ${PARTS.join(', ')}, got ${part}`);
      if (a === '--only') {
        if (!opts.only) opts.parts = new Set();
        opts.only = true;
        opts.parts.add(part);
      } else {
        opts.parts.delete(part);
      }
    } else if (args) opts.partArgs[args[1]] = next().split(/\s+/).filter(Boolean);
    else if (a === '--help' || a === '-h') {
      console.log([
        'usage: node benchmark/index.js [options]',
        '  --json <file>              also write every part\'s results as JSON',
        '  --rounds <n>=9             hot path: measured rounds',
        '  --time <ms>=500            hot path: ms per task per round',
        '  --warmup-time <ms>=100     hot path: tinybench warm-up per task',
        `  --only <part>              run this part (repeatable); parts: ${PARTS.join(', ')}`,
        `                             (default: ${DEFAULT_PARTS.join(', ')}, in this order)`,
        '  --skip <part>              leave a part out',
        "  --<part>-args '<args>'     passed on to the part's script (collection, memory, cluster,",
        '                             trace, exposition: see `node benchmark/<part>.js --help`;',
        '                             criterion: to',
        '                             criterion, e.g. --criterion-args \'wire\' runs the wire benches)',
      ].join('\n'));
      process.exit(0);
    } else {
      throw new Error(`unknown argument ${a} (try --help)`);
    }
  }
  if (!(Number.isInteger(opts.rounds) && opts.rounds >= 1)) throw new Error('--rounds must be an integer >= 1');
  if (!(opts.time > 0)) throw new Error('--time must be > 0');
  if (!(opts.warmupTime >= 0)) throw new Error('--warmup-time must be >= 0');
  return opts;
}

const opts = parseArgs(process.argv.slice(2));

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
let wasmHistogram = null; // hdr-histogram-js, built once its WebAssembly module is loaded (main)
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

function commandVersion(cmd) {
  try {
    return execSync(cmd, { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
  } catch {
    return null;
  }
}

function ratio(x) {
  return Number.isFinite(x) ? `${x >= 10 ? x.toFixed(0) : x.toFixed(2)}x` : '-';
}

function packageVersion(name) {
  try {
    // Read from node_modules: some packages (tinybench) do not export their package.json.
    return JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'node_modules', name, 'package.json'), 'utf8')).version;
  } catch {
    return null;
  }
}

async function main() {
  const started = Date.now();
  const cpu = (os.cpus()[0] || {}).model || 'unknown';
  const report = {
    date: new Date().toISOString(),
    command: `node benchmark/index.js ${process.argv.slice(2).join(' ')}`.trim(),
    machine: { cpus: os.cpus().length, cpu, memoryGiB: os.totalmem() / 2 ** 30, platform: `${os.platform()} ${os.release()} ${os.arch()}` },
    node: process.version,
    v8: process.versions.v8,
    rustc: commandVersion('rustc --version'),
    versions: Object.fromEntries(['tinybench', 'panopticon', 'prom-client', '@opentelemetry/sdk-metrics', 'hdr-histogram-js'].map((n) => [n, packageVersion(n)])),
    parts: [...opts.parts],
  };
  const targets = [];
  // How much other processes used the CPU during each part (see stats.js's watchOthers).
  report.load = {};
  const watched = async (part, run) => {
    const watch = watchOthers();
    const out = await run();
    report.load[part] = watch();
    console.log(`\n${part}: ${othersLine(report.load[part])}`);
    return out;
  };
  if (opts.parts.has('hot-path')) {
    report.hotPath = await watched('hot-path', runHotPath);
    targets.push(...report.hotPath.targets);
  } else {
    await stopFixtures();
  }
  for (const part of ['collection', 'memory', 'cluster', 'trace', 'exposition']) {
    if (!opts.parts.has(part)) continue;
    console.log();
    report[part] = await watched(part, () => runPart(`${part}.js`, opts.partArgs[part]));
    if (report[part] && Array.isArray(report[part].targets)) targets.push(...report[part].targets);
  }
  if (opts.parts.has('criterion')) {
    console.log();
    report.criterion = await watched('criterion', () => runCriterion(opts.partArgs.criterion));
  }
  report.targets = targets;
  report.elapsedSeconds = (Date.now() - started) / 1000;
  if (targets.length > 0) {
    console.log(`\nTargets of issues 4, 5 and 6 (${targets.filter((t) => t.met).length} of ${targets.length} met):\n`);
    console.log(table(targets));
  }
  console.log(`\nnpm run bench: ${report.parts.join(', ')} in ${report.elapsedSeconds.toFixed(0)} s`);
  if (opts.json) {
    fs.mkdirSync(path.dirname(path.resolve(opts.json)), { recursive: true });
    fs.writeFileSync(opts.json, `${JSON.stringify(report, null, 2)}\n`);
    console.log(`wrote ${opts.json}`);
  }
}

/** benchmark/<file> in a process of its own, with `args`; its JSON report. */
async function runPart(file, args) {
  const tmp = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'panoptic-bench-')), 'part.json');
  const argv = [path.join(__dirname, file), ...args, '--json', tmp];
  try {
    const code = await new Promise((resolve) => {
      const child = spawn(process.execPath, argv, { stdio: 'inherit' });
      child.on('exit', (c, signal) => resolve(signal ? 1 : c));
    });
    if (code !== 0) throw new Error(`benchmark/${file} exited with code ${code}`);
    return JSON.parse(fs.readFileSync(tmp, 'utf8'));
  } finally {
    fs.rmSync(path.dirname(tmp), { recursive: true, force: true });
  }
}

// crates/panoptic-core/benches/*.rs (named, so that cargo does not also run the library's
// test harness in bench mode).
const BENCHES = ['record', 'merge', 'wire', 'exposition'];

/**
 * The core crate's criterion benches (crates/panoptic-core/benches), then their results as
 * criterion wrote them (<target>/criterion/<group>/<bench>/new/): one row per bench run now.
 */
function runCriterion(args) {
  const root = path.join(__dirname, '..');
  const argv = ['bench', '-p', 'panoptic-core', ...BENCHES.flatMap((b) => ['--bench', b]), ...(args.length > 0 ? ['--', ...args] : [])];
  console.log(`criterion: cargo ${argv.join(' ')}`);
  const since = Date.now() - 1000;
  execFileSync('cargo', argv, { cwd: root, stdio: 'inherit' });
  const meta = JSON.parse(execFileSync('cargo', ['metadata', '--format-version', '1', '--no-deps'], { cwd: root }).toString());
  const rows = [];
  const walk = (dir) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (!entry.isDirectory()) continue;
      if (entry.name !== 'new') {
        walk(full);
        continue;
      }
      const file = path.join(full, 'benchmark.json');
      if (!fs.existsSync(file) || fs.statSync(file).mtimeMs < since) continue;
      const bench = JSON.parse(fs.readFileSync(file, 'utf8'));
      const estimates = JSON.parse(fs.readFileSync(path.join(full, 'estimates.json'), 'utf8'));
      const elements = bench.throughput && (bench.throughput.Elements ?? bench.throughput.ElementsAndBytes?.elements);
      const ns = estimates.median.point_estimate;
      rows.push({
        id: bench.full_id,
        medianNs: ns,
        lowNs: estimates.median.confidence_interval.lower_bound,
        highNs: estimates.median.confidence_interval.upper_bound,
        elements: elements ?? null,
        elementsPerSecond: elements ? (elements * 1e9) / ns : null,
      });
    }
  };
  const dir = path.join(meta.target_directory, 'criterion');
  if (fs.existsSync(dir)) walk(dir);
  rows.sort((a, b) => a.id.localeCompare(b.id));
  const time = (ns) => (ns >= 1e6 ? `${fmt(ns / 1e6)} ms` : ns >= 1e3 ? `${fmt(ns / 1e3)} us` : `${fmt(ns)} ns`);
  const rate = (x) => (x >= 1e9 ? `${fmt(x / 1e9)} G/s` : x >= 1e6 ? `${fmt(x / 1e6)} M/s` : `${fmt(x / 1e3)} K/s`);
  console.log('\n| bench | median time | elements | elements/s |');
  console.log('| --- | ---: | ---: | ---: |');
  for (const r of rows) console.log(`| ${r.id} | ${time(r.medianNs)} | ${r.elements ?? '-'} | ${r.elementsPerSecond ? rate(r.elementsPerSecond) : '-'} |`);
  return { command: `cargo ${argv.join(' ')}`, results: rows };
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
    ratio(r.vsBind),
    r.counterpart ? OURS[r.counterpart] : '',
    r.counterpart ? ratio(r.vsCounterpart) : '',
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

main().catch((err) => {
  console.error(err);
  stopFixtures().catch(() => {});
  process.exitCode = 1;
});
