'use strict';

// The native binaries of the release layout (napi-rs convention): each target's
// `panoptic.<platform>.node` goes into its package folder npm/<platform>/, which `panoptic` names
// in `optionalDependencies`; the main package ships no binary.
//
//   npm run artifacts               this machine's binary: built when missing or older than a
//                                   source, then placed into npm/<platform>/
//   npm run artifacts -- --from DIR the release workflow: every target's binary, downloaded from the
//                                   build jobs into DIR, placed into its npm/<platform>/ (all the
//                                   targets of package.json's `napi.targets` must be there)
//
// Placing is `napi artifacts` of @napi-rs/cli (here restricted to this machine's target through a
// config file). The build is `napi build`; on Linux x64 with glibc it goes through cargo-zigbuild
// with the target `x86_64-unknown-linux-gnu.2.17`, so that the binary needs glibc 2.17 at most (built
// plainly here it would need this machine's glibc, 2.34+), as the napi-rs packages are. That
// portable binary is also the one the tests load (the root `panoptic.linux-x64-gnu.node`): one
// build serves both. Zig and cargo-zigbuild come from PyPI (`ziglang`, `cargo-zigbuild`), installed
// into target/zig-venv unless both are on PATH already.

const { execFileSync, execSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const root = path.join(__dirname, '..');
const BIN = 'panoptic';
// Versions verified on the project machine (2026-12): zig 0.17.1 (PyPI ziglang), cargo-zigbuild 0.24.1.
const ZIG_TOOLS = ['ziglang==0.17.1', 'cargo-zigbuild==0.24.1'];

/** The path of @napi-rs/cli's `napi` command (run with node: no shell, any OS). */
function napiCli() {
  const manifest = require.resolve('@napi-rs/cli/package.json', { paths: [root] });
  return path.join(path.dirname(manifest), require(manifest).bin.napi);
}

function mtime(file) {
  try {
    return fs.statSync(file).mtimeMs;
  } catch {
    return -Infinity;
  }
}

function newest(dir, test) {
  let latest = -Infinity;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) latest = Math.max(latest, newest(full, test));
    else if (test(entry.name)) latest = Math.max(latest, mtime(full));
  }
  return latest;
}

/** When the newest input of the native build changed (Rust sources, manifests, package.json). */
function sourcesTime() {
  return Math.max(
    newest(path.join(root, 'src'), (f) => f.endsWith('.rs')),
    newest(path.join(root, 'crates'), (f) => f.endsWith('.rs') || f === 'Cargo.toml'),
    ...['Cargo.toml', 'Cargo.lock', 'build.rs', 'package.json'].map((f) => mtime(path.join(root, f))),
  );
}

/** This machine's napi-rs target: `{ triple, platform }` (`platform` names the npm/ folder). */
function hostTarget() {
  const { platform, arch } = process;
  const musl = platform === 'linux' && !process.report.getReport().header.glibcVersionRuntime;
  const triples = {
    'linux-x64': musl ? 'x86_64-unknown-linux-musl' : 'x86_64-unknown-linux-gnu',
    'linux-arm64': musl ? 'aarch64-unknown-linux-musl' : 'aarch64-unknown-linux-gnu',
    'darwin-x64': 'x86_64-apple-darwin',
    'darwin-arm64': 'aarch64-apple-darwin',
    'win32-x64': 'x86_64-pc-windows-msvc',
  };
  const triple = triples[`${platform}-${arch}`];
  if (!triple) throw new Error(`artifacts: no napi-rs target for ${platform}-${arch}`);
  const suffix = platform === 'linux' ? (musl ? '-musl' : '-gnu') : platform === 'win32' ? '-msvc' : '';
  return { triple, platform: `${platform}-${arch}${suffix}` };
}

