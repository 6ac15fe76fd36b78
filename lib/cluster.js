'use strict';

// Carrying a cluster worker's closed intervals to the master's matching instance.
//
// The native transport (crates/panoptic-core/src/transport.rs): the master listens on a Unix
// socket in the private per-user folder (0700, the socket 0600; only its live workers' pids are
// admitted), and announces its path to each worker over Node's IPC: `{ __panoptic: 1, transport:
// path }`, in answer to the worker's `{ __panoptic: 1, hello: 1 }` (sent when a worker's instance
// starts shipping) or to its first snapshot over IPC. The worker's native thread connects, and
// from then on encodes and writes its snapshots: no JS thread touches their bytes, and the master's
// intake thread takes them as they arrive. Frames name the instance by the same key as below.
//
// The fallback, Node's IPC: one message per instance per interval, `{ __panoptic: 1, key,
// snapshot }`, where `snapshot` is the base64 text of the native snapshot (wire.rs; a string is
// the cheapest payload for Node's JSON IPC). It carries everything until the worker's connection
// is up, and everything where the native transport is not available: on platforms other than
// Linux (Windows named pipes and macOS's peer credentials can come later), when the socket
// cannot be created (warned about: PANOPTIC_TRANSPORT) or the connection fails (warned about in
// the worker: its native thread connects again, waiting longer after each failed attempt, and
// snapshots the connection could not write go over IPC, in order), or when PANOPTIC_TRANSPORT=ipc
// is in the environment.
//
// A snapshot names its series by index; the keys travel once. When the master lacks them (its
// instance started after the worker's, or a snapshot was lost), it answers `{ __panoptic: 1,
// resync: key }` over IPC and the worker sends every key again with its next snapshot. The master
// only reads messages marked `__panoptic` (everything else is left to its other listeners), and a
// marked message that is malformed is counted in meta.decodeErrors, never thrown; a message for
// an instance the master does not have is counted in meta.unmatched and warned about.

const cluster = require('cluster');
const binding = require('./addon');
const { runtimeDir } = require('./trace/protocol');
const { warn } = require('./warnings');

const PROTOCOL = 1;
const TRANSPORT = 'PANOPTIC_TRANSPORT';
// Whether to use the native transport: on Linux (SO_PEERCRED names the peer's pid), unless the
// environment forces the fallback (tests run both).
const NATIVE = process.platform === 'linux' && process.env.PANOPTIC_TRANSPORT !== 'ipc';

// Live instances of this process, to tell whether a name is unique.
const live = new Set();

function register(owner) {
  live.add(owner);
  reroute();
}

function unregister(owner) {
  live.delete(owner);
  reroute();
}

/** The name as a key (7 and '7' are the same key), if it is a string or a finite number. */
function nameKey(name) {
  return typeof name === 'string' || Number.isFinite(name) ? String(name) : undefined;
}

/** The instance's name as a key, if no other live instance of this process has the same key. */
function uniqueName(owner) {
  const key = nameKey(owner.name);
  if (key === undefined) return undefined;
  let same = 0;
  for (const other of live) if (nameKey(other.name) === key) same += 1;
  return same === 1 ? key : undefined;
}

/**
 * How a worker's instance finds the master's: by name when the name is unique among this
 * process's live instances, else by construction order, as panopticon 0.3.0.
 */
function keyOf(owner) {
  const name = uniqueName(owner);
  return name === undefined ? `id:${owner.id}` : `name:${name}`;
}

// Master: the delivering instances of this process (owner -> collector), and one 'message'
// listener per worker while there is any. One listener for all instances, so that a message for
// none of them is seen: it is counted and warned about (PANOPTIC_UNMATCHED), never dropped
// silently.
const masters = new Map();
const watched = new Map(); // worker -> its listeners [onMessage, onExit]
const announced = new WeakSet(); // workers told the transport's path
// The native transport's socket once listening (null: IPC only), and whether it was tried.
let socketPath = null;
let tried = false;

/**
 * Master: listens for the workers' native connections, once per process, when it has a worker
 * (a standalone process makes no socket).
 */
function listen() {
  if (tried || !NATIVE) return;
  tried = true;
  try {
    socketPath = binding.transportListen(runtimeDir());
    process.once('exit', () => binding.transportClose());
    reroute();
  } catch (err) {
    const [owner] = masters.keys();
    warn(owner, TRANSPORT, `${err.message}: the cluster workers' snapshots go over Node's IPC (it costs the master's event loop more)`);
  }
}

/** Master: the native transport's frames for each delivering instance's key go to it. */
function reroute() {
  for (const [owner, collector] of masters) collector.route(keyOf(owner));
}

/** Master: tells `worker` where the native transport is (once, unless it says hello again). */
function announce(worker) {
  announced.add(worker);
  if (socketPath !== null && worker.isConnected()) worker.send({ __panoptic: PROTOCOL, transport: socketPath }, () => {});
}

/** How an instance key reads in a warning. */
function describeKey(key) {
  return key.startsWith('name:') ? `named ${JSON.stringify(key.slice(5))}` : `number ${key.slice(3)} (by construction order: it has no unique name)`;
}

