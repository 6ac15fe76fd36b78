'use strict';

// The `otlp` option against a receiver that decodes every request with the official OpenTelemetry
// definitions (PyPI's opentelemetry-proto, scripts/otlp-receiver.py; protobuf's own strict JSON
// parser for OTLP/JSON): a real 2-worker cluster, one worker killed and replaced by a new fork,
// pushes in both protocols and both temporalities, and every point is checked against the
// delivery of its interval (the cluster view and each worker's own tree).

const test = require('node:test');
const assert = require('node:assert/strict');
const cluster = require('cluster');
const path = require('path');
const { spawn } = require('child_process');
const { stopWorkers, Panopticon } = require('./helpers');
const { startOtlpReceiver, until } = require('../scripts/backends');

const INTERVAL = 300;

async function receiver(t) {
  const otlp = await startOtlpReceiver();
  t.after(() => otlp.stop());
  return otlp;
}

/** A resource's attributes as a plain object (int values as numbers). */
function attributes(list = []) {
  const out = {};
  for (const { key, value } of list) out[key] = value.stringValue ?? Number(value.intValue);
  return out;
}

/**
 * Every data point the receiver decoded: `{ resource, name, kind, temporality, point, time }`
 * (`resource`: its attributes; `time`: the point's time in ms).
 */
function points(otlp) {
  const out = [];
  for (const r of otlp.requests) {
    assert.equal(r.error, undefined, `a request that did not decode: ${r.error}`);
    if (r.status !== 200) continue;
    for (const rm of r.request.resourceMetrics ?? []) {
      const resource = attributes(rm.resource?.attributes);
      for (const sm of rm.scopeMetrics ?? []) {
        assert.equal(sm.scope.name, 'panoptic');
        for (const m of sm.metrics ?? []) {
          const [kind, data] = Object.entries(m).find(([k]) => ['sum', 'gauge', 'summary', 'histogram', 'exponentialHistogram'].includes(k));
          for (const point of data.dataPoints) {
            out.push({ resource, name: m.name, unit: m.unit, kind, data, point, time: Number(BigInt(point.timeUnixNano) / 1000000n) });
          }
        }
      }
    }
  }
  return out;
}

const tagsOf = (point) => attributes(point.attributes);
const numberOf = (point) => point.asDouble;

/** The leaves of a delivery's tree at jobs.done{queue="main"}, jobs.size, http.latency. */
function leaves(tree = {}) {
  return {
    done: tree.jobs?.['done{queue="main"}']?.value,
    size: tree.jobs?.size?.value,
    latency: tree.http?.latency?.value,
  };
}

async function clusterPushes(t, protocol, temporality, compression) {
  const otlp = await receiver(t);
  const deliveries = [];
  const p = new Panopticon({
    name: 'shop',
    interval: INTERVAL,
    filter: "name != 'debug.noise'",
    otlp: { url: otlp.url, protocol, temporality, compression, perProcess: true, minBackoff: 50, maxBackoff: 500 },
  });
  p.on('delivery', (d) => deliveries.push(d));
  cluster.setupPrimary({ exec: path.join(__dirname, 'fixtures', 'influx-worker.js'), silent: false });
  const fork = () => cluster.fork({ INTERVAL, NAME: 'shop' });
  const workers = [fork(), fork()];
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
  // Below 2.048 every HDR bucket is one unit (0.001): an exponential histogram maps exactly.
  for (const v of [0.5, 1, 1.5, 1]) p.histogram(['http'], 'small', v);
  // From 4 up HDR buckets start on exponential bounds: explicit buckets.
  const latencies = Array.from({ length: 200 }, (_, i) => 1 + ((i * 37) % 150));
  for (const v of latencies) p.histogram(['http'], 'latency', v);

  // The cluster's count of jobs as pushed so far (the last cumulative point, or the deltas' sum).
  const pushedJobs = (resource = (r) => r['panoptic.worker'] === undefined) => {
    const done = points(otlp).filter((x) => x.name === 'jobs.done' && resource(x.resource));
    if (temporality === 'cumulative') return done.length ? numberOf(done[done.length - 1].point) : 0;
    return done.reduce((sum, x) => sum + numberOf(x.point), 0);
  };
  await until(() => pushedJobs() === 8, 20000, 'the first 8 jobs pushed');
  // Worker 1 is killed; a new fork takes its place and records 4 more.
  const killed = workers[0];
  await new Promise((resolve) => {
    killed.once('exit', resolve);
    killed.kill();
  });
  workers.push(fork());
  await answer(workers[2], 'ready');
  const again = answer(workers[2], 'recorded');
  workers[2].send({ record: 4 });
  await again;
  await until(() => pushedJobs() === 12, 20000, 'all 12 jobs pushed');
  // Two more intervals pushed: a cumulative point goes on without new increments.
  const seen = deliveries.length;
  await until(() => deliveries.length >= seen + 2 && otlp.requests.length > 0, 20000, 'two more deliveries');
  await until(() => p.exportStats().otlp.queuedBytes === 0, 20000, 'the queue to empty');
  return { otlp, p, deliveries, workers, killed, latencies };
}

