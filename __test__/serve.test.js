'use strict';

// serve(): the native HTTP server of a delivering instance: its address, its options, every route
// that needs no back-end (Prometheus itself: prometheus.test.js; the page: page.test.js), the
// filters, concurrent scrapes, exportStats(), and its end with stop().

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('path');
const { Worker } = require('worker_threads');
const { next, fresh, Panopticon } = require('./helpers');

/** GETs `url` and returns { status, type, text }. */
async function get(url, headers = {}) {
  const response = await fetch(url, { headers });
  return { status: response.status, type: response.headers.get('content-type'), text: await response.text() };
}

/** Polls /healthz until the served store holds the interval ending at `timeStamp` (bounded). */
async function served(url, timeStamp) {
  const deadline = Date.now() + 10000;
  for (;;) {
    const health = JSON.parse((await get(`${url}healthz`)).text);
    if (health.timeStamp >= timeStamp) return health;
    assert.ok(Date.now() < deadline, `the served store never reached ${timeStamp}: ${JSON.stringify(health)}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

test('serve() resolves with the bound address; /healthz and /metrics.json answer', async (t) => {
  const p = await fresh({ interval: 200, name: 'web' });
  t.after(() => p.stop());
  const address = await p.serve({ port: 0 });
  assert.equal(address.address, '127.0.0.1');
  assert.equal(address.family, 'IPv4');
  assert.ok(Number.isInteger(address.port) && address.port > 0);
  assert.equal(address.url, `http://127.0.0.1:${address.port}/`);

  p.inc(['http'], 'requests', 3);
  p.sample(['http'], 'latency', 12);
  const d = await next(p, 'delivery');
  const timeStamp = d.data.master.http.requests.value.timeStamp;
  const health = await served(address.url, timeStamp);
  assert.equal(health.status, 'ok');
  assert.ok(health.deliveries >= 2, 'every delivery since serve() and before');

  const json = await get(`${address.url}metrics.json`);
  assert.equal(json.status, 200);
  assert.match(json.type, /^application\/json/);
  const last = JSON.parse(json.text);
  assert.equal(last.name, 'web');
  assert.equal(last.id, p.id);
  assert.equal(last.interval, 200);
  assert.equal(last.meta.pid, process.pid);
  assert.equal(last.data.workers, undefined, 'no workers: no data.workers, as in the event');

  const missing = await get(`${address.url}nothing-here`);
  assert.equal(missing.status, 404);
});

/**
 * The next delivery of `p` whose `data.master.tick` leaf is there, and /metrics.json fetched
 * while the served store held that interval: /healthz says so before and after the fetch (the
 * store only moves forward), else the next delivery is tried.
 */
async function deliveryAndJson(p, url, ready = () => true) {
  for (let tries = 0; tries < 10; tries += 1) {
    const d = await next(p, 'delivery');
    if (!d.data.master.tick || !ready(d)) continue;
    // Every lazy tree read now, while the delivery is the store's last one.
    const expected = JSON.stringify(d);
    const { timeStamp } = d.data.master.tick.value;
    const before = await served(url, timeStamp);
    const text = (await get(`${url}metrics.json`)).text;
    const after = JSON.parse((await get(`${url}healthz`)).text);
    if (before.timeStamp === timeStamp && after.timeStamp === timeStamp) return { d, expected, text };
  }
  throw new Error('never fetched /metrics.json while the store held the delivery just emitted');
}

test('/metrics.json is JSON.stringify of the delivery event, byte for byte; /healthz says timeStamp null before the first', { timeout: 60000 }, async (t) => {
  // Its first interval ends in a minute: nothing delivered yet.
  const idle = new Panopticon({ interval: 60000, startTime: Date.now() });
  t.after(() => idle.stop());
  const health = await get(`${(await idle.serve({ port: 0 })).url}healthz`);
  assert.equal(health.text, '{"deliveries":0,"status":"ok","timeStamp":null}');

  const interval = 400;
  // A name, a thread feeding it (data.threads), times in seconds; and an instance with no name.
  const named = new Panopticon({ name: 'json', interval, scaleFactor: 1000 });
  const unnamed = new Panopticon({ interval });
  t.after(() => { named.stop(); unnamed.stop(); });
  const thread = new Worker(`
    const { parentPort } = require('worker_threads');
    const Panopticon = require(${JSON.stringify(path.join(__dirname, '..'))});
    const p = new Panopticon({ name: 'json', interval: ${interval}, scaleFactor: 1000 });
    p.on('newInterval', () => { p.inc(['http', '200'], 'ok', 2); p.histogram([], 'h', 2.5); });
    parentPort.on('message', () => { p.stop(); parentPort.close(); });
  `, { eval: true });
  t.after(() => thread.terminate());
  for (const p of [named, unnamed]) {
    p.on('newInterval', () => {
      p.inc([], 'tick', 1);
      // Array indexes as path elements ("200" before "10" in text order; JS enumerates 10
      // first), floats and integers, a tagged id, a set object with keys out of order, times.
      p.inc(['http', '200'], 'ok', 3);
      p.inc(['http', '10'], 'x', 1, { method: 'GET' });
      p.inc(['http', 'b'], 'y', 0.1);
      p.set(['cfg'], 'obj', { z: 1, a: [2.5, 'x"\n'], 10: null });
      p.sample([], 's', 1e21);
      p.timedSample([], 't', [0, 1234567]);
      p.histogram([], 'h', 3);
      p.meter([], 'm', 2);
    });
  }
  const cases = [
    { p: named, ready: (d) => d.data.threads && Object.values(d.data.threads).some((tree) => tree.http) },
    { p: unnamed },
  ];
  for (const { p, ready } of cases) {
    const { url } = await p.serve({ port: 0 });
    const { d, expected, text } = await deliveryAndJson(p, url, ready);
    assert.deepEqual(JSON.parse(text), JSON.parse(expected));
    assert.doesNotMatch(text, /\d\.0[,}\]]/, 'integers without ".0", as JS writes them');
    assert.equal(text, expected, 'byte for byte');
    assert.equal('name' in JSON.parse(text), p === named, 'an unset name is absent, as JSON.stringify leaves undefined out');
    assert.equal(d.meta.pid, process.pid);
  }
});

