'use strict';

// Runs panopticon 0.3.0's own test suite (node_modules/panopticon/test/test-Panopticon.js, nodeunit
// format) against panoptic, through a small nodeunit-compatible shim: each exported test becomes a
// node:test test, and fails when an assertion fails, when its expect() count does not match, when it
// throws, or when it does not call test.done() in time.
//
// The upstream file requires `__dirname + '/../index'`, and its cluster test forks
// `test/scripts/worker.js`, which requires `__dirname + '/../../'`. Both are copied at test time into
// a temporary directory (same layout) with those requires pointed at this package.
//
// The other upstream files (test-Average.js, test-Inc.js, test-Sample.js, test-Set.js,
// test-StandardDeviation.js, test-TimedSample.js) unit-test 0.3.0's internal logger classes
// (`require(__dirname + '/../lib/Inc')`, ...), not the public Panopticon API: panoptic has no such
// classes, so they are not run here. What they check through the public API (leaf shapes, sigma,
// rates, persist resets) is compared against 0.3.0 in differential.test.js.
//
// PANOPTIC_UPSTREAM_TARGET=<dir> runs the same suite against another implementation (e.g.
// node_modules/panopticon, to see how 0.3.0 itself does on this machine).

const test = require('node:test');
const assert = require('node:assert/strict');
// nodeunit's equal/notEqual/deepEqual/notDeepEqual are the loose ones of the legacy assert module.
const looseAssert = require('node:assert');
const { AsyncLocalStorage, createHook } = require('node:async_hooks');
const cluster = require('node:cluster');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const UPSTREAM_TEST_DIR = path.join(ROOT, 'node_modules', 'panopticon', 'test');
const TARGET = process.env.PANOPTIC_UPSTREAM_TARGET ? path.resolve(process.env.PANOPTIC_UPSTREAM_TARGET) : ROOT;

// How long a test may take to call test.done(). 0.3.0's own tests finish in well under 2 s; these
// limits only catch a test that never finishes.
const DEFAULT_TIMEOUT_MS = 15000;
const TIMEOUT_MS = {
  // Forks two workers, each loading the package (and the native addon) on a possibly busy machine.
  'try cluster': 60000,
};

// Upstream tests not run as they are, each for a stated reason (the suite test below lists them):
const EXCLUDED = {
  // A deliberate difference: it fakes a worker and intercepts 0.3.0's IPC message
  // { event: 'workerSample', sample, id }. panoptic's workers send namespaced messages instead
  // (lib/cluster.js), so that other IPC users never see them; cluster.test.js tests them with a real
  // cluster.fork().
  'test worker process panopticon': 'tests 0.3.0\'s IPC wire format, which panoptic replaces',
  // Too tight for this machine, for 0.3.0 as well: it expects both forked workers to have reported
  // by the master's 2nd delivery (150-250 ms after start), while forking a worker that loads the
  // package takes 170-300 ms on a busy 2-core machine. The adapted copy below runs instead.
  'try cluster': 'timing-dependent; run as the adapted copy',
  // A deliberate difference: panoptic's own built-in methods (gauge, ...) are listed too, after
  // 0.3.0's four (differential.test.js checks the order of those four and of registered ones).
  'get the list of registered functions': 'panoptic lists its additional built-in methods too',
  // A deliberate difference: it counts one 'fork' listener per instance. panoptic's master
  // instances share one (lib/cluster.js routes every worker message, so that a message for no
  // instance is seen and warned about); timing.test.js checks that it is added and removed.
  'check correct addition and subtraction of listeners on cluster': 'panoptic\'s instances share one fork listener',
};

// ---- the upstream files, copied with their requires pointed at TARGET -----------------------------

function rewrite(source, from, to, file) {
  const count = source.split(from).length - 1;
  assert.equal(count, 1, `expected exactly one ${from} in ${file}; the upstream file changed`);
  return source.replace(from, () => to);
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'panoptic-upstream-'));
fs.mkdirSync(path.join(tmp, 'test', 'scripts'), { recursive: true });
const suiteFile = path.join(tmp, 'test', 'test-Panopticon.js');
fs.writeFileSync(suiteFile, rewrite(
  fs.readFileSync(path.join(UPSTREAM_TEST_DIR, 'test-Panopticon.js'), 'utf8'),
  "require(__dirname + '/../index')", `require(${JSON.stringify(TARGET)})`, 'test-Panopticon.js'));
fs.writeFileSync(path.join(tmp, 'test', 'scripts', 'worker.js'), rewrite(
  fs.readFileSync(path.join(UPSTREAM_TEST_DIR, 'scripts', 'worker.js'), 'utf8'),
  "require(__dirname + '/../../')", `require(${JSON.stringify(TARGET)})`, 'scripts/worker.js'));

// The adapted 'try cluster': the same test, except that the master waits for the first delivery
// holding both workers' data (instead of exactly its 2nd delivery), and checks it once.
const adaptedFile = path.join(tmp, 'test', 'test-Panopticon-adapted.js');
fs.writeFileSync(adaptedFile, rewrite(rewrite(
  fs.readFileSync(suiteFile, 'utf8'),
  'if (count !== 1) {',
  'if (count === -1 || !data.data.workers || Object.keys(data.data.workers).length < 2) {',
  'test-Panopticon.js'),
  'worker2.destroy();', 'worker2.destroy();\n\t\tcount = -1;', 'test-Panopticon.js'));

