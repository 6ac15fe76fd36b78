'use strict';

// A real cluster (cluster.fork()) under adverse conditions: exact cluster-wide merges, workers
// killed, restarted or stopped, foreign and malformed IPC messages, late batches, many instances
// matched by name or construction order. Worker fixture: fixtures/robust-worker.js; the values
// they record: fixtures/robust-data.js. Run twice by `npm test`: over the native transport (this
// file) and over Node's IPC, the fallback (cluster-ipc.test.js).
//
// Timing: short intervals, every wait a bounded loop over deliveries or messages, and rounds
// that are retried (a bounded number of times) when the machine was too slow for the scenario
// to be set up (for instance a round of records that straddled a boundary). A retry is never
// taken for a wrong value: values are asserted as soon as the scenario is known to have happened.

const test = require('node:test');
const assert = require('node:assert/strict');
const cluster = require('cluster');
const path = require('path');
const Panopticon = require('..');
const data = require('./fixtures/robust-data');

const FIXTURE = path.join(__dirname, 'fixtures', 'robust-worker.js');
const native = process.platform === 'linux' && process.env.PANOPTIC_TRANSPORT !== 'ipc';
const TEST_TIMEOUT = 60000;
const WAIT = 30000; // bound of any single wait

// ---- helpers ------------------------------------------------------------------------------------

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** The deliveries of `p`, in order, to be awaited one by one or until a condition holds. */
function deliveries(p) {
  const queue = [];
  const all = [];
  const index = new Map();
  let wake = null;
  p.on('delivery', (d) => {
    index.set(d, all.length);
    all.push(d);
    queue.push(d);
    if (wake) wake();
  });
  async function next(deadline, what) {
    while (queue.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, left);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = null;
    }
    return queue.shift();
  }
  /** The first delivery (from now) for which pred holds; every one seen goes to `seen` too. */
  async function until(pred, what, seen, timeoutMs = WAIT) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const d = await next(deadline, what);
      if (seen) seen(d);
      if (pred(d)) return d;
    }
  }
  return {
    all,
    next: (what, timeoutMs = WAIT) => next(Date.now() + timeoutMs, what),
    until,
    /** The position of a delivery among all of them: all.length read earlier tells what came after. */
    indexOf: (d) => index.get(d),
  };
}

/** The end of the interval a delivery is about (the master records a heartbeat every interval). */
function endOf(d) {
  const beat = d.data.master && d.data.master.hb && d.data.master.hb.beat;
  return beat ? beat.value.timeStamp : undefined;
}

function heartbeat(p) {
  p.on('newInterval', () => p.inc(['hb'], 'beat', 1));
}

/** The first control message from worker `w` for which pred holds. */
function fromWorker(w, pred, what, timeoutMs = WAIT) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      w.removeListener('message', on);
      reject(new Error(`timed out waiting for ${what} from worker ${w.id}`));
    }, timeoutMs);
    function on(msg) {
      if (msg && msg.ctl && pred(msg)) {
        clearTimeout(timer);
        w.removeListener('message', on);
        resolve(msg);
      }
    }
    w.on('message', on);
  });
}

/** Forks workers of the fixture; each resolves once its instances exist. */
async function fork(t, envs, workers = []) {
  cluster.setupPrimary({ exec: FIXTURE, silent: false });
  const forked = envs.map((env) => cluster.fork(env));
  workers.push(...forked);
  await Promise.all(forked.map((w) => fromWorker(w, (m) => m.ready, 'ready')));
  return forked;
}

function kill(w) {
  return new Promise((resolve) => {
    if (w.isDead()) return resolve();
    w.once('exit', resolve);
    w.process.kill('SIGKILL');
  });
}

/** Cleanup for a test: its instances stopped, its workers killed and gone. */
function cleanup(t, instances, workers) {
  t.after(async () => {
    for (const p of instances) p.stop();
    await Promise.all(workers.map(kill));
  });
}

function rel(actual, expected) {
  if (actual === expected) return 0;
  return Math.abs(actual - expected) / Math.max(Math.abs(actual), Math.abs(expected));
}

function close(actual, expected, what, tolerance = 1e-9) {
  assert.equal(typeof actual, 'number', `${what}: ${actual}`);
  assert.ok(rel(actual, expected) <= tolerance, `${what}: got ${actual}, expected ${expected} (relative error ${rel(actual, expected)})`);
}

