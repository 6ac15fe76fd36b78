'use strict';

// trace(name, obj): jstrace's probes. Idle (no tracer subscribed), a call costs one check.
// Loading this module (require('panoptic')) makes the main thread's process attachable: a native
// thread serves a Unix socket in the per-user trace folder (crates/panoptic-core/src/trace/), and
// hands what tracers send to onEvent below through an unreferenced threadsafe function, so neither
// keeps the process alive. Everything a tracer asks for is decided here: which traces it gets (its
// patterns are matched before anything is serialized), and whether its remote code runs (only
// after an opt-in).

const os = require('os');
const { isMainThread } = require('worker_threads');
const binding = require('../addon');
const { describe } = require('../args');
const { KIND, CLOSED, CODES, Matcher, runtimeDir, errorPayload, errorText } = require('./protocol');
const pkg = require('../../package.json');

const RESERVED = ['timestamp', 'hostname', 'title', 'pid', 'name'];
const hasOwn = Object.prototype.hasOwnProperty;

// Sent by traceSend when a frame could not be queued: 1 dropped (counted natively and reported to
// the tracer), 2 payload too large, 3 connection gone.
const TOO_LARGE = 2;

// A string: the socket's path; null: not listening (worker thread, platform, folder).
let listening = null;
let remoteOptIn = false;
let hostname = '';
// Why this process could not be made attachable, until it is reported: by one warning at the
// first trace() call (not at require: an application that never traces is not told about
// tracing), or by trace.listen() throwing it.
let unreported = null;

// Attachable from require('panoptic') on, rather than from the first trace() call (too late: a
// tracer waiting for the process missed every probe until then) or from the first Panopticon
// instance (an application that only traces, or whose libraries trace through an injected probe,
// never makes one). What it costs at require is small and bounded: a folder check, binding a
// socket (0600, in a private folder), one native thread blocked in accept(), and an unreferenced
// threadsafe function; nothing is read or sent until a tracer of the same user connects, and
// nothing here keeps the process alive. A failure never throws from require.
const idle = attachAtLoad();

// `off` is true while no tracer subscribes. It is created with its first value and then written
// only when that changes: V8 treats a never-rewritten field as a constant, and an idle
// trace('x', { id }) compiles to the argument checks alone (its object is not even allocated;
// BENCHMARKS.md, "Tracing"). Once a tracer has come and gone, it is a plain field load, and the
// object is allocated. It starts false only when a failure to listen is to be reported: the first
// call takes the slow path once for that.
const probes = { off: idle };

/** Listens at load; whether trace() starts idle (false: a failure waits to be reported). */
function attachAtLoad() {
  try {
    listen();
  } catch (err) {
    // A worker thread is not attachable (the main thread owns the process's socket): expected.
    if (err.code !== 'PANOPTIC_TRACE_THREAD') {
      unreported = err;
      return false;
    }
  }
  return true;
}

/** Connections by id: `{ conn, local: Matcher|null, remote: Remote|null }` once subscribed. */
const connections = new Map();
// The subscriptions that want traces, as an array for the slow path's loop.
let active = [];

function coded(message, code) {
  const err = new Error(message);
  err.code = code;
  return err;
}

function refresh() {
  active = [...connections.values()].filter((c) => c.local !== null || c.remote !== null);
  const off = active.length === 0;
  if (probes.off !== off) probes.off = off;
}

/**
 * Emits the probe `name` with the properties of `obj`. Costs one check while no tracer is
 * attached; never throws into the application for what `obj` holds (a tracer is told instead).
 */
function trace(name, obj) {
  if (probes.off) {
    if (typeof name !== 'string' || (obj !== undefined && typeof obj !== 'object')) badArguments(name, obj);
    return;
  }
  if (typeof name !== 'string' || (obj !== undefined && typeof obj !== 'object')) badArguments(name, obj);
  if (unreported !== null) warn();
  deliver(name, obj);
}

function badArguments(name, obj) {
  if (typeof name !== 'string') throw new TypeError(`name must be a string, got ${describe(name)}`);
  throw new TypeError(`obj must be an object, null or undefined, got ${describe(obj)}`);
}

/** Reports, once, why this process is not attachable (never an exception). */
function warn() {
  const err = unreported;
  unreported = null;
  refresh();
  process.emitWarning(`panoptic: this process cannot be traced: ${err.message}`, { code: err.code });
}

/**
 * trace.listen(): the socket's path. The process listens from the moment panoptic is loaded; when
 * that failed, this tries again, and throws when it still cannot: in a worker thread, on a
 * platform without Unix sockets, or when the trace folder is not safe to use.
 */
function listenNow() {
  try {
    return listen();
  } finally {
    // Either way nothing is left for trace() to warn about: it listens, or the caller has the
    // error.
    unreported = null;
    refresh();
  }
}

