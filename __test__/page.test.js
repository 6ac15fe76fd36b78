'use strict';

// The live page (GET / of serve()) in a real headless Chromium (Debian's chromium, installed by
// scripts/backends.js when missing) against a real cluster (cluster.fork(), 2 workers): it loads
// without console errors, draws every series with a line per process and the cluster's, draws a
// counter's intervals without records as 0 and a sample's as gaps (checked against the frames the
// server sent), names each chart's unit (after scaleFactor) and a histogram's percentile, follows
// the deliveries, filters, shows a bad filter's error, and goes on after a worker is killed; with
// runtime metrics, each process's CPU, memory, heap and event-loop delay in the process list.
// Every wait is a condition with a deadline.

const test = require('node:test');
const assert = require('node:assert/strict');
const cluster = require('cluster');
const path = require('path');
const { stopWorkers, Panopticon } = require('./helpers');
const { launch } = require('../scripts/chromium');
const { buildIfStale } = require('../scripts/build-page');

// The page under test is the one built from page/ now (`npm test` builds it too, a single file
// run would otherwise test an older build).
buildIfStale();

const INTERVAL = 300;
const WAIT = { timeout: 30000 };

const SERIES = [
  'inc http.requests',
  'inc http.status{code="200"}',
  'timedSample http.latency',
  'histogram db.query',
  'set app.version',
  'gauge proc.queue',
  'inc load.ticks',
  'inc jobs.done',
  'sample jobs.size',
];

/** What a series' chart draws: its lines' labels, its data (uPlot's: x, then a line each), its axis' unit, its header. */
function chart(page, key) {
  return page.evaluate((k) => {
    const card = document.querySelector(`.card[data-key='${CSS.escape(k)}']`);
    const u = card.card.chart;
    return { labels: u.series.map((s) => s.label), data: u.data, unit: u.axes[1].label, now: card.querySelector('.now').textContent };
  }, key);
}

/** The frames the server holds (GET /api/history), by the x of the page's charts (seconds). */
async function history(url) {
  const frames = await (await fetch(new URL('api/history', url))).json();
  return new Map(frames.map((f) => [f.timeStamp / 1000, f]));
}

/** The legend labels of a series' chart. */
function legend(page, key) {
  return page.$$eval(`.card[data-key='${key}'] .u-legend th`, (cells) => cells.map((c) => c.textContent.trim()).filter(Boolean));
}

