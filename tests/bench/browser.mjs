#!/usr/bin/env node
// browser.mjs: lfm2-wasm against wllama (llama.cpp compiled to wasm, npm @wllama/wllama) in the same
// browser, on the same GGUF file: Debian's chromium driven by playwright-core, the page served
// cross-origin isolated by demo/serve.js, each engine on its multi-thread build with the same
// thread count, each in its own tab of one origin, both loaded at once.
//
//   npm run bench:browser -- --model FILE.gguf [--threads 2] [-p 64] [-n 32] [--reps 3]
//                            [--json OUT|-] [--wllama-dir DIR]
//   (also: npm run bench -- --browser --model FILE.gguf ...)
//
// The model is fetched from the local server by both: lfm2-wasm through its browser entry
// (LFM2.load(url): stored into OPFS, then read by the engine worker), wllama as a Blob
// (loadModel([blob]), CPU only: n_gpu_layers 0). One run = a prompt of about P tokens from an empty
// state (prefill), then N generated tokens with the end-of-generation tokens banned (decode, greedy).
// The two engines alternate, one untimed warm-up run each first, then REPS timed runs each; figures
// are medians of each engine's own timers (lfm2-wasm: lfm.stats().last; wllama: llama.cpp's
// `timings` of the completion), wall-clock times of the whole call are reported beside them.
// Every run uses a different prompt (a number in front), so neither engine reuses a cached prefix
// (wllama also gets cache_prompt: false); lfm2-wasm still shares the BOS token with its previous
// prompt, so it evaluates one token fewer: the tok/s figures are per evaluated token on each side.
// Both engines get the same logit_bias: every end-of-generation token, and every token whose bytes
// are not valid UTF-8 on their own (none of the two then stops early, and the text stays valid
// UTF-8: wllama's server core throws a JSON error on an answer that is not, which synthetic models
// with random weights and vocabularies produce). On real models that list is short.
// wllama reads models of at most 2 GB in one file (an ArrayBuffer limit, says its README); when it
// cannot load or run the model its error is reported and the ratios are null.
// Prints a Markdown table and the JSON (ratios = lfm2-wasm / wllama). Timings on a shared machine
// are noisy: compare ratios from one run, never assert them.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { sendFile } from '../../demo/serve.js';
import { Engine } from '../../web/engine.js';
import { openFileReader } from '../../web/node-file.js';
import { start, unavailable } from '../browser/harness.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const log = (...a) => console.error('[bench:browser]', ...a);

