'use strict';

// Runtime metrics (`runtime: true`, `p.collectRuntime(options)`; docs/runtime.md): what
// prom-client's collectDefaultMetrics() reports, under the names it uses on /metrics, built on the
// instance's public methods, so that they merge across the cluster as every other series does.
//
// Names. A series is exported as its path and id joined by `_` (docs/prometheus.md), so prom-
// client's names come from the paths ['process'] and ['nodejs'] and ids that are the rest of the
// name (`process` + `resident_memory_bytes`); labels are tags (written into the field's id for
// gauge sets). Times recorded into histograms are in the instance's time unit (ms / scaleFactor),
// so their ids say it: `_seconds` at scaleFactor 1000 (prom-client's names), `_milliseconds` at 1.
//
// What each kind of number becomes, and so how it merges (docs/runtime.md):
// - levels (memory, heap spaces, handles, fds) are fields of two gauge sets, read when each
//   interval closes: they add up over processes and threads;
// - CPU seconds and event-loop active/idle seconds are counters (`inc` of the increase since the
//   previous read, the first read counting from the process's start, as prom-client's counters
//   do). They are read at each interval's start ('newInterval'), so the increase of interval k
//   is recorded in interval k + 1 (records cannot be made while an interval closes);
// - GC durations and event-loop delays are HDR `histogram` series: they merge exactly;
// - constants of a process (start time, max fds, Node's version) are `set` series, written at each
//   interval's start: a sum of them over processes means nothing, a `set` merges as the value of
//   one process (the last written), and each process's own stays in perProcess and /metrics.
//
// The event-loop delay is sampled every `eventLoopResolution` ms by a native thread of its own
// (src/loop_delay.rs), not by a timer on the JS thread: a timer wakes an idle loop at every
// sample, and the wake is what costs (~0.12 ms per JS timer run, ~0.06 ms per libuv timer run as
// perf_hooks.monitorEventLoopDelay() uses, on the project's VM: 1.2-2.7 ms per 200 ms at 10 ms).
// On Linux the sampler reads what the thread does (/proc): a loop waiting for events would run
// a due timer at once (delay 0, recorded without touching the thread); a busy one is sent an
// empty call, and the delay is how long it took to run it, as a timer's lateness. Elsewhere
// every sample sends the call. monitorEventLoopDelay() was not used for another reason too: its
// histogram can only be read as percentiles (no counts per bucket, no values), and percentiles
// of processes cannot be merged: recording each delay into panoptic's histogram is what makes
// the cluster's p99 the p99 of every process's delays together. The samples are drained into the
// histogram at each interval's start, with the counters (so a delay measured in interval k is
// recorded in k + 1).
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
const { LoopDelaySampler } = require('./addon');

const RUNTIME_OPTIONS = ['eventLoopResolution'];
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
  if (runtime === true) return { eventLoopResolution: DEFAULT_RESOLUTION_MS };
  if (typeof runtime !== 'object' || Array.isArray(runtime)) {
    throw new TypeError(`${where} must be a boolean or an object, got ${describe(runtime)}`);
  }
  unknownKeys(runtime, RUNTIME_OPTIONS, where);
  const { eventLoopResolution = DEFAULT_RESOLUTION_MS } = runtime;
  if (typeof eventLoopResolution !== 'number') {
    throw new TypeError(`${where}.eventLoopResolution must be a number of ms, got ${describe(eventLoopResolution)}`);
  }
  if (!(Number.isInteger(eventLoopResolution) && eventLoopResolution >= 1 && eventLoopResolution <= 1000)) {
    throw new RangeError(`${where}.eventLoopResolution must be an integer from 1 to 1000 (ms), got ${describe(eventLoopResolution)}`);
  }
  return { eventLoopResolution };
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
 * Starts collecting the runtime metrics into instance `p` (options parsed by parseRuntime);
 * `countDropped(n)` counts delay samples the sampler could not keep (meta.dropped).
 * Returns a function that stops it; it also stops with the instance.
 */
