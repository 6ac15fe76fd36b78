'use strict';

// rate(path, id, cumulative): a cumulative counter observed now and then, reported per second.

const test = require('node:test');
const assert = require('node:assert/strict');
const { next, fresh } = require('./helpers');

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

test('a cumulative counter becomes a per-second rate; resets and wraps are handled', async (t) => {
  const p = await fresh({ interval: 400 });
  t.after(() => p.stop());
  const bytes = p.bind('rate', ['net'], 'bytes');
  const before = Date.now();
  bytes(1000);
  await sleep(50);
  bytes(6000);
  const elapsed = (Date.now() - before) / 1000;
  p.rate([], 'wrapped', 2 ** 32 - 100); // a 32-bit counter near its top...
  await sleep(20);
  p.rate([], 'wrapped', 50); // ...wrapped: an increase of 150
  p.rate([], 'reset', 5000);
  await sleep(20);
  p.rate([], 'reset', 30); // restarted: counted from 0
  p.rate([], 'bad', -5);
  p.rate([], 'bad', 'many');
  const d = await next(p, 'delivery');
  const { net, wrapped, reset } = d.data.master;
  assert.equal(net.bytes.value.increase, 5000);
  // The rate is the increase over the time between the two observations (at most `elapsed`).
  assert.ok(net.bytes.value.val >= 5000 / elapsed, `${net.bytes.value.val} >= ${5000 / elapsed}`);
  assert.equal(wrapped.value.increase, 150);
  assert.equal(reset.value.increase, 30);
  assert.equal(d.data.master.bad, undefined, 'never a rate');
  assert.equal(d.meta.dropped, 2);
  // A single observation in an interval gives no rate yet: the series is absent.
  const quiet = await next(p, 'delivery');
  assert.deepEqual(quiet.data.master, {});
});
