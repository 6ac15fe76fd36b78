'use strict';

// Panopticon.filter(expression): the filter language (docs/filter.md), compiled by the
// core (crates/panoptic-core/src/filter.rs), to test series or select the leaves of a delivery.

const os = require('os');
const { compileFilter, NativeFilter } = require('./addon');
const { describe, checkKey } = require('./args');

const ROLES = ['master', 'worker', 'thread'];
const hasOwn = (object, key) => Object.prototype.hasOwnProperty.call(object, key);

/** A tree's leaf: `{ type, value }`, `type` a string (what the delivery trees hold at their ends). */
function isLeaf(node) {
  return node !== null && typeof node === 'object' && typeof node.type === 'string' && hasOwn(node, 'value');
}

function isBranch(node) {
  return node !== null && typeof node === 'object' && !Array.isArray(node);
}

/** Sets `object[key]`, also for a key such as `__proto__` (which an assignment would not create). */
function put(object, key, value) {
  if (key === '__proto__') {
    Object.defineProperty(object, key, { value, writable: true, enumerable: true, configurable: true });
  } else {
    object[key] = value;
  }
}

/** An optional u32 field of `series.process`. */
function checkU32(process, name) {
  const value = process[name];
  if (value === undefined) return;
  if (typeof value !== 'number') throw new TypeError(`series.process.${name} must be a number, got ${describe(value)}`);
  if (!(Number.isInteger(value) && value >= 0 && value <= 0xffffffff)) {
    throw new RangeError(`series.process.${name} must be an integer from 0 to 4294967295, got ${describe(value)}`);
  }
}

/** `series.process` as the native side takes it (undefined: no process, as the cluster view). */
function processOf(process) {
  if (process === undefined || process === null) return undefined;
  if (typeof process !== 'object') {
    throw new TypeError(`series.process must be an object { role, pid?, worker?, host?, title? }, got ${describe(process)}`);
  }
  if (!ROLES.includes(process.role)) {
    throw new TypeError(`series.process.role must be 'master', 'worker' or 'thread', got ${describe(process.role)}`);
  }
  checkU32(process, 'pid');
  checkU32(process, 'worker');
  for (const name of ['host', 'title']) {
    if (process[name] !== undefined && typeof process[name] !== 'string') {
      throw new TypeError(`series.process.${name} must be a string, got ${describe(process[name])}`);
    }
  }
  const { role, pid, worker, host, title } = process;
  return { role, pid, worker, host, title };
}

function seriesOf(series) {
  if (series === null || typeof series !== 'object') {
    throw new TypeError(`series must be an object { path, id, type, process? }, got ${describe(series)}`);
  }
  const path = checkKey(series.path, series.id);
  if (typeof series.type !== 'string') throw new TypeError(`series.type must be a string, got ${describe(series.type)}`);
  return { path, id: String(series.id), type: series.type };
}

/**
 * The matching leaves of `tree` (a new tree; leaves are the same objects, branches left empty are
 * dropped, anything that is neither a leaf nor a branch too), its series from `process`.
 */
function selectTree(native, tree, process) {
  const series = [];
  (function collect(node, path) {
    for (const key of Object.keys(node)) {
      const child = node[key];
      if (isLeaf(child)) series.push({ path, id: key, type: child.type });
      else if (isBranch(child)) collect(child, [...path, key]);
    }
  })(tree, []);
  const keep = series.length === 0 ? [] : native.test(series, process);
  let i = 0;
  // The same walk again, in the same order: leaf i is kept when keep[i].
  return (function rebuild(node) {
    const out = {};
    let empty = true;
    for (const key of Object.keys(node)) {
      const child = node[key];
      let kept;
      if (isLeaf(child)) kept = keep[i++] ? child : undefined;
      else if (isBranch(child)) kept = rebuild(child);
      if (kept !== undefined) {
        put(out, key, kept);
        empty = false;
      }
    }
    return empty && node !== tree ? undefined : out;
  })(tree);
}

const pidOf = (value) => (Number.isInteger(value) && value >= 0 && value <= 0xffffffff ? value : undefined);
const workerIdOf = (text) => pidOf(/^\d+$/.test(text) ? Number(text) : undefined);

/** The filter's `select`: a delivery of the same shape holding only the matching leaves. */
function selectDelivery(native, delivery) {
  if (delivery === null || typeof delivery !== 'object' || !isBranch(delivery.data)) {
    throw new TypeError(`delivery must be a 'delivery' event object { id, name, interval, data, meta }, got ${describe(delivery)}`);
  }
  const meta = isBranch(delivery.meta) ? delivery.meta : {};
  const pids = isBranch(meta.workers) ? meta.workers : {};
  const base = { host: os.hostname(), title: process.title };
  const masterPid = pidOf(meta.pid) === undefined ? process.pid : meta.pid;
  const master = { role: 'master', pid: masterPid, ...base };
  const worker = (id) => ({ role: 'worker', pid: pidOf(pids[id]), worker: workerIdOf(id), ...base });
  // '<process>:<threadId>', <process> being 'master' or a cluster worker id.
  const thread = (label) => {
    const owner = label.includes(':') ? label.slice(0, label.indexOf(':')) : label;
    if (owner === 'master') return { role: 'thread', pid: masterPid, ...base };
    return { role: 'thread', pid: pidOf(pids[owner]), worker: workerIdOf(owner), ...base };
  };
  const data = {};
  for (const key of Object.keys(delivery.data)) {
    const value = delivery.data[key];
    let selected = value;
    if (!isBranch(value)) {
      // Not a tree (a custom transformer's): kept as it is.
    } else if (key === 'workers' || key === 'threads') {
      selected = {};
      for (const id of Object.keys(value)) {
        const tree = value[id];
        put(selected, id, isBranch(tree) ? selectTree(native, tree, key === 'workers' ? worker(id) : thread(id)) : tree);
      }
    } else {
      // 'master', the cluster view (no process: process.* fields are missing) and any other tree
      // a custom transformer put there (read as the cluster view is).
      selected = selectTree(native, value, key === 'master' ? master : undefined);
    }
    put(data, key, selected);
  }
  const out = { ...delivery, data };
  if (isBranch(delivery.meta)) {
    out.meta = { ...delivery.meta };
    if (isBranch(meta.workers)) out.meta.workers = { ...meta.workers };
  }
  return out;
}

/**
 * Compiles `expression`. Returns `{ expression, test(series), select(delivery) }`; throws a
 * TypeError for a non-string and a SyntaxError (with `position`) for a bad expression.
 */
function filter(expression) {
  if (typeof expression !== 'string') throw new TypeError(`expression must be a string, got ${describe(expression)}`);
  const native = compileFilter(expression);
  if (!(native instanceof NativeFilter)) {
    const error = new SyntaxError(native.message);
    error.position = native.position;
    throw error;
  }
  return Object.freeze({
    expression,
    test(series) {
      const checked = seriesOf(series);
      return native.test([checked], processOf(series.process))[0];
    },
    select(delivery) {
      return selectDelivery(native, delivery);
    },
  });
}

module.exports = { filter };
