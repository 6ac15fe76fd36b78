'use strict';

// Differential tests: the same programs run on metrix@2.0.0 (npm `metrix`) and on
// `panoptic/metrix`, and their reports, snapshots and events must be equal, numbers bit for bit
// (assert.deepStrictEqual). Where panoptic fixes a metrix bug, the difference is asserted
// explicitly (both sides' actual outputs), so a change on either side shows up here.
//
// Determinism. Timer durations come from Date.now(): both sides run with Date.now replaced by the
// same scripted clock. StreamingHistogram flips coins: metrix calls Math.random, panoptic draws
// from SplitMix64 with a seed (crates/panoptic-core/src/frugal.rs); the metrix side runs with
// Math.random replaced by SplitMix64 from the same seed (below), so both see the same draws.
// That needs the quantiles in increasing order without duplicates: metrix draws in the order
// given, panoptic in sorted order (unsorted lists are compared as a documented difference).

const { test } = require('node:test');
const assert = require('node:assert/strict');
const upstream = require('metrix');
const UpBucketed = require('metrix/lib/stats/bucketedhistogram.js');
const UpStreaming = require('metrix/lib/stats/streaminghistogram.js');
const panoptic = require('../metrix.js');

/** SplitMix64 (as the core's `frugal::SplitMix64`): numbers in [0, 1) from the top 53 bits. */
function splitmix(seed) {
  let s = BigInt.asUintN(64, BigInt(seed));
  return () => {
    s = BigInt.asUintN(64, s + 0x9E3779B97F4A7C15n);
    let z = s;
    z = BigInt.asUintN(64, (z ^ (z >> 30n)) * 0xBF58476D1CE4E5B9n);
    z = BigInt.asUintN(64, (z ^ (z >> 27n)) * 0x94D049BB133111EBn);
    z ^= z >> 31n;
    return Number(z >> 11n) / 2 ** 53;
  };
}

/** Runs `fn` with Math.random / Date.now replaced, restoring them even if it throws. */
function withGlobals({ random, now }, fn) {
  const saved = [Math.random, Date.now];
  if (random) Math.random = random;
  if (now) Date.now = now;
  try {
    return fn();
  } finally {
    [Math.random, Date.now] = saved;
  }
}

/** A scripted clock: each call returns the next time (1.7e12 + the running sum of `steps`). */
function clock(steps) {
  let t = 1.7e12;
  let i = 0;
  return () => (t += steps[i++ % steps.length]);
}

/** Runs `program(module)` on both and returns [metrix's result, panoptic's result]. */
function both(program, globals = {}) {
  const run = (mod) => withGlobals({ now: globals.now && globals.now() }, () => program(mod));
  return [run(upstream), run(panoptic)];
}

/** Deterministic pseudo-random data (an LCG), `n` values from `f(u)` with u in [0, 1). */
function data(n, seed, f) {
  let s = seed;
  return Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return f(s / 2147483648);
  });
}

const DATA_SETS = {
  'ints 1..1000': Array.from({ length: 1000 }, (_, i) => i + 1),
  'uniform ms': data(5000, 1, (u) => u * 2000),
  'long tail': data(5000, 2, (u) => Math.round(1 / (1 - u * 0.999))),
  'exponential': data(3000, 3, (u) => -Math.log(1 - u) * 150),
  'small floats': data(500, 4, (u) => u * 3),
  'overflowing': data(2000, 5, (u) => u * 20000),
  'one value': [42],
};

const OPTIONS = [
  undefined,
  { max: 10000, error: 0.01, quantiles: [0.5, 0.9, 0.99, 0.999] },
  { max: 5000, error: 0.05, quantiles: [0.1, 0.25, 0.5, 0.75, 0.9] },
  { max: 60 * 1000 * 1000, error: 1 / 1000, quantiles: [0.5, 0.9, 0.95, 0.99, 0.999, 0.9999] },
  { max: 1000, error: 0.002, quantiles: [0.99, 0.5, 0.9] }, // unsorted: string order = numeric order here
];

