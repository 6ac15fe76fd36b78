'use strict';

// `require('panoptic/metrix')`, metrix 2.0's API: each export, instruments and their events,
// scopes, null objects, configs, composites, reports, clear*, the histograms and bad input.
// (metrix@2.0.0 itself is compared in metrix-differential.test.js.)

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { EventEmitter } = require('events');
const metrix = require('../metrix.js');

const { BucketedHistogram, StreamingHistogram } = metrix;

/** A default recorder and aggregator, and every event the recorder emits (in order). */
function setup(recorderConfig, aggregatorConfig) {
  const recorder = metrix.createRecorder(recorderConfig);
  const aggregator = metrix.createAggregator(recorder, aggregatorConfig);
  const events = [];
  for (const kind of ['counter', 'timer', 'histogram', 'gauge']) recorder.on(kind, (e) => events.push([kind, e]));
  return { recorder, aggregator, events };
}

test('module shape: metrix 2.0 exports plus the classes and null objects', () => {
  assert.deepEqual(Object.keys(metrix).sort(), [
    'Aggregator', 'BucketedHistogram', 'NullCounter', 'NullGauge', 'NullHistogram', 'NullTimer', 'Recorder',
    'StreamingHistogram', 'config', 'counter', 'createAggregator', 'createRecorder', 'gauge', 'histogram',
    'recorder', 'timer',
  ]);
  assert.deepEqual(Object.keys(metrix.config).sort(), ['DEFAULT', 'DISABLE']);
  for (const c of [metrix.config.DEFAULT, metrix.config.DISABLE]) {
    assert.deepEqual(Object.keys(c.recorder).sort(), ['counter', 'gauge', 'histogram', 'timer']);
    assert.deepEqual(Object.keys(c.aggregator).sort(), ['composites', 'counter', 'gauge', 'histogram', 'timer']);
  }
  assert.deepEqual(Object.keys(metrix.counter).sort(), ['createDefault', 'createDisable', 'createPrecise']);
  assert.deepEqual(Object.keys(metrix.timer).sort(), ['createDefault', 'createDisable', 'createNoTags']);
  assert.deepEqual(Object.keys(metrix.gauge).sort(), ['createDefault', 'createDisable', 'createPrecise']);
  assert.deepEqual(Object.keys(metrix.histogram).sort(), ['createBucketHistogram', 'createStreamingHistogram']);
  assert.ok(metrix.recorder.DISABLE instanceof metrix.Recorder);
  assert.ok(metrix.createRecorder() instanceof EventEmitter);
  assert.ok(metrix.createAggregator(metrix.createRecorder()) instanceof metrix.Aggregator);
  assert.ok(metrix.histogram.createBucketHistogram() instanceof BucketedHistogram);
  assert.ok(metrix.histogram.createStreamingHistogram({ seed: 1 }) instanceof StreamingHistogram);
});

test('counters: incr(n = 1), 0 adds 0, decr, initial value, events', () => {
  const { recorder, aggregator, events } = setup();
  const c = recorder.counter('requests');
  c.incr();
  c.incr(0);
  c.incr(5);
  c.incr(null);
  c.decr();
  c.decr(2);
  c.decr(0); // metrix subtracted 1 here
  recorder.counter('started', 3, { kind: 'x' });
  assert.deepEqual(aggregator.report().counters, { requests: 1 + 0 + 5 + 1 - 1 - 2 - 0, started: 3 });
  assert.deepEqual(events.map(([, e]) => e.increment), [1, 0, 5, 1, -1, -2, -0, 3]);
  assert.deepEqual(events[7], ['counter', { name: 'started', increment: 3, tags: { kind: 'x' } }]);
  assert.deepEqual(Object.keys(events[0][1]), ['name', 'increment'], 'no tags key without tags');
  // A new object per event: a kept event does not change.
  assert.notEqual(events[0][1], events[1][1]);
  assert.equal(events[0][1].increment, 1);
  // decr works detached from its counter.
  const { decr } = c;
  decr(4);
  assert.equal(aggregator.report().counters.requests, 0);
});

