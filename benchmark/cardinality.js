'use strict';

// Cardinality storm: what a cluster does when a worker records a new id on every call (the
// classic bug of a request id or a URL in a metric's name). `node benchmark/cardinality.js` runs
// it alone; `npm run bench` runs it as its part "cardinality"; `--help` lists options.
//
// Three processes deep, so that nothing measured runs in the process that measures:
// - this process (the runner) starts, for each --max-series value, a fresh cluster master
//   (child_process.fork of this file) and reads, at each of its deliveries, the RSS (VmRSS of
//   /proc/<pid>/status: everything the process holds, native memory included) of the master and
//   of every worker, and the CPU time of each of their threads (/proc/<pid>/task/*/schedstat:
//   the kernel's scheduler statistics; the thread whose id is the pid is the JS thread);
// - the master (one Panopticon of the benchmark's name, the option maxSeries as given) forks
//   --workers cluster workers (cluster.fork) and delivers every interval;
// - each worker (a Panopticon of the same name, the same maxSeries) records --ids NEW ids per
//   interval with p.inc(['storm'], `w<worker>-id<n>`), n counting up, for --intervals intervals,
//   in --chunks slices spread over each interval (the event loop runs between them, as in a
//   server), then records nothing for --after intervals (is the memory given back?).
//
// The storm starts on the interval grid, at the second boundary after every worker is ready.
// Per interval, joined by the interval's end:
// - recorded: the worker counts its calls by the interval each landed in (p.endTime after the
//   call: a call that crosses a boundary closes the interval first, then records into the next),
//   and sends its counts to the master over IPC after each slice;
// - delivered: the sum, over every inc leaf of the delivery's data.cluster (overflow series
//   included), of val * delivery.interval (val = scaleFactor * sum / interval). Equal to recorded
//   when nothing is lost; a snapshot merged after its delivery is dropped and counted in meta.late.
//   The master records one value of its own every 100 ms (['bench'], 'master': left out of the
//   sum), so that a delivery missing the worker's snapshot still names its interval. Reading
//   data.cluster blocks the master's JS thread (hundreds of ms at 100k series), which delays the
//   IPC messages it takes meanwhile: --read meta leaves the trees unread, to see the master's
//   blocks and losses without it (the values delivered are then not measured);
// - meta.overflowed (values recorded into an overflow series), the overflow series' own values,
//   meta.late and meta.decodeErrors;
// - skipped: an interval of the storm that no delivery carried;
// - the master's longest event-loop block, in a window from 10 ms after one delivery to 10 ms
//   after the next (it holds the boundary, the worker's snapshot and the delivery): the max of
//   perf_hooks.monitorEventLoopDelay({ resolution: 1 }), which also counts the benchmark's own
//   read of data.cluster (rendering and parsing every series of the interval, tens of ms per
//   100k: what a master that reads the whole tree pays, not what a delivery costs); and the
//   longest gap between the ticks of a 1 ms setInterval minus the time the benchmark spent
//   reading data.cluster inside that gap (what the library and Node's IPC block); both include
//   the 1 ms period and any time the OS ran another thread instead (2 cores, shared). On Linux
//   each tick also reads the JS thread's run-queue wait (/proc/self/task/<pid>/schedstat: time
//   runnable but not running), reported for the longest gap, and "held": the longest gap without
//   that wait (what kept the loop itself busy: JS, native calls, garbage collection); and the
//   GC pauses of the window (perf_hooks 'gc' entries, ms in all);
// - the read of data.cluster (ms) and the bytes of the workers' snapshots (the base64 text of the
//   `__panoptic` IPC messages, as the master receives them);
// - RSS of the master and of the workers, the master's JS heap (in-process, to tell the JS share
//   of its RSS), and CPU ms per window: each process's JS thread and its other (native) threads;
//   the workers' time inside their p.inc loops (the storm's cost on their JS thread: new keys'
//   lookups, and closing an interval when a call crosses a boundary);
// - expiry (--expire-after, the option of every instance): the series each worker's close freed,
//   and the worker's JS thread in Collector#close (the whole close: handing the counters to the
//   engine, which frees the expired series) and in Collector#expire (forgetting their states and
//   cache entries: the JS share of expiry), timed by wrapping the two methods of the instance's
//   collector (a benchmark's probe: the library has no hook for it).
// Summary per run: the RSS slope (least squares, MiB per interval) and growth from the end of
// interval --settle to the end of the storm (the target: flat within 10% after the first
// expireAfter + 5 intervals; with no expiry, a worker holds every series it made until
// maxSeries, then records new ids into its overflow series); the master's longest blocks and the
// deliveries skipped; values recorded vs delivered over the whole run.
// --gc worker (a diagnostic run): the worker, started with --expose-gc, collects all its garbage
// after each close, so that its RSS is the memory it keeps alive. Without it, a worker's RSS
// also holds the garbage V8 has not collected yet: V8 lets the old generation grow to a limit
// set at its last major collection (a multiple of what was live then) before the next one, and
// a storm's garbage (the callers' id strings of expired series, the key Map's old tables) fills
// it for tens of intervals.

