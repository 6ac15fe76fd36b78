'use strict';

// The interval machinery behind one Panopticon instance: series, the current interval's state,
// collection at each boundary, delivery half an interval later.
//
// Which interval a datum belongs to. `cur` is the number k of the interval whose data the state
// holds (it spans [startTime + k*interval, startTime + (k+1)*interval)). A native thread publishes
// the wall clock's interval number in the clock cell of this instance (panoptic-core's clock.rs).
// Every record first compares the cell with `cur`; when they differ the interval is over: the
// state is collected as interval `cur`, emptied, and `cur` moves on (sync/rotate) before the
// datum is written. The boundary timer does the same when no record comes. So a datum lands in
// the interval the clock showed when it was recorded, whether or not a timer has fired yet
// (panopticon 0.3.0 lost the first datum after a boundary, and a stalled event loop lumped
// everything into one interval).

const { NativeEngine, intervalIndex, clockCells, PAGE_SLOTS, BATCH_LENGTH, RECORD_WIDTH } = require('./native');
const { RECORD_ID } = require('./methods');
const { place, merge, defaultTransformer } = require('./tree');
const { checkKey } = require('./args');
const { listenToWorkers, sendToMaster } = require('./cluster');

const NOOP = () => {};

class Collector {
  constructor(owner, options) {
    this.owner = owner;
    this.interval = options.interval;
    this.scaleFactor = options.scaleFactor;
    this.persist = options.persist;
    this.startTime = options.startTime;
    this.transformer = options.transformer || defaultTransformer;
    this.engine = new NativeEngine(this.startTime, this.interval, this.scaleFactor, this.persist);
    this.cell = this.engine.cell;
    this.cur = clockCells[this.cell];
    this.endTime = this.endOf(this.cur);
    this.stopped = false;

    this.roots = []; // per method index: trie of path elements -> id -> handle
    this.pages = []; // counter pages (Float64Array of PAGE_SLOTS)
    this.batch = new Float64Array(BATCH_LENGTH);
    this.fill = 0;
    this.nativeSeries = []; // by native series id
    this.jsSeries = []; // set / registered loggers that ever received a datum
    this.touched = []; // JS series written in the current interval
    this.dropped = 0;
    this.errors = 0;

    // Master/standalone only: collected intervals waiting for their delivery time, and worker
    // data that arrived before this process closed the interval it belongs to.
    this.ready = [];
    this.early = new Map();
    this.deliveryDelay = this.interval / 2;
    this.onCollected = NOOP;
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
    const f = this.fill;
    b[f] = sid;
    b[f + 1] = x;
    this.fill = f + 2;
    if (this.fill === BATCH_LENGTH) this.drain();
  }

  drain() {
    this.engine.push(this.batch, this.fill);
    this.fill = 0;
  }

  touch(series) {
    series.touched = true;
    this.touched.push(series);
    if (!series.live) {
      series.live = true;
      this.jsSeries.push(series);
    }
  }

  defineCounter(series) {
    const { id, slot } = this.engine.define(series.method.kind);
    this.nativeSeries[id] = series;
    const page = Math.floor(slot / PAGE_SLOTS);
    while (this.pages.length <= page) this.pages.push(new Float64Array(PAGE_SLOTS));
    return { page: this.pages[page], offset: slot % PAGE_SLOTS };
  }

