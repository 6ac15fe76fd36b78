'use strict';

// Exposition benchmark (issue 6): the time to expose 100,000 and 1,000,000 series to Prometheus,
// panoptic's `GET /metrics` (written on a native thread) against prom-client on the same series,
// in one run; and what a scrape costs the serving process's JS thread.
//
//   node benchmark/exposition.js [--sizes 100000,1000000] [--rounds 5] [--json file]
//   (a part of `npm run bench`; `--help` lists the options)
//
// Method
// - The series: counters with two labels, ten metric names (`http_requests<k>_total`), each with
//   n / 10 (method, status) pairs; the same names, labels and values in both.
// - prom-client: `await registry.metrics()` timed in process (what the issue compares with; it
//   runs on the JS thread, so it is also how long the event loop is blocked), and the same served
//   by a plain `http` handler and fetched over HTTP (like for like with panoptic's scrape).
// - panoptic: one instance records every series (`inc` with tags), delivers, and serves them.
// - Fetching: a client child process, started once, GETs the URL and reads the whole body; the
//   time is the client's, from request to last byte. A GET of panoptic's `/healthz` (a few bytes)
//   gives the fixed cost of a request.
// - JS-thread cost of a scrape: each panoptic scrape starts 250 ms after a delivery (once the
//   delivery's own JS work is over; interval 4000 ms, so the next interval's collection is
//   1.75 s away, after the scrape is done), and the serving process's
//   event-loop utilization (time spent running JS) and event-loop delay
//   (`monitorEventLoopDelay`, 1 ms resolution: the largest delay a timer saw) are taken over the
//   scrape only. The same for the `/healthz` scrapes is the control: what asking the client and
//   waiting for it costs the JS thread. Zero beyond the control is the target.
// - Each size runs `rounds` scrapes of each (after one untimed warm-up each); medians reported.
//   Absolute times depend on the machine's load: compare within one run.

const { fork } = require('child_process');
const http = require('http');
const { monitorEventLoopDelay, performance } = require('perf_hooks');
const promClient = require('prom-client');
const Panopticon = require('..');
const { median, max, fmt, threadCpuMs } = require('./stats');
const { judge, table } = require('./targets');
const { parseOptions, integerAtLeast, writeJson } = require('./options');

const opts = parseOptions(process.argv.slice(2), {
  sizes: { value: [100000, 1000000], help: 'series counts', check: integerAtLeast(1) },
  rounds: { value: 5, help: 'timed scrapes per size and kind', check: integerAtLeast(1) },
  json: { value: null, help: 'also write the results as JSON to this file' },
}, 'node benchmark/exposition.js');
const { sizes, rounds } = opts;
// Issue 6: at most a tenth of prom-client's registry.metrics(), and no JS-thread time per scrape
// beyond the control's (a GET of /healthz). The margin is the measurement's noise: the kernel
// charges the loopback traffic's interrupt work to whichever thread is running, the JS thread
// included (a tenth of a ms to a few, whatever the size; JS work would grow with the size).
const TARGET_RATIO = 10;
const JS_MARGIN_MS = 0.5;
const NAMES = 10;
const INTERVAL = 4000;

/** The labels and value of series `i`: ten names, then (method, status) pairs. */
function series(i) {
  const rest = Math.floor(i / NAMES);
  return { k: i % NAMES, method: `m${rest % 1000}`, status: `s${Math.floor(rest / 1000)}`, value: i * 7 };
}

// The scraping client: a child process started once (so no process is forked per scrape: a fork
// costs the parent's JS thread in proportion to its memory). It GETs each URL it is sent, reads
// the whole body and answers { status, ms, bytes }.
const CLIENT = `
const http = require('http');
process.on('message', ({ id, url }) => {
  const t = process.hrtime.bigint();
  http.get(url, (res) => {
    let bytes = 0;
    res.on('data', (chunk) => { bytes += chunk.length; });
    const timing = /render;dur=([0-9.]+)/.exec(res.headers['server-timing'] || '');
    res.on('end', () => process.send({ id, status: res.statusCode, bytes, ms: Number(process.hrtime.bigint() - t) / 1e6, renderMs: timing ? Number(timing[1]) : null }));
  }).on('error', (e) => process.send({ id, error: String(e) }));
});
process.on('disconnect', () => process.exit(0));
`;

