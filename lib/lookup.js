'use strict';

// Key resolution: from a logger call's method, path, id and tags to its series state, for one
// Panopticon instance. The collector holds the instance's tries (Collector#tries); index.js's
// logger methods and bind() look up in them the state a record goes to, and hand it to the
// method's recorder (lib/methods.js).
//
// Each method has a trie: path nodes (PathNode) reached by path elements, each with a Map from
// series names (`id`, or `id{k="v",...}` for tags) to series states, and for tagged calls, a
// trie per id whose levels alternate tag keys and tag values (TagNode), in the order the tags
// object enumerates them. Keys are also cached as given (1 and '1' are the same place), and each
// node remembers the child it found last, so a call that repeats its key compares one field
// per level instead of hashing. Nothing is built per call: no joined strings, no sorted keys.
// A miss goes to resolve, which checks the key (lib/args.js) and has the method make the state.

const { checkKey, taggedId } = require('./args');

// Module functions over the collector's `tries` array (one root PathNode per method index, made on
// the method's first call) rather than methods of an object of their own: a logger call then
// loads the array from the collector as it did when the trie lived there, with not one field
// load more on the hot path.

// Two small lookups rather than one: V8 inlines them into the logger methods, and then needs
// not allocate the path array of a call like `p.inc(['http'], 'requests', 1)`.

/** The state of the series of `method` at `path`/`id` in `tries`, resolved on a miss. */
function lookup(tries, method, path, id) {
  const node = walk(tries[method.index], path);
  const s = node === undefined ? undefined : stateOf(node, id);
  return s === undefined ? resolve(tries, method, path, id, undefined) : s;
}

/** The state of the series of `method` at `path`/`id` with `tags` in `tries`, resolved on a miss. */
function lookupTagged(tries, method, path, id, tags) {
  const node = walk(tries[method.index], path);
  const s = node === undefined ? undefined : taggedState(node, id, tags);
  return s === undefined ? resolve(tries, method, path, id, tags) : s;
}

/**
 * The state of a series, made by `method.state` on first use: checks the key (throws as
 * checkKey and taggedId do) and caches it as given. What lookup and lookupTagged call on a miss.
 */
function resolve(tries, method, path, id, tags) {
  // As before tags existed: the series name first (tags checked), then the path and id.
  const name = tags === undefined ? id : taggedId(id, tags);
  const keys = checkKey(path, name);
  let node = tries[method.index];
  if (node === undefined) node = tries[method.index] = new PathNode([]);
  for (let i = 0; i < keys.length; i++) {
    let next = child(node, keys[i]);
    if (next === undefined) {
      next = new PathNode(node.keys.concat(keys[i]));
      addChild(node, keys[i], next);
    }
    // Cache the key as given too, so the next walk hits.
    addChild(node, path[i], next);
    node = next;
  }
  const text = String(name);
  let s = stateOf(node, text);
  if (s === undefined) {
    s = method.state(method, node.keys, text);
    addState(node, text, s);
  }
  if (tags === undefined) {
    addState(node, id, s);
  } else {
    cacheTags(node, id, tags, s);
  }
  return s;
}

// Children are kept small: a node's first child is held in its `key`/`next` fields alone, and a
// Map of them all is made only when a second one comes (most nodes have one); once there is a
// Map, `key`/`next` remember the last child looked up. A node without children holds NONE as its
// key (and no child): a string, so that the comparisons of keys, which are almost always
// strings, keep to string comparisons (V8 compiles a comparison of mixed types into a generic
// call); a key equal to it finds no child and goes on to resolve, which adds the child.
const NONE = '';

/** A node of a method's trie: a path and its series. */
class PathNode {
  constructor(keys) {
    this.keys = keys; // the path, as strings (shared by the states of its series)
    this.key = NONE; // a path element under this node and its node (see above)
    this.next = undefined;
    this.children = null; // path element (as given, and as a string) -> PathNode
    this.id = NONE; // a series name (or id as given) and its state, the same way
    this.state = undefined;
    this.ids = null; // series name (and id as given) -> state
    this.tags = null; // a TagNode whose children are ids, each the root of the trie of its tag sets
  }
}

