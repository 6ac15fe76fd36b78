'use strict';

// gaugeSet(path, fn): fn is read once per interval, when it closes; each numeric field of the
// object it returns (or of the promise's object) is the gauge series (path, field).

const test = require('node:test');
const assert = require('node:assert/strict');
const { Worker } = require('worker_threads');
const { next, fresh, deliveryWhere, Panopticon } = require('./helpers');

const PANOPTIC = JSON.stringify(require.resolve('..'));

const vals = (tree) => Object.fromEntries(Object.entries(tree || {}).map(([k, leaf]) => [k, leaf.value.val]));

test('a gauge set is read once per interval, one gauge per field, until unregistered', async (t) => {
  const p = await fresh({ interval: 200 });
  t.after(() => p.stop());
  let reads = 0;
  p.gaugeSet(['pool'], () => {
    reads += 1;
    return reads === 1 ? { size: 4, idle: 1 } : { size: 5 };
  });
  p.scope(['db']).gaugeSet(['conn'], () => ({ open: 7 }));
  const first = await next(p, 'delivery');
  assert.equal(reads, 1, 'read once, at the close');
  assert.deepEqual(first.data.master.pool.size, { type: 'gauge', value: { val: 4, timeStamp: first.data.master.pool.size.value.timeStamp } });
  assert.deepEqual(vals(first.data.master.pool), { size: 4, idle: 1 });
  assert.deepEqual(vals(first.data.cluster.db.conn), { open: 7 }, 'a scope puts the set under its path');
  const second = await next(p, 'delivery');
  assert.equal(reads, 2);
  assert.deepEqual(vals(second.data.master.pool), { size: 5 }, 'a field the object no longer has is absent');
  assert.equal(second.meta.errors, 0);
  p.gaugeSet(['pool'], null);
  p.scope(['db']).gaugeSet(['conn'], null);
  const third = await next(p, 'delivery');
  assert.deepEqual(third.data.master, {});
  assert.equal(reads, 2);
  assert.throws(() => p.gaugeSet(['x'], { size: 1 }), {
    name: 'TypeError',
    message: 'fn must be a function returning an object of numbers (or a promise of one), or null to unregister, got { size: 1 }',
  });
  assert.throws(() => p.gaugeSet('x', () => ({})), { name: 'TypeError', message: /^path must be an array/ });
});

test('a set\'s fields are the gauges of (path, field): a gauge() of the same series takes precedence', async (t) => {
  const p = await fresh({ interval: 200 });
  t.after(() => p.stop());
  p.gaugeSet(['q'], () => ({ len: 1, other: 2 }));
  p.gauge(['q'], 'len', () => 10);
  const d = await next(p, 'delivery');
  assert.deepEqual(vals(d.data.master.q), { len: 10, other: 2 });
});

test('a promise\'s object belongs to the interval it settles in; one read in flight at a time', { timeout: 30000 }, async (t) => {
  const interval = 500;
  const p = await fresh({ interval });
  t.after(() => p.stop());
  const reads = [];
  p.gaugeSet(['async'], () => new Promise((resolve) => reads.push(resolve)));
  // The close of this interval starts read 1; nothing has settled yet.
  const d0 = await next(p, 'delivery');
  assert.equal(reads.length, 1);
  assert.equal(d0.data.master.async, undefined);
  // Delivered half an interval after the close: read 1 settles in the interval after d0's.
  reads[0]({ x: 1 });
  const d1 = await next(p, 'delivery');
  assert.deepEqual(vals(d1.data.master.async), { x: 1 });
  assert.equal(reads.length, 2, 'the close that delivered read 1 started read 2');
  // Read 2 stays pending for a whole interval: that interval has no value, and no read starts.
  const d2 = await next(p, 'delivery');
  assert.equal(d2.data.master.async, undefined);
  assert.equal(reads.length, 2, 'no new read while one is in flight');
  reads[1]({ x: 2 });
  const d3 = await next(p, 'delivery');
  assert.deepEqual(vals(d3.data.master.async), { x: 2 }, 'a late object goes to the interval it settled in');
  assert.equal(d3.data.master.async.x.value.timeStamp - d1.data.master.async.x.value.timeStamp, 2 * interval);
  assert.equal(reads.length, 3);
  for (const d of [d0, d1, d2, d3]) assert.equal(d.meta.errors, 0);
});

