'use strict';

// The demo behind `npm start`: a cluster of 2 HTTP workers, each recording its requests with
// panoptic, and a master that puts load on them and prints each delivery as a table: one row per
// worker and the exact cluster-wide merge. The master also serves the live page (charts of every
// series, per worker and merged) at http://127.0.0.1:9464/ (another free port when that one is
// taken: the URL is printed).
//   npm start                                 run until Ctrl-C
//   npm start -- --duration 10                stop after 10 seconds
//   npm start -- --interval 500               deliver every 500 ms (default 1000)
//   npm start -- --port 8099                  listen there (default 0: any free port)
//   npm start -- --concurrency 20             requests in flight from the load generator
//
// This file runs in the master and, through cluster.fork(), in each worker: both build the same
// named instance ('demo'), which is how a worker's data finds the master's instance.

const cluster = require('cluster');
const http = require('http');
const Panopticon = require('..');

const WORKERS = 2;

// ---- options --------------------------------------------------------------------------------

const OPTIONS = {
  // setTimeout's limit: 2^31 - 1 ms.
  duration: { fallback: Infinity, valid: (v) => v > 0 && v <= 2147483, rule: 'a number of seconds from 0 (excluded) to 2147483' },
  interval: { fallback: 1000, valid: (v) => v > 0, rule: 'a number of ms > 0' },
  port: { fallback: 0, valid: (v) => Number.isInteger(v) && v >= 0 && v <= 65535, rule: 'an integer from 0 to 65535' },
  concurrency: { fallback: 20, valid: (v) => Number.isInteger(v) && v > 0 && v <= 1000, rule: 'an integer from 1 to 1000' },
};

function usage(message) {
  if (message) console.error(`demo: ${message}`);
  console.error('usage: npm start -- [--duration s] [--interval ms] [--port n] [--concurrency n]');
  process.exit(message ? 2 : 0);
}

function parseArgs(argv) {
  const out = {};
  for (const [name, { fallback }] of Object.entries(OPTIONS)) out[name] = fallback;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--help' || argv[i] === '-h') usage();
    const match = /^--([a-z]+)(?:=(.*))?$/.exec(argv[i]);
    const spec = match && OPTIONS[match[1]];
    if (!spec) usage(`unknown argument ${JSON.stringify(argv[i])}`);
    const text = match[2] !== undefined ? match[2] : argv[++i];
    if (text === undefined) usage(`--${match[1]} needs a value (${spec.rule})`);
    const value = text.trim() === '' ? NaN : Number(text);
    if (!Number.isFinite(value) || !spec.valid(value)) {
      usage(`--${match[1]} must be ${spec.rule}, got ${JSON.stringify(text)}`);
    }
    out[match[1]] = value;
  }
  return out;
}

// Workers are forked with the same arguments, already checked by the master.
const options = parseArgs(process.argv.slice(2));

// scaleFactor 1000: `inc` rates are per second, times are in seconds. The grid
// (startTime 0, the default) is the same in every process, so intervals line up across them.
// runtime: every process's CPU, memory, heap, GC and event-loop delay (docs/runtime.md), merged
// on the master and drawn per process on the live page.
const panopticon = new Panopticon({ name: 'demo', interval: options.interval, scaleFactor: 1000, runtime: true });

if (cluster.isPrimary) runMaster();
else runWorker();

// ---- worker: an HTTP server that records every request ------------------------------------

function runWorker() {
  // Handles resolved once: the fast way to record the same series often.
  const requests = panopticon.bind('inc', ['http'], 'requests');
  const latency = panopticon.bind('timedSample', ['http'], 'latency');
  // Its percentiles: a process.hrtime() difference is a time, in seconds at scaleFactor 1000 (the
  // histogram's default range, a microsecond to an hour, follows the unit).
  const latencySeconds = panopticon.bind('histogram', ['http'], 'latency_seconds');
  const lastPath = panopticon.bind('set', ['http'], 'lastPath');
  const statuses = new Map(); // status code -> bound handle
  const status = (code) => {
    let handle = statuses.get(code);
    if (handle === undefined) statuses.set(code, (handle = panopticon.bind('inc', ['http', 'status'], code)));
    handle();
  };

  const server = http.createServer((req, res) => {
    const start = process.hrtime();
    requests();
    // Simulated work: 1 to 20 ms.
    setTimeout(() => {
      const code = req.url === '/boom' ? 500 : req.url === '/missing' ? 404 : 200;
      res.writeHead(code, { 'content-type': 'text/plain' });
      res.end(`${code} from worker ${cluster.worker.id}\n`);
      const elapsed = process.hrtime(start);
      latency(elapsed);
      latencySeconds(elapsed);
      status(code);
      lastPath(req.url); // cluster-wide, the most recent `set` wins
    }, 1 + Math.random() * 19);
  });
  server.on('error', (err) => {
    console.error(`demo: worker ${cluster.worker.id} cannot serve on 127.0.0.1:${options.port}: ${err.message}`);
    process.exit(1);
  });
  server.listen(options.port, '127.0.0.1');

  // Ctrl-C reaches the whole process group: the master decides when and how workers stop.
  process.on('SIGINT', () => {});
  process.on('SIGTERM', () => {});
  process.on('message', (msg) => {
    if (msg !== 'demo:stop') return;
    panopticon.stop();
    // Closes the server (the master has closed its connections), then the IPC channel: nothing
    // is left and the process ends by itself.
    cluster.worker.disconnect();
  });
}

