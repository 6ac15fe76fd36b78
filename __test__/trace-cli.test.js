'use strict';

// The panoptic-trace command against real traced processes (fixtures/trace-app.js), a real
// cluster, and hostile clients on a process's socket. Every process is a child of this test.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');
const { spawn } = require('child_process');
const binding = require('../binding.js');
const { runtime, Proc, startApp, stopApp, startCli, attached, CLI } = require('./trace-helpers');
const pkg = require('../package.json');

const LOCAL = `'use strict';
exports.local = (traces) => {
  traces.on('request:*', (t) => console.log('TRACE ' + JSON.stringify(t)));
};
`;

const traceLines = (cli, pid, n) => cli.lines('stdout', new RegExp(`^TRACE .*"pid":${pid}[,}]`), n);
const parse = (line) => JSON.parse(line.slice('TRACE '.length));

test('attach by pid: local handlers get whole trace objects of that process only; it exits by itself while attached', { timeout: 90000 }, async (t) => {
  const rt = runtime(t);
  const a = await startApp(t, rt, { TITLE: 'trace-a' });
  const b = await startApp(t, rt, { TITLE: 'trace-b' });
  const script = rt.script('local.js', LOCAL);
  const cli = await startCli(t, rt, ['-p', String(a.pid), script]);
  await attached(cli, a.pid);

  const lines = await traceLines(cli, a.pid, 10);
  const before = Date.now();
  const traces = lines.map(parse);
  for (const tr of traces) {
    assert.deepEqual(Object.keys(tr).slice(0, 5), ['timestamp', 'hostname', 'title', 'pid', 'name'], 'the fixed fields, first');
    assert.equal(tr.hostname, os.hostname());
    assert.equal(tr.title, 'trace-a');
    assert.equal(tr.pid, a.pid);
    assert.ok(Number.isInteger(tr.timestamp) && tr.timestamp <= before && tr.timestamp > before - 60000, `timestamp ${tr.timestamp}`);
    assert.ok(Number.isInteger(tr.id) && tr.id > 0);
    if (tr.name === 'request:end') assert.equal(tr.status, tr.id % 2 ? 200 : 404);
    else assert.equal(tr.name, 'request:start');
  }
  assert.ok(traces.some((tr) => tr.name === 'request:end') && traces.some((tr) => tr.name === 'request:start'));
  // 'other:thing' is traced as often but matches no local pattern.
  assert.ok(!cli.out.stdout.some((l) => l.includes('other:thing')));
  // b traced all along at the same rate: with a broken pid filter its lines would be interleaved.
  assert.ok(!cli.out.stdout.some((l) => l.includes(`"pid":${b.pid}`)), cli.text());
  assert.ok(!cli.out.stderr.some((l) => l.includes(`/${b.pid}`)), cli.text());

  // a stops its own work: nothing keeps it alive, attached tracer or not.
  assert.deepEqual(await stopApp(a), { code: 0, signal: null }, a.text());
  assert.ok(!fs.existsSync(path.join(rt.folder, `${a.pid}.sock`)), 'socket removed at exit');
  await cli.line('stderr', new RegExp(`^panoptic-trace: detached from [^/]+/trace-a/${a.pid}$`));
  assert.ok(fs.existsSync(path.join(rt.folder, `${b.pid}.sock`)), 'b is untouched');

  cli.child.kill('SIGINT');
  assert.deepEqual(await cli.closed, { code: 0, signal: null }, cli.text());
  assert.deepEqual(await stopApp(b), { code: 0, signal: null });
});

