'use strict';

// `require('panoptic/metrix')`: the module of metrix 2.0 (npm `metrix`), the same shape and
// behaviour, with histogram state in Rust and metrix's bugs fixed (README, "metrix
// compatibility"). A metrix user switches by changing the require.

const { Aggregator } = require('./lib/metrix/aggregator.js');
const { DEFAULT, DISABLE } = require('./lib/metrix/config.js');
const { BucketedHistogram, StreamingHistogram } = require('./lib/metrix/histograms.js');
const m = require('./lib/metrix/instruments.js');
const { Recorder } = require('./lib/metrix/recorder.js');

module.exports = {
  config: { DEFAULT, DISABLE },
  recorder: { DISABLE: new Recorder(DISABLE.recorder) },
  createRecorder: (config) => new Recorder(config),
  createAggregator: (recorder, config) => new Aggregator(recorder, config),

  // Factories, mostly for configs.
  counter: {
    createDefault: m.createCounter,
    createDisable: () => m.NullCounter,
    createPrecise: m.createPreciseCounter,
  },
  histogram: {
    createBucketHistogram: (opts) => new BucketedHistogram(opts),
    createStreamingHistogram: (opts) => new StreamingHistogram(opts),
  },
  timer: {
    createDefault: m.createTimer,
    createDisable: () => m.NullTimer,
    createNoTags: m.createNoTagTimer,
  },
  gauge: {
    createDefault: m.createGauge,
    createPrecise: m.createPreciseGauge,
    createDisable: () => m.NullGauge,
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