test('BucketedHistogram: same snapshots as metrix, bit for bit, for every data set and option set', () => {
  let compared = 0;
  for (const [name, values] of Object.entries(DATA_SETS)) {
    for (const opts of OPTIONS) {
      // metrix sorts opts.quantiles in place: each side gets its own copy.
      const copy = () => opts && { ...opts, quantiles: [...opts.quantiles] };
      const up = new UpBucketed(copy());
      const pan = new panoptic.BucketedHistogram(copy());
      values.forEach((v) => { up.add(v); pan.add(v); });
      assert.deepStrictEqual(pan.snapshot(), up.snapshot(), `${name}, ${JSON.stringify(opts)}`);
      up.clear();
      pan.clear();
      assert.deepStrictEqual(pan.snapshot(), up.snapshot(), 'cleared');
      // (Not all above max: metrix reports 1 for every quantile then, a difference tested below.)
      [0.5, ...values.slice(0, 6)].forEach((v) => { up.add(v); pan.add(v); });
      assert.deepStrictEqual(pan.snapshot(), up.snapshot(), `${name} after clear`);
      compared++;
    }
  }
  assert.equal(compared, Object.keys(DATA_SETS).length * OPTIONS.length);
});

test('StreamingHistogram: same snapshots as metrix with Math.random = SplitMix64(seed)', () => {
  const cases = [
    [42, [0.5, 0.9, 0.99]],
    [7, [0.1, 0.5, 0.75, 0.9, 0.99, 0.999]],
    [2 ** 40 + 3, [0.25, 0.5]],
    [0, [0.9]],
  ];
  for (const [name, values] of Object.entries(DATA_SETS)) {
    for (const [seed, quantiles] of cases) {
      const up = withGlobals({ random: splitmix(seed) }, () => {
        const h = new UpStreaming({ quantiles });
        values.forEach((v) => h.add(v));
        return h.snapshot();
      });
      const pan = new panoptic.StreamingHistogram({ quantiles, seed });
      values.forEach((v) => pan.add(v));
      assert.deepStrictEqual(pan.snapshot(), { ...up }, `${name}, seed ${seed}, ${quantiles}`);
    }
  }
});

/** A program through the default Recorder and Aggregator: counters, gauges, histograms, timers, scopes, tags. */
function defaultProgram(mod) {
  const recorder = mod.createRecorder();
  const aggregator = mod.createAggregator(recorder);
  const events = [];
  for (const kind of ['counter', 'timer', 'histogram', 'gauge']) {
    // A copy: metrix reuses its event objects.
    recorder.on(kind, (e) => events.push([kind, { ...e }]));
  }
  // Copied when made: metrix hands out its live objects, which later events would change.
  const reports = [];
  const snap = () => reports.push(JSON.parse(JSON.stringify(aggregator.report())));
  const http = recorder.scope('http');
  const hits = http.counter('hits', 0, { route: '/a' });
  hits.incr();
  hits.incr(0);
  hits.incr(7);
  hits.incr(null);
  hits.decr();
  hits.decr(3);
  http.scope('api').counter('calls', 5).incr(2);
  recorder.gauge('open', 3).update(5);
  recorder.gauge('idle').update();
  const size = http.histogram('size', { kind: 'body' });
  DATA_SETS['long tail'].forEach((v) => size.add(v));
  size.add();
  const latency = recorder.timer('latency', { region: 'eu' });
  for (let i = 0; i < 300; i++) latency.stop(latency.start(), i % 3 ? undefined : { attempt: String(i) });
  snap();
  aggregator.clear();
  snap();
  hits.incr(2);
  size.add(12);
  snap();
  aggregator.clearHistograms();
  snap();
  aggregator.clearCounters();
  aggregator.clearGauges();
  snap();
  return { reports, events };
}

test('default Recorder/Aggregator program: same reports and events as metrix', () => {
  // Timer ids and stop times from one scripted clock per side: durations 0..97 ms.
  const [up, pan] = both(defaultProgram, { now: () => clock([3, 11, 1, 0, 29, 53, 97]) });
  assert.deepStrictEqual(pan.reports, up.reports);
  assert.deepStrictEqual(pan.events, up.events);
  assert.ok(up.reports[0].histograms.latency.max > 0 && up.events.length > 5000, 'the program exercised timers and histograms');
});

