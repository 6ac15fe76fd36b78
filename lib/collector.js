'use strict';

// The interval machinery behind one Panopticon instance: series, the current interval's state,
// closing each interval at its boundary, delivery `deliveryDelay` later.
//
// Which interval a datum belongs to. `cur` is the number k of the interval whose data the state
// holds (it spans [startTime + k*interval, startTime + (k+1)*interval)). A native thread publishes
// the wall clock's interval number in the clock cell of this instance (panoptic-core's clock.rs).
// Every record first compares the cell with `cur` (the collector's, or its series state's copy:
// see enter); when they differ the interval may be over: then the state is closed as interval
// `cur`, emptied, and `cur` moves on (sync/rotate) before the datum is written. The boundary
// timer does the same when no record comes. So a datum lands in the
// interval the clock showed when it was recorded, whether or not a timer has fired yet
// (panopticon 0.3.0 lost the first datum after a boundary, and a stalled event loop lumped
// everything into one interval).
//
// Where the data goes. A closed interval is a snapshot in the native engine. Its role decides
// what happens to it (startDelivering / startShipping / startFeeding):
// - master or standalone: kept; the engine gathers the workers' and threads' snapshots of the same
//   interval, and at delivery time merges them and writes the delivery's trees;
// - cluster worker: shipped to the master (cluster.js: through the native transport, or Node's
//   IPC as the fallback), with its threads' snapshots;
// - worker thread whose process has a main-thread instance of the same name: posted to it through
//   process memory (no serialization).

const { threadId } = require('worker_threads');
const { NativeEngine, intervalIndex, clockCells, PAGE_SHIFT, PAGE_MASK, BATCH_LENGTH, RUN_HEADER, SeriesKind } = require('./native');
const { byName } = require('./methods');
const { merge, place, lazy, defaultTransformer } = require('./tree');
const { describe } = require('./args');
const { listenToWorkers, shipper } = require('./cluster');
const { forget, revive, GONE } = require('./lookup');
const { origin, addressOf, isLoopback } = require('./export');
const { warn, INVALID_VALUE, OVERFLOW, INSECURE_AUTH } = require('./warnings');

const NOOP = () => {};
// How many metrics' overflows are warned about by name (the rest are counted only).
const WARNED_METRICS = 100;
// The pusher's flush on stop (FLUSH_ON_STOP in src/export.rs), and a margin for the deliveries
// handed over before it and for a request it cuts short.
const FLUSH_WAIT_MS = 3000;

