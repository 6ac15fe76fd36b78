'use strict';

// Summarizes a V8 .cpuprofile (from `node --cpu-prof` or the inspector's Profiler domain): where
// the busy time went, by function, as self time and as inclusive time.
//
//   node benchmark/cpuprofile.js <file.cpuprofile> [--top <n>=20]
//
// Self time: samples whose top frame is the function. Inclusive time: samples with the function
// anywhere on the stack (counted once per sample even when it recurses). A native function of the
// addon (a napi method) is a frame of its own, named after the method, with no url. Busy time
// leaves out "(idle)" (the event loop waiting) and "(program)" (V8 outside any JS frame, mostly the
// embedder between tasks); "(garbage collector)" is kept: it is work the process did.

const fs = require('fs');
const path = require('path');

function keyOf(frame) {
  const name = frame.functionName || '(anonymous)';
  if (!frame.url) return name;
  let url = frame.url.replace(/^file:\/\//, '');
  const root = path.join(__dirname, '..') + path.sep;
  if (url.startsWith(root)) url = url.slice(root.length);
  return `${name} ${url}:${frame.lineNumber + 1}`;
}

/** { totalMs, busyMs, self: [[key, ms]], inclusive: [[key, ms]] }, sorted by ms, descending. */
function summarize(profile) {
  const nodes = new Map();
  for (const node of profile.nodes) nodes.set(node.id, { key: keyOf(node.callFrame), parent: null });
  for (const node of profile.nodes) {
    for (const child of node.children || []) nodes.get(child).parent = node.id;
  }
  const { samples, timeDeltas } = profile;
  const self = new Map();
  const inclusive = new Map();
  let totalUs = 0;
  for (let i = 0; i < samples.length; i++) {
    // A sample lasts until the next one (timeDeltas[i] is the gap before sample i).
    const us = i + 1 < timeDeltas.length ? Math.max(0, timeDeltas[i + 1]) : 0;
    totalUs += us;
    let id = samples[i];
    const top = nodes.get(id).key;
    self.set(top, (self.get(top) || 0) + us);
    const seen = new Set();
    while (id !== null && id !== undefined) {
      const { key, parent } = nodes.get(id);
      if (!seen.has(key)) {
        seen.add(key);
        inclusive.set(key, (inclusive.get(key) || 0) + us);
      }
      id = parent;
    }
  }
  const idle = (self.get('(idle)') || 0) + (self.get('(program)') || 0);
  const sorted = (m) => [...m]
    .filter(([k]) => k !== '(idle)' && k !== '(program)' && k !== '(root)')
    .map(([k, us]) => [k, us / 1000])
    .sort((a, b) => b[1] - a[1]);
  return {
    totalMs: totalUs / 1000,
    busyMs: (totalUs - idle) / 1000,
    idleMs: (self.get('(idle)') || 0) / 1000,
    programMs: (self.get('(program)') || 0) / 1000,
    self: sorted(self),
    inclusive: sorted(inclusive),
  };
}

/** The summary as printable lines. */
function format(summary, top = 20, label = 'profile') {
  const pct = (ms) => `${((100 * ms) / Math.max(summary.busyMs, 1e-9)).toFixed(1)}%`;
  const lines = [
    `${label}: ${summary.totalMs.toFixed(0)} ms sampled, busy ${summary.busyMs.toFixed(0)} ms ` +
      `(idle ${summary.idleMs.toFixed(0)} ms, (program) ${summary.programMs.toFixed(0)} ms left out)`,
    `  top self time (% of busy):`,
    ...summary.self.slice(0, top).map(([k, ms]) => `    ${ms.toFixed(1).padStart(9)} ms ${pct(ms).padStart(6)}  ${k}`),
    `  top inclusive time (% of busy):`,
    ...summary.inclusive.slice(0, top).map(([k, ms]) => `    ${ms.toFixed(1).padStart(9)} ms ${pct(ms).padStart(6)}  ${k}`),
  ];
  return lines;
}

module.exports = { summarize, format };

if (require.main === module) {
  const args = process.argv.slice(2);
  const i = args.indexOf('--top');
  const top = i >= 0 ? Number(args.splice(i, 2)[1]) : 20;
  if (args.length !== 1 || !(top > 0)) {
    console.error('usage: node benchmark/cpuprofile.js <file.cpuprofile> [--top <n>=20]');
    process.exit(2);
  }
  const profile = JSON.parse(fs.readFileSync(args[0], 'utf8'));
  console.log(format(summarize(profile), top, args[0]).join('\n'));
}
