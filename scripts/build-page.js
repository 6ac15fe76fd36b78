'use strict';

// Builds the live page (docs/live-page.md): page/index.html with its stylesheets and scripts
// (uPlot from node_modules, page/style.css, page/app.js) inlined into one self-contained file,
// page/dist/index.html, which `serve()` hands to the native server. The output depends only on
// the inputs (no dates, no paths): the same sources give the same bytes.
// `node scripts/build-page.js` builds; scripts/prepare.js runs it when the output is missing or
// older than an input.

const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
const page = path.join(root, 'page');
const output = path.join(page, 'dist', 'index.html');
const uplot = path.dirname(require.resolve('uplot/package.json', { paths: [root] }));

/** Every file the output is made of. */
function inputs() {
  const html = fs.readFileSync(path.join(page, 'index.html'), 'utf8');
  const referenced = [...html.matchAll(/<(?:link rel="stylesheet" href|script src)="([^"]+)"/g)]
    .map((m) => path.join(page, m[1]));
  return [path.join(page, 'index.html'), ...referenced, path.join(uplot, 'LICENSE'), __filename];
}

function read(file) {
  return fs.readFileSync(file, 'utf8');
}

function build() {
  const version = JSON.parse(read(path.join(uplot, 'package.json'))).version;
  const html = read(path.join(page, 'index.html'));
  let inlined = 0;
  const out = html
    .replace(/<link rel="stylesheet" href="([^"]+)">/g, (_, href) => {
      inlined += 1;
      // A stylesheet cannot end a <style> element early unless it holds "</style".
      return `<style>\n${read(path.join(page, href)).replace(/<\/style/gi, '<\\/style').trim()}\n</style>`;
    })
    .replace(/<script src="([^"]+)"><\/script>/g, (_, src) => {
      inlined += 1;
      return `<script>\n${read(path.join(page, src)).replace(/<\/script/gi, '<\\/script').trim()}\n</script>`;
    })
    .replace('<!-- scripts/build-page.js inlines these three files into page/dist/index.html. -->\n', '');
  if (inlined !== 4) throw new Error(`page/index.html: expected 2 stylesheets and 2 scripts to inline, found ${inlined}`);
  if (/<(?:link rel="stylesheet"|script src)=/.test(out)) throw new Error('page/index.html: an asset was left un-inlined');
  // uPlot's MIT license asks for its notice in copies.
  const notice = `<!-- Built by scripts/build-page.js from page/. Includes uPlot ${version}:\n${read(path.join(uplot, 'LICENSE')).trim()}\n-->\n`;
  const text = out.replace('<!doctype html>\n', () => `<!doctype html>\n${notice}`);
  fs.mkdirSync(path.dirname(output), { recursive: true });
  fs.writeFileSync(output, text);
  return output;
}

/** Builds unless the output is newer than every input. */
function buildIfStale() {
  const mtime = (file) => fs.statSync(file, { throwIfNoEntry: false })?.mtimeMs ?? -Infinity;
  if (mtime(output) < Math.max(...inputs().map(mtime))) console.error(`[prepare] built ${path.relative(root, build())}`);
}

module.exports = { build, buildIfStale, output };

if (require.main === module) console.error(`built ${path.relative(root, build())}`);
