'use strict';

// metrix's two configurations. `DEFAULT` records everything and aggregates counters by sum,
// gauges by last value, histograms and timer durations into BucketedHistograms. `DISABLE` drops
// everything (metrix's DISABLE forgot gauges: its recorder recorded them and its aggregator
// aggregated gauges and histograms).

const { BucketedHistogram } = require('./histograms.js');
const m = require('./instruments.js');

// The default aggregation of timers and histograms (metrix's: 1 hour, 1 %, 4 quantiles).
const HISTOGRAM_OPTIONS = { max: 60 * 60 * 1000, error: 0.01, quantiles: [0.5, 0.9, 0.99, 0.999] };

const DEFAULT = {
  recorder: {
    timer: (recorder, name, tags) => m.createTimer(recorder, name, tags),
    counter: (recorder, name, value, tags) => m.createCounter(recorder, name, value, tags),
    histogram: (recorder, name, tags) => m.createHistogram(recorder, name, tags),
    gauge: (recorder, name, value, tags) => m.createGauge(recorder, name, value, tags),
  },
  aggregator: {
    timer(event, histograms, counters, gauges) {
      // metrix skips a timer event without a start (NullTimer's 0), and hands the duration to
      // DEFAULT's histogram handler as read at call time (not the aggregator's own).
      if (event.startTs) {
        event.value = event.stopTs - event.startTs;
        DEFAULT.aggregator.histogram(event, histograms, counters, gauges);
      }
    },
    counter(event, histograms, counters) {
      counters[event.name] = (counters[event.name] || 0) + event.increment;
    },
    histogram(event, histograms) {
      if (!histograms[event.name]) histograms[event.name] = new BucketedHistogram(HISTOGRAM_OPTIONS);
      histograms[event.name].add(event.value);
    },
    gauge(event, histograms, counters, gauges) {
      gauges[event.name] = event.value;
    },
    composites: null,
  },
};

const ignore = () => null;

const DISABLE = {
  recorder: {
    timer: () => m.NullTimer,
    counter: () => m.NullCounter,
    histogram: () => m.NullHistogram,
    gauge: () => m.NullGauge,
  },
  aggregator: {
    timer: ignore,
    counter: ignore,
    histogram: ignore,
    gauge: ignore,
    composites: null,
  },
};

module.exports = { DEFAULT, DISABLE };
