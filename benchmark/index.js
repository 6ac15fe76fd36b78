'use strict';

// `npm run bench`: panoptic side by side with the libraries users choose instead, in parts:
// - hot-path (benchmark/hotpath.js, a process of its own): the cost of one record, panoptic against
//   panopticon 0.3.0, prom-client, @opentelemetry/sdk-metrics, node:perf_hooks, hdr-histogram-js
//   (WebAssembly) and a plain JS field (the floor), in two scenarios, counter and distribution;
// - collection (benchmark/collection.js, processes of its own): the time an interval boundary
//   blocks the event loop with 10k, 100k and 1M series;
// - memory (benchmark/memory.js, a fresh process per measurement): bytes per series;
// - cluster (benchmark/cluster.js, a process of its own: it forks the cluster workers): master CPU
//   and event-loop blocks of cluster-wide aggregation, panoptic against prom-client, and an idle
//   master's CPU per second with and without panoptic (`--cluster-args '--mix idle'` alone);
// - trace (benchmark/trace.js, a process of its own): idle trace() against an empty function and
//   jstrace 0.3.0, and the cost with a tracer attached;
// - exposition (benchmark/exposition.js, a process of its own): GET /metrics of 100k and 1M series
//   against prom-client's registry.metrics(), and the JS-thread time a scrape costs;
// - cardinality (benchmark/cardinality.js, a process of its own: it forks a cluster master per
//   run, which forks the workers): a worker recording 100k new ids per interval for 40 intervals,
//   with maxSeries at its default and at 200,000: RSS per interval, values recorded vs delivered,
//   the master's longest event-loop blocks and skipped deliveries;
// - runtime (benchmark/runtime.js, a process per run): the JS thread's CPU per interval of an
//   instance with `runtime: true` against the same without;
// - push (benchmark/push.js, a process per run and one for the receiver): the CPU of one remote
//   write push of 100k series on the JS thread, the exporter thread and the pusher's thread;
// - criterion (not run by default: cargo compiles for a while): the core crate's criterion benches
//   (`cargo bench -p panoptic-core`), record / merge / wire / exposition throughput.
// `--only <part>` (repeatable) or `--skip <part>` chooses the parts; `node benchmark/index.js
// --help` lists every option. At the end, the project's performance targets are judged from the
// parts that ran.

const fs = require('fs');
const os = require('os');
const path = require('path');
const { execSync, execFileSync, spawn } = require('child_process');
const { fmt, watchOthers, othersLine } = require('./stats');
const { table } = require('./targets');
const { writeJson } = require('./options');

// ---- options ----------------------------------------------------------------------------------

const PARTS = ['hot-path', 'collection', 'memory', 'cluster', 'trace', 'exposition', 'cardinality', 'runtime', 'push', 'criterion'];
const DEFAULT_PARTS = PARTS.filter((p) => p !== 'criterion');

