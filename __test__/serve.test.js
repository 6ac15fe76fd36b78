'use strict';

// serve(): the native HTTP server of a delivering instance: its address, its options, the routes
// that need no back-end (/healthz, /metrics.json), and its end with stop().

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
  // The store may already hold a later interval: compare with the delivery of the same interval.
  if (last.timeStamp === timeStamp) {
    assert.deepEqual(last.data.master, d.data.master);
    assert.deepEqual(last.data.cluster, d.data.cluster);
  }
  assert.equal(last.name, 'web');
  assert.equal(last.id, p.id);
  assert.equal(last.interval, 200);
  assert.equal(last.pid, process.pid);
  assert.deepEqual(last.data.workers, {});

  const missing = await get(`${address.url}nothing-here`);
  assert.equal(missing.status, 404);
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
  await assert.rejects(p.serve({ host: 'no-such-host.invalid' }), (e) => e instanceof Error && /no-such-host\.invalid/.test(e.message));
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
