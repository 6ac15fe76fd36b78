'use strict';

// The four built-in logger methods and bind(): leaf shapes and values, validators, persist.

const test = require('node:test');
const assert = require('node:assert/strict');
const { next, fresh } = require('./helpers');

// Each test gets an instance whose interval just began, records, and reads the next delivery
// (that interval's). Interval 300 ms leaves ample room on a loaded machine.
async function deliveryOf(t, options, record) {
  const p = await fresh({ interval: 300, ...options });
  t.after(() => p.stop());
  const timeStamp = p.endTime;
  record(p);
  const d = await next(p, 'delivery');
  return { p, d, timeStamp };
}

function twoPass(xs) {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  return Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (xs.length - 1));
}

test('set: the last value, any JSON value, delivered as a copy', async (t) => {
  const obj = { a: [1, 2] };
  const { d, timeStamp } = await deliveryOf(t, {}, (p) => {
    p.set(['app'], 'version', 'one');
    p.set(['app'], 'version', 'two');
    p.set(null, 'obj', obj);
    p.set([], 'nothing', null);
    obj.a.push(3); // after the set: the delivery holds the value at collection
  });
  assert.deepEqual(d.data.master, {
    app: { version: { type: 'set', value: { val: 'two', timeStamp } } },
    obj: { type: 'set', value: { val: { a: [1, 2, 3] }, timeStamp } },
    nothing: { type: 'set', value: { val: null, timeStamp } },
  });
  assert.notEqual(d.data.master.obj.value.val, obj);
});

test('inc: a rate of scaleFactor * sum / interval; non-finite counts as 1, 0 adds 0', async (t) => {
  const { d, timeStamp } = await deliveryOf(t, { scaleFactor: 1000 }, (p) => {
    p.inc(['http'], 'requests', 2);
    p.inc(['http'], 'requests');
    p.inc(['http'], 'requests', NaN);
    p.inc(['http'], 'requests', '5');
    p.inc(['http'], 'zero', 0);
  });
  assert.deepEqual(d.data.master.http, {
    requests: { type: 'inc', value: { val: (1000 * 5) / 300, timeStamp } },
    zero: { type: 'inc', value: { val: 0, timeStamp } },
  });
});

test('sample: max, min, n-1 sigma (Welford) and average; one value has sigma null', async (t) => {
  const xs = Array.from({ length: 1000 }, (_, i) => 1e6 + Math.sin(i) * 1000 + i / 7);
  const { d, timeStamp } = await deliveryOf(t, {}, (p) => {
    for (const x of xs) p.sample(['db'], 'latency', x);
    p.sample(['db'], 'one', 42);
  });
  const v = d.data.master.db.latency;
  assert.equal(v.type, 'sample');
  assert.deepEqual(Object.keys(v.value), ['max', 'min', 'sigma', 'average', 'timeStamp']);
  assert.equal(v.value.max, Math.max(...xs));
  assert.equal(v.value.min, Math.min(...xs));
  assert.ok(Math.abs(v.value.sigma - twoPass(xs)) / twoPass(xs) < 1e-12, `sigma ${v.value.sigma} vs ${twoPass(xs)}`);
  assert.equal(v.value.average, xs.reduce((a, b) => a + b, 0) / xs.length);
  assert.equal(v.value.timeStamp, timeStamp);
  assert.deepEqual(d.data.master.db.one.value, { max: 42, min: 42, sigma: null, average: 42, timeStamp });
});

test('sample drops non-finite values silently and counts them', async (t) => {
  const { d } = await deliveryOf(t, { persist: true }, (p) => {
    for (const bad of [NaN, Infinity, -Infinity, '3', null, undefined, [1]]) p.sample(['x'], 'y', bad);
  });
  assert.deepEqual(d.data.master, {}, 'a dropped point creates no path, even with persist');
  assert.equal(d.meta.dropped, 7);
});

test('timedSample: hrtime pairs in ms / scaleFactor, with count, total and scaleFactor', async (t) => {
  const { d, timeStamp } = await deliveryOf(t, { scaleFactor: 2 }, (p) => {
    p.timedSample(['t'], 'a', [1, 500000000]); // 1500 ms -> 750
    p.timedSample(['t'], 'a', [0, 1000000]); // 1 ms -> 0.5
    p.timedSample(['t'], 'a', 'junk');
    p.timedSample(['t'], 'a', ['x', 'y']); // an array whose time is not a number
  });
  assert.deepEqual(d.data.master.t.a, {
    type: 'timedSample',
    value: {
      min: 0.5,
      max: 750,
      sigma: twoPass([750, 0.5]),
      average: 375.25,
      count: 2,
      total: 750.5,
      scaleFactor: 2,
      timeStamp,
    },
  });
  assert.equal(d.meta.dropped, 2);
});

