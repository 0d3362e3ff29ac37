// index.js: the browser entry, `import { LFM2 } from 'lfm2-wasm'`. Same API as the Node entry
// (web/node.js), but the engine runs in a dedicated module Worker (web/worker.js) and every call
// crosses postMessage: tokenize/detokenize/info/stats/applyChatTemplate/unload return promises,
// streams are async iterables, an AbortSignal is forwarded, errors come back as LFM2Error.
//
// Sources: 'https://…/model.gguf' (downloaded into OPFS once, resumable), 'hf:owner/repo/file.gguf',
// a File/Blob (read in place inside the worker), or the name of a model already stored.
import { LFM2Error } from './errors.js';
import { listModels, removeModel, resolveSource, storeUsage } from './store.js';

export { LFM2Error } from './errors.js';

const LOAD_OPTIONS = new Set(['threads', 'contextLength', 'reference', 'onProgress', 'signal', 'memoryBudget', 'cachePolicy', 'name', 'workerUrl', 'moduleUrl']);

function rebuild(err) {
  const e = new LFM2Error(err.code, err.message);
  if (err.name === 'AbortError') e.name = 'AbortError';
  return e;
}

function toSource(source) {
  if (typeof Blob !== 'undefined' && source instanceof Blob) return { kind: 'blob', blob: source };
  if (source instanceof URL) source = source.href;
  if (typeof source !== 'string' || !source) throw new LFM2Error('ERR_BAD_REQUEST', 'LFM2.load takes a URL, hf:owner/repo/file.gguf, a File/Blob or a stored model name');
  if (source.startsWith('hf:')) return { kind: 'url', url: resolveSource(source) };
  if (/^https?:\/\//i.test(source)) return { kind: 'url', url: source };
  if (/^(\.{0,2}\/)/.test(source)) return { kind: 'url', url: new URL(source, globalThis.document?.baseURI ?? location.href).href };
  return { kind: 'stored', name: source };
}

// Threads need cross-origin isolation (COOP/COEP headers): without it the worker runs the
// single-thread build of the engine and `threads` is 1 whatever was asked (the model's `isolated` is false).
function defaultThreads() {
  if (!globalThis.crossOriginIsolated) return 1;
  return Math.max(1, Math.min(navigator.hardwareConcurrency || 2, 8));
}

class Remote {
  constructor(worker) {
    this.worker = worker;
    this.next = 1;
    this.pending = new Map(); // id -> handler(msg)
    worker.onmessage = ({ data }) => this.pending.get(data.id)?.(data);
    worker.onerror = (ev) => this.fail(new LFM2Error('ERR_WORKER', `the engine worker failed: ${ev.message ?? 'could not start'}`));
    worker.onmessageerror = () => this.fail(new LFM2Error('ERR_WORKER', 'a message from the engine worker could not be read'));
  }

  fail(err) {
    this.dead = err;
    for (const h of [...this.pending.values()]) h({ error: { code: err.code, message: err.message } });
  }

  /** Send a request; handler(msg) gets every reply with its id until it returns true (done). */
  send(msg, handler) {
    if (this.dead) throw this.dead;
    const id = this.next++;
    this.pending.set(id, (m) => { if (handler(m)) this.pending.delete(id); });
    this.worker.postMessage({ ...msg, id });
    return id;
  }

  /** A request with one answer. */
  call(msg, onProgress) {
    return new Promise((resolve, reject) => {
      try {
        this.send(msg, (m) => {
          if (m.progress) { onProgress?.(m.progress); return false; }
          if (m.error) reject(rebuild(m.error));
          else resolve(m.ok);
          return true;
        });
      } catch (e) {
        reject(e);
      }
    });
  }

  terminate() {
    this.worker.terminate();
    this.fail(new LFM2Error('ERR_UNLOADED', 'the model has been unloaded'));
  }
}

/** The page-side face of a model loaded in the worker. */
class BrowserSession {
  constructor(remote, loaded) {
    this.remote = remote;
    this.name = loaded.name;
    this.size = loaded.size;
    this.threads = loaded.threads;
    this.isolated = loaded.isolated;
    const create = (chat) => (req) => this.#create(req, chat);
    this.chat = { completions: { create: create(true) } };
    this.completions = { create: create(false) };
  }

  #call(method, ...args) {
    return this.remote.call({ op: 'call', method, args });
  }

  tokenize(text, opts) { return this.#call('tokenize', text, opts); }
  detokenize(ids, opts) { return this.#call('detokenize', Array.from(ids ?? []), opts); }
  applyChatTemplate(messages, opts) { return this.#call('applyChatTemplate', messages, opts); }
  info() { return this.#call('info'); }
  stats() { return this.#call('stats'); }

  async unload() {
    if (this.remote.dead) return;
    try {
      await this.remote.call({ op: 'unload' });
    } finally {
      this.remote.terminate();
    }
  }

  #create(req, chat) {
    if (!req || typeof req !== 'object') return Promise.reject(new LFM2Error('ERR_BAD_REQUEST', 'the request must be an object'));
    const { signal, ...rest } = req;
    if (signal?.aborted) {
      const e = new LFM2Error('ERR_ABORTED', 'the request was aborted');
      e.name = 'AbortError';
      return Promise.reject(e);
    }
    const remote = this.remote;
    if (!rest.stream) {
      return new Promise((resolve, reject) => {
        let id;
        const onAbort = () => remote.worker.postMessage({ op: 'abort', id });
        try {
          id = remote.send({ op: 'create', chat, req: rest }, (m) => {
            signal?.removeEventListener('abort', onAbort);
            if (m.error) reject(rebuild(m.error));
            else resolve(m.ok);
            return true;
          });
        } catch (e) {
          return reject(e);
        }
        signal?.addEventListener('abort', onAbort, { once: true });
      });
    }
    return new Promise((resolve, reject) => {
      const queue = [];
      let wake = null, finished = false, started = false, id, ended;
      const endedP = new Promise((r) => { ended = r; });
      const onAbort = () => remote.worker.postMessage({ op: 'abort', id });
      const push = (item) => { queue.push(item); wake?.(); wake = null; };
      try {
        id = remote.send({ op: 'create', chat, req: rest }, (m) => {
          if (m.started) { started = true; resolve(iterate()); return false; }
          if (m.chunk) { push({ chunk: m.chunk }); return false; }
          signal?.removeEventListener('abort', onAbort);
          finished = true;
          ended();
          if (!started) { reject(m.error ? rebuild(m.error) : new LFM2Error('ERR_INTERNAL', 'no stream')); return true; }
          push(m.error ? { error: rebuild(m.error) } : { end: true });
          return true;
        });
      } catch (e) {
        return reject(e);
      }
      signal?.addEventListener('abort', onAbort, { once: true });
      async function* iterate() {
        try {
          for (;;) {
            while (!queue.length) await new Promise((r) => { wake = r; });
            const item = queue.shift();
            if (item.error) throw item.error;
            if (item.end) return;
            yield item.chunk;
          }
        } finally {
          // the consumer stopped early (break/return): end the generation in the worker, and wait
          // for it to end there, so the model is free for the next request (as in Node)
          if (!finished) {
            signal?.removeEventListener('abort', onAbort);
            remote.worker.postMessage({ op: 'abort', id });
            await endedP;
          }
        }
      }
    });
  }
}

export class LFM2 {
  /**
   * Load a model in a new engine Worker.
   * @param {string|URL|Blob} source https URL, 'hf:owner/repo/file.gguf', File/Blob, or a stored model's name
   * @param {{threads?: number, memoryBudget?: number|string, contextLength?: number, cachePolicy?: 'lfu'|'lru',
   *          onProgress?: (p: {phase: 'download'|'load', bytes: number, total: number|null, bytesPerSecond?: number}) => void,
   *          signal?: AbortSignal, name?: string, workerUrl?: string|URL, moduleUrl?: string}} opts
   */
  static async load(source, opts = {}) {
    for (const k of Object.keys(opts)) if (!LOAD_OPTIONS.has(k)) throw new LFM2Error('ERR_UNKNOWN_OPTION', `unknown option '${k}'`);
    const src = toSource(source);
    if (opts.signal?.aborted) throw abortLoad();
    const threads = opts.threads ?? defaultThreads();
    if (!Number.isInteger(threads) || threads < 1) throw new LFM2Error('ERR_BAD_REQUEST', 'threads must be an integer >= 1');
    if (src.kind === 'url') {
      if (opts.name !== undefined) src.name = opts.name;
      // ask the browser not to evict the models (granted or not, the download goes on)
      await navigator.storage?.persist?.().catch(() => false);
    }
    // `new Worker(new URL('./worker.js', import.meta.url), {type: 'module'})` spelled out literally:
    // the pattern bundlers (Vite, webpack 5, Parcel) recognize, so they bundle the worker too
    const worker = opts.workerUrl
      ? new Worker(opts.workerUrl, { type: 'module', name: 'lfm2-engine' })
      : new Worker(new URL('./worker.js', import.meta.url), { type: 'module', name: 'lfm2-engine' });
    const remote = new Remote(worker);
    let id;
    const onAbort = () => worker.postMessage({ op: 'abort', id });
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const p = new Promise((resolve, reject) => {
        id = remote.send({
          op: 'load', source: src,
          opts: { threads, reference: !!opts.reference, memoryBudget: opts.memoryBudget, contextLength: opts.contextLength, cachePolicy: opts.cachePolicy, moduleUrl: opts.moduleUrl },
        }, (m) => {
          if (m.progress) { opts.onProgress?.(m.progress); return false; }
          if (m.error) reject(rebuild(m.error));
          else resolve(m.ok);
          return true;
        });
      });
      const loaded = await p;
      return new BrowserSession(remote, loaded);
    } catch (e) {
      remote.terminate();
      throw e;
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Models in the store (OPFS), partial downloads included (complete: false). */
  static list() { return listModels(); }

  /** Delete a stored model (and its partial download). */
  static delete(name) { return removeModel(name); }

  /** {models: bytes of stored models, usage, quota} (navigator.storage.estimate()). */
  static usage() { return storeUsage(); }
}

function abortLoad() {
  const e = new LFM2Error('ERR_ABORTED', 'the load was aborted');
  e.name = 'AbortError';
  return e;
}
