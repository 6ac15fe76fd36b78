'use strict';

// Collection benchmark: how long an interval boundary blocks the event loop of a process that
// holds N series (default 10k, 100k and 1M), all of them counters (`bind('inc')` handles, the
// cheapest kind to record: what is measured is the collection, not the recording), each recorded
// once per interval. `node benchmark/collection.js` runs it alone; `npm run bench` runs it as its
// part "collection"; `--help` lists options. Each size runs in a fresh process (this script with
// --child N), so one size's heap does not weigh on the next.
//
// Method, per size: one standalone instance (interval 2000 ms, deliveryDelay its default, half
// the interval), N handles at ['svc', 'route<i / 100>'], id 'n<i % 100>' (100 counters per path).
// Each interval:
// 1. every series is recorded once (a loop over the N handles, timed: the cost of recording into
//    N distinct series);
// 2. the boundary: sleep until 20 ms before it, then spin (so that no timer can run) until the
//    wall clock has passed it, then call one handle again and again, timing each call, until one
//    call closes the interval (the first one that sees the clock thread's new interval number:
//    Collector#sync -> rotate, which closes the interval synchronously; the instance's timer does
//    the same when no record comes first). That call's time is the **JS-thread time of the
//    collection**: how long the boundary blocks the event loop. Inside it, the native part is
//    timed by wrapping NativeEngine#closeInterval (drain the batch, read and zero the counter
//    pages, build the snapshot) and #keep (hand it to the intake thread). That thread names and
//    merges the snapshot for its delivery while JS runs on: its CPU time from the boundary to the
//    delivery is reported too (the kernel's scheduler statistics of the "panoptic-intake" thread;
//    nothing else runs on it in a standalone process).
// 3. the delivery, deliveryDelay later: from the start of the native deliver (wrapped) to the
//    'delivery' handler, which reads only `meta` (the trees are lazy): the JS-thread time of the
//    delivery, and the native deliver alone.
// WARMUP intervals are discarded (the first ones include the setup), INTERVALS are measured; the
// median and max are reported. After the last, the whole data.master tree is read once (native
// rendering + JSON.parse of N leaves: what a handler that reads every series pays) and checked:
// N counters, each with the rate of its increments.

const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawn } = require('child_process');
const { median, max, fmt, threadCpuMs, threadNamed } = require('./stats');
const { judge, table } = require('./targets');
const { parseOptions, integerAtLeast, writeJson } = require('./options');

const TARGET_SERIES = 1000000;
const TARGET_MS = 100;

const opts = parseOptions(process.argv.slice(2), {
  series: { value: [10000, 100000, 1000000], help: 'series counts, one process each', check: integerAtLeast(1) },
  interval: { value: 2000, help: 'ms', check: (v) => (v >= 200 ? undefined : 'must be >= 200') },
  warmup: { value: 2, help: 'intervals discarded first', check: integerAtLeast(0) },
  intervals: { value: 5, help: 'measured intervals per size', check: integerAtLeast(1) },
  json: { value: null, help: 'also write the results as JSON to this file' },
  child: { value: 0, help: '(internal) measure this many series in this process', check: integerAtLeast(0) },
}, 'node benchmark/collection.js');

const hr = process.hrtime.bigint;
const ms = (ns) => Number(ns) / 1e6;
const sleep = (t) => new Promise((resolve) => setTimeout(resolve, Math.max(0, t)));