test('bad options reject with errors naming the option', async (t) => {
  const p = new Panopticon({ interval: 1000 });
  t.after(() => p.stop());
  await assert.rejects(p.serve('9464'), { name: 'TypeError', message: /options must be an object, got '9464'/ });
  await assert.rejects(p.serve({ port: '80' }), { name: 'TypeError', message: /options\.port must be a number, got '80'/ });
  await assert.rejects(p.serve({ port: 70000 }), { name: 'RangeError', message: /options\.port must be an integer from 0 to 65535, got 70000/ });
  await assert.rejects(p.serve({ host: '' }), { name: 'TypeError', message: /options\.host/ });
  await assert.rejects(p.serve({ perProcess: 1 }), { name: 'TypeError', message: /options\.perProcess must be a boolean/ });
  await assert.rejects(p.serve({ buckets: [1, 'x'] }), { name: 'TypeError', message: /options\.buckets\[1\] must be a number/ });
  await assert.rejects(p.serve({ buckets: [5, 1] }), { name: 'RangeError', message: /options\.buckets/ });
  await assert.rejects(p.serve({ quantiles: [2] }), { name: 'RangeError', message: /options\.quantiles/ });
  await assert.rejects(p.serve({ prefix: '9x' }), { name: 'RangeError', message: /options\.prefix/ });
  await assert.rejects(p.serve({ history: 0 }), { name: 'RangeError', message: /options\.history must be an integer from 1 to 100000, got 0/ });
  await assert.rejects(p.serve({ history: '5' }), { name: 'TypeError', message: /options\.history must be a number/ });
  await assert.rejects(p.serve({ maxConnections: '5' }), { name: 'TypeError', message: /^options\.maxConnections must be a number, got '5'$/ });
  await assert.rejects(p.serve({ maxConnections: 0 }), { name: 'RangeError', message: /^options\.maxConnections must be an integer from 1 to 1000000, got 0$/ });
  await assert.rejects(p.serve({ maxStreams: 2.5 }), { name: 'RangeError', message: /^options\.maxStreams must be an integer from 1 to 1000000, got 2\.5$/ });
  await assert.rejects(p.serve({ maxStreams: NaN }), { name: 'RangeError', message: /^options\.maxStreams must be an integer from 1 to 1000000, got NaN$/ });
  await assert.rejects(p.serve({ maxPerClient: 1e7 }), { name: 'RangeError', message: /^options\.maxPerClient must be an integer from 1 to 1000000, got 10000000$/ });
  await assert.rejects(p.serve({ maxPerClient: null }), { name: 'TypeError', message: /^options\.maxPerClient must be a number, got null$/ });
  await assert.rejects(p.serve({ host: 'no-such-host.invalid' }), (e) => e instanceof Error && /no-such-host\.invalid/.test(e.message));
});