test('the live page draws a real cluster, follows it, filters, and goes on after a worker dies', { timeout: 180000 }, async (t) => {
  const p = new Panopticon({ name: 'page', interval: INTERVAL });
  p.on('newInterval', () => p.inc(['load'], 'ticks', 3));
  cluster.setupPrimary({ exec: path.join(__dirname, 'fixtures', 'page-worker.js'), silent: false });
  const workers = [1, 2].map((n) => cluster.fork({ INTERVAL, WORKER: n }));
  let browser = null;
  t.after(async () => {
    if (browser) await browser.close();
    p.stop();
    await stopWorkers(workers);
  });
  const { url } = await p.serve({ port: 0 });
  browser = await launch();
  const page = await browser.context.newPage();
  await page.setViewportSize({ width: 1400, height: 4000 }); // every card on screen: all are drawn
  const errors = [];
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push({ text: message.text(), url: message.location().url });
  });
  page.on('pageerror', (error) => errors.push({ text: error.stack }));
  await page.goto(url);

  // Every series, drawn from the latest frame; both workers reporting; both workers' requests
  // in the cluster's rate: (10 + 20) per 300 ms at scaleFactor 1 is 0.1 per ms.
  await page.waitForFunction((keys) => {
    const ts = document.body.dataset.timeStamp;
    const card = (key) => document.querySelector(`.card[data-key='${CSS.escape(key)}']`);
    return keys.every((key) => card(key) && card(key).dataset.drawn === ts) &&
      document.querySelector('tr[data-process="1"].alive') && document.querySelector('tr[data-process="2"].alive') &&
      card('inc http.requests').querySelector('.now').textContent === '0.1 /ms';
  }, SERIES, WAIT);
  assert.deepEqual(await legend(page, 'inc http.requests'), ['Time', 'cluster', 'worker 1', 'worker 2']);
  assert.deepEqual(await legend(page, 'inc load.ticks'), ['Time', 'cluster', 'master']);
  assert.deepEqual(await legend(page, 'histogram db.query'),
    ['Time', 'cluster p99', 'cluster p90', 'cluster p50', 'worker 1 p50', 'worker 2 p50']);
  assert.deepEqual(await legend(page, 'timedSample http.latency'),
    ['Time', 'cluster max', 'cluster average', 'cluster min', 'worker 1 average', 'worker 2 average']);
  assert.equal(await page.textContent(".card[data-key='timedSample http.latency'] .type"), 'timedSample');
  assert.equal(await page.textContent(".card[data-key='set app.version'] code"), '"v1"', 'text is shown as text');
  assert.equal(await page.textContent('dd[data-meta="workers alive"]'), '2');

  // Bursts: each worker counts jobs (and samples sizes) in every third interval only. Wait until
  // every line has 3 intervals after a value: at least one of them had no record.
  await page.waitForFunction(() => {
    const data = (key) => document.querySelector(`.card[data-key='${CSS.escape(key)}']`).card.chart.data;
    const threeAfter = (line) => line.findIndex((x) => x > 0) >= 0 && line.findIndex((x) => x > 0) + 3 < line.length;
    return data('inc jobs.done').slice(1).every(threeAfter) && threeAfter(data('sample jobs.size')[2]); // cluster average
  }, null, WAIT);
  const jobs = await chart(page, 'inc jobs.done');
  const sizes = await chart(page, 'sample jobs.size');
  const frames = await history(url);
  assert.deepEqual(jobs.labels, ['Time', 'cluster', 'worker 1', 'worker 2']);
  const views = ['cluster', '1', '2'];
  let zeros = 0;
  jobs.data[0].forEach((x, i) => {
    const frame = frames.get(x);
    assert.ok(frame, `the page's interval ${x} is in the server's history`);
    const series = frame.series.find((s) => s.key === 'inc jobs.done');
    views.forEach((view, n) => {
      const line = jobs.data[n + 1];
      if (i < line.findIndex((v) => v !== null)) return; // before the line's first record
      const value = series && series.values[view];
      const reported = view === 'cluster' || frame.processes.some((p) => p.key === view);
      // A record is drawn as sent; no record from a process that reported is 0; a process
      // that did not report (late) leaves a gap.
      const expected = value ? value.val : reported ? 0 : null;
      assert.equal(line[i], expected, `inc jobs.done, ${view}, interval ${x}`);
      if (!value && reported) zeros += 1;
    });
  });
  assert.ok(zeros > 0, 'some intervals had no record and were drawn as 0');
  assert.equal(sizes.labels[2], 'cluster average');
  let gaps = 0;
  sizes.data[0].forEach((x, i) => {
    const series = frames.get(x).series.find((s) => s.key === 'sample jobs.size');
    const value = series && series.values.cluster;
    assert.equal(sizes.data[2][i], value ? value.average : null, `sample jobs.size, cluster, interval ${x}`);
    if (!value) gaps += 1;
  });
  assert.ok(gaps > 0, 'a sample without values is a gap, not 0');

  // Units: rates per ms and times in ms at scaleFactor 1; a histogram's header names its
  // percentile, a sample's its field.
  assert.equal(jobs.unit, '/ms');
  const query = await chart(page, 'histogram db.query');
  assert.equal(query.unit, 'ms');
  assert.match(query.now, /^p50 \d+(\.\d+)? ms$/);
  const latency = await chart(page, 'timedSample http.latency');
  assert.equal(latency.unit, 'ms');
  assert.match(latency.now, /^average \d+(\.\d+)? ms$/);

  // The next delivery reaches the page (pushed: the page never polls).
  const before = Number(await page.evaluate(() => document.body.dataset.timeStamp));
  await page.waitForFunction((ts) => Number(document.body.dataset.timeStamp) > ts &&
    document.querySelector(".card[data-key='inc http.requests']").dataset.drawn === document.body.dataset.timeStamp, before, WAIT);

  // The filter narrows the charts to what the server selects.
  const cards = () => page.$$eval('.card', (all) => all.map((c) => c.dataset.key).sort());
  await page.fill('#filter', "name LIKE 'http.%'");
  await page.press('#filter', 'Enter');
  await page.waitForFunction(() => document.querySelectorAll('.card').length === 3, null, WAIT);
  assert.deepEqual(await cards(), ['inc http.requests', 'inc http.status{code="200"}', 'timedSample http.latency']);
  assert.equal(await page.isHidden('#filter-error'), true);

  // A bad filter shows the server's error and leaves the charts as they were.
  await page.fill('#filter', 'name = ');
  await page.press('#filter', 'Enter');
  await page.waitForSelector('#filter-error:not([hidden])', WAIT);
  assert.match(await page.textContent('#filter-error'), /at position 7: expected a value in quotes/);
  assert.equal((await cards()).length, 3);

  // An empty filter shows everything again.
  await page.fill('#filter', '');
  await page.press('#filter', 'Enter');
  await page.waitForFunction((n) => document.querySelectorAll('.card').length === n, SERIES.length, WAIT);
  assert.equal(await page.isHidden('#filter-error'), true);

  // A worker is killed: the page marks it gone and goes on with the other one.
  const victim = workers[1];
  const exited = new Promise((resolve) => victim.once('exit', resolve));
  victim.process.kill('SIGKILL');
  await exited;
  const killedAt = Number(await page.evaluate(() => document.body.dataset.timeStamp));
  await page.waitForFunction((ts) => {
    const now = Number(document.body.dataset.timeStamp);
    const requests = document.querySelector(".card[data-key='inc http.requests']");
    return now > ts + 600 && requests.dataset.drawn === document.body.dataset.timeStamp &&
      requests.querySelector('.now').textContent === '0.03333 /ms' && // worker 1's 10 per 300 ms alone
      document.querySelector('tr[data-process="2"].gone') && document.querySelector('tr[data-process="1"].alive') &&
      document.querySelector('dd[data-meta="workers alive"]').firstChild.textContent === '1';
  }, killedAt, WAIT);
  assert.equal(await page.textContent('#status'), 'live');
  const gone = await chart(page, 'inc jobs.done');
  assert.equal(gone.labels[3], 'worker 2');
  assert.equal(gone.data[3].at(-1), null, 'a worker that is gone leaves a gap in a counter, not 0');
  assert.equal(typeof gone.data[2].at(-1), 'number', 'worker 1 goes on');

  // No console errors but the bad filter's answer (Chromium logs every 4xx response).
  const unexpected = errors.filter((e) => !(/status of 400/.test(e.text) && /\/api\/select\?/.test(e.url || '')));
  assert.deepEqual(unexpected, []);
});

