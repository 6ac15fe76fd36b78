'use strict';

// The native addon, loaded through the generated loader (binding.js, never edited). When no binary
// fits this machine, binding.js throws a generic message ("Cannot find native binding. npm has a
// bug related to optional dependencies ...") that cannot help a user on a platform without a
// binary; this module throws instead an error that names what was detected, what is supported and
// what to do, with binding.js's error as its `cause`. Every module of lib/ loads the addon here.

const pkg = require('../package.json');

/** "glibc 2.39", "musl" or null (not Linux), as binding.js tells them apart. */
function detectLibc() {
  if (process.platform !== 'linux') return null;
  const report = typeof process.report?.getReport === 'function' ? process.report.getReport() : null;
  const glibc = report?.header?.glibcVersionRuntime;
  if (glibc) return `glibc ${glibc}`;
  if (report?.sharedObjects?.some((f) => f.includes('libc.musl-') || f.includes('ld-musl-'))) return 'musl';
  return 'unknown libc';
}

/** This machine's napi-rs platform name (`linux-x64-gnu`, `darwin-arm64`, `win32-x64-msvc`, ...). */
function platformName(libc) {
  const name = `${process.platform}-${process.arch}`;
  if (process.platform === 'linux') {
    if (libc === 'musl') return `${name}-musl`;
    return process.arch === 'arm' ? `${name}-gnueabihf` : `${name}-gnu`;
  }
  return process.platform === 'win32' ? `${name}-msvc` : name;
}

// The Linux gnu binaries are linked against glibc 2.17 (scripts/artifacts.js).
const GLIBC_FLOOR = '2.17';

function loadError(cause) {
  const libc = detectLibc();
  const platform = platformName(libc);
  const prefix = `${pkg.name}-`;
  const supported = Object.keys(pkg.optionalDependencies || {})
    .filter((name) => name.startsWith(prefix))
    .map((name) => name.slice(prefix.length));
  const describe = (p) => (p.endsWith('-gnu') ? `${p} (glibc >= ${GLIBC_FLOOR})` : p);
  const lines = [
    `panoptic could not load its native addon on this machine: platform ${process.platform}, arch ${process.arch}` +
      `${libc ? `, libc ${libc}` : ''} (${platform}).`,
    `Prebuilt binaries exist for: ${supported.map(describe).join(', ')}.`,
  ];
  const packageName = `${prefix}${platform}`;
  if (supported.includes(platform)) {
    let installed = false;
    try {
      require.resolve(`${packageName}/package.json`);
      installed = true;
    } catch {}
    lines.push(installed
      ? `${packageName} is installed but its binary failed to load: ${cause?.cause?.message ?? cause?.message}`
      : `Its binary comes in the optional dependency ${packageName}@${pkg.version}, which is not installed: ` +
        'install panoptic on this machine without --omit=optional / --no-optional (a lock file or node_modules ' +
        'made on another platform can lack it).');
  } else {
    lines.push(`There is no prebuilt binary for ${platform}.`);
  }
  lines.push(
    'To build it from source, with a Rust toolchain (https://rustup.rs): in a clone of ' +
      `${pkg.repository.url.replace(/^git\+/, '').replace(/\.git$/, '')}, run \`npm install\` and \`npm run build\`; ` +
      `then copy the panoptic.${platform}.node it makes next to ${require.resolve('../binding.js')}, ` +
      'or set NAPI_RS_NATIVE_LIBRARY_PATH to its path.',
  );
  const error = new Error(lines.join('\n'));
  error.code = 'PANOPTIC_NO_BINARY';
  error.cause = cause;
  return error;
}

let binding;
try {
  binding = require('../binding.js');
} catch (cause) {
  throw loadError(cause);
}

module.exports = binding;