class Collector {
  constructor(owner, options) {
    this.owner = owner;
    this.interval = options.interval;
    this.scaleFactor = options.scaleFactor;
    this.persist = options.persist;
    this.startTime = options.startTime;
    this.deliveryDelay = options.deliveryDelay;
    this.transformer = options.transformer || defaultTransformer;
    this.exportOptions = options.exports;
    this.keepAlive = options.keepAlive;
    this.engine = new NativeEngine(this.startTime, this.interval, this.scaleFactor, this.persist, options.histogram);
    this.expireAfter = options.expireAfter;
    if (this.expireAfter !== Infinity) this.engine.setExpireAfter(this.expireAfter);
    this.cell = this.engine.cell;
    this.cur = this.engine.open;
    this.endTime = this.endOf(this.cur);
    this.stopped = false;

    this.tries = []; // per method index: the trie of its series states by key (lib/lookup.js)
    this.maxSeries = options.maxSeries; // limits (lib/lookup.js)
    this.maxTagSets = options.maxTagSets;
    this.maxClusterSeries = options.maxClusterSeries; // the master's (crates/panoptic-core/src/gather/gathering.rs)
    this.seriesCount = 0;
    this.overflows = new Set(); // the overflow series' states
    this.warnedOverflow = new Set(); // metrics whose overflow was warned about
    this.entered = []; // the series states that entered the current interval (see enter)
    this.bound = new Map(); // series state -> its bind() closure (series with a state in the trie)
    this.byId = []; // engine series id -> its state, while defined (see expire)
    // Compact series (lib/lookup.js), by engine id while defined: the path node and name they
    // are found under (the name, or the state of the series' bind() handle, whose `id` it is),
    // where the engine keeps them (a counter's first slot, else the id), and a counter's count and
    // total since the interval began (see close). Dense arrays of small integers and numbers: no
    // object per series.
    this.nodes = [];
    this.names = [];
    this.refs = [];
    this.counts = [];
    this.totals = [];
    // Engine id -> more handle states of that series (rare: old handles that came back, see
    // attach).
    this.handles = new Map();
    // Where inc keeps its numbers between records. Plain JS fields (false) cost a fraction of a
    // typed-array slot; the collector writes them into the engine's counter page when it closes
    // the interval, the only time the engine reads the page: exact, since a field only ever holds
    // what was recorded since the interval it entered, which is the current one. A worker thread
    // that feeds its process's main thread (true, set by startFeeding) writes into the page
    // itself instead: when the thread is terminated, its JS heap is gone without a last close,
    // and its engine posts what it holds (the last interval of a thread is never lost). Anywhere
    // else an instance's open interval ends with its process or thread, fields or not.
    this.shared = false;
    // Native memory the recorders write into: counter pages, and the batch, where distributions'
    // values go in runs (a header, RUN_HEADER and the series id, then values); the cells after
    // `fill` are NaN, which is how the engine finds the end when it drains the batch by itself.
    this.pages = [];
    this.batch = this.engine.batch();
    this.fill = 0;
    this.run = -1; // the series id of the run being written
    this.jsSeries = []; // set / registered-logger series that ever received a datum
    this.touched = []; // JS series written in the current interval
    this.gauges = new Set(); // gauge series whose function is called at each close
    this.sets = new Map(); // gaugeSet()s by path (lib/gaugeset.js), read at each close
    this.meterCell = -1; // the meters' 5-second grid in clockCells, once there is a meter
    this.meterTick = NaN;
    this.dropped = 0;
    this.invalidCount = 0;
    this.overflowed = 0;
    this.errors = 0;
    this.warnedInvalid = new Set(); // methods whose invalid values were warned about (see invalid)

    // What happens to a closed interval (set by the role), and the role's timers.
    this.onClosed = NOOP;
    this.ready = []; // master: closed intervals (k) waiting for their delivery time
    this.delivering = false;
    this.servers = []; // serve()'s native servers, stopped with the instance
    this.forwardAt = Infinity; // cluster worker: when to forward its threads' snapshots
    this.forward = NOOP;
    this.resync = NOOP; // master: ask the workers that lack keys to resync
    this.detach = NOOP;
    this.timer = null;
  }

  endOf(k) {
    return this.startTime + (k + 1) * this.interval;
  }

  // ---- the hot path's slow branches --------------------------------------------------------

  /** Closes the current interval if `target` is a later one. False once stopped (drop the datum). */
  sync(target = clockCells[this.cell]) {
    if (this.stopped) return false;
    if (target > this.cur) this.rotate(target);
    return true;
  }

  /**
   * A recorder's clock cell differs from the interval its series state `s` entered: the clock
   * moved on, or this is the series' first datum in the interval. Closes the finished interval
   * if any, defines the series on its first datum, and lists it as written in the current
   * interval. False once stopped.
   *
   * Why one comparison suffices: `s.cur` is `this.cur` while `s` is listed in `entered`, and NaN
   * otherwise (close() and stop() reset the listed ones). So `clockCells[cell] === s.cur`
   * means the clock shows the interval the collector holds and `s` is listed in it: the datum
   * belongs there. Anything else comes here: the first datum of a series in an interval, a
   * clock that moved on (then the interval closes first), or one that lags behind the boundary
   * timer (tick() also asks the clock; until the cell catches up, records take this branch and
   * go to the interval the collector holds, as before).
   */
  enter(s) {
    if (!this.sync()) return false;
    if (s.cur !== this.cur) {
      if (s.ref < 0) s.method.define(this, s);
      s.cur = this.cur;
      this.entered.push(s);
    }
    return true;
  }

  /**
   * Whether a count made now belongs to the interval the collector holds (it closes the finished
   * one first, as a record does); false once stopped. What every counted mishap asks first.
   */
  counting() {
    return clockCells[this.cell] === this.cur || this.sync();
  }

  drop() {
    if (!this.counting()) return;
    this.dropped += 1;
  }

