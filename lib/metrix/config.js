'use strict';

// metrix's two configurations. `DEFAULT` records everything and aggregates counters by sum,
// gauges by last value, histograms and timer durations into BucketedHistograms. `DISABLE` drops
// everything (metrix's DISABLE forgot gauges: its recorder recorded them and its aggregator
// aggregated gauges and histograms).

const { BucketedHistogram } = require('./histograms.js');
const m = require('./instruments.js');

// The default aggregation of timers and histograms (metrix's: 1 hour, 1 %, 4 quantiles).
const HISTOGRAM_OPTIONS = { max: 60 * 60 * 1000, error: 0.01, quantiles: [0.5, 0.9, 0.99, 0.999] };

// The recorder factories are plain functions, as metrix's are, so that `new` works on them as
// there (an arrow function is not a constructor).
const DEFAULT = {
  recorder: {
    timer: function timer(recorder, name, tags) {
      return m.createTimer(recorder, name, tags);
    },
    counter: function counter(recorder, name, value, tags) {
      return m.createCounter(recorder, name, value, tags);
    },
    histogram: function histogram(recorder, name, tags) {
      return m.createHistogram(recorder, name, tags);
    },
    gauge: function gauge(recorder, name, value, tags) {
      return m.createGauge(recorder, name, value, tags);
    },
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
    timer: function timer() {
      return m.NullTimer;
    },
    counter: function counter() {
      return m.NullCounter;
    },
    histogram: function histogram() {
      return m.NullHistogram;
    },
    gauge: function gauge() {
      return m.NullGauge;
    },
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
