// node.js: the Node entry, `import { LFM2 } from 'lfm2-wasm/node'`. The wasm engine runs in this
// process (its pthreads in worker_threads); the model is read from disk through a file descriptor.
import os from 'node:os';
import { Engine } from './engine.js';
import { LFM2Error } from './errors.js';
import { openFileReader } from './node-file.js';
import { Session } from './session.js';

export { LFM2Error } from './errors.js';

const LOAD_OPTIONS = new Set(['threads', 'contextLength', 'reference', 'onProgress', 'signal', 'memoryBudget']);

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
    let engine;
    try {
      engine = await Engine.create({ threads });
      const read = opts.onProgress
        ? (view, off) => { const n = file.read(view, off); opts.onProgress({ phase: 'load', bytes: file.bytesRead, total: file.size }); return n; }
        : file.read;
      const model = engine.openModel(read, file.size, { reference: !!opts.reference });
      return new Session(engine, model, {
        contextLength: opts.contextLength,
        onUnload: () => { file.close(); engine.terminate(); },
      });
    } catch (e) {
      file.close();
      engine?.terminate();
      throw e;
    }
  }
}

function defaultThreads() {
  return os.availableParallelism?.() ?? os.cpus().length;
}
