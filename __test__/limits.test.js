'use strict';

// Series limits: past maxTagSets tag sets of a metric, or maxSeries series of an instance, new
// series record into an overflow series; every value lands in exactly one series (sums stay
// exact, across a real cluster too), meta.overflowed counts the values that went to overflow,
// and each metric's first overflow is warned about once.

const test = require('node:test');
const assert = require('node:assert/strict');
const cluster = require('cluster');
const path = require('path');
const { next, deliveryWhere, stopWorkers, Panopticon } = require('./helpers');

/** The sum of every `inc` leaf's `val` under `tree`. */
function sumOf(tree) {
  if (tree === null || typeof tree !== 'object') return 0;
  if (tree.type === 'inc') return tree.value.val;
  return Object.values(tree).reduce((sum, child) => sum + sumOf(child), 0);
}

test('past maxTagSets a metric records into id{overflow="true"}; past maxSeries into panoptic.overflow.<method>', async (t) => {
  const interval = 200;
  const p = new Panopticon({ interval, maxSeries: 6, maxTagSets: 3 });
  t.after(() => p.stop());
  const warnings = [];
  p.on('warning', (w) => warnings.push(w));
  const bound = p.bind('inc', ['b'], 'bound');
  p.on('newInterval', () => {
    for (let i = 0; i < 10; i++) p.inc(['a'], 'hits', 1, { user: String(i) }); // 3 kept, 7 overflow
    for (let i = 0; i < 5; i++) p.inc(['x'], `id${i}`, 2); // 1 kept (the 6th series), 4 overflow
    bound();
  });
  const d = await deliveryWhere(p, (x) => x.data.master.a !== undefined);
  const tree = d.data.master;
  const rate = (n) => n / interval;
  assert.deepEqual(Object.keys(tree.a).sort(), ['hits{overflow="true"}', 'hits{user="0"}', 'hits{user="1"}', 'hits{user="2"}']);
  assert.equal(tree.a['hits{overflow="true"}'].value.val, rate(7));
  assert.equal(tree.x.id0.value.val, rate(2));
  assert.equal(tree.panoptic.overflow.inc.value.val, rate(8));
  assert.ok(Math.abs(sumOf(tree) - rate(10 + 10 + 1)) < 1e-12, 'every value in exactly one series');
  assert.equal(d.meta.overflowed, 7 + 4);
  assert.deepEqual(warnings.map((w) => w.code), ['PANOPTIC_OVERFLOW', 'PANOPTIC_OVERFLOW'], 'once per metric, once for the series limit');
  assert.match(warnings[0].message, /^inc\(\) at \["a","hits"\]: the metric has options\.maxTagSets \(3\) tag sets: new ones record into hits\{overflow="true"\}/);
  assert.match(warnings[1].message, /^inc\(\) at \["x","id1"\]: the instance holds options\.maxSeries \(6\) series: new ones of inc\(\) record into "panoptic\.overflow\.inc"/);
  // The next interval: the same, and no new warning.
  const again = await next(p, 'delivery');
  assert.equal(again.meta.overflowed, 11);
  assert.equal(warnings.length, 2);
});

test('a bind() handle of an overflowing key counts each of its values', async (t) => {
  const p = new Panopticon({ interval: 200, maxSeries: 1 });
  t.after(() => p.stop());
  p.on('warning', () => {});
  p.inc([], 'first');
  const handle = p.bind('inc', [], 'second'); // past the limit: the overflow series
  p.on('newInterval', () => {
    handle();
    handle();
    handle(3);
  });
  const d = await deliveryWhere(p, (x) => x.data.master.panoptic !== undefined);
  assert.equal(d.data.master.panoptic.overflow.inc.value.val, 5 / 200);
  assert.equal(d.meta.overflowed, 3);
});