const cluster = require('cluster');
const fs = require('fs');
const os = require('os');
const { fork } = require('child_process');
const { monitorEventLoopDelay, PerformanceObserver } = require('perf_hooks');
const { quantile, max, sum, fmt, watchOthers, othersLine } = require('./stats');
const { judge, table } = require('./targets');
const { parseOptions, integerAtLeast, oneOf, writeJson } = require('./options');

const NAME = 'bench-cardinality';
const MiB = 2 ** 20;
const hr = process.hrtime.bigint;
const ms = (ns) => Number(ns) / 1e6;
// The worker's ids go to this path; the maxSeries overflow series of inc is panoptic.overflow.inc.
const PATH = ['storm'];

// ---- worker -------------------------------------------------------------------------------------

function runWorker() {
  const config = JSON.parse(process.env.BENCH_STORM);
  const Panopticon = require('..');
  const p = new Panopticon({ name: NAME, interval: config.interval, maxSeries: config.maxSeries, expireAfter: config.expireAfter });
  // A PANOPTIC_OVERFLOW warning is expected once; the master reports meta.overflowed.
  p.on('warning', () => {});
  // The probe of expiry's cost (see the top): each close's time and the JS share of expiry in it.
  const collector = p[Object.getOwnPropertySymbols(p).find((sym) => p[sym] && typeof p[sym].expire === 'function')];
  const { close, expire } = collector;
  let expiry = { expireMs: 0, expired: 0 };
  collector.expire = function timedExpire(ids) {
    const t0 = hr();
    expire.call(this, ids);
    expiry = { expireMs: ms(hr() - t0), expired: ids.length };
  };
  collector.close = function timedClose(k, next) {
    const end = this.endOf(k);
    expiry = { expireMs: 0, expired: 0 };
    const t0 = hr();
    close.call(this, k, next);
    const closeMs = ms(hr() - t0);
    // --gc worker: every garbage collected now (not timed), so the RSS read next is the memory
    // the worker keeps alive, without V8's pacing of its major collections.
    if (config.gc === 'worker') global.gc();
    process.send({ bench: 'closed', end, closeMs, ...expiry });
  };
  const prefix = `w${cluster.worker.id}-id`;
  let n = 0;
  const started = (msg) => {
    const { start } = msg;
    const { interval, intervals, chunks, ids } = config;
    for (let i = 0; i < intervals; i++) {
      for (let j = 0; j < chunks; j++) {
        // Slice j of interval i: its share of the ids, 5 ms into its part of the interval.
        const count = Math.floor((ids * (j + 1)) / chunks) - Math.floor((ids * j) / chunks);
        const at = start + i * interval + Math.floor((j * interval) / chunks) + 5;
        setTimeout(() => slice(count), at - Date.now());
      }
    }
  };
  const slice = (count) => {
    // Calls counted by the interval they landed in (p.endTime after the call), in runs.
    const counts = [];
    let end = p.endTime;
    let run = 0;
    const t0 = hr();
    for (let i = 0; i < count; i++) {
      p.inc(PATH, prefix + n);
      n += 1;
      const e = p.endTime;
      if (e !== end) {
        if (run > 0) counts.push([end, run]);
        end = e;
        run = 0;
      }
      run += 1;
    }
    const stormMs = ms(hr() - t0);
    if (run > 0) counts.push([end, run]);
    // The time goes to the interval the slice ended in (a slice that crosses a boundary is rare).
    process.send({ bench: 'recorded', counts, stormMs, end });
  };
  process.on('message', (msg) => {
    if (msg && msg.bench === 'start') started(msg);
    else if (msg && msg.bench === 'stop') {
      p.stop();
      process.disconnect();
    }
  });
  process.send({ bench: 'ready', pid: process.pid });
}

// ---- master -------------------------------------------------------------------------------------

