'use strict';

// gauge(path, id, fn): fn is called when each interval closes; its number is the leaf.

const test = require('node:test');
const assert = require('node:assert/strict');
const { next, fresh, Panopticon } = require('./helpers');

test('a gauge reports its function\'s number every interval until unregistered', async (t) => {
  const p = await fresh({ interval: 150 });
  t.after(() => p.stop());
  let calls = 0;
  p.gauge(['mem'], 'heap', () => {
    calls += 1;
    return calls * 10;
  });
  const first = await next(p, 'delivery');
  assert.deepEqual(first.data.master.mem.heap, { type: 'gauge', value: { val: 10, timeStamp: first.data.master.mem.heap.value.timeStamp } });
  const second = await next(p, 'delivery');
  assert.equal(second.data.master.mem.heap.value.val, 20, 'no datum needed: it is called at each close');
  assert.equal(second.data.cluster.mem.heap.value.val, 20);
  p.bind('gauge', ['mem'], 'heap')(null);
  const third = await next(p, 'delivery');
  assert.deepEqual(third.data.master, {});
  assert.ok(Panopticon.getLoggerMethodNames().includes('gauge'));
});

test('a throwing or non-number gauge gives null and is counted', async (t) => {
  const p = await fresh({ interval: 150 });
  t.after(() => p.stop());
  const errors = [];
  p.on('error', (err) => errors.push(err.message));
  p.gauge([], 'throws', () => {
    throw new Error('no reading');
  });
  p.gauge([], 'text', () => '12');
  p.gauge([], 'nan', () => NaN);
  const d = await next(p, 'delivery');
  for (const id of ['throws', 'text', 'nan']) assert.equal(d.data.master[id].value.val, null, id);
  assert.equal(d.meta.errors, 3);
  assert.deepEqual(errors.sort(), [
    'no reading',
    'the function of the gauge at ["nan"] returned NaN, not a finite number',
    'the function of the gauge at ["text"] returned \'12\', not a finite number',
  ]);
  assert.throws(() => p.gauge([], 'x', 5), { name: 'TypeError', message: 'fn must be a function returning a number, or null to unregister, got 5' });
});
