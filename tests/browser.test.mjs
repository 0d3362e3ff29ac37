// browser.test.mjs: the browser product in real Chromium (Debian's, driven by playwright-core):
// the chat page over demo/serve.js, the Worker engine, the OPFS model store (progress, resume,
// quota), the same greedy answer as the Node API, Stop, New chat, screenshots, offline use, and a
// host without cross-origin isolation (the single-thread build).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { start, unavailable } from './browser/harness.mjs';
import { createServer } from '../demo/serve.js';
import { LFM2 } from '../web/node.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const OUT = path.join(root, 'tests/browser/out');
const MODEL = path.join(root, 'demo/models/demo-tiny.gguf');
const bytes = fs.readFileSync(MODEL);
const sha = (b) => crypto.createHash('sha256').update(b).digest('hex');
const PROMPT = 'Hello there, who are you?';
const GREEDY = { temperature: 0, repeat_penalty: 1, max_tokens: 16 };

const skip = await unavailable();

test('model sources: hf: names and store names', async () => {
  const { resolveSource, modelName } = await import('../web/store.js');
  const { PRESETS } = await import('../demo/models.js');
  assert.equal(resolveSource('hf:LiquidAI/LFM2-8B-A1B-GGUF/LFM2-8B-A1B-Q4_0.gguf'),
    'https://huggingface.co/LiquidAI/LFM2-8B-A1B-GGUF/resolve/main/LFM2-8B-A1B-Q4_0.gguf');
  assert.throws(() => resolveSource('hf:LiquidAI/model.gguf'), { code: 'ERR_BAD_REQUEST' });
  assert.equal(modelName('https://huggingface.co/a/b/resolve/main/LFM2-1.2B-Q4_0.gguf?download=true'), 'LFM2-1.2B-Q4_0.gguf');
  assert.equal(PRESETS.filter((p) => p.default).length, 1);
  assert.equal(PRESETS.find((p) => p.default).source, 'hf:LiquidAI/LFM2-8B-A1B-GGUF/LFM2-8B-A1B-Q4_0.gguf');
  assert.ok(fs.existsSync(path.join(root, 'demo', PRESETS.find((p) => p.id === 'demo-tiny').source)));
});

