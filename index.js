'use strict';

// The public face of panoptic: the Panopticon class, compatible with panopticon 0.3.0.
// The README documents every option, method, event and field used here.

const EventEmitter = require('events');
const cluster = require('cluster');
const { parseOptions, describe, checkPath } = require('./lib/args');
const { methods, byName, defineCustom } = require('./lib/methods');
const { Collector } = require('./lib/collector');
const { lookup, lookupTagged, lookupForBind } = require('./lib/lookup');
const { Scope, installOnScopes } = require('./lib/scope');
const { register, unregister, uniqueName } = require('./lib/cluster');
const { isMainThread } = require('worker_threads');
const { parseExportOptions, parseServe } = require('./lib/export');
const { gaugeSet } = require('./lib/gaugeset');
const { parseRuntime, startRuntime } = require('./lib/runtime');

const COLLECTOR = Symbol('panoptic.collector');
const RUNTIME = Symbol('panoptic.runtime'); // stops the runtime metrics (lib/runtime.js)

let instanceCount = 0;

/**
 * Collects metrics in this process and delivers them once per interval. Callable without `new`.
 * See the README for every option, method and event.
 */
function Panopticon(options) {
  if (!(this instanceof Panopticon)) return new Panopticon(options);
  const opts = parseOptions(options);
  opts.exports = parseExportOptions(options || {}, opts.scaleFactor);
  const runtime = parseRuntime(options ? options.runtime : undefined, 'options.runtime');
  EventEmitter.call(this);
  // Custom persistent loggers each listen to 'reset' (the 0.3.0 logger contract).
  this.setMaxListeners(0);

  this.id = instanceCount;
  instanceCount += 1;
  this.name = opts.name;
  this.interval = opts.interval;
  this.scaleFactor = opts.scaleFactor;
  this.persist = opts.persist;

  const collector = new Collector(this, opts);
  this[COLLECTOR] = collector;
  this.endTime = collector.endTime;
  register(this);
  // The role (README, "Clusters and threads"). A worker thread inherits its process's environment,
  // so cluster.isWorker is only meaningful in a main thread.
  const name = uniqueName(this);
  if (!isMainThread) {
    if (name === undefined || !collector.startFeeding(name)) collector.startDelivering();
  } else {
    if (name !== undefined) collector.hostThreads(name);
    if (cluster.isWorker) collector.startShipping();
    else collector.startDelivering();
  }
  this[RUNTIME] = runtime === null ? null : runtimeOf(this, runtime);
}

Object.setPrototypeOf(Panopticon.prototype, EventEmitter.prototype);
Object.setPrototypeOf(Panopticon, EventEmitter);

/**
 * Stops this instance: emits 'stopping', clears its timers, detaches from the cluster, removes all
 * listeners. Data not yet delivered is discarded; later logger calls are ignored.
 */
Panopticon.prototype.stop = function stop() {
  this.emit('stopping');
  unregister(this);
  this[COLLECTOR].stop();
  this.removeAllListeners();
};

/**
 * Resolves `path`/`id` (with `tags`, if given) once and returns a function `(value) => void` that
 * records with `method`: the fastest way to record the same series often.
 */
Panopticon.prototype.bind = function bind(method, path, id, tags) {
  const m = typeof method === 'string' ? byName.get(method) : undefined;
  if (m === undefined) {
    throw new TypeError(`method must be the name of a registered logger method (${[...byName.keys()].join(', ')}), got ${describe(method)}`);
  }
  const c = this[COLLECTOR];
  return c.bind(m, lookupForBind(c, m, path, id, tags), id, tags);
};

/**
 * Serves this instance's exports over HTTP (README, "Exports"): resolves with the bound address
 * `{ address, port, family, url }`; rejects with a TypeError/RangeError naming a bad option, or
 * the system error (e.g. EADDRINUSE). `stop()` closes the server.
 */
Panopticon.prototype.serve = function serve(options) {
  try {
    return Promise.resolve(this[COLLECTOR].serve(parseServe(options, this.scaleFactor)));
  } catch (error) {
    return Promise.reject(error);
  }
};

/**
 * What the exports did so far: `{ deliveries, influx, remoteWrite, servers }` (docs/exports.md); zeros on an
 * instance that does not deliver.
 */
Panopticon.prototype.exportStats = function exportStats() {
  return this[COLLECTOR].exportStats();
};

/**
 * How many series the instance holds now: `{ engine, lookup, registry }` (docs/api.md, "Expiry").
 */
Panopticon.prototype.seriesStats = function seriesStats() {
  return this[COLLECTOR].seriesStats();
};

/**
 * Reads `fn` once per interval (when it closes): an object (or a promise of one) of numbers, each
 * field delivered as the gauge `(path, field)` (docs/api.md, "gaugeSet"). `null` unregisters.
 */
Panopticon.prototype.gaugeSet = function gaugeSetMethod(path, fn) {
  gaugeSet(this[COLLECTOR], path, fn);
};

/** Starts the runtime metrics of `p` (lib/runtime.js). */
function runtimeOf(p, runtime) {
  return startRuntime(p, p[COLLECTOR], runtime);
}

/**
 * Collects the runtime metrics (docs/runtime.md) into this instance: `options` as the `runtime`
 * option (`true` when omitted; `false` stops them). A second call replaces the first.
 */
