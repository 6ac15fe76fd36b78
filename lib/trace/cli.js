'use strict';

// panoptic-trace [options] <script>: attaches to every traced process of this user that matches
// the filters (now and as they start), subscribes with the script's local patterns and remote
// code, prints what comes back, and detaches cleanly on SIGINT/SIGTERM.

const fs = require('fs');
const net = require('net');
const path = require('path');
const binding = require('../addon');
const { KIND, CODES, runtimeDir, checkPattern, Matcher, errorText } = require('./protocol');
const { describe } = require('../args');
const pkg = require('../../package.json');

const USAGE = `Usage: panoptic-trace [options] <script>

Attaches to the Node processes of this user that use panoptic's trace() and runs <script> on
what they trace. <script> exports local(traces) (run here) and/or remote(traces) (shipped to
each process, which must opt in: PANOPTIC_TRACE_REMOTE=1 or trace.allowRemote()).

Options:
  -p, --pid <pid>        trace the process <pid> (repeatable; default: every process)
  -t, --title <pattern>  trace processes whose title matches <pattern>
  -H, --host <pattern>   trace processes whose hostname matches <pattern>
  -V, --version          print the version and exit
  -h, --help             print this help and exit

Patterns are case-insensitive and anchored; * matches one or more characters.
Ctrl-C (or SIGTERM) runs the remote cleanup handlers and detaches.`;

/** How long the remote cleanup of every process may take after Ctrl-C. */
const CLEANUP_WAIT_MS = 5000;
/** Rescan of the folder, in case a watch event was missed (fs.watch promises no delivery). */
const RESCAN_MS = 1000;

class UsageError extends Error {}

function parseArgs(argv) {
  const opts = { pids: new Set(), title: null, host: null, script: null, help: false, version: false };
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i];
    let inline = null;
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    if (eq > 0) {
      inline = arg.slice(eq + 1);
      arg = arg.slice(0, eq);
    }
    const value = () => {
      if (inline !== null) return inline;
      if (i + 1 >= argv.length) throw new UsageError(`${arg} needs a value`);
      return argv[++i];
    };
    if (arg === '-h' || arg === '--help') opts.help = true;
    else if (arg === '-V' || arg === '--version') opts.version = true;
    else if (arg === '-p' || arg === '--pid') {
      const v = value();
      const pid = /^[1-9][0-9]*$/.test(v) ? Number(v) : NaN;
      if (!Number.isSafeInteger(pid)) throw new UsageError(`${arg} needs a process id (a positive integer), got ${describe(v)}`);
      opts.pids.add(pid);
    } else if (arg === '-t' || arg === '--title' || arg === '-H' || arg === '--host') {
      const v = value();
      try {
        checkPattern(v, arg);
      } catch (err) {
        throw new UsageError(err.message);
      }
      if (arg === '-t' || arg === '--title') opts.title = v;
      else opts.host = v;
    } else if (arg.startsWith('-') && arg !== '-') {
      throw new UsageError(`unknown option ${arg}`);
    } else if (opts.script === null) {
      opts.script = arg;
    } else {
      throw new UsageError(`one script only, got ${describe(opts.script)} and ${describe(arg)}`);
    }
  }
  if (!opts.help && !opts.version && opts.script === null) throw new UsageError('<script> is required');
  return opts;
}

/** The script's local side: `traces.on(pattern, fn)` handlers, dispatched by name. */
class Local {
  constructor() {
    this.handlers = [];
    this.traces = {
      on: (pattern, fn) => {
        checkPattern(pattern, 'pattern');
        if (typeof fn !== 'function') throw new TypeError(`the handler of '${pattern}' must be a function, got ${describe(fn)}`);
        this.handlers.push({ pattern, matcher: new Matcher([pattern]), fn });
        return this.traces;
      },
    };
  }

  patterns() {
    return [...new Set(this.handlers.map((h) => h.pattern))];
  }

  /** Calls `fn(...args)` of every handler matching `name`; a throwing handler is reported. */
  dispatch(name, args) {
    for (const h of this.handlers) {
      if (!h.matcher.matches(name)) continue;
      try {
        h.fn(...args);
      } catch (err) {
        process.stderr.write(`panoptic-trace: the local handler of '${h.pattern}' threw: ${errorText(err)}\n`);
      }
    }
  }
}

/** One traced process: its connection, who it is, and what it sends. */
class Peer {
  constructor(cli, pid, file) {
    this.cli = cli;
    this.pid = pid;
    this.label = `?/?/${pid}`;
    this.attached = false;
    this.cleaned = null; // resolves when cleanup is done or the connection is gone
    this.decoder = new binding.TraceDecoder();
    this.socket = net.connect(file);
    this.closed = new Promise((resolve) => this.socket.once('close', resolve));
    this.socket.on('connect', () => this.socket.write(cli.hello));
    this.socket.on('data', (chunk) => this.data(chunk));
    this.socket.on('error', (err) => this.cli.connectError(this, file, err));
    this.socket.on('close', () => {
      if (this.attached) process.stderr.write(`panoptic-trace: detached from ${this.label}\n`);
      this.attached = false;
      this.cli.peers.delete(this);
    });
  }