test('custom configs: disabled timers, a precise histogram, composites, NoTags timers, precise gauges', () => {
  const program = (mod) => {
    const recorder = mod.createRecorder({
      timer: (rec, name, tags) => (name.endsWith('_ms')
        ? mod.timer.createDefault(rec, name, tags)
        : name.startsWith('bare') ? mod.timer.createNoTags(rec, name, tags) : mod.timer.createDisable()),
      gauge: (rec, name, value, tags) => mod.gauge.createPrecise(rec, name, value, tags),
    });
    const aggregator = mod.createAggregator(recorder, {
      histogram(event, histograms) {
        if (!histograms[event.name]) {
          histograms[event.name] = mod.histogram.createBucketHistogram({ max: 60000, error: 0.02, quantiles: [0.5, 0.9, 0.99, 0.999] });
        }
        histograms[event.name].add(event.value);
      },
      composites: [
        (counters) => ['connections/current', counters['connections/add'] - counters['connections/remove']],
        (counters, histograms) => ['queue/p50x2', 2 * histograms['queue/histogram'].p50],
      ],
    });
    const add = recorder.counter('connections/add');
    const remove = recorder.counter('connections/remove');
    for (let i = 0; i < 50; i++) add.incr(i % 4);
    for (let i = 0; i < 20; i++) remove.incr();
    const queue = recorder.gauge('queue', 1);
    DATA_SETS['uniform ms'].slice(0, 400).forEach((v) => queue.update(v));
    for (const name of ['request_ms', 'ignored', 'bare_ms', 'bare']) {
      const t = recorder.timer(name, { t: name });
      const id = t.start();
      t.stop(id || 1);
    }
    return aggregator.report();
  };
  const [up, pan] = both(program, { now: () => clock([5, 8, 13]) });
  assert.deepStrictEqual(JSON.parse(JSON.stringify(pan)), JSON.parse(JSON.stringify(up)));
  assert.deepStrictEqual(Object.keys(up.histograms).sort(), ['bare', 'bare_ms', 'queue/histogram', 'request_ms']);
});

// Every factory metrix exports (and a scope's) is a plain function there, so `new factory(...)` works
// and returns what the call returns; metrix users write it (`new metrix.timer.createDefault(...)`).
// Arguments for each, on a module and a recorder of that module:
const FACTORIES = {
  'createRecorder': () => [],
  'createAggregator': (rec) => [rec],
  'counter.createDefault': (rec) => [rec, 'c', 0, { k: 'v' }],
  'counter.createDisable': () => [],
  'counter.createPrecise': (rec) => [rec, 'c', 0, { k: 'v' }],
  'histogram.createBucketHistogram': () => [{ max: 100 }],
  'histogram.createStreamingHistogram': () => [{ quantiles: [0.5] }],
  'timer.createDefault': (rec) => [rec, 't', { k: 'v' }],
  'timer.createDisable': () => [],
  'timer.createNoTags': (rec) => [rec, 't', { k: 'v' }],
  'gauge.createDefault': (rec) => [rec, 'g'],
  'gauge.createPrecise': (rec) => [rec, 'g'],
  'gauge.createDisable': () => [],
  'config.DEFAULT.recorder.timer': (rec) => [rec, 't'],
  'config.DEFAULT.recorder.counter': (rec) => [rec, 'c', 0],
  'config.DEFAULT.recorder.histogram': (rec) => [rec, 'h'],
  'config.DEFAULT.recorder.gauge': (rec) => [rec, 'g', 0],
  'config.DISABLE.recorder.timer': (rec) => [rec, 't'],
  'config.DISABLE.recorder.counter': (rec) => [rec, 'c', 0],
  'config.DISABLE.recorder.histogram': (rec) => [rec, 'h'],
  // A scope's members (recorder.scope('s').<name>).
  'scope:scope': () => ['inner'],
  'scope:timer': () => ['t'],
  'scope:counter': () => ['c'],
  'scope:gauge': () => ['g'],
  'scope:histogram': () => ['h'],
  'scope:on': () => ['counter', () => {}],
};

/** The function at `path` in `mod` (`scope:<name>`: a member of a scope of `rec`). */
function factoryAt(mod, rec, path) {
  if (path.startsWith('scope:')) return rec.scope('s')[path.slice('scope:'.length)];
  return path.split('.').reduce((o, k) => o[k], mod);
}

/** Paths of the functions in plain objects under `value` (an aggregator config's handlers are not factories). */
function functionPaths(value, prefix = '') {
  return Object.entries(value).flatMap(([key, v]) => {
    const path = prefix + key;
    if (typeof v === 'function') return [path];
    const plain = v !== null && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype;
    return plain && key !== 'aggregator' ? functionPaths(v, `${path}.`) : [];
  });
}

