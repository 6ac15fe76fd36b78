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
//
// Limits (docs/api.md, "Limits"): an instance holds at most `maxSeries` series, and a metric
// (method, path and id) at most `maxTagSets` tag sets. A new series past a limit records into an
// overflow series instead: `id{overflow="true"}` of its metric for tag sets, the method's
// `panoptic.overflow.<method>` for series; so every value lands in exactly one series and a sum
// over a metric stays exact. A key that overflows is not cached (the trie would grow with it):
// each call with it resolves again, and counts one value in meta.overflowed.
//
// Compact series: the methods whose numbers live in native memory or in the collector's arrays
// (inc, sample, timedSample and histogram, without persist: Collector#isCompact) keep no object
// per series. Their trie holds the series' engine id, a small integer (a Smi, no allocation),
// defined in the engine when the key is first resolved; the logger methods hand it to the
// method's `recordAt`. A bind() handle of such a series gets a state object of its own
// (Collector#bindCompact), which the trie never holds. Other methods (set, gauge, meter, rate,
// registered loggers) keep a state object per series in the trie, as the recorders need.
//
// Expiry (docs/api.md, "Expiry"): the collector hands `forget` the states of expired series and
// the engine ids of expired compact ones; they leave the trie (every key they
// were cached under), the limits' counts and the overflow set, and a path node left without
// series or children leaves its parent, so a trie holds only what lives. A bind() handle of an
// expired compact series keeps its key: its next record places it again (`revive`).

const { checkKey, taggedId } = require('./args');

// Module functions over the collector (its `tries` array: one root PathNode per method index,
// made on the method's first call) rather than methods of an object of their own: a logger call
// then loads the array from the collector as it did when the trie lived there, with not one
// field load more on the hot path.

// Two small lookups rather than one: V8 inlines them into the logger methods, and then needs
// not allocate the path array of a call like `p.inc(['http'], 'requests', 1)`.

/** The state of the series of collector `c`'s `method` at `path`/`id`, resolved on a miss. */
function lookup(c, method, path, id) {
  const node = walk(c.tries[method.index], path);
  const s = node === undefined ? undefined : stateOf(node, id);
  return s === undefined ? resolve(c, method, path, id, undefined, true) : s;
}

/** The state of the series of `method` at `path`/`id` with `tags`, resolved on a miss. */
function lookupTagged(c, method, path, id, tags) {
  const node = walk(c.tries[method.index], path);
  const s = node === undefined ? undefined : taggedState(node, id, tags);
  return s === undefined ? resolve(c, method, path, id, tags, true) : s;
}

/**
 * The state bind() binds to: as lookup, but resolving to an overflow series is not a value (the
 * handle counts each of its values: Collector#bind).
 */
function lookupForBind(c, method, path, id, tags) {
  const node = walk(c.tries[method.index], path);
  let s;
  if (node !== undefined) s = tags === undefined ? stateOf(node, id) : taggedState(node, id, tags);
  return s === undefined ? resolve(c, method, path, id, tags, false) : s;
}

/**
 * The state of a series (a compact series' engine id, or the state object `method.state` makes)
 * on first use: checks the key (throws as checkKey and taggedId do) and caches it as given; past
 * a limit, an overflow series (counted in meta.overflowed when `count`). What the lookups call on
 * a miss.
 */
function resolve(c, method, path, id, tags, count) {
  // As before tags existed: the series name first (tags checked), then the path and id.
  const name = tags === undefined ? id : taggedId(id, tags);
  const keys = checkKey(path, name);
  const text = String(name);
  const s = place(c, method, keys, text, String(id), tags !== undefined, count, false);
  const node = placed;
  if (node === null) return s;
  // Cache the key as given too, so that the next walk hits.
  let given = c.tries[method.index];
  for (let i = 0; i < keys.length; i++) {
    const next = child(given, keys[i]);
    addChild(given, path[i], next);
    given = next;
  }
  if (tags === undefined) {
    addState(node, id, s);
  } else {
    cacheTags(node, id, tags, s);
  }
  return s;
}

// The path node `place` put its series under (null: it gave an overflow series). A variable
// rather than a returned pair: a storm of new keys makes no garbage object per key here.
let placed = null;

/**
 * Series `name` (id `bareId`, tagged or not) of `method` at path `keys` (strings), made if it is
 * new and within the limits (or `always`), its node in `placed`; past a limit, the overflow
 * series, nothing made for the key, and `placed` null.
 */
