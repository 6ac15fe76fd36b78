'use strict';

// Keeps every package.json in step with the root one (npm runs it as the `version` script, after
// `npm version <new>` has bumped package.json): `napi version` sets each npm/<platform>/package.json
// to the root's version; then the root's optionalDependencies name each platform package at exactly
// that version, and the platform packages take the root's repository, homepage, bugs, license,
// engines, description and keywords. Run it by hand after editing those fields.

const { execFileSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const { napiCli } = require('./artifacts');

const root = process.argv[2] ? path.resolve(process.argv[2]) : path.join(__dirname, '..');
const read = (file) => JSON.parse(fs.readFileSync(file, 'utf8'));
const write = (file, json) => fs.writeFileSync(file, `${JSON.stringify(json, null, 2)}\n`);

execFileSync(process.execPath, [napiCli(), 'version', '--cwd', root], { stdio: 'inherit' });

const rootFile = path.join(root, 'package.json');
const pkg = read(rootFile);
const platforms = fs.readdirSync(path.join(root, 'npm')).filter((p) => fs.existsSync(path.join(root, 'npm', p, 'package.json')));
pkg.optionalDependencies = Object.fromEntries(platforms.sort().map((p) => [`${pkg.name}-${p}`, pkg.version]));
write(rootFile, pkg);

const SHARED = ['description', 'keywords', 'license', 'engines', 'repository', 'homepage', 'bugs'];
for (const platform of platforms) {
  const file = path.join(root, 'npm', platform, 'package.json');
  const sub = read(file);
  for (const key of SHARED) if (pkg[key] !== undefined) sub[key] = pkg[key];
  write(file, sub);
}

// Under `npm version`, the commit it makes takes what the script staged.
if (process.env.npm_lifecycle_event === 'version') {
  execFileSync('git', ['add', 'package.json', ...platforms.map((p) => path.join('npm', p, 'package.json'))], { cwd: root, stdio: 'inherit' });
}
