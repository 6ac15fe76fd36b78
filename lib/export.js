'use strict';

// Exports (docs/exports.md): what a delivering instance (the master, or a standalone process or
// thread) serves over HTTP and pushes to back-ends. The work is native: JS only checks options and
// starts or stops things.

const fs = require('fs');
const os = require('os');
const path = require('path');
const { describe } = require('./args');
const { unknownKeys } = require('./warnings');
const { filter } = require('./filter');
const { checkInflux, checkRemoteWrite, checkOtlp } = require('./addon');
const { gcBuckets } = require('./runtime');

// The `influx` option's fields and their types (docs/influxdb.md). JS checks the types, the core
// the ranges (checkInflux); a key not listed is warned about and ignored.
const INFLUX_TYPES = {
  url: 'string',
  db: 'string',
  username: 'string',
  password: 'string',
  retentionPolicy: 'string',
  precision: 'string',
  prefix: 'string',
  perProcess: 'boolean',
  tags: 'object',
  maxQueueBytes: 'number',
  batchPoints: 'number',
  timeout: 'number',
  minBackoff: 'number',
  maxBackoff: 'number',
};
const INFLUX_OPTIONS = Object.keys(INFLUX_TYPES);
// serve()'s connection budgets (docs/serving.md): numbers here, integers in range in the core.
const BUDGETS = ['maxConnections', 'maxStreams', 'maxPerClient'];
// The `remoteWrite` option's fields and their types (docs/remote-write.md), checked the same way
// (checkRemoteWrite); its `filter` compiles here like the instance's.
const REMOTE_WRITE_TYPES = {
  url: 'string',
  headers: 'object',
  every: 'number',
  filter: 'string',
  prefix: 'string',
  buckets: 'array',
  perProcess: 'boolean',
  labels: 'object',
  maxQueueBytes: 'number',
  batchPoints: 'number',
  timeout: 'number',
  minBackoff: 'number',
  maxBackoff: 'number',
};
const REMOTE_WRITE_OPTIONS = Object.keys(REMOTE_WRITE_TYPES);
// The `otlp` option's fields and their types (docs/otlp.md), checked the same way (checkOtlp).
const OTLP_TYPES = {
  url: 'string',
  headers: 'object',
  protocol: 'string',
  temporality: 'string',
  compression: 'string',
  every: 'number',
  filter: 'string',
  prefix: 'string',
  buckets: 'array',
  perProcess: 'boolean',
  maxQueueBytes: 'number',
  batchPoints: 'number',
  timeout: 'number',
  minBackoff: 'number',
  maxBackoff: 'number',
};
const OTLP_OPTIONS = Object.keys(OTLP_TYPES);
// serve()'s options (a key not listed is warned about and ignored).
const SERVE_OPTIONS = ['host', 'port', 'prefix', 'perProcess', 'history', 'buckets', 'quantiles', 'selfMetrics', 'tls', 'auth', ...BUDGETS];

// The live page, built by scripts/build-page.js (run by `npm start`, `npm test` and `npm pack`).
const PAGE = path.join(__dirname, '..', 'page', 'dist', 'index.html');

/** What the exports say about an instance (ExportOrigin in src/engine.rs). */
function origin(owner) {
  return {
    name: typeof owner.name === 'string' ? owner.name : '',
    nameJson: nameJson(owner.name),
    id: owner.id,
    host: os.hostname(),
    title: process.title,
  };
}

/**
 * The name as `JSON.stringify(delivery)` writes it (/metrics.json is that text): undefined when it
 * writes none (an unset name, a function) or cannot write it (a BigInt, a cycle: then
 * JSON.stringify of the event throws too).
 */
function nameJson(name) {
  try {
    return JSON.stringify(name);
  } catch {
    return undefined;
  }
}

/** `options[name]`, an integer from `min` to `max` (a TypeError or RangeError naming it). */
function integerIn(options, name, min, max) {
  const value = options[name];
  if (typeof value !== 'number') throw new TypeError(`options.${name} must be a number, got ${describe(value)}`);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`options.${name} must be an integer from ${min} to ${max}, got ${describe(value)}`);
  }
  return value;
}

function optionalArray(options, name, where) {
  const value = options[name];
  if (value === undefined) return undefined;
  return numbers(value, `${where}.${name}`);
}

