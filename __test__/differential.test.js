'use strict';

// Differential tests: panopticon 0.3.0 (the npm package, `require('panopticon')`) and panoptic
// (`require('..')`) get the same logger calls in the same interval, and their deliveries of that
// interval must agree: same envelope (id, name, interval), same tree (keys, leaf `type`s, value
// field names) and same values (floats within 1e-9 relative). `timeStamp` values are not compared
// (they serve to match the deliveries), and panoptic's extra `delivery.meta` is ignored.
//
// Timing. Both instances share one grid (same startTime and interval). 0.3.0 loses the first datum
// recorded after a boundary when its timer has not fired yet, and panoptic's clock cell can lag the
// wall clock by the clock thread's wake-up latency; so each interval's calls are made only once BOTH
// instances have emitted 'newInterval' for it (their `endTime` is the interval's end), and the calls
// must all be made before that end (checked afterwards). Deliveries are matched by the `timeStamp`s
// in their leaves (the end of the interval the data belongs to), never by counting or sleeping.
// When the machine is too slow for one of these conditions (an interval skipped by a stalled event
// loop, calls overrunning the interval, 0.3.0's setInterval-driven delivery drifting so that it
// merges two intervals into one delivery), the scenario is rerun with fresh instances, a few times.

const test = require('node:test');
const assert = require('node:assert/strict');
const { inspect } = require('node:util');
const Upstream = require('panopticon');
const Panoptic = require('..');

const INTERVAL = 200;
const MAX_ATTEMPTS = 4;
const REL_TOLERANCE = 1e-9;

/** A condition the machine's timing did not meet: rerun the scenario (not a failure). */
class Retry extends Error {}

// ---- a custom logger class, registered on both modules with the same name and validator -----------

/** Keeps the largest value, the number of values and their rate (per ms at scaleFactor 1). */
function PeakLog(value, timeStamp, persistObj, scaleFactor, interval) {
  this.max = value;
  this.count = 1;
  this.timeStamp = timeStamp;
  this.scaleFactor = scaleFactor;
  this.interval = interval;
  if (persistObj) {
    persistObj.on('reset', (resetTimeStamp) => this.reset(resetTimeStamp));
  }
}
PeakLog.prototype.update = function update(value, timeStamp) {
  this.max = this.max === null ? value : Math.max(this.max, value);
  this.count += 1;
  this.timeStamp = timeStamp;
};
PeakLog.prototype.reset = function reset(timeStamp) {
  this.max = null;
  this.count = 0;
  this.timeStamp = timeStamp;
};
PeakLog.prototype.toJSON = function toJSON() {
  return {
    type: 'peak',
    value: {
      max: this.max,
      count: this.count,
      rate: this.scaleFactor * this.count / this.interval,
      timeStamp: this.timeStamp,
    },
  };
};
const isNonNegative = (value) => Number.isFinite(value) && value >= 0;

for (const Panopticon of [Upstream, Panoptic]) {
  Panopticon.registerMethod('peak', PeakLog, isNonNegative);
}

// ---- running one scenario on both ---------------------------------------------------------------------

const mod = (a, b) => ((a % b) + b) % b;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves once both instances are in the interval ending at `end` (both emitted 'newInterval'). */
function bothIn(up, pan, end, interval) {
  const timeoutMs = end - Date.now() + 10 * interval + 10000;
  return new Promise((resolve, reject) => {
    const finish = (err) => {
      clearTimeout(timer);
      up.removeListener('newInterval', check);
      pan.removeListener('newInterval', check);
      if (err) reject(err);
      else resolve();
    };
    function check() {
      if (up.endTime > end || pan.endTime > end) {
        finish(new Retry(`the interval ending at ${end} was skipped (event loop stalled): endTimes ${up.endTime} / ${pan.endTime}`));
      } else if (up.endTime === end && pan.endTime === end) {
        finish();
      }
    }
    const timer = setTimeout(() => {
      finish(new Error(`timed out after ${timeoutMs} ms waiting for both instances to enter the interval ending at ${end} (endTimes ${up.endTime} / ${pan.endTime})`));
    }, timeoutMs);
    up.on('newInterval', check);
    pan.on('newInterval', check);
    check();
  });
}

