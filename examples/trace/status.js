'use strict';

// Status codes per second as terminal bars, redrawn each second. Counting happens inside each
// traced process (remote: nothing but the counts crosses the socket); panoptic-trace adds them
// up across processes (local) and draws. The processes must allow remote code
// (PANOPTIC_TRACE_REMOTE=1 or trace.allowRemote(); examples/trace/app.js does).
//
//   node bin/panoptic-trace.js -t 'trace-example-*' examples/trace/status.js

exports.remote = (traces) => {
  let counts = {};
  traces.on('request:end', (t) => {
    counts[t.status] = (counts[t.status] || 0) + 1;
  });
  const timer = setInterval(() => {
    traces.emit('status', counts);
    counts = {};
  }, 1000);
  traces.on('cleanup', () => clearInterval(timer));
};

exports.local = (traces) => {
  let second = {};
  traces.on('status', (counts) => {
    for (const [status, n] of Object.entries(counts)) second[status] = (second[status] || 0) + n;
  });
  setInterval(() => {
    const max = Math.max(1, ...Object.values(second));
    const width = Math.max(10, (process.stdout.columns || 80) - 20);
    const lines = Object.keys(second).sort().map((status) => {
      const n = second[status];
      return `${status} ${'#'.repeat(Math.round((n / max) * width)).padEnd(width)} ${n}/s`;
    });
    // Clear the screen and draw from the top (only on a terminal: a pipe gets plain lines).
    if (process.stdout.isTTY) process.stdout.write('\x1b[2J\x1b[H');
    process.stdout.write(`${lines.join('\n') || '(no requests)'}\n`);
    second = {};
  }, 1000);
};
