'use strict';

// Makes a fresh clone runnable: installs the npm dependencies when package-lock.json is newer than
// the installed tree, builds the live page (scripts/build-page.js) when it is older than its
// sources, and builds the native addon (release, scripts/artifacts.js) when it is missing or older
// than any Rust source.
// `npm start`, `npm test` and `npm run bench` run this first.

const { execSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');

function mtime(file) {
  try {
    return fs.statSync(file).mtimeMs;
  } catch {
    return -Infinity;
  }
}

function run(command) {
  console.error(`[prepare] ${command}`);
  execSync(command, { cwd: root, stdio: 'inherit' });
}

const lock = path.join(root, 'package-lock.json');
const installed = path.join(root, 'node_modules', '.package-lock.json');
// `npm install`, not `npm ci`: @napi-rs/cli pulls optional per-platform packages (@napi-rs/lzma-*)
// that some registries do not serve; npm install skips them and keeps package-lock.json as it is,
// while npm ci refuses a lock file without them. The lock file still pins every version.
if (mtime(installed) < mtime(lock)) run('npm install --no-audit --no-fund');
require('./build-page').buildIfStale(); // the live page (page/dist/index.html), after the install: it needs uplot

// The native addon (release), built when missing or older than any Rust source and placed into its
// npm/<platform>/ package: on Linux x64 the portable (glibc 2.17) binary, the one the tests load.
require('./artifacts').buildIfStale();
