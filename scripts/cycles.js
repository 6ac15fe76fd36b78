'use strict';

// Import cycles among the core's Rust modules and among the JS files of the package
// (ARCHITECTURE.md: one direction of dependency). `node scripts/cycles.js` prints the module
// graph's cycles and exits 1 when there is one; __test__/architecture.test.js runs it.
//
// A Rust module depends on another when its code (not its comments, not its #[cfg(test)] part)
// names it by path (`crate::a::b`, `super::c`); a parent declaring a child (`mod c;`) is not a
// dependency. A JS file depends on the files it require()s.

const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');

function files(dir, test) {
  const out = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...files(full, test));
    else if (test(entry.name)) out.push(full);
  }
  return out;
}

/** The Rust modules under `src` (names like `gather::delivery`) and whom each names. */
function rustGraph(src) {
  const modules = new Map();
  for (const file of files(src, (f) => f.endsWith('.rs'))) {
    const parts = path.relative(src, file).slice(0, -3).split(path.sep);
    if (parts[parts.length - 1] === 'mod' || parts[parts.length - 1] === 'lib') parts.pop();
    let code = fs.readFileSync(file, 'utf8');
    const tests = code.indexOf('#[cfg(test)]');
    if (tests >= 0) code = code.slice(0, tests);
    code = code.split('\n').map((line) => line.split('//')[0]).join('\n');
    const named = new Set();
    for (const m of code.matchAll(/\bcrate::([a-z_]+(?:::[a-z_]+)*)/g)) named.add(m[1].split('::'));
    for (const m of code.matchAll(/\bsuper::((?:super::)*)([a-z_]+)/g)) {
      const up = 1 + m[1].split('super::').length - 1;
      named.add([...parts.slice(0, parts.length - up), m[2]]);
    }
    modules.set(parts.join('::'), named);
  }
  // A path names the longest module it starts with.
  const resolve = (segments) => {
    for (let n = segments.length; n > 0; n--) {
      const name = segments.slice(0, n).join('::');
      if (modules.has(name)) return name;
    }
    return undefined;
  };
  const graph = new Map();
  for (const [name, named] of modules) {
    const deps = new Set();
    for (const segments of named) {
      const dep = resolve(segments);
      if (dep !== undefined && dep !== name && dep !== '') deps.add(dep);
    }
    graph.set(name, deps);
  }
  return graph;
}

/** The JS files of the package (relative paths) and the files each require()s. */
function jsGraph() {
  const sources = [
    ...['index.js', 'metrix.js'].map((f) => path.join(root, f)),
    ...files(path.join(root, 'lib'), (f) => f.endsWith('.js')),
  ];
  const graph = new Map();
  for (const file of sources) {
    const deps = new Set();
    const code = fs.readFileSync(file, 'utf8');
    for (const m of code.matchAll(/require\('(\.{1,2}\/[^']+)'\)/g)) {
      let target = path.resolve(path.dirname(file), m[1]);
      if (!target.endsWith('.js') && !target.endsWith('.json')) target += fs.existsSync(`${target}.js`) ? '.js' : '/index.js';
      if (target.endsWith('.js')) deps.add(path.relative(root, target));
    }
    graph.set(path.relative(root, file), deps);
  }
  return graph;
}

/** The strongly connected components of more than one node (Tarjan). */
function cycles(graph) {
  let counter = 0;
  const index = new Map();
  const low = new Map();
  const stack = [];
  const onStack = new Set();
  const found = [];
  const visit = (v) => {
    index.set(v, counter);
    low.set(v, counter);
    counter += 1;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) || []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v), index.get(w)));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component = [];
      let w;
      do {
        w = stack.pop();
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1) found.push(component.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

/** Every cycle, as `{ graph: 'rust' | 'js', modules }`. */
function allCycles() {
  return [
    ...cycles(rustGraph(path.join(root, 'crates', 'panoptic-core', 'src'))).map((modules) => ({ graph: 'rust', modules })),
    ...cycles(jsGraph()).map((modules) => ({ graph: 'js', modules })),
  ];
}

module.exports = { allCycles, rustGraph, jsGraph, cycles };

if (require.main === module) {
  const found = allCycles();
  for (const { graph, modules } of found) console.log(`${graph}: ${modules.join(' <-> ')}`);
  if (found.length > 0) process.exit(1);
  console.log('no import cycle');
}