function listen() {
  if (listening !== null) return listening;
  if (!isMainThread) {
    throw coded('trace.listen(): only the main thread of a process can be attachable', 'PANOPTIC_TRACE_THREAD');
  }
  if (typeof binding.traceListen !== 'function' || typeof process.getuid !== 'function') {
    throw coded(`trace.listen(): tracing needs Unix domain sockets, not available on ${process.platform}`, 'PANOPTIC_TRACE_UNSUPPORTED');
  }
  hostname = os.hostname();
  listening = binding.traceListen(runtimeDir(), process.pid, onEvent);
  // Removes the socket at exit (a process killed by a signal leaves it behind: the next process
  // with its pid, or panoptic-trace, removes it), after the tracers have had a moment to read the
  // last traces.
  process.once('exit', shutdown);
  return listening;
}

/** At exit: what the tracers did not read in time is said on stderr (nothing else can tell). */
function shutdown() {
  const lost = binding.traceShutdown();
  if (lost > 0) {
    process.stderr.write(`panoptic: ${lost} trace messages were not delivered: the tracer did not read them within 1 s of this process's exit\n`);
  }
}

/** Lets tracers run their `exports.remote` in this process (also: PANOPTIC_TRACE_REMOTE=1). */
function allowRemote() {
  remoteOptIn = true;
}

function remoteAllowed() {
  return remoteOptIn || process.env.PANOPTIC_TRACE_REMOTE === '1';
}

// ---- the slow path: a tracer wants some traces ----------------------------------------------

/** The trace object, or throws (a reserved key, a throwing or odd toJSON). */
function build(name, obj) {
  const head = { timestamp: Date.now(), hostname, title: process.title, pid: process.pid, name };
  if (obj === undefined || obj === null) return head;
  const props = typeof obj.toJSON === 'function' ? obj.toJSON() : obj;
  if (props === null || typeof props !== 'object') {
    throw new TypeError(`obj.toJSON() must return an object, got ${describe(props)}`);
  }
  for (const key of RESERVED) {
    if (hasOwn.call(props, key)) {
      const err = new Error(`obj sets the reserved key "${key}" (reserved: ${RESERVED.join(', ')})`);
      err.code = CODES.reserved;
      throw err;
    }
  }
  return { ...head, ...props };
}

function failure(code, name, err) {
  return errorPayload(code, `trace(${JSON.stringify(name)}, obj): ${err instanceof Error ? err.message : describe(err)}`, { name });
}

function deliver(name, obj) {
  const subs = active;
  let wantLocal = false;
  let wantRemote = false;
  const hits = subs.map((s) => {
    const local = s.local !== null && s.local.matches(name);
    const remote = s.remote !== null && s.remote.matches(name);
    wantLocal ||= local;
    wantRemote ||= remote;
    return (local ? 1 : 0) | (remote ? 2 : 0);
  });
  if (!wantLocal && !wantRemote) return;

  let record;
  let json;
  let failed; // an ERROR payload for every subscriber
  let unserializable; // an ERROR payload for local subscribers only
  try {
    record = build(name, obj);
  } catch (err) {
    failed = failure(err.code === CODES.reserved ? CODES.reserved : CODES.object, name, err);
  }
  // Before any remote handler sees (and maybe changes) the record.
  if (failed === undefined && wantLocal) {
    try {
      json = JSON.stringify(record);
    } catch (err) {
      unserializable = failure(CODES.object, name, err);
    }
  }
  subs.forEach((s, i) => {
    const hit = hits[i];
    if (hit === 0) return;
    if (failed !== undefined) {
      binding.traceSend(s.conn, KIND.error, failed);
      return;
    }
    if (hit & 1) {
      if (unserializable !== undefined) {
        binding.traceSend(s.conn, KIND.error, unserializable);
      } else if (binding.traceSend(s.conn, KIND.trace, json) === TOO_LARGE) {
        binding.traceSend(s.conn, KIND.error, failure(CODES.object, name, new Error(`the trace object is ${Buffer.byteLength(json)} bytes of JSON, over the limit of ${KIND.maxPayload}`)));
      }
    }
    // A remote script gets the object itself: it may hold what JSON cannot (sockets, buffers).
    if (hit & 2) s.remote.dispatch(record);
  });
}

// ---- what tracers send ------------------------------------------------------------------------

function send(conn, kind, value) {
  binding.traceSend(conn, kind, JSON.stringify(value));
}

function protocolError(conn, message) {
  binding.traceSend(conn, KIND.error, errorPayload(CODES.protocol, message));
  binding.traceClose(conn);
}