test('limits are options: a whole number from 1', () => {
  assert.throws(() => new Panopticon({ maxSeries: '10' }), { name: 'TypeError', message: "options.maxSeries must be a number, got '10'" });
  assert.throws(() => new Panopticon({ maxTagSets: 0 }), { name: 'RangeError', message: 'options.maxTagSets must be a whole number from 1, got 0' });
  assert.throws(() => new Panopticon({ maxSeries: 1.5 }), { name: 'RangeError' });
});

test('a worker flooding new ids: the sum over the cluster stays exact, overflow counted on the master', { timeout: 60000 }, async (t) => {
  const interval = 300;
  // The worker's own limit (maxSeries 50) bounds what it sends.
  const p = new Panopticon({ name: 'flood', interval });
  cluster.setupPrimary({ exec: path.join(__dirname, 'fixtures', 'limits-worker.js'), silent: true });
  const workers = [cluster.fork({ INTERVAL: interval, IDS: 200, MAX_SERIES: 50 })];
  t.after(async () => {
    p.stop();
    await stopWorkers(workers);
  });
  const d = await deliveryWhere(p, (x) => x.data.workers && x.data.workers[workers[0].id] && x.meta.overflowed > 0);
  const worker = d.data.workers[workers[0].id];
  // 200 new ids of 1 each per interval: the first 50 ever are series of their own (in the first
  // interval), every later one goes to the overflow series.
  assert.ok(Math.abs(sumOf(d.data.cluster) - 200 / interval) < 1e-9, `cluster sum ${sumOf(d.data.cluster)}`);
  assert.ok(Math.abs(sumOf(worker) - 200 / interval) < 1e-9);
  const own = Object.keys((worker.ids || {})).length;
  assert.ok(own === 50 || own === 0, `${own} ids of their own`);
  assert.equal(worker.panoptic.overflow.inc.value.val, (200 - own) / interval);
  assert.equal(d.meta.overflowed, 200 - own);
});

test('the master bounds what it holds: past maxClusterSeries a worker\'s new series merge into overflow', { timeout: 60000 }, async (t) => {
  const interval = 300;
  const p = new Panopticon({ name: 'flood', interval, maxClusterSeries: 120 });
  const warnings = [];
  p.on('warning', (w) => warnings.push(w));
  cluster.setupPrimary({ exec: path.join(__dirname, 'fixtures', 'limits-worker.js'), silent: true });
  // The worker holds up to 100,000 series: it sends every new id as a series of its own.
  const workers = [cluster.fork({ INTERVAL: interval, IDS: 200, MAX_SERIES: 100000 })];
  t.after(async () => {
    p.stop();
    await stopWorkers(workers);
  });
  const seen = [];
  await deliveryWhere(p, (x) => {
    // Intervals in which the worker recorded (its first may be empty).
    if (x.data.workers && sumOf(x.data.workers[workers[0].id]) > 0) seen.push(x);
    return seen.length >= 3;
  });
  for (const d of seen) {
    // Every interval: 200 values in all, whatever the master could hold.
    assert.ok(Math.abs(sumOf(d.data.cluster) - 200 / interval) < 1e-9, `cluster sum ${sumOf(d.data.cluster)}`);
    const worker = d.data.workers[workers[0].id];
    const own = Object.keys(worker.ids || {}).length;
    const overflow = worker.panoptic ? worker.panoptic.overflow.inc.value.val * interval : 0;
    assert.ok(Math.abs(own + overflow - 200) < 1e-9, `${own} series + ${overflow} in overflow`);
    assert.ok(Math.abs(d.meta.overflowed - overflow) < 1e-9);
  }
  // 120 series at most, the overflow series among them: the third interval's 200 new ids all overflow.
  assert.equal(Object.keys(seen[2].data.workers[workers[0].id].ids || {}).length, 0);
  const overflows = warnings.filter((w) => w.code === 'PANOPTIC_OVERFLOW');
  assert.equal(overflows.length, 1, 'once per worker');
  assert.match(overflows[0].message, new RegExp(`^cluster worker ${workers[0].id} \\(pid \\d+\\) sends new series while this master holds maxClusterSeries \\(120\\) series`));
});