  write(kind, value) {
    if (!this.socket.destroyed) this.socket.write(binding.traceEncode(kind, JSON.stringify(value)));
  }

  data(chunk) {
    let frames;
    try {
      frames = this.decoder.push(chunk);
    } catch (err) {
      process.stderr.write(`panoptic-trace: ${this.label}: ${err.message}; disconnecting\n`);
      this.socket.destroy();
      return;
    }
    for (const f of frames) {
      let msg;
      try {
        msg = JSON.parse(f.payload);
      } catch {
        process.stderr.write(`panoptic-trace: ${this.label}: frame ${f.kind} does not hold JSON; ignored\n`);
        continue;
      }
      this.frame(f.kind, msg);
    }
  }

  frame(kind, msg) {
    const { cli } = this;
    if (kind === KIND.hello) {
      // Who it is. The process checked the title and host filters itself: if they do not
      // select it, it closes the connection now, else SUBSCRIBED follows.
      this.label = `${msg.hostname}/${msg.title}/${msg.pid}`;
    } else if (kind === KIND.subscribed) {
      this.attached = true;
      const remote = cli.remote === null ? '' : msg.remote ? ' (remote code running)' : ' (local only)';
      process.stderr.write(`panoptic-trace: attached to ${this.label}${remote}\n`);
    } else if (kind === KIND.trace) {
      if (msg !== null && typeof msg === 'object') cli.local.dispatch(String(msg.name), [msg]);
    } else if (kind === KIND.event) {
      if (msg !== null && typeof msg === 'object' && Array.isArray(msg.args)) cli.local.dispatch(String(msg.name), msg.args);
    } else if (kind === KIND.stdio) {
      const out = msg.stream === 'stderr' ? process.stderr : process.stdout;
      out.write(this.prefix(String(msg.text)));
    } else if (kind === KIND.error) {
      if (msg.code === CODES.refused) {
        process.stderr.write(`panoptic-trace: ${this.label} refused the remote code: ${msg.message}\n`);
      } else {
        process.stderr.write(this.prefix(`${msg.code}: ${msg.message}\n`));
      }
    } else if (kind === KIND.dropped) {
      process.stderr.write(this.prefix(`${msg.dropped} messages dropped: panoptic-trace did not read fast enough\n`));
    } else if (kind === KIND.cleaned) {
      this.socket.end();
    }
  }

  /** `text` with every line prefixed `host/title/pid >> `. */
  prefix(text) {
    const body = text.endsWith('\n') ? text.slice(0, -1) : text;
    return `${body.split('\n').map((line) => `${this.label} >> ${line}`).join('\n')}\n`;
  }

  /** Asks for the remote cleanup; resolves when done or when the connection is gone. */
  cleanup() {
    if (this.attached) this.write(KIND.cleanup, {});
    else this.socket.destroy();
    return this.closed;
  }
}

class Cli {
  constructor(opts, local, remote, script) {
    this.opts = opts;
    this.local = local;
    this.remote = remote;
    this.dir = runtimeDir();
    // The same hello for every process, holding the whole subscription and the process filters:
    // the process applies it the moment it reads it (lib/trace/index.js, hello()). Encoding it
    // now reports an oversized script early.
    this.hello = binding.traceEncode(KIND.hello, JSON.stringify({
      version: KIND.version,
      client: `panoptic-trace ${pkg.version}`,
      patterns: local.patterns(),
      remote,
      script: path.basename(script),
      line: remote === null ? 1 : lineOf(script, remote),
      title: opts.title,
      host: opts.host,
    }));
    this.peers = new Set();
    // pid -> identity (inode, change time) of the socket we connected to: each socket is tried
    // once; a new process that reuses the pid has a new socket.
    this.seen = new Map();
    this.stopping = false;
  }

  start() {
    binding.tracePrepareDir(this.dir);
    try {
      this.watcher = fs.watch(this.dir, () => this.scan());
      this.watcher.on('error', () => {}); // the rescan covers for it
    } catch {
      this.watcher = null;
    }
    this.rescan = setInterval(() => this.scan(), RESCAN_MS);
    const filters = [
      this.opts.pids.size > 0 ? `pid ${[...this.opts.pids].join(', ')}` : null,
      this.opts.title !== null ? `title '${this.opts.title}'` : null,
      this.opts.host !== null ? `host '${this.opts.host}'` : null,
    ].filter(Boolean);
    process.stderr.write(`panoptic-trace: watching ${this.dir} for ${filters.length ? filters.join(', ') : 'every process'} (Ctrl-C to stop)\n`);
    this.scan();
    for (const pid of this.opts.pids) {
      if (!this.seen.has(pid)) process.stderr.write(`panoptic-trace: waiting for process ${pid} (attachable once it has loaded panoptic)\n`);
    }
  }