/** Every `timeStamp` number anywhere in a delivery's data. */
function timeStampsOf(tree, found = new Set()) {
  if (tree !== null && typeof tree === 'object') {
    for (const [key, value] of Object.entries(tree)) {
      if (key === 'timeStamp' && typeof value === 'number') found.add(value);
      else timeStampsOf(value, found);
    }
  }
  return found;
}

/** Resolves with the deliveries (received so far, in `list`) holding data of the interval ending at `end`. */
function deliveriesOf(emitter, list, end, interval) {
  const timeoutMs = end + interval / 2 - Date.now() + 10 * interval + 10000;
  return new Promise((resolve, reject) => {
    const finish = (err, found) => {
      clearTimeout(timer);
      emitter.removeListener('delivery', check);
      if (err) reject(err);
      else resolve(found);
    };
    function check() {
      const found = list.filter((d) => timeStampsOf(d.data).has(end));
      if (found.length > 0) finish(null, found);
    }
    const timer = setTimeout(() => {
      finish(new Error(`timed out after ${timeoutMs} ms waiting for the delivery of the interval ending at ${end} (${list.length} deliveries so far)`));
    }, timeoutMs);
    emitter.on('delivery', check);
    check();
  });
}

/**
 * Constructs one instance of each library with the same options early in an interval, makes each
 * step's calls on both in consecutive intervals, and returns each step's delivery from both.
 */
async function runOnce(options, steps) {
  const { startTime, interval } = options;
  // Construct early in an interval so that 0.3.0 (which starts its delivery timer half an interval
  // before its first boundary, or at once when that time is already past) delivers about halfway
  // between two boundaries, as panoptic does: far from both ends of an interval.
  await sleep(interval - mod(Date.now() - startTime, interval) + interval * 0.05);
  if (mod(Date.now() - startTime, interval) > interval * 0.4) {
    throw new Retry('woke up too late in the interval to construct the instances');
  }
  let up;
  let pan;
  try {
    up = new Upstream(options);
    pan = new Panoptic(options);
    const received = { up: [], pan: [] };
    up.on('delivery', (d) => received.up.push(structuredClone(d)));
    pan.on('delivery', (d) => received.pan.push(structuredClone(d)));
    if (up.endTime !== pan.endTime) {
      throw new Retry(`a boundary passed between the two constructions (endTimes ${up.endTime} / ${pan.endTime})`);
    }

    const ends = [];
    let end = up.endTime;
    for (const step of steps) {
      end += interval;
      await bothIn(up, pan, end, interval);
      step.record(up);
      step.record(pan);
      if (Date.now() >= end || up.endTime !== end || pan.endTime !== end) {
        throw new Retry(`the calls of the interval ending at ${end} overran it`);
      }
      ends.push(end);
    }

    const results = [];
    for (const end of ends) {
      const [fromUp] = await deliveriesOf(up, received.up, end, interval);
      const [fromPan] = await deliveriesOf(pan, received.pan, end, interval);
      const upStamps = [...timeStampsOf(fromUp.data)];
      if (upStamps.length !== 1) {
        // 0.3.0's delivery timer drifted past a collection: it merged two intervals (first write
        // wins). A 0.3.0 timing bug, not what is compared here.
        throw new Retry(`0.3.0 merged several intervals into one delivery: timeStamps ${upStamps.join(', ')}`);
      }
      assert.deepEqual([...timeStampsOf(fromPan.data)], [end],
        `panoptic's delivery of the interval ending at ${end} holds other intervals' data`);
      results.push({ end, up: fromUp, pan: fromPan });
    }
    for (const end of ends) {
      assert.equal(received.pan.filter((d) => timeStampsOf(d.data).has(end)).length, 1,
        `panoptic delivered the interval ending at ${end} more than once`);
    }
    return { upId: up.id, panId: pan.id, results };
  } finally {
    if (up) up.stop();
    if (pan) pan.stop();
  }
}

