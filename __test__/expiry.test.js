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
  // The handles' states left the lookups with their series (a dropped handle leaves nothing).
  assert.deepEqual(p.seriesStats(), { engine: 1, lookup: 1, registry: 1 }, 'the handles keep nothing in the lookups');
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

/** The collector behind `p` (as timing.test.js reaches it): to see what its lookups hold. */
function collectorOf(p) {
  return p[Object.getOwnPropertySymbols(p).find((s) => s.description === 'panoptic.collector')];
}

/** How many path nodes, series and tag tries the lookup tries of collector `c` hold. */
function trieSize(c) {
  let size = 0;
  const visit = (node) => {
    size += 1 + (node.ids === null ? (node.state === undefined ? 0 : 1) : node.ids.size) + (node.tags === null ? 0 : 1);
    if (node.children !== null) for (const next of new Set(node.children.values())) visit(next);
    else if (node.next !== undefined) visit(node.next);
  };
  for (const root of c.tries) if (root !== undefined) visit(root);
  return size;
}

test('a storm of new paths, ids, tag sets and dropped handles leaves nothing in the lookups once expired; a kept handle still records', { timeout: 30000 }, async (t) => {
  const interval = 100;
  const p = new Panopticon({ interval, expireAfter: 1 });
  t.after(() => p.stop());
  const c = collectorOf(p);
  const kept = p.bind('inc', ['kept', 0], 'k');
  let round = 0;
  p.on('newInterval', () => {
    round += 1;
    if (round > 3) return;
    for (let i = 0; i < 50; i++) {
      p.inc(['storm', `r${round}-${i}`], 'n', 1);
      p.inc(['storm', i], round, 2);
      p.histogram(['storm', `r${round}-${i}`], 'h', 1, { k: String(i) });
      p.bind('sample', ['dropped', round, i], 'x')(1);
    }
    kept(1);
  });
  await deliveriesUntil(p, () => round > 3 && p.seriesStats().engine === 0, 30 * interval + 10000, 'everything expired');
  assert.deepEqual(p.seriesStats(), { engine: 0, lookup: 0, registry: 0 });
  assert.equal(trieSize(c), c.tries.filter((root) => root !== undefined).length, 'no path node, series or tag trie is left');
  for (const root of c.tries) {
    if (root === undefined) continue;
    assert.deepEqual([root.children, root.next, root.ids, root.state, root.tags], [null, undefined, null, undefined, null]);
  }
  assert.equal(c.handles.size, 0, 'no handle state is listed');
  assert.ok(c.nodes.every((n) => n === undefined) && c.names.every((n) => n === undefined), 'the compact arrays hold nothing');
  // The kept handle brings its series back (a new path node), with fresh state.
  p.once('newInterval', () => kept(5));
  const back = await deliveryWhere(p, (d) => d.data.master.kept !== undefined);
  assert.deepEqual(back.data.master.kept[0].k.value.val, 5 / interval);
  assert.equal(p.seriesStats().lookup, 1);
});

test('a handle brings its own series back even when the instance is at maxSeries', { timeout: 30000 }, async (t) => {
  const interval = 100;
  const p = new Panopticon({ interval, expireAfter: 1, maxSeries: 2 });
  t.after(() => p.stop());
  p.on('warning', () => {});
  const handle = p.bind('inc', ['h'], 'kept');
  p.once('newInterval', () => handle(1));
  await deliveryWhere(p, (d) => d.data.master.h !== undefined);
  await deliveriesUntil(p, () => p.seriesStats().engine === 0, 30 * interval + 10000, 'expired');
  // Two other series fill the instance; the handle's series comes back beside them, not into
  // the overflow series (whose values the handle would not count in meta.overflowed).
  let round = 0;
  p.on('newInterval', () => {
    round += 1;
    p.inc(['o'], 'a');
    p.inc(['o'], 'b');
    if (round === 2) handle(7);
  });
  const back = await deliveryWhere(p, (d) => d.data.master.h !== undefined);
  assert.equal(back.data.master.h.kept.value.val, 7 / interval);
  assert.equal(back.meta.overflowed, 0);
  assert.equal(back.data.master.panoptic, undefined, 'nothing in an overflow series');
  assert.deepEqual(p.seriesStats().lookup, 3);
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
  assert.deepEqual(await stats(), { engine: 1, lookup: 1, registry: null }, 'the handle keeps nothing in the lookups');
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
