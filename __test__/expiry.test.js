'use strict';

// Expiry: a series without data for `expireAfter` intervals is freed where it lives (the
// recording process's engine and lookups, the master's registry, the exports), and a bind()
// handle brings it back with fresh state.

const test = require('node:test');
const assert = require('node:assert/strict');
const cluster = require('cluster');
const path = require('path');
const { next, deliveriesUntil, deliveryWhere, stopWorkers, Panopticon } = require('./helpers');

test('expireAfter: a whole number of intervals from 1, or Infinity; 10 by default, never with persist', () => {
  assert.throws(() => new Panopticon({ expireAfter: '10' }), { name: 'TypeError', message: "options.expireAfter must be a number of intervals, got '10'" });
  for (const bad of [0, -1, 1.5, NaN, -Infinity, 2 ** 32]) {
    assert.throws(() => new Panopticon({ expireAfter: bad }), { name: 'RangeError', message: /^options\.expireAfter must be a whole number of intervals from 1/ });
  }
  for (const options of [{ expireAfter: 1 }, { expireAfter: Infinity }, { persist: true }, { persist: true, expireAfter: 3 }]) {
    new Panopticon({ interval: 60000, ...options }).stop();
  }
});

/**
 * Counts `p`'s deliveries; `exported()` resolves once its exports (which add each delivery on
 * their own thread) have every delivery emitted so far: what /metrics shows then includes them.
 */