test.after(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

// ---- cleaning up after a test that did not finish ---------------------------------------------------
// A test that never calls done() leaves its Panopticon running (its timer would keep this process
// alive forever) and possibly cluster workers. Timers created from inside a test (directly or by
// anything it started) are tracked through an AsyncLocalStorage context, and cleared after a
// failed test.

const context = new AsyncLocalStorage();
const timersOf = new Map(); // test name -> Set of Timeout objects created in its context
createHook({
  init(asyncId, type, triggerAsyncId, resource) {
    if (type !== 'Timeout') return;
    const name = context.getStore();
    if (name !== undefined && timersOf.has(name)) timersOf.get(name).add(resource);
  },
}).enable();

function clearTimersOf(name) {
  for (const timer of timersOf.get(name) || []) clearTimeout(timer); // also clears intervals
  timersOf.delete(name);
}

async function killWorkers() {
  const exits = Object.values(cluster.workers || {}).map((worker) => new Promise((resolve) => {
    if (worker.isDead()) return resolve();
    worker.once('exit', resolve);
    worker.process.kill();
  }));
  await Promise.all(exits);
}

// ---- the nodeunit shim ------------------------------------------------------------------------------

/**
 * Runs one nodeunit test function. Resolves when it calls test.done() without failures; rejects
 * with every failed assertion, an expect() mismatch, an exception, or a timeout.
 */
function runNodeunit(name, fn, timeoutMs) {
  return new Promise((resolve, reject) => {
    const failures = [];
    let assertions = 0;
    let expected; // undefined: no count check (what nodeunit's test.expect() without a number does)
    let finished = false;

    function finish(extra) {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      process.removeListener('uncaughtException', onUncaught);
      if (extra) failures.push(extra);
      if (failures.length === 0) {
        resolve({ assertions });
        return;
      }
      const message = failures.map((e, i) => `  ${i + 1}. ${e && e.stack ? e.stack : String(e)}`).join('\n');
      const error = new Error(`${failures.length} failure(s) in upstream test "${name}":\n${message}`);
      error.failures = failures;
      reject(error);
    }

    function onUncaught(err) {
      finish(Object.assign(new Error(`uncaught exception: ${err && err.stack ? err.stack : err}`), { cause: err }));
    }

    function assertion(check) {
      return (...args) => {
        assertions += 1;
        try {
          check(...args);
        } catch (err) {
          failures.push(err);
        }
      };
    }

    const t = {
      expect(n) {
        expected = n;
      },
      ok: assertion(looseAssert.ok),
      equal: assertion(looseAssert.equal),
      notEqual: assertion(looseAssert.notEqual),
      deepEqual: assertion(looseAssert.deepEqual),
      notDeepEqual: assertion(looseAssert.notDeepEqual),
      strictEqual: assertion(looseAssert.strictEqual),
      notStrictEqual: assertion(looseAssert.notStrictEqual),
      throws: assertion(looseAssert.throws),
      doesNotThrow: assertion(looseAssert.doesNotThrow),
      ifError: assertion(looseAssert.ifError),
      done(err) {
        if (finished) return; // already failed (timeout or exception)
        if (err) failures.push(err);
        if (expected !== undefined && expected !== assertions) {
          failures.push(new Error(`expected ${expected} assertions, ${assertions} ran`));
        }
        finish();
      },
    };

    const timer = setTimeout(() => {
      finish(new Error(`test.done() was not called within ${timeoutMs} ms (${assertions} assertion(s) ran)`));
    }, timeoutMs);
    process.on('uncaughtException', onUncaught);

    timersOf.set(name, new Set());
    context.run(name, () => {
      try {
        fn(t);
      } catch (err) {
        finish(err);
      }
    });
  });
}

// ---- the suite ----------------------------------------------------------------------------------------

const suite = require(suiteFile);
const adapted = require(adaptedFile);

function defineTest(title, name, fn) {
  test(title, async () => {
    const saved = {
      isWorker: cluster.isWorker,
      isMaster: cluster.isMaster,
      send: Object.getOwnPropertyDescriptor(process, 'send'),
    };
    try {
      await runNodeunit(title, fn, TIMEOUT_MS[name] || DEFAULT_TIMEOUT_MS);
    } catch (err) {
      // The test did not finish cleanly: stop what it left running.
      clearTimersOf(title);
      await killWorkers();
      throw err;
    } finally {
      timersOf.delete(title);
      // Tests that fake a cluster worker undo it only when they finish.
      cluster.isWorker = saved.isWorker;
      cluster.isMaster = saved.isMaster;
      if (saved.send) {
        Object.defineProperty(process, 'send', saved.send);
      } else {
        delete process.send;
      }
    }
  });
}

for (const name of Object.keys(suite)) {
  if (!EXCLUDED[name]) defineTest(`upstream: ${name}`, name, suite[name]);
}

defineTest('upstream (adapted, waits for the workers\' first report): try cluster', 'try cluster', adapted['try cluster']);

test('upstream suite: the whole file was loaded', (t) => {
  assert.equal(Object.keys(suite).length, 14, `the upstream file exports ${Object.keys(suite).length} tests, expected 14`);
  for (const [name, reason] of Object.entries(EXCLUDED)) {
    assert.ok(name in suite, `excluded test "${name}" no longer exists upstream`);
    t.diagnostic(`not run as is: "${name}": ${reason}`);
  }
});
