// gguf-writer.mjs: writes GGUF v3 headers for tests. `writeSparseModel` lays out an LFM2 model's
// header and tensor table and extends the file to its full size without writing the tensor data
// (a sparse file), so a 4+ GB model costs only its header on disk.
import fs from 'node:fs';

const T = { U32: 4, I32: 5, F32: 6, BOOL: 7, STRING: 8, ARRAY: 9 };
// ggml types used here: block elements and bytes
const TYPES = { F32: [0, 1, 4], Q4_0: [2, 32, 18], Q8_0: [8, 32, 34] };

class Buf {
  constructor() { this.parts = []; this.len = 0; }
  push(b) { this.parts.push(b); this.len += b.length; }
  u32(v) { const b = Buffer.alloc(4); b.writeUInt32LE(v); this.push(b); }
  i32(v) { const b = Buffer.alloc(4); b.writeInt32LE(v); this.push(b); }
  u64(v) { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); this.push(b); }
  f32(v) { const b = Buffer.alloc(4); b.writeFloatLE(v); this.push(b); }
  str(s) { const b = Buffer.from(s, 'utf8'); this.u64(b.length); this.push(b); }
  concat() { return Buffer.concat(this.parts); }
}

/** kv: [key, type name, value] ; arrays: [key, 'ARRAY', {type, values}] */
function writeKv(b, [key, type, v]) {
  b.str(key);
  b.u32(T[type]);
  const scalar = (t, x) => ({ U32: () => b.u32(x), I32: () => b.i32(x), F32: () => b.f32(x), BOOL: () => b.push(Buffer.from([x ? 1 : 0])), STRING: () => b.str(x) })[t]();
  if (type === 'ARRAY') {
    b.u32(T[v.type]);
    b.u64(v.values.length);
    for (const x of v.values) scalar(v.type, x);
  } else scalar(type, v);
}

/** Deterministic test data: F32 tensors from f(i); Q4_0 rows of random nibbles with a small scale. */
export function fillData(t, rnd, f32 = () => rnd() - 0.5) {
  const n = t.ne.reduce((a, x) => a * x, 1);
  if (t.type === 'F32') {
    const v = new Float32Array(n);
    for (let i = 0; i < n; i++) v[i] = f32(i);
    return Buffer.from(v.buffer);
  }
  if (t.type === 'Q4_0') {
    const b = Buffer.alloc(tensorBytes('Q4_0', t.ne));
    for (let i = 0; i < b.length; i += 18) {
      b.writeUInt16LE(0x2c00, i); // d = 1/16 in f16
      for (let j = 2; j < 18; j++) b[i + j] = Math.floor(rnd() * 256);
    }
    return b;
  }
  throw new Error(`fillData: ${t.type}`);
}

export function tensorBytes(type, ne) {
  const [, blck, bytes] = TYPES[type];
  return (ne.reduce((a, x) => a * x, 1) / blck) * bytes;
}

/**
 * Write a GGUF header (kv, tensors: [{name, type, ne}]) and size the file; `fill(tensor)` may
 * return a Buffer of a tensor's data (others stay zero, as holes). Returns {path, size, dataOffset}.
 */
export function writeGguf(path, kv, tensors, { alignment = 32, fill = () => null } = {}) {
  const b = new Buf();
  b.push(Buffer.from('GGUF'));
  b.u32(3);
  b.u64(tensors.length);
  b.u64(kv.length);
  for (const e of kv) writeKv(b, e);
  let off = 0;
  const offsets = [];
  for (const t of tensors) {
    b.str(t.name);
    b.u32(t.ne.length);
    for (const n of t.ne) b.u64(n);
    b.u32(TYPES[t.type][0]);
    b.u64(off);
    offsets.push(off);
    off += Math.ceil(tensorBytes(t.type, t.ne) / alignment) * alignment;
  }
  const header = b.concat();
  const dataOffset = Math.ceil(header.length / alignment) * alignment;
  fs.writeFileSync(path, header);
  const size = dataOffset + off;
  fs.truncateSync(path, size);
  const fd = fs.openSync(path, 'r+');
  try {
    tensors.forEach((t, i) => {
      const data = fill(t);
      if (data) fs.writeSync(fd, data, 0, data.length, dataOffset + offsets[i]);
    });
  } finally {
    fs.closeSync(fd);
  }
  return { path, size, dataOffset };
}

