'use strict';

// index.d.ts against the code: __test__/types/example.ts must type-check, a file with type errors
// must not (so the check bites), and every member index.d.ts declares must exist at runtime (and
// nothing public must exist at runtime that it does not declare).

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { EventEmitter } = require('events');
const path = require('path');
const { root, typeCheck, assertEachLineRejected } = require('./tsc');

const example = path.join(__dirname, 'types', 'example.ts');

test('tsc type-checks __test__/types/example.ts against index.d.ts', { timeout: 150000 }, (t) => {
  const { status, out } = typeCheck(t, [[example]]);
  assert.equal(status, 0, `tsc exited ${status}:\n${out}`);
});

// Each line is a type error against index.d.ts; the test checks tsc reports every one of them.
const BAD_LINES = [
  'p.inc(5, "x");', // a path is an array, null or undefined
  'p.inc(null, "x", "1");', // n is a number
  'p.set(["a"], { id: 1 }, 1);', // an id is a string or a number
  'p.bind("inc", null, "x")("fast");', // an inc recorder takes a number
  'p.timedSample(null, "t", [1, 2, 3]);', // an hrtime is a pair
  'const i: string = p.interval;', // interval is a number
  'p.id = 3;', // readonly
  'p.on("delivery", (d) => d.meta.nope);', // no such meta field
  'Panopticon.registerMethod("x", 5);', // a logger class is a constructor
  'Panopticon.nope();', // no such static
  'new Panopticon({ persist: "yes" });', // persist is a boolean
  'p.inc(["a"], "x", 1, { status: 200 });', // tag values are strings
  'p.scope("a");', // a scope's path is an array
  'p.gauge([], "g", () => "1");', // a gauge's function gives a number
  'p.gaugeSet([], () => ({ a: "1" }));', // a gauge set's fields are numbers
  'p.gaugeSet([], () => 5);', // a gauge set's function gives an object
  'new Panopticon({ runtime: { eventLoopResolution: "5" } });', // a resolution is a number
  'new Panopticon({ runtime: { arrayBuffers: 1 } });', // a boolean
  'new Panopticon({ histogram: { reservoir: "exp" } });', // a known reservoir
  'Panopticon.trace(42);', // a probe name is a string
  'Panopticon.trace("x", 5);', // obj is an object
  'const path: number = Panopticon.trace.listen();', // listen returns the socket path
  'Panopticon.filter(5);', // an expression is a string
  'Panopticon.filter("id = \'x\'").test({ path: [], id: "x" });', // a series has a type
  'Panopticon.filter("id = \'x\'").test({ path: [], id: "x", type: "inc", process: { role: "boss" } });', // a known role
  'const n: number = Panopticon.filter("id = \'x\'").select(p).id;', // select takes a delivery
  'p.serve({ port: "9464" });', // a port is a number
  'p.serve({ buckets: { default: ["1"] } });', // bounds are numbers
  'p.serve({ buckets: 5 });', // buckets are an array or an object of arrays
  'p.serve().then((a) => a.url.toFixed());', // url is a string
  'p.serve({ tls: { cert: "x" } });', // tls needs a key too
  'p.serve({ auth: { basic: { user: "u" } } });', // basic needs a password
  'p.serve({ auth: { bearer: 42 } });', // a token is a string
  'new Panopticon({ influx: { db: "x" } });', // influx needs a url
  'new Panopticon({ filter: 3 });', // a filter is an expression
  'const b: number = p.exportStats().influx.pushedBatches;', // influx may be null
  'new Panopticon({ remoteWrite: { url: "http://h/w", labels: { job: 1 } } });', // label values are strings
  'const r: number = p.exportStats().remoteWrite.retries;', // remoteWrite may be null
  'new Panopticon({ otlp: { url: "http://h/v1/metrics", protocol: "grpc" } });', // OTLP/HTTP only
  'new Panopticon({ otlp: { url: "http://h/v1/metrics", temporality: "Delta" } });', // the spelling is exact
  'const o: number = p.exportStats().otlp.rejectedPoints;', // otlp may be null
];

test('tsc rejects code that misuses index.d.ts (the check bites)', { timeout: 150000 }, (t) => {
  const header = [
    `import Panopticon = require(${JSON.stringify(root.split(path.sep).join('/'))});`,
    'const p = new Panopticon({ interval: 1000 });',
  ];
  const { status, out } = typeCheck(t, [[example], ['bad.ts', [...header, ...BAD_LINES, ''].join('\n')]]);
  assert.notEqual(status, 0, `tsc accepted the bad file:\n${out}`);
  const errors = out.split('\n').filter((l) => /error TS\d+/.test(l));
  assert.ok(!errors.some((l) => l.includes('example.ts')), `example.ts must stay clean:\n${out}`);
  assertEachLineRejected(out, header.length, BAD_LINES);
});

