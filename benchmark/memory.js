'use strict';

// Memory benchmark: bytes per series, for a counter, a sample and a default histogram, panoptic
// next to panopticon 0.3.0, prom-client and node:perf_hooks. `node benchmark/memory.js` runs it
// alone; `npm run bench` runs it as its part "memory"; `--help` lists options.
//
// Method: each measurement runs in a fresh process (this script with --child <case>, under
// --expose-gc). The process loads the library, makes its instance and 1,000 warm-up series (so
// the code is compiled and the first pages, maps and buffers exist), runs a full GC twice and
// reads process.memoryUsage(); then it makes N series (default 100,000) and records into each,
// runs a full GC twice and reads process.memoryUsage() again. Reported per series: the increase of
// - RSS (resident memory): the figure the targets are judged on, because it is everything the
//   process pays for its series: the JS objects (handles, the key caches), the native (Rust) heap
//   V8 does not see, and the typed-array pages counters are written into;
// - the V8 heap in use (heapUsed): the JS side alone;
// - external memory (V8's `external`, which includes ArrayBuffers): buffers owned outside the JS
//   heap that V8 was told about.
// RSS also holds allocator slack and V8 heap pages kept after GC; spread over N series it is a
// few bytes each. A case stops adding series when its RSS grew by more than --budget MiB (the
// number of series measured is reported): a dense HDR histogram takes ~100 KB, and 100,000 of
// them would not fit a shared 24 GiB machine. Bytes per series do not depend on N beyond that.
// Layout: N series at path ['svc', 'route<i / 100>'], id 'n<i % 100>' (100 per path; prom-client:
// labels { route, n }), and, for panoptic's counter, also one series per path
// (['svc', 'route<i>'], 'requests'), where each series has its own node in the key cache.
// What each series records: a counter 1 increment; a sample 16 values; a histogram 16 values
// from the benchmarks' fixed log-uniform set divided by 10: 0.1 ms to 10 s, latency-like (an HDR
// histogram's size follows the magnitude of its largest value).

const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawn } = require('child_process');
const { judge, table, show } = require('./targets');
const { parseOptions, integerAtLeast, writeJson } = require('./options');
const { MASK, VALUES } = require('./values');

const WARM = 1000;
const PER_SERIES = 16; // values recorded into each sample / histogram series
const HOUR = 3600000;

// kind, library, what is measured, and how to make series i (and record into it).
const CASES = {
  'counter/panoptic': ['counter', 'panoptic', "p.inc(path, id, 1)", () => {
    const p = new (require('..'))({ interval: HOUR, startTime: Date.now() });
    return { add: (route, id) => p.inc(['svc', route], id, 1), stop: () => p.stop() };
  }],
  'counter/panoptic-path-each': ['counter', 'panoptic', 'p.inc(path, id, 1), one series per path', () => {
    const p = new (require('..'))({ interval: HOUR, startTime: Date.now() });
    let i = 0;
    return { add: () => p.inc(['svc', `r${i++}`], 'requests', 1), stop: () => p.stop() };
  }],
  'counter/panopticon': ['counter', 'panopticon 0.3.0', 'p.inc(path, id, 1)', () => {
    const p = new (require('panopticon'))({ interval: HOUR, startTime: Date.now() });
    return { add: (route, id) => p.inc(['svc', route], id, 1), stop: () => p.stop() };
  }],
  'counter/prom-client': ['counter', 'prom-client', 'Counter.inc({ route, n })', () => {
    const { Counter } = require('prom-client');
    const c = new Counter({ name: 'requests_total', help: 'requests', labelNames: ['route', 'n'], registers: [] });
    return { add: (route, id) => c.inc({ route, n: id }) };
  }],
  'sample/panoptic': ['sample', 'panoptic', `p.sample(path, id, v) x ${PER_SERIES}`, () => {
    const p = new (require('..'))({ interval: HOUR, startTime: Date.now() });
    return { add: (route, id, values) => values.forEach((v) => p.sample(['svc', route], id, v)), stop: () => p.stop() };
  }],
  'sample/panopticon': ['sample', 'panopticon 0.3.0', `p.sample(path, id, v) x ${PER_SERIES}`, () => {
    const p = new (require('panopticon'))({ interval: HOUR, startTime: Date.now() });
    return { add: (route, id, values) => values.forEach((v) => p.sample(['svc', route], id, v)), stop: () => p.stop() };
  }],
  'histogram/panoptic': ['histogram', 'panoptic', `p.histogram(path, id, v) x ${PER_SERIES}, default options (HDR)`, () => {
    const p = new (require('..'))({ interval: HOUR, startTime: Date.now() });
    return { add: (route, id, values) => values.forEach((v) => p.histogram(['svc', route], id, v)), stop: () => p.stop() };
  }],
  'histogram/prom-client': ['histogram', 'prom-client', `Histogram.observe({ route, n }, v) x ${PER_SERIES}, default buckets`, () => {
    const { Histogram } = require('prom-client');
    const h = new Histogram({ name: 'latency', help: 'latency', labelNames: ['route', 'n'], registers: [] });
    return { add: (route, id, values) => values.forEach((v) => h.observe({ route, n: id }, v)) };
  }],
  'histogram/perf_hooks': ['histogram', 'node:perf_hooks', `createHistogram() per series, record(us) x ${PER_SERIES}`, () => {
    const { createHistogram } = require('perf_hooks');
    const all = new Map();
    return {
      add: (route, id, values) => {
        const h = createHistogram();
        all.set(`${route}/${id}`, h);
        values.forEach((v) => h.record(Math.max(1, Math.round(v * 1000))));
      },
    };
  }],
};

