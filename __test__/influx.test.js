'use strict';

// The `influx` option against a real InfluxDB 1.x (Debian's influxd, installed when missing and
// run on loopback by scripts/backends.js): a real cluster's deliveries arrive and InfluxQL reads
// back what it recorded; the instance's filter limits what is pushed; pushes queued while
// InfluxDB is down arrive after it restarts, and a small queue drops the oldest batches within
// its bound; a program that ends right after stop() still pushes its last delivery.

const test = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('child_process');
const cluster = require('cluster');
const http = require('http');
const os = require('os');
const path = require('path');
const { stopWorkers, Panopticon } = require('./helpers');
const { InfluxServer, until } = require('../scripts/backends');

/** The series of an InfluxQL answer: `[{ name, tags, rows: [{ column: value }] }]`. */
async function series(server, db, q) {
  const body = await server.query(q, db);
  const result = body.results[0];
  if (result.error) throw new Error(`${q}: ${result.error}`);
  return (result.series || []).map((s) => ({
    name: s.name,
    tags: s.tags || {},
    rows: s.values.map((v) => Object.fromEntries(s.columns.map((c, i) => [c, v[i]]))),
  }));
}

/** The one value of a one-row InfluxQL answer (undefined when there is none). */
async function single(server, db, q) {
  const found = await series(server, db, q);
  assert.ok(found.length <= 1 && (found.length === 0 || found[0].rows.length === 1), `${q}: ${JSON.stringify(found)}`);
  if (found.length === 0) return undefined;
  const row = found[0].rows[0];
  return row[Object.keys(row).find((c) => c !== 'time')];
}

/** Polls until every query answers its expected value; the error says what was read last. */
async function expectValues(server, db, expected, what) {
  let got;
  await until(async () => {
    got = {};
    for (const q of Object.keys(expected)) got[q] = await single(server, db, q);
    return Object.keys(expected).every((q) => got[q] === expected[q]);
  }, 30000, what).catch((e) => {
    throw new Error(`${e.message}\nexpected ${JSON.stringify(expected, null, 1)}\ngot ${JSON.stringify(got, null, 1)}\n${server.log().slice(-2000)}`);
  });
}

async function startInflux(t, ...databases) {
  const server = await InfluxServer.create();
  t.after(() => server.remove());
  for (const db of databases) await server.query(`CREATE DATABASE "${db}"`);
  return server;
}

test('a cluster pushes every delivery to InfluxDB; InfluxQL reads back what it recorded, filtered', { timeout: 120000 }, async (t) => {
  const server = await startInflux(t, 'cluster');
  const interval = 300;
  const p = new Panopticon({
    interval,
    filter: "name != 'debug.noise'",
    influx: { url: server.url, db: 'cluster', perProcess: true, tags: { env: 'test' }, minBackoff: 50, maxBackoff: 500 },
  });
  cluster.setupPrimary({ exec: path.join(__dirname, 'fixtures', 'influx-worker.js'), silent: false });
  const workers = [0, 1].map(() => cluster.fork({ INTERVAL: interval }));
  t.after(async () => {
    p.stop();
    await stopWorkers(workers);
  });
  const answer = (w, key) => new Promise((resolve) => w.on('message', (m) => m && m[key] !== undefined && resolve(m[key])));
  await Promise.all(workers.map((w) => answer(w, 'ready')));
  const recorded = [answer(workers[0], 'recorded'), answer(workers[1], 'recorded')];
  workers[0].send({ record: 3 });
  workers[1].send({ record: 5 });
  await Promise.all(recorded);
  p.inc(['debug'], 'noise', 1);
  p.set(['pool'], 'size', 16);
  for (const v of [10, 20, 30]) p.histogram(['http'], 'latency', v);

  // The cluster points (no worker tag): counters summed across workers, since the start.
  const cluster_ = `"worker" = '' AND "env" = 'test'`;
  await expectValues(server, 'cluster', {
    [`SELECT max("total") FROM "jobs.done" WHERE ${cluster_} AND "queue" = 'main'`]: 8,
    [`SELECT max("calls") FROM "jobs.done" WHERE ${cluster_}`]: 8,
    [`SELECT sum("increase") FROM "jobs.done" WHERE ${cluster_}`]: 8,
    [`SELECT max("count") FROM "jobs.size" WHERE ${cluster_}`]: 8,
    [`SELECT max("sum") FROM "jobs.size" WHERE ${cluster_}`]: 1 + 2 + 3 + (1 + 2 + 3 + 4 + 5),
    [`SELECT max("max") FROM "jobs.size" WHERE ${cluster_}`]: 5,
    [`SELECT last("value") FROM "pool.size" WHERE ${cluster_}`]: 16,
    [`SELECT max("count") FROM "http.latency" WHERE ${cluster_}`]: 3,
    [`SELECT max("max") FROM "http.latency" WHERE ${cluster_}`]: 30,
  }, 'the cluster\'s values in InfluxDB');

  // Each process's own points, with a worker tag: each worker's own count.
  const perWorker = await series(server, 'cluster', `SELECT max("total") FROM "jobs.done" WHERE "worker" != '' GROUP BY "worker"`);
  assert.deepEqual(perWorker.map((s) => s.rows[0].max).sort(), [3, 5]);
  assert.deepEqual(perWorker.map((s) => s.tags.worker).sort(), workers.map((w) => String(w.id)).sort());
  assert.equal(await single(server, 'cluster', `SELECT last("value") FROM "pool.size" WHERE "worker" = 'master'`), 16);
  // Every point carries the host name and the constant tags.
  const hosts = await series(server, 'cluster', 'SHOW TAG VALUES FROM "jobs.done" WITH KEY = "host"');
  assert.deepEqual(hosts[0].rows.map((r) => r.value), [os.hostname()]);
  // The instance's filter: debug.noise was never pushed (the delivery event still has it).
  const measurements = (await series(server, 'cluster', 'SHOW MEASUREMENTS'))[0].rows.map((r) => r.name);
  assert.ok(measurements.includes('jobs.done') && !measurements.includes('debug.noise'), measurements.join(', '));

  const { deliveries, influx } = p.exportStats();
  assert.ok(deliveries >= 1, `deliveries ${deliveries}`);
  assert.ok(influx.pushedBatches >= 1 && influx.pushedPoints >= 9, JSON.stringify(influx));
  assert.equal(influx.failures, 0, JSON.stringify(influx));
  assert.equal(influx.droppedPoints, 0, JSON.stringify(influx));
  assert.equal(influx.lastError, null);
});