function exports(p) {
  let emitted = 0;
  p.on('delivery', () => {
    emitted += 1;
  });
  return async function exported() {
    const deadline = Date.now() + 10000;
    while (p.exportStats().deliveries < emitted) {
      assert.ok(Date.now() < deadline, 'the exports did not add the deliveries');
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  };
}

/** Text of `url`. */
async function get(url) {
  const response = await fetch(url);
  assert.equal(response.status, 200);
  return response.text();
}

test('idle series leave the engine, the lookups and /metrics; a bind() handle brings its series back fresh', { timeout: 30000 }, async (t) => {
  const interval = 100;
  const p = new Panopticon({ interval, expireAfter: 2 });
  t.after(() => p.stop());
  const served = await p.serve({ port: 0, host: '127.0.0.1' });
  const exported = exports(p);
  const handle = p.bind('inc', ['a'], 'bound');
  const tagged = p.bind('histogram', ['a'], 'h', { route: '/x' });
  let recording = true;
  p.on('newInterval', () => {
    p.inc(['a'], 'steady');
    if (!recording) return;
    handle(2);
    tagged(3);
    p.inc(['a'], 'free', 1, { user: 'u1' });
    p.inc(['a'], 7);
  });
  await deliveryWhere(p, (d) => d.data.master.a && d.data.master.a['free{user="u1"}'] && d.data.master.a['7']);
  assert.deepEqual(p.seriesStats(), { engine: 5, lookup: 5, registry: 5 });
  assert.match(await get(`${served.url}metrics`), /^a_bound_total 2$/m);
  recording = false;
  // Two intervals without data, then the close that frees them (and the delivery after it).
  await deliveriesUntil(p, () => p.seriesStats().engine === 1, 20 * interval + 5000, 'expired in the engine');
  assert.deepEqual(p.seriesStats(), { engine: 1, lookup: 3, registry: 1 }, 'the handles keep their states');
  // The registry frees them after a delivery (off the JS thread), the exports with the next one.
  await next(p, 'delivery', 1, 10000);
  await exported();
  const metrics = await get(`${served.url}metrics`);
  assert.match(metrics, /^a_steady_total \d+$/m);
  assert.doesNotMatch(metrics, /a_bound|a_free|a_7|a_h/);
  const select = JSON.parse(await get(`${served.url}api/select`));
  assert.deepEqual(select.keys, ['inc a.steady']);
  // Through the old handle: the same key, fresh state (its counter starts from zero). Then
  // calls adding 0 keep it (and its total) alive.
  let back = 0;
  p.on('newInterval', () => {
    handle(back === 0 ? 5 : 0);
    if (back === 0) tagged(1);
    back += 1;
  });
  const returned = await deliveryWhere(p, (d) => d.data.master.a.bound !== undefined);
  assert.equal(returned.data.master.a.bound.value.val, 5 / interval);
  assert.equal(returned.data.master.a['h{route="/x"}'].value.count, 1);
  assert.deepEqual(p.seriesStats(), { engine: 3, lookup: 3, registry: 3 });
  await exported();
  assert.match(await get(`${served.url}metrics`), /^a_bound_total 5$/m);
  // A key looked up again makes a new state: the same series name, from zero.
  p.once('newInterval', () => p.inc(['a'], 'free', 4, { user: 'u1' }));
  const again = await deliveryWhere(p, (d) => d.data.master.a['free{user="u1"}'] !== undefined);
  assert.equal(again.data.master.a['free{user="u1"}'].value.val, 4 / interval);
});

test('a registered gauge lives; a gaugeSet field the function stops giving expires, and comes back', { timeout: 30000 }, async (t) => {
  const interval = 100;
  const p = new Panopticon({ interval, expireAfter: 1 });
  t.after(() => p.stop());
  p.gauge(['g'], 'kept', () => 1);
  let fields = { a: 1, b: 2 };
  p.gaugeSet(['s'], () => fields);
  await deliveryWhere(p, (d) => d.data.master.s && d.data.master.s.b);
  assert.equal(p.seriesStats().engine, 3);
  fields = { a: 1 };
  await deliveriesUntil(p, () => p.seriesStats().engine === 2, 20 * interval + 5000, 'b expired');
  fields = { a: 1, b: 5 };
  const back = await deliveryWhere(p, (d) => d.data.master.s.b !== undefined);
  assert.equal(back.data.master.s.b.value.val, 5);
  assert.equal(back.data.master.g.kept.value.val, 1);
  assert.deepEqual(p.seriesStats(), { engine: 3, lookup: 3, registry: 3 });
});

test('expired tag sets make room under maxTagSets; overflow stays exact', { timeout: 30000 }, async (t) => {
  const interval = 100;
  const p = new Panopticon({ interval, expireAfter: 1, maxTagSets: 2 });
  t.after(() => p.stop());
  p.on('warning', () => {});
  let round = 0;
  let recorded = 0;
  p.on('newInterval', () => {
    round += 1;
    if (round > 6) return;
    // Three new tag sets every second interval: two are series, one overflows.
    if (round % 2 === 1) {
      for (let i = 0; i < 3; i++) p.inc([], 'm', 1, { r: `${round}-${i}` });
      recorded += 3;
    }
  });
  let delivered = 0;
  let overflowed = 0;
  await deliveriesUntil(p, (d) => {
    for (const [name, leaf] of Object.entries(d.data.master)) {
      if (name.startsWith('m{')) delivered += leaf.value.val * interval;
    }
    overflowed += d.meta.overflowed;
    return round > 8;
  });
  assert.equal(recorded, 9);
  assert.ok(Math.abs(delivered - recorded) < 1e-9, `${delivered} delivered of ${recorded}`);
  // Each round's tag sets expired before the next: two series each round, one overflow.
  assert.equal(overflowed, 3);
});

test('across a cluster: an idle series leaves the worker, the master, /metrics and the live page, and comes back through its handle', { timeout: 60000 }, async (t) => {
  const interval = 200;
  const p = new Panopticon({ name: 'expiry', interval, expireAfter: 2 });
  const served = await p.serve({ port: 0, host: '127.0.0.1' });
  const exported = exports(p);
  cluster.setupPrimary({ exec: path.join(__dirname, 'fixtures', 'expiry-worker.js'), silent: true });
  const worker = cluster.fork({ INTERVAL: interval });
  t.after(async () => {
    p.stop();
    await stopWorkers([worker]);
  });
  const stats = async () => {
    const answer = next(worker, 'message', 1, 10000);
    worker.send('stats');
    return (await answer).stats;
  };
  const bound = [];
  p.on('delivery', (d) => {
    const w = d.data.workers && d.data.workers[worker.id];
    if (w && w.w && w.w.bound) bound.push(w.w.bound.value.val * interval);
  });
  await deliveryWhere(p, (d) => d.data.cluster.w && d.data.cluster.w.free);
  assert.deepEqual(Object.keys((await stats())), ['engine', 'lookup', 'registry']);
  assert.deepEqual(await stats(), { engine: 4, lookup: 4, registry: null });
  assert.match(await get(`${served.url}metrics`), /^w_free_total \d+$/m);
  worker.send('pause');
  // The worker expires them, tells the master, which frees them and the exports with them.
  await deliveriesUntil(p, () => p.seriesStats().registry === 1, 30 * interval + 10000, 'freed on the master');
  assert.deepEqual(await stats(), { engine: 1, lookup: 2, registry: null }, 'the handle keeps its state');
  // Freed after a delivery: the exports forget them with the next one.
  await next(p, 'delivery', 1, 10000);
  await exported();
  const metrics = await get(`${served.url}metrics`);
  assert.match(metrics, /^w_steady_total \d+$/m);
  assert.doesNotMatch(metrics, /w_free|w_bound|w_tagged/);
  assert.deepEqual(JSON.parse(await get(`${served.url}api/select`)).keys, ['inc w.steady']);
  const before = bound.length;
  worker.send('resume');
  await deliveryWhere(p, () => bound.length > before);
  await exported();
  // 5 after the expiry, then calls adding 0 (they keep it alive): from zero in /metrics too.
  const after = bound.slice(before).map((x) => Math.round(x * 1e6) / 1e6);
  assert.deepEqual(after, [5, ...after.slice(1).map(() => 0)]);
  assert.match(await get(`${served.url}metrics`), /^w_bound_total 5$/m);
  assert.equal(p.seriesStats().registry, 2);
});