// ---- comparing ---------------------------------------------------------------------------------------

const show = (x) => inspect(x, { depth: 4, breakLength: Infinity });

function kindOf(x) {
  if (x === null) return 'null';
  if (Array.isArray(x)) return 'array';
  return typeof x;
}

/** Deep comparison: same keys and kinds everywhere, floats within REL_TOLERANCE, timeStamps skipped. */
function compareTree(up, pan, where) {
  assert.equal(kindOf(pan), kindOf(up), `${where}: panoptic has ${kindOf(pan)} ${show(pan)}, 0.3.0 has ${kindOf(up)} ${show(up)}`);
  switch (kindOf(up)) {
    case 'number':
      if (Number.isNaN(up) || !Number.isFinite(up)) {
        assert.ok(Object.is(pan, up), `${where}: panoptic ${pan}, 0.3.0 ${up}`);
      } else {
        const diff = Math.abs(pan - up);
        assert.ok(diff <= REL_TOLERANCE * Math.max(Math.abs(up), Math.abs(pan)),
          `${where}: panoptic ${pan}, 0.3.0 ${up} (relative difference ${diff / Math.max(Math.abs(up), Math.abs(pan))})`);
      }
      break;
    case 'array':
      assert.equal(pan.length, up.length, `${where}: array lengths differ`);
      up.forEach((item, i) => compareTree(item, pan[i], `${where}[${i}]`));
      break;
    case 'object': {
      const upKeys = Object.keys(up).sort();
      assert.deepEqual(Object.keys(pan).sort(), upKeys, `${where}: keys differ`);
      for (const key of upKeys) {
        if (key !== 'timeStamp') compareTree(up[key], pan[key], `${where}.${key}`);
      }
      break;
    }
    default:
      assert.equal(pan, up, `${where}: panoptic ${show(pan)}, 0.3.0 ${show(up)}`);
  }
}

/** Dotted paths of the leaves (`{ type, value }` objects) of a data tree. */
function leafPaths(tree, prefix = []) {
  const paths = [];
  for (const [key, node] of Object.entries(tree)) {
    if (node !== null && typeof node === 'object' && typeof node.type === 'string' && 'value' in node) {
      paths.push([...prefix, key].join('.'));
    } else if (node !== null && typeof node === 'object') {
      paths.push(...leafPaths(node, [...prefix, key]));
    }
  }
  return paths.sort();
}

/**
 * Runs a scenario (retrying when the machine's timing did not allow it) and compares, for every
 * step, the two deliveries of its interval: envelope, whole tree, and the expected leaves.
 * `steps`: [{ record(panopticon), leaves: [dotted leaf paths under data.master], check?(master) }].
 */
