'use strict';

// Request durations from the start and end probes, across every traced process, computed here
// (local): every request:start and request:end object is shipped to panoptic-trace. Once a
// second: count, mean and max per process.
//
//   node bin/panoptic-trace.js -t 'trace-example-*' examples/trace/durations.js

exports.local = (traces) => {
  const started = new Map(); // `${pid}:${id}` -> timestamp
  const stats = new Map(); // `${title}/${pid}` -> { n, sum, max }

  traces.on('request:start', (t) => started.set(`${t.pid}:${t.id}`, t.timestamp));
  traces.on('request:end', (t) => {
    const key = `${t.pid}:${t.id}`;
    const start = started.get(key);
    if (start === undefined) return; // began before we attached
    started.delete(key);
    const ms = t.timestamp - start;
    const label = `${t.title}/${t.pid}`;
    const s = stats.get(label) || { n: 0, sum: 0, max: 0 };
    s.n += 1;
    s.sum += ms;
    s.max = Math.max(s.max, ms);
    stats.set(label, s);
  });

  setInterval(() => {
    for (const [label, s] of stats) {
      console.log(`${label}: ${s.n} requests, mean ${(s.sum / s.n).toFixed(1)} ms, max ${s.max} ms`);
    }
    stats.clear();
  }, 1000);
};
