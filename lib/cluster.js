'use strict';

// Carrying a cluster worker's collected intervals to the master's matching instance.
// Until the binary snapshot transport lands, this is panopticon 0.3.0's scheme (one JSON message
// per interval, instances matched by construction order) in a namespaced message: the master
// only reads messages marked `__panoptic`, and ignores everyone else's.

const cluster = require('cluster');

const PROTOCOL = 1;

/** Master: listen to every current and future worker. Returns a function that detaches. */
function listenToWorkers(owner, collector) {
  const listeners = new Map();
  const watch = (worker) => {
    const onMessage = (msg) => {
      if (msg === null || typeof msg !== 'object' || msg.__panoptic !== PROTOCOL || msg.instance !== owner.id) return;
      if (!Number.isFinite(msg.k) || msg.data === null || typeof msg.data !== 'object') return;
      collector.receive(worker.id, msg.k, msg.data);
    };
    worker.on('message', onMessage);
    worker.once('exit', () => {
      worker.removeListener('message', onMessage);
      listeners.delete(worker);
    });
    listeners.set(worker, onMessage);
  };
  for (const worker of Object.values(cluster.workers || {})) watch(worker);
  cluster.on('fork', watch);
  return () => {
    cluster.removeListener('fork', watch);
    for (const [worker, onMessage] of listeners) worker.removeListener('message', onMessage);
    listeners.clear();
  };
}

/** Worker: send each collected interval to the master. */
function sendToMaster(owner) {
  return (collected) => {
    // With a callback, a closed channel reports an error here instead of on `process`.
    process.send({ __panoptic: PROTOCOL, instance: owner.id, k: collected.k, data: collected.data }, () => {});
  };
}

module.exports = { listenToWorkers, sendToMaster };
