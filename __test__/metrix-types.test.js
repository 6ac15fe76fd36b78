'use strict';

// metrix.d.ts against the code: __test__/types/metrix-example.ts must type-check, a file with type
// errors must not (so the check bites), and what metrix.d.ts declares must be what the module
// exports at runtime.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');
const { root, typeCheck, assertEachLineRejected } = require('./tsc');

const example = path.join(__dirname, 'types', 'metrix-example.ts');

test('tsc type-checks __test__/types/metrix-example.ts against metrix.d.ts', { timeout: 150000 }, (t) => {
  const { status, out } = typeCheck(t, [[example]]);
  assert.equal(status, 0, `tsc exited ${status}:\n${out}`);
});

// Each line is a type error against metrix.d.ts; the test checks tsc reports every one of them.
const BAD_LINES = [
  'recorder.counter(5);', // a name is a string
  'recorder.counter("c").incr("1");', // n is a number
  'recorder.timer("t").stop();', // stop needs the id
  'recorder.scope(["a"]);', // a scope is a string
  'metrix.createAggregator(recorder, { composites: () => [] });', // composites is an array
  'new metrix.BucketedHistogram({ max: "10" });', // max is a number
  'new metrix.StreamingHistogram({ seed: "1" });', // seed is a number or a BigInt
  'new metrix.BucketedHistogram().add();', // a histogram's add takes a value
  'const n: number = metrix.createAggregator(recorder).report().counters;', // counters is a record
  'metrix.NullTimer.start = () => 1;', // null objects are read-only
  'metrix.nope();', // no such export
  'new metrix.timer.createDefault(recorder, 5);', // with new too, a name is a string
];

test('tsc rejects code that misuses metrix.d.ts (the check bites)', { timeout: 150000 }, (t) => {
  const header = [
    `import metrix = require(${JSON.stringify(path.join(root, 'metrix').split(path.sep).join('/'))});`,
    'const recorder = metrix.createRecorder();',
  ];
  const { status, out } = typeCheck(t, [[example], ['bad.ts', [...header, ...BAD_LINES, ''].join('\n')]]);
  assert.notEqual(status, 0, `tsc accepted the bad file:\n${out}`);
  assertEachLineRejected(out, header.length, BAD_LINES);
});

test('what metrix.d.ts declares exists at runtime, and nothing else is exported', () => {
  const metrix = require('../metrix.js');
  const dts = fs.readFileSync(path.join(root, 'metrix.d.ts'), 'utf8');
  const declared = [...dts.matchAll(/^export (?:const|function|class) (\w+)/gm)].map((m) => m[1]);
  assert.deepEqual(Object.keys(metrix).sort(), declared.sort());
  const methods = {
    Recorder: ['counter', 'timer', 'histogram', 'gauge', 'scope'],
    Aggregator: ['report', 'clear', 'clearCounters', 'clearHistograms', 'clearGauges'],
    BucketedHistogram: ['add', 'snapshot', 'clear'],
    StreamingHistogram: ['add', 'snapshot', 'clear'],
  };
  for (const [cls, names] of Object.entries(methods)) {
    for (const name of names) assert.equal(typeof metrix[cls].prototype[name], 'function', `${cls}.${name}`);
  }
  const recorder = metrix.createRecorder();
  assert.equal(recorder.separator, '/');
  assert.deepEqual(Object.keys(recorder.scope('a')).sort(), ['counter', 'gauge', 'histogram', 'on', 'scope', 'separator', 'timer']);
  assert.deepEqual(Object.keys(recorder.counter('c')).sort(), ['decr', 'incr']);
  assert.deepEqual(Object.keys(recorder.timer('t')).sort(), ['start', 'stop']);
  assert.deepEqual(Object.keys(recorder.histogram('h')), ['add']);
  assert.deepEqual(Object.keys(recorder.gauge('g')), ['update']);
});