test('title and host filters are case-insensitive, anchored globs; a process started later is found', { timeout: 90000 }, async (t) => {
  const rt = runtime(t);
  const beta = await startApp(t, rt, { TITLE: 'trace-app-beta' });
  const script = rt.script('local.js', LOCAL);
  const cli = await startCli(t, rt, ['-t', 'TRACE-APP-A*', '--host', os.hostname().toUpperCase(), script]);
  // Started after the CLI: found through the folder.
  const alpha = await startApp(t, rt, { TITLE: 'Trace-App-Alpha' });
  await attached(cli, alpha.pid);
  await traceLines(cli, alpha.pid, 4);
  assert.ok(!cli.out.stdout.some((l) => l.includes(`"pid":${beta.pid}`)), cli.text());

  // A host pattern that matches nothing attaches to nothing, while the title one still would.
  const none = await startCli(t, rt, ['-t', 'trace-app-*', '-H', `${os.hostname()}x`, script]);
  const other = await startCli(t, rt, ['-t', 'trace-app-*', script]);
  await attached(other, alpha.pid);
  await attached(other, beta.pid);
  assert.ok(!none.out.stderr.some((l) => l.includes('attached to')), none.text());
  assert.deepEqual(none.out.stdout, []);

  for (const c of [cli, none, other]) c.child.kill('SIGTERM');
  for (const c of [cli, none, other]) assert.deepEqual(await c.closed, { code: 0, signal: null }, c.text());
  assert.deepEqual(await stopApp(alpha), { code: 0, signal: null });
  assert.deepEqual(await stopApp(beta), { code: 0, signal: null });
});

test('a tracer waiting before the process starts gets every probe from its first trace() call on, even one at exit', { timeout: 90000 }, async (t) => {
  const rt = runtime(t);
  const cli = await startCli(t, rt, ['-t', 'trace-early', rt.script('local.js', LOCAL)]);
  // The application loads panoptic and waits, without a trace() call (nor trace.listen()): it is
  // attachable from the require on, so the waiting tracer attaches now.
  const app = await startApp(t, rt, { TITLE: 'trace-early', BURST: '41' });
  // "attached" is printed on SUBSCRIBED, which the process sends once the subscription is in effect.
  await attached(cli, app.pid);
  app.child.stdin.write('go\n');
  // 41 requests in one synchronous burst, then the process exits at once: the last traces are
  // still queued when it exits, and must be delivered all the same.
  assert.deepEqual(await app.closed, { code: 0, signal: null }, app.text());
  await cli.line('stderr', new RegExp(`^panoptic-trace: detached from [^/]+/trace-early/${app.pid}$`));
  await traceLines(cli, app.pid, 82);
  cli.child.kill('SIGINT');
  assert.deepEqual(await cli.closed, { code: 0, signal: null }, cli.text());
  const traces = cli.out.stdout.filter((l) => l.startsWith('TRACE ')).map(parse);
  const ids = (name) => traces.filter((tr) => tr.name === name).map((tr) => tr.id);
  const all = Array.from({ length: 41 }, (_, i) => i + 1);
  assert.deepEqual(ids('request:start'), all, '41 of 41 request:start, in order');
  assert.deepEqual(ids('request:end'), all, '41 of 41 request:end, in order');
  assert.equal(traces.length, 82);
  assert.ok(!cli.out.stderr.some((l) => l.includes('dropped')), cli.text());
  assert.ok(!app.out.stderr.some((l) => l.includes('not delivered')), app.text());
});

test('a process that exits with traces its tracer has not read waits 1 s at most, then says how many were lost', { timeout: 90000 }, async (t) => {
  const rt = runtime(t);
  const app = await startApp(t, rt, { TITLE: 'trace-unread', BURST: '5000' });
  // A raw tracer that subscribes and then stops reading, until the process has exited.
  const socket = net.connect(path.join(rt.folder, `${app.pid}.sock`));
  t.after(() => socket.destroy());
  const decoder = new binding.TraceDecoder();
  const frames = [];
  let waiting = true;
  const subscribed = new Promise((resolve) => {
    socket.on('data', (chunk) => {
      frames.push(...decoder.push(chunk));
      if (waiting && frames.some((f) => f.kind === 3)) {
        waiting = false;
        socket.pause();
        resolve();
      }
    });
  });
  socket.write(binding.traceEncode(1, JSON.stringify({ patterns: ['request:*'], remote: null, title: null, host: null })));
  await subscribed;
  // 10000 traces of about 100 bytes: far more than the socket buffers hold.
  const started = Date.now();
  app.child.stdin.write('go\n');
  assert.deepEqual(await app.closed, { code: 0, signal: null }, app.text());
  const m = /^panoptic: (\d+) trace messages were not delivered: the tracer did not read them within 1 s of this process's exit$/.exec(app.out.stderr.join('\n'));
  assert.ok(m && Number(m[1]) > 0 && Number(m[1]) < 10000, app.text());
  // The exit waited for the tracer, but not for long.
  const took = Date.now() - started;
  assert.ok(took >= 1000 && took < 20000, `${took} ms`);
  // What was written before is still readable, and with the count accounts for every trace.
  const closed = new Promise((resolve) => socket.on('close', resolve));
  socket.resume();
  await closed;
  const delivered = frames.filter((f) => f.kind === 4).length;
  assert.ok(!frames.some((f) => f.kind === 8), 'nothing was dropped for lack of room in the queue');
  assert.equal(delivered + Number(m[1]), 10000);
});