async function differential(t, options, steps) {
  const opts = { startTime: 0, interval: INTERVAL, scaleFactor: 1, ...options };
  let run;
  for (let attempt = 1; ; attempt++) {
    try {
      run = await runOnce(opts, steps);
      break;
    } catch (err) {
      if (!(err instanceof Retry) || attempt === MAX_ATTEMPTS) throw err;
      t.diagnostic(`attempt ${attempt} rerun: ${err.message}`);
    }
  }

  run.results.forEach(({ end, up, pan }, i) => {
    const where = `step ${i} (interval ending at ${end})`;
    // The envelope.
    assert.deepEqual(Object.keys(up).sort(), ['data', 'id', 'interval', 'name'], `${where}: 0.3.0's delivery keys`);
    assert.deepEqual(Object.keys(pan).filter((k) => k !== 'meta').sort(), Object.keys(up).sort(), `${where}: delivery keys`);
    assert.equal(up.id, run.upId, `${where}: 0.3.0's delivery id`);
    assert.equal(pan.id, run.panId, `${where}: panoptic's delivery id is not its instance id`);
    assert.deepEqual(pan.name, up.name, `${where}: delivery name`);
    assert.deepEqual(up.name, opts.name, `${where}: 0.3.0's delivery name`);
    assert.equal(up.interval, opts.interval / opts.scaleFactor, `${where}: 0.3.0's delivery interval`);
    assert.equal(pan.interval, up.interval, `${where}: delivery interval`);
    // The data, in full.
    const { cluster, ...panData } = pan.data;
    compareTree(up.data, panData, `${where}: data`);
    // And not vacuously: the leaves the calls should have made.
    assert.deepEqual(Object.keys(panData), ['master'], `${where}: top-level keys`);
    // In one process the cluster view is the master's data, less the registered loggers whose
    // class has no static merge (here: all of them).
    assert.deepEqual(cluster, withoutLeaves(pan.data.master, (leaf) => !BUILT_IN.has(leaf.type)), `${where}: data.cluster`);
    assert.deepEqual(leafPaths(pan.data.master), [...steps[i].leaves].sort(), `${where}: leaves`);
    if (steps[i].check) steps[i].check(pan.data.master, opts);
  });
}

const BUILT_IN = new Set(['set', 'inc', 'sample', 'timedSample']);

/** A copy of `tree` without the leaves `drop` selects, and without the branches left empty. */
function withoutLeaves(tree, drop) {
  const out = {};
  for (const [key, node] of Object.entries(tree)) {
    if (typeof node.type === 'string' && 'value' in node) {
      if (!drop(node)) out[key] = node;
    } else {
      const branch = withoutLeaves(node, drop);
      if (Object.keys(branch).length > 0) out[key] = branch;
    }
  }
  return out;
}

// ---- fixed inputs ------------------------------------------------------------------------------------

/** Deterministic pseudo-random numbers (a 32-bit linear congruential generator) in [-500, 500). */
function numbers(count, seed) {
  const out = [];
  let x = seed >>> 0;
  for (let i = 0; i < count; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out.push(x / 4294967296 * 1000 - 500);
  }
  return out;
}
const MANY_SAMPLES = numbers(5000, 7); // more than one native batch (4096 values)
const MANY_COUNTERS = 2100; // more than one native counter page (2048 counters)

const HRTIMES = [[0, 1500000], [1, 250000000], [0, 999], [2, 0], [0, 123456789]];

// ---- the tests -------------------------------------------------------------------------------------

// panoptic's built-in methods beyond 0.3.0's, listed after 0.3.0's four and before registered ones.
const ADDED = ['gauge', 'histogram', 'rate', 'meter'];

test('statics: the same logger method names (plus panoptic\'s) and registerMethod errors', () => {
  const [upstreamBuiltIns, registered] = [Upstream.getLoggerMethodNames().slice(0, 4), Upstream.getLoggerMethodNames().slice(4)];
  assert.deepEqual(Panoptic.getLoggerMethodNames(), [...upstreamBuiltIns, ...ADDED, ...registered]);
  assert.deepEqual(Upstream.getLoggerMethodNames(), ['sample', 'timedSample', 'inc', 'set', 'peak']);
  for (const [name, cls] of [['peak', PeakLog], ['sample', PeakLog], ['stop', PeakLog]]) {
    let upError;
    assert.throws(() => Upstream.registerMethod(name, cls), (err) => { upError = err; return true; });
    assert.throws(() => Panoptic.registerMethod(name, cls), (err) => err.message === upError.message,
      `registerMethod(${JSON.stringify(name)}) should throw "${upError.message}"`);
  }
  assert.throws(() => Upstream.registerMethod('notAClass', null), /^Error: loggerClass must be a constructor function\.$/);
  assert.throws(() => Panoptic.registerMethod('notAClass', null), /loggerClass must be a constructor function\./);
  assert.deepEqual(Panoptic.getLoggerMethodNames(), [...upstreamBuiltIns, ...ADDED, ...registered]);
});

