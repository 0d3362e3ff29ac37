// state.test.mjs: the evaluation state through the wasm engine: one prefill batch vs one-token
// decodes, truncation (chat re-use) vs a fresh state, and the errors of evaluation.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { Engine } from '../web/engine.js';
import { compare, meta, modelPath } from './fixtures.mjs';

let engine;
before(async () => { engine = await Engine.create({ threads: 2 }); });
after(() => engine.terminate());

function open(entry) {
  const buf = fs.readFileSync(modelPath(entry));
  return engine.openModel((view, off) => { view.set(buf.subarray(off, off + view.length)); return view.length; }, buf.length);
}

// A long deterministic token sequence, to cross the conv-state snapshots (every 64 tokens).
function longTokens(n, nVocab) {
  let x = 12345;
  return Array.from({ length: n }, () => (x = (x * 1103515245 + 12345) % 2147483648) % nVocab);
}

for (const entry of ['tiny-f32', 'kq2-f32', 'dense-f32', 'tiny-q4_0', 'kq-q4_k_m']) {
  describe(entry, () => {
    test('one batch of 40 == 40 one-token decodes', () => {
      const model = open(entry);
      const ctx = model.newContext(64);
      const toks = meta(entry).full_tokens;
      const batch = ctx.eval(toks, { logits: 'all' });
      ctx.truncate(0);
      const V = model.nVocab, steps = new Float32Array(batch.length);
      toks.forEach((t, i) => steps.set(ctx.eval([t]), i * V));
      const r = compare(batch, steps, V);
      assert.ok(r.max <= 1e-4, `max diff ${r.max}`);
      ctx.free();
      model.free();
    });

    test('truncate then re-evaluate == fresh state, across conv snapshots', () => {
      const model = open(entry);
      const V = model.nVocab, toks = longTokens(200, V);
      const fresh = model.newContext(256);
      const want = fresh.eval(toks, { logits: 'all' });
      const ctx = model.newContext(256);
      ctx.eval(toks.slice(0, 150).concat(longTokens(30, 7)), { logits: 'none' });
      for (const keep of [150, 130, 64, 63, 1]) {
        ctx.truncate(keep);
        assert.equal(ctx.nPast, keep);
        const got = ctx.eval(toks.slice(keep), { logits: 'all' });
        const r = compare(got, want.subarray(keep * V), V);
        assert.ok(r.max <= 1e-5, `keep ${keep}: max diff ${r.max}`);
      }
      fresh.free();
      ctx.free();
      model.free();
    });
  });
}

describe('evaluation errors', () => {
  test('out-of-range token, full context, bad truncation: clear errors, state kept', () => {
    const model = open('tiny-f32');
    const ctx = model.newContext(32);
    const first = ctx.eval([1, 2, 3]);
    assert.throws(() => ctx.eval([5, model.nVocab]), { code: 'LFM2_E_TOKEN', message: /vocabulary/ });
    assert.throws(() => ctx.eval([5, -1]), { code: 'LFM2_E_TOKEN' });
    assert.throws(() => ctx.eval(new Array(30).fill(1)), { code: 'LFM2_E_CONTEXT_FULL', message: /context/ });
    assert.throws(() => ctx.truncate(4), { code: 'LFM2_E_ARG' });
    assert.equal(ctx.nPast, 3);
    ctx.truncate(2);
    assert.deepEqual(ctx.eval([3]), first);
    ctx.free();
    assert.throws(() => ctx.eval([1]), { code: 'ERR_UNLOADED' });
    model.free();
    assert.throws(() => model.newContext(), { code: 'ERR_UNLOADED' });
  });
});