const { values: opt } = parseArgs({
  options: {
    model: { type: 'string', short: 'm' },
    threads: { type: 'string', short: 't', default: '2' },
    prompt: { type: 'string', short: 'p', default: '64' },
    n: { type: 'string', short: 'n', default: '32' },
    reps: { type: 'string', short: 'r', default: '3' },
    json: { type: 'string' },
    'wllama-dir': { type: 'string' },
    browser: { type: 'boolean' }, // accepted: `npm run bench -- --browser` forwards here
    help: { type: 'boolean', short: 'h' },
  },
});
if (opt.help) {
  console.log(fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').filter((l) => l.startsWith('//')).map((l) => l.slice(3)).join('\n'));
  process.exit(0);
}
const fail = (msg) => { console.error(`bench:browser: ${msg}`); process.exit(2); };
const posInt = (s, name) => {
  const v = Number(s);
  if (!Number.isInteger(v) || v < 1) fail(`${name} must be an integer >= 1, not '${s}'`);
  return v;
};
const THREADS = posInt(opt.threads, '--threads'), P = posInt(opt.prompt, '-p'), N = posInt(opt.n, '-n'), REPS = posInt(opt.reps, '--reps');
if (!opt.model) fail('give the GGUF file with --model FILE (e.g. --model /tmp/models/lfm2moe-24L-8e-q4_0.gguf)');
const MODEL = path.resolve(opt.model);
if (!fs.existsSync(MODEL)) fail(`no model file at ${MODEL}`);
const why = await unavailable();
if (why) fail(why);
for (const f of ['lfm2.mjs', 'lfm2.wasm', 'lfm2.worker.js']) if (!fs.existsSync(path.join(root, 'wasm/dist', f))) fail('the wasm build is missing: run ./build.sh wasm');

function wllamaDir() {
  if (opt['wllama-dir']) return path.resolve(opt['wllama-dir']);
  try {
    return path.dirname(createRequire(path.join(root, 'package.json')).resolve('@wllama/wllama/package.json'));
  } catch {
    return null;
  }
}
const WLLAMA = wllamaDir();
if (!WLLAMA || !fs.existsSync(path.join(WLLAMA, 'esm/index.js'))) fail('@wllama/wllama is not installed (npm install; it is a devDependency), or give --wllama-dir DIR');
const wllamaVersion = JSON.parse(fs.readFileSync(path.join(WLLAMA, 'package.json'), 'utf8')).version;

// The tokens both engines are kept from generating: end of generation, and pieces that are not
// valid UTF-8 on their own (read from the model's vocabulary with the engine under Node).
async function bannedTokens() {
  const file = openFileReader(MODEL);
  const engine = await Engine.create({ threads: 1 });
  try {
    const model = engine.openModel(file.read, file.size, { headerOnly: true });
    try {
      const strict = new TextDecoder('utf-8', { fatal: true });
      const banned = [];
      for (let i = 0; i < model.nVocab; i++) {
        if (model.isEog(i)) { banned.push(i); continue; }
        try { strict.decode(model.tokenBytes(i, false)); } catch { banned.push(i); }
      }
      return { banned, nVocab: model.nVocab };
    } finally { model.free(); }
  } finally { engine.terminate(); file.close(); }
}
const { banned, nVocab } = await bannedTokens();
const BIAS = Object.fromEntries(banned.map((t) => [t, -1e4]));
log(`logit_bias -1e4 on ${banned.length} of ${nVocab} tokens (end of generation; not valid UTF-8 alone)`);

// The bench's own URLs beside the demo server's: a blank page, the model, wllama's files.
const TYPES = { '.js': 'text/javascript', '.wasm': 'application/wasm' };
function onRequest(req, res) {
  const url = new URL(req.url, 'http://x');
  if (url.pathname === '/bench/') {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><meta charset="utf-8"><title>lfm2-wasm vs wllama</title><p>bench</p>');
    return true;
  }
  let file = null;
  if (url.pathname === '/bench/model.gguf') file = MODEL;
  else if (url.pathname.startsWith('/bench/wllama/')) {
    file = path.resolve(WLLAMA, decodeURIComponent(url.pathname.slice('/bench/wllama/'.length)));
    if (!file.startsWith(path.join(WLLAMA, 'esm') + path.sep)) file = null;
  }
  if (!file) return false;
  let stat;
  try { stat = fs.statSync(file); } catch { stat = null; }
  if (!stat?.isFile()) return false;
  sendFile(req, res, file, stat, TYPES[path.extname(file)] ?? 'application/octet-stream');
  return true;
}

const median = (xs) => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (!s.length) return null;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

// ---- in the pages
async function lfm2Load({ threads, bias }) {
  const { LFM2 } = await import('/web/index.js');
  const t0 = performance.now();
  const lfm = await LFM2.load('/bench/model.gguf', { threads, name: 'bench-model.gguf' });
  const loadMs = performance.now() - t0;
  window.bench = {
    lfm,
    async run(prompt, n) {
      const t = performance.now();
      const r = await lfm.completions.create({ prompt, max_tokens: n, temperature: 0, repeat_penalty: 1, logit_bias: bias });
      const wall = performance.now() - t;
      const last = (await lfm.stats()).last;
      return {
        prompt_tokens: last.evaluated_tokens, gen_tokens: r.usage.completion_tokens,
        prefill_tps: last.prefill_tokens_per_s, decode_tps: last.decode_tokens_per_s, wall_ms: wall,
      };
    },
    // a prompt of (at most, and about) p tokens, BOS included, with this tokenizer; different for each i
    async prompt(p, i) {
      const words = 'the quick brown fox jumps over the lazy dog while seven wise owls quietly watch the river flow past old stone bridges'.split(' ');
      const text = (k) => `${i}. ` + Array.from({ length: k }, (_, j) => words[j % words.length]).join(' ');
      let lo = 0, hi = 4 * p; // the most words that stay within p tokens
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if ((await lfm.tokenize(text(mid))).length <= p) lo = mid;
        else hi = mid - 1;
      }
      return text(lo);
    },
  };
  return { loadMs, threads: lfm.threads, isolated: lfm.isolated, info: await lfm.info() };
}