test('set: strings, numbers, objects, arrays, booleans, null', async (t) => {
  await differential(t, { name: 'set' }, [{
    record(p) {
      p.set(null, 'string', 'some text');
      p.set(null, 'emptyString', '');
      p.set(['numbers'], 'int', 42);
      p.set(['numbers'], 'negative', -1.5);
      p.set(['numbers'], 'zero', 0);
      p.set(['numbers'], 'tiny', 1e-300);
      p.set(['numbers'], 'huge', -1.7976931348623157e308);
      p.set(['numbers'], 'nan', NaN); // JSON: null
      p.set(['numbers'], 'infinity', Infinity); // JSON: null
      p.set(['objects'], 'nested', { a: { b: [1, 'two', null, { c: true }] }, d: 'e' });
      p.set(['objects'], 'array', [3, 2, 1]);
      p.set(['objects'], 'emptyObject', {});
      p.set(['objects'], 'emptyArray', []);
      p.set(['objects'], 'date', new Date(86400000)); // JSON: an ISO string
      const mutated = { n: 1 };
      p.set(['objects'], 'mutated', mutated);
      mutated.n = 2; // both serialize at collection time
      p.set(['booleans'], 'yes', true);
      p.set(['booleans'], 'no', false);
      p.set(['nothing'], 'null', null);
      p.set(['nothing'], 'undefined', undefined); // JSON: no `val` field at all
      p.set(null, 'overwritten', 'first');
      p.set(null, 'overwritten', { second: 2 });
    },
    leaves: [
      'string', 'emptyString', 'numbers.int', 'numbers.negative', 'numbers.zero', 'numbers.tiny',
      'numbers.huge', 'numbers.nan', 'numbers.infinity', 'objects.nested', 'objects.array',
      'objects.emptyObject', 'objects.emptyArray', 'objects.date', 'objects.mutated',
      'booleans.yes', 'booleans.no', 'nothing.null', 'nothing.undefined', 'overwritten',
    ],
    check(master) {
      assert.deepEqual(master.overwritten, { type: 'set', value: { val: { second: 2 }, timeStamp: master.overwritten.value.timeStamp } });
      assert.deepEqual(master.objects.mutated.value.val, { n: 2 });
      assert.equal(master.numbers.nan.value.val, null);
      assert.deepEqual(Object.keys(master.nothing.undefined.value), ['timeStamp']);
    },
  }]);
});

test('inc: with n, without n, non-finite n, 0, many counters', async (t) => {
  await differential(t, { name: 'inc' }, [{
    record(p) {
      p.inc(['inc'], 'withN', 5);
      p.inc(['inc'], 'withN', 2.5);
      p.inc(['inc'], 'withoutN');
      p.inc(['inc'], 'withoutN');
      p.inc(['inc'], 'withoutN', undefined);
      for (const n of [NaN, Infinity, -Infinity, '5', null, {}, [3]]) p.inc(['inc'], 'nonFinite', n); // 1 each
      p.inc(['inc'], 'zero', 0);
      p.inc(['inc'], 'negative', -3);
      p.inc(['inc'], 'negative', 1);
      p.inc(['inc'], 'mixed', 0);
      p.inc(['inc'], 'mixed');
      p.inc(['inc'], 'mixed', 10);
      for (let i = 0; i < MANY_COUNTERS; i++) p.inc(['many'], `c${i}`, i % 7);
    },
    leaves: [
      'inc.withN', 'inc.withoutN', 'inc.nonFinite', 'inc.zero', 'inc.negative', 'inc.mixed',
      ...Array.from({ length: MANY_COUNTERS }, (_, i) => `many.c${i}`),
    ],
    check(master, opts) {
      assert.equal(master.inc.withN.value.val, 7.5 / opts.interval);
      assert.equal(master.inc.nonFinite.value.val, 7 / opts.interval);
      assert.equal(master.inc.zero.value.val, 0);
    },
  }]);
});