// ---- master: workers, load, tables, shutdown ------------------------------------------------

function runMaster() {
  let port = null;
  let stopping = false;
  let deliveries = 0;
  let exitCode = 0;
  let durationTimer = null;

  // The master records its load generator's side; it shows up under data.master.
  const responses = panopticon.bind('inc', ['load'], 'responses');
  const clientErrors = panopticon.bind('inc', ['load'], 'errors');
  const roundTrip = panopticon.bind('sample', ['load'], 'roundTripMs'); // as the client sees it

  const workers = [];
  for (let i = 0; i < WORKERS; i++) workers.push(cluster.fork());
  for (const worker of workers) {
    worker.on('exit', (code, signal) => {
      if (stopping) return;
      console.error(`demo: worker ${worker.id} (pid ${worker.process.pid}) exited unexpectedly (${signal || `code ${code}`})`);
      exitCode = 1;
      shutdown();
    });
  }

  // Load starts when every worker listens. They share one socket, bound by the master's cluster
  // module: with --port 0 it picks one free port for all of them.
  let listening = 0;
  cluster.on('listening', (worker, address) => {
    port = address.port;
    listening += 1;
    if (listening === WORKERS) startLoad();
  });

  // -- the load generator: `concurrency` request loops over keep-alive connections
  const agent = new http.Agent({ keepAlive: true, maxSockets: options.concurrency });
  let inFlight = 0;
  let drained = null; // resolves when the last in-flight request is done during shutdown
  panopticon.gauge(['load'], 'inFlight', () => inFlight); // read at each interval's end

  function pickPath() {
    const r = Math.random();
    if (r < 0.02) return '/boom';
    if (r < 0.08) return '/missing';
    return `/items/${Math.floor(Math.random() * 1000)}`;
  }

  function request() {
    if (stopping) {
      inFlight -= 1;
      if (inFlight === 0 && drained) drained();
      return;
    }
    const sent = performance.now();
    const req = http.get({ host: '127.0.0.1', port, path: pickPath(), agent }, (res) => {
      res.resume();
      res.on('end', () => {
        responses();
        roundTrip(performance.now() - sent);
        request();
      });
    });
    req.on('error', () => {
      clientErrors();
      setTimeout(request, 100); // e.g. a worker going away; retry a little later
    });
  }

  function startLoad() {
    if (stopping) return;
    console.log(`load: ${options.concurrency} requests in flight to http://127.0.0.1:${port}/ ` +
      `(workers ${workers.map((w) => `${w.id}: pid ${w.process.pid}`).join(', ')})`);
    for (let i = 0; i < options.concurrency; i++) {
      inFlight += 1;
      request();
    }
  }

  // -- the tables
  panopticon.on('delivery', (delivery) => {
    deliveries += 1;
    printDelivery(delivery, deliveries, workers.map((w) => String(w.id)));
  });

  // -- shutdown: load, then the master's instance, then the workers (their servers and
  // instances); the master ends when nothing is left.
  async function shutdown() {
    if (stopping) return;
    stopping = true;
    clearTimeout(durationTimer);
    panopticon.stop();
    console.log(`\nstopping after ${deliveries} deliveries`);

    if (inFlight > 0) {
      // The request loops end as their responses come in (bounded: a stuck one is cut off).
      await new Promise((resolve) => {
        const cutOff = setTimeout(resolve, 2000);
        drained = () => {
          clearTimeout(cutOff);
          resolve();
        };
      });
    }
    agent.destroy();

    await Promise.all(workers.map((worker) => new Promise((resolve) => {
      if (worker.isDead()) return resolve();
      const kill = setTimeout(() => {
        console.error(`demo: worker ${worker.id} did not stop in time; killing it`);
        exitCode = 1;
        worker.kill('SIGKILL');
      }, 5000);
      worker.once('exit', () => {
        clearTimeout(kill);
        resolve();
      });
      if (worker.isConnected()) worker.send('demo:stop');
      else worker.kill('SIGKILL');
    })));

    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    process.exitCode = exitCode;
    console.log('stopped: workers exited, servers closed');
    // Nothing should keep the process alive now; if something does, say what and fail.
    setTimeout(() => {
      console.error('demo: still running after shutdown:', process.getActiveResourcesInfo().join(', '));
      process.exit(1);
    }, 3000).unref();
  }

  let signals = 0;
  function onSignal() {
    signals += 1;
    if (signals === 1) return void shutdown();
    console.error('demo: second signal, killing the workers');
    for (const worker of workers) worker.process.kill('SIGKILL');
    process.exit(130);
  }
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  durationTimer = Number.isFinite(options.duration) ? setTimeout(shutdown, options.duration * 1000) : null;

  console.log(`panoptic cluster demo: ${WORKERS} workers, one delivery every ${options.interval} ms` +
    `${Number.isFinite(options.duration) ? `, for ${options.duration} s` : ' (Ctrl-C to stop)'}`);

  // The live page, on a fixed port when it is free (a bookmark keeps working), else on any.
  panopticon.serve({ port: 9464 })
    .catch((error) => (error.code === 'EADDRINUSE' ? panopticon.serve({ port: 0 }) : Promise.reject(error)))
    .then(({ url }) => console.log(`live page: ${url}`), (error) => {
      if (stopping) return; // stopped before the server was up
      console.error(`demo: cannot serve the live page: ${error.message}`);
      exitCode = 1;
      shutdown();
    });
}