function startClient() {
  const child = fork('-e', [CLIENT], { execArgv: [], stdio: 'inherit' });
  const waiting = new Map();
  let next = 0;
  child.on('message', (m) => {
    const { resolve, reject, url } = waiting.get(m.id);
    waiting.delete(m.id);
    if (m.error || m.status !== 200) reject(new Error(`${url}: ${m.error || `HTTP ${m.status}`}`));
    else resolve({ ms: m.ms, bytes: m.bytes, renderMs: m.renderMs });
  });
  return {
    get: (url) => new Promise((resolve, reject) => {
      const id = next++;
      waiting.set(id, { resolve, reject, url });
      child.send({ id, url });
    }),
    stop: () => child.disconnect(),
  };
}

/**
 * Runs `scrape` `rounds` times after a warm-up: { times, renders, bytes } (every answer the same
 * size; `renders`: the server's own render times, from panoptic's Server-Timing header).
 */
async function timed(scrape) {
  const { bytes } = await scrape();
  const times = [];
  const renders = [];
  for (let r = 0; r < rounds; r++) {
    const answer = await scrape();
    if (answer.bytes !== bytes) throw new Error(`answers of ${bytes} and ${answer.bytes} bytes`);
    times.push(answer.ms);
    if (answer.renderMs !== null && answer.renderMs !== undefined) renders.push(answer.renderMs);
  }
  return { times, renders, bytes };
}