test('buckets by metric name: the runtime\'s GC histogram has prom-client\'s layout unless given one; errors name the key', { timeout: 30000 }, async (t) => {
  const p = new Panopticon({ interval: 200, scaleFactor: 1000 });
  t.after(() => p.stop());
  const gc = p.bind('histogram', ['nodejs'], 'gc_duration_seconds', { kind: 'minor' });
  const other = p.bind('histogram', ['http'], 'latency');
  // One value each (3 ms), delivered (an interval may close before the first record).
  gc(0.003);
  other(0.003);
  for (let tries = 0; ; tries++) {
    const d = await next(p, 'delivery', 1, 5000);
    if (d.data.master.nodejs !== undefined) break;
    assert.ok(tries < 5, 'the histograms are delivered');
  }
  const les = async (options, name) => {
    const { url } = await p.serve({ port: 0, selfMetrics: false, ...options });
    const text = (await get(`${url}metrics`, { accept: 'text/plain' })).text;
    return [...text.matchAll(new RegExp(`^${name}_bucket\\{(?:kind="minor",)?le="([^"]+)"\\} (\\d+)$`, 'gm'))].map((m) => `${m[1]}:${m[2]}`);
  };
  const promClient = ['0.001:0', '0.01:1', '0.1:1', '1.0:1', '2.0:1', '5.0:1', '+Inf:1'];
  // By default: prom-client's for the GC histogram, panoptic's defaults for the others.
  assert.deepEqual(await les({}, 'nodejs_gc_duration_seconds'), promClient);
  assert.equal((await les({}, 'http_latency')).length, 14, 'the 13 default bounds (0.001 to 10 s) and +Inf');
  // An array (or `default`) is every other histogram's; the GC histogram keeps its own.
  assert.deepEqual(await les({ buckets: [0.002, 1] }, 'http_latency'), ['0.002:0', '1.0:1', '+Inf:1']);
  assert.deepEqual(await les({ buckets: [0.002, 1] }, 'nodejs_gc_duration_seconds'), promClient);
  // A key naming a histogram (its name on /metrics without the prefix) wins.
  const buckets = { default: [0.5], nodejs_gc_duration_seconds: [0.002, 0.004], http_latency: [0.001] };
  assert.deepEqual(await les({ buckets, prefix: 'web_' }, 'web_nodejs_gc_duration_seconds'), ['0.002:0', '0.004:1', '+Inf:1']);
  assert.deepEqual(await les({ buckets, prefix: 'web_' }, 'web_http_latency'), ['0.001:0', '+Inf:1']);
  assert.deepEqual(await les({ buckets: { default: [0.5] } }, 'http_latency'), ['0.5:1', '+Inf:1']);
  // A key whose value is undefined is not given (as every option).
  assert.deepEqual(await les({ buckets: { default: undefined, nodejs_gc_duration_seconds: undefined } }, 'nodejs_gc_duration_seconds'), promClient);
  // Types in JS, ranges and names in the core; each error names the key.
  await assert.rejects(p.serve({ buckets: 'x' }), { name: 'TypeError', message: "options.buckets must be an array of numbers or an object of arrays of numbers, got 'x'" });
  await assert.rejects(p.serve({ buckets: null }), { name: 'TypeError', message: /^options\.buckets must be an array of numbers or an object/ });
  await assert.rejects(p.serve({ buckets: { default: 1 } }), { name: 'TypeError', message: 'options.buckets.default must be an array of numbers, got 1' });
  await assert.rejects(p.serve({ buckets: { a: [1, '2'] } }), { name: 'TypeError', message: "options.buckets.a[1] must be a number, got '2'" });
  await assert.rejects(p.serve({ buckets: { a: [2, 1] } }), { name: 'RangeError', message: 'options.buckets.a[1] must be greater than options.buckets.a[0] (2): bounds ascend, got 1' });
  await assert.rejects(p.serve({ buckets: { default: [] } }), { name: 'RangeError', message: 'options.buckets must hold at least one bound, got []' });
  await assert.rejects(p.serve({ buckets: { 'http.latency': [1] } }), {
    name: 'RangeError',
    message: 'options.buckets keys must be `default` or a metric name as /metrics writes it without the prefix ([a-zA-Z_][a-zA-Z0-9_]*), got "http.latency"',
  });
  await assert.rejects(p.serve({ buckets: { nodejs_gc_duration_seconds: [-1] } }), { name: 'RangeError', message: /^options\.buckets\.nodejs_gc_duration_seconds\[0\] must be a finite number of at least 0/ });
});