test('at scaleFactor 1000 the charts are in seconds; a counter of the master alone is 0 between its records', { timeout: 60000 }, async (t) => {
  const p = new Panopticon({ name: 'seconds', interval: 200, scaleFactor: 1000 });
  let tick = 0;
  p.on('newInterval', () => {
    tick += 1;
    p.histogram(['db'], 'query', [0, 2.5e8]); // an hrtime difference: 0.25 s at scaleFactor 1000
    p.timedSample(['http'], 'latency', [0, 5e8]);
    if (tick % 3 === 0) p.inc(['cron'], 'runs', 2);
  });
  let browser = null;
  t.after(async () => {
    if (browser) await browser.close();
    p.stop();
  });
  const { url } = await p.serve({ port: 0 });
  browser = await launch();
  const page = await browser.context.newPage();
  await page.goto(url);
  await page.waitForFunction(() => {
    const card = document.querySelector(".card[data-key='inc cron.runs']");
    const lines = card && card.card.chart && card.card.chart.data.slice(1);
    return lines && lines.length === 2 && lines.every((line) => line.findIndex((x) => x > 0) >= 0 && line.findIndex((x) => x > 0) + 3 < line.length);
  }, null, WAIT);
  const runs = await chart(page, 'inc cron.runs');
  assert.deepEqual(runs.labels, ['Time', 'cluster', 'master']);
  assert.equal(runs.unit, '/s');
  // 2 runs in 200 ms: 10 per second; once the counter has appeared, 0 where it had no run (the
  // master always reports: no gap).
  for (const line of runs.data.slice(1)) {
    const counted = line.slice(line.findIndex((x) => x !== null));
    assert.ok(counted.includes(0) && counted.includes(10) && counted.every((x) => Number.isFinite(x) && x % 10 === 0), `a line of inc cron.runs: ${JSON.stringify(line)}`);
  }
  const query = await chart(page, 'histogram db.query');
  assert.equal(query.unit, 's');
  assert.equal(query.now, 'p50 0.25 s');
  const latency = await chart(page, 'timedSample http.latency');
  assert.equal(latency.unit, 's');
  assert.equal(latency.now, 'average 0.5 s');
});

