'use strict';

// Side-by-side hot-path benchmark: panoptic against panopticon 0.3.0, node:perf_hooks,
// hdr-histogram-js (WebAssembly), prom-client and a plain JS field (the floor). `npm run bench` runs it; `node benchmark/index.js --help` lists options.
// Then, as a final part in a process of its own, the cluster benchmark (benchmark/cluster.js:
// master CPU and event-loop blocks of cluster-wide aggregation, panoptic against prom-client);
// Then the tracing benchmark (benchmark/trace.js, in a process of its own: idle trace() against an
// empty function and jstrace 0.3.0, and the cost with a tracer attached).
// `--only hot-path|cluster|trace` or `--skip hot-path|cluster|trace` chooses the parts.
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
//   round (peer / ours) and their median across rounds is reported.
// - All instances use interval 1000 ms, are created before the first round and stopped after the
//   last, so interval rotations (about one per second) happen inside the measured loops, as they
//   would in an application.
// - Values come from a precomputed array of integers >= 1, indexed with a mask.

const fs = require('fs');
const os = require('os');
const path = require('path');
const { execSync, spawn } = require('child_process');
const { createHistogram } = require('perf_hooks');
const { Bench } = require('tinybench');
const { quantile, fmt } = require('./stats');
const hdr = require('hdr-histogram-js');
const promClient = require('prom-client');
const Panoptic = require('..');
const Panopticon = require('panopticon');

// ---- options ----------------------------------------------------------------------------------

const PARTS = ['hot-path', 'cluster', 'trace'];

