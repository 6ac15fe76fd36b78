'use strict';

// A tracer's `exports.remote` running inside this process (only when the process opted in; see
// lib/trace/index.js). The source arrives as text and is compiled here with its own `console`
// (output goes to the tracer), a `require` that resolves from the application, and timer
// functions whose callbacks are guarded and which are unreferenced and cleared at cleanup.
//
// What "never crashes the app" covers: every call into remote code made here (the script itself,
// its trace handlers, its timers' callbacks, its cleanup handlers, and the promises any of these
// return) is guarded, and what it throws or rejects with is reported to the tracer. Callbacks the
// script hands to other APIs itself (an event listener on an application object, say) run outside
// panoptic's reach, as any code of the application's own does.

const Module = require('module');
const path = require('path');
const util = require('util');
const vm = require('vm');
const { checkPattern, Matcher } = require('./protocol');
const { describe } = require('../args');

// The names the script sees in place of the globals of the same name.
const SCOPE = ['console', 'require', 'setTimeout', 'setInterval', 'setImmediate', 'clearTimeout', 'clearInterval', 'clearImmediate'];

/** How long cleanup handlers' promises are waited for. */
const CLEANUP_MS = 2000;

/**
 * Turns the source of a function into the function. `fn.toString()` of `function (t) {}`,
 * `(t) => {}` and `async` forms is an expression; that of a method (`remote(t) {}` in an object
 * literal) is not, so it is read as the only member of an object literal. The source starts on
 * the first line of what is compiled, so that with `line` (where it starts in the script file)
 * stack traces name the script's own lines.
 */
function compile(source, filename, line, scope) {
  const factory = (expr) => vm.runInThisContext(`(function (${SCOPE.join(', ')}) { return (${expr}\n); })`, {
    filename,
    lineOffset: line - 1,
  });
  let make;
  let member = false;
  try {
    make = factory(source);
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
    make = factory(`{ ${source} }`);
    member = true;
  }
  let fn = make(...SCOPE.map((name) => scope[name]));
  if (member) fn = Object.values(fn)[0];
  if (typeof fn !== 'function') throw new TypeError(`exports.remote must be a function, got ${describe(fn)}`);
  return fn;
}

/** Where `require` inside remote code resolves from: the application's main module, else its cwd. */
function appRequire() {
  const main = require.main && require.main.filename;
  return Module.createRequire(main || path.join(process.cwd(), '[panoptic-trace]'));
}

class Remote {
  /**
   * Runs `source` (from line `line` of the script `filename`) for one tracer. `out` sends to that
   * tracer: `stdio(stream, text)`, `event(name, args)`, `error(err)`. Errors of the script itself
   * are reported, not thrown.
   */
  constructor(source, filename, line, out) {
    this.out = out;
    this.handlers = [];
    this.cleanups = [];
    this.timeouts = new Set();
    this.immediates = new Set();
    this.matcher = null;
    this.closed = false;
    const traces = {
      on: (pattern, fn) => {
        checkPattern(pattern, 'pattern');
        if (typeof fn !== 'function') throw new TypeError(`the handler of '${pattern}' must be a function, got ${describe(fn)}`);
        if (pattern === 'cleanup') {
          this.cleanups.push(fn);
        } else {
          this.handlers.push({ matcher: new Matcher([pattern]), fn });
          this.matcher = new Matcher(this.handlers.map((h) => h.matcher.patterns[0]));
        }
        return traces;
      },
      emit: (name, ...args) => {
        if (typeof name !== 'string') throw new TypeError(`traces.emit: name must be a string, got ${describe(name)}`);
        if (!this.closed) out.event(name, args);
      },
    };
    try {
      const fn = compile(source, filename, line, this.scope());
      this.call(fn, traces);
    } catch (err) {
      out.error(err);
    }
  }

  /** The values of SCOPE for the script. */
  scope() {
    const { out } = this;
    const print = (stream) => (...args) => {
      if (!this.closed) out.stdio(stream, `${util.format(...args)}\n`);
    };
    // A timer of remote code must not keep the application alive, and dies with the subscription.
    const arm = (set, handle) => {
      if (typeof handle.unref === 'function') handle.unref();
      set.add(handle);
      return handle;
    };
    const guarded = (fn, args, after) => (typeof fn === 'function' ? () => {
      after();
      this.call(fn, ...args);
    } : fn); // not a function: let Node's timer throw its own TypeError
    return {
      console: {
        log: print('stdout'),
        info: print('stdout'),
        debug: print('stdout'),
        error: print('stderr'),
        warn: print('stderr'),
        dir: (obj, options) => {
          if (!this.closed) out.stdio('stdout', `${util.inspect(obj, { customInspect: false, ...options })}\n`);
        },
      },
      require: appRequire(),
      setTimeout: (fn, ms, ...args) => {
        const handle = setTimeout(guarded(fn, args, () => this.timeouts.delete(handle)), ms);
        return arm(this.timeouts, handle);
      },
      setInterval: (fn, ms, ...args) => arm(this.timeouts, setInterval(guarded(fn, args, () => {}), ms)),
      setImmediate: (fn, ...args) => {
        const handle = setImmediate(guarded(fn, args, () => this.immediates.delete(handle)));
        return arm(this.immediates, handle);
      },
      clearTimeout: (handle) => {
        this.timeouts.delete(handle);
        clearTimeout(handle);
      },
      clearInterval: (handle) => {
        this.timeouts.delete(handle);
        clearInterval(handle);
      },
      clearImmediate: (handle) => {
        this.immediates.delete(handle);
        clearImmediate(handle);
      },
    };
  }

  /** Calls remote code; what it throws, or a promise it returns rejects with, is reported. */
  call(fn, ...args) {
    try {
      const r = fn(...args);
      if (r !== null && (typeof r === 'object' || typeof r === 'function') && typeof r.then === 'function') {
        r.then(undefined, (err) => this.out.error(err));
      }
      return r;
    } catch (err) {
      this.out.error(err);
      return undefined;
    }
  }

  /** Whether a handler of this script wants traces named `name`. */
  matches(name) {
    return this.matcher !== null && this.matcher.matches(name);
  }

  /** Hands `record` to every handler whose pattern matches its name. */
  dispatch(record) {
    for (const h of this.handlers) {
      if (h.matcher.matches(record.name)) this.call(h.fn, record);
    }
  }

  /**
   * Runs the cleanup handlers (waiting up to CLEANUP_MS for the promises they return), then
   * clears the script's timers. After this the script receives nothing and sends nothing.
   */
  async cleanup() {
    const pending = this.cleanups.map((fn) => this.call(fn)).filter((r) => r && typeof r.then === 'function');
    if (pending.length > 0) {
      let timer;
      const bound = new Promise((resolve) => {
        timer = setTimeout(resolve, CLEANUP_MS);
        timer.unref();
      });
      await Promise.race([Promise.allSettled(pending), bound]);
      clearTimeout(timer);
    }
    this.closed = true;
    this.handlers = [];
    this.matcher = null;
    for (const t of this.timeouts) clearTimeout(t);
    for (const t of this.immediates) clearImmediate(t);
    this.timeouts.clear();
    this.immediates.clear();
  }
}

module.exports = { Remote };
