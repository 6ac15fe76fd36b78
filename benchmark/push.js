'use strict';

// Push benchmark: what one remote write push of 100k series costs, on the JS thread and on the
// native threads that do it. `node benchmark/push.js` runs it alone; `npm run bench` runs it as
// its part "push"; `--target otlp` measures an OTLP/HTTP push instead (`otlp`, protobuf,
// cumulative: the encoding from the store, prost, no compression); `--help` lists options.
//
// Method: a sink (a process of its own: a Node HTTP server that reads each request and answers
// 204, counting bytes) stands in for the receiver, so the receiver's work is nobody's here. Runs
// alternate between a standalone instance holding `--series` counters (persist: every interval
// reports them all) with `remoteWrite` to the sink and the same instance without, each in a fresh
// process that does nothing else. After a warm-up of a few intervals, each run reads from the
// kernel (/proc/self/task/<tid>/schedstat: what a thread ran, not what it waited) the CPU time
// of its JS thread, of the exporter thread (`panoptic-export`: it adds each delivery to the
// store, and with `remoteWrite` encodes it: the /metrics writer, the parse into time series,
// their sort, protobuf, snappy) and of the pusher's thread (`panoptic-remote`: the HTTP
// requests) over `--intervals` intervals. Reported per push: each thread's CPU with and
// without, the differences (the push's own cost), the series and bytes sent.

const http = require('http');
const { fork } = require('child_process');
const { median, fmt, threadCpuMs, threadNamed } = require('./stats');
const { parseOptions, integerAtLeast, oneOf, writeJson } = require('./options');
const { judge, table } = require('./targets');

// The JS thread must not notice the push (as for a /metrics scrape: benchmark/exposition.js).
const JS_MARGIN_MS = 0.5;

const opts = parseOptions(process.argv.slice(2), {
  json: { value: null, help: 'also write the results as JSON to this file' },
  rounds: { value: 3, help: 'runs of each mode, alternating', check: integerAtLeast(1) },
  series: { value: 100000, help: 'counter series pushed each interval', check: integerAtLeast(1) },
  interval: { value: 2000, help: 'the instance\'s interval, ms', check: integerAtLeast(100) },
  intervals: { value: 5, help: 'measured intervals per run', check: integerAtLeast(1) },
  warmup: { value: 3, help: 'intervals before measuring (the first records the series)', check: integerAtLeast(2) },
  mode: { value: null, help: '(internal) run in this process: on, off or sink', check: oneOf(['on', 'off', 'sink']) },
  url: { value: null, help: '(internal) the sink\'s URL' },
  target: { value: 'remoteWrite', help: 'the pusher measured: remoteWrite or otlp', check: oneOf(['remoteWrite', 'otlp']) },
}, 'node benchmark/push.js');

if (opts.mode === 'sink') sink();
else if (opts.mode !== null) instance();
else main();

/** The receiver: reads every request, answers 204, counts requests and bytes (asked over IPC). */
function sink() {
  const counts = { requests: 0, bytes: 0 };
  const server = http.createServer((req, res) => {
    req.on('data', (chunk) => { counts.bytes += chunk.length; });
    req.on('end', () => {
      counts.requests += 1;
      res.writeHead(204).end();
    });
  });
  process.on('message', (m) => {
    if (m === 'counts') {
      process.send({ counts: { ...counts } });
      counts.requests = 0;
      counts.bytes = 0;
    }
  });
  server.listen(0, '127.0.0.1', () => process.send({ url: `http://127.0.0.1:${server.address().port}/api/v1/write` }));
  process.on('disconnect', () => server.close());
}