  scan() {
    if (this.stopping) return;
    let names;
    try {
      names = fs.readdirSync(this.dir);
    } catch {
      return;
    }
    for (const name of names) {
      const m = /^([1-9][0-9]*)\.sock$/.exec(name);
      if (m === null) continue;
      const pid = Number(m[1]);
      if (pid === process.pid || (this.opts.pids.size > 0 && !this.opts.pids.has(pid))) continue;
      const file = path.join(this.dir, name);
      let stat;
      try {
        stat = fs.lstatSync(file);
      } catch {
        continue;
      }
      const identity = `${stat.ino}:${stat.ctimeMs}`;
      if (!stat.isSocket() || this.seen.get(pid) === identity) continue;
      this.seen.set(pid, identity);
      this.peers.add(new Peer(this, pid, file));
    }
  }

  /** A socket that cannot be reached: the leftover of a dead process is removed. */
  connectError(peer, file, err) {
    if (err.code === 'ECONNREFUSED' || err.code === 'ENOENT') {
      if (err.code === 'ECONNREFUSED' && !alive(peer.pid)) {
        try {
          fs.unlinkSync(file);
        } catch {
          // gone already
        }
      }
      return;
    }
    if (err.code !== 'EPIPE' && err.code !== 'ECONNRESET') {
      process.stderr.write(`panoptic-trace: ${peer.label}: ${err.message}\n`);
    }
  }

  /** Asks every attached process to clean up, waits (bounded), exits. */
  stop() {
    if (this.stopping) {
      process.exit(130); // a second Ctrl-C: do not wait
    }
    this.stopping = true;
    clearInterval(this.rescan);
    if (this.watcher) this.watcher.close();
    const peers = [...this.peers];
    const timer = setTimeout(() => {
      const late = peers.filter((p) => !p.socket.destroyed).map((p) => p.label);
      process.stderr.write(`panoptic-trace: cleanup timed out after ${CLEANUP_WAIT_MS} ms (${late.join(', ')})\n`);
      process.exit(1);
    }, CLEANUP_WAIT_MS);
    Promise.all(peers.map((p) => p.cleanup())).then(() => {
      clearTimeout(timer);
      process.exit(0);
    });
  }
}

/** The line of `script` where `source` starts (1 when it cannot be found): for stack traces. */
function lineOf(script, source) {
  try {
    const text = fs.readFileSync(path.resolve(script), 'utf8');
    const at = text.indexOf(source);
    return at < 0 ? 1 : text.slice(0, at).split('\n').length;
  } catch {
    return 1;
  }
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}

function fail(message, code) {
  process.stderr.write(`panoptic-trace: ${message}\n`);
  process.exit(code);
}

/** Runs the CLI with `argv` (the arguments after the script name). */
function main(argv) {
  let opts;
  try {
    opts = parseArgs(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    fail(`${err.message}\n\n${USAGE}`, 2);
  }
  if (opts.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (opts.version) {
    process.stdout.write(`${pkg.version}\n`);
    return;
  }
  if (typeof binding.tracePrepareDir !== 'function' || typeof process.getuid !== 'function') {
    fail(`tracing needs Unix domain sockets, not available on ${process.platform}`, 1);
  }

  let mod;
  try {
    mod = require(path.resolve(opts.script));
  } catch (err) {
    fail(`cannot load ${opts.script}: ${errorText(err)}`, 2);
  }
  const hasLocal = mod !== null && typeof mod === 'object' && typeof mod.local === 'function';
  const hasRemote = mod !== null && typeof mod === 'object' && typeof mod.remote === 'function';
  if (!hasLocal && !hasRemote) {
    fail(`${opts.script} must export local(traces) and/or remote(traces) functions`, 2);
  }
  const local = new Local();
  if (hasLocal) {
    try {
      mod.local(local.traces);
    } catch (err) {
      fail(`exports.local of ${opts.script} threw: ${errorText(err)}`, 2);
    }
  }

  let cli;
  try {
    cli = new Cli(opts, local, hasRemote ? String(mod.remote) : null, opts.script);
    cli.start();
  } catch (err) {
    fail(err.message, 1);
  }
  process.on('SIGINT', () => cli.stop());
  process.on('SIGTERM', () => cli.stop());
}

module.exports = { main };
