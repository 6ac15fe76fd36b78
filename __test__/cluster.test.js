'use strict';

// A real cluster (cluster.fork()): workers' intervals reach the master's delivery of the same
// interval under data.workers[id]; other IPC messages are ignored and left to their listeners.
// Run twice by `npm test`: over the native transport (this file), and over Node's IPC, the
// fallback (cluster-ipc.test.js sets PANOPTIC_TRANSPORT=ipc and runs it again).

const test = require('node:test');
const assert = require('node:assert/strict');
const cluster = require('cluster');
const path = require('path');
const { spawn } = require('child_process');
const { runtimeDir } = require('../lib/trace/protocol');
const { deliveriesUntil, deliveryWhere, stopWorkers, Panopticon } = require('./helpers');

const native = process.platform === 'linux' && process.env.PANOPTIC_TRANSPORT !== 'ipc';
const nativeOnly = native ? false : 'the native transport is off (Node IPC fallback)';

/** Counts, per worker, the snapshots that reach the master over Node's IPC. */
function countIpcSnapshots(workers) {
  const counts = new Map(workers.map((w) => [w, 0]));
  for (const w of workers) {
    w.on('message', (msg) => {
      if (msg && msg.__panoptic === 1 && typeof msg.snapshot === 'string') counts.set(w, counts.get(w) + 1);
    });
  }
  return () => [...counts.values()].reduce((a, b) => a + b, 0);
}

test('workers report into the master delivery of the same interval', { timeout: 60000 }, async (t) => {
  const interval = 200;
  const start = String(Date.now() - 7); // a numeric string, as a worker gets it from argv/env
  const p = new Panopticon({ interval, startTime: Number(start) });
  cluster.setupPrimary({ exec: path.join(__dirname, 'fixtures', 'cluster-worker.js'), silent: false });
  const workers = [1, 2].map((hits) => cluster.fork({ INTERVAL: interval, START: start, HITS: hits }));
  const appMessages = [];
  for (const w of workers) w.on('message', (msg) => { if (msg.hello && !msg.__panoptic) appMessages.push(msg.hello); });
  const overIpc = countIpcSnapshots(workers);
  t.after(async () => {
    p.stop();
    await stopWorkers(workers);
  });
  p.on('newInterval', () => p.inc(['m'], 'hits', 5));

  // Wait (bounded) for a delivery holding both workers' records (a worker's first interval, cut
  // short by its start, holds nothing: it records on 'newInterval').
  const complete = (d) => d.data.master.m && d.data.workers && Object.keys(d.data.workers).length === 2 &&
    Object.values(d.data.workers).every((data) => data.w);
  const d = await deliveryWhere(p, complete, 30000, 'no delivery with both workers');

  const end = d.data.master.m.hits.value.timeStamp;
  assert.equal(d.data.master.m.hits.value.val, 5 / interval);
  for (const [i, w] of workers.entries()) {
    const data = d.data.workers[w.id];
    assert.ok(data, `worker ${w.id}`);
    assert.deepEqual(data.w.hits.value, { val: (i + 1) / interval, timeStamp: end }, 'the same interval as the master');
    assert.equal(data.w.pid.value.val, w.process.pid);
  }
  // The cluster view: histograms added (values 1, 10 and 2, 20), gauges summed.
  const { latency, load } = d.data.cluster.w;
  assert.deepEqual([latency.value.count, latency.value.min, latency.value.max, latency.value.p50], [4, 1, 20, 2]);
  assert.equal(latency.value.mean, 33 / 4);
  assert.equal(load.value.val, 3);
  assert.equal(d.data.bogus, undefined, 'a 0.3.0-shaped message from the app is not ours');
  assert.deepEqual(appMessages, ['from the app', 'from the app'], "the app's own messages still reach it");

  // Three more deliveries with both workers: over the native transport, none of their snapshots
  // went through Node's IPC; over the fallback, all of them did.
  const before = overIpc();
  let more = 0;
  await deliveriesUntil(p, (x) => complete(x) && ++more === 3, 30000, 'three more deliveries with both workers');
  if (native) assert.equal(overIpc(), before, 'snapshots over IPC once the native transport is up');
  else assert.ok(overIpc() >= before + 6, `${overIpc() - before} snapshots over IPC`);
});

