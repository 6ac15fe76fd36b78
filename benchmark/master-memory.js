'use strict';

// The master's memory per series: what a cluster master holds for each series its workers record
// (the registry of series ids, the places of the delivery tree, the interval being gathered, the
// last delivery, and with serve() the export store of cumulative values). `node
// benchmark/master-memory.js` runs it alone; `npm run bench` runs it as its part "master-memory";
// `--help` lists options.
//
// Method: each configuration runs in a fresh process (this script with --child, under
// --expose-gc), a cluster master with one Panopticon (--interval ms) that cluster.fork()s
// --workers workers, each with an instance of the same name. Every worker records, every
// quarter interval, into each of its series through bind('inc') handles: first --warm series,
// then --series more; every worker records the SAME series (the case of a cluster of identical
// workers: the master holds each series once, merged, and receives it from each worker). The
// master, after --settle deliveries of the warm-up series that carry every worker's snapshot, runs a full GC twice and reads its
// RSS (VmRSS: native memory included) and JS heap; it then asks the workers for the new series,
// waits until each has made them and --settle more deliveries carrying every worker's snapshot
// have passed, and reads again.
// Reported per series: the increase of the master's RSS and JS heap divided by --series. The
// master reads only `meta` of its deliveries (a tree read costs its own memory, and a user who
// reads trees pays it per delivery, not per series held). Two configurations: deliveries only,
// and with serve() (its store keeps every series' cumulative value for /metrics).
// Layout of the series: ['svc', 'route<i / 100>'], id 'n<i % 100>' (100 per path), as in the
// memory part.

const cluster = require('cluster');
const fs = require('fs');
const path = require('path');
const { spawn } = require('child_process');
const { show } = require('./targets');
const { parseOptions, integerAtLeast, writeJson } = require('./options');

const opts = parseOptions(
  process.argv.slice(2),
  {
    series: { value: 100000, help: 'series every worker records after the warm-up', check: integerAtLeast(1) },
    warm: { value: 1000, help: 'series every worker records during the warm-up', check: integerAtLeast(1) },
    workers: { value: 8, help: 'cluster workers', check: integerAtLeast(1) },
    interval: { value: 500, help: 'the instances\' interval, ms', check: integerAtLeast(50) },
    settle: { value: 4, help: 'deliveries to wait before each reading', check: integerAtLeast(2) },
    child: { value: null, help: '(internal) run one configuration: deliver or serve' },
    json: { value: null, help: 'also write the results as JSON to this file' },
  },
  'node benchmark/master-memory.js',
);

const NAME = 'master-memory';

function rssBytes() {
  const status = fs.readFileSync('/proc/self/status', 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)[1]) * 1024;
}

// ---- worker: records into its series every quarter interval --------------------------------------

function worker() {
  const Panopticon = require('..');
  const p = new Panopticon({ name: NAME, interval: opts.interval });
  const handles = [];
  const grow = (n) => {
    for (let i = handles.length; i < n; i++) handles.push(p.bind('inc', ['svc', `route${Math.floor(i / 100)}`], `n${i % 100}`));
  };
  grow(opts.warm);
  setInterval(() => {
    for (let i = 0; i < handles.length; i++) handles[i](1);
  }, opts.interval / 4);
  process.on('message', (m) => {
    if (m && m.grow) {
      grow(opts.warm + opts.series);
      process.send({ grown: true });
    }
  });
  process.send({ ready: true });
}

// ---- master: one configuration --------------------------------------------------------------------