  /**
   * A value series `s`'s method does not take (`rule` says what it takes): dropped and counted
   * in meta.dropped or, given a `replacement` (what panopticon 0.3.0 used instead), counted in
   * meta.invalid and replaced (returned). Warned about once per method: the first one is named;
   * a mistake in a hot loop must not flood the warnings.
   */
  invalid(s, value, rule, replacement) {
    if (!this.counting()) return replacement;
    const name = s.method.name;
    let outcome;
    if (replacement === undefined) {
      this.dropped += 1;
      outcome = 'the data point is dropped and counted in meta.dropped';
    } else {
      this.invalidCount += 1;
      outcome = `it counts as ${replacement}, as in panopticon 0.3.0, and is counted in meta.invalid`;
    }
    if (!this.warnedInvalid.has(name)) {
      this.warnedInvalid.add(name);
      const where = JSON.stringify([...s.path, s.id]);
      warn(this.owner, INVALID_VALUE, `${name}() at ${where} was given ${describe(value)}, not ${rule}: ${outcome} (later invalid values of ${name}() are counted without a warning)`);
    }
    return replacement;
  }

  /**
   * A new series of metric `method` `keys` `id` past the `limit` (maxSeries or maxTagSets) goes to
   * overflow series `s`: one value counted in meta.overflowed when `count` (bind() handles
   * count each of theirs), and a warning the first time for the metric. Returns `s`.
   */
  overflow(s, count, method, keys, id, limit) {
    this.overflows.add(s);
    if (count) this.countOverflow();
    const metric = `${method.name}() at ${JSON.stringify([...keys, id])}`;
    // Once per metric for its tag sets; once per method for series (each new id is a metric).
    const once = limit === 'maxSeries' ? `${method.name}()` : metric;
    if (!this.warnedOverflow.has(once) && this.warnedOverflow.size < WARNED_METRICS) {
      this.warnedOverflow.add(once);
      const o = typeof s === 'number' ? this.stateAt(method, s) : s;
      const where = limit === 'maxSeries'
        ? `the instance holds options.maxSeries (${this.maxSeries}) series: new ones of ${method.name}() record into ${JSON.stringify([...o.path, o.id].join('.'))}`
        : `the metric has options.maxTagSets (${this.maxTagSets}) tag sets: new ones record into ${o.id}`;
      warn(this.owner, OVERFLOW, `${metric}: ${where} (counted in meta.overflowed; sums stay exact). A tag or id made of request data (an id, a URL) is the usual cause: use a bounded set of values, or raise the limit.`);
    }
    return s;
  }

  /** One value recorded into an overflow series in the current interval. */
  countOverflow() {
    if (!this.counting()) return;
    this.overflowed += 1;
  }

  fail(err, context) {
    if (!this.counting()) return;
    this.errors += 1;
    this.report(err, context);
  }

  /** Emits 'error' only when someone listens: a panopticon never throws out of a timer. */
  report(err, context) {
    if (this.owner.listenerCount('error') > 0) {
      const error = err instanceof Error ? err : new Error(String(err));
      if (context && !error.context) error.context = context;
      this.owner.emit('error', error);
    }
  }

  /** Appends value `x` of series `ref` to the batch (a run header first if another series wrote last). */
  append(ref, x) {
    if (this.run !== ref) this.open(ref);
    const f = this.fill;
    this.batch[f] = x;
    this.fill = f + 1;
    if (f + 1 === BATCH_LENGTH) this.flush();
  }

  /** Starts a run of series `ref`, with room for at least one value. */
  open(ref) {
    if (this.fill + 3 > BATCH_LENGTH) this.flush();
    const f = this.fill;
    this.batch[f] = RUN_HEADER;
    this.batch[f + 1] = ref;
    this.fill = f + 2;
    this.run = ref;
  }

  /** Has the engine fold the batch into its series; it refills the batch with NaN. */
  flush() {
    this.engine.drain();
    this.fill = 0;
    this.run = -1;
  }

  touch(series) {
    series.touched = true;
    this.touched.push(series);
    if (series.ref < 0) {
      this.defineSeries(series);
      this.jsSeries.push(series);
    }
  }

  /**
   * Whether `method`'s series are compact (lib/lookup.js): counters and distributions, unless
   * `persist`, which reports every defined series in every interval: a compact series is defined
   * when its key is first resolved (a handle bound and not used yet, a first value dropped),
   * another on its first datum, so only the latter reports exactly what was recorded.
   */
  isCompact(method) {
    return method.recordAt !== undefined && !this.persist;
  }

