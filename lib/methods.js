'use strict';

// The logger methods (built-in and registered) and their recorders. A recorder `record(c, s, value)`
// records `value` into series state `s` of collector `c`; the `p.inc(path, id, n)`-style methods
// call it with the state their key resolves to (lib/lookup.js), and `bind()` returns a closure
// over both (`method.bind(c, s)`). Recorders are the hot path: no string building, no allocation,
// no call into native code per record.
//
// Which interval a datum belongs to: every recorder of a distribution, counter, meter or rate
// first compares the clock cell (clockCells[c.cell], published by a native thread) with the
// interval its series state last entered (`s.cur`). They differ on the first datum of the
// series in each interval, and whenever the clock has moved on: then Collector#enter closes the
// finished interval (if any), defines the series on its first datum, and lists it as written in
// the current interval. So one comparison per record covers interval attribution, the series'
// definition and the list of series to collect. Then:
// - inc: two adds into plain fields of the state (`count`, `total`), which the collector writes
//   into the engine's counter page when the interval closes (plain fields are several times
//   cheaper to increment than typed-array slots); in a worker thread feeding its process's main
//   thread, two adds into the counter page itself (see Collector#shared);
// - meter: two adds into the counter page; the engine folds them into the meter at each
//   5-second tick of the instance's meter grid (a second clock cell) and when the interval closes;
// - sample/timedSample/histogram: the value appended to the batch the engine drains
//   (Collector#append);
// - rate: one native call per observation (a cumulative counter is observed rarely).
// - set and registered loggers: plain JS state, handed over as JSON when the interval closes
//   (they compare the clock with the collector's interval, and are listed when touched);
// - gauge: registers a function the collector calls when each interval closes.
// A series is defined in the engine on its first datum, so a dropped point creates nothing;
// except a compact series (inc, sample, timedSample, histogram without persist: lib/lookup.js),
// which is defined when its key is first resolved and has no state object: its recorder
// `recordAt(c, method, eid, value)` takes the engine id (see recordIncAt). Without persist a
// series defined and never written is not reported, and expires.

const { clockCells, PAGE_SHIFT, PAGE_MASK, SeriesKind } = require('./native');
const { describe } = require('./args');

const methods = [];
const byName = new Map();

/** `process.hrtime()` difference `[s, ns]` to ms (at scaleFactor 1), as panopticon 0.3.0 does. */
function hrtimeToMs(dt, scaleFactor) {
  return (dt[0] + dt[1] / 1e9) * 1000 / scaleFactor;
}

// ---- series states -------------------------------------------------------------------------------
// One per series and instance, made by lib/lookup.js's resolve, as small as they can be
// (series are many). `ref` is where the engine keeps the series (a counter's or meter's first
// slot across the pages, else its series id), -1 until its first datum; `cur` the interval it
// entered (NaN: none; see Collector#enter).

// A compact series (lib/lookup.js) has no state in the trie: these are its bind() handles' (and,
// without compact series, every series'), where `bare` is the id a handle's name was made from
// and `bound` the handle (see Collector#bindCompact).
function counterState(method, path, id) {
  return { method, path, id, ref: -1, cur: NaN, count: 0, total: 0, bare: id, bound: null };
}

function seriesState(method, path, id) {
  return { method, path, id, ref: -1, cur: NaN, bare: id, bound: null };
}

function jsState(method, path, id) {
  return { method, path, id, ref: -1, touched: false, value: undefined, at: 0, logger: null, fn: null };
}

// ---- recorders ------------------------------------------------------------------------------------

// What each method takes, as its warning about a value it drops says (Collector#invalid).
const FINITE = 'a finite number';
const INC_N = 'a finite number, or nothing for 1';
const HRTIME = 'a process.hrtime() difference [seconds, nanoseconds]';
const FINITE_OR_HRTIME = 'a finite number or a process.hrtime() difference';
const METER_N = 'a number >= 0, or nothing for 1';
const CUMULATIVE = 'a number (the cumulative count)';

function recordInc(c, s, n) {
  if (clockCells[c.cell] !== s.cur && !c.enter(s)) return;
  // undefined and null are "no n" (1); anything else but a finite number counts 1 too, as in
  // panopticon 0.3.0, but no longer without a trace.
  const x = Number.isFinite(n) ? n : n === undefined || n === null ? 1 : c.invalid(s, n, INC_N, 1);
  if (c.shared) {
    const page = c.pages[s.ref >> PAGE_SHIFT];
    const o = s.ref & PAGE_MASK;
    page[o] += 1;
    page[o + 1] += x;
  } else {
    s.count += 1;
    s.total += x;
  }
}

