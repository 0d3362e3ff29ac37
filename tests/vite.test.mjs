// vite.test.mjs: the npm package as users get it. `npm pack` holds the engine (wasm/dist), web/,
// the type definitions, README and LICENSE, and nothing of the tests or the demo; and a minimal
// Vite app (tests/vite-app/) built against the packed tarball runs in Chromium and gives the same
// greedy answer as the Node API, cross-origin isolated (threads) and not (the single-thread build).
// Needs the wasm build (./build.sh wasm), the npm registry (vite is installed into a temp dir; a
// registry that cannot be reached fails the test, it is not skipped), Debian's chromium and
// playwright-core (as tests/browser.test.mjs). LFM2_VITE_KEEP=1 keeps the temp dir for a look.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ARGS, CHROMIUM, unavailable } from './browser/harness.mjs';
import { sendFile } from '../demo/serve.js';
import { LFM2 } from '../web/node.js';

const run = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TEMPLATE = path.join(root, 'tests/vite-app');
const MODEL = path.join(root, 'tests/fixtures/models/tiny-q4_0.gguf');
const PROMPT = 'Hello there, who are you?'; // as in tests/vite-app/main.js
const GREEDY = { temperature: 0, repeat_penalty: 1, max_tokens: 8 };
const NPM_FLAGS = ['--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'];
const NPM_ENV = { ...process.env, npm_config_update_notifier: 'false' };

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lfm2-vite-'));
after(() => {
  if (process.env.LFM2_VITE_KEEP) console.log(`# kept ${tmp}`);
  else fs.rmSync(tmp, { recursive: true, force: true });
});

const ENGINE = ['lfm2.mjs', 'lfm2.wasm', 'lfm2.worker.js', 'lfm2-st.mjs', 'lfm2-st.wasm'].map((f) => path.join(root, 'wasm/dist', f));
function needBuild() {
  const missing = ENGINE.filter((f) => !fs.existsSync(f));
  assert.deepEqual(missing, [], 'the wasm build is missing: run ./build.sh wasm first');
}

let tarball = null; // the packed package, made once
async function pack() {
  if (tarball) return tarball;
  needBuild();
  const dir = path.join(tmp, 'pack');
  fs.mkdirSync(dir);
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', dir], { cwd: root, env: NPM_ENV, maxBuffer: 1 << 24 });
  const [info] = JSON.parse(stdout);
  tarball = { file: path.join(dir, info.filename), files: info.files.map((f) => f.path), info };
  return tarball;
}

