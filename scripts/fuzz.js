'use strict';

// Runs the core's fuzz targets (fuzz/, cargo-fuzz and libFuzzer; FUZZING.md says what each
// checks), one after the other, each for `--time` seconds, and prints per target the
// executions, their rate, the coverage reached and whether it crashed. Exits non-zero when a
// target crashed (its input is in fuzz/artifacts/<target>/, and the output says how to rerun it).
//
//   npm run fuzz -- --time 60 [--runs 10000000] [--only wire,filter]
//
// It needs the nightly toolchain (installed with rustup when missing) and cargo-fuzz (installed
// from crates.io when missing). Each target starts from its committed seeds (fuzz/corpus/<target>/)
// and from what earlier runs on this machine found (fuzz/target/corpus/<target>/, not committed):
// new inputs go there, so the committed seeds stay as the generator wrote them.

const { execFileSync, spawn } = require('child_process');
const fs = require('fs');
const path = require('path');
const { parseOptions, integerAtLeast } = require('../benchmark/options');

const root = path.join(__dirname, '..');
const fuzzDir = path.join(root, 'fuzz');

const opts = parseOptions(
  process.argv.slice(2),
  {
    time: { value: 60, help: 'seconds per target', check: integerAtLeast(1) },
    runs: { value: 0, help: 'also stop a target after this many executions (0: no limit)', check: integerAtLeast(0) },
    only: { value: null, help: 'comma-separated targets to run (default: all)' },
  },
  'npm run fuzz --',
);

function succeeds(command, args) {
  try {
    execFileSync(command, args, { stdio: 'ignore', cwd: root });
    return true;
  } catch {
    return false;
  }
}

function run(command, args) {
  console.error(`[fuzz] ${command} ${args.join(' ')}`);
  execFileSync(command, args, { stdio: 'inherit', cwd: root });
}

// cargo-fuzz needs nightly (libFuzzer's instrumentation flags); a fresh machine may have only
// stable.
if (!succeeds('cargo', ['+nightly', '--version'])) run('rustup', ['toolchain', 'install', 'nightly', '--profile', 'minimal']);
if (!succeeds('cargo', ['+nightly', 'fuzz', '--version'])) run('cargo', ['install', 'cargo-fuzz', '--locked']);

const all = execFileSync('cargo', ['+nightly', 'fuzz', 'list'], { cwd: root, encoding: 'utf8' }).split('\n').filter(Boolean);
const targets = opts.only === null ? all : opts.only.split(',');
for (const t of targets) {
  if (!all.includes(t)) throw new Error(`--only: no target ${t}; the targets are ${all.join(', ')}`);
}

// The build flags, the same for the build and each run (a difference would rebuild): no
// sanitizer, since the core forbids unsafe code (AddressSanitizer would only halve the rate),
// and debug assertions with overflow checks on, so an arithmetic overflow is a crash too.
const flags = ['--sanitizer', 'none', '--debug-assertions'];
run('cargo', ['+nightly', 'fuzz', 'build', ...flags]);

/** Runs one target for `seconds`; resolves to what libFuzzer reported. */
function fuzz(target, seconds) {
  const work = path.join(fuzzDir, 'target', 'corpus', target);
  const seeds = path.join(fuzzDir, 'corpus', target);
  fs.mkdirSync(work, { recursive: true });
  fs.mkdirSync(seeds, { recursive: true });
  // New inputs go to the first directory; the seeds are read only.
  const args = ['+nightly', 'fuzz', 'run', ...flags, target, work, seeds, '--', `-max_total_time=${seconds}`, `-runs=${opts.runs || -1}`, '-print_final_stats=1'];
  return new Promise((resolve) => {
    const child = spawn('cargo', args, { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk) => {
      log += chunk;
      // Keep the head (the build and seed loading) and the tail (stats, a crash's report).
      if (log.length > 1 << 20) log = log.slice(0, 1 << 16) + '\n...\n' + log.slice(-(1 << 19));
    });
    child.on('close', (code, signal) => {
      const stat = (name) => {
        const m = log.match(new RegExp(`stat::${name}:\\s*(\\d+)`));
        return m ? Number(m[1]) : undefined;
      };
      const progress = [...log.matchAll(/^#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+) corp: (\d+)/gm)].at(-1);
      const seconds = (log.match(/Done \d+ runs in (\d+) second/) || [])[1];
      const artifact = (log.match(/Test unit written to (\S+)/) || [])[1];
      resolve({
        target,
        code,
        signal,
        executions: stat('number_of_executed_units'),
        seconds: seconds === undefined ? undefined : Number(seconds),
        cov: progress ? Number(progress[2]) : undefined,
        features: progress ? Number(progress[3]) : undefined,
        corpus: progress ? Number(progress[4]) : undefined,
        rssMb: stat('peak_rss_mb'),
        artifact,
        log,
      });
    });
  });
}

function fmt(n) {
  return n === undefined ? '?' : n.toLocaleString('en-US');
}

(async () => {
  console.log(`${targets.length} targets, ${opts.time} s each`);
  console.log(`${'target'.padEnd(20)} ${'executions'.padStart(14)} ${'exec/s'.padStart(9)} ${'cov'.padStart(6)} ${'features'.padStart(9)} ${'corpus'.padStart(7)} ${'rss MB'.padStart(7)}  result`);
  const failed = [];
  for (const target of targets) {
    const r = await fuzz(target, opts.time);
    const ok = r.code === 0;
    const rate = r.executions !== undefined && r.seconds ? Math.round(r.executions / r.seconds) : undefined;
    console.log(
      `${target.padEnd(20)} ${fmt(r.executions).padStart(14)} ${fmt(rate).padStart(9)} ${fmt(r.cov).padStart(6)} ${fmt(r.features).padStart(9)} ${fmt(r.corpus).padStart(7)} ${fmt(r.rssMb).padStart(7)}  ${ok ? 'ok' : `CRASH (${r.signal || `exit ${r.code}`})`}`,
    );
    if (!ok) failed.push(r);
  }
  for (const r of failed) {
    console.error(`\n[fuzz] ${r.target} failed; the end of its output:\n${r.log.slice(-6000)}`);
    if (r.artifact) console.error(`[fuzz] rerun: cargo +nightly fuzz run ${flags.join(' ')} ${r.target} ${r.artifact}`);
  }
  process.exitCode = failed.length === 0 ? 0 : 1;
})();