test('sample: several values, one value (sigma null), non-finite values dropped', async (t) => {
  await differential(t, { name: 'sample' }, [{
    record(p) {
      for (const x of [3, -2.5, 1e6, 0.1, 0.2, 7]) p.sample(['sample'], 'several', x);
      p.sample(['sample'], 'one', 42);
      for (const x of [1, NaN, Infinity, -Infinity, '5', null, undefined, [2], 3]) p.sample(['sample'], 'withJunk', x);
      for (let i = 0; i < 3; i++) p.sample(['sample'], 'equal', 5);
      p.sample(['dropped', 'deeper'], 'onlyJunk', NaN); // no leaf, and no path objects either
      p.sample(['dropped', 'deeper'], 'onlyJunk', '7');
      for (const x of MANY_SAMPLES) p.sample(['sample'], 'many', x);
    },
    leaves: ['sample.several', 'sample.one', 'sample.withJunk', 'sample.equal', 'sample.many'],
    check(master) {
      assert.equal(master.sample.one.value.sigma, null);
      assert.equal(master.sample.withJunk.value.average, 2);
      assert.equal(master.sample.equal.value.sigma, 0);
    },
  }]);
});

test('timedSample: hrtime pairs; non-arrays dropped', async (t) => {
  await differential(t, { name: 'timedSample' }, [{
    record(p) {
      for (const dt of HRTIMES) p.timedSample(['timed'], 'several', dt);
      p.timedSample(['timed'], 'one', [0, 5000000]);
      for (const dt of [[0, 1000000], 'junk', 5, null, undefined, { 0: 1, 1: 2 }, [0, 3000000]]) {
        p.timedSample(['timed'], 'withJunk', dt);
      }
      p.timedSample(['dropped'], 'onlyJunk', 12);
      p.timedSample(['dropped'], 'onlyJunk', 'not an array');
    },
    leaves: ['timed.several', 'timed.one', 'timed.withJunk'],
    check(master) {
      assert.equal(master.timed.one.value.sigma, null);
      assert.equal(master.timed.one.value.average, 5);
      assert.equal(master.timed.withJunk.value.count, 2);
      assert.equal(master.timed.withJunk.value.total, 4);
    },
  }]);
});

test('paths: nested, numeric elements and ids, null / [] / undefined root', async (t) => {
  await differential(t, { name: 'paths' }, [{
    record(p) {
      p.set(['a', 'b', 'c', 'd', 'e'], 'deep', 1);
      p.inc(['a', 'b'], 'shallow', 2);
      p.sample(['a'], 'x', 1);
      p.set([1, 2], 3, 'numeric path and id');
      p.set(['1', '2'], '3', 'the same place with string keys'); // overwrites the leaf above
      p.set([-1], -2, 'negative numbers');
      p.inc([0], 0);
      p.inc([0], 1.5, 2);
      p.set(null, 'rootNull', 'null');
      p.set([], 'rootEmpty', '[]');
      p.set(undefined, 'rootUndefined', 'undefined');
      p.inc(null, 'rootInc');
      p.inc([], 'rootInc'); // the same leaf
      p.sample([], 7, 1);
      p.sample(null, 7, 3); // the same leaf
      p.timedSample(['mixed', 2], 'timed', [0, 1000000]);
      p.peak(['custom', 0], 'peak', 3);
    },
    leaves: [
      'a.b.c.d.e.deep', 'a.b.shallow', 'a.x', '1.2.3', '-1.-2', '0.0', '0.1.5',
      'rootNull', 'rootEmpty', 'rootUndefined', 'rootInc', '7', 'mixed.2.timed', 'custom.0.peak',
    ],
    check(master, opts) {
      assert.equal(master[1][2][3].value.val, 'the same place with string keys');
      assert.equal(master.rootInc.value.val, 2 / opts.interval);
      assert.equal(master[7].value.average, 2);
    },
  }]);
});

