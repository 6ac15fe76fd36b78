'use strict';

// Exposition benchmark (issue 6): the time to expose 100,000 and 1,000,000 series to Prometheus,
// panoptic's `GET /metrics` (written on a native thread) against prom-client on the same series,
// in one run; and what a scrape costs the serving process's JS thread.
//
//   node benchmark/exposition.js [--sizes 100000,1000000] [--rounds 5]
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
const { median, max, fmt } = require('./stats');

function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : process.argv[i + 1];
}

const sizes = option('sizes', '100000,1000000').split(',').map(Number);
const rounds = Number(option('rounds', '5'));
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
    res.on('end', () => process.send({ id, status: res.statusCode, bytes, ms: Number(process.hrtime.bigint() - t) / 1e6 }));
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
    else resolve({ ms: m.ms, bytes: m.bytes });
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

/** Runs `scrape` `rounds` times after a warm-up: { times, bytes } (every answer the same size). */
async function timed(scrape) {
  const { bytes } = await scrape();
  const times = [];
  for (let r = 0; r < rounds; r++) {
    const answer = await scrape();
    if (answer.bytes !== bytes) throw new Error(`answers of ${bytes} and ${answer.bytes} bytes`);
    times.push(answer.ms);
  }
  return { times, bytes };
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
 * JS-thread cost of scrapes, each started 250 ms after a delivery: `rounds` measuring the
 * event-loop utilization, then `rounds` measuring the event-loop delay (apart: the delay monitor's
 * own 1 ms timer would count as JS-thread work).
 */
async function jsCost(p, client, url) {
  const quiet = async () => {
    await delivery(p);
    await new Promise((resolve) => setTimeout(resolve, 250));
  };
  const active = [];
  for (let r = 0; r < rounds; r++) {
    await quiet();
    const before = performance.eventLoopUtilization();
    await client.get(url);
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
  return { activeMs: median(active), maxDelayMs: max(delays) };
}

async function panopticTimes(n, client) {
  const p = new Panopticon({ name: 'exposition', interval: INTERVAL });
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
  console.log('| series | prom-client metrics() ms | prom-client over HTTP ms | panoptic GET /metrics ms | panoptic GET /healthz ms | prom-client / panoptic (metrics(), HTTP) | panoptic JS-thread ms per scrape (/metrics, /healthz) | panoptic max loop delay ms (/metrics, /healthz) | bytes (prom-client, panoptic) |');
  console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  const client = startClient();
  for (const n of sizes) {
    const prom = await promClientTimes(n, client);
    if (global.gc) global.gc();
    const ours = await panopticTimes(n, client);
    const [a, b, c] = [median(prom.inProcess.times), median(prom.served.times), median(ours.scrape.times)];
    console.log(
      `| ${n} | ${fmt(a)} | ${fmt(b)} | ${fmt(c)} | ${fmt(median(ours.control.times))} | ${fmt(a / c)}x, ${fmt(b / c)}x | ` +
        `${fmt(ours.js.activeMs)}, ${fmt(ours.jsControl.activeMs)} | ${fmt(ours.js.maxDelayMs)}, ${fmt(ours.jsControl.maxDelayMs)} | ` +
        `${prom.served.bytes}, ${ours.scrape.bytes} |`,
    );
  }
  client.stop();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