test('failed reads are counted in meta.errors, give nulls, are emitted as \'error\' and warned about once per set', { timeout: 30000 }, async (t) => {
  const p = await fresh({ interval: 300 });
  t.after(() => p.stop());
  const warnings = [];
  const errors = [];
  p.on('warning', (w) => warnings.push(w));
  p.on('error', (e) => errors.push(e));
  let t1 = 0;
  p.gaugeSet(['throws'], () => {
    t1 += 1;
    if (t1 === 1) return { t: 1 };
    throw new Error('no reading');
  });
  let r = 0;
  p.gaugeSet(['rejects'], () => {
    r += 1;
    const n = r;
    return n % 2 === 1 ? Promise.resolve({ r: n }) : Promise.reject(new Error('gone'));
  });
  p.gaugeSet(['text'], () => 'x');
  p.gaugeSet(['partial'], () => ({ a: 1, b: '2', c: NaN }));
  const [d0, d1, d2, d3] = await next(p, 'delivery', 4, 20000);
  // throws: {t: 1} at the first close, then a throw at every close.
  assert.deepEqual(vals(d0.data.master.throws), { t: 1 });
  for (const d of [d1, d2, d3]) assert.deepEqual(vals(d.data.master.throws), { t: null });
  // rejects: read 1 (started at d0's close) resolves in d1's interval, read 2 rejects in d2's,
  // read 3 resolves in d3's.
  assert.equal(d0.data.master.rejects, undefined);
  assert.deepEqual(vals(d1.data.master.rejects), { r: 1 });
  assert.deepEqual(vals(d2.data.master.rejects), { r: null });
  assert.deepEqual(vals(d3.data.master.rejects), { r: 3 });
  // text: no fields ever; partial: each bad field is null, one error per read.
  for (const d of [d0, d1, d2, d3]) {
    assert.equal(d.data.master.text, undefined);
    assert.deepEqual(vals(d.data.master.partial), { a: 1, b: null, c: null });
  }
  assert.deepEqual([d0, d1, d2, d3].map((d) => d.meta.errors), [2, 3, 4, 3]);
  assert.deepEqual(warnings.map((w) => w.code), Array(4).fill('PANOPTIC_GAUGE_SET_FAILED'), 'once per set');
  assert.deepEqual(warnings.map((w) => w.message.split(':')[0]).sort(), [
    'the function of the gaugeSet at ["partial"] gave \'2\' for field "b", not a finite number',
    'the function of the gaugeSet at ["rejects"] rejected with \'gone\'',
    'the function of the gaugeSet at ["text"] returned \'x\', not an object of numbers',
    'the function of the gaugeSet at ["throws"] threw \'no reading\'',
  ]);
  // As a gauge()'s failures: every failed read is also an 'error' (listened to here), the
  // thrown or rejected error itself with a context, else a TypeError saying what was given.
  assert.ok(errors.length >= 12, `an 'error' per failed read: ${errors.length}`);
  assert.ok(errors.some((e) => e.message === 'no reading' && e.context === 'the function of the gaugeSet at ["throws"] threw \'no reading\''));
  assert.ok(errors.some((e) => e.message === 'gone' && e.context.startsWith('the function of the gaugeSet at ["rejects"] rejected')));
  assert.ok(errors.some((e) => e instanceof TypeError && e.message === 'the function of the gaugeSet at ["text"] returned \'x\', not an object of numbers'));
});

test('a gauge set\'s fields add up over the worker threads that feed the process', { timeout: 60000 }, async (t) => {
  const interval = 200;
  const p = new Panopticon({ name: 'sets', interval });
  t.after(() => p.stop());
  p.gaugeSet(['pool'], () => ({ size: 4, busy: 1 }));
  const worker = new Worker(`
    const Panopticon = require(${PANOPTIC});
    const p = new Panopticon({ name: 'sets', interval: ${interval} });
    p.gaugeSet(['pool'], () => Promise.resolve({ size: 3, busy: 2 }));
    require('worker_threads').parentPort.on('message', () => process.exit(0));
  `, { eval: true });
  t.after(() => worker.terminate());
  const label = `master:${worker.threadId}`;
  const d = await deliveryWhere(p, (x) => x.data.threads && x.data.threads[label] && x.data.threads[label].pool);
  assert.deepEqual(vals(d.data.master.pool), { size: 4, busy: 1 });
  assert.deepEqual(vals(d.data.threads[label].pool), { size: 3, busy: 2 });
  assert.deepEqual(vals(d.data.cluster.pool), { size: 7, busy: 3 });
});
