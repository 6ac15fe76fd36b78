'use strict';

// The `remoteWrite` option against a real Prometheus 2.42 (Debian's, installed when missing and
// run on loopback by scripts/backends.js with --web.enable-remote-write-receiver): a real
// 2-worker cluster's pushes arrive and the query API reads back exactly the counts recorded;
// histogram_quantile over the pushed buckets agrees with the delivery's percentiles within a
// bucket; an outage (Prometheus stopped, then restarted on the same data) loses nothing a large
// queue holds, and a small queue drops only its oldest batches, within its bound, counted; a
// program that ends right after stop() still pushes its last delivery.

const test = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('child_process');
const cluster = require('cluster');
const path = require('path');
const { stopWorkers, deliveryWhere, Panopticon } = require('./helpers');
const { startPrometheus, until } = require('../scripts/backends');

async function receiver(t) {
  const prometheus = await startPrometheus({ remoteWriteReceiver: true });
  t.after(() => prometheus.stop());
  return prometheus;
}

/** The value of a one-series PromQL answer (undefined when there is none). */
async function single(prometheus, promql) {
  const result = await prometheus.query(promql);
  assert.ok(result.length <= 1, `${promql}: ${JSON.stringify(result)}`);
  return result.length ? Number(result[0].value[1]) : undefined;
}

/** Polls until every query answers its expected value; the error says what was read last. */
async function expectValues(prometheus, expected, what) {
  let got;
  await until(async () => {
    got = {};
    for (const q of Object.keys(expected)) got[q] = await single(prometheus, q);
    return Object.keys(expected).every((q) => got[q] === expected[q]);
  }, 30000, what).catch((e) => {
    throw new Error(`${e.message}\nexpected ${JSON.stringify(expected, null, 1)}\ngot ${JSON.stringify(got, null, 1)}\n${prometheus.log()}`);
  });
}

test('a cluster pushes to a remote write receiver: exactly the counts recorded, quantiles within a bucket', { timeout: 120000 }, async (t) => {
  const prometheus = await receiver(t);
  const interval = 300;
  const buckets = [5, 10, 20, 40, 80, 160];
  const p = new Panopticon({
    interval,
    filter: "name != 'debug.noise'",
    remoteWrite: {
      url: `${prometheus.url}/api/v1/write`,
      perProcess: true,
      buckets,
      labels: { job: 'panoptic' },
      minBackoff: 50,
      maxBackoff: 500,
    },
  });
  cluster.setupPrimary({ exec: path.join(__dirname, 'fixtures', 'influx-worker.js'), silent: false });
  const workers = [0, 1].map(() => cluster.fork({ INTERVAL: interval }));
  t.after(async () => {
    p.stop();
    await stopWorkers(workers);
  });
  const answer = (w, key) => new Promise((resolve) => w.on('message', (m) => m && m[key] !== undefined && resolve(m[key])));
  await Promise.all(workers.map((w) => answer(w, 'ready')));
  const recorded = [answer(workers[0], 'recorded'), answer(workers[1], 'recorded')];
  workers[0].send({ record: 3 });
  workers[1].send({ record: 5 });
  await Promise.all(recorded);
  p.inc(['debug'], 'noise', 1);
  p.set(['pool'], 'size', 16);
  // 200 latencies in one interval: the delivery's percentiles describe them all.
  const latencies = Array.from({ length: 200 }, (_, i) => 1 + ((i * 37) % 150));
  for (const v of latencies) p.histogram(['http'], 'latency', v);
  const delivery = await deliveryWhere(p, (d) => d.data.master?.http?.latency?.value?.count === 200, 20000, 'the latencies delivered');
  const latency = delivery.data.master.http.latency.value;

  // The cluster series (no worker label): counters summed across workers, since the start.
  const cluster_ = 'worker="",job="panoptic"';
  await expectValues(prometheus, {
    [`jobs_done_total{${cluster_},queue="main"}`]: 8,
    [`jobs_size_count{${cluster_}}`]: 8,
    [`jobs_size_sum{${cluster_}}`]: 1 + 2 + 3 + (1 + 2 + 3 + 4 + 5),
    [`pool_size{${cluster_}}`]: 16,
    [`http_latency_count{${cluster_}}`]: 200,
    [`http_latency_sum{${cluster_}}`]: latencies.reduce((a, b) => a + b, 0),
    [`http_latency_bucket{${cluster_},le="20.0"}`]: latencies.filter((v) => v <= 20).length,
    [`http_latency_bucket{${cluster_},le="+Inf"}`]: 200,
  }, 'the cluster\'s values in Prometheus');

  // Each process's own series, with a worker label: each worker's own count.
  const perWorker = await prometheus.query('jobs_done_total{worker!="",worker!="master"}');
  assert.deepEqual(perWorker.map((s) => Number(s.value[1])).sort(), [3, 5]);
  assert.deepEqual(perWorker.map((s) => s.metric.worker).sort(), workers.map((w) => String(w.id)).sort());
  assert.equal(await single(prometheus, 'pool_size{worker="master"}'), 16);
  // The instance's filter: debug.noise was never pushed.
  assert.deepEqual(await prometheus.query('{__name__=~"debug.*"}'), []);

  // histogram_quantile over the pushed buckets lands in the bucket of the delivery's percentile
  // (the bounds of the buckets around it within HDR's precision, 3 significant figures).
  const below = (x) => [0, ...buckets].filter((b) => b < x).pop();
  const above = (x) => buckets.find((b) => x <= b) ?? Infinity;
  for (const [q, key] of [[0.5, 'p50'], [0.9, 'p90'], [0.99, 'p99']]) {
    const estimate = await single(prometheus, `histogram_quantile(${q}, http_latency_bucket{${cluster_}})`);
    const exact = latency[key];
    const [lo, hi] = [below(exact * 0.999), above(exact * 1.001)];
    assert.ok(estimate >= lo && estimate <= hi, `q ${q}: histogram_quantile ${estimate}, the delivery's ${key} ${exact} is in (${lo}, ${hi}]`);
  }

  const { remoteWrite } = p.exportStats();
  assert.ok(remoteWrite.pushedBatches >= 1 && remoteWrite.pushedPoints >= 20, JSON.stringify(remoteWrite));
  assert.equal(remoteWrite.failures, 0, JSON.stringify(remoteWrite));
  assert.equal(remoteWrite.droppedPoints, 0, JSON.stringify(remoteWrite));
  assert.equal(remoteWrite.lastError, null);
});

