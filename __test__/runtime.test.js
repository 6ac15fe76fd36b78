'use strict';

// Runtime metrics (runtime: true, collectRuntime()): values against process.memoryUsage() and
// process.cpuUsage(), names and labels against prom-client's collectDefaultMetrics() in the same
// process, and the event-loop delay of a real cluster with blocked workers and a worker thread,
// merged as one histogram.

const test = require('node:test');
const assert = require('node:assert/strict');
const cluster = require('cluster');
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const { Worker } = require('worker_threads');
const { performance } = require('perf_hooks');
const { next, fresh, deliveryWhere, stopWorkers, Panopticon } = require('./helpers');

const val = (tree, id) => tree[id].value.val;

/** Makes short-lived garbage every 5 ms until the test ends: minor GCs are certain. */
function churnGarbage(t) {
  let kept = [];
  const churn = setInterval(() => {
    kept = [];
    for (let i = 0; i < 20000; i++) kept.push({ i });
  }, 5);
  t.after(() => clearInterval(churn));
}

test('runtime: true reports sane values every interval', { timeout: 30000 }, async (t) => {
  const interval = 500;
  const p = await fresh({ interval, scaleFactor: 1000, runtime: true });
  t.after(() => p.stop());
  const cpuBefore = process.cpuUsage();
  // Garbage for the young generation: minor GCs are certain.
  churnGarbage(t);
  const ds = await next(p, 'delivery', 3, 20000);
  const cpuAfter = process.cpuUsage();
  const mem = process.memoryUsage();
  const d = ds[2];
  const proc = d.data.master.process;
  const node = d.data.master.nodejs;
  // Levels: the same readings a moment apart.
  assert.ok(Math.abs(val(proc, 'resident_memory_bytes') - mem.rss) < 0.5 * mem.rss, 'rss');
  assert.ok(Math.abs(val(node, 'heap_size_total_bytes') - mem.heapTotal) < 0.5 * mem.heapTotal, 'heap total');
  assert.ok(val(node, 'heap_size_used_bytes') <= val(node, 'heap_size_total_bytes'));
  assert.ok(val(node, 'heap_space_size_used_bytes{space="new"}') > 0);
  assert.ok(val(node, 'external_memory_bytes') > 0);
  assert.equal(node.array_buffers_bytes, undefined, 'only with runtime.arrayBuffers');
  assert.equal(val(node, `version_info{major="${process.versions.node.split('.')[0]}",minor="${process.versions.node.split('.')[1]}",patch="${process.versions.node.split('.')[2]}",version="${process.version}"}`), 1);
  assert.ok(val(node, 'active_resources_total') >= 1, 'at least the churn timer');
  assert.ok(val(node, 'active_resources{type="Timeout"}') >= 1);
  assert.equal(val(proc, 'open_fds'), fs.readdirSync('/proc/self/fd').length - 1);
  const limit = fs.readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
  assert.equal(val(proc, 'max_fds'), Number(limit.split(/\s+/)[3]));
  assert.ok(Math.abs(val(proc, 'start_time_seconds') - (Date.now() / 1000 - process.uptime())) <= 2);
  // Counters: per second at scaleFactor 1000. The CPU of two intervals (each read just before
  // its end) is within what the process used around them.
  const cpuSeconds = (ds[1].data.master.process.cpu_seconds_total.value.val + val(proc, 'cpu_seconds_total')) * interval / 1000;
  const used = (cpuAfter.user + cpuAfter.system - cpuBefore.user - cpuBefore.system) / 1e6;
  assert.ok(cpuSeconds > 0 && cpuSeconds <= used + 0.05, `cpu ${cpuSeconds} s, used ${used} s`);
  assert.ok(Math.abs(val(proc, 'cpu_user_seconds_total') + val(proc, 'cpu_system_seconds_total') - val(proc, 'cpu_seconds_total')) < 1e-9);
  const loop = val(node, 'eventloop_active_seconds_total') + val(node, 'eventloop_idle_seconds_total');
  assert.ok(loop > 0.8 && loop < 1.2, `active + idle seconds per second: ${loop}`);
  // Histograms, in seconds at scaleFactor 1000.
  const lag = node.eventloop_lag_seconds.value;
  assert.ok(lag.count >= 10 && lag.count <= interval / 10 + 2, `lag samples every 10 ms: ${lag.count}`);
  assert.ok(lag.max < 1, 'seconds, not ms');
  const gc = node['gc_duration_seconds{kind="minor"}'].value;
  assert.ok(gc.count >= 1 && gc.max < 1, `minor GCs in seconds: ${JSON.stringify(gc)}`);
  assert.equal(d.meta.errors, 0);
});