test('precise counters stamp each event with Date.now()', () => {
  const { recorder, aggregator, events } = setup();
  const c = metrix.counter.createPrecise(recorder, 'p', 0, { a: 'b' });
  const before = Date.now();
  c.incr(2);
  c.decr();
  const after = Date.now();
  assert.equal(aggregator.report().counters.p, 1);
  for (const [kind, e] of events) {
    assert.equal(kind, 'counter');
    assert.ok(e.timestamp >= before && e.timestamp <= after, `${e.timestamp}`);
    assert.deepEqual(e.tags, { a: 'b' });
  }
});

test('timers: start() is Date.now(), stop(id, tags) emits name, tags, startTs, stopTs; durations go to a histogram', () => {
  const { recorder, aggregator, events } = setup();
  const t = recorder.timer('latency', { route: '/a' });
  const before = Date.now();
  const id = t.start();
  assert.ok(id >= before && id <= Date.now());
  t.stop(id - 40);
  t.stop(id - 10, { status: '200' });
  const [[kind, e1], [, e2]] = events;
  assert.equal(kind, 'timer');
  assert.deepEqual(Object.keys(e1), ['name', 'route', 'startTs', 'stopTs', 'value']);
  assert.equal(e1.name, 'latency');
  assert.equal(e1.route, '/a');
  assert.equal(e1.startTs, id - 40);
  assert.ok(e1.stopTs >= id);
  assert.equal(e1.value, e1.stopTs - e1.startTs, 'the default aggregator sets value');
  assert.equal(e2.status, '200');
  assert.equal(e2.route, '/a');
  const h = aggregator.report().histograms.latency;
  assert.equal(h.min, Math.min(e1.value, e2.value));
  assert.equal(h.max, Math.max(e1.value, e2.value));
  assert.deepEqual(Object.keys(h), ['min', 'max', 'p50', 'p90', 'p99', 'p99.9']);

  assert.throws(() => t.stop(), { name: 'TypeError', message: /timer\.stop: id must be the number start\(\) returned, got undefined/ });
  assert.throws(() => t.stop(0), RangeError, "NullTimer's id");
  assert.throws(() => t.stop('12'), TypeError);
  assert.throws(() => t.stop(id, { startTs: 1 }), { name: 'RangeError', message: /may not set "startTs"/ });
  assert.throws(() => recorder.timer('x', { name: 'y' }), { name: 'RangeError', message: /may not set "name"/ });
  assert.throws(() => t.stop(id, 'tags'), TypeError);
  assert.equal(events.length, 2, 'refused stops emit nothing');

  const noTags = metrix.timer.createNoTags(recorder, 'bare', { route: '/b' });
  noTags.stop(noTags.start(), { status: '500' });
  assert.deepEqual(Object.keys(events[2][1]), ['name', 'startTs', 'stopTs', 'value']);
});

test('histograms and gauges: add/update(n = 0), events with tags, report keys', () => {
  const { recorder, aggregator, events } = setup();
  const h = recorder.histogram('size', { t: '1' });
  for (let i = 1; i <= 100; i++) h.add(i);
  h.add();
  const g = recorder.gauge('temp', 7);
  g.update(9);
  g.update();
  recorder.gauge('zero', 0); // a zero initial value emits nothing (metrix)
  assert.deepEqual(events[0], ['histogram', { name: 'size', tags: { t: '1' }, value: 1 }]);
  assert.deepEqual(events.filter(([k]) => k === 'gauge').map(([, e]) => e), [
    { name: 'temp', value: 7 }, { name: 'temp', value: 9 }, { name: 'temp', value: 0 },
  ]);
  assert.deepEqual(aggregator.report(), {
    counters: {},
    gauges: { temp: 0 },
    histograms: {
      // metrix@2.0.0's numbers for 1..100 and 0 with the default aggregation (max 1 h, error 1 %).
      size: { min: 0, max: 100, p50: 50.99442240945399, p90: 88.64369937758146, p99: 100.07239898766613, 'p99.9': 100.07239898766613 },
    },
  });
});