Panopticon.prototype.collectRuntime = function collectRuntime(options) {
  const runtime = parseRuntime(options === undefined ? true : options, 'options');
  if (this[RUNTIME] !== null) this[RUNTIME]();
  this[RUNTIME] = runtime === null || this[COLLECTOR].stopped ? null : runtimeOf(this, runtime);
};

/** A view of this instance whose methods and bind() record under `path`. */
Panopticon.prototype.scope = function scope(path) {
  return new Scope(this, checkPath(path));
};

/** The state of the series `method` records into (two lookups: see lib/lookup.js). */
function find(c, method, path, id, tags) {
  return tags === undefined ? lookup(c, method, path, id) : lookupTagged(c, method, path, id, tags);
}

/** Adds logger method `method` to every instance and scope (a registered one). */
function install(method) {
  Panopticon.prototype[method.name] = function record(path, id, value, tags) {
    const c = this[COLLECTOR];
    const s = find(c, method, path, id, tags);
    // A compact series is its engine id (lib/lookup.js).
    if (typeof s === 'number') method.recordAt(c, method, s, value);
    else method.record(c, s, value);
  };
  installOnScopes(method.name);
}

// The built-in methods, each its own function: V8 shares type feedback between the closures of
// one function literal, so install()'s would reach the eight recorders through one polymorphic
// call and inline none of them.
const SAMPLE = byName.get('sample');
const TIMED_SAMPLE = byName.get('timedSample');
const INC = byName.get('inc');
const SET = byName.get('set');
const GAUGE = byName.get('gauge');
const HISTOGRAM = byName.get('histogram');
const RATE = byName.get('rate');
const METER = byName.get('meter');
Object.assign(Panopticon.prototype, {
  sample(path, id, value, tags) {
    const c = this[COLLECTOR];
    const s = find(c, SAMPLE, path, id, tags);
    if (typeof s === 'number') SAMPLE.recordAt(c, SAMPLE, s, value);
    else SAMPLE.record(c, s, value);
  },
  timedSample(path, id, dt, tags) {
    const c = this[COLLECTOR];
    const s = find(c, TIMED_SAMPLE, path, id, tags);
    if (typeof s === 'number') TIMED_SAMPLE.recordAt(c, TIMED_SAMPLE, s, dt);
    else TIMED_SAMPLE.record(c, s, dt);
  },
  inc(path, id, n, tags) {
    const c = this[COLLECTOR];
    const s = find(c, INC, path, id, tags);
    if (typeof s === 'number') INC.recordAt(c, INC, s, n);
    else INC.record(c, s, n);
  },
  set(path, id, value, tags) {
    const c = this[COLLECTOR];
    SET.record(c, find(c, SET, path, id, tags), value);
  },
  gauge(path, id, fn, tags) {
    const c = this[COLLECTOR];
    GAUGE.record(c, find(c, GAUGE, path, id, tags), fn);
  },
  histogram(path, id, value, tags) {
    const c = this[COLLECTOR];
    const s = find(c, HISTOGRAM, path, id, tags);
    if (typeof s === 'number') HISTOGRAM.recordAt(c, HISTOGRAM, s, value);
    else HISTOGRAM.record(c, s, value);
  },
  rate(path, id, cumulative, tags) {
    const c = this[COLLECTOR];
    RATE.record(c, find(c, RATE, path, id, tags), cumulative);
  },
  meter(path, id, n, tags) {
    const c = this[COLLECTOR];
    METER.record(c, find(c, METER, path, id, tags), n);
  },
});
methods.forEach((method) => installOnScopes(method.name));

/**
 * Adds a logger method to every instance, existing and future. `loggerClass` follows the
 * panopticon 0.3.0 logger contract; a falsy `validator(value)` drops the data point silently.
 */
Panopticon.registerMethod = function registerMethod(name, loggerClass, validator) {
  if (typeof name !== 'string' || name === '') {
    throw new TypeError(`name must be a non-empty string, got ${describe(name)}`);
  }
  if (byName.has(name)) {
    throw new Error(`Method "${name}" is already registered.`);
  }
  if (Object.prototype.hasOwnProperty.call(Panopticon.prototype, name)) {
    throw new Error(`Method "${name}" is already a panopticon prototype property.`);
  }
  if (typeof loggerClass !== 'function') {
    throw new TypeError(`loggerClass must be a constructor function. Got ${describe(loggerClass)}.`);
  }
  if (validator !== undefined && validator !== null && typeof validator !== 'function') {
    throw new TypeError(`validator must be a function, got ${describe(validator)}`);
  }
  install(defineCustom(name, loggerClass, validator));
};

/** The names of all logger methods, built-in first (a copy). */
Panopticon.getLoggerMethodNames = function getLoggerMethodNames() {
  return methods.map((m) => m.name);
};

/** Number of instances constructed in this process. */
Panopticon.count = function count() {
  return instanceCount;
};

/** Resets the instance count. For tests only. */
Panopticon._resetCount = function _resetCount() {
  instanceCount = 0;
};

/** Dynamic tracing probes: `trace(name, obj)` (README, "Dynamic tracing"). */
Panopticon.trace = require('./lib/trace').trace;

/** Compiles a filter expression (README, "Filter language"): `{ expression, test, select }`. */
Panopticon.filter = require('./lib/filter').filter;

Panopticon.Panopticon = Panopticon;

module.exports = Panopticon;