test('a port in use rejects with EADDRINUSE; stop() closes the server and frees the port', async (t) => {
  const a = new Panopticon({ interval: 1000 });
  const b = new Panopticon({ interval: 1000 });
  t.after(() => b.stop());
  const { port, url } = await a.serve({ port: 0 });
  await assert.rejects(b.serve({ port }), { code: 'EADDRINUSE', message: new RegExp(`127\\.0\\.0\\.1:${port}`) });
  assert.equal((await get(`${url}healthz`)).status, 200);
  a.stop();
  await assert.rejects(fetch(`${url}healthz`), TypeError, 'connection refused once stopped');
  const again = await b.serve({ port });
  assert.equal(again.port, port);
});

test('an instance that does not deliver (a thread feeding its process) cannot serve', async (t) => {
  const host = new Panopticon({ interval: 1000, name: 'fed' });
  t.after(() => host.stop());
  const code = `
    const { parentPort } = require('worker_threads');
    const Panopticon = require(${JSON.stringify(path.join(__dirname, '..'))});
    const p = new Panopticon({ interval: 1000, name: 'fed' });
    p.serve({ port: 0 }).then(
      () => parentPort.postMessage('served'),
      (e) => { p.stop(); parentPort.postMessage(e.code); });
  `;
  const worker = new Worker(code, { eval: true });
  const [answer] = await Promise.all([next(worker, 'message'), next(worker, 'exit')]);
  assert.equal(answer, 'PANOPTIC_NOT_DELIVERING');
});