// Compact series (lib/lookup.js): `eid` is the series' engine id, defined when its key was
// resolved. Their numbers need no interval of their own: a counter's count and total wait in the
// collector's arrays (written into the counter page when the interval closes; into the page
// itself in a worker thread feeding its process, see Collector#shared), a value in the batch;
// the engine reports what holds data. So one comparison with the collector's interval suffices.

function recordIncAt(c, m, eid, n) {
  if (clockCells[c.cell] !== c.cur && !c.sync()) return;
  const x = Number.isFinite(n) ? n : n === undefined || n === null ? 1 : c.invalid(c.stateAt(m, eid), n, INC_N, 1);
  if (c.shared) {
    const ref = c.refs[eid];
    const page = c.pages[ref >> PAGE_SHIFT];
    const o = ref & PAGE_MASK;
    page[o] += 1;
    page[o + 1] += x;
  } else {
    c.counts[eid] += 1;
    c.totals[eid] += x;
  }
}

function recordSampleAt(c, m, eid, x) {
  if (!Number.isFinite(x)) return c.invalid(c.stateAt(m, eid), x, FINITE);
  if (clockCells[c.cell] !== c.cur && !c.sync()) return;
  c.append(eid, x);
}

function recordTimedSampleAt(c, m, eid, dt) {
  if (!Array.isArray(dt)) return c.invalid(c.stateAt(m, eid), dt, HRTIME);
  const x = hrtimeToMs(dt, c.scaleFactor);
  if (!Number.isFinite(x)) return c.invalid(c.stateAt(m, eid), dt, HRTIME);
  if (clockCells[c.cell] !== c.cur && !c.sync()) return;
  c.append(eid, x);
}

function recordHistogramAt(c, m, eid, v) {
  const x = typeof v === 'number' ? v : Array.isArray(v) ? hrtimeToMs(v, c.scaleFactor) : NaN;
  if (!Number.isFinite(x)) return c.invalid(c.stateAt(m, eid), v, FINITE_OR_HRTIME);
  if (clockCells[c.cell] !== c.cur && !c.sync()) return;
  c.append(eid, x);
}

function recordSample(c, s, x) {
  if (!Number.isFinite(x)) return c.invalid(s, x, FINITE);
  if (clockCells[c.cell] !== s.cur && !c.enter(s)) return;
  c.append(s.ref, x);
}

function recordTimedSample(c, s, dt) {
  if (!Array.isArray(dt)) return c.invalid(s, dt, HRTIME);
  const x = hrtimeToMs(dt, c.scaleFactor);
  // Also drops what 0.3.0 would have turned into NaN statistics (['a', 'b'], [1]).
  if (!Number.isFinite(x)) return c.invalid(s, dt, HRTIME);
  if (clockCells[c.cell] !== s.cur && !c.enter(s)) return;
  c.append(s.ref, x);
}

function recordHistogram(c, s, v) {
  // A process.hrtime() pair is a time, in ms at scaleFactor 1 (as timedSample).
  const x = typeof v === 'number' ? v : Array.isArray(v) ? hrtimeToMs(v, c.scaleFactor) : NaN;
  if (!Number.isFinite(x)) return c.invalid(s, v, FINITE_OR_HRTIME);
  if (clockCells[c.cell] !== s.cur && !c.enter(s)) return;
  c.append(s.ref, x);
}

function recordMeter(c, s, n) {
  const x = n === undefined ? 1 : n;
  if (typeof x !== 'number' || !(x >= 0 && x < Infinity)) return c.invalid(s, n, METER_N);
  if (clockCells[c.cell] !== s.cur && !c.enter(s)) return;
  if (clockCells[c.meterCell] !== c.meterTick) c.tickMeters();
  const page = c.pages[s.ref >> PAGE_SHIFT];
  const o = s.ref & PAGE_MASK;
  page[o] += 1;
  page[o + 1] += x;
}

