'use strict';

// The cluster tests again over Node's IPC, the transport's fallback (where the native one is not
// available, or cannot be set up): the master and its workers (which inherit the environment)
// never use the native transport.

process.env.PANOPTIC_TRANSPORT = 'ipc';
require('./cluster.test.js');
require('./cluster-robustness.test.js');
