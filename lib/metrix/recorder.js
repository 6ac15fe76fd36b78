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
    return {
      scope: (inner) => {
        checkScope(inner);
        return this.scope(prefix + inner);
      },
      timer: (name, tags) => this.timer(named(name), tags),
      counter: (name, initialValue, tags) => this.counter(named(name), initialValue, tags),
      gauge: (name, initialValue, tags) => this.gauge(named(name), initialValue, tags),
      histogram: (name, tags) => this.histogram(named(name), tags),
      on: (eventName, listener) => this.on(eventName, listener),
      separator: this.separator,
    };
  }
}

module.exports = { Recorder, checkConfig };
