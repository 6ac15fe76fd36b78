'use strict';

// Real back-ends for the tests: installs them (Debian packages, as root) when missing and starts
// them on loopback with a throw-away data directory.
//
//   node scripts/backends.js [prometheus|openmetrics ...]   installs the named back-ends (all
//                                               when none is named); `npm test` runs it first
//
// From tests: `const { startPrometheus } = require('../scripts/backends')`.

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

/** Back-ends by name: how to tell they are installed, and the packages that provide them. */
const BACKENDS = {
  // Prometheus 2.x server and promtool (Debian bookworm: 2.42).
  prometheus: { present: () => which('prometheus') && which('promtool'), packages: ['prometheus'] },
  // The Python client's strict OpenMetrics parser, for Debian's /usr/bin/python3.
  openmetrics: { present: () => pythonHas('prometheus_client.openmetrics.parser'), packages: ['python3-prometheus-client'] },
};

/** Installs the back-end `name` unless it is already there (fast when it is). */
function ensure(name) {
  const backend = BACKENDS[name];
  if (!backend) throw new TypeError(`unknown back-end ${JSON.stringify(name)}: one of ${Object.keys(BACKENDS).join(', ')}`);
  if (backend.present()) return;
  aptInstall(backend.packages);
  if (!backend.present()) throw new Error(`${name} still missing after installing ${backend.packages.join(', ')}`);
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
 * metricsPath = '/metrics', params }` (`targets`: `host:port` strings; `params`: the scrape
 * URL's query, e.g. `{ filter: ['x'] }`); `targets` alone makes one job named `panoptic`.
 * Returns `{ url, port, dir, query(promql), targets(), metadata(job), log(), stop() }`;
 * `stop()` kills the server and removes the directory.
 */
async function startPrometheus({ jobs, targets, scrapeInterval = '1s', readyMs = 60000 } = {}) {
  ensure('prometheus');
  if (!jobs) jobs = [{ name: 'panoptic', targets }];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'panoptic-prometheus-'));
  // JSON is YAML: every value below is written as JSON.
  const config = ['scrape_configs:'];
  for (const job of jobs) {
    config.push(
      `  - job_name: ${JSON.stringify(job.name)}`,
      `    metrics_path: ${JSON.stringify(job.metricsPath || '/metrics')}`,
      `    scrape_interval: ${scrapeInterval}`,
      `    scrape_timeout: ${scrapeInterval}`,
      ...(job.params ? [`    params: ${JSON.stringify(job.params)}`] : []),
      '    static_configs:',
      `      - targets: ${JSON.stringify(job.targets)}`,
    );
  }
  fs.writeFileSync(path.join(dir, 'prometheus.yml'), `${config.join('\n')}\n`);
  const port = await freePort();
  const log = fs.openSync(path.join(dir, 'prometheus.log'), 'w');
  const child = spawn(
    which('prometheus'),
    [
      `--config.file=${path.join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', log, log] },
  );
  fs.closeSync(log);
  let exited = null;
  const done = new Promise((resolve) => child.once('exit', (code, signal) => resolve((exited = { code, signal }))));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (!exited) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10000);
      await done;
      clearTimeout(timer);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const logTail = () => fs.readFileSync(path.join(dir, 'prometheus.log'), 'utf8').slice(-2000);
  try {
    await until(async () => {
      if (exited) throw new Error(`prometheus exited (${JSON.stringify(exited)}):\n${logTail()}`);
      try {
        return (await fetch(`${url}/-/ready`)).ok;
      } catch {
        return false; // not listening yet
      }
    }, readyMs, `prometheus on ${url} to be ready`);
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
  };
}

module.exports = { which, ensure, startPrometheus, freePort, until };

if (require.main === module) {
  const names = process.argv.slice(2);
  for (const name of names.length > 0 ? names : Object.keys(BACKENDS)) ensure(name);
}