const REMOTE = `'use strict';
exports.local = (traces) => {
  traces.on('counts', (pid, counts) => console.log('COUNTS ' + pid + ' ' + JSON.stringify(counts)));
};
exports.remote = (traces) => {
  const counts = {};
  traces.on('request:end', (t) => { counts[t.status] = (counts[t.status] || 0) + 1; });
  const timer = setInterval(() => traces.emit('counts', process.pid, counts), 50);
  // Resolvable from the traced application (its main module's folder), not from here.
  console.log('dep answers ' + require('./trace-dep').answer);
  console.error('an error line\\nand a second one');
  console.dir({ top: { deep: { deeper: true } } }, { depth: 0 });
  traces.on('cleanup', () => {
    clearInterval(timer);
    console.log('cleanup ran');
  });
};
`;

test('remote code: map/reduce with emit, console.log/error/dir prefixed, require from the app, cleanup on exit', { timeout: 90000 }, async (t) => {
  const rt = runtime(t);
  const app = await startApp(t, rt, { TITLE: 'trace-remote', PANOPTIC_TRACE_REMOTE: '1' });
  const cli = await startCli(t, rt, [rt.script('remote.js', REMOTE)]);
  const prefix = `${os.hostname()}/trace-remote/${app.pid} >> `;
  await cli.line('stderr', new RegExp(`^panoptic-trace: attached to .*/${app.pid} \\(remote code running\\)$`));
  await cli.line('stdout', new RegExp(`^${escape(prefix)}dep answers 42$`));
  await cli.lines('stderr', new RegExp(`^${escape(prefix)}(an error line|and a second one)$`), 2);
  await cli.line('stdout', new RegExp(`^${escape(prefix)}\\{ top: \\[Object\\] \\}$`));

  // Counts reduced remotely keep growing: the remote handlers run on every request:end.
  const counts = await cli.until('stdout', (lines) => {
    const last = lines.filter((l) => l.startsWith(`COUNTS ${app.pid} `)).map((l) => JSON.parse(l.split(' ')[2])).pop();
    return last && last[200] >= 3 && last[404] >= 3 ? last : null;
  }, 'counts of both statuses');
  assert.deepEqual(Object.keys(counts).sort(), ['200', '404']);
  assert.ok(!cli.out.stdout.some((l) => l.startsWith('TRACE')), 'remote-only patterns send no trace objects');

  cli.child.kill('SIGINT');
  assert.deepEqual(await cli.closed, { code: 0, signal: null }, cli.text());
  assert.ok(cli.out.stdout.includes(`${prefix}cleanup ran`), cli.text());
  assert.deepEqual(await stopApp(app), { code: 0, signal: null }, app.text());
});

test('remote code is refused without opt-in; the local part still runs', { timeout: 90000 }, async (t) => {
  const rt = runtime(t);
  const app = await startApp(t, rt, { TITLE: 'trace-closed' });
  const script = rt.script('both.js', `${LOCAL}exports.remote = (traces) => { console.log('REMOTE RAN'); };\n`);
  const cli = await startCli(t, rt, [script]);
  const refusal = await cli.line('stderr', new RegExp(`^panoptic-trace: .*/${app.pid} refused the remote code: (.*)$`));
  assert.equal(refusal[1], 'this process does not run remote code: start it with PANOPTIC_TRACE_REMOTE=1, or call trace.allowRemote() in it');
  await cli.line('stderr', new RegExp(`attached to .*/${app.pid} \\(local only\\)$`));
  await traceLines(cli, app.pid, 2);
  assert.ok(!cli.out.stdout.some((l) => l.includes('REMOTE RAN')));
  cli.child.kill('SIGINT');
  assert.deepEqual(await cli.closed, { code: 0, signal: null }, cli.text());
  assert.deepEqual(await stopApp(app), { code: 0, signal: null }, app.text());
});

