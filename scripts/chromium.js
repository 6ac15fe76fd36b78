'use strict';

// Debian's Chromium for the browser tests and the screenshot script, driven by playwright-core.
// `ensureChromium()` installs it with apt-get when /usr/bin/chromium is missing (CI machines and
// fresh developer machines: the project's files install what they need); `launch()` starts a
// headless browser with a new, empty profile that talks to nothing but the pages it is sent to.
// `node scripts/chromium.js` only installs.

const { execFileSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const EXECUTABLE = '/usr/bin/chromium';

// No sandbox (root in CI), no GPU, and none of Chromium's own traffic (updates, sync, QUIC
// probes): the tests must reach only the loopback server they test.
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

function run(command, args) {
  console.error(`[chromium] ${command} ${args.join(' ')}`);
  execFileSync(command, args, {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
}

/** Returns the path of Chromium, installing Debian's package first when it is missing. */
function ensureChromium() {
  if (fs.existsSync(EXECUTABLE)) return EXECUTABLE;
  if (process.platform !== 'linux' || typeof process.getuid !== 'function' || process.getuid() !== 0) {
    throw new Error(`${EXECUTABLE} is missing: install Debian's chromium package (apt-get install chromium) and run again`);
  }
  run('apt-get', ['update']);
  run('apt-get', ['install', '-y', '--no-install-recommends', 'chromium']);
  if (!fs.existsSync(EXECUTABLE)) throw new Error(`apt-get installed chromium but ${EXECUTABLE} is still missing`);
  return EXECUTABLE;
}

/**
 * Starts headless Chromium with a new profile folder (removed by `close()`). Resolves with
 * `{ context, close }`: `context` is playwright-core's BrowserContext.
 */
async function launch() {
  const executablePath = ensureChromium();
  const { chromium } = require('playwright-core');
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'panoptic-chromium-'));
  let context;
  try {
    context = await chromium.launchPersistentContext(profile, { executablePath, headless: true, args: ARGS });
  } catch (error) {
    fs.rmSync(profile, { recursive: true, force: true });
    throw error;
  }
  const close = async () => {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  };
  return { context, close };
}

module.exports = { ensureChromium, launch, EXECUTABLE };

if (require.main === module) console.log(ensureChromium());