function place(c, method, keys, name, bareId, tagged, count, always) {
  placed = null;
  // Where the series would be, without making anything yet: an overflowing key makes nothing.
  let node = c.tries[method.index];
  for (let i = 0; i < keys.length && node !== undefined; i++) node = child(node, keys[i]);
  let s = node === undefined ? undefined : stateOf(node, name);
  if (s === undefined && !always) {
    if (tagged && node !== undefined && tagSets(node, bareId) >= c.maxTagSets) {
      const overflowName = taggedId(bareId, { overflow: 'true' });
      let o = stateOf(node, overflowName);
      if (o === undefined) {
        if (c.seriesCount >= c.maxSeries) return overflowed(c.overflow(methodOverflow(c, method), count, method, keys, bareId, 'maxSeries'));
        o = make(c, method, node, overflowName);
      }
      return overflowed(c.overflow(o, count, method, keys, bareId, 'maxTagSets'));
    }
    if (c.seriesCount >= c.maxSeries) {
      return overflowed(c.overflow(methodOverflow(c, method), count, method, keys, bareId, 'maxSeries'));
    }
  }
  if (s === undefined) {
    node = pathNode(c, method, keys);
    s = make(c, method, node, name);
    if (tagged) countTagSet(node, bareId);
  }
  placed = node;
  return s;
}

/**
 * `place`'s answer past a limit: overflow series `s`, `placed` null (set after Collector#overflow,
 * whose 'warning' listener may record, and so place, before it returns).
 */
function overflowed(s) {
  placed = null;
  return s;
}

/** A new series `name` of `method` at path node `node`: its engine id if compact, else its state. */
function make(c, method, node, name) {
  const s = c.isCompact(method) ? c.defineCompact(method, node, name) : method.state(method, node.keys, name);
  addState(node, name, s);
  c.seriesCount += 1;
  return s;
}

/**
 * The engine id a bind() handle's state `s` of a compact series records into after its series
 * expired: its key placed again (a series recorded under it since is the same series), past the
 * limits if need be. The handle was bound within them, and brings back its own series, as
 * documented: an overflow series instead would take values the handle does not count in
 * meta.overflowed (its closure was made for its own series). Handles are few: the program makes
 * each, while the limits guard against keys made of request data.
 */
function revive(c, s) {
  return place(c, s.method, s.path, s.id, s.bare, s.bare !== s.id, false, true);
}

/** The path node at `keys` (strings) in `method`'s trie, made where missing. */
function pathNode(c, method, keys) {
  let node = c.tries[method.index];
  if (node === undefined) node = c.tries[method.index] = new PathNode([], null);
  for (let i = 0; i < keys.length; i++) {
    let next = child(node, keys[i]);
    if (next === undefined) {
      next = new PathNode(node.keys.concat(keys[i]), node);
      addChild(node, keys[i], next);
    }
    node = next;
  }
  return node;
}

// Where the method overflow series live, as a path: `panoptic.overflow.<method>`.
const OVERFLOW_PATH = ['panoptic', 'overflow'];

/** `method`'s overflow series (made on first use, past the limit: it is one series per method). */
function methodOverflow(c, method) {
  const node = pathNode(c, method, OVERFLOW_PATH);
  let s = stateOf(node, method.name);
  if (s === undefined) s = make(c, method, node, method.name);
  return s;
}

/** How many tag sets id `id` of path node `node` has. */
function tagSets(node, id) {
  return node.tagSets === null ? 0 : node.tagSets.get(id) || 0;
}