const opts = parseOptions(process.argv.slice(2), {
  series: { value: 100000, help: 'series per case', check: integerAtLeast(1) },
  budget: { value: 2048, help: 'MiB of RSS growth after which a case stops adding series', check: integerAtLeast(16) },
  cases: { value: Object.keys(CASES).join(','), help: 'which cases, comma-separated', check: (v) => v.split(',').every((c) => c in CASES) ? undefined : `must name cases among ${Object.keys(CASES).join(', ')}` },
  json: { value: null, help: 'also write the results as JSON to this file' },
  child: { value: null, help: '(internal) measure this case in this process' },
}, 'node benchmark/memory.js');

function child(name) {
  if (typeof global.gc !== 'function') throw new Error('run with --expose-gc');
  const [kind, library, what, make] = CASES[name];
  const lib = make();
  const values = (i) => (kind === 'counter' ? [] : Array.from({ length: PER_SERIES }, (_, j) => VALUES[(i * PER_SERIES + j) & MASK] / 10));
  const at = (i, prefix) => [`${prefix}${Math.floor(i / 100)}`, `n${i % 100}`];
  for (let i = 0; i < WARM; i++) lib.add(...at(i, 'warm'), values(i));
  const gc = () => {
    global.gc();
    global.gc();
  };
  gc();
  const before = process.memoryUsage();
  const budget = opts.budget * 2 ** 20;
  let n = 0;
  while (n < opts.series) {
    lib.add(...at(n, 'route'), values(n));
    n += 1;
    if (n % 1000 === 0 && process.memoryUsage.rss() - before.rss > budget) break;
  }
  // panoptic's sample and histogram values wait in a batch until it is full (or the interval
  // closes): fill it once more through a warm-up series so that every value has reached its series.
  if (kind !== 'counter') for (let j = 0; j < 8192; j++) lib.add(...at(0, 'warm'), [VALUES[j & MASK] / 10]);
  gc();
  const after = process.memoryUsage();
  const per = (k) => (after[k] - before[k]) / n;
  const out = { case: name, kind, library, what, series: n, rss: per('rss'), heapUsed: per('heapUsed'), external: per('external'), before, after };
  if (lib.stop) lib.stop();
  return out;
}

async function parent() {
  const names = opts.cases.split(',');
  console.log(`memory benchmark: bytes per series at ${opts.series.toLocaleString('en-US')} series (fewer when a case's RSS grows past ${opts.budget} MiB), a fresh process per case`);
  const results = [];
  for (const name of names) {
    const tmp = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'panoptic-memory-')), 'child.json');
    const args = ['--expose-gc', __filename, '--child', name, '--series', String(opts.series), '--budget', String(opts.budget), '--json', tmp];
    const code = await new Promise((resolve) => {
      spawn(process.execPath, args, { stdio: 'inherit' }).on('exit', (c, signal) => resolve(signal ? 1 : c));
    });
    if (code !== 0) throw new Error(`memory case ${name} exited with code ${code}`);
    const r = JSON.parse(fs.readFileSync(tmp, 'utf8'));
    fs.rmSync(path.dirname(tmp), { recursive: true, force: true });
    process.stderr.write(`memory: ${name}: ${show(r.rss, 'B')} per series (${r.series} series)\n`);
    results.push(r);
  }
  console.log();
  console.log('| kind | library | recorded | series | **RSS / series** | JS heap / series | external / series |');
  console.log('| --- | --- | --- | ---: | ---: | ---: | ---: |');
  for (const r of results) {
    console.log(`| ${r.kind} | ${r.library} | ${r.what} | ${r.series.toLocaleString('en-US')} | ${show(r.rss, 'B')} | ${show(r.heapUsed, 'B')} | ${show(r.external, 'B')} |`);
  }
  console.log();
  console.log('Increase of process.memoryUsage() from before to after making the series and recording into them,');
  console.log('each after two full GCs, divided by the number of series. RSS is judged: it holds the JS objects,');
  console.log(`the native heap and the counter pages. Series: 100 per path (labels { route, n }); samples and`);
  console.log(`histograms got ${PER_SERIES} values each, 0.1 ms to 10 s.`);

  const rss = (name) => (results.find((r) => r.case === name) || {}).rss;
  const targets = [
    judge('counter series: at most 64 bytes (RSS)', rss('counter/panoptic'), { max: 64, unit: 'B' }),
    judge('default histogram series: at most 16 KiB (RSS)', rss('histogram/panoptic'), { max: 16384, unit: 'B' }),
  ];
  console.log();
  console.log(table(targets));
  return { config: { series: opts.series, budgetMiB: opts.budget, valuesPerSeries: PER_SERIES, warmupSeries: WARM, seriesPerPath: 100 }, results, targets };
}

async function main() {
  const out = opts.child ? child(opts.child) : await parent();
  if (opts.json) {
    writeJson(opts.json, out);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
