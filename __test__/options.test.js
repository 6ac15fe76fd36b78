'use strict';

// The constructor, its options and the instance fields (panopticon 0.3.0 contract, REFERENCE §1).

const test = require('node:test');
const assert = require('node:assert/strict');
const EventEmitter = require('events');
const { next, Panopticon } = require('./helpers');

function make(options) {
  const p = new Panopticon(options);
  test.after(() => p.stop());
  return p;
}

test('module exports the constructor, also as .Panopticon', () => {
  assert.equal(typeof Panopticon, 'function');
  assert.equal(Panopticon.Panopticon, Panopticon);
});

test('callable without new; instances are EventEmitters', () => {
  const p = Panopticon({ interval: 1000 });
  test.after(() => p.stop());
  assert.ok(p instanceof Panopticon);
  assert.ok(p instanceof EventEmitter);
});

test('defaults', () => {
  const p = make();
  assert.equal(p.interval, 10000);
  assert.equal(p.scaleFactor, 1);
  assert.equal(p.persist, false);
  assert.equal(p.name, undefined);
  // startTime 0: endTime is the next multiple of the interval.
  assert.equal(p.endTime % 10000, 0);
  assert.ok(p.endTime > Date.now() - 50 && p.endTime <= Date.now() + 10000);
});

test('fields as given', () => {
  const name = { any: 'value' };
  const p = make({ interval: 250, scaleFactor: 1000, persist: 'yes', name });
  assert.equal(p.interval, 250);
  assert.equal(p.scaleFactor, 1000);
  assert.equal(p.persist, true);
  assert.equal(p.name, name);
});

test('interval and scaleFactor fall back to defaults unless positive finite numbers', () => {
  for (const bad of [0, -5, NaN, Infinity, '100', null, {}]) {
    const p = make({ interval: bad, scaleFactor: bad });
    assert.equal(p.interval, 10000, `interval ${String(bad)}`);
    assert.equal(p.scaleFactor, 1, `scaleFactor ${String(bad)}`);
  }
  assert.equal(make({ interval: 0.5 }).interval, 0.5);
});

test('startTime sets the grid; numeric strings and Dates are accepted, junk means 0', () => {
  const start = Date.now() + 123; // in the future: the grid extends backwards too
  const expectEnd = (p, s) => {
    assert.equal((((p.endTime - s) % 1000) + 1000) % 1000, 0, `endTime ${p.endTime} on grid ${s}`);
    assert.ok(p.endTime > Date.now() - 50 && p.endTime <= Date.now() + 1000);
  };
  expectEnd(make({ interval: 1000, startTime: start }), start);
  expectEnd(make({ interval: 1000, startTime: String(start) }), start);
  expectEnd(make({ interval: 1000, startTime: ` ${start} ` }), start);
  expectEnd(make({ interval: 1000, startTime: new Date(start) }), start);
  for (const junk of ['abc', '', null, NaN, {}]) expectEnd(make({ interval: 1000, startTime: junk }), 0);
});

test('options must be an object; transformer must be a function', () => {
  assert.throws(() => new Panopticon(5), { name: 'TypeError', message: 'options must be an object, got 5' });
  assert.throws(() => new Panopticon('x'), { name: 'TypeError', message: /options must be an object, got 'x'/ });
  assert.throws(() => new Panopticon({ transformer: 'f' }), {
    name: 'TypeError',
    message: "options.transformer must be a function, got 'f'",
  });
  make({ transformer: null });
});

test('count and _resetCount; ids count up per process', () => {
  Panopticon._resetCount();
  assert.equal(Panopticon.count(), 0);
  const a = make({ interval: 1000 });
  const b = make({ interval: 1000 });
  assert.deepEqual([a.id, b.id], [0, 1]);
  assert.equal(Panopticon.count(), 2);
  // A constructor that throws does not count.
  assert.throws(() => new Panopticon(1));
  assert.equal(Panopticon.count(), 2);
});

test('delivery envelope: id, name, interval / scaleFactor, meta.pid', async () => {
  const p = make({ interval: 100, scaleFactor: 4, name: 'env' });
  const d = await next(p, 'delivery');
  assert.equal(d.id, p.id);
  assert.equal(d.name, 'env');
  assert.equal(d.interval, 25);
  assert.deepEqual(Object.keys(d).sort(), ['data', 'id', 'interval', 'meta', 'name']);
  assert.deepEqual(d.meta, { pid: process.pid, workers: {}, late: 0, decodeErrors: 0, mismatched: 0, unmatched: 0, refused: 0, dropped: 0, invalid: 0, overflowed: 0, errors: 0 });
  assert.deepEqual(d.data, { master: {}, cluster: {} });
});