test('numeric and string keys are the same place; null, undefined and [] are the root', async (t) => {
  const { d } = await deliveryOf(t, {}, (p) => {
    p.inc([1, 'a'], 2, 1);
    p.inc(['1', 'a'], '2', 1);
    p.inc(null, 'r', 1);
    p.inc(undefined, 'r', 1);
    p.inc([], 'r', 1);
  });
  assert.equal(d.data.master['1'].a['2'].value.val, 2 / 300);
  assert.equal(d.data.master.r.value.val, 3 / 300);
});

test('bind returns the recorder of a series; the method form and the handle share it', async (t) => {
  const { d } = await deliveryOf(t, {}, (p) => {
    const hit = p.bind('inc', ['http'], 'requests');
    assert.equal(p.bind('inc', ['http'], 'requests'), hit, 'resolved once');
    hit();
    hit(3);
    p.inc(['http'], 'requests', 1);
    p.bind('sample', ['q'], 'depth')(4);
    p.bind('timedSample', ['q'], 'wait')([0, 2e6]);
    p.bind('set', ['q'], 'state')('ok');
  });
  assert.equal(d.data.master.http.requests.value.val, 5 / 300);
  assert.equal(d.data.master.q.depth.value.average, 4);
  assert.equal(d.data.master.q.wait.value.total, 2);
  assert.equal(d.data.master.q.state.value.val, 'ok');
});

test('bind rejects an unknown method', (t) => {
  return fresh({ interval: 1000 }).then((p) => {
    t.after(() => p.stop());
    assert.throws(() => p.bind('nope', [], 'x'), { name: 'TypeError', message: /method must be the name of a registered logger method \(sample, timedSample, inc, set.*\), got 'nope'/ });
    assert.throws(() => p.bind(undefined, [], 'x'), { name: 'TypeError', message: /got undefined/ });
  });
});

test('without persist, ids untouched in an interval disappear', async (t) => {
  const p = await fresh({ interval: 200 });
  t.after(() => p.stop());
  p.inc(['a'], 'b', 1);
  p.sample(['a'], 'c', 1);
  p.set(['a'], 'd', 1);
  const [first, second] = await next(p, 'delivery', 2);
  assert.deepEqual(Object.keys(first.data.master.a).sort(), ['b', 'c', 'd']);
  assert.deepEqual(second.data.master, {});
});

test('persist: every series stays, reset at each boundary (set keeps its value)', async (t) => {
  const p = await fresh({ interval: 200, persist: true });
  t.after(() => p.stop());
  p.inc(['a'], 'inc', 5);
  p.sample(['a'], 'sample', 1);
  p.sample(['a'], 'sample', 3);
  p.timedSample(['a'], 'timed', [0, 1e6]);
  p.set(['a'], 'set', 'kept');
  const [first, second] = await next(p, 'delivery', 2);
  const end1 = first.data.master.a.set.value.timeStamp;
  const end2 = end1 + 200;
  assert.equal(first.data.master.a.inc.value.val, 5 / 200);
  assert.equal(first.data.master.a.sample.value.sigma, Math.SQRT2);
  assert.deepEqual(second.data.master.a, {
    inc: { type: 'inc', value: { val: 0, timeStamp: end2 } },
    sample: { type: 'sample', value: { max: null, min: null, sigma: null, average: null, timeStamp: end2 } },
    timed: {
      type: 'timedSample',
      value: { min: null, max: null, sigma: null, average: null, count: 0, total: 0, scaleFactor: 1, timeStamp: end2 },
    },
    set: { type: 'set', value: { val: 'kept', timeStamp: end2 } },
  });
});

test('persist: a reset event with the new end time comes before newInterval', async (t) => {
  const p = await fresh({ interval: 150, persist: true });
  t.after(() => p.stop());
  const events = [];
  p.on('sample', () => events.push('sample'));
  p.on('reset', (ts) => events.push(['reset', ts === p.endTime]));
  p.on('newInterval', () => events.push('newInterval'));
  await next(p, 'newInterval');
  assert.deepEqual(events, ['sample', ['reset', true], 'newInterval']);
});
