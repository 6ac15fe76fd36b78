'use strict';

// The documents: README.md (the users' front page, also shown on the npm registry),
// CONTRIBUTING.md, ARCHITECTURE.md, BENCHMARKS.md, FUZZING.md and docs/*.md. Every link resolves (a file of
// the repository, and a heading of it for an #anchor), every repository path they name exists,
// none names an issue number, and the README's cluster example (examples/cluster.js) runs as it
// says.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('child_process');
const fs = require('fs');
const http = require('http');
const os = require('os');
const path = require('path');

const root = path.join(__dirname, '..');
const pkg = require('../package.json');

// The README's links are absolute URLs into the repository: the registry renders the packed
// README away from the repository, and links relative to it would not resolve there.
const REPO = 'https://github.com/panoptic-js/panoptic';
const REPO_FILE = [`${REPO}/blob/main/`, `${REPO}/tree/main/`, 'https://raw.githubusercontent.com/panoptic-js/panoptic/main/'];

const docs = ['README.md', 'CONTRIBUTING.md', 'ARCHITECTURE.md', 'BENCHMARKS.md', 'FUZZING.md',
  ...fs.readdirSync(path.join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

/** The lines of a Markdown file outside fenced code blocks, with their numbers. */
function prose(file) {
  let fence = false;
  const out = [];
  fs.readFileSync(path.join(root, file), 'utf8').split('\n').forEach((line, i) => {
    if (/^\s*```/.test(line)) fence = !fence;
    else if (!fence) out.push({ line, n: i + 1 });
  });
  return out;
}

/** GitHub's anchors for a file's headings: lower case, punctuation but '-' and '_' dropped, spaces
 *  made '-', a repeated anchor suffixed -1, -2, ... */
function anchors(file) {
  const seen = new Map();
  const out = new Set();
  for (const { line } of prose(file)) {
    const m = /^#{1,6} (.*)$/.exec(line);
    if (!m) continue;
    const base = m[1].trim().toLowerCase().replace(/[^\p{L}\p{M}\p{N}_\- ]/gu, '').replace(/ /g, '-');
    const count = seen.get(base) || 0;
    seen.set(base, count + 1);
    out.add(count ? `${base}-${count}` : base);
  }
  return out;
}

/** Every link target of a file: inline links and images, and reference definitions. */
function links(file) {
  const out = [];
  for (const { line, n } of prose(file)) {
    const text = line.replace(/`[^`]*`/g, '``');
    for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) out.push({ href: m[1], n });
    const def = /^\[[^\]]+\]:\s*(\S+)/.exec(text);
    if (def) out.push({ href: def[1], n });
    for (const m of text.matchAll(/<(https?:\/\/[^>]+)>/g)) out.push({ href: m[1], n });
  }
  return out;
}

test('every link and #anchor in the documents resolves to a file and heading of the repository', () => {
  const problems = [];
  let checked = 0;
  for (const file of docs) {
    for (const { href, n } of links(file)) {
      const where = `${file}:${n}: ${href}`;
      let target;
      let anchor;
      const repoFile = REPO_FILE.find((prefix) => href.startsWith(prefix));
      if (repoFile) {
        [target, anchor] = href.slice(repoFile.length).split('#');
      } else if (/^[a-z]+:/i.test(href)) {
        // Another site (npm, crates.io, ...): nothing here to check it against.
        if (href.startsWith(REPO) && href !== REPO) problems.push(`${where}: a repository URL not under ${REPO_FILE[0]}`);
        continue;
      } else {
        if (file === 'README.md') problems.push(`${where}: the README must link absolute URLs (${REPO_FILE[0]}...)`);
        const [rel, a] = href.split('#');
        target = rel ? path.posix.join(path.posix.dirname(file), rel) : file;
        anchor = a;
      }
      checked++;
      if (target.startsWith('../') || !fs.existsSync(path.join(root, target))) {
        problems.push(`${where}: no file ${target}`);
        continue;
      }
      if (anchor !== undefined) {
        if (!target.endsWith('.md')) problems.push(`${where}: an anchor into a file that is not Markdown`);
        else if (!anchors(target).has(anchor)) problems.push(`${where}: no heading #${anchor} in ${target}`);
      }
    }
  }
  // Reference-style links ([text][name]) need their definition ([name]: url).
  for (const file of docs) {
    const lines = prose(file);
    const defined = new Set(lines.map(({ line }) => /^\[([^\]]+)\]:/.exec(line)?.[1].toLowerCase()).filter(Boolean));
    for (const { line, n } of lines) {
      for (const m of line.replace(/`[^`]*`/g, '``').matchAll(/\]\[([^\]]+)\]/g)) {
        if (!defined.has(m[1].toLowerCase())) problems.push(`${file}:${n}: [${m[1]}] is not defined`);
      }
    }
  }
  assert.deepEqual(problems, []);
  assert.ok(checked > 40, `only ${checked} links found: is the parser broken?`);
});

test('the repository URL the README links into is the package\'s', () => {
  // Set by the packaging work; until then there is nothing to compare.
  if (!pkg.repository) return;
  const url = typeof pkg.repository === 'string' ? pkg.repository : pkg.repository.url;
  assert.equal(url.replace(/^git\+/, '').replace(/\.git$/, ''), REPO);
});

// Build outputs that the documents name and that are not committed.
const GENERATED = new Set(['page/dist/index.html']);
const TOP = ['crates', 'src', 'lib', 'page', 'scripts', 'examples', 'benchmark', 'bin', '__test__', 'docs', 'npm', '.ci', 'fuzz'];

test('every repository path the documents name exists', () => {
  const problems = [];
  for (const file of docs) {
    for (const { line, n } of prose(file)) {
      for (const m of line.matchAll(/`([^`\s]+)`/g)) {
        const p = m[1].replace(/[),.:;]+$/, '');
        if (!TOP.some((dir) => p.startsWith(`${dir}/`)) || /[<>*{}]/.test(p)) continue;
        if (!GENERATED.has(p) && !fs.existsSync(path.join(root, p))) problems.push(`${file}:${n}: ${p}`);
      }
    }
  }
  assert.deepEqual(problems, []);
});

test('no document names an issue number', () => {
  const problems = [];
  for (const file of docs) {
    fs.readFileSync(path.join(root, file), 'utf8').split('\n').forEach((line, i) => {
      // "issue 5", "issues 4, 5", "Issue #5", and a bare "#15" (not an #anchor such as #2026-12-06).
      if (/\bissues?\s+#?\d/i.test(line) || /(^|[\s(])#\d+(?![\w-])/.test(line)) problems.push(`${file}:${i + 1}: ${line}`);
    });
  }
  assert.deepEqual(problems, []);
});

test('the README\'s cluster example is examples/cluster.js', () => {
  const example = fs.readFileSync(path.join(root, 'examples', 'cluster.js'), 'utf8');
  const code = example.slice(example.indexOf('const cluster'));
  assert.ok(fs.readFileSync(path.join(root, 'README.md'), 'utf8').includes('```js\n' + code + '```\n'),
    'README.md must show examples/cluster.js from its first require on');
  assert.ok(code.split('\n').length <= 30, 'the example stays short');
});

function get(url) {
  return new Promise((resolve, reject) => {
    http.get(url, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode, body }));
    }).on('error', reject);
  });
}

