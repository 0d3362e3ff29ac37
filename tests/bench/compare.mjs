#!/usr/bin/env node
// compare.mjs: lfm2-wasm (the wasm build, under Node) against native llama.cpp (node-llama-cpp, CPU
// prebuilt binaries, never built here), llama-bench style:
//   pp = one batch of P tokens from an empty state (tokens/s); tg = N one-token steps after it.
// For each model and thread count the two sides alternate, REPS timed runs each; figures are medians.
//
//   npm run bench -- [--model FILE ...] [--threads 1,2] [--reps 3] [-p 128] [-n 64]
//                    [--json OUT|-] [--budget BYTES] [--policy lfu|lru] [--ttft] [--kernels]
//
// lfm2-wasm side: web/bench.js benchModel (reps: 1 per call, so every timed run follows its own
// warm-up run; its figures are the same as `lfm2 bench`). llama.cpp side: one warm-up run per
// context; prefill = controlledEvaluate of the P tokens with the next token sampled greedily after
// the last one (llama.cpp computes the output row of that token only, as lfm2-wasm does); decode =
// N controlledEvaluate calls of one token each, logits + greedy sample each. Both sides see the same
// random token ids (benchModel's generator). The sequence is cleared between runs.
// --budget: lfm2-wasm memory budget (bytes, or 2GB, 3GiB, ...): expert cache figures are reported
// (hits, misses, hit rate, bytes read per token, read time and the part of it the evaluating thread
// waited for, peak wasm heap). Default: the engine's default budget. --policy: the expert cache's
// eviction policy (default lfu).
// --ttft: also time LFM2.load (web/node.js, default budget, --threads' largest count) of each model
// and its first generated token (a 1-token completion of a short prompt).
// --json OUT: the results as JSON into OUT and to stdout; --json -: to stdout only.
// --kernels: also run tests/bench/kernels.mjs (the wasm kernel microbenchmark) at the end.
// --browser: lfm2-wasm against wllama in Chromium instead (tests/bench/browser.mjs; npm run bench:browser).
// Without node-llama-cpp installed the llama.cpp columns read n/a; lfm2-wasm figures are still reported.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Engine } from '../../web/engine.js';
import { benchModel } from '../../web/bench.js';
import { openFileReader } from '../../web/node-file.js';
import { DEFAULT_MEMORY_BUDGET, parseBytes } from '../../web/units.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DEFAULT_MODEL_NAME = 'lfm2moe-8b-a1b-16e-q4_0.gguf';
const log = (...a) => console.error('[bench]', ...a);

// --browser: the in-browser comparison with wllama instead (tests/bench/browser.mjs, its own options)
if (process.argv.includes('--browser')) {
  await import('./browser.mjs'); // runs, prints and exits
}

