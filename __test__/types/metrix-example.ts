// Type-checked (never run) by __test__/metrix-types.test.js with `tsc --noEmit`: it must compile
// against metrix.d.ts.
import metrix = require('../../metrix');
import { EventEmitter } from 'events';

const recorder: metrix.Recorder = metrix.createRecorder();
const e: EventEmitter = recorder;
const aggregator: metrix.Aggregator = metrix.createAggregator(recorder, {
  histogram(event, histograms) {
    if (!histograms[event.name]) histograms[event.name] = new metrix.StreamingHistogram({ quantiles: [0.5], seed: 1n });
    (histograms[event.name] as metrix.StreamingHistogram).add(event.value);
  },
  composites: [(counters, histograms) => ['spread', (histograms.size.max ?? 0) - counters.hits]],
});

const hits: metrix.Counter = recorder.counter('hits', 0, { route: '/a' });
hits.incr();
hits.incr(3);
hits.decr(null);
const api: metrix.Scope = recorder.scope('http').scope('api');
const t: metrix.Timer = api.timer('latency_ms', { region: 'eu' });
const id: number = t.start();
t.stop(id, { status: '200' });
api.histogram('size').add(12);
api.gauge('open', 2).update(3);
api.on('timer', (ev) => ev);
recorder.on('counter', (ev) => {
  const n: number = ev.increment;
  const name: string = ev.name;
  return [n, name];
});
recorder.on('timer', (ev) => ev.stopTs - ev.startTs);

const report: metrix.Report = aggregator.report();
const p50: number | undefined = report.histograms.size.p50;
const total: number = report.counters.hits;
aggregator.clear();
aggregator.clearCounters();
aggregator.clearHistograms();
aggregator.clearGauges();

const custom = new metrix.Recorder({
  timer: (rec, name, tags) => (name.endsWith('_ms') ? metrix.timer.createDefault(rec, name, tags) : metrix.NullTimer),
  gauge: (rec, name, value, tags) => metrix.gauge.createPrecise(rec, name, value, tags),
  separator: '.',
});
metrix.gauge.createDefault(custom, 'g', { tag: 'x' }).update(1);
metrix.counter.createPrecise(custom, 'c').incr(1);
metrix.timer.createNoTags(custom, 't').start();
const disabled: metrix.Recorder = metrix.recorder.DISABLE;
const zero: number = metrix.timer.createDisable().start();
metrix.counter.createDisable().incr();
metrix.gauge.createDisable().update(1);
// As in metrix, the module's factories work with new too.
const newTimer: metrix.Timer = new metrix.timer.createDefault(custom, 't', { route: '/' });
newTimer.stop(newTimer.start());
new metrix.timer.createNoTags(custom, 't').start();
new metrix.counter.createDefault(custom, 'c', 0).incr();
new metrix.gauge.createPrecise(custom, 'g').update(2);
const newNull: metrix.Counter = new metrix.counter.createDisable();
const newRecorder: metrix.Recorder = new metrix.createRecorder();
new metrix.createAggregator(newRecorder).report();
new metrix.histogram.createBucketHistogram({ max: 10 }).add(1);
const config: metrix.Config = metrix.config.DEFAULT;
new metrix.Aggregator(disabled, metrix.config.DISABLE.aggregator);

const b = metrix.histogram.createBucketHistogram({ max: 60000, error: 0.02, quantiles: [0.5, 0.99] });
b.add(3);
const snap: metrix.HistogramSnapshot = b.snapshot();
const overflow: number | undefined = snap.overflow;
b.clear();
const s = metrix.histogram.createStreamingHistogram({ seed: 42 });
s.add(1);

export { e, p50, total, zero, config, overflow, newNull };
