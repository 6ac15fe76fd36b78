'use strict';

// The logger methods (built-in and registered), and the recorder functions ("handles") that
// `bind()` returns and the `p.inc(path, id, n)`-style methods call. Handles are the hot path: no
// string building, no allocation, no call into native code per record. Each one first compares
// the clock cell with the interval its instance holds (see Collector#sync), then writes:
// - inc: two adds into a counter page the native engine reads when the interval closes;
// - meter: the same, and the engine folds them into the meter at each 5-second tick of the
//   instance's meter grid (a second clock cell) and when the interval closes;
// - sample/timedSample/histogram: a (series id, value) pair into the batch the engine drains;
// - set and registered loggers: plain JS state, handed over as JSON when the interval closes;
// - gauge: registers a function the collector calls when each interval closes;
// - rate: one native call per observation (a cumulative counter is observed rarely).
// A series is defined in the engine on its first datum, so a dropped point creates nothing.

const { clockCells, KIND_COUNTER, KIND_SUMMARY, KIND_SET, KIND_CUSTOM, KIND_GAUGE, KIND_HISTOGRAM, KIND_RATE, KIND_METER } = require('./native');
const { describe } = require('./args');

const methods = [];
const byName = new Map();

/** `process.hrtime()` difference `[s, ns]` to ms (at scaleFactor 1), as panopticon 0.3.0 does. */
function hrtimeToMs(dt, scaleFactor) {
  return (dt[0] + dt[1] / 1e9) * 1000 / scaleFactor;
}

function counterHandle(c, series) {
  const cell = c.cell;
  let page = null;
  let o = 0;
  return function inc(n) {
    if (clockCells[cell] !== c.cur && !c.sync()) return;
    if (page === null) ({ page, offset: o } = c.defineCounter(series));
    page[o] += 1;
    page[o + 1] += Number.isFinite(n) ? n : 1;
  };
}

function sampleHandle(c, series) {
  const cell = c.cell;
  let sid = -1;
  return function sample(x) {
    if (!Number.isFinite(x)) return c.drop();
    if (clockCells[cell] !== c.cur && !c.sync()) return;
    if (sid < 0) sid = c.define(series);
    c.append(sid, x);
  };
}

function timedSampleHandle(c, series) {
  const cell = c.cell;
  let sid = -1;
  return function timedSample(dt) {
    if (!Array.isArray(dt)) return c.drop();
    const x = hrtimeToMs(dt, c.scaleFactor);
    // Also drops what 0.3.0 would have turned into NaN statistics (['a', 'b'], [1]).
    if (!Number.isFinite(x)) return c.drop();
    if (clockCells[cell] !== c.cur && !c.sync()) return;
    if (sid < 0) sid = c.define(series);
    c.append(sid, x);
  };
}

function histogramHandle(c, series) {
  const cell = c.cell;
  let sid = -1;
  return function histogram(v) {
    // A process.hrtime() pair is a time, in ms at scaleFactor 1 (as timedSample).
    const x = Array.isArray(v) ? hrtimeToMs(v, c.scaleFactor) : v;
    if (typeof x !== 'number' || !Number.isFinite(x)) return c.drop();
    if (clockCells[cell] !== c.cur && !c.sync()) return;
    if (sid < 0) sid = c.define(series);
    c.append(sid, x);
  };
}

function meterHandle(c, series) {
  const cell = c.cell;
  let page = null;
  let o = 0;
  return function meter(n) {
    const x = n === undefined ? 1 : n;
    if (typeof x !== 'number' || !(x >= 0 && x < Infinity)) return c.drop();
    if (clockCells[cell] !== c.cur && !c.sync()) return;
    if (page === null) ({ page, offset: o } = c.defineMeter(series));
    if (clockCells[c.meterCell] !== c.meterTick) c.tickMeters();
    page[o] += 1;
    page[o + 1] += x;
  };
}

function rateHandle(c, series) {
  const cell = c.cell;
  let sid = -1;
  return function rate(cumulative) {
    if (typeof cumulative !== 'number') return c.drop();
    if (clockCells[cell] !== c.cur && !c.sync()) return;
    if (sid < 0) sid = c.define(series);
    if (!c.engine.observe(sid, cumulative, Date.now())) c.drop();
  };
}

function setHandle(c, series) {
  const cell = c.cell;
  return function set(value) {
    if (clockCells[cell] !== c.cur && !c.sync()) return;
    series.value = value;
    // When it was written: across processes, the most recent write wins.
    series.at = Date.now();
    if (!series.touched) c.touch(series);
  };
}

function gaugeHandle(c, series) {
  return function gauge(fn) {
    if (fn === null) return c.removeGauge(series);
    if (typeof fn !== 'function') {
      throw new TypeError(`fn must be a function returning a number, or null to unregister, got ${describe(fn)}`);
    }
    series.fn = fn;
    c.addGauge(series);
  };
}

function customHandle(c, series, method) {
  const cell = c.cell;
  const { loggerClass: Logger, validator } = method;
  return function custom(value) {
    try {
      if (validator && !validator(value)) return c.drop();
    } catch (err) {
      return c.fail(err, `the validator of "${method.name}" threw`);
    }
    if (clockCells[cell] !== c.cur && !c.sync()) return;
    try {
      if (series.logger === null) {
        series.logger = new Logger(value, c.endTime, c.persist ? c.owner : null, c.scaleFactor, c.interval);
      } else {
        series.logger.update(value, c.endTime);
      }
    } catch (err) {
      return c.fail(err, `the logger class of "${method.name}" threw`);
    }
    if (!series.touched) c.touch(series);
  };
}

function define(name, spec) {
  const method = { name, index: methods.length, ...spec };
  methods.push(method);
  byName.set(name, method);
  return method;
}

define('sample', { makeHandle: sampleHandle, kind: KIND_SUMMARY });
define('timedSample', { makeHandle: timedSampleHandle, kind: KIND_SUMMARY });
define('inc', { makeHandle: counterHandle, kind: KIND_COUNTER });
define('set', { makeHandle: setHandle, kind: KIND_SET, jsValue: (series) => series.value });
define('gauge', { makeHandle: gaugeHandle, kind: KIND_GAUGE });
define('histogram', { makeHandle: histogramHandle, kind: KIND_HISTOGRAM });
define('rate', { makeHandle: rateHandle, kind: KIND_RATE });
define('meter', { makeHandle: meterHandle, kind: KIND_METER });

/** Adds a method backed by a panopticon logger class (validated by the caller). */
function defineCustom(name, loggerClass, validator) {
  return define(name, {
    makeHandle: customHandle,
    kind: KIND_CUSTOM,
    loggerClass,
    validator: validator || null,
    // JSON.stringify calls the logger's toJSON(): its leaf.
    jsValue: (series) => series.logger,
  });
}

module.exports = { methods, byName, defineCustom };
