'use strict';

// Command-line options of the benchmark scripts that run as parts of `npm run bench`
// (hotpath.js, collection.js, memory.js, cluster.js, trace.js, exposition.js): `--name value`
// pairs checked against a spec, and `--help`; and the file of their `--json` option.

const fs = require('fs');
const path = require('path');

/**
 * Parses `argv` by `spec`: { name: { value, help, check? } } where `value` is the default (its type
 * decides how the text is read: a number, a list of numbers from "1,2,3", or a string; null reads
 * a string) and `check(value)` returns an error message or nothing. Prints the usage and exits on
 * --help; throws on an unknown option or a bad value.
 */
function parseOptions(argv, spec, usage) {
  const opts = Object.fromEntries(Object.entries(spec).map(([name, s]) => [camel(name), s.value]));
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--help' || a === '-h') {
      console.log(`usage: ${usage} [options]`);
      for (const [name, s] of Object.entries(spec)) {
        const shown = Array.isArray(s.value) ? s.value.join(',') : s.value;
        console.log(`  ${`--${name} <value>`.padEnd(26)} ${s.help}${shown === null ? '' : ` (default: ${shown})`}`);
      }
      process.exit(0);
    }
    const name = a.startsWith('--') ? a.slice(2) : undefined;
    const s = name === undefined ? undefined : spec[name];
    if (s === undefined) throw new Error(`unknown argument ${a} (try --help)`);
    if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
    const text = argv[++i];
    let value = text;
    if (typeof s.value === 'number') value = Number(text);
    else if (Array.isArray(s.value)) value = text.split(',').map(Number);
    const bad = (Array.isArray(value) ? value : [value]).some((v) => typeof v === 'number' && !Number.isFinite(v));
    const problem = bad ? 'must be a number' : s.check && s.check(value);
    if (problem) throw new Error(`${a} ${problem}, got ${text}`);
    opts[camel(name)] = value;
  }
  return opts;
}

function camel(name) {
  return name.replace(/-([a-z])/g, (_, c) => c.toUpperCase());
}

/** A check for parseOptions: an integer (or every number of a list) of at least `min`. */
function integerAtLeast(min) {
  return (v) => ((Array.isArray(v) ? v : [v]).every((x) => Number.isInteger(x) && x >= min) ? undefined : `must be an integer >= ${min}`);
}

/** A check for parseOptions: an integer from `min` to `max`. */
function integerFrom(min, max) {
  return (v) => (Number.isInteger(v) && v >= min && v <= max ? undefined : `must be an integer from ${min} to ${max}`);
}

/** A check for parseOptions: a number greater than `min`. */
function above(min) {
  return (v) => (v > min ? undefined : `must be > ${min}`);
}

/** A check for parseOptions: a number of at least `min`. */
function atLeast(min) {
  return (v) => (v >= min ? undefined : `must be >= ${min}`);
}

/** A check for parseOptions: one of `choices`. */
function oneOf(choices) {
  return (v) => (choices.includes(v) ? undefined : `must be one of ${choices.join(', ')}`);
}

/** Writes `data` as indented JSON to `file` (a --json option's value), making its folder first. */
function writeJson(file, data) {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  fs.writeFileSync(file, `${JSON.stringify(data, null, 2)}\n`);
}

module.exports = { parseOptions, integerAtLeast, integerFrom, above, atLeast, oneOf, writeJson };