/** Statistics of a set of values computed directly from all of them (two-pass variance). */
function stats(xs) {
  const count = xs.length;
  let total = 0;
  for (const x of xs) total += x;
  const mean = total / count;
  let ss = 0;
  for (const x of xs) ss += (x - mean) * (x - mean);
  return { count, total, min: Math.min(...xs), max: Math.max(...xs), average: mean, sigma: Math.sqrt(ss / (count - 1)) };
}

function checkSummary(leaf, values, timeStamp, what, { timed, scaleFactor } = {}) {
  const e = stats(values);
  assert.ok(leaf, `${what}: missing`);
  assert.equal(leaf.type, timed ? 'timedSample' : 'sample', what);
  const v = leaf.value;
  assert.equal(v.min, e.min, `${what}.min`);
  assert.equal(v.max, e.max, `${what}.max`);
  close(v.average, e.average, `${what}.average`);
  close(v.sigma, e.sigma, `${what}.sigma`);
  assert.equal(v.timeStamp, timeStamp, `${what}.timeStamp`);
  if (timed) {
    assert.equal(v.count, e.count, `${what}.count`);
    close(v.total, e.total, `${what}.total`);
    assert.equal(v.scaleFactor, scaleFactor, `${what}.scaleFactor`);
  }
}

/** Data of a 'steady' worker in a delivery: present with its records (not just an empty tree). */
const reported = (d, w) => Boolean(d.data.workers && d.data.workers[w.id] && d.data.workers[w.id].w);
const absent = (d, w) => !(d.data.workers && w.id in d.data.workers) && !(w.id in d.meta.workers);

/**
 * A 'steady' worker's data in delivery d is its own and of d's interval: hits, pid, and the end
 * of the interval the worker recorded it in.
 */
function checkSteady(d, w, hits, interval, scaleFactor = 1) {
  const tree = d.data.workers[w.id];
  const end = endOf(d);
  assert.deepEqual(Object.keys(tree), ['w'], `worker ${w.id}: only its own series`);
  assert.deepEqual(tree.w.hits.value, { val: (hits * scaleFactor) / interval, timeStamp: end }, `worker ${w.id} hits`);
  assert.equal(tree.w.pid.value.val, w.process.pid, `worker ${w.id} pid`);
  assert.equal(tree.w.end.value.val, end, `worker ${w.id}: data of the interval ending ${tree.w.end.value.val} delivered as ${end}`);
  assert.equal(d.meta.workers[w.id], w.process.pid, `meta.workers[${w.id}]`);
}

function steadyEnv(extra) {
  return { MODE: 'steady', SCALE: 1, HITS: 1, ...extra };
}

// ---- 1. exact merge -----------------------------------------------------------------------------

