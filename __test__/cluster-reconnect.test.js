'use strict';

// The native transport connects again after the master closed a worker's connection, and every
// interval's snapshot reaches its delivery exactly once (none lost, none twice). The master closes
// each connection after three frames: PANOPTIC_TEST_DROP_LINK_AFTER (testing only; read when the
// master starts listening, hence set before the first fork), a real close of the accepted socket.

process.env.PANOPTIC_TEST_DROP_LINK_AFTER = '3';

const test = require('node:test');
const assert = require('node:assert/strict');
const cluster = require('cluster');
const path = require('path');
const { deliveryWhere, stopWorkers, Panopticon } = require('./helpers');

const native = process.platform === 'linux' && process.env.PANOPTIC_TRANSPORT !== 'ipc';

test('a worker whose connection the master closed connects again; each interval arrives once', { timeout: 90000, skip: native ? false : 'the native transport is off' }, async (t) => {
  const interval = 200;
  const hits = 3;
  const start = String(Date.now() - 5);
  const p = new Panopticon({ interval, startTime: Number(start), name: 'reconnect' });
  cluster.setupPrimary({ exec: path.join(__dirname, 'fixtures', 'cluster-worker.js'), silent: false });
  const worker = cluster.fork({ INTERVAL: interval, START: start, HITS: hits, NAME: 'reconnect' });
  t.after(async () => {
    p.stop();
    await stopWorkers([worker]);
  });
  const hasWorker = (d) => Boolean(d.data.workers && d.data.workers[worker.id] && d.data.workers[worker.id].w);
  await deliveryWhere(p, hasWorker, 30000, 'the worker');
  // The next 18 intervals span several closed connections (3 frames each): every delivery has
  // the worker's interval, once (a snapshot merged twice would be a decode error, and a lost one
  // a missing or late interval).
  const counted = { late: 0, decodeErrors: 0, missing: 0, wrong: 0 };
  let seen = 0;
  await deliveryWhere(p, (d) => {
    counted.late += d.meta.late;
    counted.decodeErrors += d.meta.decodeErrors;
    if (!hasWorker(d)) counted.missing += 1;
    else if (d.data.workers[worker.id].w.hits.value.val !== hits / interval) counted.wrong += 1;
    return ++seen === 18;
  }, 60000, '18 deliveries');
  assert.deepEqual(counted, { late: 0, decodeErrors: 0, missing: 0, wrong: 0 });
  worker.send('transportState');
  const state = await new Promise((resolve) => {
    const onMessage = (msg) => {
      if (!msg || !msg.transportState) return;
      worker.removeListener('message', onMessage);
      resolve(msg.transportState);
    };
    worker.on('message', onMessage);
  });
  assert.ok(state.reconnects >= 3, `${state.reconnects} reconnections in 18 intervals`);
  assert.equal(state.lost, 0);
});
