'use strict';

// Tracing benchmark: what a trace('request:start', { id }) probe costs.
// `node benchmark/trace.js` runs it alone; `npm run bench` runs it as its part "trace" (in a
// process of its own: requiring jstrace starts its reconnect timer); `--help` lists options.
//
// Part 1, idle (no tracer attached; the cost every application pays all the time), interleaved in
// rounds as benchmark/hotpath.js's: an empty function (the floor), panoptic's
// trace() in a process that is attachable (from require on), and jstrace 0.3.0's trace() (whose
// idle check is `if (!server.subscribing) return`). Same method as benchmark/hotpath.js: one sample
// = CALLS back-to-back calls in a loop of its own per task (monomorphic, inlinable call site),
// timed around the loop; the median across rounds of each round's median ns/op; ratios computed
// per round and their median reported.
// Part 2, attached: the real panoptic-trace command attached with a local script subscribed to
// 'bench:subscribed' only. Then a probe of another name costs the pattern check (the answer is
// cached per name) and a subscribed one builds the trace object, serializes it and queues it for
// the native writer thread (dropped and counted if the tracer reads too slowly). These rounds run
// after part 1, not interleaved with it: attaching changes what the idle probes do.
// Part 3, idle again after the tracer detached: once a probe has delivered to a tracer, V8 has seen
// the object escape into the delivery path and allocates it even when idle.

const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawn } = require('child_process');
const { Bench } = require('tinybench');
const { quantile, fmt } = require('./stats');
const { parseOptions, integerAtLeast, above, atLeast, writeJson } = require('./options');

const opts = parseOptions(process.argv.slice(2), {
  json: { value: null, help: 'also write the results as JSON to this file' },
  rounds: { value: 9, help: 'measured rounds per part', check: integerAtLeast(1) },
  time: { value: 300, help: 'ms per task per round', check: above(0) },
  'warmup-time': { value: 100, help: 'tinybench warm-up per task, ms', check: atLeast(0) },
}, 'node benchmark/trace.js');

// A private trace folder: the benchmark attaches its own tracer and no other.
const xdg = fs.mkdtempSync(path.join(os.tmpdir(), 'panoptic-bench-trace-'));
process.env.XDG_RUNTIME_DIR = xdg;
const { trace } = require('..');
const jstrace = require('jstrace');

const IDLE_CALLS = 100000;
const ATTACHED_CALLS = 2000;
const hrtime = process.hrtime.bigint;

// The floor: a call V8 can inline to nothing, as it can an idle probe.
const noop = () => {};

function result(t0, calls) {
  const ms = Number(hrtime() - t0) / 1e6;
  return { overriddenDuration: ms / calls, overriddenIterationCost: ms };
}

const IDLE = [
  ['floor: empty function f(name, obj)', 'floor', () => {
    const t0 = hrtime();
    for (let i = 0; i < IDLE_CALLS; i++) noop('request:start', { id: i });
    return result(t0, IDLE_CALLS);
  }],
  ['panoptic trace(name, obj), idle', 'ours', () => {
    const t0 = hrtime();
    for (let i = 0; i < IDLE_CALLS; i++) trace('request:start', { id: i });
    return result(t0, IDLE_CALLS);
  }],
  ['jstrace 0.3.0 trace(name, obj), idle', null, () => {
    const t0 = hrtime();
    for (let i = 0; i < IDLE_CALLS; i++) jstrace('request:start', { id: i });
    return result(t0, IDLE_CALLS);
  }],
];

const ATTACHED = [
  ['panoptic trace(name, obj), attached, name not subscribed', 'ours', () => {
    const t0 = hrtime();
    for (let i = 0; i < ATTACHED_CALLS; i++) trace('request:start', { id: i });
    return result(t0, ATTACHED_CALLS);
  }],
  ['panoptic trace(name, obj), attached, name subscribed (sent)', null, () => {
    const t0 = hrtime();
    for (let i = 0; i < ATTACHED_CALLS; i++) trace('bench:subscribed', { id: i });
    return result(t0, ATTACHED_CALLS);
  }],
];