test('examples/cluster.js: two workers record, the master delivers their exact sum and serves it', async (t) => {
  // The example requires 'panoptic' as a user does: resolve that name to this checkout.
  const modules = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'panoptic-docs-')));
  fs.symlinkSync(root, path.join(modules, 'panoptic'), 'dir');
  // A process group of its own, so that the master and its workers end together.
  const child = spawn(process.execPath, [path.join(root, 'examples', 'cluster.js')], {
    env: { ...process.env, PORT: '0', NODE_PATH: modules },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  t.after(() => {
    try { process.kill(-child.pid, 'SIGKILL'); } catch { /* already gone */ }
    fs.rmSync(modules, { recursive: true, force: true });
  });
  let stderr = '';
  child.stderr.on('data', (c) => { stderr += c; });

  // Its output: "serving <url>", then a line per delivery with records.
  const lines = [];
  let pending = '';
  let wake = () => {};
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (c) => {
    pending += c;
    const parts = pending.split('\n');
    pending = parts.pop();
    lines.push(...parts);
    wake();
  });
  child.on('exit', () => wake());
  const deadline = Date.now() + 30000;
  const full = () => lines.filter((l) => /^\d+ jobs\/s \(\d+ \+ \d+\), p99 [\d.e-]+ s$/.test(l));
  while (full().length < 2) {
    assert.ok(child.exitCode === null && child.signalCode === null, `the example exited:\n${lines.join('\n')}\n${stderr}`);
    assert.ok(Date.now() < deadline, `no two deliveries from both workers within 30 s:\n${lines.join('\n')}\n${stderr}`);
    await new Promise((resolve) => { wake = resolve; setTimeout(resolve, 1000); });
  }

  assert.match(lines[0], /^serving http:\/\/127\.0\.0\.1:\d+\/$/);
  for (const line of full()) {
    const [, total, a, b, p99] = /^(\d+) jobs\/s \((\d+) \+ (\d+)\), p99 ([\d.e-]+) s$/.exec(line);
    // A 1 s interval at scaleFactor 1000: the rate is the count, and the cluster's is the sum.
    assert.equal(Number(total), Number(a) + Number(b), line);
    assert.ok(Number(a) > 0 && Number(b) > 0, line);
    assert.ok(Number(p99) > 0 && Number(p99) < 1, `a job takes well under a second: ${line}`);
  }

  // What Prometheus would scrape: each job was recorded once as a count and once as a time.
  const url = lines[0].slice('serving '.length);
  const { status, body } = await get(`${url}metrics`);
  assert.equal(status, 200);
  const done = Number(/^jobs_done_total (\d+)$/m.exec(body)?.[1]);
  const timed = Number(/^jobs_seconds_count (\d+)$/m.exec(body)?.[1]);
  // The store holds every delivered interval, the two above among them. A job whose two records
  // straddle a boundary counts its time in one interval and its count in the next: at most one
  // such job per worker is waiting for the next delivery.
  const seen = full().reduce((sum, line) => sum + Number(line.split(' ')[0]), 0);
  assert.ok(done >= seen, `jobs_done_total ${done} < ${seen}, the deliveries' sum`);
  assert.ok(Math.abs(done - timed) <= 2, `jobs_done_total ${done}, jobs_seconds_count ${timed}`);
  assert.match(body, /^# HELP jobs_seconds .*seconds/m);
});
