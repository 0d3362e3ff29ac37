#!/usr/bin/env node
// cli.js: the `lfm2` command. Runs the wasm engine under Node. Errors: one line on stderr, exit 1.
import fs from 'node:fs';
import os from 'node:os';
import { benchModel } from './bench.js';
import { DEFAULT_MEMORY_BUDGET, parseBytes } from './units.js';
import { parseArgs } from 'node:util';
import { Engine } from './engine.js';
import { LFM2Error } from './errors.js';
import { openFileReader } from './node-file.js';
import { LFM2 } from './node.js';

const USAGE = `usage: lfm2 <command> -m MODEL [options]
  run        -m MODEL -p TEXT [--chat] [-n N] [--temp T --top-k K --top-p P --min-p M --seed S
             --repeat-penalty R] [--system TEXT]      generate, streaming to stdout
  chat       -m MODEL [--system TEXT]                 interactive chat: /reset, /system TEXT, Ctrl-C
  tokenize   -m MODEL [--no-special] TEXT            JSON array of token ids
  detokenize -m MODEL IDS                             text of comma- or space-separated ids
  bench      -m MODEL [-p 128] [-n 64] [-r 3] [--json]  prefill and decode tokens/s (medians after a warm-up)
  info       -m MODEL [--json]                        architecture, hyperparameters, tensor types, sizes
  logits     -m MODEL --tokens 1,2,3 --out FILE.f32 [--reference]
             float32 [n_tokens x n_vocab]; row i = logits after tokens 0..i, as one prefill batch
common: -t/--threads N (default: all cores), --ctx N, --memory-budget BYTES|3.5GB (default: what a
        wasm32 heap allows; experts beyond it are read from the file as needed), --cache-policy lfu|lru,
        run --verbose`;

const COMMON = {
  model: { type: 'string', short: 'm' },
  threads: { type: 'string', short: 't' },
  ctx: { type: 'string' },
  'memory-budget': { type: 'string' },
  'cache-policy': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
};
const SAMPLING = {
  temp: { type: 'string' }, 'top-k': { type: 'string' }, 'top-p': { type: 'string' }, 'min-p': { type: 'string' },
  seed: { type: 'string' }, 'repeat-penalty': { type: 'string' }, system: { type: 'string' },
};
const COMMANDS = {
  run: { prompt: { type: 'string', short: 'p' }, chat: { type: 'boolean' }, n: { type: 'string', short: 'n' }, verbose: { type: 'boolean', short: 'v' }, ...SAMPLING },
  chat: { ...SAMPLING, n: { type: 'string', short: 'n' } },
  tokenize: { 'no-special': { type: 'boolean' } },
  bench: { prompt: { type: 'string', short: 'p' }, n: { type: 'string', short: 'n' }, reps: { type: 'string', short: 'r' }, json: { type: 'boolean' } },
  detokenize: {},
  info: { json: { type: 'boolean' } },
  logits: { tokens: { type: 'string' }, out: { type: 'string' }, reference: { type: 'boolean' } },
};

function fail(code, msg) {
  throw new LFM2Error(code, msg);
}

function intOpt(v, name, min = 0) {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) < min) fail('ERR_ARG', `--${name} takes a whole number >= ${min}, not '${v}'`);
  return Number(v);
}

async function withModel(values, opts, fn) {
  if (!values.model) fail('ERR_ARG', 'missing -m MODEL');
  const file = openFileReader(values.model);
  // header-only commands compute nothing: one thread is enough
  const engine = await Engine.create({ threads: intOpt(values.threads, 'threads', 1) ?? (opts.headerOnly ? 1 : defaultThreads()) });
  let model;
  try {
    const memoryBudget = values['memory-budget'] !== undefined ? parseBytes(values['memory-budget'], '--memory-budget') : DEFAULT_MEMORY_BUDGET;
    model = engine.openModel(file.read, file.size, { memoryBudget, cachePolicy: cachePolicyOpt(values), ...opts });
    return await fn(model, file);
  } finally {
    model?.free();
    file.close();
    engine.terminate();
  }
}

