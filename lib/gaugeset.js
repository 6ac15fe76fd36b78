'use strict';

// Metric sets: `p.gaugeSet(path, fn)`. `fn` is read once per interval, when the interval closes
// (as a gauge's function is), and returns an object of numeric fields; each field is delivered
// as the gauge series `(path, field)`, so it is exported, filtered and merged across the cluster
// exactly as a `gauge()` of that series (its values add up over processes and threads).
//
// A read may return a promise of the object. The close cannot wait for it (it runs inside a
// timer or a record), so a promise's object belongs to the interval in which it settles: a read
// started when interval k closes is delivered when the interval it settled in closes (k + 1 when
// it settles within an interval). One read is in flight at a time: while a promise is pending,
// no new read starts, and the intervals that close meanwhile have no value for the set (its
// fields are absent, not null: nothing was read). A sync function's object belongs to the
// interval that is closing.
//
// A read that throws, rejects or gives something other than an object of finite numbers is
// counted in meta.errors (once per read) of the interval it failed in and emitted as 'error' when
// listened to (a gauge()'s failure is: one rule for both), and warned about once per set
// (PANOPTIC_GAUGE_SET_FAILED, through the instance's warning channel): never thrown from a timer. A failed read delivers every field the set has had as null (a gauge's failure value;
// null adds nothing to the cluster sum); a field that is not a finite number is null by itself.
// A field the object no longer has is absent from that interval.
//
// The collector's hook is two lines: close() has every set `collect` its fields into the
// interval's gauge values, and stop() forgets the sets.

const { byName } = require('./methods');
const { lookup } = require('./lookup');
const { describe, checkPath } = require('./args');
const { warn } = require('./warnings');

const GAUGE = byName.get('gauge');
const GAUGE_SET_FAILED = 'PANOPTIC_GAUGE_SET_FAILED';

// A read that failed: its interval delivers nulls.
const FAILED = Symbol('failed');
// A read that returned a promise: its object comes later.
const STARTED = Symbol('started');

class GaugeSet {
  constructor(c, path, fn) {
    this.c = c;
    this.path = path;
    this.fn = fn;
    this.fields = new Map(); // field name -> its gauge series state
    this.pending = false; // a promise read is in flight
    this.settled = undefined; // what a promise read gave, for the close of the interval it settled in
    this.removed = false;
    this.warned = false;
  }

  where() {
    return `gaugeSet at ${JSON.stringify(this.path)}`;
  }

  /**
   * A failed read: counted in the open interval's meta.errors and reported as 'error' when
   * listened to, as a gauge()'s failure is (`err`: what the function threw or rejected with,
   * else a TypeError saying what it gave), and warned once per set.
   */
  fail(what, err) {
    this.c.errors += 1;
    const message = `the function of the ${this.where()} ${what}`;
    if (err === undefined) this.c.report(new TypeError(message));
    else this.c.report(err, message);
    if (this.warned) return;
    this.warned = true;
    warn(this.c.owner, GAUGE_SET_FAILED, `${message}: counted in meta.errors, its fields are null for that interval (later failures of this set are counted without a warning)`);
  }

  /** Interval closing: pushes each field's gauge value (JSON) onto the engine's lists. */
  collect(ids, json, at) {
    // No new read while one is in flight; nothing settled in this interval.
    if (this.pending) return;
    // What a promise started at an earlier close gave (it settled in this interval), else a
    // sync read's object.
    let values = this.settled;
    this.settled = undefined;
    const read = this.read();
    if (read !== STARTED) values = read;
    else if (values === undefined) return;
    if (values === FAILED) {
      this.nulls(ids, json, at);
      return;
    }
    if (values === null || typeof values !== 'object' || Array.isArray(values)) {
      this.fail(`returned ${describe(values)}, not an object of numbers`);
      this.nulls(ids, json, at);
      return;
    }
    let bad;
    for (const field of Object.keys(values)) {
      const s = this.field(field);
      if (this.c.gauges.has(s)) continue; // a gauge() of the same series takes precedence
      const v = values[field];
      const finite = typeof v === 'number' && Number.isFinite(v);
      if (!finite && bad === undefined) bad = field;
      ids.push(s.ref);
      json.push(finite ? JSON.stringify(v) : 'null');
      at.push(0);
    }
    if (bad !== undefined) this.fail(`gave ${describe(values[bad])} for field ${JSON.stringify(bad)}, not a finite number`);
  }

  /** Calls fn: what it returned, STARTED for a promise (now in flight), FAILED when it threw. */
  read() {
    let out;
    try {
      out = this.fn();
    } catch (err) {
      this.fail(`threw ${describe(err instanceof Error ? err.message : err)}`, err);
      return FAILED;
    }
    if (out === null || (typeof out !== 'object' && typeof out !== 'function') || typeof out.then !== 'function') return out;
    // A thenable.
    this.pending = true;
    const done = (values) => {
      // Into the interval open now (closing the one the clock left first); not after stop().
      if (this.removed || !this.c.sync()) return;
      this.pending = false;
      this.settled = values;
    };
    try {
      out.then(done, (err) => {
        done(FAILED);
        if (!this.removed && !this.c.stopped) this.fail(`rejected with ${describe(err instanceof Error ? err.message : err)}`, err);
      });
    } catch (err) {
      this.pending = false;
      this.fail(`returned a thenable whose then() threw ${describe(err instanceof Error ? err.message : err)}`, err);
      return FAILED;
    }
    return STARTED;
  }

  /** A failed read: null for every field the set has had. */
  nulls(ids, json, at) {
    for (const s of this.fields.values()) {
      // An expired field is not brought back by a failed read.
      if (this.c.gauges.has(s) || s.ref < 0) continue;
      ids.push(s.ref);
      json.push('null');
      at.push(0);
    }
  }

  /**
   * The gauge series state of `field`, defined in the engine on first use, and looked up again
   * after its series expired (a field the function stopped giving for expireAfter intervals:
   * the lookups forgot that state).
   */
  field(name) {
    let s = this.fields.get(name);
    if (s === undefined || s.ref < 0) {
      s = lookup(this.c, GAUGE, this.path, name);
      if (s.ref < 0) this.c.defineSeries(s);
      this.fields.set(name, s);
    }
    return s;
  }
}

/**
 * `gaugeSet(path, fn)` on collector `c`: registers (or replaces) the set at `path`; `fn === null`
 * unregisters it. Throws a TypeError for anything else.
 */
function gaugeSet(c, path, fn) {
  const keys = checkPath(path);
  const key = JSON.stringify(keys);
  if (fn === null) {
    const set = c.sets.get(key);
    if (set !== undefined) {
      set.removed = true;
      c.sets.delete(key);
    }
    return;
  }
  if (typeof fn !== 'function') {
    throw new TypeError(`fn must be a function returning an object of numbers (or a promise of one), or null to unregister, got ${describe(fn)}`);
  }
  if (c.stopped) return;
  const set = c.sets.get(key);
  if (set !== undefined) {
    set.fn = fn;
  } else {
    c.sets.set(key, new GaugeSet(c, keys, fn));
  }
}

module.exports = { gaugeSet, GAUGE_SET_FAILED };
