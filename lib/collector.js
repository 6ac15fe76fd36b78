'use strict';

// The interval machinery behind one Panopticon instance: series, the current interval's state,
// closing each interval at its boundary, delivery `deliveryDelay` later.
//
// Which interval a datum belongs to. `cur` is the number k of the interval whose data the state
// holds (it spans [startTime + k*interval, startTime + (k+1)*interval)). A native thread publishes
// the wall clock's interval number in the clock cell of this instance (panoptic-core's clock.rs).
// Every record first compares the cell with `cur`; when they differ the interval is over: the
// state is closed as interval `cur`, emptied, and `cur` moves on (sync/rotate) before the datum
// is written. The boundary timer does the same when no record comes. So a datum lands in the
// interval the clock showed when it was recorded, whether or not a timer has fired yet
// (panopticon 0.3.0 lost the first datum after a boundary, and a stalled event loop lumped
// everything into one interval).
//
// Where the data goes. A closed interval is a snapshot in the native engine. Its role decides
// what happens to it (startDelivering / startShipping / startFeeding):
// - master or standalone: kept; the engine gathers the workers' and threads' snapshots of the same
//   interval, and at delivery time merges them and writes the delivery's trees;
// - cluster worker: shipped to the master (cluster.js), with its threads' snapshots;
// - worker thread whose process has a main-thread instance of the same name: posted to it through
//   process memory (no serialization).

const { threadId } = require('worker_threads');
const { NativeEngine, intervalIndex, clockCells, PAGE_SLOTS, BATCH_LENGTH } = require('./native');
const { byName } = require('./methods');
const { merge, place, lazy, defaultTransformer } = require('./tree');
const { checkKey, describe } = require('./args');
const { listenToWorkers, shipper } = require('./cluster');

const NOOP = () => {};