test('precise gauges also feed the histogram name/histogram; gauge factories take metrix\'s (recorder, name, tags)', () => {
  const { recorder, aggregator, events } = setup({
    gauge: (rec, name, value, tags) => metrix.gauge.createPrecise(rec, name, value, tags),
  });
  const g = recorder.gauge('queue', 4, { q: 'a' });
  g.update(6);
  assert.deepEqual(events.slice(0, 2), [
    ['gauge', { name: 'queue', tags: { q: 'a' }, value: 4 }],
    ['histogram', { name: 'queue/histogram', tags: { q: 'a' }, value: 4 }],
  ]);
  const r = aggregator.report();
  assert.equal(r.gauges.queue, 6);
  assert.deepEqual([r.histograms['queue/histogram'].min, r.histograms['queue/histogram'].max], [4, 6]);
  // metrix's exported createDefault(recorder, name, tags): the third argument is the tags.
  const d = metrix.gauge.createDefault(recorder, 'g3', { x: 'y' });
  d.update(1);
  assert.deepEqual(events.at(-1), ['gauge', { name: 'g3', tags: { x: 'y' }, value: 1 }]);
});

test('scopes prefix names with scope + "/", nest, and share the recorder', () => {
  const { recorder, aggregator, events } = setup();
  const s = recorder.scope('http').scope('api');
  assert.deepEqual(Object.keys(s).sort(), ['counter', 'gauge', 'histogram', 'on', 'scope', 'separator', 'timer']);
  assert.equal(s.separator, '/');
  s.counter('hits').incr();
  s.histogram('size').add(3);
  s.gauge('open', 2);
  const t = s.timer('latency');
  t.stop(t.start() - 5);
  const seen = [];
  assert.equal(s.on('counter', (e) => seen.push(e.name)), recorder);
  s.counter('more', 1);
  assert.deepEqual(seen, ['http/api/more']);
  assert.deepEqual(events.map(([, e]) => e.name), ['http/api/hits', 'http/api/size', 'http/api/open', 'http/api/latency', 'http/api/more']);
  const r = aggregator.report();
  assert.deepEqual(Object.keys(r.histograms).sort(), ['http/api/latency', 'http/api/size']);
  // A custom separator.
  const dots = metrix.createRecorder({ separator: '.' });
  const names = [];
  dots.on('counter', (e) => names.push(e.name));
  dots.scope('a').scope('b').counter('c').incr();
  assert.deepEqual(names, ['a.b.c']);
  assert.throws(() => s.counter(), { name: 'TypeError', message: 'name must be a string, got undefined' });
  assert.throws(() => recorder.scope(5), { name: 'TypeError', message: 'scope must be a string, got 5' });
  assert.throws(() => s.scope(null), TypeError);
});