/** The folder of the zig tools (prepended to PATH), installed when missing; null if on PATH. */
function zigTools() {
  const has = (cmd) => {
    try {
      execSync(`${cmd} --version`, { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  };
  if (has('zig') && has('cargo-zigbuild')) return null;
  const venv = path.join(root, 'target', 'zig-venv');
  const bin = path.join(venv, process.platform === 'win32' ? 'Scripts' : 'bin');
  if (!fs.existsSync(path.join(bin, 'cargo-zigbuild'))) {
    const python = process.env.PYTHON || 'python3';
    console.error(`[artifacts] installing ${ZIG_TOOLS.join(' ')} (PyPI) into ${path.relative(root, venv)}`);
    try {
      execFileSync(python, ['-m', 'venv', venv], { stdio: 'inherit' });
      execFileSync(path.join(bin, 'pip'), ['install', '--quiet', ...ZIG_TOOLS], { stdio: 'inherit' });
    } catch (e) {
      throw new Error(`artifacts: the portable Linux build needs zig and cargo-zigbuild: ${e.message}\n` +
        `Install them (pip install ${ZIG_TOOLS.join(' ')}) or put them on PATH.`);
    }
  }
  return bin;
}

/**
 * Builds this machine's binary with `napi build` (also generating binding.js and binding.d.ts) when
 * the root binary, binding.js or the npm/<platform>/ copy is missing or older than a source, and
 * places it into npm/<platform>/. Returns the path of the placed binary.
 */
function buildIfStale() {
  const host = hostTarget();
  const file = `${BIN}.${host.platform}.node`;
  const placed = path.join(root, 'npm', host.platform, file);
  const sources = sourcesTime();
  const built = Math.min(mtime(path.join(root, file)), mtime(path.join(root, 'binding.js')), mtime(placed));
  if (built >= sources) return placed;

  const args = ['build', '--platform', '--release', '--js', 'binding.js', '--dts', 'binding.d.ts'];
  const env = { ...process.env };
  if (host.triple === 'x86_64-unknown-linux-gnu' || host.triple === 'aarch64-unknown-linux-gnu') {
    // Its own target dir: the zig and the plain (`npm run build`) builds of the same triple do not
    // share cargo's cache, and in one folder each would rebuild everything after the other.
    args.push('--cross-compile', '--target', `${host.triple}.2.17`, '--target-dir', path.join('target', 'portable'));
    const bin = zigTools();
    if (bin) env.PATH = `${bin}${path.delimiter}${env.PATH}`;
  }
  console.error(`[artifacts] napi ${args.join(' ')}`);
  execFileSync(process.execPath, [napiCli(), ...args], { cwd: root, env, stdio: 'inherit' });
  place(root, host);
  return placed;
}

/**
 * `napi artifacts`: copies each `panoptic.<platform>.node` found in `dir` into npm/<platform>/ (and
 * the package root). `host` restricts it to this machine's target (a temporary config file);
 * without it, every target of package.json's `napi.targets` must be in `dir`.
 */
function place(dir, host) {
  const stage = fs.mkdtempSync(path.join(os.tmpdir(), 'panoptic-artifacts-'));
  try {
    let args = ['artifacts', '--cwd', root, '--output-dir', dir];
    if (host) {
      // The binary alone in a folder: napi artifacts walks all of its output dir (here the root,
      // with node_modules and target).
      const file = `${BIN}.${host.platform}.node`;
      fs.mkdirSync(path.join(stage, 'out'));
      fs.copyFileSync(path.join(dir, file), path.join(stage, 'out', file));
      fs.writeFileSync(path.join(stage, 'napi.json'), JSON.stringify({ binaryName: BIN, packageName: BIN, targets: [host.triple] }));
      args = ['artifacts', '--cwd', root, '--output-dir', path.join(stage, 'out'), '--config-path', path.join(stage, 'napi.json')];
    }
    console.error(`[artifacts] napi ${args.join(' ')}`);
    execFileSync(process.execPath, [napiCli(), ...args], { cwd: root, stdio: 'inherit' });
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }
}

if (require.main === module) {
  const from = process.argv.indexOf('--from');
  if (from === -1) buildIfStale();
  else place(path.resolve(process.argv[from + 1]));
}

module.exports = { buildIfStale, hostTarget, napiCli };