async function runMaster() {
  const config = JSON.parse(process.env.BENCH_STORM);
  const { interval, intervals, after } = config;
  const Panopticon = require('..');
  const p = new Panopticon({ name: NAME, interval, maxSeries: config.maxSeries, expireAfter: config.expireAfter });
  p.on('warning', () => {});
  const delay = interval / 2; // deliveryDelay's default

  // Event-loop blocks: perf_hooks' monitor, and 1 ms ticks whose gaps leave out the benchmark's
  // own reading of data.cluster (`own`: ms spent reading since the last tick), and, on Linux, the
  // time the JS thread waited for a core in the gap (its run-queue wait in the kernel's
  // schedstat: `held` is the gap without it, the time something kept the loop itself busy).
  const eld = monitorEventLoopDelay({ resolution: 1 });
  eld.enable();
  const queued = runQueueWait();
  let own = 0;
  let gapMax = 0;
  let gapWait = 0; // the run-queue wait in the longest gap
  let heldMax = 0;
  let last = hr();
  let waited = queued();
  const ticker = setInterval(() => {
    const t = hr();
    const w = queued();
    const gap = ms(t - last) - own;
    if (gap > gapMax) {
      gapMax = gap;
      gapWait = w - waited;
    }
    heldMax = Math.max(heldMax, gap - (w - waited));
    own = 0;
    last = t;
    waited = w;
  }, 1);
  let gcMs = 0;
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) gcMs += entry.duration;
  }).observe({ entryTypes: ['gc'] });

  // What the workers recorded, by interval end; their time in p.inc, by the end of each slice.
  const recorded = new Map();
  const stormMs = new Map();
  const closes = new Map(); // interval end -> the workers' closes of it: { closeMs, expireMs, expired }
  let snapshotBytes = 0;
  cluster.setupPrimary({ exec: __filename, args: [], execArgv: config.gc === 'worker' ? ['--expose-gc'] : [], silent: false });
  const workers = [];
  const ready = [];
  for (let i = 0; i < config.workers; i++) {
    const w = cluster.fork({ BENCH_STORM: process.env.BENCH_STORM });
    workers.push(w);
    ready.push(new Promise((resolve, reject) => {
      w.on('message', (msg) => {
        if (!msg) return;
        if (msg.bench === 'ready') resolve(msg.pid);
        else if (msg.bench === 'recorded') {
          for (const [end, count] of msg.counts) recorded.set(end, (recorded.get(end) || 0) + count);
          stormMs.set(msg.end, (stormMs.get(msg.end) || 0) + msg.stormMs);
        } else if (msg.bench === 'closed') {
          const c = closes.get(msg.end) || { closeMs: 0, expireMs: 0, expired: 0 };
          closes.set(msg.end, { closeMs: c.closeMs + msg.closeMs, expireMs: c.expireMs + msg.expireMs, expired: c.expired + msg.expired });
        } else if (msg.__panoptic === 1 && typeof msg.snapshot === 'string') snapshotBytes += msg.snapshot.length;
      });
      w.once('exit', (code) => reject(new Error(`worker ${w.id} exited (${code}) before it was ready`)));
    }));
  }
  const pids = await Promise.all(ready);
  const start = (Math.floor(Date.now() / interval) + 2) * interval;
  for (const w of workers) w.send({ bench: 'start', start });
  const stormEnd = start + intervals * interval;
  const lastEnd = stormEnd + after * interval;
  process.send({ bench: 'ready', master: process.pid, workers: pids, start });

  // The master records one value every 100 ms, so that each delivery names its interval (a leaf's
  // timeStamp) even when a worker's snapshot missed it; left out of the values delivered.
  const marker = setInterval(() => p.inc(['bench'], 'master'), 100);
  let previousEnd = null;
  const rows = [];
  let finish;
  const finished = new Promise((resolve) => { finish = resolve; });
  const windowStart = () => {
    eld.reset();
    gapMax = 0;
    gapWait = 0;
    heldMax = 0;
    gcMs = 0;
    snapshotBytes = 0;
  };
  windowStart();
  p.on('delivery', (d) => {
    // Read and walk the whole cluster tree: every inc leaf's values (the overflow series too).
    const t0 = hr();
    const tree = config.read === 'cluster' ? d.data.cluster : {};
    let delivered = 0;
    let overflowValues = 0;
    let leaves = 0;
    let end = null;
    const walk = (node, place) => {
      for (const [key, child] of Object.entries(node)) {
        if (child && typeof child.type === 'string' && child.value && typeof child.value === 'object') {
          if (child.type !== 'inc') continue;
          if (end === null) end = child.value.timeStamp;
          if (place === 'bench') continue;
          const values = child.value.val * d.interval;
          delivered += values;
          leaves += 1;
          if (place === 'panoptic.overflow') overflowValues += values;
        } else if (child && typeof child === 'object') {
          walk(child, place === '' ? key : `${place}.${key}`);
        }
      }
    };
    walk(tree, '');
    const readMs = ms(hr() - t0);
    own += readMs;
    // A tree with no leaf (the master's loop was blocked for the whole interval, or --read meta):
    // deliveries come in order, one per interval, so it is the one after the previous.
    if (end === null) end = previousEnd === null ? Math.floor((Date.now() - delay) / interval) * interval : previousEnd + interval;
    previousEnd = end;
    const row = {
      end,
      delivered: config.read === 'cluster' ? Math.round(delivered) : null,
      overflowValues: config.read === 'cluster' ? Math.round(overflowValues) : null,
      leaves: config.read === 'cluster' ? leaves : null,
      overflowed: d.meta.overflowed,
      late: d.meta.late,
      decodeErrors: d.meta.decodeErrors,
      workers: Object.keys(d.meta.workers).length,
      readMs,
      masterHeapMiB: process.memoryUsage().heapUsed / MiB,
    };
    // The window closes 10 ms after the delivery, so that the monitors see the block it caused.
    setTimeout(() => {
      row.eldMaxMs = eld.count > 0 ? eld.max / 1e6 : 0;
      row.gapMaxMs = gapMax;
      row.gapWaitMs = gapWait;
      row.heldMaxMs = heldMax;
      row.gcMs = gcMs;
      row.snapshotBytes = snapshotBytes;
      windowStart();
      rows.push(row);
      process.send({ bench: 'delivery', row });
      if (end >= lastEnd) finish();
    }, 10);
  });
  await finished;
  clearInterval(ticker);
  clearInterval(marker);
  eld.disable();
  const ends = new Set([...recorded.keys(), ...closes.keys()]);
  const out = [...ends].map((end) => ({ end, count: recorded.get(end) || 0, stormMs: stormMs.get(end) || 0, ...(closes.get(end) || { closeMs: NaN, expireMs: NaN, expired: 0 }) }));
  await new Promise((resolve) => process.send({ bench: 'done', recorded: out }, resolve));
  await Promise.all(workers.map((w) => new Promise((resolve) => {
    const kill = setTimeout(() => w.process.kill('SIGKILL'), 10000);
    w.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    w.send({ bench: 'stop' });
  })));
  p.stop();
  process.disconnect();
}

