'use strict';

// trace(name, obj): jstrace's probes. Idle (no tracer subscribed), a call costs one check. The
// first call (or trace.listen()) makes the process attachable: a native thread serves a Unix
// socket in the per-user trace folder (crates/panoptic-core/src/trace/), and hands what tracers
// send to onEvent below through an unreferenced threadsafe function, so neither keeps the process
// alive. Everything a tracer asks for is decided here: which traces it gets (its patterns are
// matched before anything is serialized), and whether its remote code runs (only after an opt-in).

const os = require('os');
const { isMainThread } = require('worker_threads');
const binding = require('../../binding.js');
const { describe } = require('../args');
const { KIND, CLOSED, CODES, Matcher, runtimeDir, errorPayload, errorText } = require('./protocol');
const pkg = require('../../package.json');

const RESERVED = ['timestamp', 'hostname', 'title', 'pid', 'name'];
const hasOwn = Object.prototype.hasOwnProperty;

// Sent by traceSend when a frame could not be queued: 1 dropped (counted natively and reported to
// the tracer), 2 payload too large, 3 connection gone.
const TOO_LARGE = 2;

// `off` is true while no tracer subscribes. It is written only when that changes, never on the
// first call: V8 then treats it as a constant, and an idle trace('x', { id }) compiles to almost
// nothing (its object is not even allocated; BENCHMARKS.md, "Tracing"). Once a tracer has come and
// gone, it is a plain field load, and the object is allocated.
const probes = { off: true };
// null: not tried yet; a string: the socket's path; false: cannot listen here (worker thread,
// platform, folder), tried once.
let listening = null;
let remoteOptIn = false;
let hostname = '';

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
    if (listening === null || typeof name !== 'string' || (obj !== undefined && typeof obj !== 'object')) first(name, obj);
    return;
  }
  if (typeof name !== 'string' || (obj !== undefined && typeof obj !== 'object')) first(name, obj);
  deliver(name, obj);
}

/** Argument errors, and listening at the first call. */
function first(name, obj) {
  if (typeof name !== 'string') throw new TypeError(`name must be a string, got ${describe(name)}`);
  if (obj !== undefined && typeof obj !== 'object') {
    throw new TypeError(`obj must be an object, null or undefined, got ${describe(obj)}`);
  }
  if (listening === null) start();
}

/** Listening on the first trace() call: a failure becomes one warning, never an exception. */
function start() {
  try {
    listen();
  } catch (err) {
    listening = false;
    refresh();
    // A worker thread is not attachable (the main thread owns the process's socket): expected.
    if (err.code !== 'PANOPTIC_TRACE_THREAD') {
      process.emitWarning(`panoptic: this process cannot be traced: ${err.message}`, { code: err.code });
    }
  }
}

/**
 * Makes this process attachable now (instead of at the first trace() call) and returns the
 * socket's path. Throws when it cannot: in a worker thread, on a platform without Unix sockets, or
 * when the trace folder is not safe to use.
 */
function listen() {
  if (typeof listening === 'string') return listening;
  if (!isMainThread) {
    throw coded('trace.listen(): only the main thread of a process can be attachable', 'PANOPTIC_TRACE_THREAD');
  }
  if (typeof binding.traceListen !== 'function' || typeof process.getuid !== 'function') {
    throw coded(`trace.listen(): tracing needs Unix domain sockets, not available on ${process.platform}`, 'PANOPTIC_TRACE_UNSUPPORTED');
  }
  hostname = os.hostname();
  listening = binding.traceListen(runtimeDir(), process.pid, onEvent);
  // Removes the socket at exit (a process killed by a signal leaves it behind: the next process
  // with its pid, or panoptic-trace, removes it).
  process.once('exit', binding.traceShutdown);
  refresh();
  return listening;
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
    connections.set(conn, { conn, local: null, remote: null });
    send(conn, KIND.hello, {
      pid: process.pid,
      hostname,
      title: process.title,
      remote: remoteAllowed(),
      node: process.version,
      panoptic: pkg.version,
    });
  } else if (kind === KIND.subscribe) {
    subscribe(conn, msg);
  } else if (kind === KIND.cleanup) {
    detach(conn).then(() => send(conn, KIND.cleaned, {}));
  }
  // Other kinds are from a newer tracer: ignored.
}

function validPatterns(patterns) {
  return Array.isArray(patterns) && patterns.length <= 10000 &&
    patterns.every((p) => typeof p === 'string' && p !== '');
}

function subscribe(conn, msg) {
  const c = connections.get(conn);
  if (c === undefined) return;
  if (msg === null || typeof msg !== 'object' || !validPatterns(msg.patterns) ||
      !(msg.remote === null || typeof msg.remote === 'string')) {
    protocolError(conn, 'subscribe needs { patterns: [non-empty strings], remote: string or null }');
    return;
  }
  if (c.local !== null || c.remote !== null) {
    protocolError(conn, 'already subscribed');
    return;
  }
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

trace.listen = listen;
trace.allowRemote = allowRemote;

module.exports = { trace };
