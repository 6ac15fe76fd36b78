'use strict';

// Runtime metrics benchmark: what `runtime: true` costs the JS thread per interval.
// `node benchmark/runtime.js` runs it alone; `npm run bench` runs it as its part "runtime";
// `--help` lists options.
//
// Method: runs alternate between a standalone instance with `runtime: true` and the same instance
// without, each in a fresh process that does nothing else (so nothing but panoptic wakes its
// event loop). After a warm-up of a few intervals, each run reads its main thread's CPU time from
// the kernel (/proc/self/task/<pid>/schedstat: it counts what the thread ran, not what it waited)
// over `--intervals` intervals. Reported: CPU ms per interval of the whole JS thread with and
// without, and their difference, the runtime metrics' own cost: their reads at each interval
// (the gauge sets: memory, heap spaces, handles, /proc/self/fd; the CPU and event-loop counters)
// and what the event-loop delay sampler costs the JS thread between them (its samples' drain,
// and its calls into a busy loop). The instance without runtime metrics is what an application
// pays for panoptic anyway; it is not part of what the difference measures.
//
// For comparison (the reason for the native sampler), two more modes run the instance without
// runtime metrics plus another way of sampling the event-loop delay every 10 ms: a JS
// setInterval (what panoptic did before: its every run wakes the loop and enters JS) and
// perf_hooks.monitorEventLoopDelay({ resolution: 10 }) (a libuv timer: a wake, no JS). A fifth
// mode is the instance without runtime metrics but with one gauge of its own: an instance with
// no series at all closes, keeps and delivers empty intervals, and part of what the difference
// measures is what any first series costs (an application has some anyway).

const { fork } = require('child_process');
const { median, fmt, threadCpuMs } = require('./stats');
const { parseOptions, integerAtLeast, oneOf, writeJson } = require('./options');
const { judge, table } = require('./targets');

const opts = parseOptions(process.argv.slice(2), {
  json: { value: null, help: 'also write the results as JSON to this file' },
  rounds: { value: 3, help: 'runs of each mode, alternating', check: integerAtLeast(1) },
  interval: { value: 200, help: 'the instance\'s interval, ms', check: integerAtLeast(10) },
  intervals: { value: 25, help: 'measured intervals per run', check: integerAtLeast(1) },
  warmup: { value: 5, help: 'intervals before measuring', check: integerAtLeast(1) },
  mode: { value: null, help: '(internal) run one mode in this process: on, off, one, timer or monitor', check: oneOf(['on', 'off', 'one', 'timer', 'monitor']) },
}, 'node benchmark/runtime.js');

if (opts.mode !== null) {
  const Panopticon = require('..');
  const p = new Panopticon({ interval: opts.interval, keepAlive: true, runtime: opts.mode === 'on' });
  // Unref'd: it wakes the loop as often, and lets the process end after stop().
  if (opts.mode === 'one') p.gauge(['app'], 'level', () => 1);
  if (opts.mode === 'timer') setInterval(() => {}, 10).unref();
  if (opts.mode === 'monitor') require('perf_hooks').monitorEventLoopDelay({ resolution: 10 }).enable();
  let deliveries = 0;
  let start = 0;
  p.on('delivery', () => {
    deliveries += 1;
    if (deliveries === opts.warmup) start = threadCpuMs(process.pid);
    if (deliveries === opts.warmup + opts.intervals) {
      const ms = threadCpuMs(process.pid) - start;
      p.stop();
      process.send({ msPerInterval: ms / opts.intervals });
    }
  });
} else {
  main();
}

function run(mode) {
  return new Promise((resolve, reject) => {
    const args = ['--mode', mode, '--interval', String(opts.interval), '--intervals', String(opts.intervals), '--warmup', String(opts.warmup)];
    const child = fork(__filename, args);
    let result = null;
    child.on('message', (m) => { result = m; });
    child.on('exit', (code) => (result ? resolve(result) : reject(new Error(`runtime bench child (${mode}) exited with ${code}`))));
  });
}

async function main() {
  const on = [];
  const off = [];
  const timer = [];
  const monitor = [];
  const one = [];
  for (let r = 0; r < opts.rounds; r++) {
    off.push(await run('off'));
    on.push(await run('on'));
    one.push(await run('one'));
    timer.push(await run('timer'));
    monitor.push(await run('monitor'));
  }
  const mid = (runs) => median(runs.map((x) => x.msPerInterval));
  const msOn = mid(on);
  const msOff = mid(off);
  const cost = msOn - msOff;
  const runs = (xs) => xs.map((x) => fmt(x.msPerInterval, 3)).join(', ');
  console.log(`Runtime metrics: the JS thread's CPU per interval (${opts.interval} ms interval, ${opts.intervals} intervals per run, median of ${opts.rounds} runs each)\n`);
  console.log('| instance | ms CPU per interval | runs |');
  console.log('| --- | ---: | --- |');
  console.log(`| runtime: true | ${fmt(msOn, 3)} | ${on.map((x) => fmt(x.msPerInterval, 3)).join(', ')} |`);
  console.log(`| without runtime metrics | ${fmt(msOff, 3)} | ${off.map((x) => fmt(x.msPerInterval, 3)).join(', ')} |`);
  console.log(`| difference: the runtime metrics | ${fmt(cost, 3)} | |`);
  console.log(`| for comparison: without runtime metrics, with one gauge of its own | ${fmt(mid(one), 3)} (runtime: true costs ${fmt(msOn - mid(one), 3)} more) | ${runs(one)} |`);
  console.log(`| for comparison: without runtime metrics, plus an empty JS setInterval of 10 ms | ${fmt(mid(timer), 3)} (+${fmt(mid(timer) - msOff, 3)}) | ${runs(timer)} |`);
  console.log(`| for comparison: without runtime metrics, plus monitorEventLoopDelay({ resolution: 10 }) | ${fmt(mid(monitor), 3)} (+${fmt(mid(monitor) - msOff, 3)}) | ${runs(monitor)} |`);
  const targets = [judge("runtime: true: the JS thread's CPU per interval", cost, { max: 0.1, unit: 'ms' })];
  console.log(`\n${table(targets)}`);
  if (opts.json) writeJson(opts.json, { part: 'runtime', interval: opts.interval, msOn, msOff, cost, on, off, one, timer, monitor, targets });
}