test('scaleFactor 1000: rates per second, times in seconds, interval in seconds', async (t) => {
  await differential(t, { name: 'hz', scaleFactor: 1000 }, [{
    record(p) {
      p.inc(['rates'], 'a');
      p.inc(['rates'], 'a');
      p.inc(['rates'], 'a');
      p.inc(['rates'], 'b', 0.5);
      for (const dt of HRTIMES) p.timedSample(['times'], 't', dt);
      p.timedSample(['times'], 'one', [0, 250000000]);
      p.sample(['s'], 'x', 10);
      p.sample(['s'], 'x', 20);
      p.peak(['custom'], 'p', 5);
      p.peak(['custom'], 'p', 6);
    },
    leaves: ['rates.a', 'rates.b', 'times.t', 'times.one', 's.x', 'custom.p'],
    check(master, opts) {
      assert.equal(master.rates.a.value.val, 3 * 1000 / opts.interval); // per second
      assert.equal(master.times.one.value.average, 0.25); // seconds
      assert.equal(master.times.one.value.scaleFactor, 1000);
      assert.equal(master.custom.p.value.rate, 2 * 1000 / opts.interval);
    },
  }]);
});

// Every kind of series in interval 0, nothing in interval 1 (persisted series without data), some
// data again in interval 2 (one value after a reset; a new series joins), nothing in interval 3.
function persistSteps() {
  const all = ['s.kept', 's.ref', 'str', 'i.n', 'i.m', 'smp.x', 'smp.one', 't.x', 't.one', 'c.p'];
  const refs = new WeakMap(); // per instance: an object given to set() once, changed later
  return [{
    record(p) {
      p.set(['s'], 'kept', { v: 1 });
      refs.set(p, { n: 1 });
      p.set(['s'], 'ref', refs.get(p));
      p.set(null, 'str', 'x');
      p.inc(['i'], 'n', 4);
      p.inc(['i'], 'm');
      for (const x of [1, 2, 3]) p.sample(['smp'], 'x', x);
      p.sample(['smp'], 'one', 5);
      p.timedSample(['t'], 'x', [0, 2000000]);
      p.timedSample(['t'], 'x', [0, 4000000]);
      p.timedSample(['t'], 'one', [1, 0]);
      p.peak(['c'], 'p', 9);
      p.peak(['c'], 'p', 3);
    },
    leaves: all,
  }, {
    record(p) {
      refs.get(p).n = 2; // no call: the kept value is serialized again at each boundary
    },
    leaves: all,
    check(master) {
      assert.deepEqual(master.s.kept.value.val, { v: 1 }); // set keeps its value
      assert.deepEqual(master.s.ref.value.val, { n: 2 });
      assert.equal(master.i.n.value.val, 0); // inc goes to 0
      assert.deepEqual({ ...master.smp.x.value, timeStamp: 0 }, { max: null, min: null, sigma: null, average: null, timeStamp: 0 });
      assert.equal(master.t.x.value.count, 0);
      assert.equal(master.t.x.value.total, 0);
      assert.equal(master.t.x.value.average, null);
      assert.equal(master.c.p.value.max, null); // the custom logger got its 'reset'
    },
  }, {
    record(p) {
      p.sample(['smp'], 'x', 10); // one value after a reset: sigma null
      p.set(['s'], 'kept', 'changed');
      p.inc(['i'], 'n');
      p.timedSample(['t'], 'x', [0, 1000000]);
      p.peak(['c'], 'p', 1);
      p.set(['late'], 'joiner', true);
    },
    leaves: [...all, 'late.joiner'],
    check(master) {
      assert.equal(master.smp.x.value.sigma, null);
      assert.equal(master.smp.x.value.average, 10);
      assert.equal(master.smp.one.value.average, null);
    },
  }, {
    record() {},
    leaves: [...all, 'late.joiner'],
    check(master) {
      assert.equal(master.s.kept.value.val, 'changed');
      assert.equal(master.late.joiner.value.val, true);
    },
  }];
}

