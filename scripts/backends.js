'use strict';

// Real back-ends for the tests: installs them (Debian packages, as root) when missing and starts
// them on loopback with a throw-away data directory.
//
//   node scripts/backends.js [prometheus|openmetrics|influxdb|chromium|curl|otlp ...]
//       installs the named back-ends (all when none is named); `npm test` runs it first
//   node scripts/backends.js serve influxdb
//       for tests in other languages (crates/panoptic-core/tests/influx.rs): starts an InfluxDB,
//       prints one JSON line `{ "url", "port" }` once /ping answers, then reads commands from
//       stdin, one per line, each answered by one line: `stop` (-> `stopped`), `start`
//       (-> `started`); at the end of stdin (or SIGTERM) it stops influxd and removes its data
//
// From tests: `const { startPrometheus, InfluxServer, startOtlpReceiver } = require('../scripts/backends')`;
// scripts/chromium.js drives the browser.

const { execFileSync, spawn } = require('child_process');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');

/** The full path of an executable on PATH, or null. */
function which(command) {
  for (const dir of (process.env.PATH || '').split(path.delimiter)) {
    const full = path.join(dir || '.', command);
    try {
      fs.accessSync(full, fs.constants.X_OK);
      if (fs.statSync(full).isFile()) return full;
    } catch {
      // not there: next directory
    }
  }
  return null;
}

/** Installs Debian packages (apt-get update first if the package lists do not know them). */
function aptInstall(packages) {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new Error(`installing ${packages.join(', ')} needs root: run as root, or install them with apt-get`);
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () => execFileSync('apt-get', ['install', '-y', '--no-install-recommends', ...packages], { stdio: 'inherit', env });
  console.error(`[backends] apt-get install ${packages.join(' ')}`);
  try {
    install();
  } catch {
    // A fresh machine's package lists may be empty or stale.
    execFileSync('apt-get', ['update'], { stdio: 'inherit', env });
    install();
  }
}