  /** Defines compact series `name` of `method` at path node `node`: its engine id. */
  defineCompact(method, node, name) {
    const { id, slot } = this.engine.define(method.kind, method.name, node.keys, name);
    while (this.refs.length <= id) {
      this.nodes.push(undefined);
      this.names.push(undefined);
      this.refs.push(-1);
      this.counts.push(0);
      this.totals.push(0);
    }
    this.nodes[id] = node;
    this.names[id] = name;
    if (typeof slot === 'number') {
      while (this.pages.length <= slot >> PAGE_SHIFT) this.pages.push(this.engine.page(this.pages.length));
      this.refs[id] = slot;
    } else {
      this.refs[id] = id;
    }
    return id;
  }

  /** The name of compact series `eid`. */
  nameOf(eid) {
    const name = this.names[eid];
    return typeof name === 'string' ? name : name.id;
  }

  /** A state standing for compact series `eid` of `method` in a warning (the slow path only). */
  stateAt(method, eid) {
    return { method, path: this.nodes[eid].keys, id: this.nameOf(eid) };
  }

  /**
   * A bind() handle's first datum in an interval finds it undefined (`ref` -1): a compact
   * series' handle whose series expired places its key again (lib/lookup.js revive); another
   * method's state is defined as its first datum defines it.
   */
  defineHandle(s) {
    if (!this.isCompact(s.method)) {
      if (s.method.kind === SeriesKind.Counter) this.defineCounter(s);
      else this.defineSeries(s);
      return;
    }
    this.attach(s, revive(this, s));
  }

  /**
   * Handle state `s` records into compact series `eid` from now on: listed in `names` in place of
   * the name (a handle costs no more than its state), or, when the series has a handle already
   * (an old handle whose series expired came back to a key bound again since), in `handles`.
   */
  attach(s, eid) {
    s.ref = this.refs[eid];
    if (typeof this.names[eid] === 'string') {
      this.names[eid] = s;
      return;
    }
    const more = this.handles.get(eid);
    if (more === undefined) this.handles.set(eid, [s]);
    else more.push(s);
  }

  defineSeries(series) {
    const { id } = this.engine.define(series.method.kind, series.method.name, series.path, series.id);
    series.ref = id;
    this.byId[id] = series;
  }

  addGauge(series) {
    if (this.stopped) return;
    if (series.ref < 0) this.defineSeries(series);
    this.gauges.add(series);
  }

  removeGauge(series) {
    this.gauges.delete(series);
  }

  /** A gauge's number now, as JSON: `null` (counted and reported) when its function fails. */
  gaugeJson(series) {
    const where = `gauge at ${JSON.stringify([...series.path, series.id])}`;
    let value;
    try {
      value = series.fn();
    } catch (err) {
      this.errors += 1;
      this.report(err, `the function of the ${where} threw`);
      return 'null';
    }
    if (typeof value === 'number' && Number.isFinite(value)) return JSON.stringify(value);
    this.errors += 1;
    this.report(new TypeError(`the function of the ${where} returned ${describe(value)}, not a finite number`));
    return 'null';
  }

  defineMeter(series) {
    this.defineCounter(series);
    if (this.meterCell < 0) {
      this.meterCell = this.engine.meterClock();
      this.meterTick = clockCells[this.meterCell];
    }
  }

  tickMeters() {
    this.meterTick = clockCells[this.meterCell];
    this.engine.tickMeters();
  }

  defineCounter(series) {
    const { id, slot } = this.engine.define(series.method.kind, series.method.name, series.path, series.id);
    while (this.pages.length <= slot >> PAGE_SHIFT) this.pages.push(this.engine.page(this.pages.length));
    series.ref = slot;
    this.byId[id] = series;
  }

  // ---- bind() -------------------------------------------------------------------------------

  /**
   * The bind() closure of series state `s`, or of compact series `s` (an engine id) bound as
   * `id` with `tags` (one per series: bind twice, get the same).
   */
  bind(method, s, id, tags) {
    if (typeof s === 'number') return this.bindCompact(method, s, id, tags);
    let bound = this.bound.get(s);
    if (bound === undefined) {
      bound = method.bind(this, s);
      if (this.overflows.has(s)) {
        // Every value through it is one more value in an overflow series.
        const record = bound;
        bound = (value) => {
          this.countOverflow();
          record(value);
        };
      }
      this.bound.set(s, bound);
    }
    return bound;
  }

