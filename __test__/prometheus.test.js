'use strict';

// A real Prometheus 2.x (installed and started by scripts/backends.js) scrapes a real cluster's
// serve() endpoint, in OpenMetrics (what Prometheus 2.x asks for first) and in the Prometheus text
// format (through a proxy that asks for it); its query API returns what the cluster recorded, and
// counters never go down when a worker is killed.

const test = require('node:test');
const assert = require('node:assert/strict');
const cluster = require('cluster');
const http = require('http');
const path = require('path');
const { stopWorkers, Panopticon } = require('./helpers');
const { startPrometheus, until } = require('../scripts/backends');

// Prometheus 2.x's scrape Accept header (prometheus/scrape/scrape.go, 2.42).
const PROMETHEUS_2_ACCEPT =
  'application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1';

/** An HTTP server on loopback that GETs `target` asking for the Prometheus text format. */
async function textProxy(target) {
  const server = http.createServer(async (req, res) => {
    try {
      const answer = await fetch(`${target}${req.url.slice(1)}`, { headers: { accept: 'text/plain;version=0.0.4' } });
      res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') });
      res.end(Buffer.from(await answer.arrayBuffer()));
    } catch (e) {
      res.writeHead(502);
      res.end(String(e));
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

/** The value of a one-series query result (NaN when there is no series). */
function single(result) {
  assert.ok(result.length <= 1, JSON.stringify(result));
  return result.length === 1 ? Number(result[0].value[1]) : NaN;
}

test('Prometheus scrapes a cluster in OpenMetrics and in text; counters survive a worker kill', { timeout: 180000 }, async (t) => {
  const interval = 300;
  const start = Date.now();
  // Recorded once, scraped for up to a minute: kept from expiring (expiry.test.js tests it).
  const p = new Panopticon({ name: 'prom', interval, startTime: start, expireAfter: Infinity });
  cluster.setupPrimary({ exec: path.join(__dirname, 'fixtures', 'prometheus-worker.js'), silent: false });
  const workers = [0, 1].map((index) => cluster.fork({ WORKER_INDEX: index, INTERVAL: interval, START: start }));
  const cleanups = [];
  t.after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
    p.stop();
    await stopWorkers(workers);
  });
  await Promise.all(workers.map((w) => new Promise((resolve) => w.on('message', (m) => m && m.recorded && resolve()))));
  p.inc(['http'], 'requests', 1, { method: 'GET', status: '200' });
  p.set(['pool'], 'size', 16);

  const served = await p.serve({ port: 0, perProcess: true, buckets: [5, 50, 500], quantiles: [0.5] });
  cleanups.push(() => p.stop());
  // What Prometheus 2.x gets from us: OpenMetrics.
  const negotiated = await fetch(`${served.url}metrics`, { headers: { accept: PROMETHEUS_2_ACCEPT } });
  assert.match(negotiated.headers.get('content-type'), /^application\/openmetrics-text; version=1\.0\.0/);
  assert.match(await negotiated.text(), /# EOF\n$/);
  // fetch() asks for gzip (and undoes it), as Prometheus does on every scrape (Accept-Encoding:
  // gzip): the job scraping the server directly below reads gzipped expositions.
  assert.equal(negotiated.headers.get('content-encoding'), 'gzip');
  assert.equal(negotiated.headers.get('vary'), 'accept-encoding');

  const proxy = await textProxy(served.url);
  cleanups.push(() => new Promise((resolve) => proxy.close(resolve)));
  const prometheus = await startPrometheus({
    jobs: [
      { name: 'openmetrics', targets: [`127.0.0.1:${served.port}`] },
      { name: 'text', targets: [`127.0.0.1:${proxy.address().port}`] },
    ],
    scrapeInterval: '500ms',
  });
  cleanups.push(() => prometheus.stop());

  // Both targets up, scraped without error.
  await until(async () => {
    const targets = await prometheus.targets();
    return targets.length === 2 && targets.every((target) => target.health === 'up' && target.lastError === '');
  }, 60000, 'both targets to be scraped successfully').catch(async (e) => {
    throw new Error(`${e.message}: ${JSON.stringify(await prometheus.targets())}\n${prometheus.log()}`);
  });

  const query = async (promql) => prometheus.query(promql);
  // Each job sees exactly what the cluster recorded, once every worker's interval is delivered
  // (polled: deliveries and scrapes run on their own clocks). `le` reads "5.0" in both formats.
  for (const job of ['openmetrics', 'text']) {
    const cluster = `job="${job}",worker=""`;
    const expected = {
      [`http_requests_total{${cluster},method="GET",status="200"}`]: 9,
      [`http_requests_total{${cluster},method="POST",status="201"}`]: 3,
      [`http_latency_count{${cluster}}`]: 5,
      [`http_latency_sum{${cluster}}`]: 233,
      [`http_latency_bucket{${cluster},le="5.0"}`]: 2,
      [`http_latency_bucket{${cluster},le="50.0"}`]: 4,
      [`http_latency_bucket{${cluster},le="500.0"}`]: 5,
      [`http_latency_bucket{${cluster},le="+Inf"}`]: 5,
      // HdrHistogram's median of 1, 2, 10, 20, 200: the top of 10's bucket (10.007).
      [`http_latency_quantile{${cluster},quantile="0.5"}`]: 10.007,
      [`db_rows_count{${cluster}}`]: 3,
      [`db_rows_sum{${cluster}}`]: 12,
      [`jobs_done_total{${cluster}}`]: 10,
      [`queue_length{${cluster}}`]: 7,
      [`pool_size{${cluster}}`]: 16,
      // Per process: the worker label, the master's own series.
      [`sum(http_requests_total{job="${job}",worker!="",method="GET"})`]: 9,
      [`http_requests_total{job="${job}",worker="master",method="GET"}`]: 1,
      [`sum(jobs_done_total{job="${job}",worker!=""})`]: 10,
      [`count(queue_length{job="${job}",worker!=""})`]: 2,
    };
    let got;
    await until(async () => {
      got = {};
      for (const q of Object.keys(expected)) got[q] = single(await query(q));
      return Object.keys(expected).every((q) => got[q] === expected[q]);
    }, 60000, `${job}: the recorded values`).catch((e) => {
      throw new Error(`${e.message}: ${JSON.stringify(got, null, 1)}`);
    });
  }
  // Prometheus read families as each format names them: OpenMetrics' counter family has no
  // `_total`, the text format's has.
  const families = async (job) => new Set((await prometheus.metadata(job)).map((m) => `${m.metric} ${m.type}`));
  const om = await families('openmetrics');
  const text = await families('text');
  assert.ok(om.has('http_requests counter') && !om.has('http_requests_total counter'), [...om].join(', '));
  assert.ok(text.has('http_requests_total counter') && !text.has('http_requests counter'), [...text].join(', '));
  for (const family of ['http_latency histogram', 'db_rows summary', 'queue_length gauge']) {
    assert.ok(om.has(family) && text.has(family), family);
  }

  // Kill worker 2 (the larger counts): the cluster counters keep its contribution.
  const killed = workers[1];
  const exited = new Promise((resolve) => killed.once('exit', resolve));
  killed.process.kill('SIGKILL');
  await exited;
  const killedAt = Date.now() / 1000;
  // Wait for several scrapes after the kill (each job's `up` sample time passes it by 3 s).
  await until(async () => {
    const ups = await query('timestamp(up)');
    return ups.length === 2 && ups.every((u) => Number(u.value[1]) > killedAt + 3);
  }, 60000, 'scrapes after the kill');
  for (const job of ['openmetrics', 'text']) {
    const series = `http_requests_total{job="${job}",worker="",method="GET"}`;
    const [range] = await query(`${series}[2m]`);
    const values = range.values.map((v) => Number(v[1]));
    assert.ok(values.length >= 6, JSON.stringify(values));
    assert.ok(values.every((v, i) => i === 0 || v >= values[i - 1]), `never decreasing: ${values}`);
    assert.equal(values.at(-1), 9);
    assert.equal(single(await query(`resets(${series}[2m])`)), 0);
    // The killed worker's own series are gone (none comes back with its last interval's
    // delivery); what it contributed stays in the cluster's, counted once (its meter too).
    assert.equal(single(await query(`count({job="${job}",worker="${killed.id}"})`)), NaN);
    assert.equal(single(await query(`jobs_done_total{job="${job}",worker=""}`)), 10);
  }
});

test("histogram buckets are in the values' unit: histogram_quantile() of 50 ms timings at scaleFactor 1000 and 1", { timeout: 120000 }, async (t) => {
  const interval = 300;
  // The examples' setting (times in seconds) and panopticon's default (milliseconds).
  const instances = [
    // Recorded once, scraped for up to a minute: kept from expiring.
    { p: new Panopticon({ name: 'seconds', interval, scaleFactor: 1000, expireAfter: Infinity }), unit: 'seconds', bucket: [0.025, 0.05] },
    { p: new Panopticon({ name: 'milliseconds', interval, scaleFactor: 1, expireAfter: Infinity }), unit: 'milliseconds', bucket: [25, 50] },
  ];
  const cleanups = [];
  t.after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
    for (const { p } of instances) p.stop();
  });
  const jobs = [];
  for (const { p, unit } of instances) {
    for (let i = 0; i < 100; i += 1) {
      // 50 ms as process.hrtime() differences: 0.05 at scaleFactor 1000, 50 at 1.
      p.histogram(['http'], 'latency', [0, 50e6]);
      p.histogram(['http'], `latency_${unit}`, [0, 50e6]);
    }
    // Default buckets (no `buckets` option): in the instance's unit.
    const { port } = await p.serve({ port: 0 });
    jobs.push({ name: unit, targets: [`127.0.0.1:${port}`] });
  }
  const prometheus = await startPrometheus({ jobs, scrapeInterval: '500ms' });
  cleanups.push(() => prometheus.stop());
  const query = async (promql) => single(await prometheus.query(promql));
  for (const { unit, bucket: [low, high] } of instances) {
    const job = `job="${unit}"`;
    await until(async () => (await query(`http_latency_count{${job}}`)) === 100, 60000, `${unit}: the 100 timings scraped`);
    for (const q of [0.5, 0.99]) {
      // Before, at scaleFactor 1000 every 0.05 fell in le="1.0" (the first of the millisecond
      // bounds) and histogram_quantile(0.99) answered 0.99 s.
      const value = await query(`histogram_quantile(${q}, http_latency_bucket{${job}})`);
      assert.ok(value > low && value <= high, `${unit}: histogram_quantile(${q}) = ${value}, expected in (${low}, ${high}]`);
    }
    // HELP says the unit of times; UNIT (OpenMetrics, which Prometheus 2.x asks for) only on the
    // family whose name ends with it.
    const metadata = await prometheus.metadata(unit);
    const family = (name) => metadata.find((m) => m.metric === name);
    assert.match(family('http_latency').help, new RegExp(`, times in ${unit} \\(`));
    assert.equal(family('http_latency').unit, '');
    assert.equal(family(`http_latency_${unit}`).unit, unit);
    assert.equal(family(`http_latency_${unit}`).type, 'histogram');
  }
});