// ---- the runner ---------------------------------------------------------------------------------

/**
 * A reader of the calling process's JS thread's run-queue wait so far, in ms (the second field of
 * its schedstat: time spent runnable but not running); NaN where there is none (not Linux).
 */
function runQueueWait() {
  let fd;
  try {
    fd = fs.openSync(`/proc/self/task/${process.pid}/schedstat`, 'r');
  } catch {
    return () => NaN;
  }
  const buf = Buffer.alloc(128);
  return () => Number(buf.toString('latin1', 0, fs.readSync(fd, buf, 0, buf.length, 0)).split(' ')[1]) / 1e6;
}

/** VmRSS and VmHWM of process `pid` in MiB (NaN when it is gone or not Linux). */
function memoryOf(pid) {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (field) => Number((new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status) || [])[1]) / 1024;
    return { rss: kib('VmRSS'), hwm: kib('VmHWM') };
  } catch {
    return { rss: NaN, hwm: NaN };
  }
}

/** CPU ms so far of process `pid`'s JS thread (tid = pid) and of its other threads together. */
function cpuOf(pid) {
  let js = NaN;
  let native = 0;
  try {
    for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
      try {
        const cpu = Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
        if (Number(tid) === pid) js = cpu;
        else native += cpu;
      } catch {
        // the thread ended since the listing
      }
    }
  } catch {
    return { js: NaN, native: NaN };
  }
  return { js, native };
}