function cachePolicyOpt(values) {
  const p = values['cache-policy'];
  if (p !== undefined && p !== 'lfu' && p !== 'lru') fail('ERR_ARG', `--cache-policy is lfu or lru, not '${p}'`);
  return p;
}

function formatBytes(n) {
  return n >= 1e9 ? `${(n / 1e9).toFixed(2)} GB` : n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${(n / 1e3).toFixed(1)} kB`;
}

async function info(values) {
  await withModel(values, { headerOnly: true }, (model, file) => {
    const i = model.info();
    if (values.json) {
      process.stdout.write(JSON.stringify(i, null, 1) + '\n');
      return;
    }
    const lines = [
      `name           ${i.name}`,
      `architecture   ${i.architecture} (GGUF v${i.gguf_version}, ${formatBytes(i.file_size)}, ${i.n_tensors} tensors)`,
      `parameters     ${(i.n_params / 1e9).toFixed(3)} B`,
      `layers         ${i.n_layer}: ${i.layers} (C short-conv, A attention)`,
      `embedding      ${i.n_embd}; ${i.n_head} heads of ${i.head_dim}, KV heads ${[...new Set(i.n_head_kv.filter((x) => x))].join('/')}`,
      `feed-forward   ${i.n_ff}` + (i.n_expert ? `; ${i.n_expert} experts, top-${i.n_expert_used}, width ${i.n_ff_exp}, first ${i.n_dense_lead} layers dense` : ''),
      `vocabulary     ${i.n_vocab}; context ${i.context_length}; rope theta ${i.rope_theta}; rms eps ${i.rms_eps}`,
      `tensor bytes   ${formatBytes(i.tensor_bytes)} (dense ${formatBytes(i.dense_bytes)}, experts ${formatBytes(i.expert_bytes)})`,
      `tensor types   ${Object.entries(i.tensor_types).map(([t, v]) => `${t} x${v.tensors} (${formatBytes(v.bytes)})`).join(', ')}`,
    ];
    process.stdout.write(lines.join('\n') + '\n');
  });
}

async function logits(values) {
  if (!values.tokens) fail('ERR_ARG', 'missing --tokens 1,2,3');
  if (!values.out) fail('ERR_ARG', 'missing --out FILE.f32');
  const tokens = values.tokens.split(',').map((s) => {
    if (!/^\s*\d+\s*$/.test(s)) fail('ERR_ARG', `--tokens: '${s}' is not a token id`);
    return Number(s);
  });
  await withModel(values, { reference: !!values.reference }, (model) => {
    const ctx = model.newContext(intOpt(values.ctx, 'ctx', 1) ?? Math.max(tokens.length, Math.min(4096, model.nCtxTrain)));
    try {
      const out = ctx.eval(tokens, { logits: 'all' });
      fs.writeFileSync(values.out, new Uint8Array(out.buffer, out.byteOffset, out.byteLength));
    } finally {
      ctx.free();
    }
  });
}

function numOpt(v, name) {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (v.trim() === '' || !Number.isFinite(x)) fail('ERR_ARG', `--${name} takes a number, not '${v}'`);
  return x;
}

function samplingOf(values) {
  const req = {};
  const set = (k, v) => { if (v !== undefined) req[k] = v; };
  set('temperature', numOpt(values.temp, 'temp'));
  set('top_k', intOpt(values['top-k'], 'top-k'));
  set('top_p', numOpt(values['top-p'], 'top-p'));
  set('min_p', numOpt(values['min-p'], 'min-p'));
  set('seed', intOpt(values.seed, 'seed'));
  set('repeat_penalty', numOpt(values['repeat-penalty'], 'repeat-penalty'));
  set('max_tokens', intOpt(values.n, 'n'));
  return req;
}

async function withSession(values, fn) {
  if (!values.model) fail('ERR_ARG', 'missing -m MODEL');
  const lfm = await LFM2.load(values.model, {
    threads: intOpt(values.threads, 'threads', 1),
    contextLength: intOpt(values.ctx, 'ctx', 1),
    ...(values['memory-budget'] !== undefined ? { memoryBudget: parseBytes(values['memory-budget'], '--memory-budget') } : {}),
    ...(values['cache-policy'] !== undefined ? { cachePolicy: cachePolicyOpt(values) } : {}),
  });
  try {
    return await fn(lfm);
  } finally {
    lfm.unload();
  }
}

function reportSpeed(lfm) {
  const l = lfm.stats().last;
  if (!l) return;
  process.stderr.write(`\n[prompt ${l.evaluated_tokens} tokens, ${l.prefill_tokens_per_s.toFixed(1)} tok/s; ` +
    `generated ${l.completion_tokens} tokens, ${l.decode_tokens_per_s.toFixed(1)} tok/s]\n`);
}

async function streamAnswer(stream) {
  let text = '';
  for await (const c of stream) {
    const piece = c.choices[0]?.delta?.content ?? c.choices[0]?.text ?? '';
    text += piece;
    process.stdout.write(piece);
  }
  return text;
}

async function run(values) {
  if (values.prompt === undefined) fail('ERR_ARG', 'missing -p TEXT');
  const req = samplingOf(values);
  await withSession(values, async (lfm) => {
    const messages = [...(values.system ? [{ role: 'system', content: values.system }] : []), { role: 'user', content: values.prompt }];
    const stream = values.chat
      ? await lfm.chat.completions.create({ ...req, messages, stream: true })
      : await lfm.completions.create({ ...req, prompt: values.prompt, stream: true });
    await streamAnswer(stream);
    process.stdout.write('\n');
    reportSpeed(lfm);
    if (values.verbose) {
      const st = lfm.stats();
      const acc = st.expert_hits + st.expert_misses;
      process.stderr.write(`[memory: dense ${(st.dense_bytes / 1e6).toFixed(1)} MB, experts resident ${(st.expert_bytes / 1e6).toFixed(1)} MB ` +
        `in ${st.expert_slots} slots, contexts ${(st.context_bytes / 1e6).toFixed(1)} MB, wasm heap ${(st.memory_bytes / 1e6).toFixed(1)} MB; ` +
        `experts: ${st.expert_hits} hits / ${acc} (${acc ? ((100 * st.expert_hits) / acc).toFixed(1) : '-'} %), ${st.expert_evictions} evictions, ` +
        `${(st.bytes_read / 1e6).toFixed(1)} MB read in ${st.read_seconds.toFixed(3)} s, ${st.read_wait_seconds.toFixed(3)} s of it waited for]\n`);
    }
  });
}

async function chat(values) {
  const req = samplingOf(values);
  const { createInterface } = await import('node:readline');
  await withSession(values, async (lfm) => {
    let system = values.system ?? null;
    let history = [];
    let current = null; // AbortController of the answer being generated
    const rl = createInterface({ input: process.stdin, output: process.stdout, prompt: '> ' });
    let lastSigint = 0;
    rl.on('SIGINT', () => {
      if (current) { current.abort(); return; } // first Ctrl-C: stop the answer
      if (Date.now() - lastSigint < 2000) { rl.close(); return; } // a second one exits
      lastSigint = Date.now();
      process.stdout.write('\n(press Ctrl-C again to exit)\n');
      rl.prompt();
    });
    process.stdout.write('lfm2 chat: /reset clears the conversation, /system TEXT sets the system prompt, Ctrl-C stops an answer, twice exits\n');
    rl.prompt();
    for await (const line of rl) {
      const text = line.trim();
      if (text === '/reset') { history = []; process.stdout.write('(conversation cleared)\n'); rl.prompt(); continue; }
      if (text.startsWith('/system')) { system = text.slice(7).trim() || null; history = []; process.stdout.write('(system prompt set; conversation cleared)\n'); rl.prompt(); continue; }
      if (!text) { rl.prompt(); continue; }
      history.push({ role: 'user', content: text });
      current = new AbortController();
      let answer = '';
      try {
        const messages = [...(system ? [{ role: 'system', content: system }] : []), ...history];
        answer = await streamAnswer(await lfm.chat.completions.create({ ...req, messages, stream: true, signal: current.signal }));
      } catch (e) {
        if (e.code !== 'ERR_ABORTED') throw e;
        process.stdout.write(' [stopped]');
      } finally {
        current = null;
      }
      history.push({ role: 'assistant', content: answer });
      process.stdout.write('\n');
      reportSpeed(lfm);
      rl.prompt();
    }
  });
}

async function tokenize(values, positionals) {
  if (positionals.length === 0) fail('ERR_ARG', 'missing TEXT');
  await withModel(values, { headerOnly: true }, (model) => {
    const special = !values['no-special'];
    const ids = model.tokenize(positionals.join(' '), { addSpecial: special, parseSpecial: special });
    process.stdout.write(JSON.stringify(Array.from(ids)) + '\n');
  });
}

async function detokenize(values, positionals) {
  const src = positionals.join(' ').replace(/^\[|\]$/g, '').trim();
  const ids = src === '' ? [] : src.split(/[\s,]+/).map((s) => {
    if (!/^\d+$/.test(s)) fail('ERR_ARG', `'${s}' is not a token id`);
    return Number(s);
  });
  await withModel(values, { headerOnly: true }, (model) => {
    process.stdout.write(model.detokenize(ids) + '\n');
  });
}

async function bench(values) {
  const opts = { prompt: intOpt(values.prompt, 'prompt', 1) ?? 128, gen: intOpt(values.n, 'n', 1) ?? 64, reps: intOpt(values.reps, 'reps', 1) ?? 3 };
  const threads = intOpt(values.threads, 'threads', 1) ?? defaultThreads();
  await withModel({ ...values, threads: String(threads) }, {}, (model, file) => {
    const r = { model: values.model, threads, ...benchModel(model, opts), memory_bytes: model.e.memoryBytes, file_bytes: file.size, ...model.stats() };
    if (values.json) {
      process.stdout.write(JSON.stringify(r, null, 1) + '\n');
      return;
    }
    process.stdout.write(`| model | threads | pp${opts.prompt} tok/s | tg${opts.gen} tok/s |\n|---|---|---|---|\n` +
      `| ${values.model} | ${threads} | ${r.prefill_tokens_per_s.toFixed(2)} | ${r.decode_tokens_per_s.toFixed(2)} |\n`);
  });
}

function defaultThreads() {
  return os.availableParallelism?.() ?? os.cpus().length;
}

const HANDLERS = { run, chat, tokenize, detokenize, info, logits, bench };

async function main(argv) {
  const cmd = argv[0];
  if (!cmd || cmd === '-h' || cmd === '--help' || cmd === 'help') {
    process.stdout.write(USAGE + '\n');
    return;
  }
  if (!HANDLERS[cmd]) fail('ERR_ARG', `unknown command '${cmd}' (try: lfm2 --help)`);
  let parsed;
  try {
    parsed = parseArgs({ args: argv.slice(1), options: { ...COMMON, ...COMMANDS[cmd] }, allowPositionals: true });
  } catch (e) {
    fail('ERR_ARG', e.message);
  }
  if (parsed.values.help) {
    process.stdout.write(USAGE + '\n');
    return;
  }
  await HANDLERS[cmd](parsed.values, parsed.positionals);
}

main(process.argv.slice(2)).catch((e) => {
  const code = e instanceof LFM2Error ? e.code : 'ERR_INTERNAL';
  process.stderr.write(`lfm2: ${code}: ${e.message.split('\n')[0]}\n`);
  process.exitCode = 1;
});
