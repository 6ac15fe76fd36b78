'use strict';

// Scopes: views of a Panopticon whose logger methods and bind() put every series under a path
// prefix (`p.scope(['http']).inc(['get'], 'n', 1)` records at ['http', 'get']). Scopes nest. The
// logger methods are installed on Scope.prototype by index.js, next to Panopticon's.

const { checkPath } = require('./args');

const OWNER = Symbol('panoptic.owner');
const PREFIX = Symbol('panoptic.prefix');

class Scope {
  constructor(owner, prefix) {
    this[OWNER] = owner;
    this[PREFIX] = prefix;
  }

  /** A scope under this one's path. */
  scope(path) {
    return new Scope(this[OWNER], this[PREFIX].concat(checkPath(path)));
  }

  /** As Panopticon#gaugeSet, under this scope's path. */
  gaugeSet(path, fn) {
    this[OWNER].gaugeSet(within(this, path), fn);
  }

  /** As Panopticon#bind, under this scope's path. */
  bind(method, path, id, tags) {
    return this[OWNER].bind(method, within(this, path), id, tags);
  }
}

/** `path` under the scope's prefix (checked). */
function within(scope, path) {
  return scope[PREFIX].concat(checkPath(path));
}

/** Adds logger method `name` to every scope. */
function installOnScopes(name) {
  Scope.prototype[name] = function record(path, id, value, tags) {
    this[OWNER][name](within(this, path), id, value, tags);
  };
}

module.exports = { Scope, installOnScopes };
