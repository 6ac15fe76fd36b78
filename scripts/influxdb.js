'use strict';

// A real InfluxDB 1.x for the tests: installs Debian's `influxdb` and `influxdb-client` when
// influxd is missing (as root, with apt-get: packages do not auto-start here), and runs influxd by
// hand on loopback with its own temporary config and data directory (HTTP on a free port, the RPC
// service on another, reporting and the internal monitor store off).
//
// From JS: `const server = await InfluxServer.create()`, then `server.url`, `server.query(q)`,
// `server.stop()`, `server.start()` (same port and data again), `server.remove()`.
// From a shell or another language's test: `node scripts/influxdb.js install`, or
// `node scripts/influxdb.js serve`: prints one JSON line `{ "url", "port" }` once /ping answers,
// then reads commands from stdin, one per line, each answered by one line: `stop` (-> `stopped`),
// `start` (-> `started`); at the end of stdin (or SIGTERM) it stops influxd and removes its data.

const { execFileSync, spawn } = require('child_process');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');

const INFLUXD = '/usr/bin/influxd';

/** Installs InfluxDB 1.x with apt-get unless influxd is there already. */
function install() {
  if (fs.existsSync(INFLUXD)) return;
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new Error(`${INFLUXD} is missing: run 'apt-get install influxdb influxdb-client' as root`);
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update'], { stdio: 'ignore', env });
  execFileSync('apt-get', ['install', '-y', '--no-install-recommends', 'influxdb', 'influxdb-client'], {
    stdio: 'ignore',
    env,
  });
}

/** A TCP port free on 127.0.0.1 now. */
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

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

class InfluxServer {
  /** Installs if needed, writes a config in a new temporary directory and starts influxd. */
  static async create() {
    install();
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
    const deadline = Date.now() + 30000;
    for (;;) {
      if (exited) throw new Error(`influxd exited (${JSON.stringify(exited)}): ${this.log().slice(-2000)}`);
      if (await this.ping()) return;
      if (Date.now() > deadline) {
        await this.stop();
        throw new Error(`influxd did not answer /ping within 30 s: ${this.log().slice(-2000)}`);
      }
      await sleep(100);
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

async function serve() {
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

if (require.main === module) {
  const command = process.argv[2];
  if (command === 'install') {
    install();
  } else if (command === 'serve') {
    serve().catch((e) => {
      process.stderr.write(`${e.stack}\n`);
      process.exit(1);
    });
  } else {
    process.stderr.write('usage: node scripts/influxdb.js install|serve\n');
    process.exit(2);
  }
}

module.exports = { InfluxServer, install, freePort };
