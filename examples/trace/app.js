'use strict';

// A traced cluster to try panoptic-trace on: 2 HTTP workers on 127.0.0.1 with request:start and
// request:end probes, and a master that keeps sending them requests.
//
//   node examples/trace/app.js                                   # in one terminal
//   node bin/panoptic-trace.js -t 'trace-example-*' examples/trace/durations.js
//   node bin/panoptic-trace.js -t 'trace-example-*' examples/trace/status.js
//
// `--duration <s>` stops it after that many seconds. The workers opt in to remote scripts
// (trace.allowRemote()); status.js needs it, durations.js does not.

const cluster = require('cluster');
const http = require('http');
const { trace } = require('../..');

const WORKERS = 2;
const arg = process.argv.indexOf('--duration');
const duration = arg > 0 ? Number(process.argv[arg + 1]) : Infinity;

if (cluster.isPrimary) {
  process.title = 'trace-example';
  const ports = [];
  for (let i = 0; i < WORKERS; i++) {
    cluster.fork().on('message', (m) => {
      if (m.port) ports.push(m.port);
      if (ports.length === WORKERS) load(ports);
    });
  }
  console.log(`master ${process.pid}: ${WORKERS} workers; trace them with -t 'trace-example-*'`);
} else {
  process.title = 'trace-example-worker';
  trace.allowRemote();
  let ids = 0;
  const server = http.createServer((req, res) => {
    const id = ++ids;
    trace('request:start', { id, url: req.url });
    // Some requests are slow, some fail: something to look at.
    setTimeout(() => {
      res.statusCode = Math.random() < 0.1 ? 500 : Math.random() < 0.2 ? 404 : 200;
      res.end('hello world');
      trace('request:end', { id, status: res.statusCode });
    }, Math.random() * 100);
  });
  server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
  process.on('disconnect', () => server.close());
}

/** Keeps 4 requests in flight per worker until --duration has passed. */
function load(ports) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  const until = Date.now() + duration * 1000;
  const one = (port) => {
    if (Date.now() >= until) return;
    http.get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
      res.resume();
      res.on('end', () => one(port));
    }).on('error', () => setTimeout(() => one(port), 100));
  };
  for (const port of ports) for (let i = 0; i < 4; i++) one(port);
  if (Number.isFinite(duration)) {
    setTimeout(() => {
      agent.destroy();
      cluster.disconnect();
    }, duration * 1000 + 200);
  }
}
