'use strict';

// When things happen: collection at each boundary, delivery half an interval later, event order,
// and panopticon 0.3.0's timing bugs, fixed (REFERENCE §1).

const test = require('node:test');
const assert = require('node:assert/strict');
const { next, fresh, Panopticon } = require('./helpers');

function phase(now, interval, start = 0) {
  return (((now - start) % interval) + interval) % interval;
}

function spinUntil(time) {
  while (Date.now() < time) {
    // Busy: the event loop is blocked, no timer can fire.
  }
}

// Sums the `inc` leaves at data.master.c.n by their timeStamp.
function tallyDeliveries(deliveries) {
  const byEnd = new Map();
  for (const d of deliveries) {
    const leaf = d.data.master.c && d.data.master.c.n;
    if (leaf) byEnd.set(leaf.value.timeStamp, leaf.value.val);
  }
  return byEnd;
}

test('every boundary emits sample(data, id) then newInterval, even with no data', async (t) => {
  const p = new Panopticon({ interval: 100 });
  t.after(() => p.stop());
  const events = [];
  p.on('sample', (data, id) => events.push(['sample', data, id]));
  p.on('newInterval', () => events.push(['newInterval']));
  p.on('reset', () => events.push(['reset'])); // never without persist
  await next(p, 'newInterval', 3);
  assert.deepEqual(events, [
    ['sample', {}, p.id], ['newInterval'],
    ['sample', {}, p.id], ['newInterval'],
    ['sample', {}, p.id], ['newInterval'],
  ]);
});

test('deliveries come half an interval after each boundary', async (t) => {
  const interval = 200;
  const p = new Panopticon({ interval, startTime: 37 });
  t.after(() => p.stop());
  const phases = [];
  p.on('delivery', () => phases.push(phase(Date.now(), interval, 37)));
  await next(p, 'delivery', 4);
  for (const ph of phases) assert.ok(ph >= interval / 2 && ph < interval / 2 + 80, `delivered at phase ${ph} of ${interval}`);
});

test('an instance built late in an interval still delivers half-way, with its first data', async (t) => {
  const interval = 300;
  // Wait until we are late in an interval of the grid.
  await new Promise((resolve) => {
    const wait = () => { const ph = phase(Date.now(), interval); return ph > 0.8 * interval && ph < 0.9 * interval ? resolve() : setTimeout(wait, 2); };
    wait();
  });
  const p = new Panopticon({ interval });
  t.after(() => p.stop());
  const firstEnd = p.endTime;
  p.inc(['c'], 'n', 7);
  const d = await next(p, 'delivery');
  const now = Date.now();
  assert.ok(now >= firstEnd + interval / 2, 'not before the half-way point');
  assert.ok(phase(now, interval) < interval / 2 + 100, `delivered at phase ${phase(now, interval)}`);
  assert.equal(d.data.master.c.n.value.val, 7 / interval);
  assert.equal(d.data.master.c.n.value.timeStamp, firstEnd);
});

test('the first datum after a boundary counts in the new interval, before any timer fires', async (t) => {
  const interval = 400;
  const p = await fresh({ interval });
  t.after(() => p.stop());
  const boundary = p.endTime;
  p.inc(['c'], 'n', 1); // interval ending at `boundary`
  // Block the event loop across the boundary: no JS timer can run.
  spinUntil(boundary + 100);
  p.inc(['c'], 'n', 10);
  assert.equal(p.endTime, boundary + interval, 'the record itself moved the instance to the new interval');
  const byEnd = tallyDeliveries(await next(p, 'delivery', 2));
  assert.deepEqual([...byEnd], [[boundary, 1 / interval], [boundary + interval, 10 / interval]]);
});

