'use strict';

// histogram(path, id, value): value distributions with percentiles, and options.histogram.

const test = require('node:test');
const assert = require('node:assert/strict');
const { next, fresh, Panopticon } = require('./helpers');

test('a histogram reports exact count/min/max/mean/stddev and HDR percentiles', async (t) => {
  const p = await fresh({ interval: 200 });
  t.after(() => p.stop());
  const h = p.bind('histogram', ['http'], 'latency');
  for (let v = 1; v <= 1000; v++) h(v / 10); // 0.1 .. 100 ms
  p.histogram(['http'], 'latency', [0, 250e6]); // a process.hrtime pair: 250 ms
  p.histogram(['http'], 'latency', NaN); // dropped
  p.histogram(['http'], 'latency', '5'); // dropped
  const d = await next(p, 'delivery');
  const v = d.data.master.http.latency.value;
  assert.deepEqual(Object.keys(v), ['count', 'min', 'max', 'mean', 'stddev', 'p50', 'p75', 'p90', 'p95', 'p99', 'p999', 'clamped', 'timeStamp']);
  assert.equal(v.count, 1001);
  assert.equal(v.min, 0.1);
  assert.equal(v.max, 250);
  assert.ok(Math.abs(v.mean - (50050 + 250) / 1001) < 1e-9);
  // HDR precision (3 significant figures): within 0.1% of the exact percentile.
  for (const [key, exact] of [['p50', 50.1], ['p90', 90.1], ['p99', 99.1], ['p999', 100]]) {
    assert.ok(Math.abs(v[key] - exact) <= exact / 1000 + 0.001, `${key} ${v[key]} vs ${exact}`);
  }
  assert.equal(v.clamped, 0);
  assert.equal(d.meta.dropped, 2);
});

test('options.histogram: percentiles, range (clamped and counted), reservoirs', async (t) => {
  const p = await fresh({ interval: 200, histogram: { percentiles: [10, 99.99], highest: 1000, reservoir: 'uniform' } });
  t.after(() => p.stop());
  for (let v = 1; v <= 100; v++) p.histogram([], 'h', v);
  p.histogram([], 'h', 5000); // above highest
  p.histogram([], 'h', -1); // below 0
  const v = (await next(p, 'delivery')).data.master.h.value;
  assert.deepEqual(Object.keys(v), ['count', 'min', 'max', 'mean', 'stddev', 'p10', 'p9999', 'clamped', 'timeStamp']);
  assert.equal(v.count, 102);
  assert.equal(v.clamped, 2);
  assert.equal(v.max, 1000, 'clamped to highest');
  assert.equal(v.min, 0, 'clamped to 0');
  // Below its size a uniform reservoir holds every value; quantiles interpolate as Dropwizard's
  // (position q * (n + 1) among the 102 sorted values).
  assert.ok(Math.abs(v.p10 - 9.3) < 1e-9);
  for (const [histogram, error] of [
    [5, { name: 'TypeError', message: 'options.histogram must be an object, got 5' }],
    [{ significantFigures: 6 }, { name: 'RangeError', message: 'options.histogram.significantFigures must be an integer from 1 to 5, got 6' }],
    [{ lowest: '1' }, { name: 'TypeError' }],
    [{ percentiles: [50, 101] }, { name: 'RangeError', message: 'options.histogram.percentiles must hold numbers from 0 to 100, got 101' }],
    [{ percentiles: [50, 50] }, { name: 'RangeError', message: 'options.histogram.percentiles must not repeat a percentile, got 50 twice' }],
    [{ percentiles: [50, '99'] }, { name: 'TypeError', message: "options.histogram.percentiles[1] must be a number, got '99'" }],
    [{ significantFigures: 2.5 }, { name: 'RangeError', message: 'options.histogram.significantFigures must be an integer from 1 to 5, got 2.5' }],
    [{ lowest: 10, highest: 15 }, { name: 'RangeError', message: /^options\.histogram\.highest must be a finite number from 2 x lowest to 2\^53 x lowest \(lowest is 10\), got 15$/ }],
    [{ reservoir: 'exp' }, { name: 'RangeError', message: `options.histogram.reservoir must be 'hdr', 'uniform' or 'decaying', got "exp"` }],
    [{ reservoir: 1 }, { name: 'TypeError', message: 'options.histogram.reservoir must be a string, got 1' }],
  ]) {
    assert.throws(() => new Panopticon({ histogram }), error);
  }
});

test('with persist an idle histogram is reported empty', async (t) => {
  const p = await fresh({ interval: 150, persist: true });
  t.after(() => p.stop());
  p.histogram([], 'h', 3);
  await next(p, 'delivery');
  const v = (await next(p, 'delivery')).data.master.h.value;
  assert.deepEqual([v.count, v.min, v.max, v.mean, v.stddev, v.p50], [0, null, null, null, null, null]);
});
