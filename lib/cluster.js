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
// counted in meta.decodeErrors, never thrown.

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

/**
 * Master: listen to every current and future worker. Returns { detach, resync }: `resync(ids)` asks
 * those workers to send their series keys again.
 */
function listenToWorkers(owner, collector) {
  const listeners = new Map();
  const resync = (ids) => {
    for (const id of ids) {
      const worker = (cluster.workers || {})[id];
      if (worker && worker.isConnected()) worker.send({ __panoptic: PROTOCOL, resync: keyOf(owner) }, () => {});
    }
  };
  const watch = (worker) => {
    const onMessage = (msg) => {
      if (msg === null || typeof msg !== 'object' || msg.__panoptic === undefined) return;
      if (msg.__panoptic !== PROTOCOL || typeof msg.key !== 'string') {
        collector.receive(worker.id, undefined);
      } else if (msg.key === keyOf(owner)) {
        resync(collector.receive(worker.id, msg.snapshot, msg.thread));
      }
    };
    const onExit = () => {
      worker.removeListener('message', onMessage);
      listeners.delete(worker);
      collector.forget(worker.id);
    };
    worker.on('message', onMessage);
    worker.once('exit', onExit);
    listeners.set(worker, [onMessage, onExit]);
  };
  for (const worker of Object.values(cluster.workers || {})) watch(worker);
  cluster.on('fork', watch);
  const detach = () => {
    cluster.removeListener('fork', watch);
    for (const [worker, [onMessage, onExit]] of listeners) {
      worker.removeListener('message', onMessage);
      worker.removeListener('exit', onExit);
    }
    listeners.clear();
  };
  return { detach, resync };
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
