'use strict';

// Panopticon.filter(expression): compiling (TypeError, SyntaxError with position), test(series)
// and select(delivery) on real deliveries (a standalone instance, a worker thread, a cluster
// worker). The language itself is tested in crates/panoptic-core/src/filter.rs.

const test = require('node:test');
const assert = require('node:assert/strict');
const cluster = require('cluster');
const os = require('os');
const path = require('path');
const { Worker } = require('worker_threads');
const { next, fresh, stopWorkers, Panopticon } = require('./helpers');

test('a non-string expression is a TypeError naming it and the value', () => {
  for (const [value, shown] of [[5, '5'], [undefined, 'undefined'], [null, 'null'], [{ a: 1 }, '{ a: 1 }'], [['x'], "[ 'x' ]"]]) {
    assert.throws(() => Panopticon.filter(value), { name: 'TypeError', message: `expression must be a string, got ${shown}` });
  }
});

test('a bad expression is a SyntaxError saying where, what was expected and what was found', () => {
  const cases = [
    ['', 0, /expected a field \(name, path, id, type, tags\.<key>, process\.role, .*\), NOT or '\(', found end of input$/],
    ['nam = "x"', 0, /expected a field .*, found "nam"$/],
    ['name = ', 7, /expected a value in quotes, found end of input$/],
    ["name = 'x", 9, /expected ' to close the value opened at position 7, found end of input$/],
    ["(name = 'x'", 11, /expected AND, OR or '\)', found end of input$/],
    ["name = 'x' garbage", 11, /expected AND, OR or end of input, found "garbage"$/],
    ["name IN ('a' 'b')", 13, /expected ',' or '\)' in the list of values, found "'b'"$/],
    ["name IN ()", 9, /expected a value in quotes, found "\)"$/],
    ["name ~ 'x'", 5, /expected an operator \(=, !=, eq, ne, LIKE, NOT LIKE, IN, NOT IN\), found "~"$/],
    [`${'('.repeat(65)}name = 'x'${')'.repeat(65)}`, 64, /expected at most 64 nested '\(' and NOT, found "\(" nested 65 deep$/],
    [`name = '${'x'.repeat(5000)}'`, 4096, /expected an expression of at most 4096 bytes, found 5009 bytes$/],
  ];
  for (const [expression, position, message] of cases) {
    assert.throws(() => Panopticon.filter(expression), (e) => {
      assert.ok(e instanceof SyntaxError, `${expression.slice(0, 30)}: ${e}`);
      assert.equal(e.position, position, expression.slice(0, 30));
      assert.match(e.message, new RegExp(`^filter: at position ${position}: `));
      assert.match(e.message, message);
      return true;
    });
  }
});

test('a compiled filter: its expression, frozen, methods that work detached', () => {
  const f = Panopticon.filter("name LIKE 'http.%'");
  assert.deepEqual(Object.keys(f), ['expression', 'test', 'select']);
  assert.equal(f.expression, "name LIKE 'http.%'");
  assert.ok(Object.isFrozen(f));
  const { test: match } = f;
  assert.equal(match({ path: ['http'], id: 'requests', type: 'inc' }), true);
  assert.equal(match({ path: ['db'], id: 'requests', type: 'inc' }), false);
});

test('test(series): every field, tagged ids, missing fields', () => {
  const series = {
    path: ['http', 'api'],
    id: 'requests{method="GET",status="200"}',
    type: 'inc',
    process: { role: 'worker', pid: 4242, worker: 3, host: 'box', title: 'node app' },
  };
  const yes = [
    "name = 'http.api.requests'",
    "path = 'http.api'",
    "id = 'requests'",
    "type eq 'inc'",
    "tags.method = 'GET' AND tags.status IN ('200', '204')",
    "tags.missing != 'x' AND tags.missing NOT LIKE '%'",
    "process.role = 'worker' and process.pid = '4242' and process.worker = '3'",
    "process.host = 'box' AND process.title LIKE 'node%'",
    "NOT (name LIKE 'db.%' OR tags.status NOT IN ('200'))",
  ];
  const no = [
    "name = 'http.api.requests{method=\"GET\",status=\"200\"}'",
    "tags.status = '500'",
    "tags.missing = 'x'",
    "tags.missing LIKE '%'",
    "process.pid = '04242'",
    "process.role = 'master' OR process.worker ne '3'",
  ];
  for (const e of yes) assert.equal(Panopticon.filter(e).test(series), true, e);
  for (const e of no) assert.equal(Panopticon.filter(e).test(series), false, e);

  // Without a process (as the cluster view): every process.* field is missing.
  const cluster = { path: ['http'], id: 'requests', type: 'inc' };
  assert.equal(Panopticon.filter("process.role LIKE '%'").test(cluster), false);
  assert.equal(Panopticon.filter("process.role != 'master'").test(cluster), true);
  // A process field left out is missing; numbers in a path or id are their text.
  const partial = { path: [1], id: 2, type: 'set', process: { role: 'master' } };
  assert.equal(Panopticon.filter("process.pid LIKE '%' OR process.host LIKE '%' OR process.title LIKE '%'").test(partial), false);
  assert.equal(Panopticon.filter("name = '1.2' AND process.role = 'master'").test(partial), true);
  assert.equal(Panopticon.filter("path = '' AND name = 'n'").test({ path: null, id: 'n', type: 'inc' }), true);
});

test('test(series) checks its argument', () => {
  const f = Panopticon.filter("id = 'x'");
  const ok = { path: [], id: 'x', type: 'inc' };
  const cases = [
    [null, TypeError, 'series must be an object { path, id, type, process? }, got null'],
    ['x', TypeError, "series must be an object { path, id, type, process? }, got 'x'"],
    [{ ...ok, path: 'a' }, TypeError, "path must be an array of strings or finite numbers, or null for the root, got 'a'"],
    [{ ...ok, id: {} }, TypeError, 'id must be a string or a finite number, got {}'],
    [{ ...ok, type: 1 }, TypeError, 'series.type must be a string, got 1'],
    [{ ...ok, process: 'worker' }, TypeError, "series.process must be an object { role, pid?, worker?, host?, title? }, got 'worker'"],
    [{ ...ok, process: { role: 'boss' } }, TypeError, "series.process.role must be 'master', 'worker' or 'thread', got 'boss'"],
    [{ ...ok, process: { role: 'worker', pid: '1' } }, TypeError, "series.process.pid must be a number, got '1'"],
    [{ ...ok, process: { role: 'worker', worker: -1 } }, RangeError, 'series.process.worker must be an integer from 0 to 4294967295, got -1'],
    [{ ...ok, process: { role: 'worker', pid: 1.5 } }, RangeError, 'series.process.pid must be an integer from 0 to 4294967295, got 1.5'],
    [{ ...ok, process: { role: 'worker', host: 1 } }, TypeError, 'series.process.host must be a string, got 1'],
  ];
  for (const [series, type, message] of cases) {
    assert.throws(() => f.test(series), (e) => e instanceof type && e.message === message, message);
  }
  assert.equal(f.test({ ...ok, process: null }), true);
});

/** Every leaf of a tree as `path.id` (sorted). */
function leaves(tree, prefix = []) {
  const out = [];
  for (const [key, child] of Object.entries(tree)) {
    if (typeof child.type === 'string' && 'value' in child) out.push([...prefix, key].join('.'));
    else out.push(...leaves(child, [...prefix, key]));
  }
  return out.sort();
}

test('select(delivery): the matching leaves of each tree, in a delivery of the same shape', async (t) => {
  const p = await fresh({ interval: 200, name: 'web' });
  t.after(() => p.stop());
  p.inc(['http', 'api'], 'requests', 1, { method: 'GET', status: '200' });
  p.inc(['http', 'api'], 'requests', 1, { method: 'POST', status: '500' });
  p.sample(['http'], 'latency', 12);
  p.set(['db'], 'pool', 'main');
  p.set([], 'version', '1.0');
  const d = await next(p, 'delivery');
  const all = ['db.pool', 'http.api.requests{method="GET",status="200"}', 'http.api.requests{method="POST",status="500"}', 'http.latency', 'version'];
  assert.deepEqual(leaves(d.data.master), all);
  const before = JSON.stringify(d);

  const http = Panopticon.filter("name LIKE 'http.%'").select(d);
  assert.deepEqual(Object.keys(http), Object.keys(d));
  assert.deepEqual([http.id, http.name, http.interval, http.meta], [d.id, 'web', d.interval, d.meta]);
  assert.notEqual(http.meta, d.meta, 'a copy');
  assert.deepEqual(Object.keys(http.data), ['master', 'cluster']);
  assert.deepEqual(leaves(http.data.master), all.filter((s) => s.startsWith('http.')));
  assert.deepEqual(leaves(http.data.cluster), all.filter((s) => s.startsWith('http.')));
  assert.equal(http.data.master.http.latency, d.data.master.http.latency, 'leaves are the same objects');
  assert.equal(http.data.master.db, undefined, 'emptied branches are dropped');

  const errors = Panopticon.filter("tags.status LIKE '5__'").select(d);
  assert.deepEqual(leaves(errors.data.master), ['http.api.requests{method="POST",status="500"}']);

  // The master's tree is the master's process; the cluster view has none.
  const own = Panopticon.filter(`process.role = 'master' AND process.pid = '${process.pid}' AND process.host = '${os.hostname()}' AND process.worker NOT LIKE '%'`).select(d);
  assert.deepEqual(leaves(own.data.master), all);
  assert.deepEqual(own.data.cluster, {}, 'the root of a tree stays, empty');
  const merged = Panopticon.filter("process.role NOT IN ('master', 'worker', 'thread') AND type = 'set'").select(d);
  assert.deepEqual(merged.data.master, {});
  assert.deepEqual(leaves(merged.data.cluster), ['db.pool', 'version']);

  assert.equal(JSON.stringify(d), before, 'the delivery itself is unchanged');
  const none = Panopticon.filter("id = 'nothing'").select(d);
  assert.deepEqual(none.data, { master: {}, cluster: {} });
});

test('select(delivery) checks its argument', () => {
  const f = Panopticon.filter("id = 'x'");
  for (const [value, shown] of [[null, 'null'], [{}, '{}'], [{ data: 5 }, '{ data: 5 }']]) {
    assert.throws(() => f.select(value), {
      name: 'TypeError',
      message: `delivery must be a 'delivery' event object { id, name, interval, data, meta }, got ${shown}`,
    });
  }
  // A tree's odd keys survive; values that are neither trees nor leaves are left out of trees.
  const leaf = { type: 'inc', value: { val: 1 } };
  const d = JSON.parse(`{ "data": { "master": { "__proto__": { "x": ${JSON.stringify(leaf)} }, "odd": 5 }, "custom": "kept", "cluster": {} } }`);
  const out = f.select(d);
  assert.deepEqual(Object.keys(out.data.master), ['__proto__']);
  assert.deepEqual(out.data.master.__proto__, { x: leaf });
  assert.equal(Object.getPrototypeOf(out.data.master), Object.prototype);
  assert.equal(out.data.custom, 'kept');
  assert.equal(out.meta, undefined);
});

test('select(delivery) on a worker thread\'s tree: role thread, its process\'s pid', { timeout: 30000 }, async (t) => {
  const interval = 200;
  const p = new Panopticon({ name: 'filtered', interval });
  t.after(() => p.stop());
  const worker = new Worker(`
    const { parentPort } = require('worker_threads');
    const Panopticon = require(${JSON.stringify(require.resolve('..'))});
    const p = new Panopticon({ name: 'filtered', interval: ${interval} });
    p.on('newInterval', () => p.inc(['t'], 'n', 1));
    parentPort.on('message', () => { p.stop(); parentPort.close(); });
  `, { eval: true });
  t.after(() => worker.terminate());
  p.on('newInterval', () => p.inc(['m'], 'n', 1));
  const label = `master:${worker.threadId}`;
  let d;
  do d = await next(p, 'delivery', 1, 20000);
  while (!(d.data.threads && d.data.threads[label] && d.data.threads[label].t && d.data.master.m));

  const threads = Panopticon.filter(`process.role = 'thread' AND process.pid = '${process.pid}' AND process.worker NOT LIKE '%'`).select(d);
  assert.deepEqual(leaves(threads.data.threads[label]), ['t.n']);
  assert.deepEqual(threads.data.master, {});
  assert.deepEqual(threads.data.cluster, {});
  const masters = Panopticon.filter("process.role = 'master'").select(d);
  assert.deepEqual(masters.data.threads, { [label]: {} });
  assert.deepEqual(leaves(masters.data.master), ['m.n']);
});

test('select(delivery) on a cluster worker\'s tree: role worker, its id and pid', { timeout: 60000 }, async (t) => {
  const interval = 200;
  const start = String(Date.now());
  // Named: an unnamed instance is matched with the workers' by construction order.
  const p = new Panopticon({ interval, startTime: Number(start), name: 'filtered-cluster' });
  cluster.setupPrimary({ exec: path.join(__dirname, 'fixtures', 'cluster-worker.js'), silent: false });
  const w = cluster.fork({ INTERVAL: interval, START: start, HITS: 1, NAME: 'filtered-cluster' });
  t.after(async () => {
    p.stop();
    await stopWorkers([w]);
  });
  p.on('newInterval', () => p.inc(['m'], 'hits', 1));
  let d;
  do d = await next(p, 'delivery', 1, 30000);
  while (!(d.data.workers && d.data.workers[w.id] && d.data.workers[w.id].w && d.data.master.m));
  assert.equal(d.meta.workers[w.id], w.process.pid);

  const mine = Panopticon.filter(`process.role = 'worker' AND process.worker = '${w.id}' AND process.pid = '${w.process.pid}' AND name = 'w.hits'`).select(d);
  assert.deepEqual(leaves(mine.data.workers[w.id]), ['w.hits']);
  assert.deepEqual(mine.data.master, {});
  assert.deepEqual(mine.data.cluster, {});
  const others = Panopticon.filter(`process.worker != '${w.id}'`).select(d);
  assert.deepEqual(others.data.workers, { [w.id]: {} });
  assert.deepEqual(leaves(others.data.master), ['m.hits']);
  assert.deepEqual(leaves(others.data.cluster), leaves(d.data.cluster));
});
