'use strict';

// Takes docs/live-page.png, the picture of the live page in README.md and docs/live-page.md: runs
// the demo (a real cluster under load, examples/demo.js), opens its page in headless Chromium once
// it holds enough intervals to draw lines, and saves a screenshot of the whole page.
//   node scripts/screenshot.js [--out docs/live-page.png] [--intervals 40]

const { execFileSync, spawn } = require('child_process');
const fs = require('fs');
const path = require('path');
const { launch } = require('./chromium');

const root = path.join(__dirname, '..');
const INTERVAL = 500; // ms: the demo's delivery interval while the picture is taken

function args(argv) {
  const out = { out: path.join(root, 'docs', 'live-page.png'), intervals: 40 };
  for (let i = 0; i < argv.length; i += 2) {
    const [name, value] = [argv[i], argv[i + 1]];
    if (name === '--out' && value) out.out = path.resolve(value);
    else if (name === '--intervals' && Number.isInteger(Number(value)) && Number(value) > 0) out.intervals = Number(value);
    else throw new Error(`usage: node scripts/screenshot.js [--out file.png] [--intervals n] (got ${JSON.stringify(name)})`);
  }
  return out;
}

/** Starts the demo; resolves with its process and the page's URL from its output. */
function startDemo(seconds) {
  const demo = spawn(process.execPath, ['examples/demo.js', '--interval', String(INTERVAL), '--duration', String(seconds)], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (chunk) => {
      text += chunk;
      const match = /^live page: (\S+)$/m.exec(text);
      if (match) {
        demo.stdout.removeListener('data', onData);
        demo.stdout.resume(); // the tables are not needed
        resolve({ demo, url: match[1] });
      }
    };
    demo.stdout.setEncoding('utf8');
    demo.stdout.on('data', onData);
    demo.once('exit', (code) => reject(new Error(`the demo exited (${code}) before printing its page's URL:\n${text}`)));
  });
}

async function main() {
  const options = args(process.argv.slice(2));
  execFileSync(process.execPath, [path.join(__dirname, 'prepare.js')], { cwd: root, stdio: 'inherit' });
  // Long enough for the intervals wanted, with room for a slow start; stopped as soon as done.
  const { demo, url } = await startDemo(Math.ceil((options.intervals * INTERVAL) / 1000) + 120);
  const exited = new Promise((resolve) => demo.once('exit', resolve));
  const browser = await launch();
  try {
    const page = await browser.context.newPage();
    await page.setViewportSize({ width: 1400, height: 900 });
    const errors = [];
    page.on('console', (message) => { if (message.type() === 'error') errors.push(message.text()); });
    page.on('pageerror', (error) => errors.push(error.message));
    await page.goto(url);
    // The demo's HTTP series and two of its runtime metrics (the others are many, and alike).
    await page.fill('#filter', "name LIKE 'http.%' OR name LIKE 'load.%' OR name = 'nodejs.eventloop_lag_seconds' OR name = 'process.resident_memory_bytes'");
    await page.press('#filter', 'Enter');
    // Enough intervals for lines, and every on-screen chart drawn from the latest one.
    await page.waitForFunction((n) => {
      const frames = Number(document.body.dataset.frames);
      const cards = [...document.querySelectorAll('.card')];
      return frames >= n && document.querySelector('tr[data-process="2"].alive') && cards.length >= 8 &&
        cards.slice(0, 6).every((card) => card.dataset.drawn === document.body.dataset.timeStamp);
    }, options.intervals, { timeout: options.intervals * INTERVAL + 60000, polling: 200 });
    if (errors.length > 0) throw new Error(`the page logged errors:\n${errors.join('\n')}`);
    fs.mkdirSync(path.dirname(options.out), { recursive: true });
    await page.screenshot({ path: options.out, fullPage: true });
    console.log(`saved ${path.relative(process.cwd(), options.out)}`);
  } finally {
    await browser.close();
    demo.kill('SIGINT'); // the demo's own clean shutdown
    await exited;
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
