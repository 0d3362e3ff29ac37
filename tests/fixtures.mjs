// fixtures.mjs: the fixture models and llama.cpp's references (tests/fixtures, see FORMAT.md).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures');
export const index = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'index.json'), 'utf8'));
export const entries = Object.keys(index.models);

export function modelPath(entry) {
  return path.join(FIXTURES, 'models', index.models[entry].file);
}

export function meta(entry) {
  return JSON.parse(fs.readFileSync(path.join(FIXTURES, entry, 'default', 'result.json'), 'utf8'));
}

export function refLogits(entry, ref) {
  const b = fs.readFileSync(path.join(FIXTURES, entry, ref, 'logits.f32'));
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
}

export function tolerance(entry) {
  const cls = index.models[entry].tolerance_class;
  return { cls, ...index.tolerance_classes[cls] };
}

/** max |a-b| (NaN-safe), mean |a-b| and top-1 agreement over rows of nVocab. */
export function compare(a, b, nVocab) {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  const rows = a.length / nVocab;
  let max = 0, sum = 0, top1 = 0;
  for (let r = 0; r < rows; r++) {
    let ia = 0, ib = 0;
    for (let v = 0; v < nVocab; v++) {
      const i = r * nVocab + v, d = Math.abs(a[i] - b[i]);
      if (!(d <= max)) max = d;
      sum += d;
      if (a[i] > a[r * nVocab + ia]) ia = v;
      if (b[i] > b[r * nVocab + ib]) ib = v;
    }
    if (ia === ib) top1++;
  }
  return { max, mean: sum / a.length, top1, rows };
}