function countTagSet(node, id) {
  if (node.tagSets === null) node.tagSets = new Map();
  node.tagSets.set(id, tagSets(node, id) + 1);
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
  constructor(keys, parent) {
    this.keys = keys; // the path, as strings (shared by the states of its series)
    this.parent = parent; // the node above (null: the root), which holds this one under keys' last
    this.key = NONE; // a path element under this node and its node (see above)
    this.next = undefined;
    this.children = null; // path element (as given, and as a string) -> PathNode
    this.id = NONE; // a series name (or id as given) and its state, the same way
    this.state = undefined;
    this.ids = null; // series name (and id as given) -> state
    this.tags = null; // a TagNode whose children are ids, each the root of the trie of its tag sets
    this.tagSets = null; // id -> how many tag sets it has (for maxTagSets), once it has one
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

// A series being forgotten: a state's `ref` while `forget` runs (-1 after it, as for a new
// state), and a compact series' entry in the collector's `refs` (Collector#expire).
const GONE = -2;

/**
 * Removes expired series states `states` and the expired compact series among engine ids `ids`
 * (those whose `refs` entry is GONE) from collector `c`'s tries. A state that is not the trie's
 * (a gauge set keeps its own) is left alone.
 */
function forget(c, states, ids) {
  const swept = new Set();
  const emptied = new Set();
  for (const s of states) {
    const node = walk(c.tries[s.method.index], s.path);
    if (node === undefined || stateOf(node, s.id) !== s) continue;
    s.ref = GONE;
    drop(c, node, s.id, s, swept, emptied);
  }
  for (let i = 0; i < ids.length; i++) {
    const eid = ids[i];
    if (c.refs[eid] !== GONE) continue;
    const node = c.nodes[eid];
    const name = c.nameOf(eid);
    if (stateOf(node, name) !== eid) continue;
    drop(c, node, name, eid, swept, emptied);
  }
  const gone = (v) => (typeof v === 'number' ? c.refs[v] === GONE : v.ref === GONE);
  for (const node of swept) {
    if (prune(node.tags, new Set(), gone)) node.tags = null;
    emptied.add(node);
  }
  for (const s of states) if (s.ref === GONE) s.ref = -1;
  for (const node of emptied) prunePath(node);
}

/** Series `name` (state or engine id `s`) leaves path node `node`, the limits and the overflow set. */
function drop(c, node, name, s, swept, emptied) {
  c.seriesCount -= 1;
  c.overflows.delete(s);
  untagSet(node, name);
  unlink(node, name, s);
  if (node.tags !== null) swept.add(node);
  else emptied.add(node);
}

/** Removes series `s` named `name` from path node `node`'s series: under its name, and its id as given. */
function unlink(node, name, s) {
  if (node.state === s) {
    node.id = NONE;
    node.state = undefined;
  }
  if (node.ids === null) return;
  node.ids.delete(name);
  // The id given as a number (resolve caches 1 beside '1').
  const n = Number(name);
  if (String(n) === name && node.ids.get(n) === s) node.ids.delete(n);
  if (node.ids.size === 0) node.ids = null;
}

/**
 * Path node `node` leaves its parent when it holds nothing any more (no series, tag sets or
 * children), and so on up to the root: a storm of new paths leaves no nodes behind.
 */
function prunePath(node) {
  while (node.parent !== null && node.state === undefined && node.ids === null && node.tags === null &&
    node.next === undefined && node.children === null && node.tagSets === null) {
    const parent = node.parent;
    const element = node.keys[node.keys.length - 1];
    if (parent.next === node) {
      parent.key = NONE;
      parent.next = undefined;
    }
    if (parent.children !== null) {
      parent.children.delete(element);
      // The element given as a number (resolve caches 1 beside '1').
      const n = Number(element);
      if (String(n) === element && parent.children.get(n) === node) parent.children.delete(n);
      if (parent.children.size === 0) parent.children = null;
    }
    // Detached: a later walk that still reaches it (none should) finds nothing.
    node.parent = null;
    node = parent;
  }
}

/**
 * One tag set fewer for the id of series `name` at `node`, if it is a tagged series: `id{...}`
 * for an id with tag sets (a name of that form without tags is the same series as the tagged
 * one, as resolve names them).
 */
function untagSet(node, name) {
  if (node.tagSets === null || name.charCodeAt(name.length - 1) !== 0x7d) return;
  for (let p = name.indexOf('{'); p > 0; p = name.indexOf('{', p + 1)) {
    const id = name.slice(0, p);
    const n = node.tagSets.get(id);
    if (n === undefined) continue;
    if (n > 1) node.tagSets.set(id, n - 1);
    else node.tagSets.delete(id);
    if (node.tagSets.size === 0) node.tagSets = null;
    return;
  }
}

/** Drops the forgotten series (`gone`) from the tag trie under `t`; true when nothing is left in it. */
function prune(t, seen, gone) {
  if (seen.has(t)) return t.state === undefined && t.next === undefined && t.children === null;
  seen.add(t);
  if (t.state !== undefined && gone(t.state)) t.state = undefined;
  if (t.children !== null) {
    for (const [key, next] of t.children) if (prune(next, seen, gone)) t.children.delete(key);
    if (t.children.size === 0) t.children = null;
    // `key`/`next` only remember the last child looked up: forget it if it is gone.
    if (t.next !== undefined && (t.children === null || t.children.get(t.key) !== t.next)) {
      t.key = NONE;
      t.next = undefined;
    }
  } else if (t.next !== undefined && prune(t.next, seen, gone)) {
    t.key = NONE;
    t.next = undefined;
  }
  return t.state === undefined && t.next === undefined && t.children === null;
}

module.exports = { lookup, lookupTagged, lookupForBind, revive, forget, GONE };