class Collector {
  constructor(owner, options) {
    this.owner = owner;
    this.interval = options.interval;
    this.scaleFactor = options.scaleFactor;
    this.persist = options.persist;
    this.startTime = options.startTime;
    this.deliveryDelay = options.deliveryDelay;
    this.transformer = options.transformer || defaultTransformer;
    this.engine = new NativeEngine(this.startTime, this.interval, this.scaleFactor, this.persist, options.histogram);
    this.cell = this.engine.cell;
    this.cur = this.engine.open;
    this.endTime = this.endOf(this.cur);
    this.stopped = false;

    this.roots = []; // per method index: trie of path elements -> id -> handle
    // Native memory the handles write into: counter pages, and the batch of (series id, value)
    // pairs whose last cell (index BATCH_LENGTH) is the fill.
    this.pages = [];
    this.batch = this.engine.batch();
    this.jsSeries = []; // set / registered-logger series that ever received a datum
    this.touched = []; // JS series written in the current interval
    this.gauges = new Set(); // gauge series whose function is called at each close
    this.meterCell = -1; // the meters' 5-second grid in clockCells, once there is a meter
    this.meterTick = NaN;
    this.dropped = 0;
    this.errors = 0;

    // What happens to a closed interval (set by the role), and the role's timers.
    this.onClosed = NOOP;
    this.ready = []; // master: closed intervals (k) waiting for their delivery time
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

  drop() {
    if (clockCells[this.cell] !== this.cur && !this.sync()) return;
    this.dropped += 1;
  }

  fail(err, context) {
    if (clockCells[this.cell] !== this.cur && !this.sync()) return;
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

  append(sid, x) {
    const b = this.batch;
    const f = b[BATCH_LENGTH];
    b[f] = sid;
    b[f + 1] = x;
    b[BATCH_LENGTH] = f + 2;
    if (f + 2 === BATCH_LENGTH) this.engine.drain();
  }

  touch(series) {
    series.touched = true;
    this.touched.push(series);
    if (series.sid < 0) {
      series.sid = this.define(series);
      this.jsSeries.push(series);
    }
  }

  define(series) {
    return this.engine.define(series.method.kind, series.method.name, series.path, series.id).id;
  }

  addGauge(series) {
    if (this.stopped) return;
    if (series.sid < 0) series.sid = this.define(series);
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
    const slots = this.defineCounter(series);
    if (this.meterCell < 0) {
      this.meterCell = this.engine.meterClock();
      this.meterTick = clockCells[this.meterCell];
    }
    return slots;
  }

  tickMeters() {
    this.meterTick = clockCells[this.meterCell];
    this.engine.tickMeters();
  }

  defineCounter(series) {
    const { slot } = this.engine.define(series.method.kind, series.method.name, series.path, series.id);
    const page = Math.floor(slot / PAGE_SLOTS);
    while (this.pages.length <= page) this.pages.push(this.engine.page(this.pages.length));
    return { page: this.pages[page], offset: slot % PAGE_SLOTS };
  }

  // ---- key resolution -------------------------------------------------------------------------

  /** The handle of `method` at `path`/`id`: a walk of nested Maps, no string building. */
  handle(method, path, id) {
    let node = this.roots[method.index];
    if (node !== undefined && (path === null || path === undefined || Array.isArray(path))) {
      if (path) {
        for (let i = 0; i < path.length && node !== undefined; i++) node = node.branches.get(path[i]);
      }
      if (node !== undefined) {
        const handle = node.leaves.get(id);
        if (handle !== undefined) return handle;
      }
    }
    return this.resolve(method, path, id);
  }

  resolve(method, path, id) {
    const keys = checkKey(path, id);
    if (this.stopped) return NOOP;
    let node = this.roots[method.index];
    if (node === undefined) node = this.roots[method.index] = newNode();
    for (let i = 0; i < keys.length; i++) {
      let next = node.branches.get(keys[i]);
      if (next === undefined) {
        next = newNode();
        node.branches.set(keys[i], next);
      }
      // Cache the key as given too (1 and '1' are the same place), so the next walk hits.
      node.branches.set(path[i], next);
      node = next;
    }
    let handle = node.leaves.get(String(id));
    if (handle === undefined) {
      const series = { method, path: keys, id: String(id), sid: -1, value: undefined, at: 0, logger: null, touched: false };
      handle = method.makeHandle(this, series, method);
      node.leaves.set(String(id), handle);
    }
    node.leaves.set(id, handle);
    return handle;
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
      ids.push(series.sid);
      json.push(text === undefined ? '' : text);
      at.push(series.at);
    }
    for (const series of this.gauges) {
      ids.push(series.sid);
      json.push(this.gaugeJson(series));
      at.push(0);
    }
    for (const series of this.touched) {
      series.touched = false;
      if (!this.persist) series.logger = null;
    }
    this.touched = [];
    this.engine.closeInterval(k, next, ids, json, at, this.dropped, this.errors);
    this.dropped = 0;
    this.errors = 0;
  }

  // ---- timers and delivery --------------------------------------------------------------------

  /** Master or standalone: keep closed intervals for delivery, with the workers' snapshots. */
  startDelivering() {
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
    const { ship, detach } = shipper(this.owner, () => this.engine.resync());
    this.detach = detach;
    this.onClosed = (k) => {
      ship(this.engine.ship());
      this.forwardAt = this.endOf(k) + this.interval / 4;
    };
    this.forward = () => {
      const posted = this.engine.forward();
      for (let i = 0; i < posted.length; i += 2) ship(posted[i + 1], Number(posted[i]));
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
        this.deliver(this.ready.shift());
      }
      if (!this.stopped) this.resync();
    } finally {
      if (!this.stopped) this.arm();
    }
  }

  /**
   * Emits interval k's delivery. With the default transformer its trees are lazy properties: each
   * is written (natively) and parsed when first read, so unread trees cost nothing. A custom
   * transformer needs every process's tree, so they are read at once.
   */
  deliver(k) {
    const owner = this.owner;
    const delivered = this.engine.deliver(k);
    const outline = JSON.parse(delivered.outline());
    const meta = { pid: process.pid, ...outline.meta };
    for (const description of outline.collisions) {
      this.report(new Error(`${description} collides with another series at the same place of the delivery tree; it is left out of interval ${this.endOf(k)}`));
    }
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

  /** Forgets a worker that exited. */
  forget(workerId) {
    this.engine.forgetWorker(workerId);
  }

  stop() {
    if (this.stopped) return;
    this.stopped = true;
    // NaN never equals the clock cell: every handle takes the slow branch, which drops.
    this.cur = NaN;
    clearTimeout(this.timer);
    this.timer = null;
    this.ready = [];
    this.gauges.clear();
    this.detach();
    this.engine.release();
  }
}

function newNode() {
  return { branches: new Map(), leaves: new Map() };
}

module.exports = { Collector };
