'use strict';

// A real cluster (cluster.fork()): workers' intervals reach the master's delivery of the same
// interval under data.workers[id]; other IPC messages are ignored and left to their listeners.

const test = require('node:test');
const assert = require('node:assert/strict');
const cluster = require('cluster');
const path = require('path');
const { deliveryWhere, stopWorkers, Panopticon } = require('./helpers');

test('workers report into the master delivery of the same interval', { timeout: 60000 }, async (t) => {
  const interval = 200;
  const start = String(Date.now() - 7); // a numeric string, as a worker gets it from argv/env
  const p = new Panopticon({ interval, startTime: Number(start) });
  cluster.setupPrimary({ exec: path.join(__dirname, 'fixtures', 'cluster-worker.js'), silent: false });
  const workers = [1, 2].map((hits) => cluster.fork({ INTERVAL: interval, START: start, HITS: hits }));
  const appMessages = [];
  for (const w of workers) w.on('message', (msg) => { if (msg.hello) appMessages.push(msg.hello); });
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