function recordRate(c, s, cumulative) {
  if (typeof cumulative !== 'number') return c.invalid(s, cumulative, CUMULATIVE);
  if (clockCells[c.cell] !== s.cur && !c.enter(s)) return;
  if (!c.engine.observe(s.ref, cumulative, Date.now())) c.drop();
}

function recordSet(c, s, value) {
  if (clockCells[c.cell] !== c.cur && !c.sync()) return;
  s.value = value;
  // When it was written: across processes, the most recent write wins.
  s.at = Date.now();
  if (!s.touched) c.touch(s);
}

function recordGauge(c, s, fn) {
  if (fn === null) return c.removeGauge(s);
  if (typeof fn !== 'function') {
    throw new TypeError(`fn must be a function returning a number, or null to unregister, got ${describe(fn)}`);
  }
  s.fn = fn;
  c.addGauge(s);
}

function recordCustom(c, s, value) {
  const method = s.method;
  const { loggerClass: Logger, validator } = method;
  try {
    if (validator && !validator(value)) return c.drop();
  } catch (err) {
    return c.fail(err, `the validator of "${method.name}" threw`);
  }
  if (clockCells[c.cell] !== c.cur && !c.sync()) return;
  try {
    if (s.logger === null) {
      s.logger = new Logger(value, c.endTime, c.persist ? c.owner : null, c.scaleFactor, c.interval);
    } else {
      s.logger.update(value, c.endTime);
    }
  } catch (err) {
    return c.fail(err, `the logger class of "${method.name}" threw`);
  }
  if (!s.touched) c.touch(s);
}

// ---- methods ----------------------------------------------------------------------------------------
// `bind(c, s)` is written out for each method: V8 shares type feedback between the closures of
// one function literal, so one generic `(v) => record(c, s, v)` would reach every recorder
// through one polymorphic call and inline none of them.

function define(name, spec) {
  const method = { name, index: methods.length, ...spec };
  methods.push(method);
  byName.set(name, method);
  return method;
}

define('sample', {
  kind: SeriesKind.Summary,
  state: seriesState,
  record: recordSample,
  recordAt: recordSampleAt,
  bind: (c, s) => (x) => recordSample(c, s, x),
  define: (c, s) => c.defineHandle(s),
});
define('timedSample', {
  kind: SeriesKind.Summary,
  state: seriesState,
  record: recordTimedSample,
  recordAt: recordTimedSampleAt,
  bind: (c, s) => (dt) => recordTimedSample(c, s, dt),
  define: (c, s) => c.defineHandle(s),
});
define('inc', {
  kind: SeriesKind.Counter,
  state: counterState,
  record: recordInc,
  recordAt: recordIncAt,
  bind: (c, s) => (n) => recordInc(c, s, n),
  define: (c, s) => c.defineHandle(s),
});
define('set', {
  kind: SeriesKind.Set,
  state: jsState,
  record: recordSet,
  bind: (c, s) => (value) => recordSet(c, s, value),
  jsValue: (s) => s.value,
});
define('gauge', {
  kind: SeriesKind.Gauge,
  state: jsState,
  record: recordGauge,
  bind: (c, s) => (fn) => recordGauge(c, s, fn),
});
define('histogram', {
  kind: SeriesKind.Histogram,
  state: seriesState,
  record: recordHistogram,
  recordAt: recordHistogramAt,
  bind: (c, s) => (v) => recordHistogram(c, s, v),
  define: (c, s) => c.defineHandle(s),
});
define('rate', {
  kind: SeriesKind.Rate,
  state: seriesState,
  record: recordRate,
  bind: (c, s) => (cumulative) => recordRate(c, s, cumulative),
  define: (c, s) => c.defineSeries(s),
});
define('meter', {
  kind: SeriesKind.Meter,
  state: seriesState,
  record: recordMeter,
  bind: (c, s) => (n) => recordMeter(c, s, n),
  define: (c, s) => c.defineMeter(s),
});

/** Adds a method backed by a panopticon logger class (validated by the caller). */
function defineCustom(name, loggerClass, validator) {
  return define(name, {
    kind: SeriesKind.Custom,
    state: jsState,
    record: recordCustom,
    bind: (c, s) => (value) => recordCustom(c, s, value),
    loggerClass,
    validator: validator || null,
    // JSON.stringify calls the logger's toJSON(): its leaf.
    jsValue: (s) => s.logger,
  });
}

module.exports = { methods, byName, defineCustom };