// ---- printing a delivery --------------------------------------------------------------------

const fmt = (x, digits = 2) => (x === null || x === undefined || Number.isNaN(x) ? '-' : Number(x).toFixed(digits));

function leaf(tree, path, id) {
  let node = tree;
  for (const key of path) node = node && node[key];
  return node && node[id] ? node[id].value : undefined;
}

/** One table row's cells from a process's (or the merged) tree. */
function row(label, tree, seconds, codes) {
  if (!tree || !tree.http) return [label, '(no data in this interval)'];
  const requests = leaf(tree, ['http'], 'requests');
  const latency = leaf(tree, ['http'], 'latency') || {};
  const ms = (x) => fmt(x === null || x === undefined ? x : x * 1e3); // timedSample in seconds
  const status = tree.http.status || {};
  return [
    label,
    fmt(requests && requests.val, 1),
    latency.count === undefined ? '-' : String(latency.count),
    ms(latency.average), ms(latency.min), ms(latency.max), ms(latency.sigma),
    // An inc is a rate: rate * interval (s) gives back the interval's count.
    ...codes.map((code) => (status[code] ? String(Math.round(status[code].value.val * seconds)) : '0')),
    (leaf(tree, ['http'], 'lastPath') || {}).val || '-',
  ];
}

function printDelivery(delivery, number, workerIds) {
  const { data, meta } = delivery;
  const seconds = delivery.interval; // interval / scaleFactor: seconds here
  const trees = [data.cluster, ...Object.values(data.workers || {})];
  const codes = [...new Set(trees.flatMap((t) => Object.keys((t && t.http && t.http.status) || {})))].sort();

  const pids = Object.entries(meta.workers || {}).map(([id, pid]) => `w${id}=${pid}`).join(' ') || 'none';
  const time = new Date().toISOString().slice(11, 23);
  console.log(`\n#${number} ${time}  master ${meta.pid}  workers ${pids}  ` +
    `late ${meta.late}  decodeErrors ${meta.decodeErrors}  dropped ${meta.dropped}  errors ${meta.errors}`);

  const ids = [...new Set([...workerIds, ...Object.keys(data.workers || {})])];
  if (!trees.some((t) => t && t.http)) {
    console.log('  (no requests in this interval)');
    return;
  }
  const table = [
    ['', 'req/s', 'n', 'avg ms', 'min ms', 'max ms', 'sd ms', ...codes.map((c) => `[${c}]`), 'last path'],
    ...ids.map((id) => row(`worker ${id}`, (data.workers || {})[id], seconds, codes)),
    row('cluster', data.cluster, seconds, codes),
  ];
  const full = table.filter((cells) => cells.length > 2);
  const widths = full[0].map((_, i) => Math.max(...full.map((cells) => cells[i].length)));
  for (const cells of table) {
    const line = cells.length === 2
      ? `${cells[0].padEnd(widths[0])}  ${cells[1]}`
      // Labels and the last path left-aligned, numbers right-aligned.
      : cells.map((c, i) => (i === 0 || i === cells.length - 1 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
    console.log(`  ${line.trimEnd()}`);
  }
  const load = data.master && data.master.load;
  if (load) {
    const rt = load.roundTripMs && load.roundTripMs.value;
    console.log(`  load generator (master): ${fmt(load.responses && load.responses.value.val, 1)} responses/s, ` +
      `${fmt(load.errors ? load.errors.value.val * seconds : 0, 0)} errors` +
      (rt ? `, round trip avg ${fmt(rt.average)} ms (min ${fmt(rt.min)}, max ${fmt(rt.max)}, sigma ${fmt(rt.sigma)})` : ''));
  }
}