test('with runtime metrics, the process list shows each process\'s CPU, memory, heap and event-loop delay and busy share', { timeout: 90000 }, async (t) => {
  const interval = 500;
  const env = { INTERVAL: interval, RESOLUTION: 5 };
  const p = new Panopticon({ name: 'rt', interval, startTime: 0, runtime: { eventLoopResolution: 5 } });
  // Worker 1 blocks its loop 60 ms four times a second (about 2 % of its samples: its p99 is a
  // blocked one); worker 2 does not.
  cluster.setupPrimary({ exec: path.join(__dirname, 'fixtures', 'runtime-worker.js'), silent: false });
  const workers = [cluster.fork({ ...env, BLOCK_MS: 60, EVERY_MS: 250 }), cluster.fork({ ...env, BLOCK_MS: 0 })];
  let browser = null;
  t.after(async () => {
    if (browser) await browser.close();
    p.stop();
    await stopWorkers(workers);
  });
  const { url } = await p.serve({ port: 0 });
  browser = await launch();
  const page = await browser.context.newPage();
  await page.goto(url);
  const ids = workers.map((w) => String(w.id));
  // Every process's row has its runtime cells, and worker 1's delay is drawn from an interval
  // with its blocks (its first intervals may be partial: wait for one that is not).
  await page.waitForFunction((keys) => keys.every((key) => {
    const cell = document.querySelector(`tr[data-process="${key}"] td[data-runtime="loop delay p99"]`);
    return cell && cell.textContent !== '–';
  }) && parseFloat(document.querySelector(`tr[data-process="${keys[1]}"] td[data-runtime="loop delay p99"]`).textContent) >= 30, ['master', ...ids], WAIT);
  // What the page shows is the latest frame's values, process by process.
  const shown = await page.evaluate(() => ({
    timeStamp: Number(document.body.dataset.timeStamp),
    head: [...document.querySelectorAll('#process-head th')].map((th) => th.textContent),
    rows: Object.fromEntries([...document.querySelectorAll('#process-rows tr')].map((tr) => [tr.dataset.process,
      Object.fromEntries([...tr.querySelectorAll('td[data-runtime]')].map((td) => [td.dataset.runtime, td.textContent]))])),
  }));
  assert.deepEqual(shown.head, ['process', 'role', 'pid', 'state', 'CPU', 'memory', 'heap used', 'loop delay p99', 'loop busy']);
  const frame = (await (await fetch(new URL('api/history', url))).json()).find((f) => f.timeStamp === shown.timeStamp);
  assert.ok(frame, 'the page\'s latest frame is in the server\'s history');
  const value = (key, view) => frame.series.find((s) => s.key === key).values[view];
  const number = new Intl.NumberFormat('en', { maximumSignificantDigits: 4 });
  for (const view of ['master', ...ids]) {
    const row = shown.rows[view];
    assert.equal(row['loop delay p99'], `${number.format(value('histogram nodejs.eventloop_lag_milliseconds', view).p99)} ms`, `${view}'s delay`);
    assert.equal(row.CPU, `${number.format(value('inc process.cpu_seconds_total', view).val * 1000)} cores`, `${view}'s CPU`);
    assert.match(row.memory, /^[\d.]+[KMG]B$/);
    assert.match(row['heap used'], /^[\d.]+[KMG]B$/);
    const active = value('inc nodejs.eventloop_active_seconds_total', view).val;
    const idle = value('inc nodejs.eventloop_idle_seconds_total', view).val;
    assert.equal(row['loop busy'], `${number.format(100 * active / (active + idle))} %`);
  }
  assert.ok(value('histogram nodejs.eventloop_lag_milliseconds', ids[0]).p99 >= 30, 'worker 1\'s p99 is one of its blocks');
});