/** Checks every pushed point of the cluster view and of each worker against the deliveries. */
function checkAgainstDeliveries({ otlp, p, deliveries, workers, killed, latencies }, protocol, temporality, compression) {
  const all = points(otlp);
  assert.ok(otlp.requests.every((r) => r.contentType === (protocol === 'http/json' ? 'application/json' : 'application/x-protobuf')));
  assert.ok(otlp.requests.every((r) => r.contentEncoding === (compression === 'gzip' ? 'gzip' : '')));
  const proto = temporality === 'cumulative' ? 'AGGREGATION_TEMPORALITY_CUMULATIVE' : 'AGGREGATION_TEMPORALITY_DELTA';
  // The deliveries by the end of their interval (every leaf of a delivery has it).
  const byTime = new Map();
  for (const d of deliveries) {
    const stamp = Object.values(leaves(d.data.cluster)).find(Boolean)?.timeStamp;
    if (stamp !== undefined) byTime.set(stamp, d);
  }
  const increments = (tree) => {
    const done = leaves(tree).done;
    // A rate per ms at scaleFactor 1: the interval's increments are rate x interval.
    return done ? Math.round(done.val * INTERVAL) : 0;
  };
  const runningTotal = (time, treeOf) => {
    let total = 0;
    for (const [stamp, d] of byTime) if (stamp <= time) total += increments(treeOf(d));
    return total;
  };

  const clusterPoints = all.filter((x) => x.resource['panoptic.worker'] === undefined);
  assert.ok(clusterPoints.length > 0);
  for (const x of clusterPoints) {
    assert.equal(x.resource['service.name'], 'shop');
    assert.equal(x.resource['process.pid'], process.pid);
  }
  // Cumulative points of the cluster view start with the first interval.
  const starts = new Set(clusterPoints.filter((x) => x.kind !== 'gauge').map((x) => x.point.startTimeUnixNano));
  if (temporality === 'cumulative') assert.equal(starts.size, 1, [...starts].join());

  let checked = 0;
  for (const x of clusterPoints.filter((y) => y.name === 'jobs.done')) {
    assert.equal(x.kind, 'sum');
    assert.equal(x.data.isMonotonic, true);
    assert.equal(x.data.aggregationTemporality, proto);
    assert.deepEqual(tagsOf(x.point), { queue: 'main' });
    if (temporality === 'delta') {
      const d = byTime.get(x.time);
      assert.ok(d, `a delta point at ${x.time} without a delivery`);
      assert.equal(numberOf(x.point), increments(d.data.cluster));
      assert.equal(Number(BigInt(x.point.startTimeUnixNano) / 1000000n), x.time - INTERVAL);
    } else {
      assert.equal(numberOf(x.point), runningTotal(x.time, (d) => d.data.cluster));
    }
    checked++;
  }
  // Delta: the first two workers' jobs (maybe in one interval), then the new worker's; cumulative:
  // also the intervals between and after.
  assert.ok(checked >= (temporality === 'delta' ? 2 : 3), `${checked} jobs.done points`);

  // A sample's leaf has min, max and average (panopticon's layout, no count): the delta point's
  // min, max and mean are the interval's; cumulative counts never go down.
  let lastCount = 0;
  for (const x of clusterPoints.filter((y) => y.name === 'jobs.size')) {
    assert.equal(x.kind, 'summary');
    const count = Number(x.point.count);
    if (temporality === 'delta') {
      const size = leaves(byTime.get(x.time).data.cluster).size;
      assert.deepEqual(x.point.quantileValues.map((q) => [q.quantile ?? 0, q.value]), [[0, size.min], [1, size.max]]);
      assert.ok(Math.abs(x.point.sum / count - size.average) < 1e-9, `${x.point.sum} / ${count} vs ${size.average}`);
    } else {
      assert.ok(count >= lastCount, `${count} after ${lastCount}`);
      lastCount = count;
    }
  }
  const finalSize = clusterPoints.filter((y) => y.name === 'jobs.size');
  if (temporality === 'cumulative') {
    const last = finalSize[finalSize.length - 1].point;
    assert.equal(Number(last.count), 12);
    assert.equal(last.sum, 6 + 15 + 10);
  } else {
    assert.equal(finalSize.reduce((s, x) => s + Number(x.point.count), 0), 12);
  }

  const latency = clusterPoints.filter((y) => y.name === 'http.latency');
  assert.ok(latency.length >= 1);
  for (const x of latency) {
    assert.equal(x.kind, 'histogram');
    const counts = x.point.bucketCounts.map(Number);
    assert.equal(counts.length, x.point.explicitBounds.length + 1);
    assert.equal(counts.reduce((a, b) => a + b, 0), Number(x.point.count));
    assert.equal(Number(x.point.count), 200);
    assert.equal(x.point.min, 1);
    assert.equal(x.point.max, 150);
    assert.ok(Math.abs(x.point.sum - latencies.reduce((a, b) => a + b, 0)) < 1e-6);
    // (2.5, 5]: 3, 4 and 5.
    const five = x.point.explicitBounds.indexOf(5);
    assert.equal(counts[five], latencies.filter((v) => v > 2.5 && v <= 5).length);
    if (temporality === 'delta') {
      const value = leaves(byTime.get(x.time).data.cluster).latency;
      assert.equal(value.count, 200);
    }
  }
  const small = clusterPoints.filter((y) => y.name === 'http.small');
  assert.ok(small.length >= 1);
  for (const x of small) {
    assert.equal(x.kind, 'exponentialHistogram');
    const counts = x.point.positive.bucketCounts.map(Number);
    assert.equal(counts.reduce((a, b) => a + b, 0), 4);
    assert.equal(Number(x.point.count), 4);
    assert.ok(x.point.scale >= 0 && x.point.scale <= 20, String(x.point.scale));
    assert.equal(x.point.min, 0.5);
    assert.equal(x.point.max, 1.5);
  }
  const pool = clusterPoints.filter((y) => y.name === 'pool.size');
  assert.ok(pool.length >= 1 && pool.every((x) => x.kind === 'gauge' && numberOf(x.point) === 16));
  assert.ok(!all.some((x) => x.name.startsWith('debug')), 'the filter keeps debug.noise out');

  // Each worker's own resource: its pid, its id, its own count (the killed one's stops).
  for (const [w, jobs] of [[killed, 3], [workers[1], 5], [workers[2], 4]]) {
    const own = all.filter((x) => x.resource['panoptic.worker'] === String(w.id) && x.name === 'jobs.done');
    assert.ok(own.length >= 1, `worker ${w.id}'s points`);
    for (const x of own) {
      assert.equal(x.resource['process.pid'], w.process.pid);
      if (temporality === 'delta') {
        assert.equal(numberOf(x.point), increments(byTime.get(x.time).data.workers[w.id]));
      } else {
        assert.equal(numberOf(x.point), runningTotal(x.time, (d) => d.data.workers?.[w.id]));
      }
    }
    const total = temporality === 'cumulative' ? numberOf(own[own.length - 1].point) : own.reduce((s, x) => s + numberOf(x.point), 0);
    assert.equal(total, jobs, `worker ${w.id}`);
  }
  const stats = p.exportStats().otlp;
  assert.equal(stats.failures, 0, JSON.stringify(stats));
  assert.equal(stats.droppedPoints, 0, JSON.stringify(stats));
  assert.equal(stats.rejectedPoints, 0, JSON.stringify(stats));
  assert.equal(stats.pushedPoints, all.length, JSON.stringify(stats));
  assert.equal(stats.lastError, null);
}

