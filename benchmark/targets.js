'use strict';

// The project's performance targets, judged the same way by every part (hotpath.js,
// collection.js, memory.js, exposition.js, cardinality.js) and printed together at the end of
// `npm run bench`.

const { fmt } = require('./stats');

/** A measured number in its unit: 'x' (a ratio), 'ms' or 'B' (bytes). */
function show(value, unit) {
  if (!Number.isFinite(value)) return '-';
  if (unit === 'x') return `${value >= 10 ? value.toFixed(0) : value.toFixed(2)}x`;
  if (unit === 'B') return value >= 10240 ? `${(value / 1024).toFixed(1)} KiB` : `${value.toFixed(0)} B`;
  return `${fmt(value)} ${unit}`;
}

/**
 * The verdict on one target: `measured` must be at most `max` or at least `min`. `by` says how
 * far a missed target is, as a factor (measured / max, or min / measured); 1 when met.
 */
function judge(target, measured, { max, min, unit }) {
  const bound = max !== undefined ? max : min;
  const ok = max !== undefined ? measured <= max : measured >= min;
  const by = !Number.isFinite(measured) ? NaN : max !== undefined ? measured / max : min / measured;
  const rule = `${max !== undefined ? '<=' : '>='} ${show(bound, unit)}`;
  let verdict;
  if (!Number.isFinite(measured)) verdict = 'not measured';
  else if (ok) verdict = 'met';
  else verdict = `missed by ${show(by, 'x')}`;
  return { target, measured, unit, rule, met: Number.isFinite(measured) && ok, by: ok ? 1 : by, verdict };
}

/** The targets as a markdown table. */
function table(targets) {
  return [
    '| target | measured | rule | verdict |',
    '| --- | ---: | ---: | --- |',
    ...targets.map((t) => `| ${t.target} | ${show(t.measured, t.unit)} | ${t.rule} | ${t.met ? 'met' : `**${t.verdict}**`} |`),
  ].join('\n');
}

module.exports = { judge, table, show };