test('pushes queued while InfluxDB is down arrive after it restarts; a small queue drops the oldest, within its bound', { timeout: 120000 }, async (t) => {
  const server = await startInflux(t, 'outage');
  const influx = { url: server.url, db: 'outage', minBackoff: 20, maxBackoff: 200, timeout: 2000 };
  const interval = 200;
  const p = new Panopticon({ interval, influx });
  // 40 series reported every interval (persist), ~2.5 KB of lines per delivery into a 1 KiB queue.
  const small = new Panopticon({ interval, persist: true, influx: { ...influx, maxQueueBytes: 1024, prefix: 'small.' } });
  t.after(() => {
    p.stop();
    small.stop();
  });
  for (let i = 0; i < 40; i++) small.inc(['many'], `series_${i}`, 1);
  p.inc(['jobs'], 'done', 1);
  const stats = (instance) => instance.exportStats().influx;
  await until(() => stats(p).pushedPoints >= 1 && stats(small).pushedPoints >= 40, 30000, 'the first pushes');

  await server.stop();
  p.inc(['jobs'], 'done', 10);
  // While InfluxDB is down: requests fail and are retried; the small queue overflows and drops
  // its oldest batches, never holding more than its bound.
  await until(() => {
    const s = stats(small);
    assert.ok(s.queuedBytes <= 1024, JSON.stringify(s));
    return stats(p).failures >= 2 && s.droppedPoints > 0 && s.droppedBatches > 0;
  }, 30000, 'failed pushes and drops while InfluxDB is down');
  const { pushedPoints: pushedBefore } = stats(small);

  await server.start();
  // What was recorded during the outage arrives: the total counts it.
  await expectValues(server, 'outage', { 'SELECT max("total") FROM "jobs.done"': 11 }, 'the outage\'s increments');
  const s = stats(p);
  assert.ok(s.retries >= 1, JSON.stringify(s));
  assert.equal(s.droppedPoints, 0, JSON.stringify(s));
  await until(() => stats(small).pushedPoints > pushedBefore, 30000, 'the small queue to push again');
  assert.ok(stats(small).queuedBytes <= 1024);
});

/**
 * An HTTP proxy to `target` that holds each request `holdMs` and forwards it only if the client
 * is still connected then: a client that gave up (its process ended) never gets its points in.
 */
async function holdingProxy(target, holdMs) {
  const counts = { forwarded: 0, abandoned: 0 };
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => setTimeout(async () => {
      if (req.socket.destroyed) {
        counts.abandoned += 1;
        return;
      }
      const answer = await fetch(`${target}${req.url}`, { method: req.method, body: Buffer.concat(chunks), headers: { 'content-type': 'text/plain' } });
      counts.forwarded += 1;
      res.writeHead(answer.status);
      res.end(Buffer.from(await answer.arrayBuffer()));
    }, holdMs));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${server.address().port}`, counts, close: () => new Promise((resolve) => server.close(resolve)) };
}

test('a program that ends right after stop() still pushes its last delivery', { timeout: 60000 }, async (t) => {
  const server = await startInflux(t, 'exit');
  const proxy = await holdingProxy(server.url, 300);
  t.after(() => proxy.close());
  const program = `
    const Panopticon = require(${JSON.stringify(path.join(__dirname, '..'))});
    // keepAlive: the program waits for a delivery with nothing else to keep it alive.
    const p = new Panopticon({ interval: 200, keepAlive: true, influx: { url: ${JSON.stringify(proxy.url)}, db: 'exit' } });
    p.inc(['jobs'], 'done', 7);
    p.once('delivery', () => p.stop());
  `;
  const started = Date.now();
  const child = spawn(process.execPath, ['-e', program], { stdio: ['ignore', 'inherit', 'inherit'] });
  const [code, signal] = await new Promise((resolve) => child.once('exit', (...a) => resolve(a)));
  assert.deepEqual([code, signal], [0, null]);
  // It waited for the push, not for the whole flush time.
  assert.ok(Date.now() - started < 15000, `the program took ${Date.now() - started} ms`);
  assert.deepEqual(proxy.counts, { forwarded: 1, abandoned: 0 });
  assert.equal(await single(server, 'exit', 'SELECT max("total") FROM "jobs.done"'), 7);
});