test('the process read natively: resident memory, CPU time and descriptors against Node\'s own', { timeout: 30000, skip: !fs.existsSync('/proc/self/stat') && 'reads /proc (Linux)' }, async (t) => {
  const interval = 200;
  const p = await fresh({ interval, scaleFactor: 1000, runtime: true });
  t.after(() => p.stop());
  // About a quarter of every interval busy: CPU time in each.
  const busy = setInterval(() => {
    const end = performance.now() + 5;
    while (performance.now() < end);
  }, 20);
  t.after(() => clearInterval(busy));
  const before = process.cpuUsage();
  const ds = await next(p, 'delivery', 5, 20000);
  const after = process.cpuUsage();
  const rss = process.memoryUsage.rss();
  let cpu = 0;
  // The first delivery's interval began before `before`.
  for (const d of ds.slice(1)) {
    const proc = d.data.master.process;
    const user = val(proc, 'cpu_user_seconds_total');
    const system = val(proc, 'cpu_system_seconds_total');
    // Increases: neither part of the CPU time ever goes back, and they add up to the total.
    assert.ok(user >= 0 && system >= 0, `user ${user}, system ${system}`);
    assert.ok(Math.abs(user + system - val(proc, 'cpu_seconds_total')) < 1e-9);
    cpu += val(proc, 'cpu_seconds_total') * interval / 1000;
    assert.ok(val(proc, 'open_fds') >= 3, 'stdin, stdout, stderr at least');
    assert.ok(Math.abs(val(proc, 'resident_memory_bytes') - rss) < 0.25 * rss, `rss ${val(proc, 'resident_memory_bytes')} vs ${rss}`);
    assert.equal(d.meta.errors, 0);
  }
  // Four intervals' CPU, read by the sampler thread, within what process.cpuUsage() saw over
  // about four and a half (and most of it: each interval was a quarter busy).
  const used = (after.user + after.system - before.user - before.system) / 1e6;
  assert.ok(cpu <= used + 0.02 && cpu >= 0.5 * used, `native ${cpu} s, process.cpuUsage() ${used} s`);
});

test('a resource type that expires is reported again when it is back, and its id is nobody else\'s meanwhile', { timeout: 30000 }, async (t) => {
  const net = require('net');
  const interval = 150;
  const p = await fresh({ interval, expireAfter: 1, runtime: true });
  t.after(() => p.stop());
  const TYPE = 'active_resources{type="TCPServerWrap"}';
  const listen = () => new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => resolve(server));
  });
  let server = await listen();
  await deliveryWhere(p, (d) => d.data.master.nodejs[TYPE] !== undefined, 5000, 'the server\'s type reported');
  server.close();
  // Gone: its series expires after an interval without a number, and its id is free.
  await deliveryWhere(p, (d) => d.data.master.nodejs[TYPE] === undefined, 5000, 'the type gone');
  await next(p, 'delivery', 2, 5000);
  // New series of the application's take the freed ids: the sampler must not write into them.
  for (let i = 0; i < 5; i++) p.gauge(['app'], `level${i}`, () => i);
  await next(p, 'delivery', 2, 5000);
  server = await listen();
  t.after(() => server.close());
  const d = await deliveryWhere(p, (x) => x.data.master.nodejs[TYPE] !== undefined, 5000, 'the type reported again');
  assert.equal(val(d.data.master.nodejs, TYPE), 1);
  for (let i = 0; i < 5; i++) assert.equal(d.data.master.app[`level${i}`].value.val, i);
  assert.equal(d.meta.errors, 0);
});

