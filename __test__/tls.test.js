'use strict';

// serve() with TLS and credentials (docs/security.md), against real clients: Node's https, curl,
// a real Prometheus scraping over TLS with a bearer token and with basic auth, and the live page
// in a real Chromium that logs in with basic auth. The certificates are the test-only ones of
// fixtures/tls (README there). Every wait is a condition with a deadline.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const http = require('http');
const https = require('https');
const path = require('path');
const tls = require('tls');
const { execFile } = require('child_process');
const { next, fresh, Panopticon } = require('./helpers');
const { ensure, startPrometheus, until } = require('../scripts/backends');

ensure('curl');

const FIXTURES = path.join(__dirname, 'fixtures', 'tls');
const CA_FILE = path.join(FIXTURES, 'ca.pem');
const CA = fs.readFileSync(CA_FILE);
const CERT = fs.readFileSync(path.join(FIXTURES, 'server.pem'));
const KEY = fs.readFileSync(path.join(FIXTURES, 'server.key'), 'utf8');
const CA_KEY = fs.readFileSync(path.join(FIXTURES, 'ca.key'), 'utf8');
const TOKEN = 'scrape-Token_0123456789';
const USER = 'ops';
const PASSWORD = 'pa:ss wörd';

/**
 * GETs (or `method`s) `url` with Node's https (trusting the test CA, or with `trusted: false` only
 * Node's own CAs) or http: `{ status, headers, raw, text }`.
 */
