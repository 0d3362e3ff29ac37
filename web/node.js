// node.js: the Node entry, `import { LFM2 } from 'lfm2-wasm/node'`. The wasm engine runs in this
// process (its pthreads in worker_threads); the model is read from disk through a file descriptor.
import os from 'node:os';
import { Engine } from './engine.js';
import { LFM2Error } from './errors.js';
import { openFileReader } from './node-file.js';
import { Session } from './session.js';
import { DEFAULT_MEMORY_BUDGET, parseBytes } from './units.js';

export { LFM2Error } from './errors.js';

const LOAD_OPTIONS = new Set(['threads', 'contextLength', 'reference', 'onProgress', 'signal', 'memoryBudget', 'cachePolicy']);

export class LFM2 {
  /**
   * Load a GGUF model file.
   * @param {string} path
   * @param {{threads?: number, contextLength?: number, reference?: boolean,
   *          onProgress?: (p: {phase: string, bytes: number, total: number}) => void, signal?: AbortSignal}} opts
   * @returns {Promise<Session>}
   */
  static async load(path, opts = {}) {
    if (typeof path !== 'string') throw new LFM2Error('ERR_BAD_REQUEST', 'LFM2.load takes a file path');
    for (const k of Object.keys(opts)) if (!LOAD_OPTIONS.has(k)) throw new LFM2Error('ERR_UNKNOWN_OPTION', `unknown option '${k}'`);
    if (opts.signal?.aborted) throw new LFM2Error('ERR_ABORTED', 'the load was aborted');
    const threads = opts.threads ?? defaultThreads();
    if (!Number.isInteger(threads) || threads < 1) throw new LFM2Error('ERR_BAD_REQUEST', 'threads must be an integer >= 1');
    const file = openFileReader(path);
    let engine, model;
    try {
      engine = await Engine.create({ threads });
      const read = opts.onProgress
        ? (view, off) => { const n = file.read(view, off); opts.onProgress({ phase: 'load', bytes: file.bytesRead, total: file.size }); return n; }
        : file.read;
      const memoryBudget = opts.memoryBudget === undefined ? DEFAULT_MEMORY_BUDGET : parseBytes(opts.memoryBudget, 'memoryBudget');
      if (opts.cachePolicy !== undefined && !['lfu', 'lru'].includes(opts.cachePolicy))
        throw new LFM2Error('ERR_BAD_REQUEST', "cachePolicy must be 'lfu' or 'lru'");
      model = engine.openModel(read, file.size, { reference: !!opts.reference, memoryBudget, cachePolicy: opts.cachePolicy });
      return new Session(engine, model, {
        contextLength: opts.contextLength,
        onUnload: () => { file.close(); engine.terminate(); },
      });
    } catch (e) {
      model?.free(); // joins the model's threads before the workers go
      file.close();
      engine?.terminate();
      throw e;
    }
  }
}

function defaultThreads() {
  return os.availableParallelism?.() ?? os.cpus().length;
}