test('every factory works with new, as on metrix 2.0 (where they are plain functions)', () => {
  const { recorder, aggregator, events } = setup();
  const timer = new metrix.timer.createDefault(recorder, 'request_ms', { route: '/' });
  timer.stop(timer.start() - 5);
  const bare = new metrix.timer.createNoTags(recorder, 'bare_ms', { route: '/' });
  bare.stop(bare.start() - 5);
  new metrix.counter.createDefault(recorder, 'c', 0, { k: 'v' }).incr(2);
  new metrix.counter.createPrecise(recorder, 'c').incr();
  new metrix.gauge.createDefault(recorder, 'g').update(5);
  new metrix.gauge.createPrecise(recorder, 'pg').update(7);
  const { DEFAULT, DISABLE } = metrix.config;
  new DEFAULT.recorder.counter(recorder, 'dc', 0).incr();
  new DEFAULT.recorder.histogram(recorder, 'dh').add(4);
  new DEFAULT.recorder.gauge(recorder, 'dg', 0).update(6);
  const dt = new DEFAULT.recorder.timer(recorder, 'dt');
  dt.stop(dt.start() - 5);
  const scoped = recorder.scope('api');
  new scoped.counter('hits').incr();
  new (new scoped.scope('v1')).histogram('size').add(3);
  new scoped.gauge('open').update(1);
  const st = new scoped.timer('t');
  st.stop(st.start() - 5);
  assert.equal(new scoped.on('counter', () => {}), recorder);

  const report = aggregator.report();
  assert.deepEqual(report.counters, { 'c': 3, 'dc': 1, 'api/hits': 1 });
  assert.deepEqual(report.gauges, { 'g': 5, 'pg': 7, 'dg': 6, 'api/open': 1 });
  assert.deepEqual(Object.keys(report.histograms).sort(), ['api/t', 'api/v1/size', 'bare_ms', 'dh', 'dt', 'pg/histogram', 'request_ms']);
  const timerEvents = events.filter(([kind]) => kind === 'timer').map(([, e]) => e);
  assert.equal(timerEvents.find((e) => e.name === 'request_ms').route, '/');
  assert.equal(timerEvents.find((e) => e.name === 'bare_ms').route, undefined, 'NoTags drops the tags');

  // The rest return what a call returns: the null objects themselves, instances of the classes.
  assert.equal(new metrix.counter.createDisable(), metrix.NullCounter);
  assert.equal(new metrix.timer.createDisable(), metrix.NullTimer);
  assert.equal(new metrix.gauge.createDisable(), metrix.NullGauge);
  assert.equal(new DISABLE.recorder.counter(recorder, 'x', 0), metrix.NullCounter);
  assert.equal(new DISABLE.recorder.timer(recorder, 'x'), metrix.NullTimer);
  assert.equal(new DISABLE.recorder.histogram(recorder, 'x'), metrix.NullHistogram);
  assert.equal(new DISABLE.recorder.gauge(recorder, 'x', 0), metrix.NullGauge);
  assert.ok(new metrix.createRecorder() instanceof metrix.Recorder);
  assert.ok(new metrix.createAggregator(recorder) instanceof metrix.Aggregator);
  assert.ok(new metrix.histogram.createBucketHistogram({ max: 100 }) instanceof BucketedHistogram);
  assert.ok(new metrix.histogram.createStreamingHistogram({ seed: 1 }) instanceof StreamingHistogram);
  // With new too, bad arguments are the same errors.
  assert.throws(() => new metrix.timer.createDefault(recorder, 5), { name: 'TypeError', message: 'name must be a string, got 5' });
});

test('null objects and DISABLE: nothing is emitted or aggregated', () => {
  assert.equal(metrix.NullTimer.start(), 0);
  for (const n of [metrix.NullCounter, metrix.NullTimer, metrix.NullHistogram, metrix.NullGauge]) {
    assert.ok(Object.isFrozen(n));
  }
  assert.equal(metrix.counter.createDisable(), metrix.NullCounter);
  assert.equal(metrix.timer.createDisable(), metrix.NullTimer);
  assert.equal(metrix.gauge.createDisable(), metrix.NullGauge);

  const recorder = metrix.recorder.DISABLE;
  const aggregator = metrix.createAggregator(recorder);
  let emitted = 0;
  for (const kind of ['counter', 'timer', 'histogram', 'gauge']) recorder.on(kind, () => emitted++);
  recorder.counter('c', 5).incr();
  recorder.counter('c').decr(2);
  const t = recorder.timer('t');
  t.stop(t.start());
  recorder.histogram('h').add(4);
  recorder.gauge('g', 3).update(4); // metrix's DISABLE recorded gauges
  assert.equal(emitted, 0);
  assert.deepEqual(aggregator.report(), { counters: {}, gauges: {}, histograms: {} });

  // DISABLE's aggregator on a live recorder ignores every event.
  const { recorder: live } = setup();
  const off = metrix.createAggregator(live, metrix.config.DISABLE.aggregator);
  live.counter('c').incr();
  live.histogram('h').add(1);
  live.gauge('g').update(1);
  assert.deepEqual(off.report(), { counters: {}, gauges: {}, histograms: {} });

  // A config that disables some timers, as metrix's README shows.
  const only = setup({ timer: (rec, name, tags) => (name === 'kept' ? metrix.timer.createDefault(rec, name, tags) : metrix.NullTimer) });
  for (const name of ['kept', 'dropped']) {
    const timer = only.recorder.timer(name);
    timer.stop(timer.start() || 1);
  }
  assert.deepEqual(Object.keys(only.aggregator.report().histograms), ['kept']);
});