test('runtime option checks, ids in the instance\'s time unit, collectRuntime() and stop', { timeout: 30000 }, async (t) => {
  const warnings = [];
  const onWarning = (w) => warnings.push(w);
  process.on('warning', onWarning);
  t.after(() => process.removeListener('warning', onWarning));
  const q = new Panopticon({ interval: 200, runtime: { eventLoopResolutionn: 5 } });
  q.stop();
  await new Promise((resolve) => setImmediate(resolve));
  assert.ok(warnings.some((w) => w.code === 'PANOPTIC_UNKNOWN_OPTION' && w.message.startsWith('options.runtime.eventLoopResolutionn is not an option')), 'unknown runtime key warned');
  assert.throws(() => new Panopticon({ runtime: 'yes' }), { name: 'TypeError', message: "options.runtime must be a boolean or an object, got 'yes'" });
  assert.throws(() => new Panopticon({ runtime: { eventLoopResolution: 0 } }), { name: 'RangeError', message: 'options.runtime.eventLoopResolution must be an integer from 1 to 1000 (ms), got 0' });
  assert.throws(() => new Panopticon({ runtime: { eventLoopResolution: '5' } }), { name: 'TypeError' });
  assert.throws(() => new Panopticon({ runtime: { arrayBuffers: 1 } }), { name: 'TypeError', message: 'options.runtime.arrayBuffers must be a boolean, got 1' });

  const p = await fresh({ interval: 300 });
  t.after(() => p.stop());
  p.collectRuntime({ eventLoopResolution: 20, arrayBuffers: true });
  // The first delivery's interval began before collectRuntime().
  await next(p, 'delivery');
  const d = await next(p, 'delivery');
  const buffers = d.data.master.nodejs.array_buffers_bytes.value.val;
  assert.ok(buffers >= 0 && buffers <= d.data.master.nodejs.external_memory_bytes.value.val, `array buffers ${buffers}: part of the external memory`);
  const lag = d.data.master.nodejs.eventloop_lag_milliseconds.value;
  assert.ok(lag.count >= 3 && lag.count <= 300 / 20 + 2, `every 20 ms: ${lag.count}`);
  assert.ok(d.data.master.nodejs['gc_duration_milliseconds{kind="minor"}'] === undefined || d.data.master.nodejs['gc_duration_milliseconds{kind="minor"}'].value.max < 1000);
  p.collectRuntime(false);
  await next(p, 'delivery'); // the interval in which they stopped has what the sampler held then
  const off = await next(p, 'delivery');
  assert.deepEqual(off.data.master, {}, 'nothing after collectRuntime(false)');
});

test('the event-loop delay: 0 while the loop waits, one sample of about a block\'s length for a block', { timeout: 30000 }, async (t) => {
  const p = await fresh({ interval: 300, runtime: { eventLoopResolution: 5 } });
  t.after(() => p.stop());
  await next(p, 'delivery');
  // One 100 ms block; the loop waits otherwise (nothing else runs in this process).
  setTimeout(() => {
    const end = performance.now() + 100;
    while (performance.now() < end);
  }, 50);
  const lagOf = (d) => d.data.master.nodejs.eventloop_lag_milliseconds.value;
  const d = await deliveryWhere(p, (x) => lagOf(x).max >= 50, 10000, 'the block\'s delay delivered');
  const lag = lagOf(d);
  // The sampler asks a busy loop once: the whole block (less what had passed when it asked,
  // at most one resolution) is one sample, not one per 5 ms.
  assert.ok(lag.max >= 90 && lag.max < 200, `the block: ${JSON.stringify(lag)}`);
  assert.equal(lag.min, 0, 'samples taken while the loop waited are 0');
  assert.ok(lag.p50 < 5, `most samples are the waiting loop's: ${JSON.stringify(lag)}`);
  assert.equal(d.meta.dropped, 0);
});