/** An LFM2-MoE model's keys and tensors (defaults: LFM2-8B-A1B's shape). */
export function lfm2moeLayout(o = {}) {
  const s = { layers: 24, attn: [2, 6, 10, 14, 18, 21], embd: 2048, heads: 32, kvHeads: 8, ff: 7168, experts: 32,
    used: 4, ffExp: 1792, dense: 2, vocab: 65536, type: 'Q4_0', ...o };
  const hd = s.embd / s.heads;
  const kv = [
    ['general.architecture', 'STRING', 'lfm2moe'],
    ['general.name', 'STRING', o.name ?? 'synthetic LFM2-8B-A1B shape'],
    ['lfm2moe.block_count', 'U32', s.layers],
    ['lfm2moe.context_length', 'U32', 128000],
    ['lfm2moe.embedding_length', 'U32', s.embd],
    ['lfm2moe.feed_forward_length', 'U32', s.ff],
    ['lfm2moe.attention.head_count', 'U32', s.heads],
    ['lfm2moe.attention.head_count_kv', 'ARRAY', { type: 'I32', values: Array.from({ length: s.layers }, (_, i) => (s.attn.includes(i) ? s.kvHeads : 0)) }],
    ['lfm2moe.rope.freq_base', 'F32', 1e6],
    ['lfm2moe.attention.layer_norm_rms_epsilon', 'F32', 1e-5],
    ['lfm2moe.expert_count', 'U32', s.experts],
    ['lfm2moe.expert_used_count', 'U32', s.used],
    ['lfm2moe.expert_feed_forward_length', 'U32', s.ffExp],
    ['lfm2moe.leading_dense_block_count', 'U32', s.dense],
    ['lfm2moe.expert_gating_func', 'U32', 2],
    ['lfm2moe.vocab_size', 'U32', s.vocab],
    ['lfm2moe.shortconv.l_cache', 'U32', 3],
  ];
  const E = s.embd, q = s.type, t = [];
  t.push({ name: 'token_embd.weight', type: q, ne: [E, s.vocab] });
  for (let i = 0; i < s.layers; i++) {
    const p = `blk.${i}.`;
    t.push({ name: p + 'attn_norm.weight', type: 'F32', ne: [E] }, { name: p + 'ffn_norm.weight', type: 'F32', ne: [E] });
    if (s.attn.includes(i)) {
      t.push({ name: p + 'attn_q.weight', type: q, ne: [E, E] }, { name: p + 'attn_k.weight', type: q, ne: [E, s.kvHeads * hd] },
        { name: p + 'attn_v.weight', type: q, ne: [E, s.kvHeads * hd] }, { name: p + 'attn_output.weight', type: q, ne: [E, E] },
        { name: p + 'attn_q_norm.weight', type: 'F32', ne: [hd] }, { name: p + 'attn_k_norm.weight', type: 'F32', ne: [hd] });
    } else {
      t.push({ name: p + 'shortconv.conv.weight', type: 'F32', ne: [3, E] }, { name: p + 'shortconv.in_proj.weight', type: q, ne: [E, 3 * E] },
        { name: p + 'shortconv.out_proj.weight', type: q, ne: [E, E] });
    }
    if (i < s.dense) {
      t.push({ name: p + 'ffn_gate.weight', type: q, ne: [E, s.ff] }, { name: p + 'ffn_up.weight', type: q, ne: [E, s.ff] },
        { name: p + 'ffn_down.weight', type: q, ne: [s.ff, E] });
    } else {
      t.push({ name: p + 'ffn_gate_inp.weight', type: 'F32', ne: [E, s.experts] }, { name: p + 'exp_probs_b.bias', type: 'F32', ne: [s.experts] },
        { name: p + 'ffn_gate_exps.weight', type: q, ne: [E, s.ffExp, s.experts] }, { name: p + 'ffn_up_exps.weight', type: q, ne: [E, s.ffExp, s.experts] },
        { name: p + 'ffn_down_exps.weight', type: q, ne: [s.ffExp, E, s.experts] });
    }
  }
  t.push({ name: 'token_embd_norm.weight', type: 'F32', ne: [E] });
  return { kv, tensors: t };
}