/** A copy of `value`, an array of numbers, or a TypeError naming `where`. */
function numbers(value, where) {
  if (!Array.isArray(value)) throw new TypeError(`${where} must be an array of numbers, got ${describe(value)}`);
  value.forEach((v, i) => {
    if (typeof v !== 'number') throw new TypeError(`${where}[${i}] must be a number, got ${describe(v)}`);
  });
  return [...value];
}

/**
 * `buckets` (serve(), remoteWrite, otlp; docs/prometheus.md#buckets) into `out.buckets` (every
 * histogram's bounds) and `out.namedBuckets` (layouts by the name a series has on /metrics
 * without the prefix). Given as an array: every histogram's; as an object: `default` is every
 * histogram's, any other key one metric's. An object rather than a function of the name: the
 * exporters write on native threads (a JS function would have to run on the JS thread for every
 * scrape and push), and an object's layouts are all checked when the export starts. The
 * runtime's GC histogram has prom-client's layout unless a key names it. Types are checked
 * here, ranges and names by the core (RangeErrors naming the key).
 */
function bucketLayouts(value, where, scaleFactor, out) {
  // No prototype: a key is only ever a name (`__proto__` included).
  const named = Object.create(null);
  if (Array.isArray(value)) {
    out.buckets = numbers(value, where);
  } else if (value !== undefined) {
    if (value === null || typeof value !== 'object' || ArrayBuffer.isView(value)) {
      throw new TypeError(`${where} must be an array of numbers or an object of arrays of numbers, got ${describe(value)}`);
    }
    for (const [key, bounds] of Object.entries(value)) {
      // As for every option: undefined is not given.
      if (bounds === undefined) continue;
      if (key === 'default') out.buckets = numbers(bounds, `${where}.default`);
      else named[key] = numbers(bounds, `${where}.${key}`);
    }
  }
  const gc = gcBuckets(scaleFactor);
  if (!Object.hasOwn(named, gc.name)) named[gc.name] = gc.bounds;
  out.namedBuckets = named;
}

/**
 * The instance options of the exports (docs/exports.md): `filter` (an expression; a SyntaxError
 * with its position when it does not compile), `influx`, `remoteWrite` and `otlp` (checked
 * natively: TypeError or RangeError naming `influx.<key>`, `remoteWrite.<key>`, `otlp.<key>`).
 * Checked on every instance, used by the delivering one.
 */
function parseExportOptions(options, scaleFactor) {
  const out = { filter: undefined, influx: undefined, remoteWrite: undefined, otlp: undefined };
  if (options.filter !== undefined) {
    if (typeof options.filter !== 'string') throw new TypeError(`options.filter must be a string, got ${describe(options.filter)}`);
    out.filter = filter(options.filter).expression;
  }
  if (options.influx !== undefined) {
    const influx = options.influx;
    if (influx === null || typeof influx !== 'object' || Array.isArray(influx)) {
      throw new TypeError(`options.influx must be an object, got ${describe(influx)}`);
    }
    unknownKeys(influx, INFLUX_OPTIONS, 'options.influx');
    out.influx = influxOptions(influx);
    const problem = checkInflux(out.influx);
    if (problem) throw new RangeError(problem);
  }
  if (options.remoteWrite !== undefined) {
    const given = options.remoteWrite;
    if (given === null || typeof given !== 'object' || Array.isArray(given)) {
      throw new TypeError(`options.remoteWrite must be an object, got ${describe(given)}`);
    }
    unknownKeys(given, REMOTE_WRITE_OPTIONS, 'options.remoteWrite');
    out.remoteWrite = remoteWriteOptions(given, scaleFactor);
    const problem = checkRemoteWrite(out.remoteWrite);
    if (problem) throw new RangeError(problem);
  }
  if (options.otlp !== undefined) {
    const given = options.otlp;
    if (given === null || typeof given !== 'object' || Array.isArray(given)) {
      throw new TypeError(`options.otlp must be an object, got ${describe(given)}`);
    }
    unknownKeys(given, OTLP_OPTIONS, 'options.otlp');
    out.otlp = otlpOptions(given, scaleFactor);
    const problem = checkOtlp(out.otlp);
    if (problem) throw new RangeError(problem);
  }
  return out;
}