const { values: opt } = parseArgs({
  options: {
    model: { type: 'string', short: 'm', multiple: true },
    threads: { type: 'string', short: 't', default: '1,2' },
    reps: { type: 'string', short: 'r', default: '3' },
    prompt: { type: 'string', short: 'p', default: '128' },
    n: { type: 'string', short: 'n', default: '64' },
    json: { type: 'string' },
    budget: { type: 'string' },
    policy: { type: 'string', default: 'lfu' },
    ttft: { type: 'boolean', default: false },
    kernels: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h' },
  },
});
if (opt.help) {
  console.log(fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').filter((l) => l.startsWith('//')).map((l) => l.slice(3)).join('\n'));
  process.exit(0);
}
const posInt = (s, name) => {
  const v = Number(s);
  if (!Number.isInteger(v) || v < 1) { console.error(`compare.mjs: ${name} must be an integer >= 1, not '${s}'`); process.exit(2); }
  return v;
};
const P = posInt(opt.prompt, '-p'), N = posInt(opt.n, '-n'), REPS = posInt(opt.reps, '--reps');
const THREADS = opt.threads.split(',').map((s) => posInt(s.trim(), '--threads'));
const budget = opt.budget !== undefined ? parseBytes(opt.budget, '--budget') : undefined;
if (!['lfu', 'lru'].includes(opt.policy)) { console.error(`compare.mjs: --policy must be lfu or lru, not '${opt.policy}'`); process.exit(2); }

function median(xs) {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function defaultModel() {
  const tmp = path.join('/tmp/models', DEFAULT_MODEL_NAME);
  if (fs.existsSync(tmp)) return tmp;
  const out = path.join(root, 'build/models', DEFAULT_MODEL_NAME);
  if (fs.existsSync(out)) return out;
  log(`${tmp} is missing: generating ${out} with tests/tools/gen-model.sh (a few minutes, 2.5 GB)`);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  execFileSync(path.join(root, 'tests/tools/gen-model.sh'), ['-o', out, '--type', 'q4_0', '--experts', '16'], { stdio: ['ignore', 'inherit', 'inherit'] });
  return out;
}

// The token stream of web/bench.js benchModel (same generator, same seed): with reps: 1 it uses
// tokens [0, P+N) for its warm-up run and [P+N, 2(P+N)) for the timed run.
function benchTokens(V) {
  let seed = 42;
  const tok = () => (seed = (seed * 1103515245 + 12345) % 2147483648) % V;
  const all = Array.from({ length: 2 * (P + N) }, tok);
  const split = (a) => ({ prompt: a.slice(0, P), gen: a.slice(P, P + N) });
  return { warm: split(all.slice(0, P + N)), timed: split(all.slice(P + N)) };
}

async function loadLlamaCpp() {
  let mod;
  try {
    mod = await import('node-llama-cpp');
  } catch (e) {
    log(`node-llama-cpp is not installed (${e.code ?? e.message}): llama.cpp figures are skipped.`);
    log('  install it with: npm install --save-dev --save-exact node-llama-cpp@3.21.1');
    return null;
  }
  try {
    // CPU only; prebuilt binaries only: never compiles llama.cpp here.
    return await mod.getLlama({ gpu: false, build: 'never', logLevel: 'error', maxThreads: Math.max(...THREADS) });
  } catch (e) {
    log(`node-llama-cpp could not load a prebuilt llama.cpp binary (${e.message}): llama.cpp figures are skipped.`);
    return null;
  }
}

// ---- llama.cpp side ----
async function llamaRun(seq, toks) {
  await seq.clearHistory();
  const greedy = { generateNext: { token: true, options: { temperature: 0 } } };
  const input = toks.prompt.map((t, i) => (i === toks.prompt.length - 1 ? [t, greedy] : t));
  let t0 = performance.now();
  await seq.controlledEvaluate(input);
  const tp = performance.now() - t0;
  t0 = performance.now();
  for (const t of toks.gen) await seq.controlledEvaluate([[t, greedy]]);
  const tt = performance.now() - t0;
  return { pp: (P * 1000) / tp, tg: (N * 1000) / tt };
}

// ---- lfm2-wasm side ----
function wasmRun(engine, model) {
  const s0 = model.stats();
  const r = benchModel(model, { prompt: P, gen: N, reps: 1 });
  const s1 = model.stats();
  const d = (k) => s1[k] - s0[k];
  const hits = d('expert_hits'), misses = d('expert_misses');
  const tokens = 2 * (P + N); // benchModel's warm-up run and the timed run
  return {
    pp: r.prefill_tokens_per_s, tg: r.decode_tokens_per_s,
    cache: {
      tokens, expert_hits: hits, expert_misses: misses, expert_evictions: d('expert_evictions'),
      hit_rate: hits + misses ? hits / (hits + misses) : NaN,
      bytes_read: d('bytes_read'), read_seconds: d('read_seconds'), bytes_read_per_token: d('bytes_read') / tokens,
      // engines without the field read synchronously: all of their read time was waited for
      read_wait_seconds: s1.read_wait_seconds === undefined ? d('read_seconds') : d('read_wait_seconds'),
      wasm_heap_bytes: engine.memoryBytes,
    },
  };
}

// LFM2.load to the first generated token, as an app sees it.
async function timeToFirstToken(file, threads) {
  const { LFM2 } = await import('../../web/node.js');
  const t0 = performance.now();
  const lfm = await LFM2.load(file, { threads });
  const load = (performance.now() - t0) / 1000;
  try {
    for await (const c of await lfm.completions.create({ prompt: 'The capital of France is', max_tokens: 1, temperature: 0, stream: true })) {
      if (c.choices[0]?.text) break;
    }
    const first = (performance.now() - t0) / 1000;
    log(`LFM2.load ${path.basename(file)}: ${load.toFixed(1)} s; first token after ${first.toFixed(1)} s`);
    return { load_seconds: load, first_token_seconds: first };
  } finally {
    lfm.unload();
  }
}

const fmt = (x, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
const mb = (x) => (Number.isFinite(x) ? (x / 1e6).toFixed(1) : 'n/a');

async function main() {
  const models = opt.model?.length ? opt.model : [defaultModel()];
  for (const m of models) if (!fs.existsSync(m)) { console.error(`compare.mjs: no such model file: ${m}`); process.exit(2); }
  const llama = await loadLlamaCpp();
  const results = [];
  for (const file of models) {
    let lmodel = null;
    if (llama) {
      try {
        const t0 = performance.now();
        lmodel = await llama.loadModel({ modelPath: file, gpuLayers: 0 });
        log(`llama.cpp: loaded ${path.basename(file)} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      } catch (e) {
        log(`llama.cpp cannot load ${file}: ${e.message}`);
      }
    }
    for (const threads of THREADS) {
      const row = { model: path.basename(file), file, threads, prompt_tokens: P, gen_tokens: N, reps: REPS, budget: budget ?? null, loadavg_before: os.loadavg() };
      // lfm2-wasm: a fresh engine (its pool has `threads` threads) and model per thread count
      const engine = await Engine.create({ threads });
      const reader = openFileReader(file);
      let t0 = performance.now();
      const model = engine.openModel(reader.read, reader.size, { memoryBudget: budget ?? DEFAULT_MEMORY_BUDGET, cachePolicy: opt.policy });
      row.lfm2_open_seconds = (performance.now() - t0) / 1000;
      row.lfm2_stats_after_open = model.stats();
      log(`lfm2-wasm: opened ${row.model} with ${threads} thread(s) in ${row.lfm2_open_seconds.toFixed(1)} s, heap ${mb(engine.memoryBytes)} MB`);
      const V = model.nVocab;
      const toks = benchTokens(V);
      let lctx = null, seq = null;
      if (lmodel) {
        lctx = await lmodel.createContext({ contextSize: P + N + 8, batchSize: P, sequences: 1, threads: { ideal: threads, min: threads } });
        seq = lctx.getSequence();
        row.llama_flash_attention = lctx.flashAttention;
        row.llama_context_size = lctx.contextSize;
        row.llama_batch_size = lctx.batchSize;
        log(`llama.cpp: context ${lctx.contextSize}, batch ${lctx.batchSize}, flash attention ${lctx.flashAttention}; warm-up`);
        await llamaRun(seq, toks.warm);
      }
      const wasm = [], cpp = [];
      for (let r = 0; r < REPS; r++) {
        const w = wasmRun(engine, model);
        wasm.push(w);
        log(`rep ${r + 1}/${REPS} t${threads} lfm2-wasm pp ${fmt(w.pp)} tg ${fmt(w.tg)} tok/s`);
        if (seq) {
          const c = await llamaRun(seq, toks.timed);
          cpp.push(c);
          log(`rep ${r + 1}/${REPS} t${threads} llama.cpp pp ${fmt(c.pp)} tg ${fmt(c.tg)} tok/s`);
        }
      }
      row.lfm2 = { pp: median(wasm.map((x) => x.pp)), tg: median(wasm.map((x) => x.tg)), pp_runs: wasm.map((x) => x.pp), tg_runs: wasm.map((x) => x.tg) };
      row.llama = cpp.length ? { pp: median(cpp.map((x) => x.pp)), tg: median(cpp.map((x) => x.tg)), pp_runs: cpp.map((x) => x.pp), tg_runs: cpp.map((x) => x.tg) } : null;
      row.ratio = row.llama ? { pp: row.lfm2.pp / row.llama.pp, tg: row.lfm2.tg / row.llama.tg } : null;
      row.lfm2_cache_runs = wasm.map((x) => x.cache);
      row.lfm2_peak_wasm_heap_bytes = engine.memoryBytes; // the heap only grows: its size is the peak
      row.lfm2_stats_end = model.stats();
      results.push(row);
      if (lctx) await lctx.dispose();
      model.free();
      reader.close();
      engine.terminate();
    }
    if (lmodel) await lmodel.dispose();
    if (opt.ttft) results.at(-1).ttft = await timeToFirstToken(file, Math.max(...THREADS));
  }
  if (llama) await llama.dispose();

  // ---- report ----
  let md = `\n| model | threads | lfm2-wasm pp${P} tok/s | lfm2-wasm tg${N} tok/s | llama.cpp pp${P} tok/s | llama.cpp tg${N} tok/s | pp lfm2/llama | tg lfm2/llama |\n|---|---|---|---|---|---|---|---|\n`;
  for (const r of results)
    md += `| ${r.model} | ${r.threads} | ${fmt(r.lfm2.pp)} | ${fmt(r.lfm2.tg)} | ${fmt(r.llama?.pp)} | ${fmt(r.llama?.tg)} | ${fmt(r.ratio?.pp, 3)} | ${fmt(r.ratio?.tg, 3)} |\n`;
  md += `\nmedians of ${REPS} run(s); prefill = ${P} tokens from an empty state, decode = ${N} one-token steps after it`;
  if (!llama) md += '; llama.cpp: n/a (node-llama-cpp not installed or not loadable)';
  md += '\n';
  if (budget !== undefined) {
    md += `\nlfm2-wasm expert cache, budget ${mb(budget)} MB, ${opt.policy} (per benchModel call: its warm-up run + the timed run, ${2 * (P + N)} tokens)\n\n`;
    md += '| model | threads | run | expert hits | misses | hit rate | MB read | MB read/token | read s | read wait s | wait ms/token | wasm heap MB |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n';
    for (const r of results)
      r.lfm2_cache_runs.forEach((c, i) => {
        md += `| ${r.model} | ${r.threads} | ${i + 1} | ${c.expert_hits} | ${c.expert_misses} | ${fmt(100 * c.hit_rate, 1)}% | ${mb(c.bytes_read)} | ${mb(c.bytes_read_per_token)} | ` +
          `${fmt(c.read_seconds, 2)} | ${fmt(c.read_wait_seconds, 2)} | ${fmt((1000 * c.read_wait_seconds) / c.tokens, 1)} | ${mb(c.wasm_heap_bytes)} |\n`;
      });
  }
  for (const r of results)
    if (r.ttft) md += `\n${r.model}: LFM2.load ${fmt(r.ttft.load_seconds, 1)} s, first generated token ${fmt(r.ttft.first_token_seconds, 1)} s after the load began\n`;
  process.stdout.write(md);
  if (opt.json !== undefined) {
    const json = JSON.stringify({ prompt_tokens: P, gen_tokens: N, reps: REPS, threads: THREADS, budget: budget ?? null, node: process.version, results }, null, 1);
    if (opt.json !== '-') {
      fs.writeFileSync(opt.json, json + '\n');
      log(`wrote ${opt.json}`);
    }
    process.stdout.write(json + '\n');
  }
  if (opt.kernels) {
    const { runKernels } = await import('./kernels.mjs');
    runKernels({ threads: THREADS });
  }
}

await main();
