'use strict';

// panoptic inside worker_threads: each thread loads the addon and its instances work on their own
// (merging threads into one view is the cluster issue's work). Terminating a thread, even without
// stop(), must not disturb the other threads.

const test = require('node:test');
const assert = require('node:assert/strict');
const { Worker } = require('worker_threads');
const { next, Panopticon } = require('./helpers');

const script = `
  const { parentPort, workerData } = require('worker_threads');
  const Panopticon = require(${JSON.stringify(require.resolve('..'))});
  const p = new Panopticon({ interval: 100 });
  p.on('delivery', (d) => {
    if (!d.data.master.n) { p.inc([], 'n', workerData); return; }
    parentPort.postMessage({ val: d.data.master.n.value.val, pid: d.meta.pid });
    if (workerData === 2) p.stop(); // the other thread never stops its instance
  });
  p.inc([], 'n', workerData);
`;

function run(n) {
  const worker = new Worker(script, { eval: true, workerData: n });
  return { worker, message: next(worker, 'message', 1, 10000) };
}

test('instances in worker threads deliver their own data', async (t) => {
  const main = new Panopticon({ interval: 100 });
  t.after(() => main.stop());
  const a = run(1);
  const b = run(2);
  const [ma, mb] = await Promise.all([a.message, b.message]);
  assert.deepEqual(ma, { val: 1 / 100, pid: process.pid });
  assert.deepEqual(mb, { val: 2 / 100, pid: process.pid });
  await Promise.all([a.worker.terminate(), b.worker.terminate()]);
  // The main thread's instance is unaffected by the threads that came and went.
  main.inc([], 'after', 1);
  let d;
  do d = await next(main, 'delivery'); while (!d.data.master.after);
  assert.equal(d.data.master.after.value.val, 1 / 100);
});
