'use strict';

// Type tests' tools (types.test.js, metrix-types.test.js): running tsc on files with the project's
// type-test options, and checking that a file of deliberate mistakes fails on each of its lines.

const assert = require('node:assert/strict');
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const root = path.join(__dirname, '..');
const tsc = require.resolve('typescript/bin/tsc');

/**
 * Runs tsc on `files` (`[path]`, or `[name, text]` to write `text` in a temporary folder first)
 * with __test__/types/tsconfig.json's options; returns its status and output.
 */
function typeCheck(t, files) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'panoptic-types-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const written = files.map(([name, text]) => {
    if (text !== undefined) fs.writeFileSync(path.join(dir, name), text);
    return name;
  });
  fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({
    extends: path.join(__dirname, 'types', 'tsconfig.json'),
    // @types/node from this repository.
    compilerOptions: { typeRoots: [path.join(root, 'node_modules', '@types')] },
    files: written,
  }));
  const r = spawnSync(process.execPath, [tsc, '-p', dir, '--pretty', 'false'], { cwd: root, encoding: 'utf8', timeout: 120000 });
  if (r.error) throw r.error;
  return { status: r.status, out: r.stdout + r.stderr };
}

/**
 * Asserts that tsc's output `out` reports an error on each of `badLines` of bad.ts (written after
 * `headerLines` lines), and nowhere else.
 */
function assertEachLineRejected(out, headerLines, badLines) {
  const errors = out.split('\n').filter((l) => /error TS\d+/.test(l));
  assert.ok(errors.every((l) => l.includes('bad.ts(')), `errors outside bad.ts:\n${out}`);
  const reported = new Set(errors.map((l) => Number(/bad\.ts\((\d+),/.exec(l)[1])));
  badLines.forEach((code, i) => {
    const line = headerLines + i + 1;
    assert.ok(reported.has(line), `no error reported for line ${line}: ${code}\n${out}`);
  });
  assert.equal(reported.size, badLines.length, `errors on unexpected lines:\n${out}`);
}

module.exports = { root, typeCheck, assertEachLineRejected };
