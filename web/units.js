// units.js: byte sizes as users write them: 3500000000, "3.5GB", "2GiB", "512MB".
import { LFM2Error } from './errors.js';

const UNITS = { '': 1, B: 1, KB: 1e3, MB: 1e6, GB: 1e9, TB: 1e12, KIB: 2 ** 10, MIB: 2 ** 20, GIB: 2 ** 30, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30 };

export function parseBytes(v, name = 'size') {
  if (typeof v === 'number' && Number.isFinite(v) && v >= 0) return Math.floor(v);
  const m = typeof v === 'string' ? /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(v) : null;
  const unit = m && UNITS[m[2].toUpperCase()];
  if (!m || unit === undefined) throw new LFM2Error('ERR_BAD_REQUEST', `${name}: '${v}' is not a size (bytes, or e.g. 2GB, 512MB, 3GiB)`);
  return Math.floor(Number(m[1]) * unit);
}

// A wasm32 heap holds 4 GiB minus 64 KiB; keep ~200 MB for what the budget does not count
// (tokenizer, metadata, allocator slack, the runtime).
export const DEFAULT_MEMORY_BUDGET = 2 ** 32 - 2 ** 16 - 200e6;
