'use strict';

// Argument checks and option defaults: the one place that decides what input is accepted.

const { inspect } = require('util');

/** A short, readable rendering of a value for error messages. */
function describe(value) {
  const text = inspect(value, { depth: 1, breakLength: Infinity, maxArrayLength: 5, maxStringLength: 40 });
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function positiveOr(value, fallback) {
  return Number.isFinite(value) && value > 0 ? value : fallback;
}

/** A number, a numeric string or a Date; anything else gives 0 (panopticon 0.3.0's default). */
function startTimeOf(value) {
  if (typeof value === 'string' && value.trim() !== '') {
    value = Number(value);
  } else if (value instanceof Date) {
    value = value.getTime();
  }
  return Number.isFinite(value) ? value : 0;
}

/**
 * Options as panopticon 0.3.0 reads them: invalid numbers fall back silently to their defaults;
 * a transformer that is neither a function nor null/undefined is a TypeError.
 */
function parseOptions(options) {
  if (options === undefined || options === null) {
    options = {};
  } else if (typeof options !== 'object') {
    throw new TypeError(`options must be an object, got ${describe(options)}`);
  }
  const { transformer, deliveryDelay } = options;
  if (transformer !== undefined && transformer !== null && typeof transformer !== 'function') {
    throw new TypeError(`options.transformer must be a function, got ${describe(transformer)}`);
  }
  const interval = positiveOr(options.interval, 10000);
  if (deliveryDelay !== undefined && typeof deliveryDelay !== 'number') {
    throw new TypeError(`options.deliveryDelay must be a number of ms, got ${describe(deliveryDelay)}`);
  }
  if (deliveryDelay !== undefined && !(Number.isFinite(deliveryDelay) && deliveryDelay >= 0)) {
    throw new RangeError(`options.deliveryDelay must be a finite number >= 0, got ${describe(deliveryDelay)}`);
  }
  return {
    interval,
    deliveryDelay: deliveryDelay === undefined ? interval / 2 : deliveryDelay,
    scaleFactor: positiveOr(options.scaleFactor, 1),
    persist: !!options.persist,
    transformer: transformer || null,
    name: options.name,
    startTime: startTimeOf(options.startTime),
  };
}

function isKey(value) {
  return typeof value === 'string' || Number.isFinite(value);
}

/**
 * Checks a logger call's path and id; returns the path as strings (the keys of the delivery tree).
 * null and undefined mean the root.
 */
function checkKey(path, id) {
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
  if (!isKey(id)) {
    throw new TypeError(`id must be a string or a finite number, got ${describe(id)}`);
  }
  return keys;
}

module.exports = { describe, parseOptions, checkKey };