function parseArgs(argv) {
  const opts = {
    json: null,
    rounds: 9,
    time: 500,
    warmupTime: 100,
    parts: new Set(DEFAULT_PARTS),
    only: false,
    partArgs: { collection: [], memory: [], cluster: [], trace: [], exposition: [], cardinality: [], runtime: [], push: [], criterion: [] },
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    const args = /^--(collection|memory|cluster|trace|exposition|cardinality|runtime|push|criterion)-args$/.exec(a);
    if (a === '--json') opts.json = next();
    else if (a === '--rounds') opts.rounds = Number(next());
    else if (a === '--time') opts.time = Number(next());
    else if (a === '--warmup-time') opts.warmupTime = Number(next());
    else if (a === '--only' || a === '--skip') {
      const part = next();
      if (!PARTS.includes(part)) throw new Error(`${a} takes one of ${PARTS.join(', ')}, got ${part}`);
      if (a === '--only') {
        if (!opts.only) opts.parts = new Set();
        opts.only = true;
        opts.parts.add(part);
      } else {
        opts.parts.delete(part);
      }
    } else if (args) opts.partArgs[args[1]] = next().split(/\s+/).filter(Boolean);
    else if (a === '--help' || a === '-h') {
      console.log([
        'usage: node benchmark/index.js [options]',
        '  --json <file>              also write every part\'s results as JSON',
        '  --rounds <n>=9             hot path: measured rounds',
        '  --time <ms>=500            hot path: ms per task per round',
        '  --warmup-time <ms>=100     hot path: tinybench warm-up per task',
        `  --only <part>              run this part (repeatable); parts: ${PARTS.join(', ')}`,
        `                             (default: ${DEFAULT_PARTS.join(', ')}, in this order)`,
        '  --skip <part>              leave a part out',
        "  --<part>-args '<args>'     passed on to the part's script (collection, memory, cluster,",
        '                             trace, exposition, cardinality, runtime, push: see `node',
        '                             benchmark/<part>.js --help`;',
        '                             criterion: to criterion, e.g. --criterion-args \'wire\'',
        '                             runs the wire benches)',
      ].join('\n'));
      process.exit(0);
    } else {
      throw new Error(`unknown argument ${a} (try --help)`);
    }
  }
  if (!(Number.isInteger(opts.rounds) && opts.rounds >= 1)) throw new Error('--rounds must be an integer >= 1');
  if (!(opts.time > 0)) throw new Error('--time must be > 0');
  if (!(opts.warmupTime >= 0)) throw new Error('--warmup-time must be >= 0');
  return opts;
}

const opts = parseArgs(process.argv.slice(2));

// ---- running ----------------------------------------------------------------------------------

function commandVersion(cmd) {
  try {
    return execSync(cmd, { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
  } catch {
    return null;
  }
}

function packageVersion(name) {
  try {
    // Read from node_modules: some packages (tinybench) do not export their package.json.
    return JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'node_modules', name, 'package.json'), 'utf8')).version;
  } catch {
    return null;
  }
}

async function main() {
  const started = Date.now();
  const cpu = (os.cpus()[0] || {}).model || 'unknown';
  const report = {
    date: new Date().toISOString(),
    command: `node benchmark/index.js ${process.argv.slice(2).join(' ')}`.trim(),
    machine: { cpus: os.cpus().length, cpu, memoryGiB: os.totalmem() / 2 ** 30, platform: `${os.platform()} ${os.release()} ${os.arch()}` },
    node: process.version,
    v8: process.versions.v8,
    rustc: commandVersion('rustc --version'),
    versions: Object.fromEntries(['tinybench', 'panopticon', 'prom-client', '@opentelemetry/sdk-metrics', 'hdr-histogram-js'].map((n) => [n, packageVersion(n)])),
    parts: [...opts.parts],
  };
  const targets = [];
  // How much other processes used the CPU during each part (see stats.js's watchOthers).
  report.load = {};
  const watched = async (part, run) => {
    const watch = watchOthers();
    const out = await run();
    report.load[part] = watch();
    console.log(`\n${part}: ${othersLine(report.load[part])}`);
    return out;
  };
  if (opts.parts.has('hot-path')) {
    const args = ['--rounds', String(opts.rounds), '--time', String(opts.time), '--warmup-time', String(opts.warmupTime)];
    report.hotPath = await watched('hot-path', () => runPart('hotpath.js', args));
    targets.push(...report.hotPath.targets);
  }
  for (const part of ['collection', 'memory', 'cluster', 'trace', 'exposition', 'cardinality', 'runtime', 'push']) {
    if (!opts.parts.has(part)) continue;
    console.log();
    report[part] = await watched(part, () => runPart(`${part}.js`, opts.partArgs[part]));
    if (report[part] && Array.isArray(report[part].targets)) targets.push(...report[part].targets);
  }
  if (opts.parts.has('criterion')) {
    console.log();
    report.criterion = await watched('criterion', () => runCriterion(opts.partArgs.criterion));
  }
  report.targets = targets;
  report.elapsedSeconds = (Date.now() - started) / 1000;
  if (targets.length > 0) {
    console.log(`\nTargets (${targets.filter((t) => t.met).length} of ${targets.length} met):\n`);
    console.log(table(targets));
  }
  console.log(`\nnpm run bench: ${report.parts.join(', ')} in ${report.elapsedSeconds.toFixed(0)} s`);
  if (opts.json) {
    writeJson(opts.json, report);
    console.log(`wrote ${opts.json}`);
  }
}

