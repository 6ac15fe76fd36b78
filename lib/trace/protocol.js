'use strict';

// What both ends of a trace socket share: where the sockets live, the frame kinds (defined once,
// natively: crates/panoptic-core/src/trace/frame.rs), pattern checks and matching, error codes.

const os = require('os');
const path = require('path');
const binding = require('../addon');
const { describe } = require('../args');

/** Frame kinds and limits: `{ version, maxPayload, hello, subscribe, ... }`. */
const KIND = binding.traceProtocol();

/** The pseudo-kind an `onEvent` callback receives when a connection has closed. */
const CLOSED = 0;

/** Codes of the errors carried in ERROR frames (docs/tracing.md). */
const CODES = {
  reserved: 'PANOPTIC_TRACE_RESERVED',
  object: 'PANOPTIC_TRACE_OBJECT',
  refused: 'PANOPTIC_TRACE_REMOTE_REFUSED',
  remote: 'PANOPTIC_TRACE_REMOTE_ERROR',
  protocol: 'PANOPTIC_TRACE_PROTOCOL',
};

/**
 * The per-user folder of trace sockets: `$XDG_RUNTIME_DIR/panoptic` when that variable holds an
 * absolute path, else `<os.tmpdir()>/panoptic-<uid>`. A process and the CLI must agree on both
 * variables (they do when run by the same user from the same kind of shell).
 */
function runtimeDir() {
  const xdg = process.env.XDG_RUNTIME_DIR;
  if (typeof xdg === 'string' && path.isAbsolute(xdg)) return path.join(xdg, 'panoptic');
  return path.join(os.tmpdir(), `panoptic-${process.getuid()}`);
}

/** Throws unless `value` is a usable pattern; `what` names the argument in the message. */
function checkPattern(value, what) {
  if (typeof value !== 'string') {
    throw new TypeError(`${what} must be a pattern string (like 'request:*'), got ${describe(value)}`);
  }
  if (value === '') throw new RangeError(`${what} must not be empty`);
}

// Distinct names remembered per matcher; past this the memory is cleared (an application that
// puts ids in probe names must not grow the process).
const CACHE_LIMIT = 4096;

/**
 * Matches names against fixed patterns (each anchored, case-insensitive, `*` = one or more
 * characters), remembering the answer per name: the native matcher runs once per distinct name.
 */
class Matcher {
  constructor(patterns) {
    this.patterns = patterns;
    this.cache = new Map();
  }

  matches(name) {
    let hit = this.cache.get(name);
    if (hit === undefined) {
      hit = binding.traceMatch(this.patterns, name);
      if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
      this.cache.set(name, hit);
    }
    return hit;
  }
}

/** An ERROR frame's payload. */
function errorPayload(code, message, extra) {
  return JSON.stringify({ code, message, ...extra });
}

/** `err`'s stack (or message) as text, whatever was thrown. */
function errorText(err) {
  if (err instanceof Error) return err.stack || `${err.name}: ${err.message}`;
  return `a non-error value was thrown: ${describe(err)}`;
}

module.exports = { KIND, CLOSED, CODES, runtimeDir, checkPattern, Matcher, errorPayload, errorText };
