'use strict';

// registerMethod and the logger class contract; bad input; failures that must never escape.

const test = require('node:test');
const assert = require('node:assert/strict');
const { next, fresh, Panopticon } = require('./helpers');

// A 0.3.0-style logger class that records how it is driven.
const calls = [];
function Max(value, timeStamp, persistObj, scaleFactor, interval) {
  calls.push(['new', value, timeStamp, persistObj, scaleFactor, interval]);
  this.max = value;
  this.timeStamp = timeStamp;
  if (persistObj) persistObj.on('reset', (ts) => this.reset(ts));
}
Max.prototype.update = function update(value, timeStamp) {
  calls.push(['update', value, timeStamp]);
  this.max = Math.max(this.max, value);
  this.timeStamp = timeStamp;
};
Max.prototype.reset = function reset(timeStamp) {
  calls.push(['reset', timeStamp]);
  this.max = null;
  this.timeStamp = timeStamp;
};
Max.prototype.toJSON = function toJSON() {
  return { type: 'max', value: { max: this.max, timeStamp: this.timeStamp } };
};

test('registerMethod adds a method to existing and new instances, listed after the built-ins', async (t) => {
  const existing = await fresh({ interval: 200, scaleFactor: 3 });
  t.after(() => existing.stop());
  Panopticon.registerMethod('max', Max, Number.isFinite);
  assert.deepEqual(Panopticon.getLoggerMethodNames(), ['sample', 'timedSample', 'inc', 'set', 'gauge', 'histogram', 'rate', 'meter', 'max']);
  const names = Panopticon.getLoggerMethodNames();
  names.push('x');
  assert.equal(Panopticon.getLoggerMethodNames().length, 9, 'a copy');

  calls.length = 0;
  const end = existing.endTime;
  existing.max(['m'], 'x', 3);
  existing.max(['m'], 'x', 9);
  existing.bind('max', ['m'], 'x')(4);
  existing.max(['m'], 'x', 'junk'); // the validator drops it
  const d = await next(existing, 'delivery');
  assert.deepEqual(calls, [['new', 3, end, null, 3, 200], ['update', 9, end], ['update', 4, end]]);
  assert.deepEqual(d.data.master.m.x, { type: 'max', value: { max: 9, timeStamp: end } });
  assert.equal(d.meta.dropped, 1);
});

test('registered loggers with persist: one logger, reset through the persistObj', async (t) => {
  const p = await fresh({ interval: 200, persist: true });
  t.after(() => p.stop());
  calls.length = 0;
  const end = p.endTime;
  p.max([], 'y', 5);
  const [first, second] = await next(p, 'delivery', 2);
  assert.deepEqual(first.data.master.y.value, { max: 5, timeStamp: end });
  assert.deepEqual(second.data.master.y.value, { max: null, timeStamp: end + 200 });
  assert.equal(calls[0][3], p, 'persistObj is the instance');
  assert.deepEqual(calls.filter((c) => c[0] === 'reset').slice(0, 2), [['reset', end + 200], ['reset', end + 400]]);
});

test('registerMethod errors keep panopticon 0.3.0 messages', () => {
  assert.throws(() => Panopticon.registerMethod('sample', Max), { message: 'Method "sample" is already registered.' });
  assert.throws(() => Panopticon.registerMethod('max', Max), { message: 'Method "max" is already registered.' });
  for (const name of ['stop', 'bind', 'constructor']) {
    assert.throws(() => Panopticon.registerMethod(name, Max), { message: `Method "${name}" is already a panopticon prototype property.` });
  }
  assert.throws(() => Panopticon.registerMethod('hello', null), {
    name: 'TypeError',
    message: 'loggerClass must be a constructor function. Got null.',
  });
  assert.throws(() => Panopticon.registerMethod('hello', Max, 'yes'), { name: 'TypeError', message: "validator must be a function, got 'yes'" });
  assert.throws(() => Panopticon.registerMethod(5, Max), { name: 'TypeError', message: 'name must be a non-empty string, got 5' });
  assert.ok(!Panopticon.getLoggerMethodNames().includes('hello'));
});

test('bad paths and ids are TypeErrors naming the argument and the value', async (t) => {
  const p = await fresh({ interval: 1000 });
  t.after(() => p.stop());
  const cases = [
    [() => p.inc('http', 'x'), "path must be an array of strings or finite numbers, or null for the root, got 'http'"],
    [() => p.inc(5, 'x'), 'path must be an array of strings or finite numbers, or null for the root, got 5'],
    [() => p.sample(['a', {}], 'x', 1), 'path[1] must be a string or a finite number, got {}'],
    [() => p.set(['a', NaN], 'x', 1), 'path[1] must be a string or a finite number, got NaN'],
    [() => p.timedSample(['a'], undefined, [0, 1]), 'id must be a string or a finite number, got undefined'],
    [() => p.inc(['a'], Infinity), 'id must be a string or a finite number, got Infinity'],
    [() => p.bind('inc', ['a'], null), 'id must be a string or a finite number, got null'],
    [() => p.max(['a'], [1], 1), 'id must be a string or a finite number, got [ 1 ]'],
  ];
  for (const [fn, message] of cases) assert.throws(fn, { name: 'TypeError', message });
  // A key that resolved once is not confused with a bad one later.
  p.inc(['a'], 'x', 1);
  assert.throws(() => p.inc('a', 'x'), TypeError);
});

