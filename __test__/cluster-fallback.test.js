'use strict';

// The transport's fallback when the master cannot create its socket: the socket folder is not
// private (here, mode 0755 in a folder of the test's own, named by XDG_RUNTIME_DIR). The master
// warns once (PANOPTIC_TRANSPORT) and its workers' snapshots go over Node's IPC, complete.

const test = require('node:test');
const assert = require('node:assert/strict');
const cluster = require('cluster');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { deliveriesUntil, stopWorkers, Panopticon } = require('./helpers');

test('a socket folder that is not private: warned about, and the workers deliver over IPC', { timeout: 60000, skip: process.platform !== 'linux' && 'the native transport is Linux-only' }, async (t) => {
  const runtime = fs.mkdtempSync(path.join(os.tmpdir(), 'panoptic-fallback-'));
  fs.mkdirSync(path.join(runtime, 'panoptic'), { mode: 0o755 });
  fs.chmodSync(path.join(runtime, 'panoptic'), 0o755);
  process.env.XDG_RUNTIME_DIR = runtime;
  const interval = 200;
  const start = String(Date.now() - 3);
  const p = new Panopticon({ interval, startTime: Number(start), name: 'fallback' });
  const warnings = [];
  p.on('warning', (w) => warnings.push(w));
  cluster.setupPrimary({ exec: path.join(__dirname, 'fixtures', 'cluster-worker.js'), silent: false });
  const worker = cluster.fork({ INTERVAL: interval, START: start, HITS: 2, NAME: 'fallback' });
  let overIpc = 0;
  worker.on('message', (msg) => {
    if (msg && msg.__panoptic === 1 && typeof msg.snapshot === 'string') overIpc += 1;
  });
  t.after(async () => {
    p.stop();
    await stopWorkers([worker]);
    fs.rmSync(runtime, { recursive: true, force: true });
  });
  let complete = 0;
  await deliveriesUntil(p, (d) => {
    const w = d.data.workers && d.data.workers[worker.id] && d.data.workers[worker.id].w;
    if (w) assert.equal(w.hits.value.val, 2 / interval);
    return w && ++complete === 3;
  }, 30000, 'three deliveries with the worker');
  assert.ok(overIpc >= 3, `${overIpc} snapshots over IPC`);
  const transport = warnings.filter((w) => w.code === 'PANOPTIC_TRANSPORT');
  assert.equal(transport.length, 1, warnings.map((w) => w.message).join('\n'));
  assert.match(transport[0].message, /refusing the socket folder .*panoptic: its mode is 0755, not 0700 .*: the cluster workers' snapshots go over Node's IPC/);
});
