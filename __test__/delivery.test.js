'use strict';

// The delivery object: its trees are written and parsed when first read (lazy properties), and
// behave as plain data from then on, however late they are read.

const test = require('node:test');
const assert = require('node:assert/strict');
const { next, fresh, deliveriesUntil } = require('./helpers');

test('trees are rendered when first read, then are plain data properties', async (t) => {
  const p = await fresh({ interval: 200 });
  t.after(() => p.stop());
  p.inc(['a'], 'n', 2);
  const d = await next(p, 'delivery');
  assert.deepEqual(Object.keys(d.data), ['master', 'cluster']);
  assert.equal(typeof Object.getOwnPropertyDescriptor(d.data, 'cluster').get, 'function', 'not rendered yet');
  const cluster = d.data.cluster;
  assert.equal(cluster.a.n.value.val, 2 / 200);
  assert.equal(d.data.cluster, cluster, 'rendered once');
  assert.deepEqual(Object.getOwnPropertyDescriptor(d.data, 'cluster'), { value: cluster, writable: true, enumerable: true, configurable: true });
  // JSON.stringify reads the ones not read yet.
  assert.deepEqual(JSON.parse(JSON.stringify(d.data)), { master: { a: { n: { type: 'inc', value: { val: 0.01, timeStamp: d.data.master.a.n.value.timeStamp } } } }, cluster });
  // Assignable, read or not.
  d.data.cluster = 'replaced';
  assert.equal(d.data.cluster, 'replaced');
  const other = await next(p, 'delivery');
  other.data.master = 'mine';
  assert.equal(other.data.master, 'mine');
});

test('a delivery read after later deliveries still holds its own interval', async (t) => {
  const p = await fresh({ interval: 150 });
  t.after(() => p.stop());
  p.inc([], 'n', 1);
  const first = await next(p, 'delivery');
  p.inc([], 'n', 5);
  const [second, third] = await next(p, 'delivery', 2);
  assert.equal(first.data.master.n.value.val, 1 / 150);
  assert.equal(second.data.cluster.n.value.val, 5 / 150);
  assert.deepEqual(third.data.cluster, {});
  assert.deepEqual(third.data.master, {});
});

test('a delivery that would wait for its own interval is tried again, not waited for, and is whole', async (t) => {
  // No delay: the delivery is first tried right after the close, while the master's own 100,000
  // series are still being named and merged on their native thread.
  const interval = 1000;
  const p = await fresh({ interval, deliveryDelay: 0 });
  t.after(() => p.stop());
  // White box: count the attempts the engine answered with "not yet".
  const collector = p[Object.getOwnPropertySymbols(p).find((s) => s.description === 'panoptic.collector')];
  const { engine } = collector;
  const deliver = engine.deliver.bind(engine);
  let notYet = 0;
  engine.deliver = (k) => {
    const made = deliver(k);
    if (made === null) notYet += 1;
    return made;
  };
  const n = 100000;
  await next(p, 'newInterval');
  const end = p.endTime;
  for (let i = 0; i < n; i++) p.inc(['wide'], `id${i}`, 1);
  const d = await deliveriesUntil(p, (x) => x.data.master.wide !== undefined, 4 * interval + 5000, 'the wide interval delivered').then((all) => all[all.length - 1]);
  const wide = d.data.master.wide;
  assert.equal(Object.keys(wide).length, n, 'every series of the interval');
  assert.equal(wide.id0.value.timeStamp, end);
  assert.ok(notYet > 0, 'the first attempt found the interval not merged yet');
});