// What index.d.ts declares, by hand (keep in step with it).
const DECLARED = {
  statics: { registerMethod: 'function', getLoggerMethodNames: 'function', count: 'function', _resetCount: 'function', Panopticon: 'function', trace: 'function', filter: 'function' },
  methods: { set: 'function', inc: 'function', serve: 'function', exportStats: 'function', seriesStats: 'function', collectRuntime: 'function', sample: 'function', timedSample: 'function', gauge: 'function', gaugeSet: 'function', histogram: 'function', rate: 'function', meter: 'function', bind: 'function', scope: 'function', stop: 'function' },
  // Panopticon.Scope: the logger methods, bind and scope.
  scopeMethods: ['set', 'inc', 'sample', 'timedSample', 'gauge', 'gaugeSet', 'histogram', 'rate', 'meter', 'bind', 'scope'],
  // Declared on the instance, inherited from EventEmitter at runtime.
  events: ['on', 'once', 'off', 'emit'],
  properties: { id: 'number', name: 'string', interval: 'number', scaleFactor: 'number', persist: 'boolean', endTime: 'number' },
  loggerMethods: ['set', 'inc', 'sample', 'timedSample', 'gauge', 'histogram', 'rate', 'meter'],
};

test('every member index.d.ts declares exists at runtime, and no undeclared public one', (t) => {
  const Panopticon = require('..');
  assert.equal(typeof Panopticon, 'function');

  for (const [name, type] of Object.entries(DECLARED.statics)) {
    assert.equal(typeof Panopticon[name], type, `static ${name}`);
  }
  assert.equal(Panopticon.Panopticon, Panopticon);
  assert.equal(typeof Panopticon.trace.listen, 'function');
  assert.equal(typeof Panopticon.trace.allowRemote, 'function');
  assert.deepEqual(Object.keys(Panopticon).sort(), Object.keys(DECLARED.statics).sort(), 'undeclared statics');

  const protoOwn = Object.getOwnPropertyNames(Panopticon.prototype).filter((k) => k !== 'constructor');
  assert.deepEqual(protoOwn.sort(), Object.keys(DECLARED.methods).sort(), 'undeclared prototype members');
  assert.ok(Panopticon.prototype instanceof EventEmitter);

  const before = Panopticon.count();
  const p = new Panopticon({ interval: 60000, name: 'types', scaleFactor: 1000, persist: true });
  const q = Panopticon({ interval: 60000 }); // callable without new
  t.after(() => {
    p.stop();
    q.stop();
  });
  assert.ok(p instanceof Panopticon && q instanceof Panopticon && p instanceof EventEmitter);
  assert.equal(Panopticon.count(), before + 2);

  for (const [name, type] of Object.entries(DECLARED.methods)) {
    assert.equal(typeof p[name], type, `method ${name}`);
  }
  for (const name of DECLARED.events) {
    assert.equal(typeof p[name], 'function', `method ${name}`);
  }
  for (const [name, type] of Object.entries(DECLARED.properties)) {
    assert.equal(typeof p[name], type, `property ${name}`);
  }
  assert.equal(p.id, before);
  assert.equal(q.id, before + 1);
  assert.equal(p.interval, 60000);
  assert.equal(p.scaleFactor, 1000);
  assert.equal(p.persist, true);
  assert.equal(p.endTime % 60000, 0);
  // Own public (not EventEmitter-internal `_...`) instance properties are the declared ones.
  const own = Object.keys(p).filter((k) => !k.startsWith('_'));
  assert.deepEqual(own.sort(), Object.keys(DECLARED.properties).sort(), 'undeclared instance properties');

  const names = Panopticon.getLoggerMethodNames();
  assert.ok(Array.isArray(names));
  // The built-ins come first (in panopticon 0.3.0's order, which this test does not pin).
  assert.deepEqual(names.slice(0, DECLARED.loggerMethods.length).sort(), [...DECLARED.loggerMethods].sort());
  names.push('mutated');
  assert.ok(!Panopticon.getLoggerMethodNames().includes('mutated'), 'getLoggerMethodNames returns a copy');

  for (const method of DECLARED.loggerMethods) {
    assert.equal(typeof p.bind(method, ['types'], method), 'function', `bind('${method}') returns a recorder`);
  }
  assert.equal(p.on('delivery', () => {}), p, 'on returns this');

  const scope = p.scope(['types']);
  for (const name of DECLARED.scopeMethods) assert.equal(typeof scope[name], 'function', `scope.${name}`);
  assert.deepEqual(Object.keys(scope), [], 'no public own properties on a scope');
});