test('errors of remote code are reported to the CLI and the application carries on', { timeout: 90000 }, async (t) => {
  const rt = runtime(t);
  const app = await startApp(t, rt, { TITLE: 'trace-throws', ALLOW_REMOTE: '1' });
  const script = rt.script('throws.js', `'use strict';
exports.remote = (traces) => {
  traces.on('request:end', (t) => { if (t.id % 10 === 0) throw new Error('handler failed on ' + t.id); });
  traces.on('request:start', async (t) => { if (t.id % 10 === 5) throw new Error('async handler failed'); });
  setTimeout(() => { throw new Error('timer failed'); }, 10);
  null.boom;
};
`);
  const cli = await startCli(t, rt, [script]);
  const err = (re) => cli.line('stderr', new RegExp(`/${app.pid} >> PANOPTIC_TRACE_REMOTE_ERROR: ${re}`));
  await err("TypeError: Cannot read properties of null \\(reading 'boom'\\)");
  await err('Error: timer failed');
  await err('Error: async handler failed');
  // Keeps failing, and keeps running: ids keep growing after the first failures.
  await cli.lines('stderr', /PANOPTIC_TRACE_REMOTE_ERROR: Error: handler failed on \d+0$/, 3);
  // Stacks point at the script's lines.
  assert.ok(cli.out.stderr.some((l) => l.endsWith('>>     at panoptic-trace remote (throws.js):6:8')), cli.text());
  assert.ok(cli.out.stderr.some((l) => l.endsWith('>>     at panoptic-trace remote (throws.js):3:64')), cli.text());
  cli.child.kill('SIGINT');
  assert.deepEqual(await cli.closed, { code: 0, signal: null }, cli.text());
  assert.deepEqual(await stopApp(app), { code: 0, signal: null }, app.text());
});

test('a reserved key, a circular object and a throwing toJSON reach the tracer as errors, never the app', { timeout: 90000 }, async (t) => {
  const rt = runtime(t);
  const app = await startApp(t, rt, { TITLE: 'trace-bad', BAD: '1' });
  const script = rt.script('bad.js', `exports.local = (traces) => { traces.on('BAD:*', (t) => console.log('GOT ' + t.name)); };\n`);
  const cli = await startCli(t, rt, [script]);
  const err = (code, re) => cli.line('stderr', new RegExp(`/${app.pid} >> ${code}: trace\\("${re}`));
  await err('PANOPTIC_TRACE_RESERVED', 'bad:reserved", obj\\): obj sets the reserved key "pid" \\(reserved: timestamp, hostname, title, pid, name\\)$');
  await err('PANOPTIC_TRACE_OBJECT', 'bad:circular", obj\\): Converting circular structure to JSON');
  await err('PANOPTIC_TRACE_OBJECT', 'bad:tojson", obj\\): boom from toJSON$');
  assert.deepEqual(cli.out.stdout, [], 'no bad object reached a handler');
  cli.child.kill('SIGINT');
  assert.deepEqual(await cli.closed, { code: 0, signal: null }, cli.text());
  assert.deepEqual(await stopApp(app), { code: 0, signal: null }, app.text());
});