/** Rounds of `specs` (rotated each round); rows with median ns/op and ratios to the ref tasks. */
async function measure(part, specs) {
  const tasks = specs.map(([name, ref, fn]) => ({ name, ref, fn, medians: [] }));
  const refs = tasks.filter((t) => t.ref !== null);
  const ratios = new Map(tasks.map((t) => [t.name, Object.fromEntries(refs.map((r) => [r.ref, []]))]));
  for (let round = 0; round <= opts.rounds; round++) {
    const bench = new Bench({ time: round === 0 ? Math.min(200, opts.time) : opts.time, warmupTime: opts.warmupTime, warmupIterations: 4, iterations: 16, throws: true });
    for (let i = 0; i < tasks.length; i++) {
      const t = tasks[(i + round) % tasks.length];
      bench.add(t.name, t.fn, { async: false });
    }
    await bench.run();
    if (round === 0) continue; // warm-up round: lets V8 tier up
    const median = new Map(bench.tasks.map((bt) => {
      if (bt.result.state !== 'completed') throw new Error(`task "${bt.name}" ended in state ${bt.result.state}`);
      return [bt.name, bt.result.latency.p50 * 1e6];
    }));
    for (const t of tasks) {
      t.medians.push(median.get(t.name));
      for (const r of refs) ratios.get(t.name)[r.ref].push(median.get(t.name) / median.get(r.name));
    }
    process.stderr.write(`trace ${part}: round ${round}/${opts.rounds} done\n`);
  }
  return tasks.map((t) => ({
    part,
    task: t.name,
    medianNs: quantile(t.medians, 0.5),
    p25Ns: quantile(t.medians, 0.25),
    p75Ns: quantile(t.medians, 0.75),
    perRoundMedianNs: t.medians,
    ratio: Object.fromEntries(Object.entries(ratios.get(t.name)).map(([k, v]) => [k, quantile(v, 0.5)])),
  }));
}

/** The real CLI, subscribed to 'bench:subscribed'; resolves once it is attached to us. */
async function attachTracer() {
  const script = path.join(xdg, 'bench-script.js');
  fs.writeFileSync(script, "exports.local = (traces) => { let n = 0; traces.on('bench:subscribed', () => { n += 1; }); };\n");
  const cli = spawn(process.execPath, [path.join(__dirname, '..', 'bin', 'panoptic-trace.js'), '-p', String(process.pid), script], {
    env: process.env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`panoptic-trace did not attach within 30 s:\n${err}`)), 30000);
    cli.stderr.on('data', (d) => {
      err += d;
      if (err.includes('attached to')) {
        clearTimeout(timer);
        resolve();
      }
    });
    cli.on('exit', (code) => reject(new Error(`panoptic-trace exited (${code}):\n${err}`)));
  });
  return cli;
}

function table(rows, refLabel) {
  const header = ['task', 'median ns/op', 'p25-p75 (rounds)', ...refLabel.map(([, label]) => label)];
  return [
    `| ${header.join(' | ')} |`,
    `| ${header.map((h, i) => (i === 0 ? '---' : '---:')).join(' | ')} |`,
    ...rows.map((r) => `| ${[r.task, fmt(r.medianNs), `${fmt(r.p25Ns)}-${fmt(r.p75Ns)}`, ...refLabel.map(([k]) => `${fmt(r.ratio[k])}x`)].join(' | ')} |`),
  ].join('\n');
}

async function main() {
  const socket = trace.listen();
  console.log(`panoptic tracing benchmark: node ${process.version}, ${os.cpus().length} cpus (${(os.cpus()[0] || {}).model || 'unknown'})`);
  console.log(`${opts.rounds} rounds (+1 discarded warm-up round) per part, ${opts.time} ms per task per round; attachable at ${socket}`);
  const idle = await measure('idle', IDLE);
  const cli = await attachTracer();
  let attached;
  try {
    attached = await measure('attached', ATTACHED);
  } finally {
    // A clean detach: the process has dropped the subscription before the CLI exits.
    cli.kill('SIGINT');
    await new Promise((resolve) => cli.once('exit', resolve));
  }
  const after = await measure('idle after detach', IDLE.slice(0, 2));
  console.log();
  console.log(`Idle (no tracer attached), ${IDLE_CALLS} calls per sample:\n`);
  console.log(table(idle, [['floor', 'vs empty function'], ['ours', 'vs panoptic idle']]));
  console.log();
  console.log(`Attached (panoptic-trace subscribed to 'bench:subscribed'), ${ATTACHED_CALLS} calls per sample:\n`);
  console.log(table(attached, [['ours', 'vs not subscribed']]));
  console.log();
  console.log('Idle again, after the tracer detached:\n');
  console.log(table(after, [['floor', 'vs empty function']]));
  console.log('\nmedian ns/op: median across rounds of each round\'s median per-call time; vs ...: median across');
  console.log('rounds of (this task / reference task) in the same round.');
  if (opts.json) {
    writeJson(opts.json, { date: new Date().toISOString(), node: process.version, results: [...idle, ...attached, ...after] });
  }
}

main().then(() => {
  fs.rmSync(xdg, { recursive: true, force: true });
  process.exit(0); // jstrace's reconnect timer would keep the process alive
}, (err) => {
  console.error(err);
  fs.rmSync(xdg, { recursive: true, force: true });
  process.exit(1);
});