test('pushes queued while the receiver is down arrive after it restarts; a small queue drops the oldest, within its bound', { timeout: 120000 }, async (t) => {
  const prometheus = await receiver(t);
  const url = `${prometheus.url}/api/v1/write`;
  const common = { url, minBackoff: 20, maxBackoff: 200, timeout: 2000 };
  const interval = 200;
  const p = new Panopticon({ interval, remoteWrite: { ...common, labels: { job: 'large' } } });
  // 40 counters reported every interval (persist), in batches of 10 series, into a 4 KiB queue:
  // about two deliveries.
  const small = new Panopticon({ interval, persist: true, remoteWrite: { ...common, prefix: 'small_', labels: { job: 'small' }, maxQueueBytes: 4096, batchPoints: 10 } });
  t.after(() => {
    p.stop();
    small.stop();
  });
  for (let i = 0; i < 40; i++) small.inc(['many'], `series_${i}`, 1);
  p.inc(['jobs'], 'done', 1);
  const stats = (instance) => instance.exportStats().remoteWrite;
  await until(() => stats(p).pushedPoints >= 1 && stats(small).pushedPoints >= 40, 30000, 'the first pushes');
  await expectValues(prometheus, { 'jobs_done_total{job="large"}': 1 }, 'the first push');

  await prometheus.halt();
  p.inc(['jobs'], 'done', 10);
  // While the receiver is down: requests fail and are retried; the small queue overflows and
  // drops its oldest batches, never holding more than its bound.
  await until(() => {
    const s = stats(small);
    assert.ok(s.queuedBytes <= 4096, JSON.stringify(s));
    return stats(p).failures >= 2 && s.droppedPoints > 0 && s.droppedBatches > 0;
  }, 30000, 'failed pushes and drops while the receiver is down');
  const { pushedPoints: pushedBefore } = stats(small);

  await prometheus.restart();
  // What was recorded during the outage arrives; the large queue dropped nothing.
  await expectValues(prometheus, { 'jobs_done_total{job="large"}': 11 }, 'the outage\'s increments');
  const s = stats(p);
  assert.ok(s.retries >= 1, JSON.stringify(s));
  assert.equal(s.droppedPoints, 0, JSON.stringify(s));
  // Every small batch is whole series: what was dropped is counted in series, in batches of 10.
  const small_ = stats(small);
  assert.equal(small_.droppedPoints % 1, 0);
  assert.ok(small_.droppedPoints <= small_.droppedBatches * 10, JSON.stringify(small_));
  await until(() => stats(small).pushedPoints > pushedBefore, 30000, 'the small queue to push again');
  assert.ok(stats(small).queuedBytes <= 4096);
  assert.equal(await single(prometheus, 'small_many_series_0_total'), 1);
});