function instance() {
  const Panopticon = require('..');
  const push = opts.mode === 'on';
  // The exposition benchmark's layout (benchmark/exposition.js): the series over a few names,
  // tagged by method and status, the limits raised to it.
  const names = 10;
  const p = new Panopticon({
    interval: opts.interval,
    persist: true,
    keepAlive: true,
    maxTagSets: opts.series,
    maxSeries: Math.max(opts.series, 1000000),
    // A queue that holds several pushes: nothing is dropped while measuring (checked).
    ...(push ? { [opts.target]: { url: opts.url, maxQueueBytes: 256 << 20, timeout: 60000 } } : {}),
  });
  const record = () => {
    for (let i = 0; i < opts.series; i++) {
      const rest = Math.floor(i / names);
      p.inc(['http'], `requests${i % names}`, 1, { method: `m${rest % 1000}`, status: `s${Math.floor(rest / 1000)}` });
    }
  };
  const threads = () => ({
    js: threadCpuMs(process.pid),
    exporter: threadCpuMs(threadNamed('panoptic-export')),
    // Thread names are cut at 15 bytes: panoptic-remoteWrite is panoptic-remote.
    pusher: push ? threadCpuMs(threadNamed(`panoptic-${opts.target}`.slice(0, 15))) : 0,
  });
  // The series are recorded at the first delivery; from the warm-up's end every delivery pushes
  // them all (remote write: and the exposition's skipped-series gauge; OTLP: a data point each).
  const perPush = opts.target === 'otlp' ? opts.series : opts.series + 1;
  // Each reading is taken half an interval after a delivery, when its push is done and the next
  // delivery is half an interval away, without polling (which would cost the JS thread); the
  // end checks that exactly the measured pushes were sent in between.
  const settled = (then) => setTimeout(() => {
    const s = push ? p.exportStats()[opts.target] : { pushedPoints: 0, queuedBytes: 0, droppedPoints: 0 };
    if (s.queuedBytes !== 0 || s.droppedPoints !== 0) throw new Error(`a push is not done half an interval after its delivery (a slower machine needs a longer --interval): ${JSON.stringify(s)}`);
    then({ ...threads(), pushed: s.pushedPoints });
  }, opts.interval / 2);
  let deliveries = 0;
  let start = null;
  p.on('delivery', () => {
    deliveries += 1;
    const k = deliveries;
    if (k === 1) record();
    if (k === opts.warmup) settled((reading) => { start = reading; });
    if (k === opts.warmup + opts.intervals) {
      settled((end) => {
        p.stop();
        if (push && end.pushed - start.pushed !== opts.intervals * perPush) {
          throw new Error(`pushed ${end.pushed - start.pushed} series while measuring, not ${opts.intervals} x ${perPush} (a slower machine needs a longer --interval or --warmup)`);
        }
        const per = (key) => (end[key] - start[key]) / opts.intervals;
        process.send({ js: per('js'), exporter: per('exporter'), pusher: per('pusher'), seriesPerPush: push ? perPush : 0, pushedTotal: end.pushed });
      });
    }
  });
}

function child(args) {
  return fork(__filename, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
}

function run(mode, url) {
  return new Promise((resolve, reject) => {
    const args = ['--mode', mode, '--url', url, '--target', opts.target, '--series', String(opts.series), '--interval', String(opts.interval), '--intervals', String(opts.intervals), '--warmup', String(opts.warmup)];
    const c = child(args);
    let result = null;
    c.on('message', (m) => { result = m; });
    c.on('exit', (code) => (result ? resolve(result) : reject(new Error(`push bench child (${mode}) exited with ${code}`))));
  });
}

async function main() {
  const receiver = child(['--mode', 'sink']);
  const ask = (what) => new Promise((resolve) => {
    const on = (m) => {
      if (m[what] === undefined) return;
      receiver.off('message', on);
      resolve(m[what]);
    };
    receiver.on('message', on);
    if (what === 'counts') receiver.send('counts');
  });
  const url = await ask('url');
  const on = [];
  const off = [];
  try {
    for (let r = 0; r < opts.rounds; r++) {
      off.push(await run('off', url));
      await ask('counts');
      const result = await run('on', url);
      const counts = await ask('counts');
      // Bytes per push: the bytes per series of everything the run posted, times a push's series.
      result.bytesPerPush = (counts.bytes / result.pushedTotal) * result.seriesPerPush;
      on.push(result);
    }
  } finally {
    receiver.disconnect();
  }
  const m = (runs, k) => median(runs.map((x) => x[k]));
  const cost = { js: m(on, 'js') - m(off, 'js'), exporter: m(on, 'exporter') - m(off, 'exporter'), pusher: m(on, 'pusher') };
  const series = m(on, 'seriesPerPush');
  const otlp = opts.target === 'otlp';
  const what = otlp ? 'OTLP' : 'Remote write';
  const thread = `panoptic-${opts.target}`.slice(0, 15);
  console.log(`${what}: the CPU of one push of ${series.toLocaleString('en-US')} series per thread (${opts.interval} ms interval, ${opts.intervals} intervals per run, median of ${opts.rounds} runs each)\n`);
  console.log(`| thread | with ${opts.target}, ms per interval | without | the push |`);
  console.log('| --- | ---: | ---: | ---: |');
  console.log(`| JS | ${fmt(m(on, 'js'), 3)} | ${fmt(m(off, 'js'), 3)} | ${fmt(cost.js, 3)} |`);
  console.log(`| panoptic-export (encode) | ${fmt(m(on, 'exporter'), 3)} | ${fmt(m(off, 'exporter'), 3)} | ${fmt(cost.exporter, 3)} |`);
  console.log(`| ${thread} (send) | ${fmt(cost.pusher, 3)} | - | ${fmt(cost.pusher, 3)} |`);
  const bytes = m(on, 'bytesPerPush');
  console.log(`\n${fmt(bytes / 1024, 0)} KiB of ${otlp ? '' : 'snappy '}protobuf per push (${fmt(bytes / series, 1)} B per series)`);
  const targets = [judge(`${otlp ? 'OTLP' : 'remote write'} of ${series.toLocaleString('en-US')} series: the JS thread's CPU per push`, cost.js, { max: JS_MARGIN_MS, unit: 'ms' })];
  console.log(`\n${table(targets)}`);
  if (opts.json) writeJson(opts.json, { part: 'push', target: opts.target, series, interval: opts.interval, cost, bytesPerPush: bytes, on, off, targets });
}