async function wllamaLoad({ threads, bias }) {
  const { Wllama } = await import('/bench/wllama/esm/index.js');
  const w = new Wllama({ default: '/bench/wllama/esm/wasm/wllama.wasm' }, { suppressNativeLog: true });
  const t0 = performance.now();
  const blob = await (await fetch('/bench/model.gguf')).blob();
  await w.loadModel([blob], { n_threads: threads, n_ctx: 1024, n_gpu_layers: 0 });
  const loadMs = performance.now() - t0;
  window.bench = {
    w,
    async run(prompt, n) {
      const t = performance.now();
      const r = await w.createCompletion({ prompt, max_tokens: n, temperature: 0, cache_prompt: false, ignore_eos: true, logit_bias: bias });
      const wall = performance.now() - t;
      const tm = r.timings ?? {};
      return {
        prompt_tokens: tm.prompt_n, gen_tokens: tm.predicted_n ?? r.usage?.completion_tokens,
        prefill_tps: tm.prompt_per_second, decode_tps: tm.predicted_per_second, wall_ms: wall,
      };
    },
  };
  return { loadMs, threads: w.getNumThreads(), multithread: w.isMultithread() };
}

// ---- main
const h = await start({ onRequest });
const result = {
  model: path.basename(MODEL), model_bytes: fs.statSync(MODEL).size, threads: THREADS, prompt_tokens: P, gen_tokens: N, reps: REPS,
  wllama_version: wllamaVersion, banned_tokens: banned.length, browser: null, lfm2: null, wllama: null, ratio: { prefill: null, decode: null },
  note: 'medians of each engine\'s own timers; a shared 2-core VM swings +-30% between runs: compare ratios from one run',
};
/** Medians and ratios of the runs so far. */
function summarize() {
  for (const name of ['lfm2', 'wllama']) {
    const s = result[name];
    if (!s?.runs?.length) continue;
    s.prefill_tokens_per_s = median(s.runs.map((r) => r.prefill_tps));
    s.decode_tokens_per_s = median(s.runs.map((r) => r.decode_tps));
    s.prompt_tokens = median(s.runs.map((r) => r.prompt_tokens));
  }
  const a = result.lfm2, b = result.wllama;
  if (a?.prefill_tokens_per_s && b?.prefill_tokens_per_s) {
    result.ratio = { prefill: a.prefill_tokens_per_s / b.prefill_tokens_per_s, decode: a.decode_tokens_per_s / b.decode_tokens_per_s };
  }
}

function report() {
  summarize();
  const f = (x, d = 1) => (typeof x === 'number' && Number.isFinite(x) ? x.toFixed(d) : 'n/a');
  const row = (name, s) => `| ${name} | ${s?.threads ?? THREADS} | ${f(s?.prefill_tokens_per_s)} | ${f(s?.decode_tokens_per_s, 2)} | ${s?.load_ms ? f(s.load_ms / 1000) : 'n/a'} |`;
  const runs = Math.min(result.lfm2?.runs?.length ?? 0, result.wllama?.runs?.length ?? REPS);
  console.log(`\n### ${result.model} in ${result.browser?.userAgent?.match(/Chrom(e|ium)\/[\d.]+/)?.[0] ?? 'Chromium'}, prompt ~${P} tokens, ${N} generated, ${runs} timed run(s) each (medians)\n`);
  console.log('| engine | threads | prefill tok/s | decode tok/s | load s |');
  console.log('|---|---|---|---|---|');
  console.log(row('lfm2-wasm', result.lfm2));
  console.log(row(`wllama ${wllamaVersion}`, result.wllama));
  console.log(`| lfm2-wasm / wllama | | ${f(result.ratio.prefill, 2)}x | ${f(result.ratio.decode, 2)}x | |`);
  if (result.wllama?.error) console.log(`\n${result.wllama.error}`);
  const json = JSON.stringify(result, null, 2);
  if (opt.json && opt.json !== '-') fs.writeFileSync(opt.json, json + '\n');
  console.log('\n' + json);
}