test('the cluster view equals one process fed every value of the master and 3 workers', { timeout: TEST_TIMEOUT }, async (t) => {
  const interval = 300;
  const scaleFactor = 1000;
  const start = Date.now() - 1;
  const p = new Panopticon({ name: 'exact', interval, scaleFactor, startTime: start });
  const workers = [];
  cleanup(t, [p], workers);
  heartbeat(p);
  const errors = [];
  p.on('error', (e) => errors.push(e));
  const ds = deliveries(p);
  const [w1, w2, w3] = await fork(t, [1, 2, 3].map((i) => ({
    MODE: 'exact', NAME: JSON.stringify('exact'), INTERVAL: interval, START: start, SCALE: scaleFactor, PINDEX: i,
  })), workers);
  const proc = new Map([[w1.id, 1], [w2.id, 2], [w3.id, 3]]);

  let done = null;
  let doneRound = 0;
  const retries = [];
  for (let round = 1; round <= 6 && !done; round++) {
    // At the start of an interval: everyone records, then `set` is written by the master, w3, w2,
    // w1 in that order, each strictly after the previous one (the most recent write is w1's,
    // which the merge sees second: the order of writes decides, not the order of merging).
    await new Promise((resolve) => p.once('newInterval', resolve));
    const acks = [w1, w2, w3].map((w) => fromWorker(w, (m) => m.recorded === round, 'record ack'));
    for (const w of [w1, w2, w3]) w.send({ cmd: 'record', round });
    p.inc(['t'], 'first', 1);
    const ends = [p.endTime];
    data.recordAll(p, 0);
    p.set(['t'], 'latest', { by: 'master', round });
    ends.push(p.endTime);
    for (const a of await Promise.all(acks)) ends.push(a.endFirst, a.endLast);
    let lastAt = Date.now();
    for (const [name, w] of [['w3', w3], ['w2', w2], ['w1', w1]]) {
      await sleep(3);
      const ack = fromWorker(w, (m) => m.wasSet === round, 'set ack');
      w.send({ cmd: 'set', round, value: { by: name, round } });
      const { at, end } = await ack;
      assert.ok(at > lastAt, 'writes in order');
      lastAt = at;
      ends.push(end);
    }
    const end = ends[0];
    if (!ends.every((e) => e === end)) {
      retries.push(`round ${round} straddled a boundary: ${ends}`);
      continue;
    }
    const d = await ds.until((x) => endOf(x) >= end, `the delivery of ${end}`);
    assert.equal(endOf(d), end, 'the round\'s interval was delivered');
    const ids = Object.keys(d.data.workers).map(Number).sort((a, b) => a - b);
    if (ids.length !== 3) {
      retries.push(`round ${round}: only workers ${ids} in time (late ${d.meta.late})`);
      continue;
    }
    done = d;
    doneRound = round;
  }
  assert.ok(done, `no round completed: ${retries.join('; ')}`);
  const d = done;
  const end = endOf(d);

  // Each process's own tree holds its own values.
  const trees = [[0, d.data.master], ...[w1, w2, w3].map((w) => [proc.get(w.id), d.data.workers[w.id]])];
  for (const [i, tree] of trees) {
    const who = i === 0 ? 'master' : `worker ${i}`;
    const total = data.incs(i).reduce((s, n) => s + (Number.isFinite(n) ? n : 1), 0);
    assert.deepEqual(tree.t.hits.value, { val: (total * scaleFactor) / interval, timeStamp: end }, `${who} hits`);
    assert.deepEqual(tree.t.first.value, { val: scaleFactor / interval, timeStamp: end }, `${who} first`);
    checkSummary(tree.t.size, data.samples(i), end, `${who} size`);
    checkSummary(tree.t.latency, data.hrtimes(i).map((dt) => data.hrtimeValue(dt, scaleFactor)), end, `${who} latency`, { timed: true, scaleFactor });
    assert.deepEqual(tree.t.latest.value, { val: { by: i === 0 ? 'master' : `w${i}`, round: doneRound }, timeStamp: end }, `${who} latest`);
  }

  // The cluster view: what one process fed every value would report.
  const all = [0, 1, 2, 3];
  const c = d.data.cluster.t;
  const total = all.flatMap((i) => data.incs(i)).reduce((s, n) => s + (Number.isFinite(n) ? n : 1), 0);
  assert.deepEqual(c.hits, { type: 'inc', value: { val: (total * scaleFactor) / interval, timeStamp: end } });
  assert.deepEqual(c.first, { type: 'inc', value: { val: (4 * scaleFactor) / interval, timeStamp: end } });
  checkSummary(c.size, all.flatMap((i) => data.samples(i)), end, 'cluster size');
  checkSummary(c.latency, all.flatMap((i) => data.hrtimes(i)).map((dt) => data.hrtimeValue(dt, scaleFactor)), end, 'cluster latency', { timed: true, scaleFactor });
  assert.equal(c.latest.value.val.by, 'w1', 'the most recent set wins');
  assert.deepEqual(Object.keys(d.data.cluster).sort(), ['hb', 't']);
  assert.deepEqual(Object.keys(c).sort(), ['first', 'hits', 'latency', 'latest', 'size']);

  assert.deepEqual(d.meta.workers, { [w1.id]: w1.process.pid, [w2.id]: w2.process.pid, [w3.id]: w3.process.pid });
  assert.equal(d.meta.pid, process.pid);
  assert.equal(d.meta.decodeErrors, 0);
  assert.equal(d.meta.dropped, 0);
  assert.equal(d.meta.errors, 0);
  assert.deepEqual(errors, []);
  assert.equal(d.name, 'exact');
  assert.equal(d.interval, interval / scaleFactor);
  if (retries.length) t.diagnostic(retries.join('; '));
});

// ---- 2. a worker killed -------------------------------------------------------------------------