describe('browser', { skip: skip ?? false, timeout: 120_000 }, () => {
  let h, page, nodeAnswer;
  const consoleErrors = [];
  const requests = []; // test-only URLs: {path, range}
  const half = Math.floor(bytes.length / 2);
  const stalled = new Set();

  // Test-only URLs served next to the demo: a connection dropped halfway, a connection that stalls
  // halfway (reload test), a model too big for the quota.
  function onRequest(req, res) {
    const url = new URL(req.url, 'http://x');
    if (!url.pathname.startsWith('/t/')) return false;
    requests.push({ path: url.pathname, range: req.headers.range ?? null });
    const etag = '"tiny-1"';
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const from = range ? Number(range[1]) : 0;
    if (url.pathname === '/t/huge.gguf') {
      res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': String(1e13), ETag: etag });
      res.write(bytes.subarray(0, 1024));
      stalled.add(res);
      return true;
    }
    const head = { 'Content-Type': 'application/octet-stream', ETag: etag, 'Accept-Ranges': 'bytes' };
    if (from > 0) {
      res.writeHead(206, { ...head, 'Content-Length': bytes.length - from, 'Content-Range': `bytes ${from}-${bytes.length - 1}/${bytes.length}` });
      res.end(bytes.subarray(from));
      return true;
    }
    res.writeHead(200, { ...head, 'Content-Length': bytes.length });
    if (url.pathname === '/t/drop/model-drop.gguf') {
      res.write(bytes.subarray(0, half), () => setTimeout(() => res.destroy(), 50));
    } else if (url.pathname === '/t/stall/model-stall.gguf') {
      res.write(bytes.subarray(0, half));
      stalled.add(res);
    } else {
      res.end(bytes);
    }
    return true;
  }

  before(async () => {
    const lfm = await LFM2.load(MODEL, { threads: 2 });
    try {
      const r = await lfm.chat.completions.create({ messages: [{ role: 'user', content: PROMPT }], ...GREEDY });
      nodeAnswer = r.choices[0].message.content;
    } finally {
      lfm.unload();
    }
    fs.mkdirSync(OUT, { recursive: true });
    h = await start({ onRequest });
    page = h.context.pages()[0] ?? (await h.context.newPage());
    page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
    page.on('pageerror', (e) => consoleErrors.push(e.message));
  });

  after(async () => {
    for (const r of stalled) r.destroy();
    await h?.close();
  });

  test('the page loads cross-origin isolated, without console errors', async () => {
    await page.goto(`${h.origin}/`);
    assert.equal(await page.evaluate(() => crossOriginIsolated), true);
    await page.waitForSelector('#preset option', { state: 'attached' });
    const presets = await page.$$eval('#preset option', (o) => o.map((x) => x.textContent));
    assert.ok(presets.some((t) => t.startsWith('LFM2-8B-A1B (MoE) Q4_0')), presets.join('\n'));
    assert.ok(presets.some((t) => t.startsWith('Demo (tiny, random weights)')));
    assert.match(await page.textContent('#env'), /threads available/);
    await page.waitForTimeout(300);
    assert.deepEqual(consoleErrors, []);
  });

  test('LFM2.load in a Worker: progress events, greedy answer equals the Node API, streaming', async () => {
    const r = await page.evaluate(async ({ prompt, greedy }) => {
      const { LFM2 } = await import('/web/index.js');
      const progress = [];
      const lfm = await LFM2.load('./models/demo-tiny.gguf', { threads: 2, onProgress: (p) => progress.push(p) });
      const messages = [{ role: 'user', content: prompt }];
      const whole = await lfm.chat.completions.create({ messages, ...greedy });
      const pieces = [];
      for await (const c of await lfm.chat.completions.create({ messages, ...greedy, stream: true })) pieces.push(c);
      const info = await lfm.info();
      const stats = await lfm.stats();
      const tokens = await lfm.tokenize('Hello');
      const text = await lfm.detokenize(tokens, { renderSpecial: false });
      let bad;
      try { await lfm.chat.completions.create({ messages, nonsense: 1 }); } catch (e) { bad = { code: e.code, name: e.name, isErr: e instanceof Error }; }
      await lfm.unload();
      let after;
      try { await lfm.info(); } catch (e) { after = e.code; }
      return { progress, whole, pieces, info, stats, text, bad, after, threads: lfm.threads };
    }, { prompt: PROMPT, greedy: GREEDY });
    assert.ok(r.progress.some((p) => p.phase === 'download' && p.total === bytes.length && p.bytes === bytes.length && p.bytesPerSecond > 0));
    assert.ok(r.progress.some((p) => p.phase === 'load' && p.bytes > 0 && p.total === bytes.length));
    assert.equal(r.whole.object, 'chat.completion');
    assert.equal(r.whole.choices[0].message.content, nodeAnswer);
    assert.equal(r.whole.usage.completion_tokens, 16);
    assert.ok(r.pieces.length > 3, 'several chunks');
    assert.equal(r.pieces[0].choices[0].delta.role, 'assistant');
    assert.equal(r.pieces.map((c) => c.choices[0]?.delta?.content ?? '').join(''), nodeAnswer);
    assert.equal(r.pieces.at(-1).choices[0].finish_reason, 'length');
    assert.equal(r.info.architecture, 'lfm2moe');
    assert.equal(r.threads, 2);
    assert.ok(r.stats.memory_bytes > 0 && r.stats.last.completion_tokens === 16);
    assert.equal(r.text, 'Hello');
    assert.deepEqual(r.bad, { code: 'ERR_UNKNOWN_OPTION', name: 'LFM2Error', isErr: true });
    assert.equal(r.after, 'ERR_UNLOADED');
  });

  test('abort: a signal ends a stream with AbortError, breaking early frees the model', async () => {
    const r = await page.evaluate(async () => {
      const { LFM2 } = await import('/web/index.js');
      const lfm = await LFM2.load('demo-tiny.gguf'); // stored by the previous test
      const messages = [{ role: 'user', content: 'Tell me a long story' }];
      const ac = new AbortController();
      let n = 0, err = null;
      try {
        for await (const c of await lfm.chat.completions.create({ messages, stream: true, signal: ac.signal, max_tokens: 100000 })) {
          if (c.choices[0]?.delta?.content && ++n === 3) ac.abort();
        }
      } catch (e) { err = { name: e.name, code: e.code }; }
      let m = 0;
      for await (const c of await lfm.chat.completions.create({ messages, stream: true, max_tokens: 100000 })) if (++m === 2) break;
      const again = await lfm.chat.completions.create({ messages, max_tokens: 4 });
      await lfm.unload();
      return { n, err, again: again.usage.completion_tokens };
    });
    assert.deepEqual(r.err, { name: 'AbortError', code: 'ERR_ABORTED' });
    assert.ok(r.n >= 3 && r.n < 50, `stopped soon after the abort (${r.n} pieces)`);
    assert.equal(r.again, 4);
  });

  test('chat page: load the demo model, stream a greedy answer (same as Node), screenshots', async () => {
    await page.goto(`${h.origin}/demo/`);
    await page.selectOption('#preset', 'demo-tiny');
    await page.click('#settings summary');
    await page.fill('#temperature', '0');
    await page.fill('#repeat-penalty', '1');
    await page.fill('#max-tokens', '16');
    await page.click('#load');
    await page.waitForSelector('#model-status.ok', { timeout: 30_000 });
    assert.match(await page.textContent('#model-status'), /lfm2moe/);
    await page.fill('#prompt', PROMPT);
    await page.click('#send');
    await page.waitForSelector('.msg.assistant:not(.streaming)[data-finish]');
    const answer = await page.$eval('.msg.assistant', (d) => d.firstChild.data ?? d.childNodes[0].textContent);
    assert.equal(answer, nodeAnswer);
    assert.ok((await page.evaluate(() => window.lfm2App.chunks)) > 5, 'the answer arrived as a stream of chunks');
    assert.match(await page.textContent('#stats'), /decode [\d.]+ tok\/s/);
    assert.match(await page.textContent('#stats'), /expert cache [\d.]+% hits/);
    // a second, real-looking turn for the screenshot
    await page.fill('#prompt', 'And what can you do offline?');
    await page.click('#send');
    await page.waitForFunction(() => document.querySelectorAll('.msg.assistant[data-finish]').length === 2);
    await page.click('#stored summary');
    await page.click('#settings summary'); // closed for the screenshots
    await page.screenshot({ path: path.join(OUT, 'chat-desktop.png'), fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: path.join(OUT, 'chat-phone.png'), fullPage: true });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);
    assert.equal(overflow, false, 'no horizontal scrolling at phone width');
    await page.setViewportSize({ width: 1100, height: 900 });
    await page.click('#settings summary');
  });

  test('chat page: Stop ends a generation; New chat resets the conversation', async () => {
    // the tiny model soon says its end-of-turn token: ban the end tokens so that only Stop ends it
    await page.evaluate(async () => {
      const app = window.lfm2App, bias = {};
      for (const s of ['<|im_end|>', '<|endoftext|>']) {
        const ids = await app.lfm.tokenize(s, { addSpecial: false });
        if (ids.length === 1) bias[ids[0]] = -Infinity;
      }
      app.extraOptions = { logit_bias: bias };
    });
    await page.fill('#max-tokens', '100000');
    await page.fill('#prompt', 'Write forever');
    await page.click('#send');
    // click Stop from inside the page as soon as text streams: the tiny model can fill its whole
    // context before a click sent from outside gets its turn among the token updates
    await page.waitForFunction(() => {
      if ((document.querySelector('.msg.assistant.streaming')?.textContent.length ?? 0) <= 5) return false;
      document.getElementById('stop').click();
      return true;
    }, null, { polling: 5 });
    const last = await page.waitForSelector('.msg.assistant:last-child[data-finish]');
    assert.equal(await last.getAttribute('data-finish'), 'stopped');
    assert.match(await last.textContent(), /\(stopped\)/);
    assert.equal(await page.isDisabled('#stop'), true);
    assert.equal(await page.isDisabled('#send'), false);
    await page.click('#new-chat');
    assert.equal(await page.$$eval('#messages .msg', (m) => m.length), 0);
    assert.equal(await page.evaluate(() => window.lfm2App.history.length), 0);
    await page.evaluate(() => { window.lfm2App.extraOptions = {}; });
    await page.fill('#max-tokens', '16');
    await page.fill('#prompt', PROMPT);
    await page.click('#send');
    await page.waitForSelector('.msg.assistant[data-finish]');
    assert.equal(await page.$$eval('#messages .msg', (m) => m.length), 2);
    assert.equal(await page.$eval('.msg.assistant', (d) => d.firstChild.data), nodeAnswer, 'a new chat answers as the first did');
    assert.deepEqual(consoleErrors, []);
  });

  test('a local File is read in place in the worker (FileReaderSync), not copied into OPFS', async () => {
    await page.setInputFiles('#local-file', { name: 'my-local.gguf', mimeType: 'application/octet-stream', buffer: bytes });
    await page.waitForFunction(() => {
      const s = document.getElementById('model-status');
      return /error/.test(s.className) || (/ok/.test(s.className) && /my-local/.test(window.lfm2App.lfm?.name ?? ''));
    }, null, { timeout: 30_000 });
    assert.match(await page.getAttribute('#model-status', 'class'), /ok/, await page.textContent('#model-status'));
    const r = await page.evaluate(async () => {
      const { LFM2 } = await import('/web/index.js');
      const lfm = window.lfm2App.lfm;
      const a = await lfm.chat.completions.create({ messages: [{ role: 'user', content: 'Hello there, who are you?' }], temperature: 0, repeat_penalty: 1, max_tokens: 16 });
      return { name: lfm.name, text: a.choices[0].message.content, stored: (await LFM2.list()).map((m) => m.name) };
    });
    assert.equal(r.name, 'my-local.gguf');
    assert.equal(r.text, nodeAnswer);
    assert.ok(!r.stored.includes('my-local.gguf'), r.stored.join());
  });

  test('a host without COOP/COEP: the service worker adds them and the page reloads isolated once', async () => {
    const plain = createServer({
      onRequest(req, res) {
        for (const k of ['Cross-Origin-Opener-Policy', 'Cross-Origin-Embedder-Policy', 'Cross-Origin-Resource-Policy']) res.removeHeader(k);
        const set = res.setHeader.bind(res);
        res.setHeader = (k, v) => (/^cross-origin-/i.test(k) ? res : set(k, v));
        return false;
      },
    });
    await new Promise((r) => plain.listen(0, '127.0.0.1', r));
    const p2 = await h.context.newPage();
    try {
      const base = `http://127.0.0.1:${plain.address().port}`;
      const first = await p2.goto(`${base}/demo/`);
      assert.equal(first.headers()['cross-origin-embedder-policy'], undefined);
      let iso = false;
      for (let i = 0; i < 100 && !iso; i++) {
        await p2.waitForTimeout(100);
        iso = await p2.evaluate(() => crossOriginIsolated).catch(() => false);
      }
      assert.equal(iso, true, 'isolated after the service worker reload');
      await p2.waitForSelector('#preset option', { state: 'attached' });
      assert.match(await p2.textContent('#env'), /threads available/);
      const text = await p2.evaluate(async () => {
        const { LFM2 } = await import('/web/index.js');
        const lfm = await LFM2.load('./models/demo-tiny.gguf', { threads: 2 });
        const a = await lfm.chat.completions.create({ messages: [{ role: 'user', content: 'Hello there, who are you?' }], temperature: 0, repeat_penalty: 1, max_tokens: 16 });
        await lfm.unload();
        return a.choices[0].message.content;
      });
      assert.equal(text, nodeAnswer);
    } finally {
      await p2.close();
      plain.closeAllConnections?.();
      await new Promise((r) => plain.close(r));
    }
  });

  test('a host without COOP/COEP and no service worker: the single-thread build, the same greedy answer, a notice', async () => {
    const served = [];
    const plain = createServer({ isolation: false, onRequest: (req) => { served.push(new URL(req.url, 'http://x').pathname); return false; } });
    await new Promise((r) => plain.listen(0, '127.0.0.1', r));
    const p2 = await h.context.newPage();
    const errors = [];
    p2.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    p2.on('pageerror', (e) => errors.push(e.message));
    try {
      const base = `http://127.0.0.1:${plain.address().port}`;
      const first = await p2.goto(`${base}/demo/?nosw`); // ?nosw: no service worker, so no isolation fallback
      assert.equal(first.headers()['cross-origin-opener-policy'], undefined);
      assert.equal(first.headers()['cross-origin-embedder-policy'], undefined);
      await p2.waitForSelector('#preset option', { state: 'attached' });
      assert.deepEqual(await p2.evaluate(() => ({ iso: crossOriginIsolated, sab: typeof SharedArrayBuffer })), { iso: false, sab: 'undefined' });
      assert.match(await p2.textContent('#env'), /single thread: page not cross-origin isolated/i);
      assert.equal(await p2.isDisabled('#threads'), true);

      // the API: threads asked for, one given; no error
      const r = await p2.evaluate(async ({ prompt, greedy }) => {
        const { LFM2 } = await import('/web/index.js');
        const lfm = await LFM2.load('./models/demo-tiny.gguf', { threads: 2 });
        const a = await lfm.chat.completions.create({ messages: [{ role: 'user', content: prompt }], ...greedy });
        const info = await lfm.info();
        await lfm.unload();
        return { threads: lfm.threads, isolated: lfm.isolated, infoThreads: info.threads, text: a.choices[0].message.content };
      }, { prompt: PROMPT, greedy: GREEDY });
      assert.deepEqual({ ...r, text: undefined }, { threads: 1, isolated: false, infoThreads: 1, text: undefined });
      assert.equal(r.text, nodeAnswer, 'the single-thread build answers as the threaded Node engine');
      assert.ok(served.includes('/wasm/dist/lfm2-st.wasm'), `the single-thread build was served: ${served.join(' ')}`);
      assert.ok(!served.includes('/wasm/dist/lfm2.wasm') && !served.includes('/wasm/dist/lfm2.worker.js'), 'the threaded build was not');

      // the chat page
      await p2.selectOption('#preset', 'demo-tiny');
      await p2.click('#settings summary');
      await p2.fill('#temperature', '0');
      await p2.fill('#repeat-penalty', '1');
      await p2.fill('#max-tokens', '16');
      await p2.click('#load');
      await p2.waitForSelector('#model-status.ok, #model-status.error', { timeout: 30_000 });
      const status = await p2.textContent('#model-status');
      assert.match(await p2.getAttribute('#model-status', 'class'), /ok/, status);
      assert.match(status, /single thread: page not cross-origin isolated/);
      await p2.fill('#prompt', PROMPT);
      await p2.click('#send');
      await p2.waitForSelector('.msg.assistant:not(.streaming)[data-finish]');
      assert.equal(await p2.$eval('.msg.assistant', (d) => d.firstChild.data), nodeAnswer);
      await p2.screenshot({ path: path.join(OUT, 'chat-single-thread.png'), fullPage: true });
      assert.deepEqual(errors, []);
    } finally {
      await p2.close();
      plain.closeAllConnections?.();
      await new Promise((r) => plain.close(r));
    }
  });

  test('store: a dropped connection resumes with a Range request; the file is byte-identical', async () => {
    requests.length = 0;
    const r = await page.evaluate(async () => {
      const { LFM2 } = await import('/web/index.js');
      const lfm = await LFM2.load('/t/drop/model-drop.gguf', { threads: 1 });
      const a = await lfm.completions.create({ prompt: 'Hi', max_tokens: 3, temperature: 0 });
      await lfm.unload();
      const dir = await (await navigator.storage.getDirectory()).getDirectoryHandle('lfm2-models');
      const buf = await (await (await dir.getFileHandle('model-drop.gguf')).getFile()).arrayBuffer();
      const hex = [...new Uint8Array(await crypto.subtle.digest('SHA-256', buf))].map((b) => b.toString(16).padStart(2, '0')).join('');
      return { hex, tokens: a.usage.completion_tokens, list: await LFM2.list() };
    });
    assert.equal(requests[0].range, null);
    assert.ok(requests.some((q) => /^bytes=[1-9]\d*-$/.test(q.range ?? '')), JSON.stringify(requests));
    assert.equal(r.hex, sha(bytes));
    assert.equal(r.tokens, 3);
    assert.ok(r.list.find((m) => m.name === 'model-drop.gguf' && m.complete && m.bytes === bytes.length));
  });

  test('store: a reload mid-download resumes from the bytes on disk; partial files are never loaded', async () => {
    requests.length = 0;
    await page.evaluate(() => {
      import('/web/index.js').then(({ LFM2 }) => LFM2.load('/t/stall/model-stall.gguf', { threads: 1 }).catch(() => {}));
    });
    await page.waitForFunction(async () => {
      const { LFM2 } = await import('/web/index.js');
      return (await LFM2.list()).some((m) => m.name === 'model-stall.gguf' && m.bytes > 0);
    }, null, { polling: 100, timeout: 10_000 });
    await page.waitForTimeout(300);
    await page.reload();
    for (const s of stalled) s.destroy();
    const r = await page.evaluate(async () => {
      const { LFM2 } = await import('/web/index.js');
      const before = (await LFM2.list()).find((m) => m.name === 'model-stall.gguf');
      let partial;
      try { await LFM2.load('model-stall.gguf'); } catch (e) { partial = e.code; }
      const lfm = await LFM2.load('/t/stall/model-stall.gguf', { threads: 1 });
      await lfm.unload();
      const dir = await (await navigator.storage.getDirectory()).getDirectoryHandle('lfm2-models');
      const buf = await (await (await dir.getFileHandle('model-stall.gguf')).getFile()).arrayBuffer();
      const hex = [...new Uint8Array(await crypto.subtle.digest('SHA-256', buf))].map((b) => b.toString(16).padStart(2, '0')).join('');
      return { before, partial, hex };
    });
    assert.equal(r.before.complete, false);
    assert.ok(r.before.bytes > 0 && r.before.bytes <= half, JSON.stringify(r.before));
    assert.equal(r.partial, 'ERR_NOT_FOUND');
    const resumed = requests.at(-1);
    assert.equal(resumed.range, `bytes=${r.before.bytes}-`, JSON.stringify(requests));
    assert.equal(r.hex, sha(bytes));
  });

  test('store: a model larger than the quota fails before downloading; list, usage, delete', async () => {
    const r = await page.evaluate(async () => {
      const { LFM2 } = await import('/web/index.js');
      let err;
      try { await LFM2.load('/t/huge.gguf'); } catch (e) { err = { code: e.code, message: e.message }; }
      const names = (await LFM2.list()).map((m) => m.name);
      const usage = await LFM2.usage();
      await LFM2.delete('model-drop.gguf');
      const afterDelete = (await LFM2.list()).map((m) => m.name);
      return { err, names, usage, afterDelete };
    });
    assert.equal(r.err.code, 'ERR_QUOTA', JSON.stringify(r.err));
    assert.match(r.err.message, /not enough storage/);
    assert.ok(!r.names.includes('huge.gguf'), 'no trace of the refused download');
    assert.ok(r.names.includes('demo-tiny.gguf') && r.names.includes('model-drop.gguf'));
    assert.equal(r.usage.models, 3 * bytes.length); // demo-tiny, model-drop, model-stall
    assert.ok(r.usage.quota > 0);
    assert.ok(!r.afterDelete.includes('model-drop.gguf'));
  });

  test('offline: with the server gone, the page and a stored model still work (service worker + OPFS)', async () => {
    await page.goto(`${h.origin}/demo/`);
    await page.evaluate(async () => { await navigator.serviceWorker.ready; });
    await page.reload(); // now controlled by the service worker, which caches what the page uses
    await page.waitForFunction(() => !!navigator.serviceWorker.controller);
    // load once online so the engine's files pass through the cache
    await page.evaluate(async () => {
      const { LFM2 } = await import('/web/index.js');
      await (await LFM2.load('demo-tiny.gguf', { threads: 2 })).unload();
    });
    await h.stopServer();
    await page.reload();
    await page.waitForSelector('#preset option', { state: 'attached' });
    await page.click('#stored summary');
    await page.click('#stored-list li:has-text("demo-tiny.gguf") >> text=Load');
    await page.waitForSelector('#model-status.ok, #model-status.error', { timeout: 30_000 });
    assert.match(await page.getAttribute('#model-status', 'class'), /ok/, await page.textContent('#model-status'));
    await page.click('#settings summary');
    await page.fill('#temperature', '0');
    await page.fill('#repeat-penalty', '1');
    await page.fill('#max-tokens', '16');
    await page.fill('#prompt', PROMPT);
    await page.click('#send');
    await page.waitForSelector('.msg.assistant[data-finish]');
    assert.equal(await page.$eval('.msg.assistant', (d) => d.firstChild.data), nodeAnswer);
  });
});
