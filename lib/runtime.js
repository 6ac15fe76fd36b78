'use strict';

// Runtime metrics (`runtime: true`, `p.collectRuntime(options)`; docs/runtime.md): what
// prom-client's collectDefaultMetrics() reports, under the names it uses on /metrics, as series of
// the instance (looked up as its public methods do), so that they merge across the cluster as
// every other series does.
//
// Names. A series is exported as its path and id joined by `_` (docs/prometheus.md), so prom-
// client's names come from the paths ['process'] and ['nodejs'] and ids that are the rest of the
// name (`process` + `resident_memory_bytes`); labels are tags (written into the id). Times
// recorded into histograms are in the instance's time unit (ms / scaleFactor), so their ids say
// it: `_seconds` at scaleFactor 1000 (prom-client's names), `_milliseconds` at 1.
//
// What each kind of number becomes, and so how it merges (docs/runtime.md):
// - levels (memory, heap spaces, handles, fds) are gauges: they add up over processes and threads;
// - CPU seconds and event-loop active/idle seconds are counters (`inc` of the increase since the
//   previous read, the first read counting from the process's start, as prom-client's counters
//   do);
// - GC durations and event-loop delays are HDR `histogram` series: they merge exactly;
// - constants of a process (start time, max fds, Node's version) are `set` series: a sum of them
//   over processes means nothing, a `set` merges as the value of one process (the last written),
//   and each process's own stays in perProcess and /metrics.
//
// Cost (the JS thread's time per interval is what counts: BENCHMARKS.md). Everything but the GC
// durations is handed to the engine by a native sampler (src/loop_delay.rs) in the call that
// closes the interval: the JS thread makes no call and no JS value of its own for them. What
// needs V8 is read on the JS thread when the interval closes and written into the sampler's
// cells (a Float64Array over native memory); the process's CPU time, resident memory and open
// descriptors are read by the sampler's thread just before the interval ends (on Linux: /proc
// reads cost the JS thread about 0.1 ms per interval on the project's VM, cold). So each number
// belongs to the interval it was read in.
//
// The event-loop delay is sampled every `eventLoopResolution` ms by the sampler's thread, not by
// a timer on the JS thread: a timer wakes an idle loop at every sample, and the wake is what
// costs (~0.12 ms per JS timer run, ~0.06 ms per libuv timer run as
// perf_hooks.monitorEventLoopDelay() uses, on the project's VM: 1.2-2.7 ms per 200 ms at 10 ms).
// On Linux the sampler reads what the thread does (/proc): a loop waiting for events would run
// a due timer at once (delay 0, recorded without touching the thread); a busy one is sent an
// empty call, and the delay is how long it took to run it, as a timer's lateness. Elsewhere
// every sample sends the call. monitorEventLoopDelay() was not used for another reason too: its
// histogram can only be read as percentiles (no counts per bucket, no values), and percentiles
// of processes cannot be merged: recording each delay into panoptic's histogram is what makes
// the cluster's p99 the p99 of every process's delays together.
//
// In a worker thread only what belongs to the thread is collected (its isolate's heap, its GC, its
// event loop, its resources): CPU, resident memory, fds and the start time are the process's,
// and would be counted twice in the cluster.

const fs = require('fs');
const v8 = require('v8');
const { isMainThread } = require('worker_threads');
const { performance, PerformanceObserver, constants } = require('perf_hooks');
const { describe, taggedId } = require('./args');
const { unknownKeys, warn } = require('./warnings');
const { byName } = require('./methods');
const { lookup } = require('./lookup');
const { RuntimeSampler, RuntimeValue, RuntimeNative } = require('./addon');

const RUNTIME_OPTIONS = ['eventLoopResolution', 'arrayBuffers'];
const SAMPLES_DROPPED = 'PANOPTIC_RUNTIME_SAMPLES_DROPPED';
const DEFAULT_RESOLUTION_MS = 10;

const GC_KINDS = {
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
};

/**
 * `options.runtime` / `collectRuntime(options)`: `true`, `false`, `undefined` or an object of
 * RUNTIME_OPTIONS. Returns null (off) or the parsed options; throws a TypeError/RangeError
 * naming the option.
 */