function route(worker, msg) {
  if (msg === null || typeof msg !== 'object' || msg.__panoptic === undefined) return;
  if (msg.__panoptic === PROTOCOL && msg.hello !== undefined) {
    announce(worker);
    return;
  }
  // A snapshot over IPC from a worker that never heard of the transport (its hello came before
  // this master listened).
  if (!announced.has(worker)) announce(worker);
  if (msg.__panoptic !== PROTOCOL || typeof msg.key !== 'string') {
    // Not routable: every instance counts it in meta.decodeErrors.
    for (const collector of masters.values()) collector.receive(worker.id, undefined);
    return;
  }
  for (const [owner, collector] of masters) {
    if (msg.key === keyOf(owner)) {
      resync(owner, collector.receive(worker.id, msg.snapshot, msg.thread));
      return;
    }
  }
  const here = [...masters.keys()].map((owner) => describeKey(keyOf(owner))).join(', ');
  const message = `cluster worker ${worker.id} (pid ${worker.process.pid}) sends snapshots for an instance ${describeKey(msg.key)}, and this master has none (its instances: ${here}). They are left out (counted in meta.unmatched). Give the worker's instance the name of the master's: instances match by name when the name is unique in each process, else by construction order.`;
  for (const collector of masters.values()) collector.unmatched(worker.id, msg.key, message);
}

/** Asks workers `ids` to send `owner`'s series keys again. */
function resync(owner, ids) {
  for (const id of ids) {
    const worker = (cluster.workers || {})[id];
    if (worker && worker.isConnected()) worker.send({ __panoptic: PROTOCOL, resync: keyOf(owner) }, () => {});
  }
}

function watch(worker) {
  listen();
  const onMessage = (msg) => route(worker, msg);
  const pid = worker.process.pid;
  // Its connections to the native transport are admitted while it lives.
  if (socketPath !== null && Number.isInteger(pid)) binding.transportAllow(pid, worker.id);
  const onExit = () => {
    if (socketPath !== null && Number.isInteger(pid)) binding.transportAllow(pid);
    worker.removeListener('message', onMessage);
    watched.delete(worker);
    for (const collector of masters.values()) collector.forget(worker.id);
  };
  worker.on('message', onMessage);
  worker.once('exit', onExit);
  watched.set(worker, [onMessage, onExit]);
}

/**
 * Master: `collector` receives the messages of every current and future worker for `owner`.
 * Returns { detach, resync }: `resync(ids)` asks those workers to send their series keys again.
 */
function listenToWorkers(owner, collector) {
  masters.set(owner, collector);
  reroute();
  if (masters.size === 1) {
    for (const worker of Object.values(cluster.workers || {})) watch(worker);
    cluster.on('fork', watch);
  }
  const detach = () => {
    if (!masters.delete(owner)) return;
    collector.route(null);
    reroute();
    if (masters.size > 0) return;
    cluster.removeListener('fork', watch);
    for (const [worker, [onMessage, onExit]] of watched) {
      worker.removeListener('message', onMessage);
      worker.removeListener('exit', onExit);
    }
    watched.clear();
  };
  return { detach, resync: (ids) => resync(owner, ids) };
}

// Worker: whether the transport's loss was warned about (once per process).
let warnedLoss = false;

/** Worker: warns once when the native transport went down or lost snapshots. */
function checkTransport(owner) {
  if (warnedLoss || !NATIVE) return;
  const { phase, reason, lost } = binding.transportState();
  if (phase !== 'down' && lost === 0) return;
  warnedLoss = true;
  const why = phase === 'down' ? `the native transport to the cluster master is down (${reason})` : 'the native transport to the cluster master fell behind';
  warn(owner, TRANSPORT, `${why}: ${lost} snapshots were lost (their intervals miss this worker's data; the master resyncs its keys); snapshots go over Node's IPC until it connects again (it retries, waiting longer after each failed attempt, up to 5 s)`);
}

/**
 * Worker: `{ key, send, detach }`: the key of `owner`'s instance on the master, a function that
 * sends one snapshot (base64 text; of one of its threads if given) over IPC, the fallback; the
 * master's resync requests are passed to `resync`, its transport's path to the native side.
 */
function shipper(owner, resync) {
  const send = (snapshot, thread) => {
    checkTransport(owner);
    if (!process.connected) return;
    const msg = { __panoptic: PROTOCOL, key: keyOf(owner), snapshot };
    if (thread !== undefined) msg.thread = thread;
    // With a callback, a closed channel reports an error here instead of on `process`.
    process.send(msg, () => {});
  };
  const onMessage = (msg) => {
    if (msg === null || typeof msg !== 'object' || msg.__panoptic !== PROTOCOL) return;
    if (msg.resync === keyOf(owner)) resync();
    if (typeof msg.transport === 'string' && NATIVE) binding.transportConnect(msg.transport);
  };
  process.on('message', onMessage);
  if (NATIVE && process.connected) process.send({ __panoptic: PROTOCOL, hello: 1 }, () => {});
  return { key: () => keyOf(owner), send, check: () => checkTransport(owner), detach: () => process.removeListener('message', onMessage) };
}

module.exports = { register, unregister, uniqueName, listenToWorkers, shipper };
