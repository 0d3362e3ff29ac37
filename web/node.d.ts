// lfm2-wasm/node: the engine in this Node process, models read from disk.
import type { LFM2Model, LoadOptions } from './index.js';

export * from './index.js';

export class LFM2 {
  /** Load a GGUF model file (arch lfm2 or lfm2moe). */
  static load(path: string, opts?: LoadOptions): Promise<LFM2Model>;
}