test('aggregator config: custom handlers, StreamingHistogram per name, composites', () => {
  const { recorder, aggregator } = setup(undefined, {
    histogram(event, histograms) {
      if (!histograms[event.name]) histograms[event.name] = new StreamingHistogram({ quantiles: [0.5], seed: 7 });
      histograms[event.name].add(event.value);
    },
    composites: [
      (counters) => ['connections/current', counters['connections/add'] - counters['connections/remove']],
      (counters, histograms) => ['size/spread', histograms.size.max - histograms.size.min, 'echo', counters['connections/current']],
      () => null,
    ],
  });
  recorder.counter('connections/add').incr(10);
  recorder.counter('connections/remove').incr(4);
  const h = recorder.histogram('size');
  [5, 1, 9].forEach((v) => h.add(v));
  const r = aggregator.report();
  assert.deepEqual(r.counters, { 'connections/add': 10, 'connections/remove': 4, 'connections/current': 6, 'size/spread': 8, echo: 6 });
  assert.deepEqual(Object.keys(r.histograms.size), ['min', 'max', 'p50']);
  // Composites feed the report, not the aggregator: the next report computes them again.
  aggregator.clearCounters();
  recorder.counter('connections/add').incr(1);
  assert.deepEqual(aggregator.report().counters['connections/current'], NaN);

  // Timers go through DEFAULT's histogram handler (metrix: config.aggregator.histogram of the default config).
  const timed = setup(undefined, { histogram: () => assert.fail('not called for timers') });
  const t = timed.recorder.timer('t');
  t.stop(t.start() - 1);
  assert.deepEqual(Object.keys(timed.aggregator.report().histograms), ['t']);

  const bad = setup(undefined, { composites: [() => 'x'] });
  assert.throws(() => bad.aggregator.report(), { name: 'TypeError', message: /composites\[0\] must return an array/ });
});

test('report() returns copies; clear() keeps gauges; clearCounters/Histograms/Gauges', () => {
  const { recorder, aggregator } = setup();
  const c = recorder.counter('c');
  const h = recorder.histogram('h');
  const g = recorder.gauge('g');
  c.incr();
  h.add(2);
  g.update(3);
  const r1 = aggregator.report();
  c.incr();
  h.add(5);
  assert.equal(r1.counters.c, 1, 'a report does not follow later events');
  assert.equal(r1.histograms.h.max, 2);
  r1.counters.c = 100;
  assert.equal(aggregator.report().counters.c, 2, 'nor does the aggregator follow the report');

  aggregator.clear();
  assert.deepEqual(aggregator.report(), { counters: {}, gauges: { g: 3 }, histograms: {} });
  c.incr();
  h.add(1);
  aggregator.clearHistograms();
  assert.deepEqual(aggregator.report(), { counters: { c: 1 }, gauges: { g: 3 }, histograms: {} });
  aggregator.clearCounters();
  assert.deepEqual(aggregator.report().counters, {});
  aggregator.clearGauges();
  assert.deepEqual(aggregator.report(), { counters: {}, gauges: {}, histograms: {} });
});

test('metric names that are Object.prototype keys are metrics like any other', () => {
  const { recorder, aggregator } = setup();
  for (const name of ['constructor', '__proto__', 'toString']) {
    recorder.counter(name).incr(2);
    recorder.histogram(name).add(3);
    recorder.gauge(name).update(4);
  }
  const r = aggregator.report();
  for (const part of [r.counters, r.gauges, r.histograms]) {
    assert.equal(Object.getPrototypeOf(part), Object.prototype);
    assert.deepEqual(Object.keys(part).sort(), ['__proto__', 'constructor', 'toString']);
  }
  assert.equal(r.counters.constructor, 2);
  assert.equal(Object.getOwnPropertyDescriptor(r.counters, '__proto__').value, 2);
  assert.equal(r.histograms.toString.max, 3);
});

