'use strict';

// serve() under attack (docs/serving.md, "Under attack"): while another process holds (a) 2,000
// slow clients that reconnect as soon as they are closed, or (b) 600 `/events` streams that
// reconnect likewise, a normal client scrapes /metrics on a new connection each time, and at
// least 99% of its scrapes must succeed within 100 ms. The attackers come from their own loopback
// addresses (127.1.x.y, one each) and the scraper from 127.0.0.1, so what is measured is the
// connection policy (budgets, eviction, timeouts), not the limit per client address. Bounded:
// each attack runs for SCRAPES scrapes, loopback only.

const test = require('node:test');
const assert = require('node:assert/strict');
const http = require('http');
const path = require('path');
const { fork } = require('child_process');
const { performance } = require('perf_hooks');
const { next, fresh } = require('./helpers');

const SCRAPES = 200;
const PAUSE_MS = 20;
const WITHIN_MS = 100;
const PATIENCE_MS = 30000;

/** One scrape of /metrics on a new connection from 127.0.0.1: { status, ms, body } or { error, ms }. */
function scrape(port) {
  return new Promise((resolve) => {
    const started = performance.now();
    const options = { host: '127.0.0.1', port, path: '/metrics', localAddress: '127.0.0.1', agent: false, timeout: 2000 };
    const request = http.get(options, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk) => { body += chunk; });
      response.on('end', () => resolve({ status: response.statusCode, ms: performance.now() - started, body }));
      response.on('error', (error) => resolve({ error: error.code || error.message, ms: performance.now() - started }));
    });
    request.on('timeout', () => request.destroy(new Error('timeout')));
    request.on('error', (error) => resolve({ error: error.code || error.message, ms: performance.now() - started }));
  });
}

/** The attacker process, and its last report. */
function attacker(t, port, attack, count) {
  const child = fork(path.join(__dirname, 'fixtures', 'attacker.js'), {
    env: { ...process.env, PORT: String(port), ATTACK: attack, COUNT: String(count) },
  });
  const state = { counts: null, child };
  child.on('message', (counts) => { state.counts = counts; });
  t.after(() => child.kill());
  return state;
}

/** Polls `condition` every 50 ms until it holds (failing after PATIENCE_MS, saying `what`). */
async function until(what, condition) {
  const deadline = Date.now() + PATIENCE_MS;
  while (!condition()) {
    assert.ok(Date.now() < deadline, `timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function quantile(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/** Scrapes SCRAPES times; returns the results and a one-line summary of their distribution. */
async function scrapes(port) {
  const results = [];
  for (let i = 0; i < SCRAPES; i += 1) {
    results.push(await scrape(port));
    await new Promise((resolve) => setTimeout(resolve, PAUSE_MS));
  }
  const ok = results.filter((r) => r.status === 200 && r.body.includes('attack_probe_total') && r.ms <= WITHIN_MS);
  const ms = results.filter((r) => r.status === 200).map((r) => r.ms).sort((a, b) => a - b);
  const failures = results.filter((r) => !ok.includes(r)).map((r) => r.error || `${r.status} in ${r.ms.toFixed(1)} ms`);
  const f = (x) => (x === undefined ? '-' : x.toFixed(1));
  const summary = `${ok.length}/${SCRAPES} within ${WITHIN_MS} ms; answered in ms: p50 ${f(quantile(ms, 0.5))}, ` +
    `p90 ${f(quantile(ms, 0.9))}, p99 ${f(quantile(ms, 0.99))}, max ${f(ms[ms.length - 1])}` +
    (failures.length ? `; failed: ${failures.join(', ')}` : '');
  return { ok: ok.length, summary };
}

/** An instance serving one counter, `attack_probe_total`, on a free port (recorded once: it must not expire). */
async function victim(t) {
  const p = await fresh({ interval: 200, expireAfter: Infinity });
  t.after(() => p.stop());
  const { port } = await p.serve({ port: 0 });
  p.inc(['attack'], 'probe', 1);
  await next(p, 'delivery');
  const stats = () => p.exportStats().servers[0];
  return { port, stats };
}

test('2,000 slow clients that reconnect when closed: >= 99% of scrapes within 100 ms', async (t) => {
  const { port, stats } = await victim(t);
  const slow = attacker(t, port, 'slow', 2000);
  // Under way: every attacker connected once, and the server is evicting them.
  await until('the attack is under way', () => slow.counts && slow.counts.connected >= 2000 && stats().evicted.slow > 0);
  const { ok, summary } = await scrapes(port);
  const during = stats();
  const counts = slow.counts;
  t.diagnostic(`slow clients: ${summary}`);
  t.diagnostic(`attacker: ${JSON.stringify(counts)}; server: ${JSON.stringify({ open: during.openConnections, evicted: during.evicted, rejectedBy: during.rejectedBy })}`);
  assert.ok(ok >= SCRAPES * 0.99, summary);
  // The attack went on all along: the server kept evicting slow clients, and held no more
  // connections than its budget for requests (256) and one scrape.
  assert.ok(during.evicted.slow + during.evicted.idle > 2000, JSON.stringify(during.evicted));
  assert.ok(during.openConnections <= 257, `${during.openConnections} open`);
});

test('600 /events holders that reconnect when closed: >= 99% of scrapes within 100 ms', async (t) => {
  const { port, stats } = await victim(t);
  const holders = attacker(t, port, 'events', 600);
  await until('the attack is under way', () => holders.counts && holders.counts.connected >= 600 && stats().evicted.streams > 0);
  const { ok, summary } = await scrapes(port);
  const during = stats();
  t.diagnostic(`/events holders: ${summary}`);
  t.diagnostic(`attacker: ${JSON.stringify(holders.counts)}; server: ${JSON.stringify({ open: during.openConnections, streams: during.eventClients, evicted: during.evicted, rejectedBy: during.rejectedBy })}`);
  assert.ok(ok >= SCRAPES * 0.99, summary);
  // Streams stayed within their own budget (64) while the holders kept taking them.
  assert.ok(during.eventClients <= 64, `${during.eventClients} streams`);
  assert.ok(during.evicted.streams > 600, JSON.stringify(during.evicted));
});
