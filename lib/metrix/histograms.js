'use strict';

// metrix's BucketedHistogram and StreamingHistogram, their state in Rust (src/metrix.rs over
// crates/panoptic-core/src/{bucketed,frugal}.rs). `add` stores the value in a Float64Array the
// histogram owns; the array goes to Rust when it is full and before each snapshot, so a value
// costs a typed-array store instead of a napi call (~100-400 ns, DESIGN.md "Hot path physics").

const { randomBytes } = require('crypto');
const { NativeBucketed, NativeFrugal } = require('../addon');
const { describe } = require('../args.js');

// Values per trip to Rust: one napi call (~0.3 us) per 256 values is ~1 ns a value, and the
// buffer (2 KiB) stays small next to the histogram's buckets.
const BATCH = 256;

const DEFAULT_QUANTILES = [0.5, 0.9, 0.99];
const MAX_QUANTILES = 256;

function optionsOf(opts, what) {
  if (opts === undefined || opts === null) return {};
  if (typeof opts !== 'object' || Array.isArray(opts)) {
    throw new TypeError(`${what} options must be an object, got ${describe(opts)}`);
  }
  return opts;
}

/** A positive finite number; undefined, null and 0 mean the default (metrix's `opts.x || default`). */
function positive(opts, key, fallback) {
  const value = opts[key];
  if (value === undefined || value === null || value === 0) return fallback;
  if (typeof value !== 'number') throw new TypeError(`opts.${key} must be a number, got ${describe(value)}`);
  if (!(Number.isFinite(value) && value > 0)) {
    throw new RangeError(`opts.${key} must be a positive finite number, got ${describe(value)}`);
  }
  return value;
}

function quantilesOf(opts) {
  const qs = opts.quantiles;
  if (qs === undefined || qs === null) return DEFAULT_QUANTILES;
  if (!Array.isArray(qs)) throw new TypeError(`opts.quantiles must be an array of numbers, got ${describe(qs)}`);
  if (qs.length > MAX_QUANTILES) throw new RangeError(`opts.quantiles has ${qs.length} quantiles, at most ${MAX_QUANTILES}`);
  qs.forEach((q, i) => {
    if (typeof q !== 'number') throw new TypeError(`opts.quantiles[${i}] must be a number, got ${describe(q)}`);
    if (!(q >= 0 && q <= 1)) throw new RangeError(`opts.quantiles[${i}] must be in [0, 1], got ${describe(q)}`);
  });
  return qs;
}

/** The seed as the two 32-bit halves NativeFrugal takes; a random one when not given. */
function seedOf(opts) {
  let seed = opts.seed;
  if (seed === undefined || seed === null) {
    const bytes = randomBytes(8);
    return [bytes.readUInt32LE(0), bytes.readUInt32LE(4)];
  }
  if (typeof seed === 'number') {
    if (!(Number.isSafeInteger(seed) && seed >= 0)) {
      throw new RangeError(`opts.seed must be an integer in [0, 2^53) or a BigInt in [0, 2^64), got ${describe(seed)}`);
    }
    seed = BigInt(seed);
  } else if (typeof seed !== 'bigint') {
    throw new TypeError(`opts.seed must be a number or a BigInt, got ${describe(seed)}`);
  } else if (seed < 0n || seed >= 1n << 64n) {
    throw new RangeError(`opts.seed must be a BigInt in [0, 2^64), got ${describe(seed)}`);
  }
  return [Number(seed >> 32n), Number(seed & 0xffffffffn)];
}

/** Builds the native histogram; options the core still refuses (too many buckets) become RangeErrors. */
function nativeOf(build) {
  try {
    return build();
  } catch (e) {
    if (e && e.code === 'PANOPTIC_BAD_OPTIONS') throw new RangeError(`opts: ${e.message}`);
    throw e;
  }
}

/** What both histograms share: the batch buffer, and snapshots in metrix's layout. */
class NativeHistogram {
  #native;
  #keys;
  #buffer = new Float64Array(BATCH);
  #length = 0;

  constructor(native) {
    this.#native = native;
    this.#keys = native.keys;
  }

  /** Adds a value: a finite number (metrix threw on NaN; Infinity is refused too). */
  add(x) {
    if (!Number.isFinite(x)) {
      if (typeof x !== 'number') throw new TypeError(`x must be a number, got ${describe(x)}`);
      throw new RangeError(`x must be a finite number, got ${describe(x)}`);
    }
    this.#buffer[this.#length++] = x;
    if (this.#length === BATCH) this.#flush();
  }

  #flush() {
    if (this.#length === 0) return;
    this.#native.addBatch(this.#buffer, this.#length);
    this.#length = 0;
  }

  /** `{ min, max, [overflow], p50, ... }`, a new object each time; `{}` when empty. */
  snapshot() {
    this.#flush();
    const s = this.#native.snapshot();
    if (!s) return {};
    const snap = { min: s.min, max: s.max };
    if (s.overflow != null) snap.overflow = s.overflow;
    for (let i = 0; i < this.#keys.length; i++) snap[this.#keys[i]] = s.values[i];
    return snap;
  }

  /** Forgets every value. */
  clear() {
    this.#length = 0;
    this.#native.clear();
  }
}

/** metrix's BucketedHistogram: `{ max = 3600000, error = 0.005, quantiles = [0.5, 0.9, 0.99] }`. */
class BucketedHistogram extends NativeHistogram {
  constructor(opts) {
    const o = optionsOf(opts, 'BucketedHistogram');
    const quantiles = quantilesOf(o);
    const max = positive(o, 'max', 3600000);
    const error = positive(o, 'error', 0.005);
    super(nativeOf(() => new NativeBucketed(max, error, quantiles)));
  }
}

/** metrix's StreamingHistogram (Frugal-2U): `{ quantiles = [0.5, 0.9, 0.99], seed = random }`. */
class StreamingHistogram extends NativeHistogram {
  constructor(opts) {
    const o = optionsOf(opts, 'StreamingHistogram');
    const quantiles = quantilesOf(o);
    const [high, low] = seedOf(o);
    super(nativeOf(() => new NativeFrugal(quantiles, high, low)));
  }
}

module.exports = { BucketedHistogram, StreamingHistogram };