/** One storm: a fresh master with `maxSeries`; its rows, one per interval. */
async function runStorm(opts, maxSeries) {
  const config = {
    interval: opts.interval,
    intervals: opts.intervals,
    after: opts.after,
    workers: opts.workers,
    ids: opts.ids,
    chunks: opts.chunks,
    read: opts.read,
    gc: opts.gc,
    maxSeries,
    expireAfter: opts.expireAfter,
  };
  const watch = watchOthers();
  const child = fork(__filename, [], { env: { ...process.env, BENCH_STORM: JSON.stringify(config), BENCH_STORM_MASTER: '1' }, execArgv: [], stdio: 'inherit' });
  let pids = null;
  let cpu0 = null;
  let at0 = 0; // when the last window closed (performance.now())
  let start = null;
  const samples = new Map(); // interval end -> what was read at its delivery
  let recorded = null;
  const cpuNow = () => ({ master: cpuOf(pids.master), workers: pids.workers.map(cpuOf) });
  const log = (text) => process.stderr.write(`cardinality (maxSeries ${maxSeries.toLocaleString('en-US')}): ${text}\n`);
  const code = await new Promise((resolve) => {
    const timeout = setTimeout(() => {
      log('no end after the time the run should take plus 120 s: killed');
      child.kill('SIGKILL');
    }, (opts.intervals + opts.after + 5) * opts.interval + 120000);
    child.on('message', (msg) => {
      if (msg.bench === 'ready') {
        pids = { master: msg.master, workers: msg.workers };
        start = msg.start;
        cpu0 = cpuNow();
        at0 = performance.now();
      } else if (msg.bench === 'delivery') {
        const row = msg.row;
        const cpu = cpuNow();
        const dt = (a, b) => ({ js: a.js - b.js, native: a.native - b.native });
        row.master = { ...memoryOf(pids.master), cpu: dt(cpu.master, cpu0.master) };
        row.workerProcs = pids.workers.map((pid, i) => ({ ...memoryOf(pid), cpu: dt(cpu.workers[i], cpu0.workers[i]) }));
        cpu0 = cpu;
        row.windowMs = performance.now() - at0;
        at0 += row.windowMs;
        samples.set(row.end, row);
        const i = (row.end - start) / opts.interval;
        log(`interval ${i} (${i <= opts.intervals ? 'storm' : 'after'}): worker RSS ${row.workerProcs.map((w) => fmt(w.rss)).join(', ')} MiB, ` +
          `master RSS ${fmt(row.master.rss)} MiB, delivered ${row.delivered}, overflowed ${row.overflowed}, late ${row.late}, ` +
          `master block ${fmt(row.eldMaxMs)} ms (${fmt(row.gapMaxMs)} without the read of ${fmt(row.readMs)} ms)`);
      } else if (msg.bench === 'done') {
        recorded = msg.recorded;
      }
    });
    child.on('exit', (c, signal) => {
      clearTimeout(timeout);
      resolve(signal ? 1 : c);
    });
  });
  if (code !== 0 || recorded === null) throw new Error(`the storm's master (maxSeries ${maxSeries}) exited with code ${code}`);
  const load = watch();

  // One row per interval of the storm and after it: interval i ends at start + i * interval.
  const byEnd = new Map(recorded.map((r) => [r.end, r]));
  const rows = [];
  for (let i = 1; i <= opts.intervals + opts.after; i++) {
    const end = start + i * opts.interval;
    const s = samples.get(end) || null;
    const r = byEnd.get(end);
    rows.push({
      interval: i,
      end,
      storm: i <= opts.intervals,
      recorded: r ? r.count : 0,
      stormMs: r ? r.stormMs : 0,
      closeMs: r ? r.closeMs : NaN,
      expireMs: r ? r.expireMs : NaN,
      expired: r ? r.expired : 0,
      skipped: s === null,
      ...(s === null ? {} : {
        delivered: s.delivered,
        overflowValues: s.overflowValues,
        leaves: s.leaves,
        overflowed: s.overflowed,
        late: s.late,
        decodeErrors: s.decodeErrors,
        workers: s.workers,
        windowMs: s.windowMs,
        eldMaxMs: s.eldMaxMs,
        gapMaxMs: s.gapMaxMs,
        gapWaitMs: s.gapWaitMs,
        heldMaxMs: s.heldMaxMs,
        gcMs: s.gcMs,
        readMs: s.readMs,
        snapshotMiB: s.snapshotBytes / MiB,
        masterRssMiB: s.master.rss,
        masterHeapMiB: s.masterHeapMiB,
        masterJsCpuMs: s.master.cpu.js,
        masterNativeCpuMs: s.master.cpu.native,
        workerRssMiB: s.workerProcs.map((w) => w.rss),
        workerJsCpuMs: sum(s.workerProcs.map((w) => w.cpu.js)),
        workerNativeCpuMs: sum(s.workerProcs.map((w) => w.cpu.native)),
      }),
    });
  }
  // Anything recorded outside the rows' intervals would be a bug of this benchmark.
  const outside = recorded.filter((r) => r.end <= start || r.end > start + opts.intervals * opts.interval);
  const lastRow = [...samples.values()].pop();
  return {
    maxSeries,
    start,
    rows,
    recordedOutside: sum(outside.map((r) => r.count)),
    peak: { masterMiB: lastRow ? lastRow.master.hwm : NaN, workersMiB: lastRow ? lastRow.workerProcs.map((w) => w.hwm) : [] },
    load,
    summary: summarize(rows, opts),
  };
}

