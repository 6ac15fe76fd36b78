'use strict';

// A real Prometheus 2.x (scripts/backends.js) scrapes the runtime metrics of a real cluster: the
// master, two cluster.fork() workers and a worker thread, each with `runtime: true` at
// scaleFactor 1000, served by the master's serve(). Through Prometheus' HTTP API: every family
// prom-client's collectDefaultMetrics() writes is there under its name and label names (but the
// documented differences, docs/runtime.md), for the cluster and for each process and the
// thread; the GC histogram has prom-client's buckets; the CPU counter increases; the event-loop
// delay's p99 tells the blocked worker from the others and the cluster's histogram is the sum
// of every process's. promtool checks the body Prometheus scraped.

const test = require('node:test');
const assert = require('node:assert/strict');
const cluster = require('cluster');
const path = require('path');
const { spawnSync } = require('child_process');
const { Worker } = require('worker_threads');
const { stopWorkers, Panopticon } = require('./helpers');
const { startPrometheus, until } = require('../scripts/backends');

const FIXTURE = path.join(__dirname, 'fixtures', 'runtime-prometheus-worker.js');

// prom-client's families panoptic writes differently or not at all (docs/runtime.md,
// "Differences from prom-client"); nodejs_eventloop_lag_seconds is a histogram here.
const DIFFERENT = new Set([
  'nodejs_eventloop_lag_min_seconds', 'nodejs_eventloop_lag_max_seconds', 'nodejs_eventloop_lag_mean_seconds',
  'nodejs_eventloop_lag_stddev_seconds', 'nodejs_eventloop_lag_p50_seconds', 'nodejs_eventloop_lag_p90_seconds',
  'nodejs_eventloop_lag_p99_seconds', 'nodejs_eventloop_lag_seconds',
  'nodejs_active_handles', 'nodejs_active_requests', 'process_virtual_memory_bytes', 'process_heap_bytes',
]);
// Labels Prometheus or the exposition adds (`worker`: per process) or a histogram's own.
const OWN_LABELS = new Set(['__name__', 'job', 'instance', 'worker', 'le']);

/** The sorted label names of a Prometheus series, less OWN_LABELS. */
const labelNames = (metric) => Object.keys(metric).filter((l) => !OWN_LABELS.has(l)).sort().join(',');