/** Called on the JS thread for every frame and every close. Must never throw (it would crash). */
function onEvent(conn, kind, payload) {
  try {
    handle(conn, kind, payload);
  } catch (err) {
    try {
      binding.traceSend(conn, KIND.error, errorPayload(CODES.protocol, `internal error: ${errorText(err)}`));
    } catch {
      // Nothing left to tell it with; the application comes first.
    }
  }
}

function handle(conn, kind, payload) {
  if (kind === CLOSED) {
    detach(conn);
    return;
  }
  let msg;
  try {
    msg = JSON.parse(payload);
  } catch {
    protocolError(conn, `frame ${kind} does not hold JSON`);
    return;
  }
  if (kind === KIND.hello) {
    hello(conn, msg);
  } else if (kind === KIND.cleanup) {
    detach(conn).then(() => send(conn, KIND.cleaned, {}));
  }
  // Other kinds are from a newer tracer: ignored.
}

function validPatterns(patterns) {
  return Array.isArray(patterns) && patterns.length <= 10000 &&
    patterns.every((p) => typeof p === 'string' && p !== '');
}

/** null or a non-empty string: a process filter of the hello. */
function validFilter(pattern) {
  return pattern === undefined || pattern === null || (typeof pattern === 'string' && pattern !== '');
}

/** Whether this process is one the tracer asked for (`undefined`/`null`: any). */
function selected(pattern, subject) {
  return pattern === undefined || pattern === null || binding.traceMatch([pattern], subject);
}

/**
 * A tracer's hello holds its whole subscription: its patterns, its remote code, and which
 * processes it wants (title and host patterns). So the subscription takes effect in the very
 * callback in which this process learns of the tracer: no probe of the process can fall between
 * "attached" and "subscribed" (with a separate subscription frame, probes fired during that round
 * trip were dropped, and nobody knew). The reply (who this process is) precedes SUBSCRIBED; a
 * process the filters do not select replies and closes, running nothing of the tracer's.
 */
function hello(conn, msg) {
  if (connections.has(conn)) {
    protocolError(conn, 'a second hello');
    return;
  }
  if (msg === null || typeof msg !== 'object' || !validPatterns(msg.patterns) ||
      !(msg.remote === null || typeof msg.remote === 'string') ||
      !validFilter(msg.title) || !validFilter(msg.host)) {
    protocolError(conn, 'hello needs { patterns: [non-empty strings], remote: string or null, title and host: non-empty strings or null }');
    return;
  }
  const title = process.title;
  send(conn, KIND.hello, {
    pid: process.pid,
    hostname,
    title,
    remote: remoteAllowed(),
    node: process.version,
    panoptic: pkg.version,
  });
  if (!selected(msg.title, title) || !selected(msg.host, hostname)) {
    binding.traceClose(conn);
    return;
  }
  const c = { conn, local: null, remote: null };
  connections.set(conn, c);
  subscribe(conn, c, msg);
}

function subscribe(conn, c, msg) {
  c.local = msg.patterns.length > 0 ? new Matcher(msg.patterns) : null;
  let running = false;
  if (msg.remote !== null) {
    if (remoteAllowed()) {
      const { Remote } = require('./remote');
      const script = typeof msg.script === 'string' ? msg.script : 'script';
      const line = Number.isSafeInteger(msg.line) && msg.line > 0 ? msg.line : 1;
      c.remote = new Remote(msg.remote, `panoptic-trace remote (${script})`, line, {
        stdio: (stream, text) => send(conn, KIND.stdio, { stream, text }),
        event: (name, args) => {
          let payload;
          try {
            payload = JSON.stringify({ name, args });
          } catch (err) {
            binding.traceSend(conn, KIND.error, errorPayload(CODES.remote, `traces.emit(${JSON.stringify(name)}): ${err.message}`));
            return;
          }
          binding.traceSend(conn, KIND.event, payload);
        },
        error: (err) => binding.traceSend(conn, KIND.error, errorPayload(CODES.remote, errorText(err))),
      });
      running = true;
    } else {
      binding.traceSend(conn, KIND.error, errorPayload(CODES.refused,
        'this process does not run remote code: start it with PANOPTIC_TRACE_REMOTE=1, or call trace.allowRemote() in it'));
    }
  }
  refresh();
  send(conn, KIND.subscribed, { remote: running });
}

/** Ends connection `conn`'s subscription: runs its remote cleanup. Never rejects. */
async function detach(conn) {
  const c = connections.get(conn);
  if (c === undefined) return;
  connections.delete(conn);
  refresh();
  if (c.remote === null) return;
  try {
    await c.remote.cleanup();
  } catch (err) {
    binding.traceSend(conn, KIND.error, errorPayload(CODES.remote, errorText(err)));
  }
}

trace.listen = listenNow;
trace.allowRemote = allowRemote;

module.exports = { trace };
