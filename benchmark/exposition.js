'use strict';

// Exposition benchmark (issue 6): the time to expose 100,000 and 1,000,000 series to Prometheus,
// panoptic's `GET /metrics` (written on a native thread) against prom-client's
// `registry.metrics()` on the same series, in one run; and what a scrape costs the JS thread.
//
//   node benchmark/exposition.js [--sizes 100000,1000000] [--rounds 5]
//
// Method
// - The series: counters with two labels, ten metric names (`http_requests<k>_total`), each with
//   n / 10 (method, status) pairs; the same names, labels and values in both.
// - prom-client: `await registry.metrics()` timed on the JS thread (it runs there: the time is
//   also how long the event loop is blocked).
// - panoptic: one instance records every series (`inc` with tags), delivers, and serves them;
//   a child process (curl) GETs `/metrics` and reads the whole body: the time is the request's,
//   from the child's side. Meanwhile the JS thread of the serving process only waits for the
//   child: its event-loop utilization (time spent running JS, not idle) and its event-loop delay
//   (`monitorEventLoopDelay`, 1 ms resolution: the largest delay a timer saw) during the scrapes
//   are reported; zero JS work per scrape is the target.
// - Each size runs `rounds` scrapes of each (after one untimed warm-up each); medians reported.
//   Absolute times depend on the machine's load: compare the two in the same run.

const { execFile } = require('child_process');
const { monitorEventLoopDelay, performance } = require('perf_hooks');
const promClient = require('prom-client');
const Panopticon = require('..');
const { median, fmt } = require('./stats');

function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : process.argv[i + 1];
}

const sizes = option('sizes', '100000,1000000').split(',').map(Number);
const rounds = Number(option('rounds', '5'));
const NAMES = 10;

/** The labels of series `i`: ten names, then (method, status) pairs. */
function series(i) {
  const rest = Math.floor(i / NAMES);
  return { k: i % NAMES, method: `m${rest % 1000}`, status: `s${Math.floor(rest / 1000)}`, value: i * 7 };
}

async function promClientTimes(n) {
  const registry = new promClient.Registry();
  const counters = [];
  for (let k = 0; k < NAMES; k++) {
    counters.push(new promClient.Counter({ name: `http_requests${k}_total`, help: 'requests', labelNames: ['method', 'status'], registers: [registry] }));
  }
  for (let i = 0; i < n; i++) {
    const s = series(i);
    counters[s.k].inc({ method: s.method, status: s.status }, s.value);
  }
  const bytes = (await registry.metrics()).length; // warm-up
  const times = [];
  for (let r = 0; r < rounds; r++) {
    const t = performance.now();
    await registry.metrics();
    times.push(performance.now() - t);
  }
  registry.clear();
  return { times, bytes };
}

/** Resolves with the instance's next 'delivery'. */
const delivery = (p) => new Promise((resolve) => p.once('delivery', resolve));

async function panopticTimes(n) {
  const p = new Panopticon({ name: 'exposition', interval: 1000 });
  for (let i = 0; i < n; i++) {
    const s = series(i);
    p.inc(['http'], `requests${s.k}`, s.value, { method: s.method, status: s.status });
  }
  // The interval holding the records, delivered, then one more (the store has it).
  await delivery(p);
  await delivery(p);
  const { url } = await p.serve({ port: 0 });
  // The child scrapes asynchronously: the JS thread is idle (and measured) meanwhile. curl
  // prints the total time (s) and the body size; the body goes to /dev/null.
  const scrape = () => new Promise((resolve, reject) => {
    const args = ['-sS', '-o', '/dev/null', '-w', '%{time_total} %{size_download}', `${url}metrics`];
    execFile('curl', args, (e, stdout) => {
      if (e) return reject(e);
      const [seconds, size] = stdout.split(' ').map(Number);
      resolve({ ms: seconds * 1000, size });
    });
  });
  const { size } = await scrape(); // warm-up
  const times = [];
  const delay = monitorEventLoopDelay({ resolution: 1 });
  const before = performance.eventLoopUtilization();
  delay.enable();
  for (let r = 0; r < rounds; r++) times.push((await scrape()).ms);
  delay.disable();
  const used = performance.eventLoopUtilization(before);
  p.stop();
  return {
    times,
    bytes: size,
    // JS-thread busy time per scrape: event-loop active time over the scrapes (it includes
    // handling the child's exit and this loop: an upper bound of what a scrape cost JS).
    activeMs: used.active / rounds,
    maxDelayMs: delay.max / 1e6,
  };
}

async function main() {
  console.log(`Exposition: ${rounds} scrapes per size (medians); counters with 2 labels, ${NAMES} names`);
  console.log('| series | prom-client registry.metrics() ms | panoptic GET /metrics ms | ratio | panoptic JS-thread ms per scrape | panoptic max loop delay ms | bytes (prom-client / panoptic) |');
  console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const n of sizes) {
    const prom = await promClientTimes(n);
    if (global.gc) global.gc();
    const ours = await panopticTimes(n);
    const a = median(prom.times);
    const b = median(ours.times);
    console.log(`| ${n} | ${fmt(a)} | ${fmt(b)} | ${fmt(a / b)}x | ${fmt(ours.activeMs)} | ${fmt(ours.maxDelayMs)} | ${prom.bytes} / ${ours.bytes} |`);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