function parseRuntime(runtime, where) {
  if (runtime === undefined || runtime === false || runtime === null) return null;
  if (runtime === true) return { eventLoopResolution: DEFAULT_RESOLUTION_MS, arrayBuffers: false };
  if (typeof runtime !== 'object' || Array.isArray(runtime)) {
    throw new TypeError(`${where} must be a boolean or an object, got ${describe(runtime)}`);
  }
  unknownKeys(runtime, RUNTIME_OPTIONS, where);
  const { eventLoopResolution = DEFAULT_RESOLUTION_MS, arrayBuffers = false } = runtime;
  if (typeof eventLoopResolution !== 'number') {
    throw new TypeError(`${where}.eventLoopResolution must be a number of ms, got ${describe(eventLoopResolution)}`);
  }
  if (!(Number.isInteger(eventLoopResolution) && eventLoopResolution >= 1 && eventLoopResolution <= 1000)) {
    throw new RangeError(`${where}.eventLoopResolution must be an integer from 1 to 1000 (ms), got ${describe(eventLoopResolution)}`);
  }
  if (typeof arrayBuffers !== 'boolean') {
    throw new TypeError(`${where}.arrayBuffers must be a boolean, got ${describe(arrayBuffers)}`);
  }
  return { eventLoopResolution, arrayBuffers };
}

/** The id suffix of times in the instance's unit (ms / scaleFactor). */
function timeUnit(scaleFactor) {
  if (scaleFactor === 1000) return '_seconds';
  if (scaleFactor === 1) return '_milliseconds';
  return '';
}

// prom-client's buckets of nodejs_gc_duration_seconds (0.001 to 5 s), in ms: dashboards and
// alerts made for prom-client query these `le` values. The exports give the GC histogram this
// layout unless the user names one for it (lib/export.js; docs/prometheus.md#buckets).
const GC_BUCKETS_MS = [1, 10, 100, 1000, 2000, 5000];

/**
 * The GC histogram's name on /metrics (without a prefix) at `scaleFactor`, and prom-client's
 * bounds in the instance's time unit (ms / scaleFactor: 0.001 ... 5 at 1000).
 */
function gcBuckets(scaleFactor) {
  return { name: `nodejs_gc_duration${timeUnit(scaleFactor)}`, bounds: GC_BUCKETS_MS.map((ms) => ms / scaleFactor) };
}

/** The soft limit of open files (/proc/self/limits), or undefined where there is none. */
function maxFds() {
  try {
    const line = fs.readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    const soft = line && Number(line.split(/\s+/)[3]);
    return Number.isFinite(soft) ? soft : undefined;
  } catch {
    return undefined;
  }
}

/** Open file descriptors (Linux: /proc/self/fd, less the one reading it), or undefined. */
function openFds() {
  try {
    return fs.readdirSync('/proc/self/fd').length - 1;
  } catch {
    return undefined;
  }
}

/** Node's version as prom-client's nodejs_version_info labels it. */
function versionTags() {
  const [major, minor, patch] = process.versions.node.split('.');
  return { version: process.version, major, minor, patch };
}

/**
 * Starts collecting the runtime metrics into instance `p` (collector `c`; options parsed by
 * parseRuntime). Returns a function that stops them; they also stop with the instance.
 */
