'use strict';

// metrix's Aggregator: listens to a Recorder's events and keeps counters, gauges and histograms
// (the handlers of a config's `aggregator` part decide how); `report()` reads them.

const { describe } = require('../args.js');
const { DEFAULT } = require('./config.js');
const { checkConfig } = require('./recorder.js');

const HANDLERS = ['timer', 'counter', 'histogram', 'gauge'];

// The handlers index these by metric name: no prototype, so a metric named "constructor" or
// "__proto__" is a metric like any other (in metrix `counters.constructor += 1` made a string).
const table = () => Object.create(null);

/** A plain object with the entries of a table (spread defines keys, so "__proto__" stays a key). */
const plain = (t) => ({ ...t });

class Aggregator {
  #counters = table();
  #gauges = table();
  #histograms = table();
  #composites;

  /** `config`: `{ counter, timer, histogram, gauge, composites }`, each optional (DEFAULT.aggregator's). */
  constructor(recorder, config) {
    if (recorder === null || typeof recorder !== 'object' || typeof recorder.on !== 'function') {
      throw new TypeError(`recorder must be a Recorder or a scope of one, got ${describe(recorder)}`);
    }
    const c = config || DEFAULT.aggregator;
    checkConfig(c, HANDLERS, 'config');
    const composites = c.composites;
    if (composites !== undefined && composites !== null) {
      if (!Array.isArray(composites)) {
        throw new TypeError(`config.composites must be an array of functions, got ${describe(composites)}`);
      }
      composites.forEach((fn, i) => {
        if (typeof fn !== 'function') throw new TypeError(`config.composites[${i}] must be a function, got ${describe(fn)}`);
      });
      this.#composites = [...composites];
    } else {
      this.#composites = [];
    }
    for (const kind of HANDLERS) {
      const handler = c[kind] || DEFAULT.aggregator[kind];
      // The tables are read at each event: clear*() replaces them.
      recorder.on(kind, (event) => handler(event, this.#histograms, this.#counters, this.#gauges));
    }
  }

  /**
   * `{ counters, gauges, histograms }`: copies (later events do not change a report), each
   * histogram as its snapshot. Each composite `fn(counters, histograms)` returns
   * `[name, value, ...]` pairs that are added to this report's counters.
   */
  report() {
    const counters = plain(this.#counters);
    const histograms = table();
    for (const name of Object.keys(this.#histograms)) histograms[name] = this.#histograms[name].snapshot();
    const report = { counters, gauges: plain(this.#gauges), histograms: plain(histograms) };
    this.#composites.forEach((fn, i) => {
      const pairs = fn(report.counters, report.histograms);
      if (pairs === undefined || pairs === null || pairs === false) return;
      if (!Array.isArray(pairs)) {
        throw new TypeError(`config.composites[${i}] must return an array [name, value, ...], got ${describe(pairs)}`);
      }
      for (let j = 0; j < pairs.length; j += 2) {
        Object.defineProperty(counters, pairs[j], { value: pairs[j + 1], writable: true, enumerable: true, configurable: true });
      }
    });
    return report;
  }

  /** Forgets counters and histograms (gauges stay). */
  clear() {
    this.#counters = table();
    this.#histograms = table();
  }

  clearCounters() {
    this.#counters = table();
  }

  clearHistograms() {
    this.#histograms = table();
  }

  clearGauges() {
    this.#gauges = table();
  }
}

module.exports = { Aggregator };
