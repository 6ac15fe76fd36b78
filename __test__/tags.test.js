'use strict';

// Tags (a series id with labels) and scopes (views that prefix a path).

const test = require('node:test');
const assert = require('node:assert/strict');
const { next, fresh, Panopticon } = require('./helpers');

test('a tagged series is its own series, named id{key="value",...} with keys sorted', async (t) => {
  const p = await fresh({ interval: 200 });
  t.after(() => p.stop());
  p.inc(['http'], 'requests', 1, { status: '200', method: 'GET' });
  p.bind('inc', ['http'], 'requests', { method: 'GET', status: '200' })(2);
  p.inc(['http'], 'requests', 4, { method: 'POST', status: '200' });
  p.inc(['http'], 'requests', 8);
  p.inc(['http'], 'requests', 16, {});
  p.sample(['http'], 'size', 5, { path: 'a "quoted"\\ value\nwith a newline' });
  const { http } = (await next(p, 'delivery')).data.master;
  assert.deepEqual(Object.keys(http).sort(), [
    'requests',
    'requests{method="GET",status="200"}',
    'requests{method="POST",status="200"}',
    'size{path="a \\"quoted\\"\\\\ value\\nwith a newline"}',
  ]);
  assert.equal(http['requests{method="GET",status="200"}'].value.val, 3 / 200);
  assert.equal(http.requests.value.val, 24 / 200);
  assert.equal(http['size{path="a \\"quoted\\"\\\\ value\\nwith a newline"}'].value.max, 5);
});

test('a tags object is read at each call: reused, changed, inherited or in another key order', async (t) => {
  const p = await fresh({ interval: 200 });
  t.after(() => p.stop());
  const tags = { method: 'GET' };
  p.inc([], 'n', 1, tags); // n{method="GET"}
  p.inc([], 'n', 1, tags);
  tags.status = '200'; // a key added to the same object
  p.inc([], 'n', 2, tags); // n{method="GET",status="200"}
  tags.status = '500'; // a value changed
  p.inc([], 'n', 4, tags);
  delete tags.status; // a key removed
  p.inc([], 'n', 8, tags);
  tags.method = 7; // a value that is no longer a string: refused as on a first call
  assert.throws(() => p.inc([], 'n', 1, tags), { name: 'TypeError', message: 'tags.method must be a string, got 7' });
  tags.method = 'GET';
  p.inc([], 'n', 16, { status: '500', method: 'GET' }); // another order, the same series
  p.inc([], 'n{method="GET"}', 32); // an id spelling a tagged series is that series
  // Enumerable properties a prototype holds are not tags (taggedId reads own keys).
  function Tags(method) {
    this.method = method;
  }
  Tags.prototype.status = '200';
  p.inc([], 'n', 64, new Tags('GET'));
  const bare = Object.create(null);
  bare.method = 'PUT';
  p.inc([], 'n', 128, bare);
  p.inc([], 'n', 128, bare);
  p.inc([], 'n', 256, Object.create({ method: 'GET' })); // nothing own: untagged
  const { master } = (await next(p, 'delivery')).data;
  const val = (k) => master[k].value.val * 200;
  assert.deepEqual(Object.keys(master).sort(), ['n', 'n{method="GET",status="200"}', 'n{method="GET",status="500"}', 'n{method="GET"}', 'n{method="PUT"}']);
  assert.equal(val('n{method="GET"}'), 1 + 1 + 8 + 32 + 64);
  assert.equal(val('n{method="GET",status="200"}'), 2);
  assert.equal(val('n{method="GET",status="500"}'), 4 + 16);
  assert.equal(val('n{method="PUT"}'), 256);
  assert.equal(val('n'), 256);
});

test('bad tags are TypeErrors or RangeErrors naming what was given', (t) => {
  const p = new Panopticon({ interval: 1000 });
  t.after(() => p.stop());
  assert.throws(() => p.inc([], 'n', 1, null), { name: 'TypeError', message: 'tags must be an object whose values are strings, got null' });
  assert.throws(() => p.inc([], 'n', 1, ['a']), { name: 'TypeError', message: /got \[ 'a' \]/ });
  assert.throws(() => p.bind('inc', [], 'n', { a: 1 }), { name: 'TypeError', message: 'tags.a must be a string, got 1' });
  assert.throws(() => p.inc([], 'n', 1, { 'a-b': 'x' }), { name: 'RangeError', message: /tag key "a-b" must be a label name/ });
  assert.throws(() => p.inc([], 'n', 1, { __name__: 'x' }), { name: 'RangeError' });
  assert.throws(() => p.inc([], {}, 1, { a: 'x' }), { name: 'TypeError', message: /^id must be/ });
});

test('scopes prefix the path of every method and of bind, and nest', async (t) => {
  const p = await fresh({ interval: 200 });
  t.after(() => p.stop());
  const http = p.scope(['http']);
  const v1 = http.scope(['v1', 2]);
  http.inc(null, 'requests', 1);
  v1.inc(['get'], 'requests', 2, { code: '200' });
  v1.bind('sample', [], 'latency')(7);
  p.scope(null).set([], 'root', 'yes');
  class Max {
    constructor(v) { this.v = v; }
    update(v) { this.v = Math.max(this.v, v); }
    reset() {}
    toJSON() { return { type: 'scopeMax', value: this.v }; }
  }
  Panopticon.registerMethod('scopeMax', Max);
  http.scopeMax([], 'peak', 3); // registered after the scope was made
  const { master } = (await next(p, 'delivery')).data;
  assert.equal(master.http.requests.value.val, 1 / 200);
  assert.equal(master.http.v1['2'].get['requests{code="200"}'].value.val, 2 / 200);
  assert.equal(master.http.v1['2'].latency.value.average, 7);
  assert.equal(master.root.value.val, 'yes');
  assert.deepEqual(master.http.peak, { type: 'scopeMax', value: 3 });
  assert.throws(() => p.scope('http'), { name: 'TypeError', message: /^path must be an array/ });
  assert.throws(() => http.inc('get', 'n', 1), { name: 'TypeError', message: /^path must be an array/ });
  assert.throws(() => Panopticon.registerMethod('scope', Max), /already a panopticon prototype property/);
});
