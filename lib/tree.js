'use strict';

// Merging delivery trees (nested plain objects whose leaves are `{ type, value }`). The trees
// themselves are written by the native engine (crates/panoptic-core/src/tree.rs).

function setOwn(object, key, value) {
  // A plain assignment to '__proto__' would change the object's prototype instead.
  if (key === '__proto__') {
    Object.defineProperty(object, key, { value, enumerable: true, writable: true, configurable: true });
  } else {
    object[key] = value;
  }
}

function isBranch(value) {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Deep-merges `supplement` into `target` (panopticon 0.3.0's rule: existing keys win at leaves). */
function merge(target, supplement) {
  if (!isBranch(supplement)) return;
  for (const key of Object.keys(supplement)) {
    if (Object.prototype.hasOwnProperty.call(target, key)) {
      if (isBranch(target[key])) merge(target[key], supplement[key]);
    } else {
      setOwn(target, key, supplement[key]);
    }
  }
}

/**
 * Puts `leaf` at `tree[path...][id]`, making the branches on the way. The master's registry of
 * series (panoptic-core's registry.rs) keeps every series' place free in a merged tree.
 */
function place(tree, path, id, leaf) {
  let node = tree;
  for (const key of path) {
    if (!Object.prototype.hasOwnProperty.call(node, key)) setOwn(node, key, {});
    node = node[key];
  }
  setOwn(node, id, leaf);
}

/**
 * Defines `object[key]` as `compute()`, called on the first read (or never, if nothing reads it);
 * after that, and after an assignment, it is a plain data property.
 */
function lazy(object, key, compute) {
  const settle = (value) => Object.defineProperty(object, key, { value, writable: true, enumerable: true, configurable: true });
  Object.defineProperty(object, key, {
    enumerable: true,
    configurable: true,
    get() {
      const value = compute();
      settle(value);
      return value;
    },
    set: settle,
  });
}

/** panopticon 0.3.0's transformer: `{ master: data }` or `{ workers: { [id]: data } }`. */
function defaultTransformer(data, id) {
  if (id === 'master') return { master: data };
  const workers = {};
  setOwn(workers, id, data);
  return { workers };
}

module.exports = { merge, place, lazy, defaultTransformer };