/** Least-squares slope of ys over xs. */
function slope(xs, ys) {
  const n = xs.length;
  if (n < 2) return NaN;
  const mx = sum(xs) / n;
  const my = sum(ys) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i] - mx) * (ys[i] - my);
    den += (xs[i] - mx) ** 2;
  }
  return num / den;
}

/** RSS growth over the settled part of the storm (intervals settle .. intervals), and the totals. */
function summarize(rows, opts) {
  const settled = rows.filter((r) => r.storm && r.interval >= opts.settle && !r.skipped);
  const trend = (pick) => {
    if (settled.length < 2) return { slopeMiBPerInterval: NaN, fromMiB: NaN, toMiB: NaN, growth: NaN };
    const from = pick(settled[0]);
    const to = pick(settled[settled.length - 1]);
    return { slopeMiBPerInterval: slope(settled.map((r) => r.interval), settled.map(pick)), fromMiB: from, toMiB: to, growth: to / from };
  };
  const delivered = rows.filter((r) => !r.skipped);
  // With --read meta the values delivered are not measured (NaN).
  const counted = (pick) => (opts.read === 'cluster' ? sum(delivered.map(pick)) : NaN);
  const storm = rows.filter((r) => r.storm);
  const after = rows.filter((r) => !r.storm && !r.skipped);
  return {
    worker: trend((r) => max(r.workerRssMiB)),
    master: trend((r) => r.masterRssMiB),
    afterStorm: after.length === 0 ? null : {
      workerMiB: max(after[after.length - 1].workerRssMiB),
      masterMiB: after[after.length - 1].masterRssMiB,
    },
    recorded: sum(rows.map((r) => r.recorded)),
    delivered: counted((r) => r.delivered),
    overflowed: sum(delivered.map((r) => r.overflowed)),
    overflowValues: counted((r) => r.overflowValues),
    late: sum(delivered.map((r) => r.late)),
    decodeErrors: sum(delivered.map((r) => r.decodeErrors)),
    skipped: storm.filter((r) => r.skipped).length,
    mismatchedIntervals: opts.read === 'cluster' ? delivered.filter((r) => r.delivered !== r.recorded).length : NaN,
    eldMaxMs: max(delivered.map((r) => r.eldMaxMs)),
    gapMaxMs: max(delivered.map((r) => r.gapMaxMs)),
    heldMaxMs: max(delivered.map((r) => r.heldMaxMs)),
    readMaxMs: max(delivered.map((r) => r.readMs)),
    stormMsMedian: quantile(storm.map((r) => r.stormMs), 0.5),
    stormMsMax: max(storm.map((r) => r.stormMs)),
    expired: sum(rows.map((r) => r.expired)),
    // The closes that freed series (their cost is expiry's), and the others.
    closeMsExpiring: quantile(rows.filter((r) => r.expired > 0).map((r) => r.closeMs), 0.5),
    closeMsExpiringMax: max(rows.filter((r) => r.expired > 0).map((r) => r.closeMs)),
    closeMsOther: quantile(rows.filter((r) => r.expired === 0 && Number.isFinite(r.closeMs)).map((r) => r.closeMs), 0.5),
    expireMsMedian: quantile(rows.filter((r) => r.expired > 0).map((r) => r.expireMs), 0.5),
    expireMsMax: max(rows.filter((r) => r.expired > 0).map((r) => r.expireMs)),
  };
}