test('a worker killed with SIGKILL mid-interval: the others keep being delivered', { timeout: TEST_TIMEOUT }, async (t) => {
  const interval = 200;
  const start = Date.now() - 3;
  const p = new Panopticon({ name: 'kill', interval, startTime: start });
  const workers = [];
  cleanup(t, [p], workers);
  heartbeat(p);
  const errors = [];
  p.on('error', (e) => errors.push(e));
  const ds = deliveries(p);
  const env = (hits) => steadyEnv({ NAME: JSON.stringify('kill'), INTERVAL: interval, START: start, HITS: hits });
  const [a, b, c] = await fork(t, [env(1), env(10), env(100)], workers);

  // Right after a delivery that has all three (half-way through an interval), kill b.
  await ds.until((d) => [a, b, c].every((w) => reported(d, w)), 'a delivery with all three workers');
  const exited = new Promise((resolve) => b.once('exit', (code, signal) => resolve(signal)));
  b.process.kill('SIGKILL');
  const killedAt = Date.now();
  assert.equal(await exited, 'SIGKILL');

  // Every interval that ended after the kill is delivered without b; a and c keep coming.
  let complete = 0;
  const check = (d) => {
    if (endOf(d) === undefined || endOf(d) <= killedAt) return;
    assert.ok(absent(d, b), `the killed worker ${b.id} in the delivery of ${endOf(d)}: ${JSON.stringify(d.meta.workers)}`);
    assert.equal(d.meta.decodeErrors, 0);
    assert.equal(d.meta.errors, 0);
    for (const [w, hits] of [[a, 1], [c, 100]]) if (reported(d, w)) checkSteady(d, w, hits, interval);
    if (reported(d, a) && reported(d, c)) {
      complete += 1;
      assert.equal(d.data.cluster.w.hits.value.val, 101 / interval, 'the cluster view sums the live workers');
    }
  };
  await ds.until(() => complete >= 4, 'four deliveries with both live workers after the kill', check);
  assert.deepEqual(errors, []);
  assert.ok(!Object.values(cluster.workers).includes(b));
});

// ---- 3. foreign and malformed messages ----------------------------------------------------------

test('foreign messages are ignored, malformed marked ones are counted, data stays right', { timeout: TEST_TIMEOUT }, async (t) => {
  const interval = 300;
  const start = Date.now() - 5;
  const p = new Panopticon({ name: 'robust', interval, startTime: start });
  const workers = [];
  cleanup(t, [p], workers);
  heartbeat(p);
  const errors = [];
  p.on('error', (e) => errors.push(e));
  const ds = deliveries(p);
  const env = (hits) => steadyEnv({ NAME: JSON.stringify('robust'), INTERVAL: interval, START: start, HITS: hits });
  const [g, n] = await fork(t, [env(2), env(5)], workers);
  const appMessages = [];
  g.on('message', (msg) => {
    if (!(msg && (msg.ctl || msg.__panoptic !== undefined))) appMessages.push(msg);
  });
  const decodeErrors = () => ds.all.reduce((s, d) => s + d.meta.decodeErrors, 0);
  const checkBoth = (d) => {
    assert.equal(d.meta.errors, 0);
    for (const w of [g, n]) if (reported(d, w)) checkSteady(d, w, w === g ? 2 : 5, interval);
    if (reported(d, g) && reported(d, n)) assert.equal(d.data.cluster.w.hits.value.val, 7 / interval);
  };
  const both = (d) => reported(d, g) && reported(d, n);
  await ds.until(both, 'a delivery with both workers', checkBoth);

  // Phase 1: messages of other IPC users are not counted and still reach the app's listener.
  const foreignAck = fromWorker(g, (m) => m.foreignSent, 'foreign ack');
  g.send({ cmd: 'foreign' });
  const sent = (await foreignAck).foreignSent;
  // Everything sent before the ack was received before it: a delivery emitted after it counts all.
  let mark = ds.all.length;
  await ds.until((d) => ds.indexOf(d) >= mark && both(d), 'a delivery with both workers after the foreign messages', checkBoth);
  assert.equal(sent, 9);
  assert.equal(decodeErrors(), 0, 'unmarked messages are not decode errors');
  assert.deepEqual(appMessages, [
    { hello: 'from the app' }, 'a plain string', 42, null, false, [1, 2, 3],
    { event: 'workerSample', id: 0, sample: { bogus: true } },
    { __panopticon: 1, key: 'x', snapshot: 'x' },
    { key: 'name:robust', snapshot: 'AAAA' },
  ], "the app's listener gets its messages");
  assert.equal(ds.all.at(-1).data.bogus, undefined);

  // Phase 2 (over IPC: it garbles the worker's IPC snapshots; hostile bytes on the native
  // transport are cluster.test.js's): marked garbage, then the next real snapshot sent twice.
  if (!native) await garbled(t, g, ds, checkBoth, decodeErrors);

  // And data keeps coming, right, with nothing more counted.
  let later = 0;
  await ds.until(() => later >= 2, 'two more deliveries with both workers', (d) => {
    checkBoth(d);
    assert.equal(d.meta.decodeErrors, 0);
    if (both(d)) later += 1;
  });
  assert.deepEqual(errors, []);
  assert.equal(appMessages.length, 9, 'marked messages are ours');
});