function startRuntime(p, options, countDropped) {
  const unit = timeUnit(p.scaleFactor);
  const toUnit = 1 / p.scaleFactor; // ms -> the instance's time unit
  const stops = [];

  // ---- levels: two gauge sets, read when each interval closes --------------------------------
  const spaceIds = new Map(); // V8 space name -> its three field ids
  const spaceFields = (name) => {
    let ids = spaceIds.get(name);
    if (ids === undefined) {
      // prom-client's label: 'new_space' -> 'new'.
      const space = name.endsWith('_space') ? name.slice(0, -6) : name;
      ids = ['total', 'used', 'available'].map((what) => taggedId(`heap_space_size_${what}_bytes`, { space }));
      spaceIds.set(name, ids);
    }
    return ids;
  };
  const getHandles = typeof process._getActiveHandles === 'function' ? process._getActiveHandles : null;
  const getRequests = typeof process._getActiveRequests === 'function' ? process._getActiveRequests : null;
  p.gaugeSet(['nodejs'], () => {
    const mem = process.memoryUsage();
    const out = {
      heap_size_total_bytes: mem.heapTotal,
      heap_size_used_bytes: mem.heapUsed,
      external_memory_bytes: mem.external,
      array_buffers_bytes: mem.arrayBuffers,
    };
    for (const space of v8.getHeapSpaceStatistics()) {
      const [total, used, available] = spaceFields(space.space_name);
      out[total] = space.space_size;
      out[used] = space.space_used_size;
      out[available] = space.space_available_size;
    }
    const resources = process.getActiveResourcesInfo();
    const byType = {};
    for (const type of resources) byType[type] = (byType[type] || 0) + 1;
    for (const type of Object.keys(byType)) out[taggedId('active_resources', { type })] = byType[type];
    out.active_resources_total = resources.length;
    if (getHandles) out.active_handles_total = getHandles().length;
    if (getRequests) out.active_requests_total = getRequests().length;
    return out;
  });
  stops.push(() => p.gaugeSet(['nodejs'], null));

  if (isMainThread) {
    p.gaugeSet(['process'], () => {
      const out = { resident_memory_bytes: process.memoryUsage.rss() };
      const open = openFds();
      if (open !== undefined) out.open_fds = open;
      return out;
    });
    stops.push(() => p.gaugeSet(['process'], null));
  }

  // ---- constants, as `set` series written at each interval's start --------------------------
  const constants = [[p.bind('set', ['nodejs'], 'version_info', versionTags()), 1]];
  if (isMainThread) {
    constants.push([p.bind('set', ['process'], 'start_time_seconds'), Math.round(Date.now() / 1000 - process.uptime())]);
    const max = maxFds();
    if (max !== undefined) constants.push([p.bind('set', ['process'], 'max_fds'), max]);
  }

  // ---- counters: increases since the previous read, at each interval's start ---------------
  const cpuUser = isMainThread ? p.bind('inc', ['process'], 'cpu_user_seconds_total') : null;
  const cpuSystem = isMainThread ? p.bind('inc', ['process'], 'cpu_system_seconds_total') : null;
  const cpuTotal = isMainThread ? p.bind('inc', ['process'], 'cpu_seconds_total') : null;
  const loopActive = p.bind('inc', ['nodejs'], 'eventloop_active_seconds_total');
  const loopIdle = p.bind('inc', ['nodejs'], 'eventloop_idle_seconds_total');
  // From the process's start (the thread's, for event-loop utilisation), as prom-client counts.
  let cpu = { user: 0, system: 0 };
  let elu = { idle: 0, active: 0, utilization: 0 };
  const readAtStart = () => {
    for (const [set, value] of constants) set(value);
    if (isMainThread) {
      const now = process.cpuUsage();
      const user = (now.user - cpu.user) / 1e6;
      const system = (now.system - cpu.system) / 1e6;
      cpu = now;
      cpuUser(user);
      cpuSystem(system);
      cpuTotal(user + system);
    }
    const now = performance.eventLoopUtilization();
    loopActive((now.active - elu.active) / 1000);
    loopIdle((now.idle - elu.idle) / 1000);
    elu = now;
  };
  readAtStart();
  p.on('newInterval', readAtStart);
  stops.push(() => p.removeListener('newInterval', readAtStart));

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

  const lag = p.bind('histogram', ['nodejs'], `eventloop_lag${unit}`);
  const sampler = new LoopDelaySampler(options.eventLoopResolution, () => {});
  let warned = false;
  const drainDelays = () => {
    const samples = sampler.drain();
    for (let i = samples[0]; i > 0; i--) lag(0);
    if (samples[1] > 0) {
      countDropped(samples[1]);
      if (!warned) {
        warned = true;
        warn(p, SAMPLES_DROPPED, `the event-loop delay sampler held more samples than it keeps between two intervals (${samples[1]} dropped, counted in meta.dropped): use a coarser runtime.eventLoopResolution or a shorter interval`);
      }
    }
    for (let i = 2; i < samples.length; i++) lag(samples[i] * toUnit);
  };
  p.on('newInterval', drainDelays);
  stops.push(() => {
    p.removeListener('newInterval', drainDelays);
    // What was sampled since the last interval's start goes into the open interval.
    drainDelays();
    sampler.stop();
  });

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
