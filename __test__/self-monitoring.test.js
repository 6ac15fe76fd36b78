'use strict';

// panoptic's own metrics (docs/self-monitoring.md) from a real two-worker cluster's serve(): the
// series each engine holds reach the master per process and equal what was recorded, the registry
// counts the distinct series, the backlog and the HTTP server's counters are there and sane,
// promtool accepts the exposition, exportStats().self and /api/self agree, skipped intervals are
// counted, and selfMetrics: false leaves them out.

const test = require('node:test');
const assert = require('node:assert/strict');
const cluster = require('cluster');
const path = require('path');
const { spawnSync } = require('child_process');
const { stopWorkers, Panopticon } = require('./helpers');
const { ensure } = require('../scripts/backends');

/** The samples of `name` in a Prometheus text exposition: [{ labels: 'a="b"', value }]. */
function samples(text, name) {
  const out = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m && m[1] === name) out.push({ labels: m[2] ?? '', value: Number(m[3]) });
  }
  return out;
}

async function text(url, accept = 'text/plain;version=0.0.4') {
  const response = await fetch(url, { headers: { accept } });
  assert.equal(response.status, 200, url);
  return response.text();
}

test('a cluster reports its own series, memory, backlog and connections; promtool accepts them', { timeout: 120000 }, async (t) => {
  const interval = 200;
  const start = Date.now();
  const p = new Panopticon({ name: 'selfmon', interval, startTime: start });
  const counts = [7, 30];
  cluster.setupPrimary({ exec: path.join(__dirname, 'fixtures', 'selfmon-worker.js'), silent: false });
  const workers = counts.map((series, index) => cluster.fork({ SERIES: series, WORKER_INDEX: index, INTERVAL: interval, START: start }));
  t.after(async () => {
    p.stop();
    await stopWorkers(workers);
  });
  await Promise.all(workers.map((w) => new Promise((resolve) => w.on('message', (m) => m && m.recorded && resolve()))));
  p.inc(['shared'], 'hits');
  p.inc(['master'], 'jobs');
  const served = await p.serve({ port: 0 });

  // Each engine's series: its own counters and the shared one (the master's two).
  const expected = { master: 2, [workers[0].id]: counts[0] + 1, [workers[1].id]: counts[1] + 1 };
  const deadline = Date.now() + 20000;
  let self;
  for (;;) {
    const response = await fetch(`${served.url}api/self`);
    assert.equal(response.status, 200);
    self = await response.json();
    const engines = self.panoptic_engine_series?.samples ?? [];
    const seen = Object.fromEntries(engines.map((s) => [s.labels.worker, s.value]));
    if (Object.keys(expected).every((w) => seen[w] === expected[w])) break;
    assert.ok(Date.now() < deadline, `engine series never reached ${JSON.stringify(expected)}: ${JSON.stringify(seen)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  // The registry names every distinct series once: each worker's own, the shared one, the master's.
  assert.equal(self.panoptic_registry_series.samples[0].value, counts[0] + counts[1] + 2);
  assert.equal(self.panoptic_registry_series.type, 'gauge');

  const exposition = await text(`${served.url}metrics`);
  const series = samples(exposition, 'panoptic_engine_series');
  assert.equal(series.length, 3, exposition);
  const total = series.reduce((sum, s) => sum + s.value, 0);
  assert.equal(total, 2 + counts[0] + 1 + counts[1] + 1, 'the series recorded, per process');
  for (const [worker, value] of Object.entries(expected)) {
    assert.deepEqual(samples(exposition, 'panoptic_engine_series').find((s) => s.labels === `worker="${worker}"`)?.value, value);
  }
  // Memory: at least the batch buffer each; the worker with more series holds more.
  const bytes = Object.fromEntries(samples(exposition, 'panoptic_engine_bytes').map((s) => [s.labels, s.value]));
  for (const value of Object.values(bytes)) assert.ok(value >= 65536 && value < 4e6, JSON.stringify(bytes));
  assert.ok(bytes[`worker="${workers[1].id}"`] > bytes[`worker="${workers[0].id}"`], JSON.stringify(bytes));
  // The intake keeps up: a backlog, never negative; its bytes are 0 when no message waits.
  const [backlog] = samples(exposition, 'panoptic_intake_backlog_messages');
  const [backlogBytes] = samples(exposition, 'panoptic_intake_backlog_bytes');
  assert.ok(backlog.value >= 0 && backlogBytes.value >= 0);
  assert.ok(backlog.value > 0 || backlogBytes.value === 0);
  assert.ok(samples(exposition, 'panoptic_deliveries_total')[0].value >= 1);
  assert.equal(samples(exposition, 'panoptic_decode_errors_total')[0].value, 0);
  // Connections: this scrape's is open; every fetch above was one request.
  const server = `server="127.0.0.1:${served.port}"`;
  const open = samples(exposition, 'panoptic_http_open_connections');
  assert.deepEqual(open.map((s) => s.labels), [server]);
  assert.ok(open[0].value >= 1);
  const requests = samples(exposition, 'panoptic_http_requests_total')[0].value;
  assert.ok(requests >= 2, String(requests));
  assert.ok(samples(exposition, 'panoptic_http_connections_total')[0].value >= 1);
  assert.equal(samples(exposition, 'panoptic_http_rejected_connections_total')[0].value, 0);
  assert.match(exposition, /^# HELP panoptic_http_requests_total .+\n# TYPE panoptic_http_requests_total counter$/m);
  assert.match(exposition, /^# TYPE panoptic_engine_bytes gauge$/m);
  // The next scrape counts this one.
  const again = samples(await text(`${served.url}metrics`), 'panoptic_http_requests_total')[0].value;
  assert.ok(again > requests, `${again} > ${requests}`);

  // OpenMetrics: counter families without _total, a UNIT line for bytes, # EOF last.
  const om = await text(`${served.url}metrics`, 'application/openmetrics-text; version=1.0.0');
  assert.match(om, /^# TYPE panoptic_deliveries counter\n# HELP panoptic_deliveries .+\npanoptic_deliveries_total \d+$/m);
  assert.match(om, /^# TYPE panoptic_engine_bytes gauge\n# UNIT panoptic_engine_bytes bytes$/m);
  assert.match(om, /# EOF\n$/);

  // promtool: the whole exposition, application series and ours, is valid and lint-clean.
  ensure('prometheus');
  const checked = spawnSync('promtool', ['check', 'metrics'], { input: exposition, encoding: 'utf8' });
  assert.equal(checked.status, 0, `promtool: ${checked.stdout}${checked.stderr}`);

  // exportStats().self: the same families as /api/self.
  const stats = p.exportStats();
  const names = Object.keys(self).sort();
  assert.deepEqual(Object.keys(stats.self).sort(), names);
  for (const name of names) {
    const family = stats.self[name];
    assert.ok(family.type === 'counter' || family.type === 'gauge', name);
    assert.equal(family.unit, name.endsWith('_bytes') ? 'bytes' : null, name);
    assert.equal(typeof family.help, 'string');
    for (const s of family.samples) {
      assert.equal(typeof s.value, 'number');
      assert.equal(Object.getPrototypeOf(s.labels), Object.prototype);
    }
  }
  assert.deepEqual(stats.self.panoptic_engine_series.samples.map((s) => s.labels.worker).sort(), Object.keys(expected).sort());
  assert.ok(names.every((n) => n.startsWith('panoptic_') && !n.endsWith('_total')), names.join());
});

test('serve({ selfMetrics: false }) leaves them out; a prefix goes before them; a blocked event loop counts skipped intervals; a wrong type is a TypeError', async (t) => {
  const p = new Panopticon({ interval: 100 });
  t.after(() => p.stop());
  p.inc(['http'], 'requests');
  const quiet = await p.serve({ port: 0, selfMetrics: false });
  const prefixed = await p.serve({ port: 0, prefix: 'app_' });
  // Until the served store holds a delivery (the exports add it on their own thread).
  const deadline = Date.now() + 10000;
  while (JSON.parse(await text(`${quiet.url}healthz`)).deliveries < 1) {
    assert.ok(Date.now() < deadline, 'no delivery reached the store');
    await new Promise((resolve) => p.once('delivery', resolve));
  }
  const none = await text(`${quiet.url}metrics`);
  assert.doesNotMatch(none, /panoptic_(engine|http|deliveries|intake)/);
  assert.match(none, /^panoptic_export_skipped_series 0$/m, 'the skipped gauge stays');
  assert.equal((await fetch(`${quiet.url}api/self`)).status, 404);
  const withPrefix = await text(`${prefixed.url}metrics`);
  assert.match(withPrefix, /^app_panoptic_engine_series\{worker="master"\} 1$/m);
  // Both servers are sources: each has its own connection counters, by address.
  assert.equal(samples(withPrefix, 'app_panoptic_http_requests_total').length, 2);
  // An event loop blocked for 6 intervals closes none of them: they get no delivery, and are
  // counted (at least 4 of the 6: a margin for where in an interval the block starts and ends).
  const skipped = () => p.exportStats().self.panoptic_skipped_intervals.samples[0].value;
  const before = skipped();
  const until = Date.now() + 600;
  while (Date.now() < until);
  p.inc(['http'], 'requests');
  // The exports add each delivery on their own thread, after the event: wait for the count (the
  // next interval's delivery brings it), a few deliveries at most.
  for (let i = 0; i < 10 && skipped() - before < 4; i++) await new Promise((resolve) => p.once('delivery', resolve));
  assert.ok(skipped() - before >= 4, `${before} -> ${skipped()}`);
  await assert.rejects(p.serve({ port: 0, selfMetrics: 'yes' }), { name: 'TypeError', message: "options.selfMetrics must be a boolean, got 'yes'" });
});