  defineSummary(series) {
    const { id } = this.engine.define(series.method.kind);
    this.nativeSeries[id] = series;
    return id;
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
      const series = { method, path: keys, id: String(id), value: undefined, logger: null, touched: false, live: false };
      handle = method.makeHandle(this, series, method);
      node.leaves.set(String(id), handle);
    }
    node.leaves.set(id, handle);
    return handle;
  }

  // ---- collection -----------------------------------------------------------------------------

  rotate(target) {
    const k = this.cur;
    const collected = this.collect(k);
    this.cur = target;
    this.owner.endTime = this.endTime = this.endOf(target);
    this.onCollected(collected);
    this.owner.emit('sample', collected.data, this.owner.id);
    if (this.persist) this.owner.emit('reset', this.endTime);
    this.owner.emit('newInterval');
  }

  /** Turns the current state into interval k's data tree and empties it. */
  collect(k) {
    const timeStamp = this.endOf(k);
    if (this.fill > 0) this.drain();
    const records = this.engine.collect(this.pages);
    let errors = this.errors + this.engine.takeRejected();
    const data = {};
    const branches = new Set();
    const put = (series, leaf) => {
      if (!place(data, branches, series.path, series.id, leaf)) {
        errors += 1;
        this.report(new Error(`"${series.method.name}" at path ${JSON.stringify(series.path)} id ${JSON.stringify(series.id)} collides with another series at the same place of the delivery tree; it is left out of interval ${timeStamp}`));
      }
    };
    for (let o = 0; o < records.length; o += RECORD_WIDTH) {
      const series = this.nativeSeries[records[o + RECORD_ID]];
      put(series, series.method.leaf(records, o, timeStamp, this.scaleFactor));
    }
    for (const series of this.persist ? this.jsSeries : this.touched) {
      let leaf;
      try {
        // A JSON copy, as 0.3.0 delivered: later changes to a set object do not alter the past,
        // and a logger's toJSON() runs now.
        leaf = JSON.parse(JSON.stringify(series.method.jsLeaf(series, timeStamp)));
      } catch (err) {
        errors += 1;
        this.report(err, `serializing "${series.method.name}" at ${JSON.stringify([...series.path, series.id])}`);
        continue;
      }
      if (leaf !== undefined) put(series, leaf);
    }
    for (const series of this.touched) {
      series.touched = false;
      if (!this.persist) series.logger = null;
    }
    this.touched = [];
    const meta = { dropped: this.dropped, errors };
    this.dropped = 0;
    this.errors = 0;
    return { k, endTime: timeStamp, data, meta, workers: [] };
  }

  // ---- timers and delivery --------------------------------------------------------------------

  /** Master or standalone: keep collected intervals for delivery, with the workers' data. */
  startDelivering() {
    this.onCollected = (collected) => {
      const early = this.early.get(collected.k);
      if (early) collected.workers.push(...early);
      for (const k of this.early.keys()) if (k <= collected.k) this.early.delete(k);
      this.ready.push(collected);
    };
    this.detach = listenToWorkers(this.owner, this);
    this.arm();
  }

  /** Cluster worker: ship each collected interval to the master. */
  startShipping() {
    this.onCollected = sendToMaster(this.owner);
    this.arm();
  }

  arm() {
    let due = this.endTime;
    if (this.ready.length > 0) due = Math.min(due, this.ready[0].endTime + this.deliveryDelay);
    this.timer = setTimeout(() => this.tick(), Math.max(0, due - Date.now()));
  }

  tick() {
    this.timer = null;
    try {
      // The JS timer may run a little before the clock thread publishes: ask the clock directly.
      this.sync(Math.max(clockCells[this.cell], intervalIndex(this.startTime, this.interval)));
      const now = Date.now();
      while (!this.stopped && this.ready.length > 0 && this.ready[0].endTime + this.deliveryDelay <= now) {
        this.deliver(this.ready.shift());
      }
    } finally {
      if (!this.stopped) this.arm();
    }
  }

  deliver(collected) {
    const owner = this.owner;
    const meta = { pid: process.pid, dropped: collected.meta.dropped, errors: collected.meta.errors };
    const data = {};
    const add = (processData, id) => {
      try {
        merge(data, this.transformer(processData, id));
      } catch (err) {
        meta.errors += 1;
        this.report(err, `the transformer threw for ${id === 'master' ? 'the master' : `worker ${id}`}`);
      }
    };
    add(collected.data, 'master');
    for (const worker of collected.workers) add(worker.data, worker.id);
    owner.emit('delivery', {
      id: owner.id,
      name: owner.name,
      interval: this.interval / this.scaleFactor,
      data,
      meta,
    });
  }

  /** Data a cluster worker collected for interval k (see cluster.js). */
  receive(workerId, k, data) {
    const entry = { id: workerId, data };
    const ready = this.ready.find((c) => c.k === k);
    if (ready) {
      ready.workers.push(entry);
    } else if (k >= this.cur && k <= this.cur + 1) {
      // The worker closed interval k before this process did.
      if (!this.early.has(k)) this.early.set(k, []);
      this.early.get(k).push(entry);
    }
    // Otherwise it is late (already delivered) or bogus: dropped, never merged elsewhere.
  }

  stop() {
    if (this.stopped) return;
    this.stopped = true;
    // NaN never equals the clock cell: every handle takes the slow branch, which drops.
    this.cur = NaN;
    clearTimeout(this.timer);
    this.timer = null;
    this.ready = [];
    this.early.clear();
    this.detach();
    this.engine.close();
  }
}

function newNode() {
  return { branches: new Map(), leaves: new Map() };
}

module.exports = { Collector };
