#!/usr/bin/env node
// cli.js: the `lfm2` command. Runs the wasm engine under Node. Errors: one line on stderr, exit 1.
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { Engine } from './engine.js';
import { LFM2Error } from './errors.js';
import { openFileReader } from './node-file.js';

const USAGE = `usage: lfm2 <command> -m MODEL [options]
  info      -m MODEL [--json]                          architecture, hyperparameters, tensor types, sizes
  logits    -m MODEL --tokens 1,2,3 --out FILE.f32 [--reference] [--ctx N]
            float32 [n_tokens x n_vocab]; row i = logits after tokens 0..i, as one prefill batch
common: -t/--threads N`;

const COMMON = {
  model: { type: 'string', short: 'm' },
  threads: { type: 'string', short: 't' },
  ctx: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
};
const COMMANDS = {
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
  const engine = await Engine.create({ threads: intOpt(values.threads, 'threads', 1) ?? 1 });
  let model;
  try {
    model = engine.openModel(file.read, file.size, opts);
    return await fn(model, file);
  } finally {
    model?.free();
    file.close();
    engine.terminate();
  }
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

const HANDLERS = { info, logits };

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