test('keys like __proto__ are ordinary keys', async (t) => {
  const p = await fresh({ interval: 200 });
  t.after(() => p.stop());
  p.inc(['__proto__'], '__proto__', 1);
  p.set(['constructor'], 'toString', 'v');
  const d = await next(p, 'delivery');
  assert.equal(Object.getPrototypeOf(d.data.master), Object.prototype);
  assert.ok(Object.prototype.hasOwnProperty.call(d.data.master, '__proto__'));
  assert.equal(Object.getOwnPropertyDescriptor(d.data.master, '__proto__').value.__proto__.type, 'inc');
  assert.equal(d.data.master.constructor.toString.value.val, 'v');
  assert.equal({}.inc, undefined, 'Object.prototype untouched');
});

function Throwing(value) {
  if (value === 'ctor') throw new Error('constructor failed');
  this.value = value;
}
Throwing.prototype.update = function update(value) {
  if (value === 'update') throw new Error('update failed');
  this.value = value;
};
Throwing.prototype.toJSON = function toJSON() {
  if (this.value === 'json') throw new Error('toJSON failed');
  return { type: 'throwing', value: { val: this.value } };
};
test('throwing loggers and validators are counted, never thrown; error emitted only when listened', async (t) => {
  Panopticon.registerMethod('throwing', Throwing, (v) => {
    if (v === 'validator') throw new Error('validator failed');
    return true;
  });
  const p = await fresh({ interval: 250 });
  t.after(() => p.stop());
  p.throwing(['a'], 'ctor', 'ctor'); // no 'error' listener: silent
  p.throwing(['a'], 'ok', 'fine');
  p.throwing(['a'], 'ok', 'update');
  p.throwing(['a'], 'json', 'json');
  p.throwing(['a'], 'v', 'validator');
  const errors = [];
  p.on('error', (err) => errors.push(err.message));
  p.throwing(['a'], 'ctor2', 'ctor');
  const d = await next(p, 'delivery');
  assert.deepEqual(d.data.master, { a: { ok: { type: 'throwing', value: { val: 'fine' } } } });
  assert.equal(d.meta.errors, 5);
  assert.deepEqual(errors, ['constructor failed', 'toJSON failed']);
});

test('a throwing transformer costs its process\'s data in that delivery, not the timer', async (t) => {
  let fail = true;
  const p = await fresh({
    interval: 200,
    transformer: (data, id) => {
      if (fail) throw new Error('transformer failed');
      return { mine: { [id]: data } };
    },
  });
  t.after(() => p.stop());
  const errors = [];
  p.on('error', (err) => errors.push(err.message));
  p.inc([], 'n', 1);
  const first = await next(p, 'delivery');
  assert.deepEqual(Object.keys(first.data), ['cluster'], 'the master\'s data is missing; the cluster view is not transformed');
  assert.equal(first.data.cluster.n.value.val, 1 / 200);
  assert.equal(first.meta.errors, 1);
  assert.deepEqual(errors, ['transformer failed']);
  fail = false;
  p.inc([], 'n', 1);
  const second = await next(p, 'delivery');
  assert.equal(second.data.mine.master.n.value.val, 1 / 200);
  assert.equal(second.meta.errors, 0);
});

test('a leaf and a branch at the same place: the later series is left out and counted', async (t) => {
  const p = await fresh({ interval: 200 });
  t.after(() => p.stop());
  const errors = [];
  p.on('error', (err) => errors.push(err.message));
  p.inc(['a'], 'b', 1);
  p.inc(['a', 'b'], 'c', 1);
  p.sample(['a'], 'b', 1);
  const d = await next(p, 'delivery');
  assert.deepEqual(Object.keys(d.data.master.a), ['b']);
  assert.equal(d.data.master.a.b.type, 'inc');
  assert.equal(d.meta.errors, 2);
  assert.equal(errors.length, 2);
  assert.match(errors[0], /collides with another series/);
  // In separate intervals the same places are fine (as in 0.3.0 without persist).
  p.inc(['a', 'b'], 'c', 1);
  const d2 = await next(p, 'delivery');
  assert.equal(d2.data.master.a.b.c.type, 'inc');
  assert.equal(d2.meta.errors, 0);
});
