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

/** Puts `leaf` at `tree[path...][id]`; false (nothing changed) when that place is taken. */
function place(tree, path, id, leaf) {
  let node = tree;
  for (const key of path) {
    if (!Object.prototype.hasOwnProperty.call(node, key)) setOwn(node, key, {});
    node = node[key];
    if (!isBranch(node) || typeof node.type === 'string') return false;
  }
  if (Object.prototype.hasOwnProperty.call(node, id)) return false;
  setOwn(node, id, leaf);
  return true;
}

/** panopticon 0.3.0's transformer: `{ master: data }` or `{ workers: { [id]: data } }`. */
function defaultTransformer(data, id) {
  if (id === 'master') return { master: data };
  const workers = {};
  setOwn(workers, id, data);
  return { workers };
}

module.exports = { merge, place, defaultTransformer };
