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
const { checkInflux } = require('./addon');

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
// serve()'s options (a key not listed is warned about and ignored).
const SERVE_OPTIONS = ['host', 'port', 'prefix', 'perProcess', 'history', 'buckets', 'quantiles', 'selfMetrics'];

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
  if (!Array.isArray(value)) throw new TypeError(`${where}.${name} must be an array of numbers, got ${describe(value)}`);
  value.forEach((v, i) => {
    if (typeof v !== 'number') throw new TypeError(`${where}.${name}[${i}] must be a number, got ${describe(v)}`);
  });
  return [...value];
}

/**
 * The instance options of the exports (docs/exports.md): `filter` (an expression; a SyntaxError
 * with its position when it does not compile) and `influx` (checked natively: TypeError or
 * RangeError naming `influx.<key>`). Checked on every instance, used by the delivering one.
 */
function parseExportOptions(options) {
  const out = { filter: undefined, influx: undefined };
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
  return out;
}

/** The known fields of `influx`, their types checked (null and undefined are not given). */
function influxOptions(influx) {
  const out = {};
  for (const [key, type] of Object.entries(INFLUX_TYPES)) {
    const value = influx[key];
    if (value === undefined || value === null) continue;
    if (key === 'tags') {
      if (typeof value !== 'object' || Array.isArray(value)) throw new TypeError(`influx.tags must be an object of strings, got ${describe(value)}`);
      for (const [k, v] of Object.entries(value)) {
        if (typeof v !== 'string') throw new TypeError(`influx.tags.${k} must be a string, got ${describe(v)}`);
      }
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
 * back as RangeErrors naming the field.
 */
function parseServe(options) {
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
  out.buckets = optionalArray(options, 'buckets', 'options');
  out.quantiles = optionalArray(options, 'quantiles', 'options');
  out.page = page();
  return out;
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
  const url = `http://${family === 'IPv6' ? `[${host}]` : host}:${port}/`;
  return { address: host, port, family, url };
}

module.exports = { origin, parseExportOptions, parseServe, addressOf };
