'use strict';

// Shared by the JS tests: waiting for events with a generous, failing timeout, and stopping the
// cluster workers of a test.

const assert = require('node:assert/strict');
const Panopticon = require('..');

/** Resolves with the next `count` emissions of `event` (each as its argument list's first item). */
function next(emitter, event, count = 1, timeoutMs = 10000) {
  return new Promise((resolve, reject) => {
    const seen = [];
    const timer = setTimeout(() => {
      emitter.removeListener(event, on);
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${count} '${event}' (got ${seen.length})`));
    }, timeoutMs);
    function on(value) {
      seen.push(value);
      if (seen.length === count) {
        clearTimeout(timer);
        emitter.removeListener(event, on);
        resolve(count === 1 ? seen[0] : seen);
      }
    }
    emitter.on(event, on);
  });
}

/**
 * A Panopticon that has just delivered: it is half-way through an interval, nothing else is waiting
 * for delivery, so the next 'delivery' is the interval being recorded now.
 */
async function fresh(options) {
  const p = new Panopticon({ startTime: 0, ...options });
  await next(p, 'delivery', 1, options.interval * 4 + 5000);
  return p;
}

/**
 * Deliveries of `p` until `done(delivery, all so far)` is true: all of them, the last one the one
 * `done` accepted. Fails with `what` when none does within `timeoutMs`.
 */
async function deliveriesUntil(p, done, timeoutMs = 20000, what = 'condition not met in time') {
  const deadline = Date.now() + timeoutMs;
  const all = [];
  for (;;) {
    const d = await next(p, 'delivery', 1, timeoutMs);
    all.push(d);
    if (done(d, all)) return all;
    assert.ok(Date.now() < deadline, what);
  }
}

/** The first delivery of `p` that `done(delivery)` accepts (bounded, as deliveriesUntil). */
async function deliveryWhere(p, done, timeoutMs, what) {
  const all = await deliveriesUntil(p, done, timeoutMs, what);
  return all[all.length - 1];
}

/**
 * Sends 'stop' to each of the cluster `workers` still alive (the fixtures stop their instance and
 * disconnect) and resolves when all have exited.
 */
function stopWorkers(workers) {
  return Promise.all(workers.map((w) => new Promise((resolve) => {
    if (w.isDead()) return resolve();
    w.once('exit', resolve);
    w.send('stop');
  })));
}

module.exports = { next, fresh, deliveriesUntil, deliveryWhere, stopWorkers, Panopticon };