test('every worker of a cluster, including ones that start after the CLI; remote reduce per worker', { timeout: 120000 }, async (t) => {
  const rt = runtime(t);
  const script = rt.script('remote.js', REMOTE);
  // 'trace-cluster-*' needs at least one character after the dash: the workers, not the primary.
  const cli = await startCli(t, rt, ['--title', 'trace-cluster-*', script]);
  const app = await startApp(t, rt, { TITLE: 'trace-cluster', CLUSTER_WORKERS: '2', ALLOW_REMOTE: '1' });
  assert.equal(app.workers.length, 2);
  for (const pid of app.workers) {
    await attached(cli, pid);
    await cli.line('stdout', new RegExp(`^COUNTS ${pid} \\{"200":\\d+,"404":\\d+\\}$`));
    await cli.line('stdout', new RegExp(`^[^/]+/trace-cluster-worker/${pid} >> dep answers 42$`));
  }
  assert.ok(!cli.out.stderr.some((l) => l.includes(`/${app.pid}`)), `the primary is not attached\n${cli.text()}`);
  cli.child.kill('SIGINT');
  assert.deepEqual(await cli.closed, { code: 0, signal: null }, cli.text());
  for (const pid of app.workers) assert.ok(cli.out.stdout.some((l) => l.endsWith(`/${pid} >> cleanup ran`)), cli.text());
  assert.deepEqual(await stopApp(app), { code: 0, signal: null }, app.text());
  assert.deepEqual(fs.readdirSync(rt.folder), [], 'every socket removed');
});

/** Sends `bytes` to `socket` and resolves with every byte received until the process closes it. */
function exchange(socketPath, bytes) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    const s = net.connect(socketPath, () => s.write(bytes));
    s.on('data', (c) => chunks.push(c));
    s.on('error', reject);
    s.on('close', () => resolve(Buffer.concat(chunks)));
  });
}

test('garbage, huge frames and bad JSON on the socket get an error and a close; the app is unharmed', { timeout: 90000 }, async (t) => {
  const rt = runtime(t);
  const app = await startApp(t, rt, { TITLE: 'trace-hostile' });
  const socket = path.join(rt.folder, `${app.pid}.sock`);
  const hello = binding.traceEncode(1, '{"patterns":["request:*"],"remote":null}');
  const cases = [
    [Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), /protocol error: frame payload of \d+ bytes exceeds the limit of 1048576 bytes/],
    [Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 1]), /exceeds the limit/],
    [Buffer.from([0, 0, 0, 2, 9, 1]), /unsupported trace protocol version 9/],
    [binding.traceEncode(4, '{"patterns":[]}'), /the first frame must be a hello/],
    [binding.traceEncode(1, 'not json'), /frame 1 does not hold JSON/],
    [binding.traceEncode(1, '{"patterns":[""],"remote":null}'), /hello needs/],
    [binding.traceEncode(1, '{"patterns":[],"remote":null,"title":""}'), /hello needs/],
    [Buffer.concat([hello, hello]), /a second hello/],
  ];
  for (const [bytes, re] of cases) {
    const reply = await exchange(socket, bytes);
    const frames = new binding.TraceDecoder().push(reply);
    const errors = frames.filter((f) => f.kind === 7).map((f) => JSON.parse(f.payload));
    assert.equal(errors.length, 1, `one error for ${bytes.toString('hex').slice(0, 40)}: ${JSON.stringify(frames)}`);
    assert.equal(errors[0].code, 'PANOPTIC_TRACE_PROTOCOL');
    assert.match(errors[0].message, re);
  }
  // Still attachable, still tracing.
  const cli = await startCli(t, rt, [rt.script('local.js', LOCAL)]);
  await traceLines(cli, app.pid, 2);
  cli.child.kill('SIGINT');
  assert.deepEqual(await cli.closed, { code: 0, signal: null }, cli.text());
  assert.deepEqual(await stopApp(app), { code: 0, signal: null }, app.text());
});

