'use strict';

// The demo behind `npm start`: a simulated web server records requests, latencies, queue depths
// and its version with panoptic, and prints each delivery as a table.
//   npm start                    run until Ctrl-C
//   npm start -- --duration 5    stop after 5 seconds
//   npm start -- --interval 500  deliver every 500 ms (default 1000)

const Panopticon = require('..');

function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  if (i === -1) return fallback;
  const value = Number(process.argv[i + 1]);
  if (!Number.isFinite(value) || value <= 0) {
    console.error(`--${name} needs a positive number, got ${process.argv[i + 1]}`);
    process.exit(2);
  }
  return value;
}

const duration = option('duration', Infinity);
const interval = option('interval', 1000);

// scaleFactor 1000: `inc` rates are per second, `timedSample` times are in seconds.
const panopticon = new Panopticon({ name: 'demo', interval, scaleFactor: 1000, startTime: 0 });

// Handles resolved once: the fast way to record the same series often.
const requests = panopticon.bind('inc', ['http'], 'requests');
const errors = panopticon.bind('inc', ['http'], 'errors');
const latency = panopticon.bind('timedSample', ['http'], 'latency');
const queue = panopticon.bind('sample', ['jobs'], 'queueDepth');

// Without `persist`, a series is delivered only for intervals in which it was recorded:
// 'newInterval' is the place for once-per-interval values.
function perInterval() {
  panopticon.set(['app'], 'version', require('../package.json').version);
  panopticon.set(['app'], 'heapUsedMB', Math.round(process.memoryUsage().heapUsed / 1048576));
}
perInterval();
panopticon.on('newInterval', perInterval);

function fakeRequest() {
  const start = process.hrtime();
  const work = 2 + Math.random() * 20;
  setTimeout(() => {
    requests();
    if (Math.random() < 0.03) errors();
    latency(process.hrtime(start));
  }, work);
}

let queueDepth = 0;
const load = setInterval(() => {
  const burst = 1 + Math.floor(Math.random() * 8);
  for (let i = 0; i < burst; i++) fakeRequest();
  queueDepth = Math.max(0, queueDepth + Math.round(Math.random() * 6 - 3));
  queue(queueDepth);
  // A custom-format call, as panopticon 0.3.0 code writes it.
  panopticon.inc(['http', 'status'], Math.random() < 0.9 ? 200 : 404, 1);
}, 10);

const fmt = (x, digits = 2) => (x === null || x === undefined ? '-' : Number(x).toFixed(digits));

function describeLeaf(leaf) {
  const v = leaf.value;
  switch (leaf.type) {
    case 'inc':
      return `${fmt(v.val)} /s`;
    case 'sample':
      return `avg ${fmt(v.average)}  min ${fmt(v.min, 0)}  max ${fmt(v.max, 0)}  sigma ${fmt(v.sigma)}`;
    case 'timedSample':
      // At scaleFactor 1000 a timedSample is in seconds: print ms.
      return `n ${v.count}  avg ${fmt(v.average * 1e3)} ms  min ${fmt(v.min * 1e3)}  max ${fmt(v.max * 1e3)}  sigma ${fmt(v.sigma * 1e3)}`;
    default:
      return JSON.stringify(v.val);
  }
}

function rows(tree, prefix, out) {
  for (const [key, node] of Object.entries(tree)) {
    const name = prefix ? `${prefix}.${key}` : key;
    if (node && typeof node.type === 'string' && node.value) out.push([name, node.type, describeLeaf(node)]);
    else if (node && typeof node === 'object') rows(node, name, out);
  }
  return out;
}

let count = 0;
panopticon.on('delivery', (delivery) => {
  count += 1;
  const { meta } = delivery;
  console.log(`\ndelivery #${count} of "${delivery.name}" at ${new Date().toISOString()} (interval ${interval} ms, pid ${meta.pid}, dropped ${meta.dropped}, errors ${meta.errors})`);
  for (const [name, type, text] of rows(delivery.data, '', []).sort((a, b) => a[0].localeCompare(b[0]))) {
    console.log(`  ${name.padEnd(28)} ${type.padEnd(12)} ${text}`);
  }
});

function stop() {
  clearInterval(load);
  panopticon.stop();
  console.log(`\nstopped after ${count} deliveries`);
}

process.on('SIGINT', stop);
if (Number.isFinite(duration)) setTimeout(stop, duration * 1000);
console.log(`panoptic demo: one delivery every ${interval} ms${Number.isFinite(duration) ? `, for ${duration} s` : ' (Ctrl-C to stop)'}`);