test('every route answers from the last delivery, narrowed by the instance filter and by ?filter=', async (t) => {
  assert.throws(() => new Panopticon({ filter: 'name =' }), { name: 'SyntaxError', message: /at position 6/ });
  assert.throws(() => new Panopticon({ filter: 3 }), { name: 'TypeError', message: /options\.filter must be a string, got 3/ });
  const p = await fresh({ interval: 200, name: 'web', filter: "name NOT LIKE 'secret.%'" });
  t.after(() => p.stop());
  const { url } = await p.serve({ port: 0 });
  p.inc(['http'], 'requests', 2, { method: 'GET' });
  p.inc(['secret'], 'token', 1);
  p.histogram(['http'], 'latency', 12);
  p.meter(['jobs'], 'done', 4);
  const d = await next(p, 'delivery');
  await served(url, d.data.master.http.latency.value.timeStamp);

  const metrics = await get(`${url}metrics`);
  assert.equal(metrics.status, 200);
  assert.match(metrics.type, /^text\/plain; version=0\.0\.4/);
  assert.match(metrics.text, /^http_requests_total\{method="GET"\} 2$/m);
  assert.match(metrics.text, /^http_latency_bucket\{le="\+Inf"\} 1$/m);
  assert.doesNotMatch(metrics.text, /secret/, 'the instance filter applies');
  const histograms = await get(`${url}metrics?filter=${encodeURIComponent("type = 'histogram'")}`);
  assert.match(histograms.text, /http_latency_count 1/);
  assert.doesNotMatch(histograms.text, /^http_requests/m);
  const bad = await get(`${url}metrics?filter=${encodeURIComponent("type = ")}`);
  assert.equal(bad.status, 400);
  assert.match(bad.text, /^filter: at position 7: expected/);

  const last = JSON.parse((await get(`${url}metrics.json`)).text);
  assert.equal(last.data.master.secret, undefined);
  assert.equal(last.data.master.http.requests, undefined, 'tagged: under its tagged id');
  assert.equal(last.data.master.http['requests{method="GET"}'].type, 'inc');

  // Pandora's routes: the group is the instance's name.
  const list = JSON.parse((await get(`${url}metrics/list`)).text);
  assert.equal(list.success, true);
  assert.deepEqual(Object.keys(list.data), ['web']);
  assert.ok(list.data.web.some((m) => m.metric === 'jobs.done.m1'), JSON.stringify(list.data.web));
  const group = JSON.parse((await get(`${url}metrics/web`)).text);
  assert.ok(group.data.some((m) => m.metric === 'http.requests.count' && m.value === 2 && m.tags.method === 'GET'), JSON.stringify(group.data));
  const unknown = await get(`${url}metrics/nope`);
  assert.equal(unknown.status, 200, 'as Pandora: the failure is in the body');
  assert.deepEqual({ ...JSON.parse(unknown.text), timestamp: 0 }, { success: false, timestamp: 0, message: 'The specified group is not found!' });
  // Panoptes' metrics groups.
  const groups = JSON.parse((await get(`${url}metrics/panoptes`)).text);
  assert.ok(Array.isArray(groups) && groups.length > 0);
  assert.doesNotMatch(JSON.stringify(groups), /secret/);
  // The live page's selection.
  const selected = JSON.parse((await get(`${url}api/select?filter=${encodeURIComponent("tags.method = 'GET'")}`)).text);
  assert.deepEqual(selected.keys, ['inc http.requests{method="GET"}']);

  const stats = p.exportStats();
  assert.ok(stats.deliveries >= 1);
  assert.equal(stats.influx, null);
  assert.equal(stats.servers.length, 1);
  assert.equal(stats.servers[0].url, url);
  assert.ok(stats.servers[0].requests >= 10, JSON.stringify(stats.servers[0]));
});