function report(run, opts) {
  const s = run.summary;
  const mib = (x) => (Number.isFinite(x) ? x.toFixed(0) : '-');
  console.log();
  console.log(`#### maxSeries ${run.maxSeries.toLocaleString('en-US')}`);
  console.log();
  console.log('| interval | recorded | delivered | overflowed (meta) | late | worker RSS MiB | master RSS MiB | master heap MiB | master block ms (ELD) | without the read ms | of which run-queue wait ms | held ms | GC ms | read data.cluster ms | snapshots MiB | window ms | worker p.inc ms | worker JS CPU ms | master JS / native CPU ms | expired | worker close ms | of which JS expiry ms |');
  console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const r of run.rows) {
    const at = `${r.interval}${r.storm ? '' : ' (after)'}`;
    if (r.skipped) {
      console.log(`| ${at} | ${r.recorded} | **skipped** | | | | | | | | | | | | | | ${fmt(r.stormMs)} | | | ${r.expired} | ${fmt(r.closeMs)} | ${fmt(r.expireMs)} |`);
      continue;
    }
    const delivered = r.delivered === null ? '-' : r.delivered === r.recorded ? String(r.delivered) : `**${r.delivered}**`;
    console.log(`| ${at} | ${r.recorded} | ${delivered} | ${r.overflowed} | ${r.late} | ${r.workerRssMiB.map(mib).join(', ')} | ${mib(r.masterRssMiB)} | ${mib(r.masterHeapMiB)} | ` +
      `${fmt(r.eldMaxMs)} | ${fmt(r.gapMaxMs)} | ${fmt(r.gapWaitMs)} | ${fmt(r.heldMaxMs)} | ${fmt(r.gcMs)} | ${fmt(r.readMs)} | ${fmt(r.snapshotMiB)} | ${r.windowMs.toFixed(0)} | ${fmt(r.stormMs)} | ${fmt(r.workerJsCpuMs)} | ${fmt(r.masterJsCpuMs)} / ${fmt(r.masterNativeCpuMs)} | ${r.expired} | ${fmt(r.closeMs)} | ${fmt(r.expireMs)} |`);
  }
  const pct = (g) => (Number.isFinite(g) ? `${g >= 1 ? '+' : ''}${((g - 1) * 100).toFixed(0)}%` : '-');
  console.log();
  console.log(`- RSS from the end of interval ${opts.settle} to the end of the storm (${opts.intervals}): worker ${mib(s.worker.fromMiB)} -> ${mib(s.worker.toMiB)} MiB ` +
    `(${pct(s.worker.growth)}, slope ${fmt(s.worker.slopeMiBPerInterval)} MiB/interval), master ${mib(s.master.fromMiB)} -> ${mib(s.master.toMiB)} MiB ` +
    `(${pct(s.master.growth)}, slope ${fmt(s.master.slopeMiBPerInterval)} MiB/interval); peak (VmHWM) worker ${run.peak.workersMiB.map(mib).join(', ')} MiB, master ${mib(run.peak.masterMiB)} MiB` +
    (s.afterStorm ? `; ${opts.after} intervals after the storm: worker ${mib(s.afterStorm.workerMiB)} MiB, master ${mib(s.afterStorm.masterMiB)} MiB` : ''));
  const delivered = opts.read === 'cluster'
    ? `delivered ${s.delivered} (${s.recorded === s.delivered ? 'equal' : `**${s.recorded - s.delivered} missing**`}; ${s.mismatchedIntervals} intervals differ), ` +
      `of which into the overflow series ${s.overflowValues}`
    : 'delivered not measured (--read meta)';
  console.log(`- values: recorded ${s.recorded}, ${delivered} (meta.overflowed ${s.overflowed}); ` +
    `meta.late ${s.late}, decodeErrors ${s.decodeErrors}${run.recordedOutside ? `; recorded outside the storm's intervals: ${run.recordedOutside}` : ''}`);
  console.log(`- master: longest block ${fmt(s.eldMaxMs)} ms (ELD, with the read of data.cluster; the longest read ${fmt(s.readMaxMs)} ms), ${fmt(s.gapMaxMs)} ms without it, ` +
    `${fmt(s.heldMaxMs)} ms without the JS thread's waits for a core (held); ` +
    `deliveries skipped ${s.skipped} of ${opts.intervals}`);
  console.log(`- worker JS thread in p.inc per interval: median ${fmt(s.stormMsMedian)} ms, max ${fmt(s.stormMsMax)} ms`);
  console.log(`- expiry (expireAfter ${opts.expireAfter}): ${s.expired} series freed in the workers; a worker's close that frees series: median ${fmt(s.closeMsExpiring)} ms ` +
    `(max ${fmt(s.closeMsExpiringMax)}), of which JS expiry (Collector#expire) median ${fmt(s.expireMsMedian)} ms (max ${fmt(s.expireMsMax)}); a close that frees none: median ${fmt(s.closeMsOther)} ms`);
  console.log(`- ${othersLine(run.load)}`);
}

