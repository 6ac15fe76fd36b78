'use strict';

// metrix's instruments: what a Recorder's factories return. Each call emits a NEW event object on
// the recorder (metrix reused one object per instrument, so a listener that kept events saw them
// change under it). Null objects do nothing and are shared, so they are frozen.

const { describe } = require('../args.js');

function checkRecorder(recorder) {
  if (recorder === null || typeof recorder !== 'object' || typeof recorder.emit !== 'function') {
    throw new TypeError(`recorder must be a Recorder (an EventEmitter), got ${describe(recorder)}`);
  }
}

function checkName(name) {
  if (typeof name !== 'string') throw new TypeError(`name must be a string, got ${describe(name)}`);
}

/** Tags: undefined, null or an object (not an array). */
function checkTags(tags, what = 'tags') {
  if (tags !== undefined && tags !== null && (typeof tags !== 'object' || Array.isArray(tags))) {
    throw new TypeError(`${what} must be an object, got ${describe(tags)}`);
  }
}

/** `value` if it is a finite number, `fallback` if it is undefined or null; else a TypeError/RangeError naming `what`. */
function numberOr(value, fallback, what) {
  if (Number.isFinite(value)) return value;
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'number') throw new TypeError(`${what} must be a number, got ${describe(value)}`);
  throw new RangeError(`${what} must be a finite number, got ${describe(value)}`);
}

/** The checks every instrument factory makes. */
function checkInstrument(recorder, name, initialValue, tags) {
  checkRecorder(recorder);
  checkName(name);
  numberOr(initialValue, 0, 'initialValue');
  checkTags(tags);
}

/** A histogram or gauge event: `{ name, [tags], value }` (tags only when given, as metrix). */
function event(name, tags, value) {
  return tags ? { name, tags, value } : { name, value };
}

/** `incr(n = 1)` (0 adds 0) and `decr(n = 1)` over `emit(increment)`. */
function counting(emit) {
  return {
    incr: (n) => emit(numberOr(n, 1, 'n')),
    // metrix's decr(0) subtracted 1 (`-(n || 1)`): here it subtracts 0, as incr(0) adds 0.
    decr: (n) => emit(-numberOr(n, 1, 'n')),
  };
}

/** metrix's default counter; emits 'counter' `{ name, increment, [tags] }` (metrix's key order). */
function createCounter(recorder, name, initialValue, tags) {
  checkInstrument(recorder, name, initialValue, tags);
  return counting((increment) => recorder.emit('counter', tags ? { name, increment, tags } : { name, increment }));
}

/** metrix's precise counter: also stamps each event with `timestamp` (Date.now()). */
function createPreciseCounter(recorder, name, initialValue, tags) {
  checkInstrument(recorder, name, initialValue, tags);
  return counting((increment) => {
    const e = { name, timestamp: Date.now(), increment };
    if (tags) e.tags = tags;
    recorder.emit('counter', e);
  });
}

// Timer events carry their tags at the top level: these keys would be overwritten or would
// overwrite the event's own fields (`value` is set by the default aggregator).
const TIMER_FIELDS = ['name', 'startTs', 'stopTs', 'value'];

function checkTimerTags(tags, what) {
  checkTags(tags, what);
  if (tags) {
    for (const key of TIMER_FIELDS) {
      if (Object.prototype.hasOwnProperty.call(tags, key)) {
        throw new RangeError(`${what} may not set "${key}" (a timer event's own field), got ${describe(tags)}`);
      }
    }
  }
}

/**
 * metrix's default timer: `start()` returns an id (Date.now()), `stop(id, [tags])` emits 'timer'
 * `{ name, ...tags, startTs: id, stopTs, ...stopTags }`. `withTags` false drops every tag (metrix's
 * no-tag timer).
 */
function makeTimer(recorder, name, tags, withTags) {
  checkRecorder(recorder);
  checkName(name);
  checkTimerTags(tags, 'tags');
  const base = withTags && tags ? tags : undefined;
  return {
    start: () => Date.now(),
    stop(id, stopTags) {
      if (typeof id !== 'number') throw new TypeError(`timer.stop: id must be the number start() returned, got ${describe(id)}`);
      // 0 is NullTimer's id (metrix threw for any falsy id).
      if (!Number.isFinite(id) || id === 0) throw new RangeError(`timer.stop: id must be the number start() returned, got ${describe(id)}`);
      checkTimerTags(stopTags, 'stop tags');
      const stopTs = Date.now();
      const e = withTags && stopTags
        ? { name, ...base, startTs: id, stopTs, ...stopTags }
        : { name, ...base, startTs: id, stopTs };
      recorder.emit('timer', e);
    },
  };
}

// Factories are plain functions, as metrix's are, so that `new createTimer(...)` works as there.
function createTimer(recorder, name, tags) {
  return makeTimer(recorder, name, tags, true);
}

function createNoTagTimer(recorder, name, tags) {
  return makeTimer(recorder, name, tags, false);
}

/** metrix's default histogram: `add(n)` emits 'histogram' `{ name, [tags], value }` (no value: 0). */
function createHistogram(recorder, name, tags) {
  checkRecorder(recorder);
  checkName(name);
  checkTags(tags);
  return {
    add: (n) => recorder.emit('histogram', event(name, tags, numberOr(n, 0, 'n'))),
  };
}

/**
 * The gauge factories take `(recorder, name, initialValue, tags)` as the Recorder calls them;
 * metrix's exported `gauge.createDefault(recorder, name, tags)` put tags where initialValue goes
 * (and then refused them): an object third argument with no fourth is taken as the tags.
 */
function gaugeArgs(initialValue, tags) {
  if (tags === undefined && initialValue !== null && typeof initialValue === 'object') return [undefined, initialValue];
  return [initialValue, tags];
}

/** metrix's default gauge: `update(n)` emits 'gauge' `{ name, [tags], value }` (no value: 0). */
function createGauge(recorder, name, initialValue, tags) {
  [initialValue, tags] = gaugeArgs(initialValue, tags);
  checkInstrument(recorder, name, initialValue, tags);
  return {
    update: (n) => recorder.emit('gauge', event(name, tags, numberOr(n, 0, 'n'))),
  };
}

/** metrix's precise gauge: each update also goes to the histogram `name + separator + 'histogram'`. */
function createPreciseGauge(recorder, name, initialValue, tags) {
  [initialValue, tags] = gaugeArgs(initialValue, tags);
  checkInstrument(recorder, name, initialValue, tags);
  const histogramName = `${name}${recorder.separator || '/'}histogram`;
  return {
    update(n) {
      const value = numberOr(n, 0, 'n');
      recorder.emit('gauge', event(name, tags, value));
      recorder.emit('histogram', event(histogramName, tags, value));
    },
  };
}

const noop = () => {};
const NullCounter = Object.freeze({ incr: noop, decr: noop });
const NullTimer = Object.freeze({ start: () => 0, stop: noop });
const NullHistogram = Object.freeze({ add: noop });
const NullGauge = Object.freeze({ update: noop });

module.exports = {
  checkName,
  numberOr,
  createCounter,
  createPreciseCounter,
  createTimer,
  createNoTagTimer,
  createHistogram,
  createGauge,
  createPreciseGauge,
  NullCounter,
  NullTimer,
  NullHistogram,
  NullGauge,
};
