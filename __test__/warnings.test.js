'use strict';

// Nothing is lost silently: instances of workers and threads match by grid, not by how their
// startTime is spelled; a mismatched or unmatched source, an unknown option, an invalid option
// value and an invalid data point are each counted in the delivery's meta and warned about once
// ('warning' on the instance, else process.emitWarning), with a code.

const test = require('node:test');
const assert = require('node:assert/strict');
const cluster = require('cluster');
const path = require('path');
const { spawn } = require('child_process');
const { Worker } = require('worker_threads');
const { next, deliveriesUntil, stopWorkers, Panopticon } = require('./helpers');

const PANOPTIC = JSON.stringify(require.resolve('..'));

/** Every process warning emitted while `fn` runs (awaited), by code. */
async function processWarnings(fn) {
  const seen = [];
  const on = (w) => seen.push(w);
  process.on('warning', on);
  try {
    await fn();
  } finally {
    process.removeListener('warning', on);
  }
  return seen;
}

const sum = (all, field) => all.reduce((n, d) => n + d.meta[field], 0);

function thread(body) {
  const worker = new Worker(`
    const Panopticon = require(${PANOPTIC});
    ${body}
  `, { eval: true });
  return worker;
}

test('a thread on the same grid merges whatever its startTime; one on another grid is counted and warned about once', { timeout: 60000 }, async (t) => {
  const interval = 200;
  // The host counts its intervals from a boundary of its own, the threads from the epoch. One
  // reading of the clock: two could straddle a millisecond and put the host 1 ms off the grid.
  const now = Date.now();
  const p = new Panopticon({ name: 'grid', interval, startTime: now - (now % interval) });
  const warnings = [];
  p.on('warning', (w) => warnings.push(w));
  t.after(() => p.stop());
  const same = thread(`
    const p = new Panopticon({ name: 'grid', interval: ${interval}, keepAlive: true });
    setInterval(() => p.inc([], 'n', 1), 20);
  `);
  const other = thread(`
    const p = new Panopticon({ name: 'grid', interval: ${interval / 2}, keepAlive: true });
    setInterval(() => p.inc([], 'other', 1), 20);
  `);
  t.after(() => Promise.all([same.terminate(), other.terminate()]));
  const all = await deliveriesUntil(p, (d, so) => d.data.cluster.n !== undefined && sum(so, 'mismatched') >= 3);
  const last = all[all.length - 1];
  assert.equal(Object.keys(last.data.threads).length, 1, 'only the thread on the same grid');
  assert.equal(last.data.cluster.other, undefined);
  assert.ok(last.data.cluster.n.value.val > 0);
  assert.equal(sum(all, 'decodeErrors'), 0);
  assert.equal(warnings.length, 1, 'once per source and difference, however many snapshots');
  assert.equal(warnings[0].code, 'PANOPTIC_MISMATCH');
  assert.match(warnings[0].message, /^worker thread \d+ of this process .*interval 100 \(here 200\)/);
});

test('cluster workers: another interval is mismatched, another name unmatched, a startTime a whole number of intervals away matches', { timeout: 60000 }, async (t) => {
  const interval = 200;
  const now = Date.now();
  const start = now - (now % interval) - 50 * interval;
  const p = new Panopticon({ name: 'web', interval, startTime: start });
  cluster.setupPrimary({ exec: path.join(__dirname, 'fixtures', 'cluster-worker.js'), silent: true });
  const fork = (env) => cluster.fork({ INTERVAL: interval, HITS: 1, NAME: 'web', START: 0, ...env });
  const workers = [fork({}), fork({ INTERVAL: interval / 2 }), fork({ NAME: 'webb' }), fork({ START: 7 })];
  t.after(async () => {
    p.stop();
    await stopWorkers(workers);
  });
  // No 'warning' listener: the process hears each once.
  let all;
  const seen = await processWarnings(async () => {
    all = await deliveriesUntil(p, (d, so) => d.data.workers && d.data.workers[workers[0].id] && sum(so, 'mismatched') >= 4 && sum(so, 'unmatched') >= 2);
    // More intervals: no second warning for the same sources.
    all.push(...(await next(p, 'delivery', 2)));
  });
  const last = all[all.length - 1];
  assert.deepEqual(Object.keys(last.data.workers), [String(workers[0].id)], 'only the matching worker');
  assert.equal(last.data.cluster.w.hits.value.val, 1 / interval);
  assert.equal(sum(all, 'decodeErrors'), 0);
  const ours = seen.filter((w) => w.code && w.code.startsWith('PANOPTIC_'));
  const byCode = (code) => ours.filter((w) => w.code === code).map((w) => w.message);
  const mismatches = byCode('PANOPTIC_MISMATCH');
  assert.equal(mismatches.length, 2, mismatches.join('\n'));
  assert.ok(mismatches.some((m) => m.startsWith(`cluster worker ${workers[1].id} (pid ${workers[1].process.pid})`) && m.includes('interval 100 (here 200)')));
  assert.ok(mismatches.some((m) => m.startsWith(`cluster worker ${workers[3].id} `) && m.includes(`startTime 7 (here ${start})`)));
  const unmatched = byCode('PANOPTIC_UNMATCHED');
  assert.equal(unmatched.length, 1);
  assert.match(unmatched[0], new RegExp(`^cluster worker ${workers[2].id} .*named "webb".*its instances: named "web"`));
});

