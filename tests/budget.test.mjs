// budget.test.mjs: experts streamed under a memory budget, through the wasm engine: the same logits
// as a fully resident model, and a wasm heap that stays within the budget plus a stated overhead.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Engine } from '../web/engine.js';
import { openFileReader } from '../web/node-file.js';
import { meta, modelPath } from './fixtures.mjs';
import { fillData, lfm2moeLayout, writeGguf } from './tools/gguf-writer.mjs';

// What the budget does not count: the runtime's initial 64 MB heap, metadata, allocator slack.
const OVERHEAD = 80e6;

let engine;
before(async () => { engine = await Engine.create({ threads: 2 }); });
after(() => engine.terminate());

function logitsUnder(entry, budget, cachePolicy) {
  return logitsOf(fs.readFileSync(modelPath(entry)), meta(entry).full_tokens, budget, cachePolicy);
}

function logitsOf(buf, toks, budget, cachePolicy) {
  const model = engine.openModel((v, off) => { v.set(buf.subarray(off, off + v.length)); return v.length; }, buf.length, { memoryBudget: budget, cachePolicy });
  try {
    const ctx = model.newContext(64);
    const out = new Float32Array(toks.length * model.nVocab);
    out.set(ctx.eval(toks.slice(0, 24), { logits: 'all' }));
    toks.slice(24).forEach((t, i) => out.set(ctx.eval([t]), (24 + i) * model.nVocab)); // decode steps
    const stats = model.stats();
    ctx.free();
    return { out, stats };
  } finally {
    model.free();
  }
}

for (const entry of ['tiny-q4_0', 'kq-q4_k_m', 'kq2-q8_0-exps_q4_0']) {
  test(`${entry}: logits under a tiny budget equal the resident ones, bit for bit`, () => {
    const full = logitsUnder(entry, 0);
    const slab = full.stats.expert_bytes / full.stats.expert_slots;
    assert.equal(full.stats.expert_misses, 0);
    const one = full.stats.dense_bytes + full.stats.context_bytes + slab; // one expert at a time
    for (const [budget, policy] of [[one, 'lfu'], [one + 2 * slab, 'lru'], [one + 5 * slab, 'lfu']]) {
      const got = logitsUnder(entry, budget, policy);
      assert.deepEqual(got.out, full.out, `budget ${budget} ${policy}`);
      assert.ok(got.stats.expert_evictions > 0 && got.stats.expert_bytes <= budget - full.stats.dense_bytes - full.stats.context_bytes,
        JSON.stringify(got.stats));
    }
  });
}

test('reads overlapped with the worker\'s compute give the resident logits, bit for bit', () => {
  // Expert products big enough for the thread pool, so that the evaluating thread reads the slabs
  // it holds ahead while the worker computes (tests/c/test_engine.c does the same natively). Q4_0
  // slabs of 1.8 MB: read ahead in 1 MB pieces that end inside a group of 8 rows; with half of the
  // slabs cached (the 24-slab budget) each group is packed (kq_pack) as the piece completing it lands.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lfm2-overlap-'));
  const { kv, tensors } = lfm2moeLayout({ layers: 4, attn: [1], embd: 256, heads: 4, kvHeads: 2, ff: 512, experts: 16, used: 4, ffExp: 4096, dense: 1, vocab: 1024 });
  assert.ok(tensors.every((t) => t.type === 'Q4_0' || t.type === 'F32'));
  let seed = 7;
  const rnd = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
  const fill = (t) => fillData(t, rnd, t.name.endsWith('norm.weight') ? () => 1 : () => rnd() - 0.5);
  try {
    const buf = fs.readFileSync(writeGguf(path.join(dir, 'm.gguf'), kv, tensors, { fill }).path);
    const toks = Array.from({ length: 40 }, (_, i) => (i * 389 + 11) % 1024);
    const full = logitsOf(buf, toks, 0);
    assert.ok(full.out.every(Number.isFinite));
    const slab = full.stats.expert_bytes / full.stats.expert_slots;
    const base = full.stats.dense_bytes + full.stats.context_bytes;
    for (const [budget, policy] of [[base + slab, 'lfu'], [base + 6 * slab, 'lfu'], [base + 24 * slab, 'lru']]) {
      const got = logitsOf(buf, toks, budget, policy);
      const st = got.stats;
      assert.deepEqual(got.out, full.out, `budget ${budget} ${policy}`);
      assert.ok(st.expert_evictions > 0 && st.expert_bytes <= budget - base, JSON.stringify(st));
      // one slot: nothing can be read ahead; more: some reads overlap the compute
      assert.ok(budget === base + slab ? st.read_wait_seconds === st.read_seconds : st.read_wait_seconds < st.read_seconds, JSON.stringify(st));
    }
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
});

test('a 400 MB model under a 100 MB budget keeps the wasm heap within budget + overhead', async () => {
  const engine = await Engine.create({ threads: 2 }); // a fresh heap
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lfm2-budget-'));
  // A sparse file: the experts are zeros (holes), but embeddings, norms and routers are real, so
  // the routing varies from token to token as in a trained model.
  const { kv, tensors } = lfm2moeLayout({ layers: 8, attn: [2, 6], embd: 512, heads: 8, kvHeads: 2, ff: 1024, experts: 64, used: 4, ffExp: 1024, dense: 1, vocab: 4096 });
  let seed = 1;
  const rnd = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
  const fill = (t) => (t.name === 'token_embd.weight' || t.name.includes('ffn_gate_inp') ? fillData(t, rnd)
    : t.name.endsWith('norm.weight') ? fillData(t, rnd, () => 1) : null);
  const { path: file, size } = writeGguf(path.join(dir, 'big.gguf'), kv, tensors, { fill });
  const f = openFileReader(file);
  const budget = 100e6;
  try {
    const model = engine.openModel(f.read, f.size, { memoryBudget: budget });
    const ctx = model.newContext(256);
    for (let i = 0; i < 20; i++) ctx.eval([(i * 37) % 4096, (i * 91) % 4096], { logits: 'last' });
    const st = model.stats();
    ctx.free();
    model.free();
    assert.ok(size > 3.5 * budget, `model ${size} bytes`);
    assert.ok(st.expert_misses > 0 && st.expert_evictions > 0, JSON.stringify(st));
    assert.ok(st.dense_bytes + st.expert_bytes + st.context_bytes <= budget, JSON.stringify(st));
    assert.ok(engine.memoryBytes <= budget + OVERHEAD, `wasm heap ${engine.memoryBytes} > ${budget} + ${OVERHEAD}`);
    // every byte read is the header, the dense part, or an expert miss
    assert.ok(Math.abs(f.bytesRead - (st.dense_bytes + st.bytes_read)) < 2e6, `read ${f.bytesRead}, ${JSON.stringify(st)}`);
  } finally {
    f.close();
    engine.terminate();
    fs.rmSync(dir, { recursive: true });
  }
});

test('budgets too small are clear errors naming the minimum', () => {
  const buf = fs.readFileSync(modelPath('tiny-q4_0'));
  const read = (v, off) => { v.set(buf.subarray(off, off + v.length)); return v.length; };
  assert.throws(() => engine.openModel(read, buf.length, { memoryBudget: 50000 }), { code: 'LFM2_E_BUDGET', message: /need at least \d+ bytes/ });
  const model = engine.openModel(read, buf.length, { memoryBudget: 400000 });
  assert.throws(() => model.newContext(4096), { code: 'LFM2_E_BUDGET', message: /contexts/ });
  model.free();
});