test('every factory metrix allows with new works with new, and returns what the call returns', () => {
  const scopeMembers = (rec) => Object.keys(rec.scope('s')).filter((k) => typeof rec.scope('s')[k] === 'function');
  const upRecorder = upstream.createRecorder();
  assert.deepEqual(
    Object.keys(FACTORIES).sort(),
    [...functionPaths(upstream), ...scopeMembers(upRecorder).map((k) => `scope:${k}`)].sort(),
    'every function metrix exports is listed',
  );
  for (const [path, args] of Object.entries(FACTORIES)) {
    for (const [side, mod] of [['metrix', upstream], ['panoptic', panoptic]]) {
      const rec = mod.createRecorder();
      const Factory = factoryAt(mod, rec, path);
      const called = Factory(...args(rec));
      let constructed;
      assert.doesNotThrow(() => {
        constructed = new Factory(...args(rec));
      }, `${side}: new ${path}(...)`);
      assert.equal(typeof constructed, 'object', `${side}: new ${path}(...)`);
      assert.equal(Object.getPrototypeOf(constructed), Object.getPrototypeOf(called), `${side}: new ${path}(...) is what ${path}(...) is`);
      assert.deepEqual(Object.keys(constructed).sort(), Object.keys(called).sort(), `${side}: new ${path}(...)`);
      if (Object.isFrozen(called)) assert.equal(constructed, called, `${side}: ${path}: the same null object`);
    }
  }
});

// ---- deliberate differences (metrix bugs fixed), each asserted on both sides ----------------------------

test('difference: decr(0) subtracts 0 (metrix: 1), as incr(0) adds 0', () => {
  const [up, pan] = both((mod) => {
    const recorder = mod.createRecorder();
    const aggregator = mod.createAggregator(recorder);
    const c = recorder.counter('c');
    c.incr(5);
    c.decr(0);
    return aggregator.report().counters.c;
  });
  assert.deepStrictEqual([up, pan], [4, 5]);
});

test('difference: DISABLE drops gauges too (metrix recorded them)', () => {
  const [up, pan] = both((mod) => {
    const aggregator = mod.createAggregator(mod.recorder.DISABLE);
    mod.recorder.DISABLE.gauge('g', 3);
    mod.recorder.DISABLE.counter('c').incr();
    return aggregator.report();
  });
  assert.deepStrictEqual(up, { counters: {}, gauges: { g: 3 }, histograms: {} });
  assert.deepStrictEqual(pan, { counters: {}, gauges: {}, histograms: {} });
});

test('difference: negative values report their max (metrix: 5e-324)', () => {
  for (const [Up, Pan] of [[UpBucketed, panoptic.BucketedHistogram], [UpStreaming, panoptic.StreamingHistogram]]) {
    const up = new Up({ quantiles: [0.5] });
    const pan = new Pan({ quantiles: [0.5], seed: 1 });
    [-5, -3, -4].forEach((v) => { up.add(v); pan.add(v); });
    assert.equal(up.snapshot().max, Number.MIN_VALUE);
    assert.equal(pan.snapshot().max, -3);
    assert.equal(pan.snapshot().min, up.snapshot().min);
  }
});

test('difference: bucketed quantiles sorted as numbers (metrix: as strings), q = 0, all values overflowed', () => {
  const values = Array.from({ length: 100 }, (_, i) => i + 1);
  const make = (H, quantiles) => {
    const h = new H({ quantiles: [...quantiles] });
    values.forEach((v) => h.add(v));
    return h.snapshot();
  };
  // metrix's string sort puts 1e-7 after 0.5, so the walk answers 0.5 at 1e-7's bucket.
  const up = make(UpBucketed, [1e-7, 0.5]);
  const pan = make(panoptic.BucketedHistogram, [1e-7, 0.5]);
  assert.deepStrictEqual([up.p0, up.p50], [1, 1]);
  assert.deepStrictEqual([pan.p0, pan.p50], [1, 49.630805225616214]);
  // q = 0: the lowest non-empty bucket (metrix: the last limit, 3.6 million).
  assert.equal(make(UpBucketed, [0]).p0, 3622741.555918942);
  assert.equal(make(panoptic.BucketedHistogram, [0]).p0, 1);
  // Every value above max: the top of the range (metrix: limits[0] = 1).
  const over = (H) => {
    const h = new H({ max: 10, error: 0.1, quantiles: [0.5] });
    [50, 60].forEach((v) => h.add(v));
    return h.snapshot();
  };
  assert.deepStrictEqual(over(UpBucketed), { min: 50, max: 60, overflow: 2, p50: 1 });
  assert.deepStrictEqual(over(panoptic.BucketedHistogram), { min: 50, max: 60, overflow: 2, p50: 12.915904 });
  // metrix sorted the caller's array in place.
  const qs = [0.9, 0.5];
  new UpBucketed({ quantiles: qs });
  assert.deepStrictEqual(qs, [0.5, 0.9]);
  const mine = [0.9, 0.5];
  new panoptic.BucketedHistogram({ quantiles: mine });
  assert.deepStrictEqual(mine, [0.9, 0.5]);
});

