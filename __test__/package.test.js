'use strict';

// The published package, as a user gets it: `npm pack` the repo, check the tarball holds exactly
// what a user needs, install it into an empty project and use it from there. Needs the addon built
// (`npm run build`, which `npm test` does through scripts/prepare.js) and takes some seconds.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const root = path.join(__dirname, '..');
const pkg = require('../package.json');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

// What npm injects into the environment of `npm test`: it describes this repo's package and must
// not leak into the npm commands run for the temp project.
function cleanEnv() {
  const env = { ...process.env };
  for (const key of Object.keys(env)) {
    if (/^npm_(package_|lifecycle_|command$|config_local_prefix$|config_call$)/i.test(key)) delete env[key];
  }
  env.npm_config_update_notifier = 'false';
  env.npm_config_fund = 'false';
  env.npm_config_audit = 'false';
  return env;
}

function run(cmd, args, cwd, timeout = 120000) {
  const r = spawnSync(cmd, args, {
    cwd,
    env: cleanEnv(),
    encoding: 'utf8',
    timeout,
    // Windows runs npm.cmd only through a shell.
    shell: cmd === 'npm.cmd',
  });
  if (r.error) throw r.error;
  return r;
}

function check(r, what) {
  assert.equal(r.status, 0, `${what} exited ${r.status} (signal ${r.signal})\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
  return r;
}

/** Every file under `dir`, as relative paths with '/'. */
function listFiles(dir, prefix = '') {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? listFiles(path.join(dir, e.name), `${prefix}${e.name}/`) : [`${prefix}${e.name}`]);
}

function tempDir(prefix) {
  return fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), prefix)));
}

// Run by `node` in the temp project: one instance, one `inc`, the first delivery printed as JSON.
// It starts 10-70 ms into a 100 ms interval so that the record cannot land in the interval after
// the one the first delivery reports.
const CONSUMER = `'use strict';
const Panopticon = require('panoptic');
const resolved = require.resolve('panoptic');
const failsafe = setTimeout(() => { console.error('no delivery within 10 s'); process.exit(2); }, 10000);
function start() {
  const phase = Date.now() % 100;
  if (phase < 10 || phase > 70) { setTimeout(start, ((110 - phase) % 100) || 1); return; }
  const p = new Panopticon({ interval: 100 });
  p.inc(null, 'hits');
  p.once('delivery', (delivery) => {
    p.stop();
    clearTimeout(failsafe);
    console.log('RESULT ' + JSON.stringify({ pid: process.pid, resolved, delivery }));
  });
}
start();
`;

// Run by `node` in the temp project: metrix's API from the installed package, its report as JSON
// (quantiles rounded to 2 decimals: the differential test checks them bit for bit).
const METRIX_CONSUMER = `'use strict';
const metrix = require('panoptic/metrix');
const recorder = metrix.createRecorder();
const aggregator = metrix.createAggregator(recorder);
const api = recorder.scope('api');
api.counter('hits').incr(2);
const size = api.histogram('size');
for (let i = 1; i <= 100; i++) size.add(i);
const report = aggregator.report();
for (const h of Object.values(report.histograms)) {
  for (const key of Object.keys(h)) h[key] = Math.round(h[key] * 100) / 100;
}
console.log(JSON.stringify({ resolved: require.resolve('panoptic/metrix'), report }));
`;

test('npm pack holds what a user needs and installs into an empty project', { timeout: 240000 }, (t) => {
  const addons = fs.readdirSync(root).filter((f) => /^panoptic\..+\.node$/.test(f));
  assert.ok(addons.length > 0, 'no panoptic.*.node in the repo root: run `npm run build` (or `node scripts/prepare.js`) first');
  assert.ok(fs.existsSync(path.join(root, 'binding.js')), 'no binding.js: run `npm run build` first');

  const packDir = tempDir('panoptic-pack-');
  const projectDir = tempDir('panoptic-consumer-');
  t.after(() => {
    fs.rmSync(packDir, { recursive: true, force: true });
    fs.rmSync(projectDir, { recursive: true, force: true });
  });

  // Pack.
  const packed = check(run(npm, ['pack', '--json', '--pack-destination', packDir], root), 'npm pack');
  const report = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('[')));
  const tgz = path.join(packDir, report[0].filename);
  assert.ok(fs.existsSync(tgz), `${tgz} was not written`);
  assert.equal(report[0].name, pkg.name);
  assert.equal(report[0].version, pkg.version);

  // An empty project, the tarball installed into it. No runtime dependencies, so no registry is
  // needed; --offline only if it works here (it should), else plain.
  check(run(npm, ['init', '-y'], projectDir), 'npm init -y');
  const installArgs = ['install', tgz, '--no-audit', '--no-fund', '--no-package-lock'];
  let installed = run(npm, [...installArgs, '--offline'], projectDir);
  if (installed.status !== 0) {
    t.diagnostic(`npm install --offline failed, retrying online:\n${installed.stderr}`);
    installed = run(npm, installArgs, projectDir);
  }
  check(installed, 'npm install <tgz>');

  const modules = path.join(projectDir, 'node_modules');
  assert.deepEqual(
    fs.readdirSync(modules).filter((f) => !f.startsWith('.')),
    ['panoptic'],
    'installing panoptic must bring in no other package',
  );
  const installedPkg = JSON.parse(fs.readFileSync(path.join(modules, 'panoptic', 'package.json'), 'utf8'));
  assert.equal(installedPkg.version, pkg.version);
  assert.equal(installedPkg.dependencies, undefined, 'panoptic has no runtime dependencies');
  for (const addon of addons) assert.ok(fs.existsSync(path.join(modules, 'panoptic', addon)), `${addon} not installed`);

  // Its contents, as installed (the tarball unpacked by npm): exactly the runtime files.
  const files = listFiles(path.join(modules, 'panoptic')).sort();
  t.diagnostic(`${report[0].filename}: ${files.join(' ')}`);
  assert.deepEqual(files, report[0].files.map((f) => f.path).sort(), 'npm pack --json and the installed files disagree');

  const libFiles = listFiles(path.join(root, 'lib'), 'lib/').filter((f) => f.endsWith('.js'));
  const expected = ['index.js', 'index.d.ts', 'metrix.js', 'metrix.d.ts', 'binding.js', 'package.json', 'bin/panoptic-trace.js', 'page/dist/index.html', ...libFiles, ...addons];
  for (const optional of ['README.md', 'LICENSE', 'LICENSE.md']) {
    if (fs.existsSync(path.join(root, optional))) expected.push(optional);
  }
  assert.deepEqual(files, expected.sort());

  for (const dir of ['src/', 'crates/', '__test__/', 'benchmark/', 'examples/', 'target/', 'scripts/', 'npm/', 'node_modules/', '.ci/']) {
    assert.ok(!files.some((f) => f.startsWith(dir)), `the tarball must not contain ${dir}`);
  }
  for (const f of ['Cargo.toml', 'Cargo.lock', 'build.rs', 'package-lock.json', 'binding.d.ts']) {
    assert.ok(!files.includes(f), `the tarball must not contain ${f}`);
  }
  assert.ok(!files.some((f) => f.endsWith('.rs') || f.endsWith('.ts') && !['index.d.ts', 'metrix.d.ts'].includes(f)), `stray sources: ${files}`);

  // Use it.
  fs.writeFileSync(path.join(projectDir, 'consumer.js'), CONSUMER);
  const used = check(run(process.execPath, ['consumer.js'], projectDir, 30000), 'node consumer.js');
  const line = used.stdout.split('\n').find((l) => l.startsWith('RESULT '));
  assert.ok(line, `no RESULT line in the consumer's output:\n${used.stdout}\n${used.stderr}`);
  const { pid, resolved, delivery } = JSON.parse(line.slice('RESULT '.length));

  assert.equal(resolved, path.join(modules, 'panoptic', 'index.js'), 'panoptic must load from the temp project');
  assert.equal(delivery.id, 0);
  assert.equal(delivery.interval, 100);
  assert.deepEqual(delivery.meta, { pid, workers: {}, late: 0, decodeErrors: 0, mismatched: 0, unmatched: 0, dropped: 0, invalid: 0, errors: 0 });
  assert.deepEqual(Object.keys(delivery.data).sort(), ['cluster', 'master']);
  const leaf = delivery.data.master.hits;
  assert.ok(leaf, `no hits leaf in ${JSON.stringify(delivery.data)}`);
  assert.equal(leaf.type, 'inc');
  assert.deepEqual(Object.keys(leaf.value).sort(), ['timeStamp', 'val']);
  // One inc in a 100 ms interval at scaleFactor 1: a rate of 1 / 100 per ms.
  assert.equal(leaf.value.val, 0.01);
  assert.equal(typeof leaf.value.timeStamp, 'number');
  assert.equal(leaf.value.timeStamp % 100, 0, 'timeStamp is an interval end on the 100 ms grid');

  // `require('panoptic/metrix')` resolves in the installed package and its histograms work.
  fs.writeFileSync(path.join(projectDir, 'metrix-consumer.js'), METRIX_CONSUMER);
  const usedMetrix = check(run(process.execPath, ['metrix-consumer.js'], projectDir, 30000), 'node metrix-consumer.js');
  const out = JSON.parse(usedMetrix.stdout);
  assert.equal(out.resolved, path.join(modules, 'panoptic', 'metrix.js'));
  assert.deepEqual(out.report, {
    counters: { 'api/hits': 2 },
    gauges: {},
    histograms: { 'api/size': { min: 1, max: 100, p50: 50.99, p90: 91.42, p99: 100.07, 'p99.9': 100.07 } },
  });

  // The tracing CLI is installed as a command.
  const bin = path.join(modules, '.bin', 'panoptic-trace');
  const version = check(run(bin, ['--version'], projectDir, 30000), 'panoptic-trace --version');
  assert.equal(version.stdout.trim(), pkg.version);
});