/** Worker `g` sends 13 marked but malformed messages, then its next real snapshot twice: all counted. */
async function garbled(t, g, ds, checkBoth, decodeErrors) {
  const garbageAck = fromWorker(g, (m) => m.garbageSent, 'garbage ack');
  const duplicated = fromWorker(g, (m) => m.duplicated, 'duplicate sent');
  g.send({ cmd: 'garbage' });
  const garbageSent = (await garbageAck).garbageSent;
  assert.equal(garbageSent, 13);
  const dup = (await duplicated).duplicated;
  const mark = ds.all.length;
  // The delivery of the duplicated interval. If the original was in it and the copy arrived
  // before it (both unless the machine stalled a process for half an interval), the copy was a
  // second snapshot of one interval: a decode error. If the original was late, so was the copy.
  const dd = await ds.until((d) => endOf(d) >= dup.end, `the delivery of ${dup.end}`, checkBoth);
  assert.equal(endOf(dd), dup.end);
  const originalInTime = reported(dd, g);
  await ds.until((d) => ds.indexOf(d) >= mark, 'a delivery after the duplicate', checkBoth);
  if (originalInTime && ds.indexOf(dd) >= mark) {
    assert.equal(decodeErrors(), garbageSent + 1, 'every malformed message counted once');
  } else {
    t.diagnostic(`the duplicated snapshot was ${originalInTime ? 'delivered before its copy arrived' : 'late'}`);
    assert.ok([garbageSent, garbageSent + 1].includes(decodeErrors()), `decodeErrors ${decodeErrors()}`);
    if (!originalInTime) assert.equal(decodeErrors(), garbageSent, 'a late copy is late, not a decode error');
  }
}

// ---- 4. late batches ----------------------------------------------------------------------------

test('a batch that arrives after its interval was delivered is counted late, never merged elsewhere', { timeout: TEST_TIMEOUT }, async (t) => {
  const interval = 300;
  const deliveryDelay = 40;
  const hold = 200; // the worker is blocked until its boundary + 200 ms; the master delivers at + 40
  const start = Date.now() - 11;
  const p = new Panopticon({ name: 'late', interval, deliveryDelay, startTime: start });
  const workers = [];
  cleanup(t, [p], workers);
  heartbeat(p);
  const ds = deliveries(p);
  const [w] = await fork(t, [steadyEnv({ NAME: JSON.stringify('late'), INTERVAL: interval, START: start, HITS: 3 })], workers);
  const check = (d) => {
    assert.equal(d.meta.decodeErrors, 0, 'a late batch is not a decode error');
    assert.equal(d.meta.errors, 0);
    if (reported(d, w)) checkSteady(d, w, 3, interval);
  };

  let blocked = null;
  const retries = [];
  for (let attempt = 1; attempt <= 5 && !blocked; attempt++) {
    await ds.until((d) => reported(d, w), 'a delivery with the worker', check);
    const ack = fromWorker(w, (m) => m.blocked, 'blocked');
    w.send({ cmd: 'block', lead: 30, hold });
    const b = (await ack).blocked;
    // Valid only if the worker was blocked before its instance closed the interval.
    if (b.startedAt < b.end && b.endTimeAtStart === b.end) blocked = b;
    else retries.push(`attempt ${attempt}: the block started too late (${JSON.stringify(b)})`);
  }
  assert.ok(blocked, retries.join('; '));
  const E = blocked.end;

  const dE = await ds.until((d) => endOf(d) >= E, `the delivery of ${E}`, check);
  assert.equal(endOf(dE), E);
  assert.ok(absent(dE, w), 'the blocked worker missed the delivery of its interval');

  // The late batch is counted in a later delivery, and the worker's data in every later
  // delivery is of that delivery's interval (checkSteady: its `end` is the delivery's end).
  let late = 0;
  const after = [];
  await ds.until((d) => after.length >= 3 && after.some((x) => reported(x, w)), 'deliveries after the late batch', (d) => {
    check(d);
    after.push(d);
    late += d.meta.late;
  });
  assert.ok(late >= 1, `meta.late counted the late batch (${after.map((d) => d.meta.late)})`);
  if (retries.length) t.diagnostic(retries.join('; '));
});