test('a process that is not a worker is refused and counted; hostile bytes from a worker are counted', { timeout: 60000, skip: nativeOnly }, async (t) => {
  const interval = 200;
  const start = String(Date.now() - 3);
  const p = new Panopticon({ interval, startTime: Number(start), name: 'hostile' });
  const warnings = [];
  p.on('warning', (w) => warnings.push(w));
  cluster.setupPrimary({ exec: path.join(__dirname, 'fixtures', 'cluster-worker.js'), silent: false });
  // This worker also connects to the socket itself and writes garbage (fixtures/cluster-worker.js).
  const worker = cluster.fork({ INTERVAL: interval, START: start, HITS: 4, NAME: 'hostile', HOSTILE: 1 });
  t.after(async () => {
    p.stop();
    await stopWorkers([worker]);
  });
  // Every delivery counted, including those emitted while no wait is pending.
  const counted = { refused: 0, decodeErrors: 0 };
  p.on('delivery', (d) => {
    counted.refused += d.meta.refused;
    counted.decodeErrors += d.meta.decodeErrors;
  });
  const hasWorker = (d) => Boolean(d.data.workers && d.data.workers[worker.id] && d.data.workers[worker.id].w);
  const socket = path.join(runtimeDir(), `${process.pid}.intake.sock`);
  await deliveryWhere(p, hasWorker, 30000, 'the worker');

  // Another process of the same user, not a worker: closed before a byte is read.
  const stranger = spawn(process.execPath, ['-e', `
    const s = require('net').connect(${JSON.stringify(socket)});
    s.on('connect', () => s.write(Buffer.alloc(64, 1)));
    let got = 0;
    s.on('data', (b) => { got += b.length; });
    s.on('close', () => { process.stdout.write(String(got)); });
    s.on('error', () => {});
  `]);
  let out = '';
  stranger.stdout.on('data', (b) => { out += b; });
  const code = await new Promise((resolve) => stranger.once('exit', resolve));
  assert.equal(code, 0);
  assert.equal(out, '0', 'the stranger was closed without an acknowledgement');

  // Both counted, and the worker's data keeps coming, right.
  const d = await deliveryWhere(p, (x) => counted.refused >= 1 && counted.decodeErrors >= 2 && hasWorker(x), 30000, 'the refusal and the garbage counted');
  assert.equal(counted.refused, 1);
  assert.equal(counted.decodeErrors, 2, 'a snapshot that does not decode, and a frame beyond the cap');
  assert.equal(d.data.workers[worker.id].w.hits.value.val, 4 / interval);
  const refusal = warnings.find((w) => w.code === 'PANOPTIC_REFUSED');
  assert.ok(refusal, warnings.map((w) => w.code).join());
  assert.match(refusal.message, /process \d+ is not a live cluster worker of this master \(counted in meta\.refused\)/);
});

test("a master instance built after the workers' gets their series keys again (resync)", { timeout: 60000 }, async (t) => {
  const interval = 150;
  cluster.setupPrimary({ exec: path.join(__dirname, 'fixtures', 'cluster-worker.js'), silent: false });
  const worker = cluster.fork({ INTERVAL: interval, START: '0', HITS: 3, NAME: 'resync' });
  let p = null;
  t.after(async () => {
    if (p) p.stop();
    await stopWorkers([worker]);
  });
  // Wait until the worker has shipped intervals (with its keys) before the master's instance exists.
  let shipped = 0;
  await new Promise((resolve) => {
    const onMessage = (msg) => {
      if (msg && msg.__panoptic && ++shipped === 3) {
        worker.removeListener('message', onMessage);
        resolve();
      }
    };
    worker.on('message', onMessage);
  });
  p = new Panopticon({ name: 'resync', interval, startTime: 0 });
  let late = 0;
  const d = await deliveryWhere(p, (x) => {
    late += x.meta.late;
    return x.data.workers && x.data.workers[worker.id] && x.data.workers[worker.id].w;
  }, 30000, 'the worker never reached the new instance');
  assert.ok(late >= 1, 'the interval whose keys were missing is counted as late');
  assert.equal(d.data.workers[worker.id].w.hits.value.val, 3 / interval);
  assert.equal(d.meta.decodeErrors, 0);
});

test('with persist, untouched series cost nothing on the wire and are delivered as before', { timeout: 60000 }, async (t) => {
  const interval = 200;
  const series = 3000;
  const start = String(Date.now() - 11);
  const p = new Panopticon({ interval, startTime: Number(start), name: 'persist', persist: true });
  cluster.setupPrimary({ exec: path.join(__dirname, 'fixtures', 'cluster-persist-worker.js'), silent: false });
  const worker = cluster.fork({ INTERVAL: interval, START: start, SERIES: series });
  t.after(async () => {
    p.stop();
    await stopWorkers([worker]);
  });
  // The size of the worker's last snapshot: what its native transport wrote, or the IPC text.
  let lastBytes = NaN;
  worker.on('message', (msg) => {
    if (msg && native && typeof msg.lastBytes === 'number') lastBytes = msg.lastBytes;
    if (msg && msg.__panoptic === 1 && typeof msg.snapshot === 'string') lastBytes = msg.snapshot.length;
  });
  // Deliveries in which the worker touched only s.hot: every counter is still there, at 0.
  const steady = (d) => {
    const s = d.data.workers && d.data.workers[worker.id] && d.data.workers[worker.id].s;
    return Boolean(s && s.c0 && s.c0.value.val === 0 && s.hot);
  };
  let seen = 0;
  const d = await deliveryWhere(p, (x) => steady(x) && ++seen === 3, 30000, 'three steady deliveries');
  const s = d.data.workers[worker.id].s;
  assert.equal(Object.keys(s).length, series + 1);
  for (let i = 0; i < series; i++) assert.deepEqual(s[`c${i}`].value, { val: 0, timeStamp: s.hot.value.timeStamp }, `c${i}`);
  assert.equal(s.hot.value.val, 2 / interval);
  assert.equal(d.data.cluster.s.c7.value.val, 0, 'in the cluster view too');
  // A steady snapshot: its header and s.hot, not a few bytes per untouched counter.
  assert.ok(lastBytes > 0 && lastBytes < 400, `${lastBytes} bytes for ${series} persisted series`);
});
