'use strict';

// Argument checks and option defaults: the one place that decides what input is accepted.

const { inspect } = require('util');
const { unknownKeys, toProcess, INVALID_OPTION } = require('./warnings');
const { checkHistogram } = require('./addon');

/** A short, readable rendering of a value for error messages. */
function describe(value) {
  const text = inspect(value, { depth: 1, breakLength: Infinity, maxArrayLength: 5, maxStringLength: 40 });
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** Warns that option `name`'s value `value` is replaced by `fallback` (as panopticon 0.3.0 did). */
function replaced(name, value, rule, fallback) {
  toProcess(INVALID_OPTION, `options.${name} must be ${rule}, got ${describe(value)}; the default ${fallback} is used instead`);
  return fallback;
}

/**
 * `options[name]` when it is a finite number > 0; else the default, as in panopticon 0.3.0, with
 * a warning when something was given.
 */
function positiveOr(options, name, fallback) {
  const value = options[name];
  if (Number.isFinite(value) && value > 0) return value;
  if (value === undefined || value === null) return fallback;
  return replaced(name, value, 'a finite number > 0', fallback);
}

/**
 * A number, a numeric string or a Date; anything else gives 0 (panopticon 0.3.0's default), with
 * a warning when something was given.
 */
function startTimeOf(given) {
  let value = given;
  if (typeof value === 'string' && value.trim() !== '') {
    value = Number(value);
  } else if (value instanceof Date) {
    value = value.getTime();
  }
  if (Number.isFinite(value)) return value;
  if (given === undefined || given === null) return 0;
  return replaced('startTime', given, 'epoch ms: a finite number, a numeric string or a Date', 0);
}

// The option names each options object takes (a key not listed is warned about and ignored).
const OPTIONS = ['interval', 'scaleFactor', 'persist', 'transformer', 'name', 'startTime', 'histogram', 'deliveryDelay', 'filter', 'influx', 'remoteWrite', 'otlp', 'keepAlive', 'maxSeries', 'maxTagSets', 'maxClusterSeries', 'expireAfter', 'runtime'];

// The limits' defaults (docs/api.md, "Limits"). maxSeries: every test and benchmark fits (the
// collection benchmark holds a million series in one instance), and a counter series costs
// about 600 B, so a process stops growing below a gigabyte whatever its keys do. maxTagSets:
// OpenTelemetry's default cardinality limit per instrument. maxClusterSeries (the master's):
// twice a process's, so a master merges one full worker beside its own series; the master's
// registry and store take about 1.2 KB per series (the collection benchmark), so it stays below
// about 2.5 GB whatever its workers send.
const LIMITS = { maxSeries: 1000000, maxTagSets: 2000, maxClusterSeries: 2000000 };

/** `options[name]`, a whole number from 1 (the default when not given). */
function limit(options, name) {
  const value = options[name];
  if (value === undefined) return LIMITS[name];
  if (typeof value !== 'number') throw new TypeError(`options.${name} must be a number, got ${describe(value)}`);
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`options.${name} must be a whole number from 1, got ${describe(value)}`);
  return value;
}

// expireAfter's default without persist (docs/api.md, "Expiry"): ten intervals (100 s at the
// default interval) keep a series that is recorded now and then (a job every minute, a rare
// error) with its engine state, cache entries and place on the master, while a process whose
// keys churn holds at most about ten intervals' worth of them.
const EXPIRE_AFTER = 10;

/**
 * `options.expireAfter`: intervals without data after which a series is freed; a whole number
 * from 1, or Infinity for never. Default: 10, or never with `persist` (a persisted series is
 * reported in every interval by design).
 */
function expireAfter(options) {
  const value = options.expireAfter;
  if (value === undefined) return options.persist ? Infinity : EXPIRE_AFTER;
  if (typeof value !== 'number') throw new TypeError(`options.expireAfter must be a number of intervals, got ${describe(value)}`);
  if (value !== Infinity && !(Number.isInteger(value) && value >= 1 && value < 2 ** 32)) {
    throw new RangeError(`options.expireAfter must be a whole number of intervals from 1 (below 2^32), or Infinity for never, got ${describe(value)}`);
  }
  return value;
}

const HISTOGRAM_OPTIONS = ['significantFigures', 'lowest', 'highest', 'percentiles', 'reservoir'];

/**
 * The histogram defaults in the unit of the values: a microsecond to an hour, in ms at scale
 * factor 1 and in seconds at 1000 (times are recorded in ms / scaleFactor), so that the
 * resolution of a time does not depend on the unit it is counted in.
 */
function histogramDefaults(scaleFactor) {
  return {
    significantFigures: 3,
    lowest: 0.001 / scaleFactor,
    highest: 3600000 / scaleFactor,
    percentiles: [50, 75, 90, 95, 99, 99.9],
    reservoir: 'hdr',
  };
}

/**
 * `options.histogram` (docs/api.md, "histogram"): every field optional; errors name the field.
 * Types are checked here (TypeError), ranges by the core (RangeError), one check each.
 */