  /**
   * A bind() handle of compact series `eid`: a state of its own, which the trie does not hold
   * (handles are few and hot: plain fields are the fastest to record into). It is listed under
   * its series until the series expires; then its next datum places the key again (defineHandle),
   * so a handle the program dropped leaves nothing behind, and one it keeps stays valid.
   */
  bindCompact(method, eid, id, tags) {
    const name = this.names[eid];
    if (typeof name !== 'string') return name.bound;
    const s = method.state(method, this.nodes[eid].keys, name);
    // What the name was made from, to count its tag set again when it comes back (revive).
    const bare = String(id);
    if (tags !== undefined && name !== bare && name.startsWith(`${bare}{`)) s.bare = bare;
    let bound = method.bind(this, s);
    if (this.overflows.has(eid)) {
      // Every value through it is one more value in an overflow series.
      const record = bound;
      bound = (value) => {
        this.countOverflow();
        record(value);
      };
    }
    s.bound = bound;
    this.attach(s, eid);
    return bound;
  }

  // ---- closing intervals ----------------------------------------------------------------------

  rotate(target) {
    const k = this.cur;
    this.close(k, target);
    this.cur = target;
    this.owner.endTime = this.endTime = this.endOf(target);
    const data = this.owner.listenerCount('sample') > 0 ? JSON.parse(this.engine.closedTree()) : undefined;
    this.onClosed(k);
    if (data !== undefined) this.owner.emit('sample', data, this.owner.id);
    if (this.persist) this.owner.emit('reset', this.endTime);
    this.owner.emit('newInterval');
  }

  /** Hands interval k's state to the engine as a snapshot and empties it (`next` comes next). */
  close(k, next) {
    const entered = this.entered;
    this.entered = [];
    for (let i = 0; i < entered.length; i++) {
      const s = entered[i];
      // Out of every interval: its next record enters the next one (see enter).
      s.cur = NaN;
      if (s.method.kind !== SeriesKind.Counter || this.shared) continue;
      // A counter kept in fields (see `shared`): into its page, which the engine reads now (added:
      // the series' compact calls and its other handles add theirs).
      const page = this.pages[s.ref >> PAGE_SHIFT];
      const o = s.ref & PAGE_MASK;
      page[o] += s.count;
      page[o + 1] += s.total;
      s.count = 0;
      s.total = 0;
    }
    if (!this.shared) this.flushCounts();
    const ids = [];
    const json = [];
    const at = [];
    for (const series of this.persist ? this.jsSeries : this.touched) {
      let text;
      try {
        // A JSON copy, as 0.3.0 delivered: later changes to a set object do not alter the past,
        // and a logger's toJSON() runs now.
        text = JSON.stringify(series.method.jsValue(series));
      } catch (err) {
        this.errors += 1;
        this.report(err, `serializing "${series.method.name}" at ${JSON.stringify([...series.path, series.id])}`);
        continue;
      }
      ids.push(series.ref);
      json.push(text === undefined ? '' : text);
      at.push(series.at);
    }
    for (const series of this.gauges) {
      ids.push(series.ref);
      json.push(this.gaugeJson(series));
      at.push(0);
    }
    for (const set of this.sets.values()) set.collect(ids, json, at);
    for (const series of this.touched) {
      series.touched = false;
      if (!this.persist) series.logger = null;
    }
    this.touched = [];
    const expired = this.engine.closeInterval(k, next, ids, json, at, { dropped: this.dropped, invalid: this.invalidCount, overflowed: this.overflowed, errors: this.errors });
    if (expired.length > 0) this.expire(expired);
    // The engine drained the batch.
    this.fill = 0;
    this.run = -1;
    this.dropped = 0;
    this.invalidCount = 0;
    this.overflowed = 0;
    this.errors = 0;
  }

  /**
   * Compact counters' counts and totals into their pages (see `shared`). A pass over the series
   * ids, whatever was written: cheaper per record than listing the written ones, and a close
   * happens once per interval (~0.1 ms per 100,000 series).
   */
  flushCounts() {
    const { counts, totals, refs, pages } = this;
    for (let e = 0; e < counts.length; e++) {
      const n = counts[e];
      if (n === 0) continue;
      const ref = refs[e];
      const page = pages[ref >> PAGE_SHIFT];
      const o = ref & PAGE_MASK;
      page[o] += n;
      page[o + 1] += totals[e];
      counts[e] = 0;
      totals[e] = 0;
    }
  }