test('a program that ends right after stop() still pushes its last delivery', { timeout: 60000 }, async (t) => {
  const prometheus = await receiver(t);
  const program = `
    const Panopticon = require(${JSON.stringify(path.join(__dirname, '..'))});
    // keepAlive: the program waits for a delivery with nothing else to keep it alive.
    const p = new Panopticon({ interval: 200, keepAlive: true, remoteWrite: { url: ${JSON.stringify(`${prometheus.url}/api/v1/write`)}, labels: { job: 'exit' } } });
    p.inc(['jobs'], 'done', 7);
    p.once('delivery', () => p.stop());
  `;
  const started = Date.now();
  const child = spawn(process.execPath, ['-e', program], { stdio: ['ignore', 'inherit', 'inherit'] });
  const [code, signal] = await new Promise((resolve) => child.once('exit', (...a) => resolve(a)));
  assert.deepEqual([code, signal], [0, null]);
  // It waited for the push, not for the whole flush time.
  assert.ok(Date.now() - started < 15000, `the program took ${Date.now() - started} ms`);
  assert.equal(await single(prometheus, 'jobs_done_total{job="exit"}'), 7);
});

test('remoteWrite options: a wrong type is a TypeError, a value out of range a RangeError, naming the field', () => {
  const make = (remoteWrite) => () => new Panopticon({ interval: 1000, remoteWrite }).stop();
  assert.throws(make('http://x'), { name: 'TypeError', message: "options.remoteWrite must be an object, got 'http://x'" });
  assert.throws(make({ url: 1 }), { name: 'TypeError', message: 'remoteWrite.url must be a string, got 1' });
  assert.throws(make({ url: 'http://h/w', headers: { a: 1 } }), { name: 'TypeError', message: 'remoteWrite.headers.a must be a string, got 1' });
  assert.throws(make({ url: 'http://h/w', buckets: [1, 'x'] }), { name: 'TypeError', message: "remoteWrite.buckets[1] must be a number, got 'x'" });
  assert.throws(make({ url: 'https://h/w' }), {
    name: 'RangeError',
    message: 'remoteWrite.url must be an http:// URL (https is not supported: this build has no TLS), got "https://h/w"',
  });
  assert.throws(make({ url: 'http://h/w', every: -5 }), { name: 'RangeError', message: 'remoteWrite.every must be a number of ms above 0, at most one day, got -5' });
  assert.throws(make({ url: 'http://h/w', buckets: [2, 1] }), { name: 'RangeError', message: /^remoteWrite\.buckets\[1\] must be greater than remoteWrite\.buckets\[0\]/ });
  assert.throws(make({ url: 'http://h/w', labels: { __x: 'y' } }), { name: 'RangeError', message: /^remoteWrite\.labels\.__x must be a label name/ });
  // Layouts by name (docs/prometheus.md#buckets), each error naming its key.
  make({ url: 'http://h/w', buckets: { default: [1, 2], nodejs_gc_duration_seconds: [0.001, 5] } })();
  assert.throws(make({ url: 'http://h/w', buckets: { gc: 'x' } }), { name: 'TypeError', message: "remoteWrite.buckets.gc must be an array of numbers, got 'x'" });
  assert.throws(make({ url: 'http://h/w', buckets: { gc: [3, 1] } }), { name: 'RangeError', message: /^remoteWrite\.buckets\.gc\[1\] must be greater than remoteWrite\.buckets\.gc\[0\]/ });
  assert.throws(make({ url: 'http://h/w', filter: 'name ==' }), { name: 'SyntaxError' });
});

test('an unknown remoteWrite key is warned about (PANOPTIC_UNKNOWN_OPTION) and ignored', async () => {
  const warned = new Promise((resolve) => {
    const onWarning = (w) => {
      if (w.code !== 'PANOPTIC_UNKNOWN_OPTION') return;
      process.off('warning', onWarning);
      resolve(w.message);
    };
    process.on('warning', onWarning);
  });
  new Panopticon({ interval: 1000, remoteWrite: { url: 'http://h/w', colour: 'blue' } }).stop();
  assert.match(await warned, /^options\.remoteWrite\.colour is not an option and is ignored/);
});