async function master(config) {
  const Panopticon = require('..');
  const p = new Panopticon({ name: NAME, interval: opts.interval });
  if (config === 'serve') await p.serve({ port: 0, host: '127.0.0.1' });
  // Deliveries that carry every worker's snapshot (on a busy machine one may come late: it is
  // dropped from its delivery and counted in meta.late).
  let complete = 0;
  let late = 0;
  let last = null;
  let waiter = null;
  p.on('delivery', (d) => {
    late += d.meta.late;
    if (Object.keys(d.meta.workers).length < opts.workers) return;
    complete += 1;
    last = d;
    if (waiter && complete >= waiter.count) waiter.resolve();
  });
  const afterDeliveries = (n) => new Promise((resolve) => { waiter = { count: complete + n, resolve }; });
  const workers = [];
  const answered = (what) => Promise.all(workers.map((w) => new Promise((resolve) => {
    const on = (m) => { if (m && m[what]) { w.off('message', on); resolve(); } };
    w.on('message', on);
  })));
  for (let i = 0; i < opts.workers; i++) workers.push(cluster.fork());
  await answered('ready');
  await afterDeliveries(opts.settle);
  const read = () => {
    global.gc();
    global.gc();
    return { rss: rssBytes(), heapUsed: process.memoryUsage().heapUsed };
  };
  const before = read();
  const grown = answered('grown');
  for (const w of workers) w.send({ grow: true });
  await grown;
  await afterDeliveries(opts.settle);
  const after = read();
  // Read after the measurement: the last delivery must hold every series (else what was measured
  // is not the master holding them).
  const svc = (last.data.cluster || {}).svc || {};
  const held = Object.values(svc).reduce((n, route) => n + Object.keys(route).length, 0);
  if (held !== opts.warm + opts.series) throw new Error(`the last delivery holds ${held} series, not ${opts.warm + opts.series}`);
  for (const w of workers) w.kill();
  p.stop();
  const per = (k) => (after[k] - before[k]) / opts.series;
  return { config, series: opts.series, workers: opts.workers, rss: per('rss'), heapUsed: per('heapUsed'), before, after, late };
}

// ---- runner ---------------------------------------------------------------------------------------

async function parent() {
  console.log(`master-memory benchmark: a cluster master's bytes per series, ${opts.workers} workers each recording the same ${opts.series.toLocaleString('en-US')} series (after ${opts.warm.toLocaleString('en-US')} warm-up series), interval ${opts.interval} ms`);
  const results = [];
  for (const config of ['deliver', 'serve']) {
    const tmp = path.join(fs.mkdtempSync(path.join(require('os').tmpdir(), 'panoptic-master-memory-')), 'child.json');
    const pass = ['--series', opts.series, '--warm', opts.warm, '--workers', opts.workers, '--interval', opts.interval, '--settle', opts.settle].map(String);
    const args = ['--expose-gc', __filename, '--child', config, ...pass, '--json', tmp];
    const code = await new Promise((resolve) => {
      spawn(process.execPath, args, { stdio: 'inherit' }).on('exit', (c, signal) => resolve(signal ? 1 : c));
    });
    if (code !== 0) throw new Error(`master-memory ${config} exited with code ${code}`);
    const r = JSON.parse(fs.readFileSync(tmp, 'utf8'));
    fs.rmSync(path.dirname(tmp), { recursive: true, force: true });
    process.stderr.write(`master-memory: ${config}: ${show(r.rss, 'B')} per series\n`);
    results.push(r);
  }
  console.log();
  console.log('| master | workers | series | **RSS / series** | JS heap / series | late snapshots |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
  const label = { deliver: 'deliveries only', serve: 'deliveries and serve()' };
  for (const r of results) {
    console.log(`| ${label[r.config]} | ${r.workers} | ${r.series.toLocaleString('en-US')} | ${show(r.rss, 'B')} | ${show(r.heapUsed, 'B')} | ${r.late} |`);
  }
  console.log();
  console.log("Increase of the master's RSS (VmRSS) and JS heap from before to after its workers made the");
  console.log('series and recorded into them for a few intervals, each after two full GCs, divided by the');
  console.log('number of series (every worker records the same series: the master holds each once).');
  // No target of its own: reported beside the recording process's bytes per series (memory part).
  return { config: { series: opts.series, warm: opts.warm, workers: opts.workers, interval: opts.interval, settle: opts.settle }, results, targets: [] };
}

async function main() {
  if (cluster.isWorker) return worker();
  const out = opts.child ? await master(opts.child) : await parent();
  if (opts.json) writeJson(opts.json, out);
  if (opts.child) process.exit(0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