function startRuntime(p, c, options) {
  const unit = timeUnit(c.scaleFactor);
  const toUnit = 1 / c.scaleFactor; // ms -> the instance's time unit
  const stops = [];

  // ---- the native side: the sampler thread, and what it hands the engine at each close --------
  const sampler = new RuntimeSampler(options.eventLoopResolution, () => {}, isMainThread, c.startTime, c.interval);
  const cells = sampler.cells();
  // Where each number goes: a route names a series, and a cell of `cells` or a native quantity.
  // The series is looked up as the public methods would (so a user's record of the same name is
  // the same series) and defined in the engine; when it expires (expireAfter: a resource type
  // gone for that long), the engine forgets the route, and the next close routes it anew.
  const routes = [];
  const connect = (r) => {
    const method = byName.get(r.method);
    const found = lookup(c, method, r.path, r.id);
    let id;
    if (typeof found === 'number') {
      // A compact series (lib/lookup.js): defined, and `found` is its id. It is held as a bind()
      // handle is, whose state's `ref` goes to -1 when the series expires.
      id = found;
      c.bindCompact(method, id, r.id, undefined);
      r.s = c.names[id];
    } else {
      r.s = found;
      if (r.s.ref < 0) {
        if (r.s.method.define !== undefined) r.s.method.define(c, r.s);
        else c.defineSeries(r.s);
      }
      // By series id: what `ref` holds, except for a counter, whose `ref` is its slot in the
      // counter pages; the collector's index of states by id has its id (a search, once per route).
      id = r.method === 'inc' ? c.byId.indexOf(r.s) : r.s.ref;
    }
    if (r.cell >= 0) sampler.route(r.cell, id, r.kind);
    else sampler.native(r.what, id, c.scaleFactor);
  };
  // 256 cells: Node's heap spaces (about 10, 3 numbers each) and resource types (a few dozen
  // kinds) leave most free; a number beyond them would not be reported.
  let cellsUsed = 0;
  /** A cell for series `method` `path` `id` (its `kind` of number), routed; -1 when none is left. */
  const cell = (method, path, id, kind) => {
    if (cellsUsed === cells.length) return -1;
    const r = { method, path, id, kind, cell: cellsUsed++, what: -1, s: null };
    routes.push(r);
    connect(r);
    return r.cell;
  };
  const native = (method, path, id, what) => {
    const r = { method, path, id, kind: -1, cell: -1, what, s: null };
    routes.push(r);
    connect(r);
  };

  // ---- constants of a process: `set` series, written once, handed over at each close ----------
  cells[cell('set', ['nodejs'], taggedId('version_info', versionTags()), RuntimeValue.Set)] = 1;
  if (isMainThread) {
    cells[cell('set', ['process'], 'start_time_seconds', RuntimeValue.Set)] = Math.round(Date.now() / 1000 - process.uptime());
    const max = maxFds();
    if (max !== undefined) cells[cell('set', ['process'], 'max_fds', RuntimeValue.Set)] = max;
  }

  // ---- the process: read natively (Linux), else here at each close --------------------------
  let readProcess = null;
  if (isMainThread && sampler.readsProcess) {
    native('inc', ['process'], 'cpu_user_seconds_total', RuntimeNative.CpuUser);
    native('inc', ['process'], 'cpu_system_seconds_total', RuntimeNative.CpuSystem);
    native('inc', ['process'], 'cpu_seconds_total', RuntimeNative.Cpu);
    native('gauge', ['process'], 'resident_memory_bytes', RuntimeNative.ResidentMemory);
    native('gauge', ['process'], 'open_fds', RuntimeNative.OpenFds);
  } else if (isMainThread) {
    const user = cell('inc', ['process'], 'cpu_user_seconds_total', RuntimeValue.Count);
    const system = cell('inc', ['process'], 'cpu_system_seconds_total', RuntimeValue.Count);
    const total = cell('inc', ['process'], 'cpu_seconds_total', RuntimeValue.Count);
    const rss = cell('gauge', ['process'], 'resident_memory_bytes', RuntimeValue.Gauge);
    const fds = openFds() === undefined ? -1 : cell('gauge', ['process'], 'open_fds', RuntimeValue.Gauge);
    // From the process's start, as prom-client counts.
    let cpu = { user: 0, system: 0 };
    readProcess = () => {
      const now = process.cpuUsage();
      cells[user] = (now.user - cpu.user) / 1e6;
      cells[system] = (now.system - cpu.system) / 1e6;
      cells[total] = cells[user] + cells[system];
      cpu = now;
      cells[rss] = process.memoryUsage.rss();
      if (fds >= 0) cells[fds] = openFds() ?? NaN;
    };
  }

  // ---- what needs V8: read here when each interval closes, written into the cells ------------
  const heapTotal = cell('gauge', ['nodejs'], 'heap_size_total_bytes', RuntimeValue.Gauge);
  const heapUsed = cell('gauge', ['nodejs'], 'heap_size_used_bytes', RuntimeValue.Gauge);
  const external = cell('gauge', ['nodejs'], 'external_memory_bytes', RuntimeValue.Gauge);
  const arrayBuffers = options.arrayBuffers ? cell('gauge', ['nodejs'], 'array_buffers_bytes', RuntimeValue.Gauge) : -1;
  const spaceCells = new Map(); // V8 space name -> the first of its three cells
  const spaceCell = (name) => {
    let first = spaceCells.get(name);
    if (first === undefined) {
      // prom-client's label: 'new_space' -> 'new'.
      const space = name.endsWith('_space') ? name.slice(0, -6) : name;
      first = cellsUsed;
      for (const what of ['total', 'used', 'available']) cell('gauge', ['nodejs'], taggedId(`heap_space_size_${what}_bytes`, { space }), RuntimeValue.Gauge);
      spaceCells.set(name, first);
    }
    return first;
  };
  const typeCells = new Map(); // resource type -> its cell
  const typeCounts = new Map();
  const resourcesTotal = cell('gauge', ['nodejs'], 'active_resources_total', RuntimeValue.Gauge);
  const getHandles = typeof process._getActiveHandles === 'function' ? process._getActiveHandles : null;
  const getRequests = typeof process._getActiveRequests === 'function' ? process._getActiveRequests : null;
  const handles = getHandles ? cell('gauge', ['nodejs'], 'active_handles_total', RuntimeValue.Gauge) : -1;
  const requests = getRequests ? cell('gauge', ['nodejs'], 'active_requests_total', RuntimeValue.Gauge) : -1;
  const loopActive = cell('inc', ['nodejs'], 'eventloop_active_seconds_total', RuntimeValue.Count);
  const loopIdle = cell('inc', ['nodejs'], 'eventloop_idle_seconds_total', RuntimeValue.Count);
  // From the thread's start, as prom-client counts.
  let elu = { idle: 0, active: 0, utilization: 0 };
  let warned = false;
  const read = () => {
    if (readProcess !== null) readProcess();
    // The isolate's heap: the numbers process.memoryUsage() gives, without its resident memory
    // (a read of /proc/self/stat: about 0.06 ms of CPU per interval, cold, on the project's VM,
    // more than everything else here together). Only memoryUsage() has the ArrayBuffers' figure:
    // it is read on request (runtime.arrayBuffers).
    const heap = v8.getHeapStatistics();
    cells[heapTotal] = heap.total_heap_size;
    cells[heapUsed] = heap.used_heap_size;
    cells[external] = heap.external_memory;
    if (arrayBuffers >= 0) cells[arrayBuffers] = process.memoryUsage().arrayBuffers;
    for (const space of v8.getHeapSpaceStatistics()) {
      const first = spaceCell(space.space_name);
      if (first + 2 >= cells.length) continue;
      cells[first] = space.space_size;
      cells[first + 1] = space.space_used_size;
      cells[first + 2] = space.space_available_size;
    }
    const resources = process.getActiveResourcesInfo();
    for (const type of typeCells.keys()) typeCounts.set(type, NaN);
    for (let i = 0; i < resources.length; i++) {
      const type = resources[i];
      const n = typeCounts.get(type);
      typeCounts.set(type, n >= 0 ? n + 1 : 1);
    }
    for (const [type, n] of typeCounts) {
      let at = typeCells.get(type);
      if (at === undefined) {
        at = cell('gauge', ['nodejs'], taggedId('active_resources', { type }), RuntimeValue.Gauge);
        typeCells.set(type, at);
      }
      if (at >= 0) cells[at] = n;
    }
    cells[resourcesTotal] = resources.length;
    if (handles >= 0) cells[handles] = getHandles().length;
    if (requests >= 0) cells[requests] = getRequests().length;
    const now = performance.eventLoopUtilization();
    cells[loopActive] = (now.active - elu.active) / 1000;
    cells[loopIdle] = (now.idle - elu.idle) / 1000;
    elu = now;
    // A series that expired (a resource type gone for expireAfter intervals) is routed anew
    // once it has a number again.
    for (let i = 0; i < routes.length; i++) {
      const r = routes[i];
      if (r.s.ref < 0 && (r.cell < 0 || !Number.isNaN(cells[r.cell]))) connect(r);
    }
    if (!warned && sampler.dropped > 0) {
      warned = true;
      warn(p, SAMPLES_DROPPED, `the event-loop delay sampler held more samples than it keeps between two intervals (${sampler.dropped} dropped, counted in meta.dropped): use a coarser runtime.eventLoopResolution or a shorter interval`);
    }
  };
  native('histogram', ['nodejs'], `eventloop_lag${unit}`, RuntimeNative.Lag);
  // The instance's hook for what is read when an interval closes (lib/gaugeset.js): this one
  // hands nothing to JS's lists; its numbers go through the cells to the engine, which takes
  // them with the sampler's in the same close.
  const hook = { collect: read };
  const key = Symbol('runtime');
  c.sets.set(key, hook);
  c.engine.runtime(sampler);
  stops.push(() => {
    c.sets.delete(key);
    // What the sampler holds (delays, CPU time) goes into the open interval.
    c.engine.runtime(null);
    sampler.stop();
  });

  // ---- histograms: GC durations by kind, event-loop delay -------------------------------------
  const gcByKind = {};
  for (const [code, kind] of Object.entries(GC_KINDS)) gcByKind[code] = p.bind('histogram', ['nodejs'], `gc_duration${unit}`, { kind });
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const record = gcByKind[entry.detail ? entry.detail.kind : entry.kind];
      if (record !== undefined) record(entry.duration * toUnit);
    }
  });
  observer.observe({ entryTypes: ['gc'] });
  stops.push(() => observer.disconnect());

  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    p.removeListener('stopping', stop);
    for (const f of stops) f();
  };
  p.once('stopping', stop);
  return stop;
}

module.exports = { parseRuntime, startRuntime, gcBuckets, RUNTIME_OPTIONS, SAMPLES_DROPPED };