  /**
   * Series `ids` expired in the engine (options.expireAfter), which may give their ids to new
   * series: their states are undefined again (`ref` -1: the next datum defines the series anew,
   * with fresh state), and those no bind() handle holds leave the lookup tries, so that nothing
   * here keeps them. Compact series leave the tries and the collector's arrays; their handles'
   * states are undefined too. A handle's state stays valid: recording through it brings the
   * series back under the same key, at no cost on the handle's path (its first datum in an
   * interval takes the slow branch anyway: Collector#enter).
   */
  expire(ids) {
    const gone = [];
    let compact = false;
    let js = false;
    for (let i = 0; i < ids.length; i++) {
      if (this.nodes[ids[i]] !== undefined) {
        const handle = this.names[ids[i]];
        if (typeof handle !== 'string') handle.ref = -1;
        const more = this.handles.get(ids[i]);
        if (more !== undefined) {
          this.handles.delete(ids[i]);
          for (const h of more) h.ref = -1;
        }
        // Marked for forget in place: a storm expires 100,000 series per interval, and a list
        // or set of them would be megabytes of garbage each time.
        this.refs[ids[i]] = GONE;
        compact = true;
        continue;
      }
      const s = this.byId[ids[i]];
      if (s === undefined) continue;
      this.byId[ids[i]] = undefined;
      s.ref = -1;
      if (s.method.jsValue !== undefined) {
        s.value = undefined;
        s.logger = null;
        js = true;
      }
      if (!this.bound.has(s)) gone.push(s);
    }
    if (js) this.jsSeries = this.jsSeries.filter((s) => s.ref >= 0);
    if (!compact && gone.length === 0) return;
    forget(this, gone, compact ? ids : []);
    if (!compact) return;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (this.refs[id] !== GONE) continue;
      this.nodes[id] = undefined;
      this.names[id] = undefined;
      this.refs[id] = -1;
    }
  }

  /** How many series the engine, the lookups and (delivering) the registry hold. */
  seriesStats() {
    return {
      engine: this.engine.liveSeries,
      lookup: this.seriesCount,
      registry: this.delivering && !this.stopped ? this.engine.gatheredSeries() : null,
    };
  }

  // ---- timers and delivery --------------------------------------------------------------------

  /** Master or standalone: keep closed intervals for delivery, with the workers' snapshots. */
  startDelivering() {
    this.engine.export(origin(this.owner), this.exportOptions);
    this.engine.setMaxClusterSeries(this.maxClusterSeries);
    this.delivering = true;
    this.onClosed = (k) => {
      this.engine.keep();
      this.ready.push(k);
    };
    const { detach, resync } = listenToWorkers(this.owner, this);
    this.detach = detach;
    // Messages are decoded off the JS thread: a resync found after the last message of a burst
    // is asked for at the next tick.
    this.resync = () => resync(this.engine.takeResyncs());
    this.arm();
  }

  /**
   * Cluster worker: ship each closed interval to the master. Its threads' snapshots of an interval
   * arrive around the same boundary; they are forwarded a quarter interval later.
   */
  startShipping() {
    const { key, send, check, detach } = shipper(this.owner, () => this.engine.resync());
    this.detach = detach;
    this.onClosed = (k) => {
      // Through the native transport when it is up (nothing comes back), else over IPC, after
      // any earlier ones the transport could not write (it went down; it connects again).
      const texts = this.engine.shipTo(key());
      if (texts.length === 0) check();
      for (const text of texts) send(text);
      this.forwardAt = this.endOf(k) + this.interval / 4;
    };
    this.forward = () => {
      const posted = this.engine.forwardTo(key());
      // (The worker's own snapshots the native transport could not write come first, thread ''.)
      for (let i = 0; i < posted.length; i += 2) send(posted[i + 1], posted[i] === '' ? undefined : Number(posted[i]));
    };
    this.arm();
  }

  /**
   * Worker thread: post each closed interval to the main-thread instance named `name`. Returns
   * false (and changes nothing) when there is none. When this thread ends by itself, its open
   * interval is posted on 'exit'; when it is terminated, the engine posts what it holds.
   */
  startFeeding(name) {
    const label = String(threadId);
    if (!this.engine.feed(name, label)) return false;
    this.shared = true;
    this.onClosed = () => {
      // The host stopped: look for a new one for the next intervals.
      if (!this.engine.post()) this.engine.feed(name, label);
    };
    const onExit = () => {
      if (this.stopped) return;
      this.close(this.cur, this.cur + 1);
      this.onClosed(this.cur);
      // Posted: the engine must not post the (empty) next interval again when it is dropped.
      this.stopped = true;
      this.engine.release();
    };
    process.once('exit', onExit);
    this.detach = () => process.removeListener('exit', onExit);
    this.arm();
    return true;
  }

  /** A main-thread instance named `name` receives its process's threads of the same name. */
  hostThreads(name) {
    this.engine.hostThreads(name);
  }

  arm() {
    let due = Math.min(this.endTime, this.forwardAt);
    if (this.ready.length > 0) due = Math.min(due, this.endOf(this.ready[0]) + this.deliveryDelay);
    this.timer = setTimeout(() => this.tick(), Math.max(0, due - Date.now()));
    // Like Node's own monitoring timers, an instance does not keep its process alive by itself
    // (panopticon 0.3.0's timers did: keepAlive restores that); one that serves HTTP does, as an
    // HTTP server would (its server runs on a native thread, which Node does not see).
    if (!this.keepAlive && this.servers.length === 0) this.timer.unref();
  }

  tick() {
    this.timer = null;
    try {
      // The JS timer may run a little before the clock thread publishes: ask the clock directly.
      this.sync(Math.max(clockCells[this.cell], intervalIndex(this.startTime, this.interval)));
      const now = Date.now();
      if (now >= this.forwardAt) {
        this.forwardAt = Infinity;
        this.forward();
      }
      while (!this.stopped && this.ready.length > 0 && this.endOf(this.ready[0]) + this.deliveryDelay <= now) {
        // A delivery that would wait is tried again on the next timer (a millisecond later).
        if (!this.deliverNext()) break;
      }
      if (!this.stopped) this.resync();
    } finally {
      if (!this.stopped) this.arm();
    }
  }

  /**
   * Emits the delivery of the first interval waiting for it, and returns true; or returns false at
   * once when the engine would wait for it (the master's own interval, workers' snapshots not
   * merged yet within their patience, the lock of the merging thread): the event loop never
   * blocks on the native threads.
   * With the default transformer its trees are lazy properties: each is written (natively) and
   * parsed when first read, so unread trees cost nothing. A custom transformer needs every
   * process's tree, so they are read at once.
   */
  deliverNext() {
    const owner = this.owner;
    const k = this.ready[0];
    const delivered = this.engine.deliver(k);
    if (delivered === null) return false;
    this.ready.shift();
    const outline = JSON.parse(delivered.outline());
    const meta = { pid: process.pid, ...outline.meta };
    for (const description of outline.collisions) {
      this.report(new Error(`${description} collides with another series at the same place of the delivery tree; it is left out of interval ${this.endOf(k)}`));
    }
    for (const { code, message } of outline.warnings) warn(owner, code, message);
    // Registered loggers' leaves merge now: their merge(a, b) is user code whose errors count in
    // this delivery's meta.
    const custom = [];
    for (const { method, path, id, leaves } of outline.custom) {
      const leaf = this.mergeCustom(method, leaves, meta);
      if (leaf !== undefined) custom.push({ path, id, leaf });
    }
    const master = () => JSON.parse(delivered.master() ?? '{}');
    const worker = (id) => JSON.parse(delivered.worker(id));
    const data = {};
    if (this.transformer === defaultTransformer) {
      lazy(data, 'master', master);
      if (outline.workers.length > 0) {
        data.workers = {};
        for (const id of outline.workers) lazy(data.workers, String(id), () => worker(id));
      }
    } else {
      const add = (processData, id) => {
        try {
          merge(data, this.transformer(processData, id));
        } catch (err) {
          meta.errors += 1;
          this.report(err, `the transformer threw for ${id === 'master' ? 'the master' : `worker ${id}`}`);
        }
      };
      add(master(), 'master');
      for (const id of outline.workers) add(worker(id), id);
    }
    if (outline.threads.length > 0) {
      data.threads = {};
      for (const label of outline.threads) lazy(data.threads, label, () => JSON.parse(delivered.thread(label)));
    }
    lazy(data, 'cluster', () => {
      const tree = JSON.parse(delivered.cluster());
      for (const { path, id, leaf } of custom) place(tree, path, id, leaf);
      return tree;
    });
    owner.emit('delivery', { id: owner.id, name: owner.name, interval: this.interval / this.scaleFactor, data, meta });
    return true;
  }

  /** A registered logger's leaves from every process, merged by its class's static merge(a, b). */
  mergeCustom(name, leaves, meta) {
    const method = byName.get(name);
    const merge2 = method && method.loggerClass && method.loggerClass.merge;
    if (typeof merge2 !== 'function' || leaves.length === 0) return undefined;
    try {
      return leaves.reduce((a, b) => merge2.call(method.loggerClass, a, b));
    } catch (err) {
      meta.errors += 1;
      this.report(err, `${name}.merge threw`);
      return undefined;
    }
  }

  /**
   * A cluster worker's snapshot (base64 text) for this instance, from one of its threads if given.
   * Returns the ids of the workers that must resync (from this or earlier messages).
   */
  receive(workerId, text, thread) {
    const threadOk = thread === undefined || (Number.isInteger(thread) && thread >= 0 && thread < 2 ** 32);
    if (typeof text === 'string' && threadOk) return this.engine.receive(workerId, thread, text, this.cur);
    this.engine.noteDecodeError();
    return [];
  }

  /**
   * A message of cluster worker `workerId` for instance `key`, which this process does not have:
   * counted in meta.unmatched, warned about once per worker and key.
   */
  unmatched(workerId, key, message) {
    this.engine.noteUnmatched(`${workerId} ${key}`, message);
  }

  /** The native transport's frames for instance `key` come here (none when null). */
  route(key) {
    if (!this.stopped) this.engine.route(key ?? undefined);
  }

  /** Forgets a worker that exited. */
  forget(workerId) {
    this.engine.forgetWorker(workerId);
  }

  /** Starts an HTTP server for this instance's exports (options checked by lib/export.js). */
  serve(spec) {
    if (this.stopped) throw new Error('serve() on a stopped instance');
    if (!this.delivering) {
      const error = new Error('serve() works on an instance that delivers (the cluster master, a standalone process or thread), not on a cluster worker or a thread that feeds its process');
      error.code = 'PANOPTIC_NOT_DELIVERING';
      throw error;
    }
    let server;
    try {
      server = this.engine.serve(spec);
    } catch (error) {
      // Ranges the core checks (bucket order, quantiles, the name prefix, history).
      if (error.code === 'ERR_OUT_OF_RANGE') throw Object.assign(new RangeError(error.message), { code: error.code });
      throw error;
    }
    this.servers.push(server);
    if (this.timer !== null) this.timer.ref();
    const address = addressOf(server);
    if (spec.auth !== undefined && spec.tls === undefined && !isLoopback(address.address)) {
      warn(this.owner, INSECURE_AUTH, `serve() at ${address.url}: options.auth without options.tls sends the credentials in clear text over the network; give options.tls too (docs/security.md)`);
    }
    return address;
  }

  exportStats() {
    const { deliveries, influx, remoteWrite, otlp, own } = this.engine.exportStats();
    const servers = this.servers.map((server) => ({ url: addressOf(server).url, ...server.stats() }));
    const pusher = (stats) => (stats ? { ...stats, lastError: stats.lastError ?? null } : null);
    // panoptic's own metrics by family name, as /api/self writes them.
    const self = {};
    for (const { name, kind, unit, help, samples } of own) self[name] = { type: kind, unit: unit ?? null, help, samples };
    return { deliveries, influx: pusher(influx), remoteWrite: pusher(remoteWrite), otlp: pusher(otlp), servers, self };
  }

  stop() {
    if (this.stopped) return;
    this.stopped = true;
    for (const server of this.servers) server.stop();
    this.servers = [];
    // NaN never equals the clock cell: every recorder takes the slow branch, which drops.
    this.cur = NaN;
    for (const s of this.entered) s.cur = NaN;
    clearTimeout(this.timer);
    this.timer = null;
    this.ready = [];
    this.gauges.clear();
    this.sets.clear();
    this.detach();
    this.engine.release();
    this.awaitFlush();
  }

  /**
   * After stop(), the InfluxDB pusher has 2 s on its own thread to send what is queued; a ref'd
   * timer keeps the process alive until it is done, so a program that ends right after stop()
   * still pushes its last intervals (an explicit process.exit() does not wait).
   */
  awaitFlush() {
    if (!this.engine.pushing()) return;
    const giveUp = Date.now() + FLUSH_WAIT_MS;
    const timer = setInterval(() => {
      if (!this.engine.pushing() || Date.now() > giveUp) clearInterval(timer);
    }, 20);
  }
}

module.exports = { Collector };