/** The known fields of `otlp`, their types checked (null and undefined are not given). */
function otlpOptions(given, scaleFactor) {
  const out = {};
  for (const [key, type] of Object.entries(OTLP_TYPES)) {
    const value = given[key];
    if (key === 'buckets') {
      bucketLayouts(value === null ? undefined : value, 'otlp.buckets', scaleFactor, out);
      continue;
    }
    if (value === undefined || value === null) continue;
    if (key === 'headers') {
      strings(value, 'otlp.headers');
    } else if (typeof value !== type) {
      throw new TypeError(`otlp.${key} must be a ${type}, got ${describe(value)}`);
    }
    // The expression as the instance's filter compiles it (a SyntaxError with its position).
    out[key] = key === 'filter' ? filter(value).expression : value;
  }
  return out;
}

/** An object of strings (`influx.tags`, `remoteWrite.headers`, `otlp.headers`), or a TypeError naming it. */
function strings(value, where) {
  if (typeof value !== 'object' || Array.isArray(value)) throw new TypeError(`${where} must be an object of strings, got ${describe(value)}`);
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== 'string') throw new TypeError(`${where}.${k} must be a string, got ${describe(v)}`);
  }
}

/** The known fields of `remoteWrite`, their types checked (null and undefined are not given). */
function remoteWriteOptions(given, scaleFactor) {
  const out = {};
  for (const [key, type] of Object.entries(REMOTE_WRITE_TYPES)) {
    const value = given[key];
    if (key === 'buckets') {
      bucketLayouts(value === null ? undefined : value, 'remoteWrite.buckets', scaleFactor, out);
      continue;
    }
    if (value === undefined || value === null) continue;
    if (key === 'headers' || key === 'labels') {
      strings(value, `remoteWrite.${key}`);
    } else if (typeof value !== type) {
      throw new TypeError(`remoteWrite.${key} must be a ${type}, got ${describe(value)}`);
    }
    // The expression as the instance's filter compiles it (a SyntaxError with its position).
    out[key] = key === 'filter' ? filter(value).expression : value;
  }
  return out;
}

/** The known fields of `influx`, their types checked (null and undefined are not given). */
function influxOptions(influx) {
  const out = {};
  for (const [key, type] of Object.entries(INFLUX_TYPES)) {
    const value = influx[key];
    if (value === undefined || value === null) continue;
    if (key === 'tags') {
      strings(value, 'influx.tags');
    } else if (typeof value !== type) {
      throw new TypeError(`influx.${key} must be a ${type}, got ${describe(value)}`);
    }
    out[key] = value;
  }
  return out;
}

/**
 * `serve(options)` (docs/exports.md, "serve"): every field optional; errors name the field. Ranges the
 * native side knows better (bucket order, quantile range, name prefix) are checked there and come
 * back as RangeErrors naming the field. `scaleFactor` (the instance's) sets the unit of the GC
 * histogram's default layout.
 */
function parseServe(options, scaleFactor) {
  if (options === undefined || options === null) options = {};
  if (typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError(`options must be an object, got ${describe(options)}`);
  }
  unknownKeys(options, SERVE_OPTIONS, 'serve() options');
  // selfMetrics on by default: a few dozen lines per scrape, and what one needs when panoptic
  // itself is the question (memory, backlog, refused connections) is there before one thinks to
  // ask for it (docs/self-monitoring.md).
  const out = { host: '127.0.0.1', port: 9464, prefix: '', perProcess: false, history: 120, selfMetrics: true };
  if (options.host !== undefined) {
    if (typeof options.host !== 'string' || options.host === '') throw new TypeError(`options.host must be a non-empty string, got ${describe(options.host)}`);
    out.host = options.host;
  }
  if (options.port !== undefined) out.port = integerIn(options, 'port', 0, 65535);
  if (options.prefix !== undefined) {
    if (typeof options.prefix !== 'string') throw new TypeError(`options.prefix must be a string, got ${describe(options.prefix)}`);
    out.prefix = options.prefix;
  }
  if (options.perProcess !== undefined) {
    if (typeof options.perProcess !== 'boolean') throw new TypeError(`options.perProcess must be a boolean, got ${describe(options.perProcess)}`);
    out.perProcess = options.perProcess;
  }
  if (options.selfMetrics !== undefined) {
    if (typeof options.selfMetrics !== 'boolean') throw new TypeError(`options.selfMetrics must be a boolean, got ${describe(options.selfMetrics)}`);
    out.selfMetrics = options.selfMetrics;
  }
  if (options.history !== undefined) out.history = integerIn(options, 'history', 1, 100000);
  bucketLayouts(options.buckets, 'options.buckets', scaleFactor, out);
  out.quantiles = optionalArray(options, 'quantiles', 'options');
  if (options.tls !== undefined) out.tls = tlsOptions(options.tls);
  if (options.auth !== undefined) out.auth = authOptions(options.auth);
  for (const name of BUDGETS) {
    const value = options[name];
    if (value === undefined) continue;
    if (typeof value !== 'number') throw new TypeError(`options.${name} must be a number, got ${describe(value)}`);
    out[name] = value;
  }
  out.page = page();
  return out;
}

