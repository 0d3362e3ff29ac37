// single-thread.test.mjs: the single-thread wasm build (wasm/dist/lfm2-st.mjs, no pthreads), which
// browsers run on pages that are not cross-origin isolated: it loads under Node and gives the same
// logits as the threaded build, bit for bit, on every fixture.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { Engine } from '../web/engine.js';
import { entries, meta, modelPath } from './fixtures.mjs';

let mt, st;
before(async () => {
  mt = await Engine.create({ threads: 2 });
  st = await Engine.create({ singleThread: true, threads: 4 });
});
after(() => { mt?.terminate(); st?.terminate(); });

function logitsOf(engine, entry) {
  const buf = fs.readFileSync(modelPath(entry));
  const model = engine.openModel((view, off) => { view.set(buf.subarray(off, off + view.length)); return view.length; }, buf.length);
  try {
    const ctx = model.newContext(64);
    try {
      return ctx.eval(meta(entry).full_tokens, { logits: 'all' });
    } finally { ctx.free(); }
  } finally { model.free(); }
}

test('the single-thread build: no pthread pool, one thread whatever was asked; Node has threads', () => {
  assert.equal(Engine.threadsAvailable(), true);
  assert.equal(mt.threaded, true);
  assert.equal(mt.threads, 2);
  assert.equal(st.threaded, false);
  assert.equal(st.threads, 1);
  assert.equal(st.m.PThread, undefined);
});

for (const entry of entries) {
  test(`same logits as the threaded build: ${entry}`, () => {
    const a = logitsOf(mt, entry), b = logitsOf(st, entry);
    assert.equal(a.length, b.length);
    let diff = 0;
    for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) diff++;
    assert.equal(diff, 0, `${diff} of ${a.length} logits differ`);
  });
}
