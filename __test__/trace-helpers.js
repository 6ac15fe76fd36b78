'use strict';

// Real processes for the tracing tests: traced applications (fixtures/trace-app.js), the real
// panoptic-trace command, and waiting on what they print. Each test gets its own
// XDG_RUNTIME_DIR, so its processes see only each other. Every wait is for a printed line or an
// exit, with a generous deadline: nothing depends on how fast a loaded machine is.

const { spawn } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const readline = require('readline');

const APP = path.join(__dirname, 'fixtures', 'trace-app.js');
const CLI = path.join(__dirname, '..', 'bin', 'panoptic-trace.js');
const WAIT_MS = 30000;

/** A private runtime folder for one test; `script(name, source)` writes a trace script there. */
function runtime(t) {
  const xdg = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'panoptic-trace-test-')));
  t.after(() => fs.rmSync(xdg, { recursive: true, force: true }));
  return {
    xdg,
    folder: path.join(xdg, 'panoptic'),
    env: { ...process.env, XDG_RUNTIME_DIR: xdg },
    script(name, source) {
      const file = path.join(xdg, name);
      fs.writeFileSync(file, source);
      return file;
    },
  };
}

/** A child `node` process whose output lines are kept and can be waited for. */
class Proc {
  constructor(t, args, env) {
    this.child = spawn(process.execPath, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    this.out = { stdout: [], stderr: [] };
    this.waiters = new Set();
    // 'close': the process has exited and its output is all read.
    this.closed = new Promise((resolve) => this.child.on('close', (code, signal) => {
      this.status = { code, signal };
      resolve(this.status);
      this.check();
    }));
    for (const stream of ['stdout', 'stderr']) {
      readline.createInterface({ input: this.child[stream] }).on('line', (line) => {
        this.out[stream].push(line);
        this.check();
      });
    }
    t.after(() => {
      if (this.status === undefined) this.child.kill('SIGKILL');
    });
  }

  get pid() {
    return this.child.pid;
  }

  check() {
    for (const w of this.waiters) w();
  }

  /** All output so far, for failure messages. */
  text() {
    return `--- stdout\n${this.out.stdout.join('\n')}\n--- stderr\n${this.out.stderr.join('\n')}`;
  }

  /**
   * Resolves with `test(lines)` once it is truthy, `lines` being all of `stream`'s lines so far;
   * rejects after `ms`, or when the process ended without it.
   */
  until(stream, test, what, ms = WAIT_MS) {
    return new Promise((resolve, reject) => {
      const done = (fn, v) => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
        fn(v);
      };
      const waiter = () => {
        const v = test(this.out[stream]);
        if (v) done(resolve, v);
        else if (this.status !== undefined) done(reject, new Error(`${what}: the process exited (${JSON.stringify(this.status)}) first\n${this.text()}`));
      };
      const timer = setTimeout(() => done(reject, new Error(`${what}: not within ${ms} ms\n${this.text()}`)), ms);
      this.waiters.add(waiter);
      waiter();
    });
  }

  /** The first line of `stream` matching `re` (as a match array). */
  line(stream, re, ms) {
    return this.until(stream, (lines) => {
      for (const l of lines) {
        const m = re.exec(l);
        if (m) return m;
      }
      return null;
    }, `a ${stream} line matching ${re}`, ms);
  }

  /** Every line of `stream` matching `re`, once there are at least `n`. */
  lines(stream, re, n, ms) {
    return this.until(stream, (lines) => {
      const hits = lines.filter((l) => re.test(l));
      return hits.length >= n ? hits : null;
    }, `${n} ${stream} lines matching ${re}`, ms);
  }
}

/** A traced application; resolves once it is attachable, with its pid (and its workers'). */
async function startApp(t, rt, env = {}) {
  const app = new Proc(t, [APP], { ...rt.env, ...env });
  const m = await app.line('stdout', /^READY (\d+)((?: \d+)*)$/);
  app.workers = m[2].trim() === '' ? [] : m[2].trim().split(' ').map(Number);
  return app;
}

/** Asks the application to stop its own work; resolves with its exit status. */
function stopApp(app) {
  app.child.stdin.end('stop\n');
  return app.closed;
}

/** The CLI; resolves once it watches the folder. */
async function startCli(t, rt, args) {
  const cli = new Proc(t, [CLI, ...args], rt.env);
  await cli.line('stderr', /^panoptic-trace: watching /);
  return cli;
}

/** `pid`'s line of the CLI's "attached to host/title/pid" report. */
function attached(cli, pid) {
  return cli.line('stderr', new RegExp(`^panoptic-trace: attached to [^/]+/[^/]+/${pid}\\b`));
}

module.exports = { runtime, Proc, startApp, stopApp, startCli, attached, APP, CLI };