/** Throws unless `value` is a plain object; `secret`: the message says its type, not its value. */
function plainObject(value, where, secret = false) {
  if (value === null || typeof value !== 'object' || Array.isArray(value) || ArrayBuffer.isView(value)) {
    throw new TypeError(`${where} must be an object, got ${secret ? (value === null ? 'null' : typeof value) : describe(value)}`);
  }
}

/**
 * `tls: { cert, key }` (docs/security.md): PEM text, each a string or a Buffer/Uint8Array (as
 * `fs.readFileSync` gives it). Whether it is a usable certificate and key is the core's business
 * (an Error with code PANOPTIC_TLS naming the option).
 */
function tlsOptions(tls) {
  plainObject(tls, 'options.tls');
  unknownKeys(tls, ['cert', 'key'], 'options.tls');
  const pem = (name) => {
    const value = tls[name];
    if (typeof value === 'string') return Buffer.from(value);
    if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    throw new TypeError(`options.tls.${name} must be PEM text as a string or a Buffer, got ${describe(value)}`);
  };
  return { cert: pem('cert'), key: pem('key') };
}

/**
 * `auth: { bearer, basic: { user, password } }` (docs/security.md): their types here, what they may
 * hold in the core (RangeErrors naming the field, never showing a secret).
 */
function authOptions(auth) {
  // Someone may give a token or a password where the object goes: never shown.
  plainObject(auth, 'options.auth', true);
  unknownKeys(auth, ['bearer', 'basic'], 'options.auth');
  const out = {};
  if (auth.bearer !== undefined) {
    // The token's value is not shown: the message may end up in a log.
    if (typeof auth.bearer !== 'string') throw new TypeError(`options.auth.bearer must be a string, got ${typeof auth.bearer}`);
    out.bearer = auth.bearer;
  }
  if (auth.basic !== undefined) {
    const basic = auth.basic;
    plainObject(basic, 'options.auth.basic', true);
    unknownKeys(basic, ['user', 'password'], 'options.auth.basic');
    if (typeof basic.user !== 'string') throw new TypeError(`options.auth.basic.user must be a string, got ${describe(basic.user)}`);
    if (typeof basic.password !== 'string') throw new TypeError(`options.auth.basic.password must be a string, got ${typeof basic.password}`);
    out.basic = { user: basic.user, password: basic.password };
  }
  return out;
}

/** Whether `ip` (an address as a server reports it) is a loopback address. */
function isLoopback(ip) {
  return /^127\./.test(ip) || ip === '::1' || /^::ffff:127\./i.test(ip);
}

/** The live page's HTML, or undefined when it is not built (`/` then answers 404). */
function page() {
  try {
    return fs.readFileSync(PAGE);
  } catch (error) {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  }
}

/** The address a server is bound to, as `serve()` resolves it. */
function addressOf(server) {
  const { host, port } = server;
  const family = host.includes(':') ? 'IPv6' : 'IPv4';
  const url = `${server.https ? 'https' : 'http'}://${family === 'IPv6' ? `[${host}]` : host}:${port}/`;
  return { address: host, port, family, url };
}

module.exports = { origin, parseExportOptions, parseServe, addressOf, isLoopback };
