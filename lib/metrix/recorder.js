'use strict';

// metrix's Recorder: creates instruments through its factories (a config's `recorder` part) and
// is the EventEmitter they emit on. Names of a scope are prefixed `scope + separator` ('/').

const { EventEmitter } = require('events');
const { describe } = require('../args.js');
const { DEFAULT } = require('./config.js');
const { checkName, numberOr } = require('./instruments.js');

const FACTORIES = ['counter', 'timer', 'histogram', 'gauge'];

function checkConfig(config, keys, what) {
  if (typeof config !== 'object' || Array.isArray(config)) {
    throw new TypeError(`${what} must be an object, got ${describe(config)}`);
  }
  for (const key of keys) {
    const value = config[key];
    if (value !== undefined && value !== null && typeof value !== 'function') {
      throw new TypeError(`${what}.${key} must be a function, got ${describe(value)}`);
    }
  }
}

function checkScope(name) {
  if (typeof name !== 'string') throw new TypeError(`scope must be a string, got ${describe(name)}`);
}

class Recorder extends EventEmitter {
  #factories;

  /** `config`: `{ counter, timer, histogram, gauge, separator }`, each optional (DEFAULT.recorder's). */
  constructor(config) {
    super();
    const c = config || DEFAULT.recorder;
    checkConfig(c, FACTORIES, 'config');
    if (c.separator !== undefined && c.separator !== null && typeof c.separator !== 'string') {
      throw new TypeError(`config.separator must be a string, got ${describe(c.separator)}`);
    }
    this.#factories = {};
    for (const key of FACTORIES) this.#factories[key] = c[key] || DEFAULT.recorder[key];
    this.separator = c.separator || '/';
  }

  /** A counter; a non-zero `initialValue` is counted at once (an event). */
  counter(name, initialValue, tags) {
    checkName(name);
    numberOr(initialValue, 0, 'initialValue');
    const counter = this.#factories.counter(this, name, initialValue || 0, tags);
    if (initialValue) counter.incr(initialValue);
    return counter;
  }

  /** A gauge; a non-zero `initialValue` is reported at once (an event). */
  gauge(name, initialValue, tags) {
    checkName(name);
    numberOr(initialValue, 0, 'initialValue');
    const gauge = this.#factories.gauge(this, name, initialValue || 0, tags);
    if (initialValue) gauge.update(initialValue);
    return gauge;
  }

  timer(name, tags) {
    checkName(name);
    return this.#factories.timer(this, name, tags);
  }

  histogram(name, tags) {
    checkName(name);
    return this.#factories.histogram(this, name, tags);
  }

  /** A view whose instruments are named `scope + separator + name`; scopes nest. */
  scope(scope) {
    checkScope(scope);
    const prefix = scope + this.separator;
    // The name is checked before it is prefixed (else `undefined` would become 'scope/undefined').
    const named = (name) => {
      checkName(name);
      return prefix + name;
    };
    // Plain functions over `recorder`, as metrix's scopes are: `new scoped.counter('c')` works
    // there (they do not use `this`), so it works here.
    const recorder = this;
    return {
      scope: function scope(inner) {
        checkScope(inner);
        return recorder.scope(prefix + inner);
      },
      timer: function timer(name, tags) {
        return recorder.timer(named(name), tags);
      },
      counter: function counter(name, initialValue, tags) {
        return recorder.counter(named(name), initialValue, tags);
      },
      gauge: function gauge(name, initialValue, tags) {
        return recorder.gauge(named(name), initialValue, tags);
      },
      histogram: function histogram(name, tags) {
        return recorder.histogram(named(name), tags);
      },
      on: function on(eventName, listener) {
        return recorder.on(eventName, listener);
      },
      separator: this.separator,
    };
  }
}

module.exports = { Recorder, checkConfig };