for (const [protocol, temporality, compression] of [['http/protobuf', 'cumulative'], ['http/json', 'delta'], ['http/protobuf', 'delta', 'gzip'], ['http/json', 'cumulative', 'gzip']]) {
  test(`a cluster pushes OTLP ${protocol}, ${temporality}${compression ? `, ${compression}` : ''}: every point as delivered, across a worker restart`, { timeout: 120000 }, async (t) => {
    const run = await clusterPushes(t, protocol, temporality, compression);
    checkAgainstDeliveries(run, protocol, temporality, compression);
  });
}

test('429 and 503 are retried honouring Retry-After, 400 drops the batch, a partial success is counted', { timeout: 60000 }, async (t) => {
  const otlp = await receiver(t);
  const p = new Panopticon({ interval: 200, persist: true, otlp: { url: otlp.url, minBackoff: 20, maxBackoff: 2000 } });
  t.after(() => p.stop());
  await otlp.answer({ status: 503, times: 1, retryAfter: 1 });
  await otlp.answer({ status: 429, times: 1 });
  p.inc(['jobs'], 'done', 1);
  const stats = () => p.exportStats().otlp;
  await until(() => stats().pushedPoints >= 1, 20000, 'the push after two retries');
  const [first, second, third] = otlp.requests;
  assert.deepEqual([first.status, second.status, third.status], [503, 429, 200]);
  assert.deepEqual(second.request, first.request, 'the same batch sent again');
  let s = stats();
  assert.equal(s.retries, 2, JSON.stringify(s));
  assert.equal(s.failures, 2, JSON.stringify(s));
  assert.match(s.lastError, /^HTTP 429/);

  await otlp.answer({ status: 400, times: 1 });
  const before = s.droppedPoints;
  await until(() => stats().droppedPoints > before, 20000, 'a batch refused with 400');
  s = stats();
  assert.match(s.lastError, /^HTTP 400/);

  await otlp.answer({ partial: 1, message: 'jobs.done: not today' });
  await until(() => stats().rejectedPoints === 1, 20000, 'the partial success counted');
  assert.equal(stats().lastError, 'partial success, 1 points rejected: jobs.done: not today');
  // 503 with Retry-After: 1 waited a second (the backoff alone is 20 to 40 ms); 429 did not.
  assert.ok(second.at - first.at >= 0.95, `${second.at - first.at} s`);
  assert.ok(third.at - second.at < 0.5, `${third.at - second.at} s`);
});