test('persist true: persisted series without data (null states, inc 0, set keeps its value)', async (t) => {
  await differential(t, { name: 'persist', persist: true }, persistSteps());
});

test('persist true with scaleFactor 1000', async (t) => {
  await differential(t, { name: 'persist-hz', persist: true, scaleFactor: 1000 }, persistSteps());
});

test('persist false: untouched ids (and their branches) disappear', async (t) => {
  await differential(t, { name: 'no-persist', persist: false }, [{
    record(p) {
      p.set(null, 'a', 'A1');
      p.inc(['i'], 'x');
      p.sample(['s'], 'y', 1);
      p.timedSample(['t'], 'z', [0, 1]);
      p.peak(['c'], 'p', 1);
      p.set(['gone', 'soon'], 'leaf', 1);
    },
    leaves: ['a', 'i.x', 's.y', 't.z', 'c.p', 'gone.soon.leaf'],
  }, {
    record(p) {
      p.set(null, 'a', 'A2');
      p.inc(['i'], 'other');
    },
    leaves: ['a', 'i.other'],
  }, {
    record(p) {
      p.sample(['s'], 'y', 2);
      p.sample(['s'], 'y', 4);
    },
    leaves: ['s.y'],
    check(master) {
      assert.equal(master.s.y.value.average, 3);
    },
  }]);
});

test('custom logger registered with registerMethod, with a validator', async (t) => {
  await differential(t, { name: 'custom' }, [{
    record(p) {
      for (const x of [3, -1, '7', NaN, Infinity, 10, null]) p.peak(['custom'], 'p', x); // 3 and 10 pass
      p.peak(['custom'], 'zero', 0);
      p.peak(['custom', 'dropped'], 'only', -5); // rejected: no leaf, no path
      p.peak(null, 'atRoot', 2);
    },
    leaves: ['custom.p', 'custom.zero', 'atRoot'],
    check(master, opts) {
      assert.deepEqual({ ...master.custom.p.value, timeStamp: 0 }, { max: 10, count: 2, rate: 2 / opts.interval, timeStamp: 0 });
    },
  }]);
});

test('delivery envelope: id, name (any value), interval = interval / scaleFactor', async (t) => {
  await t.test('an object name, scaleFactor 1000, startTime a non-zero multiple of the interval', async (t2) => {
    await differential(t2, { name: { service: 'api', shard: 3 }, interval: 250, scaleFactor: 1000, startTime: 250 * 4000 }, [{
      record(p) {
        p.set(null, 'x', 1);
      },
      leaves: ['x'],
    }]);
  });
  await t.test('no name, scaleFactor 4', async (t2) => {
    await differential(t2, { scaleFactor: 4 }, [{
      record(p) {
        p.inc(null, 'x');
      },
      leaves: ['x'],
    }]);
  });
});

// 0.3.0 delivers JSON-parsed data (its master's data is JSON round-tripped like a worker's), so a
// statistic that overflows to Infinity is delivered as null.
test('overflowing statistics: null as in 0.3.0', async (t) => {
  await differential(t, { name: 'overflow' }, [{
    record(p) {
      p.sample(null, 'big', 1e308);
      p.sample(null, 'big', 1e308); // total overflows: 0.3.0 average null
      p.inc(null, 'huge', 1e308);
      p.inc(null, 'huge', 1e308); // count overflows: 0.3.0 rate null
    },
    leaves: ['big', 'huge'],
  }]);
});
