'use strict';

// panoptic inside worker_threads. A thread's instance named like an instance of its process's main
// thread feeds it through process memory: its data appears once, under data.threads and in
// data.cluster (never inside data.master), including the last interval of a thread that ends.
// Without such a host, a thread's instance delivers on its own.

const test = require('node:test');
const assert = require('node:assert/strict');
const { Worker } = require('worker_threads');
const { next, deliveryWhere, stopWorkers, Panopticon } = require('./helpers');

const PANOPTIC = JSON.stringify(require.resolve('..'));

function thread(body, workerData) {
  const worker = new Worker(`
    const { parentPort, workerData, threadId } = require('worker_threads');
    const Panopticon = require(${PANOPTIC});
    ${body}
  `, { eval: true, workerData });
  const exited = new Promise((resolve) => worker.once('exit', resolve));
  return { worker, exited };
}

const sumOf = (tree) => (tree && tree.n ? tree.n.value.val : 0);

test('threads with the instance name of the main thread feed it, once', { timeout: 60000 }, async (t) => {
  const interval = 200;
  const p = new Panopticon({ name: 'app', interval });
  t.after(() => p.stop());
  const body = `
    const p = new Panopticon({ name: 'app', interval: ${interval} });
    p.on('newInterval', () => {
      p.inc([], 'n', workerData);
      p.sample([], 's', workerData);
      p.set([], 'who', threadId);
      p.histogram([], 'h', workerData);
      p.meter([], 'm', workerData);
      p.gauge([], 'g', () => workerData);
    });
    parentPort.on('message', () => { p.stop(); parentPort.close(); });
  `;
  const threads = [thread(body, 2), thread(body, 3)];
  t.after(() => Promise.all(threads.map(({ worker }) => worker.terminate())));
  p.on('newInterval', () => {
    p.inc([], 'n', 1);
    p.sample([], 's', 1);
    p.histogram([], 'h', 1);
  });
  const labels = threads.map(({ worker }) => `master:${worker.threadId}`);
  const d = await deliveryWhere(p, (x) => x.data.threads && labels.every((l) => x.data.threads[l] && x.data.threads[l].n) && x.data.master.n);
  assert.equal(sumOf(d.data.master), 1 / interval, 'the master holds only its own data');
  assert.equal(sumOf(d.data.threads[labels[0]]), 2 / interval);
  assert.equal(sumOf(d.data.threads[labels[1]]), 3 / interval);
  assert.equal(d.data.threads[labels[1]].who.value.val, threads[1].worker.threadId);
  assert.equal(sumOf(d.data.cluster), 6 / interval, 'master + threads, each once');
  const s = d.data.cluster.s.value;
  assert.deepEqual([s.min, s.max, s.average], [1, 3, 2]);
  assert.equal(s.sigma, 1);
  // The new methods merge across threads too: histograms add up, meters and gauges sum.
  const h = d.data.cluster.h.value;
  assert.deepEqual([h.count, h.min, h.max, h.p50], [3, 1, 3, 2]);
  assert.ok(d.data.cluster.m.value.count >= 5, 'both threads\' meters (counts since made)');
  assert.equal(d.data.cluster.g.value.val, 5);
  assert.deepEqual(d.meta.workers, {}, 'threads are not cluster workers');
});

test('the last interval of a thread is not lost: terminated, or exiting by itself', { timeout: 60000 }, async (t) => {
  const interval = 300;
  const p = new Panopticon({ name: 'last', interval });
  t.after(() => p.stop());
  // Records once, then reports; the main thread ends it mid-interval.
  const body = `
    const p = new Panopticon({ name: 'last', interval: ${interval} });
    p.inc([], 'n', workerData.n);
    p.sample([], 's', workerData.n);
    p.set([], 'set', 'kept');
    parentPort.postMessage(p.endTime);
    if (workerData.exit) setTimeout(() => process.exit(0), 20);
  `;
  const seen = {}; // label -> the trees it delivered
  p.on('delivery', (d) => {
    for (const [label, tree] of Object.entries(d.data.threads || {})) (seen[label] = seen[label] || []).push(tree);
  });
  const terminated = thread(body, { n: 5, exit: false });
  const exiting = thread(body, { n: 7, exit: true });
  // (A Worker's threadId reads -1 once it has exited.)
  const labelA = `master:${terminated.worker.threadId}`;
  const labelB = `master:${exiting.worker.threadId}`;
  const [endA, endB] = await Promise.all([next(terminated.worker, 'message'), next(exiting.worker, 'message')]);
  await terminated.worker.terminate();
  await exiting.exited;
  // Two more deliveries after both are gone: every interval they recorded is delivered by then.
  await next(p, 'delivery', 2);
  // Each recorded once; a boundary passing before it ended adds an empty interval ({}).
  for (const label of [labelA, labelB]) {
    const recorded = seen[label].filter((tree) => Object.keys(tree).length > 0);
    assert.equal(recorded.length, 1, `${label}: ${JSON.stringify(seen[label])}`);
    seen[label] = recorded[0];
  }
  // Terminated: its counters and samples (native memory) arrive. (Its set lived in the JS heap: it
  // arrives only if the thread's own timer closed the interval before the termination.)
  assert.deepEqual(seen[labelA].n.value, { val: 5 / interval, timeStamp: endA }, JSON.stringify(seen[labelA]));
  assert.equal(seen[labelA].s.value.average, 5);
  // Exiting by itself: everything, set included.
  assert.deepEqual(seen[labelB].n.value, { val: 7 / interval, timeStamp: endB }, JSON.stringify(seen[labelB]));
  assert.equal(seen[labelB].set.value.val, 'kept');
});