test('a record made while the clock cell lags behind the boundary timer counts in the new interval', async (t) => {
  const interval = 100;
  const p = await fresh({ interval });
  t.after(() => p.stop());
  // White box: the timer can close an interval before the native clock thread has published the
  // next one (it asks the clock itself); here the cell is held back for the whole interval.
  const { clockCells } = require('../lib/native');
  const collector = p[Object.getOwnPropertySymbols(p).find((s) => s.description === 'panoptic.collector')];
  const expected = new Map();
  let n = 0;
  p.on('newInterval', () => {
    n += 1;
    clockCells[collector.cell] = collector.cur - 1;
    p.inc(['c'], 'n', n);
    p.histogram(['c'], 'h', n);
    p.inc(['c'], 'n', n);
    expected.set(p.endTime, n);
  });
  const deliveries = await next(p, 'delivery', 5);
  let checked = 0;
  for (const d of deliveries) {
    const c = d.data.master.c;
    if (!c) continue;
    const end = c.n.value.timeStamp;
    assert.equal(c.n.value.val, (2 * expected.get(end)) / interval, `interval ending ${end}`);
    assert.deepEqual([c.h.value.count, c.h.value.max, c.h.value.timeStamp], [1, expected.get(end), end]);
    checked += 1;
  }
  assert.ok(checked >= 3, `${checked} intervals with records`);
});

test('a stalled event loop: every datum in its own interval, then deliveries re-align', async (t) => {
  const interval = 100;
  const p = await fresh({ interval });
  t.after(() => p.stop());
  const delivered = [];
  p.on('delivery', (d) => delivered.push([d, Date.now()]));
  // Record for 450 ms without yielding; the instance's endTime after each call names the interval
  // the datum was attributed to.
  const expected = new Map();
  const until = Date.now() + 450;
  while (Date.now() < until) {
    p.inc(['c'], 'n', 1);
    expected.set(p.endTime, (expected.get(p.endTime) || 0) + 1);
    spinUntil(Date.now() + 1);
  }
  assert.ok(expected.size >= 4, `the stall spanned ${expected.size} intervals`);
  const lastEnd = Math.max(...expected.keys());
  // Wait until the interval that was open when the stall ended is delivered, plus two more.
  while (!delivered.some(([d]) => d.data.master.c && d.data.master.c.n.value.timeStamp === lastEnd)) {
    await next(p, 'delivery', 1, 5000);
  }
  await next(p, 'delivery', 2);
  const byEnd = tallyDeliveries(delivered.map(([d]) => d));
  for (const [end, count] of expected) assert.equal(byEnd.get(end), count / interval, `interval ending ${end}`);
  assert.equal(byEnd.size, expected.size, 'no datum anywhere else');
  // The two deliveries after the catch-up are half-way again.
  for (const [, at] of delivered.slice(-2)) {
    assert.ok(phase(at, interval) >= interval / 2 && phase(at, interval) < interval / 2 + 45, `phase ${phase(at, interval)}`);
  }
});

test('stop(): emits stopping, removes listeners, ignores later records, lets the process exit', async (t) => {
  const p = new Panopticon({ interval: 50 });
  let stopping = 0;
  p.on('stopping', () => { stopping += 1; });
  p.on('delivery', () => assert.fail('no delivery after stop'));
  p.inc(['a'], 'b', 1);
  const hit = p.bind('inc', ['a'], 'b');
  p.stop();
  assert.equal(stopping, 1);
  assert.equal(p.listenerCount('delivery'), 0);
  hit(5);
  p.inc(['a'], 'c', 1);
  p.sample(['a'], 'd', 1);
  p.set(['a'], 'e', 1);
  assert.throws(() => p.inc('bad', 'x'), TypeError, 'arguments are still checked');
  // Nothing keeps a stopped instance alive: a child that stops its instance exits by itself.
  const { spawnSync } = require('child_process');
  const child = spawnSync(process.execPath, ['-e', `
    const P = require(${JSON.stringify(require.resolve('..'))});
    const p = new P({ interval: 50 }); p.inc(['a'], 'b', 1); setTimeout(() => p.stop(), 120);`], { timeout: 10000 });
  assert.equal(child.status, 0, String(child.stderr));
  await new Promise((resolve) => setTimeout(resolve, 150));
});

test('one cluster fork listener for all master instances, removed when the last stops', () => {
  const cluster = require('cluster');
  const before = cluster.listenerCount('fork');
  const ps = Array.from({ length: 5 }, () => new Panopticon({ interval: 1000 }));
  assert.equal(cluster.listenerCount('fork'), before + 1);
  ps.slice(1).forEach((p) => p.stop());
  assert.equal(cluster.listenerCount('fork'), before + 1, 'one instance still listens');
  ps[0].stop();
  assert.equal(cluster.listenerCount('fork'), before);
});