test('unknown option keys and replaced values are warned about once, naming the key and the valid ones', async () => {
  const seen = await processWarnings(async () => {
    for (let i = 0; i < 3; i++) {
      const p = new Panopticon({ intreval: 1000, interval: '1000', histogram: { lowset: 1 }, influx: { url: 'http://127.0.0.1:8086', db: 'm', nope: 1 } });
      assert.equal(p.interval, 10000, "0.3.0's default");
      await p.serve({ port: 0, hots: 'x' });
      p.stop();
    }
    // Warnings are emitted on the next tick.
    await new Promise((resolve) => setImmediate(resolve));
  });
  const messages = seen.filter((w) => w.code && w.code.startsWith('PANOPTIC_')).map((w) => `${w.code} ${w.message}`);
  assert.equal(messages.length, 5, messages.join('\n'));
  const has = (re) => assert.ok(messages.some((m) => re.test(m)), `${re} in\n${messages.join('\n')}`);
  has(/^PANOPTIC_UNKNOWN_OPTION options\.intreval is not an option and is ignored \(known: interval, scaleFactor, .*keepAlive, maxSeries, maxTagSets, maxClusterSeries, expireAfter, runtime\)$/);
  has(/^PANOPTIC_UNKNOWN_OPTION options\.histogram\.lowset is not an option .*lowest/);
  has(/^PANOPTIC_UNKNOWN_OPTION options\.influx\.nope is not an option .*retentionPolicy/);
  has(/^PANOPTIC_UNKNOWN_OPTION serve\(\) options\.hots is not an option .*host, port/);
  has(/^PANOPTIC_INVALID_OPTION options\.interval must be a finite number > 0, got '1000'; the default 10000 is used instead$/);
});

test('an invalid inc n counts 1 (meta.invalid), an invalid sample is dropped (meta.dropped); each method warns once', async (t) => {
  const interval = 100;
  const p = new Panopticon({ interval });
  t.after(() => p.stop());
  const warnings = [];
  p.on('warning', (w) => warnings.push(w));
  p.on('newInterval', () => {
    p.inc(['a'], 'n', '5');
    p.inc(['a'], 'n', NaN);
    p.inc(['a'], 'n'); // no n: 1, valid
    p.inc(['a'], 'n', null); // null is no n too
    p.sample(['a'], 's', 'x');
    p.sample(['a'], 's', 2);
  });
  const all = await deliveriesUntil(p, (d) => d.data.master.a !== undefined);
  const d = all[all.length - 1];
  assert.equal(d.data.master.a.n.value.val, 4 / interval, 'every call counts 1');
  assert.equal(d.meta.invalid, 2);
  assert.equal(d.meta.dropped, 1);
  assert.equal(d.data.master.a.s.value.average, 2, 'the valid sample only');
  await next(p, 'delivery');
  assert.deepEqual(warnings.map((w) => w.code), ['PANOPTIC_INVALID_VALUE', 'PANOPTIC_INVALID_VALUE']);
  assert.match(warnings[0].message, /^inc\(\) at \["a","n"\] was given '5', not a finite number, or nothing for 1: it counts as 1, as in panopticon 0\.3\.0, and is counted in meta\.invalid/);
  assert.match(warnings[1].message, /^sample\(\) at \["a","s"\] was given 'x', not a finite number: the data point is dropped and counted in meta\.dropped/);
});

/** Runs `program` in a new node process; resolves with its stdout and exit code. */
function run(program) {
  const child = spawn(process.execPath, ['-e', `const Panopticon = require(${PANOPTIC});\n${program}`], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (chunk) => { out += chunk; });
  return { child, done: new Promise((resolve) => child.once('exit', (code) => resolve({ out, code }))) };
}

test('an instance does not keep its process alive; keepAlive: true and a serve() server do', { timeout: 60000 }, async () => {
  // The program has nothing else to do: it ends at once, before any delivery.
  const ends = run(`
    const p = new Panopticon({ interval: 100 });
    p.inc([], 'n');
    let deliveries = 0;
    p.on('delivery', () => { deliveries += 1; });
    process.on('exit', () => console.log(deliveries));
  `);
  assert.deepEqual(await ends.done, { out: '0\n', code: 0 });
  // keepAlive: it lives on until stop().
  const lives = run(`
    const p = new Panopticon({ interval: 100, keepAlive: true });
    let deliveries = 0;
    p.on('delivery', () => { if (++deliveries === 3) p.stop(); });
    process.on('exit', () => console.log(deliveries));
  `);
  assert.deepEqual(await lives.done, { out: '3\n', code: 0 });
  // serve(): answers for as long as it serves.
  const serves = run(`
    const p = new Panopticon({ interval: 100 });
    p.serve({ port: 0 }).then(({ port }) => console.log(port));
  `);
  const port = await new Promise((resolve) => serves.child.stdout.once('data', (chunk) => resolve(Number(chunk))));
  for (let i = 0; i < 3; i++) {
    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    assert.equal(health.status, 200);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.equal(serves.child.exitCode, null, 'still serving');
  serves.child.kill();
  await serves.done;
});