test('BucketedHistogram: metrix\'s buckets and midpoints, overflow, empty {}, clear, options', () => {
  const h = new BucketedHistogram();
  assert.deepEqual(h.snapshot(), {});
  for (let i = 1; i <= 100; i++) h.add(i);
  assert.deepEqual(h.snapshot(), { min: 1, max: 100, p50: 49.630805225616214, p90: 91.89133206152215, p99: 99.68288962746152 });
  assert.notEqual(h.snapshot(), h.snapshot(), 'a new object per snapshot');
  h.clear();
  assert.deepEqual(h.snapshot(), {});

  // More values than one batch (256), and values above max.
  const o = new BucketedHistogram({ max: 100, quantiles: [0.999, 0.5, 0.9] });
  for (let i = 1; i <= 1000; i++) o.add(i % 200 || 200);
  const s = o.snapshot();
  assert.deepEqual(Object.keys(s), ['min', 'max', 'overflow', 'p50', 'p90', 'p99.9'], 'quantiles in numeric order');
  assert.deepEqual([s.min, s.max, s.overflow], [1, 200, 500]);
  assert.equal(s.p90, 99.68288962746152, 'quantiles among overflowed values: the highest non-empty bucket');

  // Negative values: metrix reported max 5e-324.
  const n = new BucketedHistogram({ quantiles: [0.5] });
  n.add(-5);
  n.add(-3);
  assert.deepEqual(n.snapshot(), { min: -5, max: -3, p50: 1 });
  // metrix's `opts.x || default`: 0 is the default.
  const z = new BucketedHistogram({ max: 0, error: 0 });
  z.add(3600000);
  assert.equal(z.snapshot().overflow, undefined);
});

test('StreamingHistogram: Frugal-2U, seeded, empty {}, clear', () => {
  const ints = Array.from({ length: 3000 }, (_, i) => (i * 7919) % 1009);
  const run = (seed) => {
    const h = new StreamingHistogram({ quantiles: [0.5, 0.9, 0.99], seed });
    ints.forEach((x) => h.add(x));
    return h;
  };
  // The core's golden values (metrix@2.0.0 with Math.random replaced by SplitMix64 seed 42).
  assert.deepEqual(run(42).snapshot(), { min: 0, max: 1008, p50: 493, p90: 922, p99: 993 });
  assert.deepEqual(run(42n).snapshot(), run(42).snapshot());
  const unseeded = new StreamingHistogram();
  ints.forEach((x) => unseeded.add(x));
  const u = unseeded.snapshot();
  assert.ok(u.p50 > 300 && u.p50 < 700, `p50 ${u.p50}`);
  const h = run(1);
  assert.notEqual(h.snapshot(), h.snapshot(), 'a new object per snapshot (metrix returned its own)');
  h.clear();
  assert.deepEqual(h.snapshot(), {});
  h.add(7);
  assert.deepEqual(h.snapshot(), { min: 7, max: 7, p50: 7, p90: 7, p99: 7 });
  assert.deepEqual(new StreamingHistogram({ seed: 2n ** 64n - 1n }).snapshot(), {});
});

