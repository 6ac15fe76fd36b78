'use strict';

// Small statistics and number formatting shared by the benchmarks (index.js, cluster.js,
// trace.js). NaN marks "not measured" and is left out.

/** The q-quantile of the measured numbers (linear interpolation); NaN when there are none. */
function quantile(xs, q) {
  const s = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}

const median = (xs) => quantile(xs, 0.5);

/** The largest measured number; NaN when there are none. */
function max(xs) {
  const measured = xs.filter((x) => !Number.isNaN(x));
  return measured.length === 0 ? NaN : Math.max(...measured);
}

const sum = (xs) => xs.reduce((a, x) => a + x, 0);

/** Three significant digits or so for a table cell ('-' when not a number), or `digits` decimals. */
function fmt(x, digits) {
  if (!Number.isFinite(x)) return '-';
  if (digits !== undefined) return x.toFixed(digits);
  if (Math.abs(x) >= 100) return x.toFixed(0);
  if (Math.abs(x) >= 10) return x.toFixed(1);
  return x.toFixed(2);
}

module.exports = { quantile, median, max, sum, fmt };