function parseArgs(argv) {
  const opts = { json: null, rounds: 9, time: 500, warmupTime: 100, parts: new Set(PARTS), clusterArgs: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--json') opts.json = next();
    else if (a === '--rounds') opts.rounds = Number(next());
    else if (a === '--time') opts.time = Number(next());
    else if (a === '--warmup-time') opts.warmupTime = Number(next());
    else if (a === '--only' || a === '--skip') {
      const part = next();
      if (!PARTS.includes(part)) throw new Error(`${a} takes one of ${PARTS.join(', ')}, got ${part}`);
      if (a === '--only') opts.parts = new Set([part]);
      else opts.parts.delete(part);
    } else if (a === '--cluster-args') opts.clusterArgs = next().split(/\s+/).filter(Boolean);
    else if (a === '--help' || a === '-h') {
      console.log([
        'usage: node benchmark/index.js [options]',
        '  --json <file>                    also write the results as JSON (the other parts under "cluster", "trace")',
        '  --rounds <n>=9                   hot path: measured rounds',
        '  --time <ms>=500                  hot path: ms per task per round',
        '  --warmup-time <ms>=100           hot path: tinybench warm-up per task',
        `  --only <${PARTS.join('|')}>  run one part (default: all, in this order)`,
        `  --skip <${PARTS.join('|')}>  leave one part out`,
        "  --cluster-args '<args>'          passed on to benchmark/cluster.js (see its --help)",
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

const ours = new Panoptic({ name: 'bench', interval: INTERVAL });
const peer = new Panopticon({ name: 'bench', interval: INTERVAL });

// Liveness check: panoptic must really have recorded what we measured (not dropped it).
const seen = { requests: 0, latency: 0, duration: 0 };
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
const promHistogram = new promClient.Histogram({ name: 'bench_latency', help: 'latency', registers: [] });
let wasmHistogram = null; // hdr-histogram-js, built once its WebAssembly module is loaded (main)
const floor = { x: 0, sum: 0 };

// ---- tasks ------------------------------------------------------------------------------------

const hrtime = process.hrtime.bigint;

function result(t0) {
  const ms = Number(hrtime() - t0) / 1e6;
  return { overriddenDuration: ms / CALLS, overriddenIterationCost: ms };
}

// [scenario, task, reference key (what ratios divide by), loop]
const TASKS = [
  ['counter', 'panoptic bind(inc) handle()', 'bind', () => {
    const t0 = hrtime();
    for (let i = 0; i < CALLS; i++) incHandle();
    return result(t0);
  }],
  ['counter', 'panoptic p.inc(path, id, 1)', 'method', () => {
    const t0 = hrtime();
    for (let i = 0; i < CALLS; i++) ours.inc(['http'], 'requests', 1);
    return result(t0);
  }],
  ['counter', 'panopticon 0.3.0 p.inc(path, id, 1)', null, () => {
    const t0 = hrtime();
    for (let i = 0; i < CALLS; i++) peer.inc(['http'], 'requests', 1);
    return result(t0);
  }],
  ['counter', 'floor: plain object o.x += 1', null, () => {
    floor.x = 0; // stays a small integer (Smi): a field past 2^30 turns into a slower heap number
    const t0 = hrtime();
    for (let i = 0; i < CALLS; i++) floor.x += 1;
    return result(t0);
  }],
  ['distribution', 'panoptic bind(sample) handle(v)', 'bind', () => {
    const t0 = hrtime();
    for (let i = 0; i < CALLS; i++) sampleHandle(VALUES[i & MASK]);
    return result(t0);
  }],
  ['distribution', 'panoptic bind(histogram) handle(v)', 'histogram', () => {
    const t0 = hrtime();
    for (let i = 0; i < CALLS; i++) histogramHandle(VALUES[i & MASK]);
    return result(t0);
  }],
  ['distribution', 'panoptic p.sample(path, id, v)', null, () => {
    const t0 = hrtime();
    for (let i = 0; i < CALLS; i++) ours.sample(['http'], 'latency', VALUES[i & MASK]);
    return result(t0);
  }],
  ['distribution', 'panoptic bind(timedSample) handle(dt)', null, () => {
    const t0 = hrtime();
    for (let i = 0; i < CALLS; i++) timedHandle(DT);
    return result(t0);
  }],
  ['distribution', 'panopticon 0.3.0 p.sample(path, id, v)', null, () => {
    const t0 = hrtime();
    for (let i = 0; i < CALLS; i++) peer.sample(['http'], 'latency', VALUES[i & MASK]);
    return result(t0);
  }],
  ['distribution', 'panopticon 0.3.0 p.timedSample(path, id, dt)', null, () => {
    const t0 = hrtime();
    for (let i = 0; i < CALLS; i++) peer.timedSample(['http'], 'duration', DT);
    return result(t0);
  }],
  ['distribution', 'perf_hooks histogram.record(v)', null, () => {
    const t0 = hrtime();
    for (let i = 0; i < CALLS; i++) histogram.record(VALUES[i & MASK]);
    return result(t0);
  }],
  ['distribution', 'hdr-histogram-js 3 (wasm) h.recordValue(v)', null, () => {
    const t0 = hrtime();
    for (let i = 0; i < CALLS; i++) wasmHistogram.recordValue(VALUES[i & MASK]);
    return result(t0);
  }],
  ['distribution', 'prom-client Histogram.observe(v)', null, () => {
    const t0 = hrtime();
    for (let i = 0; i < CALLS; i++) promHistogram.observe(VALUES[i & MASK]);
    return result(t0);
  }],
  ['distribution', 'floor: plain object o.sum += v', null, () => {
    const t0 = hrtime();
    for (let i = 0; i < CALLS; i++) floor.sum += VALUES[i & MASK];
    return result(t0);
  }],
].map(([scenario, name, ref, fn]) => ({ scenario, name, ref, fn, medians: [], means: [] }));

const SCENARIOS = [...new Set(TASKS.map((t) => t.scenario))];
// What each scenario's ratio columns divide by.
const REFS = { counter: ['bind', 'method'], distribution: ['bind', 'histogram'] };

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
  return out;
}

function commandVersion(cmd) {
  try {
    return execSync(cmd, { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
  } catch {
    return null;
  }
}

// CPU seconds used by the whole machine so far (Linux /proc/stat; null elsewhere).
function machineBusySeconds() {
  try {
    const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal: busy = all but idle and iowait.
    return (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) / 100; // USER_HZ is 100 on Linux
  } catch {
    return null;
  }
}

function ratio(x) {
  return Number.isFinite(x) ? `${x >= 10 ? x.toFixed(0) : x.toFixed(2)}x` : '-';
}

async function main() {
  let report = {};
  if (opts.parts.has('hot-path')) {
    report = await runHotPath();
  } else {
    ours.stop();
    peer.stop();
  }
  if (opts.parts.has('cluster')) {
    console.log();
    const cluster = await runCluster();
    if (cluster) report.cluster = cluster;
  }
  if (opts.parts.has('trace')) {
    console.log();
    const trace = await runPart('trace.js', []);
    if (trace) report.trace = trace;
  }
  if (opts.json) {
    fs.mkdirSync(path.dirname(path.resolve(opts.json)), { recursive: true });
    fs.writeFileSync(opts.json, `${JSON.stringify(report, null, 2)}\n`);
    console.log(`wrote ${opts.json}`);
  }
}

/** benchmark/cluster.js in a process of its own (it forks the cluster workers); its JSON report. */
function runCluster() {
  return runPart('cluster.js', opts.clusterArgs);
}

/** benchmark/<file> in a process of its own, with `args`; its JSON report when --json is given. */
async function runPart(file, args) {
  const tmp = opts.json ? path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'panoptic-bench-')), 'part.json') : null;
  const argv = [path.join(__dirname, file), ...args, ...(tmp ? ['--json', tmp] : [])];
  const code = await new Promise((resolve) => {
    const child = spawn(process.execPath, argv, { stdio: 'inherit' });
    child.on('exit', (c, signal) => resolve(signal ? 1 : c));
  });
  if (code !== 0) throw new Error(`benchmark/${file} exited with code ${code}`);
  if (!tmp) return null;
  const out = JSON.parse(fs.readFileSync(tmp, 'utf8'));
  fs.rmSync(path.dirname(tmp), { recursive: true, force: true });
  return out;
}

async function runHotPath() {
  const started = Date.now();
  const loadBefore = os.loadavg();
  const busyBefore = machineBusySeconds();
  const ownBefore = process.cpuUsage();
  const cpu = (os.cpus()[0] || {}).model || 'unknown';
  console.log(`panoptic hot-path benchmark: node ${process.version}, ${os.cpus().length} cpus (${cpu})`);
  console.log(`${opts.rounds} rounds (+1 discarded warm-up round), ${opts.time} ms per task per round, ${CALLS} calls per sample, interval ${INTERVAL} ms`);

  await hdr.initWebAssembly();
  wasmHistogram = hdr.build({ useWebAssembly: true });
  await runRound(0, Math.min(200, opts.time), opts.warmupTime);
  const ratios = new Map(TASKS.map((t) => [t.name, {}]));
  for (let round = 1; round <= opts.rounds; round++) {
    const r = await runRound(round, opts.time, opts.warmupTime);
    for (const t of TASKS) {
      t.medians.push(r.get(t.name).median);
      t.means.push(r.get(t.name).mean);
    }
    for (const t of TASKS) {
      for (const key of REFS[t.scenario]) {
        const ref = TASKS.find((u) => u.scenario === t.scenario && u.ref === key);
        (ratios.get(t.name)[key] ||= []).push(r.get(t.name).median / r.get(ref.name).median);
      }
    }
    process.stderr.write(`round ${round}/${opts.rounds} done (${((Date.now() - started) / 1000).toFixed(0)} s)\n`);
  }

  ours.stop();
  peer.stop();

  const rows = TASKS.map((t) => {
    const r = ratios.get(t.name);
    const row = {
      scenario: t.scenario,
      task: t.name,
      medianNs: quantile(t.medians, 0.5),
      p25Ns: quantile(t.medians, 0.25),
      p75Ns: quantile(t.medians, 0.75),
      meanNs: quantile(t.means, 0.5),
      perRoundMedianNs: t.medians,
      perRoundMeanNs: t.means,
      ratio: {},
    };
    for (const key of Object.keys(r)) row.ratio[key] = quantile(r[key], 0.5);
    return row;
  });

  // ---- table ----------------------------------------------------------------------------------
  const header = ['scenario', 'task', 'median ns/op', 'p25-p75 (rounds)', 'mean ns/op', 'vs bind handle', 'vs p.inc / bind(histogram)'];
  const lines = rows.map((r) => [
    r.scenario,
    r.task,
    fmt(r.medianNs),
    `${fmt(r.p25Ns)}-${fmt(r.p75Ns)}`,
    fmt(r.meanNs),
    ratio(r.ratio.bind),
    r.scenario === 'counter' ? ratio(r.ratio.method) : ratio(r.ratio.histogram),
  ]);
  const md = [
    `| ${header.join(' | ')} |`,
    `| ${header.map((h, i) => (i < 2 ? '---' : '---:')).join(' | ')} |`,
    ...lines.map((l) => `| ${l.join(' | ')} |`),
  ].join('\n');
  console.log();
  console.log(md);
  console.log();
  console.log('median ns/op: median across rounds of each round\'s median per-call time (one sample = mean of');
  console.log(`${CALLS} calls). mean ns/op: median across rounds of each round's mean (includes GC pauses and`);
  console.log('interval rotations). vs ...: median across rounds of (this task / reference task) in the same');
  console.log('round; counter rows divide by the panoptic bind handle and by panoptic p.inc, distribution rows');
  console.log('by the panoptic bind(sample) handle and by the bind(histogram) handle. Above 1x means slower than');
  console.log('the reference.');

  const missing = Object.keys(seen).filter((k) => seen[k] === 0);
  if (missing.length > 0) {
    console.log(`\nWARNING: panoptic delivered no interval with http.${missing.join(', http.')}: its recorders may have dropped data.`);
  } else {
    console.log(`\nliveness: panoptic collected http.requests/latency/duration in ${seen.requests}/${seen.latency}/${seen.duration} intervals.`);
  }
  const elapsed = (Date.now() - started) / 1000;
  const loadAfter = os.loadavg();
  // On a 2-core machine anything else running skews the numbers: report the CPU time other
  // processes used during the run (machine busy time minus this process's), and the load.
  const busyAfter = machineBusySeconds();
  const own = process.cpuUsage(ownBefore);
  const others = busyBefore === null || busyAfter === null ? null : Math.max(0, busyAfter - busyBefore - (own.user + own.system) / 1e6);
  console.log(`total ${elapsed.toFixed(0)} s; 1-min load average ${loadBefore[0].toFixed(2)} before, ${loadAfter[0].toFixed(2)} after`);
  if (others !== null) {
    console.log(`other processes used ${others.toFixed(1)} CPU-s during the run (${(100 * others / elapsed).toFixed(0)}% of one core)${others / elapsed > 0.1 ? ': the machine was not quiet, numbers are suspect' : ''}`);
  }

  return {
    date: new Date().toISOString(),
    machine: { cpus: os.cpus().length, cpu, platform: `${os.platform()} ${os.release()} ${os.arch()}` },
    node: process.version,
    v8: process.versions.v8,
    rustc: commandVersion('rustc --version'),
    config: { rounds: opts.rounds, timeMs: opts.time, warmupTimeMs: opts.warmupTime, callsPerSample: CALLS, intervalMs: INTERVAL },
    elapsedSeconds: elapsed,
    loadAverage1m: { before: loadBefore[0], after: loadAfter[0] },
    otherProcessesCpuSeconds: others,
    liveness: seen,
    results: rows,
  };
}

main().catch((err) => {
  console.error(err);
  try {
    ours.stop();
    peer.stop();
  } catch {
    // already stopped
  }
  process.exitCode = 1;
});
