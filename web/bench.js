// bench.js: prefill and decode speed of the engine on a model, as llama-bench measures them:
// pp = one batch of `prompt` tokens from an empty state; tg = `gen` one-token steps after it.
// Each figure is the median of `reps` runs after one warm-up run (V8 and the caches warm up).
import { performance } from 'node:perf_hooks';

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** @param {import('./engine.js').Model} model */
export function benchModel(model, { prompt = 128, gen = 64, reps = 3 } = {}) {
  const V = model.nVocab;
  let seed = 42;
  const tok = () => (seed = (seed * 1103515245 + 12345) % 2147483648) % V;
  const ctx = model.newContext(prompt + gen + 1);
  const pp = [], tg = [];
  try {
    for (let r = 0; r <= reps; r++) {
      ctx.truncate(0);
      const toks = Array.from({ length: prompt }, tok);
      let t0 = performance.now();
      ctx.decode(toks);
      const tp = performance.now() - t0;
      t0 = performance.now();
      for (let i = 0; i < gen; i++) ctx.decode([tok()]);
      const tt = performance.now() - t0;
      if (r === 0) continue; // warm-up
      pp.push((prompt * 1000) / tp);
      tg.push((gen * 1000) / tt);
    }
  } finally {
    ctx.free();
  }
  return { prompt_tokens: prompt, gen_tokens: gen, reps, prefill_tokens_per_s: median(pp), decode_tokens_per_s: median(tg), prefill_runs: pp, decode_runs: tg };
}