// prom-client's default metrics that panoptic writes under the same name, type and labels, and
// the deliberate differences (docs/runtime.md lists them).
const DIFFERENT = {
  process_virtual_memory_bytes: 'not collected (a read of /proc/self/status per interval)',
  process_heap_bytes: 'not collected (a read of /proc/self/status per interval)',
  nodejs_eventloop_lag_seconds: 'a histogram of every delay in the interval, not a gauge of the last',
  nodejs_eventloop_lag_min_seconds: 'in the histogram',
  nodejs_eventloop_lag_max_seconds: 'in the histogram',
  nodejs_eventloop_lag_mean_seconds: 'in the histogram',
  nodejs_eventloop_lag_stddev_seconds: 'in the histogram',
  nodejs_eventloop_lag_p50_seconds: 'in the histogram',
  nodejs_eventloop_lag_p90_seconds: 'in the histogram',
  nodejs_eventloop_lag_p99_seconds: 'in the histogram',
  nodejs_active_handles: 'by type: nodejs_active_resources',
  nodejs_active_requests: 'by type: nodejs_active_resources',
};

/** `{ family: { type, labels: sorted label names } }` of a text exposition (labels of samples). */
function families(text) {
  const out = {};
  for (const line of text.split('\n')) {
    const m = /^# TYPE (\S+) (\S+)/.exec(line);
    if (m) out[m[1]] = { type: m[2], labels: new Set() };
  }
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line === '') continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? /.exec(line);
    const name = m[1];
    const family = out[name] ? name : name.replace(/_(bucket|sum|count)$/, '');
    const labels = m[3] ? [...m[3].matchAll(/([a-zA-Z_]\w*)="/g)].map((x) => x[1]).filter((l) => l !== 'le' && l !== 'worker') : [];
    if (out[family]) out[family].labels.add(labels.sort().join(','));
  }
  return out;
}

test('names, types and label sets match prom-client\'s collectDefaultMetrics() (scaleFactor 1000)', { timeout: 30000 }, async (t) => {
  const client = require('prom-client');
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry });
  const p = await fresh({ interval: 300, scaleFactor: 1000, runtime: true });
  t.after(() => p.stop());
  const { url } = await p.serve({ port: 0, host: '127.0.0.1' });
  // Garbage for GC entries of both, until panoptic's export has some; then both are read.
  churnGarbage(t);
  await deliveryWhere(p, (x) => x.data.master.nodejs['gc_duration_seconds{kind="minor"}'], 20000, 'a minor GC');
  await next(p, 'delivery');
  const exposition = await (await fetch(new URL('metrics', url))).text();
  const ours = families(exposition);
  const theirsText = await registry.metrics();
  // Prometheus' own checker: the runtime series parse, and its linter finds nothing in them that
  // it does not find in prom-client's (whose names they keep: nodejs_active_handles_total is a
  // gauge there too).
  const promtool = (text) => {
    const run = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    const lines = `${run.stdout}${run.stderr}`.split('\n').filter((line) => line.trim() !== '');
    assert.ok(!lines.some((line) => line.startsWith('error while linting')), lines.join('\n'));
    return new Set(lines);
  };
  const theirFindings = promtool(theirsText);
  const runtimeOnly = exposition.split('\n').filter((line) => /^(# (HELP|TYPE) )?(process_|nodejs_)/.test(line)).join('\n');
  for (const finding of promtool(`${runtimeOnly}\n`)) assert.ok(theirFindings.has(finding), `promtool: ${finding}`);
  const theirs = families(theirsText);
  const covered = [];
  for (const [name, { type, labels }] of Object.entries(theirs)) {
    if (DIFFERENT[name]) {
      assert.ok(!ours[name] || name === 'nodejs_eventloop_lag_seconds', `${name} is listed as different`);
      continue;
    }
    assert.ok(ours[name], `${name} is written`);
    assert.equal(ours[name].type, type, `${name}'s type`);
    // A family whose label sets prom-client has not seen yet (no GC of a kind) has none.
    for (const set of labels) assert.ok(ours[name].labels.has(set) || name === 'nodejs_gc_duration_seconds', `${name}: labels {${set}}`);
    covered.push(name);
  }
  assert.equal(ours.nodejs_eventloop_lag_seconds.type, 'histogram');
  assert.deepEqual([...ours['nodejs_gc_duration_seconds'].labels], ['kind']);
  assert.ok(covered.length >= 15, covered.join(' '));
});