/** Whether Debian's python3 can import `module`. */
function pythonHas(module) {
  try {
    execFileSync('/usr/bin/python3', ['-c', `import ${module}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const INFLUXD = '/usr/bin/influxd';
const OTLP_VENV = path.join(os.homedir(), '.cache', 'panoptic', 'otlp-venv');
const venvPython = (venv) => path.join(venv, 'bin', 'python3');

/** Whether the virtual environment `venv` exists and its python can import `module`. */
function venvHas(venv, module) {
  try {
    execFileSync(venvPython(venv), ['-c', `import ${module}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** The OTLP receiver's virtual environment, with opentelemetry-proto from PyPI. */
function installOtlp() {
  const python = which('python3') || '/usr/bin/python3';
  console.error(`[backends] ${python} -m venv ${OTLP_VENV}; pip install opentelemetry-proto`);
  fs.mkdirSync(path.dirname(OTLP_VENV), { recursive: true });
  try {
    execFileSync(python, ['-m', 'venv', OTLP_VENV], { stdio: 'inherit' });
  } catch {
    // Debian's python3 makes virtual environments only with python3-venv.
    aptInstall(['python3-venv']);
    execFileSync('/usr/bin/python3', ['-m', 'venv', '--clear', OTLP_VENV], { stdio: 'inherit' });
  }
  execFileSync(venvPython(OTLP_VENV), ['-m', 'pip', 'install', '--quiet', 'opentelemetry-proto'], { stdio: 'inherit' });
}
const CHROMIUM = '/usr/bin/chromium';

/** Back-ends by name: how to tell they are installed, and the packages that provide them. */
const BACKENDS = {
  // Prometheus 2.x server and promtool (Debian bookworm: 2.42).
  prometheus: { present: () => which('prometheus') && which('promtool'), packages: ['prometheus'] },
  // The Python client's strict OpenMetrics parser, for Debian's /usr/bin/python3.
  openmetrics: { present: () => pythonHas('prometheus_client.openmetrics.parser'), packages: ['python3-prometheus-client'] },
  // InfluxDB 1.x (Debian's packages do not start it here: InfluxServer runs influxd by hand).
  influxdb: { present: () => fs.existsSync(INFLUXD), packages: ['influxdb', 'influxdb-client'] },
  // Chromium for the live page's tests, driven by playwright-core (scripts/chromium.js).
  chromium: { present: () => fs.existsSync(CHROMIUM), packages: ['chromium'] },
  // curl, a real HTTPS client with basic and bearer credentials (__test__/tls.test.js).
  curl: { present: () => which('curl'), packages: ['curl'] },
  // The OTLP receiver (scripts/otlp-receiver.py): PyPI's opentelemetry-proto, the official
  // definitions' generated Python, in a virtual environment of its own (Debian has no package).
  otlp: { present: () => venvHas(OTLP_VENV, 'opentelemetry.proto.collector.metrics.v1.metrics_service_pb2'), install: installOtlp },
};

/** Installs the back-end `name` unless it is already there (fast when it is). */
function ensure(name) {
  const backend = BACKENDS[name];
  if (!backend) throw new TypeError(`unknown back-end ${JSON.stringify(name)}: one of ${Object.keys(BACKENDS).join(', ')}`);
  if (backend.present()) return;
  if (backend.install) backend.install();
  else aptInstall(backend.packages);
  if (!backend.present()) throw new Error(`${name} still missing after installing it`);
}

/** A TCP port free on 127.0.0.1 right now. */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Resolves when `check()` returns a truthy value (polled), rejects with `what` past `ms`. */
async function until(check, ms, what) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * Starts a Prometheus server on 127.0.0.1 (a free port, a temporary data directory) and waits
 * until it is ready. It scrapes every `scrapeInterval` each job of `jobs`: `{ name, targets,
 * metricsPath = '/metrics', params, scheme, tls, authorization, basicAuth }` (`targets`: `host:port`
 * strings; `params`: the scrape URL's query, e.g. `{ filter: ['x'] }`; `scheme`: 'https' to scrape
 * over TLS; `tls`: the job's `tls_config`, e.g. `{ ca_file }`; `authorization`: its `authorization`,
 * e.g. `{ credentials: 'token' }` (type Bearer); `basicAuth`: its `basic_auth`, `{ username,
 * password }`); `targets` alone makes one job named `panoptic`. `remoteWriteReceiver: true` also
 * takes remote writes (`POST /api/v1/write`); jobs may then be none.
 * Returns `{ url, port, dir, query(promql), targets(), metadata(job), log(), stop(), halt(),
 * restart() }`; `stop()` kills the server and removes the directory; `halt()` stops it and keeps
 * its data and port, for `restart()`.
 */
async function startPrometheus({ jobs, targets, scrapeInterval = '1s', readyMs = 60000, remoteWriteReceiver = false } = {}) {
  ensure('prometheus');
  if (!jobs) jobs = targets ? [{ name: 'panoptic', targets }] : [];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'panoptic-prometheus-'));
  // JSON is YAML: every value below is written as JSON.
  const config = [jobs.length ? 'scrape_configs:' : 'scrape_configs: []'];
  for (const job of jobs) {
    config.push(
      `  - job_name: ${JSON.stringify(job.name)}`,
      `    metrics_path: ${JSON.stringify(job.metricsPath || '/metrics')}`,
      `    scrape_interval: ${scrapeInterval}`,
      `    scrape_timeout: ${scrapeInterval}`,
      ...(job.params ? [`    params: ${JSON.stringify(job.params)}`] : []),
      ...(job.scheme ? [`    scheme: ${JSON.stringify(job.scheme)}`] : []),
      ...(job.tls ? [`    tls_config: ${JSON.stringify(job.tls)}`] : []),
      ...(job.authorization ? [`    authorization: ${JSON.stringify(job.authorization)}`] : []),
      ...(job.basicAuth ? [`    basic_auth: ${JSON.stringify(job.basicAuth)}`] : []),
      '    static_configs:',
      `      - targets: ${JSON.stringify(job.targets)}`,
    );
  }
  fs.writeFileSync(path.join(dir, 'prometheus.yml'), `${config.join('\n')}\n`);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const logTail = () => fs.readFileSync(path.join(dir, 'prometheus.log'), 'utf8').slice(-2000);
  let child = null;
  let exited = null;
  let done = null;
  /** Starts prometheus (again: the same port and data) and waits until it is ready. */
  const launch = async () => {
    const log = fs.openSync(path.join(dir, 'prometheus.log'), 'a');
    child = spawn(
      which('prometheus'),
      [
        `--config.file=${path.join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${path.join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--log.level=warn',
        // The remote write receiver: POST /api/v1/write.
        ...(remoteWriteReceiver ? ['--web.enable-remote-write-receiver'] : []),
      ],
      { stdio: ['ignore', log, log] },
    );
    fs.closeSync(log);
    exited = null;
    done = new Promise((resolve) => child.once('exit', (code, signal) => resolve((exited = { code, signal }))));
    await until(async () => {
      if (exited) throw new Error(`prometheus exited (${JSON.stringify(exited)}):\n${logTail()}`);
      try {
        return (await fetch(`${url}/-/ready`)).ok;
      } catch {
        return false; // not listening yet
      }
    }, readyMs, `prometheus on ${url} to be ready`);
  };
  /** Stops prometheus (SIGTERM: it writes its head to disk), keeping its data. */
  const halt = async () => {
    if (child && !exited) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10000);
      await done;
      clearTimeout(timer);
    }
  };
  const stop = async () => {
    await halt();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    await launch();
  } catch (e) {
    await stop();
    throw e;
  }
  /** GETs an API path; returns `data` of a successful answer. */
  const api = async (pathAndQuery) => {
    const response = await fetch(`${url}${pathAndQuery}`);
    const body = await response.json();
    if (body.status !== 'success') throw new Error(`${pathAndQuery}: ${JSON.stringify(body)}`);
    return body.data;
  };
  return {
    url,
    port,
    dir,
    /** An instant query: the result vector (`[{ metric, value: [time, 'text'] }]`). */
    query: async (promql) => (await api(`/api/v1/query?query=${encodeURIComponent(promql)}`)).result,
    /** The active targets, with `labels.job`, `health`, `lastError`, `lastScrape`. */
    targets: async () => (await api('/api/v1/targets?state=active')).activeTargets,
    /** The metric metadata (`[{ metric, type, help, unit }]`) Prometheus read from a job's target. */
    metadata: async (job) => api(`/api/v1/targets/metadata?match_target=${encodeURIComponent(`{job="${job}"}`)}`),
    log: logTail,
    stop,
    /** An outage: stops prometheus, keeping its data and port; `restart()` starts it again. */
    halt,
    restart: launch,
  };
}

/**
 * An InfluxDB 1.x on 127.0.0.1: `await InfluxServer.create()` installs it if needed, writes a
 * config in a new temporary directory (HTTP on a free port, the RPC service on another;
 * reporting, the internal monitor store, subscribers and continuous queries off) and starts
 * influxd. Then `url`, `query(q, db)`, `stop()`, `start()` (same port and data again),
 * `remove()` (stops and deletes the data), `log()`.
 */
class InfluxServer {
  static async create() {
    ensure('influxdb');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'panoptic-influxdb-'));
    const server = new InfluxServer(dir, await freePort(), await freePort());
    try {
      await server.start();
    } catch (e) {
      await server.remove();
      throw e;
    }
    return server;
  }

  constructor(dir, port, rpcPort) {
    this.dir = dir;
    this.port = port;
    this.url = `http://127.0.0.1:${port}`;
    this.child = null;
    this.config = path.join(dir, 'influxdb.conf');
    const d = (name) => JSON.stringify(path.join(dir, name));
    fs.writeFileSync(
      this.config,
      [
        'reporting-enabled = false',
        `bind-address = "127.0.0.1:${rpcPort}"`,
        '[meta]',
        `  dir = ${d('meta')}`,
        '[data]',
        `  dir = ${d('data')}`,
        `  wal-dir = ${d('wal')}`,
        '  query-log-enabled = false',
        '[monitor]',
        '  store-enabled = false',
        '[subscriber]',
        '  enabled = false',
        '[continuous_queries]',
        '  enabled = false',
        '[http]',
        '  enabled = true',
        `  bind-address = "127.0.0.1:${port}"`,
        '  log-enabled = false',
        '[logging]',
        '  level = "warn"',
        '',
      ].join('\n'),
    );
  }

  /** Starts influxd and waits until /ping answers (30 s at most). */
  async start() {
    if (this.child) return;
    const log = fs.openSync(path.join(this.dir, 'influxd.log'), 'a');
    const child = spawn(INFLUXD, ['-config', this.config], { stdio: ['ignore', log, log] });
    fs.closeSync(log);
    this.child = child;
    let exited = null;
    child.once('exit', (code, signal) => {
      exited = { code, signal };
      if (this.child === child) this.child = null;
    });
    try {
      await until(async () => {
        if (exited) throw new Error(`influxd exited (${JSON.stringify(exited)}): ${this.log().slice(-2000)}`);
        return this.ping();
      }, 30000, `influxd on ${this.url} to answer /ping`);
    } catch (e) {
      await this.stop();
      throw e;
    }
  }

  /** Whether /ping answers 204 now. */
  async ping() {
    try {
      const res = await fetch(`${this.url}/ping`, { signal: AbortSignal.timeout(1000) });
      return res.status === 204;
    } catch {
      return false;
    }
  }

  /** Stops influxd (SIGTERM, then SIGKILL after 10 s) and waits for it to exit. */
  async stop() {
    const child = this.child;
    if (!child) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10000);
    await exited;
    clearTimeout(timer);
    this.child = null;
  }

  /** Stops influxd and removes its directory. */
  async remove() {
    await this.stop();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  /** Runs InfluxQL (`db` for the query's database) and returns the parsed JSON answer. */
  async query(q, db) {
    const params = new URLSearchParams({ q, epoch: 'ms' });
    if (db) params.set('db', db);
    const res = await fetch(`${this.url}/query`, { method: 'POST', body: params });
    const body = await res.json();
    if (!res.ok || body.error) throw new Error(`InfluxQL ${q}: ${res.status} ${JSON.stringify(body)}`);
    return body;
  }

  /** The influxd log so far. */
  log() {
    try {
      return fs.readFileSync(path.join(this.dir, 'influxd.log'), 'utf8');
    } catch {
      return '';
    }
  }
}

/** `node scripts/backends.js serve influxdb` (see the top of this file). */
async function serveInflux() {
  const server = await InfluxServer.create();
  let done = false;
  const finish = async () => {
    if (done) return;
    done = true;
    await server.remove();
    process.exit(0);
  };
  process.on('SIGTERM', finish);
  process.stdout.write(`${JSON.stringify({ url: server.url, port: server.port })}\n`);
  let pending = Promise.resolve();
  let buffered = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (chunk) => {
    buffered += chunk;
    let end;
    while ((end = buffered.indexOf('\n')) >= 0) {
      const command = buffered.slice(0, end).trim();
      buffered = buffered.slice(end + 1);
      pending = pending.then(async () => {
        if (command === 'stop') {
          await server.stop();
          process.stdout.write('stopped\n');
        } else if (command === 'start') {
          await server.start();
          process.stdout.write('started\n');
        } else {
          process.stdout.write(`unknown command ${JSON.stringify(command)}\n`);
        }
      });
    }
  });
  process.stdin.on('end', () => pending.then(finish, finish));
}

/**
 * Starts the OTLP/HTTP receiver (scripts/otlp-receiver.py) on 127.0.0.1 and waits for its port.
 * Returns `{ url, requests, answer(command), stop() }`: `url` is its metrics endpoint
 * (`http://127.0.0.1:<port>/v1/metrics`); `requests` fills with each request as decoded by the
 * official definitions (`{ path, contentType, status, request }`, or `error` when it did not
 * decode); `answer({ status, times, retryAfter })` or `answer({ partial, message })` sets how
 * the next requests are answered (resolves once the receiver has it).
 */
async function startOtlpReceiver() {
  ensure('otlp');
  const child = spawn(venvPython(OTLP_VENV), [path.join(__dirname, 'otlp-receiver.py')], { stdio: ['pipe', 'pipe', 'inherit'] });
  const requests = [];
  const waiting = [];
  let port = null;
  let buffered = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk) => {
    buffered += chunk;
    let end;
    while ((end = buffered.indexOf('\n')) >= 0) {
      const line = JSON.parse(buffered.slice(0, end));
      buffered = buffered.slice(end + 1);
      if (line.port !== undefined) port = line.port;
      else if (line.ok) waiting.shift()?.();
      else requests.push(line);
    }
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  await until(() => port !== null || child.exitCode !== null, 60000, 'the OTLP receiver to listen');
  if (port === null) throw new Error(`the OTLP receiver exited (${child.exitCode})`);
  return {
    url: `http://127.0.0.1:${port}/v1/metrics`,
    requests,
    answer(command) {
      return new Promise((resolve) => {
        waiting.push(resolve);
        child.stdin.write(`${JSON.stringify(command)}\n`);
      });
    },
    async stop() {
      child.stdin.end();
      await exited;
    },
  };
}

module.exports = { ensure, startPrometheus, InfluxServer, startOtlpReceiver, until, CHROMIUM };

if (require.main === module) {
  const [first, ...rest] = process.argv.slice(2);
  if (first === 'serve') {
    if (rest.length !== 1 || rest[0] !== 'influxdb') {
      process.stderr.write('usage: node scripts/backends.js serve influxdb\n');
      process.exit(2);
    }
    serveInflux().catch((e) => {
      process.stderr.write(`${e.stack}\n`);
      process.exit(1);
    });
  } else {
    const names = process.argv.slice(2);
    for (const name of names.length > 0 ? names : Object.keys(BACKENDS)) ensure(name);
  }
}