async function promClientTimes(n, client) {
  const registry = new promClient.Registry();
  const counters = [];
  for (let k = 0; k < NAMES; k++) {
    counters.push(new promClient.Counter({ name: `http_requests${k}_total`, help: 'requests', labelNames: ['method', 'status'], registers: [registry] }));
  }
  for (let i = 0; i < n; i++) {
    const s = series(i);
    counters[s.k].inc({ method: s.method, status: s.status }, s.value);
  }
  const inProcess = await timed(async () => {
    const t = performance.now();
    const text = await registry.metrics();
    return { ms: performance.now() - t, bytes: text.length };
  });
  // prom-client's usual scrape handler.
  const server = http.createServer(async (req, res) => {
    res.setHeader('content-type', registry.contentType);
    res.end(await registry.metrics());
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const served = await timed(() => client.get(`http://127.0.0.1:${server.address().port}/metrics`));
  await new Promise((resolve) => server.close(resolve));
  registry.clear();
  return { inProcess, served };
}

/** Resolves with the instance's next 'delivery'. */
const delivery = (p) => new Promise((resolve) => p.once('delivery', resolve));

/**
 * JS-thread cost of scrapes, each started 250 ms after a delivery: `rounds` measuring the main
 * thread's CPU time and its event-loop utilization, then `rounds` measuring the event-loop delay
 * (apart: the delay monitor's own 1 ms timer would count as JS-thread work).
 */
async function jsCost(p, client, url) {
  const quiet = async () => {
    await delivery(p);
    await new Promise((resolve) => setTimeout(resolve, 250));
  };
  const cpu = [];
  const active = [];
  for (let r = 0; r < rounds; r++) {
    await quiet();
    const before = performance.eventLoopUtilization();
    const cpuBefore = threadCpuMs(process.pid);
    await client.get(url);
    cpu.push(threadCpuMs(process.pid) - cpuBefore);
    active.push(performance.eventLoopUtilization(before).active);
  }
  const delays = [];
  for (let r = 0; r < rounds; r++) {
    await quiet();
    const delay = monitorEventLoopDelay({ resolution: 1 });
    delay.enable();
    await client.get(url);
    delay.disable();
    delays.push(delay.max / 1e6);
  }
  return { cpuMs: median(cpu), activeMs: median(active), maxDelayMs: max(delays) };
}

async function panopticTimes(n, client) {
  // Limits raised to the benchmark's own layout (n series over a few names: far more tag sets per
  // name than the default maxTagSets): it measures the exposition of n distinct series, not of
  // the overflow series the limits would make of them.
  const p = new Panopticon({ name: 'exposition', interval: INTERVAL, maxTagSets: n, maxSeries: Math.max(n, 1000000) });
  for (let i = 0; i < n; i++) {
    const s = series(i);
    p.inc(['http'], `requests${s.k}`, s.value, { method: s.method, status: s.status });
  }
  // Recording can span interval boundaries: wait until the served store holds the interval of
  // the last record (its end, /healthz's timeStamp, is after the loop's end).
  const recorded = Date.now();
  const { url } = await p.serve({ port: 0 });
  while ((await (await fetch(`${url}healthz`)).json()).timeStamp < recorded) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const scrape = await timed(() => client.get(`${url}metrics`));
  const control = await timed(() => client.get(`${url}healthz`));
  const js = await jsCost(p, client, `${url}metrics`);
  const jsControl = await jsCost(p, client, `${url}healthz`);
  p.stop();
  return { scrape, control, js, jsControl };
}

async function main() {
  console.log(`Exposition: ${rounds} scrapes per size (medians); counters with 2 labels, ${NAMES} names`);
  console.log('| series | prom-client metrics() ms | panoptic render ms (Server-Timing) | **metrics() / render** | prom-client over HTTP ms | panoptic GET /metrics ms | HTTP / HTTP | panoptic GET /healthz ms | main-thread CPU ms per scrape (/metrics, /healthz) | event-loop active ms (/metrics, /healthz) | max loop delay ms (/metrics, /healthz) | bytes (prom-client, panoptic) |');
  console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  const client = startClient();
  const results = [];
  for (const n of sizes) {
    const prom = await promClientTimes(n, client);
    if (global.gc) global.gc();
    const ours = await panopticTimes(n, client);
    const r = {
      series: n,
      promClientMetricsMs: median(prom.inProcess.times),
      panopticRenderMs: median(ours.scrape.renders),
      promClientHttpMs: median(prom.served.times),
      panopticHttpMs: median(ours.scrape.times),
      panopticHealthzMs: median(ours.control.times),
      jsCpuMs: ours.js.cpuMs,
      jsCpuControlMs: ours.jsControl.cpuMs,
      jsActiveMs: ours.js.activeMs,
      jsActiveControlMs: ours.jsControl.activeMs,
      maxDelayMs: ours.js.maxDelayMs,
      maxDelayControlMs: ours.jsControl.maxDelayMs,
      promClientBytes: prom.served.bytes,
      panopticBytes: ours.scrape.bytes,
    };
    results.push(r);
    console.log(
      `| ${n} | ${fmt(r.promClientMetricsMs)} | ${fmt(r.panopticRenderMs)} | ${fmt(r.promClientMetricsMs / r.panopticRenderMs)}x | ` +
        `${fmt(r.promClientHttpMs)} | ${fmt(r.panopticHttpMs)} | ${fmt(r.promClientHttpMs / r.panopticHttpMs)}x | ${fmt(r.panopticHealthzMs)} | ` +
        `${fmt(r.jsCpuMs)}, ${fmt(r.jsCpuControlMs)} | ${fmt(r.jsActiveMs)}, ${fmt(r.jsActiveControlMs)} | ` +
        `${fmt(r.maxDelayMs)}, ${fmt(r.maxDelayControlMs)} | ${r.promClientBytes}, ${r.panopticBytes} |`,
    );
  }
  client.stop();
  console.log();
  console.log('render: the time panoptic\'s server took to write the exposition (its Server-Timing header), the');
  console.log('counterpart of prom-client\'s metrics(); over HTTP: request to last byte in a client process.');
  console.log('main-thread CPU: the serving process\'s JS thread, from /proc (scheduler time, ns precision).');
  const targets = results.flatMap((r) => {
    const size = r.series.toLocaleString('en-US');
    return [
      judge(`exposition of ${size} series: at most 1/${TARGET_RATIO} of prom-client's registry.metrics() (ratio)`, r.promClientMetricsMs / r.panopticRenderMs, { min: TARGET_RATIO, unit: 'x' }),
      judge(`exposition of ${size} series: main-thread CPU per scrape beyond the /healthz control`, r.jsCpuMs - r.jsCpuControlMs, { max: JS_MARGIN_MS, unit: 'ms' }),
    ];
  });
  console.log();
  console.log(table(targets));
  return { config: { rounds, names: NAMES, interval: INTERVAL, kind: 'counter, 2 labels' }, results, targets };
}

main()
  .then((out) => {
    if (opts.json) {
      writeJson(opts.json, out);
    }
  })
  .catch((e) => {
    console.error(e);
    process.exit(1);
  });
