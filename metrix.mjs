// `import ... from 'panoptic/metrix'`: metrix 2.0's module (metrix.js) as the default export, and
// each of its members as a named export (Node does not detect them on metrix.js's object literal).
// metrix.d.mts declares the same names.
import metrix from './metrix.js';

export default metrix;
export const {
  config,
  recorder,
  createRecorder,
  createAggregator,
  counter,
  histogram,
  timer,
  gauge,
  Recorder,
  Aggregator,
  BucketedHistogram,
  StreamingHistogram,
  NullCounter,
  NullTimer,
  NullHistogram,
  NullGauge,
} = metrix;