test('a cluster with blocked workers and a thread: the event-loop delay merges as one histogram', { timeout: 90000 }, async (t) => {
  const interval = 2000;
  const resolution = 5;
  const env = { INTERVAL: interval, RESOLUTION: resolution };
  const p = new Panopticon({ name: 'rt', interval, startTime: 0, runtime: { eventLoopResolution: resolution } });
  t.after(() => p.stop());
  cluster.setupPrimary({ exec: path.join(__dirname, 'fixtures', 'runtime-worker.js'), silent: false });
  // Worker 1 blocks 60 ms four times a second: about 2.5 % of its samples are ~60 ms, so its p99
  // is one of them. Worker 2 and the thread do not block. In the union the blocked samples are
  // well under 1 %: the cluster's p99 is a small delay, its p999 a blocked one.
  const workers = [cluster.fork({ ...env, BLOCK_MS: 60, EVERY_MS: 250 }), cluster.fork({ ...env, BLOCK_MS: 0 })];
  t.after(() => stopWorkers(workers));
  const thread = new Worker(path.join(__dirname, 'fixtures', 'runtime-worker.js'), { env: { ...process.env, ...env, BLOCK_MS: '0' } });
  t.after(() => thread.terminate());
  const label = `master:${thread.threadId}`;
  const ids = workers.map((w) => String(w.id));
  const lagOf = (tree) => tree && tree.nodejs && tree.nodejs.eventloop_lag_milliseconds && tree.nodejs.eventloop_lag_milliseconds.value;
  // An interval every part covered whole (the second after each joined).
  let seen = 0;
  const d = await deliveryWhere(p, (x) => {
    const all = ids.every((id) => x.data.workers && lagOf(x.data.workers[id])) && x.data.threads && lagOf(x.data.threads[label]);
    if (all) seen += 1;
    return seen >= 2;
  }, 60000, 'every worker and the thread delivered');
  const parts = [lagOf(d.data.master), ...ids.map((id) => lagOf(d.data.workers[id])), lagOf(d.data.threads[label])];
  const merged = lagOf(d.data.cluster);
  // Exact fields of the union.
  assert.equal(merged.count, parts.reduce((s, x) => s + x.count, 0));
  assert.equal(merged.max, Math.max(...parts.map((x) => x.max)));
  assert.equal(merged.min, Math.min(...parts.map((x) => x.min)));
  const mean = parts.reduce((s, x) => s + x.mean * x.count, 0) / merged.count;
  assert.ok(Math.abs(merged.mean - mean) < 1e-9 * mean + 1e-12);
  const blocked = parts[1];
  assert.ok(blocked.p99 >= 40, `worker 1's p99 is a blocked delay: ${JSON.stringify(blocked)}`);
  // The union's p99: one of the many small delays (blocked ones are ~8 of ~1500 samples).
  assert.ok(merged.p99 < 20, `cluster p99 ${merged.p99} (worker 1: ${blocked.p99}); not a sum, mean or max of p99s`);
  assert.ok(merged.p999 >= 40, `cluster p999 is a blocked delay: ${merged.p999}`);
  // Thread data: no process-wide series (they would count twice); the cluster has each process's once.
  assert.equal(d.data.threads[label].process, undefined);
  assert.ok(d.data.threads[label].nodejs.heap_size_used_bytes.value.val > 0);
  const rss = [d.data.master, ...ids.map((id) => d.data.workers[id])].map((tree) => tree.process.resident_memory_bytes.value.val);
  assert.equal(d.data.cluster.process.resident_memory_bytes.value.val, rss.reduce((a, b) => a + b, 0), 'memory adds up over processes');
  // A process's constants do not add up: the cluster has one process's value (the last written).
  const processes = [d.data.master, ...ids.map((id) => d.data.workers[id])];
  for (const id of ['start_time_seconds', 'max_fds']) {
    const each = processes.map((tree) => tree.process[id].value.val);
    assert.equal(d.data.cluster.process[id].type, 'set');
    assert.ok(each.includes(d.data.cluster.process[id].value.val), `${id}: ${d.data.cluster.process[id].value.val} is one of ${each}`);
  }
  const version = Object.keys(d.data.cluster.nodejs).find((id) => id.startsWith('version_info{'));
  assert.equal(d.data.cluster.nodejs[version].value.val, 1, 'version_info: 1 whatever the number of processes and threads');
  assert.equal(d.data.threads[label].nodejs[version].value.val, 1);
});
