'use strict';

// The live page (GET / of serve()) in a real headless Chromium (Debian's chromium, installed by
// scripts/backends.js when missing) against a real cluster (cluster.fork(), 2 workers): it loads
// without console errors, draws every series with a line per process and the cluster's, follows
// the deliveries, filters, shows a bad filter's error, and goes on after a worker is killed.
// Every wait is a condition with a deadline.

const test = require('node:test');
const assert = require('node:assert/strict');
const cluster = require('cluster');
const path = require('path');
const { Panopticon } = require('./helpers');
const { launch } = require('../scripts/chromium');

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
];

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
    await Promise.all(workers.map((w) => new Promise((resolve) => {
      if (w.isDead()) return resolve();
      w.once('exit', resolve);
      w.send('stop');
    })));
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

  // No console errors but the bad filter's answer (Chromium logs every 4xx response).
  const unexpected = errors.filter((e) => !(/status of 400/.test(e.text) && /\/api\/select\?/.test(e.url || '')));
  assert.deepEqual(unexpected, []);
});
