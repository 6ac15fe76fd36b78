'use strict';

// Carrying a cluster worker's closed intervals to the master's matching instance.
//
// One IPC message per instance per interval: `{ __panoptic: 1, key, snapshot }`, where `snapshot`
// is the base64 text of the native snapshot (crates/panoptic-core/src/wire.rs; a string is the
// cheapest payload for Node's JSON IPC) and `key` names the instance (see keyOf). A snapshot
// names its series by index; the keys travel once. When the master lacks them (its instance
// started after the worker's), it answers `{ __panoptic: 1, resync: key }` and the worker sends
// every key again with its next snapshot. The master only reads messages marked `__panoptic`
// (everything else is left to its other listeners), and a marked message that is malformed is
// counted in meta.decodeErrors, never thrown; a message for an instance the master does not have
// is counted in meta.unmatched and warned about.

const cluster = require('cluster');

const PROTOCOL = 1;

// Live instances of this process, to tell whether a name is unique.
const live = new Set();

function register(owner) {
  live.add(owner);
}

function unregister(owner) {
  live.delete(owner);
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

/** How an instance key reads in a warning. */
function describeKey(key) {
  return key.startsWith('name:') ? `named ${JSON.stringify(key.slice(5))}` : `number ${key.slice(3)} (by construction order: it has no unique name)`;
}

function route(worker, msg) {
  if (msg === null || typeof msg !== 'object' || msg.__panoptic === undefined) return;
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
  const onMessage = (msg) => route(worker, msg);
  const onExit = () => {
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
  if (masters.size === 1) {
    for (const worker of Object.values(cluster.workers || {})) watch(worker);
    cluster.on('fork', watch);
  }
  const detach = () => {
    if (!masters.delete(owner) || masters.size > 0) return;
    cluster.removeListener('fork', watch);
    for (const [worker, [onMessage, onExit]] of watched) {
      worker.removeListener('message', onMessage);
      worker.removeListener('exit', onExit);
    }
    watched.clear();
  };
  return { detach, resync: (ids) => resync(owner, ids) };
}

/**
 * Worker: a function that sends one snapshot (of one of its threads if given) to the master, and
 * the master's resync requests passed to `resync`. Returns { ship, detach }.
 */
function shipper(owner, resync) {
  const ship = (snapshot, thread) => {
    if (!process.connected) return;
    const msg = { __panoptic: PROTOCOL, key: keyOf(owner), snapshot };
    if (thread !== undefined) msg.thread = thread;
    // With a callback, a closed channel reports an error here instead of on `process`.
    process.send(msg, () => {});
  };
  const onMessage = (msg) => {
    if (msg !== null && typeof msg === 'object' && msg.__panoptic === PROTOCOL && msg.resync === keyOf(owner)) resync();
  };
  process.on('message', onMessage);
  return { ship, detach: () => process.removeListener('message', onMessage) };
}

module.exports = { register, unregister, uniqueName, listenToWorkers, shipper };
