// cli.test.mjs: the `lfm2` command as a user runs it: output, files written, and one-line errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Engine } from '../web/engine.js';
import { openFileReader } from '../web/node-file.js';
import { compare, meta, modelPath, refLogits } from './fixtures.mjs';
import { lfm2moeLayout, writeGguf } from './tools/gguf-writer.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lfm2-cli-'));
const lfm2 = (...args) => spawnSync(process.execPath, [path.join(root, 'web', 'cli.js'), ...args], { encoding: 'utf8' });

test('info: text and --json', () => {
  const r = lfm2('info', '-m', modelPath('kq-q4_k_m'));
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /architecture\s+lfm2moe/);
  assert.match(r.stdout, /CACA/);
  assert.match(r.stdout, /Q6_K/);
  const j = JSON.parse(lfm2('info', '-m', modelPath('dense-f32'), '--json').stdout);
  assert.equal(j.architecture, 'lfm2');
  assert.equal(j.layers, 'CCACAC');
  assert.equal(j.n_vocab, 1024);
  assert.deepEqual(j.n_head_kv, [0, 0, 2, 0, 2, 0]);
});

test('logits: writes [n x n_vocab] float32 equal to the references', () => {
  const entry = 'tiny-q8_0', toks = meta(entry).full_tokens, out = path.join(tmp, 'l.f32');
  for (const [flag, ref, tol] of [[[], 'precise', 1e-2], [['--reference'], 'numpy_exact', 1e-2]]) {
    const r = lfm2('logits', '-m', modelPath(entry), '--tokens', toks.join(','), '--out', out, ...flag);
    assert.equal(r.status, 0, r.stderr);
    const b = fs.readFileSync(out), got = new Float32Array(b.buffer, b.byteOffset, b.length / 4);
    assert.equal(got.length, toks.length * 1024);
    assert.ok(compare(got, refLogits(entry, ref), 1024).max <= tol);
  }
});

test('errors: one line on stderr, non-zero exit, no stack trace', () => {
  const bad = path.join(tmp, 'bad.gguf');
  fs.writeFileSync(bad, fs.readFileSync(modelPath('tiny-q4_0')).subarray(0, 1000));
  const cases = [
    [['info', '-m', bad], /LFM2_E_TRUNCATED/],
    [['info', '-m', path.join(tmp, 'missing.gguf')], /ERR_FILE: cannot open/],
    [['info'], /ERR_ARG: missing -m/],
    [['frobnicate'], /ERR_ARG: unknown command/],
    [['logits', '-m', modelPath('tiny-q4_0'), '--tokens', '1,99999', '--out', path.join(tmp, 'x')], /LFM2_E_TOKEN/],
    [['logits', '-m', modelPath('tiny-q4_0'), '--tokens', '1,x', '--out', path.join(tmp, 'x')], /ERR_ARG/],
    [['logits', '-m', modelPath('tiny-q4_0'), '--tokens', '1,2,3', '--ctx', '2', '--out', path.join(tmp, 'x')], /LFM2_E_CONTEXT_FULL/],
    [['info', '-m', modelPath('tiny-q4_0'), '--bogus'], /ERR_ARG/],
  ];
  for (const [args, re] of cases) {
    const r = lfm2(...args);
    assert.notEqual(r.status, 0, args.join(' '));
    assert.match(r.stderr, re);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  }
});

test('info on a 4.4 GB model reads only its header', async () => {
  const { kv, tensors } = lfm2moeLayout();
  const { path: file, size, dataOffset } = writeGguf(path.join(tmp, 'big.gguf'), kv, tensors);
  assert.ok(size > 4.3e9, `size ${size}`);
  const r = lfm2('info', '-m', file, '--json');
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.equal(j.file_size, size);
  assert.equal(j.n_expert, 32);
  assert.ok(j.expert_bytes > 4.3e9 && j.dense_bytes < 0.4e9, JSON.stringify(j));
  // the same through the engine with a counting reader: nothing past the tensor table
  const engine = await Engine.create({ threads: 1 });
  const f = openFileReader(file);
  try {
    const model = engine.openModel(f.read, f.size, { headerOnly: true });
    assert.equal(model.info().n_layer, 24);
    model.free();
    // the header is read in 64 KiB pieces: one piece past its end at most
    assert.ok(f.bytesRead <= dataOffset + 65536, `read ${f.bytesRead} bytes of a ${dataOffset}-byte header`);
  } finally {
    f.close();
    engine.terminate();
    fs.rmSync(file);
  }
});

test('tokenize / detokenize print llama.cpp\'s ids and text', () => {
  const cases = JSON.parse(fs.readFileSync(path.join(root, 'tests', 'fixtures', 'tokenizer.json'), 'utf8')).tests;
  const c = cases.find((t) => t.text.includes('<|im_start|>')) ?? cases[0];
  const m = modelPath('tiny-f32');
  assert.deepEqual(JSON.parse(lfm2('tokenize', '-m', m, c.text).stdout), c.ids);
  assert.deepEqual(JSON.parse(lfm2('tokenize', '-m', m, '--no-special', c.text).stdout), c.ids_no_special);
  assert.equal(lfm2('detokenize', '-m', m, c.ids.join(',')).stdout, c.detok + '\n');
  assert.match(lfm2('detokenize', '-m', m, '1,99999').stderr, /LFM2_E_TOKEN/);
});

test('run streams the greedy continuation and reports speeds on stderr', () => {
  const entry = 'dense-f32', m = modelPath(entry);
  const want = lfm2('detokenize', '-m', m, meta(entry).greedy_gen.join(',')).stdout.trim();
  const r = lfm2('run', '-m', m, '-p', 'Write a haiku about the sea, please.', '--chat', '--temp', '0', '--repeat-penalty', '1', '-n', '16');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), want.trim());
  assert.match(r.stderr, /prompt 24 tokens, [\d.]+ tok\/s; generated 16 tokens, [\d.]+ tok\/s/);
  assert.match(lfm2('run', '-m', m, '-p', 'x', '--temp', 'hot').stderr, /ERR_ARG: --temp takes a number/);
});

test('chat reads turns from stdin, with /system and /reset', () => {
  const r = spawnSync(process.execPath, [path.join(root, 'web', 'cli.js'), 'chat', '-m', modelPath('tiny-f32'), '-n', '4', '--temp', '0'],
    { input: '/system You are terse.\nhello\n/reset\nhello again\n', encoding: 'utf8', timeout: 60000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /system prompt set/);
  assert.match(r.stdout, /conversation cleared/);
  assert.equal((r.stderr.match(/generated 4 tokens/g) ?? []).length, 2, r.stderr);
});
