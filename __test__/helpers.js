'use strict';

// Shared by the JS tests: waiting for events with a generous, failing timeout.

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

module.exports = { next, fresh, Panopticon };