function request(url, { headers = {}, trusted = true, method = 'GET' } = {}) {
  const client = url.startsWith('https:') ? https : http;
  return new Promise((resolve, reject) => {
    const req = client.request(url, { method, headers, ca: trusted ? CA : undefined, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (chunk) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, raw: res.rawHeaders, text: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** The first chunk of an endless response (an event stream), then closes it: `{ status, type, first }`. */
function firstChunk(url, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { headers, ca: CA, agent: false }, (res) => {
      if (res.statusCode !== 200) {
        resolve({ status: res.statusCode, type: res.headers['content-type'], first: '' });
        res.resume();
        return;
      }
      res.once('data', (chunk) => {
        resolve({ status: res.statusCode, type: res.headers['content-type'], first: chunk.toString() });
        req.destroy();
      });
    });
    req.on('error', reject);
  });
}

/** Runs curl: `{ code, out, err }` (code 0 when it succeeded, curl's exit code otherwise). */
function curl(...args) {
  return new Promise((resolve) => {
    execFile('curl', ['-sS', '--max-time', '20', ...args], (error, out, err) => {
      resolve({ code: error ? error.code : 0, out, err });
    });
  });
}

/** The status curl got, then its body (`-w` after `-o -` would mix them: the status goes last). */
async function curlStatus(...args) {
  const { code, out, err } = await curl('-w', '\n%{http_code}', ...args);
  assert.equal(code, 0, `curl ${args.join(' ')}: exit ${code}: ${err}`);
  const split = out.lastIndexOf('\n');
  return { status: Number(out.slice(split + 1)), body: out.slice(0, split) };
}

/** The WWW-Authenticate values of an answer (Node joins repeated headers: read the raw ones). */
function challenges(answer) {
  const out = [];
  for (let i = 0; i < answer.raw.length; i += 2) if (answer.raw[i].toLowerCase() === 'www-authenticate') out.push(answer.raw[i + 1]);
  return out;
}

/** The (only) server's counters. */
function serverStats(p) {
  const { servers } = p.exportStats();
  assert.equal(servers.length, 1);
  return servers[0];
}

test('serve({ tls }) serves HTTPS to Node and curl; plain HTTP gets a 400; untrusting clients and h2-only clients fail', { timeout: 60000 }, async (t) => {
  const p = await fresh({ interval: 200, name: 'tls' });
  t.after(() => p.stop());
  // The certificate as a Buffer, the key as a string: both taken.
  const address = await p.serve({ port: 0, tls: { cert: CERT, key: KEY } });
  assert.equal(address.url, `https://127.0.0.1:${address.port}/`);
  p.inc(['http'], 'requests', 3);
  await next(p, 'delivery');

  const health = await request(`${address.url}healthz`);
  assert.equal(health.status, 200);
  assert.equal(JSON.parse(health.text).status, 'ok');
  const metrics = await request(`${address.url}metrics`);
  assert.equal(metrics.status, 200);
  assert.match(metrics.text, /^http_requests_total 3$/m);
  // curl checks the name too: localhost and 127.0.0.1 are both in the certificate. ALPN: curl
  // offers h2 and http/1.1, the server takes http/1.1.
  for (const host of ['127.0.0.1', 'localhost']) {
    const { code, out, err } = await curl('--cacert', CA_FILE, '--http2', '-o', '/dev/null', '-w', '%{http_code} %{http_version}', `https://${host}:${address.port}/metrics`);
    assert.equal(code, 0, err);
    assert.equal(out, '200 1.1', host);
  }
  const events = await firstChunk(`${address.url}events`);
  assert.equal(events.status, 200);
  assert.equal(events.type, 'text/event-stream');
  assert.match(events.first, /^data: \{/);

  // Failures, each counted once as a TLS failure.
  // 1. Plain HTTP to the HTTPS port: a plain 400 that says what to do.
  const plain = await request(`http://127.0.0.1:${address.port}/metrics`);
  assert.equal(plain.status, 400);
  assert.equal(plain.text, 'this server speaks HTTPS: use an https:// URL\n');
  const plainCurl = await curlStatus(`http://127.0.0.1:${address.port}/metrics`);
  assert.equal(plainCurl.status, 400);
  // 2. Node without the CA refuses the certificate (and aborts the handshake).
  await assert.rejects(request(`${address.url}metrics`, { trusted: false }), (e) => /UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED/.test(e.code));
  // 3. So does curl (exit 60: the peer's certificate can not be verified).
  assert.equal((await curl(`${address.url}metrics`)).code, 60);
  // 4. A client that speaks only HTTP/2 finds no protocol in common.
  await assert.rejects(
    new Promise((resolve, reject) => {
      const socket = tls.connect({ host: '127.0.0.1', port: address.port, ca: CA, ALPNProtocols: ['h2'] }, () => {
        socket.destroy();
        resolve();
      });
      socket.on('error', reject);
    }),
    /no application protocol|ERR_SSL_NO_APPLICATION_PROTOCOL|alert number 120/i,
  );
  await until(() => serverStats(p).rejectedBy.tls >= 5, 10000, 'five TLS failures counted');
  const stats = serverStats(p);
  assert.equal(stats.rejectedBy.tls, 5);
  assert.equal(stats.rejectedBy.unauthorized, 0);
  assert.ok(stats.rejected >= 5, JSON.stringify(stats));
});

test('serve({ auth }): every route wants the credentials; bearer and basic are both taken; wrong ones get 401', { timeout: 60000 }, async (t) => {
  const p = await fresh({ interval: 200, name: 'auth' });
  t.after(() => p.stop());
  const { url, port } = await p.serve({ port: 0, tls: { cert: CERT, key: KEY }, auth: { bearer: TOKEN, basic: { user: USER, password: PASSWORD } } });
  p.inc(['http'], 'requests', 2);
  await next(p, 'delivery');
  const basic = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;
  let refused = 0;

  for (const route of ['', 'metrics', 'metrics.json', 'healthz', 'events', 'api/history', 'metrics/pandora', 'nothing-here']) {
    for (const headers of [{}, { authorization: `Bearer ${TOKEN}x` }, { authorization: `Basic ${Buffer.from(`${USER}:wrong`).toString('base64')}` }, { authorization: TOKEN }]) {
      const answer = await request(`${url}${route}`, { headers });
      refused += 1;
      assert.equal(answer.status, 401, `/${route} ${JSON.stringify(headers)}`);
      assert.deepEqual(challenges(answer), ['Basic realm="panoptic", charset="UTF-8"', 'Bearer realm="panoptic"']);
      assert.equal(answer.text, 'unauthorized: credentials required\n');
    }
  }
  // HEAD too, without a body.
  const head = await request(`${url}metrics`, { method: 'HEAD' });
  refused += 1;
  assert.equal(head.status, 401);
  assert.equal(head.text, '');

  // The right credentials, each way a client sends them.
  assert.equal((await request(`${url}metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).status, 200);
  assert.equal((await request(`${url}metrics`, { headers: { authorization: basic } })).status, 200);
  const byCurl = [
    ['--oauth2-bearer', TOKEN],
    ['-H', `Authorization: Bearer ${TOKEN}`],
    ['-u', `${USER}:${PASSWORD}`],
    ['--basic', '-u', `${USER}:${PASSWORD}`],
  ];
  for (const args of byCurl) {
    const answer = await curlStatus('--cacert', CA_FILE, ...args, `${url}metrics`);
    assert.equal(answer.status, 200, args.join(' '));
    assert.match(answer.body, /^http_requests_total 2$/m);
  }
  for (const args of [['-u', `${USER}:${PASSWORD}x`], ['-u', `${USER.toUpperCase()}:${PASSWORD}`], ['--oauth2-bearer', TOKEN.slice(1)], []]) {
    assert.equal((await curlStatus('--cacert', CA_FILE, ...args, `${url}healthz`)).status, 401, args.join(' '));
    refused += 1;
  }
  // The event stream with the credentials.
  const events = await firstChunk(`https://localhost:${port}/events`, { authorization: basic });
  assert.equal(events.status, 200);
  assert.match(events.first, /^data: \{/);

  await until(() => serverStats(p).rejectedBy.unauthorized === refused, 10000, `${refused} refusals counted`);
  assert.equal(serverStats(p).rejectedBy.tls, 0);
});

test('serve() checks tls and auth: TypeError, RangeError or PANOPTIC_TLS naming the option, never showing a secret', async (t) => {
  const p = await fresh({ interval: 1000 });
  t.after(() => p.stop());
  const rejects = (options, type, pattern, code) =>
    assert.rejects(p.serve({ port: 0, ...options }), (e) => {
      assert.equal(e.constructor, type, e.stack);
      assert.match(e.message, pattern);
      if (code) assert.equal(e.code, code);
      for (const secret of ['hunter2', 'my token']) assert.ok(!e.message.includes(secret), e.message);
      return true;
    });
  await rejects({ tls: 'cert.pem' }, TypeError, /^options\.tls must be an object, got/);
  await rejects({ tls: { cert: CERT } }, TypeError, /^options\.tls\.key must be PEM text as a string or a Buffer, got undefined/);
  await rejects({ tls: { cert: 42, key: KEY } }, TypeError, /^options\.tls\.cert must be PEM text/);
  await rejects({ tls: { cert: path.join(FIXTURES, 'server.pem'), key: KEY } }, Error, /^options\.tls\.cert holds no PEM certificate/, 'PANOPTIC_TLS');
  await rejects({ tls: { cert: CERT, key: CERT } }, Error, /^options\.tls\.key holds no PEM private key/, 'PANOPTIC_TLS');
  await rejects({ tls: { cert: CERT, key: CA_KEY } }, Error, /^options\.tls\.key is not the key of options\.tls\.cert/, 'PANOPTIC_TLS');
  await rejects({ tls: { cert: CERT.subarray(0, 200), key: KEY } }, Error, /^options\.tls\.cert is not valid PEM/, 'PANOPTIC_TLS');
  await rejects({ auth: 'hunter2' }, TypeError, /^options\.auth must be an object/);
  await rejects({ auth: {} }, RangeError, /^options\.auth must have bearer or basic/);
  await rejects({ auth: { bearer: 42 } }, TypeError, /^options\.auth\.bearer must be a string, got number/);
  await rejects({ auth: { bearer: 'my token' } }, RangeError, /^options\.auth\.bearer must be a non-empty token of visible ASCII/);
  await rejects({ auth: { bearer: '' } }, RangeError, /^options\.auth\.bearer must be a non-empty/);
  await rejects({ auth: { basic: { user: 'u' } } }, TypeError, /^options\.auth\.basic\.password must be a string, got undefined/);
  await rejects({ auth: { basic: { user: 'a:b', password: 'hunter2' } } }, RangeError, /^options\.auth\.basic\.user must be non-empty, without ':'/);
  await rejects({ auth: { basic: { user: 'u', password: 'hunter2\n' } } }, RangeError, /^options\.auth\.basic\.password must be non-empty, without control characters, got 8 characters/);
  assert.deepEqual(p.exportStats().servers, [], 'no server started');

  // Keys that are not options are warned about and ignored (client certificates are not
  // supported: a `ca` does not silently make anyone think they are).
  const warned = [];
  const onWarning = (w) => warned.push(w);
  process.on('warning', onWarning);
  t.after(() => process.off('warning', onWarning));
  const served = await p.serve({ port: 0, tls: { cert: CERT, key: KEY, ca: CA }, auth: { bearer: TOKEN, digest: 'x' } });
  assert.ok(served.url.startsWith('https://'));
  await until(() => warned.length >= 2, 10000, 'two warnings');
  assert.deepEqual(warned.map((w) => [w.code, w.message]), [
    ['PANOPTIC_UNKNOWN_OPTION', 'options.tls.ca is not an option and is ignored (known: cert, key)'],
    ['PANOPTIC_UNKNOWN_OPTION', 'options.auth.digest is not an option and is ignored (known: bearer, basic)'],
  ]);
});

test('credentials without TLS off loopback are warned about (PANOPTIC_INSECURE_AUTH); on loopback or with TLS they are not', async (t) => {
  const p = await fresh({ interval: 1000 });
  t.after(() => p.stop());
  const warnings = [];
  p.on('warning', (w) => warnings.push(w));
  const auth = { bearer: TOKEN };
  // Loopback (any of 127/8) and TLS: no warning.
  await p.serve({ port: 0, auth });
  await p.serve({ host: '127.0.0.2', port: 0, auth });
  await p.serve({ host: '0.0.0.0', port: 0, auth, tls: { cert: CERT, key: KEY } });
  assert.deepEqual(warnings, []);
  // Every address (the server needs the token, and the test sends nothing to it).
  const open = await p.serve({ host: '0.0.0.0', port: 0, auth });
  assert.equal(warnings.length, 1);
  assert.equal(warnings[0].code, 'PANOPTIC_INSECURE_AUTH');
  assert.equal(warnings[0].message, `serve() at ${open.url}: options.auth without options.tls sends the credentials in clear text over the network; give options.tls too (docs/security.md)`);
  assert.ok(!warnings[0].message.includes(TOKEN));
});

test('a real Prometheus scrapes over TLS with a bearer token and with basic auth; a wrong token or an unknown CA fails the scrape', { timeout: 120000 }, async (t) => {
  const p = new Panopticon({ name: 'prom-tls', interval: 300 });
  const cleanups = [];
  t.after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
    p.stop();
  });
  p.on('newInterval', () => p.inc(['jobs'], 'done', 1));
  const served = await p.serve({ port: 0, tls: { cert: CERT, key: KEY }, auth: { bearer: TOKEN, basic: { user: USER, password: PASSWORD } } });
  const target = [`127.0.0.1:${served.port}`];
  const tlsConfig = { ca_file: CA_FILE };
  const prometheus = await startPrometheus({
    jobs: [
      { name: 'bearer', targets: target, scheme: 'https', tls: tlsConfig, authorization: { credentials: TOKEN } },
      { name: 'basic', targets: target, scheme: 'https', tls: tlsConfig, basicAuth: { username: USER, password: PASSWORD } },
      // localhost: the name in the certificate, checked by Prometheus.
      { name: 'by-name', targets: [`localhost:${served.port}`], scheme: 'https', tls: tlsConfig, authorization: { credentials: TOKEN } },
      { name: 'wrong-token', targets: target, scheme: 'https', tls: tlsConfig, authorization: { credentials: `${TOKEN}x` } },
      { name: 'unknown-ca', targets: target, scheme: 'https', authorization: { credentials: TOKEN } },
    ],
    scrapeInterval: '500ms',
  });
  cleanups.push(() => prometheus.stop());

  let targets;
  await until(async () => {
    targets = new Map((await prometheus.targets()).map((x) => [x.labels.job, x]));
    return targets.size === 5 && [...targets.values()].every((x) => x.health !== 'unknown');
  }, 60000, 'every target scraped once').catch((e) => {
    throw new Error(`${e.message}: ${JSON.stringify([...(targets || new Map()).values()])}\n${prometheus.log()}`);
  });
  for (const job of ['bearer', 'basic', 'by-name']) {
    assert.equal(targets.get(job).health, 'up', `${job}: ${targets.get(job).lastError}`);
    assert.equal(targets.get(job).scrapeUrl, `https://${job === 'by-name' ? 'localhost' : '127.0.0.1'}:${served.port}/metrics`);
  }
  assert.equal(targets.get('wrong-token').health, 'down');
  assert.match(targets.get('wrong-token').lastError, /401 Unauthorized/);
  assert.equal(targets.get('unknown-ca').health, 'down');
  assert.match(targets.get('unknown-ca').lastError, /x509: certificate signed by unknown authority/);

  // What was scraped over TLS is what was recorded.
  await until(async () => {
    const values = await Promise.all(['bearer', 'basic'].map((job) => prometheus.query(`jobs_done_total{job="${job}"}`)));
    return values.every((v) => v.length === 1 && Number(v[0].value[1]) >= 2);
  }, 60000, 'jobs_done_total scraped over TLS by both jobs');
  const stats = serverStats(p);
  assert.ok(stats.rejectedBy.unauthorized >= 1, JSON.stringify(stats));
  assert.ok(stats.rejectedBy.tls >= 1, JSON.stringify(stats));
});

test('the live page works in a real Chromium over HTTPS with basic auth (the browser sends the credentials with every request, the event stream included)', { timeout: 120000 }, async (t) => {
  const { launch } = require('../scripts/chromium');
  require('../scripts/build-page').buildIfStale();
  const p = new Panopticon({ name: 'page-auth', interval: 300 });
  p.on('newInterval', () => p.inc(['load'], 'ticks', 3));
  let browser = null;
  t.after(async () => {
    if (browser) await browser.close();
    p.stop();
  });
  const { url } = await p.serve({ port: 0, tls: { cert: CERT, key: KEY }, auth: { basic: { user: USER, password: PASSWORD } } });
  // The CA is not in the browser's store: its certificate errors are ignored (the certificate
  // itself is checked by the other tests); the credentials are what a person would type.
  browser = await launch({ ignoreHTTPSErrors: true, httpCredentials: { username: USER, password: PASSWORD } });
  const page = await browser.context.newPage();
  const failed = [];
  page.on('response', (response) => {
    if (response.status() !== 200 && response.status() !== 401) failed.push(`${response.status()} ${response.url()}`);
  });
  await page.goto(url);
  // Live (the event stream opened) and drawing frames (the history and the stream's).
  await page.waitForFunction(() => {
    const card = document.querySelector(".card[data-key='inc load.ticks']");
    const status = document.getElementById('status');
    const lines = card && card.card.chart && card.card.chart.data.slice(1);
    return status.textContent === 'live' && lines && lines.length >= 1 && lines[0].filter((x) => x > 0).length >= 2;
  }, null, { timeout: 60000 });
  assert.deepEqual(failed, []);
  assert.ok(serverStats(p).requests >= 3);
});