test('a real Prometheus scrapes the runtime series of a cluster with a thread: prom-client\'s names and labels, GC buckets, sane values', { timeout: 180000 }, async (t) => {
  const interval = 500;
  const p = new Panopticon({ name: 'rtprom', interval, startTime: 0, scaleFactor: 1000, runtime: true });
  t.after(() => p.stop());
  cluster.setupPrimary({ exec: FIXTURE, silent: false });
  // Worker 1 blocks its loop for 80 ms every 400 ms: about one sample in 40 (at the default
  // 10 ms resolution) is a delay of ~80 ms, so its p99 is one. Worker 2 does not block.
  const env = { INTERVAL: interval };
  const workers = [cluster.fork({ ...env, BLOCK_MS: 80, EVERY_MS: 400 }), cluster.fork({ ...env, BLOCK_MS: 0 })];
  t.after(() => stopWorkers(workers));
  await Promise.all(workers.map((w) => new Promise((resolve) => w.on('message', (m) => m && m.started && resolve()))));
  const thread = new Worker(FIXTURE, { env: { ...process.env, ...env, BLOCK_MS: '0' } });
  t.after(() => thread.terminate());
  const threadLabel = `master:${thread.threadId}`;
  const [blocked, free] = workers.map((w) => String(w.id));

  // prom-client's default metrics in this process, from now on (its GC histogram sees the churn
  // below).
  const client = require('prom-client');
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry });

  const served = await p.serve({ port: 0, perProcess: true });
  const prometheus = await startPrometheus({ targets: [`127.0.0.1:${served.port}`], scrapeInterval: '500ms' });
  t.after(() => prometheus.stop());
  const query = (promql) => prometheus.query(`${promql}`);
  const job = 'job="panoptic"';

  // Up, and every part of the cluster scraped with its GC histogram (minor GCs everywhere: the
  // fixture and the churn below make garbage).
  let garbage = [];
  const churn = setInterval(() => {
    garbage = [];
    for (let i = 0; i < 20000; i++) garbage.push({ i });
  }, 20);
  t.after(() => clearInterval(churn));
  const parts = ['', 'master', blocked, free, threadLabel];
  await until(async () => {
    const targets = await prometheus.targets();
    if (!(targets.length === 1 && targets[0].health === 'up' && targets[0].lastError === '')) return false;
    const gc = await query(`nodejs_gc_duration_seconds_count{${job},kind="minor"}`);
    const lag = await query(`nodejs_eventloop_lag_seconds_count{${job}}`);
    const cpu = await query(`process_cpu_user_seconds_total{${job}}`);
    const has = (result, worker) => result.some((s) => (s.metric.worker || '') === worker);
    return parts.every((w) => has(gc, w) && has(lag, w)) && ['', 'master', blocked, free].every((w) => has(cpu, w));
  }, 90000, 'every process and the thread scraped with runtime series').catch(async (e) => {
    throw new Error(`${e.message}: ${JSON.stringify(await prometheus.targets())}\n${prometheus.log()}`);
  });

  // prom-client's names and label names, for the cluster (no worker label) and each part.
  const theirs = await registry.getMetricsAsJSON();
  const checked = [];
  // A thread has no process-wide series (they would count twice in the cluster).
  const threadHasNo = (name) => name.startsWith('process_');
  for (const family of theirs) {
    if (DIFFERENT.has(family.name)) continue;
    const sample = family.type === 'histogram' ? `${family.name}_count` : family.name;
    const result = await query(`{__name__="${sample}",${job}}`);
    assert.ok(result.length > 0, `${sample} is scraped`);
    for (const worker of parts) {
      const mine = result.filter((s) => (s.metric.worker || '') === worker);
      if (worker === threadLabel && threadHasNo(family.name)) {
        assert.equal(mine.length, 0, `${sample}: no series of the thread`);
        continue;
      }
      assert.ok(mine.length > 0, `${sample}{worker="${worker}"} is scraped`);
      // Label names as prom-client declares them.
      const expected = [...registry.getSingleMetric(family.name).labelNames].sort().join(',');
      for (const s of mine) assert.equal(labelNames(s.metric), expected, `${sample}{worker="${worker}"}: prom-client's label names`);
    }
    checked.push(family.name);
  }
  assert.ok(checked.length >= 15, checked.join(' '));
  for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'nodejs_heap_size_used_bytes', 'nodejs_gc_duration_seconds', 'nodejs_version_info']) {
    assert.ok(checked.includes(name), `${name} was checked`);
  }
  // Types as Prometheus read them from the exposition.
  const metadata = await prometheus.metadata('panoptic');
  const typeOf = (name) => (metadata.find((m) => m.metric === name) || {}).type;
  assert.equal(typeOf('nodejs_gc_duration_seconds'), 'histogram');
  assert.equal(typeOf('nodejs_eventloop_lag_seconds'), 'histogram');
  assert.equal(typeOf('process_resident_memory_bytes'), 'gauge');
  assert.match(typeOf('process_cpu_user_seconds') || typeOf('process_cpu_user_seconds_total'), /^counter$/);

  // The GC histogram has prom-client's buckets (0.001 to 5 s) in every part: `le` spelt as
  // panoptic writes every bound (OpenMetrics' canonical form, "1.0": docs/prometheus.md).
  const les = ['0.001', '0.01', '0.1', '1.0', '2.0', '5.0', '+Inf'];
  const bound = (le) => (le === '+Inf' ? Infinity : Number(le));
  const buckets = await query(`nodejs_gc_duration_seconds_bucket{${job},kind="minor"}`);
  for (const worker of parts) {
    const mine = buckets.filter((s) => (s.metric.worker || '') === worker).map((s) => s.metric.le);
    assert.deepEqual(mine.sort((a, b) => bound(a) - bound(b)), les, `worker "${worker}"`);
  }
  // prom-client's bounds, to the bit.
  const theirGc = (await registry.getMetricsAsJSON()).find((f) => f.name === 'nodejs_gc_duration_seconds');
  const theirLes = [...new Set(theirGc.values.filter((v) => v.metricName.endsWith('_bucket')).map((v) => bound(String(v.labels.le))))];
  assert.deepEqual(theirLes.sort((a, b) => a - b), les.map(bound), 'prom-client\'s GC buckets');
  // Cumulative: every bucket's count at most the next one's, +Inf's is the count.
  const counts = Object.fromEntries((await query(`nodejs_gc_duration_seconds_bucket{${job},worker="",kind="minor"}`)).map((s) => [s.metric.le, Number(s.value[1])]));
  for (let i = 1; i < les.length; i++) assert.ok(counts[les[i - 1]] <= counts[les[i]], JSON.stringify(counts));
  assert.ok(counts['+Inf'] > 0);
  // The event-loop delay keeps panoptic's default buckets (1 ms to 10 s).
  const lagLes = await query(`nodejs_eventloop_lag_seconds_bucket{${job},worker=""}`);
  assert.equal(lagLes.length, 14, JSON.stringify(lagLes.map((s) => s.metric.le)));

  // The CPU counter increases (the processes make garbage all the time).
  const cpu = async () => Number((await query(`process_cpu_user_seconds_total{${job},worker=""}`))[0].value[1]);
  const first = await cpu();
  assert.ok(first > 0, `process_cpu_user_seconds_total ${first}`);
  await until(async () => (await cpu()) > first, 30000, 'process_cpu_user_seconds_total to increase');
  // The cluster's CPU is the processes' together: over the same scrapes (one query reads one
  // instant), the cluster's increase is the sum of the processes'. (Not the totals: a process's
  // own series count from the first delivery after serve({ perProcess }) started, the cluster's
  // since the start.)
  const gap = (name) => query(`sum(increase(${name}{${job},worker!=""}[3s])) - sum(increase(${name}{${job},worker=""}[3s]))`);
  const [cpuGap] = await gap('process_cpu_user_seconds_total');
  assert.ok(Math.abs(Number(cpuGap.value[1])) < 1e-9, `cluster CPU - sum of processes: ${cpuGap.value[1]}`);
  assert.ok(Number((await query(`process_resident_memory_bytes{${job},worker=""}`))[0].value[1]) > 20e6);

  // The event-loop delay: worker 1 blocks for 80 ms four times in 1.6 s, so its p99 is a
  // block; the cluster's delays are one histogram, the sum of every part's.
  const p99 = async (worker) => Number((await query(`histogram_quantile(0.99, nodejs_eventloop_lag_seconds_bucket{${job},worker="${worker}"})`))[0].value[1]);
  await until(async () => (await p99(blocked)) >= 0.05, 30000, 'the blocked worker\'s p99 to be a block');
  const blockedP99 = await p99(blocked);
  assert.ok(blockedP99 <= 0.25, `worker ${blocked}'s p99 ${blockedP99} s: a block of 80 ms (late by a loaded machine's scheduling at most)`);
  const [lagGap] = await gap('nodejs_eventloop_lag_seconds_count');
  assert.ok(Math.abs(Number(lagGap.value[1])) < 1e-9, `the cluster's delays are every part's: ${lagGap.value[1]}`);
  const clusterP99 = await p99('');
  assert.ok(clusterP99 >= 0 && clusterP99 < blockedP99, `cluster p99 ${clusterP99} s, below the blocked worker's ${blockedP99} s: a p99 of the union, not a max`);

  // promtool on the body Prometheus scrapes (the text format promtool reads): it parses, and
  // its linter finds in the runtime families only what it finds in prom-client's own (they keep
  // its names: nodejs_active_handles_total is a gauge in both).
  const body = await (await fetch(`${served.url}metrics`, { headers: { accept: 'text/plain;version=0.0.4' } })).text();
  const promtool = (text) => {
    const run = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    const lines = `${run.stdout}${run.stderr}`.split('\n').filter((line) => line.trim() !== '');
    assert.ok(!lines.some((line) => line.startsWith('error while linting')), lines.join('\n'));
    return { status: run.status, findings: lines };
  };
  const ours = promtool(body);
  const theirFindings = new Set(promtool(await registry.metrics()).findings);
  for (const finding of ours.findings) assert.ok(theirFindings.has(finding), `promtool: ${finding}`);
  // With the names of prom-client's findings left out, the body is clean.
  const named = (finding) => finding.split(' ')[0];
  const flagged = new Set(ours.findings.map(named));
  const rest = body.split('\n').filter((line) => !flagged.has(line.replace(/^# (HELP|TYPE) /, '').split(/[ {]/)[0])).join('\n');
  assert.equal(promtool(rest).status, 0, 'promtool: the rest of the body is clean');
});
