'use strict';

// One direction of dependency (ARCHITECTURE.md): no import cycle among the core's Rust modules nor
// among the package's JS files (scripts/cycles.js reads the graphs from the sources).

const test = require('node:test');
const assert = require('node:assert/strict');
const { allCycles, cycles } = require('../scripts/cycles');

test('the cycle finder finds cycles, and only cycles', () => {
  const graph = new Map([
    ['a', new Set(['b'])],
    ['b', new Set(['c'])],
    ['c', new Set(['a', 'd'])],
    ['d', new Set()],
    ['e', new Set(['d'])],
  ]);
  assert.deepEqual(cycles(graph), [['a', 'b', 'c']]);
  graph.get('c').delete('a');
  assert.deepEqual(cycles(graph), []);
});

test('no import cycle in the core nor in lib/', () => {
  assert.deepEqual(allCycles(), []);
});