// Ctrl-C / SIGTERM: report the runs done so far (on a slow machine a run can take minutes)
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, async () => {
    log(`${sig}: reporting the runs done so far`);
    result.interrupted = true;
    report();
    await h.close().catch(() => {});
    process.exit(130);
  });
}

let exitCode = 0;
try {
  const pages = { lfm2: await h.context.newPage(), wllama: await h.context.newPage() };
  for (const [name, pg] of Object.entries(pages)) {
    pg.on('pageerror', (e) => log(`${name} page error: ${e.message}`));
    await pg.goto(`${h.origin}/bench/`);
  }
  const env = await pages.lfm2.evaluate(() => ({ userAgent: navigator.userAgent, crossOriginIsolated, cores: navigator.hardwareConcurrency }));
  result.browser = env;
  if (!env.crossOriginIsolated) throw new Error('the bench page is not cross-origin isolated');
  log(`${env.userAgent}; ${env.cores} cores; model ${MODEL} (${(result.model_bytes / 1e9).toFixed(2)} GB); ${THREADS} threads`);

  log('loading lfm2-wasm (download into OPFS, then load)...');
  const l = await pages.lfm2.evaluate(lfm2Load, { threads: THREADS, bias: BIAS });
  log(`lfm2-wasm loaded in ${(l.loadMs / 1000).toFixed(1)} s, ${l.threads} threads`);
  result.lfm2 = { load_ms: l.loadMs, threads: l.threads, runs: [] };
  log('loading wllama...');
  try {
    const w = await pages.wllama.evaluate(wllamaLoad, { threads: THREADS, bias: BIAS });
    log(`wllama ${wllamaVersion} loaded in ${(w.loadMs / 1000).toFixed(1)} s, ${w.threads} threads, multi-thread build: ${w.multithread}`);
    result.wllama = { load_ms: w.loadMs, threads: w.threads, multithread: w.multithread, runs: [] };
  } catch (e) {
    const msg = String(e?.message ?? e).replace(/^page\.evaluate: /, '').split('\n')[0];
    log(`wllama could not load the model: ${msg}`);
    result.wllama = { error: `wllama could not load the model: ${msg}` };
    await pages.wllama.close();
    delete pages.wllama;
  }

  const prompts = [];
  for (let i = 0; i <= REPS; i++) prompts.push(await pages.lfm2.evaluate(([p, k]) => window.bench.prompt(p, k), [P, i + 1]));
  for (let i = 0; i <= REPS; i++) {
    for (const name of ['lfm2', 'wllama']) {
      if (!pages[name]) continue;
      let r;
      try {
        r = await pages[name].evaluate(([p, n]) => window.bench.run(p, n), [prompts[i], N]);
      } catch (e) {
        const msg = String(e?.message ?? e).replace(/^page\.evaluate: /, '').split('\n')[0];
        log(`${name} failed: ${msg}`);
        result[name].error = `${name} failed while running: ${msg}`;
        await pages[name].close();
        delete pages[name];
        continue;
      }
      log(`${i === 0 ? 'warm-up' : `run ${i}`} ${name}: prefill ${r.prompt_tokens} tok ${r.prefill_tps?.toFixed(1)} tok/s, decode ${r.gen_tokens} tok ${r.decode_tps?.toFixed(2)} tok/s, wall ${(r.wall_ms / 1000).toFixed(2)} s`);
      if (i > 0) result[name].runs.push(r);
      await new Promise((res) => setTimeout(res, 300));
    }
  }
} catch (e) {
  log(`failed: ${e?.stack ?? e}`);
  result.error = String(e?.message ?? e);
  exitCode = 1;
} finally {
  await h.close();
}

report();
process.exit(exitCode);