// Pandora 1.10.6's own route tests (packages/metrics/test/unit/rest/MetricsResource.test.ts), the
// same requests and checks: they register, in group `system`, the gauge `test.a.b.c.gauge` tagged
// appName app1 and Node's V8 gauges tagged app2. They cannot run as they are (they register through
// Pandora's MetricsManager), so the registrations are panoptic gauges. Beyond Pandora's checks:
// untagged series are kept by every ?appName= (Pandora's AppNameFilter keeps a metric whose tags
// have no appName), and a group all of whose series are left out is still a group.
test('Pandora\'s route tests: ?appName= leaves out other applications\' series, groups stay', async (t) => {
  const p = await fresh({ interval: 100, name: 'system' });
  t.after(() => p.stop());
  const { url } = await p.serve({ port: 0 });
  p.gauge(['test', 'a', 'b', 'c'], 'gauge', () => 10, { appName: 'app1' });
  p.gauge(['node', 'v8'], 'heap_used', () => process.memoryUsage().heapUsed, { appName: 'app2' });
  p.gauge(['node', 'v8'], 'heap_total', () => process.memoryUsage().heapTotal, { appName: 'app2' });
  p.gauge(['process'], 'uptime', () => process.uptime());
  const d = await next(p, 'delivery');
  await served(url, d.data.master.process.uptime.value.timeStamp);
  const json = async (route) => {
    const { status, text } = await get(`${url}${route}`);
    assert.equal(status, 200, `${route}: ${text}`);
    const body = JSON.parse(text);
    assert.equal(body.success, true, `${route}: ${text}`);
    return body.data;
  };
  const apps = (metrics) => metrics.map((m) => `${m.metric}:${m.tags.appName}`).sort();
  const app1 = ['process.uptime:undefined', 'test.a.b.c.gauge:app1'];
  // 'list metrics resource'
  assert.ok((await json('metrics/list')).system);
  // 'list metrics resource by appName'
  assert.deepEqual(apps((await json('metrics/list?appName=app1')).system), app1);
  // 'list metrics resource by appName and group'
  assert.deepEqual(apps((await json('metrics/list/system?appName=app1')).system), app1);
  // 'show metric value'
  const all = await json('metrics/system');
  assert.deepEqual(apps(all), ['node.v8.heap_total:app2', 'node.v8.heap_used:app2', ...app1].sort());
  assert.equal(all.find((m) => m.metric === 'test.a.b.c.gauge').value, 10);
  // 'show metric by appName'
  assert.deepEqual(apps(await json('metrics/system?appName=app1')), app1);
  assert.deepEqual(apps(await json('metrics/system?appName=app2')), ['node.v8.heap_total:app2', 'node.v8.heap_used:app2', 'process.uptime:undefined']);
  // Another application: only the untagged series; an empty ?appName= filters nothing (Pandora's).
  assert.deepEqual(apps(await json('metrics/system?appName=app3')), ['process.uptime:undefined']);
  assert.equal((await json('metrics/system?appName=')).length, 4);
  assert.equal((await json('metrics/system?filter=' + encodeURIComponent("tags.appName = 'app2'") + '&appName=app1')).length, 0);
});