async function child(n) {
  const { NativeEngine } = require('../binding.js');
  const Panopticon = require('..');

  // Native time inside the collection and the delivery.
  const native = { close: 0, keep: 0, deliver: 0, deliverStart: 0n };
  const proto = NativeEngine.prototype;
  for (const name of ['closeInterval', 'keep']) {
    const orig = proto[name];
    const slot = name === 'closeInterval' ? 'close' : 'keep';
    proto[name] = function timed(...args) {
      const t0 = hr();
      try {
        return orig.apply(this, args);
      } finally {
        native[slot] += ms(hr() - t0);
      }
    };
  }
  const origDeliver = proto.deliver;
  proto.deliver = function deliver(...args) {
    native.deliverStart = hr();
    const delivered = origDeliver.apply(this, args);
    native.deliver = ms(hr() - native.deliverStart);
    return delivered;
  };

  // keepAlive: the part awaits deliveries with no timer of its own pending (an instance does not
  // keep its process alive by default).
  const p = new Panopticon({ name: 'collection', interval: opts.interval, keepAlive: true });
  const delay = opts.interval / 2;
  let t0 = hr();
  const handles = new Array(n);
  for (let i = 0; i < n; i++) handles[i] = p.bind('inc', ['svc', `route${Math.floor(i / 100)}`], `n${i % 100}`);
  const createMs = ms(hr() - t0);
  const probe = handles[0];
  process.stderr.write(`collection: ${n} series created in ${(createMs / 1000).toFixed(1)} s\n`);

  let waiting = null; // { after, resolve }: the next delivery at or after `after` (epoch ms)
  p.on('delivery', (d) => {
    const jsMs = ms(hr() - native.deliverStart);
    void d.meta.errors; // what every handler reads
    if (waiting && Date.now() >= waiting.after) {
      const w = waiting;
      waiting = null;
      w.resolve({ d, jsMs, nativeMs: native.deliver });
    }
  });

  const rows = [];
  let last = null;
  let intake = null; // the intake thread's id, once it exists (it starts with the first interval kept)
  for (let w = 0; w < opts.warmup + opts.intervals; w++) {
    t0 = hr();
    for (let i = 0; i < n; i++) handles[i]();
    const recordMs = ms(hr() - t0);

    const end = p.endTime;
    intake = intake ?? threadNamed('panoptic-intake');
    const intakeBefore = threadCpuMs(intake);
    await sleep(end - 20 - Date.now());
    while (Date.now() < end) {
      // spin: no timer may close the interval before the timed call does
    }
    native.close = 0;
    native.keep = 0;
    let collectMs;
    for (;;) {
      const a = hr();
      probe();
      const b = hr();
      if (p.endTime !== end) {
        collectMs = ms(b - a);
        break;
      }
      if (Date.now() > end + 1000) throw new Error('the clock thread did not publish the new interval within 1 s');
    }
    const closeMs = native.close;
    const keepMs = native.keep;
    const delivery = await new Promise((resolve) => {
      waiting = { after: end + delay - 5, resolve };
    });
    last = delivery.d;
    const intakeMs = threadCpuMs(intake) - intakeBefore;
    const row = { recordMs, collectMs, nativeCloseMs: closeMs, nativeKeepMs: keepMs, intakeMs, deliveryMs: delivery.jsMs, nativeDeliverMs: delivery.nativeMs };
    if (w >= opts.warmup) rows.push(row);
    process.stderr.write(`collection: ${n} series, interval ${w + 1}/${opts.warmup + opts.intervals}${w < opts.warmup ? ' (warm-up)' : ''}: collection ${fmt(collectMs)} ms, delivery ${fmt(delivery.jsMs)} ms\n`);
  }

  // Read the whole tree of the last delivery once, and check it.
  t0 = hr();
  const tree = last.data.master;
  const readMs = ms(hr() - t0);
  let leaves = 0;
  let wrong = 0;
  for (const route of Object.values(tree.svc || {})) {
    for (const leaf of Object.values(route)) {
      leaves += 1;
      if (!(leaf.type === 'inc' && leaf.value.val > 0)) wrong += 1;
    }
  }
  if (leaves !== n || wrong !== 0) throw new Error(`the delivery held ${leaves} counters (${wrong} wrong), not ${n}`);
  p.stop();
  const col = (k) => rows.map((r) => r[k]);
  return {
    series: n,
    createMs,
    rssMiB: process.memoryUsage().rss / 2 ** 20,
    perInterval: rows,
    medians: Object.fromEntries(Object.keys(rows[0]).map((k) => [k, median(col(k))])),
    maxima: Object.fromEntries(Object.keys(rows[0]).map((k) => [k, max(col(k))])),
    readMasterMs: readMs,
    checked: { leaves, wrong },
  };
}

async function parent() {
  console.log(`collection benchmark: N counters recorded once per interval, interval ${opts.interval} ms, ${opts.warmup} warm-up + ${opts.intervals} measured intervals, one process per N`);
  const results = [];
  for (const n of opts.series) {
    const tmp = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'panoptic-collection-')), 'child.json');
    const args = [__filename, '--child', String(n), '--interval', String(opts.interval), '--warmup', String(opts.warmup), '--intervals', String(opts.intervals), '--json', tmp];
    const code = await new Promise((resolve) => {
      spawn(process.execPath, args, { stdio: 'inherit' }).on('exit', (c, signal) => resolve(signal ? 1 : c));
    });
    if (code !== 0) throw new Error(`collection with ${n} series exited with code ${code}`);
    results.push(JSON.parse(fs.readFileSync(tmp, 'utf8')));
    fs.rmSync(path.dirname(tmp), { recursive: true, force: true });
  }

  const mm = (r, k) => `${fmt(r.medians[k])} / ${fmt(r.maxima[k])}`;
  console.log();
  console.log('| series | create (bind) s | record all, ms (ns/series) | **collection, JS thread ms** (median / max) | of which native close + keep ms | intake thread ms (median / max) | delivery, JS thread ms (median / max) | of which native deliver ms | read whole data.master ms | RSS MiB |');
  console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const r of results) {
    console.log(`| ${r.series.toLocaleString('en-US')} | ${fmt(r.createMs / 1000)} | ${fmt(r.medians.recordMs)} (${fmt((r.medians.recordMs * 1e6) / r.series)}) | ${mm(r, 'collectMs')} | ${fmt(r.medians.nativeCloseMs)} + ${fmt(r.medians.nativeKeepMs)} | ${mm(r, 'intakeMs')} | ${mm(r, 'deliveryMs')} | ${fmt(r.medians.nativeDeliverMs)} | ${fmt(r.readMasterMs)} | ${fmt(r.rssMiB)} |`);
  }
  console.log();
  console.log('collection: the record call that closed the interval at the boundary (the event loop is blocked');
  console.log('that long); native: NativeEngine#closeInterval + #keep inside it. intake thread: its CPU time from');
  console.log('the boundary to the delivery (naming and merging the interval, off the JS thread). delivery: native');
  console.log("deliver to the 'delivery' handler (reading meta). read whole data.master: rendering and parsing every series,");
  console.log('once, after the last interval (lazy: paid only by a handler that reads it). Medians / maxima over');
  console.log(`${opts.intervals} measured intervals. Every delivery tree read was checked (N counters, each counted).`);

  const at = results.find((r) => r.series === TARGET_SERIES);
  const targets = [judge(`collection of ${TARGET_SERIES.toLocaleString('en-US')} series: under ${TARGET_MS} ms of JS-thread time (median)`, at ? at.medians.collectMs : NaN, { max: TARGET_MS, unit: 'ms' })];
  console.log();
  console.log(table(targets));
  return { config: { interval: opts.interval, warmup: opts.warmup, intervals: opts.intervals, kind: 'counter (bind inc)', seriesPerPath: 100 }, results, targets };
}

async function main() {
  const out = opts.child > 0 ? await child(opts.child) : await parent();
  if (opts.json) {
    writeJson(opts.json, out);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
