'use strict';

// The published packages, as a user gets them: `npm pack` the main package and this machine's
// platform package (npm/<platform>/, with the binary `npm run artifacts` placed there), check the
// tarballs hold exactly what a user needs, install both into an empty project with no network and
// no Rust toolchain on PATH, and use them from there: require, import (and tsc on the same file), a
// real 2-worker cluster, the error on a machine with no binary (faked), the glibc the binary needs.
// Needs `npm run artifacts` (which `npm test` runs through scripts/prepare.js); takes ~10-20 s.

const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const root = path.join(__dirname, '..');
const pkg = require('../package.json');
const { hostTarget, napiCli } = require('../scripts/artifacts');
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

function run(cmd, args, cwd, timeout = 120000, env = {}) {
  const r = spawnSync(cmd, args, {
    cwd,
    env: { ...cleanEnv(), ...env },
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

// Run by `node` in the temp project (ESM), and type-checked there by tsc (module nodenext, checkJs):
// every documented name through `import`, the same objects as through `require`.
const ESM_CONSUMER = `import { createRequire } from 'node:module';
import Panopticon, { Panopticon as Named, trace, filter, registerMethod, getLoggerMethodNames, count } from 'panoptic';
import metrix, { createRecorder, createAggregator, config, recorder, counter, histogram, timer, gauge, Recorder, Aggregator,
  BucketedHistogram, StreamingHistogram, NullCounter, NullTimer, NullHistogram, NullGauge } from 'panoptic/metrix';
import pkg from 'panoptic/package.json' with { type: 'json' };

const require = createRequire(import.meta.url);
// Records (for the identity checks below): the modules' own types have no string index.
/** @type {Record<string, unknown>} */
const cjs = require('panoptic');
/** @type {Record<string, unknown>} */
const cjsMetrix = require('panoptic/metrix');
/** @type {Panopticon.Options} */
const options = { interval: 100 };
const p = new Panopticon(options);
p.stop();
const named = { Panopticon: Named, trace, filter, registerMethod, getLoggerMethodNames, count };
const metrixNamed = { createRecorder, createAggregator, config, recorder, counter, histogram, timer, gauge, Recorder, Aggregator,
  BucketedHistogram, StreamingHistogram, NullCounter, NullTimer, NullHistogram, NullGauge };
/** @type {string} */
const expression = filter('name = "hits"').expression;
const hits = createAggregator(createRecorder()).report().counters;
console.log(JSON.stringify({
  version: pkg.version,
  defaultIsRequire: Object.is(Panopticon, cjs),
  named: Object.entries(named).filter(([k, v]) => v !== cjs[k]).map(([k]) => k),
  metrixDefaultIsRequire: Object.is(metrix, cjsMetrix),
  metrixNamed: Object.entries(metrixNamed).filter(([k, v]) => v !== cjsMetrix[k]).map(([k]) => k),
  metrixKeys: Object.keys(cjsMetrix).filter((k) => !(k in metrixNamed)),
  staticKeys: Object.keys(cjs).filter((k) => !k.startsWith('_') && !(k in named)),
  expression,
  hits,
}));
`;

// Run by `node` in the temp project: a master and 2 workers (real cluster.fork()), the master's
// deliveries until two in a row hold both workers, printed as JSON. Worker k records k hits at the
// start of each interval; scaleFactor = interval makes a delivered rate the count itself.
const CLUSTER_APP = `'use strict';
const cluster = require('cluster');
const Panopticon = require('panoptic');
const interval = 200;
const p = new Panopticon({ interval, scaleFactor: interval, keepAlive: true });
if (cluster.isPrimary) {
  const workers = [1, 2].map((k) => cluster.fork({ HITS: String(k) }));
  const failsafe = setTimeout(() => { console.error('no two complete deliveries within 20 s'); process.exit(2); }, 20000);
  const complete = [];
  p.on('delivery', (d) => {
    const byWorker = workers.map((w) => d.data.workers && d.data.workers[w.id] && d.data.workers[w.id].hits);
    if (!byWorker.every(Boolean)) { complete.length = 0; return; }
    complete.push({ end: byWorker[0].value.timeStamp, workers: byWorker.map((h) => h.value.val), cluster: d.data.cluster.hits.value.val, meta: d.meta });
    if (complete.length < 2) return;
    clearTimeout(failsafe);
    p.stop();
    for (const w of workers) w.kill();
    console.log('RESULT ' + JSON.stringify(complete));
  });
} else {
  p.on('newInterval', () => p.inc(null, 'hits', Number(process.env.HITS)));
}
`;

// Preloaded (--require) by a consumer to fake the machine: process.platform, process.arch and, on
// Linux, the libc (FAKE_LIBC 'musl', or 'glibc' for glibc 2.31) as both of binding.js's checks
// see it (the process report, then /usr/bin/ldd).
const FAKE_PLATFORM = `'use strict';
const fs = require('fs');
Object.defineProperty(process, 'platform', { value: process.env.FAKE_PLATFORM });
Object.defineProperty(process, 'arch', { value: process.env.FAKE_ARCH });
const libc = process.env.FAKE_LIBC;
if (libc) {
  const getReport = process.report.getReport.bind(process.report);
  process.report.getReport = () => {
    const report = getReport();
    if (libc === 'musl') delete report.header.glibcVersionRuntime;
    else report.header.glibcVersionRuntime = '2.31';
    report.sharedObjects = libc === 'musl' ? ['/lib/ld-musl-x86_64.so.1'] : ['/lib/x86_64-linux-gnu/libc.so.6'];
    return report;
  };
  const readFileSync = fs.readFileSync;
  const ldd = libc === 'musl' ? 'musl libc (x86_64)' : 'GNU C Library';
  fs.readFileSync = (file, ...rest) => (file === '/usr/bin/ldd' ? ldd : readFileSync(file, ...rest));
}
`;

/**
 * The glibc symbol versions an ELF64 little-endian shared object needs (its GNU version needs
 * section, `.gnu.version_r`), e.g. ['GLIBC_2.2.5', 'GLIBC_2.17'].
 */
function glibcVersionsNeeded(file) {
  const elf = fs.readFileSync(file);
  assert.equal(elf.toString('latin1', 0, 4), '\x7fELF');
  assert.equal(elf[4], 2, 'ELF64');
  assert.equal(elf[5], 1, 'little-endian');
  const shoff = Number(elf.readBigUInt64LE(0x28));
  const shentsize = elf.readUInt16LE(0x3a);
  const shnum = elf.readUInt16LE(0x3c);
  const section = (i) => {
    const at = shoff + i * shentsize;
    return { type: elf.readUInt32LE(at + 4), offset: Number(elf.readBigUInt64LE(at + 0x18)), link: elf.readUInt32LE(at + 0x28) };
  };
  const SHT_GNU_VERNEED = 0x6ffffffe;
  const versions = [];
  for (let i = 0; i < shnum; i++) {
    const verneed = section(i);
    if (verneed.type !== SHT_GNU_VERNEED) continue;
    const strings = section(verneed.link).offset;
    const cstring = (at) => elf.toString('latin1', at, elf.indexOf(0, at));
    // Verneed entries (one per library: vn_cnt, vn_file, vn_aux, vn_next), each with its Vernaux
    // entries (one per version: vna_name, vna_next).
    for (let need = verneed.offset, nextNeed = -1; nextNeed !== 0; need += nextNeed) {
      const count = elf.readUInt16LE(need + 2);
      const library = cstring(strings + elf.readUInt32LE(need + 4));
      for (let k = 0, aux = need + elf.readUInt32LE(need + 8); k < count; k++, aux += elf.readUInt32LE(aux + 12)) {
        const name = cstring(strings + elf.readUInt32LE(aux + 8));
        if (name.startsWith('GLIBC_') && /^lib(c|m|pthread|dl|rt|util)\.so/.test(library)) versions.push(name);
      }
      nextNeed = elf.readUInt32LE(need + 12);
    }
  }
  return versions;
}

function compareVersions(a, b) {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    if ((pa[i] || 0) !== (pb[i] || 0)) return (pa[i] || 0) - (pb[i] || 0);
  }
  return 0;
}

const host = hostTarget();
const platformDir = path.join(root, 'npm', host.platform);
const addonName = `panoptic.${host.platform}.node`;

describe('the published packages, as a user gets them', { timeout: 300000 }, () => {
  let packDir;
  let projectDir;
  let mainReport;
  let platformReport;
  // A PATH with node and the system's tools, without the Rust toolchain (~/.cargo/bin, rustup).
  let userPath;

  before(() => {
    assert.ok(fs.existsSync(path.join(platformDir, addonName)),
      `no ${addonName} in npm/${host.platform}: run \`npm run artifacts\` (or \`node scripts/prepare.js\`) first`);
    assert.ok(fs.existsSync(path.join(root, 'binding.js')), 'no binding.js: run `npm run artifacts` first');
    packDir = tempDir('panoptic-pack-');
    projectDir = tempDir('panoptic-consumer-');

    const pack = (dir) => {
      const packed = check(run(npm, ['pack', '--json', '--pack-destination', packDir], dir), `npm pack ${dir}`);
      return JSON.parse(packed.stdout.slice(packed.stdout.indexOf('[')))[0];
    };
    mainReport = pack(root);
    platformReport = pack(platformDir);

    const cargo = spawnSync(process.platform === 'win32' ? 'where' : 'which', ['cargo'], { encoding: 'utf8' }).stdout.trim();
    userPath = process.env.PATH.split(path.delimiter)
      .filter((dir) => !/[\\/]\.(cargo|rustup)[\\/]/.test(dir) && !(cargo && path.dirname(cargo) === dir))
      .join(path.delimiter);

    // An empty project; both tarballs installed into it with no network (--offline): npm takes
    // panoptic-<platform> from its tarball and skips the other optional dependencies.
    check(run(npm, ['init', '-y'], projectDir), 'npm init -y');
    check(run(npm, ['install', '--offline', '--no-audit', '--no-fund', '--no-package-lock',
      path.join(packDir, mainReport.filename), path.join(packDir, platformReport.filename)], projectDir, 120000, { PATH: userPath }),
    'npm install --offline <main tgz> <platform tgz>');
  });
  after(() => {
    for (const dir of [packDir, projectDir]) if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Runs `node <args>` in the project, with no Rust toolchain on PATH. */
  function node(args, env = {}) {
    return run(process.execPath, args, projectDir, 60000, { PATH: userPath, ...env });
  }

  test('every package.json is in step: one version, optionalDependencies at it, one per target', () => {
    const targets = pkg.napi.targets;
    const platforms = fs.readdirSync(path.join(root, 'npm')).sort();
    assert.equal(platforms.length, targets.length, `npm/ holds ${platforms}, package.json names ${targets}`);
    assert.deepEqual(pkg.optionalDependencies, Object.fromEntries(platforms.map((p) => [`panoptic-${p}`, pkg.version])));
    for (const platform of platforms) {
      const sub = JSON.parse(fs.readFileSync(path.join(root, 'npm', platform, 'package.json'), 'utf8'));
      assert.equal(sub.name, `panoptic-${platform}`);
      assert.equal(sub.version, pkg.version, `npm/${platform}`);
      assert.deepEqual(sub.files, [`panoptic.${platform}.node`]);
      assert.equal(sub.main, `panoptic.${platform}.node`);
      assert.deepEqual(sub.repository, pkg.repository, `npm/${platform}: repository`);
      assert.equal(sub.license, pkg.license);
    }
  });

  test('the version script (npm version) brings every package.json to the new version', (t) => {
    const copy = tempDir('panoptic-version-');
    t.after(() => fs.rmSync(copy, { recursive: true, force: true }));
    fs.cpSync(path.join(root, 'npm'), path.join(copy, 'npm'), { recursive: true, filter: (f) => !f.endsWith('.node') });
    const bumped = { ...pkg, version: '9.8.7', license: 'MIT OR Apache-2.0' };
    fs.writeFileSync(path.join(copy, 'package.json'), JSON.stringify(bumped, null, 2));
    check(run(process.execPath, [path.join(root, 'scripts', 'version.js'), copy], copy), 'node scripts/version.js');
    const after = JSON.parse(fs.readFileSync(path.join(copy, 'package.json'), 'utf8'));
    assert.deepEqual(Object.values(after.optionalDependencies), pkg.napi.targets.map(() => '9.8.7'));
    for (const platform of fs.readdirSync(path.join(copy, 'npm'))) {
      const sub = JSON.parse(fs.readFileSync(path.join(copy, 'npm', platform, 'package.json'), 'utf8'));
      assert.equal(sub.version, '9.8.7', platform);
      assert.equal(sub.license, 'MIT OR Apache-2.0', platform);
    }
  });

  test("the release's publish step (napi pre-publish, dry run) accepts this machine's package, and refuses it without its binary", (t) => {
    const copy = tempDir('panoptic-prepublish-');
    t.after(() => fs.rmSync(copy, { recursive: true, force: true }));
    fs.copyFileSync(path.join(root, 'package.json'), path.join(copy, 'package.json'));
    fs.cpSync(path.join(root, 'npm'), path.join(copy, 'npm'), { recursive: true });
    // Restricted to this machine's target, as `npm run artifacts` restricts `napi artifacts`.
    fs.writeFileSync(path.join(copy, 'napi.json'), JSON.stringify({ binaryName: 'panoptic', packageName: 'panoptic', targets: [host.triple] }));
    const prePublish = () => run(process.execPath, [napiCli(), 'pre-publish', '--dry-run', '-c', 'napi.json', '-t', 'npm', '--no-gh-release'], copy);
    check(prePublish(), 'napi pre-publish --dry-run');
    fs.rmSync(path.join(copy, 'npm', host.platform, addonName));
    const refused = prePublish();
    assert.notEqual(refused.status, 0, `napi pre-publish accepted npm/${host.platform} without its binary:\n${refused.stdout}${refused.stderr}`);
  });

  test('the tarballs hold exactly what a user needs: the main one no binary, the platform one only its binary', () => {
    assert.equal(mainReport.name, pkg.name);
    assert.equal(mainReport.version, pkg.version);
    const libFiles = listFiles(path.join(root, 'lib'), 'lib/').filter((f) => f.endsWith('.js') || f.endsWith('.json'));
    const expected = ['index.js', 'index.d.ts', 'index.mjs', 'index.d.mts', 'metrix.js', 'metrix.d.ts', 'metrix.mjs',
      'metrix.d.mts', 'binding.js', 'package.json', 'bin/panoptic-trace.js', 'page/dist/index.html', ...libFiles];
    for (const optional of ['README.md', 'LICENSE']) {
      if (fs.existsSync(path.join(root, optional))) expected.push(optional);
    }
    assert.deepEqual(mainReport.files.map((f) => f.path).sort(), expected.sort());
    assert.deepEqual(platformReport.files.map((f) => f.path).sort(), [addonName, 'README.md', 'package.json'].sort());
    assert.equal(platformReport.version, pkg.version);

    // As installed (npm unpacked the tarballs): the same files, and nothing else installed.
    const modules = path.join(projectDir, 'node_modules');
    assert.deepEqual(fs.readdirSync(modules).filter((f) => !f.startsWith('.')).sort(), ['panoptic', `panoptic-${host.platform}`]);
    assert.deepEqual(listFiles(path.join(modules, 'panoptic')).sort(), expected.sort());
    assert.deepEqual(listFiles(path.join(modules, `panoptic-${host.platform}`)).sort(), [addonName, 'README.md', 'package.json'].sort());
  });

  test('require: the class, a delivery, metrix and the tracing command work from the installed packages', () => {
    fs.writeFileSync(path.join(projectDir, 'consumer.js'), CONSUMER);
    const used = check(node(['consumer.js']), 'node consumer.js');
    const line = used.stdout.split('\n').find((l) => l.startsWith('RESULT '));
    assert.ok(line, `no RESULT line in the consumer's output:\n${used.stdout}\n${used.stderr}`);
    const { pid, resolved, delivery } = JSON.parse(line.slice('RESULT '.length));

    assert.equal(resolved, path.join(projectDir, 'node_modules', 'panoptic', 'index.js'), 'panoptic must load from the temp project');
    assert.equal(delivery.id, 0);
    assert.equal(delivery.interval, 100);
    assert.deepEqual(delivery.meta, { pid, workers: {}, late: 0, decodeErrors: 0, mismatched: 0, unmatched: 0, refused: 0, dropped: 0, invalid: 0, overflowed: 0, errors: 0 });
    assert.deepEqual(Object.keys(delivery.data).sort(), ['cluster', 'master']);
    const leaf = delivery.data.master.hits;
    assert.ok(leaf, `no hits leaf in ${JSON.stringify(delivery.data)}`);
    assert.equal(leaf.type, 'inc');
    // One inc in a 100 ms interval at scaleFactor 1: a rate of 1 / 100 per ms.
    assert.equal(leaf.value.val, 0.01);
    assert.equal(leaf.value.timeStamp % 100, 0, 'timeStamp is an interval end on the 100 ms grid');

    fs.writeFileSync(path.join(projectDir, 'metrix-consumer.js'), METRIX_CONSUMER);
    const out = JSON.parse(check(node(['metrix-consumer.js']), 'node metrix-consumer.js').stdout);
    assert.equal(out.resolved, path.join(projectDir, 'node_modules', 'panoptic', 'metrix.js'));
    assert.deepEqual(out.report, {
      counters: { 'api/hits': 2 },
      gauges: {},
      histograms: { 'api/size': { min: 1, max: 100, p50: 50.99, p90: 91.42, p99: 100.07, 'p99.9': 100.07 } },
    });

    const bin = path.join(projectDir, 'node_modules', '.bin', 'panoptic-trace');
    const version = check(run(bin, ['--version'], projectDir, 30000, { PATH: userPath }), 'panoptic-trace --version');
    assert.equal(version.stdout.trim(), pkg.version);
  });

  test('import: the default and a named export for every documented name; tsc (nodenext) accepts the same file', (t) => {
    fs.writeFileSync(path.join(projectDir, 'esm.mjs'), ESM_CONSUMER);
    const out = JSON.parse(check(node(['esm.mjs']), 'node esm.mjs').stdout);
    assert.deepEqual(out, {
      version: pkg.version,
      defaultIsRequire: true,
      named: [],
      metrixDefaultIsRequire: true,
      metrixNamed: [],
      metrixKeys: [], // every member of panoptic/metrix has its named export
      staticKeys: [], // every public static of Panopticon has its named export
      expression: 'name = "hits"',
      hits: {},
    });

    fs.writeFileSync(path.join(projectDir, 'tsconfig.json'), JSON.stringify({
      compilerOptions: {
        module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', strict: true, noEmit: true,
        allowJs: true, checkJs: true, skipLibCheck: false, types: ['node'],
        typeRoots: [path.join(root, 'node_modules', '@types')],
      },
      files: ['esm.mjs'],
    }));
    const tsc = spawnSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', projectDir, '--pretty', 'false'],
      { cwd: projectDir, encoding: 'utf8', timeout: 120000 });
    assert.equal(tsc.status, 0, `tsc exited ${tsc.status}:\n${tsc.stdout}${tsc.stderr}`);

    // And the check bites: a name that is not exported is an error for tsc, as it is for Node
    // (`_resetCount`, a static for tests, has no named export: tsc reads index.d.mts, not the
    // CommonJS declarations, which would accept it).
    fs.writeFileSync(path.join(projectDir, 'esm.mjs'), "import { _resetCount } from 'panoptic';\nimport { nope } from 'panoptic/metrix';\nconsole.log(_resetCount, nope);\n");
    t.after(() => fs.rmSync(path.join(projectDir, 'esm.mjs'), { force: true }));
    const bad = spawnSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', projectDir, '--pretty', 'false'],
      { cwd: projectDir, encoding: 'utf8', timeout: 120000 });
    assert.match(bad.stdout, /esm\.mjs\(1,\d+\): error TS\d+: Module '"panoptic"' has no exported member '_resetCount'/);
    assert.match(bad.stdout, /esm\.mjs\(2,\d+\): error TS\d+: Module '"panoptic\/metrix"' has no exported member 'nope'/);
    const ran = node(['esm.mjs']);
    assert.notEqual(ran.status, 0);
    assert.match(ran.stderr, /does not provide an export named '_resetCount'/);
  });

  test('a 2-worker cluster: two intervals in a row, each worker\'s exact count and their sum', () => {
    fs.writeFileSync(path.join(projectDir, 'cluster-app.js'), CLUSTER_APP);
    const used = check(node(['cluster-app.js']), 'node cluster-app.js');
    const line = used.stdout.split('\n').find((l) => l.startsWith('RESULT '));
    assert.ok(line, `no RESULT line:\n${used.stdout}\n${used.stderr}`);
    const deliveries = JSON.parse(line.slice('RESULT '.length));
    assert.equal(deliveries.length, 2);
    assert.equal(deliveries[1].end, deliveries[0].end + 200, 'two intervals in a row');
    for (const d of deliveries) {
      assert.deepEqual(d.workers, [1, 2], `interval ending ${d.end}: worker k recorded k hits`);
      assert.equal(d.cluster, 3, `interval ending ${d.end}: the cluster view sums them`);
      assert.deepEqual([d.meta.late, d.meta.decodeErrors, d.meta.dropped, d.meta.errors], [0, 0, 0, 0]);
    }
  });

  test('no binary for this machine: the error names the platform, the supported ones, and how to build', () => {
    fs.writeFileSync(path.join(projectDir, 'fake-platform.js'), FAKE_PLATFORM);
    fs.writeFileSync(path.join(projectDir, 'load.js'), `'use strict';
try {
  require('panoptic');
  console.log('LOADED');
} catch (e) {
  console.log(JSON.stringify({ message: e.message, code: e.code, cause: e.cause && e.cause.message }));
}
`);
    const supported = 'darwin-arm64, darwin-x64, linux-arm64-gnu (glibc >= 2.17), linux-x64-gnu (glibc >= 2.17), linux-x64-musl, win32-x64-msvc';
    const cases = [
      ['darwin', 'arm64', '', 'platform darwin, arch arm64 (darwin-arm64)', 'optional dependency panoptic-darwin-arm64@'],
      ['win32', 'x64', '', 'platform win32, arch x64 (win32-x64-msvc)', 'optional dependency panoptic-win32-x64-msvc@'],
      ['linux', 'arm64', 'glibc', 'platform linux, arch arm64, libc glibc 2.31 (linux-arm64-gnu)', 'optional dependency panoptic-linux-arm64-gnu@'],
      ['linux', 'x64', 'musl', 'platform linux, arch x64, libc musl (linux-x64-musl)', 'optional dependency panoptic-linux-x64-musl@'],
      ['linux', 'x64', 'glibc', 'platform linux, arch x64, libc glibc 2.31 (linux-x64-gnu)', 'optional dependency panoptic-linux-x64-gnu@'],
      ['freebsd', 'x64', '', 'platform freebsd, arch x64 (freebsd-x64)', 'There is no prebuilt binary for freebsd-x64.'],
    // This machine's own platform loads (its package is installed): checked unfaked below.
    ].filter(([, , , detected]) => !detected.endsWith(`(${host.platform})`));
    for (const [platform, arch, libc, detected, advice] of cases) {
      const r = check(node(['--require', './fake-platform.js', 'load.js'], { FAKE_PLATFORM: platform, FAKE_ARCH: arch, FAKE_LIBC: libc }),
        `node load.js as ${platform}-${arch}`);
      assert.notEqual(r.stdout.trim(), 'LOADED', `${platform}-${arch}${libc}: must not load`);
      const e = JSON.parse(r.stdout);
      const lines = e.message.split('\n');
      assert.equal(lines[0], `panoptic could not load its native addon on this machine: ${detected}.`);
      assert.equal(lines[1], `Prebuilt binaries exist for: ${supported}.`);
      assert.ok(lines[2].includes(advice), `${platform}-${arch}: ${lines[2]}`);
      assert.match(lines[3], /^To build it from source, with a Rust toolchain \(https:\/\/rustup\.rs\): in a clone of https:\/\/github\.com\/panoptic-js\/panoptic, run `npm install` and `npm run build`; then copy the panoptic\.[a-z0-9-]+\.node it makes next to .*binding\.js, or set NAPI_RS_NATIVE_LIBRARY_PATH to its path\.$/);
      assert.equal(e.code, 'PANOPTIC_NO_BINARY');
      assert.match(e.cause, /^Cannot find native binding/, "binding.js's own error is the cause");
    }
    // Unfaked, the same script loads.
    assert.equal(check(node(['load.js']), 'node load.js').stdout.trim(), 'LOADED');
  });

  test(`the ${host.platform} binary needs glibc 2.17 at most`, { skip: !/^linux-.+-gnu$/.test(host.platform) && 'not a Linux gnu binary' }, () => {
    const versions = glibcVersionsNeeded(path.join(projectDir, 'node_modules', `panoptic-${host.platform}`, addonName));
    assert.ok(versions.length > 0, 'the binary needs glibc symbols: the parser must find them');
    const highest = versions.map((v) => v.slice('GLIBC_'.length)).sort(compareVersions).pop();
    assert.ok(compareVersions(highest, '2.17') <= 0, `needs GLIBC_${highest} (${versions.join(', ')})`);
    // The parser agrees with binutils where it is installed.
    const objdump = spawnSync('objdump', ['-p', path.join(platformDir, addonName)], { encoding: 'utf8' });
    if (objdump.status === 0) {
      const listed = [...objdump.stdout.matchAll(/\s(GLIBC_[0-9.]+)\n/g)].map((m) => m[1]);
      assert.deepEqual([...new Set(versions)].sort(), [...new Set(listed)].sort());
    }
  });
});