// ---- 5. restarts --------------------------------------------------------------------------------

test('a worker killed and replaced: the new worker id is delivered with its data', { timeout: TEST_TIMEOUT }, async (t) => {
  const interval = 200;
  const start = Date.now() - 17;
  const p = new Panopticon({ name: 'restart', interval, startTime: start });
  const workers = [];
  cleanup(t, [p], workers);
  heartbeat(p);
  const ds = deliveries(p);
  const env = (hits) => steadyEnv({ NAME: JSON.stringify('restart'), INTERVAL: interval, START: start, HITS: hits });
  const [a, b] = await fork(t, [env(1), env(10)], workers);
  const check = (d) => {
    assert.equal(d.meta.decodeErrors, 0);
    assert.equal(d.meta.errors, 0);
    for (const [w, hits] of [[a, 1], [b, 10]]) if (reported(d, w)) checkSteady(d, w, hits, interval);
  };
  await ds.until((d) => reported(d, a) && reported(d, b), 'a delivery with both workers', check);
  const forkListeners = cluster.listenerCount('fork');

  const listening = b.listenerCount('message'); // Node's cluster's own and panoptic's
  await kill(b);
  const killedAt = Date.now();
  const [c] = await fork(t, [env(100)], workers);
  assert.ok(c.id > b.id);
  let seen = 0;
  await ds.until(() => seen >= 3, 'three deliveries with the new worker', (d) => {
    check(d);
    if (endOf(d) > killedAt) assert.ok(absent(d, b), 'the dead worker is gone');
    if (reported(d, c)) {
      checkSteady(d, c, 100, interval);
      if (reported(d, a)) assert.equal(d.data.cluster.w.hits.value.val, 101 / interval);
      seen += 1;
    }
  });
  assert.equal(cluster.listenerCount('fork'), forkListeners);
  assert.equal(b.listenerCount('message'), listening - 1, "panoptic's listener left the dead worker");
});

// ---- 6. many instances --------------------------------------------------------------------------