function targetsOf(run, opts) {
  const s = run.summary;
  const gc = opts.gc === 'worker' ? ' (--gc worker: a full GC in the worker after each close)' : '';
  const label = `cardinality storm, maxSeries ${run.maxSeries.toLocaleString('en-US')}${gc}`;
  return [
    judge(`${label}: worker RSS growth after interval ${opts.settle}`, s.worker.growth, { max: 1.1, unit: 'x' }),
    judge(`${label}: master RSS growth after interval ${opts.settle}`, s.master.growth, { max: 1.1, unit: 'x' }),
    judge(`${label}: values delivered missing (recorded - delivered)`, s.recorded - s.delivered, { max: 0, unit: 'values' }),
    judge(`${label}: master's longest event-loop block (without the read of data.cluster)`, s.gapMaxMs, { max: 10, unit: 'ms' }),
    judge(`${label}: master's longest event-loop block held (without the read, nor the waits for a core)`, s.heldMaxMs, { max: 10, unit: 'ms' }),
    judge(`${label}: deliveries skipped`, s.skipped, { max: 0, unit: 'deliveries' }),
  ];
}

async function main() {
  const opts = parseOptions(process.argv.slice(2), {
    ids: { value: 100000, help: 'new ids each worker records per interval', check: integerAtLeast(1) },
    interval: { value: 1000, help: 'ms', check: integerAtLeast(200) },
    intervals: { value: 40, help: 'intervals of the storm', check: integerAtLeast(2) },
    after: { value: 5, help: 'intervals after the storm, nothing recorded', check: integerAtLeast(0) },
    settle: { value: 15, help: 'the RSS slope is taken from the end of this interval of the storm on', check: integerAtLeast(1) },
    workers: { value: 1, help: 'cluster workers, each its own storm', check: integerAtLeast(1) },
    chunks: { value: 10, help: 'slices each interval\'s ids are recorded in, spread over the interval', check: integerAtLeast(1) },
    'max-series': { value: [1000000, 200000], help: 'the maxSeries option of every instance; one run each', check: integerAtLeast(1) },
    'expire-after': { value: 10, help: 'the expireAfter option of every instance (intervals)', check: integerAtLeast(1) },
    read: { value: 'cluster', help: 'what the master\'s delivery handler reads: cluster (every series, to count the values delivered) or meta (only meta: the values delivered are not measured)', check: oneOf(['cluster', 'meta']) },
    gc: { value: 'none', help: 'worker: the worker collects all its garbage after each close (run with --expose-gc), to tell the memory it keeps alive from the garbage V8 has not collected yet (a diagnostic: its RSS is not what an application sees)', check: oneOf(['none', 'worker']) },
    json: { value: null, help: 'also write the results as JSON to this file' },
  }, 'node benchmark/cardinality.js');
  if (opts.settle >= opts.intervals) throw new Error(`--settle must be below --intervals (${opts.intervals}), got ${opts.settle}`);
  const cpu = (os.cpus()[0] || {}).model || 'unknown';
  console.log(`cardinality benchmark: node ${process.version}, ${os.cpus().length} cpus (${cpu}); ${opts.workers} worker(s) x ${opts.ids.toLocaleString('en-US')} new ids ` +
    `per ${opts.interval} ms interval for ${opts.intervals} intervals, then ${opts.after} quiet; maxSeries ${opts.maxSeries.map((m) => m.toLocaleString('en-US')).join(', ')}, a fresh cluster each; expireAfter ${opts.expireAfter}`);
  const runs = [];
  for (const maxSeries of opts.maxSeries) runs.push(await runStorm(opts, maxSeries));
  for (const run of runs) report(run, opts);
  console.log();
  console.log('recorded: calls counted by the workers by the interval each landed in; delivered: the sum over every inc leaf of');
  console.log('data.cluster (overflow series included) of val * delivery.interval. RSS: VmRSS read by the runner at each delivery.');
  console.log('master block: max of monitorEventLoopDelay (1 ms) from 10 ms after one delivery to 10 ms after the next, and the');
  console.log('longest gap of a 1 ms setInterval minus the benchmark\'s read of data.cluster in it (both include the 1 ms period');
  console.log('and time the OS ran other threads); of which run-queue wait: the JS thread\'s time runnable but not running in');
  console.log('that gap (schedstat); held: the longest gap without it (JS, native calls and GC pauses on the JS thread). GC ms:');
  console.log('the window\'s perf_hooks \'gc\' entries. CPU: the kernel\'s per-thread time in the same windows.');
  const targets = runs.flatMap((run) => targetsOf(run, opts));
  console.log();
  console.log(table(targets));
  if (opts.json) writeJson(opts.json, { config: opts, runs, targets });
}

// ---- entry --------------------------------------------------------------------------------------

const fail = (err) => {
  console.error(err);
  process.exitCode = 1;
  for (const w of Object.values(cluster.workers || {})) w.process.kill();
};

if (cluster.isWorker) runWorker();
else if (process.env.BENCH_STORM_MASTER) runMaster().catch(fail);
else main().catch(fail);