test('concurrent scrapes during deliveries all get whole expositions', async (t) => {
  // Recorded once, scraped over many 50 ms intervals on a loaded machine: kept from expiring.
  const p = await fresh({ interval: 50, expireAfter: Infinity });
  t.after(() => p.stop());
  const { url } = await p.serve({ port: 0 });
  for (let i = 0; i < 2000; i++) p.inc(['load'], `series${i}`, i);
  await next(p, 'delivery', 2);
  const bodies = await Promise.all(Array.from({ length: 64 }, () => get(`${url}metrics`, { accept: 'application/openmetrics-text' })));
  for (const { status, text } of bodies) {
    assert.equal(status, 200);
    assert.match(text, /# EOF\n$/);
    for (const line of text.split('\n').slice(0, -1)) {
      assert.match(line, /^(# (TYPE|HELP|UNIT|EOF)|[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? \S+)/, line);
    }
  }
  // Counters are cumulative: every scrape shows every series, with its value.
  const last = bodies[bodies.length - 1].text;
  assert.match(last, /^load_series1999_total 1999$/m);
});

test('a bad influx option throws from the constructor, naming the option', () => {
  assert.throws(() => new Panopticon({ influx: 'http://x' }), { name: 'TypeError', message: /options\.influx must be an object/ });
  assert.throws(() => new Panopticon({ influx: { url: 'https://db:8086', db: 'm' } }), { message: /influx\.url/ });
  assert.throws(() => new Panopticon({ influx: { url: 'http://127.0.0.1:8086' } }), { message: /influx\.db/ });
  assert.throws(() => new Panopticon({ influx: { url: 'http://127.0.0.1:8086', db: 'm', timeout: -1 } }), { name: 'RangeError', message: /influx\.timeout/ });
  assert.throws(() => new Panopticon({ influx: { url: 'http://127.0.0.1:8086', db: 'm', timeout: NaN } }), { name: 'RangeError', message: /^influx\.timeout must be a positive number of ms, got NaN$/ });
  // Types are checked in JS, ranges in the core: one check each, one message style.
  assert.throws(() => new Panopticon({ influx: { url: 8086, db: 'm' } }), { name: 'TypeError', message: /^influx\.url must be a string, got 8086$/ });
  assert.throws(() => new Panopticon({ influx: { url: 'http://127.0.0.1:8086', db: 'm', perProcess: 1 } }), { name: 'TypeError', message: /^influx\.perProcess must be a boolean, got 1$/ });
  assert.throws(() => new Panopticon({ influx: { url: 'http://127.0.0.1:8086', db: 'm', tags: { env: 1 } } }), { name: 'TypeError', message: /^influx\.tags\.env must be a string, got 1$/ });
  assert.throws(() => new Panopticon({ influx: { url: 'http://127.0.0.1:8086', db: 'm', maxQueueBytes: 100 } }), { name: 'RangeError', message: /^influx\.maxQueueBytes must be a number of bytes from 1024, got 100$/ });
});

/** A connection from `localAddress` to `port` on loopback, once connected. */
function connectFrom(t, port, localAddress) {
  const net = require('net');
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port, localAddress }, () => resolve(socket));
    socket.on('error', reject);
    t.after(() => socket.destroy());
  });
}

test('connection policy: a client address at maxPerClient gives up its own oldest connection; the counters say why', async (t) => {
  const p = new Panopticon({ interval: 1000 });
  t.after(() => p.stop());
  const { port, url } = await p.serve({ port: 0, maxPerClient: 2 });
  const stats = () => p.exportStats().servers[0];
  // Two silent connections from 127.0.0.2, one from 127.0.0.3.
  const oldest = await connectFrom(t, port, '127.0.0.2');
  const closed = new Promise((resolve) => oldest.on('close', resolve));
  await connectFrom(t, port, '127.0.0.2');
  const other = await connectFrom(t, port, '127.0.0.3');
  let otherClosed = false;
  other.on('close', () => { otherClosed = true; });
  // A third from 127.0.0.2: its own oldest connection yields (not 127.0.0.3's).
  const third = await connectFrom(t, port, '127.0.0.2');
  await closed;
  third.write('GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  const answer = await new Promise((resolve) => {
    let text = '';
    third.on('data', (chunk) => { text += chunk; });
    third.on('end', () => resolve(text));
  });
  assert.match(answer, /^HTTP\/1\.1 200 /);
  // Other clients are served as before.
  assert.equal((await get(`${url}healthz`)).status, 200);
  assert.equal(otherClosed, false);
  const s = stats();
  assert.deepEqual(s.evicted, { idle: 1, slow: 0, streams: 0 });
  assert.deepEqual(s.rejectedBy, {
    connections: 0, perClient: 0, method: 0, uriTooLong: 0, headersTooLarge: 0, badRequest: 0, headerTimeout: 0, writeTimeout: 0, tls: 0, unauthorized: 0,
  });
  assert.equal(s.rejected, 0);
  // A refusal by reason adds to the total.
  assert.equal((await fetch(`${url}healthz`, { method: 'POST' })).status, 405);
  assert.equal(stats().rejectedBy.method, 1);
  assert.equal(stats().rejected, 1);
});