test('without a host of that name, a thread delivers on its own', { timeout: 30000 }, async () => {
  const main = new Panopticon({ interval: 100 });
  const { worker, exited } = thread(`
    // keepAlive: the thread has nothing else to do, and a timer of its own keeps it alive.
    const p = new Panopticon({ name: 'alone', interval: 100, keepAlive: true });
    // One record; deliveries before the one holding it (an empty interval) are skipped.
    p.on('delivery', (d) => {
      if (!d.data.master.n) return;
      parentPort.postMessage(d.data.master.n.value.val);
      p.stop();
    });
    p.inc([], 'n', 4);
  `);
  try {
    assert.equal(await next(worker, 'message'), 4 / 100);
    await exited;
  } finally {
    main.stop();
    await worker.terminate();
  }
});

test("a cluster worker's threads reach the master as <workerId>:<threadId>", { timeout: 60000 }, async (t) => {
  const cluster = require('cluster');
  const path = require('path');
  const interval = 200;
  const p = new Panopticon({ name: 'tw', interval });
  cluster.setupPrimary({ exec: path.join(__dirname, 'fixtures', 'thread-worker.js') });
  const worker = cluster.fork({ INTERVAL: interval });
  t.after(async () => {
    p.stop();
    await stopWorkers([worker]);
  });
  const d = await deliveryWhere(p, (x) => x.data.workers && x.data.workers[worker.id] && x.data.workers[worker.id].n &&
    Object.values(x.data.threads || {}).some((tree) => tree.n));
  const labels = Object.keys(d.data.threads);
  assert.equal(labels.length, 1);
  assert.match(labels[0], new RegExp(`^${worker.id}:\\d+$`));
  assert.equal(sumOf(d.data.workers[worker.id]), 1 / interval, "the worker's own data only");
  assert.equal(sumOf(d.data.threads[labels[0]]), 2 / interval);
  assert.equal(sumOf(d.data.cluster), 3 / interval);
});

test('registered loggers with a static merge(a, b) are merged into data.cluster', { timeout: 60000 }, async (t) => {
  const classSource = `
    class Peak {
      constructor(v, timeStamp) { this.max = v; this.timeStamp = timeStamp; }
      update(v) { this.max = Math.max(this.max, v); }
      reset() { this.max = null; }
      toJSON() { return { type: 'peak', value: { max: this.max, timeStamp: this.timeStamp } }; }
      static merge(a, b) { return { type: 'peak', value: { max: Math.max(a.value.max, b.value.max), timeStamp: a.value.timeStamp } }; }
    }
    class NoMerge extends Peak {}
    NoMerge.merge = undefined;
  `;
  const [Peak, NoMerge] = new Function(`${classSource}; return [Peak, NoMerge];`)();
  Panopticon.registerMethod('peak', Peak);
  Panopticon.registerMethod('noMerge', NoMerge);
  const interval = 200;
  const p = new Panopticon({ name: 'peaks', interval });
  t.after(() => p.stop());
  const { worker } = thread(`
    ${classSource}
    Panopticon.registerMethod('peak', Peak);
    Panopticon.registerMethod('noMerge', NoMerge);
    const p = new Panopticon({ name: 'peaks', interval: ${interval}, keepAlive: true });
    p.on('newInterval', () => { p.peak([], 'x', 9); p.noMerge([], 'y', 9); });
  `);
  t.after(() => worker.terminate());
  p.on('newInterval', () => {
    p.peak([], 'x', 4);
    p.noMerge([], 'y', 4);
  });
  const d = await deliveryWhere(p, (x) => x.data.master.x && Object.values(x.data.threads || {}).some((tree) => tree.x));
  assert.equal(d.data.master.x.value.max, 4);
  assert.equal(d.data.cluster.x.value.max, 9, 'merged with the class\'s merge');
  assert.equal(d.data.cluster.y, undefined, 'no static merge: absent from the cluster view');
  assert.equal(d.meta.errors, 0);
});
