'use strict';

// Warnings: what panoptic cannot use and does not throw for (docs/warnings-and-errors.md, "Warnings"). Each is an Error
// with a stable `code`. An instance emits it as 'warning' when someone listens; otherwise it goes
// to process.emitWarning (Node's channel for such things: printed once to stderr, or wherever the
// application's own 'warning' listener on `process` sends it), once per process and message, so a
// mistake repeated every interval or by every instance is heard once, not thousands of times.

// The messages given through process.emitWarning. Bounded: past the limit, warnings still reach
// instance listeners but process.emitWarning is no longer called (a program that generates
// endless distinct mistakes would otherwise grow this set without end).
const given = new Set();
const GIVEN_LIMIT = 1000;

/** Options, keys or values that panoptic ignores or replaces (a construction-time mistake). */
const UNKNOWN_OPTION = 'PANOPTIC_UNKNOWN_OPTION';
const INVALID_OPTION = 'PANOPTIC_INVALID_OPTION';
/** A data point whose value is not what its method takes. */
const INVALID_VALUE = 'PANOPTIC_INVALID_VALUE';
/** A new series past maxSeries or maxTagSets, recorded into an overflow series. */
const OVERFLOW = 'PANOPTIC_OVERFLOW';
/** serve() with credentials but without TLS, on an address other than loopback. */
const INSECURE_AUTH = 'PANOPTIC_INSECURE_AUTH';

function toProcess(code, message) {
  if (given.has(message) || given.size >= GIVEN_LIMIT) return;
  given.add(message);
  process.emitWarning(message, { code, type: 'PanopticWarning' });
}

/** Warns through `owner`'s 'warning' listeners if it has any, else through the process. */
function warn(owner, code, message) {
  if (owner !== undefined && owner.listenerCount('warning') > 0) {
    owner.emit('warning', Object.assign(new Error(message), { code }));
  } else {
    toProcess(code, message);
  }
}

/**
 * Warns (through the process: there are no listeners yet) about every key of `object` not in
 * `known`; `where` names the object as the user wrote it (`new Panopticon() options`).
 */
function unknownKeys(object, known, where) {
  for (const key of Object.keys(object)) {
    if (!known.includes(key)) {
      toProcess(UNKNOWN_OPTION, `${where}.${key} is not an option and is ignored (known: ${known.join(', ')})`);
    }
  }
}

module.exports = { warn, unknownKeys, UNKNOWN_OPTION, INVALID_OPTION, INVALID_VALUE, OVERFLOW, INSECURE_AUTH, toProcess };