test('otlp options: a wrong type is a TypeError, a value out of range a RangeError, naming the field', () => {
  const make = (otlp) => () => new Panopticon({ interval: 1000, otlp }).stop();
  assert.throws(make('http://x'), { name: 'TypeError', message: "options.otlp must be an object, got 'http://x'" });
  assert.throws(make({ url: 1 }), { name: 'TypeError', message: 'otlp.url must be a string, got 1' });
  assert.throws(make({ url: 'http://h/v1/metrics', headers: { a: 1 } }), { name: 'TypeError', message: 'otlp.headers.a must be a string, got 1' });
  assert.throws(make({ url: 'http://h/v1/metrics', perProcess: 'yes' }), { name: 'TypeError', message: "otlp.perProcess must be a boolean, got 'yes'" });
  assert.throws(make({ url: 'http://h/v1/metrics', protocol: 'grpc' }), {
    name: 'RangeError',
    message: 'otlp.protocol must be \'http/protobuf\' or \'http/json\', got "grpc"',
  });
  assert.throws(make({ url: 'http://h/v1/metrics', temporality: 'monthly' }), {
    name: 'RangeError',
    message: 'otlp.temporality must be \'cumulative\' or \'delta\', got "monthly"',
  });
  assert.throws(make({ url: 'https://h/v1/metrics' }), { name: 'RangeError', message: /^otlp\.url must be an http:\/\/ URL \(https is not supported/ });
  assert.throws(make({ url: 'http://h/v1/metrics', compression: 'br' }), { name: 'RangeError', message: 'otlp.compression must be \'none\' or \'gzip\', got "br"' });
  assert.throws(make({ url: 'http://h/v1/metrics', every: 0 }), { name: 'RangeError', message: 'otlp.every must be a number of ms above 0, at most one day, got 0' });
  assert.throws(make({ url: 'http://h/v1/metrics', maxQueueBytes: 10 }), { name: 'RangeError', message: /^otlp\.maxQueueBytes/ });
  assert.throws(make({ url: 'http://h/v1/metrics', headers: { 'content-type': 'text/plain' } }), { name: 'RangeError', message: /^otlp\.headers\.content-type must be a header the pusher does not set itself/ });
  // Explicit buckets' layouts, as serve() takes them (docs/prometheus.md#buckets).
  make({ url: 'http://h/v1/metrics', buckets: { default: [1, 2], nodejs_gc_duration_seconds: [0.001, 5] } })();
  assert.throws(make({ url: 'http://h/v1/metrics', buckets: 5 }), { name: 'TypeError', message: 'otlp.buckets must be an array of numbers or an object of arrays of numbers, got 5' });
  assert.throws(make({ url: 'http://h/v1/metrics', buckets: [2, 1] }), { name: 'RangeError', message: 'otlp.buckets[1] must be greater than otlp.buckets[0] (2): bounds ascend, got 1' });
  assert.throws(make({ url: 'http://h/v1/metrics', buckets: { 'a:b': [1] } }), { name: 'RangeError', message: /^otlp\.buckets keys must be `default` or a metric name/ });
  assert.throws(make({ url: 'http://h/v1/metrics', filter: 'name ==' }), { name: 'SyntaxError' });
});

test('a program that ends right after stop() still pushes its last delivery', { timeout: 60000 }, async (t) => {
  const otlp = await receiver(t);
  const program = `
    const Panopticon = require(${JSON.stringify(path.join(__dirname, '..'))});
    // keepAlive: the program waits for a delivery with nothing else to keep it alive.
    const p = new Panopticon({ name: 'exit', interval: 200, keepAlive: true, otlp: { url: ${JSON.stringify(otlp.url)} } });
    p.inc(['jobs'], 'done', 7);
    p.once('delivery', () => p.stop());
  `;
  const started = Date.now();
  const child = spawn(process.execPath, ['-e', program], { stdio: ['ignore', 'inherit', 'inherit'] });
  const [code, signal] = await new Promise((resolve) => child.once('exit', (...a) => resolve(a)));
  assert.deepEqual([code, signal], [0, null]);
  // It waited for the push, not for the whole flush time.
  assert.ok(Date.now() - started < 15000, `the program took ${Date.now() - started} ms`);
  const done = points(otlp).filter((x) => x.name === 'jobs.done');
  assert.deepEqual(done.map((x) => [x.resource['service.name'], numberOf(x.point)]), [['exit', 7]]);
});

test('an unknown otlp key is warned about (PANOPTIC_UNKNOWN_OPTION) and ignored', async () => {
  const warned = new Promise((resolve) => {
    const onWarning = (w) => {
      if (w.code !== 'PANOPTIC_UNKNOWN_OPTION') return;
      process.off('warning', onWarning);
      resolve(w.message);
    };
    process.on('warning', onWarning);
  });
  new Panopticon({ interval: 1000, otlp: { url: 'http://h/v1/metrics', colour: 'blue' } }).stop();
  assert.match(await warned, /^options\.otlp\.colour is not an option and is ignored/);
});
