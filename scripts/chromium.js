'use strict';

// Debian's Chromium for the browser tests and the screenshot script, driven by playwright-core:
// `launch()` starts a headless browser with a new, empty profile that talks to nothing but the
// pages it is sent to (installed by scripts/backends.js when missing: CI machines and fresh
// developer machines).

const fs = require('fs');
const os = require('os');
const path = require('path');
const { ensure, CHROMIUM } = require('./backends');

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

/**
 * Starts headless Chromium with a new profile folder (removed by `close()`). Resolves with
 * `{ context, close }`: `context` is playwright-core's BrowserContext. `options` are more of its
 * context options (e.g. `httpCredentials`, what a person types when the browser asks for them).
 */
async function launch(options = {}) {
  ensure('chromium');
  const { chromium } = require('playwright-core');
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'panoptic-chromium-'));
  let context;
  try {
    context = await chromium.launchPersistentContext(profile, { ...options, executablePath: CHROMIUM, headless: true, args: ARGS });
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

module.exports = { launch };