/** benchmark/<file> in a process of its own, with `args`; its JSON report. */
async function runPart(file, args) {
  const tmp = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'panoptic-bench-')), 'part.json');
  const argv = [path.join(__dirname, file), ...args, '--json', tmp];
  try {
    const code = await new Promise((resolve) => {
      const child = spawn(process.execPath, argv, { stdio: 'inherit' });
      child.on('exit', (c, signal) => resolve(signal ? 1 : c));
    });
    if (code !== 0) throw new Error(`benchmark/${file} exited with code ${code}`);
    return JSON.parse(fs.readFileSync(tmp, 'utf8'));
  } finally {
    fs.rmSync(path.dirname(tmp), { recursive: true, force: true });
  }
}

// crates/panoptic-core/benches/*.rs (named, so that cargo does not also run the library's
// test harness in bench mode).
const BENCHES = ['record', 'merge', 'wire', 'exposition'];

/**
 * The core crate's criterion benches (crates/panoptic-core/benches), then their results as
 * criterion wrote them (<target>/criterion/<group>/<bench>/new/): one row per bench run now.
 */
function runCriterion(args) {
  const root = path.join(__dirname, '..');
  const argv = ['bench', '-p', 'panoptic-core', ...BENCHES.flatMap((b) => ['--bench', b]), ...(args.length > 0 ? ['--', ...args] : [])];
  console.log(`criterion: cargo ${argv.join(' ')}`);
  const since = Date.now() - 1000;
  execFileSync('cargo', argv, { cwd: root, stdio: 'inherit' });
  const meta = JSON.parse(execFileSync('cargo', ['metadata', '--format-version', '1', '--no-deps'], { cwd: root }).toString());
  const rows = [];
  const walk = (dir) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (!entry.isDirectory()) continue;
      if (entry.name !== 'new') {
        walk(full);
        continue;
      }
      const file = path.join(full, 'benchmark.json');
      if (!fs.existsSync(file) || fs.statSync(file).mtimeMs < since) continue;
      const bench = JSON.parse(fs.readFileSync(file, 'utf8'));
      const estimates = JSON.parse(fs.readFileSync(path.join(full, 'estimates.json'), 'utf8'));
      const elements = bench.throughput && (bench.throughput.Elements ?? bench.throughput.ElementsAndBytes?.elements);
      const ns = estimates.median.point_estimate;
      rows.push({
        id: bench.full_id,
        medianNs: ns,
        lowNs: estimates.median.confidence_interval.lower_bound,
        highNs: estimates.median.confidence_interval.upper_bound,
        elements: elements ?? null,
        elementsPerSecond: elements ? (elements * 1e9) / ns : null,
      });
    }
  };
  const dir = path.join(meta.target_directory, 'criterion');
  if (fs.existsSync(dir)) walk(dir);
  rows.sort((a, b) => a.id.localeCompare(b.id));
  const time = (ns) => (ns >= 1e6 ? `${fmt(ns / 1e6)} ms` : ns >= 1e3 ? `${fmt(ns / 1e3)} us` : `${fmt(ns)} ns`);
  const rate = (x) => (x >= 1e9 ? `${fmt(x / 1e9)} G/s` : x >= 1e6 ? `${fmt(x / 1e6)} M/s` : `${fmt(x / 1e3)} K/s`);
  console.log('\n| bench | median time | elements | elements/s |');
  console.log('| --- | ---: | ---: | ---: |');
  for (const r of rows) console.log(`| ${r.id} | ${time(r.medianNs)} | ${r.elements ?? '-'} | ${r.elementsPerSecond ? rate(r.elementsPerSecond) : '-'} |`);
  return { command: `cargo ${argv.join(' ')}`, results: rows };
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