test('a peer of another user is refused by its credentials even when the modes would let it in', { timeout: 90000, skip: process.getuid() !== 0 && 'needs root to run a client as another user' }, async (t) => {
  const rt = runtime(t);
  const app = await startApp(t, rt, { TITLE: 'trace-creds' });
  const socket = path.join(rt.folder, `${app.pid}.sock`);
  // Open the gates the modes provide, so that only SO_PEERCRED stands in the way.
  fs.chmodSync(rt.xdg, 0o711);
  fs.chmodSync(rt.folder, 0o711);
  fs.chmodSync(socket, 0o666);
  const client = (uid) => new Promise((resolve) => {
    const code = `const s = require('net').connect(${JSON.stringify(socket)}, () => s.write(Buffer.from(${JSON.stringify(binding.traceEncode(1, '{}').toString('hex'))}, 'hex')));
      let n = 0; s.on('data', (c) => { n += c.length; }); s.on('error', (e) => console.log('ERROR ' + e.code)); s.on('close', () => console.log('BYTES ' + n));
      setTimeout(() => s.destroy(), 3000);`;
    const c = spawn(process.execPath, ['-e', code], { uid, gid: uid, cwd: '/', stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    c.stdout.on('data', (d) => { out += d; });
    c.on('close', () => resolve(out.trim()));
  });
  // Closed before any reply (the client's write may also fail, as the socket is gone).
  assert.match(await client(65534), /^(ERROR (EPIPE|ECONNRESET)\n)?BYTES 0$/);
  assert.match(await client(0), /^BYTES [1-9]\d*$/, 'the same client as root gets the hello');
  assert.deepEqual(await stopApp(app), { code: 0, signal: null }, app.text());
});

test('a tracer that reads too slowly never slows the app: drops are counted and reported', { timeout: 120000 }, async (t) => {
  const rt = runtime(t);
  const app = await startApp(t, rt, { TITLE: 'trace-flood', BIG: '65536', TICK: '2' });
  const script = rt.script('slow.js', `exports.local = (traces) => {
  const pause = new Int32Array(new SharedArrayBuffer(4));
  traces.on('request:end', () => Atomics.wait(pause, 0, 0, 20));
};\n`);
  const cli = await startCli(t, rt, [script]);
  const m = await cli.line('stderr', new RegExp(`/${app.pid} >> (\\d+) messages dropped: panoptic-trace did not read fast enough$`), 90000);
  assert.ok(Number(m[1]) > 0);
  cli.child.kill('SIGKILL');
  await cli.closed;
  assert.deepEqual(await stopApp(app), { code: 0, signal: null }, app.text());
});

test('command line: help, version, and clear usage errors', { timeout: 60000 }, async (t) => {
  const rt = runtime(t);
  const run = async (args) => {
    const p = new Proc(t, [CLI, ...args], rt.env);
    const status = await p.closed;
    return { code: status.code, out: p.out.stdout.join('\n'), err: p.out.stderr.join('\n') };
  };
  const help = await run(['-h']);
  assert.equal(help.code, 0);
  assert.match(help.out, /^Usage: panoptic-trace \[options\] <script>/);
  for (const opt of ['-p, --pid <pid>', '-t, --title <pattern>', '-H, --host <pattern>', '-V, --version', '-h, --help']) assert.ok(help.out.includes(opt), opt);
  assert.deepEqual(await run(['--version']), { code: 0, out: pkg.version, err: '' });
  const script = rt.script('ok.js', LOCAL);
  const errors = [
    [['-p', 'abc', script], "panoptic-trace: -p needs a process id (a positive integer), got 'abc'"],
    [['--pid=0', script], "panoptic-trace: --pid needs a process id (a positive integer), got '0'"],
    [['-t', '', script], 'panoptic-trace: -t must not be empty'],
    [[script, '-x'], 'panoptic-trace: unknown option -x'],
    [[], 'panoptic-trace: <script> is required'],
    [[script, script], `panoptic-trace: one script only, got '${script}' and '${script}'`],
    [[rt.script('empty.js', 'exports.x = 1;\n')], `panoptic-trace: ${path.join(rt.xdg, 'empty.js')} must export local(traces) and/or remote(traces) functions`],
    [[path.join(rt.xdg, 'missing.js')], `panoptic-trace: cannot load ${path.join(rt.xdg, 'missing.js')}: Error: Cannot find module`],
    [[rt.script('badpattern.js', "exports.local = (t) => t.on(5, () => {});\n")], `panoptic-trace: exports.local of ${path.join(rt.xdg, 'badpattern.js')} threw: TypeError: pattern must be a pattern string (like 'request:*'), got 5`],
  ];
  for (const [args, message] of errors) {
    const r = await run(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
    assert.ok(r.err.startsWith(message), `${args.join(' ')}:\n${r.err}`);
  }
});

function escape(s) {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
