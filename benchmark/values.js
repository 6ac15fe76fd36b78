'use strict';

// Values the benchmarks record, precomputed so that they measure recording, not Math.random:
// latency-like integers, log-uniform in [1, 100000], from a fixed-seed LCG (reproducible).
// Index with `i & MASK`.

const MASK = 1023;
const VALUES = new Float64Array(MASK + 1);
let s = 0x2545f491;
for (let i = 0; i <= MASK; i++) {
  s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
  VALUES[i] = Math.max(1, Math.round(Math.exp((s / 2 ** 32) * Math.log(100000))));
}

module.exports = { MASK, VALUES };
