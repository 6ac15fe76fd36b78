'use strict';

// trace() inside one process: argument errors, the idle path, listening from require on (folder
// and socket modes, refusal of a folder that is not ours), removal of the socket at exit, worker
// threads.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { Worker } = require('worker_threads');
const { runtime, Proc } = require('./trace-helpers');

// This file's own process listens in a private folder (set before panoptic is loaded, which is
// when it starts listening).
const xdg = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'panoptic-trace-unit-')));
process.env.XDG_RUNTIME_DIR = xdg;
const { trace } = require('..');

test.after(() => fs.rmSync(xdg, { recursive: true, force: true }));

const mode = (p) => fs.statSync(p).mode & 0o777;

test('bad arguments are TypeErrors naming the argument and the value', () => {
  assert.throws(() => trace(42), { name: 'TypeError', message: 'name must be a string, got 42' });
  assert.throws(() => trace(), { name: 'TypeError', message: 'name must be a string, got undefined' });
  assert.throws(() => trace({ name: 'x' }), { name: 'TypeError', message: "name must be a string, got { name: 'x' }" });
  assert.throws(() => trace('x', 5), { name: 'TypeError', message: 'obj must be an object, null or undefined, got 5' });
  assert.throws(() => trace('x', 'str'), { name: 'TypeError', message: "obj must be an object, null or undefined, got 'str'" });
  assert.throws(() => trace('x', () => {}), { name: 'TypeError', message: /^obj must be an object, null or undefined, got \[Function/ });
});

test('loading panoptic makes the process attachable: socket and folder modes', () => {
  const folder = path.join(xdg, 'panoptic');
  const socket = path.join(folder, `${process.pid}.sock`);
  assert.ok(fs.statSync(socket).isSocket(), 'listening before any trace() call');
  assert.equal(trace.listen(), socket, 'trace.listen() gives its path');
  assert.equal(trace.listen(), socket, 'and again the same');
  assert.equal(mode(folder), 0o700);
  assert.equal(mode(socket), 0o600);
});

test('a folder that is not private is refused: require is unharmed, the first trace() warns once, trace.listen() throws until it is fixed', { timeout: 60000 }, async (t) => {
  const rt = runtime(t);
  fs.mkdirSync(rt.folder, { mode: 0o755 });
  fs.chmodSync(rt.folder, 0o755);
  const message = `refusing the trace folder ${rt.folder}: its mode is 0755, not 0700 (chmod 700 it, or remove it)`;
  const lib = JSON.stringify(path.join(__dirname, '..'));
  const warns = new Proc(t, ['-e', `
    const { trace } = require(${lib});
    console.log('LOADED');
    for (let i = 0; i < 3; i++) trace('x', { i });
    console.log('SURVIVED');
  `], rt.env);
  assert.deepEqual(await warns.closed, { code: 0, signal: null }, warns.text());
  assert.deepEqual(warns.out.stdout, ['LOADED', 'SURVIVED']);
  const warnings = warns.out.stderr.filter((l) => l.includes('this process cannot be traced'));
  assert.deepEqual(warnings.map((l) => l.replace(/^\(node:\d+\) /, '')), [`[PANOPTIC_TRACE_FOLDER] Warning: panoptic: this process cannot be traced: ${message}`], warns.text());
  assert.deepEqual(fs.readdirSync(rt.folder), [], 'no socket in a refused folder');

  const fixed = new Proc(t, ['-e', `
    const fs = require('fs');
    const { trace } = require(${lib});
    try { trace.listen(); } catch (e) { console.log(e.code + ' ' + e.message); }
    fs.chmodSync(${JSON.stringify(rt.folder)}, 0o700);
    console.log(trace.listen());
    trace('x', { i: 1 });
  `], rt.env);
  assert.deepEqual(await fixed.closed, { code: 0, signal: null }, fixed.text());
  assert.deepEqual(fixed.out.stdout, [`PANOPTIC_TRACE_FOLDER ${message}`, path.join(rt.folder, `${fixed.pid}.sock`)]);
  assert.ok(!fixed.out.stderr.some((l) => l.includes('cannot be traced')), 'the thrown error was the report: no warning');
});

test('idle (nothing attached), trace() returns at once, whatever obj holds', () => {
  const circular = {};
  circular.self = circular;
  assert.equal(trace('request:start', { id: 1 }), undefined);
  assert.equal(trace('request:end', null), undefined);
  assert.equal(trace('reserved', { pid: 1, name: 'x' }), undefined);
  assert.equal(trace('circular', circular), undefined);
  assert.equal(trace('tojson', { toJSON() { throw new Error('never called while idle'); } }), undefined);
  // Argument errors stay errors on the idle path.
  assert.throws(() => trace(7), TypeError);
});

test('trace() in a worker thread is a no-op; trace.listen() there says why it cannot', async () => {
  const code = `
    const { parentPort } = require('worker_threads');
    const { trace } = require(${JSON.stringify(path.join(__dirname, '..'))});
    trace('in:thread', { a: 1 });
    let err;
    try { trace.listen(); } catch (e) { err = { code: e.code, message: e.message }; }
    parentPort.postMessage(err);`;
  const w = new Worker(code, { eval: true });
  const [msg] = await Promise.all([new Promise((resolve) => w.once('message', resolve)), new Promise((resolve) => w.once('exit', resolve))]);
  assert.deepEqual(msg, { code: 'PANOPTIC_TRACE_THREAD', message: 'trace.listen(): only the main thread of a process can be attachable' });
});

test('a process exits by itself while attachable, and removes its socket', { timeout: 60000 }, async (t) => {
  const rt = runtime(t);
  const child = new Proc(t, ['-e', `
    require(${JSON.stringify(path.join(__dirname, '..'))});
    console.log('LISTENING ' + require('fs').readdirSync(${JSON.stringify(path.join(rt.xdg, 'panoptic'))}).join(','));
  `], rt.env);
  const status = await child.closed;
  assert.deepEqual(status, { code: 0, signal: null }, child.text());
  assert.deepEqual(child.out.stdout, [`LISTENING ${child.pid}.sock`], 'loading panoptic made it attachable');
  assert.deepEqual(fs.readdirSync(rt.folder), [], 'the socket is removed at exit');
});

test('a folder owned by another user: trace() warns once and stays idle, never throws', { timeout: 60000, skip: process.getuid() !== 0 && 'needs root to chown' }, async (t) => {
  const rt = runtime(t);
  fs.mkdirSync(rt.folder, { mode: 0o700 });
  fs.chownSync(rt.folder, 65534, 65534);
  const child = new Proc(t, ['-e', `
    const { trace } = require(${JSON.stringify(path.join(__dirname, '..'))});
    for (let i = 0; i < 3; i++) trace('x', { i });
    console.log('SURVIVED');
  `], rt.env);
  const status = await child.closed;
  assert.deepEqual(status, { code: 0, signal: null }, child.text());
  assert.deepEqual(child.out.stdout, ['SURVIVED']);
  const warnings = child.out.stderr.filter((l) => l.includes('this process cannot be traced'));
  assert.equal(warnings.length, 1, child.text());
  assert.match(warnings[0], /refusing the trace folder .*: it belongs to uid 65534, not to this user \(uid 0\)/);
  assert.deepEqual(fs.readdirSync(rt.folder), []);
});