test('npm pack: the engine, web/, types, README and LICENSE; no tests, no demo', async () => {
  const { files, file } = await pack();
  assert.ok(fs.existsSync(file), `no tarball at ${file}`);
  for (const f of ['wasm/dist/lfm2.wasm', 'wasm/dist/lfm2.mjs', 'wasm/dist/lfm2.worker.js', 'wasm/dist/lfm2-st.wasm', 'wasm/dist/lfm2-st.mjs', 'web/index.js', 'web/node.js',
    'web/worker.js', 'web/engine.js', 'README.md', 'LICENSE', 'package.json']) {
    assert.ok(files.includes(f), `${f} is missing from the package`);
  }
  const dts = files.filter((f) => f.endsWith('.d.ts'));
  assert.ok(dts.length > 0, 'no type definitions in the package');
  // every "types" named by package.json is packed
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
  const typesPaths = [pkg.types, ...Object.values(pkg.exports).map((e) => e?.types)].filter(Boolean).map((p) => p.replace(/^\.\//, ''));
  for (const t of typesPaths) assert.ok(files.includes(t), `${t} (named in package.json) is missing from the package`);
  // and every file the exports map names
  for (const e of Object.values(pkg.exports)) {
    for (const t of typeof e === 'string' ? [e] : Object.values(e)) {
      const p = t.replace(/^\.\//, '');
      if (p !== 'package.json') assert.ok(files.includes(p), `${p} (in "exports") is missing from the package`);
    }
  }
  const stray = files.filter((f) => /^(tests|demo|src|kernels|build|node_modules)\//.test(f) || /\.(c|h|gguf)$/.test(f));
  assert.deepEqual(stray, [], 'the package holds files it should not');
  assert.equal(pkg.exports['.'].default, './web/index.js');
  assert.equal(pkg.exports['./node'].default, './web/node.js');
  assert.ok(Object.values(pkg.exports).some((e) => e === './web/worker.js' || e?.default === './web/worker.js'), 'no export for the worker');
});

const skip = await unavailable();

describe('a Vite app over the packed package, in Chromium', { skip: skip ?? false, timeout: 150_000 }, () => {
  const app = path.join(tmp, 'app');
  let nodeAnswer, viteVersion;

  before(async () => {
    const { file } = await pack();
    fs.cpSync(TEMPLATE, app, { recursive: true, filter: (src) => !/[\\/](node_modules|dist)$/.test(src) });
    fs.mkdirSync(path.join(app, 'public'), { recursive: true });
    fs.copyFileSync(MODEL, path.join(app, 'public/model.gguf'));
    viteVersion = await install(app, file);

    const lfm = await LFM2.load(MODEL, { threads: 2 });
    try {
      const r = await lfm.chat.completions.create({ messages: [{ role: 'user', content: PROMPT }], ...GREEDY });
      nodeAnswer = r.choices[0].message.content;
    } finally {
      await lfm.unload();
    }
    assert.ok(nodeAnswer.length > 0, 'the Node API gave an empty answer');
  });

  test('vite build, then the page answers as the Node API does', async () => {
    const vite = path.join(app, 'node_modules/vite/bin/vite.js');
    try {
      await run(process.execPath, [vite, 'build', '--logLevel', 'warn'], { cwd: app, env: NPM_ENV, maxBuffer: 1 << 24 });
    } catch (e) {
      assert.fail(`vite ${viteVersion} build failed:\n${e.stdout}\n${e.stderr}`);
    }
    const dist = path.join(app, 'dist');
    const assets = fs.readdirSync(path.join(dist, 'assets'));
    assert.ok(assets.some((f) => /^lfm2-st-.*\.wasm$/.test(f)) && assets.some((f) => /^lfm2-(?!st-).*\.wasm$/.test(f)),
      `both builds' .wasm in dist/assets: ${assets.join(' ')}`);

    const { server, origin, misses } = await serve(dist);
    const { chromium } = await import('playwright-core');
    const profile = fs.mkdtempSync(path.join(tmp, 'chromium-'));
    const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: ARGS });
    const errors = [];
    try {
      const page = context.pages()[0] ?? await context.newPage();
      page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
      page.on('pageerror', (e) => errors.push(String(e)));
      await page.goto(origin + '/');
      await page.waitForFunction(() => document.getElementById('status')?.textContent !== 'loading', null, { timeout: 30_000 })
        .catch(() => assert.fail(`the page did not finish in 30 s; errors: ${errors.join(' | ') || 'none'}`));
      const status = await page.textContent('#status');
      assert.equal(status, 'done', `the page failed: ${status}; errors: ${errors.join(' | ') || 'none'}; 404s: ${misses.join(' ') || 'none'}`);
      assert.equal(await page.evaluate(() => crossOriginIsolated), true);
      const answer = await page.textContent('#answer');
      assert.equal(answer, nodeAnswer, 'the bundled app and the Node API disagree');
      assert.deepEqual(misses.filter((m) => m !== '/favicon.ico'), [], 'the app asked for files the build did not emit');

      // the same dist/ from a host without COOP/COEP: the bundled single-thread build answers alike
      const plain = await serve(dist, { isolation: false });
      try {
        const p2 = await context.newPage();
        p2.on('pageerror', (e) => errors.push(String(e)));
        await p2.goto(plain.origin + '/');
        await p2.waitForFunction(() => document.getElementById('status')?.textContent !== 'loading', null, { timeout: 30_000 });
        const st = await p2.textContent('#status');
        assert.equal(st, 'done', `not isolated, the page failed: ${st}; errors: ${errors.join(' | ') || 'none'}; 404s: ${plain.misses.join(' ') || 'none'}`);
        assert.equal(await p2.evaluate(() => crossOriginIsolated), false);
        assert.equal(await p2.textContent('#answer'), nodeAnswer, 'the bundled single-thread build and the Node API disagree');
        assert.deepEqual(plain.misses.filter((m) => m !== '/favicon.ico'), [], 'the app asked for files the build did not emit');
      } finally {
        plain.server.closeAllConnections?.();
        await new Promise((r) => plain.server.close(() => r()));
      }
    } finally {
      await context.close().catch(() => {});
      server.closeAllConnections?.();
      await new Promise((r) => server.close(() => r()));
    }
  });
});

/** npm install the tarball and vite (8, or 7 when 8 does not install here) into the app; the vite version. */
async function install(app, file) {
  let last;
  for (const vite of ['vite@^8', 'vite@^7']) {
    try {
      await run('npm', ['install', ...NPM_FLAGS, file, vite], { cwd: app, env: NPM_ENV, maxBuffer: 1 << 24, timeout: 60_000 });
      return JSON.parse(fs.readFileSync(path.join(app, 'node_modules/vite/package.json'), 'utf8')).version;
    } catch (e) {
      last = e;
      const out = `${e.stdout ?? ''}\n${e.stderr ?? ''}`;
      if (/E(NOTFOUND|AI_AGAIN|CONNREFUSED|CONNRESET|TIMEDOUT|NETUNREACH)|network|socket hang up|proxy|unable to get local issuer/i.test(out) || e.killed) {
        assert.fail(`cannot install vite: the npm registry is unreachable from here (this test needs it; it is not skipped).\n${out.trim()}`);
      }
    }
  }
  assert.fail(`npm install of the tarball and vite failed:\n${last.stdout ?? ''}\n${last.stderr ?? ''}`);
}

/** Serve dir with the cross-origin isolation headers (or without); misses collects the paths that 404. */
async function serve(dir, { isolation = true } = {}) {
  const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.css': 'text/css' };
  const misses = [];
  const server = http.createServer((req, res) => {
    if (isolation) {
      res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
      res.setHeader('Cross-Origin-Embedder-Policy', 'require-corp');
      res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
    }
    const rel = decodeURIComponent(new URL(req.url, 'http://x').pathname).replace(/^\/+/, '') || 'index.html';
    const file = path.resolve(dir, rel);
    const stat = file.startsWith(dir + path.sep) && fs.existsSync(file) ? fs.statSync(file) : null;
    if (!stat?.isFile()) {
      misses.push('/' + rel);
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('not found\n');
      return;
    }
    sendFile(req, res, file, stat, TYPES[path.extname(file)] ?? 'application/octet-stream');
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { server, misses, origin: `http://127.0.0.1:${server.address().port}` };
}