test('difference: StreamingHistogram sorts its quantiles (metrix drew coins in the given order)', () => {
  const values = DATA_SETS['uniform ms'];
  const up = withGlobals({ random: splitmix(9) }, () => {
    const h = new UpStreaming({ quantiles: [0.9, 0.5] });
    values.forEach((v) => h.add(v));
    return { ...h.snapshot() };
  });
  const pan = new panoptic.StreamingHistogram({ quantiles: [0.9, 0.5], seed: 9 });
  values.forEach((v) => pan.add(v));
  const sorted = withGlobals({ random: splitmix(9) }, () => {
    const h = new UpStreaming({ quantiles: [0.5, 0.9] });
    values.forEach((v) => h.add(v));
    return { ...h.snapshot() };
  });
  assert.deepStrictEqual(Object.keys(up), ['min', 'max', 'p90', 'p50']);
  assert.deepStrictEqual(pan.snapshot(), sorted, 'panoptic = metrix given the sorted list');
  // The median moves without a coin, so only p90's draws shift: its estimate differs.
  assert.equal(pan.snapshot().p50, up.p50);
});

test('difference: reports, snapshots and events are new objects (metrix handed out live ones)', () => {
  const [up, pan] = both((mod) => {
    const recorder = mod.createRecorder();
    const aggregator = mod.createAggregator(recorder);
    const events = [];
    recorder.on('counter', (e) => events.push(e));
    const c = recorder.counter('c');
    c.incr(1);
    const report = aggregator.report();
    c.incr(2);
    return { reported: report.counters.c, first: events[0].increment, same: events[0] === events[1] };
  });
  assert.deepStrictEqual(up, { reported: 3, first: 2, same: true });
  assert.deepStrictEqual(pan, { reported: 1, first: 1, same: false });

  const h = new UpStreaming();
  h.add(1);
  assert.equal(h.snapshot(), h.snapshot());
  const p = new panoptic.StreamingHistogram({ seed: 1 });
  p.add(1);
  assert.notEqual(p.snapshot(), p.snapshot());
});

test('difference: composites add to the report, not to the aggregator\'s counters', () => {
  const [up, pan] = both((mod) => {
    const recorder = mod.createRecorder();
    let runs = 0;
    const aggregator = mod.createAggregator(recorder, { composites: [(counters) => ['runs', (counters.runs || 0) + ++runs]] });
    recorder.counter('c').incr();
    return [aggregator.report().counters.runs, aggregator.report().counters.runs];
  });
  // metrix fed its first result back in: 1, then 1 + 2.
  assert.deepStrictEqual(up, [1, 3]);
  assert.deepStrictEqual(pan, [1, 2]);
});

test('difference: bad input throws TypeError/RangeError where metrix threw AssertionError or went on', () => {
  const [up, pan] = both((mod) => {
    const recorder = mod.createRecorder();
    const aggregator = mod.createAggregator(recorder);
    const outcome = (fn) => {
      try {
        fn();
        return 'ok';
      } catch (e) {
        return e.name;
      }
    };
    return {
      name: outcome(() => recorder.counter(5)),
      stop: outcome(() => recorder.timer('t').stop()),
      nanIncr: outcome(() => recorder.counter('n').incr(NaN)),
      stringIncr: outcome(() => recorder.counter('s').incr('2')),
      nanValue: outcome(() => new (mod === upstream ? UpBucketed : mod.BucketedHistogram)().add(NaN)),
      counters: aggregator.report().counters,
    };
  });
  // metrix counted incr(NaN) as 1 and concatenated '2' onto a string.
  assert.deepStrictEqual(up, { name: 'AssertionError', stop: 'Error', nanIncr: 'ok', stringIncr: 'ok', nanValue: 'AssertionError', counters: { n: 1, s: '02' } });
  assert.deepStrictEqual(pan, { name: 'TypeError', stop: 'TypeError', nanIncr: 'RangeError', stringIncr: 'TypeError', nanValue: 'RangeError', counters: {} });
});