/**
 * A node of the trie of one id's tag sets: from the root, a tag key leads to a node whose
 * children are that key's values, and a value to a node whose `state` is the series of the tags
 * walked so far.
 */
class TagNode {
  constructor() {
    this.state = undefined;
    this.key = NONE; // a key under this node and its node (see above)
    this.next = undefined;
    this.children = null; // key -> TagNode
  }
}

/** The path node at `path` under `node` (a root, or undefined), if the trie has it. */
function walk(node, path) {
  if (path === undefined || path === null) return node;
  if (!Array.isArray(path)) return undefined;
  for (let i = 0; i < path.length && node !== undefined; i++) node = child(node, path[i]);
  return node;
}

/** The child of `node` at `key` (remembered for the next lookup). */
function child(node, key) {
  if (node.key === key) return node.next;
  if (node.children === null) return undefined;
  const next = node.children.get(key);
  if (next !== undefined) {
    node.key = key;
    node.next = next;
  }
  return next;
}

function addChild(node, key, next) {
  if (node.children === null) {
    if (node.next === undefined || node.key === key) {
      node.key = key;
      node.next = next;
      return;
    }
    node.children = new Map([[node.key, node.next]]);
  }
  node.children.set(key, next);
}

/** The state of series `name` (or id as given) under path node `node`, as `child`. */
function stateOf(node, name) {
  if (node.id === name) return node.state;
  if (node.ids === null) return undefined;
  const s = node.ids.get(name);
  if (s !== undefined) {
    node.id = name;
    node.state = s;
  }
  return s;
}

function addState(node, name, s) {
  if (node.ids === null) {
    if (node.state === undefined || node.id === name) {
      node.id = name;
      node.state = s;
      return;
    }
    node.ids = new Map([[node.id, node.state]]);
  }
  node.ids.set(name, s);
}

/**
 * Whether the tags walk applies to `tags`: an object whose enumerable keys (what for...in
 * walks) are its own (what taggedId reads) as long as nothing added enumerable properties to
 * Object.prototype (a plain object, or one made with Object.create(null)). Others, and tags the
 * walk has not seen, go through resolve: taggedId decides.
 */
function walkable(tags) {
  if (typeof tags !== 'object' || tags === null) return false;
  const proto = Object.getPrototypeOf(tags);
  return proto === Object.prototype || proto === null;
}

/**
 * The state of `id` with `tags` under path node `node`, if this tag set was seen. (`__proto__`
 * reads the prototype in half the time of Object.getPrototypeOf; an own property of that name
 * only sends the call to resolve.)
 */
function taggedState(node, id, tags) {
  if (node.tags === null || typeof tags !== 'object' || tags === null) return undefined;
  const proto = tags.__proto__; // eslint-disable-line no-proto
  if (proto !== Object.prototype && !(proto === undefined && Object.getPrototypeOf(tags) === null)) return undefined;
  let t = child(node.tags, id);
  for (const key in tags) {
    if (t === undefined) return undefined;
    t = child(t, key);
    if (t === undefined) return undefined;
    t = child(t, tags[key]);
  }
  return t === undefined ? undefined : t.state;
}

/** Caches state `s` of `id` with `tags` (checked by taggedId) under path node `node`. */
function cacheTags(node, id, tags, s) {
  if (!walkable(tags)) return;
  // The walk must see exactly the tags taggedId read (no inherited enumerable keys).
  const own = Object.keys(tags);
  let n = 0;
  for (const key in tags) {
    if (own[n] !== key) return;
    n += 1;
  }
  if (n !== own.length) return;
  if (node.tags === null) node.tags = new TagNode();
  let t = descend(node.tags, String(id));
  addChild(node.tags, id, t);
  for (const key of own) {
    t = descend(t, key);
    t = descend(t, tags[key]);
  }
  t.state = s;
}

function descend(node, key) {
  let next = child(node, key);
  if (next === undefined) {
    next = new TagNode();
    addChild(node, key, next);
  }
  return next;
}

module.exports = { lookup, lookupTagged };
