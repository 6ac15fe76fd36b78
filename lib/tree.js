'use strict';

// Building and merging delivery trees: nested plain objects whose leaves are `{ type, value }`.

function setOwn(object, key, value) {
  // A plain assignment to '__proto__' would change the object's prototype instead.
  if (key === '__proto__') {
    Object.defineProperty(object, key, { value, enumerable: true, writable: true, configurable: true });
  } else {
    object[key] = value;
  }
}

/**
 * Puts `leaf` at `tree[path...][id]`. `branches` holds the objects this tree built as branches, so
 * a leaf and a branch never take the same place: returns false (and changes nothing) when the
 * place is taken.
 */
function place(tree, branches, path, id, leaf) {
  let node = tree;
  for (const key of path) {
    if (!Object.prototype.hasOwnProperty.call(node, key)) {
      const branch = {};
      branches.add(branch);
      setOwn(node, key, branch);
    }
    node = node[key];
    if (!branches.has(node)) return false;
  }
  if (Object.prototype.hasOwnProperty.call(node, id)) return false;
  setOwn(node, id, leaf);
  return true;
}

/** Deep-merges `supplement` into `target` (panopticon 0.3.0's rule: existing keys win at leaves). */
function merge(target, supplement) {
  if (typeof supplement !== 'object' || supplement === null) return;
  for (const key of Object.keys(supplement)) {
    if (Object.prototype.hasOwnProperty.call(target, key)) {
      if (typeof target[key] === 'object' && target[key] !== null) merge(target[key], supplement[key]);
    } else {
      setOwn(target, key, supplement[key]);
    }
  }
}

/** panopticon 0.3.0's transformer: `{ master: data }` or `{ workers: { [id]: data } }`. */
function defaultTransformer(data, id) {
  if (id === 'master') return { master: data };
  const workers = {};
  setOwn(workers, id, data);
  return { workers };
}

module.exports = { place, merge, defaultTransformer };
