'use strict';

// `require('panoptic/metrix')`: the module of metrix 2.0 (npm `metrix`), the same shape and
// behaviour, with histogram state in Rust and metrix's bugs fixed (README, "metrix
// compatibility"). A metrix user switches by changing the require.

const { Aggregator } = require('./lib/metrix/aggregator.js');
const { DEFAULT, DISABLE } = require('./lib/metrix/config.js');
const { BucketedHistogram, StreamingHistogram } = require('./lib/metrix/histograms.js');
const m = require('./lib/metrix/instruments.js');
const { Recorder } = require('./lib/metrix/recorder.js');

// Every factory is a plain function (no arrow, no method shorthand), as metrix's are: called with
// `new` (`new metrix.timer.createDefault(recorder, 't')`, which works on metrix) it returns the
// same object as without, where an arrow function would throw "is not a constructor".
module.exports = {
  config: { DEFAULT, DISABLE },
  recorder: { DISABLE: new Recorder(DISABLE.recorder) },
  createRecorder: function createRecorder(config) {
    return new Recorder(config);
  },
  createAggregator: function createAggregator(recorder, config) {
    return new Aggregator(recorder, config);
  },

  // Factories, mostly for configs.
  counter: {
    createDefault: m.createCounter,
    createDisable: function createDisable() {
      return m.NullCounter;
    },
    createPrecise: m.createPreciseCounter,
  },
  histogram: {
    createBucketHistogram: function createBucketHistogram(opts) {
      return new BucketedHistogram(opts);
    },
    createStreamingHistogram: function createStreamingHistogram(opts) {
      return new StreamingHistogram(opts);
    },
  },
  timer: {
    createDefault: m.createTimer,
    createDisable: function createDisable() {
      return m.NullTimer;
    },
    createNoTags: m.createNoTagTimer,
  },
  gauge: {
    createDefault: m.createGauge,
    createPrecise: m.createPreciseGauge,
    createDisable: function createDisable() {
      return m.NullGauge;
    },
  },

  // panoptic's additions: the classes (metrix has them only under lib/) and the null objects.
  Recorder,
  Aggregator,
  BucketedHistogram,
  StreamingHistogram,
  NullCounter: m.NullCounter,
  NullTimer: m.NullTimer,
  NullHistogram: m.NullHistogram,
  NullGauge: m.NullGauge,
};