test('bad input: TypeError/RangeError naming the argument and the value', () => {
  const { recorder } = setup();
  const cases = [
    [() => new BucketedHistogram(5), TypeError, 'BucketedHistogram options must be an object, got 5'],
    [() => new BucketedHistogram({ max: '10' }), TypeError, "opts.max must be a number, got '10'"],
    [() => new BucketedHistogram({ max: -1 }), RangeError, 'opts.max must be a positive finite number, got -1'],
    [() => new BucketedHistogram({ error: NaN }), RangeError, 'opts.error must be a positive finite number, got NaN'],
    [() => new BucketedHistogram({ error: Infinity }), RangeError, 'opts.error must be a positive finite number, got Infinity'],
    [() => new BucketedHistogram({ max: 1e300, error: 1e-9 }), RangeError, /^opts: max and error make more than 65536 buckets/],
    [() => new BucketedHistogram({ max: 1e308, error: 1e307 }), RangeError, /^opts: error must be a small positive finite number, got 1e307/],
    [() => new BucketedHistogram({ quantiles: 0.5 }), TypeError, 'opts.quantiles must be an array of numbers, got 0.5'],
    [() => new BucketedHistogram({ quantiles: [0.5, '0.9'] }), TypeError, "opts.quantiles[1] must be a number, got '0.9'"],
    [() => new BucketedHistogram({ quantiles: [1.5] }), RangeError, 'opts.quantiles[0] must be in [0, 1], got 1.5'],
    [() => new BucketedHistogram({ quantiles: new Array(257).fill(0.5) }), RangeError, /at most 256/],
    [() => new StreamingHistogram({ quantiles: [NaN] }), RangeError, 'opts.quantiles[0] must be in [0, 1], got NaN'],
    [() => new StreamingHistogram({ seed: -1 }), RangeError, /opts\.seed must be an integer/],
    [() => new StreamingHistogram({ seed: 1.5 }), RangeError, /got 1\.5/],
    [() => new StreamingHistogram({ seed: 2n ** 64n }), RangeError, /opts\.seed must be a BigInt in \[0, 2\^64\)/],
    [() => new StreamingHistogram({ seed: '1' }), TypeError, "opts.seed must be a number or a BigInt, got '1'"],
    [() => new BucketedHistogram().add('3'), TypeError, "x must be a number, got '3'"],
    [() => new BucketedHistogram().add(NaN), RangeError, 'x must be a finite number, got NaN'],
    [() => new StreamingHistogram().add(-Infinity), RangeError, 'x must be a finite number, got -Infinity'],
    [() => recorder.counter('c').incr('2'), TypeError, "n must be a number, got '2'"],
    [() => recorder.counter('c').decr(NaN), RangeError, 'n must be a finite number, got NaN'],
    [() => recorder.counter('c', 'x'), TypeError, "initialValue must be a number, got 'x'"],
    [() => recorder.counter(42), TypeError, 'name must be a string, got 42'],
    [() => recorder.counter('c', 0, 'tags'), TypeError, "tags must be an object, got 'tags'"],
    [() => recorder.histogram('h').add({}), TypeError, 'n must be a number, got {}'],
    [() => recorder.histogram('h').add(Infinity), RangeError, 'n must be a finite number, got Infinity'],
    [() => recorder.gauge('g').update('1'), TypeError, "n must be a number, got '1'"],
    [() => recorder.gauge('g', Infinity), RangeError, 'initialValue must be a finite number, got Infinity'],
    [() => recorder.timer('t', [1]), TypeError, 'tags must be an object, got [ 1 ]'],
    [() => metrix.createRecorder(5), TypeError, 'config must be an object, got 5'],
    [() => metrix.createRecorder({ timer: 'x' }), TypeError, "config.timer must be a function, got 'x'"],
    [() => metrix.createRecorder({ separator: 1 }), TypeError, 'config.separator must be a string, got 1'],
    [() => metrix.createAggregator(), TypeError, 'recorder must be a Recorder or a scope of one, got undefined'],
    [() => metrix.createAggregator(recorder, { gauge: 1 }), TypeError, 'config.gauge must be a function, got 1'],
    [() => metrix.createAggregator(recorder, { composites: () => [] }), TypeError, /config\.composites must be an array of functions/],
    [() => metrix.createAggregator(recorder, { composites: [null] }), TypeError, 'config.composites[0] must be a function, got null'],
    [() => metrix.counter.createDefault({}, 'c'), TypeError, 'recorder must be a Recorder (an EventEmitter), got {}'],
  ];
  for (const [fn, type, message] of cases) assert.throws(fn, { name: type.name, message }, String(fn));
});