test('instances match by unique name whatever their order, by construction order when names are shared; no listener leaks', { timeout: TEST_TIMEOUT }, async (t) => {
  const interval = 250;
  const start = Date.now() - 23;
  // The construction index decides for shared names: count from 0 here, as in a fresh worker.
  Panopticon._resetCount();
  const masterOrder = ['alpha', 'beta', 'gamma', 'dup', 'dup', 7];
  const orders = [['gamma', 7, 'beta', 'dup', 'dup', 'alpha'], [7, 'alpha', 'gamma', 'dup', 'dup', 'beta']];
  const instances = masterOrder.map((name) => new Panopticon({ name, interval, startTime: start }));
  const workers = [];
  const owned = [...instances];
  cleanup(t, owned, workers);
  const labels = instances.map((p) => data.labelOf(p, p.name === 'dup'));
  assert.deepEqual(labels, ['alpha', 'beta', 'gamma', 'dup#3', 'dup#4', '7']);
  const streams = instances.map((p, i) => {
    heartbeat(p);
    p.on('newInterval', () => {
      p.set(['who'], 'label', labels[i]);
      p.inc(['who'], 'n', data.WEIGHTS[labels[i]]);
    });
    return deliveries(p);
  });
  const ws = await fork(t, orders.map((order) => ({ MODE: 'many', INTERVAL: interval, START: start, ORDER: JSON.stringify(order) })), workers);

  // Every delivery of every instance: each worker's tree is that worker's same instance.
  const check = (i) => (d) => {
    assert.equal(d.meta.decodeErrors, 0);
    assert.equal(d.meta.errors, 0);
    for (const [id, tree] of Object.entries(d.data.workers || {})) {
      if (!tree.who) continue;
      assert.deepEqual(tree, {
        who: {
          label: { type: 'set', value: { val: labels[i], timeStamp: endOf(d) } },
          n: { type: 'inc', value: { val: data.WEIGHTS[labels[i]] / interval, timeStamp: endOf(d) } },
        },
      }, `instance ${labels[i]} got worker ${id}'s data`);
    }
  };
  const full = (d) => ws.every((w) => d.data.workers && d.data.workers[w.id] && d.data.workers[w.id].who);
  const allComplete = async (what) => {
    await Promise.all(streams.map(async (s, i) => {
      const d = await s.until(full, `${what}: a delivery of ${labels[i]} with both workers`, check(i));
      assert.equal(d.data.cluster.who.n.value.val, (3 * data.WEIGHTS[labels[i]]) / interval, `${labels[i]}: the cluster sum`);
      assert.deepEqual(d.meta.workers, Object.fromEntries(ws.map((w) => [w.id, w.process.pid])));
    }));
  };
  await allComplete('before the churn');

  // Many instances created and stopped, here and in the workers: no listener left behind.
  const base = {
    fork: cluster.listenerCount('fork'),
    workers: ws.map((w) => ({ message: w.listenerCount('message'), exit: w.listenerCount('exit') })),
  };
  const N = 60;
  const churned = [];
  for (let i = 0; i < N; i++) churned.push(new Panopticon({ interval, startTime: start, name: i % 3 ? `churn-${i}` : undefined }));
  owned.push(...churned);
  // One listener per worker routes every instance's messages (and sees those for none).
  assert.equal(cluster.listenerCount('fork'), base.fork, 'more instances listen through the same router');
  assert.deepEqual(ws.map((w) => w.listenerCount('message')), base.workers.map((b) => b.message));
  const churnAcks = ws.map((w) => fromWorker(w, (m) => m.churned, 'churn ack'));
  for (const w of ws) w.send({ cmd: 'churn', n: N });
  await sleep(interval * 1.5); // they live through a boundary
  for (const q of churned) q.stop();
  assert.equal(cluster.listenerCount('fork'), base.fork);
  assert.deepEqual(ws.map((w) => ({ message: w.listenerCount('message'), exit: w.listenerCount('exit') })), base.workers);
  for (const ack of await Promise.all(churnAcks)) {
    assert.equal(ack.churned, N);
    assert.deepEqual(ack.after, ack.before, 'the workers\' process listeners are back');
  }
  await allComplete('after the churn');
});

// ---- 7. stop() in a worker ----------------------------------------------------------------------

test("stop() on a worker's instance stops its sending; the process lives on", { timeout: TEST_TIMEOUT }, async (t) => {
  const interval = 200;
  const start = Date.now() - 29;
  const p = new Panopticon({ name: 'stopper', interval, startTime: start });
  const workers = [];
  cleanup(t, [p], workers);
  heartbeat(p);
  const ds = deliveries(p);
  const env = (hits) => steadyEnv({ NAME: JSON.stringify('stopper'), INTERVAL: interval, START: start, HITS: hits });
  const [a, b] = await fork(t, [env(1), env(10)], workers);
  const check = (d) => {
    assert.equal(d.meta.decodeErrors, 0);
    for (const [w, hits] of [[a, 1], [b, 10]]) if (reported(d, w)) checkSteady(d, w, hits, interval);
  };
  await ds.until((d) => reported(d, a) && reported(d, b), 'a delivery with both workers', check);

  const ack = fromWorker(a, (m) => m.stoppedAt, 'stop ack');
  a.send({ cmd: 'stopInstance' });
  const { stoppedAt } = await ack;
  let after = 0;
  await ds.until(() => after >= 4, 'deliveries with the other worker after the stop', (d) => {
    check(d);
    if (endOf(d) > stoppedAt) {
      assert.ok(absent(d, a), `the stopped instance's worker in the delivery of ${endOf(d)}`);
      if (reported(d, b)) {
        after += 1;
        assert.equal(d.data.cluster.w.hits.value.val, 10 / interval);
      }
    }
  });
  const pong = fromWorker(a, (m) => m.pong === 1, 'pong');
  a.send({ cmd: 'ping', n: 1 });
  await pong;
  assert.ok(!a.isDead() && a.isConnected(), 'the worker is alive');
});