function parseHistogram(histogram, scaleFactor) {
  const out = histogramDefaults(scaleFactor);
  if (histogram === undefined || histogram === null) return out;
  if (typeof histogram !== 'object' || Array.isArray(histogram)) {
    throw new TypeError(`options.histogram must be an object, got ${describe(histogram)}`);
  }
  unknownKeys(histogram, HISTOGRAM_OPTIONS, 'options.histogram');
  for (const name of ['significantFigures', 'lowest', 'highest']) {
    const value = histogram[name];
    if (value === undefined) continue;
    if (typeof value !== 'number') throw new TypeError(`options.histogram.${name} must be a number, got ${describe(value)}`);
    out[name] = value;
  }
  const { percentiles, reservoir } = histogram;
  if (percentiles !== undefined) {
    if (!Array.isArray(percentiles)) throw new TypeError(`options.histogram.percentiles must be an array of numbers, got ${describe(percentiles)}`);
    percentiles.forEach((p, i) => {
      if (typeof p !== 'number') throw new TypeError(`options.histogram.percentiles[${i}] must be a number, got ${describe(p)}`);
    });
    out.percentiles = [...percentiles];
  }
  if (reservoir !== undefined) {
    if (typeof reservoir !== 'string') throw new TypeError(`options.histogram.reservoir must be a string, got ${describe(reservoir)}`);
    out.reservoir = reservoir;
  }
  const problem = checkHistogram(out);
  if (problem) throw new RangeError(`options.${problem}`);
  return out;
}

/**
 * Options as panopticon 0.3.0 reads them: invalid numbers fall back to their defaults (with a
 * warning); a transformer that is neither a function nor null/undefined is a TypeError. Unknown
 * keys are warned about and ignored.
 */
function parseOptions(options) {
  if (options === undefined || options === null) {
    options = {};
  } else if (typeof options !== 'object') {
    throw new TypeError(`options must be an object, got ${describe(options)}`);
  }
  unknownKeys(options, OPTIONS, 'options');
  const { transformer, deliveryDelay, keepAlive } = options;
  if (transformer !== undefined && transformer !== null && typeof transformer !== 'function') {
    throw new TypeError(`options.transformer must be a function, got ${describe(transformer)}`);
  }
  const interval = positiveOr(options, 'interval', 10000);
  const scaleFactor = positiveOr(options, 'scaleFactor', 1);
  if (keepAlive !== undefined && typeof keepAlive !== 'boolean') {
    throw new TypeError(`options.keepAlive must be a boolean, got ${describe(keepAlive)}`);
  }
  if (deliveryDelay !== undefined && typeof deliveryDelay !== 'number') {
    throw new TypeError(`options.deliveryDelay must be a number of ms, got ${describe(deliveryDelay)}`);
  }
  if (deliveryDelay !== undefined && !(Number.isFinite(deliveryDelay) && deliveryDelay >= 0)) {
    throw new RangeError(`options.deliveryDelay must be a finite number >= 0, got ${describe(deliveryDelay)}`);
  }
  return {
    interval,
    deliveryDelay: deliveryDelay === undefined ? interval / 2 : deliveryDelay,
    scaleFactor,
    persist: !!options.persist,
    transformer: transformer || null,
    name: options.name,
    startTime: startTimeOf(options.startTime),
    histogram: parseHistogram(options.histogram, scaleFactor),
    keepAlive: keepAlive === true,
    maxSeries: limit(options, 'maxSeries'),
    maxTagSets: limit(options, 'maxTagSets'),
    maxClusterSeries: limit(options, 'maxClusterSeries'),
    expireAfter: expireAfter(options),
  };
}

function isKey(value) {
  return typeof value === 'string' || Number.isFinite(value);
}

/** Checks a path; returns it as strings (the keys of the delivery tree). null and undefined mean the root. */
function checkPath(path) {
  if (path !== null && path !== undefined && !Array.isArray(path)) {
    throw new TypeError(`path must be an array of strings or finite numbers, or null for the root, got ${describe(path)}`);
  }
  const keys = [];
  if (path) {
    for (let i = 0; i < path.length; i++) {
      if (!isKey(path[i])) {
        throw new TypeError(`path[${i}] must be a string or a finite number, got ${describe(path[i])}`);
      }
      keys.push(String(path[i]));
    }
  }
  return keys;
}

function checkId(id) {
  if (!isKey(id)) {
    throw new TypeError(`id must be a string or a finite number, got ${describe(id)}`);
  }
}

/** Checks a logger call's path and id; returns the path as strings. */
function checkKey(path, id) {
  const keys = checkPath(path);
  checkId(id);
  return keys;
}

// Tag keys become Prometheus label names: the same syntax, and `__` is reserved there.
const TAG_KEY = /^(?!__)[a-zA-Z_][a-zA-Z0-9_]*$/;

/** A tag value escaped as in a Prometheus label value. */
function escapeTag(value) {
  return value.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`));
}

/**
 * The id of a tagged series, as the delivery tree names it: `id{key="value",...}`, keys sorted,
 * values escaped as in Prometheus. `id` itself when `tags` is undefined or empty.
 */
function taggedId(id, tags) {
  if (tags === undefined) return id;
  if (tags === null || typeof tags !== 'object' || Array.isArray(tags)) {
    throw new TypeError(`tags must be an object whose values are strings, got ${describe(tags)}`);
  }
  const keys = Object.keys(tags);
  if (keys.length === 0) return id;
  checkId(id);
  keys.sort();
  let out = `${id}{`;
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i];
    const value = tags[key];
    if (!TAG_KEY.test(key)) {
      throw new RangeError(`tag key ${JSON.stringify(key)} must be a label name ([a-zA-Z_][a-zA-Z0-9_]*, not starting with "__")`);
    }
    if (typeof value !== 'string') {
      throw new TypeError(`tags.${key} must be a string, got ${describe(value)}`);
    }
    out += `${i === 0 ? '' : ','}${key}="${escapeTag(value)}"`;
  }
  return `${out}}`;
}

module.exports = { describe, parseOptions, checkPath, checkKey, taggedId };
